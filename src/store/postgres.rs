//! The Postgres store.
//!
//! A write is one transaction. Its events (first copy of each key, sorted by key) are
//! `COPY`ed straight into `events` when none exists yet, with the rollup sums computed by
//! the writer; when a key exists already, the `COPY` fails with a unique violation, the
//! savepoint is rolled back, and the events go through a staging table and one statement
//! that skips the duplicates and adds exactly the inserted ones to the rollups. Dead
//! letters and checkpoints follow in the same transaction. Sorted keys mean concurrent
//! writers take locks in the same order.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{QueryBuilder, Row};

use super::rows::{
    Cell, ColumnKind, EVENT_COLUMNS, EventRow, PRICING_COLUMNS, PROJECT_TOTALS, ROLLUP_VALUES,
    RepriceSteps, Rollup, RollupKey, RollupSums, SumStyle, UniqueEvents, coarsest_table, count,
    empty_groups, fill_aggregate, groups_by_level, part_select, project_totals, reprice_windows,
    rollup_deltas, rollup_groups, rollup_increments, rows_are_groups, scan_columns, stored_event,
    token_sums, tokens_from, unique_events, unsigned, usage_plan, usage_sums,
};
use super::{
    Checkpoint, CheckpointStore, DeadLetter, Dimension, EventScan, Inserted, NewEvent, PriceFn,
    RETENTION_CHUNK, RepriceAudit, RepriceScope, RepriceSummary, RetentionCutoffs, RetentionReport,
    Store, StoreError, UnpricedModel, UsageAggregate, UsageFilter, UsageQuery, UsageStore,
    WriteBatch, delete_in_chunks, event_windows,
};
use crate::money;
use crate::prepare::PricedRecord;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

#[derive(Clone, Debug)]
pub struct PgStore {
    pool: PgPool,
    /// Batches to write through staging before trying a direct `COPY` again.
    try_direct: Arc<AtomicU32>,
    /// Months whose `events` partition is known to exist.
    partitions: Arc<Mutex<BTreeSet<NaiveDate>>>,
}

fn connect_options(url: &str) -> Result<PgConnectOptions, StoreError> {
    PgConnectOptions::from_str(url).map_err(|error| StoreError::InvalidUrl {
        url: super::redact_url(url),
        reason: error.to_string(),
    })
}

/// Writes go through one batcher; the other connections serve queries and health checks.
fn pool_options() -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(5))
}

/// The advisory lock `llm_meter_events_partition` (the migrations) takes while it
/// creates a month's partition.
const PARTITION_LOCK: i64 = 7_236_281_733_370_311_014;

/// After a batch with duplicates, this many batches skip the direct-`COPY` attempt.
const DIRECT_COOLDOWN: u32 = 16;

impl PgStore {
    /// Connects without applying migrations (`migrate` does that).
    pub async fn connect(url: &str) -> Result<PgStore, StoreError> {
        let options = connect_options(url)?;
        let pool = pool_options()
            .after_connect(|connection, _| {
                Box::pin(async move {
                    sqlx::query(sqlx::AssertSqlSafe(CREATE_STAGING.as_str()))
                        .execute(connection)
                        .await?;
                    Ok(())
                })
            })
            .connect_with(options.application_name("llm-meter"))
            .await?;
        Ok(PgStore {
            pool,
            try_direct: Arc::new(AtomicU32::new(0)),
            partitions: Arc::default(),
        })
    }

    /// A pool on a read replica: connected lazily, with no staging table (a hot standby
    /// refuses to create one), for reads only.
    pub fn connect_reader(url: &str) -> Result<PgStore, StoreError> {
        let options = connect_options(url)?;
        let pool = pool_options().connect_lazy_with(options.application_name("llm-meter reader"));
        Ok(PgStore {
            pool,
            try_direct: Arc::new(AtomicU32::new(0)),
            partitions: Arc::default(),
        })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The fast path for batches of new records: `COPY` the keys into `event_keys`, then
    /// the rows into `events` (as fast as writing goes), and add the writer's own rollup
    /// sums. A key that exists already fails the first `COPY` with a unique violation:
    /// `false` is returned, the transaction is aborted, and the caller starts again on
    /// the staging path, which skips duplicates. (No savepoint: it would cost two round
    /// trips on every batch to save one on the rare batch with a duplicate.)
    async fn copy_directly(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        staged: &Staged<'_>,
    ) -> Result<bool, StoreError> {
        match copy_in(
            tx,
            "COPY event_keys (project, id, month) FROM STDIN (FORMAT binary)",
            &staged.keys,
        )
        .await
        {
            Ok(()) => {}
            Err(sqlx::Error::Database(error)) if error.code().as_deref() == Some("23505") => {
                return Ok(false);
            }
            Err(error) => return Err(error.into()),
        }
        copy_in(tx, &COPY_EVENTS, &staged.rows).await?;
        add_rollups(tx, rollup_groups(&staged.unique.rows)?).await?;
        Ok(true)
    }

    /// This month's partition and the next two, so they exist before any record needs
    /// them (at migration and on every retention run).
    async fn ensure_months_ahead(&self) -> Result<(), StoreError> {
        let this_month = month_of(Utc::now());
        let ahead = (0..3).filter_map(|n| this_month.checked_add_months(chrono::Months::new(n)));
        self.ensure_partitions(&ahead.collect()).await
    }

    /// Creates the `events` partitions of the months not yet known to exist, each in a
    /// transaction of its own (creating a partition locks the whole table briefly).
    async fn ensure_partitions(&self, months: &BTreeSet<NaiveDate>) -> Result<(), StoreError> {
        let missing: Vec<NaiveDate> = {
            let known = self.partitions.lock().unwrap_or_else(|e| e.into_inner());
            months.difference(&known).copied().collect()
        };
        for month in missing {
            sqlx::query("SELECT llm_meter_events_partition($1)")
                .bind(month)
                .execute(&self.pool)
                .await?;
            self.partitions
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(month);
        }
        Ok(())
    }
}

impl PgStore {
    /// The `events` partitions (named `events_YYYY_MM`) of the months before `month`,
    /// oldest first.
    async fn partitions_before(
        &self,
        month: NaiveDate,
    ) -> Result<Vec<(String, NaiveDate)>, StoreError> {
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
             WHERE i.inhparent = 'events'::regclass",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut partitions: Vec<(String, NaiveDate)> = names
            .into_iter()
            .filter_map(|name| {
                let first = NaiveDate::parse_from_str(
                    &format!("{}_01", name.strip_prefix("events_")?),
                    "%Y_%m_%d",
                )
                .ok()?;
                Some((name, first))
            })
            .filter(|(_, first)| *first < month)
            .collect();
        partitions.sort_by_key(|(_, first)| *first);
        Ok(partitions)
    }

    /// Records the events horizon before any month before it is dropped: from then on
    /// `llm_meter_events_partition` refuses to create those months again. It takes the
    /// partition lock, so no writer is creating one of them meanwhile. Never moves back.
    async fn record_horizon(&self, horizon: DateTime<Utc>) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(PARTITION_LOCK)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO retention_horizon (events_before) VALUES ($1) \
             ON CONFLICT (singleton) DO UPDATE \
             SET events_before = greatest(retention_horizon.events_before, excluded.events_before)",
        )
        .bind(horizon)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deletes (or counts) the rows of `table` whose `column` is before `cutoff`, a
    /// chunk per transaction, so no writer waits long behind it.
    async fn delete_before<T>(
        &self,
        table: &str,
        column: &str,
        cutoff: T,
        dry_run: bool,
    ) -> Result<u64, StoreError>
    where
        T: for<'q> sqlx::Encode<'q, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Copy + Send,
    {
        if dry_run {
            let count: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT count(*) FROM {table} WHERE {column} < $1"
            )))
            .bind(cutoff)
            .fetch_one(&self.pool)
            .await?;
            return Ok(unsigned(count));
        }
        let statement = format!(
            "DELETE FROM {table} WHERE ctid = ANY(ARRAY(\
             SELECT ctid FROM {table} WHERE {column} < $1 LIMIT {RETENTION_CHUNK}))"
        );
        let (statement, pool) = (statement.as_str(), &self.pool);
        delete_in_chunks(move || async move {
            let done = sqlx::query(sqlx::AssertSqlSafe(statement))
                .bind(cutoff)
                .execute(pool)
                .await?;
            Ok(done.rows_affected())
        })
        .await
    }
}

/// Sends `data` through `statement`, a `COPY … FROM STDIN`.
async fn copy_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    statement: &str,
    data: &[u8],
) -> Result<(), sqlx::Error> {
    let mut copy = tx.copy_in_raw(statement).await?;
    copy.send(data).await?;
    copy.finish().await?;
    Ok(())
}

/// The first day of the month (UTC) of `time`: the `events` partition that holds it.
pub(crate) fn month_of(time: DateTime<Utc>) -> NaiveDate {
    let day = time.date_naive();
    day.with_day(1).unwrap_or(day)
}

/// Adds hourly sums (negative ones too: a reprice moving records between groups) to the
/// hourly, daily and monthly rollups, one statement per table.
async fn add_rollups(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    hourly: BTreeMap<RollupKey<'_>, RollupSums>,
) -> Result<(), StoreError> {
    if hourly.is_empty() {
        return Ok(());
    }
    let levels = groups_by_level(hourly)?;
    let totals = project_totals(&levels[2].1)?;
    for (level, groups) in levels {
        upsert_rollups(tx, level, groups).await?;
    }
    let (projects, months): (Vec<&str>, Vec<DateTime<Utc>>) = totals.keys().copied().unzip();
    let query = sqlx::query(sqlx::AssertSqlSafe(UPSERT_PROJECT_TOTALS.as_str()))
        .bind(projects)
        .bind(months);
    bind_sums(query, totals.values(), Rollup::Monthly.value_columns())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Binds each of a table's value `columns` (a prefix of `ROLLUP_VALUE_COLUMNS`) as one
/// array of the groups' sums.
fn bind_sums<'q, 's>(
    mut query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    sums: impl Iterator<Item = &'s RollupSums>,
    columns: &[String],
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    let mut numbers: Vec<Vec<i64>> = vec![Vec::new(); columns.len()];
    for group in sums {
        for (slot, value) in numbers.iter_mut().zip(group.values()) {
            slot.push(value);
        }
    }
    for values in numbers {
        query = query.bind(values);
    }
    query
}

async fn upsert_rollups(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    level: Rollup,
    groups: BTreeMap<RollupKey<'_>, RollupSums>,
) -> Result<(), StoreError> {
    let mut columns = RollupKeyColumns::default();
    for key in groups.keys() {
        columns.0.push(key.0);
        columns.1.push(key.1);
        columns.2.push(key.2);
        columns.3.push(key.3);
        columns.4.push(key.4);
        columns.5.push(key.5);
        columns.6.push(key.6);
        columns.7.push(key.7);
    }
    let statement = &UPSERT_ROLLUPS[level as usize];
    let query = sqlx::query(sqlx::AssertSqlSafe(statement.as_str()))
        .bind(columns.0)
        .bind(columns.1)
        .bind(columns.2)
        .bind(columns.3)
        .bind(columns.4)
        .bind(columns.5)
        .bind(columns.6)
        .bind(columns.7);
    bind_sums(query, groups.values(), level.value_columns())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// `column` (a `timestamptz`) cut to the start of its UTC hour, day or month.
fn truncate(unit: Rollup, column: &str) -> String {
    let unit = match unit {
        Rollup::Hourly => "hour",
        Rollup::Daily => "day",
        Rollup::Monthly => "month",
    };
    format!("date_trunc('{unit}', {column}, 'UTC')")
}

/// Adds a usage filter's conditions (`model_column` names the sheet's model id).
fn push_filter(sql: &mut QueryBuilder<sqlx::Postgres>, filter: &UsageFilter, model_column: &str) {
    if let Some(projects) = &filter.projects {
        sql.push(" AND project = ANY(")
            .push_bind(projects.clone())
            .push(")");
    }
    if let Some(provider) = &filter.provider {
        sql.push(" AND provider = ").push_bind(provider.clone());
    }
    if let Some(model) = &filter.model {
        sql.push(" AND ")
            .push(model_column)
            .push(" = ")
            .push_bind(model.clone());
    }
    for (key, value) in &filter.tags {
        sql.push(" AND tags ->> ")
            .push_bind(key.clone())
            .push(" = ")
            .push_bind(value.clone());
    }
}

/// A reprice's steps in an open transaction.
struct Repricing<'p> {
    pool: &'p PgPool,
    tx: Option<sqlx::Transaction<'static, sqlx::Postgres>>,
}

impl Repricing<'_> {
    fn tx(&mut self) -> Result<&mut sqlx::Transaction<'static, sqlx::Postgres>, StoreError> {
        self.tx
            .as_mut()
            .ok_or_else(|| StoreError::Conflict("no reprice transaction is open".into()))
    }
}

impl RepriceSteps for Repricing<'_> {
    async fn begin(&mut self) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(REPRICE_LOCK)
            .execute(&mut *tx)
            .await?;
        self.tx = Some(tx);
        Ok(())
    }

    async fn scan(&mut self, scan: &EventScan) -> Result<Vec<PricedRecord>, StoreError> {
        scan_events(&mut **self.tx()?, scan).await
    }

    async fn apply(
        &mut self,
        old: &[EventRow<'_>],
        new: &[EventRow<'_>],
        hour: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let tx = self.tx()?;
        update_pricing(tx, new).await?;
        add_rollups(tx, rollup_deltas(old, new)?).await?;
        // Groups every record moved out of.
        for (table, column, start) in empty_groups(hour) {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE requests = 0 AND {column} = $1"
            )))
            .bind(start)
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }

    async fn commit(&mut self) -> Result<(), StoreError> {
        if let Some(tx) = self.tx.take() {
            tx.commit().await?;
        }
        Ok(())
    }
}

/// Reads the events of one scan window.
async fn scan_events<'c>(
    executor: impl sqlx::PgExecutor<'c>,
    scan: &EventScan,
) -> Result<Vec<PricedRecord>, StoreError> {
    let mut sql = QueryBuilder::new("SELECT ");
    sql.push(scan_columns("::text"))
        .push(" FROM events WHERE time >= ")
        .push_bind(scan.from)
        .push(" AND time < ")
        .push_bind(scan.to);
    push_filter(&mut sql, &scan.filter, "coalesce(resolved_model, model)");
    let rows = sql.build().fetch_all(executor).await?;
    rows.iter()
        .map(stored_event)
        .collect::<Result<_, sqlx::Error>>()
        .map_err(StoreError::from)
}

/// Stores repriced events' new pricing columns, one statement for all of them.
static UPDATE_PRICING: LazyLock<String> = LazyLock::new(|| {
    let mut arrays = vec!["$1::text[]".to_owned(), "$2::text[]".to_owned()];
    let mut names = vec!["project".to_owned(), "id".to_owned()];
    let mut sets = Vec::new();
    for (i, column) in PRICING_COLUMNS.iter().enumerate() {
        arrays.push(format!("${}::{}[]", i + 3, pg_type(column.kind)));
        names.push(column.name.clone());
        sets.push(format!("{0} = u.{0}", column.name));
    }
    // The rows' earliest and latest times bound the scan to their partitions and the
    // BRIN ranges that hold them (`events` has no index on the key).
    let bounds = PRICING_COLUMNS.len() + 3;
    format!(
        "UPDATE events AS e SET {} FROM UNNEST({}) AS u({}) \
         WHERE e.project = u.project AND e.id = u.id \
           AND e.time >= ${bounds} AND e.time <= ${}",
        sets.join(", "),
        arrays.join(", "),
        names.join(", "),
        bounds + 1
    )
});

/// How Postgres spells a column type.
fn pg_type(kind: ColumnKind) -> &'static str {
    match kind {
        ColumnKind::Text => "text",
        ColumnKind::Integer => "bigint",
        ColumnKind::Boolean => "boolean",
        ColumnKind::Time => "timestamptz",
        ColumnKind::Json => "jsonb",
    }
}

async fn update_pricing(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    rows: &[EventRow<'_>],
) -> Result<(), StoreError> {
    let cells: Vec<Vec<Cell<'_>>> = rows.iter().map(EventRow::pricing_cells).collect();
    let mut query = sqlx::query(sqlx::AssertSqlSafe(UPDATE_PRICING.as_str()))
        .bind(
            rows.iter()
                .map(|r| r.event.priced.record.project.clone())
                .collect::<Vec<_>>(),
        )
        .bind(
            rows.iter()
                .map(|r| r.event.priced.record.id.clone())
                .collect::<Vec<_>>(),
        );
    for (i, column) in PRICING_COLUMNS.iter().enumerate() {
        let column_cells = cells.iter().map(|row| &row[i]);
        query = match column.kind {
            ColumnKind::Integer => query.bind(
                column_cells
                    .map(|cell| match cell {
                        Cell::Integer(Some(0)) if column.zero_is_null() => None,
                        Cell::Integer(value) => *value,
                        _ => None,
                    })
                    .collect::<Vec<Option<i64>>>(),
            ),
            _ => query.bind(
                column_cells
                    .map(|cell| match cell {
                        Cell::Text(value) => value.map(str::to_owned),
                        _ => None,
                    })
                    .collect::<Vec<Option<String>>>(),
            ),
        };
    }
    let times = rows.iter().map(|r| r.event.priced.record.time);
    let (Some(earliest), Some(latest)) = (times.clone().min(), times.max()) else {
        return Ok(());
    };
    query.bind(earliest).bind(latest).execute(&mut **tx).await?;
    Ok(())
}

/// Reprices take this transaction-scoped advisory lock: one at a time, so two never
/// move the same record's sums twice.
const REPRICE_LOCK: i64 = 0x6c6c_6d5f_7265_7072;

/// Each pooled connection gets a session-local staging table. A batch is `COPY`ed into
/// it (the fastest way into Postgres), then moved into `events` by one statement.
/// Temp tables need a real session: put no transaction-mode pooler in between.
static CREATE_STAGING: LazyLock<String> = LazyLock::new(|| {
    let columns: Vec<String> = EVENT_COLUMNS
        .iter()
        .map(|column| format!("{} {}", column.name, pg_type(column.kind)))
        .collect();
    format!(
        "CREATE TEMP TABLE IF NOT EXISTS staging_events ({}) ON COMMIT DELETE ROWS",
        columns.join(", ")
    )
});

/// The columns of a `COPY` row, in order (staging and events alike).
static COPY_COLUMNS: LazyLock<String> = LazyLock::new(|| {
    EVENT_COLUMNS
        .iter()
        .map(|column| column.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
});

/// The direct path's `COPY` into `events` (Postgres routes each row to its month).
static COPY_EVENTS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "COPY events ({}) FROM STDIN (FORMAT binary)",
        COPY_COLUMNS.as_str()
    )
});

/// Adds sums computed by the writer to the rollups: one statement per table, in
/// `Rollup::ALL` order.
static UPSERT_ROLLUPS: LazyLock<[String; 3]> =
    LazyLock::new(|| Rollup::ALL.map(upsert_rollups_statement));

fn upsert_rollups_statement(level: Rollup) -> String {
    let key_types = [
        "text",
        "timestamptz",
        "text",
        "text",
        "text",
        "bool",
        "text",
        "jsonb",
    ];
    upsert_statement(
        level.table(),
        &level.key_columns(),
        &key_types,
        level.value_columns(),
    )
}

/// Adds the writer's sums to the projects' monthly totals.
static UPSERT_PROJECT_TOTALS: LazyLock<String> = LazyLock::new(|| {
    upsert_statement(
        PROJECT_TOTALS,
        "project, month",
        &["text", "timestamptz"],
        Rollup::Monthly.value_columns(),
    )
});

/// `INSERT … SELECT * FROM UNNEST(key arrays, value arrays) ON CONFLICT (keys) DO UPDATE`
/// adding the values.
fn upsert_statement(table: &str, keys: &str, key_types: &[&str], values: &[String]) -> String {
    let arrays: Vec<String> = key_types
        .iter()
        .chain(std::iter::repeat_n(&"bigint", values.len()))
        .enumerate()
        .map(|(i, kind)| format!("${}::{kind}[]", i + 1))
        .collect();
    format!(
        "INSERT INTO {table} AS r ({keys}, {columns}) SELECT * FROM UNNEST({arrays}) \
         ON CONFLICT ({keys}) DO UPDATE SET {increments}",
        columns = values.join(", "),
        arrays = arrays.join(", "),
        increments = rollup_increments("r.", values),
    )
}

/// Rollup keys as column arrays for `UNNEST`, in `RollupKey` order.
#[derive(Default)]
struct RollupKeyColumns<'e>(
    Vec<&'e str>,
    Vec<DateTime<Utc>>,
    Vec<&'e str>,
    Vec<&'e str>,
    Vec<&'e str>,
    Vec<bool>,
    Vec<&'e str>,
    Vec<&'e str>,
);

/// Claims the staged rows' keys in `event_keys` (skipping keys already there) and moves
/// the rows whose key it claimed into `events`, in one statement; returns their keys (the
/// writer adds exactly those rows to the rollups). Staged rows are sorted by key, so
/// concurrent writers take index locks in the same order; a deadlock, should one happen
/// anyway, is retried as a transient failure.
static INSERT_FROM_STAGING: LazyLock<String> = LazyLock::new(|| {
    let staged_columns = EVENT_COLUMNS
        .iter()
        .map(|column| format!("s.{}", column.name))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "WITH claimed AS (\
            INSERT INTO event_keys (project, id, month) \
            SELECT project, id, (date_trunc('month', time, 'UTC') AT TIME ZONE 'UTC')::date \
            FROM staging_events \
            ON CONFLICT (project, id) DO NOTHING RETURNING project, id) \
         INSERT INTO events ({columns}) SELECT {staged_columns} \
         FROM staging_events s JOIN claimed c ON c.project = s.project AND c.id = s.id \
         RETURNING project, id",
        columns = COPY_COLUMNS.as_str(),
    )
});

/// A write's events as binary `COPY` rows, first copies only, sorted by key: the rows of
/// `events` and of `event_keys`, and the months they fall in.
struct Staged<'e> {
    unique: UniqueEvents<'e>,
    rows: Vec<u8>,
    keys: Vec<u8>,
    months: BTreeSet<NaiveDate>,
}

fn staged_rows<'e>(events: &[&'e NewEvent], now: DateTime<Utc>) -> Staged<'e> {
    let unique = unique_events(events);
    let mut rows = BinaryCopy::with_capacity(unique.rows.len() * 300);
    let mut keys = BinaryCopy::with_capacity(unique.rows.len() * 48);
    let mut months = BTreeSet::new();
    for row in &unique.rows {
        rows.row(EVENT_COLUMNS.len());
        for (cell, column) in row.cells(now).iter().zip(EVENT_COLUMNS.iter()) {
            match cell {
                Cell::Integer(Some(0)) if column.zero_is_null() => rows.null(),
                Cell::Integer(Some(value)) => rows.field(&value.to_be_bytes()),
                Cell::Integer(None) | Cell::Text(None) => rows.null(),
                Cell::Text(Some(text)) => rows.text(text),
                Cell::Json(text) => rows.jsonb(text),
                Cell::Boolean(value) => rows.field(&[u8::from(*value)]),
                Cell::Time(time) => rows.field(&pg_micros(*time).to_be_bytes()),
            }
        }
        let record = &row.event.priced.record;
        let month = month_of(record.time);
        months.insert(month);
        keys.row(3);
        keys.text(&record.project);
        keys.text(&record.id);
        keys.field(&pg_days(month).to_be_bytes());
    }
    Staged {
        unique,
        rows: rows.finish(),
        keys: keys.finish(),
        months,
    }
}

/// Rows in `COPY … (FORMAT binary)`: the signature and two zero words, then per row the
/// field count and each field's length (-1 for NULL) and bytes, then -1. Postgres reads
/// integers and times as they are, instead of parsing them from text: most of what a
/// `COPY` of events costs it.
struct BinaryCopy(Vec<u8>);

impl BinaryCopy {
    fn with_capacity(bytes: usize) -> BinaryCopy {
        let mut out = Vec::with_capacity(bytes + 21);
        out.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
        out.extend_from_slice(&[0; 8]);
        BinaryCopy(out)
    }

    fn row(&mut self, fields: usize) {
        self.0
            .extend_from_slice(&i16::try_from(fields).unwrap_or(i16::MAX).to_be_bytes());
    }

    fn null(&mut self) {
        self.0.extend_from_slice(&(-1i32).to_be_bytes());
    }

    fn field(&mut self, bytes: &[u8]) {
        // Every value is bounded far below 2 GiB (labels at 256 bytes, tags at 1 KiB).
        self.0
            .extend_from_slice(&i32::try_from(bytes.len()).unwrap_or(i32::MAX).to_be_bytes());
        self.0.extend_from_slice(bytes);
    }

    /// Text; Postgres text cannot hold NUL, which becomes U+FFFD.
    fn text(&mut self, value: &str) {
        if value.contains('\0') {
            self.field(value.replace('\0', "\u{FFFD}").as_bytes());
        } else {
            self.field(value.as_bytes());
        }
    }

    /// `jsonb`: its format version (1), then the JSON text.
    fn jsonb(&mut self, json: &str) {
        let json = json.replace('\0', "\u{FFFD}");
        self.0.extend_from_slice(
            &i32::try_from(json.len() + 1)
                .unwrap_or(i32::MAX)
                .to_be_bytes(),
        );
        self.0.push(1);
        self.0.extend_from_slice(json.as_bytes());
    }

    fn finish(mut self) -> Vec<u8> {
        self.0.extend_from_slice(&(-1i16).to_be_bytes());
        self.0
    }
}

/// Postgres' epoch, 2000-01-01 UTC, in Unix seconds and days.
const PG_EPOCH_SECONDS: i64 = 946_684_800;

/// A `timestamptz` as Postgres keeps it: microseconds since its epoch.
fn pg_micros(time: DateTime<Utc>) -> i64 {
    time.timestamp_micros() - PG_EPOCH_SECONDS * 1_000_000
}

/// A `date` as Postgres keeps it: days since its epoch.
fn pg_days(day: NaiveDate) -> i32 {
    let seconds = day.and_time(chrono::NaiveTime::MIN).and_utc().timestamp();
    i32::try_from((seconds - PG_EPOCH_SECONDS).div_euclid(86_400)).unwrap_or(i32::MAX)
}

#[async_trait]
impl Store for PgStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await?;
        self.ensure_months_ahead().await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        let applied: Option<i64> = sqlx::query_scalar(super::SCHEMA_PROBE)
            .fetch_one(&self.pool)
            .await
            .map_err(super::schema_error)?;
        super::check_schema_version(applied, &MIGRATOR)
    }

    fn kind(&self) -> &'static str {
        "postgres"
    }

    async fn replica_lag(&self) -> Result<Option<Duration>, StoreError> {
        let seconds: Option<f64> = sqlx::query_scalar(
            "SELECT CASE WHEN NOT pg_is_in_recovery() THEN NULL \
                 WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 \
                 ELSE greatest(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0) \
             END::float8",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(seconds.map(Duration::from_secs_f64))
    }
}

#[async_trait]
impl UsageStore for PgStore {
    async fn write(&self, parts: &[&WriteBatch]) -> Result<Inserted, StoreError> {
        let now = Utc::now();
        let events: Vec<&NewEvent> = parts.iter().flat_map(|p| p.events.iter()).collect();
        let dead_letters: Vec<&DeadLetter> =
            parts.iter().flat_map(|p| p.dead_letters.iter()).collect();
        let checkpoints: Vec<&Checkpoint> =
            parts.iter().flat_map(|p| p.checkpoints.iter()).collect();
        let mut tx = self.pool.begin().await?;
        let mut inserted_keys: HashMap<(String, String), bool> = HashMap::new();
        let mut all_inserted = false;
        let mut first_copies = Vec::new();
        if !events.is_empty() {
            let staged = staged_rows(&events, now);
            first_copies.clone_from(&staged.unique.first_copies);
            self.ensure_partitions(&staged.months).await?;
            if self.try_direct.load(Ordering::Relaxed) == 0 {
                all_inserted = self.copy_directly(&mut tx, &staged).await?;
                if !all_inserted {
                    // The failed `COPY` aborted the transaction: start again. Duplicates
                    // are likely to continue (a re-run, overlapping writers): go straight
                    // to the staging path for a while.
                    tx.rollback().await?;
                    tx = self.pool.begin().await?;
                    self.try_direct.store(DIRECT_COOLDOWN, Ordering::Relaxed);
                }
            } else {
                let _ = self
                    .try_direct
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
            }
            if !all_inserted {
                copy_in(
                    &mut tx,
                    "COPY staging_events FROM STDIN (FORMAT binary)",
                    &staged.rows,
                )
                .await?;
                let rows = sqlx::query(sqlx::AssertSqlSafe(INSERT_FROM_STAGING.as_str()))
                    .fetch_all(&mut *tx)
                    .await?;
                for row in rows {
                    inserted_keys.insert((row.try_get(0)?, row.try_get(1)?), false);
                }
                let claimed = staged.unique.rows.iter().filter(|row| {
                    let record = &row.event.priced.record;
                    inserted_keys.contains_key(&(record.project.clone(), record.id.clone()))
                });
                add_rollups(&mut tx, rollup_groups(claimed)?).await?;
            }
        }
        if !dead_letters.is_empty() {
            let letters = &dead_letters;
            sqlx::query(
                "INSERT INTO dead_letters (received_at, source, code, reason, line)
                 SELECT * FROM UNNEST($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[])",
            )
            .bind(letters.iter().map(|d| d.received_at).collect::<Vec<_>>())
            .bind(letters.iter().map(|d| d.source.clone()).collect::<Vec<_>>())
            .bind(letters.iter().map(|d| d.code.clone()).collect::<Vec<_>>())
            .bind(letters.iter().map(|d| d.reason.clone()).collect::<Vec<_>>())
            // Postgres text cannot hold NUL bytes.
            .bind(letters.iter().map(|d| d.line.replace('\0', "\u{FFFD}")).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?;
        }
        if !checkpoints.is_empty() {
            // The last checkpoint per file wins; sorted keys keep lock order stable.
            let mut latest: Vec<&Checkpoint> = Vec::new();
            for checkpoint in checkpoints {
                latest.retain(|c| {
                    (c.collector.as_str(), c.fingerprint.as_str())
                        != (
                            checkpoint.collector.as_str(),
                            checkpoint.fingerprint.as_str(),
                        )
                });
                latest.push(checkpoint);
            }
            latest.sort_by(|a, b| {
                (&a.collector, &a.fingerprint).cmp(&(&b.collector, &b.fingerprint))
            });
            sqlx::query(
                r#"INSERT INTO collector_checkpoints (collector, fingerprint, path, "offset", updated_at)
                   SELECT c, f, p, o, $5 FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[]) AS t(c, f, p, o)
                   ON CONFLICT (collector, fingerprint) DO UPDATE
                   SET path = excluded.path, "offset" = excluded."offset", updated_at = excluded.updated_at"#,
            )
            .bind(latest.iter().map(|c| c.collector.clone()).collect::<Vec<_>>())
            .bind(latest.iter().map(|c| c.fingerprint.clone()).collect::<Vec<_>>())
            .bind(latest.iter().map(|c| c.path.clone()).collect::<Vec<_>>())
            .bind(latest.iter().map(|c| count(c.offset)).collect::<Vec<_>>())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        if all_inserted {
            // Every key was new: the first copy of each is inserted, later copies are not.
            return Ok(first_copies);
        }
        Ok(events
            .iter()
            .map(|event| {
                let record = &event.priced.record;
                // Claim the key on its first occurrence in the batch; later copies are duplicates.
                match inserted_keys.get_mut(&(record.project.clone(), record.id.clone())) {
                    Some(claimed) if !*claimed => {
                        *claimed = true;
                        true
                    }
                    _ => false,
                }
            })
            .collect())
    }

    async fn usage(&self, query: &UsageQuery) -> Result<Vec<UsageAggregate>, StoreError> {
        let mut sql = QueryBuilder::new("SELECT ");
        let mut group_columns = 0;
        for dimension in &query.group_by {
            match dimension {
                Dimension::Project => sql.push("project"),
                Dimension::Provider => sql.push("provider"),
                Dimension::Model => sql.push("model"),
                Dimension::ServiceTier => sql.push("service_tier"),
                Dimension::Batch => sql.push("CASE WHEN batch THEN 'true' ELSE 'false' END"),
                Dimension::ReasoningEffort => sql.push("reasoning_effort"),
                Dimension::Tag(key) => sql
                    .push("coalesce(tags ->> ")
                    .push_bind(key.clone())
                    .push(", '')"),
                Dimension::Tags => sql.push("tags::text"),
                Dimension::Hour | Dimension::Day | Dimension::Month => sql.push("slot"),
            };
            sql.push(", ");
            group_columns += 1;
        }
        let parts = usage_plan(query.from, query.to, coarsest_table(query), Utc::now());
        let grouped = !rows_are_groups(&parts, query);
        sql.push(usage_sums(SumStyle::Numeric, query.measures, grouped))
            .push(" FROM (");
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                sql.push(" UNION ALL ");
            }
            let (select, time) = part_select(part, query, truncate, "time");
            sql.push(select)
                .push_bind(part.from)
                .push(format!(" AND {time} < "))
                .push_bind(part.to);
        }
        sql.push(") AS usage WHERE TRUE");
        push_filter(&mut sql, &query.filter, "model");
        if group_columns > 0 {
            let positions: Vec<String> = (1..=group_columns).map(|i| i.to_string()).collect();
            if grouped {
                sql.push(" GROUP BY ").push(positions.join(", "));
            }
            sql.push(" ORDER BY ").push(positions.join(", "));
        }
        // Unnamed statement: planned for these bounds every time. A cached generic plan
        // cannot see how many rollup rows a range holds, and sorts them on disk.
        let rows = sql.build().persistent(false).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| aggregate_from_row(row, &query.group_by))
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(StoreError::from)
            .map(|rows| {
                // An empty aggregate (no usage at all) comes back as one row of zeros,
                // a group whose subtracted part cancels it as a row of zeros too.
                rows.into_iter().filter(|a| a.requests > 0).collect()
            })
    }

    async fn unpriced(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        projects: Option<&[String]>,
    ) -> Result<Vec<UnpricedModel>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(UNPRICED_MODELS.as_str()))
            .bind(from)
            .bind(to)
            .bind(projects.map(<[String]>::to_vec))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(UnpricedModel {
                    provider: row.try_get(0)?,
                    model: row.try_get(1)?,
                    first_seen: row.try_get(2)?,
                    last_seen: row.try_get(3)?,
                    requests: unsigned(row.try_get(4)?),
                    reason: row.try_get::<Option<String>, _>(5)?.unwrap_or_default(),
                    tokens: tokens_from(row, 6)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    async fn events(&self, scan: &EventScan) -> Result<Vec<PricedRecord>, StoreError> {
        scan_events(&self.pool, scan).await
    }

    async fn reprice(
        &self,
        scope: &RepriceScope,
        price: &PriceFn<'_>,
    ) -> Result<RepriceSummary, StoreError> {
        let filter = scope.filter();
        let windows = event_windows(self, scope.from, scope.to, &filter).await?;
        let mut steps = Repricing {
            pool: &self.pool,
            tx: None,
        };
        let summary = reprice_windows(&mut steps, windows, scope, price).await?;
        if scope.dry_run {
            return Ok(summary);
        }
        sqlx::query(
            "INSERT INTO reprice_audit (at, range_from, range_to, project, records_examined,
                 records_changed, newly_priced, newly_unpriced, old_total_nanos, new_total_nanos, actor)
             VALUES (now(), $1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(scope.from)
        .bind(scope.to)
        .bind(&scope.project)
        .bind(count(summary.examined))
        .bind(count(summary.changed))
        .bind(count(summary.newly_priced))
        .bind(count(summary.newly_unpriced))
        .bind(money::to_nanos(summary.old_total))
        .bind(money::to_nanos(summary.new_total))
        .bind(&scope.actor)
        .execute(&self.pool)
        .await?;
        Ok(summary)
    }

    async fn reprice_audits(&self, limit: u32) -> Result<Vec<RepriceAudit>, StoreError> {
        let rows = sqlx::query(
            "SELECT at, range_from, range_to, project, records_examined, records_changed,
                    newly_priced, newly_unpriced, old_total_nanos, new_total_nanos, actor
             FROM reprice_audit ORDER BY seq DESC LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(RepriceAudit {
                    at: row.try_get(0)?,
                    scope: RepriceScope {
                        from: row.try_get(1)?,
                        to: row.try_get(2)?,
                        project: row.try_get(3)?,
                        dry_run: false,
                        actor: row.try_get(10)?,
                        ..RepriceScope::default()
                    },
                    summary: RepriceSummary {
                        examined: unsigned(row.try_get(4)?),
                        changed: unsigned(row.try_get(5)?),
                        newly_priced: unsigned(row.try_get(6)?),
                        newly_unpriced: unsigned(row.try_get(7)?),
                        old_total: money::from_nanos(row.try_get(8)?),
                        new_total: money::from_nanos(row.try_get(9)?),
                    },
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    async fn dead_letters(&self, limit: u32) -> Result<Vec<DeadLetter>, StoreError> {
        let rows = sqlx::query(
            "SELECT received_at, source, code, reason, line FROM dead_letters
             ORDER BY seq DESC LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(DeadLetter {
                    received_at: row.try_get(0)?,
                    source: row.try_get(1)?,
                    code: row.try_get(2)?,
                    reason: row.try_get(3)?,
                    line: row.try_get(4)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    async fn apply_retention(
        &self,
        cutoffs: &RetentionCutoffs,
        dry_run: bool,
    ) -> Result<RetentionReport, StoreError> {
        self.ensure_months_ahead().await?;
        let mut report = RetentionReport::default();
        if let Some(cutoff) = cutoffs.events {
            // Whole months only: the partitions that end at or before the cutoff.
            let oldest_kept = month_of(cutoff);
            let horizon = oldest_kept.and_time(chrono::NaiveTime::MIN).and_utc();
            report.events_before = Some(horizon);
            if !dry_run {
                self.record_horizon(horizon).await?;
            }
            let dropping = std::time::Instant::now();
            for (name, month) in self.partitions_before(oldest_kept).await? {
                if !dry_run {
                    // Another replica may have dropped it a moment ago.
                    sqlx::query(sqlx::AssertSqlSafe(format!("DROP TABLE IF EXISTS {name}")))
                        .execute(&self.pool)
                        .await?;
                    self.partitions
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&month);
                }
                report.partitions.push(name);
            }
            report.partitions_dropped_in = dropping.elapsed();
            // The keys of the dropped months, one per event they held (counting them is
            // how the events are counted: a partition is dropped without a scan). No
            // record of theirs can come back: older than the horizon, it is refused.
            report.events = self
                .delete_before("event_keys", "month", oldest_kept, dry_run)
                .await?;
        }
        if let Some(cutoff) = cutoffs.dead_letters {
            report.dead_letters = self
                .delete_before("dead_letters", "received_at", cutoff, dry_run)
                .await?;
        }
        if let Some(cutoff) = cutoffs.hourly_rollups {
            report.hourly_rollups = self
                .delete_before("rollups_hourly", "hour", cutoff, dry_run)
                .await?;
        }
        if let Some(cutoff) = cutoffs.daily_rollups {
            report.daily_rollups = self
                .delete_before("rollups_daily", "day", cutoff, dry_run)
                .await?;
        }
        if let Some(cutoff) = cutoffs.monthly_rollups {
            report.monthly_rollups = self
                .delete_before("rollups_monthly", "month", cutoff, dry_run)
                .await?;
            report.project_totals = self
                .delete_before(PROJECT_TOTALS, "month", cutoff, dry_run)
                .await?;
        }
        Ok(report)
    }
}

#[async_trait]
impl CheckpointStore for PgStore {
    async fn checkpoints(&self, collector: &str) -> Result<Vec<Checkpoint>, StoreError> {
        let rows = sqlx::query(
            r#"SELECT collector, fingerprint, path, "offset" FROM collector_checkpoints
               WHERE collector = $1 ORDER BY fingerprint"#,
        )
        .bind(collector)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(Checkpoint {
                    collector: row.try_get(0)?,
                    fingerprint: row.try_get(1)?,
                    path: row.try_get(2)?,
                    offset: unsigned(row.try_get(3)?),
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    async fn delete_checkpoint(
        &self,
        collector: &str,
        fingerprint: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM collector_checkpoints WHERE collector = $1 AND fingerprint = $2")
            .bind(collector)
            .bind(fingerprint)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// The models of unpriced events, with their usage.
static UNPRICED_MODELS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT provider, model, min(time), max(time), count(*)::bigint, min(unpriced_reason), \
             {} \
         FROM events \
         WHERE cost_nanos IS NULL AND time >= $1 AND time < $2 \
           AND ($3::text[] IS NULL OR project = ANY($3)) \
         GROUP BY provider, model ORDER BY count(*) DESC, provider, model",
        token_sums("::bigint")
    )
});

fn aggregate_from_row(row: &PgRow, group_by: &[Dimension]) -> Result<UsageAggregate, sqlx::Error> {
    let mut aggregate = UsageAggregate::default();
    for (position, dimension) in group_by.iter().enumerate() {
        if dimension.is_time() {
            aggregate.hour = Some(row.try_get(position)?);
        } else {
            aggregate.keys.push(row.try_get(position)?);
        }
    }
    let mut values = [0i128; ROLLUP_VALUES];
    for (i, slot) in values.iter_mut().enumerate() {
        let index = group_by.len() + i;
        let raw = row.try_get_raw(index)?;
        // A plain column where the rows are the groups (`rows_are_groups`), else a sum.
        if sqlx::TypeInfo::name(&*sqlx::ValueRef::type_info(&raw)) == "INT8" {
            *slot = i128::from(row.try_get::<i64, _>(index)?);
            continue;
        }
        *slot =
            integer_numeric(raw.as_bytes().map_err(sqlx::Error::Decode)?).map_err(|reason| {
                sqlx::Error::ColumnDecode {
                    index: index.to_string(),
                    source: reason.into(),
                }
            })?;
    }
    fill_aggregate(&mut aggregate, &values);
    Ok(aggregate)
}

/// An integer `numeric` (the sum of a bigint column) from Postgres' binary format: the
/// digit count, the weight of the first digit, the sign and the display scale (16 bits
/// each), then the digits in base 10,000, trailing zero digits left out. Decoding it
/// straight to an integer makes no allocation: a `Decimal` decode allocates per value,
/// and on a wide answer (24,000 rows of 24 sums) that cost more than the query itself.
fn integer_numeric(bytes: &[u8]) -> Result<i128, String> {
    let word = |at: usize| -> Result<u16, String> {
        bytes
            .get(at..at + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .ok_or_else(|| format!("a numeric of {} bytes is cut short", bytes.len()))
    };
    let digits = usize::from(word(0)?);
    let weight = i32::from(word(2)? as i16);
    let sign = word(4)?;
    let overflow = || "a sum passes 2^127".to_owned();
    let mut value: i128 = 0;
    for i in 0..digits {
        let digit = word(8 + 2 * i)?;
        value = value
            .checked_mul(10_000)
            .and_then(|v| v.checked_add(i128::from(digit)))
            .ok_or_else(overflow)?;
    }
    // The digits left out after the last one given, all zero.
    let zeros = weight + 1 - i32::try_from(digits).map_err(|_| overflow())?;
    if zeros < 0 {
        return Err("a sum of integers has a fractional part".to_owned());
    }
    for _ in 0..zeros {
        value = value.checked_mul(10_000).ok_or_else(overflow)?;
    }
    match sign {
        0x0000 => Ok(value),
        0x4000 => Ok(-value),
        _ => Err("a sum is not a number".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::integer_numeric;

    /// The binary `numeric` of digits in base 10,000, the first one's weight and a sign.
    fn numeric(digits: &[u16], weight: i16, negative: bool) -> Vec<u8> {
        let mut bytes = Vec::new();
        bytes.extend((digits.len() as u16).to_be_bytes());
        bytes.extend(weight.to_be_bytes());
        bytes.extend(if negative { 0x4000u16 } else { 0 }.to_be_bytes());
        bytes.extend(0u16.to_be_bytes());
        for digit in digits {
            bytes.extend(digit.to_be_bytes());
        }
        bytes
    }

    #[test]
    fn integer_numerics_decode_exactly() {
        let cases: [(&[u16], i16, bool, i128); 7] = [
            (&[], 0, false, 0),
            (&[7], 0, false, 7),
            (&[1234, 5678], 1, false, 12_345_678),
            (&[1], 1, false, 10_000),
            (&[1], 4, true, -10_000_i128.pow(4)),
            (
                &[922, 3372, 368, 5477, 5808],
                4,
                false,
                9_223_372_036_854_775_808,
            ),
            (
                &[170, 1411, 8346, 469, 2317, 3168, 7303, 7158, 8410, 5727],
                9,
                false,
                i128::MAX,
            ),
        ];
        for (digits, weight, negative, want) in cases {
            assert_eq!(
                integer_numeric(&numeric(digits, weight, negative)),
                Ok(want),
                "{digits:?} {weight}"
            );
        }
        // Cut short, a fraction, NaN, past i128: errors, never a wrong number.
        assert!(integer_numeric(&[0, 1]).is_err());
        assert!(integer_numeric(&numeric(&[1, 5000], 0, false)).is_err());
        let mut nan = numeric(&[], 0, false);
        nan[4] = 0xC0;
        assert!(integer_numeric(&nan).is_err());
        assert!(integer_numeric(&numeric(&[1], 40, false)).is_err());
        assert!(integer_numeric(&numeric(&[1], 0, false)[..9]).is_err());
    }
}
