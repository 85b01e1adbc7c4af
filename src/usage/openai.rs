//! OpenAI: Chat Completions (and the final streaming chunk), Responses (and their
//! terminal stream events), and Batch output lines.
//!
//! OpenAI reports cached tokens as a *part of* the prompt count and reasoning tokens as
//! a *part of* the completion count; both are subtracted out into their own buckets.

use super::detect;
use super::error::ParseError;
use super::fields::{
    apply_tier, count, effort_label, money, opt_label, part_of, truncate_utf8, unix_seconds,
};
use super::format::Format;
use super::raw::{Raw, RawUsage};
use super::record::{ParsedUsage, Tokens};

/// Converts an OpenAI-convention usage object (Chat or Responses field names, also
/// used by OpenAI-compatible gateways) into disjoint buckets.
pub(crate) fn subset_usage(usage: &RawUsage) -> Result<Tokens, ParseError> {
    let (prompt, prompt_field) = match count(usage.prompt_tokens, "usage.prompt_tokens")? {
        Some(n) => (Some(n), "usage.prompt_tokens"),
        None => (
            count(usage.input_tokens, "usage.input_tokens")?,
            "usage.input_tokens",
        ),
    };
    let (completion, completion_field) =
        match count(usage.completion_tokens, "usage.completion_tokens")? {
            Some(n) => (Some(n), "usage.completion_tokens"),
            None => (
                count(usage.output_tokens, "usage.output_tokens")?,
                "usage.output_tokens",
            ),
        };
    if prompt.is_none() && completion.is_none() {
        return Err(ParseError::NoUsage(
            "usage has neither prompt_tokens/input_tokens nor completion_tokens/output_tokens"
                .into(),
        ));
    }
    let prompt = prompt.unwrap_or(0);
    let completion = completion.unwrap_or(0);

    let input_details = usage
        .prompt_tokens_details
        .as_ref()
        .or(usage.input_tokens_details.as_ref());
    let cached = match input_details.and_then(|d| d.cached_tokens) {
        Some(c) => count(Some(c), "usage.*_tokens_details.cached_tokens")?.unwrap_or(0),
        // DeepSeek reports hits beside the prompt count, but as a part of it.
        None => count(
            usage.prompt_cache_hit_tokens,
            "usage.prompt_cache_hit_tokens",
        )?
        .unwrap_or(0),
    };
    let cache_write = match input_details.and_then(|d| d.cache_write_tokens) {
        Some(w) => count(Some(w), "usage.*_tokens_details.cache_write_tokens")?.unwrap_or(0),
        None => count(
            input_details.and_then(|d| d.cache_creation_tokens),
            "usage.prompt_tokens_details.cache_creation_tokens",
        )?
        .unwrap_or(0),
    };
    // Only LiteLLM's normalised usage splits writes by TTL; the rest are 5-minute writes.
    let cache_write_1h = count(
        input_details
            .and_then(|d| d.cache_creation_token_details.as_ref())
            .and_then(|d| d.ephemeral_1h_input_tokens),
        "usage.prompt_tokens_details.cache_creation_token_details.ephemeral_1h_input_tokens",
    )?
    .unwrap_or(0);
    let cache_write_5m = part_of(
        cache_write,
        "cache writes",
        cache_write_1h,
        "ephemeral_1h_input_tokens",
    )?;
    let output_details = usage
        .completion_tokens_details
        .as_ref()
        .or(usage.output_tokens_details.as_ref());
    let reasoning = count(
        output_details.and_then(|d| d.reasoning_tokens),
        "usage.*_tokens_details.reasoning_tokens",
    )?
    .unwrap_or(0);

    let uncached = part_of(prompt, prompt_field, cached, "cached_tokens")?;
    let uncached = part_of(
        uncached,
        &format!("{prompt_field} minus cached_tokens"),
        cache_write,
        "cache_write_tokens",
    )?;
    let visible_output = part_of(completion, completion_field, reasoning, "reasoning_tokens")?;
    if let Some(total) = count(usage.total_tokens, "usage.total_tokens")?
        && total < prompt + completion
    {
        return Err(ParseError::Inconsistent(format!(
            "{prompt_field} + {completion_field} ({}) exceeds usage.total_tokens ({total})",
            prompt + completion
        )));
    }
    Ok(Tokens {
        input: uncached,
        cached_input: cached,
        cache_write_5m,
        cache_write_1h,
        output: visible_output,
        reasoning,
    })
}

/// What every OpenAI-shaped object carries: id, model, usage (as OpenAI counts it), who
/// bills it, when it was created (`created_field`) and its service tier.
fn openai_object(
    raw: &Raw<'_>,
    usage: &RawUsage,
    created: Option<f64>,
    created_field: &str,
) -> Result<ParsedUsage, ParseError> {
    let mut parsed = ParsedUsage {
        id: opt_label(raw.id.as_deref(), "id")?,
        model: opt_label(raw.model.as_deref(), "model")?,
        tokens: subset_usage(usage)?,
        provider: Some(gateway_or(usage, "openai")),
        ..ParsedUsage::default()
    };
    if let Some(created) = created {
        parsed.time = Some(unix_seconds(created, created_field)?);
    }
    if let Some(tier) = raw.service_tier.as_deref() {
        apply_tier(&mut parsed, tier);
    }
    Ok(parsed)
}

/// Fields common to a Chat Completion and its final chunk.
fn chat_like(raw: &Raw<'_>, usage: &RawUsage) -> Result<ParsedUsage, ParseError> {
    let mut parsed = openai_object(raw, usage, raw.created, "created")?;
    if let Some(cost) = usage.cost.as_ref() {
        parsed.reported_cost = Some(money(cost, "usage.cost")?);
    }
    Ok(parsed)
}

/// OpenRouter answers in the Chat Completions shape and adds `usage.cost` (in credits,
/// which are US dollars) and `usage.is_byok`; those fields name it as the biller.
fn gateway_or(usage: &RawUsage, default: &str) -> String {
    if usage.is_byok.is_some() || usage.cost_details.is_some() {
        "openrouter".to_owned()
    } else {
        default.to_owned()
    }
}

pub(crate) fn chat(raw: &Raw<'_>) -> Result<ParsedUsage, ParseError> {
    let usage = raw
        .usage
        .as_ref()
        .ok_or_else(|| ParseError::NoUsage("chat completion without `usage`".into()))?;
    chat_like(raw, usage)
}

pub(crate) fn chat_chunk(raw: &Raw<'_>) -> Result<ParsedUsage, ParseError> {
    let usage = raw.usage.as_ref().ok_or_else(|| {
        ParseError::NoUsage(
            "streaming chunk without `usage`: only the final chunk of a stream with \
             stream_options.include_usage carries it"
                .into(),
        )
    })?;
    chat_like(raw, usage)
}

pub(crate) fn response(raw: &Raw<'_>) -> Result<ParsedUsage, ParseError> {
    let usage = raw.usage.as_ref().ok_or_else(|| {
        ParseError::NoUsage(format!(
            "response with status {:?} has no `usage`",
            raw.status.as_deref().unwrap_or("unknown")
        ))
    })?;
    let mut parsed = openai_object(raw, usage, raw.created_at, "created_at")?;
    if let Some(effort) = raw.reasoning.as_ref().and_then(|r| r.effort.as_deref()) {
        parsed.reasoning_effort = Some(effort_label(effort)?);
    }
    Ok(parsed)
}

/// `response.completed`, `response.incomplete` and `response.failed` wrap the final
/// Response object; a failed or incomplete response is billed for what it used.
pub(crate) fn response_event(raw: &Raw<'_>) -> Result<ParsedUsage, ParseError> {
    let kind = raw.kind.as_deref().unwrap_or_default();
    if !matches!(
        kind,
        "response.completed" | "response.incomplete" | "response.failed"
    ) {
        return Err(ParseError::NoUsage(format!(
            "`{kind}` events carry no final usage; only response.completed, \
             response.incomplete and response.failed do"
        )));
    }
    let inner = raw
        .response
        .as_deref()
        .ok_or_else(|| ParseError::NoUsage(format!("`{kind}` event without `response`")))?;
    response(inner)
}

/// A line of a Batch API output file: `{"id","custom_id","response":{"status_code",
/// "body":{…}},"error"}`. Priced at batch rates; the time is the body's `created`.
pub(crate) fn batch_line(raw: &Raw<'_>, depth: usize) -> Result<ParsedUsage, ParseError> {
    let custom_id = raw.custom_id.as_deref().unwrap_or_default();
    if let Some(error) = raw.error.as_ref().filter(|e| !e.is_null()) {
        let reason = error
            .get("message")
            .and_then(|m| m.as_str())
            .or_else(|| error.get("code").and_then(|c| c.as_str()))
            .unwrap_or("unknown error");
        return Err(ParseError::NotBilled(format!(
            "batch request {custom_id:?} failed: {}",
            truncate_utf8(reason, 200)
        )));
    }
    let response = raw.response.as_deref().ok_or_else(|| {
        ParseError::NoUsage(format!("batch request {custom_id:?} has no `response`"))
    })?;
    if let Some(status) = count(response.status_code, "response.status_code")?
        && status != 200
    {
        return Err(ParseError::NotBilled(format!(
            "batch request {custom_id:?} answered HTTP {status}"
        )));
    }
    let body = response.body.as_deref().ok_or_else(|| {
        ParseError::NoUsage(format!(
            "batch request {custom_id:?} has no `response.body`"
        ))
    })?;
    let mut parsed = detect::parse_raw(body, Format::OpenAI, depth + 1)?;
    parsed.batch = true;
    if parsed.id.is_none() {
        parsed.id = opt_label(raw.id.as_deref(), "id")?;
    }
    Ok(parsed)
}
