//! The store: a domain-level trait over Postgres (production) and SQLite (the embedded
//! default). Callers never see SQL; both backends pass one contract test suite.

mod columns;
mod pg_budgets;
mod pg_prices;
mod pg_tokens;
mod postgres;
mod rows;
mod sqlite;
mod sqlite_budgets;
mod sqlite_prices;
mod sqlite_tokens;
mod types;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::prepare::PricedRecord;
pub use postgres::PgStore;
pub use sqlite::SqliteStore;
pub use types::*;

/// Store failures, split the way callers must react to them.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or the connection broke: retry later (503).
    #[error("store unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("invalid store URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// The database answers but lacks the tables or migrations this build needs.
    #[error("the schema is not in place: {0}")]
    SchemaMissing(String),
    /// A write the store cannot take as it is: a sum would pass the largest value a
    /// column keeps, a value is too large for an index. Retrying will not help; the
    /// pipeline finds the records that cause it and refuses only those.
    #[error("{0}")]
    Refused(String),
    #[error("store error: {0}")]
    Other(#[source] sqlx::Error),
}

/// What a refused write says about the record that caused it.
pub const OUT_OF_RANGE: &str = "a rollup sum it adds to would pass the largest value the store keeps (9223372036854775807 in one column: $9,223,372.036854775807 of one token type per project, model, tags and day, or $9,223,372,036.854775807 in total per project and month)";

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Tls(_) => StoreError::Unavailable(error),
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::Database(db) => {
                // Connection-level failures the server reports: shutdown, too many clients,
                // cannot connect now, admin termination.
                let code = db.code().unwrap_or_default();
                // A FATAL error ends the session: the server is going away or refuses us.
                let fatal = db
                    .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                    .is_some_and(|pg| {
                        matches!(
                            pg.severity(),
                            sqlx::postgres::PgSeverity::Fatal | sqlx::postgres::PgSeverity::Panic
                        )
                    });
                // SQLite: busy, locked (another writer holds the file for longer than the
                // busy timeout) and their extended codes.
                let sqlite_busy = matches!(code.as_ref(), "5" | "6" | "261" | "262" | "517");
                if fatal
                    || sqlite_busy
                    || code.starts_with("08")
                    || code.starts_with("57P")
                    || code == "53300"
                    || code == "55000"
                    // Deadlock and serialization failures: the transaction may simply be retried.
                    || code == "40P01"
                    || code == "40001"
                {
                    StoreError::Unavailable(error)
                } else if matches!(code.as_ref(), "23505" | "2067" | "1555") {
                    // Unique violations: Postgres, SQLite (UNIQUE, PRIMARY KEY).
                    StoreError::Conflict(db.message().to_owned())
                } else if code == "22003" || db.message().contains(OUT_OF_RANGE_MARK) {
                    // Postgres: bigint out of range; SQLite: the rollup triggers' abort.
                    StoreError::Refused(OUT_OF_RANGE.to_owned())
                } else if code.starts_with("22")
                    || code.starts_with("54")
                    || code.starts_with("23")
                    || matches!(code.as_ref(), "18" | "19" | "275" | "1299" | "1811")
                {
                    // Other data exceptions, integrity violations and program limits (an
                    // index row too large); SQLite: too big, constraint, check, not null,
                    // trigger.
                    StoreError::Refused(format!("the store refused it: {}", db.message()))
                } else {
                    StoreError::Other(error)
                }
            }
            _ => StoreError::Other(error),
        }
    }
}

/// What `ping` asks to know the schema is in place: every table the daemon uses (named,
/// read for no rows) and the last migration applied.
pub(crate) const SCHEMA_PROBE: &str = "SELECT max(version) FROM _sqlx_migrations \
     WHERE success AND NOT EXISTS (SELECT 1 FROM events, rollups_hourly, rollups_daily, \
     rollups_monthly, rollups_project_monthly, retention_horizon, \
     dead_letters, collector_checkpoints, budgets, alerts, deliveries, delivery_attempts, \
     digest_runs, api_tokens, price_syncs, reprice_audit WHERE 1 = 0)";

/// A failed schema probe: an outage stays an outage; anything else (a missing table,
/// a missing migrations table) means the schema is not in place.
pub(crate) fn schema_error(error: sqlx::Error) -> StoreError {
    match StoreError::from(error) {
        transient if transient.is_transient() => transient,
        other => StoreError::SchemaMissing(other.to_string()),
    }
}

/// Fails unless the database has every migration this build carries.
pub(crate) fn check_schema_version(
    applied: Option<i64>,
    migrator: &sqlx::migrate::Migrator,
) -> Result<(), StoreError> {
    let wanted = migrator.iter().map(|m| m.version).max().unwrap_or(0);
    match applied {
        Some(version) if version >= wanted => Ok(()),
        other => Err(StoreError::SchemaMissing(format!(
            "the last migration applied is {}, this build needs {wanted}",
            other.map_or_else(|| "none".to_owned(), |v| v.to_string())
        ))),
    }
}

/// Why a store refuses a record older than the events horizon retention last applied.
pub(crate) fn past_horizon(horizon: DateTime<Utc>) -> String {
    format!(
        "a record older than the events retention horizon (events before {} were removed)",
        crate::usage::format_time(&horizon)
    )
}

/// The text the SQLite rollup triggers abort with when a sum stops being an integer.
pub(crate) const OUT_OF_RANGE_MARK: &str = "rollup value out of range";

impl StoreError {
    /// True when retrying later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }

    /// True for a deadlock or a serialization failure: the same transaction, tried again
    /// at once, normally goes through.
    pub fn is_contention(&self) -> bool {
        match self {
            StoreError::Unavailable(sqlx::Error::Database(db)) => {
                matches!(db.code().as_deref(), Some("40P01" | "40001"))
            }
            _ => false,
        }
    }
}

/// A store: both backends implement every part, and callers hold an `Arc<dyn Store>`.
/// Each part is its own trait so a backend implements it in one place (its usage,
/// budget, outbox and token files) and a caller can say which part it needs.
#[async_trait]
pub trait Store:
    UsageStore + BudgetStore + OutboxStore + TokenStore + CheckpointStore + PriceStore + 'static
{
    /// Applies the schema migrations.
    async fn migrate(&self) -> Result<(), StoreError>;
    /// Fails when the database cannot be reached.
    async fn ping(&self) -> Result<(), StoreError>;
    /// Which backend this is, for logs: `postgres` or `sqlite`.
    fn kind(&self) -> &'static str;
    /// On a read replica, how far behind the primary what it shows is: zero when it has
    /// replayed all it received, else the time since the last transaction it replayed.
    /// None on a store that is not a replica.
    async fn replica_lag(&self) -> Result<Option<std::time::Duration>, StoreError> {
        Ok(None)
    }
}

/// Usage: events, rollups, dead letters, reprices. Implementations keep these
/// guarantees:
/// - `write` is one transaction: events, rollups, dead letters and checkpoints commit
///   together or not at all;
/// - (`project`, `id`) is inserted once, ever; later copies are reported as duplicates;
/// - rollups change only for events actually inserted.
#[async_trait]
pub trait UsageStore: Send + Sync {
    /// Writes batches in one transaction; says which events were new, in the order of
    /// the parts' events.
    async fn write(&self, parts: &[&WriteBatch]) -> Result<Inserted, StoreError>;
    /// Usage grouped by `query.group_by`, ordered by the group keys.
    async fn usage(&self, query: &UsageQuery) -> Result<Vec<UsageAggregate>, StoreError>;
    /// Models seen without a price in `[from, to)`.
    async fn unpriced(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        projects: Option<&[String]>,
    ) -> Result<Vec<UnpricedModel>, StoreError>;
    /// The events of a scan, in no particular order, each as the record it was and the
    /// price it has now. Callers scan in windows (an hour at a time) to bound memory.
    async fn events(&self, scan: &EventScan) -> Result<Vec<PricedRecord>, StoreError>;
    /// Prices the scope's events again with `price` and, unless a dry run, stores the
    /// changes, moves their rollup sums and writes an audit row, all in one transaction
    /// (one reprice at a time).
    async fn reprice(
        &self,
        scope: &RepriceScope,
        price: &PriceFn<'_>,
    ) -> Result<RepriceSummary, StoreError>;
    /// The most recent reprices, newest first.
    async fn reprice_audits(&self, limit: u32) -> Result<Vec<RepriceAudit>, StoreError>;
    /// The most recent dead letters, newest first.
    async fn dead_letters(&self, limit: u32) -> Result<Vec<DeadLetter>, StoreError>;
    /// Removes what is older than the cutoffs (counts only, on a dry run), a chunk per
    /// transaction so writers are never held up for long; on Postgres, also creates
    /// the `events` partitions of the months ahead.
    async fn apply_retention(
        &self,
        cutoffs: &RetentionCutoffs,
        dry_run: bool,
    ) -> Result<RetentionReport, StoreError>;
}

/// Rows a retention run deletes in one transaction.
pub(crate) const RETENTION_CHUNK: i64 = 20_000;

/// Runs `delete_chunk` (which deletes at most `RETENTION_CHUNK` rows, each call its own
/// transaction) until a chunk comes back short; the rows deleted in all.
pub(crate) async fn delete_in_chunks<F>(
    mut delete_chunk: impl FnMut() -> F,
) -> Result<u64, StoreError>
where
    F: std::future::Future<Output = Result<u64, StoreError>>,
{
    let mut removed = 0;
    loop {
        let done = delete_chunk().await?;
        removed += done;
        if done < RETENTION_CHUNK as u64 {
            return Ok(removed);
        }
    }
}

/// Budgets and the alerts they fire (with their deliveries), and digest runs.
#[async_trait]
pub trait BudgetStore: Send + Sync {
    /// Every budget, by name.
    async fn budgets(&self) -> Result<Vec<StoredBudget>, StoreError>;
    async fn budget(&self, id: &str) -> Result<Option<StoredBudget>, StoreError>;
    /// Adds a budget; `Conflict` when its name is taken.
    async fn insert_budget(&self, budget: &StoredBudget) -> Result<(), StoreError>;
    /// Replaces a budget's name and spec; `false` when there is no such id.
    async fn update_budget(&self, budget: &StoredBudget) -> Result<bool, StoreError>;
    /// `false` when there is no such id. Its alerts stay.
    async fn delete_budget(&self, id: &str) -> Result<bool, StoreError>;
    /// Records an alert and its deliveries in one transaction, unless the alert's
    /// (budget, period start, threshold) exists: then nothing is written and `false` returned.
    async fn fire_alert(
        &self,
        alert: &AlertRecord,
        deliveries: &[NewDelivery],
    ) -> Result<bool, StoreError>;
    async fn alerts(&self, query: &AlertQuery) -> Result<Vec<AlertRecord>, StoreError>;
    /// Records that a digest ran for a period, with its deliveries; `false` (and nothing
    /// written) when another daemon already did.
    async fn claim_digest(
        &self,
        digest: &str,
        period_start: DateTime<Utc>,
        deliveries: &[NewDelivery],
    ) -> Result<bool, StoreError>;
}

/// The webhook outbox: deliveries claimed under a lease, and their attempts.
#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Leases up to `limit` pending deliveries due at `now` for `lease`; a lease that runs
    /// out (its daemon died) makes the delivery claimable again.
    async fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        lease: std::time::Duration,
    ) -> Result<Vec<Delivery>, StoreError>;
    /// Keeps an attempt and moves its delivery on (delivered, retry later, or expired).
    async fn finish_attempt(
        &self,
        attempt: &DeliveryAttempt,
        outcome: &DeliveryOutcome,
    ) -> Result<(), StoreError>;
    /// The deliveries of an alert (all of them when `alert_id` is `None`), oldest first.
    async fn deliveries(&self, alert_id: Option<&str>) -> Result<Vec<Delivery>, StoreError>;
    async fn delivery_attempts(
        &self,
        delivery_id: &str,
    ) -> Result<Vec<DeliveryAttempt>, StoreError>;
}

/// API tokens, by hash.
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// Adds a token; `Conflict` when its id is taken.
    async fn insert_token(&self, token: &StoredToken) -> Result<(), StoreError>;
    /// Every token, revoked ones too, oldest first.
    async fn tokens(&self) -> Result<Vec<StoredToken>, StoreError>;
    async fn token(&self, id: &str) -> Result<Option<StoredToken>, StoreError>;
    /// `false` when there is no such token or it was already revoked.
    async fn revoke_token(&self, id: &str, at: DateTime<Utc>) -> Result<bool, StoreError>;
    /// Whether any token was ever made (revoked and expired ones count): then every
    /// request needs one.
    async fn any_token(&self) -> Result<bool, StoreError>;
}

/// Synced prices: every accepted change of every catalog source, so every replica (and
/// a restart) prices alike.
#[async_trait]
pub trait PriceStore: Send + Sync {
    /// Every accepted change, oldest first.
    async fn price_syncs(&self) -> Result<Vec<PriceSync>, StoreError>;
    /// Records a change; `false` (and nothing written) when that change of that source
    /// (same parent, same content) is already recorded.
    async fn record_price_sync(&self, sync: &PriceSync) -> Result<bool, StoreError>;
    /// How many changes are recorded and when the last was: cheap, for replicas that
    /// follow the syncs of others.
    async fn price_sync_marker(&self) -> Result<(u64, Option<DateTime<Utc>>), StoreError>;
}

/// How far each collector has read each file (written by `UsageStore::write`).
#[async_trait]
pub trait CheckpointStore: Send + Sync {
    /// Every checkpoint of a collector.
    async fn checkpoints(&self, collector: &str) -> Result<Vec<Checkpoint>, StoreError>;
    /// Forgets a collector's checkpoint for a file (deleted and fully read).
    async fn delete_checkpoint(&self, collector: &str, fingerprint: &str)
    -> Result<(), StoreError>;
}

/// The hour-long (or shorter, at the ends) windows of `[from, to)` that hold events of
/// `filter`, read from the hourly rollups: scans skip the empty hours.
pub async fn event_windows(
    store: &dyn UsageStore,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    filter: &UsageFilter,
) -> Result<Vec<(DateTime<Utc>, DateTime<Utc>)>, StoreError> {
    let hours = store
        .usage(&UsageQuery {
            from,
            to,
            group_by: vec![Dimension::Hour],
            filter: filter.clone(),
            measures: Measures::Spend,
        })
        .await?;
    Ok(hours
        .iter()
        .filter(|aggregate| aggregate.requests > 0)
        .filter_map(|aggregate| aggregate.hour)
        .map(|hour| (hour.max(from), (hour + chrono::TimeDelta::hours(1)).min(to)))
        .collect())
}

/// Opens the store a URL names: `postgres://…` / `postgresql://…` or `sqlite://PATH`.
pub async fn connect(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PgStore::connect(url).await?))
    } else if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::connect(url).await?))
    } else {
        Err(StoreError::InvalidUrl {
            url: redact_url(url),
            reason: "expected postgres://… or sqlite://PATH".into(),
        })
    }
}

/// A read-only store on a Postgres replica (`[store] read_url`): spend queries, exports
/// and gauges read there; nothing is written or migrated through it. Connections are
/// made when first needed, so a replica that is down does not stop the daemon starting.
pub fn connect_reader(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PgStore::connect_reader(url)?))
    } else {
        Err(StoreError::InvalidUrl {
            url: redact_url(url),
            reason: "a read replica is a Postgres server: expected postgres://…".into(),
        })
    }
}

/// The file of a `sqlite://PATH` URL (its query options left out); `None` for Postgres.
pub fn sqlite_path(url: &str) -> Option<&str> {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    Some(path.split('?').next().unwrap_or(path))
}

/// Opens the store a URL names and brings its schema up to date: what every command
/// that touches the store does first.
pub async fn open(url: &str) -> Result<Arc<dyn Store>, OpenError> {
    let opened = async {
        let store = connect(url).await?;
        store.migrate().await?;
        Ok(store)
    };
    opened.await.map_err(|source| OpenError {
        url: redact_url(url),
        source,
    })
}

/// A store that could not be opened, named by its URL without the password.
#[derive(Debug, thiserror::Error)]
#[error("cannot open the store {url}")]
pub struct OpenError {
    pub url: String,
    #[source]
    pub source: StoreError,
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((credentials, host)) = rest.rsplit_once('@') else {
        return url.to_owned();
    };
    match credentials.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}
