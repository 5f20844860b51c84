//! Routing experiments: two immutable policy versions take turns by time slice (a switchback
//! design), because both arms compete for the same employees and a per-conversation coin flip
//! would let each arm's choices disturb the other's. Every conversation that arrives while an
//! experiment runs is tagged with the arm of its slice; the report compares the arms with
//! confidence intervals from a bootstrap over slices, the unit that was randomised.

use std::collections::BTreeMap;

use redb::ReadTransaction;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::auth::Caller;
use crate::auth::rbac::Permission;
use crate::clock::Millis;
use crate::conversations::{Conversation, Status};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::routing::service::{self, RoutingRecord};
use crate::routing::simulate::Random;
use crate::storage::{Record, WriteTxn, all_records, codec, get_record, next_id, tables};

const MINUTE: Millis = 60_000;
const HOUR: Millis = 60 * MINUTE;
/// Bootstrap resamples behind each confidence interval.
const RESAMPLES: usize = 1000;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Arm {
    /// The policy in use before the experiment.
    Control,
    /// The policy being tried.
    Candidate,
}

impl Arm {
    pub const BOTH: [Arm; 2] = [Arm::Control, Arm::Candidate];
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Experiment {
    pub id: u64,
    pub name: String,
    /// The policy version of the control arm.
    pub control: u32,
    /// The policy version being tried.
    pub candidate: u32,
    /// How long each slice runs one arm.
    pub slice_minutes: u32,
    /// How long the experiment runs once started.
    pub duration_hours: u32,
    /// Conversations first accepted within this many seconds count toward the service level.
    pub service_level_seconds: u32,
    /// Decides which arm runs first in each pair of slices.
    pub seed: u64,
    #[serde(default)]
    pub note: String,
    pub started_at: Option<Millis>,
    /// Set when someone stopped it before its planned end.
    pub stopped_at: Option<Millis>,
    pub created_by: u64,
    pub created_at: Millis,
}

impl Record for Experiment {
    const KIND: &'static str = "routing_experiment";
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExperimentState {
    Draft,
    Running,
    Finished,
}

impl Experiment {
    fn slice_ms(&self) -> Millis {
        Millis::from(self.slice_minutes) * MINUTE
    }

    /// When it ends (or ended): its planned end, or when it was stopped.
    pub fn ends_at(&self) -> Option<Millis> {
        let planned = self.started_at? + Millis::from(self.duration_hours) * HOUR;
        Some(
            self.stopped_at
                .map_or(planned, |stopped| stopped.min(planned)),
        )
    }

    pub fn state(&self, now: Millis) -> ExperimentState {
        match (self.started_at, self.ends_at()) {
            (None, _) => ExperimentState::Draft,
            (Some(_), Some(end)) if now < end => ExperimentState::Running,
            _ => ExperimentState::Finished,
        }
    }

    /// The arm and slice in force at `at`, while the experiment runs.
    pub fn arm_at(&self, at: Millis) -> Option<(Arm, u64)> {
        let start = self.started_at?;
        if at < start || at >= self.ends_at()? {
            return None;
        }
        let slice = ((at - start) / self.slice_ms().max(1)) as u64;
        // Slices come in pairs, one of each arm, in an order drawn per pair: balanced over
        // time of day, and not predictable by anyone who might game it.
        let mut random = Random::new(self.seed ^ (slice / 2).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let control_first = random.next_u64() & 1 == 0;
        let first_of_pair = slice.is_multiple_of(2);
        let arm = if control_first == first_of_pair {
            Arm::Control
        } else {
            Arm::Candidate
        };
        Some((arm, slice))
    }

    /// When the slice in force at `at` ends (the next moment the policy may change).
    pub fn next_switch(&self, at: Millis) -> Option<Millis> {
        let (_, slice) = self.arm_at(at)?;
        let next = self.started_at? + (slice as Millis + 1) * self.slice_ms();
        Some(next.min(self.ends_at()?))
    }

    pub fn version_of(&self, arm: Arm) -> u32 {
        match arm {
            Arm::Control => self.control,
            Arm::Candidate => self.candidate,
        }
    }
}

/// Which arm a conversation belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Variant {
    pub experiment_id: u64,
    pub arm: Arm,
    pub policy_version: u32,
    pub slice: u64,
    pub arrived_at: Millis,
}

/// An experiment with what the console shows beside it.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct ExperimentView {
    #[serde(flatten)]
    pub experiment: Experiment,
    pub state: ExperimentState,
    pub ends_at: Option<Millis>,
    /// The arm in force now, while it runs.
    pub current_arm: Option<Arm>,
    pub next_switch_at: Option<Millis>,
}

impl ExperimentView {
    pub fn of(experiment: Experiment, now: Millis) -> ExperimentView {
        ExperimentView {
            state: experiment.state(now),
            ends_at: experiment.ends_at(),
            current_arm: experiment.arm_at(now).map(|(arm, _)| arm),
            next_switch_at: experiment.next_switch(now),
            experiment,
        }
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewExperiment {
    pub name: String,
    /// Defaults to the active policy version.
    pub control: Option<u32>,
    pub candidate: u32,
    /// 15 minutes to a day; 60 unless given.
    pub slice_minutes: Option<u32>,
    /// 1 hour to 90 days; a week unless given.
    pub duration_hours: Option<u32>,
    /// 60 unless given.
    pub service_level_seconds: Option<u32>,
    #[serde(default)]
    pub note: String,
}

pub fn experiments(txn: &ReadTransaction) -> AppResult<Vec<Experiment>> {
    all_records(&txn.open_table(tables::ROUTING_EXPERIMENTS)?)
}

pub fn experiment(txn: &ReadTransaction, id: u64) -> AppResult<Experiment> {
    get_record(&txn.open_table(tables::ROUTING_EXPERIMENTS)?, id)?.ok_or_else(|| not_found(id))
}

fn not_found(id: u64) -> AppError {
    AppError::new(
        ErrorCode::NotFound,
        format!("there is no routing experiment {id}"),
    )
}

/// The experiment running at `now`, if any (at most one runs at a time).
pub fn running(txn: &ReadTransaction, now: Millis) -> AppResult<Option<Experiment>> {
    Ok(experiments(txn)?
        .into_iter()
        .find(|e| e.state(now) == ExperimentState::Running))
}

fn save(txn: &WriteTxn, experiment: &Experiment) -> AppResult<()> {
    txn.open_table(tables::ROUTING_EXPERIMENTS)?
        .insert(experiment.id, codec::encode(experiment).as_slice())?;
    Ok(())
}

fn load_in_write(txn: &WriteTxn, id: u64) -> AppResult<Experiment> {
    get_record(&txn.open_table(tables::ROUTING_EXPERIMENTS)?, id)?.ok_or_else(|| not_found(id))
}

pub fn create(
    txn: &WriteTxn,
    caller: &Caller,
    input: &NewExperiment,
    now: Millis,
) -> AppResult<Experiment> {
    caller.require_everywhere(Permission::RoutingManage)?;
    let name = input.name.trim();
    if name.is_empty() || name.chars().count() > 120 {
        return Err(AppError::field("name", "a name of 1 to 120 characters"));
    }
    let versions = service::policy_versions_in_write(txn)?;
    let control = match input.control {
        Some(v) => v,
        None => *versions.last().unwrap_or(&1),
    };
    for (field, version) in [("control", control), ("candidate", input.candidate)] {
        if !versions.contains(&version) {
            return Err(AppError::field(
                field,
                format!("there is no policy version {version}"),
            ));
        }
    }
    if control == input.candidate {
        return Err(AppError::field(
            "candidate",
            "the candidate must be another policy version than the control",
        ));
    }
    let slice_minutes = input.slice_minutes.unwrap_or(60);
    if !(15..=1440).contains(&slice_minutes) {
        return Err(AppError::field("slice_minutes", "15 minutes to a day"));
    }
    let duration_hours = input.duration_hours.unwrap_or(7 * 24);
    if !(1..=90 * 24).contains(&duration_hours) {
        return Err(AppError::field("duration_hours", "1 hour to 90 days"));
    }
    if Millis::from(duration_hours) * HOUR < 2 * Millis::from(slice_minutes) * MINUTE {
        return Err(AppError::field(
            "duration_hours",
            "long enough for at least one slice of each arm",
        ));
    }
    let service_level_seconds = input.service_level_seconds.unwrap_or(60);
    if !(1..=86_400).contains(&service_level_seconds) {
        return Err(AppError::field(
            "service_level_seconds",
            "1 second to a day",
        ));
    }
    let id = next_id(txn, "routing_experiment")?;
    let experiment = Experiment {
        id,
        name: name.to_owned(),
        control,
        candidate: input.candidate,
        slice_minutes,
        duration_hours,
        service_level_seconds,
        seed: seed_from(id, now),
        note: input.note.chars().take(500).collect(),
        started_at: None,
        stopped_at: None,
        created_by: caller.employee_id,
        created_at: now,
    };
    save(txn, &experiment)?;
    Ok(experiment)
}

fn seed_from(id: u64, now: Millis) -> u64 {
    let mut random = Random::new(id.rotate_left(32) ^ now as u64);
    random.next_u64()
}

pub fn start(txn: &WriteTxn, caller: &Caller, id: u64, now: Millis) -> AppResult<Experiment> {
    caller.require_everywhere(Permission::RoutingManage)?;
    let mut experiment = load_in_write(txn, id)?;
    if experiment.started_at.is_some() {
        return Err(AppError::new(
            ErrorCode::Conflict,
            "this experiment has already been started",
        ));
    }
    let others: Vec<Experiment> = all_records(&txn.open_table(tables::ROUTING_EXPERIMENTS)?)?;
    if let Some(other) = others
        .iter()
        .find(|e| e.state(now) == ExperimentState::Running)
    {
        return Err(AppError::new(
            ErrorCode::Conflict,
            format!(
                "experiment {} ({}) is running: one experiment runs at a time",
                other.id, other.name
            ),
        ));
    }
    experiment.started_at = Some(now);
    save(txn, &experiment)?;
    Ok(experiment)
}

pub fn stop(txn: &WriteTxn, caller: &Caller, id: u64, now: Millis) -> AppResult<Experiment> {
    caller.require_everywhere(Permission::RoutingManage)?;
    let mut experiment = load_in_write(txn, id)?;
    if experiment.state(now) != ExperimentState::Running {
        return Err(AppError::new(
            ErrorCode::Conflict,
            "only a running experiment can be stopped",
        ));
    }
    experiment.stopped_at = Some(now);
    save(txn, &experiment)?;
    Ok(experiment)
}

/// Indexes a conversation under its experiment (idempotent).
pub fn index_variant(txn: &WriteTxn, record: &RoutingRecord) -> AppResult<()> {
    if let Some(variant) = &record.variant {
        txn.open_table(tables::ROUTING_EXPERIMENT_CONVERSATIONS)?
            .insert((variant.experiment_id, record.conversation_id), ())?;
    }
    Ok(())
}

// ------------------------------------------------------------------ the report

/// What one conversation of an arm contributed.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub arm: Arm,
    pub slice: u64,
    /// From arrival to the first accepted offer or assignment; none while nobody took it.
    pub wait_ms: Option<Millis>,
    /// Ended without anyone answering.
    pub abandoned: bool,
    pub resolved: bool,
    pub resolution_ms: Option<Millis>,
    /// Resolved with no reopen, no transfer and no escalation.
    pub first_contact: bool,
    /// 1 to 5, once customers rate conversations.
    pub rating: Option<u8>,
    /// The employee who took it first.
    pub employee: Option<u64>,
}

/// What one conversation's records say about it.
pub fn outcome(
    variant: &Variant,
    conversation: &Conversation,
    record: &RoutingRecord,
    rating: Option<u8>,
) -> Outcome {
    let accepted = record
        .decisions
        .iter()
        .find(|d| d.outcome.as_deref() == Some("accepted"));
    let taken_at = accepted
        .and_then(|d| d.ended_at)
        .or(conversation.first_response_at);
    let employee = accepted.map(|d| d.employee_id).or(conversation.assignee_id);
    let ended = matches!(conversation.status, Status::Resolved | Status::Closed);
    let resolved = ended && conversation.resolved_at.is_some();
    Outcome {
        arm: variant.arm,
        slice: variant.slice,
        wait_ms: taken_at.map(|t| (t - variant.arrived_at).max(0)),
        abandoned: ended && taken_at.is_none(),
        resolved,
        resolution_ms: conversation
            .resolved_at
            .filter(|_| resolved)
            .map(|t| (t - variant.arrived_at).max(0)),
        first_contact: resolved
            && conversation.reopen_count == 0
            && record.past_transfers.is_empty()
            && record.transfer.is_none()
            && record.escalations.is_empty(),
        rating,
        employee,
    }
}

/// A metric with its 95% confidence interval (bounds absent with fewer than two slices).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, JsonSchema)]
pub struct Estimate {
    pub value: Option<f64>,
    pub low: Option<f64>,
    pub high: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Metrics {
    /// Share of conversations taken within the service-level time, of all that arrived.
    pub service_level: Estimate,
    pub average_wait_s: Estimate,
    /// Share resolved, of all that arrived.
    pub resolution_rate: Estimate,
    pub average_resolution_s: Estimate,
    /// Share resolved at first contact, of those resolved.
    pub first_contact_resolution: Estimate,
    /// Average rating 1 to 5 (no value until customers rate).
    pub csat: Estimate,
    pub abandonment: Estimate,
    /// Gini of conversations taken per employee (0: evenly shared).
    pub fairness_gini: Estimate,
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct ArmReport {
    pub arm: Arm,
    pub policy_version: u32,
    pub slices: usize,
    pub conversations: usize,
    pub metrics: Metrics,
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct ExperimentReport {
    pub experiment: ExperimentView,
    pub arms: Vec<ArmReport>,
    /// Candidate minus control, per metric; an interval that excludes 0 is a difference the
    /// data supports at 95%.
    pub difference: Metrics,
    pub generated_at: Millis,
}

/// Sums per slice, from which every metric is a ratio.
#[derive(Debug, Clone, Default)]
struct SliceSums {
    arrived: f64,
    in_level: f64,
    waited: f64,
    wait_ms: f64,
    resolved: f64,
    resolution_ms: f64,
    first_contact: f64,
    rated: f64,
    rating: f64,
    abandoned: f64,
    taken: BTreeMap<u64, f64>,
}

type MetricFn = fn(&[&SliceSums], &[u64]) -> Option<f64>;

const METRICS: [MetricFn; 8] = [
    |s, _| ratio(s, |x| x.in_level, |x| x.arrived),
    |s, _| ratio(s, |x| x.wait_ms / 1000.0, |x| x.waited),
    |s, _| ratio(s, |x| x.resolved, |x| x.arrived),
    |s, _| ratio(s, |x| x.resolution_ms / 1000.0, |x| x.resolved),
    |s, _| ratio(s, |x| x.first_contact, |x| x.resolved),
    |s, _| ratio(s, |x| x.rating, |x| x.rated),
    |s, _| ratio(s, |x| x.abandoned, |x| x.arrived),
    gini_of,
];

fn ratio(
    slices: &[&SliceSums],
    numerator: impl Fn(&SliceSums) -> f64,
    denominator: impl Fn(&SliceSums) -> f64,
) -> Option<f64> {
    let d: f64 = slices.iter().map(|s| denominator(s)).sum();
    (d > 0.0).then(|| slices.iter().map(|s| numerator(s)).sum::<f64>() / d)
}

/// Gini over `people` (everyone who took a conversation in either arm, so both arms are
/// measured over the same people).
fn gini_of(slices: &[&SliceSums], people: &[u64]) -> Option<f64> {
    if people.is_empty() {
        return None;
    }
    let mut counts: Vec<f64> = people
        .iter()
        .map(|p| slices.iter().filter_map(|s| s.taken.get(p)).sum())
        .collect();
    counts.sort_by(f64::total_cmp);
    let n = counts.len() as f64;
    let total: f64 = counts.iter().sum();
    if total <= 0.0 {
        return None;
    }
    let weighted: f64 = counts
        .iter()
        .enumerate()
        .map(|(i, x)| (2.0 * (i as f64 + 1.0) - n - 1.0) * x)
        .sum();
    Some(weighted / (n * total))
}

fn metrics_from(values: [Estimate; 8]) -> Metrics {
    let [
        service_level,
        average_wait_s,
        resolution_rate,
        average_resolution_s,
        first_contact_resolution,
        csat,
        abandonment,
        fairness_gini,
    ] = values;
    Metrics {
        service_level,
        average_wait_s,
        resolution_rate,
        average_resolution_s,
        first_contact_resolution,
        csat,
        abandonment,
        fairness_gini,
    }
}

fn percentile_interval(mut samples: Vec<f64>) -> (Option<f64>, Option<f64>) {
    if samples.len() < 20 {
        return (None, None);
    }
    samples.sort_by(f64::total_cmp);
    let at = |p: f64| samples[((samples.len() - 1) as f64 * p).round() as usize];
    (Some(at(0.025)), Some(at(0.975)))
}

/// The report: each arm's metrics and the candidate's difference from the control, with 95%
/// percentile-bootstrap intervals that resample whole slices within each arm.
pub fn report(
    experiment: &Experiment,
    outcomes: &[Outcome],
    service_level_ms: Millis,
    now: Millis,
) -> ExperimentReport {
    let mut slices: BTreeMap<(Arm, u64), SliceSums> = BTreeMap::new();
    for o in outcomes {
        let s = slices.entry((o.arm, o.slice)).or_default();
        s.arrived += 1.0;
        if let Some(wait) = o.wait_ms {
            s.waited += 1.0;
            s.wait_ms += wait as f64;
            if wait <= service_level_ms {
                s.in_level += 1.0;
            }
        }
        if o.resolved {
            s.resolved += 1.0;
            s.resolution_ms += o.resolution_ms.unwrap_or(0) as f64;
            if o.first_contact {
                s.first_contact += 1.0;
            }
        }
        if let Some(rating) = o.rating {
            s.rated += 1.0;
            s.rating += f64::from(rating);
        }
        if o.abandoned {
            s.abandoned += 1.0;
        }
        if let Some(employee) = o.employee {
            *s.taken.entry(employee).or_default() += 1.0;
        }
    }
    let mut people: Vec<u64> = outcomes.iter().filter_map(|o| o.employee).collect();
    people.sort_unstable();
    people.dedup();
    let of_arm = |arm: Arm| -> Vec<&SliceSums> {
        slices
            .iter()
            .filter(|((a, _), _)| *a == arm)
            .map(|(_, s)| s)
            .collect()
    };
    let arms_slices = [of_arm(Arm::Control), of_arm(Arm::Candidate)];
    let mut random = Random::new(experiment.seed ^ 0xb007_57a9);
    // The same resamples serve every metric, so the intervals are of one bootstrap.
    let resample = |random: &mut Random, from: &[&SliceSums]| -> Vec<usize> {
        (0..from.len()).map(|_| random.below(from.len())).collect()
    };
    let mut draws: [Vec<Vec<usize>>; 2] = [Vec::new(), Vec::new()];
    for (arm, slices) in arms_slices.iter().enumerate() {
        if slices.len() >= 2 {
            draws[arm] = (0..RESAMPLES)
                .map(|_| resample(&mut random, slices))
                .collect();
        }
    }
    let pick = |arm: usize, draw: &[usize]| -> Vec<&SliceSums> {
        draw.iter().map(|i| arms_slices[arm][*i]).collect()
    };
    let mut arm_estimates: [Vec<Estimate>; 2] = [Vec::new(), Vec::new()];
    let mut differences = Vec::new();
    for metric in METRICS {
        let point = [
            metric(&arms_slices[0], &people),
            metric(&arms_slices[1], &people),
        ];
        let mut boot: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
        for arm in 0..2 {
            boot[arm] = draws[arm]
                .iter()
                .filter_map(|d| metric(&pick(arm, d), &people))
                .collect();
            let (low, high) = percentile_interval(boot[arm].clone());
            arm_estimates[arm].push(Estimate {
                value: point[arm],
                low,
                high,
            });
        }
        let paired: Vec<f64> = if draws[0].is_empty() || draws[1].is_empty() {
            Vec::new()
        } else {
            draws[0]
                .iter()
                .zip(&draws[1])
                .filter_map(|(a, b)| {
                    Some(metric(&pick(1, b), &people)? - metric(&pick(0, a), &people)?)
                })
                .collect()
        };
        let (low, high) = percentile_interval(paired);
        differences.push(Estimate {
            value: point[1].zip(point[0]).map(|(b, a)| b - a),
            low,
            high,
        });
    }
    let to_array = |v: Vec<Estimate>| -> [Estimate; 8] {
        v.try_into().unwrap_or(
            [Estimate {
                value: None,
                low: None,
                high: None,
            }; 8],
        )
    };
    let [control, candidate] = arm_estimates;
    let arms = Arm::BOTH
        .iter()
        .zip([control, candidate])
        .enumerate()
        .map(|(i, (arm, estimates))| ArmReport {
            arm: *arm,
            policy_version: experiment.version_of(*arm),
            slices: arms_slices[i].len(),
            conversations: outcomes.iter().filter(|o| o.arm == *arm).count(),
            metrics: metrics_from(to_array(estimates)),
        })
        .collect();
    ExperimentReport {
        experiment: ExperimentView::of(experiment.clone(), now),
        arms,
        difference: metrics_from(to_array(differences)),
        generated_at: now,
    }
}

/// Reads an experiment's conversations and builds its report.
pub fn report_from_store(
    txn: &ReadTransaction,
    id: u64,
    now: Millis,
) -> AppResult<ExperimentReport> {
    let experiment = experiment(txn, id)?;
    let index = txn.open_table(tables::ROUTING_EXPERIMENT_CONVERSATIONS)?;
    let records = txn.open_table(tables::ROUTING_RECORDS)?;
    let conversations = txn.open_table(tables::CONVERSATIONS)?;
    let mut outcomes = Vec::new();
    for entry in index.range((id, 0)..=(id, u64::MAX))? {
        let conversation_id = entry?.0.value().1;
        let record: Option<RoutingRecord> = get_record(&records, conversation_id)?;
        let conversation: Option<Conversation> = get_record(&conversations, conversation_id)?;
        if let (Some(record), Some(conversation)) = (record, conversation)
            && let Some(variant) = record.variant.clone()
            && variant.experiment_id == id
        {
            outcomes.push(outcome(&variant, &conversation, &record, None));
        }
    }
    Ok(report(
        &experiment,
        &outcomes,
        Millis::from(experiment.service_level_seconds) * 1000,
        now,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn experiment() -> Experiment {
        Experiment {
            id: 1,
            name: "e".into(),
            control: 1,
            candidate: 2,
            slice_minutes: 60,
            duration_hours: 48,
            service_level_seconds: 60,
            seed: 42,
            note: String::new(),
            started_at: Some(1_000),
            stopped_at: None,
            created_by: 1,
            created_at: 0,
        }
    }

    #[test]
    fn slices_alternate_in_balanced_pairs_and_stop_at_the_end() {
        let e = experiment();
        assert_eq!(e.arm_at(999), None);
        let arms: Vec<Arm> = (0..48)
            .map(|k| e.arm_at(1_000 + k * HOUR + 5).unwrap().0)
            .collect();
        for pair in arms.chunks(2) {
            assert_ne!(pair[0], pair[1], "each pair runs both arms");
        }
        assert!(
            arms.chunks(2).any(|p| p[0] == Arm::Control)
                && arms.chunks(2).any(|p| p[0] == Arm::Candidate),
            "the order within pairs varies: {arms:?}"
        );
        assert_eq!(e.arm_at(1_000 + 48 * HOUR), None);
        assert_eq!(e.next_switch(1_000 + 5), Some(1_000 + HOUR));
        let mut stopped = e.clone();
        stopped.stopped_at = Some(1_000 + 3 * HOUR);
        assert_eq!(stopped.state(1_000 + 3 * HOUR), ExperimentState::Finished);
        assert_eq!(
            stopped.state(1_000 + 3 * HOUR - 1),
            ExperimentState::Running
        );
        assert_eq!(
            stopped.next_switch(1_000 + 2 * HOUR + 1),
            Some(1_000 + 3 * HOUR)
        );
    }

    /// Even slices run the control, odd ones the candidate.
    fn alternating(slice: u64) -> Arm {
        if slice.is_multiple_of(2) {
            Arm::Control
        } else {
            Arm::Candidate
        }
    }

    fn outcome_of(arm: Arm, slice: u64, wait_s: i64, employee: u64) -> Outcome {
        Outcome {
            arm,
            slice,
            wait_ms: Some(wait_s * 1000),
            abandoned: false,
            resolved: true,
            resolution_ms: Some(600_000),
            first_contact: wait_s < 30,
            rating: None,
            employee: Some(employee),
        }
    }

    #[test]
    fn a_clear_difference_has_an_interval_that_excludes_zero() {
        let mut outcomes = Vec::new();
        for slice in 0..40u64 {
            let arm = alternating(slice);
            for i in 0..20u64 {
                let wait = match arm {
                    Arm::Control => 40 + (i as i64 * 7 + slice as i64) % 60,
                    Arm::Candidate => 5 + (i as i64 * 3 + slice as i64) % 20,
                };
                outcomes.push(outcome_of(arm, slice, wait, 1 + (i + slice) % 5));
            }
        }
        let r = report(&experiment(), &outcomes, 60_000, 0);
        assert_eq!(r.arms[0].slices, 20);
        assert_eq!(r.arms[1].conversations, 400);
        let wait = r.difference.average_wait_s;
        assert!(wait.value.unwrap() < -30.0, "{wait:?}");
        assert!(wait.high.unwrap() < 0.0, "{wait:?}");
        let sl = r.difference.service_level;
        assert!(sl.low.unwrap() > 0.0, "{sl:?}");
        let control = r.arms[0].metrics.average_wait_s;
        assert!(control.low.unwrap() <= control.value.unwrap());
        assert!(control.value.unwrap() <= control.high.unwrap());
        assert_eq!(r.arms[0].metrics.csat.value, None);
        let gini = r.arms[0].metrics.fairness_gini.value.unwrap();
        assert!((0.0..0.2).contains(&gini), "{gini}");
    }

    #[test]
    fn no_difference_has_an_interval_around_zero_and_one_slice_has_no_interval() {
        let mut outcomes = Vec::new();
        for slice in 0..40u64 {
            let arm = alternating(slice);
            for i in 0..20u64 {
                outcomes.push(outcome_of(
                    arm,
                    slice,
                    10 + ((i * 13 + slice * 7) % 50) as i64,
                    i % 4,
                ));
            }
        }
        let r = report(&experiment(), &outcomes, 60_000, 0);
        let wait = r.difference.average_wait_s;
        assert!(
            wait.low.unwrap() < 0.0 && wait.high.unwrap() > 0.0,
            "{wait:?}"
        );
        let one: Vec<Outcome> = outcomes.iter().filter(|o| o.slice < 2).cloned().collect();
        let r = report(&experiment(), &one, 60_000, 0);
        assert!(r.arms[0].metrics.service_level.value.is_some());
        assert_eq!(r.arms[0].metrics.service_level.low, None);
        assert_eq!(r.difference.service_level.low, None);
    }
}
