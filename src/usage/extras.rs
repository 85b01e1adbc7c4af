//! What a usage object says besides its token counts: calls billed per call (web searches,
//! code-interpreter sessions, file searches, generated images), a cost the provider
//! reported itself, and which OpenAI-compatible provider wrote it.

use rust_decimal::Decimal;

use super::error::ParseError;
use super::fields::{count, money};
use super::raw::{Raw, RawCost, RawOutputItem, RawUsage};
use super::record::Tokens;

/// xAI bills in ticks of 1e-10 USD: a tick count is USD with 10 decimals.
const TICK_DECIMALS: u32 = 10;

/// Adds the calls a usage object counts: Anthropic's server-side web searches, xAI's
/// server-side tool calls, Perplexity's search queries.
pub(crate) fn usage_calls(usage: &RawUsage, tokens: &mut Tokens) -> Result<(), ParseError> {
    if let Some(tools) = usage.server_tool_use.as_ref() {
        tokens.web_search += count(
            tools.web_search_requests,
            "usage.server_tool_use.web_search_requests",
        )?
        .unwrap_or(0);
    }
    if let Some(tools) = usage.server_side_tool_usage_details.as_ref() {
        let field = "usage.server_side_tool_usage_details";
        tokens.web_search += count(tools.web_search_calls, field)?.unwrap_or(0)
            + count(tools.x_search_calls, field)?.unwrap_or(0);
        tokens.code_interpreter += count(tools.code_interpreter_calls, field)?.unwrap_or(0);
        tokens.file_search += count(tools.file_search_calls, field)?.unwrap_or(0);
    }
    tokens.web_search += count(usage.num_search_queries, "usage.num_search_queries")?.unwrap_or(0);
    Ok(())
}

/// Adds the tool calls of OpenAI Responses output items: each web-search, file-search and
/// image-generation call that did not fail is one call; code-interpreter calls are billed
/// per container session, so calls sharing a container count once.
pub(crate) fn output_item_calls(items: &[RawOutputItem<'_>], tokens: &mut Tokens) {
    let mut containers: Vec<&str> = Vec::new();
    for item in items {
        if item.status.as_deref() == Some("failed") {
            continue;
        }
        match item.kind.as_deref() {
            Some("web_search_call") => tokens.web_search += 1,
            Some("file_search_call") => tokens.file_search += 1,
            Some("image_generation_call") => tokens.image_generation += 1,
            Some("code_interpreter_call") => {
                let container = item.container_id.as_deref().unwrap_or_default();
                if container.is_empty() || !containers.contains(&container) {
                    containers.push(container);
                    tokens.code_interpreter += 1;
                }
            }
            _ => {}
        }
    }
}

/// The cost a provider reported for the request, where it reports one: OpenRouter's
/// `usage.cost` (plus, for a bring-your-own-key request, what the upstream charged the
/// key), Perplexity's `usage.cost.total_cost`, xAI's `usage.cost_in_usd_ticks`,
/// DeepInfra's `usage.estimated_cost`.
pub(crate) fn reported_cost(usage: &RawUsage) -> Result<Option<Decimal>, ParseError> {
    let mut cost = match usage.cost.as_ref() {
        Some(RawCost::Amount(amount)) => Some(money(amount, "usage.cost")?),
        Some(RawCost::Breakdown(Some(total))) => Some(money(total, "usage.cost.total_cost")?),
        Some(RawCost::Breakdown(None)) => None,
        None => None,
    };
    if usage.is_byok == Some(true)
        && let Some(upstream) = usage
            .cost_details
            .as_ref()
            .and_then(|d| d.upstream_inference_cost.as_ref())
    {
        let upstream = money(upstream, "usage.cost_details.upstream_inference_cost")?;
        cost = Some(cost.unwrap_or_default() + upstream);
    }
    if cost.is_none()
        && let Some(ticks) = usage.cost_in_usd_ticks
    {
        let ticks = match ticks {
            super::raw::Count::Value(ticks) => ticks,
            _ => {
                return Err(ParseError::InvalidField {
                    field: "usage.cost_in_usd_ticks".into(),
                    reason: "is not a whole, non-negative number".into(),
                });
            }
        };
        cost = Some(Decimal::from_i128_with_scale(
            i128::from(ticks),
            TICK_DECIMALS,
        ));
    }
    if cost.is_none()
        && let Some(estimate) = usage.estimated_cost.as_ref()
    {
        cost = Some(money(estimate, "usage.estimated_cost")?);
    }
    Ok(cost.map(|c| c.normalize()))
}

/// The provider an OpenAI-compatible object comes from, by the fields only it writes;
/// `None` when nothing tells (the provider is then inferred from the model name).
pub(crate) fn compatible_provider(raw: &Raw<'_>, usage: &RawUsage) -> Option<&'static str> {
    // OpenRouter's usage accounting: a cost in credits (a plain number), BYOK, details.
    Some(
        if usage.is_byok.is_some()
            || usage.cost_details.is_some()
            || matches!(usage.cost, Some(RawCost::Amount(_)))
        {
            "openrouter"
        } else if raw.x_groq.is_some() {
            "groq"
        } else if raw.prompt_filter_results.is_some() {
            "azure"
        } else if usage.cost_in_usd_ticks.is_some()
            || usage.server_side_tool_usage_details.is_some()
            || usage.num_sources_used.is_some()
        {
            "xai"
        } else if usage.prompt_cache_hit_tokens.is_some()
            || usage.prompt_cache_miss_tokens.is_some()
        {
            "deepseek"
        } else if raw.citations.is_some()
            || raw.search_results.is_some()
            || usage.search_context_size.is_some()
            || matches!(usage.cost, Some(RawCost::Breakdown(_)))
        {
            "perplexity"
        } else if raw
            .model
            .as_deref()
            .is_some_and(|m| m.starts_with("accounts/fireworks/"))
        {
            // Fireworks' own model namespace.
            "fireworks"
        } else if raw.time_info.is_some() {
            "cerebras"
        } else if usage.estimated_cost.is_some() {
            "deepinfra"
        } else {
            return None;
        },
    )
}
