//! Emotion readings of customers' messages (calm, anxious, angry) and the rudeness check of
//! employees' replies, in Chinese and English, offline.
//!
//! Two linear models (`routing::classify::Model`) over the text's hashed features plus cues from
//! our own lexicon: which kinds of words occur (anger, anxiety, calm or thanks, rudeness), whether
//! a negator or an intensifier comes just before them, shouting in capitals, runs of `!` or `?`.
//! Both are trained at first use on the starter sets shipped in the binary
//! (`starter_emotion.tsv`, `starter_rudeness.tsv`, `emotion_lexicon.tsv`: written by the project,
//! see `tests/data/emotion/README.md`). Training is deterministic, so a reading is a pure function
//! of the text and the build.

use std::sync::OnceLock;

use aho_corasick::{AhoCorasick, MatchKind};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::routing::classify::{self, Example, Model, TrainOptions};
use crate::text::{self, Language};

const STARTER_EMOTION: &str = include_str!("starter_emotion.tsv");
const STARTER_RUDENESS: &str = include_str!("starter_rudeness.tsv");
const LEXICON: &str = include_str!("emotion_lexicon.tsv");

/// How a customer feels, as far as their words tell.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Emotion {
    Calm,
    Anxious,
    Angry,
}

impl Emotion {
    pub fn as_str(self) -> &'static str {
        match self {
            Emotion::Calm => "calm",
            Emotion::Anxious => "anxious",
            Emotion::Angry => "angry",
        }
    }

    fn parse(label: &str) -> Option<Emotion> {
        match label {
            "calm" => Some(Emotion::Calm),
            "anxious" => Some(Emotion::Anxious),
            "angry" => Some(Emotion::Angry),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EmotionReading {
    pub emotion: Emotion,
    /// The probability of `emotion`, 0 to 1.
    pub confidence: f32,
    /// The words that weighed most.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RudenessReading {
    pub rude: bool,
    /// The probability that the reply is rude, 0 to 1.
    pub probability: f32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<String>,
}

/// How sure the rudeness model must be before a reply is called rude: a false alarm on an
/// ordinary reply costs the employee's trust in every later hint.
const RUDE_THRESHOLD: f32 = 0.6;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cue {
    Anger,
    Anxiety,
    Calm,
    Rude,
    Negator,
    Intensifier,
}

impl Cue {
    fn parse(name: &str) -> Option<Cue> {
        match name {
            "anger" => Some(Cue::Anger),
            "anxiety" => Some(Cue::Anxiety),
            "calm_positive" => Some(Cue::Calm),
            "rude" => Some(Cue::Rude),
            "negator" => Some(Cue::Negator),
            "intensifier" => Some(Cue::Intensifier),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Cue::Anger => "anger",
            Cue::Anxiety => "anxiety",
            Cue::Calm => "calm",
            Cue::Rude => "rude",
            Cue::Negator => "negator",
            Cue::Intensifier => "intensifier",
        }
    }
}

struct Lexicon {
    automaton: AhoCorasick,
    /// Per pattern: its cue, weight, and whether it is Latin (then it must stand alone).
    entries: Vec<(Cue, f32, bool)>,
}

impl Lexicon {
    fn parse(source: &str) -> Lexicon {
        let mut patterns: Vec<String> = Vec::new();
        let mut entries = Vec::new();
        for line in source.lines().skip(1) {
            let fields: Vec<&str> = line.split('\t').collect();
            let [_lang, category, weight, term] = fields[..] else {
                continue;
            };
            let (Some(cue), Ok(weight)) = (Cue::parse(category.trim()), weight.trim().parse())
            else {
                continue;
            };
            let term = text::normalise_simplified(term.trim());
            if term.is_empty() || patterns.contains(&term) {
                continue;
            }
            let latin = !term.chars().any(text::is_han) && term.chars().any(char::is_alphabetic);
            patterns.push(term);
            entries.push((cue, weight, latin));
        }
        let automaton = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&patterns)
            .expect("the lexicon's terms make an automaton");
        Lexicon { automaton, entries }
    }

    /// The cue features of a normalised text.
    fn cues(&self, normal: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut weight = [0.0f32; 6];
        let mut last_modifier: Option<(Cue, usize)> = None;
        for m in self.automaton.find_iter(normal) {
            let (cue, w, latin) = self.entries[m.pattern().as_usize()];
            if latin && !stands_alone(normal, m.start(), m.end()) {
                continue;
            }
            match cue {
                Cue::Negator | Cue::Intensifier => last_modifier = Some((cue, m.end())),
                _ => {
                    let near = last_modifier
                        .filter(|(_, end)| m.start() >= *end && m.start() - end <= 6)
                        .map(|(c, _)| c);
                    match near {
                        Some(Cue::Negator) => out.push(format!("cue:not_{}", cue.name())),
                        Some(Cue::Intensifier) => {
                            out.push(format!("cue:very_{}", cue.name()));
                            weight[cue as usize] += w;
                        }
                        _ => {}
                    }
                    if near != Some(Cue::Negator) {
                        weight[cue as usize] += w;
                        out.push(format!("cue:{}", cue.name()));
                    }
                }
            }
        }
        for cue in [Cue::Anger, Cue::Anxiety, Cue::Calm, Cue::Rude] {
            let w = weight[cue as usize];
            if w >= 2.0 {
                out.push(format!("cue:{}_2", cue.name()));
            }
            if w >= 4.0 {
                out.push(format!("cue:{}_4", cue.name()));
            }
        }
        out
    }
}

fn stands_alone(text: &str, start: usize, end: usize) -> bool {
    let before = text[..start].chars().next_back();
    let after = text[end..].chars().next();
    !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
}

/// Cues in the raw text that normalising would erase: capitals, runs of `!` and `?`.
fn shape_cues(raw: &str) -> Vec<String> {
    let mut out = Vec::new();
    let letters: Vec<char> = raw.chars().filter(|c| c.is_ascii_alphabetic()).collect();
    let upper = letters.iter().filter(|c| c.is_ascii_uppercase()).count();
    let shouted_words = raw
        .split(|c: char| !c.is_ascii_alphabetic())
        .filter(|w| w.len() >= 3 && w.chars().all(|c| c.is_ascii_uppercase()))
        .count();
    if shouted_words >= 2 && upper * 10 >= letters.len() * 6 {
        out.push("cue:shout".to_string());
    }
    let mut run = 0;
    let mut longest_exclaim = 0;
    let mut longest_question = 0;
    let mut previous = ' ';
    for c in raw.chars() {
        let c = match c {
            '！' => '!',
            '？' => '?',
            c => c,
        };
        if (c == '!' || c == '?') && (previous == '!' || previous == '?') {
            run += 1;
        } else {
            run = 1;
        }
        if c == '!' {
            longest_exclaim = longest_exclaim.max(run);
        }
        if c == '?' {
            longest_question = longest_question.max(run);
        }
        previous = c;
    }
    if longest_exclaim >= 2 {
        out.push("cue:exclaim".to_string());
    }
    if longest_question >= 3 {
        out.push("cue:questions".to_string());
    }
    out
}

pub struct Models {
    emotion: Model,
    rudeness: Model,
    lexicon: Lexicon,
}

static MODELS: OnceLock<Models> = OnceLock::new();

/// The models trained on the starter sets, once.
pub fn models() -> &'static Models {
    MODELS.get_or_init(Models::starter)
}

fn examples(source: &str, lexicon: &Lexicon) -> Vec<Example> {
    classify::parse_tsv(source, 1)
        .expect("the starter set parses")
        .into_iter()
        .skip_while(|(e, _)| e.label == "label")
        .map(|(mut example, _)| {
            example.meta = cues_of(lexicon, &example.text);
            example
        })
        .collect()
}

fn cues_of(lexicon: &Lexicon, raw: &str) -> Vec<String> {
    let normal = text::normalise_simplified(raw);
    let mut cues = lexicon.cues(&normal);
    cues.extend(shape_cues(raw));
    cues
}

impl Models {
    fn starter() -> Models {
        let lexicon = Lexicon::parse(LEXICON);
        let options = TrainOptions {
            epochs: 15,
            ..TrainOptions::default()
        };
        Models {
            emotion: Model::train(&examples(STARTER_EMOTION, &lexicon), options),
            rudeness: Model::train(&examples(STARTER_RUDENESS, &lexicon), options),
            lexicon,
        }
    }

    fn features(&self, raw: &str) -> Vec<crate::routing::text::Feature> {
        classify::features_of(raw, &cues_of(&self.lexicon, raw))
    }

    /// How the writer of a customer's message feels.
    pub fn read(&self, message: &str) -> EmotionReading {
        let prediction = self.emotion.predict(&self.features(message));
        EmotionReading {
            emotion: Emotion::parse(&prediction.label).unwrap_or(Emotion::Calm),
            confidence: prediction.confidence,
            evidence: prediction.evidence,
        }
    }

    /// Whether an employee's reply reads as rude.
    pub fn rudeness(&self, reply: &str) -> RudenessReading {
        let prediction = self.rudeness.predict(&self.features(reply));
        let probability = prediction
            .ranked
            .iter()
            .find(|(label, _)| label == "rude")
            .map_or(0.0, |(_, p)| *p);
        RudenessReading {
            rude: probability >= RUDE_THRESHOLD,
            probability,
            evidence: if probability >= RUDE_THRESHOLD {
                prediction.evidence
            } else {
                Vec::new()
            },
        }
    }
}

/// Precision and recall of one label on a held-out set, per language.
#[derive(Debug, Clone, Serialize)]
pub struct LabelScores {
    pub lang: Language,
    pub label: &'static str,
    pub examples: usize,
    pub accuracy: f32,
    pub precision: f32,
    pub recall: f32,
}

fn score(
    lang: Language,
    label: &'static str,
    pairs: &[(bool, bool, bool)], // (correct overall, predicted label, actually label)
) -> LabelScores {
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f32 / b as f32 };
    let hits = pairs.iter().filter(|(_, p, a)| *p && *a).count();
    LabelScores {
        lang,
        label,
        examples: pairs.len(),
        accuracy: ratio(pairs.iter().filter(|(c, _, _)| *c).count(), pairs.len()),
        precision: ratio(hits, pairs.iter().filter(|(_, p, _)| *p).count()),
        recall: ratio(hits, pairs.iter().filter(|(_, _, a)| *a).count()),
    }
}

/// Scores "angry" on `eval.tsv` and "rude" on `rudeness_eval.tsv` of a held-out directory.
pub fn evaluate(dir: &std::path::Path) -> Result<Vec<LabelScores>, String> {
    let models = models();
    let mut out = Vec::new();
    for (file, label) in [("eval.tsv", "angry"), ("rudeness_eval.tsv", "rude")] {
        let source = std::fs::read_to_string(dir.join(file)).map_err(|e| format!("{file}: {e}"))?;
        for lang in [Language::Zh, Language::En] {
            let mut pairs = Vec::new();
            for (example, fields) in classify::parse_tsv(&source, 1)? {
                if example.label == "label" || fields[0] != lang.as_str() {
                    continue;
                }
                let guess = if label == "rude" {
                    if models.rudeness(&example.text).rude {
                        "rude"
                    } else {
                        "polite"
                    }
                } else {
                    models.read(&example.text).emotion.as_str()
                };
                pairs.push((
                    guess == example.label,
                    guess == label,
                    example.label == label,
                ));
            }
            out.push(score(lang, label, &pairs));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_cues_see_shouting_and_punctuation() {
        assert!(shape_cues("THIS IS UNACCEPTABLE").contains(&"cue:shout".to_string()));
        assert!(!shape_cues("I use NFC and USB").contains(&"cue:shout".to_string()));
        assert!(shape_cues("为什么还没到！！").contains(&"cue:exclaim".to_string()));
        assert!(shape_cues("人呢？？？").contains(&"cue:questions".to_string()));
    }

    #[test]
    fn clear_cases_read_as_expected() {
        let m = models();
        assert_eq!(
            m.read("你们这是什么垃圾服务，气死我了，我要投诉！！")
                .emotion,
            Emotion::Angry
        );
        assert_eq!(
            m.read("This is ridiculous, third time I ask. I want a refund NOW!!")
                .emotion,
            Emotion::Angry
        );
        assert_eq!(m.read("请问发票怎么开？谢谢").emotion, Emotion::Calm);
        assert_eq!(
            m.read("Hi, could you tell me when my order ships? Thanks")
                .emotion,
            Emotion::Calm
        );
        assert!(m.rudeness("你自己不会看说明书吗？跟你说了多少遍了").rude);
        assert!(
            !m.rudeness("您好，已为您处理退款，预计三个工作日到账。")
                .rude
        );
    }

    /// Prints the held-out scores `allhands eval` prints, and holds a floor.
    #[test]
    fn held_out_scores() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/emotion");
        let scores = evaluate(&dir).unwrap();
        for s in &scores {
            println!(
                "{} {:>5}: n={} accuracy {:.2} precision {:.2} recall {:.2}",
                s.lang.as_str(),
                s.label,
                s.examples,
                s.accuracy,
                s.precision,
                s.recall
            );
        }
        for s in scores {
            assert!(s.precision >= 0.6 && s.recall >= 0.6, "{s:?}");
        }
    }
}
