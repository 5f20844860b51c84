//! Password hashing (argon2id, PHC strings) and the password policy.
//!
//! Hashing is deliberately slow; callers run it on the blocking pool (`hash_async`,
//! `verify_async`), never on an async worker.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::config::AuthConfig;
use crate::error::{AppError, AppResult, ErrorCode};

#[derive(Debug, Clone)]
pub struct PasswordHashing {
    params: Params,
    min_length: usize,
    /// A hash of a random password, verified against when a user name does not exist so that
    /// the response time does not reveal which names exist.
    decoy: String,
    /// At most one hash per core at a time: each takes `argon2_memory_kib` of memory, and a
    /// burst of logins must queue rather than exhaust memory.
    slots: std::sync::Arc<tokio::sync::Semaphore>,
}

impl PasswordHashing {
    pub fn new(config: &AuthConfig) -> AppResult<Self> {
        let params = Params::new(
            config.argon2_memory_kib,
            config.argon2_iterations,
            config.argon2_parallelism,
            None,
        )
        .map_err(|e| AppError::internal(format!("invalid argon2 parameters: {e}")))?;
        let mut hashing = PasswordHashing {
            params,
            min_length: config.password_min_length,
            decoy: String::new(),
            slots: std::sync::Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(2),
            )),
        };
        hashing.decoy = hashing.hash(&crate::auth::random_token(24))?;
        Ok(hashing)
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    pub fn hash(&self, password: &str) -> AppResult<String> {
        let salt = SaltString::generate(&mut OsRng);
        self.argon2()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| AppError::internal(format!("password hashing failed: {e}")))
    }

    /// Checks a password against a stored PHC string; `None` verifies against the decoy.
    pub fn verify(&self, password: &str, stored: Option<&str>) -> bool {
        let stored = stored.unwrap_or(&self.decoy);
        let Ok(parsed) = PasswordHash::new(stored) else {
            return false;
        };
        // The parameters are taken from the stored hash, so older hashes keep verifying.
        self.argon2()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    }

    /// Whether a stored hash was made with other parameters than today's (rehash on next login).
    pub fn needs_rehash(&self, stored: &str) -> bool {
        PasswordHash::new(stored)
            .ok()
            .and_then(|h| Params::try_from(&h).ok())
            .is_none_or(|p| {
                p.m_cost() != self.params.m_cost()
                    || p.t_cost() != self.params.t_cost()
                    || p.p_cost() != self.params.p_cost()
            })
    }

    pub async fn hash_async(&self, password: String) -> AppResult<String> {
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|e| AppError::internal(e.to_string()))?;
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.hash(&password))
            .await
            .map_err(|e| AppError::internal(format!("hashing task failed: {e}")))?
    }

    pub async fn verify_async(&self, password: String, stored: Option<String>) -> bool {
        let Ok(_slot) = self.slots.acquire().await else {
            return false;
        };
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.verify(&password, stored.as_deref()))
            .await
            .unwrap_or(false)
    }

    /// The password policy: long enough, not too long, not the user name, not a well-known
    /// password, not one repeated character. Returns the reason a password is refused.
    pub fn check_policy(&self, password: &str, username: &str) -> AppResult<()> {
        let weak = |why: String| Err(AppError::new(ErrorCode::WeakPassword, why));
        let length = password.chars().count();
        if length < self.min_length {
            return weak(format!(
                "the password must have at least {} characters",
                self.min_length
            ));
        }
        if password.len() > 1024 {
            return weak("the password must have at most 1024 bytes".into());
        }
        let lower = password.to_lowercase();
        let name = username.to_lowercase();
        if name.chars().count() >= 3 && lower.contains(&name) {
            return weak("the password must not contain the user name".into());
        }
        let first = password.chars().next();
        if password.chars().all(|c| Some(c) == first) {
            return weak("the password must not be one repeated character".into());
        }
        let stripped: String = lower.chars().filter(|c| c.is_alphanumeric()).collect();
        if COMMON_PASSWORDS
            .iter()
            .any(|common| stripped == *common || lower == *common)
        {
            return weak("the password is on the list of commonly used passwords".into());
        }
        Ok(())
    }
}

/// Frequently used passwords of policy length or more (from public breach-frequency lists).
const COMMON_PASSWORDS: &[&str] = &[
    "123456789012",
    "1234567890123",
    "12345678901234",
    "123456123456",
    "123123123123",
    "111111111111",
    "000000000000",
    "qwertyuiopas",
    "qwertyuiop123",
    "qwerty123456",
    "1q2w3e4r5t6y",
    "1qaz2wsx3edc",
    "password1234",
    "password12345",
    "password123456",
    "passwordpassword",
    "iloveyou1234",
    "administrator",
    "administrator1",
    "admin1234567",
    "adminadmin123",
    "welcome12345",
    "welcome123456",
    "changeme1234",
    "letmein12345",
    "abcdefghijkl",
    "abc123456789",
    "a1b2c3d4e5f6",
    "zaq12wsxcde3",
    "football1234",
    "baseball1234",
    "sunshine1234",
    "princess1234",
    "superman1234",
    "trustno11234",
    "starwars1234",
    "whatever1234",
    "dragon123456",
    "monkey123456",
    "master123456",
    "qazwsxedcrfv",
    "asdfghjkl123",
    "zxcvbnm12345",
    "correcthorsebatterystaple",
    "woaini1314520",
    "woaini520520",
    "5201314520",
    "aa123456789",
    "qq123456789",
    "a123456789a",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn hashing() -> PasswordHashing {
        let config = AuthConfig {
            argon2_memory_kib: 1024,
            argon2_iterations: 1,
            ..AuthConfig::default()
        };
        PasswordHashing::new(&config).unwrap()
    }

    #[test]
    fn hash_and_verify() {
        let h = hashing();
        let stored = h.hash("a long enough passphrase").unwrap();
        assert!(stored.starts_with("$argon2id$"));
        assert!(h.verify("a long enough passphrase", Some(&stored)));
        assert!(!h.verify("a long enough passphrasE", Some(&stored)));
        assert!(!h.verify("anything", None));
        assert!(!h.verify("anything", Some("not a phc string")));
        assert!(!h.needs_rehash(&stored));
    }

    #[test]
    fn policy_refuses_weak_passwords() {
        let h = hashing();
        for (pw, user) in [
            ("short", "bob"),
            ("bobbybobby-12345", "bobby"),
            ("aaaaaaaaaaaaaaa", "x"),
            ("Password1234", "x"),
            ("administrator", "x"),
        ] {
            let err = h.check_policy(pw, user).unwrap_err();
            assert_eq!(err.code, ErrorCode::WeakPassword, "{pw}");
        }
        h.check_policy("Blue-kettle-on-7-stones", "bob").unwrap();
        h.check_policy("蓝色水壶在七块石头上面放着", "bob").unwrap();
    }
}
