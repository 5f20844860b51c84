//! Lanes, business calendars, SLA clocks and escalation in the console, in three browsers.
//! The administrator adds a business calendar in the routing screen (a time zone the server
//! refuses first shows the server's reason; Monday's hours are copied to the other weekdays,
//! Saturday gets its own, holidays and a make-up working day are listed) and gives the Tech
//! support lane a 30-minute first-response target on that calendar and an extra SLA action.
//! Two employee agents answer beside their jobs: one with the skill "support" goes online, one
//! with "rnd" goes into focus with the console in Chinese. A customer's technical question
//! arrives through a signed API channel and is offered to the support agent, who accepts it,
//! sees its lane and SLA clocks, finds the colleague in the transfer dialog, and escalates it
//! with a hand-off note: a "waiting to be accepted" banner shows. The R&D engineer's offer
//! pop-up says it is an escalation and shows the note; they accept, and the conversation's
//! routing card lists the escalation with its note, offers to return it to its owner, and
//! speaks Chinese. Finally a pre-sales question waits in a lane with a 4-second target: the
//! supervisor's live view lists it under "SLA at risk" and a toast says so.
//!
//! Needs Debian's `chromium` and `chromium-driver`. ALLHANDS_SCREENSHOT_DIR keeps screenshots.

use std::time::Duration;

use anyhow::ensure;
use serde_json::{Value, json};

use crate::browser_support::*;
use crate::common::*;

/// Under the console's 10-second fallback refresh, so what arrives within this came live, with
/// room for a loaded CI machine.
const LIVE: Duration = Duration::from_secs(9);
const SUPPORT: &str = "zhou.support";
const ENGINEER: &str = "qian.rnd";
const CALENDAR: &str = "Shanghai office";
const QUESTION: &str = "The device keeps rebooting and shows error E42 after the firmware update";
const NOTE: &str = "Firmware 3.2 reboots on E42; logs attached, needs the gateway team";

async fn ask(
    server: &TestServer,
    channel: u64,
    secret: &str,
    key: &str,
    subject: &str,
    text: &str,
) -> u64 {
    let response = post_signed(
        server,
        channel,
        secret,
        key,
        &json!({ "type": "message", "message_id": key,
                 "customer": { "external_id": key, "name": "孙丽 Sun Li" },
                 "subject": subject, "text": text }),
    )
    .await;
    assert_eq!(response.status(), 200, "the question was refused");
    let answer: Value = response.json().await.unwrap();
    answer["conversation_id"].as_u64().expect("stored")
}

/// Clicks an element inside a long dialog after scrolling it to the middle, clear of the
/// dialog's sticky buttons.
pub async fn click_centred(page: &Page, css: &str) -> anyhow::Result<()> {
    page.find(css).await?;
    page.eval(&format!(
        "document.querySelector({}).scrollIntoView({{ block: 'center' }});",
        json!(css)
    ))
    .await?;
    page.click(css).await
}

fn lane_row(key: &str) -> String {
    format!(r#"[data-testid="routing-lane-row"][data-key="{key}"]"#)
}

#[tokio::test]
async fn a_technical_question_is_escalated_from_tech_support_to_rnd_in_the_console() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let (_support_session, support_id) =
        crate::routing::routing_agent(&server, &admin, SUPPORT, json!({ "support": 3 })).await;
    let (engineer_session, engineer_id) =
        crate::routing::routing_agent(&server, &admin, ENGINEER, json!({ "rnd": 4 })).await;
    let channel = admin
        .create("/api/v1/channels", json!({ "kind": "api", "name": "App" }))
        .await;
    let channel_id = channel["channel"]["id"].as_u64().unwrap();
    let secret = channel["signing_secret"].as_str().unwrap().to_string();

    run_in_browsers(&server, "browser-routing-lanes", 3, async |pages: &[Page]| {
        let (boss, helper, expert) = (&pages[0], &pages[1], &pages[2]);

        // The administrator adds a business calendar.
        boss.sign_in(&server, "admin", NEW_ADMIN_PASSWORD).await?;
        boss.click(&tid("nav-routing")).await?;
        boss.find(&tid("routing-pane-live")).await?;
        boss.click(&tid("routing-tab-calendars")).await?;
        boss.find(&tid("routing-pane-calendars")).await?;
        boss.click(&tid("routing-calendar-new")).await?;
        boss.find(&tid("routing-calendar-dialog")).await?;
        boss.fill(&tid("calendar-name"), CALENDAR).await?;
        boss.fill(&tid("calendar-zone-input"), "Mars/Base").await?;
        boss.click(&tid("dialog-submit")).await?;
        boss.text_contains(&tid("form-error"), "Mars/Base").await?;
        boss.fill(&tid("calendar-zone-input"), "Asia/Shanghai").await?;
        boss.fill(
            r#"[data-testid="calendar-day-0"] [data-testid="interval-end"]"#,
            "18:30",
        )
        .await?;
        click_centred(boss, &tid("calendar-copy-monday")).await?;
        click_centred(boss, r#"[data-testid="calendar-day-5"] [data-testid="calendar-interval-add"]"#).await?;
        boss.fill(
            r#"[data-testid="calendar-day-5"] [data-testid="interval-start"]"#,
            "10:00",
        )
        .await?;
        boss.fill(
            r#"[data-testid="calendar-day-5"] [data-testid="interval-end"]"#,
            "16:00",
        )
        .await?;
        boss.fill(&tid("calendar-holidays"), "2025-10-02, 2025-10-01\n2025-10-03")
            .await?;
        boss.fill(&tid("calendar-extra-workdays"), "2025-09-28").await?;
        boss.screenshot("lanes-01-calendar-dialog").await?;
        boss.click(&tid("dialog-submit")).await?;
        boss.gone(&tid("routing-calendar-dialog")).await?;
        let calendar_row = format!(r#"[data-testid="routing-calendar-row"][data-name="{CALENDAR}"]"#);
        boss.find(&calendar_row).await?;
        boss.text_contains(&format!("{calendar_row} {}", tid("calendar-hours")), "Mon–Fri 09:00–18:30")
            .await?;
        boss.screenshot("lanes-02-calendars").await?;
        let calendars = admin.json("/api/v1/routing/calendars").await;
        let calendar = calendars["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == CALENDAR)
            .cloned()
            .unwrap_or(Value::Null);
        let office = json!([[540, 1110]]);
        ensure!(
            calendar["time_zone"] == "Asia/Shanghai"
                && calendar["hours"]
                    == json!([office, office, office, office, office, [[600, 960]], []])
                && calendar["holidays"] == json!(["2025-10-01", "2025-10-02", "2025-10-03"])
                && calendar["extra_workdays"] == json!(["2025-09-28"]),
            "stored: {calendar}"
        );
        let calendar_id = calendar["id"].as_u64().unwrap();

        // Tech support answers first within 30 business minutes of that calendar.
        boss.click(&tid("routing-tab-lanes")).await?;
        boss.click(&format!("{} {}", lane_row("support"), tid("routing-lane-edit")))
            .await?;
        boss.find(&tid("routing-lane-dialog")).await?;
        boss.fill(&tid("lane-sla-first_response"), "30").await?;
        boss.select(&tid("lane-calendar"), &calendar_id.to_string())
            .await?;
        click_centred(boss, &tid("lane-action-add")).await?;
        let added = r#"[data-testid="lane-action"]:last-child"#;
        boss.select(&format!("{added} {}", tid("action-on")), "breached")
            .await?;
        boss.select(&format!("{added} {}", tid("action-clock")), "first_response")
            .await?;
        boss.select(&format!("{added} {}", tid("action-kind")), "escalate")
            .await?;
        boss.screenshot("lanes-03-lane-dialog").await?;
        boss.click(&tid("dialog-submit")).await?;
        boss.gone(&tid("routing-lane-dialog")).await?;
        boss.find(&format!(
            r#"{} {}[data-calendar="{calendar_id}"]"#,
            lane_row("support"),
            tid("lane-calendar-name")
        ))
        .await?;
        boss.screenshot("lanes-04-lanes").await?;
        let lanes = admin.json("/api/v1/routing/lanes").await;
        let support = lanes["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["key"] == "support")
            .cloned()
            .unwrap_or(Value::Null);
        ensure!(
            support["sla"]
                == json!({ "first_response_secs": 1800, "next_response_secs": 900, "resolution_secs": 86400 })
                && support["calendar_id"].as_u64() == Some(calendar_id)
                && support["escalate_to"] == 3
                && support["stages"].as_array().map(Vec::len) == Some(1)
                && support["types"].as_array().is_some_and(|t| t.contains(&json!("technical")))
                && support["sla_actions"].as_array().and_then(|a| a.last()).cloned()
                    == Some(json!({ "on": "breached", "clock": "first_response", "action": "escalate" })),
            "stored: {support}"
        );

        // The support agent goes online; the engineer goes into focus, in Chinese.
        helper.sign_in(&server, SUPPORT, CHANGED_PASSWORD).await?;
        helper.select(&tid("presence-switch"), "online").await?;
        helper
            .find(r#".presence-switch[data-presence="online"]"#)
            .await?;
        expert.sign_in(&server, ENGINEER, CHANGED_PASSWORD).await?;
        expert.select(&tid("lang-select"), "zh-CN").await?;
        expert.find(&tid("presence-switch")).await?;
        expert.select(&tid("presence-switch"), "focus").await?;
        expert
            .find(r#".presence-switch[data-presence="focus"]"#)
            .await?;
        expert.mark().await?;

        // A technical question goes to tech support.
        let conversation = ask(&server, channel_id, &secret, "e42", "Reboots", QUESTION).await;
        let card = format!(r#"{}[data-conversation="{conversation}"]"#, tid("offer-card"));
        helper.find_within(LIVE, &card).await?;
        helper
            .find(&format!(r#"{card} {}[data-type="technical"]"#, tid("offer-type")))
            .await?;
        helper.click(&format!("{card} {}", tid("offer-accept"))).await?;
        helper.gone(&card).await?;
        helper
            .find(&format!(r#"{}[data-lane="2"][data-escalated="false"]"#, tid("routing-lane")))
            .await?;
        helper
            .text_contains(&tid("routing-lane-name"), "Tech support")
            .await?;
        helper
            .find(&format!(r#"{}[data-kind="first_response"]"#, tid("routing-sla-clock")))
            .await?;
        helper.screenshot("lanes-05-support-conversation").await?;

        // The transfer dialog offers the colleague (the agent may read employees, not routing).
        helper.click(&tid("routing-transfer")).await?;
        helper.find(&tid("transfer-dialog")).await?;
        helper.click(&tid("transfer-target-person")).await?;
        helper
            .find(&format!(r#"{} option[value="{engineer_id}"]"#, tid("transfer-employee")))
            .await?;
        helper.screenshot("lanes-06-transfer-dialog").await?;
        helper.click(&tid("dialog-cancel")).await?;
        helper.gone(&tid("transfer-dialog")).await?;

        // The support agent escalates with a note; it stays theirs until R&D accepts.
        helper.click(&tid("routing-escalate")).await?;
        helper.find(&tid("escalate-dialog")).await?;
        helper.click(&tid("dialog-submit")).await?;
        helper.find(&tid("form-error")).await?;
        helper.fill(&tid("escalate-note"), NOTE).await?;
        helper.click(&tid("dialog-submit")).await?;
        helper.gone(&tid("escalate-dialog")).await?;
        let waiting = format!(r#"{}[data-kind="escalation"][data-lane="3"]"#, tid("routing-transfer-waiting"));
        helper.find(&waiting).await?;
        helper
            .text_contains(&format!("{waiting} {}", tid("handoff-note")), "gateway team")
            .await?;
        helper.find(&tid("routing-cancel-transfer")).await?;
        helper.screenshot("lanes-07-escalation-waiting").await?;

        // The engineer, in focus, is offered the escalation with the note, and accepts.
        expert.find_within(LIVE, &card).await?;
        expert.expect_same_document("the escalation offer").await?;
        expert
            .text_contains(
                &format!(r#"{card} {}[data-kind="escalation"]"#, tid("offer-handoff")),
                "升级",
            )
            .await?;
        expert
            .text_contains(&format!("{card} {}", tid("offer-note-text")), NOTE)
            .await?;
        expert
            .text_contains(&format!("{card} {}", tid("offer-handed-on-by")), SUPPORT)
            .await?;
        expert.screenshot("lanes-08-escalation-offer-zh").await?;
        expert.click(&format!("{card} {}", tid("offer-accept"))).await?;
        expert.gone(&card).await?;
        expert.find(&tid("conversation-subject")).await?;
        expert
            .find(&format!(r#"{}[data-lane="3"][data-escalated="true"]"#, tid("routing-lane")))
            .await?;
        let escalation = format!(
            r#"{}[data-kind="escalation"][data-outcome="accepted"]"#,
            tid("routing-handoff")
        );
        expert
            .text_contains(&format!("{escalation} {}", tid("handoff-note")), NOTE)
            .await?;
        expert
            .text_contains(&format!("{escalation} {}", tid("handoff-title")), "Tech support → R&D")
            .await?;
        expert
            .text_contains(&format!("{escalation} {}", tid("handoff-outcome")), "已接受")
            .await?;
        expert.find(&tid("routing-return")).await?;
        expert.text_contains(&tid("routing-card"), "升级与转接记录").await?;
        expert.text_contains(&tid("routing-card"), "首次响应").await?;
        expert.screenshot("lanes-09-escalated-conversation-zh").await?;
        let detail = engineer_session
            .json(&format!("/api/v1/conversations/{conversation}"))
            .await;
        ensure!(
            detail["conversation"]["assignee_id"].as_u64() == Some(engineer_id),
            "assigned to the engineer: {}",
            detail["conversation"]
        );
        let why = admin
            .json(&format!("/api/v1/conversations/{conversation}/routing"))
            .await;
        let escalations = &why["record"]["escalations"];
        ensure!(
            escalations[0]["note"] == NOTE
                && escalations[0]["by"].as_u64() == Some(support_id)
                && escalations[0]["previous_owner"].as_u64() == Some(support_id)
                && why["record"]["lane_id"] == 3,
            "recorded: {}",
            why["record"]
        );

        // A pre-sales question waits where nobody answers, with a 4-second target: the
        // supervisor's live view lists it at risk, and a toast says so.
        helper.select(&tid("presence-switch"), "offline").await?;
        helper
            .find(r#".presence-switch[data-presence="offline"]"#)
            .await?;
        let response = admin
            .send(
                reqwest::Method::PUT,
                "/api/v1/routing/lanes/1",
                Some(json!({
                    "key": "sales", "name": "Sales", "types": ["pre_sales"],
                    "required_skills": { "sales": 1 }, "escalate_to": 2,
                    "sla": { "first_response_secs": 4 }, "warn_at_percent": 50
                })),
            )
            .await;
        ensure!(response.status() == 200, "the sales lane: {}", response.text().await?);
        boss.click(&tid("routing-tab-live")).await?;
        boss.find(&tid("routing-sla-table")).await?;
        let waiting = ask(
            &server,
            channel_id,
            &secret,
            "seats",
            "Quote",
            "What does the enterprise plan cost, and is there a discount for 50 seats?",
        )
        .await;
        boss.find(&format!(
            r#"[data-testid="routing-sla-row"][data-conversation="{waiting}"][data-clock="first_response"]"#
        ))
        .await?;
        boss.find(&format!(r#"[data-testid="sla-toast"][data-conversation="{waiting}"]"#))
            .await?;
        boss.screenshot("lanes-10-sla-at-risk").await?;

        boss.expect_no_csp_violations().await?;
        helper.expect_no_csp_violations().await?;
        expert.expect_no_csp_violations().await?;
        Ok(())
    })
    .await;
}
