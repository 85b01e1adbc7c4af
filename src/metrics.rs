//! Every Prometheus metric, defined in one place. Labels are bounded: never a user, key,
//! id or path; data-derived label sets (project, provider, model) share a series budget
//! (`[metrics] max_series`): past their part of it, new combinations are counted under
//! `other` (every data-derived label of the set), and
//! `llm_meter_metrics_folded_total{family}` counts what was folded. Totals stay whole.

use std::collections::HashSet;
use std::sync::Mutex;

use prometheus::{
    CounterVec, Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry,
    TextEncoder,
};

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use crate::pricing::PriceOutcome;
use crate::report::gauges::ProjectSpend;
use crate::report::headroom::{Headroom, RateLimit};
use crate::store::NewEvent;

/// The default of `[metrics] max_series`: the most series the data-derived families
/// (usage counters, the request-cost histogram, the project gauges) may show together.
pub const DEFAULT_MAX_SERIES: usize = 10_000;
/// The label used for every data-derived label once its family's share is used up.
pub const OVERFLOW_LABEL: &str = "other";

/// Series one (project, provider, model) set may add: requests, cost, batch requests,
/// and one per token type and per per-call charge.
const SERIES_PER_USAGE_SET: usize = 3 + crate::usage::Bucket::COUNT - 1;
/// Series one (provider, model) set may add: the histogram's 11 buckets, `+Inf`, sum and
/// count, and the unpriced and partially priced counters.
const SERIES_PER_COST_SET: usize = 16;
/// Series one project's spend and savings gauges take (month and day; cost, cache, batch).
const SERIES_PER_PROJECT: usize = 8;

/// How a series budget is shared: half for the usage counters, a fifth each for the
/// request-cost histogram and the project gauges; the rest is left for the families whose
/// labels come from the configuration (routes, collectors, budgets, sources).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeriesBudget {
    pub usage_sets: usize,
    pub cost_sets: usize,
    pub projects: usize,
}

impl SeriesBudget {
    pub fn new(max_series: usize) -> SeriesBudget {
        SeriesBudget {
            usage_sets: (max_series / 2 / SERIES_PER_USAGE_SET).max(1),
            cost_sets: (max_series / 5 / SERIES_PER_COST_SET).max(1),
            projects: (max_series / 5 / SERIES_PER_PROJECT).max(1),
        }
    }
}

/// Outcomes of `llm_meter_ingest_records_total`.
pub mod outcome {
    pub const ACCEPTED: &str = "accepted";
    pub const DUPLICATE: &str = "duplicate";
    pub const REJECTED: &str = "rejected";
}

pub struct Metrics {
    registry: Registry,
    pub cost_usd: CounterVec,
    pub tokens: IntCounterVec,
    pub requests: IntCounterVec,
    pub batch_requests: IntCounterVec,
    pub request_cost_usd: HistogramVec,
    pub unpriced_requests: IntCounterVec,
    pub partial_requests: IntCounterVec,
    pub calls: IntCounterVec,
    pub ingest_records: IntCounterVec,
    pub ingest_batch_seconds: HistogramVec,
    pub collector_lag_bytes: GaugeVec,
    pub collector_lines: IntCounterVec,
    pub collector_files: GaugeVec,
    pub http_requests: IntCounterVec,
    pub http_request_seconds: HistogramVec,
    pub project_spend_usd: GaugeVec,
    pub project_savings_usd: GaugeVec,
    pub rate_limit_utilization: GaugeVec,
    pub store_gauges_refreshed: prometheus::Gauge,
    pub read_replica_lag: GaugeVec,
    pub budget_spend_usd: GaugeVec,
    pub budget_limit_usd: GaugeVec,
    pub budget_utilization: GaugeVec,
    pub budget_forecast_usd: GaugeVec,
    pub alerts: IntCounterVec,
    pub webhook_deliveries: IntCounterVec,
    pub pricing_sync_failures: IntCounterVec,
    pub pricing_sync_last_success: GaugeVec,
    pub pricing_sync_models: GaugeVec,
    pub pricing_sync_skipped_entries: IntCounterVec,
    pub folded: IntCounterVec,
    pub http_connections_refused: prometheus::IntCounter,
    pub budget: SeriesBudget,
    /// The label keys each store-derived gauge family shows now.
    spend_projects: Mutex<HashSet<String>>,
    savings_projects: Mutex<HashSet<String>>,
    pub(crate) budget_names: Mutex<HashSet<String>>,
    usage_series: Mutex<HashSet<(String, String, String)>>,
    cost_series: Mutex<HashSet<(String, String)>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// The metrics with the default series budget.
    pub fn new() -> Metrics {
        Metrics::with_max_series(DEFAULT_MAX_SERIES)
    }

    pub fn with_max_series(max_series: usize) -> Metrics {
        let registry = Registry::new();
        let usage = ["project", "provider", "model"];
        let metrics = Metrics {
            cost_usd: CounterVec::new(
                Opts::new(
                    "llm_meter_cost_usd_total",
                    "Cost in USD of the usage records this process stored (priced records only).",
                ),
                &usage,
            )
            .expect("valid metric"),
            tokens: IntCounterVec::new(
                Opts::new(
                    "llm_meter_tokens_total",
                    "Tokens of the usage records this process stored, by token type (text, audio and image buckets).",
                ),
                &["project", "provider", "model", "token_type"],
            )
            .expect("valid metric"),
            calls: IntCounterVec::new(
                Opts::new(
                    "llm_meter_calls_total",
                    "Charges of the stored usage records that are not tokens: web searches, code-interpreter sessions, file searches, generated images.",
                ),
                &["project", "provider", "model", "charge"],
            )
            .expect("valid metric"),
            requests: IntCounterVec::new(
                Opts::new(
                    "llm_meter_requests_total",
                    "Usage records (LLM requests) this process stored.",
                ),
                &usage,
            )
            .expect("valid metric"),
            batch_requests: IntCounterVec::new(
                Opts::new(
                    "llm_meter_batch_requests_total",
                    "Stored usage records sent through a batch API or the flex tier (discounted rates).",
                ),
                &usage,
            )
            .expect("valid metric"),
            request_cost_usd: HistogramVec::new(
                prometheus::HistogramOpts::new(
                    "llm_meter_request_cost_usd",
                    "Cost in USD of each priced request this process stored.",
                )
                .buckets(vec![
                    0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0,
                ]),
                &["provider", "model"],
            )
            .expect("valid metric"),
            unpriced_requests: IntCounterVec::new(
                Opts::new(
                    "llm_meter_unpriced_requests_total",
                    "Stored usage records whose model, tier or bucket has no price.",
                ),
                &["provider", "model"],
            )
            .expect("valid metric"),
            partial_requests: IntCounterVec::new(
                Opts::new(
                    "llm_meter_partially_priced_requests_total",
                    "Stored usage records priced for only part of their usage (audio, images or calls without a rate).",
                ),
                &["provider", "model"],
            )
            .expect("valid metric"),
            ingest_records: IntCounterVec::new(
                Opts::new(
                    "llm_meter_ingest_records_total",
                    "Records received, by source kind and outcome (accepted, duplicate, rejected).",
                ),
                &["source", "outcome"],
            )
            .expect("valid metric"),
            ingest_batch_seconds: HistogramVec::new(
                HistogramOpts::new(
                    "llm_meter_ingest_batch_seconds",
                    "Time to commit one batch of records to the store.",
                )
                .buckets(vec![
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ]),
                &[],
            )
            .expect("valid metric"),
            collector_lag_bytes: GaugeVec::new(
                Opts::new(
                    "llm_meter_collector_lag_bytes",
                    "Bytes written to watched files but not yet committed, per collector.",
                ),
                &["collector"],
            )
            .expect("valid metric"),
            collector_lines: IntCounterVec::new(
                Opts::new(
                    "llm_meter_collector_lines_total",
                    "Lines read by collectors, by outcome (read, rejected).",
                ),
                &["collector", "outcome"],
            )
            .expect("valid metric"),
            collector_files: GaugeVec::new(
                Opts::new(
                    "llm_meter_collector_files_watched",
                    "Files each collector is following.",
                ),
                &["collector"],
            )
            .expect("valid metric"),
            http_requests: IntCounterVec::new(
                Opts::new(
                    "llm_meter_http_requests_total",
                    "HTTP requests, by route template, method and status class.",
                ),
                &["route", "method", "status"],
            )
            .expect("valid metric"),
            http_request_seconds: HistogramVec::new(
                HistogramOpts::new(
                    "llm_meter_http_request_seconds",
                    "HTTP request latency by route template.",
                )
                .buckets(vec![
                    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                ]),
                &["route"],
            )
            .expect("valid metric"),
            project_spend_usd: GaugeVec::new(
                Opts::new(
                    "llm_meter_project_spend_usd",
                    "Spend in USD per project, period to date (day or month, in metrics.timezone), read from the store.",
                ),
                &["project", "period"],
            )
            .expect("valid metric"),
            project_savings_usd: GaugeVec::new(
                Opts::new(
                    "llm_meter_project_savings_usd",
                    "What prompt caching (kind=cache; negative when cache writes cost more than reads saved) and batch or flex pricing (kind=batch) took off list price per project, period to date, read from the store.",
                ),
                &["project", "period", "kind"],
            )
            .expect("valid metric"),
            rate_limit_utilization: GaugeVec::new(
                Opts::new(
                    "llm_meter_rate_limit_utilization_ratio",
                    "Share of each configured rate limit ([[rate_limits]]) the last minute of stored usage used, by record time (1 = at the limit); lags the source by the ingest delay.",
                ),
                &["provider", "model", "kind"],
            )
            .expect("valid metric"),
            store_gauges_refreshed: prometheus::Gauge::new(
                "llm_meter_store_gauges_refreshed_timestamp_seconds",
                "When the store-derived gauges were last read from the store (Unix time).",
            )
            .expect("valid metric"),
            read_replica_lag: GaugeVec::new(
                Opts::new(
                    "llm_meter_read_replica_lag_seconds",
                    "How far behind the primary the read replica ([store] read_url) is: 0 when it \
                     has replayed all it received, else the time since the last transaction it \
                     replayed. Only with a replica.",
                ),
                &["store"],
            )
            .expect("valid metric"),
            budget_spend_usd: GaugeVec::new(
                Opts::new(
                    "llm_meter_budget_spend_usd",
                    "Spend in USD of each budget's scope over its current period, from the store.",
                ),
                &["budget"],
            )
            .expect("valid metric"),
            budget_limit_usd: GaugeVec::new(
                Opts::new("llm_meter_budget_limit_usd", "Each budget's limit in USD."),
                &["budget"],
            )
            .expect("valid metric"),
            budget_utilization: GaugeVec::new(
                Opts::new(
                    "llm_meter_budget_utilization_ratio",
                    "Each budget's spend over its limit (1 = the limit is reached).",
                ),
                &["budget"],
            )
            .expect("valid metric"),
            budget_forecast_usd: GaugeVec::new(
                Opts::new(
                    "llm_meter_budget_forecast_usd",
                    "Each budget's spend forecast for the end of its period (absent early in a period).",
                ),
                &["budget"],
            )
            .expect("valid metric"),
            alerts: IntCounterVec::new(
                Opts::new(
                    "llm_meter_alerts_total",
                    "Budget alerts this process fired, by budget and kind (threshold, forecast).",
                ),
                &["budget", "kind"],
            )
            .expect("valid metric"),
            webhook_deliveries: IntCounterVec::new(
                Opts::new(
                    "llm_meter_webhook_deliveries_total",
                    "Webhook delivery attempts this process made, by outcome (delivered, failed, expired).",
                ),
                &["outcome"],
            )
            .expect("valid metric"),
            pricing_sync_failures: IntCounterVec::new(
                Opts::new(
                    "llm_meter_pricing_sync_failures_total",
                    "Price catalog syncs refused, by source and reason (unreachable, malformed, shrunk, price_jump, store); the last good prices stay.",
                ),
                &["source", "reason"],
            )
            .expect("valid metric"),
            pricing_sync_last_success: GaugeVec::new(
                Opts::new(
                    "llm_meter_pricing_sync_last_success_timestamp_seconds",
                    "When each price catalog source was last synced successfully (Unix time).",
                ),
                &["source"],
            )
            .expect("valid metric"),
            pricing_sync_models: GaugeVec::new(
                Opts::new(
                    "llm_meter_pricing_sync_models",
                    "Priced chat models the last accepted catalog of each source lists.",
                ),
                &["source"],
            )
            .expect("valid metric"),
            pricing_sync_skipped_entries: IntCounterVec::new(
                Opts::new(
                    "llm_meter_pricing_sync_skipped_entries_total",
                    "Malformed catalog entries skipped by price syncs, by source.",
                ),
                &["source"],
            )
            .expect("valid metric"),
            folded: IntCounterVec::new(
                Opts::new(
                    "llm_meter_metrics_folded_total",
                    "Updates counted under the label `other` because their family's share of [metrics] max_series was used up: usage (per record group), request_cost (per record group), project_spend (per project per refresh).",
                ),
                &["family"],
            )
            .expect("valid metric"),
            http_connections_refused: prometheus::IntCounter::new(
                "llm_meter_http_connections_refused_total",
                "Connections closed as soon as they were accepted because [limits] max_connections were open.",
            )
            .expect("valid metric"),
            budget: SeriesBudget::new(max_series),
            registry,
            spend_projects: Mutex::new(HashSet::new()),
            savings_projects: Mutex::new(HashSet::new()),
            budget_names: Mutex::new(HashSet::new()),
            usage_series: Mutex::new(HashSet::new()),
            cost_series: Mutex::new(HashSet::new()),
        };
        for collector in [
            Box::new(metrics.cost_usd.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(metrics.tokens.clone()),
            Box::new(metrics.requests.clone()),
            Box::new(metrics.batch_requests.clone()),
            Box::new(metrics.request_cost_usd.clone()),
            Box::new(metrics.unpriced_requests.clone()),
            Box::new(metrics.partial_requests.clone()),
            Box::new(metrics.folded.clone()),
            Box::new(metrics.http_connections_refused.clone()),
            Box::new(metrics.calls.clone()),
            Box::new(metrics.ingest_records.clone()),
            Box::new(metrics.ingest_batch_seconds.clone()),
            Box::new(metrics.collector_lag_bytes.clone()),
            Box::new(metrics.collector_lines.clone()),
            Box::new(metrics.collector_files.clone()),
            Box::new(metrics.http_requests.clone()),
            Box::new(metrics.http_request_seconds.clone()),
            Box::new(metrics.project_spend_usd.clone()),
            Box::new(metrics.project_savings_usd.clone()),
            Box::new(metrics.rate_limit_utilization.clone()),
            Box::new(metrics.store_gauges_refreshed.clone()),
            Box::new(metrics.read_replica_lag.clone()),
            Box::new(metrics.budget_spend_usd.clone()),
            Box::new(metrics.budget_limit_usd.clone()),
            Box::new(metrics.budget_utilization.clone()),
            Box::new(metrics.budget_forecast_usd.clone()),
            Box::new(metrics.alerts.clone()),
            Box::new(metrics.webhook_deliveries.clone()),
            Box::new(metrics.pricing_sync_failures.clone()),
            Box::new(metrics.pricing_sync_last_success.clone()),
            Box::new(metrics.pricing_sync_models.clone()),
            Box::new(metrics.pricing_sync_skipped_entries.clone()),
        ] {
            metrics
                .registry
                .register(collector)
                .expect("unique metric names");
        }
        // Every outcome at 0 from the start, so the first failure shows in a rate.
        for outcome in ["delivered", "failed", "expired"] {
            metrics.webhook_deliveries.with_label_values(&[outcome]);
        }
        metrics
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The text exposition format (0.0.4).
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        let encoder = TextEncoder::new();
        let _ = encoder.encode(&self.registry.gather(), &mut buffer);
        String::from_utf8(buffer).unwrap_or_default()
    }

    /// Counts stored events in the usage counters. Events are summed per label set
    /// first: one counter update per group, not per event.
    pub fn record_stored<'e>(&self, events: impl IntoIterator<Item = &'e NewEvent>) {
        #[derive(Default)]
        struct Sums {
            requests: u64,
            batch: u64,
            costs: Vec<f64>,
            unpriced: u64,
            partial: u64,
            tokens: crate::usage::Tokens,
            cost: f64,
        }
        let mut groups: std::collections::HashMap<(&str, &str, &str), Sums> =
            std::collections::HashMap::new();
        for event in events {
            let record = &event.priced.record;
            let model = event.priced.rollup_model();
            let sums = groups
                .entry((record.project.as_str(), record.provider.as_str(), model))
                .or_default();
            sums.requests += 1;
            if record.batch || record.service_tier == "flex" {
                sums.batch += 1;
            }
            sums.tokens = sums.tokens.add(&record.tokens);
            match &event.priced.price {
                PriceOutcome::Priced(priced) => {
                    if priced.partial.is_some() {
                        sums.partial += 1;
                    }
                    let cost = f64::try_from(priced.cost).unwrap_or(0.0);
                    sums.cost += cost;
                    sums.costs.push(cost);
                }
                PriceOutcome::Unpriced(_) => sums.unpriced += 1,
            }
        }
        for ((project, provider, model), sums) in groups {
            let [cost_provider, cost_model] = self.bounded_cost(provider, model);
            let [project, provider, model] = self.bounded_usage(project, provider, model);
            let labels = [project, provider, model];
            self.requests
                .with_label_values(&labels)
                .inc_by(sums.requests);
            for (bucket, count) in sums.tokens.iter().filter(|(_, count)| *count > 0) {
                let counter = if bucket.is_tokens() {
                    &self.tokens
                } else {
                    &self.calls
                };
                counter
                    .with_label_values(&[project, provider, model, bucket.as_str()])
                    .inc_by(count);
            }
            if !sums.costs.is_empty() {
                let histogram = self
                    .request_cost_usd
                    .with_label_values(&[cost_provider, cost_model]);
                for cost in &sums.costs {
                    histogram.observe(*cost);
                }
            }
            if sums.batch > 0 {
                self.batch_requests
                    .with_label_values(&labels)
                    .inc_by(sums.batch);
            }
            if sums.requests > sums.unpriced {
                self.cost_usd.with_label_values(&labels).inc_by(sums.cost);
            }
            if sums.unpriced > 0 {
                self.unpriced_requests
                    .with_label_values(&[cost_provider, cost_model])
                    .inc_by(sums.unpriced);
            }
            if sums.partial > 0 {
                self.partial_requests
                    .with_label_values(&[cost_provider, cost_model])
                    .inc_by(sums.partial);
            }
        }
    }

    /// Shows the projects' spend and savings, period to date (from
    /// [`crate::report::gauges::project_spend`], most first), and drops the series of
    /// projects no longer among them. Projects past the series budget's share are shown
    /// together as `project="other"`. Set first, then dropped: a scrape never sees a gap.
    pub fn publish_project_spend(&self, projects: &[ProjectSpend], now: DateTime<Utc>) {
        let as_f64 = |amount: Decimal| f64::try_from(amount).unwrap_or(0.0);
        let mut shown = HashSet::new();
        let own = self.budget.projects.saturating_sub(1);
        let (top, rest) = if projects.len() > self.budget.projects {
            projects.split_at(own)
        } else {
            (projects, &[][..])
        };
        let mut other = ProjectSpend {
            project: OVERFLOW_LABEL.to_owned(),
            month: Default::default(),
            day: Default::default(),
        };
        for spend in rest {
            other.month.add(&spend.month);
            other.day.add(&spend.day);
        }
        if !rest.is_empty() {
            self.folded
                .with_label_values(&["project_spend"])
                .inc_by(rest.len() as u64);
        }
        let folded = (!rest.is_empty()).then_some(&other);
        for spend in top.iter().chain(folded) {
            let project = spend.project.as_str();
            for (period, sums) in [("month", &spend.month), ("day", &spend.day)] {
                self.project_spend_usd
                    .with_label_values(&[project, period])
                    .set(as_f64(sums.cost));
                for (kind, saved) in [("cache", sums.cache_savings), ("batch", sums.batch_savings)]
                {
                    self.project_savings_usd
                        .with_label_values(&[project, period, kind])
                        .set(as_f64(saved));
                }
            }
            shown.insert(project.to_owned());
        }
        self.retain_series(
            &self.project_savings_usd,
            &self.savings_projects,
            shown.clone(),
            |project| {
                let mut series = Vec::new();
                for period in ["month", "day"] {
                    for kind in ["cache", "batch"] {
                        series.push(vec![project.to_owned(), period.to_owned(), kind.to_owned()]);
                    }
                }
                series
            },
        );
        self.retain_series(
            &self.project_spend_usd,
            &self.spend_projects,
            shown,
            |project| {
                vec![
                    vec![project.to_owned(), "month".to_owned()],
                    vec![project.to_owned(), "day".to_owned()],
                ]
            },
        );
        self.store_gauges_refreshed
            .set(now.timestamp_millis() as f64 / 1000.0);
    }

    /// Shows how much of a configured rate limit the last minute used.
    pub fn set_rate_limit_utilization(&self, limit: &RateLimit, headroom: &Headroom) {
        for (kind, utilization) in [
            ("rpm", headroom.rpm_utilization),
            ("tpm", headroom.tpm_utilization),
        ] {
            if let Some(utilization) = utilization {
                self.rate_limit_utilization
                    .with_label_values(&[&limit.provider, &limit.model, kind])
                    .set(utilization);
            }
        }
    }

    /// Remembers which keys a gauge family shows now and removes the series of keys it
    /// showed before but not now.
    pub(crate) fn retain_series(
        &self,
        family: &GaugeVec,
        shown_before: &Mutex<HashSet<String>>,
        shown: HashSet<String>,
        labels: impl Fn(&str) -> Vec<Vec<String>>,
    ) {
        let Ok(mut before) = shown_before.lock() else {
            return;
        };
        for gone in before.difference(&shown) {
            for values in labels(gone) {
                let values: Vec<&str> = values.iter().map(String::as_str).collect();
                let _ = family.remove_label_values(&values);
            }
        }
        *before = shown;
    }

    /// A usage label set as shown: itself while the usage share of the series budget
    /// lasts (or once admitted), else `other` for each label.
    fn bounded_usage<'l>(
        &self,
        project: &'l str,
        provider: &'l str,
        model: &'l str,
    ) -> [&'l str; 3] {
        let key = (project.to_owned(), provider.to_owned(), model.to_owned());
        if admit(&self.usage_series, key, self.budget.usage_sets) {
            [project, provider, model]
        } else {
            self.folded.with_label_values(&["usage"]).inc();
            [OVERFLOW_LABEL; 3]
        }
    }

    /// A (provider, model) label set of the request-cost families, bounded the same way.
    fn bounded_cost<'l>(&self, provider: &'l str, model: &'l str) -> [&'l str; 2] {
        let key = (provider.to_owned(), model.to_owned());
        if admit(&self.cost_series, key, self.budget.cost_sets) {
            [provider, model]
        } else {
            self.folded.with_label_values(&["request_cost"]).inc();
            [OVERFLOW_LABEL; 2]
        }
    }
}

/// Whether `key` has, or may now take, one of `most` places in `seen` (one of which is
/// kept for the `other` set).
fn admit<K: std::hash::Hash + Eq>(seen: &Mutex<HashSet<K>>, key: K, most: usize) -> bool {
    let Ok(mut seen) = seen.lock() else {
        return false;
    };
    if seen.contains(&key) {
        return true;
    }
    if seen.len() + 1 < most {
        seen.insert(key);
        return true;
    }
    false
}
