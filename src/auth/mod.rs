//! Accounts: passwords, console sessions, API tokens, login throttling, roles and permissions.

pub mod password;
pub mod rbac;
pub mod service;
pub mod session;
pub mod throttle;
pub mod tokens;

use std::sync::Arc;

use base64::Engine;
use sha2::{Digest, Sha256};

use crate::audit::Actor;
use crate::auth::rbac::{Access, AccessIndex, Permission};
use crate::error::{AppError, AppResult};

/// A URL-safe random string of `bytes` random bytes.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Compares secrets in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// How a caller authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A console session; `session_hash` identifies it for logout.
    Session {
        session_hash: [u8; 32],
    },
    ApiToken {
        token_id: u64,
    },
}

/// An authenticated caller as the domain sees it: who, how, and what they may do.
#[derive(Debug, Clone)]
pub struct Caller {
    pub employee_id: u64,
    pub username: String,
    pub department_id: u64,
    pub must_change_password: bool,
    pub credential: Credential,
    pub access: Access,
    pub index: Arc<AccessIndex>,
    pub actor: Actor,
}

impl Caller {
    pub fn require(&self, permission: Permission) -> AppResult<()> {
        if self.access.has(permission) {
            Ok(())
        } else {
            Err(AppError::forbidden(format!(
                "this needs the {} permission",
                permission.as_str()
            )))
        }
    }

    /// Requires `permission` organisation-wide (roles, positions and tokens are not per department).
    pub fn require_everywhere(&self, permission: Permission) -> AppResult<()> {
        self.require(permission)?;
        if self.access.is_everywhere(permission) {
            Ok(())
        } else {
            Err(AppError::forbidden(format!(
                "this needs the {} permission organisation-wide, not only for some departments",
                permission.as_str()
            )))
        }
    }

    /// Refuses to act on an account that can do something the caller cannot do where that
    /// account works: a supervisor must not reset an administrator's password and sign in as them.
    pub fn require_dominates(&self, target: &Access, department: u64) -> AppResult<()> {
        let tree = &self.index.departments;
        match target
            .permissions
            .keys()
            .find(|p| !self.access.allows_in(**p, department, tree))
        {
            None => Ok(()),
            Some(p) => Err(AppError::forbidden(format!(
                "that account holds {}, which you do not; only someone who holds everything it holds may manage it",
                p.as_str()
            ))),
        }
    }

    /// Requires `permission` where it applies to something in `department`.
    pub fn require_in(&self, permission: Permission, department: u64) -> AppResult<()> {
        if self
            .access
            .allows_in(permission, department, &self.index.departments)
        {
            Ok(())
        } else if self.access.has(permission) {
            Err(AppError::forbidden(format!(
                "your {} permission does not reach department {department}",
                permission.as_str()
            )))
        } else {
            Err(AppError::forbidden(format!(
                "this needs the {} permission",
                permission.as_str()
            )))
        }
    }
}
