//! Outbound delivery through the API channel's signed webhook: retries with backoff until the
//! receiver comes back, and a dead-letter list an administrator can retry from.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::*;

type Seen = Arc<Mutex<Vec<(HashMap<String, String>, Vec<u8>)>>>;

/// A local webhook receiver that answers with a status the test controls.
struct Receiver {
    url: String,
    status: Arc<AtomicU16>,
    seen: Seen,
}

async fn receiver(status: u16) -> Receiver {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let status = Arc::new(AtomicU16::new(status));
    let seen: Seen = Arc::default();
    let (answer, record) = (status.clone(), seen.clone());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let (answer, record) = (answer.clone(), record.clone());
            tokio::spawn(async move {
                let mut data = Vec::new();
                let mut buf = [0u8; 8192];
                let (headers, body_start) = loop {
                    let n = stream.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    data.extend_from_slice(&buf[..n]);
                    if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&data[..end]).to_string();
                        let headers: HashMap<String, String> = head
                            .lines()
                            .skip(1)
                            .filter_map(|l| {
                                l.split_once(':').map(|(k, v)| {
                                    (k.trim().to_ascii_lowercase(), v.trim().to_string())
                                })
                            })
                            .collect();
                        break (headers, end + 4);
                    }
                };
                let length: usize = headers
                    .get("content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                while data.len() < body_start + length {
                    let n = stream.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    data.extend_from_slice(&buf[..n]);
                }
                record
                    .lock()
                    .unwrap()
                    .push((headers, data[body_start..].to_vec()));
                let status = answer.load(Ordering::SeqCst);
                let _ = stream
                    .write_all(
                        format!(
                            "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        )
                        .as_bytes(),
                    )
                    .await;
            });
        }
    });
    Receiver { url, status, seen }
}

async fn wait_for<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    for _ in 0..300 {
        if let Some(found) = check().await {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn inbound(server: &TestServer, channel: u64, secret: &str, key: &str, text: &str) -> Value {
    let body = json!({ "type": "message", "message_id": key, "customer": { "external_id": "app-user-7" }, "text": text });
    post_signed(server, channel, secret, key, &body)
        .await
        .json()
        .await
        .unwrap()
}

async fn delivery(admin: &Session, conversation: u64, message: u64) -> Value {
    let detail = admin
        .json(&format!("/api/v1/conversations/{conversation}"))
        .await;
    detail["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"].as_u64() == Some(message))
        .unwrap()["delivery"]
        .clone()
}

#[tokio::test]
async fn replies_reach_the_webhook_after_it_comes_back_and_dead_letters_can_be_retried() {
    let server = TestServer::start_with(&[
        ("ALLHANDS_DELIVERY__RETRY_INITIAL_SECS", "1"),
        ("ALLHANDS_DELIVERY__MAX_ATTEMPTS", "5"),
    ])
    .await;
    let admin = server.admin().await;
    let hook = receiver(503).await;
    let created = admin
        .create(
            "/api/v1/channels",
            json!({ "kind": "api", "name": "App", "settings": { "webhook_url": hook.url } }),
        )
        .await;
    let (channel, secret) = (
        created["channel"]["id"].as_u64().unwrap(),
        created["signing_secret"].as_str().unwrap().to_string(),
    );
    let conversation =
        inbound(&server, channel, &secret, "m1", "Where is my refund?").await["conversation_id"]
            .as_u64()
            .unwrap();
    let reply = admin
        .create(
            &format!("/api/v1/conversations/{conversation}/messages"),
            json!({ "text": "Refunded today, 3-5 days to arrive." }),
        )
        .await;
    let message = reply["id"].as_u64().unwrap();

    // The receiver is down: the delivery is retried, and the message says why it waits.
    wait_for("two attempts", async || {
        (hook.seen.lock().unwrap().len() >= 2).then_some(())
    })
    .await;
    let waiting = delivery(&admin, conversation, message).await;
    assert_eq!(waiting["state"], "queued");
    assert!(
        waiting["failure"].as_str().unwrap_or("").contains("503"),
        "{waiting}"
    );
    hook.status.store(200, Ordering::SeqCst);
    wait_for("delivery", async || {
        let d = delivery(&admin, conversation, message).await;
        (d["state"] == "sent").then_some(d)
    })
    .await;

    let seen = hook.seen.lock().unwrap().clone();
    let ids: Vec<&String> = seen
        .iter()
        .map(|(h, _)| &h["x-allhands-delivery"])
        .collect();
    assert!(
        ids.windows(2).all(|w| w[0] == w[1]),
        "every attempt carries the same delivery id: {ids:?}"
    );
    let (headers, body) = seen.last().unwrap();
    let expected = allhands::channels::api::sign(&secret, &headers["x-allhands-timestamp"], body);
    assert_eq!(
        headers["x-allhands-signature"], expected,
        "the webhook is signed over its exact body"
    );
    let payload: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(payload["event"], "message.created");
    assert_eq!(
        payload["message"]["text"],
        "Refunded today, 3-5 days to arrive."
    );
    assert_eq!(payload["customer"]["external_id"], "app-user-7");

    // A permanent refusal goes to the dead-letter list at once.
    hook.status.store(400, Ordering::SeqCst);
    let second = admin
        .create(
            &format!("/api/v1/conversations/{conversation}/messages"),
            json!({ "text": "Anything else?" }),
        )
        .await;
    let second = second["id"].as_u64().unwrap();
    let dead = wait_for("a dead letter", async || {
        let list = admin.json("/api/v1/dead-letters").await;
        list["items"].as_array().unwrap().first().cloned()
    })
    .await;
    assert!(dead["reason"].as_str().unwrap().contains("400"), "{dead}");
    assert_eq!(
        delivery(&admin, conversation, second).await["state"],
        "failed"
    );
    hook.status.store(200, Ordering::SeqCst);
    let retried = admin
        .post(
            &format!("/api/v1/dead-letters/{}/retry", dead["item"]["id"]),
            json!({}),
        )
        .await;
    assert_eq!(retried.status(), 200);
    wait_for("the retried delivery", async || {
        (delivery(&admin, conversation, second).await["state"] == "sent").then_some(())
    })
    .await;
    assert_eq!(
        admin.json("/api/v1/dead-letters").await["items"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let audit = admin.json("/api/v1/audit?action=delivery.retried").await;
    assert_eq!(audit["items"].as_array().unwrap().len(), 1);
}
