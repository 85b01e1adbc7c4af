//! Insights the usage guides ask for, checked against sums the test makes itself:
//! spend and tokens by reasoning effort, from Responses objects and LiteLLM payloads.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::helpers::{book, prepare};
use crate::http_ingest::TestServer;
use crate::pg::TestDb;
use llm_meter::pricing::PriceOutcome;

/// A Responses API object at `effort` (None: no `reasoning` field at all).
fn response(id: u32, effort: Option<&str>, output: u64, reasoning: u64) -> Value {
    let mut object = json!({
        "id": format!("resp_effort_{id:04}"),
        "object": "response",
        "created_at": 1_777_636_800 + u64::from(id) * 60, // 2026-05-01 and on
        "status": "completed",
        "model": "gpt-5.2-2025-12-11",
        "output": [],
        "usage": {
            "input_tokens": 4000 + u64::from(id),
            "input_tokens_details": {"cached_tokens": 1000},
            "output_tokens": output,
            "output_tokens_details": {"reasoning_tokens": reasoning},
            "total_tokens": 4000 + u64::from(id) + output
        }
    });
    if let Some(effort) = effort {
        object["reasoning"] = json!({"effort": effort, "summary": null});
    }
    object
}

/// A LiteLLM standard logging payload whose request asked for `effort`.
fn litellm(id: u32, effort: &str, completion: u64, reasoning: u64) -> Value {
    json!({
        "id": format!("chatcmpl-effort-{id}"),
        "call_type": "acompletion",
        "status": "success",
        "custom_llm_provider": "openai",
        "model": "gpt-5-mini",
        "prompt_tokens": 2000,
        "completion_tokens": completion,
        "total_tokens": 2000 + completion,
        "startTime": 1_777_640_400.0 + f64::from(id),
        "endTime": 1_777_640_401.0 + f64::from(id),
        "metadata": {
            "user_api_key_team_alias": "agents",
            "usage_object": {
                "prompt_tokens": 2000,
                "completion_tokens": completion,
                "total_tokens": 2000 + completion,
                "completion_tokens_details": {"reasoning_tokens": reasoning}
            }
        },
        "model_parameters": {"reasoning_effort": effort}
    })
}

#[derive(Debug, Default, PartialEq)]
struct Sums {
    requests: u64,
    output: u64,
    reasoning: u64,
    cost: Decimal,
}

#[tokio::test]
async fn spend_by_reasoning_effort_groups_and_totals_exactly() {
    // (record, the effort the test expects it under, model).
    let mut records: Vec<(Value, &str, &str)> = Vec::new();
    let efforts = [
        (Some("none"), "none"),
        (Some("minimal"), "minimal"),
        (Some("low"), "low"),
        (Some("medium"), "medium"),
        (Some("high"), "high"),
        (Some("xhigh"), "xhigh"),
        (Some("extended"), "high"),
        (Some("Standard"), "medium"),
        (Some("turbo"), "turbo"),
        (None, ""),
    ];
    for (i, (given, expected)) in efforts.iter().enumerate() {
        for repeat in 0..3u32 {
            let id = i as u32 * 10 + repeat;
            // Higher effort, more reasoning: the guide's 2–5× in miniature.
            let reasoning = 200 * (i as u64 + 1) + u64::from(repeat);
            records.push((
                response(id, *given, reasoning + 300, reasoning),
                expected,
                "gpt-5.2",
            ));
        }
    }
    for (id, given, expected) in [(1, "low", "low"), (2, "light", "low"), (3, "high", "high")] {
        records.push((litellm(id, given, 900, 600), expected, "gpt-5-mini"));
    }

    let book = book();
    let mut expected: BTreeMap<(String, String), Sums> = BTreeMap::new();
    for (record, effort, model) in &records {
        let priced = prepare(book, &record.to_string());
        let PriceOutcome::Priced(price) = priced.price else {
            panic!("unpriced: {record}");
        };
        let sums = expected
            .entry((effort.to_string(), model.to_string()))
            .or_default();
        sums.requests += 1;
        sums.output += priced.record.tokens.output;
        sums.reasoning += priced.record.tokens.reasoning;
        sums.cost += price.cost;
    }

    let db = TestDb::new().await;
    let server = TestServer::start(&db).await;
    let body: Vec<String> = records.iter().map(|(r, _, _)| r.to_string()).collect();
    let (status, answer) = server
        .post("/v1/usage", "application/x-ndjson", body.join("\n"))
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["accepted"], records.len(), "{answer}");

    let (status, spend) = server
        .get("/v1/spend?from=2026-05-01&to=2026-06-01&group_by=reasoning_effort,model")
        .await;
    assert_eq!(status, 200, "{spend}");
    let mut got: BTreeMap<(String, String), Sums> = BTreeMap::new();
    for row in spend["rows"].as_array().unwrap() {
        let effort = row["reasoning_effort"].as_str().unwrap_or("").to_owned();
        let model = row["model"].as_str().unwrap().to_owned();
        got.insert(
            (effort, model),
            Sums {
                requests: row["requests"].as_u64().unwrap(),
                output: row["tokens"]["output"].as_u64().unwrap(),
                reasoning: row["tokens"]["reasoning"].as_u64().unwrap(),
                cost: row["cost_usd"].as_str().unwrap().parse().unwrap(),
            },
        );
    }
    assert_eq!(got, expected, "{spend}");
    let total: Decimal = expected.values().map(|s| s.cost).sum();
    assert_eq!(
        spend["total_cost_usd"]
            .as_str()
            .unwrap()
            .parse::<Decimal>()
            .unwrap(),
        total
    );
    // Unknown effort is its own group, not dropped or merged.
    assert!(got.contains_key(&("turbo".to_owned(), "gpt-5.2".to_owned())));
}

/// Nearest-rank percentile, computed here independently of the daemon.
fn nearest_rank<T: Ord + Copy>(values: &mut [T], percent: usize) -> T {
    values.sort();
    let rank = (values.len() * percent).div_ceil(100);
    values[rank.max(1) - 1]
}

#[tokio::test]
async fn spend_stats_give_exact_cost_and_tokens_per_request() {
    let db = TestDb::new().await;
    let server = TestServer::start(&db).await;
    let book = book();
    // 37 gpt-5.2 requests and 5 claude-haiku ones of different sizes, one unpriced.
    let mut lines = Vec::new();
    for i in 0..37u64 {
        lines.push(format!(
            r#"{{"id":"s{i}","time":"2026-05-03T10:{:02}:00Z","project":"p","provider":"openai","model":"gpt-5.2","tokens":{{"input":{},"output":{}}}}}"#,
            i,
            1000 + (i * 7919) % 20_000,
            10 + (i * 104_729) % 3000
        ));
    }
    for i in 0..5u64 {
        lines.push(format!(
            r#"{{"id":"h{i}","time":"2026-05-03T11:00:00Z","project":"p","provider":"anthropic","model":"claude-haiku-4-5","tokens":{{"input":{},"output":50}}}}"#,
            500 * (i + 1)
        ));
    }
    lines.push(r#"{"id":"u1","time":"2026-05-03T11:00:00Z","project":"p","provider":"openai","model":"gpt-9-preview","tokens":{"input":10}}"#.to_owned());
    let mut expected: BTreeMap<String, (Vec<Decimal>, Vec<u64>)> = BTreeMap::new();
    for line in &lines {
        let priced = prepare(book, line);
        let model = priced.rollup_model().to_owned();
        let (costs, tokens) = expected.entry(model).or_default();
        if let PriceOutcome::Priced(p) = &priced.price {
            costs.push(p.cost);
        }
        tokens.push(priced.record.tokens.total());
    }
    let (status, _) = server
        .post("/v1/usage", "application/x-ndjson", lines.join("\n"))
        .await;
    assert_eq!(status, 200);

    let get = |query: &str| server.get(format!("/v1/spend?from=2026-05-01&to=2026-06-01&{query}"));
    let (_, answer) = get("group_by=model&stats=true").await;
    let rows = answer["rows"].as_array().unwrap();
    assert_eq!(rows.len(), expected.len(), "{answer}");
    for row in rows {
        let model = row["model"].as_str().unwrap();
        let (costs, tokens) = expected.get_mut(model).unwrap();
        let stats = &row["stats"];
        if costs.is_empty() {
            assert!(stats["cost_usd_per_request"].is_null(), "{row}");
        } else {
            for (name, percent) in [("p50", 50), ("p95", 95), ("max", 100)] {
                let got: Decimal = stats["cost_usd_per_request"][name]
                    .as_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert_eq!(got, nearest_rank(costs, percent), "{model} {name}");
            }
        }
        for (name, percent) in [("p50", 50), ("p95", 95), ("max", 100)] {
            assert_eq!(
                stats["tokens_per_request"][name].as_u64().unwrap(),
                nearest_rank(tokens, percent),
                "{model} tokens {name}"
            );
        }
    }
    // Stats by day too; and refused where they cannot mean anything.
    let (_, by_day) = get("group_by=model,day&stats=true").await;
    assert!(
        by_day["rows"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["stats"]["tokens_per_request"]["max"].as_u64().is_some()),
        "{by_day}"
    );
    for query in [
        "stats=maybe",
        "stats=true&format=csv",
        "stats=true&group_by=model,token_type",
    ] {
        let (status, error) = get(query).await;
        assert_eq!(status, 400, "{query}");
        assert!(
            error["error"]["message"]
                .as_str()
                .unwrap()
                .contains("stats")
        );
    }
    // Without stats=true, no stats.
    let (_, plain) = get("group_by=model").await;
    assert!(plain["rows"][0].get("stats").is_none());
}

#[tokio::test]
async fn cheaper_models_of_the_same_provider_are_ranked_with_exact_costs() {
    let db = TestDb::new().await;
    let server = TestServer::start(&db).await;
    let book = book();
    let line = |i: u64, project: &str, provider: &str, model: &str| {
        format!(
            r#"{{"id":"c{i}","time":"2026-05-04T09:00:00Z","project":"{project}","provider":"{provider}","model":"{model}","tokens":{{"input":{},"cached_input":2000,"output":{}}}}}"#,
            20_000 + i * 31,
            500 + i * 7
        )
    };
    let mut lines = Vec::new();
    for i in 0..6 {
        lines.push(line(i, "search", "openai", "gpt-5.2"));
        lines.push(line(100 + i, "search", "anthropic", "claude-sonnet-4-5"));
    }
    let (status, _) = server
        .post("/v1/usage", "application/x-ndjson", lines.join("\n"))
        .await;
    assert_eq!(status, 200);
    let (_, answer) = server
        .get("/v1/whatif/cheaper?from=2026-05-01&to=2026-06-01")
        .await;
    let rows = answer["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{answer}");
    for row in rows {
        let provider = row["provider"].as_str().unwrap();
        let model = row["model"].as_str().unwrap();
        let mine: Vec<&String> = lines
            .iter()
            .filter(|l| l.contains(&format!(r#""model":"{model}""#)))
            .collect();
        let cost_on = |other: &str| -> Decimal {
            mine.iter()
                .map(|l| {
                    let moved = l.replace(
                        &format!(r#""model":"{model}""#),
                        &format!(r#""model":"{other}""#),
                    );
                    match prepare(book, &moved).price {
                        PriceOutcome::Priced(p) => p.cost,
                        // The documented rule: cached tokens a model has no cache price
                        // for count as plain input.
                        PriceOutcome::Unpriced(u) => {
                            let mut record: Value = serde_json::from_str(&moved).unwrap();
                            let tokens = record["tokens"].as_object_mut().unwrap();
                            let cached = tokens.remove("cached_input").unwrap();
                            let input =
                                tokens["input"].as_u64().unwrap() + cached.as_u64().unwrap();
                            tokens.insert("input".into(), input.into());
                            match prepare(book, &record.to_string()).price {
                                PriceOutcome::Priced(p) => p.cost,
                                PriceOutcome::Unpriced(_) => panic!("{other}: {}", u.reason),
                            }
                        }
                    }
                })
                .sum()
        };
        let actual = cost_on(model);
        assert_eq!(
            row["cost_usd"]
                .as_str()
                .unwrap()
                .parse::<Decimal>()
                .unwrap(),
            actual
        );
        let cheaper = row["cheaper"].as_array().unwrap();
        assert!(!cheaper.is_empty(), "{row}");
        let mut previous = Decimal::ZERO;
        for alternative in cheaper {
            let other = alternative["model"].as_str().unwrap();
            let cost: Decimal = alternative["cost_usd"].as_str().unwrap().parse().unwrap();
            assert_eq!(cost, cost_on(other), "{provider}/{other}");
            assert!(cost < actual && cost >= previous, "ranked, cheaper: {row}");
            assert_eq!(
                alternative["saved_usd"]
                    .as_str()
                    .unwrap()
                    .parse::<Decimal>()
                    .unwrap(),
                actual - cost
            );
            assert_ne!(other, model);
            previous = cost;
        }
        let names: Vec<&str> = cheaper
            .iter()
            .map(|c| c["model"].as_str().unwrap())
            .collect();
        match provider {
            "openai" => {
                assert!(names.contains(&"gpt-5-nano"), "{names:?}");
                assert!(!names.contains(&"gpt-5.2-pro"), "{names:?}");
            }
            _ => assert!(names.contains(&"claude-haiku-4-5"), "{names:?}"),
        }
    }
}

#[tokio::test]
async fn rate_limit_headroom_counts_the_minute_before_now_across_a_minute_boundary() {
    use llm_meter::report::headroom::{RateLimit, headroom};
    let now = chrono::DateTime::parse_from_rfc3339("2026-05-05T12:00:30Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let record = |id: &str, time: &str, model: &str| {
        format!(
            r#"{{"id":"{id}","time":"{time}","project":"p","provider":"openai","model":"{model}","tokens":{{"input":1000,"output":100}}}}"#
        )
    };
    let lines = [
        record("before", "2026-05-05T11:59:29.999Z", "gpt-5.2"),
        record("first", "2026-05-05T11:59:30Z", "gpt-5.2"),
        record("old-minute", "2026-05-05T11:59:59Z", "gpt-5.2"),
        record("new-minute", "2026-05-05T12:00:00Z", "gpt-5.2"),
        record("snapshot", "2026-05-05T12:00:05Z", "gpt-5.2-2025-12-11"),
        record("last", "2026-05-05T12:00:29.9Z", "gpt-5.2"),
        record("at-now", "2026-05-05T12:00:30Z", "gpt-5.2"),
        record("other-model", "2026-05-05T12:00:10Z", "gpt-5-mini"),
    ];
    let limit = RateLimit {
        provider: "openai".into(),
        model: "gpt-5.2".into(),
        rpm: Some(10),
        tpm: Some(11_000),
    };
    limit.check().unwrap();
    for backend in crate::store_contract::Backend::both().await {
        let store = backend.store();
        let batch = crate::store_contract::intake_batch(book(), &lines);
        store.write(&[&batch]).await.unwrap();
        let got = headroom(store.as_ref(), &limit, now).await.unwrap();
        assert_eq!(
            (got.requests, got.tokens),
            (5, 5 * 1100),
            "{}",
            backend.name()
        );
        assert_eq!(got.rpm_utilization, Some(0.5));
        assert_eq!(got.tpm_utilization, Some(0.5));
        // A minute later only the record stamped exactly at `now` is in the window.
        let later = headroom(store.as_ref(), &limit, now + chrono::Duration::seconds(60))
            .await
            .unwrap();
        assert_eq!(later.requests, 1);
        let metrics = llm_meter::metrics::Metrics::new();
        metrics.set_rate_limit_utilization(
            &limit,
            &headroom(store.as_ref(), &limit, now).await.unwrap(),
        );
        let text = metrics.render();
        assert!(
            text.contains(
                r#"llm_meter_rate_limit_utilization_ratio{kind="rpm",model="gpt-5.2",provider="openai"} 0.5"#
            ),
            "{text}"
        );
    }
    for bad in [
        RateLimit {
            rpm: None,
            tpm: None,
            ..limit.clone()
        },
        RateLimit {
            rpm: Some(0),
            ..limit.clone()
        },
    ] {
        assert!(bad.check().is_err(), "{bad:?}");
    }
}
