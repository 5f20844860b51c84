//! The live router: one thread owns the `Router` (the pure core) and the `Classifier`, and turns
//! what happens in the inbox into routing events and routing's effects into stored, announced
//! changes.
//!
//! * Every committed conversation change is observed (`RoutingHandle::observe`, called where
//!   changes are announced): an open unassigned conversation is classified (once; the reading is
//!   stored) and queued; an assigned one takes its owner's capacity; a pending, snoozed,
//!   resolved or closed one gives it back.
//! * The thread takes whatever commands have queued up, reads the store once for all of them,
//!   applies them to the router together (so several free employees and waiting conversations
//!   are matched jointly), stores every effect in one write, and only after that commit tells
//!   employees (offers, their end, presence) and answers the accept and decline requests.
//! * Offers expire on the router's next deadline; a tick every few seconds lets part-time
//!   delays and daily caps move on.
//! * At start the router is rebuilt from the store: employees with their settings and
//!   presence, every open conversation (assigned ones as load, unassigned ones queued by the
//!   time they were created).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redb::ReadableTable;
use schemars::JsonSchema;
use serde::Serialize;
use tokio::sync::oneshot;

use crate::auth::Caller;
use crate::auth::rbac::Permission;
use crate::clock::Millis;
use crate::conversations::{Conversation, Direction, Message, Priority, Status};
use crate::error::{AppError, AppResult};
use crate::org::Employee;
use crate::routing::engine::{
    Decision, Effect, Event, Medium, Policy, Presence, Router, TaskSpec, TaskStatus, WithdrawReason,
};
use crate::routing::experiment::{
    self, Arm, Experiment, ExperimentReport, ExperimentView, NewExperiment, Variant,
};
use crate::routing::replay::{ReplayReport, ReplayRequest};
use crate::routing::service::{
    self, AgentSettings, AgentSettingsPatch, DecisionRecord, Lane, NewPolicy, PolicyVersion,
    Relabel, RoutingLabel, RoutingRecord, RoutingView, TransferMode,
};
use crate::routing::sla::{self, Calendar, Clock, ClockKind, Level};
use crate::routing::urgency::Urgency;
use crate::routing::{Classifier, LabelledQuestion, Question};
use crate::state::Core;
use crate::storage::{WriteTxn, codec, get_record, tables};

/// Longest the thread sleeps without a tick (part-time delays and daily caps move with time).
const TICK_MS: Millis = 5_000;
/// Most commands one step takes.
const BATCH: usize = 1024;
/// How long the thread lets commands gather after a busy step.
const GATHER_MS: u64 = 2;

enum Command {
    Observed {
        conversation: Box<Conversation>,
        /// The customer's message that caused the change, if it was one.
        text: Option<String>,
        /// The message that recorded the change: its direction and time (SLA clocks).
        message: Option<(Direction, Millis)>,
    },
    Presence {
        employee: u64,
        presence: Presence,
    },
    /// An employee's settings changed, or they were disabled: read them again.
    AgentChanged(u64),
    Accept {
        employee: u64,
        offer: u64,
        reply: oneshot::Sender<AppResult<Conversation>>,
    },
    Decline {
        employee: u64,
        offer: u64,
        reply: oneshot::Sender<AppResult<()>>,
    },
    /// An employee relabelled a conversation (the label is stored): learn it, and queue the
    /// conversation again with what the label changes if it is still waiting.
    Relabelled(u64),
    /// Escalated, transferred, or a transfer cancelled (stored): route it again from its record.
    Reroute(u64),
    PolicyChanged,
    LanesChanged,
    Snapshot(oneshot::Sender<LiveSnapshot>),
    Stop,
}

/// Sends commands to the routing thread.
pub struct RoutingHandle {
    sender: Mutex<Sender<Command>>,
    receiver: Mutex<Option<Receiver<Command>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Default for RoutingHandle {
    fn default() -> Self {
        let (sender, receiver) = std::sync::mpsc::channel();
        RoutingHandle {
            sender: Mutex::new(sender),
            receiver: Mutex::new(Some(receiver)),
            thread: Mutex::new(None),
        }
    }
}

impl RoutingHandle {
    fn send(&self, command: Command) {
        if let Ok(sender) = self.sender.lock() {
            let _ = sender.send(command);
        }
    }

    /// A committed change to a conversation (called wherever changes are announced).
    pub fn observe(&self, conversation: &Conversation, message: &Message) {
        let text = (message.direction == Direction::Inbound).then(|| message.text.clone());
        self.send(Command::Observed {
            conversation: Box::new(conversation.clone()),
            text,
            message: Some((message.direction, message.created_at)),
        });
    }

    /// Starts the routing thread (once).
    pub fn start(core: &Arc<Core>) {
        let Some(receiver) = core.routing.receiver.lock().ok().and_then(|mut r| r.take()) else {
            return;
        };
        let thread_core = core.clone();
        let thread = std::thread::Builder::new()
            .name("routing".into())
            .spawn(move || run(thread_core, receiver));
        match thread {
            Ok(handle) => {
                if let Ok(mut slot) = core.routing.thread.lock() {
                    *slot = Some(handle);
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot start the routing thread"),
        }
    }

    /// Stops the routing thread and waits for it (blocking).
    pub fn stop(&self) {
        self.send(Command::Stop);
        let thread = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> AppResult<T> {
        let (reply, answer) = oneshot::channel();
        self.send(make(reply));
        answer
            .await
            .map_err(|_| AppError::internal("routing is not running"))
    }
}

/// An offer as the employee sees it in the pop-up.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct OfferView {
    pub offer_id: u64,
    pub conversation_id: u64,
    pub expires_at: Millis,
    pub channel_kind: crate::channels::ChannelKind,
    pub customer_name: String,
    pub subject: String,
    /// The customer's first words.
    pub question: String,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub urgency: Urgency,
    /// Why this employee.
    pub decision: Decision,
    /// A transfer or escalation: who hands it on, and their note.
    pub handed_on_by: Option<u64>,
    pub hand_off_note: Option<String>,
    pub escalated: bool,
}

#[derive(Serialize)]
#[serde(tag = "type")]
enum Frame<'a> {
    #[serde(rename = "routing.offer")]
    Offer { offer: &'a OfferView },
    #[serde(rename = "routing.offer_ended")]
    OfferEnded {
        offer_id: u64,
        conversation_id: u64,
        reason: &'static str,
    },
    #[serde(rename = "routing.presence")]
    Presence { presence: Presence },
    /// A transfer the employee started ended without the receiver taking it.
    #[serde(rename = "routing.transfer_ended")]
    TransferEnded {
        conversation_id: u64,
        outcome: &'static str,
    },
}

/// The router's live state for the supervisor's view and the caller's own offers.
#[derive(Debug, Clone, Serialize, JsonSchema, Default)]
pub struct LiveSnapshot {
    pub policy_version: u32,
    /// Waiting conversations in queue order.
    pub queue: Vec<QueuedView>,
    pub agents: Vec<AgentLive>,
    pub offers: Vec<OfferView>,
    /// False until the router has been rebuilt from the store after a start.
    pub ready: bool,
    /// The question types the classifier knows.
    pub types: Vec<String>,
    /// Clocks that warn or breached, most urgent first.
    pub sla_risk: Vec<SlaRisk>,
    /// The experiment running, with the arm in force.
    pub experiment: Option<ExperimentView>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct QueuedView {
    pub conversation_id: u64,
    pub position: usize,
    pub waiting_since: Millis,
    pub urgency: Urgency,
    pub vip_tier: u8,
    pub channel_kind: crate::channels::ChannelKind,
    /// The question's type and other skills that count.
    pub wanted_skills: Vec<String>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AgentLive {
    pub employee_id: u64,
    pub presence: Presence,
    pub load: BTreeMap<Medium, u16>,
    pub capacity: BTreeMap<Medium, u16>,
    /// Outside their working hours: only escalations and transfers to them reach them.
    pub off_shift: bool,
    /// In their quiet hours: nothing reaches them.
    pub quiet: bool,
}

struct Live {
    core: Arc<Core>,
    router: Router,
    classifier: Classifier,
    lanes: Vec<Lane>,
    /// Conversations waiting (queued or offered), with what their lane and stage build on.
    routes: HashMap<u64, Route>,
    /// How many conversations wait in each lane (for its maximum).
    lane_counts: HashMap<u64, usize>,
    calendars: HashMap<u64, Calendar>,
    /// Every conversation not yet resolved, for its SLA clocks.
    watches: HashMap<u64, Watch>,
    /// When each watched conversation's clocks next change level.
    sla_timers: BTreeSet<(Millis, u64)>,
    /// Watches whose stored SLA state changed this step.
    sla_dirty: BTreeSet<u64>,
    /// The place in line each waiting web chat customer was last shown.
    queue_shown: HashMap<u64, usize>,
    /// Open offers' views (the pop-up's content), kept for the snapshot.
    offers: HashMap<u64, OfferView>,
    /// The newest policy and the running experiment's arms.
    policies: Policies,
    /// What decides each employee's working and quiet hours, and when they next change.
    shifts: HashMap<u64, Shift>,
    shift_timers: BTreeSet<(Millis, u64)>,
    ready: bool,
}

/// An employee's working hours (a business calendar) and quiet hours (in their time zone).
#[derive(Debug, Clone)]
struct Shift {
    calendar_id: Option<u64>,
    quiet: Option<Calendar>,
    next_change: Option<Millis>,
}

impl Shift {
    fn of(employee: &Employee, settings: &AgentSettings) -> Shift {
        let zone = if employee.time_zone.parse::<chrono_tz::Tz>().is_ok() {
            employee.time_zone.as_str()
        } else {
            "UTC"
        };
        Shift {
            calendar_id: settings.calendar_id,
            quiet: (!settings.quiet_hours.is_empty())
                .then(|| Calendar::daily(zone, &settings.quiet_hours)),
            next_change: None,
        }
    }
}

/// Which policy routes now: the newest version, unless an experiment runs, when its arms take
/// turns by time slice.
#[derive(Debug, Clone, Default)]
pub struct Policies {
    newest: Policy,
    experiment: Option<(Experiment, [Policy; 2])>,
}

impl Policies {
    pub fn load(txn: &redb::ReadTransaction, now: Millis) -> AppResult<Policies> {
        let newest = service::current_policy(txn)?;
        let mut experiment = None;
        if let Some(running) = crate::routing::experiment::running(txn, now)? {
            let arm = |version| -> AppResult<Policy> {
                Ok(service::policy_version(txn, version)?.unwrap_or_else(|| newest.clone()))
            };
            let arms = [arm(running.control)?, arm(running.candidate)?];
            experiment = Some((running, arms));
        }
        Ok(Policies { newest, experiment })
    }

    /// The policy in force at `at`.
    pub fn at(&self, at: Millis) -> &Policy {
        match &self.experiment {
            Some((experiment, arms)) => match experiment.arm_at(at) {
                Some((Arm::Control, _)) => &arms[0],
                Some((Arm::Candidate, _)) => &arms[1],
                None => &self.newest,
            },
            None => &self.newest,
        }
    }

    /// The arm a conversation arriving at `at` belongs to.
    pub fn variant_at(&self, at: Millis) -> Option<Variant> {
        let (experiment, _) = self.experiment.as_ref()?;
        let (arm, slice) = experiment.arm_at(at)?;
        Some(Variant {
            experiment_id: experiment.id,
            arm,
            policy_version: experiment.version_of(arm),
            slice,
            arrived_at: at,
        })
    }

    /// When the policy next changes by itself (a slice or the experiment ends).
    fn next_switch(&self, now: Millis) -> Option<Millis> {
        self.experiment.as_ref()?.0.next_switch(now)
    }
}

fn run(core: Arc<Core>, receiver: Receiver<Command>) {
    let mut live = Live {
        router: Router::new(Default::default()),
        classifier: Classifier::starter(),
        lanes: Vec::new(),
        routes: HashMap::new(),
        lane_counts: HashMap::new(),
        calendars: HashMap::new(),
        watches: HashMap::new(),
        sla_timers: BTreeSet::new(),
        sla_dirty: BTreeSet::new(),
        queue_shown: HashMap::new(),
        offers: HashMap::new(),
        policies: Policies::default(),
        shifts: HashMap::new(),
        shift_timers: BTreeSet::new(),
        ready: false,
        core,
    };
    // Commands that arrive while the store is read wait in the channel; the rebuild reads a
    // snapshot and they are newer than it.
    if let Err(e) = live.rebuild() {
        tracing::error!(error = %e, "routing could not load its state; it starts empty");
    }
    live.ready = true;
    let mut last_tick = live.core.now();
    loop {
        let now = live.core.now();
        let next = [
            live.router.next_deadline(),
            live.sla_timers.first().map(|(at, _)| *at),
            live.policies.next_switch(now),
            live.shift_timers.first().map(|(at, _)| *at),
        ]
        .into_iter()
        .flatten()
        .min();
        let wait = next.map_or(TICK_MS, |at| (at - now).clamp(0, TICK_MS));
        let mut commands = Vec::new();
        match receiver.recv_timeout(Duration::from_millis(wait as u64 + 1)) {
            Ok(command) => commands.push(command),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        // Time moves stages and part-time delays on even while commands never stop coming.
        let ticked = live.core.now() - last_tick >= TICK_MS;
        if ticked {
            last_tick = live.core.now();
        }
        while commands.len() < BATCH {
            match receiver.try_recv() {
                Ok(command) => commands.push(command),
                Err(_) => break,
            }
        }
        let stop = commands.iter().any(|c| matches!(c, Command::Stop));
        let busy = !commands.is_empty();
        live.step(commands, ticked);
        if stop {
            return;
        }
        if busy {
            // Under a stream of messages, let commands gather for a moment: a sender that finds
            // the thread awake does not have to wake it, and one step takes many commands.
            std::thread::sleep(Duration::from_millis(GATHER_MS));
        }
    }
}

/// A waiting conversation's routing: the requirements its reading gives, and where it is on its
/// lane.
#[derive(Debug, Clone)]
struct Route {
    /// The task without lane requirements (type, urgency, language, history, transfer).
    base: TaskSpec,
    lane: Option<u64>,
    stage: usize,
    entered_at: Millis,
    /// The employee who holds it while a transfer waits (their own updates change nothing).
    transfer_from: Option<u64>,
    /// Where the customer is (a web chat customer sees their place in line).
    channel_id: u64,
    customer_id: u64,
}

/// What the SLA clocks of one unresolved conversation are computed from.
#[derive(Debug, Clone)]
struct Watch {
    lane: Option<u64>,
    priority: Priority,
    vip_tier: u8,
    channel: crate::channels::ChannelKind,
    started_at: Millis,
    first_response_at: Option<Millis>,
    sla: service::SlaRecord,
    timer: Option<Millis>,
}

impl Watch {
    fn new(c: &Conversation, record: Option<&RoutingRecord>) -> Watch {
        Watch {
            lane: record.and_then(|r| r.lane_id),
            priority: c.priority,
            vip_tier: 0,
            channel: c.channel_kind,
            started_at: record.and_then(|r| r.clock_from).unwrap_or(c.created_at),
            first_response_at: c.first_response_at,
            sla: record.map(|r| r.sla.clone()).unwrap_or_default(),
            timer: None,
        }
    }
}

/// A clock at risk, for the supervisor's view.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SlaRisk {
    pub conversation_id: u64,
    pub lane_id: Option<u64>,
    pub clock: ClockKind,
    pub level: Level,
    pub due_at: Option<Millis>,
}

#[derive(Serialize)]
struct SlaAlert {
    #[serde(rename = "type")]
    kind: &'static str,
    conversation_id: u64,
    lane_id: Option<u64>,
    clock: ClockKind,
    level: Level,
    due_at: Option<Millis>,
}

/// What SLA timers decided in one step besides events.
#[derive(Default)]
struct SlaOutcome {
    raise: Vec<(u64, Priority)>,
    stages: Vec<(u64, usize)>,
    escalate: Vec<(u64, ClockKind, Level)>,
    requeue: Vec<u64>,
}

fn next_priority(priority: Priority) -> Priority {
    match priority {
        Priority::Low => Priority::Normal,
        Priority::Normal => Priority::High,
        Priority::High | Priority::Urgent => Priority::Urgent,
    }
}

/// What a step stores beside its effects.
#[derive(Default)]
struct Extra {
    /// Records classified or placed on a lane.
    records: Vec<RoutingRecord>,
    /// Lane stages reached.
    stages: Vec<(u64, usize)>,
    /// Priorities raised by SLA warnings.
    raise: Vec<(u64, Priority)>,
    /// SLA state that changed.
    sla: Vec<(u64, service::SlaRecord)>,
}

impl Extra {
    fn is_empty(&self) -> bool {
        self.records.is_empty()
            && self.stages.is_empty()
            && self.raise.is_empty()
            && self.sla.is_empty()
    }
}

/// What one step found it must read from the store.
#[derive(Default)]
struct Reads {
    /// Conversations to queue (new, reopened, unassigned, relabelled), with the message that
    /// brought them if any.
    queue: Vec<(Conversation, Option<String>)>,
    agents: Vec<u64>,
    relabelled: Vec<u64>,
    policy: bool,
    lanes: bool,
    reroute: Vec<u64>,
}

/// What the store gave back for one step.
struct Found {
    specs: Vec<(TaskSpec, Option<RoutingRecord>)>,
    agents: Vec<(u64, Option<(Employee, AgentSettings)>)>,
    relabelled: Vec<(u64, Option<RoutingRecord>)>,
    policy: Option<Policies>,
    lanes: Option<Vec<Lane>>,
    /// Rerouted conversations that turned out owned and not transferring (a cancelled transfer).
    owned: Vec<Event>,
}

/// A conversation to classify and queue, read from the store.
struct ToQueue {
    conversation: Conversation,
    record: Option<RoutingRecord>,
    question: String,
    vip_tier: u8,
    recent_contacts: u32,
    previous_agents: Vec<(u64, f32)>,
    customer_location: Option<String>,
}

impl Live {
    fn rebuild(&mut self) -> AppResult<()> {
        let now = self.core.now();
        let (policy, lanes, calendars, labels, agents, open) =
            self.core.store.read_blocking(|txn| {
                let policy = Policies::load(txn, now)?;
                let lanes = service::lanes(txn)?;
                let calendars = service::calendars(txn)?;
                let labels = service::labels(txn)?;
                let agents = service::all_agents(txn)?;
                let conversations = txn.open_table(tables::CONVERSATIONS)?;
                let records = txn.open_table(tables::ROUTING_RECORDS)?;
                let mut open = Vec::new();
                for entry in conversations.iter()? {
                    let (_, bytes) = entry?;
                    let c: Conversation = codec::decode(bytes.value())?;
                    if matches!(c.status, Status::Open | Status::Pending | Status::Snoozed) {
                        let record: Option<RoutingRecord> = get_record(&records, c.id)?;
                        // An owned conversation waits only when a transfer of it does.
                        let waits = c.status == Status::Open
                            && (c.assignee_id.is_none()
                                || record.as_ref().is_some_and(|r| r.transfer.is_some()));
                        open.push((c, waits, record));
                    }
                }
                Ok((policy, lanes, calendars, labels, agents, open))
            })?;
        self.lanes = lanes;
        self.calendars = calendars.into_iter().map(|c| (c.id, c)).collect();
        if !labels.is_empty() {
            let mut questions = crate::routing::starter_questions();
            questions.extend(labels.iter().map(|l| LabelledQuestion {
                text: l.text.clone(),
                kind: l.kind.clone(),
                urgency: l.urgency.map(|u| u.as_str().to_owned()),
                meta: Vec::new(),
            }));
            self.classifier = Classifier::train(&questions);
        }
        let mut events = vec![Event::PolicyChanged(policy.at(now).clone())];
        self.policies = policy;
        for (employee, settings) in &agents {
            events.push(Event::AgentUpdated(settings.profile(employee)));
            self.set_shift(
                employee.id,
                Some(Shift::of(employee, settings)),
                now,
                &mut events,
            );
            if settings.presence != Presence::Offline {
                events.push(Event::PresenceChanged {
                    agent: employee.id,
                    presence: settings.presence,
                });
            }
        }
        let mut waiting = Vec::new();
        for (c, waits, record) in open {
            self.watches.insert(c.id, Watch::new(&c, record.as_ref()));
            self.rearm(c.id, now);
            if c.status != Status::Open {
                continue;
            }
            if let Some(agent) = c.assignee_id {
                events.push(Event::TaskAssigned {
                    conversation: c.id,
                    agent,
                    channel: c.channel_kind,
                });
            }
            if waits {
                waiting.push((c, None));
            }
        }
        // Agents and load first, so that lanes' stages see who is present.
        self.router.handle_all(std::mem::take(&mut events), now);
        let queued = self.read_for_queue(waiting)?;
        let mut stored = Vec::new();
        for item in queued {
            let (spec, record) = self.spec_for(item, now);
            events.push(Event::TaskArrived(spec));
            stored.extend(record);
        }
        // Offers made before a restart are gone: the rebuilt router offers again.
        let effects = self.router.handle_all(events, now);
        self.persist(effects, stored, HashMap::new(), HashMap::new(), now);
        tracing::info!(
            agents = agents.len(),
            queued = self.router.queued_len(),
            "routing is ready"
        );
        Ok(())
    }

    fn step(&mut self, commands: Vec<Command>, ticked: bool) {
        let now = self.core.now();
        let mut events = Vec::new();
        if ticked {
            events.push(Event::Tick);
        }
        let mut reads = Reads::default();
        let mut accepts: HashMap<u64, oneshot::Sender<AppResult<Conversation>>> = HashMap::new();
        let mut declines: HashMap<u64, oneshot::Sender<AppResult<()>>> = HashMap::new();
        let mut snapshots = Vec::new();
        for command in commands {
            match command {
                Command::Observed {
                    conversation,
                    text,
                    message,
                } => {
                    self.watch(&conversation, message, now);
                    self.observe(*conversation, text, &mut events, &mut reads)
                }
                Command::Presence { employee, presence } => {
                    events.push(Event::PresenceChanged {
                        agent: employee,
                        presence,
                    });
                }
                Command::AgentChanged(id) => reads.agents.push(id),
                Command::Accept {
                    employee,
                    offer,
                    reply,
                } => match self.check_offer(offer, employee) {
                    Ok(()) => {
                        events.push(Event::OfferAccepted { offer });
                        accepts.insert(offer, reply);
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                },
                Command::Decline {
                    employee,
                    offer,
                    reply,
                } => match self.check_offer(offer, employee) {
                    Ok(()) => {
                        events.push(Event::OfferDeclined { offer });
                        declines.insert(offer, reply);
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                },
                Command::Relabelled(id) => reads.relabelled.push(id),
                Command::Reroute(id) => reads.reroute.push(id),
                Command::PolicyChanged => reads.policy = true,
                Command::LanesChanged => reads.lanes = true,
                Command::Snapshot(reply) => snapshots.push(reply),
                Command::Stop => {}
            }
        }
        let mut stored = Vec::new();
        if !reads.queue.is_empty()
            || !reads.agents.is_empty()
            || !reads.relabelled.is_empty()
            || !reads.reroute.is_empty()
            || reads.policy
            || reads.lanes
        {
            match self.read(reads, now) {
                Ok(found) => {
                    for (spec, record) in found.specs {
                        events.push(Event::TaskArrived(spec));
                        stored.extend(record);
                    }
                    for (id, agent) in found.agents {
                        match agent {
                            Some((employee, settings)) => {
                                events.push(Event::AgentUpdated(settings.profile(&employee)));
                                let shift = Shift::of(&employee, &settings);
                                self.set_shift(id, Some(shift), now, &mut events);
                                events.push(Event::PresenceChanged {
                                    agent: id,
                                    presence: settings.presence,
                                });
                            }
                            None => {
                                self.set_shift(id, None, now, &mut events);
                                events.push(Event::AgentRemoved(id));
                            }
                        }
                    }
                    for (id, record) in found.relabelled {
                        if let Some(record) = record {
                            self.learn(&record);
                        }
                        let _ = id;
                    }
                    if let Some(policies) = found.policy {
                        self.policies = policies;
                        events.push(Event::PolicyChanged(self.policies.at(now).clone()));
                    }
                    events.extend(found.owned);
                    if let Some(lanes) = found.lanes {
                        self.lanes = lanes;
                        // Calendars came with the lanes: working hours may have moved.
                        let ids: Vec<u64> = self.shifts.keys().copied().collect();
                        for id in ids {
                            let shift = self.shifts.get(&id).cloned();
                            self.set_shift(id, shift, now, &mut events);
                        }
                        // Every waiting conversation takes the new requirements.
                        let ids: Vec<u64> = self.routes.keys().copied().collect();
                        for id in ids {
                            if let Some(mut route) = self.routes.get(&id).cloned() {
                                let spec = self.place(&mut route, now);
                                self.track(id, route);
                                events.push(Event::TaskArrived(spec));
                            }
                        }
                    }
                }
                Err(e) => tracing::error!(error = %e, "routing could not read the store"),
            }
        }
        let mut stages = if ticked {
            self.advance_stages(now, &mut events)
        } else {
            Vec::new()
        };
        if ticked {
            self.show_places();
        }
        while let Some(&(at, id)) = self.shift_timers.first() {
            if at > now {
                break;
            }
            let shift = self.shifts.get(&id).cloned();
            self.set_shift(id, shift, now, &mut events);
        }
        let sla = self.fire_slas(now, &mut events);
        stages.extend(sla.stages.iter().copied());
        // An experiment's slices take turns without anyone asking.
        let in_force = self.policies.at(now);
        if in_force.version != self.router.policy().version {
            events.push(Event::PolicyChanged(in_force.clone()));
        }
        let effects = self.router.handle_all(events, now);
        self.persist_all(
            effects,
            Extra {
                records: stored,
                stages,
                raise: sla.raise,
                sla: Vec::new(),
            },
            accepts,
            declines,
            now,
        );
        for (id, clock, level) in sla.escalate {
            self.escalate_for_sla(id, clock, level, now);
        }
        if !snapshots.is_empty() {
            let snapshot = self.snapshot();
            for reply in snapshots {
                let _ = reply.send(snapshot.clone());
            }
        }
    }

    fn check_offer(&self, offer: u64, employee: u64) -> AppResult<()> {
        match self.router.open_offer(offer) {
            Some((_, agent, _)) if agent == employee => Ok(()),
            Some(_) => Err(AppError::forbidden("this offer was made to someone else")),
            None => Err(AppError::conflict(
                "this offer has ended (it expired, was withdrawn or was answered)",
            )),
        }
    }

    /// Decides what a committed conversation change means for routing.
    fn observe(
        &mut self,
        conversation: Conversation,
        text: Option<String>,
        events: &mut Vec<Event>,
        reads: &mut Reads,
    ) {
        let status = self.router.task_status(conversation.id);
        match (conversation.status, conversation.assignee_id) {
            (Status::Open, None) => match status {
                Some(TaskStatus::Queued | TaskStatus::Offered { .. }) => {}
                Some(TaskStatus::Owned(_)) | None => {
                    if !reads.queue.iter().any(|(c, _)| c.id == conversation.id) {
                        reads.queue.push((conversation, text));
                    }
                }
            },
            (Status::Open, Some(agent)) => {
                let transferring = self
                    .routes
                    .get(&conversation.id)
                    .is_some_and(|r| r.transfer_from == Some(agent));
                if transferring {
                    // The sender's own updates while a transfer of it waits.
                    return;
                }
                self.untrack(conversation.id);
                if status != Some(TaskStatus::Owned(agent)) {
                    events.push(Event::TaskAssigned {
                        conversation: conversation.id,
                        agent,
                        channel: conversation.channel_kind,
                    });
                }
            }
            _ => {
                self.untrack(conversation.id);
                if status.is_some() {
                    events.push(Event::TaskFinished {
                        conversation: conversation.id,
                    });
                }
            }
        }
    }

    fn read(&mut self, reads: Reads, now: Millis) -> AppResult<Found> {
        let Reads {
            queue,
            agents,
            relabelled,
            policy,
            lanes,
            reroute,
        } = reads;
        let (agents, relabelled, policy, lanes, rerouted) =
            self.core.store.read_blocking(move |txn| {
                let employees = txn.open_table(tables::EMPLOYEES)?;
                let mut found_agents = Vec::new();
                for id in agents {
                    let employee: Option<Employee> = get_record(&employees, id)?;
                    let agent = match employee {
                        Some(e) if !e.disabled => {
                            let settings = service::agent_settings(txn, &e)?;
                            Some((e, settings))
                        }
                        _ => None,
                    };
                    found_agents.push((id, agent));
                }
                let mut found_relabelled = Vec::new();
                for id in relabelled {
                    found_relabelled.push((id, service::record(txn, id)?));
                }
                let policy = if policy {
                    Some(Policies::load(txn, now)?)
                } else {
                    None
                };
                let lanes = if lanes {
                    Some((service::lanes(txn)?, service::calendars(txn)?))
                } else {
                    None
                };
                let mut rerouted = Vec::new();
                for id in reroute {
                    let c = crate::conversations::service::get(txn, id)?;
                    let transferring =
                        service::record(txn, id)?.is_some_and(|r| r.transfer.is_some());
                    rerouted.push((c, transferring));
                }
                Ok((found_agents, found_relabelled, policy, lanes, rerouted))
            })?;
        let lanes = lanes.map(|(lanes, calendars)| {
            self.calendars = calendars.into_iter().map(|c| (c.id, c)).collect();
            lanes
        });
        if let Some(lanes) = &lanes {
            self.lanes = lanes.clone();
        }
        let mut owned = Vec::new();
        // A relabelled conversation still waiting is queued again with its new reading.
        let mut queue = queue;
        for (c, transferring) in rerouted {
            match c.assignee_id {
                _ if c.status != Status::Open => {
                    self.untrack(c.id);
                    owned.push(Event::TaskFinished { conversation: c.id });
                }
                Some(agent) if !transferring => {
                    self.untrack(c.id);
                    owned.push(Event::TaskAssigned {
                        conversation: c.id,
                        agent,
                        channel: c.channel_kind,
                    });
                }
                _ => queue.push((c, None)),
            }
        }
        for (id, record) in &relabelled {
            if record.is_some()
                && matches!(
                    self.router.task_status(*id),
                    Some(TaskStatus::Queued | TaskStatus::Offered { .. })
                )
            {
                let c = self.core.store.read_blocking({
                    let id = *id;
                    move |txn| crate::conversations::service::get(txn, id)
                })?;
                queue.push((c, None));
            }
        }
        let mut specs = Vec::new();
        for item in self.read_for_queue(queue)? {
            specs.push(self.spec_for(item, now));
        }
        Ok(Found {
            specs,
            agents,
            relabelled,
            policy,
            lanes,
            owned,
        })
    }

    /// Reads what classifying and queueing these conversations needs.
    fn read_for_queue(
        &self,
        queue: Vec<(Conversation, Option<String>)>,
    ) -> AppResult<Vec<ToQueue>> {
        if queue.is_empty() {
            return Ok(Vec::new());
        }
        let now = self.core.now();
        self.core.store.read_blocking(move |txn| {
            let customers = txn.open_table(tables::CUSTOMERS)?;
            let mut found = Vec::new();
            for (conversation, text) in queue {
                let record = service::record(txn, conversation.id)?;
                let question = match (&record, text) {
                    (Some(r), _) => r.question.clone(),
                    (None, Some(text)) => text,
                    (None, None) => {
                        first_question(&txn.open_table(tables::MESSAGES)?, conversation.id)?
                    }
                };
                let customer: Option<crate::customers::Customer> =
                    get_record(&customers, conversation.customer_id)?;
                let (recent_contacts, previous_agents) =
                    service::customer_history(txn, &conversation, now)?;
                let customer_location = customer.as_ref().and_then(|c| {
                    c.attributes
                        .get("location")
                        .and_then(|v| v.as_str())
                        .map(|s| s.trim().to_lowercase())
                        .filter(|s| !s.is_empty())
                });
                found.push(ToQueue {
                    vip_tier: customer.as_ref().map_or(0, service::vip_tier),
                    conversation,
                    record,
                    question,
                    recent_contacts,
                    previous_agents,
                    customer_location,
                });
            }
            Ok(found)
        })
    }

    /// The conversation's routing requirements; classifies it first if it never was, and
    /// places it on its lane and stage. Returns the record to store when it changed.
    fn spec_for(&mut self, item: ToQueue, now: Millis) -> (TaskSpec, Option<RoutingRecord>) {
        let ToQueue {
            conversation,
            record,
            question,
            vip_tier,
            recent_contacts,
            previous_agents,
            customer_location,
        } = item;
        let mut changed = false;
        let mut record = match record {
            Some(r) if r.classification.is_some() => r,
            other => {
                let mut r = other.unwrap_or_else(|| RoutingRecord::new(conversation.id, &question));
                let subject_and_text = if conversation.subject.is_empty() {
                    question.clone()
                } else {
                    format!("{}\n{}", conversation.subject, question)
                };
                r.classification = Some(self.classifier.classify(&Question {
                    text: &subject_and_text,
                    channel: conversation.channel_kind,
                    vip_tier,
                    recent_contacts,
                }));
                r.classified_at = Some(now);
                if r.variant.is_none() {
                    r.variant = self.policies.variant_at(
                        conversation
                            .last_reopened_at
                            .unwrap_or(conversation.created_at),
                    );
                }
                changed = true;
                r
            }
        };
        let mut base = TaskSpec::new(
            conversation.id,
            conversation.channel_kind,
            // Waiting counts from the customer's message that started it (or reopened it),
            // unless a lane restarted the clock.
            record.clock_from.unwrap_or(
                conversation
                    .last_reopened_at
                    .unwrap_or(conversation.created_at),
            ),
        );
        base.urgency = record.urgency().max(urgency_of(conversation.priority));
        base.vip_tier = vip_tier;
        base.previous_agents = previous_agents;
        base.customer_location = customer_location;
        base.escalated = record.escalated;
        if let Some(kind) = record.kind() {
            base.wanted_skills.push(kind.to_owned());
        }
        if let Some(c) = &record.classification {
            for word in &c.keywords {
                if self.router.knows_skill(word) && !base.wanted_skills.contains(word) {
                    base.wanted_skills.push(word.clone());
                }
            }
            let language = c.language.as_str();
            if language != "unknown" {
                base.preferred_language = Some(language.to_owned());
            }
        }
        let mut transfer_from = None;
        if let Some(t) = &record.transfer {
            transfer_from = t.from;
            base.only_agent = t.to_employee;
            base.exclude.extend(t.from);
            if t.mode == TransferMode::Warm {
                base.held_by = t.from;
            }
        }
        // A new question enters the lane its type or the customer's tier names; a full lane
        // overflows.
        if record.lane_id.is_none() && record.transfer.is_none() {
            let kind = record.kind().map(str::to_owned);
            if let Some(lane) = service::lane_for(&self.lanes, kind.as_deref(), vip_tier) {
                let lane = self.overflow(lane.id);
                record.lane_id = Some(lane);
                record.stage = 0;
                record.lane_entered_at = Some(now);
                changed = true;
            }
        }
        let mut route = Route {
            base,
            lane: record.lane_id,
            stage: record.stage,
            entered_at: record.lane_entered_at.unwrap_or(now),
            transfer_from,
            channel_id: conversation.channel_id,
            customer_id: conversation.customer_id,
        };
        let spec = self.place(&mut route, now);
        if route.stage != record.stage {
            record.stage = route.stage;
            changed = true;
        }
        self.track(conversation.id, route);
        let watch = self
            .watches
            .entry(conversation.id)
            .or_insert_with(|| Watch::new(&conversation, Some(&record)));
        watch.lane = record.lane_id;
        watch.vip_tier = vip_tier;
        watch.started_at = record.clock_from.unwrap_or(conversation.created_at);
        self.rearm(conversation.id, now);
        (spec, changed.then_some(record))
    }

    /// The lane to use when `lane` is full: its overflow lane, if it has one with room.
    fn overflow(&self, lane: u64) -> u64 {
        let mut at = lane;
        for _ in 0..self.lanes.len() {
            let Some(l) = self.lanes.iter().find(|l| l.id == at) else {
                return at;
            };
            let waiting = self.lane_counts.get(&at).copied().unwrap_or(0);
            match (l.max_queue, l.overflow_to) {
                (Some(max), Some(next)) if waiting >= max as usize => at = next,
                _ => return at,
            }
        }
        at
    }

    /// The task for a route at the stage it has reached: a stage moves on when its time has
    /// come, or at once when nobody who meets the stage before it is present.
    fn place(&self, route: &mut Route, now: Millis) -> TaskSpec {
        let mut spec = route.base.clone();
        if spec.only_agent.is_some() {
            return spec;
        }
        let Some(lane) = route
            .lane
            .and_then(|id| self.lanes.iter().find(|l| l.id == id))
        else {
            return spec;
        };
        let mut stage = route.stage.min(lane.last_stage());
        while stage < lane.last_stage() {
            let next = &lane.stages[stage];
            let due = route.entered_at + next.after_secs as Millis * 1000;
            let hopeless = next.when_nobody_eligible
                && !self
                    .router
                    .anyone_eligible(lane.requirements(stage), spec.escalated);
            if now >= due || hopeless {
                stage += 1;
            } else {
                break;
            }
        }
        route.stage = stage;
        spec.required_skills = lane.requirements(stage).clone();
        spec
    }

    fn track(&mut self, conversation: u64, route: Route) {
        if let Some(lane) = route.lane {
            *self.lane_counts.entry(lane).or_default() += 1;
        }
        if let Some(old) = self.routes.insert(conversation, route) {
            self.untrack_lane(old.lane);
        }
    }

    fn untrack(&mut self, conversation: u64) {
        if let Some(old) = self.routes.remove(&conversation) {
            self.untrack_lane(old.lane);
            if self.queue_shown.remove(&conversation).is_some() {
                self.show_place(&old, None);
            }
        }
    }

    fn show_place(&self, route: &Route, position: Option<usize>) {
        self.core.hub.publish_to_visitor(
            route.channel_id,
            route.customer_id,
            &serde_json::json!({ "type": "queue", "position": position }),
        );
    }

    /// Tells waiting web chat customers with the widget open where they are in line.
    fn show_places(&mut self) {
        let web = self
            .routes
            .values()
            .any(|r| r.base.channel == crate::channels::ChannelKind::Web);
        if !web {
            return;
        }
        for (index, id) in self.router.queued().into_iter().enumerate() {
            let Some(route) = self.routes.get(&id) else {
                continue;
            };
            if route.base.channel != crate::channels::ChannelKind::Web
                || self.queue_shown.get(&id) == Some(&(index + 1))
                || !self
                    .core
                    .hub
                    .visitor_connected(route.channel_id, route.customer_id)
            {
                continue;
            }
            self.show_place(route, Some(index + 1));
            self.queue_shown.insert(id, index + 1);
        }
    }

    fn untrack_lane(&mut self, lane: Option<u64>) {
        if let Some(lane) = lane
            && let Some(count) = self.lane_counts.get_mut(&lane)
        {
            *count = count.saturating_sub(1);
        }
    }

    fn calendar(&self, lane: &Lane) -> Calendar {
        lane.calendar_id
            .and_then(|id| self.calendars.get(&id).cloned())
            .unwrap_or_else(Calendar::always)
    }

    /// The clocks of a watched conversation now.
    fn clocks_of(&self, watch: &Watch, now: Millis) -> Vec<Clock> {
        let Some(lane) = watch
            .lane
            .and_then(|id| self.lanes.iter().find(|l| l.id == id))
        else {
            return Vec::new();
        };
        let targets = lane.targets_for(watch.priority, watch.vip_tier, watch.channel);
        let facts = sla::Facts {
            started_at: watch.started_at,
            first_response_at: watch.first_response_at,
            awaiting_reply_since: watch.sla.awaiting_reply_since,
            resolved_at: None,
            paused_since: watch.sla.paused_since,
            paused_business_ms: watch.sla.paused_business_ms,
        };
        sla::clocks(
            &self.calendar(lane),
            &targets,
            &facts,
            lane.warn_at_percent,
            now,
        )
    }

    /// Follows a committed change for the SLA clocks: replies, customer messages, waiting on
    /// the customer, resolution.
    fn watch(&mut self, c: &Conversation, message: Option<(Direction, Millis)>, now: Millis) {
        if matches!(c.status, Status::Resolved | Status::Closed) {
            if let Some(w) = self.watches.remove(&c.id)
                && let Some(at) = w.timer
            {
                self.sla_timers.remove(&(at, c.id));
            }
            return;
        }
        let mut new = false;
        let watch = self.watches.entry(c.id).or_insert_with(|| {
            new = true;
            Watch::new(c, None)
        });
        let moved = watch.priority != c.priority || watch.first_response_at != c.first_response_at;
        watch.priority = c.priority;
        watch.first_response_at = c.first_response_at;
        let before = watch.sla.clone();
        match message {
            Some((Direction::Inbound, at)) if watch.sla.awaiting_reply_since.is_none() => {
                watch.sla.awaiting_reply_since = Some(at);
            }
            Some((Direction::Outbound, _)) => watch.sla.awaiting_reply_since = None,
            _ => {}
        }
        let mut resumed_from = None;
        match (c.status, watch.sla.paused_since) {
            (Status::Pending | Status::Snoozed, None) => watch.sla.paused_since = Some(now),
            (Status::Open, Some(since)) => {
                watch.sla.paused_since = None;
                resumed_from = Some(since);
            }
            _ => {}
        }
        let lane = watch.lane;
        if let Some(since) = resumed_from {
            // The pause counts in business time on the lane's calendar.
            let paused = lane
                .and_then(|id| self.lanes.iter().find(|l| l.id == id))
                .map(|l| self.calendar(l))
                .unwrap_or_else(Calendar::always)
                .business_between(since, now);
            if let Some(w) = self.watches.get_mut(&c.id) {
                w.sla.paused_business_ms += paused;
            }
        }
        let changed = self.watches.get(&c.id).is_some_and(|w| w.sla != before);
        if changed {
            self.sla_dirty.insert(c.id);
        }
        // Another message while the clocks already run changes nothing (the common case).
        if new || moved || changed {
            self.rearm(c.id, now);
        }
    }

    /// Sets the conversation's SLA timer to when its clocks next change level.
    fn rearm(&mut self, id: u64, now: Millis) {
        let Some(watch) = self.watches.get(&id) else {
            return;
        };
        let clocks = self.clocks_of(watch, now);
        // A level reached but not yet acted on is due now.
        let next = clocks
            .iter()
            .filter(|clock| clock.level > self.fired_level(watch, clock.kind))
            .map(|_| now)
            .chain(clocks.iter().filter_map(|clock| clock.next_change_at))
            .min();
        let old = watch.timer;
        if old == next {
            return;
        }
        if let Some(at) = old {
            self.sla_timers.remove(&(at, id));
        }
        if let Some(at) = next {
            self.sla_timers.insert((at, id));
        }
        if let Some(w) = self.watches.get_mut(&id) {
            w.timer = next;
        }
    }

    fn fired_level(&self, watch: &Watch, clock: ClockKind) -> Level {
        watch
            .sla
            .fired
            .iter()
            .filter(|f| f.clock == clock)
            .map(|f| f.level)
            .max()
            .unwrap_or(Level::Ok)
    }

    /// Runs the actions of clocks that reached a new level. Returns the conversations to raise
    /// in priority and to escalate; relaxations become events.
    /// Sets (or forgets, with None) what decides an employee's hours, tells the router where
    /// they stand now, and sets the timer for the next change.
    fn set_shift(&mut self, id: u64, shift: Option<Shift>, now: Millis, events: &mut Vec<Event>) {
        if let Some(old) = self.shifts.remove(&id)
            && let Some(at) = old.next_change
        {
            self.shift_timers.remove(&(at, id));
        }
        let Some(mut shift) = shift else { return };
        let (working, until_work) = match shift.calendar_id {
            Some(calendar) => match self.calendars.get(&calendar) {
                Some(calendar) => calendar.open_at(now),
                None => (true, None),
            },
            None => (true, None),
        };
        let (quiet, until_quiet) = match &shift.quiet {
            Some(quiet) => quiet.open_at(now),
            None => (false, None),
        };
        events.push(Event::ShiftChanged {
            agent: id,
            off_shift: !working,
            quiet,
        });
        // A change at `now` itself would loop: the timer waits a millisecond past it.
        shift.next_change = [until_work, until_quiet]
            .into_iter()
            .flatten()
            .min()
            .map(|at| at.max(now + 1));
        if let Some(at) = shift.next_change {
            self.shift_timers.insert((at, id));
        }
        self.shifts.insert(id, shift);
    }

    fn fire_slas(&mut self, now: Millis, events: &mut Vec<Event>) -> SlaOutcome {
        let mut outcome = SlaOutcome::default();
        while let Some(&(at, id)) = self.sla_timers.first() {
            if at > now {
                break;
            }
            self.sla_timers.remove(&(at, id));
            let Some(mut watch) = self.watches.get(&id).cloned() else {
                continue;
            };
            watch.timer = None;
            let lane = watch
                .lane
                .and_then(|l| self.lanes.iter().find(|x| x.id == l))
                .cloned();
            for clock in self.clocks_of(&watch, now) {
                let reached = self.fired_level(&watch, clock.kind);
                for level in [Level::Warning, Level::Breached] {
                    if level <= reached || level > clock.level {
                        continue;
                    }
                    let actions: Vec<service::SlaActionKind> = lane
                        .iter()
                        .flat_map(|l| l.sla_actions.iter())
                        .filter(|a| a.on == level && a.clock.is_none_or(|c| c == clock.kind))
                        .map(|a| a.action)
                        .collect();
                    for action in &actions {
                        match action {
                            service::SlaActionKind::RaisePriority => {
                                let raised = next_priority(watch.priority);
                                if raised != watch.priority {
                                    watch.priority = raised;
                                    outcome.raise.push((id, raised));
                                    if let Some(route) = self.routes.get_mut(&id) {
                                        route.base.urgency =
                                            route.base.urgency.max(urgency_of(raised));
                                        // An offer out stays out; the new order counts if
                                        // it comes back.
                                        if self.router.task_status(id) == Some(TaskStatus::Queued) {
                                            outcome.requeue.push(id);
                                        }
                                    }
                                }
                            }
                            service::SlaActionKind::Relax => {
                                if let (Some(route), Some(lane)) = (self.routes.get_mut(&id), &lane)
                                    && route.stage < lane.last_stage()
                                {
                                    route.stage = lane.last_stage();
                                    outcome.stages.push((id, route.stage));
                                    if self.router.task_status(id) == Some(TaskStatus::Queued) {
                                        outcome.requeue.push(id);
                                    }
                                }
                            }
                            service::SlaActionKind::Escalate => {
                                if lane.as_ref().is_some_and(|l| l.escalate_to.is_some()) {
                                    outcome.escalate.push((id, clock.kind, level));
                                }
                            }
                            service::SlaActionKind::NotifySupervisors => {
                                self.core.hub.notify_permitted(
                                    Permission::RoutingMonitor,
                                    &SlaAlert {
                                        kind: "routing.sla",
                                        conversation_id: id,
                                        lane_id: watch.lane,
                                        clock: clock.kind,
                                        level,
                                        due_at: clock.due_at,
                                    },
                                );
                            }
                        }
                    }
                    watch.sla.fired.push(service::SlaFired {
                        clock: clock.kind,
                        level,
                        at: now,
                        actions,
                    });
                    self.sla_dirty.insert(id);
                }
            }
            self.watches.insert(id, watch);
            self.rearm(id, now);
        }
        outcome.requeue.sort_unstable();
        outcome.requeue.dedup();
        for id in &outcome.requeue {
            if let Some(mut route) = self.routes.get(id).cloned() {
                let spec = self.place(&mut route, now);
                self.track(*id, route);
                events.push(Event::TaskArrived(spec));
            }
        }
        outcome
    }

    /// Moves waiting conversations to their next stage where time or absence says so.
    fn advance_stages(&mut self, now: Millis, events: &mut Vec<Event>) -> Vec<(u64, usize)> {
        let mut moved = Vec::new();
        let ids: Vec<u64> = self
            .routes
            .iter()
            .filter(|(_, r)| {
                r.lane.is_some_and(|lane| {
                    self.lanes
                        .iter()
                        .find(|l| l.id == lane)
                        .is_some_and(|l| r.stage < l.last_stage())
                })
            })
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            let Some(mut route) = self.routes.get(&id).cloned() else {
                continue;
            };
            let before = route.stage;
            let spec = self.place(&mut route, now);
            if route.stage != before {
                moved.push((id, route.stage));
                if let Some(r) = self.routes.get_mut(&id) {
                    r.stage = route.stage;
                }
                events.push(Event::TaskArrived(spec));
            }
        }
        moved
    }

    fn learn(&mut self, record: &RoutingRecord) {
        let Some(relabel) = &record.relabel else {
            return;
        };
        let channel = crate::channels::ChannelKind::Api;
        self.classifier.correct(
            &Question {
                text: &record.question,
                channel,
                vip_tier: 0,
                recent_contacts: 0,
            },
            relabel.kind.as_deref(),
            relabel.urgency.map(|u| u.as_str()),
        );
    }

    /// Stores the step's effects in one write, then tells employees and answers requests.
    fn persist(
        &mut self,
        effects: Vec<Effect>,
        records: Vec<RoutingRecord>,
        accepts: HashMap<u64, oneshot::Sender<AppResult<Conversation>>>,
        declines: HashMap<u64, oneshot::Sender<AppResult<()>>>,
        now: Millis,
    ) {
        self.persist_all(
            effects,
            Extra {
                records,
                ..Extra::default()
            },
            accepts,
            declines,
            now,
        );
    }

    fn persist_all(
        &mut self,
        effects: Vec<Effect>,
        mut extra: Extra,
        mut accepts: HashMap<u64, oneshot::Sender<AppResult<Conversation>>>,
        mut declines: HashMap<u64, oneshot::Sender<AppResult<()>>>,
        now: Millis,
    ) {
        let sla: Vec<(u64, service::SlaRecord)> = std::mem::take(&mut self.sla_dirty)
            .into_iter()
            .filter_map(|id| self.watches.get(&id).map(|w| (id, w.sla.clone())))
            .collect();
        extra.sla = sla;
        if effects.is_empty() && extra.is_empty() {
            for (_, reply) in accepts {
                let _ = reply.send(Err(AppError::conflict("this offer has ended")));
            }
            for (_, reply) in declines {
                let _ = reply.send(Ok(()));
            }
            return;
        }
        for effect in &effects {
            if let Effect::Assigned { conversation, .. } = effect {
                self.untrack(*conversation);
            }
        }
        let effects = Arc::new(effects);
        let extra = Arc::new(extra);
        let written = self.core.store.write_blocking({
            let effects = effects.clone();
            move |txn| write_effects(txn, &effects, &extra, now)
        });
        let mut follow_up = Vec::new();
        match written {
            Ok(outcome) => {
                for offer in outcome.offers {
                    self.core.hub.notify_employee(
                        offer.decision.chosen.agent,
                        &Frame::Offer { offer: &offer },
                    );
                    self.offers.insert(offer.offer_id, offer);
                }
                for (conversation, message) in outcome.announce {
                    crate::conversations::service::announce_stored(
                        &self.core,
                        conversation,
                        message,
                    );
                }
                for (offer, result) in outcome.assigned {
                    if let Some(reply) = accepts.remove(&offer) {
                        let _ = reply.send(result);
                    }
                }
                for conflict in outcome.resync {
                    // The conversation changed under the offer (taken by hand, resolved): the
                    // router learns what it is now.
                    let mut reads = Reads::default();
                    self.observe(conflict, None, &mut follow_up, &mut reads);
                    for (conversation, text) in reads.queue {
                        self.core.routing.send(Command::Observed {
                            conversation: Box::new(conversation),
                            text,
                            message: None,
                        });
                    }
                }
                for (conversation, from, outcome) in outcome.lapsed {
                    // A transfer to a person who declined or did not answer: the sender keeps
                    // the conversation; one that nobody owned goes back to its lane.
                    match from {
                        Some(sender) => {
                            self.untrack(conversation);
                            if let Some(channel) = self.channel_of(conversation) {
                                follow_up.push(Event::TaskAssigned {
                                    conversation,
                                    agent: sender,
                                    channel,
                                });
                            }
                            self.core.hub.notify_employee(
                                sender,
                                &Frame::TransferEnded {
                                    conversation_id: conversation,
                                    outcome,
                                },
                            );
                        }
                        None => self.core.routing.send(Command::Reroute(conversation)),
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "routing could not store its decisions");
                for (_, reply) in accepts.drain() {
                    let _ = reply.send(Err(AppError::new(e.code, e.message.clone())));
                }
            }
        }
        for effect in effects.iter() {
            match effect {
                Effect::OfferWithdrawn {
                    offer,
                    conversation,
                    agent,
                    reason,
                } => {
                    self.offers.remove(offer);
                    self.core.hub.notify_employee(
                        *agent,
                        &Frame::OfferEnded {
                            offer_id: *offer,
                            conversation_id: *conversation,
                            reason: withdraw_reason(*reason),
                        },
                    );
                    if let Some(reply) = declines.remove(offer) {
                        let _ = reply.send(Ok(()));
                    }
                    // Back in the queue: with what its route says now (a stage or priority
                    // that moved while the offer was out).
                    if matches!(reason, WithdrawReason::Declined | WithdrawReason::Expired)
                        && self.router.task_status(*conversation) == Some(TaskStatus::Queued)
                        && let Some(mut route) = self.routes.get(conversation).cloned()
                    {
                        let spec = self.place(&mut route, now);
                        if self.router.queued_spec(*conversation) != Some(&spec) {
                            self.track(*conversation, route);
                            follow_up.push(Event::TaskArrived(spec));
                        }
                    }
                }
                Effect::Assigned {
                    offer,
                    conversation,
                    agent,
                } => {
                    self.offers.remove(offer);
                    self.core.hub.notify_employee(
                        *agent,
                        &Frame::OfferEnded {
                            offer_id: *offer,
                            conversation_id: *conversation,
                            reason: "accepted",
                        },
                    );
                }
                Effect::PresenceChanged { agent, presence } => {
                    self.core.hub.notify_employee(
                        *agent,
                        &Frame::Presence {
                            presence: *presence,
                        },
                    );
                }
                Effect::Offer { .. } => {}
            }
        }
        for (_, reply) in accepts {
            let _ = reply.send(Err(AppError::conflict("this offer has ended")));
        }
        for (_, reply) in declines {
            let _ = reply.send(Ok(()));
        }
        if !follow_up.is_empty() {
            let now = self.core.now();
            let more = self.router.handle_all(follow_up, now);
            self.persist(more, Vec::new(), HashMap::new(), HashMap::new(), now);
        }
    }

    /// An SLA breach (or warning) whose lane says escalate: up the path, by routing itself.
    fn escalate_for_sla(&mut self, id: u64, clock: ClockKind, level: Level, now: Millis) {
        let clock_name = match clock {
            ClockKind::FirstResponse => "first response",
            ClockKind::NextResponse => "next response",
            ClockKind::Resolution => "resolution",
        };
        let what = match level {
            Level::Breached => "breached",
            _ => "at risk",
        };
        let note = format!("SLA {clock_name} target {what}");
        let request = HandOff::Escalate(EscalateRequest {
            note: note.clone(),
            lane_id: None,
        });
        match self
            .core
            .store
            .write_blocking(move |txn| hand_off_in(txn, None, id, &request, &note, now))
        {
            Ok((record, (conversation, message))) => {
                if let Some(w) = self.watches.get_mut(&id) {
                    w.lane = record.lane_id;
                }
                crate::conversations::service::announce_stored(&self.core, conversation, message);
                self.core.routing.send(Command::Reroute(id));
            }
            // A transfer waiting, no path, or resolved meanwhile: nothing to do.
            Err(e) => tracing::debug!(conversation = id, error = %e, "SLA escalation skipped"),
        }
    }

    fn channel_of(&self, conversation: u64) -> Option<crate::channels::ChannelKind> {
        self.router
            .queued_spec(conversation)
            .map(|spec| spec.channel)
    }

    fn sla_risk(&self) -> Vec<SlaRisk> {
        let now = self.core.now();
        let mut risk: Vec<SlaRisk> = self
            .watches
            .iter()
            .flat_map(|(id, watch)| {
                self.clocks_of(watch, now)
                    .into_iter()
                    .filter(|c| c.level > Level::Ok && c.stopped_at.is_none())
                    .map(|c| SlaRisk {
                        conversation_id: *id,
                        lane_id: watch.lane,
                        clock: c.kind,
                        level: c.level,
                        due_at: c.due_at,
                    })
            })
            .collect();
        risk.sort_by_key(|r| (std::cmp::Reverse(r.level), r.due_at, r.conversation_id));
        risk.truncate(500);
        risk
    }

    fn snapshot(&self) -> LiveSnapshot {
        let queue = self
            .router
            .queued()
            .into_iter()
            .enumerate()
            .filter_map(|(i, id)| {
                self.router.queued_spec(id).map(|spec| QueuedView {
                    conversation_id: id,
                    position: i + 1,
                    waiting_since: spec.waiting_since,
                    urgency: spec.urgency,
                    vip_tier: spec.vip_tier,
                    channel_kind: spec.channel,
                    wanted_skills: spec.wanted_skills.clone(),
                })
            })
            .collect();
        let agents = self
            .router
            .agents()
            .map(|(id, presence, load, capacity)| AgentLive {
                employee_id: id,
                presence,
                load: Medium::ALL
                    .iter()
                    .map(|m| (*m, load[*m as usize]))
                    .collect(),
                capacity: Medium::ALL
                    .iter()
                    .map(|m| (*m, capacity[*m as usize]))
                    .collect(),
                off_shift: self.router.shift(id).is_some_and(|(off, _)| off),
                quiet: self.router.shift(id).is_some_and(|(_, quiet)| quiet),
            })
            .collect();
        let mut offers: Vec<OfferView> = self.offers.values().cloned().collect();
        offers.sort_by_key(|o| o.offer_id);
        LiveSnapshot {
            policy_version: self.router.policy().version,
            queue,
            agents,
            offers,
            ready: self.ready,
            types: self.classifier.types.labels().to_vec(),
            sla_risk: self.sla_risk(),
            experiment: self
                .policies
                .experiment
                .as_ref()
                .map(|(e, _)| ExperimentView::of(e.clone(), self.core.now())),
        }
    }
}

fn withdraw_reason(reason: WithdrawReason) -> &'static str {
    match reason {
        WithdrawReason::Declined => "declined",
        WithdrawReason::Expired => "expired",
        WithdrawReason::ConversationGone | WithdrawReason::AgentGone => "withdrawn",
    }
}

fn urgency_of(priority: Priority) -> Urgency {
    match priority {
        Priority::Low => Urgency::Low,
        Priority::Normal => Urgency::Normal,
        Priority::High => Urgency::High,
        Priority::Urgent => Urgency::Urgent,
    }
}

fn priority_of(urgency: Urgency) -> Priority {
    match urgency {
        Urgency::Low => Priority::Low,
        Urgency::Normal => Priority::Normal,
        Urgency::High => Priority::High,
        Urgency::Urgent => Priority::Urgent,
    }
}

/// The text of the conversation's first customer message.
fn first_question(
    messages: &impl ReadableTable<(u64, u64), &'static [u8]>,
    conversation_id: u64,
) -> AppResult<String> {
    for entry in messages
        .range((conversation_id, 0)..=(conversation_id, u64::MAX))?
        .take(20)
    {
        let (_, bytes) = entry?;
        let message: Message = codec::decode(bytes.value())?;
        if message.direction == Direction::Inbound {
            return Ok(message.text);
        }
    }
    Ok(String::new())
}

#[derive(Default)]
struct WriteOutcome {
    offers: Vec<OfferView>,
    announce: Vec<(Conversation, Message)>,
    assigned: Vec<(u64, AppResult<Conversation>)>,
    /// Conversations an acceptance found changed (taken by hand, resolved).
    resync: Vec<Conversation>,
    /// Transfers to a person that ended unanswered: (conversation, sender, outcome).
    lapsed: Vec<(u64, Option<u64>, &'static str)>,
}

fn write_effects(
    txn: &WriteTxn,
    effects: &[Effect],
    extra: &Extra,
    now: Millis,
) -> AppResult<WriteOutcome> {
    let mut outcome = WriteOutcome::default();
    let mut touched: BTreeMap<u64, RoutingRecord> = BTreeMap::new();
    for record in &extra.records {
        // A classification may raise the conversation's priority, never lower it.
        if let Some(c) = &record.classification {
            let wanted = priority_of(c.urgency.level);
            if let Some(updated) = crate::conversations::service::raise_priority(
                txn,
                record.conversation_id,
                wanted,
                now,
            )? {
                outcome.announce.push(updated);
            }
        }
        touched.insert(record.conversation_id, record.clone());
    }
    for (conversation, stage) in &extra.stages {
        record_for(txn, &mut touched, *conversation)?.stage = *stage;
    }
    for (conversation, sla) in &extra.sla {
        if get_record::<Conversation>(&txn.open_table(tables::CONVERSATIONS)?, *conversation)?
            .is_some()
        {
            record_for(txn, &mut touched, *conversation)?.sla = sla.clone();
        }
    }
    for (conversation, priority) in &extra.raise {
        if let Some(updated) =
            crate::conversations::service::raise_priority(txn, *conversation, *priority, now)?
        {
            outcome.announce.push(updated);
        }
    }
    for effect in effects {
        match effect {
            Effect::Offer {
                offer,
                conversation,
                agent,
                expires_at,
                decision,
            } => {
                let record = record_for(txn, &mut touched, *conversation)?;
                record.push_decision(DecisionRecord {
                    offer_id: *offer,
                    employee_id: *agent,
                    offered_at: now,
                    expires_at: *expires_at,
                    outcome: None,
                    ended_at: None,
                    decision: (**decision).clone(),
                });
                let record = record.clone();
                if let Some(c) = get_record::<Conversation>(
                    &txn.open_table(tables::CONVERSATIONS)?,
                    *conversation,
                )? {
                    let customer_name = get_record::<crate::customers::Customer>(
                        &txn.open_table(tables::CUSTOMERS)?,
                        c.customer_id,
                    )?
                    .map(|c| c.name)
                    .unwrap_or_default();
                    outcome.offers.push(OfferView {
                        offer_id: *offer,
                        conversation_id: c.id,
                        expires_at: *expires_at,
                        channel_kind: c.channel_kind,
                        customer_name,
                        subject: c.subject.clone(),
                        question: record.question.chars().take(300).collect(),
                        kind: record.kind().map(str::to_owned),
                        urgency: record.urgency(),
                        decision: (**decision).clone(),
                        handed_on_by: record.transfer.as_ref().and_then(|t| t.by),
                        hand_off_note: record
                            .transfer
                            .as_ref()
                            .map(|t| t.note.clone())
                            .filter(|n| !n.is_empty()),
                        escalated: record.escalated,
                    });
                }
            }
            Effect::OfferWithdrawn {
                offer,
                conversation,
                reason,
                agent,
            } => {
                let record = record_for(txn, &mut touched, *conversation)?;
                let why = withdraw_reason(*reason);
                record.end_offer(*offer, why, now);
                let to_them = record
                    .transfer
                    .as_ref()
                    .is_some_and(|t| t.to_employee == Some(*agent));
                if to_them && matches!(reason, WithdrawReason::Declined | WithdrawReason::Expired) {
                    let ended = record.end_transfer(why, now);
                    outcome
                        .lapsed
                        .push((*conversation, ended.and_then(|t| t.from), why));
                }
            }
            Effect::Assigned {
                conversation,
                agent,
                offer,
            } => {
                let record = record_for(txn, &mut touched, *conversation)?;
                record.end_offer(*offer, "accepted", now);
                let transfer = record.end_transfer("accepted", now);
                let (replacing, stays) = match &transfer {
                    Some(t) => (t.from, t.from.filter(|_| t.mode == TransferMode::Warm)),
                    None => (None, None),
                };
                match crate::conversations::service::assign_routed(
                    txn,
                    *conversation,
                    *agent,
                    replacing,
                    stays,
                    now,
                )? {
                    Ok((c, message)) => {
                        outcome.assigned.push((*offer, Ok(c.clone())));
                        if let Some(message) = message {
                            outcome.announce.push((c, message));
                        }
                    }
                    Err((c, error)) => {
                        outcome.assigned.push((*offer, Err(error)));
                        outcome.resync.push(c);
                    }
                }
            }
            Effect::PresenceChanged { agent, presence } => {
                if txn.open_table(tables::EMPLOYEES)?.get(*agent)?.is_some() {
                    service::set_presence(txn, *agent, *presence, now)?;
                }
            }
        }
    }
    for record in touched.values() {
        service::save_record(txn, record)?;
    }
    Ok(outcome)
}

fn record_for<'a>(
    txn: &WriteTxn,
    touched: &'a mut BTreeMap<u64, RoutingRecord>,
    conversation: u64,
) -> AppResult<&'a mut RoutingRecord> {
    if let std::collections::btree_map::Entry::Vacant(slot) = touched.entry(conversation) {
        let record = service::record_in_write(txn, conversation)?
            .unwrap_or_else(|| RoutingRecord::new(conversation, ""));
        slot.insert(record);
    }
    Ok(touched.get_mut(&conversation).expect("inserted above"))
}

// Operations the HTTP layer calls.

/// The caller's own routing settings, presence and open offers.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct MyRouting {
    pub settings: AgentSettings,
    pub offers: Vec<OfferView>,
    /// Whether the caller may take conversations (has the reply permission).
    pub can_answer: bool,
}

pub async fn me(core: &Core, caller: &Caller) -> AppResult<MyRouting> {
    let id = caller.employee_id;
    let settings = core
        .store
        .read(move |txn| {
            let employee = get_record::<Employee>(&txn.open_table(tables::EMPLOYEES)?, id)?
                .ok_or_else(|| AppError::not_found("employee"))?;
            service::agent_settings(txn, &employee)
        })
        .await?;
    let snapshot = core.routing.ask(Command::Snapshot).await?;
    Ok(MyRouting {
        settings,
        offers: snapshot
            .offers
            .into_iter()
            .filter(|o| o.decision.chosen.agent == id)
            .collect(),
        can_answer: caller.access.has(Permission::ConversationsReply),
    })
}

pub async fn set_presence(
    core: &Core,
    caller: &Caller,
    presence: Presence,
) -> AppResult<AgentSettings> {
    if presence == Presence::Online {
        caller.require(Permission::ConversationsReply)?;
    }
    let id = caller.employee_id;
    let now = core.now();
    let settings = core
        .store
        .write(move |txn| service::set_presence(txn, id, presence, now))
        .await?;
    core.routing.send(Command::Presence {
        employee: id,
        presence,
    });
    Ok(settings)
}

pub async fn accept(core: &Core, caller: &Caller, offer: u64) -> AppResult<Conversation> {
    caller.require(Permission::ConversationsReply)?;
    let employee = caller.employee_id;
    core.routing
        .ask(|reply| Command::Accept {
            employee,
            offer,
            reply,
        })
        .await?
}

pub async fn decline(core: &Core, caller: &Caller, offer: u64) -> AppResult<()> {
    let employee = caller.employee_id;
    core.routing
        .ask(|reply| Command::Decline {
            employee,
            offer,
            reply,
        })
        .await?
}

pub async fn snapshot(core: &Core) -> AppResult<LiveSnapshot> {
    core.routing.ask(Command::Snapshot).await
}

/// Every employee's routing settings (the supervisor's and administrator's list).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AgentView {
    pub employee_id: u64,
    pub username: String,
    pub display_name: String,
    pub department_id: u64,
    /// The time zone quiet hours count in.
    pub time_zone: String,
    pub settings: AgentSettings,
}

pub async fn agents(core: &Core) -> AppResult<Vec<AgentView>> {
    core.store
        .read(|txn| {
            Ok(service::all_agents(txn)?
                .into_iter()
                .map(|(e, settings)| AgentView {
                    employee_id: e.id,
                    username: e.username,
                    display_name: e.display_name,
                    department_id: e.department_id,
                    time_zone: e.time_zone,
                    settings,
                })
                .collect())
        })
        .await
}

pub async fn update_agent(
    core: &Core,
    caller: &Caller,
    employee_id: u64,
    patch: AgentSettingsPatch,
) -> AppResult<AgentSettings> {
    caller.require_everywhere(Permission::RoutingManage)?;
    let now = core.now();
    let actor = caller.clone();
    let settings = core
        .store
        .write(move |txn| {
            let (employee, settings) = service::update_agent(txn, employee_id, &patch, now)?;
            crate::audit::append(
                txn,
                now,
                crate::audit::AuditEvent::new(&actor.actor, "routing.agent_updated")
                    .target(format!("employee:{}", employee.id))
                    .details(serde_json::json!({ "skills": settings.skills,
                        "languages": settings.languages, "capacity": settings.capacity,
                        "mode": settings.mode })),
            )?;
            Ok(settings)
        })
        .await?;
    core.routing.send(Command::AgentChanged(employee_id));
    Ok(settings)
}

/// An employee's correction of a conversation's type or urgency.
#[derive(Debug, Clone, serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RelabelRequest {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub urgency: Option<Urgency>,
}

pub async fn relabel(
    core: &Core,
    caller: &Caller,
    conversation_id: u64,
    request: RelabelRequest,
) -> AppResult<RoutingRecord> {
    caller.require(Permission::ConversationsReply)?;
    let kind = match &request.kind {
        Some(k) => Some(service::skill_name(k).map_err(|_| {
            AppError::field("type", "a type is letters, digits, _ and -, at most 40")
        })?),
        None => None,
    };
    if kind.is_none() && request.urgency.is_none() {
        return Err(AppError::field("type", "give a type, an urgency or both"));
    }
    let now = core.now();
    let actor = caller.clone();
    let record = core
        .store
        .write(move |txn| {
            let conversation = get_record::<Conversation>(
                &txn.open_table(tables::CONVERSATIONS)?,
                conversation_id,
            )?
            .ok_or_else(|| AppError::not_found("conversation"))?;
            if !crate::conversations::service::visible_to(&actor, &conversation) {
                return Err(AppError::not_found("conversation"));
            }
            let mut record = match service::record_in_write(txn, conversation_id)? {
                Some(r) => r,
                None => {
                    let question =
                        first_question(&txn.open_table(tables::MESSAGES)?, conversation_id)?;
                    RoutingRecord::new(conversation_id, &question)
                }
            };
            record.relabel = Some(Relabel {
                kind: kind.clone(),
                urgency: request.urgency,
                by: actor.employee_id,
                at: now,
            });
            service::save_record(txn, &record)?;
            if !record.question.trim().is_empty() {
                service::add_label(
                    txn,
                    RoutingLabel {
                        id: 0,
                        conversation_id,
                        text: record.question.clone(),
                        kind: kind.clone(),
                        urgency: request.urgency,
                        by: actor.employee_id,
                        at: now,
                    },
                )?;
            }
            if let Some(urgency) = request.urgency {
                crate::conversations::service::raise_priority(
                    txn,
                    conversation_id,
                    priority_of(urgency),
                    now,
                )?;
            }
            Ok(record)
        })
        .await?;
    core.routing.send(Command::Relabelled(conversation_id));
    Ok(record)
}

/// A conversation's routing for the console: classification, decisions and place in line.
pub async fn conversation_routing(
    core: &Core,
    caller: &Caller,
    conversation_id: u64,
) -> AppResult<RoutingView> {
    let actor = caller.clone();
    let now = core.now();
    let (record, names, lane, sla, assigned) = core
        .store
        .read(move |txn| {
            let conversation = crate::conversations::service::get(txn, conversation_id)?;
            let may_see = crate::conversations::service::visible_to(&actor, &conversation)
                || actor.access.has(Permission::RoutingMonitor);
            if !may_see {
                return Err(AppError::not_found("conversation"));
            }
            let record = service::record(txn, conversation_id)?;
            let names = match &record {
                Some(r) => service::names_in(txn, r)?,
                None => BTreeMap::new(),
            };
            let (lane, sla) =
                service::conversation_clocks(txn, &conversation, record.as_ref(), now)?;
            Ok((record, names, lane, sla, conversation.assignee_id.is_some()))
        })
        .await?;
    let snapshot = snapshot(core).await?;
    let queued = snapshot
        .queue
        .iter()
        .find(|q| q.conversation_id == conversation_id);
    let offered = snapshot
        .offers
        .iter()
        .any(|o| o.conversation_id == conversation_id);
    let state = match (queued, offered, assigned) {
        (Some(_), _, _) => "queued",
        (None, true, _) => "offered",
        (None, false, true) => "assigned",
        (None, false, false) => "none",
    };
    Ok(RoutingView {
        record,
        queue_position: queued.map(|q| q.position),
        state: state.into(),
        names,
        types: snapshot.types,
        lane,
        sla,
    })
}

pub async fn policies(core: &Core) -> AppResult<Vec<PolicyVersion>> {
    core.store.read(service::policies).await
}

pub async fn add_policy(
    core: &Core,
    caller: &Caller,
    change: NewPolicy,
) -> AppResult<PolicyVersion> {
    let now = core.now();
    let actor = caller.clone();
    let version = core
        .store
        .write(move |txn| {
            let version = service::add_policy(txn, &actor, &change, now)?;
            crate::audit::append(
                txn,
                now,
                crate::audit::AuditEvent::new(&actor.actor, "routing.policy_added")
                    .target(format!("policy:{}", version.policy.version))
                    .details(serde_json::to_value(&version.policy).unwrap_or_default()),
            )?;
            Ok(version)
        })
        .await?;
    core.routing.send(Command::PolicyChanged);
    Ok(version)
}

pub async fn lanes(core: &Core) -> AppResult<Vec<Lane>> {
    core.store.read(service::lanes).await
}

/// Creates (`id` None) or replaces a lane.
pub async fn put_lane(
    core: &Core,
    caller: &Caller,
    id: Option<u64>,
    input: service::LaneInput,
) -> AppResult<Lane> {
    caller.require_everywhere(Permission::RoutingManage)?;
    let now = core.now();
    let actor = caller.clone();
    let lane = core
        .store
        .write(move |txn| {
            let lane = service::put_lane(txn, id, &input, now)?;
            crate::audit::append(
                txn,
                now,
                crate::audit::AuditEvent::new(
                    &actor.actor,
                    if id.is_some() {
                        "routing.lane_updated"
                    } else {
                        "routing.lane_created"
                    },
                )
                .target(format!("lane:{}", lane.id))
                .details(serde_json::to_value(&lane).unwrap_or_default()),
            )?;
            Ok(lane)
        })
        .await?;
    core.routing.send(Command::LanesChanged);
    Ok(lane)
}

pub async fn delete_lane(core: &Core, caller: &Caller, id: u64) -> AppResult<()> {
    caller.require_everywhere(Permission::RoutingManage)?;
    let now = core.now();
    let actor = caller.clone();
    core.store
        .write(move |txn| {
            let lane = service::delete_lane(txn, id)?;
            crate::audit::append(
                txn,
                now,
                crate::audit::AuditEvent::new(&actor.actor, "routing.lane_deleted")
                    .target(format!("lane:{id}"))
                    .details(serde_json::json!({ "key": lane.key, "name": lane.name })),
            )
        })
        .await?;
    core.routing.send(Command::LanesChanged);
    Ok(())
}

/// Up the escalation path, or to a named lane.
#[derive(Debug, Clone, serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EscalateRequest {
    /// The hand-off note the receiver reads.
    pub note: String,
    /// Another lane than the next on the path.
    pub lane_id: Option<u64>,
}

/// To a lane or a named person, blind or warm.
#[derive(Debug, Clone, serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferRequest {
    pub lane_id: Option<u64>,
    pub employee_id: Option<u64>,
    #[serde(default = "warm")]
    pub mode: TransferMode,
    #[serde(default)]
    pub note: String,
}

fn warm() -> TransferMode {
    TransferMode::Warm
}

/// Back to whoever owned the conversation before its last escalation.
#[derive(Debug, Clone, serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReturnRequest {
    #[serde(default)]
    pub note: String,
}

const NOTE_CHARS: usize = 4000;

/// What the hand-off changes: lane, escalation, transfer; with the system message saying so.
enum HandOff {
    Escalate(EscalateRequest),
    Transfer(TransferRequest),
    Return(ReturnRequest),
    Cancel,
}

pub async fn escalate(
    core: &Core,
    caller: &Caller,
    id: u64,
    request: EscalateRequest,
) -> AppResult<RoutingRecord> {
    hand_off(core, caller, id, HandOff::Escalate(request)).await
}

pub async fn transfer(
    core: &Core,
    caller: &Caller,
    id: u64,
    request: TransferRequest,
) -> AppResult<RoutingRecord> {
    hand_off(core, caller, id, HandOff::Transfer(request)).await
}

pub async fn return_to_owner(
    core: &Core,
    caller: &Caller,
    id: u64,
    request: ReturnRequest,
) -> AppResult<RoutingRecord> {
    hand_off(core, caller, id, HandOff::Return(request)).await
}

pub async fn cancel_transfer(core: &Core, caller: &Caller, id: u64) -> AppResult<RoutingRecord> {
    hand_off(core, caller, id, HandOff::Cancel).await
}

async fn hand_off(
    core: &Core,
    caller: &Caller,
    id: u64,
    hand_off: HandOff,
) -> AppResult<RoutingRecord> {
    caller.require(Permission::ConversationsTransfer)?;
    let note = match &hand_off {
        HandOff::Escalate(r) => r.note.trim().to_owned(),
        HandOff::Transfer(r) => r.note.trim().to_owned(),
        HandOff::Return(r) => r.note.trim().to_owned(),
        HandOff::Cancel => String::new(),
    };
    if note.chars().count() > NOTE_CHARS {
        return Err(AppError::field(
            "note",
            format!("at most {NOTE_CHARS} characters"),
        ));
    }
    if matches!(hand_off, HandOff::Escalate(_)) && note.is_empty() {
        return Err(AppError::field(
            "note",
            "say what the next level needs to know",
        ));
    }
    let now = core.now();
    let actor = caller.clone();
    let hand_off = Arc::new(hand_off);
    let (record, announced) = core
        .store
        .write(move |txn| hand_off_in(txn, Some(&actor), id, &hand_off, &note, now))
        .await?;
    let (conversation, message) = announced;
    crate::conversations::service::announce_stored(core, conversation, message);
    core.routing.send(Command::Reroute(id));
    Ok(record)
}

/// Hands a conversation on inside a write: by an employee (`actor`), or by routing itself
/// (an SLA escalation) when `actor` is none. Returns the record and the system message.
fn hand_off_in(
    txn: &WriteTxn,
    actor: Option<&Caller>,
    id: u64,
    hand_off: &HandOff,
    note: &str,
    now: Millis,
) -> AppResult<(RoutingRecord, (Conversation, Message))> {
    let note = note.to_owned();
    let by = actor.map(|a| a.employee_id);
    let conversation = crate::conversations::service::get_in_write(txn, id)?;
    if let Some(actor) = actor {
        crate::conversations::service::require_can_act(
            actor,
            &conversation,
            Permission::ConversationsTransfer,
        )?;
    }
    if conversation.status != Status::Open {
        return Err(AppError::conflict(format!(
            "only an open conversation can be handed on; this one is {}",
            conversation.status.as_str()
        )));
    }
    let lanes = service::lanes_in(txn)?;
    let mut record = match service::record_in_write(txn, id)? {
        Some(r) => r,
        None => RoutingRecord::new(id, &first_question(&txn.open_table(tables::MESSAGES)?, id)?),
    };
    let lane_name = |lane: u64| {
        lanes
            .iter()
            .find(|l| l.id == lane)
            .map_or_else(|| lane.to_string(), |l| l.name.clone())
    };
    let enter = |record: &mut RoutingRecord, lane: &Lane| {
        record.lane_id = Some(lane.id);
        record.stage = 0;
        record.lane_entered_at = Some(now);
        if !lane.keep_clock {
            record.clock_from = Some(now);
        }
    };
    let find_lane = |lane: u64, field: &str| {
        lanes
            .iter()
            .find(|l| l.id == lane && l.enabled)
            .cloned()
            .ok_or_else(|| AppError::field(field, format!("lane {lane} does not exist or is off")))
    };
    if !matches!(hand_off, HandOff::Cancel) && record.transfer.is_some() {
        return Err(AppError::conflict(
            "a transfer of this conversation is waiting; cancel it first",
        ));
    }
    let owner = conversation.assignee_id;
    let text = match hand_off {
        HandOff::Escalate(request) => {
            let from = record
                .lane_id
                .or_else(|| service::lane_for(&lanes, record.kind(), 0).map(|l| l.id));
            let to = match request.lane_id {
                Some(lane) => lane,
                None => from
                    .and_then(|f| lanes.iter().find(|l| l.id == f))
                    .and_then(|l| l.escalate_to)
                    .ok_or_else(|| {
                        AppError::conflict("this conversation's lane has no escalation path")
                    })?,
            };
            let lane = find_lane(to, "lane_id")?;
            record.escalations.push(service::Escalation {
                from_lane: from,
                to_lane: to,
                by,
                at: now,
                note: note.clone(),
                previous_owner: owner,
            });
            record.escalated = true;
            enter(&mut record, &lane);
            record.transfer = Some(service::Transfer {
                from: owner,
                by,
                to_lane: Some(to),
                to_employee: None,
                mode: TransferMode::Blind,
                note: note.clone(),
                at: now,
                outcome: None,
                ended_at: None,
            });
            format!(
                "escalated to {}{}: {note}",
                lane.name,
                from.map(|f| format!(" (from {})", lane_name(f)))
                    .unwrap_or_default()
            )
        }
        HandOff::Transfer(request) => {
            let (to_lane, to_employee) = match (request.lane_id, request.employee_id) {
                (Some(lane), None) => (Some(find_lane(lane, "lane_id")?), None),
                (None, Some(employee)) => {
                    let e = get_record::<Employee>(&txn.open_table(tables::EMPLOYEES)?, employee)?
                        .filter(|e| !e.disabled)
                        .ok_or_else(|| {
                            AppError::field(
                                "employee_id",
                                format!("employee {employee} does not exist or is disabled"),
                            )
                        })?;
                    if Some(e.id) == owner {
                        return Err(AppError::field(
                            "employee_id",
                            "the conversation is theirs already",
                        ));
                    }
                    (None, Some(e))
                }
                _ => {
                    return Err(AppError::field(
                        "lane_id",
                        "name either a lane_id or an employee_id",
                    ));
                }
            };
            if let Some(lane) = &to_lane {
                enter(&mut record, lane);
            }
            record.transfer = Some(service::Transfer {
                from: owner,
                by,
                to_lane: to_lane.as_ref().map(|l| l.id),
                to_employee: to_employee.as_ref().map(|e| e.id),
                mode: request.mode,
                note: note.clone(),
                at: now,
                outcome: None,
                ended_at: None,
            });
            let target = match (&to_lane, &to_employee) {
                (Some(l), _) => l.name.clone(),
                (_, Some(e)) => e.username.clone(),
                _ => String::new(),
            };
            let mode = match request.mode {
                TransferMode::Warm => "warm",
                TransferMode::Blind => "blind",
            };
            if note.is_empty() {
                format!("transfer to {target} ({mode}) waiting for acceptance")
            } else {
                format!("transfer to {target} ({mode}) waiting for acceptance: {note}")
            }
        }
        HandOff::Return(_) => {
            let previous = record
                .escalations
                .iter()
                .rev()
                .find_map(|e| e.previous_owner)
                .filter(|p| Some(*p) != owner)
                .ok_or_else(|| {
                    AppError::conflict("nobody owned this conversation before its escalation")
                })?;
            let e = get_record::<Employee>(&txn.open_table(tables::EMPLOYEES)?, previous)?
                .filter(|e| !e.disabled)
                .ok_or_else(|| AppError::conflict("the previous owner is no longer here"))?;
            record.transfer = Some(service::Transfer {
                from: owner,
                by,
                to_lane: None,
                to_employee: Some(previous),
                mode: TransferMode::Warm,
                note: note.clone(),
                at: now,
                outcome: None,
                ended_at: None,
            });
            format!("returned to {}: {note}", e.username)
        }
        HandOff::Cancel => {
            let transfer = record
                .end_transfer("cancelled", now)
                .ok_or_else(|| AppError::conflict("no transfer of this conversation is waiting"))?;
            let allowed = actor.is_none_or(|actor| {
                transfer.by == Some(actor.employee_id)
                    || transfer.from == Some(actor.employee_id)
                    || actor.access.has(Permission::ConversationsAssign)
            });
            if !allowed {
                return Err(AppError::forbidden(
                    "only who started the transfer, its owner or a supervisor may cancel it",
                ));
            }
            "transfer cancelled".to_owned()
        }
    };
    service::save_record(txn, &record)?;
    let author = match by {
        Some(employee_id) => crate::conversations::Author::Employee { employee_id },
        None => crate::conversations::Author::System,
    };
    let announced = crate::conversations::service::record_event_in(txn, id, author, &text, now)?;
    Ok((record, announced))
}

pub async fn calendars(core: &Core) -> AppResult<Vec<Calendar>> {
    core.store.read(service::calendars).await
}

/// Creates (`id` None) or replaces a business calendar.
pub async fn put_calendar(
    core: &Core,
    caller: &Caller,
    id: Option<u64>,
    input: service::CalendarInput,
) -> AppResult<Calendar> {
    caller.require_everywhere(Permission::RoutingManage)?;
    let now = core.now();
    let actor = caller.clone();
    let calendar = core
        .store
        .write(move |txn| {
            let calendar = service::put_calendar(txn, id, &input, now)?;
            crate::audit::append(
                txn,
                now,
                crate::audit::AuditEvent::new(&actor.actor, "routing.calendar_saved")
                    .target(format!("calendar:{}", calendar.id))
                    .details(serde_json::to_value(&calendar).unwrap_or_default()),
            )?;
            Ok(calendar)
        })
        .await?;
    core.routing.send(Command::LanesChanged);
    Ok(calendar)
}

pub async fn delete_calendar(core: &Core, caller: &Caller, id: u64) -> AppResult<()> {
    caller.require_everywhere(Permission::RoutingManage)?;
    let now = core.now();
    let actor = caller.clone();
    core.store
        .write(move |txn| {
            service::delete_calendar(txn, id)?;
            crate::audit::append(
                txn,
                now,
                crate::audit::AuditEvent::new(&actor.actor, "routing.calendar_deleted")
                    .target(format!("calendar:{id}")),
            )
        })
        .await?;
    core.routing.send(Command::LanesChanged);
    Ok(())
}

// ------------------------------------------------------------------ experiments and replays

pub async fn experiments(core: &Core) -> AppResult<Vec<ExperimentView>> {
    let now = core.now();
    let mut all = core.store.read(experiment::experiments).await?;
    all.reverse();
    Ok(all
        .into_iter()
        .map(|e| ExperimentView::of(e, now))
        .collect())
}

pub async fn create_experiment(
    core: &Core,
    caller: &Caller,
    input: NewExperiment,
) -> AppResult<ExperimentView> {
    let now = core.now();
    let actor = caller.clone();
    let created = core
        .store
        .write(move |txn| {
            let created = experiment::create(txn, &actor, &input, now)?;
            crate::audit::append(
                txn,
                now,
                crate::audit::AuditEvent::new(&actor.actor, "routing.experiment_created")
                    .target(format!("experiment:{}", created.id))
                    .details(serde_json::json!({
                        "control": created.control,
                        "candidate": created.candidate,
                        "slice_minutes": created.slice_minutes,
                        "duration_hours": created.duration_hours,
                    })),
            )?;
            Ok(created)
        })
        .await?;
    Ok(ExperimentView::of(created, now))
}

/// Starts or stops an experiment; routing switches policies from the next step.
pub async fn change_experiment(
    core: &Core,
    caller: &Caller,
    id: u64,
    start: bool,
) -> AppResult<ExperimentView> {
    let now = core.now();
    let actor = caller.clone();
    let changed = core
        .store
        .write(move |txn| {
            let changed = if start {
                experiment::start(txn, &actor, id, now)?
            } else {
                experiment::stop(txn, &actor, id, now)?
            };
            crate::audit::append(
                txn,
                now,
                crate::audit::AuditEvent::new(
                    &actor.actor,
                    if start {
                        "routing.experiment_started"
                    } else {
                        "routing.experiment_stopped"
                    },
                )
                .target(format!("experiment:{id}")),
            )?;
            Ok(changed)
        })
        .await?;
    core.routing.send(Command::PolicyChanged);
    Ok(ExperimentView::of(changed, now))
}

pub async fn experiment_report(core: &Core, id: u64) -> AppResult<ExperimentReport> {
    let now = core.now();
    core.store
        .read(move |txn| experiment::report_from_store(txn, id, now))
        .await
}

pub async fn replay(
    core: &Core,
    caller: &Caller,
    request: ReplayRequest,
) -> AppResult<ReplayReport> {
    // A replay simulates days of traffic on a blocking thread (as store reads run): one at a
    // time, so replays cannot take every core from the live server.
    static RUNNING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);
    caller.require_everywhere(Permission::RoutingManage)?;
    let _running = RUNNING.try_acquire().map_err(|_| {
        AppError::new(
            crate::error::ErrorCode::Conflict,
            "another replay is running; try again when it has finished",
        )
    })?;
    let now = core.now();
    let actor = caller.clone();
    core.store
        .read(move |txn| crate::routing::replay::replay(txn, &actor, &request, now))
        .await
}
