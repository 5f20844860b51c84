//! Full-text retrieval of knowledge articles: BM25 over Chinese dictionary words, Han
//! character grams and English stems, in the title, the body and the questions an article is
//! known to answer.

use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, BoostQuery, Occur, Query, TermQuery};
use tantivy::schema::{
    Field, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions, Value,
};
use tantivy::tokenizer::{Stemmer, TextAnalyzer, Token, TokenStream, Tokenizer};
use tantivy::{Index, IndexReader, IndexWriter, TantivyDocument, Term};

use crate::error::{AppError, AppResult};
use crate::text::{self, Language};

const WORDS: &str = "allhands_words";
const GRAMS: &str = "allhands_grams";

/// Tokens made by `text`: normalised, then cut into words or Han grams.
#[derive(Clone)]
struct PipelineTokenizer {
    grams: bool,
}

struct Tokens {
    tokens: Vec<Token>,
    next: usize,
}

impl TokenStream for Tokens {
    fn advance(&mut self) -> bool {
        self.next += 1;
        self.next <= self.tokens.len()
    }

    fn token(&self) -> &Token {
        &self.tokens[self.next - 1]
    }

    fn token_mut(&mut self) -> &mut Token {
        &mut self.tokens[self.next - 1]
    }
}

impl Tokenizer for PipelineTokenizer {
    type TokenStream<'a> = Tokens;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Tokens {
        let normal = text::normalise_simplified(text);
        let terms = if self.grams {
            text::han_grams(&normal)
        } else {
            let mut words = text::words(&normal);
            words.retain(|w| !text::is_question_word(w));
            words
        };
        let tokens = terms
            .into_iter()
            .enumerate()
            .map(|(position, text)| Token {
                offset_from: 0,
                offset_to: 0,
                position,
                text,
                position_length: 1,
            })
            .collect();
        Tokens { tokens, next: 0 }
    }
}

fn analyzer(grams: bool) -> TextAnalyzer {
    if grams {
        TextAnalyzer::from(PipelineTokenizer { grams })
    } else {
        TextAnalyzer::builder(PipelineTokenizer { grams })
            .filter(Stemmer::default())
            .build()
    }
}

/// What an index holds about one article.
pub struct IndexedArticle<'a> {
    pub id: &'a str,
    pub lang: Language,
    pub title: &'a str,
    pub body: &'a str,
    /// Customer questions this article answered (learned from employees' confirmations).
    pub questions: &'a [String],
    /// Names and aliases of what the article is about, and of what that belongs to in the graph.
    pub about: &'a [String],
}

#[derive(Clone, Copy)]
struct Fields {
    id: Field,
    lang: Field,
    title_words: Field,
    title_grams: Field,
    body_words: Field,
    body_grams: Field,
    questions_words: Field,
    questions_grams: Field,
    about_words: Field,
    about_grams: Field,
}

/// How much a match in each field counts, per language of the question: Han grams help Chinese
/// and are noise for English.
struct Boosts {
    title_words: f32,
    body_words: f32,
    questions_words: f32,
    title_grams: f32,
    body_grams: f32,
    questions_grams: f32,
    about_words: f32,
    about_grams: f32,
}

const ZH_BOOSTS: Boosts = Boosts {
    title_words: 3.0,
    body_words: 1.0,
    questions_words: 2.5,
    title_grams: 2.0,
    body_grams: 0.8,
    questions_grams: 1.5,
    about_words: 1.5,
    about_grams: 0.5,
};

const EN_BOOSTS: Boosts = Boosts {
    title_words: 3.0,
    body_words: 1.0,
    questions_words: 2.5,
    title_grams: 0.0,
    body_grams: 0.0,
    questions_grams: 0.0,
    about_words: 1.5,
    about_grams: 0.0,
};

pub struct SearchIndex {
    index: Index,
    reader: IndexReader,
    fields: Fields,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub id: String,
    pub score: f32,
}

fn search_error(e: tantivy::TantivyError) -> AppError {
    AppError::internal(format!("knowledge index: {e}"))
}

impl SearchIndex {
    /// An index held in memory.
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
            lang: schema.add_text_field("lang", STRING),
            title_words: schema.add_text_field("title_words", text(WORDS)),
            title_grams: schema.add_text_field("title_grams", text(GRAMS)),
            body_words: schema.add_text_field("body_words", text(WORDS)),
            body_grams: schema.add_text_field("body_grams", text(GRAMS)),
            questions_words: schema.add_text_field("questions_words", text(WORDS)),
            questions_grams: schema.add_text_field("questions_grams", text(GRAMS)),
            about_words: schema.add_text_field("about_words", text(WORDS)),
            about_grams: schema.add_text_field("about_grams", text(GRAMS)),
        };
        let index = Index::create_in_ram(schema.build());
        index.tokenizers().register(WORDS, analyzer(false));
        index.tokenizers().register(GRAMS, analyzer(true));
        let reader = index.reader().map_err(search_error)?;
        Ok(SearchIndex {
            index,
            reader,
            fields,
        })
    }

    /// Adds or replaces articles, then makes them searchable.
    pub fn put(&self, articles: &[IndexedArticle<'_>]) -> AppResult<()> {
        let mut writer: IndexWriter<TantivyDocument> =
            self.index.writer(50_000_000).map_err(search_error)?;
        let f = self.fields;
        for article in articles {
            writer.delete_term(Term::from_field_text(f.id, article.id));
            let mut document = TantivyDocument::default();
            document.add_text(f.id, article.id);
            document.add_text(f.lang, article.lang.as_str());
            document.add_text(f.title_words, article.title);
            document.add_text(f.title_grams, article.title);
            document.add_text(f.body_words, article.body);
            document.add_text(f.body_grams, article.body);
            for question in article.questions {
                document.add_text(f.questions_words, question);
                document.add_text(f.questions_grams, question);
            }
            for name in article.about {
                document.add_text(f.about_words, name);
                document.add_text(f.about_grams, name);
            }
            writer.add_document(document).map_err(search_error)?;
        }
        writer.commit().map_err(search_error)?;
        self.reader.reload().map_err(search_error)?;
        Ok(())
    }

    /// The best `limit` articles in `lang` for a question, best first.
    pub fn search(&self, question: &str, lang: Language, limit: usize) -> AppResult<Vec<Hit>> {
        let normal = text::normalise_simplified(question);
        let boosts = match text::language(&normal) {
            Language::Zh => &ZH_BOOSTS,
            Language::En | Language::Unknown => &EN_BOOSTS,
        };
        let f = self.fields;
        let mut words_analyzer = analyzer(false);
        let mut stems = Vec::new();
        {
            let mut stream = words_analyzer.token_stream(question);
            while let Some(token) = stream.next() {
                if !stems.contains(&token.text) {
                    stems.push(token.text.clone());
                }
            }
        }
        let mut grams = text::han_grams(&normal);
        grams.sort();
        grams.dedup();
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        let mut add = |field: Field, term: &str, boost: f32| {
            if boost > 0.0 {
                let query = TermQuery::new(
                    Term::from_field_text(field, term),
                    IndexRecordOption::WithFreqs,
                );
                clauses.push((
                    Occur::Should,
                    Box::new(BoostQuery::new(Box::new(query), boost)),
                ));
            }
        };
        for stem in &stems {
            add(f.title_words, stem, boosts.title_words);
            add(f.body_words, stem, boosts.body_words);
            add(f.questions_words, stem, boosts.questions_words);
            add(f.about_words, stem, boosts.about_words);
        }
        for gram in &grams {
            add(f.title_grams, gram, boosts.title_grams);
            add(f.body_grams, gram, boosts.body_grams);
            add(f.questions_grams, gram, boosts.questions_grams);
            add(f.about_grams, gram, boosts.about_grams);
        }
        if clauses.is_empty() {
            return Ok(Vec::new());
        }
        let query = BooleanQuery::new(vec![
            (
                Occur::Must,
                Box::new(BooleanQuery::new(clauses)) as Box<dyn Query>,
            ),
            (
                Occur::Must,
                Box::new(TermQuery::new(
                    Term::from_field_text(f.lang, lang.as_str()),
                    IndexRecordOption::Basic,
                )),
            ),
        ]);
        let searcher = self.reader.searcher();
        let top = searcher
            .search(&query, &TopDocs::with_limit(limit).order_by_score())
            .map_err(search_error)?;
        let mut hits = Vec::with_capacity(top.len());
        for (score, address) in top {
            let document: TantivyDocument = searcher.doc(address).map_err(search_error)?;
            if let Some(id) = document.get_first(f.id).and_then(|v| v.as_str()) {
                hits.push(Hit {
                    id: id.to_string(),
                    score,
                });
            }
        }
        Ok(hits)
    }

    /// Takes articles out of the index (archived, or gone).
    pub fn remove(&self, ids: &[String]) -> AppResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut writer: IndexWriter<TantivyDocument> =
            self.index.writer(15_000_000).map_err(search_error)?;
        for id in ids {
            writer.delete_term(Term::from_field_text(self.fields.id, id));
        }
        writer.commit().map_err(search_error)?;
        self.reader.reload().map_err(search_error)?;
        Ok(())
    }
}
