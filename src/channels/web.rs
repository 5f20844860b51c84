//! The web chat channel: the widget a site embeds with one script tag (`docs/widget.md` is the
//! wire protocol).
//!
//! A visitor gets a random token (kept hashed, like console sessions) that finds them again on
//! the next visit. Before their first message a visitor is nobody: no customer exists and the
//! pages they view wait on the visitor record, so crawlers and passers-by leave no profiles. A
//! site's signed-in user is identified by `HMAC-SHA256(identity secret, user id)`, computed by
//! the site's server, which makes them one customer across visits and devices.
//!
//! Replies to a web conversation need no delivery attempt: the message is stored, pushed to
//! the customer's open widgets, and replayed to any widget that connects later.

use std::collections::BTreeMap;

use hmac::{Hmac, Mac};
use redb::{ReadTransaction, ReadableTable};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::Sha256;

use crate::attachments::{self, AttachmentRef, Owner};
use crate::channels::{self, Channel, ChannelKind};
use crate::clock::Millis;
use crate::collaboration::hub::{Event, Typist, VisitorFrame};
use crate::conversations::service::{self as conversations, InboundMessage};
use crate::conversations::{Author, Conversation, DeliveryState, Direction, Message};
use crate::customers::{self, CustomerHint, Identity};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::state::Core;
use crate::storage::{Record, WriteTxn, codec, get_record, next_id, tables};

/// Page views a visitor who has not written yet keeps, newest last.
const PENDING_PAGE_VIEWS: usize = 20;
/// Messages replayed to a widget that connects, at most.
const REPLAY_LIMIT: usize = 200;

pub fn check_settings(settings: &serde_json::Value) -> AppResult<()> {
    let Some(map) = settings.as_object() else {
        return Err(AppError::field("settings", "must be an object"));
    };
    let one_of = |key: &str, value: &serde_json::Value, allowed: &[&str]| -> AppResult<()> {
        match value.as_str() {
            Some(v) if allowed.contains(&v) => Ok(()),
            _ => Err(AppError::field(
                &format!("settings.{key}"),
                format!("must be one of {}", allowed.join(", ")),
            )),
        }
    };
    for (key, value) in map {
        match key.as_str() {
            "colour" => {
                let ok = value.as_str().is_some_and(|c| {
                    c.len() == 7
                        && c.starts_with('#')
                        && c[1..].chars().all(|ch| ch.is_ascii_hexdigit())
                });
                if !ok {
                    return Err(AppError::field("settings.colour", "must be #rrggbb"));
                }
            }
            "position" => one_of(key, value, &["right", "left"])?,
            "language" => one_of(key, value, &["auto", "en", "zh-CN"])?,
            "greeting" => {
                let Some(greetings) = value.as_object() else {
                    return Err(AppError::field(
                        "settings.greeting",
                        "must be an object of language -> text",
                    ));
                };
                for (language, text) in greetings {
                    if !["en", "zh-CN"].contains(&language.as_str()) {
                        return Err(AppError::field(
                            "settings.greeting",
                            format!("unknown language {language:?}"),
                        ));
                    }
                    if text.as_str().is_none_or(|t| t.chars().count() > 500) {
                        return Err(AppError::field(
                            &format!("settings.greeting.{language}"),
                            "must be text of at most 500 characters",
                        ));
                    }
                }
            }
            "email_fallback_channel_id" => {
                if !(value.is_null() || value.as_u64().is_some_and(|id| id > 0)) {
                    return Err(AppError::field(
                        "settings.email_fallback_channel_id",
                        "must be the id of an e-mail channel, or null",
                    ));
                }
            }
            "prechat" => {
                let Some(fields) = value.as_object() else {
                    return Err(AppError::field("settings.prechat", "must be an object"));
                };
                for (field, rule) in fields {
                    if !["name", "email"].contains(&field.as_str()) {
                        return Err(AppError::field(
                            "settings.prechat",
                            format!("unknown field {field:?}"),
                        ));
                    }
                    one_of(
                        &format!("prechat.{field}"),
                        rule,
                        &["required", "optional", "off"],
                    )?;
                }
            }
            "allowed_origins" => {
                let Some(origins) = value.as_array() else {
                    return Err(AppError::field(
                        "settings.allowed_origins",
                        "must be a list of origins",
                    ));
                };
                for origin in origins {
                    let ok = origin.as_str().is_some_and(|o| {
                        let o = o.trim_end_matches('/');
                        o.strip_prefix("https://")
                            .or_else(|| o.strip_prefix("http://"))
                            .is_some_and(|host| {
                                !host.is_empty() && !host.contains(['/', ' ', '?', '#', '@'])
                            })
                    });
                    if !ok {
                        return Err(AppError::field(
                            "settings.allowed_origins",
                            format!(
                                "{origin} is not an origin like https://shop.example.com (scheme and host, no path)"
                            ),
                        ));
                    }
                }
            }
            other => {
                return Err(AppError::field(
                    "settings",
                    format!("unknown setting {other:?} for a web chat channel"),
                ));
            }
        }
    }
    Ok(())
}

/// The look and behaviour the widget is given, with defaults filled in.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct WidgetSettings {
    pub colour: String,
    pub position: String,
    pub language: String,
    pub greeting: BTreeMap<String, String>,
    pub prechat: BTreeMap<String, String>,
}

impl WidgetSettings {
    pub fn of(channel: &Channel) -> WidgetSettings {
        let s = &channel.settings;
        let text = |key: &str, default: &str| s[key].as_str().unwrap_or(default).to_string();
        let mut greeting = BTreeMap::from([
            ("en".to_string(), "Hi! How can we help?".to_string()),
            ("zh-CN".to_string(), "您好！有什么可以帮您？".to_string()),
        ]);
        if let Some(given) = s["greeting"].as_object() {
            for (language, value) in given {
                if let Some(v) = value.as_str().filter(|v| !v.trim().is_empty()) {
                    greeting.insert(language.clone(), v.to_string());
                }
            }
        }
        let mut prechat = BTreeMap::from([
            ("name".to_string(), "optional".to_string()),
            ("email".to_string(), "optional".to_string()),
        ]);
        if let Some(given) = s["prechat"].as_object() {
            for (field, value) in given {
                if let Some(v) = value.as_str() {
                    prechat.insert(field.clone(), v.to_string());
                }
            }
        }
        WidgetSettings {
            colour: text("colour", "#1f6feb"),
            position: text("position", "right"),
            language: text("language", "auto"),
            greeting,
            prechat,
        }
    }
}

/// Whether a page on `origin` may use this channel's widget.
pub fn origin_allowed(channel: &Channel, origin: Option<&str>) -> bool {
    let Some(allowed) = channel.settings["allowed_origins"].as_array() else {
        return true;
    };
    if allowed.is_empty() {
        return true;
    }
    let Some(origin) = origin else {
        // Not a browser request (curl, a server): origins only bind browsers anyway.
        return true;
    };
    allowed
        .iter()
        .filter_map(|a| a.as_str())
        .any(|a| a.trim_end_matches('/').eq_ignore_ascii_case(origin))
}

/// Searches from one client address allowed per minute in the widget.
const SEARCHES_PER_MINUTE: u32 = 30;

/// The channel must be an enabled web chat whose allowed origins include the page's.
async fn require_embeddable(core: &Core, channel_id: u64, origin: Option<&str>) -> AppResult<()> {
    let cached = web_channel(core, channel_id).await?;
    if !origin_allowed(&cached.channel, origin) {
        return Err(AppError::new(
            ErrorCode::OriginNotAllowed,
            "this site is not allowed to use the chat widget of this channel",
        ));
    }
    Ok(())
}

/// The widget's search of the public help articles, before (or instead of) a chat: the help
/// centre's engine, counted for knowledge gaps as the widget's; limited per client address.
pub async fn search_articles(
    core: &Core,
    channel_id: u64,
    origin: Option<&str>,
    address: &str,
    query: crate::knowledge::ops::SearchQuery,
) -> AppResult<crate::knowledge::ops::SearchResults> {
    require_embeddable(core, channel_id, origin).await?;
    let now = core.now();
    let channel = channel_id.to_string();
    if let Some(wait) = core.widget_searches.check(&channel, address, now) {
        return Err(AppError::throttled(wait));
    }
    core.widget_searches.record_failure(&channel, address, now);
    crate::knowledge::ops::widget_search(core, query).await
}

/// A public help article opened inside the widget.
pub async fn help_article(
    core: &Core,
    channel_id: u64,
    origin: Option<&str>,
    article_id: u64,
) -> AppResult<crate::knowledge::ops::PublicArticle> {
    require_embeddable(core, channel_id, origin).await?;
    crate::knowledge::ops::public_article(core, article_id).await
}

/// Counts the widget's searches per client address over a minute.
pub fn search_throttle() -> crate::auth::throttle::LoginThrottle {
    // The "account" side counts per channel without a limit; the address side limits.
    crate::auth::throttle::LoginThrottle::new(1, u32::MAX, SEARCHES_PER_MINUTE)
}

/// `hex(HMAC-SHA256(identity secret, user id))`, what the site's server computes.
pub fn identity_signature(secret: &str, user_id: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(user_id.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
pub struct PageView {
    pub url: String,
    #[serde(default)]
    pub title: String,
    pub at: Millis,
}

/// One browser (or one signed-in user on it) talking through the widget.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Visitor {
    pub id: u64,
    pub channel_id: u64,
    /// Set by the visitor's first message or form; until then they are nobody.
    pub customer_id: Option<u64>,
    /// The site's own id for a signed-in user.
    pub user_id: Option<String>,
    #[serde(default)]
    pub pending_page_views: Vec<PageView>,
    pub created_at: Millis,
    pub last_seen_at: Millis,
}

impl Record for Visitor {
    const KIND: &'static str = "web visitor";
}

impl Visitor {
    pub fn identity(&self) -> Identity {
        let value = match &self.user_id {
            Some(user) => format!("user:{user}"),
            None => format!("visitor:{}", self.id),
        };
        Identity::new(format!("web:{}", self.channel_id), value)
    }
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SiteUser {
    pub id: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub signature: String,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PageInfo {
    pub url: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub referrer: String,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionRequest {
    pub visitor_token: Option<String>,
    pub user: Option<SiteUser>,
    pub page: Option<PageInfo>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct WidgetCustomer {
    pub name: String,
    pub email: Option<String>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SessionAnswer {
    pub visitor_token: String,
    pub customer: Option<WidgetCustomer>,
    pub settings: WidgetSettings,
    /// Someone is signed in to the console; otherwise the widget offers to leave a message.
    pub online: bool,
    /// A required pre-chat field is still missing.
    pub needs_prechat: bool,
}

/// A message as the widget shows it: no internal notes, no employee ids.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct WidgetMessage {
    pub id: u64,
    pub direction: Direction,
    pub text: String,
    pub author_name: Option<String>,
    pub attachments: Vec<WidgetAttachment>,
    pub created_at: Millis,
    pub state: DeliveryState,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct WidgetAttachment {
    pub id: u64,
    pub filename: String,
    pub content_type: String,
    pub size: u64,
    pub url: String,
}

/// A visitor whose token checked out, with their channel.
#[derive(Debug, Clone)]
/// A widget connection's channel (shared with the channel cache, not copied per connection:
/// thousands of idle widgets hold one each) and its visitor.
pub struct VisitorContext {
    channel: std::sync::Arc<channels::cache::CachedChannel>,
    pub visitor: Visitor,
}

impl VisitorContext {
    pub fn channel(&self) -> &Channel {
        &self.channel.channel
    }

    fn identity_secret(&self) -> &str {
        identity_secret(&self.channel)
    }
}

fn token_hash(token: &str) -> [u8; 32] {
    crate::auth::sha256(token.as_bytes())
}

/// An enabled web chat with its secrets, from the channel cache.
async fn web_channel(
    core: &Core,
    channel_id: u64,
) -> AppResult<std::sync::Arc<channels::cache::CachedChannel>> {
    let cached = channels::cache::cached(core, channel_id).await?;
    if cached.channel.kind != ChannelKind::Web || !cached.channel.enabled {
        return Err(AppError::not_found("channel"));
    }
    Ok(cached)
}

fn identity_secret(channel: &channels::cache::CachedChannel) -> &str {
    channel.secrets["identity_secret"]
        .as_str()
        .unwrap_or_default()
}

fn load_visitor_in_write(txn: &WriteTxn, hash: &[u8; 32]) -> AppResult<Option<Visitor>> {
    let table = txn.open_table(tables::VISITORS)?;
    let found = table
        .get(hash.as_slice())?
        .map(|v| codec::decode::<Visitor>(v.value()))
        .transpose()?;
    Ok(found)
}

fn save_visitor(txn: &WriteTxn, hash: &[u8; 32], visitor: &Visitor) -> AppResult<()> {
    txn.open_table(tables::VISITORS)?
        .insert(hash.as_slice(), codec::encode(visitor).as_slice())?;
    Ok(())
}

/// Starts or resumes a visitor's session: checks the page's origin and a signed-in user's
/// signature, finds the visitor by token (or makes a new one), records the page view.
pub async fn start_session(
    core: &Core,
    channel_id: u64,
    origin: Option<&str>,
    request: SessionRequest,
) -> AppResult<SessionAnswer> {
    let cached = web_channel(core, channel_id).await?;
    let channel = &cached.channel;
    if !origin_allowed(channel, origin) {
        return Err(AppError::new(
            ErrorCode::OriginNotAllowed,
            "this site is not allowed to use the chat widget of this channel",
        ));
    }
    let secret = identity_secret(&cached).to_string();
    if let Some(user) = &request.user {
        if user.id.trim().is_empty() || user.id.len() > 200 {
            return Err(AppError::field("user.id", "must be 1 to 200 characters"));
        }
        let expected = identity_signature(&secret, &user.id);
        if !crate::auth::constant_time_eq(
            expected.as_bytes(),
            user.signature.trim().to_ascii_lowercase().as_bytes(),
        ) {
            return Err(AppError::new(
                ErrorCode::InvalidSignature,
                "the user's identity signature does not match",
            ));
        }
    }
    let page = request.page.as_ref().map(|p| PageView {
        url: p.url.chars().take(2000).collect(),
        title: p.title.chars().take(300).collect(),
        at: core.now(),
    });
    let given = request
        .visitor_token
        .filter(|t| t.starts_with("awv_") && t.len() < 100);
    let fresh = format!("awv_{}", crate::auth::random_token(32));
    let now = core.now();
    let user = request.user.clone();
    let (token, visitor) = core
        .store
        .write(move |txn| {
            let resumed = match &given {
                Some(token) => load_visitor_in_write(txn, &token_hash(token))?
                    .filter(|v| v.channel_id == channel_id)
                    .map(|v| (token.clone(), v)),
                None => None,
            };
            let (token, mut visitor) = match resumed {
                // A different signed-in user on the same browser is a different person.
                Some((token, v))
                    if user.is_none()
                        || v.user_id.as_deref() == user.as_ref().map(|u| u.id.as_str()) =>
                {
                    (token, v)
                }
                _ => (
                    fresh.clone(),
                    Visitor {
                        id: next_id(txn, "visitor")?,
                        channel_id,
                        customer_id: None,
                        user_id: user.as_ref().map(|u| u.id.clone()),
                        pending_page_views: Vec::new(),
                        created_at: now,
                        last_seen_at: now,
                    },
                ),
            };
            visitor.last_seen_at = now;
            if let Some(user) = &user {
                // A signed-in user is a customer at once: the same one on every device.
                let hint = CustomerHint {
                    name: user.name.clone(),
                    email: user.email.clone(),
                    phone: None,
                };
                let customer = customers::find_or_create(txn, &visitor.identity(), &hint, now)?;
                visitor.customer_id = Some(customer.id);
            }
            if let Some(page) = &page {
                record_page_view(txn, &mut visitor, page.clone(), now)?;
            }
            save_visitor(txn, &token_hash(&token), &visitor)?;
            Ok((token, visitor))
        })
        .await?;
    let settings = WidgetSettings::of(channel);
    let customer = match visitor.customer_id {
        Some(id) => {
            let c = core.store.read(move |txn| customers::get(txn, id)).await?;
            Some(WidgetCustomer {
                name: c.name,
                email: c.emails.first().cloned(),
            })
        }
        None => None,
    };
    let missing = |field: &str, have: bool| settings.prechat[field] == "required" && !have;
    let needs_prechat = missing(
        "name",
        customer.as_ref().is_some_and(|c| !c.name.is_empty()),
    ) || missing(
        "email",
        customer.as_ref().is_some_and(|c| c.email.is_some()),
    );
    Ok(SessionAnswer {
        visitor_token: token,
        customer,
        settings,
        online: core.hub.connected() > 0,
        needs_prechat,
    })
}

fn record_page_view(
    txn: &WriteTxn,
    visitor: &mut Visitor,
    page: PageView,
    now: Millis,
) -> AppResult<()> {
    if page.url.is_empty() {
        return Ok(());
    }
    match visitor.customer_id {
        Some(customer_id) => {
            customers::add_event(
                txn,
                customer_id,
                "page_view",
                json!({ "url": page.url, "title": page.title }),
                page.at,
                now,
            )?;
        }
        None => {
            visitor.pending_page_views.push(page);
            let excess = visitor
                .pending_page_views
                .len()
                .saturating_sub(PENDING_PAGE_VIEWS);
            visitor.pending_page_views.drain(..excess);
        }
    }
    Ok(())
}

/// Finds the visitor of a token on this channel.
pub async fn authenticate(core: &Core, channel_id: u64, token: &str) -> AppResult<VisitorContext> {
    let hash = token_hash(token);
    let channel = web_channel(core, channel_id).await?;
    let visitor = core
        .store
        .read(move |txn| {
            txn.open_table(tables::VISITORS)?
                .get(hash.as_slice())?
                .map(|v| codec::decode::<Visitor>(v.value()))
                .transpose()?
                .filter(|v| v.channel_id == channel_id)
                .ok_or_else(|| {
                    AppError::new(
                        ErrorCode::Unauthenticated,
                        "the visitor token is unknown; start a new session",
                    )
                })
        })
        .await?;
    Ok(VisitorContext { channel, visitor })
}

/// The visitor's current state (their customer may have been set by another tab).
async fn refresh(core: &Core, context: &mut VisitorContext, token: &str) -> AppResult<()> {
    let fresh = authenticate(core, context.channel().id, token).await?;
    context.visitor = fresh.visitor;
    Ok(())
}

/// An attachment's address for the widget: a capability only this channel's secret can make.
pub fn attachment_url(channel_id: u64, secret: &str, attachment_id: u64) -> String {
    let key = &identity_signature(secret, &format!("attachment:{attachment_id}"))[..32];
    format!("/api/v1/widget/{channel_id}/attachments/{attachment_id}?key={key}")
}

fn widget_attachment(channel_id: u64, secret: &str, a: &AttachmentRef) -> WidgetAttachment {
    WidgetAttachment {
        id: a.id,
        filename: a.filename.clone(),
        content_type: a.content_type.clone(),
        size: a.size,
        url: attachment_url(channel_id, secret, a.id),
    }
}

/// Renders a message for the widget, or nothing if the customer must not see it.
pub fn widget_message(
    channel_id: u64,
    secret: &str,
    message: &Message,
    customer_read_up_to: u64,
    employee_name: &dyn Fn(u64) -> Option<String>,
) -> Option<WidgetMessage> {
    if !matches!(message.direction, Direction::Inbound | Direction::Outbound) {
        return None;
    }
    let author_name = match message.author {
        Author::Employee { employee_id } => employee_name(employee_id),
        _ => None,
    };
    let state = match &message.delivery {
        _ if message.direction == Direction::Outbound && message.id <= customer_read_up_to => {
            DeliveryState::Read
        }
        Some(delivery) => delivery.state,
        None => DeliveryState::Sent,
    };
    Some(WidgetMessage {
        id: message.id,
        direction: message.direction,
        text: message.text.clone(),
        author_name,
        attachments: message
            .attachments
            .iter()
            .map(|a| widget_attachment(channel_id, secret, a))
            .collect(),
        created_at: message.created_at,
        state,
    })
}

fn employee_display_name(txn: &ReadTransaction, id: u64) -> Option<String> {
    let employee: crate::org::Employee =
        crate::storage::get_record(&txn.open_table(tables::EMPLOYEES).ok()?, id).ok()??;
    // Customers see the employee's display name, never their account name.
    Some(if employee.display_name.is_empty() {
        employee.username
    } else {
        employee.display_name
    })
}

/// Everything the visitor may see after message `after`, oldest first (at most the last 200),
/// and the highest id employees have read of the visitor's messages.
pub async fn history(
    core: &Core,
    context: &VisitorContext,
    after: u64,
) -> AppResult<(Vec<WidgetMessage>, u64)> {
    let Some(customer_id) = context.visitor.customer_id else {
        return Ok((Vec::new(), 0));
    };
    let channel_id = context.channel().id;
    let secret = context.identity_secret().to_string();
    core.store
        .read(move |txn| {
            let mut out = Vec::new();
            let mut read_up_to = 0;
            let index = txn.open_table(tables::CUSTOMER_CONVERSATIONS)?;
            let messages = txn.open_table(tables::MESSAGES)?;
            for row in index.range((customer_id, 0)..=(customer_id, u64::MAX))? {
                let conversation = conversations::get(txn, row?.0.value().1)?;
                if conversation.channel_id != channel_id {
                    continue;
                }
                read_up_to = read_up_to.max(conversation.employee_read_up_to);
                for row in
                    messages.range((conversation.id, after + 1)..=(conversation.id, u64::MAX))?
                {
                    let message: Message = codec::decode(row?.1.value())?;
                    if let Some(m) = widget_message(
                        channel_id,
                        &secret,
                        &message,
                        conversation.customer_read_up_to,
                        &|id| employee_display_name(txn, id),
                    ) {
                        out.push(m);
                    }
                }
            }
            out.sort_by_key(|m| m.id);
            let excess = out.len().saturating_sub(REPLAY_LIMIT);
            out.drain(..excess);
            Ok((out, read_up_to))
        })
        .await
}

/// What the widget sends.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WidgetFrame {
    Message {
        client_id: String,
        #[serde(default)]
        text: String,
        #[serde(default)]
        attachments: Vec<u64>,
    },
    Profile {
        name: Option<String>,
        email: Option<String>,
    },
    Typing,
    Read {
        up_to: u64,
    },
    PageView {
        url: String,
        #[serde(default)]
        title: String,
    },
    Ping,
}

/// What the widget is told.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    History {
        messages: Vec<WidgetMessage>,
    },
    Message {
        message: WidgetMessage,
    },
    Ack {
        client_id: String,
        message: WidgetMessage,
    },
    Typing {
        name: String,
    },
    Read {
        up_to: u64,
    },
    Presence {
        online: bool,
    },
    Error {
        code: &'static str,
        message: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        client_id: Option<String>,
    },
    Pong,
}

/// What a frame changed, for the connection to pass on.
pub enum Handled {
    /// Answer this connection only.
    Reply(ServerFrame),
    /// Nothing to answer.
    Nothing,
}

/// Handles one frame from a widget. The visitor's customer may be set by it (first message or
/// form); the caller re-registers the connection when `context.visitor.customer_id` changes.
pub async fn handle_frame(
    core: &Core,
    context: &mut VisitorContext,
    token: &str,
    frame: WidgetFrame,
) -> AppResult<Handled> {
    match frame {
        WidgetFrame::Ping => Ok(Handled::Reply(ServerFrame::Pong)),
        WidgetFrame::Message {
            client_id,
            text,
            attachments,
        } => {
            let message = send_message(core, context, token, &client_id, text, attachments).await?;
            Ok(Handled::Reply(ServerFrame::Ack { client_id, message }))
        }
        WidgetFrame::Profile { name, email } => {
            set_profile(core, context, token, name, email).await?;
            Ok(Handled::Nothing)
        }
        WidgetFrame::PageView { url, title } => {
            let page = PageView {
                url: url.chars().take(2000).collect(),
                title: title.chars().take(300).collect(),
                at: core.now(),
            };
            let hash = token_hash(token);
            let now = core.now();
            let visitor = core
                .store
                .write(move |txn| {
                    let mut visitor = load_visitor_in_write(txn, &hash)?.ok_or_else(|| {
                        AppError::new(ErrorCode::Unauthenticated, "unknown visitor")
                    })?;
                    record_page_view(txn, &mut visitor, page.clone(), now)?;
                    visitor.last_seen_at = now;
                    save_visitor(txn, &hash, &visitor)?;
                    Ok(visitor)
                })
                .await?;
            context.visitor = visitor;
            Ok(Handled::Nothing)
        }
        WidgetFrame::Typing => {
            if let Some(conversation) = current_conversation(core, context).await? {
                core.hub.publish(&Event::Typing {
                    conversation,
                    typist: Typist::Customer,
                });
            }
            Ok(Handled::Nothing)
        }
        WidgetFrame::Read { up_to } => {
            if let Some(conversation) = current_conversation(core, context).await? {
                conversations::mark_read_by_customer(core, conversation.id, up_to).await?;
            }
            Ok(Handled::Nothing)
        }
    }
}

/// The visitor's newest conversation on this channel.
async fn current_conversation(
    core: &Core,
    context: &VisitorContext,
) -> AppResult<Option<Conversation>> {
    let Some(customer_id) = context.visitor.customer_id else {
        return Ok(None);
    };
    let channel_id = context.channel().id;
    core.store
        .read(move |txn| {
            let index = txn.open_table(tables::CUSTOMER_CONVERSATIONS)?;
            for row in index
                .range((customer_id, 0)..=(customer_id, u64::MAX))?
                .rev()
            {
                let conversation = conversations::get(txn, row?.0.value().1)?;
                if conversation.channel_id == channel_id {
                    return Ok(Some(conversation));
                }
            }
            Ok(None)
        })
        .await
}

async fn send_message(
    core: &Core,
    context: &mut VisitorContext,
    token: &str,
    client_id: &str,
    text: String,
    uploaded: Vec<u64>,
) -> AppResult<WidgetMessage> {
    if client_id.trim().is_empty() || client_id.len() > 100 {
        return Err(AppError::field("client_id", "must be 1 to 100 characters"));
    }
    conversations::check_text(&text, !uploaded.is_empty())?;
    refresh(core, context, token).await?;
    let hash = token_hash(token);
    let now = core.now();
    let channel_id = context.channel().id;
    // Scoped by visitor: one visitor cannot reach another's message by guessing its client id.
    let channel_message_id = format!("web:{}:{client_id}", context.visitor.id);
    let identity = context.visitor.identity();
    let emotion = Some(crate::assist::emotion::models().read(&text).emotion);
    let outcome = core
        .store
        .write(move |txn| {
            let mut visitor = load_visitor_in_write(txn, &hash)?
                .ok_or_else(|| AppError::new(ErrorCode::Unauthenticated, "unknown visitor"))?;
            let inbound = InboundMessage {
                channel_id,
                channel_kind: ChannelKind::Web,
                identity: identity.clone(),
                customer: CustomerHint::default(),
                channel_message_id: Some(channel_message_id.clone()),
                subject: None,
                text: text.clone(),
                attachments: Vec::new(),
                uploaded: uploaded.clone(),
                emotion,
                conversation_hint: None,
                email: None,
            };
            let outcome = conversations::ingest(txn, &inbound, now)?;
            if visitor.customer_id.is_none() {
                visitor.customer_id = Some(outcome.ingested.customer_id);
                for page in std::mem::take(&mut visitor.pending_page_views) {
                    record_page_view(txn, &mut visitor, page, now)?;
                }
            }
            visitor.last_seen_at = now;
            save_visitor(txn, &hash, &visitor)?;
            let message: Message = codec::decode(
                txn.open_table(tables::MESSAGES)?
                    .get((
                        outcome.ingested.conversation_id,
                        outcome.ingested.message_id,
                    ))?
                    .ok_or_else(|| AppError::internal("an ingested message is missing"))?
                    .value(),
            )?;
            Ok((outcome, message, visitor))
        })
        .await?;
    let (outcome, message, visitor) = outcome;
    context.visitor = visitor;
    let rendered = widget_message(channel_id, context.identity_secret(), &message, 0, &|_| {
        None
    })
    .ok_or_else(|| AppError::internal("an inbound message is not visible to its sender"))?;
    if let Some((conversation, message)) = outcome.stored {
        conversations::announce_stored(core, conversation, message);
    }
    Ok(rendered)
}

async fn set_profile(
    core: &Core,
    context: &mut VisitorContext,
    token: &str,
    name: Option<String>,
    email: Option<String>,
) -> AppResult<()> {
    let name = name
        .map(|n| n.trim().chars().take(100).collect::<String>())
        .filter(|n| !n.is_empty());
    let email = email
        .map(|e| e.trim().to_string())
        .filter(|e| !e.is_empty());
    if let Some(e) = &email
        && (e.len() > 254 || !e.contains('@') || e.contains(char::is_whitespace))
    {
        return Err(AppError::field("email", "is not an e-mail address"));
    }
    let hash = token_hash(token);
    let now = core.now();
    let visitor = core
        .store
        .write(move |txn| {
            let mut visitor = load_visitor_in_write(txn, &hash)?
                .ok_or_else(|| AppError::new(ErrorCode::Unauthenticated, "unknown visitor"))?;
            let hint = CustomerHint {
                name: name.clone(),
                email: email.clone(),
                phone: None,
            };
            let mut customer = customers::find_or_create(txn, &visitor.identity(), &hint, now)?;
            // The visitor's own word for their name wins over an older one.
            if let Some(n) = &name
                && &customer.name != n
            {
                customer.name = n.clone();
                customer.updated_at = now;
                customers::save(txn, &customer)?;
            }
            if visitor.customer_id.is_none() {
                visitor.customer_id = Some(customer.id);
                for page in std::mem::take(&mut visitor.pending_page_views) {
                    record_page_view(txn, &mut visitor, page, now)?;
                }
            }
            save_visitor(txn, &hash, &visitor)?;
            Ok(visitor)
        })
        .await?;
    context.visitor = visitor;
    Ok(())
}

/// A visitor's upload, waiting for the message that sends it. The visitor becomes a customer
/// here if they were nobody, since a file belongs to someone.
pub async fn upload(
    core: &Core,
    context: &mut VisitorContext,
    token: &str,
    filename: &str,
    declared_type: Option<&str>,
    bytes: bytes::Bytes,
) -> AppResult<WidgetAttachment> {
    let file = attachments::check(&core.config.attachments, filename, declared_type, bytes)?;
    let hash = token_hash(token);
    let now = core.now();
    let (attachment, visitor) = core
        .store
        .write(move |txn| {
            let mut visitor = load_visitor_in_write(txn, &hash)?
                .ok_or_else(|| AppError::new(ErrorCode::Unauthenticated, "unknown visitor"))?;
            let customer_id = match visitor.customer_id {
                Some(id) => id,
                None => {
                    let customer = customers::find_or_create(
                        txn,
                        &visitor.identity(),
                        &CustomerHint::default(),
                        now,
                    )?;
                    visitor.customer_id = Some(customer.id);
                    save_visitor(txn, &hash, &visitor)?;
                    customer.id
                }
            };
            let attachment = attachments::insert(txn, &file, Owner::Customer { customer_id }, now)?;
            Ok((attachment, visitor))
        })
        .await?;
    context.visitor = visitor;
    Ok(widget_attachment(
        context.channel().id,
        context.identity_secret(),
        &AttachmentRef::from(&attachment),
    ))
}

/// A file for a widget, by the capability key in its address.
pub async fn attachment(
    core: &Core,
    channel_id: u64,
    id: u64,
    key: &str,
) -> AppResult<(attachments::Attachment, Vec<u8>)> {
    let channel = web_channel(core, channel_id).await?;
    let expected = attachment_url(channel_id, identity_secret(&channel), id);
    let given = format!("/api/v1/widget/{channel_id}/attachments/{id}?key={key}");
    if !crate::auth::constant_time_eq(expected.as_bytes(), given.as_bytes()) {
        return Err(AppError::not_found("attachment"));
    }
    core.store
        .read(move |txn| {
            let attachment = attachments::get(txn, id)?;
            let content = attachments::content(txn, &attachment)?;
            Ok((attachment, content))
        })
        .await
}

/// Tells the customer's open widgets about a committed message of a web conversation; each
/// widget's connection renders it (`render`).
pub fn push_message(core: &Core, conversation: &Conversation, message: &Message) {
    if conversation.channel_kind == ChannelKind::Web {
        core.hub.send_to_visitor(
            conversation.channel_id,
            conversation.customer_id,
            VisitorFrame::Message {
                message: std::sync::Arc::new(message.clone()),
                customer_read_up_to: conversation.customer_read_up_to,
            },
        );
    }
}

/// A message pushed to this visitor's widget, as the widget shows it (nothing for a note).
pub async fn render(
    core: &Core,
    context: &VisitorContext,
    message: &Message,
    customer_read_up_to: u64,
) -> AppResult<Option<WidgetMessage>> {
    let name = match message.author {
        Author::Employee { employee_id } => {
            core.store
                .read(move |txn| Ok(employee_display_name(txn, employee_id)))
                .await?
        }
        _ => None,
    };
    Ok(widget_message(
        context.channel().id,
        context.identity_secret(),
        message,
        customer_read_up_to,
        &|_| name.clone(),
    ))
}

/// Tells the customer's widgets that an employee is typing.
pub fn push_typing(core: &Core, conversation: &Conversation, name: &str) {
    if conversation.channel_kind == ChannelKind::Web {
        core.hub.publish_to_visitor(
            conversation.channel_id,
            conversation.customer_id,
            &ServerFrame::Typing {
                name: name.to_string(),
            },
        );
    }
}

/// Tells the customer's widgets how far employees have read.
pub fn push_read(core: &Core, conversation: &Conversation) {
    if conversation.channel_kind == ChannelKind::Web {
        core.hub.publish_to_visitor(
            conversation.channel_id,
            conversation.customer_id,
            &ServerFrame::Read {
                up_to: conversation.employee_read_up_to,
            },
        );
    }
}

/// The e-mail channel a web chat's settings name for replies to visitors who have left.
fn email_fallback_setting(channel: &Channel) -> Option<u64> {
    channel.settings["email_fallback_channel_id"].as_u64()
}

/// Refuses a fallback that is not an e-mail channel (checked inside the channel's write).
pub fn check_email_fallback(txn: &WriteTxn, settings: &serde_json::Value) -> AppResult<()> {
    let Some(id) = settings["email_fallback_channel_id"].as_u64() else {
        return Ok(());
    };
    match get_record::<Channel>(&txn.open_table(tables::CHANNELS)?, id)? {
        Some(c) if c.kind == ChannelKind::Email => Ok(()),
        _ => Err(AppError::field(
            "settings.email_fallback_channel_id",
            format!("channel {id} is not an e-mail channel"),
        )),
    }
}

/// Where a reply in a web conversation goes besides the widget: nowhere while the visitor has
/// the widget open (it is pushed there), else by e-mail through the web chat's fallback
/// channel when one is set and enabled and the customer left an address. The reply stays in
/// the widget's history either way.
pub fn email_fallback(
    txn: &WriteTxn,
    conversation: &Conversation,
    visitor_connected: bool,
) -> AppResult<Option<u64>> {
    if conversation.channel_kind != ChannelKind::Web || visitor_connected {
        return Ok(None);
    }
    let channels = txn.open_table(tables::CHANNELS)?;
    let Some(web) = get_record::<Channel>(&channels, conversation.channel_id)? else {
        return Ok(None);
    };
    let Some(fallback) = email_fallback_setting(&web) else {
        return Ok(None);
    };
    let usable = get_record::<Channel>(&channels, fallback)?
        .is_some_and(|c| c.kind == ChannelKind::Email && c.enabled);
    drop(channels);
    let has_address = conversation
        .reply_to
        .as_ref()
        .is_some_and(|i| i.kind == "email")
        || !customers::load(txn, conversation.customer_id)?
            .emails
            .is_empty();
    Ok((usable && has_address).then_some(fallback))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked() {
        assert!(check_settings(&json!({ "colour": "#12abEF", "position": "left", "language": "zh-CN",
            "greeting": { "en": "Hi", "zh-CN": "你好" }, "prechat": { "name": "required", "email": "off" },
            "allowed_origins": ["https://shop.example.com", "http://localhost:8080"] })).is_ok());
        for bad in [
            json!({ "colour": "red" }),
            json!({ "position": "top" }),
            json!({ "greeting": { "fr": "Salut" } }),
            json!({ "prechat": { "phone": "required" } }),
            json!({ "allowed_origins": ["https://shop.example.com/path"] }),
            json!({ "allowed_origins": ["shop.example.com"] }),
            json!({ "colour_typo": "#ffffff" }),
        ] {
            assert!(check_settings(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_identity_signature_is_hmac_sha256_of_the_user_id() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            identity_signature("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
