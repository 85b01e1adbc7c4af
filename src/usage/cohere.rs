//! Cohere chat responses: v2 (`usage.billed_units`) and v1 (`meta.billed_units`).
//!
//! `billed_units` is what Cohere bills; `usage.tokens` beside it also counts the prompt
//! template and is not used. Neither body names its model: a proxy logs it beside the
//! body, `{"model":"command-a-03-2025","response":{…}}`.

use super::error::ParseError;
use super::fields::{count, opt_label, provider_name};
use super::raw::{Raw, RawUsage};
use super::record::{ParsedUsage, Tokens};

pub(crate) fn billed_usage(usage: &RawUsage) -> Result<Tokens, ParseError> {
    let billed = usage
        .billed_units
        .as_ref()
        .ok_or_else(|| ParseError::NoUsage("usage without `billed_units`".into()))?;
    let input = count(billed.input_tokens, "billed_units.input_tokens")?;
    let output = count(billed.output_tokens, "billed_units.output_tokens")?;
    if input.is_none() && output.is_none() {
        return Err(ParseError::NoUsage(
            "billed_units has neither input_tokens nor output_tokens".into(),
        ));
    }
    Ok(Tokens {
        input: input.unwrap_or(0),
        output: output.unwrap_or(0),
        ..Tokens::default()
    })
}

pub(crate) fn chat(raw: &Raw<'_>) -> Result<ParsedUsage, ParseError> {
    let usage = raw
        .usage
        .as_deref()
        .filter(|u| u.billed_units.is_some())
        .or(raw.meta.as_deref())
        .ok_or_else(|| ParseError::NoUsage("response without `usage.billed_units`".into()))?;
    Ok(ParsedUsage {
        id: opt_label(raw.id.as_deref(), "id")?,
        model: opt_label(raw.model.as_deref(), "model")?,
        provider: Some(match raw.provider.as_deref() {
            Some(provider) => provider_name(provider)?,
            None => "cohere".to_owned(),
        }),
        tokens: billed_usage(usage)?,
        ..ParsedUsage::default()
    })
}
