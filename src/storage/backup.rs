//! Online backup and offline restore.
//!
//! A backup is itself a redb file: every catalog table copied from one read snapshot (so it is
//! consistent while writers keep writing), plus the data-directory files that must travel with
//! the data (keys, certificates) in `name_backupfile_v1`. `db verify` can check a backup file
//! like any store. Restore needs the server stopped: it builds the new store beside the old one
//! and swaps them with renames, keeping the old file.

use std::path::{Component, Path};

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
    let target = Database::create(&partial)
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
        &txn,
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
pub fn restore_backup(from: &Path, data_dir: &Path) -> AppResult<RestoreSummary> {
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
            files.push((name.value().to_string(), bytes.value().to_vec()));
        }
    }
    for (name, bytes) in &files {
        let relative = Path::new(name);
        if !relative
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
        {
            return Err(AppError::new(
                ErrorCode::InvalidField,
                format!("the backup names an unsafe file path {name:?}"),
            ));
        }
        let path = data_dir.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        crate::storage::write_private_file(&path, bytes)?;
    }

    let live = data_dir.join(DB_FILE);
    let previous_store_kept_as = if live.exists() {
        let kept = data_dir.join(format!(
            "{DB_FILE}.before-restore-{}",
            chrono::Utc::now().format("%Y%m%dT%H%M%S")
        ));
        std::fs::rename(&live, &kept)?;
        Some(kept.display().to_string())
    } else {
        None
    };
    std::fs::rename(&restoring, &live)?;
    Ok(RestoreSummary {
        rows,
        files: files.len(),
        previous_store_kept_as,
    })
}
