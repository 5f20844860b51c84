//! Synonyms the organisation maintains: groups of terms that mean the same to its customers
//! (退货 / 退回 / 寄回, refund / money back). A question naming one term of a group also
//! searches for the others, at a lower weight than its own words.
//!
//! Text form, one group a line: terms separated by `|` (or tabs), `#` starts a comment.
//! The product ships a starter set of general shopping and customer-service vocabulary in both
//! languages (`starter_synonyms.tsv`); an organisation adds its own groups on top.

use crate::knowledge::matcher::{PhraseMatcher, Prepared};

const STARTER: &str = include_str!("starter_synonyms.tsv");

/// Groups of equivalent terms, ready to expand questions.
pub struct Synonyms {
    groups: Vec<Vec<String>>,
    /// For each phrase number of `matcher`, its group and place in the group.
    phrase_group: Vec<(usize, usize)>,
    matcher: PhraseMatcher,
}

impl Default for Synonyms {
    fn default() -> Self {
        Synonyms::new(Vec::new())
    }
}

impl Synonyms {
    /// Synonyms from groups of terms; groups of fewer than two terms are left out.
    pub fn new(groups: Vec<Vec<String>>) -> Synonyms {
        let groups: Vec<Vec<String>> = groups
            .into_iter()
            .map(|g| {
                g.into_iter()
                    .map(|t| t.trim().to_string())
                    .filter(|t| !t.is_empty())
                    .collect::<Vec<_>>()
            })
            .filter(|g| g.len() >= 2)
            .collect();
        let mut phrase_group = Vec::new();
        let mut phrases = Vec::new();
        for (g, group) in groups.iter().enumerate() {
            for (t, term) in group.iter().enumerate() {
                phrases.push((phrase_group.len(), term.as_str()));
                phrase_group.push((g, t));
            }
        }
        let matcher = PhraseMatcher::new(phrases);
        Synonyms {
            groups,
            phrase_group,
            matcher,
        }
    }

    /// Groups in the text form: one a line, terms separated by `|` or tabs, `#` comments.
    pub fn parse(text: &str) -> Synonyms {
        Synonyms::new(parse_groups(text))
    }

    /// The general vocabulary the product ships with.
    pub fn starter() -> Synonyms {
        Synonyms::parse(STARTER)
    }

    /// These groups and an organisation's own.
    pub fn with_groups(&self, more: Vec<Vec<String>>) -> Synonyms {
        let mut groups = self.groups.clone();
        groups.extend(more);
        Synonyms::new(groups)
    }

    pub fn groups(&self) -> &[Vec<String>] {
        &self.groups
    }

    /// The other terms of every group the question names a term of, each once.
    pub(crate) fn expansions(&self, question: &Prepared) -> Vec<&str> {
        let found = self.matcher.find(question);
        let mut groups: Vec<usize> = found.iter().map(|p| self.phrase_group[*p].0).collect();
        groups.sort_unstable();
        groups.dedup();
        let mut out: Vec<&str> = Vec::new();
        for g in groups {
            for term in &self.groups[g] {
                if !out.contains(&term.as_str()) {
                    out.push(term);
                }
            }
        }
        // Terms the question already says are not expansions.
        let said: Vec<&str> = found
            .iter()
            .map(|p| {
                let (g, t) = self.phrase_group[*p];
                self.groups[g][t].as_str()
            })
            .collect();
        out.retain(|t| !said.contains(t));
        out
    }
}

fn parse_groups(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .map(|line| line.split('#').next().unwrap_or(""))
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            line.split(['|', '\t'])
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_named_term_brings_the_rest_of_its_group() {
        let s = Synonyms::parse("# comment\n退货 | 退回 | 寄回\nrefund|money back\n");
        assert_eq!(s.groups().len(), 2);
        let q = Prepared::new("东西想寄回去");
        assert_eq!(s.expansions(&q), vec!["退货", "退回"]);
        let q = Prepared::new("when do I get my money back");
        assert_eq!(s.expansions(&q), vec!["refund"]);
        let more = s.with_groups(vec![vec!["h2".into(), "网关".into()]]);
        assert_eq!(more.expansions(&Prepared::new("H2")), vec!["网关"]);
    }

    #[test]
    fn the_starter_set_parses() {
        assert!(Synonyms::starter().groups().len() > 50);
    }
}
