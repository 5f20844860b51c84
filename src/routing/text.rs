//! What the routing models read in a customer's text: a normalised form, its language, and
//! hashed features (character n-grams for Chinese, words and their character trigrams for
//! English) that a linear model can weigh without a dictionary or a download.
//!
//! The hash is fixed (FNV-1a), so a feature means the same bucket in every build and a model
//! trained by one version is read correctly by the next.

pub use crate::text::{Language, Token, is_han, language, normalise, tokens};

/// FNV-1a over a feature's kind tag and bytes.
pub fn hash(tag: u8, bytes: &[u8]) -> u64 {
    let mut h = Fnv::new(tag);
    h.write(bytes);
    h.0
}

/// FNV-1a fed piece by piece, so a feature made of several pieces (a word pair, a trigram with
/// its boundary marks) is hashed without first being assembled into a string.
struct Fnv(u64);

impl Fnv {
    fn new(tag: u8) -> Fnv {
        let mut h = Fnv(0xcbf2_9ce4_8422_2325);
        h.write(&[tag]);
        h
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn write_char(&mut self, c: char) {
        self.write(c.encode_utf8(&mut [0; 4]).as_bytes());
    }
}

const TAG_HAN: u8 = b'h';
const TAG_WORD: u8 = b'w';
const TAG_WORD_PAIR: u8 = b'p';
const TAG_TRIGRAM: u8 = b't';
const TAG_META: u8 = b'm';

/// A feature with the surface text it came from, so a decision can say which words weighed.
/// Only features that can be shown as evidence carry their surface (Chinese 2- and 3-grams,
/// words and word pairs of three or more characters with a letter); single Chinese characters
/// and pieces of words have an empty one. Every message is read by several models on its way
/// in, so the features are built without a string per piece.
#[derive(Debug, Clone, PartialEq)]
pub struct Feature {
    pub hash: u64,
    pub surface: String,
}

fn showable_word(word: &str) -> bool {
    !word.contains(['<', '>', '~'])
}

/// The features of a text: Han 1-, 2- and 3-grams within each run; each word, each pair of
/// neighbouring words, and the character trigrams of each word with its boundaries (so that
/// `refunds` and `refund`, or a typo, still share most of their weight). Duplicates are removed.
pub fn features(text: &str) -> Vec<Feature> {
    let normalised = normalise(text);
    let mut out: Vec<Feature> = Vec::with_capacity(normalised.len() * 2);
    let mut previous_word: Option<&str> = None;
    let mut chars: Vec<(usize, char)> = Vec::new();
    for token in tokens(&normalised) {
        match token {
            Token::Han(run) => {
                previous_word = None;
                chars.clear();
                chars.extend(run.char_indices());
                for n in 1..=3 {
                    for window in chars.windows(n) {
                        let start = window[0].0;
                        let (last_at, last) = window[n - 1];
                        let gram = &run[start..last_at + last.len_utf8()];
                        out.push(Feature {
                            hash: hash(TAG_HAN, gram.as_bytes()),
                            surface: if n > 1 {
                                gram.to_string()
                            } else {
                                String::new()
                            },
                        });
                    }
                }
            }
            Token::Word(word) if !word.is_empty() => {
                let alphabetic = word.chars().any(char::is_alphabetic);
                out.push(Feature {
                    hash: hash(TAG_WORD, word.as_bytes()),
                    surface: if alphabetic && showable_word(word) && word.chars().nth(2).is_some() {
                        word.to_string()
                    } else {
                        String::new()
                    },
                });
                if let Some(before) = previous_word {
                    let mut h = Fnv::new(TAG_WORD_PAIR);
                    h.write(before.as_bytes());
                    h.write(b" ");
                    h.write(word.as_bytes());
                    let shown = (alphabetic || before.chars().any(char::is_alphabetic))
                        && showable_word(before)
                        && showable_word(word);
                    out.push(Feature {
                        hash: h.0,
                        surface: if shown {
                            format!("{before} {word}")
                        } else {
                            String::new()
                        },
                    });
                }
                previous_word = Some(word);
                if alphabetic && word.chars().nth(1).is_some() {
                    // The word with its boundaries, `<word>`, in windows of three characters.
                    let bounded = std::iter::once('<')
                        .chain(word.chars())
                        .chain(std::iter::once('>'));
                    let mut window = ['\0'; 3];
                    for (i, c) in bounded.enumerate() {
                        window = [window[1], window[2], c];
                        if i >= 2 {
                            let mut h = Fnv::new(TAG_TRIGRAM);
                            window.iter().for_each(|&c| h.write_char(c));
                            out.push(Feature {
                                hash: h.0,
                                surface: String::new(),
                            });
                        }
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
        let found = features("发票 Invoices");
        let has =
            |tag: u8, piece: &str| found.iter().any(|f| f.hash == hash(tag, piece.as_bytes()));
        for gram in ["发", "票", "发票"] {
            assert!(has(TAG_HAN, gram), "{gram}");
        }
        assert!(has(TAG_WORD, "invoices"));
        for piece in ["<in", "es>", "voi"] {
            assert!(has(TAG_TRIGRAM, piece), "{piece}");
        }
        let surfaces: Vec<&str> = found.iter().map(|f| f.surface.as_str()).collect();
        for shown in ["发票", "invoices"] {
            assert!(surfaces.contains(&shown), "{shown} in {surfaces:?}");
        }
        let pair = features("refund please");
        assert!(pair.iter().any(
            |f| f.hash == hash(TAG_WORD_PAIR, b"refund please") && f.surface == "refund please"
        ));
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
