//! Measures retrieval on an evaluation set: articles, and customer questions labelled with the
//! article that answers them. `train` questions are given to the index as questions the article
//! answered (as employees' confirmations would); `test` questions are held out and scored.
//!
//! Files in the set's directory: `articles.<lang>.jsonl` (`id`, `lang`, `title`, `body`) and
//! `questions.<lang>.tsv` (`lang`, `split`, `article`, `question`, with a header line).

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

use crate::error::{AppError, AppResult};
use crate::knowledge::graph::{Entity, Graph, Relation};
use crate::knowledge::search::{IndexedArticle, SearchIndex};
use crate::text::Language;

#[derive(Deserialize)]
struct EvalArticle {
    id: String,
    lang: Language,
    title: String,
    body: String,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    entities: Vec<String>,
}

#[derive(Deserialize)]
struct EvalEntity {
    id: String,
    #[serde(default)]
    name_en: String,
    #[serde(default)]
    name_zh: String,
    #[serde(default)]
    aliases: Vec<String>,
}

#[derive(Deserialize)]
struct EvalRelation {
    from: String,
    #[serde(rename = "type")]
    kind: String,
    to: String,
}

/// The set's graph: `entities.jsonl` and `relations.jsonl`, empty when they are missing.
fn graph(dir: &Path) -> AppResult<Graph> {
    let mut entities = Vec::new();
    if let Ok(text) = std::fs::read_to_string(dir.join("entities.jsonl")) {
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let e: EvalEntity = serde_json::from_str(line)
                .map_err(|e| AppError::internal(format!("entities.jsonl: {e}")))?;
            let mut names = vec![e.name_en, e.name_zh];
            names.extend(e.aliases);
            names.retain(|n| !n.is_empty());
            entities.push(Entity { id: e.id, names });
        }
    }
    let mut relations = Vec::new();
    if let Ok(text) = std::fs::read_to_string(dir.join("relations.jsonl")) {
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let r: EvalRelation = serde_json::from_str(line)
                .map_err(|e| AppError::internal(format!("relations.jsonl: {e}")))?;
            relations.push(Relation {
                from: r.from,
                kind: r.kind,
                to: r.to,
            });
        }
    }
    Ok(Graph::new(entities, relations))
}

#[derive(Clone, Copy, PartialEq)]
enum Split {
    /// Learned as the article's similar questions (held-out runs), or scored (the first dev set).
    Train,
    /// Written later for tuning, with the train questions learned as in held-out runs.
    Dev,
    /// Held out: only ever scored.
    Test,
}

struct EvalQuestion {
    lang: Language,
    split: Split,
    article: String,
    text: String,
}

/// Retrieval quality for one language.
#[derive(Debug, Clone, PartialEq)]
pub struct Scores {
    pub lang: Language,
    pub questions: usize,
    pub recall_at_1: f64,
    pub recall_at_3: f64,
    /// Whether the article was among the first ten at all: what a better ordering could reach.
    pub recall_at_10: f64,
    pub mrr: f64,
    /// Held-out questions whose article was not in the top 3, with what came first.
    pub misses: Vec<(String, String, Option<String>)>,
}

impl std::fmt::Display for Scores {
    /// One line: the language and its figures.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} questions, recall@1 {:.3}, recall@3 {:.3}, recall@10 {:.3}, MRR {:.3}",
            self.lang.as_str(),
            self.questions,
            self.recall_at_1,
            self.recall_at_3,
            self.recall_at_10,
            self.mrr
        )
    }
}

fn read(path: &Path) -> AppResult<String> {
    std::fs::read_to_string(path)
        .map_err(|e| AppError::internal(format!("cannot read {}: {e}", path.display())))
}

fn load(dir: &Path, lang: Language) -> AppResult<(Vec<EvalArticle>, Vec<EvalQuestion>)> {
    let code = lang.as_str();
    let mut articles = Vec::new();
    for (n, line) in read(&dir.join(format!("articles.{code}.jsonl")))?
        .lines()
        .enumerate()
    {
        if line.trim().is_empty() {
            continue;
        }
        articles.push(serde_json::from_str::<EvalArticle>(line).map_err(|e| {
            AppError::internal(format!("articles.{code}.jsonl line {}: {e}", n + 1))
        })?);
    }
    let mut questions = Vec::new();
    for name in [
        format!("questions.{code}.tsv"),
        format!("questions-dev.{code}.tsv"),
    ] {
        let path = dir.join(&name);
        if !path.exists() && name.starts_with("questions-dev") {
            continue;
        }
        for (n, line) in read(&path)?.lines().enumerate().skip(1) {
            let columns: Vec<&str> = line.split('\t').collect();
            let [lang, split, article, text] = columns[..] else {
                return Err(AppError::internal(format!(
                    "{name} line {}: expected 4 columns",
                    n + 1
                )));
            };
            questions.push(EvalQuestion {
                lang: if lang == "zh" {
                    Language::Zh
                } else {
                    Language::En
                },
                split: match split {
                    "train" => Split::Train,
                    "dev" => Split::Dev,
                    _ => Split::Test,
                },
                article: article.to_string(),
                text: text.to_string(),
            });
        }
    }
    Ok((articles, questions))
}

/// Indexes the set and scores its held-out questions, per language.
pub fn run(dir: &Path) -> AppResult<Vec<Scores>> {
    evaluate(dir, false)
}

/// Scores the `train` questions against an index that learned none: the first set tuned
/// against (its misses were read while writing the starter synonyms).
pub fn run_dev(dir: &Path) -> AppResult<Vec<Scores>> {
    evaluate(dir, true)
}

/// Scores the `dev` questions (`questions-dev.<lang>.tsv`, written after the starter synonyms)
/// with the `train` questions learned, as in held-out runs: the set to tune against, so that
/// the held-out questions stay unseen.
pub fn run_fresh_dev(dir: &Path) -> AppResult<Vec<Scores>> {
    let (index, questions) = build(dir, &|q| q.split == Split::Train)?;
    score(&index, &questions, &|q| q.split == Split::Dev)
}

/// Scores the held-out questions as `run` does, having learned the `dev` questions as well as
/// the `train` ones (three per article): what the same engine does once employees have
/// confirmed a few more questions per article. Not the measure: tuning reads the dev set.
pub fn run_more_learned(dir: &Path) -> AppResult<Vec<Scores>> {
    let (index, questions) = build(dir, &|q| q.split != Split::Test)?;
    score(&index, &questions, &|q| q.split == Split::Test)
}

fn evaluate(dir: &Path, dev: bool) -> AppResult<Vec<Scores>> {
    let (index, questions) = build(dir, &|q| q.split == Split::Train && !dev)?;
    let scored = if dev { Split::Train } else { Split::Test };
    score(&index, &questions, &|q| q.split == scored)
}

/// The set's index, having learned the questions `learn` picks, and all its questions.
fn build(
    dir: &Path,
    learn: &dyn Fn(&EvalQuestion) -> bool,
) -> AppResult<(SearchIndex, Vec<EvalQuestion>)> {
    let index = SearchIndex::in_memory()?;
    let graph = graph(dir)?;
    let mut all_questions = Vec::new();
    for lang in [Language::Zh, Language::En] {
        let (articles, questions) = load(dir, lang)?;
        let mut learned: HashMap<&str, Vec<String>> = HashMap::new();
        for q in questions.iter().filter(|q| learn(q)) {
            learned
                .entry(q.article.as_str())
                .or_default()
                .push(q.text.clone());
        }
        let about: Vec<Vec<String>> = articles.iter().map(|a| graph.about(&a.entities)).collect();
        let indexed: Vec<IndexedArticle<'_>> = articles
            .iter()
            .zip(&about)
            .map(|(a, about)| IndexedArticle {
                id: &a.id,
                lang: a.lang,
                title: &a.title,
                body: &a.body,
                tags: &a.tags,
                questions: learned.get(a.id.as_str()).map_or(&[], Vec::as_slice),
                about,
                entities: &a.entities,
            })
            .collect();
        index.put(&indexed)?;
        all_questions.extend(questions);
    }
    index.set_graph(graph);
    Ok((index, all_questions))
}

/// Scores the questions `pick` picks.
fn score(
    index: &SearchIndex,
    all_questions: &[EvalQuestion],
    pick: &dyn Fn(&EvalQuestion) -> bool,
) -> AppResult<Vec<Scores>> {
    let mut scores = Vec::new();
    for lang in [Language::Zh, Language::En] {
        let (mut at_1, mut at_3, mut at_10, mut reciprocal, mut count) =
            (0usize, 0usize, 0usize, 0.0, 0usize);
        let mut misses = Vec::new();
        for q in all_questions.iter().filter(|q| pick(q) && q.lang == lang) {
            count += 1;
            let hits = index.search(&q.text, lang, 10)?;
            let rank = hits.iter().position(|h| h.id == q.article);
            if rank == Some(0) {
                at_1 += 1;
            }
            if rank.is_some_and(|r| r < 3) {
                at_3 += 1;
            } else {
                misses.push((
                    q.text.clone(),
                    q.article.clone(),
                    hits.first().map(|h| h.id.clone()),
                ));
            }
            if let Some(r) = rank {
                at_10 += 1;
                reciprocal += 1.0 / (r + 1) as f64;
            }
        }
        let share = |n: f64| if count == 0 { 0.0 } else { n / count as f64 };
        scores.push(Scores {
            lang,
            questions: count,
            recall_at_1: share(at_1 as f64),
            recall_at_3: share(at_3 as f64),
            recall_at_10: share(at_10 as f64),
            mrr: share(reciprocal),
            misses,
        });
    }
    Ok(scores)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn print_scores(label: &str, scores: &[Scores], misses: bool) {
        for s in scores {
            println!("{label}{s}");
            if misses && std::env::var_os("KNOWLEDGE_EVAL_MISSES").is_some() {
                for (question, want, got) in &s.misses {
                    println!("  miss: {question} (want {want}, first {got:?})");
                }
            }
        }
    }

    /// Weight tuning against the dev questions only: `KNOWLEDGE_SET="zh.graph=2 en.synonym=0.4"`
    /// sets the base, `KNOWLEDGE_TUNE="graph=0,1,3 synonym=0.3,0.6"` tries each value of each
    /// weight (both languages) on top of it.
    #[test]
    #[ignore]
    fn tune_on_dev() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/knowledge");
        // KNOWLEDGE_LEARN_ODD=1: learn the train questions of odd-numbered articles and score
        // those of even-numbered ones, to see what other articles' learned questions cost.
        let odd = |q: &EvalQuestion| {
            q.article
                .rsplit('-')
                .next()
                .and_then(|n| n.parse::<u32>().ok())
                .is_some_and(|n| n % 2 == 1)
        };
        let half = std::env::var_os("KNOWLEDGE_LEARN_ODD").is_some();
        // KNOWLEDGE_DEV=fresh: the later dev set, with the train questions learned.
        let fresh = std::env::var("KNOWLEDGE_DEV").is_ok_and(|v| v == "fresh");
        let train = |q: &EvalQuestion| q.split == Split::Train;
        let (index, questions) = build(&dir, &|q| train(q) && (fresh || (half && odd(q)))).unwrap();
        let pick = |q: &EvalQuestion| {
            if fresh {
                q.split == Split::Dev
            } else {
                train(q) && !(half && odd(q))
            }
        };
        let (mut zh, mut en) = index.boosts();
        for setting in std::env::var("KNOWLEDGE_SET")
            .unwrap_or_default()
            .split_whitespace()
        {
            let (name, value) = setting.split_once('=').unwrap();
            let value: f32 = value.parse().unwrap();
            let ok = match name.split_once('.') {
                Some(("zh", n)) => zh.set(n, value),
                Some(("en", n)) => en.set(n, value),
                _ => zh.set(name, value) && en.set(name, value),
            };
            assert!(ok, "no weight {name}");
        }
        index.set_boosts((zh, en));
        print_scores("base ", &score(&index, &questions, &pick).unwrap(), true);
        if std::env::var_os("KNOWLEDGE_SHOW").is_some() {
            for q in questions.iter().filter(|q| pick(q)) {
                let hits = index.search(&q.text, q.lang, 1).unwrap();
                if let Some(h) = hits.first() {
                    let passage = h.passage().map_or(String::new(), |p| p.text);
                    println!(
                        "{} -> {} {:?}\n    {}",
                        q.text,
                        h.id,
                        h.path,
                        passage.replace('\n', " / ")
                    );
                }
            }
        }
        for spec in std::env::var("KNOWLEDGE_TUNE")
            .unwrap_or_default()
            .split_whitespace()
        {
            let (name, values) = spec.split_once('=').unwrap();
            for value in values.split(',') {
                let (mut z, mut e) = (zh, en);
                let v: f32 = value.parse().unwrap();
                assert!(z.set(name, v) && e.set(name, v), "no weight {name}");
                index.set_boosts((z, e));
                print_scores(
                    &format!("{name}={value} "),
                    &score(&index, &questions, &pick).unwrap(),
                    false,
                );
            }
        }
    }

    /// A rough latency check: the set's articles repeated (each copy with a passage of another
    /// article appended) to `KNOWLEDGE_BENCH_ARTICLES` (20,000 unless set), then every dev
    /// question timed. Build with `--release` for figures that mean anything.
    #[test]
    #[ignore]
    fn latency_over_many_articles() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/knowledge");
        let n: usize = std::env::var("KNOWLEDGE_BENCH_ARTICLES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(20_000);
        let index = SearchIndex::in_memory().unwrap();
        let graph = graph(&dir).unwrap();
        let mut questions = Vec::new();
        let mut sources = Vec::new();
        for lang in [Language::Zh, Language::En] {
            let (articles, qs) = load(&dir, lang).unwrap();
            sources.extend(articles);
            questions.extend(qs.into_iter().filter(|q| q.split == Split::Train));
        }
        let started = std::time::Instant::now();
        for chunk in (0..n).collect::<Vec<_>>().chunks(10_000) {
            let docs: Vec<(String, String, Vec<String>)> = chunk
                .iter()
                .map(|&i| {
                    let a = &sources[i % sources.len()];
                    let other = &sources[(i * 7 + 3) % sources.len()];
                    let extra = other.body.split("\n\n").nth(i % 3).unwrap_or("");
                    (
                        format!("{}-{i}", a.id),
                        format!("{}\n\n{extra}", a.body),
                        graph.about(&a.entities),
                    )
                })
                .collect();
            let indexed: Vec<IndexedArticle<'_>> = chunk
                .iter()
                .zip(&docs)
                .map(|(&i, (id, body, about))| {
                    let a = &sources[i % sources.len()];
                    IndexedArticle {
                        id,
                        lang: a.lang,
                        title: &a.title,
                        body,
                        tags: &a.tags,
                        questions: &[],
                        about,
                        entities: &a.entities,
                    }
                })
                .collect();
            index.put(&indexed).unwrap();
        }
        println!("indexed {n} articles in {:?}", started.elapsed());
        index.set_graph(graph);
        let mut times = Vec::new();
        for q in &questions {
            let started = std::time::Instant::now();
            index.search(&q.text, q.lang, 10).unwrap();
            times.push(started.elapsed());
        }
        times.sort();
        let at = |p: f64| times[((times.len() - 1) as f64 * p) as usize];
        println!(
            "{} queries over {n} articles: p50 {:?}, p99 {:?}, max {:?}",
            times.len(),
            at(0.5),
            at(0.99),
            times[times.len() - 1]
        );
    }

    #[test]
    fn the_bundled_set_is_answered() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/knowledge");
        // Misses are printed only for the dev questions: the held-out ones stay unseen.
        let dev = run_dev(&dir).unwrap();
        print_scores("dev ", &dev, true);
        print_scores("fresh dev ", &run_fresh_dev(&dir).unwrap(), true);
        let scores = run(&dir).unwrap();
        print_scores("", &scores, false);
        let more = run_more_learned(&dir).unwrap();
        print_scores("3 learned per article, ", &more, false);
        for (one, three) in scores.iter().zip(&more) {
            // Confirmed questions are what the engine learns from: more must not do worse.
            assert!(three.recall_at_3 >= one.recall_at_3, "{:?}", one.lang);
        }
        for s in &dev {
            // The dev questions were read while writing the starter synonyms: a regression
            // guard, not a measure.
            assert!(
                s.recall_at_3 >= 0.9,
                "dev {:?} recall@3 {}",
                s.lang,
                s.recall_at_3
            );
        }
        for s in &scores {
            assert!(s.questions >= 225, "{:?}", s.lang);
            // The floor reached with synonyms, the graph, learned questions and coverage
            // reranking (0.69 zh, 0.77 en when written); the target is 0.90.
            assert!(
                s.recall_at_3 >= 0.67,
                "{:?} recall@3 {}",
                s.lang,
                s.recall_at_3
            );
        }
    }
}
