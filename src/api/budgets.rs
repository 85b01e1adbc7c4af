//! Budgets: `POST|GET /v1/budgets`, `GET|PUT|DELETE /v1/budgets/{id}`,
//! `GET /v1/budgets/{id}/status`, `GET /v1/budgets/check`, `GET /v1/alerts`.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, AppState};
use crate::auth::Principal;
use crate::budget::engine::{BudgetStatus, parse_stored};
use crate::budget::{Budget, BudgetSpec, FieldError, WebhookFormat, new_budget_id, parse_spec};
use crate::store::{
    AlertKind, AlertQuery, AlertRecord, BudgetSource, DeliveryStatus, StoreError, StoredBudget,
};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_budget, list_budgets))
        .routes(routes!(get_budget, replace_budget, delete_budget))
        .routes(routes!(budget_status))
        .routes(routes!(check_budgets))
        .routes(routes!(list_alerts))
}

/// A budget as the API shows it: its id, spec (webhook secrets masked, except in the
/// answer that created them) and where it came from.
#[derive(Serialize, utoipa::ToSchema)]
struct BudgetView {
    id: String,
    #[serde(flatten)]
    spec: BudgetSpec,
    /// `api` or `config` (declared in the config file, updated at each start).
    source: BudgetSource,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct BudgetList {
    budgets: Vec<BudgetView>,
}

/// How a secret is shown after its budget was created. Sent back (a GET body PUT as it
/// is), it means "keep the secret".
const MASKED_SECRET: &str = "whsec_********";

/// How much of a budget a caller sees.
#[derive(Clone, Copy, PartialEq)]
enum Reveal {
    /// Its creator, once: the generated secrets.
    Secrets,
    /// An admin: everything but the secrets.
    Urls,
    /// Readers: webhook hosts only (a Slack URL is itself a credential).
    Hosts,
}

fn reveal_for(principal: &Principal) -> Reveal {
    if principal.role == crate::auth::Role::Admin {
        Reveal::Urls
    } else {
        Reveal::Hosts
    }
}

fn view(stored: &StoredBudget, spec: BudgetSpec, reveal: Reveal) -> BudgetView {
    let mut spec = spec;
    for webhook in &mut spec.webhooks {
        if reveal != Reveal::Secrets && webhook.secret.is_some() {
            webhook.secret = Some(MASKED_SECRET.into());
        }
        if reveal == Reveal::Hosts {
            let host = reqwest::Url::parse(&webhook.url)
                .ok()
                .and_then(|u| Some(format!("{}://{}/…", u.scheme(), u.host_str()?)))
                .unwrap_or_else(|| "…".into());
            webhook.url = host;
            webhook.secret = None;
        }
    }
    BudgetView {
        id: stored.id.clone(),
        spec,
        source: stored.source,
        created_at: stored.created_at,
        updated_at: stored.updated_at,
    }
}

fn invalid(error: FieldError) -> ApiError {
    ApiError::bad_request("invalid_budget", error.to_string())
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("no budget {id:?}"))
}

impl From<crate::budget::FieldError> for ApiError {
    fn from(error: FieldError) -> Self {
        invalid(error)
    }
}

/// Reads and checks a budget body: fields, webhook targets; generates missing secrets of
/// JSON webhooks, keeping those of `previous` webhooks with the same URL.
fn checked_spec(
    state: &AppState,
    body: &[u8],
    previous: Option<&BudgetSpec>,
) -> Result<Budget, ApiError> {
    let mut spec = parse_spec(body)?;
    for (index, webhook) in spec.webhooks.iter_mut().enumerate() {
        state
            .guard
            .check_url(&webhook.url)
            .map_err(|message| FieldError {
                field: format!("webhooks[{index}].url"),
                message,
            })?;
        if webhook.secret.as_deref() == Some(MASKED_SECRET) {
            webhook.secret = None;
        }
        if webhook.format == WebhookFormat::Json && webhook.secret.is_none() {
            let kept = previous.and_then(|p| {
                p.webhooks
                    .iter()
                    .find(|w| w.url == webhook.url)
                    .and_then(|w| w.secret.clone())
            });
            webhook.secret = Some(kept.unwrap_or_else(crate::webhook::new_secret));
        }
    }
    Ok(Budget::new(String::new(), spec)?)
}

fn conflict(error: StoreError, name: &str) -> ApiError {
    match error {
        StoreError::Conflict(_) => ApiError::new(
            StatusCode::CONFLICT,
            "name_taken",
            format!("a budget is already named {name:?}"),
        ),
        other => other.into(),
    }
}

/// Evaluates a budget now, so thresholds it starts over fire at once.
async fn evaluate_now(state: &AppState, id: &str) {
    let Ok(Some(stored)) = state.store.budget(id).await else {
        return;
    };
    if let Ok(budget) = parse_stored(&stored)
        && let Err(error) = state.budgets.evaluate(&budget, Utc::now()).await
    {
        tracing::warn!(message = "Evaluating a new budget failed.", budget = %budget.spec.name, %error);
    }
}

/// Create a budget.
///
/// Webhook secrets are generated for `json` webhooks that give none, and shown in this
/// answer only. A budget whose period is already over a threshold alerts at once.
#[utoipa::path(
    post,
    path = "/v1/budgets",
    tag = "budgets",
    request_body = BudgetSpec,
    responses(
        (status = 201, description = "Created", body = BudgetView),
        (status = 400, description = "A field is invalid; the message names it", body = super::openapi::ErrorBody),
        (status = 409, description = "The name is taken", body = super::openapi::ErrorBody)
    )
)]
async fn create_budget(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<BudgetView>), ApiError> {
    let budget = checked_spec(&state, &body?, None)?;
    let now = Utc::now();
    let stored = StoredBudget {
        id: new_budget_id(),
        name: budget.spec.name.clone(),
        spec_json: serde_json::to_string(&budget.spec)
            .map_err(|e| ApiError::internal(e.to_string()))?,
        source: BudgetSource::Api,
        created_at: now,
        updated_at: now,
    };
    state
        .store
        .insert_budget(&stored)
        .await
        .map_err(|e| conflict(e, &stored.name))?;
    evaluate_now(&state, &stored.id).await;
    Ok((
        StatusCode::CREATED,
        Json(view(&stored, budget.spec, Reveal::Secrets)),
    ))
}

/// Every budget.
#[utoipa::path(
    get,
    path = "/v1/budgets",
    tag = "budgets",
    responses((status = 200, description = "Budgets, by name", body = BudgetList))
)]
async fn list_budgets(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
) -> Result<Json<BudgetList>, ApiError> {
    let budgets = state
        .store
        .budgets()
        .await?
        .iter()
        .filter_map(|stored| {
            let spec: BudgetSpec = serde_json::from_str(&stored.spec_json).ok()?;
            visible(&principal, &spec).then(|| view(stored, spec, reveal_for(&principal)))
        })
        .collect();
    Ok(Json(BudgetList { budgets }))
}

/// Whether a principal may see a budget: one scoped to projects sees the budgets of
/// those projects only (not the ones that span every project).
fn visible(principal: &Principal, spec: &BudgetSpec) -> bool {
    principal.projects.is_none()
        || spec
            .project
            .as_deref()
            .is_some_and(|p| principal.may_access(p))
}

/// Whether a principal may see an alert: by the project its budget had when it fired.
fn alert_visible(principal: &Principal, alert: &crate::store::AlertRecord) -> bool {
    principal.projects.is_none()
        || alert
            .project
            .as_deref()
            .is_some_and(|p| principal.may_access(p))
}

/// Whether a path or parameter could be a budget id at all (what `new_budget_id` makes):
/// anything else is looked up nowhere.
fn is_budget_id(id: &str) -> bool {
    id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn hidden_budget(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "forbidden_project",
        format!("this token may not see budget {id}: it is not one of its projects'"),
    )
}

async fn stored_budget(
    state: &AppState,
    principal: &Principal,
    id: &str,
) -> Result<(StoredBudget, BudgetSpec), ApiError> {
    if !is_budget_id(id) {
        return Err(not_found(id));
    }
    let stored = state.store.budget(id).await?.ok_or_else(|| not_found(id))?;
    let spec: BudgetSpec = serde_json::from_str(&stored.spec_json)
        .map_err(|e| ApiError::internal(format!("stored budget {id}: {e}")))?;
    if !visible(principal, &spec) {
        return Err(hidden_budget(id));
    }
    Ok((stored, spec))
}

/// One budget.
#[utoipa::path(
    get,
    path = "/v1/budgets/{id}",
    tag = "budgets",
    params(("id" = String, Path, description = "The budget's id")),
    responses(
        (status = 200, description = "The budget", body = BudgetView),
        (status = 404, description = "No such budget", body = super::openapi::ErrorBody)
    )
)]
async fn get_budget(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<BudgetView>, ApiError> {
    let (stored, spec) = stored_budget(&state, &principal, &id).await?;
    Ok(Json(view(&stored, spec, reveal_for(&principal))))
}

/// Replace a budget. Secrets of webhooks whose URL is unchanged are kept when not given.
#[utoipa::path(
    put,
    path = "/v1/budgets/{id}",
    tag = "budgets",
    params(("id" = String, Path, description = "The budget's id")),
    request_body = BudgetSpec,
    responses(
        (status = 200, description = "Replaced", body = BudgetView),
        (status = 400, description = "A field is invalid", body = super::openapi::ErrorBody),
        (status = 404, description = "No such budget", body = super::openapi::ErrorBody),
        (status = 409, description = "The name is taken", body = super::openapi::ErrorBody)
    )
)]
async fn replace_budget(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<BudgetView>, ApiError> {
    let (stored, previous) = stored_budget(&state, &Principal::open(), &id).await?;
    let budget = checked_spec(&state, &body?, Some(&previous))?;
    let updated = StoredBudget {
        name: budget.spec.name.clone(),
        spec_json: serde_json::to_string(&budget.spec)
            .map_err(|e| ApiError::internal(e.to_string()))?,
        source: BudgetSource::Api,
        updated_at: Utc::now(),
        ..stored
    };
    if !state
        .store
        .update_budget(&updated)
        .await
        .map_err(|e| conflict(e, &updated.name))?
    {
        return Err(not_found(&id));
    }
    evaluate_now(&state, &id).await;
    Ok(Json(view(&updated, budget.spec, Reveal::Urls)))
}

/// Delete a budget. Its alert history stays.
#[utoipa::path(
    delete,
    path = "/v1/budgets/{id}",
    tag = "budgets",
    params(("id" = String, Path, description = "The budget's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such budget", body = super::openapi::ErrorBody)
    )
)]
async fn delete_budget(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if is_budget_id(&id) && state.store.delete_budget(&id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found(&id))
    }
}

/// An alert as the API shows it.
#[derive(Serialize, utoipa::ToSchema)]
struct AlertView {
    id: String,
    budget_id: String,
    budget: String,
    /// `threshold` or `forecast`.
    kind: AlertKind,
    /// `0.8`, `usd:450` or `forecast`.
    threshold: String,
    threshold_usd: Option<String>,
    period_start: DateTime<Utc>,
    period_end: DateTime<Utc>,
    spend_usd: String,
    limit_usd: String,
    forecast_usd: Option<String>,
    fired_at: DateTime<Utc>,
    deliveries: Vec<DeliveryView>,
}

/// Where an alert's webhooks stand.
#[derive(Serialize, utoipa::ToSchema)]
struct DeliveryView {
    id: String,
    /// The target's host (the URL may carry a token).
    host: String,
    /// `pending`, `delivered` or `expired`.
    status: DeliveryStatus,
    attempts: u32,
    last_error: Option<String>,
    delivered_at: Option<DateTime<Utc>>,
}

async fn alert_views(
    state: &AppState,
    alerts: Vec<AlertRecord>,
) -> Result<Vec<AlertView>, ApiError> {
    let mut views = Vec::with_capacity(alerts.len());
    for alert in alerts {
        let deliveries = state
            .store
            .deliveries(Some(&alert.id))
            .await?
            .into_iter()
            .map(|d| DeliveryView {
                host: reqwest::Url::parse(&d.url)
                    .ok()
                    .and_then(|u| u.host_str().map(str::to_owned))
                    .unwrap_or_default(),
                id: d.id,
                status: d.status,
                attempts: d.attempts,
                // Redacted again on the way out: errors stored before it was done on the
                // way in may hold the URL.
                last_error: d
                    .last_error
                    .map(|e| crate::webhook::redact_target(&e, &d.url)),
                delivered_at: d.delivered_at,
            })
            .collect();
        let usd = |amount: rust_decimal::Decimal| amount.normalize().to_string();
        views.push(AlertView {
            id: alert.id,
            budget_id: alert.budget_id,
            budget: alert.budget_name,
            kind: alert.kind,
            // `0.8@400` is stored (the fraction and the amount it meant); `0.8` is shown.
            threshold: match alert.threshold_key.split_once('@') {
                Some((fraction, _)) => fraction.to_owned(),
                None => alert.threshold_key,
            },
            threshold_usd: alert.threshold.map(usd),
            period_start: alert.period_start,
            period_end: alert.period_end,
            spend_usd: usd(alert.spend),
            limit_usd: usd(alert.limit),
            forecast_usd: alert.forecast.map(usd),
            fired_at: alert.fired_at,
            deliveries,
        });
    }
    Ok(views)
}

#[derive(Serialize, utoipa::ToSchema)]
struct StatusAnswer {
    #[serde(flatten)]
    status: BudgetStatus,
    /// The forecast method, for people.
    forecast_method: &'static str,
    /// Alerts fired in the current period, newest first.
    alerts: Vec<AlertView>,
}

const FORECAST_METHOD: &str = "spend so far plus the trailing rate (spend over the last 7 days of the period, or all of it if shorter, per second) times the time left; none before a tenth of the period or a day has passed";

/// A budget's current period, spend, limit, utilization, forecast and alerts.
#[utoipa::path(
    get,
    path = "/v1/budgets/{id}/status",
    tag = "budgets",
    params(("id" = String, Path, description = "The budget's id")),
    responses(
        (status = 200, description = "Status now", body = StatusAnswer),
        (status = 404, description = "No such budget", body = super::openapi::ErrorBody)
    )
)]
async fn budget_status(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<StatusAnswer>, ApiError> {
    let (stored, _) = stored_budget(&state, &principal, &id).await?;
    let budget = parse_stored(&stored).map_err(ApiError::internal)?;
    let status = state.budgets.status(&budget, Utc::now()).await?;
    let alerts = state
        .store
        .alerts(&AlertQuery {
            budget_id: Some(id),
            from: None,
            to: None,
            limit: 1000,
        })
        .await?
        .into_iter()
        .filter(|a| a.period_start == status.period_start && alert_visible(&principal, a))
        .collect();
    Ok(Json(StatusAnswer {
        status,
        forecast_method: FORECAST_METHOD,
        alerts: alert_views(&state, alerts).await?,
    }))
}

#[derive(Serialize, utoipa::ToSchema)]
struct CheckAnswer {
    /// False when a hard budget covering the project (and model) has reached its limit.
    allowed: bool,
    budgets: Vec<BudgetStatus>,
}

/// May a project (and model) spend now? For a proxy that blocks requests over hard
/// budgets. Answers from the statuses of the last evaluation (seconds old at most after
/// ingest, `[alerts] evaluate_interval` at worst).
#[utoipa::path(
    get,
    path = "/v1/budgets/check",
    tag = "budgets",
    params(
        ("project" = String, Query, description = "The project about to spend"),
        ("model" = Option<String>, Query, description = "The model it will use (the sheet's id)")
    ),
    responses(
        (status = 200, description = "Whether to allow, and the budgets that cover it", body = CheckAnswer),
        (status = 400, description = "No project", body = super::openapi::ErrorBody)
    )
)]
async fn check_budgets(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    query: Result<Query<BTreeMap<String, String>>, QueryRejection>,
) -> Result<Json<CheckAnswer>, ApiError> {
    let Query(params) =
        query.map_err(|r| ApiError::bad_request("invalid_parameter", r.body_text()))?;
    if let Some(unknown) = params
        .keys()
        .find(|k| !["project", "provider", "model"].contains(&k.as_str()))
    {
        return Err(ApiError::bad_request(
            "invalid_parameter",
            format!("invalid {unknown}: unknown parameter"),
        ));
    }
    let project = params
        .get("project")
        .filter(|p| !p.is_empty())
        .ok_or_else(|| ApiError::bad_request("invalid_parameter", "invalid project: required"))?;
    if !principal.may_access(project) {
        return Err(crate::auth::ForbiddenProject(project.clone()).into());
    }
    // The model as budgets name it (the sheet's id), whatever spelling the caller uses:
    // `gpt-5.2-2025-12-11` and `openai/gpt-5.2` count toward a `gpt-5.2` budget.
    let mut provider = params.get("provider").cloned();
    let mut model = params.get("model").cloned();
    if let Some(name) = &model {
        let book = state.book.current();
        let inferred = provider.clone().or_else(|| book.infer_provider(name));
        if let Some(resolved) = inferred.and_then(|p| book.resolve(&p, name)) {
            provider = Some(resolved.model.provider.clone());
            model = Some(resolved.model.id.clone());
        }
    }
    let cached = state.budgets.cached_statuses();
    let now = Utc::now();
    let mut statuses = Vec::new();
    let mut allowed = true;
    for budget in state.budgets.budgets().await? {
        if !budget.may_cover(project, provider.as_deref(), model.as_deref()) {
            continue;
        }
        let status = match cached.get(&budget.id) {
            Some(status) if status.period_end > now => status.clone(),
            _ => state.budgets.evaluate(&budget, now).await?,
        };
        // Every covering budget decides; a scoped caller sees only its projects' ones.
        allowed &= !(status.hard && status.exceeded);
        if visible(&principal, &budget.spec) {
            statuses.push(status);
        }
    }
    Ok(Json(CheckAnswer {
        allowed,
        budgets: statuses,
    }))
}

#[derive(Serialize, utoipa::ToSchema)]
struct AlertList {
    alerts: Vec<AlertView>,
}

/// Alert history, newest first.
#[utoipa::path(
    get,
    path = "/v1/alerts",
    tag = "budgets",
    params(
        ("budget" = Option<String>, Query, description = "Only this budget's (its id)"),
        ("from" = Option<String>, Query, description = "Fired at or after (RFC 3339)"),
        ("to" = Option<String>, Query, description = "Fired before (RFC 3339)"),
        ("limit" = Option<u32>, Query, description = "At most this many (default 100, at most 1000)")
    ),
    responses(
        (status = 200, description = "Alerts", body = AlertList),
        (status = 400, description = "A parameter is invalid", body = super::openapi::ErrorBody)
    )
)]
async fn list_alerts(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    query: Result<Query<BTreeMap<String, String>>, QueryRejection>,
) -> Result<Json<AlertList>, ApiError> {
    let Query(params) =
        query.map_err(|r| ApiError::bad_request("invalid_parameter", r.body_text()))?;
    let bad = |parameter: &str, message: String| {
        ApiError::bad_request(
            "invalid_parameter",
            format!("invalid {parameter}: {message}"),
        )
    };
    let mut query = AlertQuery {
        limit: 100,
        ..AlertQuery::default()
    };
    for (name, value) in &params {
        match name.as_str() {
            "budget" if is_budget_id(value) => query.budget_id = Some(value.clone()),
            "budget" => return Err(bad("budget", "not a budget id".into())),
            "from" | "to" => {
                let time = crate::report::params::parse_time(name, value)
                    .map_err(|e| bad(name, e.message))?;
                if name == "from" {
                    query.from = Some(time);
                } else {
                    query.to = Some(time);
                }
            }
            "limit" => {
                query.limit = value
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=1000).contains(n))
                    .ok_or_else(|| bad("limit", "a number from 1 to 1000".into()))?;
            }
            other => return Err(bad(other, "unknown parameter".into())),
        }
    }
    let wanted = query.limit as usize;
    if principal.projects.is_some() {
        // Others' alerts are dropped below: read as many as allowed, then cut.
        query.limit = 1000;
    }
    if principal.projects.is_some()
        && let Some(id) = &query.budget_id
    {
        // Asking for a budget it cannot see is refused like reading the budget.
        stored_budget(&state, &principal, id).await?;
    }
    let mut alerts = state.store.alerts(&query).await?;
    if principal.projects.is_some() {
        // A scoped reader sees the alerts fired for its projects: by the project the
        // budget had when each fired, so moving a budget moves none of its history.
        alerts.retain(|alert| alert_visible(&principal, alert));
        alerts.truncate(wanted);
    }
    Ok(Json(AlertList {
        alerts: alert_views(&state, alerts).await?,
    }))
}
