//! Spend analytics: `GET /v1/spend` (JSON, CSV or FOCUS), `GET /v1/unpriced`,
//! `GET /v1/savings` and `GET /v1/whatif`. Parameters are validated by `crate::spend`,
//! the same code `llm-meter report` uses; a bad one is a 400 that names it.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Extension, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, TimeZone, Utc};
use serde::Serialize;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, AppState};
use crate::analysis::{self, WhatIfTarget};
use crate::auth::Principal;
use crate::spend::{self, ParameterError, SpendParams, SpendRequest};
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

/// Query parameters as given: the spend parameters, `format`, and any extra names the
/// endpoint accepts. Anything else is an error, so a typo never silently widens a query.
struct QueryParams {
    spend: SpendParams,
    format: Option<String>,
    extra: Vec<(String, String)>,
}

impl QueryParams {
    /// Reads the parameters and narrows `project` to what `principal` may see.
    fn parse(
        principal: &Principal,
        query: Result<Query<Vec<(String, String)>>, QueryRejection>,
        extra_names: &[&str],
    ) -> Result<QueryParams, ApiError> {
        let Query(pairs) = query.map_err(|rejection| {
            ApiError::bad_request("invalid_parameter", rejection.body_text())
        })?;
        let mut params = QueryParams {
            spend: SpendParams::default(),
            format: None,
            extra: Vec::new(),
        };
        for (name, value) in pairs {
            let spend = &mut params.spend;
            match name.as_str() {
                "from" => spend.from = Some(value),
                "to" => spend.to = Some(value),
                "group_by" => spend.group_by = Some(value),
                "project" => spend.projects.push(value),
                "provider" => spend.provider = Some(value),
                "model" => spend.model = Some(value),
                "tz" => spend.tz = Some(value),
                "format" => params.format = Some(value),
                other => match other.strip_prefix("tag.") {
                    Some(key) => spend.tags.push((key.to_owned(), value)),
                    None if extra_names.contains(&other) => params.extra.push((name, value)),
                    None => {
                        return Err(invalid(ParameterError {
                            parameter: name.clone(),
                            message: "unknown parameter".into(),
                        }));
                    }
                },
            }
        }
        params.spend.projects = principal.scope(std::mem::take(&mut params.spend.projects))?;
        Ok(params)
    }

    fn extra(&self, name: &str) -> Option<String> {
        self.extra
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    }
}

fn invalid(error: ParameterError) -> ApiError {
    ApiError::bad_request("invalid_parameter", error.to_string())
}

/// The answer's format: `format=json|csv|focus`, else `Accept: text/csv`, else JSON.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Format {
    Json,
    Csv,
    Focus,
}

fn negotiate(
    format: Option<&str>,
    headers: &HeaderMap,
    allowed: &[Format],
) -> Result<Format, ApiError> {
    let format = match format {
        Some("json") => Format::Json,
        Some("csv") => Format::Csv,
        Some("focus") => Format::Focus,
        Some(other) => {
            return Err(invalid(ParameterError {
                parameter: "format".into(),
                message: format!("{other:?} is not one of json, csv, focus"),
            }));
        }
        None => {
            let accept = headers
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            if accept.contains("text/csv") {
                Format::Csv
            } else {
                Format::Json
            }
        }
    };
    if allowed.contains(&format) {
        Ok(format)
    } else {
        Err(invalid(ParameterError {
            parameter: "format".into(),
            message: "this endpoint answers json or csv".into(),
        }))
    }
}

fn csv_response(body: String, filename: &str) -> Response {
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

fn request(params: SpendParams) -> Result<SpendRequest, ApiError> {
    params.into_request(Utc::now(), "").map_err(invalid)
}

/// Spend over `[from, to)`, grouped and filtered.
///
/// Rows carry their group keys (named as in `group_by`: `project`, `model`, `day`,
/// `tag:team`…), `requests`, `unpriced_requests`, `tokens` per bucket and `cost_usd`; the
/// answer carries `total_cost_usd`. Filter by tags with `tag.KEY=VALUE` (repeatable).
/// `format=focus` answers FinOps FOCUS 1.2 CSV: one row per charge period (the time
/// bucket of `group_by`, else a day), project, provider, model, tier and tag set.
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
async fn get_spend(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let params = QueryParams::parse(&principal, query, &["stats"])?;
    let format = negotiate(
        params.format.as_deref(),
        &headers,
        &[Format::Json, Format::Csv, Format::Focus],
    )?;
    let with_stats = match params.extra("stats").as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(bad_stats("true or false")),
    };
    let request = request(params.spend)?;
    if with_stats && format != Format::Json {
        return Err(bad_stats(
            "per-request statistics are in the JSON answer only",
        ));
    }
    if with_stats && request.group_by.contains(&spend::GroupBy::TokenType) {
        return Err(bad_stats(
            "a request is not split by token type: drop token_type from group_by",
        ));
    }
    if format == Format::Focus {
        crate::focus::check_request(&request).map_err(invalid)?;
        let rows = crate::focus::rows(state.store.as_ref(), &request).await?;
        return Ok(csv_response(
            crate::focus::to_csv(&rows, &state.book),
            "llm-meter-focus.csv",
        ));
    }
    let report = spend::spend(state.store.as_ref(), &request).await?;
    if format == Format::Csv {
        return Ok(csv_response(
            spend::to_csv(&request, &report),
            "llm-meter-spend.csv",
        ));
    }
    let mut answer = spend::to_json(&report);
    if with_stats {
        let stats = analysis::request_stats(state.store.as_ref(), &request).await?;
        attach_stats(&mut answer, &report, &stats);
    }
    Ok(Json(answer).into_response())
}

fn bad_stats(message: &str) -> ApiError {
    invalid(ParameterError {
        parameter: "stats".into(),
        message: message.into(),
    })
}

/// Adds each row's `stats` (cost and tokens per request: p50, p95, max).
fn attach_stats(
    answer: &mut serde_json::Value,
    report: &spend::SpendReport,
    stats: &BTreeMap<Vec<String>, analysis::RequestStats>,
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
    Extension(principal): Extension<Principal>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<UnpricedAnswer>, ApiError> {
    let params = QueryParams::parse(&principal, query, &[])?;
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
        ("format", params.format.is_some()),
    ];
    if let Some((name, _)) = unsupported.iter().find(|(_, given)| *given) {
        return Err(invalid(ParameterError {
            parameter: (*name).into(),
            message: "/v1/unpriced takes from, to, project and tz only".into(),
        }));
    }
    let request = request(spend)?;
    let models = state
        .store
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
        (status = 200, description = "Savings", body = crate::analysis::SavingsReport),
        (status = 400, description = "A parameter is invalid", body = super::openapi::ErrorBody)
    )
)]
async fn get_savings(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let params = QueryParams::parse(&principal, query, &[])?;
    let format = negotiate(
        params.format.as_deref(),
        &headers,
        &[Format::Json, Format::Csv],
    )?;
    let request = request(params.spend)?;
    let report = analysis::savings(state.store.as_ref(), &request).await?;
    Ok(match format {
        Format::Csv => {
            let (header, rows, _) = analysis::savings_table(&report);
            csv_response(spend::csv_text(&header, &rows), "llm-meter-savings.csv")
        }
        _ => Json(report).into_response(),
    })
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
        (status = 200, description = "Actual and what-if cost per model", body = crate::analysis::WhatIfReport),
        (status = 400, description = "A parameter is invalid", body = super::openapi::ErrorBody)
    )
)]
async fn get_what_if(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let params = QueryParams::parse(&principal, query, &["from_provider", "from_model"])?;
    let format = negotiate(
        params.format.as_deref(),
        &headers,
        &[Format::Json, Format::Csv],
    )?;
    let mut spend = params.spend.clone();
    let target_model = spend.model.take().ok_or_else(|| {
        invalid(ParameterError {
            parameter: "model".into(),
            message: "the model to compare with is required".into(),
        })
    })?;
    let target_provider = spend.provider.take();
    spend.provider = params.extra("from_provider");
    spend.model = params.extra("from_model");
    let target = WhatIfTarget::new(&state.book, &target_model, target_provider.as_deref())
        .map_err(invalid)?;
    let request = request(spend)?;
    let report = analysis::what_if(state.store.as_ref(), &state.book, &request, &target).await?;
    Ok(match format {
        Format::Csv => {
            let (header, rows, _) = analysis::what_if_table(&report);
            csv_response(spend::csv_text(&header, &rows), "llm-meter-whatif.csv")
        }
        _ => Json(report).into_response(),
    })
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
        (status = 200, description = "Each project and model with the cheaper models", body = crate::analysis::RoutingReport),
        (status = 400, description = "A parameter is invalid", body = super::openapi::ErrorBody)
    )
)]
async fn get_cheaper(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<analysis::RoutingReport>, ApiError> {
    let params = QueryParams::parse(&principal, query, &[])?;
    if params.spend.group_by.is_some() || params.format.is_some() {
        return Err(invalid(ParameterError {
            parameter: "group_by".into(),
            message: "/v1/whatif/cheaper groups by project and model and answers JSON".into(),
        }));
    }
    let request = request(params.spend)?;
    Ok(Json(
        analysis::cheaper_models(state.store.as_ref(), &state.book, &request).await?,
    ))
}
