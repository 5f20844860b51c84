//! The knowledge base through the real server: import of the shipped evaluation set, search in
//! Chinese and English, the draft → review → publish cycle with versions, visibility, the graph,
//! the public help centre, export and re-import, and the index rebuilt after a restart.

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::*;
use crate::matrix::employee_with_role;

fn lines(name: &str) -> Vec<Value> {
    let path = format!("{}/tests/data/knowledge/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The evaluation set as an import bundle; the first five articles of each language public.
fn eval_bundle() -> Value {
    let mut articles = Vec::new();
    for lang in ["zh", "en"] {
        for (i, mut article) in lines(&format!("articles.{lang}.jsonl"))
            .into_iter()
            .enumerate()
        {
            if i < 5 {
                article["visibility"] = json!("public");
            }
            articles.push(article);
        }
    }
    json!({
        "format": "allhands-knowledge",
        "entities": lines("entities.jsonl"),
        "relations": lines("relations.jsonl"),
        "articles": articles,
        "synonyms": [["退货", "退回", "退掉"], ["refund", "money back"]],
    })
}

async fn upload(session: &Session, path: &str, bytes: Vec<u8>) -> reqwest::Response {
    session
        .client
        .post(format!("{}{path}", session.base))
        .header("X-CSRF-Token", &session.csrf)
        .header("Content-Type", "application/octet-stream")
        .body(bytes)
        .send()
        .await
        .unwrap()
}

async fn put(session: &Session, path: &str, body: Value) -> reqwest::Response {
    session.send(Method::PUT, path, Some(body)).await
}

async fn search(session: &Session, q: &str) -> Vec<Value> {
    let encoded: String = form_urlencoded::byte_serialize(q.as_bytes()).collect();
    session
        .json(&format!("/api/v1/knowledge/search?q={encoded}&limit=3"))
        .await["answers"]
        .as_array()
        .unwrap()
        .clone()
}

fn titles(answers: &[Value]) -> Vec<String> {
    answers
        .iter()
        .map(|a| a["title"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn imported_articles_are_found_in_chinese_and_english_and_survive_a_restart() {
    let mut server = TestServer::start().await;
    let admin = server.admin().await;
    let bundle = serde_json::to_vec(&eval_bundle()).unwrap();
    let response = upload(
        &admin,
        "/api/v1/knowledge/import?filename=eval.json&publish=true",
        bundle.clone(),
    )
    .await;
    assert_eq!(response.status(), 200);
    let report: Value = response.json().await.unwrap();
    assert_eq!(report["articles_created"], 160, "{report}");
    assert_eq!(report["articles_published"], 160);
    assert_eq!(report["entities_created"], 35);
    // The graph's relations, and each article's links to what it is about.
    let about: usize = lines("articles.zh.jsonl")
        .iter()
        .chain(lines("articles.en.jsonl").iter())
        .map(|a| a["entities"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(report["relations_created"], 58 + about, "{report}");

    // Importing the graph again updates the entities instead of doubling them.
    let graph_only =
        json!({ "entities": lines("entities.jsonl"), "relations": lines("relations.jsonl") });
    let again: Value = upload(
        &admin,
        "/api/v1/knowledge/import?filename=graph.json",
        serde_json::to_vec(&graph_only).unwrap(),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(again["entities_updated"], 35, "{again}");
    assert_eq!(again["relations_existing"], 58, "{again}");

    let zh = search(&admin, "怎么查快递到哪了").await;
    assert!(!zh.is_empty());
    assert_eq!(zh[0]["lang"], "zh");
    assert!(
        titles(&zh).iter().any(|t| t.contains("物流")),
        "{:?}",
        titles(&zh)
    );
    assert!(!zh[0]["passage"].as_str().unwrap().is_empty());
    let en = search(&admin, "where can I track my parcel?").await;
    assert_eq!(en[0]["lang"], "en");
    assert!(
        titles(&en).iter().any(|t| t.contains("Tracking")),
        "{:?}",
        titles(&en)
    );

    // A question naming a product and a symptom is led along the graph to the known issue;
    // the answer shows the path.
    let issue = search(&admin, "摄像头升级以后晚上画面一直闪").await;
    let with_path = issue
        .iter()
        .find(|a| a["path"].as_array().is_some_and(|p| !p.is_empty()))
        .unwrap_or_else(|| panic!("no answer came through the graph: {issue:?}"));
    assert_eq!(with_path["path"][0]["step"], "entity", "{with_path}");
    assert!(
        with_path["title"].as_str().unwrap().contains("闪烁"),
        "{with_path}"
    );

    // The public help centre answers without signing in, with public articles only.
    let anonymous = client();
    let help: Value = anonymous
        .get(server.url("/api/v1/help/search?q=tracking%20my%20order"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let answers = help["answers"].as_array().unwrap();
    assert!(!answers.is_empty(), "{help}");
    assert!(
        answers.iter().all(|a| a["visibility"] == "public"),
        "{help}"
    );
    let id = answers[0]["article_id"].as_u64().unwrap();
    let article: Value = anonymous
        .get(server.url(&format!("/api/v1/help/articles/{id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(article["body"].as_str().unwrap().len() > 50);
    // An internal article is not public.
    let internal = admin
        .json("/api/v1/knowledge/articles?q=%E5%A4%9A%E4%B8%AA%E5%8C%85%E8%A3%B9")
        .await;
    let internal_id = internal["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["visibility"] == "internal")
        .map(|a| a["id"].as_u64().unwrap());
    if let Some(internal_id) = internal_id {
        let status = anonymous
            .get(server.url(&format!("/api/v1/help/articles/{internal_id}")))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 404);
    }
    expect_error(
        anonymous
            .get(server.url("/api/v1/help/search?q="))
            .send()
            .await
            .unwrap(),
        400,
        "invalid_query",
    )
    .await;

    // The entity's neighbourhood: the camera with its components and their known issues.
    let cams = admin
        .json("/api/v1/knowledge/entities?q=Lumo%20Cam%20C3&kind=product")
        .await;
    let cam = cams["items"][0]["id"].as_u64().unwrap();
    let graph = admin
        .json(&format!("/api/v1/knowledge/entities/{cam}/graph?depth=2"))
        .await;
    let kinds: Vec<&str> = graph["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["entity_kind"].as_str())
        .collect();
    assert!(kinds.contains(&"component"), "{graph}");
    assert!(kinds.contains(&"known_issue"), "{graph}");
    assert!(
        graph["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["kind"] == "article"),
        "{graph}"
    );

    // The index is rebuilt from the store when the server starts again.
    server.stop();
    server.launch().await;
    let admin = Session::login(&server, "admin", NEW_ADMIN_PASSWORD)
        .await
        .unwrap();
    let mut found = Vec::new();
    for _ in 0..50 {
        found = search(&admin, "where can I track my parcel?").await;
        if !found.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        titles(&found).iter().any(|t| t.contains("Tracking")),
        "{:?}",
        titles(&found)
    );
}

#[tokio::test]
async fn an_article_goes_from_draft_through_review_to_published_versions() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let writer = employee_with_role(&server, &admin, "writer", "employee_agent").await;
    let reviewer = employee_with_role(&server, &admin, "reviewer", "supervisor").await;
    let reader = employee_with_role(&server, &admin, "reader", "read_only").await;

    let product = admin
        .create(
            "/api/v1/knowledge/entities",
            json!({ "kind": "product", "name": "Aurora Kettle", "aliases": ["极光水壶", "kettle"], "key": "product:kettle" }),
        )
        .await;
    let product_id = product["id"].as_u64().unwrap();
    // Writers may not shape the graph between entities.
    let issue = admin
        .create(
            "/api/v1/knowledge/entities",
            json!({ "kind": "known_issue", "name": "Lid does not close", "aliases": ["盖子合不上"] }),
        )
        .await;
    expect_error(
        writer
            .post(
                "/api/v1/knowledge/relations",
                json!({ "from": { "kind": "entity", "id": product_id }, "kind": "has_known_issue", "to": { "kind": "entity", "id": issue["id"] } }),
            )
            .await,
        403,
        "forbidden",
    )
    .await;
    admin
        .create(
            "/api/v1/knowledge/relations",
            json!({ "from": { "kind": "entity", "id": product_id }, "kind": "has_known_issue", "to": { "kind": "entity", "id": issue["id"] } }),
        )
        .await;

    let created = writer
        .create(
            "/api/v1/knowledge/articles",
            json!({
                "title": "水壶盖子合不上怎么办",
                "body": "## 原因\n壶盖卡扣积了水垢。\n\n## 处理\n用白醋浸泡卡扣十分钟，再用软布擦干，盖子即可正常合上。",
                "tags": ["售后", "水壶"],
                "entity_ids": [issue["id"]],
            }),
        )
        .await;
    let id = created["id"].as_u64().unwrap();
    assert_eq!(created["status"], "draft");
    assert_eq!(created["draft"]["content"]["lang"], "zh");
    assert_eq!(created["draft"]["state"], "editing");
    // Not yet published: a reader neither finds nor opens it.
    assert!(search(&reader, "水壶盖子合不上").await.is_empty());
    expect_error(
        reader
            .get(&format!("/api/v1/knowledge/articles/{id}"))
            .await,
        404,
        "not_found",
    )
    .await;

    // Writers submit; only reviewers publish.
    let submitted = writer
        .create(
            &format!("/api/v1/knowledge/articles/{id}/submit"),
            json!({}),
        )
        .await;
    assert_eq!(submitted["draft"]["state"], "in_review");
    expect_error(
        writer
            .post(
                &format!("/api/v1/knowledge/articles/{id}/publish"),
                json!({}),
            )
            .await,
        403,
        "forbidden",
    )
    .await;
    let sent_back = reviewer
        .create(
            &format!("/api/v1/knowledge/articles/{id}/request-changes"),
            json!({ "note": "说明一下白醋的比例" }),
        )
        .await;
    assert_eq!(sent_back["draft"]["state"], "changes_requested");
    let base = sent_back["draft"]["updated_at"].clone();
    let body = "## 原因\n壶盖卡扣积了水垢。\n\n## 处理\n用白醋和水一比一浸泡卡扣十分钟，再用软布擦干，盖子即可正常合上。";
    let saved: Value = put(
        &writer,
        &format!("/api/v1/knowledge/articles/{id}/draft"),
        json!({ "title": "水壶盖子合不上怎么办", "body": body, "base_updated_at": base, "tags": ["售后"] }),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(saved["draft"]["content"]["body"], body);
    // Saving over a draft someone changed since is a conflict, not a silent overwrite.
    expect_error(
        put(
            &writer,
            &format!("/api/v1/knowledge/articles/{id}/draft"),
            json!({ "title": "x", "body": "y", "base_updated_at": base }),
        )
        .await,
        409,
        "draft_conflict",
    )
    .await;
    writer
        .create(
            &format!("/api/v1/knowledge/articles/{id}/submit"),
            json!({}),
        )
        .await;
    let published = reviewer
        .create(
            &format!("/api/v1/knowledge/articles/{id}/publish"),
            json!({}),
        )
        .await;
    assert_eq!(
        (published["status"].clone(), published["version"].clone()),
        (json!("published"), json!(1))
    );
    assert!(published["draft"].is_null());

    // Found at once, by words of the body and through the graph (the product's name).
    let found = search(&reader, "水壶的盖子关不上").await;
    assert_eq!(found[0]["article_id"], id, "{found:?}");
    assert!(
        found[0]["passage"].as_str().unwrap().contains("白醋"),
        "{found:?}"
    );
    let by_product = search(&reader, "极光水壶 盖子").await;
    assert_eq!(by_product[0]["article_id"], id, "{by_product:?}");

    // A second version, then the first restored as a draft.
    put(
        &writer,
        &format!("/api/v1/knowledge/articles/{id}/draft"),
        json!({ "title": "水壶盖子合不上的处理方法", "body": body }),
    )
    .await;
    let v2 = admin
        .create(
            &format!("/api/v1/knowledge/articles/{id}/publish"),
            json!({}),
        )
        .await;
    assert_eq!(v2["version"], 2);
    let versions = reader
        .json(&format!("/api/v1/knowledge/articles/{id}/versions"))
        .await;
    let numbers: Vec<u64> = versions["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, [2, 1]);
    let v1 = reader
        .json(&format!("/api/v1/knowledge/articles/{id}/versions/1"))
        .await;
    assert_eq!(v1["content"]["title"], "水壶盖子合不上怎么办");
    let restored = writer
        .create(
            &format!("/api/v1/knowledge/articles/{id}/restore"),
            json!({ "version": 1 }),
        )
        .await;
    assert_eq!(
        restored["draft"]["content"]["title"],
        "水壶盖子合不上怎么办"
    );
    assert_eq!(restored["published"]["title"], "水壶盖子合不上的处理方法");
    // A reader sees the published version only.
    let seen = reader
        .json(&format!("/api/v1/knowledge/articles/{id}"))
        .await;
    assert!(seen["draft"].is_null());
    assert_eq!(seen["published"]["title"], "水壶盖子合不上的处理方法");

    // A confirmed question teaches the index; the same question twice is not stored twice.
    let learned = writer
        .create(
            &format!("/api/v1/knowledge/articles/{id}/questions"),
            json!({ "question": "烧水壶顶上那个盖扣不住了" }),
        )
        .await;
    assert_eq!(learned["added"], true);
    let again = writer
        .create(
            &format!("/api/v1/knowledge/articles/{id}/questions"),
            json!({ "question": "烧水壶顶上那个盖扣不住了" }),
        )
        .await;
    assert_eq!(again["added"], false);

    // Archived: found by nothing.
    admin
        .create(
            &format!("/api/v1/knowledge/articles/{id}/archive"),
            json!({}),
        )
        .await;
    assert!(
        search(&reader, "水壶盖子合不上")
            .await
            .iter()
            .all(|a| a["article_id"] != id)
    );

    // The audit log has the whole story.
    let audit = admin.json("/api/v1/audit?q=knowledge").await;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for action in [
        "knowledge.article_created",
        "knowledge.submitted",
        "knowledge.changes_requested",
        "knowledge.published",
        "knowledge.archived",
    ] {
        assert!(
            actions.contains(&action),
            "{action} missing from {actions:?}"
        );
    }
}

#[tokio::test]
async fn department_articles_stay_in_their_department_and_bad_input_is_refused() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let rd = admin
        .create("/api/v1/departments", json!({ "name": "R&D" }))
        .await;
    let rd_id = rd["id"].as_u64().unwrap();
    let outsider = employee_with_role(&server, &admin, "outsider", "specialist_agent").await;

    let id = admin
        .publish_article(json!({
            "title": "Firmware signing key rotation",
            "body": "Rotate the firmware signing key every quarter with the hardware token.",
            "visibility": "departments",
            "department_ids": [rd_id],
        }))
        .await;
    assert_eq!(
        search(&admin, "firmware signing key").await[0]["article_id"],
        id
    );
    assert!(search(&outsider, "firmware signing key").await.is_empty());
    expect_error(
        outsider
            .get(&format!("/api/v1/knowledge/articles/{id}"))
            .await,
        404,
        "not_found",
    )
    .await;
    let listed = outsider.json("/api/v1/knowledge/articles").await;
    assert!(
        listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["id"] != id)
    );
    let exported = outsider.get("/api/v1/knowledge/export").await;
    assert_eq!(exported.status(), 200);
    let exported: Value = exported.json().await.unwrap();
    assert!(
        exported["articles"].as_array().unwrap().is_empty(),
        "{exported}"
    );

    // Bad input gets a stable code.
    expect_error(
        admin
            .post(
                "/api/v1/knowledge/articles",
                json!({ "title": " ", "body": "x" }),
            )
            .await,
        400,
        "invalid_field",
    )
    .await;
    expect_error(
        admin
            .post(
                "/api/v1/knowledge/articles",
                json!({ "title": "t", "body": "x", "visibility": "departments", "department_ids": [424242] }),
            )
            .await,
        400,
        "invalid_field",
    )
    .await;
    expect_error(
        admin
            .post(
                "/api/v1/knowledge/relations",
                json!({ "from": { "kind": "article", "id": id }, "kind": "has_component", "to": { "kind": "entity", "id": 1 } }),
            )
            .await,
        400,
        "invalid_field",
    )
    .await;
    expect_error(
        admin.get("/api/v1/knowledge/articles/777777").await,
        404,
        "not_found",
    )
    .await;
    expect_error(
        admin
            .get(&format!("/api/v1/knowledge/articles/{id}/versions/x"))
            .await,
        400,
        "invalid_path",
    )
    .await;
    expect_error(
        upload(
            &admin,
            "/api/v1/knowledge/import?filename=a.json",
            b"{not json".to_vec(),
        )
        .await,
        400,
        "invalid_json",
    )
    .await;
    expect_error(
        upload(
            &admin,
            "/api/v1/knowledge/import?filename=a.zip",
            b"PK\x03\x04broken".to_vec(),
        )
        .await,
        400,
        "invalid_field",
    )
    .await;
    let message = expect_error(
        upload(
            &admin,
            "/api/v1/knowledge/import?filename=a.json",
            serde_json::to_vec(
                &json!({ "articles": [{ "title": "t", "body": "b", "entities": ["nope"] }] }),
            )
            .unwrap(),
        )
        .await,
        400,
        "invalid_field",
    )
    .await;
    assert!(message.contains("nope"), "{message}");
    // A failed import stored nothing.
    let all = admin.json("/api/v1/knowledge/articles").await;
    assert_eq!(all["items"].as_array().unwrap().len(), 1);
    expect_error(
        put(
            &admin,
            "/api/v1/knowledge/synonyms",
            json!({ "sets": [["only one"]] }),
        )
        .await,
        400,
        "invalid_field",
    )
    .await;
}

#[tokio::test]
async fn markdown_export_imports_back() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let md = "+++\ntitle = \"Returning an item\"\ntags = [\"returns\"]\nvisibility = \"public\"\n+++\n\nPack the item and print the **return label** from your order page.\n";
    let report: Value = upload(
        &admin,
        "/api/v1/knowledge/import?filename=returns.md&publish=true",
        md.as_bytes().to_vec(),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(report["articles_published"], 1, "{report}");
    let zip = admin.get("/api/v1/knowledge/export?format=markdown").await;
    assert_eq!(zip.status(), 200);
    assert_eq!(
        zip.headers()["content-type"].to_str().unwrap(),
        "application/zip"
    );
    let bytes = zip.bytes().await.unwrap().to_vec();
    assert!(bytes.starts_with(b"PK"));
    let report: Value = upload(&admin, "/api/v1/knowledge/import?filename=k.zip", bytes)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(report["articles_created"], 1, "{report}");
    let drafts = admin.json("/api/v1/knowledge/articles?status=draft").await;
    assert_eq!(drafts["items"][0]["title"], "Returning an item");
    assert_eq!(drafts["items"][0]["visibility"], "public");
}

async fn poll_tasks(admin: &Session, until: impl Fn(&Value) -> bool) -> Value {
    let mut tasks = Value::Null;
    for _ in 0..100 {
        tasks = admin.json("/api/v1/knowledge/tasks").await;
        if until(&tasks) {
            return tasks;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("tasks never reached the expected state: {tasks}");
}

#[tokio::test]
async fn unanswered_questions_asked_again_and_again_open_a_task_that_publishing_completes() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let anonymous = client();
    let ask = |q: &'static str| {
        let url = server.url(&format!(
            "/api/v1/help/search?q={}",
            form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>()
        ));
        let anonymous = anonymous.clone();
        async move {
            let status = anonymous.get(url).send().await.unwrap().status();
            assert_eq!(status, 200);
        }
    };
    for q in [
        "如何开具增值税专用发票",
        "增值税专用发票怎么开具",
        "我要开增值税专用发票",
        "怎么开增值税专用发票？",
        "公司报销需要增值税专用发票，如何开具",
    ] {
        ask(q).await;
        // Each is counted in the background; one at a time keeps them in one group.
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    }
    let tasks = poll_tasks(&admin, |t| {
        t["items"].as_array().is_some_and(|items| !items.is_empty())
    })
    .await;
    let task = &tasks["items"][0];
    assert_eq!(task["status"], "open");
    assert!(task["asked"].as_u64().unwrap() >= 5, "{task}");
    assert!(task["examples"].as_array().unwrap().len() >= 3, "{task}");
    let task_id = task["id"].as_u64().unwrap();
    // A manager gives it an owner.
    let owned: Value = admin
        .patch(
            &format!("/api/v1/knowledge/tasks/{task_id}"),
            json!({ "owner_id": 1 }),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(owned["owner_id"], 1);

    // Publishing the article that answers it completes the task.
    let invoices = json!({
        "title": "开具增值税专用发票",
        "body": "企业客户可在订单页申请开具增值税专用发票：填写公司名称、税号、开户行和账号，审核后三个工作日内开具。",
        "visibility": "public",
    });
    let article_id = admin.publish_article(invoices).await;
    let tasks = poll_tasks(&admin, |t| t["items"][0]["status"] == "done").await;
    assert_eq!(tasks["items"][0]["article_id"], article_id);
    // Later questions of the group count as answered.
    ask("如何开具增值税专用发票").await;
    poll_tasks(&admin, |t| t["items"][0]["answered_since"] == 1).await;
}
