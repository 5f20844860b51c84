//! API tokens for integrations: scoped to named permissions, expiring, revocable, stored hashed.
//! A token acts as the employee who issued it, narrowed to its scopes; it never sees more than
//! its owner could.

use redb::ReadTransaction;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::auth::rbac::Permission;
use crate::auth::{random_token, sha256};
use crate::clock::Millis;
use crate::error::{AppError, AppResult};
use crate::storage::{Record, WriteTxn, codec, next_id, tables};

pub const TOKEN_PREFIX: &str = "ah_";

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ApiToken {
    pub id: u64,
    pub name: String,
    pub owner_id: u64,
    pub scopes: Vec<Permission>,
    /// The first characters of the secret, to tell tokens apart in lists.
    pub prefix: String,
    pub created_at: Millis,
    pub expires_at: Millis,
    pub revoked_at: Option<Millis>,
    pub last_used_at: Option<Millis>,
}

impl Record for ApiToken {
    const KIND: &'static str = "API token";
}

impl ApiToken {
    pub fn is_usable(&self, now: Millis) -> bool {
        self.revoked_at.is_none() && now < self.expires_at
    }
}

/// A fresh secret and its hash; the secret is shown once and never stored.
pub fn new_secret() -> (String, [u8; 32]) {
    let secret = format!("{TOKEN_PREFIX}{}", random_token(32));
    let hash = sha256(secret.as_bytes());
    (secret, hash)
}

pub fn insert(txn: &WriteTxn, mut token: ApiToken, hash: &[u8; 32]) -> AppResult<ApiToken> {
    token.id = next_id(txn, "api_token")?;
    txn.open_table(tables::API_TOKENS)?
        .insert(token.id, codec::encode(&token).as_slice())?;
    txn.open_table(tables::TOKEN_HASHES)?
        .insert(hash.as_slice(), token.id)?;
    Ok(token)
}

pub fn find_by_secret(txn: &ReadTransaction, secret: &str) -> AppResult<Option<ApiToken>> {
    if !secret.starts_with(TOKEN_PREFIX) || secret.len() > 128 {
        return Ok(None);
    }
    let hash = sha256(secret.as_bytes());
    let id = match txn.open_table(tables::TOKEN_HASHES)?.get(hash.as_slice())? {
        Some(id) => id.value(),
        None => return Ok(None),
    };
    get(txn, id)
}

pub fn get(txn: &ReadTransaction, id: u64) -> AppResult<Option<ApiToken>> {
    crate::storage::get_record(&txn.open_table(tables::API_TOKENS)?, id)
}

pub fn list(txn: &ReadTransaction) -> AppResult<Vec<ApiToken>> {
    crate::storage::all_records(&txn.open_table(tables::API_TOKENS)?)
}

pub fn update(txn: &WriteTxn, id: u64, change: impl FnOnce(&mut ApiToken)) -> AppResult<ApiToken> {
    let mut table = txn.open_table(tables::API_TOKENS)?;
    let mut token: ApiToken =
        crate::storage::get_record(&table, id)?.ok_or_else(|| AppError::not_found("API token"))?;
    change(&mut token);
    table.insert(id, codec::encode(&token).as_slice())?;
    Ok(token)
}
