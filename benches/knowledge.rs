//! Knowledge benchmarks: search latency over 100,000 articles, reply-suggestion latency per
//! keystroke, and the memory the index takes.
//!
//! Run: `cargo bench --bench knowledge` (`-- --articles N` for another size; `BENCH_SLOWEST=1`
//! lists the slowest questions). The articles are
//! the bundled evaluation set's 160 articles recombined: each generated article takes a title and
//! paragraphs from several originals of its language and a serial number, so the index has the
//! vocabulary and the length of real articles and 100,000 distinct documents. Questions are the
//! evaluation set's 640 customer questions. A keystroke is what the console asks while an
//! employee types: articles and past replies (50,000 generated) searched for the customer's
//! question and the draft so far, a passage chosen and the suggestions ranked.

use std::collections::HashMap;
use std::time::Instant;

use allhands::assist::suggest::{self, Candidate, SuggestionKind};
use allhands::knowledge::ops::display_passage;
use allhands::knowledge::search::{FirstPass, IndexedArticle, SearchIndex};
use allhands::text::Language;
use rand::{Rng, SeedableRng};
use serde_json::Value;

struct Doc {
    id: String,
    lang: Language,
    title: String,
    body: String,
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|n| n.parse().unwrap_or(0)))
        })
        .unwrap_or(0)
}

/// An in-memory index of the documents, put in batches of 10,000.
fn index_of(docs: &[Doc]) -> SearchIndex {
    let index = SearchIndex::in_memory().unwrap();
    let none: Vec<String> = Vec::new();
    for chunk in docs.chunks(10_000) {
        let batch: Vec<IndexedArticle<'_>> = chunk
            .iter()
            .map(|d| IndexedArticle {
                id: &d.id,
                lang: d.lang,
                title: &d.title,
                body: &d.body,
                questions: &none,
                about: &none,
                tags: &none,
                entities: &none,
            })
            .collect();
        index.put(&batch).unwrap();
    }
    // As the server does after catching up with the store.
    index.compact().unwrap();
    index
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let count: usize = args
        .iter()
        .position(|a| a == "--articles")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/knowledge");
    let mut originals: HashMap<&str, Vec<(String, Vec<String>)>> = HashMap::new();
    for lang in ["zh", "en"] {
        let text = std::fs::read_to_string(root.join(format!("articles.{lang}.jsonl"))).unwrap();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let a: Value = serde_json::from_str(line).unwrap();
            let paragraphs: Vec<String> = a["body"]
                .as_str()
                .unwrap()
                .split("\n\n")
                .map(str::to_string)
                .collect();
            originals
                .entry(lang)
                .or_default()
                .push((a["title"].as_str().unwrap().to_string(), paragraphs));
        }
    }
    let mut questions: Vec<(Language, String)> = Vec::new();
    for lang in ["zh", "en"] {
        let text = std::fs::read_to_string(root.join(format!("questions.{lang}.tsv"))).unwrap();
        for line in text.lines().skip(1) {
            let q = line.split('\t').nth(3).unwrap_or("").to_string();
            questions.push((
                if lang == "zh" {
                    Language::Zh
                } else {
                    Language::En
                },
                q,
            ));
        }
    }

    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let mut docs = Vec::with_capacity(count);
    for n in 0..count {
        let lang = if n % 2 == 0 { "zh" } else { "en" };
        let pool = &originals[lang];
        let (title, first) = &pool[rng.gen_range(0..pool.len())];
        let mut body: Vec<String> = first.clone();
        for _ in 0..2 {
            let (_, other) = &pool[rng.gen_range(0..pool.len())];
            body.push(other[rng.gen_range(0..other.len())].clone());
        }
        docs.push(Doc {
            id: n.to_string(),
            lang: if lang == "zh" {
                Language::Zh
            } else {
                Language::En
            },
            title: format!("{title} #{n}"),
            body: body.join("\n\n"),
        });
    }
    let body_bytes: usize = docs.iter().map(|d| d.title.len() + d.body.len()).sum();
    println!(
        "{count} articles, {:.0} MiB of text",
        body_bytes as f64 / 1048576.0
    );

    let before = rss_kib();
    let started = Instant::now();
    let index = index_of(&docs);
    let built = started.elapsed();
    let after = rss_kib();
    println!(
        "index built in {:.1} s; resident memory {:.0} MiB before, {:.0} MiB after (+{:.0} MiB for the index and its text)",
        built.as_secs_f64(),
        before as f64 / 1024.0,
        after as f64 / 1024.0,
        (after.saturating_sub(before)) as f64 / 1024.0
    );

    // Query latency: every question once to warm up, then three rounds timed.
    for (lang, q) in &questions {
        index.search(q, *lang, 5).unwrap();
    }
    let mut times = Vec::new();
    let mut slowest: Vec<(f64, &str)> = Vec::new();
    for _ in 0..3 {
        for (lang, q) in &questions {
            let t = Instant::now();
            let hits = index.search(q, *lang, 5).unwrap();
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            times.push(ms);
            slowest.push((ms, q));
            std::hint::black_box(hits);
        }
    }
    if std::env::var_os("BENCH_SLOWEST").is_some() {
        slowest.sort_by(|a, b| b.0.total_cmp(&a.0));
        for (ms, q) in slowest.iter().take(30) {
            println!("{ms:.2} ms  {q}");
        }
    }
    times.sort_by(f64::total_cmp);
    println!(
        "query over {count} articles: {} queries  p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
        times.len(),
        percentile(&times, 0.5),
        percentile(&times, 0.99),
        times.last().unwrap()
    );

    // The first pass reads only the most telling terms: how often the article it ranks first
    // is the one an exhaustive pass (every term, hundreds of candidates) ranks first. Articles
    // are compared by the original their title came from: generated ones are near-duplicates.
    let original = |id: &str| -> String {
        let title = &docs[id.parse::<usize>().unwrap()].title;
        title
            .rsplit_once(" #")
            .map_or(title.clone(), |(t, _)| t.to_string())
    };
    let tops = |index: &SearchIndex| -> Vec<Vec<String>> {
        questions
            .iter()
            .map(|(lang, q)| {
                let hits = index.search(q, *lang, 3).unwrap();
                hits.iter().map(|h| original(&h.id)).collect()
            })
            .collect()
    };
    let fast = tops(&index);
    index.set_first_pass(FirstPass {
        terms: usize::MAX,
        candidates: 300,
    });
    let exhaustive = tops(&index);
    index.set_first_pass(FirstPass::default());
    let same_first = fast
        .iter()
        .zip(&exhaustive)
        .filter(|(f, e)| f.first() == e.first())
        .count();
    let shared: f64 = fast
        .iter()
        .zip(&exhaustive)
        .map(|(f, e)| f.iter().filter(|t| e.contains(t)).count() as f64 / e.len().max(1) as f64)
        .sum();
    println!(
        "first pass ({} terms, {} candidates) against an exhaustive one: the same first article for {:.1}% of questions, {:.1}% of the top 3 shared",
        FirstPass::default().terms,
        FirstPass::default().candidates,
        100.0 * same_first as f64 / questions.len() as f64,
        100.0 * shared / questions.len() as f64
    );

    // Suggestions per keystroke, with 50,000 past replies beside the articles.
    let replies: Vec<Doc> = (0..50_000)
        .map(|n| {
            let d = &docs[rng.gen_range(0..docs.len())];
            let (lang, q) = &questions[rng.gen_range(0..questions.len())];
            let _ = lang;
            Doc {
                id: n.to_string(),
                lang: d.lang,
                title: q.clone(),
                body: d.body.split("\n\n").next().unwrap_or("").to_string(),
            }
        })
        .collect();
    let replies_index = index_of(&replies);
    let by_id: HashMap<&str, &Doc> = docs.iter().map(|d| (d.id.as_str(), d)).collect();
    let reply_by_id: HashMap<&str, &Doc> = replies.iter().map(|d| (d.id.as_str(), d)).collect();
    let mut keystrokes = Vec::new();
    for (lang, question) in questions.iter().take(200) {
        // The employee types the first words of a reply, one character at a time.
        let draft_source = if *lang == Language::Zh {
            "您好，这个问题可以这样处理"
        } else {
            "Hi, thanks for asking, you can"
        };
        let mut draft = String::new();
        for c in draft_source.chars() {
            draft.push(c);
            let t = Instant::now();
            let asked = format!("{question}\n{draft}");
            let mut candidates = Vec::new();
            for hit in index.search(&asked, *lang, 12).unwrap() {
                let d = by_id[hit.id.as_str()];
                candidates.push(Candidate {
                    kind: SuggestionKind::Article,
                    id: hit.id.parse().unwrap(),
                    title: d.title.clone(),
                    text: display_passage(&hit),
                    score: hit.score,
                });
            }
            for hit in replies_index.search(&asked, *lang, 12).unwrap() {
                let d = reply_by_id[hit.id.as_str()];
                candidates.push(Candidate {
                    kind: SuggestionKind::Reply,
                    id: hit.id.parse().unwrap(),
                    title: d.title.clone(),
                    text: d.body.clone(),
                    score: hit.score,
                });
            }
            let ranked = suggest::rank(candidates, &HashMap::new(), &draft, 5);
            keystrokes.push(t.elapsed().as_secs_f64() * 1000.0);
            std::hint::black_box(ranked);
        }
    }
    keystrokes.sort_by(f64::total_cmp);
    println!(
        "suggestions per keystroke ({count} articles, 50,000 past replies): {} keystrokes  p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
        keystrokes.len(),
        percentile(&keystrokes, 0.5),
        percentile(&keystrokes, 0.99),
        keystrokes.last().unwrap()
    );
}
