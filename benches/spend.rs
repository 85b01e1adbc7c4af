//! `cargo bench --bench spend`: spend queries over the rollups of 10M usage events, on
//! Postgres and on SQLite, through the same code `GET /v1/spend` runs.
//!
//! The rollups are filled with SQL: 10M synthetic events (one calendar month, 25 projects,
//! 12 models of 4 providers, 2 service tiers, 10% batch, a `team` tag of 3 values) summed
//! into the hourly and daily rows ingest would write for them. Timed: the month by
//! project, the month by model by day (both answered from daily rollups), and, to show
//! what a non-UTC timezone costs, the month by model by day in Europe/Oslo (hourly rollups).
//!
//! EVENTS=10000000 (default) RUNS=30 (default). Postgres as in `benches/common`;
//! KEEP_DATABASE=1 keeps it (to EXPLAIN the queries), SKIP_SQLITE=1 times Postgres only.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use llm_meter::report::params::{SpendRequest, parse_group_by, parse_timezone};
use llm_meter::report::spend;
use llm_meter::store::{PgStore, SqliteStore, Store, UsageFilter};

mod common;
use common::{drop_database, fresh_database};

const MONTH_START: &str = "2026-10-01T00:00:00Z";
const MONTH_END: &str = "2026-11-01T00:00:00Z";

/// (provider, model, input and output price in nano-dollars per token)
const MODELS: &str = "(0, 'openai', 'gpt-5.2', 1750, 14000), (1, 'openai', 'gpt-5-mini', 250, 2000), \
    (2, 'openai', 'gpt-5.4', 2500, 15000), (3, 'openai', 'gpt-5.4-mini', 750, 4500), \
    (4, 'anthropic', 'claude-sonnet-4-5', 3000, 15000), (5, 'anthropic', 'claude-haiku-4-5', 1000, 5000), \
    (6, 'anthropic', 'claude-opus-4-6', 5000, 25000), (7, 'google', 'gemini-2.5-pro', 1250, 10000), \
    (8, 'google', 'gemini-2.5-flash', 300, 2500), (9, 'google', 'gemini-2.5-flash-lite', 100, 400), \
    (10, 'openrouter', 'claude-sonnet-4-5', 3000, 15000), (11, 'openrouter', 'gemini-2.5-pro', 1250, 10000)";

/// The synthetic events' columns (SQL both backends take). `seq(i)` numbers the events;
/// every combination of project, model, team, tier and batch flag recurs, spread over
/// the month's hours.
fn events_select(seq: &str, hour_expression: &str) -> String {
    format!(
        "WITH {seq}, models(k, provider, model, input_nanos, output_nanos) AS (VALUES {MODELS}) \
         SELECT 'project-' || (i % 25) AS project, {hour_expression} AS hour, \
                m.provider, m.model, \
                CASE WHEN (i / 300) % 5 = 0 THEN 'flex' ELSE 'default' END AS tier, \
                CASE WHEN (i / 900) % 10 = 0 THEN 1 ELSE 0 END AS batch, (i / 25) % 3 AS team, \
                500 + (i * 7919) % 20000 AS input, (i * 31) % 4000 AS cached, \
                50 + (i * 104729) % 2000 AS output, (i * 13) % 600 AS reasoning, \
                m.input_nanos, m.output_nanos \
         FROM seq JOIN models AS m ON m.k = (i / 75) % 12"
    )
}

/// Sums the events into rollup rows: `(time, tags)` are the backend's expressions.
fn rollup_insert(table: &str, time_column: &str, tags: &str, source: &str) -> String {
    format!(
        "INSERT INTO {table} (project, {time_column}, provider, model, service_tier, batch, \
             reasoning_effort, tags, requests, unpriced_requests, input, cached_input, \
             cache_write_5m, cache_write_1h, output, reasoning, cost_nanos, list_cost_nanos, \
             reported_cost_nanos, input_cost_picos, cached_input_cost_picos, \
             cache_write_5m_cost_picos, cache_write_1h_cost_picos, output_cost_picos, \
             reasoning_cost_picos, cache_savings_nanos, batch_savings_nanos) \
         SELECT project, hour, provider, model, tier, batch, '', {tags}, count(*), 0, \
             sum(input), sum(cached), 0, 0, sum(output), sum(reasoning), \
             sum(input * input_nanos + cached * input_nanos / 10 + (output + reasoning) * output_nanos), \
             sum((input + cached) * input_nanos + (output + reasoning) * output_nanos), 0, \
             sum(input * input_nanos) * 1000, sum(cached * input_nanos / 10) * 1000, 0, 0, \
             sum(output * output_nanos) * 1000, sum(reasoning * output_nanos) * 1000, \
             sum(cached * input_nanos * 9 / 10), 0 \
         FROM ({source}) AS e GROUP BY project, hour, provider, model, tier, batch, team"
    )
}

struct Query {
    name: &'static str,
    group_by: &'static str,
    tz: &'static str,
}

const QUERIES: [Query; 3] = [
    Query {
        name: "month by project",
        group_by: "project",
        tz: "UTC",
    },
    Query {
        name: "month by model by day",
        group_by: "model,day",
        tz: "UTC",
    },
    Query {
        name: "month by model by day, Europe/Oslo",
        group_by: "model,day",
        tz: "Europe/Oslo",
    },
];

fn request(query: &Query) -> SpendRequest {
    let from: DateTime<Utc> = MONTH_START.parse().unwrap();
    let to: DateTime<Utc> = MONTH_END.parse().unwrap();
    SpendRequest::new(
        from,
        to,
        parse_group_by(query.group_by).unwrap(),
        UsageFilter::default(),
        parse_timezone(query.tz).unwrap(),
    )
    .unwrap()
}

async fn time_queries(backend: &str, store: &dyn Store, runs: usize, events: u64) {
    for query in &QUERIES {
        let request = request(query);
        // Warm up, and check the answer covers every event.
        let report = spend::spend(store, &request).await.unwrap();
        assert_eq!(report.total_requests, events, "{backend} {}", query.name);
        let mut times: Vec<Duration> = Vec::with_capacity(runs);
        for _ in 0..runs {
            let started = Instant::now();
            let report = spend::spend(store, &request).await.unwrap();
            times.push(started.elapsed());
            assert!(!report.rows.is_empty());
        }
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "{backend:<9} {:<36} rows {:>4}   median {:>8.1} ms   p95 {:>8.1} ms",
            query.name,
            report.rows.len(),
            ms(times[runs / 2]),
            ms(times[(runs * 95 / 100).min(runs - 1)]),
        );
    }
}

#[tokio::main]
async fn main() {
    let events: u64 = std::env::var("EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    println!("Spend queries over the rollups of {events} events (one month); {runs} runs each.");

    // Postgres.
    let name = "llm_meter_bench_spend";
    let url = fresh_database(name).await;
    let store = PgStore::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let started = Instant::now();
    let source = events_select(
        &format!("seq(i) AS (SELECT generate_series(1::bigint, {events}))"),
        &format!("timestamptz '{MONTH_START}' + ((i * 7919) % 744) * interval '1 hour'"),
    );
    let fill = rollup_insert(
        "rollups_hourly",
        "hour",
        "jsonb_build_object('team', 'team-' || team)",
        &source.replace(
            "CASE WHEN (i / 900) % 10 = 0 THEN 1 ELSE 0 END",
            "((i / 900) % 10 = 0)",
        ),
    );
    sqlx::query(sqlx::AssertSqlSafe(fill))
        .execute(store.pool())
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO rollups_daily SELECT project, date_trunc('day', hour, 'UTC'), provider, model, \
             service_tier, batch, reasoning_effort, tags, sum(requests), sum(unpriced_requests), \
             sum(input), sum(cached_input), sum(cache_write_5m), sum(cache_write_1h), sum(output), \
             sum(reasoning), sum(cost_nanos), sum(list_cost_nanos), sum(reported_cost_nanos), \
             sum(input_cost_picos), sum(cached_input_cost_picos), sum(cache_write_5m_cost_picos), \
             sum(cache_write_1h_cost_picos), sum(output_cost_picos), sum(reasoning_cost_picos), \
             sum(cache_savings_nanos), sum(batch_savings_nanos) \
         FROM rollups_hourly GROUP BY 1, 2, 3, 4, 5, 6, 7, 8",
    )
    .execute(store.pool())
    .await
    .unwrap();
    sqlx::query("VACUUM ANALYZE")
        .execute(store.pool())
        .await
        .unwrap();
    let (hourly, daily): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM rollups_hourly), (SELECT count(*) FROM rollups_daily)",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    println!(
        "postgres  filled in {:.1} s: {hourly} hourly rollup rows, {daily} daily",
        started.elapsed().as_secs_f64()
    );
    time_queries("postgres", &store, runs, events).await;
    drop(store);
    if std::env::var("KEEP_DATABASE").is_ok() {
        println!("postgres  kept: {url}");
    } else {
        drop_database(name).await;
    }
    if std::env::var("SKIP_SQLITE").is_ok() {
        return;
    }

    // SQLite.
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let store = SqliteStore::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let started = Instant::now();
    let source = events_select(
        &format!(
            "RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < {events})"
        ),
        &format!(
            "{} + ((i * 7919) % 744) * 3600",
            MONTH_START.parse::<DateTime<Utc>>().unwrap().timestamp()
        ),
    );
    let fill = rollup_insert(
        "rollups_hourly",
        "hour",
        "'{\"team\":\"team-' || team || '\"}'",
        &source,
    );
    sqlx::query(sqlx::AssertSqlSafe(fill))
        .execute(store.pool())
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO rollups_daily SELECT project, (hour / 86400) * 86400, provider, model, \
             service_tier, batch, reasoning_effort, tags, sum(requests), sum(unpriced_requests), \
             sum(input), sum(cached_input), sum(cache_write_5m), sum(cache_write_1h), sum(output), \
             sum(reasoning), sum(cost_nanos), sum(list_cost_nanos), sum(reported_cost_nanos), \
             sum(input_cost_picos), sum(cached_input_cost_picos), sum(cache_write_5m_cost_picos), \
             sum(cache_write_1h_cost_picos), sum(output_cost_picos), sum(reasoning_cost_picos), \
             sum(cache_savings_nanos), sum(batch_savings_nanos) \
         FROM rollups_hourly GROUP BY 1, 2, 3, 4, 5, 6, 7, 8",
    )
    .execute(store.pool())
    .await
    .unwrap();
    sqlx::query("ANALYZE").execute(store.pool()).await.unwrap();
    let (hourly, daily): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM rollups_hourly), (SELECT count(*) FROM rollups_daily)",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    println!(
        "sqlite    filled in {:.1} s: {hourly} hourly rollup rows, {daily} daily",
        started.elapsed().as_secs_f64()
    );
    time_queries("sqlite", &store, runs, events).await;
}
