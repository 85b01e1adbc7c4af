//! Google Gemini `generateContent` responses (Developer API and Vertex AI).
//!
//! `promptTokenCount` includes `cachedContentTokenCount`; `thoughtsTokenCount` is
//! *separate* from `candidatesTokenCount` and billed at the output rate;
//! `toolUsePromptTokenCount` is further input. The `*TokensDetails` lists split counts by
//! modality (audio is priced apart); `groundingMetadata.webSearchQueries` are the
//! searches of grounding with Google Search.

use super::error::ParseError;
use super::fields::{apply_tier, count, opt_label, part_of, rest_after, split_images, time_from};
use super::raw::{Raw, RawModalityCount, RawTime};
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
    // Audio is priced apart from text in and out, images apart on the way out; image,
    // video and document input cost what text does (the sheets may say otherwise).
    let prompt_audio = modality(&usage.prompt_details, "AUDIO", "promptTokensDetails")?;
    let prompt_image = modality(&usage.prompt_details, "IMAGE", "promptTokensDetails")?;
    let cached_audio = modality(&usage.cache_details, "AUDIO", "cacheTokensDetails")?;
    let output_audio = modality(
        &usage.candidates_details,
        "AUDIO",
        "candidatesTokensDetails",
    )?;
    let output_image = modality(
        &usage.candidates_details,
        "IMAGE",
        "candidatesTokensDetails",
    )?;
    let cached_text = part_of(
        cached,
        "cachedContentTokenCount",
        cached_audio,
        "cached AUDIO",
    )?;
    let audio_uncached = part_of(prompt_audio, "prompt AUDIO", cached_audio, "cached AUDIO")?;
    let uncached_text_and_images = part_of(
        uncached,
        "promptTokenCount minus cachedContentTokenCount",
        audio_uncached,
        "uncached AUDIO",
    )?;
    let cached_image = modality(&usage.cache_details, "IMAGE", "cacheTokensDetails")?;
    let (prompt_image, text_in) = split_images(
        uncached_text_and_images,
        prompt_image,
        cached_image,
        "prompt IMAGE",
    )?;
    let text_out = rest_after(
        candidates,
        "usageMetadata.candidatesTokenCount",
        &[
            (output_audio, "candidates AUDIO"),
            (output_image, "candidates IMAGE"),
        ],
    )?;
    let model = opt_label(
        raw.model_version.as_deref().or(raw.model.as_deref()),
        "modelVersion",
    )?;
    let web_search = grounded_searches(raw, model.as_deref());
    // Vertex AI writes `createTime` and `trafficType`; the Gemini Developer API neither.
    let vertex = raw.create_time.is_some() || usage.traffic_type.is_some();
    let mut parsed = ParsedUsage {
        id: opt_label(raw.response_id.as_deref(), "responseId")?,
        model,
        provider: Some(if vertex { "vertex" } else { "google" }.to_owned()),
        tokens: Tokens {
            input: text_in + tool_prompt,
            cached_input: cached_text,
            output: text_out,
            reasoning: thoughts,
            audio_input: audio_uncached,
            cached_audio_input: cached_audio,
            audio_output: output_audio,
            image_input: prompt_image,
            image_output: output_image,
            web_search,
            ..Tokens::default()
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

/// The tokens of one modality in a `*TokensDetails` list.
fn modality(
    details: &Option<Vec<RawModalityCount>>,
    name: &str,
    field: &str,
) -> Result<u64, ParseError> {
    let mut sum = 0;
    for detail in details.iter().flatten() {
        if detail.modality.as_deref() == Some(name) {
            sum += count(
                detail.token_count,
                &format!("usageMetadata.{field}.tokenCount"),
            )?
            .unwrap_or(0);
        }
    }
    Ok(sum)
}

/// Grounding with Google Search, as billed: Gemini 3 and later bill each search query
/// the model ran (the non-empty `webSearchQueries`); earlier models bill one grounded
/// prompt, however many queries it ran.
fn grounded_searches(raw: &Raw<'_>, model: Option<&str>) -> u64 {
    let queries: u64 = raw
        .candidates
        .as_deref()
        .into_iter()
        .flatten()
        .filter_map(|c| c.grounding.as_ref()?.web_search_queries.as_ref())
        .flatten()
        .filter(|q| q.0.as_deref().is_some_and(|q| !q.trim().is_empty()))
        .count() as u64;
    let per_query = model.is_some_and(|m| {
        let name = m.rsplit('/').next().unwrap_or(m);
        name.strip_prefix("gemini-")
            .and_then(|rest| rest.split(['.', '-']).next())
            .and_then(|major| major.parse::<u32>().ok())
            .is_some_and(|major| major >= 3)
    });
    if per_query { queries } else { queries.min(1) }
}
