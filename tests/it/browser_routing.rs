//! Routing in the console, in two browsers. The administrator gives an agent the skill "billing"
//! in the routing screen's employee dialog (a bad skill name first shows the server's reason).
//! A customer's billing question arrives through a signed API channel while nobody is online and
//! waits in the live queue; the agent goes online with the switch in the top bar and the offer
//! pops up at once, with the question, its type, a countdown and why they were chosen, while the
//! supervisor sees it among the open offers. The agent accepts, lands on the conversation and
//! finds its routing panel: the type, the decision with its score terms, and a correction of the
//! urgency. The supervisor's live view shows the agent online carrying one chat, and a new policy
//! version becomes the active one. The agent's console in Chinese labels the panel and the switch
//! in Chinese.
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
const AGENT: &str = "wu.fang";
const CUSTOMER: &str = "赵敏 Zhao Min";
const QUESTION: &str = "我上个月的发票金额不对，被重复扣费了两次，请帮我退款";

fn agent_row(username: &str) -> String {
    format!(r#"[data-testid="routing-employee-row"][data-username="{username}"]"#)
}

#[tokio::test]
async fn an_agent_gets_a_billing_question_offered_accepts_it_and_sees_why() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let agent_session =
        crate::matrix::employee_with_role(&server, &admin, AGENT, "employee_agent").await;
    let agent_id = agent_session.json("/api/v1/auth/session").await["employee"]["id"]
        .as_u64()
        .unwrap();
    let channel = admin
        .create(
            "/api/v1/channels",
            json!({ "kind": "api", "name": "App", "settings": { "webhook_url": "http://127.0.0.1:9/hook" } }),
        )
        .await;
    let channel_id = channel["channel"]["id"].as_u64().unwrap();
    let secret = channel["signing_secret"].as_str().unwrap().to_string();

    run_in_browsers(&server, "browser-routing", 2, async |pages: &[Page]| {
        let (boss, agent) = (&pages[0], &pages[1]);

        // The administrator gives the agent the skill and Chinese in the routing screen.
        boss.sign_in(&server, "admin", NEW_ADMIN_PASSWORD).await?;
        boss.click(&tid("nav-routing")).await?;
        boss.find(&tid("routing-pane-live")).await?;
        boss.click(&tid("routing-tab-employees")).await?;
        boss.click(&format!("{} {}", agent_row(AGENT), tid("routing-employee-edit")))
            .await?;
        boss.find(&tid("routing-agent-dialog")).await?;
        boss.click(&tid("skill-add")).await?;
        boss.fill(&tid("skill-name"), "bad name!").await?;
        boss.click(&tid("dialog-submit")).await?;
        let error = boss.text_contains(&tid("form-error"), "skills").await?;
        ensure!(
            error.contains("bad name!"),
            "the server's reason is shown: {error:?}"
        );
        boss.fill(&tid("skill-name"), "billing").await?;
        boss.select(&tid("skill-level"), "5").await?;
        let chinese = boss.find(&tid("agent-language-zh")).await?;
        if !chinese.is_selected().await? {
            chinese.click().await?;
        }
        boss.screenshot("routing-01-employee-dialog").await?;
        boss.click(&tid("dialog-submit")).await?;
        boss.gone(&tid("routing-agent-dialog")).await?;
        boss.find(&format!(
            r#"{} [data-skill="billing"][data-level="5"]"#,
            agent_row(AGENT)
        ))
        .await?;
        boss.screenshot("routing-01b-employees").await?;
        let agents = admin.json("/api/v1/routing/agents").await;
        let settings = agents["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["employee_id"].as_u64() == Some(agent_id))
            .unwrap()["settings"]
            .clone();
        ensure!(
            settings["skills"] == json!({ "billing": 5 })
                && settings["languages"]
                    .as_array()
                    .unwrap()
                    .contains(&json!("zh")),
            "stored: {settings}"
        );

        // The agent signs in, still offline.
        agent.sign_in(&server, AGENT, CHANGED_PASSWORD).await?;
        agent.find(&tid("presence-switch")).await?;
        agent
            .find(r#".presence-switch[data-presence="offline"]"#)
            .await?;
        agent.mark().await?;

        // A customer asks about a double charge; with nobody online it waits in line.
        let response = post_signed(
            &server,
            channel_id,
            &secret,
            "q-1",
            &json!({ "type": "message", "message_id": "q-1",
                     "customer": { "external_id": "zhao.min", "name": CUSTOMER },
                     "subject": "Invoice", "text": QUESTION }),
        )
        .await;
        ensure!(response.status() == 200, "the question was refused");
        let answer: Value = response.json().await?;
        let conversation = answer["conversation_id"].as_u64().unwrap();
        boss.click(&tid("routing-tab-live")).await?;
        let queued = format!(
            r#"[data-testid="routing-queue-row"][data-conversation="{conversation}"][data-position="1"]"#
        );
        boss.find(&queued).await?;
        boss.screenshot("routing-02a-queue").await?;

        // The agent goes online with the switch in the top bar: the offer pops up at once.
        agent.select(&tid("presence-switch"), "online").await?;
        agent
            .find(r#".presence-switch[data-presence="online"]"#)
            .await?;
        let card = format!(
            r#"{}[data-conversation="{conversation}"]"#,
            tid("offer-card")
        );
        agent.find_within(LIVE, &card).await?;
        agent.expect_same_document("the offer").await?;
        let mine = agent_session.json("/api/v1/routing/me").await;
        ensure!(
            mine["settings"]["presence"] == "online",
            "the agent is {}",
            mine["settings"]["presence"]
        );
        agent
            .find(&format!(r#"{card} {}[data-type="billing"]"#, tid("offer-type")))
            .await?;
        agent
            .text_contains(&format!("{card} {}", tid("offer-question")), "重复扣费")
            .await?;
        agent
            .text_contains(&format!("{card} {}", tid("offer-customer")), CUSTOMER)
            .await?;
        agent
            .text_contains(&format!("{card} {}", tid("offer-countdown")), "Expires in")
            .await?;
        agent
            .text_contains(&format!("{card} {}", tid("offer-why")), "Skill fit")
            .await?;
        agent.screenshot("routing-02-offer").await?;

        // The supervisor sees the offer waiting for the agent's answer.
        boss.find(&format!(
            r#"[data-testid="routing-offer-row"][data-conversation="{conversation}"][data-agent="{agent_id}"]"#
        ))
        .await?;
        boss.gone(&queued).await?;
        boss.screenshot("routing-02b-offered").await?;

        // Accepting opens the conversation, now the agent's.
        agent
            .click(&format!("{card} {}", tid("offer-accept")))
            .await?;
        agent.gone(&card).await?;
        agent.find(&tid("conversation-subject")).await?;
        let path = agent.eval("return location.pathname;").await?;
        ensure!(
            path == json!(format!("/inbox/{conversation}")),
            "the agent is at {path}"
        );
        agent
            .find(&format!(r#"{}[data-type="billing"]"#, tid("routing-type")))
            .await?;
        let decision = format!(
            r#"{}[data-employee="{agent_id}"][data-outcome="accepted"]"#,
            tid("routing-decision")
        );
        agent.find(&decision).await?;
        agent
            .text_contains(&format!("{decision} {}", tid("decision-employee")), AGENT)
            .await?;
        agent
            .find(&format!(
                r#"{decision} {}[data-name="skill_fit"]"#,
                tid("decision-term")
            ))
            .await?;
        let detail = agent_session
            .json(&format!("/api/v1/conversations/{conversation}"))
            .await;
        ensure!(
            detail["conversation"]["assignee_id"].as_u64() == Some(agent_id),
            "assigned to the agent: {}",
            detail["conversation"]
        );

        // The agent corrects the urgency.
        agent.select(&tid("relabel-urgency"), "high").await?;
        agent.click(&tid("relabel-save")).await?;
        agent
            .find(&format!(r#"{}[data-urgency="high"]"#, tid("routing-urgency")))
            .await?;
        agent.find(&tid("routing-urgency-corrected")).await?;
        agent.screenshot("routing-03-conversation-panel").await?;

        // The administrator sees the agent online with one chat.
        boss.find(&format!(
            r#"[data-testid="routing-agent-row"][data-id="{agent_id}"][data-presence="online"] {}[data-chat="1"]"#,
            tid("agent-load")
        ))
        .await?;
        boss.screenshot("routing-04-live").await?;

        // A new policy version becomes the active one.
        boss.click(&tid("routing-tab-policies")).await?;
        boss.find(r#"[data-testid="routing-policy-row"][data-version="1"][data-active="true"]"#)
            .await?;
        boss.click(&tid("routing-policy-new")).await?;
        boss.find(&tid("routing-policy-dialog")).await?;
        boss.fill(&tid("policy-timeout-chat"), "45").await?;
        boss.fill(&tid("policy-note"), "Longer chat offers").await?;
        boss.click(&tid("dialog-submit")).await?;
        boss.gone(&tid("routing-policy-dialog")).await?;
        boss.find(r#"[data-testid="routing-policy-row"][data-version="2"][data-active="true"]"#)
            .await?;
        boss.screenshot("routing-06-policies").await?;
        let policies = admin.json("/api/v1/routing/policies").await;
        let newest = &policies["items"].as_array().unwrap().last().unwrap()["policy"];
        ensure!(
            newest["offer_timeout_ms"]["chat"] == 45_000 && newest["version"] == 2,
            "stored: {newest}"
        );

        // In Chinese, the panel and the switch speak Chinese.
        agent.select(&tid("lang-select"), "zh-CN").await?;
        agent
            .text_contains(&tid("routing-card"), "分配原因")
            .await?;
        agent
            .text_contains(&format!("{decision} {}", tid("decision-outcome")), "已接受")
            .await?;
        let online = agent
            .eval(
                "const s = document.querySelector('[data-testid=\"presence-switch\"]');\
                 return s.options[s.selectedIndex].text;",
            )
            .await?;
        ensure!(online == json!("在线"), "the switch reads {online}");
        agent.screenshot("routing-05-conversation-zh").await?;

        boss.expect_no_csp_violations().await?;
        agent.expect_no_csp_violations().await?;
        Ok(())
    })
    .await;
}
