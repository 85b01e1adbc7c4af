//! Who bills a request: one id per provider, whatever spelling a record, a proxy, an
//! OpenTelemetry span or a price catalog uses for it, and the name it goes by on an invoice.
//!
//! The ids are the pricing sheets' `provider` names. Spellings are compared lower-case.
//! A name that is no known spelling is its own id (lower-cased), so a new provider works
//! as soon as a sheet names it.

/// A provider: its id, how invoices name it, and every other spelling of it.
struct Provider {
    id: &'static str,
    display: &'static str,
    spellings: &'static [&'static str],
    /// It makes the models it sells (OpenAI, Anthropic…), as opposed to hosting or
    /// reselling other makers' models: a bare model name it lists is taken to be its.
    maker: bool,
    /// How its models' names start (`claude`), to tell makers apart when several list one.
    families: &'static [&'static str],
}

const PROVIDERS: &[Provider] = &[
    Provider {
        id: "openai",
        display: "OpenAI",
        spellings: &["text-completion-openai", "openai_responses"],
        maker: true,
        families: &[
            "gpt", "o1", "o3", "o4", "chatgpt", "codex", "davinci", "babbage",
        ],
    },
    Provider {
        id: "anthropic",
        display: "Anthropic",
        spellings: &["anthropic_text"],
        maker: true,
        families: &["claude"],
    },
    Provider {
        id: "google",
        display: "Google",
        spellings: &[
            "gemini",
            "google_ai_studio",
            "google-ai",
            "google_genai",
            "gcp.gemini",
            "gcp.gen_ai",
        ],
        maker: true,
        families: &["gemini", "gemma", "learnlm"],
    },
    Provider {
        id: "vertex",
        display: "Google Vertex AI",
        spellings: &[
            "vertex_ai",
            "vertex_ai_beta",
            "vertexai",
            "google-vertex",
            "google_vertex",
            "gcp.vertex_ai",
            "vertex_ai-language-models",
            "vertex_ai-text-models",
            "vertex_ai-chat-models",
            "vertex_ai-code-text-models",
            "vertex_ai-code-chat-models",
            "vertex_ai-vision-models",
        ],
        maker: false,
        families: &[],
    },
    Provider {
        id: "bedrock",
        display: "Amazon Bedrock",
        spellings: &[
            "aws.bedrock",
            "aws_bedrock",
            "amazon-bedrock",
            "amazon_bedrock",
            "bedrock_converse",
            "bedrock_mantle",
            "aws",
        ],
        maker: false,
        families: &[],
    },
    Provider {
        id: "azure",
        display: "Microsoft Azure",
        spellings: &[
            "azure.ai.openai",
            "az.ai.openai",
            "azure_openai",
            "azure-openai",
            "azure_text",
        ],
        maker: false,
        families: &[],
    },
    Provider {
        id: "azure_ai",
        display: "Microsoft Azure",
        spellings: &[
            "azure.ai.inference",
            "az.ai.inference",
            "azure-ai",
            "azure_ai_foundry",
        ],
        maker: false,
        families: &[],
    },
    Provider {
        id: "mistral",
        display: "Mistral AI",
        spellings: &["mistral_ai", "mistralai", "mistral-ai"],
        maker: true,
        families: &[
            "mistral",
            "ministral",
            "magistral",
            "codestral",
            "devstral",
            "pixtral",
            "voxtral",
            "open-mistral",
            "open-mixtral",
        ],
    },
    Provider {
        // Mistral's separate Codestral endpoint (codestral.mistral.ai), priced apart.
        id: "codestral",
        display: "Mistral AI",
        spellings: &["text-completion-codestral"],
        maker: false,
        families: &[],
    },
    Provider {
        id: "deepseek",
        display: "DeepSeek",
        spellings: &["deepseek-ai", "deepseek_ai"],
        maker: true,
        families: &["deepseek"],
    },
    Provider {
        id: "xai",
        display: "xAI",
        spellings: &["x_ai", "x.ai", "x-ai"],
        maker: true,
        families: &["grok"],
    },
    Provider {
        id: "cohere",
        display: "Cohere",
        spellings: &["cohere_chat", "cohere-ai"],
        maker: true,
        families: &["command", "c4ai", "aya"],
    },
    Provider {
        id: "groq",
        display: "Groq",
        spellings: &[],
        maker: false,
        families: &[],
    },
    Provider {
        id: "together",
        display: "Together AI",
        spellings: &["together_ai", "togetherai", "together-ai"],
        maker: false,
        families: &[],
    },
    Provider {
        id: "fireworks",
        display: "Fireworks AI",
        spellings: &["fireworks_ai", "fireworksai", "fireworks-ai"],
        maker: false,
        families: &[],
    },
    Provider {
        id: "perplexity",
        display: "Perplexity",
        spellings: &["perplexity_ai", "perplexity-ai"],
        maker: true,
        families: &["sonar", "r1-1776"],
    },
    Provider {
        id: "deepinfra",
        display: "DeepInfra",
        spellings: &["deep_infra", "deep-infra"],
        maker: false,
        families: &[],
    },
    Provider {
        id: "github_copilot",
        display: "GitHub Copilot",
        spellings: &["github-copilot"],
        maker: false,
        families: &[],
    },
    Provider {
        id: "cerebras",
        display: "Cerebras",
        spellings: &[],
        maker: false,
        families: &[],
    },
    Provider {
        id: "openrouter",
        display: "OpenRouter",
        spellings: &["open_router", "open-router"],
        maker: false,
        families: &[],
    },
    Provider {
        id: "aimlapi",
        display: "AI/ML API",
        spellings: &["ai/ml api", "ai-ml-api", "aiml"],
        maker: false,
        families: &[],
    },
    Provider {
        id: "cometapi",
        display: "CometAPI",
        spellings: &["comet_api", "comet-api"],
        maker: false,
        families: &[],
    },
    Provider {
        id: "evolink",
        display: "EvoLink",
        spellings: &["evolink_ai"],
        maker: false,
        families: &[],
    },
    Provider {
        id: "meta",
        display: "Meta",
        spellings: &["meta_llama", "meta-llama"],
        maker: true,
        families: &["llama", "meta-llama"],
    },
    Provider {
        id: "watsonx",
        display: "IBM watsonx.ai",
        spellings: &["ibm.watsonx.ai", "ibm_watsonx", "watsonx_text"],
        maker: false,
        families: &[],
    },
    Provider {
        id: "moonshot",
        display: "Moonshot AI",
        spellings: &["moonshot_ai", "moonshotai"],
        maker: true,
        families: &["kimi", "moonshot"],
    },
];

/// Every known spelling (ids included) → its id.
static BY_SPELLING: std::sync::LazyLock<std::collections::HashMap<&'static str, &'static str>> =
    std::sync::LazyLock::new(|| {
        PROVIDERS
            .iter()
            .flat_map(|p| {
                std::iter::once(&p.id)
                    .chain(p.spellings)
                    .map(|s| (*s, p.id))
            })
            .collect()
    });

/// The id of a known provider spelling (compared lower-case); parsing calls it for every
/// record, so a lower-case name is looked up without a copy.
pub fn known(name: &str) -> Option<&'static str> {
    let name = name.trim();
    let found = if name.bytes().any(|b| b.is_ascii_uppercase()) {
        BY_SPELLING.get(name.to_ascii_lowercase().as_str()).copied()
    } else {
        BY_SPELLING.get(name).copied()
    };
    // LiteLLM names the Vertex model gardens `vertex_ai-<family>_models`.
    found.or_else(|| {
        name.get(..10)
            .is_some_and(|start| start.eq_ignore_ascii_case("vertex_ai-"))
            .then_some("vertex")
    })
}

/// The provider id a spelling names: a known spelling's id, else the name lower-cased.
pub fn canonical(name: &str) -> String {
    match known(name) {
        Some(id) => id.to_owned(),
        None => name.trim().to_ascii_lowercase(),
    }
}

/// Whether a provider makes the models it sells (see `Provider::maker`).
pub fn is_maker(id: &str) -> bool {
    PROVIDERS.iter().any(|p| p.id == id && p.maker)
}

/// The maker whose model family a name belongs to (`claude-opus-5` → `anthropic`).
pub fn maker_of(model: &str) -> Option<&'static str> {
    let name = model.trim().to_ascii_lowercase();
    PROVIDERS
        .iter()
        .find(|p| p.families.iter().any(|family| name.starts_with(family)))
        .map(|p| p.id)
}

/// The name a provider goes by on an invoice (`OpenAI`, `Amazon Bedrock`); an unknown id
/// is its own name.
pub fn display_name(id: &str) -> String {
    PROVIDERS
        .iter()
        .find(|p| p.id == id)
        .map_or_else(|| id.to_owned(), |p| p.display.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_names_one_provider() {
        for (spelling, id) in [
            ("bedrock_converse", "bedrock"),
            ("aws.bedrock", "bedrock"),
            ("vertex_ai-anthropic_models", "vertex"),
            ("gcp.vertex_ai", "vertex"),
            ("gcp.gemini", "google"),
            ("gemini", "google"),
            ("together_ai", "together"),
            ("fireworks_ai", "fireworks"),
            ("azure_ai", "azure_ai"),
            ("azure.ai.inference", "azure_ai"),
            ("azure.ai.openai", "azure"),
            ("cohere_chat", "cohere"),
            ("mistral_ai", "mistral"),
            ("x_ai", "xai"),
            ("DeepSeek", "deepseek"),
            ("groq", "groq"),
            ("perplexity", "perplexity"),
            ("ibm.watsonx.ai", "watsonx"),
            ("AI/ML API", "aimlapi"),
            ("some_new_cloud", "some_new_cloud"),
        ] {
            assert_eq!(canonical(spelling), id, "{spelling}");
        }
        // No spelling belongs to two providers, and no id is another's spelling.
        let mut seen = std::collections::HashSet::new();
        for provider in PROVIDERS {
            for name in std::iter::once(&provider.id).chain(provider.spellings) {
                assert!(seen.insert(*name), "{name} is listed twice");
            }
        }
        assert_eq!(display_name("bedrock"), "Amazon Bedrock");
        assert_eq!(display_name("novita"), "novita");
    }
}
