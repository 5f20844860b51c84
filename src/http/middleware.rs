//! The request pipeline wrapped around every handler: request id and tracing span, the client
//! address (through trusted proxies), panic containment, security headers, metrics and the
//! access log line.

use std::net::IpAddr;
use std::panic::AssertUnwindSafe;
use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, web};
use futures_util::FutureExt;
use tracing::Instrument;

use crate::error::AppError;
use crate::http::AppState;
use crate::http::extract::ClientAddr;
use crate::http::metrics::{RequestLabels, RouteLabels};

#[derive(Debug, Clone)]
pub struct RequestId(pub String);

const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
     connect-src 'self'; font-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// The address of the client: the peer, or, when the peer is a trusted proxy, the last address
/// in X-Forwarded-For that is not itself a trusted proxy.
pub fn client_address(req: &ServiceRequest, trusted: &[IpAddr]) -> String {
    let peer = req.peer_addr().map(|a| a.ip());
    let Some(peer) = peer else {
        return String::new();
    };
    if !trusted.contains(&peer) {
        return peer.to_string();
    }
    let forwarded = req
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    forwarded
        .split(',')
        .map(str::trim)
        .filter_map(|s| s.parse::<IpAddr>().ok())
        .rev()
        .find(|ip| !trusted.contains(ip))
        .unwrap_or(peer)
        .to_string()
}

pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let request_id = crate::auth::random_token(9);
    let client = state
        .as_ref()
        .map(|s| client_address(&req, &s.core.config.server.trusted_proxies))
        .unwrap_or_default();
    req.extensions_mut().insert(ClientAddr(client.clone()));
    req.extensions_mut().insert(RequestId(request_id.clone()));
    // Only known methods become metric labels: a client must not mint new series at will.
    let method = match *req.method() {
        Method::GET
        | Method::HEAD
        | Method::POST
        | Method::PUT
        | Method::PATCH
        | Method::DELETE
        | Method::OPTIONS => req.method().to_string(),
        _ => "OTHER".to_string(),
    };
    let path = req.path().to_string();
    let span = tracing::info_span!("request", id = %request_id, method = %method, path = %path, client = %client);
    let started = Instant::now();

    // No clone of the request may be held across the call: routing needs it unshared.
    let outcome = AssertUnwindSafe(next.call(req))
        .catch_unwind()
        .instrument(span.clone())
        .await;
    let mut response = match outcome {
        Ok(Ok(response)) => response.map_into_boxed_body(),
        Ok(Err(error)) => {
            span.in_scope(
                || tracing::warn!(error = %error, "request failed before a handler answered"),
            );
            return Err(error);
        }
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            span.in_scope(|| tracing::error!(panic = %message, "a handler panicked; answered 500"));
            // The server turns an error into its JSON response; the worker lives on.
            return Err(AppError::internal("handler panicked").into());
        }
    };

    let headers = response.headers_mut();
    let set = |headers: &mut actix_web::http::header::HeaderMap,
               name: HeaderName,
               value: &'static str| {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    };
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(headers, header::REFERRER_POLICY, "no-referrer");
    set(
        headers,
        header::CONTENT_SECURITY_POLICY,
        CONTENT_SECURITY_POLICY,
    );
    set(
        headers,
        HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        headers.insert(HeaderName::from_static("x-request-id"), value);
    }
    if let Some(state) = &state
        && let Some(hsts) = &state.hsts
    {
        headers.insert(header::STRICT_TRANSPORT_SECURITY, hsts.clone());
    }

    let status = response.status().as_u16();
    let route = crate::http::routes::matched(response.request())
        .map_or("unmatched", |r| r.path)
        .to_string();
    let elapsed = started.elapsed();
    if let Some(state) = &state {
        state
            .metrics
            .requests
            .get_or_create(&RequestLabels {
                method: method.clone(),
                route: route.clone(),
                status,
            })
            .inc();
        state
            .metrics
            .latency
            .get_or_create(&RouteLabels {
                method: method.clone(),
                route,
            })
            .observe(elapsed.as_secs_f64());
    }
    let ms = elapsed.as_secs_f64() * 1000.0;
    span.in_scope(|| {
        if path == "/healthz" || path == "/readyz" {
            tracing::debug!(status, ms, "answered");
        } else if status >= 500 {
            tracing::warn!(status, ms, "answered");
        } else {
            tracing::info!(status, ms, "answered");
        }
    });
    Ok(response)
}
