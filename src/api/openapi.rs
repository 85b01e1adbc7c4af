//! The OpenAPI 3 document: built from the handlers' `#[utoipa::path]` annotations as the
//! router is assembled (a route registered through `routes!` is documented by
//! construction), served at `GET /openapi.json`.

use std::sync::Arc;

use axum::Extension;
use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::{InfoBuilder, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use crate::usage::Tokens;

/// Every error: `{"error":{"code":"…","message":"…"}}`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ErrorBody {
    error: ErrorDetail,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ErrorDetail {
    /// Stable, machine-readable: `invalid_parameter`, `body_too_large`, `store_unavailable`…
    code: String,
    /// For people; names the parameter or field at fault.
    message: String,
}

/// The answer of `GET /v1/spend` (JSON).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct SpendAnswer {
    rows: Vec<SpendRow>,
    total_requests: u64,
    /// Exact decimal, USD.
    total_cost_usd: String,
}

/// One group. Besides these fields it carries one string per `group_by` entry, named
/// after it (`project`, `model`, `day`, `tag:team`, `token_type`…).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct SpendRow {
    requests: u64,
    /// Requests without a price: not in `cost_usd`.
    unpriced_requests: u64,
    /// Requests priced for only part of their usage (audio, searches… without a rate):
    /// what has no price is not in `cost_usd`.
    partially_priced_requests: u64,
    /// Counts per bucket: tokens, and calls for `web_search`, `code_interpreter`,
    /// `file_search` and `image_generation` (left out when zero).
    tokens: Tokens,
    /// Exact decimal, USD.
    cost_usd: String,
    /// What the sources themselves reported these requests cost (OpenRouter's
    /// `usage.cost`, LiteLLM's `response_cost`, Perplexity's and xAI's cost fields), where
    /// any did: compare a gateway's bill with our price. Exact decimal, USD.
    reported_cost_usd: Option<String>,
}

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(openapi_json))
}

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    responses((status = 200, description = "The OpenAPI 3 document", content_type = "application/json"))
)]
async fn openapi_json(Extension(document): Extension<Arc<String>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        document.as_ref().clone(),
    )
}

/// The document's header: title, version, description.
pub(super) fn base() -> OpenApi {
    let mut document = OpenApi::default();
    document.info = InfoBuilder::new()
        .title("llm-meter")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(
            "Meters LLM API usage: ingest usage records, read spend, savings and what-ifs. \
             Money is an exact decimal string in USD.",
        ))
        .build();
    document
}
