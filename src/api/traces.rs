//! `POST /v1/traces`: OTLP/HTTP traces, protobuf (`application/x-protobuf`) or JSON
//! (`application/json`). Spans with GenAI usage become records; the answer is an
//! `ExportTraceServiceResponse` in the request's encoding, with `partial_success`
//! counting the usage spans that were rejected.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, AppState};
use crate::ingest::{ChunkedWrite, Intake};
use crate::otlp;
use crate::prepare::Preparer;
use crate::usage::Format;

/// Usage spans prepared and written together.
const SPANS_PER_CHUNK: usize = 2000;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(post_traces))
}

/// Ingest OpenTelemetry traces (OTLP/HTTP).
///
/// Spans carrying GenAI usage attributes (`gen_ai.usage.*`) become usage records; the
/// answer is an `ExportTraceServiceResponse` in the request's encoding.
#[utoipa::path(
    post,
    path = "/v1/traces",
    tag = "ingest",
    request_body(
        content((String = "application/x-protobuf"), (String = "application/json")),
        description = "An OTLP ExportTraceServiceRequest"
    ),
    responses(
        (status = 200, description = "ExportTraceServiceResponse; partial_success counts rejected spans"),
        (status = 400, description = "Not an OTLP trace export", body = super::openapi::ErrorBody),
        (status = 415, description = "Neither protobuf nor JSON", body = super::openapi::ErrorBody),
        (status = 503, description = "The store is unreachable", body = super::openapi::ErrorBody)
    )
)]
async fn post_traces(
    State(state): State<AppState>,
    axum::extract::Extension(principal): axum::extract::Extension<crate::auth::Principal>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/x-protobuf")
        .to_ascii_lowercase();
    let json = content_type.starts_with("application/json");
    let protobuf = content_type.starts_with("application/x-protobuf")
        || content_type.starts_with("application/protobuf");
    let decoded;
    let (spans, count): (Box<dyn Iterator<Item = otlp::SpanItem> + Send + '_>, usize) = if json {
        decoded = serde_json::from_slice::<ExportTraceServiceRequest>(&body).map_err(|error| {
            ApiError::bad_request(
                "invalid_otlp",
                format!("not an OTLP JSON trace export: {error}"),
            )
        })?;
        let spans = otlp::spans_of(&decoded)
            .filter_map(|(index, resource, span)| otlp::span_usage_at(index, resource, span))
            .map(Ok);
        (Box::new(spans), otlp::spans_of(&decoded).count())
    } else if protobuf {
        // Spans are decoded one at a time as they are used; the framing is checked (and
        // the spans counted) first, so a malformed export is refused before anything.
        let count = otlp::SpanReader::count(&body).map_err(|error| {
            ApiError::bad_request(
                "invalid_otlp",
                format!("not an OTLP protobuf trace export: {error}"),
            )
        })?;
        (Box::new(otlp::SpanReader::new(&body)), count)
    } else {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send application/x-protobuf or application/json",
        ));
    };
    state.limits.check_records(count, "spans in one export")?;
    let book = state.book.current();
    let preparer = Preparer::new(&book, Format::Auto, state.default_project.as_ref());
    let mut intake =
        Intake::new(preparer, "otlp", Utc::now()).with_allowed_projects(principal.projects);
    let mut writes = ChunkedWrite::new(&state.pipeline, "otlp");
    let mut spans = spans.peekable();
    // Prepared and written a chunk at a time, like POST /v1/usage: memory is the body
    // and one chunk of spans.
    while spans.peek().is_some() {
        for item in spans.by_ref().take(SPANS_PER_CHUNK) {
            match item {
                Ok(span) => match span.result {
                    Ok(parsed) => intake.add_parsed(span.index, parsed, &span.summary),
                    Err(error) => {
                        intake.reject(span.index, error.code(), &error.to_string(), &span.summary)
                    }
                },
                Err((index, error)) => intake.reject(
                    index,
                    "invalid_span",
                    &format!("the span's protobuf does not decode: {error}"),
                    "",
                ),
            }
        }
        writes.submit(intake.take()).await?;
    }
    let rejected = writes.finish().await?.rejected;
    let partial_success = (!rejected.is_empty()).then(|| ExportTracePartialSuccess {
        rejected_spans: rejected.len() as i64,
        error_message: rejected
            .iter()
            .map(|r| format!("span {}: {}", r.index, r.error))
            .collect::<Vec<_>>()
            .join("; "),
    });
    let answer = ExportTraceServiceResponse { partial_success };
    Ok(if json {
        (
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::to_vec(&answer).unwrap_or_default(),
        )
            .into_response()
    } else {
        (
            [(header::CONTENT_TYPE, "application/x-protobuf")],
            answer.encode_to_vec(),
        )
            .into_response()
    })
}
