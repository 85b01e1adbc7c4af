//! Keeps catalog prices current while running. Each configured source (LiteLLM's price
//! map, genai-prices' data; a URL or a file) is fetched on a schedule and compared with
//! the price book in force: new models are added (their first price applies to every
//! date, so records stored while they were unknown can be priced), changed prices apply
//! from the sync on. What changed is recorded in the store, so every replica and every
//! restart prices alike; the same change fetched by two replicas is recorded once.
//!
//! A source is refused whole (nothing applied, the last good prices stay) when it cannot
//! be read, is not a catalog, lists a larger share of models fewer than the last accepted
//! one than `max_shrink`, or changes a price by more than `max_change` times. A single
//! malformed entry is skipped and counted. Curated sheets are never changed by a sync.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::metrics::Metrics;
use crate::pricing::import::{self, Imported};
use crate::pricing::sheet::{Effective, Layer, ModelEntry, PriceEntry, SheetFile};
use crate::pricing::{LiveBook, LocalTerms, PriceBook, PricingError};
use crate::store::{PriceSync, RepriceScope, Store, StoreError};

/// `[pricing.sync]` in the config. No sources: nothing is synced.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncConfig {
    #[serde(default)]
    pub sources: Vec<SyncSource>,
    /// When to sync: a cron expression, 6 fields, seconds first (UTC).
    #[serde(default = "default_schedule")]
    pub schedule: String,
    /// Refuse a catalog that lists more than this share of models fewer than the last
    /// accepted one (or the built-in catalog of its format).
    #[serde(default = "default_max_shrink")]
    pub max_shrink: f64,
    /// Refuse a catalog in which any rate changes by more than this factor.
    #[serde(default = "default_max_change", with = "rust_decimal::serde::str")]
    pub max_change: Decimal,
    /// How long one fetch may take.
    #[serde(default = "default_timeout", with = "crate::duration_text")]
    pub timeout: Duration,
}

fn default_schedule() -> String {
    "0 0 */6 * * *".into()
}

fn default_max_shrink() -> f64 {
    0.2
}

fn default_max_change() -> Decimal {
    Decimal::TEN
}

fn default_timeout() -> Duration {
    Duration::from_secs(60)
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            sources: Vec::new(),
            schedule: default_schedule(),
            max_shrink: default_max_shrink(),
            max_change: default_max_change(),
            timeout: default_timeout(),
        }
    }
}

impl SyncConfig {
    /// Checks what the types cannot; the error names the setting.
    pub fn validate(&self) -> Result<(), String> {
        self.schedule()?;
        if !(0.0..1.0).contains(&self.max_shrink) {
            return Err("pricing.sync.max_shrink must be at least 0 and below 1".into());
        }
        if self.max_change <= Decimal::ONE {
            return Err("pricing.sync.max_change must be above 1".into());
        }
        let mut names = std::collections::HashSet::new();
        for source in &self.sources {
            let at = format!("pricing.sync source {:?}", source.name);
            if source.name.is_empty() || source.name.contains(['/', ' ']) {
                return Err(format!(
                    "{at}: a name without spaces or slashes is required"
                ));
            }
            if source.url.is_some() == source.path.is_some() {
                return Err(format!("{at}: give either url or path"));
            }
            if !names.insert(&source.name) {
                return Err(format!(
                    "two pricing.sync sources are named {:?}",
                    source.name
                ));
            }
        }
        Ok(())
    }

    pub fn schedule(&self) -> Result<cron::Schedule, String> {
        self.schedule.parse().map_err(|error| {
            format!(
                "pricing.sync.schedule {:?} is not a cron expression (6 fields, seconds first): {error}",
                self.schedule
            )
        })
    }
}

/// One catalog to sync.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncSource {
    pub name: String,
    pub format: CatalogFormat,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub path: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CatalogFormat {
    Litellm,
    GenaiPrices,
}

impl CatalogFormat {
    /// The built-in catalog of this format, as the price book names its sheets.
    fn builtin_sheet_prefix(self) -> &'static str {
        match self {
            CatalogFormat::Litellm => "catalog/litellm.json",
            CatalogFormat::GenaiPrices => "catalog/genai-prices.json",
        }
    }
}

/// Why a source was refused. Each is a label of `llm_meter_pricing_sync_failures_total`.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("cannot fetch it: {0}")]
    Unreachable(String),
    #[error("it is not a usable catalog: {0}")]
    Malformed(String),
    #[error(
        "it lists {models} models where the last accepted one listed {baseline}: more than {share:.0}% fewer"
    )]
    Shrunk {
        models: usize,
        baseline: usize,
        share: f64,
    },
    #[error(
        "{model}: {what} would change from {old} to {new} USD per 1M tokens, more than {limit}× at once"
    )]
    PriceJump {
        model: String,
        what: String,
        old: Decimal,
        new: Decimal,
        limit: Decimal,
    },
    #[error("the store failed: {0}")]
    Store(#[from] StoreError),
}

impl SyncError {
    pub fn reason(&self) -> &'static str {
        match self {
            SyncError::Unreachable(_) => "unreachable",
            SyncError::Malformed(_) => "malformed",
            SyncError::Shrunk { .. } => "shrunk",
            SyncError::PriceJump { .. } => "price_jump",
            SyncError::Store(_) => "store",
        }
    }
}

/// What one sync of one source did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SyncOutcome {
    /// Chat models the catalog lists.
    pub models: usize,
    /// Entries that could not be read and were skipped.
    pub malformed_entries: usize,
    pub new_models: usize,
    pub changed_prices: usize,
    /// False when the content is what was last accepted, or another replica recorded
    /// the same change first.
    pub recorded: bool,
    /// Stored records without a price that a new model's price priced.
    pub repriced_records: u64,
}

/// The price book a configuration's sheets and the store's synced prices make, in the
/// order they were synced.
pub fn book_with_syncs(
    sheets: Vec<(String, String)>,
    syncs: &[PriceSync],
    terms: LocalTerms,
) -> Result<PriceBook, PricingError> {
    let mut texts = sheets;
    texts.extend(syncs.iter().map(|sync| {
        (
            format!(
                "sync/{}/{}.json",
                sync.source,
                Effective::at(sync.synced_at)
            ),
            sync.changes.clone(),
        )
    }));
    Ok(PriceBook::from_texts(texts)?.with_terms(terms))
}

/// Syncs sources and keeps the live book up to date with what the store holds.
pub struct Syncer {
    pub config: SyncConfig,
    pub store: Arc<dyn Store>,
    pub metrics: Arc<Metrics>,
    /// The configuration's sheets (built-in and local), which synced prices go on top of.
    pub sheets: Vec<(String, String)>,
    pub terms: LocalTerms,
    pub book: LiveBook,
    pub client: reqwest::Client,
    /// The store's sync marker when the book was last built from it.
    seen: std::sync::Mutex<Option<(u64, Option<DateTime<Utc>>)>>,
}

impl Syncer {
    pub fn new(
        config: SyncConfig,
        store: Arc<dyn Store>,
        metrics: Arc<Metrics>,
        sheets: Vec<(String, String)>,
        terms: LocalTerms,
        book: LiveBook,
    ) -> Syncer {
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .user_agent(concat!("llm-meter/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("a plain HTTP client builds");
        Syncer {
            config,
            store,
            metrics,
            sheets,
            terms,
            book,
            client,
            seen: std::sync::Mutex::new(None),
        }
    }

    /// Builds the book from the store's synced prices and puts it in force.
    pub async fn reload(&self) -> Result<(), SyncError> {
        let marker = self.store.price_sync_marker().await?;
        let syncs = self.store.price_syncs().await?;
        let book = book_with_syncs(self.sheets.clone(), &syncs, self.terms.clone())
            .map_err(|error| SyncError::Malformed(error.to_string()))?;
        self.book.replace(book);
        self.loaded(marker);
        Ok(())
    }

    /// Notes that the book in force was built from the store's syncs up to `marker`.
    pub fn loaded(&self, marker: (u64, Option<DateTime<Utc>>)) {
        if let Ok(mut seen) = self.seen.lock() {
            *seen = Some(marker);
        }
    }

    /// Reloads the book when the store holds syncs this daemon has not loaded (another
    /// replica's); `true` when it did.
    pub async fn follow_store(&self) -> Result<bool, SyncError> {
        let marker = self.store.price_sync_marker().await?;
        let known = self.seen.lock().ok().and_then(|seen| *seen);
        if known == Some(marker) {
            return Ok(false);
        }
        self.reload().await?;
        Ok(true)
    }

    /// Syncs every source once; each one's outcome, by name.
    pub async fn sync_all(&self) -> Vec<(String, Result<SyncOutcome, SyncError>)> {
        let mut results = Vec::new();
        for source in &self.config.sources {
            let result = self.sync_one(source, Utc::now()).await;
            match &result {
                Ok(outcome) => {
                    tracing::info!(message = "Prices synced.", source = %source.name, models = outcome.models, new_models = outcome.new_models, changed_prices = outcome.changed_prices, skipped_entries = outcome.malformed_entries, repriced_records = outcome.repriced_records)
                }
                Err(error) => {
                    tracing::warn!(message = "Price sync refused; the last good prices stay.", source = %source.name, reason = error.reason(), %error)
                }
            }
            results.push((source.name.clone(), result));
        }
        results
    }

    /// Fetches one source, checks it, and records and applies what changed.
    pub async fn sync_one(
        &self,
        source: &SyncSource,
        now: DateTime<Utc>,
    ) -> Result<SyncOutcome, SyncError> {
        let result = self.try_sync(source, now).await;
        let metrics = &self.metrics;
        match &result {
            Ok(outcome) => {
                metrics
                    .pricing_sync_last_success
                    .with_label_values(&[source.name.as_str()])
                    .set(now.timestamp() as f64);
                metrics
                    .pricing_sync_models
                    .with_label_values(&[source.name.as_str()])
                    .set(outcome.models as f64);
                metrics
                    .pricing_sync_skipped_entries
                    .with_label_values(&[source.name.as_str()])
                    .inc_by(outcome.malformed_entries as u64);
            }
            Err(error) => metrics
                .pricing_sync_failures
                .with_label_values(&[source.name.as_str(), error.reason()])
                .inc(),
        }
        result
    }

    async fn try_sync(
        &self,
        source: &SyncSource,
        now: DateTime<Utc>,
    ) -> Result<SyncOutcome, SyncError> {
        let text = self.fetch(source).await?;
        let content_hash = hex::encode(Sha256::digest(text.as_bytes()));
        let syncs = self.store.price_syncs().await?;
        let last = syncs.iter().rev().find(|s| s.source == source.name);
        if let Some(last) = last.filter(|last| last.content_hash == content_hash) {
            return Ok(SyncOutcome {
                models: last.models as usize,
                ..SyncOutcome::default()
            });
        }
        let imported = self.import(source, &text, now)?;
        let models = imported.model_count();
        let mut outcome = SyncOutcome {
            models,
            malformed_entries: imported.malformed,
            ..SyncOutcome::default()
        };
        // The book as the store has it (another replica may have synced since).
        let book = book_with_syncs(self.sheets.clone(), &syncs, self.terms.clone())
            .map_err(|error| SyncError::Malformed(error.to_string()))?;
        let baseline = match last {
            Some(last) => last.models as usize,
            None => book
                .models()
                .iter()
                .filter(|m| m.sheet.starts_with(source.format.builtin_sheet_prefix()))
                .count(),
        };
        let share = self.config.max_shrink;
        if (models as f64) < baseline as f64 * (1.0 - share) {
            return Err(SyncError::Shrunk {
                models,
                baseline,
                share: share * 100.0,
            });
        }
        let changes = changes(&book, &imported, source, now, self.config.max_change)?;
        outcome.new_models = changes.new_models;
        outcome.changed_prices = changes.changed_prices;
        let changes_json = serde_json::to_string(&changes.sheets)
            .map_err(|error| SyncError::Malformed(error.to_string()))?;
        let sync = PriceSync {
            source: source.name.clone(),
            parent_hash: last.map(|l| l.content_hash.clone()).unwrap_or_default(),
            content_hash,
            synced_at: now,
            models: u32::try_from(models).unwrap_or(u32::MAX),
            changed_models: u32::try_from(changes.new_models + changes.changed_prices)
                .unwrap_or(u32::MAX),
            changes: changes_json,
        };
        // What is recorded must load.
        let mut all = syncs;
        all.push(sync.clone());
        let new_book = Arc::new(
            book_with_syncs(self.sheets.clone(), &all, self.terms.clone())
                .map_err(|error| SyncError::Malformed(error.to_string()))?,
        );
        outcome.recorded = self.store.record_price_sync(&sync).await?;
        let marker = self.store.price_sync_marker().await?;
        if outcome.recorded && marker.0 == all.len() as u64 {
            // Nothing else was recorded meanwhile: the book just built is the store's.
            self.book.replace(new_book.clone());
            self.loaded(marker);
        } else {
            self.reload().await?;
        }
        if outcome.recorded && changes.new_models > 0 {
            outcome.repriced_records = self.price_the_unpriced(&book, &new_book, source).await?;
        }
        Ok(outcome)
    }

    async fn fetch(&self, source: &SyncSource) -> Result<String, SyncError> {
        /// Catalogs are a few MB; anything far larger is not one.
        const MAX_BYTES: usize = 64 << 20;
        let bytes = match (&source.url, &source.path) {
            (Some(url), _) => {
                let response = self
                    .client
                    .get(url)
                    .send()
                    .await
                    .and_then(reqwest::Response::error_for_status)
                    .map_err(|error| SyncError::Unreachable(error.to_string()))?;
                let bytes = response
                    .bytes()
                    .await
                    .map_err(|error| SyncError::Unreachable(error.to_string()))?;
                bytes.to_vec()
            }
            (None, Some(path)) => tokio::fs::read(path)
                .await
                .map_err(|error| SyncError::Unreachable(format!("{}: {error}", path.display())))?,
            (None, None) => return Err(SyncError::Unreachable("no url or path".into())),
        };
        if bytes.len() > MAX_BYTES {
            return Err(SyncError::Malformed(format!(
                "{} bytes, more than a catalog's {MAX_BYTES}",
                bytes.len()
            )));
        }
        String::from_utf8(bytes).map_err(|_| SyncError::Malformed("not UTF-8 text".into()))
    }

    fn import(
        &self,
        source: &SyncSource,
        text: &str,
        now: DateTime<Utc>,
    ) -> Result<Imported, SyncError> {
        let from = import::Source {
            name: source
                .url
                .clone()
                .or_else(|| source.path.as_ref().map(|p| p.display().to_string()))
                .unwrap_or_default(),
            version: Some(format!("synced {}", Effective::at(now))),
            retrieved: now.date_naive(),
            from: Effective::at(now),
            layer: Layer::Synced,
        };
        let imported = match source.format {
            CatalogFormat::Litellm => import::from_litellm(text, &[], &from),
            CatalogFormat::GenaiPrices => import::from_genai_prices(text, &[], &from),
        }
        .map_err(|error| SyncError::Malformed(error.to_string()))?;
        if imported.model_count() == 0 {
            return Err(SyncError::Malformed("it lists no priced chat model".into()));
        }
        Ok(imported)
    }

    /// Prices the stored records of the models a sync made known: records without a
    /// price, of the providers that gained a model, over the time those were seen.
    async fn price_the_unpriced(
        &self,
        before: &PriceBook,
        after: &PriceBook,
        source: &SyncSource,
    ) -> Result<u64, SyncError> {
        let epoch = Effective::default().time();
        let unpriced = self.store.unpriced(epoch, Utc::now(), None).await?;
        let mut repriced = 0;
        for model in unpriced {
            let newly_known = before.resolve(&model.provider, &model.model).is_none()
                && after.resolve(&model.provider, &model.model).is_some();
            if !newly_known {
                continue;
            }
            let scope = RepriceScope {
                from: model.first_seen,
                to: model.last_seen + chrono::Duration::microseconds(1),
                provider: Some(model.provider.clone()),
                only_unpriced: true,
                actor: format!(
                    "pricing-sync:{} (first price of {}/{})",
                    source.name, model.provider, model.model
                ),
                ..RepriceScope::default()
            };
            let price = |record: &crate::usage::UsageRecord| after.price(record);
            repriced += self.store.reprice(&scope, &price).await?.newly_priced;
        }
        Ok(repriced)
    }
}

/// What a fetched catalog changes in a book.
struct Changes {
    sheets: Vec<SheetFile>,
    new_models: usize,
    changed_prices: usize,
}

/// Whether a model's prices come from this source: its built-in catalog, or earlier syncs
/// of it. A sync changes only those (a curated sheet, or a catalog that takes precedence,
/// speaks for the others).
fn from_source(model: &crate::pricing::Model, source: &SyncSource) -> bool {
    model
        .sheet
        .starts_with(source.format.builtin_sheet_prefix())
        || model
            .sheet
            .strip_prefix("sync/")
            .and_then(|rest| rest.strip_prefix(source.name.as_str()))
            .is_some_and(|rest| rest.starts_with('/'))
}

/// New models (their first price from the start of time) and changed prices (from
/// `now`) of an imported catalog against the book.
fn changes(
    book: &PriceBook,
    imported: &Imported,
    source: &SyncSource,
    now: DateTime<Utc>,
    max_change: Decimal,
) -> Result<Changes, SyncError> {
    let mut result = Changes {
        sheets: Vec::new(),
        new_models: 0,
        changed_prices: 0,
    };
    for (provider, sheet) in &imported.sheets {
        let mut models = Vec::new();
        for entry in &sheet.models {
            let Some(price) = entry.prices.last() else {
                continue;
            };
            let known = std::iter::once(&entry.id)
                .chain(&entry.aliases)
                .find_map(|name| book.exact_model(provider, name));
            match known {
                None => {
                    let mut first = price.clone();
                    first.from = Effective::default();
                    models.push(ModelEntry {
                        prices: vec![first],
                        ..entry.clone()
                    });
                    result.new_models += 1;
                }
                Some(model) if !from_source(model, source) => {}
                Some(model) => {
                    let current = book.entry_at(model, now);
                    if current.is_some_and(|current| same_rates(current, price)) {
                        continue;
                    }
                    if let Some(current) = current {
                        check_jump(&model.to_string(), current, price, max_change)?;
                    }
                    models.push(ModelEntry {
                        id: model.id.clone(),
                        aliases: Vec::new(),
                        pattern: None,
                        upstream: None,
                        notes: None,
                        prices: vec![PriceEntry {
                            from: Effective::at(now),
                            ..price.clone()
                        }],
                    });
                    result.changed_prices += 1;
                }
            }
        }
        if !models.is_empty() {
            result.sheets.push(SheetFile {
                models,
                ..sheet.clone()
            });
        }
    }
    Ok(result)
}

/// Whether two prices charge the same (when they apply and where they were read aside).
fn same_rates(a: &PriceEntry, b: &PriceEntry) -> bool {
    a.rates() == b.rates()
        && a.long_context == b.long_context
        && a.batch == b.batch
        && a.flex == b.flex
        && a.priority == b.priority
        && a.daily == b.daily
}

/// Refuses a standard rate that moves by more than `limit` times (a rate from or to
/// zero counts as more).
fn check_jump(
    model: &str,
    old: &PriceEntry,
    new: &PriceEntry,
    limit: Decimal,
) -> Result<(), SyncError> {
    let buckets = crate::usage::Bucket::ALL;
    for (bucket, (old_rate, new_rate)) in
        buckets.iter().zip(old.rates().into_iter().zip(new.rates()))
    {
        let (Some(old_rate), Some(new_rate)) = (old_rate, new_rate) else {
            continue;
        };
        if old_rate == new_rate {
            continue;
        }
        let jump = if old_rate.is_zero() || new_rate.is_zero() {
            true
        } else {
            new_rate > old_rate * limit || old_rate > new_rate * limit
        };
        if jump {
            return Err(SyncError::PriceJump {
                model: model.to_owned(),
                what: bucket.to_string(),
                old: old_rate.normalize(),
                new: new_rate.normalize(),
                limit,
            });
        }
    }
    Ok(())
}

/// Syncs on the configured schedule (if any source is configured), and every `follow`
/// picks up what other replicas synced, until `stop` turns true.
pub async fn run(
    syncer: Arc<Syncer>,
    follow: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let following = {
        let syncer = syncer.clone();
        let mut stop = stop.clone();
        async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(follow) => {}
                    _ = stop.changed() => return,
                }
                if *stop.borrow() {
                    return;
                }
                if let Err(error) = syncer.follow_store().await {
                    tracing::warn!(message = "Cannot read the synced prices.", %error);
                }
            }
        }
    };
    let schedule = syncer
        .config
        .schedule()
        .ok()
        .filter(|_| !syncer.config.sources.is_empty());
    let Some(schedule) = schedule else {
        following.await;
        return;
    };
    tokio::spawn(following);
    loop {
        let Some(next) = schedule.after(&Utc::now()).next() else {
            return;
        };
        let wait = (next - Utc::now()).to_std().unwrap_or_default();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
        syncer.sync_all().await;
    }
}
