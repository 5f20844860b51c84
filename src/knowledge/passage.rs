//! The passage of an article that answers a question: the article body cut into paragraphs (a
//! heading or a bold lead line stays with the paragraph after it), and the one that shares the
//! most query terms chosen, for display beside the article.

use std::collections::HashSet;

use crate::knowledge::analysis;
use crate::text;

/// A span of an article's Markdown body.
#[derive(Debug, Clone, PartialEq)]
pub struct Passage {
    /// Byte offsets in the body.
    pub start: usize,
    pub end: usize,
    pub text: String,
}

/// The terms a passage is chosen by, with their weights.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct PassageTerms {
    pub words: Vec<(String, f32)>,
    pub grams: Vec<(String, f32)>,
}

/// Paragraph spans of a Markdown body: blocks between blank lines, a block that is only a
/// heading or a short bold line joined to the block after it.
pub(crate) fn paragraphs(body: &str) -> Vec<(usize, usize)> {
    let mut blocks: Vec<(usize, usize)> = Vec::new();
    let mut start = None;
    let mut offset = 0;
    for line in body.split_inclusive('\n') {
        let blank = line.trim().is_empty();
        match (start, blank) {
            (None, false) => start = Some(offset),
            (Some(s), true) => {
                blocks.push((s, offset));
                start = None;
            }
            _ => {}
        }
        offset += line.len();
    }
    if let Some(s) = start {
        blocks.push((s, body.len()));
    }
    let mut out: Vec<(usize, usize)> = Vec::new();
    let mut pending: Option<usize> = None;
    for (s, e) in blocks {
        let block = body[s..e].trim();
        let lead = !block.contains('\n')
            && (block.starts_with('#') || (block.starts_with("**") && block.ends_with("**")));
        let s = pending.take().unwrap_or(s);
        if lead {
            pending = Some(s);
        } else {
            out.push((s, e));
        }
    }
    if let Some(s) = pending {
        out.push((s, body.len()));
    }
    out
}

/// The paragraph of `body` that shares the most (weighted) terms with the question; the first
/// paragraph when none shares any.
pub(crate) fn best(body: &str, terms: &PassageTerms) -> Option<Passage> {
    let mut best: Option<((usize, usize), f32)> = None;
    for (s, e) in paragraphs(body) {
        // Han terms by substring, Latin ones by stem: no segmentation needed.
        let text = &body[s..e];
        let normal = text::normalise_simplified(text);
        let compact = analysis::compact_of_normal(&normal);
        let stems: HashSet<String> = analysis::latin_stems_of_normal(&normal)
            .into_iter()
            .collect();
        let has = |term: &String| {
            if term.chars().any(text::is_han) {
                compact.contains(term.as_str())
            } else {
                stems.contains(term)
            }
        };
        let score: f32 = terms
            .words
            .iter()
            .chain(&terms.grams)
            .filter(|(t, _)| has(t))
            .map(|(_, weight)| weight)
            .sum();
        if best.is_none_or(|(_, b)| score > b) {
            best = Some(((s, e), score));
        }
    }
    best.map(|((start, end), _)| {
        let text = body[start..end].trim_end();
        Passage {
            start,
            end: start + text.len(),
            text: text.to_string(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = "## 现象\n升级后网关掉线。\n\n## 临时解决\n改用网线连接。\n\n**Fix**\n\nUpdate the firmware to 3.2.3.\n";

    #[test]
    fn headings_stay_with_their_paragraph() {
        let spans: Vec<&str> = paragraphs(BODY).iter().map(|&(s, e)| &BODY[s..e]).collect();
        assert_eq!(spans.len(), 3, "{spans:?}");
        assert!(spans[2].starts_with("**Fix**"));
    }

    #[test]
    fn the_passage_sharing_most_terms_is_chosen() {
        let terms = PassageTerms {
            words: vec![("网线".into(), 1.0)],
            grams: vec![("网线".into(), 0.5)],
        };
        let p = best(BODY, &terms).unwrap();
        assert_eq!(p.text, "## 临时解决\n改用网线连接。");
        assert_eq!(&BODY[p.start..p.end], p.text);
        let terms = PassageTerms {
            words: analysis::word_terms("firmware")
                .into_iter()
                .map(|w| (w, 1.0))
                .collect(),
            grams: Vec::new(),
        };
        assert!(best(BODY, &terms).unwrap().text.contains("3.2.3"));
    }
}
