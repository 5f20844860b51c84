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
