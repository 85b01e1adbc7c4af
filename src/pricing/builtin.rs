//! The sheets in `pricing/` and the catalogs in `pricing/catalog/`, compiled into the
//! binary so an installed `llm-meter` prices without a checkout. A test checks that every
//! `pricing/*.toml` and `pricing/catalog/*.json` file is listed here.

pub(crate) const SHEETS: &[(&str, &str)] = &[
    ("openai.toml", include_str!("../../pricing/openai.toml")),
    (
        "anthropic.toml",
        include_str!("../../pricing/anthropic.toml"),
    ),
    ("google.toml", include_str!("../../pricing/google.toml")),
    (
        "perplexity.toml",
        include_str!("../../pricing/perplexity.toml"),
    ),
    (
        "openrouter.toml",
        include_str!("../../pricing/openrouter.toml"),
    ),
    ("aimlapi.toml", include_str!("../../pricing/aimlapi.toml")),
    ("cometapi.toml", include_str!("../../pricing/cometapi.toml")),
    ("evolink.toml", include_str!("../../pricing/evolink.toml")),
    ("bedrock.toml", include_str!("../../pricing/bedrock.toml")),
    ("vertex.toml", include_str!("../../pricing/vertex.toml")),
    ("azure.toml", include_str!("../../pricing/azure.toml")),
    ("azure_ai.toml", include_str!("../../pricing/azure_ai.toml")),
];

/// The generated catalogs (`scripts/catalog/generate.sh`), in precedence order: where
/// both price a model, genai-prices (dated, curated upstream) wins over LiteLLM.
pub(crate) const CATALOGS: &[(&str, &str)] = &[
    (
        "catalog/genai-prices.json",
        include_str!("../../pricing/catalog/genai-prices.json"),
    ),
    (
        "catalog/litellm.json",
        include_str!("../../pricing/catalog/litellm.json"),
    ),
];
