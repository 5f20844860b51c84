//! Secrets at rest: channel credentials and signing secrets are sealed with ChaCha20-Poly1305
//! under a key kept in `<data_dir>/keys/secrets.key` (0600, generated on first start, carried by
//! backups). A copy of the store alone does not reveal them.

use std::path::Path;

use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};

use crate::error::{AppError, AppResult};

pub const KEY_FILE: &str = "keys/secrets.key";

#[derive(Clone)]
pub struct SecretBox {
    cipher: ChaCha20Poly1305,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(***)")
    }
}

impl SecretBox {
    /// Loads the key from the data directory, creating it on first start.
    pub fn open(data_dir: &Path) -> AppResult<SecretBox> {
        let path = data_dir.join(KEY_FILE);
        let key = match std::fs::read(&path) {
            Ok(bytes) if bytes.len() == 32 => bytes,
            Ok(_) => {
                return Err(AppError::internal(format!(
                    "{} is damaged (not 32 bytes)",
                    path.display()
                )));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key: [u8; 32] = rand::random();
                std::fs::create_dir_all(data_dir.join("keys"))?;
                crate::storage::write_private_file(&path, &key)?;
                key.to_vec()
            }
            Err(e) => {
                return Err(AppError::internal(format!(
                    "cannot read {}: {e}",
                    path.display()
                )));
            }
        };
        Ok(SecretBox {
            cipher: ChaCha20Poly1305::new(Key::from_slice(&key)),
        })
    }

    #[cfg(test)]
    pub fn with_key(key: [u8; 32]) -> SecretBox {
        SecretBox {
            cipher: ChaCha20Poly1305::new(Key::from_slice(&key)),
        }
    }

    /// `base64(nonce || ciphertext)`.
    pub fn seal(&self, plaintext: &[u8]) -> String {
        let nonce: [u8; 12] = rand::random();
        let sealed = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), plaintext)
            .expect("ChaCha20-Poly1305 sealing cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        base64::engine::general_purpose::STANDARD.encode(out)
    }

    pub fn unseal(&self, sealed: &str) -> AppResult<Vec<u8>> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(sealed)
            .map_err(|_| AppError::internal("a sealed secret is not base64"))?;
        if bytes.len() < 12 + 16 {
            return Err(AppError::internal("a sealed secret is too short"));
        }
        let (nonce, ciphertext) = bytes.split_at(12);
        self.cipher
            .decrypt(Nonce::from_slice(nonce), ciphertext)
            .map_err(|_| AppError::internal("a sealed secret does not open with this server's key (was keys/secrets.key replaced?)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_and_unseal_and_refuse_tampering() {
        let secrets = SecretBox::with_key([3; 32]);
        let sealed = secrets.seal(b"signing secret");
        assert!(!sealed.contains("signing"));
        assert_eq!(secrets.unseal(&sealed).unwrap(), b"signing secret");
        assert_ne!(
            secrets.seal(b"signing secret"),
            sealed,
            "a fresh nonce every time"
        );
        let mut bytes = base64::engine::general_purpose::STANDARD
            .decode(&sealed)
            .unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert!(
            secrets
                .unseal(&base64::engine::general_purpose::STANDARD.encode(bytes))
                .is_err()
        );
        assert!(SecretBox::with_key([4; 32]).unseal(&sealed).is_err());
        assert!(secrets.unseal("!!").is_err());
    }
}
