//! Channels: where customers' messages come from and where replies go.
//!
//! Every channel is configured in the store (`Channel`), its secrets sealed (`secrets`). An
//! adapter verifies an inbound request over its raw bytes, normalises it into an
//! `InboundMessage` (or a customer event), and the conversation service stores it; the channel's
//! own message id deduplicates redeliveries. Outbound delivery goes through the same adapters.

pub mod api;
pub mod cache;
pub mod delivery;
pub mod email;
pub mod web;

use std::collections::BTreeMap;

use redb::ReadTransaction;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::audit::{self, AuditEvent};
use crate::auth::Caller;
use crate::auth::rbac::Permission;
use crate::clock::Millis;
use crate::error::{AppError, AppResult};
use crate::org::service::required_text;
use crate::state::Core;
use crate::storage::{Record, WriteTxn, all_records, codec, get_record, next_id, tables};

/// A write the inbound log keeps, to be replayed after a crash (see `storage::wal`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LoggedWrite {
    ApiInbound(api::LoggedInbound),
}

/// The store's `Replay`: does again what a logged write did.
pub fn replay_logged(txn: &WriteTxn, record: &[u8]) -> AppResult<()> {
    let logged: LoggedWrite = serde_json::from_slice(record)
        .map_err(|e| AppError::internal(format!("unreadable inbound log record: {e}")))?;
    match logged {
        LoggedWrite::ApiInbound(inbound) => api::replay(txn, inbound),
    }
}

/// Every kind of channel AllHands speaks. The string form is stored and is part of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    /// The web chat widget.
    Web,
    /// Apps and other systems through the signed HTTP API.
    Api,
    Email,
    Sms,
    Wechat,
    Wecom,
    WechatKf,
    Dingtalk,
    Feishu,
    Telegram,
    Whatsapp,
    Messenger,
    Instagram,
    Line,
    Slack,
    Phone,
}

impl ChannelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Web => "web",
            ChannelKind::Api => "api",
            ChannelKind::Email => "email",
            ChannelKind::Sms => "sms",
            ChannelKind::Wechat => "wechat",
            ChannelKind::Wecom => "wecom",
            ChannelKind::WechatKf => "wechat_kf",
            ChannelKind::Dingtalk => "dingtalk",
            ChannelKind::Feishu => "feishu",
            ChannelKind::Telegram => "telegram",
            ChannelKind::Whatsapp => "whatsapp",
            ChannelKind::Messenger => "messenger",
            ChannelKind::Instagram => "instagram",
            ChannelKind::Line => "line",
            ChannelKind::Slack => "slack",
            ChannelKind::Phone => "phone",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Channel {
    pub id: u64,
    pub kind: ChannelKind,
    pub name: String,
    pub enabled: bool,
    /// Settings that are not secret (URLs, display options).
    #[serde(default)]
    pub settings: serde_json::Value,
    /// Secret settings as sealed JSON (see `secrets`).
    pub sealed_secrets: String,
    /// The names of the secrets that are set (never their values), for the console.
    #[serde(default)]
    pub secret_names: Vec<String>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

impl Record for Channel {
    const KIND: &'static str = "channel";
}

/// A channel as the API shows it: never its secrets.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ChannelView {
    pub id: u64,
    pub kind: ChannelKind,
    pub name: String,
    pub enabled: bool,
    pub settings: serde_json::Value,
    /// Which secrets are set (e.g. `imap_password`); their values are never shown.
    #[serde(default)]
    pub secrets_set: Vec<String>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

impl From<&Channel> for ChannelView {
    fn from(c: &Channel) -> Self {
        ChannelView {
            id: c.id,
            kind: c.kind,
            name: c.name.clone(),
            enabled: c.enabled,
            settings: c.settings.clone(),
            secrets_set: c.secret_names.clone(),
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

pub fn get(txn: &ReadTransaction, id: u64) -> AppResult<Channel> {
    get_record(&txn.open_table(tables::CHANNELS)?, id)?
        .ok_or_else(|| AppError::not_found("channel"))
}

/// A channel as someone who answers customers needs to know it: to pick one for a new
/// conversation. No settings, no secrets.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ChannelChoice {
    pub id: u64,
    pub kind: ChannelKind,
    pub name: String,
}

/// The enabled channels, for choosing where a new conversation's replies go.
pub fn choices(txn: &ReadTransaction) -> AppResult<Vec<ChannelChoice>> {
    let all: Vec<Channel> = all_records(&txn.open_table(tables::CHANNELS)?)?;
    Ok(all
        .into_iter()
        .filter(|c| c.enabled)
        .map(|c| ChannelChoice {
            id: c.id,
            kind: c.kind,
            name: c.name,
        })
        .collect())
}

pub fn list(txn: &ReadTransaction) -> AppResult<Vec<ChannelView>> {
    let all: Vec<Channel> = all_records(&txn.open_table(tables::CHANNELS)?)?;
    Ok(all.iter().map(ChannelView::from).collect())
}

pub fn get_in_write(txn: &WriteTxn, id: u64) -> AppResult<Channel> {
    get_record(&txn.open_table(tables::CHANNELS)?, id)?
        .ok_or_else(|| AppError::field("channel_id", format!("no channel {id}")))
}

fn save(txn: &WriteTxn, channel: &Channel) -> AppResult<()> {
    txn.open_table(tables::CHANNELS)?
        .insert(channel.id, codec::encode(channel).as_slice())?;
    Ok(())
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewChannel {
    pub kind: ChannelKind,
    pub name: String,
    #[serde(default)]
    pub settings: serde_json::Value,
    /// Write-only secrets (e-mail: `imap_password`, `smtp_password`); never shown again.
    #[serde(default)]
    pub secrets: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CreatedChannel {
    pub channel: ChannelView,
    /// For API channels: the signing secret, shown only this once.
    pub signing_secret: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelPatch {
    pub name: Option<String>,
    pub enabled: Option<bool>,
    pub settings: Option<serde_json::Value>,
    /// Secrets to set (an empty value removes one); the others stay as they are.
    pub secrets: Option<BTreeMap<String, String>>,
}

fn check_settings(kind: ChannelKind, settings: &serde_json::Value) -> AppResult<()> {
    match kind {
        ChannelKind::Api => api::check_settings(settings),
        ChannelKind::Email => email::check_settings(settings),
        ChannelKind::Web => web::check_settings(settings),
        _ => Err(AppError::field(
            "kind",
            format!("{} channels are not available yet", kind.as_str()),
        )),
    }
}

pub async fn create(core: &Core, caller: &Caller, input: NewChannel) -> AppResult<CreatedChannel> {
    caller.require_everywhere(Permission::ChannelsManage)?;
    let name = required_text("name", &input.name, 100)?;
    let settings = if input.settings.is_null() {
        json!({})
    } else {
        input.settings
    };
    check_settings(input.kind, &settings)?;
    let given = input.secrets.clone().unwrap_or_default();
    check_secrets(input.kind, &given)?;
    let (signing_secret, sealed_secrets, secret_names) = match input.kind {
        ChannelKind::Api | ChannelKind::Web => {
            let (secret, sealed) = new_secret(core, input.kind)?;
            (Some(secret), sealed, generated_secret_names(input.kind))
        }
        _ => {
            let plain: BTreeMap<String, String> =
                given.into_iter().filter(|(_, v)| !v.is_empty()).collect();
            let names: Vec<String> = plain.keys().cloned().collect();
            (None, core.secrets.seal(&serde_json::to_vec(&plain)?), names)
        }
    };
    let now = core.now();
    let actor = caller.actor.clone();
    let kind = input.kind;
    let channel = core
        .store
        .write(move |txn| {
            if kind == ChannelKind::Web {
                web::check_email_fallback(txn, &settings)?;
            }
            let channel = Channel {
                id: next_id(txn, "channel")?,
                kind,
                name: name.clone(),
                enabled: true,
                settings: settings.clone(),
                sealed_secrets: sealed_secrets.clone(),
                secret_names: secret_names.clone(),
                created_at: now,
                updated_at: now,
            };
            save(txn, &channel)?;
            audit::append(
                txn,
                now,
                AuditEvent::new(&actor, "channel.created")
                    .target(format!("channel:{}", channel.id))
                    .details(
                        json!({ "kind": kind, "name": channel.name, "settings": channel.settings }),
                    ),
            )?;
            Ok(channel)
        })
        .await?;
    core.channel_cache.forget_all();
    core.channels_changed.notify_one();
    Ok(CreatedChannel {
        channel: ChannelView::from(&channel),
        signing_secret,
    })
}

fn check_secrets(kind: ChannelKind, secrets: &BTreeMap<String, String>) -> AppResult<()> {
    match kind {
        ChannelKind::Email => email::check_secrets(secrets),
        _ if secrets.is_empty() => Ok(()),
        ChannelKind::Api | ChannelKind::Web => Err(AppError::field(
            "secrets",
            "this channel's secret is generated: use rotate-secret",
        )),
        other => Err(AppError::field(
            "secrets",
            format!("{} channels take no secrets", other.as_str()),
        )),
    }
}

pub async fn update(
    core: &Core,
    caller: &Caller,
    id: u64,
    patch: ChannelPatch,
) -> AppResult<ChannelView> {
    caller.require_everywhere(Permission::ChannelsManage)?;
    let name = patch
        .name
        .as_deref()
        .map(|n| required_text("name", n, 100))
        .transpose()?;
    // New secrets are merged into the unsealed current ones outside the write (sealing needs
    // the key); the write refuses if the secrets changed in between.
    let resealed = match &patch.secrets {
        Some(given) => {
            let channel = core.store.read(move |txn| get(txn, id)).await?;
            check_secrets(channel.kind, given)?;
            let mut plain: BTreeMap<String, String> =
                serde_json::from_value(secrets(core, &channel)?).unwrap_or_default();
            for (name, value) in given {
                if value.is_empty() {
                    plain.remove(name);
                } else {
                    plain.insert(name.clone(), value.clone());
                }
            }
            plain.retain(|_, v| !v.is_empty());
            let names: Vec<String> = plain.keys().cloned().collect();
            Some((
                channel.sealed_secrets.clone(),
                core.secrets.seal(&serde_json::to_vec(&plain)?),
                names,
            ))
        }
        None => None,
    };
    let now = core.now();
    let actor = caller.actor.clone();
    let view = core
        .store
        .write(move |txn| {
            let mut channel: Channel = get_record(&txn.open_table(tables::CHANNELS)?, id)?
                .ok_or_else(|| AppError::not_found("channel"))?;
            let before = ChannelView::from(&channel);
            if let Some((expected, sealed, names)) = &resealed {
                if &channel.sealed_secrets != expected {
                    return Err(AppError::conflict(
                        "the channel's secrets changed meanwhile; try again",
                    ));
                }
                channel.sealed_secrets = sealed.clone();
                channel.secret_names = names.clone();
            }
            if let Some(n) = &name {
                channel.name = n.clone();
            }
            if let Some(e) = patch.enabled {
                channel.enabled = e;
            }
            if let Some(s) = &patch.settings {
                check_settings(channel.kind, s)?;
                if channel.kind == ChannelKind::Web {
                    web::check_email_fallback(txn, s)?;
                }
                channel.settings = s.clone();
            }
            channel.updated_at = now;
            save(txn, &channel)?;
            let after = ChannelView::from(&channel);
            audit::append(
                txn,
                now,
                AuditEvent::new(&actor, "channel.updated")
                    .target(format!("channel:{id}"))
                    .details(
                        json!({ "changes": crate::org::service::changed_fields(&before, &after) }),
                    ),
            )?;
            Ok(after)
        })
        .await?;
    core.channel_cache.forget_all();
    core.channels_changed.notify_one();
    Ok(view)
}

/// The names of the secret `new_secret` makes for a kind.
fn generated_secret_names(kind: ChannelKind) -> Vec<String> {
    match kind {
        ChannelKind::Api => vec!["signing_secret".into()],
        ChannelKind::Web => vec!["identity_secret".into()],
        _ => Vec::new(),
    }
}

/// A new secret for the channel kinds that have one: the API channel's signing secret, or the
/// web chat's identity secret (sites sign their users' ids with it). Returns it and its sealed
/// form.
fn new_secret(core: &Core, kind: ChannelKind) -> AppResult<(String, String)> {
    let (secret, sealed) = match kind {
        ChannelKind::Api => {
            let secret = format!("ahs_{}", crate::auth::random_token(32));
            let sealed = json!({ "signing_secret": secret });
            (secret, sealed)
        }
        ChannelKind::Web => {
            let secret = format!("ahi_{}", crate::auth::random_token(32));
            let sealed = json!({ "identity_secret": secret });
            (secret, sealed)
        }
        _ => {
            return Err(AppError::conflict(
                "only API and web chat channels have a secret to rotate",
            ));
        }
    };
    Ok((secret, core.secrets.seal(&serde_json::to_vec(&sealed)?)))
}

/// Replaces an API channel's signing secret or a web chat's identity secret; the new one is
/// shown once.
pub async fn rotate_secret(core: &Core, caller: &Caller, id: u64) -> AppResult<CreatedChannel> {
    caller.require_everywhere(Permission::ChannelsManage)?;
    let kind = core.store.read(move |txn| get(txn, id)).await?.kind;
    let (secret, sealed) = new_secret(core, kind)?;
    let names = generated_secret_names(kind);
    let now = core.now();
    let actor = caller.actor.clone();
    let channel = core
        .store
        .write(move |txn| {
            let mut channel: Channel = get_record(&txn.open_table(tables::CHANNELS)?, id)?
                .ok_or_else(|| AppError::not_found("channel"))?;
            if channel.kind != kind {
                return Err(AppError::conflict("the channel changed; try again"));
            }
            channel.sealed_secrets = sealed.clone();
            channel.secret_names = names.clone();
            channel.updated_at = now;
            save(txn, &channel)?;
            audit::append(
                txn,
                now,
                AuditEvent::new(&actor, "channel.secret_rotated").target(format!("channel:{id}")),
            )?;
            Ok(channel)
        })
        .await?;
    core.channel_cache.forget_all();
    Ok(CreatedChannel {
        channel: ChannelView::from(&channel),
        signing_secret: Some(secret),
    })
}

/// The channel's secrets, unsealed.
pub fn secrets(core: &Core, channel: &Channel) -> AppResult<serde_json::Value> {
    let plain = core.secrets.unseal(&channel.sealed_secrets)?;
    serde_json::from_slice(&plain).map_err(|e| {
        AppError::internal(format!(
            "channel {} secrets are unreadable: {e}",
            channel.id
        ))
    })
}
