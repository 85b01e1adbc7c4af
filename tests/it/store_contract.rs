//! The store contract: every `Store` method, run against both backends (a fresh SQLite
//! file and a fresh Postgres database per test), so the two cannot drift. Plus the
//! Postgres-only failure cases (connections killed mid-ingest, a refused database).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use llm_meter::ingest::{Intake, Pipeline, PipelineConfig};
use llm_meter::metrics::Metrics;
use llm_meter::prepare::Preparer;
use llm_meter::pricing::{PriceBook, PriceOutcome};
use llm_meter::store::{
    Checkpoint, Dimension, Measures, PgStore, SqliteStore, Store, UsageFilter, UsageQuery,
    WriteBatch,
};
use llm_meter::usage::Format;
use rust_decimal::Decimal;

use crate::helpers::{book, ingest_time};
use crate::pg::TestDb;

pub async fn pg_store(db: &TestDb) -> Arc<PgStore> {
    let store = PgStore::connect(&db.url)
        .await
        .expect("connect to the test database");
    store.migrate().await.expect("migrations apply");
    Arc::new(store)
}

/// A fresh store of one backend, with what keeps it alive.
pub enum Backend {
    Sqlite {
        store: Arc<SqliteStore>,
        url: String,
        _dir: tempfile::TempDir,
    },
    Postgres {
        store: Arc<PgStore>,
        db: TestDb,
    },
}

impl Backend {
    pub async fn sqlite() -> Backend {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("meter.db").display());
        let store = SqliteStore::connect(&url)
            .await
            .expect("open the SQLite file");
        store.migrate().await.expect("migrations apply");
        Backend::Sqlite {
            store: Arc::new(store),
            url,
            _dir: dir,
        }
    }

    pub async fn postgres() -> Backend {
        let db = TestDb::new().await;
        Backend::Postgres {
            store: pg_store(&db).await,
            db,
        }
    }

    /// Both backends, fresh.
    pub async fn both() -> [Backend; 2] {
        [Backend::sqlite().await, Backend::postgres().await]
    }

    pub fn store(&self) -> Arc<dyn Store> {
        match self {
            Backend::Sqlite { store, .. } => store.clone(),
            Backend::Postgres { store, .. } => store.clone(),
        }
    }

    pub fn url(&self) -> &str {
        match self {
            Backend::Sqlite { url, .. } => url,
            Backend::Postgres { db, .. } => &db.url,
        }
    }

    /// Another connection pool on the same database (a second writer).
    pub async fn reopen(&self) -> Arc<dyn Store> {
        llm_meter::store::connect(self.url()).await.unwrap()
    }

    /// (events, unpriced events, event cost, rollup cost, rollup requests), read with SQL
    /// straight from the tables. The daily and monthly rollups and the projects' monthly
    /// totals must hold the same sums as the hourly.
    pub async fn totals(&self) -> (i64, i64, Decimal, Decimal, i64) {
        const SQL: &str = "SELECT (SELECT count(*) FROM events), \
             (SELECT count(*) FROM events WHERE cost_nanos IS NULL), \
             (SELECT CAST(coalesce(sum(cost_nanos), 0) AS BIGINT) FROM events), \
             (SELECT CAST(coalesce(sum(cost_nanos), 0) AS BIGINT) FROM rollups_hourly), \
             (SELECT CAST(coalesce(sum(requests), 0) AS BIGINT) FROM rollups_hourly), \
             (SELECT CAST(coalesce(sum(cost_nanos), 0) AS BIGINT) FROM rollups_daily), \
             (SELECT CAST(coalesce(sum(requests), 0) AS BIGINT) FROM rollups_daily), \
             (SELECT CAST(coalesce(sum(cost_nanos), 0) AS BIGINT) FROM rollups_monthly), \
             (SELECT CAST(coalesce(sum(requests), 0) AS BIGINT) FROM rollups_monthly), \
             (SELECT CAST(coalesce(sum(cost_nanos), 0) AS BIGINT) FROM rollups_project_monthly), \
             (SELECT CAST(coalesce(sum(requests), 0) AS BIGINT) FROM rollups_project_monthly)";
        type Totals = (i64, i64, i64, i64, i64, i64, i64, i64, i64, i64, i64);
        let values: Totals = match self {
            Backend::Sqlite { store, .. } => {
                sqlx::query_as(SQL).fetch_one(store.pool()).await.unwrap()
            }
            Backend::Postgres { store, .. } => {
                sqlx::query_as(SQL).fetch_one(store.pool()).await.unwrap()
            }
        };
        assert_eq!(
            (values.5, values.6),
            (values.3, values.4),
            "daily rollups disagree with hourly ones"
        );
        assert_eq!(
            (values.7, values.8),
            (values.3, values.4),
            "monthly rollups disagree with hourly ones"
        );
        assert_eq!(
            (values.9, values.10),
            (values.3, values.4),
            "the projects' monthly totals disagree with the hourly rollups"
        );
        (
            values.0,
            values.1,
            llm_meter::money::from_nanos(values.2),
            llm_meter::money::from_nanos(values.3),
            values.4,
        )
    }

    /// A one-number query (`SELECT count(*) …`), read with SQL straight from the tables.
    pub async fn count(&self, sql: &str) -> i64 {
        match self {
            Backend::Sqlite { store, .. } => sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .fetch_one(store.pool())
                .await
                .unwrap(),
            Backend::Postgres { store, .. } => sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .fetch_one(store.pool())
                .await
                .unwrap(),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite { .. } => "sqlite",
            Backend::Postgres { .. } => "postgres",
        }
    }
}

const MODELS: &[(&str, &str)] = &[
    ("openai", "gpt-5.2"),
    ("openai", "gpt-5-mini"),
    ("anthropic", "claude-sonnet-4-5"),
    ("google", "gemini-2.5-flash"),
    ("openai", "no-such-model-x"),
];

/// `n` canonical records with ids `prefix-i`, spread over projects, models, hours and tags.
pub fn generated_lines(prefix: &str, range: std::ops::Range<u64>) -> Vec<String> {
    range
        .map(|i| {
            let (provider, model) = MODELS[(i % MODELS.len() as u64) as usize];
            let project = ["search", "ads", "agents"][(i % 3) as usize];
            let minute = (i * 7) % (60 * 24 * 3);
            let time = chrono::DateTime::parse_from_rfc3339("2026-04-01T00:00:00Z").unwrap()
                + chrono::Duration::minutes(minute as i64)
                + chrono::Duration::seconds((i % 59) as i64);
            format!(
                r#"{{"id":"{prefix}-{i}","time":"{}","project":"{project}","provider":"{provider}","model":"{model}","tokens":{{"input":{},"cached_input":{},"output":{},"reasoning":{}}},"tags":{{"team":"t{}"}}}}"#,
                time.to_rfc3339(),
                100 + (i * 7919) % 50_000,
                (i * 31) % 5000,
                10 + (i * 104_729) % 3000,
                (i * 13) % 700,
                i % 4
            )
        })
        .collect()
}

/// The totals a set of lines must produce, computed without the store.
#[derive(Debug, Default, PartialEq)]
pub struct Expected {
    pub requests: u64,
    pub unpriced: u64,
    pub cost: Decimal,
    pub cost_by_project: BTreeMap<String, Decimal>,
}

pub fn expected(book: &PriceBook, lines: &[String]) -> Expected {
    let mut preparer = Preparer::new(book, Format::Auto, "default");
    let mut seen = std::collections::HashSet::new();
    let mut expected = Expected::default();
    for line in lines {
        let priced = preparer.prepare(line, ingest_time()).unwrap();
        if !seen.insert((priced.record.project.clone(), priced.record.id.clone())) {
            continue;
        }
        expected.requests += 1;
        match priced.price {
            PriceOutcome::Priced(p) => {
                expected.cost += p.cost;
                *expected
                    .cost_by_project
                    .entry(priced.record.project)
                    .or_default() += p.cost;
            }
            PriceOutcome::Unpriced(_) => expected.unpriced += 1,
        }
    }
    expected
}

pub fn intake_batch(book: &PriceBook, lines: &[String]) -> WriteBatch {
    let mut intake = Intake::new(
        Preparer::new(book, Format::Auto, "default"),
        "test",
        ingest_time(),
    );
    for (index, line) in lines.iter().enumerate() {
        intake.add_text(index, line);
    }
    intake.take().batch
}

#[tokio::test]
async fn duplicates_within_a_batch_and_across_batches_count_once() {
    for backend in Backend::both().await {
        let at = backend.name();
        let store = backend.store();
        let book = book();
        let line = |project: &str, id: &str, input: u64| {
            format!(
                r#"{{"id":"{id}","time":"2026-04-01T10:00:00Z","project":"{project}","provider":"openai","model":"gpt-5.2","tokens":{{"input":{input},"output":10}}}}"#
            )
        };
        // r1 twice in one batch (the first copy wins), and the same id in another project.
        let first = intake_batch(
            book,
            &[
                line("a", "r1", 1000),
                line("a", "r2", 2000),
                line("a", "r1", 999_999),
                line("b", "r1", 3000),
            ],
        );
        assert_eq!(
            store.write(&[&first]).await.unwrap(),
            vec![true, true, false, true],
            "{at}"
        );
        // Again, plus one new record.
        let second = intake_batch(book, &[line("a", "r1", 1000), line("a", "r3", 4000)]);
        assert_eq!(
            store.write(&[&second]).await.unwrap(),
            vec![false, true],
            "{at}"
        );
        // Two parts of one write.
        let third = intake_batch(book, &[line("a", "r4", 1)]);
        let fourth = intake_batch(book, &[line("a", "r4", 1), line("a", "r2", 2000)]);
        assert_eq!(
            store.write(&[&third, &fourth]).await.unwrap(),
            vec![true, false, false],
            "{at}"
        );

        let (events, _, event_cost, rollup_cost, rollup_requests) = backend.totals().await;
        assert_eq!(events, 5, "{at}");
        assert_eq!(
            rollup_requests, 5,
            "{at}: rollups count inserted events only"
        );
        // (1,000 + 2,000 + 3,000 + 4,000 + 1) × $1.75 + 5 × 10 × $14, per 1M tokens.
        assert_eq!(event_cost, "0.01820175".parse::<Decimal>().unwrap(), "{at}");
        assert_eq!(rollup_cost, event_cost, "{at}");
        assert_eq!(store.kind(), at);
        store.ping().await.unwrap();
    }
}

#[tokio::test]
async fn two_concurrent_writers_with_overlapping_sets_count_each_record_once() {
    let book = Arc::new(book().clone());
    let all = generated_lines("rec", 0..9000);
    let want = expected(&book, &all);
    for backend in Backend::both().await {
        let at = backend.name();
        let mut writers = Vec::new();
        for lines in [
            generated_lines("rec", 0..6000),
            generated_lines("rec", 3000..9000),
        ] {
            // Each writer has its own connection pool and pipeline, like two daemons.
            let store = backend.reopen().await;
            let book = book.clone();
            writers.push(tokio::spawn(async move {
                let (pipeline, batcher) =
                    Pipeline::start(store, PipelineConfig::default(), Arc::new(Metrics::new()));
                let (mut accepted, mut duplicates) = (0, 0);
                for chunk in lines.chunks(500) {
                    let committed = pipeline
                        .write(intake_batch(&book, chunk), "test")
                        .await
                        .unwrap();
                    accepted += committed.accepted;
                    duplicates += committed.duplicates;
                }
                drop(pipeline);
                batcher.await.unwrap();
                (accepted, duplicates)
            }));
        }
        let (mut accepted, mut duplicates) = (0, 0);
        for writer in writers {
            let (a, d) = writer.await.unwrap();
            accepted += a;
            duplicates += d;
        }
        assert_eq!(accepted, 9000, "{at}: every record accepted once");
        assert_eq!(duplicates, 3000, "{at}: the overlap reported as duplicates");
        let (events, unpriced, event_cost, rollup_cost, rollup_requests) = backend.totals().await;
        assert_eq!(events as u64, want.requests, "{at}");
        assert_eq!(unpriced as u64, want.unpriced, "{at}");
        assert_eq!(event_cost, want.cost, "{at}: exact to the nano-dollar");
        assert_eq!(rollup_cost, want.cost, "{at}");
        assert_eq!(rollup_requests as u64, want.requests, "{at}");
    }
}

#[tokio::test]
async fn a_malformed_line_is_dead_lettered_and_the_rest_of_its_batch_lands() {
    for backend in Backend::both().await {
        let at = backend.name();
        let store = backend.store();
        let book = book();
        let mut lines = generated_lines("mixed", 0..10);
        lines.insert(5, r#"{"model":"gpt-5.2","tokens":{"input":-3}}"#.to_owned());
        lines.insert(8, "this is not json".to_owned());
        let mut intake = Intake::new(
            Preparer::new(book, Format::Auto, "default"),
            "test",
            ingest_time(),
        )
        .with_dead_letter_source("backfill usage.jsonl");
        for (index, line) in lines.iter().enumerate() {
            intake.add_text(index, line);
        }
        let prepared = intake.take();
        let (batch, rejections) = (prepared.batch, prepared.rejections);
        assert_eq!(
            rejections.iter().map(|r| r.index).collect::<Vec<_>>(),
            vec![5, 8]
        );
        let inserted = store.write(&[&batch]).await.unwrap();
        assert_eq!(inserted.len(), 10, "{at}");
        assert!(inserted.iter().all(|new| *new), "{at}");

        let letters = store.dead_letters(10).await.unwrap();
        assert_eq!(letters.len(), 2, "{at}");
        assert_eq!(letters[0].line, "this is not json", "{at}: newest first");
        let negative = letters.iter().find(|l| l.code == "bad_count").unwrap();
        assert_eq!(
            negative.reason,
            "canonical record: tokens.input is negative (-3)"
        );
        assert_eq!(negative.source, "backfill usage.jsonl");
        assert_eq!(negative.line, lines[5]);
        assert_eq!(negative.received_at, ingest_time(), "{at}");
        assert!(letters.iter().any(|l| l.code == "invalid_json"), "{at}");
        assert_eq!(
            store.dead_letters(1).await.unwrap().len(),
            1,
            "{at}: the limit holds"
        );
        assert_eq!(backend.totals().await.0, 10, "{at}");
    }
}

#[tokio::test]
async fn usage_queries_agree_with_sums_over_the_events() {
    let book = book();
    let lines = generated_lines("q", 0..3000);
    let want = expected(book, &lines);
    for backend in Backend::both().await {
        let at = backend.name();
        let store = backend.store();
        for chunk in lines.chunks(1000) {
            store.write(&[&intake_batch(book, chunk)]).await.unwrap();
        }
        let everything = UsageQuery {
            from: "2026-03-01T00:00:00Z".parse().unwrap(),
            to: "2026-05-01T00:00:00Z".parse().unwrap(),
            group_by: vec![Dimension::Project],
            filter: UsageFilter::default(),
            ..Default::default()
        };
        let rows = store.usage(&everything).await.unwrap();
        let by_project: BTreeMap<String, Decimal> =
            rows.iter().map(|r| (r.keys[0].clone(), r.cost)).collect();
        assert_eq!(by_project, want.cost_by_project, "{at}");
        assert_eq!(
            rows.iter().map(|r| r.requests).sum::<u64>(),
            want.requests,
            "{at}"
        );
        assert_eq!(
            rows.iter().map(|r| r.unpriced_requests).sum::<u64>(),
            want.unpriced,
            "{at}"
        );

        // Windows with mid-hour bounds: daily rollups for whole days, hourly ones for
        // whole hours, events for the ends; also windows with no whole hour at all.
        for (from, to) in [
            ("2026-04-01T10:17:30Z", "2026-04-02T03:41:05Z"),
            ("2026-03-31T10:05:00Z", "2026-04-02T11:30:00Z"),
            ("2026-04-01T10:05:00Z", "2026-04-01T10:55:00Z"),
            ("2026-04-01T10:05:00Z", "2026-04-01T11:30:00Z"),
        ] {
            let from: chrono::DateTime<chrono::Utc> = from.parse().unwrap();
            let to: chrono::DateTime<chrono::Utc> = to.parse().unwrap();
            let window: Vec<String> = lines
                .iter()
                .filter(|line| {
                    let value: serde_json::Value = serde_json::from_str(line).unwrap();
                    let time: chrono::DateTime<chrono::Utc> =
                        value["time"].as_str().unwrap().parse().unwrap();
                    time >= from && time < to
                })
                .cloned()
                .collect();
            let want_window = expected(book, &window);
            for (group_by, measures) in [
                (vec![], Measures::All),
                (
                    vec![Dimension::Model, Dimension::ReasoningEffort],
                    Measures::Spend,
                ),
                (vec![Dimension::Day], Measures::All),
                (
                    vec![Dimension::Hour, Dimension::Tag("team".into())],
                    Measures::Spend,
                ),
            ] {
                let rows = store
                    .usage(&UsageQuery {
                        from,
                        to,
                        group_by: group_by.clone(),
                        filter: UsageFilter::default(),
                        measures,
                    })
                    .await
                    .unwrap_or_else(|e| panic!("{at} {from} {to} {group_by:?}: {e}"));
                let requests: u64 = rows.iter().map(|r| r.requests).sum();
                let cost: Decimal = rows.iter().map(|r| r.cost).sum();
                assert_eq!(
                    requests, want_window.requests,
                    "{at} {from} {to} {group_by:?}"
                );
                assert_eq!(cost, want_window.cost, "{at} {from} {to} {group_by:?}");
            }
        }
        // Grouped by hour: every hour's start, in order, summing to the window's cost.
        let (from, to): (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>) = (
            "2026-04-01T10:17:30Z".parse().unwrap(),
            "2026-04-02T03:41:05Z".parse().unwrap(),
        );
        let window_cost = store
            .usage(&UsageQuery {
                from,
                to,
                ..Default::default()
            })
            .await
            .unwrap()[0]
            .cost;
        let hours = store
            .usage(&UsageQuery {
                from,
                to,
                group_by: vec![Dimension::Hour],
                filter: UsageFilter::default(),
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(hours.windows(2).all(|w| w[0].hour < w[1].hour), "{at}");
        assert_eq!(
            hours.iter().map(|h| h.cost).sum::<Decimal>(),
            window_cost,
            "{at}"
        );
        assert_eq!(
            hours[0].hour,
            Some("2026-04-01T10:00:00Z".parse().unwrap()),
            "{at}"
        );

        // Filters: one project and one tag, grouped by the tag.
        let rows = store
            .usage(&UsageQuery {
                filter: UsageFilter {
                    projects: Some(vec!["ads".into()]),
                    tags: vec![("team".into(), "t1".into())],
                    ..UsageFilter::default()
                },
                group_by: vec![Dimension::Tag("team".into())],
                ..everything.clone()
            })
            .await
            .unwrap();
        let ads_t1: Vec<String> = lines
            .iter()
            .filter(|l| l.contains(r#""project":"ads""#) && l.contains(r#""team":"t1""#))
            .cloned()
            .collect();
        assert_eq!(rows.len(), 1, "{at}");
        assert_eq!(rows[0].keys, vec!["t1".to_owned()], "{at}");
        assert_eq!(rows[0].cost, expected(book, &ads_t1).cost, "{at}");

        // Model and provider groups and filters.
        let rows = store
            .usage(&UsageQuery {
                group_by: vec![Dimension::Provider, Dimension::Model],
                filter: UsageFilter {
                    provider: Some("openai".into()),
                    ..UsageFilter::default()
                },
                ..everything.clone()
            })
            .await
            .unwrap();
        let models: Vec<&str> = rows.iter().map(|r| r.keys[1].as_str()).collect();
        assert_eq!(models, ["gpt-5-mini", "gpt-5.2", "no-such-model-x"], "{at}");
        let nothing = store
            .usage(&UsageQuery {
                filter: UsageFilter {
                    projects: Some(vec![]),
                    ..UsageFilter::default()
                },
                ..everything.clone()
            })
            .await
            .unwrap();
        assert!(
            nothing.is_empty(),
            "{at}: an empty project scope sees nothing"
        );

        // Unpriced models, with counts.
        let unpriced = store
            .unpriced(everything.from, everything.to, None)
            .await
            .unwrap();
        assert_eq!(unpriced.len(), 1, "{at}");
        assert_eq!(unpriced[0].model, "no-such-model-x");
        assert_eq!(unpriced[0].requests, want.unpriced);
        assert!(unpriced[0].reason.contains("no price for model"), "{at}");
        assert!(unpriced[0].first_seen <= unpriced[0].last_seen);
        let scoped = store
            .unpriced(everything.from, everything.to, Some(&["ads".to_owned()]))
            .await
            .unwrap();
        assert!(scoped[0].requests < want.unpriced, "{at}");
    }
}

#[tokio::test]
async fn checkpoints_commit_with_their_batch_and_the_latest_wins() {
    for backend in Backend::both().await {
        let at = backend.name();
        let store = backend.store();
        let checkpoint = |offset| Checkpoint {
            collector: "proxy".into(),
            fingerprint: "abc".into(),
            path: "/var/log/p.jsonl".into(),
            offset,
        };
        let batch = WriteBatch {
            checkpoints: vec![checkpoint(10), checkpoint(25)],
            ..WriteBatch::default()
        };
        store.write(&[&batch]).await.unwrap();
        assert_eq!(
            store.checkpoints("proxy").await.unwrap(),
            vec![checkpoint(25)],
            "{at}"
        );
        store
            .write(&[&WriteBatch {
                checkpoints: vec![checkpoint(40)],
                ..WriteBatch::default()
            }])
            .await
            .unwrap();
        assert_eq!(
            store.checkpoints("proxy").await.unwrap(),
            vec![checkpoint(40)],
            "{at}"
        );
        assert!(store.checkpoints("other").await.unwrap().is_empty(), "{at}");
        store.delete_checkpoint("proxy", "abc").await.unwrap();
        assert!(store.checkpoints("proxy").await.unwrap().is_empty(), "{at}");
    }
}

#[tokio::test]
async fn a_store_restart_mid_ingest_neither_loses_nor_doubles_a_record() {
    let backend = Backend::postgres().await;
    let Backend::Postgres { db, .. } = &backend else {
        unreachable!()
    };
    let store = backend.store();
    let book = Arc::new(book().clone());
    let lines = generated_lines("restart", 0..12_000);
    let want = expected(&book, &lines);
    let (pipeline, batcher) = Pipeline::start(
        store.clone(),
        PipelineConfig {
            max_batch_records: 400,
            ..PipelineConfig::default()
        },
        Arc::new(Metrics::new()),
    );
    let writer = {
        let pipeline = pipeline.clone();
        let book = book.clone();
        tokio::spawn(async move {
            for chunk in lines.chunks(300) {
                pipeline
                    .write_retrying(
                        intake_batch(&book, chunk),
                        "test",
                        Duration::from_millis(200),
                    )
                    .await
                    .expect("retries until the store is back");
            }
        })
    };
    // Drop every connection, several times, while the writer is busy.
    let mut killed = 0;
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        if writer.is_finished() {
            break;
        }
        killed += db.kill_connections().await;
    }
    writer.await.unwrap();
    drop(pipeline);
    batcher.await.unwrap();
    assert!(killed > 0, "the test must actually interrupt the store");
    let (events, _, event_cost, rollup_cost, rollup_requests) = backend.totals().await;
    assert_eq!(events as u64, want.requests, "no record lost or doubled");
    assert_eq!(rollup_requests as u64, want.requests);
    assert_eq!(event_cost, want.cost);
    assert_eq!(rollup_cost, want.cost);
}

#[tokio::test]
async fn an_unreachable_store_is_reported_as_transient() {
    let db = TestDb::new().await;
    let store = pg_store(&db).await;
    db.allow_connections(false).await;
    let error = store.ping().await.unwrap_err();
    assert!(error.is_transient(), "{error:?}");
    db.allow_connections(true).await;
    store
        .ping()
        .await
        .expect("reconnects once the database is back");
}

#[tokio::test]
async fn sums_past_nine_million_dollars_do_not_overflow() {
    // 60 records of 1e9 output tokens on gpt-5.2-pro ($168/M), two a day in March: $10.08M
    // in one project's month, more than 2^63 pico-dollars in the output bucket (each
    // day's rollup stays under it; the monthly tables keep no pico-dollar shares).
    let book = book();
    let first = chrono::DateTime::parse_from_rfc3339("2026-03-01T10:00:00Z").unwrap();
    let lines: Vec<String> = (0..60)
        .map(|i| {
            format!(
                r#"{{"id":"big-{i}","time":"{}","project":"p","provider":"openai","model":"gpt-5.2-pro","tokens":{{"input":1,"output":1000000000}}}}"#,
                (first + chrono::Duration::hours(12 * i)).to_rfc3339()
            )
        })
        .collect();
    let want = expected(book, &lines);
    assert!(want.cost > Decimal::from(9_300_000));
    for backend in Backend::both().await {
        let store = backend.store();
        store.write(&[&intake_batch(book, &lines)]).await.unwrap();
        for (from, to) in [
            ("2026-01-01T00:00:00Z", "2026-06-01T00:00:00Z"),
            ("2026-03-01T10:00:30Z", "2026-06-01T00:00:00Z"),
        ] {
            let rows = store
                .usage(&UsageQuery {
                    from: from.parse().unwrap(),
                    to: to.parse().unwrap(),
                    measures: Measures::All,
                    ..Default::default()
                })
                .await
                .unwrap_or_else(|e| panic!("{}: {e}", backend.name()));
            let output = rows[0].bucket_costs[llm_meter::usage::Bucket::Output.index()];
            if from.starts_with("2026-01") {
                assert_eq!(rows[0].cost, want.cost, "{}", backend.name());
                assert_eq!(output, Decimal::from(60 * 168_000), "{}", backend.name());
            } else {
                // The first record (at 10:00:00) is outside.
                assert_eq!(output, Decimal::from(59 * 168_000), "{}", backend.name());
            }
        }
        // Spend of the month by month and project: from the monthly tables, exact.
        let months = store
            .usage(&UsageQuery {
                from: "2026-01-01T00:00:00Z".parse().unwrap(),
                to: "2026-06-01T00:00:00Z".parse().unwrap(),
                group_by: vec![Dimension::Project, Dimension::Month],
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(months.len(), 1, "{}", backend.name());
        assert_eq!(
            (months[0].requests, months[0].cost),
            (60, want.cost),
            "{}",
            backend.name()
        );
    }
}

#[tokio::test]
async fn alerts_are_recorded_once_and_deliveries_leased_retried_and_finished() {
    use chrono::DurationRound;
    use llm_meter::store::{
        AlertQuery, AlertRecord, DeliveryAttempt, DeliveryOutcome, NewDelivery, StoreError,
        StoredBudget,
    };
    // Stores keep microseconds.
    let now = chrono::Utc::now()
        .duration_trunc(chrono::Duration::microseconds(1))
        .unwrap();
    let hour = chrono::Duration::hours(1);
    for backend in Backend::both().await {
        let at = backend.name();
        let store = backend.store();
        let budget = StoredBudget {
            id: "bud_1".into(),
            name: "b".into(),
            spec_json: r#"{"name":"b","limit_usd":"1","period":"day"}"#.into(),
            source: llm_meter::store::BudgetSource::Api,
            created_at: now,
            updated_at: now,
        };
        store.insert_budget(&budget).await.unwrap();
        let taken = store
            .insert_budget(&StoredBudget {
                id: "bud_2".into(),
                ..budget.clone()
            })
            .await;
        assert!(
            matches!(taken, Err(StoreError::Conflict(_))),
            "{at}: {taken:?}"
        );
        let stored = store.budgets().await.unwrap();
        assert_eq!(stored.len(), 1, "{at}");
        let json = |text: &str| serde_json::from_str::<serde_json::Value>(text).unwrap();
        assert_eq!(json(&stored[0].spec_json), json(&budget.spec_json), "{at}");
        assert_eq!(
            StoredBudget {
                spec_json: budget.spec_json.clone(),
                ..stored[0].clone()
            },
            budget,
            "{at}"
        );

        let alert = |id: &str| AlertRecord {
            id: id.into(),
            budget_id: "bud_1".into(),
            budget_name: "b".into(),
            period_start: now - hour,
            period_end: now + hour,
            kind: llm_meter::store::AlertKind::Threshold,
            threshold_key: "0.5".into(),
            threshold: Some(Decimal::new(5, 1)),
            spend: Decimal::new(7, 1),
            limit: Decimal::ONE,
            forecast: None,
            fired_at: now,
            project: Some("search".into()),
        };
        let delivery = |id: &str| NewDelivery {
            id: id.into(),
            url: "https://hooks.example.com/x".into(),
            format: llm_meter::store::WebhookFormat::Json,
            secret: None,
            body: "{}".into(),
            expires_at: now + hour,
        };
        // The same (budget, period, threshold) twice: the second writes nothing.
        assert!(
            store
                .fire_alert(&alert("a1"), &[delivery("m1")])
                .await
                .unwrap(),
            "{at}"
        );
        assert!(
            !store
                .fire_alert(&alert("a2"), &[delivery("m2")])
                .await
                .unwrap(),
            "{at}"
        );
        let alerts = store
            .alerts(&AlertQuery {
                limit: 10,
                ..AlertQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(alerts, [alert("a1")], "{at}");
        assert_eq!(store.deliveries(None).await.unwrap().len(), 1, "{at}");

        // Leased once: a second claim within the lease gets nothing.
        let lease = Duration::from_secs(60);
        let claimed = store.claim_deliveries(now, 10, lease).await.unwrap();
        assert_eq!(claimed.len(), 1, "{at}");
        assert!(
            store
                .claim_deliveries(now, 10, lease)
                .await
                .unwrap()
                .is_empty(),
            "{at}"
        );
        // A failed attempt schedules a retry; after the lease it is due again.
        let attempt = |n: u32, code: u16| DeliveryAttempt {
            delivery_id: "m1".into(),
            attempt: n,
            at: now,
            status_code: Some(code),
            duration_ms: 12,
            error: (code != 200).then(|| format!("HTTP {code}")),
            response: Some("r".into()),
        };
        let retry_at = now + chrono::Duration::seconds(30);
        store
            .finish_attempt(&attempt(1, 500), &DeliveryOutcome::Retry { at: retry_at })
            .await
            .unwrap();
        assert!(
            store
                .claim_deliveries(now, 10, lease)
                .await
                .unwrap()
                .is_empty(),
            "{at}: not due yet"
        );
        let again = store.claim_deliveries(retry_at, 10, lease).await.unwrap();
        assert_eq!(again.len(), 1, "{at}");
        assert_eq!(again[0].attempts, 1, "{at}");
        store
            .finish_attempt(&attempt(2, 200), &DeliveryOutcome::Delivered)
            .await
            .unwrap();
        let done = store.deliveries(Some("a1")).await.unwrap();
        assert_eq!(
            (done[0].status.as_str(), done[0].attempts),
            ("delivered", 2),
            "{at}"
        );
        assert!(
            store
                .claim_deliveries(now + hour, 10, lease)
                .await
                .unwrap()
                .is_empty(),
            "{at}"
        );
        let attempts = store.delivery_attempts("m1").await.unwrap();
        assert_eq!(attempts, [attempt(1, 500), attempt(2, 200)], "{at}");

        // A digest period is claimed once, with its delivery.
        assert!(
            store
                .claim_digest("weekly", now, &[delivery("m3")])
                .await
                .unwrap(),
            "{at}"
        );
        assert!(
            !store
                .claim_digest("weekly", now, &[delivery("m4")])
                .await
                .unwrap(),
            "{at}"
        );
        assert_eq!(store.deliveries(None).await.unwrap().len(), 2, "{at}");

        assert!(store.delete_budget("bud_1").await.unwrap(), "{at}");
        assert!(!store.delete_budget("bud_1").await.unwrap(), "{at}");
        assert_eq!(
            store
                .alerts(&AlertQuery {
                    limit: 10,
                    ..AlertQuery::default()
                })
                .await
                .unwrap()
                .len(),
            1,
            "{at}: history stays"
        );
    }
}

#[tokio::test]
async fn finance_views_sum_the_rollups_exactly_per_utc_month() {
    let book = book();
    // The same generated usage, some of it moved from April 1 to March 31.
    let lines: Vec<String> = generated_lines("fv", 0..600)
        .into_iter()
        .enumerate()
        .map(|(i, line)| {
            if i % 2 == 0 {
                line.replace("2026-04-01", "2026-03-31")
            } else {
                line
            }
        })
        .collect();
    let (march, april): (Vec<String>, Vec<String>) = lines
        .iter()
        .cloned()
        .partition(|l| l.contains("2026-03-31"));
    let expected_by_month = [expected(book, &march), expected(book, &april)];
    const SQL: &str = "SELECT project, CAST(sum(cost_nanos) AS BIGINT), \
         CAST(sum(requests) AS BIGINT) \
         FROM finance_spend_monthly GROUP BY month, project ORDER BY month, project";
    const EXACT: &str = "SELECT CAST(cost_usd AS TEXT), CAST(cost_nanos AS BIGINT) \
         FROM finance_spend_daily";
    for backend in Backend::both().await {
        let at = backend.name();
        let batch = intake_batch(book, &lines);
        backend.store().write(&[&batch]).await.unwrap();
        type Row = (String, i64, i64);
        let (rows, exact): (Vec<Row>, Vec<(String, i64)>) = match &backend {
            Backend::Sqlite { store, .. } => (
                sqlx::query_as(SQL).fetch_all(store.pool()).await.unwrap(),
                sqlx::query_as(EXACT).fetch_all(store.pool()).await.unwrap(),
            ),
            Backend::Postgres { store, .. } => (
                sqlx::query_as(SQL).fetch_all(store.pool()).await.unwrap(),
                sqlx::query_as(EXACT).fetch_all(store.pool()).await.unwrap(),
            ),
        };
        // Three projects in each of the two months, March first.
        assert_eq!(rows.len(), 6, "{at}: {rows:?}");
        for (month, expected) in rows.chunks(3).zip(&expected_by_month) {
            let got: BTreeMap<String, Decimal> = month
                .iter()
                .map(|(project, nanos, _)| (project.clone(), llm_meter::money::from_nanos(*nanos)))
                .collect();
            let want: BTreeMap<String, Decimal> = expected
                .cost_by_project
                .iter()
                .map(|(p, c)| (p.clone(), *c))
                .collect();
            assert_eq!(got, want, "{at}");
            let requests: i64 = month.iter().map(|r| r.2).sum();
            assert_eq!(requests as u64, expected.requests, "{at}");
        }
        // The decimal column is the nano-dollar sum, every digit.
        assert!(!exact.is_empty());
        for (text, nanos) in exact {
            let value: Decimal = text.parse().unwrap();
            assert_eq!(value, llm_meter::money::from_nanos(nanos), "{at}: {text}");
            assert_eq!(
                text.split('.').nth(1).map(str::len),
                Some(9),
                "{at}: {text}"
            );
        }
    }
}

#[tokio::test]
async fn tokens_are_stored_hashed_listed_and_revoked_once() {
    for backend in Backend::both().await {
        let at = backend.name();
        let store = backend.store();
        let now = chrono::Utc::now();
        assert!(!store.any_token().await.unwrap(), "{at}");
        let (token, read) = llm_meter::auth::generate(
            llm_meter::auth::Role::Read,
            vec!["a".into(), "b".into()],
            "finance".into(),
            Some(now + chrono::Duration::hours(1)),
            now,
        );
        store.insert_token(&read).await.unwrap();
        assert!(matches!(
            store.insert_token(&read).await,
            Err(llm_meter::store::StoreError::Conflict(_))
        ));
        let got = store.token(&read.id).await.unwrap().unwrap();
        // Times come back at the store's precision (microseconds).
        assert_eq!(got.projects, ["a", "b"], "{at}");
        assert_eq!(got.hash, llm_meter::auth::hash(&token));
        assert_eq!(got.role, llm_meter::store::Role::Read);
        assert_eq!(
            got.expires_at.unwrap().timestamp_micros(),
            read.expires_at.unwrap().timestamp_micros()
        );
        assert!(store.token("0000000000000000").await.unwrap().is_none());
        assert!(store.any_token().await.unwrap(), "{at}");
        assert_eq!(store.tokens().await.unwrap().len(), 1);
        assert!(store.revoke_token(&read.id, now).await.unwrap());
        assert!(!store.revoke_token(&read.id, now).await.unwrap(), "{at}");
        assert!(!store.revoke_token("nope", now).await.unwrap());
        // Revoked, the token still means tokens are in use: the API never falls open.
        assert!(store.any_token().await.unwrap(), "{at}");
        let listed = store.tokens().await.unwrap();
        assert!(listed[0].revoked_at.is_some(), "{at}");
    }
}
