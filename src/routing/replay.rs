//! The replay simulator: recorded traffic (the conversations that arrived in a time window,
//! who was present when, how each employee answered offers, how long conversations took) runs
//! through a candidate policy offline, beside the active policy on the same traffic, before
//! the candidate goes live.
//!
//! Only what a policy changes is simulated: who is offered what, and when. What happens after
//! an offer is taken from the records where they say it, and from the simulation's outcome model
//! (`simulate`) where they cannot: handling time is the recorded one adjusted for the new
//! employee's skill level, first-contact resolution is the model's proxy, and a customer who
//! was served gives up only after waiting longer than they did plus a patience drawn from the
//! seed (one who gave up in the record gives up at the same moment).

use std::collections::{BTreeMap, HashMap};

use redb::{ReadTransaction, ReadableTable};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::auth::Caller;
use crate::auth::rbac::Permission;
use crate::clock::Millis;
use crate::conversations::{Conversation, Status};
use crate::customers::Customer;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::org::Employee;
use crate::routing::engine::{Medium, Mode, Policy, Presence};
use crate::routing::service::{self, RoutingRecord};
use crate::routing::simulate::{
    self, AnswerHabit, Random, Results, SERVICE_LEVEL_MS, SimAgent, SimArrival, Traffic,
};
use crate::storage::{codec, get_record, tables};

const MINUTE: Millis = 60_000;
const DAY: Millis = 24 * 60 * MINUTE;
/// The most conversations one replay takes: a longer window is replayed in parts.
pub const MAX_CONVERSATIONS: usize = 200_000;

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    /// The policy version to try.
    pub policy_version: u32,
    /// The window's start (ms since the epoch); `days` before `to` unless given.
    pub from: Option<Millis>,
    /// The window's end; now unless given.
    pub to: Option<Millis>,
    /// The window's length when `from` is not given: 1 to 90 days, 7 unless given.
    pub days: Option<u32>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ReplayRow {
    /// `recorded` (what happened), `active` (the active policy replayed), `candidate`.
    pub run: String,
    pub policy_version: Option<u32>,
    pub results: Results,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ReplayReport {
    pub from: Millis,
    pub to: Millis,
    pub conversations: usize,
    pub employees: usize,
    pub presence_changes: usize,
    /// Chats taken within this many seconds count toward the service level.
    pub service_level_seconds: u32,
    pub rows: Vec<ReplayRow>,
    /// How the replay filled in what the records do not say.
    pub notes: Vec<String>,
}

/// Recorded traffic of a window, and what actually happened to it.
pub struct Recorded {
    pub traffic: Traffic,
    pub actual: Results,
    pub notes: Vec<String>,
}

fn invalid(field: &str, message: impl std::fmt::Display) -> AppError {
    AppError::field(field, message)
}

/// The window a request names, checked.
pub fn window(request: &ReplayRequest, now: Millis) -> AppResult<(Millis, Millis)> {
    let to = request.to.unwrap_or(now).min(now);
    let days = request.days.unwrap_or(7);
    if !(1..=90).contains(&days) {
        return Err(invalid("days", "1 to 90 days"));
    }
    let from = request.from.unwrap_or(to - Millis::from(days) * DAY);
    if from >= to {
        return Err(invalid("from", "the window must start before it ends"));
    }
    if to - from > 90 * DAY {
        return Err(invalid("from", "a window of at most 90 days"));
    }
    Ok((from, to))
}

/// Reads the window's traffic from the store.
pub fn record(txn: &ReadTransaction, from: Millis, to: Millis) -> AppResult<Recorded> {
    let conversations_table = txn.open_table(tables::CONVERSATIONS)?;
    let records = txn.open_table(tables::ROUTING_RECORDS)?;
    let customers = txn.open_table(tables::CUSTOMERS)?;
    let by_customer = txn.open_table(tables::CUSTOMER_CONVERSATIONS)?;
    // Conversation ids grow with creation: read back from the newest until the window starts.
    let mut window: Vec<(Conversation, Option<RoutingRecord>)> = Vec::new();
    for entry in conversations_table.iter()?.rev() {
        let (_, bytes) = entry?;
        let c: Conversation = codec::decode(bytes.value())?;
        if c.created_at < from {
            break;
        }
        if c.created_at >= to {
            continue;
        }
        if window.len() == MAX_CONVERSATIONS {
            return Err(AppError::new(
                ErrorCode::InvalidQuery,
                format!(
                    "more than {MAX_CONVERSATIONS} conversations arrived in this window: replay a shorter one"
                ),
            ));
        }
        let record: Option<RoutingRecord> = get_record(&records, c.id)?;
        window.push((c, record));
    }
    window.reverse();

    let employees: Vec<(Employee, service::AgentSettings)> = service::all_agents(txn)?;
    let levels: HashMap<u64, &service::AgentSettings> =
        employees.iter().map(|(e, s)| (e.id, s)).collect();

    // How each employee answered offers, and who took what.
    let mut habits: HashMap<u64, (u32, u32, u32, Vec<Millis>)> = HashMap::new();
    for (_, record) in &window {
        for d in record.iter().flat_map(|r| &r.decisions) {
            let h = habits.entry(d.employee_id).or_default();
            match d.outcome.as_deref() {
                Some("accepted") => h.0 += 1,
                Some("declined") => h.1 += 1,
                Some("expired") => h.2 += 1,
                _ => continue,
            }
            if let (Some(ended), Some("accepted" | "declined")) = (d.ended_at, d.outcome.as_deref())
            {
                h.3.push(ended - d.offered_at);
            }
        }
    }

    // Presence: each employee's state when the window opens, then every change inside it.
    let log = txn.open_table(tables::ROUTING_PRESENCE_LOG)?;
    let mut at_start: HashMap<u64, Presence> = HashMap::new();
    let mut logged: std::collections::HashSet<u64> = Default::default();
    for entry in log.range(..(from.max(0) as u64, 0))? {
        let (key, value) = entry?;
        let (_, employee) = key.value();
        logged.insert(employee);
        if let Some(p) = Presence::parse(value.value()) {
            at_start.insert(employee, p);
        }
    }
    let mut presence: Vec<(Millis, u64, Presence)> = Vec::new();
    for entry in log.range((from.max(0) as u64, 0)..(to.max(0) as u64, 0))? {
        let (key, value) = entry?;
        let (at, employee) = key.value();
        logged.insert(employee);
        if let Some(p) = Presence::parse(value.value()) {
            presence.push((at as Millis - from, employee, p));
        }
    }
    let mut notes = Vec::new();
    let mut unlogged_online = 0;
    for (employee, _) in &employees {
        if !logged.contains(&employee.id) && habits.get(&employee.id).is_some_and(|h| h.0 > 0) {
            // Records from before presence was logged: whoever took conversations was there.
            at_start.insert(employee.id, Presence::Online);
            unlogged_online += 1;
        }
    }
    if unlogged_online > 0 {
        notes.push(format!(
            "{unlogged_online} employees have no presence record for the window; they count as online throughout because they took conversations in it"
        ));
    }
    let mut initial: Vec<(Millis, u64, Presence)> = at_start
        .into_iter()
        .filter(|(_, p)| *p != Presence::Offline)
        .map(|(employee, p)| (0, employee, p))
        .collect();
    initial.sort_by_key(|(_, e, _)| *e);
    initial.extend(presence);
    let presence = initial;

    let (all_accepts, all_declines, all_expiries, mut all_delays) = habits.values().fold(
        (0u32, 0u32, 0u32, Vec::new()),
        |(a, d, e, mut delays), h| {
            delays.extend(&h.3);
            (a + h.0, d + h.1, e + h.2, delays)
        },
    );
    all_delays.sort_unstable();
    let median = |delays: &mut Vec<Millis>| {
        delays.sort_unstable();
        delays.get(delays.len() / 2).copied()
    };
    let overall_delay = all_delays
        .get(all_delays.len() / 2)
        .copied()
        .unwrap_or(5_000);
    let habit_of = |id: u64| -> Option<AnswerHabit> {
        let (a, d, e, mut delays) = habits.get(&id).cloned().unwrap_or_default();
        // Few offers say little about a person: the organisation's habits fill in.
        let (a, d, e) = if a + d + e >= 5 {
            (a, d, e)
        } else {
            (all_accepts + a, all_declines + d, all_expiries + e)
        };
        let total = f64::from(a + d + e);
        (total > 0.0).then(|| AnswerHabit {
            accept: f64::from(a) / total,
            decline: f64::from(d) / total,
            median_delay_ms: median(&mut delays).unwrap_or(overall_delay).max(500),
        })
    };
    let agents: Vec<SimAgent> = employees
        .iter()
        .filter(|(e, _)| !e.disabled)
        .map(|(e, s)| {
            let (part_time, rules) = match s.mode {
                Mode::PartTime {
                    delay_ms,
                    daily_cap,
                } => (true, Some((delay_ms, daily_cap))),
                Mode::Dedicated => (false, None),
            };
            SimAgent {
                id: e.id,
                skills: s.skills.clone(),
                languages: s.languages.clone(),
                chats: s.capacity.get(&Medium::Chat).copied().unwrap_or(0),
                emails: s.capacity.get(&Medium::Email).copied().unwrap_or(0),
                part_time,
                part_time_rules: rules,
                answers: habit_of(e.id),
            }
        })
        .collect();

    // The conversations, as arrivals, and what happened to them.
    let mut random = Random::new(0x5eed_0f7e_91a7 ^ from as u64);
    let mut arrivals = Vec::with_capacity(window.len());
    let mut handle_times: Vec<Millis> = Vec::new();
    let mut actual_waits: Vec<Millis> = Vec::new();
    let (mut chats, mut chats_in_level, mut abandoned, mut first_contact, mut resolved) =
        (0usize, 0usize, 0usize, 0usize, 0usize);
    let mut taken: HashMap<u64, u32> = HashMap::new();
    let mut part_time_taken = 0usize;
    let mut unknown_handle = Vec::new();
    for (i, (c, record)) in window.iter().enumerate() {
        let email = Medium::of(c.channel_kind) == Medium::Email;
        let kind = record
            .as_ref()
            .and_then(|r| r.kind())
            .unwrap_or("general")
            .to_owned();
        let language = record
            .as_ref()
            .and_then(|r| r.classification.as_ref())
            .map(|c| c.language.as_str().to_owned())
            .filter(|l| l != "unknown")
            .unwrap_or_else(|| "zh".to_owned());
        let customer: Option<Customer> = get_record(&customers, c.customer_id)?;
        let vip = customer.as_ref().is_some_and(|c| service::vip_tier(c) > 0);
        let mut previous = None;
        for row in by_customer
            .range((c.customer_id, 0)..(c.customer_id, c.id))?
            .rev()
        {
            let earlier: Option<Conversation> = get_record(&conversations_table, row?.0.value().1)?;
            if let Some(owner) = earlier.and_then(|e| e.assignee_id) {
                previous = Some(owner);
                break;
            }
        }
        let accepted = record.as_ref().and_then(|r| {
            r.decisions
                .iter()
                .find(|d| d.outcome.as_deref() == Some("accepted"))
        });
        let taken_at = accepted.and_then(|d| d.ended_at).or(c.first_response_at);
        let taker = accepted.map(|d| d.employee_id).or(c.assignee_id);
        let ended = matches!(c.status, Status::Resolved | Status::Closed);
        let ended_at = c.resolved_at.unwrap_or(c.updated_at);
        let patience_ms = match taken_at {
            Some(t) => {
                let waited = (t - c.created_at).max(0);
                let mean = if email { 240.0 } else { 2.0 } * MINUTE as f64;
                waited + (-mean * (1.0 - random.unit()).ln()) as Millis
            }
            None if ended => (ended_at - c.created_at).max(1),
            // Still waiting when the window closed: patient at least that long.
            None => (to - c.created_at).max(1) + MINUTE,
        };
        let recorded_handle = match (taken_at, c.resolved_at) {
            (Some(t), Some(r)) if r > t => Some(r - t),
            _ => None,
        };
        let base_handle_ms = match (recorded_handle, taker) {
            (Some(h), Some(who)) => {
                handle_times.push(h);
                let (level, speaks) = levels.get(&who).map_or((3, true), |s| {
                    (
                        s.skills.get(&kind).copied().unwrap_or(0),
                        s.languages.contains(&language),
                    )
                });
                (h as f64 / simulate::speed(level, speaks)) as Millis
            }
            _ => {
                unknown_handle.push(i);
                0
            }
        };
        if !email {
            chats += 1;
        }
        match taken_at {
            Some(t) => {
                let wait = (t - c.created_at).max(0);
                actual_waits.push(wait);
                if !email && wait <= SERVICE_LEVEL_MS {
                    chats_in_level += 1;
                }
                if let Some(who) = taker {
                    *taken.entry(who).or_default() += 1;
                    if levels
                        .get(&who)
                        .is_some_and(|s| matches!(s.mode, Mode::PartTime { .. }))
                    {
                        part_time_taken += 1;
                    }
                }
            }
            None if ended => abandoned += 1,
            None => {}
        }
        if ended && c.resolved_at.is_some() {
            resolved += 1;
            let handed = record
                .as_ref()
                .is_some_and(|r| !r.past_transfers.is_empty() || !r.escalations.is_empty());
            if c.reopen_count == 0 && !handed {
                first_contact += 1;
            }
        }
        arrivals.push(SimArrival {
            id: i as u64 + 1,
            at: c.created_at - from,
            kind,
            language,
            email,
            vip,
            customer: c.customer_id,
            previous,
            patience_ms,
            base_handle_ms,
        });
    }
    handle_times.sort_unstable();
    let typical = handle_times
        .get(handle_times.len() / 2)
        .copied()
        .unwrap_or(5 * MINUTE);
    for i in &unknown_handle {
        arrivals[*i].base_handle_ms = typical;
    }
    if !unknown_handle.is_empty() {
        notes.push(format!(
            "{} conversations have no recorded handling time (never taken or not resolved); they take the window's median, {} s",
            unknown_handle.len(),
            typical / 1000
        ));
    }
    actual_waits.sort_unstable();
    let served = actual_waits.len();
    let mut shares: Vec<f64> = agents
        .iter()
        .filter(|a| !a.part_time)
        .map(|a| f64::from(taken.get(&a.id).copied().unwrap_or(0)) / f64::from(a.chats.max(1)))
        .collect();
    shares.sort_by(f64::total_cmp);
    let actual = Results {
        arrivals: arrivals.len(),
        served,
        abandoned,
        service_level: chats_in_level as f64 / chats.max(1) as f64,
        average_wait_s: actual_waits.iter().sum::<Millis>() as f64 / served.max(1) as f64 / 1000.0,
        p90_wait_s: actual_waits
            .get(served * 9 / 10)
            .map_or(0.0, |w| *w as f64 / 1000.0),
        abandonment: abandoned as f64 / arrivals.len().max(1) as f64,
        fcr_proxy: first_contact as f64 / resolved.max(1) as f64,
        fairness_gini: simulate::gini(&shares),
        part_time_share: part_time_taken as f64 / served.max(1) as f64,
        declined: habits.values().map(|h| (h.1 + h.2) as usize).sum(),
    };
    notes.push(
        "the recorded row's first-contact resolution is measured (resolved with no reopen, transfer or escalation); the replayed rows' is the simulation's proxy".to_owned(),
    );
    Ok(Recorded {
        traffic: Traffic {
            agents,
            arrivals,
            horizon: to - from,
            seed: from as u64 ^ 0x0a11_4a4d,
            presence,
        },
        actual,
        notes,
    })
}

/// Replays the window with the active policy and the candidate.
pub fn replay(
    txn: &ReadTransaction,
    caller: &Caller,
    request: &ReplayRequest,
    now: Millis,
) -> AppResult<ReplayReport> {
    caller.require_everywhere(Permission::RoutingManage)?;
    let (from, to) = window(request, now)?;
    let candidate = service::policy_version(txn, request.policy_version)?.ok_or_else(|| {
        invalid(
            "policy_version",
            format!("there is no policy version {}", request.policy_version),
        )
    })?;
    let active = service::current_policy(txn)?;
    let recorded = record(txn, from, to)?;
    Ok(report(recorded, from, to, active, candidate))
}

/// Runs the recorded traffic under both policies.
pub fn report(
    recorded: Recorded,
    from: Millis,
    to: Millis,
    active: Policy,
    candidate: Policy,
) -> ReplayReport {
    let Recorded {
        traffic,
        actual,
        notes,
    } = recorded;
    let mut rows = vec![ReplayRow {
        run: "recorded".into(),
        policy_version: None,
        results: actual,
    }];
    let mut runs: BTreeMap<u32, Results> = BTreeMap::new();
    for (name, policy) in [("active", active), ("candidate", candidate)] {
        let version = policy.version;
        let results = runs
            .entry(version)
            .or_insert_with(|| simulate::run_router(&traffic, policy))
            .clone();
        rows.push(ReplayRow {
            run: name.into(),
            policy_version: Some(version),
            results,
        });
    }
    ReplayReport {
        from,
        to,
        conversations: traffic.arrivals.len(),
        employees: traffic.agents.len(),
        presence_changes: traffic.presence.len(),
        service_level_seconds: (SERVICE_LEVEL_MS / 1000) as u32,
        rows,
        notes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_checked() {
        let now = 100 * DAY;
        let request = |from, to, days| ReplayRequest {
            policy_version: 2,
            from,
            to,
            days,
        };
        assert_eq!(
            window(&request(None, None, None), now).unwrap(),
            (93 * DAY, 100 * DAY)
        );
        assert!(window(&request(None, None, Some(0)), now).is_err());
        assert!(window(&request(Some(5 * DAY), Some(4 * DAY), None), now).is_err());
        assert!(window(&request(Some(0), Some(99 * DAY), None), now).is_err());
        assert_eq!(
            window(&request(Some(DAY), Some(2 * DAY), None), now).unwrap(),
            (DAY, 2 * DAY)
        );
    }

    /// Replays of generated traffic with recorded-style habits and presence: a candidate
    /// that ignores skills resolves less at first contact than the active policy.
    #[test]
    fn a_candidate_that_ignores_skills_shows_worse_resolution() {
        let mut traffic = simulate::generate(&simulate::Scenario {
            name: "replay",
            seed: 5,
            employees: 30,
            skills: 5,
            arrivals: 400,
            hours: 2,
            part_time_share: 0.2,
        });
        for agent in &mut traffic.agents {
            agent.answers = Some(AnswerHabit {
                accept: 0.9,
                decline: 0.08,
                median_delay_ms: 4_000,
            });
        }
        // Everyone comes online at the start, a third leave after an hour.
        traffic.presence = traffic
            .agents
            .iter()
            .map(|a| (0, a.id, Presence::Online))
            .chain(
                traffic
                    .agents
                    .iter()
                    .filter(|a| a.id % 3 == 0)
                    .map(|a| (60 * MINUTE, a.id, Presence::Offline)),
            )
            .collect();
        let active = Policy::default();
        let mut candidate = Policy {
            version: 2,
            ..Policy::default()
        };
        candidate.weights.skill_fit = 0.0;
        candidate.weights.past_contact = 0.0;
        candidate.weights.language = 0.0;
        let report = report(
            Recorded {
                traffic,
                actual: Results::default(),
                notes: Vec::new(),
            },
            0,
            2 * 60 * MINUTE,
            active,
            candidate,
        );
        assert_eq!(report.rows.len(), 3);
        let (a, c) = (&report.rows[1].results, &report.rows[2].results);
        assert_eq!(a.served + a.abandoned, 400);
        assert!(a.fcr_proxy > c.fcr_proxy, "{a:?} vs {c:?}");
        assert_eq!(report.presence_changes, 40);
    }
}
