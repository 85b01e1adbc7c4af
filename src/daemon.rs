//! The running daemon: store, pipeline, HTTP API (and, as they land, collectors and
//! budget workers), started together and stopped together. `serve` and the tests both
//! start it through [`Daemon::start`] on a listener they bound themselves.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::{Notify, oneshot, watch};
use tokio::task::JoinHandle;

use crate::api::{self, AppState};
use crate::budget::engine::Engine;
use crate::collect::Collector;
use crate::config::Config;
use crate::ingest::{Changes, Pipeline, PipelineConfig};
use crate::metrics::Metrics;
use crate::report::headroom::RateLimit;
use crate::store::Store;
use crate::usage::DEFAULT_PROJECT;
use crate::webhook::{Deliverer, TargetGuard};

pub struct Daemon {
    pub addr: SocketAddr,
    pub store: Arc<dyn Store>,
    pub metrics: Arc<Metrics>,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
    /// Held while serving from a SQLite file: one daemon per file.
    file_lock: Option<std::fs::File>,
}

impl Daemon {
    /// Connects the store, applies migrations, and serves on `listener` until stopped.
    pub async fn start(config: &Config, listener: TcpListener) -> anyhow::Result<Daemon> {
        let url = config.database_url();
        let file_lock = lock_sqlite_file(url)?;
        let store = crate::store::open(url).await?;
        tracing::info!(
            message = "Store ready.",
            store = store.kind(),
            url = %crate::store::redact_url(url)
        );
        let mut daemon = Daemon::start_with_store(config, listener, store).await?;
        daemon.file_lock = file_lock;
        Ok(daemon)
    }

    pub async fn start_with_store(
        config: &Config,
        listener: TcpListener,
        store: Arc<dyn Store>,
    ) -> anyhow::Result<Daemon> {
        // The marker first: a sync recorded while the book loads is then picked up later.
        let prices_marker = store.price_sync_marker().await?;
        let book = crate::pricing::LiveBook::new(config.live_price_book(store.as_ref()).await?);
        let metrics = Arc::new(Metrics::with_max_series(config.metrics.max_series));
        let changes = Arc::new(Changes::default());
        let (pipeline, batcher) = Pipeline::start(
            store.clone(),
            PipelineConfig {
                changes: Some(changes.clone()),
                events_retention: config.retention.events,
                ..PipelineConfig::default()
            },
            metrics.clone(),
        );
        let guard = Arc::new(TargetGuard::new(&config.webhooks.allow).map_err(anyhow::Error::msg)?);
        let wake_deliveries = Arc::new(Notify::new());
        let engine = Arc::new(
            Engine::new(
                store.clone(),
                metrics.clone(),
                changes,
                wake_deliveries.clone(),
                config.alerts.clone(),
                config.webhooks.expire_after,
                &config.digests,
            )
            .map_err(anyhow::Error::msg)?,
        );
        upsert_config_budgets(store.as_ref(), &config.budgets).await?;
        let auth = crate::auth::Authenticator::new(store.clone(), &config.tokens)
            .map_err(anyhow::Error::msg)?;
        let reader = config.reader(&store)?;
        let state = AppState {
            store: store.clone(),
            reader: reader.clone(),
            pipeline,
            book,
            metrics: metrics.clone(),
            default_project: Arc::from(DEFAULT_PROJECT),
            limits: config.limits.clone(),
            budgets: engine.clone(),
            guard: guard.clone(),
            auth: Arc::new(auth),
            rate_limiter: Arc::new(api::rate_limiter(&config.limits)),
            failed_auth: Arc::new(crate::auth::FailedAuth::new(
                config.limits.failed_auth_per_minute,
            )),
            metrics_open: config.server.metrics_open,
        };
        let addr = listener.local_addr()?;
        let (stop_collectors, collectors_stop) = watch::channel(false);
        let deliverer = Arc::new(Deliverer {
            store: store.clone(),
            metrics: metrics.clone(),
            client: crate::webhook::client(guard, config.webhooks.timeout),
            guard: state.guard.clone(),
            config: config.webhooks.clone(),
            wake: wake_deliveries,
        });
        let syncer = Arc::new(crate::pricesync::Syncer::new(
            config.pricing.sync.clone(),
            store.clone(),
            metrics.clone(),
            config.sheet_texts()?,
            config.pricing.terms(),
            state.book.clone(),
        ));
        syncer.loaded(prices_marker);
        let background = vec![
            tokio::spawn(engine.run(collectors_stop.clone())),
            tokio::spawn(deliverer.run(collectors_stop.clone())),
            tokio::spawn(crate::pricesync::run(
                syncer,
                config.metrics.refresh_interval,
                collectors_stop.clone(),
            )),
            tokio::spawn(crate::retention::run(
                store.clone(),
                config.retention.clone(),
                collectors_stop.clone(),
            )),
        ];
        let mut collectors = Vec::new();
        for collector_config in &config.collectors {
            let collector = Collector::new(
                collector_config.clone(),
                state.book.clone(),
                state.pipeline.clone(),
                store.clone(),
                metrics.clone(),
            )
            .await?;
            tracing::info!(message = "Collector started.", collector = %collector.name(), paths = ?collector_config.paths);
            collectors.push(tokio::spawn(collector.run(collectors_stop.clone())));
        }
        for limit in &config.rate_limits {
            limit.check().map_err(anyhow::Error::msg)?;
        }
        let gauges = tokio::spawn(refresh_gauges(
            reader,
            metrics.clone(),
            config.metrics.clone(),
            config.rate_limits.clone(),
            state.rate_limiter.clone(),
            collectors_stop.clone(),
        ));
        let (shutdown, stop) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let stopping = async move {
                let _ = stop.await;
                // Collectors finish the write in flight and stop reading.
                let _ = stop_collectors.send(true);
                for collector in collectors {
                    let _ = collector.await;
                }
                let _ = gauges.await;
                for task in background {
                    let _ = task.await;
                }
            };
            api::serve(listener, state, stopping).await?;
            // The router (and its pipeline handles) is gone: the batcher drains and ends.
            batcher.await.context("the ingest batcher panicked")?;
            Ok(())
        });
        tracing::info!(message = "Listening.", %addr);
        Ok(Daemon {
            addr,
            store,
            metrics,
            shutdown: Some(shutdown),
            task,
            file_lock: None,
        })
    }

    /// Stops taking requests, finishes those in flight, and commits what was accepted.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        self.task.await.context("the daemon task panicked")?
    }

    /// Runs until the process is asked to stop (Ctrl-C or SIGTERM), then stops cleanly.
    pub async fn run_until_signal(self) -> anyhow::Result<()> {
        wait_for_signal().await;
        tracing::info!("Shutting down.");
        self.stop().await
    }
}

/// Creates the budgets the config declares, or updates those of the same name.
async fn upsert_config_budgets(
    store: &dyn Store,
    specs: &[crate::budget::BudgetSpec],
) -> anyhow::Result<()> {
    if specs.is_empty() {
        return Ok(());
    }
    let stored = store.budgets().await?;
    let now = chrono::Utc::now();
    for spec in specs {
        let spec_json = serde_json::to_string(spec)?;
        match stored.iter().find(|b| b.name == spec.name) {
            Some(existing) => {
                store
                    .update_budget(&crate::store::StoredBudget {
                        spec_json,
                        source: crate::store::BudgetSource::Config,
                        updated_at: now,
                        ..existing.clone()
                    })
                    .await?;
            }
            None => {
                let inserted = store
                    .insert_budget(&crate::store::StoredBudget {
                        id: crate::budget::new_budget_id(),
                        name: spec.name.clone(),
                        spec_json: spec_json.clone(),
                        source: crate::store::BudgetSource::Config,
                        created_at: now,
                        updated_at: now,
                    })
                    .await;
                match inserted {
                    Ok(()) => {}
                    // Another replica starting at the same moment created it first.
                    Err(crate::store::StoreError::Conflict(_)) => {}
                    Err(error) => return Err(error.into()),
                }
            }
        }
        if spec
            .webhooks
            .iter()
            .any(|w| w.format == crate::budget::WebhookFormat::Json && w.secret.is_none())
        {
            tracing::warn!(message = "A JSON webhook of a configured budget has no secret: its deliveries are not signed.", budget = %spec.name);
        }
    }
    Ok(())
}

/// Keeps the store-derived gauges fresh until `stop` turns true. A failed refresh keeps
/// the last values (and the refresh timestamp says how old they are).
async fn refresh_gauges(
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    config: crate::config::MetricsConfig,
    rate_limits: Vec<RateLimit>,
    rate_limiter: Arc<api::RateLimiter>,
    mut stop: watch::Receiver<bool>,
) {
    let tz: chrono_tz::Tz = config.timezone.parse().unwrap_or(chrono_tz::UTC);
    let mut ticks = tokio::time::interval(config.refresh_interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
        if let Err(error) = refresh_store_gauges(store.as_ref(), &metrics, tz, &rate_limits).await {
            tracing::warn!(message = "Cannot refresh the store-derived gauges.", %error);
        }
        // Forget callers that have been quiet long enough to be back at a full burst.
        rate_limiter.retain_recent();
        rate_limiter.shrink_to_fit();
    }
}

/// Reads the store-derived gauges again: the read replica's lag (with one), spend and
/// savings per project for the current day and month in `tz`, and the rate-limit headroom.
pub async fn refresh_store_gauges(
    store: &dyn Store,
    metrics: &Metrics,
    tz: chrono_tz::Tz,
    rate_limits: &[RateLimit],
) -> Result<(), crate::store::StoreError> {
    let now = chrono::Utc::now();
    if let Some(lag) = store.replica_lag().await? {
        metrics
            .read_replica_lag
            .with_label_values(&["replica"])
            .set(lag.as_secs_f64());
    }
    let projects = crate::report::gauges::project_spend(store, tz, now).await?;
    metrics.publish_project_spend(&projects, now);
    for limit in rate_limits {
        let headroom = crate::report::headroom::headroom(store, limit, now).await?;
        metrics.set_rate_limit_utilization(limit, &headroom);
    }
    Ok(())
}

/// SQLite allows one writer per file, and several daemons on one file would each run
/// their own budget and delivery workers: refuse a second `serve` on the same file.
///
/// The lock (`flock`) is taken on the database file itself, so it holds for the file
/// whatever name reaches it: a hard link or another path to the same file is the same
/// lock (each name would otherwise get its own `-wal` file, and the database breaks).
/// SQLite's own locks are POSIX locks, which a process loses when it closes *any*
/// descriptor of the file: this one stays open until the daemon has closed its store,
/// and is never closed when the lock is refused.
fn lock_sqlite_file(url: &str) -> anyhow::Result<Option<std::fs::File>> {
    let Some(path) = crate::store::sqlite_path(url) else {
        return Ok(None);
    };
    if path.is_empty() || path == ":memory:" || path.starts_with("file::memory:") {
        return Ok(None);
    }
    // An empty file is a new SQLite database: creating it first lets it be locked before
    // the store opens and migrates it.
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
        .with_context(|| format!("cannot open the database file {path}"))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => {
            std::mem::forget(file);
            anyhow::bail!(
                "another llm-meter serve is using {path} (or a link to the same file): the embedded SQLite store serves one daemon per file. To run several replicas, point DATABASE_URL at Postgres."
            )
        }
        Err(std::fs::TryLockError::Error(error)) => {
            std::mem::forget(file);
            Err(error).with_context(|| format!("cannot lock {path}"))
        }
    }
}

async fn wait_for_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
}
