//! The HTTP API: one module per resource, merged here; one error type that becomes a
//! `{"error":{"code","message"}}` response with the right status.

mod budgets;
mod health;
mod openapi;
mod prices;
mod spend;
mod traces;
mod usage;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;
use utoipa_axum::router::OpenApiRouter;

use crate::ingest::{IngestError, Pipeline};
use crate::metrics::Metrics;
use crate::pricing::LiveBook;
use crate::store::{Store, StoreError};

/// Request limits: `[limits]` in the config.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest request body, in bytes (413 above it).
    pub max_body_bytes: usize,
    /// Most records in one request (413 above it).
    pub max_records_per_request: usize,
    /// How long a request may take, reading the body included (408 after it): slow
    /// clients cannot hold a connection's worth of memory for long.
    #[serde(with = "crate::duration_text")]
    pub request_timeout: Duration,
    /// Sustained requests per second per token (per client address without tokens);
    /// above it, 429 with `Retry-After`.
    pub requests_per_second: u32,
    /// Requests a token may make at once above the sustained rate.
    pub burst: u32,
    /// Failed authentications per client address and token id and minute; past them
    /// further failures get 429 (a good token is never held off).
    pub failed_auth_per_minute: u32,
    /// Connections open at once; past it a new connection is closed at once (idle and
    /// trickling clients cannot exhaust file descriptors; `/healthz` keeps answering).
    pub max_connections: usize,
    /// Connections one client address may hold open at once, so that one client cannot
    /// take every connection (a proxy in front is one address: raise it there).
    pub max_connections_per_address: usize,
    /// How long a client may take to send a request's headers, and how long a kept-alive
    /// connection may sit idle between requests.
    #[serde(with = "crate::duration_text")]
    pub header_read_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 10 * 1024 * 1024,
            max_records_per_request: 100_000,
            request_timeout: Duration::from_secs(30),
            requests_per_second: 200,
            burst: 400,
            failed_auth_per_minute: 60,
            max_connections: 1024,
            max_connections_per_address: 256,
            header_read_timeout: Duration::from_secs(10),
        }
    }
}

impl Limits {
    /// 413 when a request holds more records (or spans) than one may.
    pub fn check_records(&self, count: usize, what: &str) -> Result<(), ApiError> {
        if count <= self.max_records_per_request {
            return Ok(());
        }
        Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_records",
            format!(
                "{count} {what}; at most {} are accepted",
                self.max_records_per_request
            ),
        ))
    }
}

/// Requests per token (or per client address when no token is needed).
pub type RateLimiter = governor::DefaultKeyedRateLimiter<String>;

pub fn rate_limiter(limits: &Limits) -> RateLimiter {
    let per_second = std::num::NonZeroU32::new(limits.requests_per_second.max(1))
        .unwrap_or(std::num::NonZeroU32::MIN);
    let burst = std::num::NonZeroU32::new(limits.burst.max(1)).unwrap_or(std::num::NonZeroU32::MIN);
    governor::RateLimiter::keyed(governor::Quota::per_second(per_second).allow_burst(burst))
}

/// What handlers share.
#[derive(Clone)]
pub struct AppState {
    /// Writes, budgets, alerts, tokens: always the primary.
    pub store: Arc<dyn Store>,
    /// Spend queries and exports: a read replica when `[store] read_url` names one.
    pub reader: Arc<dyn Store>,
    pub pipeline: Pipeline,
    pub book: LiveBook,
    pub metrics: Arc<Metrics>,
    pub default_project: Arc<str>,
    pub limits: Limits,
    pub budgets: Arc<crate::budget::engine::Engine>,
    pub guard: Arc<crate::webhook::TargetGuard>,
    pub auth: Arc<crate::auth::Authenticator>,
    pub rate_limiter: Arc<RateLimiter>,
    pub failed_auth: Arc<crate::auth::FailedAuth>,
    /// `GET /metrics` without a token (`[server] metrics_open`).
    pub metrics_open: bool,
}

/// Every route, with the OpenAPI document they make up.
pub fn routes() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(openapi::base())
        .merge(health::router())
        .merge(usage::router())
        .merge(traces::router())
        .merge(spend::router())
        .merge(budgets::router())
        .merge(prices::router())
        .merge(openapi::router())
        .split_for_parts()
}

/// Builds the router with every route, the body limit, timeouts and HTTP metrics.
pub fn router(state: AppState) -> Router {
    let limits = state.limits.clone();
    let (routes, document) = routes();
    let document = Arc::new(document.to_json().unwrap_or_default());
    routes
        .layer(axum::Extension(document))
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(middleware::from_fn_with_state(state.clone(), authorize))
        .layer(middleware::from_fn_with_state(state.clone(), track_metrics))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            ApiError::internal("the request could not be handled").into_response()
        }))
        .with_state(state)
}

/// Serves until `shutdown` resolves, then finishes the requests in flight.
///
/// Each connection is HTTP/1.1 with a header-read timeout (which also ends kept-alive
/// connections idle for as long), and at most `max_connections` are open at once: a
/// connection past it is closed as soon as it is accepted.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = state.limits.clone();
    let metrics = state.metrics.clone();
    let app = router(state);
    let open = Arc::new(OpenConnections::default());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, say: wait a moment instead of spinning.
                    tracing::warn!(message = "Accepting a connection failed.", %error);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(permit) = OpenConnections::admit(&open, remote.ip(), &limits) else {
            metrics.http_connections_refused.inc();
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(
            move |mut request: hyper::Request<hyper::body::Incoming>| {
                request
                    .extensions_mut()
                    .insert(axum::extract::ConnectInfo(remote));
                tower::ServiceExt::oneshot(app.clone(), request)
            },
        );
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _ = connection.await;
            drop(permit);
        });
    }
    // Requests in flight finish (each within the request timeout); idle connections close.
    let _ = tokio::time::timeout(
        limits.request_timeout + Duration::from_secs(1),
        graceful.shutdown(),
    )
    .await;
    Ok(())
}

/// The connections open now, in all and per client address.
#[derive(Default)]
struct OpenConnections {
    by_address: std::sync::Mutex<(usize, std::collections::HashMap<std::net::IpAddr, usize>)>,
}

/// One admitted connection; dropping it frees its place.
struct ConnectionPermit {
    open: Arc<OpenConnections>,
    address: std::net::IpAddr,
}

impl OpenConnections {
    fn admit(
        open: &Arc<OpenConnections>,
        address: std::net::IpAddr,
        limits: &Limits,
    ) -> Option<ConnectionPermit> {
        let mut guard = open.by_address.lock().ok()?;
        let (total, by_address) = &mut *guard;
        let held = by_address.entry(address).or_insert(0);
        if *total >= limits.max_connections.max(1)
            || *held >= limits.max_connections_per_address.max(1)
        {
            if *held == 0 {
                by_address.remove(&address);
            }
            return None;
        }
        *held += 1;
        *total += 1;
        Some(ConnectionPermit {
            open: open.clone(),
            address,
        })
    }
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        if let Ok(mut guard) = self.open.by_address.lock() {
            let (total, by_address) = &mut *guard;
            *total = total.saturating_sub(1);
            if let Some(held) = by_address.get_mut(&self.address) {
                *held -= 1;
                if *held == 0 {
                    by_address.remove(&self.address);
                }
            }
        }
    }
}

/// Who may call what: checks the bearer token and its role, applies the rate limit, and
/// hands the handlers a [`Principal`](crate::auth::Principal) for project scopes.
async fn authorize(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned());
    let route = route.as_deref().unwrap_or("unmatched");
    let open_route =
        matches!(route, "/healthz" | "/readyz") || (route == "/metrics" && state.metrics_open);
    if open_route {
        return Ok(next.run(request).await);
    }
    let bearer = match request.headers().get(header::AUTHORIZATION) {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .and_then(|v| v.split_once(' '))
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                .map(|(_, token)| token.trim())
                .ok_or_else(|| unauthorized("the Authorization header must be `Bearer <token>`"))?,
        ),
    };
    let client = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|info| info.0.ip());
    let started = Instant::now();
    // A good token always passes: only failures are held off, so a failing client can
    // never lock out a good one sent from the same address.
    let principal = match state.auth.authenticate(bearer, chrono::Utc::now()).await {
        Ok(principal) => principal,
        Err(crate::auth::AuthError::Store(error)) => return Err(error.into()),
        Err(error) => {
            if let Some(ip) = client {
                if let Some(wait) = state.failed_auth.blocked(ip, bearer, started) {
                    return Ok(too_many(
                        "too many failed authentications with this token from this address",
                        wait,
                    ));
                }
                state.failed_auth.failed(ip, bearer, started);
            }
            return Err(unauthorized(&error.to_string()));
        }
    };
    let key = match &principal.token_id {
        Some(id) => id.clone(),
        None => client.map_or_else(|| "open".to_owned(), |ip| ip.to_string()),
    };
    if let Err(not_until) = state.rate_limiter.check_key(&key) {
        let wait = not_until.wait_time_from(governor::clock::Clock::now(
            &governor::clock::DefaultClock::default(),
        ));
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        let reason = format!(
            "more than {} requests per second",
            state.limits.requests_per_second
        );
        return Ok(too_many(&reason, seconds));
    }
    let method = request.method().as_str().to_owned();
    // /metrics shows every project's series: not for a caller scoped to some.
    let scoped_out = route == "/metrics" && principal.projects.is_some();
    if scoped_out {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "/metrics shows every project: it needs a token not scoped to projects",
        ));
    }
    if !crate::auth::role_allows(principal.role, &method, route) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "a {} token may not call {method} {route}",
                principal.role.as_str()
            ),
        ));
    }
    request.extensions_mut().insert(principal);
    Ok(next.run(request).await)
}

/// 429 with `Retry-After` (at least a second).
fn too_many(reason: &str, retry_after_seconds: u64) -> Response {
    let mut response = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!("{reason}; retry after the Retry-After header's seconds"),
    )
    .into_response();
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(retry_after_seconds.max(1)),
    );
    response
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
}

impl From<crate::auth::ForbiddenProject> for ApiError {
    fn from(error: crate::auth::ForbiddenProject) -> Self {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden_project",
            error.to_string(),
        )
    }
}

/// Counts requests by route template (never the raw path: bounded labels).
async fn track_metrics(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = format!("{}xx", response.status().as_u16() / 100);
    state
        .metrics
        .http_requests
        .with_label_values(&[route.as_str(), method.as_str(), status.as_str()])
        .inc();
    state
        .metrics
        .http_request_seconds
        .with_label_values(&[route.as_str()])
        .observe(started.elapsed().as_secs_f64());
    response
}

/// Every error a handler returns.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    pub fn unavailable() -> Self {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            "the store cannot be reached; retry later",
        )
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        if error.is_transient() {
            ApiError::unavailable()
        } else {
            tracing::error!(message = "Store error.", %error);
            ApiError::internal("the store failed; see the daemon's log")
        }
    }
}

impl From<IngestError> for ApiError {
    fn from(error: IngestError) -> Self {
        match error {
            IngestError::Store(store) if store.is_transient() => ApiError::unavailable(),
            IngestError::Closed => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                "the daemon is shutting down",
            ),
            IngestError::Store(store) => {
                tracing::error!(message = "Store error while ingesting.", error = %store);
                ApiError::internal("the store failed; see the daemon's log")
            }
        }
    }
}

impl From<axum::extract::rejection::BytesRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::BytesRejection) -> Self {
        let status = rejection.status();
        let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "body_too_large"
        } else {
            "bad_body"
        };
        ApiError::new(status, code, rejection.body_text())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": {"code": self.code, "message": self.message}});
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
