//! Why a line could not become a usage record.

use super::format::Format;

/// Why a line could not become a usage record. Every variant renders as one line.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ParseError {
    #[error("invalid JSON: {0}")]
    Json(String),
    /// Valid JSON with a field of the wrong type or name.
    #[error("malformed record: {0}")]
    Malformed(String),
    #[error("expected a JSON object, found {0}")]
    NotAnObject(&'static str),
    #[error("unrecognised record shape: {0}")]
    UnknownShape(String),
    #[error("{expected} format expected, but the line is {found}")]
    WrongFormat {
        expected: Format,
        found: &'static str,
    },
    #[error("{field} {problem}")]
    BadCount { field: String, problem: String },
    #[error("inconsistent counts: {0}")]
    Inconsistent(String),
    #[error("no model: the record names no model")]
    MissingModel,
    /// A body that never names its model (Bedrock Converse, Cohere) without the model
    /// logged beside it.
    #[error(
        "no model: a {0} does not name its model; log it beside the body, as \
         {{\"model\":\"…\",\"response\":{{…}}}}"
    )]
    ModelOutsideBody(&'static str),
    #[error("no usage: {0}")]
    NoUsage(String),
    #[error("not billed: {0}")]
    NotBilled(String),
    #[error("invalid {field}: {reason}")]
    InvalidField { field: String, reason: String },
    #[error("{shape}: {inner}")]
    InShape {
        shape: &'static str,
        inner: Box<ParseError>,
    },
}

impl ParseError {
    /// A short stable code for metrics and dead letters.
    pub fn code(&self) -> &'static str {
        match self {
            ParseError::Json(_) => "invalid_json",
            ParseError::Malformed(_) => "malformed_record",
            ParseError::NotAnObject(_) => "not_an_object",
            ParseError::UnknownShape(_) => "unknown_shape",
            ParseError::WrongFormat { .. } => "wrong_format",
            ParseError::BadCount { .. } => "bad_count",
            ParseError::Inconsistent(_) => "inconsistent_counts",
            ParseError::MissingModel | ParseError::ModelOutsideBody(_) => "missing_model",
            ParseError::NoUsage(_) => "no_usage",
            ParseError::NotBilled(_) => "not_billed",
            ParseError::InvalidField { .. } => "invalid_field",
            ParseError::InShape { inner, .. } => inner.code(),
        }
    }

    pub(super) fn in_shape(self, shape: &'static str) -> ParseError {
        match self {
            // Keep the innermost shape only: "anthropic message: usage.x is negative".
            already @ ParseError::InShape { .. } => already,
            ParseError::WrongFormat { .. } => self,
            other => ParseError::InShape {
                shape,
                inner: Box::new(other),
            },
        }
    }
}
