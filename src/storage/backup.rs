//! Online backup and offline restore.
//!
//! A backup is itself a redb file: every catalog table copied from one read snapshot (so it is
//! consistent while writers keep writing), plus the data-directory files that must travel with
//! the data (keys, certificates) in `name_backupfile_v1`. `db verify` can check a backup file
//! like any store. Restore needs the server stopped: it builds the new store beside the old one
//! and swaps them with renames, keeping the old file.

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable};
use serde::Serialize;

use crate::error::{AppError, AppResult, ErrorCode};
use crate::storage::{DB_FILE, meta_get, meta_set, migrations, tables};

#[derive(Debug, Serialize)]
pub struct BackupSummary {
    pub rows: u64,
    pub tables: usize,
    pub files: usize,
    pub schema_version: u32,
    pub bytes: u64,
}

/// Copies a consistent snapshot of `db` and the given data-dir files into a new file at `dest`.
pub fn write_backup(
    db: &Database,
    files: &[(String, Vec<u8>)],
    dest: &Path,
) -> AppResult<BackupSummary> {
    let partial = dest.with_extension("partial");
    let _ = std::fs::remove_file(&partial);
    let snapshot = db.begin_read()?;
    let schema_version = migrations::current_version(db)?;
    let file = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&partial)
            .map_err(|e| AppError::internal(format!("cannot create {}: {e}", partial.display())))?
    };
    let target = Database::builder()
        .create_file(file)
        .map_err(|e| AppError::internal(format!("cannot create {}: {e}", partial.display())))?;
    let txn = target.begin_write()?;
    let mut rows = 0;
    for table in tables::CATALOG {
        rows += (table.copy)(&snapshot, &txn)?;
    }
    {
        let mut stored = txn.open_table(tables::BACKUP_FILES)?;
        for (name, bytes) in files {
            stored.insert(name.as_str(), bytes.as_slice())?;
        }
    }
    meta_set(
        &crate::storage::WriteTxn::new(&txn),
        "backup_created_at",
        chrono::Utc::now().to_rfc3339().as_bytes(),
    )?;
    txn.commit()?;
    drop(target);
    std::fs::rename(&partial, dest).map_err(|e| {
        AppError::internal(format!("cannot move the backup to {}: {e}", dest.display()))
    })?;
    let bytes = std::fs::metadata(dest)?.len();
    Ok(BackupSummary {
        rows,
        tables: tables::CATALOG.len(),
        files: files.len(),
        schema_version,
        bytes,
    })
}

#[derive(Debug, Serialize)]
pub struct RestoreSummary {
    pub rows: u64,
    pub files: usize,
    pub previous_store_kept_as: Option<String>,
}

/// Replaces the store in `data_dir` (whose lock the caller holds) with the backup at `from`.
/// `allowed_files` names the data-directory files a backup may carry (see `ops::BACKED_UP_FILES`).
pub fn restore_backup(
    from: &Path,
    data_dir: &Path,
    allowed_files: &[&str],
) -> AppResult<RestoreSummary> {
    let backup = Database::open(from).map_err(|e| {
        AppError::new(
            ErrorCode::InvalidField,
            format!("{} is not a readable allhands backup: {e}", from.display()),
        )
    })?;
    let version = migrations::current_version(&backup)?;
    if version == 0 {
        return Err(AppError::new(
            ErrorCode::InvalidField,
            format!("{} is not an allhands backup", from.display()),
        ));
    }
    if version > migrations::SCHEMA_VERSION {
        return Err(AppError::new(
            ErrorCode::Conflict,
            format!(
                "the backup has schema {version}, newer than this binary's {}",
                migrations::SCHEMA_VERSION
            ),
        ));
    }
    let report = crate::storage::verify::verify_tables(&backup)?;
    if let Some(problem) = report.problems.first() {
        return Err(AppError::new(
            ErrorCode::InvalidField,
            format!("the backup is damaged: {problem}"),
        ));
    }
    let snapshot = backup.begin_read()?;
    if meta_get(&snapshot, "backup_created_at")?.is_none() {
        return Err(AppError::new(
            ErrorCode::InvalidField,
            format!("{} is a store, not a backup file", from.display()),
        ));
    }

    let restoring = data_dir.join(format!("{DB_FILE}.restoring"));
    let _ = std::fs::remove_file(&restoring);
    let target = Database::create(&restoring)
        .map_err(|e| AppError::internal(format!("cannot create {}: {e}", restoring.display())))?;
    let txn = target.begin_write()?;
    let mut rows = 0;
    for table in tables::CATALOG {
        rows += (table.copy)(&snapshot, &txn)?;
    }
    txn.commit()?;
    drop(target);

    let mut files = Vec::new();
    if let Ok(stored) = snapshot.open_table(tables::BACKUP_FILES) {
        for entry in stored.iter()? {
            let (name, bytes) = entry?;
            let name = name.value().to_string();
            // Only the files a backup is meant to carry; never the store, its lock or anything else.
            if !allowed_files.contains(&name.as_str()) {
                return Err(AppError::new(
                    ErrorCode::InvalidField,
                    format!("the backup carries an unexpected file {name:?}"),
                ));
            }
            files.push((name, bytes.value().to_vec()));
        }
    }
    drop(snapshot);
    drop(backup);

    // Keep the current store under another name (a hard link, so the live name never
    // disappears), then replace the live name atomically.
    let live = data_dir.join(DB_FILE);
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S");
    let previous_store_kept_as = if live.exists() {
        let kept = data_dir.join(format!("{DB_FILE}.before-restore-{stamp}"));
        std::fs::hard_link(&live, &kept)?;
        Some(kept.display().to_string())
    } else {
        None
    };
    // The inbound log belongs to the store it was written beside: replayed into the restored
    // one it would add writes that store never had. It stays with the previous store.
    let log = data_dir.join(crate::storage::wal::LOG_FILE);
    if log.exists() {
        std::fs::rename(
            &log,
            data_dir.join(format!(
                "{}.before-restore-{stamp}",
                crate::storage::wal::LOG_FILE
            )),
        )?;
    }
    std::fs::rename(&restoring, &live)?;
    for (name, bytes) in &files {
        let path = data_dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        crate::storage::write_private_file(&path, bytes)?;
    }
    std::fs::File::open(data_dir)?.sync_all()?;
    Ok(RestoreSummary {
        rows,
        files: files.len(),
        previous_store_kept_as,
    })
}
