//! What the store keeps and answers, as plain values: the records written, the queries
//! and their answers, budgets, alerts, deliveries and tokens. The words stored as text
//! (a token's role, a delivery's status…) are enums here, so a typo cannot reach a row.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use crate::prepare::PricedRecord;
use crate::pricing::PriceOutcome;
use crate::usage::{Tokens, UsageRecord};

/// An enum stored as one of a fixed set of words.
macro_rules! stored_words {
    ($(#[$meta:meta])* pub enum $name:ident {
        $($(#[$variant_meta:meta])* $variant:ident = $word:literal,)+
    }) => {
        $(#[$meta])*
        #[derive(
            Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
            utoipa::ToSchema,
        )]
        pub enum $name {
            $($(#[$variant_meta])* #[serde(rename = $word)] $variant,)+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $word,)+
                }
            }

            /// The value a stored word names, if any.
            pub fn parse(word: &str) -> Option<$name> {
                match word {
                    $($word => Some($name::$variant),)+
                    _ => None,
                }
            }

            /// Decodes a stored word; anything else is a corrupt row.
            pub(super) fn decode(word: &str) -> Result<$name, sqlx::Error> {
                $name::parse(word).ok_or_else(|| {
                    sqlx::Error::Decode(
                        format!("{word:?} is not a {}", stringify!($name)).into(),
                    )
                })
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

stored_words! {
    /// What an API token may do.
    pub enum Role {
        /// Everything, budgets and tokens included.
        Admin = "admin",
        /// Write usage (`POST /v1/usage`, `/v1/traces`) and ask `/v1/budgets/check`.
        Ingest = "ingest",
        /// Read spend, budgets and alerts.
        Read = "read",
    }
}

stored_words! {
    /// Where a budget was declared.
    pub enum BudgetSource {
        /// `POST /v1/budgets`.
        Api = "api",
        /// `[[budgets]]` in the config (updated by name at start).
        Config = "config",
    }
}

stored_words! {
    /// Why an alert fired.
    pub enum AlertKind {
        /// Spend crossed a threshold.
        Threshold = "threshold",
        /// The forecast for the period's end passed the limit.
        Forecast = "forecast",
    }
}

stored_words! {
    /// The body a webhook receives.
    #[derive(Default)]
    pub enum WebhookFormat {
        /// The generic JSON payload, signed.
        #[default]
        Json = "json",
        /// A Slack incoming-webhook message.
        Slack = "slack",
    }
}

stored_words! {
    /// Where a delivery is in the outbox.
    pub enum DeliveryStatus {
        /// Not delivered yet: due now or at `next_attempt_at`.
        Pending = "pending",
        /// A receiver answered 2xx.
        Delivered = "delivered",
        /// Given up after `expires_at`.
        Expired = "expired",
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
    /// The UTC month; its first midnight is the aggregate's `hour`. Lets whole months be
    /// read from the monthly rollups.
    Month,
}

impl Dimension {
    /// Hour, day or month: a time slot, given as the aggregate's `hour`, not a key.
    pub fn is_time(&self) -> bool {
        matches!(self, Dimension::Hour | Dimension::Day | Dimension::Month)
    }
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
    /// Request counts, bucket counts, cost, list cost and reported cost; the per-bucket
    /// costs and savings are zero.
    Spend,
    /// Every sum: also per-bucket costs and savings.
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

impl UsageQuery {
    /// True when the query asks nothing finer than projects and time: the projects'
    /// monthly totals answer its whole months.
    pub fn by_project_only(&self) -> bool {
        self.group_by
            .iter()
            .all(|d| *d == Dimension::Project || d.is_time())
            && self.filter.provider.is_none()
            && self.filter.model.is_none()
            && self.filter.tags.is_empty()
    }
}

/// One group of usage. `keys` follow the query's `group_by` (the hour or day, when grouped
/// by one, is in `hour` instead).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UsageAggregate {
    pub keys: Vec<String>,
    pub hour: Option<DateTime<Utc>>,
    pub requests: u64,
    pub unpriced_requests: u64,
    /// Requests priced for only part of their usage (a charge without a rate).
    pub partial_requests: u64,
    /// Requests whose source reported a cost of its own.
    pub reported_requests: u64,
    pub tokens: Tokens,
    pub cost: Decimal,
    pub list_cost: Decimal,
    /// The sum of the costs sources reported (meaningful where `reported_requests > 0`).
    pub reported_cost: Decimal,
    pub bucket_costs: [Decimal; crate::usage::Bucket::COUNT],
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
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RepriceScope {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// `None`: every project.
    pub project: Option<String>,
    /// `None`: every provider.
    pub provider: Option<String>,
    /// Price only records that have no price: a first price for a model, never a
    /// change to records already priced.
    pub only_unpriced: bool,
    /// Compute the difference, change nothing, write no audit row.
    pub dry_run: bool,
    /// Who asked, for the audit row.
    pub actor: String,
}

impl RepriceScope {
    /// The usage a reprice covers.
    pub fn filter(&self) -> UsageFilter {
        UsageFilter {
            projects: self.project.clone().map(|p| vec![p]),
            provider: self.provider.clone(),
            ..UsageFilter::default()
        }
    }
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
    pub source: BudgetSource,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An API token as stored: never the token, only its hash.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredToken {
    pub id: String,
    pub name: String,
    pub role: Role,
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
    pub kind: AlertKind,
    /// `0.8`, `usd:450` or `forecast`: unique per budget and period.
    pub threshold_key: String,
    pub threshold: Option<Decimal>,
    pub spend: Decimal,
    pub limit: Decimal,
    pub forecast: Option<Decimal>,
    pub fired_at: DateTime<Utc>,
    /// The budget's project when the alert fired (none: a budget over every project).
    /// A budget moved to another project later keeps its old alerts with the old one.
    pub project: Option<String>,
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
    pub format: WebhookFormat,
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
    pub format: WebhookFormat,
    pub secret: Option<String>,
    pub body: String,
    pub status: DeliveryStatus,
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

impl DeliveryOutcome {
    /// The delivery's status, next attempt time and delivery time after an attempt
    /// made at `at`.
    pub fn applied(
        &self,
        at: DateTime<Utc>,
    ) -> (DeliveryStatus, DateTime<Utc>, Option<DateTime<Utc>>) {
        match self {
            DeliveryOutcome::Delivered => (DeliveryStatus::Delivered, at, Some(at)),
            DeliveryOutcome::Retry { at: next } => (DeliveryStatus::Pending, *next, None),
            DeliveryOutcome::Expired => (DeliveryStatus::Expired, at, None),
        }
    }
}

/// One accepted change of a synced price catalog (see `PriceStore`).
#[derive(Clone, Debug, PartialEq)]
pub struct PriceSync {
    pub source: String,
    /// The content hash of the source's previous accepted sync ("" for its first).
    pub parent_hash: String,
    /// SHA-256 (hex) of the fetched catalog.
    pub content_hash: String,
    pub synced_at: DateTime<Utc>,
    /// Chat models the catalog listed.
    pub models: u32,
    pub changed_models: u32,
    /// What changed, as a JSON array of pricing sheets.
    pub changes: String,
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

/// What retention keeps: everything older than a cutoff is removed. `None`: kept forever.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RetentionCutoffs {
    pub events: Option<DateTime<Utc>>,
    pub dead_letters: Option<DateTime<Utc>>,
    pub hourly_rollups: Option<DateTime<Utc>>,
    pub daily_rollups: Option<DateTime<Utc>>,
    pub monthly_rollups: Option<DateTime<Utc>>,
}

/// What a retention run removed, or would remove (a dry run).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct RetentionReport {
    /// The events before this time were removed: on Postgres the start of the oldest
    /// month kept (whole partitions go), on SQLite the cutoff itself.
    pub events_before: Option<DateTime<Utc>>,
    /// Postgres: the `events` partitions dropped, oldest first, and how long dropping
    /// them took (their keys are deleted after, in chunks).
    pub partitions: Vec<String>,
    pub partitions_dropped_in: std::time::Duration,
    /// On Postgres, counted by the keys of the dropped months, deleted with them (one per
    /// event: a partition is dropped without a scan).
    pub events: u64,
    pub dead_letters: u64,
    pub hourly_rollups: u64,
    pub daily_rollups: u64,
    pub monthly_rollups: u64,
    /// The projects' monthly totals, kept as long as the monthly rollups.
    pub project_totals: u64,
}

impl RetentionReport {
    pub fn removed_anything(&self) -> bool {
        !self.partitions.is_empty()
            || self.events
                + self.dead_letters
                + self.hourly_rollups
                + self.daily_rollups
                + self.monthly_rollups
                + self.project_totals
                > 0
    }
}
