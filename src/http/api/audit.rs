use actix_web::HttpResponse;
use actix_web::http::header;
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::json;

use super::{Data, Reply, ok};
use crate::audit::export::{self, ExportFormat};
use crate::audit::{self, AuditEntry, AuditEvent, AuditQuery};
use crate::error::AppError;
use crate::http::extract::{Auth, Query};

#[derive(Debug, Serialize, JsonSchema)]
pub struct AuditPage {
    pub items: Vec<AuditEntry>,
    /// Pass as `before_seq` for the next (older) page; absent on the last page.
    pub next_before_seq: Option<u64>,
}

pub async fn list(_auth: Auth, state: Data, query: Query<AuditQuery>) -> Reply {
    let query = query.get()?;
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let items = state
        .core
        .store
        .read(move |txn| audit::search(txn, &query, limit))
        .await?;
    let next_before_seq = if items.len() == limit {
        items.last().map(|e| e.seq)
    } else {
        None
    };
    ok(AuditPage {
        items,
        next_before_seq,
    })
}

pub async fn export(auth: Auth, state: Data, query: Query<AuditQuery>) -> Reply {
    let query = query.get()?;
    let format = match query.format.as_deref() {
        None => ExportFormat::Csv,
        Some(name) => ExportFormat::parse(name).ok_or_else(|| {
            AppError::new(
                crate::error::ErrorCode::InvalidQuery,
                "format: must be csv or json",
            )
        })?,
    };
    let filters = json!({
        "actor": query.actor, "action": query.action, "q": query.q, "from": query.from, "to": query.to, "success": query.success,
        "format": format.extension(),
    });
    let (bytes, rows) = state
        .core
        .store
        .read(move |txn| export::export(txn, &query, format))
        .await?;
    let now = state.core.now();
    let actor = auth.caller.actor.clone();
    state
        .core
        .store
        .write(move |txn| {
            audit::append(
                txn,
                now,
                AuditEvent::new(&actor, "audit.exported")
                    .details(json!({ "rows": rows, "filters": filters.clone() })),
            )?;
            Ok(())
        })
        .await?;
    let name = format!(
        "allhands-audit-{}.{}",
        chrono::Utc::now().format("%Y%m%dT%H%M%SZ"),
        format.extension()
    );
    Ok(HttpResponse::Ok()
        .content_type(format.content_type())
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}\""),
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header(("X-Export-Rows", rows.to_string()))
        .body(bytes))
}

pub async fn verify(_auth: Auth, state: Data) -> Reply {
    ok(state.core.store.read(audit::verify).await?)
}
