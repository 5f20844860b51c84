//! The web chat widget's endpoints (`docs/widget.md`): public, called from other sites' pages,
//! authenticated by the visitor's token rather than a cookie, so every answer, errors included,
//! allows any origin (the channel's allowed origins are enforced when a session starts).

use std::time::{Duration, Instant};

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use actix_ws::AggregatedMessage;
use futures_util::StreamExt;
use serde::Deserialize;

use super::{Data, Reply};
use crate::channels::web::{self as widget, Handled, ServerFrame, SessionRequest, WidgetFrame};
use crate::collaboration::hub::VisitorFrame;
use crate::error::{AppError, ErrorCode};
use crate::http::extract::{Body, IdPath, Query, Upload};
use crate::knowledge::ops::SearchQuery;

const HEARTBEAT: Duration = Duration::from_secs(30);
const SILENCE_LIMIT: Duration = Duration::from_secs(90);

/// Adds the cross-origin headers to an answer, turning an error into its JSON answer first so a
/// widget on another site can read the error code.
fn cors(result: Reply) -> HttpResponse {
    let mut response = match result {
        Ok(response) => response,
        Err(error) => error.error_response(),
    };
    let headers = response.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        header::HeaderValue::from_static("*"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        header::HeaderValue::from_static("content-type, authorization"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        header::HeaderValue::from_static("GET, POST, OPTIONS"),
    );
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        header::HeaderValue::from_static("600"),
    );
    // The answers are other sites' to use, not this console's to protect from framing.
    headers.insert(
        header::HeaderName::from_static("cross-origin-resource-policy"),
        header::HeaderValue::from_static("cross-origin"),
    );
    response
}

/// The browser's preflight before a cross-origin POST.
pub async fn preflight() -> HttpResponse {
    cors(Ok(HttpResponse::NoContent().finish()))
}

fn origin(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .filter(|o| *o != "null")
        .map(str::to_string)
}

fn bearer(req: &HttpRequest) -> Result<String, AppError> {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string())
        .ok_or_else(|| {
            AppError::new(
                ErrorCode::Unauthenticated,
                "send the visitor token as Authorization: Bearer <token>",
            )
        })
}

pub async fn start_session(
    req: HttpRequest,
    state: Data,
    id: IdPath,
    body: Body<SessionRequest>,
) -> HttpResponse {
    cors(
        async {
            let id = id.get()?;
            let body = body.get()?;
            super::ok(widget::start_session(&state.core, id, origin(&req).as_deref(), body).await?)
        }
        .await,
    )
}

pub async fn upload(req: HttpRequest, state: Data, id: IdPath, upload: Upload) -> HttpResponse {
    cors(
        async {
            let id = id.get()?;
            let token = bearer(&req)?;
            let mut context = widget::authenticate(&state.core, id, &token).await?;
            let file = upload.get()?;
            let attachment = widget::upload(
                &state.core,
                &mut context,
                &token,
                &file.filename,
                file.declared_type.as_deref(),
                file.bytes,
            )
            .await?;
            super::created(attachment)
        }
        .await,
    )
}

#[derive(Deserialize)]
struct KeyQuery {
    key: String,
}

pub async fn attachment(req: HttpRequest, state: Data, id: IdPath) -> HttpResponse {
    cors(
        async {
            let channel_id = id.get()?;
            let attachment_id: u64 = req
                .match_info()
                .get("attachment")
                .and_then(|a| a.parse().ok())
                .ok_or_else(|| AppError::new(ErrorCode::InvalidPath, "attachment: not a number"))?;
            let key = serde_urlencoded::from_str::<KeyQuery>(req.query_string())
                .map_err(|_| AppError::new(ErrorCode::InvalidQuery, "key: missing"))?
                .key;
            let (attachment, content) =
                widget::attachment(&state.core, channel_id, attachment_id, &key).await?;
            Ok(super::file_response(&attachment, content))
        }
        .await,
    )
}

pub async fn search(
    req: HttpRequest,
    state: Data,
    id: IdPath,
    query: Query<SearchQuery>,
) -> HttpResponse {
    cors(
        async {
            let id = id.get()?;
            let query = query.get()?;
            let address = crate::http::extract::client_addr(&req);
            super::ok(
                widget::search_articles(&state.core, id, origin(&req).as_deref(), &address, query)
                    .await?,
            )
        }
        .await,
    )
}

pub async fn article(req: HttpRequest, state: Data, id: IdPath) -> HttpResponse {
    cors(
        async {
            let channel_id = id.get()?;
            let article_id: u64 = req
                .match_info()
                .get("article")
                .and_then(|a| a.parse().ok())
                .ok_or_else(|| AppError::new(ErrorCode::InvalidPath, "article: not a number"))?;
            super::ok(
                widget::help_article(&state.core, channel_id, origin(&req).as_deref(), article_id)
                    .await?,
            )
        }
        .await,
    )
}

#[derive(Deserialize)]
struct SocketQuery {
    token: String,
    #[serde(default)]
    after: u64,
}

/// The widget's WebSocket: the history it missed first, then live frames both ways.
pub async fn socket(
    req: HttpRequest,
    body: actix_web::web::Payload,
    state: Data,
    id: IdPath,
) -> Result<HttpResponse, AppError> {
    let channel_id = id.get()?;
    let query = serde_urlencoded::from_str::<SocketQuery>(req.query_string())
        .map_err(|e| AppError::new(ErrorCode::InvalidQuery, format!("token and after: {e}")))?;
    let core = state.core.clone();
    let mut context = widget::authenticate(&core, channel_id, &query.token).await?;
    if !widget::origin_allowed(context.channel(), origin(&req).as_deref()) {
        return Err(AppError::new(
            ErrorCode::OriginNotAllowed,
            "this site is not allowed to use the chat widget of this channel",
        ));
    }
    let (response, mut session, stream) = actix_ws::handle(&req, body).map_err(|e| {
        AppError::new(
            ErrorCode::InvalidHeader,
            format!("not a WebSocket upgrade: {e}"),
        )
    })?;
    let token = query.token;
    let after = query.after;
    actix_web::rt::spawn(async move {
        let (mut registration, mut frames) = core
            .hub
            .register_visitor(channel_id, context.visitor.customer_id);
        let send = |frame: &ServerFrame| serde_json::to_string(frame).unwrap_or_default();
        // Registered before the history is read: nothing committed in between is missed (a
        // message may arrive twice; the widget keeps one per id).
        // The handlers' futures are boxed: held inline, their size would be reserved in every
        // idle connection's task, and ten thousand idle widgets is the case to be small for.
        match Box::pin(widget::history(&core, &context, after)).await {
            Ok((messages, read_up_to)) => {
                if session
                    .text(send(&ServerFrame::History { messages }))
                    .await
                    .is_err()
                {
                    return;
                }
                if read_up_to > 0
                    && session
                        .text(send(&ServerFrame::Read { up_to: read_up_to }))
                        .await
                        .is_err()
                {
                    return;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot replay a widget's history");
                let _ = session.close(None).await;
                return;
            }
        }
        let online = ServerFrame::Presence {
            online: core.hub.connected() > 0,
        };
        if session.text(send(&online)).await.is_err() {
            return;
        }
        let mut stream = stream
            .max_frame_size(80 * 1024)
            .aggregate_continuations()
            .max_continuation_size(80 * 1024);
        let mut heartbeat = tokio::time::interval(HEARTBEAT);
        heartbeat.tick().await;
        let mut last_heard = Instant::now();
        loop {
            tokio::select! {
                frame = frames.recv() => match frame {
                    Some(VisitorFrame::Text(text)) => if session.text(text.to_string()).await.is_err() { break },
                    Some(VisitorFrame::Message { message, customer_read_up_to }) => {
                        match Box::pin(widget::render(&core, &context, &message, customer_read_up_to)).await {
                            Ok(Some(message)) => if session.text(send(&ServerFrame::Message { message })).await.is_err() { break },
                            Ok(None) => {}
                            Err(e) => tracing::warn!(error = %e, "cannot render a message for a widget"),
                        }
                    }
                    None => break,
                },
                message = stream.next() => match message {
                    Some(Ok(AggregatedMessage::Text(text))) => {
                        last_heard = Instant::now();
                        let answer = match crate::http::extract::parse_json::<WidgetFrame>(text.as_bytes()) {
                            Ok(frame) => {
                                let client_id = match &frame {
                                    WidgetFrame::Message { client_id, .. } => Some(client_id.clone()),
                                    _ => None,
                                };
                                match Box::pin(widget::handle_frame(&core, &mut context, &token, frame)).await {
                                    Ok(Handled::Reply(frame)) => Some(frame),
                                    Ok(Handled::Nothing) => None,
                                    Err(e) => Some(error_frame(&e, client_id)),
                                }
                            }
                            Err(e) => Some(error_frame(&e, None)),
                        };
                        if let Some(customer_id) = context.visitor.customer_id {
                            registration.identify(channel_id, customer_id);
                        }
                        if let Some(answer) = answer
                            && session.text(send(&answer)).await.is_err()
                        {
                            break;
                        }
                    }
                    Some(Ok(AggregatedMessage::Ping(bytes))) => {
                        last_heard = Instant::now();
                        if session.pong(&bytes).await.is_err() { break }
                    }
                    Some(Ok(AggregatedMessage::Pong(_))) => last_heard = Instant::now(),
                    Some(Ok(AggregatedMessage::Binary(_))) => {}
                    Some(Ok(AggregatedMessage::Close(_))) | Some(Err(_)) | None => break,
                },
                _ = heartbeat.tick() => {
                    if last_heard.elapsed() > SILENCE_LIMIT {
                        break;
                    }
                    if session.ping(b"").await.is_err() { break }
                }
            }
        }
        let _ = session.close(None).await;
    });
    Ok(response)
}

fn error_frame(error: &AppError, client_id: Option<String>) -> ServerFrame {
    if error.is_internal() {
        tracing::error!(
            detail = error.detail.as_deref().unwrap_or(""),
            "a widget frame failed"
        );
    }
    ServerFrame::Error {
        code: error.code.as_str(),
        message: error.message.clone(),
        client_id,
    }
}
