//! `cargo bench --bench org_scale`: the spend API's questions at an organisation's
//! cardinality, on Postgres, through the code `GET /v1/spend` and the FOCUS export run;
//! and retention of one month of partitioned events.
//!
//! The daily rollups are filled with SQL: PROJECTS (2,000) projects, each using 6 of 60
//! models, a `team` tag of 3 values, every day of DAYS (395, 13 months): 14.2M daily rows,
//! what ~50M events a year spread this widely leave (3.5 events per group and day); the
//! monthly rollups are their sums by month, as the writers keep them. Timed:
//! the last whole month by project, the last 12 months by month and project, the FOCUS
//! export of that month (rows per second), and `retention apply` dropping one month of
//! EVENTS_PER_MONTH (3.85M, 50M / 13) events with their keys.
//!
//! RUNS=20 (default; the year by model runs a fifth as often). Postgres as in
//! `benches/common`; KEEP_DATABASE=1 keeps the database, REUSE_DATABASE=1 times the
//! queries on the one kept (no fill, no retention).

use std::time::{Duration, Instant};

use chrono::{DateTime, Datelike, Months, TimeZone, Utc};
use llm_meter::report::focus;
use llm_meter::report::params::{SpendRequest, parse_group_by, parse_timezone};
use llm_meter::report::spend;
use llm_meter::retention::RetentionConfig;
use llm_meter::store::{PgStore, Store, UsageFilter, UsageStore};

mod common;
use common::{drop_database, fresh_database};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The first instant of the month `back` months before this one (UTC).
fn month_start(back: u32) -> DateTime<Utc> {
    let now = Utc::now();
    Utc.with_ymd_and_hms(now.year(), now.month(), 1, 0, 0, 0)
        .unwrap()
        .checked_sub_months(Months::new(back))
        .unwrap()
}

fn request(from: DateTime<Utc>, to: DateTime<Utc>, group_by: &str) -> SpendRequest {
    SpendRequest::new(
        from,
        to,
        parse_group_by(group_by).unwrap(),
        UsageFilter::default(),
        parse_timezone("UTC").unwrap(),
    )
    .unwrap()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Fills the daily rollups with SQL, then the monthly ones and the projects' totals
/// from them.
async fn fill(store: &PgStore, projects: u64, days: u64) {
    // Daily rollups: project p uses models (p * 7 + j * 11) % 60 for j < 6.
    let first_day = month_start(0) - chrono::Duration::days(days as i64);
    let started = Instant::now();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO rollups_daily (project, day, provider, model, service_tier, batch, \
             reasoning_effort, tags, requests, unpriced_requests, input, cached_input, \
             cache_write_5m, cache_write_1h, output, reasoning, cost_nanos, list_cost_nanos, \
             reported_cost_nanos, input_cost_picos, cached_input_cost_picos, \
             cache_write_5m_cost_picos, cache_write_1h_cost_picos, output_cost_picos, \
             reasoning_cost_picos, cache_savings_nanos, batch_savings_nanos) \
         SELECT 'project-' || p, timestamptz '{first_day}' + d * interval '1 day', \
             (ARRAY['openai', 'anthropic', 'google', 'mistral'])[1 + m % 4], 'model-' || m, \
             'default', false, '', jsonb_build_object('team', 'team-' || t), \
             3 + (p + d + m) % 2, 0, 4000, 500, 0, 0, 800, 0, \
             4000 * (100 + m * 10) + 800 * (400 + m * 40), 4000 * (100 + m * 10) + 800 * (400 + m * 40), \
             0, 4000::bigint * (100 + m * 10) * 1000, 0, 0, 0, 800::bigint * (400 + m * 40) * 1000, 0, 0, 0 \
         FROM generate_series(0, {projects} - 1) AS p, generate_series(0, 5) AS j, \
              generate_series(0, 2) AS t, generate_series(0, {days} - 1) AS d, \
              LATERAL (SELECT (p * 7 + j * 11) % 60 AS m) AS models"
    )))
    .execute(store.pool())
    .await
    .unwrap();
    // The monthly rollups and the projects' monthly totals the writers keep beside the
    // daily ones: their sums by month.
    let values: Vec<String> = sqlx::query_scalar(
        "SELECT column_name::text FROM information_schema.columns \
         WHERE table_name = 'rollups_monthly' AND data_type = 'bigint' ORDER BY ordinal_position",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    let sums: Vec<String> = values.iter().map(|c| format!("sum({c})")).collect();
    for statement in [
        "INSERT INTO rollups_monthly (project, month, provider, model, service_tier, batch, \
             reasoning_effort, tags, {values}) \
         SELECT project, date_trunc('month', day, 'UTC'), provider, model, service_tier, batch, \
             reasoning_effort, tags, {sums} \
         FROM rollups_daily GROUP BY 1, 2, 3, 4, 5, 6, 7, 8",
        "INSERT INTO rollups_project_monthly (project, month, {values}) \
         SELECT project, month, {sums} FROM rollups_monthly GROUP BY 1, 2",
    ] {
        let statement = statement
            .replace("{values}", &values.join(", "))
            .replace("{sums}", &sums.join(", "));
        sqlx::query(sqlx::AssertSqlSafe(statement))
            .execute(store.pool())
            .await
            .unwrap();
    }
    for table in [
        "rollups_daily",
        "rollups_monthly",
        "rollups_project_monthly",
    ] {
        sqlx::query(sqlx::AssertSqlSafe(format!("VACUUM ANALYZE {table}")))
            .execute(store.pool())
            .await
            .unwrap();
    }
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM rollups_daily")
        .fetch_one(store.pool())
        .await
        .unwrap();
    println!(
        "{rows} daily rollup rows ({projects} projects × 6 of 60 models × 3 teams × {days} days), filled in {:.0} s",
        started.elapsed().as_secs_f64()
    );
}

#[tokio::main]
async fn main() {
    let projects = env("PROJECTS", 2000);
    let days = env("DAYS", 395);
    let runs = env("RUNS", 20) as usize;
    let events_per_month = env("EVENTS_PER_MONTH", 3_850_000);
    let name = "llm_meter_bench_org";
    // REUSE_DATABASE=1: the rollups a KEEP_DATABASE=1 run left, instead of filling them again.
    let reuse = std::env::var("REUSE_DATABASE").is_ok();
    let url = if reuse {
        common::with_database(&common::admin_url(), name)
    } else {
        fresh_database(name).await
    };
    let store = PgStore::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    if !reuse {
        fill(&store, projects, days).await;
    }

    let month = (month_start(1), month_start(0));
    let year = (month_start(12), month_start(0));
    for (label, (from, to), group_by, runs) in [
        ("last month by project", month, "project", runs),
        (
            "last 12 months by month and project",
            year,
            "month,project",
            runs,
        ),
        ("last month by model", month, "model", runs),
        (
            "last month by project and team",
            month,
            "project,tag:team",
            runs,
        ),
        (
            "last 12 months by month and model",
            year,
            "month,model",
            runs.div_ceil(5),
        ),
    ] {
        let request = request(from, to, group_by);
        let report = spend::spend(&store, &request).await.unwrap();
        let mut times = Vec::with_capacity(runs);
        for _ in 0..runs {
            let started = Instant::now();
            let again = spend::spend(&store, &request).await.unwrap();
            times.push(started.elapsed());
            assert_eq!(again.rows.len(), report.rows.len());
        }
        times.sort();
        // The store's part alone: the query and its rows decoded.
        let query = llm_meter::store::UsageQuery {
            from,
            to,
            group_by: request.store_dimensions(),
            measures: llm_meter::store::Measures::Spend,
            ..Default::default()
        };
        let mut store_times = Vec::with_capacity(runs);
        for _ in 0..runs {
            let started = Instant::now();
            store.usage(&query).await.unwrap();
            store_times.push(started.elapsed());
        }
        store_times.sort();
        println!(
            "{label:<38} rows {:>6}   median {:>8.1} ms   p95 {:>8.1} ms   (store median {:>7.1} ms)",
            report.rows.len(),
            ms(times[runs / 2]),
            ms(times[(runs * 95 / 100).min(runs - 1)]),
            ms(store_times[runs / 2]),
        );
    }
    let focus_request = request(month.0, month.1, "project");
    let book = llm_meter::pricing::PriceBook::builtin().unwrap();
    let shared: std::sync::Arc<dyn Store> = std::sync::Arc::new(store.clone());
    for _ in 0..3 {
        let started = Instant::now();
        let mut export = focus::Export::new(&focus_request);
        let (mut lines, mut bytes) = (0usize, 0usize);
        while let Some(chunk) = export.next_chunk(&shared, &book).await.unwrap() {
            lines += chunk.lines().count();
            bytes += chunk.len();
        }
        let lines = lines - 1;
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "FOCUS export of last month: {lines} lines ({:.1} MB) in {seconds:.2} s = {:.0} rows/s",
            bytes as f64 / 1e6,
            lines as f64 / seconds
        );
    }

    if reuse {
        return;
    }
    // Retention: one month of events (and their keys), 13 months back, then dropped.
    let old = month_start(14);
    let started = Instant::now();
    sqlx::query("SELECT llm_meter_events_partition($1)")
        .bind(old.date_naive())
        .execute(store.pool())
        .await
        .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "WITH keys AS (INSERT INTO event_keys (project, id, month) \
             SELECT 'project-' || (i % {projects}), 'req-' || i, date '{}' \
             FROM generate_series(1, {events_per_month}) AS i RETURNING project, id) \
         INSERT INTO events (project, id, time, provider, model, batch, service_tier, tags, \
             input, output, cost_nanos, input_cost_picos, output_cost_picos, ingested_at, source) \
         SELECT project, id, timestamptz '{old}' + (random() * 27) * interval '1 day', 'openai', \
             'gpt-5.2', false, 'default', '{{}}', 1000, 100, 3150000, 1750000000, 1400000000, \
             now(), 'bench' FROM keys",
        old.date_naive()
    )))
    .execute(store.pool())
    .await
    .unwrap();
    println!(
        "{events_per_month} events of one month written with their keys in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    let config = RetentionConfig {
        events: Some(Duration::from_secs(400 * 86_400)),
        ..RetentionConfig::default()
    };
    let started = Instant::now();
    let report = llm_meter::retention::apply(&store, &config, false)
        .await
        .unwrap();
    println!(
        "retention apply: partitions {:?} dropped in {:.3} s; then {} keys deleted in chunks, {:.2} s in all",
        report.partitions,
        report.partitions_dropped_in.as_secs_f64(),
        report.events,
        started.elapsed().as_secs_f64()
    );
    assert_eq!(report.events, events_per_month);
    store.ping().await.unwrap();
    if std::env::var("KEEP_DATABASE").is_err() {
        drop(store);
        drop_database(name).await;
    }
}
