//! `GET /v1/prices`: what a model name resolves to on a date, the price in force then,
//! and where that price came from: the same answer as `llm-meter pricing check`, from the
//! price book in force (synced prices included).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Query, State};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, AppState};
use crate::pricing::sheet::Effective;
use crate::report::params::ParameterError;
use crate::usage::Bucket;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_price))
}

/// USD per 1M tokens, by bucket (exact decimal strings); buckets without a price are absent.
type Rates = BTreeMap<&'static str, String>;

/// A model's price on a date, and its provenance.
#[derive(Serialize, utoipa::ToSchema)]
struct PriceAnswer {
    /// The name asked about, and the provider it was resolved in.
    model: String,
    provider: String,
    /// The sheet model it resolves to: `openai/gpt-5.2`, or `openrouter:openai/gpt-5.2`.
    resolved: String,
    aliases: Vec<String>,
    /// The instant the price is read at.
    at: DateTime<Utc>,
    /// When the price in force took effect (a day, or an instant for a synced price).
    #[schema(value_type = String)]
    price_from: String,
    /// Standard rates, then each tier the price has (`batch`, `flex`, `priority`), and the
    /// same above the long-context threshold as `<tier> >N`.
    rates: BTreeMap<String, Rates>,
    /// Every date its price changed.
    history: Vec<String>,
    /// `curated` (a hand-checked sheet), `catalog` (generated from LiteLLM or
    /// genai-prices) or `synced` (a catalog change fetched while running).
    layer: &'static str,
    sheet: String,
    sources: Vec<String>,
    source_version: Option<String>,
    retrieved: NaiveDate,
}

/// The price a model name resolves to.
#[utoipa::path(
    get,
    path = "/v1/prices",
    tag = "prices",
    params(
        ("model" = String, Query, description = "A model name as records write it (gpt-5.2-2025-12-11, openai/gpt-5-2, us.anthropic.claude-…-v1:0)"),
        ("provider" = Option<String>, Query, description = "The provider to resolve it in (inferred from the sheets when omitted)"),
        ("date" = Option<String>, Query, description = "YYYY-MM-DD (its start) or an RFC 3339 time; default now")
    ),
    responses(
        (status = 200, description = "The price and its provenance", body = PriceAnswer),
        (status = 400, description = "A parameter is invalid", body = super::openapi::ErrorBody),
        (status = 404, description = "No sheet prices the name", body = super::openapi::ErrorBody)
    )
)]
async fn get_price(
    State(state): State<AppState>,
    query: Result<Query<BTreeMap<String, String>>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<PriceAnswer>, ApiError> {
    let Query(params) =
        query.map_err(|r| ApiError::bad_request("invalid_parameter", r.body_text()))?;
    if let Some(unknown) = params
        .keys()
        .find(|k| !matches!(k.as_str(), "model" | "provider" | "date"))
    {
        return Err(ParameterError::new(unknown, "unknown parameter").into());
    }
    let model = params
        .get("model")
        .map(|m| m.trim())
        .filter(|m| !m.is_empty())
        .ok_or_else(|| ParameterError::new("model", "a model name is required"))?;
    crate::usage::check_label("model", model)
        .map_err(|e| ParameterError::new("model", e.to_string()))?;
    let at = match params.get("date") {
        None => Utc::now(),
        Some(text) => text
            .parse::<Effective>()
            .map_err(|message| ParameterError::new("date", message))?
            .time(),
    };
    let book = state.book.current();
    let provider = match params.get("provider").filter(|p| !p.trim().is_empty()) {
        Some(provider) => crate::providers::canonical(provider),
        None => book.infer_provider(model).ok_or_else(|| {
            ApiError::not_found(format!(
                "no sheet prices {model:?}, or several providers do: name the provider"
            ))
        })?,
    };
    let resolved = book.resolve(&provider, model).ok_or_else(|| {
        ApiError::not_found(format!(
            "no sheet of provider {provider:?} prices {model:?}"
        ))
    })?;
    let found = resolved.model;
    let entry = book.entry_at(found, at).ok_or_else(|| {
        ApiError::not_found(format!("{} has no price in force at {at}", resolved.name()))
    })?;
    let rates = book
        .tier_tables(found, entry)
        .into_iter()
        .map(|(label, table)| {
            let shown: Rates = Bucket::ALL
                .iter()
                .zip(table)
                .filter_map(|(bucket, rate)| Some((bucket.as_str(), rate?.normalize().to_string())))
                .collect();
            (label, shown)
        })
        .collect();
    let provenance = &found.provenance;
    Ok(Json(PriceAnswer {
        model: model.to_owned(),
        provider,
        resolved: resolved.name(),
        aliases: found.aliases.clone(),
        at,
        price_from: entry.from.to_string(),
        rates,
        history: found.prices.iter().map(|p| p.from.to_string()).collect(),
        layer: provenance.layer.as_str(),
        sheet: found.sheet.clone(),
        sources: provenance.source.clone(),
        source_version: provenance.source_version.clone(),
        retrieved: provenance.retrieved,
    }))
}
