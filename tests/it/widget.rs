//! The web chat widget's protocol (docs/widget.md) against the real server: sessions with
//! origins and signed identities, the visitor's WebSocket with history replay, idempotent
//! sends, typing, read receipts, page views, uploads, and the console on the other side.

use std::time::Duration;

use futures_util::SinkExt;

use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::common::*;

const SHOP: &str = WIDGET_SITE;
const WAIT: Duration = Duration::from_secs(5);

/// The next frame of the given type, skipping others (presence, echoes).
async fn expect_frame(socket: &mut Socket, kind: &str) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let frame = next_event(socket, left)
            .await
            .unwrap_or_else(|| panic!("no {kind} frame arrived"));
        if frame["type"] == kind {
            return frame;
        }
    }
}

async fn console_cookie(server: &TestServer) -> String {
    let response = client()
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({ "username": "admin", "password": NEW_ADMIN_PASSWORD }))
        .send()
        .await
        .unwrap();
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_string();
    cookie.split(';').next().unwrap().to_string()
}

#[tokio::test]
async fn a_visitor_chats_with_the_console_through_the_widget_protocol() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let created = admin
        .create(
            "/api/v1/channels",
            json!({ "kind": "web", "name": "Shop chat",
                    "settings": { "colour": "#aa3300", "prechat": { "name": "required", "email": "optional" },
                                  "allowed_origins": [SHOP] } }),
        )
        .await;
    let channel = created["channel"]["id"].as_u64().unwrap();
    let identity_secret = created["signing_secret"].as_str().unwrap().to_string();
    assert!(identity_secret.starts_with("ahi_"));

    // Another site may not use this channel's widget; the refusal is readable cross-origin.
    let refused = start_session(&server, channel, "https://evil.example", json!({})).await;
    assert_eq!(refused.headers()["access-control-allow-origin"], "*");
    expect_error(refused, 403, "origin_not_allowed").await;
    let preflight = client()
        .request(
            reqwest::Method::OPTIONS,
            server.url(&format!("/api/v1/widget/{channel}/sessions")),
        )
        .header("Origin", SHOP)
        .header("Access-Control-Request-Method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    assert!(
        preflight.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("authorization")
    );

    // Nobody is in the console: the widget will offer to leave a message. Name is required.
    let session: Value = start_session(
        &server,
        channel,
        SHOP,
        json!({ "page": { "url": "https://shop.example/pricing", "title": "Pricing" } }),
    )
    .await
    .json()
    .await
    .unwrap();
    let token = session["visitor_token"].as_str().unwrap().to_string();
    assert_eq!(session["online"], false);
    assert_eq!(session["needs_prechat"], true);
    assert_eq!(session["settings"]["colour"], "#aa3300");
    assert!(session["customer"].is_null(), "nobody until they write");

    let cookie = console_cookie(&server).await;
    let mut console = wss(
        &server,
        "/api/v1/ws",
        &[("Cookie", &cookie), ("Origin", &server.base)],
    )
    .await
    .unwrap();
    let mut widget = visitor_socket(&server, channel, &token, 0).await;
    assert_eq!(
        expect_frame(&mut widget, "history").await["messages"],
        json!([])
    );
    assert_eq!(expect_frame(&mut widget, "presence").await["online"], true);

    send(
        &mut widget,
        json!({ "type": "profile", "name": "Chen Jing", "email": "chen@example.com" }),
    )
    .await;
    send(
        &mut widget,
        json!({ "type": "page_view", "url": "https://shop.example/checkout", "title": "Checkout" }),
    )
    .await;
    send(
        &mut widget,
        json!({ "type": "message", "client_id": "c-1", "text": "Does the Pro plan include SSO?" }),
    )
    .await;
    let ack = expect_frame(&mut widget, "ack").await;
    assert_eq!(ack["client_id"], "c-1");
    let first_id = ack["message"]["id"].as_u64().unwrap();
    assert_eq!(ack["message"]["direction"], "inbound");
    // Sent again after a reconnect: the same message, not a second one.
    send(
        &mut widget,
        json!({ "type": "message", "client_id": "c-1", "text": "Does the Pro plan include SSO?" }),
    )
    .await;
    assert_eq!(
        expect_frame(&mut widget, "ack").await["message"]["id"],
        first_id
    );

    let created_event = loop {
        let event = next_event(&mut console, WAIT)
            .await
            .expect("the console hears the message");
        if event["type"] == "message.created" {
            break event;
        }
    };
    let conversation = created_event["conversation"]["id"].as_u64().unwrap();
    assert_eq!(created_event["conversation"]["channel_kind"], "web");
    let listed = admin.json("/api/v1/conversations").await;
    assert_eq!(
        listed["items"].as_array().unwrap().len(),
        1,
        "one conversation: {listed}"
    );
    let detail = admin
        .json(&format!("/api/v1/conversations/{conversation}"))
        .await;
    assert_eq!(detail["customer"]["name"], "Chen Jing");
    assert_eq!(detail["customer"]["emails"], json!(["chen@example.com"]));
    let customer = detail["customer"]["id"].as_u64().unwrap();
    let profile = admin.json(&format!("/api/v1/customers/{customer}")).await;
    let pages: Vec<&str> = profile["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["name"] == "page_view")
        .map(|e| e["properties"]["url"].as_str().unwrap())
        .collect();
    assert!(pages.contains(&"https://shop.example/pricing"), "{profile}");
    assert!(
        pages.contains(&"https://shop.example/checkout"),
        "{profile}"
    );

    // Typing travels both ways; the customer sees the employee's name, never their account.
    send(&mut widget, json!({ "type": "typing" })).await;
    let typing = loop {
        let event = next_event(&mut console, WAIT)
            .await
            .expect("typing reaches the console");
        if event["type"] == "typing" {
            break event;
        }
    };
    assert_eq!(typing["typist"]["kind"], "customer");
    send(
        &mut console,
        json!({ "type": "typing", "conversation_id": conversation }),
    )
    .await;
    assert!(expect_frame(&mut widget, "typing").await["name"].is_string());

    // The employee answers; the widget gets it live. Reading is reported both ways.
    let reply = admin
        .create(
            &format!("/api/v1/conversations/{conversation}/messages"),
            json!({ "text": "Yes, SAML and OIDC." }),
        )
        .await;
    assert_eq!(
        reply["delivery"]["state"], "sent",
        "stored is delivered for the widget"
    );
    let pushed = expect_frame(&mut widget, "message").await;
    assert_eq!(pushed["message"]["text"], "Yes, SAML and OIDC.");
    assert_eq!(pushed["message"]["direction"], "outbound");
    assert!(pushed["message"]["author_name"].is_string());
    let note = admin
        .create(
            &format!("/api/v1/conversations/{conversation}/messages"),
            json!({ "text": "internal: check the contract", "note": true }),
        )
        .await;
    send(
        &mut console,
        json!({ "type": "read", "conversation_id": conversation, "up_to": first_id }),
    )
    .await;
    assert_eq!(expect_frame(&mut widget, "read").await["up_to"], first_id);
    send(&mut widget, json!({ "type": "read", "up_to": reply["id"] })).await;
    let updated = loop {
        let event = next_event(&mut console, WAIT)
            .await
            .expect("the read receipt reaches the console");
        if event["type"] == "conversation.updated"
            && event["conversation"]["customer_read_up_to"] == reply["id"]
        {
            break event;
        }
    };
    assert_eq!(updated["conversation"]["id"], conversation);

    // A broken frame is answered, not fatal.
    send(
        &mut widget,
        json!({ "type": "message", "client_id": "c-2" }),
    )
    .await;
    let error = expect_frame(&mut widget, "error").await;
    assert_eq!(error["code"], "invalid_field");
    assert_eq!(error["client_id"], "c-2");
    widget
        .send(Message::Text("{not json".into()))
        .await
        .unwrap();
    assert_eq!(
        expect_frame(&mut widget, "error").await["code"],
        "invalid_json"
    );

    // Reconnecting after the first message replays what was missed, and never the note.
    drop(widget);
    let mut widget = visitor_socket(&server, channel, &token, first_id).await;
    let history = expect_frame(&mut widget, "history").await;
    let texts: Vec<&str> = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["Yes, SAML and OIDC."]);
    assert_eq!(history["messages"][0]["state"], "read");
    assert!(!history.to_string().contains(note["text"].as_str().unwrap()));

    // A file: uploaded with the token, sent in a message, fetched by its address.
    let upload = client()
        .post(server.url(&format!(
            "/api/v1/widget/{channel}/uploads?filename=order.txt"
        )))
        .header("Authorization", format!("Bearer {token}"))
        .header("Content-Type", "text/plain")
        .body("order 20261121-7")
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status(), 201);
    let file: Value = upload.json().await.unwrap();
    send(
        &mut widget,
        json!({ "type": "message", "client_id": "c-3", "text": "", "attachments": [file["id"]] }),
    )
    .await;
    let ack = expect_frame(&mut widget, "ack").await;
    let url = ack["message"]["attachments"][0]["url"]
        .as_str()
        .unwrap()
        .to_string();
    let fetched = client().get(server.url(&url)).send().await.unwrap();
    assert_eq!(fetched.status(), 200);
    assert_eq!(fetched.text().await.unwrap(), "order 20261121-7");
    let forged = client()
        .get(server.url(&format!(
            "/api/v1/widget/{channel}/attachments/{}?key=00000000000000000000000000000000",
            file["id"]
        )))
        .send()
        .await
        .unwrap();
    expect_error(forged, 404, "not_found").await;
    let anonymous = client()
        .post(server.url(&format!("/api/v1/widget/{channel}/uploads?filename=x.txt")))
        .body("x")
        .send()
        .await
        .unwrap();
    expect_error(anonymous, 401, "unauthenticated").await;

    // An unknown token cannot open a socket.
    assert!(
        wss(
            &server,
            &format!("/api/v1/widget/{channel}/ws?token=awv_forged"),
            &[("Origin", SHOP)]
        )
        .await
        .is_err()
    );
}

#[tokio::test]
async fn a_signed_in_site_user_is_one_customer_on_every_device() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let created = admin
        .create(
            "/api/v1/channels",
            json!({ "kind": "web", "name": "Portal" }),
        )
        .await;
    let channel = created["channel"]["id"].as_u64().unwrap();
    let secret = created["signing_secret"].as_str().unwrap().to_string();
    let signature = allhands::channels::web::identity_signature(&secret, "user-42");

    let forged = start_session(
        &server,
        channel,
        SHOP,
        json!({ "user": { "id": "user-42", "name": "Zhao Lei", "signature": "00".repeat(32) } }),
    )
    .await;
    expect_error(forged, 401, "invalid_signature").await;

    let mut customers = Vec::new();
    for device in ["laptop", "phone"] {
        let session: Value = start_session(
            &server,
            channel,
            SHOP,
            json!({ "user": { "id": "user-42", "name": "Zhao Lei", "email": "zhao@example.com", "signature": signature } }),
        )
        .await
        .json()
        .await
        .unwrap();
        assert_eq!(session["customer"]["name"], "Zhao Lei");
        let token = session["visitor_token"].as_str().unwrap();
        let mut widget = visitor_socket(&server, channel, token, 0).await;
        expect_frame(&mut widget, "history").await;
        send(
            &mut widget,
            json!({ "type": "message", "client_id": device, "text": format!("from my {device}") }),
        )
        .await;
        expect_frame(&mut widget, "ack").await;
        let listed = admin.json("/api/v1/conversations").await;
        customers.push(listed["items"][0]["customer_id"].clone());
        // The second device sees the first device's message in its history.
        if device == "phone" {
            let mut again = visitor_socket(&server, channel, token, 0).await;
            let history = expect_frame(&mut again, "history").await;
            assert_eq!(
                history["messages"].as_array().unwrap().len(),
                2,
                "{history}"
            );
        }
    }
    assert_eq!(customers[0], customers[1]);
    let listed = admin.json("/api/v1/conversations").await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);

    // Rotating the identity secret invalidates old signatures.
    let rotated = admin
        .create(
            &format!("/api/v1/channels/{channel}/rotate-secret"),
            json!({}),
        )
        .await;
    assert_ne!(rotated["signing_secret"].as_str().unwrap(), secret);
    let stale = start_session(
        &server,
        channel,
        SHOP,
        json!({ "user": { "id": "user-42", "signature": signature } }),
    )
    .await;
    expect_error(stale, 401, "invalid_signature").await;

    // A disabled channel's widget is gone.
    admin
        .patch(
            &format!("/api/v1/channels/{channel}"),
            json!({ "enabled": false }),
        )
        .await;
    expect_error(
        start_session(&server, channel, SHOP, json!({})).await,
        404,
        "not_found",
    )
    .await;
}

/// `GET /api/v1/widget/{channel}/search?q=&lang=` from a page on `origin`.
async fn widget_search(
    server: &TestServer,
    channel: u64,
    origin: &str,
    q: &str,
    lang: &str,
) -> reqwest::Response {
    let q: String = form_urlencoded::byte_serialize(q.as_bytes()).collect();
    client()
        .get(server.url(&format!(
            "/api/v1/widget/{channel}/search?q={q}&lang={lang}"
        )))
        .header("Origin", origin)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_widget_searches_public_articles_only_for_allowed_sites_and_counts_the_questions() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let created = admin
        .create(
            "/api/v1/channels",
            json!({ "kind": "web", "name": "Shop chat", "settings": { "allowed_origins": [SHOP] } }),
        )
        .await;
    let channel = created["channel"]["id"].as_u64().unwrap();
    let mut ids = Vec::new();
    for (title, body, visibility) in [
        (
            "Refund times",
            "Once a refund is approved the money is back on your card within 3 to 5 working days.",
            "public",
        ),
        (
            "Refund fraud checks",
            "Internal: refunds above 500 need a second approval before the refund is paid back.",
            "internal",
        ),
    ] {
        let id = admin
            .publish_article(json!({ "title": title, "body": body, "visibility": visibility }))
            .await;
        ids.push(id);
    }
    let (public, internal) = (ids[0], ids[1]);

    // Public articles only, with their passage; readable cross-origin.
    let found = widget_search(&server, channel, SHOP, "when is my refund paid back", "en").await;
    assert_eq!(found.status(), 200);
    assert_eq!(found.headers()["access-control-allow-origin"], "*");
    let found: Value = found.json().await.unwrap();
    let answers = found["answers"].as_array().unwrap();
    assert_eq!(answers.len(), 1, "{found}");
    assert_eq!(answers[0]["article_id"], public);
    assert!(
        answers[0]["passage"]
            .as_str()
            .unwrap()
            .contains("3 to 5 working days")
    );
    assert_eq!(found["lang"], "en");
    let article: Value = client()
        .get(server.url(&format!("/api/v1/widget/{channel}/articles/{public}")))
        .header("Origin", SHOP)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(article["title"], "Refund times");
    let hidden = client()
        .get(server.url(&format!("/api/v1/widget/{channel}/articles/{internal}")))
        .header("Origin", SHOP)
        .send()
        .await
        .unwrap();
    expect_error(hidden, 404, "not_found").await;

    // Another site is refused, as for sessions; an unknown channel is not found.
    let refused = widget_search(&server, channel, "https://evil.example", "refund", "en").await;
    assert_eq!(refused.headers()["access-control-allow-origin"], "*");
    expect_error(refused, 403, "origin_not_allowed").await;
    let refused = client()
        .get(server.url(&format!("/api/v1/widget/{channel}/articles/{public}")))
        .header("Origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    expect_error(refused, 403, "origin_not_allowed").await;
    expect_error(
        widget_search(&server, 999_999, SHOP, "refund", "en").await,
        404,
        "not_found",
    )
    .await;
    expect_error(
        widget_search(&server, channel, SHOP, " ", "en").await,
        400,
        "invalid_query",
    )
    .await;

    // Unanswered questions asked in the widget open a knowledge task, as the help centre's do.
    for q in [
        "如何开具增值税专用发票",
        "增值税专用发票怎么开具",
        "我要开增值税专用发票",
        "怎么开增值税专用发票？",
        "公司报销需要增值税专用发票，如何开具",
    ] {
        let answer = widget_search(&server, channel, SHOP, q, "zh").await;
        assert_eq!(answer.status(), 200);
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let mut tasks = Value::Null;
    for _ in 0..100 {
        tasks = admin.json("/api/v1/knowledge/tasks").await;
        if tasks["items"].as_array().is_some_and(|t| !t.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        tasks["items"][0]["asked"].as_u64().unwrap_or(0) >= 5,
        "{tasks}"
    );

    // One address may search 30 times a minute.
    let mut last = 0;
    for _ in 0..40 {
        last = widget_search(&server, channel, SHOP, "refund", "en")
            .await
            .status()
            .as_u16();
        if last == 429 {
            break;
        }
    }
    assert_eq!(last, 429, "the widget's search is rate limited");
}
