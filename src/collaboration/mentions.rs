//! @mentions in internal notes, and the notifications they leave.
//!
//! A note mentions a colleague by `@username` in its text or by id (the console's picker sends
//! ids, so display names in any script work). A mentioned employee joins the conversation's
//! participants, which lets them see it even outside their department, and gets a notification
//! that stays until they read it.

use redb::{ReadTransaction, ReadableTable};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::clock::Millis;
use crate::error::{AppError, AppResult};
use crate::storage::{Record, WriteTxn, codec, next_id, tables};

/// The user names `@mentioned` in a text, lower-cased, each once, in order. A mention starts
/// at an `@` that does not follow a letter or digit (so `a@b.c` is not one) and runs over the
/// characters user names may hold; trailing dots and dashes are sentence punctuation.
pub fn mentioned_usernames(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let starts = chars[i] == '@' && (i == 0 || !chars[i - 1].is_ascii_alphanumeric());
        if !starts {
            i += 1;
            continue;
        }
        let mut end = i + 1;
        while end < chars.len()
            && (chars[end].is_ascii_alphanumeric() || matches!(chars[end], '.' | '_' | '-' | '@'))
        {
            end += 1;
        }
        let name: String = chars[i + 1..end].iter().collect();
        let name = name.trim_end_matches(['.', '-', '@']).to_ascii_lowercase();
        if name.len() >= 2 && !out.contains(&name) {
            out.push(name);
        }
        i = end.max(i + 1);
    }
    out
}

/// Resolves mentions to enabled employees: ids given explicitly and `@username`s in the text.
/// An unknown id is an error (the picker offered it); an unknown `@word` is just text.
pub fn resolve(txn: &WriteTxn, text: &str, ids: &[u64]) -> AppResult<Vec<u64>> {
    let employees = txn.open_table(tables::EMPLOYEES)?;
    let mut out = Vec::new();
    for id in ids {
        let employee: Option<crate::org::Employee> = crate::storage::get_record(&employees, *id)?;
        match employee {
            Some(e) if !e.disabled => {
                if !out.contains(id) {
                    out.push(*id);
                }
            }
            _ => return Err(AppError::field("mentions", format!("no employee {id}"))),
        }
    }
    let names = txn.open_table(tables::USERNAME_EMPLOYEE)?;
    for name in mentioned_usernames(text) {
        if let Some(id) = names.get(name.as_str())?.map(|v| v.value()) {
            let employee: Option<crate::org::Employee> =
                crate::storage::get_record(&employees, id)?;
            if employee.is_some_and(|e| !e.disabled) && !out.contains(&id) {
                out.push(id);
            }
        }
    }
    Ok(out)
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct Notification {
    pub id: u64,
    pub employee_id: u64,
    /// `mention` for now.
    pub kind: String,
    pub conversation_id: u64,
    pub message_id: u64,
    pub by_employee_id: u64,
    /// The start of the note, so the notification says what it is about.
    pub excerpt: String,
    pub created_at: Millis,
    pub read_at: Option<Millis>,
}

impl Record for Notification {
    const KIND: &'static str = "notification";
}

pub fn notify_mention(
    txn: &WriteTxn,
    employee_id: u64,
    conversation_id: u64,
    message_id: u64,
    by_employee_id: u64,
    text: &str,
    now: Millis,
) -> AppResult<Notification> {
    let notification = Notification {
        id: next_id(txn, "notification")?,
        employee_id,
        kind: "mention".into(),
        conversation_id,
        message_id,
        by_employee_id,
        excerpt: text.chars().take(140).collect(),
        created_at: now,
        read_at: None,
    };
    txn.open_table(tables::NOTIFICATIONS)?.insert(
        (employee_id, notification.id),
        codec::encode(&notification).as_slice(),
    )?;
    Ok(notification)
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct NotificationPage {
    pub items: Vec<Notification>,
    pub unread: u64,
}

/// An employee's notifications, newest first (at most 100), and how many are unread.
pub fn list(txn: &ReadTransaction, employee_id: u64) -> AppResult<NotificationPage> {
    let table = txn.open_table(tables::NOTIFICATIONS)?;
    let mut items = Vec::new();
    let mut unread = 0;
    for row in table
        .range((employee_id, 0)..=(employee_id, u64::MAX))?
        .rev()
    {
        let n: Notification = codec::decode(row?.1.value())?;
        if n.read_at.is_none() {
            unread += 1;
        }
        if items.len() < 100 {
            items.push(n);
        }
    }
    Ok(NotificationPage { items, unread })
}

/// Marks one notification (or, with `None`, all) of the employee read.
pub fn mark_read(txn: &WriteTxn, employee_id: u64, id: Option<u64>, now: Millis) -> AppResult<u64> {
    let mut table = txn.open_table(tables::NOTIFICATIONS)?;
    let keys: Vec<(u64, u64)> = match id {
        Some(id) => {
            if table.get((employee_id, id))?.is_none() {
                return Err(AppError::not_found("notification"));
            }
            vec![(employee_id, id)]
        }
        None => {
            let mut keys = Vec::new();
            for row in table.range((employee_id, 0)..=(employee_id, u64::MAX))? {
                keys.push(row?.0.value());
            }
            keys
        }
    };
    let mut changed = 0;
    for key in keys {
        let mut n: Notification = match table.get(key)? {
            Some(v) => codec::decode(v.value())?,
            None => continue,
        };
        if n.read_at.is_none() {
            n.read_at = Some(now);
            table.insert(key, codec::encode(&n).as_slice())?;
            changed += 1;
        }
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn mentions_are_found_where_people_write_them() {
        assert_eq!(
            mentioned_usernames("@li.na can you check? cc @Wang_Wei."),
            ["li.na", "wang_wei"]
        );
        assert_eq!(
            mentioned_usernames("请 @zhang.san 看一下，谢谢@li"),
            ["zhang.san", "li"]
        );
        assert!(mentioned_usernames("mail me at a@b.example").is_empty());
        assert_eq!(
            mentioned_usernames("@ops@corp (twice: @ops@corp)"),
            ["ops@corp"]
        );
        assert!(mentioned_usernames("@ or @x alone").is_empty());
    }

    proptest! {
        #[test]
        fn mentions_are_well_formed(text in "\\PC{0,200}") {
            for name in mentioned_usernames(&text) {
                prop_assert!(name.len() >= 2);
                prop_assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@')));
                prop_assert!(!name.ends_with('.'));
                let needle = format!("@{}", name);
                prop_assert!(text.to_ascii_lowercase().contains(&needle));
            }
        }
    }
}
