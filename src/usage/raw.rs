//! One borrowed, typed view over every input shape we accept.
//!
//! Deserialising straight into this union of all known fields (unknown fields are
//! skipped) is several times faster than building a `serde_json::Value`, and lets the
//! shape detection in `detect.rs` look at plain `Option`s. Fields that carry a nested
//! record (`response`, `body`, `data`, `message`, `result`) are the same type again.
//!
//! Counts are read leniently into [`Count`] so that a negative, fractional or
//! non-numeric count becomes a precise error naming the field, not a serde message.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::record::Bucket;

/// Every field any accepted shape uses at the top level of an object.
#[derive(Deserialize, Default, Debug)]
pub(crate) struct Raw<'a> {
    // Kept under 1,000 bytes: nested records are boxed `Raw`s, and a larger allocation
    // takes the allocator's slow path. What few records carry is boxed.
    // Shared by most shapes.
    #[serde(default, borrow, deserialize_with = "string_or_number")]
    pub id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub object: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "type")]
    pub kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub model: Option<Cow<'a, str>>,
    pub created: Option<f64>,
    pub created_at: Option<f64>,
    #[serde(default, deserialize_with = "object_or_skip")]
    pub usage: Option<Box<RawUsage>>,
    #[serde(borrow)]
    pub service_tier: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub status: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "object_or_skip")]
    pub reasoning: Option<Box<RawReasoning<'a>>>,
    #[serde(default, borrow, deserialize_with = "object_or_skip")]
    pub metadata: Option<Box<RawMetadata<'a>>>,
    pub error: Option<Box<serde_json::Value>>,
    /// OpenAI Responses output items (tool calls are billed per call); Bedrock's
    /// `output` object is skipped.
    #[serde(default, borrow, deserialize_with = "boxed_objects_or_skip")]
    pub output: Option<Box<[RawOutputItem<'a>]>>,

    // Markers of OpenAI-compatible providers, read only for whether they are there.
    /// Azure OpenAI's content filtering.
    pub prompt_filter_results: Option<IgnoredAny>,
    /// Perplexity's sources.
    pub citations: Option<IgnoredAny>,
    pub search_results: Option<IgnoredAny>,
    /// Cerebras' timings.
    pub time_info: Option<IgnoredAny>,
    /// Groq's extras; its stream's last chunk carries the usage here.
    #[serde(default, deserialize_with = "object_or_skip")]
    pub x_groq: Option<Box<RawXGroq>>,

    // Nested records: envelopes, batch lines, stream events, CloudEvents.
    #[serde(default, borrow, deserialize_with = "nested_record")]
    pub response: Option<Box<Raw<'a>>>,
    #[serde(default, borrow, deserialize_with = "nested_record")]
    pub body: Option<Box<Raw<'a>>>,
    #[serde(default, borrow, deserialize_with = "nested_record")]
    pub result: Option<Box<Raw<'a>>>,
    #[serde(default, borrow, deserialize_with = "nested_record")]
    pub message: Option<Box<Raw<'a>>>,
    #[serde(default, borrow, deserialize_with = "nested_record")]
    pub data: Option<Box<Raw<'a>>>,

    // OpenAI and Anthropic batch lines.
    #[serde(borrow)]
    pub custom_id: Option<Cow<'a, str>>,
    pub status_code: Option<Count>,

    // Gemini.
    #[serde(default, rename = "usageMetadata", deserialize_with = "object_or_skip")]
    pub usage_metadata: Option<Box<RawGeminiUsage>>,
    #[serde(borrow, rename = "modelVersion")]
    pub model_version: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "responseId")]
    pub response_id: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "createTime")]
    pub create_time: Option<Cow<'a, str>>,
    /// Grounding (web search) of each candidate.
    #[serde(default, deserialize_with = "boxed_objects_or_skip")]
    pub candidates: Option<Box<[RawCandidate]>>,

    // AWS Bedrock: InvokeModel bodies of Meta models, a stream's last-chunk metrics, and
    // Converse's service tier.
    pub prompt_token_count: Option<Box<Count>>,
    pub generation_token_count: Option<Box<Count>>,
    #[serde(
        default,
        rename = "amazon-bedrock-invocationMetrics",
        deserialize_with = "object_or_skip"
    )]
    pub invocation_metrics: Option<Box<RawUsage>>,
    #[serde(
        default,
        borrow,
        rename = "serviceTier",
        deserialize_with = "object_or_skip"
    )]
    pub bedrock_service_tier: Option<Box<RawTierObject<'a>>>,
    /// Bedrock Mistral InvokeModel bodies (which carry no usage).
    pub outputs: Option<IgnoredAny>,
    /// Response headers a proxy logged beside the body: Bedrock's InvokeModel token
    /// counts are there for every model family.
    #[serde(default, deserialize_with = "object_or_skip")]
    pub headers: Option<Box<RawBedrockHeaders>>,

    // Cohere v1 (`meta.billed_units`).
    #[serde(default, deserialize_with = "object_or_skip")]
    pub meta: Option<Box<RawUsage>>,

    // CloudEvents 1.0.
    #[serde(borrow)]
    pub specversion: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub source: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub data_base64: Option<Cow<'a, str>>,

    // The canonical record and envelopes.
    #[serde(borrow)]
    pub time: Option<RawTime<'a>>,
    #[serde(borrow)]
    pub project: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub provider: Option<Cow<'a, str>>,
    /// Read strictly: a misspelt bucket fails the line with serde's message naming it.
    #[serde(default, deserialize_with = "object_only")]
    pub tokens: Option<Box<RawTokens>>,
    pub batch: Option<bool>,
    #[serde(borrow)]
    pub tags: Option<RawTags<'a>>,
    #[serde(default, borrow, deserialize_with = "string_or_number")]
    pub user: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub reasoning_effort: Option<Cow<'a, str>>,
    pub cost_usd: Option<RawMoney>,

    // LiteLLM's StandardLoggingPayload (its `generic_api` callback and spend logs).
    #[serde(borrow)]
    pub call_type: Option<Cow<'a, str>>,
    pub response_cost: Option<RawMoney>,
    pub prompt_tokens: Option<Count>,
    pub completion_tokens: Option<Count>,
    pub total_tokens: Option<Count>,
    #[serde(borrow, rename = "startTime")]
    pub start_time: Option<RawTime<'a>>,
    #[serde(borrow)]
    pub custom_llm_provider: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub request_tags: Option<Vec<Cow<'a, str>>>,
    #[serde(default, borrow, deserialize_with = "string_or_number")]
    pub end_user: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "object_or_skip")]
    pub model_parameters: Option<Box<RawModelParameters<'a>>>,
    #[serde(default, borrow, deserialize_with = "object_or_skip")]
    pub hidden_params: Option<Box<RawHiddenParams<'a>>>,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub cache_hit: Option<bool>,
    /// LiteLLM spend-log rows use `request_id` and `spend` instead.
    #[serde(borrow)]
    pub request_id: Option<Cow<'a, str>>,
    pub spend: Option<RawMoney>,
}

/// Union of the OpenAI (Chat and Responses), Anthropic and OpenRouter usage objects.
#[derive(Deserialize, Default, Debug)]
pub(crate) struct RawUsage {
    // Sub-objects are boxed: a `RawUsage` over 1,000 bytes costs the allocator far more
    // than the few small boxes a record actually carries.
    // OpenAI Chat Completions and OpenAI-compatible gateways.
    pub prompt_tokens: Option<Count>,
    pub completion_tokens: Option<Count>,
    pub total_tokens: Option<Count>,
    #[serde(default, deserialize_with = "object_or_skip")]
    pub prompt_tokens_details: Option<Box<RawInputDetails>>,
    #[serde(default, deserialize_with = "object_or_skip")]
    pub completion_tokens_details: Option<Box<RawOutputDetails>>,
    // OpenAI Responses and Anthropic Messages.
    pub input_tokens: Option<Count>,
    pub output_tokens: Option<Count>,
    /// OpenAI Realtime spells them `input_token_details` / `output_token_details`.
    #[serde(
        default,
        alias = "input_token_details",
        deserialize_with = "object_or_skip"
    )]
    pub input_tokens_details: Option<Box<RawInputDetails>>,
    #[serde(
        default,
        alias = "output_token_details",
        deserialize_with = "object_or_skip"
    )]
    pub output_tokens_details: Option<Box<RawOutputDetails>>,
    // Anthropic.
    pub cache_creation_input_tokens: Option<Count>,
    pub cache_read_input_tokens: Option<Count>,
    #[serde(default, deserialize_with = "object_or_skip")]
    pub cache_creation: Option<Box<RawCacheCreation>>,
    pub service_tier: Option<String>,
    /// Anthropic's server tools (web search, web fetch).
    #[serde(default, deserialize_with = "object_or_skip")]
    pub server_tool_use: Option<Box<RawServerToolUse>>,
    // OpenRouter (`cost` is also Perplexity's breakdown object).
    pub cost: Option<RawCost>,
    #[serde(default, deserialize_with = "bool_or_skip")]
    pub is_byok: Option<bool>,
    #[serde(default, deserialize_with = "object_or_skip")]
    pub cost_details: Option<Box<RawCostDetails>>,
    // DeepSeek reports cache hits and misses beside the prompt count (parts of it).
    pub prompt_cache_hit_tokens: Option<Count>,
    pub prompt_cache_miss_tokens: Option<Count>,
    // xAI: the exact cost in ticks of 1e-10 USD, and server-side tool calls.
    pub cost_in_usd_ticks: Option<Count>,
    pub num_sources_used: Option<Count>,
    #[serde(default, deserialize_with = "object_or_skip")]
    pub server_side_tool_usage_details: Option<Box<RawServerSideTools>>,
    // Perplexity: meters outside `prompt_tokens` and `completion_tokens`.
    #[serde(default, deserialize_with = "text_or_skip")]
    pub search_context_size: Option<String>,
    pub citation_tokens: Option<Count>,
    pub num_search_queries: Option<Count>,
    pub reasoning_tokens: Option<Count>,
    /// DeepInfra's own cost estimate.
    pub estimated_cost: Option<RawMoney>,
    // Cohere: what is billed (`tokens` beside it counts the prompt template too).
    #[serde(default, deserialize_with = "object_or_skip")]
    pub billed_units: Option<Box<RawBilledUnits>>,
    // AWS Bedrock (Converse, Nova, invocation metrics), camelCase.
    #[serde(rename = "inputTokens")]
    pub bedrock_input: Option<Count>,
    #[serde(rename = "outputTokens")]
    pub bedrock_output: Option<Count>,
    #[serde(rename = "totalTokens")]
    pub bedrock_total: Option<Count>,
    #[serde(rename = "cacheReadInputTokens", alias = "cacheReadInputTokenCount")]
    pub bedrock_cache_read: Option<Count>,
    #[serde(rename = "cacheWriteInputTokens", alias = "cacheWriteInputTokenCount")]
    pub bedrock_cache_write: Option<Count>,
    #[serde(default, rename = "cacheDetails", deserialize_with = "objects_or_skip")]
    pub bedrock_cache_details: Option<Vec<RawBedrockCacheDetail>>,
    #[serde(rename = "inputTokenCount")]
    pub metrics_input: Option<Count>,
    #[serde(rename = "outputTokenCount")]
    pub metrics_output: Option<Count>,
}

/// Bedrock InvokeModel's token-count response headers, whatever case a proxy logged
/// their names in; other headers, and values that are lists or objects, are ignored.
#[derive(Default, Debug)]
pub(crate) struct RawBedrockHeaders {
    pub input: Option<Count>,
    pub output: Option<Count>,
    pub cache_read: Option<Count>,
    pub cache_write: Option<Count>,
}

impl<'de> Deserialize<'de> for RawBedrockHeaders {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let map: BTreeMap<Cow<'de, str>, serde_json::Value> = BTreeMap::deserialize(deserializer)?;
        let mut headers = RawBedrockHeaders::default();
        for (name, value) in map {
            let slot = match name.to_ascii_lowercase().as_str() {
                "x-amzn-bedrock-input-token-count" => &mut headers.input,
                "x-amzn-bedrock-output-token-count" => &mut headers.output,
                "x-amzn-bedrock-cache-read-input-token-count" => &mut headers.cache_read,
                "x-amzn-bedrock-cache-write-input-token-count" => &mut headers.cache_write,
                _ => continue,
            };
            // A header logged as a one-element list (some proxies do) is its element.
            let value = match value {
                serde_json::Value::Array(mut items) if items.len() == 1 => items.remove(0),
                other => other,
            };
            *slot = Count::deserialize(value).ok();
        }
        Ok(headers)
    }
}

impl RawUsage {
    /// Whether it is Bedrock's camelCase usage (Converse, Nova).
    pub fn is_bedrock(&self) -> bool {
        self.bedrock_input.is_some() || self.bedrock_output.is_some()
    }
}

#[derive(Deserialize, Default, Debug)]
pub(crate) struct RawServerToolUse {
    pub web_search_requests: Option<Count>,
}

#[derive(Deserialize, Default, Debug)]
pub(crate) struct RawServerSideTools {
    pub web_search_calls: Option<Count>,
    pub x_search_calls: Option<Count>,
    pub code_interpreter_calls: Option<Count>,
    pub file_search_calls: Option<Count>,
}

#[derive(Deserialize, Default, Debug)]
pub(crate) struct RawCostDetails {
    pub upstream_inference_cost: Option<RawMoney>,
}

#[derive(Deserialize, Default, Debug)]
pub(crate) struct RawBilledUnits {
    pub input_tokens: Option<Count>,
    pub output_tokens: Option<Count>,
}

#[derive(Deserialize, Default, Debug)]
pub(crate) struct RawBedrockCacheDetail {
    #[serde(rename = "inputTokens")]
    pub input_tokens: Option<Count>,
    pub ttl: Option<String>,
}

#[derive(Deserialize, Default, Debug)]
pub(crate) struct RawXGroq {
    #[serde(default, deserialize_with = "object_or_skip")]
    pub usage: Option<Box<RawUsage>>,
}

#[derive(Deserialize, Default, Debug)]
pub(crate) struct RawTierObject<'a> {
    #[serde(borrow, rename = "type")]
    pub kind: Option<Cow<'a, str>>,
}

/// An OpenAI Responses output item: only its type, status and container matter.
#[derive(Deserialize, Default, Debug)]
pub(crate) struct RawOutputItem<'a> {
    #[serde(borrow, rename = "type")]
    pub kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub status: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub container_id: Option<Cow<'a, str>>,
}

/// A Gemini candidate: only its grounding matters.
#[derive(Deserialize, Default, Debug)]
pub(crate) struct RawCandidate {
    #[serde(
        default,
        rename = "groundingMetadata",
        deserialize_with = "object_or_skip"
    )]
    pub grounding: Option<RawGrounding>,
}

#[derive(Deserialize, Default, Debug)]
pub(crate) struct RawGrounding {
    #[serde(
        default,
        rename = "webSearchQueries",
        deserialize_with = "array_or_skip"
    )]
    pub web_search_queries: Option<Vec<TextElement>>,
}

/// Gemini's per-modality counts: `{modality, tokenCount}`.
#[derive(Deserialize, Default, Debug)]
pub(crate) struct RawModalityCount {
    pub modality: Option<String>,
    #[serde(rename = "tokenCount")]
    pub token_count: Option<Count>,
}

/// A cost as a gateway reports it: an amount (OpenRouter's `usage.cost`), or a breakdown
/// whose `total_cost` is the amount (Perplexity's `usage.cost`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RawCost {
    Amount(RawMoney),
    Breakdown(Option<RawMoney>),
}

impl<'de> Deserialize<'de> for RawCost {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Breakdown {
            total_cost: Option<RawMoney>,
        }
        struct CostVisitor;
        impl<'de> Visitor<'de> for CostVisitor {
            type Value = RawCost;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an amount of money or a cost breakdown")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawCost, A::Error> {
                let breakdown = Breakdown::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(RawCost::Breakdown(breakdown.total_cost))
            }
            fn visit_str<E>(self, v: &str) -> Result<RawCost, E> {
                Ok(RawCost::Amount(RawMoney::Text(v.to_owned())))
            }
            fn visit_u64<E>(self, v: u64) -> Result<RawCost, E> {
                Ok(RawCost::Amount(RawMoney::Number(v as f64)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<RawCost, E> {
                Ok(RawCost::Amount(RawMoney::Number(v as f64)))
            }
            fn visit_f64<E>(self, v: f64) -> Result<RawCost, E> {
                Ok(RawCost::Amount(RawMoney::Number(v)))
            }
            fn visit_bool<E>(self, _: bool) -> Result<RawCost, E> {
                Ok(RawCost::Amount(RawMoney::Invalid))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<RawCost, A::Error> {
                skip_seq(seq)?;
                Ok(RawCost::Amount(RawMoney::Invalid))
            }
        }
        deserializer.deserialize_any(CostVisitor)
    }
}

#[derive(Deserialize, Default, Debug)]
pub(crate) struct RawInputDetails {
    pub cached_tokens: Option<Count>,
    /// Parts of the prompt count, priced at their own rates.
    pub audio_tokens: Option<Count>,
    pub image_tokens: Option<Count>,
    /// The modalities of the cached tokens (OpenAI Realtime).
    #[serde(default, deserialize_with = "object_or_skip")]
    pub cached_tokens_details: Option<Box<RawInputDetails>>,
    pub cache_write_tokens: Option<Count>,
    /// LiteLLM's normalised usage names cache writes this way, with a TTL split.
    pub cache_creation_tokens: Option<Count>,
    #[serde(default, deserialize_with = "object_or_skip")]
    pub cache_creation_token_details: Option<RawCacheCreation>,
}

#[derive(Deserialize, Default, Debug)]
pub(crate) struct RawOutputDetails {
    pub reasoning_tokens: Option<Count>,
    /// Parts of the completion count, priced at their own rates.
    pub audio_tokens: Option<Count>,
    pub image_tokens: Option<Count>,
    /// Anthropic's newer breakdown of `output_tokens`.
    pub thinking_tokens: Option<Count>,
}

#[derive(Deserialize, Default, Debug)]
pub(crate) struct RawCacheCreation {
    pub ephemeral_5m_input_tokens: Option<Count>,
    pub ephemeral_1h_input_tokens: Option<Count>,
}

#[derive(Deserialize, Default, Debug)]
pub(crate) struct RawGeminiUsage {
    #[serde(rename = "promptTokenCount")]
    pub prompt: Option<Count>,
    #[serde(rename = "cachedContentTokenCount")]
    pub cached: Option<Count>,
    #[serde(rename = "candidatesTokenCount")]
    pub candidates: Option<Count>,
    #[serde(rename = "thoughtsTokenCount")]
    pub thoughts: Option<Count>,
    #[serde(rename = "toolUsePromptTokenCount")]
    pub tool_use_prompt: Option<Count>,
    #[serde(rename = "totalTokenCount")]
    pub total: Option<Count>,
    #[serde(default, rename = "trafficType", deserialize_with = "text_or_skip")]
    pub traffic_type: Option<String>,
    #[serde(
        default,
        rename = "promptTokensDetails",
        deserialize_with = "objects_or_skip"
    )]
    pub prompt_details: Option<Vec<RawModalityCount>>,
    #[serde(
        default,
        rename = "cacheTokensDetails",
        deserialize_with = "objects_or_skip"
    )]
    pub cache_details: Option<Vec<RawModalityCount>>,
    #[serde(
        default,
        rename = "candidatesTokensDetails",
        deserialize_with = "objects_or_skip"
    )]
    pub candidates_details: Option<Vec<RawModalityCount>>,
}

/// The canonical `tokens` object: a count per bucket, by the bucket's name. An unknown
/// name is an error (a typo must not silently drop tokens). Read without allocating:
/// every canonical record has one.
#[derive(Default, Debug)]
pub(crate) struct RawTokens(pub [Option<Count>; Bucket::COUNT]);

impl<'de> Deserialize<'de> for RawTokens {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TokensVisitor;
        impl<'de> Visitor<'de> for TokensVisitor {
            type Value = RawTokens;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of token counts")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawTokens, A::Error> {
                let mut counts = [None; Bucket::COUNT];
                while let Some(name) = map.next_key::<Cow<'de, str>>()? {
                    let bucket = Bucket::parse(&name)
                        .filter(|bucket| *bucket != Bucket::Request)
                        .ok_or_else(|| {
                            let known: Vec<String> =
                                Bucket::COUNTED.map(|b| format!("`{b}`")).to_vec();
                            de::Error::custom(format!(
                                "unknown field `{name}` in `tokens`, expected one of {}",
                                known.join(", ")
                            ))
                        })?;
                    counts[bucket.index()] = Some(map.next_value::<Count>()?);
                }
                Ok(RawTokens(counts))
            }
        }
        deserializer.deserialize_map(TokensVisitor)
    }
}

#[derive(Deserialize, Default, Debug)]
pub(crate) struct RawReasoning<'a> {
    #[serde(borrow)]
    pub effort: Option<Cow<'a, str>>,
}

#[derive(Deserialize, Default, Debug)]
pub(crate) struct RawModelParameters<'a> {
    #[serde(borrow)]
    pub reasoning_effort: Option<Cow<'a, str>>,
    /// Responses-API calls carry `reasoning: {effort, summary}` instead.
    #[serde(default, borrow, deserialize_with = "object_or_skip")]
    pub reasoning: Option<RawReasoning<'a>>,
    #[serde(borrow)]
    pub service_tier: Option<Cow<'a, str>>,
}

#[derive(Deserialize, Default, Debug)]
pub(crate) struct RawHiddenParams<'a> {
    #[serde(borrow)]
    pub litellm_model_name: Option<Cow<'a, str>>,
}

/// Metadata objects: LiteLLM's key/team attribution, plus what Responses and Chat
/// Completions carry in `metadata` (a free-form string map, of which we read nothing).
#[derive(Deserialize, Default, Debug)]
pub(crate) struct RawMetadata<'a> {
    #[serde(default, borrow, deserialize_with = "string_or_number")]
    pub user_api_key_team_alias: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "string_or_number")]
    pub user_api_key_team_id: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "string_or_number")]
    pub user_api_key_alias: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "string_or_number")]
    pub user_api_key_user_id: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "string_or_number")]
    pub user_api_key_org_id: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "string_or_number")]
    pub user_api_key_end_user_id: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "string_or_number")]
    pub user_api_key_project_alias: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "object_or_skip")]
    pub spend_logs_metadata: Option<RawTags<'a>>,
    /// LiteLLM copies the full provider usage here (cache breakdown included).
    #[serde(default, deserialize_with = "object_or_skip")]
    pub usage_object: Option<Box<RawUsage>>,
    /// Bedrock ConverseStream's last event: `{"metadata":{"usage":…,"metrics":…}}`.
    #[serde(default, deserialize_with = "object_or_skip")]
    pub usage: Option<Box<RawUsage>>,
}

/// A token count as written, before validation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Count {
    Value(u64),
    Negative(f64),
    Fractional(f64),
    TooLarge,
    NotANumber,
}

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CountVisitor;
        impl<'de> Visitor<'de> for CountVisitor {
            type Value = Count;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a token count")
            }
            fn visit_u64<E>(self, v: u64) -> Result<Count, E> {
                Ok(Count::Value(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Count, E> {
                Ok(if v < 0 {
                    Count::Negative(v as f64)
                } else {
                    Count::Value(v as u64)
                })
            }
            fn visit_f64<E>(self, v: f64) -> Result<Count, E> {
                Ok(if !v.is_finite() {
                    Count::NotANumber
                } else if v < 0.0 {
                    Count::Negative(v)
                } else if v.fract() != 0.0 {
                    Count::Fractional(v)
                } else if v >= 18_446_744_073_709_551_615.0 {
                    Count::TooLarge
                } else {
                    Count::Value(v as u64)
                })
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Count, E> {
                // Some loggers stringify numbers; accept a plain decimal integer only.
                Ok(match v.trim().parse::<u64>() {
                    Ok(n) => Count::Value(n),
                    Err(_) => match v.trim().parse::<f64>() {
                        Ok(f) => return self.visit_f64(f),
                        Err(_) => Count::NotANumber,
                    },
                })
            }
            fn visit_bool<E>(self, _: bool) -> Result<Count, E> {
                Ok(Count::NotANumber)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Count, A::Error> {
                skip_map(map)?;
                Ok(Count::NotANumber)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Count, A::Error> {
                skip_seq(seq)?;
                Ok(Count::NotANumber)
            }
        }
        deserializer.deserialize_any(CountVisitor)
    }
}

/// A time as written: RFC 3339 text or Unix seconds.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RawTime<'a> {
    Text(Cow<'a, str>),
    UnixSeconds(f64),
    Invalid,
}

impl<'de: 'a, 'a> Deserialize<'de> for RawTime<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TimeVisitor<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for TimeVisitor<'a> {
            type Value = RawTime<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an RFC 3339 time or Unix seconds")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<RawTime<'a>, E> {
                Ok(RawTime::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<RawTime<'a>, E> {
                Ok(RawTime::Text(Cow::Owned(v.to_owned())))
            }
            fn visit_u64<E>(self, v: u64) -> Result<RawTime<'a>, E> {
                Ok(RawTime::UnixSeconds(v as f64))
            }
            fn visit_i64<E>(self, v: i64) -> Result<RawTime<'a>, E> {
                Ok(RawTime::UnixSeconds(v as f64))
            }
            fn visit_f64<E>(self, v: f64) -> Result<RawTime<'a>, E> {
                Ok(RawTime::UnixSeconds(v))
            }
            fn visit_bool<E>(self, _: bool) -> Result<RawTime<'a>, E> {
                Ok(RawTime::Invalid)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawTime<'a>, A::Error> {
                skip_map(map)?;
                Ok(RawTime::Invalid)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<RawTime<'a>, A::Error> {
                skip_seq(seq)?;
                Ok(RawTime::Invalid)
            }
        }
        deserializer.deserialize_any(TimeVisitor(PhantomData))
    }
}

/// An amount of money as written: a decimal string or a JSON number. JSON numbers
/// are read through their shortest decimal text, so `0.1` is exactly 0.1.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RawMoney {
    Text(String),
    Number(f64),
    Invalid,
}

impl<'de> Deserialize<'de> for RawMoney {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MoneyVisitor;
        impl<'de> Visitor<'de> for MoneyVisitor {
            type Value = RawMoney;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an amount of money")
            }
            fn visit_str<E>(self, v: &str) -> Result<RawMoney, E> {
                Ok(RawMoney::Text(v.to_owned()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<RawMoney, E> {
                Ok(RawMoney::Number(v as f64))
            }
            fn visit_i64<E>(self, v: i64) -> Result<RawMoney, E> {
                Ok(RawMoney::Number(v as f64))
            }
            fn visit_f64<E>(self, v: f64) -> Result<RawMoney, E> {
                Ok(RawMoney::Number(v))
            }
            fn visit_bool<E>(self, _: bool) -> Result<RawMoney, E> {
                Ok(RawMoney::Invalid)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawMoney, A::Error> {
                skip_map(map)?;
                Ok(RawMoney::Invalid)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<RawMoney, A::Error> {
                skip_seq(seq)?;
                Ok(RawMoney::Invalid)
            }
        }
        deserializer.deserialize_any(MoneyVisitor)
    }
}

/// Tags as written: an object whose values are strings, numbers, booleans or null.
/// A nested value is kept as `Err` so the record can be rejected with the tag's name.
#[derive(Debug, Default)]
pub(crate) struct RawTags<'a>(pub BTreeMap<Cow<'a, str>, Result<Option<Cow<'a, str>>, ()>>);

impl<'de: 'a, 'a> Deserialize<'de> for RawTags<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Debug)]
        struct TagValue<'a>(Result<Option<Cow<'a, str>>, ()>);
        impl<'de: 'a, 'a> Deserialize<'de> for TagValue<'a> {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct ValueVisitor<'a>(PhantomData<&'a ()>);
                impl<'de: 'a, 'a> Visitor<'de> for ValueVisitor<'a> {
                    type Value = TagValue<'a>;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str("a scalar tag value")
                    }
                    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<TagValue<'a>, E> {
                        Ok(TagValue(Ok(Some(Cow::Borrowed(v)))))
                    }
                    fn visit_str<E>(self, v: &str) -> Result<TagValue<'a>, E> {
                        Ok(TagValue(Ok(Some(Cow::Owned(v.to_owned())))))
                    }
                    fn visit_u64<E>(self, v: u64) -> Result<TagValue<'a>, E> {
                        Ok(TagValue(Ok(Some(Cow::Owned(v.to_string())))))
                    }
                    fn visit_i64<E>(self, v: i64) -> Result<TagValue<'a>, E> {
                        Ok(TagValue(Ok(Some(Cow::Owned(v.to_string())))))
                    }
                    fn visit_f64<E>(self, v: f64) -> Result<TagValue<'a>, E> {
                        Ok(TagValue(Ok(Some(Cow::Owned(v.to_string())))))
                    }
                    fn visit_bool<E>(self, v: bool) -> Result<TagValue<'a>, E> {
                        Ok(TagValue(Ok(Some(Cow::Owned(v.to_string())))))
                    }
                    fn visit_unit<E>(self) -> Result<TagValue<'a>, E> {
                        Ok(TagValue(Ok(None)))
                    }
                    fn visit_none<E>(self) -> Result<TagValue<'a>, E> {
                        Ok(TagValue(Ok(None)))
                    }
                    fn visit_map<A: MapAccess<'de>>(
                        self,
                        map: A,
                    ) -> Result<TagValue<'a>, A::Error> {
                        skip_map(map)?;
                        Ok(TagValue(Err(())))
                    }
                    fn visit_seq<A: SeqAccess<'de>>(
                        self,
                        seq: A,
                    ) -> Result<TagValue<'a>, A::Error> {
                        skip_seq(seq)?;
                        Ok(TagValue(Err(())))
                    }
                }
                deserializer.deserialize_any(ValueVisitor(PhantomData))
            }
        }

        let map: BTreeMap<Cow<'a, str>, TagValue<'a>> = BTreeMap::deserialize(deserializer)?;
        Ok(RawTags(map.into_iter().map(|(k, v)| (k, v.0)).collect()))
    }
}

/// How deep records may nest inside records (an envelope around a CloudEvent around a
/// batch line around a response is four). Each level is a large stack frame, so the
/// limit is enforced while deserialising, long before serde_json's own depth limit.
const MAX_NESTED_RECORDS: usize = 6;

thread_local! {
    static NESTED_RECORDS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// A nested record (`response`, `body`, `data`, …), with the nesting depth bounded.
fn nested_record<'de: 'a, 'a, D>(deserializer: D) -> Result<Option<Box<Raw<'a>>>, D::Error>
where
    D: Deserializer<'de>,
{
    let depth = NESTED_RECORDS.with(|depth| depth.get());
    if depth >= MAX_NESTED_RECORDS {
        return Err(de::Error::custom(format!(
            "records nested more than {MAX_NESTED_RECORDS} levels deep"
        )));
    }
    NESTED_RECORDS.with(|d| d.set(depth + 1));
    let result = object_or_skip(deserializer);
    NESTED_RECORDS.with(|d| d.set(depth));
    result
}

/// Reads a nested object into `T`; any non-object value (a string, a number, an
/// array, null) is skipped as `None`. Several shapes reuse a field name with a
/// different type (LiteLLM's `response` may be text), and that must not fail the line.
fn object_or_skip<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct ObjectVisitor<T>(PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
        type Value = Option<T>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Option<T>, A::Error> {
            T::deserialize(de::value::MapAccessDeserializer::new(map)).map(Some)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Option<T>, A::Error> {
            skip_seq(seq)?;
            Ok(None)
        }
        fn visit_unit<E>(self) -> Result<Option<T>, E> {
            Ok(None)
        }
        fn visit_none<E>(self) -> Result<Option<T>, E> {
            Ok(None)
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Option<T>, D2::Error> {
            d.deserialize_any(self)
        }
        fn visit_bool<E>(self, _: bool) -> Result<Option<T>, E> {
            Ok(None)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Option<T>, E> {
            Ok(None)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Option<T>, E> {
            Ok(None)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Option<T>, E> {
            Ok(None)
        }
        fn visit_str<E>(self, _: &str) -> Result<Option<T>, E> {
            Ok(None)
        }
    }
    deserializer.deserialize_any(ObjectVisitor(PhantomData))
}

/// An element of an array of objects: anything but an object is skipped.
struct ObjectElement<T>(Option<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for ObjectElement<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        object_or_skip(deserializer).map(ObjectElement)
    }
}

/// An array of objects, as `array_or_skip` reads arrays; elements that are not objects
/// (`"output": ["text"]`) are left out rather than failing the line.
fn objects_or_skip<'de, D, T>(deserializer: D) -> Result<Option<Vec<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    let elements: Option<Vec<ObjectElement<T>>> = array_or_skip(deserializer)?;
    Ok(elements.map(|items| items.into_iter().filter_map(|e| e.0).collect()))
}

/// `objects_or_skip` as a boxed slice: for the arrays few records carry (a `Raw` stays
/// small).
fn boxed_objects_or_skip<'de, D, T>(deserializer: D) -> Result<Option<Box<[T]>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    objects_or_skip(deserializer).map(|items| items.map(Vec::into_boxed_slice))
}

/// Text where a field is text; any other value is `None` (a provider's extra field of
/// another type must not fail the line).
fn text_or_skip<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Ok(match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::String(text) => Some(text),
        _ => None,
    })
}

/// An element of a list of texts: anything else is `None`.
#[derive(Debug)]
pub(crate) struct TextElement(pub Option<String>);

impl<'de> Deserialize<'de> for TextElement {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        text_or_skip(deserializer).map(TextElement)
    }
}

/// `true` or `false`, also written as text; any other value is `None`.
fn bool_or_skip<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<bool>, D::Error> {
    Ok(match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::Bool(value) => Some(value),
        serde_json::Value::String(text) => text.trim().parse().ok(),
        _ => None,
    })
}

/// Reads an array of `T`; any other value (an object, a string, null) is skipped as
/// `None`, as some field names mean an array in one shape and not in another (Bedrock's
/// `output` is an object, OpenAI Responses' a list).
fn array_or_skip<'de, D, T>(deserializer: D) -> Result<Option<Vec<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct ArrayVisitor<T>(PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for ArrayVisitor<T> {
        type Value = Option<Vec<T>>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an array")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut items = Vec::new();
            while let Some(item) = seq.next_element()? {
                items.push(item);
            }
            Ok(Some(items))
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            skip_map(map)?;
            Ok(None)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_any(self)
        }
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
    deserializer.deserialize_any(ArrayVisitor(PhantomData))
}

/// Reads an object into `T`, refusing the array form serde derives also accept for
/// structs (`"tokens":[1,2]` must not mean input 1, cached 2).
fn object_only<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct ObjectVisitor<T>(PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
        type Value = Option<T>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Option<T>, A::Error> {
            T::deserialize(de::value::MapAccessDeserializer::new(map)).map(Some)
        }
        fn visit_unit<E>(self) -> Result<Option<T>, E> {
            Ok(None)
        }
        fn visit_none<E>(self) -> Result<Option<T>, E> {
            Ok(None)
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Option<T>, D2::Error> {
            d.deserialize_any(self)
        }
    }
    deserializer.deserialize_any(ObjectVisitor(PhantomData))
}

pub(crate) fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// Reads an identifier written as a string or a number (some loggers use integers).
fn string_or_number<'de: 'a, 'a, D>(deserializer: D) -> Result<Option<Cow<'a, str>>, D::Error>
where
    D: Deserializer<'de>,
{
    struct IdVisitor<'a>(PhantomData<&'a ()>);
    impl<'de: 'a, 'a> Visitor<'de> for IdVisitor<'a> {
        type Value = Option<Cow<'a, str>>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string or a number")
        }
        fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
            Ok(Some(Cow::Borrowed(v)))
        }
        fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v.to_owned())))
        }
        fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v.to_string())))
        }
        fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v.to_string())))
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_any(self)
        }
    }
    deserializer.deserialize_any(IdVisitor(PhantomData))
}

/// LiteLLM has written booleans as `true`, `"True"` and `null` over its versions.
fn lenient_bool<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<bool>, D::Error> {
    struct BoolVisitor;
    impl<'de> Visitor<'de> for BoolVisitor {
        type Value = Option<bool>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a boolean")
        }
        fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
            Ok(match v.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => Some(true),
                "false" | "0" | "no" => Some(false),
                _ => None,
            })
        }
        fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v != 0))
        }
        fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v != 0))
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_any(self)
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            skip_map(map)?;
            Ok(None)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            skip_seq(seq)?;
            Ok(None)
        }
    }
    deserializer.deserialize_any(BoolVisitor)
}

/// Reads past an object the field has no use for (the field is then invalid or absent).
fn skip_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

/// Reads past an array the field has no use for.
fn skip_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}
