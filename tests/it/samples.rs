//! Every accepted input shape, as a real-shaped sample in `tests/samples/`, with the
//! buckets it must produce and its cost worked out by hand.

use llm_meter::pricing::PriceOutcome;
use llm_meter::usage::Tokens;

use crate::helpers::{book, prepare, sample};

struct Case {
    file: &'static str,
    provider: &'static str,
    model: &'static str,
    id: &'static str,
    project: &'static str,
    /// RFC 3339, or "ingest" for records that carry no time.
    time: &'static str,
    tokens: Tokens,
    batch: bool,
    tier: &'static str,
    effort: Option<&'static str>,
    /// USD, worked out by hand in the comment above each case.
    cost: &'static str,
    price: &'static str,
    /// What the provider (or gateway) reported the request cost, where it did.
    reported: Option<&'static str>,
    /// Usage the sheets have no rate for, named in the partial-price reason.
    partial: Option<&'static str>,
}

const CASES: &[Case] = &[
    // prompt 12,480 of which 8,192 cached; completion 1,536 of which 896 reasoning.
    // 4,288 × $1.75 + 8,192 × $0.175 + 640 × $14 + 896 × $14 = 30,441.6 µ$ per 1M → $0.0304416
    Case {
        file: "openai-chat.json",
        provider: "openai",
        model: "gpt-5.2-2025-12-11",
        id: "chatcmpl-BXq3v9F2mT8kLr4Pz0aYwN1cHd7e",
        project: "default",
        time: "2026-01-01T00:00:00Z",
        tokens: Tokens::text(4288, 8192, 0, 0, 640, 896),
        batch: false,
        tier: "default",
        effort: None,
        cost: "0.0304416",
        price: "openai/gpt-5.2@2025-12-11",
        reported: None,
        partial: None,
    },
    // Final stream chunk (choices: []): 2,000 × $0.25 + 244 × $2 + 256 × $2 = $0.0015
    Case {
        file: "openai-chat-chunk.json",
        provider: "openai",
        model: "gpt-5-mini-2025-08-07",
        id: "chatcmpl-C1a7ZbQk2Lw9xR3mN8vT5yP0sJdU",
        project: "default",
        time: "2026-01-01T01:00:00Z",
        tokens: Tokens::text(2000, 0, 0, 0, 244, 256),
        batch: false,
        tier: "default",
        effort: None,
        cost: "0.0015",
        price: "openai/gpt-5-mini@2025-08-07",
        reported: None,
        partial: None,
    },
    // 300,000 input > 272k: the whole request at the long-context rates.
    // 200,000 × $5 + 100,000 × $0.50 + 500 × $22.50 + 1,500 × $22.50 = $1.095
    Case {
        file: "openai-response.json",
        provider: "openai",
        model: "gpt-5.4-2026-03-05",
        id: "resp_68a1f2c3d4e5f60718293a4b5c6d7e8f",
        project: "default",
        time: "2026-04-01T00:00:00Z",
        tokens: Tokens::text(200_000, 100_000, 0, 0, 500, 1500),
        batch: false,
        tier: "default",
        effort: Some("xhigh"),
        cost: "1.095",
        price: "openai/gpt-5.4@2026-03-05+long_context",
        reported: None,
        partial: None,
    },
    // 1,000 × $0.75 + 60 × $4.50 + 40 × $4.50 = $0.0012
    Case {
        file: "openai-response-completed.json",
        provider: "openai",
        model: "gpt-5.4-mini-2026-03-17",
        id: "resp_0b2c4d6e8f0a1b3c5d7e9f1a3b5c7d9e",
        project: "default",
        time: "2026-04-01T01:00:00Z",
        tokens: Tokens::text(1000, 0, 0, 0, 60, 40),
        batch: false,
        tier: "default",
        effort: Some("low"),
        cost: "0.0012",
        price: "openai/gpt-5.4-mini@2026-03-17",
        reported: None,
        partial: None,
    },
    // An incomplete response is billed for what it used: 5,000 × $1.75 + 4,000 × $14 = $0.06475
    Case {
        file: "openai-response-incomplete.json",
        provider: "openai",
        model: "gpt-5.2",
        id: "resp_7f6e5d4c3b2a19080f1e2d3c4b5a6978",
        project: "default",
        time: "2026-04-01T02:00:00Z",
        tokens: Tokens::text(5000, 0, 0, 0, 0, 4000),
        batch: false,
        tier: "default",
        effort: Some("high"),
        cost: "0.06475",
        price: "openai/gpt-5.2@2025-12-11",
        reported: None,
        partial: None,
    },
    // Batch: half of $0.15 / $0.60. 1,000 × $0.075 + 200 × $0.30 = $0.000135; time = body.created
    Case {
        file: "openai-batch-line.json",
        provider: "openai",
        model: "gpt-4o-mini-2024-07-18",
        id: "chatcmpl-AOe4x7Yz1Q2w3E4r5T6y7U8i9O0p",
        project: "default",
        time: "2024-11-01T12:00:00Z",
        tokens: Tokens::text(1000, 0, 0, 0, 200, 0),
        batch: true,
        tier: "default",
        effort: None,
        cost: "0.000135",
        price: "openai/gpt-4o-mini@2024-10-01+batch",
        reported: None,
        partial: None,
    },
    // Anthropic counts cache reads and writes beside input_tokens.
    // 1,500 × $3 + 20,000 × $0.30 + 3,000 × $3.75 + 2,000 × $6 + 800 × $15 = $0.04575
    Case {
        file: "anthropic-message.json",
        provider: "anthropic",
        model: "claude-sonnet-4-5-20250929",
        id: "msg_01XFDUDYJgAACzvnptvVoYEL",
        project: "default",
        time: "ingest",
        tokens: Tokens::text(1500, 20_000, 3000, 2000, 800, 0),
        batch: false,
        tier: "default",
        effort: None,
        cost: "0.04575",
        price: "anthropic/claude-sonnet-4-5@2025-09-29",
        reported: None,
        partial: None,
    },
    // No TTL split: every write is a 5-minute write. 100 × $1 + 1,000 × $1.25 + 50 × $5 = $0.0016
    Case {
        file: "anthropic-message-nosplit.json",
        provider: "anthropic",
        model: "claude-haiku-4-5",
        id: "msg_014p7gG3wDgGV9EUtLvnow3U",
        project: "default",
        time: "ingest",
        tokens: Tokens::text(100, 0, 1000, 0, 50, 0),
        batch: false,
        tier: "default",
        effort: None,
        cost: "0.0016",
        price: "anthropic/claude-haiku-4-5@2025-10-15",
        reported: None,
        partial: None,
    },
    // Batch at 50%: (10,000 × $15 + 1,000 × $75) / 2 = $0.1125
    Case {
        file: "anthropic-batch-line.json",
        provider: "anthropic",
        model: "claude-opus-4-1-20250805",
        id: "msg_01Jx9XtYbQ2cR4vW6nL8mK0p",
        project: "default",
        time: "ingest",
        tokens: Tokens::text(10_000, 0, 0, 0, 1000, 0),
        batch: true,
        tier: "default",
        effort: None,
        cost: "0.1125",
        price: "anthropic/claude-opus-4-1@2025-08-05+batch",
        reported: None,
        partial: None,
    },
    // promptTokenCount includes the 4,000 cached; thoughts are separate and billed as output.
    // 6,000 × $0.30 + 4,000 × $0.03 + 500 × $2.50 + 1,500 × $2.50 = $0.00692
    Case {
        file: "gemini.json",
        provider: "google",
        model: "gemini-2.5-flash",
        id: "mG3daKyTNqWq1MkP8Zu1yAo",
        project: "default",
        time: "ingest",
        tokens: Tokens::text(6000, 4000, 0, 0, 500, 1500),
        batch: false,
        tier: "default",
        effort: None,
        cost: "0.00692",
        price: "google/gemini-2.5-flash@2025-06-17",
        reported: None,
        partial: None,
    },
    // 250,000-token prompt > 200k: 250,000 × $2.50 + 1,000 × $15 = $0.64; Vertex createTime.
    Case {
        file: "gemini-vertex-long.json",
        provider: "vertex",
        model: "gemini-2.5-pro",
        id: "yq7daNjlLM2Pm9cPh8rT0Qw",
        project: "default",
        time: "2026-04-02T09:30:00.123456Z",
        tokens: Tokens::text(250_000, 0, 0, 0, 1000, 0),
        batch: false,
        tier: "default",
        effort: None,
        cost: "0.64",
        price: "vertex/gemini-2.5-pro@2000-01-01+long_context",
        reported: None,
        partial: None,
    },
    // The cache breakdown comes from metadata.usage_object; same sum as openai-chat.json,
    // and equal to LiteLLM's own response_cost.
    Case {
        file: "litellm-payload.json",
        provider: "openai",
        model: "gpt-5.2-2025-12-11",
        id: "chatcmpl-DqZ7f2KpXw3nR8sLmV0tYb1cAe9",
        project: "payments-platform",
        time: "2026-01-02T00:00:00.412Z",
        tokens: Tokens::text(4288, 8192, 0, 0, 640, 896),
        batch: false,
        tier: "default",
        effort: Some("high"),
        cost: "0.0304416",
        price: "openai/gpt-5.2@2025-12-11",
        reported: Some("0.0304416"),
        partial: None,
    },
    // No breakdown: prompt_tokens as uncached input. 1,000 × $1 + 100 × $5 = $0.0015
    Case {
        file: "litellm-flat.json",
        provider: "anthropic",
        model: "claude-haiku-4-5",
        id: "f2b7c1e0-5d4a-4c3b-9a8f-7e6d5c4b3a29",
        project: "support-bot",
        time: "2026-01-02T00:01:40Z",
        tokens: Tokens::text(1000, 0, 0, 0, 100, 0),
        batch: false,
        tier: "default",
        effort: Some("medium"),
        cost: "0.0015",
        price: "anthropic/claude-haiku-4-5@2025-10-15",
        reported: Some("0.0015"),
        partial: None,
    },
    // The contract's example: 9,000 × $1.75 + 1,000 × $0.175 + 1,800 × $14 + 200 × $14 = $0.043925
    Case {
        file: "canonical.json",
        provider: "openai",
        model: "gpt-5.2",
        id: "req-7f3a",
        project: "search",
        time: "2026-03-01T12:00:00Z",
        tokens: Tokens::text(9000, 1000, 0, 0, 1800, 200),
        batch: false,
        tier: "default",
        effort: None,
        cost: "0.043925",
        price: "openai/gpt-5.2@2025-12-11",
        reported: None,
        partial: None,
    },
    // Native Anthropic usage in a canonical record: 100 × $5 + 1,000 × $0.50 + 10 × $25 = $0.00125
    Case {
        file: "canonical-native-usage.json",
        provider: "anthropic",
        model: "claude-opus-4-5",
        id: "req-4410",
        project: "legal",
        time: "2026-03-02T08:15:00Z",
        tokens: Tokens::text(100, 1000, 0, 0, 10, 0),
        batch: false,
        tier: "default",
        effort: None,
        cost: "0.00125",
        price: "anthropic/claude-opus-4-5@2025-11-24",
        reported: None,
        partial: None,
    },
    // The envelope's time and project win: 1,000 × $0.10 + 1,000 × $0.40 = $0.0005
    Case {
        file: "envelope.json",
        provider: "openai",
        model: "gpt-4.1-nano-2025-04-14",
        id: "chatcmpl-E1f2G3h4I5j6K7l8M9n0",
        project: "search",
        time: "2026-05-01T00:00:00Z",
        tokens: Tokens::text(1000, 0, 0, 0, 1000, 0),
        batch: false,
        tier: "default",
        effort: None,
        cost: "0.0005",
        price: "openai/gpt-4.1-nano@2025-04-14",
        reported: None,
        partial: None,
    },
    // data carries no id: source#id is the key. 1,000 × $1.10 + 1,000 × $4.40 = $0.0055
    Case {
        file: "cloudevent.json",
        provider: "openai",
        model: "o4-mini",
        id: "/collectors/gateway-eu-1#evt-000311",
        project: "agents",
        time: "2026-06-01T10:00:00Z",
        tokens: Tokens::text(1000, 0, 0, 0, 1000, 0),
        batch: false,
        tier: "default",
        effort: None,
        cost: "0.0055",
        price: "openai/o4-mini@2025-04-16",
        reported: None,
        partial: None,
    },
    // OpenRouter passes the upstream price through: 3,120 × $1.25 + 464 × $10 + 1,024 × $10
    // = $0.01878, equal to the usage.cost it reported.
    Case {
        file: "openrouter-chat.json",
        provider: "openrouter",
        model: "google/gemini-2.5-pro",
        id: "gen-1795270333-Xk2bQ9mLp4TzR7vWc1Ny",
        project: "default",
        time: "2026-11-21T14:12:13Z",
        tokens: Tokens::text(3120, 0, 0, 0, 464, 1024),
        batch: false,
        tier: "default",
        effort: None,
        cost: "0.01878",
        price: "openrouter:google/gemini-2.5-pro@2025-03-25",
        reported: Some("0.01878"),
        partial: None,
    },
    // Bedrock Converse, the model logged beside the body (Anthropic's convention: inputTokens
    // excludes cache reads and writes). US inference profile, LiteLLM's Bedrock rates:
    // 1,520 × $3.30 + 2,048 × $0.33 + 512 × $4.125 + 310 × $16.50 = $0.01291884
    Case {
        file: "bedrock-converse.json",
        provider: "bedrock",
        model: "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
        id: "sha256:90ef736dec3fb493483a01cb183577f2",
        project: "support",
        time: "2026-11-20T10:00:00Z",
        tokens: Tokens::text(1520, 2048, 512, 0, 310, 0),
        batch: false,
        tier: "default",
        effort: None,
        cost: "0.01291884",
        price: "bedrock/us.anthropic.claude-sonnet-4-5-20250929-v1:0@2000-01-01",
        reported: None,
        partial: None,
    },
    // ConverseStream's last (metadata) event: 3,000 × $0.80 + 700 × $3.20 = $0.00464
    Case {
        file: "bedrock-converse-stream.json",
        provider: "bedrock",
        model: "amazon.nova-pro-v1:0",
        id: "sha256:694d04c13bc63c32e8619624ba4e8a6b",
        project: "default",
        time: "2026-11-20T10:05:00Z",
        tokens: Tokens::text(3000, 0, 0, 0, 700, 0),
        batch: false,
        tier: "default",
        effort: None,
        cost: "0.00464",
        price: "bedrock/amazon.nova-pro-v1:0@2000-01-01",
        reported: None,
        partial: None,
    },
    // InvokeModel, Meta Llama body: 4,200 × $0.72 + 800 × $0.72 = $0.0036
    Case {
        file: "bedrock-invoke-llama.json",
        provider: "bedrock",
        model: "meta.llama3-3-70b-instruct-v1:0",
        id: "sha256:fa2ec1719055a0daeb38aac17e478c6d",
        project: "default",
        time: "2026-11-20T10:10:00Z",
        tokens: Tokens::text(4200, 0, 0, 0, 800, 0),
        batch: false,
        tier: "default",
        effort: None,
        cost: "0.0036",
        price: "bedrock/meta.llama3-3-70b-instruct-v1:0@2000-01-01",
        reported: None,
        partial: None,
    },
    // InvokeModelWithResponseStream's last chunk, amazon-bedrock-invocationMetrics:
    // 5,000 × $0.80 + 1,000 × $4 = $0.008
    Case {
        file: "bedrock-invoke-stream-metrics.json",
        provider: "bedrock",
        model: "anthropic.claude-3-5-haiku-20241022-v1:0",
        id: "sha256:9eae26f24f49583202d1c07c24245bdb",
        project: "default",
        time: "2026-11-20T10:15:00Z",
        tokens: Tokens::text(5000, 0, 0, 0, 1000, 0),
        batch: false,
        tier: "default",
        effort: None,
        cost: "0.008",
        price: "bedrock/anthropic.claude-3-5-haiku-20241022-v1:0@2000-01-01",
        reported: None,
        partial: None,
    },
    // InvokeModel for Mistral: the body carries no usage, the logged response headers do.
    // 2,000 × $4 + 500 × $12 = $0.014
    Case {
        file: "bedrock-invoke-mistral-headers.json",
        provider: "bedrock",
        model: "mistral.mistral-large-2402-v1:0",
        id: "sha256:883001d45fb3202d6e102e86bd61c6b6",
        project: "default",
        time: "2026-11-20T10:20:00Z",
        tokens: Tokens::text(2000, 0, 0, 0, 500, 0),
        batch: false,
        tier: "default",
        effort: None,
        cost: "0.014",
        price: "bedrock/mistral.mistral-large-2402-v1:0@2000-01-01",
        reported: None,
        partial: None,
    },
    // InvokeModel, Amazon Nova body (Converse's usage, InvokeModel's cache field names):
    // 10,000 × $0.06 + 2,000 × $0.24 = $0.00108
    Case {
        file: "bedrock-invoke-nova.json",
        provider: "bedrock",
        model: "amazon.nova-lite-v1:0",
        id: "sha256:f67fd6061e0b7f3c87d97441e9816ec8",
        project: "default",
        time: "2026-11-20T10:25:00Z",
        tokens: Tokens::text(10000, 0, 0, 0, 2000, 0),
        batch: false,
        tier: "default",
        effort: None,
        cost: "0.00108",
        price: "bedrock/amazon.nova-lite-v1:0@2000-01-01",
        reported: None,
        partial: None,
    },
    // InvokeModel, Anthropic body: `msg_bdrk_` says Bedrock billed it; the bare model name
    // resolves to Bedrock's global profile: 1,200 × $3 + 400 × $15 = $0.0096
    Case {
        file: "bedrock-invoke-anthropic.json",
        provider: "bedrock",
        model: "claude-sonnet-4-5-20250929",
        id: "msg_bdrk_01Xq8Kp3LmN7rT2vW9yZa4Bc",
        project: "default",
        time: "ingest",
        tokens: Tokens::text(1200, 0, 0, 0, 400, 0),
        batch: false,
        tier: "default",
        effort: None,
        cost: "0.0096",
        price: "bedrock/global.anthropic.claude-sonnet-4-5-20250929-v1:0@2000-01-01",
        reported: None,
        partial: None,
    },
    // Vertex AI Gemini with audio input and grounding. Prompt 5,200 = 1,200 text + 4,000 audio;
    // 150 tool-use prompt tokens are input; one grounded prompt (2.x bills per prompt):
    // 1,350 × $0.30 + 4,000 × $1 (audio) + 600 × $2.50 + 300 × $2.50 = $0.006655, + $0.035 = $0.041655
    Case {
        file: "vertex-gemini-audio-grounding.json",
        provider: "vertex",
        model: "gemini-2.5-flash",
        id: "2Jc-aZ_NJtGz2fMP8Yq5oA0",
        project: "default",
        time: "2026-11-20T11:00:00Z",
        tokens: Tokens {
            audio_input: 4000,
            web_search: 1,
            ..Tokens::text(1350, 0, 0, 0, 600, 300)
        },
        batch: false,
        tier: "default",
        effort: None,
        cost: "0.041655",
        price: "vertex/gemini-2.5-flash@2000-01-01",
        reported: None,
        partial: None,
    },
    // Gemini 3 bills grounding per search query: 2 × $0.014, plus
    // 1,400 × $0.50 (prompt + tool-use prompt) + 200 × $3 + 100 × $3 = $0.0016 → $0.0296
    Case {
        file: "gemini-3-grounding.json",
        provider: "google",
        model: "gemini-3-flash-preview",
        id: "r4RqaeXkE6mkz7IPk8yW8Aw",
        project: "default",
        time: "2026-11-20T11:05:00Z",
        tokens: Tokens {
            web_search: 2,
            ..Tokens::text(1400, 0, 0, 0, 200, 100)
        },
        batch: false,
        tier: "default",
        effort: None,
        cost: "0.0296",
        price: "google/gemini-3-flash-preview@2025-12-17",
        reported: None,
        partial: None,
    },
    // Anthropic on Vertex (`msg_vrtx_`, `model@version`):
    // 2,500 × $3 + 4,000 × $0.30 + 1,000 × $3.75 + 600 × $15 = $0.02145
    Case {
        file: "vertex-anthropic.json",
        provider: "vertex",
        model: "claude-sonnet-4-5@20250929",
        id: "msg_vrtx_01K4pZ8wQ2mN6rT9vY3xB7cD",
        project: "default",
        time: "2026-11-20T11:10:00Z",
        tokens: Tokens::text(2500, 4000, 1000, 0, 600, 0),
        batch: false,
        tier: "default",
        effort: None,
        cost: "0.02145",
        price: "vertex/claude-sonnet-4-5@2000-01-01",
        reported: None,
        partial: None,
    },
    // Azure OpenAI (prompt_filter_results): 2,976 × $2.50 + 1,024 × $1.25 + 500 × $10 = $0.01372
    Case {
        file: "azure-openai-chat.json",
        provider: "azure",
        model: "gpt-4o-2024-11-20",
        id: "chatcmpl-AzR9kT3mQ7vW2xY8pL5nB1cD4eF6",
        project: "default",
        time: "2026-11-26T10:50:00Z",
        tokens: Tokens::text(2976, 1024, 0, 0, 500, 0),
        batch: false,
        tier: "default",
        effort: None,
        cost: "0.01372",
        price: "azure/gpt-4o@2000-01-01",
        reported: None,
        partial: None,
    },
    // DeepSeek: cache hit 6,000 + miss 4,000 = prompt; 11:00 UTC is in the standard hours
    // (00:30-16:30), and reasoning follows that window's output rate:
    // 4,000 × $0.55 + 6,000 × $0.14 + (500 + 2,500) × $2.19 = $0.00961
    Case {
        file: "deepseek-reasoner.json",
        provider: "deepseek",
        model: "deepseek-reasoner",
        id: "930c60df-bf64-41c9-a88e-3ec75f81e00e",
        project: "default",
        time: "2026-11-26T11:00:00Z",
        tokens: Tokens::text(4000, 6000, 0, 0, 500, 2500),
        batch: false,
        tier: "default",
        effort: None,
        cost: "0.00961",
        price: "deepseek/deepseek-reasoner@2000-01-01+hours:00:30-16:30",
        reported: None,
        partial: None,
    },
    // xAI counts reasoning beside the completion (total = prompt + completion + reasoning):
    // 500 × $3 + 1,500 × $0.75 + 300 × $15 + 1,200 × $15 = $0.025125, what its ticks say
    Case {
        file: "xai-grok.json",
        provider: "xai",
        model: "grok-4-0709",
        id: "0a7c3e51-4b2d-4f8e-9c61-2d5e8f1a3b7c",
        project: "default",
        time: "2026-11-26T11:10:00Z",
        tokens: Tokens::text(500, 1500, 0, 0, 300, 1200),
        batch: false,
        tier: "default",
        effort: None,
        cost: "0.025125",
        price: "xai/grok-4-0709@2000-01-01",
        reported: Some("0.025125"),
        partial: None,
    },
    // xAI server-side tools: 3 search calls no sheet prices, so the tokens alone are priced
    // and the record is flagged: 10,000 × $3 + 500 × $15 + 1,000 × $15 = $0.0525
    Case {
        file: "xai-grok-tools.json",
        provider: "xai",
        model: "grok-4-0709",
        id: "b2e7c4a1-9d3f-4a6e-8b5c-7f1e2d3a4c5b",
        project: "default",
        time: "2026-11-26T13:30:00Z",
        tokens: Tokens {
            web_search: 3,
            ..Tokens::text(10000, 0, 0, 0, 500, 1000)
        },
        batch: false,
        tier: "default",
        effort: None,
        cost: "0.0525",
        price: "xai/grok-4-0709@2000-01-01",
        reported: Some("0.0825"),
        partial: Some("3 web_search calls not priced"),
    },
    // Groq's last stream chunk carries the usage in x_groq: 6,000 × $0.59 + 1,000 × $0.79 = $0.00433
    Case {
        file: "groq-chunk.json",
        provider: "groq",
        model: "llama-3.3-70b-versatile",
        id: "chatcmpl-8f2c4a6e-1b3d-4f5a-9c7e-0d2b4f6a8c1e",
        project: "default",
        time: "2026-11-26T11:20:00Z",
        tokens: Tokens::text(6000, 0, 0, 0, 1000, 0),
        batch: false,
        tier: "default",
        effort: None,
        cost: "0.00433",
        price: "groq/llama-3.3-70b-versatile@2000-01-01",
        reported: None,
        partial: None,
    },
    // Perplexity Sonar Pro, high search context: 1,200 × $3 + 800 × $15 + the $0.014 request
    // fee (its searches are in the fee) = $0.0296, equal to usage.cost.total_cost
    Case {
        file: "perplexity-sonar-pro.json",
        provider: "perplexity",
        model: "sonar-pro",
        id: "3c90c3cc-0d44-4b50-8888-8dd25736052a",
        project: "default",
        time: "2026-11-26T11:30:00Z",
        tokens: Tokens {
            web_search: 2,
            ..Tokens::text(1200, 0, 0, 0, 800, 0)
        },
        batch: false,
        tier: "default",
        effort: None,
        cost: "0.0296",
        price: "perplexity/sonar-pro@2025-01-21",
        reported: Some("0.0296"),
        partial: None,
    },
    // Sonar Deep Research: citation tokens at the input rate, reasoning at $3, searches at
    // $5 / 1,000: (20 + 12,000) × $2 + 5,000 × $8 + 90,000 × $3 = $0.33404, + 20 × $0.005 = $0.43404
    Case {
        file: "perplexity-deep-research.json",
        provider: "perplexity",
        model: "sonar-deep-research",
        id: "6f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b",
        project: "default",
        time: "2026-11-26T11:40:00Z",
        tokens: Tokens {
            web_search: 20,
            ..Tokens::text(12020, 0, 0, 0, 5000, 90000)
        },
        batch: false,
        tier: "default",
        effort: None,
        cost: "0.43404",
        price: "perplexity/sonar-deep-research@2025-02-14",
        reported: Some("0.43404"),
        partial: None,
    },
    // Cohere v2: billed_units, not tokens (which count the prompt template):
    // 5,000 × $2.50 + 1,000 × $10 = $0.0225
    Case {
        file: "cohere-v2.json",
        provider: "cohere",
        model: "command-a-03-2025",
        id: "c14c80c3-18eb-4519-9460-6c92edd8cfb4",
        project: "default",
        time: "2026-11-20T12:00:00Z",
        tokens: Tokens::text(5000, 0, 0, 0, 1000, 0),
        batch: false,
        tier: "default",
        effort: None,
        cost: "0.0225",
        price: "cohere/command-a@2000-01-01",
        reported: None,
        partial: None,
    },
    // OpenRouter, bring-your-own-key: the upstream charged the key $0.0165 (3,000 × $3 +
    // 500 × $15, our price too) and OpenRouter its 5% fee: reported $0.000825 + $0.0165
    Case {
        file: "openrouter-byok.json",
        provider: "openrouter",
        model: "anthropic/claude-sonnet-4.5",
        id: "gen-1795693800-Bq7Lz2Xc9Vn4Mk6Pw8Rt",
        project: "default",
        time: "2026-11-26T11:50:00Z",
        tokens: Tokens::text(3000, 0, 0, 0, 500, 0),
        batch: false,
        tier: "default",
        effort: None,
        cost: "0.0165",
        price: "openrouter:anthropic/claude-sonnet-4-5@2025-09-29",
        reported: Some("0.017325"),
        partial: None,
    },
    // Responses with two web_search_call items at $10 / 1,000:
    // 8,000 × $1.25 + 500 × $10 + 1,000 × $10 = $0.025, + 2 × $0.01 = $0.045
    Case {
        file: "openai-response-web-search.json",
        provider: "openai",
        model: "gpt-5-2025-08-07",
        id: "resp_68af4030592c81938ec0a5fbab4a3e9f05438e46b5f69a3b",
        project: "default",
        time: "2026-11-26T12:00:00Z",
        tokens: Tokens {
            web_search: 2,
            ..Tokens::text(8000, 0, 0, 0, 500, 1000)
        },
        batch: false,
        tier: "default",
        effort: None,
        cost: "0.045",
        price: "openai/gpt-5@2025-08-07",
        reported: None,
        partial: None,
    },
    // Anthropic server_tool_use.web_search_requests at $10 / 1,000:
    // 6,039 × $3 + 931 × $15 = $0.032082, + 3 × $0.01 = $0.062082
    Case {
        file: "anthropic-web-search.json",
        provider: "anthropic",
        model: "claude-sonnet-4-5-20250929",
        id: "msg_01Wn5Q8zK3pL7xR2vT9yB4cM",
        project: "default",
        time: "2026-11-20T13:00:00Z",
        tokens: Tokens {
            web_search: 3,
            ..Tokens::text(6039, 0, 0, 0, 931, 0)
        },
        batch: false,
        tier: "default",
        effort: None,
        cost: "0.062082",
        price: "anthropic/claude-sonnet-4-5@2025-09-29",
        reported: None,
        partial: None,
    },
    // Audio in and out at their own rates, never the text rate:
    // 300 × $2.50 + 1,200 × $40 + 100 × $10 + 800 × $80 = $0.11375
    Case {
        file: "openai-audio-chat.json",
        provider: "openai",
        model: "gpt-4o-audio-preview-2024-12-17",
        id: "chatcmpl-Au9dK2mP7qR4sT1vW8xY3zB6",
        project: "default",
        time: "2026-11-26T12:10:00Z",
        tokens: Tokens {
            audio_input: 1200,
            audio_output: 800,
            ..Tokens::text(300, 0, 0, 0, 100, 0)
        },
        batch: false,
        tier: "default",
        effort: None,
        cost: "0.11375",
        price: "openai/gpt-4o-audio-preview@2024-12-17",
        reported: None,
        partial: None,
    },
    // Mistral (maker inferred from the model): 4,000 × $2 + 1,000 × $6 = $0.014
    Case {
        file: "mistral-chat.json",
        provider: "mistral",
        model: "mistral-large-latest",
        id: "cmpl-e5cc70bb28c444948073e77776eb30ef",
        project: "default",
        time: "2026-11-26T12:20:00Z",
        tokens: Tokens::text(4000, 0, 0, 0, 1000, 0),
        batch: false,
        tier: "default",
        effort: None,
        cost: "0.014",
        price: "mistral/mistral-large@2000-01-01",
        reported: None,
        partial: None,
    },
    // Cerebras (time_info): 3,000 × $0.85 + 1,000 × $1.20 = $0.00375
    Case {
        file: "cerebras-chat.json",
        provider: "cerebras",
        model: "llama-3.3-70b",
        id: "chatcmpl-3f8a1c2e-7b4d-4e9a-8c6f-1d2e3f4a5b6c",
        project: "default",
        time: "2026-11-26T12:30:00Z",
        tokens: Tokens::text(3000, 0, 0, 0, 1000, 0),
        batch: false,
        tier: "default",
        effort: None,
        cost: "0.00375",
        price: "cerebras/llama-3.3-70b@2000-01-01",
        reported: None,
        partial: None,
    },
    // DeepInfra (estimated_cost): 10,000 × $0.23 + 2,000 × $0.40 = $0.0031
    Case {
        file: "deepinfra-chat.json",
        provider: "deepinfra",
        model: "meta-llama/Llama-3.3-70B-Instruct",
        id: "chatcmpl-9c8b7a6d5e4f3a2b1c0d9e8f",
        project: "default",
        time: "2026-11-26T12:40:00Z",
        tokens: Tokens::text(10000, 0, 0, 0, 2000, 0),
        batch: false,
        tier: "default",
        effort: None,
        cost: "0.0031",
        price: "deepinfra/meta-llama/Llama-3.3-70B-Instruct@2000-01-01",
        reported: Some("0.0031"),
        partial: None,
    },
    // Together, named by the proxy's envelope: 6,000 × $0.88 = $0.00528
    Case {
        file: "together-chat.json",
        provider: "together",
        model: "meta-llama/Llama-3.3-70B-Instruct-Turbo",
        id: "8e2b4c6d1a3f5e7b-SJC",
        project: "default",
        time: "2026-11-20T14:00:00Z",
        tokens: Tokens::text(5000, 0, 0, 0, 1000, 0),
        batch: false,
        tier: "default",
        effort: None,
        cost: "0.00528",
        price: "together/meta-llama/Llama-3.3-70B-Instruct-Turbo@2000-01-01",
        reported: None,
        partial: None,
    },
    // Fireworks (its `accounts/fireworks/models/` namespace): 6,000 × $0.90 = $0.0054
    Case {
        file: "fireworks-chat.json",
        provider: "fireworks",
        model: "accounts/fireworks/models/llama-v3p3-70b-instruct",
        id: "c5b3d0e2-7a91-4f6b-8e24-3d1a9c7f5b20",
        project: "default",
        time: "2026-11-26T13:00:00Z",
        tokens: Tokens::text(5000, 0, 0, 0, 1000, 0),
        batch: false,
        tier: "default",
        effort: None,
        cost: "0.0054",
        price: "fireworks/accounts/fireworks/models/llama-v3p3-70b-instruct@2000-01-01",
        reported: None,
        partial: None,
    },
];

#[test]
fn every_sample_parses_into_the_expected_buckets_and_costs_what_was_worked_out() {
    let book = book();
    for case in CASES {
        let line = sample(case.file);
        let priced = prepare(book, &line);
        let record = &priced.record;
        let at = case.file;
        assert_eq!(record.tokens, case.tokens, "{at}: tokens");
        assert_eq!(record.provider, case.provider, "{at}: provider");
        assert_eq!(record.model, case.model, "{at}: model");
        assert_eq!(record.id, case.id, "{at}: id");
        assert_eq!(record.project, case.project, "{at}: project");
        assert_eq!(record.batch, case.batch, "{at}: batch");
        assert_eq!(record.service_tier, case.tier, "{at}: tier");
        assert_eq!(
            record.reasoning_effort.as_deref(),
            case.effort,
            "{at}: effort"
        );
        let expected_time = if case.time == "ingest" {
            crate::helpers::ingest_time()
        } else {
            chrono::DateTime::parse_from_rfc3339(case.time)
                .unwrap()
                .to_utc()
        };
        assert_eq!(record.time, expected_time, "{at}: time");
        assert_eq!(
            record.reported_cost.map(|c| c.to_string()).as_deref(),
            case.reported,
            "{at}: reported cost"
        );
        match &priced.price {
            PriceOutcome::Priced(p) => {
                assert_eq!(p.cost.to_string(), case.cost, "{at}: cost");
                assert_eq!(p.price_ref, case.price, "{at}: price ref");
                match (case.partial, p.partial.as_deref()) {
                    (None, None) => {}
                    (Some(want), Some(got)) => assert!(got.contains(want), "{at}: {got}"),
                    (want, got) => panic!("{at}: partial {got:?}, expected {want:?}"),
                }
            }
            PriceOutcome::Unpriced(u) => panic!("{at}: unpriced: {}", u.reason),
        }
    }
}

#[test]
fn every_sample_file_is_covered_by_a_case() {
    let dir = crate::helpers::sample_path("");
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            CASES.iter().any(|c| c.file == name),
            "tests/samples/{name} has no case in samples.rs"
        );
    }
}

#[test]
fn attribution_fields_are_carried_through() {
    let book = book();
    let litellm = prepare(book, &sample("litellm-payload.json")).record;
    assert_eq!(litellm.user.as_deref(), Some("cust_00917"));
    for (key, value) in [
        ("key_alias", "billing-svc-prod"),
        ("team", "payments-platform"),
        ("org", "org_a13f0c"),
        ("feature", "invoice-summarizer"),
        ("env", "prod"),
        ("invoice-summarizer", "true"),
    ] {
        assert_eq!(
            litellm.tags.get(key).map(String::as_str),
            Some(value),
            "tag {key}"
        );
    }
    assert!(
        !litellm.tags.keys().any(|k| k.starts_with("User-Agent")),
        "user-agent tags are not attribution"
    );
    assert_eq!(litellm.reported_cost.unwrap().to_string(), "0.0304416");

    let envelope = prepare(book, &sample("envelope.json")).record;
    assert_eq!(envelope.user.as_deref(), Some("svc-ranker"));
    assert_eq!(
        envelope.tags.get("team").map(String::as_str),
        Some("ranking")
    );

    let openrouter = prepare(book, &sample("openrouter-chat.json")).record;
    assert_eq!(openrouter.reported_cost.unwrap().to_string(), "0.01878");
}

#[test]
fn a_line_without_id_gets_the_same_content_hash_every_time() {
    let line = r#"{"model":"gpt-5.2","tokens":{"input":10,"output":1}}"#;
    let first = llm_meter::usage::parse_record(line, Default::default()).unwrap();
    let second =
        llm_meter::usage::parse_record(&format!("  {line}\r\n"), Default::default()).unwrap();
    let other = llm_meter::usage::parse_record(
        r#"{"model":"gpt-5.2","tokens":{"input":11,"output":1}}"#,
        Default::default(),
    )
    .unwrap();
    assert!(first.id.as_deref().unwrap().starts_with("sha256:"));
    assert_eq!(
        first.id, second.id,
        "surrounding whitespace does not change the record"
    );
    assert_ne!(first.id, other.id, "different content, different id");
}

#[test]
fn a_time_added_next_to_a_shape_without_one_is_used() {
    let book = book();
    let mut value: serde_json::Value =
        serde_json::from_str(&sample("anthropic-message.json")).unwrap();
    value["time"] = serde_json::json!("2026-03-01T12:05:00Z");
    value["project"] = serde_json::json!("support");
    let record = prepare(book, &value.to_string()).record;
    assert_eq!(record.time.to_rfc3339(), "2026-03-01T12:05:00+00:00");
    assert_eq!(record.project, "support");
    // A shape with its own time keeps it.
    let mut chat: serde_json::Value = serde_json::from_str(&sample("openai-chat.json")).unwrap();
    chat["time"] = serde_json::json!("2020-01-01T00:00:00Z");
    assert_eq!(
        prepare(book, &chat.to_string()).record.time.to_rfc3339(),
        "2026-01-01T00:00:00+00:00"
    );
}

/// Lines a reviewer found mishandled, each with what it must become.
#[test]
fn provider_extras_are_read_as_the_providers_write_them() {
    let parse = |line: &str| {
        llm_meter::usage::parse_record(line, Default::default())
            .unwrap_or_else(|e| panic!("{line}: {e}"))
            .tokens
    };
    // Bedrock's headers in the case a proxy logged them.
    let headers = sample("bedrock-invoke-mistral-headers.json")
        .replace(
            "x-amzn-bedrock-input-token-count",
            "X-Amzn-Bedrock-Input-Token-Count",
        )
        .replace(
            "x-amzn-bedrock-output-token-count",
            "X-Amzn-Bedrock-Output-Token-Count",
        );
    let tokens = parse(&headers);
    assert_eq!((tokens.input, tokens.output), (2000, 500));
    // A canonical record with a field named like a Bedrock body's stays canonical.
    let tokens = parse(r#"{"model":"gpt-5.2","tokens":{"input":7,"output":1},"outputs":["kept"]}"#);
    assert_eq!(tokens.input, 7);
    // Output items that are not objects are skipped, not fatal.
    let tokens = parse(
        r#"{"object":"response","model":"gpt-5","output":["text",{"type":"web_search_call","status":"completed"}],"usage":{"input_tokens":10,"output_tokens":2}}"#,
    );
    assert_eq!(tokens.web_search, 1);
    // xAI: its usage counts the billable tool calls; the items also list failed ones.
    let tokens = parse(
        r#"{"object":"response","model":"grok-4","output":[{"type":"web_search_call","status":"completed"},{"type":"web_search_call","status":"completed"}],"usage":{"input_tokens":10,"output_tokens":2,"server_side_tool_usage_details":{"web_search_calls":1}}}"#,
    );
    assert_eq!(tokens.web_search, 1);
    // Cached image tokens stay cached: a Gemini prompt mostly image and mostly cached.
    let tokens = parse(
        r#"{"modelVersion":"gemini-2.5-flash","usageMetadata":{"promptTokenCount":10000,"cachedContentTokenCount":9000,"candidatesTokenCount":10,"promptTokensDetails":[{"modality":"TEXT","tokenCount":2000},{"modality":"IMAGE","tokenCount":8000}]}}"#,
    );
    assert_eq!(
        (tokens.cached_input, tokens.image_input, tokens.input),
        (9000, 1000, 0)
    );
    // Per-call counts past any real request are refused: they could overflow the sums.
    let error = llm_meter::usage::parse_record(
        r#"{"type":"message","model":"claude-sonnet-4-5","usage":{"input_tokens":1,"output_tokens":1,"server_tool_use":{"web_search_requests":1000000000}}}"#,
        Default::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("web_search calls is absurdly large"),
        "{error}"
    );
}
