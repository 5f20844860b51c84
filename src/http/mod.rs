//! HTTP: the route table, extractors, the request middleware, errors as JSON, OpenAPI, metrics,
//! TLS and the embedded console. Domain code never sees actix; handlers are thin.

pub mod api;
pub mod error;
pub mod extract;
pub mod metrics;
pub mod middleware;
pub mod openapi;
pub mod routes;
pub mod tls;

use std::sync::Arc;
use std::time::Instant;

use actix_web::http::Method;
use actix_web::http::header::HeaderValue;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::error::{AppError, ErrorCode};
use crate::state::Core;

pub struct AppState {
    pub core: Arc<Core>,
    pub metrics: Arc<metrics::HttpMetrics>,
    pub openapi: web::Bytes,
    pub started: Instant,
    pub config_file: Option<String>,
    /// The Strict-Transport-Security value, when serving HTTPS with HSTS on.
    pub hsts: Option<HeaderValue>,
}

impl AppState {
    pub fn new(
        core: Arc<Core>,
        metrics: Arc<metrics::HttpMetrics>,
        config_file: Option<String>,
        tls: bool,
    ) -> AppState {
        let max_age = core.config.tls.hsts_max_age_secs;
        let hsts = (tls && max_age > 0).then(|| {
            HeaderValue::from_str(&format!("max-age={max_age}; includeSubDomains"))
                .expect("valid header")
        });
        AppState {
            core,
            metrics,
            openapi: web::Bytes::from(openapi::document().to_string()),
            started: Instant::now(),
            config_file,
            hsts,
        }
    }
}

/// Everything an `App` needs; used by the server and by in-process tests alike.
pub fn configure(state: web::Data<AppState>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(state);
        routes::register(cfg);
        cfg.default_service(web::to(unmatched));
    }
}

/// Unknown API paths get JSON errors (405 when the path exists with another method); other
/// paths are the embedded console.
async fn unmatched(req: HttpRequest) -> Result<HttpResponse, AppError> {
    let path = req.path();
    let is_api = path.starts_with("/api/") || ["/healthz", "/readyz", "/metrics"].contains(&path);
    if is_api {
        if routes::ROUTES
            .iter()
            .any(|r| routes::path_matches(r.path, path))
        {
            return Err(AppError::new(
                ErrorCode::MethodNotAllowed,
                format!("{} is not allowed on {path}", req.method()),
            ));
        }
        return Err(AppError::new(
            ErrorCode::NotFound,
            format!("no endpoint {path}"),
        ));
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Err(AppError::new(
            ErrorCode::MethodNotAllowed,
            format!("{} is not allowed on {path}", req.method()),
        ));
    }
    crate::web_assets::serve(&req)
        .ok_or_else(|| AppError::new(ErrorCode::NotFound, format!("no file {path}")))
}
