use std::time::Instant;

use actix_web::HttpResponse;
use actix_web::http::header;
use schemars::JsonSchema;
use serde::Serialize;

use super::{Data, Reply, ok};
use crate::error::{AppError, ErrorCode};
use crate::http::extract::Auth;

#[derive(Debug, Serialize, JsonSchema)]
pub struct Status {
    pub status: &'static str,
}

pub async fn healthz() -> Reply {
    ok(Status { status: "ok" })
}

pub async fn readyz(state: Data) -> Reply {
    let version = state
        .core
        .store
        .read(|txn| crate::storage::meta_get(txn, crate::storage::migrations::SCHEMA_VERSION_KEY))
        .await;
    match version {
        Ok(Some(_)) => ok(Status { status: "ready" }),
        _ => Err(AppError::new(
            ErrorCode::StorageUnavailable,
            "the store is not ready",
        )),
    }
}

pub async fn metrics(_auth: Auth, state: Data) -> Reply {
    let text = state.metrics.render()?;
    Ok(HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(text))
}

pub async fn openapi(state: Data) -> Reply {
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(state.openapi.clone()))
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct SystemStatus {
    pub version: &'static str,
    pub schema_version: u32,
    pub uptime_secs: u64,
    pub data_dir: String,
    pub config_file: Option<String>,
    pub store_bytes: u64,
}

pub async fn status(_auth: Auth, state: Data) -> Reply {
    let store_bytes = std::fs::metadata(state.core.data_dir.join(crate::storage::DB_FILE))
        .map(|m| m.len())
        .unwrap_or(0);
    ok(SystemStatus {
        version: env!("CARGO_PKG_VERSION"),
        schema_version: crate::storage::migrations::SCHEMA_VERSION,
        uptime_secs: Instant::now().duration_since(state.started).as_secs(),
        data_dir: state.core.data_dir.display().to_string(),
        config_file: state.config_file.clone(),
        store_bytes,
    })
}

pub async fn backup(auth: Auth, state: Data) -> Reply {
    let tmp = state.core.data_dir.join("tmp");
    std::fs::create_dir_all(&tmp)?;
    let file = tmp.join(format!("backup-{}.redb", crate::auth::random_token(8)));
    crate::ops::backup(&state.core, &auth.caller.actor, file.clone()).await?;
    let opened = tokio::fs::File::open(&file).await?;
    // The open file stays readable after unlinking; nothing is left behind if the client goes.
    let _ = std::fs::remove_file(&file);
    let stream = tokio_util::io::ReaderStream::new(opened);
    let name = format!(
        "allhands-backup-{}.redb",
        chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
    );
    Ok(HttpResponse::Ok()
        .content_type("application/octet-stream")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}\""),
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .streaming(stream))
}
