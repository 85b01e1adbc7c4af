//! What both backends write, computed once in Rust: events flattened into column values
//! (money as integers), the first copy of each key, and the hourly rollup groups.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use chrono::{DateTime, Datelike, DurationRound, TimeDelta, Utc};
use rust_decimal::Decimal;

use super::columns::Columns;
use super::{
    Dimension, EventScan, Measures, NewEvent, PriceFn, RepriceScope, RepriceSummary, StoreError,
    UsageAggregate, UsageQuery,
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

/// Who writes a column of `events`: the record (once, on insert), its price (again on
/// every reprice), or the ingestion (when and from where it arrived).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Written {
    Record,
    Price,
    Ingestion,
}

/// One column of `events`.
#[derive(Clone, Debug)]
pub(crate) struct Column {
    pub name: String,
    pub kind: ColumnKind,
    pub written: Written,
}

impl Column {
    /// Counts, cost shares and savings: a zero may be stored as NULL (Postgres does, to
    /// save eight bytes a column), so readers take NULL as 0. The `*cost_nanos` columns
    /// keep NULL for "no amount": an unpriced cost, no reported cost, a list cost equal
    /// to the cost.
    pub fn zero_is_null(&self) -> bool {
        self.kind == ColumnKind::Integer && !self.name.ends_with("cost_nanos")
    }
}

/// The stored count column of each counted bucket: its name (`input`, `web_search`).
pub(crate) fn count_column(bucket: Bucket) -> &'static str {
    bucket.as_str()
}

/// The stored pico-dollar cost column of each bucket: `input_cost_picos`.
pub(crate) fn cost_column(bucket: Bucket) -> String {
    format!("{bucket}_cost_picos")
}

/// The columns of `events`, in the order rows are written (`EventRow::cells`).
pub(crate) static EVENT_COLUMNS: LazyLock<Vec<Column>> = LazyLock::new(|| {
    use ColumnKind::{Boolean, Integer, Json, Text, Time};
    use Written::{Ingestion, Price, Record};
    let column = |name: &str, kind, written| Column {
        name: name.to_owned(),
        kind,
        written,
    };
    let mut columns = vec![
        column("project", Text, Record),
        column("id", Text, Record),
        column("time", Time, Record),
        column("provider", Text, Record),
        column("model", Text, Record),
        column("resolved_model", Text, Price),
    ];
    columns.extend(
        Bucket::COUNTED
            .into_iter()
            .map(|bucket| column(count_column(bucket), Integer, Record)),
    );
    columns.extend([
        column("batch", Boolean, Record),
        column("service_tier", Text, Record),
        column("reasoning_effort", Text, Record),
        column("tags", Json, Record),
        column("user_id", Text, Record),
        column("search_context", Text, Record),
        column("reported_cost_nanos", Integer, Record),
        column("cost_nanos", Integer, Price),
        column("list_cost_nanos", Integer, Price),
        column("price_ref", Text, Price),
        column("unpriced_reason", Text, Price),
        column("partial_reason", Text, Price),
    ]);
    columns.extend(
        Bucket::ALL
            .into_iter()
            .map(|bucket| column(&cost_column(bucket), Integer, Price)),
    );
    columns.extend([
        column("cache_savings_nanos", Integer, Price),
        column("batch_savings_nanos", Integer, Price),
        column("ingested_at", Time, Ingestion),
        column("source", Text, Ingestion),
    ]);
    columns
});

/// The `events` columns a reprice updates, in `EventRow::pricing_cells` order.
pub(crate) static PRICING_COLUMNS: LazyLock<Vec<Column>> = LazyLock::new(|| {
    EVENT_COLUMNS
        .iter()
        .filter(|c| c.written == Written::Price)
        .cloned()
        .collect()
});

/// One value of an event row, typed as its column.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Cell<'e> {
    Text(Option<&'e str>),
    Integer(Option<i64>),
    Boolean(bool),
    Time(DateTime<Utc>),
    Json(&'e str),
}

/// One event as column values.
pub(crate) struct EventRow<'e> {
    pub event: &'e NewEvent,
    /// The sheet's model id, when the name resolved to one.
    pub resolved_model: Option<&'e str>,
    /// The rollup's model: the resolved id, else the name as written.
    pub rollup_model: &'e str,
    pub tokens: [i64; Bucket::COUNT - 1],
    pub tags_json: String,
    pub cost_nanos: Option<i64>,
    pub list_cost_nanos: Option<i64>,
    pub price_ref: Option<&'e str>,
    pub unpriced_reason: Option<&'e str>,
    pub partial_reason: Option<&'e str>,
    pub reported_cost_nanos: Option<i64>,
    pub bucket_picos: [i64; Bucket::COUNT],
    pub cache_savings_nanos: i64,
    pub batch_savings_nanos: i64,
    pub hour: DateTime<Utc>,
}

impl<'e> EventRow<'e> {
    pub fn new(event: &'e NewEvent) -> EventRow<'e> {
        let record = &event.priced.record;
        let mut tokens = [0; Bucket::COUNT - 1];
        for (slot, (_, value)) in tokens.iter_mut().zip(record.tokens.iter()) {
            *slot = count(value);
        }
        let mut row = EventRow {
            event,
            resolved_model: event.priced.resolved_model(),
            rollup_model: event.priced.rollup_model(),
            tokens,
            tags_json: serde_json::to_string(&record.tags).unwrap_or_else(|_| "{}".into()),
            cost_nanos: None,
            list_cost_nanos: None,
            price_ref: None,
            unpriced_reason: None,
            partial_reason: None,
            reported_cost_nanos: record.reported_cost.map(money::to_nanos),
            bucket_picos: [0; Bucket::COUNT],
            cache_savings_nanos: 0,
            batch_savings_nanos: 0,
            hour: record
                .time
                .duration_trunc(TimeDelta::hours(1))
                .unwrap_or(record.time),
        };
        match &event.priced.price {
            PriceOutcome::Priced(p) => {
                row.cost_nanos = Some(money::to_nanos(p.cost));
                row.list_cost_nanos = Some(money::to_nanos(p.list_cost));
                row.price_ref = Some(p.price_ref.as_str());
                row.partial_reason = p.partial.as_deref();
                row.bucket_picos = p.bucket_costs.map(money::to_picos);
                row.cache_savings_nanos = money::to_nanos(p.cache_savings);
                row.batch_savings_nanos = money::to_nanos(p.batch_savings);
            }
            PriceOutcome::Unpriced(u) => row.unpriced_reason = Some(u.reason.as_str()),
        }
        row
    }

    /// The row's values in `EVENT_COLUMNS` order.
    pub fn cells(&self, ingested_at: DateTime<Utc>) -> Vec<Cell<'_>> {
        let record = &self.event.priced.record;
        let mut cells = Vec::with_capacity(EVENT_COLUMNS.len());
        cells.extend([
            Cell::Text(Some(&record.project)),
            Cell::Text(Some(&record.id)),
            Cell::Time(record.time),
            Cell::Text(Some(&record.provider)),
            Cell::Text(Some(&record.model)),
            Cell::Text(self.stored_resolved_model()),
        ]);
        cells.extend(self.tokens.iter().map(|n| Cell::Integer(Some(*n))));
        cells.extend([
            Cell::Boolean(record.batch),
            Cell::Text(Some(&record.service_tier)),
            Cell::Text(record.reasoning_effort.as_deref()),
            Cell::Json(&self.tags_json),
            Cell::Text(record.user.as_deref()),
            Cell::Text(record.search_context.as_deref()),
            Cell::Integer(self.reported_cost_nanos),
        ]);
        self.push_pricing_cells(&mut cells);
        cells.extend([
            Cell::Time(ingested_at),
            Cell::Text(Some(&self.event.source)),
        ]);
        cells
    }

    /// The values a reprice may change, in `PRICING_COLUMNS` order.
    pub fn pricing_cells(&self) -> Vec<Cell<'_>> {
        let mut cells = Vec::with_capacity(PRICING_COLUMNS.len());
        cells.push(Cell::Text(self.stored_resolved_model()));
        self.push_pricing_cells(&mut cells);
        cells
    }

    /// The sheet's model id as stored: none when the record is priced under the very name
    /// it was written with (`stored_event` reads the name back). An unpriced record keeps
    /// it: there, none means the name did not resolve.
    fn stored_resolved_model(&self) -> Option<&'e str> {
        match (self.resolved_model, self.cost_nanos) {
            (Some(id), Some(_)) if id == self.event.priced.record.model => None,
            (id, _) => id,
        }
    }

    /// The price reference as stored: `@2025-12-11…` when it starts with the row's own
    /// `provider/model` (`stored_event` puts them back), else whole.
    fn stored_price_ref(&self) -> Option<&'e str> {
        let price_ref = self.price_ref?;
        let provider = self.event.priced.record.provider.as_str();
        let compact = self.resolved_model.and_then(|id| {
            price_ref
                .strip_prefix(provider)?
                .strip_prefix('/')?
                .strip_prefix(id)
                .filter(|rest| rest.starts_with('@'))
        });
        Some(compact.unwrap_or(price_ref))
    }

    /// The price columns after `resolved_model`.
    fn push_pricing_cells<'r>(&'r self, cells: &mut Vec<Cell<'r>>) {
        // A list cost equal to the cost (no discount) is not stored twice.
        let list_cost_nanos = self
            .list_cost_nanos
            .filter(|list| Some(*list) != self.cost_nanos);
        cells.extend([
            Cell::Integer(self.cost_nanos),
            Cell::Integer(list_cost_nanos),
            Cell::Text(self.stored_price_ref()),
            Cell::Text(self.unpriced_reason),
            Cell::Text(self.partial_reason),
        ]);
        cells.extend(self.bucket_picos.iter().map(|n| Cell::Integer(Some(*n))));
        cells.extend([
            Cell::Integer(Some(self.cache_savings_nanos)),
            Cell::Integer(Some(self.batch_savings_nanos)),
        ]);
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
    // The keys beside their positions (no pointer chasing while sorting); the position
    // breaks ties, so the first copy of a key comes first in its run of equal keys.
    let mut order: Vec<(&str, &str, usize)> = events
        .iter()
        .enumerate()
        .map(|(index, event)| {
            let record = &event.priced.record;
            (record.project.as_str(), record.id.as_str(), index)
        })
        .collect();
    order.sort_unstable();
    let mut first_copies = vec![false; events.len()];
    let mut rows = Vec::with_capacity(events.len());
    for (position, &(project, id, index)) in order.iter().enumerate() {
        if position == 0 || (order[position - 1].0, order[position - 1].1) != (project, id) {
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

/// The three rollup tables: the same sums by UTC hour, day and month, written together.
/// Ordered from the finest to the coarsest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Rollup {
    Hourly,
    Daily,
    Monthly,
}

impl Rollup {
    pub const ALL: [Rollup; 3] = [Rollup::Hourly, Rollup::Daily, Rollup::Monthly];

    pub fn table(self) -> &'static str {
        match self {
            Rollup::Hourly => "rollups_hourly",
            Rollup::Daily => "rollups_daily",
            Rollup::Monthly => "rollups_monthly",
        }
    }

    /// The column holding the start of the group's hour, day or month.
    pub fn time_column(self) -> &'static str {
        match self {
            Rollup::Hourly => "hour",
            Rollup::Daily => "day",
            Rollup::Monthly => "month",
        }
    }

    /// The value columns the table keeps, a prefix of `ROLLUP_VALUE_COLUMNS`: every one
    /// by hour and day; by month the spend sums only (the cost shares, in pico-dollars,
    /// would pass 2^63 at $9.2M of one token type in a month; they and the savings are
    /// read from the daily rows).
    pub fn value_columns(self) -> &'static [String] {
        match self {
            Rollup::Hourly | Rollup::Daily => &ROLLUP_VALUE_COLUMNS,
            Rollup::Monthly => &ROLLUP_VALUE_COLUMNS[..PICOS_AT],
        }
    }

    /// The key columns, in `RollupKey` order.
    pub fn key_columns(self) -> String {
        format!(
            "project, {}, provider, model, service_tier, batch, reasoning_effort, tags",
            self.time_column()
        )
    }

    /// The start of this table's hour, day or month that `time` falls in (UTC).
    pub fn floor(self, time: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Rollup::Hourly => floor_hour(time),
            Rollup::Daily => floor_day(time),
            Rollup::Monthly => floor_month(time),
        }
    }

    /// The slot of a query's time dimension: the table whose rows are its hours, days
    /// or months. None when the query is not grouped by time.
    pub fn of_dimensions(group_by: &[Dimension]) -> Option<Rollup> {
        group_by.iter().find_map(|dimension| match dimension {
            Dimension::Hour => Some(Rollup::Hourly),
            Dimension::Day => Some(Rollup::Daily),
            Dimension::Month => Some(Rollup::Monthly),
            _ => None,
        })
    }

    /// Finer groups (hourly, or daily for the monthly table) as this table keys them;
    /// groups that sum to nothing are left out.
    pub fn groups<'r>(
        self,
        finer: BTreeMap<RollupKey<'r>, RollupSums>,
    ) -> Result<BTreeMap<RollupKey<'r>, RollupSums>, StoreError> {
        if self == Rollup::Hourly {
            return Ok(finer);
        }
        // Only the columns the table keeps are summed: by month, the cost shares could
        // pass 2^63 where the daily ones do not.
        let kept = self.value_columns().len();
        let mut coarser: BTreeMap<RollupKey<'r>, RollupSums> = BTreeMap::new();
        for (mut key, mut sums) in finer {
            key.1 = self.floor(key.1);
            sums.0[kept..].fill(0);
            coarser.entry(key).or_default().add_scaled(&sums, 1)?;
        }
        coarser.retain(|_, sums| *sums != RollupSums::default());
        Ok(coarser)
    }
}

/// Rollup groups and their sums, sorted by key.
pub(crate) type RollupGroups<'e> = BTreeMap<RollupKey<'e>, RollupSums>;

/// A time range, `[from, to)`.
pub(crate) type Range = (DateTime<Utc>, DateTime<Utc>);

/// Hourly groups with their daily and monthly sums: what a write adds to each rollup
/// table, in `Rollup::ALL` order.
pub(crate) fn groups_by_level(
    hourly: BTreeMap<RollupKey<'_>, RollupSums>,
) -> Result<[(Rollup, RollupGroups<'_>); 3], StoreError> {
    let daily = Rollup::Daily.groups(hourly.clone())?;
    let monthly = Rollup::Monthly.groups(daily.clone())?;
    Ok([
        (Rollup::Hourly, hourly),
        (Rollup::Daily, daily),
        (Rollup::Monthly, monthly),
    ])
}

/// A project's monthly totals: (project, month).
pub(crate) type ProjectMonth<'e> = (&'e str, DateTime<Utc>);

/// The table of each project's monthly totals, every other key summed together. It
/// keeps the monthly rollups' value columns (`Rollup::Monthly.value_columns()`).
pub(crate) const PROJECT_TOTALS: &str = "rollups_project_monthly";

/// Monthly groups summed by project and month: what a write adds to `PROJECT_TOTALS`.
pub(crate) fn project_totals<'r>(
    monthly: &RollupGroups<'r>,
) -> Result<BTreeMap<ProjectMonth<'r>, RollupSums>, StoreError> {
    let mut totals: BTreeMap<ProjectMonth<'r>, RollupSums> = BTreeMap::new();
    for (key, sums) in monthly {
        totals
            .entry((key.0, key.1))
            .or_default()
            .add_scaled(sums, 1)?;
    }
    totals.retain(|_, sums| *sums != RollupSums::default());
    Ok(totals)
}

/// The rollup rows a reprice of the hour starting `hour` may leave empty: (table, time
/// column, the start of that hour's row there).
pub(crate) fn empty_groups(
    hour: DateTime<Utc>,
) -> [(&'static str, &'static str, DateTime<Utc>); 4] {
    let [hourly, daily, monthly] =
        Rollup::ALL.map(|level| (level.table(), level.time_column(), level.floor(hour)));
    [hourly, daily, monthly, (PROJECT_TOTALS, "month", monthly.2)]
}

/// The UTC midnight starting the day an instant falls in.
pub(crate) fn floor_day(time: DateTime<Utc>) -> DateTime<Utc> {
    time.duration_trunc(TimeDelta::days(1)).unwrap_or(time)
}

/// The UTC midnight starting the month an instant falls in.
pub(crate) fn floor_month(time: DateTime<Utc>) -> DateTime<Utc> {
    let day = floor_day(time);
    day.with_day(1).unwrap_or(day)
}

/// The first instant of a unit at or after `time`.
fn ceil(level: Rollup, time: DateTime<Utc>) -> DateTime<Utc> {
    let floor = level.floor(time);
    if floor == time {
        return time;
    }
    match level {
        Rollup::Hourly => floor + TimeDelta::hours(1),
        Rollup::Daily => floor + TimeDelta::days(1),
        Rollup::Monthly => floor
            .checked_add_months(chrono::Months::new(1))
            .unwrap_or(floor),
    }
}

/// Where each part of a usage query's range is read from: whole UTC months from the
/// monthly rollups and whole days from the daily ones (as far as the query's time
/// dimension allows), whole hours from the hourly ones, the partial hours at either end
/// from the events.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct UsagePlan {
    pub monthly: Vec<Range>,
    pub daily: Vec<Range>,
    pub hourly: Vec<Range>,
    pub events: Vec<Range>,
}

impl UsagePlan {
    /// The rollup parts, coarsest first.
    pub fn rollup_ranges(&self) -> [(Rollup, &[Range]); 3] {
        [
            (Rollup::Monthly, &self.monthly),
            (Rollup::Daily, &self.daily),
            (Rollup::Hourly, &self.hourly),
        ]
    }

    fn ranges_mut(&mut self, level: Rollup) -> &mut Vec<Range> {
        match level {
            Rollup::Hourly => &mut self.hourly,
            Rollup::Daily => &mut self.daily,
            Rollup::Monthly => &mut self.monthly,
        }
    }
}

/// Splits `[from, to)` into the parts each table answers, reading no table coarser than
/// `coarsest`.
pub(crate) fn covering(from: DateTime<Utc>, to: DateTime<Utc>, coarsest: Rollup) -> UsagePlan {
    let mut plan = UsagePlan::default();
    if from >= to {
        return plan;
    }
    let (whole_from, whole_to) = whole_hours(from, to);
    if whole_from >= whole_to {
        plan.events.push((from, to));
        return plan;
    }
    plan.events = ends((from, to), (whole_from, whole_to));
    // Each coarser level takes the whole units inside what the finer one was given, and
    // leaves it the ragged ends.
    let mut inner = (whole_from, whole_to);
    let mut level = Rollup::Hourly;
    for coarser in [Rollup::Daily, Rollup::Monthly] {
        let units = (ceil(coarser, inner.0), coarser.floor(inner.1));
        if coarser > coarsest || units.0 >= units.1 {
            break;
        }
        *plan.ranges_mut(level) = ends(inner, units);
        inner = units;
        level = coarser;
    }
    *plan.ranges_mut(level) = vec![inner];
    plan
}

/// Where one part of a usage query is read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    Events,
    Rollup(Rollup),
}

/// One part of a usage query: a source over a range, added, or subtracted (`minus`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Part {
    pub source: Source,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub minus: bool,
}

impl UsagePlan {
    fn parts(&self, minus: bool) -> impl Iterator<Item = Part> + '_ {
        let rollups = self
            .rollup_ranges()
            .into_iter()
            .flat_map(|(level, ranges)| ranges.iter().map(move |r| (Source::Rollup(level), *r)));
        let events = self.events.iter().map(|r| (Source::Events, *r));
        rollups.chain(events).map(move |(source, (from, to))| Part {
            source,
            from,
            to,
            minus,
        })
    }
}

/// How long before `now` a range may end and still be read as "its last unit whole,
/// less what follows the end": then what follows is (nearly) nothing yet.
const UNDER_WAY: TimeDelta = TimeDelta::hours(1);

/// The parts a usage query over `[from, to)` reads. A range that ends now (this month,
/// day or hour so far: the default range, budgets) reads its last unit whole from the
/// coarsest table that has it and subtracts what follows `to` (records yet to come:
/// next to nothing), instead of reading every day and hour of the unit so far. Exact
/// either way: one statement reads both in one snapshot, and the sums are integers.
pub(crate) fn usage_plan(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    coarsest: Rollup,
    now: DateTime<Utc>,
) -> Vec<Part> {
    debug_assert!(coarsest <= Rollup::Monthly);
    if to + UNDER_WAY >= now {
        for level in Rollup::ALL.into_iter().rev().filter(|l| *l <= coarsest) {
            let start = level.floor(to);
            if from <= start && start < to {
                let end = ceil(level, to);
                let mut parts: Vec<Part> = covering(from, start, coarsest).parts(false).collect();
                parts.push(Part {
                    source: Source::Rollup(level),
                    from: start,
                    to: end,
                    minus: false,
                });
                parts.extend(covering(to, end, coarsest).parts(true));
                return parts;
            }
        }
    }
    covering(from, to, coarsest).parts(false).collect()
}

/// True when a plan is one part of one rollup table whose every key the query groups by
/// (the projects' monthly totals by project and month; a day of daily rows, or hours of
/// hourly ones, by every key: the FOCUS export): each row is then one group, read as it
/// is. Summing rows that are groups already costs Postgres more than the query: one sum
/// state per column and group.
pub(crate) fn rows_are_groups(parts: &[Part], query: &UsageQuery) -> bool {
    let [
        Part {
            source: Source::Rollup(level),
            minus: false,
            ..
        },
    ] = parts
    else {
        return false;
    };
    let has = |d: Dimension| query.group_by.contains(&d);
    // Grouped by the table's own unit of time, not a coarser one.
    if Rollup::of_dimensions(&query.group_by) != Some(*level) {
        return false;
    }
    if *level == Rollup::Monthly && query.by_project_only() {
        has(Dimension::Project)
    } else {
        [
            Dimension::Project,
            Dimension::Provider,
            Dimension::Model,
            Dimension::ServiceTier,
            Dimension::Batch,
            Dimension::ReasoningEffort,
            Dimension::Tags,
        ]
        .into_iter()
        .all(has)
    }
}

/// The coarsest table a query may read: its time dimension's (months when it has none),
/// and days at most when it needs the cost shares or savings, which only the hourly and
/// daily tables keep.
pub(crate) fn coarsest_table(query: &UsageQuery) -> Rollup {
    let limit = match query.measures {
        Measures::All => Rollup::Daily,
        Measures::Spend => Rollup::Monthly,
    };
    Rollup::of_dimensions(&query.group_by)
        .unwrap_or(Rollup::Monthly)
        .min(limit)
}

/// The SELECT of one part of a usage query, up to its bounds: the caller appends the
/// `from` bind, ` AND {time} < `, and the `to` bind. Every part has the same columns:
/// the rollup key (the events' rollup model), `slot` (the group's start cut to the
/// query's time dimension: `truncate(unit, column)` spells that in the dialect), and the
/// measured values, negated in a part that is subtracted. `event_time` is the events'
/// time as `truncate` takes it.
pub(crate) fn part_select(
    part: &Part,
    query: &UsageQuery,
    truncate: impl Fn(Rollup, &str) -> String,
    event_time: &str,
) -> (String, &'static str) {
    let slot_level = Rollup::of_dimensions(&query.group_by);
    // A query by project and time only reads the project and the slot, and whole months
    // from the projects' totals.
    let projects_only = query.by_project_only();
    let sign = |value: String, column: &str| {
        if part.minus {
            format!("-({value}) AS {column}")
        } else {
            format!("{value} AS {column}")
        }
    };
    let needed = measured(query.measures).filter(|(_, needed)| *needed);
    let keys = |finer: &str| {
        if projects_only {
            String::new()
        } else {
            format!(", {finer}")
        }
    };
    match part.source {
        Source::Rollup(level) => {
            let time = level.time_column();
            let slot = match slot_level {
                Some(unit) if unit > level => truncate(unit, time),
                _ => time.to_owned(),
            };
            let table = match level {
                Rollup::Monthly if projects_only => PROJECT_TOTALS,
                _ => level.table(),
            };
            let values: Vec<String> = needed.map(|(c, _)| sign(c.to_owned(), c)).collect();
            let select = format!(
                "SELECT project, {slot} AS slot{}, {} FROM {table} WHERE {time} >= ",
                keys("provider, model, service_tier, batch, reasoning_effort, tags"),
                values.join(", "),
            );
            (select, time)
        }
        Source::Events => {
            let values: Vec<String> = needed.map(|(c, _)| sign(event_value(c), c)).collect();
            let select = format!(
                "SELECT project, {} AS slot{}, {} FROM events WHERE time >= ",
                truncate(slot_level.unwrap_or(Rollup::Hourly), event_time),
                keys(
                    "provider, coalesce(resolved_model, model) AS model, service_tier, batch, \
                     coalesce(reasoning_effort, '') AS reasoning_effort, tags"
                ),
                values.join(", ")
            );
            (select, "time")
        }
    }
}

/// The parts of `outer` outside `inner` (which it contains), non-empty ones only.
fn ends(outer: Range, inner: Range) -> Vec<Range> {
    [(outer.0, inner.0), (inner.1, outer.1)]
        .into_iter()
        .filter(|(a, b)| a < b)
        .collect()
}

/// The sums of one hourly rollup group, in `ROLLUP_VALUE_COLUMNS` order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RollupSums(pub [i64; ROLLUP_VALUES]);

impl Default for RollupSums {
    fn default() -> Self {
        RollupSums([0; ROLLUP_VALUES])
    }
}

/// Where each kind of value sits among the rollup values: the four request counts
/// (all, unpriced, partially priced, with a reported cost), the bucket counts, the three
/// nano-dollar costs (cost, list, reported), the per-bucket pico-dollar costs, the two
/// savings.
pub(crate) const COUNTS_AT: usize = 4;
pub(crate) const COSTS_AT: usize = COUNTS_AT + Bucket::COUNT - 1;
pub(crate) const PICOS_AT: usize = COSTS_AT + 3;
pub(crate) const SAVINGS_AT: usize = PICOS_AT + Bucket::COUNT;
pub(crate) const ROLLUP_VALUES: usize = SAVINGS_AT + 2;

/// The rollup value columns, in `RollupSums` order.
pub(crate) static ROLLUP_VALUE_COLUMNS: LazyLock<Vec<String>> = LazyLock::new(|| {
    let mut columns: Vec<String> = [
        "requests",
        "unpriced_requests",
        "partial_requests",
        "reported_requests",
    ]
    .map(String::from)
    .to_vec();
    columns.extend(Bucket::COUNTED.map(|b| count_column(b).to_owned()));
    columns.extend(["cost_nanos", "list_cost_nanos", "reported_cost_nanos"].map(String::from));
    columns.extend(Bucket::ALL.map(cost_column));
    columns.extend(["cache_savings_nanos", "batch_savings_nanos"].map(String::from));
    assert_eq!(columns.len(), ROLLUP_VALUES);
    columns
});

impl RollupSums {
    /// One event's contribution.
    fn of(row: &EventRow<'_>) -> RollupSums {
        let mut values = [0; ROLLUP_VALUES];
        values[0] = 1;
        values[1] = i64::from(row.cost_nanos.is_none());
        values[2] = i64::from(row.partial_reason.is_some());
        values[3] = i64::from(row.reported_cost_nanos.is_some());
        values[COUNTS_AT..COSTS_AT].copy_from_slice(&row.tokens);
        values[COSTS_AT] = row.cost_nanos.unwrap_or(0);
        values[COSTS_AT + 1] = row.list_cost_nanos.unwrap_or(0);
        values[COSTS_AT + 2] = row.reported_cost_nanos.unwrap_or(0);
        values[PICOS_AT..SAVINGS_AT].copy_from_slice(&row.bucket_picos);
        values[SAVINGS_AT] = row.cache_savings_nanos;
        values[SAVINGS_AT + 1] = row.batch_savings_nanos;
        RollupSums(values)
    }

    /// The values of `ROLLUP_VALUE_COLUMNS`, in that order.
    pub fn values(&self) -> [i64; ROLLUP_VALUES] {
        self.0
    }

    /// Adds (`sign` 1) or subtracts (`sign` -1) another group's sums. A group's bucket
    /// shares pass 2^63 pico-dollars only with over $9.2M of one token type in one group
    /// and day: then nothing is added and the write is refused, never saturated.
    pub fn add_scaled(&mut self, other: &RollupSums, sign: i64) -> Result<(), StoreError> {
        let mut sums = self.0;
        for (slot, value) in sums.iter_mut().zip(other.0) {
            *slot = value
                .checked_mul(sign)
                .and_then(|value| slot.checked_add(value))
                .ok_or_else(|| StoreError::Refused(super::OUT_OF_RANGE.to_owned()))?;
        }
        self.0 = sums;
        Ok(())
    }
}

/// Which rollup value columns a query needs: spend alone (request counts, bucket counts
/// and the three costs) or all (also per-bucket costs and savings).
fn measured(measures: Measures) -> impl Iterator<Item = (&'static str, bool)> {
    ROLLUP_VALUE_COLUMNS
        .iter()
        .enumerate()
        .map(move |(i, c)| (c.as_str(), measures == Measures::All || i < PICOS_AT))
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
    (PICOS_AT..SAVINGS_AT).contains(&index)
}

/// The rollup value sums of a usage query, in `ROLLUP_VALUE_COLUMNS` order (two columns
/// each for pico-dollars with `SplitPicos`); zero for columns not measured. Not `summed`:
/// the values themselves, where each row is a group already.
pub(crate) fn usage_sums(style: SumStyle, measures: Measures, summed: bool) -> String {
    let sum = |c: &str| {
        if summed {
            format!("sum({c})")
        } else {
            c.to_owned()
        }
    };
    measured(measures)
        .enumerate()
        .map(|(i, (c, needed))| match (style, needed) {
            (SumStyle::Numeric, true) if !summed => c.to_owned(),
            (SumStyle::Numeric, true) => format!("coalesce(sum({c}), 0)::numeric"),
            (SumStyle::Numeric, false) => "0::numeric".to_owned(),
            (SumStyle::SplitPicos, true) if is_picos_column(i) => format!(
                "coalesce({}, 0), coalesce({}, 0)",
                sum(&format!("{c} / {PICOS_SPLIT}")),
                sum(&format!("{c} % {PICOS_SPLIT}"))
            ),
            (SumStyle::SplitPicos, false) if is_picos_column(i) => "0, 0".to_owned(),
            (SumStyle::SplitPicos, true) => format!("coalesce({}, 0)", sum(c)),
            (SumStyle::SplitPicos, false) => "0".to_owned(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// One event's contribution to a rollup value column, as SQL over `events` columns.
pub(crate) fn event_value(column: &str) -> String {
    match column {
        "requests" => "1".to_owned(),
        "unpriced_requests" => "CASE WHEN cost_nanos IS NULL THEN 1 ELSE 0 END".to_owned(),
        "partial_requests" => "CASE WHEN partial_reason IS NULL THEN 0 ELSE 1 END".to_owned(),
        "reported_requests" => "CASE WHEN reported_cost_nanos IS NULL THEN 0 ELSE 1 END".to_owned(),
        "list_cost_nanos" => "coalesce(list_cost_nanos, cost_nanos, 0)".to_owned(),
        other => format!("coalesce({other}, 0)"),
    }
}

/// `sum(input), sum(cached_input), …` over the counted buckets, each with `cast`
/// appended: what a query over events reads for [`tokens_from`].
pub(crate) fn token_sums(cast: &str) -> String {
    Bucket::COUNTED
        .map(|b| format!("sum({}){cast}", count_column(b)))
        .join(", ")
}

/// The counts `token_sums` selected, from column `start` on.
pub(crate) fn tokens_from(row: &impl Columns, start: usize) -> Result<Tokens, sqlx::Error> {
    let mut tokens = Tokens::default();
    for (i, bucket) in Bucket::COUNTED.into_iter().enumerate() {
        tokens.set(bucket, unsigned(row.opt_int(start + i)?.unwrap_or(0)));
    }
    Ok(tokens)
}

/// Fills an aggregate's sums from the values of `ROLLUP_VALUE_COLUMNS`, in that order.
pub(crate) fn fill_aggregate(aggregate: &mut UsageAggregate, values: &[i128; ROLLUP_VALUES]) {
    let count = |value: i128| u64::try_from(value).unwrap_or(0);
    let nanos = |value: i128| Decimal::from_i128_with_scale(value, 9).normalize();
    aggregate.requests = count(values[0]);
    aggregate.unpriced_requests = count(values[1]);
    aggregate.partial_requests = count(values[2]);
    aggregate.reported_requests = count(values[3]);
    for (bucket, value) in Bucket::COUNTED
        .into_iter()
        .zip(&values[COUNTS_AT..COSTS_AT])
    {
        aggregate.tokens.set(bucket, count(*value));
    }
    aggregate.cost = nanos(values[COSTS_AT]);
    aggregate.list_cost = nanos(values[COSTS_AT + 1]);
    aggregate.reported_cost = nanos(values[COSTS_AT + 2]);
    for (slot, picos) in aggregate
        .bucket_costs
        .iter_mut()
        .zip(&values[PICOS_AT..SAVINGS_AT])
    {
        *slot = Decimal::from_i128_with_scale(*picos, 12).normalize();
    }
    aggregate.cache_savings = nanos(values[SAVINGS_AT]);
    aggregate.batch_savings = nanos(values[SAVINGS_AT + 1]);
}

/// `SET column = column + excluded.column` for each of `columns`.
pub(crate) fn rollup_increments(table_alias: &str, columns: &[String]) -> String {
    columns
        .iter()
        .map(|c| format!("{c} = {table_alias}{c} + excluded.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Groups inserted events into hourly rollup groups, sorted by key.
pub(crate) fn rollup_groups<'r, 'e: 'r>(
    rows: impl IntoIterator<Item = &'r EventRow<'e>>,
) -> Result<BTreeMap<RollupKey<'r>, RollupSums>, StoreError> {
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
        groups
            .entry(key)
            .or_default()
            .add_scaled(&RollupSums::of(row), 1)?;
    }
    Ok(groups)
}

/// `items` in slices of `max`, the rest in slices whose lengths are powers of two: a
/// multi-row statement's text depends on its row count, so this keeps the distinct
/// statements (each prepared once and cached per connection) to a dozen whatever the
/// batch sizes, instead of one per size seen.
pub(crate) fn statement_sized_chunks<T>(items: &[T], max: usize) -> Vec<&[T]> {
    let mut chunks = Vec::new();
    let mut rest = items;
    while !rest.is_empty() {
        let size = if rest.len() >= max {
            max
        } else {
            1 << rest.len().ilog2()
        };
        let (chunk, after) = rest.split_at(size);
        chunks.push(chunk);
        rest = after;
    }
    chunks
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

/// The `events` columns a scan reads, in `EVENT_COLUMNS` order: all but the ingestion
/// metadata (`ingested_at`, `source`). `json_cast` is appended to JSON columns (Postgres
/// reads `jsonb` as text with `::text`).
pub(crate) fn scan_columns(json_cast: &str) -> String {
    EVENT_COLUMNS
        .iter()
        .filter(|c| c.written != Written::Ingestion)
        .map(|c| match c.kind {
            ColumnKind::Json => format!("{}{json_cast}", c.name),
            _ => c.name.clone(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A stored event read back (the columns of `scan_columns`, in order): the record and its
/// stored price. `EventRow::new` of the result gives back exactly these columns.
pub(crate) fn stored_event(row: &impl Columns) -> Result<PricedRecord, sqlx::Error> {
    let mut position = 0;
    let mut next = || {
        position += 1;
        position - 1
    };
    let project = row.text(next())?;
    let id = row.text(next())?;
    let time = row.time(next())?;
    let provider = row.text(next())?;
    let model = row.text(next())?;
    let resolved_model = row.opt_text(next())?;
    let mut tokens = Tokens::default();
    for bucket in Bucket::COUNTED {
        tokens.set(bucket, unsigned(row.opt_int(next())?.unwrap_or(0)));
    }
    let batch = row.boolean(next())?;
    let service_tier = row.text(next())?;
    let reasoning_effort = row.opt_text(next())?;
    let tags_json = row.text(next())?;
    let user = row.opt_text(next())?;
    let search_context = row.opt_text(next())?;
    let reported_cost_nanos = row.opt_int(next())?;
    let cost_nanos = row.opt_int(next())?;
    let list_cost_nanos = row.opt_int(next())?;
    let price_ref = row.opt_text(next())?;
    let unpriced_reason = row.opt_text(next())?;
    let partial_reason = row.opt_text(next())?;
    let mut bucket_costs = [Decimal::ZERO; Bucket::COUNT];
    for slot in &mut bucket_costs {
        *slot = money::from_picos(row.opt_int(next())?.unwrap_or(0));
    }
    let cache_savings = money::from_nanos(row.opt_int(next())?.unwrap_or(0));
    let batch_savings = money::from_nanos(row.opt_int(next())?.unwrap_or(0));
    let price = match cost_nanos {
        Some(cost) => PriceOutcome::Priced(Box::new(Priced {
            cost: money::from_nanos(cost),
            list_cost: money::from_nanos(list_cost_nanos.unwrap_or(cost)),
            price_ref: match price_ref {
                Some(rest) if rest.starts_with('@') => {
                    format!(
                        "{provider}/{}{rest}",
                        resolved_model.as_deref().unwrap_or(&model)
                    )
                }
                other => other.unwrap_or_default(),
            },
            resolved_model: format!("{provider}/{}", resolved_model.as_deref().unwrap_or(&model)),
            model_id: resolved_model.unwrap_or_else(|| model.clone()),
            bucket_costs,
            cache_savings,
            batch_savings,
            partial: partial_reason,
        })),
        None => PriceOutcome::Unpriced(Unpriced {
            reason: unpriced_reason.unwrap_or_default(),
            resolved_model: resolved_model.map(|id| format!("{provider}/{id}")),
        }),
    };
    Ok(PricedRecord {
        record: UsageRecord {
            id,
            time,
            project,
            provider,
            model,
            tokens,
            batch,
            service_tier,
            tags: serde_json::from_str(&tags_json).unwrap_or_default(),
            user,
            reasoning_effort,
            reported_cost: reported_cost_nanos.map(money::from_nanos),
            search_context,
        },
        price,
    })
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
        if old_row.pricing_cells() == new_row.pricing_cells() {
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
) -> Result<BTreeMap<RollupKey<'r>, RollupSums>, StoreError> {
    let mut deltas = rollup_groups(new)?;
    for (key, sums) in rollup_groups(old)? {
        deltas.entry(key).or_default().add_scaled(&sums, -1)?;
    }
    deltas.retain(|_, sums| *sums != RollupSums::default());
    Ok(deltas)
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

    #[test]
    fn statement_chunks_cover_every_item_in_order_with_few_sizes() {
        let mut sizes = std::collections::BTreeSet::new();
        for n in 0..2000usize {
            let items: Vec<usize> = (0..n).collect();
            let chunks = statement_sized_chunks(&items, 516);
            assert_eq!(chunks.concat(), items);
            for chunk in chunks {
                assert!(chunk.len() == 516 || chunk.len().is_power_of_two(), "{n}");
                sizes.insert(chunk.len());
            }
        }
        assert!(sizes.len() <= 11, "{sizes:?}");
    }

    fn t(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn a_usage_range_is_split_into_months_days_hours_and_partial_hours() {
        type Ranges = Vec<(&'static str, &'static str)>;
        use Rollup::{Daily, Hourly, Monthly};
        // (from, to, coarsest table, monthly, daily, hourly, events)
        let cases: Vec<(&str, &str, Rollup, Ranges, Ranges, Ranges, Ranges)> = vec![
            // Inside one hour: events only.
            (
                "2026-03-01T10:05:00Z",
                "2026-03-01T10:50:00Z",
                Monthly,
                vec![],
                vec![],
                vec![],
                vec![("2026-03-01T10:05:00Z", "2026-03-01T10:50:00Z")],
            ),
            // Whole hours inside one day: hourly only.
            (
                "2026-03-01T10:00:00Z",
                "2026-03-01T18:00:00Z",
                Monthly,
                vec![],
                vec![],
                vec![("2026-03-01T10:00:00Z", "2026-03-01T18:00:00Z")],
                vec![],
            ),
            // Several days with ragged ends: days, hours and events.
            (
                "2026-03-01T10:17:00Z",
                "2026-03-04T05:45:30Z",
                Monthly,
                vec![],
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
            // The same grouped by hour: no daily rollups.
            (
                "2026-03-01T10:17:00Z",
                "2026-03-04T05:45:30Z",
                Hourly,
                vec![],
                vec![],
                vec![("2026-03-01T11:00:00Z", "2026-03-04T05:00:00Z")],
                vec![
                    ("2026-03-01T10:17:00Z", "2026-03-01T11:00:00Z"),
                    ("2026-03-04T05:00:00Z", "2026-03-04T05:45:30Z"),
                ],
            ),
            // A calendar month: monthly only; grouped by day, daily only.
            (
                "2026-03-01T00:00:00Z",
                "2026-04-01T00:00:00Z",
                Monthly,
                vec![("2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z")],
                vec![],
                vec![],
                vec![],
            ),
            (
                "2026-03-01T00:00:00Z",
                "2026-04-01T00:00:00Z",
                Daily,
                vec![],
                vec![("2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z")],
                vec![],
                vec![],
            ),
            // Months with ragged ends at every level.
            (
                "2025-11-20T07:30:00Z",
                "2026-02-03T12:10:00Z",
                Monthly,
                vec![("2025-12-01T00:00:00Z", "2026-02-01T00:00:00Z")],
                vec![
                    ("2025-11-21T00:00:00Z", "2025-12-01T00:00:00Z"),
                    ("2026-02-01T00:00:00Z", "2026-02-03T00:00:00Z"),
                ],
                vec![
                    ("2025-11-20T08:00:00Z", "2025-11-21T00:00:00Z"),
                    ("2026-02-03T00:00:00Z", "2026-02-03T12:00:00Z"),
                ],
                vec![
                    ("2025-11-20T07:30:00Z", "2025-11-20T08:00:00Z"),
                    ("2026-02-03T12:00:00Z", "2026-02-03T12:10:00Z"),
                ],
            ),
            // Whole days across a month boundary but no whole month: daily only.
            (
                "2026-01-15T00:00:00Z",
                "2026-02-10T00:00:00Z",
                Monthly,
                vec![],
                vec![("2026-01-15T00:00:00Z", "2026-02-10T00:00:00Z")],
                vec![],
                vec![],
            ),
        ];
        let parse = |ranges: &Ranges| -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
            ranges.iter().map(|(a, b)| (t(a), t(b))).collect()
        };
        for (from, to, coarsest, monthly, daily, hourly, events) in &cases {
            assert_eq!(
                covering(t(from), t(to), *coarsest),
                UsagePlan {
                    monthly: parse(monthly),
                    daily: parse(daily),
                    hourly: parse(hourly),
                    events: parse(events),
                },
                "{from} {to} {coarsest:?}"
            );
        }
    }

    #[test]
    fn a_range_that_ends_now_reads_its_last_unit_whole_less_what_follows() {
        let now = t("2026-12-08T10:17:00Z");
        let part = |source, from: &str, to: &str, minus| Part {
            source,
            from: t(from),
            to: t(to),
            minus,
        };
        use Rollup::{Daily, Hourly, Monthly};
        // This month so far: December whole, less the rest of it.
        assert_eq!(
            usage_plan(t("2026-12-01T00:00:00Z"), now, Monthly, now),
            vec![
                part(
                    Source::Rollup(Monthly),
                    "2026-12-01T00:00:00Z",
                    "2027-01-01T00:00:00Z",
                    false
                ),
                part(
                    Source::Rollup(Daily),
                    "2026-12-09T00:00:00Z",
                    "2027-01-01T00:00:00Z",
                    true
                ),
                part(
                    Source::Rollup(Hourly),
                    "2026-12-08T11:00:00Z",
                    "2026-12-09T00:00:00Z",
                    true
                ),
                part(
                    Source::Events,
                    "2026-12-08T10:17:00Z",
                    "2026-12-08T11:00:00Z",
                    true
                ),
            ]
        );
        // Grouped by day: the days before today, today whole less the rest of it.
        assert_eq!(
            usage_plan(t("2026-12-06T00:00:00Z"), now, Daily, now),
            vec![
                part(
                    Source::Rollup(Daily),
                    "2026-12-06T00:00:00Z",
                    "2026-12-08T00:00:00Z",
                    false
                ),
                part(
                    Source::Rollup(Daily),
                    "2026-12-08T00:00:00Z",
                    "2026-12-09T00:00:00Z",
                    false
                ),
                part(
                    Source::Rollup(Hourly),
                    "2026-12-08T11:00:00Z",
                    "2026-12-09T00:00:00Z",
                    true
                ),
                part(
                    Source::Events,
                    "2026-12-08T10:17:00Z",
                    "2026-12-08T11:00:00Z",
                    true
                ),
            ]
        );
        // A range that ended long ago is read as it is.
        assert_eq!(
            usage_plan(
                t("2026-11-01T00:00:00Z"),
                t("2026-11-20T00:00:00Z"),
                Monthly,
                now
            ),
            vec![part(
                Source::Rollup(Daily),
                "2026-11-01T00:00:00Z",
                "2026-11-20T00:00:00Z",
                false
            )]
        );
    }

    #[test]
    fn every_plan_counts_each_instant_of_its_range_once_and_nothing_else() {
        use proptest::prelude::*;
        let start = t("2024-01-01T00:00:00Z").timestamp();
        proptest!(|(a in 0i64..86_400 * 800, length in 0i64..86_400 * 400, level in 0usize..3,
                    lag in -86_400i64 * 3..86_400 * 3)| {
            let from = DateTime::from_timestamp(start + a, 0).unwrap();
            let to = DateTime::from_timestamp(start + a + length, 0).unwrap();
            let now = to + TimeDelta::seconds(lag);
            let coarsest = Rollup::ALL[level];
            let parts = usage_plan(from, to, coarsest, now);
            let mut edges = vec![from, to];
            for part in &parts {
                prop_assert!(part.from < part.to);
                if let Source::Rollup(rollup) = part.source {
                    // Rollup parts are whole units of their table, never coarser than allowed.
                    prop_assert!(rollup <= coarsest);
                    prop_assert_eq!(rollup.floor(part.from), part.from);
                    prop_assert_eq!(rollup.floor(part.to), part.to);
                }
                edges.extend([part.from, part.to]);
            }
            edges.sort();
            edges.dedup();
            // Between two edges every instant is counted the same: once inside the
            // range, never outside it.
            for pair in edges.windows(2) {
                let at = pair[0];
                let count: i32 = parts
                    .iter()
                    .filter(|p| p.from <= at && at < p.to)
                    .map(|p| if p.minus { -1 } else { 1 })
                    .sum();
                prop_assert_eq!(count, i32::from(from <= at && at < to), "{}", at);
            }
        });
    }
}
