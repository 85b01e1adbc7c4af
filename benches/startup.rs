//! `cargo bench --bench startup`: how long the real binary takes to be useful with the
//! whole price catalog loaded: `llm-meter cost` pricing one line (start to exit), and
//! `llm-meter serve` on a fresh embedded store (start to the first `/healthz` answer).
//!
//! RUNS=20 (default). Prints the median and the slowest run of each.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_llm-meter"))
}

fn summary(name: &str, mut times: Vec<Duration>) {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{name}: median {:.0} ms, slowest {:.0} ms, fastest {:.0} ms over {} runs",
        ms(times[times.len() / 2]),
        ms(times[times.len() - 1]),
        ms(times[0]),
        times.len()
    );
}

fn main() {
    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(20);
    let dir = tempfile::tempdir().unwrap();
    let line = dir.path().join("one.jsonl");
    std::fs::write(
        &line,
        r#"{"id":"a","provider":"openai","model":"gpt-5.2","tokens":{"input":1000,"output":10}}"#,
    )
    .unwrap();

    let mut cost = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        let output = binary()
            .current_dir(dir.path())
            .arg("cost")
            .arg(&line)
            .output()
            .unwrap();
        cost.push(started.elapsed());
        assert!(output.status.success());
        assert!(String::from_utf8_lossy(&output.stdout).contains("\"priced\":true"));
    }
    summary("cost, one line", cost);

    let mut serve = Vec::new();
    for run in 0..runs {
        let store = dir.path().join(format!("serve-{run}.db"));
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let started = Instant::now();
        let mut child = binary()
            .current_dir(dir.path())
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .env("DATABASE_URL", format!("sqlite://{}", store.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Poll /healthz with a bare HTTP request until it answers.
        loop {
            if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                let _ = stream.write_all(b"GET /healthz HTTP/1.0\r\n\r\n");
                let mut answer = String::new();
                let _ = std::io::Read::read_to_string(&mut stream, &mut answer);
                if answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200") {
                    break;
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "serve never answered"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        serve.push(started.elapsed());
        let _ = child.kill();
        let _ = child.wait();
    }
    summary(
        "serve, to the first /healthz answer (fresh SQLite store)",
        serve,
    );
}
