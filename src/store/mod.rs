//! The store: a domain-level trait over Postgres (production) and SQLite (the embedded
//! default). Callers never see SQL; both backends pass one contract test suite.

mod pg_budgets;
mod pg_tokens;
mod postgres;
mod rows;
mod sqlite;
mod sqlite_budgets;
mod sqlite_tokens;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use crate::prepare::PricedRecord;
use crate::pricing::PriceOutcome;
use crate::usage::{Tokens, UsageRecord};
pub use postgres::PgStore;
pub use sqlite::SqliteStore;

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
    #[error("store error: {0}")]
    Other(#[source] sqlx::Error),
}

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
                } else {
                    StoreError::Other(error)
                }
            }
            _ => StoreError::Other(error),
        }
    }
}

impl StoreError {
    /// True when retrying later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

/// One usage record on its way into the store.
#[derive(Clone, Debug)]
pub struct NewEvent {
    pub priced: PricedRecord,
    /// Where it came from: `http`, `otlp`, `backfill`, or a collector's name.
    pub source: Arc<str>,
}

/// A line or record that could not be used, kept with its reason.
#[derive(Clone, Debug, PartialEq)]
pub struct DeadLetter {
    pub received_at: DateTime<Utc>,
    pub source: String,
    pub code: String,
    pub reason: String,
    /// The input, truncated to [`DEAD_LETTER_LINE_BYTES`].
    pub line: String,
}

/// Longest part of a rejected line kept in the dead-letter table.
pub const DEAD_LETTER_LINE_BYTES: usize = 4096;

impl DeadLetter {
    pub fn new(source: &str, code: &str, reason: &str, line: &str, now: DateTime<Utc>) -> Self {
        DeadLetter {
            received_at: now,
            source: source.to_owned(),
            code: code.to_owned(),
            reason: reason.to_owned(),
            line: crate::usage::truncate_utf8(line, DEAD_LETTER_LINE_BYTES).to_owned(),
        }
    }
}

/// How far a collector has read a file; written with the records it covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub collector: String,
    pub fingerprint: String,
    pub path: String,
    pub offset: u64,
}

/// Everything one transaction writes.
#[derive(Clone, Debug, Default)]
pub struct WriteBatch {
    pub events: Vec<NewEvent>,
    pub dead_letters: Vec<DeadLetter>,
    pub checkpoints: Vec<Checkpoint>,
}

/// Per event of a batch, in order: `true` if it was new, `false` if a duplicate.
pub type Inserted = Vec<bool>;

/// What spend is grouped by, at the store level (time buckets coarser than an hour and
/// token types are derived from these rows by `crate::report`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Dimension {
    Project,
    Provider,
    Model,
    ServiceTier,
    Batch,
    ReasoningEffort,
    Tag(String),
    /// Every tag at once, as a JSON object (for exports that carry them all).
    Tags,
    /// The UTC hour; its start is the aggregate's `hour`.
    Hour,
    /// The UTC day; its midnight is the aggregate's `hour`. Lets whole days be read from
    /// the daily rollups.
    Day,
}

/// Which usage a query covers. `projects: None` means every project.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UsageFilter {
    pub projects: Option<Vec<String>>,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub tags: Vec<(String, String)>,
}

/// Which sums a usage query computes: reading fewer columns makes it faster.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Measures {
    /// Requests, unpriced requests, tokens and cost; the other sums are zero.
    Spend,
    /// Every sum: also list and reported cost, per-bucket costs, savings.
    #[default]
    All,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct UsageQuery {
    /// Inclusive.
    pub from: DateTime<Utc>,
    /// Exclusive. Bounds inside an hour are exact: the partial hours are read from events.
    pub to: DateTime<Utc>,
    pub group_by: Vec<Dimension>,
    pub filter: UsageFilter,
    pub measures: Measures,
}

/// One group of usage. `keys` follow the query's `group_by` (the hour or day, when grouped
/// by one, is in `hour` instead).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UsageAggregate {
    pub keys: Vec<String>,
    pub hour: Option<DateTime<Utc>>,
    pub requests: u64,
    pub unpriced_requests: u64,
    pub tokens: Tokens,
    pub cost: Decimal,
    pub list_cost: Decimal,
    pub reported_cost: Decimal,
    pub bucket_costs: [Decimal; 6],
    /// What cached-input pricing saved against the uncached input price.
    pub cache_savings: Decimal,
    /// What batch pricing saved against the standard price.
    pub batch_savings: Decimal,
}

/// Which stored events a scan reads: `[from, to)`, filtered like usage (the model filter
/// matches the sheet's model id, as rollups do).
#[derive(Clone, Debug, PartialEq)]
pub struct EventScan {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub filter: UsageFilter,
}

/// Prices a record: the current price book, or a substitute model for a what-if.
pub type PriceFn<'p> = dyn Fn(&UsageRecord) -> PriceOutcome + Send + Sync + 'p;

/// What a reprice covers.
#[derive(Clone, Debug, PartialEq)]
pub struct RepriceScope {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// `None`: every project.
    pub project: Option<String>,
    /// Compute the difference, change nothing, write no audit row.
    pub dry_run: bool,
    /// Who asked, for the audit row.
    pub actor: String,
}

/// What a reprice found (and, unless a dry run, changed).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RepriceSummary {
    pub examined: u64,
    pub changed: u64,
    /// Records without a price before that have one now, and the reverse.
    pub newly_priced: u64,
    pub newly_unpriced: u64,
    /// The cost of the examined records before and after.
    pub old_total: Decimal,
    pub new_total: Decimal,
}

/// One reprice, as the audit table keeps it.
#[derive(Clone, Debug, PartialEq)]
pub struct RepriceAudit {
    pub at: DateTime<Utc>,
    pub scope: RepriceScope,
    pub summary: RepriceSummary,
}

/// A budget as stored: its spec is the JSON the daemon validated.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredBudget {
    pub id: String,
    pub name: String,
    pub spec_json: String,
    /// `api` or `config`.
    pub source: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An API token as stored: never the token, only its hash.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredToken {
    pub id: String,
    pub name: String,
    /// `admin`, `ingest` or `read`.
    pub role: String,
    /// Empty: every project.
    pub projects: Vec<String>,
    /// Hex SHA-256 of the whole token.
    pub hash: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// An alert: one (budget, period, threshold), fired once.
#[derive(Clone, Debug, PartialEq)]
pub struct AlertRecord {
    pub id: String,
    pub budget_id: String,
    pub budget_name: String,
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    /// `threshold` or `forecast`.
    pub kind: String,
    /// `0.8`, `usd:450` or `forecast`: unique per budget and period.
    pub threshold_key: String,
    pub threshold: Option<Decimal>,
    pub spend: Decimal,
    pub limit: Decimal,
    pub forecast: Option<Decimal>,
    pub fired_at: DateTime<Utc>,
}

/// Which alerts to list: newest first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AlertQuery {
    pub budget_id: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub limit: u32,
}

/// A webhook delivery to write into the outbox.
#[derive(Clone, Debug, PartialEq)]
pub struct NewDelivery {
    /// The `webhook-id`: the same on every attempt.
    pub id: String,
    pub url: String,
    pub format: String,
    pub secret: Option<String>,
    pub body: String,
    pub expires_at: DateTime<Utc>,
}

/// A delivery in the outbox.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    pub id: String,
    pub alert_id: Option<String>,
    pub url: String,
    pub format: String,
    pub secret: Option<String>,
    pub body: String,
    /// `pending`, `delivered` or `expired`.
    pub status: String,
    pub attempts: u32,
    pub next_attempt_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

/// One attempt at a delivery, kept.
#[derive(Clone, Debug, PartialEq)]
pub struct DeliveryAttempt {
    pub delivery_id: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    pub at: DateTime<Utc>,
    pub status_code: Option<u16>,
    pub duration_ms: u64,
    pub error: Option<String>,
    /// The start of the response body.
    pub response: Option<String>,
}

/// What happens to a delivery after an attempt.
#[derive(Clone, Debug, PartialEq)]
pub enum DeliveryOutcome {
    Delivered,
    Retry { at: DateTime<Utc> },
    Expired,
}

/// A model seen without a price.
#[derive(Clone, Debug, PartialEq)]
pub struct UnpricedModel {
    pub provider: String,
    pub model: String,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub requests: u64,
    pub tokens: Tokens,
    pub reason: String,
}

/// The domain-level storage interface. Implementations keep these guarantees:
/// - `write` is one transaction: events, rollups, dead letters and checkpoints commit
///   together or not at all;
/// - (`project`, `id`) is inserted once, ever; later copies are reported as duplicates;
/// - rollups change only for events actually inserted.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Applies the schema migrations.
    async fn migrate(&self) -> Result<(), StoreError>;
    /// Fails when the database cannot be reached.
    async fn ping(&self) -> Result<(), StoreError>;
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
    /// Records that a digest ran for a period, with its deliveries; `false` (and nothing
    /// written) when another daemon already did.
    async fn claim_digest(
        &self,
        digest: &str,
        period_start: DateTime<Utc>,
        deliveries: &[NewDelivery],
    ) -> Result<bool, StoreError>;
    /// The most recent dead letters, newest first.
    async fn dead_letters(&self, limit: u32) -> Result<Vec<DeadLetter>, StoreError>;
    /// Every checkpoint of a collector.
    async fn checkpoints(&self, collector: &str) -> Result<Vec<Checkpoint>, StoreError>;
    /// Forgets a collector's checkpoint for a file (deleted and fully read).
    async fn delete_checkpoint(&self, collector: &str, fingerprint: &str)
    -> Result<(), StoreError>;
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
    /// Which backend this is, for logs: `postgres` or `sqlite`.
    fn kind(&self) -> &'static str;
}

/// The hour-long (or shorter, at the ends) windows of `[from, to)` that hold events of
/// `filter`, read from the hourly rollups: scans skip the empty hours.
pub async fn event_windows(
    store: &dyn Store,
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
