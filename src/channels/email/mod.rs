//! The e-mail channel: an IMAP mailbox read over TLS (IDLE where the server offers it, polling
//! otherwise) and replies sent over SMTP with lettre.
//!
//! - `parse.rs`: raw bytes → `ParsedEmail` (text, headers, attachments, auto-reply and bounce
//!   detection, quote and signature trimming). Pure; property-tested and fuzzed.
//! - `imap.rs`: one task per enabled e-mail channel (`supervise` starts, restarts and stops
//!   them as channels change). The mailbox's UIDVALIDITY and the last UID ingested move in the
//!   same write as the ingest, so a crash neither loses nor duplicates mail; the Message-ID
//!   deduplicates across a changed UIDVALIDITY.
//! - `smtp.rs`: the outbox adapter. Each reply gets a Message-ID derived from its ids (the same
//!   on every retry), In-Reply-To/References from the customer's last mail and the conversation
//!   token `[#<id>]` in its subject.
//!
//! Threading of an inbound mail: a Message-ID in In-Reply-To/References found in the thread
//! index (`EMAIL_THREADS`, inbound and outbound ids), else the subject token, else the
//! customer's current conversation on the channel (the ingest rules), else a new one. A
//! delivery status notification for one of our mails marks that reply failed instead.
//!
//! The raw message is kept in the store beside the message, as an attachment of it that the
//! message does not list (`EmailMeta::raw_attachment`): as durable as the message and in every
//! backup. Accepted attachments go through `crate::attachments::check` like any upload.

pub mod imap;
pub mod parse;
pub mod smtp;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redb::{ReadTransaction, ReadableTable};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::attachments::CheckedFile;
use crate::channels::{Channel, ChannelKind};
use crate::clock::Millis;
use crate::collaboration::hub::Event;
use crate::conversations::service::{self as conversations, InboundMessage, IngestOutcome};
use crate::conversations::{
    Conversation, DeliveryState, Direction, EmailMeta, Message, RefusedAttachment,
};
use crate::customers::{CustomerHint, Identity};
use crate::error::{AppError, AppResult};
use crate::state::Core;
use crate::storage::{Record, WriteTxn, all_records, codec, get_record, tables};

pub use parse::ParsedEmail;

/// The names of an e-mail channel's secrets (write-only through the API).
pub const SECRET_NAMES: &[&str] = &["imap_password", "smtp_password"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TlsMode {
    /// TLS from the first byte (IMAPS 993, SMTPS 465).
    Tls,
    /// A plain connection upgraded with STARTTLS (IMAP 143, submission 587).
    Starttls,
    /// No encryption: SMTP only, and only to a server on this machine (loopback).
    Plain,
}

/// An e-mail channel's settings (none secret; the passwords are sealed secrets).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailSettings {
    pub imap_host: String,
    pub imap_port: u16,
    pub imap_tls: TlsMode,
    pub imap_username: String,
    #[serde(default = "default_mailbox")]
    pub imap_mailbox: String,
    pub smtp_host: String,
    pub smtp_port: u16,
    pub smtp_tls: TlsMode,
    /// Empty: send without authenticating.
    #[serde(default)]
    pub smtp_username: String,
    pub from_address: String,
    #[serde(default)]
    pub from_name: String,
    /// How often the mailbox is checked when the server does not offer IDLE (and the longest
    /// an IDLE wait lasts before checking anyway).
    #[serde(default = "default_poll")]
    pub poll_interval_secs: u64,
    /// PEM certificates to trust besides the system's, for servers with their own CA.
    #[serde(default)]
    pub ca_certificate: Option<String>,
}

fn default_mailbox() -> String {
    "INBOX".into()
}

fn default_poll() -> u64 {
    60
}

impl EmailSettings {
    pub fn from_channel(channel: &Channel) -> AppResult<EmailSettings> {
        parse_settings(&channel.settings)
    }

    /// The domain of the from address (for our Message-IDs).
    pub fn domain(&self) -> &str {
        self.from_address
            .rsplit_once('@')
            .map(|(_, d)| d)
            .unwrap_or("allhands.invalid")
    }
}

fn parse_settings(settings: &serde_json::Value) -> AppResult<EmailSettings> {
    let raw = serde_json::to_vec(settings)?;
    crate::http::extract::parse_json::<EmailSettings>(&raw).map_err(|e| {
        AppError::new(
            e.code,
            format!("settings.{}", e.message.trim_start_matches("settings.")),
        )
    })
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn check_host(field: &str, host: &str) -> AppResult<()> {
    let ok = !host.is_empty()
        && host.len() <= 253
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']' | '_'));
    if ok {
        Ok(())
    } else {
        Err(AppError::field(
            field,
            "must be a host name or an IP address",
        ))
    }
}

/// The PEM certificates of `ca_certificate`; an error names what is wrong.
pub fn ca_certificates(
    pem: Option<&str>,
) -> AppResult<Vec<rustls_pki_types::CertificateDer<'static>>> {
    use rustls_pki_types::pem::PemObject;
    let Some(pem) = pem.filter(|p| !p.trim().is_empty()) else {
        return Ok(Vec::new());
    };
    let certs: Vec<_> = rustls_pki_types::CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| AppError::field("settings.ca_certificate", format!("not PEM: {e}")))?;
    if certs.is_empty() {
        return Err(AppError::field(
            "settings.ca_certificate",
            "holds no -----BEGIN CERTIFICATE----- block",
        ));
    }
    for cert in &certs {
        webpki_check(cert)?;
    }
    Ok(certs)
}

fn webpki_check(cert: &rustls_pki_types::CertificateDer<'_>) -> AppResult<()> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(cert.clone())
        .map_err(|e| AppError::field("settings.ca_certificate", format!("unusable: {e}")))
}

pub fn check_settings(settings: &serde_json::Value) -> AppResult<()> {
    let s = parse_settings(settings)?;
    check_host("settings.imap_host", &s.imap_host)?;
    check_host("settings.smtp_host", &s.smtp_host)?;
    if s.imap_port == 0 {
        return Err(AppError::field("settings.imap_port", "must be 1 to 65535"));
    }
    if s.smtp_port == 0 {
        return Err(AppError::field("settings.smtp_port", "must be 1 to 65535"));
    }
    if s.imap_tls == TlsMode::Plain {
        return Err(AppError::field(
            "settings.imap_tls",
            "must be tls or starttls: the mailbox password never travels in clear",
        ));
    }
    if s.smtp_tls == TlsMode::Plain && !is_loopback(&s.smtp_host) {
        return Err(AppError::field(
            "settings.smtp_tls",
            "plain is only allowed to a server on this machine (localhost); use tls or starttls",
        ));
    }
    let text = |field: &str, value: &str, max: usize, required: bool| {
        if (required && value.trim().is_empty())
            || value.len() > max
            || value.chars().any(char::is_control)
        {
            Err(AppError::field(
                field,
                format!(
                    "must be {} to {max} characters without control characters",
                    u8::from(required)
                ),
            ))
        } else {
            Ok(())
        }
    };
    text("settings.imap_username", &s.imap_username, 200, true)?;
    text("settings.imap_mailbox", &s.imap_mailbox, 200, true)?;
    if s.imap_mailbox.contains('"') || s.imap_mailbox.contains('\\') {
        return Err(AppError::field(
            "settings.imap_mailbox",
            "must not contain quotes or backslashes",
        ));
    }
    text("settings.smtp_username", &s.smtp_username, 200, false)?;
    text("settings.from_name", &s.from_name, 100, false)?;
    if s.from_address.parse::<lettre::Address>().is_err() {
        return Err(AppError::field(
            "settings.from_address",
            "must be an e-mail address",
        ));
    }
    if !(5..=86_400).contains(&s.poll_interval_secs) {
        return Err(AppError::field(
            "settings.poll_interval_secs",
            "must be 5 to 86400 seconds",
        ));
    }
    ca_certificates(s.ca_certificate.as_deref())?;
    Ok(())
}

/// Checks the secrets given for an e-mail channel (names and lengths).
pub fn check_secrets(secrets: &BTreeMap<String, String>) -> AppResult<()> {
    for (name, value) in secrets {
        if !SECRET_NAMES.contains(&name.as_str()) {
            return Err(AppError::field(
                "secrets",
                format!(
                    "unknown secret {name:?} for an e-mail channel (imap_password, smtp_password)"
                ),
            ));
        }
        if value.len() > 1000 || value.chars().any(|c| c == '\r' || c == '\n') {
            return Err(AppError::field(
                &format!("secrets.{name}"),
                "must be at most 1000 characters on one line",
            ));
        }
    }
    Ok(())
}

/// Where the IMAP reader stands in a mailbox.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct MailboxState {
    pub uid_validity: u32,
    pub last_uid: u32,
    pub updated_at: Millis,
    /// The connection's health, kept so that a restart does not forget it (`record_health`).
    #[serde(default)]
    pub last_success_at: Option<Millis>,
    #[serde(default)]
    pub last_error: Option<String>,
    #[serde(default)]
    pub last_error_at: Option<Millis>,
}

impl Record for MailboxState {
    const KIND: &'static str = "mailbox state";
}

pub fn mailbox_state(txn: &ReadTransaction, channel_id: u64) -> AppResult<MailboxState> {
    Ok(get_record(&txn.open_table(tables::MAILBOXES)?, channel_id)?.unwrap_or_default())
}

/// How a mailbox check went, to be remembered across restarts.
pub enum Health {
    Checked,
    Failed(String),
}

/// Stores the outcome of a mailbox check with the mailbox's position.
pub async fn record_health(core: &Core, channel_id: u64, health: Health) -> AppResult<()> {
    let now = core.now();
    let health = std::sync::Arc::new(health);
    core.store
        .write(move |txn| {
            let mut table = txn.open_table(tables::MAILBOXES)?;
            let mut state: MailboxState = get_record(&table, channel_id)?.unwrap_or_default();
            match &*health {
                Health::Checked => state.last_success_at = Some(now),
                Health::Failed(error) => {
                    state.last_error = Some(error.clone());
                    state.last_error_at = Some(now);
                }
            }
            table.insert(channel_id, codec::encode(&state).as_slice())?;
            Ok(())
        })
        .await
}

/// What the console shows about a channel's connection.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct ChannelStatus {
    /// `stopped`, `connecting`, `idle` (waiting with IDLE), `polling` or `error`.
    pub state: String,
    pub last_success_at: Option<Millis>,
    pub last_error: Option<String>,
    pub last_error_at: Option<Millis>,
    /// The server offers IDLE: new mail arrives at once.
    pub idle_supported: bool,
    pub uid_validity: Option<u32>,
    pub last_uid: Option<u32>,
}

/// The live status of every running channel connection (memory only).
#[derive(Default)]
pub struct StatusBoard(Mutex<HashMap<u64, ChannelStatus>>);

impl StatusBoard {
    pub fn get(&self, channel_id: u64) -> ChannelStatus {
        self.0
            .lock()
            .map(|m| m.get(&channel_id).cloned())
            .ok()
            .flatten()
            .unwrap_or_else(|| ChannelStatus {
                state: "stopped".into(),
                ..Default::default()
            })
    }

    pub fn update(&self, channel_id: u64, change: impl FnOnce(&mut ChannelStatus)) {
        if let Ok(mut map) = self.0.lock() {
            let entry = map.entry(channel_id).or_insert_with(|| ChannelStatus {
                state: "stopped".into(),
                ..Default::default()
            });
            change(entry);
        }
    }

    pub fn remove(&self, channel_id: u64) {
        if let Ok(mut map) = self.0.lock() {
            map.remove(&channel_id);
        }
    }
}

/// A task that is aborted when this handle is dropped (so a stopped supervisor stops its
/// mailbox readers too).
struct Running {
    updated_at: Millis,
    handle: tokio::task::JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

/// Keeps one mailbox reader running per enabled e-mail channel; restarts a reader when its
/// channel changes and stops it when the channel is disabled. Runs until aborted.
pub async fn supervise(core: Arc<Core>) {
    let mut running: HashMap<u64, Running> = HashMap::new();
    loop {
        let channels = core
            .store
            .read(|txn| all_records::<Channel>(&txn.open_table(tables::CHANNELS)?))
            .await;
        match channels {
            Ok(channels) => {
                let wanted: HashMap<u64, Channel> = channels
                    .into_iter()
                    .filter(|c| c.kind == ChannelKind::Email && c.enabled)
                    .map(|c| (c.id, c))
                    .collect();
                running.retain(|id, task| {
                    let keep = wanted
                        .get(id)
                        .is_some_and(|c| c.updated_at == task.updated_at)
                        && !task.handle.is_finished();
                    if !keep {
                        core.channel_status.remove(*id);
                    }
                    keep
                });
                for (id, channel) in wanted {
                    if running.contains_key(&id) {
                        continue;
                    }
                    let updated_at = channel.updated_at;
                    let handle = tokio::spawn(imap::run(core.clone(), channel));
                    running.insert(id, Running { updated_at, handle });
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read the e-mail channels"),
        }
        tokio::select! {
            _ = core.channels_changed.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(30)) => {}
        }
    }
}

fn thread_key(channel_id: u64, message_id: &str) -> String {
    format!("{channel_id}:{message_id}")
}

/// Remembers which conversation and message an e-mail's Message-ID belongs to.
pub fn remember_thread(
    txn: &WriteTxn,
    channel_id: u64,
    message_id: &str,
    conversation_id: u64,
    id: u64,
) -> AppResult<()> {
    txn.open_table(tables::EMAIL_THREADS)?.insert(
        thread_key(channel_id, message_id).as_str(),
        (conversation_id, id),
    )?;
    Ok(())
}

fn find_thread(txn: &WriteTxn, channel_id: u64, message_id: &str) -> AppResult<Option<(u64, u64)>> {
    Ok(txn
        .open_table(tables::EMAIL_THREADS)?
        .get(thread_key(channel_id, message_id).as_str())?
        .map(|v| v.value()))
}

/// What became of one e-mail.
#[derive(Debug)]
pub enum EmailOutcome {
    /// Stored (or recognised as a duplicate) as a customer's message.
    Ingested(IngestOutcome),
    /// A bounce for one of our replies: that reply is now failed.
    Bounced(Option<(Conversation, Message)>),
    /// One of our own mails (a copy in the mailbox): nothing to store.
    Ours,
}

/// Stores one parsed e-mail inside the caller's write, and moves the mailbox position along
/// with it.
#[allow(clippy::too_many_arguments)]
pub fn ingest_email(
    txn: &WriteTxn,
    channel_id: u64,
    email: &ParsedEmail,
    raw: Option<&CheckedFile>,
    files: &[CheckedFile],
    refused: &[RefusedAttachment],
    position: Option<(u32, u32)>,
    now: Millis,
) -> AppResult<EmailOutcome> {
    if let Some((uid_validity, uid)) = position {
        let mut table = txn.open_table(tables::MAILBOXES)?;
        let mut state: MailboxState = get_record(&table, channel_id)?.unwrap_or_default();
        if state.uid_validity != uid_validity {
            state.uid_validity = uid_validity;
            state.last_uid = 0;
        }
        state.last_uid = state.last_uid.max(uid);
        state.updated_at = now;
        table.insert(channel_id, codec::encode(&state).as_slice())?;
    }
    if let Some(bounce) = &email.bounce {
        for original in &bounce.original_message_ids {
            let Some((conversation_id, message_id)) = find_thread(txn, channel_id, original)?
            else {
                continue;
            };
            let current: Option<Message> = txn
                .open_table(tables::MESSAGES)?
                .get((conversation_id, message_id))?
                .map(|v| codec::decode(v.value()))
                .transpose()?;
            if let Some(sent) = current.filter(|m| m.direction == Direction::Outbound) {
                let attempts = sent.delivery.as_ref().map(|d| d.attempts).unwrap_or(0);
                let updated = crate::channels::delivery::update_delivery(
                    txn,
                    conversation_id,
                    message_id,
                    DeliveryState::Failed,
                    attempts,
                    Some(bounce.reason.clone()),
                    now,
                )?;
                let conversation: Option<Conversation> =
                    get_record(&txn.open_table(tables::CONVERSATIONS)?, conversation_id)?;
                return Ok(EmailOutcome::Bounced(conversation.zip(updated)));
            }
        }
    }
    if email.has_message_id
        && txn
            .open_table(tables::CHANNEL_MESSAGES)?
            .get(thread_key(channel_id, &email.message_id).as_str())?
            .is_none()
        && find_thread(txn, channel_id, &email.message_id)?.is_some()
    {
        return Ok(EmailOutcome::Ours);
    }
    let mut hint = None;
    for id in email
        .in_reply_to
        .iter()
        .chain(email.references.iter().rev())
    {
        if let Some((conversation_id, _)) = find_thread(txn, channel_id, id)? {
            hint = Some(conversation_id);
            break;
        }
    }
    if hint.is_none() {
        hint = parse::subject_token(&email.subject);
    }
    let (identity, customer) = match &email.from_address {
        Some(address) => (
            Identity::new("email", address.to_lowercase()),
            CustomerHint {
                name: email.from_name.clone(),
                email: Some(address.to_lowercase()),
                phone: None,
            },
        ),
        None => (
            Identity::new(format!("email-unknown:{channel_id}"), "unknown sender"),
            CustomerHint {
                name: Some("(unknown sender)".into()),
                ..Default::default()
            },
        ),
    };
    let limit = crate::conversations::MAX_TEXT_BYTES;
    let mut text = parse::clip(&email.display_text, limit);
    if text.trim().is_empty() {
        text = if email.malformed.is_some() {
            "(this e-mail could not be read; the original is kept)".into()
        } else {
            "(no text)".into()
        };
    }
    let original_text = (email.text.trim() != text.trim() && !email.text.trim().is_empty())
        .then(|| parse::clip(&email.text, limit));
    let meta = EmailMeta {
        message_id: email.message_id.clone(),
        in_reply_to: email.in_reply_to.clone(),
        references: email.references.clone(),
        subject: parse::clip(&email.subject, 1000),
        original_text,
        raw_attachment: None,
        malformed: email.malformed.clone(),
        auto_reply: email.auto_reply,
        from_address: email.from_address.clone(),
        refused_attachments: refused.to_vec(),
    };
    let subject = parse::base_subject(&email.subject);
    let inbound = InboundMessage {
        channel_id,
        channel_kind: ChannelKind::Email,
        identity,
        customer,
        channel_message_id: Some(email.message_id.clone()),
        subject: (!subject.is_empty()).then_some(subject),
        text,
        conversation_hint: hint,
        email: Some(meta),
        attachments: files.to_vec(),
        uploaded: Vec::new(),
        emotion: None,
    };
    let mut outcome = conversations::ingest(txn, &inbound, now)?;
    if !outcome.ingested.duplicate {
        let (conversation_id, message_id) = (
            outcome.ingested.conversation_id,
            outcome.ingested.message_id,
        );
        remember_thread(
            txn,
            channel_id,
            &email.message_id,
            conversation_id,
            message_id,
        )?;
        if let Some(raw) = raw {
            let owner = crate::attachments::Owner::Channel { channel_id };
            let kept = crate::attachments::insert(txn, raw, owner.clone(), now)?;
            crate::attachments::bind(txn, &[kept.id], &owner, conversation_id, message_id)?;
            if let Some((_, message)) = outcome.stored.as_mut() {
                if let Some(meta) = message.email.as_mut() {
                    meta.raw_attachment = Some(kept.id);
                }
                txn.open_table(tables::MESSAGES)?.insert(
                    (conversation_id, message_id),
                    codec::encode(&*message).as_slice(),
                )?;
            }
        }
    }
    Ok(EmailOutcome::Ingested(outcome))
}

/// Most files kept from one e-mail (the attachment store's limit per message).
const MAX_FILES: usize = 20;

/// Parses, keeps the raw bytes and stores one e-mail, then tells the consoles. Only a failure of
/// the store itself is an error: a message that cannot be stored as received is stored without
/// its attachments and flagged, so one bad e-mail never blocks the mailbox behind it.
pub async fn receive(
    core: &Core,
    channel_id: u64,
    raw: Vec<u8>,
    position: Option<(u32, u32)>,
) -> AppResult<EmailOutcome> {
    let (mut parsed, raw) = tokio::task::spawn_blocking(move || {
        let parsed = parse::parse(&raw);
        let kept = CheckedFile {
            filename: "original.eml".into(),
            content_type: "message/rfc822".into(),
            sha256: parsed.sha256.clone(),
            bytes: bytes::Bytes::from(raw),
        };
        (parsed, kept)
    })
    .await
    .map_err(AppError::internal)?;
    // Attachments go through the same checks as any upload; what is refused is named on the
    // message and stays in the raw message.
    let mut files = Vec::new();
    let mut refused = Vec::new();
    for a in &parsed.attachments {
        let size = a.bytes.len() as u64;
        let checked = if files.len() >= MAX_FILES {
            Err(AppError::field(
                "attachments",
                format!("at most {MAX_FILES} files per message"),
            ))
        } else {
            crate::attachments::check(
                &core.config.attachments,
                &a.filename,
                Some(&a.content_type),
                bytes::Bytes::from(a.bytes.clone()),
            )
        };
        match checked {
            Ok(file) => files.push(file),
            Err(e) => refused.push(RefusedAttachment {
                filename: parse::clip(&a.filename, 255),
                content_type: parse::clip(&a.content_type, 255),
                size,
                reason: e.message,
            }),
        }
    }
    parsed.attachments.clear();
    if let Some(why) = &parsed.malformed {
        tracing::warn!(channel = channel_id, message_id = %parsed.message_id, reason = %why, "storing a malformed e-mail");
    }
    let now = core.now();
    let store = |parsed: ParsedEmail, files: Vec<CheckedFile>, refused: Vec<RefusedAttachment>| {
        let raw = raw.clone();
        core.store.write(move |txn| {
            ingest_email(
                txn,
                channel_id,
                &parsed,
                Some(&raw),
                &files,
                &refused,
                position,
                now,
            )
        })
    };
    let outcome = match store(parsed.clone(), files, refused.clone()).await {
        Err(e) if !e.is_internal() => {
            tracing::warn!(channel = channel_id, message_id = %parsed.message_id, error = %e, "storing an e-mail without its attachments");
            let why = format!("could not be stored as received: {}", e.message);
            parsed.malformed = Some(match parsed.malformed.take() {
                Some(before) => format!("{before}; {why}"),
                None => why,
            });
            store(parsed, Vec::new(), refused).await?
        }
        other => other?,
    };
    match &outcome {
        EmailOutcome::Ingested(IngestOutcome {
            stored: Some((conversation, message)),
            ..
        }) => crate::conversations::service::announce_inbound(
            core,
            conversation.clone(),
            message.clone(),
        ),
        EmailOutcome::Bounced(Some((conversation, message))) => {
            core.hub.publish(&Event::MessageUpdated {
                conversation: conversation.clone(),
                message: message.clone(),
            })
        }
        _ => {}
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conversations::Status;
    use redb::{Database, ReadableDatabase};

    fn store() -> (tempfile::TempDir, Database) {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(dir.path().join("t.redb")).unwrap();
        crate::storage::migrations::run(&db).unwrap();
        (dir, db)
    }

    fn mail(db: &Database, raw: &str, position: Option<(u32, u32)>) -> EmailOutcome {
        let parsed = parse::parse(raw.replace('\n', "\r\n").as_bytes());
        let txn = db.begin_write().unwrap();
        let outcome = ingest_email(
            &crate::storage::WriteTxn::new(&txn),
            1,
            &parsed,
            None,
            &[],
            &[],
            position,
            1_000,
        )
        .unwrap();
        txn.commit().unwrap();
        outcome
    }

    fn conversation_of(outcome: &EmailOutcome) -> (u64, bool) {
        match outcome {
            EmailOutcome::Ingested(o) => (o.ingested.conversation_id, o.ingested.duplicate),
            other => panic!("not ingested: {other:?}"),
        }
    }

    fn set_status(db: &Database, id: u64, status: Status) {
        let txn = db.begin_write().unwrap();
        {
            let mut table = txn.open_table(tables::CONVERSATIONS).unwrap();
            let mut c: Conversation = get_record(&table, id).unwrap().unwrap();
            c.status = status;
            table.insert(id, codec::encode(&c).as_slice()).unwrap();
        }
        txn.commit().unwrap();
    }

    #[test]
    fn mail_threads_by_headers_then_subject_token_then_the_current_conversation() {
        let (_dir, db) = store();
        let from = "From: Jane <jane@example.com>\nTo: s@shop.test\n";
        let a = conversation_of(&mail(
            &db,
            &format!("{from}Subject: first\nMessage-ID: <a1@x>\n\none\n"),
            Some((7, 1)),
        ));
        assert!(!a.1);
        let a = a.0;
        // Closed, so the next unrelated mail starts conversation B; then A is opened again by
        // hand, leaving two open conversations of the same customer (B the newer).
        set_status(&db, a, Status::Closed);
        let b = conversation_of(&mail(
            &db,
            &format!("{from}Subject: second\nMessage-ID: <b1@x>\n\ntwo\n"),
            Some((7, 2)),
        ))
        .0;
        assert_ne!(a, b);
        set_status(&db, a, Status::Open);
        // A mail without threading information goes to the newest open conversation...
        let plain = mail(
            &db,
            &format!("{from}Subject: hm\nMessage-ID: <p@x>\n\nthree\n"),
            None,
        );
        assert_eq!(conversation_of(&plain).0, b);
        // ...one that refers to A's mail joins A, even with another subject...
        let refs = mail(
            &db,
            &format!(
                "{from}Subject: other\nMessage-ID: <r@x>\nReferences: <zzz@y> <a1@x>\n\nfour\n"
            ),
            None,
        );
        assert_eq!(conversation_of(&refs).0, a);
        // ...as does one answering our reply in A (an outbound Message-ID)...
        let txn = db.begin_write().unwrap();
        remember_thread(
            &crate::storage::WriteTxn::new(&txn),
            1,
            "allhands.1.99@shop.test",
            a,
            99,
        )
        .unwrap();
        txn.commit().unwrap();
        let answer = mail(
            &db,
            &format!(
                "{from}Subject: x\nMessage-ID: <ans@x>\nIn-Reply-To: <allhands.1.99@shop.test>\n\nfive\n"
            ),
            None,
        );
        assert_eq!(conversation_of(&answer).0, a);
        // ...and one carrying A's token in the subject.
        let token = mail(
            &db,
            &format!("{from}Subject: Re: first [#{a}]\nMessage-ID: <t@x>\n\nsix\n"),
            None,
        );
        assert_eq!(conversation_of(&token).0, a);
        // Someone else's token or references do not pull a mail into a stranger's conversation.
        let stranger = mail(
            &db,
            &format!(
                "From: mallory@evil.test\nSubject: [#{a}]\nMessage-ID: <m@e>\nReferences: <a1@x>\n\nhi\n"
            ),
            None,
        );
        assert_ne!(conversation_of(&stranger).0, a);
        // Redelivered: a duplicate; our own mail seen in the mailbox: nothing stored.
        assert!(
            conversation_of(&mail(
                &db,
                &format!("{from}Subject: hm\nMessage-ID: <p@x>\n\nthree\n"),
                None
            ))
            .1
        );
        assert!(matches!(
            mail(
                &db,
                "From: s@shop.test\nMessage-ID: <allhands.1.99@shop.test>\n\nours\n",
                None
            ),
            EmailOutcome::Ours
        ));
        // The mailbox position moved with the ingests, and restarts on a new UIDVALIDITY.
        let read = db.begin_read().unwrap();
        assert_eq!(
            mailbox_state(&read, 1).unwrap(),
            MailboxState {
                uid_validity: 7,
                last_uid: 2,
                updated_at: 1_000,
                ..Default::default()
            }
        );
        drop(read);
        mail(
            &db,
            &format!("{from}Message-ID: <n@x>\n\nnew\n"),
            Some((8, 1)),
        );
        let read = db.begin_read().unwrap();
        assert_eq!(mailbox_state(&read, 1).unwrap().last_uid, 1);
    }

    #[test]
    fn settings_are_validated_field_by_field() {
        let good = serde_json::json!({
            "imap_host": "imap.example.com", "imap_port": 993, "imap_tls": "tls", "imap_username": "u",
            "smtp_host": "smtp.example.com", "smtp_port": 465, "smtp_tls": "tls",
            "from_address": "help@example.com",
        });
        check_settings(&good).unwrap();
        let with = |k: &str, v: serde_json::Value| {
            let mut s = good.clone();
            s[k] = v;
            check_settings(&s).unwrap_err().message
        };
        assert!(with("smtp_tls", "plain".into()).starts_with("settings.smtp_tls"));
        assert!(with("imap_port", 70_000.into()).starts_with("settings.imap_port"));
        assert!(with("imap_mailbox", "a\"b".into()).starts_with("settings.imap_mailbox"));
        assert!(with("imap_host", "a b".into()).starts_with("settings.imap_host"));
        let mut local = good.clone();
        local["smtp_host"] = "::1".into();
        local["smtp_tls"] = "plain".into();
        check_settings(&local).unwrap();
        assert!(check_secrets(&[("imap_password".to_string(), "x".to_string())].into()).is_ok());
        assert!(check_secrets(&[("token".to_string(), "x".to_string())].into()).is_err());
    }
}
