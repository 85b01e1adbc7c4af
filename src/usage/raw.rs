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

/// Every field any accepted shape uses at the top level of an object.
#[derive(Deserialize, Default, Debug)]
pub(crate) struct Raw<'a> {
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
    pub reasoning: Option<RawReasoning<'a>>,
    #[serde(default, borrow, deserialize_with = "object_or_skip")]
    pub metadata: Option<Box<RawMetadata<'a>>>,
    pub error: Option<serde_json::Value>,

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
    // OpenAI Chat Completions and OpenAI-compatible gateways.
    pub prompt_tokens: Option<Count>,
    pub completion_tokens: Option<Count>,
    pub total_tokens: Option<Count>,
    #[serde(default, deserialize_with = "object_or_skip")]
    pub prompt_tokens_details: Option<RawInputDetails>,
    #[serde(default, deserialize_with = "object_or_skip")]
    pub completion_tokens_details: Option<RawOutputDetails>,
    // OpenAI Responses and Anthropic Messages.
    pub input_tokens: Option<Count>,
    pub output_tokens: Option<Count>,
    #[serde(default, deserialize_with = "object_or_skip")]
    pub input_tokens_details: Option<RawInputDetails>,
    #[serde(default, deserialize_with = "object_or_skip")]
    pub output_tokens_details: Option<RawOutputDetails>,
    // Anthropic.
    pub cache_creation_input_tokens: Option<Count>,
    pub cache_read_input_tokens: Option<Count>,
    #[serde(default, deserialize_with = "object_or_skip")]
    pub cache_creation: Option<RawCacheCreation>,
    pub service_tier: Option<String>,
    // OpenRouter.
    pub cost: Option<RawMoney>,
    pub is_byok: Option<bool>,
    pub cost_details: Option<IgnoredAny>,
    // DeepSeek reports cache hits beside the prompt count.
    pub prompt_cache_hit_tokens: Option<Count>,
}

#[derive(Deserialize, Default, Debug)]
pub(crate) struct RawInputDetails {
    pub cached_tokens: Option<Count>,
    pub cache_write_tokens: Option<Count>,
    /// LiteLLM's normalised usage names cache writes this way, with a TTL split.
    pub cache_creation_tokens: Option<Count>,
    #[serde(default, deserialize_with = "object_or_skip")]
    pub cache_creation_token_details: Option<RawCacheCreation>,
}

#[derive(Deserialize, Default, Debug)]
pub(crate) struct RawOutputDetails {
    pub reasoning_tokens: Option<Count>,
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
    #[serde(rename = "trafficType")]
    pub traffic_type: Option<String>,
}

/// The canonical `tokens` object. Unknown bucket names are an error (a typo must not
/// silently drop tokens), which is why it is read separately from the lenient rest.
#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTokens {
    pub input: Option<Count>,
    pub cached_input: Option<Count>,
    pub cache_write_5m: Option<Count>,
    pub cache_write_1h: Option<Count>,
    pub output: Option<Count>,
    pub reasoning: Option<Count>,
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
