//! The usage record and the parsers that turn every accepted input shape into it.
//!
//! Everything here is pure: text in, a [`ParsedUsage`] or a [`ParseError`] out. No I/O,
//! no clock (the caller passes the ingest time), no pricing (the caller passes a
//! provider-inference function).

mod anthropic;
mod canonical;
mod detect;
mod gemini;
mod litellm;
mod openai;
mod raw;
mod record;

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

pub use detect::Shape;
pub use record::{Bucket, ParsedUsage, Tokens, UsageRecord};

/// Largest count accepted in one bucket of one record. No single request comes near
/// (the largest context windows are a few million tokens); a bigger number is a bug
/// upstream, and pricing it would poison every total it lands in.
pub const MAX_TOKENS_PER_BUCKET: u64 = 1_000_000_000;
/// Longest accepted id, project, provider, model, user or tag value, in bytes.
pub const MAX_LABEL_BYTES: usize = 256;
/// Most tags a record may carry.
pub const MAX_TAGS: usize = 32;
/// Deepest nesting of wrappers (envelope, CloudEvent, batch line) we unwrap.
const MAX_WRAPPER_DEPTH: usize = 4;

/// Which input shapes a source may contain. `Auto` detects the shape per line.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    #[default]
    Auto,
    Canonical,
    OpenAI,
    Anthropic,
    Gemini,
    LiteLLM,
    CloudEvents,
}

impl Format {
    pub const NAMES: &'static str =
        "auto, canonical, openai, anthropic, gemini, litellm, cloudevents";

    pub fn parse(name: &str) -> Option<Format> {
        Some(match name.to_ascii_lowercase().as_str() {
            "auto" => Format::Auto,
            "canonical" => Format::Canonical,
            "openai" => Format::OpenAI,
            "anthropic" => Format::Anthropic,
            "gemini" | "google" => Format::Gemini,
            "litellm" => Format::LiteLLM,
            "cloudevents" => Format::CloudEvents,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Auto => "auto",
            Format::Canonical => "canonical",
            Format::OpenAI => "openai",
            Format::Anthropic => "anthropic",
            Format::Gemini => "gemini",
            Format::LiteLLM => "litellm",
            Format::CloudEvents => "cloudevents",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a line could not become a usage record. Every variant renders as one line.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ParseError {
    #[error("invalid JSON: {0}")]
    Json(String),
    /// Valid JSON with a field of the wrong type or name.
    #[error("malformed record: {0}")]
    Malformed(String),
    #[error("expected a JSON object, found {0}")]
    NotAnObject(&'static str),
    #[error("unrecognised record shape: {0}")]
    UnknownShape(String),
    #[error("{expected} format expected, but the line is {found}")]
    WrongFormat {
        expected: Format,
        found: &'static str,
    },
    #[error("{field} {problem}")]
    BadCount { field: String, problem: String },
    #[error("inconsistent counts: {0}")]
    Inconsistent(String),
    #[error("no model: the record names no model")]
    MissingModel,
    #[error("no usage: {0}")]
    NoUsage(String),
    #[error("not billed: {0}")]
    NotBilled(String),
    #[error("invalid {field}: {reason}")]
    InvalidField { field: String, reason: String },
    #[error("{shape}: {inner}")]
    InShape {
        shape: &'static str,
        inner: Box<ParseError>,
    },
}

impl ParseError {
    /// A short stable code for metrics and dead letters.
    pub fn code(&self) -> &'static str {
        match self {
            ParseError::Json(_) => "invalid_json",
            ParseError::Malformed(_) => "malformed_record",
            ParseError::NotAnObject(_) => "not_an_object",
            ParseError::UnknownShape(_) => "unknown_shape",
            ParseError::WrongFormat { .. } => "wrong_format",
            ParseError::BadCount { .. } => "bad_count",
            ParseError::Inconsistent(_) => "inconsistent_counts",
            ParseError::MissingModel => "missing_model",
            ParseError::NoUsage(_) => "no_usage",
            ParseError::NotBilled(_) => "not_billed",
            ParseError::InvalidField { .. } => "invalid_field",
            ParseError::InShape { inner, .. } => inner.code(),
        }
    }

    fn in_shape(self, shape: &'static str) -> ParseError {
        match self {
            // Keep the innermost shape only: "anthropic message: usage.x is negative".
            already @ ParseError::InShape { .. } => already,
            ParseError::WrongFormat { .. } => self,
            other => ParseError::InShape {
                shape,
                inner: Box::new(other),
            },
        }
    }
}

/// Parses one record (one line of a file, one element of a JSON array) of the given
/// format. The id is filled in deterministically when the input carries none.
pub fn parse_record(text: &str, format: Format) -> Result<ParsedUsage, ParseError> {
    let text = text.trim_ascii();
    match text.as_bytes().first() {
        Some(b'{') => {}
        Some(b'[') => return Err(ParseError::NotAnObject("an array")),
        Some(b'"') => return Err(ParseError::NotAnObject("a string")),
        None => return Err(ParseError::NotAnObject("an empty line")),
        Some(_) => {
            // Either a bare scalar or not JSON at all: let serde say which.
            return Err(match serde_json::from_str::<serde_json::Value>(text) {
                Ok(value) => ParseError::NotAnObject(raw::json_kind(&value)),
                Err(error) => ParseError::Json(error.to_string()),
            });
        }
    }
    let raw: raw::Raw<'_> = serde_json::from_str(text).map_err(|error| {
        if error.classify() == serde_json::error::Category::Data {
            ParseError::Malformed(error.to_string())
        } else {
            ParseError::Json(error.to_string())
        }
    })?;
    let mut parsed = detect::parse_raw(&raw, format, 0)?;
    if parsed.model.is_none() {
        return Err(ParseError::MissingModel);
    }
    if parsed.id.is_none() {
        parsed.id = Some(content_id(text));
    }
    Ok(parsed)
}

/// The id of a record that carries none: a hash of its text exactly as received
/// (surrounding whitespace aside), so the same line ingested twice is one record.
pub fn content_id(text: &str) -> String {
    let text = text.trim_ascii();
    let digest = Sha256::digest(text.as_bytes());
    format!("sha256:{}", hex::encode(&digest[..16]))
}

/// RFC 3339 in UTC with a `Z`, and fractional seconds only when there are any
/// (`2026-03-01T12:00:00Z`, `2026-01-02T00:00:00.412Z`). Written by hand because
/// chrono's formatter is a measurable share of `cost`'s time.
pub fn format_time(time: &DateTime<Utc>) -> String {
    use chrono::{Datelike, Timelike};
    fn digits(out: &mut String, value: u32, width: usize) {
        let mut buffer = [b'0'; 10];
        let mut value = value;
        for slot in buffer[..width].iter_mut().rev() {
            *slot = b'0' + (value % 10) as u8;
            value /= 10;
        }
        out.push_str(std::str::from_utf8(&buffer[..width]).unwrap_or("0"));
    }
    let mut out = String::with_capacity(32);
    let year = time.year();
    if !(0..=9999).contains(&year) {
        return time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
    }
    digits(&mut out, year as u32, 4);
    out.push('-');
    digits(&mut out, time.month(), 2);
    out.push('-');
    digits(&mut out, time.day(), 2);
    out.push('T');
    digits(&mut out, time.hour(), 2);
    out.push(':');
    digits(&mut out, time.minute(), 2);
    out.push(':');
    digits(&mut out, time.second(), 2);
    let mut nanos = time.nanosecond() % 1_000_000_000;
    if nanos != 0 {
        let mut width = 9;
        while nanos.is_multiple_of(10) {
            nanos /= 10;
            width -= 1;
        }
        out.push('.');
        digits(&mut out, nanos, width);
    }
    out.push('Z');
    out
}

/// The longest prefix of `text` that fits in `max` bytes without splitting a character.
pub fn truncate_utf8(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// What fills in the fields a record may leave out.
#[derive(Clone, Debug)]
pub struct Defaults<'a> {
    /// Project for records that name none.
    pub project: &'a str,
    /// The ingest time, used when the record carries no time.
    pub now: DateTime<Utc>,
}

/// The project used when neither the record nor its source names one.
pub const DEFAULT_PROJECT: &str = "default";
/// The provider recorded when none is given and none can be inferred from the model.
pub const UNKNOWN_PROVIDER: &str = "unknown";

/// Completes a parsed record: default project and time, provider inferred from the
/// model name through `infer_provider` (the pricing table knows which provider lists
/// a model), service tier defaulted to `default`.
pub fn normalise(
    parsed: ParsedUsage,
    defaults: &Defaults<'_>,
    mut infer_provider: impl FnMut(&str) -> Option<String>,
) -> Result<UsageRecord, ParseError> {
    let model = parsed.model.ok_or(ParseError::MissingModel)?;
    let provider = match parsed.provider {
        Some(provider) => provider,
        None => infer_provider(&model).unwrap_or_else(|| UNKNOWN_PROVIDER.to_owned()),
    };
    let project = match parsed.project {
        Some(project) => project,
        None => check_label("project", defaults.project)?.to_owned(),
    };
    Ok(UsageRecord {
        id: parsed.id.ok_or_else(|| ParseError::InvalidField {
            field: "id".into(),
            reason: "missing".into(),
        })?,
        // Stores keep microseconds: truncate here, so the hour a record is rolled up in is
        // the hour its stored time falls in.
        time: truncate_to_micros(parsed.time.unwrap_or(defaults.now)),
        project,
        provider,
        model,
        tokens: parsed.tokens,
        batch: parsed.batch,
        service_tier: parsed
            .service_tier
            .unwrap_or_else(|| detect::DEFAULT_TIER.to_owned()),
        tags: parsed.tags,
        user: parsed.user,
        reasoning_effort: parsed.reasoning_effort,
        reported_cost: parsed.reported_cost,
    })
}

/// Checks a label (id, project, provider, model, user) for length and control
/// characters; labels end up in URLs, CSV cells and log lines.
pub fn check_label<'s>(field: &str, value: &'s str) -> Result<&'s str, ParseError> {
    let problem = if value.is_empty() {
        Some("is empty".to_owned())
    } else if value.len() > MAX_LABEL_BYTES {
        Some(format!("is longer than {MAX_LABEL_BYTES} bytes"))
    } else if value.chars().any(char::is_control) {
        Some("contains control characters".to_owned())
    } else {
        None
    };
    match problem {
        Some(reason) => Err(ParseError::InvalidField {
            field: field.to_owned(),
            reason,
        }),
        None => Ok(value),
    }
}

/// Validates tags gathered from any shape.
pub(crate) fn check_tags(tags: &BTreeMap<String, String>) -> Result<(), ParseError> {
    if tags.len() > MAX_TAGS {
        return Err(ParseError::InvalidField {
            field: "tags".into(),
            reason: format!("{} tags, at most {MAX_TAGS} are allowed", tags.len()),
        });
    }
    for (key, value) in tags {
        check_label("tag name", key)?;
        if value.len() > MAX_LABEL_BYTES || value.chars().any(char::is_control) {
            return Err(ParseError::InvalidField {
                field: format!("tags.{key}"),
                reason: format!(
                    "longer than {MAX_LABEL_BYTES} bytes or contains control characters"
                ),
            });
        }
    }
    Ok(())
}

/// Maps the reasoning-effort spellings seen in the wild onto one vocabulary:
/// `none|minimal|low|medium|high|xhigh`; ChatGPT's `light|standard|extended` map to
/// low, medium and high. Anything else is kept (lower-cased) as its own value.
pub fn normalise_effort(effort: &str) -> String {
    let lower = effort.trim().to_ascii_lowercase();
    match lower.as_str() {
        "light" => "low".to_owned(),
        "standard" => "medium".to_owned(),
        "extended" => "high".to_owned(),
        "x-high" | "extra_high" | "extra-high" => "xhigh".to_owned(),
        _ => lower,
    }
}

fn truncate_to_micros(time: DateTime<Utc>) -> DateTime<Utc> {
    use chrono::DurationRound;
    time.duration_trunc(chrono::TimeDelta::microseconds(1))
        .unwrap_or(time)
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    #[test]
    fn times_format_like_rfc3339_with_z() {
        for (time, expected) in [
            (
                Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap(),
                "2026-03-01T12:00:00Z",
            ),
            (
                Utc.timestamp_opt(1_767_312_000, 412_000_000).unwrap(),
                "2026-01-02T00:00:00.412Z",
            ),
            (
                Utc.timestamp_opt(1_767_312_000, 123_456_789).unwrap(),
                "2026-01-02T00:00:00.123456789Z",
            ),
            (
                Utc.timestamp_opt(1_767_312_000, 1_000).unwrap(),
                "2026-01-02T00:00:00.000001Z",
            ),
        ] {
            assert_eq!(super::format_time(&time), expected);
            let reparsed = chrono::DateTime::parse_from_rfc3339(expected).unwrap();
            assert_eq!(reparsed, time);
        }
    }
}
