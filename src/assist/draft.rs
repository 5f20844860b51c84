//! Reply drafts from the organisation's own model server (`assist::llm`): the prompt carries
//! the conversation's recent turns, the passages of the knowledge articles the employee may read
//! that best answer the customer's latest words, and (to polish) the employee's own text; the
//! model is told to answer only from the passages and to cite them. The draft is never sent: it
//! goes into the reply box for the employee to edit.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::assist::llm::{ChatMessage, LlmStatus, redact};
use crate::audit::{self, AuditEvent};
use crate::auth::Caller;
use crate::auth::rbac::Permission;
use crate::conversations::{Direction, Message};
use crate::error::{AppError, AppResult};
use crate::knowledge::ops::SearchAnswer;
use crate::state::Core;
use crate::text::Language;

/// Turns of the conversation the prompt carries, newest kept.
const MAX_TURNS: usize = 12;
const MAX_TURN_CHARS: usize = 1_000;
const MAX_CONVERSATION_CHARS: usize = 6_000;
const MAX_PASSAGES: usize = 3;
const MAX_TEXT_CHARS: usize = 4_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DraftMode {
    /// Write a reply to the customer's latest words.
    Draft,
    /// Improve the employee's `text`, keeping its meaning.
    Polish,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DraftRequest {
    pub mode: DraftMode,
    /// The employee's text: needed to polish; to draft, what they have typed so far (a hint).
    pub text: Option<String>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct DraftSource {
    pub article_id: u64,
    pub title: String,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct DraftAnswer {
    /// The reply to put in the reply box (citation marks removed).
    pub text: String,
    /// The articles the model cited, among those it was given.
    pub articles: Vec<u64>,
    /// The cited articles' titles, for showing.
    pub sources: Vec<DraftSource>,
    /// The model that answered.
    pub model: String,
}

/// What the prompt is made of; kept apart from the store so it can be tested alone.
struct PromptInput<'a> {
    mode: DraftMode,
    lang: Language,
    turns: &'a [Message],
    question: &'a str,
    passages: &'a [SearchAnswer],
    text: &'a str,
    redact: bool,
}

fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let kept: String = text.chars().take(max).collect();
        format!("{kept}…")
    }
}

fn build_prompt(input: &PromptInput) -> Vec<ChatMessage> {
    let private = |text: &str| {
        if input.redact {
            redact(text)
        } else {
            text.to_string()
        }
    };
    let language = match input.lang {
        Language::Zh => "Simplified Chinese",
        _ => "English",
    };
    let mut system = format!(
        "You help a customer-service employee answer a customer. Answer only from the numbered \
         knowledge passages given; if they do not answer the question, say that you will check \
         and come back, and never invent facts, prices, dates or promises. After each sentence \
         that uses a passage, cite it with its number in square brackets, e.g. [12]. Write in \
         {language}, politely and briefly, as the reply itself: no greeting line about being an \
         AI, no notes to the employee."
    );
    if input.mode == DraftMode::Polish {
        system.push_str(
            " The employee has written a reply: improve its wording, tone and correctness, keep \
             its meaning and anything it promises, and correct it only where the passages say \
             otherwise.",
        );
    }

    let mut user = String::from("Knowledge passages:\n");
    if input.passages.is_empty() {
        user.push_str("(none found)\n");
    }
    for passage in input.passages {
        user.push_str(&format!(
            "[{}] {}\n{}\n\n",
            passage.article_id, passage.title, passage.passage
        ));
    }

    // The newest turns that fit, oldest first.
    let mut lines: Vec<String> = Vec::new();
    let mut used = 0;
    for message in input
        .turns
        .iter()
        .rev()
        .filter(|m| matches!(m.direction, Direction::Inbound | Direction::Outbound))
        .take(MAX_TURNS)
    {
        let who = if message.direction == Direction::Inbound {
            "Customer"
        } else {
            "Agent"
        };
        let line = format!(
            "{who}: {}",
            private(&cut(message.text.trim(), MAX_TURN_CHARS))
        );
        used += line.chars().count();
        if used > MAX_CONVERSATION_CHARS && !lines.is_empty() {
            break;
        }
        lines.push(line);
    }
    lines.reverse();
    user.push_str("Conversation so far (oldest first):\n");
    user.push_str(&lines.join("\n"));
    user.push_str("\n\nThe customer's latest words:\n");
    user.push_str(&private(&cut(input.question, MAX_TEXT_CHARS)));
    let text = input.text.trim();
    match input.mode {
        DraftMode::Polish => {
            user.push_str("\n\nThe employee's reply to improve:\n");
            user.push_str(&private(text));
        }
        DraftMode::Draft if !text.is_empty() => {
            user.push_str("\n\nWhat the employee has started to write (continue in its spirit):\n");
            user.push_str(&private(text));
        }
        DraftMode::Draft => {}
    }
    user.push_str("\n\nWrite the reply now.");
    vec![
        ChatMessage {
            role: "system",
            content: system,
        },
        ChatMessage {
            role: "user",
            content: user,
        },
    ]
}

/// The article ids a citation mark's inside names (`12`, `12, 14`, `#12`), if it names only
/// given articles.
fn cited_ids(inside: &str, given: &[u64]) -> Option<Vec<u64>> {
    let ids = inside
        .split([',', '，', ' '])
        .filter(|part| !part.is_empty())
        .map(|part| part.trim_start_matches('#').parse::<u64>().ok())
        .collect::<Option<Vec<u64>>>()?;
    (!ids.is_empty() && ids.iter().all(|id| given.contains(id))).then_some(ids)
}

/// Takes the citation marks (`[12]`, `[12, 14]`, `[#12]`) naming given articles out of the
/// text; returns the text and the cited ids in first-cited order.
fn take_citations(text: &str, given: &[u64]) -> (String, Vec<u64>) {
    let mut out = String::with_capacity(text.len());
    let mut cited: Vec<u64> = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let mark = after
            .find(']')
            .and_then(|close| cited_ids(&after[..close], given).map(|ids| (ids, close)));
        match mark {
            Some((ids, close)) => {
                for id in ids {
                    if !cited.contains(&id) {
                        cited.push(id);
                    }
                }
                // "text [12]." reads "text." once the mark is gone.
                while out.ends_with(' ') {
                    out.pop();
                }
                rest = &after[close + 1..];
            }
            None => {
                out.push('[');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    (out.trim().to_string(), cited)
}

pub async fn status(core: &Core, caller: &Caller) -> AppResult<LlmStatus> {
    caller.require(Permission::ConversationsReply)?;
    Ok(core.llm.status().await)
}

pub async fn draft(
    core: &Core,
    caller: &Caller,
    conversation_id: u64,
    request: DraftRequest,
) -> AppResult<DraftAnswer> {
    caller.require(Permission::ConversationsReply)?;
    core.llm.require_enabled()?;
    let text = request.text.unwrap_or_default();
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(AppError::field(
            "text",
            format!("must have at most {MAX_TEXT_CHARS} characters"),
        ));
    }
    if request.mode == DraftMode::Polish && text.trim().is_empty() {
        return Err(AppError::field("text", "polish needs the reply to improve"));
    }
    let library = core.knowledge.clone();
    let reader = caller.clone();
    let searched = text.clone();
    let (turns, question, lang, passages) = core
        .store
        .read(move |txn| {
            let conversation = crate::conversations::service::get(txn, conversation_id)?;
            crate::conversations::service::require_can_act(
                &reader,
                &conversation,
                Permission::ConversationsReply,
            )?;
            let turns = crate::assist::ops::last_messages(txn, conversation_id)?;
            let question = crate::assist::ops::customer_question(&turns);
            let asked = if question.trim().is_empty() {
                searched
            } else {
                question.clone()
            };
            let lang = crate::knowledge::ops::question_language(&asked, None);
            let passages = if asked.trim().is_empty() {
                Vec::new()
            } else {
                let asked: String = asked.chars().take(500).collect();
                crate::knowledge::ops::readable_answers(
                    txn,
                    &library,
                    Some(&reader),
                    &asked,
                    lang,
                    MAX_PASSAGES,
                )?
                .0
            };
            Ok((turns, question, lang, passages))
        })
        .await?;
    let prompt = build_prompt(&PromptInput {
        mode: request.mode,
        lang,
        turns: &turns,
        question: &question,
        passages: &passages,
        text: &text,
        redact: core.llm.redacts(),
    });
    let given: Vec<u64> = passages.iter().map(|p| p.article_id).collect();
    let prompt_chars: usize = prompt.iter().map(|m| m.content.chars().count()).sum();
    let result = core.llm.chat(&prompt).await;

    let answer = result.as_ref().ok().map(|completion| {
        let (text, cited) = take_citations(&completion.text, &given);
        let sources = cited
            .iter()
            .filter_map(|id| passages.iter().find(|p| p.article_id == *id))
            .map(|p| DraftSource {
                article_id: p.article_id,
                title: p.title.clone(),
            })
            .collect();
        let model = if completion.model.is_empty() {
            core.llm.model().unwrap_or_default().to_string()
        } else {
            completion.model.clone()
        };
        DraftAnswer {
            text,
            articles: cited,
            sources,
            model,
        }
    });
    // Audited once something was sent: sizes and ids, never the text. The refusals that
    // sent nothing (circuit open, no free slot) are the ones that say when to retry.
    let sent_something = match &result {
        Ok(_) => true,
        Err(e) => e.retry_after.is_none(),
    };
    if sent_something {
        let details = json!({
            "mode": request.mode,
            "model": core.llm.model(),
            "prompt_chars": prompt_chars,
            "redacted": core.llm.redacts(),
            "articles_given": given,
            "articles_cited": answer.as_ref().map(|a| a.articles.clone()).unwrap_or_default(),
            "answer_chars": answer.as_ref().map(|a| a.text.chars().count()),
            "outcome": result.as_ref().err().map_or("ok", |e| e.code.as_str()),
        });
        let mut event = AuditEvent::new(&caller.actor, "assist.llm_draft")
            .target(format!("conversation:{conversation_id}"))
            .details(details);
        if result.is_err() {
            event = event.failed();
        }
        let now = core.now();
        core.store
            .write(move |txn| audit::append(txn, now, event.clone()).map(|_| ()))
            .await?;
    }
    result?;
    answer.ok_or_else(|| AppError::internal("a completion without an answer"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conversations::Author;
    use crate::knowledge::Visibility;

    fn message(id: u64, direction: Direction, text: &str) -> Message {
        serde_json::from_value(json!({
            "id": id,
            "conversation_id": 1,
            "direction": direction,
            "author": match direction {
                Direction::Inbound => serde_json::to_value(Author::Customer { customer_id: 1 }).unwrap(),
                _ => serde_json::to_value(Author::Employee { employee_id: 2 }).unwrap(),
            },
            "text": text,
            "channel_message_id": null,
            "delivery": null,
            "created_at": 0,
        }))
        .unwrap()
    }

    fn passage(id: u64) -> SearchAnswer {
        SearchAnswer {
            article_id: id,
            title: format!("Article {id}"),
            lang: Language::En,
            visibility: Visibility::Internal,
            score: 1.0,
            passage: format!("Refunds arrive in 3 to 5 working days (article {id})."),
            path: Vec::new(),
        }
    }

    #[test]
    fn the_prompt_carries_passages_turns_and_the_text_with_private_data_masked() {
        let turns = [
            message(1, Direction::Inbound, "Hello, I am ann@example.com"),
            message(2, Direction::Note, "internal: VIP customer"),
            message(3, Direction::Outbound, "Hi Ann, how can I help?"),
            message(
                4,
                Direction::Inbound,
                "When does my refund arrive? Call 13812345678",
            ),
        ];
        let passages = [passage(12)];
        let prompt = build_prompt(&PromptInput {
            mode: DraftMode::Polish,
            lang: Language::En,
            turns: &turns,
            question: "When does my refund arrive? Call 13812345678",
            passages: &passages,
            text: "refund soon, mail ann@example.com",
            redact: true,
        });
        let user = &prompt[1].content;
        assert!(user.contains("[12] Article 12\nRefunds arrive in 3 to 5 working days"));
        assert!(user.contains("Customer: Hello, I am [email]"), "{user}");
        assert!(user.contains("Agent: Hi Ann, how can I help?"));
        assert!(!user.contains("VIP"), "notes stay inside");
        assert!(user.contains("When does my refund arrive? Call [phone]"));
        assert!(user.contains("The employee's reply to improve:\nrefund soon, mail [email]"));
        assert!(!user.contains("ann@example.com") && !user.contains("13812345678"));
        assert!(prompt[0].content.contains("only from the numbered"));
        assert!(prompt[0].content.contains("improve its wording"));
    }

    #[test]
    fn citations_of_given_articles_are_taken_out() {
        let (text, cited) = take_citations(
            "Refunds take 3-5 days [12]. See also [14, 12] and [#14]. [7] is not ours, nor [x].",
            &[12, 14],
        );
        assert_eq!(
            text,
            "Refunds take 3-5 days. See also and. [7] is not ours, nor [x]."
        );
        assert_eq!(cited, vec![12, 14]);
        let (text, cited) = take_citations("没有引用", &[1]);
        assert_eq!((text.as_str(), cited.len()), ("没有引用", 0));
    }
}
