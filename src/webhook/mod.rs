//! Webhooks: Standard Webhooks signatures (`signing`), the guard against server-side
//! request forgery (`guard`), and the worker that drains the outbox (`deliver`).
//!
//! Deliveries are rows written in the same transaction as the alert that caused them. Any
//! daemon may deliver one: it leases the row, POSTs it, keeps the attempt, and either
//! marks it delivered or schedules a retry (exponential backoff with jitter, honouring
//! `Retry-After`) until it expires. A daemon that dies mid-attempt lets its lease run out
//! and another retries, with the same `webhook-id`: receivers drop repeats by that id.

mod deliver;
mod guard;
mod signing;

use std::time::Duration;

use serde::Deserialize;

pub use deliver::{Deliverer, backoff, redact_target};
pub use guard::{TargetGuard, client};
pub use signing::{new_secret, secret_key, sign};

/// `[webhooks]` in the config.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Hosts (`hooks.internal`) or ranges (`10.0.0.0/8`, `127.0.0.1`) that may be targets
    /// although they are loopback, private or link-local.
    #[serde(default)]
    pub allow: Vec<String>,
    /// How long one attempt may take.
    #[serde(default = "default_timeout", with = "crate::duration_text")]
    pub timeout: Duration,
    /// How long a delivery is retried before it is given up.
    #[serde(default = "default_expire_after", with = "crate::duration_text")]
    pub expire_after: Duration,
    /// How often the outbox is looked at when nothing wakes the worker (other daemons'
    /// alerts, retries coming due).
    #[serde(default = "default_poll_interval", with = "crate::duration_text")]
    pub poll_interval: Duration,
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_expire_after() -> Duration {
    Duration::from_secs(24 * 3600)
}

fn default_poll_interval() -> Duration {
    Duration::from_secs(1)
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            allow: Vec::new(),
            timeout: default_timeout(),
            expire_after: default_expire_after(),
            poll_interval: default_poll_interval(),
        }
    }
}
