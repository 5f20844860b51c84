//! A second look at the first candidates: how much of the question each one speaks of. BM25
//! adds up the matches of each term, so an article that repeats one of the question's words
//! many times can outrank the one that speaks of everything the question asks; coverage counts
//! each of the question's concepts once, weighted by how rare it is.

use tantivy::schema::IndexRecordOption;
use tantivy::{DocAddress, DocSet, Searcher, Term};

use crate::error::{AppError, AppResult};

/// Something the question asks about: a word, a Han pair, or a synonym group. An article covers
/// it when it holds any of its terms.
pub(crate) struct Concept {
    pub terms: Vec<Term>,
    pub weight: f32,
}

/// The candidates' positions grouped by segment, each group in document order: postings are
/// read forwards, one segment at a time.
pub(crate) fn by_segment(candidates: &[DocAddress]) -> Vec<(u32, Vec<usize>)> {
    let mut order: Vec<usize> = (0..candidates.len()).collect();
    order.sort_by_key(|&i| (candidates[i].segment_ord, candidates[i].doc_id));
    let mut groups: Vec<(u32, Vec<usize>)> = Vec::new();
    for i in order {
        let segment = candidates[i].segment_ord;
        match groups.last_mut() {
            Some((s, group)) if *s == segment => group.push(i),
            _ => groups.push((segment, vec![i])),
        }
    }
    groups
}

/// For each candidate, in the order given, the share of the concepts' weight it covers (0 to 1).
pub(crate) fn coverage(
    searcher: &Searcher,
    concepts: &[Concept],
    candidates: &[DocAddress],
) -> AppResult<Vec<f32>> {
    let total: f32 = concepts.iter().map(|c| c.weight).sum();
    let mut covered = vec![0.0f32; candidates.len()];
    if total <= 0.0 || candidates.is_empty() {
        return Ok(covered);
    }
    let mut has = vec![false; candidates.len() * concepts.len()];
    for (segment, in_segment) in by_segment(candidates) {
        let reader = searcher.segment_reader(segment);
        for (c, concept) in concepts.iter().enumerate() {
            for term in &concept.terms {
                let inverted = reader.inverted_index(term.field()).map_err(index_error)?;
                let Some(mut postings) = inverted
                    .read_postings(term, IndexRecordOption::Basic)
                    .map_err(index_error)?
                else {
                    continue;
                };
                for &i in &in_segment {
                    let doc = candidates[i].doc_id;
                    if postings.doc() < doc {
                        postings.seek(doc);
                    }
                    if postings.doc() == doc {
                        has[c * candidates.len() + i] = true;
                    }
                }
            }
        }
    }
    for (c, concept) in concepts.iter().enumerate() {
        for (i, share) in covered.iter_mut().enumerate() {
            if has[c * candidates.len() + i] {
                *share += concept.weight / total;
            }
        }
    }
    Ok(covered)
}

pub(crate) fn index_error(e: impl std::fmt::Display) -> AppError {
    AppError::internal(format!("knowledge index: {e}"))
}
