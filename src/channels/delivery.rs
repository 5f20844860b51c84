//! Outbound delivery: the outbox, its worker, retries with backoff, and the dead-letter list.
//!
//! A reply is queued in the outbox in the same commit that stores it. The worker takes due
//! items in order, hands each to its channel's adapter, and records the outcome on the message
//! (sent, or failed with the reason). A temporary failure is retried later, each wait three
//! times the one before; a permanent failure, or too many attempts, moves the item to the
//! dead-letter list, where an administrator sees it and can send it again.

use std::sync::Arc;
use std::time::Duration;

use redb::{ReadTransaction, ReadableTable};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::audit::{self, AuditEvent};
use crate::auth::Caller;
use crate::auth::rbac::Permission;
use crate::channels::{self, Channel, ChannelKind};
use crate::clock::Millis;
use crate::collaboration::hub::Event;
use crate::conversations::{Conversation, DeliveryState, Message};
use crate::error::{AppError, AppResult};
use crate::state::Core;
use crate::storage::{Record, WriteTxn, all_records, codec, get_record, next_id, tables};

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct OutboxItem {
    pub id: u64,
    pub channel_id: u64,
    pub conversation_id: u64,
    pub message_id: u64,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub created_at: Millis,
}

impl Record for OutboxItem {
    const KIND: &'static str = "outbox item";
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct DeadLetter {
    pub item: OutboxItem,
    pub reason: String,
    pub failed_at: Millis,
}

impl Record for DeadLetter {
    const KIND: &'static str = "dead letter";
}

/// Queues a message for delivery, inside the write that stores it.
pub fn enqueue(txn: &WriteTxn, message: &Message, channel_id: u64, now: Millis) -> AppResult<()> {
    let item = OutboxItem {
        id: next_id(txn, "outbox")?,
        channel_id,
        conversation_id: message.conversation_id,
        message_id: message.id,
        attempts: 0,
        last_error: None,
        created_at: now,
    };
    txn.open_table(tables::OUTBOX)?.insert(
        (now.max(0) as u64, item.id),
        codec::encode(&item).as_slice(),
    )?;
    Ok(())
}

/// How one attempt went.
#[derive(Debug)]
pub enum Attempt {
    Delivered,
    /// Worth trying again later (network trouble, 5xx, 408, 429).
    Temporary(String),
    /// Trying again will not help (4xx, no address configured).
    Permanent(String),
    /// Not tried (the channel is disabled): wait without counting an attempt.
    Paused,
}

/// Waits between attempts: initial, 3x, 9x, ... at most an hour.
pub fn backoff(initial_secs: u64, attempts: u32) -> Duration {
    let factor = 3u64.saturating_pow(attempts.saturating_sub(1));
    Duration::from_secs(initial_secs.saturating_mul(factor).min(3600))
}

pub fn dead_letters(txn: &ReadTransaction) -> AppResult<Vec<DeadLetter>> {
    all_records(&txn.open_table(tables::DEAD_LETTERS)?)
}

/// Runs the outbox until the task is aborted.
pub async fn run(core: Arc<Core>) {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(core.config.delivery.timeout_secs))
        .user_agent(concat!("AllHands/", env!("CARGO_PKG_VERSION")))
        // A redirect would re-send the customer's message somewhere nobody configured.
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the HTTP client; outbound delivery is stopped");
            return;
        }
    };
    loop {
        let now = core.now();
        let due = core
            .store
            .read(move |txn| {
                let table = txn.open_table(tables::OUTBOX)?;
                let mut due = Vec::new();
                for row in table.range(..=(now.max(0) as u64, u64::MAX))?.take(32) {
                    let (key, value) = row?;
                    due.push((key.value(), codec::decode::<OutboxItem>(value.value()).ok()));
                }
                Ok(due)
            })
            .await;
        let due = match due {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the outbox");
                Vec::new()
            }
        };
        if due.is_empty() {
            tokio::select! {
                _ = core.outbox_ready.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            continue;
        }
        for (key, item) in due {
            let Some(item) = item else {
                // A damaged entry must not block everything behind it.
                tracing::error!(?key, "removing an unreadable outbox entry");
                let _ = core
                    .store
                    .write(move |txn| {
                        Ok(txn.open_table(tables::OUTBOX)?.remove(key).map(|_| ())?)
                    })
                    .await;
                continue;
            };
            let attempt = attempt(&core, &client, &item).await;
            if let Err(e) = record(&core, key, item, attempt).await {
                tracing::warn!(error = %e, "cannot record a delivery outcome");
            }
        }
    }
}

async fn attempt(core: &Core, client: &reqwest::Client, item: &OutboxItem) -> Attempt {
    let (channel_id, conversation_id, message_id) =
        (item.channel_id, item.conversation_id, item.message_id);
    let loaded = core
        .store
        .read(move |txn| {
            let channel = channels::get(txn, channel_id)?;
            let conversation = crate::conversations::service::get(txn, conversation_id)?;
            let message: Option<Message> = txn
                .open_table(tables::MESSAGES)?
                .get((conversation_id, message_id))?
                .map(|v| codec::decode(v.value()))
                .transpose()?;
            let customer = crate::customers::get(txn, conversation.customer_id)?;
            Ok((channel, conversation, message, customer))
        })
        .await;
    let (channel, conversation, message, customer) = match loaded {
        Ok((channel, conversation, Some(message), customer)) => {
            (channel, conversation, message, customer)
        }
        Ok(_) => return Attempt::Permanent("the message no longer exists".into()),
        Err(e) => return Attempt::Temporary(format!("cannot load the message: {}", e.message)),
    };
    if !channel.enabled {
        return Attempt::Paused;
    }
    match channel.kind {
        ChannelKind::Api => {
            send_webhook(
                core,
                client,
                &channel,
                item,
                &conversation,
                &message,
                &customer,
            )
            .await
        }
        ChannelKind::Email => {
            super::email::smtp::send(core, &channel, item, &conversation, &message, &customer).await
        }
        other => Attempt::Permanent(format!("{} channels cannot send yet", other.as_str())),
    }
}

async fn send_webhook(
    core: &Core,
    client: &reqwest::Client,
    channel: &Channel,
    item: &OutboxItem,
    conversation: &Conversation,
    message: &Message,
    customer: &crate::customers::Customer,
) -> Attempt {
    let url = channel.settings["webhook_url"].as_str().unwrap_or_default();
    if url.is_empty() {
        return Attempt::Permanent("the API channel has no webhook_url".into());
    }
    let secret = match channels::secrets(core, channel) {
        Ok(s) => s["signing_secret"].as_str().unwrap_or_default().to_string(),
        Err(e) => {
            tracing::error!(channel = channel.id, error = %e, "cannot unseal a channel secret");
            return Attempt::Permanent("the channel's secret cannot be read on this server".into());
        }
    };
    let identity_kind = format!("api:{}", channel.id);
    let external_id = conversation
        .reply_to
        .as_ref()
        .filter(|i| i.kind == identity_kind)
        .or_else(|| customer.identities.iter().find(|i| i.kind == identity_kind))
        .map(|i| i.value.clone());
    let body = json!({
        "event": "message.created",
        "delivery_id": item.id,
        "conversation": { "id": conversation.id, "status": conversation.status, "subject": conversation.subject },
        "customer": { "id": customer.id, "external_id": external_id },
        "message": { "id": message.id, "text": message.text, "created_at": message.created_at, "author": message.author },
    });
    let raw = serde_json::to_vec(&body).unwrap_or_default();
    let timestamp = (core.now() / 1000).to_string();
    let signature = super::api::sign(&secret, &timestamp, &raw);
    let sent = client
        .post(url)
        .header("Content-Type", "application/json")
        .header("X-AllHands-Event", "message.created")
        .header("X-AllHands-Delivery", item.id.to_string())
        .header(super::api::TIMESTAMP_HEADER, &timestamp)
        .header(super::api::SIGNATURE_HEADER, signature)
        .body(raw)
        .send()
        .await;
    match sent {
        Ok(response) if response.status().is_success() => Attempt::Delivered,
        Ok(response) => {
            let status = response.status().as_u16();
            if (300..400).contains(&status) {
                Attempt::Permanent(format!(
                    "the webhook answered {status}; redirects are not followed"
                ))
            } else if status == 408 || status == 429 || status >= 500 {
                Attempt::Temporary(format!("the webhook answered {status}"))
            } else {
                Attempt::Permanent(format!("the webhook answered {status}"))
            }
        }
        Err(e) => Attempt::Temporary(format!(
            "the webhook could not be reached: {}",
            e.without_url()
        )),
    }
}

async fn record(core: &Core, key: (u64, u64), item: OutboxItem, attempt: Attempt) -> AppResult<()> {
    let now = core.now();
    let initial = core.config.delivery.retry_initial_secs;
    let max_attempts = core.config.delivery.max_attempts.max(1);
    let outcome = core
        .store
        .write(move |txn| {
            let mut item = item.clone();
            txn.open_table(tables::OUTBOX)?.remove(key)?;
            if matches!(attempt, Attempt::Paused) {
                let due = now + 60_000;
                txn.open_table(tables::OUTBOX)?.insert(
                    (due.max(0) as u64, item.id),
                    codec::encode(&item).as_slice(),
                )?;
                return Ok(None);
            }
            item.attempts += 1;
            let (state, failure) = match &attempt {
                Attempt::Delivered => (DeliveryState::Sent, None),
                Attempt::Temporary(reason) if item.attempts < max_attempts => {
                    item.last_error = Some(reason.clone());
                    let due = now + backoff(initial, item.attempts).as_millis() as i64;
                    txn.open_table(tables::OUTBOX)?.insert(
                        (due.max(0) as u64, item.id),
                        codec::encode(&item).as_slice(),
                    )?;
                    (DeliveryState::Queued, Some(reason.clone()))
                }
                Attempt::Paused => unreachable!("handled above"),
                Attempt::Temporary(reason) | Attempt::Permanent(reason) => {
                    item.last_error = Some(reason.clone());
                    let dead = DeadLetter {
                        item: item.clone(),
                        reason: reason.clone(),
                        failed_at: now,
                    };
                    txn.open_table(tables::DEAD_LETTERS)?
                        .insert(item.id, codec::encode(&dead).as_slice())?;
                    (DeliveryState::Failed, Some(reason.clone()))
                }
            };
            let updated = update_delivery(
                txn,
                item.conversation_id,
                item.message_id,
                state,
                item.attempts,
                failure,
                now,
            )?;
            let conversation: Option<Conversation> = get_record(
                &txn.open_table(tables::CONVERSATIONS)?,
                item.conversation_id,
            )?;
            Ok(updated.zip(conversation))
        })
        .await?;
    if let Some((message, conversation)) = outcome {
        core.hub.publish(&Event::MessageUpdated {
            conversation,
            message,
        });
    }
    Ok(())
}

pub(crate) fn update_delivery(
    txn: &WriteTxn,
    conversation_id: u64,
    message_id: u64,
    state: DeliveryState,
    attempts: u32,
    failure: Option<String>,
    now: Millis,
) -> AppResult<Option<Message>> {
    let mut table = txn.open_table(tables::MESSAGES)?;
    let current: Option<Message> = table
        .get((conversation_id, message_id))?
        .map(|v| codec::decode(v.value()))
        .transpose()?;
    let Some(mut message) = current else {
        return Ok(None);
    };
    if let Some(delivery) = message.delivery.as_mut() {
        // A bounce can come back before the send is recorded: it stays failed (a retry by an
        // administrator queues it first).
        if state == DeliveryState::Sent && delivery.state == DeliveryState::Failed {
            return Ok(Some(message));
        }
        delivery.state = state;
        delivery.attempts = attempts;
        delivery.failure = failure;
        delivery.updated_at = now;
    }
    table.insert(
        (conversation_id, message_id),
        codec::encode(&message).as_slice(),
    )?;
    Ok(Some(message))
}

/// Sends a dead letter again: back into the outbox, due now, attempts counted afresh.
pub async fn retry(core: &Core, caller: &Caller, id: u64) -> AppResult<OutboxItem> {
    caller.require_everywhere(Permission::ChannelsManage)?;
    let now = core.now();
    let actor = caller.actor.clone();
    let item = core
        .store
        .write(move |txn| {
            let dead: DeadLetter = get_record(&txn.open_table(tables::DEAD_LETTERS)?, id)?
                .ok_or_else(|| AppError::not_found("dead letter"))?;
            txn.open_table(tables::DEAD_LETTERS)?.remove(id)?;
            let mut item = dead.item.clone();
            item.attempts = 0;
            txn.open_table(tables::OUTBOX)?.insert(
                (now.max(0) as u64, item.id),
                codec::encode(&item).as_slice(),
            )?;
            let message = update_delivery(
                txn,
                item.conversation_id,
                item.message_id,
                DeliveryState::Queued,
                0,
                None,
                now,
            )?;
            let conversation: Option<Conversation> = get_record(
                &txn.open_table(tables::CONVERSATIONS)?,
                item.conversation_id,
            )?;
            audit::append(
                txn,
                now,
                AuditEvent::new(&actor, "delivery.retried")
                    .target(format!("message:{}", item.message_id))
                    .details(json!({ "reason": dead.reason })),
            )?;
            Ok((item, message.zip(conversation)))
        })
        .await?;
    let (item, changed) = item;
    if let Some((message, conversation)) = changed {
        core.hub.publish(&Event::MessageUpdated {
            conversation,
            message,
        });
    }
    core.outbox_ready.notify_one();
    Ok(item)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_threefold_and_is_capped() {
        assert_eq!(backoff(10, 1), Duration::from_secs(10));
        assert_eq!(backoff(10, 2), Duration::from_secs(30));
        assert_eq!(backoff(10, 3), Duration::from_secs(90));
        assert_eq!(backoff(10, 30), Duration::from_secs(3600));
        assert_eq!(backoff(1, 0), Duration::from_secs(1));
    }
}
