//! Hostile input against a real server: hundreds of mutated bodies with assorted content
//! types at every POST and PUT endpoint, and malformed query strings at every GET endpoint.
//! Every answer must be a deliberate one (below 500) with a JSON error for 4xx, and the
//! daemon must stay healthy and keep ingesting.

use serde_json::{Value, json};

use crate::helpers::Rng;
use crate::http_ingest::TestServer;
use crate::pg::TestDb;

/// One mutation of `seed`: flipped, inserted, deleted or duplicated bytes, a truncation,
/// a splice of JSON-ish tokens, or something else entirely.
fn mutate(seed: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut bytes = seed.to_vec();
    const TOKENS: &[&[u8]] = &[
        b"{",
        b"}",
        b"[",
        b"]",
        b"\"",
        b":",
        b",",
        b"null",
        b"-1",
        b"1e308",
        b"18446744073709551616",
        b"\\u0000",
        b"\xff\xfe",
        b"\n",
        b"\"tokens\":{\"input\":-5}",
        b"\"project\":\"\"",
    ];
    for _ in 0..1 + rng.below(4) {
        match rng.below(7) {
            0 if !bytes.is_empty() => {
                let at = rng.below(bytes.len());
                bytes[at] ^= 1 << rng.below(8);
            }
            1 => {
                let at = rng.below(bytes.len() + 1);
                bytes.insert(at, rng.next() as u8);
            }
            2 if !bytes.is_empty() => {
                let at = rng.below(bytes.len());
                bytes.remove(at);
            }
            3 => {
                let at = rng.below(bytes.len() + 1);
                bytes.truncate(at);
            }
            4 => {
                let at = rng.below(bytes.len() + 1);
                let token = TOKENS[rng.below(TOKENS.len())];
                bytes.splice(at..at, token.iter().copied());
            }
            5 if bytes.len() < 100_000 => {
                let copy = bytes.clone();
                bytes.extend_from_slice(b"\n");
                bytes.extend_from_slice(&copy);
            }
            _ => {
                let len = rng.below(64);
                bytes = (0..len).map(|_| rng.next() as u8).collect();
            }
        }
    }
    bytes
}

fn seeds() -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/samples");
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| std::fs::read(entry.unwrap().path()).unwrap())
        .collect();
    seeds.sort();
    seeds.push(
        json!({"name": "b", "project": "p", "limit_usd": "10", "period": "month",
               "thresholds": [0.5, {"usd": "4"}],
               "webhooks": [{"url": "https://hooks.example.com/x", "format": "slack"}]})
        .to_string()
        .into_bytes(),
    );
    seeds.push(
        json!({"resourceSpans": [{"scopeSpans": [{"spans": [{"name": "chat",
            "attributes": [{"key": "gen_ai.usage.input_tokens", "value": {"intValue": "5"}},
                           {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-5.2"}}]}]}]}]})
        .to_string()
        .into_bytes(),
    );
    // Deep nesting, and a body of many tiny records.
    seeds.push(format!("{}1{}", "[".repeat(5000), "]".repeat(5000)).into_bytes());
    seeds.push(format!("{}{}", r#"{"a":"#.repeat(3000), "}".repeat(3000)).into_bytes());
    seeds.push("{}\n".repeat(5000).into_bytes());
    seeds
}

const CONTENT_TYPES: &[Option<&str>] = &[
    None,
    Some("application/json"),
    Some("application/x-ndjson"),
    Some("application/cloudevents+json"),
    Some("application/cloudevents-batch+json"),
    Some("application/x-protobuf"),
    Some("text/plain"),
    Some("multipart/form-data; boundary=x"),
    Some("application/json; charset=latin1"),
    Some(";;;x/\"y"),
];

/// Query strings a fuzzer or a careless client might send.
const BAD_QUERIES: &[&str] = &[
    "",
    "?",
    "?&&&",
    "?from=",
    "?from=yesterday",
    "?from=2026-13-45",
    "?from=99999-01-01&to=0000-01-01",
    "?from=2026-02-01&to=2026-01-01",
    "?to=-1",
    "?from=1970-01-01T00:00:00Z&to=2262-04-12T00:00:00Z",
    "?group_by=colour",
    "?group_by=project,project,day,month",
    "?group_by=tag:",
    "?group_by=%00",
    "?project=%FF%FE",
    "?project=a%00b",
    "?project=",
    "?project=,,,",
    "?tz=Mars/Olympus",
    "?tz=../../etc/passwd",
    "?tag.=x",
    "?tag.%00=1",
    "?format=xml",
    "?format=csv&format=focus&group_by=week",
    "?model=%27%20OR%201%3D1%20--",
    "?project=%27;DROP%20TABLE%20events;--",
    "?limit=-1",
    "?limit=99999999999999999999",
    "?budget=%2e%2e%2f",
    "?budget=%00&model=%00&project=%00",
    "?from=%ZZ",
    "?from=-9999-01-01",
    "?from=0001-01-01&to=9999-12-31&group_by=hour",
    "?to=10000-01-01",
    "?from=9999-12-31T23:59:59Z&to=9999-12-31T23:59:59.999Z",
    "?unknown=1",
    "?stats=maybe",
];

#[tokio::test]
async fn garbage_at_every_endpoint_never_gets_a_5xx() {
    let db = TestDb::new().await;
    let mut config = llm_meter::config::Config::from_toml(
        "[limits]\nrequests_per_second = 100000\nburst = 100000\nmax_body_bytes = 1048576\n",
    )
    .unwrap();
    config.database_url = Some(db.url.clone());
    let server = TestServer::start_with(config).await;
    let client = &server.client;
    let (status, budget) = server
        .post(
            "/v1/budgets",
            "application/json",
            json!({"name": "target", "project": "p", "limit_usd": "5", "period": "day"})
                .to_string(),
        )
        .await;
    assert_eq!(status, 201, "{budget}");
    let budget_id = budget["id"].as_str().unwrap().to_owned();

    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let seeds = seeds();
    let targets = [
        (reqwest::Method::POST, "/v1/usage".to_owned()),
        (reqwest::Method::POST, "/v1/traces".to_owned()),
        (reqwest::Method::POST, "/v1/budgets".to_owned()),
        (reqwest::Method::PUT, format!("/v1/budgets/{budget_id}")),
    ];
    let mut sent = 0;
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for (method, path) in &targets {
        for round in 0..160 {
            let seed = &seeds[round % seeds.len()];
            let body = if round < seeds.len() {
                seed.clone()
            } else {
                mutate(seed, &mut rng)
            };
            let content_type = CONTENT_TYPES[rng.below(CONTENT_TYPES.len())];
            let mut request = client
                .request(method.clone(), format!("{}{path}", server.base))
                .body(body.clone());
            if let Some(content_type) = content_type {
                request = request.header("content-type", content_type);
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let text = response.text().await.unwrap();
            assert!(
                status < 500,
                "{method} {path} ({content_type:?}) answered {status}: {text}\nbody: {:?}",
                String::from_utf8_lossy(&body)
            );
            if status >= 400 {
                let error: Value = serde_json::from_str(&text)
                    .unwrap_or_else(|_| panic!("{method} {path}: not a JSON error: {text}"));
                assert!(
                    error["error"]["message"]
                        .as_str()
                        .is_some_and(|m| !m.is_empty()),
                    "{text}"
                );
            }
            *statuses.entry(status).or_default() += 1;
            sent += 1;
        }
    }
    let gets = [
        "/v1/spend".to_owned(),
        "/v1/unpriced".to_owned(),
        "/v1/savings".to_owned(),
        "/v1/whatif".to_owned(),
        "/v1/budgets".to_owned(),
        format!("/v1/budgets/{budget_id}"),
        format!("/v1/budgets/{budget_id}/status"),
        "/v1/budgets/%00".to_owned(),
        "/v1/budgets/check".to_owned(),
        "/v1/alerts".to_owned(),
        "/metrics".to_owned(),
        "/openapi.json".to_owned(),
        "/healthz".to_owned(),
        "/readyz".to_owned(),
    ];
    for path in &gets {
        for query in BAD_QUERIES {
            let url = format!("{}{path}{query}", server.base);
            let response = client.get(&url).send().await.unwrap();
            let status = response.status().as_u16();
            let text = response.text().await.unwrap();
            assert!(status < 500, "GET {path}{query} answered {status}: {text}");
            *statuses.entry(status).or_default() += 1;
            sent += 1;
        }
    }
    assert!(sent >= 1000, "{sent}");
    // Most garbage is refused, and some of it was well-formed enough to be taken.
    assert!(
        statuses.get(&400).copied().unwrap_or(0) > 100,
        "{statuses:?}"
    );
    assert!(
        statuses.get(&200).copied().unwrap_or(0) > 10,
        "{statuses:?}"
    );

    // Still healthy, still ingesting.
    let ready = client
        .get(format!("{}/readyz", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    let (status, answer) = server
        .post(
            "/v1/usage",
            "application/json",
            r#"{"id":"after","project":"p","provider":"openai","model":"gpt-5.2","tokens":{"input":10}}"#,
        )
        .await;
    assert_eq!((status, &answer["accepted"]), (200, &Value::from(1)));
}

#[tokio::test]
async fn a_client_that_stops_sending_its_body_gets_408() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let db = TestDb::new().await;
    let mut config =
        llm_meter::config::Config::from_toml("[limits]\nrequest_timeout = \"300ms\"\n").unwrap();
    config.database_url = Some(db.url.clone());
    let server = TestServer::start_with(config).await;
    let addr = server.base.strip_prefix("http://").unwrap();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    // Headers promise 1,000 bytes; ten arrive, then nothing.
    stream
        .write_all(
            b"POST /v1/usage HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
              content-length: 1000\r\n\r\n{\"id\":\"sl",
        )
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut answer = vec![0u8; 4096];
    let read = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut answer))
        .await
        .expect("the daemon answers instead of waiting forever")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..read]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}
