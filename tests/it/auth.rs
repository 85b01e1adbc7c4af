//! API tokens end to end: the authorization matrix (every endpoint × no token, admin,
//! ingest for alpha, read for alpha × project alpha, project bravo), revoked and expired
//! tokens, config tokens, the `token` command and the safe listen default.

use std::collections::BTreeMap;

use chrono::Utc;
use llm_meter::auth::{self, Role};
use llm_meter::config::Config;
use llm_meter::store::TokenStore;
use serde_json::{Value, json};

use crate::helpers::binary;
use crate::http_ingest::TestServer;
use crate::pg::TestDb;
use crate::store_contract::pg_store;

const A: &str = "alpha";
const B: &str = "bravo";

/// The callers of the matrix.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Caller {
    Nobody,
    Admin,
    IngestA,
    ReadA,
}

const CALLERS: [Caller; 4] = [
    Caller::Nobody,
    Caller::Admin,
    Caller::IngestA,
    Caller::ReadA,
];

struct Fixture {
    db: TestDb,
    server: TestServer,
    tokens: BTreeMap<&'static str, String>,
    budget_ids: BTreeMap<&'static str, String>,
}

impl Fixture {
    fn token(&self, caller: Caller) -> Option<&str> {
        let key = match caller {
            Caller::Nobody => return None,
            Caller::Admin => "admin",
            Caller::IngestA => "ingest",
            Caller::ReadA => "read",
        };
        Some(self.tokens[key].as_str())
    }

    async fn call(
        &self,
        caller: Caller,
        method: reqwest::Method,
        path: &str,
        body: Option<String>,
    ) -> (u16, String) {
        let mut request = self
            .server
            .client
            .request(method, format!("{}{path}", self.server.base));
        if let Some(token) = self.token(caller) {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }

    /// Spend of one project over all time, read with the admin token.
    async fn spend(&self, project: &str) -> String {
        let (status, body) = self
            .call(
                Caller::Admin,
                reqwest::Method::GET,
                &format!("/v1/spend?from=2026-01-01&to=2027-01-01&project={project}"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        format!("{}/{}", body["total_requests"], body["total_cost_usd"])
    }
}

fn record(id: &str, project: &str) -> String {
    format!(
        r#"{{"id":"{id}","time":"2026-06-01T12:00:00Z","project":"{project}","provider":"openai","model":"gpt-5.2","tokens":{{"input":1000,"output":100}}}}"#
    )
}

fn span(project: &str, id: &str) -> String {
    json!({"resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": [{"spans": [{
        "traceId": "5b8efff798038103d269b633813fc60c",
        "spanId": "eee19b7ec3c1b174",
        "name": "chat gpt-5.2",
        "kind": 3,
        "startTimeUnixNano": "1780315200000000000",
        "endTimeUnixNano": "1780315201000000000",
        "attributes": [
            {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
            {"key": "gen_ai.provider.name", "value": {"stringValue": "openai"}},
            {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-5.2"}},
            {"key": "gen_ai.response.id", "value": {"stringValue": id}},
            {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "1000"}},
            {"key": "gen_ai.usage.output_tokens", "value": {"intValue": "10"}},
            {"key": "llm_meter.project", "value": {"stringValue": project}}
        ]
    }]}]}]})
    .to_string()
}

async fn fixture() -> Fixture {
    let db = TestDb::new().await;
    let store = pg_store(&db).await;
    let now = Utc::now();
    let mut tokens = BTreeMap::new();
    for (key, role, projects) in [
        ("admin", Role::Admin, vec![]),
        ("ingest", Role::Ingest, vec![A.to_owned()]),
        ("read", Role::Read, vec![A.to_owned()]),
    ] {
        let (token, stored) = auth::generate(role, projects, key.into(), None, now);
        store.insert_token(&stored).await.unwrap();
        tokens.insert(key, token);
    }
    let mut config = Config::from_toml("[webhooks]\nallow = [\"127.0.0.1\"]\n").unwrap();
    config.database_url = Some(db.url.clone());
    let server = TestServer::start_with(config).await;
    let mut fixture = Fixture {
        db,
        server,
        tokens,
        budget_ids: BTreeMap::new(),
    };
    // Usage and a budget for each project, written by the admin.
    for project in [A, B] {
        let unpriced = format!(
            r#"{{"id":"{project}-u","time":"2026-06-01T13:00:00Z","project":"{project}","provider":"openai","model":"gpt-9-preview","tokens":{{"input":10}}}}"#
        );
        let (status, body) = fixture
            .call(
                Caller::Admin,
                reqwest::Method::POST,
                "/v1/usage",
                Some(format!(
                    "[{},{unpriced}]",
                    record(&format!("{project}-1"), project)
                )),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = fixture
            .call(
                Caller::Admin,
                reqwest::Method::POST,
                "/v1/budgets",
                Some(
                    json!({"name": format!("{project}-monthly"), "project": project,
                           "limit_usd": "0.001", "period": "month"})
                    .to_string(),
                ),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let id = serde_json::from_str::<Value>(&body).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        fixture.budget_ids.insert(project, id);
        // Spend this month, over the budget's limit: an alert to see.
        let now = format!(
            r#"{{"id":"{project}-now","time":"{}","project":"{project}","provider":"openai","model":"gpt-5.2","tokens":{{"input":1000}}}}"#,
            Utc::now().to_rfc3339()
        );
        let (status, body) = fixture
            .call(Caller::Admin, reqwest::Method::POST, "/v1/usage", Some(now))
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (_, alerts) = fixture
            .call(Caller::Admin, reqwest::Method::GET, "/v1/alerts", None)
            .await;
        if alerts.contains(A) && alerts.contains(B) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no alerts: {alerts}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    fixture
}

/// What each caller gets, for a route whose project is `alpha` or `bravo`.
struct Row {
    method: reqwest::Method,
    /// `{p}` is the project, `{budget}` its budget's id.
    path: &'static str,
    body: Option<fn(&str) -> String>,
    /// Statuses for Nobody, Admin, IngestA, ReadA on project alpha, then on bravo.
    alpha: [u16; 4],
    bravo: [u16; 4],
}

#[tokio::test]
async fn the_authorization_matrix_holds_on_every_endpoint() {
    let fixture = fixture().await;
    let spend_b_before = fixture.spend(B).await;
    use reqwest::Method as M;
    let rows = [
        Row {
            method: M::POST,
            path: "/v1/usage",
            body: Some(|p| record(&format!("m-{p}-{}", uuid_ish()), p)),
            alpha: [401, 200, 200, 403],
            bravo: [401, 200, 403, 403],
        },
        Row {
            method: M::POST,
            path: "/v1/traces",
            body: Some(|p| span(p, &format!("resp-{p}-{}", uuid_ish()))),
            alpha: [401, 200, 200, 403],
            // The OTLP answer is a partial success naming the refused span.
            bravo: [401, 200, 200, 403],
        },
        Row {
            method: M::GET,
            path: "/v1/spend?project={p}&from=2026-01-01&to=2027-01-01",
            body: None,
            alpha: [401, 200, 403, 200],
            bravo: [401, 200, 403, 403],
        },
        Row {
            method: M::GET,
            path: "/v1/spend?project={p}&format=focus&from=2026-06-01&to=2026-07-01",
            body: None,
            alpha: [401, 200, 403, 200],
            bravo: [401, 200, 403, 403],
        },
        Row {
            method: M::GET,
            path: "/v1/unpriced?project={p}",
            body: None,
            alpha: [401, 200, 403, 200],
            bravo: [401, 200, 403, 403],
        },
        Row {
            method: M::GET,
            path: "/v1/savings?project={p}&from=2026-01-01&to=2027-01-01",
            body: None,
            alpha: [401, 200, 403, 200],
            bravo: [401, 200, 403, 403],
        },
        Row {
            method: M::GET,
            path: "/v1/whatif?model=gpt-5-mini&project={p}&from=2026-01-01&to=2027-01-01",
            body: None,
            alpha: [401, 200, 403, 200],
            bravo: [401, 200, 403, 403],
        },
        Row {
            method: M::GET,
            path: "/v1/budgets/{budget}",
            body: None,
            alpha: [401, 200, 403, 200],
            bravo: [401, 200, 403, 403],
        },
        Row {
            method: M::GET,
            path: "/v1/budgets/{budget}/status",
            body: None,
            alpha: [401, 200, 403, 200],
            bravo: [401, 200, 403, 403],
        },
        Row {
            method: M::GET,
            path: "/v1/budgets/check?project={p}",
            body: None,
            alpha: [401, 200, 200, 200],
            bravo: [401, 200, 403, 403],
        },
        Row {
            method: M::GET,
            path: "/v1/alerts?budget={budget}",
            body: None,
            alpha: [401, 200, 403, 200],
            bravo: [401, 200, 403, 403],
        },
        Row {
            method: M::PUT,
            path: "/v1/budgets/{budget}",
            body: Some(|p| {
                json!({"name": format!("{p}-monthly"), "project": p, "limit_usd": "0.001",
                       "period": "month"})
                .to_string()
            }),
            alpha: [401, 200, 403, 403],
            bravo: [401, 200, 403, 403],
        },
        Row {
            method: M::POST,
            path: "/v1/budgets",
            body: Some(|p| {
                json!({"name": format!("{p}-{}", uuid_ish()), "project": p, "limit_usd": "5",
                       "period": "day"})
                .to_string()
            }),
            alpha: [401, 201, 403, 403],
            bravo: [401, 201, 403, 403],
        },
    ];
    let mut checked = 0;
    for row in &rows {
        for (project, expected) in [(A, row.alpha), (B, row.bravo)] {
            let path = row
                .path
                .replace("{p}", project)
                .replace("{budget}", &fixture.budget_ids[project]);
            for (caller, want) in CALLERS.iter().zip(expected) {
                let body = row.body.map(|make| make(project));
                let (status, answer) = fixture.call(*caller, row.method.clone(), &path, body).await;
                assert_eq!(status, want, "{caller:?} {} {path}: {answer}", row.method);
                if row.method == M::GET && (*caller == Caller::ReadA || *caller == Caller::IngestA)
                {
                    assert!(
                        !answer.contains(B) || project == B && status >= 400,
                        "{caller:?} {path} leaked {B}: {answer}"
                    );
                }
                if row.path == "/v1/traces" && *caller == Caller::IngestA && project == B {
                    assert!(answer.contains("may not write"), "{answer}");
                }
                checked += 1;
            }
        }
    }
    assert_eq!(checked, rows.len() * 8);

    // Unfiltered queries give a scoped reader its own projects only; so do empty or
    // blank project filters, which mean "no filter".
    for path in [
        "/v1/spend?group_by=project&from=2026-01-01&to=2027-01-01",
        "/v1/spend?group_by=project&project=&from=2026-01-01&to=2027-01-01",
        "/v1/spend?group_by=project&project=,&from=2026-01-01&to=2027-01-01",
        "/v1/spend?group_by=project&project=%20&from=2026-01-01&to=2027-01-01",
        "/v1/spend?group_by=project&project=alpha,%20&from=2026-01-01&to=2027-01-01",
        "/v1/budgets",
        "/v1/alerts",
        "/v1/savings?from=2026-01-01&to=2027-01-01",
        "/v1/spend?format=csv&group_by=project&from=2026-01-01&to=2027-01-01",
    ] {
        let (status, answer) = fixture.call(Caller::ReadA, M::GET, path, None).await;
        assert_eq!(status, 200, "{path}: {answer}");
        assert!(answer.contains(A), "{path}: {answer}");
        assert!(!answer.contains(B), "{path} leaked {B}: {answer}");
        if !path.contains("project=alpha") {
            let (_, everything) = fixture.call(Caller::Admin, M::GET, path, None).await;
            assert!(everything.contains(B), "{path}: {everything}");
        }
    }

    // A hard budget over every project blocks alpha's proxy, though alpha's tokens do not
    // see it; a reader sees webhook hosts, never the URLs (a Slack URL is a credential).
    for body in [
        json!({"name": "everything", "limit_usd": "0.000001", "period": "month", "hard": true}),
        json!({"name": "alpha-slack", "project": A, "limit_usd": "100", "period": "month",
               "webhooks": [{"url": "https://hooks.slack.com/services/T000/B000/SECRETXYZ", "format": "slack"}]}),
    ] {
        let (status, answer) = fixture
            .call(
                Caller::Admin,
                M::POST,
                "/v1/budgets",
                Some(body.to_string()),
            )
            .await;
        assert_eq!(status, 201, "{answer}");
    }
    let (status, check) = fixture
        .call(
            Caller::IngestA,
            M::GET,
            "/v1/budgets/check?project=alpha",
            None,
        )
        .await;
    assert_eq!(status, 200);
    let check: Value = serde_json::from_str(&check).unwrap();
    assert_eq!(check["allowed"], false, "{check}");
    assert!(!check.to_string().contains("everything"), "{check}");
    let (_, listed) = fixture
        .call(Caller::ReadA, M::GET, "/v1/budgets", None)
        .await;
    assert!(
        listed.contains("hooks.slack.com") && !listed.contains("SECRETXYZ"),
        "{listed}"
    );
    let (_, listed) = fixture
        .call(Caller::Admin, M::GET, "/v1/budgets", None)
        .await;
    assert!(listed.contains("SECRETXYZ"), "{listed}");

    // Unpriced models carry no project: the scoped reader counts alpha's only.
    let unpriced = |answer: String| -> u64 {
        let answer: Value = serde_json::from_str(&answer).unwrap();
        answer["models"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["requests"].as_u64().unwrap())
            .sum()
    };
    let (_, mine) = fixture
        .call(Caller::ReadA, M::GET, "/v1/unpriced", None)
        .await;
    let (_, all) = fixture
        .call(Caller::Admin, M::GET, "/v1/unpriced", None)
        .await;
    assert_eq!((unpriced(mine), unpriced(all)), (1, 2));

    // A batch from the alpha ingest token: alpha lands, bravo is refused and not stored.
    let (status, answer) = fixture
        .call(
            Caller::IngestA,
            M::POST,
            "/v1/usage",
            Some(format!("[{},{}]", record("mix-a", A), record("mix-b", B))),
        )
        .await;
    assert_eq!(status, 200);
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["accepted"], 1);
    assert_eq!(answer["rejected"][0]["index"], 1);
    assert!(
        answer["rejected"][0]["error"]
            .as_str()
            .unwrap()
            .contains("may not write")
    );

    // Deleting: only the admin, and B's budget survives every other attempt.
    for caller in [Caller::Nobody, Caller::IngestA, Caller::ReadA] {
        let path = format!("/v1/budgets/{}", fixture.budget_ids[B]);
        let (status, _) = fixture.call(caller, M::DELETE, &path, None).await;
        assert!(status == 401 || status == 403, "{caller:?}: {status}");
    }
    let (status, _) = fixture
        .call(
            Caller::Admin,
            M::GET,
            &format!("/v1/budgets/{}", fixture.budget_ids[B]),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = fixture
        .call(
            Caller::Admin,
            M::DELETE,
            &format!("/v1/budgets/{}", fixture.budget_ids[A]),
            None,
        )
        .await;
    assert_eq!(status, 204);

    // B's data changed only by the admin's own writes: two admin records (usage, traces).
    let spend_b_after = fixture.spend(B).await;
    let before: Vec<&str> = spend_b_before.split('/').collect();
    let after: Vec<&str> = spend_b_after.split('/').collect();
    let requests = |v: &[&str]| v[0].parse::<u64>().unwrap();
    assert_eq!(requests(&after), requests(&before) + 2, "{spend_b_after}");
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT id FROM events WHERE project = 'bravo' AND id LIKE 'mix-%' ORDER BY id",
    )
    .fetch_all(&sqlx::PgPool::connect(&fixture.db.url).await.unwrap())
    .await
    .unwrap();
    assert!(rows.is_empty(), "{rows:?}");

    // /metrics and /openapi.json need a token that may read; health never does.
    for (path, want) in [
        // /metrics shows every project: not for a token scoped to some.
        ("/metrics", [401, 200, 403, 403]),
        ("/openapi.json", [401, 200, 403, 200]),
        ("/healthz", [200, 200, 200, 200]),
        ("/readyz", [200, 200, 200, 200]),
        ("/no/such/route", [401, 404, 403, 403]),
    ] {
        for (caller, want) in CALLERS.iter().zip(want) {
            let (status, answer) = fixture.call(*caller, M::GET, path, None).await;
            assert_eq!(status, want, "{caller:?} {path}: {answer}");
        }
    }
}

/// Distinct enough ids for records and budget names within one test run.
fn uuid_ish() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed).to_string()
}

#[tokio::test]
async fn bad_revoked_and_expired_tokens_are_refused_and_401s_say_why() {
    let fixture = fixture().await;
    let store = pg_store(&fixture.db).await;
    let now = Utc::now();
    let (expired, stored) = auth::generate(
        Role::Read,
        vec![],
        "old".into(),
        Some(now - chrono::Duration::seconds(1)),
        now - chrono::Duration::days(1),
    );
    store.insert_token(&stored).await.unwrap();
    let (revoked, stored) = auth::generate(Role::Admin, vec![], "gone".into(), None, now);
    store.insert_token(&stored).await.unwrap();
    let client = &fixture.server.client;
    let get = |token: Option<String>, header: Option<&'static str>| {
        let mut request = client.get(format!("{}/v1/budgets", fixture.server.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(header) = header {
            request = request.header("authorization", header);
        }
        request.send()
    };
    assert_eq!(
        get(Some(revoked.clone()), None).await.unwrap().status(),
        200
    );
    assert!(store.revoke_token(&stored.id, Utc::now()).await.unwrap());
    let admin = fixture.tokens["admin"].clone();
    let mut tampered = admin.clone();
    tampered.pop();
    tampered.push(if admin.ends_with('0') { '1' } else { '0' });
    for (token, header, reason) in [
        (Some(revoked), None, "revoked"),
        (Some(expired), None, "expired"),
        (Some(tampered), None, "not valid"),
        (Some("lmt_nope".to_owned()), None, "not valid"),
        (None, Some("Basic YWRtaW46YWRtaW4="), "Bearer"),
        (None, None, "required"),
    ] {
        let response = get(token, header).await.unwrap();
        assert_eq!(response.status(), 401);
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        let body = response.text().await.unwrap();
        assert!(body.contains(reason), "{reason}: {body}");
    }
}

#[tokio::test]
async fn config_tokens_work_and_the_token_command_creates_lists_and_revokes() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("llm-meter.toml");
    std::fs::write(&config_path, format!("database_url = \"{}\"\n", db.url)).unwrap();
    let run = |args: &[&str]| {
        let output = binary()
            .arg("--config")
            .arg(&config_path)
            .args(args)
            .env_remove("DATABASE_URL")
            .env_remove("LLM_METER_DATABASE_URL")
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8(output.stdout).unwrap(),
            String::from_utf8(output.stderr).unwrap(),
        )
    };
    let (code, out, err) = run(&[
        "token",
        "create",
        "--role",
        "read",
        "--project",
        "alpha",
        "--name",
        "finance",
        "--expires",
        "90d",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let token = out.lines().last().unwrap().to_owned();
    assert!(token.starts_with("lmt_"), "{out}");
    let id = token[4..20].to_owned();
    // The token is shown once: never stored, never listed.
    let (code, listed, _) = run(&["token", "list"]);
    assert_eq!(code, Some(0));
    assert!(listed.contains(&id) && listed.contains("finance") && listed.contains("active"));
    assert!(!listed.contains(&token[21..]), "{listed}");
    let (secret_rows,): (i64,) = sqlx::query_as("SELECT count(*) FROM api_tokens WHERE hash = $1")
        .bind(&token)
        .fetch_one(&sqlx::PgPool::connect(&db.url).await.unwrap())
        .await
        .unwrap();
    assert_eq!(secret_rows, 0);
    // Bad arguments exit 2 with a reason.
    for (args, reason) in [
        (vec!["token", "create", "--role", "root"], "--role"),
        (
            vec!["token", "create", "--role", "admin", "--project", "a"],
            "every project",
        ),
        (
            vec!["token", "create", "--role", "read", "--expires", "soon"],
            "--expires",
        ),
        (
            vec!["token", "create", "--role", "read", "--project", "a,b"],
            "comma",
        ),
    ] {
        let (code, _, err) = run(&args);
        assert_eq!(code, Some(2), "{args:?}");
        assert!(err.contains(reason), "{err}");
    }

    // A config token for the admin, by hash.
    let (code, entry, _) = run(&["token", "create", "--role", "admin", "--for-config"]);
    assert_eq!(code, Some(0));
    let admin = entry.lines().last().unwrap().to_owned();
    let toml: String = entry
        .lines()
        .filter(|l| !l.starts_with("lmt_"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(toml.contains("hash = \"sha256:") && !toml.contains(&admin[21..]));
    let mut config = Config::from_toml(&toml).unwrap();
    config.database_url = Some(db.url.clone());
    let server = TestServer::start_with(config).await;
    let get = |token: &str, path: &str| {
        server
            .client
            .get(format!("{}{path}", server.base))
            .bearer_auth(token.to_owned())
            .send()
    };
    assert_eq!(get(&admin, "/v1/budgets").await.unwrap().status(), 200);
    assert_eq!(
        get(&token, "/v1/spend?project=alpha")
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        get(&token, "/v1/spend?project=beta")
            .await
            .unwrap()
            .status(),
        403
    );
    let (code, out, _) = run(&["token", "revoke", &id]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(
        get(&token, "/v1/spend?project=alpha")
            .await
            .unwrap()
            .status(),
        401
    );
    let (code, _, err) = run(&["token", "revoke", &id]);
    assert_eq!(code, Some(1));
    assert!(err.contains("no active token"));
    let (_, listed, _) = run(&["token", "list"]);
    assert!(listed.contains("revoked"), "{listed}");
}

#[test]
fn serve_refuses_a_public_address_without_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("open.db").display());
    let output = binary()
        .args(["serve", "--listen", "0.0.0.0:0"])
        .env("DATABASE_URL", &url)
        .env_remove("LLM_METER_DATABASE_URL")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("refusing to listen on 0.0.0.0:0") && stderr.contains("token create"),
        "{stderr}"
    );
}

#[tokio::test]
async fn requests_past_the_rate_limit_get_429_with_retry_after() {
    let db = TestDb::new().await;
    let store = pg_store(&db).await;
    let now = Utc::now();
    let (first, stored) = auth::generate(Role::Read, vec![], "one".into(), None, now);
    store.insert_token(&stored).await.unwrap();
    let (second, stored) = auth::generate(Role::Read, vec![], "two".into(), None, now);
    store.insert_token(&stored).await.unwrap();
    let mut config = Config::from_toml("[limits]\nrequests_per_second = 1\nburst = 3\n").unwrap();
    config.database_url = Some(db.url.clone());
    let server = TestServer::start_with(config).await;
    let get = |token: &str, path: &str| {
        server
            .client
            .get(format!("{}{path}", server.base))
            .bearer_auth(token.to_owned())
            .send()
    };
    // The burst, then a refusal that says when to come back.
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(get(&first, "/v1/budgets").await.unwrap().status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 429]);
    let refused = get(&first, "/v1/budgets").await.unwrap();
    assert_eq!(refused.status(), 429);
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    // Per token: another token is not held back; health is never limited.
    assert_eq!(get(&second, "/v1/budgets").await.unwrap().status(), 200);
    for _ in 0..5 {
        let health = server
            .client
            .get(format!("{}/healthz", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(health.status(), 200);
    }
}

#[tokio::test]
async fn an_address_that_keeps_failing_authentication_is_held_off() {
    let db = TestDb::new().await;
    let store = pg_store(&db).await;
    let (good, stored) = auth::generate(Role::Admin, vec![], "ops".into(), None, Utc::now());
    store.insert_token(&stored).await.unwrap();
    let mut config = Config::from_toml("[limits]\nfailed_auth_per_minute = 3\n").unwrap();
    config.database_url = Some(db.url.clone());
    let server = TestServer::start_with(config).await;
    let get = |token: &str| {
        server
            .client
            .get(format!("{}/v1/budgets", server.base))
            .bearer_auth(token.to_owned())
            .send()
    };
    assert_eq!(get(&good).await.unwrap().status(), 200);
    let wrong = format!("lmt_{}_nope", stored.id);
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(get(&wrong).await.unwrap().status().as_u16());
    }
    assert_eq!(statuses, [401, 401, 401, 429]);
    // Failures are held off for the rest of the minute; a good token, even of the same
    // id and from the same address, is not (behind a proxy every client shares one).
    assert_eq!(get(&good).await.unwrap().status(), 200);
    let held = get(&wrong).await.unwrap();
    assert_eq!(held.status(), 429);
    let retry_after: u64 = held.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    // Another token's failures are counted apart.
    let other = "lmt_0123456789abcdef_nope";
    assert_eq!(get(other).await.unwrap().status(), 401);
    let health = server
        .client
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}
