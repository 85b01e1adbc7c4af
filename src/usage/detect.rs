//! Shape detection and the wrappers (envelopes, CloudEvents) around the leaf shapes.

use base64::Engine;

use super::error::ParseError;
use super::fields::{
    apply_tier, check_label, check_tags, effort_label, merge_tags, money, opt_label, provider_name,
    required_label, time_from,
};
use super::format::Format;
use super::raw::Raw;
use super::record::ParsedUsage;
use super::{anthropic, bedrock, canonical, cohere, gemini, litellm, openai};

/// Deepest nesting of wrappers (envelope, CloudEvent, batch line) we unwrap.
const MAX_WRAPPER_DEPTH: usize = 4;

/// Every input shape the parser recognises.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Shape {
    /// `{"model":…,"tokens":{…}}`.
    Canonical,
    /// `{"provider":…,"model":…,"usage":{…provider-native…}}`, or an OpenAI-compatible
    /// object that does not say what it is.
    CanonicalNativeUsage,
    OpenAIChat,
    OpenAIChatChunk,
    OpenAIResponse,
    OpenAIResponseEvent,
    OpenAIBatchLine,
    AnthropicMessage,
    AnthropicStreamEvent,
    AnthropicBatchLine,
    Gemini,
    BedrockConverse,
    BedrockConverseStream,
    BedrockInvocationMetrics,
    BedrockLlama,
    BedrockMistral,
    Cohere,
    LiteLLM,
    Envelope,
    CloudEvent,
}

impl Shape {
    /// Shapes whose body does not name its model (it is in the request's URL or body):
    /// a proxy logs the model beside them, in an envelope.
    pub fn model_outside_body(self) -> bool {
        matches!(
            self,
            Shape::BedrockConverse
                | Shape::BedrockConverseStream
                | Shape::BedrockInvocationMetrics
                | Shape::BedrockLlama
                | Shape::BedrockMistral
                | Shape::Cohere
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            Shape::Canonical => "canonical record",
            Shape::CanonicalNativeUsage => "record with native usage",
            Shape::OpenAIChat => "openai chat completion",
            Shape::OpenAIChatChunk => "openai chat completion chunk",
            Shape::OpenAIResponse => "openai response",
            Shape::OpenAIResponseEvent => "openai response stream event",
            Shape::OpenAIBatchLine => "openai batch output line",
            Shape::AnthropicMessage => "anthropic message",
            Shape::AnthropicStreamEvent => "anthropic stream event",
            Shape::AnthropicBatchLine => "anthropic batch result line",
            Shape::Gemini => "gemini generateContent response",
            Shape::BedrockConverse => "bedrock converse response",
            Shape::BedrockConverseStream => "bedrock conversestream metadata event",
            Shape::BedrockInvocationMetrics => "bedrock stream chunk with invocation metrics",
            Shape::BedrockLlama => "bedrock meta llama invokemodel body",
            Shape::BedrockMistral => "bedrock mistral invokemodel body",
            Shape::Cohere => "cohere chat response",
            Shape::LiteLLM => "litellm logging payload",
            Shape::Envelope => "envelope",
            Shape::CloudEvent => "cloudevent",
        }
    }

    /// The `--format` family a shape belongs to; wrappers have none.
    pub fn format(self) -> Option<Format> {
        match self {
            Shape::Canonical | Shape::CanonicalNativeUsage => Some(Format::Canonical),
            Shape::OpenAIChat
            | Shape::OpenAIChatChunk
            | Shape::OpenAIResponse
            | Shape::OpenAIResponseEvent
            | Shape::OpenAIBatchLine => Some(Format::OpenAI),
            Shape::AnthropicMessage | Shape::AnthropicStreamEvent | Shape::AnthropicBatchLine => {
                Some(Format::Anthropic)
            }
            Shape::Gemini => Some(Format::Gemini),
            Shape::BedrockConverse
            | Shape::BedrockConverseStream
            | Shape::BedrockInvocationMetrics
            | Shape::BedrockLlama
            | Shape::BedrockMistral => Some(Format::Bedrock),
            Shape::Cohere => Some(Format::Cohere),
            Shape::LiteLLM => Some(Format::LiteLLM),
            Shape::Envelope => None,
            Shape::CloudEvent => Some(Format::CloudEvents),
        }
    }
}

/// Decides the shape of one object from the fields it carries.
pub(crate) fn detect(raw: &Raw<'_>) -> Option<Shape> {
    let kind = raw.kind.as_deref();
    let object = raw.object.as_deref();
    Some(if raw.specversion.is_some() {
        Shape::CloudEvent
    } else if raw.custom_id.is_some() {
        if raw.result.is_some() {
            Shape::AnthropicBatchLine
        } else {
            Shape::OpenAIBatchLine
        }
    } else if raw.invocation_metrics.is_some() {
        // The last chunk of an InvokeModel stream, in the model family's own event shape.
        Shape::BedrockInvocationMetrics
    } else if raw.usage.as_ref().is_some_and(|u| u.is_bedrock()) {
        Shape::BedrockConverse
    } else if raw
        .metadata
        .as_ref()
        .and_then(|m| m.usage.as_ref())
        .is_some_and(|u| u.is_bedrock())
    {
        Shape::BedrockConverseStream
    } else if raw.usage.as_ref().is_some_and(|u| u.billed_units.is_some())
        || raw.meta.as_ref().is_some_and(|m| m.billed_units.is_some())
    {
        Shape::Cohere
    } else if kind.is_some_and(|k| k.starts_with("response.")) {
        Shape::OpenAIResponseEvent
    } else if object == Some("response") {
        Shape::OpenAIResponse
    } else if object == Some("chat.completion") || object == Some("text_completion") {
        Shape::OpenAIChat
    } else if object == Some("chat.completion.chunk") {
        Shape::OpenAIChatChunk
    } else if kind == Some("message") {
        Shape::AnthropicMessage
    } else if kind.is_some_and(|k| k.starts_with("message_") || k.starts_with("content_block_")) {
        Shape::AnthropicStreamEvent
    } else if raw.usage_metadata.is_some() {
        Shape::Gemini
    } else if raw.tokens.is_some() {
        Shape::Canonical
    } else if raw.call_type.is_some()
        || raw.response_cost.is_some()
        || raw.custom_llm_provider.is_some()
        || (raw.request_id.is_some() && raw.spend.is_some())
    {
        Shape::LiteLLM
    } else if raw.prompt_token_count.is_some() || raw.generation_token_count.is_some() {
        // Bodies that name no other shape: these fields alone are too common to go first.
        Shape::BedrockLlama
    } else if raw.outputs.is_some() && raw.usage.is_none() && raw.response.is_none() {
        Shape::BedrockMistral
    } else if raw.response.is_some() {
        Shape::Envelope
    } else if raw.usage.is_some() {
        Shape::CanonicalNativeUsage
    } else {
        return None;
    })
}

/// The shape inside any envelopes and CloudEvents around an object.
pub(crate) fn leaf_shape(raw: &Raw<'_>) -> Option<Shape> {
    let mut raw = raw;
    for _ in 0..=MAX_WRAPPER_DEPTH {
        let inner = match detect(raw)? {
            Shape::Envelope => raw.response.as_deref(),
            Shape::CloudEvent => raw.data.as_deref(),
            leaf => return Some(leaf),
        };
        raw = inner?;
    }
    None
}

/// Parses one object of any shape, unwrapping envelopes and CloudEvents.
pub(crate) fn parse_raw(
    raw: &Raw<'_>,
    format: Format,
    depth: usize,
) -> Result<ParsedUsage, ParseError> {
    if depth > MAX_WRAPPER_DEPTH {
        return Err(ParseError::UnknownShape(format!(
            "wrappers nested deeper than {MAX_WRAPPER_DEPTH} levels"
        )));
    }
    let shape = detect(raw).ok_or_else(|| {
        ParseError::UnknownShape(
            "no `tokens`, `usage`, `usageMetadata`, `response` or CloudEvents `specversion` field"
                .into(),
        )
    })?;
    match (format, shape.format()) {
        (Format::Auto, _) | (_, None) => {}
        // A CloudEvent's data is free to be any shape, so only the outer object is checked.
        (Format::CloudEvents, _) if depth > 0 => {}
        (expected, Some(found)) if expected != found => {
            return Err(ParseError::WrongFormat {
                expected,
                found: shape.name(),
            });
        }
        _ => {}
    }
    let inner_format = if format == Format::CloudEvents {
        Format::Auto
    } else {
        format
    };
    let mut parsed = match shape {
        Shape::Canonical => canonical::tokens_record(raw),
        Shape::CanonicalNativeUsage => canonical::native_usage_record(raw),
        Shape::OpenAIChat => openai::chat(raw),
        Shape::OpenAIChatChunk => openai::chat_chunk(raw),
        Shape::OpenAIResponse => openai::response(raw),
        Shape::OpenAIResponseEvent => openai::response_event(raw),
        Shape::OpenAIBatchLine => openai::batch_line(raw, depth),
        Shape::AnthropicMessage => anthropic::message(raw),
        Shape::AnthropicStreamEvent => Err(ParseError::NoUsage(format!(
            "`{}` events carry partial usage; log the assembled message instead",
            raw.kind.as_deref().unwrap_or_default()
        ))),
        Shape::AnthropicBatchLine => anthropic::batch_line(raw),
        Shape::Gemini => gemini::response(raw),
        Shape::BedrockConverse => bedrock::converse(raw),
        Shape::BedrockConverseStream => bedrock::converse_stream_metadata(raw),
        Shape::BedrockInvocationMetrics => bedrock::invocation_metrics(raw),
        Shape::BedrockLlama => bedrock::llama(raw),
        Shape::BedrockMistral => Err(ParseError::NoUsage(
            "Bedrock's InvokeModel bodies of Mistral models carry no usage: log the \
             response headers beside the body ({\"headers\":{\"x-amzn-bedrock-input-token-count\":…},\
             \"response\":{…}}), the stream's last chunk, or use Converse"
                .into(),
        )),
        Shape::Cohere => cohere::chat(raw),
        Shape::LiteLLM => litellm::payload(raw, depth),
        Shape::Envelope => envelope(raw, inner_format, depth),
        Shape::CloudEvent => cloud_event(raw, depth),
    }
    .map_err(|error| error.in_shape(shape.name()))?;
    if !matches!(shape, Shape::Envelope | Shape::CloudEvent) {
        apply_attribution(raw, &mut parsed).map_err(|error| error.in_shape(shape.name()))?;
    }
    Ok(parsed)
}

/// `{"time":…,"project":…,"tags":…,"response":{…}}` around any shape: the envelope's
/// fields win over what the inner record says.
fn envelope(raw: &Raw<'_>, format: Format, depth: usize) -> Result<ParsedUsage, ParseError> {
    let inner = raw
        .response
        .as_deref()
        .ok_or_else(|| ParseError::NoUsage("envelope without `response`".into()))?;
    let header_tokens = match raw.headers.as_deref() {
        Some(headers) => bedrock::header_usage(headers)?,
        None => None,
    };
    let mut parsed = match (parse_raw(inner, format, depth + 1), header_tokens) {
        // A body without counts (Bedrock InvokeModel for Mistral) is billed by the
        // counts its response headers carried.
        (Err(error), Some(tokens)) if matches!(error.code(), "no_usage" | "unknown_shape") => {
            ParsedUsage {
                provider: Some("bedrock".to_owned()),
                tokens,
                ..ParsedUsage::default()
            }
        }
        (parsed, _) => parsed?,
    };
    if let Some(id) = raw.id.as_deref() {
        parsed.id = Some(check_label("id", id)?.to_owned());
    }
    if let Some(time) = raw.time.as_ref() {
        parsed.time = Some(time_from(time, "time")?);
    }
    if let Some(provider) = raw.provider.as_deref() {
        parsed.provider = Some(provider_name(provider)?);
    }
    if parsed.model.is_none() {
        parsed.model = opt_label(raw.model.as_deref(), "model")?;
    }
    if raw.batch == Some(true) {
        parsed.batch = true;
    }
    if let Some(tier) = raw.service_tier.as_deref() {
        apply_tier(&mut parsed, tier);
    }
    if let Some(cost) = raw.cost_usd.as_ref() {
        parsed.reported_cost = Some(money(cost, "cost_usd")?);
    }
    apply_attribution(raw, &mut parsed)?;
    Ok(parsed)
}

/// A CloudEvents 1.0 structured event whose `data` (or `data_base64`) is any shape.
/// (`source`, `id`) is the idempotency key when the data carries no id of its own.
fn cloud_event(raw: &Raw<'_>, depth: usize) -> Result<ParsedUsage, ParseError> {
    let spec = raw.specversion.as_deref().unwrap_or_default();
    if !spec.starts_with("1.") {
        return Err(ParseError::InvalidField {
            field: "specversion".into(),
            reason: format!("unsupported version {spec:?}, expected \"1.0\""),
        });
    }
    let event_id = required_label(raw.id.as_deref(), "id")?;
    let source = required_label(raw.source.as_deref(), "source")?;
    let mut parsed = if let Some(data) = raw.data.as_deref() {
        let mut inner = parse_raw(data, Format::Auto, depth + 1)?;
        if inner.id.is_none() {
            inner.id = Some(format!("{source}#{event_id}"));
        }
        inner
    } else if let Some(encoded) = raw.data_base64.as_deref() {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded.as_bytes())
            .map_err(|error| ParseError::InvalidField {
                field: "data_base64".into(),
                reason: error.to_string(),
            })?;
        let text = std::str::from_utf8(&bytes).map_err(|_| ParseError::InvalidField {
            field: "data_base64".into(),
            reason: "decoded data is not UTF-8 text".into(),
        })?;
        let inner_raw: Raw<'_> = serde_json::from_str(text.trim())
            .map_err(|error| ParseError::Json(format!("data_base64: {error}")))?;
        let mut inner = parse_raw(&inner_raw, Format::Auto, depth + 1)?;
        if inner.id.is_none() {
            inner.id = Some(format!("{source}#{event_id}"));
        }
        inner
    } else {
        return Err(ParseError::NoUsage("cloudevent without `data`".into()));
    };
    if parsed.time.is_none()
        && let Some(time) = raw.time.as_ref()
    {
        parsed.time = Some(time_from(time, "time")?);
    }
    Ok(parsed)
}

/// Project, tags, user, reasoning effort (and a time, where the shape has none) may sit
/// at the top level of any object, next to the provider's own fields, when a proxy adds
/// them before logging.
fn apply_attribution(raw: &Raw<'_>, parsed: &mut ParsedUsage) -> Result<(), ParseError> {
    // A time added next to a shape that carries none of its own (Anthropic messages).
    if parsed.time.is_none()
        && let Some(time) = raw.time.as_ref()
    {
        parsed.time = Some(time_from(time, "time")?);
    }
    if let Some(project) = raw.project.as_deref() {
        parsed.project = Some(check_label("project", project)?.to_owned());
    }
    if let Some(tags) = raw.tags.as_ref() {
        merge_tags(&mut parsed.tags, tags, "tags")?;
        check_tags(&parsed.tags)?;
    }
    if let Some(user) = raw.user.as_deref() {
        parsed.user = Some(check_label("user", user)?.to_owned());
    }
    if let Some(effort) = raw.reasoning_effort.as_deref() {
        parsed.reasoning_effort = Some(effort_label(effort)?);
    }
    Ok(())
}
