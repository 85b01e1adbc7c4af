//! LiteLLM's `StandardLoggingPayload` (what its `generic_api` and custom callbacks
//! send, one object per call) and its spend-log rows.
//!
//! LiteLLM normalises every provider's usage to the OpenAI convention: `prompt_tokens`
//! includes cache reads and writes, `completion_tokens` includes reasoning. The cache
//! breakdown is in `metadata.usage_object` or `response.usage`; without either, all
//! prompt tokens are counted as uncached input (an overestimate, never an undercount).

use super::error::ParseError;
use super::fields::{
    apply_tier, check_label, check_tags, count, effort_label, merge_tags, money, opt_label,
    provider_name, time_from,
};
use super::openai;
use super::raw::{Raw, RawUsage};
use super::record::{ParsedUsage, Tokens};

pub(crate) fn payload(raw: &Raw<'_>, _depth: usize) -> Result<ParsedUsage, ParseError> {
    if raw.cache_hit == Some(true) {
        return Err(ParseError::NotBilled(
            "served from LiteLLM's own response cache, no provider call".into(),
        ));
    }
    let response = raw.response.as_deref();
    let metadata = raw.metadata.as_ref();
    let usage: Option<&RawUsage> = metadata
        .and_then(|m| m.usage_object.as_deref())
        .or_else(|| response.and_then(|r| r.usage.as_deref()));
    let tokens = match usage {
        Some(usage) => openai::subset_usage(usage)?,
        None => flat_tokens(raw)?,
    };
    if raw.status.as_deref() == Some("failure") && tokens == Tokens::default() {
        return Err(ParseError::NotBilled(
            "failed call with no token usage".into(),
        ));
    }

    // The provider's own model string (a dated snapshot) prices most precisely.
    let model = response
        .and_then(|r| r.model.as_deref())
        .or_else(|| {
            raw.hidden_params
                .as_ref()
                .and_then(|h| h.litellm_model_name.as_deref())
        })
        .or(raw.model.as_deref());
    let model = opt_label(model, "model")?;
    let provider = match raw.custom_llm_provider.as_deref() {
        Some(provider) if !provider.is_empty() => {
            let provider = provider_name(provider)?;
            // Claude on Vertex AI is billed at Anthropic's list price.
            if provider == "google" && model.as_deref().is_some_and(|m| m.contains("claude")) {
                Some("anthropic".to_owned())
            } else {
                Some(provider)
            }
        }
        _ => None,
    };
    let mut parsed = ParsedUsage {
        id: opt_label(raw.id.as_deref().or(raw.request_id.as_deref()), "id")?,
        model,
        provider,
        tokens,
        ..ParsedUsage::default()
    };
    if let Some(start) = raw.start_time.as_ref() {
        parsed.time = Some(time_from(start, "startTime")?);
    }
    if let Some(cost) = raw.response_cost.as_ref().or(raw.spend.as_ref()) {
        parsed.reported_cost = Some(money(cost, "response_cost")?);
    }
    let parameters = raw.model_parameters.as_ref();
    let effort = parameters
        .and_then(|p| p.reasoning_effort.as_deref())
        .or_else(|| parameters.and_then(|p| p.reasoning.as_ref()?.effort.as_deref()))
        .or_else(|| response.and_then(|r| r.reasoning.as_ref()?.effort.as_deref()));
    if let Some(effort) = effort {
        parsed.reasoning_effort = Some(effort_label(effort)?);
    }
    let tier = response
        .and_then(|r| r.service_tier.as_deref())
        .or_else(|| parameters.and_then(|p| p.service_tier.as_deref()));
    if let Some(tier) = tier {
        apply_tier(&mut parsed, tier);
    }
    attribution(raw, &mut parsed)?;
    Ok(parsed)
}

/// Only the top-level totals: no cache or reasoning breakdown is known.
fn flat_tokens(raw: &Raw<'_>) -> Result<Tokens, ParseError> {
    let prompt = count(raw.prompt_tokens, "prompt_tokens")?;
    let completion = count(raw.completion_tokens, "completion_tokens")?;
    if prompt.is_none() && completion.is_none() {
        return Err(ParseError::NoUsage(
            "payload has no prompt_tokens, completion_tokens or usage object".into(),
        ));
    }
    let (prompt, completion) = (prompt.unwrap_or(0), completion.unwrap_or(0));
    if let Some(total) = count(raw.total_tokens, "total_tokens")?
        && total < prompt + completion
    {
        return Err(ParseError::Inconsistent(format!(
            "prompt_tokens + completion_tokens ({}) exceeds total_tokens ({total})",
            prompt + completion
        )));
    }
    Ok(Tokens {
        input: prompt,
        output: completion,
        ..Tokens::default()
    })
}

/// Team (or LiteLLM project) becomes the project; key alias, team, org, the caller's
/// `spend_logs_metadata` and request tags become tags; the end user is the user.
fn attribution(raw: &Raw<'_>, parsed: &mut ParsedUsage) -> Result<(), ParseError> {
    if let Some(metadata) = raw.metadata.as_ref() {
        let project = metadata
            .user_api_key_project_alias
            .as_deref()
            .or(metadata.user_api_key_team_alias.as_deref())
            .or(metadata.user_api_key_team_id.as_deref())
            .filter(|p| !p.is_empty());
        if let Some(project) = project {
            parsed.project = Some(check_label("project", project)?.to_owned());
        }
        for (tag, value) in [
            ("key_alias", metadata.user_api_key_alias.as_deref()),
            ("team", metadata.user_api_key_team_alias.as_deref()),
            ("org", metadata.user_api_key_org_id.as_deref()),
        ] {
            if let Some(value) = value.filter(|v| !v.is_empty()) {
                parsed.tags.insert(tag.to_owned(), value.to_owned());
            }
        }
        if let Some(extra) = metadata.spend_logs_metadata.as_ref() {
            merge_tags(&mut parsed.tags, extra, "metadata.spend_logs_metadata")?;
        }
        if parsed.user.is_none()
            && let Some(user) = metadata
                .user_api_key_end_user_id
                .as_deref()
                .or(metadata.user_api_key_user_id.as_deref())
                .filter(|u| !u.is_empty())
        {
            parsed.user = Some(check_label("user", user)?.to_owned());
        }
    }
    if let Some(user) = raw.end_user.as_deref().filter(|u| !u.is_empty()) {
        parsed.user = Some(check_label("end_user", user)?.to_owned());
    }
    for tag in raw.request_tags.iter().flatten() {
        // LiteLLM adds the caller's User-Agent as tags; that is not attribution.
        if tag.starts_with("User-Agent:") || tag.is_empty() {
            continue;
        }
        let (key, value) = match tag.split_once(':') {
            Some((key, value)) => (key.trim(), value.trim()),
            None => (tag.as_ref(), "true"),
        };
        parsed.tags.insert(key.to_owned(), value.to_owned());
    }
    check_tags(&parsed.tags)
}
