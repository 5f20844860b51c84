//! Reply drafts through the organisation's own model server, against a stub OpenAI-compatible
//! server on 127.0.0.1 that records what it was sent: the prompt carries the article's passage
//! and the customer's question with their e-mail address masked, the draft comes back with its
//! citation; polish sends the employee's text; a server too slow gives `llm_unavailable`, garbage
//! gives `llm_bad_response`, repeated failures open the circuit (refused without a request);
//! the audit log has sizes and ids, not the text; with the connector off, `llm_disabled`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::*;

#[derive(Clone)]
pub enum Behaviour {
    /// Answer chat completions with this text.
    Answer(String),
    /// Wait this long before answering.
    Sleep(Duration),
    /// Answer 200 with something that is not a chat completion.
    Garbage,
}

#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
    pub body: String,
}

/// A stub OpenAI-compatible server: `/v1/chat/completions` as `behaviour` says, `/v1/models`
/// listing `stub-model`.
pub struct StubLlm {
    pub base_url: String,
    pub behaviour: Arc<Mutex<Behaviour>>,
    pub requests: Arc<Mutex<Vec<Recorded>>>,
}

impl StubLlm {
    pub async fn start(behaviour: Behaviour) -> StubLlm {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let behaviour = Arc::new(Mutex::new(behaviour));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (b, r) = (behaviour.clone(), requests.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (b, r) = (b.clone(), r.clone());
                tokio::spawn(async move {
                    let _ = serve(stream, b, r).await;
                });
            }
        });
        StubLlm {
            base_url: format!("http://{address}/v1"),
            behaviour,
            requests,
        }
    }

    pub fn set(&self, behaviour: Behaviour) {
        *self.behaviour.lock().unwrap() = behaviour;
    }

    pub fn chats(&self) -> Vec<Recorded> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path.ends_with("/chat/completions"))
            .cloned()
            .collect()
    }
}

async fn serve(
    mut stream: tokio::net::TcpStream,
    behaviour: Arc<Mutex<Behaviour>>,
    requests: Arc<Mutex<Vec<Recorded>>>,
) -> std::io::Result<()> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buffer.extend_from_slice(&chunk[..n]);
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).to_string();
    let header = |name: &str| {
        head.lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
    };
    let length: usize = header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while buffer.len() < head_end + length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    let mut first = head.lines().next().unwrap_or("").split_whitespace();
    let method = first.next().unwrap_or("").to_string();
    let path = first.next().unwrap_or("").to_string();
    requests.lock().unwrap().push(Recorded {
        method,
        path: path.clone(),
        authorization: header("authorization"),
        body: String::from_utf8_lossy(&buffer[head_end..]).to_string(),
    });
    let behaviour = behaviour.lock().unwrap().clone();
    let (status, body) = if path.ends_with("/models") {
        (
            "200 OK",
            json!({ "object": "list", "data": [{ "id": "stub-model", "object": "model" }] })
                .to_string(),
        )
    } else {
        match behaviour {
            Behaviour::Answer(text) => (
                "200 OK",
                json!({
                    "id": "chatcmpl-1",
                    "object": "chat.completion",
                    "model": "stub-model",
                    "choices": [{ "index": 0, "message": { "role": "assistant", "content": text }, "finish_reason": "stop" }],
                })
                .to_string(),
            ),
            Behaviour::Sleep(wait) => {
                tokio::time::sleep(wait).await;
                ("200 OK", "{}".to_string())
            }
            Behaviour::Garbage => ("200 OK", "<html>not a model</html>".to_string()),
        }
    };
    let answer = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(answer.as_bytes()).await?;
    stream.shutdown().await
}

/// The settings that point a test server at the stub.
pub fn llm_env(stub: &StubLlm, key_file: &std::path::Path) -> Vec<(String, String)> {
    [
        ("ALLHANDS_ASSIST__LLM__ENABLED", "true".to_string()),
        ("ALLHANDS_ASSIST__LLM__BASE_URL", stub.base_url.clone()),
        ("ALLHANDS_ASSIST__LLM__MODEL", "stub-model".to_string()),
        ("ALLHANDS_ASSIST__LLM__TIMEOUT_MS", "1500".to_string()),
        ("ALLHANDS_ASSIST__LLM__BREAKER_FAILURES", "3".to_string()),
        (
            "ALLHANDS_ASSIST__LLM__BREAKER_COOLDOWN_SECS",
            "60".to_string(),
        ),
        (
            "ALLHANDS_ASSIST__LLM__API_KEY_FILE",
            key_file.display().to_string(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

pub const PASSAGE: &str = "退款审核通过后，款项会在 3 到 5 个工作日内原路退回到您的支付账户。";
pub const QUESTION: &str = "请问退款什么时候能到账？我的邮箱是 wang.fang@example.com";

/// A published refund article and a customer's question about it on an API channel; returns
/// (article id, conversation id).
pub async fn refund_question(server: &TestServer, admin: &Session) -> (u64, u64) {
    let refunds = json!({
        "title": "退款到账时间",
        "body": format!("## 到账时间\n{PASSAGE}\n\n## 查询\n在「我的订单」里可以查看退款进度。"),
    });
    let article_id = admin.publish_article(refunds).await;
    let channel = admin
        .create(
            "/api/v1/channels",
            json!({ "kind": "api", "name": "App", "settings": { "webhook_url": "http://127.0.0.1:9/hook" } }),
        )
        .await;
    let channel_id = channel["channel"]["id"].as_u64().unwrap();
    let secret = channel["signing_secret"].as_str().unwrap().to_string();
    let body = json!({
        "type": "message",
        "message_id": "m1",
        "customer": { "external_id": "user-7", "name": "王芳" },
        "text": QUESTION,
    });
    let response = post_signed(server, channel_id, &secret, "m1", &body).await;
    assert_eq!(response.status(), 200);
    let ingested: Value = response.json().await.unwrap();
    (article_id, ingested["conversation_id"].as_u64().unwrap())
}

#[tokio::test]
async fn drafts_are_grounded_in_articles_bounded_in_time_and_audited_without_their_text() {
    let stub = StubLlm::start(Behaviour::Answer(String::new())).await;
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("llm-key");
    std::fs::write(&key_file, "sk-test-key\n").unwrap();
    let env = llm_env(&stub, &key_file);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let server = TestServer::start_with(&env).await;
    let admin = server.admin().await;
    let (article_id, conversation) = refund_question(&server, &admin).await;
    let path = format!("/api/v1/conversations/{conversation}/draft");

    let status = admin.json("/api/v1/assist/llm").await;
    assert_eq!(status["enabled"], true, "{status}");
    assert_eq!(status["model"], "stub-model");
    assert_eq!(status["health"], "ok");
    assert_eq!(status["model_listed"], true);

    // A draft: the prompt carries the passage and the question, the address masked.
    stub.set(Behaviour::Answer(format!(
        "您好，退款审核通过后 3 到 5 个工作日内到账 [{article_id}]。"
    )));
    let draft = admin.create(&path, json!({ "mode": "draft" })).await;
    assert_eq!(
        draft["text"], "您好，退款审核通过后 3 到 5 个工作日内到账。",
        "{draft}"
    );
    assert_eq!(draft["articles"], json!([article_id]));
    assert_eq!(draft["sources"][0]["title"], "退款到账时间");
    assert_eq!(draft["model"], "stub-model");
    let sent = stub.chats();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].method, "POST");
    assert_eq!(sent[0].path, "/v1/chat/completions");
    assert_eq!(sent[0].authorization.as_deref(), Some("Bearer sk-test-key"));
    let request: Value = serde_json::from_str(&sent[0].body).unwrap();
    assert_eq!(request["model"], "stub-model");
    assert_eq!(request["stream"], false);
    let prompt = request["messages"].to_string();
    assert!(prompt.contains(PASSAGE), "{prompt}");
    assert!(
        prompt.contains(&format!("[{article_id}] 退款到账时间")),
        "{prompt}"
    );
    assert!(
        prompt.contains("请问退款什么时候能到账？我的邮箱是 [email]"),
        "{prompt}"
    );
    assert!(!prompt.contains("wang.fang@example.com"), "{prompt}");
    // Not sent: the conversation still has only the customer's message.
    let detail = admin
        .json(&format!("/api/v1/conversations/{conversation}"))
        .await;
    assert_eq!(detail["messages"].as_array().unwrap().len(), 1);

    // Polish sends the employee's text.
    stub.set(Behaviour::Answer(
        "您好，退款将在 3 到 5 个工作日内到账。".into(),
    ));
    let polished = admin
        .create(
            &path,
            json!({ "mode": "polish", "text": "退款 3-5 天到，有问题发 help@shop.example" }),
        )
        .await;
    assert_eq!(polished["text"], "您好，退款将在 3 到 5 个工作日内到账。");
    assert_eq!(polished["articles"], json!([]));
    let prompt = stub.chats()[1].body.clone();
    assert!(
        prompt.contains("退款 3-5 天到，有问题发 [email]"),
        "{prompt}"
    );
    expect_error(
        admin.post(&path, json!({ "mode": "polish" })).await,
        400,
        "invalid_field",
    )
    .await;
    expect_error(
        admin
            .post(
                "/api/v1/conversations/999999/draft",
                json!({ "mode": "draft" }),
            )
            .await,
        404,
        "not_found",
    )
    .await;

    // Too slow: refused at the deadline, not after the stub's answer.
    stub.set(Behaviour::Sleep(Duration::from_secs(5)));
    let started = std::time::Instant::now();
    expect_error(
        admin.post(&path, json!({ "mode": "draft" })).await,
        503,
        "llm_unavailable",
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );

    // Garbage twice more: the third failure in a row opens the circuit.
    stub.set(Behaviour::Garbage);
    for _ in 0..2 {
        expect_error(
            admin.post(&path, json!({ "mode": "draft" })).await,
            502,
            "llm_bad_response",
        )
        .await;
    }
    let before = stub.chats().len();
    let refused = admin.post(&path, json!({ "mode": "draft" })).await;
    assert!(refused.headers().get("retry-after").is_some());
    expect_error(refused, 503, "llm_unavailable").await;
    assert_eq!(stub.chats().len(), before, "an open circuit sends nothing");
    let status = admin.json("/api/v1/assist/llm").await;
    assert_eq!(status["health"], "circuit_open", "{status}");

    // Audited: what was sent, never the text.
    let audit = admin
        .json("/api/v1/audit?action=assist.llm_draft&limit=20")
        .await;
    let entries = audit["items"].as_array().unwrap();
    assert_eq!(entries.len(), 5, "{audit}");
    let first = entries.last().unwrap();
    assert_eq!(first["target"], format!("conversation:{conversation}"));
    assert_eq!(first["details"]["model"], "stub-model");
    assert_eq!(first["details"]["articles_given"], json!([article_id]));
    assert_eq!(first["details"]["outcome"], "ok");
    assert!(first["details"]["prompt_chars"].as_u64().unwrap() > 50);
    assert_eq!(entries[0]["details"]["outcome"], "llm_bad_response");
    assert_eq!(entries[0]["success"], false);
    let all = audit.to_string();
    assert!(
        !all.contains("退款审核") && !all.contains("example.com"),
        "{all}"
    );
}

#[tokio::test]
async fn with_the_connector_off_drafts_are_refused_and_the_console_is_told() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let (_, conversation) = refund_question(&server, &admin).await;
    let status = admin.json("/api/v1/assist/llm").await;
    assert_eq!(status["enabled"], false);
    assert_eq!(status["health"], "disabled");
    expect_error(
        admin
            .post(
                &format!("/api/v1/conversations/{conversation}/draft"),
                json!({ "mode": "draft" }),
            )
            .await,
        409,
        "llm_disabled",
    )
    .await;
}
