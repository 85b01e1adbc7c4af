//! What both backends write, computed once in Rust: events flattened into column values
//! (money as integers), the first copy of each key, and the hourly rollup groups.

use std::collections::BTreeMap;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use rust_decimal::Decimal;

use super::{
    EventScan, Measures, NewEvent, PriceFn, RepriceScope, RepriceSummary, StoreError,
    UsageAggregate,
};
use crate::money;
use crate::prepare::PricedRecord;
use crate::pricing::{PriceOutcome, Priced, Unpriced};
use crate::usage::{Bucket, Tokens, UsageRecord};

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
        let (cost, list_cost, price_ref, reason, shares) = match &event.priced.price {
            PriceOutcome::Priced(p) => (
                Some(p.cost),
                Some(p.list_cost),
                Some(p.price_ref.as_str()),
                None,
                p.bucket_costs,
            ),
            PriceOutcome::Unpriced(u) => (
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
            resolved_model: event.priced.resolved_model(),
            rollup_model: event.priced.rollup_model(),
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

/// The two rollup tables: the same sums by UTC hour and by UTC day, written together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Rollup {
    Hourly,
    Daily,
}

impl Rollup {
    pub const BOTH: [Rollup; 2] = [Rollup::Hourly, Rollup::Daily];

    pub fn table(self) -> &'static str {
        match self {
            Rollup::Hourly => "rollups_hourly",
            Rollup::Daily => "rollups_daily",
        }
    }

    /// The column holding the start of the group's hour or day.
    pub fn time_column(self) -> &'static str {
        match self {
            Rollup::Hourly => "hour",
            Rollup::Daily => "day",
        }
    }

    /// The key columns, in `RollupKey` order.
    pub fn key_columns(self) -> String {
        format!(
            "project, {}, provider, model, service_tier, batch, reasoning_effort, tags",
            self.time_column()
        )
    }

    /// Hourly groups as this table keys them.
    pub fn groups<'r>(
        self,
        hourly: BTreeMap<RollupKey<'r>, RollupSums>,
    ) -> BTreeMap<RollupKey<'r>, RollupSums> {
        match self {
            Rollup::Hourly => hourly,
            Rollup::Daily => {
                let mut daily: BTreeMap<RollupKey<'r>, RollupSums> = BTreeMap::new();
                for (mut key, sums) in hourly {
                    key.1 = floor_day(key.1);
                    daily.entry(key).or_default().add_scaled(&sums, 1);
                }
                daily.retain(|_, sums| *sums != RollupSums::default());
                daily
            }
        }
    }
}

/// The UTC midnight starting the day an instant falls in.
pub(crate) fn floor_day(time: DateTime<Utc>) -> DateTime<Utc> {
    time.duration_trunc(TimeDelta::days(1)).unwrap_or(time)
}

/// Where each part of a usage query's range is read from: whole UTC days from the daily
/// rollups (when the query allows), whole hours from the hourly ones, the partial hours
/// at either end from the events.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct UsagePlan {
    pub daily: Vec<(DateTime<Utc>, DateTime<Utc>)>,
    pub hourly: Vec<(DateTime<Utc>, DateTime<Utc>)>,
    pub events: Vec<(DateTime<Utc>, DateTime<Utc>)>,
}

pub(crate) fn usage_plan(from: DateTime<Utc>, to: DateTime<Utc>, use_daily: bool) -> UsagePlan {
    let mut plan = UsagePlan::default();
    let (whole_from, whole_to) = whole_hours(from, to);
    if whole_from >= whole_to {
        plan.events.push((from, to));
        return plan;
    }
    plan.events = [(from, whole_from), (whole_to, to)]
        .into_iter()
        .filter(|(a, b)| a < b)
        .collect();
    let day = TimeDelta::days(1);
    let first_day = if floor_day(whole_from) == whole_from {
        whole_from
    } else {
        floor_day(whole_from) + day
    };
    let last_day = floor_day(whole_to);
    if use_daily && first_day < last_day {
        plan.daily.push((first_day, last_day));
        plan.hourly = [(whole_from, first_day), (last_day, whole_to)]
            .into_iter()
            .filter(|(a, b)| a < b)
            .collect();
    } else {
        plan.hourly.push((whole_from, whole_to));
    }
    plan
}

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

    /// Adds (`sign` 1) or subtracts (`sign` -1) another group's sums.
    pub fn add_scaled(&mut self, other: &RollupSums, sign: i64) {
        self.requests += sign * other.requests;
        self.unpriced += sign * other.unpriced;
        for (slot, value) in self.tokens.iter_mut().zip(other.tokens) {
            *slot += sign * value;
        }
        self.cost_nanos += sign * other.cost_nanos;
        self.list_cost_nanos += sign * other.list_cost_nanos;
        self.reported_cost_nanos += sign * other.reported_cost_nanos;
        for (slot, value) in self.bucket_picos.iter_mut().zip(other.bucket_picos) {
            *slot += sign * value;
        }
        self.cache_savings_nanos += sign * other.cache_savings_nanos;
        self.batch_savings_nanos += sign * other.batch_savings_nanos;
    }
}

/// Which rollup value columns a query needs: spend alone (counts, tokens, cost) or all.
fn measured(measures: Measures) -> impl Iterator<Item = (&'static str, bool)> {
    ROLLUP_VALUE_COLUMNS
        .iter()
        .enumerate()
        .map(move |(i, c)| (*c, measures == Measures::All || i < 9))
}

/// How a backend sums rollup values without overflow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SumStyle {
    /// Postgres: the sum of a bigint is an exact numeric.
    Numeric,
    /// SQLite sums in 64 bits: pico-dollar columns (which pass 2^63 at $9.2M) are summed
    /// as two parts, millionths of a dollar and the rest.
    SplitPicos,
}

/// What divides a pico-dollar column into its two summed parts (`SumStyle::SplitPicos`).
pub(crate) const PICOS_SPLIT: i64 = 1_000_000;

/// The per-bucket cost columns, which hold pico-dollars.
pub(crate) fn is_picos_column(index: usize) -> bool {
    (11..17).contains(&index)
}

/// The rollup value sums of a usage query, in `ROLLUP_VALUE_COLUMNS` order (two columns
/// each for pico-dollars with `SplitPicos`); zero for columns not measured.
pub(crate) fn usage_sums(style: SumStyle, measures: Measures) -> String {
    measured(measures)
        .enumerate()
        .map(|(i, (c, needed))| match (style, needed) {
            (SumStyle::Numeric, true) => format!("coalesce(sum({c}), 0)::numeric"),
            (SumStyle::Numeric, false) => "0::numeric".to_owned(),
            (SumStyle::SplitPicos, true) if is_picos_column(i) => format!(
                "coalesce(sum({c} / {PICOS_SPLIT}), 0), coalesce(sum({c} % {PICOS_SPLIT}), 0)"
            ),
            (SumStyle::SplitPicos, false) if is_picos_column(i) => "0, 0".to_owned(),
            (SumStyle::SplitPicos, true) => format!("coalesce(sum({c}), 0)"),
            (SumStyle::SplitPicos, false) => "0".to_owned(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The measured value columns, as the inner parts of a usage query select them.
pub(crate) fn measured_columns(measures: Measures) -> String {
    measured(measures)
        .filter(|(_, needed)| *needed)
        .map(|(c, _)| c)
        .collect::<Vec<_>>()
        .join(", ")
}

/// One event's contribution to each measured rollup value column, as SQL over `events`.
pub(crate) fn event_usage_values(measures: Measures) -> String {
    measured(measures)
        .filter(|(_, needed)| *needed)
        .map(|(c, _)| match c {
            // Named: when the events come first in the UNION, they name its columns.
            "requests" => "1 AS requests".to_owned(),
            "unpriced_requests" => {
                "CASE WHEN cost_nanos IS NULL THEN 1 ELSE 0 END AS unpriced_requests".to_owned()
            }
            other => format!("coalesce({other}, 0) AS {other}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Fills an aggregate's sums from the values of `ROLLUP_VALUE_COLUMNS`, in that order.
pub(crate) fn fill_aggregate(aggregate: &mut UsageAggregate, values: &[i128; 19]) {
    let count = |value: i128| u64::try_from(value).unwrap_or(0);
    let nanos = |value: i128| Decimal::from_i128_with_scale(value, 9).normalize();
    aggregate.requests = count(values[0]);
    aggregate.unpriced_requests = count(values[1]);
    aggregate.tokens = Tokens {
        input: count(values[2]),
        cached_input: count(values[3]),
        cache_write_5m: count(values[4]),
        cache_write_1h: count(values[5]),
        output: count(values[6]),
        reasoning: count(values[7]),
    };
    aggregate.cost = nanos(values[8]);
    aggregate.list_cost = nanos(values[9]);
    aggregate.reported_cost = nanos(values[10]);
    for (slot, picos) in aggregate.bucket_costs.iter_mut().zip(&values[11..17]) {
        *slot = Decimal::from_i128_with_scale(*picos, 12).normalize();
    }
    aggregate.cache_savings = nanos(values[17]);
    aggregate.batch_savings = nanos(values[18]);
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
        // A group's bucket shares pass 2^63 pico-dollars ($9.2M) only with over $9.2M of
        // one token type in one group and day: saturate rather than wrap.
        for (slot, value) in sums.bucket_picos.iter_mut().zip(row.bucket_picos) {
            *slot = slot.saturating_add(value);
        }
        sums.cache_savings_nanos += row.cache_savings_nanos;
        sums.batch_savings_nanos += row.batch_savings_nanos;
    }
    groups
}

/// The start of the hour an instant falls in.
pub(crate) fn floor_hour(time: DateTime<Utc>) -> DateTime<Utc> {
    time.duration_trunc(TimeDelta::hours(1)).unwrap_or(time)
}

/// `[from, to)` cut to the whole hours inside it: rollups answer those, events the rest.
pub(crate) fn whole_hours(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> (DateTime<Utc>, DateTime<Utc>) {
    let whole_from = if floor_hour(from) == from {
        from
    } else {
        floor_hour(from) + TimeDelta::hours(1)
    };
    let whole_to = floor_hour(to);
    (whole_from, whole_to.max(whole_from))
}

/// The `events` columns a reprice updates, in `EventRow::pricing_columns` order.
pub(crate) const PRICING_COLUMNS: [(&str, ColumnKind); 13] = [
    ("resolved_model", ColumnKind::Text),
    ("cost_nanos", ColumnKind::Integer),
    ("list_cost_nanos", ColumnKind::Integer),
    ("price_ref", ColumnKind::Text),
    ("unpriced_reason", ColumnKind::Text),
    ("input_cost_picos", ColumnKind::Integer),
    ("cached_input_cost_picos", ColumnKind::Integer),
    ("cache_write_5m_cost_picos", ColumnKind::Integer),
    ("cache_write_1h_cost_picos", ColumnKind::Integer),
    ("output_cost_picos", ColumnKind::Integer),
    ("reasoning_cost_picos", ColumnKind::Integer),
    ("cache_savings_nanos", ColumnKind::Integer),
    ("batch_savings_nanos", ColumnKind::Integer),
];

/// The `events` columns a scan reads, in `EVENT_COLUMNS` order: all but the ingestion
/// metadata (`ingested_at`, `source`).
/// `json_cast` is appended to JSON columns (Postgres reads `jsonb` as text with `::text`).
pub(crate) fn scan_columns(json_cast: &str) -> String {
    EVENT_COLUMNS[..SCAN_COLUMN_COUNT]
        .iter()
        .map(|(name, kind)| match kind {
            ColumnKind::Json => format!("{name}{json_cast}"),
            _ => (*name).to_owned(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) const SCAN_COLUMN_COUNT: usize = EVENT_COLUMNS.len() - 2;

/// A stored event's columns, decoded by a backend from its own types.
pub(crate) struct StoredColumns {
    pub project: String,
    pub id: String,
    pub time: DateTime<Utc>,
    pub provider: String,
    pub model: String,
    pub resolved_model: Option<String>,
    pub tokens: [i64; 6],
    pub batch: bool,
    pub service_tier: String,
    pub reasoning_effort: Option<String>,
    pub tags_json: String,
    pub user: Option<String>,
    pub cost_nanos: Option<i64>,
    pub list_cost_nanos: Option<i64>,
    pub price_ref: Option<String>,
    pub unpriced_reason: Option<String>,
    pub reported_cost_nanos: Option<i64>,
    pub bucket_picos: [i64; 6],
    pub cache_savings_nanos: i64,
    pub batch_savings_nanos: i64,
}

impl StoredColumns {
    /// The record and its stored price; `EventRow::new` of the result gives back exactly
    /// these columns.
    pub fn into_priced(self) -> PricedRecord {
        let mut tokens = Tokens::default();
        for (bucket, value) in Bucket::ALL.into_iter().zip(self.tokens) {
            tokens.set(bucket, unsigned(value));
        }
        let price = match self.cost_nanos {
            Some(cost) => PriceOutcome::Priced(Priced {
                cost: money::from_nanos(cost),
                list_cost: money::from_nanos(self.list_cost_nanos.unwrap_or(cost)),
                price_ref: self.price_ref.unwrap_or_default(),
                resolved_model: format!(
                    "{}/{}",
                    self.provider,
                    self.resolved_model.as_deref().unwrap_or(&self.model)
                ),
                model_id: self.resolved_model.unwrap_or_else(|| self.model.clone()),
                bucket_costs: self.bucket_picos.map(money::from_picos),
                cache_savings: money::from_nanos(self.cache_savings_nanos),
                batch_savings: money::from_nanos(self.batch_savings_nanos),
            }),
            None => PriceOutcome::Unpriced(Unpriced {
                reason: self.unpriced_reason.unwrap_or_default(),
                resolved_model: self
                    .resolved_model
                    .map(|id| format!("{}/{id}", self.provider)),
            }),
        };
        PricedRecord {
            record: UsageRecord {
                id: self.id,
                time: self.time,
                project: self.project,
                provider: self.provider,
                model: self.model,
                tokens,
                batch: self.batch,
                service_tier: self.service_tier,
                tags: serde_json::from_str(&self.tags_json).unwrap_or_default(),
                user: self.user,
                reasoning_effort: self.reasoning_effort,
                reported_cost: self.reported_cost_nanos.map(money::from_nanos),
            },
            price,
        }
    }
}

/// The columns a reprice may change, as `EventRow` holds them.
type PricingColumns<'e> = (
    Option<&'e str>,
    Option<i64>,
    Option<i64>,
    Option<&'e str>,
    Option<&'e str>,
    [i64; 6],
    i64,
    i64,
);

impl<'e> EventRow<'e> {
    pub fn pricing_columns(&self) -> PricingColumns<'_> {
        (
            self.resolved_model,
            self.cost_nanos,
            self.list_cost_nanos,
            self.price_ref,
            self.unpriced_reason,
            self.bucket_picos,
            self.cache_savings_nanos,
            self.batch_savings_nanos,
        )
    }
}

/// A window of stored events priced again: the events whose price changed (before and
/// after) and the totals.
#[derive(Default)]
pub(crate) struct Repriced {
    pub old: Vec<NewEvent>,
    pub new: Vec<NewEvent>,
    pub summary: RepriceSummary,
}

pub(crate) fn reprice_events(stored: Vec<PricedRecord>, price: &PriceFn<'_>) -> Repriced {
    let mut repriced = Repriced::default();
    let source: std::sync::Arc<str> = std::sync::Arc::from("reprice");
    let mut old_total = 0i64;
    let mut new_total = 0i64;
    for old in stored {
        let new_price = price(&old.record);
        let new = NewEvent {
            priced: PricedRecord {
                record: old.record.clone(),
                price: new_price,
            },
            source: source.clone(),
        };
        let old = NewEvent {
            priced: old,
            source: source.clone(),
        };
        let (old_row, new_row) = (EventRow::new(&old), EventRow::new(&new));
        old_total += old_row.cost_nanos.unwrap_or(0);
        new_total += new_row.cost_nanos.unwrap_or(0);
        repriced.summary.examined += 1;
        if old_row.pricing_columns() == new_row.pricing_columns() {
            continue;
        }
        repriced.summary.changed += 1;
        match (old_row.cost_nanos, new_row.cost_nanos) {
            (None, Some(_)) => repriced.summary.newly_priced += 1,
            (Some(_), None) => repriced.summary.newly_unpriced += 1,
            _ => {}
        }
        repriced.old.push(old);
        repriced.new.push(new);
    }
    repriced.summary.old_total = money::from_nanos(old_total);
    repriced.summary.new_total = money::from_nanos(new_total);
    repriced
}

/// What a backend does for a reprice. Each window (within one hour) is repriced in its
/// own transaction, holding the reprice lock: ingest is never held up for long, and two
/// reprices never move the same sums twice (the second reads what the first wrote).
pub(crate) trait RepriceSteps {
    /// Opens a window's transaction and takes the reprice lock.
    async fn begin(&mut self) -> Result<(), StoreError>;
    /// The stored events of the window.
    async fn scan(&mut self, scan: &EventScan) -> Result<Vec<PricedRecord>, StoreError>;
    /// Stores the new prices of `new`, moves the rollup sums from `old` to `new`, and
    /// deletes the window's hourly and daily groups left empty.
    async fn apply(
        &mut self,
        old: &[EventRow<'_>],
        new: &[EventRow<'_>],
        hour: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    async fn commit(&mut self) -> Result<(), StoreError>;
}

/// Prices the events of each window again; applies the changes unless a dry run.
pub(crate) async fn reprice_windows(
    steps: &mut impl RepriceSteps,
    windows: Vec<(DateTime<Utc>, DateTime<Utc>)>,
    scope: &RepriceScope,
    price: &PriceFn<'_>,
) -> Result<RepriceSummary, StoreError> {
    let filter = scope.filter();
    let mut summary = RepriceSummary::default();
    for (from, to) in windows {
        steps.begin().await?;
        let scan = EventScan {
            from,
            to,
            filter: filter.clone(),
        };
        let mut stored = steps.scan(&scan).await?;
        if scope.only_unpriced {
            stored.retain(|event| matches!(event.price, PriceOutcome::Unpriced(_)));
        }
        let repriced = reprice_events(stored, price);
        summary.absorb(&repriced.summary);
        if !scope.dry_run && !repriced.new.is_empty() {
            let old_rows: Vec<EventRow<'_>> = repriced.old.iter().map(EventRow::new).collect();
            let new_rows: Vec<EventRow<'_>> = repriced.new.iter().map(EventRow::new).collect();
            steps.apply(&old_rows, &new_rows, floor_hour(from)).await?;
        }
        steps.commit().await?;
    }
    Ok(summary)
}

/// How the rollups change when `old` rows are replaced by `new` ones: each group's sums
/// after minus before. Groups left unchanged are dropped.
pub(crate) fn rollup_deltas<'r, 'e: 'r>(
    old: &'r [EventRow<'e>],
    new: &'r [EventRow<'e>],
) -> BTreeMap<RollupKey<'r>, RollupSums> {
    let mut deltas = rollup_groups(new);
    for (key, sums) in rollup_groups(old) {
        deltas.entry(key).or_default().add_scaled(&sums, -1);
    }
    deltas.retain(|_, sums| *sums != RollupSums::default());
    deltas
}

impl RepriceSummary {
    pub(crate) fn absorb(&mut self, other: &RepriceSummary) {
        self.examined += other.examined;
        self.changed += other.changed;
        self.newly_priced += other.newly_priced;
        self.newly_unpriced += other.newly_unpriced;
        self.old_total += other.old_total;
        self.new_total += other.new_total;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn a_usage_range_is_split_into_days_hours_and_partial_hours() {
        type Ranges = Vec<(&'static str, &'static str)>;
        // (from, to, use_daily, daily, hourly, events)
        let cases: Vec<(&str, &str, bool, Ranges, Ranges, Ranges)> = vec![
            // Inside one hour: events only.
            (
                "2026-03-01T10:05:00Z",
                "2026-03-01T10:50:00Z",
                true,
                vec![],
                vec![],
                vec![("2026-03-01T10:05:00Z", "2026-03-01T10:50:00Z")],
            ),
            // Whole hours inside one day: hourly only.
            (
                "2026-03-01T10:00:00Z",
                "2026-03-01T18:00:00Z",
                true,
                vec![],
                vec![("2026-03-01T10:00:00Z", "2026-03-01T18:00:00Z")],
                vec![],
            ),
            // Several days with ragged ends: all three.
            (
                "2026-03-01T10:17:00Z",
                "2026-03-04T05:45:30Z",
                true,
                vec![("2026-03-02T00:00:00Z", "2026-03-04T00:00:00Z")],
                vec![
                    ("2026-03-01T11:00:00Z", "2026-03-02T00:00:00Z"),
                    ("2026-03-04T00:00:00Z", "2026-03-04T05:00:00Z"),
                ],
                vec![
                    ("2026-03-01T10:17:00Z", "2026-03-01T11:00:00Z"),
                    ("2026-03-04T05:00:00Z", "2026-03-04T05:45:30Z"),
                ],
            ),
            // The same without daily rollups (grouped by hour).
            (
                "2026-03-01T10:17:00Z",
                "2026-03-04T05:45:30Z",
                false,
                vec![],
                vec![("2026-03-01T11:00:00Z", "2026-03-04T05:00:00Z")],
                vec![
                    ("2026-03-01T10:17:00Z", "2026-03-01T11:00:00Z"),
                    ("2026-03-04T05:00:00Z", "2026-03-04T05:45:30Z"),
                ],
            ),
            // A calendar month: daily only.
            (
                "2026-03-01T00:00:00Z",
                "2026-04-01T00:00:00Z",
                true,
                vec![("2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z")],
                vec![],
                vec![],
            ),
        ];
        let parse = |ranges: &Ranges| -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
            ranges.iter().map(|(a, b)| (t(a), t(b))).collect()
        };
        for (from, to, use_daily, daily, hourly, events) in &cases {
            assert_eq!(
                usage_plan(t(from), t(to), *use_daily),
                UsagePlan {
                    daily: parse(daily),
                    hourly: parse(hourly),
                    events: parse(events),
                },
                "{from} {to} {use_daily}"
            );
        }
    }
}
