//! Calendar buckets in a timezone: the start of the hour, day, week (Monday), month,
//! quarter or year an instant falls in, and the start of the next one. DST-aware: a
//! spring-forward day holds 23 hours, and a midnight that does not exist starts at the
//! first instant after it.

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

use crate::store::Dimension;

/// A time bucket of a report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeBucket {
    Hour,
    Day,
    Week,
    Month,
    Quarter,
    Year,
}

/// The store-level time slot a bucket is built from: UTC months (read from the monthly
/// rollups) when the buckets are UTC months, quarters or years; UTC days (the daily
/// rollups) for UTC days and weeks; hours otherwise.
pub fn time_dimension(bucket: TimeBucket, tz: Tz) -> Dimension {
    let utc = matches!(
        tz,
        Tz::UTC | Tz::Etc__UTC | Tz::GMT | Tz::Etc__GMT | Tz::Zulu
    );
    match bucket {
        TimeBucket::Month | TimeBucket::Quarter | TimeBucket::Year if utc => Dimension::Month,
        TimeBucket::Day | TimeBucket::Week if utc => Dimension::Day,
        _ => Dimension::Hour,
    }
}

/// The start of the UTC hour an instant falls in.
pub fn hour_start(time: DateTime<Utc>) -> DateTime<Utc> {
    time.with_minute(0)
        .and_then(|t| t.with_second(0))
        .and_then(|t| t.with_nanosecond(0))
        .unwrap_or(time)
}

/// The start of the bucket an hour falls in, in `tz`, as RFC 3339 with its offset.
pub fn bucket_start(hour: DateTime<Utc>, bucket: TimeBucket, tz: Tz) -> String {
    bucket_start_time(hour, bucket, tz).to_rfc3339()
}

/// The start of the bucket an instant falls in, in `tz`.
pub fn bucket_start_time(time: DateTime<Utc>, bucket: TimeBucket, tz: Tz) -> DateTime<Tz> {
    let local = time.with_timezone(&tz);
    let date = local.date_naive();
    let start_date = match bucket {
        TimeBucket::Hour => {
            return local
                .with_minute(0)
                .and_then(|t| t.with_second(0))
                .and_then(|t| t.with_nanosecond(0))
                .unwrap_or(local);
        }
        TimeBucket::Day => date,
        TimeBucket::Week => date - Duration::days(i64::from(date.weekday().num_days_from_monday())),
        TimeBucket::Month => date.with_day(1).unwrap_or(date),
        TimeBucket::Quarter => {
            NaiveDate::from_ymd_opt(date.year(), (date.month0() / 3) * 3 + 1, 1).unwrap_or(date)
        }
        TimeBucket::Year => NaiveDate::from_ymd_opt(date.year(), 1, 1).unwrap_or(date),
    };
    local_midnight(start_date, tz).unwrap_or(local)
}

/// The start of the bucket after the one starting at `start`.
pub fn next_bucket_start(start: DateTime<Tz>, bucket: TimeBucket, tz: Tz) -> DateTime<Tz> {
    let date = start.date_naive();
    let next_date = match bucket {
        TimeBucket::Hour => {
            return (start.with_timezone(&Utc) + Duration::hours(1)).with_timezone(&tz);
        }
        TimeBucket::Day => date + Duration::days(1),
        TimeBucket::Week => date + Duration::days(7),
        TimeBucket::Month | TimeBucket::Quarter | TimeBucket::Year => {
            let months = match bucket {
                TimeBucket::Month => 1,
                TimeBucket::Quarter => 3,
                _ => 12,
            };
            date.checked_add_months(chrono::Months::new(months))
                .unwrap_or(date + Duration::days(31 * i64::from(months)))
        }
    };
    local_midnight(next_date, tz).unwrap_or(start)
}

/// The `[start, end)` in UTC of the bucket `time` falls in.
pub fn bucket_range(
    time: DateTime<Utc>,
    bucket: TimeBucket,
    tz: Tz,
) -> (DateTime<Utc>, DateTime<Utc>) {
    let start = bucket_start_time(time, bucket, tz);
    let end = next_bucket_start(start, bucket, tz);
    (start.with_timezone(&Utc), end.with_timezone(&Utc))
}

/// The first instant of a local date (midnight may not exist: a DST gap at 00:00).
pub fn local_midnight(date: NaiveDate, tz: Tz) -> Option<DateTime<Tz>> {
    let midnight = date.and_hms_opt(0, 0, 0)?;
    tz.from_local_datetime(&midnight).earliest().or_else(|| {
        tz.from_local_datetime(&(midnight + Duration::hours(1)))
            .earliest()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_follow_the_timezone_across_dst() {
        let oslo: Tz = "Europe/Oslo".parse().unwrap();
        // 2026-03-29 01:00 UTC is 03:00 CEST, after the spring-forward at 02:00 local.
        let hour = Utc.with_ymd_and_hms(2026, 3, 29, 1, 0, 0).unwrap();
        assert_eq!(
            bucket_start(hour, TimeBucket::Day, oslo),
            "2026-03-29T00:00:00+01:00"
        );
        assert_eq!(
            bucket_start(hour, TimeBucket::Month, oslo),
            "2026-03-01T00:00:00+01:00"
        );
        // 2026-03-31 22:00 UTC is already April in Oslo (CEST, +02:00).
        let late = Utc.with_ymd_and_hms(2026, 3, 31, 22, 0, 0).unwrap();
        assert_eq!(
            bucket_start(late, TimeBucket::Month, oslo),
            "2026-04-01T00:00:00+02:00"
        );
        // Weeks start on Monday: 2026-03-29 is a Sunday.
        assert_eq!(
            bucket_start(hour, TimeBucket::Week, oslo),
            "2026-03-23T00:00:00+01:00"
        );
        // The spring-forward day is 23 hours long.
        let (start, end) = bucket_range(hour, TimeBucket::Day, oslo);
        assert_eq!(end - start, Duration::hours(23));
    }
}
