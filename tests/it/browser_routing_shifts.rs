//! Working hours and quiet hours in the console. Three employee agents answer chats; business
//! calendars come through the API: Shanghai office hours, one with no opening hours at all, and
//! an old rota. In the routing screen's employee dialog the administrator picks the old rota,
//! which the API deletes meanwhile, and a quiet-hours row 22:00–22:00: the console refuses the
//! row itself, then shows the server's reason for the calendar at the form; office hours with
//! quiet hours 22:00–07:00 are saved and read "Shanghai office hours · quiet 22:00–07:00" in
//! the list. The calendars tab lists who works to each calendar, and deleting one in use says
//! who. On the live tab an online agent working to the closed calendar is marked "Off shift" and
//! one quiet all day "Quiet hours". A new policy version takes an off-hours weight. In Chinese the
//! badges and the list speak Chinese.
//!
//! Needs Debian's `chromium` and `chromium-driver`. ALLHANDS_SCREENSHOT_DIR keeps screenshots.

use anyhow::ensure;
use serde_json::{Value, json};

use crate::browser_support::*;
use crate::common::*;

/// Works to office hours, with quiet hours at night (set in the console); stays offline.
const DAY: &str = "zheng.day";
/// Online, working to a calendar that is never open.
const NIGHT: &str = "lin.night";
/// Online, quiet all day.
const RESTING: &str = "he.rest";
const OFFICE: &str = "Shanghai office hours";
const CLOSED: &str = "Never open";
const RETIRED: &str = "Old rota";

fn employee_row(username: &str) -> String {
    format!(r#"[data-testid="routing-employee-row"][data-username="{username}"]"#)
}

fn live_row(id: u64) -> String {
    format!(r#"[data-testid="routing-agent-row"][data-id="{id}"]"#)
}

async fn calendar(admin: &Session, name: &str, hours: Value) -> u64 {
    let created = admin
        .create(
            "/api/v1/routing/calendars",
            json!({ "name": name, "time_zone": "Asia/Shanghai", "hours": hours }),
        )
        .await;
    created["id"].as_u64().expect("a calendar id")
}

async fn patch_agent(admin: &Session, id: u64, body: Value) {
    let response = admin
        .patch(&format!("/api/v1/routing/agents/{id}"), body)
        .await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
}

async fn go_online(session: &Session) {
    let response = session
        .send(
            reqwest::Method::PUT,
            "/api/v1/routing/me/presence",
            Some(json!({ "presence": "online" })),
        )
        .await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
}

async fn settings_of(admin: &Session, id: u64) -> Value {
    let agents = admin.json("/api/v1/routing/agents").await;
    agents["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["employee_id"].as_u64() == Some(id))
        .map(|a| a["settings"].clone())
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn working_hours_and_quiet_hours_are_set_in_the_console_and_marked_live() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let (_day_session, day_id) =
        crate::routing::routing_agent(&server, &admin, DAY, json!({ "support": 3 })).await;
    let (night_session, night_id) =
        crate::routing::routing_agent(&server, &admin, NIGHT, json!({ "support": 3 })).await;
    let (resting_session, resting_id) =
        crate::routing::routing_agent(&server, &admin, RESTING, json!({ "support": 3 })).await;
    let weekday = json!([[540, 1080]]);
    let office_id = calendar(
        &admin,
        OFFICE,
        json!([weekday, weekday, weekday, weekday, weekday, [], []]),
    )
    .await;
    let closed_id = calendar(&admin, CLOSED, json!([[], [], [], [], [], [], []])).await;
    let retired_id = calendar(
        &admin,
        RETIRED,
        json!([[], [], [], [], [], [[600, 900]], []]),
    )
    .await;
    patch_agent(&admin, night_id, json!({ "calendar_id": closed_id })).await;
    patch_agent(&admin, resting_id, json!({ "quiet_hours": [[0, 1440]] })).await;
    go_online(&night_session).await;
    go_online(&resting_session).await;

    run_in_browser(&server, "browser-routing-shifts", async |boss: &Page| {
        boss.sign_in(&server, "admin", NEW_ADMIN_PASSWORD).await?;
        boss.click(&tid("nav-routing")).await?;
        boss.find(&tid("routing-pane-live")).await?;
        boss.click(&tid("routing-tab-employees")).await?;
        let day_hours = format!("{} {}", employee_row(DAY), tid("employee-hours"));
        boss.text_contains(&day_hours, "Always working").await?;
        boss.text_contains(
            &format!("{} {}", employee_row(NIGHT), tid("employee-hours")),
            CLOSED,
        )
        .await?;

        // The old rota is picked while the API deletes it, with a quiet row that is no period.
        boss.click(&format!("{} {}", employee_row(DAY), tid("routing-employee-edit")))
            .await?;
        boss.find(&tid("routing-agent-dialog")).await?;
        boss.text_contains(&tid("agent-time-zone"), "Their time zone")
            .await?;
        boss.select(&tid("agent-calendar"), &retired_id.to_string())
            .await?;
        let deleted = admin
            .delete(&format!("/api/v1/routing/calendars/{retired_id}"))
            .await;
        ensure!(
            deleted.status().is_success(),
            "the old rota was not deleted: {}",
            deleted.status()
        );
        crate::browser_routing_lanes::click_centred(boss, &tid("quiet-add")).await?;
        boss.find(&tid("quiet-interval")).await?;
        boss.fill(&tid("quiet-start"), "22:00").await?;
        boss.fill(&tid("quiet-end"), "22:00").await?;
        boss.click(&tid("dialog-submit")).await?;
        boss.text_contains(&tid("form-error"), "starts and ends at the same time")
            .await?;
        boss.fill(&tid("quiet-end"), "07:00").await?;
        boss.text_contains(&tid("quiet-overnight"), "until the next morning")
            .await?;
        boss.click(&tid("dialog-submit")).await?;
        let error = boss.text_contains(&tid("form-error"), "calendar_id").await?;
        ensure!(
            error.contains(&format!("there is no calendar {retired_id}")),
            "the server's reason is shown: {error:?}"
        );
        ensure!(
            settings_of(&admin, day_id).await["calendar_id"].is_null(),
            "nothing was saved"
        );

        // Office hours with quiet hours overnight are saved and listed.
        boss.select(&tid("agent-calendar"), &office_id.to_string())
            .await?;
        boss.eval(
            "document.querySelector('[data-testid=\"agent-time-zone\"]').scrollIntoView({ block: 'center' });",
        )
        .await?;
        boss.screenshot("shifts-01-employee-dialog").await?;
        boss.click(&tid("dialog-submit")).await?;
        boss.gone(&tid("routing-agent-dialog")).await?;
        let listed = boss
            .text_contains(&day_hours, &format!("{OFFICE} · quiet 22:00–07:00"))
            .await?;
        ensure!(
            boss.attr(&day_hours, "data-calendar").await? == office_id.to_string(),
            "listed as {listed:?}"
        );
        boss.screenshot("shifts-02-employees").await?;
        let settings = settings_of(&admin, day_id).await;
        ensure!(
            settings["calendar_id"] == json!(office_id)
                && settings["quiet_hours"] == json!([[1320, 420]]),
            "stored: {settings}"
        );

        // The calendars tab says who works to each, and refuses to delete one in use by name.
        boss.click(&tid("routing-tab-calendars")).await?;
        let office_row = format!(r#"[data-testid="routing-calendar-row"][data-id="{office_id}"]"#);
        boss.text_contains(&format!("{office_row} {}", tid("calendar-employees")), DAY)
            .await?;
        boss.click(&format!("{office_row} {}", tid("routing-calendar-delete")))
            .await?;
        boss.click(&tid("confirm-ok")).await?;
        boss.text_contains(
            &tid("alert-message"),
            &format!("{DAY} works to this calendar"),
        )
        .await?;
        boss.screenshot("shifts-03-calendar-in-use").await?;
        boss.click(&tid("alert-ok")).await?;
        boss.gone(&tid("alert-dialog")).await?;
        boss.find(&office_row).await?;

        // Live: off shift and quiet hours beside the presence.
        boss.click(&tid("routing-tab-live")).await?;
        let night = live_row(night_id);
        let resting = live_row(resting_id);
        boss.find(&format!(
            r#"{night}[data-presence="online"][data-off-shift="true"][data-quiet="false"]"#
        ))
        .await?;
        boss.text_contains(&format!("{night} {}", tid("agent-off-shift")), "Off shift")
            .await?;
        boss.find(&format!(
            r#"{resting}[data-presence="online"][data-quiet="true"][data-off-shift="false"]"#
        ))
        .await?;
        boss.text_contains(&format!("{resting} {}", tid("agent-quiet")), "Quiet hours")
            .await?;
        boss.gone(&format!("{resting} {}", tid("agent-off-shift")))
            .await?;
        boss.screenshot("shifts-04-live").await?;

        // A new policy version weighs reaching someone outside their working hours.
        boss.click(&tid("routing-tab-policies")).await?;
        boss.click(&tid("routing-policy-new")).await?;
        boss.find(&tid("routing-policy-dialog")).await?;
        let shown = boss.value_of(&tid("policy-weight-off_hours")).await?;
        ensure!(shown == "2", "the active weight is shown: {shown:?}");
        boss.fill(&tid("policy-weight-off_hours"), "3.5").await?;
        boss.fill(&tid("policy-note"), "Spare people after hours").await?;
        boss.click(&tid("dialog-submit")).await?;
        boss.gone(&tid("routing-policy-dialog")).await?;
        boss.find(r#"[data-testid="routing-policy-row"][data-version="2"][data-active="true"] [data-term="off_hours"]"#)
            .await?;
        let policies = admin.json("/api/v1/routing/policies").await;
        let newest = &policies["items"].as_array().unwrap().last().unwrap()["policy"];
        ensure!(
            newest["version"] == 2 && newest["weights"]["off_hours"] == 3.5,
            "stored: {newest}"
        );

        // In Chinese.
        boss.select(&tid("lang-select"), "zh-CN").await?;
        boss.text_contains(&tid("routing-tab-policies"), "策略").await?;
        boss.text_contains(
            r#"[data-testid="routing-policy-row"][data-version="2"] [data-term="off_hours"]"#,
            "非工作时间接入",
        )
        .await?;
        boss.click(&tid("routing-tab-live")).await?;
        boss.text_contains(&format!("{night} {}", tid("agent-off-shift")), "非工作时间")
            .await?;
        boss.text_contains(&format!("{resting} {}", tid("agent-quiet")), "免打扰")
            .await?;
        boss.screenshot("shifts-05-live-zh").await?;
        boss.click(&tid("routing-tab-employees")).await?;
        boss.text_contains(&day_hours, &format!("{OFFICE} · 免打扰 22:00–07:00"))
            .await?;
        boss.text_contains(&format!("{} {}", employee_row(RESTING), tid("employee-hours")), "始终在岗")
            .await?;
        boss.screenshot("shifts-06-employees-zh").await?;

        boss.expect_no_csp_violations().await?;
        Ok(())
    })
    .await;
}
