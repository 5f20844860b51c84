//! The knowledge base: articles, the graph of what they are about, and the search that finds
//! the answer to a customer's question in Chinese or English.
//!
//! An article has at most one published version (what search, suggestions and the help centre
//! show) and at most one working draft, which goes through review before it is published; every
//! published version is kept. Entities (products, components, known issues, policies, ...) and
//! articles are the nodes of a graph whose typed relations lead a question about a product to
//! that product's known issues.

mod analysis;
pub mod eval;
pub mod gaps;
pub mod graph;
pub mod library;
mod matcher;
pub mod ops;
pub mod passage;
pub mod portable;
mod postings;
mod rerank;
pub mod search;
pub mod service;
pub mod synonyms;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::clock::Millis;
use crate::storage::Record;
use crate::text::Language;

/// Who may read an article.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    /// Every employee who may read the knowledge base.
    #[default]
    Internal,
    /// Employees, the public help centre and the web chat widget's search.
    Public,
    /// Employees of the article's departments (and their sub-departments), and knowledge managers.
    Departments,
}

/// What an article says, as one version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ArticleContent {
    pub title: String,
    /// Markdown.
    pub body: String,
    pub lang: Language,
    #[serde(default)]
    pub visibility: Visibility,
    /// With `visibility: departments`: the departments whose employees may read it.
    #[serde(default)]
    pub department_ids: Vec<u64>,
    #[serde(default)]
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DraftState {
    /// Being written.
    Editing,
    /// Submitted: waiting for a knowledge manager to publish it or ask for changes.
    InReview,
    /// A reviewer asked for changes (the note says which).
    ChangesRequested,
}

/// The working copy of an article, not yet published.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Draft {
    pub content: ArticleContent,
    pub state: DraftState,
    /// The published version this draft started from (0: none).
    pub based_on: u32,
    pub author_id: u64,
    pub updated_at: Millis,
    #[serde(default)]
    pub review_note: Option<String>,
    #[serde(default)]
    pub submitted_at: Option<Millis>,
}

impl Draft {
    /// A draft being written, started from published version `based_on` (0: none).
    pub fn editing(content: ArticleContent, based_on: u32, author_id: u64, now: Millis) -> Draft {
        Draft {
            content,
            state: DraftState::Editing,
            based_on,
            author_id,
            updated_at: now,
            review_note: None,
            submitted_at: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ArticleStatus {
    /// Never published yet.
    Draft,
    Published,
    /// Withdrawn: kept with its versions, found by nothing.
    Archived,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Article {
    pub id: u64,
    pub status: ArticleStatus,
    /// The published content (also kept as version `version`).
    #[serde(default)]
    pub published: Option<ArticleContent>,
    /// The number of the published version (0: never published).
    pub version: u32,
    #[serde(default)]
    pub draft: Option<Draft>,
    /// The employee responsible for keeping it right.
    pub owner_id: u64,
    /// When the owner should check it again.
    #[serde(default)]
    pub review_due: Option<Millis>,
    pub created_by: u64,
    pub created_at: Millis,
    pub updated_at: Millis,
    #[serde(default)]
    pub published_at: Option<Millis>,
    /// The knowledge sequence number of the last change the search index must follow.
    #[serde(default)]
    pub index_seq: u64,
}

impl Record for Article {
    const KIND: &'static str = "knowledge article";
}

impl Article {
    /// The content an editor works on: the draft, or else the published version.
    pub fn working(&self) -> Option<&ArticleContent> {
        self.draft
            .as_ref()
            .map(|d| &d.content)
            .or(self.published.as_ref())
    }

    /// The content to show and index: the published version unless archived.
    pub fn live(&self) -> Option<&ArticleContent> {
        match self.status {
            ArticleStatus::Published => self.published.as_ref(),
            _ => None,
        }
    }
}

/// One published version, kept for history and restore.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ArticleVersion {
    pub article_id: u64,
    pub version: u32,
    pub content: ArticleContent,
    pub author_id: u64,
    pub published_by: u64,
    pub published_at: Millis,
}

impl Record for ArticleVersion {
    const KIND: &'static str = "knowledge article version";
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EntityKind {
    Product,
    Component,
    Feature,
    KnownIssue,
    Fix,
    Policy,
    Team,
    Topic,
}

impl EntityKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EntityKind::Product => "product",
            EntityKind::Component => "component",
            EntityKind::Feature => "feature",
            EntityKind::KnownIssue => "known_issue",
            EntityKind::Fix => "fix",
            EntityKind::Policy => "policy",
            EntityKind::Team => "team",
            EntityKind::Topic => "topic",
        }
    }
}

/// Something articles are about.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Entity {
    pub id: u64,
    pub kind: EntityKind,
    pub name: String,
    /// Other names customers and employees use, in any language.
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub description: String,
    /// A stable key for import and export (e.g. `product:cam-c3`), unique when set.
    #[serde(default)]
    pub key: Option<String>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

impl Record for Entity {
    const KIND: &'static str = "knowledge entity";
}

impl Entity {
    pub fn names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.name.as_str()).chain(self.aliases.iter().map(String::as_str))
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum NodeKind {
    Entity,
    Article,
}

/// A node of the knowledge graph.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
pub struct NodeRef {
    pub kind: NodeKind,
    pub id: u64,
}

impl NodeRef {
    pub fn entity(id: u64) -> NodeRef {
        NodeRef {
            kind: NodeKind::Entity,
            id,
        }
    }

    pub fn article(id: u64) -> NodeRef {
        NodeRef {
            kind: NodeKind::Article,
            id,
        }
    }

    /// The key of the relation index: `e:<id>` or `a:<id>`.
    pub fn key(self) -> String {
        match self.kind {
            NodeKind::Entity => format!("e:{}", self.id),
            NodeKind::Article => format!("a:{}", self.id),
        }
    }
}

impl std::fmt::Display for NodeRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            NodeKind::Entity => write!(f, "entity:{}", self.id),
            NodeKind::Article => write!(f, "article:{}", self.id),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RelationKind {
    /// A product has a component.
    HasComponent,
    /// A product or component has a feature.
    HasFeature,
    /// A product or component has a known issue.
    HasKnownIssue,
    /// A known issue is fixed by a fix or an article.
    FixedBy,
    /// An article is about an entity.
    About,
    /// An article or entity is owned by a team.
    OwnedBy,
    /// Something is governed by a policy.
    GovernedBy,
    RelatedTo,
}

impl RelationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RelationKind::HasComponent => "has_component",
            RelationKind::HasFeature => "has_feature",
            RelationKind::HasKnownIssue => "has_known_issue",
            RelationKind::FixedBy => "fixed_by",
            RelationKind::About => "about",
            RelationKind::OwnedBy => "owned_by",
            RelationKind::GovernedBy => "governed_by",
            RelationKind::RelatedTo => "related_to",
        }
    }

    /// Whether the relation makes `to` a part of `from` (a question about `from` may be about it).
    pub fn is_part_of(self) -> bool {
        matches!(
            self,
            RelationKind::HasComponent | RelationKind::HasFeature | RelationKind::HasKnownIssue
        )
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Relation {
    pub id: u64,
    pub from: NodeRef,
    pub kind: RelationKind,
    pub to: NodeRef,
    pub created_at: Millis,
}

impl Record for Relation {
    const KIND: &'static str = "knowledge relation";
}

/// Terms the organisation says mean the same (e.g. 退货, 退回, return), used to widen questions.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct SynonymSet {
    pub id: u64,
    pub terms: Vec<String>,
    pub updated_at: Millis,
}

impl Record for SynonymSet {
    const KIND: &'static str = "knowledge synonym set";
}

/// A customer question an article was confirmed to answer (inserted as a reply, or marked by
/// an employee): the index learns to find the article for questions like it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct LearnedQuestion {
    pub question: String,
    pub by: u64,
    pub at: Millis,
}

impl Record for LearnedQuestion {
    const KIND: &'static str = "knowledge learned question";
}
