//! `GET /api/v1/ws`: the console's one WebSocket for live updates.

use std::time::{Duration, Instant};

use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::AggregatedMessage;
use futures_util::StreamExt;

use serde::Deserialize;

use super::Data;
use crate::conversations::service as conversations;
use crate::error::{AppError, ErrorCode};
use crate::http::extract::Auth;

/// What the console sends on its socket.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ConsoleFrame {
    Ping,
    /// The employee is typing a reply (at most every few seconds).
    Typing {
        conversation_id: u64,
    },
    /// The employee has the conversation open and has seen it up to a message.
    Read {
        conversation_id: u64,
        up_to: u64,
    },
}

fn error_frame(error: AppError) -> String {
    serde_json::json!({ "type": "error", "code": error.code.as_str(), "message": error.message })
        .to_string()
}

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
                        let answer = match serde_json::from_str::<ConsoleFrame>(&text) {
                            Ok(ConsoleFrame::Ping) => Some(r#"{"type":"pong"}"#.to_string()),
                            Ok(ConsoleFrame::Typing { conversation_id }) => {
                                conversations::employee_typing(&core, &caller, conversation_id).await.err().map(error_frame)
                            }
                            Ok(ConsoleFrame::Read { conversation_id, up_to }) => {
                                conversations::mark_read_by_employee(&core, &caller, conversation_id, up_to).await.err().map(error_frame)
                            }
                            Err(e) => Some(error_frame(AppError::new(ErrorCode::InvalidJson, format!("not a console frame: {e}")))),
                        };
                        if let Some(answer) = answer && session.text(answer).await.is_err() {
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
