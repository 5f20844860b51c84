//! How knowledge text becomes search terms, shared by the index, the query, synonyms, the graph
//! and passages: `crate::text`'s normal form, then dictionary words with English stems, or Han
//! character grams.

use tantivy::tokenizer::{Stemmer, TextAnalyzer, Token, TokenStream, Tokenizer};

use crate::text;

/// The tantivy name of the word analyser.
pub(crate) const WORDS: &str = "allhands_words";
/// The tantivy name of the Han gram analyser.
pub(crate) const GRAMS: &str = "allhands_grams";

/// Tokens made by `text`: normalised, then cut into words or Han grams.
#[derive(Clone)]
struct PipelineTokenizer {
    grams: bool,
    /// The text is already in `text::normalise_simplified` form (normalising costs more than
    /// cutting).
    normal: bool,
}

pub(crate) struct Tokens {
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
        let normalised;
        let normal = if self.normal {
            text
        } else {
            normalised = text::normalise_simplified(text);
            &normalised
        };
        let terms = if self.grams {
            text::han_grams(normal)
        } else {
            let mut words: Vec<String> = text::words(normal)
                .into_iter()
                .filter(|w| !text::is_question_word(w) && !is_filler(w))
                .map(|w| fold_english(&w).map_or(w, str::to_string))
                .collect();
            words.extend(joined_words(normal));
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

/// English word forms the stemmer leaves apart, folded to one: irregular verbs to their base
/// form, British spellings to American ones, negations to "not".
const ENGLISH_FORMS: &[(&str, &str)] = &[
    // irregular verbs
    ("bought", "buy"),
    ("brought", "bring"),
    ("broke", "break"),
    ("broken", "break"),
    ("came", "come"),
    ("caught", "catch"),
    ("chose", "choose"),
    ("chosen", "choose"),
    ("did", "do"),
    ("done", "do"),
    ("drew", "draw"),
    ("drawn", "draw"),
    ("drove", "drive"),
    ("driven", "drive"),
    ("ate", "eat"),
    ("eaten", "eat"),
    ("fell", "fall"),
    ("fallen", "fall"),
    ("felt", "feel"),
    ("found", "find"),
    ("forgot", "forget"),
    ("forgotten", "forget"),
    ("froze", "freeze"),
    ("frozen", "freeze"),
    ("gave", "give"),
    ("given", "give"),
    ("went", "go"),
    ("gone", "go"),
    ("grew", "grow"),
    ("grown", "grow"),
    ("held", "hold"),
    ("hid", "hide"),
    ("hidden", "hide"),
    ("kept", "keep"),
    ("knew", "know"),
    ("known", "know"),
    ("laid", "lay"),
    ("led", "lead"),
    ("lent", "lend"),
    ("lost", "lose"),
    ("made", "make"),
    ("meant", "mean"),
    ("met", "meet"),
    ("paid", "pay"),
    ("ran", "run"),
    ("rang", "ring"),
    ("rung", "ring"),
    ("said", "say"),
    ("saw", "see"),
    ("seen", "see"),
    ("sold", "sell"),
    ("sent", "send"),
    ("shook", "shake"),
    ("shown", "show"),
    ("shut", "shut"),
    ("spent", "spend"),
    ("stole", "steal"),
    ("stolen", "steal"),
    ("stood", "stand"),
    ("stuck", "stick"),
    ("swapped", "swap"),
    ("taken", "take"),
    ("took", "take"),
    ("taught", "teach"),
    ("thought", "think"),
    ("threw", "throw"),
    ("thrown", "throw"),
    ("told", "tell"),
    ("understood", "understand"),
    ("woke", "wake"),
    ("woken", "wake"),
    ("wore", "wear"),
    ("worn", "wear"),
    ("wrote", "write"),
    ("written", "write"),
    ("began", "begin"),
    ("begun", "begin"),
    ("built", "build"),
    ("dealt", "deal"),
    ("dug", "dig"),
    ("fed", "feed"),
    ("fought", "fight"),
    ("flew", "fly"),
    ("flown", "fly"),
    ("hung", "hang"),
    ("heard", "hear"),
    ("hit", "hit"),
    ("read", "read"),
    ("rode", "ride"),
    ("rose", "rise"),
    ("sank", "sink"),
    ("slept", "sleep"),
    ("spoke", "speak"),
    ("spoken", "speak"),
    ("struck", "strike"),
    ("swore", "swear"),
    ("tore", "tear"),
    ("torn", "tear"),
    ("died", "die"),
    ("dying", "die"),
    // British and American spellings
    ("colour", "color"),
    ("colours", "colors"),
    ("grey", "gray"),
    ("greyed", "grayed"),
    ("cancelled", "canceled"),
    ("cancelling", "canceling"),
    ("enrol", "enroll"),
    ("enrolment", "enrollment"),
    ("enrolled", "enrolled"),
    ("programme", "program"),
    ("licence", "license"),
    ("centre", "center"),
    ("metre", "meter"),
    ("cheque", "check"),
    ("favourite", "favorite"),
    ("organise", "organize"),
    ("recognise", "recognize"),
    ("recognised", "recognized"),
    ("unrecognised", "unrecognized"),
    ("authorise", "authorize"),
    ("authorised", "authorized"),
    ("apologise", "apologize"),
    ("customise", "customize"),
    ("optimise", "optimize"),
    ("optimisation", "optimization"),
    ("behaviour", "behavior"),
    ("neighbour", "neighbor"),
    ("labelled", "labeled"),
    ("travelled", "traveled"),
    ("fulfilment", "fulfillment"),
    ("catalogue", "catalog"),
    ("aluminium", "aluminum"),
    // negations
    ("won't", "not"),
    ("wont", "not"),
    ("can't", "not"),
    ("cant", "not"),
    ("cannot", "not"),
    ("doesn't", "not"),
    ("doesnt", "not"),
    ("isn't", "not"),
    ("isnt", "not"),
    ("aren't", "not"),
    ("wasn't", "not"),
    ("weren't", "not"),
    ("haven't", "not"),
    ("hasn't", "not"),
    ("couldn't", "not"),
    ("wouldn't", "not"),
    ("shouldn't", "not"),
    ("never", "not"),
];

fn fold_english(word: &str) -> Option<&'static str> {
    ENGLISH_FORMS
        .iter()
        .find(|(form, _)| *form == word)
        .map(|(_, base)| *base)
}

/// Latin words written with hyphens ("wi-fi", "auto-lock", "e-mail") also as one word, as
/// people often type them.
fn joined_words(normal: &str) -> Vec<String> {
    let mut out = Vec::new();
    for piece in normal.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-')) {
        if piece.contains('-') {
            let joined: String = piece.chars().filter(|c| *c != '-').collect();
            if joined.len() >= 2 && piece.split('-').filter(|p| !p.is_empty()).count() > 1 {
                out.push(joined);
            }
        }
    }
    out
}

/// Words people type around a question that say nothing about its subject ("i want to ...",
/// "我想..."): left out of the index and of queries, as question words are.
const FILLERS: &[&str] = &[
    "want",
    "wanna",
    "need",
    "know",
    "tell",
    "let",
    "ok",
    "okay",
    "hey",
    "also",
    "really",
    "now",
    "yet",
    "any",
    "some",
    "way",
    "thing",
    "things",
    "stuff",
    "still",
    "ever",
    "since",
    "these",
    "those",
    "they",
    "them",
    "their",
    "he",
    "she",
    "his",
    "her",
    "if",
    "but",
    "by",
    "from",
    "about",
    "as",
    "what's",
    "don't",
    "dont",
    "didn't",
    "didnt",
    "i've",
    "i'm",
    "it's",
    "there's",
    "one",
    "all",
    "then",
    "than",
    "very",
    "super",
    "already",
    "想",
    "想要",
    "需要",
    "一直",
    "现在",
    "已经",
    "然后",
    "就是",
    "这个",
    "那个",
    "一样",
    "东西",
    "自己",
    "还是",
    "还能",
    "能不能",
    "可不可以",
    "是不是",
    "有没有",
    "一下子",
];

fn is_filler(word: &str) -> bool {
    FILLERS.contains(&word)
}

/// The analyser of one kind of field: dictionary words with English stems, or Han grams.
pub(crate) fn analyzer(grams: bool) -> TextAnalyzer {
    pipeline(PipelineTokenizer {
        grams,
        normal: false,
    })
}

fn pipeline(tokenizer: PipelineTokenizer) -> TextAnalyzer {
    if tokenizer.grams {
        TextAnalyzer::from(tokenizer)
    } else {
        TextAnalyzer::builder(tokenizer)
            .filter(Stemmer::default())
            .build()
    }
}

/// The word terms of a text as the index holds them, in order, repeats kept.
pub(crate) fn word_terms(text: &str) -> Vec<String> {
    terms(&mut analyzer(false), text)
}

/// `word_terms` of text already in `text::normalise_simplified` form.
pub(crate) fn word_terms_of_normal(normal: &str) -> Vec<String> {
    let mut words = pipeline(PipelineTokenizer {
        grams: false,
        normal: true,
    });
    terms(&mut words, normal)
}

fn terms(analyzer: &mut TextAnalyzer, text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut stream = analyzer.token_stream(text);
    while let Some(token) = stream.next() {
        out.push(token.text.clone());
    }
    out
}

/// Stems of the Latin words of a text, in order, as one sequence: what English phrases are
/// matched against (Han text is matched by substring instead).
pub(crate) fn latin_stems(text: &str) -> Vec<String> {
    latin_stems_of_normal(&text::normalise_simplified(text))
}

/// `latin_stems` of text already in `text::normalise_simplified` form.
pub(crate) fn latin_stems_of_normal(normal: &str) -> Vec<String> {
    let latin: Vec<&str> = text::tokens(normal)
        .into_iter()
        .filter_map(|t| match t {
            text::Token::Word(w) => Some(w),
            text::Token::Han(_) => None,
        })
        .collect();
    if latin.is_empty() {
        return Vec::new();
    }
    word_terms(&latin.join(" "))
}

/// The Han-matching form of a text: normal form without white space.
pub(crate) fn compact(text: &str) -> String {
    compact_of_normal(&text::normalise_simplified(text))
}

/// `compact` of text already in `text::normalise_simplified` form.
pub(crate) fn compact_of_normal(normal: &str) -> String {
    normal.chars().filter(|c| !c.is_whitespace()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn english_forms_fold_and_hyphenated_words_join() {
        assert_eq!(word_terms("I bought it"), word_terms("buy"));
        assert_eq!(word_terms("colour"), word_terms("color"));
        assert_eq!(word_terms("won't"), word_terms("not"));
        let terms = word_terms("Wi-Fi");
        assert!(terms.contains(&"wifi".to_string()), "{terms:?}");
        assert!(terms.contains(&"wi".to_string()), "{terms:?}");
    }
}
