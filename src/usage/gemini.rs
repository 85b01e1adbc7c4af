//! Google Gemini `generateContent` responses (Developer API and Vertex AI).
//!
//! `promptTokenCount` includes `cachedContentTokenCount`; `thoughtsTokenCount` is
//! *separate* from `candidatesTokenCount` and billed at the output rate;
//! `toolUsePromptTokenCount` is further input.

use super::error::ParseError;
use super::fields::{apply_tier, count, opt_label, part_of, time_from};
use super::raw::{Raw, RawTime};
use super::record::{ParsedUsage, Tokens};

pub(crate) fn response(raw: &Raw<'_>) -> Result<ParsedUsage, ParseError> {
    let usage = raw
        .usage_metadata
        .as_ref()
        .ok_or_else(|| ParseError::NoUsage("response without `usageMetadata`".into()))?;
    let prompt = count(usage.prompt, "usageMetadata.promptTokenCount")?;
    let candidates = count(usage.candidates, "usageMetadata.candidatesTokenCount")?;
    if prompt.is_none() && candidates.is_none() {
        return Err(ParseError::NoUsage(
            "usageMetadata has neither promptTokenCount nor candidatesTokenCount".into(),
        ));
    }
    let prompt = prompt.unwrap_or(0);
    let candidates = candidates.unwrap_or(0);
    let cached = count(usage.cached, "usageMetadata.cachedContentTokenCount")?.unwrap_or(0);
    let thoughts = count(usage.thoughts, "usageMetadata.thoughtsTokenCount")?.unwrap_or(0);
    let tool_prompt = count(
        usage.tool_use_prompt,
        "usageMetadata.toolUsePromptTokenCount",
    )?
    .unwrap_or(0);
    let uncached = part_of(
        prompt,
        "usageMetadata.promptTokenCount",
        cached,
        "cachedContentTokenCount",
    )?;
    let parts = prompt + candidates + thoughts + tool_prompt;
    if let Some(total) = count(usage.total, "usageMetadata.totalTokenCount")?
        && total < parts
    {
        return Err(ParseError::Inconsistent(format!(
            "prompt + candidates + thoughts + toolUsePrompt ({parts}) exceeds \
             usageMetadata.totalTokenCount ({total})"
        )));
    }
    let mut parsed = ParsedUsage {
        id: opt_label(raw.response_id.as_deref(), "responseId")?,
        model: opt_label(
            raw.model_version.as_deref().or(raw.model.as_deref()),
            "modelVersion",
        )?,
        provider: Some("google".to_owned()),
        tokens: Tokens {
            input: uncached + tool_prompt,
            cached_input: cached,
            cache_write_5m: 0,
            cache_write_1h: 0,
            output: candidates,
            reasoning: thoughts,
        },
        ..ParsedUsage::default()
    };
    if let Some(create_time) = raw.create_time.as_deref() {
        parsed.time = Some(time_from(&RawTime::Text(create_time.into()), "createTime")?);
    }
    if let Some(traffic) = usage.traffic_type.as_deref() {
        apply_tier(&mut parsed, traffic);
    }
    Ok(parsed)
}
