//! Sensitive-word dictionaries as the organisation manages them, and the compiled guard that
//! checks replies before they are sent and customers' messages as they arrive.
//!
//! A dictionary applies to the whole organisation or to some departments (and their
//! sub-departments). An employee's reply is checked against the dictionaries of their
//! department; a customer's message against the organisation-wide ones and those of the
//! conversation's team.

use std::sync::Arc;

use arc_swap::ArcSwap;
use redb::{ReadTransaction, ReadableTable};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::assist::sensitive::{Matcher, SensitiveWord, Severity, Via};
use crate::auth::rbac::DepartmentTree;
use crate::clock::Millis;
use crate::error::{AppError, AppResult};
use crate::org::service::required_text;
use crate::storage::{Record, WriteTxn, all_records, codec, get_record, next_id, tables};

pub const MAX_WORDS_PER_DICTIONARY: usize = 50_000;
const MAX_WORD_CHARS: usize = 60;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct WordEntry {
    pub word: String,
    /// Free text such as `abuse`, `politics`, `competitor`, `privacy`.
    #[serde(default)]
    pub category: String,
    /// `flag` (customers' messages are shown to a supervisor), `warn` (a reply needs
    /// confirmation) or `block` (a reply is refused).
    #[schemars(with = "String")]
    pub severity: Severity,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Dictionary {
    pub id: u64,
    pub name: String,
    pub enabled: bool,
    /// Empty: the whole organisation.
    #[serde(default)]
    pub department_ids: Vec<u64>,
    pub words: Vec<WordEntry>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

impl Record for Dictionary {
    const KIND: &'static str = "sensitive-word dictionary";
}

/// A dictionary in a list: without its words.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct DictionarySummary {
    pub id: u64,
    pub name: String,
    pub enabled: bool,
    pub department_ids: Vec<u64>,
    pub words: usize,
    pub updated_at: Millis,
}

impl From<&Dictionary> for DictionarySummary {
    fn from(d: &Dictionary) -> Self {
        DictionarySummary {
            id: d.id,
            name: d.name.clone(),
            enabled: d.enabled,
            department_ids: d.department_ids.clone(),
            words: d.words.len(),
            updated_at: d.updated_at,
        }
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DictionaryInput {
    pub name: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub department_ids: Vec<u64>,
    pub words: Vec<WordEntry>,
}

fn yes() -> bool {
    true
}

fn check(input: &DictionaryInput, txn: &WriteTxn) -> AppResult<(String, Vec<u64>, Vec<WordEntry>)> {
    let name = required_text("name", &input.name, 100)?;
    let mut departments = input.department_ids.clone();
    departments.sort_unstable();
    departments.dedup();
    let table = txn.open_table(tables::DEPARTMENTS)?;
    for d in &departments {
        if table.get(*d)?.is_none() {
            return Err(AppError::field(
                "department_ids",
                format!("department {d} does not exist"),
            ));
        }
    }
    if input.words.len() > MAX_WORDS_PER_DICTIONARY {
        return Err(AppError::field(
            "words",
            format!("at most {MAX_WORDS_PER_DICTIONARY} words per dictionary"),
        ));
    }
    let mut words: Vec<WordEntry> = Vec::with_capacity(input.words.len());
    let mut seen = std::collections::HashSet::new();
    for (i, entry) in input.words.iter().enumerate() {
        let word = required_text(&format!("words[{i}].word"), &entry.word, MAX_WORD_CHARS)?;
        let category = crate::org::service::optional_text(
            &format!("words[{i}].category"),
            &entry.category,
            40,
        )?;
        if seen.insert(crate::text::normalise(&word)) {
            words.push(WordEntry {
                word,
                category,
                severity: entry.severity,
            });
        }
    }
    Ok((name, departments, words))
}

pub fn list(txn: &ReadTransaction) -> AppResult<Vec<Dictionary>> {
    all_records(&txn.open_table(tables::SENSITIVE_DICTIONARIES)?)
}

pub fn get(txn: &ReadTransaction, id: u64) -> AppResult<Dictionary> {
    get_record(&txn.open_table(tables::SENSITIVE_DICTIONARIES)?, id)?
        .ok_or_else(|| AppError::not_found("dictionary"))
}

pub fn put(
    txn: &WriteTxn,
    id: Option<u64>,
    input: &DictionaryInput,
    now: Millis,
) -> AppResult<Dictionary> {
    let (name, department_ids, words) = check(input, txn)?;
    let created_at = match id {
        Some(id) => {
            get_record::<Dictionary>(&txn.open_table(tables::SENSITIVE_DICTIONARIES)?, id)?
                .ok_or_else(|| AppError::not_found("dictionary"))?
                .created_at
        }
        None => now,
    };
    let id = match id {
        Some(id) => id,
        None => next_id(txn, "sensitive_dictionary")?,
    };
    let dictionary = Dictionary {
        id,
        name,
        enabled: input.enabled,
        department_ids,
        words,
        created_at,
        updated_at: now,
    };
    // Compiling proves the words make a matcher before anything is stored.
    Matcher::new(sensitive_words(&dictionary))?;
    txn.open_table(tables::SENSITIVE_DICTIONARIES)?
        .insert(id, codec::encode(&dictionary).as_slice())?;
    Ok(dictionary)
}

pub fn delete(txn: &WriteTxn, id: u64) -> AppResult<Dictionary> {
    let dictionary: Dictionary = get_record(&txn.open_table(tables::SENSITIVE_DICTIONARIES)?, id)?
        .ok_or_else(|| AppError::not_found("dictionary"))?;
    txn.open_table(tables::SENSITIVE_DICTIONARIES)?.remove(id)?;
    Ok(dictionary)
}

fn sensitive_words(dictionary: &Dictionary) -> Vec<SensitiveWord> {
    dictionary
        .words
        .iter()
        .map(|w| SensitiveWord {
            word: w.word.clone(),
            category: w.category.clone(),
            severity: w.severity,
        })
        .collect()
}

// ---------------------------------------------------------------- the compiled guard

struct Compiled {
    dictionary_id: u64,
    name: String,
    department_ids: Vec<u64>,
    matcher: Matcher,
}

/// One sensitive word found in a text.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct SensitiveMatch {
    /// The dictionary's word.
    pub word: String,
    pub category: String,
    #[schemars(with = "String")]
    pub severity: Severity,
    pub dictionary_id: u64,
    pub dictionary: String,
    /// What was written, as it appears in the text.
    pub text: String,
    /// Where, in UTF-16 code units (as a browser's string indexes count).
    pub start: usize,
    pub end: usize,
    /// `text` (the letters, however disguised) or `sound` (pinyin, same-sounding characters).
    #[schemars(with = "String")]
    pub via: Via,
}

/// Every enabled dictionary, compiled; swapped whole when one changes.
#[derive(Default)]
pub struct Guard {
    compiled: ArcSwap<Vec<Compiled>>,
}

/// Whose dictionaries apply.
pub enum Scope<'a> {
    /// An employee in this department (their replies).
    Employee {
        department_id: u64,
        tree: &'a DepartmentTree,
    },
    /// A customer's message on a conversation of this team (or none).
    Conversation {
        team_id: Option<u64>,
        tree: &'a DepartmentTree,
    },
}

impl Guard {
    /// Compiles every enabled dictionary of the store.
    pub fn load(&self, txn: &ReadTransaction) -> AppResult<()> {
        let mut compiled = Vec::new();
        for dictionary in list(txn)? {
            if !dictionary.enabled || dictionary.words.is_empty() {
                continue;
            }
            compiled.push(Compiled {
                dictionary_id: dictionary.id,
                name: dictionary.name.clone(),
                department_ids: dictionary.department_ids.clone(),
                matcher: Matcher::new(sensitive_words(&dictionary))?,
            });
        }
        self.compiled.store(Arc::new(compiled));
        Ok(())
    }

    /// The sensitive words in `text` under the dictionaries that apply, in text order.
    pub fn check(&self, text: &str, scope: Scope<'_>) -> Vec<SensitiveMatch> {
        let compiled = self.compiled.load();
        let mut out = Vec::new();
        for c in compiled.iter() {
            let applies = c.department_ids.is_empty()
                || match &scope {
                    Scope::Employee {
                        department_id,
                        tree,
                    } => c
                        .department_ids
                        .iter()
                        .any(|d| tree.is_within(*department_id, *d)),
                    Scope::Conversation { team_id, tree } => team_id.is_some_and(|team| {
                        c.department_ids.iter().any(|d| tree.is_within(team, *d))
                    }),
                };
            if !applies {
                continue;
            }
            for found in c.matcher.scan(text) {
                let word = &c.matcher.words()[found.word];
                out.push(SensitiveMatch {
                    word: word.word.clone(),
                    category: word.category.clone(),
                    severity: word.severity,
                    dictionary_id: c.dictionary_id,
                    dictionary: c.name.clone(),
                    text: text[found.start..found.end].to_string(),
                    start: utf16_len(&text[..found.start]),
                    end: utf16_len(&text[..found.end]),
                    via: found.via,
                });
            }
        }
        out.sort_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)));
        out.dedup_by(|a, b| a.start == b.start && a.end == b.end && a.word == b.word);
        out
    }
}

fn utf16_len(text: &str) -> usize {
    text.chars().map(char::len_utf16).sum()
}

/// What a reply's matches mean: refused, needs confirmation, or may go.
pub fn verdict(matches: &[SensitiveMatch], confirmed: bool) -> AppResult<()> {
    let names = |severity: Severity| -> Vec<String> {
        let mut words: Vec<String> = matches
            .iter()
            .filter(|m| m.severity == severity)
            .map(|m| format!("“{}” ({})", m.text, m.category))
            .collect();
        words.dedup();
        words
    };
    let details = || serde_json::json!({ "matches": matches });
    let blocked = names(Severity::Block);
    if !blocked.is_empty() {
        return Err(AppError::new(
            crate::error::ErrorCode::SensitiveWordBlocked,
            format!(
                "the reply was not sent: it contains {}, which may not be sent to customers",
                blocked.join(", ")
            ),
        )
        .with_details(details()));
    }
    let warned = names(Severity::Warn);
    if !warned.is_empty() && !confirmed {
        return Err(AppError::new(
            crate::error::ErrorCode::SensitiveWordConfirm,
            format!(
                "the reply contains {}; confirm to send it anyway",
                warned.join(", ")
            ),
        )
        .with_details(details()));
    }
    Ok(())
}
