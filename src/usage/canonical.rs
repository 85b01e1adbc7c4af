//! The canonical record: `tokens` already in disjoint buckets, or a provider-native
//! `usage` object converted by that provider's convention.

use super::error::ParseError;
use super::extras::reported_cost;
use super::fields::{apply_tier, count, money, opt_label, provider_name, time_from, unix_seconds};
use super::raw::{Raw, RawUsage};
use super::record::{Bucket, ParsedUsage, Tokens};
use super::{anthropic, bedrock, cohere, openai};

pub(crate) fn tokens_record(raw: &Raw<'_>) -> Result<ParsedUsage, ParseError> {
    let tokens = raw
        .tokens
        .as_deref()
        .ok_or_else(|| ParseError::NoUsage("record without `tokens`".into()))?;
    let mut counts = Tokens::default();
    for bucket in Bucket::COUNTED {
        if let Some(value) = tokens.0[bucket.index()] {
            counts.set(
                bucket,
                count(Some(value), bucket.canonical_field())?.unwrap_or(0),
            );
        }
    }
    record_fields(raw, counts)
}

/// `{"provider":"anthropic","model":…,"usage":{…}}`: the provider decides whether
/// cached counts are part of the input count (OpenAI, and OpenAI-compatible gateways)
/// or beside it (Anthropic). Without a provider, the field names decide.
pub(crate) fn native_usage_record(raw: &Raw<'_>) -> Result<ParsedUsage, ParseError> {
    let usage = raw
        .usage
        .as_ref()
        .ok_or_else(|| ParseError::NoUsage("record without `usage`".into()))?;
    let provider = raw.provider.as_deref().map(provider_name).transpose()?;
    let tokens = if usage.is_bedrock() {
        bedrock::converse_usage(usage)?
    } else if usage.billed_units.is_some() {
        cohere::billed_usage(usage)?
    } else if is_additive(provider.as_deref(), usage) {
        anthropic::additive_usage(usage)?
    } else {
        openai::subset_usage(usage)?
    };
    let mut parsed = record_fields(raw, tokens)?;
    if parsed.reported_cost.is_none() {
        parsed.reported_cost = reported_cost(usage)?;
    }
    if parsed.time.is_none() {
        if let Some(created) = raw.created {
            parsed.time = Some(unix_seconds(created, "created")?);
        } else if let Some(created) = raw.created_at {
            parsed.time = Some(unix_seconds(created, "created_at")?);
        }
    }
    if parsed.service_tier.is_none()
        && let Some(tier) = usage.service_tier.as_deref()
    {
        apply_tier(&mut parsed, tier);
    }
    Ok(parsed)
}

fn is_additive(provider: Option<&str>, usage: &RawUsage) -> bool {
    // Chat-style names mean OpenAI semantics even when a gateway (LiteLLM) also copies
    // Anthropic's cache fields next to them.
    if usage.prompt_tokens.is_some() {
        return false;
    }
    match provider {
        Some("anthropic") => true,
        Some(_) => false,
        None => {
            usage.cache_read_input_tokens.is_some()
                || usage.cache_creation_input_tokens.is_some()
                || usage.cache_creation.is_some()
        }
    }
}

/// The fields a canonical record carries besides its counts.
fn record_fields(raw: &Raw<'_>, tokens: Tokens) -> Result<ParsedUsage, ParseError> {
    let mut parsed = ParsedUsage {
        id: opt_label(raw.id.as_deref(), "id")?,
        model: opt_label(raw.model.as_deref(), "model")?,
        provider: raw.provider.as_deref().map(provider_name).transpose()?,
        tokens,
        batch: raw.batch.unwrap_or(false),
        ..ParsedUsage::default()
    };
    if parsed.model.is_none() {
        return Err(ParseError::MissingModel);
    }
    if let Some(time) = raw.time.as_ref() {
        parsed.time = Some(time_from(time, "time")?);
    }
    if let Some(tier) = raw.service_tier.as_deref() {
        apply_tier(&mut parsed, tier);
    }
    if let Some(cost) = raw.cost_usd.as_ref() {
        parsed.reported_cost = Some(money(cost, "cost_usd")?);
    }
    Ok(parsed)
}
