//! The live search index of the knowledge base, kept in step with the store.
//!
//! The store is the truth. Every change search must follow (publishing, archiving, a relation
//! or an entity's names changing, a learned question) gives the article the next knowledge
//! sequence number in the same write (`service::mark_for_index`). `sync` indexes every article
//! queued after the last sequence number it saw, so an index that missed changes (a crash between
//! the commit and the index update, or a fresh start) catches up from the store.

use std::sync::Mutex;

use redb::ReadTransaction;

use crate::assist::suggest::PastReply;
use crate::error::{AppError, AppResult};
use crate::knowledge::graph::{self, Graph};
use crate::knowledge::search::{Hit, IndexedArticle, SearchIndex};
use crate::knowledge::synonyms::{SynonymGroup, Synonyms};
use crate::knowledge::{Article, NodeKind, NodeRef, service};
use crate::storage::{get_record, tables};
use crate::text::Language;

pub struct Library {
    index: SearchIndex,
    /// The last knowledge sequence number indexed.
    synced: Mutex<u64>,
    /// Past replies of resolved conversations: the question as title, the reply as body.
    replies: SearchIndex,
    replies_synced: Mutex<u64>,
    /// The graph counter the graph and synonyms were last built at (`None`: never).
    graph_seen: Mutex<Option<Option<u64>>>,
    /// Conversation questions already counted for knowledge gaps (by their last message id), so
    /// that suggestions asked at every keystroke count a question once.
    counted: Mutex<std::collections::HashSet<u64>>,
}

impl Library {
    pub fn in_memory() -> AppResult<Library> {
        Ok(Library {
            index: SearchIndex::in_memory()?,
            synced: Mutex::new(0),
            replies: SearchIndex::in_memory()?,
            replies_synced: Mutex::new(0),
            counted: Mutex::new(Default::default()),
            graph_seen: Mutex::new(None),
        })
    }

    /// Indexes what changed in the store since the last sync; returns how many articles and
    /// past replies.
    pub fn sync(&self, txn: &ReadTransaction) -> AppResult<usize> {
        /// After this many changes at once (the catch-up at start), each index is merged into
        /// one segment: searches cost more the more segments there are.
        const COMPACT_AFTER: usize = 1_000;
        self.sync_graph(txn)?;
        let articles = self.sync_articles(txn)?;
        if articles >= COMPACT_AFTER {
            self.index.compact()?;
        }
        let replies = self.sync_replies(txn)?;
        if replies >= COMPACT_AFTER {
            self.replies.compact()?;
        }
        Ok(articles + replies)
    }

    /// Rebuilds the graph and the synonyms search widens questions by, when entities,
    /// relations or synonym sets changed since the last time.
    fn sync_graph(&self, txn: &ReadTransaction) -> AppResult<()> {
        let mut seen = self
            .graph_seen
            .lock()
            .map_err(|_| AppError::internal("knowledge graph lock poisoned"))?;
        let current = txn
            .open_table(tables::COUNTERS)?
            .get(service::GRAPH_COUNTER)?
            .map(|v| v.value());
        if *seen == Some(current) {
            return Ok(());
        }
        let entities = service::entities(txn)?;
        let relations = service::relations(txn)?;
        let graph = Graph::new(
            entities
                .iter()
                .map(|e| graph::Entity {
                    id: NodeRef::entity(e.id).key(),
                    names: e.names().map(str::to_string).collect(),
                })
                .collect(),
            relations
                .iter()
                .filter(|r| r.from.kind == NodeKind::Entity && r.to.kind == NodeKind::Entity)
                .map(|r| graph::Relation {
                    from: r.from.key(),
                    kind: r.kind.as_str().to_string(),
                    to: r.to.key(),
                })
                .collect(),
        );
        let own: Vec<SynonymGroup> = service::synonym_sets(txn)?
            .into_iter()
            .map(|set| SynonymGroup::of(set.terms))
            .collect();
        self.index.set_graph(graph);
        self.index
            .set_synonyms(Synonyms::starter().with_groups(own.clone()));
        self.replies
            .set_synonyms(Synonyms::starter().with_groups(own));
        *seen = Some(current);
        Ok(())
    }

    fn sync_replies(&self, txn: &ReadTransaction) -> AppResult<usize> {
        let mut synced = self
            .replies_synced
            .lock()
            .map_err(|_| AppError::internal("reply index lock poisoned"))?;
        let queue = txn.open_table(tables::PAST_REPLY_QUEUE)?;
        let replies = txn.open_table(tables::PAST_REPLIES)?;
        let mut owned: Vec<(String, PastReply)> = Vec::new();
        let mut last = *synced;
        for row in queue.range(*synced + 1..)? {
            let (seq, message_id) = row?;
            last = seq.value();
            if let Some(reply) = get_record::<PastReply>(&replies, message_id.value())? {
                owned.push((message_id.value().to_string(), reply));
            }
        }
        if last == *synced {
            return Ok(0);
        }
        let none: Vec<String> = Vec::new();
        let indexed: Vec<IndexedArticle<'_>> = owned
            .iter()
            .map(|(id, r)| IndexedArticle {
                id,
                lang: r.lang,
                title: &r.question,
                body: &r.reply,
                questions: &none,
                about: &none,
                tags: &none,
                entities: &none,
            })
            .collect();
        self.replies.put(&indexed)?;
        *synced = last;
        Ok(owned.len())
    }

    /// Past replies whose question was like this one, best first (message ids with scores).
    pub fn search_replies(
        &self,
        question: &str,
        lang: Language,
        limit: usize,
    ) -> AppResult<Vec<(u64, Hit)>> {
        Ok(numbered(self.replies.search(question, lang, limit)?))
    }

    /// Whether a conversation's question (named by its last message id) is counted for the
    /// first time.
    pub fn first_count(&self, message_id: u64) -> bool {
        let Ok(mut counted) = self.counted.lock() else {
            return false;
        };
        if counted.len() > 100_000 {
            counted.clear();
        }
        counted.insert(message_id)
    }

    fn sync_articles(&self, txn: &ReadTransaction) -> AppResult<usize> {
        let mut synced = self
            .synced
            .lock()
            .map_err(|_| AppError::internal("knowledge index lock poisoned"))?;
        let queue = txn.open_table(tables::KNOWLEDGE_INDEX_QUEUE)?;
        let articles = txn.open_table(tables::KNOWLEDGE_ARTICLES)?;
        let mut changed: Vec<(u64, u64)> = Vec::new();
        for row in queue.range((*synced + 1, 0)..)? {
            let (key, _) = row?;
            changed.push(key.value());
        }
        let Some(&(last, _)) = changed.last() else {
            return Ok(0);
        };
        struct Owned {
            id: String,
            lang: Language,
            title: String,
            body: String,
            questions: Vec<String>,
            about: Vec<String>,
            tags: Vec<String>,
            entities: Vec<String>,
        }
        let mut live = Vec::new();
        let mut gone = Vec::new();
        for (_, id) in &changed {
            let article: Option<Article> = get_record(&articles, *id)?;
            match article.as_ref().and_then(Article::live) {
                Some(content) => live.push(Owned {
                    id: id.to_string(),
                    lang: content.lang,
                    title: content.title.clone(),
                    body: content.body.clone(),
                    questions: service::learned_questions(txn, *id)?,
                    about: service::about_names(txn, *id)?,
                    tags: content.tags.clone(),
                    entities: service::relations_of(txn, NodeRef::article(*id))?
                        .into_iter()
                        .flat_map(|r| [r.from, r.to])
                        .filter(|n| n.kind == NodeKind::Entity)
                        .map(NodeRef::key)
                        .collect(),
                }),
                None => gone.push(id.to_string()),
            }
        }
        let indexed: Vec<IndexedArticle<'_>> = live
            .iter()
            .map(|a| IndexedArticle {
                id: &a.id,
                lang: a.lang,
                title: &a.title,
                body: &a.body,
                questions: &a.questions,
                about: &a.about,
                tags: &a.tags,
                entities: &a.entities,
            })
            .collect();
        self.index.remove(&gone)?;
        self.index.put(&indexed)?;
        *synced = last;
        Ok(changed.len())
    }

    /// The best articles in `lang` for a question, best first (article ids with scores).
    pub fn search(
        &self,
        question: &str,
        lang: Language,
        limit: usize,
    ) -> AppResult<Vec<(u64, Hit)>> {
        Ok(numbered(self.index.search(question, lang, limit)?))
    }
}

/// Hits with their numeric ids (articles' ids, past replies' message ids).
fn numbered(hits: Vec<Hit>) -> Vec<(u64, Hit)> {
    hits.into_iter()
        .filter_map(|hit| hit.id.parse::<u64>().ok().map(|id| (id, hit)))
        .collect()
}
