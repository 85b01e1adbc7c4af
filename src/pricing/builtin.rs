//! The sheets in `pricing/`, compiled into the binary so an installed `llm-meter` prices
//! without a checkout. A test checks that every `pricing/*.toml` file is listed here.

pub(crate) const SHEETS: &[(&str, &str)] = &[
    ("openai.toml", include_str!("../../pricing/openai.toml")),
    (
        "anthropic.toml",
        include_str!("../../pricing/anthropic.toml"),
    ),
    ("google.toml", include_str!("../../pricing/google.toml")),
    (
        "openrouter.toml",
        include_str!("../../pricing/openrouter.toml"),
    ),
    ("aimlapi.toml", include_str!("../../pricing/aimlapi.toml")),
    ("cometapi.toml", include_str!("../../pricing/cometapi.toml")),
    ("evolink.toml", include_str!("../../pricing/evolink.toml")),
];
