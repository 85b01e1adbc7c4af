//! `cargo bench --bench alerts`: the time from committing the record that crosses a
//! budget threshold (the `POST /v1/usage` answer) to its webhook arriving at a receiver on
//! loopback, with the daemon's default settings (100 ms debounce), on Postgres and SQLite.
//!
//! CROSSINGS=40 (default). Postgres as in `benches/common`.

use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use chrono::Utc;
use llm_meter::config::Config;
use llm_meter::daemon::Daemon;
use tokio::sync::mpsc;

mod common;
use common::{drop_database, fresh_database};

async fn receive(
    State(arrivals): State<mpsc::UnboundedSender<Instant>>,
    _body: Bytes,
) -> &'static str {
    let _ = arrivals.send(Instant::now());
    "ok"
}

async fn measure(backend: &str, url: String, crossings: u64) {
    let (arrivals, mut arrived) = mpsc::unbounded_channel();
    let app = axum::Router::new().fallback(receive).with_state(arrivals);
    let receiver = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", receiver.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(receiver, app).await.unwrap() });

    let mut config = Config::from_toml("[webhooks]\nallow = [\"127.0.0.1\"]\n").unwrap();
    config.database_url = Some(url);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let daemon = Daemon::start(&config, listener).await.unwrap();
    let base = format!("http://{}", daemon.addr);
    let client = reqwest::Client::new();
    // One threshold per dollar: each $1 record crosses exactly one.
    let thresholds: Vec<String> = (1..=crossings)
        .map(|n| format!("{{\"usd\":\"{n}\"}}"))
        .collect();
    let budget = format!(
        r#"{{"name":"bench","limit_usd":"{}","period":"month","thresholds":[{}],"webhooks":[{{"url":"{hook}"}}]}}"#,
        crossings * 10,
        thresholds.join(",")
    );
    let created = client
        .post(format!("{base}/v1/budgets"))
        .body(budget)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201, "{}", created.text().await.unwrap());

    let mut latencies = Vec::with_capacity(crossings as usize);
    for n in 0..crossings {
        // $1 of claude-haiku-4-5 input.
        let record = format!(
            r#"{{"id":"bench-{n}","time":"{}","project":"p","provider":"anthropic","model":"claude-haiku-4-5","tokens":{{"input":1000000}}}}"#,
            Utc::now().to_rfc3339()
        );
        let answer = client
            .post(format!("{base}/v1/usage"))
            .body(record)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        let committed = Instant::now();
        let arrival = tokio::time::timeout(Duration::from_secs(30), arrived.recv())
            .await
            .expect("the webhook arrives")
            .unwrap();
        latencies.push(arrival.saturating_duration_since(committed));
    }
    daemon.stop().await.unwrap();
    latencies.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{backend:<9} {crossings} crossings: commit to webhook median {:.0} ms, p95 {:.0} ms, max {:.0} ms",
        ms(latencies[latencies.len() / 2]),
        ms(latencies[(latencies.len() * 95 / 100).min(latencies.len() - 1)]),
        ms(*latencies.last().unwrap())
    );
}

#[tokio::main]
async fn main() {
    let crossings: u64 = std::env::var("CROSSINGS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    let name = "llm_meter_bench_alerts";
    let url = fresh_database(name).await;
    measure("postgres", url, crossings).await;
    drop_database(name).await;
    let dir = tempfile::tempdir().unwrap();
    measure(
        "sqlite",
        format!("sqlite://{}", dir.path().join("alerts.db").display()),
        crossings,
    )
    .await;
}
