//! The text pipeline every language feature shares: normalising what people type, telling
//! Chinese from English, and cutting text into search terms.
//!
//! Normal form: Unicode NFKC (full-width letters and digits become ASCII), lower case, and
//! Traditional Chinese characters as Simplified ones, so that `ＲＥＦＵＮＤ`, `Refund` and
//! `refund` are one word and `退貨` finds `退货`.

use std::sync::OnceLock;

use jieba_rs::Jieba;
use unicode_normalization::UnicodeNormalization;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    Zh,
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh",
            Lang::En => "en",
        }
    }
}

/// Han ideographs (the unified blocks and their extensions people type).
pub fn is_han(c: char) -> bool {
    matches!(c,
        '\u{3400}'..='\u{4DBF}'
        | '\u{4E00}'..='\u{9FFF}'
        | '\u{F900}'..='\u{FAFF}'
        | '\u{20000}'..='\u{2A6DF}')
}

/// Chinese when at least one letter in five is a Han character: mixed messages such as
/// `退款 refund 还没到` are Chinese.
pub fn language_of(text: &str) -> Lang {
    let (mut han, mut letters) = (0usize, 0usize);
    for c in text.chars() {
        if is_han(c) {
            han += 1;
            letters += 1;
        } else if c.is_alphabetic() {
            letters += 1;
        }
    }
    if han * 5 >= letters.max(1) && han > 0 {
        Lang::Zh
    } else {
        Lang::En
    }
}

fn opencc() -> Option<&'static ferrous_opencc::OpenCC> {
    static T2S: OnceLock<Option<ferrous_opencc::OpenCC>> = OnceLock::new();
    T2S.get_or_init(|| {
        ferrous_opencc::OpenCC::from_config(ferrous_opencc::config::BuiltinConfig::T2s)
            .map_err(|e| tracing::error!(error = %e, "Traditional to Simplified tables unusable"))
            .ok()
    })
    .as_ref()
}

/// NFKC, lower case, Simplified Chinese.
pub fn normalize(text: &str) -> String {
    let folded: String = text.nfkc().flat_map(char::to_lowercase).collect();
    if folded.chars().any(is_han)
        && let Some(t2s) = opencc()
    {
        return t2s.convert(&folded);
    }
    folded
}

/// The shared segmentation dictionary, loaded on first use (about 90 ms and 30 MB).
pub fn jieba() -> &'static Jieba {
    static JIEBA: OnceLock<Jieba> = OnceLock::new();
    JIEBA.get_or_init(Jieba::new)
}

/// Words too common to help a search, in either language. Question words stay: they matter to
/// classifiers, and a query made of nothing else still finds something.
const STOP_WORDS: &[&str] = &[
    "的", "了", "吗", "呢", "吧", "啊", "呀", "是", "我", "你", "他", "她", "它", "们", "这", "那",
    "在", "和", "与", "及", "就", "都", "也", "还", "又", "把", "被", "给", "让", "要", "会", "能",
    "可以", "一个", "一下", "有", "没", "不", "请问", "您好", "你好", "谢谢", "a", "an", "the",
    "is", "are", "was", "were", "be", "been", "am", "i", "me", "my", "you", "your", "it", "its",
    "to", "of", "and", "or", "in", "on", "at", "for", "with", "do", "does", "did", "can", "could",
    "would", "should", "will", "please", "pls", "hi", "hello", "thanks", "this", "that", "there",
    "so", "just", "im", "i'm", "a", "get", "got", "have", "has", "had", "we", "our", "us",
];

pub fn is_stop_word(word: &str) -> bool {
    STOP_WORDS.contains(&word)
}

/// Words that ask rather than say what about: left out of search queries and the index (every
/// help article's title asks "how"), kept for classifiers.
const QUESTION_WORDS: &[&str] = &[
    "how",
    "what",
    "whats",
    "what's",
    "why",
    "when",
    "where",
    "which",
    "who",
    "whom",
    "whose",
    "如何",
    "怎么",
    "怎样",
    "怎么样",
    "怎么办",
    "什么",
    "为什么",
    "为啥",
    "哪里",
    "哪儿",
    "哪个",
    "多少",
    "几",
    "是否",
    "能否",
    "可否",
    "咋",
    "咋办",
];

pub fn is_question_word(word: &str) -> bool {
    QUESTION_WORDS.contains(&word)
}

/// One piece of normalised text: a run of Han characters, or a word of letters and digits.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    Han(&'a str),
    Word(&'a str),
}

/// Splits normalised text into Han runs and Latin words; punctuation and spaces separate.
pub fn pieces(text: &str) -> impl Iterator<Item = Piece<'_>> {
    let mut rest = text;
    std::iter::from_fn(move || {
        let start = rest.find(|c: char| is_han(c) || c.is_alphanumeric())?;
        rest = &rest[start..];
        let first = rest.chars().next()?;
        let han = is_han(first);
        let end = rest
            .find(|c: char| {
                if han {
                    !is_han(c)
                } else {
                    is_han(c) || !(c.is_alphanumeric() || c == '\'')
                }
            })
            .unwrap_or(rest.len());
        let (piece, tail) = rest.split_at(end);
        rest = tail;
        Some(if han {
            Piece::Han(piece)
        } else {
            Piece::Word(piece.trim_end_matches('\''))
        })
    })
}

/// Search words of normalised text: Chinese cut by the dictionary in search mode (long words and
/// their shorter parts), Latin words as they are; stop words left out.
pub fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for piece in pieces(text) {
        match piece {
            Piece::Han(run) => {
                for token in jieba().cut_for_search(run, true) {
                    if !is_stop_word(token.word) {
                        out.push(token.word.to_string());
                    }
                }
            }
            Piece::Word(word) => {
                if !word.is_empty() && !is_stop_word(word) {
                    out.push(word.to_string());
                }
            }
        }
    }
    out
}

/// Han characters and adjacent pairs: they find Chinese words the dictionary cut differently.
pub fn han_grams(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for piece in pieces(text) {
        if let Piece::Han(run) = piece {
            let chars: Vec<char> = run.chars().collect();
            for (i, c) in chars.iter().enumerate() {
                out.push(c.to_string());
                if let Some(next) = chars.get(i + 1) {
                    out.push([*c, *next].iter().collect());
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn full_width_case_and_traditional_fold_to_one_form() {
        assert_eq!(normalize("ＲＥＦＵＮＤ Refund"), "refund refund");
        assert_eq!(normalize("如何申請退貨"), "如何申请退货");
        assert_eq!(normalize("Ｈ２　掉線"), "h2 掉线");
    }

    #[test]
    fn chinese_is_told_from_english_even_when_mixed() {
        assert_eq!(language_of("如何申请退货?"), Lang::Zh);
        assert_eq!(language_of("退款 refund 还没到"), Lang::Zh);
        assert_eq!(language_of("how do I return an item?"), Lang::En);
        assert_eq!(language_of("12345"), Lang::En);
    }

    #[test]
    fn text_splits_into_han_runs_and_words() {
        let text = normalize("我的H2网关, can't connect 到wifi!");
        let pieces: Vec<_> = pieces(&text).collect();
        assert_eq!(
            pieces,
            vec![
                Piece::Han("我的"),
                Piece::Word("h2"),
                Piece::Han("网关"),
                Piece::Word("can't"),
                Piece::Word("connect"),
                Piece::Han("到"),
                Piece::Word("wifi"),
            ]
        );
    }

    #[test]
    fn words_cut_chinese_by_the_dictionary_and_drop_stop_words() {
        let words = words(&normalize("我想申请退货，运费谁出？"));
        assert!(words.contains(&"退货".to_string()), "{words:?}");
        assert!(words.contains(&"运费".to_string()), "{words:?}");
        assert!(!words.contains(&"我".to_string()));
        assert_eq!(han_grams("退货"), vec!["退", "退货", "货"]);
    }

    proptest! {
        #[test]
        fn any_text_is_handled_without_panicking(text in "\\PC{0,80}") {
            let normal = normalize(&text);
            let _ = words(&normal);
            let _ = han_grams(&normal);
            let _ = language_of(&text);
        }
    }
}
