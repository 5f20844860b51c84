//! Knowledge gaps: customers' questions that found no good article are grouped by their words;
//! a group asked often enough opens a knowledge-base task (an owner, example questions, how often
//! it was asked). Publishing an article that answers the group's question completes the task,
//! and later questions of the group are counted as answered.
//!
//! Questions come from the help centre's search, from reply suggestions (the customer's words in
//! a conversation) and from employees' own searches. A question is answered when the best article
//! found says most of its words (`coverage`), which does not depend on BM25's scale.

use std::collections::BTreeSet;

use redb::{ReadTransaction, ReadableTable};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::clock::Millis;
use crate::error::{AppError, AppResult};
use crate::storage::{Record, WriteTxn, all_records, codec, get_record, next_id, tables};
use crate::text::{self, Language};

/// Unanswered questions of one group that open a task.
pub const TASK_THRESHOLD: u32 = 5;
/// Two questions belong together when this share of their words is common (Jaccard).
const SAME_GROUP: f32 = 0.5;
/// A question is answered when the best article has this share of its words.
pub const ANSWERED_COVERAGE: f32 = 0.6;
const MAX_EXAMPLES: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum QuestionSource {
    HelpCentre,
    /// The web chat widget's article search.
    Widget,
    Conversation,
    Employee,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct GapCluster {
    pub id: u64,
    pub lang: Language,
    /// The words that define the group.
    pub terms: Vec<String>,
    /// Distinct questions, newest last.
    pub examples: Vec<String>,
    pub asked: u32,
    pub unanswered: u32,
    /// Questions of the group answered after its task was done.
    pub answered_after_task: u32,
    pub first_at: Millis,
    pub last_at: Millis,
    pub task_id: Option<u64>,
}

impl Record for GapCluster {
    const KIND: &'static str = "knowledge gap";
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Open,
    /// An article answers it now.
    Done,
    Dismissed,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct KnowledgeTask {
    pub id: u64,
    pub cluster_id: u64,
    pub lang: Language,
    /// The group's most typical question.
    pub title: String,
    pub examples: Vec<String>,
    pub asked: u32,
    pub owner_id: Option<u64>,
    pub status: TaskStatus,
    pub article_id: Option<u64>,
    pub created_at: Millis,
    pub updated_at: Millis,
    /// Questions of the group answered since it was done.
    #[serde(default)]
    pub answered_since: u32,
}

impl Record for KnowledgeTask {
    const KIND: &'static str = "knowledge task";
}

/// The words a question is grouped by.
pub fn terms(question: &str) -> Vec<String> {
    let mut words: Vec<String> = text::words(&text::normalise_simplified(question))
        .into_iter()
        .filter(|w| !text::is_question_word(w))
        .collect();
    words.sort();
    words.dedup();
    words
}

fn similarity(a: &[String], b: &[String]) -> f32 {
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let a: BTreeSet<&String> = a.iter().collect();
    let b: BTreeSet<&String> = b.iter().collect();
    a.intersection(&b).count() as f32 / a.union(&b).count() as f32
}

/// The share of the question's words the article's text has.
pub fn coverage(question_terms: &[String], article_text: &str) -> f32 {
    if question_terms.is_empty() {
        return 1.0;
    }
    let normal = text::normalise_simplified(article_text);
    let words: BTreeSet<String> = text::words(&normal).into_iter().collect();
    question_terms
        .iter()
        .filter(|t| words.contains(*t) || normal.contains(t.as_str()))
        .count() as f32
        / question_terms.len() as f32
}

/// The group a question belongs to, if any (read side, outside the write).
pub fn find_cluster(
    txn: &ReadTransaction,
    lang: Language,
    question_terms: &[String],
) -> AppResult<Option<u64>> {
    best_cluster(
        &txn.open_table(tables::KNOWLEDGE_GAPS)?,
        lang,
        question_terms,
    )
}

fn best_cluster(
    table: &impl ReadableTable<u64, &'static [u8]>,
    lang: Language,
    question_terms: &[String],
) -> AppResult<Option<u64>> {
    let mut best: Option<(f32, u64)> = None;
    for row in table.iter()? {
        let (_, value) = row?;
        let cluster: GapCluster = codec::decode(value.value())?;
        if cluster.lang != lang {
            continue;
        }
        let s = similarity(question_terms, &cluster.terms);
        if s >= SAME_GROUP && best.is_none_or(|(b, _)| s > b) {
            best = Some((s, cluster.id));
        }
    }
    Ok(best.map(|(_, id)| id))
}

/// Counts a question in its group (or a new one), opening the group's task when it crosses the
/// threshold. Returns the task opened, if one was.
pub fn record(
    txn: &WriteTxn,
    cluster_id: Option<u64>,
    question: &str,
    lang: Language,
    answered: bool,
    now: Millis,
) -> AppResult<Option<KnowledgeTask>> {
    let question_terms = terms(question);
    if question_terms.is_empty() {
        return Ok(None);
    }
    let table = txn.open_table(tables::KNOWLEDGE_GAPS)?;
    // A question like this one may have started a group since the caller looked (questions are
    // counted concurrently): look again here, where no other count can come between.
    let cluster_id = match cluster_id {
        Some(id) => Some(id),
        None => best_cluster(&table, lang, &question_terms)?,
    };
    let existing = match cluster_id {
        Some(id) => get_record::<GapCluster>(&table, id)?,
        None => None,
    };
    drop(table);
    if existing.is_none() && answered {
        // Only what is missing starts a group.
        return Ok(None);
    }
    let mut cluster = match existing {
        Some(c) => c,
        None => GapCluster {
            id: next_id(txn, "knowledge_gap")?,
            lang,
            terms: question_terms.clone(),
            examples: Vec::new(),
            asked: 0,
            unanswered: 0,
            answered_after_task: 0,
            first_at: now,
            last_at: now,
            task_id: None,
        },
    };
    cluster.asked += 1;
    cluster.last_at = now;
    let question = question.trim().chars().take(300).collect::<String>();
    if !cluster
        .examples
        .iter()
        .any(|e| text::normalise(e) == text::normalise(&question))
    {
        cluster.examples.push(question);
        if cluster.examples.len() > MAX_EXAMPLES {
            cluster.examples.remove(0);
        }
    }
    let mut opened = None;
    let mut tasks = txn.open_table(tables::KNOWLEDGE_TASKS)?;
    let task: Option<KnowledgeTask> = match cluster.task_id {
        Some(id) => get_record(&tasks, id)?,
        None => None,
    };
    match task {
        Some(mut task) => {
            task.asked = cluster.asked;
            task.examples = cluster.examples.clone();
            if answered && task.status == TaskStatus::Done {
                cluster.answered_after_task += 1;
                task.answered_since += 1;
            }
            if !answered {
                cluster.unanswered += 1;
                if task.status == TaskStatus::Done {
                    // The article did not answer this one: the task is not done after all.
                    task.status = TaskStatus::Open;
                }
            }
            task.updated_at = now;
            tasks.insert(task.id, codec::encode(&task).as_slice())?;
        }
        None => {
            if !answered {
                cluster.unanswered += 1;
            }
            if cluster.unanswered >= TASK_THRESHOLD {
                let task = KnowledgeTask {
                    id: next_id(txn, "knowledge_task")?,
                    cluster_id: cluster.id,
                    lang: cluster.lang,
                    title: cluster.examples.first().cloned().unwrap_or_default(),
                    examples: cluster.examples.clone(),
                    asked: cluster.asked,
                    owner_id: None,
                    status: TaskStatus::Open,
                    article_id: None,
                    created_at: now,
                    updated_at: now,
                    answered_since: 0,
                };
                tasks.insert(task.id, codec::encode(&task).as_slice())?;
                cluster.task_id = Some(task.id);
                opened = Some(task);
            }
        }
    }
    drop(tasks);
    txn.open_table(tables::KNOWLEDGE_GAPS)?
        .insert(cluster.id, codec::encode(&cluster).as_slice())?;
    Ok(opened)
}

pub fn tasks(txn: &ReadTransaction) -> AppResult<Vec<KnowledgeTask>> {
    let mut all: Vec<KnowledgeTask> = all_records(&txn.open_table(tables::KNOWLEDGE_TASKS)?)?;
    all.sort_by(|a, b| b.asked.cmp(&a.asked).then(b.id.cmp(&a.id)));
    Ok(all)
}

pub fn open_tasks(txn: &WriteTxn) -> AppResult<Vec<KnowledgeTask>> {
    let table = txn.open_table(tables::KNOWLEDGE_TASKS)?;
    let mut out = Vec::new();
    for row in table.iter()? {
        let (_, value) = row?;
        let task: KnowledgeTask = codec::decode(value.value())?;
        if task.status == TaskStatus::Open {
            out.push(task);
        }
    }
    Ok(out)
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskPatch {
    /// `null` leaves it unowned.
    #[serde(
        default,
        deserialize_with = "crate::org::service::double_option::deserialize"
    )]
    #[schemars(with = "Option<u64>")]
    pub owner_id: Option<Option<u64>>,
    pub status: Option<TaskStatus>,
    /// The article that answers it (with `status: done`).
    pub article_id: Option<u64>,
}

pub fn patch_task(
    txn: &WriteTxn,
    id: u64,
    patch: &TaskPatch,
    now: Millis,
) -> AppResult<KnowledgeTask> {
    let mut table = txn.open_table(tables::KNOWLEDGE_TASKS)?;
    let mut task: KnowledgeTask =
        get_record(&table, id)?.ok_or_else(|| AppError::not_found("knowledge task"))?;
    if let Some(owner) = patch.owner_id {
        if let Some(owner) = owner
            && txn.open_table(tables::EMPLOYEES)?.get(owner)?.is_none()
        {
            return Err(AppError::field(
                "owner_id",
                format!("employee {owner} does not exist"),
            ));
        }
        task.owner_id = owner;
    }
    if let Some(article) = patch.article_id {
        if txn
            .open_table(tables::KNOWLEDGE_ARTICLES)?
            .get(article)?
            .is_none()
        {
            return Err(AppError::field(
                "article_id",
                format!("article {article} does not exist"),
            ));
        }
        task.article_id = Some(article);
    }
    if let Some(status) = patch.status {
        task.status = status;
    }
    task.updated_at = now;
    table.insert(id, codec::encode(&task).as_slice())?;
    Ok(task)
}

/// Marks done the open tasks whose question an article just published answers.
pub fn complete_with(
    txn: &WriteTxn,
    article_id: u64,
    lang: Language,
    article_text: &str,
    now: Millis,
) -> AppResult<Vec<u64>> {
    let mut done = Vec::new();
    for mut task in open_tasks(txn)? {
        if task.lang != lang {
            continue;
        }
        let answered = task
            .examples
            .iter()
            .filter(|q| coverage(&terms(q), article_text) >= ANSWERED_COVERAGE)
            .count();
        if answered * 2 > task.examples.len() {
            task.status = TaskStatus::Done;
            task.article_id = Some(article_id);
            task.updated_at = now;
            txn.open_table(tables::KNOWLEDGE_TASKS)?
                .insert(task.id, codec::encode(&task).as_slice())?;
            done.push(task.id);
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn questions_group_by_shared_words_and_coverage_reads_the_article() {
        let a = terms("如何开具增值税专用发票");
        let b = terms("增值税专用发票怎么开具");
        assert!(similarity(&a, &b) >= SAME_GROUP, "{a:?} {b:?}");
        let c = terms("门锁电池多久换一次");
        assert!(similarity(&a, &c) < SAME_GROUP);
        assert!(
            coverage(
                &a,
                "## 增值税专用发票\n在订单页申请开具增值税专用发票，填写税号。"
            ) >= ANSWERED_COVERAGE
        );
        assert!(coverage(&a, "退货流程说明") < ANSWERED_COVERAGE);
    }
}
