//! The SQLite store: the embedded default, one file, nothing to install.
//!
//! WAL mode, a busy timeout, and one writer at a time (`BEGIN IMMEDIATE` takes the write
//! lock up front, so a transaction never fails half-way for want of it). A write inserts
//! its events with multi-row `INSERT … ON CONFLICT DO NOTHING RETURNING`, and adds the
//! rollup sums (computed in Rust, like the Postgres fast path) of exactly the returned
//! rows. Several daemons may not share one file: `serve` holds a lock on it.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite};

use super::columns::{from_micros, micros};
use super::rows::{
    Cell, EVENT_COLUMNS, EventRow, PICOS_SPLIT, PRICING_COLUMNS, PROJECT_TOTALS, ROLLUP_VALUES,
    RepriceSteps, Rollup, RollupKey, RollupSums, Source, SumStyle, coarsest_table, count,
    empty_groups, fill_aggregate, groups_by_level, is_picos_column, part_select, project_totals,
    reprice_windows, rollup_deltas, rollup_groups, rollup_increments, rows_are_groups,
    scan_columns, statement_sized_chunks, stored_event, token_sums, tokens_from, unique_events,
    unsigned, usage_plan, usage_sums,
};
use super::{
    Checkpoint, CheckpointStore, DeadLetter, Dimension, EventScan, Inserted, NewEvent, PriceFn,
    RETENTION_CHUNK, RepriceAudit, RepriceScope, RepriceSummary, RetentionCutoffs, RetentionReport,
    Store, StoreError, UnpricedModel, UsageAggregate, UsageFilter, UsageQuery, UsageStore,
    WriteBatch, delete_in_chunks, event_windows,
};
use crate::money;
use crate::prepare::PricedRecord;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Rows per multi-row statement (events inserted, rollup groups upserted). Each size used
/// is a statement prepared once and cached per connection, holding memory in proportion
/// to its rows: 128 rows keeps the dozen cached statements small, and a statement's round
/// trip is still shared by many rows. (SQLite's limit of 32,766 bound variables would
/// allow 500.)
const ROWS_PER_STATEMENT: usize = 128;

static INSERT_EVENTS: LazyLock<String> = LazyLock::new(|| {
    let columns: Vec<&str> = EVENT_COLUMNS.iter().map(|c| c.name.as_str()).collect();
    format!("INSERT INTO events ({}) ", columns.join(", "))
});

/// Binds one cell as SQLite stores it (times as Unix microseconds).
fn bind_cell(
    values: &mut sqlx::query_builder::Separated<'_, Sqlite, &'static str>,
    cell: &Cell<'_>,
) {
    match cell {
        Cell::Text(text) => values.push_bind(text.map(str::to_owned)),
        Cell::Json(text) => values.push_bind((*text).to_owned()),
        Cell::Integer(value) => values.push_bind(*value),
        Cell::Boolean(value) => values.push_bind(*value),
        Cell::Time(time) => values.push_bind(micros(*time)),
    };
}

#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
    path: PathBuf,
}

impl SqliteStore {
    /// Deletes (or counts) the rows of `table` whose `column` is before `cutoff`, a
    /// chunk per transaction, so a writer waits for one chunk at most.
    /// `key` names a row: `rowid`, or the primary key of a `WITHOUT ROWID` table.
    async fn delete_before(
        &self,
        table: &str,
        key: &str,
        column: &str,
        cutoff: i64,
        dry_run: bool,
    ) -> Result<u64, StoreError> {
        if dry_run {
            let count: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT count(*) FROM {table} WHERE {column} < ?"
            )))
            .bind(cutoff)
            .fetch_one(&self.pool)
            .await?;
            return Ok(unsigned(count));
        }
        let statement = format!(
            "DELETE FROM {table} WHERE ({key}) IN \
             (SELECT {key} FROM {table} WHERE {column} < ? LIMIT {RETENTION_CHUNK})"
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

    /// Opens (creating if missing) the database file a `sqlite://PATH` URL names.
    pub async fn connect(url: &str) -> Result<SqliteStore, StoreError> {
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .map(|p| p.split('?').next().unwrap_or(p))
            .filter(|p| !p.is_empty())
            .ok_or_else(|| StoreError::InvalidUrl {
                url: url.to_owned(),
                reason: "expected sqlite://PATH".into(),
            })?;
        if path == ":memory:" {
            return Err(StoreError::InvalidUrl {
                url: url.to_owned(),
                reason: "an in-memory database would lose every record; give a file path".into(),
            });
        }
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))
            .map_err(|error| StoreError::InvalidUrl {
                url: url.to_owned(),
                reason: error.to_string(),
            })?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a commit is on disk before the caller is told so.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        Ok(SqliteStore {
            pool,
            path: PathBuf::from(path),
        })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Adds hourly sums (negative ones too: a reprice moving records between groups) to the
/// hourly, daily and monthly rollups, many groups per statement (each statement is a
/// round trip to SQLite's worker thread).
async fn add_rollups(
    tx: &mut sqlx::Transaction<'_, Sqlite>,
    hourly: BTreeMap<RollupKey<'_>, RollupSums>,
) -> Result<(), StoreError> {
    let levels = groups_by_level(hourly)?;
    let totals: Vec<_> = project_totals(&levels[2].1)?.into_iter().collect();
    for (level, groups) in levels {
        let groups: Vec<_> = groups.into_iter().collect();
        let table = (level.table(), level.key_columns(), level.value_columns());
        upsert(tx, table, &groups, |values, key| {
            values
                .push_bind(key.0)
                .push_bind(key.1.timestamp())
                .push_bind(key.2)
                .push_bind(key.3)
                .push_bind(key.4)
                .push_bind(key.5)
                .push_bind(key.6)
                .push_bind(key.7);
        })
        .await?;
    }
    let table = (
        PROJECT_TOTALS,
        "project, month".to_owned(),
        Rollup::Monthly.value_columns(),
    );
    upsert(tx, table, &totals, |values, key| {
        values.push_bind(key.0).push_bind(key.1.timestamp());
    })
    .await
}

/// Adds sums to a rollup table's rows, many rows per statement. `table` is its name, key
/// columns and value columns (a prefix of `ROLLUP_VALUE_COLUMNS`); `bind_key` binds a
/// row's key.
async fn upsert<K>(
    tx: &mut sqlx::Transaction<'_, Sqlite>,
    (table, keys, columns): (&str, String, &[String]),
    rows: &[(K, RollupSums)],
    bind_key: impl Fn(&mut sqlx::query_builder::Separated<'_, Sqlite, &'static str>, &K),
) -> Result<(), StoreError> {
    let head = format!("INSERT INTO {table} ({keys}, {}) ", columns.join(", "));
    let tail = format!(
        " ON CONFLICT ({keys}) DO UPDATE SET {}",
        rollup_increments("", columns)
    );
    for chunk in statement_sized_chunks(rows, ROWS_PER_STATEMENT) {
        let mut upsert = QueryBuilder::<Sqlite>::new(head.as_str());
        upsert.push_values(chunk, |mut values, (key, sums)| {
            bind_key(&mut values, key);
            for value in &sums.values()[..columns.len()] {
                values.push_bind(*value);
            }
        });
        upsert.push(&tail);
        upsert.build().execute(&mut **tx).await?;
    }
    Ok(())
}

/// Refuses a write holding a record older than the events horizon retention last
/// applied: its period's events (and keys) may be gone, so it could count twice. The
/// pipeline refuses such records before they get here; this closes the race with a
/// retention run that starts while they are on their way.
async fn check_horizon(
    tx: &mut sqlx::Transaction<'_, Sqlite>,
    rows: &[EventRow<'_>],
) -> Result<(), StoreError> {
    let Some(oldest) = rows.iter().map(|row| row.event.priced.record.time).min() else {
        return Ok(());
    };
    let horizon: Option<i64> = sqlx::query_scalar("SELECT events_before FROM retention_horizon")
        .fetch_optional(&mut **tx)
        .await?;
    match horizon.map(from_micros) {
        Some(horizon) if oldest < horizon => Err(StoreError::Refused(super::past_horizon(horizon))),
        _ => Ok(()),
    }
}

/// `seconds` (Unix seconds) cut to the start of its UTC hour, day or month.
fn truncate(unit: Rollup, seconds: &str) -> String {
    match unit {
        Rollup::Hourly => format!("({seconds} / 3600) * 3600"),
        Rollup::Daily => format!("({seconds} / 86400) * 86400"),
        Rollup::Monthly => {
            format!("CAST(strftime('%s', {seconds}, 'unixepoch', 'start of month') AS INTEGER)")
        }
    }
}

/// Adds a usage filter's conditions (`model_column` names the sheet's model id).
fn push_filter(sql: &mut QueryBuilder<Sqlite>, filter: &UsageFilter, model_column: &str) {
    if let Some(projects) = &filter.projects {
        if projects.is_empty() {
            sql.push(" AND 0 = 1");
        } else {
            sql.push(" AND project IN (");
            let mut list = sql.separated(", ");
            for project in projects {
                list.push_bind(project.clone());
            }
            sql.push(")");
        }
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
        sql.push(" AND json_extract(tags, ")
            .push_bind(json_path(key))
            .push(") = ")
            .push_bind(value.clone());
    }
}

/// A reprice's steps in an open transaction.
struct Repricing<'p> {
    pool: &'p SqlitePool,
    dry_run: bool,
    tx: Option<sqlx::Transaction<'static, Sqlite>>,
}

impl Repricing<'_> {
    fn tx(&mut self) -> Result<&mut sqlx::Transaction<'static, Sqlite>, StoreError> {
        self.tx
            .as_mut()
            .ok_or_else(|| StoreError::Conflict("no reprice transaction is open".into()))
    }
}

impl RepriceSteps for Repricing<'_> {
    async fn begin(&mut self) -> Result<(), StoreError> {
        // BEGIN IMMEDIATE takes the one write lock: a window and a write never interleave.
        let begin = if self.dry_run {
            "BEGIN"
        } else {
            "BEGIN IMMEDIATE"
        };
        self.tx = Some(self.pool.begin_with(begin).await?);
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
                "DELETE FROM {table} WHERE requests = 0 AND {column} = ?"
            )))
            .bind(start.timestamp())
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
    executor: impl sqlx::SqliteExecutor<'c>,
    scan: &EventScan,
) -> Result<Vec<PricedRecord>, StoreError> {
    let mut sql = QueryBuilder::<Sqlite>::new("SELECT ");
    sql.push(scan_columns(""))
        .push(" FROM events WHERE time >= ")
        .push_bind(micros(scan.from))
        .push(" AND time < ")
        .push_bind(micros(scan.to));
    push_filter(&mut sql, &scan.filter, "coalesce(resolved_model, model)");
    let rows = sql.build().fetch_all(executor).await?;
    rows.iter()
        .map(stored_event)
        .collect::<Result<_, sqlx::Error>>()
        .map_err(StoreError::from)
}

static UPDATE_PRICING: LazyLock<String> = LazyLock::new(|| {
    let sets: Vec<String> = PRICING_COLUMNS
        .iter()
        .map(|column| format!("{} = ?", column.name))
        .collect();
    format!(
        "UPDATE events SET {} WHERE project = ? AND id = ?",
        sets.join(", ")
    )
});

async fn update_pricing(
    tx: &mut sqlx::Transaction<'_, Sqlite>,
    rows: &[EventRow<'_>],
) -> Result<(), StoreError> {
    for row in rows {
        let record = &row.event.priced.record;
        let mut query = sqlx::query(sqlx::AssertSqlSafe(UPDATE_PRICING.as_str()));
        for cell in row.pricing_cells() {
            query = match cell {
                Cell::Integer(value) => query.bind(value),
                Cell::Text(text) => query.bind(text),
                other => {
                    return Err(StoreError::Conflict(format!(
                        "a pricing column holds {other:?}"
                    )));
                }
            };
        }
        query
            .bind(&record.project)
            .bind(&record.id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

#[async_trait]
impl Store for SqliteStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
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
        "sqlite"
    }
}

#[async_trait]
impl UsageStore for SqliteStore {
    async fn write(&self, parts: &[&WriteBatch]) -> Result<Inserted, StoreError> {
        let now = Utc::now();
        let events: Vec<&NewEvent> = parts.iter().flat_map(|p| p.events.iter()).collect();
        let unique = unique_events(&events);
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        check_horizon(&mut tx, &unique.rows).await?;
        let mut inserted: HashSet<(String, String)> = HashSet::new();
        for chunk in statement_sized_chunks(&unique.rows, ROWS_PER_STATEMENT) {
            let mut insert = QueryBuilder::<Sqlite>::new(INSERT_EVENTS.as_str());
            insert.push_values(chunk, |mut values, row: &EventRow<'_>| {
                for cell in row.cells(now) {
                    bind_cell(&mut values, &cell);
                }
            });
            insert.push(" ON CONFLICT (project, id) DO NOTHING RETURNING project, id");
            for returned in insert.build().fetch_all(&mut *tx).await? {
                inserted.insert((returned.try_get(0)?, returned.try_get(1)?));
            }
        }
        let new_rows = unique.rows.iter().filter(|row| {
            let record = &row.event.priced.record;
            inserted.contains(&(record.project.clone(), record.id.clone()))
        });
        add_rollups(&mut tx, rollup_groups(new_rows)?).await?;
        for letter in parts.iter().flat_map(|p| p.dead_letters.iter()) {
            sqlx::query(
                "INSERT INTO dead_letters (received_at, source, code, reason, line) VALUES (?, ?, ?, ?, ?)",
            )
            .bind(micros(letter.received_at))
            .bind(&letter.source)
            .bind(&letter.code)
            .bind(&letter.reason)
            .bind(&letter.line)
            .execute(&mut *tx)
            .await?;
        }
        // Later checkpoints of the same file overwrite earlier ones, in order.
        for checkpoint in parts.iter().flat_map(|p| p.checkpoints.iter()) {
            sqlx::query(
                r#"INSERT INTO collector_checkpoints (collector, fingerprint, path, "offset", updated_at)
                   VALUES (?, ?, ?, ?, ?)
                   ON CONFLICT (collector, fingerprint) DO UPDATE
                   SET path = excluded.path, "offset" = excluded."offset", updated_at = excluded.updated_at"#,
            )
            .bind(&checkpoint.collector)
            .bind(&checkpoint.fingerprint)
            .bind(&checkpoint.path)
            .bind(count(checkpoint.offset))
            .bind(micros(now))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(events
            .iter()
            .zip(&unique.first_copies)
            .map(|(event, first)| {
                let record = &event.priced.record;
                *first && inserted.contains(&(record.project.clone(), record.id.clone()))
            })
            .collect())
    }

    async fn usage(&self, query: &UsageQuery) -> Result<Vec<UsageAggregate>, StoreError> {
        let mut sql = QueryBuilder::<Sqlite>::new("SELECT ");
        for dimension in &query.group_by {
            match dimension {
                Dimension::Project => sql.push("project"),
                Dimension::Provider => sql.push("provider"),
                Dimension::Model => sql.push("model"),
                Dimension::ServiceTier => sql.push("service_tier"),
                Dimension::Batch => sql.push("CASE WHEN batch THEN 'true' ELSE 'false' END"),
                Dimension::ReasoningEffort => sql.push("reasoning_effort"),
                Dimension::Tag(key) => sql
                    .push("coalesce(json_extract(tags, ")
                    .push_bind(json_path(key))
                    .push("), '')"),
                Dimension::Tags => sql.push("tags"),
                Dimension::Hour | Dimension::Day | Dimension::Month => sql.push("slot"),
            };
            sql.push(", ");
        }
        let parts = usage_plan(query.from, query.to, coarsest_table(query), Utc::now());
        let grouped = !rows_are_groups(&parts, query);
        sql.push(usage_sums(SumStyle::SplitPicos, query.measures, grouped))
            .push(" FROM (");
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                sql.push(" UNION ALL ");
            }
            let (select, time) = part_select(part, query, truncate, "(time / 1000000)");
            // Events keep microseconds, rollups the seconds of their hour, day or month.
            let bound = |time: DateTime<Utc>| match part.source {
                Source::Events => micros(time),
                Source::Rollup(_) => time.timestamp(),
            };
            sql.push(select)
                .push_bind(bound(part.from))
                .push(format!(" AND {time} < "))
                .push_bind(bound(part.to));
        }
        sql.push(") AS usage WHERE 1 = 1");
        push_filter(&mut sql, &query.filter, "model");
        let groups = query.group_by.len();
        if groups > 0 {
            let positions: Vec<String> = (1..=groups).map(|i| i.to_string()).collect();
            if grouped {
                sql.push(" GROUP BY ").push(positions.join(", "));
            }
            sql.push(" ORDER BY ").push(positions.join(", "));
        }
        let rows = sql.build().fetch_all(&self.pool).await?;
        let aggregates = rows
            .iter()
            .map(|row| aggregate_from_row(row, &query.group_by))
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        // No usage at all comes back as one row of zeros, a group whose subtracted part
        // cancels it as a row of zeros too.
        Ok(aggregates.into_iter().filter(|a| a.requests > 0).collect())
    }

    async fn unpriced(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        projects: Option<&[String]>,
    ) -> Result<Vec<UnpricedModel>, StoreError> {
        let mut sql = QueryBuilder::<Sqlite>::new(format!(
            "SELECT provider, model, min(time), max(time), count(*), min(unpriced_reason), {} \
             FROM events WHERE cost_nanos IS NULL AND time >= ",
            token_sums("")
        ));
        sql.push_bind(micros(from))
            .push(" AND time < ")
            .push_bind(micros(to));
        let filter = UsageFilter {
            projects: projects.map(<[String]>::to_vec),
            ..UsageFilter::default()
        };
        push_filter(&mut sql, &filter, "model");
        sql.push(" GROUP BY provider, model ORDER BY count(*) DESC, provider, model");
        let rows = sql.build().fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| {
                Ok(UnpricedModel {
                    provider: row.try_get(0)?,
                    model: row.try_get(1)?,
                    first_seen: from_micros(row.try_get(2)?),
                    last_seen: from_micros(row.try_get(3)?),
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
            dry_run: scope.dry_run,
            tx: None,
        };
        let summary = reprice_windows(&mut steps, windows, scope, price).await?;
        if scope.dry_run {
            return Ok(summary);
        }
        sqlx::query(
            "INSERT INTO reprice_audit (at, range_from, range_to, project, records_examined,
                 records_changed, newly_priced, newly_unpriced, old_total_nanos, new_total_nanos, actor)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(micros(Utc::now()))
        .bind(micros(scope.from))
        .bind(micros(scope.to))
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
             FROM reprice_audit ORDER BY seq DESC LIMIT ?",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(RepriceAudit {
                    at: from_micros(row.try_get(0)?),
                    scope: RepriceScope {
                        from: from_micros(row.try_get(1)?),
                        to: from_micros(row.try_get(2)?),
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
            "SELECT received_at, source, code, reason, line FROM dead_letters ORDER BY seq DESC LIMIT ?",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(DeadLetter {
                    received_at: from_micros(row.try_get(0)?),
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
        let mut report = RetentionReport {
            events_before: cutoffs.events,
            ..RetentionReport::default()
        };
        // Instants are stored in microseconds, rollup hours and days in seconds; the
        // rollup tables have no rowid: a row is named by its key.
        let seconds = |time: Option<DateTime<Utc>>| time.map(|t| t.timestamp());
        if let (Some(horizon), false) = (cutoffs.events, dry_run) {
            // Recorded before any event goes: from then on a write holding an older record
            // is refused (`check_horizon`). The write lock orders it after any write under way.
            sqlx::query(
                "INSERT INTO retention_horizon (singleton, events_before) VALUES (1, ?) \
                 ON CONFLICT (singleton) DO UPDATE \
                 SET events_before = max(events_before, excluded.events_before)",
            )
            .bind(micros(horizon))
            .execute(&self.pool)
            .await?;
        }
        let keys = Rollup::ALL.map(Rollup::key_columns);
        for (table, key, column, cutoff, removed) in [
            (
                "events",
                "rowid",
                "time",
                cutoffs.events.map(micros),
                &mut report.events,
            ),
            (
                "dead_letters",
                "rowid",
                "received_at",
                cutoffs.dead_letters.map(micros),
                &mut report.dead_letters,
            ),
            (
                "rollups_hourly",
                keys[0].as_str(),
                "hour",
                seconds(cutoffs.hourly_rollups),
                &mut report.hourly_rollups,
            ),
            (
                "rollups_daily",
                keys[1].as_str(),
                "day",
                seconds(cutoffs.daily_rollups),
                &mut report.daily_rollups,
            ),
            (
                "rollups_monthly",
                keys[2].as_str(),
                "month",
                seconds(cutoffs.monthly_rollups),
                &mut report.monthly_rollups,
            ),
            (
                PROJECT_TOTALS,
                "month, project",
                "month",
                seconds(cutoffs.monthly_rollups),
                &mut report.project_totals,
            ),
        ] {
            if let Some(cutoff) = cutoff {
                *removed = self
                    .delete_before(table, key, column, cutoff, dry_run)
                    .await?;
            }
        }
        Ok(report)
    }
}

#[async_trait]
impl CheckpointStore for SqliteStore {
    async fn checkpoints(&self, collector: &str) -> Result<Vec<Checkpoint>, StoreError> {
        let rows = sqlx::query(
            r#"SELECT collector, fingerprint, path, "offset" FROM collector_checkpoints
               WHERE collector = ? ORDER BY fingerprint"#,
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
        sqlx::query("DELETE FROM collector_checkpoints WHERE collector = ? AND fingerprint = ?")
            .bind(collector)
            .bind(fingerprint)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// The JSON path of a tag: `$."team"` (tag names are validated: no quotes inside).
fn json_path(key: &str) -> String {
    format!("$.\"{key}\"")
}

fn aggregate_from_row(
    row: &SqliteRow,
    group_by: &[Dimension],
) -> Result<UsageAggregate, sqlx::Error> {
    let mut aggregate = UsageAggregate::default();
    for (position, dimension) in group_by.iter().enumerate() {
        if dimension.is_time() {
            let hour: i64 = row.try_get(position)?;
            aggregate.hour = Utc.timestamp_opt(hour, 0).single();
        } else {
            aggregate.keys.push(row.try_get(position)?);
        }
    }
    let mut values = [0i128; ROLLUP_VALUES];
    let mut column = group_by.len();
    for (i, slot) in values.iter_mut().enumerate() {
        let value: i64 = row.try_get(column)?;
        column += 1;
        *slot = i128::from(value);
        if is_picos_column(i) {
            let rest: i64 = row.try_get(column)?;
            column += 1;
            *slot = *slot * i128::from(PICOS_SPLIT) + i128::from(rest);
        }
    }
    fill_aggregate(&mut aggregate, &values);
    Ok(aggregate)
}
