//! OTLP traces → usage records, from the OpenTelemetry GenAI semantic conventions. Pure.
//!
//! A span is a usage record when it carries `gen_ai.usage.input_tokens` or
//! `gen_ai.usage.output_tokens` (or their deprecated `prompt`/`completion` names); other
//! spans are ignored. Per the conventions, input includes cache reads and writes and
//! output includes reasoning; an instrumentation that reports them beside instead (parts
//! larger than the total) is read that way, since the other reading is impossible.
//!
//! | record field | attribute (span first, then resource) |
//! |---|---|
//! | project | `llm_meter.project` |
//! | provider | `gen_ai.provider.name`, else the deprecated `gen_ai.system` |
//! | model | `gen_ai.response.model`, else `gen_ai.request.model` |
//! | id | `gen_ai.response.id`, else `otlp:<trace id>:<span id>` |
//! | time | the span's end time (its start time if it has none) |
//! | service tier | `openai.response.service_tier` |
//! | reasoning effort | `llm_meter.reasoning_effort`, `gen_ai.request.reasoning.effort`, `openai.request.reasoning_effort` |
//! | user | `user.id` |
//! | tags | every `llm_meter.tag.<name>` attribute |

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};

use crate::usage::{
    MAX_TOKENS_PER_BUCKET, ParseError, ParsedUsage, Tokens, check_label, normalise_effort,
};

/// One span that carried GenAI usage, converted (or not).
pub struct SpanUsage {
    /// Position among all spans of the request.
    pub index: usize,
    pub result: Result<ParsedUsage, ParseError>,
    /// A short description of the span, kept in the dead letters when it is rejected.
    pub summary: String,
}

/// Every span with GenAI usage in an export request, and how many spans there were.
pub fn usage_spans(request: &ExportTraceServiceRequest) -> (Vec<SpanUsage>, usize) {
    let mut found = Vec::new();
    let mut index = 0;
    for resource_spans in &request.resource_spans {
        let resource = resource_spans
            .resource
            .as_ref()
            .map(|r| r.attributes.as_slice())
            .unwrap_or_default();
        for scope_spans in &resource_spans.scope_spans {
            for span in &scope_spans.spans {
                let attributes = Attributes {
                    span: &span.attributes,
                    resource,
                };
                let has_usage = [
                    "gen_ai.usage.input_tokens",
                    "gen_ai.usage.output_tokens",
                    "gen_ai.usage.prompt_tokens",
                    "gen_ai.usage.completion_tokens",
                ]
                .iter()
                .any(|key| attributes.get(key).is_some());
                if has_usage {
                    let time = if span.end_time_unix_nano > 0 {
                        span.end_time_unix_nano
                    } else {
                        span.start_time_unix_nano
                    };
                    let fallback_id = format!(
                        "otlp:{}:{}",
                        hex::encode(&span.trace_id),
                        hex::encode(&span.span_id)
                    );
                    found.push(SpanUsage {
                        index,
                        result: span_usage(&attributes, time, fallback_id),
                        summary: summary(span.name.as_str(), &span.attributes),
                    });
                }
                index += 1;
            }
        }
    }
    (found, index)
}

struct Attributes<'a> {
    span: &'a [KeyValue],
    resource: &'a [KeyValue],
}

impl Attributes<'_> {
    fn get(&self, key: &str) -> Option<&any_value::Value> {
        self.span
            .iter()
            .chain(self.resource.iter())
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref())
            .and_then(|v: &AnyValue| v.value.as_ref())
    }

    fn text(&self, key: &str) -> Option<String> {
        match self.get(key)? {
            any_value::Value::StringValue(text) => Some(text.clone()),
            any_value::Value::IntValue(number) => Some(number.to_string()),
            any_value::Value::BoolValue(flag) => Some(flag.to_string()),
            any_value::Value::DoubleValue(number) => Some(number.to_string()),
            _ => None,
        }
    }

    fn count(&self, keys: &[&str]) -> Result<Option<u64>, ParseError> {
        let Some((key, value)) = keys.iter().find_map(|k| self.get(k).map(|v| (*k, v))) else {
            return Ok(None);
        };
        let bad = |problem: String| ParseError::BadCount {
            field: key.to_owned(),
            problem,
        };
        let count = match value {
            any_value::Value::IntValue(n) if *n >= 0 => *n as u64,
            any_value::Value::IntValue(n) => return Err(bad(format!("is negative ({n})"))),
            any_value::Value::DoubleValue(f) if *f >= 0.0 && f.fract() == 0.0 && *f < 1e18 => {
                *f as u64
            }
            any_value::Value::DoubleValue(f) => {
                return Err(bad(format!("is not a whole count ({f})")));
            }
            any_value::Value::StringValue(text) => text
                .trim()
                .parse::<u64>()
                .map_err(|_| bad(format!("is not a number ({text:?})")))?,
            _ => return Err(bad("is not a number".into())),
        };
        if count > MAX_TOKENS_PER_BUCKET {
            return Err(bad(format!("is absurdly large ({count})")));
        }
        Ok(Some(count))
    }
}

fn span_usage(
    attributes: &Attributes<'_>,
    time_unix_nano: u64,
    fallback_id: String,
) -> Result<ParsedUsage, ParseError> {
    let input = attributes
        .count(&["gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens"])?
        .unwrap_or(0);
    let output = attributes
        .count(&[
            "gen_ai.usage.output_tokens",
            "gen_ai.usage.completion_tokens",
        ])?
        .unwrap_or(0);
    let cache_read = attributes
        .count(&[
            "gen_ai.usage.cache_read.input_tokens",
            "gen_ai.usage.cache_read_input_tokens",
        ])?
        .unwrap_or(0);
    let cache_write = attributes
        .count(&[
            "gen_ai.usage.cache_creation.input_tokens",
            "gen_ai.usage.cache_creation_input_tokens",
        ])?
        .unwrap_or(0);
    let reasoning = attributes
        .count(&[
            "gen_ai.usage.reasoning.output_tokens",
            "gen_ai.usage.reasoning_tokens",
        ])?
        .unwrap_or(0);
    // Conventions: the parts are inside the totals. When they cannot be, they are beside.
    let uncached = input.checked_sub(cache_read + cache_write).unwrap_or(input);
    let visible_output = output.checked_sub(reasoning).unwrap_or(output);
    let model = attributes
        .text("gen_ai.response.model")
        .or_else(|| attributes.text("gen_ai.request.model"))
        .ok_or(ParseError::MissingModel)?;
    let provider = attributes
        .text("gen_ai.provider.name")
        .or_else(|| attributes.text("gen_ai.system"))
        .map(|p| otel_provider(&p));
    let id = attributes.text("gen_ai.response.id").unwrap_or(fallback_id);
    let mut parsed = ParsedUsage {
        id: Some(check_label("gen_ai.response.id", &id)?.to_owned()),
        time: Some(time_from_nanos(time_unix_nano)?),
        project: attributes
            .text("llm_meter.project")
            .map(|p| check_label("llm_meter.project", &p).map(str::to_owned))
            .transpose()?,
        provider,
        model: Some(check_label("gen_ai.response.model", &model)?.to_owned()),
        tokens: Tokens {
            input: uncached,
            cached_input: cache_read,
            cache_write_5m: cache_write,
            cache_write_1h: 0,
            output: visible_output,
            reasoning,
            ..Tokens::default()
        },
        user: attributes.text("user.id"),
        ..ParsedUsage::default()
    };
    if let Some(tier) = attributes
        .text("openai.response.service_tier")
        .or_else(|| attributes.text("gen_ai.openai.response.service_tier"))
    {
        let tier = match tier.to_ascii_lowercase().as_str() {
            "" | "auto" | "default" | "standard" => "default".to_owned(),
            "fast" | "priority" => "priority".to_owned(),
            other => other.to_owned(),
        };
        parsed.service_tier = Some(tier);
    }
    if let Some(effort) = [
        "llm_meter.reasoning_effort",
        "gen_ai.request.reasoning.effort",
        "openai.request.reasoning_effort",
        "gen_ai.openai.request.reasoning_effort",
    ]
    .iter()
    .find_map(|key| attributes.text(key))
    {
        parsed.reasoning_effort = Some(normalise_effort(&effort));
    }
    let mut tags = BTreeMap::new();
    for kv in attributes.resource.iter().chain(attributes.span.iter()) {
        if let Some(name) = kv.key.strip_prefix("llm_meter.tag.")
            && let Some(any_value::Value::StringValue(value)) =
                kv.value.as_ref().and_then(|v| v.value.as_ref())
        {
            tags.insert(name.to_owned(), value.clone());
        }
    }
    crate::usage::check_tags(&tags)?;
    parsed.tags = tags;
    Ok(parsed)
}

fn otel_provider(name: &str) -> String {
    crate::providers::canonical(name)
}

fn time_from_nanos(nanos: u64) -> Result<DateTime<Utc>, ParseError> {
    let seconds = (nanos / 1_000_000_000) as i64;
    let rest = (nanos % 1_000_000_000) as u32;
    let time = Utc.timestamp_opt(seconds, rest).single();
    match time {
        Some(time) if (2000..2100).contains(&chrono::Datelike::year(&time)) => Ok(time),
        _ => Err(ParseError::InvalidField {
            field: "span time".into(),
            reason: format!("{nanos} ns is not a time between 2000 and 2100"),
        }),
    }
}

fn summary(name: &str, attributes: &[KeyValue]) -> String {
    let mut map = serde_json::Map::new();
    map.insert("span".into(), serde_json::Value::String(name.to_owned()));
    for kv in attributes.iter().filter(|kv| kv.key.starts_with("gen_ai.")) {
        let value = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
            Some(any_value::Value::StringValue(s)) => serde_json::Value::String(s.clone()),
            Some(any_value::Value::IntValue(i)) => serde_json::Value::from(*i),
            Some(any_value::Value::DoubleValue(f)) => serde_json::Value::from(*f),
            Some(any_value::Value::BoolValue(b)) => serde_json::Value::Bool(*b),
            _ => serde_json::Value::Null,
        };
        map.insert(kv.key.clone(), value);
    }
    serde_json::Value::Object(map).to_string()
}
