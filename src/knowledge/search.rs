//! Full-text retrieval of knowledge articles: BM25 over Chinese dictionary words, Han
//! character grams and English stems, in the title, the tags, the body, the names of what the
//! article is about and the questions it is known to answer; the question's terms widened by
//! the organisation's synonyms; articles about the entities the question names, and about their
//! components and known issues, lifted along the graph. Each hit carries the passage that
//! answers and the graph path that led to it.

use std::sync::Arc;

use arc_swap::ArcSwap;
use tantivy::query::FuzzyTermQuery;
use tantivy::schema::{
    Field, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions, Value,
};
use tantivy::{DocAddress, Index, IndexReader, IndexWriter, Searcher, TantivyDocument, Term};

use crate::error::{AppError, AppResult};
use crate::knowledge::analysis::{self, GRAMS, WORDS};

/// tantivy's tokenizer that keeps a value whole.
const RAW: &str = "raw";
use crate::knowledge::graph::{Graph, Reached};
use crate::knowledge::matcher::Prepared;
use crate::knowledge::passage::{self, Passage, PassageTerms};
use crate::knowledge::postings;
use crate::knowledge::rerank::{self, Concept};
use crate::knowledge::synonyms::{Analysed, Synonyms};
use crate::text::{self, Language};

/// What an index holds about one article.
pub struct IndexedArticle<'a> {
    pub id: &'a str,
    pub lang: Language,
    pub title: &'a str,
    /// Markdown.
    pub body: &'a str,
    /// Labels the author gave the article.
    pub tags: &'a [String],
    /// Customer questions this article answered (learned from employees' confirmations).
    pub questions: &'a [String],
    /// Names and aliases of what the article is about, and of what that belongs to in the graph
    /// (see `Graph::about`).
    pub about: &'a [String],
    /// Ids of the graph entities the article is about.
    pub entities: &'a [String],
}

#[derive(Clone, Copy)]
struct Fields {
    id: Field,
    body: Field,
    entities: Field,
    /// The entities again, with frequencies, so that the first pass can look them up like
    /// words.
    entity_terms: Field,
    title_words: Field,
    title_grams: Field,
    tags_words: Field,
    tags_grams: Field,
    body_words: Field,
    body_grams: Field,
    questions_words: Field,
    questions_grams: Field,
    about_words: Field,
    about_grams: Field,
    /// Everything above in one field, for the first pass and coverage: a few terms looked up
    /// once each rather than in every field.
    all_words: Field,
    all_grams: Field,
}

/// How much a match in each field counts, per language of the question: Han grams help Chinese
/// and are noise for English.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Boosts {
    title_words: f32,
    tags_words: f32,
    body_words: f32,
    questions_words: f32,
    about_words: f32,
    title_grams: f32,
    tags_grams: f32,
    body_grams: f32,
    questions_grams: f32,
    about_grams: f32,
    /// A term a synonym brought, against one the question says.
    synonym: f32,
    /// The most an entity the question names adds (a reached one adds less).
    graph: f32,
    /// A single Han character against a pair: single characters are ambiguous.
    unigram: f32,
    /// A near spelling of a Latin word no article has (a typo), against the word itself.
    fuzzy: f32,
    /// Whether the synonyms' terms are also looked up as Han pairs, not only as words.
    expansion_grams: bool,
    /// A word of an entity name the question uses, against other words: the graph already
    /// counts the entity, and a product's name is on all its articles whatever is asked.
    entity_words: f32,
    /// What a term's match in its other fields adds to its best field (1: all of it).
    field_tie: f32,
    /// What a synonym group's other matching terms add to its best one (1: all of them).
    concept_tie: f32,
    /// How many of the question's words (Han terms) a learned question must share to count;
    /// 0 counts every shared term.
    question_min_words: f32,
    question_min_grams: f32,
    /// What covering all of the question's concepts adds to the best exact score (which counts
    /// 1).
    coverage: f32,
    /// Han pairs' share in coverage, against words.
    coverage_grams: f32,
}

impl Boosts {
    /// Sets a weight by its name, for tuning; false when there is no such weight.
    #[cfg(test)]
    pub(crate) fn set(&mut self, name: &str, value: f32) -> bool {
        let slot = match name {
            "title_words" => &mut self.title_words,
            "tags_words" => &mut self.tags_words,
            "body_words" => &mut self.body_words,
            "questions_words" => &mut self.questions_words,
            "about_words" => &mut self.about_words,
            "title_grams" => &mut self.title_grams,
            "tags_grams" => &mut self.tags_grams,
            "body_grams" => &mut self.body_grams,
            "questions_grams" => &mut self.questions_grams,
            "about_grams" => &mut self.about_grams,
            "synonym" => &mut self.synonym,
            "graph" => &mut self.graph,
            "unigram" => &mut self.unigram,
            "fuzzy" => &mut self.fuzzy,
            "entity_words" => &mut self.entity_words,
            "field_tie" => &mut self.field_tie,
            "concept_tie" => &mut self.concept_tie,
            "question_min_words" => &mut self.question_min_words,
            "question_min_grams" => &mut self.question_min_grams,
            "coverage" => &mut self.coverage,
            "coverage_grams" => &mut self.coverage_grams,
            "expansion_grams" => {
                self.expansion_grams = value > 0.0;
                return true;
            }
            _ => return false,
        };
        *slot = value;
        true
    }
}

const ZH_BOOSTS: Boosts = Boosts {
    title_words: 3.0,
    tags_words: 2.0,
    body_words: 1.0,
    questions_words: 2.5,
    about_words: 1.5,
    title_grams: 2.0,
    tags_grams: 1.0,
    body_grams: 0.8,
    questions_grams: 1.5,
    about_grams: 0.5,
    synonym: 0.5,
    graph: 3.0,
    unigram: 1.0,
    fuzzy: 0.6,
    expansion_grams: true,
    entity_words: 0.8,
    field_tie: 0.7,
    concept_tie: 1.0,
    question_min_words: 2.0,
    question_min_grams: 5.0,
    coverage: 0.5,
    coverage_grams: 0.5,
};

const EN_BOOSTS: Boosts = Boosts {
    title_words: 3.0,
    tags_words: 2.0,
    body_words: 1.0,
    questions_words: 2.5,
    about_words: 1.5,
    title_grams: 0.0,
    tags_grams: 0.0,
    body_grams: 0.0,
    questions_grams: 0.0,
    about_grams: 0.0,
    synonym: 0.5,
    graph: 3.0,
    unigram: 1.0,
    fuzzy: 0.6,
    expansion_grams: true,
    entity_words: 0.8,
    field_tie: 0.7,
    concept_tie: 1.0,
    question_min_words: 2.0,
    question_min_grams: 5.0,
    coverage: 0.5,
    coverage_grams: 0.5,
};

/// The articles of one language: a question is only ever asked of one language's articles, so
/// each has its own index, and a search reads no other language's postings.
struct Shelf {
    index: Index,
    reader: IndexReader,
    /// Kept open, so that tantivy merges the segments each change adds.
    writer: std::sync::Mutex<IndexWriter<TantivyDocument>>,
}

/// How much the fast first pass reads and brings to the exact scoring. Over the knowledge
/// bench's 100,000 articles, 32 terms and 150 candidates agree with an exhaustive pass on the
/// first article for 96% of the questions (p99 2 ms a question); 64 terms and 200 candidates
/// agree on 99% for half as much time again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FirstPass {
    /// How many of the question's terms are read, the most telling first.
    pub terms: usize,
    /// How many candidates are brought beyond the number asked for.
    pub candidates: usize,
}

impl Default for FirstPass {
    fn default() -> Self {
        FirstPass {
            terms: 32,
            candidates: 150,
        }
    }
}

/// How many of the best by the exact scoring are looked at again for coverage.
const RERANKED: usize = 20;

/// The knowledge articles' index, with the synonyms and graph queries are widened by.
pub struct SearchIndex {
    /// Chinese, English and other articles.
    shelves: [Shelf; 3],
    /// Which shelf holds each article, so that a changed or removed one is deleted from there.
    placed: std::sync::Mutex<std::collections::HashMap<String, usize>>,
    fields: Fields,
    synonyms: ArcSwap<Synonyms>,
    graph: ArcSwap<Graph>,
    /// Weights for Chinese and for English questions.
    boosts: ArcSwap<(Boosts, Boosts)>,
    first_pass: ArcSwap<FirstPass>,
}

/// An article that answers a question.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// The article id.
    pub id: String,
    /// Higher is better; comparable within one search only.
    pub score: f32,
    /// How the graph led here, when it did: `[named entity, relation, entity, ...]`, ending at
    /// an entity the article is about; empty otherwise.
    pub path: Vec<String>,
    body: String,
    /// The search's terms, which choose the passage.
    terms: Arc<PassageTerms>,
}

impl Hit {
    /// The paragraph of the body that answers best (chosen when asked: callers drop most hits).
    pub fn passage(&self) -> Option<Passage> {
        passage::best(&self.body, &self.terms)
    }
}

fn search_error(e: tantivy::TantivyError) -> AppError {
    AppError::internal(format!("knowledge index: {e}"))
}

/// The weighted terms of a query.
#[derive(Default)]
struct QueryTerms {
    words: Vec<(String, f32)>,
    grams: Vec<(String, f32)>,
}

fn add_term(terms: &mut Vec<(String, f32)>, term: String, weight: f32) {
    match terms.iter_mut().find(|(t, _)| *t == term) {
        Some((_, w)) => *w = w.max(weight),
        None => terms.push((term, weight)),
    }
}

impl SearchIndex {
    /// An index held in memory, with the starter synonyms and no graph.
    pub fn in_memory() -> AppResult<SearchIndex> {
        let mut schema = Schema::builder();
        let text = |tokenizer: &str| {
            TextOptions::default().set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer(tokenizer)
                    .set_index_option(IndexRecordOption::WithFreqs),
            )
        };
        let fields = Fields {
            id: schema.add_text_field("id", STRING | STORED),
            body: schema.add_text_field("body", STORED),
            entities: schema.add_text_field("entities", STRING | STORED),
            entity_terms: schema.add_text_field("entity_terms", text(RAW)),
            title_words: schema.add_text_field("title_words", text(WORDS)),
            title_grams: schema.add_text_field("title_grams", text(GRAMS)),
            tags_words: schema.add_text_field("tags_words", text(WORDS)),
            tags_grams: schema.add_text_field("tags_grams", text(GRAMS)),
            body_words: schema.add_text_field("body_words", text(WORDS)),
            body_grams: schema.add_text_field("body_grams", text(GRAMS)),
            questions_words: schema.add_text_field("questions_words", text(WORDS)),
            questions_grams: schema.add_text_field("questions_grams", text(GRAMS)),
            about_words: schema.add_text_field("about_words", text(WORDS)),
            about_grams: schema.add_text_field("about_grams", text(GRAMS)),
            all_words: schema.add_text_field("all_words", text(WORDS)),
            all_grams: schema.add_text_field("all_grams", text(GRAMS)),
        };
        let schema = schema.build();
        let shelf = || -> AppResult<Shelf> {
            let index = Index::create_in_ram(schema.clone());
            index
                .tokenizers()
                .register(WORDS, analysis::analyzer(false));
            index.tokenizers().register(GRAMS, analysis::analyzer(true));
            let reader = index.reader().map_err(search_error)?;
            let writer = index
                .writer_with_num_threads(1, 50_000_000)
                .map_err(search_error)?;
            Ok(Shelf {
                index,
                reader,
                writer: std::sync::Mutex::new(writer),
            })
        };
        Ok(SearchIndex {
            shelves: [shelf()?, shelf()?, shelf()?],
            placed: Default::default(),
            fields,
            synonyms: ArcSwap::from_pointee(Synonyms::starter()),
            graph: ArcSwap::from_pointee(Graph::default()),
            boosts: ArcSwap::from_pointee((ZH_BOOSTS, EN_BOOSTS)),
            first_pass: ArcSwap::from_pointee(FirstPass::default()),
        })
    }

    /// Changes how much the first pass reads (the bench compares the default with an
    /// exhaustive pass).
    pub fn set_first_pass(&self, first_pass: FirstPass) {
        self.first_pass.store(Arc::new(first_pass));
    }

    /// Replaces the synonyms questions are widened by (e.g. the starter set with the
    /// organisation's own groups, see `Synonyms::with_groups`).
    pub fn set_synonyms(&self, synonyms: Synonyms) {
        self.synonyms.store(Arc::new(synonyms));
    }

    /// Replaces the graph questions are expanded along.
    pub fn set_graph(&self, graph: Graph) {
        self.graph.store(Arc::new(graph));
    }

    /// The weights for Chinese and English questions, for tuning.
    #[cfg(test)]
    pub(crate) fn boosts(&self) -> (Boosts, Boosts) {
        **self.boosts.load()
    }

    #[cfg(test)]
    pub(crate) fn set_boosts(&self, boosts: (Boosts, Boosts)) {
        self.boosts.store(Arc::new(boosts));
    }

    /// Adds or replaces articles, then makes them searchable.
    pub fn put(&self, articles: &[IndexedArticle<'_>]) -> AppResult<()> {
        let f = self.fields;
        let mut placed = self.placed.lock().unwrap_or_else(|e| e.into_inner());
        let mut touched = [false; 3];
        for article in articles {
            let shelf = shelf_of(article.lang);
            if let Some(old) = placed.insert(article.id.to_string(), shelf) {
                touched[old] = true;
                self.shelves[old]
                    .writer()
                    .delete_term(Term::from_field_text(f.id, article.id));
            }
            let mut document = TantivyDocument::default();
            document.add_text(f.id, article.id);
            document.add_text(f.body, article.body);
            document.add_text(f.title_words, article.title);
            document.add_text(f.title_grams, article.title);
            document.add_text(f.body_words, article.body);
            document.add_text(f.body_grams, article.body);
            for tag in article.tags {
                document.add_text(f.tags_words, tag);
                document.add_text(f.tags_grams, tag);
            }
            for question in article.questions {
                document.add_text(f.questions_words, question);
                document.add_text(f.questions_grams, question);
            }
            for name in article.about {
                document.add_text(f.about_words, name);
                document.add_text(f.about_grams, name);
            }
            for entity in article.entities {
                document.add_text(f.entities, entity);
                document.add_text(f.entity_terms, entity);
            }
            let everything = [article.title, article.body]
                .into_iter()
                .chain(article.tags.iter().map(String::as_str))
                .chain(article.questions.iter().map(String::as_str))
                .chain(article.about.iter().map(String::as_str));
            for text in everything {
                document.add_text(f.all_words, text);
                document.add_text(f.all_grams, text);
            }
            touched[shelf] = true;
            self.shelves[shelf]
                .writer()
                .add_document(document)
                .map_err(search_error)?;
        }
        self.commit(touched)
    }

    /// Merges each language's segments into one: what a search costs grows with their number.
    /// Worth it after many changes at once (the first catch-up from the store).
    pub fn compact(&self) -> AppResult<()> {
        let _placed = self.placed.lock().unwrap_or_else(|e| e.into_inner());
        for shelf in &self.shelves {
            let segments = shelf.index.searchable_segment_ids().map_err(search_error)?;
            if segments.len() > 1 {
                shelf
                    .writer()
                    .merge(&segments)
                    .wait()
                    .map_err(search_error)?;
                shelf.reader.reload().map_err(search_error)?;
            }
        }
        Ok(())
    }

    fn commit(&self, touched: [bool; 3]) -> AppResult<()> {
        for (shelf, touched) in self.shelves.iter().zip(touched) {
            if touched {
                shelf.writer().commit().map_err(search_error)?;
                shelf.reader.reload().map_err(search_error)?;
            }
        }
        Ok(())
    }

    /// The question's own terms, at weight 1, and the synonyms' terms for each group the
    /// question names.
    fn query_terms<'s>(
        normal: &str,
        prepared: &Prepared,
        synonyms: &'s Synonyms,
        boosts: &Boosts,
    ) -> (QueryTerms, Vec<Vec<&'s Analysed>>) {
        let mut terms = QueryTerms::default();
        for word in analysis::word_terms_of_normal(normal) {
            add_term(&mut terms.words, word, 1.0);
        }
        for gram in text::han_grams(normal) {
            let weight = if gram.chars().count() > 1 {
                1.0
            } else if text::is_stop_word(&gram) || text::is_question_word(&gram) {
                // In nearly every article: costly to look up, and says nothing.
                continue;
            } else {
                boosts.unigram
            };
            add_term(&mut terms.grams, gram, weight);
        }
        (terms, synonyms.expansions(prepared))
    }

    /// The best `limit` articles in `lang` for a question, best first.
    pub fn search(&self, question: &str, lang: Language, limit: usize) -> AppResult<Vec<Hit>> {
        let normal = text::normalise_simplified(question);
        let all = self.boosts.load();
        let boosts = match text::language(&normal) {
            Language::Zh => &all.0,
            Language::En | Language::Unknown => &all.1,
        };
        let f = self.fields;
        let prepared = Prepared::of_normal(&normal);
        let synonyms = self.synonyms.load();
        let (mut terms, expansions) = Self::query_terms(&normal, &prepared, &synonyms, boosts);
        let also: Vec<&Prepared> = expansions.iter().flatten().map(|t| &t.prepared).collect();
        let graph = self.graph.load();
        let reached = graph.reach(&prepared, (&also, boosts.synonym));
        if boosts.entity_words != 1.0 {
            for name in graph.names_in(&prepared) {
                for word in analysis::word_terms(name) {
                    if let Some((_, w)) = terms.words.iter_mut().find(|(t, _)| *t == word) {
                        *w *= boosts.entity_words;
                    }
                }
                let normal = text::normalise_simplified(name);
                for gram in text::han_grams(&normal) {
                    if let Some((_, w)) = terms.grams.iter_mut().find(|(t, _)| *t == gram) {
                        *w *= boosts.entity_words;
                    }
                }
            }
        }

        let mut exact = ExactModel::default();
        // Learned questions are short and each article has few: one shared word (a product's
        // name) would make any article whose question named it look similar. Unless the
        // weights say otherwise, they count only when they share several terms with the
        // question.
        let (min_words, min_grams) = (
            boosts.question_min_words as usize,
            boosts.question_min_grams as usize,
        );
        let in_own = |min: usize, boost: f32| if min > 0 { 0.0 } else { boost };
        let word_fields = [
            (f.title_words, boosts.title_words),
            (f.tags_words, boosts.tags_words),
            (f.body_words, boosts.body_words),
            (f.questions_words, in_own(min_words, boosts.questions_words)),
            (f.about_words, boosts.about_words),
        ];
        let gram_fields = [
            (f.title_grams, boosts.title_grams),
            (f.tags_grams, boosts.tags_grams),
            (f.body_grams, boosts.body_grams),
            (f.questions_grams, in_own(min_grams, boosts.questions_grams)),
            (f.about_grams, boosts.about_grams),
        ];
        for (field, boost, min, list) in [
            (
                f.questions_words,
                boosts.questions_words,
                min_words,
                &terms.words,
            ),
            (
                f.questions_grams,
                boosts.questions_grams,
                min_grams,
                &terms.grams,
            ),
        ] {
            if min == 0 || boost <= 0.0 || list.len() < min {
                continue;
            }
            let items = list
                .iter()
                .map(|(term, weight)| {
                    (
                        exact.lookup(Term::from_field_text(field, term)),
                        boost * weight,
                    )
                })
                .collect();
            exact.parts.push(Part::AtLeast { min, items });
        }
        let tie = boosts.field_tie;
        for (word, weight) in &terms.words {
            exact.push_term(&word_fields, word, *weight, tie);
        }
        for (gram, weight) in &terms.grams {
            exact.push_term(&gram_fields, gram, *weight, tie);
        }
        // Each synonym group is one concept: its terms count as the best match plus a share of
        // the others, at the synonyms' weight.
        let mut passage_words = terms.words.clone();
        let mut passage_grams = terms.grams.clone();
        // A term in several named groups counts once.
        let mut seen: Vec<&str> = Vec::new();
        for group in &expansions {
            let mut members = Vec::new();
            for term in group {
                for word in &term.words {
                    if terms.words.iter().any(|(w, _)| w == word) || seen.contains(&word.as_str()) {
                        continue;
                    }
                    seen.push(word);
                    add_term(&mut passage_words, word.clone(), boosts.synonym);
                    members.extend(exact.term(&word_fields, word, boosts.synonym, tie));
                }
                if boosts.expansion_grams {
                    for pair in &term.pairs {
                        if terms.grams.iter().any(|(g, _)| g == pair)
                            || seen.contains(&pair.as_str())
                        {
                            continue;
                        }
                        seen.push(pair);
                        add_term(&mut passage_grams, pair.clone(), boosts.synonym);
                        members.extend(exact.term(&gram_fields, pair, boosts.synonym, tie));
                    }
                }
            }
            if !members.is_empty() {
                exact.parts.push(Part::Group {
                    tie: boosts.concept_tie,
                    members,
                });
            }
        }
        let searcher = self.shelves[shelf_of(lang)].reader.searcher();
        let all = postings::all_documents(&searcher)?;
        let mut near_terms = Vec::new();
        if boosts.fuzzy > 0.0 {
            for (word, weight) in terms.words.iter().filter(|(_, w)| *w >= 1.0) {
                if !looks_misspelt(word) {
                    continue;
                }
                let mut known = false;
                for field in [f.title_words, f.body_words, f.questions_words] {
                    let term = Term::from_field_text(field, word);
                    known |= searcher.doc_freq(&term).map_err(search_error)? > 0;
                }
                if known {
                    continue;
                }
                for (field, boost) in [
                    (f.title_words, boosts.title_words),
                    (f.body_words, boosts.body_words),
                    (f.questions_words, boosts.questions_words),
                ] {
                    let query = FuzzyTermQuery::new(Term::from_field_text(field, word), 1, true);
                    // A near spelling counts the same whatever it is.
                    let value = boost * weight * boosts.fuzzy;
                    let mut lookups = Vec::new();
                    for term in near_spellings(&searcher, field, &query)? {
                        let documents = searcher.doc_freq(&term).map_err(search_error)?;
                        let idf = postings::idf(documents, all);
                        near_terms.push((term.clone(), value / idf.max(0.1)));
                        lookups.push(exact.lookup(term));
                    }
                    if !lookups.is_empty() {
                        exact.parts.push(Part::Any { lookups, value });
                    }
                }
            }
        }
        if exact.parts.is_empty() {
            return Ok(Vec::new());
        }
        if !reached.is_empty() && boosts.graph > 0.0 {
            let members = reached
                .iter()
                .map(|r| Part::Any {
                    lookups: vec![exact.lookup(Term::from_field_text(f.entity_terms, &r.entity))],
                    value: boosts.graph * r.weight,
                })
                .collect();
            exact.parts.push(Part::Group { tie: 0.1, members });
        }
        let reach = **self.first_pass.load();
        let first_pass = first_pass_terms(f, boosts, &passage_words, &passage_grams);
        let top = {
            // The most telling terms only: reading the postings of a common word costs the most
            // and moves a candidate least.
            let mut first_pass: Vec<(Term, f32, f32)> = first_pass
                .into_iter()
                .map(|(term, weight)| {
                    let documents = searcher.doc_freq(&term).map_err(search_error)?;
                    let telling = if documents == 0 {
                        0.0
                    } else {
                        weight * postings::idf(documents, all)
                    };
                    Ok((term, weight, telling))
                })
                .collect::<AppResult<_>>()?;
            first_pass.retain(|(_, _, telling)| *telling > 0.0);
            first_pass.sort_by(|a, b| b.2.total_cmp(&a.2));
            first_pass.truncate(reach.terms);
            let mut first_pass: Vec<(Term, f32)> =
                first_pass.into_iter().map(|(t, w, _)| (t, w)).collect();
            first_pass.extend(near_terms);
            for r in &reached {
                let term = Term::from_field_text(f.entity_terms, &r.entity);
                let documents = searcher.doc_freq(&term).map_err(search_error)?;
                if documents == 0 {
                    continue;
                }
                // About what its BM25 weight is for one mention, so that the term adds about what
                // the exact scoring's entity clause adds.
                let idf = postings::idf(documents, all);
                first_pass.push((term, boosts.graph * r.weight / idf.max(0.1)));
            }
            let candidates = postings::top_by_terms(
                &searcher,
                &first_pass,
                limit.saturating_add(reach.candidates),
            )?;
            let mut scored = exact.rescore(&searcher, candidates)?;
            scored.sort_by(|a, b| b.0.total_cmp(&a.0));
            if boosts.coverage > 0.0 {
                scored.truncate(limit + RERANKED);
                let concepts = concepts(f, boosts, &searcher, &terms, &expansions)?;
                let addresses: Vec<DocAddress> = scored.iter().map(|(_, a)| *a).collect();
                let covered = rerank::coverage(&searcher, &concepts, &addresses)?;
                let best = scored.first().map_or(1.0, |(s, _)| s.max(f32::EPSILON));
                for ((score, _), share) in scored.iter_mut().zip(covered) {
                    *score = *score / best + boosts.coverage * share;
                }
                scored.sort_by(|a, b| b.0.total_cmp(&a.0));
            }
            scored.truncate(limit);
            scored
        };
        let passage_terms = Arc::new(PassageTerms {
            words: passage_words,
            grams: passage_grams
                .into_iter()
                .filter(|(g, _)| g.chars().count() == 2)
                .collect(),
        });
        let mut hits = Vec::with_capacity(top.len());
        for (score, address) in top {
            let document: TantivyDocument = searcher.doc(address).map_err(search_error)?;
            let Some(id) = document.get_first(f.id).and_then(|v| v.as_str()) else {
                continue;
            };
            let body = document
                .get_first(f.body)
                .and_then(|v| v.as_str())
                .unwrap_or("");
            let about: Vec<&str> = document
                .get_all(f.entities)
                .filter_map(|v| v.as_str())
                .collect();
            hits.push(Hit {
                id: id.to_string(),
                score,
                path: best_path(&reached, &about),
                body: body.to_string(),
                terms: passage_terms.clone(),
            });
        }
        Ok(hits)
    }

    /// Takes articles out of the index (archived, or gone).
    pub fn remove(&self, ids: &[String]) -> AppResult<()> {
        let mut placed = self.placed.lock().unwrap_or_else(|e| e.into_inner());
        let mut touched = [false; 3];
        for id in ids {
            let Some(shelf) = placed.remove(id) else {
                continue;
            };
            touched[shelf] = true;
            self.shelves[shelf]
                .writer()
                .delete_term(Term::from_field_text(self.fields.id, id));
        }
        self.commit(touched)
    }
}

impl Shelf {
    fn writer(&self) -> std::sync::MutexGuard<'_, IndexWriter<TantivyDocument>> {
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn shelf_of(lang: Language) -> usize {
    match lang {
        Language::Zh => 0,
        Language::En => 1,
        Language::Unknown => 2,
    }
}

/// The first pass's terms: every term of the question and its synonyms, looked up once in the
/// field that holds all of an article's text. Their sum ranks candidates close to the exact
/// scoring, and each is read whole, once (`postings::top_by_terms`).
fn first_pass_terms(
    f: Fields,
    boosts: &Boosts,
    passage_words: &[(String, f32)],
    passage_grams: &[(String, f32)],
) -> Vec<(Term, f32)> {
    let gram_share = if boosts.body_words > 0.0 {
        boosts.body_grams / boosts.body_words
    } else {
        0.0
    };
    let mut out = Vec::new();
    for (word, weight) in passage_words {
        out.push((Term::from_field_text(f.all_words, word), *weight));
    }
    if gram_share > 0.0 {
        // Single Han characters are in most Chinese articles: long to read, and the pairs and
        // words already carry them.
        for (gram, weight) in passage_grams.iter().filter(|(g, _)| g.chars().count() > 1) {
            out.push((
                Term::from_field_text(f.all_grams, gram),
                weight * gram_share,
            ));
        }
    }
    out.retain(|(_, weight)| *weight > 0.0);
    out
}

/// The terms of a field within a fuzzy query's reach, a few at most.
fn near_spellings(
    searcher: &Searcher,
    field: Field,
    query: &FuzzyTermQuery,
) -> AppResult<Vec<Term>> {
    const MOST: usize = 8;
    let mut found: Vec<Term> = Vec::new();
    for segment in searcher.segment_readers() {
        let inverted = segment.inverted_index(field).map_err(search_error)?;
        let automaton = query.automaton().map_err(search_error)?;
        let mut stream = inverted
            .terms()
            .search(automaton)
            .into_stream()
            .map_err(|e| AppError::internal(format!("knowledge index: {e}")))?;
        while stream.advance() && found.len() < MOST {
            let term = Term::from_field_bytes(field, stream.key());
            if !found.contains(&term) {
                found.push(term);
            }
        }
    }
    Ok(found)
}

/// The question's concepts, for coverage: each of its words (and, in Chinese, Han pairs), and
/// each synonym group it names, weighted by how rare they are.
fn concepts(
    f: Fields,
    boosts: &Boosts,
    searcher: &Searcher,
    terms: &QueryTerms,
    expansions: &[Vec<&Analysed>],
) -> AppResult<Vec<Concept>> {
    let word_fields = [f.all_words];
    let gram_fields = [f.all_grams];
    let all = postings::all_documents(searcher)?;
    let rarity = |terms: &[Term]| -> AppResult<f32> {
        let mut most = 0;
        for term in terms {
            most = most.max(searcher.doc_freq(term).map_err(search_error)?);
        }
        Ok(if most == 0 {
            0.0
        } else {
            postings::idf(most, all)
        })
    };
    let mut concepts = Vec::new();
    for (word, weight) in &terms.words {
        let terms: Vec<Term> = word_fields
            .iter()
            .map(|&field| Term::from_field_text(field, word))
            .collect();
        let weight = weight * rarity(&terms)?;
        concepts.push(Concept { terms, weight });
    }
    if boosts.coverage_grams > 0.0 {
        for (gram, weight) in terms.grams.iter().filter(|(g, _)| g.chars().count() == 2) {
            let terms: Vec<Term> = gram_fields
                .iter()
                .map(|&field| Term::from_field_text(field, gram))
                .collect();
            let weight = weight * boosts.coverage_grams * rarity(&terms)?;
            concepts.push(Concept { terms, weight });
        }
    }
    for group in expansions {
        let mut terms = Vec::new();
        for analysed in group {
            for word in &analysed.words {
                terms.extend(word_fields.iter().map(|&f| Term::from_field_text(f, word)));
            }
            for pair in &analysed.pairs {
                terms.extend(gram_fields.iter().map(|&f| Term::from_field_text(f, pair)));
            }
        }
        let weight = boosts.synonym * rarity(&terms)?;
        concepts.push(Concept { terms, weight });
    }
    concepts.retain(|c| c.weight > 0.0);
    Ok(concepts)
}

/// The exact scoring, as arithmetic over each term's BM25 score in each field of each candidate
/// (a union of the same terms would score every document near each candidate).
#[derive(Default)]
struct ExactModel {
    lookups: Vec<Term>,
    numbers: std::collections::HashMap<Term, usize>,
    /// Summed.
    parts: Vec<Part>,
}

enum Part {
    /// The best of the weighted term scores plus `tie` of the others: one term in several
    /// fields.
    Best { tie: f32, items: Vec<(usize, f32)> },
    /// The best of its members plus `tie` of the others: a synonym group, the graph's entities.
    Group { tie: f32, members: Vec<Part> },
    /// The weighted term scores summed, when at least `min` of them match: learned questions.
    AtLeast {
        min: usize,
        items: Vec<(usize, f32)>,
    },
    /// `value` when any of the terms occurs: near spellings, an entity.
    Any { lookups: Vec<usize>, value: f32 },
}

fn best_plus(scores: impl Iterator<Item = f32>, tie: f32) -> f32 {
    let (mut best, mut sum) = (0.0f32, 0.0f32);
    for s in scores {
        best = best.max(s);
        sum += s;
    }
    best + tie * (sum - best)
}

impl Part {
    fn score(&self, scores: &[Vec<f32>], candidate: usize) -> f32 {
        match self {
            Part::Best { tie, items } => {
                best_plus(items.iter().map(|&(l, w)| w * scores[l][candidate]), *tie)
            }
            Part::Group { tie, members } => {
                best_plus(members.iter().map(|m| m.score(scores, candidate)), *tie)
            }
            Part::AtLeast { min, items } => {
                let matched = items
                    .iter()
                    .filter(|&&(l, _)| scores[l][candidate] > 0.0)
                    .count();
                if matched >= *min {
                    items.iter().map(|&(l, w)| w * scores[l][candidate]).sum()
                } else {
                    0.0
                }
            }
            Part::Any { lookups, value } => {
                if lookups.iter().any(|&l| scores[l][candidate] > 0.0) {
                    *value
                } else {
                    0.0
                }
            }
        }
    }
}

impl ExactModel {
    fn lookup(&mut self, term: Term) -> usize {
        if let Some(&n) = self.numbers.get(&term) {
            return n;
        }
        self.lookups.push(term.clone());
        self.numbers.insert(term, self.lookups.len() - 1);
        self.lookups.len() - 1
    }

    /// A term looked up in several fields: the best field plus `tie` of the others.
    fn term(&mut self, fields: &[(Field, f32)], term: &str, weight: f32, tie: f32) -> Option<Part> {
        let items: Vec<(usize, f32)> = fields
            .iter()
            .filter(|(_, boost)| *boost > 0.0)
            .map(|&(field, boost)| {
                (
                    self.lookup(Term::from_field_text(field, term)),
                    boost * weight,
                )
            })
            .collect();
        (!items.is_empty()).then_some(Part::Best { tie, items })
    }

    fn push_term(&mut self, fields: &[(Field, f32)], term: &str, weight: f32, tie: f32) {
        if let Some(part) = self.term(fields, term, weight, tie) {
            self.parts.push(part);
        }
    }

    /// The candidates' exact scores; those that match nothing are left out.
    fn rescore(
        &self,
        searcher: &Searcher,
        candidates: Vec<(f32, DocAddress)>,
    ) -> AppResult<Vec<(f32, DocAddress)>> {
        let addresses: Vec<DocAddress> = candidates.iter().map(|(_, a)| *a).collect();
        let scores = postings::term_scores(searcher, &self.lookups, &addresses)?;
        Ok(addresses
            .into_iter()
            .enumerate()
            .map(|(i, address)| {
                (
                    self.parts.iter().map(|p| p.score(&scores, i)).sum::<f32>(),
                    address,
                )
            })
            .filter(|(score, _)| *score > 0.0)
            .collect())
    }
}

/// A Latin word long enough for one wrong letter to leave it recognisable.
fn looks_misspelt(word: &str) -> bool {
    word.len() >= 4 && word.chars().all(|c| c.is_ascii_alphabetic())
}

/// The path to the most specific reached entity the article is about (a known issue reached
/// through its product rather than the product itself), the best weighted among equals.
fn best_path(reached: &[Reached], about: &[&str]) -> Vec<String> {
    reached
        .iter()
        .filter(|r| about.contains(&r.entity.as_str()))
        .max_by(|a, b| a.depth.cmp(&b.depth).then(a.weight.total_cmp(&b.weight)))
        .map(|r| r.path.clone())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::graph::{Entity, Relation};
    use crate::knowledge::synonyms::SynonymGroup;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    struct Doc {
        id: &'static str,
        title: &'static str,
        body: &'static str,
        entities: Vec<String>,
    }

    fn index() -> SearchIndex {
        let docs = [
            Doc {
                id: "a",
                title: "Setting up the camera",
                body: "Scan the code in the app.\n\nThen choose your Wi-Fi network.",
                entities: strings(&["product:cam"]),
            },
            Doc {
                id: "b",
                title: "Known issue: night image flickers on firmware 1.8",
                body: "**Symptom**\nThe picture switches between colour and black and white.\n\n**Fix**\nUpdate to firmware 1.8.4.",
                entities: strings(&["issue:flicker"]),
            },
            Doc {
                id: "c",
                title: "Refund timing",
                body: "Refunds reach your card within 5 business days.",
                entities: Vec::new(),
            },
        ];
        let index = SearchIndex::in_memory().unwrap();
        let articles: Vec<IndexedArticle<'_>> = docs
            .iter()
            .map(|d| IndexedArticle {
                id: d.id,
                lang: Language::En,
                title: d.title,
                body: d.body,
                tags: &[],
                questions: &[],
                about: &[],
                entities: &d.entities,
            })
            .collect();
        index.put(&articles).unwrap();
        index.set_graph(Graph::new(
            vec![
                Entity {
                    id: "product:cam".into(),
                    names: strings(&["camera", "cam"]),
                },
                Entity {
                    id: "component:night".into(),
                    names: strings(&["night vision"]),
                },
                Entity {
                    id: "issue:flicker".into(),
                    names: strings(&["flicker"]),
                },
            ],
            vec![
                Relation {
                    from: "product:cam".into(),
                    kind: "has_component".into(),
                    to: "component:night".into(),
                },
                Relation {
                    from: "component:night".into(),
                    kind: "has_known_issue".into(),
                    to: "issue:flicker".into(),
                },
            ],
        ));
        index
    }

    #[test]
    fn a_product_and_symptom_find_the_known_issue_with_its_path_and_passage() {
        let index = index();
        let hits = index
            .search(
                "my camera picture goes black and white at night",
                Language::En,
                3,
            )
            .unwrap();
        let issue = hits.iter().find(|h| h.id == "b").expect("issue found");
        assert_eq!(
            issue.path,
            [
                "product:cam",
                "has_component",
                "component:night",
                "has_known_issue",
                "issue:flicker"
            ]
        );
        assert!(issue.passage().unwrap().text.contains("picture"));
        // A synonym of the issue's name ("flashing" for "flicker") names it directly.
        let hits = index
            .search("my cam keeps flashing", Language::En, 1)
            .unwrap();
        assert_eq!(
            (hits[0].id.as_str(), hits[0].path.as_slice()),
            ("b", &["issue:flicker".to_string()][..])
        );
    }

    #[test]
    fn synonyms_and_typos_reach_the_article() {
        let index = index();
        let hits = index
            .search("when do i get my money back", Language::En, 1)
            .unwrap();
        assert_eq!(hits[0].id, "c", "{hits:?}");
        let hits = index.search("refnud", Language::En, 1).unwrap();
        assert_eq!(hits[0].id, "c", "{hits:?}");
        index.set_synonyms(Synonyms::new(vec![SynonymGroup::of(["dosh", "refund"])]));
        let hits = index.search("dosh", Language::En, 1).unwrap();
        assert_eq!(hits[0].id, "c", "{hits:?}");
    }
}
