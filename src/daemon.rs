//! The running daemon: store, pipeline, HTTP API (and, as they land, collectors and
//! budget workers), started together and stopped together. `serve` and the tests both
//! start it through [`Daemon::start`] on a listener they bound themselves.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::api::{self, AppState, Limits};
use crate::config::Config;
use crate::ingest::{Pipeline, PipelineConfig};
use crate::metrics::Metrics;
use crate::store::{self, Store};
use crate::usage::DEFAULT_PROJECT;

pub struct Daemon {
    pub addr: SocketAddr,
    pub store: Arc<dyn Store>,
    pub metrics: Arc<Metrics>,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Daemon {
    /// Connects the store, applies migrations, and serves on `listener` until stopped.
    pub async fn start(config: &Config, listener: TcpListener) -> anyhow::Result<Daemon> {
        let url = config.database_url();
        let store = store::connect(url)
            .await
            .with_context(|| format!("cannot open the store {}", crate::config::redact_url(url)))?;
        store.migrate().await.context("cannot migrate the store")?;
        tracing::info!(
            message = "Store ready.",
            store = store.kind(),
            url = %crate::config::redact_url(url)
        );
        Daemon::start_with_store(config, listener, store).await
    }

    pub async fn start_with_store(
        config: &Config,
        listener: TcpListener,
        store: Arc<dyn Store>,
    ) -> anyhow::Result<Daemon> {
        let book = Arc::new(config.price_book()?);
        let metrics = Arc::new(Metrics::new());
        let (pipeline, batcher) =
            Pipeline::start(store.clone(), PipelineConfig::default(), metrics.clone());
        let state = AppState {
            store: store.clone(),
            pipeline,
            book,
            metrics: metrics.clone(),
            default_project: Arc::from(DEFAULT_PROJECT),
            limits: Limits::default(),
        };
        let addr = listener.local_addr()?;
        let (shutdown, stop) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let stopping = async move {
                let _ = stop.await;
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
