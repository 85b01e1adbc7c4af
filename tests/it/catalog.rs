//! The built-in catalog against the community catalogs it was generated from, read here
//! independently from the raw files (`tests/data/catalogs/`, as PyPI shipped them): every
//! chat model either lists is priced, per token, at the rate that catalog gives (where
//! both list a model, genai-prices' price is the one that applies), under the names
//! records use: with and without the `provider/` prefix.

use std::collections::BTreeMap;
use std::io::Read;

use llm_meter::prepare::Preparer;
use llm_meter::pricing::{PriceBook, PriceOutcome};
use llm_meter::usage::{Bucket, Format};
use rust_decimal::Decimal;
use serde_json::{Map, Value};

use crate::helpers::{book, ingest_time};

/// The share of each provider's models that must price right.
const GOAL: f64 = 0.99;

fn fixture(prefix: &str) -> Value {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/catalogs");
    let path = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix}* in {}", dir.display()));
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&path).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

/// A decimal from a JSON number or string, through its text (never through binary).
fn decimal(value: &Value) -> Option<Decimal> {
    let text = match value {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => return None,
    };
    text.parse::<Decimal>()
        .or_else(|_| Decimal::from_scientific(&text))
        .ok()
}

/// Input, cached-input and output rates, USD per 1M tokens (cached may be absent).
type Rates = (Decimal, Option<Decimal>, Decimal);

fn litellm_rates(entry: &Map<String, Value>) -> Option<Rates> {
    let per_million = |key: &str| {
        entry
            .get(key)
            .and_then(decimal)
            .map(|rate| rate * Decimal::from(1_000_000))
    };
    Some((
        per_million("input_cost_per_token")?,
        per_million("cache_read_input_token_cost")
            .or_else(|| per_million("input_cost_per_token_cache_hit")),
        per_million("output_cost_per_token")?,
    ))
}

/// A genai-prices model's standard price at the test records' time (2026-11-20 12:00
/// UTC): the last entry in force, a time-of-day window included (genai-prices reads its
/// list from the end), the base of a tiered price.
fn genai_rates(model: &Value) -> Option<Rates> {
    let in_force = |constraint: &Value| -> bool {
        if let Some(date) = constraint.get("start_date").and_then(Value::as_str) {
            return date <= "2026-11-20";
        }
        let time = |key: &str| constraint.get(key).and_then(Value::as_str).map(|t| &t[..5]);
        match (time("start_time"), time("end_time")) {
            (Some(start), Some(end)) if start <= end => start <= "12:00" && "12:00" < end,
            (Some(start), Some(end)) => "12:00" >= start || "12:00" < end,
            _ => false,
        }
    };
    let prices = match model.get("prices")? {
        Value::Array(list) => list
            .iter()
            .rfind(|p| p.get("constraint").is_none_or(in_force))?
            .get("prices")?,
        object => object,
    };
    let base = match model.get("prices")? {
        Value::Array(list) => list
            .iter()
            .rfind(|p| {
                p.get("constraint")
                    .is_none_or(|c| c.get("start_date").is_some() && in_force(c))
            })?
            .get("prices")?,
        object => object,
    };
    // A window's missing keys keep the dated price's.
    let rate = |key: &str| {
        let value = prices.get(key).or_else(|| base.get(key))?;
        decimal(value.get("base").unwrap_or(value))
    };
    Some((
        rate("input_mtok")?,
        rate("cache_read_mtok"),
        rate("output_mtok")?,
    ))
}

/// Tokens per test record: below every long-context threshold the catalogs use (32k+).
const TOKENS: u64 = 10_000;

/// The names a genai-prices match clause accepts exactly.
fn collect_equals(clause: &Value, into: &mut Vec<String>) {
    if let Some(name) = clause.get("equals").and_then(Value::as_str) {
        into.push(name.to_owned());
    }
    for key in ["or", "and"] {
        for item in clause
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            collect_equals(item, into);
        }
    }
}

/// What the price book charges per 1M tokens of input, of cached input and of output,
/// from records of `TOKENS` tokens (a per-request fee aside: the catalogs list it apart).
fn charged(preparer: &mut Preparer<'_>, provider: &str, model: &str) -> Option<Rates> {
    let mut cost = |tokens: &str| -> Option<Decimal> {
        let line = serde_json::json!({
            "id": "r", "project": "p", "provider": provider, "model": model,
            "time": "2026-11-20T12:00:00Z",
            "tokens": serde_json::from_str::<Value>(tokens).unwrap(),
        })
        .to_string();
        match preparer.prepare(&line, ingest_time()).ok()?.price {
            PriceOutcome::Priced(priced) => {
                let fee = priced.bucket_costs[Bucket::Request.index()];
                Some((priced.cost - fee) * Decimal::from(1_000_000 / TOKENS))
            }
            PriceOutcome::Unpriced(_) => None,
        }
    };
    Some((
        cost(r#"{"input":10000}"#)?,
        cost(r#"{"input":0,"cached_input":10000}"#),
        cost(r#"{"output":10000}"#)?,
    ))
}

/// Whether the charges equal the catalog's rates (cached input only where it gives one),
/// each rounded as the cost of `TOKENS` tokens is (1e-9 USD).
fn equal(charged: &Rates, expected: &Rates) -> bool {
    let scale = Decimal::from(1_000_000 / TOKENS);
    let round = |rate: Decimal| llm_meter::pricing::round_money(rate / scale) * scale;
    round(charged.0) == round(expected.0)
        && round(charged.2) == round(expected.2)
        && expected
            .1
            .is_none_or(|cached| charged.1.map(round) == Some(round(cached)))
}

#[derive(Default)]
struct Tally {
    models: usize,
    equal: usize,
    misses: Vec<String>,
}

fn report(title: &str, tallies: &BTreeMap<String, Tally>) -> Vec<String> {
    println!("{title}");
    println!(
        "{:<28} {:>7} {:>7} {:>8}",
        "provider", "models", "equal", "share"
    );
    let mut failing = Vec::new();
    let (mut all, mut all_equal) = (0, 0);
    for (provider, tally) in tallies {
        let share = tally.equal as f64 / tally.models as f64;
        all += tally.models;
        all_equal += tally.equal;
        println!(
            "{provider:<28} {:>7} {:>7} {:>7.1}%",
            tally.models,
            tally.equal,
            share * 100.0
        );
        if share < GOAL {
            failing.push(format!(
                "{provider}: {}/{} ({:.1}%), e.g. {}",
                tally.equal,
                tally.models,
                share * 100.0,
                tally
                    .misses
                    .iter()
                    .take(4)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
        }
    }
    println!(
        "{:<28} {all:>7} {all_equal:>7} {:>7.1}%",
        "all",
        all_equal as f64 / all as f64 * 100.0
    );
    failing
}

#[test]
fn every_chat_model_of_both_catalogs_is_priced_at_its_catalog_rate() {
    let book: &PriceBook = book();
    let mut preparer = Preparer::new(book, Format::Auto, "p");
    let genai = fixture("genai-prices");
    // genai-prices' stated prices, by (provider, lower-case name): they apply where both
    // catalogs list a model.
    let mut genai_price: BTreeMap<(String, String), Rates> = BTreeMap::new();
    let mut genai_tallies: BTreeMap<String, Tally> = BTreeMap::new();
    for provider in genai.as_array().unwrap() {
        let id = llm_meter::providers::canonical(provider["id"].as_str().unwrap());
        for model in provider["models"].as_array().unwrap() {
            let Some(expected) = genai_rates(model) else {
                continue;
            };
            let name = model["id"].as_str().unwrap();
            // The names genai-prices matches exactly are the model's too.
            let mut names = vec![name.to_owned()];
            collect_equals(&model["match"], &mut names);
            for alias in names {
                genai_price.insert((id.clone(), alias.to_ascii_lowercase()), expected);
            }
            let tally = genai_tallies.entry(id.clone()).or_default();
            tally.models += 1;
            match charged(&mut preparer, &id, name) {
                Some(got) if equal(&got, &expected) => tally.equal += 1,
                got => tally
                    .misses
                    .push(format!("{name}: charged {got:?}, catalog {expected:?}")),
            }
        }
    }
    let litellm = fixture("litellm");
    // Each LiteLLM chat entry: (provider, the names a record may carry, expected rates).
    // The names are the key as LiteLLM spells it and the key without the provider
    // prefix; where genai-prices states a price for the model, that one is expected.
    let mut entries: Vec<(String, Vec<String>, Rates)> = Vec::new();
    for (key, entry) in litellm.as_object().unwrap() {
        let Some(entry) = entry.as_object() else {
            continue;
        };
        let mode = entry.get("mode").and_then(Value::as_str).unwrap_or("");
        if !matches!(mode, "chat" | "completion" | "responses") {
            continue;
        }
        let Some(litellm_expected) = litellm_rates(entry) else {
            continue;
        };
        let provider = llm_meter::providers::canonical(entry["litellm_provider"].as_str().unwrap());
        let bare = match key.split_once('/') {
            Some((prefix, rest)) if llm_meter::providers::canonical(prefix) == provider => rest,
            _ => key.as_str(),
        };
        let expected = genai_price
            .get(&(provider.clone(), bare.to_ascii_lowercase()))
            .copied()
            .unwrap_or(litellm_expected);
        let mut names = vec![key.clone()];
        if bare != key {
            names.push(bare.to_owned());
        }
        entries.push((provider, names, expected));
    }
    // LiteLLM sometimes lists one name twice at two prices (`gemini-exp-1206` and
    // `gemini/gemini-exp-1206`; `perplexity/sonar` is also the bare name of
    // `perplexity/perplexity/sonar`): either of its prices is LiteLLM's rate for it.
    let mut rates_of: BTreeMap<(String, String), Vec<Rates>> = BTreeMap::new();
    for (provider, names, expected) in &entries {
        for name in names {
            rates_of
                .entry((provider.clone(), name.to_ascii_lowercase()))
                .or_default()
                .push(*expected);
        }
    }
    let mut litellm_tallies: BTreeMap<String, Tally> = BTreeMap::new();
    for (provider, names, _) in &entries {
        let tally = litellm_tallies.entry(provider.clone()).or_default();
        tally.models += 1;
        let mut all_equal = true;
        for name in names {
            let candidates = &rates_of[&(provider.clone(), name.to_ascii_lowercase())];
            match charged(&mut preparer, provider, name) {
                Some(got) if candidates.iter().any(|expected| equal(&got, expected)) => {}
                got => {
                    all_equal = false;
                    tally
                        .misses
                        .push(format!("{name}: charged {got:?}, catalog {candidates:?}"));
                }
            }
        }
        tally.equal += usize::from(all_equal);
    }
    let mut failing = report(
        "LiteLLM chat models, priced at LiteLLM's rate (genai-prices' where it states one), with and without the provider prefix:",
        &litellm_tallies,
    );
    failing.extend(report(
        "genai-prices chat models, priced at genai-prices' rate:",
        &genai_tallies,
    ));
    assert!(
        failing.is_empty(),
        "providers under {GOAL}:\n{}",
        failing.join("\n")
    );
}

/// Every other rate LiteLLM gives (the tiers, cache writes, reasoning, long context) is
/// charged as given, for the models whose price comes from LiteLLM (neither a curated
/// sheet nor genai-prices prices them).
#[test]
fn every_rate_litellm_gives_is_charged() {
    let book: &PriceBook = book();
    let mut preparer = Preparer::new(book, Format::Auto, "p");
    let litellm = fixture("litellm");
    // (what, record fields, LiteLLM field, tokens the rate applies to)
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "batch input",
            r#""batch":true"#,
            "input_cost_per_token_batches",
            r#"{"input":10000}"#,
        ),
        (
            "batch output",
            r#""batch":true"#,
            "output_cost_per_token_batches",
            r#"{"output":10000}"#,
        ),
        (
            "flex input",
            r#""service_tier":"flex""#,
            "input_cost_per_token_flex",
            r#"{"input":10000}"#,
        ),
        (
            "flex output",
            r#""service_tier":"flex""#,
            "output_cost_per_token_flex",
            r#"{"output":10000}"#,
        ),
        (
            "priority input",
            r#""service_tier":"priority""#,
            "input_cost_per_token_priority",
            r#"{"input":10000}"#,
        ),
        (
            "priority output",
            r#""service_tier":"priority""#,
            "output_cost_per_token_priority",
            r#"{"output":10000}"#,
        ),
        (
            "cache write 5m",
            r#""batch":false"#,
            "cache_creation_input_token_cost",
            r#"{"input":0,"cache_write_5m":10000}"#,
        ),
        (
            "cache write 1h",
            r#""batch":false"#,
            "cache_creation_input_token_cost_above_1hr",
            r#"{"input":0,"cache_write_1h":10000}"#,
        ),
        (
            "reasoning",
            r#""batch":false"#,
            "output_cost_per_reasoning_token",
            r#"{"output":0,"reasoning":10000}"#,
        ),
    ];
    let mut tallies: BTreeMap<&str, (usize, usize, Vec<String>)> = BTreeMap::new();
    // Names LiteLLM lists twice at different standard rates (`gemini-exp-1206` free and
    // not): which entry's other rates apply is not LiteLLM's to say; they are left out.
    let mut standard_of: BTreeMap<(String, String), Vec<Rates>> = BTreeMap::new();
    for (key, entry) in litellm.as_object().unwrap() {
        let Some(rates) = entry.as_object().and_then(litellm_rates) else {
            continue;
        };
        let provider =
            llm_meter::providers::canonical(entry["litellm_provider"].as_str().unwrap_or(""));
        let bare = key.split_once('/').map_or(key.as_str(), |(_, rest)| rest);
        standard_of
            .entry((provider, bare.to_ascii_lowercase()))
            .or_default()
            .push(rates);
    }
    for (key, entry) in litellm.as_object().unwrap() {
        let Some(entry) = entry.as_object() else {
            continue;
        };
        if !matches!(
            entry.get("mode").and_then(Value::as_str),
            Some("chat" | "completion" | "responses")
        ) || litellm_rates(entry).is_none()
        {
            continue;
        }
        let provider = llm_meter::providers::canonical(entry["litellm_provider"].as_str().unwrap());
        let from_litellm = book
            .resolve(&provider, key)
            .is_some_and(|r| r.model.sheet.starts_with("catalog/litellm.json"));
        let bare = key.split_once('/').map_or(key.as_str(), |(_, rest)| rest);
        let listed = &standard_of[&(provider.clone(), bare.to_ascii_lowercase())];
        if !from_litellm || listed.iter().any(|rates| rates != &listed[0]) {
            continue;
        }
        let mut check = |what: &'static str, fields: &str, tokens: &str, rate: Decimal| {
            let line = format!(
                r#"{{"id":"r","project":"p","provider":"{provider}","model":{},"time":"2026-11-20T12:00:00Z",{fields},"tokens":{tokens}}}"#,
                serde_json::to_string(key).unwrap()
            );
            let count: u64 = serde_json::from_str::<Map<String, Value>>(tokens)
                .unwrap()
                .values()
                .filter_map(Value::as_u64)
                .sum();
            let expected = llm_meter::pricing::round_money(rate * Decimal::from(count));
            let got = preparer.prepare(&line, ingest_time()).ok().map(|p| p.price);
            let tally = tallies.entry(what).or_default();
            tally.0 += 1;
            match got {
                Some(PriceOutcome::Priced(priced)) if priced.cost == expected => tally.1 += 1,
                other => tally.2.push(format!(
                    "{provider}/{key}: {}, LiteLLM {expected}",
                    match other {
                        Some(PriceOutcome::Priced(p)) => p.cost.to_string(),
                        Some(PriceOutcome::Unpriced(u)) => u.reason,
                        None => "rejected".into(),
                    }
                )),
            }
        };
        for (what, fields, field, tokens) in cases {
            if let Some(rate) = entry.get(*field).and_then(decimal) {
                check(what, fields, tokens, rate);
            }
        }
        // Long context: the whole request at the rate above the lowest threshold.
        let threshold = entry
            .keys()
            .filter_map(|k| {
                k.strip_prefix("input_cost_per_token_above_")?
                    .strip_suffix("k_tokens")
            })
            .filter_map(|k| k.parse::<u64>().ok())
            .min();
        if let Some(k) = threshold
            && let Some(rate) = entry
                .get(&format!("input_cost_per_token_above_{k}k_tokens"))
                .and_then(decimal)
        {
            let tokens = format!(r#"{{"input":{}}}"#, k * 1000 + 1000);
            check("long-context input", r#""batch":false"#, &tokens, rate);
        }
    }
    println!("{:<20} {:>7} {:>7}", "rate", "models", "equal");
    let mut failing = Vec::new();
    for (what, (models, equal, misses)) in &tallies {
        println!("{what:<20} {models:>7} {equal:>7}");
        if (*equal as f64) < GOAL * *models as f64 {
            failing.push(format!(
                "{what}: {equal}/{models}, e.g. {:?}",
                &misses[..misses.len().min(3)]
            ));
        }
    }
    assert!(failing.is_empty(), "{}", failing.join("\n"));
}

/// DeepSeek's off-peak hours (genai-prices' time-of-day prices): the same request costs
/// the peak rate inside the window and the base rate outside it, midnight wrap included.
#[test]
fn time_of_day_prices_follow_the_record_time() {
    let book = book();
    let line = |time: &str| {
        format!(
            r#"{{"id":"d","time":"2026-11-20T{time}Z","project":"p","provider":"deepseek","model":"deepseek-chat","tokens":{{"input":1000000,"output":0}}}}"#
        )
    };
    let priced = |time: &str| match crate::helpers::prepare(book, &line(time)).price {
        PriceOutcome::Priced(p) => (p.cost.to_string(), p.price_ref),
        PriceOutcome::Unpriced(u) => panic!("{}", u.reason),
    };
    // genai-prices 0.2.3: 0.135 by default, 0.27 from 00:30 to 16:30 UTC.
    for (time, cost, window) in [
        ("00:29:59", "0.135", false),
        ("00:30:00", "0.27", true),
        ("12:00:00", "0.27", true),
        ("16:29:59", "0.27", true),
        ("16:30:00", "0.135", false),
        ("23:00:00", "0.135", false),
    ] {
        let (got, price_ref) = priced(time);
        assert_eq!(got, cost, "{time}: {price_ref}");
        assert_eq!(
            price_ref.contains("+hours:00:30-16:30"),
            window,
            "{time}: {price_ref}"
        );
    }
}
