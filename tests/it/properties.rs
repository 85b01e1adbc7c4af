//! Invariants checked over generated inputs (proptest).

use chrono::{Duration, TimeZone, Utc};
use llm_meter::pricing::{PriceBook, PriceOutcome};
use llm_meter::usage::{Bucket, Format, Tokens, parse_record};
use proptest::prelude::*;
use rust_decimal::Decimal;

use crate::helpers::{book, ingest_time};

const MODELS: &[(&str, &str)] = &[
    ("openai", "gpt-5.2"),
    ("openai", "gpt-5.4"),
    ("openai", "gpt-5-nano"),
    ("openai", "o3"),
    ("openai", "gpt-4o-mini"),
    ("anthropic", "claude-sonnet-4-5"),
    ("anthropic", "claude-opus-4-6"),
    ("anthropic", "claude-haiku-4-5"),
    ("google", "gemini-2.5-pro"),
    ("google", "gemini-2.5-flash-lite"),
    ("openrouter", "anthropic/claude-sonnet-4.5"),
];

fn tokens_up_to(max: u64) -> impl Strategy<Value = Tokens> {
    (0..=max, 0..=max, 0..=max, 0..=max, 0..=max, 0..=max).prop_map(
        |(input, cached_input, cache_write_5m, cache_write_1h, output, reasoning)| {
            Tokens::text(
                input,
                cached_input,
                cache_write_5m,
                cache_write_1h,
                output,
                reasoning,
            )
        },
    )
}

fn record_line(
    provider: &str,
    model: &str,
    day: i64,
    tokens: &Tokens,
    batch: bool,
    tier: &str,
) -> String {
    let time = Utc.with_ymd_and_hms(2026, 4, 1, 0, 0, 0).unwrap() + Duration::days(day);
    format!(
        r#"{{"provider":"{provider}","model":"{model}","time":"{}","tokens":{},"batch":{batch},"service_tier":"{tier}"}}"#,
        time.to_rfc3339(),
        serde_json::to_string(tokens).unwrap()
    )
}

fn price(book: &PriceBook, line: &str) -> PriceOutcome {
    llm_meter::prepare::Preparer::new(book, Format::Auto, "p")
        .prepare(line, ingest_time())
        .expect("generated records parse")
        .price
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn cost_is_never_negative(
        model in 0..MODELS.len(),
        tokens in tokens_up_to(2_000_000),
        day in 0i64..200,
        batch in any::<bool>(),
        tier in prop::sample::select(vec!["default", "flex", "priority"]),
    ) {
        let book = book();
        let (provider, name) = MODELS[model];
        if let PriceOutcome::Priced(priced) = price(book, &record_line(provider, name, day, &tokens, batch, tier)) {
            prop_assert!(priced.cost >= Decimal::ZERO, "{}", priced.cost);
            prop_assert!(priced.list_cost >= Decimal::ZERO);
            prop_assert!(priced.cost.scale() <= 9, "rounded to 1e-9: {}", priced.cost);
        }
    }

    /// Below every long-context threshold, pricing two records separately costs what
    /// pricing their sum costs, up to the one rounding per record (≤ 0.5e-9 each).
    #[test]
    fn list_price_is_cost_plus_cache_and_batch_savings(
        model in 0..MODELS.len(),
        tokens in tokens_up_to(2_000_000),
        day in 0i64..200,
        batch in any::<bool>(),
        tier in prop::sample::select(vec!["default", "flex", "priority"]),
    ) {
        let book = book();
        let (provider, name) = MODELS[model];
        if let PriceOutcome::Priced(p) = price(book, &record_line(provider, name, day, &tokens, batch, tier)) {
            // No project overrides here, so nothing is left over as a negotiated discount.
            prop_assert_eq!(p.list_cost, p.cost + p.cache_savings + p.batch_savings, "{:?}", p);
            prop_assert!(p.batch_savings >= Decimal::ZERO);
            if !batch && tier != "flex" {
                prop_assert_eq!(p.batch_savings, Decimal::ZERO);
            }
            if tokens.cached_input + tokens.cache_write_5m + tokens.cache_write_1h == 0 {
                prop_assert_eq!(p.cache_savings, Decimal::ZERO);
            }
        }
    }

    #[test]
    fn cost_is_additive_across_buckets(
        model in 0..MODELS.len(),
        a in tokens_up_to(16_000),
        b in tokens_up_to(16_000),
        batch in any::<bool>(),
    ) {
        let book = book();
        let (provider, name) = MODELS[model];
        let day = 100;
        let outcomes = [a, b, a.add(&b)].map(|t| price(book, &record_line(provider, name, day, &t, batch, "default")));
        match outcomes {
            [PriceOutcome::Priced(pa), PriceOutcome::Priced(pb), PriceOutcome::Priced(sum)] => {
                let difference = (sum.cost - pa.cost - pb.cost).abs();
                prop_assert!(difference <= Decimal::new(15, 10), "{} vs {} + {}", sum.cost, pa.cost, pb.cost);
                let list_difference = (sum.list_cost - pa.list_cost - pb.list_cost).abs();
                prop_assert!(list_difference <= Decimal::new(15, 10));
            }
            // A bucket without a price (say cache_write_1h on OpenAI) makes every record
            // that has it unpriced; the sum has it whenever a part has it.
            [a_out, b_out, PriceOutcome::Unpriced(_)] => {
                prop_assert!(matches!(a_out, PriceOutcome::Unpriced(_)) || matches!(b_out, PriceOutcome::Unpriced(_)));
            }
            [_, _, PriceOutcome::Priced(_)] => prop_assert!(false, "parts unpriced but the sum priced"),
        }
    }

    /// Adding a price that starts on day D leaves every record before D as it was.
    #[test]
    fn a_price_change_only_affects_records_from_its_date(
        day in 0i64..60,
        change_day in 1i64..59,
        tokens in tokens_up_to(100_000),
    ) {
        let change = Utc.with_ymd_and_hms(2026, 4, 1, 0, 0, 0).unwrap() + Duration::days(change_day);
        let sheet = |extra: &str| format!(
            "provider = \"acme\"\nsource = \"test\"\nretrieved = \"2026-04-01\"\n\
             [[model]]\nid = \"m1\"\n\
             [[model.price]]\nfrom = \"2026-01-01\"\ninput = \"1\"\ncached_input = \"0.1\"\ncache_write_1h = \"2\"\noutput = \"4\"\n{extra}"
        );
        let before = PriceBook::from_texts([("a.toml".to_owned(), sheet(""))]).unwrap();
        let after = PriceBook::from_texts([("a.toml".to_owned(), sheet(&format!(
            "[[model.price]]\nfrom = \"{}\"\ninput = \"3\"\ncached_input = \"0.3\"\ncache_write_1h = \"6\"\noutput = \"12\"\n",
            change.date_naive()
        )))]).unwrap();
        let line = record_line("acme", "m1", day, &tokens, false, "default");
        let (old, new) = (price(&before, &line).cost().unwrap(), price(&after, &line).cost().unwrap());
        if day < change_day {
            prop_assert_eq!(old, new);
        } else {
            // Every rate tripled, so the cost did too (exactly: rates have few decimals).
            prop_assert_eq!(old * Decimal::from(3), new);
        }
    }

    /// OpenAI counts cached inside prompt and reasoning inside completion: the buckets
    /// hold exactly the reported totals, never more.
    #[test]
    fn openai_buckets_add_up_to_the_reported_totals(
        prompt in 0u64..1_000_000,
        cached_share in 0u64..=100,
        completion in 0u64..100_000,
        reasoning_share in 0u64..=100,
    ) {
        let cached = prompt * cached_share / 100;
        let reasoning = completion * reasoning_share / 100;
        let line = format!(
            r#"{{"object":"chat.completion","model":"gpt-5.2","usage":{{"prompt_tokens":{prompt},"completion_tokens":{completion},"total_tokens":{},"prompt_tokens_details":{{"cached_tokens":{cached}}},"completion_tokens_details":{{"reasoning_tokens":{reasoning}}}}}}}"#,
            prompt + completion
        );
        let tokens = parse_record(&line, Format::Auto).unwrap().tokens;
        prop_assert_eq!(tokens.total_input(), prompt);
        prop_assert_eq!(tokens.total_output(), completion);
        prop_assert_eq!(tokens.cached_input, cached);
        prop_assert_eq!(tokens.reasoning, reasoning);
    }

    /// Anthropic reports cache reads and writes beside input: all of them are kept.
    #[test]
    fn anthropic_buckets_add_up_to_the_reported_counts(
        input in 0u64..500_000,
        read in 0u64..500_000,
        write_5m in 0u64..100_000,
        write_1h in 0u64..100_000,
        output in 0u64..100_000,
    ) {
        let line = format!(
            r#"{{"type":"message","model":"claude-sonnet-4-5","usage":{{"input_tokens":{input},"cache_read_input_tokens":{read},"cache_creation_input_tokens":{},"cache_creation":{{"ephemeral_5m_input_tokens":{write_5m},"ephemeral_1h_input_tokens":{write_1h}}},"output_tokens":{output}}}}}"#,
            write_5m + write_1h
        );
        let tokens = parse_record(&line, Format::Auto).unwrap().tokens;
        prop_assert_eq!(tokens.total_input(), input + read + write_5m + write_1h);
        prop_assert_eq!((tokens.cache_write_5m, tokens.cache_write_1h), (write_5m, write_1h));
        prop_assert_eq!(tokens.total_output(), output);
    }

    /// Gemini's thoughts are separate from candidates; the total covers them all.
    #[test]
    fn gemini_buckets_add_up_to_the_total(
        prompt in 0u64..1_000_000,
        cached_share in 0u64..=100,
        candidates in 0u64..100_000,
        thoughts in 0u64..100_000,
    ) {
        let cached = prompt * cached_share / 100;
        let total = prompt + candidates + thoughts;
        let line = format!(
            r#"{{"usageMetadata":{{"promptTokenCount":{prompt},"cachedContentTokenCount":{cached},"candidatesTokenCount":{candidates},"thoughtsTokenCount":{thoughts},"totalTokenCount":{total}}},"modelVersion":"gemini-2.5-flash"}}"#
        );
        let tokens = parse_record(&line, Format::Auto).unwrap().tokens;
        prop_assert_eq!(tokens.total(), total);
        prop_assert_eq!(tokens.cached_input, cached);
    }

    /// A part larger than its whole is always rejected, never clamped.
    #[test]
    fn a_part_above_its_total_is_rejected(prompt in 0u64..1_000_000, excess in 1u64..1000) {
        let line = format!(
            r#"{{"object":"chat.completion","model":"gpt-5.2","usage":{{"prompt_tokens":{prompt},"completion_tokens":1,"prompt_tokens_details":{{"cached_tokens":{}}}}}}}"#,
            prompt + excess
        );
        prop_assert!(parse_record(&line, Format::Auto).is_err());
    }
}

/// One usage line with text and audio tokens, in each shape that can carry audio.
fn audio_line(shape: usize, text_in: u64, audio_in: u64, text_out: u64, audio_out: u64) -> String {
    let (prompt, completion) = (text_in + audio_in, text_out + audio_out);
    let chat_usage = format!(
        r#""usage":{{"prompt_tokens":{prompt},"completion_tokens":{completion},"total_tokens":{},"prompt_tokens_details":{{"audio_tokens":{audio_in}}},"completion_tokens_details":{{"audio_tokens":{audio_out}}}}}"#,
        prompt + completion
    );
    let chat = |object: &str, model: &str, extra: &str| {
        format!(
            r#"{{"id":"c","object":"{object}","created":1790000000,"model":"{model}",{chat_usage}{extra}}}"#
        )
    };
    let gemini = |extra: &str| {
        format!(
            r#"{{"responseId":"g","modelVersion":"gemini-2.5-flash","usageMetadata":{{"promptTokenCount":{prompt},"candidatesTokenCount":{completion},"promptTokensDetails":[{{"modality":"TEXT","tokenCount":{text_in}}},{{"modality":"AUDIO","tokenCount":{audio_in}}}],"candidatesTokensDetails":[{{"modality":"AUDIO","tokenCount":{audio_out}}}]}}{extra}}}"#
        )
    };
    let canonical = format!(
        r#"{{"id":"k","provider":"openai","model":"gpt-4o-audio-preview-2024-12-17","time":"2026-11-20T00:00:00Z","tokens":{{"input":{text_in},"audio_input":{audio_in},"output":{text_out},"audio_output":{audio_out}}}}}"#
    );
    match shape {
        0 => chat("chat.completion", "gpt-4o-audio-preview-2024-12-17", ""),
        1 => chat("chat.completion", "gpt-5.2", ""),
        2 => chat(
            "chat.completion.chunk",
            "gpt-4o-mini-audio-preview",
            r#","choices":[]"#,
        ),
        3 => chat(
            "chat.completion",
            "gpt-4o-2024-11-20",
            r#","prompt_filter_results":[]"#,
        ),
        4 => chat(
            "chat.completion",
            "openai/gpt-4o-audio-preview",
            r#","provider":"OpenAI""#,
        )
        .replacen(r#""usage":{"#, r#""usage":{"cost":0.01,"#, 1),
        5 => format!(
            r#"{{"id":"r","object":"response","created_at":1790000000,"model":"gpt-realtime","usage":{{"input_tokens":{prompt},"output_tokens":{completion},"input_token_details":{{"audio_tokens":{audio_in}}},"output_token_details":{{"audio_tokens":{audio_out}}}}}}}"#
        ),
        6 => gemini(""),
        7 => gemini(r#","createTime":"2026-11-20T00:00:00Z""#),
        8 => canonical,
        9 => format!(
            r#"{{"project":"p","response":{}}}"#,
            chat("chat.completion", "gpt-4o-audio-preview-2024-12-17", "")
        ),
        _ => format!(
            r#"{{"specversion":"1.0","id":"e","source":"s","type":"t","data":{canonical}}}"#
        ),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Audio tokens are never priced at the text rate, in any shape: they land in the
    /// audio buckets (never in the text ones) and cost the sheet's audio rate, or, where
    /// the sheet has none, nothing, with the record flagged partly priced.
    #[test]
    fn audio_is_never_priced_at_the_text_rate(
        shape in 0usize..11,
        text_in in 0u64..50_000,
        audio_in in 1u64..50_000,
        text_out in 0u64..20_000,
        audio_out in 0u64..20_000,
    ) {
        let book = book();
        let line = audio_line(shape, text_in, audio_in, text_out, audio_out);
        let priced = llm_meter::prepare::Preparer::new(book, Format::Auto, "p")
            .prepare(&line, ingest_time())
            .unwrap_or_else(|e| panic!("{line}: {e}"));
        let tokens = &priced.record.tokens;
        prop_assert_eq!((tokens.input, tokens.audio_input), (text_in, audio_in), "{}", line);
        prop_assert_eq!((tokens.output, tokens.audio_output), (text_out, audio_out), "{}", line);
        let PriceOutcome::Priced(priced_cost) = &priced.price else {
            return Ok(());
        };
        let model = book
            .resolve(&priced.record.provider, &priced.record.model)
            .unwrap()
            .model;
        let entry = book.entry_at(model, priced.record.time).unwrap();
        let rates = llm_meter::pricing::standard_table(entry);
        let million = Decimal::from(1_000_000);
        for (bucket, count) in [(Bucket::AudioInput, audio_in), (Bucket::AudioOutput, audio_out)] {
            let charged = priced_cost.bucket_costs[bucket.index()];
            match rates[bucket.index()] {
                Some(rate) => prop_assert_eq!(charged, Decimal::from(count) * rate / million),
                None => {
                    prop_assert_eq!(charged, Decimal::ZERO);
                    if count > 0 {
                        let partial = priced_cost.partial.as_deref().unwrap_or_default();
                        prop_assert!(partial.contains(bucket.as_str()), "{}: {}", line, partial);
                    }
                }
            }
        }
        let input_rate = rates[Bucket::Input.index()].unwrap();
        prop_assert_eq!(
            priced_cost.bucket_costs[Bucket::Input.index()],
            Decimal::from(text_in) * input_rate / million
        );
    }
}
