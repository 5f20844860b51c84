//! The web chat widget in real browsers. A web channel is added through the API; a shop's page,
//! served by a small HTTP server inside the test on another origin (with a strict CSP and a
//! careless stylesheet), embeds the widget with one tag. In one browser a visitor opens the widget,
//! fills the pre-chat form and writes; in another an employee signed in to the console sees the
//! conversation arrive live, opens it and replies; the visitor sees the reply without a reload, and
//! after a reload the whole history is still there. The widget then speaks Chinese when the
//! channel says so, and the channels screen adds, edits and rotates a web channel.
//!
//! Needs Debian's `chromium` and `chromium-driver`. ALLHANDS_SCREENSHOT_DIR keeps screenshots.

use std::time::Duration;

use anyhow::{Result, anyhow, ensure};
use fantoccini::Locator;
use fantoccini::elements::Element;
use fantoccini::key::Key;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::browser_support::*;
use crate::common::*;

/// Under the console's 10-second fallback refresh, so what arrives within this came live, with
/// room for a loaded CI machine.
const LIVE: Duration = Duration::from_secs(9);
const VISITOR_NAME: &str = "王芳 Wang Fang";
const VISITOR_EMAIL: &str = "wang.fang@example.com";
const QUESTION: &str = "Hello! Is the blue kettle in stock?";
const ANSWER: &str = "Yes, we have 12 in stock. <b>Free</b> delivery today.";
const UNSENT: &str = "And one more thing";
const GREETING_EN: &str = "Hello from Example Shop";
const GREETING_ZH: &str = "欢迎光临 Example Shop";
/// The launcher's colour, `#0a7d5a`, as computed styles report it.
const COLOUR_RGB: &str = "rgb(10, 125, 90)";
/// A 1×1 PNG, for the visitor to send.
const PNG: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4,
    0x89, 0x00, 0x00, 0x00, 0x0A, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0x00, 0x01, 0x00, 0x00,
    0x05, 0x00, 0x01, 0x0D, 0x0A, 0x2D, 0xB4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE,
    0x42, 0x60, 0x82,
];

/// The widget is meant to stay small: well under 50 KB once compressed, as servers send it.
#[test]
fn the_widget_script_is_small() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/web/widget/widget.js");
    let output = std::process::Command::new("gzip")
        .args(["-c", "-6", path])
        .output()
        .expect("run gzip");
    assert!(output.status.success(), "gzip failed: {output:?}");
    let size = output.stdout.len();
    eprintln!("widget.js: {size} bytes gzipped");
    assert!(size < 50 * 1024, "widget.js is {size} bytes gzipped");
}

#[tokio::test]
async fn a_visitor_and_an_employee_chat_through_the_widget() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let site = format!("http://{}", listener.local_addr().unwrap());
    let created = admin
        .create(
            "/api/v1/channels",
            json!({ "kind": "web", "name": "Example Shop", "settings": web_settings(&site, "en") }),
        )
        .await;
    let channel = created["channel"]["id"].as_u64().unwrap();
    assert_eq!(created["channel"]["kind"], json!("web"));
    assert!(
        created["signing_secret"]
            .as_str()
            .is_some_and(|s| s.len() >= 16),
        "a web channel's identity secret is shown once: {created}"
    );
    serve_shop(listener, server.base.clone(), channel, "");
    run_in_browsers(&server, "browser-widget", 2, async |pages: &[Page]| {
        let (employee, visitor) = (&pages[0], &pages[1]);
        widget_flow(employee, visitor, &server, &admin, channel, &site).await?;
        channels_screen_flow(employee, &server, &admin).await
    })
    .await;
}

fn web_settings(site: &str, language: &str) -> Value {
    json!({
        "colour": "#0a7d5a",
        "position": "right",
        "language": language,
        "greeting": { "en": GREETING_EN, "zh-CN": GREETING_ZH },
        "prechat": { "name": "required", "email": "optional" },
        "allowed_origins": [site],
    })
}

// ---------------------------------------------------------------- the shop's site

/// The shop's pages: any path answers the page that embeds the widget, `/site.css` a stylesheet
/// that tries to break it and `/site.js` a collector of errors and CSP violations followed by
/// `extra_js` (the signed-in user, say). The page's CSP allows scripts, connections and images
/// from the AllHands server only, and no inline styles or scripts.
fn serve_shop(listener: tokio::net::TcpListener, server: String, channel: u64, extra_js: &str) {
    let wss = server.replacen("https://", "wss://", 1);
    let csp = format!(
        "default-src 'self'; script-src 'self' {server}; style-src 'self'; \
         connect-src {server} {wss}; img-src 'self' {server} data:; object-src 'none'"
    );
    let page = format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Example Shop</title>
<link rel="stylesheet" href="/site.css">
<script src="/site.js"></script>
</head>
<body>
<h1>Example Shop</h1>
<div class="products"><p>Blue kettle, 1.7 l</p><button type="button">Add to cart</button></div>
<script src="{server}/widget.js" data-channel="{channel}" async></script>
</body>
</html>
"#
    );
    let css = "/* A careless site stylesheet: none of it may reach into the widget. */\n\
               button, textarea, input, form { display: none !important; }\n\
               div, p, span, h2 { color: rgb(255, 0, 0) !important; font-size: 40px !important; }\n";
    let js = format!(
        "{}{extra_js}\n",
        "window.consoleErrors = [];\n\
              window.cspViolations = [];\n\
              document.addEventListener('securitypolicyviolation', function (e) {\n\
                window.cspViolations.push(e.violatedDirective + ' ' + e.blockedURI);\n\
              });\n\
              window.addEventListener('error', function (e) { window.consoleErrors.push(String(e.message)); });\n\
              window.addEventListener('unhandledrejection', function (e) {\n\
                window.consoleErrors.push('unhandled: ' + String(e.reason && e.reason.stack || e.reason));\n\
              });\n"
    );
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let (page, css, js, csp) = (page.clone(), css, js.clone(), csp.clone());
            tokio::spawn(async move {
                let mut data = Vec::new();
                let mut buf = [0u8; 4096];
                while !data.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => data.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&data);
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                let (content_type, body) = match path.as_str() {
                    "/site.css" => ("text/css", css.to_string()),
                    "/site.js" => ("text/javascript", js),
                    "/favicon.ico" => ("text/plain", String::new()),
                    _ => ("text/html; charset=utf-8", page),
                };
                let status = if path == "/favicon.ico" {
                    "404 Not Found"
                } else {
                    "200 OK"
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
                     Content-Security-Policy: {csp}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
}

// ---------------------------------------------------------------- reaching into the widget

/// An element inside the widget's (open) shadow root, once it is displayed.
async fn widget_find(page: &Page, css: &str) -> Result<Element> {
    eventually(&format!("widget element {css}"), || async {
        let hosts = page
            .client
            .find_all(Locator::Css("allhands-widget"))
            .await?;
        let Some(host) = hosts.into_iter().next() else {
            return Ok(None);
        };
        let root = host.shadow_root().await?;
        match root.find(Locator::Css(css)).await {
            Ok(element) if element.is_displayed().await? => Ok(Some(element)),
            Ok(_) => Ok(None),
            Err(e) if e.is_no_such_element() => Ok(None),
            Err(e) => Err(e.into()),
        }
    })
    .await
}

async fn widget_click(page: &Page, css: &str) -> Result<()> {
    let element = widget_find(page, css).await?;
    eventually(&format!("a click on {css} in the widget"), || async {
        Ok(element.click().await.map(|_| ()).ok())
    })
    .await
}

async fn widget_type(page: &Page, css: &str, text: &str) -> Result<()> {
    let element = widget_find(page, css).await?;
    element.clear().await?;
    element.send_keys(text).await?;
    Ok(())
}

/// What the widget shows, read from its shadow root in one go.
async fn widget_state(page: &Page) -> Result<Value> {
    page.eval(
        r#"const host = document.querySelector('allhands-widget');
        if (!host || !host.shadowRoot) return null;
        const root = host.shadowRoot;
        const q = (s) => root.querySelector(s);
        const text = (n, s) => { const e = n.querySelector(s); return e ? e.textContent : null; };
        const panel = q('[data-testid="allhands-panel"]');
        const input = q('[data-testid="allhands-input"]');
        const typing = q('[data-testid="allhands-typing"]');
        return {
          open: !!panel && !panel.hidden,
          role: panel && panel.getAttribute('role'),
          labelled: !!(panel && panel.getAttribute('aria-labelledby') && root.getElementById(panel.getAttribute('aria-labelledby'))),
          title: panel ? text(panel, 'h2') : null,
          status: text(root, '[data-testid="allhands-status"]'),
          placeholder: input && input.placeholder,
          composer: !!input && input.offsetParent !== null,
          prechat: !!q('[data-testid="allhands-prechat"]'),
          offline: !!q('[data-testid="allhands-offline"]'),
          focused: root.activeElement ? root.activeElement.getAttribute('data-testid') : null,
          typing: typing && !typing.hidden ? typing.textContent : null,
          read: text(root, '[data-testid="allhands-read"]'),
          launcher: (() => {
            const l = q('[data-testid="allhands-launcher"]');
            if (!l) return null;
            const r = l.getBoundingClientRect();
            return { colour: getComputedStyle(l).backgroundColor, label: l.getAttribute('aria-label'),
                     right: r.left > innerWidth / 2, bottom: r.top > innerHeight / 2 };
          })(),
          messages: [...root.querySelectorAll('[data-testid="allhands-message"]')].map((m) => ({
            id: m.dataset.id ? Number(m.dataset.id) : null,
            direction: m.dataset.direction,
            text: text(m, '[data-testid="allhands-text"]'),
            author: text(m, '[data-testid="allhands-author"]'),
            read: !!m.querySelector('[data-testid="allhands-read"]'),
            html: (m.querySelector('[data-testid="allhands-text"]') || {}).innerHTML || '',
            images: [...m.querySelectorAll('img')].map((i) => ({ alt: i.alt, loaded: i.complete && i.naturalWidth > 0 })),
          })),
        };"#,
    )
    .await
}

/// Waits until the widget's state satisfies `check`; returns that state.
async fn widget_until(page: &Page, what: &str, check: impl Fn(&Value) -> bool) -> Result<Value> {
    widget_until_within(page, WAIT, what, check).await
}

async fn widget_until_within(
    page: &Page,
    wait: Duration,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Result<Value> {
    let last = std::sync::Mutex::new(Value::Null);
    let found = eventually_within(wait, what, || async {
        let state = widget_state(page).await?;
        let ok = !state.is_null() && check(&state);
        *last.lock().unwrap() = state.clone();
        Ok(ok.then_some(state))
    })
    .await;
    found.map_err(|e| anyhow!("{e:#}\nthe widget showed: {:#}", last.lock().unwrap()))
}

fn messages(state: &Value) -> Vec<Value> {
    state["messages"].as_array().cloned().unwrap_or_default()
}

/// The stored (acknowledged) messages of a direction whose text contains `text`.
fn stored(state: &Value, direction: &str, text: &str) -> Vec<Value> {
    messages(state)
        .into_iter()
        .filter(|m| {
            m["direction"] == json!(direction)
                && m["id"].is_u64()
                && m["text"].as_str().is_some_and(|t| t.contains(text))
        })
        .collect()
}

async fn expect_clean_page(page: &Page, who: &str) -> Result<()> {
    let errors = page.eval("return window.consoleErrors || [];").await?;
    ensure!(errors == json!([]), "errors in the {who}'s page: {errors}");
    let violations = page.eval("return window.cspViolations || [];").await?;
    ensure!(
        violations == json!([]),
        "the {who}'s page saw CSP violations: {violations}"
    );
    Ok(())
}

// ---------------------------------------------------------------- the conversation

async fn widget_flow(
    employee: &Page,
    visitor: &Page,
    server: &TestServer,
    admin: &Session,
    channel: u64,
    site: &str,
) -> Result<()> {
    // The employee is signed in, looking at every conversation, before the visitor arrives.
    employee
        .sign_in(server, "admin", NEW_ADMIN_PASSWORD)
        .await?;
    employee.click(&tid("nav-inbox")).await?;
    employee.click(&tid("inbox-view-all")).await?;
    employee
        .find(&format!("{}[data-loaded]", tid("inbox-list")))
        .await?;
    employee.find(&format!("{}.on", tid("live-status"))).await?;
    employee.mark().await?;

    // The shop's page shows the launcher in the channel's colour and corner, whatever its CSS says.
    visitor
        .client
        .goto(&format!("{site}/products/blue-kettle"))
        .await?;
    widget_find(visitor, &tid("allhands-launcher")).await?;
    let state = widget_until(visitor, "the launcher", |s| {
        s["launcher"]["colour"] == json!(COLOUR_RGB)
    })
    .await?;
    ensure!(
        state["launcher"]["right"] == json!(true) && state["launcher"]["bottom"] == json!(true),
        "the launcher sits in the bottom right corner: {}",
        state["launcher"]
    );
    ensure!(
        state["launcher"]["label"] == json!("Open chat"),
        "the launcher is labelled: {}",
        state["launcher"]
    );
    ensure!(
        state["open"] == json!(false),
        "the panel starts closed: {state}"
    );
    visitor.mark().await?;

    // Opened: a dialog with the greeting; the required name is asked for first.
    widget_click(visitor, &tid("allhands-launcher")).await?;
    widget_find(visitor, &tid("allhands-panel")).await?;
    let state = widget_until(visitor, "the pre-chat form", |s| {
        s["open"] == json!(true) && s["prechat"] == json!(true)
    })
    .await?;
    ensure!(
        state["role"] == json!("dialog") && state["labelled"] == json!(true),
        "the panel is a labelled dialog: {state}"
    );
    ensure!(
        state["title"] == json!(GREETING_EN),
        "greeting: {}",
        state["title"]
    );
    ensure!(
        state["focused"] == json!("allhands-name"),
        "the first field has the focus: {}",
        state["focused"]
    );
    ensure!(
        state["composer"] == json!(false),
        "no composer before the pre-chat form is done"
    );
    visitor.screenshot("widget-01-prechat").await?;
    // The name is required.
    widget_click(visitor, &tid("allhands-prechat-submit")).await?;
    widget_until(visitor, "the form to stay until the name is given", |s| {
        s["prechat"] == json!(true)
    })
    .await?;
    widget_type(visitor, &tid("allhands-name"), VISITOR_NAME).await?;
    widget_type(visitor, &tid("allhands-email"), VISITOR_EMAIL).await?;
    widget_click(visitor, &tid("allhands-prechat-submit")).await?;
    let state = widget_until(visitor, "the composer after the pre-chat form", |s| {
        s["prechat"] == json!(false) && s["composer"] == json!(true)
    })
    .await?;
    ensure!(
        state["focused"] == json!("allhands-input"),
        "the composer has the focus: {}",
        state["focused"]
    );

    // Enter sends; Shift+Enter would have made a new line.
    widget_type(
        visitor,
        &tid("allhands-input"),
        &format!("{QUESTION}{}", Key::Enter),
    )
    .await?;
    let state = widget_until(visitor, "the visitor's message to be stored", |s| {
        stored(s, "inbound", QUESTION).len() == 1
    })
    .await?;
    let question_id = stored(&state, "inbound", QUESTION)[0]["id"]
        .as_u64()
        .unwrap_or_default();
    let input = widget_find(visitor, &tid("allhands-input")).await?;
    ensure!(
        input.prop("value").await?.unwrap_or_default().is_empty(),
        "the composer is empty after sending"
    );

    // The employee sees the conversation arrive, with the visitor's name, without a reload.
    let row = r#"[data-testid="conversation-row"]"#;
    employee.find_within(LIVE, row).await?;
    employee
        .expect_same_document("the new conversation")
        .await?;
    employee.text_contains(row, "Wang Fang").await?;
    let conversation: u64 = employee.attr(row, "data-id").await?.parse()?;
    employee
        .click(&format!("{row} {}", tid("conversation-link")))
        .await?;
    employee
        .text_contains(
            r#"[data-testid="message"][data-direction="inbound"]"#,
            "blue kettle",
        )
        .await?;
    employee
        .text_contains(&tid("customer-name"), VISITOR_NAME)
        .await?;
    let detail = admin
        .json(&format!("/api/v1/conversations/{conversation}"))
        .await;
    ensure!(
        detail["customer"]["emails"]
            .as_array()
            .is_some_and(|e| e.contains(&json!(VISITOR_EMAIL))),
        "the pre-chat e-mail is on the customer: {}",
        detail["customer"]
    );
    ensure!(
        detail["messages"].as_array().is_some_and(|m| m
            .iter()
            .any(|m| m["id"] == json!(question_id) && m["text"] == json!(QUESTION))),
        "the widget's message id is the stored message's: {}",
        detail["messages"]
    );

    // Each sees the other typing.
    widget_type(visitor, &tid("allhands-input"), "Also, do you").await?;
    employee
        .text_contains(&tid("typing-indicator"), "Wang Fang")
        .await?;
    widget_type(visitor, &tid("allhands-input"), "").await?;

    // The employee answers; the reply reaches the open widget live, as text, with their name.
    employee.fill(&tid("reply-text"), ANSWER).await?;
    let state = widget_until_within(visitor, LIVE, "the employee's typing in the widget", |s| {
        s["typing"]
            .as_str()
            .is_some_and(|t| t.contains("is typing"))
    })
    .await?;
    ensure!(
        state["typing"]
            .as_str()
            .is_some_and(|t| t.contains("Administrator")),
        "typing: {}",
        state["typing"]
    );
    employee.click(&tid("reply-send")).await?;
    employee
        .text_contains(
            r#"[data-testid="message"][data-direction="outbound"]"#,
            "12 in stock",
        )
        .await?;
    let state = widget_until_within(visitor, LIVE, "the employee's reply in the widget", |s| {
        stored(s, "outbound", ANSWER).len() == 1
    })
    .await?;
    visitor.expect_same_document("the reply").await?;
    let reply = &stored(&state, "outbound", ANSWER)[0];
    ensure!(
        reply["author"]
            .as_str()
            .is_some_and(|a| !a.trim().is_empty()),
        "the reply carries the employee's name: {reply}"
    );
    ensure!(
        reply["html"]
            .as_str()
            .is_some_and(|h| h.contains("&lt;b&gt;Free&lt;/b&gt;")),
        "the reply is shown as text, never as HTML: {reply}"
    );
    // Employees have read the visitor's message.
    widget_until(visitor, "the read mark on the visitor's message", |s| {
        stored(s, "inbound", QUESTION)
            .first()
            .is_some_and(|m| m["read"] == json!(true))
            && s["read"] == json!("Read")
    })
    .await?;
    visitor.screenshot("widget-02-conversation-en").await?;

    // A picture: uploaded, then sent; the visitor sees it as a thumbnail, the server has it.
    let dir = tempfile::tempdir()?;
    let picture = dir.path().join("kettle.png");
    std::fs::write(&picture, PNG)?;
    // The input is visually hidden behind the attach button; WebDriver hands it the file.
    let host = visitor.client.find(Locator::Css("allhands-widget")).await?;
    host.shadow_root()
        .await?
        .find(Locator::Css(&tid("allhands-file")))
        .await?
        .send_keys(&picture.display().to_string())
        .await?;
    widget_until(visitor, "the picture as a thumbnail", |s| {
        messages(s).iter().any(|m| {
            m["direction"] == json!("inbound")
                && m["id"].is_u64()
                && m["images"] == json!([{ "alt": "kettle.png", "loaded": true }])
        })
    })
    .await?;
    let detail = admin
        .json(&format!("/api/v1/conversations/{conversation}"))
        .await;
    ensure!(
        detail["messages"]
            .as_array()
            .is_some_and(|m| m.iter().any(|m| m["attachments"]
                .as_array()
                .is_some_and(|a| a.iter().any(|a| a["filename"] == json!("kettle.png"))))),
        "the picture is stored with a message: {}",
        detail["messages"]
    );

    // The site navigates without loading a page; the widget keeps working.
    visitor
        .eval("history.pushState({}, '', '/checkout'); return null;")
        .await?;

    // A message typed as the page went away, never acknowledged, waits in storage.
    visitor
        .eval(&format!(
            "const key = 'allhands:{channel}';\
             const saved = JSON.parse(localStorage.getItem(key));\
             saved.pending.push({{ client_id: 'typed-before-reload', text: '{UNSENT}', attachments: [] }});\
             localStorage.setItem(key, JSON.stringify(saved)); return null;"
        ))
        .await?;

    // A reload: the panel stays open, the whole history is back, each message once, and the
    // waiting message is sent.
    visitor.client.refresh().await?;
    let state = widget_until(visitor, "the history after a reload", |s| {
        s["open"] == json!(true)
            && stored(s, "inbound", QUESTION).len() == 1
            && stored(s, "outbound", ANSWER).len() == 1
            && stored(s, "inbound", UNSENT).len() == 1
    })
    .await?;
    let pending = visitor
        .eval(&format!(
            "return JSON.parse(localStorage.getItem('allhands:{channel}')).pending;"
        ))
        .await?;
    ensure!(pending == json!([]), "still pending: {pending}");
    ensure!(
        messages(&state).iter().all(|m| m["id"].is_u64()),
        "nothing is left unacknowledged: {state}"
    );
    let mut ids: Vec<u64> = messages(&state)
        .iter()
        .filter_map(|m| m["id"].as_u64())
        .collect();
    let count = ids.len();
    ids.sort_unstable();
    ids.dedup();
    ensure!(ids.len() == count, "no message shows twice: {state}");
    ensure!(
        state["prechat"] == json!(false),
        "the pre-chat form is not asked again"
    );
    expect_clean_page(visitor, "visitor").await?;

    // The channel speaks Chinese now: the widget follows on the next page.
    let patched = admin
        .patch(
            &format!("/api/v1/channels/{channel}"),
            json!({ "settings": web_settings(site, "zh-CN") }),
        )
        .await;
    ensure!(
        patched.status() == 200,
        "PATCH settings: {}",
        patched.status()
    );
    visitor.client.refresh().await?;
    // The read mark arrives in its own frame after the history.
    let state = widget_until(visitor, "the widget in Chinese", |s| {
        s["title"] == json!(GREETING_ZH)
            && stored(s, "outbound", ANSWER).len() == 1
            && stored(s, "inbound", UNSENT).len() == 1
            && s["read"] != json!(null)
    })
    .await?;
    ensure!(
        state["placeholder"] == json!("输入消息…") && state["read"] == json!("已读"),
        "Chinese texts: {state}"
    );
    visitor.screenshot("widget-03-conversation-zh").await?;

    // Escape closes the panel and gives the focus back to the launcher.
    widget_type(visitor, &tid("allhands-input"), &Key::Escape.to_string()).await?;
    widget_until(visitor, "the panel to close on Escape", |s| {
        s["open"] == json!(false) && s["focused"] == json!("allhands-launcher")
    })
    .await?;
    visitor
        .eval("window.AllHandsWidget.open(); return null;")
        .await?;
    widget_until(visitor, "the page to open the panel", |s| {
        s["open"] == json!(true)
    })
    .await?;
    expect_clean_page(visitor, "visitor").await?;
    employee.expect_no_csp_violations().await?;
    Ok(())
}

// ---------------------------------------------------------------- the channels screen

async fn channels_screen_flow(page: &Page, server: &TestServer, admin: &Session) -> Result<()> {
    page.click(&tid("nav-channels")).await?;
    let shop = r#"[data-testid="channel-row"][data-name="Example Shop"]"#;
    let shop_id = page.attr(shop, "data-id").await?;
    let snippet = page
        .text_contains(&format!("{shop} {}", tid("channel-embed")), "widget.js")
        .await?;
    ensure!(
        snippet.trim()
            == format!(
                r#"<script src="{}/widget.js" data-channel="{shop_id}" async></script>"#,
                server.base
            ),
        "embed snippet: {snippet}"
    );
    page.find(&format!("{shop} {}", tid("channel-embed-copy")))
        .await?;

    // An e-mail channel to answer visitors who left (it never connects here: nothing listens).
    let mailbox = admin
        .create(
            "/api/v1/channels",
            json!({ "kind": "email", "name": "Docs mailbox", "settings": {
                "imap_host": "127.0.0.1", "imap_port": 9, "imap_tls": "tls", "imap_username": "docs",
                "smtp_host": "127.0.0.1", "smtp_port": 9, "smtp_tls": "starttls", "smtp_username": "docs",
                "from_address": "docs@example.com", "from_name": "Docs" } }),
        )
        .await;
    let mailbox_id = mailbox["channel"]["id"].as_u64().unwrap();
    page.click(&tid("nav-inbox")).await?;
    page.click(&tid("nav-channels")).await?;

    // A web channel added in the console, with every setting.
    page.click(&tid("channel-new")).await?;
    page.select(&tid("channel-kind"), "web").await?;
    page.find(&tid("channel-web-settings")).await?;
    page.gone(&format!(
        "{}:not([hidden]) {}",
        tid("channel-api-settings"),
        tid("channel-webhook")
    ))
    .await?;
    page.fill(&tid("channel-name"), "文档站 Docs").await?;
    page.eval(
        r#"const c = document.querySelector('[data-testid="channel-colour"]');
        c.value = '#aa3300'; c.dispatchEvent(new Event('input', { bubbles: true })); return null;"#,
    )
    .await?;
    page.select(&tid("channel-position"), "left").await?;
    page.select(&tid("channel-language"), "zh-CN").await?;
    page.fill(&tid("channel-greeting-en"), "Ask the docs team")
        .await?;
    page.fill(&tid("channel-greeting-zh"), "文档团队为您解答")
        .await?;
    page.select(&tid("channel-prechat-name"), "off").await?;
    page.select(&tid("channel-prechat-email"), "required")
        .await?;
    page.select(&tid("channel-email-fallback"), &mailbox_id.to_string())
        .await?;
    page.fill(
        &tid("channel-origins"),
        "https://docs.example.com\nhttps://help.example.com/\n",
    )
    .await?;
    page.screenshot("widget-04-new-web-channel").await?;
    page.click(&tid("dialog-submit")).await?;
    let secret = page.find(&tid("secret-value")).await?.text().await?;
    ensure!(!secret.trim().is_empty(), "identity secret shown once");
    page.text_contains(&tid("secret-dialog"), "sign").await?;
    page.click(&tid("secret-done")).await?;
    let docs = r#"[data-testid="channel-row"][data-name="文档站 Docs"]"#;
    let docs_id: u64 = page.attr(docs, "data-id").await?.parse()?;
    page.text_contains(
        &format!("{} {}", tid("embed-dialog"), tid("channel-embed")),
        &format!(r#"data-channel="{docs_id}""#),
    )
    .await?;
    page.click(&tid("embed-done")).await?;
    page.gone(&tid("embed-dialog")).await?;
    let stored = admin.json(&format!("/api/v1/channels/{docs_id}")).await;
    ensure!(stored["kind"] == json!("web"), "kind: {stored}");
    let settings = &stored["settings"];
    ensure!(
        settings["colour"] == json!("#aa3300")
            && settings["position"] == json!("left")
            && settings["language"] == json!("zh-CN")
            && settings["greeting"]["en"] == json!("Ask the docs team")
            && settings["greeting"]["zh-CN"] == json!("文档团队为您解答")
            && settings["prechat"] == json!({ "name": "off", "email": "required" })
            && settings["allowed_origins"]
                == json!(["https://docs.example.com", "https://help.example.com"])
            && settings["email_fallback_channel_id"] == json!(mailbox_id),
        "the settings as entered: {settings}"
    );

    // Edited: the dialog shows the settings, and saves the change.
    page.click(&format!("{docs} {}", tid("channel-actions")))
        .await?;
    page.click(&tid("channel-edit")).await?;
    eventually("the edit dialog to show the position", || async {
        Ok((page.value_of(&tid("channel-position")).await? == "left").then_some(()))
    })
    .await?;
    ensure!(page.value_of(&tid("channel-prechat-email")).await? == "required");
    ensure!(page.value_of(&tid("channel-email-fallback")).await? == mailbox_id.to_string());
    page.select(&tid("channel-position"), "right").await?;
    page.click(&tid("dialog-submit")).await?;
    page.gone(&tid("channel-dialog")).await?;
    eventually("the new position to be saved", || async {
        let stored = admin.json(&format!("/api/v1/channels/{docs_id}")).await;
        Ok((stored["settings"]["position"] == json!("right")
            && stored["settings"]["greeting"]["en"] == json!("Ask the docs team"))
        .then_some(()))
    })
    .await?;

    // A new identity secret, shown once.
    page.click(&format!("{docs} {}", tid("channel-actions")))
        .await?;
    page.click(&tid("channel-rotate")).await?;
    page.click(&tid("confirm-ok")).await?;
    let rotated = page.find(&tid("secret-value")).await?.text().await?;
    ensure!(
        !rotated.trim().is_empty() && rotated != secret,
        "a different identity secret: {rotated}"
    );
    page.click(&tid("secret-done")).await?;
    page.gone(&tid("secret-dialog")).await?;
    page.screenshot("widget-05-channels").await?;
    page.expect_no_csp_violations().await?;
    Ok(())
}

// ---------------------------------------------------------------- nobody online

/// With nobody signed in to the console the widget offers to leave a message. The shop's
/// signed-in user is identified by the signature the shop's server made with the identity
/// secret: the message lands on that customer, with the pages they saw on their timeline.
#[tokio::test]
async fn a_signed_in_user_leaves_a_message_when_nobody_is_online() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let site = format!("http://{}", listener.local_addr().unwrap());
    let created = admin
        .create(
            "/api/v1/channels",
            json!({ "kind": "web", "name": "Example Shop", "settings": web_settings(&site, "en") }),
        )
        .await;
    let channel = created["channel"]["id"].as_u64().unwrap();
    let secret = created["signing_secret"].as_str().unwrap();
    let signature = allhands::channels::web::identity_signature(secret, "u-42");
    let user = format!(
        "window.AllHandsWidget = {{ user: {{ id: 'u-42', name: 'Li Lei', \
         email: 'li.lei@example.com', signature: '{signature}' }} }};"
    );
    serve_shop(listener, server.base.clone(), channel, &user);
    run_in_browser(&server, "browser-widget-offline", async |visitor| {
        visitor.client.goto(&format!("{site}/contact")).await?;
        widget_click(visitor, &tid("allhands-launcher")).await?;
        let state = widget_until(visitor, "the leave-a-message form", |s| {
            s["open"] == json!(true) && s["offline"] == json!(true)
        })
        .await?;
        ensure!(
            state["prechat"] == json!(false) && state["composer"] == json!(false),
            "the signed-in user needs no pre-chat form, and the form replaces the composer: {state}"
        );
        let name = widget_find(visitor, &tid("allhands-offline-name")).await?;
        ensure!(
            name.prop("value").await?.as_deref() == Some("Li Lei"),
            "the form knows the user"
        );
        widget_type(
            visitor,
            &tid("allhands-offline-message"),
            "Please call me back about order A-7.",
        )
        .await?;
        visitor.screenshot("widget-06-offline").await?;
        widget_click(visitor, &tid("allhands-offline-submit")).await?;
        widget_until(visitor, "the left message to be stored", |s| {
            s["offline"] == json!(false)
                && s["composer"] == json!(true)
                && stored(s, "inbound", "order A-7").len() == 1
        })
        .await?;
        // The site moves on without loading a page: that is a page view too.
        visitor
            .eval("history.pushState({}, '', '/contact/thanks'); return null;")
            .await?;

        let list = admin.json("/api/v1/conversations").await;
        let conversation = list["items"][0]["id"]
            .as_u64()
            .ok_or_else(|| anyhow!("no conversation: {list}"))?;
        let detail = admin
            .json(&format!("/api/v1/conversations/{conversation}"))
            .await;
        ensure!(
            detail["customer"]["name"] == json!("Li Lei")
                && detail["customer"]["emails"] == json!(["li.lei@example.com"]),
            "the signed-in user is the customer: {}",
            detail["customer"]
        );
        ensure!(
            detail["messages"].as_array().is_some_and(|m| m
                .iter()
                .any(|m| m["text"] == json!("Please call me back about order A-7."))),
            "the left message: {}",
            detail["messages"]
        );
        let customer = detail["customer"]["id"].as_u64().unwrap_or_default();
        eventually("both page views on the customer's timeline", || async {
            let profile = admin.json(&format!("/api/v1/customers/{customer}")).await;
            let urls: Vec<String> = profile["events"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|e| e["name"] == json!("page_view"))
                .filter_map(|e| e["properties"]["url"].as_str().map(str::to_string))
                .collect();
            Ok((urls.iter().any(|u| u.ends_with("/contact"))
                && urls.iter().any(|u| u.ends_with("/contact/thanks")))
            .then_some(()))
        })
        .await?;
        expect_clean_page(visitor, "visitor").await
    })
    .await;
}

// ---------------------------------------------------------------- help articles

/// Before writing, a visitor searches the help articles in the widget (here in Chinese, as the
/// channel says): the public article is listed with its passage, the internal one never; it
/// opens inside the widget, and Back returns to the conversation.
#[tokio::test]
async fn a_visitor_searches_the_help_articles_in_the_widget() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let mut ids = Vec::new();
    for (title, body, visibility) in [
        (
            "退款到账时间",
            "## 到账时间\n退款审核通过后，款项会在 3 到 5 个工作日内原路退回到您的支付账户。",
            "public",
        ),
        (
            "退款风控（内部）",
            "退款金额超过 500 元需要二次审核，审核通过后退款原路退回。",
            "internal",
        ),
    ] {
        let id = admin
            .publish_article(json!({ "title": title, "body": body, "visibility": visibility }))
            .await;
        ids.push(id);
    }
    let (public, internal) = (ids[0], ids[1]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let site = format!("http://{}", listener.local_addr().unwrap());
    let created = admin
        .create(
            "/api/v1/channels",
            json!({ "kind": "web", "name": "Example Shop", "settings": web_settings(&site, "zh-CN") }),
        )
        .await;
    let channel = created["channel"]["id"].as_u64().unwrap();
    serve_shop(listener, server.base.clone(), channel, "");
    run_in_browser(&server, "browser-widget-search", async |visitor| {
        visitor.client.goto(&format!("{site}/help")).await?;
        widget_click(visitor, &tid("allhands-launcher")).await?;
        let field = widget_find(visitor, &tid("allhands-search")).await?;
        ensure!(
            field.attr("placeholder").await?.as_deref() == Some("搜索帮助文章"),
            "the search box speaks Chinese"
        );
        widget_type(visitor, &tid("allhands-search"), "退款什么时候到账").await?;
        widget_click(visitor, &tid("allhands-search-submit")).await?;
        let hit = format!(r#"[data-testid="allhands-search-hit"][data-id="{public}"]"#);
        let text = widget_find(visitor, &hit).await?.text().await?;
        ensure!(
            text.contains("退款到账时间") && text.contains("3 到 5 个工作日"),
            "the hit shows the title and the passage: {text:?}"
        );
        let listed = visitor
            .eval(
                "return [...document.querySelector('allhands-widget').shadowRoot\
                 .querySelectorAll('[data-testid=\"allhands-search-hit\"]')].map((h) => Number(h.dataset.id));",
            )
            .await?;
        ensure!(
            !listed.as_array().is_some_and(|l| l.contains(&json!(internal))),
            "an internal article is never listed: {listed}"
        );
        visitor.screenshot("widget-search-01-results").await?;

        widget_click(visitor, &hit).await?;
        let title = widget_find(visitor, &tid("allhands-article-title")).await?;
        ensure!(title.text().await? == "退款到账时间");
        let body = widget_find(visitor, &tid("allhands-article-body"))
            .await?
            .text()
            .await?;
        ensure!(
            body.contains("原路退回") && !body.contains("##"),
            "the article reads as text: {body:?}"
        );
        visitor.screenshot("widget-search-02-article").await?;
        widget_click(visitor, &tid("allhands-article-back")).await?;
        widget_find(visitor, &tid("allhands-search")).await?;
        widget_until(visitor, "the conversation again", |s| s["open"] == json!(true))
            .await?;
        expect_clean_page(visitor, "visitor").await
    })
    .await;
}
