//! AWS Bedrock: Converse and ConverseStream responses, InvokeModel bodies of the model
//! families that are not Anthropic's (whose Messages bodies `anthropic.rs` reads), and
//! the invocation metrics of a stream's last chunk.
//!
//! Bedrock counts like Anthropic: `inputTokens` is the uncached input only, cache reads
//! and writes are beside it (`cacheDetails` splits the writes by TTL). Its `totalTokens`
//! is not used: it includes the cache counts in some responses and not in others.
//! Converse bodies do not name their model (it is the request's `modelId`, in the URL):
//! a proxy logs it beside the body, `{"model":"us.anthropic.claude-…","response":{…}}`.

use super::error::ParseError;
use super::fields::{apply_tier, count, opt_label, part_of, provider_name};
use super::raw::{Count, Raw, RawBedrockHeaders, RawUsage};
use super::record::{ParsedUsage, Tokens};

/// Bedrock's camelCase usage (Converse, ConverseStream, Nova InvokeModel) or invocation
/// metrics (`inputTokenCount`…), into buckets.
pub(crate) fn converse_usage(usage: &RawUsage) -> Result<Tokens, ParseError> {
    let (input, input_field) = pick(
        usage.bedrock_input,
        "usage.inputTokens",
        usage.metrics_input,
        "inputTokenCount",
    )?;
    let (output, _) = pick(
        usage.bedrock_output,
        "usage.outputTokens",
        usage.metrics_output,
        "outputTokenCount",
    )?;
    if input.is_none() && output.is_none() {
        return Err(ParseError::NoUsage(
            "usage has neither inputTokens nor outputTokens".into(),
        ));
    }
    let input = input.unwrap_or(0);
    let output = output.unwrap_or(0);
    let cache_read = count(usage.bedrock_cache_read, "usage.cacheReadInputTokens")?.unwrap_or(0);
    let cache_write = count(usage.bedrock_cache_write, "usage.cacheWriteInputTokens")?.unwrap_or(0);
    let mut one_hour = 0;
    let mut detailed = 0;
    for detail in usage.bedrock_cache_details.iter().flatten() {
        let tokens = count(detail.input_tokens, "usage.cacheDetails.inputTokens")?.unwrap_or(0);
        detailed += tokens;
        if detail.ttl.as_deref() == Some("1h") {
            one_hour += tokens;
        }
    }
    if detailed > cache_write {
        return Err(ParseError::Inconsistent(format!(
            "usage.cacheDetails ({detailed}) exceed usage.cacheWriteInputTokens ({cache_write})"
        )));
    }
    if let Some(total) = count(usage.bedrock_total, "usage.totalTokens")?
        && total < input + output
    {
        return Err(ParseError::Inconsistent(format!(
            "{input_field} + outputTokens ({}) exceeds usage.totalTokens ({total})",
            input + output
        )));
    }
    Ok(Tokens {
        input,
        cached_input: cache_read,
        cache_write_5m: part_of(cache_write, "cacheWriteInputTokens", one_hour, "1h writes")?,
        cache_write_1h: one_hour,
        output,
        ..Tokens::default()
    })
}

/// The first of two spellings of a count that is present.
fn pick(
    first: Option<Count>,
    first_field: &'static str,
    second: Option<Count>,
    second_field: &'static str,
) -> Result<(Option<u64>, &'static str), ParseError> {
    match first {
        Some(_) => Ok((count(first, first_field)?, first_field)),
        None => Ok((count(second, second_field)?, second_field)),
    }
}

/// The record of a Bedrock body; an id, model or provider a proxy wrote beside the
/// counts (Bedrock writes none of them) is taken.
fn bedrock_record(raw: &Raw<'_>, tokens: Tokens) -> Result<ParsedUsage, ParseError> {
    let mut parsed = ParsedUsage {
        id: opt_label(raw.id.as_deref(), "id")?,
        provider: Some(match raw.provider.as_deref() {
            Some(provider) => provider_name(provider)?,
            None => "bedrock".to_owned(),
        }),
        model: opt_label(raw.model.as_deref(), "model")?,
        tokens,
        ..ParsedUsage::default()
    };
    if let Some(tier) = raw
        .bedrock_service_tier
        .as_ref()
        .and_then(|t| t.kind.as_deref())
    {
        apply_tier(&mut parsed, tier);
    }
    Ok(parsed)
}

/// A Converse response (or a Nova InvokeModel body, which has the same usage).
pub(crate) fn converse(raw: &Raw<'_>) -> Result<ParsedUsage, ParseError> {
    let usage = raw
        .usage
        .as_deref()
        .ok_or_else(|| ParseError::NoUsage("response without `usage`".into()))?;
    bedrock_record(raw, converse_usage(usage)?)
}

/// ConverseStream's last event, `{"metadata":{"usage":{…},"metrics":{…}}}`.
pub(crate) fn converse_stream_metadata(raw: &Raw<'_>) -> Result<ParsedUsage, ParseError> {
    let usage = raw
        .metadata
        .as_ref()
        .and_then(|m| m.usage.as_deref())
        .ok_or_else(|| ParseError::NoUsage("metadata event without `usage`".into()))?;
    bedrock_record(raw, converse_usage(usage)?)
}

/// The last chunk of an InvokeModelWithResponseStream stream, whatever the model family:
/// its `amazon-bedrock-invocationMetrics` count the whole request.
pub(crate) fn invocation_metrics(raw: &Raw<'_>) -> Result<ParsedUsage, ParseError> {
    let metrics = raw.invocation_metrics.as_deref().ok_or_else(|| {
        ParseError::NoUsage("chunk without `amazon-bedrock-invocationMetrics`".into())
    })?;
    bedrock_record(raw, converse_usage(metrics)?)
}

/// A Meta Llama InvokeModel body: `prompt_token_count`, `generation_token_count`.
pub(crate) fn llama(raw: &Raw<'_>) -> Result<ParsedUsage, ParseError> {
    let input = count(
        raw.prompt_token_count.as_deref().copied(),
        "prompt_token_count",
    )?;
    let output = count(
        raw.generation_token_count.as_deref().copied(),
        "generation_token_count",
    )?;
    if input.is_none() && output.is_none() {
        return Err(ParseError::NoUsage(
            "a stream chunk before the last: only the last carries the counts".into(),
        ));
    }
    let tokens = Tokens {
        input: input.unwrap_or(0),
        output: output.unwrap_or(0),
        ..Tokens::default()
    };
    bedrock_record(raw, tokens)
}

/// The counts of InvokeModel's response headers (`x-amzn-bedrock-input-token-count`…),
/// logged by a proxy beside a body that carries none (Mistral's); `None` without them.
pub(crate) fn header_usage(headers: &RawBedrockHeaders) -> Result<Option<Tokens>, ParseError> {
    const PREFIX: &str = "headers.x-amzn-bedrock-";
    let field = |name: &str| format!("{PREFIX}{name}");
    let input = count(headers.input, &field("input-token-count"))?;
    let output = count(headers.output, &field("output-token-count"))?;
    if input.is_none() && output.is_none() {
        return Ok(None);
    }
    Ok(Some(Tokens {
        input: input.unwrap_or(0),
        cached_input: count(headers.cache_read, &field("cache-read-input-token-count"))?
            .unwrap_or(0),
        cache_write_5m: count(headers.cache_write, &field("cache-write-input-token-count"))?
            .unwrap_or(0),
        output: output.unwrap_or(0),
        ..Tokens::default()
    }))
}
