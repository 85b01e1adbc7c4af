//! The Postgres store and the ingest pipeline against a real Postgres: exactly once,
//! rollups in step with events, dead letters, checkpoints, outages.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use llm_meter::ingest::{Intake, Pipeline, PipelineConfig};
use llm_meter::metrics::Metrics;
use llm_meter::prepare::Preparer;
use llm_meter::pricing::{PriceBook, PriceOutcome};
use llm_meter::store::{
    Checkpoint, Dimension, PgStore, Store, UsageFilter, UsageQuery, WriteBatch,
};
use llm_meter::usage::Format;
use rust_decimal::Decimal;
use sqlx::Row;

use crate::helpers::{book, ingest_time};
use crate::pg::TestDb;

pub async fn pg_store(db: &TestDb) -> Arc<PgStore> {
    let store = PgStore::connect(&db.url)
        .await
        .expect("connect to the test database");
    store.migrate().await.expect("migrations apply");
    Arc::new(store)
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

fn intake_batch(book: &PriceBook, lines: &[String]) -> WriteBatch {
    let mut intake = Intake::new(
        Preparer::new(book, Format::Auto, "default"),
        "test",
        ingest_time(),
    );
    for (index, line) in lines.iter().enumerate() {
        intake.add_text(index, line);
    }
    intake.take().0
}

/// Totals read straight from the events table, and from the rollups, for comparison:
/// (events, unpriced events, event cost, rollup cost, rollup requests).
pub async fn totals(store: &PgStore) -> (i64, i64, Decimal, Decimal, i64) {
    let row = sqlx::query(
        "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM events WHERE cost_nanos IS NULL),
                (SELECT coalesce(sum(cost_nanos), 0)::bigint FROM events),
                (SELECT coalesce(sum(cost_nanos), 0)::bigint FROM rollups_hourly),
                (SELECT coalesce(sum(requests), 0)::bigint FROM rollups_hourly)",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    (
        row.get(0),
        row.get(1),
        llm_meter::money::from_nanos(row.get(2)),
        llm_meter::money::from_nanos(row.get(3)),
        row.get(4),
    )
}

#[tokio::test]
async fn duplicates_within_a_batch_and_across_batches_count_once() {
    let db = TestDb::new().await;
    let store = pg_store(&db).await;
    let book = book();
    let line = |project: &str, id: &str, input: u64| {
        format!(
            r#"{{"id":"{id}","time":"2026-04-01T10:00:00Z","project":"{project}","provider":"openai","model":"gpt-5.2","tokens":{{"input":{input},"output":10}}}}"#
        )
    };
    // r1 twice in one batch (the first copy wins), and the same id in another project.
    let first = intake_batch(
        &book,
        &[
            line("a", "r1", 1000),
            line("a", "r2", 2000),
            line("a", "r1", 999_999),
            line("b", "r1", 3000),
        ],
    );
    assert_eq!(
        store.write(&[&first]).await.unwrap(),
        vec![true, true, false, true]
    );
    // Again, plus one new record.
    let second = intake_batch(&book, &[line("a", "r1", 1000), line("a", "r3", 4000)]);
    assert_eq!(store.write(&[&second]).await.unwrap(), vec![false, true]);

    let (events, _, event_cost, rollup_cost, rollup_requests) = totals(&store).await;
    assert_eq!(events, 4);
    assert_eq!(rollup_requests, 4, "rollups count inserted events only");
    // (1,000 + 2,000 + 3,000 + 4,000) × $1.75 + 4 × 10 × $14, per 1M tokens.
    assert_eq!(event_cost, Decimal::new(18060, 6));
    assert_eq!(rollup_cost, event_cost);
}

#[tokio::test]
async fn two_concurrent_writers_with_overlapping_sets_count_each_record_once() {
    let db = TestDb::new().await;
    let book = Arc::new(book());
    let lines_a = generated_lines("rec", 0..6000);
    let lines_b = generated_lines("rec", 3000..9000);
    let all = generated_lines("rec", 0..9000);
    let want = expected(&book, &all);

    let mut writers = Vec::new();
    for lines in [lines_a, lines_b] {
        // Each writer has its own connection pool and pipeline, like two daemons.
        let store: Arc<dyn Store> = pg_store(&db).await;
        let book = book.clone();
        writers.push(tokio::spawn(async move {
            let (pipeline, batcher) =
                Pipeline::start(store, PipelineConfig::default(), Arc::new(Metrics::new()));
            let (mut accepted, mut duplicates) = (0, 0);
            for chunk in lines.chunks(500) {
                let batch = intake_batch(&book, chunk);
                let committed = pipeline.write(batch, "test").await.unwrap();
                accepted += committed.accepted;
                duplicates += committed.duplicates;
            }
            drop(pipeline);
            batcher.await.unwrap();
            (accepted, duplicates)
        }));
    }
    let mut accepted = 0;
    let mut duplicates = 0;
    for writer in writers {
        let (a, d) = writer.await.unwrap();
        accepted += a;
        duplicates += d;
    }
    assert_eq!(accepted, 9000, "every record accepted once");
    assert_eq!(duplicates, 3000, "the overlap reported as duplicates");

    let store = pg_store(&db).await;
    let (events, unpriced, event_cost, rollup_cost, rollup_requests) = totals(&store).await;
    assert_eq!(events as u64, want.requests);
    assert_eq!(unpriced as u64, want.unpriced);
    assert_eq!(event_cost, want.cost, "exact to the nano-dollar");
    assert_eq!(rollup_cost, want.cost);
    assert_eq!(rollup_requests as u64, want.requests);
}

#[tokio::test]
async fn a_store_restart_mid_ingest_neither_loses_nor_doubles_a_record() {
    let db = TestDb::new().await;
    let store: Arc<dyn Store> = pg_store(&db).await;
    let book = Arc::new(book());
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
                let batch = intake_batch(&book, chunk);
                pipeline
                    .write_retrying(batch, "test", Duration::from_millis(200))
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

    let check = pg_store(&db).await;
    let (events, _, event_cost, rollup_cost, rollup_requests) = totals(&check).await;
    assert_eq!(events as u64, want.requests, "no record lost or doubled");
    assert_eq!(rollup_requests as u64, want.requests);
    assert_eq!(event_cost, want.cost);
    assert_eq!(rollup_cost, want.cost);
}

#[tokio::test]
async fn a_malformed_line_is_dead_lettered_and_the_rest_of_its_batch_lands() {
    let db = TestDb::new().await;
    let store = pg_store(&db).await;
    let book = book();
    let mut lines = generated_lines("mixed", 0..10);
    lines.insert(5, r#"{"model":"gpt-5.2","tokens":{"input":-3}}"#.to_owned());
    lines.insert(8, "this is not json".to_owned());
    let mut intake = Intake::new(
        Preparer::new(&book, Format::Auto, "default"),
        "test",
        ingest_time(),
    )
    .with_dead_letter_source("backfill usage.jsonl");
    for (index, line) in lines.iter().enumerate() {
        intake.add_text(index, line);
    }
    let (batch, rejections) = intake.take();
    assert_eq!(
        rejections.iter().map(|r| r.index).collect::<Vec<_>>(),
        vec![5, 8]
    );
    let inserted = store.write(&[&batch]).await.unwrap();
    assert_eq!(inserted.len(), 10);
    assert!(inserted.iter().all(|new| *new));

    let letters = store.dead_letters(10).await.unwrap();
    assert_eq!(letters.len(), 2);
    let negative = letters.iter().find(|l| l.code == "bad_count").unwrap();
    assert_eq!(
        negative.reason,
        "canonical record: tokens.input is negative (-3)"
    );
    assert_eq!(negative.source, "backfill usage.jsonl");
    assert_eq!(negative.line, lines[5]);
    assert!(
        letters
            .iter()
            .any(|l| l.code == "invalid_json" && l.line == "this is not json")
    );
    assert_eq!(totals(&store).await.0, 10);
}

#[tokio::test]
async fn usage_queries_agree_with_sums_over_the_events() {
    let db = TestDb::new().await;
    let store = pg_store(&db).await;
    let book = book();
    let lines = generated_lines("q", 0..3000);
    let want = expected(&book, &lines);
    for chunk in lines.chunks(1000) {
        store.write(&[&intake_batch(&book, chunk)]).await.unwrap();
    }
    let everything = UsageQuery {
        from: "2026-03-01T00:00:00Z".parse().unwrap(),
        to: "2026-05-01T00:00:00Z".parse().unwrap(),
        group_by: vec![Dimension::Project],
        filter: UsageFilter::default(),
    };
    let rows = store.usage(&everything).await.unwrap();
    let by_project: BTreeMap<String, Decimal> =
        rows.iter().map(|r| (r.keys[0].clone(), r.cost)).collect();
    assert_eq!(by_project, want.cost_by_project);
    assert_eq!(rows.iter().map(|r| r.requests).sum::<u64>(), want.requests);

    // A window with mid-hour bounds: rollups for whole hours, events for the ends.
    let from: chrono::DateTime<chrono::Utc> = "2026-04-01T10:17:30Z".parse().unwrap();
    let to: chrono::DateTime<chrono::Utc> = "2026-04-02T03:41:05Z".parse().unwrap();
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
    let want_window = expected(&book, &window);
    let rows = store
        .usage(&UsageQuery {
            from,
            to,
            group_by: vec![],
            filter: UsageFilter::default(),
        })
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].requests, want_window.requests);
    assert_eq!(rows[0].cost, want_window.cost);

    // Filters: one project and one tag.
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
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].keys, vec!["t1".to_owned()]);
    assert_eq!(rows[0].cost, expected(&book, &ads_t1).cost);
}

#[tokio::test]
async fn checkpoints_commit_with_their_batch_and_the_latest_wins() {
    let db = TestDb::new().await;
    let store = pg_store(&db).await;
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
        vec![checkpoint(25)]
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
        vec![checkpoint(40)]
    );
    assert!(store.checkpoints("other").await.unwrap().is_empty());
    store.delete_checkpoint("proxy", "abc").await.unwrap();
    assert!(store.checkpoints("proxy").await.unwrap().is_empty());
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
