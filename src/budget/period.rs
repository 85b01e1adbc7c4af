//! Budget periods: calendar periods in a timezone, or the spans between consecutive fire
//! times of a cron expression. Pure.

use std::str::FromStr;

use chrono::{DateTime, DurationRound, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;

use super::PeriodSpec;
use crate::report::calendar::{TimeBucket, bucket_start_time, next_bucket_start};

#[derive(Clone, Debug)]
pub enum Period {
    Calendar(TimeBucket),
    /// Boxed: a parsed schedule is large.
    Cron(Box<cron::Schedule>),
}

impl PartialEq for Period {
    fn eq(&self, other: &Period) -> bool {
        match (self, other) {
            (Period::Calendar(a), Period::Calendar(b)) => a == b,
            (Period::Cron(a), Period::Cron(b)) => a.source() == b.source(),
            _ => false,
        }
    }
}

impl Period {
    pub fn from_spec(spec: &PeriodSpec) -> Result<Period, String> {
        match spec {
            PeriodSpec::Named(name) => match name.as_str() {
                "day" => Ok(Period::Calendar(TimeBucket::Day)),
                "week" => Ok(Period::Calendar(TimeBucket::Week)),
                "month" => Ok(Period::Calendar(TimeBucket::Month)),
                "quarter" => Ok(Period::Calendar(TimeBucket::Quarter)),
                "year" => Ok(Period::Calendar(TimeBucket::Year)),
                other => Err(format!(
                    "{other:?} is not day, week, month, quarter, year or {{\"cron\": \"…\"}}"
                )),
            },
            PeriodSpec::Cron { cron } => {
                let schedule = cron::Schedule::from_str(cron).map_err(|e| {
                    format!("cron {cron:?}: {e} (6 fields, seconds first: \"0 0 0 1 */3 *\")")
                })?;
                // A schedule that never fires again has no current period.
                if schedule.upcoming(Utc).take(2).count() < 2 {
                    return Err(format!("cron {cron:?} does not fire again"));
                }
                Ok(Period::Cron(Box::new(schedule)))
            }
        }
    }

    /// The period holding `now`, `[start, end)`, in `tz`.
    pub fn at(&self, now: DateTime<Utc>, tz: Tz) -> (DateTime<Utc>, DateTime<Utc>) {
        match self {
            Period::Calendar(bucket) => {
                let start = bucket_start_time(now, *bucket, tz);
                let end = next_bucket_start(start, *bucket, tz);
                (start.with_timezone(&Utc), end.with_timezone(&Utc))
            }
            Period::Cron(schedule) => {
                // Cron has one-second resolution: the latest fire time at or before `now`
                // is the last one strictly before the next whole second.
                let second = now
                    .duration_trunc(TimeDelta::seconds(1))
                    .unwrap_or(now)
                    .with_timezone(&tz);
                // Walking back from the next second: the first fire time not after `now`.
                // (In a repeated DST hour cron can hand back the later occurrence first.)
                let mut back = schedule.after(&(second + TimeDelta::seconds(1)));
                let start = std::iter::from_fn(|| back.next_back())
                    .map(|t| t.with_timezone(&Utc))
                    .take(8)
                    .find(|t| *t <= now);
                let end = schedule
                    .after(&second)
                    .next()
                    .map(|t| t.with_timezone(&Utc));
                // Before the first fire time or after the last: one open-ended span.
                let open_end = || {
                    Utc.with_ymd_and_hms(9999, 1, 1, 0, 0, 0)
                        .single()
                        .unwrap_or(now)
                };
                (
                    start.unwrap_or(DateTime::UNIX_EPOCH),
                    end.unwrap_or_else(open_end),
                )
            }
        }
    }
}
