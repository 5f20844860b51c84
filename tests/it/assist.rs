//! Assist through the real server: sensitive-word dictionaries applied to replies (refused,
//! confirmed) and to customers' messages (flagged to supervisors), an angry customer raising
//! the conversation's urgency with an alert over the WebSocket, and a rude reply reported.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::*;

async fn api_channel(admin: &Session) -> (u64, String) {
    let created = admin
        .create(
            "/api/v1/channels",
            json!({ "kind": "api", "name": "App", "settings": { "webhook_url": "http://127.0.0.1:9/hook" } }),
        )
        .await;
    (
        created["channel"]["id"].as_u64().unwrap(),
        created["signing_secret"].as_str().unwrap().to_string(),
    )
}

async fn customer_says(server: &TestServer, channel: (u64, &str), key: &str, text: &str) -> Value {
    let body = json!({
        "type": "message",
        "message_id": key,
        "customer": { "external_id": "user-7", "name": "王女士" },
        "text": text,
    });
    let response = post_signed(server, channel.0, channel.1, key, &body).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// The next frame of `kind` on a console socket, skipping others.
async fn next_of(socket: &mut Socket, frame_type: &str, kind: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let event = next_event(socket, left)
            .await
            .unwrap_or_else(|| panic!("no {frame_type} {kind} frame"));
        if event["type"] == frame_type && event["kind"] == kind {
            return event;
        }
    }
}

async fn dictionary(admin: &Session) {
    admin
        .create(
            "/api/v1/assist/dictionaries",
            json!({
                "name": "客服用语",
                "words": [
                    { "word": "傻逼", "category": "abuse", "severity": "block" },
                    { "word": "保证退款", "category": "promise", "severity": "warn" },
                    { "word": "guaranteed refund", "category": "promise", "severity": "warn" },
                    { "word": "媒体曝光", "category": "escalation", "severity": "flag" },
                ],
            }),
        )
        .await;
}

#[tokio::test]
async fn replies_with_sensitive_words_are_refused_or_confirmed_and_the_box_can_highlight_them() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    dictionary(&admin).await;
    let (channel, secret) = api_channel(&admin).await;
    let ingested = customer_says(
        &server,
        (channel, &secret),
        "m1",
        "你好，请问退款多久到账？",
    )
    .await;
    let conversation = ingested["conversation_id"].as_u64().unwrap();
    let path = format!("/api/v1/conversations/{conversation}/messages");

    // Blocked, even disguised with full-width letters and spaces: refused, naming the word.
    let response = admin
        .post(&path, json!({ "text": "你这个 傻　逼 问题" }))
        .await;
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "sensitive_word_blocked");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("傻　逼"),
        "{body}"
    );
    assert_eq!(body["error"]["details"]["matches"][0]["word"], "傻逼");
    // Nothing was stored.
    let detail = admin
        .json(&format!("/api/v1/conversations/{conversation}"))
        .await;
    assert_eq!(detail["messages"].as_array().unwrap().len(), 1, "{detail}");

    // Warned: refused until confirmed, then sent with the word recorded.
    let text = "我们保证退款，请放心";
    let message = expect_error(
        admin.post(&path, json!({ "text": text })).await,
        422,
        "sensitive_word_confirm",
    )
    .await;
    assert!(message.contains("保证退款"), "{message}");
    let sent = admin
        .create(&path, json!({ "text": text, "confirm_sensitive": true }))
        .await;
    assert_eq!(sent["sensitive"][0]["word"], "保证退款");
    assert_eq!(sent["sensitive"][0]["severity"], "warn");

    // The reply box's check: positions in UTF-16 units for highlighting.
    let check = admin
        .create(
            "/api/v1/assist/check",
            json!({ "text": "😀 A guaranteed  refund and 傻逼" }),
        )
        .await;
    assert_eq!(check["verdict"], "block");
    let matches = check["matches"].as_array().unwrap();
    assert_eq!(matches.len(), 2, "{check}");
    assert_eq!(
        (matches[0]["start"].as_u64(), matches[0]["end"].as_u64()),
        (Some(5), Some(23))
    );
    assert_eq!(matches[1]["text"], "傻逼");
    let calm = admin
        .create(
            "/api/v1/assist/check",
            json!({ "text": "您好，已为您处理" }),
        )
        .await;
    assert_eq!(calm["verdict"], "ok");

    // Only assist managers see and change dictionaries.
    let agent =
        crate::matrix::employee_with_role(&server, &admin, "agent1", "specialist_agent").await;
    expect_error(
        agent.get("/api/v1/assist/dictionaries").await,
        403,
        "forbidden",
    )
    .await;
    expect_error(
        admin
            .post(
                "/api/v1/assist/dictionaries",
                json!({ "name": "x", "words": [{ "word": " ", "severity": "block" }] }),
            )
            .await,
        400,
        "invalid_field",
    )
    .await;
    expect_error(
        admin
            .post(
                "/api/v1/assist/dictionaries",
                json!({ "name": "x", "words": [{ "word": "a", "severity": "loud" }] }),
            )
            .await,
        400,
        "invalid_field",
    )
    .await;
}

#[tokio::test]
async fn an_angry_customer_raises_urgency_and_alerts_the_supervisor_live() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    dictionary(&admin).await;
    let (channel, secret) = api_channel(&admin).await;
    let cookie = session_cookie(&server, "admin", NEW_ADMIN_PASSWORD).await;
    let mut socket = console_socket(&server, &cookie, &server.base)
        .await
        .unwrap();

    let first = customer_says(&server, (channel, &secret), "a1", "请问你们周末发货吗？").await;
    let conversation = first["conversation_id"].as_u64().unwrap();
    let detail = admin
        .json(&format!("/api/v1/conversations/{conversation}"))
        .await;
    assert_eq!(detail["conversation"]["priority"], "normal");
    assert_eq!(detail["messages"][0]["emotion"], "calm");

    customer_says(
        &server,
        (channel, &secret),
        "a2",
        "都三天了还没发货！！你们这什么垃圾服务，再不处理我就投诉到消协，还要找媒体曝光！",
    )
    .await;
    let alert = next_of(&mut socket, "assist.alert", "angry_customer").await;
    assert_eq!(alert["conversation_id"], conversation);
    let flagged = next_of(&mut socket, "assist.alert", "sensitive_incoming").await;
    assert_eq!(flagged["details"]["matches"][0]["word"], "媒体曝光");
    let detail = admin
        .json(&format!("/api/v1/conversations/{conversation}"))
        .await;
    assert_eq!(detail["conversation"]["priority"], "high", "{detail}");
    assert_eq!(detail["conversation"]["emotion"]["emotion"], "angry");
    let angry = &detail["messages"].as_array().unwrap()[1];
    assert_eq!(angry["emotion"], "angry");
    // The flag is kept on the message for those who were not connected.
    let mut kept = Value::Null;
    for _ in 0..50 {
        let detail = admin
            .json(&format!("/api/v1/conversations/{conversation}"))
            .await;
        kept = detail["messages"][1]["sensitive"].clone();
        if kept.is_array() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(kept[0]["word"], "媒体曝光", "{kept}");

    // Still angry: no second alert for the next angry message.
    customer_says(&server, (channel, &secret), "a3", "人呢？？？回个话啊！！").await;
    let quiet = next_event(&mut socket, Duration::from_millis(800)).await;
    assert!(
        quiet.as_ref().is_none_or(|e| e["kind"] != "angry_customer"),
        "{quiet:?}"
    );

    // An English customer too.
    let en = customer_says(
        &server,
        (channel, &secret),
        "b1",
        "This is RIDICULOUS. Third time I ask and NOBODY answers. I want my money back NOW!!",
    )
    .await;
    let _ = en;
}

#[tokio::test]
async fn a_rude_reply_is_reported_to_the_supervisor() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let (channel, secret) = api_channel(&admin).await;
    let ingested = customer_says(&server, (channel, &secret), "r1", "门锁怎么设置指纹？").await;
    let conversation = ingested["conversation_id"].as_u64().unwrap();
    let cookie = session_cookie(&server, "admin", NEW_ADMIN_PASSWORD).await;
    let mut socket = console_socket(&server, &cookie, &server.base)
        .await
        .unwrap();
    let sent = admin
        .create(
            &format!("/api/v1/conversations/{conversation}/messages"),
            json!({ "text": "你自己不会看说明书吗？跟你说了多少遍了，爱用不用" }),
        )
        .await;
    assert_eq!(sent["rude"]["rude"], true, "{sent}");
    let alert = next_of(&mut socket, "assist.alert", "rude_reply").await;
    assert_eq!(alert["message_id"], sent["id"]);
    let hint = next_of(&mut socket, "assist.hint", "rude_reply").await;
    assert_eq!(hint["conversation_id"], conversation);
    let polite = admin
        .create(
            &format!("/api/v1/conversations/{conversation}/messages"),
            json!({ "text": "您好，指纹设置在 App 的「门锁」→「用户管理」里，按提示录入即可。" }),
        )
        .await;
    assert!(polite["rude"].is_null(), "{polite}");
}

#[tokio::test]
async fn suggestions_offer_articles_and_past_replies_and_learn_from_what_is_inserted() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let refunds = json!({
        "title": "退款到账时间",
        "body": "## 到账时间\n退款审核通过后，款项会在 3 到 5 个工作日内原路退回到您的支付账户。\n\n## 查询\n在「我的订单」里可以查看退款进度。",
    });
    let article_id = admin.publish_article(refunds).await;
    let (channel, secret) = api_channel(&admin).await;

    // A conversation answered and resolved: its reply becomes a suggestion.
    let first = customer_says(&server, (channel, &secret), "s1", "我的退款多久能到账？").await;
    let first_id = first["conversation_id"].as_u64().unwrap();
    admin
        .create(
            &format!("/api/v1/conversations/{first_id}/messages"),
            json!({ "text": "您好，退款已经审核通过，会在三个工作日内原路退回，请留意银行卡到账短信。" }),
        )
        .await;
    admin
        .create(
            &format!("/api/v1/conversations/{first_id}/status"),
            json!({ "status": "resolved" }),
        )
        .await;

    let body = json!({
        "type": "message",
        "message_id": "s2",
        "customer": { "external_id": "user-8", "name": "李先生" },
        "text": "请问退款什么时候能到账",
    });
    let second: Value = post_signed(&server, channel, &secret, "s2", &body)
        .await
        .json()
        .await
        .unwrap();
    let second_id = second["conversation_id"].as_u64().unwrap();
    let path = format!("/api/v1/conversations/{second_id}/suggestions");
    let answer = admin.json(&path).await;
    assert_eq!(answer["question"], "请问退款什么时候能到账");
    let suggestions = answer["suggestions"].as_array().unwrap();
    let kinds: Vec<&str> = suggestions
        .iter()
        .filter_map(|s| s["kind"].as_str())
        .collect();
    assert!(
        kinds.contains(&"article") && kinds.contains(&"reply"),
        "{answer}"
    );
    let article_key = format!("article:{article_id}");
    let article_suggestion = suggestions
        .iter()
        .find(|s| s["key"] == article_key.as_str())
        .unwrap();
    assert!(
        article_suggestion["text"]
            .as_str()
            .unwrap()
            .contains("原路退回"),
        "{answer}"
    );
    let reply = suggestions.iter().find(|s| s["kind"] == "reply").unwrap();
    assert!(reply["text"].as_str().unwrap().contains("银行卡到账短信"));

    // As the employee types, what they are writing towards comes first.
    let typed = admin
        .json(&format!(
            "{path}?draft=%E7%95%99%E6%84%8F%E9%93%B6%E8%A1%8C%E5%8D%A1%E7%9F%AD%E4%BF%A1"
        ))
        .await;
    assert_eq!(typed["suggestions"][0]["kind"], "reply", "{typed}");

    // Inserting the article teaches the index the customer's question.
    let response = admin
        .post(
            &format!("{path}/feedback"),
            json!({ "shown": [article_key, reply["key"]], "inserted": article_key, "edited": false }),
        )
        .await;
    assert_eq!(response.status(), 204);
    let detail = admin
        .json(&format!("/api/v1/knowledge/articles/{article_id}"))
        .await;
    assert_eq!(detail["learned_questions"], 1, "{detail}");
    expect_error(
        admin
            .post(&format!("{path}/feedback"), json!({ "shown": ["bogus"] }))
            .await,
        400,
        "invalid_field",
    )
    .await;
    expect_error(
        admin.get("/api/v1/conversations/999999/suggestions").await,
        404,
        "not_found",
    )
    .await;
}
