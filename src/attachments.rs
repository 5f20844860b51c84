//! Files attached to messages: checked (size, type sniffed from the content, allowed types),
//! then stored in the store itself, in chunks, in the same write as the message that carries
//! them. Keeping the bytes in redb makes an attachment exactly as durable as its message, and
//! puts it in every backup and under `db verify` without a second storage to keep in step.
//!
//! Files uploaded before the message that sends them (the console's and the widget's uploads)
//! wait unbound; binding checks that whoever sends them uploaded them. Unbound files are removed
//! after a day.

use redb::{ReadTransaction, ReadableTable};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::clock::Millis;
use crate::config::AttachmentsConfig;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::storage::{Record, WriteTxn, codec, get_record, next_id, tables};

/// Bytes per stored chunk: downloads stream chunk by chunk, and no row is huge.
const CHUNK_BYTES: usize = 256 * 1024;
/// Unbound uploads older than this are removed.
pub const UNBOUND_TTL_MS: Millis = 24 * 3600 * 1000;

/// Who put a file into AllHands; only they may send an unbound upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Owner {
    Employee {
        employee_id: u64,
    },
    Customer {
        customer_id: u64,
    },
    /// Arrived inside a channel's message (an e-mail's attachments).
    Channel {
        channel_id: u64,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Attachment {
    pub id: u64,
    pub filename: String,
    /// The type found in the content (or the declared one for text), never just the caller's word.
    pub content_type: String,
    pub size: u64,
    /// Hex SHA-256 of the content.
    pub sha256: String,
    pub owner: Owner,
    /// Set once a message carries the file.
    pub conversation_id: Option<u64>,
    pub message_id: Option<u64>,
    pub created_at: Millis,
}

impl Record for Attachment {
    const KIND: &'static str = "attachment";
}

/// What a message shows of each of its files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AttachmentRef {
    pub id: u64,
    pub filename: String,
    pub content_type: String,
    pub size: u64,
}

impl From<&Attachment> for AttachmentRef {
    fn from(a: &Attachment) -> Self {
        AttachmentRef {
            id: a.id,
            filename: a.filename.clone(),
            content_type: a.content_type.clone(),
            size: a.size,
        }
    }
}

/// A file that passed the checks, ready to be stored.
#[derive(Debug, Clone)]
pub struct CheckedFile {
    pub filename: String,
    pub content_type: String,
    pub bytes: bytes::Bytes,
    pub sha256: String,
}

/// Types a file's content can never be accepted as, whatever the configuration says.
const EXECUTABLE_TYPES: &[&str] = &[
    "application/vnd.microsoft.portable-executable",
    "application/x-executable",
    "application/x-mach-binary",
    "application/x-msdownload",
    "application/x-sharedlib",
    "application/x-elf",
    "application/x-coff",
    "application/vnd.android.dex",
    "application/x-shockwave-flash",
    "application/java",
];

/// Checks a file: its size, its type as found in the content, and the allowed list.
pub fn check(
    limits: &AttachmentsConfig,
    filename: &str,
    declared_type: Option<&str>,
    bytes: bytes::Bytes,
) -> AppResult<CheckedFile> {
    if bytes.is_empty() {
        return Err(AppError::field("file", "is empty"));
    }
    if bytes.len() as u64 > limits.max_bytes {
        return Err(AppError::new(
            ErrorCode::PayloadTooLarge,
            format!("the file exceeds {} bytes", limits.max_bytes),
        ));
    }
    let filename = clean_filename(filename);
    let content_type = sniff(&bytes, declared_type);
    if EXECUTABLE_TYPES.contains(&content_type.as_str()) || !allowed(limits, &content_type) {
        return Err(AppError::new(
            ErrorCode::UnsupportedType,
            format!("files of type {content_type} are not accepted"),
        ));
    }
    let sha256 = hex::encode(Sha256::digest(&bytes));
    Ok(CheckedFile {
        filename,
        content_type,
        bytes,
        sha256,
    })
}

/// The content's type: magic numbers first; text is recognised as valid UTF-8 without control
/// bytes and keeps a declared `text/*` subtype (csv, calendar...) but never becomes HTML or
/// anything a browser would run.
pub fn sniff(bytes: &[u8], declared_type: Option<&str>) -> String {
    if let Some(kind) = infer::get(bytes)
        // HTML, XML and scripts are kept, but as text: never served as something that runs.
        && kind.matcher_type() != infer::MatcherType::Text
    {
        return kind.mime_type().to_string();
    }
    let looks_like_text = std::str::from_utf8(bytes).is_ok()
        && !bytes
            .iter()
            .any(|b| *b == 0 || (*b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0c)));
    if looks_like_text {
        let declared = declared_type
            .and_then(|d| d.split(';').next())
            .map(|d| d.trim().to_ascii_lowercase())
            .unwrap_or_default();
        return match declared.as_str() {
            "text/csv" | "text/calendar" | "text/markdown" | "text/vcard" | "application/json" => {
                declared
            }
            _ => "text/plain".to_string(),
        };
    }
    "application/octet-stream".to_string()
}

fn allowed(limits: &AttachmentsConfig, content_type: &str) -> bool {
    limits.allowed_types.iter().any(|pattern| {
        let pattern = pattern.trim().to_ascii_lowercase();
        match pattern.strip_suffix("/*") {
            Some(major) => content_type
                .split('/')
                .next()
                .is_some_and(|m| m.eq_ignore_ascii_case(major)),
            None => pattern == content_type || pattern == "*/*" || pattern == "*",
        }
    })
}

/// A file name safe to show and to put in a Content-Disposition header: the last path
/// component, without control characters, at most 200 characters.
pub fn clean_filename(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last
        .chars()
        .filter(|c| !c.is_control() && *c != '"')
        .take(200)
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.').to_string();
    if cleaned.is_empty() {
        "file".to_string()
    } else {
        cleaned
    }
}

/// Stores a checked file, unbound, inside the caller's write.
pub fn insert(
    txn: &WriteTxn,
    file: &CheckedFile,
    owner: Owner,
    now: Millis,
) -> AppResult<Attachment> {
    let attachment = Attachment {
        id: next_id(txn, "attachment")?,
        filename: file.filename.clone(),
        content_type: file.content_type.clone(),
        size: file.bytes.len() as u64,
        sha256: file.sha256.clone(),
        owner,
        conversation_id: None,
        message_id: None,
        created_at: now,
    };
    txn.open_table(tables::ATTACHMENTS)?
        .insert(attachment.id, codec::encode(&attachment).as_slice())?;
    let mut chunks = txn.open_table(tables::ATTACHMENT_CHUNKS)?;
    for (n, chunk) in file.bytes.chunks(CHUNK_BYTES).enumerate() {
        chunks.insert((attachment.id, n as u32), chunk)?;
    }
    txn.open_table(tables::UNBOUND_ATTACHMENTS)?
        .insert((now.max(0) as u64, attachment.id), ())?;
    Ok(attachment)
}

/// Attaches files to a message inside its write. Each must exist, be unbound, and belong to
/// `owner` (nobody sends someone else's upload).
pub fn bind(
    txn: &WriteTxn,
    ids: &[u64],
    owner: &Owner,
    conversation_id: u64,
    message_id: u64,
) -> AppResult<Vec<AttachmentRef>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    if ids.len() > 20 {
        return Err(AppError::field(
            "attachments",
            "at most 20 files per message",
        ));
    }
    let mut table = txn.open_table(tables::ATTACHMENTS)?;
    let mut unbound = txn.open_table(tables::UNBOUND_ATTACHMENTS)?;
    let mut refs = Vec::with_capacity(ids.len());
    for id in ids {
        let mut attachment: Attachment = get_record(&table, *id)?
            .filter(|a: &Attachment| &a.owner == owner)
            .ok_or_else(|| AppError::not_found("attachment"))?;
        if attachment.message_id.is_some() {
            return Err(AppError::conflict(format!(
                "attachment {id} is already part of a message"
            )));
        }
        unbound.remove((attachment.created_at.max(0) as u64, attachment.id))?;
        attachment.conversation_id = Some(conversation_id);
        attachment.message_id = Some(message_id);
        table.insert(attachment.id, codec::encode(&attachment).as_slice())?;
        refs.push(AttachmentRef::from(&attachment));
    }
    Ok(refs)
}

pub fn get(txn: &ReadTransaction, id: u64) -> AppResult<Attachment> {
    get_record(&txn.open_table(tables::ATTACHMENTS)?, id)?
        .ok_or_else(|| AppError::not_found("attachment"))
}

/// The file's content, checked against its recorded digest.
pub fn content(txn: &ReadTransaction, attachment: &Attachment) -> AppResult<Vec<u8>> {
    let chunks = txn.open_table(tables::ATTACHMENT_CHUNKS)?;
    let mut out = Vec::with_capacity(attachment.size as usize);
    for row in chunks.range((attachment.id, 0)..=(attachment.id, u32::MAX))? {
        out.extend_from_slice(row?.1.value());
    }
    if hex::encode(Sha256::digest(&out)) != attachment.sha256 {
        return Err(AppError::internal(format!(
            "attachment {} does not match its digest",
            attachment.id
        )));
    }
    Ok(out)
}

/// Removes uploads that no message took within a day. Returns how many were removed.
pub fn remove_unbound(txn: &WriteTxn, before: Millis) -> AppResult<u64> {
    let expired: Vec<(u64, u64)> = {
        let unbound = txn.open_table(tables::UNBOUND_ATTACHMENTS)?;
        let mut expired = Vec::new();
        for row in unbound.range(..(before.max(0) as u64, 0))? {
            expired.push(row?.0.value());
        }
        expired
    };
    let mut unbound = txn.open_table(tables::UNBOUND_ATTACHMENTS)?;
    let mut table = txn.open_table(tables::ATTACHMENTS)?;
    let mut chunks = txn.open_table(tables::ATTACHMENT_CHUNKS)?;
    for (at, id) in &expired {
        unbound.remove((*at, *id))?;
        table.remove(*id)?;
        chunks.retain_in((*id, 0)..=(*id, u32::MAX), |_, _| false)?;
    }
    Ok(expired.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> AttachmentsConfig {
        AttachmentsConfig::default()
    }

    const PNG: &[u8] = &[
        0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d, b'I', b'H', b'D', b'R',
    ];

    #[test]
    fn the_content_decides_the_type() {
        let png = check(&limits(), "x.txt", Some("text/plain"), PNG.into()).unwrap();
        assert_eq!(png.content_type, "image/png");
        let text = check(
            &limits(),
            "notes.csv",
            Some("text/csv"),
            "a,b\n1,2\n".into(),
        )
        .unwrap();
        assert_eq!(text.content_type, "text/csv");
        let html = check(
            &limits(),
            "x.html",
            Some("text/html"),
            "<script>alert(1)</script>".into(),
        )
        .unwrap();
        assert_eq!(html.content_type, "text/plain");
    }

    #[test]
    fn executables_and_unknown_binaries_are_refused() {
        let mut elf = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0".to_vec();
        elf.extend_from_slice(&[0; 48]);
        let err = check(&limits(), "a.png", Some("image/png"), elf.into()).unwrap_err();
        assert_eq!(err.code, ErrorCode::UnsupportedType);
        let err = check(&limits(), "blob", None, vec![0u8, 1, 2, 3].into()).unwrap_err();
        assert_eq!(err.code, ErrorCode::UnsupportedType);
    }

    #[test]
    fn size_is_limited() {
        let small = AttachmentsConfig {
            max_bytes: 4,
            ..limits()
        };
        let err = check(&small, "a.txt", None, "hello".into()).unwrap_err();
        assert_eq!(err.code, ErrorCode::PayloadTooLarge);
        assert!(check(&small, "a.txt", None, bytes::Bytes::new()).is_err());
    }

    #[test]
    fn file_names_are_cleaned() {
        assert_eq!(clean_filename("../../etc/passwd"), "passwd");
        assert_eq!(clean_filename("C:\\Users\\x\\报价单.pdf"), "报价单.pdf");
        assert_eq!(clean_filename("a\"b\r\n.txt"), "ab.txt");
        assert_eq!(clean_filename(".."), "file");
        assert_eq!(clean_filename(""), "file");
    }
}
