//! Audit-log exports for auditors: CSV (UTF-8 with BOM, so spreadsheet programs read Chinese
//! correctly) and JSON. Both carry the chain fields so an export can be checked offline.

use redb::ReadTransaction;

use crate::audit::{AuditEntry, AuditQuery, for_each_matching};
use crate::clock::format_rfc3339;
use crate::error::{AppError, AppResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Csv,
    Json,
}

impl ExportFormat {
    pub fn parse(name: &str) -> Option<ExportFormat> {
        match name {
            "csv" => Some(ExportFormat::Csv),
            "json" => Some(ExportFormat::Json),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Csv => "text/csv; charset=utf-8",
            ExportFormat::Json => "application/json",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            ExportFormat::Csv => "csv",
            ExportFormat::Json => "json",
        }
    }
}

const CSV_HEADER: [&str; 13] = [
    "seq",
    "at",
    "actor_kind",
    "actor_name",
    "actor_employee_id",
    "actor_token_id",
    "source",
    "action",
    "target",
    "success",
    "details",
    "prev_hash",
    "hash",
];

pub fn export(
    txn: &ReadTransaction,
    query: &AuditQuery,
    format: ExportFormat,
) -> AppResult<(Vec<u8>, u64)> {
    match format {
        ExportFormat::Csv => {
            let mut out = b"\xEF\xBB\xBF".to_vec();
            let count;
            {
                let mut writer = csv::Writer::from_writer(&mut out);
                writer
                    .write_record(CSV_HEADER)
                    .map_err(AppError::internal)?;
                count = for_each_matching(txn, query, |e| {
                    writer.write_record(csv_row(e)).map_err(AppError::internal)
                })?;
                writer.flush()?;
            }
            Ok((out, count))
        }
        ExportFormat::Json => {
            let mut out = b"[".to_vec();
            let count = for_each_matching(txn, query, |e| {
                if out.len() > 1 {
                    out.push(b',');
                }
                out.push(b'\n');
                serde_json::to_writer(&mut out, e)?;
                Ok(())
            })?;
            out.extend_from_slice(b"\n]\n");
            Ok((out, count))
        }
    }
}

fn csv_row(e: &AuditEntry) -> [String; 13] {
    let opt = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
    [
        e.seq.to_string(),
        format_rfc3339(e.at),
        e.actor.kind.clone(),
        e.actor.name.clone(),
        opt(e.actor.employee_id),
        opt(e.actor.token_id),
        e.actor.source.clone(),
        e.action.clone(),
        e.target.clone().unwrap_or_default(),
        e.success.to_string(),
        if e.details.is_null() {
            String::new()
        } else {
            e.details.to_string()
        },
        e.prev_hash.clone(),
        e.hash.clone(),
    ]
}
