//! Ordered, idempotent schema migrations, run at start-up.
//!
//! The schema version is the number of migrations applied, kept in `key_meta_v1`. Each migration
//! runs in its own write transaction together with the version bump, so a crash leaves the store
//! at a whole version. A store written by a newer binary is refused rather than misread.

use redb::{Database, ReadableDatabase};

use crate::error::{AppError, AppResult, ErrorCode};
use crate::storage::{WriteTxn, meta_get, meta_set, reserve_ids_below, tables};

pub const SCHEMA_VERSION_KEY: &str = "schema_version";

struct Migration {
    name: &'static str,
    apply: fn(&WriteTxn) -> AppResult<()>,
}

/// Append only; never edit or reorder a migration that has shipped.
const MIGRATIONS: &[Migration] = &[
    Migration {
        name: "create the foundation tables",
        apply: |txn| {
            for table in tables::CATALOG {
                (table.create)(txn)?;
            }
            let instance: [u8; 16] = rand::random();
            if crate::storage::meta_get_in_write(txn, "instance_id")?.is_none() {
                meta_set(txn, "instance_id", hex::encode(instance).as_bytes())?;
            }
            // Ids below 100 are the built-in roles'.
            reserve_ids_below(txn, "role", 99)?;
            Ok(())
        },
    },
    Migration {
        name: "create the inbox tables (channels, customers, conversations, messages, outbox)",
        apply: |txn| {
            for table in tables::CATALOG {
                (table.create)(txn)?;
            }
            Ok(())
        },
    },
    Migration {
        name: "index conversations by last activity",
        apply: |txn| {
            for table in tables::CATALOG {
                (table.create)(txn)?;
            }
            crate::conversations::service::index_all_by_activity(txn)
        },
    },
];

pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

pub fn current_version(db: &Database) -> AppResult<u32> {
    let txn = db.begin_read()?;
    let version = match txn.open_table(tables::META) {
        Ok(_) => meta_get(&txn, SCHEMA_VERSION_KEY)?,
        Err(redb::TableError::TableDoesNotExist(_)) => None,
        Err(e) => return Err(e.into()),
    };
    match version {
        None => Ok(0),
        Some(bytes) => std::str::from_utf8(&bytes)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| AppError::internal("the stored schema version is unreadable")),
    }
}

pub fn run(db: &Database) -> AppResult<()> {
    let found = current_version(db)?;
    if found > SCHEMA_VERSION {
        return Err(AppError::new(
            ErrorCode::Conflict,
            format!(
                "this data was written by a newer allhands (schema {found}); this binary knows schema \
                 {SCHEMA_VERSION}. Refusing to downgrade: install the newer version or restore a backup"
            ),
        ));
    }
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let version = index as u32 + 1;
        let txn = db.begin_write()?;
        {
            let write = WriteTxn::new(&txn);
            (migration.apply)(&write)?;
            meta_set(&write, SCHEMA_VERSION_KEY, version.to_string().as_bytes())?;
        }
        txn.commit()?;
        tracing::info!(version, name = migration.name, "applied store migration");
    }
    // Every table of the catalog exists after start-up, whatever path the store took to get
    // here; creating a table that exists is a no-op.
    let txn = db.begin_write()?;
    {
        let write = WriteTxn::new(&txn);
        for table in tables::CATALOG {
            (table.create)(&write)?;
        }
    }
    txn.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_idempotent_and_downgrades_refused() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(dir.path().join("t.redb")).unwrap();
        run(&db).unwrap();
        run(&db).unwrap();
        assert_eq!(current_version(&db).unwrap(), SCHEMA_VERSION);
        let txn = db.begin_write().unwrap();
        meta_set(
            &crate::storage::WriteTxn::new(&txn),
            SCHEMA_VERSION_KEY,
            b"999",
        )
        .unwrap();
        txn.commit().unwrap();
        let err = run(&db).unwrap_err();
        assert!(err.message.contains("Refusing to downgrade"), "{err}");
    }
}
