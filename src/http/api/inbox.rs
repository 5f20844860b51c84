//! Channels, conversations and customers.

use actix_web::{HttpRequest, HttpResponse};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Data, Reply, created, items, ok};
use crate::auth::rbac::Permission;
use crate::channels::{self, ChannelPatch, NewChannel, api};
use crate::conversations::service::{
    self as conversations, Assignment, ConversationFilter, NewMessage, StatusChange,
};
use crate::customers::{self, Customer, CustomerEvent, CustomerPatch};
use crate::error::AppError;
use crate::http::extract::{Auth, Body, IdPath, Query, RawBody, Upload};

pub async fn list_channels(_auth: Auth, state: Data) -> Reply {
    items(state.core.store.read(channels::list).await?)
}

pub async fn create_channel(auth: Auth, state: Data, body: Body<NewChannel>) -> Reply {
    let body = body.get()?;
    created(channels::create(&state.core, &auth.caller, body).await?)
}

pub async fn get_channel(_auth: Auth, state: Data, id: IdPath) -> Reply {
    let id = id.get()?;
    let channel = state
        .core
        .store
        .read(move |txn| channels::get(txn, id))
        .await?;
    ok(channels::ChannelView::from(&channel))
}

pub async fn update_channel(
    auth: Auth,
    state: Data,
    id: IdPath,
    body: Body<ChannelPatch>,
) -> Reply {
    let id = id.get()?;
    let body = body.get()?;
    ok(channels::update(&state.core, &auth.caller, id, body).await?)
}

pub async fn channel_status(_auth: Auth, state: Data, id: IdPath) -> Reply {
    let id = id.get()?;
    let channel = state
        .core
        .store
        .read(move |txn| channels::get(txn, id))
        .await?;
    let mut status = state.core.channel_status.get(id);
    if channel.kind == channels::ChannelKind::Email {
        let mailbox = state
            .core
            .store
            .read(move |txn| channels::email::mailbox_state(txn, id))
            .await?;
        if mailbox.uid_validity != 0 {
            status.uid_validity.get_or_insert(mailbox.uid_validity);
            status.last_uid = Some(status.last_uid.unwrap_or(0).max(mailbox.last_uid));
        }
        // What the reader has not seen since this start, the store remembers.
        if status.last_success_at.is_none() {
            status.last_success_at = mailbox.last_success_at;
        }
        if status.last_error.is_none() {
            status.last_error = mailbox.last_error;
            status.last_error_at = mailbox.last_error_at;
        }
    }
    ok(status)
}

pub async fn rotate_channel_secret(auth: Auth, state: Data, id: IdPath) -> Reply {
    let id = id.get()?;
    ok(channels::rotate_secret(&state.core, &auth.caller, id).await?)
}

/// Signed by the channel's secret rather than by a session or token.
pub async fn channel_inbound(req: HttpRequest, state: Data, id: IdPath, body: RawBody) -> Reply {
    let id = id.get()?;
    let body = body.get()?;
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let request = api::SignedRequest {
        timestamp: header(api::TIMESTAMP_HEADER),
        signature: header(api::SIGNATURE_HEADER),
        idempotency_key: header(api::IDEMPOTENCY_HEADER),
        body: &body,
    };
    let (answer, replayed) = api::receive(&state.core, id, request).await?;
    Ok(HttpResponse::Ok()
        .insert_header((
            "Idempotency-Replayed",
            if replayed { "true" } else { "false" },
        ))
        .insert_header(("Cache-Control", "no-store"))
        .json(answer))
}

pub async fn list_dead_letters(_auth: Auth, state: Data) -> Reply {
    items(
        state
            .core
            .store
            .read(channels::delivery::dead_letters)
            .await?,
    )
}

pub async fn retry_dead_letter(auth: Auth, state: Data, id: IdPath) -> Reply {
    let id = id.get()?;
    ok(channels::delivery::retry(&state.core, &auth.caller, id).await?)
}

pub async fn list_conversations(
    auth: Auth,
    state: Data,
    filter: Query<ConversationFilter>,
) -> Reply {
    let filter = filter.get()?;
    let caller = auth.caller;
    ok(state
        .core
        .store
        .read(move |txn| conversations::list(txn, &caller, &filter))
        .await?)
}

pub async fn get_conversation(auth: Auth, state: Data, id: IdPath) -> Reply {
    let id = id.get()?;
    let caller = auth.caller;
    ok(state
        .core
        .store
        .read(move |txn| conversations::detail(txn, &caller, id))
        .await?)
}

pub async fn reply_channels(_auth: Auth, state: Data) -> Reply {
    items(state.core.store.read(channels::choices).await?)
}

pub async fn create_conversation(
    auth: Auth,
    state: Data,
    body: Body<conversations::NewConversation>,
) -> Reply {
    let body = body.get()?;
    created(conversations::create(&state.core, &auth.caller, body).await?)
}

pub async fn list_notifications(auth: Auth, state: Data) -> Reply {
    let employee_id = auth.caller.employee_id;
    ok(state
        .core
        .store
        .read(move |txn| crate::collaboration::mentions::list(txn, employee_id))
        .await?)
}

pub async fn read_notification(auth: Auth, state: Data, id: IdPath) -> Reply {
    let id = id.get()?;
    let employee_id = auth.caller.employee_id;
    let now = state.core.now();
    state
        .core
        .store
        .write(move |txn| {
            crate::collaboration::mentions::mark_read(txn, employee_id, Some(id), now)
        })
        .await?;
    super::no_content()
}

pub async fn read_all_notifications(auth: Auth, state: Data) -> Reply {
    let employee_id = auth.caller.employee_id;
    let now = state.core.now();
    state
        .core
        .store
        .write(move |txn| crate::collaboration::mentions::mark_read(txn, employee_id, None, now))
        .await?;
    super::no_content()
}

pub async fn upload_attachment(auth: Auth, state: Data, upload: Upload) -> Reply {
    let file = upload.get()?;
    let attachment = conversations::upload(
        &state.core,
        &auth.caller,
        &file.filename,
        file.declared_type.as_deref(),
        file.bytes,
    )
    .await?;
    created(crate::attachments::AttachmentRef::from(&attachment))
}

pub async fn download_attachment(auth: Auth, state: Data, id: IdPath) -> Reply {
    let id = id.get()?;
    let caller = auth.caller;
    let (attachment, content) = state
        .core
        .store
        .read(move |txn| conversations::attachment(txn, &caller, id))
        .await?;
    Ok(super::file_response(&attachment, content))
}

pub async fn post_message(auth: Auth, state: Data, id: IdPath, body: Body<NewMessage>) -> Reply {
    let id = id.get()?;
    let body = body.get()?;
    created(conversations::post_message(&state.core, &auth.caller, id, body).await?)
}

pub async fn set_tags(
    auth: Auth,
    state: Data,
    id: IdPath,
    body: Body<conversations::TagsChange>,
) -> Reply {
    let id = id.get()?;
    let body = body.get()?;
    ok(conversations::set_tags(&state.core, &auth.caller, id, body).await?)
}

pub async fn change_status(auth: Auth, state: Data, id: IdPath, body: Body<StatusChange>) -> Reply {
    let id = id.get()?;
    let body = body.get()?;
    ok(conversations::change_status(&state.core, &auth.caller, id, body).await?)
}

pub async fn assign(auth: Auth, state: Data, id: IdPath, body: Body<Assignment>) -> Reply {
    let id = id.get()?;
    let body = body.get()?;
    ok(conversations::assign(&state.core, &auth.caller, id, body).await?)
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerQuery {
    /// Text in the name, e-mail, phone or company.
    pub q: Option<String>,
    pub limit: Option<usize>,
}

pub async fn list_customers(auth: Auth, state: Data, query: Query<CustomerQuery>) -> Reply {
    let query = query.get()?;
    let limit = query.limit.unwrap_or(50).clamp(1, 500);
    let caller = auth.caller;
    items(
        state
            .core
            .store
            .read(move |txn| {
                customers::search(txn, query.q.as_deref(), limit, |c| {
                    conversations::customer_visible(txn, &caller, c.id, Permission::CustomersRead)
                })
            })
            .await?,
    )
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct CustomerProfile {
    pub customer: Customer,
    /// The newest behaviour events first.
    pub events: Vec<CustomerEvent>,
    /// Merges this customer took part in (undoable while `undone_at` is empty).
    pub merges: Vec<customers::merge::MergeRecord>,
}

pub async fn get_customer(auth: Auth, state: Data, id: IdPath) -> Reply {
    let id = id.get()?;
    let caller = auth.caller;
    let profile = state
        .core
        .store
        .read(move |txn| {
            if !conversations::customer_visible(txn, &caller, id, Permission::CustomersRead)? {
                return Err(AppError::not_found("customer"));
            }
            Ok(CustomerProfile {
                customer: customers::get(txn, id)?,
                events: customers::events(txn, id, 100)?,
                merges: customers::merge::merges_of(txn, id)?,
            })
        })
        .await?;
    ok(profile)
}

pub async fn merge_customer(
    auth: Auth,
    state: Data,
    id: IdPath,
    body: Body<customers::merge::MergeRequest>,
) -> Reply {
    let id = id.get()?;
    let body = body.get()?;
    ok(customers::merge::merge(&state.core, &auth.caller, id, body).await?)
}

pub async fn undo_merge(auth: Auth, state: Data, id: IdPath) -> Reply {
    let id = id.get()?;
    ok(customers::merge::undo(&state.core, &auth.caller, id).await?)
}

pub async fn update_customer(
    auth: Auth,
    state: Data,
    id: IdPath,
    body: Body<CustomerPatch>,
) -> Reply {
    let id = id.get()?;
    let patch = body.get()?;
    let name = patch
        .name
        .as_deref()
        .map(|n| crate::org::service::optional_text("name", n, 200))
        .transpose()?;
    let company = patch
        .company
        .as_deref()
        .map(|c| crate::org::service::optional_text("company", c, 200))
        .transpose()?;
    if let Some(tags) = &patch.tags
        && tags.iter().any(|t| t.trim().is_empty() || t.len() > 50)
    {
        return Err(AppError::field(
            "tags",
            "each tag must be 1 to 50 characters",
        ));
    }
    let caller = auth.caller;
    let reader = caller.clone();
    let visible = state
        .core
        .store
        .read(move |txn| {
            conversations::customer_visible(txn, &reader, id, Permission::CustomersManage)
        })
        .await?;
    if !visible {
        return Err(AppError::not_found("customer"));
    }
    let now = state.core.now();
    let updated = state
        .core
        .store
        .write(move |txn| {
            let mut customer = customers::load(txn, id)?;
            let before = customer.clone();
            if let Some(n) = &name {
                customer.name = n.clone();
            }
            if let Some(c) = &company {
                customer.company = c.clone();
            }
            if let Some(t) = &patch.tags {
                customer.tags = t.iter().map(|t| t.trim().to_string()).collect();
            }
            if let Some(a) = &patch.attributes {
                customer.attributes = a.clone();
            }
            if let Some(crm) = &patch.crm_id {
                customer.crm_id = crm.clone();
            }
            customer.updated_at = now;
            customers::save(txn, &customer)?;
            let changes = crate::org::service::changed_fields(&before, &customer);
            crate::audit::append(
                txn,
                now,
                crate::audit::AuditEvent::new(&caller.actor, "customer.updated")
                    .target(format!("customer:{id}"))
                    .details(serde_json::json!({ "changes": changes })),
            )?;
            Ok(customer)
        })
        .await?;
    ok(updated)
}
