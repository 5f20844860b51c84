//! The routing core: a pure state machine. `Router::handle(event, now)` changes the state and
//! returns effects (offers to make, assignments, automatic presence changes); nothing here reads
//! the clock, the store or the network, so every decision can be replayed and tested.
//!
//! * Hard rules are filters: presence, spare capacity on the conversation's medium (offers hold
//!   capacity), required skills and levels, language, exclusions after a decline or a missed
//!   offer, a part-time responder's delay and daily cap.
//! * Everything else is a weighted score (`Weights`, versioned with the policy) whose terms are
//!   recorded with each offer, so the console can show why this person.
//! * Conversations wait in buckets by requirement signature, each first in first out within
//!   equal priority; a dispatch looks only at bucket heads.
//! * When several conversations and several employees are free at once, they are assigned
//!   jointly: first the conversations that can be served are chosen in queue order (so no later
//!   conversation takes the place of an earlier one of the same priority), then the optimal
//!   pairing of those conversations with the free employees is solved (Kuhn–Munkres).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use rustc_hash::{FxHashMap, FxHashSet};

use serde::{Deserialize, Serialize};

use crate::channels::ChannelKind;
use crate::clock::Millis;
use crate::routing::urgency::Urgency;

pub type EmployeeId = u64;
pub type ConversationId = u64;
pub type OfferId = u64;

/// What capacity a conversation takes: chats run side by side, a call takes the person.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Medium {
    Chat,
    Email,
    Call,
}

impl Medium {
    pub const ALL: [Medium; 3] = [Medium::Chat, Medium::Email, Medium::Call];

    fn index(self) -> usize {
        self as usize
    }

    pub fn of(channel: ChannelKind) -> Medium {
        match channel {
            ChannelKind::Email => Medium::Email,
            ChannelKind::Phone => Medium::Call,
            _ => Medium::Chat,
        }
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema, Default,
)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    /// Takes new conversations.
    Online,
    /// Signed in, finishing what they have; no new offers.
    Busy,
    /// Stepped away (also set automatically after missed offers).
    Away,
    /// Deep work: only escalations reach them (lanes come with escalation).
    Focus,
    #[default]
    Offline,
}

impl Presence {
    pub const ALL: [Presence; 5] = [
        Presence::Online,
        Presence::Busy,
        Presence::Away,
        Presence::Focus,
        Presence::Offline,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Presence::Online => "online",
            Presence::Busy => "busy",
            Presence::Away => "away",
            Presence::Focus => "focus",
            Presence::Offline => "offline",
        }
    }

    pub fn parse(name: &str) -> Option<Presence> {
        Presence::ALL.into_iter().find(|p| p.as_str() == name)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Mode {
    /// Answers customers as their job.
    Dedicated,
    /// Sales, R&D or office staff who answer beside their job: reached only after a
    /// conversation has waited `delay_ms`, and at most `daily_cap` new ones a day.
    PartTime { delay_ms: Millis, daily_cap: u32 },
}

/// What routing knows of an employee beside their presence and load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AgentProfile {
    pub id: EmployeeId,
    /// Skill name -> proficiency 1 (learning) to 5 (expert).
    pub skills: BTreeMap<String, u8>,
    /// Language codes spoken ("zh", "en").
    pub languages: Vec<String>,
    /// How many conversations of each medium at once.
    pub capacity: BTreeMap<Medium, u16>,
    pub mode: Mode,
    pub location: Option<String>,
}

/// A conversation waiting for someone, as the classifier and the customer's history describe it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TaskSpec {
    pub conversation_id: ConversationId,
    pub channel: ChannelKind,
    pub urgency: Urgency,
    pub vip_tier: u8,
    /// Must be held at these levels (from the question's type, the lane, the stage).
    pub required_skills: BTreeMap<String, u8>,
    /// Count in the score when held (from the question's keywords).
    pub wanted_skills: Vec<String>,
    /// Required when set: the customer's language.
    pub language: Option<String>,
    /// Counts in the score when `language` is not required: the language the question is in.
    #[serde(default)]
    pub preferred_language: Option<String>,
    /// Employees the customer has talked to before, with how strongly (0 to 1).
    pub previous_agents: Vec<(EmployeeId, f32)>,
    pub customer_location: Option<String>,
    /// When the conversation started waiting; kept across re-offers so waiting is not reset.
    pub waiting_since: Millis,
    /// An escalation: employees in focus and part-time responders (without their delay) may
    /// take it.
    #[serde(default)]
    pub escalated: bool,
    /// Only this employee may take it (a transfer to a named person).
    #[serde(default)]
    pub only_agent: Option<EmployeeId>,
    /// Never offered to these (the employee who transferred it away).
    #[serde(default)]
    pub exclude: Vec<EmployeeId>,
    /// The current owner, who keeps the conversation and its capacity until someone accepts
    /// (a transfer).
    #[serde(default)]
    pub held_by: Option<EmployeeId>,
}

impl TaskSpec {
    /// A conversation of normal urgency with no requirements or preferences.
    pub fn new(
        conversation_id: ConversationId,
        channel: ChannelKind,
        waiting_since: Millis,
    ) -> TaskSpec {
        TaskSpec {
            conversation_id,
            channel,
            urgency: Urgency::Normal,
            vip_tier: 0,
            required_skills: BTreeMap::new(),
            wanted_skills: Vec::new(),
            language: None,
            preferred_language: None,
            previous_agents: Vec::new(),
            customer_location: None,
            waiting_since,
            escalated: false,
            only_agent: None,
            exclude: Vec::new(),
            held_by: None,
        }
    }
}

/// The score's weights: one immutable version per policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Weights {
    pub skill_fit: f32,
    pub past_contact: f32,
    pub language: f32,
    pub spare_capacity: f32,
    pub idle_time: f32,
    pub fairness: f32,
    pub location: f32,
    /// Taken off part-time responders, so dedicated staff answer first when both can.
    pub part_time: f32,
    /// Taken off employees outside their working hours, whom only escalations reach.
    #[serde(default = "off_hours_weight")]
    pub off_hours: f32,
}

fn off_hours_weight() -> f32 {
    2.0
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            skill_fit: 3.0,
            past_contact: 2.0,
            language: 1.0,
            spare_capacity: 1.0,
            idle_time: 1.0,
            fairness: 1.5,
            location: 0.5,
            part_time: 1.0,
            off_hours: off_hours_weight(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Policy {
    pub version: u32,
    pub weights: Weights,
    /// How long an offer waits for an answer, per medium.
    pub offer_timeout_ms: BTreeMap<Medium, Millis>,
    /// Missed offers in a row after which an employee is set away.
    pub missed_offers_to_away: u32,
    /// Idle time at which the idle term is full.
    pub idle_horizon_ms: Millis,
    /// The window the fairness term counts assignments over.
    pub fairness_window_ms: Millis,
    /// Most conversations one joint assignment takes.
    pub batch_limit: usize,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            version: 1,
            weights: Weights::default(),
            offer_timeout_ms: BTreeMap::from([
                (Medium::Chat, 30_000),
                (Medium::Email, 120_000),
                (Medium::Call, 15_000),
            ]),
            missed_offers_to_away: 2,
            idle_horizon_ms: 30 * 60_000,
            fairness_window_ms: 8 * 3_600_000,
            batch_limit: 200,
        }
    }
}

pub enum Event {
    /// An employee's profile was created or changed.
    AgentUpdated(AgentProfile),
    AgentRemoved(EmployeeId),
    PresenceChanged {
        agent: EmployeeId,
        presence: Presence,
    },
    /// A conversation needs someone (new, reopened, or sent back to the queue).
    TaskArrived(TaskSpec),
    /// Someone owns a conversation already (assigned by hand, or at start-up): it takes capacity.
    TaskAssigned {
        conversation: ConversationId,
        agent: EmployeeId,
        channel: ChannelKind,
    },
    /// A conversation no longer needs its owner's capacity (resolved, closed) or left the queue.
    TaskFinished {
        conversation: ConversationId,
    },
    OfferAccepted {
        offer: OfferId,
    },
    OfferDeclined {
        offer: OfferId,
    },
    /// Time passed: offers expire.
    Tick,
    /// An employee's working hours began or ended, or their quiet hours (outside working hours
    /// only escalations reach them; in quiet hours nothing does).
    ShiftChanged {
        agent: EmployeeId,
        off_shift: bool,
        quiet: bool,
    },
    PolicyChanged(Policy),
}

/// The score's terms, in the order `Router::features` computes them.
const TERMS: [&str; 9] = [
    "skill_fit",
    "past_contact",
    "language",
    "spare_capacity",
    "idle_time",
    "fairness",
    "location",
    "part_time",
    "off_hours",
];

/// One term of a score, for the "why this person" view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ScoreTerm {
    pub name: std::borrow::Cow<'static, str>,
    /// The feature's value, 0 to 1.
    pub value: f32,
    /// Its weighted contribution.
    pub points: f32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Candidate {
    pub agent: EmployeeId,
    pub score: f32,
    pub terms: Vec<ScoreTerm>,
}

/// Why an offer went to whom: the policy version, the chosen employee's terms, the runners-up,
/// and how the choice was made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Decision {
    pub policy_version: u32,
    pub chosen: Candidate,
    pub runners_up: Vec<Candidate>,
    /// Employees who were filtered out, with the rule that excluded them (a few, for display).
    pub excluded: Vec<(EmployeeId, std::borrow::Cow<'static, str>)>,
    /// "greedy" or "joint" (several conversations and employees matched together).
    pub method: String,
    pub eligible: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Offer {
        offer: OfferId,
        conversation: ConversationId,
        agent: EmployeeId,
        expires_at: Millis,
        decision: Box<Decision>,
    },
    /// The offer was accepted: the employee owns the conversation.
    Assigned {
        conversation: ConversationId,
        agent: EmployeeId,
        offer: OfferId,
    },
    /// An offer ended without acceptance (declined, expired, or the conversation left).
    OfferWithdrawn {
        offer: OfferId,
        conversation: ConversationId,
        agent: EmployeeId,
        reason: WithdrawReason,
    },
    /// Routing changed someone's presence (missed offers).
    PresenceChanged {
        agent: EmployeeId,
        presence: Presence,
    },
}

/// Where a conversation stands in routing (`Router::task_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskStatus {
    Queued,
    Offered { offer: OfferId, agent: EmployeeId },
    Owned(EmployeeId),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WithdrawReason {
    Declined,
    Expired,
    ConversationGone,
    AgentGone,
}

#[derive(Debug, Clone)]
struct Agent {
    profile: AgentProfile,
    presence: Presence,
    /// Conversations owned or offered, per medium (`Medium::index`).
    load: [u16; 3],
    /// The profile's capacity per medium, looked up on every decision.
    capacity: [u16; 3],
    /// When they last got a conversation (idle time is measured from it).
    last_assigned_at: Millis,
    /// Assignment times inside the fairness window.
    recent_assignments: Vec<Millis>,
    missed_in_a_row: u32,
    /// Outside working hours: only escalations and transfers to them reach them.
    off_shift: bool,
    /// In quiet hours: nothing reaches them.
    quiet: bool,
    /// The profile's skills, languages and location as interned ids.
    keys: AgentKeys,
}

/// An employee's skills (sorted by id), languages and location as interned ids, so that
/// matching compares integers.
#[derive(Debug, Clone, Default)]
struct AgentKeys {
    skills: Vec<(u32, u8)>,
    languages: Vec<u32>,
    location: Option<u32>,
}

impl AgentKeys {
    fn level(&self, skill: u32) -> u8 {
        self.skills
            .binary_search_by_key(&skill, |(id, _)| *id)
            .map_or(0, |i| self.skills[i].1)
    }
}

/// A conversation's requirements and preferences as interned ids.
#[derive(Debug, Clone, Default)]
struct TaskKeys {
    required: Vec<(u32, u8)>,
    /// The required skills, then the wanted ones: what the skill fit averages over.
    asked: Vec<u32>,
    language: Option<u32>,
    /// The required language, else the question's.
    spoken: Option<u32>,
    location: Option<u32>,
}

impl Agent {
    fn spare(&self, medium: Medium) -> u16 {
        self.capacity[medium.index()].saturating_sub(self.load[medium.index()])
    }

    fn assigned_today(&self, now: Millis) -> u32 {
        self.recent_assignments
            .iter()
            .filter(|at| now - **at < 24 * 3_600_000)
            .count() as u32
    }
}

#[derive(Debug, Clone)]
struct Task {
    spec: TaskSpec,
    keys: TaskKeys,
    /// Employees this conversation must not be offered to again.
    excluded: HashSet<EmployeeId>,
    state: TaskState,
    bucket: u64,
    order: OrderKey,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum TaskState {
    Queued,
    Offered(OfferId),
    Owned(EmployeeId),
}

/// Queue order: more urgent first, then higher tier, then longer waiting, then id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct OrderKey {
    urgency: std::cmp::Reverse<Urgency>,
    vip: std::cmp::Reverse<u8>,
    waiting_since: Millis,
    conversation: ConversationId,
}

/// The score terms that depend on the employee and the time, not the conversation.
#[derive(Debug, Clone, Copy)]
struct Standing {
    idle: f32,
    fairness: f32,
}

/// One dispatch round's free employees (`pool`), what each conversation at the head of its
/// bucket may take (`eligible`: indexes into `pool`), and what of the score the employees'
/// standing decides.
struct Round<'a> {
    pool: Vec<(EmployeeId, &'a Agent)>,
    /// Head `h` may take `eligible_flat[eligible_at[h]..eligible_at[h + 1]]`.
    eligible_flat: Vec<u32>,
    eligible_at: Vec<usize>,
    /// Per employee and medium, the weighted terms that do not depend on the conversation.
    base: Vec<[f32; 3]>,
    weights: [f32; TERMS.len()],
}

/// Per skill and per language, every pool member's level and whether they speak it: a
/// round's scoring reads arrays instead of looking skills up pair by pair.
#[derive(Default)]
struct TermCache {
    levels: FxHashMap<u32, Vec<u8>>,
    speakers: FxHashMap<u32, Vec<bool>>,
}

impl Round<'_> {
    fn eligible(&self, head: usize) -> &[u32] {
        &self.eligible_flat[self.eligible_at[head]..self.eligible_at[head + 1]]
    }

    /// The score in thousandths of every employee head `head` may take, into `out`: what
    /// `Router::score_value` computes, with each employee's own terms summed once per round
    /// (ranking only: the recorded decision recomputes every term).
    fn rank(
        &self,
        head: usize,
        task: &Task,
        medium: usize,
        cache: &mut TermCache,
        out: &mut Vec<(i64, u32)>,
    ) {
        let keys = &task.keys;
        for skill in &keys.asked {
            cache.levels.entry(*skill).or_insert_with(|| {
                self.pool
                    .iter()
                    .map(|(_, a)| a.keys.level(*skill))
                    .collect()
            });
        }
        if let Some(language) = keys.spoken {
            cache.speakers.entry(language).or_insert_with(|| {
                self.pool
                    .iter()
                    .map(|(_, a)| a.keys.languages.contains(&language))
                    .collect()
            });
        }
        let asked: Vec<&[u8]> = keys
            .asked
            .iter()
            .map(|skill| cache.levels[skill].as_slice())
            .collect();
        let speakers = keys.spoken.map(|l| cache.speakers[&l].as_slice());
        let w = &self.weights;
        out.clear();
        out.extend(self.eligible(head).iter().map(|&i| {
            let at = i as usize;
            let fit = if asked.is_empty() {
                0.5
            } else {
                asked
                    .iter()
                    .map(|levels| f32::from(levels[at]) / 5.0)
                    .sum::<f32>()
                    / asked.len() as f32
            };
            let agent = self.pool[at].1;
            let past = Router::past_contact(agent, task);
            let language = speakers.is_none_or(|s| s[at]);
            let same_place = keys.location.is_some() && keys.location == agent.keys.location;
            let score = self.base[at][medium]
                + w[0] * fit
                + w[1] * past
                + w[2] * if language { 1.0 } else { 0.0 }
                + w[6] * if same_place { 1.0 } else { 0.0 };
            ((score * 1000.0) as i64, i)
        }));
    }
}

/// What a joint round found for one conversation: how many could take it, the best few.
/// Fixed arrays: a round records one for each of up to hundreds of conversations.
struct Considered {
    eligible: usize,
    best: [EmployeeId; 4],
    best_count: usize,
    /// A few of the round's employees who may not take it (their reasons are shown).
    excluded: [EmployeeId; 5],
    excluded_count: usize,
}

#[derive(Debug, Clone)]
struct Offer {
    conversation: ConversationId,
    agent: EmployeeId,
    medium: Medium,
    expires_at: Millis,
}

#[derive(Debug, Clone, Default)]
pub struct Router {
    policy: Policy,
    agents: BTreeMap<EmployeeId, Agent>,
    tasks: HashMap<ConversationId, Task>,
    /// Queued conversations by requirement signature, each in queue order.
    buckets: FxHashMap<u64, BTreeSet<OrderKey>>,
    /// Each bucket's required skills, and the buckets requiring each skill: an employee who
    /// gains room need only look at the buckets whose skills they hold.
    bucket_skills: FxHashMap<u64, Vec<String>>,
    buckets_by_skill: HashMap<String, FxHashSet<u64>>,
    offers: HashMap<OfferId, Offer>,
    expiries: BTreeSet<(Millis, OfferId)>,
    /// Online employees with room on some medium: the only ones a dispatch looks at.
    free: BTreeSet<EmployeeId>,
    /// Skill -> employees who hold it at any level (posting lists for the rarest-skill filter).
    holders: HashMap<String, BTreeSet<EmployeeId>>,
    /// What changed since the last dispatch. Only these can make a new pair possible: a
    /// conversation (re)queued in a bucket, an employee who gained room or changed; time passing
    /// (part-time delays, daily caps) marks everything on a `Tick`.
    dirty_buckets: FxHashSet<u64>,
    dirty_agents: BTreeSet<EmployeeId>,
    everything_dirty: bool,
    /// Skill names, language codes and locations -> small ids (`AgentKeys`, `TaskKeys`).
    interned: FxHashMap<String, u32>,
    next_offer: OfferId,
    /// When each offer inside the fairness window was made, oldest first, and how many
    /// employees are online: their ratio is the fair share the fairness term compares with
    /// (offers by employees now offline still count; the window forgets them).
    offers_in_window: std::collections::VecDeque<Millis>,
    online: usize,
}

impl Router {
    pub fn new(policy: Policy) -> Router {
        Router {
            policy,
            next_offer: 1,
            ..Router::default()
        }
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    pub fn handle(&mut self, event: Event, now: Millis) -> Vec<Effect> {
        self.handle_all(vec![event], now)
    }

    /// Applies events that happened together (a shift starting, a burst) and only then decides,
    /// so that several free employees and several waiting conversations are matched jointly.
    pub fn handle_all(&mut self, events: Vec<Event>, now: Millis) -> Vec<Effect> {
        let mut effects = Vec::new();
        for event in events {
            self.apply(event, now, &mut effects);
        }
        let window = self.policy.fairness_window_ms;
        while self
            .offers_in_window
            .front()
            .is_some_and(|at| now - *at >= window)
        {
            self.offers_in_window.pop_front();
        }
        self.expire(now, &mut effects);
        self.dispatch(now, &mut effects);
        effects
    }

    fn apply(&mut self, event: Event, now: Millis, effects: &mut Vec<Effect>) {
        match event {
            Event::AgentUpdated(profile) => match self.agents.get(&profile.id) {
                Some(_) => {
                    let keys = self.agent_keys(&profile);
                    let agent = self.agents.get_mut(&profile.id).expect("matched above");
                    agent.keys = keys;
                    agent.capacity = capacity_of(&profile);
                    let id = profile.id;
                    let old = std::mem::replace(&mut agent.profile, profile);
                    for skill in old.skills.keys() {
                        if let Some(holders) = self.holders.get_mut(skill) {
                            holders.remove(&id);
                        }
                    }
                    for skill in self.agents[&id].profile.skills.keys() {
                        self.holders.entry(skill.clone()).or_default().insert(id);
                    }
                    self.refresh_free(id);
                }
                None => {
                    // Conversations assigned to them before routing knew them count already.
                    let mut load = [0u16; 3];
                    for task in self.tasks.values() {
                        if task.state == TaskState::Owned(profile.id) {
                            load[Medium::of(task.spec.channel).index()] += 1;
                        }
                    }
                    for skill in profile.skills.keys() {
                        self.holders
                            .entry(skill.clone())
                            .or_default()
                            .insert(profile.id);
                    }
                    let keys = self.agent_keys(&profile);
                    self.agents.insert(
                        profile.id,
                        Agent {
                            keys,
                            capacity: capacity_of(&profile),
                            profile,
                            presence: Presence::Offline,
                            load,
                            last_assigned_at: now,
                            recent_assignments: Vec::new(),
                            missed_in_a_row: 0,
                            off_shift: false,
                            quiet: false,
                        },
                    );
                }
            },
            Event::AgentRemoved(id) => {
                self.withdraw_offers_of(id, WithdrawReason::AgentGone, effects);
                if let Some(gone) = self.agents.remove(&id) {
                    if gone.presence == Presence::Online {
                        self.online -= 1;
                    }
                    for skill in gone.profile.skills.keys() {
                        if let Some(holders) = self.holders.get_mut(skill) {
                            holders.remove(&id);
                        }
                    }
                }
                self.free.remove(&id);
                // What they owned goes back to the queue through the caller (TaskArrived).
            }
            Event::ShiftChanged {
                agent,
                off_shift,
                quiet,
            } => {
                if let Some(a) = self.agents.get_mut(&agent) {
                    a.off_shift = off_shift;
                    a.quiet = quiet;
                }
                self.refresh_free(agent);
            }
            Event::PresenceChanged { agent, presence } => {
                if let Some(a) = self.agents.get_mut(&agent) {
                    match (a.presence == Presence::Online, presence == Presence::Online) {
                        (false, true) => self.online += 1,
                        (true, false) => self.online -= 1,
                        _ => {}
                    }
                    a.presence = presence;
                    if presence == Presence::Online {
                        a.missed_in_a_row = 0;
                    }
                }
                self.refresh_free(agent);
                if presence == Presence::Offline {
                    self.withdraw_offers_of(agent, WithdrawReason::AgentGone, effects);
                }
            }
            Event::TaskArrived(mut spec) => {
                let id = spec.conversation_id;
                let mut excluded = HashSet::new();
                match self.tasks.get(&id).map(|t| t.state) {
                    Some(state @ (TaskState::Queued | TaskState::Offered(_))) => {
                        // Re-read while waiting: who declined stays excluded, and a transfer's
                        // hold moves to the new reading instead of being released.
                        if let Some(task) = self.tasks.get_mut(&id) {
                            excluded = std::mem::take(&mut task.excluded);
                            let held = task.spec.held_by.take();
                            spec.held_by = spec.held_by.or(held);
                        }
                        if state == TaskState::Queued {
                            self.unqueue(id);
                        } else {
                            self.finish(id, effects);
                        }
                    }
                    // A transfer: the owner keeps the conversation and its capacity until
                    // someone accepts.
                    Some(TaskState::Owned(owner)) if spec.held_by == Some(owner) => {
                        self.tasks.remove(&id);
                    }
                    Some(TaskState::Owned(_)) => self.finish(id, effects),
                    None => {}
                }
                excluded.extend(spec.exclude.iter().copied());
                self.enqueue(spec, excluded);
            }
            Event::TaskAssigned {
                conversation,
                agent,
                channel,
            } => {
                self.finish(conversation, effects);
                if let Some(a) = self.agents.get_mut(&agent) {
                    a.load[Medium::of(channel).index()] += 1;
                }
                self.refresh_free(agent);
                self.tasks.insert(
                    conversation,
                    Task {
                        spec: TaskSpec::new(conversation, channel, now),
                        keys: TaskKeys::default(),
                        excluded: HashSet::new(),
                        state: TaskState::Owned(agent),
                        bucket: 0,
                        order: order_key(conversation, Urgency::Normal, 0, now),
                    },
                );
            }
            Event::TaskFinished { conversation } => self.finish(conversation, effects),
            Event::OfferAccepted { offer } => {
                if let Some(o) = self.remove_offer(offer) {
                    let mut holder = None;
                    if let Some(task) = self.tasks.get_mut(&o.conversation) {
                        task.state = TaskState::Owned(o.agent);
                        holder = task.spec.held_by.take();
                    }
                    if let Some(holder) = holder {
                        self.release(holder, o.medium);
                    }
                    if let Some(agent) = self.agents.get_mut(&o.agent) {
                        agent.missed_in_a_row = 0;
                    }
                    effects.push(Effect::Assigned {
                        conversation: o.conversation,
                        agent: o.agent,
                        offer,
                    });
                }
            }
            Event::OfferDeclined { offer } => {
                self.end_offer(offer, WithdrawReason::Declined, effects);
            }
            Event::Tick => self.everything_dirty = true,
            Event::PolicyChanged(policy) => {
                self.policy = policy;
                self.everything_dirty = true;
            }
        }
    }

    fn refresh_free(&mut self, id: EmployeeId) {
        let has_room = self.agents.get(&id).is_some_and(|a| {
            matches!(a.presence, Presence::Online | Presence::Focus)
                && Medium::ALL.iter().any(|m| a.spare(*m) > 0)
        });
        if has_room {
            self.free.insert(id);
            self.dirty_agents.insert(id);
        } else {
            self.free.remove(&id);
        }
    }

    /// The earliest time a `Tick` has something to do.
    pub fn next_deadline(&self) -> Option<Millis> {
        self.expiries.first().map(|(at, _)| *at)
    }

    fn expire(&mut self, now: Millis, effects: &mut Vec<Effect>) {
        while let Some(&(at, offer)) = self.expiries.first() {
            if at > now {
                break;
            }
            self.end_offer(offer, WithdrawReason::Expired, effects);
        }
    }

    /// A declined or expired offer: the capacity is released, the employee is excluded for
    /// this conversation, and the conversation goes back to the head of its queue.
    fn end_offer(&mut self, offer: OfferId, reason: WithdrawReason, effects: &mut Vec<Effect>) {
        let Some(o) = self.remove_offer(offer) else {
            return;
        };
        self.release(o.agent, o.medium);
        effects.push(Effect::OfferWithdrawn {
            offer,
            conversation: o.conversation,
            agent: o.agent,
            reason,
        });
        if reason == WithdrawReason::Expired
            && let Some(agent) = self.agents.get_mut(&o.agent)
        {
            agent.missed_in_a_row += 1;
            if agent.missed_in_a_row >= self.policy.missed_offers_to_away
                && agent.presence == Presence::Online
            {
                agent.presence = Presence::Away;
                self.online -= 1;
                self.free.remove(&o.agent);
                effects.push(Effect::PresenceChanged {
                    agent: o.agent,
                    presence: Presence::Away,
                });
            }
        }
        if let Some(task) = self.tasks.remove(&o.conversation) {
            let mut excluded = task.excluded;
            if matches!(reason, WithdrawReason::Declined | WithdrawReason::Expired) {
                excluded.insert(o.agent);
            }
            self.enqueue(task.spec, excluded);
        }
    }

    fn remove_offer(&mut self, offer: OfferId) -> Option<Offer> {
        let o = self.offers.remove(&offer)?;
        self.expiries.remove(&(o.expires_at, offer));
        Some(o)
    }

    fn release(&mut self, agent: EmployeeId, medium: Medium) {
        if let Some(a) = self.agents.get_mut(&agent) {
            let load = &mut a.load[medium.index()];
            *load = load.saturating_sub(1);
        }
        self.refresh_free(agent);
    }

    fn withdraw_offers_of(
        &mut self,
        agent: EmployeeId,
        reason: WithdrawReason,
        effects: &mut Vec<Effect>,
    ) {
        let mine: Vec<OfferId> = self
            .offers
            .iter()
            .filter(|(_, o)| o.agent == agent)
            .map(|(id, _)| *id)
            .collect();
        for offer in mine {
            self.end_offer(offer, reason, effects);
        }
    }

    /// The conversation leaves routing: its offer is withdrawn, its owner's capacity freed.
    fn finish(&mut self, conversation: ConversationId, effects: &mut Vec<Effect>) {
        let Some(task) = self.tasks.get(&conversation) else {
            return;
        };
        let medium = Medium::of(task.spec.channel);
        let (state, held_by) = (task.state, task.spec.held_by);
        // A transfer still waiting: its owner's hold ends with it.
        if let Some(holder) = held_by {
            self.release(holder, medium);
        }
        match state {
            TaskState::Queued => self.unqueue(conversation),
            TaskState::Offered(offer) => {
                if let Some(o) = self.remove_offer(offer) {
                    self.release(o.agent, o.medium);
                    effects.push(Effect::OfferWithdrawn {
                        offer,
                        conversation,
                        agent: o.agent,
                        reason: WithdrawReason::ConversationGone,
                    });
                }
            }
            TaskState::Owned(agent) => self.release(agent, medium),
        }
        self.tasks.remove(&conversation);
    }

    fn unqueue(&mut self, conversation: ConversationId) {
        if let Some(task) = self.tasks.remove(&conversation) {
            self.leave_bucket(task.bucket, &task.order);
        }
    }

    /// Takes a conversation out of its bucket; an emptied bucket leaves the skill index too.
    fn leave_bucket(&mut self, signature: u64, order: &OrderKey) {
        let Some(bucket) = self.buckets.get_mut(&signature) else {
            return;
        };
        bucket.remove(order);
        if bucket.is_empty() {
            self.buckets.remove(&signature);
            for skill in self.bucket_skills.remove(&signature).unwrap_or_default() {
                if let Some(buckets) = self.buckets_by_skill.get_mut(&skill) {
                    buckets.remove(&signature);
                    if buckets.is_empty() {
                        self.buckets_by_skill.remove(&skill);
                    }
                }
            }
        }
    }

    fn enqueue(&mut self, spec: TaskSpec, excluded: HashSet<EmployeeId>) {
        let bucket = signature(&spec);
        let order = order_key(
            spec.conversation_id,
            spec.urgency,
            spec.vip_tier,
            spec.waiting_since,
        );
        self.buckets.entry(bucket).or_default().insert(order);
        self.dirty_buckets.insert(bucket);
        if !self.bucket_skills.contains_key(&bucket) {
            let skills: Vec<String> = spec.required_skills.keys().cloned().collect();
            for skill in &skills {
                self.buckets_by_skill
                    .entry(skill.clone())
                    .or_default()
                    .insert(bucket);
            }
            self.bucket_skills.insert(bucket, skills);
        }
        let keys = self.task_keys(&spec);
        self.tasks.insert(
            spec.conversation_id,
            Task {
                spec,
                keys,
                excluded,
                state: TaskState::Queued,
                bucket,
                order,
            },
        );
    }

    /// Why `agent` cannot take `task` now, if it cannot.
    fn exclusion(&self, agent: &Agent, task: &Task, now: Millis) -> Option<&'static str> {
        let spec = &task.spec;
        let id = agent.profile.id;
        if spec.only_agent.is_some_and(|only| only != id) {
            return Some("transferred to someone else");
        }
        let called = spec.escalated || spec.only_agent == Some(id);
        match agent.presence {
            Presence::Online => {}
            Presence::Focus if called => {}
            Presence::Focus => return Some("in focus: escalations only"),
            _ => return Some("not online"),
        }
        if agent.quiet {
            return Some("quiet hours");
        }
        if agent.off_shift && !called {
            return Some("outside working hours: escalations only");
        }
        if task.excluded.contains(&id) {
            return Some("declined, missed or transferred this conversation");
        }
        if let Some(reason) = Self::requirement_miss(agent, task) {
            return Some(reason);
        }
        if let Mode::PartTime {
            delay_ms,
            daily_cap,
        } = agent.profile.mode
        {
            if !called && now - spec.waiting_since < delay_ms {
                return Some("part-time: the conversation has not waited long enough");
            }
            if agent.assigned_today(now) >= daily_cap {
                return Some("part-time: daily cap reached");
            }
        }
        // Last, so that the other reasons say whether they could take it once they have room.
        if agent.spare(Medium::of(spec.channel)) == 0 {
            return Some("no spare capacity");
        }
        None
    }

    /// The hard requirements every conversation of a bucket shares (skills, language).
    fn requirement_miss(agent: &Agent, task: &Task) -> Option<&'static str> {
        for (skill, level) in &task.keys.required {
            if agent.keys.level(*skill) < *level {
                return Some("lacks a required skill");
            }
        }
        if let Some(language) = task.keys.language
            && !agent.keys.languages.contains(&language)
        {
            return Some("does not speak the customer's language");
        }
        None
    }

    fn intern(&mut self, name: &str) -> u32 {
        let next = self.interned.len() as u32;
        *self.interned.entry(name.to_owned()).or_insert(next)
    }

    fn agent_keys(&mut self, profile: &AgentProfile) -> AgentKeys {
        let mut skills: Vec<(u32, u8)> = profile
            .skills
            .iter()
            .map(|(name, level)| (self.intern(name), *level))
            .collect();
        skills.sort_unstable();
        AgentKeys {
            skills,
            languages: profile.languages.iter().map(|l| self.intern(l)).collect(),
            location: profile.location.as_deref().map(|l| self.intern(l)),
        }
    }

    fn task_keys(&mut self, spec: &TaskSpec) -> TaskKeys {
        let required: Vec<(u32, u8)> = spec
            .required_skills
            .iter()
            .map(|(name, level)| (self.intern(name), *level))
            .collect();
        let mut asked: Vec<u32> = required.iter().map(|(id, _)| *id).collect();
        asked.extend(spec.wanted_skills.iter().map(|name| self.intern(name)));
        let language = spec.language.as_deref().map(|l| self.intern(l));
        TaskKeys {
            required,
            asked,
            language,
            spoken: language.or_else(|| spec.preferred_language.as_deref().map(|l| self.intern(l))),
            location: spec.customer_location.as_deref().map(|l| self.intern(l)),
        }
    }

    /// The score's features, each 0 to 1 (part-time -1 to 0), in `TERMS` order.
    fn features(&self, agent: &Agent, task: &Task, now: Millis) -> [f32; TERMS.len()] {
        let standing = self.standing(agent, now, self.average_recent());
        Self::features_with(agent, &standing, task)
    }

    /// The terms that depend on the employee and the time only (a round computes them once).
    fn standing(&self, agent: &Agent, now: Millis, share: f32) -> Standing {
        let idle = ((now - agent.last_assigned_at).max(0) as f32
            / self.policy.idle_horizon_ms.max(1) as f32)
            .min(1.0);
        let window = self.policy.fairness_window_ms;
        let recent = agent
            .recent_assignments
            .iter()
            .filter(|at| now - **at < window)
            .count() as f32;
        // Fewer recent assignments than the others: a bonus; more: a penalty.
        let fairness = if share <= 0.0 {
            0.0
        } else {
            ((share - recent) / share).clamp(-1.0, 1.0)
        };
        Standing { idle, fairness }
    }

    fn features_with(agent: &Agent, standing: &Standing, task: &Task) -> [f32; TERMS.len()] {
        let spec = &task.spec;
        let profile = &agent.profile;
        let keys = &task.keys;
        let [fit, past, speaks] = Self::conversation_terms(agent, task);
        let medium = Medium::of(spec.channel);
        let capacity = f32::from(agent.capacity[medium.index()]).max(1.0);
        let spare = f32::from(agent.spare(medium)) / capacity;
        let Standing { idle, fairness } = *standing;
        let same_place = keys.location.is_some() && keys.location == agent.keys.location;
        let part_time = matches!(profile.mode, Mode::PartTime { .. });
        [
            fit,
            past,
            speaks,
            spare,
            idle,
            fairness,
            if same_place { 1.0 } else { 0.0 },
            if part_time { -1.0 } else { 0.0 },
            if agent.off_shift { -1.0 } else { 0.0 },
        ]
    }

    /// How strongly the customer has talked to this employee before (0 to 1).
    fn past_contact(agent: &Agent, task: &Task) -> f32 {
        task.spec
            .previous_agents
            .iter()
            .find(|(id, _)| *id == agent.profile.id)
            .map_or(0.0, |(_, strength)| strength.clamp(0.0, 1.0))
    }

    /// Skill fit, past contact and language: the terms that depend on the conversation.
    fn conversation_terms(agent: &Agent, task: &Task) -> [f32; 3] {
        let keys = &task.keys;
        let held: f32 = keys
            .asked
            .iter()
            .map(|skill| f32::from(agent.keys.level(*skill)) / 5.0)
            .sum();
        let fit = if keys.asked.is_empty() {
            0.5
        } else {
            held / keys.asked.len() as f32
        };
        let past = Self::past_contact(agent, task);
        let speaks = keys
            .spoken
            .is_none_or(|l| agent.keys.languages.contains(&l));
        [fit, past, if speaks { 1.0 } else { 0.0 }]
    }

    fn weights(&self) -> [f32; TERMS.len()] {
        let w = &self.policy.weights;
        [
            w.skill_fit,
            w.past_contact,
            w.language,
            w.spare_capacity,
            w.idle_time,
            w.fairness,
            w.location,
            w.part_time,
            w.off_hours,
        ]
    }

    fn score_value(&self, agent: &Agent, task: &Task, now: Millis) -> f32 {
        Self::weigh(&self.features(agent, task, now), &self.weights())
    }

    fn weigh(features: &[f32; TERMS.len()], weights: &[f32; TERMS.len()]) -> f32 {
        features.iter().zip(weights).map(|(f, w)| f * w).sum()
    }

    fn score(&self, agent: &Agent, task: &Task, now: Millis) -> Candidate {
        let features = self.features(agent, task, now);
        let terms: Vec<ScoreTerm> = TERMS
            .iter()
            .zip(features)
            .zip(self.weights())
            .map(|((name, value), weight)| ScoreTerm {
                name: std::borrow::Cow::Borrowed(*name),
                value,
                points: value * weight,
            })
            .collect();
        Candidate {
            agent: agent.profile.id,
            score: terms.iter().map(|t| t.points).sum(),
            terms,
        }
    }

    fn average_recent(&self) -> f32 {
        if self.online == 0 {
            0.0
        } else {
            self.offers_in_window.len() as f32 / self.online as f32
        }
    }

    /// Offers queued conversations to employees with room until no pair fits.
    fn dispatch(&mut self, now: Millis, effects: &mut Vec<Effect>) {
        loop {
            let nothing_new = !self.everything_dirty
                && self.dirty_buckets.is_empty()
                && self.dirty_agents.is_empty();
            if self.free.is_empty() || self.buckets.is_empty() || nothing_new {
                self.clean();
                return;
            }
            let everything = std::mem::take(&mut self.everything_dirty);
            let dirty_buckets = std::mem::take(&mut self.dirty_buckets);
            let dirty_agents: Vec<EmployeeId> = std::mem::take(&mut self.dirty_agents)
                .into_iter()
                .filter(|id| self.free.contains(id))
                .collect();
            let limit = self.policy.batch_limit;
            let mut heads: Vec<OrderKey> = Vec::new();
            // The employees this round may pair: for a changed bucket every free employee who
            // meets its requirements; for an unchanged one only those who changed (nobody else
            // could take its conversations before, or they would not be waiting).
            let mut pool: BTreeSet<EmployeeId> = BTreeSet::new();
            let visit: Vec<u64> = if everything {
                self.buckets.keys().copied().collect()
            } else {
                // Changed buckets, and the buckets a changed employee may serve: those whose
                // required skills they hold, and those that require none.
                let mut visit: FxHashSet<u64> = dirty_buckets.iter().copied().collect();
                for id in &dirty_agents {
                    for skill in self.agents[id].profile.skills.keys() {
                        if let Some(buckets) = self.buckets_by_skill.get(skill) {
                            visit.extend(buckets.iter().copied());
                        }
                    }
                }
                if !dirty_agents.is_empty() {
                    visit.extend(
                        self.bucket_skills
                            .iter()
                            .filter(|(_, skills)| skills.is_empty())
                            .map(|(signature, _)| *signature),
                    );
                }
                visit.into_iter().collect()
            };
            for signature in &visit {
                let Some(bucket) = self.buckets.get(signature) else {
                    continue;
                };
                let changed = everything || dirty_buckets.contains(signature);
                // The bucket's requirements first, once, with its head standing for all.
                let Some(head) = bucket.first() else { continue };
                let head_task = &self.tasks[&head.conversation];
                let spec = &head_task.spec;
                let medium = Medium::of(spec.channel);
                let looking: std::borrow::Cow<'_, [EmployeeId]> = if changed {
                    self.free_candidates(spec).into()
                } else {
                    dirty_agents.as_slice().into()
                };
                let able: Vec<EmployeeId> = looking
                    .iter()
                    .copied()
                    .filter(|id| {
                        let a = &self.agents[id];
                        a.spare(medium) > 0 && Self::requirement_miss(a, head_task).is_none()
                    })
                    .collect();
                if able.is_empty() {
                    continue;
                }
                // No more of the bucket can be served than its able employees have seats.
                let seats: usize = able
                    .iter()
                    .map(|id| usize::from(self.agents[id].spare(medium)))
                    .sum();
                let servable = bucket.iter().filter(|key| {
                    let task = &self.tasks[&key.conversation];
                    able.iter()
                        .any(|id| self.exclusion(&self.agents[id], task, now).is_none())
                });
                heads.extend(servable.take(seats.min(limit)).copied());
                pool.extend(able);
            }
            let pool: Vec<EmployeeId> = pool.into_iter().collect();
            heads.sort();
            let (pairs, considered, limited) = {
                let round = self.round(&heads, &pool, now);
                let chosen = self.choose_servable(&heads, &round);
                let limited = chosen.len() >= self.policy.batch_limit;
                match chosen.as_slice() {
                    [] => {
                        self.clean();
                        return;
                    }
                    [(head, _)] => {
                        let conversation = heads[*head].conversation;
                        let best = self.best_agent(&heads[*head], *head, &round);
                        (vec![(conversation, best)], FxHashMap::default(), limited)
                    }
                    _ => {
                        let (pairs, considered) = self.joint_assignment(&chosen, &heads, &round);
                        (pairs, considered, limited)
                    }
                }
            };
            let offers_before = self.offers.len();
            let planned = pairs.len();
            for (conversation, agent) in pairs {
                let considered = considered.get(&conversation);
                self.offer(conversation, agent, &pool, considered, now, effects);
            }
            let made = self.offers.len() - offers_before;
            // Everything servable was served unless the round hit its limit or an offer could
            // not be made; only then is there more to find.
            if made == 0 || (made == planned && !limited) {
                self.clean();
                return;
            }
            // A round takes at most `batch_limit`: what it looked at is looked at again.
            self.everything_dirty |= everything;
            self.dirty_buckets.extend(dirty_buckets);
            self.dirty_agents.extend(dirty_agents);
        }
    }

    /// Free employees who hold the rarest of the conversation's required skills (all free
    /// employees when it requires none): the candidates before the other filters.
    fn free_candidates(&self, spec: &TaskSpec) -> Vec<EmployeeId> {
        if let Some(only) = spec.only_agent {
            return self.free.get(&only).copied().into_iter().collect();
        }
        let rarest = spec
            .required_skills
            .keys()
            .map(|skill| self.holders.get(skill))
            .min_by_key(|holders| holders.map_or(0, BTreeSet::len));
        match rarest {
            None => self.free.iter().copied().collect(),
            Some(None) => Vec::new(),
            Some(Some(holders)) if holders.len() < self.free.len() => holders
                .iter()
                .filter(|id| self.free.contains(id))
                .copied()
                .collect(),
            Some(Some(holders)) => self
                .free
                .iter()
                .filter(|id| holders.contains(id))
                .copied()
                .collect(),
        }
    }

    /// Nothing more can be paired: what changed has been looked at.
    fn clean(&mut self) {
        self.everything_dirty = false;
        self.dirty_buckets.clear();
        self.dirty_agents.clear();
    }

    /// The round's view of the free employees and of what each head conversation may take:
    /// the bucket's requirements are checked once per employee, not once per conversation.
    fn round<'a>(&'a self, heads: &[OrderKey], pool: &[EmployeeId], now: Millis) -> Round<'a> {
        let pool: Vec<(EmployeeId, &Agent)> =
            pool.iter().map(|id| (*id, &self.agents[id])).collect();
        let share = self.average_recent();
        let standing: Vec<Standing> = pool
            .iter()
            .map(|(_, a)| self.standing(a, now, share))
            .collect();
        // Per medium, whether nothing but a conversation's own exclusions could stop an employee:
        // online, working, not quiet, dedicated, with room.
        let plain: Vec<[bool; 3]> = pool
            .iter()
            .map(|(_, a)| {
                let free = a.presence == Presence::Online
                    && !a.quiet
                    && !a.off_shift
                    && a.profile.mode == Mode::Dedicated;
                Medium::ALL.map(|m| free && a.spare(m) > 0)
            })
            .collect();
        let mut meeting: FxHashMap<u64, Vec<u32>> = FxHashMap::default();
        let mut eligible_flat: Vec<u32> = Vec::new();
        let mut eligible_at: Vec<usize> = Vec::with_capacity(heads.len() + 1);
        eligible_at.push(0);
        for key in heads {
            {
                let task = &self.tasks[&key.conversation];
                let meets = meeting.entry(task.bucket).or_insert_with(|| {
                    (0..pool.len() as u32)
                        .filter(|i| Self::requirement_miss(pool[*i as usize].1, task).is_none())
                        .collect()
                });
                let medium = Medium::of(task.spec.channel).index();
                let unhindered = task.spec.only_agent.is_none() && task.excluded.is_empty();
                eligible_flat.extend(meets.iter().copied().filter(|i| {
                    (unhindered && plain[*i as usize][medium])
                        || self.may_take_beyond_requirements(pool[*i as usize].1, task, now)
                }));
            }
            eligible_at.push(eligible_flat.len());
        }
        let weights = self.weights();
        let base = pool
            .iter()
            .zip(&standing)
            .map(
                |((_, agent), standing): (&(EmployeeId, &Agent), &Standing)| {
                    let own = weights[4] * standing.idle
                        + weights[5] * standing.fairness
                        + weights[7]
                            * if matches!(agent.profile.mode, Mode::PartTime { .. }) {
                                -1.0
                            } else {
                                0.0
                            }
                        + weights[8] * if agent.off_shift { -1.0 } else { 0.0 };
                    Medium::ALL.map(|medium| {
                        let capacity = f32::from(agent.capacity[medium.index()]).max(1.0);
                        own + weights[3] * f32::from(agent.spare(medium)) / capacity
                    })
                },
            )
            .collect();
        Round {
            pool,
            eligible_flat,
            eligible_at,
            base,
            weights,
        }
    }

    /// `exclusion` without the requirements a bucket shares: true when nothing else stops it.
    fn may_take_beyond_requirements(&self, agent: &Agent, task: &Task, now: Millis) -> bool {
        let spec = &task.spec;
        let id = agent.profile.id;
        if spec.only_agent.is_some_and(|only| only != id) {
            return false;
        }
        let called = spec.escalated || spec.only_agent == Some(id);
        match agent.presence {
            Presence::Online => {}
            Presence::Focus if called => {}
            _ => return false,
        }
        if agent.quiet || (agent.off_shift && !called) {
            return false;
        }
        if task.excluded.contains(&id) {
            return false;
        }
        if let Mode::PartTime {
            delay_ms,
            daily_cap,
        } = agent.profile.mode
        {
            if !called && now - spec.waiting_since < delay_ms {
                return false;
            }
            if agent.assigned_today(now) >= daily_cap {
                return false;
            }
        }
        agent.spare(Medium::of(spec.channel)) > 0
    }

    /// Heads in queue order that can all be served at once by distinct capacity units
    /// (augmenting paths, so an earlier conversation is never skipped for a later one that
    /// takes its only possible employee). Returns each (as an index into `heads`) with one
    /// feasible employee (an index into the round's pool).
    fn choose_servable(&self, heads: &[OrderKey], round: &Round<'_>) -> Vec<(usize, u32)> {
        // Capacity units: each employee's spare seats per medium, contiguous.
        let mut unit_member: Vec<u32> = Vec::new();
        let mut units_of: Vec<[std::ops::Range<usize>; 3]> = Vec::with_capacity(round.pool.len());
        for (i, (_, a)) in round.pool.iter().enumerate() {
            let ranges = Medium::ALL.map(|medium| {
                let start = unit_member.len();
                unit_member.extend(std::iter::repeat_n(i as u32, usize::from(a.spare(medium))));
                start..unit_member.len()
            });
            units_of.push(ranges);
        }
        // When a conversation nobody declined cannot be added, neither can the later ones of its
        // bucket (same requirements), unless part-time delays make waiting time matter.
        let waiting_matters = round
            .pool
            .iter()
            .any(|(_, a)| matches!(a.profile.mode, Mode::PartTime { .. }));
        let mut full_buckets: FxHashSet<u64> = FxHashSet::default();
        let mut unit_owner: Vec<Option<usize>> = vec![None; unit_member.len()];
        let mut chosen: Vec<usize> = Vec::new();
        // Chosen head `k` may take units `options[starts[k]..starts[k + 1]]`.
        let mut options: Vec<usize> = Vec::new();
        let mut starts: Vec<usize> = vec![0];
        let mut visited = vec![0u32; unit_member.len()];
        for (h, key) in heads.iter().enumerate() {
            if chosen.len() >= unit_member.len() || chosen.len() >= self.policy.batch_limit {
                break;
            }
            let task = &self.tasks[&key.conversation];
            if full_buckets.contains(&task.bucket) {
                continue;
            }
            let medium = Medium::of(task.spec.channel).index();
            options.extend(
                round
                    .eligible(h)
                    .iter()
                    .flat_map(|i| units_of[*i as usize][medium].clone()),
            );
            if options.len() == *starts.last().expect("starts at 0") {
                continue;
            }
            starts.push(options.len());
            let index = starts.len() - 2;
            // A new stamp after each success instead of clearing the visited marks; after a
            // failure the marks stay right: what it visited reaches no free unit until the
            // matching changes.
            let stamp = index as u32 + 1;
            if augment(
                index,
                &options,
                &starts,
                &mut unit_owner,
                &mut visited,
                stamp,
            ) {
                chosen.push(h);
            } else {
                starts.pop();
                options.truncate(*starts.last().expect("starts at 0"));
                if task.excluded.is_empty() && !waiting_matters {
                    full_buckets.insert(task.bucket);
                }
            }
        }
        let mut feasible = vec![0u32; chosen.len()];
        for (unit, owner) in unit_owner.iter().enumerate() {
            if let Some(option) = owner {
                feasible[*option] = unit_member[unit];
            }
        }
        chosen.into_iter().zip(feasible).collect()
    }

    /// The best-scoring employee head `head` may take (the lower id on a tie).
    fn best_agent(&self, head: &OrderKey, index: usize, round: &Round<'_>) -> EmployeeId {
        let task = &self.tasks[&head.conversation];
        let medium = Medium::of(task.spec.channel).index();
        let mut ranked = Vec::new();
        round.rank(index, task, medium, &mut TermCache::default(), &mut ranked);
        // The pool is in id order: among equal scores the lowest index is the lowest id.
        ranked
            .iter()
            .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)))
            .map(|(_, i)| round.pool[*i as usize].0)
            .expect("a servable conversation has an eligible employee")
    }

    /// The pairing of the chosen heads with capacity units that maximises the total score,
    /// among pairings that serve them all (one exists: `choose_servable` found it). Each
    /// conversation is weighed against its best few employees and the one that made it
    /// servable, which keeps the problem small when employees far outnumber conversations.
    fn joint_assignment(
        &self,
        chosen: &[(usize, u32)],
        heads: &[OrderKey],
        round: &Round<'_>,
    ) -> (
        Vec<(ConversationId, EmployeeId)>,
        FxHashMap<ConversationId, Considered>,
    ) {
        const SHORTLIST: usize = 5;
        let mut considered: FxHashMap<ConversationId, Considered> = FxHashMap::default();
        considered.reserve(chosen.len());
        // Per chosen head: its shortlist (pool index, score in thousandths).
        let mut shortlists: Edges<u32> = Edges::with_rows(chosen.len());
        let mut needed = [0u16; 3];
        let mut ranked: Vec<(i64, u32)> = Vec::new();
        let mut cache = TermCache::default();
        for (head, feasible) in chosen {
            let conversation = heads[*head].conversation;
            let task = &self.tasks[&conversation];
            let medium = Medium::of(task.spec.channel).index();
            needed[medium] += 1;
            round.rank(*head, task, medium, &mut cache, &mut ranked);
            // The pool is in id order, so the index breaks ties by the lower id. Only the best
            // few need an order.
            let order = |a: &(i64, u32), b: &(i64, u32)| b.0.cmp(&a.0).then(a.1.cmp(&b.1));
            if ranked.len() > SHORTLIST {
                ranked.select_nth_unstable_by(SHORTLIST - 1, order);
                ranked[..SHORTLIST].sort_unstable_by(order);
            } else {
                ranked.sort_unstable_by(order);
            }
            // The eligible are in pool order: the first few missing from them were excluded.
            let mut eligible = round.eligible(*head).iter().peekable();
            let mut this = Considered {
                eligible: ranked.len(),
                best: [0; 4],
                best_count: 0,
                excluded: [0; 5],
                excluded_count: 0,
            };
            for i in 0..round.pool.len() as u32 {
                if this.excluded_count == this.excluded.len() {
                    break;
                }
                if eligible.next_if_eq(&&i).is_none() {
                    this.excluded[this.excluded_count] = round.pool[i as usize].0;
                    this.excluded_count += 1;
                }
            }
            for (_, i) in ranked.iter().take(this.best.len()) {
                this.best[this.best_count] = round.pool[*i as usize].0;
                this.best_count += 1;
            }
            considered.insert(conversation, this);
            let best_few = ranked.iter().take(SHORTLIST).map(|(score, i)| (*i, *score));
            let feasible_too = if ranked.iter().take(SHORTLIST).any(|(_, i)| i == feasible) {
                None
            } else {
                ranked
                    .iter()
                    .find(|(_, i)| i == feasible)
                    .map(|(score, i)| (*i, *score))
            };
            shortlists.push_row(best_few.chain(feasible_too));
        }
        // Columns: the shortlisted employees' seats, as many as the heads could use.
        let mut columns_of: FxHashMap<(u32, usize), std::ops::Range<usize>> = FxHashMap::default();
        let mut column_member: Vec<u32> = Vec::new();
        let mut edges: Edges<usize> = Edges::with_rows(chosen.len());
        for (k, (head, _)) in chosen.iter().enumerate() {
            let medium = Medium::of(self.tasks[&heads[*head].conversation].spec.channel).index();
            let mut row = Vec::new();
            for (i, score) in shortlists.row(k) {
                let range = columns_of
                    .entry((*i, medium))
                    .or_insert_with(|| {
                        let seats = round.pool[*i as usize]
                            .1
                            .spare(Medium::ALL[medium])
                            .min(needed[medium]);
                        let start = column_member.len();
                        column_member.extend(std::iter::repeat_n(*i, usize::from(seats)));
                        start..column_member.len()
                    })
                    .clone();
                row.extend(range.map(|column| (column, *score)));
            }
            edges.push_row(row.drain(..));
        }
        let assignment = max_weight_assignment(&edges, column_member.len());
        let pairs = chosen
            .iter()
            .zip(assignment)
            .filter_map(|((head, _), column)| {
                let member = column_member[column?];
                Some((heads[*head].conversation, round.pool[member as usize].0))
            })
            .collect();
        (pairs, considered)
    }

    fn offer(
        &mut self,
        conversation: ConversationId,
        agent: EmployeeId,
        free: &[EmployeeId],
        // Set when a joint round chose this pair; a greedy decision ranks here.
        considered: Option<&Considered>,
        now: Millis,
        effects: &mut Vec<Effect>,
    ) {
        let Some(task) = self.tasks.get(&conversation) else {
            return;
        };
        let Some(chosen_agent) = self.agents.get(&agent) else {
            return;
        };
        if self.exclusion(chosen_agent, task, now).is_some() {
            return;
        }
        let chosen = self.score(chosen_agent, task, now);
        let mut excluded: Vec<(EmployeeId, std::borrow::Cow<'static, str>)> = Vec::new();
        let (eligible, runners_up) = match considered {
            // A joint round ranked everyone already.
            Some(considered) => {
                for id in &considered.excluded[..considered.excluded_count] {
                    if let Some(reason) = self.exclusion(&self.agents[id], task, now) {
                        excluded.push((*id, std::borrow::Cow::Borrowed(reason)));
                    }
                }
                let runners_up: Vec<Candidate> = considered.best[..considered.best_count]
                    .iter()
                    .filter(|id| **id != agent)
                    .take(3)
                    .map(|id| self.score(&self.agents[id], task, now))
                    .collect();
                (considered.eligible, runners_up)
            }
            None => {
                let mut others: Vec<(f32, EmployeeId)> = Vec::new();
                let mut eligible = 0;
                for id in free {
                    let a = &self.agents[id];
                    match self.exclusion(a, task, now) {
                        Some(reason) => {
                            if excluded.len() < 5 {
                                excluded.push((*id, std::borrow::Cow::Borrowed(reason)));
                            }
                        }
                        None => {
                            eligible += 1;
                            if *id != agent {
                                others.push((self.score_value(a, task, now), *id));
                            }
                        }
                    }
                }
                others.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
                let runners_up: Vec<Candidate> = others
                    .iter()
                    .take(3)
                    .map(|(_, id)| self.score(&self.agents[id], task, now))
                    .collect();
                (eligible, runners_up)
            }
        };
        let medium = Medium::of(task.spec.channel);
        let order = task.order;
        let bucket = task.bucket;
        let id = self.next_offer;
        self.next_offer += 1;
        let expires_at = now
            + self
                .policy
                .offer_timeout_ms
                .get(&medium)
                .copied()
                .unwrap_or(30_000);
        self.leave_bucket(bucket, &order);
        if let Some(task) = self.tasks.get_mut(&conversation) {
            task.state = TaskState::Offered(id);
        }
        self.offers_in_window.push_back(now);
        let a = self.agents.get_mut(&agent).expect("checked above");
        a.load[medium.index()] += 1;
        a.last_assigned_at = now;
        let window = self.policy.fairness_window_ms.max(24 * 3_600_000);
        a.recent_assignments.retain(|at| now - *at < window);
        a.recent_assignments.push(now);
        self.refresh_free(agent);
        self.offers.insert(
            id,
            Offer {
                conversation,
                agent,
                medium,
                expires_at,
            },
        );
        self.expiries.insert((expires_at, id));
        effects.push(Effect::Offer {
            offer: id,
            conversation,
            agent,
            expires_at,
            decision: Box::new(Decision {
                policy_version: self.policy.version,
                chosen,
                runners_up,
                excluded,
                method: if considered.is_some() {
                    "joint"
                } else {
                    "greedy"
                }
                .to_string(),
                eligible,
            }),
        });
    }

    /// Queued conversations, in queue order (for the supervisor's view and for tests).
    pub fn queued(&self) -> Vec<ConversationId> {
        let mut all: Vec<OrderKey> = self.buckets.values().flatten().copied().collect();
        all.sort();
        all.into_iter().map(|k| k.conversation).collect()
    }

    pub fn queued_len(&self) -> usize {
        self.buckets.values().map(BTreeSet::len).sum()
    }

    /// Where a conversation stands in the whole queue (1 = next), if queued.
    pub fn position(&self, conversation: ConversationId) -> Option<usize> {
        self.queued()
            .iter()
            .position(|c| *c == conversation)
            .map(|i| i + 1)
    }

    /// Where a conversation stands in routing, if routing holds it.
    pub fn task_status(&self, conversation: ConversationId) -> Option<TaskStatus> {
        self.tasks.get(&conversation).map(|t| match t.state {
            TaskState::Queued => TaskStatus::Queued,
            TaskState::Offered(offer) => TaskStatus::Offered {
                offer,
                agent: self.offers.get(&offer).map_or(0, |o| o.agent),
            },
            TaskState::Owned(agent) => TaskStatus::Owned(agent),
        })
    }

    /// An open offer: its conversation, the employee it waits on, and when it expires.
    pub fn open_offer(&self, offer: OfferId) -> Option<(ConversationId, EmployeeId, Millis)> {
        self.offers
            .get(&offer)
            .map(|o| (o.conversation, o.agent, o.expires_at))
    }

    /// The open offers waiting on one employee.
    pub fn offers_to(&self, agent: EmployeeId) -> Vec<(OfferId, ConversationId, Millis)> {
        let mut offers: Vec<_> = self
            .offers
            .iter()
            .filter(|(_, o)| o.agent == agent)
            .map(|(id, o)| (*id, o.conversation, o.expires_at))
            .collect();
        offers.sort();
        offers
    }

    /// Whether anyone present (online; in focus too for an escalation) meets these requirements,
    /// with or without room: if not, waiting for them is hopeless.
    pub fn anyone_eligible(&self, required: &BTreeMap<String, u8>, escalated: bool) -> bool {
        let present = |a: &Agent| {
            a.presence == Presence::Online || (escalated && a.presence == Presence::Focus)
        };
        let meets = |a: &Agent| {
            required
                .iter()
                .all(|(skill, level)| a.profile.skills.get(skill).copied().unwrap_or(0) >= *level)
        };
        match required.keys().next() {
            None => self.online > 0 || (escalated && self.agents.values().any(present)),
            Some(first) => self.holders.get(first).is_some_and(|holders| {
                holders
                    .iter()
                    .any(|id| self.agents.get(id).is_some_and(|a| present(a) && meets(a)))
            }),
        }
    }

    /// Whether any employee holds this skill (question keywords that name a skill count).
    pub fn knows_skill(&self, skill: &str) -> bool {
        self.holders.get(skill).is_some_and(|h| !h.is_empty())
    }

    /// Each known employee with their presence and load per medium.
    pub fn agents(&self) -> impl Iterator<Item = (EmployeeId, Presence, [u16; 3], [u16; 3])> + '_ {
        self.agents
            .iter()
            .map(|(id, a)| (*id, a.presence, a.load, a.capacity))
    }

    /// Whether an employee is outside their working hours, and in their quiet hours.
    pub fn shift(&self, agent: EmployeeId) -> Option<(bool, bool)> {
        self.agents.get(&agent).map(|a| (a.off_shift, a.quiet))
    }

    /// A queued conversation's wait start and urgency (the supervisor's queue view).
    pub fn queued_spec(&self, conversation: ConversationId) -> Option<&TaskSpec> {
        self.tasks.get(&conversation).map(|t| &t.spec)
    }

    pub fn presence(&self, agent: EmployeeId) -> Option<Presence> {
        self.agents.get(&agent).map(|a| a.presence)
    }

    /// Conversations owned or offered per medium.
    pub fn load(&self, agent: EmployeeId, medium: Medium) -> u16 {
        self.agents
            .get(&agent)
            .map(|a| a.load[medium.index()])
            .unwrap_or(0)
    }

    /// Checks the invariants (the property tests run it after every step).
    pub fn check_invariants(&self, now: Millis) -> Result<(), String> {
        let mut load: HashMap<(EmployeeId, Medium), u16> = HashMap::new();
        for (id, task) in &self.tasks {
            let medium = Medium::of(task.spec.channel);
            if let Some(holder) = task.spec.held_by
                && task.state != TaskState::Owned(holder)
            {
                *load.entry((holder, medium)).or_default() += 1;
            }
            match task.state {
                TaskState::Offered(offer) => {
                    let o = self
                        .offers
                        .get(&offer)
                        .ok_or(format!("conversation {id} offered without an offer"))?;
                    if o.conversation != *id {
                        return Err(format!("offer {offer} is for another conversation"));
                    }
                    *load.entry((o.agent, medium)).or_default() += 1;
                }
                TaskState::Owned(agent) => *load.entry((agent, medium)).or_default() += 1,
                TaskState::Queued => {
                    if !self
                        .buckets
                        .get(&task.bucket)
                        .is_some_and(|b| b.contains(&task.order))
                    {
                        return Err(format!("queued conversation {id} is in no bucket"));
                    }
                    for agent in self.agents.values() {
                        if self.exclusion(agent, task, now).is_none() {
                            return Err(format!(
                                "conversation {id} waits while employee {} could take it",
                                agent.profile.id
                            ));
                        }
                    }
                }
            }
        }
        if self.offers.len()
            != self
                .tasks
                .values()
                .filter(|t| matches!(t.state, TaskState::Offered(_)))
                .count()
        {
            return Err("an offer without its conversation".into());
        }
        let online = self
            .agents
            .values()
            .filter(|a| a.presence == Presence::Online)
            .count();
        if online != self.online {
            return Err(format!("{online} online but {} counted", self.online));
        }
        for agent in self.agents.values() {
            let has_room = matches!(agent.presence, Presence::Online | Presence::Focus)
                && Medium::ALL.iter().any(|m| agent.spare(*m) > 0);
            if has_room != self.free.contains(&agent.profile.id) {
                return Err(format!(
                    "employee {} misfiled as free or not",
                    agent.profile.id
                ));
            }
            for medium in Medium::ALL {
                let counted = load.get(&(agent.profile.id, medium)).copied().unwrap_or(0);
                let held = agent.load[medium.index()];
                if counted != held {
                    return Err(format!(
                        "employee {} holds {held} {medium:?} but owns or is offered {counted}",
                        agent.profile.id
                    ));
                }
            }
        }
        Ok(())
    }
}

fn capacity_of(profile: &AgentProfile) -> [u16; 3] {
    let mut capacity = [0u16; 3];
    for medium in Medium::ALL {
        capacity[medium.index()] = profile.capacity.get(&medium).copied().unwrap_or(0);
    }
    capacity
}

fn augment(
    task: usize,
    options: &[usize],
    starts: &[usize],
    owner: &mut [Option<usize>],
    visited: &mut [u32],
    stamp: u32,
) -> bool {
    // A free unit first: most searches end there, without a path through others' units.
    let mine = &options[starts[task]..starts[task + 1]];
    for &unit in mine {
        if owner[unit].is_none() && visited[unit] != stamp {
            visited[unit] = stamp;
            owner[unit] = Some(task);
            return true;
        }
    }
    for &unit in mine {
        if visited[unit] == stamp {
            continue;
        }
        visited[unit] = stamp;
        if owner[unit].is_some_and(|other| augment(other, options, starts, owner, visited, stamp)) {
            owner[unit] = Some(task);
            return true;
        }
    }
    false
}

/// The maximum-weight assignment of rows to columns over sparse edges (row -> (column,
/// weight)): successive shortest augmenting paths with potentials (the Hungarian method on a
/// sparse graph), so the cost follows the edges, not rows x columns. Rows that no augmenting
/// path reaches stay unassigned.
fn max_weight_assignment(edges: &Edges<usize>, columns: usize) -> Vec<Option<usize>> {
    const NONE: usize = usize::MAX;
    let top = edges.flat.iter().map(|e| e.1).max().unwrap_or(0);
    let mut row_of = vec![NONE; columns];
    let mut column_of = vec![NONE; edges.rows()];
    // Potentials: the reduced cost (top - weight) - u[row] - v[column] is never negative, and
    // zero on every matched edge.
    let (mut u, mut v) = (vec![0i64; edges.rows()], vec![0i64; columns]);
    // Each row starts at its best edge's cost, which makes that edge tight; a row one of whose
    // best columns is free takes it without a search.
    for row in 0..edges.rows() {
        let list = edges.row(row);
        let Some(best) = list.iter().map(|e| e.1).max() else {
            continue;
        };
        u[row] = top - best;
        if let Some(&(column, _)) = list
            .iter()
            .find(|(column, weight)| *weight == best && row_of[*column] == NONE)
        {
            row_of[column] = row;
            column_of[row] = column;
        }
    }
    let mut search = Search::new(columns);
    let mut reached: Vec<(usize, i64)> = Vec::new();
    for start in 0..edges.rows() {
        if column_of[start] != NONE {
            continue;
        }
        search.reset();
        reached.clear();
        reached.push((start, 0));
        search.relax(edges.row(start), start, 0, top, &u, &v);
        let mut end = None;
        while let Some(std::cmp::Reverse((at, column))) = search.heap.pop() {
            if search.settled[column] || at > search.distance[column] {
                continue;
            }
            search.settled[column] = true;
            match row_of[column] {
                NONE => {
                    end = Some((column, at));
                    break;
                }
                owner => {
                    reached.push((owner, at));
                    search.relax(edges.row(owner), owner, at, top, &u, &v);
                }
            }
        }
        let Some((mut column, shortest)) = end else {
            continue;
        };
        for (row, at) in &reached {
            u[*row] += shortest - at;
        }
        for &c in &search.touched {
            if search.settled[c] {
                v[c] += search.distance[c] - shortest;
            }
        }
        loop {
            let row = search.came_from[column];
            let previous = column_of[row];
            column_of[row] = column;
            row_of[column] = row;
            if row == start {
                break;
            }
            column = previous;
        }
    }
    column_of
        .into_iter()
        .map(|c| (c != NONE).then_some(c))
        .collect()
}

/// Weighted edges by row, in one flat list (row `r` is `flat[starts[r]..starts[r + 1]]`).
struct Edges<T> {
    flat: Vec<(T, i64)>,
    starts: Vec<usize>,
}

impl<T> Edges<T> {
    fn with_rows(rows: usize) -> Edges<T> {
        let mut starts = Vec::with_capacity(rows + 1);
        starts.push(0);
        Edges {
            flat: Vec::new(),
            starts,
        }
    }

    fn push_row(&mut self, row: impl IntoIterator<Item = (T, i64)>) {
        self.flat.extend(row);
        self.starts.push(self.flat.len());
    }

    fn rows(&self) -> usize {
        self.starts.len() - 1
    }

    fn row(&self, row: usize) -> &[(T, i64)] {
        &self.flat[self.starts[row]..self.starts[row + 1]]
    }
}

/// One shortest-path search of `max_weight_assignment`, reset between rows by what it touched.
struct Search {
    distance: Vec<i64>,
    came_from: Vec<usize>,
    settled: Vec<bool>,
    touched: Vec<usize>,
    heap: std::collections::BinaryHeap<std::cmp::Reverse<(i64, usize)>>,
}

impl Search {
    fn new(columns: usize) -> Search {
        Search {
            distance: vec![i64::MAX; columns],
            came_from: vec![usize::MAX; columns],
            settled: vec![false; columns],
            touched: Vec::new(),
            heap: Default::default(),
        }
    }

    fn reset(&mut self) {
        for column in self.touched.drain(..) {
            self.distance[column] = i64::MAX;
            self.came_from[column] = usize::MAX;
            self.settled[column] = false;
        }
        self.heap.clear();
    }

    /// Reaches the columns of `row` (itself reached at distance `at`).
    fn relax(
        &mut self,
        edges: &[(usize, i64)],
        row: usize,
        at: i64,
        top: i64,
        u: &[i64],
        v: &[i64],
    ) {
        for &(column, weight) in edges {
            if self.settled[column] {
                continue;
            }
            let through = at + (top - weight) - u[row] - v[column];
            if through < self.distance[column] {
                if self.distance[column] == i64::MAX {
                    self.touched.push(column);
                }
                self.distance[column] = through;
                self.came_from[column] = row;
                self.heap.push(std::cmp::Reverse((through, column)));
            }
        }
    }
}

fn order_key(
    conversation: ConversationId,
    urgency: Urgency,
    vip: u8,
    waiting_since: Millis,
) -> OrderKey {
    OrderKey {
        urgency: std::cmp::Reverse(urgency),
        vip: std::cmp::Reverse(vip),
        waiting_since,
        conversation,
    }
}

/// Conversations with the same hard requirements wait in the same bucket.
fn signature(spec: &TaskSpec) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    Medium::of(spec.channel).hash(&mut h);
    spec.required_skills.hash(&mut h);
    spec.language.hash(&mut h);
    spec.escalated.hash(&mut h);
    spec.only_agent.hash(&mut h);
    h.finish()
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
