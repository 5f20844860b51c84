//! A multinomial logistic-regression classifier over hashed text features, trained with AdaGrad
//! and corrected online: the model behind a conversation's type (and its learned part of urgency).
//!
//! Training is deterministic (a fixed-seed shuffle), so the same labelled examples always give
//! the same model: the examples are what is stored, and the model is rebuilt from them.

use crate::routing::text::{self, Feature};

/// Hash buckets per label. 2^18 keeps collisions rare for an organisation's vocabulary while a
/// model of six labels stays near 12 MB with its AdaGrad state.
pub const BUCKETS: usize = 1 << 18;

/// A labelled text, as shipped in the starter set or recorded when an employee labels one.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub label: String,
    pub text: String,
    /// Features beside the text (channel, customer tier...), see `text::meta`.
    pub meta: Vec<String>,
}

impl Example {
    pub fn features(&self) -> Vec<Feature> {
        features_of(&self.text, &self.meta)
    }
}

pub fn features_of(text_body: &str, meta: &[String]) -> Vec<Feature> {
    let mut features = text::features(text_body);
    features.extend(meta.iter().map(|m| text::meta(m)));
    features
}

#[derive(Debug, Clone, Copy)]
pub struct TrainOptions {
    pub epochs: usize,
    pub learning_rate: f32,
    /// L2 penalty, applied to the weights an example touches.
    pub l2: f32,
    pub seed: u64,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            epochs: 12,
            learning_rate: 0.4,
            l2: 1e-6,
            seed: 0x5eed_a114_a4d5,
        }
    }
}

#[derive(Clone)]
pub struct Model {
    labels: Vec<String>,
    /// Bucket-major: the weights of one feature for every label are adjacent.
    weights: Vec<f32>,
    squared_gradients: Vec<f32>,
    bias: Vec<f32>,
    bias_squared: Vec<f32>,
    options: TrainOptions,
    /// Examples learned from, counting online corrections.
    pub examples_seen: u64,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("labels", &self.labels)
            .field("examples_seen", &self.examples_seen)
            .finish()
    }
}

/// What the model says about one text.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Prediction {
    pub label: String,
    /// The probability of `label`, 0 to 1.
    pub confidence: f32,
    /// How far `label` is ahead of the runner-up; small margins are worth a human's look.
    pub margin: f32,
    /// Every label with its probability, best first.
    pub ranked: Vec<(String, f32)>,
    /// The words that weighed most for `label`.
    pub evidence: Vec<String>,
}

impl Model {
    /// A model that knows `labels` and has learned nothing.
    pub fn empty(labels: Vec<String>, options: TrainOptions) -> Model {
        let n = labels.len();
        Model {
            labels,
            weights: vec![0.0; BUCKETS * n],
            squared_gradients: vec![0.0; BUCKETS * n],
            bias: vec![0.0; n],
            bias_squared: vec![0.0; n],
            options,
            examples_seen: 0,
        }
    }

    /// Trains on `examples`; the labels are those the examples use, in first-seen order.
    pub fn train(examples: &[Example], options: TrainOptions) -> Model {
        let mut labels: Vec<String> = Vec::new();
        for example in examples {
            if !labels.contains(&example.label) {
                labels.push(example.label.clone());
            }
        }
        let mut model = Model::empty(labels, options);
        let prepared: Vec<(Vec<u64>, usize)> = examples
            .iter()
            .map(|e| {
                (
                    e.features().iter().map(|f| f.hash).collect(),
                    model.label_index(&e.label).expect("label was collected"),
                )
            })
            .collect();
        let mut order: Vec<usize> = (0..prepared.len()).collect();
        let mut random = XorShift(options.seed | 1);
        for _ in 0..options.epochs {
            random.shuffle(&mut order);
            for &i in &order {
                let (features, label) = &prepared[i];
                model.step(features, *label);
            }
        }
        model.examples_seen = examples.len() as u64;
        model
    }

    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    fn label_index(&self, label: &str) -> Option<usize> {
        self.labels.iter().position(|l| l == label)
    }

    fn bucket(hash: u64) -> usize {
        (hash % BUCKETS as u64) as usize
    }

    fn probabilities(&self, features: &[u64]) -> Vec<f32> {
        let n = self.labels.len();
        let scale = scale(features.len());
        let mut scores = self.bias.clone();
        for &hash in features {
            let row = &self.weights[Self::bucket(hash) * n..][..n];
            for (score, weight) in scores.iter_mut().zip(row) {
                *score += weight * scale;
            }
        }
        softmax(&mut scores);
        scores
    }

    /// One AdaGrad step of the cross-entropy loss on one example.
    fn step(&mut self, features: &[u64], label: usize) {
        let n = self.labels.len();
        let probabilities = self.probabilities(features);
        let scale = scale(features.len());
        let TrainOptions {
            learning_rate, l2, ..
        } = self.options;
        for (l, probability) in probabilities.iter().enumerate() {
            let error = probability - if l == label { 1.0 } else { 0.0 };
            let g = error;
            self.bias_squared[l] += g * g;
            self.bias[l] -= learning_rate * g / (self.bias_squared[l].sqrt() + 1e-6);
            for &hash in features {
                let at = Self::bucket(hash) * n + l;
                let g = error * scale + l2 * self.weights[at];
                self.squared_gradients[at] += g * g;
                self.weights[at] -= learning_rate * g / (self.squared_gradients[at].sqrt() + 1e-6);
            }
        }
    }

    pub fn predict(&self, features: &[Feature]) -> Prediction {
        let hashes: Vec<u64> = features.iter().map(|f| f.hash).collect();
        let probabilities = self.probabilities(&hashes);
        let mut ranked: Vec<(String, f32)> = self
            .labels
            .iter()
            .cloned()
            .zip(probabilities.iter().copied())
            .collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        let (label, confidence) = ranked
            .first()
            .cloned()
            .unwrap_or_else(|| (String::new(), 0.0));
        let margin = confidence - ranked.get(1).map_or(0.0, |r| r.1);
        let evidence = self.evidence(features, &label);
        Prediction {
            label,
            confidence,
            margin,
            ranked,
            evidence,
        }
    }

    /// The readable features (words, Chinese 2- and 3-grams) that pushed hardest towards `label`
    /// over the other labels' average.
    fn evidence(&self, features: &[Feature], label: &str) -> Vec<String> {
        let Some(target) = self.label_index(label) else {
            return Vec::new();
        };
        let n = self.labels.len();
        let mut weighed: Vec<(f32, &str)> = features
            .iter()
            .filter(|f| readable(&f.surface))
            .map(|f| {
                let row = &self.weights[Self::bucket(f.hash) * n..][..n];
                let others = (row.iter().sum::<f32>() - row[target]) / (n.max(2) - 1) as f32;
                (row[target] - others, f.surface.as_str())
            })
            .filter(|(push, _)| *push > 0.0)
            .collect();
        weighed.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut chosen: Vec<String> = Vec::new();
        for (_, surface) in weighed {
            // "发票" and "开发票" say the same thing twice.
            if chosen
                .iter()
                .any(|c| c.contains(surface) || surface.contains(c.as_str()))
            {
                continue;
            }
            chosen.push(surface.to_string());
            if chosen.len() == 5 {
                break;
            }
        }
        chosen
    }

    /// Learns from an employee's label: adds the label if it is new, then steps on the example
    /// until the model agrees (at most a few steps, so one correction cannot erase the rest).
    pub fn correct(&mut self, features: &[Feature], label: &str) {
        let index = match self.label_index(label) {
            Some(index) => index,
            None => self.add_label(label),
        };
        let hashes: Vec<u64> = features.iter().map(|f| f.hash).collect();
        for _ in 0..4 {
            self.step(&hashes, index);
            let probabilities = self.probabilities(&hashes);
            if probabilities[index] >= 0.6 {
                break;
            }
        }
        self.examples_seen += 1;
    }

    fn add_label(&mut self, label: &str) -> usize {
        let old = self.labels.len();
        let widen = |values: &[f32]| {
            let mut out = vec![0.0; BUCKETS * (old + 1)];
            for bucket in 0..BUCKETS {
                out[bucket * (old + 1)..][..old].copy_from_slice(&values[bucket * old..][..old]);
            }
            out
        };
        self.weights = widen(&self.weights);
        self.squared_gradients = widen(&self.squared_gradients);
        self.bias.push(0.0);
        self.bias_squared.push(0.0);
        self.labels.push(label.to_string());
        old
    }
}

fn readable(surface: &str) -> bool {
    let chars = surface.chars().count();
    if surface.chars().any(text::is_han) {
        chars >= 2
    } else {
        chars >= 3 && !surface.contains(['<', '>', '~']) && surface.chars().any(char::is_alphabetic)
    }
}

/// Longer texts have more features; scaling by 1/sqrt(n) keeps their scores comparable.
fn scale(features: usize) -> f32 {
    1.0 / (features.max(1) as f32).sqrt()
}

fn softmax(scores: &mut [f32]) {
    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for s in scores.iter_mut() {
        *s = (*s - max).exp();
        sum += *s;
    }
    for s in scores.iter_mut() {
        *s /= sum;
    }
}

/// xorshift64: a shuffle that is the same on every platform and every version of every crate.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            items.swap(i, j);
        }
    }
}

/// Parses the `label<TAB>...<TAB>text` lines of a labelled set: `column` picks the label column,
/// the text is the last column.
pub fn parse_tsv(source: &str, column: usize) -> Result<Vec<(Example, Vec<String>)>, String> {
    let mut out = Vec::new();
    for (n, line) in source.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        if fields.len() < 2 || column + 1 >= fields.len() {
            return Err(format!("line {}: expected tab-separated fields", n + 1));
        }
        let text = fields[fields.len() - 1].trim();
        out.push((
            Example {
                label: fields[column].trim().to_string(),
                text: text.to_string(),
                meta: Vec::new(),
            },
            fields[..fields.len() - 1]
                .iter()
                .map(|f| f.trim().to_string())
                .collect(),
        ));
    }
    Ok(out)
}

/// How well a model labels a set it was not trained on.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Evaluation {
    pub examples: usize,
    pub accuracy: f32,
    pub macro_f1: f32,
    /// (label, precision, recall, F1)
    pub per_label: Vec<(String, f32, f32, f32)>,
}

pub fn evaluate(model: &Model, examples: &[Example]) -> Evaluation {
    let labels = model.labels().to_vec();
    let mut true_positive = vec![0usize; labels.len()];
    let mut predicted = vec![0usize; labels.len()];
    let mut actual = vec![0usize; labels.len()];
    let mut correct = 0;
    for example in examples {
        let guess = model.predict(&example.features()).label;
        let guess_at = labels.iter().position(|l| *l == guess);
        let actual_at = labels.iter().position(|l| *l == example.label);
        if let Some(g) = guess_at {
            predicted[g] += 1;
        }
        if let Some(a) = actual_at {
            actual[a] += 1;
        }
        if guess == example.label {
            correct += 1;
            if let Some(g) = guess_at {
                true_positive[g] += 1;
            }
        }
    }
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f32 / b as f32 };
    let per_label: Vec<(String, f32, f32, f32)> = labels
        .iter()
        .enumerate()
        .map(|(i, label)| {
            let precision = ratio(true_positive[i], predicted[i]);
            let recall = ratio(true_positive[i], actual[i]);
            let f1 = if precision + recall == 0.0 {
                0.0
            } else {
                2.0 * precision * recall / (precision + recall)
            };
            (label.clone(), precision, recall, f1)
        })
        .collect();
    Evaluation {
        examples: examples.len(),
        accuracy: ratio(correct, examples.len()),
        macro_f1: per_label.iter().map(|l| l.3).sum::<f32>() / per_label.len().max(1) as f32,
        per_label,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(label: &str, text: &str) -> Example {
        Example {
            label: label.into(),
            text: text.into(),
            meta: Vec::new(),
        }
    }

    fn toy() -> Vec<Example> {
        vec![
            example("billing", "我要开发票"),
            example("billing", "发票抬头写错了"),
            example("billing", "I need an invoice for last month"),
            example("billing", "you charged my card twice"),
            example("technical", "app 登录不了"),
            example("technical", "路由器连不上网"),
            example("technical", "the app crashes when I log in"),
            example("technical", "camera will not connect to wifi"),
        ]
    }

    #[test]
    fn learns_and_explains() {
        let model = Model::train(&toy(), TrainOptions::default());
        let p = model.predict(&features_of("发票什么时候能开", &[]));
        assert_eq!(p.label, "billing");
        assert!(p.confidence > 0.5 && p.margin > 0.0, "{p:?}");
        assert!(p.evidence.iter().any(|e| e.contains("发票")), "{p:?}");
        let p = model.predict(&features_of("my app crashes", &[]));
        assert_eq!(p.label, "technical", "{p:?}");
        let total: f32 = p.ranked.iter().map(|r| r.1).sum();
        assert!((total - 1.0).abs() < 1e-4);
    }

    #[test]
    fn training_is_deterministic() {
        let a = Model::train(&toy(), TrainOptions::default());
        let b = Model::train(&toy(), TrainOptions::default());
        let f = features_of("charged twice for the router", &[]);
        assert_eq!(a.predict(&f), b.predict(&f));
    }

    #[test]
    fn a_correction_flips_a_near_duplicate_and_can_add_a_label() {
        let mut model = Model::train(&toy(), TrainOptions::default());
        let text = "路由器发票开错了";
        let before = model.predict(&features_of(text, &[]));
        let wanted = if before.label == "billing" {
            "technical"
        } else {
            "billing"
        };
        let mut corrections = 0;
        while model.predict(&features_of("路由器的发票开错了", &[])).label != wanted {
            model.correct(&features_of(text, &[]), wanted);
            corrections += 1;
            assert!(corrections <= 3, "still not learned after 3 corrections");
        }
        model.correct(
            &features_of("我想买 100 台路由器, 有折扣吗", &[]),
            "pre_sales",
        );
        assert_eq!(model.labels().len(), 3);
        assert_eq!(
            model
                .predict(&features_of("想买100台路由器有折扣吗", &[]))
                .label,
            "pre_sales"
        );
    }

    #[test]
    fn meta_features_count() {
        let mut examples = toy();
        for e in &mut examples {
            e.meta = vec![format!(
                "channel={}",
                if e.label == "billing" { "email" } else { "web" }
            )];
        }
        let model = Model::train(&examples, TrainOptions::default());
        let p = model.predict(&features_of("hello", &["channel=email".into()]));
        assert_eq!(p.label, "billing");
    }

    #[test]
    fn tsv_parsing_reports_bad_lines() {
        let parsed = parse_tsv("billing\tnormal\tzh\t开发票\n", 0).unwrap();
        assert_eq!(parsed[0].0.label, "billing");
        assert_eq!(parsed[0].0.text, "开发票");
        assert_eq!(parsed[0].1, vec!["billing", "normal", "zh"]);
        assert!(parse_tsv("no tabs here", 0).is_err());
    }
}
