//! Console sessions: an opaque random cookie whose SHA-256 is the key of the stored session.
//! The cookie is HttpOnly, Secure and SameSite=Strict; state-changing requests must also carry
//! the session's CSRF token in a header (see `http::extract`).

use redb::{ReadTransaction, ReadableTable};
use serde::{Deserialize, Serialize};

use crate::auth::{random_token, sha256};
use crate::clock::Millis;
use crate::error::AppResult;
use crate::storage::{Record, WriteTxn, codec, tables};

pub const COOKIE_NAME: &str = "allhands_session";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    pub employee_id: u64,
    pub created_at: Millis,
    pub last_seen_at: Millis,
    /// Absolute end, however active the session is.
    pub expires_at: Millis,
    pub csrf_token: String,
    pub source: String,
    #[serde(default)]
    pub user_agent: String,
}

impl Record for Session {
    const KIND: &'static str = "session";
}

impl Session {
    pub fn is_live(&self, now: Millis, idle_ms: i64) -> bool {
        now < self.expires_at && now < self.last_seen_at + idle_ms
    }
}

/// A new session's cookie value and record; stored by `store_session`.
pub fn new_session(
    employee_id: u64,
    now: Millis,
    max_ms: i64,
    source: &str,
    user_agent: &str,
) -> (String, [u8; 32], Session) {
    let cookie = random_token(32);
    let hash = sha256(cookie.as_bytes());
    let session = Session {
        employee_id,
        created_at: now,
        last_seen_at: now,
        expires_at: now + max_ms,
        csrf_token: random_token(24),
        source: source.to_string(),
        user_agent: user_agent.chars().take(200).collect(),
    };
    (cookie, hash, session)
}

pub fn store_session(txn: &WriteTxn, hash: &[u8; 32], session: &Session) -> AppResult<()> {
    txn.open_table(tables::SESSIONS)?
        .insert(hash.as_slice(), codec::encode(session).as_slice())?;
    txn.open_multimap_table(tables::EMPLOYEE_SESSIONS)?
        .insert(session.employee_id, hash.as_slice())?;
    Ok(())
}

pub fn find(txn: &ReadTransaction, hash: &[u8; 32]) -> AppResult<Option<Session>> {
    let table = txn.open_table(tables::SESSIONS)?;
    table
        .get(hash.as_slice())?
        .map(|v| codec::decode(v.value()))
        .transpose()
}

pub fn touch(txn: &WriteTxn, hash: &[u8; 32], now: Millis) -> AppResult<()> {
    let mut table = txn.open_table(tables::SESSIONS)?;
    let current: Option<Session> = table
        .get(hash.as_slice())?
        .map(|v| codec::decode(v.value()))
        .transpose()?;
    if let Some(mut session) = current {
        session.last_seen_at = now;
        table.insert(hash.as_slice(), codec::encode(&session).as_slice())?;
    }
    Ok(())
}

pub fn remove(txn: &WriteTxn, hash: &[u8; 32]) -> AppResult<bool> {
    let removed: Option<Session> = {
        let mut table = txn.open_table(tables::SESSIONS)?;
        let old = table.remove(hash.as_slice())?;
        old.map(|v| codec::decode(v.value())).transpose()?
    };
    if let Some(session) = &removed {
        txn.open_multimap_table(tables::EMPLOYEE_SESSIONS)?
            .remove(session.employee_id, hash.as_slice())?;
    }
    Ok(removed.is_some())
}

/// Ends every session of an employee; returns how many.
pub fn remove_all_for(txn: &WriteTxn, employee_id: u64) -> AppResult<u64> {
    let hashes: Vec<Vec<u8>> = {
        let mut index = txn.open_multimap_table(tables::EMPLOYEE_SESSIONS)?;
        index
            .remove_all(employee_id)?
            .map(|h| h.map(|h| h.value().to_vec()))
            .collect::<Result<_, _>>()?
    };
    let mut table = txn.open_table(tables::SESSIONS)?;
    for hash in &hashes {
        table.remove(hash.as_slice())?;
    }
    Ok(hashes.len() as u64)
}

/// Removes sessions past their end; returns how many.
pub fn remove_expired(txn: &WriteTxn, now: Millis, idle_ms: i64) -> AppResult<u64> {
    let expired: Vec<(Vec<u8>, u64)> = {
        let table = txn.open_table(tables::SESSIONS)?;
        let mut expired = Vec::new();
        for row in table.iter()? {
            let (key, value) = row?;
            match codec::decode::<Session>(value.value()) {
                Ok(s) if s.is_live(now, idle_ms) => {}
                Ok(s) => expired.push((key.value().to_vec(), s.employee_id)),
                Err(_) => expired.push((key.value().to_vec(), u64::MAX)),
            }
        }
        expired
    };
    let mut table = txn.open_table(tables::SESSIONS)?;
    let mut index = txn.open_multimap_table(tables::EMPLOYEE_SESSIONS)?;
    for (hash, employee) in &expired {
        table.remove(hash.as_slice())?;
        index.remove(*employee, hash.as_slice())?;
    }
    Ok(expired.len() as u64)
}

pub fn count_for(txn: &ReadTransaction, employee_id: u64) -> AppResult<u64> {
    let index = txn.open_multimap_table(tables::EMPLOYEE_SESSIONS)?;
    let mut count = 0;
    for hash in index.get(employee_id)? {
        hash?;
        count += 1;
    }
    Ok(count)
}

pub fn find_in_write(txn: &WriteTxn, hash: &[u8; 32]) -> AppResult<Option<Session>> {
    let table = txn.open_table(tables::SESSIONS)?;
    table
        .get(hash.as_slice())?
        .map(|v| codec::decode(v.value()))
        .transpose()
}
