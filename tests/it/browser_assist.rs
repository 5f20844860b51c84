//! Assist in the console, in two browsers. An agent opens a customer's refund question: the
//! suggestions panel offers the published article, one click inserts its passage into the reply
//! box; a blocked word typed in the box is highlighted (severity "block") and the reply is
//! refused with the server's message, the text kept; a warned word asks for confirmation naming
//! it, then the reply is sent and carries its sensitive-word badge, and the inserted article
//! learned the question from the feedback. The supervisor, in Chinese, gets a toast when the
//! customer turns angry, sees the emotion badge in the inbox list, opens the conversation from
//! the toast and finds the badge in its header; the Assist screen lists the dictionary and shows
//! the server's field error at the field.
//!
//! Needs Debian's `chromium` and `chromium-driver`. ALLHANDS_SCREENSHOT_DIR keeps screenshots.

use std::time::Duration;

use anyhow::ensure;
use fantoccini::Locator;
use serde_json::{Value, json};

use crate::browser_support::*;
use crate::common::*;

/// Under the console's 10-second fallback refresh: what shows within this came live.
const LIVE: Duration = Duration::from_secs(9);
const AGENT: &str = "li.lei";
const QUESTION: &str = "请问退款什么时候能到账";
const ANGRY: &str =
    "都三天了还没发货！！你们这什么垃圾服务，再不处理我就投诉到消协，还要找媒体曝光！";
const DICTIONARY: &str = "客服用语";

fn suggestion(key: &str) -> String {
    format!(r#"[data-testid="suggestion"][data-key="{key}"]"#)
}

#[tokio::test]
async fn the_reply_box_suggests_highlights_and_confirms_and_the_supervisor_is_alerted() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    admin
        .create(
            "/api/v1/assist/dictionaries",
            json!({
                "name": DICTIONARY,
                "words": [
                    { "word": "傻逼", "category": "abuse", "severity": "block" },
                    { "word": "保证退款", "category": "promise", "severity": "warn" },
                    { "word": "媒体曝光", "category": "escalation", "severity": "flag" },
                ],
            }),
        )
        .await;
    let refunds = json!({
        "title": "退款到账时间",
        "body": "## 到账时间\n退款审核通过后，款项会在 3 到 5 个工作日内原路退回到您的支付账户。\n\n## 查询\n在「我的订单」里可以查看退款进度。",
    });
    let article_id = admin.publish_article(refunds).await;
    let agent_session =
        crate::matrix::employee_with_role(&server, &admin, AGENT, "specialist_agent").await;
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
    let says = async |key: &str, text: &str| -> Value {
        let body = json!({
            "type": "message", "message_id": key,
            "customer": { "external_id": "user-7", "name": "王女士" },
            "text": text,
        });
        let response = post_signed(&server, channel_id, &secret, key, &body).await;
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    };
    let first = says("m1", QUESTION).await;
    let conversation = first["conversation_id"].as_u64().unwrap();
    let question_id = admin
        .json(&format!("/api/v1/conversations/{conversation}"))
        .await["messages"][0]["id"]
        .as_u64()
        .unwrap();
    admin
        .create(
            &format!("/api/v1/conversations/{conversation}/assign"),
            json!({ "assignee_id": agent_id }),
        )
        .await;
    let article_key = format!("article:{article_id}");

    run_in_browsers(&server, "browser-assist", 2, async |pages: &[Page]| {
        let (agent, boss) = (&pages[0], &pages[1]);

        // The agent opens the conversation: the article is suggested before anything is typed.
        agent.sign_in(&server, AGENT, CHANGED_PASSWORD).await?;
        agent
            .client
            .goto(&server.url(&format!("/inbox/{conversation}")))
            .await?;
        agent.watch_csp().await?;
        agent.find(&tid("reply-text")).await?;
        agent.find(&suggestion(&article_key)).await?;

        // Typing asks again with the draft; the article stays, linked to its page.
        agent.fill(&tid("reply-text"), "您好，").await?;
        let link = agent
            .attr(
                &format!("{} {}", suggestion(&article_key), tid("suggestion-article-link")),
                "href",
            )
            .await?;
        ensure!(
            link.ends_with(&format!("/knowledge/articles/{article_id}")),
            "{link}"
        );
        agent
            .text_contains(
                &format!("{} {}", suggestion(&article_key), tid("suggestion-kind")),
                "Article",
            )
            .await?;
        agent.screenshot("assist-01-suggestions").await?;

        // One click inserts the passage at the caret, after what was typed.
        agent
            .click(&format!("{} {}", suggestion(&article_key), tid("suggestion-insert")))
            .await?;
        let typed = agent.value_of(&tid("reply-text")).await?;
        ensure!(
            typed.starts_with("您好，") && typed.contains("原路退回"),
            "the passage is inserted after the greeting: {typed:?}"
        );

        // A blocked word is highlighted where it stands, with its severity and category.
        agent
            .fill(&tid("reply-text"), "你这个傻逼问题我不管")
            .await?;
        let mark = r#"[data-testid="sensitive-highlight"][data-severity="block"]"#;
        eventually("the blocked word's highlight", || async {
            Ok(agent.client.find(Locator::Css(mark)).await.ok())
        })
        .await?;
        let found = agent
            .eval(&format!(
                "const m = document.querySelector('{}'); return [m.textContent, m.dataset.word, m.dataset.category, m.title, m.dataset.start, m.dataset.end];",
                mark.replace('\'', "\\'")
            ))
            .await?;
        ensure!(
            found == json!(["傻逼", "傻逼", "abuse", "“傻逼” · abuse · Block", "3", "5"]),
            "highlight: {found}"
        );
        agent
            .find(r#"[data-testid="sensitive-verdict"][data-verdict="block"]"#)
            .await?;
        agent
            .text_contains(
                r#"[data-testid="sensitive-word"][data-severity="block"]"#,
                "傻逼 · abuse",
            )
            .await?;
        agent.screenshot("assist-02-blocked-word").await?;
        // Sending it is refused with the server's message at the box; the text stays.
        agent.click(&tid("reply-send")).await?;
        agent.text_contains(&tid("reply-error"), "傻逼").await?;
        ensure!(
            agent.value_of(&tid("reply-text")).await? == "你这个傻逼问题我不管",
            "the refused reply stays in the box"
        );

        // A warned word: highlighted as such, and sending asks to confirm, naming it.
        let reply = "我们保证退款，请放心";
        agent.fill(&tid("reply-text"), reply).await?;
        agent
            .find(r#"[data-testid="sensitive-highlight"][data-severity="warn"]"#)
            .await?;
        agent
            .find(r#"[data-testid="sensitive-verdict"][data-verdict="warn"]"#)
            .await?;
        agent.gone(r#"[data-testid="sensitive-highlight"][data-severity="block"]"#).await?;
        agent.click(&tid("reply-send")).await?;
        agent
            .text_contains(&tid("confirm-dialog"), "保证退款")
            .await?;
        agent.screenshot("assist-03-confirm").await?;
        agent.click(&tid("confirm-ok")).await?;
        agent.gone(&tid("confirm-dialog")).await?;
        let sent = r#"[data-testid="message"][data-direction="outbound"]"#;
        agent.text_contains(sent, reply).await?;
        agent
            .text_contains(&format!("{sent} {}", tid("message-sensitive")), "保证退款")
            .await?;
        eventually("the reply box to empty", || async {
            Ok(agent.value_of(&tid("reply-text")).await?.is_empty().then_some(()))
        })
        .await?;
        ensure!(
            agent.find_within(Duration::from_millis(200), &tid("reply-error")).await.is_err(),
            "no error is left once the reply is sent"
        );
        // The feedback told the server the article was inserted: it learned the question.
        eventually("the article to learn the question", || async {
            let detail = admin
                .json(&format!("/api/v1/knowledge/articles/{article_id}"))
                .await;
            Ok((detail["learned_questions"] == json!(1)).then_some(()))
        })
        .await?;

        // The supervisor, in Chinese, is on the inbox when the customer turns angry.
        boss.sign_in(&server, "admin", NEW_ADMIN_PASSWORD).await?;
        boss.watch_csp().await?;
        boss.select(&tid("lang-select"), "zh-CN").await?;
        boss.text_contains(&tid("nav-assist"), "智能辅助").await?;
        boss.click(&tid("nav-inbox")).await?;
        boss.click(&tid("inbox-view-all")).await?;
        boss.find(&format!(
            r#"[data-testid="conversation-row"][data-id="{conversation}"]"#
        ))
        .await?;
        boss.mark().await?;
        says("m2", ANGRY).await;
        let toast = format!(
            r#"[data-testid="assist-toast"][data-kind="angry_customer"][data-conversation="{conversation}"]"#
        );
        let text = eventually_within(LIVE, "the angry-customer toast", || async {
            match boss.client.find(Locator::Css(&toast)).await {
                Ok(element) => Ok(Some(element.text().await?)),
                Err(_) => Ok(None),
            }
        })
        .await?;
        ensure!(
            text.contains("客户情绪愤怒") && text.contains("打开会话"),
            "the toast in Chinese: {text:?}"
        );
        boss.expect_same_document("the toast").await?;
        // The list's row shows the anger too.
        boss.find(&format!(
            r#"[data-testid="conversation-row"][data-id="{conversation}"] [data-testid="conversation-emotion"][data-emotion="angry"]"#
        ))
        .await?;
        boss.screenshot("assist-04-toast").await?;
        // The owner got their hint as well, on the conversation they have open.
        agent
            .find_within(
                LIVE,
                r#"[data-testid="assist-toast"][data-kind="angry_customer"][data-frame="assist.hint"]"#,
            )
            .await?;
        agent
            .find_within(
                LIVE,
                r#"[data-testid="conversation-emotion"][data-emotion="angry"]"#,
            )
            .await?;
        agent.expect_no_csp_violations().await?;

        // The toast opens the conversation: the header and the message say "angry".
        boss.click(&toast).await?;
        boss.find(&tid("reply-text")).await?;
        ensure!(
            boss.eval("return location.pathname;").await? == json!(format!("/inbox/{conversation}")),
            "the toast opened the conversation"
        );
        boss.text_contains(
            &format!("{} {}", tid("conversation-header"), tid("conversation-emotion")),
            "愤怒",
        )
        .await?;
        boss.find(r#"[data-testid="message"][data-direction="inbound"] [data-testid="message-emotion"][data-emotion="angry"]"#)
            .await?;
        // The first, calm message has no badge.
        let calm = boss
            .eval(&format!(
                "return document.querySelectorAll('[data-testid=\"message\"][data-id=\"{}\"] [data-testid=\"message-emotion\"]').length;",
                question_id
            ))
            .await?;
        ensure!(calm == json!(0), "calm shows nothing: {calm}");

        // The Assist screen lists the dictionary, and puts the server's field error at the field.
        boss.click(&tid("nav-assist")).await?;
        let row = format!(r#"[data-testid="dictionary-row"][data-name="{DICTIONARY}"]"#);
        boss.text_contains(&format!("{row} {}", tid("dictionary-words")), "3 个词")
            .await?;
        // Its words open as a table, one row per word with its severity.
        boss.click(&format!("{row} {}", tid("dictionary-edit")))
            .await?;
        boss.find(&tid("dictionary-dialog")).await?;
        let words = boss
            .eval(
                "return [...document.querySelectorAll('[data-testid=\"word-row\"]')].map((r) =>\
                 [r.querySelector('[data-testid=\"word-text\"]').value, r.querySelector('[data-testid=\"word-severity\"]').value]);",
            )
            .await?;
        ensure!(
            words == json!([["傻逼", "block"], ["保证退款", "warn"], ["媒体曝光", "flag"]]),
            "the dictionary's words: {words}"
        );
        boss.click(&tid("dialog-cancel")).await?;
        boss.gone(&tid("dictionary-dialog")).await?;
        boss.click(&tid("dictionary-new")).await?;
        boss.find(&tid("dictionary-dialog")).await?;
        boss.fill(&tid("dictionary-name-input"), "测试").await?;
        boss.click(&tid("word-mode-lines")).await?;
        boss.fill(&tid("word-lines"), &format!("{},privacy,block", "长".repeat(61)))
            .await?;
        boss.click(&tid("dialog-submit")).await?;
        boss.text_contains(&tid("assist-field-error"), "60").await?;
        boss.screenshot("assist-05-field-error").await?;
        boss.click(&tid("dialog-cancel")).await?;
        boss.gone(&tid("dictionary-dialog")).await?;
        boss.expect_no_csp_violations().await?;
        Ok(())
    })
    .await;
}
