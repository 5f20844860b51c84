//! Routing decisions, in process, on one core: the router with 10,000 employees and 100,000
//! queued conversations handling a mix of employees freeing up and conversations arriving; and a
//! joint assignment of 200 conversations to 200 employees who come online together.
//!
//! Run: `cargo bench --bench routing` (`-- --quick` for a smaller run).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use allhands::channels::ChannelKind;
use allhands::routing::engine::{
    AgentProfile, Effect, Event, Medium, Mode, Policy, Presence, Router, TaskSpec,
};
use allhands::routing::urgency::Urgency;

/// Deterministic pseudo-random numbers (xorshift64*).
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Skill popularity falls off like Zipf: a few skills are asked for most.
    fn skill(&mut self, skills: u64) -> String {
        let r = (self.below(1_000_000) as f64 / 1_000_000.0).powi(3);
        format!("skill-{}", (r * skills as f64) as u64)
    }
}

fn employee(id: u64, random: &mut Random, skills: u64, chats: u16) -> AgentProfile {
    let mut held = BTreeMap::new();
    for _ in 0..3 {
        held.insert(random.skill(skills), 1 + random.below(5) as u8);
    }
    AgentProfile {
        id,
        skills: held,
        languages: vec!["zh".into(), "en".into()],
        capacity: BTreeMap::from([(Medium::Chat, chats), (Medium::Email, 0), (Medium::Call, 0)]),
        mode: Mode::Dedicated,
        location: None,
    }
}

fn conversation(id: u64, random: &mut Random, skills: u64, now: i64) -> TaskSpec {
    TaskSpec {
        conversation_id: id,
        channel: ChannelKind::Web,
        urgency: if random.below(10) == 0 {
            Urgency::High
        } else {
            Urgency::Normal
        },
        vip_tier: 0,
        required_skills: BTreeMap::from([(random.skill(skills), 1)]),
        wanted_skills: vec![random.skill(skills)],
        language: None,
        preferred_language: None,
        previous_agents: Vec::new(),
        customer_location: None,
        waiting_since: now,
        escalated: false,
        only_agent: None,
        exclude: Vec::new(),
        held_by: None,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)].as_secs_f64() * 1e6
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    // `--joint`: only the joint assignment, many rounds (for a profiler).
    if std::env::args().any(|a| a == "--joint") {
        joint(100);
        return;
    }
    let (agents, queued, events) = if quick {
        (1_000u64, 10_000u64, 2_000usize)
    } else {
        (10_000, 100_000, 20_000)
    };
    let skills = 256;
    let mut random = Random(0x0dd5_eed5);
    let mut router = Router::new(Policy::default());
    let mut now = 0i64;
    for id in 1..=agents {
        router.handle(
            Event::AgentUpdated(employee(id, &mut random, skills, 3)),
            now,
        );
    }
    // Employees go online one by one as conversations arrive: fill everyone, then queue.
    let mut owned: Vec<u64> = Vec::new();
    let mut next_conversation = 1u64;
    let started = Instant::now();
    for id in 1..=agents {
        router.handle(
            Event::PresenceChanged {
                agent: id,
                presence: Presence::Online,
            },
            now,
        );
    }
    while (router.queued_len() as u64) < queued && next_conversation < queued * 3 {
        now += 1;
        let effects = router.handle(
            Event::TaskArrived(conversation(next_conversation, &mut random, skills, now)),
            now,
        );
        next_conversation += 1;
        accept_all(&mut router, effects, now, &mut owned);
    }
    println!(
        "setup: {agents} employees, {} owned, {} queued, in {:.1} s",
        owned.len(),
        router.queued_len(),
        started.elapsed().as_secs_f64()
    );

    // The measured mix: half employees finishing a conversation (a decision from the queue),
    // half new conversations arriving.
    let mut latencies = Vec::with_capacity(events);
    let mut decisions = 0usize;
    let measured = Instant::now();
    for i in 0..events {
        now += 1;
        let event = if i % 2 == 0 && !owned.is_empty() {
            let index = random.below(owned.len() as u64) as usize;
            Event::TaskFinished {
                conversation: owned.swap_remove(index),
            }
        } else {
            next_conversation += 1;
            Event::TaskArrived(conversation(next_conversation, &mut random, skills, now))
        };
        let start = Instant::now();
        let effects = router.handle(event, now);
        latencies.push(start.elapsed());
        decisions += effects
            .iter()
            .filter(|e| matches!(e, Effect::Offer { .. }))
            .count();
        accept_all(&mut router, effects, now, &mut owned);
    }
    let total = measured.elapsed();
    latencies.sort();
    println!(
        "| employees | queued | events | decisions | p50 µs/event | p99 µs/event | decisions/s |\n|---|---|---|---|---|---|---|\n| {agents} | {} | {events} | {decisions} | {:.1} | {:.1} | {:.0} |",
        router.queued_len(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        decisions as f64 / total.as_secs_f64(),
    );

    // The joint rounds build routers of their own: the big one's memory goes back first.
    drop(router);
    joint(if quick { 3 } else { 10 });
}

/// Joint assignment: 200 conversations wait, 200 employees come online together.
fn joint(rounds: u64) {
    let mut times = Vec::new();
    for round in 0..rounds {
        let mut router = Router::new(Policy::default());
        let mut random = Random(0x1234 + round);
        for id in 1..=200 {
            router.handle(Event::AgentUpdated(employee(id, &mut random, 16, 1)), 0);
        }
        for id in 1..=200 {
            router.handle(Event::TaskArrived(conversation(id, &mut random, 16, 0)), 0);
        }
        let online: Vec<Event> = (1..=200)
            .map(|agent| Event::PresenceChanged {
                agent,
                presence: Presence::Online,
            })
            .collect();
        let start = Instant::now();
        let effects = router.handle_all(online, 1);
        times.push(start.elapsed());
        assert!(effects.iter().any(|e| matches!(e, Effect::Offer { .. })));
    }
    times.sort();
    println!(
        "joint assignment 200 x 200: median {:.2} ms, worst {:.2} ms",
        percentile(&times, 0.5) / 1000.0,
        times.last().unwrap().as_secs_f64() * 1000.0
    );
}

fn accept_all(router: &mut Router, effects: Vec<Effect>, now: i64, owned: &mut Vec<u64>) {
    for effect in effects {
        if let Effect::Offer {
            offer,
            conversation,
            ..
        } = effect
        {
            router.handle(Event::OfferAccepted { offer }, now);
            owned.push(conversation);
        }
    }
}
