//! Service-level clocks on business calendars, as pure functions of the calendar, the
//! conversation's facts and the time.
//!
//! * A calendar is a time zone, opening hours per weekday, holidays, and make-up working days
//!   (a Saturday worked in exchange for a holiday, common in China). Business time is time
//!   inside opening hours.
//! * Three clocks run per conversation: first response (from its start to the first reply),
//!   next response (from the customer's oldest unanswered message to the reply), resolution
//!   (from its start to resolved). Waiting on the customer (pending) pauses them all.
//! * A clock warns once a share of its target has passed and breaches at the target.

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Weekday};
use chrono_tz::Tz;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::clock::Millis;

const DAY_MINUTES: u16 = 24 * 60;
/// How far ahead a deadline is looked for before the calendar counts as never open.
const HORIZON_DAYS: i64 = 800;

/// Opening hours, a time zone and the days that differ.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Calendar {
    pub id: u64,
    pub name: String,
    /// An IANA time zone (`Asia/Shanghai`, `Europe/Berlin`).
    pub time_zone: String,
    /// Open intervals per weekday, Monday first: `[start, end)` in minutes after midnight.
    pub hours: [Vec<(u16, u16)>; 7],
    /// Closed all day (`YYYY-MM-DD`).
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub holidays: Vec<NaiveDate>,
    /// Open with Monday's hours although a weekend (make-up working days, `YYYY-MM-DD`).
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub extra_workdays: Vec<NaiveDate>,
    #[serde(default)]
    pub updated_at: Millis,
}

impl crate::storage::Record for Calendar {
    const KIND: &'static str = "routing_calendar";
}

impl Calendar {
    /// Open every minute of every day (the default when a lane names no calendar).
    pub fn always() -> Calendar {
        Calendar {
            id: 0,
            name: "24/7".into(),
            time_zone: "UTC".into(),
            hours: std::array::from_fn(|_| vec![(0, DAY_MINUTES)]),
            holidays: Vec::new(),
            extra_workdays: Vec::new(),
            updated_at: 0,
        }
    }

    fn is_always(&self) -> bool {
        self.holidays.is_empty() && self.hours.iter().all(|d| d == &[(0, DAY_MINUTES)])
    }

    /// Checks the calendar; the message names what is wrong.
    pub fn check(&self) -> Result<(), String> {
        if self.time_zone.parse::<Tz>().is_err() {
            return Err(format!("{:?} is not an IANA time zone", self.time_zone));
        }
        for day in &self.hours {
            let mut last_end = 0;
            for &(start, end) in day {
                if start >= end || end > DAY_MINUTES || start < last_end {
                    return Err(
                        "opening hours are ordered, non-overlapping [start, end) minutes within a day"
                            .into(),
                    );
                }
                last_end = end;
            }
        }
        if self.holidays.len() > 1000 || self.extra_workdays.len() > 1000 {
            return Err("at most 1000 holidays and 1000 extra working days".into());
        }
        Ok(())
    }

    fn zone(&self) -> Tz {
        self.time_zone.parse().unwrap_or(chrono_tz::UTC)
    }

    fn hours_on(&self, date: NaiveDate) -> &[(u16, u16)] {
        if self.holidays.contains(&date) {
            return &[];
        }
        if self.extra_workdays.contains(&date) {
            return &self.hours[0];
        }
        &self.hours[date.weekday().num_days_from_monday() as usize]
    }

    /// The open intervals of one local day, in epoch milliseconds.
    fn intervals(&self, zone: Tz, date: NaiveDate) -> Vec<(Millis, Millis)> {
        self.hours_on(date)
            .iter()
            .filter_map(|&(start, end)| {
                let at = |minute: u16| -> Option<Millis> {
                    let naive = if minute >= DAY_MINUTES {
                        NaiveDateTime::new(date.succ_opt()?, NaiveTime::MIN)
                    } else {
                        NaiveDateTime::new(
                            date,
                            NaiveTime::from_hms_opt(
                                u32::from(minute / 60),
                                u32::from(minute % 60),
                                0,
                            )?,
                        )
                    };
                    // A local time skipped by a daylight-saving change counts from the hour
                    // after it.
                    let local = zone.from_local_datetime(&naive).earliest().or_else(|| {
                        zone.from_local_datetime(&(naive + Duration::hours(1)))
                            .earliest()
                    })?;
                    Some(local.timestamp_millis())
                };
                let (a, b) = (at(start)?, at(end)?);
                (a < b).then_some((a, b))
            })
            .collect()
    }

    fn local_date(&self, zone: Tz, at: Millis) -> NaiveDate {
        zone.timestamp_millis_opt(at)
            .single()
            .map(|t| t.date_naive())
            .unwrap_or_default()
    }

    /// Business time between two instants (0 if `to` is not after `from`).
    pub fn business_between(&self, from: Millis, to: Millis) -> Millis {
        if to <= from {
            return 0;
        }
        if self.is_always() {
            return to - from;
        }
        let zone = self.zone();
        let mut total = 0;
        let mut date = self.local_date(zone, from) - Duration::days(1);
        let last = self.local_date(zone, to) + Duration::days(1);
        while date <= last {
            for (a, b) in self.intervals(zone, date) {
                let (a, b) = (a.max(from), b.min(to));
                if a < b {
                    total += b - a;
                }
            }
            date = date.succ_opt().unwrap_or(last + Duration::days(1));
        }
        total
    }

    /// The instant when `amount` of business time has passed after `from`; `None` when the
    /// calendar is not open that long within the horizon.
    pub fn add_business(&self, from: Millis, amount: Millis) -> Option<Millis> {
        if amount <= 0 {
            return Some(from);
        }
        if self.is_always() {
            return Some(from + amount);
        }
        let zone = self.zone();
        let mut left = amount;
        let mut date = self.local_date(zone, from) - Duration::days(1);
        for _ in 0..HORIZON_DAYS {
            for (a, b) in self.intervals(zone, date) {
                let a = a.max(from);
                if a >= b {
                    continue;
                }
                if b - a >= left {
                    return Some(a + left);
                }
                left -= b - a;
            }
            date = date.succ_opt()?;
        }
        None
    }
}

impl Calendar {
    /// Whether the calendar is open at `at`, and when that next changes (none within two
    /// weeks: it stays so).
    pub fn open_at(&self, at: Millis) -> (bool, Option<Millis>) {
        if self.is_always() {
            return (true, None);
        }
        let zone = self.zone();
        let mut runs: Vec<(Millis, Millis)> = Vec::new();
        let mut date = self.local_date(zone, at) - Duration::days(1);
        for _ in 0..16 {
            for (a, b) in self.intervals(zone, date) {
                // Intervals that touch (midnight in a 24-hour day) are one run.
                match runs.last_mut() {
                    Some(last) if a <= last.1 => last.1 = last.1.max(b),
                    _ => runs.push((a, b)),
                }
            }
            let Some(next) = date.succ_opt() else { break };
            date = next;
        }
        for (a, b) in &runs {
            if at < *a {
                return (false, Some(*a));
            }
            if at < *b {
                return (true, Some(*b));
            }
        }
        (false, None)
    }

    /// A calendar open during these daily local intervals (`[start, end)` minutes, an end
    /// before its start running past midnight), every day, in this time zone.
    pub fn daily(time_zone: &str, intervals: &[(u16, u16)]) -> Calendar {
        let mut day: Vec<(u16, u16)> = Vec::new();
        for &(start, end) in intervals {
            if start < end {
                day.push((start, end.min(DAY_MINUTES)));
            } else if start > end {
                day.push((start, DAY_MINUTES));
                if end > 0 {
                    day.push((0, end));
                }
            }
        }
        day.sort_unstable();
        let mut merged: Vec<(u16, u16)> = Vec::new();
        for (start, end) in day {
            match merged.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => merged.push((start, end)),
            }
        }
        Calendar {
            id: 0,
            name: String::new(),
            time_zone: time_zone.to_owned(),
            hours: std::array::from_fn(|_| merged.clone()),
            holidays: Vec::new(),
            extra_workdays: Vec::new(),
            updated_at: 0,
        }
    }
}

/// Weekdays from Monday, for building calendars.
pub fn weekday_index(day: Weekday) -> usize {
    day.num_days_from_monday() as usize
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ClockKind {
    FirstResponse,
    NextResponse,
    Resolution,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Ok,
    Warning,
    Breached,
}

/// Targets in business seconds (none: that clock does not run).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Targets {
    pub first_response_secs: Option<u32>,
    pub next_response_secs: Option<u32>,
    pub resolution_secs: Option<u32>,
}

/// What the clocks are computed from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Facts {
    /// When the clocks started (the conversation's start, or what a lane kept of it).
    pub started_at: Millis,
    pub first_response_at: Option<Millis>,
    /// The customer's oldest message not yet answered.
    pub awaiting_reply_since: Option<Millis>,
    pub resolved_at: Option<Millis>,
    /// Waiting on the customer since then (all clocks paused).
    pub paused_since: Option<Millis>,
    /// Business time spent paused before `paused_since`, taken off every clock.
    #[serde(default)]
    pub paused_business_ms: Millis,
}

/// One clock now.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Clock {
    pub kind: ClockKind,
    pub target_ms: Millis,
    /// Business time used so far.
    pub elapsed_ms: Millis,
    pub level: Level,
    /// When it stopped (answered, resolved).
    pub stopped_at: Option<Millis>,
    /// When it will next change level if nothing happens (absent when stopped or paused).
    pub next_change_at: Option<Millis>,
    /// When it breaches (or breached) if it keeps running.
    pub due_at: Option<Millis>,
}

/// The clocks of a conversation at `now`. `warn_percent` of a target raises the warning.
pub fn clocks(
    calendar: &Calendar,
    targets: &Targets,
    facts: &Facts,
    warn_percent: u8,
    now: Millis,
) -> Vec<Clock> {
    let mut out = Vec::new();
    let mut run = |kind, target_secs: Option<u32>, start: Option<Millis>, stop: Option<Millis>| {
        let (Some(target_secs), Some(start)) = (target_secs, start) else {
            return;
        };
        let target_ms = Millis::from(target_secs) * 1000;
        let end = stop.unwrap_or(now);
        let paused_now = stop.is_none() && facts.paused_since.is_some();
        let running_until = match facts.paused_since {
            Some(p) if stop.is_none() => p.min(end),
            _ => end,
        };
        // Pauses before this clock started do not count against it.
        let paused = if facts.started_at >= start {
            facts.paused_business_ms
        } else {
            0
        };
        let elapsed = (calendar.business_between(start, running_until) - paused).max(0);
        let warn_ms = target_ms * Millis::from(warn_percent.min(100)) / 100;
        let level = if elapsed >= target_ms {
            Level::Breached
        } else if elapsed >= warn_ms {
            Level::Warning
        } else {
            Level::Ok
        };
        let (next_change_at, due_at) = if stop.is_some() || paused_now {
            (None, None)
        } else {
            let due = calendar.add_business(now, target_ms - elapsed);
            let next = match level {
                Level::Ok => calendar.add_business(now, warn_ms - elapsed),
                Level::Warning => due,
                Level::Breached => None,
            };
            (
                next,
                due.filter(|_| level != Level::Breached)
                    .or(Some(now - (elapsed - target_ms))),
            )
        };
        out.push(Clock {
            kind,
            target_ms,
            elapsed_ms: elapsed,
            level,
            stopped_at: stop,
            next_change_at,
            due_at,
        });
    };
    run(
        ClockKind::FirstResponse,
        targets.first_response_secs,
        Some(facts.started_at),
        facts.first_response_at,
    );
    // The next-response clock runs only after a first response, for a message not yet answered.
    if facts.first_response_at.is_some() {
        run(
            ClockKind::NextResponse,
            targets.next_response_secs,
            facts.awaiting_reply_since,
            None,
        );
    }
    run(
        ClockKind::Resolution,
        targets.resolution_secs,
        Some(facts.started_at),
        facts.resolved_at,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MINUTE: Millis = 60_000;

    const HOUR: Millis = 60 * MINUTE;

    fn shanghai_office() -> Calendar {
        let day = vec![(9 * 60, 12 * 60), (13 * 60, 18 * 60)];
        Calendar {
            id: 1,
            name: "Shanghai office".into(),
            time_zone: "Asia/Shanghai".into(),
            hours: [
                day.clone(),
                day.clone(),
                day.clone(),
                day.clone(),
                day,
                vec![],
                vec![],
            ],
            holidays: vec![NaiveDate::from_ymd_opt(2026, 10, 1).unwrap()],
            extra_workdays: vec![NaiveDate::from_ymd_opt(2026, 9, 27).unwrap()],
            updated_at: 0,
        }
    }

    fn at(y: i32, m: u32, d: u32, h: u32, min: u32) -> Millis {
        chrono_tz::Asia::Shanghai
            .with_ymd_and_hms(y, m, d, h, min, 0)
            .unwrap()
            .timestamp_millis()
    }

    #[test]
    fn says_whether_open_and_until_when() {
        let cal = shanghai_office();
        // Tuesday 10:00: open until lunch; lunch: closed until 13:00.
        assert_eq!(
            cal.open_at(at(2026, 9, 29, 10, 0)),
            (true, Some(at(2026, 9, 29, 12, 0)))
        );
        assert_eq!(
            cal.open_at(at(2026, 9, 29, 12, 30)),
            (false, Some(at(2026, 9, 29, 13, 0)))
        );
        // Wednesday evening: the holiday on Thursday is skipped, Friday 9:00 opens.
        assert_eq!(
            cal.open_at(at(2026, 9, 30, 19, 0)),
            (false, Some(at(2026, 10, 2, 9, 0)))
        );
        assert_eq!(Calendar::always().open_at(0), (true, None));
        // Quiet hours across midnight are one run.
        let quiet = Calendar::daily("Asia/Shanghai", &[(22 * 60, 7 * 60)]);
        assert_eq!(
            quiet.open_at(at(2026, 9, 29, 23, 0)),
            (true, Some(at(2026, 9, 30, 7, 0)))
        );
        assert_eq!(
            quiet.open_at(at(2026, 9, 29, 8, 0)),
            (false, Some(at(2026, 9, 29, 22, 0)))
        );
        assert_eq!(Calendar::daily("UTC", &[]).open_at(0), (false, None));
    }

    #[test]
    fn counts_only_opening_hours() {
        let cal = shanghai_office();
        // Wednesday 2026-09-30 17:00 to Friday 2026-10-02 10:00: one hour on Wednesday,
        // Thursday is a holiday, one hour on Friday.
        assert_eq!(
            cal.business_between(at(2026, 9, 30, 17, 0), at(2026, 10, 2, 10, 0)),
            2 * HOUR
        );
        // Lunch does not count.
        assert_eq!(
            cal.business_between(at(2026, 9, 29, 11, 30), at(2026, 9, 29, 13, 30)),
            HOUR
        );
        // Sunday 2026-09-27 is a make-up working day.
        assert_eq!(
            cal.business_between(at(2026, 9, 27, 0, 0), at(2026, 9, 28, 0, 0)),
            8 * HOUR
        );
        // A message on Friday at 17:30 with a 2-hour target is due Monday at 10:30.
        assert_eq!(
            cal.add_business(at(2026, 10, 9, 17, 30), 2 * HOUR),
            Some(at(2026, 10, 12, 10, 30))
        );
        assert_eq!(cal.check(), Ok(()));
    }

    #[test]
    fn daylight_saving_days_have_their_real_length() {
        let mut cal = Calendar::always();
        cal.time_zone = "Europe/Berlin".into();
        cal.holidays = vec![NaiveDate::from_ymd_opt(2000, 1, 1).unwrap()];
        let day = |d: u32| {
            chrono_tz::Europe::Berlin
                .with_ymd_and_hms(2026, 3, d, 0, 0, 0)
                .unwrap()
                .timestamp_millis()
        };
        assert_eq!(cal.business_between(day(29), day(30)), 23 * HOUR);
    }

    #[test]
    fn clocks_warn_breach_stop_and_pause() {
        let cal = Calendar::always();
        let targets = Targets {
            first_response_secs: Some(10 * 60),
            next_response_secs: Some(30 * 60),
            resolution_secs: Some(120 * 60),
        };
        let mut facts = Facts {
            started_at: 0,
            ..Facts::default()
        };
        let first = |facts: &Facts, now| clocks(&cal, &targets, facts, 80, now)[0];
        assert_eq!(first(&facts, 7 * MINUTE).level, Level::Ok);
        assert_eq!(first(&facts, 7 * MINUTE).next_change_at, Some(8 * MINUTE));
        assert_eq!(first(&facts, 8 * MINUTE).level, Level::Warning);
        assert_eq!(first(&facts, 8 * MINUTE).due_at, Some(10 * MINUTE));
        assert_eq!(first(&facts, 11 * MINUTE).level, Level::Breached);
        // Waiting on the customer pauses it.
        facts.paused_since = Some(5 * MINUTE);
        let paused = first(&facts, 60 * MINUTE);
        assert_eq!(
            (paused.level, paused.elapsed_ms, paused.next_change_at),
            (Level::Ok, 5 * MINUTE, None)
        );
        // The customer answers 20 minutes later: the pause is taken off.
        facts.paused_since = None;
        facts.paused_business_ms = 20 * MINUTE;
        assert_eq!(first(&facts, 27 * MINUTE).elapsed_ms, 7 * MINUTE);
        facts.first_response_at = Some(28 * MINUTE);
        let answered = first(&facts, 90 * MINUTE);
        assert_eq!(
            (answered.level, answered.stopped_at),
            (Level::Warning, Some(28 * MINUTE))
        );
        // A new customer message starts the next-response clock.
        facts.awaiting_reply_since = Some(100 * MINUTE);
        let all = clocks(&cal, &targets, &facts, 80, 110 * MINUTE);
        assert_eq!(all[1].kind, ClockKind::NextResponse);
        assert_eq!(all[1].elapsed_ms, 10 * MINUTE);
        assert_eq!(all[2].kind, ClockKind::Resolution);
    }

    #[test]
    fn a_calendar_that_never_opens_has_no_deadline() {
        let mut cal = shanghai_office();
        cal.hours = std::array::from_fn(|_| Vec::new());
        cal.extra_workdays.clear();
        assert_eq!(cal.add_business(0, HOUR), None);
        assert!(cal.check().is_ok());
        cal.time_zone = "Mars/Olympus".into();
        assert!(cal.check().is_err());
    }

    proptest! {
        #[test]
        fn adding_business_time_then_measuring_it_gives_it_back(
            start in 1_700_000_000_000i64..1_900_000_000_000i64,
            minutes in 0i64..20_000,
        ) {
            let cal = shanghai_office();
            let amount = minutes * MINUTE;
            let due = cal.add_business(start, amount).unwrap();
            prop_assert!(due >= start);
            prop_assert_eq!(cal.business_between(start, due), amount);
        }
    }
}
