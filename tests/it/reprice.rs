//! Repricing on both backends: after a price correction, repricing a store must leave it
//! exactly as if every record had been ingested with the corrected sheets (events,
//! rollups, totals), write one audit row, and a dry run must change nothing.

use llm_meter::pricing::{PriceBook, PriceOutcome};
use llm_meter::store::{Dimension, EventScan, RepriceScope, Store, UsageFilter, UsageQuery};
use llm_meter::usage::UsageRecord;
use rust_decimal::Decimal;

use crate::helpers::{binary, book, prepare};
use crate::spend_api::generated_records;
use crate::store_contract::{Backend, intake_batch};

/// A correction: gpt-5.2 costs more from 2026-03-30, and a price for the made-up model
/// under another id (so its records move to another rollup group).
const CORRECTION: &str = "provider = \"openai\"\nsource = \"local\"\nretrieved = \"2026-11-22\"\n\
    [[model]]\nid = \"gpt-5.2\"\n\
    [[model.price]]\nfrom = \"2026-03-30\"\ninput = \"2\"\ncached_input = \"0.2\"\noutput = \"16\"\n\
    [[model]]\nid = \"made-up-9\"\naliases = [\"made-up-model-9\"]\n\
    [[model.price]]\nfrom = \"2020-01-01\"\ninput = \"1\"\ncached_input = \"0.1\"\noutput = \"2\"\n";

fn corrected_book() -> PriceBook {
    let mut texts: Vec<(String, String)> = llm_meter::pricing::builtin_sheets()
        .map(|(n, t)| (n.to_owned(), t.to_owned()))
        .collect();
    texts.push(("correction.toml".into(), CORRECTION.into()));
    PriceBook::from_texts(texts).unwrap()
}

fn range() -> (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>) {
    (
        "2026-03-27T00:00:00Z".parse().unwrap(),
        "2026-04-03T00:00:00Z".parse().unwrap(),
    )
}

fn scope(project: Option<&str>, dry_run: bool) -> RepriceScope {
    let (from, to) = range();
    RepriceScope {
        from,
        to,
        project: project.map(str::to_owned),
        dry_run,
        actor: "test".into(),
        ..RepriceScope::default()
    }
}

/// Everything a query can see: every dimension, by hour.
async fn full_usage(store: &dyn Store) -> Vec<llm_meter::store::UsageAggregate> {
    let (from, to) = range();
    store
        .usage(&UsageQuery {
            from,
            to,
            group_by: vec![
                Dimension::Project,
                Dimension::Provider,
                Dimension::Model,
                Dimension::ServiceTier,
                Dimension::Batch,
                Dimension::ReasoningEffort,
                Dimension::Tags,
                Dimension::Hour,
            ],
            filter: UsageFilter::default(),
            ..Default::default()
        })
        .await
        .unwrap()
}

async fn all_events(store: &dyn Store) -> Vec<llm_meter::prepare::PricedRecord> {
    let (from, to) = range();
    let mut events = store
        .events(&EventScan {
            from,
            to,
            filter: UsageFilter::default(),
        })
        .await
        .unwrap();
    events.sort_by(|a, b| a.record.id.cmp(&b.record.id));
    events
}

fn total(book: &PriceBook, lines: &[String], project: Option<&str>) -> Decimal {
    lines
        .iter()
        .map(|line| prepare(book, line))
        .filter(|p| project.is_none_or(|project| p.record.project == project))
        .filter_map(|p| p.price.cost())
        .sum::<Decimal>()
        .normalize()
}

#[tokio::test]
async fn a_reprice_leaves_the_store_as_if_ingested_with_the_corrected_prices() {
    let lines = generated_records(400);
    let (old_book, new_book) = (book(), corrected_book());
    let newly_priced = lines
        .iter()
        .filter(|line| {
            matches!(prepare(old_book, line).price, PriceOutcome::Unpriced(_))
                && matches!(prepare(&new_book, line).price, PriceOutcome::Priced(_))
        })
        .count() as u64;
    assert!(newly_priced > 0);
    for (repriced, reference) in Backend::both().await.into_iter().zip(Backend::both().await) {
        let name = repriced.name();
        let store = repriced.store();
        store
            .write(&[&intake_batch(old_book, &lines)])
            .await
            .unwrap();
        reference
            .store()
            .write(&[&intake_batch(&new_book, &lines)])
            .await
            .unwrap();
        let price = |record: &UsageRecord| new_book.price(record);

        // A dry run reports the difference and changes nothing.
        let before = repriced.totals().await;
        let dry = store.reprice(&scope(None, true), &price).await.unwrap();
        assert_eq!(repriced.totals().await, before, "{name}");
        assert!(store.reprice_audits(10).await.unwrap().is_empty(), "{name}");
        assert_eq!(dry.old_total, total(old_book, &lines, None), "{name}");
        assert_eq!(dry.new_total, total(&new_book, &lines, None), "{name}");
        assert_eq!(dry.newly_priced, newly_priced, "{name}");

        // The real one: same figures, and the store now equals the reference.
        let done = store.reprice(&scope(None, false), &price).await.unwrap();
        assert_eq!(done, dry, "{name}");
        assert_eq!(repriced.totals().await, reference.totals().await, "{name}");
        assert_eq!(
            full_usage(store.as_ref()).await,
            full_usage(reference.store().as_ref()).await,
            "{name}"
        );
        assert_eq!(
            all_events(store.as_ref()).await,
            all_events(reference.store().as_ref()).await,
            "{name}"
        );
        let audits = store.reprice_audits(10).await.unwrap();
        assert_eq!(audits.len(), 1, "{name}");
        assert_eq!(audits[0].summary, done, "{name}");
        assert_eq!(audits[0].scope.actor, "test");

        // Nothing left to change.
        let again = store.reprice(&scope(None, false), &price).await.unwrap();
        assert_eq!((again.examined, again.changed), (400, 0), "{name}");

        // Back to the old prices for one project only.
        let old_price = |record: &UsageRecord| old_book.price(record);
        store
            .reprice(&scope(Some("search"), false), &old_price)
            .await
            .unwrap();
        let (from, to) = range();
        let by_project = store
            .usage(&UsageQuery {
                from,
                to,
                group_by: vec![Dimension::Project],
                filter: UsageFilter::default(),
                ..Default::default()
            })
            .await
            .unwrap();
        for aggregate in by_project {
            let project = aggregate.keys[0].as_str();
            let book = if project == "search" {
                old_book
            } else {
                &new_book
            };
            assert_eq!(
                aggregate.cost,
                total(book, &lines, Some(project)),
                "{name} {project}"
            );
        }
    }
}

#[test]
fn the_reprice_command_prints_the_difference_and_a_dry_run_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let lines = generated_records(60);
    std::fs::write(dir.path().join("usage.jsonl"), lines.join("\n")).unwrap();
    std::fs::create_dir(dir.path().join("sheets")).unwrap();
    std::fs::write(
        dir.path().join("llm-meter.toml"),
        "database_url = \"sqlite://meter.db\"\n[pricing]\ndirs = [\"sheets\"]\n",
    )
    .unwrap();
    let run = |args: &[&str]| {
        let output = binary()
            .current_dir(dir.path())
            .args(args)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    run(&["ingest", "usage.jsonl"]);
    let report = |run: &dyn Fn(&[&str]) -> String| -> String {
        let json: serde_json::Value = serde_json::from_str(&run(&[
            "report",
            "--from",
            "2026-03-27",
            "--to",
            "2026-04-03",
            "--format",
            "json",
        ]))
        .unwrap();
        json["total_cost_usd"].as_str().unwrap().to_owned()
    };
    let old_total = report(&run);
    assert_eq!(old_total, total(book(), &lines, None).to_string());

    std::fs::write(dir.path().join("sheets/correction.toml"), CORRECTION).unwrap();
    let new_total = total(&corrected_book(), &lines, None);
    let args = ["reprice", "--from", "2026-03-27", "--to", "2026-04-03"];
    let dry = run(&[&args[..], &["--dry-run"]].concat());
    assert!(dry.contains("would be changed"), "{dry}");
    assert!(
        dry.contains(&format!("cost: {old_total} -> {new_total} USD")),
        "{dry}"
    );
    assert!(dry.contains("dry run: nothing was changed"), "{dry}");
    assert_eq!(report(&run), old_total);

    let done = run(&args);
    assert!(!done.contains("dry run"), "{done}");
    assert_eq!(report(&run), new_total.to_string());
}
