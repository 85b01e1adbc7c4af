//! Rate-limit headroom: how much of a provider's published requests- and tokens-per-minute
//! limits the last minute of usage used, from the stored records' own times. It lags the
//! source by the ingest delay (a collector's poll, a proxy's flush).

use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;

use crate::store::{Measures, Store, StoreError, UsageFilter, UsageQuery};

/// `[[rate_limits]]`: the tier limits of one provider's model (Tier 1: 500 RPM, 500k TPM).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    pub provider: String,
    /// The pricing sheet's model id (`gpt-5.2` also counts its dated snapshots).
    pub model: String,
    #[serde(default)]
    pub rpm: Option<u64>,
    #[serde(default)]
    pub tpm: Option<u64>,
}

impl RateLimit {
    pub fn check(&self) -> Result<(), String> {
        let name = format!("rate limit {}/{}", self.provider, self.model);
        if self.provider.is_empty() || self.model.is_empty() {
            return Err(format!("{name}: provider and model are required"));
        }
        match (self.rpm, self.tpm) {
            (None, None) => Err(format!("{name}: give rpm, tpm or both")),
            (Some(0), _) | (_, Some(0)) => Err(format!("{name}: limits must be above 0")),
            _ => Ok(()),
        }
    }
}

/// The share of each limit the minute before `now` used (1 = at the limit).
#[derive(Clone, Debug, PartialEq)]
pub struct Headroom {
    pub requests: u64,
    pub tokens: u64,
    pub rpm_utilization: Option<f64>,
    pub tpm_utilization: Option<f64>,
}

/// Reads the records of `[now - 60 s, now)` (by their own time) of the limit's model.
/// Tokens are all six buckets: providers count input and output against TPM.
pub async fn headroom(
    store: &dyn Store,
    limit: &RateLimit,
    now: DateTime<Utc>,
) -> Result<Headroom, StoreError> {
    let usage = store
        .usage(&UsageQuery {
            from: now - Duration::seconds(60),
            to: now,
            group_by: Vec::new(),
            filter: UsageFilter {
                provider: Some(limit.provider.clone()),
                model: Some(limit.model.clone()),
                ..UsageFilter::default()
            },
            measures: Measures::Spend,
        })
        .await?;
    let requests: u64 = usage.iter().map(|a| a.requests).sum();
    let tokens: u64 = usage.iter().map(|a| a.tokens.total()).sum();
    let ratio = |used: u64, limit: Option<u64>| limit.map(|l| used as f64 / l as f64);
    Ok(Headroom {
        requests,
        tokens,
        rpm_utilization: ratio(requests, limit.rpm),
        tpm_utilization: ratio(tokens, limit.tpm),
    })
}
