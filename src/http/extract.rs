//! Request extractors: the authenticated caller (permission checked against the route table),
//! JSON bodies and query strings whose errors name the offending field.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::{Method, header};
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use crate::auth::rbac::Permission;
use crate::auth::session::COOKIE_NAME;
use crate::auth::{Caller, constant_time_eq, service as auth};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::http::AppState;
use crate::http::routes::{self, Access};

/// The client's address as seen through trusted proxies; set by the request middleware.
#[derive(Debug, Clone)]
pub struct ClientAddr(pub String);

pub fn client_addr(req: &HttpRequest) -> String {
    req.extensions()
        .get::<ClientAddr>()
        .map(|c| c.0.clone())
        .unwrap_or_default()
}

pub fn state(req: &HttpRequest) -> Result<web::Data<AppState>, AppError> {
    req.app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| AppError::internal("application state missing"))
}

/// An authenticated caller allowed to use the matched route.
pub struct Auth {
    pub caller: Caller,
    /// The session's CSRF token (console sessions only).
    pub csrf_token: Option<String>,
}

impl FromRequest for Auth {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Auth, AppError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { authorize(&req).await })
    }
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

async fn authorize(req: &HttpRequest) -> Result<Auth, AppError> {
    let state = state(req)?;
    let route = routes::matched(req).ok_or_else(|| {
        AppError::internal(format!(
            "{} {} was not served by a route of the table",
            req.method(),
            req.path()
        ))
    })?;
    let permission = match route.access {
        Access::Public | Access::Signed => {
            return Err(AppError::internal("a public route asked for a caller"));
        }
        Access::Permission(p) => p,
    };
    let source = client_addr(req);
    let core = &state.core;

    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or_default().to_string());
    let (caller, csrf_token) = if let Some(value) = bearer {
        let token = value.strip_prefix("Bearer ").ok_or_else(|| {
            AppError::new(
                ErrorCode::Unauthenticated,
                "the Authorization header must be `Bearer <API token>`",
            )
        })?;
        (
            auth::authenticate_token(core, token.trim(), &source).await?,
            None,
        )
    } else if let Some(cookie) = req.cookie(COOKIE_NAME) {
        let (caller, csrf) = auth::authenticate_session(core, cookie.value(), &source).await?;
        if !is_safe(req.method()) {
            check_csrf(req, &csrf)?;
        }
        (caller, Some(csrf))
    } else {
        return Err(AppError::new(
            ErrorCode::Unauthenticated,
            "sign in, or send an API token as `Authorization: Bearer <token>`",
        ));
    };

    if caller.must_change_password && permission != Permission::AccountSelf {
        return Err(AppError::new(
            ErrorCode::PasswordChangeRequired,
            "change your password before doing anything else",
        ));
    }
    if permission.is_organisation_wide() {
        caller.require_everywhere(permission)?;
    } else {
        caller.require(permission)?;
    }
    Ok(Auth { caller, csrf_token })
}

/// A console request that changes state must carry the session's CSRF token, and, when the
/// browser names an origin, come from this server's own origin.
fn check_csrf(req: &HttpRequest, expected: &str) -> Result<(), AppError> {
    let given = req
        .headers()
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if given.is_empty() || !constant_time_eq(given.as_bytes(), expected.as_bytes()) {
        return Err(AppError::new(
            ErrorCode::CsrfRejected,
            "missing or wrong X-CSRF-Token header",
        ));
    }
    check_origin(req)
}

/// When the browser names an origin, it must be this server's own.
pub fn check_origin(req: &HttpRequest) -> Result<(), AppError> {
    if let Some(origin) = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
    {
        let host = req.connection_info().host().to_string();
        let origin_host = origin.split_once("://").map(|(_, h)| h).unwrap_or(origin);
        if origin == "null" || !origin_host.eq_ignore_ascii_case(&host) {
            return Err(AppError::new(
                ErrorCode::CsrfRejected,
                format!("requests from origin {origin} are not accepted"),
            ));
        }
    }
    Ok(())
}

/// A JSON body, size-limited, whose errors name the field at fault.
///
/// Body, query and path extractors never fail by themselves: actix polls all extractors of a
/// handler together, and a malformed body must not answer before the caller is authenticated
/// (an anonymous request gets 401 whatever it sent). Handlers take the value with `get()?`
/// after `Auth` has succeeded.
pub struct Body<T>(AppResult<T>);

impl<T> Body<T> {
    pub fn get(self) -> AppResult<T> {
        self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Body<T> {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Body<T>, AppError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let mut payload = payload.take();
        Box::pin(async move { Ok(Body(read_json(&req, &mut payload).await)) })
    }
}

async fn read_json<T: DeserializeOwned>(req: &HttpRequest, payload: &mut Payload) -> AppResult<T> {
    let is_json = req.mime_type().ok().flatten().is_some_and(|m| {
        m.subtype() == mime_guess::mime::JSON || m.suffix() == Some(mime_guess::mime::JSON)
    });
    if !is_json {
        return Err(AppError::new(
            ErrorCode::UnsupportedMediaType,
            "send the body as Content-Type: application/json",
        ));
    }
    parse_json(&read_body(req, payload).await?)
}

/// Reads the whole body up to the configured limit.
async fn read_body(req: &HttpRequest, payload: &mut Payload) -> AppResult<web::Bytes> {
    let limit = state(req)?.core.config.server.max_body_bytes;
    read_body_up_to(req, payload, limit).await
}

async fn read_body_up_to(
    req: &HttpRequest,
    payload: &mut Payload,
    limit: usize,
) -> AppResult<web::Bytes> {
    let too_large = || {
        AppError::new(
            ErrorCode::PayloadTooLarge,
            format!("the body exceeds {limit} bytes"),
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut body = web::BytesMut::with_capacity(declared.unwrap_or(0).min(limit));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            AppError::new(
                ErrorCode::InvalidJson,
                format!("the body could not be read: {e}"),
            )
        })?;
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// The exact bytes of the body (for signatures computed over them), size-limited; deferred
/// like `Body`.
pub struct RawBody(AppResult<web::Bytes>);

impl RawBody {
    pub fn get(self) -> AppResult<web::Bytes> {
        self.0
    }
}

impl FromRequest for RawBody {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<RawBody, AppError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let mut payload = payload.take();
        Box::pin(async move { Ok(RawBody(read_body(&req, &mut payload).await)) })
    }
}

/// An uploaded file: the raw body up to `attachments.max_bytes`, its declared type and the
/// `filename` query parameter; deferred like `Body`.
pub struct Upload(AppResult<UploadedFile>);

pub struct UploadedFile {
    pub filename: String,
    pub declared_type: Option<String>,
    pub bytes: web::Bytes,
}

impl Upload {
    pub fn get(self) -> AppResult<UploadedFile> {
        self.0
    }
}

impl FromRequest for Upload {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Upload, AppError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let mut payload = payload.take();
        Box::pin(async move {
            let read = async {
                let limit = state(&req)?.core.config.attachments.max_bytes;
                let filename = form_urlencoded::parse(req.query_string().as_bytes())
                    .find(|(k, _)| k == "filename")
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default();
                let declared_type = req
                    .headers()
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                let bytes = read_body_up_to(
                    &req,
                    &mut payload,
                    usize::try_from(limit).unwrap_or(usize::MAX),
                )
                .await?;
                Ok(UploadedFile {
                    filename,
                    declared_type,
                    bytes,
                })
            };
            Ok(Upload(read.await))
        })
    }
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => field_error(&path, &inner.to_string()),
            _ => AppError::new(
                ErrorCode::InvalidJson,
                format!("the body is not valid JSON: {inner}"),
            ),
        }
    })?;
    deserializer.end().map_err(|e| {
        AppError::new(
            ErrorCode::InvalidJson,
            format!("the body is not valid JSON: {e}"),
        )
    })?;
    Ok(value)
}

fn field_error(path: &str, problem: &str) -> AppError {
    // serde appends " at line 1 column 12"; the field path says more.
    let problem = problem.split(" at line ").next().unwrap_or(problem);
    if path == "." || path.is_empty() {
        AppError::new(ErrorCode::InvalidField, problem.to_string())
    } else {
        AppError::new(ErrorCode::InvalidField, format!("{path}: {problem}"))
    }
}

/// A query string whose errors name the parameter at fault (deferred like `Body`).
pub struct Query<T>(AppResult<T>);

impl<T> Query<T> {
    pub fn get(self) -> AppResult<T> {
        self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Query<T> {
    type Error = AppError;
    type Future = std::future::Ready<Result<Query<T>, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let deserializer =
            serde_urlencoded::Deserializer::new(form_urlencoded_parse(req.query_string()));
        let result = serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let path = e.path().to_string();
            let message = e.into_inner().to_string();
            if path == "." {
                AppError::new(ErrorCode::InvalidQuery, message)
            } else {
                AppError::new(ErrorCode::InvalidQuery, format!("{path}: {message}"))
            }
        });
        std::future::ready(Ok(Query(result)))
    }
}

fn form_urlencoded_parse(query: &str) -> form_urlencoded::Parse<'_> {
    form_urlencoded::parse(query.as_bytes())
}

/// A numeric id from the path (deferred like `Body`).
pub struct IdPath(AppResult<u64>);

impl IdPath {
    pub fn get(self) -> AppResult<u64> {
        self.0
    }
}

impl FromRequest for IdPath {
    type Error = AppError;
    type Future = std::future::Ready<Result<IdPath, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let raw = req.match_info().get("id").unwrap_or("");
        let id = raw.parse::<u64>().map_err(|_| {
            AppError::new(
                ErrorCode::InvalidPath,
                format!("id: {raw:?} is not a number"),
            )
        });
        std::future::ready(Ok(IdPath(id)))
    }
}
