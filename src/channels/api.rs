//! The API channel: an app or any system posts customer messages and events with an
//! HMAC-signed request and an idempotency key, so a retried post never duplicates.
//!
//! Signature: `X-AllHands-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>`
//! with `X-AllHands-Timestamp: <unix seconds>` within five minutes of the server's clock, and
//! `Idempotency-Key: <1..200 printable characters>`. The same key with the same body returns the
//! first answer; with another body it is refused.

use hmac::{Hmac, Mac};
use redb::ReadableTable;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::channels::{self, ChannelKind};
use crate::clock::Millis;
use crate::conversations::service::{self as conversations, InboundMessage};
use crate::customers::{self, CustomerHint, Identity};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::state::Core;
use crate::storage::{Record, WriteTxn, codec, tables};

pub const SIGNATURE_HEADER: &str = "x-allhands-signature";
pub const TIMESTAMP_HEADER: &str = "x-allhands-timestamp";
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";
pub const MAX_SKEW_SECS: i64 = 300;

pub fn check_settings(settings: &serde_json::Value) -> AppResult<()> {
    let Some(map) = settings.as_object() else {
        return Err(AppError::field("settings", "must be an object"));
    };
    for (key, value) in map {
        match key.as_str() {
            "webhook_url" => {
                let url = value.as_str().unwrap_or_default();
                if !(url.is_empty() || url.starts_with("https://") || url.starts_with("http://")) {
                    return Err(AppError::field(
                        "settings.webhook_url",
                        "must be an http(s) URL",
                    ));
                }
            }
            other => {
                return Err(AppError::field(
                    "settings",
                    format!("unknown setting {other:?} for an API channel"),
                ));
            }
        }
    }
    Ok(())
}

/// `sha256=<hex>` over `"<timestamp>.<body>"`.
pub fn sign(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Checks the signature over the raw body, in constant time, and the timestamp's freshness.
pub fn verify(
    secret: &str,
    timestamp: &str,
    signature: &str,
    body: &[u8],
    now: Millis,
) -> AppResult<()> {
    let bad = |why: &str| Err(AppError::new(ErrorCode::InvalidSignature, why.to_string()));
    let Ok(sent) = timestamp.trim().parse::<i64>() else {
        return bad("X-AllHands-Timestamp must be the Unix time in seconds");
    };
    if (now / 1000).abs_diff(sent) > MAX_SKEW_SECS as u64 {
        return bad("X-AllHands-Timestamp is more than five minutes from the server's clock");
    }
    let Some(hex_signature) = signature.trim().strip_prefix("sha256=") else {
        return bad("X-AllHands-Signature must be `sha256=<hex>`");
    };
    let Ok(given) = hex::decode(hex_signature) else {
        return bad("X-AllHands-Signature is not hexadecimal");
    };
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(timestamp.trim().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&given)
        .or_else(|_| bad("the signature does not match the body"))
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiCustomer {
    /// The customer's id in the sending system; one customer per id.
    pub external_id: String,
    #[serde(flatten)]
    pub hint: CustomerHint,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiFile {
    pub filename: String,
    pub content_type: Option<String>,
    /// The file's bytes, standard base64.
    pub data: String,
}

/// What an app posts to `POST /api/v1/channels/{id}/inbound`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum InboundRequest {
    /// A customer's message.
    Message {
        /// The sender's own id for the message; a redelivery with the same id is a duplicate.
        message_id: String,
        customer: ApiCustomer,
        subject: Option<String>,
        #[serde(default)]
        text: String,
        /// Files sent with the message, their content in base64 (the request's size limit
        /// applies to the whole body).
        #[serde(default)]
        attachments: Vec<ApiFile>,
    },
    /// Something the customer did (an order, a page view, an app event).
    Event {
        /// The sender's own id for the event; a redelivery with the same id is a duplicate.
        event_id: String,
        customer: ApiCustomer,
        name: String,
        #[serde(default)]
        properties: serde_json::Value,
        /// Milliseconds since the epoch; defaults to when it arrived.
        occurred_at: Option<Millis>,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct InboundAnswer {
    pub customer_id: u64,
    pub conversation_id: Option<u64>,
    pub message_id: Option<u64>,
    pub event_id: Option<u64>,
    /// The message had arrived before under the same `message_id`.
    pub duplicate: bool,
}

/// What was answered for an idempotency key, kept to answer a retry identically.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Remembered {
    body_sha256: String,
    answer: InboundAnswer,
    at: Millis,
}

impl Record for Remembered {
    const KIND: &'static str = "idempotency record";
}

/// Parses an inbound body (after its signature was verified): pure, for tests and fuzzing.
pub fn parse_inbound(body: &[u8]) -> AppResult<InboundRequest> {
    crate::http::extract::parse_json(body)
}

pub struct SignedRequest<'a> {
    pub timestamp: Option<&'a str>,
    pub signature: Option<&'a str>,
    pub idempotency_key: Option<&'a str>,
    pub body: &'a [u8],
}

/// Verifies, parses and durably stores an inbound API request. Returns the answer and whether
/// it is the replay of an earlier request with the same idempotency key.
pub async fn receive(
    core: &Core,
    channel_id: u64,
    request: SignedRequest<'_>,
) -> AppResult<(InboundAnswer, bool)> {
    let cached = channels::cache::cached(core, channel_id).await?;
    let channel = &cached.channel;
    if channel.kind != ChannelKind::Api || !channel.enabled {
        return Err(AppError::not_found("API channel"));
    }
    let secret = cached.secrets["signing_secret"]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            AppError::internal(format!("API channel {channel_id} has no signing secret"))
        })?;
    let missing = |name: &str| {
        AppError::new(
            ErrorCode::InvalidSignature,
            format!("the {name} header is missing"),
        )
    };
    let timestamp = request
        .timestamp
        .ok_or_else(|| missing("X-AllHands-Timestamp"))?;
    let signature = request
        .signature
        .ok_or_else(|| missing("X-AllHands-Signature"))?;
    let now = core.now();
    verify(secret, timestamp, signature, request.body, now)?;
    let key = request
        .idempotency_key
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= 200 && k.chars().all(|c| c.is_ascii_graphic()))
        .ok_or_else(|| {
            AppError::new(
                ErrorCode::InvalidHeader,
                "Idempotency-Key: required, 1 to 200 printable ASCII characters",
            )
        })?
        .to_string();
    let parsed = parse_inbound(request.body)?;
    let body_sha256 = hex::encode(crate::auth::sha256(request.body));
    let inbound = match &parsed {
        InboundRequest::Message {
            message_id,
            customer,
            subject,
            text,
            attachments,
        } => {
            let mut files = Vec::with_capacity(attachments.len());
            for (n, file) in attachments.iter().enumerate() {
                use base64::Engine;
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(file.data.trim())
                    .map_err(|_| {
                        AppError::field(&format!("attachments[{n}].data"), "is not valid base64")
                    })?;
                files.push(crate::attachments::check(
                    &core.config.attachments,
                    &file.filename,
                    file.content_type.as_deref(),
                    bytes.into(),
                )?);
            }
            // Read here, on the request's worker, so the writer thread need not.
            let emotion = crate::assist::emotion::models().read(text).emotion;
            Some(inbound_message(
                channel_id, message_id, customer, subject, text, files, emotion,
            )?)
        }
        InboundRequest::Event {
            event_id,
            customer,
            name,
            ..
        } => {
            if event_id.trim().is_empty() || event_id.len() > 200 {
                return Err(AppError::field("event_id", "must be 1 to 200 characters"));
            }
            identity(channel_id, customer)?;
            if name.trim().is_empty() || name.len() > 100 {
                return Err(AppError::field("name", "must be 1 to 100 characters"));
            }
            None
        }
    };
    // A request without files is replayed from its body: the log keeps it durable. Files are
    // written beside the store and wait for a durable commit.
    let record = match (&inbound, std::str::from_utf8(request.body)) {
        (Some(message), Ok(body)) if !message.attachments.is_empty() => {
            let _ = body;
            None
        }
        (_, Ok(body)) => Some(
            serde_json::to_vec(&channels::LoggedWrite::ApiInbound(LoggedInbound {
                channel_id,
                idempotency_key: key.clone(),
                body: body.to_string(),
                now,
                emotion: inbound.as_ref().and_then(|m| m.emotion),
            }))
            .expect("a logged write serialises to JSON"),
        ),
        (_, Err(_)) => None,
    };
    let accepted = Accepted {
        channel_id,
        remembered_key: format!("{channel_id}:{key}"),
        body_sha256,
        parsed,
        inbound,
        now,
    };
    let store = move |txn: &WriteTxn| store_accepted(txn, &accepted);
    let (answer, replayed, stored) = match record {
        Some(record) => core.store.write_logged(record, store).await?,
        None => core.store.write(store).await?,
    };
    if let Some((conversation, message)) = stored {
        crate::conversations::service::announce_inbound(core, conversation, message);
    }
    Ok((answer, replayed))
}

/// A customer's message from a verified request, checked and normalised.
fn inbound_message(
    channel_id: u64,
    message_id: &str,
    customer: &ApiCustomer,
    subject: &Option<String>,
    text: &str,
    files: Vec<crate::attachments::CheckedFile>,
    emotion: crate::assist::emotion::Emotion,
) -> AppResult<InboundMessage> {
    if message_id.trim().is_empty() || message_id.len() > 200 {
        return Err(AppError::field("message_id", "must be 1 to 200 characters"));
    }
    conversations::check_text(text, !files.is_empty())?;
    Ok(InboundMessage {
        channel_id,
        channel_kind: ChannelKind::Api,
        identity: identity(channel_id, customer)?,
        customer: customer.hint.clone(),
        channel_message_id: Some(message_id.to_string()),
        subject: subject.clone(),
        text: text.to_string(),
        conversation_hint: None,
        email: None,
        attachments: files,
        uploaded: Vec::new(),
        emotion: Some(emotion),
    })
}

/// A verified and parsed request, ready to be stored.
struct Accepted {
    channel_id: u64,
    remembered_key: String,
    body_sha256: String,
    parsed: InboundRequest,
    inbound: Option<InboundMessage>,
    now: Millis,
}

/// What the inbound log keeps of a request without files: enough to store it again exactly as
/// it was stored (the emotion is the one read then, whatever the models read today).
#[derive(Debug, Serialize, Deserialize)]
pub struct LoggedInbound {
    channel_id: u64,
    idempotency_key: String,
    body: String,
    now: Millis,
    emotion: Option<crate::assist::emotion::Emotion>,
}

/// Stores a request again from its log record (after a crash).
pub fn replay(txn: &WriteTxn, logged: LoggedInbound) -> AppResult<()> {
    let parsed = parse_inbound(logged.body.as_bytes())?;
    let inbound = match (&parsed, logged.emotion) {
        (
            InboundRequest::Message {
                message_id,
                customer,
                subject,
                text,
                ..
            },
            Some(emotion),
        ) => Some(inbound_message(
            logged.channel_id,
            message_id,
            customer,
            subject,
            text,
            Vec::new(),
            emotion,
        )?),
        (InboundRequest::Message { .. }, None) => {
            return Err(AppError::internal(
                "a logged message has no emotion reading",
            ));
        }
        (InboundRequest::Event { .. }, _) => None,
    };
    let accepted = Accepted {
        channel_id: logged.channel_id,
        remembered_key: format!("{}:{}", logged.channel_id, logged.idempotency_key),
        body_sha256: hex::encode(crate::auth::sha256(logged.body.as_bytes())),
        parsed,
        inbound,
        now: logged.now,
    };
    store_accepted(txn, &accepted).map(|_| ())
}

type Stored = (
    InboundAnswer,
    bool,
    Option<(
        crate::conversations::Conversation,
        crate::conversations::Message,
    )>,
);

/// Stores an accepted request, or finds the answer given to its idempotency key before.
fn store_accepted(txn: &WriteTxn, accepted: &Accepted) -> AppResult<Stored> {
    let Accepted {
        channel_id,
        remembered_key,
        body_sha256,
        parsed,
        inbound,
        now,
    } = accepted;
    let (channel_id, now) = (*channel_id, *now);
    let previous = txn
        .idempotency()?
        .get(remembered_key.as_str())?
        .map(|previous| codec::decode::<Remembered>(previous.value()))
        .transpose()?;
    if let Some(previous) = previous {
        if &previous.body_sha256 != body_sha256 {
            return Err(AppError::conflict(
                "this Idempotency-Key was used before with a different body",
            ));
        }
        return Ok((previous.answer, true, None));
    }
    let mut stored = None;
    let answer = match (inbound, parsed) {
        (Some(message), _) => {
            let outcome = conversations::ingest(txn, message, now)?;
            stored = outcome.stored;
            let ingested = outcome.ingested;
            InboundAnswer {
                customer_id: ingested.customer_id,
                conversation_id: Some(ingested.conversation_id),
                message_id: Some(ingested.message_id),
                event_id: None,
                duplicate: ingested.duplicate,
            }
        }
        (
            None,
            InboundRequest::Event {
                event_id: external_event_id,
                customer,
                name,
                properties,
                occurred_at,
            },
        ) => {
            // Events are deduplicated by the sender's id, like messages: a replayed
            // request under a fresh idempotency key adds nothing.
            let dedupe = format!("{channel_id}:event:{external_event_id}");
            if let Some(seen) = txn
                .open_table(tables::CHANNEL_MESSAGES)?
                .get(dedupe.as_str())?
            {
                let (customer_id, event_id) = seen.value();
                return Ok((
                    InboundAnswer {
                        customer_id,
                        conversation_id: None,
                        message_id: None,
                        event_id: Some(event_id),
                        duplicate: true,
                    },
                    false,
                    None,
                ));
            }
            let who = customers::find_or_create(
                txn,
                &identity(channel_id, customer)?,
                &customer.hint,
                now,
            )?;
            let event = customers::add_event(
                txn,
                who.id,
                name.trim(),
                properties.clone(),
                occurred_at.unwrap_or(now),
                now,
            )?;
            txn.open_table(tables::CHANNEL_MESSAGES)?
                .insert(dedupe.as_str(), (who.id, event.id))?;
            InboundAnswer {
                customer_id: who.id,
                conversation_id: None,
                message_id: None,
                event_id: Some(event.id),
                duplicate: false,
            }
        }
        (None, InboundRequest::Message { .. }) => {
            unreachable!("messages are normalised before they are stored")
        }
    };
    let remembered = Remembered {
        body_sha256: body_sha256.clone(),
        answer: answer.clone(),
        at: now,
    };
    txn.idempotency()?.insert(
        remembered_key.as_str(),
        codec::encode(&remembered).as_slice(),
    )?;
    Ok((answer, false, stored))
}

fn identity(channel_id: u64, customer: &ApiCustomer) -> AppResult<Identity> {
    let id = customer.external_id.trim();
    if id.is_empty() || id.len() > 200 {
        return Err(AppError::field(
            "customer.external_id",
            "must be 1 to 200 characters",
        ));
    }
    Ok(Identity::new(format!("api:{channel_id}"), id))
}

/// Forgets idempotency keys older than `before`; returns how many.
pub fn forget_idempotency_keys(txn: &WriteTxn, before: Millis) -> AppResult<u64> {
    let stale: Vec<String> = {
        let table = txn.open_table(tables::IDEMPOTENCY)?;
        let mut stale = Vec::new();
        for row in table.iter()? {
            let (key, value) = row?;
            let old = codec::decode::<Remembered>(value.value())
                .map(|r| r.at < before)
                .unwrap_or(true);
            if old {
                stale.push(key.value().to_string());
            }
        }
        stale
    };
    let mut table = txn.open_table(tables::IDEMPOTENCY)?;
    for key in &stale {
        table.remove(key.as_str())?;
    }
    Ok(stale.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_only_for_the_exact_body_secret_and_a_fresh_timestamp() {
        let now = 1_790_000_000_000;
        let ts = (now / 1000).to_string();
        let body = br#"{"type":"message"}"#;
        let signature = sign("s3cret", &ts, body);
        verify("s3cret", &ts, &signature, body, now).unwrap();
        assert_eq!(
            verify("other", &ts, &signature, body, now)
                .unwrap_err()
                .code,
            ErrorCode::InvalidSignature
        );
        assert!(verify("s3cret", &ts, &signature, br#"{"type":"messagE"}"#, now).is_err());
        assert!(verify("s3cret", &ts, &signature, body, now + 301_000).is_err());
        assert!(verify("s3cret", "yesterday", &signature, body, now).is_err());
        assert!(verify("s3cret", &ts, "sha1=00", body, now).is_err());
        assert!(verify("s3cret", &ts, "sha256=zz", body, now).is_err());
        assert!(verify("s3cret", &ts, "sha256=", body, now).is_err());
    }

    #[test]
    fn settings_are_checked() {
        check_settings(&serde_json::json!({ "webhook_url": "https://app.example/hook" })).unwrap();
        assert!(check_settings(&serde_json::json!({ "webhook_url": "ftp://x" })).is_err());
        assert!(check_settings(&serde_json::json!({ "colour": 1 })).is_err());
        assert!(check_settings(&serde_json::json!([])).is_err());
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever arrives, parsing and verification answer with a value or an error, never a panic,
        /// and only the exact signature verifies.
        #[test]
        fn arbitrary_requests_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512), timestamp in ".{0,24}", signature in ".{0,80}") {
            let _ = parse_inbound(&body);
            let now = 1_790_000_000_000;
            let verified = verify("secret", &timestamp, &signature, &body, now).is_ok();
            let genuine = timestamp.trim().parse::<i64>().is_ok_and(|t| (now / 1000).abs_diff(t) <= MAX_SKEW_SECS as u64)
                && signature.trim() == sign("secret", timestamp.trim(), &body);
            prop_assert_eq!(verified, genuine);
        }

        #[test]
        fn well_formed_messages_parse(id in "[a-zA-Z0-9-]{1,40}", user in "[a-z0-9]{1,20}", text in "\\PC{1,200}") {
            let body = serde_json::to_vec(&serde_json::json!({ "type": "message", "message_id": id, "customer": { "external_id": user }, "text": text })).unwrap();
            let parsed = parse_inbound(&body);
            prop_assert!(matches!(parsed, Ok(InboundRequest::Message { .. })), "{:?}", parsed.err());
        }
    }
}
