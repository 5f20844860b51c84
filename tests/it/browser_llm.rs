//! AI drafts in the console, against the stub model server of `llm.rs`: "Draft with AI" fills
//! the reply box with the model's text (its citation taken out) and links the cited article;
//! in Chinese the buttons read "AI 起草" / "润色", and a model server's unusable answer is
//! shown under them in Chinese, the employee's text kept.
//!
//! Needs Debian's `chromium` and `chromium-driver`. ALLHANDS_SCREENSHOT_DIR keeps screenshots.

use anyhow::ensure;

use crate::browser_support::*;
use crate::common::*;
use crate::llm::{Behaviour, StubLlm, llm_env, refund_question};

#[tokio::test]
async fn draft_with_ai_fills_the_reply_box_and_shows_the_cited_article() {
    let stub = StubLlm::start(Behaviour::Answer(String::new())).await;
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("llm-key");
    std::fs::write(&key_file, "sk-test-key").unwrap();
    let env = llm_env(&stub, &key_file);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let server = TestServer::start_with(&env).await;
    let admin = server.admin().await;
    let (article_id, conversation) = refund_question(&server, &admin).await;
    let drafted = "您好，退款审核通过后会在 3 到 5 个工作日内原路退回。";
    stub.set(Behaviour::Answer(format!("{drafted}[{article_id}]")));

    run_in_browser(&server, "browser-llm", async |page: &Page| {
        page.sign_in(&server, "admin", NEW_ADMIN_PASSWORD).await?;
        page.client
            .goto(&server.url(&format!("/inbox/{conversation}")))
            .await?;
        page.watch_csp().await?;
        page.text_contains(&tid("ai-draft"), "Draft with AI")
            .await?;
        page.find(&tid("ai-polish")).await?;
        page.click(&tid("ai-draft")).await?;
        eventually("the draft in the reply box", || async {
            let value = page.value_of(&tid("reply-text")).await?;
            Ok((value == drafted).then_some(()))
        })
        .await?;
        let source = format!(r#"[data-testid="ai-source"][data-id="{article_id}"]"#);
        page.text_contains(&source, "退款到账时间").await?;
        page.text_contains(&tid("ai-sources"), "stub-model").await?;
        page.screenshot("llm-01-draft").await?;
        // Not sent: the conversation still holds only the customer's question.
        let detail = admin
            .json(&format!("/api/v1/conversations/{conversation}"))
            .await;
        ensure!(
            detail["messages"].as_array().unwrap().len() == 1,
            "{detail}"
        );

        // In Chinese; an unusable answer is told there, and the text stays for editing.
        page.select(&tid("lang-select"), "zh-CN").await?;
        page.text_contains(&tid("ai-draft"), "AI 起草").await?;
        page.text_contains(&tid("ai-polish"), "润色").await?;
        stub.set(Behaviour::Garbage);
        page.fill(&tid("reply-text"), "退款3到5天到").await?;
        page.click(&tid("ai-polish")).await?;
        page.text_contains(&tid("ai-error"), "AI 模型服务器返回的结果无法使用")
            .await?;
        ensure!(
            page.value_of(&tid("reply-text")).await? == "退款3到5天到",
            "the employee's text is kept"
        );
        page.screenshot("llm-02-error-zh").await?;
        page.expect_no_csp_violations().await?;
        Ok(())
    })
    .await;
}
