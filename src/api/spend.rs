//! Spend analytics: `GET /v1/spend` (JSON, CSV or FOCUS), `GET /v1/unpriced`,
//! `GET /v1/savings` and `GET /v1/whatif`. Parameters are validated by `crate::spend`,
//! the same code `llm-meter report` uses; a bad one is a 400 that names it.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, TimeZone, Utc};
use serde::Serialize;

use super::{ApiError, AppState};
use crate::analysis::{self, WhatIfTarget};
use crate::spend::{self, ParameterError, SpendParams, SpendRequest};
use crate::usage::Tokens;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/spend", get(get_spend))
        .route("/v1/unpriced", get(get_unpriced))
        .route("/v1/savings", get(get_savings))
        .route("/v1/whatif", get(get_what_if))
}

/// Query parameters as given: the spend parameters, `format`, and any extra names the
/// endpoint accepts. Anything else is an error, so a typo never silently widens a query.
struct QueryParams {
    spend: SpendParams,
    format: Option<String>,
    extra: Vec<(String, String)>,
}

impl QueryParams {
    fn parse(
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
async fn get_spend(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let params = QueryParams::parse(query, &[])?;
    let format = negotiate(
        params.format.as_deref(),
        &headers,
        &[Format::Json, Format::Csv, Format::Focus],
    )?;
    let request = request(params.spend)?;
    if format == Format::Focus {
        let rows = crate::focus::rows(state.store.as_ref(), &request).await?;
        return Ok(csv_response(
            crate::focus::to_csv(&rows, &state.book),
            "llm-meter-focus.csv",
        ));
    }
    let report = spend::spend(state.store.as_ref(), &request).await?;
    Ok(match format {
        Format::Csv => csv_response(spend::to_csv(&request, &report), "llm-meter-spend.csv"),
        _ => Json(spend::to_json(&report)).into_response(),
    })
}

#[derive(Serialize)]
struct UnpricedAnswer {
    models: Vec<UnpricedEntry>,
}

#[derive(Serialize)]
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
async fn get_unpriced(
    State(state): State<AppState>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<UnpricedAnswer>, ApiError> {
    let params = QueryParams::parse(query, &[])?;
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
async fn get_savings(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let params = QueryParams::parse(query, &[])?;
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
async fn get_what_if(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let params = QueryParams::parse(query, &["from_provider", "from_model"])?;
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
