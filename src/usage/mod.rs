//! The usage record and the parsers that turn every accepted input shape into it.
//!
//! Everything here is pure: text in, a [`ParsedUsage`] or a [`ParseError`] out. No I/O,
//! no clock (the caller passes the ingest time), no pricing (the caller passes a
//! provider-inference function).

mod anthropic;
mod bedrock;
mod canonical;
mod cohere;
mod detect;
mod error;
mod extras;
mod fields;
mod format;
mod gemini;
mod litellm;
mod openai;
mod raw;
mod record;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

pub use detect::Shape;
pub use error::ParseError;
pub use fields::{
    DEFAULT_TIER, MAX_LABEL_BYTES, MAX_PROJECT_BYTES, MAX_TAGS, MAX_TAGS_JSON_BYTES,
    MAX_TOKENS_PER_BUCKET, check_label, check_project, check_tags, normalise_effort, truncate_utf8,
};
pub use format::Format;
pub use record::{Bucket, Measure, ParsedUsage, Tokens, UsageRecord};

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
    fields::check_calls(&parsed.tokens)?;
    if parsed.model.is_none() {
        return Err(match detect::leaf_shape(&raw) {
            Some(shape) if shape.model_outside_body() => ParseError::ModelOutsideBody(shape.name()),
            _ => ParseError::MissingModel,
        });
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
        None => defaults.project.to_owned(),
    };
    let record = UsageRecord {
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
            .unwrap_or_else(|| DEFAULT_TIER.to_owned()),
        tags: parsed.tags,
        user: parsed.user,
        reasoning_effort: parsed.reasoning_effort,
        reported_cost: parsed.reported_cost,
        search_context: parsed.search_context,
    };
    fields::check_record_bounds(&record)?;
    Ok(record)
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
