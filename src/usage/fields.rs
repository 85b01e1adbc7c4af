//! The field rules every parser shares: counts, parts of wholes, times, money, labels,
//! tags, tiers and efforts, each check naming the field it rejects. Parsers call these;
//! `detect` only picks the shape and dispatches.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use rust_decimal::Decimal;

use super::error::ParseError;
use super::raw::{Count, RawMoney, RawTags, RawTime};
use super::record::{Bucket, ParsedUsage, Tokens};

/// Largest count accepted in one bucket of one record. No single request comes near
/// (the largest context windows are a few million tokens); a bigger number is a bug
/// upstream, and pricing it would poison every total it lands in.
pub const MAX_TOKENS_PER_BUCKET: u64 = 1_000_000_000;
/// Longest accepted id, project, provider, model, user or tag value, in bytes.
pub const MAX_LABEL_BYTES: usize = 256;
/// Most tags a record may carry.
pub const MAX_TAGS: usize = 32;
/// Longest project name, provider, service tier, reasoning effort and tag name, in bytes;
/// and the most the tags of one record may take written as JSON. With these, every key
/// of a rollup row (project, provider, model, tier, effort, tags) stays far inside what
/// a Postgres index entry can hold (2,704 bytes), whatever a client sends.
pub const MAX_PROJECT_BYTES: usize = 128;
pub const MAX_PROVIDER_BYTES: usize = 64;
pub const MAX_TIER_BYTES: usize = 64;
pub const MAX_EFFORT_BYTES: usize = 32;
pub const MAX_TAG_NAME_BYTES: usize = 64;
pub const MAX_TAGS_JSON_BYTES: usize = 1024;
/// The service tier of a record that names none.
pub const DEFAULT_TIER: &str = "default";

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
    refuse_if(field, problem).map(|()| value)
}

/// `problem`, if any, as the field's error.
fn refuse_if(field: &str, problem: Option<String>) -> Result<(), ParseError> {
    match problem {
        Some(reason) => Err(ParseError::InvalidField {
            field: field.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

/// Checks a project name: a label that can also be named in a comma-separated project
/// list (`?project=a,b`, a token's scope) and in a URL, so no commas, no blank name and
/// no spaces around it.
pub fn check_project(field: &str, value: &str) -> Result<(), ParseError> {
    check_label(field, value)?;
    let problem = if value.len() > MAX_PROJECT_BYTES {
        Some(format!("is longer than {MAX_PROJECT_BYTES} bytes"))
    } else if value.contains(',') {
        Some("contains a comma (projects are listed comma-separated)".to_owned())
    } else if value.trim() != value {
        Some("starts or ends with white space".to_owned())
    } else {
        None
    };
    refuse_if(field, problem)
}

/// Checks the length of a short label (provider, tier, effort) against its own bound.
fn check_short(field: &str, value: &str, max: usize) -> Result<(), ParseError> {
    refuse_if(
        field,
        (value.len() > max).then(|| format!("is longer than {max} bytes")),
    )
}

/// The bounds of a complete record's stored labels, checked once whatever shape it came
/// in: what keeps every stored key within what the stores' indexes hold.
pub(crate) fn check_record_bounds(record: &super::UsageRecord) -> Result<(), ParseError> {
    check_label("id", &record.id)?;
    check_project("project", &record.project)?;
    check_label("model", &record.model)?;
    check_short("provider", &record.provider, MAX_PROVIDER_BYTES)?;
    check_short("service_tier", &record.service_tier, MAX_TIER_BYTES)?;
    if let Some(effort) = &record.reasoning_effort {
        check_short("reasoning_effort", effort, MAX_EFFORT_BYTES)?;
    }
    for key in record.tags.keys() {
        check_short(&format!("tags.{key}"), key, MAX_TAG_NAME_BYTES)?;
    }
    // Cheap before exact: tags hold no control characters, so escaping at most doubles a
    // byte; quotes, colon and comma add 6 per tag, the braces 2.
    let raw: usize = record.tags.iter().map(|(k, v)| k.len() + v.len()).sum();
    if 2 * raw + 6 * record.tags.len() + 2 <= MAX_TAGS_JSON_BYTES {
        return Ok(());
    }
    let tags_json = serde_json::to_vec(&record.tags).map_or(0, |json| json.len());
    if tags_json > MAX_TAGS_JSON_BYTES {
        return Err(ParseError::InvalidField {
            field: "tags".into(),
            reason: format!(
                "take {tags_json} bytes as JSON, more than the {MAX_TAGS_JSON_BYTES} allowed"
            ),
        });
    }
    Ok(())
}

/// Validates tags gathered from any shape.
pub fn check_tags(tags: &BTreeMap<String, String>) -> Result<(), ParseError> {
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

pub(crate) fn merge_tags(
    into: &mut BTreeMap<String, String>,
    tags: &RawTags<'_>,
    field: &str,
) -> Result<(), ParseError> {
    for (key, value) in &tags.0 {
        match value {
            Ok(Some(value)) => {
                into.insert(key.to_string(), value.to_string());
            }
            Ok(None) => {}
            Err(()) => {
                return Err(ParseError::InvalidField {
                    field: format!("{field}.{key}"),
                    reason: "must be a string, number or boolean".into(),
                });
            }
        }
    }
    Ok(())
}

/// Most calls billed per call (web searches, sessions, images) one request may count: far
/// above any real request, and low enough that no sum of them can overflow a rollup.
pub const MAX_CALLS_PER_REQUEST: u64 = 100_000;

/// Rejects a record whose per-call counts (summed from several fields) are absurd.
pub(crate) fn check_calls(tokens: &Tokens) -> Result<(), ParseError> {
    let calls = [
        (Bucket::WebSearch, tokens.web_search),
        (Bucket::CodeInterpreter, tokens.code_interpreter),
        (Bucket::FileSearch, tokens.file_search),
        (Bucket::ImageGeneration, tokens.image_generation),
    ];
    for (bucket, calls) in calls {
        if calls > MAX_CALLS_PER_REQUEST {
            return Err(ParseError::BadCount {
                field: format!("{bucket} calls"),
                problem: format!(
                    "is absurdly large ({calls} > {MAX_CALLS_PER_REQUEST} in one request)"
                ),
            });
        }
    }
    Ok(())
}

/// Validates a token count, naming the field in the error.
pub(crate) fn count(value: Option<Count>, field: &str) -> Result<Option<u64>, ParseError> {
    let problem = match value {
        None => return Ok(None),
        Some(Count::Value(n)) if n <= MAX_TOKENS_PER_BUCKET => return Ok(Some(n)),
        Some(Count::Value(n)) => {
            format!("is absurdly large ({n} > {MAX_TOKENS_PER_BUCKET} tokens in one request)")
        }
        Some(Count::Negative(v)) => format!("is negative ({v})"),
        Some(Count::Fractional(v)) => format!("is fractional ({v})"),
        Some(Count::TooLarge) => "overflows a 64-bit count".into(),
        Some(Count::NotANumber) => "is not a number".into(),
    };
    Err(ParseError::BadCount {
        field: field.to_owned(),
        problem,
    })
}

/// `a - b` where `b` is a part of `a`; a part larger than its whole is rejected.
pub(crate) fn part_of(
    whole: u64,
    whole_field: &str,
    part: u64,
    part_field: &str,
) -> Result<u64, ParseError> {
    whole.checked_sub(part).ok_or_else(|| {
        ParseError::Inconsistent(format!(
            "{part_field} ({part}) exceeds {whole_field} ({whole})"
        ))
    })
}

/// What is left of `whole` once each part is taken out in turn; an error names the part
/// that did not fit and what it was taken from (`usage.prompt_tokens (5)`, or
/// `usage.prompt_tokens less cached_tokens (3)` after an earlier part).
pub(crate) fn rest_after(
    whole: u64,
    whole_field: &str,
    parts: &[(u64, &str)],
) -> Result<u64, ParseError> {
    let mut rest = whole;
    let mut taken: Vec<&str> = Vec::new();
    for &(part, part_field) in parts {
        rest = rest.checked_sub(part).ok_or_else(|| {
            let from = if taken.is_empty() {
                whole_field.to_owned()
            } else {
                format!("{whole_field} less {}", taken.join(", "))
            };
            ParseError::Inconsistent(format!("{part_field} ({part}) exceeds {from} ({rest})"))
        })?;
        if part > 0 {
            taken.push(part_field);
        }
    }
    Ok(rest)
}

/// A prompt's image tokens taken out of its uncached text: `(images, text)`. Cached image
/// tokens stay in the cached count, and since few providers say how many of the cached
/// tokens were images, image tokens beyond the uncached rest are taken as cached.
pub(crate) fn split_images(
    uncached: u64,
    images: u64,
    cached_images: u64,
    images_field: &str,
) -> Result<(u64, u64), ParseError> {
    let images = part_of(images, images_field, cached_images, "cached image tokens")?.min(uncached);
    Ok((images, uncached - images))
}

pub(crate) fn time_from(time: &RawTime<'_>, field: &str) -> Result<DateTime<Utc>, ParseError> {
    let invalid = |reason: String| ParseError::InvalidField {
        field: field.to_owned(),
        reason,
    };
    let parsed = match time {
        RawTime::Text(text) => parse_time_text(text)
            .ok_or_else(|| invalid(format!("{text:?} is not an RFC 3339 time")))?,
        RawTime::UnixSeconds(seconds) => unix_seconds(*seconds, field)?,
        RawTime::Invalid => {
            return Err(invalid(
                "expected an RFC 3339 string or Unix seconds".into(),
            ));
        }
    };
    check_time_range(parsed, field)
}

fn parse_time_text(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Some(time.with_timezone(&Utc));
    }
    // Spend logs and SQL dumps write naive UTC times ("2026-03-01 12:00:00.123").
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
        .map(|naive| Utc.from_utc_datetime(&naive))
}

pub(crate) fn unix_seconds(seconds: f64, field: &str) -> Result<DateTime<Utc>, ParseError> {
    // Float seconds carry about microsecond precision at today's epoch; keeping more
    // digits would only keep binary noise (0.412 read back as 0.411999941).
    let whole = seconds.floor();
    let micros = ((seconds - whole) * 1e6).round().min(999_999.0) as u32;
    let nanos = micros * 1000;
    if !seconds.is_finite() || whole < i64::MIN as f64 || whole > i64::MAX as f64 {
        return Err(ParseError::InvalidField {
            field: field.to_owned(),
            reason: format!("{seconds} is not a Unix time in seconds"),
        });
    }
    let time = Utc.timestamp_opt(whole as i64, nanos).single();
    match time {
        Some(time) => check_time_range(time, field),
        None => Err(ParseError::InvalidField {
            field: field.to_owned(),
            reason: format!("{seconds} is not a Unix time in seconds"),
        }),
    }
}

/// Times before 2000 or after 2100 are a unit mix-up (milliseconds for seconds), not usage.
fn check_time_range(time: DateTime<Utc>, field: &str) -> Result<DateTime<Utc>, ParseError> {
    let year = chrono::Datelike::year(&time);
    if (2000..2100).contains(&year) {
        Ok(time)
    } else {
        Err(ParseError::InvalidField {
            field: field.to_owned(),
            reason: format!("{} is outside 2000..2100", time.to_rfc3339()),
        })
    }
}

pub(crate) fn money(value: &RawMoney, field: &str) -> Result<Decimal, ParseError> {
    let invalid = |reason: String| ParseError::InvalidField {
        field: field.to_owned(),
        reason,
    };
    let amount = match value {
        RawMoney::Text(text) => text
            .trim()
            .parse::<Decimal>()
            .or_else(|_| Decimal::from_scientific(text.trim()))
            .map_err(|_| invalid(format!("{text:?} is not a decimal amount")))?,
        // The shortest text that round-trips the float is what the writer meant.
        RawMoney::Number(number) => {
            let text = number.to_string();
            text.parse::<Decimal>()
                .or_else(|_| Decimal::from_scientific(&format!("{number:e}")))
                .map_err(|_| invalid(format!("{number} is not a representable amount")))?
        }
        RawMoney::Invalid => return Err(invalid("expected a decimal string or number".into())),
    };
    if amount.is_sign_negative() && !amount.is_zero() {
        return Err(invalid(format!("{amount} is negative")));
    }
    Ok(amount)
}

pub(crate) fn required_label(value: Option<&str>, field: &str) -> Result<String, ParseError> {
    match value {
        Some(value) => Ok(check_label(field, value)?.to_owned()),
        None => Err(ParseError::InvalidField {
            field: field.to_owned(),
            reason: "missing".into(),
        }),
    }
}

pub(crate) fn opt_label(value: Option<&str>, field: &str) -> Result<Option<String>, ParseError> {
    value
        .map(|value| check_label(field, value).map(str::to_owned))
        .transpose()
}

/// The provider a record names, as its one id (`bedrock_converse` and `aws.bedrock` are
/// `bedrock`; see `crate::providers`).
pub(crate) fn provider_name(provider: &str) -> Result<String, ParseError> {
    Ok(crate::providers::canonical(check_label(
        "provider",
        provider.trim(),
    )?))
}

pub(crate) fn effort_label(effort: &str) -> Result<String, ParseError> {
    Ok(normalise_effort(check_label("reasoning_effort", effort)?))
}

/// Service tier as the provider reported it, mapped onto `default|flex|priority|…`;
/// Anthropic's `batch` tier sets the batch flag instead.
pub(crate) fn apply_tier(parsed: &mut ParsedUsage, tier: &str) {
    let lower = tier.trim().to_ascii_lowercase();
    let tier = match lower.as_str() {
        "" | "auto" | "default" | "standard" | "on_demand" => DEFAULT_TIER,
        "priority" | "fast" | "on_demand_priority" => "priority",
        "flex" | "on_demand_flex" => "flex",
        "provisioned_throughput" => "provisioned",
        "batch" => {
            parsed.batch = true;
            DEFAULT_TIER
        }
        other => other,
    };
    parsed.service_tier = Some(tier.to_owned());
}
