//! Scores read straight from the index's postings, as tantivy's term queries would compute
//! them (BM25), without their per-query machinery: the first pass, which adds up a few terms'
//! scores over every document, and the exact scoring's per-term scores of a few candidates.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use tantivy::fieldnorm::FieldNormReader;
use tantivy::postings::{Postings, TermInfo};
use tantivy::query::{Bm25StatisticsProvider, Bm25Weight};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{DocAddress, DocSet, Searcher, SegmentReader, Term};

use crate::error::AppResult;
use crate::knowledge::rerank::{by_segment, index_error};

/// BM25 weights of one searcher's terms. A term's weight is its field's weight for a term in
/// no document, scaled by its own rarity: the table of length factors that BM25 looks a
/// document's length up in depends only on the field's average length, so each field builds
/// it once.
struct Weights<'s> {
    searcher: &'s Searcher,
    documents: u64,
    fields: HashMap<Field, (Bm25Weight, f32)>,
}

impl<'s> Weights<'s> {
    fn new(searcher: &'s Searcher) -> AppResult<Weights<'s>> {
        Ok(Weights {
            searcher,
            documents: all_documents(searcher)?,
            fields: HashMap::new(),
        })
    }

    /// The weight of a term found in `holding` documents of the whole index.
    fn of(&mut self, field: Field, holding: u64) -> AppResult<Bm25Weight> {
        let all = self.documents;
        let (base, base_idf) = match self.fields.get(&field) {
            Some(known) => known.clone(),
            None => {
                let tokens = self.searcher.total_num_tokens(field).map_err(index_error)?;
                let average = tokens as f32 / all.max(1) as f32;
                let known = (
                    Bm25Weight::for_one_term_without_explain(0, all, average),
                    idf(0, all),
                );
                self.fields.insert(field, known.clone());
                known
            }
        };
        Ok(base.boost_by(idf(holding, all) / base_idf))
    }
}

/// The document count BM25 weighs rarity against: deleted documents included, as terms'
/// document counts include them until a merge.
pub(crate) fn all_documents(searcher: &Searcher) -> AppResult<u64> {
    searcher.total_num_docs().map_err(index_error)
}

/// BM25's inverse document frequency, as tantivy computes it.
pub(crate) fn idf(documents: u64, all: u64) -> f32 {
    let (n, all) = (documents as f32, all as f32);
    (1.0 + (all - n + 0.5) / (n + 0.5)).ln()
}

/// Where a term is in each segment (none where it is absent), and how many documents of the
/// whole index hold it.
fn locate(searcher: &Searcher, term: &Term) -> AppResult<(Vec<Option<TermInfo>>, u64)> {
    let mut holding = 0u64;
    let mut infos = Vec::with_capacity(searcher.segment_readers().len());
    for reader in searcher.segment_readers() {
        let info = reader
            .inverted_index(term.field())
            .map_err(index_error)?
            .get_term_info(term)
            .map_err(index_error)?;
        holding += info.as_ref().map_or(0, |i| u64::from(i.doc_freq));
        infos.push(info);
    }
    Ok((infos, holding))
}

/// The `limit` documents with the highest sum of the weighted terms' BM25 scores, best first.
///
/// Term at a time, into one score per document of a segment: a question's few terms are each
/// read to the end, block by block. Block-WAND (tantivy's union of terms) reads less of them
/// when a few documents stand out; over a large base of articles about the same products, most
/// of the terms a customer uses are in thousands of them, few stand out, and visiting the terms
/// document by document costs several times more than reading them whole.
pub(crate) fn top_by_terms(
    searcher: &Searcher,
    terms: &[(Term, f32)],
    limit: usize,
) -> AppResult<Vec<(f32, DocAddress)>> {
    let mut weights = Weights::new(searcher)?;
    let mut located = Vec::with_capacity(terms.len());
    for (term, boost) in terms {
        let (infos, holding) = locate(searcher, term)?;
        if holding == 0 || *boost <= 0.0 {
            continue;
        }
        let weight = weights.of(term.field(), holding)?.boost_by(*boost);
        located.push((term.field(), infos, weight));
    }
    if limit == 0 || located.is_empty() {
        return Ok(Vec::new());
    }
    // The best `limit` so far, the worst on top; among equal scores the later document is the
    // worse, as in tantivy's own top documents.
    let capacity = limit.min(weights.documents as usize) + 1;
    let mut best: BinaryHeap<Reverse<(Score, Reverse<DocAddress>)>> =
        BinaryHeap::with_capacity(capacity);
    let mut sums: Vec<f32> = Vec::new();
    for (ord, reader) in searcher.segment_readers().iter().enumerate() {
        sums.clear();
        sums.resize(reader.max_doc() as usize, 0.0);
        for (field, infos, weight) in &located {
            let Some(info) = &infos[ord] else {
                continue;
            };
            add_scores(reader, *field, info, weight, &mut sums)?;
        }
        let alive = reader.alive_bitset();
        for (doc, &sum) in sums.iter().enumerate() {
            if sum <= 0.0 || best.len() == limit && sum <= best.peek().map_or(0.0, |w| w.0.0.0) {
                continue;
            }
            if alive.is_some_and(|a| a.is_deleted(doc as u32)) {
                continue;
            }
            best.push(Reverse((
                Score(sum),
                Reverse(DocAddress::new(ord as u32, doc as u32)),
            )));
            if best.len() > limit {
                best.pop();
            }
        }
    }
    let mut top: Vec<(f32, DocAddress)> = best
        .into_iter()
        .map(|Reverse((score, Reverse(address)))| (score.0, address))
        .collect();
    top.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    Ok(top)
}

/// Adds one term's BM25 score to each document of a segment that holds it.
fn add_scores(
    reader: &SegmentReader,
    field: Field,
    info: &TermInfo,
    weight: &Bm25Weight,
    sums: &mut [f32],
) -> AppResult<()> {
    let norms = reader.get_fieldnorms_reader(field).map_err(index_error)?;
    let mut blocks = reader
        .inverted_index(field)
        .map_err(index_error)?
        .read_block_postings_from_terminfo(info, IndexRecordOption::WithFreqs)
        .map_err(index_error)?;
    while blocks.block_len() > 0 {
        for (&doc, &freq) in blocks.docs().iter().zip(blocks.freqs()) {
            if let Some(sum) = sums.get_mut(doc as usize) {
                *sum += weight.score(norms.fieldnorm_id(doc), freq);
            }
        }
        blocks.advance();
    }
    Ok(())
}

/// A score that orders as a number (scores are never NaN).
#[derive(Clone, Copy, PartialEq)]
struct Score(f32);

impl Eq for Score {}

impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Score {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// The BM25 score of each term (in its field) in each candidate, 0 where it does not occur:
/// `scores[term][candidate]`. Each term's postings are read once, skipping to the candidates in
/// order, instead of scoring every document near them as a union of the terms would.
pub(crate) fn term_scores(
    searcher: &Searcher,
    terms: &[Term],
    candidates: &[DocAddress],
) -> AppResult<Vec<Vec<f32>>> {
    let mut scores = vec![vec![0.0f32; candidates.len()]; terms.len()];
    let groups = by_segment(candidates);
    let mut weights = Weights::new(searcher)?;
    let mut norms: HashMap<(u32, Field), FieldNormReader> = HashMap::new();
    for (t, term) in terms.iter().enumerate() {
        let (infos, holding) = locate(searcher, term)?;
        if holding == 0 {
            continue;
        }
        let field = term.field();
        let weight = weights.of(field, holding)?;
        for (segment, in_segment) in &groups {
            let Some(info) = &infos[*segment as usize] else {
                continue;
            };
            let reader = searcher.segment_reader(*segment);
            let norms = match norms.entry((*segment, field)) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(reader.get_fieldnorms_reader(field).map_err(index_error)?)
                }
            };
            let mut postings = reader
                .inverted_index(field)
                .map_err(index_error)?
                .read_postings_from_terminfo(info, IndexRecordOption::WithFreqs)
                .map_err(index_error)?;
            for &i in in_segment {
                let doc = candidates[i].doc_id;
                if postings.doc() < doc {
                    postings.seek(doc);
                }
                if postings.doc() == doc {
                    scores[t][i] = weight.score(norms.fieldnorm_id(doc), postings.term_freq());
                }
            }
        }
    }
    Ok(scores)
}

#[cfg(test)]
mod tests {
    use tantivy::collector::TopDocs;
    use tantivy::query::{BooleanQuery, BoostQuery, Occur, Query, TermQuery};
    use tantivy::schema::{STRING, Schema, TEXT};
    use tantivy::{Index, doc};

    use super::*;

    /// Three segments, one with a deleted document, and terms of every rarity.
    fn searcher() -> (Searcher, Field) {
        let mut schema = Schema::builder();
        let id = schema.add_text_field("id", STRING);
        let body = schema.add_text_field("body", TEXT);
        let index = Index::create_in_ram(schema.build());
        let mut writer = index.writer_with_num_threads(1, 15_000_000).unwrap();
        writer.set_merge_policy(Box::new(tantivy::indexer::NoMergePolicy));
        let words = [
            "reset", "hub", "camera", "refund", "return", "offline", "lock",
        ];
        for segment in 0..3 {
            for n in 0..40usize {
                let text: Vec<&str> = (0..(n % 9 + 1))
                    .map(|k| words[(n * 7 + k * (segment + 2)) % words.len()])
                    .collect();
                let key = format!("{segment}-{n}");
                writer
                    .add_document(doc!(id => key, body => text.join(" ")))
                    .unwrap();
            }
            writer.commit().unwrap();
        }
        writer.delete_term(Term::from_field_text(id, "1-7"));
        writer.commit().unwrap();
        let reader = index.reader().unwrap();
        reader.reload().unwrap();
        let searcher = reader.searcher();
        assert_eq!(searcher.segment_readers().len(), 3);
        (searcher, body)
    }

    #[test]
    fn the_first_pass_scores_as_a_union_of_boosted_term_queries() {
        let (searcher, body) = searcher();
        let terms: Vec<(Term, f32)> = [("hub", 1.0), ("refund", 0.6), ("lock", 2.0), ("nope", 1.0)]
            .into_iter()
            .map(|(w, b)| (Term::from_field_text(body, w), b))
            .collect();
        let union = BooleanQuery::new(
            terms
                .iter()
                .map(|(term, boost)| {
                    let query = TermQuery::new(term.clone(), IndexRecordOption::WithFreqs);
                    (
                        Occur::Should,
                        Box::new(BoostQuery::new(Box::new(query), *boost)) as Box<dyn Query>,
                    )
                })
                .collect(),
        );
        let expected = searcher
            .search(&union, &TopDocs::with_limit(200).order_by_score())
            .unwrap();
        let ours = top_by_terms(&searcher, &terms, 200).unwrap();
        assert_eq!(ours.len(), expected.len());
        let mut theirs: Vec<(f32, DocAddress)> = expected;
        theirs.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        for ((a, _), (b, _)) in ours.iter().zip(&theirs) {
            assert!((a - b).abs() < 1e-4, "{a} against {b}");
        }
        // The best few, as asked: the first of the whole ranking, equal scores (the segments
        // repeat texts) kept in address order.
        for limit in [1, 2, 5, 7, 30] {
            let few = top_by_terms(&searcher, &terms, limit).unwrap();
            assert_eq!(few, ours[..limit], "limit {limit}");
        }
    }

    #[test]
    fn term_scores_are_a_term_querys_scores() {
        let (searcher, body) = searcher();
        let candidates: Vec<DocAddress> = (0..3)
            .flat_map(|s| [3u32, 17, 39].map(|d| DocAddress::new(s, d)))
            .collect();
        let terms: Vec<Term> = ["reset", "camera", "nope"]
            .iter()
            .map(|w| Term::from_field_text(body, w))
            .collect();
        let scores = term_scores(&searcher, &terms, &candidates).unwrap();
        for (t, term) in terms.iter().enumerate() {
            let query = TermQuery::new(term.clone(), IndexRecordOption::WithFreqs);
            let all = searcher
                .search(&query, &TopDocs::with_limit(1000).order_by_score())
                .unwrap();
            for (i, address) in candidates.iter().enumerate() {
                let want = all
                    .iter()
                    .find(|(_, a)| a == address)
                    .map_or(0.0, |(s, _)| *s);
                assert!((scores[t][i] - want).abs() < 1e-5);
            }
        }
    }
}
