//! A seeded discrete-event simulation of a contact centre, to compare routing policies on the
//! same traffic: ours (the `Router`) and the styles of the engines routing.md describes.
//!
//! Every policy sees the same employees, the same arrivals, the same customer patience, the
//! same handling times and the same acceptance behaviour (all drawn from the seed per
//! conversation and employee, never from the order a policy makes its choices in), so the
//! differences in the results are the policies'.
//!
//! The outcome model: handling is faster and first-contact resolution likelier the better the
//! employee's skill in the question's type; a language mismatch slows and hurts; a returning
//! customer's previous employee resolves a little more often. Part-time responders are
//! employees with another job: every conversation they take interrupts it, so the share of work
//! they carry is reported beside the service figures.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, HashSet};

use crate::channels::ChannelKind;
use crate::clock::Millis;
use crate::routing::engine::{
    AgentProfile, Effect, Event as RouterEvent, Medium, Mode, Policy, Presence, Router, TaskSpec,
};
use crate::routing::urgency::Urgency;

const SECOND: Millis = 1000;
const MINUTE: Millis = 60 * SECOND;
/// Chats answered within this count for the service level.
pub const SERVICE_LEVEL_MS: Millis = 20 * SECOND;
/// Requirements relax after this long (every policy that has timed steps uses the same one).
const RELAX_MS: Millis = 30 * SECOND;
const OFFER_TIMEOUT_MS: Millis = 30 * SECOND;

/// The shape of a simulated organisation and day.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: &'static str,
    pub seed: u64,
    pub employees: usize,
    pub skills: usize,
    /// Conversations over the whole run.
    pub arrivals: usize,
    pub hours: u32,
    /// Share of employees who answer beside another job.
    pub part_time_share: f64,
}

impl Scenario {
    pub fn small() -> Scenario {
        Scenario {
            name: "300 employees, 20 skills, 6 h, 6,000 conversations",
            seed: 7,
            employees: 300,
            skills: 20,
            arrivals: 6_000,
            hours: 6,
            part_time_share: 0.3,
        }
    }

    pub fn large() -> Scenario {
        Scenario {
            name: "10,000 employees, 200 skills, 1 h, 20,000 conversations",
            seed: 11,
            employees: 10_000,
            skills: 200,
            arrivals: 20_000,
            hours: 1,
            part_time_share: 0.3,
        }
    }
}

/// A simulated employee.
#[derive(Debug, Clone)]
pub struct SimAgent {
    pub id: u64,
    pub skills: BTreeMap<String, u8>,
    pub languages: Vec<String>,
    pub chats: u16,
    pub emails: u16,
    pub part_time: bool,
    /// A part-time responder's delay and daily cap, when not the simulation's own.
    pub part_time_rules: Option<(Millis, u32)>,
    /// How this employee answered offers, when recorded (a replay); else the model's.
    pub answers: Option<AnswerHabit>,
}

/// How an employee answers offers, from what they did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AnswerHabit {
    pub accept: f64,
    pub decline: f64,
    pub median_delay_ms: Millis,
}

/// A simulated conversation.
#[derive(Debug, Clone)]
pub struct SimArrival {
    pub id: u64,
    pub at: Millis,
    pub kind: String,
    pub language: String,
    pub email: bool,
    pub vip: bool,
    pub customer: u64,
    /// The employee who served this customer before, if any.
    pub previous: Option<u64>,
    pub patience_ms: Millis,
    /// Handling time at skill level 3 in the customer's language.
    pub base_handle_ms: Millis,
}

#[derive(Debug, Clone)]
pub struct Traffic {
    pub agents: Vec<SimAgent>,
    pub arrivals: Vec<SimArrival>,
    pub horizon: Millis,
    pub seed: u64,
    /// Presence changes (time, employee id, presence) in time order; empty: everyone is online
    /// throughout. Only the router's run follows them (a replay of recorded traffic).
    pub presence: Vec<(Millis, u64, Presence)>,
}

/// A deterministic generator (SplitMix64): the same seed gives the same traffic everywhere.
#[derive(Debug, Clone)]
pub struct Random(u64);

impl Random {
    pub fn new(seed: u64) -> Random {
        Random(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    fn exponential(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.unit()).ln()
    }

    /// Log-normal with this median and shape.
    fn lognormal(&mut self, median: f64, sigma: f64) -> f64 {
        let (u1, u2) = (self.unit().max(1e-12), self.unit());
        let normal = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        median * (sigma * normal).exp()
    }

    /// Zipf-like: small indexes much more often.
    fn zipf(&mut self, n: usize) -> usize {
        let x = self.unit();
        ((n as f64).powf(x) - 1.0)
            .floor()
            .clamp(0.0, n as f64 - 1.0) as usize
    }
}

/// A value that depends only on the seed and the pair, not on when it is asked for.
fn draw(seed: u64, a: u64, b: u64, salt: u64) -> f64 {
    let mut r =
        Random::new(seed ^ a.wrapping_mul(0x9e37_79b9) ^ b.wrapping_mul(0x85eb_ca6b) ^ salt);
    r.next_u64();
    r.unit()
}

/// Generates a scenario's employees and arrivals.
pub fn generate(s: &Scenario) -> Traffic {
    let mut random = Random::new(s.seed);
    let skill = |i: usize| format!("s{i}");
    let agents: Vec<SimAgent> = (0..s.employees)
        .map(|i| {
            let part_time = random.unit() < s.part_time_share;
            let mut skills = BTreeMap::new();
            skills.insert(skill(random.zipf(s.skills)), 3 + random.below(3) as u8);
            for _ in 0..random.below(3) {
                skills
                    .entry(skill(random.zipf(s.skills)))
                    .or_insert(1 + random.below(3) as u8);
            }
            let languages = match random.below(10) {
                0..=5 => vec!["zh".to_owned()],
                6..=7 => vec!["zh".to_owned(), "en".to_owned()],
                _ => vec!["en".to_owned()],
            };
            SimAgent {
                id: i as u64 + 1,
                skills,
                languages,
                chats: if part_time { 1 } else { 3 },
                emails: if part_time { 1 } else { 5 },
                part_time,
                part_time_rules: None,
                answers: None,
            }
        })
        .collect();
    let horizon = Millis::from(s.hours) * 60 * MINUTE;
    // A diurnal curve with two 10x bursts of 5 minutes, drawn by thinning.
    let bursts = [horizon / 3, 2 * horizon / 3];
    let intensity = |t: Millis| -> f64 {
        let phase = t as f64 / horizon as f64 * std::f64::consts::PI;
        let base = 0.6 + 0.8 * phase.sin();
        if bursts.iter().any(|b| t >= *b && t < b + 5 * MINUTE) {
            base * 10.0
        } else {
            base
        }
    };
    let peak = 14.0;
    let mean_rate = s.arrivals as f64 / horizon as f64 * 1.25;
    let mut arrivals = Vec::with_capacity(s.arrivals);
    let mut t = 0.0f64;
    let mut customers: Vec<(u64, Option<u64>)> = Vec::new();
    while arrivals.len() < s.arrivals {
        t += random.exponential(1.0 / (mean_rate * peak));
        if t as Millis >= horizon {
            t = 0.0;
        }
        if random.unit() * peak > intensity(t as Millis) {
            continue;
        }
        let id = arrivals.len() as u64 + 1;
        let email = random.unit() < 0.3;
        let (customer, previous) = if !customers.is_empty() && random.unit() < 0.3 {
            customers[random.below(customers.len())]
        } else {
            let c = id;
            // A returning customer's previous employee is drawn now, as history would have it.
            let previous = (random.unit() < 0.5).then(|| 1 + random.below(s.employees) as u64);
            customers.push((c, previous));
            (c, previous)
        };
        arrivals.push(SimArrival {
            id,
            at: t as Millis,
            kind: skill(random.zipf(s.skills)),
            language: if random.unit() < 0.7 { "zh" } else { "en" }.to_owned(),
            email,
            vip: random.unit() < 0.05,
            customer,
            previous,
            patience_ms: if email {
                (random.exponential(4.0 * 60.0) * MINUTE as f64) as Millis
            } else {
                (random.exponential(2.0) * MINUTE as f64) as Millis
            },
            base_handle_ms: (random.lognormal(if email { 6.0 } else { 4.0 }, 0.5) * MINUTE as f64)
                as Millis,
        });
    }
    arrivals.sort_by_key(|a| (a.at, a.id));
    for (i, a) in arrivals.iter_mut().enumerate() {
        a.id = i as u64 + 1;
    }
    Traffic {
        agents,
        arrivals,
        horizon,
        seed: s.seed,
        presence: Vec::new(),
    }
}

/// The policies compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKind {
    AllHands,
    /// Skill requirement for 30 s then anyone; the longest-idle worker.
    TwilioStyle,
    /// Skills for 30 s then anyone; the highest share of spare capacity.
    ZendeskStyle,
    /// Bullseye rings (level 3+, then 1+, then anyone); the best skill level, then idle.
    GenesysStyle,
    /// No skills; the fewest open chats.
    RocketChatStyle,
    /// No skills; round robin among those under their cap.
    ChatwootStyle,
}

impl PolicyKind {
    pub const ALL: [PolicyKind; 6] = [
        PolicyKind::AllHands,
        PolicyKind::TwilioStyle,
        PolicyKind::ZendeskStyle,
        PolicyKind::GenesysStyle,
        PolicyKind::RocketChatStyle,
        PolicyKind::ChatwootStyle,
    ];

    pub fn name(self) -> &'static str {
        match self {
            PolicyKind::AllHands => "AllHands",
            PolicyKind::TwilioStyle => "Twilio-style",
            PolicyKind::ZendeskStyle => "Zendesk-style",
            PolicyKind::GenesysStyle => "Genesys-style",
            PolicyKind::RocketChatStyle => "Rocket.Chat-style",
            PolicyKind::ChatwootStyle => "Chatwoot-style",
        }
    }
}

/// What a run measured.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct Results {
    pub arrivals: usize,
    pub served: usize,
    pub abandoned: usize,
    /// Chats answered within `SERVICE_LEVEL_MS`, of all chats.
    pub service_level: f64,
    pub average_wait_s: f64,
    pub p90_wait_s: f64,
    pub abandonment: f64,
    /// The mean probability that the first employee resolved it.
    pub fcr_proxy: f64,
    /// Gini of work per unit of capacity among dedicated employees (0 = even).
    pub fairness_gini: f64,
    /// Share of served conversations that part-time responders took.
    pub part_time_share: f64,
    pub declined: usize,
}

/// How one employee serving one conversation goes.
struct Service {
    handle_ms: Millis,
    resolve: f64,
}

/// How long handling takes at a skill level, relative to level 3 in the customer's language.
pub fn speed(level: u8, speaks: bool) -> f64 {
    let by_level = match level {
        0 => 1.6,
        1 => 1.3,
        2 => 1.15,
        3 => 1.0,
        4 => 0.9,
        _ => 0.8,
    };
    by_level * if speaks { 1.0 } else { 1.3 }
}

fn service(traffic: &Traffic, agent: &SimAgent, task: &SimArrival) -> Service {
    let level = agent.skills.get(&task.kind).copied().unwrap_or(0);
    let speaks = agent.languages.contains(&task.language);
    let speed = speed(level, speaks);
    let mut resolve = if level == 0 {
        0.35
    } else {
        0.5 + 0.08 * f64::from(level)
    };
    if !speaks {
        resolve -= 0.2;
    }
    if task.previous == Some(agent.id) {
        resolve += 0.05;
    }
    let jitter = 0.8 + 0.4 * draw(traffic.seed, agent.id, task.id, 1);
    Service {
        handle_ms: (task.base_handle_ms as f64 * speed * jitter) as Millis,
        resolve: resolve.clamp(0.0, 1.0),
    }
}

/// How an employee answers an offer: after how long, and whether they take it.
fn answer(
    traffic: &Traffic,
    agent: &SimAgent,
    task: &SimArrival,
    timeout_ms: Millis,
) -> (Millis, Answer) {
    let u = draw(traffic.seed, agent.id, task.id, 2);
    if let Some(habit) = agent.answers {
        // Delays spread from half to one and a half times the employee's median.
        let delay = (habit.median_delay_ms as f64
            * (0.5 + draw(traffic.seed, agent.id, task.id, 3))) as Millis;
        return if u < habit.accept {
            (delay.min(timeout_ms - 1), Answer::Accept)
        } else if u < habit.accept + habit.decline {
            (delay.min(timeout_ms - 1), Answer::Decline)
        } else {
            (timeout_ms, Answer::Silent)
        };
    }
    let delay = (draw(traffic.seed, agent.id, task.id, 3) * 6.0 + 1.0)
        * SECOND as f64
        * if agent.part_time { 2.5 } else { 1.0 };
    if u < 0.02 {
        (timeout_ms, Answer::Silent)
    } else if u < 0.07 {
        (delay as Millis, Answer::Decline)
    } else {
        (delay as Millis, Answer::Accept)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Accept,
    Decline,
    Silent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    Arrive(usize),
    /// An offer's answer arrives (task index, agent index).
    Answer(usize, usize),
    Done(usize, usize),
    GiveUp(usize),
    /// Timed requirement steps move on.
    Recheck,
    /// A conversation's first stage is over (ours): its skill requirement relaxes.
    Relax(usize),
    /// A conversation has waited long enough for part-time responders (ours).
    PartTimeDue(usize),
    /// The traffic's presence change at this index.
    Presence(usize),
}

/// Bookkeeping every policy shares: the queue, the load, the measurements.
struct World<'a> {
    traffic: &'a Traffic,
    load: Vec<[u16; 2]>,
    idle_since: Vec<Millis>,
    handled: Vec<u32>,
    rr_next: usize,
    /// Waiting conversations: (priority, arrival, index).
    queue: BTreeSet<(Reverse<bool>, Millis, usize)>,
    excluded: HashMap<usize, HashSet<usize>>,
    /// Conversations with an offer out (not abandoned while it is).
    offered: HashMap<usize, usize>,
    finished: Vec<bool>,
    waits: Vec<Millis>,
    chats: usize,
    chats_in_level: usize,
    resolve_sum: f64,
    part_time_served: usize,
    abandoned: usize,
    declined: usize,
}

impl<'a> World<'a> {
    fn new(traffic: &'a Traffic) -> World<'a> {
        let n = traffic.agents.len();
        World {
            traffic,
            load: vec![[0, 0]; n],
            idle_since: vec![0; n],
            handled: vec![0; n],
            rr_next: 0,
            queue: BTreeSet::new(),
            excluded: HashMap::new(),
            offered: HashMap::new(),
            finished: vec![false; traffic.arrivals.len()],
            waits: Vec::new(),
            chats: 0,
            chats_in_level: 0,
            resolve_sum: 0.0,
            part_time_served: 0,
            abandoned: 0,
            declined: 0,
        }
    }

    fn medium(task: &SimArrival) -> usize {
        usize::from(task.email)
    }

    fn spare(&self, agent: usize, task: &SimArrival) -> u16 {
        let a = &self.traffic.agents[agent];
        let cap = if task.email { a.emails } else { a.chats };
        cap.saturating_sub(self.load[agent][Self::medium(task)])
    }

    /// The conversation starts being served by `agent` at `now`.
    fn served(&mut self, task: usize, agent: usize, now: Millis) -> Millis {
        let arrival = &self.traffic.arrivals[task];
        let a = &self.traffic.agents[agent];
        let wait = now - arrival.at;
        self.waits.push(wait);
        if !arrival.email && wait <= SERVICE_LEVEL_MS {
            self.chats_in_level += 1;
        }
        let s = service(self.traffic, a, arrival);
        self.resolve_sum += s.resolve;
        self.handled[agent] += 1;
        if a.part_time {
            self.part_time_served += 1;
        }
        now + s.handle_ms
    }

    fn results(&self) -> Results {
        let served = self.waits.len();
        let mut waits = self.waits.clone();
        waits.sort_unstable();
        let arrivals = self.traffic.arrivals.len();
        // Work per unit of chat capacity among dedicated employees.
        let mut shares: Vec<f64> = self
            .traffic
            .agents
            .iter()
            .enumerate()
            .filter(|(_, a)| !a.part_time)
            .map(|(i, a)| f64::from(self.handled[i]) / f64::from(a.chats.max(1)))
            .collect();
        shares.sort_by(f64::total_cmp);
        Results {
            arrivals,
            served,
            abandoned: self.abandoned,
            service_level: self.chats_in_level as f64 / self.chats.max(1) as f64,
            average_wait_s: waits.iter().sum::<Millis>() as f64 / served.max(1) as f64 / 1000.0,
            p90_wait_s: waits
                .get(served * 9 / 10)
                .map_or(0.0, |w| *w as f64 / 1000.0),
            abandonment: self.abandoned as f64 / arrivals.max(1) as f64,
            fcr_proxy: self.resolve_sum / served.max(1) as f64,
            fairness_gini: gini(&shares),
            part_time_share: self.part_time_served as f64 / served.max(1) as f64,
            declined: self.declined,
        }
    }
}

pub fn gini(sorted: &[f64]) -> f64 {
    let n = sorted.len() as f64;
    let total: f64 = sorted.iter().sum();
    if total <= 0.0 || sorted.is_empty() {
        return 0.0;
    }
    let weighted: f64 = sorted
        .iter()
        .enumerate()
        .map(|(i, x)| (2.0 * (i as f64 + 1.0) - n - 1.0) * x)
        .sum();
    weighted / (n * total)
}

type Queue = BinaryHeap<Reverse<(Millis, u64, Ev)>>;

fn push(events: &mut Queue, seq: &mut u64, at: Millis, ev: Ev) {
    *seq += 1;
    events.push(Reverse((at, *seq, ev)));
}

/// Runs one policy over the traffic.
pub fn run(traffic: &Traffic, policy: PolicyKind) -> Results {
    match policy {
        PolicyKind::AllHands => run_allhands(traffic),
        other => run_baseline(traffic, other),
    }
}

fn run_baseline(traffic: &Traffic, policy: PolicyKind) -> Results {
    let mut world = World::new(traffic);
    let mut events = Queue::new();
    let mut seq = 0;
    for (i, a) in traffic.arrivals.iter().enumerate() {
        push(&mut events, &mut seq, a.at, Ev::Arrive(i));
    }
    // Agents with room on some medium: the only ones a dispatch looks at.
    let mut free: BTreeSet<usize> = (0..traffic.agents.len()).collect();
    while let Some(Reverse((now, _, ev))) = events.pop() {
        match ev {
            Ev::Arrive(i) => {
                let a = &traffic.arrivals[i];
                if !a.email {
                    world.chats += 1;
                }
                world.queue.insert((Reverse(a.vip), a.at, i));
                push(&mut events, &mut seq, a.at + a.patience_ms, Ev::GiveUp(i));
                for step in [RELAX_MS / 3, RELAX_MS] {
                    push(&mut events, &mut seq, a.at + step + 1, Ev::Recheck);
                }
            }
            Ev::GiveUp(i) => {
                let a = &traffic.arrivals[i];
                if world.queue.remove(&(Reverse(a.vip), a.at, i)) {
                    world.abandoned += 1;
                    world.finished[i] = true;
                }
            }
            Ev::Answer(i, agent) => {
                world.offered.remove(&i);
                let a = &traffic.arrivals[i];
                let (_, answer) = answer(traffic, &traffic.agents[agent], a, OFFER_TIMEOUT_MS);
                if answer == Answer::Accept && !world.finished[i] {
                    let done = world.served(i, agent, now);
                    world.finished[i] = true;
                    push(&mut events, &mut seq, done, Ev::Done(i, agent));
                } else {
                    world.load[agent][World::medium(a)] -= 1;
                    free.insert(agent);
                    if !world.finished[i] {
                        world.declined += 1;
                        world.excluded.entry(i).or_default().insert(agent);
                        if now < a.at + a.patience_ms {
                            world.queue.insert((Reverse(a.vip), a.at, i));
                        } else {
                            world.abandoned += 1;
                            world.finished[i] = true;
                        }
                    }
                }
            }
            Ev::Done(i, agent) => {
                world.load[agent][World::medium(&traffic.arrivals[i])] -= 1;
                world.idle_since[agent] = now;
                free.insert(agent);
            }
            Ev::Recheck | Ev::Relax(_) | Ev::PartTimeDue(_) | Ev::Presence(_) => {}
        }
        dispatch_baseline(&mut world, &mut free, &mut events, &mut seq, policy, now);
    }
    world.results()
}

fn dispatch_baseline(
    world: &mut World<'_>,
    free: &mut BTreeSet<usize>,
    events: &mut Queue,
    seq: &mut u64,
    policy: PolicyKind,
    now: Millis,
) {
    let traffic = world.traffic;
    let waiting: Vec<(Reverse<bool>, Millis, usize)> = world.queue.iter().copied().collect();
    let mut misses = 0;
    // Requirements nobody free meets in this round: the free set only shrinks within it.
    let mut hopeless: HashSet<(&str, bool, u8)> = HashSet::new();
    for key in waiting {
        if free.is_empty() {
            break;
        }
        let (_, _, i) = key;
        let task = &traffic.arrivals[i];
        let waited = now - task.at;
        let min_level = match policy {
            PolicyKind::TwilioStyle | PolicyKind::ZendeskStyle if waited < RELAX_MS => 1,
            PolicyKind::GenesysStyle if waited < RELAX_MS / 3 => 3,
            PolicyKind::GenesysStyle if waited < RELAX_MS => 1,
            _ => 0,
        };
        let excluded = world.excluded.get(&i);
        let requirement = (task.kind.as_str(), task.email, min_level);
        if excluded.is_none() && hopeless.contains(&requirement) {
            continue;
        }
        let candidates = free.iter().copied().filter(|&a| {
            world.spare(a, task) > 0
                && excluded.is_none_or(|e| !e.contains(&a))
                && (min_level == 0
                    || traffic.agents[a]
                        .skills
                        .get(&task.kind)
                        .copied()
                        .unwrap_or(0)
                        >= min_level)
        });
        let chosen = match policy {
            PolicyKind::TwilioStyle => candidates.min_by_key(|&a| (world.idle_since[a], a)),
            PolicyKind::ZendeskStyle => candidates.max_by(|&a, &b| {
                let spare = |x: usize| {
                    f64::from(world.spare(x, task))
                        / f64::from(if task.email {
                            traffic.agents[x].emails
                        } else {
                            traffic.agents[x].chats
                        })
                };
                spare(a)
                    .total_cmp(&spare(b))
                    .then(world.idle_since[b].cmp(&world.idle_since[a]))
            }),
            PolicyKind::GenesysStyle => candidates.max_by_key(|&a| {
                (
                    traffic.agents[a]
                        .skills
                        .get(&task.kind)
                        .copied()
                        .unwrap_or(0),
                    Reverse(world.idle_since[a]),
                    Reverse(a),
                )
            }),
            PolicyKind::RocketChatStyle => {
                candidates.min_by_key(|&a| (world.load[a][0] + world.load[a][1], a))
            }
            PolicyKind::ChatwootStyle => {
                let start = world.rr_next;
                let n = traffic.agents.len();
                let pick = candidates.min_by_key(|&a| (a + n - start) % n);
                if let Some(a) = pick {
                    world.rr_next = (a + 1) % n;
                }
                pick
            }
            PolicyKind::AllHands => unreachable!("run_allhands"),
        };
        let Some(agent) = chosen else {
            if excluded.is_none() {
                hopeless.insert(requirement);
            }
            misses += 1;
            if misses > 200 {
                break;
            }
            continue;
        };
        world.queue.remove(&key);
        world.load[agent][World::medium(task)] += 1;
        if world.spare(agent, task) == 0 {
            let other = SimArrival {
                email: !task.email,
                ..task.clone()
            };
            if world.spare(agent, &other) == 0 {
                free.remove(&agent);
            }
        }
        world.offered.insert(i, agent);
        let (delay, _) = answer(traffic, &traffic.agents[agent], task, OFFER_TIMEOUT_MS);
        push(events, seq, now + delay, Ev::Answer(i, agent));
    }
}

fn run_allhands(traffic: &Traffic) -> Results {
    run_router(
        traffic,
        Policy {
            offer_timeout_ms: BTreeMap::from([
                (Medium::Chat, OFFER_TIMEOUT_MS),
                (Medium::Email, OFFER_TIMEOUT_MS),
                (Medium::Call, OFFER_TIMEOUT_MS),
            ]),
            ..Policy::default()
        },
    )
}

/// Runs the router with this policy over the traffic (a simulation, or a replay of recorded
/// traffic when the traffic carries presence changes and answer habits).
pub fn run_router(traffic: &Traffic, policy: Policy) -> Results {
    let mut world = World::new(traffic);
    let timeout_of = |task: &SimArrival| {
        let medium = if task.email {
            Medium::Email
        } else {
            Medium::Chat
        };
        policy
            .offer_timeout_ms
            .get(&medium)
            .copied()
            .unwrap_or(OFFER_TIMEOUT_MS)
            .max(2)
    };
    let mut router = Router::new(Policy {
        // Nobody is set away by the simulation: every policy keeps the same people, and a
        // replay follows the recorded presence instead.
        missed_offers_to_away: u32::MAX,
        ..policy.clone()
    });
    let index_of: HashMap<u64, usize> = traffic
        .agents
        .iter()
        .enumerate()
        .map(|(i, a)| (a.id, i))
        .collect();
    let mut setup = Vec::new();
    for a in &traffic.agents {
        setup.push(RouterEvent::AgentUpdated(AgentProfile {
            id: a.id,
            skills: a.skills.clone(),
            languages: a.languages.clone(),
            capacity: BTreeMap::from([
                (Medium::Chat, a.chats),
                (Medium::Email, a.emails),
                (Medium::Call, 0),
            ]),
            mode: match (a.part_time, a.part_time_rules) {
                (true, Some((delay_ms, daily_cap))) => Mode::PartTime {
                    delay_ms,
                    daily_cap,
                },
                // Reached once a conversation would otherwise miss its service level.
                (true, None) => Mode::PartTime {
                    delay_ms: SERVICE_LEVEL_MS,
                    daily_cap: 20,
                },
                (false, _) => Mode::Dedicated,
            },
            location: None,
        }));
        if traffic.presence.is_empty() {
            setup.push(RouterEvent::PresenceChanged {
                agent: a.id,
                presence: Presence::Online,
            });
        }
    }
    router.handle_all(setup, 0);
    let mut events = Queue::new();
    let mut seq = 0;
    for (i, (at, _, _)) in traffic.presence.iter().enumerate() {
        push(&mut events, &mut seq, (*at).max(0), Ev::Presence(i));
    }
    for (i, a) in traffic.arrivals.iter().enumerate() {
        push(&mut events, &mut seq, a.at, Ev::Arrive(i));
    }
    let spec = |task: &SimArrival, relaxed: bool| {
        let mut spec = TaskSpec::new(
            task.id,
            if task.email {
                ChannelKind::Email
            } else {
                ChannelKind::Web
            },
            task.at,
        );
        spec.urgency = if task.vip {
            Urgency::High
        } else {
            Urgency::Normal
        };
        spec.vip_tier = u8::from(task.vip);
        spec.wanted_skills = vec![task.kind.clone()];
        spec.preferred_language = Some(task.language.clone());
        spec.previous_agents = task.previous.map(|p| (p, 1.0)).into_iter().collect();
        if !relaxed {
            spec.required_skills.insert(task.kind.clone(), 1);
        }
        spec
    };
    // The lane's first stage requires the type's skill while someone who has it is online.
    let holders: HashSet<&str> = traffic
        .agents
        .iter()
        .flat_map(|a| a.skills.keys().map(String::as_str))
        .collect();
    // Offer answers: offer id -> (task, agent index).
    let mut pending: HashMap<u64, (usize, usize)> = HashMap::new();
    let mut next_tick = 0;
    while let Some(Reverse((now, _, ev))) = events.pop() {
        let mut input = Vec::new();
        match ev {
            Ev::Arrive(i) => {
                let a = &traffic.arrivals[i];
                if !a.email {
                    world.chats += 1;
                }
                input.push(RouterEvent::TaskArrived(spec(
                    a,
                    !holders.contains(a.kind.as_str()),
                )));
                push(&mut events, &mut seq, a.at + a.patience_ms, Ev::GiveUp(i));
                push(&mut events, &mut seq, a.at + RELAX_MS + 1, Ev::Relax(i));
                push(
                    &mut events,
                    &mut seq,
                    a.at + SERVICE_LEVEL_MS + 1,
                    Ev::PartTimeDue(i),
                );
            }
            Ev::GiveUp(i) => {
                if !world.finished[i] && !world.offered.contains_key(&i) {
                    world.abandoned += 1;
                    world.finished[i] = true;
                    input.push(RouterEvent::TaskFinished {
                        conversation: traffic.arrivals[i].id,
                    });
                }
            }
            Ev::Answer(offer, _) => {
                let Some((i, agent)) = pending.remove(&(offer as u64)) else {
                    continue;
                };
                world.offered.remove(&i);
                let a = &traffic.arrivals[i];
                match answer(traffic, &traffic.agents[agent], a, timeout_of(a)).1 {
                    Answer::Accept => {
                        input.push(RouterEvent::OfferAccepted {
                            offer: offer as u64,
                        });
                        let done = world.served(i, agent, now);
                        world.finished[i] = true;
                        push(&mut events, &mut seq, done, Ev::Done(i, agent));
                    }
                    Answer::Decline => {
                        world.declined += 1;
                        input.push(RouterEvent::OfferDeclined {
                            offer: offer as u64,
                        });
                        if now >= a.at + a.patience_ms {
                            world.abandoned += 1;
                            world.finished[i] = true;
                            input.push(RouterEvent::TaskFinished { conversation: a.id });
                        }
                    }
                    // The router's own expiry withdraws it (a tick at the deadline).
                    Answer::Silent => {
                        world.declined += 1;
                        input.push(RouterEvent::Tick);
                        if now >= a.at + a.patience_ms {
                            world.abandoned += 1;
                            world.finished[i] = true;
                            input.push(RouterEvent::TaskFinished { conversation: a.id });
                        }
                    }
                }
            }
            Ev::Done(i, _) => input.push(RouterEvent::TaskFinished {
                conversation: traffic.arrivals[i].id,
            }),
            Ev::Recheck => {}
            Ev::Presence(i) => {
                let (_, agent, presence) = traffic.presence[i];
                if index_of.contains_key(&agent) {
                    input.push(RouterEvent::PresenceChanged { agent, presence });
                }
            }
            // Time moves part-timers' delays on: a tick (at most one a second, like the
            // server's timer) when a conversation that reached the delay still waits.
            Ev::PartTimeDue(i) => {
                let waiting = router.task_status(traffic.arrivals[i].id)
                    == Some(crate::routing::engine::TaskStatus::Queued);
                if waiting && now >= next_tick {
                    next_tick = now + SECOND;
                    input.push(RouterEvent::Tick);
                }
            }
            // The first stage is over: the skill requirement relaxes.
            Ev::Relax(i) => {
                let task = &traffic.arrivals[i];
                let queued =
                    router.task_status(task.id) == Some(crate::routing::engine::TaskStatus::Queued);
                if queued
                    && router
                        .queued_spec(task.id)
                        .is_some_and(|s| !s.required_skills.is_empty())
                {
                    input.push(RouterEvent::TaskArrived(spec(task, true)));
                }
            }
        }
        for effect in router.handle_all(input, now) {
            if let Effect::Offer {
                offer,
                conversation,
                agent,
                ..
            } = effect
            {
                let i = conversation as usize - 1;
                let agent = index_of[&agent];
                if world.finished[i] {
                    continue;
                }
                world.offered.insert(i, agent);
                pending.insert(offer, (i, agent));
                let task = &traffic.arrivals[i];
                let (delay, _) = answer(traffic, &traffic.agents[agent], task, timeout_of(task));
                push(
                    &mut events,
                    &mut seq,
                    now + delay,
                    Ev::Answer(offer as usize, agent),
                );
            }
        }
    }
    world.results()
}

/// The comparison table as Markdown.
pub fn table(scenario: &Scenario, rows: &[(PolicyKind, Results)]) -> String {
    let mut out = format!(
        "{}\n\n| policy | service level (chats ≤ 20 s) | avg wait s | p90 wait s | abandoned | FCR proxy | fairness Gini | part-time share |\n|---|---|---|---|---|---|---|---|\n",
        scenario.name
    );
    for (policy, r) in rows {
        out.push_str(&format!(
            "| {} | {:.1}% | {:.1} | {:.1} | {:.2}% | {:.3} | {:.3} | {:.1}% |\n",
            policy.name(),
            r.service_level * 100.0,
            r.average_wait_s,
            r.p90_wait_s,
            r.abandonment * 100.0,
            r.fcr_proxy,
            r.fairness_gini,
            r.part_time_share * 100.0
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Scenario {
        Scenario {
            name: "tiny",
            seed: 3,
            employees: 40,
            skills: 6,
            arrivals: 600,
            hours: 2,
            part_time_share: 0.3,
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_traffic_and_results() {
        let a = generate(&tiny());
        let b = generate(&tiny());
        assert_eq!(a.arrivals.len(), 600);
        assert_eq!(
            a.arrivals
                .iter()
                .map(|x| (x.at, &x.kind))
                .collect::<Vec<_>>(),
            b.arrivals
                .iter()
                .map(|x| (x.at, &x.kind))
                .collect::<Vec<_>>()
        );
        let first = run(&a, PolicyKind::AllHands);
        let second = run(&b, PolicyKind::AllHands);
        assert_eq!(first.served, second.served);
        assert_eq!(first.fcr_proxy, second.fcr_proxy);
    }

    #[test]
    fn every_conversation_is_served_or_abandoned_under_every_policy() {
        let traffic = generate(&tiny());
        for policy in PolicyKind::ALL {
            let r = run(&traffic, policy);
            assert_eq!(
                r.served + r.abandoned,
                r.arrivals,
                "{}: {r:?}",
                policy.name()
            );
            assert!((0.0..=1.0).contains(&r.fcr_proxy));
        }
    }

    #[test]
    fn skill_aware_routing_resolves_more_than_round_robin() {
        let traffic = generate(&tiny());
        let ours = run(&traffic, PolicyKind::AllHands);
        let round_robin = run(&traffic, PolicyKind::ChatwootStyle);
        assert!(
            ours.fcr_proxy > round_robin.fcr_proxy,
            "{ours:?} vs {round_robin:?}"
        );
        assert!(ours.part_time_share < round_robin.part_time_share);
    }
}
