//! Sending a reply by e-mail: the outbox adapter of the e-mail channel.
//!
//! The reply's Message-ID is made from its conversation and message ids, so every retry sends
//! the same Message-ID (a receiver that got the message twice sees one message) and the thread
//! index knows it before the first attempt, for the customer's answer and for bounces.
//! In-Reply-To is the customer's last e-mail, References the chain before it plus that e-mail,
//! and the subject carries the conversation token `[#<id>]`. An SMTP 5xx answer is permanent
//! (dead letter); 4xx, timeouts and network trouble are retried with the outbox's backoff.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::{EmailSettings, TlsMode, parse};
use crate::channels::delivery::{Attempt, OutboxItem};
use crate::channels::{self, Channel};
use crate::conversations::{Conversation, Direction, EmailMeta, Message};
use crate::customers::Customer;
use crate::error::AppResult;
use crate::state::Core;
use redb::ReadableTable;

use crate::storage::{codec, tables};

/// The Message-ID of our e-mail for a message (without angle brackets).
pub fn message_id_for(conversation_id: u64, message_id: u64, domain: &str) -> String {
    format!("allhands.{conversation_id}.{message_id}@{domain}")
}

/// In-Reply-To and References for a reply, from the conversation's messages: the customer's
/// last e-mail, and the chain it referred to followed by that e-mail (at most
/// `parse::MAX_REFERENCES` ids, the newest kept).
pub fn thread_headers(messages: &[Message]) -> (Option<String>, Vec<String>) {
    let Some(last) = messages
        .iter()
        .rev()
        .filter(|m| m.direction == Direction::Inbound)
        .find_map(|m| m.email.as_ref())
    else {
        return (None, Vec::new());
    };
    let mut references = last.references.clone();
    if references.is_empty() {
        references.extend(last.in_reply_to.iter().cloned());
    }
    references.retain(|r| r != &last.message_id);
    references.push(last.message_id.clone());
    if references.len() > parse::MAX_REFERENCES {
        references.drain(..references.len() - parse::MAX_REFERENCES);
    }
    (Some(last.message_id.clone()), references)
}

pub async fn send(
    core: &Core,
    channel: &Channel,
    _item: &OutboxItem,
    conversation: &Conversation,
    message: &Message,
    customer: &Customer,
) -> Attempt {
    let settings = match EmailSettings::from_channel(channel) {
        Ok(s) => s,
        Err(e) => {
            return Attempt::Permanent(format!("the e-mail settings are unusable: {}", e.message));
        }
    };
    let password = match channels::secrets(core, channel) {
        Ok(s) => s["smtp_password"].as_str().unwrap_or_default().to_string(),
        Err(e) => {
            tracing::error!(channel = channel.id, error = %e, "cannot unseal a channel secret");
            return Attempt::Permanent("the channel's secret cannot be read on this server".into());
        }
    };
    let to_address = conversation
        .reply_to
        .as_ref()
        .filter(|i| i.kind == "email")
        .map(|i| i.value.clone())
        .or_else(|| customer.emails.first().cloned());
    let Some(to_address) = to_address else {
        return Attempt::Permanent("the customer has no e-mail address".into());
    };
    let to = match to_address.parse::<lettre::Address>() {
        Ok(a) => Mailbox::new(
            (!customer.name.is_empty()).then(|| customer.name.clone()),
            a,
        ),
        Err(_) => return Attempt::Permanent(format!("{to_address:?} is not an e-mail address")),
    };
    let from = match settings.from_address.parse::<lettre::Address>() {
        Ok(a) => Mailbox::new(
            (!settings.from_name.is_empty()).then(|| settings.from_name.clone()),
            a,
        ),
        Err(_) => return Attempt::Permanent("the channel's from address is invalid".into()),
    };
    let our_id = message_id_for(conversation.id, message.id, settings.domain());
    let subject = parse::reply_subject(&conversation.subject, conversation.id);
    let (in_reply_to, references) = match record_thread(
        core,
        channel.id,
        conversation.id,
        message.id,
        our_id.clone(),
        subject.clone(),
        settings.from_address.clone(),
    )
    .await
    {
        Ok(headers) => headers,
        Err(e) => {
            return Attempt::Temporary(format!("cannot record the e-mail thread: {}", e.message));
        }
    };
    let mut builder = lettre::Message::builder()
        .from(from)
        .to(to)
        .subject(subject)
        .message_id(Some(format!("<{our_id}>")))
        .date_now()
        .user_agent(concat!("AllHands/", env!("CARGO_PKG_VERSION")).to_string());
    if let Some(parent) = &in_reply_to {
        builder = builder.in_reply_to(format!("<{parent}>"));
    }
    if !references.is_empty() {
        builder = builder.references(
            references
                .iter()
                .map(|r| format!("<{r}>"))
                .collect::<Vec<_>>()
                .join(" "),
        );
    }
    let files = match load_files(core, message).await {
        Ok(f) => f,
        Err(e) => return Attempt::Temporary(format!("cannot read the attachments: {}", e.message)),
    };
    let built = if files.is_empty() {
        builder
            .header(ContentType::TEXT_PLAIN)
            .body(message.text.clone())
    } else {
        let mut parts = MultiPart::mixed().singlepart(SinglePart::plain(message.text.clone()));
        for (filename, content_type, bytes) in files {
            let content_type = ContentType::parse(&content_type)
                .unwrap_or_else(|_| ContentType::parse("application/octet-stream").expect("valid"));
            parts = parts
                .singlepart(lettre::message::Attachment::new(filename).body(bytes, content_type));
        }
        builder.multipart(parts)
    };
    let email = match built {
        Ok(e) => e,
        Err(e) => return Attempt::Permanent(format!("cannot build the e-mail: {e}")),
    };
    let transport = match transport(&settings, &password, core.config.delivery.timeout_secs) {
        Ok(t) => t,
        Err(e) => return Attempt::Permanent(e),
    };
    match transport.send(email).await {
        Ok(_) => Attempt::Delivered,
        Err(e) if e.is_permanent() => {
            Attempt::Permanent(format!("the SMTP server refused the e-mail: {e}"))
        }
        Err(e) => Attempt::Temporary(format!("the SMTP server could not take the e-mail: {e}")),
    }
}

fn transport(
    settings: &EmailSettings,
    password: &str,
    timeout_secs: u64,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
    let host = settings
        .smtp_host
        .trim_matches(|c| c == '[' || c == ']')
        .to_string();
    let tls = match settings.smtp_tls {
        TlsMode::Plain => Tls::None,
        mode => {
            let mut params = TlsParameters::builder(host.clone());
            for cert in pem_blocks(settings.ca_certificate.as_deref()) {
                let cert = Certificate::from_pem(cert.as_bytes())
                    .map_err(|e| format!("the CA certificate is unusable: {e}"))?;
                params = params.add_root_certificate(cert);
            }
            let params = params
                .build_rustls()
                .map_err(|e| format!("cannot set up TLS for SMTP: {e}"))?;
            if mode == TlsMode::Tls {
                Tls::Wrapper(params)
            } else {
                Tls::Required(params)
            }
        }
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
        .port(settings.smtp_port)
        .tls(tls)
        .timeout(Some(Duration::from_secs(timeout_secs.max(5))));
    if !settings.smtp_username.is_empty() {
        builder = builder.credentials(Credentials::new(
            settings.smtp_username.clone(),
            password.to_string(),
        ));
    }
    Ok(builder.build())
}

/// The files a reply carries: (name, type, bytes).
async fn load_files(core: &Core, message: &Message) -> AppResult<Vec<(String, String, Vec<u8>)>> {
    if message.attachments.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<u64> = message.attachments.iter().map(|a| a.id).collect();
    core.store
        .read(move |txn| {
            let mut out = Vec::new();
            for id in &ids {
                let attachment = crate::attachments::get(txn, *id)?;
                let bytes = crate::attachments::content(txn, &attachment)?;
                out.push((attachment.filename, attachment.content_type, bytes));
            }
            Ok(out)
        })
        .await
}

/// Each `-----BEGIN CERTIFICATE-----` block of a PEM text.
fn pem_blocks(pem: Option<&str>) -> Vec<String> {
    const END: &str = "-----END CERTIFICATE-----";
    let mut blocks = Vec::new();
    let mut rest = pem.unwrap_or_default();
    while let Some(start) = rest.find("-----BEGIN CERTIFICATE-----") {
        let Some(end) = rest[start..].find(END) else {
            break;
        };
        blocks.push(rest[start..start + end + END.len()].to_string());
        rest = &rest[start + end + END.len()..];
    }
    blocks
}

/// Before the first attempt: the thread index learns our Message-ID and the message keeps its
/// e-mail headers. Returns In-Reply-To and References. Idempotent, so retries redo it safely.
async fn record_thread(
    core: &Core,
    channel_id: u64,
    conversation_id: u64,
    message_id: u64,
    our_id: String,
    subject: String,
    from_address: String,
) -> AppResult<(Option<String>, Vec<String>)> {
    core.store
        .write(move |txn| {
            let messages = {
                let table = txn.open_table(tables::MESSAGES)?;
                let mut out: Vec<Message> = Vec::new();
                for row in table.range((conversation_id, 0)..=(conversation_id, u64::MAX))? {
                    out.push(codec::decode(row?.1.value())?);
                }
                out
            };
            let (in_reply_to, references) = thread_headers(&messages);
            super::remember_thread(txn, channel_id, &our_id, conversation_id, message_id)?;
            if let Some(mut message) = messages.into_iter().find(|m| m.id == message_id) {
                message.channel_message_id = Some(our_id.clone());
                message.email = Some(EmailMeta {
                    message_id: our_id.clone(),
                    in_reply_to: in_reply_to.iter().cloned().collect(),
                    references: references.clone(),
                    subject: subject.clone(),
                    from_address: Some(from_address.clone()),
                    ..Default::default()
                });
                txn.open_table(tables::MESSAGES)?.insert(
                    (conversation_id, message_id),
                    codec::encode(&message).as_slice(),
                )?;
            }
            Ok((in_reply_to, references))
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conversations::{Author, Message};

    fn inbound(id: u64, meta: Option<EmailMeta>) -> Message {
        Message {
            id,
            conversation_id: 1,
            direction: Direction::Inbound,
            author: Author::System,
            text: "x".into(),
            channel_message_id: None,
            delivery: None,
            created_at: 0,
            email: meta,
            attachments: Vec::new(),
            mentions: Vec::new(),
            sensitive: Vec::new(),
            emotion: None,
            rude: None,
        }
    }

    #[test]
    fn replies_thread_on_the_customers_last_mail() {
        assert_eq!(thread_headers(&[]), (None, vec![]));
        let first = EmailMeta {
            message_id: "a@c".into(),
            ..Default::default()
        };
        let second = EmailMeta {
            message_id: "b@c".into(),
            in_reply_to: vec!["allhands.1.2@s".into()],
            references: vec!["a@c".into(), "allhands.1.2@s".into()],
            ..Default::default()
        };
        let messages = [
            inbound(1, Some(first)),
            inbound(3, Some(second)),
            inbound(4, None),
        ];
        let (parent, refs) = thread_headers(&messages);
        assert_eq!(parent.as_deref(), Some("b@c"));
        assert_eq!(refs, ["a@c", "allhands.1.2@s", "b@c"]);
        assert_eq!(message_id_for(7, 9, "shop.test"), "allhands.7.9@shop.test");
    }

    #[test]
    fn pem_blocks_are_split() {
        let pem = "x\n-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nBBB\n-----END CERTIFICATE-----\n";
        assert_eq!(pem_blocks(Some(pem)).len(), 2);
        assert!(pem_blocks(None).is_empty());
    }
}
