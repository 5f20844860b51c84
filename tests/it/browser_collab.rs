//! Working together in the console, in two browsers. An administrator and a colleague in another
//! department are signed in; a customer's message arrives through a signed API channel. The
//! administrator opens it, attaches a picture (a refused file shows the server's reason) and sends
//! it with a reply, then writes a note that mentions the colleague through the @ picker, using the
//! keyboard. The colleague's bell counts the mention at once, without a reload; they open it, see
//! the conversation and the note with their name highlighted, and find it under "Mentions", which
//! a reload keeps. The status filter narrows the list, the new-conversation dialog (in Chinese)
//! opens a conversation on a customer's behalf, and a web chat visitor's read receipt shows
//! "Read" under the reply they read.
//!
//! Needs Debian's `chromium` and `chromium-driver`. ALLHANDS_SCREENSHOT_DIR keeps screenshots.

use std::time::Duration;

use anyhow::{Result, anyhow, ensure};
use fantoccini::Locator;
use fantoccini::key::Key;
use futures_util::SinkExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::browser_support::*;
use crate::common::*;

/// Under the console's 10-second fallback refresh, so what arrives within this came live, with
/// room for a loaded CI machine.
const LIVE: Duration = Duration::from_secs(9);
const COLLEAGUE: &str = "li.na";
const COLLEAGUE_NAME: &str = "李娜 Li Na";
const SUBJECT: &str = "Export crashes / 导出崩溃";
const SHOP: &str = "https://shop.example";
/// A 1×1 PNG.
const PNG: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4,
    0x89, 0x00, 0x00, 0x00, 0x0A, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0x00, 0x01, 0x00, 0x00,
    0x05, 0x00, 0x01, 0x0D, 0x0A, 0x2D, 0xB4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE,
    0x42, 0x60, 0x82,
];

fn row(id: u64) -> String {
    format!(r#"[data-testid="conversation-row"][data-id="{id}"]"#)
}

fn message(direction: &str) -> String {
    format!(r#"[data-testid="message"][data-direction="{direction}"]"#)
}

/// An API channel whose webhook nobody answers (replies just wait in the outbox).
struct ApiChannel {
    id: u64,
    secret: String,
}

impl ApiChannel {
    async fn create(admin: &Session) -> ApiChannel {
        let created = admin
            .create(
                "/api/v1/channels",
                json!({ "kind": "api", "name": "Mobile app", "settings": { "webhook_url": "http://127.0.0.1:9/hook" } }),
            )
            .await;
        ApiChannel {
            id: created["channel"]["id"].as_u64().unwrap(),
            secret: created["signing_secret"].as_str().unwrap().to_string(),
        }
    }

    /// A customer's message; answers the conversation's id.
    async fn customer_says(
        &self,
        server: &TestServer,
        key: &str,
        customer: &str,
        subject: &str,
        text: &str,
    ) -> u64 {
        let response = post_signed(
            server,
            self.id,
            &self.secret,
            key,
            &json!({ "type": "message", "message_id": key,
                     "customer": { "external_id": customer, "name": customer, "email": format!("{customer}@example.com") },
                     "subject": subject, "text": text }),
        )
        .await;
        assert_eq!(response.status(), 200);
        let answer: Value = response.json().await.unwrap();
        answer["conversation_id"].as_u64().unwrap()
    }
}

/// The colleague: an employee agent in the R&D department, who sees only what is theirs.
async fn colleague(server: &TestServer, admin: &Session) -> (Session, u64) {
    let rd = admin
        .create(
            "/api/v1/departments",
            json!({ "name": "R&D 研发", "parent_id": 1 }),
        )
        .await["id"]
        .as_u64()
        .unwrap();
    let created = admin
        .create(
            "/api/v1/employees",
            json!({ "username": COLLEAGUE, "display_name": COLLEAGUE_NAME, "department_id": rd, "password": EMPLOYEE_PASSWORD }),
        )
        .await;
    let id = created["employee"]["id"].as_u64().unwrap();
    let roles = admin.json("/api/v1/roles").await;
    let role = roles["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == "employee_agent")
        .unwrap()["id"]
        .clone();
    admin
        .create(
            "/api/v1/role-grants",
            json!({ "role_id": role, "subject": { "kind": "employee", "employee_id": id } }),
        )
        .await;
    (first_sign_in(server, COLLEAGUE).await, id)
}

#[tokio::test]
async fn colleagues_share_files_mention_each_other_and_are_notified() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let (colleague_session, colleague_id) = colleague(&server, &admin).await;
    let channel = ApiChannel::create(&admin).await;
    let crash = channel
        .customer_says(
            &server,
            "m-1",
            "wang.fang",
            SUBJECT,
            "The export crashes on large files.",
        )
        .await;
    // A second, already resolved conversation for the filters.
    let solved = channel
        .customer_says(
            &server,
            "m-2",
            "zhao.lei",
            "Invoice copy",
            "Please send it.",
        )
        .await;
    admin
        .create(
            &format!("/api/v1/conversations/{solved}/status"),
            json!({ "status": "resolved" }),
        )
        .await;
    // Invisible to the colleague until they are brought in.
    ensure_hidden(&colleague_session, crash).await;

    let dir = tempfile::tempdir().unwrap();
    run_in_browsers(&server, "browser-collab", 2, async |pages: &[Page]| {
        let (boss, mate) = (&pages[0], &pages[1]);
        mate.sign_in(&server, COLLEAGUE, CHANGED_PASSWORD).await?;
        mate.find(&tid("notifications-bell")).await?;
        mate.gone(&format!("{}:not([hidden])", tid("notifications-count")))
            .await?;
        mate.find(&format!("{}.on", tid("live-status"))).await?;
        mate.mark().await?;

        boss.sign_in(&server, "admin", NEW_ADMIN_PASSWORD).await?;
        attach_reply_and_mention(boss, &admin, crash, colleague_id, dir.path()).await?;

        // The colleague hears of it at once: the bell counts one, no reload.
        mate.find_within(
            LIVE,
            &format!(
                r#"{}[data-count="1"]:not([hidden])"#,
                tid("notifications-count")
            ),
        )
        .await?;
        mate.expect_same_document("the notification").await?;
        let label = mate.attr(&tid("notifications-bell"), "aria-label").await?;
        ensure!(label.contains("1 unread"), "the bell says {label:?}");
        mate.click(&tid("notifications-bell")).await?;
        let item = format!(
            r#"{}[data-conversation="{crash}"][data-read="false"]"#,
            tid("notification-item")
        );
        let text = mate.find(&item).await?.text().await?;
        ensure!(
            text.contains("mentioned you") && text.contains("crash log"),
            "the notification reads {text:?}"
        );
        mate.screenshot("collab-03-notifications-en").await?;
        mate.click(&item).await?;
        // The conversation opens at the note, their own name highlighted.
        mate.text_contains(&tid("conversation-subject"), SUBJECT)
            .await?;
        let mine = format!(
            r#"{} mark.mention.me[data-employee-id="{colleague_id}"]"#,
            message("note")
        );
        mate.text_contains(&mine, "@li.na").await?;
        mate.find(&format!("{}.focus", message("note"))).await?;
        mate.text_contains(
            &format!(r#"{}[data-id="{colleague_id}"]"#, tid("participant")),
            COLLEAGUE_NAME,
        )
        .await?;
        mate.find(&format!(
            "{} {}",
            message("outbound"),
            tid("attachment-thumbnail")
        ))
        .await?;
        mate.gone(&format!("{}:not([hidden])", tid("notifications-count")))
            .await?;
        mate.expect_same_document("opening the notification")
            .await?;
        eventually("the notification to be read on the server", || async {
            let page = colleague_session.json("/api/v1/notifications").await;
            Ok((page["unread"] == json!(0) && page["items"][0]["read_at"].is_u64()).then_some(()))
        })
        .await?;
        mate.screenshot("collab-04-mentioned-en").await?;

        // "Mentions" lists it; the view survives a reload.
        mate.click(&tid("conversation-back")).await?;
        mate.click(&tid("inbox-view-mentions")).await?;
        mate.find(&row(crash)).await?;
        mate.gone(&row(solved)).await?;
        mate.client.refresh().await?;
        mate.find(&format!(
            r#"{}[aria-selected="true"]"#,
            tid("inbox-view-mentions")
        ))
        .await?;
        mate.find(&row(crash)).await?;
        ensure!(
            mate.client.current_url().await?.query() == Some("view=mentions"),
            "the view is in the address"
        );
        // An agent of one department sees no "my team" or "unassigned" views, but may record a
        // conversation for a caller.
        mate.gone(&tid("inbox-view-unassigned")).await?;
        mate.find(&tid("inbox-new")).await?;

        filters(boss, crash, solved).await?;
        let opened = new_conversation_in_chinese(boss, &admin, channel.id).await?;
        ensure!(opened != crash && opened != solved);
        read_receipt(boss, &server, &admin).await?;

        for (who, page) in [("administrator", boss), ("colleague", mate)] {
            page.expect_no_csp_violations().await?;
            let errors = page.eval("return window.consoleErrors || [];").await?;
            ensure!(errors == json!([]), "errors in the {who}'s page: {errors}");
        }
        Ok(())
    })
    .await;
}

async fn ensure_hidden(session: &Session, conversation: u64) {
    let response = session
        .get(&format!("/api/v1/conversations/{conversation}"))
        .await;
    assert_eq!(response.status(), 404);
}

/// The administrator opens the conversation, sends a picture with a reply and mentions the
/// colleague in a note through the picker.
async fn attach_reply_and_mention(
    page: &Page,
    admin: &Session,
    conversation: u64,
    colleague_id: u64,
    dir: &std::path::Path,
) -> Result<()> {
    page.click(&tid("nav-inbox")).await?;
    page.click(&tid("inbox-view-all")).await?;
    page.click(&format!(
        "{} {}",
        row(conversation),
        tid("conversation-link")
    ))
    .await?;
    page.text_contains(&message("inbound"), "export crashes")
        .await?;
    page.text_contains(&tid("participants"), "No colleague")
        .await?;

    // A program is refused with the server's reason; nothing waits to be sent.
    let program = dir.join("tool.bin");
    let mut elf = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0".to_vec();
    elf.extend_from_slice(&[0; 48]);
    std::fs::write(&program, elf)?;
    choose_file(page, &program).await?;
    let error = page.text_contains(&tid("reply-error"), "tool.bin").await?;
    ensure!(
        error.contains("not accepted"),
        "the refusal explains itself: {error:?}"
    );
    page.gone(&tid("reply-attachment")).await?;

    // A picture waits as a chip, goes with the reply and shows as a thumbnail.
    let picture = dir.join("screenshot.png");
    std::fs::write(&picture, PNG)?;
    choose_file(page, &picture).await?;
    let chip = format!(r#"{}[data-pending="false"]"#, tid("reply-attachment"));
    page.text_contains(&chip, "screenshot.png").await?;
    page.fill(&tid("reply-text"), "Here is where the export fails.")
        .await?;
    page.screenshot("collab-01-attachment-en").await?;
    page.click(&tid("reply-send")).await?;
    let thumbnail = format!("{} {}", message("outbound"), tid("attachment-thumbnail"));
    page.find(&thumbnail).await?;
    eventually("the thumbnail to load", || async {
        let width = page
            .eval(&format!(
                "const img = document.querySelector('{}'); return img && img.complete ? img.naturalWidth : 0;",
                thumbnail.replace('\'', "\\'")
            ))
            .await?;
        Ok((width.as_u64().unwrap_or(0) > 0).then_some(()))
    })
    .await?;
    page.gone(&tid("reply-attachment")).await?;
    page.text_contains(&message("outbound"), "export fails")
        .await?;

    // A note: "@" lists colleagues, Escape closes the list; "@li." and the keyboard pick Li Na.
    page.click(&tid("reply-note")).await?;
    page.text_contains(&tid("reply-hint"), "Type @").await?;
    let text = page.find(&tid("reply-text")).await?;
    text.send_keys("Please check the crash log @").await?;
    page.find(&format!(
        r#"{}[data-username="{COLLEAGUE}"]"#,
        tid("mention-option")
    ))
    .await?;
    page.gone(&format!(
        r#"{}[data-id="{}"]"#,
        tid("mention-option"),
        admin.info["employee"]["id"]
    ))
    .await?;
    ensure!(
        page.attr(&tid("reply-text"), "aria-expanded").await? == "true",
        "the text box tells the list is open"
    );
    text.send_keys(&Key::Escape.to_string()).await?;
    page.gone(&format!("{}:not([hidden])", tid("mention-picker")))
        .await?;
    text.send_keys("li.").await?;
    let only = format!(
        r#"{}[data-username="{COLLEAGUE}"][aria-selected="true"]"#,
        tid("mention-option")
    );
    page.find(&only).await?;
    page.screenshot("collab-02-mention-picker-en").await?;
    text.send_keys(&format!("{}{}", Key::Down, Key::Up)).await?;
    page.find(&only).await?;
    text.send_keys(&Key::Enter.to_string()).await?;
    page.gone(&format!("{}:not([hidden])", tid("mention-picker")))
        .await?;
    eventually("the mention in the text", || async {
        Ok(
            (page.value_of(&tid("reply-text")).await? == "Please check the crash log @li.na ")
                .then_some(()),
        )
    })
    .await?;
    text.send_keys("please.").await?;
    page.click(&tid("reply-send")).await?;
    let mark = format!(
        r#"{} [data-testid="mention"][data-employee-id="{colleague_id}"]"#,
        message("note")
    );
    page.text_contains(&mark, "@li.na").await?;
    page.text_contains(
        &format!(r#"{}[data-id="{colleague_id}"]"#, tid("participant")),
        COLLEAGUE_NAME,
    )
    .await?;

    // The server has the picture with the reply and the colleague's id with the note.
    let detail = admin
        .json(&format!("/api/v1/conversations/{conversation}"))
        .await;
    let messages = detail["messages"].as_array().cloned().unwrap_or_default();
    ensure!(
        messages.iter().any(|m| m["direction"] == json!("outbound")
            && m["attachments"][0]["filename"] == json!("screenshot.png")
            && m["attachments"][0]["content_type"] == json!("image/png")),
        "the picture went with the reply: {messages:?}"
    );
    ensure!(
        messages.iter().any(|m| m["direction"] == json!("note")
            && m["mentions"] == json!([colleague_id])
            && m["text"] == json!("Please check the crash log @li.na please.")),
        "the note mentions the colleague: {messages:?}"
    );
    ensure!(detail["conversation"]["participants"] == json!([colleague_id]));
    Ok(())
}

/// Hands a file to the composer's (visually hidden) file input, as choosing it would.
async fn choose_file(page: &Page, path: &std::path::Path) -> Result<()> {
    page.client
        .find(Locator::Css(&tid("reply-file-input")))
        .await?
        .send_keys(&path.display().to_string())
        .await?;
    Ok(())
}

/// The status and tag filters narrow the list and stay in the address.
async fn filters(page: &Page, open: u64, resolved: u64) -> Result<()> {
    page.click(&tid("nav-inbox")).await?;
    page.click(&tid("inbox-view-all")).await?;
    page.find(&row(open)).await?;
    page.find(&row(resolved)).await?;
    page.select(&tid("inbox-filter-status"), "resolved").await?;
    page.gone(&row(open)).await?;
    page.find(&row(resolved)).await?;
    page.select(&tid("inbox-filter-status"), "open").await?;
    page.gone(&row(resolved)).await?;
    page.find(&row(open)).await?;
    let url = page.client.current_url().await?;
    ensure!(
        url.query() == Some("view=all&status=open"),
        "the filter is in the address: {url}"
    );
    page.client.refresh().await?;
    page.find(&row(open)).await?;
    ensure!(
        page.value_of(&tid("inbox-filter-status")).await? == "open",
        "the status filter survives a reload"
    );
    page.gone(&row(resolved)).await?;
    // Nothing carries this tag yet.
    page.fill(&tid("inbox-filter-tag"), "vip").await?;
    page.gone(&row(open)).await?;
    page.fill(&tid("inbox-filter-tag"), "").await?;
    page.select(&tid("inbox-filter-status"), "").await?;
    page.find(&row(open)).await?;
    page.find(&row(resolved)).await?;
    // Tag the open conversation in its side panel; the tag filter then finds it.
    page.click(&format!("{} {}", row(open), tid("conversation-link")))
        .await?;
    page.fill(&tid("conversation-tags"), "VIP, 退款\u{E007}")
        .await?;
    eventually("the tags to be saved", || async {
        Ok((page.value_of(&tid("conversation-tags")).await? == "VIP, 退款").then_some(()))
    })
    .await?;
    page.click(&tid("nav-inbox")).await?;
    page.click(&tid("inbox-view-all")).await?;
    page.fill(&tid("inbox-filter-tag"), "vip").await?;
    page.find(&row(open)).await?;
    page.gone(&row(resolved)).await?;
    page.select(&tid("inbox-filter-status"), "resolved").await?;
    page.gone(&row(open)).await?;
    page.fill(&tid("inbox-filter-tag"), "").await?;
    page.select(&tid("inbox-filter-status"), "").await?;
    page.find(&row(open)).await?;
    page.find(&row(resolved)).await?;
    page.screenshot("collab-05-filters-en").await?;
    Ok(())
}

/// In Chinese: the new-conversation dialog records a phone call and opens the conversation.
async fn new_conversation_in_chinese(page: &Page, admin: &Session, channel: u64) -> Result<u64> {
    page.select(&tid("lang-select"), "zh-CN").await?;
    page.text_contains(&tid("inbox-view-mentions"), "提及我的")
        .await?;
    page.text_contains(&tid("inbox-view-my_team"), "我的团队")
        .await?;
    let bell = page.attr(&tid("notifications-bell"), "aria-label").await?;
    ensure!(bell == "通知", "the bell in Chinese: {bell:?}");
    page.click(&tid("inbox-new")).await?;
    page.text_contains(&tid("newconv-dialog"), "代客户新建会话")
        .await?;
    page.select(&tid("newconv-channel"), &channel.to_string())
        .await?;
    page.fill(&tid("newconv-name"), "孙丽 Sun Li").await?;
    page.fill(&tid("newconv-subject"), "电话：发票副本").await?;
    page.fill(&tid("newconv-text"), "来电客户索要发票 2026-118 的副本。")
        .await?;
    // Without an e-mail address or phone number it cannot find the customer.
    page.click(&tid("dialog-submit")).await?;
    page.text_contains(&tid("form-error"), "电子邮箱或电话")
        .await?;
    page.fill(&tid("newconv-phone"), "+86 138 0000 1234")
        .await?;
    page.screenshot("collab-06-new-conversation-zh").await?;
    page.click(&tid("dialog-submit")).await?;
    page.gone(&tid("newconv-dialog")).await?;
    page.text_contains(&tid("conversation-subject"), "电话：发票副本")
        .await?;
    page.text_contains(&message("inbound"), "2026-118").await?;
    page.text_contains(&tid("participants-card"), "参与者")
        .await?;
    let path = page.client.current_url().await?.path().to_string();
    let id: u64 = path
        .strip_prefix("/inbox/")
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("not a conversation: {path}"))?;
    let detail = admin.json(&format!("/api/v1/conversations/{id}")).await;
    ensure!(
        detail["customer"]["name"] == json!("孙丽 Sun Li"),
        "{detail}"
    );
    ensure!(
        detail["conversation"]["assignee_id"] == admin.info["employee"]["id"],
        "the one who records it owns it: {}",
        detail["conversation"]
    );
    page.select(&tid("lang-select"), "en").await?;
    page.text_contains(&tid("reply-send"), "Send reply").await?;
    Ok(id)
}

/// A web chat visitor reads the reply: the console shows "Read" under it, live.
async fn read_receipt(page: &Page, server: &TestServer, admin: &Session) -> Result<()> {
    let created = admin
        .create(
            "/api/v1/channels",
            json!({ "kind": "web", "name": "Shop chat", "settings": { "allowed_origins": [SHOP] } }),
        )
        .await;
    let channel = created["channel"]["id"].as_u64().unwrap();
    let session: Value = client()
        .post(server.url(&format!("/api/v1/widget/{channel}/sessions")))
        .header("Origin", SHOP)
        .json(&json!({}))
        .send()
        .await?
        .json()
        .await?;
    let token = session["visitor_token"]
        .as_str()
        .ok_or_else(|| anyhow!("no visitor token in {session}"))?;
    let mut visitor = wss(
        server,
        &format!("/api/v1/widget/{channel}/ws?token={token}&after=0"),
        &[("Origin", SHOP)],
    )
    .await
    .map_err(|e| anyhow!("the widget socket: {e:?}"))?;
    let send = async |socket: &mut Socket, frame: Value| {
        socket
            .send(Message::Text(frame.to_string().into()))
            .await
            .map_err(|e| anyhow!("send {frame}: {e}"))
    };
    send(
        &mut visitor,
        json!({ "type": "profile", "name": "Visitor Zhou" }),
    )
    .await?;
    send(
        &mut visitor,
        json!({ "type": "message", "client_id": "c-1", "text": "Do you ship to Hangzhou?" }),
    )
    .await?;
    frame(&mut visitor, |f| f["type"] == "ack").await?;

    page.click(&tid("nav-inbox")).await?;
    page.click(&tid("inbox-view-all")).await?;
    page.select(&tid("inbox-filter-channel"), "web").await?;
    let link = format!(
        r#"[data-testid="conversation-row"] {}"#,
        tid("conversation-link")
    );
    page.click(&link).await?;
    page.text_contains(&message("inbound"), "Hangzhou").await?;
    page.fill(&tid("reply-text"), "Yes, in two days.").await?;
    page.click(&tid("reply-send")).await?;
    page.text_contains(&message("outbound"), "two days").await?;
    page.gone(&tid("message-read")).await?;
    let reply = frame(&mut visitor, |f| {
        f["type"] == "message" && f["message"]["direction"] == "outbound"
    })
    .await?;
    page.mark().await?;
    send(
        &mut visitor,
        json!({ "type": "read", "up_to": reply["message"]["id"] }),
    )
    .await?;
    page.find_within(
        LIVE,
        &format!(
            r#"{}[data-id="{}"] {}"#,
            message("outbound"),
            reply["message"]["id"],
            tid("message-read")
        ),
    )
    .await?;
    page.text_contains(&tid("message-read"), "Read").await?;
    page.expect_same_document("the read receipt").await?;
    page.screenshot("collab-07-read-en").await?;
    Ok(())
}

/// The next frame on the visitor's socket that `wanted` accepts.
async fn frame(socket: &mut Socket, wanted: impl Fn(&Value) -> bool) -> Result<Value> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let frame = next_event(socket, left)
            .await
            .ok_or_else(|| anyhow!("the expected frame did not arrive"))?;
        if wanted(&frame) {
            return Ok(frame);
        }
    }
}
