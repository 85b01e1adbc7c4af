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
        let priced = prepare(&book, &record.to_string());
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

    let response = server
        .client
        .get(format!(
            "{}/v1/spend?from=2026-05-01&to=2026-06-01&group_by=reasoning_effort,model",
            server.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let spend: Value = response.json().await.unwrap();
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
