//! Live updates: the console's WebSocket hears about committed changes it may see, and only those.

use std::time::Duration;

use futures_util::SinkExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::common::*;

async fn post_json(
    server: &TestServer,
    channel: u64,
    secret: &str,
    key: &str,
    body: Value,
) -> Value {
    post_signed(server, channel, secret, key, &body)
        .await
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn consoles_hear_committed_messages_they_may_see_and_nothing_else() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    crate::matrix::employee_with_role(&server, &admin, "helper.li", "employee_agent").await;
    let agent_id = admin.json("/api/v1/employees?q=helper.li").await["items"][0]["id"]
        .as_u64()
        .unwrap();
    let channel = admin
        .create("/api/v1/channels", json!({ "kind": "api", "name": "App" }))
        .await;
    let (channel_id, secret) = (
        channel["channel"]["id"].as_u64().unwrap(),
        channel["signing_secret"].as_str().unwrap().to_string(),
    );

    let admin_cookie = session_cookie(&server, "admin", NEW_ADMIN_PASSWORD).await;
    let agent_cookie = session_cookie(&server, "helper.li", CHANGED_PASSWORD).await;
    let mut admin_socket = console_socket(&server, &admin_cookie, &server.base)
        .await
        .expect("the console connects");
    let mut agent_socket = console_socket(&server, &agent_cookie, &server.base)
        .await
        .expect("the console connects");

    admin_socket
        .send(Message::Text(r#"{"type":"ping"}"#.into()))
        .await
        .unwrap();
    assert_eq!(
        next_event(&mut admin_socket, Duration::from_secs(5))
            .await
            .unwrap()["type"],
        "pong"
    );

    let stored = post_json(&server, channel_id, &secret, "k1", json!({ "type": "message", "message_id": "m1", "customer": { "external_id": "c1" }, "text": "你好，我的订单呢？" })).await;
    let event = next_event(&mut admin_socket, Duration::from_secs(5))
        .await
        .expect("the administrator hears the new message");
    assert_eq!(event["type"], "message.created");
    assert_eq!(event["message"]["text"], "你好，我的订单呢？");
    assert_eq!(event["conversation"]["id"], stored["conversation_id"]);
    // The agent may not see an unassigned conversation, so hears nothing.
    assert!(
        next_event(&mut agent_socket, Duration::from_millis(500))
            .await
            .is_none()
    );

    let conversation = stored["conversation_id"].as_u64().unwrap();
    admin
        .create(
            &format!("/api/v1/conversations/{conversation}/assign"),
            json!({ "assignee_id": agent_id }),
        )
        .await;
    let assigned = next_event(&mut agent_socket, Duration::from_secs(5))
        .await
        .expect("the new assignee hears of it");
    assert_eq!(
        assigned["conversation"]["assignee_id"].as_u64(),
        Some(agent_id)
    );
    let reply = admin
        .create(
            &format!("/api/v1/conversations/{conversation}/messages"),
            json!({ "text": "马上为您查询" }),
        )
        .await;
    let mut heard = None;
    for _ in 0..5 {
        let event = next_event(&mut agent_socket, Duration::from_secs(5))
            .await
            .expect("events keep coming");
        if event["message"]["id"] == reply["id"] {
            heard = Some(event);
            break;
        }
    }
    assert_eq!(
        heard.expect("the reply reaches the assignee")["message"]["direction"],
        "outbound"
    );
    // A duplicate redelivery announces nothing.
    while next_event(&mut admin_socket, Duration::from_millis(300))
        .await
        .is_some()
    {}
    post_json(&server, channel_id, &secret, "k2", json!({ "type": "message", "message_id": "m1", "customer": { "external_id": "c1" }, "text": "你好，我的订单呢？" })).await;
    assert!(
        next_event(&mut admin_socket, Duration::from_millis(500))
            .await
            .is_none()
    );
}

#[tokio::test]
async fn the_live_socket_refuses_other_origins_and_anonymous_callers() {
    let server = TestServer::start().await;
    server.admin().await;
    let cookie = session_cookie(&server, "admin", NEW_ADMIN_PASSWORD).await;
    assert!(
        console_socket(&server, &cookie, "https://evil.example")
            .await
            .is_err(),
        "cross-site WebSocket hijacking is refused"
    );
    assert!(
        console_socket(&server, "allhands_session=forged", &server.base)
            .await
            .is_err()
    );
    assert!(console_socket(&server, &cookie, &server.base).await.is_ok());
    // Someone who has not yet replaced a temporary password hears nothing.
    let admin = Session::login(&server, "admin", NEW_ADMIN_PASSWORD)
        .await
        .unwrap();
    admin.create("/api/v1/employees", json!({ "username": "newcomer", "display_name": "New", "department_id": 1, "password": EMPLOYEE_PASSWORD })).await;
    let temporary = session_cookie(&server, "newcomer", EMPLOYEE_PASSWORD).await;
    assert!(
        console_socket(&server, &temporary, &server.base)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn open_consoles_do_not_hold_up_a_shutdown() {
    let mut server = TestServer::start().await;
    server.admin().await;
    let cookie = session_cookie(&server, "admin", NEW_ADMIN_PASSWORD).await;
    let mut socket = console_socket(&server, &cookie, &server.base)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    server.stop();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "shutdown took {:?}",
        started.elapsed()
    );
    // The console learns that the connection ended and will reconnect.
    assert!(
        next_event(&mut socket, Duration::from_secs(2))
            .await
            .is_none()
    );
}
