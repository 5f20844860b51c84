//! Routing: bringing each conversation to the employee best able to answer it.
//!
//! This part reads a question: `text` (normalisation, language, hashed features), `classify`
//! (the learned linear model, corrected online), `urgency` (rules, model, tier and history).
//! `Classifier::classify` is a pure function of the question and the models.

pub mod classify;
pub mod engine;
pub mod experiment;
pub mod live;
pub mod replay;
pub mod service;
pub mod simulate;
pub mod sla;
pub mod text;
pub mod urgency;

use serde::{Deserialize, Serialize};

use crate::channels::ChannelKind;
use classify::{Example, Model, Prediction, TrainOptions};
use text::Language;
use urgency::{Context, Rules, UrgencyReading};

/// The bilingual starter set the product ships: `type<TAB>urgency<TAB>lang<TAB>text`.
pub const STARTER_SET: &str = include_str!("starter_types.tsv");

/// What a question is read from.
#[derive(Debug, Clone)]
pub struct Question<'a> {
    pub text: &'a str,
    pub channel: ChannelKind,
    pub vip_tier: u8,
    /// The customer's other conversations started in the last day.
    pub recent_contacts: u32,
}

impl Question<'_> {
    /// Features beside the words: the channel and whether the customer is a VIP.
    fn meta(&self) -> Vec<String> {
        let mut meta = vec![format!("channel={}", self.channel.as_str())];
        if self.vip_tier > 0 {
            meta.push("vip".into());
        }
        meta
    }
}

/// What routing knows about a question.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Classification {
    /// The question's type (pre-sales, technical, ...) with its confidence.
    #[serde(rename = "type")]
    pub kind: Prediction,
    pub urgency: UrgencyReading,
    pub language: Language,
    /// The words that decided the type; matched against employees' skills.
    pub keywords: Vec<String>,
}

/// The type and urgency models with the urgency rules.
#[derive(Clone, Debug)]
pub struct Classifier {
    pub types: Model,
    pub urgency: Model,
    rules: std::sync::Arc<Rules>,
}

/// A labelled question for training: its type and urgency (either may be unknown).
#[derive(Debug, Clone)]
pub struct LabelledQuestion {
    pub text: String,
    pub kind: Option<String>,
    pub urgency: Option<String>,
    pub meta: Vec<String>,
}

/// The starter set's questions.
pub fn starter_questions() -> Vec<LabelledQuestion> {
    classify::parse_tsv(STARTER_SET, 0)
        .expect("the starter set is well formed (tested)")
        .into_iter()
        .map(|(example, fields)| LabelledQuestion {
            text: example.text,
            kind: Some(example.label),
            urgency: fields.get(1).cloned(),
            meta: Vec::new(),
        })
        .collect()
}

impl Classifier {
    /// Trains both models on `questions` (the starter set, then an organisation's own labels).
    pub fn train(questions: &[LabelledQuestion]) -> Classifier {
        let examples = |pick: fn(&LabelledQuestion) -> Option<&String>| -> Vec<Example> {
            questions
                .iter()
                .filter_map(|q| {
                    pick(q).map(|label| Example {
                        label: label.clone(),
                        text: q.text.clone(),
                        meta: q.meta.clone(),
                    })
                })
                .collect()
        };
        Classifier {
            types: Model::train(&examples(|q| q.kind.as_ref()), TrainOptions::default()),
            urgency: Model::train(&examples(|q| q.urgency.as_ref()), TrainOptions::default()),
            rules: std::sync::Arc::new(Rules::builtin()),
        }
    }

    /// The classifier as shipped, trained on the starter set.
    pub fn starter() -> Classifier {
        Classifier::train(&starter_questions())
    }

    pub fn classify(&self, question: &Question<'_>) -> Classification {
        let meta = question.meta();
        let features = classify::features_of(question.text, &meta);
        let kind = self.types.predict(&features);
        let learned_urgency = self.urgency.predict(&features);
        let urgency = urgency::read(
            &text::normalise(question.text),
            &self.rules,
            Some(&learned_urgency),
            Context {
                vip_tier: question.vip_tier,
                recent_contacts: question.recent_contacts,
            },
        );
        Classification {
            keywords: kind.evidence.clone(),
            kind,
            urgency,
            language: text::language(question.text),
        }
    }

    /// An employee says what the question really was: both models learn from it at once.
    pub fn correct(&mut self, question: &Question<'_>, kind: Option<&str>, urgency: Option<&str>) {
        let features = classify::features_of(question.text, &question.meta());
        if let Some(kind) = kind {
            self.types.correct(&features, kind);
        }
        if let Some(urgency) = urgency {
            self.urgency.correct(&features, urgency);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use urgency::Urgency;

    const TYPES: [&str; 5] = [
        "pre_sales",
        "technical",
        "billing",
        "after_sales",
        "complaint",
    ];

    #[test]
    fn the_starter_set_is_well_formed_and_balanced() {
        let parsed = classify::parse_tsv(STARTER_SET, 0).unwrap();
        let mut seen = std::collections::HashSet::new();
        for (example, fields) in &parsed {
            assert_eq!(fields.len(), 3, "{example:?}");
            assert!(TYPES.contains(&fields[0].as_str()), "{fields:?}");
            assert!(Urgency::parse(&fields[1]).is_some(), "{fields:?}");
            assert!(["zh", "en"].contains(&fields[2].as_str()), "{fields:?}");
            assert!(
                seen.insert(example.text.clone()),
                "duplicate: {}",
                example.text
            );
        }
        for kind in TYPES {
            for (lang, at_least) in [("zh", 50), ("en", 30)] {
                let n = parsed
                    .iter()
                    .filter(|(_, f)| f[0] == kind && f[2] == lang)
                    .count();
                assert!(n >= at_least, "{kind}/{lang}: {n}");
            }
        }
    }

    #[test]
    fn reads_a_question_whole() {
        let classifier = Classifier::starter();
        let reading = classifier.classify(&Question {
            text: "上个月的发票还没开, 今天必须给我",
            channel: ChannelKind::Web,
            vip_tier: 0,
            recent_contacts: 0,
        });
        assert_eq!(reading.kind.label, "billing", "{reading:?}");
        assert_eq!(reading.language, Language::Zh);
        assert!(reading.urgency.level >= Urgency::High, "{reading:?}");
        assert!(!reading.keywords.is_empty());
        let reading = classifier.classify(&Question {
            text: "The camera smokes when I plug it in!",
            channel: ChannelKind::Email,
            vip_tier: 1,
            recent_contacts: 0,
        });
        assert_eq!(reading.urgency.level, Urgency::Urgent, "{reading:?}");
        assert_eq!(reading.language, Language::En);
    }
}

#[cfg(test)]
mod evaluation {
    use super::*;

    fn held_out() -> Vec<(Example, Vec<String>)> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/routing_types_eval.tsv"
        );
        classify::parse_tsv(&std::fs::read_to_string(path).unwrap(), 0).unwrap()
    }

    /// The shipped model, trained on the starter set only, labels questions written apart from
    /// it. Prints the figures; the floor guards against regressions.
    #[test]
    fn the_starter_model_labels_a_held_out_set() {
        let classifier = Classifier::starter();
        let set = held_out();
        for lang in ["zh", "en"] {
            let examples: Vec<Example> = set
                .iter()
                .filter(|(_, f)| f[2] == lang)
                .map(|(e, _)| e.clone())
                .collect();
            let types = classify::evaluate(&classifier.types, &examples);
            let urgency_examples: Vec<Example> = set
                .iter()
                .filter(|(_, f)| f[2] == lang)
                .map(|(e, f)| Example {
                    label: f[1].clone(),
                    ..e.clone()
                })
                .collect();
            let urgency = classify::evaluate(&classifier.urgency, &urgency_examples);
            println!(
                "{lang}: type accuracy {:.3} macro-F1 {:.3} ({} questions); urgency model accuracy {:.3}",
                types.accuracy, types.macro_f1, types.examples, urgency.accuracy
            );
            for (label, precision, recall, f1) in &types.per_label {
                println!("  {label}: precision {precision:.2} recall {recall:.2} F1 {f1:.2}");
            }
            assert!(types.accuracy >= 0.85, "{lang}: {types:?}");
        }
    }

    /// The combined urgency reading (rules, model, context) finds the urgent questions.
    #[test]
    fn urgent_questions_are_read_as_urgent_or_high() {
        let classifier = Classifier::starter();
        let set = held_out();
        let urgent: Vec<&Example> = set
            .iter()
            .filter(|(_, f)| f[1] == "urgent")
            .map(|(e, _)| e)
            .collect();
        let raised = urgent
            .iter()
            .filter(|e| {
                let reading = classifier.classify(&Question {
                    text: &e.text,
                    channel: ChannelKind::Web,
                    vip_tier: 0,
                    recent_contacts: 0,
                });
                reading.urgency.level >= urgency::Urgency::High
            })
            .count();
        let recall = raised as f32 / urgent.len() as f32;
        println!(
            "urgent questions read as high or urgent: {recall:.3} of {}",
            urgent.len()
        );
        assert!(recall >= 0.8, "{recall}");
    }
}
