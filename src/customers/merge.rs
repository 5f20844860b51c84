//! Merging two customer profiles into one, and undoing it.
//!
//! A merge moves everything of the source profile (identities, contacts, tags, missing
//! attributes, conversations, events) to the target and leaves the source as an empty shell that
//! points at the target. What moved is kept in a merge record (and in the audit log), so the
//! merge can be undone exactly: the source gets back what was its own.

use std::collections::BTreeMap;

use redb::ReadableTable;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::audit::{self, AuditEvent};
use crate::auth::Caller;
use crate::auth::rbac::Permission;
use crate::clock::Millis;
use crate::conversations::Conversation;
use crate::customers::{Customer, load, save};
use crate::error::{AppError, AppResult};
use crate::state::Core;
use crate::storage::{Record, WriteTxn, codec, get_record, next_id, tables};

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct MergeRecord {
    pub id: u64,
    pub target_id: u64,
    pub source_id: u64,
    /// The source profile as it was before the merge.
    pub source_before: Customer,
    /// The target's contacts, tags and attributes as they were before the merge.
    pub target_before: Customer,
    pub conversation_ids: Vec<u64>,
    pub event_ids: Vec<u64>,
    pub merged_at: Millis,
    pub undone_at: Option<Millis>,
}

impl Record for MergeRecord {
    const KIND: &'static str = "customer merge";
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeRequest {
    /// The customer whose profile is folded into this one.
    pub source_id: u64,
}

fn move_conversations(txn: &WriteTxn, from: u64, to: u64, ids: &[u64]) -> AppResult<()> {
    let mut index = txn.open_table(tables::CUSTOMER_CONVERSATIONS)?;
    let mut conversations = txn.open_table(tables::CONVERSATIONS)?;
    for id in ids {
        index.remove((from, *id))?;
        index.insert((to, *id), ())?;
        let current: Option<Conversation> = get_record(&conversations, *id)?;
        if let Some(mut conversation) = current {
            conversation.customer_id = to;
            conversations.insert(*id, codec::encode(&conversation).as_slice())?;
        }
    }
    Ok(())
}

fn move_events(txn: &WriteTxn, from: u64, to: u64, ids: &[u64]) -> AppResult<()> {
    let mut events = txn.open_table(tables::CUSTOMER_EVENTS)?;
    for id in ids {
        let moved = events.remove((from, *id))?.map(|v| v.value().to_vec());
        if let Some(bytes) = moved {
            let mut event: crate::customers::CustomerEvent = codec::decode(&bytes)?;
            event.customer_id = to;
            events.insert((to, *id), codec::encode(&event).as_slice())?;
        }
    }
    Ok(())
}

fn point_identities(txn: &WriteTxn, customer: &Customer, to: u64) -> AppResult<()> {
    let mut index = txn.open_table(tables::IDENTITY_CUSTOMER)?;
    for identity in &customer.identities {
        index.insert(identity.key().as_str(), to)?;
    }
    Ok(())
}

pub async fn merge(
    core: &Core,
    caller: &Caller,
    target_id: u64,
    request: MergeRequest,
) -> AppResult<MergeRecord> {
    caller.require_everywhere(Permission::CustomersManage)?;
    let source_id = request.source_id;
    if source_id == target_id {
        return Err(AppError::field(
            "source_id",
            "a customer cannot be merged into itself",
        ));
    }
    let now = core.now();
    let actor = caller.actor.clone();
    core.store
        .write(move |txn| {
            let mut target = load(txn, target_id)?;
            let mut source = load(txn, source_id).map_err(|_| AppError::field("source_id", format!("customer {source_id} does not exist")))?;
            if target.merged_into.is_some() || source.merged_into.is_some() {
                return Err(AppError::conflict("one of these customers was already merged into another"));
            }
            let conversation_ids: Vec<u64> = {
                let index = txn.open_table(tables::CUSTOMER_CONVERSATIONS)?;
                index.range((source_id, 0)..=(source_id, u64::MAX))?.map(|r| r.map(|(k, _)| k.value().1)).collect::<Result<_, _>>()?
            };
            let event_ids: Vec<u64> = {
                let events = txn.open_table(tables::CUSTOMER_EVENTS)?;
                events.range((source_id, 0)..=(source_id, u64::MAX))?.map(|r| r.map(|(k, _)| k.value().1)).collect::<Result<_, _>>()?
            };
            let record = MergeRecord {
                id: next_id(txn, "customer_merge")?,
                target_id,
                source_id,
                source_before: source.clone(),
                target_before: target.clone(),
                conversation_ids: conversation_ids.clone(),
                event_ids: event_ids.clone(),
                merged_at: now,
                undone_at: None,
            };
            move_conversations(txn, source_id, target_id, &conversation_ids)?;
            move_events(txn, source_id, target_id, &event_ids)?;
            point_identities(txn, &source, target_id)?;
            for identity in source.identities.drain(..) {
                if !target.identities.contains(&identity) {
                    target.identities.push(identity);
                }
            }
            for email in source.emails.drain(..) {
                if !target.emails.iter().any(|e| e.eq_ignore_ascii_case(&email)) {
                    target.emails.push(email);
                }
            }
            for phone in source.phones.drain(..) {
                if !target.phones.contains(&phone) {
                    target.phones.push(phone);
                }
            }
            for tag in source.tags.drain(..) {
                if !target.tags.contains(&tag) {
                    target.tags.push(tag);
                }
            }
            for (key, value) in std::mem::take(&mut source.attributes) {
                target.attributes.entry(key).or_insert(value);
            }
            if target.name.is_empty() {
                target.name = source.name.clone();
            }
            if target.company.is_empty() {
                target.company = std::mem::take(&mut source.company);
            }
            if target.crm_id.is_none() {
                target.crm_id = source.crm_id.take();
            }
            target.updated_at = now;
            source.merged_into = Some(target_id);
            source.updated_at = now;
            save(txn, &target)?;
            save(txn, &source)?;
            txn.open_table(tables::CUSTOMER_MERGES)?.insert(record.id, codec::encode(&record).as_slice())?;
            audit::append(
                txn,
                now,
                AuditEvent::new(&actor, "customer.merged").target(format!("customer:{target_id}")).details(json!({
                    "merge_id": record.id,
                    "source_id": source_id,
                    "conversations": conversation_ids,
                    "events": event_ids,
                    "identities": record.source_before.identities.iter().map(|i| i.key()).collect::<Vec<_>>(),
                })),
            )?;
            Ok(record)
        })
        .await
}

/// Gives the source back exactly what was its own; anything added to either profile since the
/// merge stays with the target.
pub async fn undo(core: &Core, caller: &Caller, merge_id: u64) -> AppResult<MergeRecord> {
    caller.require_everywhere(Permission::CustomersManage)?;
    let now = core.now();
    let actor = caller.actor.clone();
    core.store
        .write(move |txn| {
            let mut record: MergeRecord =
                get_record(&txn.open_table(tables::CUSTOMER_MERGES)?, merge_id)?
                    .ok_or_else(|| AppError::not_found("customer merge"))?;
            if record.undone_at.is_some() {
                return Err(AppError::conflict("this merge was already undone"));
            }
            let mut target = load(txn, record.target_id)?;
            if target.merged_into.is_some() {
                return Err(AppError::conflict(
                    "the target was merged again since; undo that merge first",
                ));
            }
            let before = &record.source_before;
            move_conversations(
                txn,
                record.target_id,
                record.source_id,
                &record.conversation_ids,
            )?;
            move_events(txn, record.target_id, record.source_id, &record.event_ids)?;
            point_identities(txn, before, record.source_id)?;
            let kept = &record.target_before;
            target
                .identities
                .retain(|i| !before.identities.contains(i) || kept.identities.contains(i));
            target
                .emails
                .retain(|e| !before.emails.contains(e) || kept.emails.contains(e));
            target
                .phones
                .retain(|p| !before.phones.contains(p) || kept.phones.contains(p));
            target
                .tags
                .retain(|t| !before.tags.contains(t) || kept.tags.contains(t));
            let restored: BTreeMap<String, serde_json::Value> = target
                .attributes
                .iter()
                .filter(|(k, _)| {
                    !before.attributes.contains_key(*k) || kept.attributes.contains_key(*k)
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            target.attributes = restored;
            if kept.company.is_empty() && target.company == before.company {
                target.company.clear();
            }
            if kept.crm_id.is_none() && target.crm_id == before.crm_id {
                target.crm_id = None;
            }
            target.updated_at = now;
            let mut source = before.clone();
            source.merged_into = None;
            source.updated_at = now;
            save(txn, &target)?;
            save(txn, &source)?;
            record.undone_at = Some(now);
            txn.open_table(tables::CUSTOMER_MERGES)?
                .insert(record.id, codec::encode(&record).as_slice())?;
            audit::append(
                txn,
                now,
                AuditEvent::new(&actor, "customer.merge_undone")
                    .target(format!("customer:{}", record.target_id))
                    .details(json!({ "merge_id": record.id, "source_id": record.source_id })),
            )?;
            Ok(record)
        })
        .await
}

pub fn merges_of(txn: &redb::ReadTransaction, customer_id: u64) -> AppResult<Vec<MergeRecord>> {
    let all: Vec<MergeRecord> =
        crate::storage::all_records(&txn.open_table(tables::CUSTOMER_MERGES)?)?;
    Ok(all
        .into_iter()
        .filter(|m| m.target_id == customer_id || m.source_id == customer_id)
        .collect())
}
