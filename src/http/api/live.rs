//! `GET /api/v1/ws`: the console's one WebSocket for live updates.

use std::time::{Duration, Instant};

use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::AggregatedMessage;
use futures_util::StreamExt;

use super::Data;
use crate::error::{AppError, ErrorCode};
use crate::http::extract::Auth;

const HEARTBEAT: Duration = Duration::from_secs(30);
/// A console that has not answered for this long is gone.
const SILENCE_LIMIT: Duration = Duration::from_secs(90);

pub async fn live(
    req: HttpRequest,
    body: web::Payload,
    auth: Auth,
    state: Data,
) -> Result<HttpResponse, AppError> {
    // Browsers send cookies on cross-site WebSocket handshakes; only our own pages may connect.
    crate::http::extract::check_origin(&req)?;
    if auth.caller.must_change_password {
        return Err(AppError::new(
            ErrorCode::PasswordChangeRequired,
            "change your password before doing anything else",
        ));
    }
    let (response, mut session, stream) = actix_ws::handle(&req, body).map_err(|e| {
        AppError::new(
            ErrorCode::InvalidHeader,
            format!("not a WebSocket upgrade: {e}"),
        )
    })?;
    let core = state.core.clone();
    let caller = auth.caller;
    actix_web::rt::spawn(async move {
        let (registration, mut events) = core.hub.register(caller.clone());
        let mut stream = stream
            .max_frame_size(64 * 1024)
            .aggregate_continuations()
            .max_continuation_size(256 * 1024);
        let mut heartbeat = tokio::time::interval(HEARTBEAT);
        heartbeat.tick().await;
        let mut last_heard = Instant::now();
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    Some(text) => if session.text(text).await.is_err() { break },
                    // The hub let go of this connection: it was not keeping up.
                    None => break,
                },
                message = stream.next() => match message {
                    Some(Ok(AggregatedMessage::Text(text))) => {
                        last_heard = Instant::now();
                        let kind = serde_json::from_str::<serde_json::Value>(&text).ok().and_then(|v| v["type"].as_str().map(str::to_string));
                        if kind.as_deref() == Some("ping") && session.text(r#"{"type":"pong"}"#).await.is_err() {
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
                    // A logged-out or disabled employee stops receiving at once.
                    if last_heard.elapsed() > SILENCE_LIMIT {
                        break;
                    }
                    // What the employee may see follows their grants as they are now.
                    match crate::auth::service::refreshed(&core, &caller).await {
                        Some(now) if !now.must_change_password => core.hub.update_caller(registration.id, now),
                        _ => break,
                    }
                    if session.ping(b"").await.is_err() { break }
                }
            }
        }
        let _ = session.close(None).await;
    });
    Ok(response)
}
