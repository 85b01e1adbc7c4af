//! The canonical usage record and its six disjoint token buckets.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// One of the six disjoint token buckets. Each is billed at its own rate, and a
/// token is counted in exactly one of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Bucket {
    /// Input tokens neither read from nor written to a cache.
    #[serde(rename = "input")]
    Input,
    /// Input tokens read from a prompt cache.
    #[serde(rename = "cached_input")]
    CachedInput,
    /// Input tokens written to a short-lived (5 minute) cache.
    #[serde(rename = "cache_write_5m")]
    CacheWrite5m,
    /// Input tokens written to a 1-hour cache.
    #[serde(rename = "cache_write_1h")]
    CacheWrite1h,
    /// Output tokens other than reasoning.
    #[serde(rename = "output")]
    Output,
    /// Reasoning / thinking tokens.
    #[serde(rename = "reasoning")]
    Reasoning,
}

impl Bucket {
    pub const ALL: [Bucket; 6] = [
        Bucket::Input,
        Bucket::CachedInput,
        Bucket::CacheWrite5m,
        Bucket::CacheWrite1h,
        Bucket::Output,
        Bucket::Reasoning,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Bucket::Input => "input",
            Bucket::CachedInput => "cached_input",
            Bucket::CacheWrite5m => "cache_write_5m",
            Bucket::CacheWrite1h => "cache_write_1h",
            Bucket::Output => "output",
            Bucket::Reasoning => "reasoning",
        }
    }

    pub fn parse(name: &str) -> Option<Bucket> {
        Bucket::ALL.into_iter().find(|b| b.as_str() == name)
    }

    /// True for the four buckets that count prompt (input-side) tokens.
    pub fn is_input_side(self) -> bool {
        matches!(
            self,
            Bucket::Input | Bucket::CachedInput | Bucket::CacheWrite5m | Bucket::CacheWrite1h
        )
    }
}

impl fmt::Display for Bucket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Token counts in the six disjoint buckets.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(deny_unknown_fields)]
pub struct Tokens {
    #[serde(default)]
    pub input: u64,
    #[serde(default)]
    pub cached_input: u64,
    #[serde(default)]
    pub cache_write_5m: u64,
    #[serde(default)]
    pub cache_write_1h: u64,
    #[serde(default)]
    pub output: u64,
    #[serde(default)]
    pub reasoning: u64,
}

impl Tokens {
    pub fn get(&self, bucket: Bucket) -> u64 {
        match bucket {
            Bucket::Input => self.input,
            Bucket::CachedInput => self.cached_input,
            Bucket::CacheWrite5m => self.cache_write_5m,
            Bucket::CacheWrite1h => self.cache_write_1h,
            Bucket::Output => self.output,
            Bucket::Reasoning => self.reasoning,
        }
    }

    pub fn set(&mut self, bucket: Bucket, value: u64) {
        match bucket {
            Bucket::Input => self.input = value,
            Bucket::CachedInput => self.cached_input = value,
            Bucket::CacheWrite5m => self.cache_write_5m = value,
            Bucket::CacheWrite1h => self.cache_write_1h = value,
            Bucket::Output => self.output = value,
            Bucket::Reasoning => self.reasoning = value,
        }
    }

    /// Every prompt token, cached or not: what long-context thresholds compare against.
    pub fn total_input(&self) -> u64 {
        self.input + self.cached_input + self.cache_write_5m + self.cache_write_1h
    }

    /// Prompt tokens read from or written to a cache.
    pub fn cached_total(&self) -> u64 {
        self.cached_input + self.cache_write_5m + self.cache_write_1h
    }

    /// The same usage as if nothing were cached: every prompt token is plain input.
    pub fn uncached(&self) -> Tokens {
        Tokens {
            input: self.total_input(),
            cached_input: 0,
            cache_write_5m: 0,
            cache_write_1h: 0,
            ..*self
        }
    }

    /// Every generated token, reasoning included.
    pub fn total_output(&self) -> u64 {
        self.output + self.reasoning
    }

    pub fn total(&self) -> u64 {
        self.total_input() + self.total_output()
    }

    pub fn iter(&self) -> impl Iterator<Item = (Bucket, u64)> + '_ {
        Bucket::ALL.into_iter().map(|b| (b, self.get(b)))
    }

    /// Bucket-wise sum; saturates instead of overflowing (counts are bounded far below).
    pub fn add(&self, other: &Tokens) -> Tokens {
        let mut sum = Tokens::default();
        for bucket in Bucket::ALL {
            sum.set(bucket, self.get(bucket).saturating_add(other.get(bucket)));
        }
        sum
    }
}

/// A usage record as a parser produced it: the fields a line may leave out are `None`
/// until [`crate::usage::normalise`] fills them in.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ParsedUsage {
    /// The idempotency key, if the input carried one (the provider's response id, the
    /// record's own `id`, or a CloudEvent's `source#id`).
    pub id: Option<String>,
    pub time: Option<DateTime<Utc>>,
    pub project: Option<String>,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub tokens: Tokens,
    pub batch: bool,
    pub service_tier: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub user: Option<String>,
    pub reasoning_effort: Option<String>,
    /// A cost the source itself reported (OpenRouter's `usage.cost`, LiteLLM's
    /// `response_cost`), kept beside the computed one, never used instead of it.
    pub reported_cost: Option<Decimal>,
}

/// A complete, normalised usage record: what the pipeline prices and stores.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct UsageRecord {
    pub id: String,
    pub time: DateTime<Utc>,
    pub project: String,
    pub provider: String,
    pub model: String,
    pub tokens: Tokens,
    pub batch: bool,
    pub service_tier: String,
    pub tags: BTreeMap<String, String>,
    pub user: Option<String>,
    pub reasoning_effort: Option<String>,
    pub reported_cost: Option<Decimal>,
}
