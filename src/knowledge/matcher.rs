//! Finds known phrases (synonyms, entity names and aliases) in a question: phrases with Han
//! characters by substring of the normal form (Chinese has no spaces to respect), Latin phrases
//! by their word stems in order, a word or two apart at most ("send it back" is "send back").

use std::collections::HashMap;

use aho_corasick::{AhoCorasick, MatchKind};

use crate::knowledge::analysis;
use crate::text;

/// How many words may come between two words of a Latin phrase.
const GAP: usize = 2;

/// A question prepared once for every matcher: its Han-matching form and its Latin stems.
pub(crate) struct Prepared {
    pub compact: String,
    pub stems: Vec<String>,
}

impl Prepared {
    pub fn new(question: &str) -> Prepared {
        Prepared::of_normal(&text::normalise_simplified(question))
    }

    /// A question already in `text::normalise_simplified` form.
    pub fn of_normal(normal: &str) -> Prepared {
        Prepared {
            compact: analysis::compact_of_normal(normal),
            stems: analysis::latin_stems_of_normal(normal),
        }
    }
}

/// A set of phrases, each with the caller's number.
#[derive(Default)]
pub(crate) struct PhraseMatcher {
    han: Option<AhoCorasick>,
    han_ids: Vec<usize>,
    latin: HashMap<String, Vec<(Vec<String>, usize)>>,
}

impl PhraseMatcher {
    /// Phrases that normalise to nothing are left out.
    pub fn new<'a>(phrases: impl IntoIterator<Item = (usize, &'a str)>) -> PhraseMatcher {
        let mut han_patterns = Vec::new();
        let mut han_ids = Vec::new();
        let mut latin: HashMap<String, Vec<(Vec<String>, usize)>> = HashMap::new();
        for (id, phrase) in phrases {
            let compact = analysis::compact(phrase);
            if compact.chars().any(text::is_han) {
                han_patterns.push(compact);
                han_ids.push(id);
            } else {
                let stems = analysis::latin_stems(phrase);
                if let Some(first) = stems.first() {
                    latin.entry(first.clone()).or_default().push((stems, id));
                }
            }
        }
        let han = if han_patterns.is_empty() {
            None
        } else {
            AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostLongest)
                .build(&han_patterns)
                .map_err(|e| tracing::error!(error = %e, "phrase automaton unusable"))
                .ok()
        };
        PhraseMatcher {
            han,
            han_ids,
            latin,
        }
    }

    /// The numbers of the phrases found in the question, each once, in order of discovery.
    pub fn find(&self, question: &Prepared) -> Vec<usize> {
        let mut found = Vec::new();
        if let Some(han) = &self.han {
            for m in han.find_iter(&question.compact) {
                let id = self.han_ids[m.pattern().as_usize()];
                if !found.contains(&id) {
                    found.push(id);
                }
            }
        }
        let stems = &question.stems;
        for (start, stem) in stems.iter().enumerate() {
            let Some(candidates) = self.latin.get(stem) else {
                continue;
            };
            for (phrase, id) in candidates {
                if !found.contains(id) && follows(&phrase[1..], &stems[start + 1..]) {
                    found.push(*id);
                }
            }
        }
        found
    }
}

/// Whether `rest` occurs in order at the start of `text`, at most `GAP` words apart.
fn follows(rest: &[String], text: &[String]) -> bool {
    let Some((first, more)) = rest.split_first() else {
        return true;
    };
    text.iter()
        .take(GAP + 1)
        .enumerate()
        .any(|(i, t)| t == first && follows(more, &text[i + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn han_by_substring_latin_by_stems_in_order() {
        let m = PhraseMatcher::new([(0, "退货"), (1, "send back"), (2, "SD卡"), (3, "refund")]);
        assert_eq!(m.find(&Prepared::new("我想退貨")), vec![0]);
        assert_eq!(m.find(&Prepared::new("how do I send it back")), vec![1]);
        assert_eq!(m.find(&Prepared::new("back to send")), Vec::<usize>::new());
        assert_eq!(m.find(&Prepared::new("Ｓｄ卡 满了")), vec![2]);
        assert_eq!(m.find(&Prepared::new("Refunds?")), vec![3]);
    }
}
