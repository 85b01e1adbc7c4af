//! The values behind the store-derived gauges: spend and savings per project, period to
//! date (today and this month in the metrics timezone), read from the rollups so they
//! survive restarts and agree across replicas. The metrics registry publishes them.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;

use super::calendar::{TimeBucket, bucket_range};
use crate::store::{
    Dimension, Measures, Store, StoreError, UsageAggregate, UsageFilter, UsageQuery,
};

/// What one project spent and saved over a period.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PeriodSpend {
    pub cost: Decimal,
    pub cache_savings: Decimal,
    pub batch_savings: Decimal,
}

impl PeriodSpend {
    /// Adds another period's figures (projects folded together).
    pub fn add(&mut self, other: &PeriodSpend) {
        self.cost += other.cost;
        self.cache_savings += other.cache_savings;
        self.batch_savings += other.batch_savings;
    }
}

impl From<&UsageAggregate> for PeriodSpend {
    fn from(aggregate: &UsageAggregate) -> Self {
        PeriodSpend {
            cost: aggregate.cost,
            cache_savings: aggregate.cache_savings,
            batch_savings: aggregate.batch_savings,
        }
    }
}

/// A project's spend this month and today. A project with spend this month but none
/// today has a zero day, not a missing one.
#[derive(Clone, Debug, PartialEq)]
pub struct ProjectSpend {
    pub project: String,
    pub month: PeriodSpend,
    pub day: PeriodSpend,
}

/// Every project with spend this month (in `tz`), most first, with today's figures.
pub async fn project_spend(
    store: &dyn Store,
    tz: Tz,
    now: DateTime<Utc>,
) -> Result<Vec<ProjectSpend>, StoreError> {
    let by_project = |(from, to): (DateTime<Utc>, DateTime<Utc>)| UsageQuery {
        from,
        to,
        group_by: vec![Dimension::Project],
        filter: UsageFilter::default(),
        // Spend and savings.
        measures: Measures::All,
    };
    let month = store
        .usage(&by_project(bucket_range(now, TimeBucket::Month, tz)))
        .await?;
    let day = store
        .usage(&by_project(bucket_range(now, TimeBucket::Day, tz)))
        .await?;
    let today: HashMap<&str, &UsageAggregate> =
        day.iter().map(|a| (a.keys[0].as_str(), a)).collect();
    let mut month: Vec<&UsageAggregate> = month.iter().collect();
    month.sort_by(|a, b| b.cost.cmp(&a.cost).then_with(|| a.keys.cmp(&b.keys)));
    Ok(month
        .into_iter()
        .map(|aggregate| {
            let project = aggregate.keys[0].as_str();
            ProjectSpend {
                project: project.to_owned(),
                month: aggregate.into(),
                day: today
                    .get(project)
                    .map_or_else(PeriodSpend::default, |a| (*a).into()),
            }
        })
        .collect())
}
