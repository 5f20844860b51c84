//! Routing's stored state and the operations on it: each employee's routing settings and
//! presence, what routing knows of each conversation (its classification, every offer and why),
//! the labels employees gave (the classifier's training data), and the policy versions.
//!
//! The live router (`live.rs`) keeps the fast in-memory state; this is what survives a restart
//! and what the console reads.

use std::collections::BTreeMap;

use redb::{ReadTransaction, ReadableTable, WriteTransaction};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::auth::Caller;
use crate::auth::rbac::Permission;
use crate::clock::Millis;
use crate::conversations::Conversation;
use crate::error::{AppError, AppResult};
use crate::org::Employee;
use crate::routing::Classification;
use crate::routing::engine::{AgentProfile, Decision, Medium, Mode, Policy, Presence};
use crate::routing::urgency::Urgency;
use crate::storage::{Record, codec, get_record, next_id, tables};

/// The decisions kept per conversation (the newest); older ones are summarised by their count.
const DECISIONS_KEPT: usize = 50;
/// How much of the question is kept for relabelling and training.
const QUESTION_CHARS: usize = 2000;

/// An employee's routing settings and presence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AgentSettings {
    pub employee_id: u64,
    /// Skill name -> proficiency 1 (learning) to 5 (expert).
    #[serde(default)]
    pub skills: BTreeMap<String, u8>,
    /// Language codes spoken ("zh", "en").
    #[serde(default)]
    pub languages: Vec<String>,
    /// How many conversations of each medium at once.
    pub capacity: BTreeMap<Medium, u16>,
    pub mode: Mode,
    #[serde(default)]
    pub presence: Presence,
    #[serde(default)]
    pub presence_changed_at: Millis,
    #[serde(default)]
    pub updated_at: Millis,
}

impl Record for AgentSettings {
    const KIND: &'static str = "routing_agent";
}

impl AgentSettings {
    /// What an employee starts with: everyone can answer; they speak the console language
    /// they chose, and take five chats, ten e-mails or one call at once.
    pub fn default_for(employee: &Employee) -> AgentSettings {
        AgentSettings {
            employee_id: employee.id,
            skills: BTreeMap::new(),
            languages: vec![language_code(employee)],
            capacity: default_capacity(),
            mode: Mode::Dedicated,
            presence: Presence::Offline,
            presence_changed_at: 0,
            updated_at: 0,
        }
    }

    pub fn profile(&self, employee: &Employee) -> AgentProfile {
        AgentProfile {
            id: self.employee_id,
            skills: self.skills.clone(),
            languages: self.languages.clone(),
            capacity: self.capacity.clone(),
            mode: self.mode.clone(),
            location: Some(employee.location.trim().to_lowercase()).filter(|l| !l.is_empty()),
        }
    }
}

fn language_code(employee: &Employee) -> String {
    let tag = serde_json::to_value(employee.language)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    tag.split('-').next().unwrap_or("en").to_lowercase()
}

fn default_capacity() -> BTreeMap<Medium, u16> {
    BTreeMap::from([(Medium::Chat, 5), (Medium::Email, 10), (Medium::Call, 1)])
}

/// A change to an employee's routing settings (each field optional).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentSettingsPatch {
    pub skills: Option<BTreeMap<String, u8>>,
    pub languages: Option<Vec<String>>,
    pub capacity: Option<BTreeMap<Medium, u16>>,
    pub mode: Option<Mode>,
}

/// One offer and how it ended, with the scores that chose the employee.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DecisionRecord {
    pub offer_id: u64,
    pub employee_id: u64,
    pub offered_at: Millis,
    pub expires_at: Millis,
    /// `accepted`, `declined`, `expired`, `withdrawn`; absent while the offer is open.
    pub outcome: Option<String>,
    pub ended_at: Option<Millis>,
    pub decision: Decision,
}

/// An employee's correction of the classifier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Relabel {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub urgency: Option<Urgency>,
    pub by: u64,
    pub at: Millis,
}

/// What routing knows of one conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RoutingRecord {
    pub conversation_id: u64,
    /// The text that was classified (the customer's first words, shortened).
    pub question: String,
    pub classification: Option<Classification>,
    pub classified_at: Option<Millis>,
    #[serde(default)]
    pub relabel: Option<Relabel>,
    /// The newest decisions, oldest first.
    #[serde(default)]
    pub decisions: Vec<DecisionRecord>,
    /// How many decisions there were in all (older ones are not kept).
    #[serde(default)]
    pub decision_count: u64,
}

impl Record for RoutingRecord {
    const KIND: &'static str = "routing_record";
}

impl RoutingRecord {
    pub fn new(conversation_id: u64, question: &str) -> RoutingRecord {
        RoutingRecord {
            conversation_id,
            question: question.chars().take(QUESTION_CHARS).collect(),
            classification: None,
            classified_at: None,
            relabel: None,
            decisions: Vec::new(),
            decision_count: 0,
        }
    }

    /// The question's type as an employee corrected it, else as classified.
    pub fn kind(&self) -> Option<&str> {
        self.relabel
            .as_ref()
            .and_then(|r| r.kind.as_deref())
            .or(self.classification.as_ref().map(|c| c.kind.label.as_str()))
    }

    pub fn urgency(&self) -> Urgency {
        self.relabel
            .as_ref()
            .and_then(|r| r.urgency)
            .or(self.classification.as_ref().map(|c| c.urgency.level))
            .unwrap_or(Urgency::Normal)
    }

    pub fn push_decision(&mut self, decision: DecisionRecord) {
        self.decisions.push(decision);
        self.decision_count += 1;
        if self.decisions.len() > DECISIONS_KEPT {
            let surplus = self.decisions.len() - DECISIONS_KEPT;
            self.decisions.drain(..surplus);
        }
    }

    pub fn end_offer(&mut self, offer_id: u64, outcome: &str, at: Millis) {
        if let Some(d) = self
            .decisions
            .iter_mut()
            .rev()
            .find(|d| d.offer_id == offer_id && d.outcome.is_none())
        {
            d.outcome = Some(outcome.to_owned());
            d.ended_at = Some(at);
        }
    }
}

/// A label an employee gave a conversation: training data for the organisation's classifier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RoutingLabel {
    pub id: u64,
    pub conversation_id: u64,
    pub text: String,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub urgency: Option<Urgency>,
    pub by: u64,
    pub at: Millis,
}

impl Record for RoutingLabel {
    const KIND: &'static str = "routing_label";
}

/// One immutable version of the routing policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PolicyVersion {
    pub policy: Policy,
    #[serde(default)]
    pub note: String,
    pub created_by: Option<u64>,
    pub created_at: Millis,
}

impl Record for PolicyVersion {
    const KIND: &'static str = "routing_policy";
}

/// A new policy version: the current one with these changes.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPolicy {
    pub weights: Option<crate::routing::engine::Weights>,
    pub offer_timeout_ms: Option<BTreeMap<Medium, Millis>>,
    pub missed_offers_to_away: Option<u32>,
    #[serde(default)]
    pub note: String,
}

pub fn agent_settings(txn: &ReadTransaction, employee: &Employee) -> AppResult<AgentSettings> {
    Ok(
        get_record(&txn.open_table(tables::ROUTING_AGENTS)?, employee.id)?
            .unwrap_or_else(|| AgentSettings::default_for(employee)),
    )
}

fn agent_settings_in_write(
    txn: &WriteTransaction,
    employee: &Employee,
) -> AppResult<AgentSettings> {
    Ok(
        get_record(&txn.open_table(tables::ROUTING_AGENTS)?, employee.id)?
            .unwrap_or_else(|| AgentSettings::default_for(employee)),
    )
}

fn employee_in_write(txn: &WriteTransaction, id: u64) -> AppResult<Employee> {
    get_record(&txn.open_table(tables::EMPLOYEES)?, id)?
        .ok_or_else(|| AppError::not_found("employee"))
}

pub fn save_agent_settings(txn: &WriteTransaction, settings: &AgentSettings) -> AppResult<()> {
    txn.open_table(tables::ROUTING_AGENTS)?
        .insert(settings.employee_id, codec::encode(settings).as_slice())?;
    Ok(())
}

/// Every employee who is not disabled, with their routing settings.
pub fn all_agents(txn: &ReadTransaction) -> AppResult<Vec<(Employee, AgentSettings)>> {
    let employees: Vec<Employee> =
        crate::storage::all_records(&txn.open_table(tables::EMPLOYEES)?)?;
    let settings = txn.open_table(tables::ROUTING_AGENTS)?;
    let mut agents = Vec::new();
    for employee in employees.into_iter().filter(|e| !e.disabled) {
        let s = get_record(&settings, employee.id)?
            .unwrap_or_else(|| AgentSettings::default_for(&employee));
        agents.push((employee, s));
    }
    Ok(agents)
}

/// Checks and applies a change to an employee's routing settings.
pub fn update_agent(
    txn: &WriteTransaction,
    employee_id: u64,
    patch: &AgentSettingsPatch,
    now: Millis,
) -> AppResult<(Employee, AgentSettings)> {
    let employee = employee_in_write(txn, employee_id)?;
    let mut settings = agent_settings_in_write(txn, &employee)?;
    if let Some(skills) = &patch.skills {
        if skills.len() > 100 {
            return Err(AppError::field("skills", "at most 100 skills"));
        }
        let mut clean = BTreeMap::new();
        for (name, level) in skills {
            let name = skill_name(name)?;
            if !(1..=5).contains(level) {
                return Err(AppError::field(
                    "skills",
                    format!("the level of {name} must be 1 to 5"),
                ));
            }
            clean.insert(name, *level);
        }
        settings.skills = clean;
    }
    if let Some(languages) = &patch.languages {
        let mut clean: Vec<String> = Vec::new();
        for l in languages {
            let l = l.trim().to_lowercase();
            if l.is_empty()
                || l.len() > 16
                || !l.chars().all(|c| c.is_ascii_alphabetic() || c == '-')
            {
                return Err(AppError::field(
                    "languages",
                    format!("{l:?} is not a language code"),
                ));
            }
            if !clean.contains(&l) {
                clean.push(l);
            }
        }
        settings.languages = clean;
    }
    if let Some(capacity) = &patch.capacity {
        if capacity.values().any(|c| *c > 100) {
            return Err(AppError::field("capacity", "at most 100 at once"));
        }
        settings.capacity = capacity.clone();
    }
    if let Some(mode) = &patch.mode {
        if let Mode::PartTime {
            delay_ms,
            daily_cap,
        } = mode
            && (*delay_ms < 0 || *delay_ms > 7 * 24 * 3_600_000 || *daily_cap == 0)
        {
            return Err(AppError::field(
                "mode",
                "a part-time responder needs a delay of 0 to 7 days and a daily cap of at least 1",
            ));
        }
        settings.mode = mode.clone();
    }
    settings.updated_at = now;
    save_agent_settings(txn, &settings)?;
    Ok((employee, settings))
}

/// A skill name: lower case, letters, digits, `_`, `-` and CJK, at most 40 characters.
pub fn skill_name(name: &str) -> AppResult<String> {
    let name = name.trim().to_lowercase();
    let ok = !name.is_empty()
        && name.chars().count() <= 40
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(name)
    } else {
        Err(AppError::field(
            "skills",
            format!("{name:?} is not a skill name (letters, digits, _ and -, at most 40)"),
        ))
    }
}

pub fn set_presence(
    txn: &WriteTransaction,
    employee_id: u64,
    presence: Presence,
    now: Millis,
) -> AppResult<AgentSettings> {
    let employee = employee_in_write(txn, employee_id)?;
    let mut settings = agent_settings_in_write(txn, &employee)?;
    if settings.presence != presence {
        settings.presence = presence;
        settings.presence_changed_at = now;
        save_agent_settings(txn, &settings)?;
    }
    Ok(settings)
}

pub fn record(txn: &ReadTransaction, conversation_id: u64) -> AppResult<Option<RoutingRecord>> {
    get_record(&txn.open_table(tables::ROUTING_RECORDS)?, conversation_id)
}

pub fn record_in_write(
    txn: &WriteTransaction,
    conversation_id: u64,
) -> AppResult<Option<RoutingRecord>> {
    get_record(&txn.open_table(tables::ROUTING_RECORDS)?, conversation_id)
}

pub fn save_record(txn: &WriteTransaction, record: &RoutingRecord) -> AppResult<()> {
    txn.open_table(tables::ROUTING_RECORDS)?
        .insert(record.conversation_id, codec::encode(record).as_slice())?;
    Ok(())
}

pub fn add_label(txn: &WriteTransaction, mut label: RoutingLabel) -> AppResult<RoutingLabel> {
    label.id = next_id(txn, "routing_label")?;
    txn.open_table(tables::ROUTING_LABELS)?
        .insert(label.id, codec::encode(&label).as_slice())?;
    Ok(label)
}

pub fn labels(txn: &ReadTransaction) -> AppResult<Vec<RoutingLabel>> {
    crate::storage::all_records(&txn.open_table(tables::ROUTING_LABELS)?)
}

/// The active policy: the newest version, or the built-in one when none was saved.
pub fn current_policy(txn: &ReadTransaction) -> AppResult<Policy> {
    let table = txn.open_table(tables::ROUTING_POLICIES)?;
    let last = table.last()?;
    match last {
        Some((_, bytes)) => Ok(codec::decode::<PolicyVersion>(bytes.value())?.policy),
        None => Ok(Policy::default()),
    }
}

pub fn policies(txn: &ReadTransaction) -> AppResult<Vec<PolicyVersion>> {
    let mut all: Vec<PolicyVersion> =
        crate::storage::all_records(&txn.open_table(tables::ROUTING_POLICIES)?)?;
    if all.is_empty() {
        all.push(PolicyVersion {
            policy: Policy::default(),
            note: "built in".into(),
            created_by: None,
            created_at: 0,
        });
    }
    Ok(all)
}

/// Saves the next immutable policy version: the current one with the changes.
pub fn add_policy(
    txn: &WriteTransaction,
    caller: &Caller,
    change: &NewPolicy,
    now: Millis,
) -> AppResult<PolicyVersion> {
    caller.require_everywhere(Permission::RoutingManage)?;
    let table = txn.open_table(tables::ROUTING_POLICIES)?;
    let mut policy = match table.last()? {
        Some((_, bytes)) => codec::decode::<PolicyVersion>(bytes.value())?.policy,
        None => Policy::default(),
    };
    drop(table);
    policy.version += 1;
    if let Some(weights) = &change.weights {
        let all = [
            weights.skill_fit,
            weights.past_contact,
            weights.language,
            weights.spare_capacity,
            weights.idle_time,
            weights.fairness,
            weights.location,
            weights.part_time,
        ];
        if all.iter().any(|w| !w.is_finite() || *w < 0.0 || *w > 100.0) {
            return Err(AppError::field("weights", "each weight must be 0 to 100"));
        }
        policy.weights = weights.clone();
    }
    if let Some(timeouts) = &change.offer_timeout_ms {
        if timeouts.values().any(|t| *t < 1_000 || *t > 3_600_000) {
            return Err(AppError::field(
                "offer_timeout_ms",
                "an offer waits 1 second to 1 hour",
            ));
        }
        policy.offer_timeout_ms.extend(timeouts.clone());
    }
    if let Some(missed) = change.missed_offers_to_away {
        if missed == 0 || missed > 100 {
            return Err(AppError::field("missed_offers_to_away", "1 to 100"));
        }
        policy.missed_offers_to_away = missed;
    }
    let version = PolicyVersion {
        policy,
        note: change.note.chars().take(500).collect(),
        created_by: Some(caller.employee_id),
        created_at: now,
    };
    txn.open_table(tables::ROUTING_POLICIES)?.insert(
        u64::from(version.policy.version),
        codec::encode(&version).as_slice(),
    )?;
    Ok(version)
}

/// The customer's VIP tier: a numeric `vip_tier` attribute, else 1 for a `vip` tag.
pub fn vip_tier(customer: &crate::customers::Customer) -> u8 {
    if let Some(tier) = customer.attributes.get("vip_tier").and_then(|v| v.as_u64()) {
        return tier.min(9) as u8;
    }
    u8::from(customer.tags.iter().any(|t| t.eq_ignore_ascii_case("vip")))
}

/// What the customer's other conversations say: how many started in the last day, and who
/// answered them before (most recent first, weaker the further back).
pub fn customer_history(
    txn: &ReadTransaction,
    conversation: &Conversation,
    now: Millis,
) -> AppResult<(u32, Vec<(u64, f32)>)> {
    let index = txn.open_table(tables::CUSTOMER_CONVERSATIONS)?;
    let conversations = txn.open_table(tables::CONVERSATIONS)?;
    let mut others: Vec<Conversation> = Vec::new();
    for entry in index
        .range((conversation.customer_id, 0)..=(conversation.customer_id, u64::MAX))?
        .rev()
        .take(50)
    {
        let (key, _) = entry?;
        let (_, id) = key.value();
        if id == conversation.id {
            continue;
        }
        if let Some(c) = get_record::<Conversation>(&conversations, id)? {
            others.push(c);
        }
    }
    let recent = others
        .iter()
        .filter(|c| now - c.created_at < 24 * 3_600_000)
        .count() as u32;
    others.sort_by_key(|c| std::cmp::Reverse(c.last_message_at));
    let mut previous: Vec<(u64, f32)> = Vec::new();
    let mut strength = 1.0f32;
    for c in &others {
        if let Some(a) = c.assignee_id
            && !previous.iter().any(|(id, _)| *id == a)
        {
            previous.push((a, strength));
            strength *= 0.6;
        }
    }
    Ok((recent, previous))
}

/// What the console shows of a conversation's routing: the record, its place in the queue, and
/// the names of the employees its decisions mention.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct RoutingView {
    pub record: Option<RoutingRecord>,
    /// 1 = next; absent when not queued.
    pub queue_position: Option<usize>,
    /// `queued`, `offered`, `assigned`, or `none`.
    pub state: String,
    pub names: BTreeMap<u64, String>,
    /// The question types the classifier knows (for relabelling).
    pub types: Vec<String>,
}

/// Names of the employees a record mentions.
pub fn names_in(txn: &ReadTransaction, record: &RoutingRecord) -> AppResult<BTreeMap<u64, String>> {
    let employees = txn.open_table(tables::EMPLOYEES)?;
    let mut names = BTreeMap::new();
    for d in &record.decisions {
        let ids = std::iter::once(d.decision.chosen.agent)
            .chain(d.decision.runners_up.iter().map(|c| c.agent))
            .chain(d.decision.excluded.iter().map(|(id, _)| *id));
        for id in ids {
            if let std::collections::btree_map::Entry::Vacant(slot) = names.entry(id)
                && let Some(e) = get_record::<Employee>(&employees, id)?
            {
                slot.insert(e.display_name);
            }
        }
    }
    Ok(names)
}
