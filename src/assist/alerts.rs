//! What assist says after a message is committed: an alert to supervisors (everyone with
//! `routing.monitor`) and a hint to the conversation's owner when a customer turns angry, when a
//! customer's message holds sensitive words, or when a reply read as rude.
//!
//! Frames on the console's WebSocket: `{"type":"assist.alert", ...}` to supervisors and
//! `{"type":"assist.hint", ...}` to the owner, each with `kind` (`angry_customer`,
//! `sensitive_incoming`, `rude_reply`), `conversation_id`, `message_id` and `details`.

use redb::ReadableTable;
use serde::Serialize;
use serde_json::json;

use crate::assist::dictionary::{Scope, SensitiveMatch};
use crate::assist::emotion::Emotion;
use crate::auth::rbac::Permission;
use crate::conversations::{Conversation, Direction, Message, SensitiveNote};
use crate::state::Core;
use crate::storage::{codec, tables};

#[derive(Debug, Clone, Serialize)]
struct Alert<'a> {
    #[serde(rename = "type")]
    frame: &'static str,
    kind: &'static str,
    conversation_id: u64,
    message_id: u64,
    customer_id: u64,
    assignee_id: Option<u64>,
    /// The first words of the message.
    excerpt: String,
    details: &'a serde_json::Value,
}

fn excerpt(text: &str) -> String {
    let mut out: String = text.chars().take(120).collect();
    if text.chars().count() > 120 {
        out.push('…');
    }
    out
}

fn send(
    core: &Core,
    conversation: &Conversation,
    message: &Message,
    kind: &'static str,
    details: serde_json::Value,
) {
    let alert = |frame| Alert {
        frame,
        kind,
        conversation_id: conversation.id,
        message_id: message.id,
        customer_id: conversation.customer_id,
        assignee_id: conversation.assignee_id,
        excerpt: excerpt(&message.text),
        details: &details,
    };
    core.hub
        .notify_permitted(Permission::RoutingMonitor, &alert("assist.alert"));
    let owner = match (&message.author, kind) {
        (crate::conversations::Author::Employee { employee_id }, "rude_reply") => {
            Some(*employee_id)
        }
        _ => conversation.assignee_id,
    };
    if let Some(owner) = owner {
        core.hub.notify_employee(owner, &alert("assist.hint"));
    }
}

/// Runs after a message's commit, before or beside its announcement.
pub fn after_message(core: &Core, conversation: &Conversation, message: &Message) {
    match message.direction {
        Direction::Inbound => {
            let turned_angry = message.emotion == Some(Emotion::Angry)
                && conversation.emotion.is_some_and(|e| {
                    e.emotion == Emotion::Angry && e.since_message_id == message.id
                });
            if turned_angry {
                send(
                    core,
                    conversation,
                    message,
                    "angry_customer",
                    json!({ "emotion": "angry", "priority": conversation.priority }),
                );
            }
            let access = core.access();
            let matches = core.sensitive.check(
                &message.text,
                Scope::Conversation {
                    team_id: conversation.team_id,
                    tree: &access.departments,
                },
            );
            if !matches.is_empty() {
                send(
                    core,
                    conversation,
                    message,
                    "sensitive_incoming",
                    json!({ "matches": matches }),
                );
                remember_flags(core, conversation, message, &matches);
            }
        }
        Direction::Outbound => {
            if let Some(rude) = &message.rude {
                send(
                    core,
                    conversation,
                    message,
                    "rude_reply",
                    json!({ "probability": rude.probability, "evidence": rude.evidence }),
                );
            }
        }
        Direction::Note | Direction::System => {}
    }
}

/// Keeps the flagged words on the customer's message, so supervisors who were not connected
/// see them later. Written after the message's own commit: the inbound path's write stays as it
/// was for the messages that flag nothing, which are nearly all.
fn remember_flags(
    core: &Core,
    conversation: &Conversation,
    message: &Message,
    matches: &[SensitiveMatch],
) {
    let notes: Vec<SensitiveNote> = matches.iter().map(Into::into).collect();
    let key = (message.conversation_id, message.id);
    let store = core.store.clone();
    let hub = core.hub.clone();
    let conversation = conversation.clone();
    let mut flagged = message.clone();
    flagged.sensitive = notes.clone();
    tokio::spawn(async move {
        let result = store
            .write(move |txn| {
                let mut table = txn.open_table(tables::MESSAGES)?;
                let stored = table.get(key)?.map(|v| codec::decode::<Message>(v.value()));
                if let Some(stored) = stored {
                    let mut stored = stored?;
                    stored.sensitive = notes.clone();
                    table.insert(key, codec::encode(&stored).as_slice())?;
                }
                Ok(())
            })
            .await;
        match result {
            // Consoles showing the message see its flags at once.
            Ok(()) => hub.publish(&crate::collaboration::hub::Event::MessageUpdated {
                conversation,
                message: flagged,
            }),
            Err(e) => {
                tracing::warn!(error = %e, "could not record the sensitive words of a customer's message")
            }
        }
    });
}
