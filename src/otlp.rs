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
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::Span;

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

/// Every span of a decoded export request, numbered, with its resource's attributes.
pub fn spans_of(
    request: &ExportTraceServiceRequest,
) -> impl Iterator<Item = (usize, &[KeyValue], &Span)> {
    request
        .resource_spans
        .iter()
        .flat_map(|resource_spans| {
            let resource = resource_spans
                .resource
                .as_ref()
                .map(|r| r.attributes.as_slice())
                .unwrap_or_default();
            resource_spans
                .scope_spans
                .iter()
                .flat_map(move |scope| scope.spans.iter().map(move |span| (resource, span)))
        })
        .enumerate()
        .map(|(index, (resource, span))| (index, resource, span))
}

/// The usage of the span at `index` (among all spans of its request), if it carries any.
pub fn span_usage_at(index: usize, resource: &[KeyValue], span: &Span) -> Option<SpanUsage> {
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
    if !has_usage {
        return None;
    }
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
    Some(SpanUsage {
        index,
        result: span_usage(&attributes, time, fallback_id),
        summary: summary(span.name.as_str(), &span.attributes),
    })
}

/// The spans of a protobuf `ExportTraceServiceRequest`, decoded one at a time from the
/// wire format, each with its resource's attributes: a large export never sits in memory
/// decoded as a whole (a decoded span takes several times its encoded bytes).
pub struct SpanReader<'b> {
    /// What is left of the request (its `resource_spans`).
    request: &'b [u8],
    /// What is left of the current `ResourceSpans` (its `scope_spans`).
    resource_spans: &'b [u8],
    /// What is left of the current `ScopeSpans` (its `spans`).
    scope_spans: &'b [u8],
    resource: std::sync::Arc<Vec<KeyValue>>,
    /// The position of the next span among all spans of the request.
    index: usize,
}

impl<'b> SpanReader<'b> {
    pub fn new(body: &'b [u8]) -> SpanReader<'b> {
        SpanReader {
            request: body,
            resource_spans: &[],
            scope_spans: &[],
            resource: std::sync::Arc::default(),
            index: 0,
        }
    }

    /// Counts the spans of a protobuf export, checking its framing and its resources but
    /// decoding no span: what a request is refused on before anything of it is used.
    pub fn count(body: &'b [u8]) -> Result<usize, WireError> {
        let mut reader = SpanReader::new(body);
        let mut count = 0;
        while reader.next_span_bytes()?.is_some() {
            count += 1;
        }
        Ok(count)
    }

    /// The next span's bytes, moving on to the next scope and resource as they end.
    fn next_span_bytes(&mut self) -> Result<Option<&'b [u8]>, WireError> {
        use prost::Message;
        loop {
            if let Some(span) = next_field(&mut self.scope_spans, SCOPE_SPANS_SPANS)? {
                return Ok(Some(span));
            }
            if let Some(scope) = next_field(&mut self.resource_spans, RESOURCE_SPANS_SCOPE_SPANS)? {
                self.scope_spans = scope;
                continue;
            }
            let Some(resource_spans) = next_field(&mut self.request, REQUEST_RESOURCE_SPANS)?
            else {
                return Ok(None);
            };
            // The resource may come after the scopes on the wire: look for it first.
            let mut scan = resource_spans;
            let mut attributes = Vec::new();
            while let Some(resource) = next_field(&mut scan, RESOURCE_SPANS_RESOURCE)? {
                attributes = Resource::decode(resource)?.attributes;
            }
            self.resource = std::sync::Arc::new(attributes);
            self.resource_spans = resource_spans;
        }
    }
}

/// A span of a protobuf export that carried usage, or one whose bytes did not decode
/// (with its position).
pub type SpanItem = Result<SpanUsage, (usize, WireError)>;

impl Iterator for SpanReader<'_> {
    type Item = SpanItem;

    fn next(&mut self) -> Option<SpanItem> {
        use prost::Message;
        loop {
            let index = self.index;
            let bytes = match self.next_span_bytes() {
                Ok(Some(bytes)) => bytes,
                Ok(None) => return None,
                Err(error) => {
                    // Framing broken past this point (`count` checks it first): stop.
                    self.request = &[];
                    self.resource_spans = &[];
                    self.scope_spans = &[];
                    return Some(Err((index, error)));
                }
            };
            self.index += 1;
            match Span::decode(bytes) {
                Ok(span) => {
                    if let Some(usage) = span_usage_at(index, &self.resource, &span) {
                        return Some(Ok(usage));
                    }
                }
                Err(error) => return Some(Err((index, error.into()))),
            }
        }
    }
}

/// Why a protobuf export could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct WireError(String);

impl From<prost::DecodeError> for WireError {
    fn from(error: prost::DecodeError) -> Self {
        WireError(error.to_string())
    }
}

/// Field numbers of the trace export messages (opentelemetry-proto `trace.proto`,
/// `trace_service.proto`).
const REQUEST_RESOURCE_SPANS: u32 = 1;
const RESOURCE_SPANS_RESOURCE: u32 = 1;
const RESOURCE_SPANS_SCOPE_SPANS: u32 = 2;
const SCOPE_SPANS_SPANS: u32 = 2;

/// The bytes of the next length-delimited field numbered `wanted` in `buffer`, skipping
/// every other field, and advancing past it.
fn next_field<'b>(buffer: &mut &'b [u8], wanted: u32) -> Result<Option<&'b [u8]>, WireError> {
    use prost::encoding::{WireType, decode_key, decode_varint};
    let truncated = || WireError("a field runs past the end of its message".into());
    while !buffer.is_empty() {
        let (tag, wire_type) = decode_key(buffer)?;
        let skip = match wire_type {
            WireType::Varint => {
                decode_varint(buffer)?;
                0
            }
            WireType::SixtyFourBit => 8,
            WireType::ThirtyTwoBit => 4,
            WireType::LengthDelimited => {
                let length = usize::try_from(decode_varint(buffer)?).map_err(|_| truncated())?;
                if length > buffer.len() {
                    return Err(truncated());
                }
                let (field, rest) = buffer.split_at(length);
                *buffer = rest;
                if tag == wanted {
                    return Ok(Some(field));
                }
                0
            }
            WireType::StartGroup | WireType::EndGroup => {
                return Err(WireError("groups are not used by OTLP".into()));
            }
        };
        if skip > buffer.len() {
            return Err(truncated());
        }
        *buffer = &buffer[skip..];
    }
    Ok(None)
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

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};
    use prost::Message;

    fn attribute(key: &str, value: any_value::Value) -> KeyValue {
        KeyValue {
            key: key.to_owned(),
            value: Some(AnyValue { value: Some(value) }),
            ..KeyValue::default()
        }
    }

    fn span(id: &str, usage: bool) -> Span {
        let mut attributes = vec![
            attribute(
                "gen_ai.response.model",
                any_value::Value::StringValue("gpt-5.2".into()),
            ),
            attribute(
                "gen_ai.response.id",
                any_value::Value::StringValue(id.into()),
            ),
        ];
        if usage {
            attributes.push(attribute(
                "gen_ai.usage.input_tokens",
                any_value::Value::IntValue(7),
            ));
        }
        Span {
            name: format!("chat {id}"),
            end_time_unix_nano: 1_796_000_000_000_000_000,
            attributes,
            ..Span::default()
        }
    }

    fn request() -> ExportTraceServiceRequest {
        let resource = |project: &str| Resource {
            attributes: vec![attribute(
                "llm_meter.project",
                any_value::Value::StringValue(project.into()),
            )],
            ..Resource::default()
        };
        let scope = |ids: &[(&str, bool)]| ScopeSpans {
            spans: ids.iter().map(|(id, usage)| span(id, *usage)).collect(),
            ..ScopeSpans::default()
        };
        ExportTraceServiceRequest {
            resource_spans: vec![
                ResourceSpans {
                    resource: Some(resource("a")),
                    scope_spans: vec![
                        scope(&[("a1", true), ("a2", false)]),
                        scope(&[("a3", true)]),
                    ],
                    ..ResourceSpans::default()
                },
                ResourceSpans {
                    resource: Some(resource("b")),
                    scope_spans: vec![scope(&[("b1", true)])],
                    ..ResourceSpans::default()
                },
            ],
        }
    }

    /// (index, id, project) of each usage span, as a comparable summary.
    fn summary_of(spans: impl Iterator<Item = SpanUsage>) -> Vec<(usize, String, String)> {
        spans
            .map(|s| {
                let parsed = s.result.unwrap();
                (s.index, parsed.id.unwrap(), parsed.project.unwrap())
            })
            .collect()
    }

    #[test]
    fn the_streaming_reader_finds_what_a_whole_decode_finds() {
        let request = request();
        let body = request.encode_to_vec();
        assert_eq!(SpanReader::count(&body).unwrap(), 4);
        let whole = summary_of(
            spans_of(&request)
                .filter_map(|(index, resource, span)| span_usage_at(index, resource, span)),
        );
        let streamed = summary_of(SpanReader::new(&body).map(Result::unwrap));
        assert_eq!(whole, streamed);
        assert_eq!(
            streamed,
            [
                (0, "a1".to_owned(), "a".to_owned()),
                (2, "a3".to_owned(), "a".to_owned()),
                (3, "b1".to_owned(), "b".to_owned())
            ]
        );
    }

    #[test]
    fn a_resource_written_after_its_scopes_still_applies_to_them() {
        // ResourceSpans with field 2 (scope_spans) on the wire before field 1 (resource).
        let request = request();
        let first = &request.resource_spans[0];
        let mut resource_spans = Vec::new();
        for scope in &first.scope_spans {
            prost::encoding::message::encode(2, scope, &mut resource_spans);
        }
        prost::encoding::message::encode(1, first.resource.as_ref().unwrap(), &mut resource_spans);
        let mut body = Vec::new();
        prost::encoding::bytes::encode(1, &resource_spans, &mut body);
        let streamed = summary_of(SpanReader::new(&body).map(Result::unwrap));
        assert_eq!(streamed[0], (0, "a1".to_owned(), "a".to_owned()));
        assert_eq!(streamed.len(), 2);
    }

    #[test]
    fn every_truncation_and_corruption_is_refused_or_read_without_panicking() {
        let body = request().encode_to_vec();
        for end in 0..body.len() {
            // A cut export either fails its framing check or holds fewer spans.
            if let Ok(count) = SpanReader::count(&body[..end]) {
                assert!(count <= 4);
                let _ = SpanReader::new(&body[..end]).count();
            }
        }
        for position in 0..body.len() {
            for byte in [0x00, 0xff, 0x7f, 0x80] {
                let mut corrupted = body.clone();
                corrupted[position] = byte;
                if SpanReader::count(&corrupted).is_ok() {
                    let _ = SpanReader::new(&corrupted).count();
                }
            }
        }
    }
}
