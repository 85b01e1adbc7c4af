//! The canonical usage record and its disjoint buckets: six kinds of text tokens, five
//! kinds of audio and image tokens, four kinds of per-call charges and the per-request
//! fee.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// One of the disjoint buckets a record's usage is counted in. Each is billed at its own
/// rate, and a token (or call) is counted in exactly one of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bucket {
    /// Text (and, where the provider bills them alike, image and video) input tokens
    /// neither read from nor written to a cache.
    Input,
    /// Input tokens read from a prompt cache.
    CachedInput,
    /// Input tokens written to a short-lived (5 minute) cache.
    #[serde(rename = "cache_write_5m")]
    CacheWrite5m,
    /// Input tokens written to a 1-hour cache.
    #[serde(rename = "cache_write_1h")]
    CacheWrite1h,
    /// Output tokens other than reasoning.
    Output,
    /// Reasoning / thinking tokens.
    Reasoning,
    /// Audio input tokens (not read from a cache).
    AudioInput,
    /// Audio input tokens read from a cache.
    CachedAudioInput,
    /// Audio output tokens.
    AudioOutput,
    /// Image input tokens, where the provider bills them apart from text.
    ImageInput,
    /// Image output tokens (image-generating models).
    ImageOutput,
    /// Web-search (grounding) calls.
    WebSearch,
    /// Code-interpreter sessions (containers).
    CodeInterpreter,
    /// File-search calls.
    FileSearch,
    /// Images generated, priced per image.
    ImageGeneration,
    /// The per-request fee: one per record, counted by `requests`, never stored apart.
    Request,
}

/// What a bucket counts, and so what its rate is per.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Measure {
    /// Tokens; rates are USD per 1M tokens.
    Tokens,
    /// Calls, sessions or images; rates are USD per call.
    Calls,
    /// The request itself; the rate is USD per request.
    Request,
}

impl Bucket {
    pub const COUNT: usize = 16;

    pub const ALL: [Bucket; Bucket::COUNT] = [
        Bucket::Input,
        Bucket::CachedInput,
        Bucket::CacheWrite5m,
        Bucket::CacheWrite1h,
        Bucket::Output,
        Bucket::Reasoning,
        Bucket::AudioInput,
        Bucket::CachedAudioInput,
        Bucket::AudioOutput,
        Bucket::ImageInput,
        Bucket::ImageOutput,
        Bucket::WebSearch,
        Bucket::CodeInterpreter,
        Bucket::FileSearch,
        Bucket::ImageGeneration,
        Bucket::Request,
    ];

    /// The six text-token buckets of the first contract, in their order.
    pub const TEXT: [Bucket; 6] = [
        Bucket::Input,
        Bucket::CachedInput,
        Bucket::CacheWrite5m,
        Bucket::CacheWrite1h,
        Bucket::Output,
        Bucket::Reasoning,
    ];

    /// Every bucket a record counts itself (all but the request, which is the record).
    pub const COUNTED: [Bucket; Bucket::COUNT - 1] = {
        let mut counted = [Bucket::Input; Bucket::COUNT - 1];
        let mut i = 0;
        while i < Bucket::COUNT - 1 {
            counted[i] = Bucket::ALL[i];
            i += 1;
        }
        counted
    };

    pub fn as_str(self) -> &'static str {
        match self {
            Bucket::Input => "input",
            Bucket::CachedInput => "cached_input",
            Bucket::CacheWrite5m => "cache_write_5m",
            Bucket::CacheWrite1h => "cache_write_1h",
            Bucket::Output => "output",
            Bucket::Reasoning => "reasoning",
            Bucket::AudioInput => "audio_input",
            Bucket::CachedAudioInput => "cached_audio_input",
            Bucket::AudioOutput => "audio_output",
            Bucket::ImageInput => "image_input",
            Bucket::ImageOutput => "image_output",
            Bucket::WebSearch => "web_search",
            Bucket::CodeInterpreter => "code_interpreter",
            Bucket::FileSearch => "file_search",
            Bucket::ImageGeneration => "image_generation",
            Bucket::Request => "request",
        }
    }

    /// The field a canonical record writes its count in: `tokens.input`, for errors.
    pub fn canonical_field(self) -> &'static str {
        match self {
            Bucket::Input => "tokens.input",
            Bucket::CachedInput => "tokens.cached_input",
            Bucket::CacheWrite5m => "tokens.cache_write_5m",
            Bucket::CacheWrite1h => "tokens.cache_write_1h",
            Bucket::Output => "tokens.output",
            Bucket::Reasoning => "tokens.reasoning",
            Bucket::AudioInput => "tokens.audio_input",
            Bucket::CachedAudioInput => "tokens.cached_audio_input",
            Bucket::AudioOutput => "tokens.audio_output",
            Bucket::ImageInput => "tokens.image_input",
            Bucket::ImageOutput => "tokens.image_output",
            Bucket::WebSearch => "tokens.web_search",
            Bucket::CodeInterpreter => "tokens.code_interpreter",
            Bucket::FileSearch => "tokens.file_search",
            Bucket::ImageGeneration => "tokens.image_generation",
            Bucket::Request => "tokens.request",
        }
    }

    pub fn parse(name: &str) -> Option<Bucket> {
        Bucket::ALL.into_iter().find(|b| b.as_str() == name)
    }

    /// The bucket's position in rate tables, cost arrays and stored columns.
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn measure(self) -> Measure {
        match self {
            Bucket::WebSearch
            | Bucket::CodeInterpreter
            | Bucket::FileSearch
            | Bucket::ImageGeneration => Measure::Calls,
            Bucket::Request => Measure::Request,
            _ => Measure::Tokens,
        }
    }

    pub fn is_tokens(self) -> bool {
        self.measure() == Measure::Tokens
    }

    /// The six text-token buckets, which the contract prices with defaults (a missing
    /// cache-write rate is the input rate) or not at all; the others are priced where
    /// a sheet gives their rate and otherwise leave the record partially priced.
    pub fn is_text(self) -> bool {
        self.index() < 6
    }

    /// True for the buckets that count prompt (input-side) tokens.
    pub fn is_input_side(self) -> bool {
        matches!(
            self,
            Bucket::Input
                | Bucket::CachedInput
                | Bucket::CacheWrite5m
                | Bucket::CacheWrite1h
                | Bucket::AudioInput
                | Bucket::CachedAudioInput
                | Bucket::ImageInput
        )
    }

    /// True for the buckets that count generated tokens.
    pub fn is_output_side(self) -> bool {
        matches!(
            self,
            Bucket::Output | Bucket::Reasoning | Bucket::AudioOutput | Bucket::ImageOutput
        )
    }

    /// The bucket whose standard rate is this one's list price: cached and written
    /// tokens list at their modality's uncached input rate, reasoning at the output rate.
    pub fn list_bucket(self) -> Bucket {
        match self {
            Bucket::CachedInput | Bucket::CacheWrite5m | Bucket::CacheWrite1h => Bucket::Input,
            Bucket::Reasoning => Bucket::Output,
            Bucket::CachedAudioInput => Bucket::AudioInput,
            other => other,
        }
    }

    /// What a reader calls one of it: `tokens`, `calls`, `sessions`, `images`, `requests`.
    pub fn unit_name(self) -> &'static str {
        match self {
            Bucket::CodeInterpreter => "sessions",
            Bucket::ImageGeneration => "images",
            Bucket::Request => "requests",
            Bucket::WebSearch | Bucket::FileSearch => "calls",
            _ => "tokens",
        }
    }
}

impl fmt::Display for Bucket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

/// Counts in every bucket a record counts itself: tokens, and calls for the per-call
/// charges. The buckets past the six text ones are left out of JSON when zero, so a text
/// record reads as it always has.
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
    #[serde(default, skip_serializing_if = "is_zero")]
    pub audio_input: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cached_audio_input: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub audio_output: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub image_input: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub image_output: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub web_search: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub code_interpreter: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub file_search: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub image_generation: u64,
}

impl Tokens {
    /// Text tokens alone, in the six text buckets' order.
    pub const fn text(
        input: u64,
        cached_input: u64,
        cache_write_5m: u64,
        cache_write_1h: u64,
        output: u64,
        reasoning: u64,
    ) -> Tokens {
        Tokens {
            input,
            cached_input,
            cache_write_5m,
            cache_write_1h,
            output,
            reasoning,
            audio_input: 0,
            cached_audio_input: 0,
            audio_output: 0,
            image_input: 0,
            image_output: 0,
            web_search: 0,
            code_interpreter: 0,
            file_search: 0,
            image_generation: 0,
        }
    }

    /// The count in a bucket; the request bucket has none of its own (it is the record).
    pub fn get(&self, bucket: Bucket) -> u64 {
        match bucket {
            Bucket::Input => self.input,
            Bucket::CachedInput => self.cached_input,
            Bucket::CacheWrite5m => self.cache_write_5m,
            Bucket::CacheWrite1h => self.cache_write_1h,
            Bucket::Output => self.output,
            Bucket::Reasoning => self.reasoning,
            Bucket::AudioInput => self.audio_input,
            Bucket::CachedAudioInput => self.cached_audio_input,
            Bucket::AudioOutput => self.audio_output,
            Bucket::ImageInput => self.image_input,
            Bucket::ImageOutput => self.image_output,
            Bucket::WebSearch => self.web_search,
            Bucket::CodeInterpreter => self.code_interpreter,
            Bucket::FileSearch => self.file_search,
            Bucket::ImageGeneration => self.image_generation,
            Bucket::Request => 0,
        }
    }

    fn slot(&mut self, bucket: Bucket) -> Option<&mut u64> {
        Some(match bucket {
            Bucket::Input => &mut self.input,
            Bucket::CachedInput => &mut self.cached_input,
            Bucket::CacheWrite5m => &mut self.cache_write_5m,
            Bucket::CacheWrite1h => &mut self.cache_write_1h,
            Bucket::Output => &mut self.output,
            Bucket::Reasoning => &mut self.reasoning,
            Bucket::AudioInput => &mut self.audio_input,
            Bucket::CachedAudioInput => &mut self.cached_audio_input,
            Bucket::AudioOutput => &mut self.audio_output,
            Bucket::ImageInput => &mut self.image_input,
            Bucket::ImageOutput => &mut self.image_output,
            Bucket::WebSearch => &mut self.web_search,
            Bucket::CodeInterpreter => &mut self.code_interpreter,
            Bucket::FileSearch => &mut self.file_search,
            Bucket::ImageGeneration => &mut self.image_generation,
            Bucket::Request => return None,
        })
    }

    /// Sets a bucket's count (the request bucket has none: ignored).
    pub fn set(&mut self, bucket: Bucket, value: u64) {
        if let Some(slot) = self.slot(bucket) {
            *slot = value;
        }
    }

    /// Every prompt token, cached or not, of every modality: what long-context
    /// thresholds compare against.
    pub fn total_input(&self) -> u64 {
        self.iter()
            .filter(|(bucket, _)| bucket.is_input_side())
            .map(|(_, count)| count)
            .sum()
    }

    /// Prompt tokens read from or written to a cache.
    pub fn cached_total(&self) -> u64 {
        self.cached_input + self.cache_write_5m + self.cache_write_1h + self.cached_audio_input
    }

    /// The same usage as if nothing were cached: every prompt token is uncached input
    /// of its modality.
    pub fn uncached(&self) -> Tokens {
        Tokens {
            input: self.input + self.cached_input + self.cache_write_5m + self.cache_write_1h,
            cached_input: 0,
            cache_write_5m: 0,
            cache_write_1h: 0,
            audio_input: self.audio_input + self.cached_audio_input,
            cached_audio_input: 0,
            ..*self
        }
    }

    /// Every generated token, reasoning, audio and images included.
    pub fn total_output(&self) -> u64 {
        self.iter()
            .filter(|(bucket, _)| bucket.is_output_side())
            .map(|(_, count)| count)
            .sum()
    }

    /// Every token (per-call charges are not tokens).
    pub fn total(&self) -> u64 {
        self.total_input() + self.total_output()
    }

    /// Whether anything past the six text buckets is counted.
    pub fn has_non_text(&self) -> bool {
        (self.audio_input
            | self.cached_audio_input
            | self.audio_output
            | self.image_input
            | self.image_output
            | self.web_search
            | self.code_interpreter
            | self.file_search
            | self.image_generation)
            != 0
    }

    /// The buckets worth visiting: the text ones alone for the many records that count
    /// nothing else (pricing visits each).
    pub fn buckets_in_use(&self) -> &'static [Bucket] {
        if self.has_non_text() {
            &Bucket::COUNTED
        } else {
            &Bucket::TEXT
        }
    }

    /// (bucket, count) for every counted bucket, in bucket order.
    pub fn iter(&self) -> impl Iterator<Item = (Bucket, u64)> + '_ {
        Bucket::COUNTED.into_iter().map(|b| (b, self.get(b)))
    }

    /// Bucket-wise sum; saturates instead of overflowing (counts are bounded far below).
    pub fn add(&self, other: &Tokens) -> Tokens {
        let mut sum = Tokens::default();
        for bucket in Bucket::COUNTED {
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
    /// `response_cost`, Perplexity's `usage.cost.total_cost`), kept beside the computed
    /// one, never used instead of it.
    pub reported_cost: Option<Decimal>,
    /// How much search context a searching model was asked for (`low`, `medium`,
    /// `high`): Perplexity's request fee and some web-search prices depend on it.
    pub search_context: Option<String>,
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
    pub search_context: Option<String>,
}
