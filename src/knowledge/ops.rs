//! The knowledge base's operations as the HTTP layer calls them: who may do what, the write
//! with its audit entry, and keeping the search index in step after the commit.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::audit::{self, AuditEvent};
use crate::auth::Caller;
use crate::auth::rbac::Permission;
use crate::clock::Millis;
use crate::error::{AppError, AppResult};
use crate::knowledge::service::{
    self, ArticleDetail, ArticlePatch, ArticleSummary, DraftInput, EntityInput, GraphView,
    NewArticle, RelationInput, VersionSummary,
};
use crate::knowledge::{
    Article, ArticleContent, ArticleStatus, ArticleVersion, DraftState, Entity, EntityKind,
    NodeRef, Relation, SynonymSet, Visibility,
};
use crate::knowledge::{gaps, portable};
use crate::state::Core;
use crate::storage::WriteTxn;
use crate::text::{self, Language};

// ---------------------------------------------------------------- who may

/// Whether the caller may read this content.
pub fn may_read(caller: &Caller, content: &ArticleContent) -> bool {
    if caller.access.is_everywhere(Permission::KnowledgeManage) {
        return true;
    }
    if !caller.access.has(Permission::KnowledgeRead) {
        return false;
    }
    match content.visibility {
        Visibility::Internal | Visibility::Public => true,
        Visibility::Departments => content
            .department_ids
            .iter()
            .any(|d| caller.index.departments.is_within(caller.department_id, *d)),
    }
}

/// Whether the caller may see the article at all: its published content, or (for writers) its
/// draft.
fn may_see(caller: &Caller, article: &Article) -> bool {
    article
        .published
        .as_ref()
        .is_some_and(|c| may_read(caller, c))
        || (caller.access.has(Permission::KnowledgeWrite)
            && article
                .draft
                .as_ref()
                .is_some_and(|d| may_read(caller, &d.content)))
}

/// Reviewing and publishing content needs `knowledge.manage` where its readers are: everywhere
/// for internal and public articles, in each department for a departments-only one.
fn require_manage_for(caller: &Caller, content: &ArticleContent) -> AppResult<()> {
    match content.visibility {
        Visibility::Departments => {
            for d in &content.department_ids {
                caller.require_in(Permission::KnowledgeManage, *d)?;
            }
            Ok(())
        }
        _ => caller.require_everywhere(Permission::KnowledgeManage),
    }
}

/// What the caller sees of an article: the draft only for writers.
fn shown(caller: &Caller, mut article: Article) -> AppResult<Article> {
    if !may_see(caller, &article) {
        return Err(AppError::not_found("article"));
    }
    if !caller.access.has(Permission::KnowledgeWrite) {
        article.draft = None;
    }
    Ok(article)
}

// ---------------------------------------------------------------- keeping the index in step

/// Indexes what the last writes queued. A failure is logged: the next sync (or the next start)
/// picks the same changes up again.
pub async fn sync_index(core: &Core) {
    let library = core.knowledge.clone();
    let result = core.store.read(move |txn| library.sync(txn)).await;
    if let Err(e) = result {
        tracing::error!(error = %e, "knowledge index update failed; it is retried on the next change");
    }
}

async fn write_audited<R, F>(core: &Core, write: F) -> AppResult<R>
where
    R: Send + 'static,
    F: Fn(&WriteTxn, Millis) -> AppResult<(R, AuditEvent)> + Send + 'static,
{
    let now = core.now();
    let result = core
        .store
        .write(move |txn| {
            let (value, event) = write(txn, now)?;
            audit::append(txn, now, event)?;
            Ok(value)
        })
        .await?;
    sync_index(core).await;
    Ok(result)
}

// ---------------------------------------------------------------- articles

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ArticleFilter {
    /// Text in the title or tags.
    pub q: Option<String>,
    pub status: Option<ArticleStatus>,
    pub draft_state: Option<DraftState>,
    pub lang: Option<Language>,
    pub owner_id: Option<u64>,
    pub tag: Option<String>,
    /// Only articles whose review date has passed.
    pub review_overdue: Option<bool>,
}

pub async fn list_articles(
    core: &Core,
    caller: &Caller,
    filter: ArticleFilter,
) -> AppResult<Vec<ArticleSummary>> {
    caller.require(Permission::KnowledgeRead)?;
    let now = core.now();
    let caller = caller.clone();
    core.store
        .read(move |txn| {
            let q = filter
                .q
                .as_deref()
                .map(text::normalise)
                .filter(|q| !q.is_empty());
            let mut out = Vec::new();
            for article in service::articles(txn)? {
                if !may_see(&caller, &article) {
                    continue;
                }
                let article = shown(&caller, article)?;
                let Some(summary) = ArticleSummary::of(&article) else {
                    continue;
                };
                if filter.status.is_some_and(|s| s != summary.status)
                    || filter
                        .draft_state
                        .is_some_and(|s| summary.draft_state != Some(s))
                    || filter.lang.is_some_and(|l| l != summary.lang)
                    || filter.owner_id.is_some_and(|o| o != summary.owner_id)
                    || filter
                        .tag
                        .as_deref()
                        .is_some_and(|t| !summary.tags.iter().any(|x| x == &t.to_lowercase()))
                    || (filter.review_overdue == Some(true)
                        && summary.review_due.is_none_or(|d| d > now))
                {
                    continue;
                }
                if let Some(q) = &q {
                    let hay =
                        text::normalise(&format!("{} {}", summary.title, summary.tags.join(" ")));
                    if !hay.contains(q.as_str()) {
                        continue;
                    }
                }
                out.push(summary);
            }
            out.sort_by(|a, b| b.updated_at.cmp(&a.updated_at).then(b.id.cmp(&a.id)));
            Ok(out)
        })
        .await
}

pub async fn get_article(core: &Core, caller: &Caller, id: u64) -> AppResult<ArticleDetail> {
    caller.require(Permission::KnowledgeRead)?;
    let caller = caller.clone();
    core.store
        .read(move |txn| {
            let article = shown(&caller, service::article(txn, id)?)?;
            Ok(ArticleDetail {
                relations: service::relation_views(txn, NodeRef::article(id))?,
                learned_questions: service::learned_questions(txn, id)?.len(),
                article,
            })
        })
        .await
}

pub async fn create_article(core: &Core, caller: &Caller, input: NewArticle) -> AppResult<Article> {
    caller.require(Permission::KnowledgeWrite)?;
    let actor = caller.clone();
    write_audited(core, move |txn, now| {
        let article = service::create_article(txn, actor.employee_id, &input, now)?;
        let title = article
            .working()
            .map(|c| c.title.clone())
            .unwrap_or_default();
        Ok((
            article.clone(),
            AuditEvent::new(&actor.actor, "knowledge.article_created")
                .target(format!("article:{}", article.id))
                .details(json!({ "title": title })),
        ))
    })
    .await
}

/// Loads an article inside a write and checks the caller may see it.
fn visible_in_write(txn: &WriteTxn, caller: &Caller, id: u64) -> AppResult<Article> {
    let article: Article = crate::storage::get_record(
        &txn.open_table(crate::storage::tables::KNOWLEDGE_ARTICLES)?,
        id,
    )?
    .ok_or_else(|| AppError::not_found("article"))?;
    if !may_see(caller, &article) {
        return Err(AppError::not_found("article"));
    }
    Ok(article)
}

pub async fn save_draft(
    core: &Core,
    caller: &Caller,
    id: u64,
    input: DraftInput,
) -> AppResult<Article> {
    caller.require(Permission::KnowledgeWrite)?;
    let actor = caller.clone();
    write_audited(core, move |txn, now| {
        visible_in_write(txn, &actor, id)?;
        let article = service::save_draft(txn, id, actor.employee_id, &input, now)?;
        // The writer must still be able to read what they wrote.
        if let Some(draft) = &article.draft
            && !may_read(&actor, &draft.content)
        {
            return Err(AppError::field(
                "department_ids",
                "you would no longer be able to read the article; include your own department",
            ));
        }
        Ok((
            article,
            AuditEvent::new(&actor.actor, "knowledge.draft_saved").target(format!("article:{id}")),
        ))
    })
    .await
}

pub async fn submit(core: &Core, caller: &Caller, id: u64) -> AppResult<Article> {
    caller.require(Permission::KnowledgeWrite)?;
    let actor = caller.clone();
    let article = write_audited(core, move |txn, now| {
        visible_in_write(txn, &actor, id)?;
        let article = service::submit(txn, id, now)?;
        Ok((
            article,
            AuditEvent::new(&actor.actor, "knowledge.submitted").target(format!("article:{id}")),
        ))
    })
    .await?;
    Ok(article)
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewNote {
    pub note: String,
}

pub async fn request_changes(
    core: &Core,
    caller: &Caller,
    id: u64,
    note: ReviewNote,
) -> AppResult<Article> {
    caller.require(Permission::KnowledgeManage)?;
    let actor = caller.clone();
    write_audited(core, move |txn, now| {
        let current = visible_in_write(txn, &actor, id)?;
        if let Some(draft) = &current.draft {
            require_manage_for(&actor, &draft.content)?;
        }
        let article = service::request_changes(txn, id, &note.note, now)?;
        Ok((
            article,
            AuditEvent::new(&actor.actor, "knowledge.changes_requested")
                .target(format!("article:{id}"))
                .details(json!({ "note": note.note })),
        ))
    })
    .await
}

pub async fn publish(core: &Core, caller: &Caller, id: u64) -> AppResult<Article> {
    caller.require(Permission::KnowledgeManage)?;
    let actor = caller.clone();
    write_audited(core, move |txn, now| {
        let current = visible_in_write(txn, &actor, id)?;
        if let Some(draft) = &current.draft {
            require_manage_for(&actor, &draft.content)?;
        }
        if let Some(published) = &current.published {
            require_manage_for(&actor, published)?;
        }
        let article = service::publish(txn, id, actor.employee_id, now)?;
        if let Some(content) = &article.published {
            gaps::complete_with(
                txn,
                id,
                content.lang,
                &format!("{}\n{}", content.title, content.body),
                now,
            )?;
        }
        Ok((
            article.clone(),
            AuditEvent::new(&actor.actor, "knowledge.published")
                .target(format!("article:{id}"))
                .details(json!({ "version": article.version })),
        ))
    })
    .await
}

pub async fn set_archived(
    core: &Core,
    caller: &Caller,
    id: u64,
    archived: bool,
) -> AppResult<Article> {
    caller.require(Permission::KnowledgeManage)?;
    let actor = caller.clone();
    write_audited(core, move |txn, now| {
        let current = visible_in_write(txn, &actor, id)?;
        if let Some(content) = current.working() {
            require_manage_for(&actor, content)?;
        }
        let article = service::set_archived(txn, id, archived, now)?;
        Ok((
            article,
            AuditEvent::new(
                &actor.actor,
                if archived {
                    "knowledge.archived"
                } else {
                    "knowledge.unarchived"
                },
            )
            .target(format!("article:{id}")),
        ))
    })
    .await
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoreRequest {
    pub version: u32,
    /// When the article has a draft: its `updated_at` as the editor saw it; a draft changed
    /// since is a `draft_conflict` rather than overwritten.
    #[serde(default)]
    pub base_updated_at: Option<Millis>,
}

pub async fn restore(
    core: &Core,
    caller: &Caller,
    id: u64,
    request: RestoreRequest,
) -> AppResult<Article> {
    caller.require(Permission::KnowledgeWrite)?;
    let actor = caller.clone();
    write_audited(core, move |txn, now| {
        visible_in_write(txn, &actor, id)?;
        let article = service::restore(
            txn,
            id,
            request.version,
            request.base_updated_at,
            actor.employee_id,
            now,
        )?;
        Ok((
            article,
            AuditEvent::new(&actor.actor, "knowledge.version_restored")
                .target(format!("article:{id}"))
                .details(json!({ "version": request.version })),
        ))
    })
    .await
}

pub async fn discard_draft(core: &Core, caller: &Caller, id: u64) -> AppResult<Option<Article>> {
    caller.require(Permission::KnowledgeWrite)?;
    let actor = caller.clone();
    write_audited(core, move |txn, now| {
        visible_in_write(txn, &actor, id)?;
        let article = service::discard_draft(txn, id, now)?;
        Ok((
            article,
            AuditEvent::new(&actor.actor, "knowledge.draft_discarded")
                .target(format!("article:{id}")),
        ))
    })
    .await
}

pub async fn patch_article(
    core: &Core,
    caller: &Caller,
    id: u64,
    patch: ArticlePatch,
) -> AppResult<Article> {
    caller.require(Permission::KnowledgeManage)?;
    let actor = caller.clone();
    write_audited(core, move |txn, now| {
        let current = visible_in_write(txn, &actor, id)?;
        if let Some(content) = current.working() {
            require_manage_for(&actor, content)?;
        }
        let article = service::patch_article(txn, id, &patch, now)?;
        Ok((
            article.clone(),
            AuditEvent::new(&actor.actor, "knowledge.article_updated")
                .target(format!("article:{id}"))
                .details(json!({ "owner_id": article.owner_id, "review_due": article.review_due })),
        ))
    })
    .await
}

pub async fn versions(core: &Core, caller: &Caller, id: u64) -> AppResult<Vec<VersionSummary>> {
    caller.require(Permission::KnowledgeRead)?;
    let caller = caller.clone();
    core.store
        .read(move |txn| {
            shown(&caller, service::article(txn, id)?)?;
            service::versions(txn, id)
        })
        .await
}

pub async fn version(
    core: &Core,
    caller: &Caller,
    id: u64,
    number: u32,
) -> AppResult<ArticleVersion> {
    caller.require(Permission::KnowledgeRead)?;
    let caller = caller.clone();
    core.store
        .read(move |txn| {
            shown(&caller, service::article(txn, id)?)?;
            let version = service::version(txn, id, number)?;
            if !may_read(&caller, &version.content) {
                return Err(AppError::not_found("article version"));
            }
            Ok(version)
        })
        .await
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LearnRequest {
    /// The customer's question the article answered.
    pub question: String,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Learned {
    /// False when the article already knew this question.
    pub added: bool,
}

pub async fn learn_question(
    core: &Core,
    caller: &Caller,
    id: u64,
    request: LearnRequest,
) -> AppResult<Learned> {
    caller.require(Permission::ConversationsReply)?;
    caller.require(Permission::KnowledgeRead)?;
    let actor = caller.clone();
    let added = write_audited(core, move |txn, now| {
        let article = visible_in_write(txn, &actor, id)?;
        if article.live().is_none() {
            return Err(AppError::conflict(
                "only a published article can learn questions",
            ));
        }
        let added = service::learn_question(txn, id, &request.question, actor.employee_id, now)?;
        Ok((
            added,
            AuditEvent::new(&actor.actor, "knowledge.question_learned")
                .target(format!("article:{id}")),
        ))
    })
    .await?;
    Ok(Learned { added })
}

// ---------------------------------------------------------------- entities and relations

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EntityFilter {
    pub kind: Option<EntityKind>,
    /// Text in the name or an alias.
    pub q: Option<String>,
}

pub async fn list_entities(
    core: &Core,
    caller: &Caller,
    filter: EntityFilter,
) -> AppResult<Vec<Entity>> {
    caller.require(Permission::KnowledgeRead)?;
    core.store
        .read(move |txn| {
            let q = filter
                .q
                .as_deref()
                .map(text::normalise)
                .filter(|q| !q.is_empty());
            let mut out: Vec<Entity> = service::entities(txn)?
                .into_iter()
                .filter(|e| filter.kind.is_none_or(|k| k == e.kind))
                .filter(|e| {
                    q.as_ref()
                        .is_none_or(|q| e.names().any(|n| text::normalise(n).contains(q.as_str())))
                })
                .collect();
            out.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
            Ok(out)
        })
        .await
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct EntityDetail {
    #[serde(flatten)]
    pub entity: Entity,
    pub relations: Vec<service::RelationView>,
}

pub async fn get_entity(core: &Core, caller: &Caller, id: u64) -> AppResult<EntityDetail> {
    caller.require(Permission::KnowledgeRead)?;
    let caller = caller.clone();
    core.store
        .read(move |txn| {
            let entity = service::entity(txn, id)?;
            let relations = service::relation_views(txn, NodeRef::entity(id))?
                .into_iter()
                .filter(|r| {
                    node_visible(txn, &caller, r.from.node) && node_visible(txn, &caller, r.to.node)
                })
                .collect();
            Ok(EntityDetail { entity, relations })
        })
        .await
}

/// Whether the caller may see a node of the graph: every entity, the articles they may see.
fn node_visible(txn: &redb::ReadTransaction, caller: &Caller, node: NodeRef) -> bool {
    match node.kind {
        crate::knowledge::NodeKind::Entity => true,
        crate::knowledge::NodeKind::Article => service::article(txn, node.id)
            .map(|a| may_see(caller, &a))
            .unwrap_or(false),
    }
}

pub async fn put_entity(
    core: &Core,
    caller: &Caller,
    id: Option<u64>,
    input: EntityInput,
) -> AppResult<Entity> {
    caller.require_everywhere(Permission::KnowledgeManage)?;
    let actor = caller.clone();
    write_audited(core, move |txn, now| {
        let entity = service::put_entity(txn, id, &input, now)?;
        Ok((
            entity.clone(),
            AuditEvent::new(
                &actor.actor,
                if id.is_some() {
                    "knowledge.entity_updated"
                } else {
                    "knowledge.entity_created"
                },
            )
            .target(format!("entity:{}", entity.id))
            .details(json!({ "kind": entity.kind, "name": entity.name })),
        ))
    })
    .await
}

pub async fn delete_entity(core: &Core, caller: &Caller, id: u64) -> AppResult<()> {
    caller.require_everywhere(Permission::KnowledgeManage)?;
    let actor = caller.clone();
    write_audited(core, move |txn, _now| {
        let entity = service::delete_entity(txn, id)?;
        Ok((
            (),
            AuditEvent::new(&actor.actor, "knowledge.entity_deleted")
                .target(format!("entity:{id}"))
                .details(json!({ "name": entity.name })),
        ))
    })
    .await
}

/// Relations between entities shape the graph everyone uses: `knowledge.manage`. Relating an
/// article one may write to an entity is part of writing it: `knowledge.write`.
fn require_relate(txn: &WriteTxn, caller: &Caller, input: &RelationInput) -> AppResult<()> {
    let articles: Vec<NodeRef> = [input.from, input.to]
        .into_iter()
        .filter(|n| n.kind == crate::knowledge::NodeKind::Article)
        .collect();
    if articles.is_empty() {
        return caller.require_everywhere(Permission::KnowledgeManage);
    }
    caller.require(Permission::KnowledgeWrite)?;
    for node in articles {
        visible_in_write(txn, caller, node.id)?;
    }
    Ok(())
}

pub async fn add_relation(
    core: &Core,
    caller: &Caller,
    input: RelationInput,
) -> AppResult<Relation> {
    caller.require(Permission::KnowledgeWrite)?;
    let actor = caller.clone();
    write_audited(core, move |txn, now| {
        require_relate(txn, &actor, &input)?;
        let relation = service::add_relation(txn, &input, now)?;
        Ok((
            relation.clone(),
            AuditEvent::new(&actor.actor, "knowledge.relation_added")
                .target(format!("relation:{}", relation.id))
                .details(json!({
                    "from": relation.from.to_string(),
                    "kind": relation.kind.as_str(),
                    "to": relation.to.to_string(),
                })),
        ))
    })
    .await
}

pub async fn remove_relation(core: &Core, caller: &Caller, id: u64) -> AppResult<()> {
    caller.require(Permission::KnowledgeWrite)?;
    let actor = caller.clone();
    write_audited(core, move |txn, _now| {
        let relation: Relation = crate::storage::get_record(
            &txn.open_table(crate::storage::tables::KNOWLEDGE_RELATIONS)?,
            id,
        )?
        .ok_or_else(|| AppError::not_found("relation"))?;
        require_relate(
            txn,
            &actor,
            &RelationInput {
                from: relation.from,
                kind: relation.kind,
                to: relation.to,
            },
        )?;
        service::remove_relation(txn, id)?;
        Ok((
            (),
            AuditEvent::new(&actor.actor, "knowledge.relation_removed")
                .target(format!("relation:{id}"))
                .details(json!({
                    "from": relation.from.to_string(),
                    "kind": relation.kind.as_str(),
                    "to": relation.to.to_string(),
                })),
        ))
    })
    .await
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GraphQuery {
    /// Relations away from the centre (1 to 3; default 2).
    pub depth: Option<u32>,
}

pub async fn graph(
    core: &Core,
    caller: &Caller,
    center: NodeRef,
    query: GraphQuery,
) -> AppResult<GraphView> {
    caller.require(Permission::KnowledgeRead)?;
    let depth = query.depth.unwrap_or(2).clamp(1, 3);
    let caller = caller.clone();
    core.store
        .read(move |txn| {
            if center.kind == crate::knowledge::NodeKind::Article {
                shown(&caller, service::article(txn, center.id)?)?;
            }
            service::graph(txn, center, depth, 150, &|node| {
                node_visible(txn, &caller, node)
            })
        })
        .await
}

// ---------------------------------------------------------------- synonyms

pub async fn synonyms(core: &Core, caller: &Caller) -> AppResult<Vec<SynonymSet>> {
    caller.require(Permission::KnowledgeRead)?;
    core.store.read(service::synonym_sets).await
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SynonymsInput {
    /// Every set of terms that mean the same; replaces the stored sets.
    pub sets: Vec<Vec<String>>,
}

pub async fn replace_synonyms(
    core: &Core,
    caller: &Caller,
    input: SynonymsInput,
) -> AppResult<Vec<SynonymSet>> {
    caller.require_everywhere(Permission::KnowledgeManage)?;
    let actor = caller.clone();
    let sets = write_audited(core, move |txn, now| {
        let sets = service::replace_synonyms(txn, &input.sets, now)?;
        Ok((
            sets.clone(),
            AuditEvent::new(&actor.actor, "knowledge.synonyms_replaced")
                .details(json!({ "sets": sets.len() })),
        ))
    })
    .await?;
    Ok(sets)
}

// ---------------------------------------------------------------- search

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    pub q: String,
    /// The articles' language; by default the question's.
    pub lang: Option<Language>,
    /// At most 20; default 5.
    pub limit: Option<usize>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SearchAnswer {
    pub article_id: u64,
    pub title: String,
    pub lang: Language,
    pub visibility: Visibility,
    pub score: f32,
    /// The part of the article that best answers the question.
    pub passage: String,
    /// How the knowledge graph led here, when it did: from what the question names, along
    /// relations, to what the article is about.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub path: Vec<PathStep>,
}

/// One step of a search answer's path through the graph.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum PathStep {
    Entity {
        id: u64,
        name: String,
        kind: EntityKind,
    },
    Relation {
        kind: String,
    },
}

/// The path of a hit (`e:<id>` and relation names) with the entities' names.
pub fn path_steps(txn: &redb::ReadTransaction, path: &[String]) -> Vec<PathStep> {
    path.iter()
        .filter_map(|step| match step.strip_prefix("e:") {
            Some(id) => {
                let id: u64 = id.parse().ok()?;
                let entity = service::entity(txn, id).ok()?;
                Some(PathStep::Entity {
                    id,
                    name: entity.name,
                    kind: entity.kind,
                })
            }
            None => Some(PathStep::Relation { kind: step.clone() }),
        })
        .collect()
}

/// A hit's passage (the index's choice) for display: without its section's heading line, cut
/// to a readable length.
pub fn display_passage(hit: &crate::knowledge::search::Hit) -> String {
    let Some(passage) = hit.passage() else {
        return String::new();
    };
    let text = passage.text.trim();
    let shown = match text.split_once('\n') {
        Some((first, rest)) if first.starts_with('#') && !rest.trim().is_empty() => rest.trim(),
        _ => text,
    };
    if shown.chars().count() > 400 {
        let cut: String = shown.chars().take(400).collect();
        format!("{cut}…")
    } else {
        shown.to_string()
    }
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SearchResults {
    pub lang: Language,
    pub answers: Vec<SearchAnswer>,
}

pub fn question_language(question: &str, asked: Option<Language>) -> Language {
    match asked {
        Some(Language::Zh) => Language::Zh,
        Some(Language::En) => Language::En,
        _ => text::search_language(question),
    }
}

fn check_question(q: &str) -> AppResult<String> {
    let q = q.trim();
    if q.is_empty() {
        return Err(AppError::new(
            crate::error::ErrorCode::InvalidQuery,
            "q: must not be empty",
        ));
    }
    if q.chars().count() > 500 {
        return Err(AppError::new(
            crate::error::ErrorCode::InvalidQuery,
            "q: must have at most 500 characters",
        ));
    }
    Ok(q.to_string())
}

/// The published articles the reader may read (`None`: the public, who read public articles
/// only) that best answer `question`, with their passages; and how well the first one covers
/// the question's words (for knowledge gaps).
pub fn readable_answers(
    txn: &redb::ReadTransaction,
    library: &crate::knowledge::library::Library,
    reader: Option<&Caller>,
    question: &str,
    lang: Language,
    limit: usize,
) -> AppResult<(Vec<SearchAnswer>, f32)> {
    let hits = library.search(question, lang, limit * 4 + 10)?;
    let mut answers = Vec::new();
    let mut covered = 0.0;
    for (id, hit) in hits {
        let Ok(article) = service::article(txn, id) else {
            continue;
        };
        let Some(content) = article.live() else {
            continue;
        };
        let readable = match reader {
            Some(caller) => may_read(caller, content),
            None => content.visibility == Visibility::Public,
        };
        if !readable {
            continue;
        }
        if answers.is_empty() {
            covered = gaps::coverage(
                &gaps::terms(question),
                &format!("{}\n{}", content.title, content.body),
            );
        }
        answers.push(SearchAnswer {
            article_id: id,
            title: content.title.clone(),
            lang: content.lang,
            visibility: content.visibility,
            score: hit.score,
            passage: display_passage(&hit),
            path: path_steps(txn, &hit.path),
        });
        if answers.len() == limit {
            break;
        }
    }
    Ok((answers, covered))
}

/// Searches published articles the reader may read (`None`: the public, who read public
/// articles only), and counts the question for knowledge gaps.
async fn search_for(
    core: &Core,
    reader: Option<Caller>,
    query: SearchQuery,
    source: gaps::QuestionSource,
) -> AppResult<SearchResults> {
    let question = check_question(&query.q)?;
    let lang = question_language(&question, query.lang);
    let limit = query.limit.unwrap_or(5).clamp(1, 20);
    let library = core.knowledge.clone();
    core.store
        .read(move |txn| {
            let (answers, covered) =
                readable_answers(txn, &library, reader.as_ref(), &question, lang, limit)?;
            Ok((SearchResults { lang, answers }, question, covered))
        })
        .await
        .map(|(results, question, covered)| {
            count_question(core, question, results.lang, covered, source);
            results
        })
}

/// Counts a question for knowledge gaps, in the background: the answer does not wait.
pub fn count_question(
    core: &Core,
    question: String,
    lang: Language,
    coverage: f32,
    source: gaps::QuestionSource,
) {
    let store = core.store.clone();
    let now = core.now();
    let answered = coverage >= gaps::ANSWERED_COVERAGE;
    tokio::spawn(async move {
        let terms = gaps::terms(&question);
        let result = async {
            let found = store
                .read(move |txn| gaps::find_cluster(txn, lang, &terms))
                .await?;
            store
                .write(move |txn| gaps::record(txn, found, &question, lang, answered, now))
                .await
        }
        .await;
        match result {
            Ok(Some(task)) => tracing::info!(
                task = task.id,
                asked = task.asked,
                ?source,
                "a group of unanswered questions opened a knowledge task"
            ),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "could not count a question for knowledge gaps"),
        }
    });
}

pub async fn search(core: &Core, caller: &Caller, query: SearchQuery) -> AppResult<SearchResults> {
    caller.require(Permission::KnowledgeRead)?;
    search_for(
        core,
        Some(caller.clone()),
        query,
        gaps::QuestionSource::Employee,
    )
    .await
}

/// The help centre's search: public articles only.
pub async fn public_search(core: &Core, query: SearchQuery) -> AppResult<SearchResults> {
    search_for(core, None, query, gaps::QuestionSource::HelpCentre).await
}

/// The web chat widget's search: the help centre's, counted as the widget's.
pub async fn widget_search(core: &Core, query: SearchQuery) -> AppResult<SearchResults> {
    search_for(core, None, query, gaps::QuestionSource::Widget).await
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PublicArticle {
    pub id: u64,
    pub title: String,
    pub body: String,
    pub lang: Language,
    pub version: u32,
    pub published_at: Option<Millis>,
}

pub async fn public_article(core: &Core, id: u64) -> AppResult<PublicArticle> {
    core.store
        .read(move |txn| {
            let article = service::article(txn, id)?;
            match article.live() {
                Some(content) if content.visibility == Visibility::Public => Ok(PublicArticle {
                    id,
                    title: content.title.clone(),
                    body: content.body.clone(),
                    lang: content.lang,
                    version: article.version,
                    published_at: article.published_at,
                }),
                _ => Err(AppError::not_found("article")),
            }
        })
        .await
}

// ---------------------------------------------------------------- import and export

/// Imports a JSON bundle, a Markdown file or a zip of them. Entities, relations and synonyms
/// shape everyone's search: `knowledge.manage` organisation-wide.
pub async fn import(
    core: &Core,
    caller: &Caller,
    name: String,
    bytes: Vec<u8>,
    publish: bool,
) -> AppResult<portable::ImportReport> {
    caller.require_everywhere(Permission::KnowledgeManage)?;
    let bundle = portable::parse_upload(&name, &bytes)?;
    let actor = caller.clone();
    write_audited(core, move |txn, now| {
        let report = portable::import(txn, &bundle, actor.employee_id, publish, now)?;
        Ok((
            report.clone(),
            AuditEvent::new(&actor.actor, "knowledge.imported")
                .details(json!({ "file": name, "publish": publish, "report": report })),
        ))
    })
    .await
}

#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExportFormat {
    #[default]
    Json,
    /// A zip of Markdown files with TOML front matter, and `graph.json`.
    Markdown,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    pub format: Option<ExportFormat>,
}

/// The export's bytes, content type and file name.
pub async fn export(
    core: &Core,
    caller: &Caller,
    query: ExportQuery,
) -> AppResult<(Vec<u8>, &'static str, String)> {
    caller.require(Permission::KnowledgeRead)?;
    let reader = caller.clone();
    let bundle = core
        .store
        .read(move |txn| portable::export(txn, &|a| may_see(&reader, a)))
        .await?;
    let day = crate::clock::format_rfc3339(core.now())[..10].to_string();
    let actor = caller.clone();
    let format = query.format.unwrap_or_default();
    let articles = bundle.articles.len();
    let now = core.now();
    core.store
        .write(move |txn| {
            audit::append(
                txn,
                now,
                AuditEvent::new(&actor.actor, "knowledge.exported")
                    .details(json!({ "articles": articles })),
            )
            .map(|_| ())
        })
        .await?;
    match format {
        ExportFormat::Json => Ok((
            serde_json::to_vec_pretty(&bundle)
                .map_err(|e| AppError::internal(format!("export: {e}")))?,
            "application/json",
            format!("knowledge-{day}.json"),
        )),
        ExportFormat::Markdown => Ok((
            portable::to_markdown_zip(&bundle)?,
            "application/zip",
            format!("knowledge-{day}.zip"),
        )),
    }
}

// ---------------------------------------------------------------- knowledge tasks

pub async fn tasks(core: &Core, caller: &Caller) -> AppResult<Vec<gaps::KnowledgeTask>> {
    caller.require(Permission::KnowledgeWrite)?;
    core.store.read(gaps::tasks).await
}

pub async fn patch_task(
    core: &Core,
    caller: &Caller,
    id: u64,
    patch: gaps::TaskPatch,
) -> AppResult<gaps::KnowledgeTask> {
    caller.require_everywhere(Permission::KnowledgeManage)?;
    let actor = caller.clone();
    write_audited(core, move |txn, now| {
        let task = gaps::patch_task(txn, id, &patch, now)?;
        Ok((
            task.clone(),
            AuditEvent::new(&actor.actor, "knowledge.task_updated")
                .target(format!("knowledge_task:{id}"))
                .details(json!({ "owner_id": task.owner_id, "status": task.status, "article_id": task.article_id })),
        ))
    })
    .await
}
