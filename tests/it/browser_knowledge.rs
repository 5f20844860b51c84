//! The Knowledge section and the public help centre, in three browsers. The administrator
//! imports a small bundle (a broken file first: the server's reason shows at the field) with a
//! kettle, its lid and the lid's known issue, a public and an internal article, and a synonym
//! set; the synonyms tab refuses a one-word set at the field, then saves. A writer (employee
//! agent) working in Chinese starts a draft with a live Markdown preview, relates it to the known
//! issue picked by name, meets a save conflict (someone else saved the draft meanwhile) shown
//! in a banner, reloads and saves, and submits. A supervisor finds it in the review queue and
//! asks for changes with a note; the writer sees the note, edits and submits again; the
//! supervisor publishes it. The writer's search finds it with the passage and the question's
//! words marked; the kettle's graph shows its component and known issue as SVG nodes (the
//! article one step further), labelled in Chinese, and a node opens that entity. Finally the
//! administrator signs out and the public /help page finds the public article without signing
//! in, renders it, keeps the internal one out, and speaks Chinese on request.
//!
//! Needs Debian's `chromium` and `chromium-driver`. ALLHANDS_SCREENSHOT_DIR keeps screenshots.

use anyhow::{Context, ensure};
use fantoccini::Locator;
use serde_json::{Value, json};

use crate::browser_support::*;
use crate::common::*;
use crate::matrix::employee_with_role;

const WRITER: &str = "wang.writer";
const LEAD: &str = "zhao.lead";
const TITLE: &str = "水壶盖子合不上怎么办";
const NOTE: &str = "说明一下白醋的比例";

fn bundle() -> Value {
    json!({
        "format": "allhands-knowledge",
        "entities": [
            { "key": "product:kettle", "kind": "product", "name": "Aurora Kettle", "aliases": ["极光水壶", "kettle"] },
            { "key": "component:lid", "kind": "component", "name": "Kettle lid", "aliases": ["壶盖"] },
            { "key": "issue:lid-stuck", "kind": "known_issue", "name": "Lid does not close", "aliases": ["盖子合不上"] },
        ],
        "relations": [
            { "from": "product:kettle", "type": "has_component", "to": "component:lid" },
            { "from": "component:lid", "type": "has_known_issue", "to": "issue:lid-stuck" },
        ],
        "articles": [
            {
                "title": "Returning an item",
                "body": "## How to return\n\nPack the item and print the **return label** from your order page. Returns are free within 30 days.\n\n- Keep the receipt\n- Drop the parcel at any post office",
                "lang": "en", "visibility": "public", "tags": ["returns"], "entities": ["product:kettle"],
            },
            {
                "title": "Descaling kettles in the workshop",
                "body": "Staff only: descale returned kettles with citric acid before testing the thermostat.",
                "lang": "en", "visibility": "internal", "tags": ["workshop"],
            },
        ],
        "synonyms": [["退货", "退回"]],
    })
}

/// Sets a form control's value as typing would (an `input` event follows).
async fn set_value(page: &Page, css: &str, value: &str) -> anyhow::Result<()> {
    page.find(css).await?;
    page.client
        .execute(
            "const el = document.querySelector(arguments[0]); el.value = arguments[1];\
             el.dispatchEvent(new Event('input', { bubbles: true }));",
            vec![json!(css), json!(value)],
        )
        .await?;
    Ok(())
}

/// Leaves an article or entity page by its back link, scrolled to the top first so that the
/// sticky top bar does not cover the link.
async fn back(page: &Page) -> anyhow::Result<()> {
    page.find(&tid("kb-back")).await?;
    page.eval("window.scrollTo(0, 0);").await?;
    page.click(&tid("kb-back")).await
}

/// How many elements match.
async fn count(page: &Page, css: &str) -> anyhow::Result<usize> {
    Ok(page.client.find_all(Locator::Css(css)).await?.len())
}

fn body_with(extra: &str) -> String {
    format!(
        "## 原因\n壶盖卡扣积了**水垢**，盖子就合不上。\n\n## 处理\n用白醋{extra}浸泡卡扣十分钟，再用软布擦干，盖子即可正常合上。\n\n- 不要用钢丝球\n- 处理后烧一壶清水倒掉\n\n| 材料 | 用量 |\n|---|--:|\n| 白醋 | 50 ml |\n\n参见[说明](javascript:alert(1))和<b>原文</b>。"
    )
}

#[tokio::test]
async fn knowledge_articles_are_written_reviewed_published_found_and_shown_in_the_help_centre() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let writer = employee_with_role(&server, &admin, WRITER, "employee_agent").await;
    employee_with_role(&server, &admin, LEAD, "supervisor").await;
    let files = tempfile::tempdir().unwrap();
    let good = files.path().join("kettle.json");
    std::fs::write(&good, serde_json::to_vec(&bundle()).unwrap()).unwrap();
    let broken = files.path().join("broken.json");
    std::fs::write(&broken, b"{not json").unwrap();

    run_in_browsers(&server, "browser-knowledge", 3, async |pages: &[Page]| {
        let (boss, author, lead) = (&pages[0], &pages[1], &pages[2]);

        // The administrator imports the bundle, a broken file first.
        boss.sign_in(&server, "admin", NEW_ADMIN_PASSWORD).await?;
        boss.click(&tid("nav-knowledge")).await?;
        boss.find(&tid("kb-pane-articles")).await?;
        boss.click(&tid("kb-tab-transfer")).await?;
        boss.find(&tid("kb-pane-transfer")).await?;
        boss.find(&tid("kb-import-file"))
            .await?
            .send_keys(&broken.display().to_string())
            .await?;
        boss.click(&tid("kb-import-submit")).await?;
        boss.text_contains(
            &format!(r#"{}[data-field="file"]"#, tid("kb-field-error")),
            "JSON",
        )
        .await?;
        boss.find(&tid("toast-error")).await?;
        boss.find(&tid("kb-import-file"))
            .await?
            .send_keys(&good.display().to_string())
            .await?;
        boss.click(&tid("kb-import-publish")).await?;
        boss.click(&tid("kb-import-submit")).await?;
        boss.text_contains(&tid("kb-report-articles_created"), "2")
            .await?;
        boss.text_contains(&tid("kb-report-articles_published"), "2")
            .await?;
        boss.text_contains(&tid("kb-report-entities_created"), "3")
            .await?;
        // Two between entities, one from an article to what it is about.
        boss.text_contains(&tid("kb-report-relations_created"), "3")
            .await?;
        boss.gone(&tid("kb-field-error")).await?;
        boss.screenshot("knowledge-01-import").await?;

        // Synonyms: a set of one word is refused at the field, then two sets are saved.
        boss.click(&tid("kb-tab-synonyms")).await?;
        eventually("the imported synonym set", || async {
            Ok(boss
                .value_of(&tid("kb-synonyms"))
                .await?
                .contains("退货, 退回")
                .then_some(()))
        })
        .await?;
        set_value(boss, &tid("kb-synonyms"), "退货, 退回\n只有一个").await?;
        boss.click(&tid("kb-synonyms-save")).await?;
        boss.text_contains(
            &format!(r#"{}[data-field="sets"]"#, tid("kb-field-error")),
            "只有一个",
        )
        .await?;
        set_value(boss, &tid("kb-synonyms"), "退货, 退回\n水壶、kettle、烧水壶").await?;
        boss.click(&tid("kb-synonyms-save")).await?;
        boss.text_contains(&tid("kb-synonym-count"), "2").await?;
        let sets = admin.json("/api/v1/knowledge/synonyms").await;
        ensure!(
            sets["items"].as_array().map(Vec::len) == Some(2)
                && sets["items"][1]["terms"] == json!(["水壶", "kettle", "烧水壶"]),
            "stored: {sets}"
        );
        boss.click(&tid("kb-tab-articles")).await?;
        boss.text_contains(&tid("kb-article-count"), "2").await?;
        boss.find(r#"[data-testid="kb-article-row"][data-title="Returning an item"] [data-testid="kb-status"][data-status="published"]"#)
            .await?;

        // The writer, in Chinese, starts a draft with a live preview.
        author.sign_in(&server, WRITER, CHANGED_PASSWORD).await?;
        author.select(&tid("lang-select"), "zh-CN").await?;
        author.text_contains(&tid("nav-knowledge"), "知识库").await?;
        author.click(&tid("nav-knowledge")).await?;
        author.text_contains(&tid("kb-tab-search"), "搜索").await?;
        ensure!(count(author, &tid("kb-tab-review")).await? == 0, "a writer has no review queue");
        author.click(&tid("kb-new-article")).await?;
        author.find(&tid("kb-editor")).await?;
        author.fill(&tid("kb-draft-title"), TITLE).await?;
        author.fill(&tid("kb-draft-tags"), "售后、水壶").await?;
        set_value(author, &tid("kb-draft-body"), &body_with("")).await?;
        author
            .text_contains(&format!("{} h3", tid("kb-draft-preview")), "原因")
            .await?;
        author
            .text_contains(&format!("{} strong", tid("kb-draft-preview")), "水垢")
            .await?;
        author
            .find(&format!("{} table td.align-right", tid("kb-draft-preview")))
            .await?;
        author.screenshot("knowledge-02-new-draft-zh").await?;
        author.click(&tid("kb-draft-create")).await?;
        author
            .find(&format!(r#"{}[data-state="editing"]"#, tid("kb-draft-state")))
            .await?;
        let url = author.client.current_url().await?;
        let id: u64 = url
            .path()
            .rsplit('/')
            .next()
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("an article address: {url}"))?;
        let stored = writer.json(&format!("/api/v1/knowledge/articles/{id}")).await;
        ensure!(
            stored["draft"]["content"]["lang"] == "zh"
                && stored["draft"]["content"]["tags"] == json!(["售后", "水壶"])
                && stored["status"] == "draft",
            "stored: {stored}"
        );

        // It is about the known issue, picked by its Chinese alias; text typed meanwhile stays.
        set_value(author, &tid("kb-draft-body"), &body_with("和水")).await?;
        author.click(&tid("kb-relation-add")).await?;
        author.find(&tid("kb-relation-dialog")).await?;
        author.fill(&tid("kb-entity-search"), "盖子").await?;
        author
            .click(r#"[data-testid="kb-entity-option"][data-name="Lid does not close"]"#)
            .await?;
        author.text_contains(&tid("kb-entity-picked"), "Lid does not close").await?;
        author.click(&tid("dialog-submit")).await?;
        author.gone(&tid("kb-relation-dialog")).await?;
        author
            .text_contains(
                r#"[data-testid="kb-relation"][data-kind="about"] [data-testid="kb-relation-link"]"#,
                "Lid does not close",
            )
            .await?;
        ensure!(
            author.value_of(&tid("kb-draft-body")).await? == body_with("和水"),
            "unsaved text survives adding a relation"
        );

        // Someone else saves the draft meanwhile: the writer's save is a conflict, not an
        // overwrite; after reloading, the save goes through.
        let response = admin
            .send(
                reqwest::Method::PUT,
                &format!("/api/v1/knowledge/articles/{id}/draft"),
                Some(json!({ "title": TITLE, "body": body_with("（管理员改过）"), "tags": ["售后"] })),
            )
            .await;
        ensure!(response.status() == 200, "the administrator's save: {}", response.text().await?);
        set_value(author, &tid("kb-draft-body"), &body_with("和水")).await?;
        author.click(&tid("kb-draft-save")).await?;
        author.text_contains(&tid("kb-draft-conflict"), "其他人修改了这份草稿").await?;
        author.screenshot("knowledge-03-conflict-zh").await?;
        author.click(&tid("kb-draft-reload")).await?;
        author.click(&tid("confirm-ok")).await?;
        eventually("the administrator's draft in the editor", || async {
            Ok(author
                .value_of(&tid("kb-draft-body"))
                .await?
                .contains("管理员改过")
                .then_some(()))
        })
        .await?;
        ensure!(
            author
                .eval(r#"return document.querySelector('[data-testid="kb-draft-conflict"]').hidden;"#)
                .await?
                == json!(true),
            "the conflict banner goes once the draft is reloaded"
        );
        set_value(author, &tid("kb-draft-body"), &body_with("和水")).await?;
        author.click(&tid("kb-draft-save")).await?;
        author.find(&tid("toast-ok")).await?;
        author.click(&tid("kb-draft-submit")).await?;
        author
            .find(&format!(r#"{}[data-state="in_review"]"#, tid("kb-draft-state")))
            .await?;
        let stored = writer.json(&format!("/api/v1/knowledge/articles/{id}")).await;
        ensure!(
            stored["draft"]["content"]["body"] == body_with("和水")
                && stored["draft"]["state"] == "in_review",
            "stored: {stored}"
        );

        // The supervisor asks for changes from the review queue.
        lead.sign_in(&server, LEAD, CHANGED_PASSWORD).await?;
        lead.click(&tid("nav-knowledge")).await?;
        lead.click(&tid("kb-tab-review")).await?;
        let queued = format!(r#"[data-testid="kb-article-row"][data-id="{id}"]"#);
        lead.click(&format!("{queued} {}", tid("kb-article-link"))).await?;
        lead.text_contains(&tid("kb-article-title"), TITLE).await?;
        lead.click(&tid("kb-request-changes")).await?;
        lead.find(&tid("kb-request-changes-dialog")).await?;
        lead.fill(&tid("kb-review-note-input"), NOTE).await?;
        lead.click(&tid("dialog-submit")).await?;
        lead.gone(&tid("kb-request-changes-dialog")).await?;
        lead.find(&format!(r#"{}[data-state="changes_requested"]"#, tid("kb-draft-state")))
            .await?;

        // The writer sees the note, edits and submits again.
        author.client.refresh().await?;
        author.text_contains(&tid("kb-review-note-text"), NOTE).await?;
        author.text_contains(&tid("kb-review-note"), "审核意见").await?;
        author.screenshot("knowledge-04-review-note-zh").await?;
        set_value(author, &tid("kb-draft-body"), &body_with("和水一比一")).await?;
        author.click(&tid("kb-draft-submit")).await?;
        author
            .find(&format!(r#"{}[data-state="in_review"]"#, tid("kb-draft-state")))
            .await?;

        // The supervisor publishes it from the queue.
        back(lead).await?;
        lead.click(&tid("kb-tab-review")).await?;
        lead.click(&format!("{queued} {}", tid("kb-article-link"))).await?;
        lead.click(&tid("kb-publish")).await?;
        lead.find(&format!(r#"{}[data-status="published"]"#, tid("kb-status")))
            .await?;
        lead.text_contains(&tid("kb-version"), "v1").await?;
        lead.text_contains(&format!("{} h3", tid("kb-article-body")), "原因").await?;
        lead.text_contains(&tid("kb-article-body"), "白醋和水一比一").await?;
        lead.find(&format!("{} li", tid("kb-article-body"))).await?;
        lead.find(&tid("kb-version-row")).await?;
        lead.screenshot("knowledge-05-published").await?;
        // Raw HTML stays text and a javascript: link is no link.
        lead.text_contains(&tid("kb-article-body"), "<b>原文</b>").await?;
        ensure!(
            count(lead, &format!("{} b, {} a", tid("kb-article-body"), tid("kb-article-body"))).await? == 0,
            "the article's HTML and unsafe link must not become elements"
        );
        // The published version in its dialog.
        lead.click(&tid("kb-version-view")).await?;
        lead.text_contains(&tid("kb-version-body"), "白醋和水一比一").await?;
        lead.click(&tid("dialog-close")).await?;
        lead.gone(&tid("kb-version-dialog")).await?;
        // A review date in the past makes it overdue in the list.
        set_value(lead, &tid("kb-review-due"), "2020-01-31").await?;
        lead.click(&tid("kb-owner-save")).await?;
        lead.find(&format!("{}.overdue", tid("kb-meta-review"))).await?;
        back(lead).await?;
        lead.click(&tid("kb-filter-overdue")).await?;
        lead.find(&format!(r#"[data-testid="kb-article-row"][data-id="{id}"]"#)).await?;
        lead.text_contains(&tid("kb-article-count"), "1").await?;

        // The writer finds it in search with the passage, the question's words marked.
        back(author).await?;
        author.click(&tid("kb-tab-search")).await?;
        author.fill(&tid("kb-search-input"), "水壶的盖子关不上").await?;
        author.click(&tid("kb-search-submit")).await?;
        let answer = format!(r#"[data-testid="kb-answer"][data-id="{id}"]"#);
        author.text_contains(&format!("{answer} {}", tid("kb-answer-title")), TITLE).await?;
        author
            .text_contains(&format!("{answer} {}", tid("kb-answer-passage")), "水垢")
            .await?;
        author
            .text_contains(&format!("{answer} {} mark", tid("kb-answer-passage")), "盖子")
            .await?;
        author.text_contains(&format!("{answer} {}", tid("kb-answer-score")), "得分").await?;
        author.screenshot("knowledge-06-search-zh").await?;
        author.click(&format!("{answer} {}", tid("kb-answer-title"))).await?;
        author.find(&format!(r#"{}[data-status="published"]"#, tid("kb-status"))).await?;

        // The kettle's neighbourhood as a graph, in Chinese; a node opens its entity.
        back(author).await?;
        author.click(&tid("kb-tab-entities")).await?;
        author.fill(&tid("kb-entity-filter-q"), "Aurora").await?;
        author
            .click(r#"[data-testid="kb-entity-row"][data-name="Aurora Kettle"] [data-testid="kb-entity-link"]"#)
            .await?;
        author.text_contains(&tid("kb-entity-title"), "Aurora Kettle").await?;
        let node = |kind: &str| format!(r#"[data-testid="kb-graph-node"][data-entity-kind="{kind}"]"#);
        author.find(&format!("{} svg", tid("kb-graph"))).await?;
        author.find(&node("component")).await?;
        author.find(&node("known_issue")).await?;
        author
            .find(r#"[data-testid="kb-graph-node"][data-kind="article"]"#)
            .await?;
        author
            .text_contains(r#"[data-testid="kb-graph-edge-label"][data-kind="has_component"]"#, "包含部件")
            .await?;
        let article_node = format!(r#"[data-testid="kb-graph-node"][data-kind="article"][data-id="{id}"]"#);
        ensure!(count(author, &article_node).await? == 0, "the new article is three steps away");
        author.select(&tid("kb-graph-depth"), "3").await?;
        author.find(&article_node).await?;
        ensure!(
            author.attr(&article_node, "data-ring").await? == "3",
            "the article sits on the third ring"
        );
        ensure!(count(author, &tid("kb-graph-node")).await? == 5, "kettle, lid, issue and two articles");
        author
            .eval(r#"document.querySelector('[data-testid="kb-graph"]').scrollIntoView();"#)
            .await?;
        author.screenshot("knowledge-07-graph-zh").await?;
        author.click(&node("component")).await?;
        author.text_contains(&tid("kb-entity-title"), "Kettle lid").await?;
        author.find(&format!("{}.center", node("component"))).await?;
        ensure!(
            count(author, &format!(r#"{}[role="link"]"#, node("component"))).await? == 0,
            "the centre node is not a link"
        );

        // The administrator adds an entity (a bad key is refused at the field), relates the
        // kettle to it, and exports the knowledge base.
        boss.click(&tid("kb-tab-entities")).await?;
        boss.click(&tid("kb-entity-new")).await?;
        boss.find(&tid("kb-entity-dialog")).await?;
        boss.select(&tid("kb-entity-kind"), "feature").await?;
        boss.fill(&tid("kb-entity-name"), "Keep warm").await?;
        boss.fill(&tid("kb-entity-aliases"), "保温、warm").await?;
        boss.fill(&tid("kb-entity-key"), "bad key!").await?;
        boss.click(&tid("dialog-submit")).await?;
        boss.find(&format!(r#"{}[data-field="key"]"#, tid("kb-field-error"))).await?;
        boss.fill(&tid("kb-entity-key"), "feature:keep-warm").await?;
        boss.click(&tid("dialog-submit")).await?;
        boss.gone(&tid("kb-entity-dialog")).await?;
        boss.text_contains(&tid("kb-entity-title"), "Keep warm").await?;
        boss.text_contains(&tid("kb-entity-aliases-view"), "保温").await?;
        boss.click(&tid("kb-relation-add")).await?;
        boss.find(&tid("kb-relation-dialog")).await?;
        boss.select(&tid("kb-relation-kind"), "has_feature").await?;
        boss.select(&tid("kb-relation-direction"), "in").await?;
        boss.fill(&tid("kb-entity-search"), "极光").await?;
        boss.click(r#"[data-testid="kb-entity-option"][data-name="Aurora Kettle"]"#).await?;
        boss.click(&tid("dialog-submit")).await?;
        boss.gone(&tid("kb-relation-dialog")).await?;
        boss.text_contains(
            r#"[data-testid="kb-relation"][data-kind="has_feature"] [data-testid="kb-relation-link"]"#,
            "Aurora Kettle",
        )
        .await?;
        boss.find(r#"[data-testid="kb-graph-node"][data-entity-kind="product"]"#).await?;
        let features = admin.json("/api/v1/knowledge/entities?kind=feature").await;
        ensure!(
            features["items"][0]["key"] == "feature:keep-warm"
                && features["items"][0]["aliases"] == json!(["保温", "warm"]),
            "stored: {features}"
        );
        back(boss).await?;
        boss.click(&tid("kb-tab-transfer")).await?;
        boss.click(&tid("kb-export-json")).await?;
        boss.text_contains(&tid("toast-ok"), ".json").await?;

        // Without signing in, the help centre finds the public article and renders it.
        boss.click(&tid("account-menu")).await?;
        boss.click(&tid("menu-logout")).await?;
        boss.find(&tid("login-form")).await?;
        boss.client.goto(&server.url("/help")).await?;
        boss.find(&tid("help-search-input")).await?;
        boss.watch_csp().await?;
        boss.fill(&tid("help-search-input"), "how do I return an item?").await?;
        boss.click(&tid("help-search-submit")).await?;
        boss.text_contains(&tid("help-answer-title"), "Returning an item").await?;
        boss.text_contains(&tid("help-answer-passage"), "return label").await?;
        boss.find(&format!("{} mark", tid("help-answer-passage"))).await?;
        boss.screenshot("knowledge-08-help-search").await?;
        boss.click(&tid("help-answer-title")).await?;
        boss.text_contains(&tid("help-article-title"), "Returning an item").await?;
        boss.text_contains(&format!("{} strong", tid("help-article-body")), "return label").await?;
        boss.find(&format!("{} li", tid("help-article-body"))).await?;
        ensure!(
            boss.client.current_url().await?.path().starts_with("/help/articles/"),
            "the article has its own address"
        );
        // A reload of the article's address serves the help page again.
        boss.client.refresh().await?;
        boss.text_contains(&tid("help-article-title"), "Returning an item").await?;
        boss.watch_csp().await?;
        // The internal article is neither found nor shown.
        boss.click(&tid("help-back")).await?;
        boss.fill(&tid("help-search-input"), "descale kettles citric acid workshop").await?;
        boss.click(&tid("help-search-submit")).await?;
        boss.find(&tid("help-results")).await?;
        let shown = eventually("the help centre's answers", || async {
            let titles = boss
                .eval(
                    "const r = document.querySelector('[data-testid=\"help-results\"]');\
                     return r && r.querySelector('[data-testid=\"help-answer\"], [data-testid=\"help-no-answers\"]')\
                       ? r.textContent : null;",
                )
                .await?;
            Ok(titles.as_str().map(str::to_string))
        })
        .await?;
        ensure!(!shown.contains("Descaling"), "an internal article in the help centre: {shown}");
        let internal = admin.json("/api/v1/knowledge/articles?q=Descaling").await;
        let internal_id = internal["items"][0]["id"].as_u64().context("the internal article")?;
        boss.client
            .goto(&server.url(&format!("/help/articles/{internal_id}")))
            .await?;
        boss.text_contains(&tid("help-error"), "not public").await?;
        boss.watch_csp().await?;
        boss.select(&tid("help-lang"), "zh-CN").await?;
        boss.text_contains(&tid("help-error"), "未公开").await?;
        boss.click(&tid("help-home")).await?;
        boss.text_contains("h1", "有什么可以帮您").await?;
        boss.fill(&tid("help-search-input"), "退货").await?;
        boss.click(&tid("help-search-submit")).await?;
        boss.find(&tid("help-results")).await?;
        boss.screenshot("knowledge-09-help-zh").await?;

        boss.expect_no_csp_violations().await?;
        author.expect_no_csp_violations().await?;
        lead.expect_no_csp_violations().await?;
        Ok(())
    })
    .await;
}
