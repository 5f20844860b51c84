//! From the raw bytes of an e-mail to what the inbox stores: pure functions, no I/O.
//!
//! `parse` never fails and never panics: whatever arrives becomes a `ParsedEmail`, and a message
//! that cannot be read properly is flagged (`malformed`) rather than dropped. The text shown to
//! employees has quoted replies and signatures trimmed (`trim_reply`); the full text is kept.
//! Threading keys are the Message-ID, In-Reply-To and References headers (`message_ids`) and a
//! conversation token in the subject (`subject_token`).

use mail_parser::{HeaderValue, MessageParser, MimeHeaders, PartType};
use sha2::{Digest, Sha256};

/// Bytes of text kept from one e-mail (the message store's own limit is lower: see
/// `conversations::MAX_TEXT_BYTES`).
pub const MAX_TEXT_BYTES: usize = 60 * 1024;
/// Message-IDs kept from a References header (the newest ones).
pub const MAX_REFERENCES: usize = 30;

/// An e-mail, normalised.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParsedEmail {
    /// Without angle brackets; a hash of the raw message (`sha256:<hex>@allhands`) when the
    /// message has none, so a redelivery is still recognised.
    pub message_id: String,
    /// Whether `message_id` came from the message itself.
    pub has_message_id: bool,
    pub in_reply_to: Vec<String>,
    pub references: Vec<String>,
    pub subject: String,
    pub from_address: Option<String>,
    pub from_name: Option<String>,
    /// The whole text (text/plain preferred, else text made from the HTML).
    pub text: String,
    /// `text` without quoted replies and signatures, for display.
    pub display_text: String,
    pub attachments: Vec<ParsedAttachment>,
    /// An automatic answer (out-of-office, auto-responder): never answered automatically.
    pub auto_reply: bool,
    /// A delivery status notification about mail we sent.
    pub bounce: Option<Bounce>,
    /// Why the message could not be read properly; it is still stored.
    pub malformed: Option<String>,
    /// SHA-256 of the raw bytes, hex.
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ParsedAttachment {
    pub filename: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// What a delivery status notification says.
#[derive(Debug, Clone, PartialEq)]
pub struct Bounce {
    /// Message-IDs of the original messages (ours, if we sent them).
    pub original_message_ids: Vec<String>,
    pub reason: String,
}

/// Parses any bytes into a `ParsedEmail`.
pub fn parse(raw: &[u8]) -> ParsedEmail {
    let sha256 = hex::encode(Sha256::digest(raw));
    // mail-parser is written not to panic on any input; this keeps that promise ours even if a
    // future version broke it: one bad e-mail must never stop a mailbox.
    let parsed = std::panic::catch_unwind(|| parse_inner(raw, &sha256));
    let mut email = parsed.unwrap_or_else(|_| ParsedEmail {
        malformed: Some("the message could not be parsed".into()),
        text: lossy_text(raw),
        ..Default::default()
    });
    if email.message_id.is_empty() {
        email.message_id = format!("sha256:{sha256}@allhands");
        email.has_message_id = false;
    }
    email.sha256 = sha256;
    email.text = clip(&email.text.replace("\r\n", "\n"), MAX_TEXT_BYTES);
    email.display_text = trim_reply(&email.text);
    email
}

fn parse_inner(raw: &[u8], sha256: &str) -> ParsedEmail {
    let Some(message) = MessageParser::default().parse(raw) else {
        return ParsedEmail {
            malformed: Some("not an e-mail message (no headers)".into()),
            text: lossy_text(raw),
            sha256: sha256.to_string(),
            ..Default::default()
        };
    };
    let mut problems: Vec<String> = Vec::new();
    let message_id = message
        .message_id()
        .map(normalise_id)
        .filter(|id| !id.is_empty() && id.len() <= 500)
        .unwrap_or_default();
    let has_message_id = !message_id.is_empty();
    let in_reply_to = header_ids(message.in_reply_to());
    let mut references = header_ids(message.references());
    if references.len() > MAX_REFERENCES {
        references.drain(..references.len() - MAX_REFERENCES);
    }
    let subject = message
        .subject()
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    let from = message.from().and_then(|a| a.first());
    let from_address = from
        .and_then(|a| a.address())
        .map(|a| a.trim().to_string())
        .filter(|a| plausible_address(a));
    let from_name = from
        .and_then(|a| a.name())
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty());
    if from_address.is_none() {
        problems.push("no valid From address".into());
    }
    let root_type = message.root_part().content_type();
    let unbounded = root_type.is_some_and(|ct| {
        ct.ctype().eq_ignore_ascii_case("multipart")
            && ct.attribute("boundary").is_none_or(str::is_empty)
    });
    if unbounded {
        problems.push("a multipart message without a boundary".into());
    }
    if message.parts.iter().any(|p| p.is_encoding_problem) {
        problems.push("a part is damaged or wrongly encoded".into());
    }

    // text/plain first; mail-parser would offer its own rendering of the HTML as "text", but
    // ours keeps line structure predictable.
    let plain = message
        .text_bodies()
        .find(|p| p.is_text() && !p.is_text_html())
        .and_then(|p| p.text_contents())
        .filter(|t| !t.trim().is_empty())
        .map(str::to_string);
    let mut text = plain
        .or_else(|| {
            message
                .html_bodies()
                .find(|p| p.is_text_html())
                .and_then(|p| p.text_contents())
                .map(html_to_text)
        })
        .unwrap_or_default();
    if text.trim().is_empty() && !problems.is_empty() {
        // Whatever follows the headers, so that an unreadable message still shows something.
        let body_start = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|p| p + 4)
            .or_else(|| raw.windows(2).position(|w| w == b"\n\n").map(|p| p + 2))
            .unwrap_or(0);
        text = lossy_text(&raw[body_start..]);
    }

    let auto_reply = is_auto_reply(&message);
    let bounce = detect_bounce(&message);

    let mut attachments = Vec::new();
    // Without a boundary there are no parts to tell apart: the body is text, kept whole.
    for part in message.attachments().filter(|_| !unbounded) {
        let bytes = match &part.body {
            PartType::Binary(b) | PartType::InlineBinary(b) => b.to_vec(),
            PartType::Text(t) | PartType::Html(t) => t.as_bytes().to_vec(),
            PartType::Message(m) => m.raw_message.to_vec(),
            PartType::Multipart(_) => continue,
        };
        let content_type = part
            .content_type()
            .map(|ct| match ct.subtype() {
                Some(sub) => format!("{}/{}", ct.ctype(), sub),
                None => ct.ctype().to_string(),
            })
            .unwrap_or_else(|| "application/octet-stream".into())
            .to_ascii_lowercase();
        let filename = part
            .attachment_name()
            .map(str::to_string)
            .unwrap_or_else(|| format!("attachment-{}", attachments.len() + 1));
        attachments.push(ParsedAttachment {
            filename,
            content_type,
            bytes,
        });
    }

    ParsedEmail {
        message_id,
        has_message_id,
        in_reply_to,
        references,
        subject,
        from_address,
        from_name,
        text,
        display_text: String::new(),
        attachments,
        auto_reply,
        bounce,
        malformed: (!problems.is_empty()).then(|| problems.join("; ")),
        sha256: sha256.to_string(),
    }
}

fn lossy_text(raw: &[u8]) -> String {
    clip(&String::from_utf8_lossy(raw), MAX_TEXT_BYTES)
}

/// At most `max` bytes, cut at a character boundary.
pub fn clip(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

fn plausible_address(address: &str) -> bool {
    let Some((local, domain)) = address.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && address.len() <= 254
        && !address.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// A Message-ID without its angle brackets and surrounding space.
pub fn normalise_id(id: &str) -> String {
    id.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim()
        .to_string()
}

fn header_ids(value: &HeaderValue<'_>) -> Vec<String> {
    let mut ids = Vec::new();
    match value {
        HeaderValue::Text(t) => ids.extend(message_ids(t)),
        HeaderValue::TextList(list) => {
            for t in list {
                ids.extend(message_ids(t));
            }
        }
        _ => {}
    }
    let mut seen = std::collections::HashSet::new();
    ids.retain(|id| seen.insert(id.clone()));
    ids
}

/// The Message-IDs in a header value: `<a@b> <c@d>`, or bare ids separated by space or commas.
pub fn message_ids(value: &str) -> Vec<String> {
    let mut ids = Vec::new();
    if value.contains('<') {
        let mut rest = value;
        while let Some(start) = rest.find('<') {
            let after = &rest[start + 1..];
            let Some(end) = after.find('>') else { break };
            let id = normalise_id(&after[..end]);
            if !id.is_empty() && id.len() <= 500 && !id.contains(char::is_whitespace) {
                ids.push(id);
            }
            rest = &after[end + 1..];
        }
    } else {
        for token in value.split(|c: char| c.is_whitespace() || c == ',') {
            let id = normalise_id(token);
            if !id.is_empty() && id.len() <= 500 && id.contains('@') {
                ids.push(id);
            }
        }
    }
    ids
}

/// The conversation token `[#123]` in a subject (the last one wins).
pub fn subject_token(subject: &str) -> Option<u64> {
    let mut found = None;
    let mut rest = subject;
    while let Some(start) = rest.find("[#") {
        let after = &rest[start + 2..];
        let digits: String = after.chars().take_while(|c| c.is_ascii_digit()).collect();
        if !digits.is_empty()
            && after[digits.len()..].starts_with(']')
            && let Ok(n) = digits.parse::<u64>()
        {
            found = Some(n);
        }
        rest = after;
    }
    found
}

/// The text with every `[#<digits>]` taken out, other `[#` left as they are.
fn without_tokens(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("[#") {
        let after = &rest[start + 2..];
        let digits = after.chars().take_while(|c| c.is_ascii_digit()).count();
        if digits > 0 && after[digits..].starts_with(']') {
            out.push_str(&rest[..start]);
            rest = &after[digits + 1..];
        } else {
            out.push_str(&rest[..start + 2]);
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// The subject without reply/forward prefixes and conversation tokens: what a thread is about.
pub fn base_subject(subject: &str) -> String {
    // Removing one token can join its neighbours into another ("[#[#1]2]"): repeat until none.
    let mut s = subject.to_string();
    loop {
        let next = without_tokens(&s);
        if next == s {
            break;
        }
        s = next;
    }
    let mut s = s.trim();
    loop {
        let lower = s.to_lowercase();
        let prefix = [
            "re:",
            "re：",
            "fw:",
            "fwd:",
            "aw:",
            "wg:",
            "sv:",
            "回复:",
            "回复：",
            "答复:",
            "答复：",
            "转发:",
            "转发：",
        ]
        .iter()
        .find(|p| lower.starts_with(*p));
        match prefix {
            // The prefixes are ASCII or CJK with the same length in both cases.
            Some(p) => s = s.get(p.len()..).unwrap_or("").trim_start(),
            None => break,
        }
    }
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The subject of our reply: `Re: <base> [#<conversation>]`.
pub fn reply_subject(conversation_subject: &str, conversation_id: u64) -> String {
    let base = base_subject(conversation_subject);
    if base.is_empty() {
        format!("[#{conversation_id}]")
    } else {
        format!("Re: {base} [#{conversation_id}]")
    }
}

/// Cuts quoted replies and the signature from an e-mail's text, for display. Never returns an
/// empty text for a non-empty one: when everything would be cut, the whole text is shown.
pub fn trim_reply(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut end = lines.len();
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim();
        let next = lines.get(i + 1).map(|l| l.trim()).unwrap_or("");
        let is_cut = line.trim_end() == "--"
            || *line == "-- "
            || (t.starts_with("On ") && t.ends_with("wrote:"))
            || (t.starts_with("On ") && !t.ends_with('.') && next.ends_with("wrote:"))
            || (t.starts_with('在') && (t.ends_with("写道：") || t.ends_with("写道:")))
            || is_separator(t, "original message")
            || is_separator(t, "原始邮件")
            || is_separator(t, "forwarded message")
            || (t.starts_with("________") && next.starts_with("From:"))
            || (t.starts_with("From:")
                && i > 0
                && lines[i - 1].trim().is_empty()
                && has_outlook_block(&lines[i..]));
        if is_cut {
            end = i;
            break;
        }
    }
    let mut kept: Vec<&str> = lines[..end].to_vec();
    // A quoted block at the end (replies written on top) goes too; quotes within the text stay.
    while kept
        .last()
        .is_some_and(|l| l.trim_start().starts_with('>') || l.trim().is_empty())
    {
        kept.pop();
    }
    let trimmed = kept.join("\n").trim().to_string();
    if trimmed.is_empty() {
        text.trim().to_string()
    } else {
        trimmed
    }
}

fn is_separator(line: &str, words: &str) -> bool {
    let lower = line.to_lowercase();
    lower.starts_with("-----") && lower.contains(words)
}

/// `From:` followed within a few lines by `Sent:`/`Date:` and `Subject:`: an Outlook quote header.
fn has_outlook_block(lines: &[&str]) -> bool {
    let head: Vec<&str> = lines.iter().take(6).map(|l| l.trim()).collect();
    head.iter()
        .any(|l| l.starts_with("Sent:") || l.starts_with("Date:") || l.starts_with("发送时间"))
        && head
            .iter()
            .any(|l| l.starts_with("Subject:") || l.starts_with("主题"))
}

/// Readable text from HTML: tags dropped, block elements as line breaks, entities decoded.
pub fn html_to_text(html: &str) -> String {
    let mut out = String::new();
    let mut chars = html.char_indices().peekable();
    let lower = html.to_ascii_lowercase();
    let mut skip_until: Option<&str> = None;
    while let Some((i, c)) = chars.next() {
        if let Some(end) = skip_until {
            if !lower[i..].starts_with(end) {
                continue;
            }
            skip_until = None;
        }
        if c == '<' {
            let tag: String = lower[i + 1..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '/')
                .collect();
            if tag == "script" || tag == "style" {
                skip_until = Some(if tag == "script" {
                    "</script"
                } else {
                    "</style"
                });
            }
            if matches!(
                tag.trim_start_matches('/'),
                "br" | "p" | "div" | "li" | "tr" | "h1" | "h2" | "h3" | "h4" | "blockquote"
            ) {
                out.push('\n');
            }
            for (_, c) in chars.by_ref() {
                if c == '>' {
                    break;
                }
            }
            continue;
        }
        if c == '&' {
            let entity: String = html[i + 1..]
                .chars()
                .take_while(|c| *c != ';')
                .take(10)
                .collect();
            let decoded = match entity.as_str() {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" | "#39" => Some('\''),
                "nbsp" | "#160" => Some(' '),
                e if e.starts_with("#x") => u32::from_str_radix(&e[2..], 16)
                    .ok()
                    .and_then(char::from_u32),
                e if e.starts_with('#') => e[1..].parse().ok().and_then(char::from_u32),
                _ => None,
            };
            if let Some(d) = decoded
                && html[i + 1..].len() > entity.len()
            {
                out.push(d);
                for _ in 0..=entity.chars().count() {
                    chars.next();
                }
                continue;
            }
        }
        out.push(c);
    }
    let lines: Vec<String> = out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    let mut text = String::new();
    let mut blank = 0;
    for line in lines {
        if line.is_empty() {
            blank += 1;
            if blank > 1 {
                continue;
            }
        } else {
            blank = 0;
        }
        text.push_str(&line);
        text.push('\n');
    }
    text.trim().to_string()
}

fn header_text(message: &mail_parser::Message<'_>, name: &str) -> Option<String> {
    message
        .header_raw(name)
        .map(|v| v.trim().to_ascii_lowercase())
}

fn is_auto_reply(message: &mail_parser::Message<'_>) -> bool {
    header_text(message, "Auto-Submitted").is_some_and(|v| !v.starts_with("no"))
        || message.header_raw("X-Autoreply").is_some()
        || message.header_raw("X-Autorespond").is_some()
        || header_text(message, "Precedence")
            .is_some_and(|v| matches!(v.as_str(), "auto_reply" | "bulk" | "junk"))
}

/// A delivery status notification: a `message/delivery-status` part (RFC 3464), whether or not
/// the report is labelled `multipart/report` (OpenSMTPD labels it `multipart/mixed`). The
/// original's Message-ID comes from the returned message or its headers.
fn detect_bounce(message: &mail_parser::Message<'_>) -> Option<Bounce> {
    let mut status_text = None;
    let mut originals = Vec::new();
    for part in &message.parts {
        let Some(ct) = part.content_type() else {
            continue;
        };
        let full = format!(
            "{}/{}",
            ct.ctype().to_ascii_lowercase(),
            ct.subtype().unwrap_or("").to_ascii_lowercase()
        );
        match full.as_str() {
            "message/delivery-status" | "message/global-delivery-status" => {
                status_text = Some(String::from_utf8_lossy(part.contents()).to_string());
            }
            "text/rfc822-headers" | "message/rfc822-headers" | "message/global-headers" => {
                originals.extend(ids_in_headers(&String::from_utf8_lossy(part.contents())));
            }
            "message/rfc822" | "message/global" => match &part.body {
                PartType::Message(m) => {
                    if let Some(id) = m.message_id() {
                        originals.push(normalise_id(id));
                    }
                }
                other => {
                    let bytes = match other {
                        PartType::Binary(b) | PartType::InlineBinary(b) => b.as_ref(),
                        PartType::Text(t) => t.as_bytes(),
                        _ => &[],
                    };
                    originals.extend(ids_in_headers(&String::from_utf8_lossy(bytes)));
                }
            },
            _ => {}
        }
    }
    let status = status_text?;
    let mut seen = std::collections::HashSet::new();
    originals.retain(|id| !id.is_empty() && seen.insert(id.clone()));
    Some(Bounce {
        original_message_ids: originals,
        reason: bounce_reason(&status, message),
    })
}

/// The Message-ID header among message headers (unfolded).
fn ids_in_headers(headers: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for line in headers.lines() {
        if line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.trim().eq_ignore_ascii_case("message-id")
        {
            ids.extend(message_ids(value));
        }
    }
    ids
}

fn bounce_reason(status: &str, message: &mail_parser::Message<'_>) -> String {
    let field = |name: &str| {
        status.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    };
    let recipient = field("Final-Recipient")
        .or_else(|| field("Original-Recipient"))
        .map(|r| r.rsplit(';').next().unwrap_or(&r).trim().to_string());
    let diagnostic =
        field("Diagnostic-Code").map(|d| d.rsplit(';').next().unwrap_or(&d).trim().to_string());
    let code = field("Status");
    // Some MTAs (OpenSMTPD) put the remote server's answer only in the human-readable part.
    let from_text = recipient.as_ref().and_then(|r| {
        message.body_text(0).and_then(|t| {
            t.lines()
                .map(str::trim)
                .find(|l| l.starts_with(&format!("{r}:")))
                .map(|l| l[r.len() + 1..].trim().to_string())
        })
    });
    let detail = diagnostic
        .or(from_text)
        .or_else(|| code.clone().map(|c| format!("status {c}")))
        .unwrap_or_else(|| "the message could not be delivered".into());
    let reason = match recipient {
        Some(r) => format!("bounced: {r}: {detail}"),
        None => format!("bounced: {detail}"),
    };
    clip(&reason, 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAIN: &[u8] = b"From: =?UTF-8?B?6ZmI6Z2Z?= <chen@example.com>\r\nTo: support@shop.test\r\nSubject: Re: Refund [#42]\r\nMessage-ID: <m2@example.com>\r\nIn-Reply-To: <allhands.42.7@shop.test>\r\nReferences: <m1@example.com>\r\n <allhands.42.7@shop.test>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThanks, that works.\r\n\r\nOn Mon, 1 Jun 2026 at 10:00, Support <support@shop.test> wrote:\r\n> Refunded today.\r\n";

    #[test]
    fn a_plain_reply_is_normalised_and_trimmed() {
        let e = parse(PLAIN);
        assert_eq!(e.message_id, "m2@example.com");
        assert!(e.has_message_id);
        assert_eq!(e.in_reply_to, ["allhands.42.7@shop.test"]);
        assert_eq!(e.references, ["m1@example.com", "allhands.42.7@shop.test"]);
        assert_eq!(e.from_address.as_deref(), Some("chen@example.com"));
        assert_eq!(e.from_name.as_deref(), Some("陈静"));
        assert_eq!(e.subject, "Re: Refund [#42]");
        assert_eq!(subject_token(&e.subject), Some(42));
        assert_eq!(e.display_text, "Thanks, that works.");
        assert!(e.text.contains("Refunded today."));
        assert!(e.malformed.is_none() && e.bounce.is_none() && !e.auto_reply);
    }

    #[test]
    fn html_only_mail_becomes_text() {
        let raw = b"From: a@b.c\r\nSubject: x\r\nContent-Type: text/html\r\n\r\n<html><style>p{}</style><p>Hello &amp; welcome</p><p>Line&nbsp;two<br>three</p></html>";
        let e = parse(raw);
        assert_eq!(e.text, "Hello & welcome\n\nLine two\nthree");
    }

    #[test]
    fn attachments_are_extracted() {
        let raw = b"From: a@b.c\r\nSubject: file\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n--XX\r\nContent-Type: application/pdf; name=\"invoice.pdf\"\r\nContent-Disposition: attachment; filename=\"invoice.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--XX--\r\n";
        let e = parse(raw);
        assert_eq!(e.text.trim(), "See attached.");
        assert_eq!(e.attachments.len(), 1);
        assert_eq!(e.attachments[0].filename, "invoice.pdf");
        assert_eq!(e.attachments[0].content_type, "application/pdf");
        assert_eq!(e.attachments[0].bytes, b"%PDF-1.4\n");
        assert!(e.malformed.is_none(), "{:?}", e.malformed);
    }

    #[test]
    fn malformed_messages_are_flagged_with_a_reason() {
        let e = parse(
            b"Subject: no sender\r\nContent-Type: multipart/mixed\r\n\r\nbody without parts\r\n",
        );
        let why = e.malformed.unwrap();
        assert!(why.contains("From"), "{why}");
        assert!(why.contains("boundary"), "{why}");
        assert!(e.message_id.starts_with("sha256:"));
        assert!(e.text.contains("body without parts"));
        let e = parse(b"");
        assert!(e.malformed.is_some());
        let e = parse(&[0xff, 0xfe, 0x00, 0x13]);
        assert!(e.malformed.is_some());
    }

    #[test]
    fn auto_replies_are_recognised() {
        let e = parse(b"From: a@b.c\r\nAuto-Submitted: auto-replied\r\nSubject: Out of office\r\n\r\nAway.\r\n");
        assert!(e.auto_reply);
        let e = parse(b"From: a@b.c\r\nAuto-Submitted: no\r\nSubject: hi\r\n\r\nHi.\r\n");
        assert!(!e.auto_reply);
    }

    #[test]
    fn opensmtpd_bounces_name_our_message_and_the_reason() {
        let raw = b"Subject: Delivery status notification: failed\r\nFrom: Mailer Daemon <MAILER-DAEMON@localhost>\r\nTo: support@allhands.test\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed;boundary=\"B/localhost\"\r\nMessage-ID: <x1@vm>\r\n\r\nThis is a MIME-encapsulated message.\r\n\r\n--B/localhost\r\nContent-Description: Notification\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n    Hi!\r\n\r\ngone@customer.test: 550 5.1.1 <gone@customer.test> User doesn't exist: gone@customer.test\r\n\r\n--B/localhost\r\nContent-Description: Delivery Report\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; localhost\r\n\r\nFinal-Recipient: rfc822; gone@customer.test\r\nAction: failed\r\nStatus: 5.0.0\r\n\r\n--B/localhost\r\nContent-Description: Message headers\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: support@allhands.test\r\nTo: gone@customer.test\r\nSubject: Re: hello\r\nMessage-ID: <ours-1@allhands.test>\r\n\r\n--B/localhost--\r\n";
        let bounce = parse(raw).bounce.unwrap();
        assert_eq!(bounce.original_message_ids, ["ours-1@allhands.test"]);
        assert!(
            bounce.reason.contains("gone@customer.test"),
            "{}",
            bounce.reason
        );
        assert!(
            bounce.reason.contains("User doesn't exist"),
            "{}",
            bounce.reason
        );
    }

    #[test]
    fn rfc3464_reports_with_the_returned_message() {
        let raw = b"From: postmaster@mx.test\r\nTo: s@shop.test\r\nSubject: Undelivered\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=R\r\n\r\n--R\r\nContent-Type: text/plain\r\n\r\nFailed.\r\n--R\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.test\r\n\r\nFinal-Recipient: rfc822; x@y.test\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 mailbox unavailable\r\n\r\n--R\r\nContent-Type: message/rfc822\r\n\r\nFrom: s@shop.test\r\nMessage-ID: <allhands.3.9@shop.test>\r\nSubject: Re: x\r\n\r\nhello\r\n--R--\r\n";
        let bounce = parse(raw).bounce.unwrap();
        assert_eq!(bounce.original_message_ids, ["allhands.3.9@shop.test"]);
        assert_eq!(
            bounce.reason,
            "bounced: x@y.test: 550 5.1.1 mailbox unavailable"
        );
    }

    #[test]
    fn quotes_and_signatures_are_trimmed() {
        assert_eq!(trim_reply("Yes please.\n\n-- \nJane\nACME"), "Yes please.");
        assert_eq!(
            trim_reply("好的，谢谢\n\n在 2026年6月1日 10:00，客服 <s@shop.test> 写道：\n> 已退款"),
            "好的，谢谢"
        );
        assert_eq!(
            trim_reply("Fine.\n-----Original Message-----\nFrom: x\nSent: y\nSubject: z\n\nold"),
            "Fine."
        );
        assert_eq!(
            trim_reply(
                "Fine.\n\nFrom: Support <s@shop.test>\nSent: Monday\nTo: me\nSubject: Re: x\n\nold"
            ),
            "Fine."
        );
        assert_eq!(trim_reply("Answer\n\n> quoted\n> more\n"), "Answer");
        assert_eq!(
            trim_reply("> you said\nI disagree\n> and\nagain"),
            "> you said\nI disagree\n> and\nagain"
        );
        assert_eq!(
            trim_reply("On Mon, 1 Jun 2026 at 10:00, Support\n<s@shop.test> wrote:\n> x"),
            "On Mon, 1 Jun 2026 at 10:00, Support\n<s@shop.test> wrote:\n> x",
            "nothing but a quote: the whole text is shown"
        );
        assert_eq!(
            trim_reply("Ok\n\nOn Mon, 1 Jun 2026 at 10:00, Support\n<s@shop.test> wrote:\n> x"),
            "Ok"
        );
    }

    #[test]
    fn subjects_and_ids() {
        assert_eq!(subject_token("Re: help [#12] and [#345]"), Some(345));
        assert_eq!(subject_token("[#] [#12a] [#x]"), None);
        assert_eq!(base_subject("RE: Fwd: 回复：退货 [#9]"), "退货");
        assert_eq!(reply_subject("Re: Refund [#4]", 4), "Re: Refund [#4]");
        assert_eq!(reply_subject("", 4), "[#4]");
        assert_eq!(message_ids("<a@b> <c@d>\r\n <e@f>"), ["a@b", "c@d", "e@f"]);
        assert_eq!(message_ids("a@b, c@d"), ["a@b", "c@d"]);
        assert_eq!(message_ids("<broken"), Vec::<String>::new());
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn parsing_arbitrary_bytes_never_panics(raw in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let e = parse(&raw);
            prop_assert!(!e.message_id.is_empty());
            prop_assert!(e.text.len() <= MAX_TEXT_BYTES);
        }

        #[test]
        fn parsing_mime_like_input_never_panics(
            headers in proptest::collection::vec(("(From|To|Subject|Message-ID|In-Reply-To|References|Content-Type|Content-Transfer-Encoding)", "[ -~]{0,60}"), 0..8),
            body in "(\\PC|\r\n|--[a-z]{0,4}){0,300}",
        ) {
            let mut raw = String::new();
            for (name, value) in &headers {
                raw.push_str(&format!("{name}: {value}\r\n"));
            }
            raw.push_str("\r\n");
            raw.push_str(&body);
            let _ = parse(raw.as_bytes());
        }

        /// Every id written into a References header comes back, in order, without brackets.
        #[test]
        fn thread_keys_round_trip(ids in proptest::collection::vec("[a-zA-Z0-9.$_-]{1,20}@[a-z0-9.-]{1,20}", 1..12), folded in any::<bool>()) {
            let sep = if folded { "\r\n " } else { " " };
            let header = ids.iter().map(|i| format!("<{i}>")).collect::<Vec<_>>().join(sep);
            let raw = format!("From: a@b.c\r\nMessage-ID: <{}>\r\nReferences: {header}\r\nIn-Reply-To: <{}>\r\nSubject: s\r\n\r\nx\r\n", ids[0], ids[ids.len() - 1]);
            let e = parse(raw.as_bytes());
            let mut expected = ids.clone();
            let mut seen = std::collections::HashSet::new();
            expected.retain(|i| seen.insert(i.clone()));
            prop_assert_eq!(&e.references, &expected);
            prop_assert_eq!(e.message_id, ids[0].clone());
            prop_assert_eq!(e.in_reply_to, vec![ids[ids.len() - 1].clone()]);
        }

        /// A stray `[#` or tokens nested in each other never leave a token in the base subject.
        #[test]
        fn base_subjects_hold_no_token(subject in "(\\[#|[0-9]|\\]|x){0,30}") {
            let base = base_subject(&subject);
            prop_assert_eq!(subject_token(&base), None);
        }

        /// The token we put in a subject is the one we read back, whatever surrounds it.
        #[test]
        fn subject_tokens_round_trip(subject in "\\PC{0,80}", id in 1u64..u64::MAX) {
            let ours = reply_subject(&subject, id);
            prop_assert_eq!(subject_token(&ours), Some(id));
            prop_assert_eq!(subject_token(&format!("Re: {ours}")), Some(id));
            let token = format!("[#{}]", id);
            prop_assert!(!base_subject(&ours).contains(&token));
        }

        /// Trimming only ever removes text: the display is never empty when the text is not,
        /// and every displayed line is a line of the original, in order.
        #[test]
        fn trimming_never_loses_the_original(lines in proptest::collection::vec(prop_oneof![
            "\\PC{0,40}",
            Just("-- ".to_string()),
            Just("> quoted".to_string()),
            Just("On Mon, Jane <j@x.y> wrote:".to_string()),
            Just("在 2026年6月1日，客服 写道：".to_string()),
            Just("-----Original Message-----".to_string()),
            Just(String::new()),
        ], 0..20)) {
            let text = lines.join("\n");
            let shown = trim_reply(&text);
            if !text.trim().is_empty() {
                prop_assert!(!shown.is_empty());
            }
            let mut original = text.lines().map(str::trim);
            for line in shown.lines() {
                let line = line.trim();
                prop_assert!(original.any(|o| o == line || o.contains(line)), "{:?} not in {:?}", line, text);
            }
        }
    }
}
