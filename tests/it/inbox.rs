//! The inbox through the API channel: signed, idempotent, deduplicated inbound messages that
//! become conversations employees see, answer and resolve.

use serde_json::{Value, json};

use crate::common::*;

struct ApiChannel {
    id: u64,
    secret: String,
}

impl ApiChannel {
    async fn create(admin: &Session) -> ApiChannel {
        let created = admin.create("/api/v1/channels", json!({ "kind": "api", "name": "Mobile app", "settings": { "webhook_url": "https://app.example/hook" } })).await;
        ApiChannel {
            id: created["channel"]["id"].as_u64().unwrap(),
            secret: created["signing_secret"].as_str().unwrap().to_string(),
        }
    }

    /// Posts a body signed now with this channel's secret.
    async fn post(
        &self,
        server: &TestServer,
        key: Option<&str>,
        body: &Value,
    ) -> reqwest::Response {
        let raw = serde_json::to_vec(body).unwrap();
        let timestamp = (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs())
        .to_string();
        self.post_raw(
            server,
            key,
            &raw,
            &timestamp,
            &allhands::channels::api::sign(&self.secret, &timestamp, &raw),
        )
        .await
    }

    async fn post_raw(
        &self,
        server: &TestServer,
        key: Option<&str>,
        raw: &[u8],
        timestamp: &str,
        signature: &str,
    ) -> reqwest::Response {
        let mut request = client()
            .post(server.url(&format!("/api/v1/channels/{}/inbound", self.id)))
            .header("content-type", "application/json")
            .header("X-AllHands-Timestamp", timestamp)
            .header("X-AllHands-Signature", signature)
            .body(raw.to_vec());
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        request.send().await.unwrap()
    }
}

fn customer_message(id: &str, customer: &str, text: &str) -> Value {
    json!({ "type": "message", "message_id": id, "customer": { "external_id": customer, "name": "陈静", "email": format!("{customer}@example.com") }, "subject": "退货 / return", "text": text })
}

#[tokio::test]
async fn signed_idempotent_inbound_messages_become_one_conversation() {
    let mut server = TestServer::start().await;
    let admin = server.admin().await;
    let channel = ApiChannel::create(&admin).await;

    let first = channel
        .post(
            &server,
            Some("key-1"),
            &customer_message("m-1", "user-42", "我想退货，订单 A-1001"),
        )
        .await;
    assert_eq!(first.status(), 200);
    assert_eq!(
        first.headers().get("idempotency-replayed").unwrap(),
        "false"
    );
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["duplicate"], json!(false));
    let conversation = first["conversation_id"].as_u64().unwrap();

    // A retry with the same key and body gets the first answer and stores nothing new.
    let retry = channel
        .post(
            &server,
            Some("key-1"),
            &customer_message("m-1", "user-42", "我想退货，订单 A-1001"),
        )
        .await;
    assert_eq!(retry.headers().get("idempotency-replayed").unwrap(), "true");
    assert_eq!(retry.json::<Value>().await.unwrap(), first);
    // The same key with another body is refused.
    expect_error(
        channel
            .post(
                &server,
                Some("key-1"),
                &customer_message("m-9", "user-42", "other"),
            )
            .await,
        409,
        "conflict",
    )
    .await;
    // The same channel message id under a new key is recognised as a duplicate.
    let redelivered: Value = channel
        .post(
            &server,
            Some("key-2"),
            &customer_message("m-1", "user-42", "我想退货，订单 A-1001"),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            redelivered["duplicate"].clone(),
            redelivered["message_id"].clone()
        ),
        (json!(true), first["message_id"].clone())
    );
    // The customer's next message joins the same conversation.
    let second: Value = channel
        .post(
            &server,
            Some("key-3"),
            &customer_message("m-2", "user-42", "还在吗?"),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(second["conversation_id"].as_u64().unwrap(), conversation);
    // Behaviour events land on the customer's timeline.
    let event = json!({ "type": "event", "event_id": "e-1", "customer": { "external_id": "user-42" }, "name": "order.placed", "properties": { "order": "A-1001", "total": 199.0 } });
    let event: Value = channel
        .post(&server, Some("key-4"), &event)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(event["customer_id"], first["customer_id"]);

    let detail = admin
        .json(&format!("/api/v1/conversations/{conversation}"))
        .await;
    let texts: Vec<&str> = detail["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["我想退货，订单 A-1001", "还在吗?"]);
    assert_eq!(detail["customer"]["emails"], json!(["user-42@example.com"]));
    assert_eq!(detail["conversation"]["channel_kind"], "api");
    let customer = admin
        .json(&format!("/api/v1/customers/{}", first["customer_id"]))
        .await;
    assert_eq!(customer["events"][0]["name"], "order.placed");

    // Nothing was lost or doubled across a restart, and the secret is not in the store in clear.
    server.stop();
    let store = std::fs::read(server.data_dir().join("allhands.redb")).unwrap();
    assert!(
        !store
            .windows(channel.secret.len())
            .any(|w| w == channel.secret.as_bytes()),
        "the signing secret is sealed at rest"
    );
    server.launch().await;
    let admin = Session::login(&server, "admin", NEW_ADMIN_PASSWORD)
        .await
        .unwrap();
    let detail = admin
        .json(&format!("/api/v1/conversations/{conversation}"))
        .await;
    assert_eq!(detail["messages"].as_array().unwrap().len(), 2);
    let replay: Value = channel
        .post(
            &server,
            Some("key-1"),
            &customer_message("m-1", "user-42", "我想退货，订单 A-1001"),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(replay, first, "idempotency survives a restart");
}

/// Messages acknowledged to the API channel are durable through the inbound log before the store
/// commits them durably: killed with SIGKILL (no shutdown, no checkpoint), the server replays the
/// log at its next start, and every acknowledged message is there once, under the ids it was
/// acknowledged with.
#[tokio::test]
async fn acknowledged_messages_survive_a_kill_through_the_inbound_log() {
    // No checkpoint during the test: the log alone keeps the messages.
    let mut server =
        TestServer::start_with(&[("ALLHANDS_STORAGE__CHECKPOINT_MS", "3600000")]).await;
    let admin = server.admin().await;
    let channel = std::sync::Arc::new(ApiChannel::create(&admin).await);
    let server_ref = &server;
    let posts = (0..24).map(|n| {
        let channel = channel.clone();
        async move {
            let body = customer_message(
                &format!("m-{n}"),
                &format!("user-{}", n % 5),
                &format!("message {n}"),
            );
            let response = channel
                .post(server_ref, Some(&format!("key-{n}")), &body)
                .await;
            assert_eq!(response.status(), 200);
            (n, response.json::<Value>().await.unwrap())
        }
    });
    let mut answers = futures_util::future::join_all(posts).await;
    // Routing answers new conversations with writes of its own, which commit durably and empty
    // the log; once it has, the customers' next messages are in the log alone.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let log = server.data_dir().join("inbound.log");
    let event = json!({ "type": "event", "event_id": "e-1", "customer": { "external_id": "user-1" }, "name": "order.placed", "properties": { "order": "A-7" } });
    let event_answer: Value = channel
        .post(&server, Some("key-event"), &event)
        .await
        .json()
        .await
        .unwrap();
    for n in 24..64 {
        let body = customer_message(
            &format!("m-{n}"),
            &format!("user-{}", n % 5),
            &format!("message {n}"),
        );
        let response = channel
            .post(&server, Some(&format!("key-{n}")), &body)
            .await;
        answers.push((n, response.json::<Value>().await.unwrap()));
        if n >= 27 && std::fs::metadata(&log).unwrap().len() > 0 {
            break;
        }
    }
    assert!(
        std::fs::metadata(&log).unwrap().len() > 0,
        "the messages wait in the inbound log"
    );

    server.child.as_mut().unwrap().kill().unwrap();
    server.child.take().unwrap().wait().unwrap();
    server.launch().await;
    assert!(
        server
            .log()
            .contains("replayed the writes its inbound log held"),
        "{}",
        server.log()
    );
    assert_eq!(
        std::fs::metadata(&log).unwrap().len(),
        0,
        "a replayed log is emptied"
    );

    let admin = Session::login(&server, "admin", NEW_ADMIN_PASSWORD)
        .await
        .unwrap();
    for (n, answer) in &answers {
        let detail = admin
            .json(&format!(
                "/api/v1/conversations/{}",
                answer["conversation_id"]
            ))
            .await;
        let found: Vec<(u64, &str)> = detail["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["id"].as_u64().unwrap(), m["text"].as_str().unwrap()))
            .collect();
        let text = format!("message {n}");
        assert_eq!(
            found.iter().filter(|(_, t)| *t == text).collect::<Vec<_>>(),
            [&(answer["message_id"].as_u64().unwrap(), text.as_str())],
            "message {n} is there once, under its acknowledged id"
        );
    }
    let customer = admin
        .json(&format!(
            "/api/v1/customers/{}",
            event_answer["customer_id"]
        ))
        .await;
    assert_eq!(customer["events"][0]["name"], "order.placed");
    // Retries after the restart get the first answers; new messages get new ids.
    let (n, first) = &answers[7];
    let retry: Value = channel
        .post(
            &server,
            Some(&format!("key-{n}")),
            &customer_message(
                &format!("m-{n}"),
                &format!("user-{}", n % 5),
                &format!("message {n}"),
            ),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(&retry, first);
    let newest = answers
        .iter()
        .map(|(_, a)| a["message_id"].as_u64().unwrap())
        .max()
        .unwrap();
    let next: Value = channel
        .post(
            &server,
            Some("key-next"),
            &customer_message("m-next", "user-9", "after the restart"),
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(next["message_id"].as_u64().unwrap() > newest);
}

#[tokio::test]
async fn forged_stale_unkeyed_and_malformed_inbound_requests_are_refused() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let channel = ApiChannel::create(&admin).await;
    let body = serde_json::to_vec(&customer_message("m-1", "u-1", "hello")).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let ts = now.to_string();
    let forged = allhands::channels::api::sign("not-the-secret", &ts, &body);
    expect_error(
        channel
            .post_raw(&server, Some("k"), &body, &ts, &forged)
            .await,
        401,
        "invalid_signature",
    )
    .await;
    let stale_ts = (now - 3600).to_string();
    let stale = allhands::channels::api::sign(&channel.secret, &stale_ts, &body);
    expect_error(
        channel
            .post_raw(&server, Some("k"), &body, &stale_ts, &stale)
            .await,
        401,
        "invalid_signature",
    )
    .await;
    let unsigned = client()
        .post(server.url(&format!("/api/v1/channels/{}/inbound", channel.id)))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    expect_error(unsigned, 401, "invalid_signature").await;
    expect_error(
        channel
            .post(&server, None, &customer_message("m-1", "u-1", "hello"))
            .await,
        400,
        "invalid_header",
    )
    .await;
    let garbage = b"{\"type\": \"message\", ";
    let signed = allhands::channels::api::sign(&channel.secret, &ts, garbage);
    expect_error(
        channel
            .post_raw(&server, Some("k2"), garbage, &ts, &signed)
            .await,
        400,
        "invalid_json",
    )
    .await;
    let message = expect_error(channel.post(&server, Some("k3"), &json!({ "type": "message", "message_id": "x", "customer": { "external_id": "u" } })).await, 400, "invalid_field").await;
    assert!(message.contains("text"), "{message}");
    expect_error(
        channel
            .post(&server, Some("k4"), &json!({ "type": "telegram" }))
            .await,
        400,
        "invalid_field",
    )
    .await;
    expect_error(
        channel
            .post(&server, Some("k5"), &customer_message("m-5", "u-1", "   "))
            .await,
        400,
        "invalid_field",
    )
    .await;
    let unknown = ApiChannel {
        id: 999,
        secret: channel.secret.clone(),
    };
    expect_error(
        unknown
            .post(&server, Some("k6"), &customer_message("m-6", "u-1", "hi"))
            .await,
        404,
        "not_found",
    )
    .await;
    // A disabled channel stops accepting.
    assert_eq!(
        admin
            .patch(
                &format!("/api/v1/channels/{}", channel.id),
                json!({ "enabled": false })
            )
            .await
            .status(),
        200
    );
    expect_error(
        channel
            .post(&server, Some("k7"), &customer_message("m-7", "u-1", "hi"))
            .await,
        404,
        "not_found",
    )
    .await;
    // Nothing of the refused requests was stored.
    let conversations = admin.json("/api/v1/conversations").await;
    assert_eq!(conversations["items"].as_array().unwrap().len(), 0);
    // Channel secrets are never listed, and a rotated secret replaces the old one.
    let listed = admin.json("/api/v1/channels").await;
    assert!(!listed.to_string().contains(&channel.secret));
    assert_eq!(
        admin
            .patch(
                &format!("/api/v1/channels/{}", channel.id),
                json!({ "enabled": true })
            )
            .await
            .status(),
        200
    );
    let rotated = admin
        .create(
            &format!("/api/v1/channels/{}/rotate-secret", channel.id),
            json!({}),
        )
        .await;
    let fresh = ApiChannel {
        id: channel.id,
        secret: rotated["signing_secret"].as_str().unwrap().to_string(),
    };
    expect_error(
        channel
            .post(&server, Some("k8"), &customer_message("m-8", "u-1", "hi"))
            .await,
        401,
        "invalid_signature",
    )
    .await;
    assert_eq!(
        fresh
            .post(&server, Some("k8"), &customer_message("m-8", "u-1", "hi"))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn employees_answer_resolve_and_see_only_what_they_may() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let channel = ApiChannel::create(&admin).await;
    let first: Value = channel
        .post(
            &server,
            Some("a"),
            &customer_message("m-1", "u-1", "My parcel has not arrived"),
        )
        .await
        .json()
        .await
        .unwrap();
    let other: Value = channel
        .post(
            &server,
            Some("b"),
            &customer_message("m-2", "u-2", "Invoice question"),
        )
        .await
        .json()
        .await
        .unwrap();
    let conversation = first["conversation_id"].as_u64().unwrap();

    let agent =
        crate::matrix::employee_with_role(&server, &admin, "part.timer", "employee_agent").await;
    let agent_id = agent.info["employee"]["id"].as_u64().unwrap();
    assert_eq!(
        agent.json("/api/v1/conversations").await["items"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    expect_error(
        agent
            .get(&format!("/api/v1/conversations/{conversation}"))
            .await,
        404,
        "not_found",
    )
    .await;

    let assigned = admin
        .post(
            &format!("/api/v1/conversations/{conversation}/assign"),
            json!({ "assignee_id": agent_id, "priority": "high" }),
        )
        .await;
    assert_eq!(assigned.status(), 200);
    let mine = agent.json("/api/v1/conversations?assignee=me").await;
    let ids: Vec<u64> = mine["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [conversation]);
    let reply = agent
        .post(
            &format!("/api/v1/conversations/{conversation}/messages"),
            json!({ "text": "It is on its way; tracking sent by mail." }),
        )
        .await;
    assert_eq!(reply.status(), 201);
    let reply: Value = reply.json().await.unwrap();
    assert_eq!(reply["direction"], "outbound");
    assert_eq!(reply["delivery"]["state"], "queued");
    agent
        .create(
            &format!("/api/v1/conversations/{conversation}/messages"),
            json!({ "text": "@supervisor customer is upset", "note": true }),
        )
        .await;
    let resolved = agent
        .post(
            &format!("/api/v1/conversations/{conversation}/status"),
            json!({ "status": "resolved" }),
        )
        .await;
    assert_eq!(resolved.status(), 200);
    let resolved: Value = resolved.json().await.unwrap();
    assert!(resolved["first_response_at"].is_number() && resolved["resolved_at"].is_number());
    assert_eq!(resolved["response_count"], json!(1));
    expect_error(
        agent
            .post(
                &format!("/api/v1/conversations/{conversation}/status"),
                json!({ "status": "pending" }),
            )
            .await,
        409,
        "conflict",
    )
    .await;
    expect_error(
        agent
            .post(
                &format!("/api/v1/conversations/{conversation}/status"),
                json!({ "status": "snoozed" }),
            )
            .await,
        400,
        "invalid_field",
    )
    .await;
    // An employee agent cannot reassign, nor touch a conversation they cannot see.
    expect_error(
        agent
            .post(
                &format!("/api/v1/conversations/{conversation}/assign"),
                json!({ "assignee_id": 1 }),
            )
            .await,
        403,
        "forbidden",
    )
    .await;
    let hidden = other["conversation_id"].as_u64().unwrap();
    expect_error(
        agent
            .post(
                &format!("/api/v1/conversations/{hidden}/messages"),
                json!({ "text": "hi" }),
            )
            .await,
        404,
        "not_found",
    )
    .await;

    // The customer writes again: the resolved conversation reopens.
    let again: Value = channel
        .post(
            &server,
            Some("c"),
            &customer_message("m-3", "u-1", "Still nothing!"),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["conversation_id"].as_u64().unwrap(), conversation);
    let detail = admin
        .json(&format!("/api/v1/conversations/{conversation}"))
        .await;
    assert_eq!(detail["conversation"]["status"], "open");
    assert_eq!(detail["conversation"]["reopen_count"], json!(1));
    let directions: Vec<&str> = detail["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["direction"].as_str().unwrap())
        .collect();
    assert_eq!(
        directions,
        ["inbound", "system", "outbound", "note", "system", "inbound"]
    );
    // Closed is final: the next message starts a new conversation.
    admin
        .create(
            &format!("/api/v1/conversations/{conversation}/status"),
            json!({ "status": "closed" }),
        )
        .await;
    let fresh: Value = channel
        .post(
            &server,
            Some("d"),
            &customer_message("m-4", "u-1", "New question"),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_ne!(fresh["conversation_id"].as_u64().unwrap(), conversation);
    let fresh_detail = admin
        .json(&format!(
            "/api/v1/conversations/{}",
            fresh["conversation_id"]
        ))
        .await;
    assert_eq!(
        fresh_detail["history"][0]["id"].as_u64().unwrap(),
        conversation,
        "the customer's earlier conversation is in the history"
    );
    let open = admin.json("/api/v1/conversations?status=open").await;
    assert_eq!(open["items"].as_array().unwrap().len(), 2);
    let found = admin.json("/api/v1/customers?q=u-1@example").await;
    assert_eq!(found["items"].as_array().unwrap().len(), 1);
    // The same e-mail address from another external id on the same channel is not taken on
    // trust: it could be anyone typing someone else's address. It stays a separate customer
    // (an administrator can merge them).
    let same_channel = json!({ "type": "message", "message_id": "m-5", "customer": { "external_id": "u-1-new-app", "email": "U-1@example.com" }, "text": "from my new phone" });
    let separate: Value = channel
        .post(&server, Some("e"), &same_channel)
        .await
        .json()
        .await
        .unwrap();
    assert_ne!(separate["customer_id"], first["customer_id"]);
    // From another channel, the address links the profiles: one person, two channels.
    let other_channel = ApiChannel::create(&admin).await;
    let elsewhere = json!({ "type": "message", "message_id": "m-6", "customer": { "external_id": "desk-9", "email": "u-1@example.com" }, "text": "asking from the other app" });
    let joined: Value = other_channel
        .post(&server, Some("f"), &elsewhere)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(joined["customer_id"], first["customer_id"]);
}

#[tokio::test]
async fn merging_two_customers_keeps_both_histories_and_can_be_undone() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let channel = ApiChannel::create(&admin).await;
    let a: Value = channel
        .post(
            &server,
            Some("a1"),
            &customer_message("m-a", "u-a", "from the app"),
        )
        .await
        .json()
        .await
        .unwrap();
    let b: Value = channel
        .post(
            &server,
            Some("b1"),
            &customer_message("m-b", "u-b", "from the web shop"),
        )
        .await
        .json()
        .await
        .unwrap();
    let event = json!({ "type": "event", "event_id": "e-2", "customer": { "external_id": "u-b" }, "name": "page_view", "properties": { "path": "/pricing" } });
    channel.post(&server, Some("b2"), &event).await;
    let (a_id, b_id) = (
        a["customer_id"].as_u64().unwrap(),
        b["customer_id"].as_u64().unwrap(),
    );
    assert_ne!(a_id, b_id);
    admin
        .patch(
            &format!("/api/v1/customers/{a_id}"),
            json!({ "tags": ["vip"], "attributes": { "plan": "gold" } }),
        )
        .await;
    admin.patch(&format!("/api/v1/customers/{b_id}"), json!({ "tags": ["trial"], "company": "Acme", "attributes": { "plan": "free", "seats": 3 } })).await;

    let merge = admin
        .create(
            &format!("/api/v1/customers/{a_id}/merge"),
            json!({ "source_id": b_id }),
        )
        .await;
    let merged = admin.json(&format!("/api/v1/customers/{a_id}")).await;
    let customer = &merged["customer"];
    assert_eq!(
        customer["emails"],
        json!(["u-a@example.com", "u-b@example.com"])
    );
    assert_eq!(customer["tags"], json!(["vip", "trial"]));
    assert_eq!(
        customer["attributes"],
        json!({ "plan": "gold", "seats": 3 }),
        "the target's values win"
    );
    assert_eq!(customer["company"], "Acme");
    assert_eq!(merged["events"][0]["name"], "page_view");
    let moved = admin
        .json(&format!("/api/v1/conversations/{}", b["conversation_id"]))
        .await;
    assert_eq!(moved["customer"]["id"].as_u64(), Some(a_id));
    assert_eq!(
        moved["history"].as_array().unwrap().len(),
        1,
        "both histories are one now"
    );
    assert_eq!(
        admin.json(&format!("/api/v1/customers/{b_id}")).await["customer"]["merged_into"].as_u64(),
        Some(a_id)
    );
    let found = admin.json("/api/v1/customers?q=u-b@example").await;
    assert_eq!(
        found["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [a_id]
    );
    // The source's identity now leads to the merged customer.
    let later: Value = channel
        .post(
            &server,
            Some("b3"),
            &customer_message("m-b2", "u-b", "any news?"),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(later["customer_id"].as_u64(), Some(a_id));
    expect_error(
        admin
            .post(
                &format!("/api/v1/customers/{a_id}/merge"),
                json!({ "source_id": b_id }),
            )
            .await,
        409,
        "conflict",
    )
    .await;
    expect_error(
        admin
            .post(
                &format!("/api/v1/customers/{a_id}/merge"),
                json!({ "source_id": a_id }),
            )
            .await,
        400,
        "invalid_field",
    )
    .await;

    let undone = admin
        .create(
            &format!("/api/v1/customer-merges/{}/undo", merge["id"]),
            json!({}),
        )
        .await;
    assert!(undone["undone_at"].is_number());
    let a_after = admin.json(&format!("/api/v1/customers/{a_id}")).await;
    assert_eq!(a_after["customer"]["emails"], json!(["u-a@example.com"]));
    assert_eq!(a_after["customer"]["tags"], json!(["vip"]));
    assert_eq!(a_after["customer"]["attributes"], json!({ "plan": "gold" }));
    let b_after = admin.json(&format!("/api/v1/customers/{b_id}")).await;
    assert!(b_after["customer"]["merged_into"].is_null());
    assert_eq!(b_after["events"][0]["name"], "page_view");
    let back = admin
        .json(&format!("/api/v1/conversations/{}", b["conversation_id"]))
        .await;
    assert_eq!(back["customer"]["id"].as_u64(), Some(b_id));
    let again: Value = channel
        .post(
            &server,
            Some("b4"),
            &customer_message("m-b3", "u-b", "hello again"),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["customer_id"].as_u64(), Some(b_id));
    expect_error(
        admin
            .post(
                &format!("/api/v1/customer-merges/{}/undo", merge["id"]),
                json!({}),
            )
            .await,
        409,
        "conflict",
    )
    .await;
    let audit = admin.json("/api/v1/audit?action=customer.").await;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "customer.merge_undone",
            "customer.merged",
            "customer.updated",
            "customer.updated"
        ]
    );
}

#[tokio::test]
async fn department_and_assignment_limit_what_employees_see_and_touch() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let channel = ApiChannel::create(&admin).await;
    let sales = admin
        .create(
            "/api/v1/departments",
            json!({ "name": "Sales", "parent_id": 1 }),
        )
        .await["id"]
        .as_u64()
        .unwrap();
    let legal = admin
        .create(
            "/api/v1/departments",
            json!({ "name": "Legal", "parent_id": 1 }),
        )
        .await["id"]
        .as_u64()
        .unwrap();
    let rep = admin
        .create("/api/v1/employees", json!({ "username": "sales.rep", "display_name": "Rep", "department_id": sales, "password": EMPLOYEE_PASSWORD }))
        .await;
    admin.create("/api/v1/role-grants", json!({ "role_id": 3, "subject": { "kind": "employee", "employee_id": rep["employee"]["id"] } })).await;
    let rep = first_sign_in(&server, "sales.rep").await;
    let part_timer =
        crate::matrix::employee_with_role(&server, &admin, "rd.engineer", "employee_agent").await;

    let in_sales: Value = channel
        .post(
            &server,
            Some("s"),
            &customer_message("m-s", "buyer", "Quote for 50 seats?"),
        )
        .await
        .json()
        .await
        .unwrap();
    let in_legal: Value = channel
        .post(
            &server,
            Some("l"),
            &customer_message("m-l", "lawyer", "GDPR request"),
        )
        .await
        .json()
        .await
        .unwrap();
    let (sales_conv, legal_conv) = (
        in_sales["conversation_id"].as_u64().unwrap(),
        in_legal["conversation_id"].as_u64().unwrap(),
    );
    admin
        .create(
            &format!("/api/v1/conversations/{sales_conv}/assign"),
            json!({ "team_id": sales }),
        )
        .await;
    admin
        .create(
            &format!("/api/v1/conversations/{legal_conv}/assign"),
            json!({ "team_id": legal }),
        )
        .await;

    // A specialist sees their own department's conversations, not another's.
    let seen: Vec<u64> = rep.json("/api/v1/conversations").await["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_u64().unwrap())
        .collect();
    assert_eq!(seen, [sales_conv]);
    expect_error(
        rep.get(&format!("/api/v1/conversations/{legal_conv}"))
            .await,
        404,
        "not_found",
    )
    .await;
    expect_error(
        rep.post(
            &format!("/api/v1/conversations/{legal_conv}/messages"),
            json!({ "text": "hi" }),
        )
        .await,
        404,
        "not_found",
    )
    .await;
    assert_eq!(
        rep.post(
            &format!("/api/v1/conversations/{sales_conv}/messages"),
            json!({ "text": "Sending a quote." })
        )
        .await
        .status(),
        201
    );
    // Customers: only those of conversations one may see.
    let customers: Vec<u64> = rep.json("/api/v1/customers").await["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_u64().unwrap())
        .collect();
    assert_eq!(customers, [in_sales["customer_id"].as_u64().unwrap()]);
    expect_error(
        rep.get(&format!("/api/v1/customers/{}", in_legal["customer_id"]))
            .await,
        404,
        "not_found",
    )
    .await;
    expect_error(
        rep.patch(
            &format!("/api/v1/customers/{}", in_legal["customer_id"]),
            json!({ "tags": ["x"] }),
        )
        .await,
        404,
        "not_found",
    )
    .await;
    assert_eq!(
        rep.patch(
            &format!("/api/v1/customers/{}", in_sales["customer_id"]),
            json!({ "tags": ["hot lead"] })
        )
        .await
        .status(),
        200
    );
    let audit = admin.json("/api/v1/audit?action=customer.updated").await;
    assert_eq!(audit["items"][0]["actor"]["name"], "sales.rep");
    // A part-time responder sees nothing until something is assigned to them.
    assert_eq!(
        part_timer.json("/api/v1/customers").await["items"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        part_timer.json("/api/v1/conversations").await["items"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
}

#[tokio::test]
async fn a_snoozed_conversation_wakes_up_on_time_or_when_the_customer_writes() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let channel = ApiChannel::create(&admin).await;
    let first: Value = channel
        .post(
            &server,
            Some("1"),
            &customer_message("m-1", "u-1", "Call me tomorrow"),
        )
        .await
        .json()
        .await
        .unwrap();
    let second: Value = channel
        .post(
            &server,
            Some("2"),
            &customer_message("m-2", "u-2", "Later is fine"),
        )
        .await
        .json()
        .await
        .unwrap();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    for (conversation, until) in [(&first, now_ms + 1500), (&second, now_ms + 3_600_000)] {
        let snoozed = admin
            .post(
                &format!(
                    "/api/v1/conversations/{}/status",
                    conversation["conversation_id"]
                ),
                json!({ "status": "snoozed", "snoozed_until": until }),
            )
            .await;
        assert_eq!(snoozed.status(), 200);
    }
    let mut woke = false;
    for _ in 0..100 {
        let detail = admin
            .json(&format!(
                "/api/v1/conversations/{}",
                first["conversation_id"]
            ))
            .await;
        if detail["conversation"]["status"] == "open" {
            assert!(detail["conversation"]["snoozed_until"].is_null());
            assert_eq!(
                detail["messages"].as_array().unwrap().last().unwrap()["text"],
                "status: snoozed -> open"
            );
            woke = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(woke, "the snooze ended on time");
    // The other one sleeps on until its customer writes.
    let detail = admin
        .json(&format!(
            "/api/v1/conversations/{}",
            second["conversation_id"]
        ))
        .await;
    assert_eq!(detail["conversation"]["status"], "snoozed");
    channel
        .post(
            &server,
            Some("3"),
            &customer_message("m-3", "u-2", "Actually, now please"),
        )
        .await;
    let detail = admin
        .json(&format!(
            "/api/v1/conversations/{}",
            second["conversation_id"]
        ))
        .await;
    assert_eq!(detail["conversation"]["status"], "open");
    assert!(detail["conversation"]["snoozed_until"].is_null());
}

#[tokio::test]
async fn files_travel_with_messages_checked_by_their_content() {
    use base64::Engine;
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let channel = ApiChannel::create(&admin).await;
    const PNG: &[u8] = &[
        0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d, b'I', b'H', b'D', b'R', 1,
        2, 3,
    ];
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);

    // A customer sends a picture, claimed to be text: the content decides, the message may be
    // the file alone.
    let response = channel
        .post(
            &server,
            Some("file-1"),
            &json!({ "type": "message", "message_id": "m-file-1",
                     "customer": { "external_id": "u-1", "name": "Wang Fang" },
                     "attachments": [{ "filename": "../screenshot.txt", "content_type": "text/plain", "data": b64(PNG) }] }),
        )
        .await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    let answer: Value = response.json().await.unwrap();
    let conversation_id = answer["conversation_id"].as_u64().unwrap();
    let detail = admin
        .json(&format!("/api/v1/conversations/{conversation_id}"))
        .await;
    let file = &detail["messages"][0]["attachments"][0];
    assert_eq!(file["content_type"], "image/png");
    assert_eq!(file["filename"], "screenshot.txt");
    let download = admin
        .get(&format!("/api/v1/attachments/{}", file["id"]))
        .await;
    assert_eq!(download.status(), 200);
    assert_eq!(download.headers()["content-type"], "image/png");
    assert!(
        download.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("sandbox")
    );
    assert_eq!(download.bytes().await.unwrap().as_ref(), PNG);

    // An executable is refused whatever it claims to be; bad base64 names the field.
    let mut elf = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0".to_vec();
    elf.extend_from_slice(&[0; 48]);
    let refused = channel
        .post(
            &server,
            Some("file-2"),
            &json!({ "type": "message", "message_id": "m-file-2", "customer": { "external_id": "u-1" },
                     "attachments": [{ "filename": "cat.png", "content_type": "image/png", "data": b64(&elf) }] }),
        )
        .await;
    expect_error(refused, 415, "unsupported_type").await;
    let refused = channel
        .post(
            &server,
            Some("file-3"),
            &json!({ "type": "message", "message_id": "m-file-3", "customer": { "external_id": "u-1" },
                     "attachments": [{ "filename": "a.txt", "data": "***" }] }),
        )
        .await;
    let message = expect_error(refused, 400, "invalid_field").await;
    assert!(message.contains("attachments[0].data"), "{message}");

    // An employee uploads a file and sends it with a reply; nobody else can send that upload.
    let upload = admin
        .client
        .post(server.url("/api/v1/attachments?filename=%E6%8A%A5%E4%BB%B7.csv"))
        .header("X-CSRF-Token", &admin.csrf)
        .header("content-type", "text/csv")
        .body("item,price\nA,10\n")
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status(), 201);
    let uploaded: Value = upload.json().await.unwrap();
    assert_eq!(uploaded["filename"], "报价.csv");
    assert_eq!(uploaded["content_type"], "text/csv");
    let reply = admin
        .create(
            &format!("/api/v1/conversations/{conversation_id}/messages"),
            json!({ "text": "", "attachments": [uploaded["id"]] }),
        )
        .await;
    assert_eq!(reply["attachments"][0]["id"], uploaded["id"]);
    let again = admin
        .post(
            &format!("/api/v1/conversations/{conversation_id}/messages"),
            json!({ "text": "again", "attachments": [uploaded["id"]] }),
        )
        .await;
    expect_error(again, 409, "conflict").await;
    let missing = admin
        .post(
            &format!("/api/v1/conversations/{conversation_id}/messages"),
            json!({ "text": "x", "attachments": [999999] }),
        )
        .await;
    expect_error(missing, 404, "not_found").await;

    // Too large: the limit is the configured one, announced before reading the body.
    let big = admin
        .client
        .post(server.url("/api/v1/attachments?filename=big.txt"))
        .header("X-CSRF-Token", &admin.csrf)
        .header("content-type", "text/plain")
        .body(vec![b'a'; 21 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    expect_error(big, 413, "payload_too_large").await;
}

#[tokio::test]
async fn a_mentioned_colleague_is_notified_and_may_see_the_conversation() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let channel = ApiChannel::create(&admin).await;
    let engineer =
        crate::matrix::employee_with_role(&server, &admin, "rd.engineer", "employee_agent").await;
    let engineer_id = engineer.info["employee"]["id"].as_u64().unwrap();
    let answer: Value = channel
        .post(
            &server,
            Some("k-1"),
            &customer_message("m-1", "buyer", "The export crashes on large files"),
        )
        .await
        .json()
        .await
        .unwrap();
    let conversation = answer["conversation_id"].as_u64().unwrap();
    // Not theirs, not their department's: invisible before the mention.
    expect_error(
        engineer
            .get(&format!("/api/v1/conversations/{conversation}"))
            .await,
        404,
        "not_found",
    )
    .await;

    // A mention in a reply to the customer is refused; in a note it brings the colleague in.
    let refused = admin
        .post(
            &format!("/api/v1/conversations/{conversation}/messages"),
            json!({ "text": "hi", "mentions": [engineer_id] }),
        )
        .await;
    expect_error(refused, 400, "invalid_field").await;
    let note = admin
        .create(
            &format!("/api/v1/conversations/{conversation}/messages"),
            json!({ "text": "@rd.engineer could you look at this crash? cc @nobody.here", "note": true }),
        )
        .await;
    assert_eq!(note["mentions"], json!([engineer_id]));

    let notifications = engineer.json("/api/v1/notifications").await;
    assert_eq!(notifications["unread"], 1);
    let notification = &notifications["items"][0];
    assert_eq!(notification["conversation_id"], conversation);
    assert_eq!(notification["kind"], "mention");
    assert!(notification["excerpt"].as_str().unwrap().contains("crash"));
    let detail = engineer
        .json(&format!("/api/v1/conversations/{conversation}"))
        .await;
    assert_eq!(detail["conversation"]["participants"], json!([engineer_id]));
    let mentioned = engineer.json("/api/v1/conversations?mentioned=true").await;
    assert_eq!(mentioned["items"][0]["id"], conversation);
    // They can answer in the conversation they were brought into.
    engineer
        .create(
            &format!("/api/v1/conversations/{conversation}/messages"),
            json!({ "text": "Fixed in 2.3.1", "note": true }),
        )
        .await;

    let read = engineer
        .post(
            &format!("/api/v1/notifications/{}/read", notification["id"]),
            json!({}),
        )
        .await;
    assert_eq!(read.status(), 204);
    assert_eq!(engineer.json("/api/v1/notifications").await["unread"], 0);
    // Someone else's notification is not there to mark.
    expect_error(
        admin
            .post(
                &format!("/api/v1/notifications/{}/read", notification["id"]),
                json!({}),
            )
            .await,
        404,
        "not_found",
    )
    .await;
    // An id the picker could not have offered is an error, not silence.
    let unknown = admin
        .post(
            &format!("/api/v1/conversations/{conversation}/messages"),
            json!({ "text": "see", "note": true, "mentions": [424242] }),
        )
        .await;
    expect_error(unknown, 400, "invalid_field").await;
}

#[tokio::test]
async fn an_employee_opens_a_conversation_for_a_caller() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let channel = ApiChannel::create(&admin).await;
    let agent =
        crate::matrix::employee_with_role(&server, &admin, "phone.agent", "employee_agent").await;
    // Agents may not configure channels, but see which ones they can open a conversation on.
    let choices = agent.json("/api/v1/reply-channels").await;
    assert_eq!(
        choices["items"],
        json!([{ "id": channel.id, "kind": "api", "name": "Mobile app" }])
    );
    let opened = agent
        .create(
            "/api/v1/conversations",
            json!({ "channel_id": channel.id, "subject": "Phone: invoice copy",
                    "customer": { "name": "Sun Li", "email": "Sun.Li@example.com" },
                    "text": "Caller asks for a copy of invoice 2026-118." }),
        )
        .await;
    let id = opened["id"].as_u64().unwrap();
    assert_eq!(opened["assignee_id"], agent.info["employee"]["id"]);
    assert_eq!(opened["reply_to"]["kind"], "email");
    let detail = agent.json(&format!("/api/v1/conversations/{id}")).await;
    assert_eq!(detail["customer"]["name"], "Sun Li");
    assert_eq!(detail["messages"][0]["direction"], "inbound");
    // The same address later is the same customer.
    let again = agent
        .create(
            "/api/v1/conversations",
            json!({ "channel_id": channel.id, "customer": { "email": "sun.li@example.com" }, "text": "Second call" }),
        )
        .await;
    assert_eq!(again["customer_id"], opened["customer_id"]);
    assert_ne!(again["id"], opened["id"]);

    for (body, code, status) in [
        (
            json!({ "channel_id": channel.id, "text": "who?" }),
            "invalid_field",
            400,
        ),
        (
            json!({ "channel_id": 999, "customer": { "email": "a@b.c" }, "text": "x" }),
            "invalid_field",
            400,
        ),
        (
            json!({ "channel_id": channel.id, "customer_id": 999, "text": "x" }),
            "not_found",
            404,
        ),
        (
            json!({ "channel_id": channel.id, "customer": { "email": "a@b.c" }, "text": " " }),
            "invalid_field",
            400,
        ),
    ] {
        expect_error(
            agent.post("/api/v1/conversations", body).await,
            status,
            code,
        )
        .await;
    }
}

#[tokio::test]
async fn tags_label_conversations_and_filter_the_inbox() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let channel = ApiChannel::create(&admin).await;
    let answer: Value = channel
        .post(
            &server,
            Some("t-1"),
            &customer_message("m-t1", "buyer", "Refund please"),
        )
        .await
        .json()
        .await
        .unwrap();
    let conversation = answer["conversation_id"].as_u64().unwrap();
    let tagged = admin
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/conversations/{conversation}/tags"),
            Some(json!({ "tags": [" refund ", "VIP", "Refund", "退款"] })),
        )
        .await;
    assert_eq!(tagged.status(), 200);
    let tagged: Value = tagged.json().await.unwrap();
    assert_eq!(tagged["tags"], json!(["refund", "VIP", "退款"]));
    let listed = admin.json("/api/v1/conversations?tag=vip").await;
    assert_eq!(listed["items"][0]["id"], conversation);
    assert!(
        admin.json("/api/v1/conversations?tag=shipping").await["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let detail = admin
        .json(&format!("/api/v1/conversations/{conversation}"))
        .await;
    let last = detail["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["direction"], "system");
    assert_eq!(last["text"], "tags: refund, VIP, 退款");
    for bad in [
        json!({ "tags": [""] }),
        json!({ "tags": ["x\u{7}"] }),
        json!({ "tags": ["a".repeat(51)] }),
    ] {
        let refused = admin
            .send(
                reqwest::Method::PUT,
                &format!("/api/v1/conversations/{conversation}/tags"),
                Some(bad),
            )
            .await;
        expect_error(refused, 400, "invalid_field").await;
    }
}

#[tokio::test]
async fn the_inbox_lists_the_latest_activity_first_and_pages_through_it() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let channel = ApiChannel::create(&admin).await;
    let mut ids = Vec::new();
    for (n, customer) in ["ann", "bob", "cai"].iter().enumerate() {
        let answer: Value = channel
            .post(
                &server,
                Some(&format!("a-{n}")),
                &customer_message(&format!("m-a{n}"), customer, "Hello"),
            )
            .await
            .json()
            .await
            .unwrap();
        ids.push(answer["conversation_id"].as_u64().unwrap());
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    // Ann writes again: her conversation, the oldest, has the latest activity now.
    channel
        .post(
            &server,
            Some("a-again"),
            &customer_message("m-again", "ann", "Anyone there?"),
        )
        .await;
    let order = |page: &Value| -> Vec<u64> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_u64().unwrap())
            .collect()
    };
    let created = admin.json("/api/v1/conversations").await;
    assert_eq!(order(&created), [ids[2], ids[1], ids[0]]);

    let first = admin
        .json("/api/v1/conversations?sort=last_activity&limit=2")
        .await;
    assert_eq!(order(&first), [ids[0], ids[2]]);
    let cursor = first["next_before"].as_str().unwrap().to_string();
    let second = admin
        .json(&format!(
            "/api/v1/conversations?sort=last_activity&limit=2&before={cursor}"
        ))
        .await;
    assert_eq!(order(&second), [ids[1]]);
    assert!(second["next_before"].is_null());

    let bad = admin
        .send(
            reqwest::Method::GET,
            "/api/v1/conversations?sort=last_activity&before=yesterday",
            None,
        )
        .await;
    assert_eq!(bad.status(), 400);
    let bad: Value = bad.json().await.unwrap();
    assert_eq!(bad["error"]["code"], "invalid_query");
}
