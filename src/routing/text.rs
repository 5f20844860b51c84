//! What the routing models read in a customer's text: a normalised form, its language, and
//! hashed features (character n-grams for Chinese, words and their character trigrams for
//! English) that a linear model can weigh without a dictionary or a download.
//!
//! The hash is fixed (FNV-1a), so a feature means the same bucket in every build and a model
//! trained by one version is read correctly by the next.

pub use crate::text::{Language, Token, is_han, language, normalise, tokens};

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
