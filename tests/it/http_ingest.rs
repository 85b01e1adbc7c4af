//! The real HTTP server on port 0 against a real Postgres: `POST /v1/usage` in every
//! layout, OTLP traces in protobuf and JSON, limits, outages and health.

use std::time::Duration;

use llm_meter::config::Config;
use llm_meter::daemon::Daemon;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use serde_json::{Value, json};
use sqlx::Row;

use crate::helpers::sample;
use crate::pg::TestDb;

pub struct TestServer {
    pub daemon: Daemon,
    pub base: String,
    pub client: reqwest::Client,
}

impl TestServer {
    pub async fn start(db: &TestDb) -> TestServer {
        let config = Config {
            database_url: Some(db.url.clone()),
            ..Config::default()
        };
        TestServer::start_with(config).await
    }

    pub async fn start_with(config: Config) -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let daemon = Daemon::start(&config, listener)
            .await
            .expect("daemon starts");
        let base = format!("http://{}", daemon.addr);
        TestServer {
            daemon,
            base,
            client: reqwest::Client::new(),
        }
    }

    pub async fn post(
        &self,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> (u16, Value) {
        let request = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", content_type)
            .body(body);
        answer(request).await
    }

    /// `method path` with a JSON body and a bearer token, each if given: the status and the
    /// answer as JSON (a string if not JSON).
    pub async fn call(
        &self,
        token: Option<&str>,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        answer(request).await
    }

    /// `GET path` (with its query): the status and the body as JSON (a string if not JSON).
    pub async fn get(&self, path: impl Into<String>) -> (u16, Value) {
        let path: String = path.into();
        answer(self.client.get(format!("{}{path}", self.base))).await
    }
}

/// The status and the body as JSON (a string if not JSON).
async fn answer(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn count_events(db: &TestDb) -> i64 {
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    sqlx::query("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await
        .unwrap()
        .get(0)
}

fn record(id: &str, input: u64) -> String {
    format!(
        r#"{{"id":"{id}","time":"2026-04-01T10:00:00Z","project":"web","provider":"openai","model":"gpt-5.2","tokens":{{"input":{input},"output":100}}}}"#
    )
}

#[tokio::test]
async fn usage_is_accepted_as_an_object_an_array_ndjson_and_cloudevents() {
    let db = TestDb::new().await;
    let server = TestServer::start(&db).await;

    let (status, answer) = server
        .post("/v1/usage", "application/json", record("a1", 1000))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        answer,
        json!({"accepted": 1, "duplicates": 0, "rejected": []})
    );

    // An array with a duplicate of a1 and a bad element in the middle.
    let array = format!(
        r#"[{}, {{"model":"gpt-5.2","tokens":{{"input":-1}}}}, {}]"#,
        record("a1", 1000),
        record("a2", 2000)
    );
    let (status, answer) = server.post("/v1/usage", "application/json", array).await;
    assert_eq!(status, 200);
    assert_eq!(answer["accepted"], 1);
    assert_eq!(answer["duplicates"], 1);
    assert_eq!(answer["rejected"][0]["index"], 1);
    assert_eq!(
        answer["rejected"][0]["error"],
        "canonical record: tokens.input is negative (-1)"
    );

    // NDJSON, with a blank line and provider-native shapes.
    let ndjson = format!(
        "{}\n\n{}\n{}\n",
        record("a3", 3000),
        sample("anthropic-message.json").trim(),
        sample("openai-chat.json").trim()
    );
    let (status, answer) = server
        .post("/v1/usage", "application/x-ndjson", ndjson)
        .await;
    assert_eq!((status, answer["accepted"].clone()), (200, json!(3)));

    // A CloudEvents structured event and a batch.
    let event = |id: &str| {
        format!(
            r#"{{"specversion":"1.0","id":"{id}","source":"/gw","type":"com.example.llm.usage.v1","data":{{"project":"web","model":"gpt-5-mini","tokens":{{"input":10}}}}}}"#
        )
    };
    let (status, answer) = server
        .post("/v1/usage", "application/cloudevents+json", event("e1"))
        .await;
    assert_eq!((status, answer["accepted"].clone()), (200, json!(1)));
    let batch = format!("[{},{},{}]", event("e1"), event("e2"), event("e3"));
    let (status, answer) = server
        .post(
            "/v1/usage",
            "application/cloudevents-batch+json; charset=utf-8",
            batch,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        (answer["accepted"].clone(), answer["duplicates"].clone()),
        (json!(2), json!(1))
    );
    // A CloudEvents content type rejects records that are not events.
    let (status, _) = server
        .post("/v1/usage", "application/cloudevents+json", record("a9", 1))
        .await;
    assert_eq!(status, 400);

    assert_eq!(count_events(&db).await, 1 + 1 + 3 + 1 + 2);

    // A single record that cannot be used fails the request, with the reason.
    let (status, answer) = server
        .post("/v1/usage", "application/json", r#"{"model":"m"}"#)
        .await;
    assert_eq!(status, 400);
    assert_eq!(answer["error"]["code"], "rejected");
    // Garbage bodies.
    for body in ["", "[", "[1,", "\u{0}"] {
        let (status, answer) = server.post("/v1/usage", "application/json", body).await;
        assert!((400..500).contains(&status), "{body:?}: {status} {answer}");
    }
    server.daemon.stop().await.unwrap();
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_with_413() {
    let db = TestDb::new().await;
    let server = TestServer::start(&db).await;
    let line = record("big", 1) + "\n";
    let body = line.repeat(11 * 1024 * 1024 / line.len());
    let (status, answer) = server.post("/v1/usage", "application/x-ndjson", body).await;
    assert_eq!(status, 413);
    assert_eq!(answer["error"]["code"], "body_too_large");
    assert_eq!(count_events(&db).await, 0);
    server.daemon.stop().await.unwrap();
}

#[tokio::test]
async fn a_store_outage_answers_503_with_retry_after_and_nothing_is_half_written() {
    let db = TestDb::new().await;
    let server = TestServer::start(&db).await;
    db.allow_connections(false).await;
    let response = server
        .client
        .post(format!("{}/v1/usage", server.base))
        .body(format!("[{},{}]", record("o1", 1), record("o2", 2)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 503);
    assert_eq!(response.headers()["retry-after"], "5");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "store_unavailable");
    let ready = server
        .client
        .get(format!("{}/readyz", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status().as_u16(), 503);
    let healthy = server
        .client
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(healthy.status().as_u16(), 200, "the process itself is fine");

    db.allow_connections(true).await;
    // The same request, retried, now lands whole.
    let mut status = 0;
    for _ in 0..50 {
        let (code, _) = server
            .post(
                "/v1/usage",
                "application/json",
                format!("[{},{}]", record("o1", 1), record("o2", 2)),
            )
            .await;
        status = code;
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 200);
    assert_eq!(count_events(&db).await, 2);
    server.daemon.stop().await.unwrap();
}

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..KeyValue::default()
    }
}

fn text(value: &str) -> any_value::Value {
    any_value::Value::StringValue(value.into())
}

fn int(value: i64) -> any_value::Value {
    any_value::Value::IntValue(value)
}

/// A trace export with an LLM span, a plain HTTP span, and an LLM span with a bad count.
fn trace_export(response_id: &str) -> ExportTraceServiceRequest {
    let llm_span = Span {
        trace_id: vec![0xab; 16],
        span_id: vec![0x01; 8],
        name: "chat gpt-5.2".into(),
        start_time_unix_nano: 1_775_001_600_000_000_000,
        end_time_unix_nano: 1_775_001_602_500_000_000,
        attributes: vec![
            kv("gen_ai.operation.name", text("chat")),
            kv("gen_ai.provider.name", text("openai")),
            kv("gen_ai.request.model", text("gpt-5.2")),
            kv("gen_ai.response.model", text("gpt-5.2-2025-12-11")),
            kv("gen_ai.response.id", text(response_id)),
            kv("gen_ai.usage.input_tokens", int(12_000)),
            kv("gen_ai.usage.cache_read.input_tokens", int(2_000)),
            kv("gen_ai.usage.output_tokens", int(900)),
            kv("gen_ai.usage.reasoning.output_tokens", int(400)),
            kv("llm_meter.tag.feature", text("search-summary")),
        ],
        ..Span::default()
    };
    let http_span = Span {
        trace_id: vec![0xab; 16],
        span_id: vec![0x02; 8],
        name: "GET /search".into(),
        start_time_unix_nano: 1_775_001_600_000_000_000,
        end_time_unix_nano: 1_775_001_603_000_000_000,
        attributes: vec![kv("http.request.method", text("GET"))],
        ..Span::default()
    };
    let bad_span = Span {
        trace_id: vec![0xab; 16],
        span_id: vec![0x03; 8],
        name: "chat claude".into(),
        end_time_unix_nano: 1_775_001_604_000_000_000,
        attributes: vec![
            kv("gen_ai.provider.name", text("anthropic")),
            kv("gen_ai.request.model", text("claude-haiku-4-5")),
            kv("gen_ai.usage.input_tokens", int(-5)),
        ],
        ..Span::default()
    };
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", text("search-api")),
                    kv("llm_meter.project", text("search")),
                ],
                ..Resource::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans: vec![llm_span, http_span, bad_span],
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    }
}

#[tokio::test]
async fn otlp_traces_in_protobuf_and_json_become_records() {
    let db = TestDb::new().await;
    let server = TestServer::start(&db).await;

    let body = trace_export("chatcmpl-otlp-proto").encode_to_vec();
    let response = server
        .client
        .post(format!("{}/v1/traces", server.base))
        .header("content-type", "application/x-protobuf")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-protobuf");
    let answer = ExportTraceServiceResponse::decode(response.bytes().await.unwrap()).unwrap();
    let partial = answer.partial_success.expect("the bad span is reported");
    assert_eq!(partial.rejected_spans, 1);
    assert!(
        partial
            .error_message
            .contains("gen_ai.usage.input_tokens is negative"),
        "{}",
        partial.error_message
    );

    let json_body = serde_json::to_string(&trace_export("chatcmpl-otlp-json")).unwrap();
    assert!(
        json_body.contains("\"traceId\""),
        "OTLP JSON uses camelCase and hex ids"
    );
    let (status, answer) = server
        .post("/v1/traces", "application/json", json_body)
        .await;
    assert_eq!(status, 200);
    // int64 fields may be written as JSON numbers or strings in OTLP JSON.
    let rejected = &answer["partialSuccess"]["rejectedSpans"];
    assert!(rejected == &json!(1) || rejected == &json!("1"), "{answer}");

    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let rows = sqlx::query(
        "SELECT id, project, provider, model, resolved_model, input, cached_input, output, reasoning, \
         time, tags->>'feature', cost_nanos FROM events ORDER BY id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        rows.len(),
        2,
        "one record per LLM span, none for the HTTP span"
    );
    for row in &rows {
        assert_eq!(
            row.get::<String, _>(1),
            "search",
            "project from the resource attribute"
        );
        assert_eq!(row.get::<String, _>(2), "openai");
        assert_eq!(row.get::<String, _>(3), "gpt-5.2-2025-12-11");
        assert_eq!(row.get::<Option<String>, _>(4).as_deref(), Some("gpt-5.2"));
        // input includes the cache reads; output includes reasoning (the conventions).
        assert_eq!(row.get::<i64, _>(5), 10_000);
        assert_eq!(row.get::<i64, _>(6), 2_000);
        assert_eq!(row.get::<i64, _>(7), 500);
        assert_eq!(row.get::<i64, _>(8), 400);
        assert_eq!(
            row.get::<chrono::DateTime<chrono::Utc>, _>(9).to_rfc3339(),
            "2026-04-01T00:00:02.500+00:00"
        );
        assert_eq!(
            row.get::<Option<String>, _>(10).as_deref(),
            Some("search-summary")
        );
        // 10,000 × $1.75 + 2,000 × $0.175 + 900 × $14 = $0.03045 = 30,450,000 nano-dollars
        assert_eq!(row.get::<i64, _>(11), 30_450_000);
    }
    let ids: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(ids, ["chatcmpl-otlp-json", "chatcmpl-otlp-proto"]);

    let (status, _) = server
        .post(
            "/v1/traces",
            "application/x-protobuf",
            vec![0xff, 0x00, 0x13],
        )
        .await;
    assert_eq!(status, 400);
    let (status, _) = server.post("/v1/traces", "text/plain", "hello").await;
    assert_eq!(status, 415);
    server.daemon.stop().await.unwrap();
}

#[tokio::test]
async fn metrics_count_what_was_ingested() {
    let db = TestDb::new().await;
    let server = TestServer::start(&db).await;
    server
        .post(
            "/v1/usage",
            "application/json",
            format!(
                "[{},{},{}]",
                record("m1", 1000),
                record("m1", 1000),
                r#"{"x":1}"#
            ),
        )
        .await;
    let metrics = server
        .client
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        r#"llm_meter_ingest_records_total{outcome="accepted",source="http"} 1"#,
        r#"llm_meter_ingest_records_total{outcome="duplicate",source="http"} 1"#,
        r#"llm_meter_ingest_records_total{outcome="rejected",source="http"} 1"#,
        r#"llm_meter_requests_total{model="gpt-5.2",project="web",provider="openai"} 1"#,
        r#"llm_meter_tokens_total{model="gpt-5.2",project="web",provider="openai",token_type="input"} 1000"#,
        "llm_meter_ingest_batch_seconds_count 1",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "missing {line}\n{metrics}"
        );
    }
    // 1,000 × $1.75 + 100 × $14 = $0.00315
    assert!(metrics.contains(
        r#"llm_meter_cost_usd_total{model="gpt-5.2",project="web",provider="openai"} 0.00315"#
    ));
    server.daemon.stop().await.unwrap();
}

#[tokio::test]
async fn the_embedded_store_serves_by_default_and_refuses_a_second_daemon_on_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        database_url: Some(format!(
            "sqlite://{}",
            dir.path().join("meter.db").display()
        )),
        ..Config::default()
    };
    let server = TestServer::start_with(config.clone()).await;
    let (status, answer) = server
        .post("/v1/usage", "application/json", record("s1", 1000))
        .await;
    assert_eq!((status, answer["accepted"].clone()), (200, json!(1)));
    let (_, ready) = server.get("/readyz").await;
    assert_eq!(ready["store"], "sqlite");

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let error = Daemon::start(&config, listener)
        .await
        .err()
        .expect("a second daemon is refused");
    assert!(
        error.to_string().contains("one daemon per file"),
        "{error:#}"
    );
    server.daemon.stop().await.unwrap();

    // Once the first one is gone, the file is free again.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let again = Daemon::start(&config, listener)
        .await
        .expect("the lock is released on stop");
    again.stop().await.unwrap();
}
