//! `db verify`: every table opens, every record decodes.

use redb::{Database, ReadableDatabase};
use serde::Serialize;

use crate::error::AppResult;
use crate::storage::{migrations, tables};

#[derive(Debug, Serialize)]
pub struct TableReport {
    pub table: &'static str,
    pub rows: u64,
}

#[derive(Debug, Serialize)]
pub struct VerifyReport {
    pub schema_version: u32,
    pub tables: Vec<TableReport>,
    /// Empty when everything decoded.
    pub problems: Vec<String>,
}

pub fn verify_tables(db: &Database) -> AppResult<VerifyReport> {
    let schema_version = migrations::current_version(db)?;
    let txn = db.begin_read()?;
    let mut report = VerifyReport {
        schema_version,
        tables: Vec::new(),
        problems: Vec::new(),
    };
    for table in tables::CATALOG {
        match (table.verify)(&txn) {
            Ok((rows, damaged)) => {
                report.tables.push(TableReport {
                    table: table.name,
                    rows,
                });
                report.problems.extend(damaged);
            }
            Err(e) => {
                report
                    .problems
                    .push(format!("{}: {}", table.name, e.detail.unwrap_or(e.message)))
            }
        }
    }
    Ok(report)
}
