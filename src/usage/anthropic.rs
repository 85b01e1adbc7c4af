//! Anthropic Messages responses (from Anthropic, or from Bedrock and Vertex AI, which
//! answer in the same shape) and Message Batches result lines. Server-side web searches
//! (`usage.server_tool_use.web_search_requests`) are billed per search.
//!
//! Anthropic reports cache reads and writes *beside* `input_tokens` (which counts only
//! uncached input), so its counts go into the buckets as they are. Writes are split by
//! TTL with `cache_creation`; without that split every write is a 5-minute write.

use super::error::ParseError;
use super::extras::usage_calls;
use super::fields::{apply_tier, count, opt_label, part_of};
use super::raw::{Raw, RawUsage};
use super::record::{ParsedUsage, Tokens};

pub(crate) fn additive_usage(usage: &RawUsage) -> Result<Tokens, ParseError> {
    let input = count(usage.input_tokens, "usage.input_tokens")?;
    let output = count(usage.output_tokens, "usage.output_tokens")?;
    if input.is_none() && output.is_none() {
        return Err(ParseError::NoUsage(
            "usage has neither input_tokens nor output_tokens".into(),
        ));
    }
    let output = output.unwrap_or(0);
    let cache_read = count(
        usage.cache_read_input_tokens,
        "usage.cache_read_input_tokens",
    )?;
    let writes = count(
        usage.cache_creation_input_tokens,
        "usage.cache_creation_input_tokens",
    )?;
    let split = usage.cache_creation.as_ref();
    let five_minutes = count(
        split.and_then(|s| s.ephemeral_5m_input_tokens),
        "usage.cache_creation.ephemeral_5m_input_tokens",
    )?;
    let one_hour = count(
        split.and_then(|s| s.ephemeral_1h_input_tokens),
        "usage.cache_creation.ephemeral_1h_input_tokens",
    )?
    .unwrap_or(0);
    let (write_5m, write_1h) = match writes {
        Some(total) => {
            let split_sum = five_minutes.unwrap_or(0) + one_hour;
            if split_sum > total {
                return Err(ParseError::Inconsistent(format!(
                    "usage.cache_creation ephemeral_5m + ephemeral_1h ({split_sum}) exceeds \
                     usage.cache_creation_input_tokens ({total})"
                )));
            }
            // Whatever the split does not attribute to the 1-hour cache is a 5-minute write.
            (total - one_hour, one_hour)
        }
        None => (five_minutes.unwrap_or(0), one_hour),
    };
    let thinking = count(
        usage
            .output_tokens_details
            .as_ref()
            .and_then(|d| d.thinking_tokens.or(d.reasoning_tokens)),
        "usage.output_tokens_details.thinking_tokens",
    )?
    .unwrap_or(0);
    let visible_output = part_of(output, "usage.output_tokens", thinking, "thinking_tokens")?;
    let mut tokens = Tokens {
        input: input.unwrap_or(0),
        cached_input: cache_read.unwrap_or(0),
        cache_write_5m: write_5m,
        cache_write_1h: write_1h,
        output: visible_output,
        reasoning: thinking,
        ..Tokens::default()
    };
    usage_calls(usage, &mut tokens)?;
    Ok(tokens)
}

/// Who billed a Messages response: Anthropic, or the cloud that served it, as its id
/// says (`msg_bdrk_…` from Bedrock's InvokeModel, `msg_vrtx_…` from Vertex AI).
fn biller(id: Option<&str>) -> &'static str {
    match id {
        Some(id) if id.starts_with("msg_bdrk_") => "bedrock",
        Some(id) if id.starts_with("msg_vrtx_") => "vertex",
        _ => "anthropic",
    }
}

pub(crate) fn message(raw: &Raw<'_>) -> Result<ParsedUsage, ParseError> {
    let usage = raw
        .usage
        .as_ref()
        .ok_or_else(|| ParseError::NoUsage("message without `usage`".into()))?;
    let mut parsed = ParsedUsage {
        id: opt_label(raw.id.as_deref(), "id")?,
        model: opt_label(raw.model.as_deref(), "model")?,
        provider: Some(biller(raw.id.as_deref()).to_owned()),
        tokens: additive_usage(usage)?,
        ..ParsedUsage::default()
    };
    if let Some(tier) = usage.service_tier.as_deref() {
        apply_tier(&mut parsed, tier);
    }
    Ok(parsed)
}

/// `{"custom_id":…,"result":{"type":"succeeded","message":{…}}}`: batch rates. Errored,
/// canceled and expired requests are not billed.
pub(crate) fn batch_line(raw: &Raw<'_>) -> Result<ParsedUsage, ParseError> {
    let custom_id = raw.custom_id.as_deref().unwrap_or_default();
    let result = raw.result.as_deref().ok_or_else(|| {
        ParseError::NoUsage(format!("batch result {custom_id:?} has no `result`"))
    })?;
    match result.kind.as_deref() {
        Some("succeeded") => {}
        Some(other) => {
            return Err(ParseError::NotBilled(format!(
                "batch request {custom_id:?} {other}"
            )));
        }
        None => {
            return Err(ParseError::UnknownShape(format!(
                "batch result {custom_id:?} has no `result.type`"
            )));
        }
    }
    let message_raw = result.message.as_deref().ok_or_else(|| {
        ParseError::NoUsage(format!(
            "batch result {custom_id:?} has no `result.message`"
        ))
    })?;
    let mut parsed = message(message_raw)?;
    parsed.batch = true;
    if parsed.id.is_none() {
        parsed.id = Some(custom_id.to_owned());
    }
    Ok(parsed)
}
