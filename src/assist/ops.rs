//! Assist's operations as the HTTP layer calls them: the sensitive-word dictionaries and the
//! check the reply box runs while an employee types.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::assist::dictionary::{self, Dictionary, DictionaryInput, DictionarySummary, Scope};
use crate::audit::{self, AuditEvent};
use crate::auth::Caller;
use crate::auth::rbac::Permission;
use crate::error::AppResult;
use crate::state::Core;

/// Compiles the dictionaries again after a change (on the blocking pool: a large dictionary
/// takes tens of milliseconds).
async fn reload(core: &Core) -> AppResult<()> {
    let guard = core.sensitive.clone();
    core.store.read(move |txn| guard.load(txn)).await
}

pub async fn list(core: &Core, caller: &Caller) -> AppResult<Vec<DictionarySummary>> {
    caller.require(Permission::AssistManage)?;
    let all = core.store.read(dictionary::list).await?;
    Ok(all.iter().map(DictionarySummary::from).collect())
}

pub async fn get(core: &Core, caller: &Caller, id: u64) -> AppResult<Dictionary> {
    caller.require(Permission::AssistManage)?;
    core.store.read(move |txn| dictionary::get(txn, id)).await
}

/// Dictionaries for the whole organisation need `assist.manage` everywhere; departmental ones
/// in each of their departments.
fn require_for(caller: &Caller, department_ids: &[u64]) -> AppResult<()> {
    if department_ids.is_empty() {
        return caller.require_everywhere(Permission::AssistManage);
    }
    for d in department_ids {
        caller.require_in(Permission::AssistManage, *d)?;
    }
    Ok(())
}

pub async fn put(
    core: &Core,
    caller: &Caller,
    id: Option<u64>,
    input: DictionaryInput,
) -> AppResult<Dictionary> {
    caller.require(Permission::AssistManage)?;
    require_for(caller, &input.department_ids)?;
    if let Some(id) = id {
        let existing = core.store.read(move |txn| dictionary::get(txn, id)).await?;
        require_for(caller, &existing.department_ids)?;
    }
    let now = core.now();
    let actor = caller.clone();
    let saved = core
        .store
        .write(move |txn| {
            let saved = dictionary::put(txn, id, &input, now)?;
            audit::append(
                txn,
                now,
                AuditEvent::new(
                    &actor.actor,
                    if id.is_some() {
                        "assist.dictionary_updated"
                    } else {
                        "assist.dictionary_created"
                    },
                )
                .target(format!("dictionary:{}", saved.id))
                .details(json!({
                    "name": saved.name,
                    "enabled": saved.enabled,
                    "department_ids": saved.department_ids,
                    "words": saved.words.len(),
                })),
            )?;
            Ok(saved)
        })
        .await?;
    reload(core).await?;
    Ok(saved)
}

pub async fn delete(core: &Core, caller: &Caller, id: u64) -> AppResult<()> {
    caller.require(Permission::AssistManage)?;
    let existing = core.store.read(move |txn| dictionary::get(txn, id)).await?;
    require_for(caller, &existing.department_ids)?;
    let now = core.now();
    let actor = caller.clone();
    core.store
        .write(move |txn| {
            let gone = dictionary::delete(txn, id)?;
            audit::append(
                txn,
                now,
                AuditEvent::new(&actor.actor, "assist.dictionary_deleted")
                    .target(format!("dictionary:{id}"))
                    .details(json!({ "name": gone.name, "words": gone.words.len() })),
            )?;
            Ok(())
        })
        .await?;
    reload(core).await
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckRequest {
    pub text: String,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CheckAnswer {
    pub matches: Vec<dictionary::SensitiveMatch>,
    /// `block` when the reply would be refused, `warn` when it needs confirmation, else `ok`.
    pub verdict: &'static str,
    /// Whether the reply reads as rude (a hint before it is sent).
    pub rudeness: crate::assist::emotion::RudenessReading,
}

/// What the reply box highlights: the caller's reply draft checked against the dictionaries of
/// their department.
pub fn check_reply(core: &Core, caller: &Caller, text: &str) -> Vec<dictionary::SensitiveMatch> {
    core.sensitive.check(
        text,
        Scope::Employee {
            department_id: caller.department_id,
            tree: &caller.index.departments,
        },
    )
}

pub async fn check(core: &Core, caller: &Caller, request: CheckRequest) -> AppResult<CheckAnswer> {
    caller.require(Permission::ConversationsReply)?;
    if request.text.chars().count() > 20_000 {
        return Err(crate::error::AppError::field(
            "text",
            "must have at most 20000 characters",
        ));
    }
    let matches = check_reply(core, caller, &request.text);
    let verdict = match dictionary::verdict(&matches, false) {
        Ok(()) => "ok",
        Err(e) if e.code == crate::error::ErrorCode::SensitiveWordBlocked => "block",
        Err(_) => "warn",
    };
    let rudeness = crate::assist::emotion::models().rudeness(&request.text);
    Ok(CheckAnswer {
        matches,
        verdict,
        rudeness,
    })
}

// ---------------------------------------------------------------- reply suggestions

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SuggestQuery {
    /// What the employee has typed so far.
    pub draft: Option<String>,
    /// At most 10; default 5.
    pub limit: Option<usize>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Suggestions {
    /// The customer's words the suggestions answer.
    pub question: String,
    pub lang: crate::text::Language,
    pub suggestions: Vec<crate::assist::suggest::Suggestion>,
}

/// The customer's latest words: their messages since the last reply (at most three).
pub(crate) fn customer_question(messages: &[crate::conversations::Message]) -> String {
    use crate::conversations::Direction;
    let mut parts: Vec<&str> = Vec::new();
    for message in messages.iter().rev() {
        match message.direction {
            Direction::Inbound => {
                parts.push(&message.text);
                if parts.len() == 3 {
                    break;
                }
            }
            Direction::Outbound if !parts.is_empty() => break,
            _ => {}
        }
    }
    parts.reverse();
    parts.join("\n")
}

pub(crate) fn last_messages(
    txn: &redb::ReadTransaction,
    conversation_id: u64,
) -> AppResult<Vec<crate::conversations::Message>> {
    let table = txn.open_table(crate::storage::tables::MESSAGES)?;
    let mut out = Vec::new();
    for row in table
        .range((conversation_id, 0)..=(conversation_id, u64::MAX))?
        .rev()
        .take(50)
    {
        out.push(crate::storage::codec::decode(row?.1.value())?);
    }
    out.reverse();
    Ok(out)
}

pub async fn suggestions(
    core: &Core,
    caller: &Caller,
    conversation_id: u64,
    query: SuggestQuery,
) -> AppResult<Suggestions> {
    use crate::assist::suggest::{self, Candidate, SuggestionKind};
    caller.require(Permission::ConversationsReply)?;
    let draft: String = query.draft.unwrap_or_default().chars().take(2000).collect();
    let limit = query.limit.unwrap_or(5).clamp(1, 10);
    let library = core.knowledge.clone();
    let caller = caller.clone();
    core.store
        .read(move |txn| {
            let conversation = crate::conversations::service::get(txn, conversation_id)?;
            if !crate::conversations::service::visible_to(&caller, &conversation) {
                return Err(crate::error::AppError::not_found("conversation"));
            }
            let messages = last_messages(txn, conversation_id)?;
            let question = customer_question(&messages);
            let last_inbound = messages
                .iter()
                .rev()
                .find(|m| m.direction == crate::conversations::Direction::Inbound)
                .map(|m| m.id);
            let lang = crate::knowledge::ops::question_language(
                if question.is_empty() {
                    &draft
                } else {
                    &question
                },
                None,
            );
            let asked = format!("{question}\n{draft}");
            if asked.trim().is_empty() {
                return Ok((
                    Suggestions {
                        question,
                        lang,
                        suggestions: Vec::new(),
                    },
                    None,
                ));
            }
            let mut coverage = 0.0f32;
            let mut candidates = Vec::new();
            if caller.access.has(Permission::KnowledgeRead) {
                for (id, hit) in library.search(&asked, lang, 12)? {
                    let Ok(article) = crate::knowledge::service::article(txn, id) else {
                        continue;
                    };
                    let Some(content) = article.live() else {
                        continue;
                    };
                    if !crate::knowledge::ops::may_read(&caller, content) {
                        continue;
                    }
                    if !candidates
                        .iter()
                        .any(|c: &Candidate| c.kind == SuggestionKind::Article)
                    {
                        coverage = crate::knowledge::gaps::coverage(
                            &crate::knowledge::gaps::terms(&question),
                            &format!("{}\n{}", content.title, content.body),
                        );
                    }
                    candidates.push(Candidate {
                        kind: SuggestionKind::Article,
                        id,
                        title: content.title.clone(),
                        text: crate::knowledge::ops::display_passage(&hit),
                        score: hit.score,
                    });
                }
            }
            for (message_id, hit) in library.search_replies(&asked, lang, 12)? {
                let Some(past) = crate::storage::get_record::<suggest::PastReply>(
                    &txn.open_table(crate::storage::tables::PAST_REPLIES)?,
                    message_id,
                )?
                else {
                    continue;
                };
                if past.conversation_id == conversation_id {
                    continue;
                }
                candidates.push(Candidate {
                    kind: SuggestionKind::Reply,
                    id: message_id,
                    title: past.question.chars().take(80).collect(),
                    text: past.reply,
                    score: hit.score,
                });
            }
            let keys: Vec<String> = candidates
                .iter()
                .map(|c| suggest::key(c.kind, c.id))
                .collect();
            let feedback = suggest::feedback_of(txn, &keys)?;
            // The customer's question, once, for knowledge gaps.
            let count = last_inbound
                .filter(|_| draft.trim().is_empty() && !question.trim().is_empty())
                .map(|id| (id, coverage));
            Ok((
                Suggestions {
                    suggestions: suggest::rank(candidates, &feedback, &draft, limit),
                    question,
                    lang,
                },
                count,
            ))
        })
        .await
        .map(|(suggestions, count)| {
            if let Some((message_id, coverage)) = count
                && core.knowledge.first_count(message_id)
            {
                crate::knowledge::ops::count_question(
                    core,
                    suggestions.question.clone(),
                    suggestions.lang,
                    coverage,
                    crate::knowledge::gaps::QuestionSource::Conversation,
                );
            }
            suggestions
        })
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SuggestionFeedback {
    /// Keys of the suggestions shown while the reply was written (`article:<id>`, `reply:<id>`).
    #[serde(default)]
    pub shown: Vec<String>,
    /// The one inserted into the reply, if any.
    pub inserted: Option<String>,
    /// The inserted text was changed before sending.
    #[serde(default)]
    pub edited: bool,
}

/// Records what the employee did with the suggestions when the reply was sent. An inserted
/// article is also a confirmation that it answers the customer's question: search learns it.
pub async fn suggestion_feedback(
    core: &Core,
    caller: &Caller,
    conversation_id: u64,
    feedback: SuggestionFeedback,
) -> AppResult<()> {
    caller.require(Permission::ConversationsReply)?;
    let valid = |key: &str| {
        key.strip_prefix("article:")
            .or_else(|| key.strip_prefix("reply:"))
            .is_some_and(|id| id.parse::<u64>().is_ok())
    };
    if feedback.shown.len() > 50 || !feedback.shown.iter().all(|k| valid(k)) {
        return Err(crate::error::AppError::field(
            "shown",
            "at most 50 keys of the form article:<id> or reply:<id>",
        ));
    }
    if feedback.inserted.as_deref().is_some_and(|k| !valid(k)) {
        return Err(crate::error::AppError::field(
            "inserted",
            "must be a key of the form article:<id> or reply:<id>",
        ));
    }
    let reader = caller.clone();
    let question = core
        .store
        .read(move |txn| {
            let conversation = crate::conversations::service::get(txn, conversation_id)?;
            if !crate::conversations::service::visible_to(&reader, &conversation) {
                return Err(crate::error::AppError::not_found("conversation"));
            }
            Ok(customer_question(&last_messages(txn, conversation_id)?))
        })
        .await?;
    // Learned as one line of at most 1000 characters.
    let question: String = question
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(1000)
        .collect();
    let now = core.now();
    let employee_id = caller.employee_id;
    let learned_article = feedback
        .inserted
        .as_deref()
        .and_then(|k| k.strip_prefix("article:"))
        .and_then(|id| id.parse::<u64>().ok());
    core.store
        .write(move |txn| {
            crate::assist::suggest::record_feedback(
                txn,
                &feedback.shown,
                feedback.inserted.as_deref(),
                feedback.edited,
            )?;
            if let Some(article) = learned_article
                && !question.trim().is_empty()
                && crate::storage::get_record::<crate::knowledge::Article>(
                    &txn.open_table(crate::storage::tables::KNOWLEDGE_ARTICLES)?,
                    article,
                )?
                .is_some_and(|a| a.live().is_some())
            {
                crate::knowledge::service::learn_question(
                    txn,
                    article,
                    &question,
                    employee_id,
                    now,
                )?;
            }
            Ok(())
        })
        .await?;
    crate::knowledge::ops::sync_index(core).await;
    Ok(())
}
