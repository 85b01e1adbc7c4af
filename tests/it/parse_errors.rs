//! Lines that must be rejected, each with a one-line reason naming what is wrong.

use llm_meter::usage::{Format, parse_record};

#[test]
fn bad_lines_are_rejected_with_a_reason() {
    // (line, a fragment the reason must contain)
    let cases: &[(&str, &str)] = &[
        // Parts exceeding their total.
        (
            r#"{"object":"chat.completion","model":"gpt-5.2","usage":{"prompt_tokens":100,"completion_tokens":5,"prompt_tokens_details":{"cached_tokens":101}}}"#,
            "cached_tokens (101) exceeds usage.prompt_tokens (100)",
        ),
        (
            r#"{"object":"response","model":"gpt-5.2","usage":{"input_tokens":10,"output_tokens":5,"output_tokens_details":{"reasoning_tokens":6}}}"#,
            "reasoning_tokens (6) exceeds usage.output_tokens (5)",
        ),
        (
            r#"{"object":"chat.completion","model":"gpt-5.2","usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":14}}"#,
            "exceeds usage.total_tokens (14)",
        ),
        (
            r#"{"type":"message","model":"claude-haiku-4-5","usage":{"input_tokens":1,"output_tokens":1,"cache_creation_input_tokens":10,"cache_creation":{"ephemeral_5m_input_tokens":6,"ephemeral_1h_input_tokens":6}}}"#,
            "ephemeral_5m + ephemeral_1h (12) exceeds usage.cache_creation_input_tokens (10)",
        ),
        (
            r#"{"usageMetadata":{"promptTokenCount":10,"cachedContentTokenCount":11,"candidatesTokenCount":1},"modelVersion":"gemini-2.5-flash"}"#,
            "cachedContentTokenCount (11) exceeds usageMetadata.promptTokenCount (10)",
        ),
        // Negative, fractional, overflowing, absurd and non-numeric counts.
        (
            r#"{"model":"gpt-5.2","tokens":{"input":-5}}"#,
            "tokens.input is negative (-5)",
        ),
        (
            r#"{"model":"gpt-5.2","tokens":{"output":1.5}}"#,
            "tokens.output is fractional (1.5)",
        ),
        (
            r#"{"model":"gpt-5.2","tokens":{"input":1e30}}"#,
            "tokens.input overflows",
        ),
        (
            r#"{"model":"gpt-5.2","tokens":{"input":18446744073709551616}}"#,
            "tokens.input overflows",
        ),
        (
            r#"{"model":"gpt-5.2","tokens":{"input":5000000000}}"#,
            "absurdly large",
        ),
        (
            r#"{"model":"gpt-5.2","tokens":{"input":"many"}}"#,
            "tokens.input is not a number",
        ),
        (
            r#"{"model":"gpt-5.2","tokens":{"input":true}}"#,
            "tokens.input is not a number",
        ),
        (
            r#"{"type":"message","model":"claude-haiku-4-5","usage":{"input_tokens":-1,"output_tokens":1}}"#,
            "usage.input_tokens is negative",
        ),
        // A typo in a bucket name must not drop tokens silently.
        (
            r#"{"model":"gpt-5.2","tokens":{"inputs":5}}"#,
            "unknown field `inputs`",
        ),
        (
            r#"{"model":"gpt-5.2","tokens":[1,2]}"#,
            "malformed record: invalid type: sequence, expected an object",
        ),
        (
            r#"{"model":"gpt-5.2","tokens":"10"}"#,
            "malformed record: invalid type: string",
        ),
        // No model.
        (r#"{"tokens":{"input":5}}"#, "no model"),
        (
            r#"{"object":"chat.completion","usage":{"prompt_tokens":1,"completion_tokens":1}}"#,
            "no model",
        ),
        // Not an object, or not JSON.
        (
            r#"[{"model":"gpt-5.2"}]"#,
            "expected a JSON object, found an array",
        ),
        ("42", "expected a JSON object, found a number"),
        (r#""text""#, "expected a JSON object, found a string"),
        ("null", "expected a JSON object, found null"),
        ("not json at all", "invalid JSON"),
        (r#"{"model":"gpt-5.2","tokens":{"input":5}"#, "invalid JSON"),
        // Unknown shapes.
        (r#"{"hello":"world"}"#, "unrecognised record shape"),
        (r#"{"model":"gpt-5.2"}"#, "unrecognised record shape"),
        // Streams and batch lines that bill nothing.
        (
            r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","model":"gpt-5.2","choices":[{"delta":{"content":"Hi"}}],"usage":null}"#,
            "only the final chunk",
        ),
        (
            r#"{"type":"response.created","response":{"id":"resp_1","object":"response","model":"gpt-5.2","status":"in_progress","usage":null}}"#,
            "carry no final usage",
        ),
        (
            r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":15}}"#,
            "partial usage",
        ),
        (
            r#"{"id":"batch_req_1","custom_id":"r-9","response":null,"error":{"code":"batch_expired","message":"This request could not be executed before the completion window expired."}}"#,
            "not billed: batch request \"r-9\" failed",
        ),
        (
            r#"{"id":"batch_req_2","custom_id":"r-10","response":{"status_code":400,"body":{"error":{"message":"bad"}}},"error":null}"#,
            "answered HTTP 400",
        ),
        (
            r#"{"custom_id":"r-11","result":{"type":"errored","error":{"type":"error","error":{"type":"invalid_request_error","message":"bad"}}}}"#,
            "not billed: batch request \"r-11\" errored",
        ),
        (
            r#"{"custom_id":"r-12","result":{"type":"expired"}}"#,
            "expired",
        ),
        (
            r#"{"call_type":"acompletion","model":"gpt-5.2","prompt_tokens":10,"completion_tokens":2,"cache_hit":true}"#,
            "LiteLLM's own response cache",
        ),
        (
            r#"{"call_type":"acompletion","model":"gpt-5.2","status":"failure","prompt_tokens":0,"completion_tokens":0}"#,
            "failed call with no token usage",
        ),
        // Bad fields.
        (
            r#"{"model":"gpt-5.2","tokens":{"input":1},"time":"yesterday"}"#,
            "invalid time",
        ),
        (
            r#"{"model":"gpt-5.2","tokens":{"input":1},"time":1767225600000}"#,
            "outside 2000..2100",
        ),
        (
            r#"{"model":"gpt-5.2","tokens":{"input":1},"tags":{"env":{"nested":1}}}"#,
            "invalid tags.env",
        ),
        (
            r#"{"model":"","tokens":{"input":1}}"#,
            "invalid model: is empty",
        ),
        (
            r#"{"model":"gpt-5.2","tokens":{"input":1},"cost_usd":"-1"}"#,
            "is negative",
        ),
        (
            r#"{"specversion":"2.0","id":"1","source":"/x","type":"t","data":{"model":"gpt-5.2","tokens":{"input":1}}}"#,
            "unsupported version",
        ),
        (
            r#"{"specversion":"1.0","source":"/x","type":"t","data":{}}"#,
            "invalid id: missing",
        ),
    ];
    for (line, expected) in cases {
        let error = parse_record(line, Format::Auto)
            .err()
            .unwrap_or_else(|| panic!("accepted: {line}"))
            .to_string();
        assert!(
            error.contains(expected),
            "{line}\n  gave: {error}\n  want: {expected}"
        );
        assert!(!error.contains('\n'), "one line: {error}");
    }
}

#[test]
fn a_forced_format_rejects_other_shapes() {
    let anthropic = r#"{"type":"message","model":"claude-haiku-4-5","usage":{"input_tokens":1,"output_tokens":1}}"#;
    assert!(parse_record(anthropic, Format::Anthropic).is_ok());
    let error = parse_record(anthropic, Format::OpenAI)
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        "openai format expected, but the line is anthropic message"
    );
    // An envelope is a wrapper: the format applies to what it wraps.
    let wrapped = format!(r#"{{"project":"p","response":{anthropic}}}"#);
    assert!(parse_record(&wrapped, Format::Anthropic).is_ok());
    assert!(parse_record(&wrapped, Format::Gemini).is_err());
    // A CloudEvent's data may be any shape.
    let event =
        format!(r#"{{"specversion":"1.0","id":"e1","source":"/s","type":"t","data":{anthropic}}}"#);
    assert!(parse_record(&event, Format::CloudEvents).is_ok());
    assert!(parse_record(anthropic, Format::CloudEvents).is_err());
}

#[test]
fn cloudevents_data_base64_is_decoded() {
    use base64::Engine;
    let data = r#"{"model":"gpt-5.2","tokens":{"input":7}}"#;
    let encoded = base64::engine::general_purpose::STANDARD.encode(data);
    let event = format!(
        r#"{{"specversion":"1.0","id":"e2","source":"urn:x","type":"t","time":"2026-01-05T00:00:00Z","data_base64":"{encoded}"}}"#
    );
    let parsed = parse_record(&event, Format::Auto).unwrap();
    assert_eq!(parsed.tokens.input, 7);
    assert_eq!(parsed.id.as_deref(), Some("urn:x#e2"));
    assert_eq!(
        parsed.time.unwrap().to_rfc3339(),
        "2026-01-05T00:00:00+00:00"
    );
}

/// Each provider sample with one field made wrong: the line is refused with a one-line
/// reason naming that field (or the counts that disagree), never priced.
#[test]
fn every_provider_sample_with_a_wrong_field_is_a_one_line_error() {
    // (sample, text replaced, replacement, a fragment the reason must contain)
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "bedrock-converse.json",
            r#""inputTokens":1520"#,
            r#""inputTokens":-1520"#,
            "usage.inputTokens is negative",
        ),
        (
            "bedrock-converse.json",
            r#""totalTokens":4390"#,
            r#""totalTokens":100"#,
            "exceeds usage.totalTokens (100)",
        ),
        (
            "bedrock-converse.json",
            r#""model":"us.anthropic.claude-sonnet-4-5-20250929-v1:0","#,
            "",
            "does not name its model",
        ),
        (
            "bedrock-converse-stream.json",
            r#""outputTokens":700"#,
            r#""outputTokens":"lots""#,
            "usage.outputTokens is not a number",
        ),
        (
            "bedrock-invoke-llama.json",
            r#""generation_token_count":800"#,
            r#""generation_token_count":8.5"#,
            "generation_token_count is fractional",
        ),
        (
            "bedrock-invoke-stream-metrics.json",
            r#""inputTokenCount":5000"#,
            r#""inputTokenCount":-1"#,
            "inputTokenCount is negative",
        ),
        (
            "bedrock-invoke-mistral-headers.json",
            r#""x-amzn-bedrock-input-token-count":"2000""#,
            r#""x-amzn-bedrock-input-token-count":"two""#,
            "x-amzn-bedrock-input-token-count is not a number",
        ),
        (
            "bedrock-invoke-mistral-headers.json",
            r#""x-amzn-bedrock-input-token-count":"2000","x-amzn-bedrock-output-token-count":"500""#,
            r#""x-other":"1""#,
            "carry no usage",
        ),
        (
            "vertex-gemini-audio-grounding.json",
            r#""tokenCount":4000"#,
            r#""tokenCount":6000"#,
            "exceeds",
        ),
        (
            "vertex-anthropic.json",
            r#""output_tokens":600"#,
            r#""output_tokens":-600"#,
            "usage.output_tokens is negative",
        ),
        (
            "azure-openai-chat.json",
            r#""cached_tokens":1024"#,
            r#""cached_tokens":5000"#,
            "cached_tokens (5000) exceeds usage.prompt_tokens (4000)",
        ),
        (
            "deepseek-reasoner.json",
            r#""prompt_cache_miss_tokens":4000"#,
            r#""prompt_cache_miss_tokens":5000"#,
            "prompt_cache_hit_tokens + prompt_cache_miss_tokens",
        ),
        (
            "xai-grok.json",
            r#""cost_in_usd_ticks":251250000"#,
            r#""cost_in_usd_ticks":-3"#,
            "usage.cost_in_usd_ticks",
        ),
        (
            "groq-chunk.json",
            r#""prompt_tokens":6000"#,
            r#""prompt_tokens":-6000"#,
            "is negative",
        ),
        (
            "perplexity-sonar-pro.json",
            r#""total_cost":0.0296"#,
            r#""total_cost":"free""#,
            "usage.cost.total_cost",
        ),
        (
            "perplexity-deep-research.json",
            r#""num_search_queries":20"#,
            r#""num_search_queries":2.5"#,
            "usage.num_search_queries is fractional",
        ),
        (
            "cohere-v2.json",
            r#""input_tokens":5000"#,
            r#""input_tokens":-5"#,
            "billed_units.input_tokens is negative",
        ),
        (
            "cohere-v2.json",
            r#""model":"command-a-03-2025","#,
            "",
            "does not name its model",
        ),
        (
            "openrouter-byok.json",
            r#""upstream_inference_cost":0.0165"#,
            r#""upstream_inference_cost":-1"#,
            "upstream_inference_cost",
        ),
        (
            "anthropic-web-search.json",
            r#""web_search_requests":3"#,
            r#""web_search_requests":-3"#,
            "web_search_requests is negative",
        ),
        (
            "openai-audio-chat.json",
            r#""audio_tokens":1200"#,
            r#""audio_tokens":1600"#,
            "audio_tokens (1600) exceeds",
        ),
        (
            "deepinfra-chat.json",
            r#""estimated_cost":0.0031"#,
            r#""estimated_cost":"n/a""#,
            "usage.estimated_cost",
        ),
    ];
    for (file, from, to, expected) in cases {
        let sample = crate::helpers::sample(file);
        assert!(sample.contains(from), "{file} has no {from}");
        let line = sample.trim().replacen(from, to, 1);
        let error = parse_record(&line, Format::Auto)
            .err()
            .unwrap_or_else(|| panic!("{file} with {to}: accepted"))
            .to_string();
        assert!(
            error.contains(expected),
            "{file} with {to}\n  gave: {error}\n  want: {expected}"
        );
        assert!(!error.contains('\n'), "one line: {error}");
    }
}

/// Every sample cut short anywhere is refused as invalid JSON, on one line.
#[test]
fn every_sample_truncated_is_a_one_line_error() {
    let dir = crate::helpers::sample_path("");
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        let line = crate::helpers::sample(&name).trim().to_owned();
        for cut in [
            1,
            line.len() / 4,
            line.len() / 2,
            line.len() * 3 / 4,
            line.len() - 1,
        ] {
            let cut = (0..=cut).rev().find(|&i| line.is_char_boundary(i)).unwrap();
            let error = parse_record(&line[..cut], Format::Auto)
                .err()
                .unwrap_or_else(|| panic!("{name} cut at {cut}: accepted"));
            let message = error.to_string();
            assert_eq!(error.code(), "invalid_json", "{name} at {cut}: {message}");
            assert!(!message.contains('\n'), "{name}: {message}");
            checked += 1;
        }
    }
    assert!(checked >= 5 * 40, "{checked} truncations");
}
