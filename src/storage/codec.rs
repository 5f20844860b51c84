//! The value envelope: one format-version byte, then the record as JSON.
//!
//! JSON keeps ordinary evolution free (new optional fields decode with `#[serde(default)]`); a
//! reshaping the envelope cannot absorb bumps `Record::VERSION` and teaches `Record::upgrade` to
//! read the older body, so old rows are migrated as they are read and rewritten on their next
//! write. redb's `Value::from_bytes` cannot fail, so tables store raw bytes and decoding happens
//! here, where a damaged value becomes an error instead of a panic.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{AppError, AppResult};

pub trait Record: Serialize + DeserializeOwned {
    /// What this record is called in messages about damaged data.
    const KIND: &'static str;
    /// The format version written today.
    const VERSION: u8 = 1;

    /// Reads a body written with an older `version`.
    fn upgrade(version: u8, body: &[u8]) -> Result<Self, String> {
        let _ = body;
        Err(format!("unknown format version {version}"))
    }
}

pub fn encode<T: Record>(record: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    out.push(T::VERSION);
    // Serialising plain data structs to a Vec cannot fail.
    serde_json::to_writer(&mut out, record).expect("records serialise to JSON");
    out
}

pub fn decode<T: Record>(bytes: &[u8]) -> AppResult<T> {
    let (&version, body) = bytes
        .split_first()
        .ok_or_else(|| AppError::internal(format!("empty {} value", T::KIND)))?;
    if version == T::VERSION {
        serde_json::from_slice(body)
            .map_err(|e| AppError::internal(format!("damaged {} value: {e}", T::KIND)))
    } else if version < T::VERSION {
        T::upgrade(version, body)
            .map_err(|e| AppError::internal(format!("cannot upgrade {} value: {e}", T::KIND)))
    } else {
        Err(AppError::internal(format!(
            "{} value has format version {version}, newer than this binary's {}",
            T::KIND,
            T::VERSION
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct Old {
        name: String,
    }
    impl Record for Old {
        const KIND: &'static str = "thing";
    }

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct New {
        first: String,
        #[serde(default)]
        extra: u32,
    }
    impl Record for New {
        const KIND: &'static str = "thing";
        const VERSION: u8 = 2;
        fn upgrade(version: u8, body: &[u8]) -> Result<Self, String> {
            match version {
                1 => {
                    let old: Old = serde_json::from_slice(body).map_err(|e| e.to_string())?;
                    Ok(New {
                        first: old.name,
                        extra: 0,
                    })
                }
                v => Err(format!("unknown format version {v}")),
            }
        }
    }

    #[test]
    fn round_trip_and_upgrade_on_read() {
        let old = encode(&Old { name: "a".into() });
        assert_eq!(decode::<Old>(&old).unwrap(), Old { name: "a".into() });
        assert_eq!(
            decode::<New>(&old).unwrap(),
            New {
                first: "a".into(),
                extra: 0
            }
        );
        let new = encode(&New {
            first: "b".into(),
            extra: 3,
        });
        assert!(
            decode::<Old>(&new)
                .unwrap_err()
                .message
                .contains("internal")
        );
    }

    #[test]
    fn damaged_bytes_are_errors_not_panics() {
        assert!(decode::<Old>(&[]).is_err());
        assert!(decode::<Old>(&[1, b'{']).is_err());
        assert!(decode::<Old>(&[1, 0xff, 0xfe]).is_err());
    }
}
