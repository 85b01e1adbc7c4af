//! Prices kept current while running: daemons that sync a LiteLLM catalog served by a
//! local HTTP server every second. The real file (as the `litellm` package ships it)
//! changes nothing; a copy with one price changed, one model added and one malformed
//! entry is applied (the new model's stored records priced, audited; the changed price
//! from the sync on), and copies that are truncated, shrunk, jump a price 20× or cannot
//! be fetched are refused, counted on /metrics, leaving the last good prices. On Postgres
//! two replicas record each change once and answer alike.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use llm_meter::config::Config;
use serde_json::{Map, Value};

use crate::helpers::book;
use crate::http_ingest::TestServer;
use crate::metrics::{sample, scrape};
use crate::store_contract::Backend;

/// What the catalog server answers.
#[derive(Clone)]
enum Served {
    Body(String),
    Unavailable,
}

/// A local server answering `GET /catalog.json` with whatever `Served` says now.
async fn catalog_server() -> (String, Arc<Mutex<Served>>) {
    let served = Arc::new(Mutex::new(Served::Unavailable));
    let state = served.clone();
    let app = axum::Router::new().route(
        "/catalog.json",
        axum::routing::get(move || {
            let state = state.clone();
            async move {
                match state.lock().unwrap().clone() {
                    Served::Body(body) => (axum::http::StatusCode::OK, body),
                    Served::Unavailable => {
                        (axum::http::StatusCode::SERVICE_UNAVAILABLE, String::new())
                    }
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/catalog.json", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, served)
}

fn real_catalog() -> Map<String, Value> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/catalogs");
    let path = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("litellm")
        })
        .unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap()),
        &mut text,
    )
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

/// A chat model whose price in force comes from the LiteLLM catalog (no curated sheet or
/// genai-prices speaks for it), with its input rate per token.
fn litellm_only_model(catalog: &Map<String, Value>) -> (String, String, f64) {
    catalog
        .iter()
        .filter(|(key, _)| !key.contains('/'))
        .find_map(|(key, entry)| {
            let provider =
                llm_meter::providers::canonical(entry.get("litellm_provider")?.as_str()?);
            let input = entry.get("input_cost_per_token")?.as_f64()?;
            let from_litellm = book()
                .resolve(&provider, key)?
                .model
                .sheet
                .starts_with("catalog/litellm.json");
            (from_litellm && input > 0.0 && entry.get("mode")?.as_str()? == "chat")
                .then(|| (provider, key.clone(), input))
        })
        .expect("a model only LiteLLM prices")
}

fn config(url: &str, store_url: &str) -> Config {
    Config::from_toml(&format!(
        r#"
database_url = "{store_url}"
[metrics]
refresh_interval = "100ms"
[pricing.sync]
schedule = "* * * * * *"
[[pricing.sync.sources]]
name = "litellm"
format = "litellm"
url = "{url}"
"#
    ))
    .unwrap()
}

/// Polls until `ready` says yes, or fails with `what` after 60 s.
async fn until<T>(what: &str, mut ready: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(value) = ready().await {
            return value;
        }
        assert!(Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn failures(server: &TestServer, reason: &str) -> f64 {
    sample(
        &scrape(server).await,
        &format!(r#"llm_meter_pricing_sync_failures_total{{reason="{reason}",source="litellm"}}"#),
    )
    .unwrap_or(0.0)
}

async fn price(server: &TestServer, provider: &str, model: &str, date: &str) -> Value {
    let (status, answer) = server
        .get(format!(
            "/v1/prices?provider={provider}&model={model}&date={date}"
        ))
        .await;
    assert_eq!(status, 200, "{answer}");
    answer
}

async fn sync_scenario(backend: &Backend, replicas: usize) {
    let (url, served) = catalog_server().await;
    let catalog = real_catalog();
    let mut servers = Vec::new();
    for _ in 0..replicas {
        servers.push(TestServer::start_with(config(&url, backend.url())).await);
    }
    let store = backend.store();
    let (provider, changed, input) = litellm_only_model(&catalog);

    // A record of a model no catalog knows yet: stored without a price.
    let novel = r#"{"id":"novel-1","time":"2026-06-01T10:00:00Z","project":"p","provider":"openai","model":"novel-model-x","tokens":{"input":1000000,"output":1000000}}"#;
    let (status, answer) = servers[0]
        .post("/v1/usage", "application/x-ndjson", novel.to_owned())
        .await;
    assert_eq!(status, 200, "{answer}");
    let unpriced = async || -> u64 {
        let (_, spend) = servers[0]
            .get("/v1/spend?from=2026-06-01&to=2026-06-02")
            .await;
        spend["rows"][0]["unpriced_requests"].as_u64().unwrap_or(0)
    };
    assert_eq!(unpriced().await, 1);

    // The real catalog: accepted, nothing to change, one row however many replicas.
    *served.lock().unwrap() = Served::Body(Value::Object(catalog.clone()).to_string());
    until("the real catalog is synced", async || {
        let syncs = store.price_syncs().await.unwrap();
        (syncs.len() == 1).then_some(())
    })
    .await;
    let first = &store.price_syncs().await.unwrap()[0];
    assert_eq!(first.changed_models, 0, "{first:?}");
    let before_change = chrono::Utc::now();
    let old_price = price(&servers[0], &provider, &changed, "2026-06-01").await;

    // One price changed (×2), one model added, one entry malformed.
    let mut modified = catalog.clone();
    modified[&changed]["input_cost_per_token"] = (input * 2.0).into();
    modified.insert(
        "novel-model-x".into(),
        serde_json::json!({"litellm_provider": "openai", "mode": "chat",
            "input_cost_per_token": 0.000002, "output_cost_per_token": 0.000008}),
    );
    modified.insert(
        "broken-entry".into(),
        serde_json::json!({"litellm_provider": "openai", "mode": "chat",
            "input_cost_per_token": "two dollars", "output_cost_per_token": 0.000008}),
    );
    *served.lock().unwrap() = Served::Body(Value::Object(modified.clone()).to_string());
    until("the change is recorded", async || {
        (store.price_syncs().await.unwrap().len() == 2).then_some(())
    })
    .await;
    let syncs = store.price_syncs().await.unwrap();
    assert_eq!(syncs.len(), 2, "one row per change, replicas or not");
    assert_eq!(syncs[1].changed_models, 2, "{:?}", syncs[1]);
    assert_eq!(syncs[1].parent_hash, syncs[0].content_hash);

    // Every replica prices alike: the new model, and the changed price from the sync on.
    for server in &servers {
        let novel_price = until("the new model is priced", async || {
            let (status, answer) = server
                .get("/v1/prices?provider=openai&model=novel-model-x")
                .await;
            (status == 200).then_some(answer)
        })
        .await;
        assert_eq!(novel_price["rates"]["standard"]["input"], "2");
        assert_eq!(novel_price["rates"]["standard"]["output"], "8");
        assert_eq!(novel_price["layer"], "synced");
        assert_eq!(
            novel_price["price_from"], "2000-01-01",
            "a first price applies to the past"
        );
        let now = price(server, &provider, &changed, "2099-01-01").await;
        let then = price(server, &provider, &changed, "2026-06-01").await;
        assert_eq!(
            then["rates"], old_price["rates"],
            "the past keeps its price"
        );
        assert_ne!(now["rates"], then["rates"]);
        let synced_from: chrono::DateTime<chrono::Utc> =
            now["price_from"].as_str().unwrap().parse().unwrap();
        assert!(synced_from >= before_change - chrono::Duration::seconds(1));
    }
    // The stored record of the new model is priced, in an audited step.
    until("the stored record is priced", async || {
        (unpriced().await == 0).then_some(())
    })
    .await;
    let (_, spend) = servers[0]
        .get("/v1/spend?from=2026-06-01&to=2026-06-02")
        .await;
    assert_eq!(
        spend["total_cost_usd"], "10",
        "1M tokens in at $2 + 1M out at $8"
    );
    let audits = store.reprice_audits(10).await.unwrap();
    assert!(
        audits
            .iter()
            .any(|a| a.scope.actor.starts_with("pricing-sync:litellm")
                && a.summary.newly_priced == 1),
        "{audits:?}"
    );
    // Records priced after the sync use the new price; earlier ones keep the old.
    let now = chrono::Utc::now();
    let records = [
        ("old", "2026-06-01T12:00:00Z".to_owned()),
        ("new", now.to_rfc3339()),
    ];
    for (id, time) in &records {
        let line = format!(
            r#"{{"id":"{id}","time":"{time}","project":"q","provider":"{provider}","model":"{changed}","tokens":{{"input":1000000,"output":0}}}}"#
        );
        let (status, answer) = servers[0]
            .post("/v1/usage", "application/x-ndjson", line)
            .await;
        assert_eq!(status, 200, "{answer}");
    }
    let cost_on = async |from: String, to: String| -> String {
        let (_, spend) = servers[0]
            .get(format!("/v1/spend?project=q&from={from}&to={to}"))
            .await;
        spend["total_cost_usd"].as_str().unwrap().to_owned()
    };
    let new_price = price(&servers[0], &provider, &changed, "2099-01-01").await;
    assert_eq!(
        cost_on("2026-06-01".into(), "2026-06-02".into()).await,
        old_price["rates"]["standard"]["input"].as_str().unwrap(),
        "1M input tokens before the sync cost the old rate"
    );
    let hour = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:00:00Z").to_string();
    assert_eq!(
        cost_on(hour(now), hour(now + chrono::Duration::hours(1))).await,
        new_price["rates"]["standard"]["input"].as_str().unwrap(),
        "and after it the new one"
    );

    // Refused whole, counted, the last good prices stay: truncated, shrunk, a 20× jump,
    // unreachable.
    let good = price(&servers[0], "openai", "novel-model-x", "2099-01-01").await;
    let text = Value::Object(modified.clone()).to_string();
    let mut shrunk = modified.clone();
    let keys: Vec<String> = shrunk.keys().cloned().collect();
    for key in keys.iter().step_by(2) {
        shrunk.remove(key);
    }
    let mut jumped = modified.clone();
    jumped[&changed]["input_cost_per_token"] = (input * 40.0).into();
    for (reason, body) in [
        ("malformed", Served::Body(text[..text.len() / 2].to_owned())),
        ("shrunk", Served::Body(Value::Object(shrunk).to_string())),
        (
            "price_jump",
            Served::Body(Value::Object(jumped).to_string()),
        ),
        ("unreachable", Served::Unavailable),
    ] {
        *served.lock().unwrap() = body;
        until(&format!("a {reason} catalog is refused"), async || {
            (failures(&servers[0], reason).await > 0.0).then_some(())
        })
        .await;
        assert_eq!(
            store.price_syncs().await.unwrap().len(),
            2,
            "{reason}: nothing recorded"
        );
        assert_eq!(
            price(&servers[0], "openai", "novel-model-x", "2099-01-01").await,
            good,
            "{reason}: the last good prices stay"
        );
    }
    // The malformed entry was skipped and counted by each replica that read that catalog
    // (whichever recorded it); every replica synced successfully.
    let mut skipped = 0.0;
    for server in &servers {
        let body = scrape(server).await;
        skipped += sample(
            &body,
            r#"llm_meter_pricing_sync_skipped_entries_total{source="litellm"}"#,
        )
        .unwrap_or(0.0);
        assert!(
            sample(
                &body,
                r#"llm_meter_pricing_sync_last_success_timestamp_seconds{source="litellm"}"#
            )
            .is_some_and(|t| t > 0.0),
            "{body}"
        );
    }
    assert!(
        (1.0..=servers.len() as f64).contains(&skipped),
        "the malformed entry is counted by the replicas that read it: {skipped}"
    );
    for server in servers {
        server.daemon.stop().await.unwrap();
    }
}

#[tokio::test]
async fn a_synced_catalog_is_applied_or_refused_on_sqlite() {
    sync_scenario(&Backend::sqlite().await, 1).await;
}

#[tokio::test]
async fn two_replicas_on_postgres_record_each_change_once_and_price_alike() {
    sync_scenario(&Backend::postgres().await, 2).await;
}
