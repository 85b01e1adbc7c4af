//! Every sample of every provider shape through the three ways in: `cost` (the pipeline
//! without a store), the tailer into SQLite and `POST /v1/usage` into Postgres. Each
//! store then holds, provider by provider, exactly what `cost` priced: requests, cost,
//! partly priced requests, the reported cost, and the non-token charges.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{Duration, Utc};
use llm_meter::collect::Collector;
use llm_meter::ingest::{Pipeline, PipelineConfig};
use llm_meter::metrics::Metrics;
use llm_meter::prepare::Preparer;
use llm_meter::pricing::PriceOutcome;
use llm_meter::store::{Dimension, Store, UsageQuery};
use llm_meter::usage::{Bucket, Format, Tokens};
use rust_decimal::Decimal;
use serde_json::Value;

use crate::collector::collector_config;
use crate::helpers::{book, sample, sample_path};
use crate::http_ingest::TestServer;
use crate::pg::TestDb;
use crate::store_contract::Backend;

/// What a provider's samples add up to.
#[derive(Debug, Default, PartialEq)]
struct Sums {
    requests: u64,
    cost: Decimal,
    partial: u64,
    reported_requests: u64,
    reported: Decimal,
    tokens: Tokens,
}

fn sample_lines() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(sample_path(""))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names.iter().map(|n| sample(n).trim().to_owned()).collect()
}

/// What `cost` says, by provider.
fn expected(lines: &[String]) -> BTreeMap<String, Sums> {
    let mut preparer = Preparer::new(book(), Format::Auto, "default");
    let mut sums: BTreeMap<String, Sums> = BTreeMap::new();
    for line in lines {
        let priced = preparer.prepare(line, Utc::now()).unwrap();
        let sum = sums.entry(priced.record.provider.clone()).or_default();
        sum.requests += 1;
        for bucket in Bucket::COUNTED {
            let count = sum.tokens.get(bucket) + priced.record.tokens.get(bucket);
            sum.tokens.set(bucket, count);
        }
        if let Some(reported) = priced.record.reported_cost {
            sum.reported_requests += 1;
            sum.reported += reported;
        }
        match priced.price {
            PriceOutcome::Priced(p) => {
                sum.cost += p.cost;
                sum.partial += u64::from(p.partial.is_some());
            }
            PriceOutcome::Unpriced(u) => panic!("{line}: unpriced: {}", u.reason),
        }
    }
    sums
}

async fn stored(store: &dyn Store) -> BTreeMap<String, Sums> {
    let rows = store
        .usage(&UsageQuery {
            from: "2020-01-01T00:00:00Z".parse().unwrap(),
            to: Utc::now() + Duration::days(1),
            group_by: vec![Dimension::Provider],
            ..Default::default()
        })
        .await
        .unwrap();
    rows.into_iter()
        .map(|row| {
            let sums = Sums {
                requests: row.requests,
                cost: row.cost.normalize(),
                partial: row.partial_requests,
                reported_requests: row.reported_requests,
                reported: row.reported_cost.normalize(),
                tokens: row.tokens,
            };
            (row.keys[0].clone(), sums)
        })
        .collect()
}

fn normalized(mut sums: BTreeMap<String, Sums>) -> BTreeMap<String, Sums> {
    for sum in sums.values_mut() {
        sum.cost = sum.cost.normalize();
        sum.reported = sum.reported.normalize();
    }
    sums
}

#[tokio::test]
async fn every_provider_sample_lands_through_the_tailer_and_http_as_cost_prices_it() {
    let lines = sample_lines();
    let want = normalized(expected(&lines));
    // The shapes this round added are all there, with their charges.
    for provider in [
        "bedrock",
        "vertex",
        "azure",
        "deepseek",
        "xai",
        "groq",
        "perplexity",
        "cohere",
        "openrouter",
        "mistral",
        "cerebras",
        "deepinfra",
        "together",
        "fireworks",
    ] {
        assert!(want.contains_key(provider), "no {provider} sample");
    }
    assert!(want["xai"].partial > 0 && want["perplexity"].tokens.web_search > 0);
    assert!(want["openai"].tokens.audio_input > 0 && want["vertex"].tokens.audio_input > 0);

    // The tailer, into SQLite.
    let backend = Backend::sqlite().await;
    let store = backend.store();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("app.log"), lines.join("\n") + "\n").unwrap();
    let (pipeline, batcher) = Pipeline::start(
        store.clone(),
        PipelineConfig::default(),
        Arc::new(Metrics::new()),
    );
    let mut collector = Collector::new(
        collector_config(dir.path(), "providers"),
        Arc::new(book().clone()),
        pipeline.clone(),
        store.clone(),
        Arc::new(Metrics::new()),
    )
    .await
    .unwrap();
    let outcome = collector.poll_once().await.unwrap();
    assert_eq!(
        (outcome.accepted, outcome.rejected),
        (lines.len() as u64, 0)
    );
    drop(collector);
    drop(pipeline);
    batcher.await.unwrap();
    assert_eq!(stored(store.as_ref()).await, want, "tailer into SQLite");

    // HTTP, into Postgres.
    let db = TestDb::new().await;
    let server = TestServer::start(&db).await;
    let (status, answer) = server
        .post("/v1/usage", "application/x-ndjson", lines.join("\n"))
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["accepted"], lines.len());
    let pg = crate::store_contract::pg_store(&db).await;
    assert_eq!(stored(pg.as_ref()).await, want, "HTTP into Postgres");

    // The spend API shows the provider's own bill beside ours, and the charges by type.
    let to = (Utc::now() + Duration::days(1)).format("%Y-%m-%d");
    let (status, spend) = server
        .get(format!(
            "/v1/spend?group_by=provider&from=2020-01-01&to={to}"
        ))
        .await;
    assert_eq!(status, 200, "{spend}");
    let rows = spend["rows"].as_array().unwrap();
    let row = |provider: &str| -> &Value {
        rows.iter()
            .find(|r| r["provider"] == provider)
            .unwrap_or_else(|| panic!("no {provider} row: {spend}"))
    };
    for (provider, sums) in &want {
        let row = row(provider);
        assert_eq!(row["cost_usd"], sums.cost.to_string(), "{provider}");
        assert_eq!(row["partially_priced_requests"], sums.partial, "{provider}");
        if sums.reported_requests > 0 {
            assert_eq!(
                row["reported_cost_usd"],
                sums.reported.to_string(),
                "{provider}"
            );
        } else {
            assert!(row.get("reported_cost_usd").is_none(), "{provider}: {row}");
        }
    }
    let (status, by_type) = server
        .get(format!(
            "/v1/spend?group_by=provider,token_type&provider=perplexity&from=2020-01-01&to={to}"
        ))
        .await;
    assert_eq!(status, 200, "{by_type}");
    let types: Vec<&str> = by_type["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["token_type"].as_str().unwrap())
        .collect();
    for bucket in ["input", "output", "reasoning", "web_search", "request"] {
        assert!(types.contains(&bucket), "{bucket} missing: {by_type}");
    }

    // FOCUS: the charges that are not tokens are lines of their own, in their own unit,
    // and all lines still add up to the spend.
    let response = server
        .client
        .get(format!(
            "{}/v1/spend?format=focus&from=2020-01-01&to={to}",
            server.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let focus = response.text().await.unwrap();
    let mut lines = focus.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let column = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let rows: Vec<Vec<String>> = lines.map(crate::spend_api::parse_csv_line).collect();
    let billed: Decimal = rows
        .iter()
        .map(|r| r[column("BilledCost")].parse::<Decimal>().unwrap())
        .sum();
    let total: Decimal = want.values().map(|s| s.cost).sum();
    assert_eq!(billed.normalize(), total.normalize());
    let charge = |usage_type: &str| -> (u64, Decimal, String, String) {
        rows.iter()
            .filter(|r| r[column("x_UsageType")] == usage_type)
            .fold(
                (0, Decimal::ZERO, String::new(), String::new()),
                |acc, r| {
                    (
                        acc.0 + r[column("ConsumedQuantity")].parse::<u64>().unwrap(),
                        acc.1 + r[column("BilledCost")].parse::<Decimal>().unwrap(),
                        r[column("PricingUnit")].clone(),
                        r[column("ConsumedUnit")].clone(),
                    )
                },
            )
    };
    let searches: u64 = want.values().map(|s| s.tokens.web_search).sum();
    let (quantity, cost, unit, consumed) = charge("web_search");
    assert_eq!(quantity, searches);
    assert!(cost > Decimal::ZERO);
    assert_eq!(
        (unit.as_str(), consumed.as_str()),
        ("Web Searches", "Web Searches")
    );
    let (requests, fee, unit, _) = charge("request");
    assert!(requests >= 1 && fee > Decimal::ZERO, "{requests} {fee}");
    assert_eq!(unit, "Requests");
}
