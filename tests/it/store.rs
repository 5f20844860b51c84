//! The store as operators meet it: a second process is refused, backups are consistent while
//! writers write, restores bring everything back, and the audit chain names tampering.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn a_second_process_on_the_same_data_directory_is_refused() {
    let server = TestServer::start().await;
    let second = std::process::Command::new(binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(server.data_dir())
        .env_clear()
        .output()
        .unwrap();
    assert!(!second.status.success());
    let said = text(&second);
    assert!(
        said.contains("in use by another allhands process"),
        "{said}"
    );
    // Offline-only commands say the server must be stopped.
    let restore = server.cli(&["restore", "--from", "/nonexistent"]);
    assert!(!restore.status.success());
    assert!(
        text(&restore).contains("stop the server"),
        "{}",
        text(&restore)
    );
    let create = server.cli(&["admin", "create-user", "--username", "x"]);
    assert!(
        text(&create).contains("needs the server stopped"),
        "{}",
        text(&create)
    );
    // The running server is unharmed.
    assert_eq!(
        client()
            .get(server.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn a_backup_taken_while_sixteen_writers_write_restores_consistently() {
    let mut server = TestServer::start().await;
    let admin = Arc::new(server.admin().await);
    let acknowledged: Arc<Mutex<Vec<(std::time::Instant, u64)>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..16 {
        let (admin, acknowledged, stop) = (admin.clone(), acknowledged.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let created = admin
                    .create(
                        "/api/v1/departments",
                        json!({ "name": format!("w{w}-{i}"), "parent_id": 1 }),
                    )
                    .await;
                acknowledged
                    .lock()
                    .unwrap()
                    .push((std::time::Instant::now(), created["id"].as_u64().unwrap()));
                i += 1;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    let backup = server.dir.path().join("live.backup");
    let started = std::time::Instant::now();
    let output = {
        let data_dir = server.data_dir();
        let backup = backup.clone();
        tokio::task::spawn_blocking(move || {
            cli_in(
                &data_dir,
                &["backup", "--to", backup.to_str().unwrap()],
                None,
            )
        })
        .await
        .unwrap()
    };
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        text(&output).contains("by the running server"),
        "{}",
        text(&output)
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for w in writers {
        w.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    let before: BTreeSet<u64> = acknowledged
        .iter()
        .filter(|(t, _)| *t < started)
        .map(|(_, id)| *id)
        .collect();
    let all: BTreeSet<u64> = acknowledged.iter().map(|(_, id)| *id).collect();
    assert!(
        before.len() > 16,
        "the writers wrote too little before the backup: {}",
        before.len()
    );
    assert!(
        all.len() > before.len(),
        "writers kept writing during the backup"
    );

    // Restore into a fresh data directory and look at what came back.
    let restored_dir = server.dir.path().join("restored");
    let output = cli_in(
        &restored_dir,
        &["restore", "--from", backup.to_str().unwrap()],
        None,
    );
    assert!(output.status.success(), "{}", text(&output));
    let verify = cli_in(&restored_dir, &["db", "verify"], None);
    assert!(verify.status.success(), "{}", text(&verify));
    server.stop();
    let mut restored = TestServer {
        dir: tempfile::tempdir().unwrap(),
        child: None,
        base: String::new(),
        extra_env: Vec::new(),
    };
    std::fs::rename(&restored_dir, restored.data_dir()).unwrap();
    restored.launch().await;
    let session = Session::login(&restored, "admin", NEW_ADMIN_PASSWORD)
        .await
        .expect("the restored admin password works");
    let departments = session.json("/api/v1/departments").await;
    let ids: BTreeSet<u64> = departments["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_u64().unwrap())
        .filter(|id| *id != 1)
        .collect();
    assert!(
        before.is_subset(&ids),
        "every write acknowledged before the backup began is in it"
    );
    assert!(
        ids.is_subset(&all),
        "the backup holds only acknowledged writes"
    );
    // Ids are handed out in commit order, so a consistent snapshot is a prefix of them.
    let highest = *ids.iter().max().unwrap();
    let expected_prefix: BTreeSet<u64> = all.iter().copied().filter(|id| *id <= highest).collect();
    assert_eq!(
        ids, expected_prefix,
        "the backup is one consistent point in time"
    );
    let audit = session.json("/api/v1/audit/verify").await;
    assert_eq!(audit["ok"], json!(true), "{audit}");
    let restored_entries = session.json("/api/v1/audit?action=system.restored").await;
    assert_eq!(restored_entries["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn audit_verify_names_the_entry_whose_bytes_were_edited() {
    let mut server = TestServer::start().await;
    let admin = server.admin().await;
    for name in ["Sales", "Support", "R&D"] {
        admin
            .create(
                "/api/v1/departments",
                json!({ "name": name, "parent_id": 1 }),
            )
            .await;
    }
    let entries = admin.json("/api/v1/audit?action=department.created").await;
    let target = entries["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["details"]["name"] == "Support")
        .unwrap()["seq"]
        .as_u64()
        .unwrap();
    server.stop();
    let ok = server.cli(&["audit", "verify"]);
    assert!(ok.status.success(), "{}", text(&ok));
    assert!(text(&ok).contains("audit chain: OK"), "{}", text(&ok));

    // Edit one byte of that entry's stored value, the way someone with disk access might.
    {
        let db = redb::Database::open(server.data_dir().join("allhands.redb")).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut table = txn.open_table(allhands::storage::tables::AUDIT).unwrap();
            let mut bytes = redb::ReadableTable::get(&table, target)
                .unwrap()
                .unwrap()
                .value()
                .to_vec();
            let text = String::from_utf8(bytes.clone()).unwrap();
            let at = text.find("Support").unwrap();
            bytes[at] = b's';
            table.insert(target, bytes.as_slice()).unwrap();
        }
        txn.commit().unwrap();
    }
    let broken = server.cli(&["audit", "verify"]);
    assert!(!broken.status.success());
    assert!(
        text(&broken).contains(&format!("BROKEN at entry {target}")),
        "{}",
        text(&broken)
    );

    // Removing an entry is named too.
    {
        let db = redb::Database::open(server.data_dir().join("allhands.redb")).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(allhands::storage::tables::AUDIT)
            .unwrap()
            .remove(2)
            .unwrap();
        txn.commit().unwrap();
    }
    let removed = server.cli(&["audit", "verify"]);
    assert!(
        text(&removed).contains("BROKEN at entry 2"),
        "{}",
        text(&removed)
    );
    let db_verify = server.cli(&["db", "verify"]);
    assert!(!db_verify.status.success(), "{}", text(&db_verify));
}

#[tokio::test]
async fn auditors_read_and_export_the_log_but_change_nothing() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let auditor = crate::matrix::employee_with_role(&server, &admin, "auditor1", "auditor").await;
    admin
        .create(
            "/api/v1/departments",
            json!({ "name": "财务部", "parent_id": 1 }),
        )
        .await;
    let page = auditor.json("/api/v1/audit?limit=5").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 5);
    let older = page["next_before_seq"].as_u64().unwrap();
    let next = auditor
        .json(&format!("/api/v1/audit?limit=5&before_seq={older}"))
        .await;
    assert!(next["items"][0]["seq"].as_u64().unwrap() < older);
    let failed = auditor.json("/api/v1/audit?success=false").await;
    assert!(
        failed["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["success"] == json!(false))
    );

    let csv = auditor
        .get("/api/v1/audit/export?format=csv&action=department.")
        .await;
    assert_eq!(csv.status(), 200);
    assert!(
        csv.headers()
            .get("content-disposition")
            .unwrap()
            .to_str()
            .unwrap()
            .contains(".csv")
    );
    let bytes = csv.bytes().await.unwrap();
    assert!(
        bytes.starts_with(b"\xEF\xBB\xBF"),
        "UTF-8 BOM for spreadsheet programs"
    );
    let text = String::from_utf8(bytes[3..].to_vec()).unwrap();
    assert!(text.starts_with("seq,at,actor_kind"), "{text}");
    assert!(text.contains("财务部"));
    let json_export: serde_json::Value = auditor
        .get("/api/v1/audit/export?format=json")
        .await
        .json()
        .await
        .unwrap();
    assert!(json_export.as_array().unwrap().len() > 5);
    // The exports themselves were audited.
    let exports = auditor.json("/api/v1/audit?action=audit.exported").await;
    assert_eq!(exports["items"].as_array().unwrap().len(), 2);
    assert_eq!(exports["items"][0]["actor"]["name"], "auditor1");
    // And the auditor changes nothing.
    expect_error(
        auditor
            .post(
                "/api/v1/departments",
                json!({ "name": "x", "parent_id": 1 }),
            )
            .await,
        403,
        "forbidden",
    )
    .await;
    expect_error(
        auditor
            .patch("/api/v1/employees/1", json!({ "display_name": "x" }))
            .await,
        403,
        "forbidden",
    )
    .await;
    expect_error(
        auditor
            .post(
                "/api/v1/role-grants",
                json!({ "role_id": 1, "subject": { "kind": "employee", "employee_id": 2 } }),
            )
            .await,
        403,
        "forbidden",
    )
    .await;
}

#[tokio::test]
async fn a_backup_is_private_and_a_crafted_backup_cannot_overwrite_the_store() {
    let mut server = TestServer::start().await;
    server.admin().await;
    let backup = server.dir.path().join("b.redb");
    let output = server.cli(&["backup", "--to", backup.to_str().unwrap()]);
    assert!(output.status.success(), "{}", text(&output));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&backup).unwrap().permissions().mode() & 0o777,
        0o600,
        "a backup holds keys and hashes"
    );
    assert_eq!(
        std::fs::metadata(server.data_dir())
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700
    );
    server.stop();

    // Someone adds the store's own name to the files a backup carries.
    {
        let db = redb::Database::open(&backup).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(allhands::storage::tables::BACKUP_FILES)
            .unwrap()
            .insert("allhands.redb", b"garbage".as_slice())
            .unwrap();
        txn.commit().unwrap();
    }
    let before = std::fs::read(server.data_dir().join("allhands.redb")).unwrap();
    let refused = server.cli(&["restore", "--from", backup.to_str().unwrap()]);
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("unexpected file"),
        "{}",
        text(&refused)
    );
    assert_eq!(
        std::fs::read(server.data_dir().join("allhands.redb")).unwrap(),
        before,
        "the live store is untouched"
    );
    let not_a_backup = server.cli(&[
        "restore",
        "--from",
        server.data_dir().join("allhands.lock").to_str().unwrap(),
    ]);
    assert!(!not_a_backup.status.success());
    server.launch().await;
    assert!(
        Session::login(&server, "admin", NEW_ADMIN_PASSWORD)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn the_backup_timer_writes_dated_backups_into_a_directory_and_keeps_the_newest() {
    let server = TestServer::start().await;
    server.admin().await;
    let dir = server.dir.path().join("backups");
    std::fs::create_dir(&dir).unwrap();
    // Older backups the timer wrote before, and a file of the administrator's that is not one.
    for name in [
        "allhands-20250101T023000Z.backup",
        "allhands-20250102T023000Z.backup",
        "allhands-20250103T023000Z.backup",
        "notes.txt",
    ] {
        std::fs::write(dir.join(name), b"old").unwrap();
    }
    let output = server.cli(&["backup", "--to-dir", dir.to_str().unwrap(), "--keep", "2"]);
    assert!(output.status.success(), "{}", text(&output));
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names.len(), 3, "{names:?}");
    assert_eq!(names[0], "allhands-20250103T023000Z.backup");
    assert!(names[1].starts_with("allhands-20") && names[1] != names[0]);
    assert_eq!(names[2], "notes.txt");
    let written = std::fs::metadata(dir.join(&names[1])).unwrap();
    assert!(
        written.len() > 1000,
        "a real backup: {} bytes",
        written.len()
    );

    let output = server.cli(&["backup", "--keep", "2"]);
    assert!(!output.status.success());
    assert!(text(&output).contains("--to-dir"), "{}", text(&output));
}
