//! How urgent a question is: visible rules (legal threats, safety, outages, time pressure), a
//! learned model, the customer's tier and how often they came back, combined into one level
//! with the reasons that raised it, so a supervisor can see why.

use aho_corasick::{AhoCorasick, MatchKind};
use serde::{Deserialize, Serialize};

use crate::routing::classify::Prediction;
use crate::routing::text;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Urgency {
    Low,
    Normal,
    High,
    Urgent,
}

impl Urgency {
    pub const ALL: [Urgency; 4] = [
        Urgency::Low,
        Urgency::Normal,
        Urgency::High,
        Urgency::Urgent,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Urgency::Low => "low",
            Urgency::Normal => "normal",
            Urgency::High => "high",
            Urgency::Urgent => "urgent",
        }
    }

    pub fn parse(value: &str) -> Option<Urgency> {
        Urgency::ALL.into_iter().find(|u| u.as_str() == value)
    }

    fn raised(self) -> Urgency {
        match self {
            Urgency::Low => Urgency::Normal,
            Urgency::Normal => Urgency::High,
            other => other,
        }
    }
}

/// Words that set a level on their own. Project-written; organisations add their own later.
const RULES: &[(Urgency, &[&str])] = &[
    (
        Urgency::Urgent,
        &[
            "12315",
            "消协",
            "消费者协会",
            "工商局",
            "律师",
            "起诉",
            "法院",
            "曝光",
            "媒体",
            "记者",
            "报警",
            "警察",
            "诈骗",
            "骗子",
            "冒烟",
            "起火",
            "着火",
            "漏电",
            "触电",
            "爆炸",
            "烧焦",
            "宕机",
            "瘫痪",
            "所有用户",
            "全部用户",
            "数据丢失",
            "lawyer",
            "attorney",
            "sue",
            "lawsuit",
            "court",
            "police",
            "fraud",
            "scam",
            "journalist",
            "press",
            "smoke",
            "smokes",
            "smoking",
            "fire",
            "burning",
            "sparks",
            "electric shock",
            "explode",
            "exploded",
            "outage",
            "production down",
            "all users",
            "data loss",
            "lost all data",
        ],
    ),
    (
        Urgency::High,
        &[
            "尽快",
            "马上",
            "立刻",
            "立即",
            "今天",
            "急",
            "紧急",
            "第三次",
            "好几次",
            "又一次",
            "一直没人",
            "还没解决",
            "没人管",
            "损失",
            "用不了",
            "无法使用",
            "耽误",
            "投诉",
            "asap",
            "urgent",
            "urgently",
            "immediately",
            "right now",
            "today",
            "third time",
            "again and again",
            "still not",
            "still no",
            "blocked",
            "losing money",
            "deadline",
            "complaint",
            "unacceptable",
            "nobody answered",
            "escalate",
        ],
    ),
    (
        Urgency::Low,
        &[
            "随便问问",
            "不急",
            "有空",
            "顺便问",
            "好奇",
            "just wondering",
            "no rush",
            "curious",
            "whenever",
            "when you have time",
            "not urgent",
        ],
    ),
];

/// The rule words in one automaton, each with its level.
pub struct Rules {
    automaton: AhoCorasick,
    patterns: Vec<(Urgency, &'static str)>,
}

impl Rules {
    pub fn builtin() -> Rules {
        let patterns: Vec<(Urgency, &'static str)> = RULES
            .iter()
            .flat_map(|(level, words)| words.iter().map(move |w| (*level, *w)))
            .collect();
        let automaton = AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .build(patterns.iter().map(|(_, w)| w))
            .expect("the built-in urgency words form an automaton");
        Rules {
            automaton,
            patterns,
        }
    }

    /// Rule words found in normalised text; English words only as whole words ("sue" is not in
    /// "issue").
    pub fn matches(&self, normalised: &str) -> Vec<(Urgency, &'static str)> {
        let mut found: Vec<(Urgency, &'static str)> = Vec::new();
        for m in self.automaton.find_overlapping_iter(normalised) {
            let (level, word) = self.patterns[m.pattern().as_usize()];
            let ascii_word = word.is_ascii();
            let boundary =
                |c: Option<char>| c.is_none_or(|c| !c.is_alphanumeric() || text::is_han(c));
            if ascii_word
                && !(boundary(normalised[..m.start()].chars().next_back())
                    && boundary(normalised[m.end()..].chars().next()))
            {
                continue;
            }
            if !found.iter().any(|(_, w)| *w == word) {
                found.push((level, word));
            }
        }
        found
    }
}

impl std::fmt::Debug for Rules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Rules({} words)", self.patterns.len())
    }
}

/// What urgency is read from, besides the text.
#[derive(Debug, Clone, Copy, Default)]
pub struct Context {
    /// 0 for ordinary customers; higher tiers are more important.
    pub vip_tier: u8,
    /// The customer's other conversations started in the last day.
    pub recent_contacts: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct UrgencyReading {
    pub level: Urgency,
    /// Why, in the order the signals were weighed: `rule:律师`, `model:high 0.71`, `vip:2`,
    /// `repeat:3`.
    pub reasons: Vec<String>,
}

/// Below this the learned model's opinion is not used.
const MODEL_CONFIDENCE: f32 = 0.55;

/// Combines the signals: the strongest rule, else the learned model when confident, else
/// normal; a calm word lowers only when nothing raised; a VIP or a customer back for the third
/// time in a day raises one level.
pub fn read(
    normalised: &str,
    rules: &Rules,
    model: Option<&Prediction>,
    context: Context,
) -> UrgencyReading {
    let mut reasons = Vec::new();
    let hits = rules.matches(normalised);
    let strongest = hits
        .iter()
        .filter(|(level, _)| *level > Urgency::Normal)
        .map(|(level, _)| *level)
        .max();
    for (level, word) in &hits {
        if *level > Urgency::Normal || strongest.is_none() {
            reasons.push(format!("rule:{word}"));
        }
    }
    let learned = model
        .filter(|p| p.confidence >= MODEL_CONFIDENCE)
        .and_then(|p| Urgency::parse(&p.label).map(|level| (level, p.confidence)));
    if let Some((level, confidence)) = learned {
        reasons.push(format!("model:{} {confidence:.2}", level.as_str()));
    }
    let calm = hits.iter().any(|(level, _)| *level == Urgency::Low);
    let mut level = match (strongest, learned) {
        (Some(rule), Some((model, _))) => rule.max(model),
        (Some(rule), None) => rule,
        (None, Some((model, _))) => model,
        (None, None) if calm => Urgency::Low,
        (None, None) => Urgency::Normal,
    };
    if context.vip_tier > 0 {
        reasons.push(format!("vip:{}", context.vip_tier));
        level = level.raised();
    }
    if context.recent_contacts >= 2 {
        reasons.push(format!("repeat:{}", context.recent_contacts));
        level = level.raised();
    }
    UrgencyReading { level, reasons }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(text_body: &str, context: Context) -> UrgencyReading {
        read(
            &text::normalise(text_body),
            &Rules::builtin(),
            None,
            context,
        )
    }

    #[test]
    fn rules_set_levels_with_reasons() {
        let r = reading("再不处理我就打12315投诉你们", Context::default());
        assert_eq!(r.level, Urgency::Urgent);
        assert!(r.reasons.contains(&"rule:12315".to_string()), "{r:?}");
        assert_eq!(
            reading("please fix it ASAP", Context::default()).level,
            Urgency::High
        );
        assert_eq!(
            reading("no rush, just wondering", Context::default()).level,
            Urgency::Low
        );
        assert_eq!(
            reading("hello there", Context::default()).level,
            Urgency::Normal
        );
    }

    #[test]
    fn english_words_match_whole_words_only() {
        // "issue" holds "sue", "firewall" holds "fire", "pressure" holds "press".
        let r = reading(
            "I have an issue with the firewall pressure",
            Context::default(),
        );
        assert_eq!(r.level, Urgency::Normal, "{r:?}");
        assert_eq!(
            reading("I will sue you", Context::default()).level,
            Urgency::Urgent
        );
        assert_eq!(
            reading("路由器冒烟了smoke", Context::default()).level,
            Urgency::Urgent
        );
    }

    #[test]
    fn vip_and_repeat_contacts_raise_a_level() {
        let vip = Context {
            vip_tier: 2,
            recent_contacts: 0,
        };
        assert_eq!(reading("where is my parcel", vip).level, Urgency::High);
        let repeat = Context {
            vip_tier: 0,
            recent_contacts: 3,
        };
        let r = reading("where is my parcel", repeat);
        assert_eq!(r.level, Urgency::High);
        assert!(r.reasons.contains(&"repeat:3".to_string()));
        assert_eq!(reading("lawyer", vip).level, Urgency::Urgent);
    }

    #[test]
    fn a_confident_model_counts_and_an_unsure_one_does_not() {
        let prediction = |confidence: f32| Prediction {
            label: "high".into(),
            confidence,
            margin: 0.3,
            ranked: vec![],
            evidence: vec![],
        };
        let rules = Rules::builtin();
        let sure = read(
            "where is it",
            &rules,
            Some(&prediction(0.8)),
            Context::default(),
        );
        assert_eq!(sure.level, Urgency::High);
        let unsure = read(
            "where is it",
            &rules,
            Some(&prediction(0.4)),
            Context::default(),
        );
        assert_eq!(unsure.level, Urgency::Normal);
    }
}
