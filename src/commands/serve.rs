//! `llm-meter serve` and `llm-meter migrate`.

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::cli::ServeArgs;
use crate::config::Config;
use crate::daemon::Daemon;

pub async fn serve(config: &Config, args: ServeArgs) -> anyhow::Result<ExitCode> {
    let listen = args.listen.as_deref().unwrap_or(config.listen());
    let addr = resolve(listen).await?;
    let tokens_required = {
        let store = config.open_store().await?;
        !config.tokens.is_empty() || store.any_token().await?
    };
    if tokens_required {
        tracing::info!("API tokens are required (Authorization: Bearer …).");
    } else if !addr.ip().is_loopback() && !args.insecure_no_auth {
        eprintln!(
            "error: refusing to listen on {addr}: no API token is configured, so the API would \
             be open to the network. Create one (llm-meter token create --role admin), listen \
             on a loopback address (127.0.0.1:7464), or pass --insecure-no-auth if that is \
             really what you want."
        );
        return Ok(ExitCode::FAILURE);
    } else if addr.ip().is_loopback() {
        tracing::warn!(
            "No API token is configured: the API is open to local clients. Create one with `llm-meter token create --role admin`."
        );
    } else {
        tracing::warn!(
            "No API token is configured and --insecure-no-auth was given: the API is open to the network."
        );
    }
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let daemon = Daemon::start(config, listener).await?;
    daemon.run_until_signal().await?;
    Ok(ExitCode::SUCCESS)
}

pub async fn migrate(config: &Config) -> anyhow::Result<ExitCode> {
    let store = config.open_store().await?;
    println!(
        "migrations applied ({} store {})",
        store.kind(),
        crate::store::redact_url(config.database_url())
    );
    Ok(ExitCode::SUCCESS)
}

async fn resolve(listen: &str) -> anyhow::Result<SocketAddr> {
    if let Ok(addr) = listen.parse::<SocketAddr>() {
        return Ok(addr);
    }
    tokio::net::lookup_host(listen)
        .await
        .with_context(|| format!("cannot resolve listen address {listen:?}"))?
        .next()
        .with_context(|| format!("listen address {listen:?} resolves to nothing"))
}
