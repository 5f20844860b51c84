//! The audit log: every security or administrative act, hash-chained.
//!
//! Each entry's hash covers the previous entry's hash and the entry's own content, so editing or
//! removing an entry breaks the chain from that point; `allhands audit verify` names the first
//! entry that does not check out. The head (last sequence number and hash) is kept in the meta
//! table and written in the same transaction as every append, so removing entries from the end
//! is detected too. Retention pruning removes old entries from the start and records the last
//! removed entry as the chain's anchor.
//!
//! Entries are appended inside the same write transaction as the change they describe: either
//! both are committed or neither.

pub mod export;

use redb::{ReadTransaction, ReadableTable};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::clock::Millis;
use crate::error::{AppError, AppResult};
use crate::storage::{Record, WriteTxn, codec, meta_get, meta_get_in_write, meta_set, tables};

const HEAD_KEY: &str = "audit_head";
const ANCHOR_KEY: &str = "audit_anchor";
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Who did something.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Actor {
    /// `employee`, `api_token`, `system` or `anonymous`.
    pub kind: String,
    pub employee_id: Option<u64>,
    /// The user name at the time (or the attempted user name for a failed login).
    pub name: String,
    pub token_id: Option<u64>,
    /// The client address ("" for the command line or the server itself).
    pub source: String,
}

impl Actor {
    pub fn system(what: &str) -> Actor {
        Actor {
            kind: "system".into(),
            employee_id: None,
            name: what.into(),
            token_id: None,
            source: String::new(),
        }
    }

    pub fn anonymous(attempted_name: &str, source: &str) -> Actor {
        Actor {
            kind: "anonymous".into(),
            employee_id: None,
            name: attempted_name.into(),
            token_id: None,
            source: source.into(),
        }
    }
}

/// What is recorded; the sequence number, time and chain fields are added on append.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub actor: Actor,
    /// A dotted action name, e.g. `auth.login`, `employee.created`.
    pub action: &'static str,
    /// What was acted on, e.g. `employee:12`.
    pub target: Option<String>,
    pub success: bool,
    /// What changed; never a secret.
    pub details: serde_json::Value,
}

impl AuditEvent {
    pub fn new(actor: &Actor, action: &'static str) -> AuditEvent {
        AuditEvent {
            actor: actor.clone(),
            action,
            target: None,
            success: true,
            details: serde_json::Value::Null,
        }
    }

    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }

    pub fn failed(mut self) -> Self {
        self.success = false;
        self
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AuditEntry {
    pub seq: u64,
    pub at: Millis,
    pub actor: Actor,
    pub action: String,
    pub target: Option<String>,
    pub success: bool,
    pub details: serde_json::Value,
    pub prev_hash: String,
    pub hash: String,
}

impl Record for AuditEntry {
    const KIND: &'static str = "audit entry";
}

/// The hashed content: everything but the hash itself, in a fixed field order.
#[derive(Serialize)]
struct Hashed<'a> {
    seq: u64,
    at: Millis,
    actor: &'a Actor,
    action: &'a str,
    target: &'a Option<String>,
    success: bool,
    details: &'a serde_json::Value,
    prev_hash: &'a str,
}

fn entry_hash(entry: &AuditEntry) -> String {
    let content = Hashed {
        seq: entry.seq,
        at: entry.at,
        actor: &entry.actor,
        action: &entry.action,
        target: &entry.target,
        success: entry.success,
        details: &entry.details,
        prev_hash: &entry.prev_hash,
    };
    let bytes = serde_json::to_vec(&content).expect("audit content serialises");
    hex::encode(Sha256::digest(bytes))
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct ChainPoint {
    seq: u64,
    hash: String,
}

fn read_point(bytes: Option<Vec<u8>>) -> AppResult<Option<ChainPoint>> {
    bytes
        .map(|b| {
            serde_json::from_slice(&b)
                .map_err(|e| AppError::internal(format!("damaged audit chain metadata: {e}")))
        })
        .transpose()
}

/// Appends an entry inside the caller's write transaction; returns its sequence number.
pub fn append(txn: &WriteTxn, at: Millis, event: AuditEvent) -> AppResult<u64> {
    let head = read_point(meta_get_in_write(txn, HEAD_KEY)?)?;
    let anchor = read_point(meta_get_in_write(txn, ANCHOR_KEY)?)?;
    let (seq, prev_hash) = match (head, anchor) {
        (Some(h), _) => (h.seq + 1, h.hash),
        (None, Some(a)) => (a.seq + 1, a.hash),
        (None, None) => (1, GENESIS.to_string()),
    };
    let mut entry = AuditEntry {
        seq,
        at,
        actor: event.actor,
        action: event.action.to_string(),
        target: event.target,
        success: event.success,
        details: event.details,
        prev_hash,
        hash: String::new(),
    };
    entry.hash = entry_hash(&entry);
    txn.open_table(tables::AUDIT)?
        .insert(seq, codec::encode(&entry).as_slice())?;
    let head = ChainPoint {
        seq,
        hash: entry.hash,
    };
    meta_set(txn, HEAD_KEY, &serde_json::to_vec(&head)?)?;
    Ok(seq)
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ChainProblem {
    pub seq: u64,
    pub problem: String,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct VerifyReport {
    pub ok: bool,
    pub entries_checked: u64,
    /// Entries before this were removed by retention; the chain starts after it.
    pub anchored_after: Option<u64>,
    pub first_problem: Option<ChainProblem>,
}

/// Walks the chain from the anchor to the head and reports the first entry that does not check out.
pub fn verify(txn: &ReadTransaction) -> AppResult<VerifyReport> {
    let head = read_point(meta_get(txn, HEAD_KEY)?)?;
    let anchor = read_point(meta_get(txn, ANCHOR_KEY)?)?;
    let table = txn.open_table(tables::AUDIT)?;
    let (mut expected_seq, mut prev_hash) = match &anchor {
        Some(a) => (a.seq + 1, a.hash.clone()),
        None => (1, GENESIS.to_string()),
    };
    let mut checked = 0;
    let fail = |seq: u64, problem: String, checked: u64| VerifyReport {
        ok: false,
        entries_checked: checked,
        anchored_after: anchor.as_ref().map(|a| a.seq),
        first_problem: Some(ChainProblem { seq, problem }),
    };
    for row in table.iter()? {
        let (key, value) = row?;
        let seq = key.value();
        if seq < expected_seq {
            return Ok(fail(
                seq,
                format!(
                    "entry {seq} is older than the chain's start (after {})",
                    expected_seq - 1
                ),
                checked,
            ));
        }
        if seq > expected_seq {
            return Ok(fail(
                expected_seq,
                format!("entry {expected_seq} is missing (removed)"),
                checked,
            ));
        }
        let entry: AuditEntry = match codec::decode(value.value()) {
            Ok(entry) => entry,
            Err(_) => {
                return Ok(fail(
                    seq,
                    format!("entry {seq} is unreadable (its bytes were altered)"),
                    checked,
                ));
            }
        };
        if entry.seq != seq || entry.prev_hash != prev_hash {
            return Ok(fail(
                seq,
                format!("entry {seq} does not link to the entry before it (altered)"),
                checked,
            ));
        }
        if entry_hash(&entry) != entry.hash {
            return Ok(fail(
                seq,
                format!("entry {seq} was altered (its content does not match its hash)"),
                checked,
            ));
        }
        // Fields that decode to the same content (an unknown key, a renamed null) would not
        // change the hash; a stored value must also be exactly what its content encodes to.
        if codec::encode(&entry) != value.value() {
            return Ok(fail(
                seq,
                format!("entry {seq} was altered (its stored bytes differ from its content)"),
                checked,
            ));
        }
        prev_hash = entry.hash;
        expected_seq = seq + 1;
        checked += 1;
    }
    match head {
        Some(h) if h.seq >= expected_seq => {
            return Ok(fail(
                expected_seq,
                format!(
                    "entries {expected_seq} to {} are missing (removed from the end)",
                    h.seq
                ),
                checked,
            ));
        }
        Some(h) if h.seq + 1 == expected_seq && h.hash != prev_hash => {
            return Ok(fail(
                h.seq,
                format!(
                    "entry {} does not match the recorded chain head (altered)",
                    h.seq
                ),
                checked,
            ));
        }
        Some(h) if h.seq + 1 < expected_seq => {
            return Ok(fail(
                h.seq + 1,
                format!(
                    "entry {} comes after the recorded chain head (added outside the server)",
                    h.seq + 1
                ),
                checked,
            ));
        }
        None if checked > 0 => {
            return Ok(fail(
                1,
                "the chain head record is missing (removed)".into(),
                checked,
            ));
        }
        _ => {}
    }
    Ok(VerifyReport {
        ok: true,
        entries_checked: checked,
        anchored_after: anchor.map(|a| a.seq),
        first_problem: None,
    })
}

/// Removes entries older than `before` (retention) and moves the anchor; returns how many.
pub fn prune(txn: &WriteTxn, before: Millis) -> AppResult<u64> {
    let mut table = txn.open_table(tables::AUDIT)?;
    let mut last_removed: Option<ChainPoint> = None;
    let mut removed = 0;
    // Leave at least the newest entry so the head always has a stored entry behind it.
    let newest = table.last()?.map(|(k, _)| k.value());
    loop {
        let Some((key, value)) = table.first()? else {
            break;
        };
        let seq = key.value();
        if Some(seq) == newest {
            break;
        }
        let entry: AuditEntry = codec::decode(value.value())?;
        drop((key, value));
        if entry.at >= before {
            break;
        }
        table.remove(seq)?;
        last_removed = Some(ChainPoint {
            seq,
            hash: entry.hash,
        });
        removed += 1;
    }
    drop(table);
    if let Some(anchor) = last_removed {
        meta_set(txn, ANCHOR_KEY, &serde_json::to_vec(&anchor)?)?;
    }
    Ok(removed)
}

/// Filters for reading the log.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Only entries by this user name (exact, case-insensitive).
    pub actor: Option<String>,
    /// Only this action, or actions starting with it when it ends with '.', e.g. `auth.`.
    pub action: Option<String>,
    /// Only entries whose target, action, actor or details contain this text.
    pub q: Option<String>,
    /// Inclusive lower bound, milliseconds since the epoch.
    pub from: Option<Millis>,
    /// Exclusive upper bound, milliseconds since the epoch.
    pub to: Option<Millis>,
    /// Only successful (true) or failed (false) acts.
    pub success: Option<bool>,
    /// Page backwards from this sequence number (exclusive); newest first.
    pub before_seq: Option<u64>,
    pub limit: Option<usize>,
    /// For exports: `csv` (default) or `json`.
    pub format: Option<String>,
}

impl AuditQuery {
    pub fn matches(&self, entry: &AuditEntry) -> bool {
        if let Some(actor) = &self.actor
            && !entry.actor.name.eq_ignore_ascii_case(actor)
        {
            return false;
        }
        if let Some(action) = &self.action {
            let hit = if action.ends_with('.') {
                entry.action.starts_with(action.as_str())
            } else {
                entry.action == *action
            };
            if !hit {
                return false;
            }
        }
        if self.from.is_some_and(|from| entry.at < from) || self.to.is_some_and(|to| entry.at >= to)
        {
            return false;
        }
        if self.success.is_some_and(|s| s != entry.success) {
            return false;
        }
        if let Some(q) = &self.q {
            let q = q.to_lowercase();
            let haystack = format!(
                "{} {} {} {}",
                entry.action,
                entry.actor.name,
                entry.target.as_deref().unwrap_or(""),
                entry.details
            )
            .to_lowercase();
            if !haystack.contains(&q) {
                return false;
            }
        }
        true
    }
}

/// Newest-first entries matching `query`, at most `limit`.
pub fn search(
    txn: &ReadTransaction,
    query: &AuditQuery,
    limit: usize,
) -> AppResult<Vec<AuditEntry>> {
    let table = txn.open_table(tables::AUDIT)?;
    let upper = query.before_seq.unwrap_or(u64::MAX);
    let mut out = Vec::new();
    for row in table.range(..upper)?.rev() {
        let (_, value) = row?;
        let entry: AuditEntry = codec::decode(value.value())?;
        // Newest first: once past the lower time bound nothing older can match.
        if query.from.is_some_and(|from| entry.at < from) {
            break;
        }
        if query.matches(&entry) {
            out.push(entry);
            if out.len() >= limit {
                break;
            }
        }
    }
    Ok(out)
}

/// All matching entries in chain order, for export.
pub fn for_each_matching(
    txn: &ReadTransaction,
    query: &AuditQuery,
    mut visit: impl FnMut(&AuditEntry) -> AppResult<()>,
) -> AppResult<u64> {
    let table = txn.open_table(tables::AUDIT)?;
    let mut count = 0;
    for row in table.iter()? {
        let (_, value) = row?;
        let entry: AuditEntry = codec::decode(value.value())?;
        if query.matches(&entry) {
            visit(&entry)?;
            count += 1;
        }
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use redb::{Database, ReadableDatabase};

    fn store() -> (tempfile::TempDir, Database) {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(dir.path().join("a.redb")).unwrap();
        crate::storage::migrations::run(&db).unwrap();
        (dir, db)
    }

    fn add(db: &Database, n: u64, at: Millis) {
        let txn = db.begin_write().unwrap();
        for i in 0..n {
            let event =
                AuditEvent::new(&Actor::system("test"), "test.event").target(format!("thing:{i}"));
            append(&crate::storage::WriteTxn::new(&txn), at + i as i64, event).unwrap();
        }
        txn.commit().unwrap();
    }

    fn tamper(db: &Database, seq: u64, edit: impl Fn(&mut Vec<u8>)) {
        let txn = db.begin_write().unwrap();
        {
            let mut table = txn.open_table(tables::AUDIT).unwrap();
            let mut bytes = table.get(seq).unwrap().unwrap().value().to_vec();
            edit(&mut bytes);
            table.insert(seq, bytes.as_slice()).unwrap();
        }
        txn.commit().unwrap();
    }

    #[test]
    fn an_intact_chain_verifies() {
        let (_d, db) = store();
        add(&db, 10, 1000);
        let report = verify(&db.begin_read().unwrap()).unwrap();
        assert!(report.ok, "{report:?}");
        assert_eq!(report.entries_checked, 10);
    }

    #[test]
    fn an_edited_entry_is_named() {
        let (_d, db) = store();
        add(&db, 10, 1000);
        tamper(&db, 4, |bytes| {
            let text = String::from_utf8(bytes.clone())
                .unwrap()
                .replace("thing:3", "thing:9");
            *bytes = text.into_bytes();
        });
        let report = verify(&db.begin_read().unwrap()).unwrap();
        assert_eq!(report.first_problem.unwrap().seq, 4);
        tamper(&db, 2, |bytes| bytes[5] ^= 0xff);
        let report = verify(&db.begin_read().unwrap()).unwrap();
        assert_eq!(report.first_problem.unwrap().seq, 2);
    }

    #[test]
    fn removed_entries_are_named_in_the_middle_and_at_the_end() {
        let (_d, db) = store();
        add(&db, 10, 1000);
        let txn = db.begin_write().unwrap();
        txn.open_table(tables::AUDIT).unwrap().remove(10).unwrap();
        txn.commit().unwrap();
        let report = verify(&db.begin_read().unwrap()).unwrap();
        assert_eq!(report.first_problem.unwrap().seq, 10);
        let txn = db.begin_write().unwrap();
        txn.open_table(tables::AUDIT).unwrap().remove(5).unwrap();
        txn.commit().unwrap();
        let report = verify(&db.begin_read().unwrap()).unwrap();
        assert_eq!(report.first_problem.unwrap().seq, 5);
    }

    #[test]
    fn pruning_keeps_the_chain_verifiable() {
        let (_d, db) = store();
        add(&db, 5, 1000);
        add(&db, 5, 9000);
        let txn = db.begin_write().unwrap();
        assert_eq!(
            prune(&crate::storage::WriteTxn::new(&txn), 5000).unwrap(),
            5
        );
        append(
            &crate::storage::WriteTxn::new(&txn),
            10_000,
            AuditEvent::new(&Actor::system("retention"), "audit.pruned"),
        )
        .unwrap();
        txn.commit().unwrap();
        let report = verify(&db.begin_read().unwrap()).unwrap();
        assert!(report.ok, "{report:?}");
        assert_eq!(report.anchored_after, Some(5));
        assert_eq!(report.entries_checked, 6);
    }

    #[test]
    fn search_filters_newest_first() {
        let (_d, db) = store();
        add(&db, 30, 1000);
        let txn = db.begin_read().unwrap();
        let q = AuditQuery {
            q: Some("thing:2".into()),
            ..Default::default()
        };
        let found = search(&txn, &q, 5).unwrap();
        assert_eq!(found.len(), 5);
        assert!(found[0].seq > found[1].seq);
        let page = search(
            &txn,
            &AuditQuery {
                before_seq: Some(11),
                ..Default::default()
            },
            100,
        )
        .unwrap();
        assert_eq!(page.len(), 10);
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;
    use redb::{Database, ReadableDatabase};

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// Whatever single byte of whichever entry is changed, verification fails and names
        /// that entry.
        #[test]
        fn any_edited_byte_is_found_at_its_entry(entries in 2u64..12, pick in any::<u64>(), offset in any::<usize>(), flip in 1u8..=255) {
            let dir = tempfile::tempdir().unwrap();
            let db = Database::create(dir.path().join("p.redb")).unwrap();
            crate::storage::migrations::run(&db).unwrap();
            let txn = db.begin_write().unwrap();
            for i in 0..entries {
                let event = AuditEvent::new(&Actor::system("prop"), "prop.event").target(format!("t:{i}")).details(serde_json::json!({ "i": i }));
                append(&crate::storage::WriteTxn::new(&txn), 1000 + i as i64, event).unwrap();
            }
            txn.commit().unwrap();
            let seq = 1 + pick % entries;
            let txn = db.begin_write().unwrap();
            {
                let mut table = txn.open_table(tables::AUDIT).unwrap();
                let mut bytes = table.get(seq).unwrap().unwrap().value().to_vec();
                let at = offset % bytes.len();
                bytes[at] ^= flip;
                table.insert(seq, bytes.as_slice()).unwrap();
            }
            txn.commit().unwrap();
            let report = verify(&db.begin_read().unwrap()).unwrap();
            prop_assert!(!report.ok);
            prop_assert_eq!(report.first_problem.unwrap().seq, seq);
        }
    }
}

#[cfg(test)]
mod head_tests {
    use super::*;
    use redb::{Database, ReadableDatabase};

    #[test]
    fn an_entry_appended_behind_the_servers_back_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(dir.path().join("h.redb")).unwrap();
        crate::storage::migrations::run(&db).unwrap();
        let txn = db.begin_write().unwrap();
        append(
            &crate::storage::WriteTxn::new(&txn),
            1,
            AuditEvent::new(&Actor::system("t"), "t.one"),
        )
        .unwrap();
        append(
            &crate::storage::WriteTxn::new(&txn),
            2,
            AuditEvent::new(&Actor::system("t"), "t.two"),
        )
        .unwrap();
        let head = meta_get_in_write(&crate::storage::WriteTxn::new(&txn), HEAD_KEY)
            .unwrap()
            .unwrap();
        append(
            &crate::storage::WriteTxn::new(&txn),
            3,
            AuditEvent::new(&Actor::system("t"), "t.forged"),
        )
        .unwrap();
        // Put the head back as it was before the third entry.
        meta_set(&crate::storage::WriteTxn::new(&txn), HEAD_KEY, &head).unwrap();
        txn.commit().unwrap();
        let report = verify(&db.begin_read().unwrap()).unwrap();
        assert_eq!(report.first_problem.unwrap().seq, 3);
    }
}
