//! Synonyms the organisation maintains: groups of terms that mean the same to its customers
//! (退货 / 退回 / 寄回, refund / money back). A question naming one term of a group also
//! searches for the others, at a lower weight than its own words. A group may also imply terms
//! one way: "多久 | 多长时间 => 时效 | 周期" adds 时效 and 周期 to a question asking how long,
//! but a question about 周期 is not widened to "how long".
//!
//! Text form, one group a line: terms separated by `|` (or tabs), then optionally `=>` and the
//! implied terms; `#` starts a comment. The product ships a starter set of general shopping and
//! customer-service vocabulary in both languages (`starter_synonyms.tsv`); an organisation adds
//! its own groups on top.

use crate::knowledge::analysis;
use crate::knowledge::matcher::{PhraseMatcher, Prepared};
use crate::text;

const STARTER: &str = include_str!("starter_synonyms.tsv");

/// Terms that mean the same, and terms they imply one way.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SynonymGroup {
    /// Terms that mean the same: each brings the others.
    pub terms: Vec<String>,
    /// Terms the group brings, but that do not bring it.
    pub implies: Vec<String>,
}

impl SynonymGroup {
    /// A group of equivalent terms.
    pub fn of<S: Into<String>>(terms: impl IntoIterator<Item = S>) -> SynonymGroup {
        SynonymGroup {
            terms: terms.into_iter().map(Into::into).collect(),
            implies: Vec::new(),
        }
    }
}

/// A term as a query uses it, analysed once when the synonyms are built.
pub(crate) struct Analysed {
    pub text: String,
    /// Index word terms (dictionary words, English stems).
    pub words: Vec<String>,
    /// Han character pairs.
    pub pairs: Vec<String>,
    /// For finding graph entities the term names.
    pub prepared: Prepared,
}

impl Analysed {
    fn new(term: &str) -> Analysed {
        Analysed {
            text: term.to_string(),
            words: analysis::word_terms(term),
            pairs: text::han_grams(&text::normalise_simplified(term))
                .into_iter()
                .filter(|g| g.chars().count() == 2)
                .collect(),
            prepared: Prepared::new(term),
        }
    }
}

/// Groups of equivalent terms, ready to expand questions.
#[derive(Default)]
pub struct Synonyms {
    groups: Vec<SynonymGroup>,
    /// Each group's terms then implied terms, analysed.
    analysed: Vec<Vec<Analysed>>,
    /// For each phrase number of `matcher`, its group and place among the group's terms.
    phrase_group: Vec<(usize, usize)>,
    matcher: PhraseMatcher,
}

impl Synonyms {
    /// Synonyms from groups; groups that would add nothing (one term, nothing implied) are
    /// left out.
    pub fn new(groups: Vec<SynonymGroup>) -> Synonyms {
        let clean = |terms: Vec<String>| -> Vec<String> {
            terms
                .into_iter()
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
                .collect()
        };
        let groups: Vec<SynonymGroup> = groups
            .into_iter()
            .map(|g| SynonymGroup {
                terms: clean(g.terms),
                implies: clean(g.implies),
            })
            .filter(|g| !g.terms.is_empty() && g.terms.len() + g.implies.len() >= 2)
            .collect();
        let mut phrase_group = Vec::new();
        let mut phrases = Vec::new();
        for (g, group) in groups.iter().enumerate() {
            for (t, term) in group.terms.iter().enumerate() {
                phrases.push((phrase_group.len(), term.as_str()));
                phrase_group.push((g, t));
            }
        }
        let matcher = PhraseMatcher::new(phrases);
        let analysed = groups
            .iter()
            .map(|g| {
                g.terms
                    .iter()
                    .chain(&g.implies)
                    .map(|t| Analysed::new(t))
                    .collect()
            })
            .collect();
        Synonyms {
            groups,
            analysed,
            phrase_group,
            matcher,
        }
    }

    /// Groups in the text form (see the module documentation).
    pub fn parse(text: &str) -> Synonyms {
        Synonyms::new(parse_groups(text))
    }

    /// The general vocabulary the product ships with.
    pub fn starter() -> Synonyms {
        Synonyms::parse(STARTER)
    }

    /// These groups and an organisation's own.
    pub fn with_groups(&self, more: Vec<SynonymGroup>) -> Synonyms {
        let mut groups = self.groups.clone();
        groups.extend(more);
        Synonyms::new(groups)
    }

    /// The groups, as given.
    pub fn groups(&self) -> &[SynonymGroup] {
        &self.groups
    }

    /// For every group the question names a term of, its other terms and what they imply.
    pub(crate) fn expansions(&self, question: &Prepared) -> Vec<Vec<&Analysed>> {
        let found = self.matcher.find(question);
        // Terms the question already says are not expansions.
        let said: Vec<&str> = found
            .iter()
            .map(|p| {
                let (g, t) = self.phrase_group[*p];
                self.groups[g].terms[t].as_str()
            })
            .collect();
        let mut groups: Vec<usize> = found.iter().map(|p| self.phrase_group[*p].0).collect();
        groups.sort_unstable();
        groups.dedup();
        groups
            .into_iter()
            .map(|g| {
                self.analysed[g]
                    .iter()
                    .filter(|t| !said.contains(&t.text.as_str()))
                    .collect::<Vec<_>>()
            })
            .filter(|g| !g.is_empty())
            .collect()
    }
}

fn parse_groups(text: &str) -> Vec<SynonymGroup> {
    let split = |part: &str| -> Vec<String> {
        part.split(['|', '\t'])
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .collect()
    };
    text.lines()
        .map(|line| line.split('#').next().unwrap_or(""))
        .filter(|line| !line.trim().is_empty())
        .map(|line| match line.split_once("=>") {
            Some((terms, implies)) => SynonymGroup {
                terms: split(terms),
                implies: split(implies),
            },
            None => SynonymGroup {
                terms: split(line),
                implies: Vec::new(),
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts<'a>(expansions: &[Vec<&'a Analysed>]) -> Vec<&'a str> {
        let mut out: Vec<&str> = Vec::new();
        for term in expansions.iter().flatten() {
            if !out.contains(&term.text.as_str()) {
                out.push(&term.text);
            }
        }
        out
    }

    #[test]
    fn a_named_term_brings_the_rest_of_its_group() {
        let s = Synonyms::parse("# comment\n退货 | 退回 | 寄回\nrefund|money back\n");
        assert_eq!(s.groups().len(), 2);
        let q = Prepared::new("东西想寄回去");
        assert_eq!(texts(&s.expansions(&q)), vec!["退货", "退回"]);
        let q = Prepared::new("when do I get my money back");
        assert_eq!(texts(&s.expansions(&q)), vec!["refund"]);
        let more = s.with_groups(vec![SynonymGroup::of(["h2", "网关"])]);
        assert_eq!(texts(&more.expansions(&Prepared::new("H2"))), vec!["网关"]);
    }

    #[test]
    fn implied_terms_are_added_one_way() {
        let s = Synonyms::parse("多久 | 多长时间 => 时效 | 周期\n");
        assert_eq!(
            texts(&s.expansions(&Prepared::new("要多久"))),
            vec!["多长时间", "时效", "周期"]
        );
        assert!(texts(&s.expansions(&Prepared::new("维修周期"))).is_empty());
    }

    #[test]
    fn the_starter_set_parses() {
        assert!(Synonyms::starter().groups().len() > 50);
    }

    #[test]
    fn every_starter_term_keeps_a_word_to_match() {
        // English phrases lose their stop and question words before matching: a phrase made of
        // nothing else ("which one") would never match.
        for group in Synonyms::starter().groups() {
            for term in &group.terms {
                let han = term.chars().any(text::is_han);
                assert!(han || !analysis::latin_stems(term).is_empty(), "{term:?}");
            }
        }
    }
}
