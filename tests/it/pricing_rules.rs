//! The pricing engine, table-driven: every expected cost is worked out by hand.

use llm_meter::prepare::Preparer;
use llm_meter::pricing::{PriceBook, PriceOutcome, ProjectOverride};
use llm_meter::usage::Format;
use rust_decimal::Decimal;

use crate::helpers::{book, cost_of, ingest_time, prepare};

fn canonical(provider: &str, model: &str, time: &str, tokens: &str, extra: &str) -> String {
    format!(
        r#"{{"provider":"{provider}","model":"{model}","time":"{time}","tokens":{tokens}{extra}}}"#
    )
}

#[test]
fn the_contract_worked_examples_reproduce_exactly() {
    let book = book();
    for (tokens, expected) in [
        // 10,000 × $1.75 + 2,000 × $14
        (r#"{"input":10000,"output":2000}"#, "0.0455"),
        // 100,000 × $1.75 + 5,000 × $14
        (r#"{"input":100000,"output":5000}"#, "0.245"),
        // 300,000 × $1.75 + 10,000 × $14: gpt-5.2 has no long-context tier
        (r#"{"input":300000,"output":10000}"#, "0.665"),
        // 300,000 × $0.175 + 10,000 × $14
        (r#"{"cached_input":300000,"output":10000}"#, "0.1925"),
    ] {
        let line = canonical("openai", "gpt-5.2", "2026-03-01T12:00:00Z", tokens, "");
        assert_eq!(cost_of(book, &line), expected, "{tokens}");
    }
}

#[test]
fn table_of_prices_by_model_date_and_tier() {
    let book = book();
    // (provider, model, time, tokens, extra fields, expected USD)
    let cases: &[(&str, &str, &str, &str, &str, &str)] = &[
        // Dated snapshots and gateway spellings resolve to the same price.
        (
            "openai",
            "gpt-5.2-2025-12-11",
            "2026-03-01T00:00:00Z",
            r#"{"input":10000,"output":2000}"#,
            "",
            "0.0455",
        ),
        (
            "aimlapi",
            "openai/gpt-5-2",
            "2026-03-01T00:00:00Z",
            r#"{"input":10000,"output":2000}"#,
            "",
            "0.0455",
        ),
        (
            "openrouter",
            "openai/gpt-5.2-20251211",
            "2026-03-01T00:00:00Z",
            r#"{"input":10000,"output":2000}"#,
            "",
            "0.0455",
        ),
        (
            "cometapi",
            "gpt-5.2",
            "2026-03-01T00:00:00Z",
            r#"{"input":10000,"output":2000}"#,
            "",
            "0.0455",
        ),
        (
            "openrouter",
            "anthropic/claude-sonnet-4.5",
            "2026-03-01T00:00:00Z",
            r#"{"input":1000,"output":1000}"#,
            "",
            "0.018",
        ),
        (
            "anthropic",
            "claude-sonnet-4-5@20250929",
            "2026-03-01T00:00:00Z",
            r#"{"input":1000,"output":1000}"#,
            "",
            "0.018",
        ),
        (
            "anthropic",
            "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
            "2026-03-01T00:00:00Z",
            r#"{"input":1000,"output":1000}"#,
            "",
            "0.018",
        ),
        (
            "openai",
            "gpt-4o-2024-08-06",
            "2025-01-01T00:00:00Z",
            r#"{"input":1000000}"#,
            "",
            "2.5",
        ),
        // o3 was cut from $10/$40 to $2/$8 on 2025-06-10: 1M input tokens each side of it.
        (
            "openai",
            "o3",
            "2025-06-09T23:59:59Z",
            r#"{"input":1000000}"#,
            "",
            "10",
        ),
        (
            "openai",
            "o3",
            "2025-06-10T00:00:00Z",
            r#"{"input":1000000}"#,
            "",
            "2",
        ),
        // Flex is priced at batch rates: (1,000 × $1.75 + 1,000 × $14) / 2
        (
            "openai",
            "gpt-5.2",
            "2026-03-01T00:00:00Z",
            r#"{"input":1000,"output":1000}"#,
            r#","service_tier":"flex""#,
            "0.007875",
        ),
        // Priority at its own rates: 1,000 × $3.50 + 1,000 × $28
        (
            "openai",
            "gpt-5.2",
            "2026-03-01T00:00:00Z",
            r#"{"input":1000,"output":1000}"#,
            r#","service_tier":"priority""#,
            "0.0315",
        ),
        // "fast" is reported back as priority.
        (
            "openai",
            "gpt-5.2",
            "2026-03-01T00:00:00Z",
            r#"{"input":1000,"output":1000}"#,
            r#","service_tier":"fast""#,
            "0.0315",
        ),
        // gpt-5.4 batch cached input is the published rounded $0.13, not $0.125:
        // 100,000 × $0.13. Past 272k the long-context batch rate $0.25 applies: 300,000 × $0.25.
        (
            "openai",
            "gpt-5.4",
            "2026-04-01T00:00:00Z",
            r#"{"cached_input":100000}"#,
            r#","batch":true"#,
            "0.013",
        ),
        (
            "openai",
            "gpt-5.4",
            "2026-04-01T00:00:00Z",
            r#"{"cached_input":300000}"#,
            r#","batch":true"#,
            "0.075",
        ),
        // Gemini batch halves input and output but not cache reads:
        // 1,000 × $0.15 + 1,000 × $0.03 + 1,000 × $1.25
        (
            "google",
            "gemini-2.5-flash",
            "2026-03-01T00:00:00Z",
            r#"{"input":1000,"cached_input":1000,"output":1000}"#,
            r#","batch":true"#,
            "0.00143",
        ),
        // Gemini priority is 1.8×: 100,000 × $1.25 × 1.8
        (
            "google",
            "gemini-2.5-pro",
            "2026-03-01T00:00:00Z",
            r#"{"input":100000}"#,
            r#","service_tier":"priority""#,
            "0.225",
        ),
        // Long context is decided by all input, cached included: 150,000 + 60,000 > 200,000.
        // 150,000 × $6 + 60,000 × $0.60 + 1,000 × $22.50
        (
            "anthropic",
            "claude-sonnet-4-5",
            "2026-03-01T00:00:00Z",
            r#"{"input":150000,"cached_input":60000,"output":1000}"#,
            "",
            "0.9585",
        ),
        // Exactly at the threshold is not above it: 200,000 × $3
        (
            "anthropic",
            "claude-sonnet-4-5",
            "2026-03-01T00:00:00Z",
            r#"{"input":200000}"#,
            "",
            "0.6",
        ),
        // Sonnet 4.6's long-context premium ended 2026-03-13: 250,000 × $6, then × $3.
        (
            "anthropic",
            "claude-sonnet-4-6",
            "2026-03-12T00:00:00Z",
            r#"{"input":250000}"#,
            "",
            "1.5",
        ),
        (
            "anthropic",
            "claude-sonnet-4-6",
            "2026-03-13T00:00:00Z",
            r#"{"input":250000}"#,
            "",
            "0.75",
        ),
        // 1-hour writes at 2×, 5-minute writes at 1.25× the input rate: 1,000 × $6 + 1,000 × $3.75
        (
            "anthropic",
            "claude-sonnet-4-6",
            "2026-04-01T00:00:00Z",
            r#"{"cache_write_1h":1000,"cache_write_5m":1000}"#,
            "",
            "0.00975",
        ),
        // Reasoning defaults to the output rate, cache writes to the input rate (OpenAI).
        (
            "openai",
            "gpt-5.2",
            "2026-03-01T00:00:00Z",
            r#"{"reasoning":1000,"cache_write_5m":1000}"#,
            "",
            "0.01575",
        ),
        // Half to even at 1e-9: 1 cached token of gpt-5-nano in batch is $0.0000000025 → ...002,
        // 3 of them $0.0000000075 → ...008.
        (
            "openai",
            "gpt-5-nano",
            "2026-03-01T00:00:00Z",
            r#"{"cached_input":1}"#,
            r#","batch":true"#,
            "0.000000002",
        ),
        (
            "openai",
            "gpt-5-nano",
            "2026-03-01T00:00:00Z",
            r#"{"cached_input":3}"#,
            r#","batch":true"#,
            "0.000000008",
        ),
        // Zero tokens cost zero, not "unpriced".
        (
            "openai",
            "gpt-5.2",
            "2026-03-01T00:00:00Z",
            r#"{}"#,
            "",
            "0",
        ),
    ];
    for (provider, model, time, tokens, extra, expected) in cases {
        let line = canonical(provider, model, time, tokens, extra);
        assert_eq!(&cost_of(book, &line), expected, "{line}");
    }
}

#[test]
fn a_provider_is_inferred_from_the_model_name_when_a_record_names_none() {
    let book = book();
    for (model, provider) in [
        ("gpt-5.2-2025-12-11", "openai"),
        ("claude-haiku-4-5-20251001", "anthropic"),
        ("gemini-2.5-flash", "google"),
        ("anthropic/claude-sonnet-4.5", "anthropic"),
        ("llama-4-maverick", "unknown"),
    ] {
        let line = format!(r#"{{"model":"{model}","tokens":{{"input":1}}}}"#);
        assert_eq!(prepare(book, &line).record.provider, provider, "{model}");
    }
}

#[test]
fn records_that_cannot_be_priced_say_why_and_are_never_a_silent_zero() {
    let book = book();
    let cases = [
        (
            canonical(
                "openai",
                "gpt-9-ultra",
                "2026-03-01T00:00:00Z",
                r#"{"input":1}"#,
                "",
            ),
            "no price for model \"gpt-9-ultra\"",
        ),
        // gpt-5.2-pro publishes no cached-input price.
        (
            canonical(
                "openai",
                "gpt-5.2-pro",
                "2026-03-01T00:00:00Z",
                r#"{"input":1,"cached_input":5}"#,
                "",
            ),
            "no cached_input price",
        ),
        // gpt-5-nano has no priority tier.
        (
            canonical(
                "openai",
                "gpt-5-nano",
                "2026-03-01T00:00:00Z",
                r#"{"input":1}"#,
                r#","service_tier":"priority""#,
            ),
            "no priority price",
        ),
        // Before the model's first price.
        (
            canonical(
                "openai",
                "gpt-5.4",
                "2026-01-01T00:00:00Z",
                r#"{"input":1}"#,
                "",
            ),
            "first price starts 2026-03-05",
        ),
        // A tier no sheet knows.
        (
            canonical(
                "openai",
                "gpt-5.2",
                "2026-03-01T00:00:00Z",
                r#"{"input":1}"#,
                r#","service_tier":"scale""#,
            ),
            "service tier \"scale\"",
        ),
        // OpenAI has no 1-hour cache.
        (
            canonical(
                "openai",
                "gpt-5.2",
                "2026-03-01T00:00:00Z",
                r#"{"cache_write_1h":1}"#,
                "",
            ),
            "no cache_write_1h price",
        ),
    ];
    for (line, reason) in cases {
        match prepare(book, &line).price {
            PriceOutcome::Unpriced(unpriced) => {
                assert!(
                    unpriced.reason.contains(reason),
                    "{line}: {}",
                    unpriced.reason
                )
            }
            PriceOutcome::Priced(priced) => panic!("{line}: priced at {}", priced.cost),
        }
    }
}

#[test]
fn project_overrides_apply_to_their_project_only_and_narrower_wins() {
    let overrides = vec![
        ProjectOverride {
            project: "search".into(),
            multiplier: Some(Decimal::new(8, 1)),
            ..Default::default()
        },
        ProjectOverride {
            project: "search".into(),
            provider: Some("openai".into()),
            model: Some("gpt-5.2".into()),
            rates: llm_meter::pricing::sheet::RateFields {
                input: Some(Decimal::new(150, 2)),
                ..Default::default()
            },
            ..Default::default()
        },
    ];
    let book = PriceBook::builtin()
        .unwrap()
        .with_terms(llm_meter::pricing::LocalTerms {
            overrides,
            ..Default::default()
        });
    let tokens = r#"{"input":10000,"output":2000}"#;
    let time = "2026-03-01T00:00:00Z";
    let mut preparer = Preparer::new(&book, Format::Auto, "default");
    let price = |preparer: &mut Preparer<'_>, line: &str| match preparer
        .prepare(line, ingest_time())
        .unwrap()
        .price
    {
        PriceOutcome::Priced(p) => (p.cost.to_string(), p.list_cost.to_string(), p.price_ref),
        PriceOutcome::Unpriced(u) => panic!("{}", u.reason),
    };
    // Negotiated input rate for gpt-5.2: 10,000 × $1.50 + 2,000 × $14 = $0.043 (list $0.0455).
    let (cost, list, reference) = price(
        &mut preparer,
        &canonical(
            "openai",
            "gpt-5.2-2025-12-11",
            time,
            tokens,
            r#","project":"search""#,
        ),
    );
    assert_eq!((cost.as_str(), list.as_str()), ("0.043", "0.0455"));
    assert!(reference.ends_with("+override:search"), "{reference}");
    // Any other model of the project: 80% of list. gpt-5-mini: (10,000 × $0.25 + 2,000 × $2) × 0.8
    let (cost, _, _) = price(
        &mut preparer,
        &canonical(
            "openai",
            "gpt-5-mini",
            time,
            tokens,
            r#","project":"search""#,
        ),
    );
    assert_eq!(cost, "0.0052");
    // Another project pays list.
    let (cost, _, _) = price(
        &mut preparer,
        &canonical("openai", "gpt-5.2", time, tokens, r#","project":"ads""#),
    );
    assert_eq!(cost, "0.0455");
}

#[test]
fn list_cost_counts_cached_tokens_at_the_input_rate_and_ignores_batch() {
    let book = book();
    let line = canonical(
        "openai",
        "gpt-5.2",
        "2026-03-01T00:00:00Z",
        r#"{"input":1000,"cached_input":9000,"output":100,"reasoning":100}"#,
        r#","batch":true"#,
    );
    match prepare(book, &line).price {
        PriceOutcome::Priced(priced) => {
            // List: 10,000 × $1.75 + 200 × $14 = $0.0203.
            assert_eq!(priced.list_cost.to_string(), "0.0203");
            // Billed: (1,000 × $1.75 + 9,000 × $0.175 + 200 × $14) / 2 = $0.0030625
            assert_eq!(priced.cost.to_string(), "0.0030625");
        }
        PriceOutcome::Unpriced(u) => panic!("{}", u.reason),
    }
}

#[test]
fn savings_from_caching_and_batch_are_split_against_list_price() {
    let book = book();
    // (tokens, extra fields, expected cost, cache savings, batch savings), gpt-5.2:
    // input $1.75, cached input $0.175, output $14; batch halves every rate.
    let cases: &[(&str, &str, &str, &str, &str)] = &[
        // 9,000 cached tokens at $0.175 instead of $1.75: $0.014175 saved.
        (
            r#"{"input":1000,"cached_input":9000,"output":100}"#,
            "",
            "0.004725",
            "0.014175",
            "0",
        ),
        // Batch: the standard cost ($0.004725) halved saves $0.0023625 more.
        (
            r#"{"input":1000,"cached_input":9000,"output":100}"#,
            r#","batch":true"#,
            "0.0023625",
            "0.014175",
            "0.0023625",
        ),
        // Nothing cached, nothing discounted: nothing saved.
        (r#"{"input":1000,"output":100}"#, "", "0.00315", "0", "0"),
    ];
    for &(tokens, extra, cost, cache, batch) in cases {
        let line = canonical("openai", "gpt-5.2", "2026-03-01T00:00:00Z", tokens, extra);
        match prepare(book, &line).price {
            PriceOutcome::Priced(p) => {
                assert_eq!(
                    (
                        p.cost.to_string(),
                        p.cache_savings.to_string(),
                        p.batch_savings.to_string()
                    ),
                    (cost.to_owned(), cache.to_owned(), batch.to_owned()),
                    "{tokens}{extra}"
                );
            }
            PriceOutcome::Unpriced(u) => panic!("{}", u.reason),
        }
    }
    // Anthropic cache writes cost more than input: 10,000 5-minute writes at $3.75
    // instead of $3 (claude-sonnet-4-5) is $0.0075 *lost* to caching.
    let line = canonical(
        "anthropic",
        "claude-sonnet-4-5",
        "2026-03-01T00:00:00Z",
        r#"{"cache_write_5m":10000,"output":10}"#,
        "",
    );
    match prepare(book, &line).price {
        PriceOutcome::Priced(p) => assert_eq!(p.cache_savings.to_string(), "-0.0075"),
        PriceOutcome::Unpriced(u) => panic!("{}", u.reason),
    }
}
