//! The text pipeline every language feature shares: normalising what people type, telling
//! Chinese from English, and cutting text into search terms.
//!
//! Normal form: Unicode NFKC (full-width letters and digits become ASCII), lower case, and
//! Traditional Chinese characters as Simplified ones, so that `ＲＥＦＵＮＤ`, `Refund` and
//! `refund` are one word and `退貨` finds `退货`.

use std::sync::OnceLock;

use jieba_rs::Jieba;
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
    if text.is_ascii() {
        // NFKC leaves ASCII as it is; most messages are ASCII and this is on every one's path.
        collapse_spaces(text.chars().map(|c| c.to_ascii_lowercase()), text.len())
    } else {
        collapse_spaces(text.nfkc().flat_map(char::to_lowercase), text.len())
    }
}

/// The characters with each run of white space made one space, none at either end.
fn collapse_spaces(chars: impl Iterator<Item = char>, capacity: usize) -> String {
    let mut out = String::with_capacity(capacity);
    let mut space = false;
    for c in chars {
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
/// The language to search and read a text in: Chinese when it is mostly Chinese, else English.
pub fn search_language(text: &str) -> Language {
    match language(text) {
        Language::Zh => Language::Zh,
        _ => Language::En,
    }
}

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

pub(crate) fn opencc() -> Option<&'static ferrous_opencc::OpenCC> {
    static T2S: OnceLock<Option<ferrous_opencc::OpenCC>> = OnceLock::new();
    T2S.get_or_init(|| {
        ferrous_opencc::OpenCC::from_config(ferrous_opencc::config::BuiltinConfig::T2s)
            .map_err(|e| tracing::error!(error = %e, "Traditional to Simplified tables unusable"))
            .ok()
    })
    .as_ref()
}

/// `normalise`, and Simplified Chinese: the form search indexes and queries.
pub fn normalise_simplified(text: &str) -> String {
    let folded = normalise(text);
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

/// Search words of normalised text: Chinese cut by the dictionary in search mode (long words and
/// their shorter parts), Latin words as they are; stop words left out.
pub fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for token in tokens(text) {
        match token {
            Token::Han(run) => {
                for cut in jieba().cut_for_search(run, true) {
                    if !is_stop_word(cut.word) {
                        out.push(cut.word.to_string());
                    }
                }
            }
            Token::Word(word) => {
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
    for token in tokens(text) {
        if let Token::Han(run) = token {
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
        assert_eq!(normalise_simplified("ＲＥＦＵＮＤ Refund"), "refund refund");
        assert_eq!(normalise_simplified("如何申請退貨"), "如何申请退货");
        assert_eq!(normalise_simplified("Ｈ２　掉線"), "h2 掉线");
    }

    #[test]
    fn words_cut_chinese_by_the_dictionary_and_drop_stop_words() {
        let words = words(&normalise_simplified("我想申请退货，运费谁出？"));
        assert!(words.contains(&"退货".to_string()), "{words:?}");
        assert!(words.contains(&"运费".to_string()), "{words:?}");
        assert!(!words.contains(&"我".to_string()));
        assert_eq!(han_grams("退货"), vec!["退", "退货", "货"]);
    }

    proptest! {
        #[test]
        fn any_text_is_handled_without_panicking(text in "\\PC{0,80}") {
            let normal = normalise_simplified(&text);
            let _ = words(&normal);
            let _ = han_grams(&normal);
            let _ = language(&text);
        }

        #[test]
        fn ascii_is_normalised_as_unicode_is(text in "[ -~\t\n\x0b\x0c\r]{0,80}") {
            prop_assert_eq!(
                normalise(&text),
                collapse_spaces(text.nfkc().flat_map(char::to_lowercase), 0)
            );
        }
    }
}
