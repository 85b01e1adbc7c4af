//! Which input shapes a source may contain.

use std::fmt;

/// Which input shapes a source may contain. `Auto` detects the shape per line.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    #[default]
    Auto,
    Canonical,
    OpenAI,
    Anthropic,
    Gemini,
    Bedrock,
    Cohere,
    LiteLLM,
    CloudEvents,
}

impl Format {
    pub const NAMES: &'static str =
        "auto, canonical, openai, anthropic, gemini, bedrock, cohere, litellm, cloudevents";

    pub fn parse(name: &str) -> Option<Format> {
        Some(match name.to_ascii_lowercase().as_str() {
            "auto" => Format::Auto,
            "canonical" => Format::Canonical,
            "openai" => Format::OpenAI,
            "anthropic" => Format::Anthropic,
            "gemini" | "google" | "vertex" => Format::Gemini,
            "bedrock" => Format::Bedrock,
            "cohere" => Format::Cohere,
            "litellm" => Format::LiteLLM,
            "cloudevents" => Format::CloudEvents,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Auto => "auto",
            Format::Canonical => "canonical",
            Format::OpenAI => "openai",
            Format::Anthropic => "anthropic",
            Format::Gemini => "gemini",
            Format::Bedrock => "bedrock",
            Format::Cohere => "cohere",
            Format::LiteLLM => "litellm",
            Format::CloudEvents => "cloudevents",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
