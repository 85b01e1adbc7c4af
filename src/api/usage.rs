//! `POST /v1/usage`: records in any accepted shape. The answer comes after the accepted
//! records are committed: `{"accepted":N,"duplicates":N,"rejected":[{"index":I,"error":"…"}]}`.
//!
//! The body may be one JSON object, a JSON array of records, NDJSON (one record per line),
//! a CloudEvents structured event (`application/cloudevents+json`) or a CloudEvents batch
//! (`application/cloudevents-batch+json`). `index` is the 0-based position of a record in
//! the array, or among the non-blank lines of NDJSON.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode, header};
use chrono::Utc;
use serde::Serialize;
use serde_json::value::RawValue;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, AppState};
use crate::auth::Principal;
use crate::ingest::{ChunkedWrite, Intake, Rejection};
use crate::prepare::Preparer;
use crate::usage::Format;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(post_usage))
}

/// What happened to the records of a request.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct UsageAnswer {
    accepted: usize,
    duplicates: usize,
    rejected: Vec<Rejection>,
}

/// How the body was laid out.
enum Records<'b> {
    /// A single JSON object: its failure is the request's failure.
    One(&'b str),
    /// Several records, each failing on its own.
    Many(Vec<&'b str>),
}

/// Ingest usage records.
///
/// The body is one record, a JSON array, NDJSON, a CloudEvent or a CloudEvents batch, in
/// any accepted shape (canonical, OpenAI, Anthropic, Gemini, LiteLLM, OpenRouter…). The
/// answer comes once the accepted records are committed; a duplicate is a success.
#[utoipa::path(
    post,
    path = "/v1/usage",
    tag = "ingest",
    request_body(
        content(
            (String = "application/json"),
            (String = "application/x-ndjson"),
            (String = "application/cloudevents+json"),
            (String = "application/cloudevents-batch+json")
        ),
        description = "Usage records"
    ),
    responses(
        (status = 200, description = "Committed", body = UsageAnswer),
        (status = 400, description = "The single record, or the body, is unusable", body = super::openapi::ErrorBody),
        (status = 413, description = "The body is larger than the limit", body = super::openapi::ErrorBody),
        (status = 503, description = "The store is unreachable; retry after Retry-After", body = super::openapi::ErrorBody)
    )
)]
async fn post_usage(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<UsageAnswer>), ApiError> {
    let body = body?;
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::bad_request("bad_body", "the body is not UTF-8 text"))?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_ascii_lowercase();
    let records = split_records(text, &content_type)?;
    let count = match &records {
        Records::One(_) => 1,
        Records::Many(many) => many.len(),
    };
    state
        .limits
        .check_records(count, "records in one request")?;
    let format = if content_type.starts_with("application/cloudevents") {
        Format::CloudEvents
    } else {
        Format::Auto
    };
    let book = state.book.current();
    let preparer = Preparer::new(&book, format, state.default_project.as_ref());
    let mut intake =
        Intake::new(preparer, "http", Utc::now()).with_allowed_projects(principal.projects);
    let many = match records {
        Records::One(record) => {
            intake.add_text(0, record);
            return write_one(&state, intake.take()).await;
        }
        Records::Many(many) => many,
    };
    // Prepared and written a chunk at a time, so a request's memory is its body and one
    // chunk, however many records it holds. Each chunk commits on its own: a request
    // that fails half-way may be sent again (what landed comes back as duplicates).
    let mut writes = ChunkedWrite::new(&state.pipeline, "http");
    for (chunk_number, chunk) in many.chunks(RECORDS_PER_CHUNK).enumerate() {
        for (offset, record) in chunk.iter().enumerate() {
            intake.add_text(chunk_number * RECORDS_PER_CHUNK + offset, record);
        }
        writes.submit(intake.take()).await?;
    }
    let written = writes.finish().await?;
    Ok((
        StatusCode::OK,
        Json(UsageAnswer {
            accepted: written.accepted,
            duplicates: written.duplicates,
            rejected: written.rejected,
        }),
    ))
}

/// Records of a request prepared and written together.
const RECORDS_PER_CHUNK: usize = 2000;

/// A body of one record: its rejection is the request's failure (400, or 403 for a
/// project the token may not write).
async fn write_one(
    state: &AppState,
    prepared: crate::ingest::Prepared,
) -> Result<(StatusCode, Json<UsageAnswer>), ApiError> {
    if let Some(rejection) = prepared.rejections.first() {
        if rejection.forbidden {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden_project",
                rejection.error.clone(),
            ));
        }
        // Keep the dead letter even though the request fails.
        state.pipeline.write(prepared.batch, "http").await?;
        return Err(ApiError::bad_request("rejected", rejection.error.clone()));
    }
    let committed = state.pipeline.write(prepared.batch, "http").await?;
    if let Some(refused) = committed.refused.first() {
        return Err(ApiError::bad_request("rejected", refused.reason.clone()));
    }
    Ok((
        StatusCode::OK,
        Json(UsageAnswer {
            accepted: committed.accepted,
            duplicates: committed.duplicates,
            rejected: Vec::new(),
        }),
    ))
}

/// Splits a body into record texts without parsing the records themselves.
fn split_records<'b>(text: &'b str, content_type: &str) -> Result<Records<'b>, ApiError> {
    let trimmed = text.trim_ascii();
    if trimmed.is_empty() {
        return Err(ApiError::bad_request(
            "empty_body",
            "the body holds no records",
        ));
    }
    let ndjson = content_type.contains("ndjson") || content_type.contains("jsonl");
    if !ndjson && trimmed.starts_with('[') {
        let elements: Vec<&RawValue> = serde_json::from_str(trimmed).map_err(|error| {
            ApiError::bad_request(
                "invalid_json",
                format!("the body is not a JSON array of records: {error}"),
            )
        })?;
        return Ok(Records::Many(
            elements.into_iter().map(RawValue::get).collect(),
        ));
    }
    if !ndjson && serde_json::from_str::<&RawValue>(trimmed).is_ok() {
        return Ok(Records::One(trimmed));
    }
    let lines: Vec<&str> = trimmed
        .lines()
        .map(str::trim_ascii)
        .filter(|line| !line.is_empty())
        .collect();
    // One line that is not JSON is one bad record, not a batch of one.
    Ok(match lines.as_slice() {
        [one] => Records::One(one),
        _ => Records::Many(lines),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(text: &str, content_type: &str) -> Vec<String> {
        match split_records(text, content_type)
            .map_err(|e| e.message)
            .unwrap()
        {
            Records::One(one) => vec![format!("one:{one}")],
            Records::Many(many) => many.into_iter().map(str::to_owned).collect(),
        }
    }

    #[test]
    fn bodies_split_into_records_by_layout() {
        assert_eq!(split(r#"{"a":1}"#, "application/json"), [r#"one:{"a":1}"#]);
        assert_eq!(
            split("{\n  \"a\": 1\n}\n", "application/json"),
            ["one:{\n  \"a\": 1\n}"]
        );
        assert_eq!(
            split(r#"[{"a":1}, {"b":2}]"#, "application/json"),
            [r#"{"a":1}"#, r#"{"b":2}"#]
        );
        assert_eq!(
            split("{\"a\":1}\n\n{\"b\":2}\n", "application/json"),
            [r#"{"a":1}"#, r#"{"b":2}"#]
        );
        assert_eq!(
            split("{\"a\":1}\nnot json\n", "application/x-ndjson"),
            [r#"{"a":1}"#, "not json"]
        );
        assert_eq!(split("not json", "application/json"), ["one:not json"]);
        assert!(split_records("   ", "application/json").is_err());
        assert!(split_records("[{\"a\":1}", "application/json").is_err());
    }
}
