//! Containment: what one client sends can fail only its own records. Poison records
//! (sums that would pass what a rollup column keeps, labels too long for an index,
//! projects that could never be selected) mixed into other projects' traffic, on both
//! stores, through the pipeline and over HTTP.

use std::sync::Arc;
use std::time::Duration;

use llm_meter::config::Config;
use llm_meter::ingest::{Pipeline, PipelineConfig, REFUSED_CODE};
use llm_meter::metrics::Metrics;
use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::helpers::{book, prepare};
use crate::http_ingest::TestServer;
use crate::store_contract::{Backend, expected, generated_lines, intake_batch};

/// A record of `model` with a billion output tokens (the most one bucket may hold) in
/// one hour of project `attacker`.
fn poison(id: &str) -> String {
    format!(
        r#"{{"id":"{id}","time":"2026-04-01T10:00:00Z","project":"attacker","provider":"openai","model":"o1-pro","tokens":{{"output":1000000000}}}}"#
    )
}

/// How many poison records fit in one rollup row before its output-cost column (in
/// pico-dollars) would pass 2^63 - 1, and what each costs.
fn poison_capacity() -> (usize, Decimal) {
    let priced = prepare(book(), &poison("probe"));
    let llm_meter::pricing::PriceOutcome::Priced(price) = &priced.price else {
        panic!("o1-pro is priced")
    };
    let bucket = price.bucket_costs[llm_meter::usage::Bucket::Output as usize];
    let picos = (bucket * Decimal::from(1_000_000_000_000u64))
        .trunc()
        .to_string()
        .parse::<i128>()
        .unwrap();
    let fit = (i64::MAX as i128 / picos) as usize;
    assert!(
        (2..40).contains(&fit),
        "o1-pro's output rate makes {fit} records fit: the test needs a dear model"
    );
    (fit, priced.price.cost().unwrap())
}

/// (code, count) of the dead letters, by code, read with SQL.
async fn dead_letter_codes(backend: &Backend) -> Vec<(String, i64)> {
    const SQL: &str =
        "SELECT code, CAST(count(*) AS BIGINT) FROM dead_letters GROUP BY code ORDER BY code";
    let pool_url = backend.url().to_owned();
    if pool_url.starts_with("sqlite") {
        let pool = sqlx::SqlitePool::connect(&pool_url).await.unwrap();
        sqlx::query_as(SQL).fetch_all(&pool).await.unwrap()
    } else {
        let pool = sqlx::PgPool::connect(&pool_url).await.unwrap();
        sqlx::query_as(SQL).fetch_all(&pool).await.unwrap()
    }
}

#[tokio::test]
async fn a_poisoned_submission_merged_with_others_fails_only_its_own_records() {
    let (fit, poison_cost) = poison_capacity();
    for backend in Backend::both().await {
        let at = backend.name();
        let store = backend.store();
        // A long batch delay makes sure the two submissions share one transaction.
        let config = PipelineConfig {
            max_batch_delay: Duration::from_millis(300),
            max_batch_records: 100_000,
            ..PipelineConfig::default()
        };
        let (pipeline, task) = Pipeline::start(store.clone(), config, Arc::new(Metrics::new()));
        let innocent = generated_lines("innocent", 0..60);
        let poisoned: Vec<String> = (0..40).map(|i| poison(&format!("p{i}"))).collect();
        let (innocent_written, poison_written) = tokio::join!(
            pipeline.write(intake_batch(book(), &innocent), "http"),
            pipeline.write(intake_batch(book(), &poisoned), "http"),
        );
        let innocent_written = innocent_written.unwrap();
        assert_eq!(
            (innocent_written.accepted, innocent_written.refused.len()),
            (60, 0),
            "{at}"
        );
        let poison_written = poison_written.unwrap();
        assert_eq!(poison_written.accepted, fit, "{at}");
        assert_eq!(poison_written.refused.len(), 40 - fit, "{at}");
        for refused in &poison_written.refused {
            assert!(
                refused.reason.contains("largest value the store keeps"),
                "{at}: {}",
                refused.reason
            );
        }
        // Sending the same again changes nothing: the stored ones are duplicates, the
        // rest are refused again.
        let again = pipeline
            .write(intake_batch(book(), &poisoned), "http")
            .await
            .unwrap();
        assert_eq!(
            (again.accepted, again.duplicates, again.refused.len()),
            (0, fit, 40 - fit),
            "{at}"
        );

        let (events, _, event_cost, rollup_cost, requests) = backend.totals().await;
        let innocent_cost = expected(book(), &innocent).cost;
        let due = innocent_cost + poison_cost * Decimal::from(fit);
        assert_eq!(events, 60 + fit as i64, "{at}");
        assert_eq!(requests, 60 + fit as i64, "{at}");
        assert_eq!((event_cost, rollup_cost), (due, due), "{at}");
        assert_eq!(
            dead_letter_codes(&backend).await,
            [(REFUSED_CODE.to_owned(), 2 * (40 - fit) as i64)],
            "{at}"
        );
        drop(pipeline);
        task.await.unwrap();
    }
}

/// A record of $0.175 of alpha's: enough to cross a budget of $0.000001.
fn alpha_spend() -> Value {
    json!({"id": "spend", "project": "alpha", "provider": "openai",
        "model": "gpt-5.2", "tokens": {"input": 100000}})
}

/// A daemon on `backend` with rate limits out of the way.
async fn server_on(backend: &Backend) -> TestServer {
    let mut config = Config::from_toml(
        "[limits]\nrequests_per_second = 100000\nburst = 100000\nmax_body_bytes = 4194304\n",
    )
    .unwrap();
    config.database_url = Some(backend.url().to_owned());
    TestServer::start_with(config).await
}

fn innocent_record(request: usize, i: usize) -> Value {
    json!({
        "id": format!("r{request}-{i}"),
        "time": "2026-04-01T10:20:00Z",
        "project": "innocent",
        "provider": "openai",
        "model": "gpt-5.2",
        "tokens": {"input": 1000 + i, "output": 100},
        "tags": {"team": "search"}
    })
}

#[tokio::test]
async fn an_adversarial_corpus_fails_no_innocent_request_on_either_store() {
    let (fit, poison_cost) = poison_capacity();
    let innocent_requests = 120usize;
    let per_request = 5usize;
    for backend in Backend::both().await {
        let at = backend.name();
        let owned_server = server_on(&backend).await;
        let server = &owned_server;
        let send = |body: String, content_type: &'static str| async move {
            server.post("/v1/usage", content_type, body).await
        };

        // The attacker's traffic: 40 poison records one per request, labels too long for
        // an index, projects that could never be selected, and NDJSON bodies of good
        // records with one bad one.
        let long_tier = "x".repeat(2800);
        let big_tags: serde_json::Map<String, Value> = (0..32)
            .map(|i| (format!("{i:0>64}"), Value::from("v".repeat(256))))
            .collect();
        let mut attacks: Vec<(String, &'static str)> = (0..40)
            .map(|i| (poison(&format!("hp{i}")), "application/json"))
            .collect();
        for (i, bad) in [
            json!({"service_tier": long_tier}),
            json!({"tags": big_tags}),
            json!({"project": "a,b"}),
            json!({"project": " "}),
            json!({"project": "p".repeat(200)}),
        ]
        .into_iter()
        .enumerate()
        {
            let mut record = json!({"id": format!("bad{i}"), "time": "2026-04-01T10:00:00Z",
                "project": "attacker", "provider": "openai", "model": "gpt-5.2",
                "tokens": {"input": 10}});
            for (key, value) in bad.as_object().unwrap() {
                record[key] = value.clone();
            }
            attacks.push((record.to_string(), "application/json"));
            let mut ndjson: Vec<String> = (0..100)
                .map(|j| {
                    json!({"id": format!("nd{i}-{j}"), "time": "2026-04-01T11:00:00Z",
                        "project": "attacker", "provider": "openai", "model": "gpt-5.2",
                        "tokens": {"input": 10}})
                    .to_string()
                })
                .collect();
            ndjson.insert(50, record.to_string());
            attacks.push((ndjson.join("\n"), "application/x-ndjson"));
        }
        let innocent: Vec<(String, &'static str)> = (0..innocent_requests)
            .map(|r| {
                let body: Vec<Value> = (0..per_request).map(|i| innocent_record(r, i)).collect();
                (Value::from(body).to_string(), "application/json")
            })
            .collect();

        // Everything at once, interleaved, so submissions share transactions.
        let mut calls = Vec::new();
        let mut attacks = attacks.into_iter();
        for (body, content_type) in innocent {
            calls.push((true, send(body, content_type)));
            if let Some((body, content_type)) = attacks.next() {
                calls.push((false, send(body, content_type)));
            }
        }
        for (body, content_type) in attacks {
            calls.push((false, send(body, content_type)));
        }
        let (kinds, futures): (Vec<bool>, Vec<_>) = calls.into_iter().unzip();
        let answers = futures_util::future::join_all(futures).await;

        let mut poison_accepted = 0;
        let mut ndjson_bodies = 0;
        for (innocent, (status, answer)) in kinds.into_iter().zip(&answers) {
            assert!(*status < 500, "{at}: {status} {answer}");
            if innocent {
                assert_eq!(*status, 200, "{at}: an innocent request failed: {answer}");
                assert_eq!(answer["accepted"], json!(per_request), "{at}: {answer}");
                continue;
            }
            match answer["accepted"].as_u64() {
                Some(100) => {
                    // The NDJSON body: its good records land, the bad one is named.
                    ndjson_bodies += 1;
                    let rejected = answer["rejected"].as_array().unwrap();
                    assert_eq!(rejected.len(), 1, "{at}: {answer}");
                    assert_eq!(rejected[0]["index"], json!(50), "{at}: {answer}");
                }
                Some(1) => poison_accepted += 1,
                _ => {
                    assert_eq!(*status, 400, "{at}: {answer}");
                    let message = answer["error"]["message"].as_str().unwrap();
                    assert!(
                        [
                            "largest value the store keeps",
                            "longer than",
                            "comma",
                            "white space",
                            "bytes as JSON",
                            "is empty"
                        ]
                        .iter()
                        .any(|reason| message.contains(reason)),
                        "{at}: {message}"
                    );
                }
            }
        }
        assert_eq!(ndjson_bodies, 5, "{at}");
        assert_eq!(poison_accepted, fit, "{at}");

        // Exact totals afterwards, per project, from the API.
        let (status, spend) = server
            .get("/v1/spend?from=2026-04-01&to=2026-04-02&group_by=project")
            .await;
        assert_eq!(status, 200, "{at}: {spend}");
        let by_project: std::collections::BTreeMap<String, Decimal> = spend["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| {
                (
                    row["project"].as_str().unwrap().to_owned(),
                    row["cost_usd"].as_str().unwrap().parse().unwrap(),
                )
            })
            .collect();
        let innocent_lines: Vec<String> = (0..innocent_requests)
            .flat_map(|r| (0..per_request).map(move |i| innocent_record(r, i).to_string()))
            .collect();
        let ndjson_line = json!({"id": "x", "time": "2026-04-01T11:00:00Z", "project": "attacker",
            "provider": "openai", "model": "gpt-5.2", "tokens": {"input": 10}})
        .to_string();
        let ndjson_cost = prepare(book(), &ndjson_line).price.cost().unwrap();
        assert_eq!(
            by_project.get("innocent"),
            Some(&expected(book(), &innocent_lines).cost),
            "{at}"
        );
        assert_eq!(
            by_project.get("attacker"),
            Some(&(poison_cost * Decimal::from(fit) + ndjson_cost * Decimal::from(500))),
            "{at}"
        );
        // The token-type split reads the pico-dollar columns: exact too, not saturated.
        let (status, split) = server
            .get("/v1/spend?from=2026-04-01&to=2026-04-02&project=attacker&group_by=token_type")
            .await;
        assert_eq!(status, 200, "{at}: {split}");
        let output: Decimal = split["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|row| row["token_type"] == "output")
            .map(|row| row["cost_usd"].as_str().unwrap().parse().unwrap())
            .unwrap();
        assert_eq!(output, poison_cost * Decimal::from(fit), "{at}");
        owned_server.daemon.stop().await.unwrap();
    }
}

/// Series of an exposition: its non-comment lines.
fn series_count(exposition: &str) -> usize {
    exposition
        .lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .count()
}

/// The sum of every series of one family (`name{…} value`).
fn family_total(exposition: &str, name: &str) -> f64 {
    exposition
        .lines()
        .filter(|line| line.starts_with(&format!("{name}{{")))
        .filter_map(|line| line.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn metrics_stay_under_the_series_budget_whatever_is_sent() {
    let backend = Backend::sqlite().await;
    let mut config = Config::from_toml(
        "[limits]\nrequests_per_second = 100000\nburst = 100000\nmax_body_bytes = 16777216\n\
         [metrics]\nrefresh_interval = \"100ms\"\n",
    )
    .unwrap();
    config.database_url = Some(backend.url().to_owned());
    let server = TestServer::start_with(config).await;
    let (_, before) = server.get("/metrics").await;
    let before = series_count(before.as_str().unwrap());

    // 6,000 distinct projects in one POST, 6,000 distinct providers in another: each
    // would take 6 or more series, 36,000 in all without the budget.
    let now = chrono::Utc::now().to_rfc3339();
    let body = |field: &str| {
        (0..6_000)
            .map(|i| {
                let mut record = json!({"id": format!("{field}{i}"), "time": now,
                    "project": "p", "provider": "openai", "model": "gpt-5.2",
                    "tokens": {"input": 100, "output": 10}});
                record[field] = Value::from(format!("{field}-{i}"));
                record.to_string()
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    for field in ["project", "provider"] {
        let (status, answer) = server
            .post("/v1/usage", "application/x-ndjson", body(field))
            .await;
        assert_eq!(
            (status, &answer["accepted"]),
            (200, &json!(6_000)),
            "{answer}"
        );
    }

    // Once the gauges have been read from the store after both posts, projects past
    // the budget show as one `other` series, and the month's gauges add up to the cost
    // counted (folded, not dropped).
    let month_total = |exposition: &str| -> f64 {
        exposition
            .lines()
            .filter(|l| l.starts_with("llm_meter_project_spend_usd{period=\"month\""))
            .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
            .sum()
    };
    let settled = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let (_, metrics) = server.get("/metrics").await;
            let text = metrics.as_str().unwrap().to_owned();
            let cost = family_total(&text, "llm_meter_cost_usd_total");
            if text.contains(r#"llm_meter_project_spend_usd{period="month",project="other"}"#)
                && (month_total(&text) - cost).abs() < 1e-6 * cost.max(1.0)
            {
                break text;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    let exposition = settled.expect("the project gauges never added up to the cost counted");
    let series = series_count(&exposition);
    assert!(
        series <= before + llm_meter::metrics::DEFAULT_MAX_SERIES,
        "{series} series, {before} before"
    );
    crate::metrics::promtool_check(&exposition);
    assert_eq!(
        family_total(&exposition, "llm_meter_requests_total"),
        12_000.0
    );
    assert!(family_total(&exposition, "llm_meter_metrics_folded_total") > 0.0);
    server.daemon.stop().await.unwrap();
}

#[tokio::test]
async fn idle_and_trickling_connections_cannot_starve_other_clients() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let backend = Backend::sqlite().await;
    let mut config = Config::from_toml(
        "[limits]\nmax_connections = 64\nmax_connections_per_address = 16\nheader_read_timeout = \"1s\"\n",
    )
    .unwrap();
    config.database_url = Some(backend.url().to_owned());
    let server = TestServer::start_with(config).await;
    let addr = server.daemon.addr;

    // One client (127.0.0.2) opens 100 connections and sends nothing on most of them,
    // a header a byte at a time on the others.
    let mut held = Vec::new();
    for _ in 0..100 {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        held.push(socket.connect(addr).await.unwrap());
    }
    for stream in held.iter_mut().step_by(10) {
        let _ = stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .await;
    }

    // Everyone else is still served.
    let (status, _) = server.get("/healthz").await;
    assert_eq!(status, 200);
    let (status, answer) = server
        .post(
            "/v1/usage",
            "application/json",
            innocent_record(0, 0).to_string(),
        )
        .await;
    assert_eq!((status, &answer["accepted"]), (200, &json!(1)), "{answer}");
    let (_, metrics) = server.get("/metrics").await;
    let refused = metrics
        .as_str()
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("llm_meter_http_connections_refused_total "))
        .map(|v| v.parse::<u64>().unwrap());
    assert_eq!(refused, Some(84));

    // And the server lets go of every one of them: past the per-address limit at once,
    // the others when the header-read time is up.
    let mut buffer = [0u8; 256];
    for stream in &mut held {
        let ended = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match stream.read(&mut buffer).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => continue,
                }
            }
        })
        .await;
        assert!(
            ended.is_ok(),
            "a connection was held open past the header timeout"
        );
    }
    server.daemon.stop().await.unwrap();
}

/// Tokens made in the store, by name: (name, role, projects).
async fn make_tokens(
    backend: &Backend,
    specs: &[(&str, llm_meter::auth::Role, &[&str])],
) -> std::collections::BTreeMap<String, String> {
    let now = chrono::Utc::now();
    let mut tokens = std::collections::BTreeMap::new();
    for (name, role, projects) in specs {
        let projects = projects.iter().map(|p| (*p).to_owned()).collect();
        let (token, stored) = llm_meter::auth::generate(*role, projects, (*name).into(), None, now);
        backend.store().insert_token(&stored).await.unwrap();
        tokens.insert((*name).to_owned(), token);
    }
    tokens
}

#[tokio::test]
async fn no_answer_a_reader_gets_carries_a_webhook_secret() {
    use llm_meter::auth::Role;
    let backend = Backend::postgres().await;
    let tokens = make_tokens(
        &backend,
        &[("ops", Role::Admin, &[]), ("alpha", Role::Read, &["alpha"])],
    )
    .await;
    let (admin, reader) = (tokens["ops"].clone(), tokens["alpha"].clone());
    let mut config = Config::from_toml(
        "[webhooks]\nallow = [\"127.0.0.1\"]\npoll_interval = \"20ms\"\n\
         [alerts]\ndebounce = \"10ms\"\nevaluate_interval = \"1h\"\n",
    )
    .unwrap();
    config.database_url = Some(backend.url().to_owned());
    let server = TestServer::start_with(config).await;
    // The answers as text: what is searched for secrets.
    let call = |token: &str, method: reqwest::Method, path: &str, body: Option<Value>| {
        let (token, path, server) = (token.to_owned(), path.to_owned(), &server);
        async move {
            let (status, answer) = server.call(Some(&token), method, &path, body).await;
            (status, answer.to_string())
        }
    };

    // Targets that refuse connections (nothing listens on the port), one with its token
    // in the path like Slack's, one signed with a secret.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let slack_token = "SECRETPATHTOKEN123";
    let signing = "whsec_c2VjcmV0c2lnbmluZ2tleTEyMzQ1Njc4OTA=";
    let (status, budget) = call(
        &admin,
        reqwest::Method::POST,
        "/v1/budgets",
        Some(json!({"name": "alpha", "project": "alpha", "limit_usd": "0.000001",
            "period": "month", "webhooks": [
                {"url": format!("http://127.0.0.1:{port}/services/T0/B0/{slack_token}?key=QUERYSECRET"), "format": "slack"},
                {"url": format!("http://127.0.0.1:{port}/hook"), "secret": signing}
            ]})),
    )
    .await;
    assert_eq!(status, 201, "{budget}");
    let budget_id = serde_json::from_str::<Value>(&budget).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = call(
        &admin,
        reqwest::Method::POST,
        "/v1/usage",
        Some(alpha_spend()),
    )
    .await;
    assert_eq!(status, 200);

    // Wait until both deliveries have failed at least once and say why.
    let failed = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let (_, alerts) = call(&admin, reqwest::Method::GET, "/v1/alerts", None).await;
            let alerts: Value = serde_json::from_str(&alerts).unwrap();
            let errors: Vec<String> = alerts["alerts"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|a| a["deliveries"].as_array().unwrap().clone())
                .filter_map(|d| d["last_error"].as_str().map(str::to_owned))
                .collect();
            if errors.len() >= 2 {
                break errors;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the deliveries never failed");
    assert!(
        failed.iter().all(|e| e.contains("Connection refused")),
        "{failed:?}"
    );

    let secrets = [
        slack_token,
        "QUERYSECRET",
        signing,
        "c2VjcmV0c2lnbmluZ2tleTEy",
    ];
    let reads = [
        "/v1/alerts".to_owned(),
        format!("/v1/alerts?budget={budget_id}"),
        "/v1/budgets".to_owned(),
        format!("/v1/budgets/{budget_id}"),
        format!("/v1/budgets/{budget_id}/status"),
        "/v1/budgets/check?project=alpha".to_owned(),
        "/v1/spend?project=alpha".to_owned(),
    ];
    for path in &reads {
        let (status, answer) = call(&reader, reqwest::Method::GET, path, None).await;
        assert_eq!(status, 200, "{path}: {answer}");
        for secret in secrets {
            assert!(!answer.contains(secret), "{path} shows {secret}: {answer}");
        }
    }
    // An admin sees the URLs (they manage them) but never the signing secret; delivery
    // errors hold no URL for anyone.
    let (_, alerts) = call(&admin, reqwest::Method::GET, "/v1/alerts", None).await;
    assert!(
        !alerts.contains(slack_token) && !alerts.contains(signing),
        "{alerts}"
    );
    let (_, budgets) = call(&admin, reqwest::Method::GET, "/v1/budgets", None).await;
    assert!(!budgets.contains(signing), "{budgets}");
    server.daemon.stop().await.unwrap();
}

#[tokio::test]
async fn a_hard_link_or_another_path_to_the_same_sqlite_file_is_the_same_lock() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("meter.db");
    let config_for = |path: &std::path::Path| Config {
        database_url: Some(format!("sqlite://{}", path.display())),
        ..Config::default()
    };
    let server = TestServer::start_with(config_for(&file)).await;
    let other_dir = tempfile::tempdir().unwrap();
    let linked = other_dir.path().join("linked.db");
    std::fs::hard_link(&file, &linked).unwrap();
    let dotted = dir.path().join(".").join("meter.db");
    for path in [&linked, &dotted] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let error = llm_meter::daemon::Daemon::start(&config_for(path), listener)
            .await
            .err()
            .expect("a second daemon on the same file is refused");
        assert!(
            error.to_string().contains("one daemon per file"),
            "{error:#}"
        );
    }
    // The first daemon still works.
    let (status, answer) = server
        .post(
            "/v1/usage",
            "application/json",
            innocent_record(1, 1).to_string(),
        )
        .await;
    assert_eq!((status, &answer["accepted"]), (200, &json!(1)), "{answer}");
    server.daemon.stop().await.unwrap();
}

#[tokio::test]
async fn readyz_is_not_ready_when_the_schema_is_gone() {
    for backend in Backend::both().await {
        let at = backend.name();
        let server = server_on(&backend).await;
        let (status, ready) = server.get("/readyz").await;
        assert_eq!(status, 200, "{at}: {ready}");
        match &backend {
            Backend::Postgres { store, .. } => {
                for sql in ["DROP SCHEMA public CASCADE", "CREATE SCHEMA public"] {
                    sqlx::query(sql).execute(store.pool()).await.unwrap();
                }
            }
            Backend::Sqlite { store, .. } => {
                sqlx::query("DROP TABLE deliveries")
                    .execute(store.pool())
                    .await
                    .unwrap();
            }
        }
        let (status, ready) = server.get("/readyz").await;
        assert_eq!(status, 503, "{at}: {ready}");
        assert_eq!(ready["error"]["code"], "schema_missing", "{at}: {ready}");
        let (status, _) = server.get("/healthz").await;
        assert_eq!(status, 200, "{at}");
        server.daemon.stop().await.unwrap();
    }
}

#[tokio::test]
async fn a_budget_moved_to_another_project_keeps_its_alerts_with_the_old_one() {
    use llm_meter::auth::Role;
    let backend = Backend::sqlite().await;
    let tokens = make_tokens(
        &backend,
        &[
            ("admin", Role::Admin, &[]),
            ("alpha", Role::Read, &["alpha"]),
            ("bravo", Role::Read, &["bravo"]),
        ],
    )
    .await;
    let mut config =
        Config::from_toml("[alerts]\ndebounce = \"10ms\"\nevaluate_interval = \"1h\"\n").unwrap();
    config.database_url = Some(backend.url().to_owned());
    let server = TestServer::start_with(config).await;
    let call = |who: &str, method: reqwest::Method, path: &str, body: Option<Value>| {
        let (token, path, server) = (tokens[who].clone(), path.to_owned(), &server);
        async move { server.call(Some(&token), method, &path, body).await }
    };
    let spec = |project: &str| json!({"name": "team", "project": project, "limit_usd": "0.000001", "period": "month"});
    let (status, budget) = call(
        "admin",
        reqwest::Method::POST,
        "/v1/budgets",
        Some(spec("alpha")),
    )
    .await;
    assert_eq!(status, 201, "{budget}");
    let id = budget["id"].as_str().unwrap().to_owned();
    let (status, _) = call(
        "admin",
        reqwest::Method::POST,
        "/v1/usage",
        Some(alpha_spend()),
    )
    .await;
    assert_eq!(status, 200);
    let alerts_of = |answer: &Value| answer["alerts"].as_array().unwrap().len();
    // The three default thresholds fire on the one record.
    tokio::time::timeout(Duration::from_secs(60), async {
        while alerts_of(
            &call("alpha", reqwest::Method::GET, "/v1/alerts", None)
                .await
                .1,
        ) < 3
        {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the alerts never fired");

    let (status, moved) = call(
        "admin",
        reqwest::Method::PUT,
        &format!("/v1/budgets/{id}"),
        Some(spec("bravo")),
    )
    .await;
    assert_eq!(status, 200, "{moved}");
    let (_, bravo) = call("bravo", reqwest::Method::GET, "/v1/alerts", None).await;
    assert_eq!(alerts_of(&bravo), 0, "{bravo}");
    let (status, bravo) = call(
        "bravo",
        reqwest::Method::GET,
        &format!("/v1/budgets/{id}/status"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{bravo}");
    assert_eq!(alerts_of(&bravo), 0, "{bravo}");
    let (_, alpha) = call("alpha", reqwest::Method::GET, "/v1/alerts", None).await;
    assert_eq!(alerts_of(&alpha), 3, "{alpha}");
    let (_, admin) = call("admin", reqwest::Method::GET, "/v1/alerts", None).await;
    assert_eq!(alerts_of(&admin), 3, "{admin}");
    server.daemon.stop().await.unwrap();
}

#[tokio::test]
async fn two_replicas_writing_the_same_records_at_once_both_succeed_exactly_once() {
    let backend = Backend::postgres().await;
    let lines = generated_lines("replica", 0..4000);
    let chunks: Vec<Vec<String>> = lines.chunks(200).map(<[String]>::to_vec).collect();
    let replica = |store: Arc<dyn llm_meter::store::Store>, reversed: bool| {
        let chunks = chunks.clone();
        async move {
            let (pipeline, task) =
                Pipeline::start(store, PipelineConfig::default(), Arc::new(Metrics::new()));
            let order: Vec<&Vec<String>> = if reversed {
                chunks.iter().rev().collect()
            } else {
                chunks.iter().collect()
            };
            let mut writes = Vec::new();
            for chunk in order {
                writes.push(pipeline.write(intake_batch(book(), chunk), "http"));
            }
            let results = futures_util::future::join_all(writes).await;
            drop(pipeline);
            task.await.unwrap();
            results
        }
    };
    let (first, second) = tokio::join!(
        replica(backend.store(), false),
        replica(backend.reopen().await, true)
    );
    let mut accepted = 0;
    for result in first.into_iter().chain(second) {
        let committed = result.expect("no write fails, deadlocks included");
        assert!(committed.refused.is_empty());
        accepted += committed.accepted;
    }
    let due = expected(book(), &lines);
    assert_eq!(accepted as u64, due.requests);
    let (events, _, event_cost, rollup_cost, requests) = backend.totals().await;
    assert_eq!(
        (events as u64, requests as u64),
        (due.requests, due.requests)
    );
    assert_eq!((event_cost, rollup_cost), (due.cost, due.cost));
}
