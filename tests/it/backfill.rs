//! `llm-meter ingest` (backfill) and `llm-meter report`, as the real binary against Postgres.

use std::io::Write;

use crate::helpers::{binary, book};
use crate::pg::TestDb;
use crate::store_contract::{expected, generated_lines};

fn run(db: &TestDb, args: &[&str]) -> (i32, String, String) {
    let output = binary()
        .env("DATABASE_URL", &db.url)
        .env_remove("LLM_METER_DATABASE_URL")
        .args(args)
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[tokio::test]
async fn backfill_twice_adds_nothing_the_second_time_and_report_matches() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let lines = generated_lines("bf", 0..2500);
    let plain = dir.path().join("usage.jsonl");
    let mut text = lines[..1500].join("\n");
    text.push_str("\n{\"model\":\"gpt-5.2\",\"tokens\":{\"output\":1.5}}\n");
    std::fs::write(&plain, text).unwrap();
    let gz = dir.path().join("usage.1.jsonl.gz");
    let mut encoder = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).unwrap(),
        flate2::Compression::fast(),
    );
    encoder
        .write_all(lines[1500..].join("\n").as_bytes())
        .unwrap();
    encoder.finish().unwrap();
    let want = expected(book(), &lines);

    let (code, stdout, stderr) = run(
        &db,
        &["ingest", plain.to_str().unwrap(), gz.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stdout.trim(),
        format!(
            "read 2501, accepted 2500, duplicates 0, rejected 1, unpriced {}, cost ${}",
            want.unpriced,
            want.cost.normalize()
        )
    );
    let (code, stdout, _) = run(
        &db,
        &["ingest", plain.to_str().unwrap(), gz.to_str().unwrap()],
    );
    assert_eq!(code, 0);
    assert_eq!(
        stdout.trim(),
        format!("read 2501, accepted 0, duplicates 2500, rejected 1, unpriced 0, cost $0")
    );

    let (code, stdout, stderr) = run(
        &db,
        &[
            "report",
            "--from",
            "2026-04-01T00:00:00Z",
            "--to",
            "2026-05-01T00:00:00Z",
            "--group-by",
            "project",
            "--format",
            "json",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["total_cost_usd"], want.cost.normalize().to_string());
    for row in report["rows"].as_array().unwrap() {
        let project = row["project"].as_str().unwrap();
        assert_eq!(
            row["cost_usd"],
            want.cost_by_project[project].normalize().to_string(),
            "{project}"
        );
    }

    let (code, stdout, _) = run(
        &db,
        &[
            "report",
            "--from",
            "2026-04-01",
            "--to",
            "2026-05-01",
            "--group-by",
            "project,model",
            "--format",
            "csv",
        ],
    );
    assert_eq!(code, 0);
    assert!(
        stdout.starts_with(
            "project,model,requests,unpriced_requests,partially_priced_requests,tokens_input"
        ),
        "{stdout}"
    );
    let (code, stdout, _) = run(
        &db,
        &["report", "--from", "2026-04-01", "--to", "2026-05-01"],
    );
    assert_eq!(code, 0);
    assert!(
        stdout.lines().last().unwrap().starts_with("total"),
        "{stdout}"
    );

    let (code, _, stderr) = run(
        &db,
        &[
            "report",
            "--from",
            "2026-04-01",
            "--to",
            "2026-05-01",
            "--group-by",
            "colour",
        ],
    );
    assert_eq!(code, 2);
    assert!(stderr.contains("invalid group_by"), "{stderr}");
}
