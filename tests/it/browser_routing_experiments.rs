//! Routing experiments and replays in the console. The administrator adds two policy versions
//! through the API, opens Routing → Experiments and declares an experiment in its dialog: the
//! same version as control and candidate first shows the server's reason at the candidate field.
//! They start it, and starting a second one while it runs shows why not; the list shows the
//! running arm, the live tab a banner with it, and the policies tab which versions take part.
//! The report has one row per metric with "—" where there is no data yet; they stop the
//! experiment, replay the last week through the candidate version beside the active one (a bad
//! window is refused first) and see the recorded, active and candidate rows with the replay's
//! notes. In Chinese the tab, the report and the replay speak Chinese.
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
const NAME: &str = "Skills weight";
const OTHER: &str = "Fairness later";

fn experiment_row(name: &str) -> String {
    format!(r#"[data-testid="routing-experiment-row"][data-name="{name}"]"#)
}

fn metric(name: &str, cell: &str) -> String {
    format!(
        r#"[data-testid="experiment-metric-row"][data-metric="{name}"] {}"#,
        tid(cell)
    )
}

#[tokio::test]
async fn an_experiment_is_declared_started_reported_and_stopped_and_a_replay_compares_policies_in_the_console()
 {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    crate::routing::add_skill_policies(&admin).await;

    run_in_browser(&server, "browser-routing-experiments", async |boss: &Page| {
        boss.sign_in(&server, "admin", NEW_ADMIN_PASSWORD).await?;
        boss.click(&tid("nav-routing")).await?;
        boss.find(&tid("routing-pane-live")).await?;
        boss.click(&tid("routing-tab-experiments")).await?;
        boss.find(&tid("routing-pane-experiments")).await?;
        boss.text_contains(&tid("routing-experiment-table"), "No experiment yet")
            .await?;

        // The dialog starts from the active version as control; the same version as candidate
        // is refused by the server, at the candidate field.
        boss.click(r#"[data-testid="routing-experiment-new"]:not([disabled])"#)
            .await?;
        boss.find(&tid("routing-experiment-dialog")).await?;
        ensure!(
            boss.value_of(&tid("experiment-control")).await? == "3"
                && boss.value_of(&tid("experiment-candidate")).await? == "2",
            "control defaults to the active v3, candidate to v2"
        );
        boss.fill(&tid("experiment-name"), NAME).await?;
        boss.select(&tid("experiment-candidate"), "3").await?;
        boss.click(&tid("dialog-submit")).await?;
        boss.text_contains(&tid("form-error"), "Candidate version")
            .await?;
        boss.text_contains(
            r#"[data-testid="experiment-field-error"][data-field="candidate"]"#,
            "another policy version than the control",
        )
        .await?;
        ensure!(
            boss.attr(&tid("experiment-candidate"), "aria-invalid").await? == "true",
            "the candidate field is marked"
        );
        boss.screenshot("experiments-01-field-error").await?;
        boss.select(&tid("experiment-candidate"), "2").await?;
        boss.fill(&tid("experiment-slice"), "30").await?;
        boss.fill(&tid("experiment-duration"), "24").await?;
        boss.fill(&tid("experiment-note"), "Does ignoring skills cost us?")
            .await?;
        boss.click(&tid("dialog-submit")).await?;
        boss.gone(&tid("routing-experiment-dialog")).await?;
        boss.find(&format!(r#"{}[data-state="draft"]"#, experiment_row(NAME)))
            .await?;
        let listed = admin.json("/api/v1/routing/experiments").await;
        let created = listed["items"][0].clone();
        ensure!(
            created["name"] == NAME
                && created["control"] == 3
                && created["candidate"] == 2
                && created["slice_minutes"] == 30
                && created["duration_hours"] == 24
                && created["service_level_seconds"] == 60
                && created["state"] == "draft",
            "stored: {created}"
        );
        let id = created["id"].as_u64().unwrap();
        let other = admin
            .create(
                "/api/v1/routing/experiments",
                json!({ "name": OTHER, "control": 3, "candidate": 1 }),
            )
            .await;
        ensure!(other["state"] == "draft", "{other}");

        // Started, it runs one arm; a second experiment cannot start beside it.
        boss.click(&format!("{} {}", experiment_row(NAME), tid("routing-experiment-start")))
            .await?;
        boss.find(&tid("confirm-dialog")).await?;
        boss.screenshot("experiments-02-start-confirm").await?;
        boss.click(&tid("confirm-ok")).await?;
        let running = format!(r#"{}[data-state="running"]"#, experiment_row(NAME));
        let arm = boss
            .attr(&format!("{running} {}", tid("experiment-arm")), "data-arm")
            .await?;
        let version = if arm == "control" { "v3" } else { "v2" };
        let arm_label = if arm == "control" { "Control" } else { "Candidate" };
        boss.text_contains(
            &format!("{running} {}", tid("experiment-arm")),
            &format!("{arm_label} arm ({version}) until"),
        )
        .await?;
        let now = admin.json("/api/v1/routing/experiments").await;
        let stored = now["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["id"].as_u64() == Some(id))
            .cloned()
            .unwrap_or(Value::Null);
        ensure!(
            stored["state"] == "running" && stored["current_arm"] == arm.as_str(),
            "stored: {stored}"
        );
        boss.find(&format!("{running} {}", tid("routing-experiment-stop")))
            .await?;
        boss.screenshot("experiments-03-running").await?;
        boss.click(&format!("{} {}", experiment_row(OTHER), tid("routing-experiment-start")))
            .await?;
        boss.click(&tid("confirm-ok")).await?;
        boss.text_contains(&tid("alert-message"), "one experiment runs at a time")
            .await?;
        boss.text_contains(&tid("alert-message"), NAME).await?;
        boss.screenshot("experiments-04-one-at-a-time").await?;
        boss.click(&tid("alert-ok")).await?;
        boss.gone(&tid("alert-dialog")).await?;
        boss.find(&format!(r#"{}[data-state="draft"]"#, experiment_row(OTHER)))
            .await?;

        // The live tab says which arm routes, and the policies tab which versions take part.
        boss.click(&tid("routing-tab-live")).await?;
        let banner = format!(
            r#"{}[data-experiment="{id}"][data-arm="{arm}"]"#,
            tid("routing-experiment-banner")
        );
        boss.find_within(LIVE, &banner).await?;
        boss.text_contains(&banner, &format!("Experiment “{NAME}” is running: {arm_label} arm ({version}) until"))
            .await?;
        boss.text_contains(&tid("routing-summary"), &format!("Policy {version}"))
            .await?;
        boss.screenshot("experiments-05-live-banner").await?;
        boss.click(&tid("routing-tab-policies")).await?;
        boss.find(r#"[data-testid="routing-policy-row"][data-version="2"] [data-testid="policy-experiment-arm"][data-arm="candidate"]"#)
            .await?;
        boss.find(r#"[data-testid="routing-policy-row"][data-version="3"] [data-testid="policy-experiment-arm"][data-arm="control"]"#)
            .await?;
        boss.text_contains(&tid("routing-policy-experiment"), NAME)
            .await?;
        boss.click(&tid("routing-tab-live")).await?;
        boss.click(&format!("{banner} {}", tid("routing-experiment-banner-open")))
            .await?;
        boss.find(&tid("routing-pane-experiments")).await?;

        // The report: both arms without conversations yet, so every figure is "—".
        boss.click(&format!("{running} {}", tid("routing-experiment-report")))
            .await?;
        let report = format!(r#"{}[data-id="{id}"][data-loading="false"]"#, tid("experiment-report"));
        boss.find(&report).await?;
        boss.text_contains(&tid("experiment-report-title"), NAME).await?;
        boss.find(r#"[data-testid="report-arm"][data-arm="control"][data-version="3"][data-conversations="0"]"#)
            .await?;
        boss.find(r#"[data-testid="report-arm"][data-arm="candidate"][data-version="2"][data-conversations="0"]"#)
            .await?;
        let rows = boss
            .eval(r#"return document.querySelectorAll('[data-testid="experiment-metric-row"]').length;"#)
            .await?;
        ensure!(rows == json!(8), "one row per metric: {rows}");
        for name in ["service_level", "average_wait_s", "csat", "fairness_gini"] {
            for cell in ["metric-control", "metric-candidate", "metric-difference"] {
                let text = boss.find(&metric(name, cell)).await?.text().await?;
                ensure!(text.trim() == "—", "{name} {cell}: {text:?}");
            }
            boss.find(&format!(r#"{}[data-verdict="unknown"]"#, metric(name, "metric-verdict")))
                .await?;
        }
        boss.text_contains(
            r#"[data-testid="experiment-metric-row"][data-metric="csat"]"#,
            "no ratings yet",
        )
        .await?;
        boss.text_contains(
            r#"[data-testid="experiment-metric-row"][data-metric="average_wait_s"]"#,
            "lower is better",
        )
        .await?;
        ensure!(
            boss.eval("return location.search;").await?
                == json!(format!("?tab=experiments&report={id}")),
            "the open report is kept in the address"
        );
        boss.screenshot("experiments-06-report").await?;

        // Stopped, it is finished, and the report says so.
        boss.click(&format!("{running} {}", tid("routing-experiment-stop")))
            .await?;
        boss.find(&tid("confirm-dialog")).await?;
        boss.click(&tid("confirm-ok")).await?;
        boss.find(&format!(r#"{}[data-state="finished"]"#, experiment_row(NAME)))
            .await?;
        boss.find(&format!(r#"{report}[data-state="finished"]"#)).await?;
        boss.text_contains(&format!("{} {}", experiment_row(NAME), tid("experiment-state")), "Finished")
            .await?;
        let stopped = admin
            .json(&format!("/api/v1/routing/experiments/{id}/report"))
            .await;
        ensure!(
            stopped["experiment"]["state"] == "finished"
                && stopped["experiment"]["stopped_at"].is_u64(),
            "stored: {}",
            stopped["experiment"]
        );
        boss.screenshot("experiments-07-stopped").await?;

        // A replay of the last week: the candidate version beside the active one.
        boss.find(&tid("routing-replay")).await?;
        ensure!(
            boss.value_of(&tid("replay-version")).await? == "2",
            "the replay offers the latest experiment's candidate"
        );
        boss.fill(&tid("replay-days"), "0").await?;
        boss.click(&tid("replay-run")).await?;
        boss.text_contains(&tid("replay-error"), "Days to replay")
            .await?;
        boss.fill(&tid("replay-days"), "7").await?;
        boss.select(&tid("replay-version"), "2").await?;
        boss.click(&tid("replay-run")).await?;
        boss.find(r#"[data-testid="replay-row"][data-run="recorded"]"#)
            .await?;
        boss.find(r#"[data-testid="replay-row"][data-run="active"][data-version="3"]"#)
            .await?;
        boss.find(r#"[data-testid="replay-row"][data-run="candidate"][data-version="2"]"#)
            .await?;
        let runs = boss
            .eval(r#"return [...document.querySelectorAll('[data-testid="replay-row"]')].map((r) => r.dataset.run);"#)
            .await?;
        ensure!(
            runs == json!(["recorded", "active", "candidate"]),
            "three runs: {runs}"
        );
        let settled = boss
            .eval(
                r#"return [document.querySelector('[data-testid="replay-error"]').hidden,
                           document.querySelector('[data-testid="replay-busy"]').hidden,
                           document.querySelector('[data-testid="replay-run"]').disabled];"#,
            )
            .await?;
        ensure!(
            settled == json!([true, true, false]),
            "the earlier error and the busy line are gone, the button usable: {settled}"
        );
        boss.text_contains(&tid("replay-summary"), "0 conversations")
            .await?;
        boss.text_contains(&tid("replay-notes"), "first-contact resolution is measured")
            .await?;
        boss.screenshot("experiments-08-replay").await?;

        // In Chinese: the tab, the open report and the replay.
        boss.select(&tid("lang-select"), "zh-CN").await?;
        boss.text_contains(&tid("routing-tab-experiments"), "实验").await?;
        boss.find(&format!(r#"{}[data-id="{id}"][data-loading="false"]"#, tid("experiment-report")))
            .await?;
        boss.text_contains(&tid("experiment-report-table"), "服务水平")
            .await?;
        boss.text_contains(&tid("experiment-report-table"), "差异（候选组 − 对照组）")
            .await?;
        boss.text_contains(&format!("{} {}", experiment_row(NAME), tid("experiment-state")), "已结束")
            .await?;
        boss.text_contains(&tid("routing-replay"), "回放").await?;
        boss.text_contains(&tid("replay-run"), "开始回放").await?;
        boss.screenshot("experiments-09-zh").await?;

        boss.expect_no_csp_violations().await?;
        Ok(())
    })
    .await;
}
