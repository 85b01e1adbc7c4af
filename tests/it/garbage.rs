//! Thousands of mutated and random lines: the parsers never panic, and every line is
//! either a record or an error, the same one every time.

use std::io::Cursor;

use llm_meter::commands::cost::{CostSummary, price_lines};
use llm_meter::prepare::Preparer;
use llm_meter::usage::{Format, parse_record};

use crate::helpers::Rng;
use crate::helpers::{book, ingest_time, sample, sample_path};

const NASTY: &[&str] = &[
    "-1",
    "1e400",
    "1.5",
    "null",
    "\"\"",
    "{}",
    "[]",
    "true",
    "18446744073709551616",
    "-9223372036854775809",
    "\"\\u0000\"",
    "\"\\ud800\"",
    "0.0000001",
    "[[[[[[[[[[]]]]]]]]]]",
    "{\"a\":{\"b\":{\"c\":{}}}}",
    "\"9999999999999999999999\"",
    "NaN",
    "Infinity",
];

fn mutate(rng: &mut Rng, line: &str) -> String {
    let mut bytes = line.as_bytes().to_vec();
    for _ in 0..=rng.below(3) {
        match rng.below(7) {
            // Flip a byte.
            0 if !bytes.is_empty() => {
                let i = rng.below(bytes.len());
                bytes[i] = (rng.next() & 0xff) as u8;
            }
            // Truncate.
            1 if !bytes.is_empty() => {
                let i = rng.below(bytes.len());
                bytes.truncate(i);
            }
            // Insert a random byte.
            2 => {
                let i = rng.below(bytes.len() + 1);
                bytes.insert(i, (rng.next() & 0xff) as u8);
            }
            // Replace a number with something nasty.
            3 => {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                let digits: Vec<usize> = text
                    .char_indices()
                    .filter(|(_, c)| c.is_ascii_digit())
                    .map(|(i, _)| i)
                    .collect();
                if !digits.is_empty() {
                    let start = digits[rng.below(digits.len())];
                    let end = text[start..]
                        .find(|c: char| !c.is_ascii_digit())
                        .map_or(text.len(), |e| start + e);
                    let replacement = NASTY[rng.below(NASTY.len())];
                    bytes =
                        format!("{}{}{}", &text[..start], replacement, &text[end..]).into_bytes();
                }
            }
            // Replace a string value with a nasty value.
            4 => {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                if let Some(colon) = text.match_indices(":\"").nth(rng.below(8)).map(|(i, _)| i)
                    && let Some(end) = text[colon + 2..].find('"')
                {
                    {
                        let replacement = NASTY[rng.below(NASTY.len())];
                        bytes = format!(
                            "{}:{}{}",
                            &text[..colon],
                            replacement,
                            &text[colon + 2 + end + 1..]
                        )
                        .into_bytes();
                    }
                }
            }
            // Duplicate a slice.
            5 if !bytes.is_empty() => {
                let start = rng.below(bytes.len());
                let end = (start + rng.below(64)).min(bytes.len());
                let slice = bytes[start..end].to_vec();
                let at = rng.below(bytes.len() + 1);
                bytes.splice(at..at, slice);
            }
            // Wrap in an envelope or a CloudEvent, sometimes deeply.
            _ => {
                let inner = String::from_utf8_lossy(&bytes).into_owned();
                bytes = if rng.below(2) == 0 {
                    format!(r#"{{"project":"p","response":{inner}}}"#).into_bytes()
                } else {
                    format!(
                        r#"{{"specversion":"1.0","id":"x","source":"s","type":"t","data":{inner}}}"#
                    )
                    .into_bytes()
                };
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn samples() -> Vec<String> {
    let mut lines: Vec<String> = std::fs::read_dir(sample_path(""))
        .unwrap()
        .map(|e| sample(&e.unwrap().file_name().to_string_lossy()))
        .map(|s| s.trim().to_owned())
        .collect();
    lines.sort();
    lines
}

#[test]
fn thousands_of_mutated_lines_never_panic_and_always_answer() {
    let seeds = samples();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut accepted = 0;
    let mut rejected = 0;
    for round in 0..6000 {
        let seed = &seeds[round % seeds.len()];
        let line = mutate(&mut rng, seed);
        for format in [Format::Auto, Format::OpenAI, Format::Canonical] {
            let first = parse_record(&line, format);
            let second = parse_record(&line, format);
            assert_eq!(first, second, "deterministic: {line}");
            match first {
                Ok(record) => {
                    accepted += 1;
                    assert!(record.id.is_some(), "every record has an id: {line}");
                }
                Err(error) => {
                    rejected += 1;
                    let message = error.to_string();
                    assert!(
                        !message.is_empty() && !message.contains('\n'),
                        "{message:?}"
                    );
                }
            }
        }
    }
    // The mutations must exercise both outcomes, or this test proves nothing.
    assert!(
        accepted > 500 && rejected > 500,
        "accepted {accepted}, rejected {rejected}"
    );
}

#[test]
fn random_bytes_and_deep_nesting_are_errors_not_crashes() {
    let mut rng = Rng(42);
    for length in 0..2000 {
        let bytes: Vec<u8> = (0..length % 300)
            .map(|_| (rng.next() & 0xff) as u8)
            .collect();
        let text = String::from_utf8_lossy(&bytes);
        let _ = parse_record(&text, Format::Auto);
    }
    for depth in [10, 100, 1000, 100_000] {
        let deep = format!("{}{}", "{\"response\":".repeat(depth), "}".repeat(depth));
        assert!(parse_record(&deep, Format::Auto).is_err(), "depth {depth}");
        let arrays = format!(
            r#"{{"model":"m","tokens":{}{}}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        );
        assert!(
            parse_record(&arrays, Format::Auto).is_err(),
            "depth {depth}"
        );
    }
}

#[test]
fn the_cost_command_answers_every_line_with_one_json_object() {
    let book = book();
    let seeds = samples();
    let mut rng = Rng(7);
    let mut input = String::new();
    let mut non_blank = 0;
    for round in 0..3000 {
        let line = if round % 10 == 0 {
            String::new()
        } else {
            mutate(&mut rng, &seeds[round % seeds.len()]).replace('\n', " ")
        };
        if !line.trim().is_empty() {
            non_blank += 1;
        }
        input.push_str(&line);
        input.push('\n');
    }
    let mut preparer = Preparer::new(book, Format::Auto, "default");
    let mut out = Vec::new();
    let mut summary = CostSummary::default();
    price_lines(
        &mut Cursor::new(input.as_bytes()),
        None,
        &mut preparer,
        ingest_time(),
        &mut out,
        &mut summary,
    )
    .unwrap();
    let lines: Vec<&str> = std::str::from_utf8(&out).unwrap().lines().collect();
    assert_eq!(lines.len(), non_blank, "one answer per non-blank line");
    assert_eq!(summary.lines as usize, non_blank);
    assert_eq!(
        summary.priced + summary.unpriced + summary.rejected,
        summary.lines
    );
    let mut previous = 0;
    for line in lines {
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        let number = value["line"].as_u64().unwrap();
        assert!(number > previous, "line numbers increase");
        previous = number;
        assert!(
            value.get("error").is_some() || value.get("priced").is_some(),
            "{line}"
        );
    }
}
