//! Sensitive words: finds an organisation's listed words in a message however they are
//! disguised — full-width letters, capitals, spaces or symbols between the letters,
//! Traditional characters, pinyin spellings and same-sounding characters, English leetspeak.
//!
//! The text is scanned as two streams, each matched by a double-array Aho-Corasick automaton
//! (daachorse) built once per dictionary:
//! * the folded stream: letters, digits and Han characters only, NFKC-folded, lower-cased,
//!   Simplified, with leetspeak digits read as letters;
//! * the sound stream: every Han character replaced by its toneless pinyin, letters kept, so
//!   that `sha bi`, `shabi` and a homophone spelled with other characters meet the pinyin of a
//!   listed Chinese word.
//!
//! Every match is reported with its byte range in the original text, for highlighting.

use std::sync::OnceLock;

use daachorse::CharwiseDoubleArrayAhoCorasick;
use pinyin::ToPinyin;
use serde::{Deserialize, Serialize};

use crate::error::{AppError, AppResult};
use crate::text::is_han;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Shown to a supervisor when a customer writes it; an employee is not stopped.
    Flag,
    /// An employee must confirm before a reply with it is sent.
    Warn,
    /// A reply with it is refused.
    Block,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SensitiveWord {
    pub word: String,
    pub category: String,
    pub severity: Severity,
}

/// How a match was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    /// The letters or characters themselves (after folding).
    Text,
    /// The sound: pinyin spelling or same-sounding characters.
    Sound,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Found {
    /// Index of the word in the dictionary.
    pub word: usize,
    /// Byte range in the scanned text.
    pub start: usize,
    pub end: usize,
    pub via: Via,
}

/// Latin words this short must stand alone (`ass` is not in `class`); longer ones are found
/// inside other words too.
const WHOLE_WORD_UP_TO: usize = 4;

pub struct Matcher {
    words: Vec<SensitiveWord>,
    folded: Option<CharwiseDoubleArrayAhoCorasick<u32>>,
    sound: Option<CharwiseDoubleArrayAhoCorasick<u32>>,
    /// Per pattern of `folded`: whether it must start and end at a word boundary.
    whole_word: Vec<bool>,
}

/// One character of a stream: where it came from in the original text, and whether something
/// that is not a letter (or the start of the text) came right before it.
#[derive(Clone, Copy)]
struct Origin {
    start: usize,
    end: usize,
    gap_before: bool,
    han: bool,
}

/// Traditional to Simplified for single Han characters, from OpenCC's tables, built once.
fn simplified(c: char) -> char {
    const FIRST: u32 = 0x3400;
    const LAST: u32 = 0x9FFF;
    static TABLE: OnceLock<Vec<char>> = OnceLock::new();
    let code = c as u32;
    if !(FIRST..=LAST).contains(&code) {
        return c;
    }
    let table = TABLE.get_or_init(|| {
        let chars: String = (FIRST..=LAST).filter_map(char::from_u32).collect();
        let converted =
            match ferrous_opencc::OpenCC::from_config(ferrous_opencc::config::BuiltinConfig::T2s) {
                // OpenCC's character table maps one character to one, so converting every character
                // separated by a newline keeps them aligned.
                Ok(t2s) => {
                    let spaced: String = chars.chars().flat_map(|c| [c, '\n']).collect();
                    t2s.convert(&spaced)
                        .split('\n')
                        .map(|s| {
                            let mut it = s.chars();
                            match (it.next(), it.next()) {
                                (Some(one), None) => one,
                                _ => '\0',
                            }
                        })
                        .collect()
                }
                Err(_) => Vec::new(),
            };
        if converted.len() >= chars.chars().count() {
            chars
                .chars()
                .zip(converted)
                .map(|(from, to)| if to == '\0' { from } else { to })
                .collect()
        } else {
            chars.chars().collect()
        }
    });
    table.get((code - FIRST) as usize).copied().unwrap_or(c)
}

/// Leetspeak digits and symbols read as the letters they stand for; `l`, `i`, `1` and `|` are
/// one letter, so `k1ll` and `kiii` meet `kill`.
fn unleet(c: char) -> char {
    match c {
        '0' => 'o',
        '1' | 'l' | '|' | '!' => 'i',
        '3' => 'e',
        '4' | '@' => 'a',
        '5' | '$' => 's',
        '7' => 't',
        '8' => 'b',
        '9' => 'g',
        other => other,
    }
}

/// The plain folded form of one character of the original, nothing for separators: ASCII letters
/// and digits lower-cased (`@` and `$` kept, they may be leetspeak), Han characters Simplified,
/// compatibility forms (full-width, circled) decomposed.
fn fold(c: char, mut out: impl FnMut(char)) {
    if c.is_ascii() {
        if c.is_ascii_alphanumeric() || matches!(c, '@' | '$') {
            out(c.to_ascii_lowercase());
        }
        return;
    }
    if is_han(c) {
        out(simplified(c));
        return;
    }
    unicode_normalization::char::decompose_compatible(c, |d| {
        if d.is_ascii() {
            if d.is_ascii_alphanumeric() {
                out(d.to_ascii_lowercase());
            }
        } else if is_han(d) {
            out(simplified(d));
        } else if d.is_alphanumeric() {
            for lower in d.to_lowercase() {
                out(lower);
            }
        }
    });
}

/// Folds a dictionary word the way text is folded, leetspeak included.
fn fold_word(word: &str) -> String {
    let mut out = String::new();
    for c in word.chars() {
        fold(c, |f| out.push(unleet(f)));
    }
    out
}

/// Toneless pinyin of a Simplified character, if it has one.
fn sound_of(c: char) -> Option<&'static str> {
    c.to_pinyin().map(|p| p.plain())
}

/// The pinyin of a folded Chinese word, or `None` when one of its characters has none.
fn sound_word(folded: &str) -> Option<String> {
    let mut out = String::new();
    for c in folded.chars() {
        out.push_str(sound_of(c)?);
    }
    Some(out)
}

struct Stream {
    text: String,
    /// Byte offset in `text` where each character of `origins` starts.
    offsets: Vec<u32>,
    origins: Vec<Origin>,
}

impl Stream {
    fn new(capacity: usize) -> Stream {
        Stream {
            text: String::with_capacity(capacity),
            offsets: Vec::with_capacity(capacity),
            origins: Vec::with_capacity(capacity),
        }
    }

    fn push(&mut self, piece: &str, origin: Origin) {
        self.offsets.push(self.text.len() as u32);
        self.origins.push(origin);
        self.text.push_str(piece);
    }

    /// The character that byte `at` of `text` belongs to (matches are rare: a search each).
    fn owner(&self, at: usize) -> usize {
        match self.offsets.binary_search(&(at as u32)) {
            Ok(index) => index,
            Err(next) => next - 1,
        }
    }
}

impl Matcher {
    pub fn new(words: Vec<SensitiveWord>) -> AppResult<Matcher> {
        let mut folded_patterns = Vec::new();
        let mut whole_word = Vec::new();
        let mut sound_patterns = Vec::new();
        for (index, word) in words.iter().enumerate() {
            let folded = fold_word(&word.word);
            if folded.is_empty() {
                continue;
            }
            let latin = !folded.chars().any(is_han);
            whole_word.push(latin && folded.chars().count() <= WHOLE_WORD_UP_TO);
            folded_patterns.push((folded.clone(), index as u32));
            // One Han character sounds like too many others to match by sound.
            if !latin
                && folded.chars().count() >= 2
                && folded.chars().all(is_han)
                && let Some(sound) = sound_word(&folded)
            {
                sound_patterns.push((sound, index as u32));
            }
        }
        let build = |patterns: Vec<(String, u32)>| -> AppResult<_> {
            if patterns.is_empty() {
                return Ok(None);
            }
            // The same folded form twice (two spellings of one word) is one pattern.
            let mut seen = std::collections::HashSet::new();
            let unique: Vec<(String, u32)> = patterns
                .into_iter()
                .filter(|(p, _)| seen.insert(p.clone()))
                .collect();
            CharwiseDoubleArrayAhoCorasick::with_values(unique)
                .map(Some)
                .map_err(|e| AppError::internal(format!("sensitive word automaton: {e}")))
        };
        // `whole_word` is indexed by word, like the automaton's values.
        let mut whole_by_word = vec![false; words.len()];
        for ((_, index), whole) in folded_patterns.iter().zip(&whole_word) {
            whole_by_word[*index as usize] = *whole;
        }
        Ok(Matcher {
            folded: build(folded_patterns)?,
            sound: build(sound_patterns)?,
            whole_word: whole_by_word,
            words,
        })
    }

    pub fn words(&self) -> &[SensitiveWord] {
        &self.words
    }

    pub fn is_empty(&self) -> bool {
        self.folded.is_none()
    }

    /// Every listed word in `text`, in order of position; a word found both by its letters and
    /// by its sound at the same place is reported once.
    pub fn scan(&self, text: &str) -> Vec<Found> {
        let Some(folded_automaton) = &self.folded else {
            return Vec::new();
        };
        let mut folded = Stream::new(text.len());
        let mut sound = Stream::new(text.len() * 2);
        let mut gap = true;
        let mut buffer = [0u8; 4];
        for (start, c) in text.char_indices() {
            let end = start + c.len_utf8();
            // `@` and `$` are leetspeak letters (`@$$`, `$h1t`) except beside Chinese, where they
            // are symbols between the characters of a disguised word (`私@下`).
            let symbol_letter = matches!(c, '@' | '$');
            if symbol_letter
                && (han_beside(text[..start].chars().rev()) || han_beside(text[end..].chars()))
            {
                gap = true;
                continue;
            }
            let mut produced = false;
            fold(c, |plain| {
                let origin = Origin {
                    start,
                    end,
                    gap_before: gap && !produced,
                    han: is_han(plain),
                };
                folded.push(unleet(plain).encode_utf8(&mut buffer), origin);
                match origin.han.then(|| sound_of(plain)).flatten() {
                    Some(syllable) => sound.push(syllable, origin),
                    None => {
                        let letter = if symbol_letter { unleet(plain) } else { plain };
                        sound.push(letter.encode_utf8(&mut buffer), origin);
                    }
                }
                produced = true;
            });
            gap = !produced;
        }
        let mut found = Vec::new();
        for m in folded_automaton.find_overlapping_iter(&folded.text) {
            let word = m.value() as usize;
            let (first, last) = (folded.owner(m.start()), folded.owner(m.end() - 1));
            if self.whole_word[word] && !stands_alone(&folded.origins, first, last) {
                continue;
            }
            found.push(Found {
                word,
                start: folded.origins[first].start,
                end: folded.origins[last].end,
                via: Via::Text,
            });
        }
        if let Some(sound_automaton) = &self.sound {
            for m in sound_automaton.find_overlapping_iter(&sound.text) {
                let (first, last) = (sound.owner(m.start()), sound.owner(m.end() - 1));
                // Whole syllables only: the match starts where a character's sound starts and
                // ends where one ends, and letters spelling it stand apart from other letters.
                let starts_clean = sound.offsets[first] as usize == m.start();
                let ends_clean = sound
                    .offsets
                    .get(last + 1)
                    .map_or(sound.text.len(), |&o| o as usize)
                    == m.end();
                if !starts_clean || !ends_clean || !stands_alone(&sound.origins, first, last) {
                    continue;
                }
                let (start, end) = (sound.origins[first].start, sound.origins[last].end);
                let word = m.value() as usize;
                if !found
                    .iter()
                    .any(|f| f.word == word && f.start == start && f.end == end)
                {
                    found.push(Found {
                        word,
                        start,
                        end,
                        via: Via::Sound,
                    });
                }
            }
        }
        found.sort_by_key(|f| (f.start, f.end, f.word));
        found
    }
}

/// Whether the nearest character that is not a space, going one way, is a Han character.
fn han_beside(mut chars: impl Iterator<Item = char>) -> bool {
    chars.find(|c| !c.is_whitespace()).is_some_and(is_han)
}

/// Whether stream characters `first..=last` are not glued to letters around them: Han
/// characters border anything, letters need a separator (or the text's edge) on each side.
fn stands_alone(origins: &[Origin], first: usize, last: usize) -> bool {
    let before_ok =
        first == 0 || origins[first].gap_before || origins[first].han || origins[first - 1].han;
    let after_ok = last + 1 >= origins.len()
        || origins[last + 1].gap_before
        || origins[last].han
        || origins[last + 1].han;
    before_ok && after_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn word(w: &str, severity: Severity) -> SensitiveWord {
        SensitiveWord {
            word: w.into(),
            category: "test".into(),
            severity,
        }
    }

    fn words_found(matcher: &Matcher, text: &str) -> Vec<String> {
        matcher
            .scan(text)
            .iter()
            .map(|f| matcher.words()[f.word].word.clone())
            .collect()
    }

    #[test]
    fn disguised_words_are_found_with_their_place_in_the_text() {
        let matcher = Matcher::new(vec![
            word("傻逼", Severity::Block),
            word("骗子", Severity::Warn),
            word("idiot", Severity::Block),
            word("ass", Severity::Warn),
        ])
        .unwrap();
        let text = "你这个 傻 逼";
        let found = matcher.scan(text);
        assert_eq!(found.len(), 1);
        assert_eq!(&text[found[0].start..found[0].end], "傻 逼");
        assert_eq!(words_found(&matcher, "你們都是騙子"), vec!["骗子"]);
        assert_eq!(words_found(&matcher, "sha bi"), vec!["傻逼"]);
        assert_eq!(words_found(&matcher, "你个沙比"), vec!["傻逼"]);
        assert_eq!(words_found(&matcher, "ＩＤＩＯＴ"), vec!["idiot"]);
        assert_eq!(words_found(&matcher, "you 1d10t"), vec!["idiot"]);
        assert_eq!(words_found(&matcher, "i.d.i.o.t!"), vec!["idiot"]);
        assert_eq!(words_found(&matcher, "kick @$$"), vec!["ass"]);
        assert!(words_found(&matcher, "first class passenger").is_empty());
        assert!(words_found(&matcher, "assistance please").is_empty());
    }

    fn dictionary() -> Vec<SensitiveWord> {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sensitive/words.tsv");
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .skip(1)
            .map(|line| {
                let columns: Vec<&str> = line.split('\t').collect();
                SensitiveWord {
                    word: columns[0].into(),
                    category: columns[1].into(),
                    severity: match columns[2] {
                        "block" => Severity::Block,
                        "warn" => Severity::Warn,
                        _ => Severity::Flag,
                    },
                }
            })
            .collect()
    }

    fn full_width(text: &str) -> String {
        text.chars()
            .map(|c| match c {
                '!'..='~' => char::from_u32(c as u32 + 0xFEE0).unwrap_or(c),
                ' ' => '\u{3000}',
                other => other,
            })
            .collect()
    }

    fn leet(text: &str) -> String {
        text.chars()
            .map(|c| match c {
                'a' => '4',
                'e' => '3',
                'i' => '1',
                'o' => '0',
                's' => '$',
                't' => '7',
                other => other,
            })
            .collect()
    }

    fn between(text: &str, separator: &str) -> String {
        text.chars()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(separator)
    }

    fn alternate_case(text: &str) -> String {
        text.chars()
            .enumerate()
            .map(|(i, c)| {
                if i % 2 == 0 {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect()
    }

    /// Every disguise of every listed word, inside a sentence, as a customer or an employee
    /// would write it.
    fn variants(word: &str) -> Vec<(&'static str, String)> {
        let mut out = vec![
            ("as listed", word.to_string()),
            ("spaces", between(word, " ")),
            ("symbols", between(word, "*")),
            ("dots and dashes", between(word, ".-")),
            ("full width", full_width(word)),
            ("full width, spaced", full_width(&between(word, " "))),
        ];
        if word.chars().any(is_han) {
            let s2t =
                ferrous_opencc::OpenCC::from_config(ferrous_opencc::config::BuiltinConfig::S2t)
                    .unwrap();
            let traditional = s2t.convert(word);
            out.push(("traditional", traditional.clone()));
            out.push(("traditional, symbols", between(&traditional, "@")));
            let syllables: Vec<&str> = word.chars().filter_map(sound_of).collect();
            out.push(("pinyin", syllables.join("")));
            out.push(("pinyin, spaced", syllables.join(" ")));
            out.push(("pinyin, capitals", alternate_case(&syllables.join(""))));
            out.push(("pinyin, full width", full_width(&syllables.join(" "))));
        } else {
            out.push(("capitals", word.to_uppercase()));
            out.push(("mixed case", alternate_case(word)));
            out.push(("leetspeak", leet(word)));
            out.push(("leetspeak, spaced", between(&leet(word), " ")));
            out.push(("mixed case, symbols", between(&alternate_case(word), "_")));
        }
        out
    }

    #[test]
    fn every_disguise_of_every_listed_word_is_caught() {
        let words = dictionary();
        let matcher = Matcher::new(words.clone()).unwrap();
        let mut cases = 0;
        let mut missed = Vec::new();
        for (index, listed) in words.iter().enumerate() {
            for (kind, variant) in variants(&listed.word) {
                for text in [
                    variant.clone(),
                    format!("你好，{variant}，请回复"),
                    format!("hello, {variant} - reply please"),
                ] {
                    cases += 1;
                    if !matcher.scan(&text).iter().any(|f| f.word == index) {
                        missed.push(format!("{} ({kind}): {text}", listed.word));
                    }
                }
            }
        }
        println!(
            "sensitive-word variant suite: {cases} cases, {} missed",
            missed.len()
        );
        assert!(missed.is_empty(), "missed:\n{}", missed.join("\n"));
    }

    #[test]
    fn ordinary_customer_service_text_raises_almost_no_false_alarms() {
        let matcher = Matcher::new(dictionary()).unwrap();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/knowledge");
        let mut texts = Vec::new();
        for lang in ["zh", "en"] {
            let articles =
                std::fs::read_to_string(dir.join(format!("articles.{lang}.jsonl"))).unwrap();
            for line in articles.lines() {
                let article: serde_json::Value = serde_json::from_str(line).unwrap();
                texts.push(format!(
                    "{} {}",
                    article["title"].as_str().unwrap(),
                    article["body"].as_str().unwrap()
                ));
            }
            let questions =
                std::fs::read_to_string(dir.join(format!("questions.{lang}.tsv"))).unwrap();
            texts.extend(
                questions
                    .lines()
                    .skip(1)
                    .filter_map(|l| l.split('\t').nth(3))
                    .map(String::from),
            );
        }
        let alarms: Vec<String> = texts
            .iter()
            .filter_map(|text| {
                let found = matcher.scan(text);
                // A listed word written plainly is a true find, not a false alarm.
                let lower = text.to_lowercase();
                let false_alarms: Vec<&Found> = found
                    .iter()
                    .filter(|f| !lower.contains(&matcher.words()[f.word].word.to_lowercase()))
                    .collect();
                (!false_alarms.is_empty()).then(|| {
                    let f = false_alarms[0];
                    format!(
                        "{} in {:?}",
                        matcher.words()[f.word].word,
                        &text[f.start..f.end]
                    )
                })
            })
            .collect();
        let rate = alarms.len() as f64 / texts.len() as f64;
        println!(
            "sensitive-word false alarms: {} of {} benign texts ({:.2}%)",
            alarms.len(),
            texts.len(),
            rate * 100.0
        );
        for alarm in &alarms {
            println!("  {alarm}");
        }
        assert!(rate <= 0.005, "{alarms:?}");
    }

    proptest! {
        #[test]
        fn any_text_scans_without_panicking(text in "\\PC{0,120}") {
            let matcher = Matcher::new(vec![word("傻逼", Severity::Block), word("ass", Severity::Warn)]).unwrap();
            for f in matcher.scan(&text) {
                prop_assert!(f.start < f.end && f.end <= text.len());
                prop_assert!(text.is_char_boundary(f.start) && text.is_char_boundary(f.end));
            }
        }
    }
}
