//! What is stored for the knowledge base, and the checks on it: articles through draft, review
//! and publication with their versions; entities and relations; synonym sets; learned questions.
//! Pure functions of a transaction and their inputs; permissions are checked by `ops`.

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};

use redb::{ReadTransaction, ReadableTable};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::clock::Millis;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::knowledge::{
    Article, ArticleContent, ArticleStatus, ArticleVersion, Draft, DraftState, Entity, EntityKind,
    LearnedQuestion, NodeKind, NodeRef, Relation, RelationKind, SynonymSet, Visibility,
};
use crate::org::service::{optional_text, required_text};
use crate::storage::{WriteTxn, codec, get_record, next_id, tables};
use crate::text::{self, Language};

pub const MAX_TITLE_CHARS: usize = 200;
pub const MAX_BODY_CHARS: usize = 200_000;
const MAX_TAGS: usize = 20;
const MAX_ALIASES: usize = 50;
const MAX_NAME_CHARS: usize = 120;
/// The newest questions kept per article; older ones stop teaching the index.
pub const MAX_LEARNED_PER_ARTICLE: usize = 200;
const SEQ_COUNTER: &str = "knowledge_seq";
/// Moves on at every change of entities, relations or synonyms: the search's graph and
/// synonyms are rebuilt when it has.
pub const GRAPH_COUNTER: &str = "knowledge_graph_seq";

fn graph_changed(txn: &WriteTxn) -> AppResult<()> {
    next_id(txn, GRAPH_COUNTER).map(|_| ())
}

// ---------------------------------------------------------------- inputs

/// An article's content as an editor sends it.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ContentInput {
    pub title: String,
    /// Markdown.
    pub body: String,
    /// Detected from the title and body when absent.
    #[serde(default)]
    pub lang: Option<Language>,
    #[serde(default)]
    pub visibility: Visibility,
    #[serde(default)]
    pub department_ids: Vec<u64>,
    #[serde(default)]
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewArticle {
    #[serde(flatten)]
    pub content: ContentInput,
    /// Defaults to the author.
    #[serde(default)]
    pub owner_id: Option<u64>,
    #[serde(default)]
    pub review_due: Option<Millis>,
    /// Entities the article is about (`about` relations).
    #[serde(default)]
    pub entity_ids: Vec<u64>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DraftInput {
    #[serde(flatten)]
    pub content: ContentInput,
    /// The draft's `updated_at` the editor started from; a draft changed since is a conflict
    /// rather than silently overwritten. Absent: no check.
    #[serde(default)]
    pub base_updated_at: Option<Millis>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ArticlePatch {
    pub owner_id: Option<u64>,
    /// `null` clears it.
    #[serde(
        default,
        deserialize_with = "crate::org::service::double_option::deserialize"
    )]
    #[schemars(with = "Option<Millis>")]
    pub review_due: Option<Option<Millis>>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EntityInput {
    pub kind: EntityKind,
    pub name: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub key: Option<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RelationInput {
    pub from: NodeRef,
    pub kind: RelationKind,
    pub to: NodeRef,
}

// ---------------------------------------------------------------- views

/// An article in a list.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ArticleSummary {
    pub id: u64,
    pub title: String,
    pub lang: Language,
    pub status: ArticleStatus,
    pub visibility: Visibility,
    pub version: u32,
    pub draft_state: Option<DraftState>,
    pub owner_id: u64,
    pub review_due: Option<Millis>,
    pub updated_at: Millis,
    pub tags: Vec<String>,
}

impl ArticleSummary {
    pub fn of(article: &Article) -> Option<ArticleSummary> {
        let content = article.working()?;
        Some(ArticleSummary {
            id: article.id,
            title: content.title.clone(),
            lang: content.lang,
            status: article.status,
            visibility: article
                .published
                .as_ref()
                .map(|p| p.visibility)
                .unwrap_or(content.visibility),
            version: article.version,
            draft_state: article.draft.as_ref().map(|d| d.state),
            owner_id: article.owner_id,
            review_due: article.review_due,
            updated_at: article.updated_at,
            tags: content.tags.clone(),
        })
    }
}

/// One end of a relation as a list shows it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct NodeLabel {
    #[serde(flatten)]
    pub node: NodeRef,
    pub label: String,
    /// The entity's kind (entities only).
    pub entity_kind: Option<EntityKind>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct RelationView {
    pub id: u64,
    pub from: NodeLabel,
    pub kind: RelationKind,
    pub to: NodeLabel,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ArticleDetail {
    #[serde(flatten)]
    pub article: Article,
    pub relations: Vec<RelationView>,
    pub learned_questions: usize,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct VersionSummary {
    pub version: u32,
    pub title: String,
    pub author_id: u64,
    pub published_by: u64,
    pub published_at: Millis,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct GraphView {
    pub center: NodeRef,
    pub nodes: Vec<NodeLabel>,
    pub edges: Vec<GraphEdge>,
    /// More nodes were within reach than shown.
    pub truncated: bool,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct GraphEdge {
    pub id: u64,
    pub from: NodeRef,
    pub kind: RelationKind,
    pub to: NodeRef,
}

// ---------------------------------------------------------------- validation

fn check_content(input: &ContentInput, departments: &HashSet<u64>) -> AppResult<ArticleContent> {
    let title = required_text("title", &input.title, MAX_TITLE_CHARS)?;
    if input.body.chars().count() > MAX_BODY_CHARS {
        return Err(AppError::field(
            "body",
            format!("must have at most {MAX_BODY_CHARS} characters"),
        ));
    }
    if input
        .body
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(AppError::field(
            "body",
            "must not contain control characters",
        ));
    }
    let lang = match input.lang {
        Some(Language::Unknown) | None => {
            text::search_language(&format!("{title}\n{}", input.body))
        }
        Some(lang) => lang,
    };
    let mut department_ids: Vec<u64> = input.department_ids.clone();
    department_ids.sort_unstable();
    department_ids.dedup();
    match input.visibility {
        Visibility::Departments if department_ids.is_empty() => {
            return Err(AppError::field(
                "department_ids",
                "must name at least one department when visibility is departments",
            ));
        }
        Visibility::Departments => {
            if let Some(missing) = department_ids.iter().find(|d| !departments.contains(d)) {
                return Err(AppError::field(
                    "department_ids",
                    format!("department {missing} does not exist"),
                ));
            }
        }
        _ => department_ids.clear(),
    }
    Ok(ArticleContent {
        title,
        body: input.body.replace("\r\n", "\n"),
        lang,
        visibility: input.visibility,
        department_ids,
        tags: check_tags(&input.tags)?,
    })
}

fn check_tags(tags: &[String]) -> AppResult<Vec<String>> {
    if tags.len() > MAX_TAGS {
        return Err(AppError::field("tags", format!("at most {MAX_TAGS} tags")));
    }
    let mut out: Vec<String> = Vec::new();
    for tag in tags {
        let tag = required_text("tags", tag, 40)?.to_lowercase();
        if !out.contains(&tag) {
            out.push(tag);
        }
    }
    Ok(out)
}

fn check_names(input: &EntityInput) -> AppResult<(String, Vec<String>)> {
    let name = required_text("name", &input.name, MAX_NAME_CHARS)?;
    if input.aliases.len() > MAX_ALIASES {
        return Err(AppError::field(
            "aliases",
            format!("at most {MAX_ALIASES} aliases"),
        ));
    }
    let mut aliases: Vec<String> = Vec::new();
    for alias in &input.aliases {
        let alias = required_text("aliases", alias, MAX_NAME_CHARS)?;
        if alias != name && !aliases.contains(&alias) {
            aliases.push(alias);
        }
    }
    Ok((name, aliases))
}

fn check_key(key: Option<&str>) -> AppResult<Option<String>> {
    match key.map(str::trim).filter(|k| !k.is_empty()) {
        None => Ok(None),
        Some(k)
            if k.len() <= 100
                && k.chars().all(|c| {
                    c.is_ascii_alphanumeric() || matches!(c, ':' | '-' | '_' | '.' | '/')
                }) =>
        {
            Ok(Some(k.to_string()))
        }
        Some(_) => Err(AppError::field(
            "key",
            "must be at most 100 characters of a-z, 0-9, ':', '-', '_', '.', '/'",
        )),
    }
}

fn department_ids_in(txn: &WriteTxn) -> AppResult<HashSet<u64>> {
    let table = txn.open_table(tables::DEPARTMENTS)?;
    let mut out = HashSet::new();
    for row in table.iter()? {
        out.insert(row?.0.value());
    }
    Ok(out)
}

fn check_employee(txn: &WriteTxn, id: u64, field: &str) -> AppResult<()> {
    let table = txn.open_table(tables::EMPLOYEES)?;
    if table.get(id)?.is_none() {
        return Err(AppError::field(
            field,
            format!("employee {id} does not exist"),
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------- reads

pub fn article(txn: &ReadTransaction, id: u64) -> AppResult<Article> {
    get_record(&txn.open_table(tables::KNOWLEDGE_ARTICLES)?, id)?
        .ok_or_else(|| AppError::not_found("article"))
}

pub fn articles(txn: &ReadTransaction) -> AppResult<Vec<Article>> {
    crate::storage::all_records(&txn.open_table(tables::KNOWLEDGE_ARTICLES)?)
}

pub fn entity(txn: &ReadTransaction, id: u64) -> AppResult<Entity> {
    get_record(&txn.open_table(tables::KNOWLEDGE_ENTITIES)?, id)?
        .ok_or_else(|| AppError::not_found("entity"))
}

pub fn entities(txn: &ReadTransaction) -> AppResult<Vec<Entity>> {
    crate::storage::all_records(&txn.open_table(tables::KNOWLEDGE_ENTITIES)?)
}

pub fn relations(txn: &ReadTransaction) -> AppResult<Vec<Relation>> {
    crate::storage::all_records(&txn.open_table(tables::KNOWLEDGE_RELATIONS)?)
}

pub fn synonym_sets(txn: &ReadTransaction) -> AppResult<Vec<SynonymSet>> {
    crate::storage::all_records(&txn.open_table(tables::KNOWLEDGE_SYNONYMS)?)
}

pub fn versions(txn: &ReadTransaction, article_id: u64) -> AppResult<Vec<VersionSummary>> {
    let table = txn.open_table(tables::KNOWLEDGE_VERSIONS)?;
    let mut out = Vec::new();
    for row in table.range((article_id, 0)..=(article_id, u64::MAX))? {
        let (_, value) = row?;
        let v: ArticleVersion = codec::decode(value.value())?;
        out.push(VersionSummary {
            version: v.version,
            title: v.content.title,
            author_id: v.author_id,
            published_by: v.published_by,
            published_at: v.published_at,
        });
    }
    out.reverse();
    Ok(out)
}

pub fn version(txn: &ReadTransaction, article_id: u64, version: u32) -> AppResult<ArticleVersion> {
    let table = txn.open_table(tables::KNOWLEDGE_VERSIONS)?;
    let value = table
        .get((article_id, version as u64))?
        .ok_or_else(|| AppError::not_found("article version"))?;
    codec::decode(value.value())
}

/// The relations at a node, in id order.
pub fn relations_of(txn: &ReadTransaction, node: NodeRef) -> AppResult<Vec<Relation>> {
    let index = txn.open_table(tables::KNOWLEDGE_NODE_RELATIONS)?;
    let table = txn.open_table(tables::KNOWLEDGE_RELATIONS)?;
    relations_at(&index, &table, node)
}

fn relations_at(
    index: &impl ReadableTable<(&'static str, u64), ()>,
    table: &impl ReadableTable<u64, &'static [u8]>,
    node: NodeRef,
) -> AppResult<Vec<Relation>> {
    let key = node.key();
    let mut out = Vec::new();
    for row in index.range((key.as_str(), 0)..=(key.as_str(), u64::MAX))? {
        let (k, _) = row?;
        let id = k.value().1;
        if let Some(relation) = get_record::<Relation>(table, id)? {
            out.push(relation);
        }
    }
    Ok(out)
}

pub fn label(txn: &ReadTransaction, node: NodeRef) -> AppResult<NodeLabel> {
    Ok(match node.kind {
        NodeKind::Entity => {
            let entity: Option<Entity> =
                get_record(&txn.open_table(tables::KNOWLEDGE_ENTITIES)?, node.id)?;
            NodeLabel {
                node,
                label: entity
                    .as_ref()
                    .map(|e| e.name.clone())
                    .unwrap_or_else(|| format!("#{}", node.id)),
                entity_kind: entity.map(|e| e.kind),
            }
        }
        NodeKind::Article => {
            let article: Option<Article> =
                get_record(&txn.open_table(tables::KNOWLEDGE_ARTICLES)?, node.id)?;
            NodeLabel {
                node,
                label: article
                    .as_ref()
                    .and_then(|a| a.working().map(|c| c.title.clone()))
                    .unwrap_or_else(|| format!("#{}", node.id)),
                entity_kind: None,
            }
        }
    })
}

pub fn relation_views(txn: &ReadTransaction, node: NodeRef) -> AppResult<Vec<RelationView>> {
    relations_of(txn, node)?
        .into_iter()
        .map(|r| {
            Ok(RelationView {
                id: r.id,
                from: label(txn, r.from)?,
                kind: r.kind,
                to: label(txn, r.to)?,
            })
        })
        .collect()
}

pub fn learned_questions(txn: &ReadTransaction, article_id: u64) -> AppResult<Vec<String>> {
    let table = txn.open_table(tables::KNOWLEDGE_LEARNED)?;
    let mut out = Vec::new();
    for row in table.range((article_id, 0)..=(article_id, u64::MAX))? {
        let (_, value) = row?;
        let q: LearnedQuestion = codec::decode(value.value())?;
        out.push(q.question);
    }
    Ok(out)
}

/// The neighbourhood of a node, breadth first, up to `depth` relations away and `max_nodes`,
/// walking only through nodes `visible` allows (an article the reader may not read is neither
/// shown nor a way through).
pub fn graph(
    txn: &ReadTransaction,
    center: NodeRef,
    depth: u32,
    max_nodes: usize,
    visible: &dyn Fn(NodeRef) -> bool,
) -> AppResult<GraphView> {
    label(txn, center)?;
    match center.kind {
        NodeKind::Entity => {
            entity(txn, center.id)?;
        }
        NodeKind::Article => {
            article(txn, center.id)?;
        }
    }
    let index = txn.open_table(tables::KNOWLEDGE_NODE_RELATIONS)?;
    let table = txn.open_table(tables::KNOWLEDGE_RELATIONS)?;
    let mut seen: BTreeSet<NodeRef> = BTreeSet::from([center]);
    let mut order = vec![center];
    let mut edges: BTreeMap<u64, GraphEdge> = BTreeMap::new();
    let mut queue = VecDeque::from([(center, 0u32)]);
    let mut truncated = false;
    while let Some((node, distance)) = queue.pop_front() {
        if distance >= depth {
            continue;
        }
        for relation in relations_at(&index, &table, node)? {
            let other = if relation.from == node {
                relation.to
            } else {
                relation.from
            };
            if !visible(other) {
                continue;
            }
            if !seen.contains(&other) {
                if seen.len() >= max_nodes {
                    truncated = true;
                    continue;
                }
                seen.insert(other);
                order.push(other);
                queue.push_back((other, distance + 1));
            }
            edges.insert(
                relation.id,
                GraphEdge {
                    id: relation.id,
                    from: relation.from,
                    kind: relation.kind,
                    to: relation.to,
                },
            );
        }
    }
    let nodes = order
        .into_iter()
        .map(|n| label(txn, n))
        .collect::<AppResult<Vec<_>>>()?;
    Ok(GraphView {
        center,
        nodes,
        edges: edges.into_values().collect(),
        truncated,
    })
}

/// The names an article's index entry carries for the graph: the names and aliases of the
/// entities it is related to, and of what those are part of, two levels up (a known issue's
/// component and product).
pub fn about_names(txn: &ReadTransaction, article_id: u64) -> AppResult<Vec<String>> {
    let index = txn.open_table(tables::KNOWLEDGE_NODE_RELATIONS)?;
    let table = txn.open_table(tables::KNOWLEDGE_RELATIONS)?;
    let entities = txn.open_table(tables::KNOWLEDGE_ENTITIES)?;
    let mut level: Vec<u64> = relations_at(&index, &table, NodeRef::article(article_id))?
        .into_iter()
        .filter_map(|r| {
            let other = if r.from == NodeRef::article(article_id) {
                r.to
            } else {
                r.from
            };
            (other.kind == NodeKind::Entity).then_some(other.id)
        })
        .collect();
    let mut seen: BTreeSet<u64> = BTreeSet::new();
    let mut names = Vec::new();
    for _ in 0..3 {
        let mut parents = Vec::new();
        for id in level {
            if !seen.insert(id) {
                continue;
            }
            if let Some(entity) = get_record::<Entity>(&entities, id)? {
                names.extend(entity.names().map(str::to_string));
            }
            for r in relations_at(&index, &table, NodeRef::entity(id))? {
                if r.kind.is_part_of()
                    && r.to == NodeRef::entity(id)
                    && r.from.kind == NodeKind::Entity
                {
                    parents.push(r.from.id);
                }
            }
        }
        level = parents;
    }
    Ok(names)
}

// ---------------------------------------------------------------- article writes

fn load_article(txn: &WriteTxn, id: u64) -> AppResult<Article> {
    get_record(&txn.open_table(tables::KNOWLEDGE_ARTICLES)?, id)?
        .ok_or_else(|| AppError::not_found("article"))
}

fn save_article(txn: &WriteTxn, article: &Article) -> AppResult<()> {
    txn.open_table(tables::KNOWLEDGE_ARTICLES)?
        .insert(article.id, codec::encode(article).as_slice())?;
    Ok(())
}

/// Queues an article for the search index: it gets the next knowledge sequence number.
pub fn mark_for_index(txn: &WriteTxn, article: &mut Article) -> AppResult<()> {
    let seq = next_id(txn, SEQ_COUNTER)?;
    let mut queue = txn.open_table(tables::KNOWLEDGE_INDEX_QUEUE)?;
    if article.index_seq > 0 {
        queue.remove((article.index_seq, article.id))?;
    }
    queue.insert((seq, article.id), ())?;
    article.index_seq = seq;
    Ok(())
}

fn reindex_article(txn: &WriteTxn, id: u64) -> AppResult<()> {
    let mut article = load_article(txn, id)?;
    mark_for_index(txn, &mut article)?;
    save_article(txn, &article)
}

pub fn create_article(
    txn: &WriteTxn,
    author: u64,
    input: &NewArticle,
    now: Millis,
) -> AppResult<Article> {
    let content = check_content(&input.content, &department_ids_in(txn)?)?;
    let owner_id = input.owner_id.unwrap_or(author);
    check_employee(txn, owner_id, "owner_id")?;
    let id = next_id(txn, "knowledge_article")?;
    let article = Article {
        id,
        status: ArticleStatus::Draft,
        published: None,
        version: 0,
        draft: Some(Draft::editing(content, 0, author, now)),
        owner_id,
        review_due: input.review_due,
        created_by: author,
        created_at: now,
        updated_at: now,
        published_at: None,
        index_seq: 0,
    };
    save_article(txn, &article)?;
    for entity_id in &input.entity_ids {
        add_relation(
            txn,
            &RelationInput {
                from: NodeRef::article(id),
                kind: RelationKind::About,
                to: NodeRef::entity(*entity_id),
            },
            now,
        )?;
    }
    load_article(txn, id)
}

pub fn save_draft(
    txn: &WriteTxn,
    id: u64,
    author: u64,
    input: &DraftInput,
    now: Millis,
) -> AppResult<Article> {
    let mut article = load_article(txn, id)?;
    let content = check_content(&input.content, &department_ids_in(txn)?)?;
    match &mut article.draft {
        Some(draft) => {
            check_base(input.base_updated_at, draft)?;
            draft.content = content;
            draft.author_id = author;
            draft.updated_at = now;
        }
        None => {
            article.draft = Some(Draft::editing(content, article.version, author, now));
        }
    }
    article.updated_at = now;
    save_article(txn, &article)?;
    Ok(article)
}

fn check_base(base: Option<Millis>, draft: &Draft) -> AppResult<()> {
    match base {
        Some(base) if base != draft.updated_at => Err(AppError::new(
            ErrorCode::DraftConflict,
            "the draft was changed by someone else since you opened it; reload it and apply your edits again",
        )
        .with_details(serde_json::json!({ "updated_at": draft.updated_at }))),
        _ => Ok(()),
    }
}

fn draft_of(article: &mut Article) -> AppResult<&mut Draft> {
    article
        .draft
        .as_mut()
        .ok_or_else(|| AppError::conflict("the article has no draft"))
}

pub fn submit(txn: &WriteTxn, id: u64, now: Millis) -> AppResult<Article> {
    let mut article = load_article(txn, id)?;
    let draft = draft_of(&mut article)?;
    if draft.state == DraftState::InReview {
        return Err(AppError::conflict(
            "the draft is already waiting for review",
        ));
    }
    draft.state = DraftState::InReview;
    draft.submitted_at = Some(now);
    article.updated_at = now;
    save_article(txn, &article)?;
    Ok(article)
}

pub fn request_changes(txn: &WriteTxn, id: u64, note: &str, now: Millis) -> AppResult<Article> {
    let note = required_text("note", note, 2000)?;
    let mut article = load_article(txn, id)?;
    let draft = draft_of(&mut article)?;
    if draft.state != DraftState::InReview {
        return Err(AppError::conflict(
            "only a draft waiting for review can be sent back",
        ));
    }
    draft.state = DraftState::ChangesRequested;
    draft.review_note = Some(note);
    article.updated_at = now;
    save_article(txn, &article)?;
    Ok(article)
}

/// Publishes the draft as the next version.
pub fn publish(txn: &WriteTxn, id: u64, publisher: u64, now: Millis) -> AppResult<Article> {
    let mut article = load_article(txn, id)?;
    let draft = article
        .draft
        .take()
        .ok_or_else(|| AppError::conflict("the article has no draft to publish"))?;
    article.version += 1;
    let version = ArticleVersion {
        article_id: id,
        version: article.version,
        content: draft.content.clone(),
        author_id: draft.author_id,
        published_by: publisher,
        published_at: now,
    };
    txn.open_table(tables::KNOWLEDGE_VERSIONS)?.insert(
        (id, article.version as u64),
        codec::encode(&version).as_slice(),
    )?;
    article.published = Some(draft.content);
    article.status = ArticleStatus::Published;
    article.published_at = Some(now);
    article.updated_at = now;
    mark_for_index(txn, &mut article)?;
    save_article(txn, &article)?;
    Ok(article)
}

pub fn set_archived(txn: &WriteTxn, id: u64, archived: bool, now: Millis) -> AppResult<Article> {
    let mut article = load_article(txn, id)?;
    article.status = match (archived, article.published.is_some()) {
        (true, _) => ArticleStatus::Archived,
        (false, true) => ArticleStatus::Published,
        (false, false) => ArticleStatus::Draft,
    };
    article.updated_at = now;
    mark_for_index(txn, &mut article)?;
    save_article(txn, &article)?;
    Ok(article)
}

/// Starts a draft from an earlier published version.
pub fn restore(
    txn: &WriteTxn,
    id: u64,
    version: u32,
    base_updated_at: Option<Millis>,
    author: u64,
    now: Millis,
) -> AppResult<Article> {
    let mut article = load_article(txn, id)?;
    if let Some(draft) = &article.draft {
        check_base(base_updated_at, draft)?;
    }
    let stored = txn
        .open_table(tables::KNOWLEDGE_VERSIONS)?
        .get((id, version as u64))?
        .map(|v| codec::decode::<ArticleVersion>(v.value()))
        .transpose()?
        .ok_or_else(|| AppError::not_found("article version"))?;
    article.draft = Some(Draft::editing(stored.content, article.version, author, now));
    article.updated_at = now;
    save_article(txn, &article)?;
    Ok(article)
}

/// Drops the draft; an article never published goes with it. Returns the article if it remains.
pub fn discard_draft(txn: &WriteTxn, id: u64, now: Millis) -> AppResult<Option<Article>> {
    let mut article = load_article(txn, id)?;
    if article.draft.is_none() {
        return Err(AppError::conflict("the article has no draft"));
    }
    if article.version == 0 {
        let node = NodeRef::article(id);
        for relation in relations_at(
            &txn.open_table(tables::KNOWLEDGE_NODE_RELATIONS)?,
            &txn.open_table(tables::KNOWLEDGE_RELATIONS)?,
            node,
        )? {
            remove_relation(txn, relation.id)?;
        }
        let mut learned = txn.open_table(tables::KNOWLEDGE_LEARNED)?;
        learned.retain_in((id, 0)..=(id, u64::MAX), |_, _| false)?;
        drop(learned);
        txn.open_table(tables::KNOWLEDGE_ARTICLES)?.remove(id)?;
        if article.index_seq > 0 {
            txn.open_table(tables::KNOWLEDGE_INDEX_QUEUE)?
                .remove((article.index_seq, id))?;
        }
        return Ok(None);
    }
    article.draft = None;
    article.updated_at = now;
    save_article(txn, &article)?;
    Ok(Some(article))
}

pub fn patch_article(
    txn: &WriteTxn,
    id: u64,
    patch: &ArticlePatch,
    now: Millis,
) -> AppResult<Article> {
    let mut article = load_article(txn, id)?;
    if let Some(owner) = patch.owner_id {
        check_employee(txn, owner, "owner_id")?;
        article.owner_id = owner;
    }
    if let Some(due) = patch.review_due {
        article.review_due = due;
    }
    article.updated_at = now;
    save_article(txn, &article)?;
    Ok(article)
}

/// Records that an article answered a question; the index learns it. Returns whether it was new.
pub fn learn_question(
    txn: &WriteTxn,
    article_id: u64,
    question: &str,
    by: u64,
    now: Millis,
) -> AppResult<bool> {
    let question = required_text("question", question, 1000)?;
    load_article(txn, article_id)?;
    let mut table = txn.open_table(tables::KNOWLEDGE_LEARNED)?;
    let mut existing = Vec::new();
    for row in table.range((article_id, 0)..=(article_id, u64::MAX))? {
        let (key, value) = row?;
        let q: LearnedQuestion = codec::decode(value.value())?;
        existing.push((key.value().1, q.question));
    }
    let folded = text::normalise(&question);
    if existing.iter().any(|(_, q)| text::normalise(q) == folded) {
        return Ok(false);
    }
    let id = next_id(txn, "knowledge_question")?;
    table.insert(
        (article_id, id),
        codec::encode(&LearnedQuestion {
            question,
            by,
            at: now,
        })
        .as_slice(),
    )?;
    let excess = (existing.len() + 1).saturating_sub(MAX_LEARNED_PER_ARTICLE);
    for (old, _) in existing.iter().take(excess) {
        table.remove((article_id, *old))?;
    }
    drop(table);
    reindex_article(txn, article_id)?;
    Ok(true)
}

// ---------------------------------------------------------------- entities and relations

/// Articles whose index entry carries this entity's names: those related to it or to anything
/// that is part of it, two levels down.
fn articles_near(txn: &WriteTxn, entity_id: u64) -> AppResult<BTreeSet<u64>> {
    let index = txn.open_table(tables::KNOWLEDGE_NODE_RELATIONS)?;
    let table = txn.open_table(tables::KNOWLEDGE_RELATIONS)?;
    let mut articles = BTreeSet::new();
    let mut level = vec![entity_id];
    let mut seen = BTreeSet::new();
    for _ in 0..3 {
        let mut children = Vec::new();
        for id in level {
            if !seen.insert(id) {
                continue;
            }
            for r in relations_at(&index, &table, NodeRef::entity(id))? {
                for end in [r.from, r.to] {
                    if end.kind == NodeKind::Article {
                        articles.insert(end.id);
                    }
                }
                if r.kind.is_part_of()
                    && r.from == NodeRef::entity(id)
                    && r.to.kind == NodeKind::Entity
                {
                    children.push(r.to.id);
                }
            }
        }
        level = children;
    }
    Ok(articles)
}

fn reindex_near(txn: &WriteTxn, entity_id: u64) -> AppResult<()> {
    for article in articles_near(txn, entity_id)? {
        reindex_article(txn, article)?;
    }
    Ok(())
}

pub fn put_entity(
    txn: &WriteTxn,
    id: Option<u64>,
    input: &EntityInput,
    now: Millis,
) -> AppResult<Entity> {
    let (name, aliases) = check_names(input)?;
    let description = optional_text("description", &input.description, 4000)?;
    let key = check_key(input.key.as_deref())?;
    let existing: Option<Entity> = match id {
        Some(id) => Some(
            get_record(&txn.open_table(tables::KNOWLEDGE_ENTITIES)?, id)?
                .ok_or_else(|| AppError::not_found("entity"))?,
        ),
        None => None,
    };
    let id = match id {
        Some(id) => id,
        None => next_id(txn, "knowledge_entity")?,
    };
    {
        let mut keys = txn.open_table(tables::KNOWLEDGE_ENTITY_KEYS)?;
        if let Some(k) = &key
            && let Some(other) = keys.get(k.as_str())?.map(|v| v.value())
            && other != id
        {
            return Err(AppError::conflict(format!(
                "the key {k:?} is already entity {other}'s"
            )));
        }
        if let Some(old) = existing.as_ref().and_then(|e| e.key.as_deref())
            && Some(old) != key.as_deref()
        {
            keys.remove(old)?;
        }
        if let Some(k) = &key {
            keys.insert(k.as_str(), id)?;
        }
    }
    let entity = Entity {
        id,
        kind: input.kind,
        name,
        aliases,
        description,
        key,
        created_at: existing.as_ref().map(|e| e.created_at).unwrap_or(now),
        updated_at: now,
    };
    txn.open_table(tables::KNOWLEDGE_ENTITIES)?
        .insert(id, codec::encode(&entity).as_slice())?;
    if existing.is_some() {
        reindex_near(txn, id)?;
    }
    graph_changed(txn)?;
    Ok(entity)
}

pub fn delete_entity(txn: &WriteTxn, id: u64) -> AppResult<Entity> {
    let entity: Entity = get_record(&txn.open_table(tables::KNOWLEDGE_ENTITIES)?, id)?
        .ok_or_else(|| AppError::not_found("entity"))?;
    reindex_near(txn, id)?;
    let relations = relations_at(
        &txn.open_table(tables::KNOWLEDGE_NODE_RELATIONS)?,
        &txn.open_table(tables::KNOWLEDGE_RELATIONS)?,
        NodeRef::entity(id),
    )?;
    for relation in relations {
        remove_relation(txn, relation.id)?;
    }
    if let Some(key) = &entity.key {
        txn.open_table(tables::KNOWLEDGE_ENTITY_KEYS)?
            .remove(key.as_str())?;
    }
    txn.open_table(tables::KNOWLEDGE_ENTITIES)?.remove(id)?;
    graph_changed(txn)?;
    Ok(entity)
}

pub fn entity_by_key(txn: &WriteTxn, key: &str) -> AppResult<Option<u64>> {
    Ok(txn
        .open_table(tables::KNOWLEDGE_ENTITY_KEYS)?
        .get(key)?
        .map(|v| v.value()))
}

fn node_exists(txn: &WriteTxn, node: NodeRef) -> AppResult<bool> {
    Ok(match node.kind {
        NodeKind::Entity => txn
            .open_table(tables::KNOWLEDGE_ENTITIES)?
            .get(node.id)?
            .is_some(),
        NodeKind::Article => txn
            .open_table(tables::KNOWLEDGE_ARTICLES)?
            .get(node.id)?
            .is_some(),
    })
}

pub fn add_relation(txn: &WriteTxn, input: &RelationInput, now: Millis) -> AppResult<Relation> {
    for (field, node) in [("from", input.from), ("to", input.to)] {
        if !node_exists(txn, node)? {
            return Err(AppError::field(field, format!("{node} does not exist")));
        }
    }
    if input.from == input.to {
        return Err(AppError::field("to", "a node cannot be related to itself"));
    }
    if input.kind.is_part_of()
        && (input.from.kind != NodeKind::Entity || input.to.kind != NodeKind::Entity)
    {
        return Err(AppError::field(
            "kind",
            format!("{} relates two entities", input.kind.as_str()),
        ));
    }
    let existing = relations_at(
        &txn.open_table(tables::KNOWLEDGE_NODE_RELATIONS)?,
        &txn.open_table(tables::KNOWLEDGE_RELATIONS)?,
        input.from,
    )?;
    if let Some(same) = existing
        .iter()
        .find(|r| r.from == input.from && r.to == input.to && r.kind == input.kind)
    {
        return Err(AppError::conflict(format!(
            "that relation exists already (relation {})",
            same.id
        )));
    }
    let id = next_id(txn, "knowledge_relation")?;
    let relation = Relation {
        id,
        from: input.from,
        kind: input.kind,
        to: input.to,
        created_at: now,
    };
    txn.open_table(tables::KNOWLEDGE_RELATIONS)?
        .insert(id, codec::encode(&relation).as_slice())?;
    {
        let mut index = txn.open_table(tables::KNOWLEDGE_NODE_RELATIONS)?;
        index.insert((relation.from.key().as_str(), id), ())?;
        index.insert((relation.to.key().as_str(), id), ())?;
    }
    reindex_ends(txn, &relation)?;
    graph_changed(txn)?;
    Ok(relation)
}

fn reindex_ends(txn: &WriteTxn, relation: &Relation) -> AppResult<()> {
    for end in [relation.from, relation.to] {
        match end.kind {
            NodeKind::Article => reindex_article(txn, end.id)?,
            NodeKind::Entity if relation.kind.is_part_of() && end == relation.to => {
                reindex_near(txn, end.id)?
            }
            NodeKind::Entity => {}
        }
    }
    Ok(())
}

pub fn remove_relation(txn: &WriteTxn, id: u64) -> AppResult<Relation> {
    let relation: Relation = get_record(&txn.open_table(tables::KNOWLEDGE_RELATIONS)?, id)?
        .ok_or_else(|| AppError::not_found("relation"))?;
    reindex_ends(txn, &relation)?;
    txn.open_table(tables::KNOWLEDGE_RELATIONS)?.remove(id)?;
    let mut index = txn.open_table(tables::KNOWLEDGE_NODE_RELATIONS)?;
    index.remove((relation.from.key().as_str(), id))?;
    index.remove((relation.to.key().as_str(), id))?;
    drop(index);
    graph_changed(txn)?;
    Ok(relation)
}

// ---------------------------------------------------------------- synonyms

/// Replaces every synonym set. Each set needs two or more distinct terms.
pub fn replace_synonyms(
    txn: &WriteTxn,
    sets: &[Vec<String>],
    now: Millis,
) -> AppResult<Vec<SynonymSet>> {
    if sets.len() > 5000 {
        return Err(AppError::field("sets", "at most 5000 synonym sets"));
    }
    let mut table = txn.open_table(tables::KNOWLEDGE_SYNONYMS)?;
    table.retain(|_, _| false)?;
    let mut out = Vec::new();
    for (i, terms) in sets.iter().enumerate() {
        let mut clean: Vec<String> = Vec::new();
        for term in terms {
            let term = required_text(&format!("sets[{i}]"), term, 60)?;
            if !clean
                .iter()
                .any(|t| text::normalise(t) == text::normalise(&term))
            {
                clean.push(term);
            }
        }
        if clean.len() < 2 {
            return Err(AppError::new(
                ErrorCode::InvalidField,
                format!("sets[{i}]: a synonym set needs at least two different terms"),
            ));
        }
        let set = SynonymSet {
            id: i as u64 + 1,
            terms: clean,
            updated_at: now,
        };
        table.insert(set.id, codec::encode(&set).as_slice())?;
        out.push(set);
    }
    drop(table);
    graph_changed(txn)?;
    Ok(out)
}
