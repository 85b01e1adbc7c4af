//! Budgets end to end, on a real Postgres, with a real webhook receiver on loopback:
//! thresholds fire once each with the right payload and a signature checked here, a
//! receiver that fails for a while gets the alert once it recovers (same id), and two
//! `serve` processes on one database deliver each threshold exactly once.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use base64::Engine as _;
use chrono::Utc;
use hmac::{KeyInit, Mac};
use llm_meter::config::Config;
use serde_json::{Value, json};

use crate::helpers::{book, spawn_serve};
use crate::http_ingest::TestServer;
use crate::metrics::{promtool_check, sample, scrape_until};
use crate::pg::TestDb;
use crate::store_contract::{intake_batch, pg_store};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: String,
}

#[derive(Clone, Default)]
struct ReceiverState {
    received: Arc<Mutex<Vec<Received>>>,
    /// Requests to answer 503 before accepting.
    failures_left: Arc<Mutex<u32>>,
}

/// A webhook receiver on 127.0.0.1:0 that records every request.
pub struct Receiver {
    pub url: String,
    state: ReceiverState,
}

async fn receive(
    State(state): State<ReceiverState>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let received = Received {
        path: uri.path().to_owned(),
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    state.received.lock().unwrap().push(received);
    let mut failures = state.failures_left.lock().unwrap();
    if *failures > 0 {
        *failures -= 1;
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [("retry-after", "0")],
            "down for now",
        )
    } else {
        (StatusCode::OK, [("retry-after", "0")], "ok")
    }
}

impl Receiver {
    pub async fn start(failures: u32) -> Receiver {
        let state = ReceiverState {
            failures_left: Arc::new(Mutex::new(failures)),
            ..ReceiverState::default()
        };
        let app = axum::Router::new()
            .fallback(receive)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver { url, state }
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    /// Waits (polling) until `ready` holds for what was received.
    pub async fn wait_for(&self, what: &str, ready: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let received = self.received();
            if ready(&received) {
                return received;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; got {received:#?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Checks a Standard Webhooks signature independently of the daemon's code.
fn signature_is_valid(received: &Received) -> bool {
    let header = |name: &str| received.headers[name].to_str().unwrap().to_owned();
    let key = base64::engine::general_purpose::STANDARD
        .decode(SECRET.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(
        format!(
            "{}.{}.{}",
            header("webhook-id"),
            header("webhook-timestamp"),
            received.body
        )
        .as_bytes(),
    );
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    header("webhook-signature")
        .split(' ')
        .any(|s| s == format!("v1,{expected}"))
}

fn alerting_config(db: &TestDb) -> Config {
    let mut config = Config::from_toml(
        "[webhooks]\nallow = [\"127.0.0.1\"]\npoll_interval = \"50ms\"\n\
         [alerts]\ndebounce = \"10ms\"\nevaluate_interval = \"1h\"\n",
    )
    .unwrap();
    config.database_url = Some(db.url.clone());
    config
}

/// A record costing `dollars` of claude-haiku-4-5 input ($1 per 1M tokens), now.
fn record(id: &str, project: &str, dollars: u64) -> String {
    format!(
        r#"{{"id":"{id}","time":"{}","project":"{project}","provider":"anthropic","model":"claude-haiku-4-5","tokens":{{"input":{}}}}}"#,
        Utc::now().to_rfc3339(),
        dollars * 1_000_000
    )
}

async fn request(
    server: &TestServer,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    server.call(None, method, path, body).await
}

#[tokio::test]
async fn thresholds_fire_once_each_with_a_signed_payload() {
    let db = TestDb::new().await;
    let receiver = Receiver::start(0).await;
    let server = TestServer::start_with(alerting_config(&db)).await;
    let (status, budget) = request(
        &server,
        reqwest::Method::POST,
        "/v1/budgets",
        Some(json!({
            "name": "search-monthly", "project": "search", "limit_usd": "10", "period": "month",
            "thresholds": [0.5, 0.8, 1.0, {"usd": "2"}],
            "webhooks": [
                {"url": format!("{}/json", receiver.url), "format": "json", "secret": SECRET},
                {"url": format!("{}/slack", receiver.url), "format": "slack"}
            ]
        })),
    )
    .await;
    assert_eq!(status, 201, "{budget}");
    let id = budget["id"].as_str().unwrap().to_owned();

    // $6: past $2 and 50%, in that order. Another project's spend does not count.
    let (status, _) = server
        .post(
            "/v1/usage",
            "application/x-ndjson",
            format!(
                "{}\n{}",
                record("r1", "search", 6),
                record("o1", "other", 50)
            ),
        )
        .await;
    assert_eq!(status, 200);
    let got = receiver
        .wait_for("two alerts on two webhooks", |r| r.len() >= 4)
        .await;
    let json_bodies: Vec<Value> = got
        .iter()
        .filter(|r| r.path == "/json")
        .map(|r| serde_json::from_str(&r.body).unwrap())
        .collect();
    let thresholds: Vec<&str> = json_bodies
        .iter()
        .map(|b| b["threshold_usd"].as_str().unwrap())
        .collect();
    assert_eq!(thresholds, ["2", "5"]);
    for (body, received) in json_bodies
        .iter()
        .zip(got.iter().filter(|r| r.path == "/json"))
    {
        assert!(signature_is_valid(received), "bad signature: {received:?}");
        assert_eq!(body["type"], "budget.threshold");
        assert_eq!(body["budget_id"], id.as_str());
        assert_eq!(body["budget"], "search-monthly");
        assert_eq!(body["project"], "search");
        assert_eq!(body["spend_usd"], "6");
        assert_eq!(body["limit_usd"], "10");
        assert!(body["id"].as_str().unwrap().starts_with("alrt_"));
        assert!(
            body["period_start"]
                .as_str()
                .unwrap()
                .ends_with("-01T00:00:00Z")
        );
    }
    assert_eq!(json_bodies[1]["threshold"], 0.5);
    let slack: Vec<&Received> = got.iter().filter(|r| r.path == "/slack").collect();
    assert_eq!(slack.len(), 2);
    let text: Value = serde_json::from_str(&slack[1].body).unwrap();
    assert!(
        text["text"].as_str().unwrap().contains("search-monthly")
            && text["text"].as_str().unwrap().contains("50%"),
        "{text}"
    );

    // $3 more: 80%. The same record again: nothing. $2 more: 100%.
    server
        .post("/v1/usage", "application/json", record("r2", "search", 3))
        .await;
    server
        .post("/v1/usage", "application/json", record("r2", "search", 3))
        .await;
    receiver.wait_for("the 80% alert", |r| r.len() >= 6).await;
    server
        .post("/v1/usage", "application/json", record("r3", "search", 2))
        .await;
    let got = receiver.wait_for("the 100% alert", |r| r.len() >= 8).await;

    // Once each: four alerts, one delivery per webhook each, every id distinct.
    // The receiver has answered; the attempts are recorded just after.
    let alerts = loop {
        let (_, alerts) = request(
            &server,
            reqwest::Method::GET,
            &format!("/v1/alerts?budget={id}"),
            None,
        )
        .await;
        let alerts = alerts["alerts"].as_array().unwrap().clone();
        let delivered = alerts.iter().all(|a| {
            a["deliveries"]
                .as_array()
                .unwrap()
                .iter()
                .all(|d| d["status"] == "delivered")
        });
        if delivered {
            break alerts;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let keys: Vec<&str> = alerts
        .iter()
        .map(|a| a["threshold"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["1", "0.8", "0.5", "usd:2"], "newest first");
    let ids: std::collections::HashSet<String> = got
        .iter()
        .filter(|r| r.path == "/json")
        .map(|r| r.headers["webhook-id"].to_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 4);
    for alert in &alerts {
        for delivery in alert["deliveries"].as_array().unwrap() {
            assert_eq!(delivery["status"], "delivered", "{alert}");
            assert_eq!(delivery["attempts"], 1);
        }
    }
    // The same state in /metrics, clean under promtool.
    let series = |name: &str| format!(r#"{name}{{budget="search-monthly"}}"#);
    let metrics = scrape_until(&server, |body| {
        sample(body, &series("llm_meter_budget_spend_usd")) == Some(11.0)
            && sample(
                body,
                r#"llm_meter_webhook_deliveries_total{outcome="delivered"}"#,
            ) == Some(8.0)
    })
    .await;
    assert_eq!(
        sample(&metrics, &series("llm_meter_budget_limit_usd")),
        Some(10.0)
    );
    assert_eq!(
        sample(&metrics, &series("llm_meter_budget_utilization_ratio")),
        Some(1.1)
    );
    assert_eq!(
        sample(
            &metrics,
            r#"llm_meter_alerts_total{budget="search-monthly",kind="threshold"}"#
        ),
        Some(4.0)
    );
    promtool_check(&metrics);

    // A later evaluation fires nothing again.
    server.daemon.stop().await.unwrap();
    assert_eq!(receiver.received().len(), 8);

    // Status after a restart: spend from the store, the alerts of this period.
    let server = TestServer::start_with(alerting_config(&db)).await;
    let (_, status) = request(
        &server,
        reqwest::Method::GET,
        &format!("/v1/budgets/{id}/status"),
        None,
    )
    .await;
    assert_eq!(status["spend_usd"], "11");
    assert_eq!(status["limit_usd"], "10");
    assert_eq!(status["remaining_usd"], "0");
    assert_eq!(status["utilization"], "1.1");
    assert_eq!(status["exceeded"], true);
    assert_eq!(status["alerts"].as_array().unwrap().len(), 4);
    assert!(
        status["forecast_method"]
            .as_str()
            .unwrap()
            .contains("7 days")
    );
}

#[tokio::test]
async fn a_budget_created_over_a_threshold_alerts_and_a_hard_one_blocks() {
    let db = TestDb::new().await;
    let receiver = Receiver::start(0).await;
    let server = TestServer::start_with(alerting_config(&db)).await;
    server
        .post("/v1/usage", "application/json", record("r1", "ads", 9))
        .await;
    let (status, budget) = request(
        &server,
        reqwest::Method::POST,
        "/v1/budgets",
        Some(json!({
            "name": "ads-daily", "project": "ads", "limit_usd": 8, "period": "day", "hard": true,
            "thresholds": [0.5, 1.0],
            "webhooks": [{"url": format!("{}/j", receiver.url)}]
        })),
    )
    .await;
    assert_eq!(status, 201, "{budget}");
    // The generated secret is shown once, masked afterwards.
    let secret = budget["webhooks"][0]["secret"].as_str().unwrap();
    assert!(
        secret.starts_with("whsec_") && secret.len() > 20,
        "{secret}"
    );
    let id = budget["id"].as_str().unwrap();
    let (_, shown) = request(
        &server,
        reqwest::Method::GET,
        &format!("/v1/budgets/{id}"),
        None,
    )
    .await;
    assert_eq!(shown["webhooks"][0]["secret"], "whsec_********");
    // What GET shows can be PUT back as it is: the masked secret means "keep it".
    let mut same = shown.clone();
    for field in ["id", "source", "created_at", "updated_at"] {
        same.as_object_mut().unwrap().remove(field);
    }
    let (status, answer) = request(
        &server,
        reqwest::Method::PUT,
        &format!("/v1/budgets/{id}"),
        Some(same),
    )
    .await;
    assert_eq!(status, 200, "{answer}");

    let got = receiver
        .wait_for("both thresholds at once", |r| r.len() >= 2)
        .await;
    let thresholds: Vec<Value> = got
        .iter()
        .map(|r| serde_json::from_str::<Value>(&r.body).unwrap()["threshold"].clone())
        .collect();
    assert_eq!(thresholds, [json!(0.5), json!(1.0)], "in threshold order");

    let (_, check) = request(
        &server,
        reqwest::Method::GET,
        "/v1/budgets/check?project=ads&model=claude-haiku-4-5",
        None,
    )
    .await;
    assert_eq!(check["allowed"], false, "{check}");
    assert_eq!(check["budgets"][0]["budget"], "ads-daily");
    let (_, check) = request(
        &server,
        reqwest::Method::GET,
        "/v1/budgets/check?project=search",
        None,
    )
    .await;
    assert_eq!(check["allowed"], true, "{check}");
    assert_eq!(check["budgets"].as_array().unwrap().len(), 0);

    // Raising the limit lifts the block at once.
    let (status, _) = request(
        &server,
        reqwest::Method::PUT,
        &format!("/v1/budgets/{id}"),
        Some(json!({"name": "ads-daily", "project": "ads", "limit_usd": "100", "period": "day", "hard": true,
                    "webhooks": [{"url": format!("{}/j", receiver.url)}]})),
    )
    .await;
    assert_eq!(status, 200);
    let (_, check) = request(
        &server,
        reqwest::Method::GET,
        "/v1/budgets/check?project=ads",
        None,
    )
    .await;
    assert_eq!(check["allowed"], true, "{check}");
    assert_eq!(check["budgets"][0]["remaining_usd"], "91");

    // Invalid budgets name their field; private targets are refused; names are unique.
    for (body, field) in [
        (
            json!({"name": "x", "limit_usd": "-1", "period": "day"}),
            "limit_usd",
        ),
        (
            json!({"name": "x", "limit_usd": "1", "period": "daily"}),
            "period",
        ),
        (
            json!({"name": "x", "limit_usd": "1", "period": "day", "timezone": "Nowhere/City"}),
            "timezone",
        ),
        (
            json!({"name": "x", "limit_usd": "1", "period": "day", "webhooks": [{"url": "http://10.0.0.5/hook"}]}),
            "webhooks[0].url",
        ),
        (
            json!({"name": "x", "limit_usd": "1", "period": "day", "webhooks": [{"url": "http://169.254.169.254/"}]}),
            "webhooks[0].url",
        ),
    ] {
        let (status, answer) = request(
            &server,
            reqwest::Method::POST,
            "/v1/budgets",
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, 400, "{body}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("invalid {field}:")),
            "{body}: {message}"
        );
    }
    let (status, _) = request(
        &server,
        reqwest::Method::POST,
        "/v1/budgets",
        Some(json!({"name": "ads-daily", "limit_usd": "1", "period": "day"})),
    )
    .await;
    assert_eq!(status, 409);
    let (status, _) = request(
        &server,
        reqwest::Method::DELETE,
        &format!("/v1/budgets/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = request(
        &server,
        reqwest::Method::GET,
        &format!("/v1/budgets/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_failing_receiver_gets_the_alert_once_it_recovers_with_the_same_id() {
    let db = TestDb::new().await;
    let receiver = Receiver::start(2).await;
    let server = TestServer::start_with(alerting_config(&db)).await;
    let (status, _) = request(
        &server,
        reqwest::Method::POST,
        "/v1/budgets",
        Some(
            json!({"name": "b", "limit_usd": "1", "period": "month", "thresholds": [1.0],
                    "webhooks": [{"url": receiver.url.clone(), "secret": SECRET}]}),
        ),
    )
    .await;
    assert_eq!(status, 201);
    server
        .post("/v1/usage", "application/json", record("r1", "p", 2))
        .await;
    let got = receiver
        .wait_for("two failures and a success", |r| r.len() >= 3)
        .await;
    let ids: Vec<&str> = got
        .iter()
        .map(|r| r.headers["webhook-id"].to_str().unwrap())
        .collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    assert!(got.iter().all(signature_is_valid));
    assert!(
        got.iter().all(|r| r.body == got[0].body),
        "the payload is stable"
    );
    // Then nothing more: delivered once.
    let deliveries = server.daemon.store.deliveries(None).await.unwrap();
    let delivery = loop {
        let deliveries = server.daemon.store.deliveries(None).await.unwrap();
        if deliveries[0].status == llm_meter::store::DeliveryStatus::Delivered {
            break deliveries[0].clone();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(deliveries.len(), 1);
    assert_eq!(delivery.attempts, 3);
    let attempts = server
        .daemon
        .store
        .delivery_attempts(&delivery.id)
        .await
        .unwrap();
    let codes: Vec<Option<u16>> = attempts.iter().map(|a| a.status_code).collect();
    assert_eq!(codes, [Some(503), Some(503), Some(200)]);
    assert_eq!(attempts[0].response.as_deref(), Some("down for now"));
    server.daemon.stop().await.unwrap();
    assert_eq!(receiver.received().len(), 3);
}

#[tokio::test]
async fn two_serve_processes_on_one_database_deliver_each_threshold_once() {
    let db = TestDb::new().await;
    let receiver = Receiver::start(0).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("llm-meter.toml");
    std::fs::write(
        &config,
        format!(
            "database_url = \"{}\"\n\
             [alerts]\nevaluate_interval = \"50ms\"\n\
             [webhooks]\nallow = [\"127.0.0.1\"]\npoll_interval = \"20ms\"\n\
             [[budgets]]\nname = \"shared\"\nlimit_usd = \"20\"\nperiod = \"month\"\n\
             thresholds = [0.25, 0.5, 0.75, 1.0]\n\
             webhooks = [{{ url = \"{}/hook\", secret = \"{SECRET}\" }}]\n",
            db.url, receiver.url
        ),
    )
    .unwrap();
    let mut daemons = [spawn_serve(&config), spawn_serve(&config)];
    // Records written by a third party: both daemons see them on their timer and race.
    let store = pg_store(&db).await;
    let book = book();
    for (step, dollars) in [(0, 6), (1, 5), (2, 5), (3, 6)] {
        let batch = intake_batch(book, &[record(&format!("x{step}"), "p", dollars)]);
        llm_meter::store::UsageStore::write(store.as_ref(), &[&batch])
            .await
            .unwrap();
        receiver
            .wait_for("the next threshold", |r| r.len() > step)
            .await;
    }
    // Let both keep evaluating for a while: still one delivery per threshold.
    let settle = Instant::now() + Duration::from_millis(600);
    while Instant::now() < settle {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for daemon in &mut daemons {
        daemon.kill().unwrap();
        daemon.wait().unwrap();
    }
    let got = receiver.received();
    let mut by_threshold: BTreeMap<String, usize> = BTreeMap::new();
    for received in &got {
        assert!(signature_is_valid(received));
        let body: Value = serde_json::from_str(&received.body).unwrap();
        *by_threshold
            .entry(body["threshold_usd"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    assert_eq!(
        by_threshold,
        BTreeMap::from([
            ("5".into(), 1),
            ("10".into(), 1),
            ("15".into(), 1),
            ("20".into(), 1)
        ])
    );
    let alerts = llm_meter::store::BudgetStore::alerts(
        store.as_ref(),
        &llm_meter::store::AlertQuery {
            limit: 100,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(alerts.len(), 4);
}

/// A record costing `dollars` at `time`.
fn record_at(id: &str, project: &str, dollars: u64, time: chrono::DateTime<Utc>) -> String {
    format!(
        r#"{{"id":"{id}","time":"{}","project":"{project}","provider":"anthropic","model":"claude-haiku-4-5","tokens":{{"input":{}}}}}"#,
        time.to_rfc3339(),
        dollars * 1_000_000
    )
}

#[tokio::test]
async fn a_daily_digest_reports_yesterday_once_across_restarts() {
    let db = TestDb::new().await;
    let receiver = Receiver::start(0).await;
    let today = Utc::now()
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc();
    let yesterday = today - chrono::Duration::days(1);
    // Yesterday: search $3 + $4, ads $2. Before yesterday and today: not in the digest.
    let store = pg_store(&db).await;
    let lines = [
        record_at("d1", "search", 3, yesterday + chrono::Duration::hours(1)),
        record_at("d2", "search", 4, today - chrono::Duration::seconds(1)),
        record_at("d3", "ads", 2, yesterday),
        record_at("d4", "ads", 50, yesterday - chrono::Duration::seconds(1)),
        record_at("d5", "ads", 70, today),
    ];
    let batch = intake_batch(book(), &lines);
    llm_meter::store::UsageStore::write(store.as_ref(), &[&batch])
        .await
        .unwrap();

    // A budget too, so that an alert shows when the second daemon's loop has run.
    let mut config = Config::from_toml(&format!(
        r#"
[webhooks]
allow = ["127.0.0.1"]
poll_interval = "50ms"
[alerts]
debounce = "10ms"
evaluate_interval = "1h"
[[digests]]
name = "daily"
cron = "0 0 0 * * *"
webhook = {{ url = "{url}/digest", secret = "{SECRET}" }}
[[budgets]]
name = "ads-daily"
project = "ads"
limit_usd = "1000"
period = "day"
thresholds = [{{ usd = "100" }}]
webhooks = [{{ url = "{url}/alert", secret = "{SECRET}" }}]
"#,
        url = receiver.url
    ))
    .unwrap();
    config.database_url = Some(db.url.clone());
    // The first evaluation at startup sends the digest of the day that ended at midnight.
    let server = TestServer::start_with(config.clone()).await;
    let got = receiver
        .wait_for("the digest", |r| r.iter().any(|r| r.path == "/digest"))
        .await;
    let digest = got.iter().find(|r| r.path == "/digest").unwrap();
    assert!(signature_is_valid(digest));
    let body: Value = serde_json::from_str(&digest.body).unwrap();
    assert_eq!(body["type"], "spend.digest");
    assert_eq!(body["digest"], "daily");
    assert_eq!(
        body["period_start"].as_str().unwrap(),
        yesterday.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
    );
    assert_eq!(
        body["period_end"].as_str().unwrap(),
        today.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
    );
    assert_eq!(body["total_usd"], "9");
    let mut rows: Vec<(String, String, u64)> = body["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["project"].as_str().unwrap().to_owned(),
                r["cost_usd"].as_str().unwrap().to_owned(),
                r["requests"].as_u64().unwrap(),
            )
        })
        .collect();
    rows.sort();
    assert_eq!(
        rows,
        [
            ("ads".into(), "2".into(), 1),
            ("search".into(), "7".into(), 2)
        ]
    );

    // A restart does not send the same digest again. The loop evaluates at startup before
    // it looks at commits, so once the alert below arrives, that evaluation has run.
    server.daemon.stop().await.unwrap();
    let server = TestServer::start_with(config).await;
    let (status, _) = server
        .post("/v1/usage", "application/x-ndjson", record("r1", "ads", 40))
        .await;
    assert_eq!(status, 200);
    let got = receiver
        .wait_for("the alert", |r| r.iter().any(|r| r.path == "/alert"))
        .await;
    server.daemon.stop().await.unwrap();
    let digests = got.iter().filter(|r| r.path == "/digest").count();
    assert_eq!(digests, 1, "{got:#?}");
}

#[tokio::test]
async fn a_crossing_committed_at_the_period_boundary_still_alerts_for_its_period() {
    for backend in crate::store_contract::Backend::both().await {
        let store = backend.store();
        let engine = engine_on(store.clone());
        let spec = llm_meter::budget::parse_spec(
            br#"{"name":"daily","project":"p","limit_usd":"10","period":"day","thresholds":[1]}"#,
        )
        .unwrap();
        let budget = llm_meter::budget::Budget::new("bud_boundary".into(), spec).unwrap();
        let midnight = chrono::DateTime::parse_from_rfc3339("2026-05-02T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        // $12 in the last second of May 1, evaluated just after midnight (the debounce).
        let line = r#"{"id":"late","time":"2026-05-01T23:59:59.9Z","project":"p","provider":"anthropic","model":"claude-haiku-4-5","tokens":{"input":12000000}}"#.to_owned();
        let batch = intake_batch(book(), &[line]);
        store.write(&[&batch]).await.unwrap();
        let status = engine
            .evaluate(&budget, midnight + chrono::Duration::milliseconds(100))
            .await
            .unwrap();
        assert_eq!(
            status.spend.to_string(),
            "0",
            "{}: the new day",
            backend.name()
        );
        // An hour later the old day is closed: nothing more, and nothing twice.
        engine
            .evaluate(&budget, midnight + chrono::Duration::minutes(90))
            .await
            .unwrap();
        let alerts = store
            .alerts(&llm_meter::store::AlertQuery {
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(alerts.len(), 1, "{}: {alerts:?}", backend.name());
        assert_eq!(alerts[0].period_start, midnight - chrono::Duration::days(1));
        assert_eq!(alerts[0].spend.to_string(), "12");
    }
}

#[tokio::test]
async fn raising_the_limit_mid_period_lets_its_fractions_alert_again_once() {
    let backend = crate::store_contract::Backend::sqlite().await;
    let store = backend.store();
    let engine = engine_on(store.clone());
    let budget = |limit: &str| {
        let spec = llm_meter::budget::parse_spec(
            format!(r#"{{"name":"m","project":"p","limit_usd":"{limit}","period":"month","thresholds":[1]}}"#)
                .as_bytes(),
        )
        .unwrap();
        llm_meter::budget::Budget::new("bud_raise".into(), spec).unwrap()
    };
    let now = Utc::now();
    let spend = |id: &str, dollars: u64| intake_batch(book(), &[record(id, "p", dollars)]);
    let count = || async {
        store
            .alerts(&llm_meter::store::AlertQuery {
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap()
            .len()
    };
    store.write(&[&spend("r1", 12)]).await.unwrap();
    engine.evaluate(&budget("10"), now).await.unwrap();
    assert_eq!(count().await, 1);
    // Raised to $20: 100% is now $20, not reached yet; then reached, once.
    engine.evaluate(&budget("20"), now).await.unwrap();
    assert_eq!(count().await, 1);
    store.write(&[&spend("r2", 10)]).await.unwrap();
    engine.evaluate(&budget("20"), now).await.unwrap();
    engine.evaluate(&budget("20"), now).await.unwrap();
    assert_eq!(count().await, 2);
}

/// A budget engine on `store`, driven by hand (`evaluate` with a chosen time).
fn engine_on(store: Arc<dyn llm_meter::store::Store>) -> llm_meter::budget::engine::Engine {
    llm_meter::budget::engine::Engine::new(
        store,
        Arc::new(llm_meter::metrics::Metrics::new()),
        Arc::new(llm_meter::ingest::Changes::default()),
        Arc::new(tokio::sync::Notify::new()),
        llm_meter::budget::engine::AlertsConfig::default(),
        Duration::from_secs(3600),
        &[],
    )
    .unwrap()
}
