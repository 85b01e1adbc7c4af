//! `cargo bench --bench cost`: prices a generated 1M-line file of mixed input shapes
//! through the same code as `llm-meter cost`, on one thread, and prints lines/second.
//!
//! LINES=200000 cargo bench --bench cost   # a smaller run
//! MIX=classic cargo bench --bench cost    # only the 12 shapes of the first benchmark
//!                                         # (to compare with earlier builds)

use std::io::{BufReader, BufWriter, Write};
use std::time::Instant;

use chrono::Utc;
use llm_meter::commands::cost::{CostSummary, price_lines};
use llm_meter::prepare::Preparer;
use llm_meter::pricing::PriceBook;
use llm_meter::usage::Format;

/// Shapes of the first benchmark; the providers' own shapes follow them.
const CLASSIC_SHAPES: u64 = 12;
const ALL_SHAPES: u64 = 24;

/// One line of the i-th shape, with counts and ids that vary by `i`.
pub fn line(i: u64, shapes: u64) -> String {
    let a = 1000 + (i * 7919) % 90_000;
    let b = 100 + (i * 104_729) % 4000;
    let c = a / 3;
    let r = b / 2;
    let t = 1_775_001_600 + (i % 20_000_000);
    if shapes > CLASSIC_SHAPES && i % shapes >= CLASSIC_SHAPES {
        return provider_line(i, i % shapes - CLASSIC_SHAPES, a, b, c, r, t);
    }
    match i % CLASSIC_SHAPES {
        0 => format!(
            r#"{{"id":"req-{i}","time":"2026-03-01T12:00:00Z","project":"search","provider":"openai","model":"gpt-5.2","tokens":{{"input":{a},"cached_input":{c},"output":{b},"reasoning":{r}}},"tags":{{"team":"ml","env":"prod"}},"user":"alice"}}"#
        ),
        1 => format!(
            r#"{{"id":"chatcmpl-{i}","object":"chat.completion","created":{t},"model":"gpt-5.2-2025-12-11","choices":[{{"index":0,"message":{{"role":"assistant","content":"Done."}},"finish_reason":"stop"}}],"usage":{{"prompt_tokens":{a},"completion_tokens":{b},"total_tokens":{},"prompt_tokens_details":{{"cached_tokens":{c},"audio_tokens":0}},"completion_tokens_details":{{"reasoning_tokens":{r},"audio_tokens":0}}}},"service_tier":"default"}}"#,
            a + b
        ),
        2 => format!(
            r#"{{"id":"chatcmpl-{i}","object":"chat.completion.chunk","created":{t},"model":"gpt-5-mini-2025-08-07","choices":[],"usage":{{"prompt_tokens":{a},"completion_tokens":{b},"total_tokens":{},"prompt_tokens_details":{{"cached_tokens":0}},"completion_tokens_details":{{"reasoning_tokens":{r}}}}}}}"#,
            a + b
        ),
        3 => format!(
            r#"{{"id":"resp_{i}","object":"response","created_at":{t},"status":"completed","model":"gpt-5.4-2026-03-05","reasoning":{{"effort":"high"}},"service_tier":"default","usage":{{"input_tokens":{a},"input_tokens_details":{{"cached_tokens":{c}}},"output_tokens":{b},"output_tokens_details":{{"reasoning_tokens":{r}}},"total_tokens":{}}}}}"#,
            a + b
        ),
        4 => format!(
            r#"{{"type":"response.completed","sequence_number":9,"response":{{"id":"resp_{i}","object":"response","created_at":{t},"status":"completed","model":"gpt-5.4-mini","usage":{{"input_tokens":{a},"input_tokens_details":{{"cached_tokens":0}},"output_tokens":{b},"output_tokens_details":{{"reasoning_tokens":0}},"total_tokens":{}}}}}}}"#,
            a + b
        ),
        5 => format!(
            r#"{{"id":"batch_req_{i}","custom_id":"job-{i}","response":{{"status_code":200,"request_id":"req_{i}","body":{{"id":"chatcmpl-b{i}","object":"chat.completion","created":{t},"model":"gpt-4.1-mini","choices":[],"usage":{{"prompt_tokens":{a},"completion_tokens":{b},"total_tokens":{}}}}}}},"error":null}}"#,
            a + b
        ),
        6 => format!(
            r#"{{"id":"msg_{i}","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[{{"type":"text","text":"OK"}}],"stop_reason":"end_turn","usage":{{"input_tokens":{b},"cache_creation_input_tokens":{r},"cache_read_input_tokens":{a},"cache_creation":{{"ephemeral_5m_input_tokens":{r},"ephemeral_1h_input_tokens":0}},"output_tokens":{b},"service_tier":"standard"}}}}"#
        ),
        7 => format!(
            r#"{{"custom_id":"doc-{i}","result":{{"type":"succeeded","message":{{"id":"msg_b{i}","type":"message","role":"assistant","model":"claude-haiku-4-5","content":[],"usage":{{"input_tokens":{a},"output_tokens":{b}}}}}}}}}"#
        ),
        8 => format!(
            r#"{{"candidates":[{{"content":{{"parts":[{{"text":"Yes"}}],"role":"model"}},"finishReason":"STOP"}}],"usageMetadata":{{"promptTokenCount":{a},"candidatesTokenCount":{b},"cachedContentTokenCount":{c},"thoughtsTokenCount":{r},"totalTokenCount":{}}},"modelVersion":"gemini-2.5-flash","responseId":"g{i}"}}"#,
            a + b + r
        ),
        9 => format!(
            r#"{{"id":"litellm-{i}","call_type":"acompletion","response_cost":0.01,"status":"success","custom_llm_provider":"anthropic","total_tokens":{},"prompt_tokens":{a},"completion_tokens":{b},"startTime":{t}.25,"model":"claude-haiku-4-5","metadata":{{"user_api_key_team_alias":"support","user_api_key_alias":"bot-key"}},"cache_hit":false,"request_tags":["prod"],"model_parameters":{{"reasoning_effort":"low"}}}}"#,
            a + b
        ),
        10 => format!(
            r#"{{"time":"2026-05-01T00:00:00Z","project":"ads","tags":{{"env":"prod"}},"response":{{"id":"chatcmpl-e{i}","object":"chat.completion","created":{t},"model":"gpt-4.1-nano","choices":[],"usage":{{"prompt_tokens":{a},"completion_tokens":{b},"total_tokens":{}}}}}}}"#,
            a + b
        ),
        _ => format!(
            r#"{{"specversion":"1.0","id":"evt-{i}","source":"/gw/1","type":"com.example.llm.usage.v1","time":"2026-06-01T10:00:00Z","data":{{"project":"agents","provider":"openai","model":"o4-mini","tokens":{{"input":{a},"output":{b}}}}}}}"#
        ),
    }
}

/// One line of the providers' own shapes (Bedrock, Vertex, Azure, DeepSeek, xAI, Groq,
/// Perplexity, Cohere, OpenRouter, tool calls).
fn provider_line(i: u64, shape: u64, a: u64, b: u64, c: u64, r: u64, t: u64) -> String {
    match shape {
        0 => format!(
            r#"{{"time":"2026-11-20T10:00:00Z","model":"us.anthropic.claude-sonnet-4-5-20250929-v1:0","response":{{"output":{{"message":{{"role":"assistant","content":[{{"text":"OK"}}]}}}},"stopReason":"end_turn","usage":{{"inputTokens":{b},"outputTokens":{b},"totalTokens":{},"cacheReadInputTokens":{a},"cacheWriteInputTokens":{r}}},"metrics":{{"latencyMs":900}}}}}}"#,
            2 * b + a + r
        ),
        1 => format!(
            r#"{{"time":"2026-11-20T10:15:00Z","model":"anthropic.claude-3-5-haiku-20241022-v1:0","response":{{"type":"message_stop","amazon-bedrock-invocationMetrics":{{"inputTokenCount":{a},"outputTokenCount":{b},"invocationLatency":2817,"firstByteLatency":412}}}}}}"#
        ),
        2 => format!(
            r#"{{"candidates":[{{"content":{{"role":"model","parts":[{{"text":"Yes"}}]}},"finishReason":"STOP","groundingMetadata":{{"webSearchQueries":["q {i}"]}}}}],"usageMetadata":{{"promptTokenCount":{},"candidatesTokenCount":{b},"totalTokenCount":{},"thoughtsTokenCount":{r},"trafficType":"ON_DEMAND","promptTokensDetails":[{{"modality":"TEXT","tokenCount":{a}}},{{"modality":"AUDIO","tokenCount":{c}}}]}},"modelVersion":"gemini-2.5-flash","createTime":"2026-11-20T11:00:00.000000Z","responseId":"v{i}"}}"#,
            a + c,
            a + c + b + r
        ),
        3 => format!(
            r#"{{"id":"chatcmpl-az{i}","object":"chat.completion","created":{t},"model":"gpt-4o-2024-11-20","prompt_filter_results":[{{"prompt_index":0,"content_filter_results":{{}}}}],"choices":[],"usage":{{"prompt_tokens":{a},"completion_tokens":{b},"total_tokens":{},"prompt_tokens_details":{{"cached_tokens":{c},"audio_tokens":0}}}}}}"#,
            a + b
        ),
        4 => format!(
            r#"{{"id":"ds-{i}","object":"chat.completion","created":{t},"model":"deepseek-reasoner","choices":[],"usage":{{"prompt_tokens":{a},"completion_tokens":{b},"total_tokens":{},"prompt_tokens_details":{{"cached_tokens":{c}}},"completion_tokens_details":{{"reasoning_tokens":{r}}},"prompt_cache_hit_tokens":{c},"prompt_cache_miss_tokens":{}}}}}"#,
            a + b,
            a - c
        ),
        5 => format!(
            r#"{{"id":"xai-{i}","object":"chat.completion","created":{t},"model":"grok-4-0709","choices":[],"usage":{{"prompt_tokens":{a},"completion_tokens":{b},"total_tokens":{},"prompt_tokens_details":{{"cached_tokens":{c}}},"completion_tokens_details":{{"reasoning_tokens":{r}}},"num_sources_used":0,"cost_in_usd_ticks":1000000}}}}"#,
            a + b + r
        ),
        6 => format!(
            r#"{{"id":"chatcmpl-g{i}","object":"chat.completion.chunk","created":{t},"model":"llama-3.3-70b-versatile","choices":[{{"index":0,"delta":{{}},"finish_reason":"stop"}}],"x_groq":{{"id":"req_{i}","usage":{{"queue_time":0.01,"prompt_tokens":{a},"completion_tokens":{b},"total_tokens":{},"total_time":0.4}}}}}}"#,
            a + b
        ),
        7 => format!(
            r#"{{"id":"pplx-{i}","model":"sonar-pro","created":{t},"object":"chat.completion","usage":{{"prompt_tokens":{a},"completion_tokens":{b},"total_tokens":{},"search_context_size":"medium","citation_tokens":0,"num_search_queries":2,"cost":{{"total_cost":0.02}}}},"citations":["https://example.com"],"choices":[]}}"#,
            a + b
        ),
        8 => format!(
            r#"{{"time":"2026-11-20T12:00:00Z","model":"command-a-03-2025","response":{{"id":"co-{i}","finish_reason":"COMPLETE","message":{{"role":"assistant","content":[]}},"usage":{{"billed_units":{{"input_tokens":{a},"output_tokens":{b}}},"tokens":{{"input_tokens":{},"output_tokens":{b}}}}}}}}}"#,
            a + 200
        ),
        9 => format!(
            r#"{{"id":"gen-{i}","provider":"Google","model":"google/gemini-2.5-pro","object":"chat.completion","created":{t},"choices":[],"usage":{{"prompt_tokens":{a},"completion_tokens":{b},"total_tokens":{},"cost":0.01,"is_byok":false,"prompt_tokens_details":{{"cached_tokens":0}},"cost_details":{{"upstream_inference_cost":null}},"completion_tokens_details":{{"reasoning_tokens":{r}}}}}}}"#,
            a + b
        ),
        10 => format!(
            r#"{{"id":"resp_w{i}","object":"response","created_at":{t},"status":"completed","model":"gpt-5-2025-08-07","output":[{{"id":"ws_{i}","type":"web_search_call","status":"completed"}},{{"id":"msg_{i}","type":"message","status":"completed","role":"assistant","content":[]}}],"usage":{{"input_tokens":{a},"input_tokens_details":{{"cached_tokens":0}},"output_tokens":{b},"output_tokens_details":{{"reasoning_tokens":{r}}},"total_tokens":{}}}}}"#,
            a + b
        ),
        _ => format!(
            r#"{{"id":"msg_w{i}","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[],"stop_reason":"end_turn","usage":{{"input_tokens":{a},"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":{b},"server_tool_use":{{"web_search_requests":1}}}}}}"#
        ),
    }
}

fn main() {
    let lines: u64 = std::env::var("LINES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let shapes = match std::env::var("MIX").as_deref() {
        Ok("classic") => CLASSIC_SHAPES,
        _ => ALL_SHAPES,
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("usage.jsonl");
    let mut file = BufWriter::new(std::fs::File::create(&path).unwrap());
    for i in 0..lines {
        writeln!(file, "{}", line(i, shapes)).unwrap();
    }
    file.flush().unwrap();
    drop(file);
    let bytes = std::fs::metadata(&path).unwrap().len();

    let book = PriceBook::builtin().unwrap();
    let mut times = Vec::new();
    let mut summary = CostSummary::default();
    for _ in 0..3 {
        let mut preparer = Preparer::new(&book, Format::Auto, "default");
        let mut input = BufReader::with_capacity(1 << 16, std::fs::File::open(&path).unwrap());
        let mut out = BufWriter::with_capacity(1 << 16, std::io::sink());
        summary = CostSummary::default();
        let start = Instant::now();
        price_lines(
            &mut input,
            None,
            &mut preparer,
            Utc::now(),
            &mut out,
            &mut summary,
        )
        .unwrap();
        out.flush().unwrap();
        times.push(start.elapsed().as_secs_f64());
    }
    assert_eq!(summary.lines, lines);
    assert_eq!(summary.rejected, 0, "every generated line is valid");
    let best = times.iter().copied().fold(f64::MAX, f64::min);
    let worst = times.iter().copied().fold(0.0, f64::max);
    println!(
        "cost: {lines} lines ({:.1} MB, {shapes} shapes) in {best:.3} s on one thread: {:.0} lines/s, {:.1} MB/s (best of 3; slowest {:.0} lines/s; {} priced, {} unpriced)",
        bytes as f64 / 1e6,
        lines as f64 / best,
        bytes as f64 / 1e6 / best,
        lines as f64 / worst,
        summary.priced,
        summary.unpriced,
    );
}
