//! `llm-meter cost` and the command-line contract, run as the real binary.

use std::io::Write;
use std::process::Stdio;

use serde_json::Value;

use crate::helpers::{binary, sample};

fn run_cost(args: &[&str], stdin: &str) -> (i32, Vec<Value>, String) {
    let mut child = binary()
        .arg("cost")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let values = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (
        output.status.code().unwrap(),
        values,
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[test]
fn cost_prices_stdin_line_by_line_and_reports_bad_lines_in_place() {
    let input = format!(
        "{}\n\n{}\nnot json\n{}\n",
        r#"{"id":"a","time":"2026-03-01T12:00:00Z","provider":"openai","model":"gpt-5.2","tokens":{"input":10000,"output":2000}}"#,
        sample("anthropic-message.json").trim(),
        r#"{"id":"b","time":"2026-03-01T12:00:00Z","model":"mystery-model-9","tokens":{"input":1}}"#,
    );
    let (code, lines, _) = run_cost(&["--project", "search"], &input);
    assert_eq!(code, 0, "rejected lines do not fail the run");
    assert_eq!(lines.len(), 4, "blank lines are skipped");

    let first = &lines[0];
    assert_eq!(first["line"], 1);
    assert_eq!(first["id"], "a");
    assert_eq!(
        first["project"], "search",
        "--project fills in a missing project"
    );
    assert_eq!(first["provider"], "openai");
    assert_eq!(first["model"], "gpt-5.2");
    assert_eq!(first["time"], "2026-03-01T12:00:00Z");
    assert_eq!(first["tokens"]["input"], 10000);
    assert_eq!(first["tokens"]["output"], 2000);
    assert_eq!(first["cost_usd"], "0.0455", "money is a decimal string");
    assert_eq!(first["priced"], true);
    assert_eq!(first["price"], "openai/gpt-5.2@2025-12-11");

    assert_eq!(lines[1]["line"], 3, "line numbers count the blank line");
    assert_eq!(lines[1]["cost_usd"], "0.04575");

    assert_eq!(lines[2]["line"], 4);
    assert!(
        lines[2]["error"]
            .as_str()
            .unwrap()
            .starts_with("invalid JSON")
    );

    assert_eq!(lines[3]["line"], 5);
    assert_eq!(
        lines[3]["priced"], false,
        "an unknown model is flagged, not an error"
    );
    assert!(lines[3]["cost_usd"].is_null(), "and never a silent zero");
    assert_eq!(lines[3]["provider"], "unknown");
    assert!(
        lines[3]["unpriced_reason"]
            .as_str()
            .unwrap()
            .contains("mystery-model-9")
    );
}

#[test]
fn cost_reads_files_and_gzip_and_names_the_file_when_several_are_given() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("a.jsonl");
    std::fs::write(&plain, sample("openai-chat.json")).unwrap();
    let gz = dir.path().join("b.jsonl.gz");
    let mut encoder = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).unwrap(),
        flate2::Compression::fast(),
    );
    encoder.write_all(sample("gemini.json").as_bytes()).unwrap();
    encoder.finish().unwrap();

    let (code, lines, _) = run_cost(&[plain.to_str().unwrap(), gz.to_str().unwrap()], "");
    assert_eq!(code, 0);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["cost_usd"], "0.0304416");
    assert_eq!(lines[0]["file"], plain.to_str().unwrap());
    assert_eq!(lines[1]["cost_usd"], "0.00692");
    assert_eq!(lines[1]["line"], 1, "line numbers restart per file");

    let (_, single, _) = run_cost(&[plain.to_str().unwrap()], "");
    assert!(single[0].get("file").is_none(), "one file: no file field");
}

#[test]
fn unusable_arguments_exit_2() {
    for args in [
        vec!["cost", "--format", "xml"],
        vec!["cost", "/nonexistent/usage.jsonl"],
        vec!["cost", "--no-such-flag"],
        vec!["frobnicate"],
        vec!["pricing", "check", "--date", "yesterday"],
    ] {
        let output = binary().args(&args).stdin(Stdio::null()).output().unwrap();
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(!output.stderr.is_empty(), "{args:?} explains itself");
    }
}

#[test]
fn pricing_check_validates_the_sheets_and_resolves_names() {
    let output = binary().args(["pricing", "check"]).output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("sheets valid"), "{text}");

    let output = binary()
        .args([
            "pricing",
            "check",
            "openai/gpt-5-2",
            "--provider",
            "aimlapi",
        ])
        .output()
        .unwrap();
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.starts_with("openai/gpt-5-2 → aimlapi:openai/gpt-5.2"),
        "{text}"
    );
    assert!(text.contains("sheet: openai.toml"), "{text}");
    assert!(text.contains("standard"), "{text}");

    let output = binary()
        .args(["pricing", "check", "o3", "--date", "2025-06-01"])
        .output()
        .unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.contains("in force on 2025-06-01 (from 2025-04-16)"),
        "{text}"
    );

    let output = binary()
        .args(["pricing", "check", "no-such-model-7"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
}

/// Azure OpenAI deployments: a proxy often logs the deployment name rather than the model;
/// `[[pricing.deployments]]` prices it as the model it serves and keeps the name.
#[test]
fn a_configured_deployment_name_is_priced_as_its_model() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("llm-meter.toml");
    std::fs::write(
        &config,
        r#"
[[pricing.deployments]]
provider = "azure"
name = "Prod-Chat"
model = "gpt-4o-2024-11-20"
"#,
    )
    .unwrap();
    let deployment = r#"{"id":"d1","time":"2026-11-20T00:00:00Z","provider":"azure","model":"prod-chat","tokens":{"input":10000,"output":1000}}"#;
    let model = deployment
        .replace("prod-chat", "gpt-4o-2024-11-20")
        .replace("d1", "d2");
    let (code, lines, stderr) = run_cost(
        &["--config", config.to_str().unwrap()],
        &format!("{deployment}\n{model}\n"),
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        lines[0]["model"], "prod-chat",
        "the name as written is kept"
    );
    assert_eq!(lines[0]["resolved_model"], lines[1]["resolved_model"]);
    assert_eq!(lines[0]["cost_usd"], lines[1]["cost_usd"]);
    assert_eq!(lines[0]["priced"], true);

    // Without the configuration the deployment is unknown, and said so.
    let (_, lines, _) = run_cost(&[], &format!("{deployment}\n"));
    assert_eq!(lines[0]["priced"], false);
    assert!(
        lines[0]["unpriced_reason"]
            .as_str()
            .unwrap()
            .contains("prod-chat"),
        "{}",
        lines[0]
    );
}
