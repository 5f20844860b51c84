//! What the routing models read in a customer's text: a normalised form, its language, and
//! hashed features (character n-grams for Chinese, words and their character trigrams for
//! English) that a linear model can weigh without a dictionary or a download.
//!
//! The hash is fixed (FNV-1a), so a feature means the same bucket in every build and a model
//! trained by one version is read correctly by the next.

use unicode_normalization::UnicodeNormalization;

/// The language a text is mostly written in, by its letters.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Language {
    Zh,
    En,
    /// Neither script dominates, or there are no letters at all.
    Unknown,
}

impl Language {
    pub fn as_str(self) -> &'static str {
        match self {
            Language::Zh => "zh",
            Language::En => "en",
            Language::Unknown => "unknown",
        }
    }
}

/// NFKC (full-width letters and digits become ASCII), lower case, runs of white space collapsed.
pub fn normalise(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut space = false;
    for c in text.nfkc().flat_map(char::to_lowercase) {
        if c.is_whitespace() {
            space = !out.is_empty();
        } else {
            if space {
                out.push(' ');
                space = false;
            }
            out.push(c);
        }
    }
    out
}

pub fn is_han(c: char) -> bool {
    matches!(c as u32,
        0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x2A6DF | 0x2A700..=0x2EBEF)
}

/// Chinese when at least a third of the letters are Han characters (a Chinese sentence with an
/// English product name is still Chinese), English when Latin letters make up the rest.
pub fn language(text: &str) -> Language {
    let (mut han, mut latin) = (0usize, 0usize);
    for c in text.chars() {
        if is_han(c) {
            han += 1;
        } else if c.is_ascii_alphabetic() {
            latin += 1;
        }
    }
    // A Han character carries about as much as a short English word.
    let latin_words = latin / 4;
    if han == 0 && latin == 0 {
        Language::Unknown
    } else if han * 2 >= latin_words && han > 0 {
        Language::Zh
    } else if latin > 0 {
        Language::En
    } else {
        Language::Unknown
    }
}

/// A piece of the text: a run of Han characters, or a word of letters and digits.
#[derive(Debug, PartialEq, Eq)]
pub enum Token<'a> {
    Han(&'a str),
    Word(&'a str),
}

/// Splits normalised text into Han runs and words; punctuation, symbols and spaces separate.
pub fn tokens(normalised: &str) -> Vec<Token<'_>> {
    let mut out = Vec::new();
    let mut start = None::<(usize, bool)>;
    for (i, c) in normalised.char_indices() {
        let kind = if is_han(c) {
            Some(true)
        } else if c.is_alphanumeric() || c == '\'' {
            Some(false)
        } else {
            None
        };
        match (start, kind) {
            (Some((_, han)), Some(k)) if han == k => {}
            (Some((s, han)), _) => {
                out.push(token(&normalised[s..i], han));
                start = kind.map(|k| (i, k));
            }
            (None, Some(k)) => start = Some((i, k)),
            (None, None) => {}
        }
    }
    if let Some((s, han)) = start {
        out.push(token(&normalised[s..], han));
    }
    out
}

fn token(text: &str, han: bool) -> Token<'_> {
    if han {
        Token::Han(text)
    } else {
        Token::Word(text.trim_matches('\''))
    }
}

/// FNV-1a over a feature's kind tag and bytes.
pub fn hash(tag: u8, bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in std::iter::once(&tag).chain(bytes) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

const TAG_HAN: u8 = b'h';
const TAG_WORD: u8 = b'w';
const TAG_WORD_PAIR: u8 = b'p';
const TAG_TRIGRAM: u8 = b't';
const TAG_META: u8 = b'm';

/// A feature with the surface text it came from, so a decision can say which words weighed.
#[derive(Debug, Clone, PartialEq)]
pub struct Feature {
    pub hash: u64,
    pub surface: String,
}

/// The features of a text: Han 1-, 2- and 3-grams within each run; each word, each pair of
/// neighbouring words, and the character trigrams of each word with its boundaries (so that
/// `refunds` and `refund`, or a typo, still share most of their weight). Duplicates are removed.
pub fn features(text: &str) -> Vec<Feature> {
    let normalised = normalise(text);
    let mut out: Vec<Feature> = Vec::new();
    let mut push = |tag: u8, surface: &str| {
        out.push(Feature {
            hash: hash(tag, surface.as_bytes()),
            // A piece of a word is shown as `~abc`, never as evidence on its own.
            surface: if tag == TAG_TRIGRAM {
                format!("~{surface}")
            } else {
                surface.to_string()
            },
        });
    };
    let mut previous_word: Option<&str> = None;
    for token in tokens(&normalised) {
        match token {
            Token::Han(run) => {
                previous_word = None;
                let chars: Vec<(usize, char)> = run.char_indices().collect();
                for n in 1..=3 {
                    for window in chars.windows(n) {
                        let start = window[0].0;
                        let (last_at, last) = window[n - 1];
                        push(TAG_HAN, &run[start..last_at + last.len_utf8()]);
                    }
                }
            }
            Token::Word(word) if !word.is_empty() => {
                push(TAG_WORD, word);
                if let Some(before) = previous_word {
                    push(TAG_WORD_PAIR, &format!("{before} {word}"));
                }
                previous_word = Some(word);
                let bounded: Vec<char> = std::iter::once('<')
                    .chain(word.chars())
                    .chain(std::iter::once('>'))
                    .collect();
                if bounded.len() > 3 && word.chars().any(|c| c.is_alphabetic()) {
                    for window in bounded.windows(3) {
                        push(TAG_TRIGRAM, &window.iter().collect::<String>());
                    }
                }
            }
            Token::Word(_) => {}
        }
    }
    out.sort_by_key(|f| f.hash);
    out.dedup_by_key(|f| f.hash);
    out
}

/// A feature that is not in the text: the channel, the customer's tier, their history.
pub fn meta(name: &str) -> Feature {
    Feature {
        hash: hash(TAG_META, name.as_bytes()),
        surface: name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn normalises_width_case_and_space() {
        assert_eq!(normalise("  ＡＰＰ　登录 \t不了！！ "), "app 登录 不了!!");
        assert_eq!(normalise("Refund  PLEASE"), "refund please");
    }

    #[test]
    fn tells_chinese_from_english() {
        assert_eq!(language("app 登录不了怎么办"), Language::Zh);
        assert_eq!(language("my router keeps dropping the wifi"), Language::En);
        assert_eq!(language("退款 refund"), Language::Zh);
        assert_eq!(language("12345 !!!"), Language::Unknown);
    }

    #[test]
    fn splits_han_runs_and_words() {
        let text = normalise("我的Router坏了, can't connect!");
        assert_eq!(
            tokens(&text),
            vec![
                Token::Han("我的"),
                Token::Word("router"),
                Token::Han("坏了"),
                Token::Word("can't"),
                Token::Word("connect"),
            ]
        );
    }

    #[test]
    fn features_cover_ngrams_words_and_trigrams() {
        let surfaces: Vec<String> = features("发票 Invoices")
            .into_iter()
            .map(|f| f.surface)
            .collect();
        for expected in ["发", "票", "发票", "invoices", "~<in", "~es>", "~voi"] {
            assert!(
                surfaces.iter().any(|s| s == expected),
                "{expected} in {surfaces:?}"
            );
        }
        // Same text, same features, in every build.
        assert_eq!(hash(TAG_WORD, b"refund"), hash(TAG_WORD, b"refund"));
        assert_ne!(hash(TAG_WORD, b"refund"), hash(TAG_TRIGRAM, b"refund"));
    }

    proptest! {
        #[test]
        fn any_text_gives_unique_features_without_panicking(text in "\\PC{0,200}") {
            let found = features(&text);
            let mut hashes: Vec<u64> = found.iter().map(|f| f.hash).collect();
            hashes.dedup();
            prop_assert_eq!(hashes.len(), found.len());
            let _ = language(&text);
        }
    }
}
