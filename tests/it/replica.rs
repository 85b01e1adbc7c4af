//! `[store] read_url` against a real streaming replica: a Postgres cluster made for the
//! test with `initdb`, and a second one cloned from it with `pg_basebackup -R`. Spend is
//! read on the replica; budgets are evaluated on the primary, also while the replica
//! lags behind (its replay paused).

use std::path::{Path, PathBuf};
use std::process::Command;

use llm_meter::config::Config;
use serde_json::{Value, json};
use sqlx::Connection;
use sqlx::postgres::PgConnection;

use crate::http_ingest::TestServer;

/// The newest installed Postgres server programs.
fn postgres_bin() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|dirs| {
            dirs.filter_map(|d| Some(d.ok()?.path().join("bin")))
                .collect()
        })
        .unwrap_or_default();
    versions.retain(|bin| bin.join("pg_basebackup").exists() && bin.join("initdb").exists());
    versions.sort();
    versions.pop().unwrap_or_else(|| {
        panic!(
            "\n\nThe replica test runs its own Postgres clusters and needs the server programs \
             (initdb, pg_ctl, pg_basebackup) under /usr/lib/postgresql/*/bin: \
             `apt-get install postgresql`.\n\n"
        )
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs a Postgres program as the `postgres` user when the tests run as root (the
/// server refuses to run as root).
fn run(bin: &Path, program: &str, args: &[&str]) {
    let as_root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0\n"))
        .unwrap_or(false);
    let mut command = if as_root {
        let mut command = Command::new("runuser");
        command
            .args(["-u", "postgres", "--"])
            .arg(bin.join(program));
        command
    } else {
        Command::new(bin.join(program))
    };
    let output = command.args(args).output().unwrap();
    assert!(
        output.status.success(),
        "{program} {args:?}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A primary and its streaming replica, stopped when dropped.
struct ReplicaPair {
    bin: PathBuf,
    root: tempfile::TempDir,
    primary_port: u16,
    replica_port: u16,
}

impl ReplicaPair {
    fn start() -> ReplicaPair {
        let bin = postgres_bin();
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().to_str().unwrap().to_owned();
        let _ = Command::new("chown")
            .args(["postgres:postgres", &dir])
            .status();
        let (primary, replica) = (format!("{dir}/primary"), format!("{dir}/replica"));
        let (primary_port, replica_port) = (free_port(), free_port());
        run(
            &bin,
            "initdb",
            &["-D", &primary, "-U", "postgres", "-A", "trust", "--no-sync"],
        );
        let settings = |port: u16| {
            format!(
                "\nport = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{dir}'\n\
                 fsync = off\nwal_level = replica\nmax_wal_senders = 4\nhot_standby = on\n"
            )
        };
        append(
            &format!("{primary}/postgresql.conf"),
            &settings(primary_port),
        );
        run(
            &bin,
            "pg_ctl",
            &[
                "-D",
                &primary,
                "-l",
                &format!("{dir}/primary.log"),
                "-w",
                "start",
            ],
        );
        let port = primary_port.to_string();
        run(
            &bin,
            "pg_basebackup",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "postgres",
                "-D",
                &replica,
                "-R",
                "-X",
                "stream",
                "-c",
                "fast",
            ],
        );
        append(
            &format!("{replica}/postgresql.conf"),
            &settings(replica_port),
        );
        run(
            &bin,
            "pg_ctl",
            &[
                "-D",
                &replica,
                "-l",
                &format!("{dir}/replica.log"),
                "-w",
                "start",
            ],
        );
        ReplicaPair {
            bin,
            root,
            primary_port,
            replica_port,
        }
    }

    fn url(port: u16, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{port}/{database}")
    }
}

fn append(path: &str, text: &str) {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
}

impl Drop for ReplicaPair {
    fn drop(&mut self) {
        for cluster in ["replica", "primary"] {
            let data = self.root.path().join(cluster);
            let _ = std::panic::catch_unwind(|| {
                run(
                    &self.bin,
                    "pg_ctl",
                    &["-D", data.to_str().unwrap(), "-m", "immediate", "stop"],
                );
            });
        }
    }
}

/// Polls `path` until `done` holds (the replica replaying), or fails after 20 s.
async fn poll(server: &TestServer, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (status, body) = server.call(None, reqwest::Method::GET, path, None).await;
        if status == 200 && done(&body) {
            return body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{path}: {status} {body}"
        );
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

fn record(id: &str, input: u64) -> Value {
    json!({"id": id, "time": chrono::Utc::now().to_rfc3339(), "project": "p", "provider": "openai",
           "model": "gpt-5.2", "tokens": {"input": input, "output": 0}})
}

#[tokio::test]
async fn spend_is_read_on_the_replica_and_budgets_on_the_primary_even_while_it_lags() {
    let pair = ReplicaPair::start();
    let mut admin = PgConnection::connect(&ReplicaPair::url(pair.primary_port, "postgres"))
        .await
        .unwrap();
    sqlx::query("CREATE DATABASE meter")
        .execute(&mut admin)
        .await
        .unwrap();
    let mut config = Config {
        database_url: Some(ReplicaPair::url(pair.primary_port, "meter")),
        ..Config::default()
    };
    config.store.read_url = Some(ReplicaPair::url(pair.replica_port, "meter"));
    config.metrics.refresh_interval = std::time::Duration::from_millis(100);
    let server = TestServer::start_with(config).await;
    let (status, _) = server
        .call(
            None,
            reqwest::Method::POST,
            "/v1/budgets",
            Some(json!({"name": "p-month", "project": "p", "limit_usd": "10", "period": "month"})),
        )
        .await;
    assert_eq!(status, 201);
    // 4 × 1M input tokens of gpt-5.2 at $1.75: $7.
    for i in 0..4 {
        let (status, body) = server
            .call(
                None,
                reqwest::Method::POST,
                "/v1/usage",
                Some(record(&format!("r{i}"), 1_000_000)),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let spend = "/v1/spend?project=p&group_by=project";
    poll(&server, spend, |b| b["total_cost_usd"] == "7").await;

    // The replica stops replaying: it lags behind the primary from now on.
    let mut standby = PgConnection::connect(&ReplicaPair::url(pair.replica_port, "meter"))
        .await
        .unwrap();
    sqlx::query("SELECT pg_wal_replay_pause()")
        .execute(&mut standby)
        .await
        .unwrap();
    let (status, _) = server
        .call(
            None,
            reqwest::Method::POST,
            "/v1/usage",
            Some(record("r4", 2_000_000)),
        )
        .await;
    assert_eq!(status, 200);
    // Budgets are evaluated on the primary: they reach the $10.50 (the limit passed)
    // while the replica still says $7.
    let check = poll(&server, "/v1/budgets/check?project=p", |b| {
        b["budgets"][0]["spend_usd"] == "10.5"
    })
    .await;
    assert_eq!(check["budgets"][0]["exceeded"], true, "{check}");
    // Spend, read on the lagging replica, does not have it yet, and the lag shows.
    let (_, lagging) = server.call(None, reqwest::Method::GET, spend, None).await;
    assert_eq!(lagging["total_cost_usd"], "7", "{lagging}");
    poll_lag(&server, |lag| lag > 0.0).await;
    // The 100% alert fires on the primary's figures, whatever the replica says.
    let full = |b: &Value| {
        b["alerts"]
            .as_array()
            .and_then(|a| a.iter().find(|alert| alert["threshold"] == "1").cloned())
    };
    let alerts = poll(&server, "/v1/alerts", |b| full(b).is_some()).await;
    assert_eq!(full(&alerts).unwrap()["spend_usd"], "10.5", "{alerts}");

    sqlx::query("SELECT pg_wal_replay_resume()")
        .execute(&mut standby)
        .await
        .unwrap();
    poll(&server, spend, |b| b["total_cost_usd"] == "10.5").await;
    poll_lag(&server, |lag| lag == 0.0).await;
    server.daemon.stop().await.unwrap();
}

/// Polls `/metrics` until the replica lag gauge satisfies `done`.
async fn poll_lag(server: &TestServer, done: impl Fn(f64) -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let text = server
            .client
            .get(format!("{}/metrics", server.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let lag = text
            .lines()
            .find(|l| l.starts_with("llm_meter_read_replica_lag_seconds{store=\"replica\"}"))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok());
        if lag.is_some_and(&done) {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "lag {lag:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
