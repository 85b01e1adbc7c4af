//! `[retention]`: how long events, dead letters and rollups are kept. Run on a timer by
//! `serve` and once by `llm-meter retention apply`. Spend keeps answering from the
//! rollups after the events of a period are gone; records older than the events horizon
//! are refused by the pipeline (`PipelineConfig::events_retention`), so a replayed old
//! log never counts twice.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Datelike, DurationRound, Utc};
use serde::Deserialize;

use crate::store::{RetentionCutoffs, RetentionReport, Store, StoreError};

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// Events older than this are removed (Postgres: whole months, the partitions that
    /// end before the horizon) and records older than it are refused. Unset: kept.
    #[serde(default, with = "crate::duration_text::optional")]
    pub events: Option<Duration>,
    /// Dead letters received longer ago than this are removed. Unset: kept.
    #[serde(default, with = "crate::duration_text::optional")]
    pub dead_letters: Option<Duration>,
    /// Hourly rollups older than this are removed (spend by hour, and in timezones
    /// off UTC by day, ends there). Unset: kept.
    #[serde(default, with = "crate::duration_text::optional")]
    pub hourly_rollups: Option<Duration>,
    /// Daily rollups older than this are removed (spend by day and week, and over
    /// ranges that start or end inside a month, ends there). Unset: kept.
    #[serde(default, with = "crate::duration_text::optional")]
    pub daily_rollups: Option<Duration>,
    /// Monthly rollups older than this are removed (spend ends there). Unset: kept.
    #[serde(default, with = "crate::duration_text::optional")]
    pub monthly_rollups: Option<Duration>,
    /// How often `serve` applies retention (and, on Postgres, creates the partitions of
    /// the months ahead).
    #[serde(default = "default_every", with = "crate::duration_text")]
    pub every: Duration,
}

fn default_every() -> Duration {
    Duration::from_secs(3600)
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            events: None,
            dead_letters: None,
            hourly_rollups: None,
            daily_rollups: None,
            monthly_rollups: None,
            every: default_every(),
        }
    }
}

/// How much longer than the events the rollups must be kept: Postgres removes events by
/// whole months, so it keeps some up to a month past the horizon.
const ROLLUPS_OUTLIVE_EVENTS: Duration = Duration::from_secs(31 * 86_400);

/// The shortest retention accepted: anything shorter is a typo (`"30s"` for `"30d"`).
const SHORTEST: Duration = Duration::from_secs(86_400);

impl RetentionConfig {
    /// Refuses a retention shorter than a day, or rollups kept for less time than the
    /// events they sum (spend would end before the events do).
    pub fn check(&self) -> Result<(), String> {
        for (name, keep) in self.settings() {
            if let Some(keep) = keep
                && keep < SHORTEST
            {
                return Err(format!(
                    "[retention] {name} = {:?} is shorter than a day",
                    crate::duration_text::format(keep)
                ));
            }
        }
        for (name, keep) in [
            ("hourly_rollups", self.hourly_rollups),
            ("daily_rollups", self.daily_rollups),
            ("monthly_rollups", self.monthly_rollups),
        ] {
            if let (Some(rollups), Some(events)) = (keep, self.events)
                && rollups < events + ROLLUPS_OUTLIVE_EVENTS
            {
                return Err(format!(
                    "[retention] {name} must be at least events + 31d: Postgres keeps events \
                     by whole months, and spend must answer for every event still kept"
                ));
            }
        }
        if self.every < Duration::from_secs(60) {
            return Err("[retention] every is shorter than a minute".to_owned());
        }
        Ok(())
    }

    fn settings(&self) -> [(&'static str, Option<Duration>); 5] {
        [
            ("events", self.events),
            ("dead_letters", self.dead_letters),
            ("hourly_rollups", self.hourly_rollups),
            ("daily_rollups", self.daily_rollups),
            ("monthly_rollups", self.monthly_rollups),
        ]
    }

    /// The cutoffs at `now`.
    pub fn cutoffs(&self, now: DateTime<Utc>) -> RetentionCutoffs {
        let before = |keep: Option<Duration>| {
            keep.and_then(|keep| chrono::Duration::from_std(keep).ok())
                .and_then(|keep| now.checked_sub_signed(keep))
        };
        // A rollup row goes only once its whole hour, day or month is past the cutoff.
        let floor = |time: Option<DateTime<Utc>>, unit: chrono::TimeDelta| {
            time.map(|t| t.duration_trunc(unit).unwrap_or(t))
        };
        let month = |time: Option<DateTime<Utc>>| {
            floor(time, chrono::TimeDelta::days(1)).map(|t| t.with_day(1).unwrap_or(t))
        };
        RetentionCutoffs {
            events: before(self.events),
            dead_letters: before(self.dead_letters),
            hourly_rollups: floor(before(self.hourly_rollups), chrono::TimeDelta::hours(1)),
            daily_rollups: floor(before(self.daily_rollups), chrono::TimeDelta::days(1)),
            monthly_rollups: month(before(self.monthly_rollups)),
        }
    }
}

/// Applies retention once (counts only on a dry run).
pub async fn apply(
    store: &dyn Store,
    config: &RetentionConfig,
    dry_run: bool,
) -> Result<RetentionReport, StoreError> {
    store
        .apply_retention(&config.cutoffs(Utc::now()), dry_run)
        .await
}

/// Applies retention every `config.every` until `stop`, first at start.
pub async fn run(
    store: Arc<dyn Store>,
    config: RetentionConfig,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        match apply(store.as_ref(), &config, false).await {
            Ok(report) if report.removed_anything() => {
                tracing::info!(
                    message = "Retention applied.",
                    partitions = ?report.partitions,
                    dropped_in = ?report.partitions_dropped_in,
                    events = report.events,
                    dead_letters = report.dead_letters,
                    hourly_rollups = report.hourly_rollups,
                    daily_rollups = report.daily_rollups,
                    monthly_rollups = report.monthly_rollups
                );
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(message = "Retention failed; trying again later.", %error),
        }
        tokio::select! {
            _ = tokio::time::sleep(config.every) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
    }
}
