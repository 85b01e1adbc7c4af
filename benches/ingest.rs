//! `cargo bench --bench ingest`: backfill throughput into Postgres, beside a plain COPY of
//! the same rows into a table with the same primary key, and HTTP ingest over loopback.
//!
//! RECORDS=1000000 (default) HTTP_RECORDS=200000 (default)
//! BENCH_DATABASE_URL (else TEST_DATABASE_URL, else postgres://postgres@127.0.0.1:5432/postgres):
//! a server where the user may create databases; a fresh one is created and dropped.

use std::io::{BufWriter, Write};
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use llm_meter::config::Config;
use llm_meter::daemon::Daemon;
use llm_meter::prepare::Preparer;
use llm_meter::pricing::{PriceBook, PriceOutcome};
use llm_meter::usage::Format;

mod common;
use common::{drop_database, fresh_database};
use sqlx::Connection;
use sqlx::postgres::PgConnection;

pub fn record(i: u64) -> String {
    let models = [
        ("openai", "gpt-5.2"),
        ("openai", "gpt-5-mini"),
        ("anthropic", "claude-sonnet-4-5"),
        ("google", "gemini-2.5-flash"),
    ];
    let (provider, model) = models[(i % 4) as usize];
    let project = ["search", "ads", "agents", "support"][(i % 4 + i / 7 % 4) as usize % 4];
    let seconds = 1_775_001_600 + (i * 2) % (86_400 * 30);
    let time = chrono::DateTime::from_timestamp(seconds as i64, 0)
        .unwrap()
        .to_rfc3339();
    format!(
        r#"{{"id":"bench-{i}","time":"{time}","project":"{project}","provider":"{provider}","model":"{model}","tokens":{{"input":{},"cached_input":{},"output":{},"reasoning":{}}},"tags":{{"env":"prod"}}}}"#,
        500 + (i * 7919) % 20_000,
        (i * 31) % 4000,
        50 + (i * 104_729) % 2000,
        (i * 13) % 600,
    )
}

/// Peak resident memory of finished children, in MB.
fn children_peak_rss_mb() -> f64 {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes into the struct we pass and has no other effect.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    usage.ru_maxrss as f64 / 1024.0
}

/// COPY text-format escaping.
fn copy_text(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('\t', "\\t")
        .replace('\n', "\\n")
        .replace('\r', "\\r")
}

#[tokio::main]
async fn main() {
    let records: u64 = std::env::var("RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let http_records: u64 = std::env::var("HTTP_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("canonical.jsonl");
    let mut file = BufWriter::new(std::fs::File::create(&path).unwrap());
    for i in 0..records {
        writeln!(file, "{}", record(i)).unwrap();
    }
    file.flush().unwrap();
    drop(file);

    // 1. Backfill with the real binary: parse, price, batch, store, rollups; partitioned
    // events with retention configured, as production runs.
    let url = fresh_database("llm_meter_bench_ingest").await;
    let config_path = dir.path().join("llm-meter.toml");
    std::fs::write(
        &config_path,
        "[retention]\nevents = \"400d\"\ndead_letters = \"30d\"\n",
    )
    .unwrap();
    let started = Instant::now();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_llm-meter"))
        .env("DATABASE_URL", &url)
        .arg("--config")
        .arg(&config_path)
        .args(["ingest", path.to_str().unwrap()])
        .output()
        .unwrap();
    let ingest_seconds = started.elapsed().as_secs_f64();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let peak_rss = children_peak_rss_mb();
    let ingest_rate = records as f64 / ingest_seconds;

    // 2. The same rows, already priced, by plain COPY into a table with the same key.
    let book = PriceBook::builtin().unwrap();
    let mut preparer = Preparer::new(&book, Format::Auto, "default");
    let now = Utc::now();
    let mut copy_data = Vec::with_capacity(records as usize * 200);
    for i in 0..records {
        let priced = preparer.prepare(&record(i), now).unwrap();
        let r = &priced.record;
        let (cost, list, price) = match &priced.price {
            PriceOutcome::Priced(p) => (
                p.cost.to_string(),
                p.list_cost.to_string(),
                p.price_ref.clone(),
            ),
            PriceOutcome::Unpriced(_) => ("\\N".into(), "\\N".into(), "\\N".into()),
        };
        let t = &r.tokens;
        writeln!(
            copy_data,
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\tbackfill",
            copy_text(&r.project),
            copy_text(&r.id),
            r.time.to_rfc3339(),
            r.provider,
            r.model,
            t.input,
            t.cached_input,
            t.cache_write_5m,
            t.cache_write_1h,
            t.output,
            t.reasoning,
            r.batch,
            r.service_tier,
            copy_text(&serde_json::to_string(&r.tags).unwrap()),
            cost,
            list,
            copy_text(&price),
            now.to_rfc3339()
        )
        .unwrap();
    }
    let baseline_url = fresh_database("llm_meter_bench_copy").await;
    let mut connection = PgConnection::connect(&baseline_url).await.unwrap();
    sqlx::query(
        "CREATE TABLE events (project text NOT NULL, id text NOT NULL, time timestamptz NOT NULL,
            provider text NOT NULL, model text NOT NULL, input bigint NOT NULL, cached_input bigint NOT NULL,
            cache_write_5m bigint NOT NULL, cache_write_1h bigint NOT NULL, output bigint NOT NULL,
            reasoning bigint NOT NULL, batch boolean NOT NULL, service_tier text NOT NULL, tags jsonb NOT NULL,
            cost numeric(30,9), list_cost numeric(30,9), price_ref text, ingested_at timestamptz NOT NULL,
            source text NOT NULL, PRIMARY KEY (project, id))",
    )
    .execute(&mut connection)
    .await
    .unwrap();
    let started = Instant::now();
    let mut copy = connection
        .copy_in_raw("COPY events FROM STDIN")
        .await
        .unwrap();
    for chunk in copy_data.chunks(1 << 20) {
        copy.send(chunk).await.unwrap();
    }
    let copied = copy.finish().await.unwrap();
    let copy_seconds = started.elapsed().as_secs_f64();
    assert_eq!(copied, records);
    let copy_rate = records as f64 / copy_seconds;
    let copy_bytes: i64 = sqlx::query_scalar("SELECT pg_total_relation_size('events')")
        .fetch_one(&mut connection)
        .await
        .unwrap();
    drop(connection);
    let mut connection = PgConnection::connect(&url).await.unwrap();
    let (event_bytes, key_bytes, rollup_bytes, stored): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT sum(pg_total_relation_size(inhrelid))::bigint FROM pg_inherits \
                 WHERE inhparent = 'events'::regclass), \
                pg_total_relation_size('event_keys'), \
                pg_total_relation_size('rollups_hourly') + pg_total_relation_size('rollups_daily'), \
                (SELECT count(*) FROM events)",
    )
    .fetch_one(&mut connection)
    .await
    .unwrap();
    drop(connection);

    // The same file into the embedded SQLite store.
    let sqlite_path = dir.path().join("bench.db");
    let started = Instant::now();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_llm-meter"))
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", sqlite_path.display()),
        )
        .args(["ingest", path.to_str().unwrap()])
        .output()
        .unwrap();
    let sqlite_seconds = started.elapsed().as_secs_f64();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    println!(
        "backfill: {records} canonical records in {ingest_seconds:.2} s = {ingest_rate:.0} records/s, peak RSS {peak_rss:.1} MB ({summary})"
    );
    println!(
        "backfill into SQLite: {sqlite_seconds:.2} s = {:.0} records/s",
        records as f64 / sqlite_seconds
    );
    println!("plain COPY of the same rows: {copy_seconds:.2} s = {copy_rate:.0} rows/s");
    println!("ratio backfill / COPY: {:.2}", ingest_rate / copy_rate);
    println!(
        "bytes per stored event, table and indexes: {:.0} (events {:.0} + event_keys {:.0}); \
         the COPY baseline row: {:.0}; rollups {:.1} MB in all",
        (event_bytes + key_bytes) as f64 / stored as f64,
        event_bytes as f64 / stored as f64,
        key_bytes as f64 / stored as f64,
        copy_bytes as f64 / records as f64,
        rollup_bytes as f64 / 1e6,
    );

    // 3. HTTP ingest over loopback, batches of 1,000 NDJSON records, 4 requests in flight.
    let http_url = fresh_database("llm_meter_bench_http").await;
    let config = Config {
        database_url: Some(http_url.clone()),
        ..Config::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let daemon = Daemon::start(&config, listener).await.unwrap();
    let base = format!("http://{}/v1/usage", daemon.addr);
    let bodies: Vec<String> = (0..http_records / 1000)
        .map(|b| {
            (b * 1000..(b + 1) * 1000)
                .map(record)
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect();
    let client = reqwest::Client::new();
    let queue = Arc::new(tokio::sync::Mutex::new(bodies.into_iter()));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..4 {
        let (client, queue, base) = (client.clone(), queue.clone(), base.clone());
        workers.push(tokio::spawn(async move {
            let mut accepted = 0u64;
            loop {
                let Some(body) = queue.lock().await.next() else {
                    break;
                };
                let response = client
                    .post(&base)
                    .header("content-type", "application/x-ndjson")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status().as_u16(), 200);
                let answer: serde_json::Value = response.json().await.unwrap();
                accepted += answer["accepted"].as_u64().unwrap();
            }
            accepted
        }));
    }
    let mut accepted = 0;
    for worker in workers {
        accepted += worker.await.unwrap();
    }
    let http_seconds = started.elapsed().as_secs_f64();
    assert_eq!(accepted, http_records);
    println!(
        "HTTP ingest: {http_records} records in batches of 1,000 (4 in flight) in {http_seconds:.2} s = {:.0} records/s",
        http_records as f64 / http_seconds
    );
    daemon.stop().await.unwrap();

    // 4. Tailing: a collector following the same records, from the file to committed rows.
    let tail_url = fresh_database("llm_meter_bench_tail").await;
    let tail_records = records.min(500_000);
    let tail_dir = dir.path().join("tail");
    std::fs::create_dir(&tail_dir).unwrap();
    let mut tail_file = BufWriter::new(std::fs::File::create(tail_dir.join("app.log")).unwrap());
    for i in 0..tail_records {
        writeln!(tail_file, "{}", record(i)).unwrap();
    }
    tail_file.flush().unwrap();
    drop(tail_file);
    let store = llm_meter::store::connect(&tail_url).await.unwrap();
    store.migrate().await.unwrap();
    let metrics = Arc::new(llm_meter::metrics::Metrics::new());
    let (pipeline, batcher) = llm_meter::ingest::Pipeline::start(
        store.clone(),
        llm_meter::ingest::PipelineConfig::default(),
        metrics.clone(),
    );
    let collector_config: llm_meter::collect::CollectorConfig = toml::from_str(&format!(
        "name = \"bench\"\npaths = [\"{}/app.log\"]\nbatch_lines = 5000\n",
        tail_dir.display()
    ))
    .unwrap();
    let mut collector = llm_meter::collect::Collector::new(
        collector_config,
        Arc::new(PriceBook::builtin().unwrap()),
        pipeline.clone(),
        store,
        metrics,
    )
    .await
    .unwrap();
    let started = Instant::now();
    let mut tailed = 0;
    while tailed < tail_records {
        tailed += collector.poll_once().await.unwrap().accepted;
    }
    let tail_seconds = started.elapsed().as_secs_f64();
    drop(collector);
    drop(pipeline);
    batcher.await.unwrap();
    println!(
        "tail: {tail_records} lines from file to committed rows in {tail_seconds:.2} s = {:.0} lines/s",
        tail_records as f64 / tail_seconds
    );

    for name in [
        "llm_meter_bench_tail",
        "llm_meter_bench_ingest",
        "llm_meter_bench_copy",
        "llm_meter_bench_http",
    ] {
        drop_database(name).await;
    }
}
