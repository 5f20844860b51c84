//! Conversations and messages: one model for every channel.
//!
//! A conversation belongs to one customer and one channel, has a status with validated
//! transitions, a priority, an assignee and a team, and the timestamps quality metrics need.
//! Messages are ordered within their conversation by id (ids grow with commit order).

pub mod service;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::channels::ChannelKind;
use crate::clock::Millis;
use crate::error::{AppError, AppResult};
use crate::storage::Record;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Open,
    /// Waiting on the customer.
    Pending,
    /// Put aside until `snoozed_until`.
    Snoozed,
    Resolved,
    /// Final: a new message starts a new conversation.
    Closed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Pending => "pending",
            Status::Snoozed => "snoozed",
            Status::Resolved => "resolved",
            Status::Closed => "closed",
        }
    }

    /// The transitions people may make by hand.
    pub fn can_become(self, next: Status) -> bool {
        use Status::*;
        match (self, next) {
            (a, b) if a == b => false,
            (Closed, _) => false,
            (Resolved, Open | Closed) => true,
            (Resolved, _) => false,
            (Open | Pending | Snoozed, _) => true,
        }
    }

    pub fn check_transition(self, next: Status) -> AppResult<()> {
        if self.can_become(next) {
            Ok(())
        } else {
            Err(AppError::conflict(format!(
                "a {} conversation cannot become {}",
                self.as_str(),
                next.as_str()
            )))
        }
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema, Default,
)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Low,
    #[default]
    Normal,
    High,
    Urgent,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct Conversation {
    pub id: u64,
    pub customer_id: u64,
    pub channel_id: u64,
    pub channel_kind: ChannelKind,
    #[serde(default)]
    pub subject: String,
    pub status: Status,
    #[serde(default)]
    pub priority: Priority,
    pub assignee_id: Option<u64>,
    /// The department (team) that owns the conversation.
    pub team_id: Option<u64>,
    #[serde(default)]
    pub tags: Vec<String>,
    pub snoozed_until: Option<Millis>,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub last_message_at: Millis,
    /// First employee reply (not notes, not system messages).
    pub first_response_at: Option<Millis>,
    pub last_response_at: Option<Millis>,
    #[serde(default)]
    pub response_count: u32,
    pub resolved_at: Option<Millis>,
    #[serde(default)]
    pub reopen_count: u32,
    pub last_reopened_at: Option<Millis>,
    #[serde(default)]
    pub message_count: u32,
    /// Where replies go: the channel identity the customer last wrote from.
    #[serde(default)]
    pub reply_to: Option<crate::customers::Identity>,
    /// Employees brought in by an @mention: they see the conversation wherever they work.
    #[serde(default)]
    pub participants: Vec<u64>,
    /// The highest message id the customer has seen (channels with read receipts).
    #[serde(default)]
    pub customer_read_up_to: u64,
    /// The highest message id an employee has read.
    #[serde(default)]
    pub employee_read_up_to: u64,
    /// How the customer feels now, from their recent messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emotion: Option<ConversationEmotion>,
}

/// A conversation's emotion reading: the customer's latest, except that anger and worry last a
/// while after the message that showed them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ConversationEmotion {
    pub emotion: crate::assist::emotion::Emotion,
    /// The message that set it.
    pub since_message_id: u64,
    pub at: Millis,
}

/// How long anger (and worry) colour a conversation after the message that showed them.
const ANGER_LASTS_MS: Millis = 30 * 60 * 1000;
const WORRY_LASTS_MS: Millis = 10 * 60 * 1000;

impl ConversationEmotion {
    /// The reading after a customer's message read as `emotion`; whether it turned angry.
    pub fn next(
        previous: Option<ConversationEmotion>,
        emotion: crate::assist::emotion::Emotion,
        message_id: u64,
        now: Millis,
    ) -> (ConversationEmotion, bool) {
        use crate::assist::emotion::Emotion;
        let fresh = ConversationEmotion {
            emotion,
            since_message_id: message_id,
            at: now,
        };
        let Some(previous) = previous else {
            return (fresh, emotion == Emotion::Angry);
        };
        let lasting = match previous.emotion {
            Emotion::Angry => now - previous.at < ANGER_LASTS_MS,
            Emotion::Anxious => now - previous.at < WORRY_LASTS_MS,
            Emotion::Calm => false,
        };
        if emotion == previous.emotion {
            // The same feeling again: it lasts from this message.
            return (
                ConversationEmotion {
                    since_message_id: previous.since_message_id,
                    ..fresh
                },
                false,
            );
        }
        if emotion < previous.emotion && lasting {
            return (previous, false);
        }
        (fresh, emotion == Emotion::Angry)
    }
}

impl Record for Conversation {
    const KIND: &'static str = "conversation";
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// From the customer.
    Inbound,
    /// From an employee to the customer.
    Outbound,
    /// Between employees only.
    Note,
    /// Recorded by the system (assignment, status change, ...).
    System,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Author {
    Customer { customer_id: u64 },
    Employee { employee_id: u64 },
    System,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Accepted by AllHands, not yet handed to the channel.
    Queued,
    Sent,
    Delivered,
    Read,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Delivery {
    pub state: DeliveryState,
    #[serde(default)]
    pub attempts: u32,
    pub failure: Option<String>,
    pub updated_at: Millis,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Message {
    pub id: u64,
    pub conversation_id: u64,
    pub direction: Direction,
    pub author: Author,
    pub text: String,
    /// The channel's own id for this message (deduplication, threading).
    pub channel_message_id: Option<String>,
    /// Outbound messages only.
    pub delivery: Option<Delivery>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<crate::attachments::AttachmentRef>,
    /// Employees a note mentions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mentions: Vec<u64>,
    pub created_at: Millis,
    /// Sensitive words in it: in a reply, the ones its author confirmed (severity `warn`) or
    /// that only flag; in a customer's message, the ones shown to supervisors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sensitive: Vec<SensitiveNote>,
    /// A customer's message: how they felt writing it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emotion: Option<crate::assist::emotion::Emotion>,
    /// An employee's reply that read as rude.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rude: Option<crate::assist::emotion::RudenessReading>,
    /// E-mail messages only: headers, the untrimmed text and what was wrong with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<EmailMeta>,
}

/// A sensitive word found in a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SensitiveNote {
    pub word: String,
    pub category: String,
    #[schemars(with = "String")]
    pub severity: crate::assist::sensitive::Severity,
    /// As written.
    pub text: String,
}

impl From<&crate::assist::dictionary::SensitiveMatch> for SensitiveNote {
    fn from(m: &crate::assist::dictionary::SensitiveMatch) -> Self {
        SensitiveNote {
            word: m.word.clone(),
            category: m.category.clone(),
            severity: m.severity,
            text: m.text.clone(),
        }
    }
}

/// What an e-mail message carries besides its display text (`Message::text`, trimmed of quoted
/// replies and signatures).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EmailMeta {
    /// Without angle brackets.
    pub message_id: String,
    #[serde(default)]
    pub in_reply_to: Vec<String>,
    #[serde(default)]
    pub references: Vec<String>,
    #[serde(default)]
    pub subject: String,
    /// The whole text when trimming shortened it (`null` when `text` is the whole text).
    #[serde(default)]
    pub original_text: Option<String>,
    /// The raw message as received, kept as an attachment of the message (not listed among its
    /// `attachments`): download it from `/api/v1/attachments/{id}`.
    #[serde(default)]
    pub raw_attachment: Option<u64>,
    /// Why the message could not be read properly; it is stored all the same.
    #[serde(default)]
    pub malformed: Option<String>,
    /// An automatic answer (out of office, auto-responder).
    #[serde(default)]
    pub auto_reply: bool,
    #[serde(default)]
    pub from_address: Option<String>,
    /// Attachments that were not accepted (too large, a refused type): they stay in the raw
    /// message; the accepted ones are the message's `attachments`.
    #[serde(default)]
    pub refused_attachments: Vec<RefusedAttachment>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RefusedAttachment {
    pub filename: String,
    pub content_type: String,
    pub size: u64,
    pub reason: String,
}

impl Record for Message {
    const KIND: &'static str = "message";
}

pub const MAX_TEXT_BYTES: usize = 64 * 1024;

#[cfg(test)]
mod tests {
    use super::Status::*;

    #[test]
    fn transitions() {
        assert!(Open.can_become(Resolved));
        assert!(Pending.can_become(Open));
        assert!(Snoozed.can_become(Closed));
        assert!(Resolved.can_become(Open));
        assert!(!Resolved.can_become(Pending));
        assert!(!Closed.can_become(Open));
        assert!(!Open.can_become(Open));
        assert!(
            Closed
                .check_transition(Open)
                .unwrap_err()
                .message
                .contains("closed")
        );
    }
}
