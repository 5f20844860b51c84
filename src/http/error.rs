//! The one place where an `AppError` becomes an HTTP response:
//! `{"error":{"code":"...","message":"..."}}` with the status from the code table.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::error::{AppError, ErrorCode};

#[derive(Serialize, schemars::JsonSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, schemars::JsonSchema)]
pub struct ErrorDetail {
    /// A stable code from the error table (see the OpenAPI document's `x-error-codes`).
    pub code: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        if self.is_internal() {
            tracing::error!(
                code = self.code.as_str(),
                detail = self.detail.as_deref().unwrap_or(""),
                "request failed"
            );
        } else if let Some(detail) = &self.detail {
            tracing::debug!(code = self.code.as_str(), detail, "request refused");
        }
        let mut response = HttpResponse::build(self.status_code());
        if let Some(seconds) = self.retry_after {
            response.insert_header((header::RETRY_AFTER, seconds.to_string()));
        }
        response.insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
        response.json(ErrorBody {
            error: ErrorDetail {
                code: self.code.as_str().into(),
                message: self.message.clone(),
                details: self.details.clone(),
            },
        })
    }
}

/// For actix's own extractor failures (path and query parsing, payload errors).
pub fn from_actix(err: &actix_web::Error, code: ErrorCode, context: &str) -> AppError {
    AppError::new(code, format!("{context}: {err}"))
}
