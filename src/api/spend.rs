//! Spend analytics: `GET /v1/spend` (JSON, CSV or FOCUS), `GET /v1/unpriced`,
//! `GET /v1/savings`, `GET /v1/whatif` and `GET /v1/whatif/cheaper`. Every handler reads
//! its call the same way ([`SpendCall`]: parameters parsed and scoped to the caller, the
//! answer's format negotiated), computes through `crate::report` (what `llm-meter report`
//! runs too), and answers JSON or CSV; a bad parameter is a 400 that names it.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, TimeZone, Utc};
use serde::Serialize;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, AppState};
use crate::auth::Principal;
use crate::report::params::{GroupBy, ParameterError, SpendParams, SpendRequest};
use crate::report::whatif::WhatIfTarget;
use crate::report::{focus, savings, spend, stats, whatif};
use crate::usage::Tokens;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_spend))
        .routes(routes!(get_unpriced))
        .routes(routes!(get_savings))
        .routes(routes!(get_what_if))
        .routes(routes!(get_cheaper))
}

/// The parameters every spend endpoint shares (documentation only: parsing is
/// `QueryParams`, which also takes any number of `tag.KEY=VALUE` filters).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct SpendQuery {
    /// Start, inclusive: RFC 3339 or YYYY-MM-DD. Default: the start of this month in `tz`.
    from: Option<String>,
    /// End, exclusive: RFC 3339 or YYYY-MM-DD. Default: now. Bounds inside an hour are
    /// exact: the partial hours are read from the events.
    to: Option<String>,
    /// Comma-separated: project, provider, model, service_tier, batch, reasoning_effort,
    /// token_type, tag:KEY, and at most one of hour, day, week, month, quarter, year.
    /// Default: none (one row of totals).
    group_by: Option<String>,
    /// Only these projects (repeat the parameter, or separate with commas).
    project: Option<String>,
    /// Only this provider (`openai`, `anthropic`, `google`, `openrouter`, …).
    provider: Option<String>,
    /// Only this model: the pricing sheet's id (`gpt-5.2` also covers its dated snapshots).
    model: Option<String>,
    /// IANA timezone for day, week and month buckets (default UTC). Buckets are built from
    /// hourly rollups: exact in every zone whose offset is a whole number of hours (DST
    /// included); in a zone with a half- or quarter-hour offset, each hour counts in the
    /// bucket its start falls in.
    tz: Option<String>,
    /// `json` (default), `csv` (also `Accept: text/csv`), or `focus` (FinOps FOCUS 1.2 CSV).
    format: Option<String>,
    /// `true` adds each row's cost and tokens per request (p50, p95, max), computed
    /// exactly from the stored events (it reads every event of the range). JSON only.
    stats: Option<bool>,
}

/// One spend-like call as the handler first sees it: the query's pairs, the caller, and
/// whether it asked for CSV in `Accept`.
struct SpendCall {
    principal: Principal,
    pairs: Vec<(String, String)>,
    accepts_csv: bool,
}

impl<S: Send + Sync> FromRequestParts<S> for SpendCall {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Query(pairs) = Query::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map_err(|rejection| {
                ApiError::bad_request("invalid_parameter", rejection.body_text())
            })?;
        let principal = parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or_else(|| ApiError::internal("the request was not authorized"))?;
        let accepts_csv = parts
            .headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|accept| accept.contains("text/csv"));
        Ok(SpendCall {
            principal,
            pairs,
            accepts_csv,
        })
    }
}

/// A call's parameters: the spend parameters (`project` narrowed to what the caller may
/// see), the answer's format, and the extra names the endpoint takes. Anything else is
/// an error, so a typo never silently widens a query.
struct QueryParams {
    spend: SpendParams,
    format: Format,
    /// Whether `format` was given (endpoints without a format refuse it).
    format_given: bool,
    extra: Vec<(String, String)>,
}

impl SpendCall {
    /// Reads the parameters; `extra_names` are those the endpoint takes besides the
    /// spend parameters, `formats` the answers it can give (the first is the default).
    fn read(self, extra_names: &[&str], formats: &[Format]) -> Result<QueryParams, ApiError> {
        let mut spend = SpendParams::default();
        let mut format = None;
        let mut extra = Vec::new();
        for (name, value) in self.pairs {
            match name.as_str() {
                "from" => spend.from = Some(value),
                "to" => spend.to = Some(value),
                "group_by" => spend.group_by = Some(value),
                "project" => spend.projects.push(value),
                "provider" => spend.provider = Some(value),
                "model" => spend.model = Some(value),
                "tz" => spend.tz = Some(value),
                "format" => format = Some(value),
                other => match other.strip_prefix("tag.") {
                    Some(key) => spend.tags.push((key.to_owned(), value)),
                    None if extra_names.contains(&other) => extra.push((name, value)),
                    None => return Err(ParameterError::new(&name, "unknown parameter").into()),
                },
            }
        }
        spend.projects = self.principal.scope(std::mem::take(&mut spend.projects))?;
        let format_given = format.is_some();
        let format = if formats.is_empty() {
            // The endpoint answers JSON only and says so if a format is given.
            Format::Json
        } else {
            let format = match format.as_deref() {
                Some(name) => Format::parse(name)?,
                None if self.accepts_csv => Format::Csv,
                None => Format::Json,
            };
            if !formats.contains(&format) {
                return Err(
                    ParameterError::new("format", "this endpoint answers json or csv").into(),
                );
            }
            format
        };
        Ok(QueryParams {
            spend,
            format,
            format_given,
            extra,
        })
    }
}

impl QueryParams {
    fn extra(&self, name: &str) -> Option<String> {
        self.extra
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    }
}

impl From<ParameterError> for ApiError {
    fn from(error: ParameterError) -> Self {
        ApiError::bad_request("invalid_parameter", error.to_string())
    }
}

/// The answer's format: `format=json|csv|focus`, else `Accept: text/csv`, else JSON.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Format {
    Json,
    Csv,
    Focus,
}

impl Format {
    fn parse(name: &str) -> Result<Format, ParameterError> {
        match name {
            "json" => Ok(Format::Json),
            "csv" => Ok(Format::Csv),
            "focus" => Ok(Format::Focus),
            other => Err(ParameterError::new(
                "format",
                format!("{other:?} is not one of json, csv, focus"),
            )),
        }
    }
}

/// A report as JSON, or as CSV through `csv` when that was asked for.
fn respond<T: Serialize>(
    format: Format,
    report: &T,
    csv: impl FnOnce(&T) -> String,
    filename: &str,
) -> Response {
    match format {
        Format::Csv | Format::Focus => csv_response(csv(report), filename),
        Format::Json => Json(report).into_response(),
    }
}

fn csv_response(body: impl IntoResponse, filename: &str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(value) = HeaderValue::from_str(&format!("inline; filename=\"{filename}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

/// The FOCUS export, streamed a window (a day, or a month) at a time: memory holds one
/// window, whatever the range. The first window is read before answering, so a store
/// that cannot answer is still a 503; a failure later ends the body early (the client
/// sees a truncated transfer, and the failure is logged).
async fn focus_response(state: AppState, request: &SpendRequest) -> Result<Response, ApiError> {
    use futures_util::StreamExt;
    let store = state.reader.clone();
    let book = state.book.current();
    let mut export = focus::Export::new(request);
    let first = export.next_chunk(&store, &book).await?;
    let rest = futures_util::stream::try_unfold(
        (export, store, book),
        |(mut export, store, book)| async move {
            match export.next_chunk(&store, &book).await {
                Ok(chunk) => Ok(chunk.map(|chunk| (chunk, (export, store, book)))),
                Err(error) => {
                    tracing::warn!(message = "A FOCUS export failed part-way.", %error);
                    Err(error)
                }
            }
        },
    );
    let chunks = futures_util::stream::iter(first.map(Ok)).chain(rest);
    Ok(csv_response(
        axum::body::Body::from_stream(chunks),
        "llm-meter-focus.csv",
    ))
}

fn request(params: SpendParams) -> Result<SpendRequest, ApiError> {
    Ok(params.into_request(Utc::now(), "")?)
}

/// Spend over `[from, to)`, grouped and filtered.
///
/// Rows carry their group keys (named as in `group_by`: `project`, `model`, `day`,
/// `tag:team`…), `requests`, `unpriced_requests`, `partially_priced_requests`, `tokens`
/// per bucket, `cost_usd` and, where a source reported a cost of its own,
/// `reported_cost_usd`; the answer carries `total_cost_usd`. Filter by tags with `tag.KEY=VALUE` (repeatable).
/// `format=focus` answers FinOps FOCUS 1.2 CSV: one row per charge period (the time
/// bucket of `group_by`, else a day), project, provider, model, tier and tag set, and
/// one per charge that is not tokens (web searches, sessions, images, request fees).
#[utoipa::path(
    get,
    path = "/v1/spend",
    tag = "spend",
    params(SpendQuery),
    responses(
        (status = 200, description = "Spend", body = super::openapi::SpendAnswer, content_type = "application/json"),
        (status = 200, description = "The same rows as CSV, or FOCUS CSV", content_type = "text/csv"),
        (status = 400, description = "A parameter is invalid; the message names it", body = super::openapi::ErrorBody),
        (status = 503, description = "The store is unreachable", body = super::openapi::ErrorBody)
    )
)]
async fn get_spend(State(state): State<AppState>, call: SpendCall) -> Result<Response, ApiError> {
    let params = call.read(&["stats"], &[Format::Json, Format::Csv, Format::Focus])?;
    let with_stats = match params.extra("stats").as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(bad_stats("true or false")),
    };
    let format = params.format;
    let request = request(params.spend)?;
    if with_stats && format != Format::Json {
        return Err(bad_stats(
            "per-request statistics are in the JSON answer only",
        ));
    }
    if with_stats && request.group_by.contains(&GroupBy::TokenType) {
        return Err(bad_stats(
            "a request is not split by token type: drop token_type from group_by",
        ));
    }
    if format == Format::Focus {
        focus::check_request(&request)?;
        return focus_response(state, &request).await;
    }
    let store = state.reader.as_ref();
    let report = spend::spend(store, &request).await?;
    if format == Format::Csv {
        return Ok(csv_response(
            spend::to_csv(&request, &report),
            "llm-meter-spend.csv",
        ));
    }
    let mut answer = spend::to_json(&report);
    if with_stats {
        let stats = stats::request_stats(store, &request).await?;
        attach_stats(&mut answer, &report, &stats);
    }
    Ok(Json(answer).into_response())
}

fn bad_stats(message: &str) -> ApiError {
    ParameterError::new("stats", message).into()
}

/// Adds each row's `stats` (cost and tokens per request: p50, p95, max).
fn attach_stats(
    answer: &mut serde_json::Value,
    report: &spend::SpendReport,
    stats: &BTreeMap<Vec<String>, stats::RequestStats>,
) {
    let Some(rows) = answer["rows"].as_array_mut() else {
        return;
    };
    for (row, json) in report.rows.iter().zip(rows) {
        let key: Vec<String> = row.group.iter().map(|(_, v)| v.clone()).collect();
        let Some(stats) = stats.get(&key) else {
            continue;
        };
        let cost = stats.cost.as_ref().map(|c| {
            serde_json::json!({
                "p50": c.p50.normalize().to_string(),
                "p95": c.p95.normalize().to_string(),
                "max": c.max.normalize().to_string(),
            })
        });
        json["stats"] = serde_json::json!({
            "cost_usd_per_request": cost,
            "tokens_per_request": stats.tokens,
        });
    }
}

#[derive(Serialize, utoipa::ToSchema)]
struct UnpricedAnswer {
    models: Vec<UnpricedEntry>,
}

/// A model (as records name it) seen without a price, and why.
#[derive(Serialize, utoipa::ToSchema)]
struct UnpricedEntry {
    provider: String,
    model: String,
    first_seen: DateTime<Utc>,
    last_seen: DateTime<Utc>,
    requests: u64,
    tokens: Tokens,
    reason: String,
}

/// Models seen without a price (all time unless `from`/`to` say otherwise).
#[utoipa::path(
    get,
    path = "/v1/unpriced",
    tag = "spend",
    params(
        ("from" = Option<String>, Query, description = "Start, inclusive (default: all time)"),
        ("to" = Option<String>, Query, description = "End, exclusive (default: all time)"),
        ("project" = Option<String>, Query, description = "Only these projects")
    ),
    responses(
        (status = 200, description = "Unpriced models, most requests first", body = UnpricedAnswer),
        (status = 400, description = "A parameter is invalid", body = super::openapi::ErrorBody)
    )
)]
async fn get_unpriced(
    State(state): State<AppState>,
    call: SpendCall,
) -> Result<Json<UnpricedAnswer>, ApiError> {
    let params = call.read(&[], &[])?;
    let mut spend = params.spend;
    spend
        .from
        .get_or_insert_with(|| "1970-01-01T00:00:00Z".into());
    spend.to.get_or_insert_with(|| {
        Utc.with_ymd_and_hms(2200, 1, 1, 0, 0, 0)
            .single()
            .unwrap_or_default()
            .to_rfc3339()
    });
    let unsupported = [
        ("group_by", spend.group_by.is_some()),
        ("provider", spend.provider.is_some()),
        ("model", spend.model.is_some()),
        ("tag", !spend.tags.is_empty()),
        ("format", params.format_given),
    ];
    if let Some((name, _)) = unsupported.iter().find(|(_, given)| *given) {
        return Err(
            ParameterError::new(name, "/v1/unpriced takes from, to, project and tz only").into(),
        );
    }
    let request = request(spend)?;
    let models = state
        .reader
        .unpriced(request.from, request.to, request.filter.projects.as_deref())
        .await?;
    Ok(Json(UnpricedAnswer {
        models: models
            .into_iter()
            .map(|m| UnpricedEntry {
                provider: m.provider,
                model: m.model,
                first_seen: m.first_seen,
                last_seen: m.last_seen,
                requests: m.requests,
                tokens: m.tokens,
                reason: m.reason,
            })
            .collect(),
    }))
}

/// What caching, batch pricing and negotiated prices saved against list price.
///
/// Per project, provider and model: `list_cost_usd` (every prompt token at the uncached
/// input rate, no batch, flex or negotiated discount) = `cost_usd` + `cache_savings_usd` +
/// `batch_savings_usd` + `negotiated_savings_usd`. Cache savings are negative when cache
/// write premiums outweighed the reads.
#[utoipa::path(
    get,
    path = "/v1/savings",
    tag = "spend",
    params(SpendQuery),
    responses(
        (status = 200, description = "Savings", body = crate::report::savings::SavingsReport),
        (status = 400, description = "A parameter is invalid", body = super::openapi::ErrorBody)
    )
)]
async fn get_savings(State(state): State<AppState>, call: SpendCall) -> Result<Response, ApiError> {
    let params = call.read(&[], &[Format::Json, Format::Csv])?;
    let request = request(params.spend)?;
    let report = savings::savings(state.reader.as_ref(), &request).await?;
    Ok(respond(
        params.format,
        &report,
        |report| savings::table(report).csv(),
        "llm-meter-savings.csv",
    ))
}

/// What the period's usage would have cost on `model` (of `provider`). The usage can be
/// narrowed with `project`, `tag.KEY`, `from_provider` and `from_model`.
///
/// Every record is priced again on the other model, with its own time, tier, batch flag,
/// caching and project. Cached tokens the other model has no cache price for count as
/// plain input. Records either side cannot price are counted, with a reason, and left
/// out of both costs.
#[utoipa::path(
    get,
    path = "/v1/whatif",
    tag = "spend",
    params(
        ("model" = String, Query, description = "The model to price the usage on"),
        ("provider" = Option<String>, Query, description = "Its provider (inferred from the sheets when omitted)"),
        ("from" = Option<String>, Query, description = "Start, inclusive (default: the start of this month)"),
        ("to" = Option<String>, Query, description = "End, exclusive (default: now)"),
        ("project" = Option<String>, Query, description = "Only these projects"),
        ("from_provider" = Option<String>, Query, description = "Only usage of this provider"),
        ("from_model" = Option<String>, Query, description = "Only usage of this model"),
        ("format" = Option<String>, Query, description = "json (default) or csv")
    ),
    responses(
        (status = 200, description = "Actual and what-if cost per model", body = crate::report::whatif::WhatIfReport),
        (status = 400, description = "A parameter is invalid", body = super::openapi::ErrorBody)
    )
)]
async fn get_what_if(State(state): State<AppState>, call: SpendCall) -> Result<Response, ApiError> {
    let params = call.read(
        &["from_provider", "from_model"],
        &[Format::Json, Format::Csv],
    )?;
    let mut spend = params.spend.clone();
    let target_model = spend
        .model
        .take()
        .ok_or_else(|| ParameterError::new("model", "the model to compare with is required"))?;
    let target_provider = spend.provider.take();
    spend.provider = params.extra("from_provider");
    spend.model = params.extra("from_model");
    let book = state.book.current();
    let target = WhatIfTarget::new(&book, &target_model, target_provider.as_deref())?;
    let request = request(spend)?;
    let report = whatif::what_if(state.reader.as_ref(), &book, &request, &target).await?;
    Ok(respond(
        params.format,
        &report,
        |report| whatif::table(report).csv(),
        "llm-meter-whatif.csv",
    ))
}

/// Routing advice: for each project and model, what the same requests would have cost on
/// each cheaper model of the same provider, cheapest first, exact. Cost only: nothing is
/// said of quality. Reads every event of the range and prices it on each candidate.
#[utoipa::path(
    get,
    path = "/v1/whatif/cheaper",
    tag = "spend",
    params(
        ("from" = Option<String>, Query, description = "Start, inclusive (default: the start of this month)"),
        ("to" = Option<String>, Query, description = "End, exclusive (default: now)"),
        ("project" = Option<String>, Query, description = "Only these projects"),
        ("provider" = Option<String>, Query, description = "Only usage of this provider"),
        ("model" = Option<String>, Query, description = "Only usage of this model")
    ),
    responses(
        (status = 200, description = "Each project and model with the cheaper models", body = crate::report::whatif::RoutingReport),
        (status = 400, description = "A parameter is invalid", body = super::openapi::ErrorBody)
    )
)]
async fn get_cheaper(
    State(state): State<AppState>,
    call: SpendCall,
) -> Result<Json<whatif::RoutingReport>, ApiError> {
    let params = call.read(&[], &[])?;
    if params.spend.group_by.is_some() || params.format_given {
        return Err(ParameterError::new(
            "group_by",
            "/v1/whatif/cheaper groups by project and model and answers JSON",
        )
        .into());
    }
    let request = request(params.spend)?;
    Ok(Json(
        whatif::cheaper_models(state.reader.as_ref(), &state.book.current(), &request).await?,
    ))
}
