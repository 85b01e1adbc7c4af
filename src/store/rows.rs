//! What both backends write, computed once in Rust: events flattened into column values
//! (money as integers), the first copy of each key, and the hourly rollup groups.

use std::collections::BTreeMap;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use rust_decimal::Decimal;

use super::{NewEvent, UsageAggregate};
use crate::money;
use crate::pricing::PriceOutcome;
use crate::usage::Tokens;

/// A count as the stores keep it. Counts are bounded at 1e9 per bucket by the parser;
/// saturate rather than wrap all the same.
pub(crate) fn count(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

pub(crate) fn unsigned(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// The type of a stored column, for backends that spell types differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ColumnKind {
    Text,
    Integer,
    Boolean,
    Time,
    Json,
}

/// The columns of `events`, in the order rows are written.
pub(crate) const EVENT_COLUMNS: [(&str, ColumnKind); 32] = [
    ("project", ColumnKind::Text),
    ("id", ColumnKind::Text),
    ("time", ColumnKind::Time),
    ("provider", ColumnKind::Text),
    ("model", ColumnKind::Text),
    ("resolved_model", ColumnKind::Text),
    ("input", ColumnKind::Integer),
    ("cached_input", ColumnKind::Integer),
    ("cache_write_5m", ColumnKind::Integer),
    ("cache_write_1h", ColumnKind::Integer),
    ("output", ColumnKind::Integer),
    ("reasoning", ColumnKind::Integer),
    ("batch", ColumnKind::Boolean),
    ("service_tier", ColumnKind::Text),
    ("reasoning_effort", ColumnKind::Text),
    ("tags", ColumnKind::Json),
    ("user_id", ColumnKind::Text),
    ("cost_nanos", ColumnKind::Integer),
    ("list_cost_nanos", ColumnKind::Integer),
    ("price_ref", ColumnKind::Text),
    ("unpriced_reason", ColumnKind::Text),
    ("reported_cost_nanos", ColumnKind::Integer),
    ("input_cost_picos", ColumnKind::Integer),
    ("cached_input_cost_picos", ColumnKind::Integer),
    ("cache_write_5m_cost_picos", ColumnKind::Integer),
    ("cache_write_1h_cost_picos", ColumnKind::Integer),
    ("output_cost_picos", ColumnKind::Integer),
    ("reasoning_cost_picos", ColumnKind::Integer),
    ("cache_savings_nanos", ColumnKind::Integer),
    ("batch_savings_nanos", ColumnKind::Integer),
    ("ingested_at", ColumnKind::Time),
    ("source", ColumnKind::Text),
];

/// One event as column values.
pub(crate) struct EventRow<'e> {
    pub event: &'e NewEvent,
    /// The sheet's model id, when the name resolved to one.
    pub resolved_model: Option<&'e str>,
    /// The rollup's model: the resolved id, else the name as written.
    pub rollup_model: &'e str,
    pub tokens: [i64; 6],
    pub tags_json: String,
    pub cost_nanos: Option<i64>,
    pub list_cost_nanos: Option<i64>,
    pub price_ref: Option<&'e str>,
    pub unpriced_reason: Option<&'e str>,
    pub reported_cost_nanos: Option<i64>,
    pub bucket_picos: [i64; 6],
    pub cache_savings_nanos: i64,
    pub batch_savings_nanos: i64,
    pub hour: DateTime<Utc>,
}

impl<'e> EventRow<'e> {
    pub fn new(event: &'e NewEvent) -> EventRow<'e> {
        let record = &event.priced.record;
        let (savings_cache, savings_batch) = match &event.priced.price {
            PriceOutcome::Priced(p) => (
                money::to_nanos(p.cache_savings),
                money::to_nanos(p.batch_savings),
            ),
            PriceOutcome::Unpriced(_) => (0, 0),
        };
        let (resolved_model, cost, list_cost, price_ref, reason, shares) = match &event.priced.price
        {
            PriceOutcome::Priced(p) => (
                Some(p.model_id.as_str()),
                Some(p.cost),
                Some(p.list_cost),
                Some(p.price_ref.as_str()),
                None,
                p.bucket_costs,
            ),
            PriceOutcome::Unpriced(u) => (
                u.resolved_model
                    .as_deref()
                    .and_then(|name| name.rsplit_once('/'))
                    .map(|(_, id)| id),
                None,
                None,
                None,
                Some(u.reason.as_str()),
                [Decimal::ZERO; 6],
            ),
        };
        let mut tokens = [0; 6];
        for (slot, (_, value)) in tokens.iter_mut().zip(record.tokens.iter()) {
            *slot = count(value);
        }
        EventRow {
            event,
            resolved_model,
            rollup_model: resolved_model.unwrap_or(&record.model),
            tokens,
            tags_json: serde_json::to_string(&record.tags).unwrap_or_else(|_| "{}".into()),
            cost_nanos: cost.map(money::to_nanos),
            list_cost_nanos: list_cost.map(money::to_nanos),
            price_ref,
            unpriced_reason: reason,
            reported_cost_nanos: record.reported_cost.map(money::to_nanos),
            bucket_picos: shares.map(money::to_picos),
            cache_savings_nanos: savings_cache,
            batch_savings_nanos: savings_batch,
            hour: record
                .time
                .duration_trunc(TimeDelta::hours(1))
                .unwrap_or(record.time),
        }
    }
}

/// The events of a write, deduplicated: the first copy of each (project, id) only,
/// sorted by key (so concurrent writers take locks in the same order).
pub(crate) struct UniqueEvents<'e> {
    pub rows: Vec<EventRow<'e>>,
    /// Per input event, in input order: is it the first copy of its key in the write?
    pub first_copies: Vec<bool>,
}

pub(crate) fn unique_events<'e>(events: &[&'e NewEvent]) -> UniqueEvents<'e> {
    let key = |i: usize| {
        let record = &events[i].priced.record;
        (record.project.as_str(), record.id.as_str())
    };
    // A stable sort keeps the first copy of a key first in its run of equal keys.
    let mut order: Vec<usize> = (0..events.len()).collect();
    order.sort_by(|&a, &b| key(a).cmp(&key(b)));
    let mut first_copies = vec![false; events.len()];
    let mut rows = Vec::with_capacity(events.len());
    for (position, &index) in order.iter().enumerate() {
        if position == 0 || key(order[position - 1]) != key(index) {
            first_copies[index] = true;
            rows.push(EventRow::new(events[index]));
        }
    }
    UniqueEvents { rows, first_copies }
}

/// (project, hour, provider, model, service tier, batch, reasoning effort, tags JSON).
pub(crate) type RollupKey<'e> = (
    &'e str,
    DateTime<Utc>,
    &'e str,
    &'e str,
    &'e str,
    bool,
    &'e str,
    &'e str,
);

/// The key columns of `rollups_hourly`, in `RollupKey` order.
pub(crate) const ROLLUP_KEY_COLUMNS: &str =
    "project, hour, provider, model, service_tier, batch, reasoning_effort, tags";

/// The sums of one hourly rollup group.
#[derive(Default, Debug, Clone, PartialEq)]
pub(crate) struct RollupSums {
    pub requests: i64,
    pub unpriced: i64,
    pub tokens: [i64; 6],
    pub cost_nanos: i64,
    pub list_cost_nanos: i64,
    pub reported_cost_nanos: i64,
    pub bucket_picos: [i64; 6],
    pub cache_savings_nanos: i64,
    pub batch_savings_nanos: i64,
}

/// The rollup value columns, in the order `RollupSums::values` gives them.
pub(crate) const ROLLUP_VALUE_COLUMNS: [&str; 19] = [
    "requests",
    "unpriced_requests",
    "input",
    "cached_input",
    "cache_write_5m",
    "cache_write_1h",
    "output",
    "reasoning",
    "cost_nanos",
    "list_cost_nanos",
    "reported_cost_nanos",
    "input_cost_picos",
    "cached_input_cost_picos",
    "cache_write_5m_cost_picos",
    "cache_write_1h_cost_picos",
    "output_cost_picos",
    "reasoning_cost_picos",
    "cache_savings_nanos",
    "batch_savings_nanos",
];

impl RollupSums {
    /// The values of `ROLLUP_VALUE_COLUMNS`, in that order.
    pub fn values(&self) -> [i64; 19] {
        let mut values = [0; 19];
        values[0] = self.requests;
        values[1] = self.unpriced;
        values[2..8].copy_from_slice(&self.tokens);
        values[8] = self.cost_nanos;
        values[9] = self.list_cost_nanos;
        values[10] = self.reported_cost_nanos;
        values[11..17].copy_from_slice(&self.bucket_picos);
        values[17] = self.cache_savings_nanos;
        values[18] = self.batch_savings_nanos;
        values
    }

    /// Subtracts another group's sums (reprice moves a record out of its old group).
    pub fn negated(&self) -> RollupSums {
        RollupSums {
            requests: -self.requests,
            unpriced: -self.unpriced,
            tokens: self.tokens.map(|t| -t),
            cost_nanos: -self.cost_nanos,
            list_cost_nanos: -self.list_cost_nanos,
            reported_cost_nanos: -self.reported_cost_nanos,
            bucket_picos: self.bucket_picos.map(|p| -p),
            cache_savings_nanos: -self.cache_savings_nanos,
            batch_savings_nanos: -self.batch_savings_nanos,
        }
    }
}

/// The rollup value sums of a usage query, `coalesce(sum(column), 0)` each, with `cast`
/// appended (Postgres sums bigints into numerics).
pub(crate) fn usage_sums(cast: &str) -> String {
    ROLLUP_VALUE_COLUMNS
        .iter()
        .map(|c| format!("coalesce(sum({c}), 0){cast}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One event's contribution to each rollup value column, as SQL over `events`.
pub(crate) fn event_usage_values() -> String {
    let mut values = vec![
        "1".to_owned(),
        "CASE WHEN cost_nanos IS NULL THEN 1 ELSE 0 END".to_owned(),
    ];
    values.extend(
        ROLLUP_VALUE_COLUMNS[2..]
            .iter()
            .map(|c| format!("coalesce({c}, 0)")),
    );
    values.join(", ")
}

/// Fills an aggregate's sums from the values of `ROLLUP_VALUE_COLUMNS`, in that order.
pub(crate) fn fill_aggregate(aggregate: &mut UsageAggregate, values: &[i64; 19]) {
    aggregate.requests = unsigned(values[0]);
    aggregate.unpriced_requests = unsigned(values[1]);
    aggregate.tokens = Tokens {
        input: unsigned(values[2]),
        cached_input: unsigned(values[3]),
        cache_write_5m: unsigned(values[4]),
        cache_write_1h: unsigned(values[5]),
        output: unsigned(values[6]),
        reasoning: unsigned(values[7]),
    };
    aggregate.cost = money::from_nanos(values[8]);
    aggregate.list_cost = money::from_nanos(values[9]);
    aggregate.reported_cost = money::from_nanos(values[10]);
    for (slot, picos) in aggregate.bucket_costs.iter_mut().zip(&values[11..17]) {
        *slot = money::from_picos(*picos);
    }
    aggregate.cache_savings = money::from_nanos(values[17]);
    aggregate.batch_savings = money::from_nanos(values[18]);
}

/// `SET column = column + excluded.column` for every rollup value column.
pub(crate) fn rollup_increments(table_alias: &str) -> String {
    ROLLUP_VALUE_COLUMNS
        .iter()
        .map(|c| format!("{c} = {table_alias}{c} + excluded.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Groups inserted events into hourly rollup groups, sorted by key.
pub(crate) fn rollup_groups<'r, 'e: 'r>(
    rows: impl IntoIterator<Item = &'r EventRow<'e>>,
) -> BTreeMap<RollupKey<'r>, RollupSums> {
    let mut groups: BTreeMap<RollupKey<'r>, RollupSums> = BTreeMap::new();
    for row in rows {
        let record = &row.event.priced.record;
        let key = (
            record.project.as_str(),
            row.hour,
            record.provider.as_str(),
            row.rollup_model,
            record.service_tier.as_str(),
            record.batch,
            record.reasoning_effort.as_deref().unwrap_or_default(),
            row.tags_json.as_str(),
        );
        let sums = groups.entry(key).or_default();
        sums.requests += 1;
        if row.cost_nanos.is_none() {
            sums.unpriced += 1;
        }
        for (slot, value) in sums.tokens.iter_mut().zip(row.tokens) {
            *slot += value;
        }
        sums.cost_nanos += row.cost_nanos.unwrap_or(0);
        sums.list_cost_nanos += row.list_cost_nanos.unwrap_or(0);
        sums.reported_cost_nanos += row.reported_cost_nanos.unwrap_or(0);
        for (slot, value) in sums.bucket_picos.iter_mut().zip(row.bucket_picos) {
            *slot += value;
        }
        sums.cache_savings_nanos += row.cache_savings_nanos;
        sums.batch_savings_nanos += row.batch_savings_nanos;
    }
    groups
}

/// `[from, to)` cut to the whole hours inside it: rollups answer those, events the rest.
pub(crate) fn whole_hours(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> (DateTime<Utc>, DateTime<Utc>) {
    let hour = TimeDelta::hours(1);
    let floor = |t: DateTime<Utc>| t.duration_trunc(hour).unwrap_or(t);
    let whole_from = if floor(from) == from {
        from
    } else {
        floor(from) + hour
    };
    let whole_to = floor(to);
    (whole_from, whole_to.max(whole_from))
}
