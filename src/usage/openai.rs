//! OpenAI: Chat Completions (and the final streaming chunk), Responses (and their
//! terminal stream events), and Batch output lines.
//!
//! OpenAI reports cached, audio and image tokens as *parts of* the prompt count and
//! reasoning, audio and image tokens as *parts of* the completion count; each is
//! subtracted out into its own bucket. OpenAI-compatible providers (Azure, xAI,
//! DeepSeek, Groq, Perplexity, Mistral, Together, Fireworks, Cerebras, DeepInfra,
//! OpenRouter) answer in these shapes, with extras that name them.

use super::detect;
use super::error::ParseError;
use super::extras::{compatible_provider, output_item_calls, reported_cost, usage_calls};
use super::fields::{
    apply_tier, check_label, count, effort_label, opt_label, part_of, rest_after, split_images,
    truncate_utf8, unix_seconds,
};
use super::format::Format;
use super::raw::{Count, Raw, RawInputDetails, RawOutputDetails, RawUsage};
use super::record::{ParsedUsage, Tokens};

/// Converts an OpenAI-convention usage object (Chat or Responses field names, also
/// used by OpenAI-compatible providers and gateways) into disjoint buckets.
///
/// The prompt count includes cached tokens, cache writes, audio and image tokens; the
/// completion count includes reasoning, audio and image tokens. Two providers count
/// reasoning outside the completion: xAI's chat completions (its `total_tokens` is
/// prompt + completion + reasoning, which is how they are told apart) and Perplexity's
/// deep research (`usage.reasoning_tokens`; its `citation_tokens`, also outside the
/// prompt, are added by `openai_object`, which knows the model).
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
        .as_deref()
        .or(usage.input_tokens_details.as_deref());
    let detail = |pick: fn(&RawInputDetails) -> Option<Count>, field: &str| {
        count(input_details.and_then(pick), field).map(Option::unwrap_or_default)
    };
    let hits = count(
        usage.prompt_cache_hit_tokens,
        "usage.prompt_cache_hit_tokens",
    )?;
    let cached = match input_details.and_then(|d| d.cached_tokens) {
        Some(c) => count(Some(c), "usage.*_tokens_details.cached_tokens")?.unwrap_or(0),
        // DeepSeek reports hits beside the prompt count, but as a part of it.
        None => hits.unwrap_or(0),
    };
    if let (Some(hits), Some(misses)) = (
        hits,
        count(
            usage.prompt_cache_miss_tokens,
            "usage.prompt_cache_miss_tokens",
        )?,
    ) && hits + misses != prompt
    {
        return Err(ParseError::Inconsistent(format!(
            "prompt_cache_hit_tokens + prompt_cache_miss_tokens ({}) is not \
             {prompt_field} ({prompt})",
            hits + misses
        )));
    }
    let cache_write = match input_details.and_then(|d| d.cache_write_tokens) {
        Some(w) => count(Some(w), "usage.*_tokens_details.cache_write_tokens")?.unwrap_or(0),
        None => detail(
            |d| d.cache_creation_tokens,
            "usage.prompt_tokens_details.cache_creation_tokens",
        )?,
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
    // Audio and image tokens are parts of the prompt; cached audio is a part of both
    // the audio and the cached counts (OpenAI Realtime says which cached tokens were audio).
    let audio_in = detail(|d| d.audio_tokens, "usage.*_tokens_details.audio_tokens")?;
    let image_in = detail(|d| d.image_tokens, "usage.*_tokens_details.image_tokens")?;
    let cached_audio = count(
        input_details
            .and_then(|d| d.cached_tokens_details.as_ref())
            .and_then(|d| d.audio_tokens),
        "usage.*_tokens_details.cached_tokens_details.audio_tokens",
    )?
    .unwrap_or(0);
    let cached_text = part_of(
        cached,
        "cached_tokens",
        cached_audio,
        "cached_tokens_details.audio_tokens",
    )?;
    let audio_uncached = part_of(
        audio_in,
        "audio_tokens",
        cached_audio,
        "cached_tokens_details.audio_tokens",
    )?;

    let output_details = usage
        .completion_tokens_details
        .as_deref()
        .or(usage.output_tokens_details.as_deref());
    let output_detail = |pick: fn(&RawOutputDetails) -> Option<Count>, field: &str| {
        count(output_details.and_then(pick), field).map(Option::unwrap_or_default)
    };
    let mut reasoning = output_detail(
        |d| d.reasoning_tokens,
        "usage.*_tokens_details.reasoning_tokens",
    )?;
    let audio_out = output_detail(|d| d.audio_tokens, "usage.*_tokens_details.audio_tokens")?;
    let image_out = output_detail(|d| d.image_tokens, "usage.*_tokens_details.image_tokens")?;
    let total = count(usage.total_tokens, "usage.total_tokens")?;
    // xAI: reasoning is beside the completion count, and the total says so.
    let reasoning_beside = reasoning > 0 && total == Some(prompt + completion + reasoning);
    // Perplexity: reasoning and citation tokens are meters of their own. A top-level
    // reasoning count beside a details one is the same tokens, counted once.
    let extra_reasoning = match output_details.and_then(|d| d.reasoning_tokens) {
        Some(_) => 0,
        None => count(usage.reasoning_tokens, "usage.reasoning_tokens")?.unwrap_or(0),
    };

    let uncached_text_and_images = rest_after(
        prompt,
        prompt_field,
        &[
            (cached, "cached_tokens"),
            (cache_write, "cache_write_tokens"),
            (audio_uncached, "audio_tokens"),
        ],
    )?;
    // OpenAI Realtime says which cached tokens were images.
    let cached_image = count(
        input_details
            .and_then(|d| d.cached_tokens_details.as_ref())
            .and_then(|d| d.image_tokens),
        "usage.*_tokens_details.cached_tokens_details.image_tokens",
    )?
    .unwrap_or(0);
    let (image_uncached, rest) = split_images(
        uncached_text_and_images,
        image_in,
        cached_image,
        "image_tokens",
    )?;
    let visible_output = rest_after(
        completion,
        completion_field,
        &[
            (
                if reasoning_beside { 0 } else { reasoning },
                "reasoning_tokens",
            ),
            (audio_out, "audio_tokens"),
            (image_out, "image_tokens"),
        ],
    )?;
    if let Some(total) = total
        && total < prompt + completion
    {
        return Err(ParseError::Inconsistent(format!(
            "{prompt_field} + {completion_field} ({}) exceeds usage.total_tokens ({total})",
            prompt + completion
        )));
    }
    reasoning += extra_reasoning;
    let mut tokens = Tokens {
        input: rest,
        cached_input: cached_text,
        cache_write_5m,
        cache_write_1h,
        output: visible_output,
        reasoning,
        audio_input: audio_uncached,
        cached_audio_input: cached_audio,
        audio_output: audio_out,
        image_input: image_uncached,
        image_output: image_out,
        ..Tokens::default()
    };
    usage_calls(usage, &mut tokens)?;
    Ok(tokens)
}

/// What every OpenAI-shaped object carries: id, model, usage (as OpenAI counts it), who
/// bills it, when it was created (`created_field`), its service tier, the cost the
/// provider reported and the search context it used.
fn openai_object(
    raw: &Raw<'_>,
    usage: &RawUsage,
    created: Option<f64>,
    created_field: &str,
) -> Result<ParsedUsage, ParseError> {
    let mut tokens = subset_usage(usage)?;
    // Perplexity bills citation tokens (outside the prompt count, at the input rate) for
    // its deep research only; its other models report them for information.
    if raw
        .model
        .as_deref()
        .is_some_and(|m| m.contains("deep-research"))
    {
        tokens.input += count(usage.citation_tokens, "usage.citation_tokens")?.unwrap_or(0);
    }
    // xAI counts its billable server-side tool calls in the usage; its output items also
    // list the failed attempts, so they are counted from the items only without it.
    if let Some(items) = raw.output.as_deref()
        && usage.server_side_tool_usage_details.is_none()
    {
        output_item_calls(items, &mut tokens);
    }
    let mut parsed = ParsedUsage {
        id: opt_label(raw.id.as_deref(), "id")?,
        model: opt_label(raw.model.as_deref(), "model")?,
        tokens,
        provider: compatible_provider(raw, usage)
            .or_else(|| {
                // A fine-tuned model (`ft:gpt-4o-mini-…:org::id`) is OpenAI's own.
                raw.model
                    .as_deref()
                    .is_some_and(|m| m.starts_with("ft:"))
                    .then_some("openai")
            })
            .map(str::to_owned),
        reported_cost: reported_cost(usage)?,
        search_context: usage
            .search_context_size
            .as_deref()
            .map(|size| check_label("usage.search_context_size", size).map(str::to_ascii_lowercase))
            .transpose()?,
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

pub(crate) fn chat(raw: &Raw<'_>) -> Result<ParsedUsage, ParseError> {
    let usage = raw
        .usage
        .as_ref()
        .ok_or_else(|| ParseError::NoUsage("chat completion without `usage`".into()))?;
    openai_object(raw, usage, raw.created, "created")
}

pub(crate) fn chat_chunk(raw: &Raw<'_>) -> Result<ParsedUsage, ParseError> {
    // Groq's last chunk carries the usage in `x_groq.usage` (without stream_options).
    let usage = raw
        .usage
        .as_deref()
        .or_else(|| raw.x_groq.as_ref().and_then(|x| x.usage.as_deref()))
        .ok_or_else(|| {
            ParseError::NoUsage(
                "streaming chunk without `usage`: only the final chunk of a stream with \
                 stream_options.include_usage carries it"
                    .into(),
            )
        })?;
    openai_object(raw, usage, raw.created, "created")
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
