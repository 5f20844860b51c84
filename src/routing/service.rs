//! Routing's stored state and the operations on it: each employee's routing settings and
//! presence, what routing knows of each conversation (its classification, every offer and why),
//! the labels employees gave (the classifier's training data), and the policy versions.
//!
//! The live router (`live.rs`) keeps the fast in-memory state; this is what survives a restart
//! and what the console reads.

use std::collections::BTreeMap;

use redb::{ReadTransaction, ReadableTable};
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
use crate::routing::sla::{Calendar, ClockKind, Level, Targets};
use crate::routing::urgency::Urgency;
use crate::storage::{Record, WriteTxn, codec, get_record, next_id, tables};

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
    /// The business calendar of their working hours; outside them only escalations and
    /// transfers to them reach them. None: always working.
    #[serde(default)]
    pub calendar_id: Option<u64>,
    /// Daily `[start, end)` minutes, in their own time zone, when nothing reaches them (an end
    /// before its start runs past midnight).
    #[serde(default)]
    pub quiet_hours: Vec<(u16, u16)>,
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
            calendar_id: None,
            quiet_hours: Vec::new(),
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
    /// A business calendar's id, or null for none.
    #[serde(default, deserialize_with = "present")]
    pub calendar_id: Option<Option<u64>>,
    pub quiet_hours: Option<Vec<(u16, u16)>>,
}

/// A field that is present, even as null (`Some(None)`), as opposed to absent (`None`).
fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
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
    /// The lane it waits in, or was last routed through.
    #[serde(default)]
    pub lane_id: Option<u64>,
    /// The lane's stage reached (0: the lane's own requirements).
    #[serde(default)]
    pub stage: usize,
    /// When it entered the lane (stages count from here).
    #[serde(default)]
    pub lane_entered_at: Option<Millis>,
    /// Where waiting counts from when a lane restarted the clock (else the conversation's start).
    #[serde(default)]
    pub clock_from: Option<Millis>,
    /// Escalated: employees in focus and part-time responders may take it at once.
    #[serde(default)]
    pub escalated: bool,
    #[serde(default)]
    pub escalations: Vec<Escalation>,
    /// A transfer waiting for its receiver.
    #[serde(default)]
    pub transfer: Option<Transfer>,
    /// Transfers that ended, oldest first.
    #[serde(default)]
    pub past_transfers: Vec<Transfer>,
    #[serde(default)]
    pub sla: SlaRecord,
    /// The experiment arm it arrived in, when an experiment was running.
    #[serde(default)]
    pub variant: Option<crate::routing::experiment::Variant>,
}

/// A move up the escalation path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Escalation {
    pub from_lane: Option<u64>,
    pub to_lane: u64,
    /// The employee who escalated; none when an SLA breach did.
    pub by: Option<u64>,
    pub at: Millis,
    pub note: String,
    /// Who owned the conversation then: it can return to them.
    pub previous_owner: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TransferMode {
    /// The sender stops counting it at once; it stays theirs until the receiver accepts.
    Blind,
    /// The sender keeps it and its capacity until the receiver accepts, then stays on as a
    /// participant.
    Warm,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Transfer {
    /// The employee who owned it when the transfer began (none for a waiting conversation).
    pub from: Option<u64>,
    /// The employee who started it; none when routing did (an SLA escalation).
    pub by: Option<u64>,
    pub to_lane: Option<u64>,
    pub to_employee: Option<u64>,
    pub mode: TransferMode,
    pub note: String,
    pub at: Millis,
    /// `accepted`, `declined`, `expired`, `cancelled` once it ended.
    #[serde(default)]
    pub outcome: Option<String>,
    #[serde(default)]
    pub ended_at: Option<Millis>,
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
            lane_id: None,
            stage: 0,
            lane_entered_at: None,
            clock_from: None,
            escalated: false,
            escalations: Vec::new(),
            transfer: None,
            past_transfers: Vec::new(),
            sla: SlaRecord::default(),
            variant: None,
        }
    }

    /// Ends the waiting transfer with its outcome and keeps it in the history.
    pub fn end_transfer(&mut self, outcome: &str, at: Millis) -> Option<Transfer> {
        let mut transfer = self.transfer.take()?;
        transfer.outcome = Some(outcome.to_owned());
        transfer.ended_at = Some(at);
        self.past_transfers.push(transfer.clone());
        if self.past_transfers.len() > DECISIONS_KEPT {
            self.past_transfers.remove(0);
        }
        Some(transfer)
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
    settings_from(&txn.open_table(tables::ROUTING_AGENTS)?, employee)
}

fn agent_settings_in_write(txn: &WriteTxn, employee: &Employee) -> AppResult<AgentSettings> {
    settings_from(&txn.open_table(tables::ROUTING_AGENTS)?, employee)
}

/// The stored settings, or the defaults for someone routing never saw changed.
fn settings_from(
    table: &impl ReadableTable<u64, &'static [u8]>,
    employee: &Employee,
) -> AppResult<AgentSettings> {
    Ok(get_record(table, employee.id)?.unwrap_or_else(|| AgentSettings::default_for(employee)))
}

fn employee_in_write(txn: &WriteTxn, id: u64) -> AppResult<Employee> {
    get_record(&txn.open_table(tables::EMPLOYEES)?, id)?
        .ok_or_else(|| AppError::not_found("employee"))
}

pub fn save_agent_settings(txn: &WriteTxn, settings: &AgentSettings) -> AppResult<()> {
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
        let s = settings_from(&settings, &employee)?;
        agents.push((employee, s));
    }
    Ok(agents)
}

/// Checks and applies a change to an employee's routing settings.
pub fn update_agent(
    txn: &WriteTxn,
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
    if let Some(calendar) = patch.calendar_id {
        if let Some(id) = calendar
            && get_record::<Calendar>(&txn.open_table(tables::ROUTING_CALENDARS)?, id)?.is_none()
        {
            return Err(AppError::field(
                "calendar_id",
                format!("there is no calendar {id}"),
            ));
        }
        settings.calendar_id = calendar;
    }
    if let Some(quiet) = &patch.quiet_hours {
        if quiet.len() > 4
            || quiet
                .iter()
                .any(|(start, end)| start == end || *start >= 1440 || *end > 1440)
        {
            return Err(AppError::field(
                "quiet_hours",
                "at most 4 daily intervals of [start, end) minutes (0 to 1440), start and end differing",
            ));
        }
        settings.quiet_hours = quiet.clone();
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
    txn: &WriteTxn,
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
        txn.open_table(tables::ROUTING_PRESENCE_LOG)?
            .insert((now.max(0) as u64, employee_id), presence.as_str())?;
    }
    Ok(settings)
}

pub fn record(txn: &ReadTransaction, conversation_id: u64) -> AppResult<Option<RoutingRecord>> {
    get_record(&txn.open_table(tables::ROUTING_RECORDS)?, conversation_id)
}

pub fn record_in_write(txn: &WriteTxn, conversation_id: u64) -> AppResult<Option<RoutingRecord>> {
    get_record(&txn.open_table(tables::ROUTING_RECORDS)?, conversation_id)
}

pub fn save_record(txn: &WriteTxn, record: &RoutingRecord) -> AppResult<()> {
    txn.open_table(tables::ROUTING_RECORDS)?
        .insert(record.conversation_id, codec::encode(record).as_slice())?;
    crate::routing::experiment::index_variant(txn, record)?;
    Ok(())
}

pub fn add_label(txn: &WriteTxn, mut label: RoutingLabel) -> AppResult<RoutingLabel> {
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
    // Version 1 is built in; saved versions follow it.
    if all.first().is_none_or(|v| v.policy.version != 1) {
        all.insert(
            0,
            PolicyVersion {
                policy: Policy::default(),
                note: "built in".into(),
                created_by: None,
                created_at: 0,
            },
        );
    }
    Ok(all)
}

/// The policy with this version, saved or built in.
pub fn policy_version(txn: &ReadTransaction, version: u32) -> AppResult<Option<Policy>> {
    if version == 1 {
        return Ok(Some(Policy::default()));
    }
    let table = txn.open_table(tables::ROUTING_POLICIES)?;
    Ok(get_record::<PolicyVersion>(&table, u64::from(version))?.map(|v| v.policy))
}

/// Every policy version there is, oldest first.
pub fn policy_versions_in_write(txn: &WriteTxn) -> AppResult<Vec<u32>> {
    let table = txn.open_table(tables::ROUTING_POLICIES)?;
    let mut versions = vec![1];
    for entry in table.iter()? {
        let version = entry?.0.value() as u32;
        if version != 1 {
            versions.push(version);
        }
    }
    Ok(versions)
}

/// Saves the next immutable policy version: the current one with the changes.
pub fn add_policy(
    txn: &WriteTxn,
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
            weights.off_hours,
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
    /// The lane it waits in or was last routed through.
    pub lane: Option<Lane>,
    /// The SLA clocks now (none outside a lane with targets, or once resolved).
    pub sla: Vec<crate::routing::sla::Clock>,
}

/// The SLA clocks of a conversation now, from its lane, calendar and stored SLA state.
pub fn conversation_clocks(
    txn: &ReadTransaction,
    conversation: &Conversation,
    record: Option<&RoutingRecord>,
    now: Millis,
) -> AppResult<(Option<Lane>, Vec<crate::routing::sla::Clock>)> {
    let Some(lane) = record
        .and_then(|r| r.lane_id)
        .and_then(|id| lanes(txn).ok()?.into_iter().find(|l| l.id == id))
    else {
        return Ok((None, Vec::new()));
    };
    if matches!(
        conversation.status,
        crate::conversations::Status::Resolved | crate::conversations::Status::Closed
    ) {
        return Ok((Some(lane), Vec::new()));
    }
    let calendar = match lane.calendar_id {
        Some(id) => get_record(&txn.open_table(tables::ROUTING_CALENDARS)?, id)?
            .unwrap_or_else(Calendar::always),
        None => Calendar::always(),
    };
    let vip = get_record::<crate::customers::Customer>(
        &txn.open_table(tables::CUSTOMERS)?,
        conversation.customer_id,
    )?
    .map_or(0, |c| vip_tier(&c));
    let sla = record.map(|r| r.sla.clone()).unwrap_or_default();
    let facts = crate::routing::sla::Facts {
        started_at: record
            .and_then(|r| r.clock_from)
            .unwrap_or(conversation.created_at),
        first_response_at: conversation.first_response_at,
        awaiting_reply_since: sla.awaiting_reply_since,
        resolved_at: None,
        paused_since: sla.paused_since,
        paused_business_ms: sla.paused_business_ms,
    };
    let targets = lane.targets_for(conversation.priority, vip, conversation.channel_kind);
    let clocks =
        crate::routing::sla::clocks(&calendar, &targets, &facts, lane.warn_at_percent, now);
    Ok((Some(lane), clocks))
}

/// Names of the employees a record mentions.
pub fn names_in(txn: &ReadTransaction, record: &RoutingRecord) -> AppResult<BTreeMap<u64, String>> {
    let employees = txn.open_table(tables::EMPLOYEES)?;
    let mut names = BTreeMap::new();
    let mut ids: Vec<u64> = Vec::new();
    for d in &record.decisions {
        ids.push(d.decision.chosen.agent);
        ids.extend(d.decision.runners_up.iter().map(|c| c.agent));
        ids.extend(d.decision.excluded.iter().map(|(id, _)| *id));
    }
    ids.extend(record.relabel.as_ref().map(|r| r.by));
    for e in &record.escalations {
        ids.extend(e.by);
        ids.extend(e.previous_owner);
    }
    for t in record.transfer.iter().chain(&record.past_transfers) {
        ids.extend(t.by);
        ids.extend(t.from);
        ids.extend(t.to_employee);
    }
    {
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

/// A lane: a queue with its own eligibility, stages, escalation path and service targets
/// (Sales L1, Support L2, R&D L3, a VIP desk).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Lane {
    pub id: u64,
    /// A short stable name (`sales`, `support`, `rnd`, `vip`).
    pub key: String,
    pub name: String,
    /// Question types that enter this lane first.
    #[serde(default)]
    pub types: Vec<String>,
    /// Customers of this VIP tier or higher enter this lane first (0: no one by tier).
    #[serde(default)]
    pub min_vip_tier: u8,
    /// The first stage's requirement: employees hold these skills at these levels.
    #[serde(default)]
    pub required_skills: BTreeMap<String, u8>,
    /// Later stages, each relaxing what the one before required.
    #[serde(default)]
    pub stages: Vec<Stage>,
    /// Where an escalation from this lane goes.
    #[serde(default)]
    pub escalate_to: Option<u64>,
    /// Whether waiting time (and the SLA clock) carries over when a conversation is escalated
    /// or transferred into this lane.
    #[serde(default = "yes")]
    pub keep_clock: bool,
    /// Most conversations waiting here; more go to `overflow_to` (or wait here if none).
    #[serde(default)]
    pub max_queue: Option<u32>,
    #[serde(default)]
    pub overflow_to: Option<u64>,
    /// Service targets in business seconds.
    #[serde(default)]
    pub sla: Targets,
    /// Other targets for some priorities, VIP tiers or channels; the first that matches wins.
    #[serde(default)]
    pub sla_overrides: Vec<SlaOverride>,
    /// The business calendar the targets count on (none: around the clock).
    #[serde(default)]
    pub calendar_id: Option<u64>,
    /// The share of a target after which a clock warns.
    #[serde(default = "eighty")]
    pub warn_at_percent: u8,
    /// What happens when a clock warns or breaches.
    #[serde(default = "default_sla_actions")]
    pub sla_actions: Vec<SlaAction>,
    /// Lanes are tried in this order when a question's type names several.
    #[serde(default)]
    pub position: u32,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub updated_at: Millis,
}

fn yes() -> bool {
    true
}

fn eighty() -> u8 {
    80
}

/// Targets that replace the lane's for matching conversations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SlaOverride {
    pub priority: Option<crate::conversations::Priority>,
    pub min_vip_tier: Option<u8>,
    pub channel: Option<crate::channels::ChannelKind>,
    pub targets: Targets,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SlaActionKind {
    /// One priority level up (so it moves ahead in the queue).
    RaisePriority,
    /// Straight to the lane's last stage (anyone its last stage allows).
    Relax,
    /// Up the lane's escalation path.
    Escalate,
    /// A live alert to everyone who monitors routing.
    NotifySupervisors,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SlaAction {
    /// `warning` or `breached`.
    pub on: Level,
    /// One clock, or every clock when absent.
    #[serde(default)]
    pub clock: Option<ClockKind>,
    pub action: SlaActionKind,
}

pub fn default_sla_actions() -> Vec<SlaAction> {
    let action = |on, action| SlaAction {
        on,
        clock: None,
        action,
    };
    vec![
        action(Level::Warning, SlaActionKind::RaisePriority),
        action(Level::Warning, SlaActionKind::NotifySupervisors),
        action(Level::Breached, SlaActionKind::Relax),
        action(Level::Breached, SlaActionKind::NotifySupervisors),
    ]
}

impl Lane {
    /// The targets for a conversation of this priority, tier and channel.
    pub fn targets_for(
        &self,
        priority: crate::conversations::Priority,
        vip_tier: u8,
        channel: crate::channels::ChannelKind,
    ) -> Targets {
        self.sla_overrides
            .iter()
            .find(|o| {
                o.priority.is_none_or(|p| p == priority)
                    && o.min_vip_tier.is_none_or(|t| vip_tier >= t)
                    && o.channel.is_none_or(|c| c == channel)
            })
            .map_or(self.sla, |o| o.targets)
    }
}

impl Record for Lane {
    const KIND: &'static str = "routing_lane";
}

/// A relaxation: after `after_secs` in the lane (or at once when nobody who meets the stage
/// before is online and `when_nobody_eligible` is set), employees need only these skills.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Stage {
    pub after_secs: u64,
    #[serde(default)]
    pub required_skills: BTreeMap<String, u8>,
    #[serde(default = "yes")]
    pub when_nobody_eligible: bool,
}

/// A lane as created or replaced through the API (its id comes from the path or is new).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LaneInput {
    pub key: String,
    pub name: String,
    #[serde(default)]
    pub types: Vec<String>,
    #[serde(default)]
    pub min_vip_tier: u8,
    #[serde(default)]
    pub required_skills: BTreeMap<String, u8>,
    #[serde(default)]
    pub stages: Vec<Stage>,
    #[serde(default)]
    pub escalate_to: Option<u64>,
    #[serde(default = "yes")]
    pub keep_clock: bool,
    #[serde(default)]
    pub max_queue: Option<u32>,
    #[serde(default)]
    pub overflow_to: Option<u64>,
    #[serde(default)]
    pub sla: Targets,
    #[serde(default)]
    pub sla_overrides: Vec<SlaOverride>,
    #[serde(default)]
    pub calendar_id: Option<u64>,
    #[serde(default = "eighty")]
    pub warn_at_percent: u8,
    #[serde(default = "default_sla_actions")]
    pub sla_actions: Vec<SlaAction>,
    #[serde(default)]
    pub position: u32,
    #[serde(default = "yes")]
    pub enabled: bool,
}

impl Lane {
    /// What employees must hold at stage `stage` (the last stage stays).
    pub fn requirements(&self, stage: usize) -> &BTreeMap<String, u8> {
        match stage {
            0 => &self.required_skills,
            n => &self.stages[(n - 1).min(self.stages.len().saturating_sub(1))].required_skills,
        }
    }

    pub fn last_stage(&self) -> usize {
        self.stages.len()
    }
}

/// The lanes an installation starts with: the escalation path sales → tech support → R&D and
/// a VIP desk. Each relaxes to anyone when nobody with its skill is online, except R&D.
pub fn default_lanes() -> Vec<Lane> {
    let skill = |name: &str| BTreeMap::from([(name.to_owned(), 1u8)]);
    let anyone_when_needed = |after_secs| Stage {
        after_secs,
        required_skills: BTreeMap::new(),
        when_nobody_eligible: true,
    };
    let lane = |id: u64, key: &str, name: &str, types: &[&str], escalate_to| Lane {
        id,
        key: key.into(),
        name: name.into(),
        types: types.iter().map(|t| t.to_string()).collect(),
        min_vip_tier: 0,
        required_skills: skill(key),
        stages: vec![anyone_when_needed(180)],
        escalate_to,
        keep_clock: true,
        max_queue: None,
        overflow_to: None,
        sla: Targets {
            first_response_secs: Some(5 * 60),
            next_response_secs: Some(15 * 60),
            resolution_secs: Some(24 * 3600),
        },
        sla_overrides: Vec::new(),
        calendar_id: None,
        warn_at_percent: 80,
        sla_actions: default_sla_actions(),
        position: id as u32,
        enabled: true,
        updated_at: 0,
    };
    let mut rnd = lane(3, "rnd", "R&D", &[], None);
    rnd.stages.clear();
    rnd.sla = Targets {
        first_response_secs: Some(3600),
        next_response_secs: Some(2 * 3600),
        resolution_secs: Some(3 * 24 * 3600),
    };
    let mut vip = lane(4, "vip", "VIP desk", &[], Some(2));
    vip.min_vip_tier = 1;
    vip.position = 0;
    vip.stages = vec![anyone_when_needed(60)];
    vip.sla.first_response_secs = Some(2 * 60);
    vec![
        lane(1, "sales", "Sales", &["pre_sales"], Some(2)),
        lane(
            2,
            "support",
            "Tech support",
            &["technical", "after_sales", "billing", "complaint"],
            Some(3),
        ),
        rnd,
        vip,
    ]
}

/// The lanes, in position order; the defaults until an administrator saves one.
pub fn lanes(txn: &ReadTransaction) -> AppResult<Vec<Lane>> {
    lanes_from(&txn.open_table(tables::ROUTING_LANES)?)
}

/// The lanes inside a write, without storing the defaults.
pub fn lanes_in(txn: &WriteTxn) -> AppResult<Vec<Lane>> {
    lanes_from(&txn.open_table(tables::ROUTING_LANES)?)
}

fn lanes_from(table: &impl ReadableTable<u64, &'static [u8]>) -> AppResult<Vec<Lane>> {
    let mut lanes: Vec<Lane> = crate::storage::all_records(table)?;
    if lanes.is_empty() {
        lanes = default_lanes();
    }
    lanes.sort_by_key(|l| (l.position, l.id));
    Ok(lanes)
}

fn lanes_in_write(txn: &WriteTxn) -> AppResult<Vec<Lane>> {
    let stored: Vec<Lane> = crate::storage::all_records(&txn.open_table(tables::ROUTING_LANES)?)?;
    if !stored.is_empty() {
        return Ok(stored);
    }
    // The first change stores the defaults it changes, so ids stay what the defaults said.
    let defaults = default_lanes();
    for lane in &defaults {
        save_lane(txn, lane)?;
    }
    crate::storage::reserve_ids_below(txn, "routing_lane", defaults.len() as u64)?;
    Ok(defaults)
}

fn save_lane(txn: &WriteTxn, lane: &Lane) -> AppResult<()> {
    txn.open_table(tables::ROUTING_LANES)?
        .insert(lane.id, codec::encode(lane).as_slice())?;
    Ok(())
}

/// Creates a lane (`id` None) or replaces one, after checking it against the others.
pub fn put_lane(
    txn: &WriteTxn,
    id: Option<u64>,
    input: &LaneInput,
    now: Millis,
) -> AppResult<Lane> {
    let mut all = lanes_in_write(txn)?;
    let id = match id {
        Some(id) => {
            if !all.iter().any(|l| l.id == id) {
                return Err(AppError::not_found("lane"));
            }
            id
        }
        None => next_id(txn, "routing_lane")?,
    };
    let key = input.key.trim().to_lowercase();
    if key.is_empty()
        || key.len() > 40
        || !key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(AppError::field(
            "key",
            "letters, digits, _ and -, at most 40",
        ));
    }
    if all.iter().any(|l| l.id != id && l.key == key) {
        return Err(AppError::conflict(format!(
            "a lane is already called {key}"
        )));
    }
    let name = input.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(AppError::field("name", "1 to 100 characters"));
    }
    let check_skills =
        |field: &str, skills: &BTreeMap<String, u8>| -> AppResult<BTreeMap<String, u8>> {
            let mut clean = BTreeMap::new();
            for (name, level) in skills {
                let name = skill_name(name).map_err(|e| AppError::field(field, e.message))?;
                if !(1..=5).contains(level) {
                    return Err(AppError::field(
                        field,
                        format!("the level of {name} must be 1 to 5"),
                    ));
                }
                clean.insert(name, *level);
            }
            Ok(clean)
        };
    let required_skills = check_skills("required_skills", &input.required_skills)?;
    let mut stages = Vec::new();
    let mut last_after = 0;
    for stage in &input.stages {
        if stage.after_secs < last_after || stage.after_secs > 7 * 24 * 3600 {
            return Err(AppError::field(
                "stages",
                "each stage starts at or after the one before, within 7 days",
            ));
        }
        last_after = stage.after_secs;
        stages.push(Stage {
            after_secs: stage.after_secs,
            required_skills: check_skills("stages", &stage.required_skills)?,
            when_nobody_eligible: stage.when_nobody_eligible,
        });
    }
    if stages.len() > 10 {
        return Err(AppError::field("stages", "at most 10"));
    }
    let mut types = Vec::new();
    for t in &input.types {
        let t = skill_name(t).map_err(|e| AppError::field("types", e.message))?;
        if !types.contains(&t) {
            types.push(t);
        }
    }
    for (field, target) in [
        ("escalate_to", input.escalate_to),
        ("overflow_to", input.overflow_to),
    ] {
        if let Some(target) = target
            && (target == id || !all.iter().any(|l| l.id == target))
        {
            return Err(AppError::field(
                field,
                format!("lane {target} is not another lane"),
            ));
        }
    }
    if let Some(calendar) = input.calendar_id
        && txn
            .open_table(tables::ROUTING_CALENDARS)?
            .get(calendar)?
            .is_none()
    {
        return Err(AppError::field(
            "calendar_id",
            format!("calendar {calendar} does not exist"),
        ));
    }
    if !(1..=100).contains(&input.warn_at_percent) {
        return Err(AppError::field("warn_at_percent", "1 to 100"));
    }
    let all_targets =
        std::iter::once(&input.sla).chain(input.sla_overrides.iter().map(|o| &o.targets));
    for t in all_targets {
        let seconds = [
            t.first_response_secs,
            t.next_response_secs,
            t.resolution_secs,
        ];
        if seconds
            .iter()
            .flatten()
            .any(|s| *s == 0 || *s > 365 * 24 * 3600)
        {
            return Err(AppError::field("sla", "targets are 1 second to 1 year"));
        }
    }
    if input.max_queue == Some(0) {
        return Err(AppError::field("max_queue", "at least 1, or none"));
    }
    let lane = Lane {
        id,
        key,
        name: name.to_owned(),
        types,
        min_vip_tier: input.min_vip_tier,
        required_skills,
        stages,
        escalate_to: input.escalate_to,
        keep_clock: input.keep_clock,
        max_queue: input.max_queue,
        overflow_to: input.overflow_to,
        sla: input.sla,
        sla_overrides: input.sla_overrides.clone(),
        calendar_id: input.calendar_id,
        warn_at_percent: input.warn_at_percent,
        sla_actions: input.sla_actions.clone(),
        position: input.position,
        enabled: input.enabled,
        updated_at: now,
    };
    all.retain(|l| l.id != id);
    all.push(lane.clone());
    // An escalation path that comes back to where it started would bounce forever.
    for start in &all {
        let mut seen = vec![start.id];
        let mut at = start.escalate_to;
        while let Some(next) = at {
            if seen.contains(&next) {
                return Err(AppError::field(
                    "escalate_to",
                    "the escalation path goes round in a circle",
                ));
            }
            seen.push(next);
            at = all
                .iter()
                .find(|l| l.id == next)
                .and_then(|l| l.escalate_to);
        }
    }
    save_lane(txn, &lane)?;
    Ok(lane)
}

pub fn delete_lane(txn: &WriteTxn, id: u64) -> AppResult<Lane> {
    let all = lanes_in_write(txn)?;
    let lane = all
        .iter()
        .find(|l| l.id == id)
        .cloned()
        .ok_or_else(|| AppError::not_found("lane"))?;
    if let Some(other) = all
        .iter()
        .find(|l| l.escalate_to == Some(id) || l.overflow_to == Some(id))
    {
        return Err(AppError::conflict(format!(
            "lane {} escalates or overflows to this lane; change it first",
            other.name
        )));
    }
    txn.open_table(tables::ROUTING_LANES)?.remove(id)?;
    Ok(lane)
}

/// The lane a new question enters: a VIP desk for the customer's tier, else the first lane
/// that lists the question's type, else none (no lane requirements).
pub fn lane_for<'a>(lanes: &'a [Lane], kind: Option<&str>, vip_tier: u8) -> Option<&'a Lane> {
    let enabled = || lanes.iter().filter(|l| l.enabled);
    if vip_tier > 0
        && let Some(vip) = enabled()
            .filter(|l| l.min_vip_tier > 0 && vip_tier >= l.min_vip_tier)
            .max_by_key(|l| l.min_vip_tier)
    {
        return Some(vip);
    }
    kind.and_then(|k| enabled().find(|l| l.types.iter().any(|t| t == k)))
}

/// The business calendars.
pub fn calendars(txn: &ReadTransaction) -> AppResult<Vec<Calendar>> {
    crate::storage::all_records(&txn.open_table(tables::ROUTING_CALENDARS)?)
}

/// A calendar as created or replaced through the API.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CalendarInput {
    pub name: String,
    pub time_zone: String,
    /// Monday first: `[start, end)` minutes after midnight.
    pub hours: [Vec<(u16, u16)>; 7],
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub holidays: Vec<chrono::NaiveDate>,
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub extra_workdays: Vec<chrono::NaiveDate>,
}

pub fn put_calendar(
    txn: &WriteTxn,
    id: Option<u64>,
    input: &CalendarInput,
    now: Millis,
) -> AppResult<Calendar> {
    let table = txn.open_table(tables::ROUTING_CALENDARS)?;
    let id = match id {
        Some(id) => {
            if table.get(id)?.is_none() {
                return Err(AppError::not_found("calendar"));
            }
            id
        }
        None => {
            drop(table);
            next_id(txn, "routing_calendar")?
        }
    };
    let name = input.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(AppError::field("name", "1 to 100 characters"));
    }
    let calendar = Calendar {
        id,
        name: name.to_owned(),
        time_zone: input.time_zone.trim().to_owned(),
        hours: input.hours.clone(),
        holidays: input.holidays.clone(),
        extra_workdays: input.extra_workdays.clone(),
        updated_at: now,
    };
    if calendar.time_zone.parse::<chrono_tz::Tz>().is_err() {
        return Err(AppError::field(
            "time_zone",
            format!("{:?} is not an IANA time zone", calendar.time_zone),
        ));
    }
    calendar
        .check()
        .map_err(|problem| AppError::field("hours", problem))?;
    txn.open_table(tables::ROUTING_CALENDARS)?
        .insert(id, codec::encode(&calendar).as_slice())?;
    Ok(calendar)
}

pub fn delete_calendar(txn: &WriteTxn, id: u64) -> AppResult<()> {
    if let Some(lane) = lanes_in(txn)?.iter().find(|l| l.calendar_id == Some(id)) {
        return Err(AppError::conflict(format!(
            "lane {} counts on this calendar; change it first",
            lane.name
        )));
    }
    let agents: Vec<AgentSettings> =
        crate::storage::all_records(&txn.open_table(tables::ROUTING_AGENTS)?)?;
    if let Some(agent) = agents.iter().find(|a| a.calendar_id == Some(id)) {
        return Err(AppError::conflict(format!(
            "employee {} works to this calendar; change their working hours first",
            agent.employee_id
        )));
    }
    if txn
        .open_table(tables::ROUTING_CALENDARS)?
        .remove(id)?
        .is_none()
    {
        return Err(AppError::not_found("calendar"));
    }
    Ok(())
}

/// What the SLA clocks of a conversation remember between events.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SlaRecord {
    /// The customer's oldest unanswered message.
    pub awaiting_reply_since: Option<Millis>,
    /// Waiting on the customer (pending or snoozed) since then.
    pub paused_since: Option<Millis>,
    /// Business time spent paused before.
    #[serde(default)]
    pub paused_business_ms: Millis,
    /// The levels each clock reached, with when (actions ran once per level).
    #[serde(default)]
    pub fired: Vec<SlaFired>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SlaFired {
    pub clock: ClockKind,
    pub level: Level,
    pub at: Millis,
    /// What was done (`raise_priority`, `relax`, `escalate`, `notify_supervisors`).
    pub actions: Vec<SlaActionKind>,
}
