//! Upgrades keep data: a store written by an earlier release (kept as a fixture, made by
//! tests/fixtures/make_store_fixture.py with the binary named in tests/fixtures/README.md) is
//! migrated in place when this binary starts on it; a store from a newer release is refused.

use redb::ReadableDatabase;
use serde_json::Value;

use crate::common::*;

const FIXTURE_PASSWORD: &str = "Fixture-Console-Pass-1";

async fn texts(session: &Session, conversation: &Value) -> Vec<String> {
    let id = conversation["id"].as_u64().unwrap();
    let opened = session.json(&format!("/api/v1/conversations/{id}")).await;
    opened["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["direction"] != "system")
        .map(|m| m["text"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test]
async fn a_store_from_the_previous_release_is_migrated_in_place_and_keeps_everything() {
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let mut server = TestServer::start_on_fixture("store-schema2.tar.gz").await;
    assert!(
        server.log().contains("applied store migration"),
        "{}",
        server.log()
    );
    // The administrator's password from before the upgrade still signs in, unchanged.
    let admin = Session::login(&server, "admin", FIXTURE_PASSWORD)
        .await
        .expect("the old password signs in");
    assert_eq!(admin.info["must_change_password"], false);

    // The migration built the latest-activity index: the conversation replied to last is first.
    let listed = admin.json("/api/v1/conversations?sort=last_activity").await;
    let items = listed["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 3, "{listed}");
    let mut stamps: Vec<u64> = items
        .iter()
        .map(|c| c["last_message_at"].as_u64().unwrap())
        .collect();
    let shown = stamps.clone();
    stamps.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(shown, stamps, "newest activity first");
    // The conversation replied to last is first, unless routing has since touched another one
    // (two were waiting unassigned, and the administrator's sign-in makes an agent available).
    let mut replied = None;
    for (place, conversation) in items.iter().enumerate() {
        let texts = texts(&admin, conversation).await;
        if texts.last().map(String::as_str) == Some("Your parcel left the warehouse today.") {
            replied = Some(place);
            break;
        }
        assert!(
            conversation["last_message_at"].as_u64().unwrap() >= started,
            "only a conversation routing touched since the start comes before the reply: {listed}"
        );
    }
    assert!(replied.is_some(), "{listed}");

    // Every message, in order, Chinese text intact.
    let mut all: Vec<Vec<String>> = Vec::new();
    for conversation in &items {
        all.push(texts(&admin, conversation).await);
    }
    let flat: Vec<&str> = all.iter().flatten().map(String::as_str).collect();
    for expected in [
        "My order 1001 has not arrived.",
        "Any news about order 1001?",
        "我的发票在哪里？",
        "谢谢！",
        "Can I change my delivery address?",
    ] {
        assert!(flat.contains(&expected), "{expected} is missing: {flat:?}");
    }
    let alice = all
        .iter()
        .find(|t| t.iter().any(|m| m.contains("1001")))
        .unwrap();
    let order: Vec<&str> = alice
        .iter()
        .map(String::as_str)
        .filter(|m| m.contains("1001"))
        .collect();
    assert_eq!(
        order,
        [
            "My order 1001 has not arrived.",
            "Any news about order 1001?"
        ]
    );

    // New work lands next to the old.
    let conversation = items[1]["id"].as_u64().unwrap();
    let reply = admin
        .post(
            &format!("/api/v1/conversations/{conversation}/messages"),
            serde_json::json!({ "text": "After the upgrade: still here." }),
        )
        .await;
    assert!(reply.status().is_success(), "{:?}", reply.text().await);
    server.stop();

    let verified = server.cli(&["db", "verify"]);
    assert!(verified.status.success(), "{}", text(&verified));
    assert!(
        text(&verified).contains(&format!(
            "store schema version {}",
            allhands::storage::migrations::SCHEMA_VERSION
        )),
        "{}",
        text(&verified)
    );
    let audit = server.cli(&["audit", "verify"]);
    assert!(audit.status.success(), "{}", text(&audit));
}

#[tokio::test]
async fn a_store_written_by_a_newer_release_is_refused_and_not_migrated() {
    let mut server = TestServer::start().await;
    server.admin().await;
    server.stop();
    let store = server.data_dir().join("allhands.redb");
    {
        let db = redb::Database::open(&store).unwrap();
        let txn = db.begin_write().unwrap();
        let newer = (allhands::storage::migrations::SCHEMA_VERSION + 1).to_string();
        txn.open_table(allhands::storage::tables::META)
            .unwrap()
            .insert("schema_version", newer.as_bytes())
            .unwrap();
        txn.commit().unwrap();
    }
    let schema_of = |path: &std::path::Path| {
        let db = redb::Database::open(path).unwrap();
        let txn = db.begin_read().unwrap();
        let meta = txn.open_table(allhands::storage::tables::META).unwrap();
        let version = meta
            .get("schema_version")
            .unwrap()
            .unwrap()
            .value()
            .to_vec();
        String::from_utf8(version).unwrap()
    };
    let newer = schema_of(&store);

    let output = std::process::Command::new(binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(server.data_dir())
        .env_clear()
        .output()
        .unwrap();
    assert!(!output.status.success());
    let said = text(&output);
    assert!(said.contains("Refusing to downgrade"), "{said}");
    assert!(said.contains("restore a backup"), "{said}");
    assert_eq!(schema_of(&store), newer, "the refused store was migrated");

    let verify = server.cli(&["db", "verify"]);
    assert!(!verify.status.success());
    assert!(
        text(&verify).contains("Refusing to downgrade"),
        "{}",
        text(&verify)
    );
}
