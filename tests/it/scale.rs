//! Scale (issue 18): events partitioned by month on Postgres with one exact dedupe across
//! the partitions, retention on both stores, records past the retention horizon refused,
//! and an existing database migrated in place.

use std::borrow::Cow;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Datelike, Months, TimeZone, Utc};
use llm_meter::ingest::{PAST_RETENTION_CODE, Pipeline, PipelineConfig};
use llm_meter::metrics::Metrics;
use llm_meter::retention::RetentionConfig;
use llm_meter::store::{Dimension, Store, UsageAggregate, UsageQuery, UsageStore};
use rust_decimal::Decimal;

use crate::helpers::book;
use crate::pg::TestDb;
use crate::store_contract::{Backend, expected, intake_batch, pg_store};

/// A canonical record `id` of project `project` at `time`.
fn line(project: &str, id: &str, time: DateTime<Utc>, input: u64) -> String {
    format!(
        r#"{{"id":"{id}","time":"{}","project":"{project}","provider":"openai","model":"gpt-5.2","tokens":{{"input":{input},"cached_input":{},"output":{}}},"tags":{{"team":"t{}"}}}}"#,
        time.to_rfc3339(),
        input / 3,
        input / 10 + 1,
        input % 3
    )
}

/// Mid-month, `months_ago` months before this one, at an hour spread by `i`.
fn months_ago(months_ago: u32, i: u64) -> DateTime<Utc> {
    let now = Utc::now();
    let first = Utc
        .with_ymd_and_hms(now.year(), now.month(), 1, 0, 0, 0)
        .unwrap()
        .checked_sub_months(Months::new(months_ago))
        .unwrap();
    first + chrono::Duration::days(10) + chrono::Duration::minutes((i * 37 % 10_000) as i64)
}

async fn spend_by_project(store: &dyn Store, from: DateTime<Utc>) -> Vec<UsageAggregate> {
    let start = Utc.with_ymd_and_hms(from.year(), from.month(), 1, 0, 0, 0);
    store
        .usage(&UsageQuery {
            from: start.unwrap(),
            to: Utc::now() + chrono::Duration::days(62),
            group_by: vec![Dimension::Project, Dimension::Model],
            ..Default::default()
        })
        .await
        .unwrap()
}

/// The time a generated line carries.
fn time_of(line: &str) -> DateTime<Utc> {
    let record: serde_json::Value = serde_json::from_str(line).unwrap();
    record["time"].as_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_key_seen_again_in_another_month_counts_once_on_every_write_path() {
    for backend in Backend::both().await {
        let at = backend.name();
        let store = backend.store();
        let book = book();
        let november = months_ago(1, 0);
        let december = months_ago(0, 0);
        // New keys only: the direct path on Postgres.
        let first = intake_batch(
            book,
            &[
                line("a", "r1", november, 1000),
                line("a", "r2", december, 2000),
            ],
        );
        assert_eq!(
            store.write(&[&first]).await.unwrap(),
            vec![true, true],
            "{at}"
        );
        // The same keys at times in the other month, beside a new one: the staging path.
        let again = intake_batch(
            book,
            &[
                line("a", "r1", december, 5000),
                line("a", "r3", november, 3000),
                line("a", "r2", november, 7000),
            ],
        );
        assert_eq!(
            store.write(&[&again]).await.unwrap(),
            vec![false, true, false],
            "{at}"
        );
        let (events, _, event_cost, rollup_cost, requests) = backend.totals().await;
        assert_eq!((events, requests), (3, 3), "{at}");
        assert_eq!(event_cost, rollup_cost, "{at}");
        let want = expected(
            book,
            &[
                line("a", "r1", november, 1000),
                line("a", "r2", december, 2000),
                line("a", "r3", november, 3000),
            ],
        );
        assert_eq!(event_cost, want.cost, "{at}: the first copies, exactly");
    }
}

/// Two writers (two connection pools and pipelines, like two daemons) send overlapping
/// keys, each at its own month: every key is stored once, in one month.
#[tokio::test]
async fn concurrent_writers_placing_a_key_in_different_months_store_it_once() {
    let book = Arc::new(book().clone());
    let lines = |months: u32, ids: std::ops::Range<u64>| -> Vec<String> {
        ids.map(|i| {
            line(
                ["x", "y"][(i % 2) as usize],
                &format!("k{i}"),
                months_ago(months, i),
                500 + i,
            )
        })
        .collect()
    };
    for backend in Backend::both().await {
        let at = backend.name();
        let mut writers = Vec::new();
        for part in [lines(2, 0..4000), lines(1, 2000..6000)] {
            let store = backend.reopen().await;
            let book = book.clone();
            writers.push(tokio::spawn(async move {
                let (pipeline, batcher) =
                    Pipeline::start(store, PipelineConfig::default(), Arc::new(Metrics::new()));
                let mut accepted = 0;
                for chunk in part.chunks(400) {
                    accepted += pipeline
                        .write(intake_batch(&book, chunk), "test")
                        .await
                        .unwrap()
                        .accepted;
                }
                drop(pipeline);
                batcher.await.unwrap();
                accepted
            }));
        }
        let mut accepted = 0;
        for writer in writers {
            accepted += writer.await.unwrap();
        }
        assert_eq!(accepted, 6000, "{at}: each key accepted once");
        let (events, _, event_cost, rollup_cost, requests) = backend.totals().await;
        assert_eq!((events, requests), (6000, 6000), "{at}");
        assert_eq!(
            event_cost, rollup_cost,
            "{at}: rollups hold exactly the stored events"
        );
        if let Backend::Postgres { .. } = backend {
            assert_eq!(backend.count("SELECT count(*) FROM event_keys").await, 6000);
        }
    }
}

#[tokio::test]
async fn retention_removes_old_events_and_spend_still_answers_from_the_rollups() {
    let book = Arc::new(book().clone());
    // Sixteen months of records, 40 a month, two projects.
    let all: Vec<String> = (0..16u32)
        .flat_map(|m| {
            (0..40u64).map(move |i| {
                line(
                    ["search", "ads"][(i % 2) as usize],
                    &format!("m{m}-{i}"),
                    months_ago(m, i),
                    1000 + i,
                )
            })
        })
        .collect();
    let config = RetentionConfig {
        events: Some(Duration::from_secs(400 * 86_400)),
        dead_letters: Some(Duration::from_secs(30 * 86_400)),
        ..RetentionConfig::default()
    };
    config.check().unwrap();
    let horizon = config.cutoffs(Utc::now()).events.unwrap();
    for backend in Backend::both().await {
        let at = backend.name();
        let store = backend.store();
        assert_eq!(
            store
                .write(&[&intake_batch(&book, &all)])
                .await
                .unwrap()
                .len(),
            all.len()
        );
        let before = spend_by_project(store.as_ref(), months_ago(15, 0)).await;
        let total: Decimal = before.iter().map(|r| r.cost).sum();
        assert_eq!(total, expected(&book, &all).cost, "{at}");

        // A dry run counts and removes nothing.
        let dry = llm_meter::retention::apply(store.as_ref(), &config, true)
            .await
            .unwrap();
        assert!(dry.events > 0, "{at}: {dry:?}");
        assert_eq!(
            backend.count("SELECT count(*) FROM events").await,
            all.len() as i64,
            "{at}"
        );

        let report = llm_meter::retention::apply(store.as_ref(), &config, false)
            .await
            .unwrap();
        assert_eq!(
            (report.events, report.partitions.len()),
            (dry.events, dry.partitions.len()),
            "{at}"
        );
        let left = backend.count("SELECT count(*) FROM events").await;
        assert_eq!(left as u64, all.len() as u64 - report.events, "{at}");
        // Nothing older than the horizon's month is left; nothing newer than the horizon
        // went.
        let removed_before = report.events_before.unwrap();
        assert!(
            removed_before <= config.cutoffs(Utc::now()).events.unwrap(),
            "{at}"
        );
        let in_window = all
            .iter()
            .filter(|line| time_of(line) >= removed_before)
            .count();
        assert_eq!(left as usize, in_window, "{at}");
        match &backend {
            Backend::Postgres { .. } => {
                assert!(!report.partitions.is_empty(), "whole months dropped");
                assert_eq!(backend.count("SELECT count(*) FROM event_keys").await, left);
            }
            Backend::Sqlite { .. } => assert!(report.partitions.is_empty()),
        }
        // Spend over the whole period answers exactly as before, from the rollups.
        assert_eq!(
            spend_by_project(store.as_ref(), months_ago(15, 0)).await,
            before,
            "{at}"
        );
        // Applying again removes nothing more.
        let again = llm_meter::retention::apply(store.as_ref(), &config, false)
            .await
            .unwrap();
        assert_eq!(again.events, 0, "{at}");

        // The whole log replayed through a pipeline that knows the horizon: what is
        // older is refused with its reason and dead-lettered, the rest are duplicates.
        let (pipeline, batcher) = Pipeline::start(
            store.clone(),
            PipelineConfig {
                events_retention: config.events,
                ..PipelineConfig::default()
            },
            Arc::new(Metrics::new()),
        );
        let replay = pipeline
            .write(intake_batch(&book, &all), "test")
            .await
            .unwrap();
        drop(pipeline);
        batcher.await.unwrap();
        let past = all.len() - in_window
            + all
                .iter()
                .filter(|line| (removed_before..horizon).contains(&time_of(line)))
                .count();
        assert_eq!(replay.accepted, 0, "{at}: nothing counts twice");
        assert_eq!(replay.refused.len(), past, "{at}");
        assert_eq!(replay.duplicates, all.len() - past, "{at}");
        assert!(
            replay.refused[0]
                .reason
                .contains("before the retention horizon"),
            "{at}: {}",
            replay.refused[0].reason
        );
        let letters = store.dead_letters(10_000).await.unwrap();
        assert_eq!(
            letters
                .iter()
                .filter(|d| d.code == PAST_RETENTION_CODE)
                .count(),
            past,
            "{at}"
        );
        assert_eq!(
            spend_by_project(store.as_ref(), months_ago(15, 0)).await,
            before,
            "{at}"
        );

        // Rollups kept 431 days (events + 31): the rows of whole hours and days before that go, on
        // both stores (SQLite's rollup tables have no rowid).
        let rollups = RetentionConfig {
            hourly_rollups: Some(Duration::from_secs(431 * 86_400)),
            daily_rollups: Some(Duration::from_secs(431 * 86_400)),
            ..config.clone()
        };
        rollups.check().unwrap();
        let cut = rollups.cutoffs(Utc::now());
        let report = llm_meter::retention::apply(store.as_ref(), &rollups, false)
            .await
            .unwrap();
        assert!(
            report.hourly_rollups > 0 && report.daily_rollups > 0,
            "{at}: {report:?}"
        );
        let older = |table: &str, column: &str, cutoff: DateTime<Utc>| match &backend {
            Backend::Sqlite { .. } => format!(
                "SELECT count(*) FROM {table} WHERE {column} < {}",
                cutoff.timestamp()
            ),
            Backend::Postgres { .. } => format!(
                "SELECT count(*) FROM {table} WHERE {column} < '{}'",
                cutoff.to_rfc3339()
            ),
        };
        let hourly_left = older("rollups_hourly", "hour", cut.hourly_rollups.unwrap());
        assert_eq!(backend.count(&hourly_left).await, 0, "{at}");
        let daily_left = older("rollups_daily", "day", cut.daily_rollups.unwrap());
        assert_eq!(backend.count(&daily_left).await, 0, "{at}");
    }
}

#[test]
fn rollups_must_outlive_the_events_by_a_month() {
    let days = |n: u64| Some(Duration::from_secs(n * 86_400));
    let config = |rollups| RetentionConfig {
        events: days(400),
        daily_rollups: rollups,
        ..RetentionConfig::default()
    };
    assert!(
        config(days(430))
            .check()
            .unwrap_err()
            .contains("events + 31d")
    );
    config(days(431)).check().unwrap();
    let short = RetentionConfig {
        dead_letters: Some(Duration::from_secs(30)),
        ..RetentionConfig::default()
    };
    assert!(short.check().unwrap_err().contains("shorter than a day"));
}

/// A database made by the build before partitions (migrations 1–7, with rows) is
/// migrated in place: every event lands in its month's partition with its key, spend is
/// unchanged, and the old keys still deduplicate.
#[tokio::test]
async fn an_existing_postgres_database_migrates_to_partitions_in_place() {
    const PARTITIONS: i64 = 20261207000008;
    let db = TestDb::new().await;
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let mut before = sqlx::migrate::Migrator::new(std::path::Path::new("migrations/postgres"))
        .await
        .unwrap();
    before.migrations = Cow::Owned(
        before
            .migrations
            .iter()
            .filter(|m| m.version < PARTITIONS)
            .cloned()
            .collect(),
    );
    before.run(&pool).await.unwrap();
    // Rows as that build wrote them: zero counts stored as zeros, one event a month.
    for (i, month) in ["2026-03-05", "2026-07-20", "2026-11-30"]
        .iter()
        .enumerate()
    {
        sqlx::query(
            "INSERT INTO events (project, id, time, provider, model, resolved_model, input, \
             cached_input, cache_write_5m, cache_write_1h, output, reasoning, batch, service_tier, \
             tags, cost_nanos, list_cost_nanos, price_ref, input_cost_picos, output_cost_picos, \
             ingested_at, source) \
             VALUES ('p', $1, $2::date + time '23:30', 'openai', 'gpt-5.2', 'gpt-5.2', 1000, 0, 0, \
             0, 100, 0, false, 'default', '{}', 3150000, 3150000, 'ref', 1750000000, 1400000000, now(), 'test')",
        )
        .bind(format!("old-{i}"))
        .bind(month)
        .execute(&pool)
        .await
        .unwrap();
    }
    let store = pg_store(&db).await;
    let partitions: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
         WHERE i.inhparent = 'events'::regclass ORDER BY 1",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    for month in ["events_2026_03", "events_2026_07", "events_2026_11"] {
        assert!(partitions.contains(&month.to_owned()), "{partitions:?}");
    }
    let keys: i64 = sqlx::query_scalar("SELECT count(*) FROM event_keys")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(keys, 3);
    // Zeros became NULL; the values read back the same.
    let nulls: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE cached_input IS NULL")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(nulls, 3);
    let scanned = store
        .events(&llm_meter::store::EventScan {
            from: "2026-03-01T00:00:00Z".parse().unwrap(),
            to: "2026-12-01T00:00:00Z".parse().unwrap(),
            filter: Default::default(),
        })
        .await
        .unwrap();
    assert_eq!(scanned.len(), 3);
    assert!(scanned.iter().all(|r| r.record.tokens.input == 1000
        && r.record.tokens.cached_input == 0
        && r.record.tokens.output == 100));
    // An old key sent again at another time is still a duplicate.
    let replay = intake_batch(
        book(),
        &[line(
            "p",
            "old-0",
            "2026-04-01T00:00:00Z".parse().unwrap(),
            1000,
        )],
    );
    assert_eq!(store.write(&[&replay]).await.unwrap(), vec![false]);
}

/// Records every 67 minutes from January 20 to May 10, 2026, over three projects and two
/// models (one of them unpriced).
fn months_of_lines() -> Vec<String> {
    let first: DateTime<Utc> = "2026-01-20T05:13:00Z".parse().unwrap();
    (0..2500u64)
        .map(|i| {
            let time = first + chrono::Duration::minutes((i * 67) as i64);
            let model = ["gpt-5.2", "gpt-5-mini", "no-such-model-m"][(i % 3) as usize];
            format!(
                r#"{{"id":"m-{i}","time":"{}","project":"{}","provider":"openai","model":"{model}","tokens":{{"input":{},"cached_input":{},"output":{}}},"tags":{{"team":"t{}"}}}}"#,
                time.to_rfc3339(),
                ["search", "ads", "agents"][(i % 4 % 3) as usize],
                500 + i * 13 % 9000,
                i * 7 % 400,
                20 + i * 31 % 700,
                i % 2
            )
        })
        .collect()
}

/// Whole months are read from the monthly rollups, the ragged ends from the daily and
/// hourly ones and the events: every window and grouping sums exactly what the events
/// in it sum, month by month, on both stores.
#[tokio::test]
async fn monthly_rollups_answer_months_exactly_as_the_events_sum() {
    let book = book();
    let lines = months_of_lines();
    let windows = [
        ("2026-01-01T00:00:00Z", "2026-06-01T00:00:00Z"),
        ("2026-02-01T00:00:00Z", "2026-04-01T00:00:00Z"),
        ("2026-01-25T10:17:30Z", "2026-05-03T03:41:05Z"),
        ("2026-02-28T23:30:00Z", "2026-04-01T00:30:00Z"),
        ("2026-03-01T00:00:00Z", "2026-03-31T23:00:00Z"),
        ("2026-02-14T00:00:00Z", "2026-03-09T00:00:00Z"),
    ];
    for backend in Backend::both().await {
        let at = backend.name();
        let store = backend.store();
        for chunk in lines.chunks(700) {
            store.write(&[&intake_batch(book, chunk)]).await.unwrap();
        }
        backend.totals().await;
        for (from, to) in windows {
            let (from, to): (DateTime<Utc>, DateTime<Utc>) =
                (from.parse().unwrap(), to.parse().unwrap());
            let inside = |line: &&String| (from..to).contains(&time_of(line));
            let window: Vec<String> = lines.iter().filter(inside).cloned().collect();
            let want = expected(book, &window);
            for group_by in [
                vec![],
                vec![Dimension::Month],
                vec![Dimension::Project, Dimension::Month],
                vec![Dimension::Day],
                vec![Dimension::Project, Dimension::Model],
            ] {
                let rows = store
                    .usage(&UsageQuery {
                        from,
                        to,
                        group_by: group_by.clone(),
                        ..Default::default()
                    })
                    .await
                    .unwrap();
                let what = format!("{at} {from} {to} {group_by:?}");
                assert_eq!(
                    rows.iter().map(|r| r.requests).sum::<u64>(),
                    want.requests,
                    "{what}"
                );
                assert_eq!(
                    rows.iter().map(|r| r.unpriced_requests).sum::<u64>(),
                    want.unpriced,
                    "{what}"
                );
                assert_eq!(
                    rows.iter().map(|r| r.cost).sum::<Decimal>(),
                    want.cost,
                    "{what}"
                );
                if group_by.contains(&Dimension::Month) {
                    // Each month's row: the events of that month (and project) in the window.
                    for row in &rows {
                        let month = row.hour.unwrap();
                        let next = month.checked_add_months(Months::new(1)).unwrap();
                        assert_eq!(month.day(), 1, "{what}");
                        let project = row.keys.first().map(|p| format!(r#""project":"{p}""#));
                        let of_month: Vec<String> = window
                            .iter()
                            .filter(|line| (month..next).contains(&time_of(line)))
                            .filter(|line| project.as_ref().is_none_or(|p| line.contains(p)))
                            .cloned()
                            .collect();
                        let want = expected(book, &of_month);
                        assert_eq!(
                            (row.requests, row.cost),
                            (want.requests, want.cost),
                            "{what} {month}"
                        );
                    }
                }
            }
        }
        // The monthly table holds one row per group and month: its sums are the daily ones.
        let months = backend
            .count("SELECT count(DISTINCT month) FROM rollups_monthly")
            .await;
        assert_eq!(months, 5, "{at}");
    }
}

/// Records written by the build before monthly rollups (migrations 1–8) are in the
/// monthly rollups after the migration: spend of whole months answers as before.
#[tokio::test]
async fn an_existing_database_fills_its_monthly_rollups_from_the_daily_ones() {
    const MONTHLY: i64 = 20261208000009;
    let book = book();
    let lines = months_of_lines();
    let want = expected(book, &lines);
    for backend in ["sqlite", "postgres"] {
        let (url, _keep): (String, Box<dyn std::any::Any>) = match backend {
            "sqlite" => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}", dir.path().join("old.db").display());
                (url, Box::new(dir))
            }
            _ => {
                let db = TestDb::new().await;
                (db.url.clone(), Box::new(db))
            }
        };
        let folder = format!("migrations/{backend}");
        let mut before = sqlx::migrate::Migrator::new(std::path::Path::new(&folder))
            .await
            .unwrap();
        before.migrations = Cow::Owned(
            before
                .migrations
                .iter()
                .filter(|m| m.version < MONTHLY)
                .cloned()
                .collect(),
        );
        // Daily rollups as the old build wrote them: the sums of the events by day.
        let daily = |month_expr: &str| {
            format!(
                "INSERT INTO rollups_daily (project, day, provider, model, service_tier, batch, \
                 reasoning_effort, tags, requests, unpriced_requests, input, cached_input, \
                 cache_write_5m, cache_write_1h, output, reasoning, cost_nanos, list_cost_nanos, \
                 reported_cost_nanos, input_cost_picos, cached_input_cost_picos, \
                 cache_write_5m_cost_picos, cache_write_1h_cost_picos, output_cost_picos, \
                 reasoning_cost_picos, cache_savings_nanos, batch_savings_nanos) \
                 VALUES ('p', {month_expr}, 'openai', 'gpt-5.2', 'default', false, '', '{{}}', \
                 2, 0, 100, 0, 0, 0, 10, 0, 5000, 5000, 0, 0, 0, 0, 0, 0, 0, 0, 0)"
            )
        };
        match backend {
            "sqlite" => {
                let options = sqlx::sqlite::SqliteConnectOptions::from_str(&url)
                    .unwrap()
                    .create_if_missing(true);
                let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
                before.run(&pool).await.unwrap();
                for day in ["2026-02-03", "2026-02-27", "2026-03-01"] {
                    let seconds = format!(
                        "{}",
                        format!("{day}T00:00:00Z")
                            .parse::<DateTime<Utc>>()
                            .unwrap()
                            .timestamp()
                    );
                    sqlx::query(sqlx::AssertSqlSafe(daily(&seconds)))
                        .execute(&pool)
                        .await
                        .unwrap();
                }
                pool.close().await;
            }
            _ => {
                let pool = sqlx::PgPool::connect(&url).await.unwrap();
                before.run(&pool).await.unwrap();
                for day in ["2026-02-03", "2026-02-27", "2026-03-01"] {
                    sqlx::query(sqlx::AssertSqlSafe(daily(&format!("'{day}T00:00:00Z'"))))
                        .execute(&pool)
                        .await
                        .unwrap();
                }
                pool.close().await;
            }
        }
        let store = llm_meter::store::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        let months = store
            .usage(&UsageQuery {
                from: "2026-01-01T00:00:00Z".parse().unwrap(),
                to: "2026-04-01T00:00:00Z".parse().unwrap(),
                group_by: vec![Dimension::Month],
                ..Default::default()
            })
            .await
            .unwrap();
        let got: Vec<(String, u64, Decimal)> = months
            .iter()
            .map(|m| (m.hour.unwrap().to_rfc3339(), m.requests, m.cost))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "2026-02-01T00:00:00+00:00".to_owned(),
                    4,
                    Decimal::new(10, 6)
                ),
                (
                    "2026-03-01T00:00:00+00:00".to_owned(),
                    2,
                    Decimal::new(5, 6)
                ),
            ],
            "{backend}"
        );
        // New writes go to every level from then on.
        for chunk in lines.chunks(1000) {
            store.write(&[&intake_batch(book, chunk)]).await.unwrap();
        }
        let all = store
            .usage(&UsageQuery {
                from: "2026-01-01T00:00:00Z".parse().unwrap(),
                to: "2026-06-01T00:00:00Z".parse().unwrap(),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(all[0].requests, want.requests + 6, "{backend}");
        assert_eq!(all[0].cost, want.cost + Decimal::new(15, 6), "{backend}");
    }
}

/// A record that passed the pipeline's horizon check before retention ran is refused by
/// the store once retention has recorded its horizon: its month cannot come back, and a
/// replay of a removed record cannot count twice.
#[tokio::test]
async fn a_write_older_than_the_recorded_horizon_is_refused_by_the_store() {
    let book = book();
    for backend in Backend::both().await {
        let at = backend.name();
        let store = backend.store();
        let old = months_ago(15, 0);
        let first = intake_batch(book, &[line("h", "old-1", old, 1000)]);
        assert_eq!(store.write(&[&first]).await.unwrap(), vec![true], "{at}");
        let config = RetentionConfig {
            events: Some(Duration::from_secs(400 * 86_400)),
            ..RetentionConfig::default()
        };
        let report = llm_meter::retention::apply(store.as_ref(), &config, false)
            .await
            .unwrap();
        assert_eq!(report.events, 1, "{at}");
        // Straight to the store, as a batch already past the pipeline's check would be.
        let replay = intake_batch(book, &[line("h", "old-1", old, 1000)]);
        let error = store.write(&[&replay]).await.unwrap_err();
        assert!(
            matches!(&error, llm_meter::store::StoreError::Refused(reason)
                if reason.contains("older than the events retention horizon")),
            "{at}: {error}"
        );
        // A recent record still lands, and the old month's events stay gone.
        let recent = intake_batch(book, &[line("h", "new-1", months_ago(0, 1), 1000)]);
        assert_eq!(store.write(&[&recent]).await.unwrap(), vec![true], "{at}");
        let (events, ..) = backend.totals().await;
        assert_eq!(events, 1, "{at}");
        if let Backend::Postgres { .. } = &backend {
            let name = format!("events_{}", old.format("%Y_%m"));
            let exists = backend
                .count(&format!(
                    "SELECT count(*) FROM pg_class WHERE relname = '{name}'"
                ))
                .await;
            assert_eq!(exists, 0, "{at}: {name} is not created again");
        }
    }
}

/// A range that ends now reads its last month, day or hour whole and subtracts what
/// follows its end: records already stored after it (clocks ahead, the rest of the
/// hour) are left out exactly, on both stores.
#[tokio::test]
async fn a_range_ending_now_leaves_out_exactly_the_records_after_it() {
    let book = book();
    let now = Utc::now();
    let mut lines: Vec<String> = (0..400u64)
        .map(|i| {
            line(
                ["p", "q"][(i % 2) as usize],
                &format!("past-{i}"),
                now - chrono::Duration::minutes((i * 11 + 1) as i64),
                500 + i,
            )
        })
        .collect();
    // Records with times after `now`: the rest of this hour, later today, next month.
    for (i, minutes) in [1i64, 7, 50, 130, 900, 40_000].into_iter().enumerate() {
        lines.push(line(
            "p",
            &format!("ahead-{i}"),
            now + chrono::Duration::minutes(minutes),
            10_000,
        ));
    }
    let month_start = Utc
        .with_ymd_and_hms(now.year(), now.month(), 1, 0, 0, 0)
        .unwrap();
    let day_start = Utc
        .with_ymd_and_hms(now.year(), now.month(), now.day(), 0, 0, 0)
        .unwrap();
    for backend in Backend::both().await {
        let at = backend.name();
        let store = backend.store();
        store.write(&[&intake_batch(book, &lines)]).await.unwrap();
        for from in [
            month_start,
            day_start,
            now - chrono::Duration::hours(30),
            now - chrono::Duration::minutes(90),
        ] {
            let want = expected(
                book,
                &lines
                    .iter()
                    .filter(|l| (from..now).contains(&time_of(l)))
                    .cloned()
                    .collect::<Vec<_>>(),
            );
            for group_by in [
                vec![],
                vec![Dimension::Project],
                vec![Dimension::Month],
                vec![Dimension::Day, Dimension::Project],
                vec![Dimension::Hour],
            ] {
                let rows = store
                    .usage(&UsageQuery {
                        from,
                        to: now,
                        group_by: group_by.clone(),
                        ..Default::default()
                    })
                    .await
                    .unwrap();
                let what = format!("{at} from {from} {group_by:?}");
                assert_eq!(
                    rows.iter().map(|r| r.requests).sum::<u64>(),
                    want.requests,
                    "{what}"
                );
                assert_eq!(
                    rows.iter().map(|r| r.cost).sum::<Decimal>(),
                    want.cost,
                    "{what}"
                );
                assert!(rows.iter().all(|r| r.requests > 0), "{what}: no empty rows");
                if group_by == [Dimension::Project] {
                    let by_project: std::collections::BTreeMap<String, Decimal> =
                        rows.iter().map(|r| (r.keys[0].clone(), r.cost)).collect();
                    assert_eq!(by_project, want.cost_by_project, "{what}");
                }
            }
        }
    }
}
