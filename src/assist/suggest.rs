//! Reply suggestions while an employee types: knowledge passages and past replies that ended
//! well, ranked for the customer's question and what has been typed so far, and what employees
//! did with earlier suggestions (inserted, inserted and edited, or ignored).
//!
//! Past replies are harvested when a conversation is resolved: each employee reply with the
//! customer's words it answered. `rank` is a pure function of the candidates, the feedback
//! counts and the draft.

use std::collections::HashMap;

use redb::ReadableTable;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::clock::Millis;
use crate::conversations::{Conversation, Direction, Message};
use crate::error::AppResult;
use crate::storage::{Record, WriteTxn, codec, get_record, next_id, tables};
use crate::text::{self, Language};

/// An employee's reply with the customer's words it answered, from a resolved conversation.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct PastReply {
    /// The reply's message id.
    pub message_id: u64,
    pub conversation_id: u64,
    pub employee_id: u64,
    pub question: String,
    pub reply: String,
    pub lang: Language,
    pub resolved_at: Millis,
    /// The knowledge sequence number the search index follows.
    pub seq: u64,
}

impl Record for PastReply {
    const KIND: &'static str = "past reply";
}

/// Replies shorter than this say nothing reusable ("ok", "好的").
const MIN_REPLY_CHARS: usize = 12;
/// The newest messages of a conversation looked at when it is resolved.
const HARVEST_WINDOW: usize = 200;

/// Keeps the replies of a conversation being resolved, in its write. A reply kept before (the
/// conversation was resolved, reopened and resolved again) is not kept twice.
pub fn harvest(txn: &WriteTxn, conversation: &Conversation, now: Millis) -> AppResult<usize> {
    let mut messages: Vec<Message> = Vec::new();
    {
        let table = txn.messages()?;
        for row in table
            .range((conversation.id, 0)..=(conversation.id, u64::MAX))?
            .rev()
            .take(HARVEST_WINDOW)
        {
            let (_, value) = row?;
            messages.push(codec::decode(value.value())?);
        }
    }
    messages.reverse();
    let mut kept = 0;
    let mut question = String::new();
    for message in messages {
        match message.direction {
            Direction::Inbound => {
                if !question.is_empty() {
                    question.push('\n');
                }
                question.push_str(&message.text);
            }
            Direction::Outbound => {
                let usable = message.text.chars().count() >= MIN_REPLY_CHARS
                    && message.rude.is_none()
                    && !question.trim().is_empty();
                let author = match message.author {
                    crate::conversations::Author::Employee { employee_id } => Some(employee_id),
                    _ => None,
                };
                if let (true, Some(employee_id)) = (usable, author) {
                    let exists = get_record::<PastReply>(
                        &txn.open_table(tables::PAST_REPLIES)?,
                        message.id,
                    )?
                    .is_some();
                    if !exists {
                        let seq = next_id(txn, "knowledge_seq")?;
                        let lang = text::search_language(&message.text);
                        let past = PastReply {
                            message_id: message.id,
                            conversation_id: conversation.id,
                            employee_id,
                            question: question.chars().take(2000).collect(),
                            reply: message.text.clone(),
                            lang,
                            resolved_at: now,
                            seq,
                        };
                        txn.open_table(tables::PAST_REPLIES)?
                            .insert(message.id, codec::encode(&past).as_slice())?;
                        txn.open_table(tables::PAST_REPLY_QUEUE)?
                            .insert(seq, message.id)?;
                        kept += 1;
                    }
                }
                question.clear();
            }
            Direction::Note | Direction::System => {}
        }
    }
    Ok(kept)
}

/// What employees did with a suggestion so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Feedback {
    pub inserted: u32,
    /// Inserted, then changed before sending.
    pub edited: u32,
    /// Shown while a reply was written, and not used.
    pub ignored: u32,
}

impl Record for Feedback {
    const KIND: &'static str = "suggestion feedback";
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SuggestionKind {
    /// A passage of a knowledge article.
    Article,
    /// A reply an employee sent in a conversation that was resolved.
    Reply,
}

/// A suggestion's stable key: `article:<id>` or `reply:<message id>`.
pub fn key(kind: SuggestionKind, id: u64) -> String {
    match kind {
        SuggestionKind::Article => format!("article:{id}"),
        SuggestionKind::Reply => format!("reply:{id}"),
    }
}

/// A candidate as retrieval found it.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub kind: SuggestionKind,
    pub id: u64,
    pub title: String,
    /// What would be inserted.
    pub text: String,
    /// The retrieval score (BM25), comparable within one kind.
    pub score: f32,
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Suggestion {
    pub key: String,
    pub kind: SuggestionKind,
    /// The article's id, or the past reply's message id.
    pub id: u64,
    pub title: String,
    pub text: String,
    pub score: f32,
}

/// How much each kind counts at the same relative retrieval score: an article is checked, a
/// past reply is one person's answer.
fn kind_weight(kind: SuggestionKind) -> f32 {
    match kind {
        SuggestionKind::Article => 1.0,
        SuggestionKind::Reply => 0.85,
    }
}

/// What employees' choices say of a suggestion: used ones rise, ignored ones sink, and a few
/// choices cannot swing it far (a prior of four neutral showings).
pub fn feedback_factor(feedback: &Feedback) -> f32 {
    let used = feedback.inserted as f32 + 0.5 * feedback.edited as f32;
    let shown = (feedback.inserted + feedback.edited + feedback.ignored) as f32;
    let rate = (used + 2.0) / (shown + 4.0);
    0.5 + rate
}

/// Ranks candidates for a draft: retrieval score relative to the best of its kind, the kind's
/// weight, employees' feedback, and how much of the draft the text already says (as the
/// employee types, the suggestion they are writing towards rises).
pub fn rank(
    candidates: Vec<Candidate>,
    feedback: &HashMap<String, Feedback>,
    draft: &str,
    limit: usize,
) -> Vec<Suggestion> {
    let mut best: HashMap<SuggestionKind, f32> = HashMap::new();
    for c in &candidates {
        let top = best.entry(c.kind).or_insert(0.0);
        *top = top.max(c.score);
    }
    let draft_words: Vec<String> = text::words(&text::normalise_simplified(draft));
    let mut ranked: Vec<Suggestion> = candidates
        .into_iter()
        .map(|c| {
            let relative = c.score / best.get(&c.kind).copied().unwrap_or(1.0).max(f32::EPSILON);
            let key = key(c.kind, c.id);
            let factor = feedback.get(&key).map_or(1.0, feedback_factor);
            let overlap = if draft_words.is_empty() {
                0.0
            } else {
                let words = text::words(&text::normalise_simplified(&c.text));
                draft_words.iter().filter(|w| words.contains(w)).count() as f32
                    / draft_words.len() as f32
            };
            Suggestion {
                score: relative * kind_weight(c.kind) * factor * (1.0 + overlap),
                key,
                kind: c.kind,
                id: c.id,
                title: c.title,
                text: c.text,
            }
        })
        .collect();
    ranked.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.key.cmp(&b.key)));
    // The same reply sent in many conversations is one suggestion.
    let mut seen: Vec<String> = Vec::new();
    ranked.retain(|s| {
        let normal = text::normalise(&s.text);
        if seen.contains(&normal) {
            false
        } else {
            seen.push(normal);
            true
        }
    });
    ranked.truncate(limit);
    ranked
}

/// Records what happened to the suggestions shown while a reply was written.
pub fn record_feedback(
    txn: &WriteTxn,
    shown: &[String],
    inserted: Option<&str>,
    edited: bool,
) -> AppResult<()> {
    let mut keys: Vec<&str> = shown.iter().map(String::as_str).collect();
    if let Some(chosen) = inserted
        && !keys.contains(&chosen)
    {
        keys.push(chosen);
    }
    let mut table = txn.open_table(tables::SUGGESTION_FEEDBACK)?;
    for key in keys {
        let mut counts: Feedback = match table.get(key)? {
            Some(v) => codec::decode(v.value())?,
            None => Feedback::default(),
        };
        match inserted {
            Some(chosen) if chosen == key && edited => counts.edited += 1,
            Some(chosen) if chosen == key => counts.inserted += 1,
            _ => counts.ignored += 1,
        }
        table.insert(key, codec::encode(&counts).as_slice())?;
    }
    Ok(())
}

pub fn feedback_of(
    txn: &redb::ReadTransaction,
    keys: &[String],
) -> AppResult<HashMap<String, Feedback>> {
    let table = txn.open_table(tables::SUGGESTION_FEEDBACK)?;
    let mut out = HashMap::new();
    for key in keys {
        if let Some(v) = table.get(key.as_str())? {
            out.insert(key.clone(), codec::decode(v.value())?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(kind: SuggestionKind, id: u64, text: &str, score: f32) -> Candidate {
        Candidate {
            kind,
            id,
            title: String::new(),
            text: text.into(),
            score,
        }
    }

    #[test]
    fn feedback_moves_a_suggestion_and_the_draft_pulls_its_match_up() {
        let a = candidate(
            SuggestionKind::Article,
            1,
            "Print the return label from your order page.",
            10.0,
        );
        let b = candidate(
            SuggestionKind::Article,
            2,
            "Refunds reach your card in 3 to 5 days.",
            9.0,
        );
        let plain = rank(vec![a.clone(), b.clone()], &HashMap::new(), "", 5);
        assert_eq!(plain[0].id, 1);
        let typed = rank(
            vec![a.clone(), b.clone()],
            &HashMap::new(),
            "refunds reach the card",
            5,
        );
        assert_eq!(typed[0].id, 2);
        let mut feedback = HashMap::new();
        feedback.insert(
            key(SuggestionKind::Article, 1),
            Feedback {
                inserted: 0,
                edited: 0,
                ignored: 12,
            },
        );
        let learned = rank(vec![a, b], &feedback, "", 5);
        assert_eq!(learned[0].id, 2);
        assert!(
            feedback_factor(&Feedback {
                inserted: 10,
                edited: 0,
                ignored: 0
            }) > 1.2
        );
    }

    #[test]
    fn the_same_reply_twice_is_one_suggestion() {
        let r1 = candidate(SuggestionKind::Reply, 5, "您好，已为您退款", 3.0);
        let r2 = candidate(SuggestionKind::Reply, 9, "您好，已为您退款", 2.0);
        assert_eq!(rank(vec![r1, r2], &HashMap::new(), "", 5).len(), 1);
    }
}
