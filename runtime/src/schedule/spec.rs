//! A deployment schedule's spec, and the fire times it yields.
//!
//! Pure: no I/O and no clock. Every function takes the instants it needs, so the scheduler can drive it
//! with a controllable clock. [`ScheduleSpec::compile`] validates once; [`CompiledSchedule::fire_times`]
//! is then cheap enough to call for every schedule every second with a window of seconds to minutes.
//!
//! # Kinds
//!
//! - **Cron**: five fields as in crontab (`minute hour day-of-month month day-of-week`), or six with a
//!   seconds field first. Day-of-week follows crontab: `0`–`7` with `0` and `7` both Sunday, or names
//!   (`MON-FRI`); months may be named (`JAN`). `@yearly`, `@annually`, `@monthly`, `@weekly`, `@daily`,
//!   `@midnight` and `@hourly` are accepted. When both day-of-month and day-of-week are restricted, a day
//!   must match both (crontab would take either).
//! - **Interval**: `anchor + k·interval_seconds` for `k = 0, 1, 2, …`; nothing fires before the anchor.
//!   The anchor defaults to 2020-01-01T00:00:00 in the schedule's timezone. An interval that is a whole
//!   number of days keeps the anchor's local wall-clock time (a daily interval anchored at 09:00
//!   Europe/Berlin fires at 09:00 local all year); any other interval steps in absolute seconds.
//! - **RRULE** (RFC 5545): with or without the `RRULE:` prefix, optionally with `DTSTART`, `RDATE` and
//!   `EXDATE` lines. Without a `DTSTART`, it is 2020-01-01T00:00:00 in the schedule's timezone. `BYHOUR`
//!   and the like are local wall-clock times in the schedule's timezone; a `DTSTART` given in another
//!   timezone is read as the schedule-local wall-clock time of that instant.
//!
//! Every kind runs in the schedule's IANA `timezone` (default `UTC`).
//!
//! # Daylight saving time
//!
//! Cron expressions, RRULEs and whole-day intervals produce local wall-clock times, which are then mapped
//! to instants. Two rules decide what happens when the clocks change:
//!
//! - **Wall-clock schedules**, whose times name a particular hour (a cron hour field other than every
//!   hour, a daily-or-coarser RRULE or one with `BYHOUR`, a whole-day interval):
//!   - a local time skipped by spring forward (02:30 in Europe/Berlin on 2026-03-29) fires once, at the
//!     first instant after the gap (03:00 local, the transition instant); several skipped times
//!     collapse into that one fire;
//!   - a local time that occurs twice at fall back (01:30 in America/New_York on 2026-11-01) fires once,
//!     at its first occurrence.
//! - **Real-time schedules**, whose times recur every hour (a cron hour field matching all 24 hours, an
//!   hourly, minutely or secondly RRULE without `BYHOUR`): every real instant whose local time matches
//!   fires, once. Skipped local times have no instant and do not fire; repeated local times fire at both
//!   occurrences. So `0 * * * *` keeps firing once per real hour through both transitions: 23 times on
//!   the local day that springs forward, 25 on the one that falls back, 24 in any 24 real hours.
//!
//! DST is handled here rather than by the `cron` or `rrule` crates: they only ever see naive local
//! times (expressed as UTC), and each candidate is mapped with `chrono-tz`. Timezone data covers the
//! years that `chrono-tz` ships rules for; cron expressions stop matching after the year 2100.

use std::ops::ControlFlow;
use std::str::FromStr;

use chrono::{DateTime, Duration, LocalResult, NaiveDate, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use rrule::{Frequency, RRule, RRuleSet, Unvalidated};
use serde::{Deserialize, Serialize};

/// What a deployment's schedule says, as stored and as the API accepts it (`{"type": "cron", …}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum ScheduleSpec {
    /// A cron expression evaluated on the local wall clock of `timezone`.
    Cron {
        /// Five fields, or six with seconds first; see the module docs.
        cron: String,
        /// IANA timezone name.
        #[serde(default = "utc")]
        timezone: String,
    },
    /// A fixed interval from an anchor.
    Interval {
        /// Seconds between fires; positive, fractions allowed.
        interval_seconds: f64,
        /// The first fire time; 2020-01-01T00:00:00 in `timezone` when absent.
        anchor_date: Option<DateTime<Utc>>,
        /// IANA timezone name; matters for the default anchor and whole-day intervals.
        #[serde(default = "utc")]
        timezone: String,
    },
    /// An RFC 5545 recurrence rule.
    Rrule {
        /// The rule, with or without `RRULE:` and an optional `DTSTART` line.
        rrule: String,
        /// IANA timezone name; the rule's local times are in it.
        #[serde(default = "utc")]
        timezone: String,
    },
}

fn utc() -> String {
    "UTC".to_owned()
}

/// Why a [`ScheduleSpec`] cannot be compiled. The messages are shown to users as they are.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SpecError {
    /// The cron expression does not parse.
    #[error("invalid cron expression {expr:?}: {reason}")]
    InvalidCron {
        /// The expression as given.
        expr: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The cron expression parses but matches no date (e.g. 31 February).
    #[error("the cron expression {0:?} never fires")]
    CronNeverFires(String),
    /// The timezone is not an IANA name that `chrono-tz` knows.
    #[error("unknown timezone {0:?}")]
    UnknownTimezone(String),
    /// The interval is zero, negative or not a number.
    #[error("interval_seconds must be positive")]
    NonPositiveInterval,
    /// The interval is below a nanosecond or beyond what a timestamp can hold.
    #[error("interval_seconds {0} is out of range")]
    IntervalOutOfRange(f64),
    /// The RRULE does not parse or validate.
    #[error("invalid RRULE {rule:?}: {reason}")]
    InvalidRrule {
        /// The rule as given.
        rule: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The RRULE is valid but yields no time after 2020.
    #[error("the RRULE never fires")]
    RruleNeverFires,
}

impl ScheduleSpec {
    /// Validates the spec and prepares it for computing fire times.
    pub fn compile(&self) -> Result<CompiledSchedule, SpecError> {
        let kind = match self {
            ScheduleSpec::Cron { cron, timezone } => compile_cron(cron, parse_tz(timezone)?)?,
            ScheduleSpec::Interval {
                interval_seconds,
                anchor_date,
                timezone,
            } => compile_interval(*interval_seconds, *anchor_date, parse_tz(timezone)?)?,
            ScheduleSpec::Rrule { rrule, timezone } => {
                Kind::Rrule(Box::new(compile_rrule(rrule, parse_tz(timezone)?)?))
            }
        };
        Ok(CompiledSchedule { kind })
    }
}

/// A validated schedule that turns a window of time into fire times.
#[derive(Debug, Clone)]
pub struct CompiledSchedule {
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Cron {
        schedule: Box<cron::Schedule>,
        tz: Tz,
        real_time: bool,
    },
    /// Absolute steps: `anchor + k·step` in nanoseconds since the epoch.
    Every {
        anchor_ns: i128,
        step_ns: i128,
    },
    /// Whole days on the local wall clock, from a local anchor.
    EveryDays {
        anchor: NaiveDateTime,
        days: i64,
        tz: Tz,
    },
    Rrule(Box<RruleSchedule>),
}

impl CompiledSchedule {
    /// Fire times t with after < t <= until, ascending, at most `limit`.
    pub fn fire_times(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Vec<DateTime<Utc>> {
        let mut out = Vec::new();
        if limit == 0 || until <= after {
            return out;
        }
        let mut sink = Sink {
            after,
            until,
            limit,
            out: &mut out,
        };
        match &self.kind {
            Kind::Cron {
                schedule,
                tz,
                real_time,
            } => walk(*tz, *real_time, &mut sink, |start| {
                schedule
                    .after(&Utc.from_utc_datetime(&start))
                    .map(|t| t.naive_utc())
            }),
            Kind::Every { anchor_ns, step_ns } => {
                let mut k = first_step_after(*anchor_ns, *step_ns, nanos(after));
                while let Some(t) = from_nanos(anchor_ns + k * step_ns) {
                    if sink.push(t).is_break() {
                        break;
                    }
                    k += 1;
                }
            }
            Kind::EveryDays { anchor, days, tz } => {
                let step = Duration::days(*days);
                walk(*tz, false, &mut sink, |start| {
                    let k = first_step_after(
                        naive_nanos(*anchor),
                        step.num_nanoseconds().map_or(i128::MAX, i128::from),
                        naive_nanos(start),
                    );
                    let k = i32::try_from(k).unwrap_or(i32::MAX);
                    (k..).map_while(move |k| anchor.checked_add_signed(step.checked_mul(k)?))
                })
            }
            Kind::Rrule(rule) => walk(rule.tz, rule.real_time, &mut sink, |start| {
                rule.candidates(start)
            }),
        }
        out
    }

    /// The first fire time strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.preview(after, 1).into_iter().next()
    }

    /// The next `n` fire times after `after` (the API's preview).
    ///
    /// Only times up to the end of the year 9999: RFC 3339, which the API writes times
    /// in, has no later ones (and no run is due then).
    pub fn preview(&self, after: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        self.fire_times(after, last_writable_time(), n)
    }
}

/// The last instant RFC 3339 can write: 9999-12-31T23:59:59.999999999Z.
fn last_writable_time() -> DateTime<Utc> {
    NaiveDate::from_ymd_opt(10_000, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc() - Duration::nanoseconds(1))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

fn parse_tz(name: &str) -> Result<Tz, SpecError> {
    Tz::from_str(name).map_err(|_| SpecError::UnknownTimezone(name.to_owned()))
}

/// Collects fire times within the window, dropping repeats (several skipped local times collapse onto one
/// transition instant).
struct Sink<'a> {
    after: DateTime<Utc>,
    until: DateTime<Utc>,
    limit: usize,
    out: &'a mut Vec<DateTime<Utc>>,
}

impl Sink<'_> {
    /// Takes the next time in ascending order; `Break` once nothing later can be wanted.
    fn push(&mut self, t: DateTime<Utc>) -> ControlFlow<()> {
        if t > self.until {
            return ControlFlow::Break(());
        }
        if t > self.after && self.out.last() != Some(&t) {
            self.out.push(t);
        }
        if self.out.len() >= self.limit {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }
}

/// Maps ascending local wall-clock candidates to instants under the DST rules in the module docs.
///
/// `candidates(start)` yields the schedule's local times strictly after `start`, ascending. Wall-clock
/// schedules map monotonically (first occurrence; gap to the transition instant). Real-time schedules
/// map a repeated hour to two instants, so a run of repeated candidates is emitted twice: first
/// occurrences, then, from a fresh iterator, second occurrences.
fn walk<I, F>(tz: Tz, real_time: bool, sink: &mut Sink<'_>, candidates: F)
where
    I: Iterator<Item = NaiveDateTime>,
    F: Fn(NaiveDateTime) -> I,
{
    let mut start = sink.after.with_timezone(&tz).naive_local();
    if real_time && let LocalResult::Ambiguous(first, second) = tz.from_local_datetime(&start) {
        // `after` lies in a repeated hour: instants after it may have earlier local times.
        start -= Duration::seconds(i64::from(offset_secs(&first) - offset_secs(&second)));
    }
    let mut it = candidates(start);
    let mut pending = None;
    while let Some(n) = pending.take().or_else(|| it.next()) {
        let flow = match tz.from_local_datetime(&n) {
            LocalResult::Single(t) => sink.push(t.to_utc()),
            LocalResult::None if real_time => ControlFlow::Continue(()),
            LocalResult::None => match chrono_tz::GapInfo::new(&n, &tz).and_then(|gap| gap.end) {
                Some(t) => sink.push(t.to_utc()),
                None => ControlFlow::Continue(()),
            },
            LocalResult::Ambiguous(first, _) if !real_time => sink.push(first.to_utc()),
            LocalResult::Ambiguous(first, _) => (|| {
                sink.push(first.to_utc())?;
                for m in it.by_ref() {
                    match tz.from_local_datetime(&m) {
                        LocalResult::Ambiguous(first, _) => sink.push(first.to_utc())?,
                        _ => {
                            pending = Some(m);
                            break;
                        }
                    }
                }
                for m in candidates(n - Duration::nanoseconds(1)) {
                    match tz.from_local_datetime(&m) {
                        LocalResult::Ambiguous(_, second) => sink.push(second.to_utc())?,
                        _ => break,
                    }
                }
                ControlFlow::Continue(())
            })(),
        };
        if flow.is_break() {
            return;
        }
    }
}

fn offset_secs(t: &DateTime<Tz>) -> i32 {
    t.offset().fix().local_minus_utc()
}

/// The smallest `k >= 0` with `anchor + k·step > after`.
fn first_step_after(anchor: i128, step: i128, after: i128) -> i128 {
    if after < anchor {
        0
    } else {
        (after - anchor) / step + 1
    }
}

fn nanos(t: DateTime<Utc>) -> i128 {
    i128::from(t.timestamp()) * 1_000_000_000 + i128::from(t.timestamp_subsec_nanos())
}

fn naive_nanos(t: NaiveDateTime) -> i128 {
    nanos(t.and_utc())
}

fn from_nanos(ns: i128) -> Option<DateTime<Utc>> {
    let secs = i64::try_from(ns.div_euclid(1_000_000_000)).ok()?;
    let sub = u32::try_from(ns.rem_euclid(1_000_000_000)).ok()?;
    DateTime::from_timestamp(secs, sub)
}

/// 2020-01-01T00:00:00, the default anchor and DTSTART as a local time.
fn epoch_2020() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2020, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .unwrap_or_default()
}

// --- cron ---

fn compile_cron(expr: &str, tz: Tz) -> Result<Kind, SpecError> {
    let invalid = |reason: String| SpecError::InvalidCron {
        expr: expr.to_owned(),
        reason,
    };
    let normalized = normalize_cron(expr).map_err(invalid)?;
    let schedule = cron::Schedule::from_str(&normalized).map_err(|e| invalid(e.to_string()))?;
    let real_time = cron::TimeUnitSpec::count(schedule.hours()) == 24;
    if schedule.after(&epoch_2020().and_utc()).next().is_none() {
        return Err(SpecError::CronNeverFires(expr.to_owned()));
    }
    Ok(Kind::Cron {
        schedule: Box::new(schedule),
        tz,
        real_time,
    })
}

/// Rewrites a crontab expression into the `cron` crate's dialect: a seconds field first, and days of
/// the week numbered 1–7 from Sunday rather than 0–7.
fn normalize_cron(expr: &str) -> Result<String, String> {
    let trimmed = expr.trim();
    if trimmed.starts_with('@') {
        return Ok(match trimmed {
            "@annually" => "@yearly",
            "@midnight" => "@daily",
            other => other,
        }
        .to_owned());
    }
    let mut fields: Vec<String> = trimmed.split_whitespace().map(str::to_owned).collect();
    match fields.len() {
        5 => fields.insert(0, "0".to_owned()),
        6 => {}
        n => {
            return Err(format!(
                "expected 5 fields (minute hour day-of-month month day-of-week) or 6 with seconds first, got {n}"
            ));
        }
    }
    fields[5] = day_of_week_field(&fields[5])?;
    Ok(fields.join(" "))
}

/// Expands a crontab day-of-week field (0 or 7 = Sunday, names, ranges, steps) into an explicit list in
/// the `cron` crate's numbering (1 = Sunday).
fn day_of_week_field(field: &str) -> Result<String, String> {
    if field == "*" || field == "?" {
        return Ok(field.to_owned());
    }
    let mut days = [false; 7];
    for item in field.split(',') {
        let (base, step) = match item.split_once('/') {
            Some((base, step)) => {
                let step: u32 = step
                    .parse()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| format!("invalid day-of-week step in {item:?}"))?;
                (base, Some(step))
            }
            None => (item, None),
        };
        let (lo, hi) = match base {
            "*" | "?" => (0, 6),
            _ => match base.split_once('-') {
                Some((lo, hi)) => (weekday(lo)?, weekday(hi)?),
                None => {
                    let day = weekday(base)?;
                    (day, if step.is_some() { 6 } else { day })
                }
            },
        };
        if lo > hi {
            return Err(format!("day-of-week range {base:?} runs backwards"));
        }
        for day in (lo..=hi).step_by(step.unwrap_or(1) as usize) {
            days[(day % 7) as usize] = true;
        }
    }
    let list: Vec<String> = (0..7)
        .filter(|d| days[*d])
        .map(|d| (d + 1).to_string())
        .collect();
    Ok(list.join(","))
}

/// A crontab day of the week: 0–7 (0 and 7 are Sunday) or an English name or abbreviation.
fn weekday(s: &str) -> Result<u32, String> {
    if let Ok(n) = s.parse::<u32>() {
        return if n <= 7 {
            Ok(n)
        } else {
            Err(format!("day of week {n} is not in 0-7"))
        };
    }
    const NAMES: [&str; 7] = [
        "sunday",
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
    ];
    let lower = s.to_ascii_lowercase();
    NAMES
        .iter()
        .position(|name| lower.len() >= 3 && name.starts_with(&lower))
        .map(|i| i as u32)
        .ok_or_else(|| format!("{s:?} is not a day of the week"))
}

// --- interval ---

const DAY_SECONDS: f64 = 86_400.0;

fn compile_interval(
    seconds: f64,
    anchor: Option<DateTime<Utc>>,
    tz: Tz,
) -> Result<Kind, SpecError> {
    if seconds.is_nan() || seconds <= 0.0 {
        return Err(SpecError::NonPositiveInterval);
    }
    let step_ns = (seconds * 1e9).round();
    // Beyond ~292 years an interval can never fire twice within a timestamp's range.
    if !(1.0..=9.2e18).contains(&step_ns) {
        return Err(SpecError::IntervalOutOfRange(seconds));
    }
    if seconds % DAY_SECONDS == 0.0 {
        let anchor = match anchor {
            Some(a) => a.with_timezone(&tz).naive_local(),
            None => epoch_2020(),
        };
        return Ok(Kind::EveryDays {
            anchor,
            days: (seconds / DAY_SECONDS) as i64,
            tz,
        });
    }
    let anchor = match anchor {
        Some(a) => a,
        None => local_to_instant(&tz, epoch_2020()),
    };
    Ok(Kind::Every {
        anchor_ns: nanos(anchor),
        step_ns: step_ns as i128,
    })
}

/// A local time as an instant under the wall-clock rule (first occurrence; gap to its end).
fn local_to_instant(tz: &Tz, local: NaiveDateTime) -> DateTime<Utc> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t.to_utc(),
        LocalResult::None => chrono_tz::GapInfo::new(&local, tz)
            .and_then(|gap| gap.end)
            .map_or_else(|| local.and_utc(), |t| t.to_utc()),
    }
}

// --- RRULE ---

/// An RRULE set rewritten onto naive local time (as UTC), so DST is left to [`walk`].
#[derive(Debug, Clone)]
struct RruleSchedule {
    tz: Tz,
    real_time: bool,
    /// The set from its own DTSTART; the fallback when it cannot be rebased.
    set: RRuleSet,
    /// The single rule, unvalidated so it can be revalidated against a later DTSTART, when the set
    /// can be rebased: one RRULE without COUNT.
    rebase: Option<(RRule<Unvalidated>, Period)>,
}

/// How far DTSTART can move without changing the rule's occurrences after it.
#[derive(Debug, Clone, Copy)]
enum Period {
    Months(u32),
    Seconds(i64),
}

fn compile_rrule(text: &str, tz: Tz) -> Result<RruleSchedule, SpecError> {
    let invalid = |reason: String| SpecError::InvalidRrule {
        rule: text.to_owned(),
        reason,
    };
    let lines: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| {
            if l.contains(':') {
                l.to_owned()
            } else {
                format!("RRULE:{l}")
            }
        })
        .collect();
    let default_start = rrule::Tz::Tz(tz)
        .from_local_datetime(&epoch_2020())
        .earliest()
        .ok_or_else(|| invalid("2020-01-01T00:00:00 does not exist in the timezone".into()))?;
    let parsed = RRuleSet::new(default_start)
        .set_from_string(&lines.join("\n"))
        .map_err(|e| invalid(e.to_string()))?;
    if parsed.get_rrule().is_empty() {
        return Err(invalid("no RRULE line".into()));
    }

    // The same set on naive local time, written as UTC.
    let fake = |t: &DateTime<rrule::Tz>| {
        rrule::Tz::UTC.from_utc_datetime(&t.with_timezone(&tz).naive_local())
    };
    let start = fake(parsed.get_dt_start());
    // Re-read each RRULE line: a validated rule's text drops parts of it (a negative BYMONTHDAY).
    let mut rules = Vec::new();
    for line in lines
        .iter()
        .filter(|l| l.to_ascii_uppercase().starts_with("RRULE:"))
    {
        let mut rule: RRule<Unvalidated> = line
            .parse()
            .map_err(|e: rrule::RRuleError| invalid(e.to_string()))?;
        if let Some(until) = rule.get_until() {
            let until = if until.timezone().is_local() {
                rrule::Tz::UTC.from_utc_datetime(&until.naive_local())
            } else {
                fake(until)
            };
            rule = rule.until(until);
        }
        rules.push(rule);
    }
    let validated = rules
        .iter()
        .map(|r| r.clone().validate(start))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(e.to_string()))?;
    let real_time = validated.iter().all(|r| {
        matches!(
            r.get_freq(),
            Frequency::Hourly | Frequency::Minutely | Frequency::Secondly
        ) && matches!(r.get_by_hour().len(), 0 | 24)
    });
    let rebase = match (validated.as_slice(), rules.pop()) {
        ([only], Some(rule)) if only.get_count().is_none() => {
            period(only, start.naive_utc()).map(|p| (rule, p))
        }
        _ => None,
    };
    let set = RRuleSet::new(start)
        .set_rrules(validated)
        .set_rdates(parsed.get_rdate().iter().map(fake).collect())
        .set_exdates(parsed.get_exdate().iter().map(fake).collect())
        .limit();
    let schedule = RruleSchedule {
        tz,
        real_time,
        set,
        rebase,
    };
    let since_2020 = local_to_instant(&tz, epoch_2020()) - Duration::nanoseconds(1);
    let mut sink_out = Vec::new();
    let mut sink = Sink {
        after: since_2020,
        until: DateTime::<Utc>::MAX_UTC,
        limit: 1,
        out: &mut sink_out,
    };
    walk(tz, real_time, &mut sink, |s| schedule.candidates(s));
    if sink_out.is_empty() {
        return Err(SpecError::RruleNeverFires);
    }
    Ok(schedule)
}

/// The rule's period, if whole periods from `start` keep the defaults it takes from DTSTART (a
/// month-based rule from the 29th or later would not: some months lack that day).
fn period(rule: &RRule, start: NaiveDateTime) -> Option<Period> {
    use chrono::Datelike;
    let n = i64::from(rule.get_interval());
    Some(match rule.get_freq() {
        Frequency::Yearly if start.day() <= 28 => {
            Period::Months(12 * u32::from(rule.get_interval()))
        }
        Frequency::Monthly if start.day() <= 28 => Period::Months(u32::from(rule.get_interval())),
        Frequency::Yearly | Frequency::Monthly => return None,
        Frequency::Weekly => Period::Seconds(n * 7 * 86_400),
        Frequency::Daily => Period::Seconds(n * 86_400),
        Frequency::Hourly => Period::Seconds(n * 3_600),
        Frequency::Minutely => Period::Seconds(n * 60),
        Frequency::Secondly => Period::Seconds(n),
    })
}

impl RruleSchedule {
    /// Occurrences strictly after the local time `after`, ascending. Starts the rule from the last
    /// whole period before `after` rather than from DTSTART, so a window in 2030 does not replay 2020.
    fn candidates(&self, after: NaiveDateTime) -> impl Iterator<Item = NaiveDateTime> + use<> {
        let rebased = self.rebase.as_ref().and_then(|(rule, period)| {
            let start = rebase(self.set.get_dt_start().naive_utc(), *period, after)?;
            let start = rrule::Tz::UTC.from_utc_datetime(&start);
            let rule = rule.clone().validate(start).ok()?;
            Some(
                RRuleSet::new(start)
                    .rrule(rule)
                    .set_rdates(self.set.get_rdate().clone())
                    .set_exdates(self.set.get_exdate().clone())
                    .limit(),
            )
        });
        let set = rebased.as_ref().unwrap_or(&self.set);
        set.into_iter()
            .map(|t| t.naive_utc())
            .skip_while(move |t| *t <= after)
    }
}

/// The latest `start + k·period` with k > 0 not after `target`, if any.
fn rebase(start: NaiveDateTime, period: Period, target: NaiveDateTime) -> Option<NaiveDateTime> {
    use chrono::{Datelike, Months};
    match period {
        Period::Seconds(p) => {
            let k = (target - start).num_seconds() / p;
            (k > 0).then(|| start + Duration::seconds(k * p))
        }
        Period::Months(p) => {
            let months =
                (target.year() - start.year()) * 12 + target.month() as i32 - start.month() as i32;
            // One period back at most: the month may match but the day or time lie after `target`.
            let k = u32::try_from(months).ok()? / p;
            [k, k.saturating_sub(1)]
                .into_iter()
                .filter(|k| *k > 0)
                .filter_map(|k| start.checked_add_months(Months::new(k.checked_mul(p)?)))
                .find(|candidate| *candidate <= target)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .unwrap_or_else(|e| panic!("{s}: {e}"))
            .to_utc()
    }

    fn times(list: &[&str]) -> Vec<DateTime<Utc>> {
        list.iter().map(|s| utc(s)).collect()
    }

    fn cron(expr: &str, tz: &str) -> CompiledSchedule {
        ScheduleSpec::Cron {
            cron: expr.into(),
            timezone: tz.into(),
        }
        .compile()
        .unwrap()
    }

    fn rrule(rule: &str, tz: &str) -> CompiledSchedule {
        ScheduleSpec::Rrule {
            rrule: rule.into(),
            timezone: tz.into(),
        }
        .compile()
        .unwrap()
    }

    fn interval(seconds: f64, anchor: Option<&str>, tz: &str) -> CompiledSchedule {
        ScheduleSpec::Interval {
            interval_seconds: seconds,
            anchor_date: anchor.map(utc),
            timezone: tz.into(),
        }
        .compile()
        .unwrap()
    }

    fn error(spec: ScheduleSpec) -> String {
        spec.compile().unwrap_err().to_string()
    }

    /// Fires within one local calendar day.
    fn fires_on_local_day(s: &CompiledSchedule, tz: Tz, day: NaiveDate) -> Vec<DateTime<Utc>> {
        let midnight = |d: NaiveDate| local_to_instant(&tz, d.and_hms_opt(0, 0, 0).unwrap());
        let start = midnight(day) - Duration::nanoseconds(1);
        let end = midnight(day.succ_opt().unwrap()) - Duration::nanoseconds(1);
        s.fire_times(start, end, 1000)
    }

    fn assert_steps(fires: &[DateTime<Utc>], step: Duration) {
        for pair in fires.windows(2) {
            assert_eq!(pair[1] - pair[0], step, "{pair:?}");
        }
    }

    #[test]
    fn daily_job_in_the_spring_forward_gap_fires_once_at_the_transition() {
        let berlin = cron("30 2 * * *", "Europe/Berlin");
        assert_eq!(
            berlin.fire_times(utc("2026-03-27T12:00:00Z"), utc("2026-03-30T12:00:00Z"), 10),
            times(&[
                "2026-03-28T01:30:00Z",
                "2026-03-29T01:00:00Z",
                "2026-03-30T00:30:00Z"
            ])
        );
        let new_york = cron("30 2 * * *", "America/New_York");
        assert_eq!(
            new_york.fire_times(utc("2026-03-07T00:00:00Z"), utc("2026-03-10T00:00:00Z"), 10),
            times(&[
                "2026-03-07T07:30:00Z",
                "2026-03-08T07:00:00Z",
                "2026-03-09T06:30:00Z"
            ])
        );
        // Several skipped times collapse into one fire.
        let quarterly = cron("*/15 2 * * *", "Europe/Berlin");
        let day = NaiveDate::from_ymd_opt(2026, 3, 29).unwrap();
        assert_eq!(
            fires_on_local_day(&quarterly, Tz::Europe__Berlin, day),
            times(&["2026-03-29T01:00:00Z"])
        );
    }

    #[test]
    fn daily_job_in_the_repeated_hour_fires_once_at_the_first_occurrence() {
        let new_york = cron("30 1 * * *", "America/New_York");
        assert_eq!(
            new_york.fire_times(utc("2026-10-31T00:00:00Z"), utc("2026-11-03T00:00:00Z"), 10),
            times(&[
                "2026-10-31T05:30:00Z",
                "2026-11-01T05:30:00Z",
                "2026-11-02T06:30:00Z"
            ])
        );
        // From inside the repeated hour, the second occurrence is not a fire either.
        assert_eq!(
            new_york.next_after(utc("2026-11-01T06:00:00Z")),
            Some(utc("2026-11-02T06:30:00Z"))
        );
        let berlin = cron("30 2 * * *", "Europe/Berlin");
        assert_eq!(
            berlin.fire_times(utc("2026-10-24T12:00:00Z"), utc("2026-10-26T12:00:00Z"), 10),
            times(&["2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"])
        );
    }

    #[test]
    fn hourly_job_fires_every_real_hour_through_both_transitions() {
        for (zone, tz, spring, fall) in [
            (
                "America/New_York",
                Tz::America__New_York,
                (2026, 3, 8),
                (2026, 11, 1),
            ),
            (
                "Europe/Berlin",
                Tz::Europe__Berlin,
                (2026, 3, 29),
                (2026, 10, 25),
            ),
        ] {
            let hourly = cron("0 * * * *", zone);
            let spring = NaiveDate::from_ymd_opt(spring.0, spring.1, spring.2).unwrap();
            let fall = NaiveDate::from_ymd_opt(fall.0, fall.1, fall.2).unwrap();
            let spring_fires = fires_on_local_day(&hourly, tz, spring);
            let fall_fires = fires_on_local_day(&hourly, tz, fall);
            assert_eq!(spring_fires.len(), 23, "{zone}");
            assert_eq!(fall_fires.len(), 25, "{zone}");
            assert_steps(&spring_fires, Duration::hours(1));
            assert_steps(&fall_fires, Duration::hours(1));
            for day in [spring, fall] {
                let start = local_to_instant(&tz, day.and_hms_opt(0, 30, 0).unwrap());
                let fires = hourly.fire_times(start, start + Duration::hours(24), 100);
                assert_eq!(fires.len(), 24, "{zone} {day}");
                assert_steps(&fires, Duration::hours(1));
            }
        }
        let quarterly = cron("*/15 * * * *", "America/New_York");
        let start = utc("2026-11-01T00:00:00Z");
        let fires = quarterly.fire_times(start, start + Duration::hours(24), 1000);
        assert_eq!(fires.len(), 96);
        assert_steps(&fires, Duration::minutes(15));
    }

    #[test]
    fn hourly_job_resumes_correctly_from_inside_the_repeated_hour() {
        let quarterly = cron("*/15 * * * *", "America/New_York");
        // 01:50 EDT, the first pass through 01:xx.
        assert_eq!(
            quarterly.preview(utc("2026-11-01T05:50:00Z"), 3),
            times(&[
                "2026-11-01T06:00:00Z",
                "2026-11-01T06:15:00Z",
                "2026-11-01T06:30:00Z"
            ])
        );
        // 01:20 EST, the second pass.
        assert_eq!(
            quarterly.preview(utc("2026-11-01T06:20:00Z"), 3),
            times(&[
                "2026-11-01T06:30:00Z",
                "2026-11-01T06:45:00Z",
                "2026-11-01T07:00:00Z"
            ])
        );
    }

    #[test]
    fn weekdays_at_nine_in_berlin_follow_the_local_clock() {
        let expected = times(&[
            "2026-03-27T08:00:00Z", // Friday, CET
            "2026-03-30T07:00:00Z", // Monday, CEST
            "2026-03-31T07:00:00Z",
            "2026-04-01T07:00:00Z",
            "2026-04-02T07:00:00Z",
            "2026-04-03T07:00:00Z",
            "2026-04-06T07:00:00Z",
        ]);
        for expr in [
            "0 9 * * MON-FRI",
            "0 9 * * 1-5",
            "0 9 * * mon,tue,wed,thu,fri",
        ] {
            let s = cron(expr, "Europe/Berlin");
            assert_eq!(
                s.preview(utc("2026-03-27T00:00:00Z"), 7),
                expected,
                "{expr}"
            );
        }
    }

    #[test]
    fn day_of_week_numbers_follow_crontab() {
        let sunday = utc("2026-03-29T09:00:00Z");
        let saturday = utc("2026-03-28T09:00:00Z");
        let after = utc("2026-03-26T00:00:00Z");
        assert_eq!(cron("0 9 * * 0", "UTC").next_after(after), Some(sunday));
        assert_eq!(cron("0 9 * * 7", "UTC").next_after(after), Some(sunday));
        assert_eq!(cron("0 9 * * SUN", "UTC").next_after(after), Some(sunday));
        assert_eq!(cron("0 9 * * 6", "UTC").next_after(after), Some(saturday));
        assert_eq!(
            // Sunday, Wednesday and Saturday.
            cron("0 9 * * */3", "UTC").preview(after, 3),
            times(&[
                "2026-03-28T09:00:00Z",
                "2026-03-29T09:00:00Z",
                "2026-04-01T09:00:00Z"
            ])
        );
    }

    #[test]
    fn six_field_cron_has_seconds_first() {
        let s = cron("*/20 * * * * *", "UTC");
        assert_eq!(
            s.preview(utc("2026-01-01T12:00:05Z"), 3),
            times(&[
                "2026-01-01T12:00:20Z",
                "2026-01-01T12:00:40Z",
                "2026-01-01T12:01:00Z"
            ])
        );
        assert_eq!(
            cron("@daily", "UTC").next_after(utc("2026-01-01T12:00:00Z")),
            Some(utc("2026-01-02T00:00:00Z"))
        );
    }

    #[test]
    fn interval_steps_from_its_anchor() {
        let s = interval(90.0, Some("2026-01-01T00:00:00Z"), "UTC");
        assert_eq!(
            s.fire_times(utc("2026-01-01T00:02:00Z"), utc("2026-01-01T00:06:00Z"), 10),
            times(&[
                "2026-01-01T00:03:00Z",
                "2026-01-01T00:04:30Z",
                "2026-01-01T00:06:00Z"
            ])
        );
        assert_eq!(
            s.next_after(utc("2026-01-01T00:03:00Z")),
            Some(utc("2026-01-01T00:04:30Z"))
        );
        // Nothing before the anchor.
        assert_eq!(
            s.next_after(utc("2025-01-01T00:00:00Z")),
            Some(utc("2026-01-01T00:00:00Z"))
        );
        // Far from the anchor costs the same as near it.
        assert_eq!(
            s.next_after(utc("2226-01-01T00:00:01Z")),
            Some(utc("2226-01-01T00:01:30Z"))
        );
        let half = interval(0.5, Some("2026-01-01T00:00:00Z"), "UTC");
        assert_eq!(
            half.preview(utc("2026-01-01T00:00:00.2Z"), 3),
            times(&[
                "2026-01-01T00:00:00.5Z",
                "2026-01-01T00:00:01Z",
                "2026-01-01T00:00:01.5Z"
            ])
        );
    }

    #[test]
    fn interval_default_anchor_is_2020_in_the_schedules_timezone() {
        let kolkata = interval(3600.0, None, "Asia/Kolkata");
        assert_eq!(
            kolkata.next_after(utc("2026-05-05T10:00:00Z")),
            Some(utc("2026-05-05T10:30:00Z"))
        );
        let plain = interval(3600.0, None, "UTC");
        assert_eq!(
            plain.next_after(utc("2026-05-05T10:00:00Z")),
            Some(utc("2026-05-05T11:00:00Z"))
        );
    }

    #[test]
    fn whole_day_interval_keeps_local_time_across_dst() {
        let daily = interval(86_400.0, Some("2026-03-01T08:00:00Z"), "Europe/Berlin");
        assert_eq!(
            daily.preview(utc("2026-03-27T00:00:00Z"), 4),
            times(&[
                "2026-03-27T08:00:00Z",
                "2026-03-28T08:00:00Z",
                "2026-03-29T07:00:00Z",
                "2026-03-30T07:00:00Z"
            ])
        );
        assert_eq!(
            daily.preview(utc("2026-10-24T00:00:00Z"), 3),
            times(&[
                "2026-10-24T07:00:00Z",
                "2026-10-25T08:00:00Z",
                "2026-10-26T08:00:00Z"
            ])
        );
        // Anchored in the gap (02:30 local on a normal day): fires at the transition on the day it
        // does not exist.
        let weekly = interval(
            7.0 * 86_400.0,
            Some("2026-03-22T01:30:00Z"),
            "Europe/Berlin",
        );
        assert_eq!(
            weekly.preview(utc("2026-03-23T00:00:00Z"), 2),
            times(&["2026-03-29T01:00:00Z", "2026-04-05T00:30:00Z"])
        );
        // Not whole days: absolute seconds, so the local time moves.
        let longer = interval(90_000.0, Some("2026-03-28T08:00:00Z"), "Europe/Berlin");
        assert_eq!(
            longer.next_after(utc("2026-03-28T08:00:00Z")),
            Some(utc("2026-03-29T09:00:00Z"))
        );
    }

    #[test]
    fn rrule_daily_at_nine_new_york_across_dst() {
        let expected = times(&[
            "2026-03-06T14:00:00Z",
            "2026-03-07T14:00:00Z",
            "2026-03-08T13:00:00Z",
            "2026-03-09T13:00:00Z",
        ]);
        for rule in [
            "FREQ=DAILY;BYHOUR=9;BYMINUTE=0",
            "RRULE:FREQ=DAILY;BYHOUR=9;BYMINUTE=0",
        ] {
            let s = rrule(rule, "America/New_York");
            assert_eq!(
                s.preview(utc("2026-03-06T00:00:00Z"), 4),
                expected,
                "{rule}"
            );
        }
        let fall = rrule("FREQ=DAILY;BYHOUR=9;BYMINUTE=0", "America/New_York");
        assert_eq!(
            fall.preview(utc("2026-10-31T00:00:00Z"), 2),
            times(&["2026-10-31T13:00:00Z", "2026-11-01T14:00:00Z"])
        );
    }

    #[test]
    fn rrule_follows_the_same_dst_rules_as_cron() {
        let gap = rrule("FREQ=DAILY;BYHOUR=2;BYMINUTE=30", "America/New_York");
        assert_eq!(
            gap.next_after(utc("2026-03-08T00:00:00Z")),
            Some(utc("2026-03-08T07:00:00Z"))
        );
        let repeated = rrule("FREQ=DAILY;BYHOUR=1;BYMINUTE=30", "America/New_York");
        assert_eq!(
            repeated.preview(utc("2026-11-01T00:00:00Z"), 2),
            times(&["2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"])
        );
        let hourly = rrule("FREQ=HOURLY", "America/New_York");
        let start = utc("2026-11-01T00:00:00Z");
        let fires = hourly.fire_times(start, start + Duration::hours(24), 100);
        assert_eq!(fires.len(), 24);
        assert_steps(&fires, Duration::hours(1));
    }

    #[test]
    fn rrule_with_dtstart_count_until_and_far_windows() {
        let counted = rrule(
            "DTSTART;TZID=America/New_York:20260301T090000\nRRULE:FREQ=DAILY;COUNT=3",
            "America/New_York",
        );
        assert_eq!(
            counted.preview(utc("2026-01-01T00:00:00Z"), 10),
            times(&[
                "2026-03-01T14:00:00Z",
                "2026-03-02T14:00:00Z",
                "2026-03-03T14:00:00Z"
            ])
        );
        let excluded = rrule(
            "DTSTART;TZID=Europe/Berlin:20260101T090000\nRRULE:FREQ=DAILY\n\
             EXDATE;TZID=Europe/Berlin:20260102T090000",
            "Europe/Berlin",
        );
        assert_eq!(
            excluded.preview(utc("2026-01-01T00:00:00Z"), 2),
            times(&["2026-01-01T08:00:00Z", "2026-01-03T08:00:00Z"])
        );
        let until = rrule("FREQ=DAILY;BYHOUR=9;UNTIL=20260103T090000Z", "UTC");
        assert_eq!(
            until.preview(utc("2026-01-01T00:00:00Z"), 10),
            times(&[
                "2026-01-01T09:00:00Z",
                "2026-01-02T09:00:00Z",
                "2026-01-03T09:00:00Z"
            ])
        );
        // Minutely from 2020 would be millions of occurrences to replay; the window is found directly.
        let every_seven = rrule("FREQ=MINUTELY;INTERVAL=7", "UTC");
        let fires = every_seven.fire_times(
            utc("2030-06-01T00:00:00Z"),
            utc("2030-06-01T00:30:00Z"),
            100,
        );
        assert_eq!(fires.len(), 4);
        let since_2020 = (fires[0] - utc("2020-01-01T00:00:00Z")).num_minutes();
        assert_eq!(since_2020 % 7, 0);
        assert_steps(&fires, Duration::minutes(7));
        let month_end = rrule("FREQ=MONTHLY;BYMONTHDAY=-1;BYHOUR=12", "UTC");
        assert_eq!(
            month_end.preview(utc("2031-01-15T00:00:00Z"), 2),
            times(&["2031-01-31T12:00:00Z", "2031-02-28T12:00:00Z"])
        );
    }

    #[test]
    fn invalid_specs_name_the_problem() {
        let cron_error = |expr: &str| {
            error(ScheduleSpec::Cron {
                cron: expr.into(),
                timezone: "UTC".into(),
            })
        };
        assert!(cron_error("x").starts_with(r#"invalid cron expression "x": "#));
        assert!(cron_error("0 0 * * * * 2020").contains("expected 5 fields"));
        assert!(cron_error("0 9 * * 8").contains("not in 0-7"));
        assert!(cron_error("0 9 * * FRI-MON").contains("runs backwards"));
        assert!(cron_error("61 * * * *").starts_with("invalid cron expression"));
        assert_eq!(
            cron_error("0 0 31 2 *"),
            r#"the cron expression "0 0 31 2 *" never fires"#
        );
        assert_eq!(
            error(ScheduleSpec::Cron {
                cron: "* * * * *".into(),
                timezone: "Mars/Base".into()
            }),
            r#"unknown timezone "Mars/Base""#
        );
        for seconds in [0.0, -5.0, f64::NAN] {
            assert_eq!(
                error(ScheduleSpec::Interval {
                    interval_seconds: seconds,
                    anchor_date: None,
                    timezone: "UTC".into()
                }),
                "interval_seconds must be positive"
            );
        }
        assert!(
            error(ScheduleSpec::Interval {
                interval_seconds: f64::INFINITY,
                anchor_date: None,
                timezone: "UTC".into()
            })
            .contains("out of range")
        );
        let rrule_error = |rule: &str| {
            error(ScheduleSpec::Rrule {
                rrule: rule.into(),
                timezone: "UTC".into(),
            })
        };
        assert!(rrule_error("FREQ=SOMETIMES").starts_with(r#"invalid RRULE "FREQ=SOMETIMES": "#));
        assert!(rrule_error("FREQ=DAILY;BYHOUR=25").starts_with("invalid RRULE"));
        assert_eq!(
            rrule_error("DTSTART:20100101T000000Z\nRRULE:FREQ=DAILY;UNTIL=20110101T000000Z"),
            "the RRULE never fires"
        );
        assert_eq!(
            rrule_error("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30"),
            "the RRULE never fires"
        );
    }

    #[test]
    fn preview_returns_n_ascending_times() {
        let s = cron("*/5 * * * *", "Europe/Berlin");
        let after = utc("2026-03-29T00:42:00Z");
        let preview = s.preview(after, 7);
        assert_eq!(preview.len(), 7);
        assert!(preview[0] > after);
        assert!(preview.windows(2).all(|w| w[0] < w[1]));
        assert!(s.preview(after, 0).is_empty());
    }

    #[test]
    fn fire_times_excludes_after_and_includes_until() {
        let s = cron("0 * * * *", "UTC");
        let (ten, twelve) = (utc("2026-01-01T10:00:00Z"), utc("2026-01-01T12:00:00Z"));
        assert_eq!(
            s.fire_times(ten, twelve, 10),
            times(&["2026-01-01T11:00:00Z", "2026-01-01T12:00:00Z"])
        );
        assert_eq!(
            s.fire_times(ten, twelve, 1),
            times(&["2026-01-01T11:00:00Z"])
        );
        assert!(s.fire_times(twelve, ten, 10).is_empty());
        assert!(s.fire_times(ten, ten, 10).is_empty());
        // Sub-second bounds.
        let just_before = ten - Duration::nanoseconds(1);
        assert_eq!(s.fire_times(just_before, ten, 10), vec![ten]);
    }

    #[test]
    fn spec_json_shape() {
        let spec: ScheduleSpec =
            serde_json::from_str(r#"{"type": "cron", "cron": "0 9 * * MON-FRI"}"#).unwrap();
        assert_eq!(
            spec,
            ScheduleSpec::Cron {
                cron: "0 9 * * MON-FRI".into(),
                timezone: "UTC".into()
            }
        );
        let spec: ScheduleSpec =
            serde_json::from_str(r#"{"type": "interval", "interval_seconds": 90}"#).unwrap();
        assert!(matches!(
            spec,
            ScheduleSpec::Interval {
                anchor_date: None,
                ..
            }
        ));
        let json = serde_json::to_value(ScheduleSpec::Rrule {
            rrule: "FREQ=DAILY".into(),
            timezone: "Europe/Berlin".into(),
        })
        .unwrap();
        assert_eq!(
            json,
            serde_json::json!({"type": "rrule", "rrule": "FREQ=DAILY", "timezone": "Europe/Berlin"})
        );
        assert!(
            serde_json::from_str::<ScheduleSpec>(
                r#"{"type": "cron", "cron": "* * * * *", "tz": "UTC"}"#
            )
            .is_err()
        );
    }
}
