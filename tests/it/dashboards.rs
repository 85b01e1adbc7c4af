//! The Grafana dashboards, proven against real parts: every Prometheus query of every panel
//! (and every variable) through a real Prometheus scraping a real `llm-meter serve`, every
//! SQL query of the finance dashboard against Postgres with data in it, and the files
//! themselves checked as dashboard JSON.

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use chrono::{Datelike, TimeZone, Utc};
use rust_decimal::Decimal;
use serde_json::Value;

use crate::budgets::Receiver;
use crate::http_ingest::TestServer;
use crate::pg::TestDb;

fn dashboard_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboards/grafana")
}

fn load(name: &str) -> Value {
    let path = dashboard_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

const PROMETHEUS_DASHBOARDS: [&str; 2] = ["llm-meter-spend.json", "llm-meter-operations.json"];
const FINANCE_DASHBOARD: &str = "llm-meter-finance.json";

/// Every panel, rows' nested panels included.
fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut all = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        all.push(panel);
        if let Some(nested) = panel["panels"].as_array() {
            all.extend(nested);
        }
    }
    all
}

fn variables(dashboard: &Value) -> &Vec<Value> {
    dashboard["templating"]["list"]
        .as_array()
        .expect("variables")
}

/// (panel title, query) for every target with the given field (`expr` or `rawSql`).
fn queries<'a>(dashboard: &'a Value, field: &str) -> Vec<(&'a str, &'a str)> {
    panels(dashboard)
        .into_iter()
        .flat_map(|panel| {
            let title = panel["title"].as_str().unwrap_or("?");
            panel["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(move |t| t[field].as_str().map(|q| (title, q)))
        })
        .collect()
}

#[test]
fn every_dashboard_file_is_valid_dashboard_json() {
    let mut files: Vec<String> = std::fs::read_dir(dashboard_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json"))
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "llm-meter-finance.json",
            "llm-meter-operations.json",
            "llm-meter-spend.json"
        ]
    );
    let mut uids = HashSet::new();
    for file in &files {
        let dashboard = load(file);
        let uid = dashboard["uid"].as_str().expect("a uid");
        assert!(
            uid.len() <= 40 && uids.insert(uid.to_owned()),
            "{file}: uid {uid}"
        );
        assert_eq!(
            Some(uid),
            file.strip_suffix(".json"),
            "uid follows the file name"
        );
        assert!(dashboard["title"].as_str().is_some_and(|t| !t.is_empty()));
        assert!(dashboard["schemaVersion"].as_u64().unwrap() >= 36, "{file}");
        assert!(dashboard.get("id").is_none(), "{file}: no instance id");
        assert!(
            dashboard.get("__inputs").is_none(),
            "{file}: no import inputs"
        );

        let datasource = variables(&dashboard)
            .iter()
            .find(|v| v["name"] == "datasource")
            .unwrap_or_else(|| panic!("{file}: a datasource variable"));
        assert_eq!(datasource["type"], "datasource");
        let plugin = datasource["query"].as_str().unwrap();
        assert!(
            ["prometheus", "grafana-postgresql-datasource"].contains(&plugin),
            "{file}: {plugin}"
        );

        let mut ids = HashSet::new();
        let mut queried = 0;
        for panel in panels(&dashboard) {
            let title = panel["title"].as_str().unwrap_or("?");
            assert!(!title.is_empty(), "{file}: a panel without a title");
            assert!(
                ids.insert(panel["id"].as_u64().unwrap()),
                "{file}: id of {title}"
            );
            let grid = &panel["gridPos"];
            assert!(
                grid["w"].as_u64().unwrap() <= 24 && grid["x"].as_u64().unwrap() < 24,
                "{file}: {title} is off the grid"
            );
            if panel["type"] == "row" {
                continue;
            }
            // Panels and targets name their datasource by the variable, never by id.
            let panel_source = &panel["datasource"];
            assert_eq!(panel_source["uid"], "${datasource}", "{file}: {title}");
            assert_eq!(panel_source["type"], plugin, "{file}: {title}");
            let targets = panel["targets"].as_array().expect("targets");
            assert!(!targets.is_empty(), "{file}: {title} has no query");
            for target in targets {
                assert_eq!(&target["datasource"], panel_source, "{file}: {title}");
                queried += 1;
            }
            let unit = panel["fieldConfig"]["defaults"]["unit"].as_str();
            assert!(unit.is_some(), "{file}: {title} has no unit");
            // Money is shown as money: the panel's unit, or its money columns'.
            let queries_money = panel["targets"].to_string().contains("usd");
            if queries_money && !title.starts_with("Requests") {
                assert!(
                    panel["fieldConfig"].to_string().contains("\"currencyUSD\""),
                    "{file}: {title} shows USD without the currencyUSD unit"
                );
            }
        }
        assert!(queried >= 5, "{file}");
        for (title, expr) in queries(&dashboard, "expr") {
            if expr.contains("rate(") {
                assert!(
                    expr.contains("[$__rate_interval]"),
                    "{file}: {title}: rates use $__rate_interval: {expr}"
                );
            }
            assert!(!expr.contains("[5m]") && !expr.contains("[1m]"), "{title}");
        }
        for (title, sql) in queries(&dashboard, "rawSql") {
            let sql = sql.to_lowercase();
            // Bounded: by the time range, and a limit where rows are not aggregated.
            assert!(
                sql.contains("$__timefilter(") || sql.contains("$__timefrom()"),
                "{file}: {title}: {sql}"
            );
            assert!(
                sql.contains("sum(") || sql.contains("limit "),
                "{file}: {title}: {sql}"
            );
        }
        // No datasource ids or instance-specific uids anywhere.
        let text = dashboard.to_string();
        assert!(!text.contains("\"datasourceId\""), "{file}");
        for source in text.match_indices("\"uid\":") {
            let rest = &text[source.0 + 6..];
            assert!(
                rest.starts_with("\"${datasource}\"") || rest.starts_with(&format!("\"{uid}\"")),
                "{file}: {}",
                &rest[..rest.len().min(40)]
            );
        }
    }
    // The spend dashboard's budget gauge shows 50/80/100%.
    let spend = load("llm-meter-spend.json");
    let gauge = panels(&spend)
        .into_iter()
        .find(|p| p["title"] == "Budget utilization")
        .unwrap();
    let steps: Vec<Option<f64>> = gauge["fieldConfig"]["defaults"]["thresholds"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["value"].as_f64())
        .collect();
    assert_eq!(steps, [None, Some(0.5), Some(0.8), Some(1.0)]);
}

/// A `llm-meter serve` child process, killed on drop.
struct Serve {
    child: Child,
    base: String,
}

impl Serve {
    /// Starts the binary on 127.0.0.1:0 and reads the address it logs.
    fn start(config: &Path) -> Serve {
        let mut child = crate::helpers::serve_command(config)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start llm-meter serve");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut log = Vec::new();
        let addr = loop {
            let Some(Ok(line)) = lines.next() else {
                panic!("serve exited before listening:\n{}", log.join("\n"));
            };
            log.push(line.clone());
            if let Some((_, rest)) = line.split_once("Listening. addr=") {
                break rest.split_whitespace().next().unwrap().to_owned();
            }
        };
        // Keep draining the log so the daemon never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Serve {
            child,
            base: format!("http://{addr}"),
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A real Prometheus (the Debian `prometheus` package) scraping one target every second.
struct Prometheus {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    async fn start(target: &str) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: llm-meter\n    static_configs:\n      - targets: [\"{target}\"]\n"
            ),
        )
        .unwrap();
        // Prometheus takes no port 0: take a free port and hand it over.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = std::process::Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "This test runs a real Prometheus ({e}). Install it with `apt-get install prometheus` (.ci/run does so when it is missing)."
                )
            });
        let prometheus = Prometheus {
            child,
            base: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = client
                .get(format!("{}/-/ready", prometheus.base))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return prometheus;
            }
            assert!(
                Instant::now() < deadline,
                "Prometheus never got ready: {}",
                std::fs::read_to_string(prometheus._dir.path().join("prometheus.log"))
                    .unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// An instant query; panics unless Prometheus accepts it.
    async fn query(&self, query: &str) -> Value {
        let mut url = reqwest::Url::parse(&format!("{}/api/v1/query", self.base)).unwrap();
        url.query_pairs_mut().append_pair("query", query);
        let answer: Value = reqwest::Client::new()
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(answer["status"], "success", "{query}: {answer}");
        answer["data"].clone()
    }

    /// The samples of an instant vector query.
    async fn vector(&self, query: &str) -> Vec<Value> {
        let data = self.query(query).await;
        data["result"].as_array().cloned().unwrap_or_default()
    }

    /// Waits until `query` returns a sample whose value `ready` accepts.
    async fn wait_for(&self, query: &str, ready: impl Fn(f64) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let samples = self.vector(query).await;
            let value = samples
                .first()
                .and_then(|s| s["value"][1].as_str())
                .and_then(|v| v.parse::<f64>().ok());
            if value.is_some_and(&ready) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {query}: {samples:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One round of traffic that gives every dashboard series a sample: two projects,
/// cached and written input, a batch record, an unpriced model, a rejected line, a 400.
async fn traffic(base: &str, round: u32) -> u64 {
    let now = Utc::now().to_rfc3339();
    let records = [
        format!(
            r#"{{"id":"s{round}","time":"{now}","project":"search","provider":"openai","model":"gpt-5.2","tokens":{{"input":500000,"cached_input":200000,"output":50000,"reasoning":5000}}}}"#
        ),
        format!(
            r#"{{"id":"a{round}","time":"{now}","project":"ads","provider":"anthropic","model":"claude-sonnet-4-5","tokens":{{"input":20000,"cached_input":80000,"cache_write_5m":10000,"output":3000}}}}"#
        ),
        format!(
            r#"{{"id":"b{round}","time":"{now}","project":"search","provider":"openai","model":"gpt-5-mini","batch":true,"tokens":{{"input":100000,"output":1000}}}}"#
        ),
        format!(
            r#"{{"id":"u{round}","time":"{now}","project":"ads","provider":"openai","model":"gpt-9-preview","tokens":{{"input":1000,"output":10}}}}"#
        ),
        r#"{"model":"gpt-5.2","tokens":{"input":-5}}"#.to_owned(),
    ];
    let client = reqwest::Client::new();
    let answer: Value = client
        .post(format!("{base}/v1/usage"))
        .header("content-type", "application/x-ndjson")
        .body(records.join("\n"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["accepted"], 4, "{answer}");
    let bad = client
        .get(format!("{base}/v1/spend?group_by=colour"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    4
}

/// Grafana's multi-value format for a Prometheus regex: `(a|b)`.
fn regex_of(values: &[String]) -> String {
    format!("({})", values.join("|"))
}

/// What Grafana puts in place of its built-in variables, for queries run now.
fn substitute_builtins(query: &str) -> String {
    query
        .replace("$__rate_interval", "1m")
        .replace("$__interval", "15s")
        .replace("$__range", "1h")
}

/// The values a Grafana `label_values(metric, label)` variable offers.
async fn label_values(prometheus: &Prometheus, definition: &str) -> Vec<String> {
    let inner = definition
        .strip_prefix("label_values(")
        .and_then(|d| d.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{definition}"));
    let (metric, label) = inner.rsplit_once(',').unwrap();
    let (metric, label) = (metric.trim(), label.trim());
    let mut values: Vec<String> = prometheus
        .vector(&format!("group by ({label}) ({metric})"))
        .await
        .iter()
        .filter_map(|s| s["metric"][label].as_str().map(str::to_owned))
        .collect();
    values.sort();
    values
}

#[tokio::test]
async fn every_prometheus_query_of_the_dashboards_returns_data_from_a_real_prometheus() {
    let db = TestDb::new().await;
    let receiver = Receiver::start(0).await;
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let tail_line = |id: u32| {
        format!(
            r#"{{"id":"t{id}","time":"{}","provider":"openai","model":"gpt-5.2","tokens":{{"input":1000,"output":10}}}}"#,
            Utc::now().to_rfc3339()
        ) + "\n"
    };
    std::fs::write(logs.join("proxy.jsonl"), tail_line(1)).unwrap();
    let config = dir.path().join("llm-meter.toml");
    // A budget whose period began in 2020, so it has a forecast whatever day this runs.
    std::fs::write(
        &config,
        format!(
            r#"database_url = "{db}"
[metrics]
refresh_interval = "100ms"
[alerts]
evaluate_interval = "200ms"
debounce = "10ms"
[webhooks]
allow = ["127.0.0.1"]
poll_interval = "50ms"
[[collectors]]
name = "proxy"
paths = ["{logs}/*.jsonl"]
project = "tail"
poll_interval = "50ms"
[[rate_limits]]
provider = "openai"
model = "gpt-5.2"
rpm = 500
tpm = 500000
[[budgets]]
name = "contract"
limit_usd = "1000000"
period = {{ cron = "0 0 0 1 1 * 2020,2098,2099" }}
thresholds = [{{ usd = "1" }}, {{ usd = "3" }}]
forecast = true
webhooks = [{{ url = "{hook}/hook" }}]
"#,
            db = db.url,
            logs = logs.display(),
            hook = receiver.url,
        ),
    )
    .unwrap();
    let serve = Serve::start(&config);
    let target = serve.base.strip_prefix("http://").unwrap().to_owned();
    let mut stored = 1 + traffic(&serve.base, 1).await;
    receiver.wait_for("the $1 alert", |r| !r.is_empty()).await;

    let prometheus = Prometheus::start(&target).await;
    // Every family scraped once before the second round, so rates have two samples.
    for family in [
        "llm_meter_webhook_deliveries_total",
        "llm_meter_budget_forecast_usd",
        "llm_meter_project_savings_usd",
        "llm_meter_collector_lag_bytes",
        "llm_meter_batch_requests_total",
        "llm_meter_http_requests_total",
        "llm_meter_rate_limit_utilization_ratio",
    ] {
        prometheus
            .wait_for(&format!("count({family})"), |n| n >= 1.0)
            .await;
    }
    stored += traffic(&serve.base, 2).await;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(logs.join("proxy.jsonl"))
        .unwrap();
    std::io::Write::write_all(&mut file, tail_line(2).as_bytes()).unwrap();
    stored += 1;
    receiver.wait_for("the $3 alert", |r| r.len() >= 2).await;
    prometheus
        .wait_for("sum(llm_meter_requests_total)", |n| n == stored as f64)
        .await;
    prometheus
        .wait_for(
            r#"sum(llm_meter_webhook_deliveries_total{outcome="delivered"})"#,
            |n| n >= 2.0,
        )
        .await;

    let mut checked = 0;
    for file in PROMETHEUS_DASHBOARDS {
        let dashboard = load(file);
        // Variables first, in order: later ones may use earlier ones.
        let mut values: BTreeMap<String, String> = BTreeMap::new();
        for variable in variables(&dashboard) {
            if variable["type"] != "query" {
                continue;
            }
            let name = variable["name"].as_str().unwrap();
            let mut definition = variable["definition"].as_str().unwrap().to_owned();
            for (other, value) in &values {
                definition = definition.replace(&format!("${other}"), value);
            }
            let offered = label_values(&prometheus, &definition).await;
            assert!(
                !offered.is_empty(),
                "{file}: variable {name} offers nothing"
            );
            values.insert(name.to_owned(), regex_of(&offered));
        }
        for (title, expr) in queries(&dashboard, "expr") {
            let mut query = substitute_builtins(expr);
            for (name, value) in &values {
                query = query.replace(&format!("${name}"), value);
            }
            assert!(
                !query.contains('$'),
                "{file}: {title}: unknown variable in {query}"
            );
            let data = prometheus.query(&query).await;
            let result = &data["result"];
            let has_data = match data["resultType"].as_str() {
                Some("vector") | Some("matrix") => result.as_array().is_some_and(|r| !r.is_empty()),
                Some("scalar") => true,
                _ => false,
            };
            assert!(has_data, "{file}: {title}: no data for {query}: {data}");
            checked += 1;
        }
    }
    assert!(checked >= 25, "only {checked} queries");

    // The stat panels show the right figures: spend this month is what the API says.
    let spend: Value = reqwest::get(format!("{}/v1/spend", serve.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let api_total: f64 = spend["total_cost_usd"].as_str().unwrap().parse().unwrap();
    let dashboard_total = {
        let samples = prometheus
            .vector(r#"sum(llm_meter_project_spend_usd{period="month", project=~".*"})"#)
            .await;
        samples[0]["value"][1]
            .as_str()
            .unwrap()
            .parse::<f64>()
            .unwrap()
    };
    assert!(
        (api_total - dashboard_total).abs() < 1e-6,
        "{api_total} vs {dashboard_total}"
    );
}

/// Grafana's SQL macros and a multi-value variable, as Grafana expands them.
fn expand_sql(
    sql: &str,
    from: chrono::DateTime<Utc>,
    to: chrono::DateTime<Utc>,
    projects: &[String],
) -> String {
    let stamp = |t: chrono::DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut expanded = sql.to_owned();
    while let Some(start) = expanded.find("$__timeFilter(") {
        let end = start + expanded[start..].find(')').unwrap();
        let column = &expanded[start + "$__timeFilter(".len()..end];
        let filter = format!("{column} BETWEEN '{}' AND '{}'", stamp(from), stamp(to));
        expanded.replace_range(start..=end, &filter);
    }
    let quoted: Vec<String> = projects.iter().map(|p| format!("'{p}'")).collect();
    expanded
        .replace("$__timeFrom()", &format!("'{}'", stamp(from)))
        .replace("$__timeTo()", &format!("'{}'", stamp(to)))
        .replace("$project", &quoted.join(","))
}

#[tokio::test]
async fn every_finance_query_runs_on_postgres_and_monthly_totals_equal_the_spend_api() {
    let db = TestDb::new().await;
    let server = TestServer::start(&db).await;
    // Usage in three UTC months, one record a minute before a month ends.
    let now = Utc::now();
    let this_month = Utc
        .with_ymd_and_hms(now.year(), now.month(), 1, 0, 0, 0)
        .unwrap();
    let months: Vec<chrono::DateTime<Utc>> = (0..3)
        .map(|back| this_month - chrono::Months::new(back))
        .rev()
        .collect();
    let mut lines = Vec::new();
    for (m, start) in months.iter().enumerate() {
        for (i, (project, provider, model)) in [
            ("search", "openai", "gpt-5.2"),
            ("ads", "anthropic", "claude-sonnet-4-5"),
            ("search", "google", "gemini-2.5-flash"),
        ]
        .iter()
        .enumerate()
        {
            let time = if i == 0 && m > 0 {
                *start - chrono::Duration::minutes(1)
            } else {
                *start + chrono::Duration::hours(i as i64 + 1)
            };
            lines.push(format!(
                r#"{{"id":"f{m}-{i}","time":"{}","project":"{project}","provider":"{provider}","model":"{model}","tokens":{{"input":{},"cached_input":3000,"output":777}}}}"#,
                time.to_rfc3339(),
                10_000 * (m + 1) + 37 * i
            ));
        }
    }
    let (status, answer) = server
        .post("/v1/usage", "application/x-ndjson", lines.join("\n"))
        .await;
    assert_eq!((status, &answer["accepted"]), (200, &Value::from(9)));

    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let dashboard = load(FINANCE_DASHBOARD);
    let variable = variables(&dashboard)
        .iter()
        .find(|v| v["name"] == "project")
        .unwrap();
    let (from, to) = (months[0], now + chrono::Duration::minutes(1));
    let projects: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(expand_sql(
        variable["query"].as_str().unwrap(),
        from,
        to,
        &[],
    )))
    .fetch_all(&pool)
    .await
    .unwrap();
    let projects: Vec<String> = projects.into_iter().map(|(p,)| p).collect();
    assert_eq!(projects, ["ads", "search"]);

    let mut checked = 0;
    for (title, sql) in queries(&dashboard, "rawSql") {
        let sql = expand_sql(sql, from, to, &projects);
        assert!(!sql.contains('$'), "{title}: {sql}");
        let count: (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM ({sql}) AS panel"
        )))
        .fetch_one(&pool)
        .await
        .unwrap_or_else(|e| panic!("{title}: {e}\n{sql}"));
        assert!(count.0 > 0, "{title}: no rows\n{sql}");
        checked += 1;
    }
    assert!(checked >= 7, "{checked}");

    // The monthly totals panel, month by month, against GET /v1/spend.
    let (_, monthly) = queries(&dashboard, "rawSql")
        .into_iter()
        .find(|(title, _)| *title == "Monthly totals")
        .unwrap();
    let rows: Vec<(String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT month, CAST(cost_usd AS TEXT) FROM ({}) AS panel",
        expand_sql(monthly, from, to, &projects)
    )))
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 3, "{rows:?}");
    for ((month, cost), start) in rows.iter().zip(&months) {
        assert_eq!(month, &start.format("%Y-%m").to_string());
        let end = *start + chrono::Months::new(1);
        let (status, spend) = server
            .get(format!(
                "/v1/spend?from={}&to={}",
                start.format("%Y-%m-%d"),
                end.format("%Y-%m-%d")
            ))
            .await;
        assert_eq!(status, 200, "{spend}");
        let api: Decimal = spend["total_cost_usd"].as_str().unwrap().parse().unwrap();
        let panel: Decimal = cost.parse().unwrap();
        assert!(api > Decimal::ZERO);
        assert_eq!(panel, api, "{month}");
    }
}

#[test]
fn the_prometheus_alerting_rules_check_and_pass_their_unit_tests() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboards/prometheus");
    for args in [
        ["check", "rules", "llm-meter-alerts.yml"],
        ["test", "rules", "llm-meter-alerts.test.yml"],
    ] {
        let output = std::process::Command::new("promtool")
            .args(args)
            .current_dir(&dir)
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "This test runs the real `promtool` ({e}). Install it with `apt-get install prometheus` (.ci/run does so when it is missing)."
                )
            });
        assert!(
            output.status.success(),
            "promtool {args:?}:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
