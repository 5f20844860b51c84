//! The inbox in a real browser: a customer message posted through a signed API channel appears
//! in the console without a reload, the employee replies, writes a note, sets the priority, edits
//! the customer and resolves; the customer's next message reopens the conversation on screen.
//! Then the channels screen adds an API channel whose secret, shown once, signs a message.
//!
//! Needs Debian's `chromium` and `chromium-driver`. ALLHANDS_SCREENSHOT_DIR keeps screenshots of
//! the inbox, a conversation and the channels screen in English and Chinese.

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, ensure};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::browser_support::*;
use crate::common::*;

/// Under the console's 10-second fallback refresh, so what arrives within this came live, with
/// room for a loaded CI machine.
const LIVE: Duration = Duration::from_secs(9);
const CUSTOMER_NAME: &str = "陈静 Chen Jing";
const SUBJECT: &str = "Parcel not arrived / 包裹未到";

struct ApiChannel {
    id: u64,
    secret: String,
}

impl ApiChannel {
    async fn create(admin: &Session, name: &str, webhook_url: &str) -> ApiChannel {
        let created = admin
            .create(
                "/api/v1/channels",
                json!({ "kind": "api", "name": name, "settings": { "webhook_url": webhook_url } }),
            )
            .await;
        ApiChannel {
            id: created["channel"]["id"].as_u64().unwrap(),
            secret: created["signing_secret"].as_str().unwrap().to_string(),
        }
    }

    /// Posts `body` signed now with this channel's secret, as the customer's app would.
    async fn post(&self, server: &TestServer, key: &str, body: &Value) -> Result<Value> {
        let raw = serde_json::to_vec(body)?;
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs()
            .to_string();
        let response = client()
            .post(server.url(&format!("/api/v1/channels/{}/inbound", self.id)))
            .header("content-type", "application/json")
            .header("X-AllHands-Timestamp", &timestamp)
            .header(
                "X-AllHands-Signature",
                allhands::channels::api::sign(&self.secret, &timestamp, &raw),
            )
            .header("Idempotency-Key", key)
            .body(raw)
            .send()
            .await?;
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        ensure!(status == 200, "inbound post {body}: {status} {answer}");
        Ok(answer)
    }
}

/// The app's webhook: a local receiver that answers every delivery with the status the test sets.
struct Webhook {
    url: String,
    status: Arc<AtomicU16>,
}

async fn webhook(status: u16) -> Webhook {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let status = Arc::new(AtomicU16::new(status));
    let answer = status.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let answer = answer.clone();
            tokio::spawn(async move {
                // Read the whole request (headers, then Content-Length bytes) before answering.
                let mut data = Vec::new();
                let mut buf = [0u8; 8192];
                loop {
                    let n = stream.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    data.extend_from_slice(&buf[..n]);
                    if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
                        let length = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if data.len() >= end + 4 + length {
                            break;
                        }
                    }
                }
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
    Webhook { url, status }
}

fn customer_message(id: &str, text: &str) -> Value {
    json!({
        "type": "message",
        "message_id": id,
        "customer": { "external_id": "cust-7", "name": CUSTOMER_NAME, "email": "chen.jing@example.com" },
        "subject": SUBJECT,
        "text": text,
    })
}

fn row(conversation: u64) -> String {
    format!(r#"[data-testid="conversation-row"][data-id="{conversation}"]"#)
}

fn message(direction: &str) -> String {
    format!(r#"[data-testid="message"][data-direction="{direction}"]"#)
}

fn status_is(status: &str) -> String {
    format!(r#"[data-testid="current-status"][data-status="{status}"]"#)
}

#[tokio::test]
async fn inbox_shows_live_messages_and_handles_a_conversation() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    // The app refuses deliveries for now (410): the reply becomes a dead letter.
    let hook = webhook(410).await;
    let channel = ApiChannel::create(&admin, "Mobile app", &hook.url).await;
    run_in_browser(&server, "browser-inbox", async |page| {
        inbox_flow(page, &server, &admin, &channel, &hook).await
    })
    .await;
}

async fn inbox_flow(
    page: &Page,
    server: &TestServer,
    admin: &Session,
    channel: &ApiChannel,
    hook: &Webhook,
) -> Result<()> {
    page.sign_in(server, "admin", NEW_ADMIN_PASSWORD).await?;
    page.click(&tid("nav-inbox")).await?;
    page.click(&tid("inbox-view-all")).await?;
    page.find(&format!(
        r#"{}[aria-selected="true"]"#,
        tid("inbox-view-all")
    ))
    .await?;
    page.find(&format!("{}[data-loaded]", tid("inbox-list")))
        .await?;
    page.find(&tid("inbox-table")).await?;
    page.mark().await?;
    // The WebSocket is open before anything happens.
    page.find(&format!("{}.on", tid("live-status"))).await?;

    // A customer writes through the app; the conversation appears on its own.
    let posted_at = Instant::now();
    let first = channel
        .post(
            server,
            "k-1",
            &customer_message("m-1", "Hello, my parcel has not arrived. Order A-1001."),
        )
        .await?;
    let conversation = first["conversation_id"]
        .as_u64()
        .ok_or_else(|| anyhow!("no conversation id in {first}"))?;
    page.find_within(LIVE, &row(conversation)).await?;
    eprintln!(
        "browser_inbox: the new conversation showed after {:?}",
        posted_at.elapsed()
    );
    page.expect_same_document("the new conversation").await?;
    page.text_contains(&row(conversation), CUSTOMER_NAME)
        .await?;
    page.text_contains(&row(conversation), SUBJECT).await?;
    page.find(&format!(
        r#"{} [data-testid="conversation-status"][data-status="open"]"#,
        row(conversation)
    ))
    .await?;
    // Something the customer did lands on their timeline.
    channel
        .post(
            server,
            "k-event",
            &json!({ "type": "event", "event_id": "evt-1", "customer": { "external_id": "cust-7" }, "name": "order.placed", "properties": { "order": "A-1001", "total": 199.0 } }),
        )
        .await?;
    page.screenshot("inbox-01-list-en").await?;

    // Open it: the customer's message, profile and timeline.
    page.click(&format!(
        "{} {}",
        row(conversation),
        tid("conversation-link")
    ))
    .await?;
    page.text_contains(&message("inbound"), "my parcel has not arrived")
        .await?;
    page.text_contains(&tid("customer-name"), CUSTOMER_NAME)
        .await?;
    page.text_contains(&tid("customer-emails"), "chen.jing@example.com")
        .await?;
    page.find(r#"[data-testid="customer-event"][data-name="order.placed"]"#)
        .await?;
    page.find(&status_is("open")).await?;

    // A reply to the customer and an internal note.
    let reply = "Sorry about that! I have asked the courier; you will hear from us today.";
    page.fill(&tid("reply-text"), reply).await?;
    page.click(&tid("reply-send")).await?;
    page.text_contains(&message("outbound"), "asked the courier")
        .await?;
    // The app's webhook refuses it; the console hears of it live.
    let delivery = format!("{} {}", message("outbound"), tid("message-delivery"));
    page.text_contains(&delivery, "Not delivered").await?;
    page.text_contains(&delivery, "410").await?;
    page.click(&tid("reply-note")).await?;
    page.text_contains(&tid("reply-send"), "Add note").await?;
    page.fill(&tid("reply-text"), "Courier ticket CR-889 opened.")
        .await?;
    page.click(&tid("reply-send")).await?;
    page.text_contains(&message("note"), "CR-889").await?;
    // Whoever answers an unassigned conversation takes it.
    let admin_id = admin.info["employee"]["id"].to_string();
    eventually(
        "the conversation to be assigned to the administrator",
        || async { Ok((page.value_of(&tid("assign-employee")).await? == admin_id).then_some(())) },
    )
    .await?;

    // Priority, and the customer's profile.
    page.select(&tid("assign-priority"), "high").await?;
    page.text_contains(&message("system"), "Priority set to High")
        .await?;
    page.click(&tid("customer-edit")).await?;
    page.fill(&tid("customer-edit-company"), "Example Trading Ltd")
        .await?;
    page.fill(&tid("customer-edit-tags"), "vip, returns")
        .await?;
    page.click(&tid("attribute-add")).await?;
    page.fill(&tid("attribute-key"), "plan").await?;
    page.fill(&tid("attribute-value"), "Gold").await?;
    page.click(&tid("dialog-submit")).await?;
    page.gone(&tid("customer-dialog")).await?;
    page.text_contains(&tid("customer-company"), "Example Trading Ltd")
        .await?;
    page.text_contains(&tid("customer-attribute"), "Gold")
        .await?;

    // Resolve: only the transitions a resolved conversation allows remain.
    page.click(&tid("status-resolve")).await?;
    page.find(&status_is("resolved")).await?;
    page.find(&tid("status-open")).await?;
    page.gone(&tid("status-pending")).await?;
    page.text_contains(&tid("status-open"), "Reopen").await?;
    page.screenshot("inbox-02-conversation-en").await?;

    // The server has the reply as outbound, the note as a note, and the conversation resolved.
    let detail = admin
        .json(&format!("/api/v1/conversations/{conversation}"))
        .await;
    ensure!(
        detail["conversation"]["status"] == json!("resolved"),
        "status: {}",
        detail["conversation"]
    );
    ensure!(detail["conversation"]["priority"] == json!("high"));
    let messages = detail["messages"].as_array().cloned().unwrap_or_default();
    let stored = |direction: &str, text: &str| {
        messages
            .iter()
            .any(|m| m["direction"] == json!(direction) && m["text"] == json!(text))
    };
    ensure!(
        stored("outbound", reply),
        "the reply is stored as outbound: {messages:?}"
    );
    ensure!(
        stored("note", "Courier ticket CR-889 opened."),
        "the note is stored as a note: {messages:?}"
    );
    ensure!(detail["customer"]["company"] == json!("Example Trading Ltd"));
    ensure!(detail["customer"]["tags"] == json!(["vip", "returns"]));
    ensure!(detail["customer"]["attributes"] == json!({ "plan": "Gold" }));

    // The customer writes again: the open conversation reopens on screen.
    page.mark().await?;
    channel
        .post(
            server,
            "k-2",
            &customer_message("m-2", "Still nothing here, any news?"),
        )
        .await?;
    page.find_within(LIVE, &status_is("open")).await?;
    page.text_contains(&tid("messages"), "Still nothing here")
        .await?;
    page.find(&tid("status-resolve")).await?;
    page.expect_same_document("the customer's second message")
        .await?;

    // Snoozed until tomorrow morning (the dialog's suggestion), then open again.
    page.click(&tid("status-snooze")).await?;
    page.find(&tid("snooze-until")).await?;
    page.click(&tid("dialog-submit")).await?;
    page.gone(&tid("snooze-dialog")).await?;
    page.find(&status_is("snoozed")).await?;
    page.text_contains(&tid("conversation-header"), "snoozed until")
        .await?;
    let snoozed = admin
        .json(&format!("/api/v1/conversations/{conversation}"))
        .await;
    let until = snoozed["conversation"]["snoozed_until"]
        .as_u64()
        .unwrap_or_default();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as u64;
    ensure!(
        until > now && until < now + 2 * 86_400_000,
        "snoozed until {until}, now {now}"
    );
    page.click(&tid("status-open")).await?;
    page.find(&status_is("open")).await?;

    // In Chinese.
    page.select(&tid("lang-select"), "zh-CN").await?;
    page.text_contains(&tid("reply-send"), "发送回复").await?;
    page.click(&tid("reply-note")).await?;
    page.text_contains(&tid("reply-send"), "添加备注").await?;
    page.text_contains(&message("system"), "优先级设为").await?;
    page.screenshot("inbox-03-conversation-zh").await?;
    page.click(&tid("conversation-back")).await?;
    page.text_contains(&row(conversation), CUSTOMER_NAME)
        .await?;
    page.text_contains(&tid("inbox-view-mine"), "我的").await?;
    page.screenshot("inbox-04-list-zh").await?;

    // Channels: add one in the console; the secret it shows once signs the app's messages.
    page.click(&tid("nav-channels")).await?;
    page.find(&format!(
        r#"[data-testid="channel-row"][data-id="{}"]"#,
        channel.id
    ))
    .await?;
    page.click(&tid("channel-new")).await?;
    page.fill(&tid("channel-name"), "网站 Website").await?;
    page.fill(&tid("channel-webhook"), "https://shop.example/hook")
        .await?;
    page.click(&tid("dialog-submit")).await?;
    let secret = page.find(&tid("secret-value")).await?.text().await?;
    ensure!(secret.starts_with("ahs_"), "signing secret {secret:?}");
    page.screenshot("inbox-05-channel-secret-zh").await?;
    page.click(&tid("secret-done")).await?;
    page.gone(&tid("secret-dialog")).await?;
    let website = r#"[data-testid="channel-row"][data-name="网站 Website"]"#;
    let website_id: u64 = page.attr(website, "data-id").await?.parse()?;
    let website_channel = ApiChannel {
        id: website_id,
        secret: secret.trim().to_string(),
    };
    let via_website = website_channel
        .post(
            server,
            "w-1",
            &json!({ "type": "message", "message_id": "w-1", "customer": { "external_id": "visitor-1", "email": "chen.jing@example.com" }, "subject": "Opening hours", "text": "When are you open?" }),
        )
        .await?;
    let website_conversation = via_website["conversation_id"]
        .as_u64()
        .ok_or_else(|| anyhow!("no conversation id in {via_website}"))?;
    // The refused reply is listed as a failed delivery; once the app accepts again, it goes out.
    let dead = r#"[data-testid="dead-letter-row"]"#;
    page.text_contains(dead, "410").await?;
    page.screenshot("inbox-06-channels-zh").await?;
    hook.status.store(200, Ordering::SeqCst);
    page.click(&format!("{dead} {}", tid("dead-letter-retry")))
        .await?;
    page.gone(dead).await?;
    eventually("the retried reply to be sent", || async {
        let detail = admin
            .json(&format!("/api/v1/conversations/{conversation}"))
            .await;
        Ok(detail["messages"]
            .as_array()
            .is_some_and(|m| {
                m.iter()
                    .any(|m| m["text"] == json!(reply) && m["delivery"]["state"] == json!("sent"))
            })
            .then_some(()))
    })
    .await?;
    // Disabling it takes effect at once.
    page.click(&format!("{website} {}", tid("channel-actions")))
        .await?;
    page.click(&tid("channel-disable")).await?;
    page.click(&tid("confirm-ok")).await?;
    page.find(r#"[data-testid="channel-row"][data-name="网站 Website"][data-enabled="false"]"#)
        .await?;
    ensure!(
        website_channel
            .post(
                server,
                "w-2",
                &json!({ "type": "message", "message_id": "w-2", "customer": { "external_id": "visitor-1" }, "text": "Hello?" }),
            )
            .await
            .is_err(),
        "a disabled channel refuses messages"
    );

    // The same customer (known by e-mail) wrote on the website: the first conversation links to it.
    page.click(&tid("nav-inbox")).await?;
    page.click(&tid("inbox-view-all")).await?;
    page.text_contains(&row(website_conversation), "Opening hours")
        .await?;
    page.click(&format!(
        "{} {}",
        row(conversation),
        tid("conversation-link")
    ))
    .await?;
    let history = format!(r#"[data-testid="history-link"][data-id="{website_conversation}"]"#);
    page.text_contains(&history, "Opening hours").await?;
    page.click(&history).await?;
    page.text_contains(&tid("conversation-subject"), "Opening hours")
        .await?;
    page.text_contains(&message("inbound"), "When are you open?")
        .await?;

    page.expect_no_csp_violations().await?;
    let errors = page.eval("return window.consoleErrors || [];").await?;
    ensure!(errors == json!([]), "errors in the page: {errors}");
    Ok(())
}

#[tokio::test]
async fn an_agent_sees_and_answers_only_their_own_conversations() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let hook = webhook(200).await;
    let channel = ApiChannel::create(&admin, "Mobile app", &hook.url).await;
    let agent =
        crate::matrix::employee_with_role(&server, &admin, "li.lei", "employee_agent").await;
    let agent_id = agent.info["employee"]["id"].as_u64().unwrap();
    let mut conversations = Vec::new();
    for (n, text) in ["Where is my invoice?", "Can I change my address?"]
        .iter()
        .enumerate()
    {
        let answer = channel
            .post(
                &server,
                &format!("a-{n}"),
                &json!({ "type": "message", "message_id": format!("a-{n}"), "customer": { "external_id": format!("c-{n}"), "name": format!("Customer {n}") }, "subject": text, "text": text }),
            )
            .await
            .unwrap();
        conversations.push(answer["conversation_id"].as_u64().unwrap());
    }
    let (mine, other) = (conversations[0], conversations[1]);
    let assigned = admin
        .post(
            &format!("/api/v1/conversations/{mine}/assign"),
            json!({ "assignee_id": agent_id }),
        )
        .await;
    assert_eq!(assigned.status(), 200);

    run_in_browser(&server, "browser-inbox-agent", async |page| {
        page.sign_in(&server, "li.lei", CHANGED_PASSWORD).await?;
        // The inbox is the agent's first section; channels are not theirs to configure.
        page.find(&format!("{}[aria-current=page]", tid("nav-inbox")))
            .await?;
        page.gone(&tid("nav-channels")).await?;
        page.find(&format!("{}.on", tid("live-status"))).await?;
        page.gone(&tid("inbox-view-unassigned")).await?;
        page.find(&format!(
            r#"{}[aria-selected="true"]"#,
            tid("inbox-view-mine")
        ))
        .await?;
        page.text_contains(&row(mine), "Where is my invoice?")
            .await?;
        page.gone(&row(other)).await?;

        // Assigned to them by someone else: it shows up in their list at once.
        let assigned = admin
            .post(
                &format!("/api/v1/conversations/{other}/assign"),
                json!({ "assignee_id": agent_id }),
            )
            .await;
        ensure!(assigned.status() == 200);
        page.find_within(LIVE, &row(other)).await?;

        // They may answer and resolve, but not reassign or edit the customer.
        page.click(&format!("{} {}", row(mine), tid("conversation-link")))
            .await?;
        page.text_contains(&tid("assignee-text"), "li.lei").await?;
        page.gone(&tid("assign-employee")).await?;
        page.gone(&tid("customer-edit")).await?;
        page.fill(&tid("reply-text"), "Your invoice is on its way.")
            .await?;
        page.click(&tid("reply-send")).await?;
        page.text_contains(&message("outbound"), "on its way")
            .await?;
        page.click(&tid("status-resolve")).await?;
        page.find(&status_is("resolved")).await?;
        page.screenshot("inbox-07-agent-conversation-en").await?;
        let detail = admin.json(&format!("/api/v1/conversations/{mine}")).await;
        ensure!(detail["conversation"]["status"] == json!("resolved"));
        ensure!(
            detail["messages"]
                .as_array()
                .is_some_and(|m| m.iter().any(|m| m["direction"] == json!("outbound")
                    && m["author"]["employee_id"] == json!(agent_id))),
            "the agent's reply is stored: {}",
            detail["messages"]
        );
        page.expect_no_csp_violations().await?;
        Ok(())
    })
    .await;
}
