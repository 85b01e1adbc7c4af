//! `cargo bench --bench memory`: the daemon's peak memory under the largest requests its
//! default limits let through, four at a time, on every endpoint that takes or gives
//! bulk: `POST /v1/usage` (NDJSON and a JSON array, 10 MiB each), `POST /v1/traces`
//! (protobuf and JSON, 10 MiB each), then the reads over what they stored (`/v1/spend`
//! grouped every way, the FOCUS export, `/metrics`).
//!
//! Runs the release binary on a fresh embedded store (`DATABASE_URL` to use Postgres) and
//! prints its peak resident memory (VmHWM) after each step. Goal: under 300 MB.

use std::process::{Command, Stdio};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;

/// The default `[limits] max_body_bytes`.
const BODY_BYTES: usize = 10 * 1024 * 1024;
const CONCURRENT: usize = 4;

fn peak_rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb / 1024.0
}

/// Canonical records, one per line, until the body is full.
fn ndjson(prefix: &str) -> String {
    let mut body = String::with_capacity(BODY_BYTES);
    for i in 0.. {
        let line = format!(
            r#"{{"id":"{prefix}-{i}","time":"2026-11-{:02}T{:02}:00:00Z","project":"p{}","provider":"openai","model":"gpt-5.2","tokens":{{"input":{},"output":50}},"tags":{{"team":"t{}"}}}}"#,
            1 + i % 28,
            i % 24,
            i % 50,
            100 + i % 1000,
            i % 7
        );
        if body.len() + line.len() + 1 > BODY_BYTES || i >= 100_000 {
            break;
        }
        body.push_str(&line);
        body.push('\n');
    }
    body
}

fn json_array(prefix: &str) -> String {
    let lines = ndjson(prefix);
    let mut body = String::with_capacity(BODY_BYTES);
    body.push('[');
    for (i, line) in lines.lines().enumerate() {
        if body.len() + line.len() + 2 > BODY_BYTES {
            break;
        }
        if i > 0 {
            body.push(',');
        }
        body.push_str(line);
    }
    body.push(']');
    body
}

fn attribute(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..KeyValue::default()
    }
}

/// GenAI usage spans, as many as fit the body when encoded.
fn spans(prefix: &str, json: bool) -> Vec<u8> {
    let span = |i: usize| Span {
        trace_id: (i as u128).to_be_bytes().to_vec(),
        span_id: (i as u64).to_be_bytes().to_vec(),
        name: "chat gpt-5.2".to_owned(),
        end_time_unix_nano: 1_796_000_000_000_000_000 + i as u64,
        attributes: vec![
            attribute(
                "gen_ai.system",
                any_value::Value::StringValue("openai".into()),
            ),
            attribute(
                "gen_ai.response.model",
                any_value::Value::StringValue("gpt-5.2".into()),
            ),
            attribute(
                "gen_ai.response.id",
                any_value::Value::StringValue(format!("{prefix}-{i}")),
            ),
            attribute(
                "gen_ai.usage.input_tokens",
                any_value::Value::IntValue(1000),
            ),
            attribute("gen_ai.usage.output_tokens", any_value::Value::IntValue(50)),
        ],
        ..Span::default()
    };
    let request = |count: usize| ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: (0..count).map(span).collect(),
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    };
    let encode = |request: &ExportTraceServiceRequest| {
        if json {
            serde_json::to_vec(request).unwrap()
        } else {
            request.encode_to_vec()
        }
    };
    // Size one span, then fill the body (capped at the records a request may hold).
    let one = encode(&request(1)).len().max(1);
    let mut count = (BODY_BYTES / one).min(100_000);
    loop {
        let body = encode(&request(count));
        if body.len() <= BODY_BYTES {
            return body;
        }
        count = count * 95 / 100;
    }
}

async fn send_all(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    content_type: &str,
    bodies: Vec<Vec<u8>>,
) -> Vec<(u16, String)> {
    let calls = bodies.into_iter().map(|body| {
        let request = client
            .post(format!("{base}{path}"))
            .header("content-type", content_type)
            .body(body);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let text = response.text().await.unwrap();
            (status, text.chars().take(200).collect())
        }
    });
    futures_util::future::join_all(calls).await
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| format!("sqlite://{}", dir.path().join("meter.db").display()));
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    // Default limits, but for the request rate (the steps send bursts).
    let config = dir.path().join("llm-meter.toml");
    std::fs::write(
        &config,
        "[limits]\nrequests_per_second = 100000\nburst = 100000\n",
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_llm-meter"))
        .current_dir(dir.path())
        .args(["--config", config.to_str().unwrap()])
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("DATABASE_URL", &url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(300))
        .build()
        .unwrap();
    while client.get(format!("{base}/healthz")).send().await.is_err() {
        tokio::task::yield_now().await;
    }
    println!("started: peak RSS {:.0} MB", peak_rss_mb(pid));

    type Bodies = Box<dyn Fn(usize) -> Vec<u8>>;
    let steps: Vec<(&str, &str, &str, Bodies)> = vec![
        (
            "POST /v1/usage, NDJSON",
            "/v1/usage",
            "application/x-ndjson",
            Box::new(|i| ndjson(&format!("nd{i}")).into_bytes()),
        ),
        (
            "POST /v1/usage, JSON array",
            "/v1/usage",
            "application/json",
            Box::new(|i| json_array(&format!("ja{i}")).into_bytes()),
        ),
        (
            "POST /v1/traces, protobuf",
            "/v1/traces",
            "application/x-protobuf",
            Box::new(|i| spans(&format!("pb{i}"), false)),
        ),
        (
            "POST /v1/traces, JSON",
            "/v1/traces",
            "application/json",
            Box::new(|i| spans(&format!("js{i}"), true)),
        ),
    ];
    for (name, path, content_type, bodies) in steps {
        let bodies: Vec<Vec<u8>> = (0..CONCURRENT).map(&bodies).collect();
        let size = bodies[0].len();
        let answers = send_all(&client, &base, path, content_type, bodies).await;
        let statuses: Vec<u16> = answers.iter().map(|(status, _)| *status).collect();
        println!(
            "{name}: {CONCURRENT} × {:.1} MB, answers {statuses:?} ({}); peak RSS {:.0} MB",
            size as f64 / 1e6,
            answers[0].1,
            peak_rss_mb(pid)
        );
    }
    let reads = [
        "/v1/spend?from=2026-01-01&to=2027-01-01&group_by=project,model,day",
        "/v1/spend?from=2026-01-01&to=2027-01-01&group_by=tag:team,token_type,hour",
        "/v1/spend?from=2026-01-01&to=2027-01-01&format=focus",
        "/metrics",
    ];
    for path in reads {
        let calls = (0..CONCURRENT).map(|_| client.get(format!("{base}{path}")).send());
        let answers = futures_util::future::join_all(calls).await;
        let mut sizes = Vec::new();
        for answer in answers {
            let answer = answer.unwrap();
            let status = answer.status().as_u16();
            sizes.push((status, answer.bytes().await.unwrap().len()));
        }
        println!(
            "GET {path}: {CONCURRENT} at once, answers (status, bytes) {:?}; peak RSS {:.0} MB",
            sizes[0],
            peak_rss_mb(pid)
        );
    }
    println!("peak RSS over every step: {:.0} MB", peak_rss_mb(pid));
    let _ = child.kill();
    let _ = child.wait();
}
