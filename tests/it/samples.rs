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
}

const fn tokens(
    input: u64,
    cached_input: u64,
    cache_write_5m: u64,
    cache_write_1h: u64,
    output: u64,
    reasoning: u64,
) -> Tokens {
    Tokens {
        input,
        cached_input,
        cache_write_5m,
        cache_write_1h,
        output,
        reasoning,
    }
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
        tokens: tokens(4288, 8192, 0, 0, 640, 896),
        batch: false,
        tier: "default",
        effort: None,
        cost: "0.0304416",
        price: "openai/gpt-5.2@2025-12-11",
    },
    // Final stream chunk (choices: []): 2,000 × $0.25 + 244 × $2 + 256 × $2 = $0.0015
    Case {
        file: "openai-chat-chunk.json",
        provider: "openai",
        model: "gpt-5-mini-2025-08-07",
        id: "chatcmpl-C1a7ZbQk2Lw9xR3mN8vT5yP0sJdU",
        project: "default",
        time: "2026-01-01T01:00:00Z",
        tokens: tokens(2000, 0, 0, 0, 244, 256),
        batch: false,
        tier: "default",
        effort: None,
        cost: "0.0015",
        price: "openai/gpt-5-mini@2025-08-07",
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
        tokens: tokens(200_000, 100_000, 0, 0, 500, 1500),
        batch: false,
        tier: "default",
        effort: Some("xhigh"),
        cost: "1.095",
        price: "openai/gpt-5.4@2026-03-05+long_context",
    },
    // 1,000 × $0.75 + 60 × $4.50 + 40 × $4.50 = $0.0012
    Case {
        file: "openai-response-completed.json",
        provider: "openai",
        model: "gpt-5.4-mini-2026-03-17",
        id: "resp_0b2c4d6e8f0a1b3c5d7e9f1a3b5c7d9e",
        project: "default",
        time: "2026-04-01T01:00:00Z",
        tokens: tokens(1000, 0, 0, 0, 60, 40),
        batch: false,
        tier: "default",
        effort: Some("low"),
        cost: "0.0012",
        price: "openai/gpt-5.4-mini@2026-03-17",
    },
    // An incomplete response is billed for what it used: 5,000 × $1.75 + 4,000 × $14 = $0.06475
    Case {
        file: "openai-response-incomplete.json",
        provider: "openai",
        model: "gpt-5.2",
        id: "resp_7f6e5d4c3b2a19080f1e2d3c4b5a6978",
        project: "default",
        time: "2026-04-01T02:00:00Z",
        tokens: tokens(5000, 0, 0, 0, 0, 4000),
        batch: false,
        tier: "default",
        effort: Some("high"),
        cost: "0.06475",
        price: "openai/gpt-5.2@2025-12-11",
    },
    // Batch: half of $0.15 / $0.60. 1,000 × $0.075 + 200 × $0.30 = $0.000135; time = body.created
    Case {
        file: "openai-batch-line.json",
        provider: "openai",
        model: "gpt-4o-mini-2024-07-18",
        id: "chatcmpl-AOe4x7Yz1Q2w3E4r5T6y7U8i9O0p",
        project: "default",
        time: "2024-11-01T12:00:00Z",
        tokens: tokens(1000, 0, 0, 0, 200, 0),
        batch: true,
        tier: "default",
        effort: None,
        cost: "0.000135",
        price: "openai/gpt-4o-mini@2024-10-01+batch",
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
        tokens: tokens(1500, 20_000, 3000, 2000, 800, 0),
        batch: false,
        tier: "default",
        effort: None,
        cost: "0.04575",
        price: "anthropic/claude-sonnet-4-5@2025-09-29",
    },
    // No TTL split: every write is a 5-minute write. 100 × $1 + 1,000 × $1.25 + 50 × $5 = $0.0016
    Case {
        file: "anthropic-message-nosplit.json",
        provider: "anthropic",
        model: "claude-haiku-4-5",
        id: "msg_014p7gG3wDgGV9EUtLvnow3U",
        project: "default",
        time: "ingest",
        tokens: tokens(100, 0, 1000, 0, 50, 0),
        batch: false,
        tier: "default",
        effort: None,
        cost: "0.0016",
        price: "anthropic/claude-haiku-4-5@2025-10-15",
    },
    // Batch at 50%: (10,000 × $15 + 1,000 × $75) / 2 = $0.1125
    Case {
        file: "anthropic-batch-line.json",
        provider: "anthropic",
        model: "claude-opus-4-1-20250805",
        id: "msg_01Jx9XtYbQ2cR4vW6nL8mK0p",
        project: "default",
        time: "ingest",
        tokens: tokens(10_000, 0, 0, 0, 1000, 0),
        batch: true,
        tier: "default",
        effort: None,
        cost: "0.1125",
        price: "anthropic/claude-opus-4-1@2025-08-05+batch",
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
        tokens: tokens(6000, 4000, 0, 0, 500, 1500),
        batch: false,
        tier: "default",
        effort: None,
        cost: "0.00692",
        price: "google/gemini-2.5-flash@2025-06-17",
    },
    // 250,000-token prompt > 200k: 250,000 × $2.50 + 1,000 × $15 = $0.64; Vertex createTime.
    Case {
        file: "gemini-vertex-long.json",
        provider: "google",
        model: "gemini-2.5-pro",
        id: "yq7daNjlLM2Pm9cPh8rT0Qw",
        project: "default",
        time: "2026-04-02T09:30:00.123456Z",
        tokens: tokens(250_000, 0, 0, 0, 1000, 0),
        batch: false,
        tier: "default",
        effort: None,
        cost: "0.64",
        price: "google/gemini-2.5-pro@2025-03-25+long_context",
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
        tokens: tokens(4288, 8192, 0, 0, 640, 896),
        batch: false,
        tier: "default",
        effort: Some("high"),
        cost: "0.0304416",
        price: "openai/gpt-5.2@2025-12-11",
    },
    // No breakdown: prompt_tokens as uncached input. 1,000 × $1 + 100 × $5 = $0.0015
    Case {
        file: "litellm-flat.json",
        provider: "anthropic",
        model: "claude-haiku-4-5",
        id: "f2b7c1e0-5d4a-4c3b-9a8f-7e6d5c4b3a29",
        project: "support-bot",
        time: "2026-01-02T00:01:40Z",
        tokens: tokens(1000, 0, 0, 0, 100, 0),
        batch: false,
        tier: "default",
        effort: Some("medium"),
        cost: "0.0015",
        price: "anthropic/claude-haiku-4-5@2025-10-15",
    },
    // The contract's example: 9,000 × $1.75 + 1,000 × $0.175 + 1,800 × $14 + 200 × $14 = $0.043925
    Case {
        file: "canonical.json",
        provider: "openai",
        model: "gpt-5.2",
        id: "req-7f3a",
        project: "search",
        time: "2026-03-01T12:00:00Z",
        tokens: tokens(9000, 1000, 0, 0, 1800, 200),
        batch: false,
        tier: "default",
        effort: None,
        cost: "0.043925",
        price: "openai/gpt-5.2@2025-12-11",
    },
    // Native Anthropic usage in a canonical record: 100 × $5 + 1,000 × $0.50 + 10 × $25 = $0.00125
    Case {
        file: "canonical-native-usage.json",
        provider: "anthropic",
        model: "claude-opus-4-5",
        id: "req-4410",
        project: "legal",
        time: "2026-03-02T08:15:00Z",
        tokens: tokens(100, 1000, 0, 0, 10, 0),
        batch: false,
        tier: "default",
        effort: None,
        cost: "0.00125",
        price: "anthropic/claude-opus-4-5@2025-11-24",
    },
    // The envelope's time and project win: 1,000 × $0.10 + 1,000 × $0.40 = $0.0005
    Case {
        file: "envelope.json",
        provider: "openai",
        model: "gpt-4.1-nano-2025-04-14",
        id: "chatcmpl-E1f2G3h4I5j6K7l8M9n0",
        project: "search",
        time: "2026-05-01T00:00:00Z",
        tokens: tokens(1000, 0, 0, 0, 1000, 0),
        batch: false,
        tier: "default",
        effort: None,
        cost: "0.0005",
        price: "openai/gpt-4.1-nano@2025-04-14",
    },
    // data carries no id: source#id is the key. 1,000 × $1.10 + 1,000 × $4.40 = $0.0055
    Case {
        file: "cloudevent.json",
        provider: "openai",
        model: "o4-mini",
        id: "/collectors/gateway-eu-1#evt-000311",
        project: "agents",
        time: "2026-06-01T10:00:00Z",
        tokens: tokens(1000, 0, 0, 0, 1000, 0),
        batch: false,
        tier: "default",
        effort: None,
        cost: "0.0055",
        price: "openai/o4-mini@2025-04-16",
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
        tokens: tokens(3120, 0, 0, 0, 464, 1024),
        batch: false,
        tier: "default",
        effort: None,
        cost: "0.01878",
        price: "openrouter:google/gemini-2.5-pro@2025-03-25",
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
        match &priced.price {
            PriceOutcome::Priced(p) => {
                assert_eq!(p.cost.to_string(), case.cost, "{at}: cost");
                assert_eq!(p.price_ref, case.price, "{at}: price ref");
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
