//! `/metrics` on a real daemon: every contract metric present, clean under the real
//! `promtool check metrics`, labels bounded, and the store-derived spend gauges equal to
//! the store's spend, also after a restart.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use llm_meter::config::{Config, MetricsConfig};
use rust_decimal::Decimal;

use crate::collector::collector_config;
use crate::http_ingest::TestServer;
use crate::pg::TestDb;

fn now_record(id: &str, project: &str, model: &str, input: u64) -> String {
    format!(
        r#"{{"id":"{id}","time":"{}","project":"{project}","provider":"openai","model":"{model}","user":"alice@example.com","tokens":{{"input":{input},"output":100}}}}"#,
        Utc::now().to_rfc3339()
    )
}

pub async fn scrape(server: &TestServer) -> String {
    let response = server
        .client
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    response.text().await.unwrap()
}

/// Scrapes until `ready` holds (the gauges refresh on an interval; the tailer polls).
pub async fn scrape_until(server: &TestServer, ready: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let body = scrape(server).await;
        if ready(&body) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "metrics never got ready:\n{body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The value of one sample line, by its exact name and labels.
pub fn sample(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|value| value.trim().parse().unwrap())
}

pub fn promtool_check(body: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| {
            panic!(
                "\n\nThis test runs the real `promtool` ({error}). Install it with \
                 `apt-get install prometheus` (.ci/run does so when it is missing).\n\n"
            )
        });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "promtool: {report}");
    assert!(
        report.trim().is_empty(),
        "promtool found problems: {report}"
    );
}

#[tokio::test]
async fn every_contract_metric_is_exposed_and_clean_under_promtool() {
    let db = TestDb::new().await;
    let logs = tempfile::tempdir().unwrap();
    std::fs::write(
        logs.path().join("app.log"),
        format!(
            "{}\nnot json\n",
            now_record("log-1", "tail", "gpt-5.2", 500)
        ),
    )
    .unwrap();
    let config = Config {
        database_url: Some(db.url.clone()),
        collectors: vec![collector_config(logs.path(), "proxy")],
        metrics: MetricsConfig {
            refresh_interval: Duration::from_millis(50),
            ..MetricsConfig::default()
        },
        ..Config::default()
    };
    let server = TestServer::start_with(config.clone()).await;
    let body = [
        now_record("a1", "search", "gpt-5.2", 1_000_000),
        now_record("a1", "search", "gpt-5.2", 1_000_000),
        now_record("a2", "search", "made-up-model-3", 10),
        r#"{"model":"gpt-5.2","tokens":{"input":-5}}"#.to_owned(),
    ]
    .join("\n");
    let (status, answer) = server.post("/v1/usage", "application/x-ndjson", body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        (answer["accepted"].as_u64(), answer["duplicates"].as_u64()),
        (Some(2), Some(1))
    );

    // $1.75 for a1's million input tokens, $0.0014 for its 100 output tokens.
    let month = r#"llm_meter_project_spend_usd{period="month",project="search"}"#;
    let metrics = scrape_until(&server, |body| {
        sample(body, month) == Some(1.7514)
            && body.contains(
                r#"llm_meter_requests_total{model="gpt-5.2",project="tail",provider="openai"} 1"#,
            )
    })
    .await;
    for name in [
        "llm_meter_cost_usd_total",
        "llm_meter_tokens_total",
        "llm_meter_requests_total",
        "llm_meter_unpriced_requests_total",
        "llm_meter_ingest_records_total",
        "llm_meter_ingest_batch_seconds",
        "llm_meter_collector_lag_bytes",
        "llm_meter_project_spend_usd",
        "llm_meter_project_savings_usd",
        "llm_meter_request_cost_usd",
        "llm_meter_http_requests_total",
        "llm_meter_http_request_seconds",
    ] {
        assert!(
            metrics.contains(&format!("# TYPE {name} ")),
            "{name} missing:\n{metrics}"
        );
    }
    for outcome in ["accepted", "duplicate", "rejected"] {
        assert!(
            metrics.contains(&format!(r#"outcome="{outcome}""#)),
            "no {outcome} sample:\n{metrics}"
        );
    }
    assert_eq!(
        sample(
            &metrics,
            r#"llm_meter_project_spend_usd{period="day",project="search"}"#
        ),
        Some(1.7514)
    );
    assert_eq!(
        sample(
            &metrics,
            r#"llm_meter_unpriced_requests_total{model="made-up-model-3",provider="openai"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &metrics,
            r#"llm_meter_collector_lag_bytes{collector="proxy"}"#
        ),
        Some(0.0)
    );
    // Bounded labels: never a user, a record id or a raw path.
    for unbounded in [
        "alice@example.com",
        "\"a1\"",
        "log-1",
        logs.path().to_str().unwrap(),
    ] {
        assert!(
            !metrics.contains(unbounded),
            "{unbounded} leaked into /metrics"
        );
    }
    promtool_check(&metrics);

    // From the store: a new daemon on the same database shows the same spend at once,
    // though its own counters start from zero.
    server.daemon.stop().await.unwrap();
    let restarted = TestServer::start_with(config).await;
    let metrics = scrape_until(&restarted, |body| sample(body, month).is_some()).await;
    assert_eq!(sample(&metrics, month), Some(1.7514));
    let stored: Decimal = restarted
        .daemon
        .store
        .usage(&llm_meter::store::UsageQuery {
            from: Utc::now() - chrono::Duration::days(40),
            to: Utc::now() + chrono::Duration::days(1),
            group_by: vec![],
            filter: llm_meter::store::UsageFilter {
                projects: Some(vec!["search".into()]),
                ..Default::default()
            },
            ..Default::default()
        })
        .await
        .unwrap()[0]
        .cost;
    assert_eq!(stored.to_string(), "1.7514");
    assert!(
        !metrics.contains("llm_meter_requests_total{"),
        "counters are per process"
    );
    promtool_check(&metrics);
}
