//! Operations shared by the command line, the control socket and the HTTP API:
//! backup, restore and verification.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::json;

use crate::audit::{self, Actor, AuditEvent};
use crate::error::AppResult;
use crate::state::Core;
use crate::storage::backup::{self, BackupSummary};
use crate::storage::{Store, verify};

/// Data-directory files that travel with a backup (relative to the data directory).
pub const BACKED_UP_FILES: &[&str] = &[
    "tls/self-signed.crt",
    "tls/self-signed.key",
    crate::secrets::KEY_FILE,
];

fn data_dir_files(data_dir: &Path) -> AppResult<Vec<(String, Vec<u8>)>> {
    let mut files = Vec::new();
    for name in BACKED_UP_FILES {
        let path = data_dir.join(name);
        if path.exists() {
            files.push((name.to_string(), std::fs::read(&path)?));
        }
    }
    Ok(files)
}

/// Takes a consistent backup of a running store into `dest` and audits it.
pub async fn backup(core: &Core, actor: &Actor, dest: PathBuf) -> AppResult<BackupSummary> {
    let result = backup_and_audit(core, actor, dest.clone()).await;
    if result.is_err() {
        // Never leave a copy of the data behind when the backup did not complete.
        let _ = std::fs::remove_file(&dest);
        let _ = std::fs::remove_file(dest.with_extension("partial"));
    }
    result
}

async fn backup_and_audit(core: &Core, actor: &Actor, dest: PathBuf) -> AppResult<BackupSummary> {
    let store = core.store.clone();
    let data_dir = core.data_dir.clone();
    let target = dest.clone();
    let summary = tokio::task::spawn_blocking(move || {
        let files = data_dir_files(&data_dir)?;
        let db = store.database()?;
        backup::write_backup(&db, &files, &target)
    })
    .await
    .map_err(|e| crate::error::AppError::internal(format!("backup task failed: {e}")))??;
    let now = core.now();
    let actor = actor.clone();
    let details =
        json!({ "file": dest.display().to_string(), "rows": summary.rows, "bytes": summary.bytes });
    core.store
        .write(move |txn| {
            audit::append(
                txn,
                now,
                AuditEvent::new(&actor, "system.backup").details(details.clone()),
            )?;
            Ok(())
        })
        .await?;
    Ok(summary)
}

/// Everything `db verify` checks: every record decodes, and the audit chain holds.
#[derive(Debug, Serialize)]
pub struct FullReport {
    pub store: verify::VerifyReport,
    pub audit: audit::VerifyReport,
    pub integrity_checked: bool,
}

impl FullReport {
    pub fn ok(&self) -> bool {
        self.store.problems.is_empty() && self.audit.ok
    }
}

pub fn verify_store(store: &Store, integrity_checked: bool) -> AppResult<FullReport> {
    let db = store.database()?;
    let report = verify::verify_tables(&db)?;
    let audit = store.read_blocking(audit::verify)?;
    Ok(FullReport {
        store: report,
        audit,
        integrity_checked,
    })
}
