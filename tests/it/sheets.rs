//! Pricing sheets: the shipped ones are complete and valid; broken ones are caught
//! with a message that says what and where.

use std::path::Path;

use llm_meter::pricing::PriceBook;

use crate::helpers::binary;

#[test]
fn every_sheet_in_the_pricing_directory_is_compiled_in() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("pricing");
    let builtin: Vec<&str> = llm_meter::pricing::builtin_sheets()
        .map(|(name, _)| name)
        .collect();
    for (folder, suffix, prefix) in [("", ".toml", ""), ("catalog", ".json", "catalog/")] {
        for entry in std::fs::read_dir(dir.join(folder)).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            if name.ends_with(suffix) {
                let listed = format!("{prefix}{name}");
                assert!(
                    builtin.contains(&listed.as_str()),
                    "pricing/{listed} is not in src/pricing/builtin.rs"
                );
            }
        }
    }
}

#[test]
fn shipped_sheets_cover_the_models_the_issue_names() {
    let book = PriceBook::builtin().unwrap();
    for (provider, model) in [
        ("openai", "gpt-5"),
        ("openai", "gpt-5-mini"),
        ("openai", "gpt-5-nano"),
        ("openai", "gpt-5.1"),
        ("openai", "gpt-5.2"),
        ("openai", "gpt-5.2-pro"),
        ("openai", "gpt-5.3-codex"),
        ("openai", "gpt-5.4"),
        ("openai", "gpt-5.4-mini"),
        ("openai", "gpt-5.4-nano"),
        ("openai", "gpt-5.4-pro"),
        ("openai", "gpt-4o"),
        ("openai", "gpt-4o-mini"),
        ("openai", "gpt-4.1"),
        ("openai", "gpt-4.1-mini"),
        ("openai", "gpt-4.1-nano"),
        ("openai", "o3"),
        ("openai", "o4-mini"),
        ("anthropic", "claude-opus-4-6"),
        ("anthropic", "claude-opus-4-5"),
        ("anthropic", "claude-opus-4-1"),
        ("anthropic", "claude-sonnet-4-6"),
        ("anthropic", "claude-sonnet-4-5"),
        ("anthropic", "claude-haiku-4-5"),
        ("google", "gemini-2.5-pro"),
        ("google", "gemini-2.5-flash"),
        ("google", "gemini-2.5-flash-lite"),
        ("google", "gemini-3-pro-preview"),
        ("openrouter", "openai/gpt-5.2"),
        ("aimlapi", "openai/gpt-5-2"),
        ("cometapi", "gpt-5.2"),
        ("evolink", "gpt-5.2"),
    ] {
        let resolved = book
            .resolve(provider, model)
            .unwrap_or_else(|| panic!("{provider}/{model}"));
        for price in &resolved.model.prices {
            assert!(
                price.input.is_some() && price.output.is_some(),
                "{provider}/{model}"
            );
        }
        assert!(
            !resolved.model.provenance.source.is_empty(),
            "{provider}/{model} names its source"
        );
    }
}

/// (sheet text, a fragment of the error it must produce)
const BROKEN: &[(&str, &str)] = &[
    (
        "provider = \"x\"\nsource = \"s\"\nretrieved = \"2026-01-01\"\n[[model]]\nid = \"m\"\n\
         [[model.price]]\nfrom = \"2026-01-01\"\ninput = \"1\"\noutput = \"2\"\n\
         [[model.price]]\nfrom = \"2026-01-01\"\ninput = \"3\"\noutput = \"4\"\n",
        "two prices start on 2026-01-01 (overlapping dates)",
    ),
    (
        "provider = \"x\"\nsource = \"s\"\nretrieved = \"2026-01-01\"\n[[model]]\nid = \"m\"\n\
         [[model.price]]\nfrom = \"2026-01-01\"\ninput = \"1\"\noutput = \"2\"\ncache_write = \"1\"\n",
        "unknown field `cache_write`",
    ),
    (
        "provider = \"x\"\nsource = \"s\"\nretrieved = \"2026-01-01\"\n[[model]]\nid = \"m\"\npattern = \"gpt-(5\"\n\
         [[model.price]]\nfrom = \"2026-01-01\"\ninput = \"1\"\noutput = \"2\"\n",
        "bad pattern",
    ),
    (
        "provider = \"x\"\nsource = \"\"\nretrieved = \"2026-01-01\"\n[[model]]\nid = \"m\"\n\
         [[model.price]]\nfrom = \"2026-01-01\"\ninput = \"1\"\noutput = \"2\"\n",
        "missing `source`",
    ),
    (
        "provider = \"x\"\nretrieved = \"2026-01-01\"\n[[model]]\nid = \"m\"\n\
         [[model.price]]\nfrom = \"2026-01-01\"\ninput = \"1\"\noutput = \"2\"\n",
        "missing field `source`",
    ),
    (
        "provider = \"x\"\nsource = \"s\"\nretrieved = \"2026-01-01\"\n[[model]]\nid = \"m\"\n\
         [[model.price]]\nfrom = \"2026-01-01\"\ninput = 0.175\noutput = \"2\"\n",
        "write it as a string",
    ),
    (
        "provider = \"x\"\nsource = \"s\"\nretrieved = \"2026-01-01\"\n[[model]]\nid = \"m\"\n\
         [[model.price]]\nfrom = \"2026-01-01\"\ninput = \"-1\"\noutput = \"2\"\n",
        "negative",
    ),
    (
        "provider = \"x\"\nsource = \"s\"\nretrieved = \"2026-01-01\"\n[[model]]\nid = \"m\"\n\
         [[model.price]]\nfrom = \"2026-01-01\"\ninput = \"1\"\n",
        "`input` and `output` are required",
    ),
    (
        "provider = \"x\"\nsource = \"s\"\nretrieved = \"2026-01-01\"\n[[model]]\nid = \"m\"\n\
         [[model.price]]\nfrom = \"2026-01-01\"\ninput = \"1\"\ncached_input = \"0.1\"\noutput = \"2\"\n\
         long_context = { above = 1000, input = \"2\", output = \"3\" }\n",
        "long_context has no cached_input rate",
    ),
    (
        "provider = \"x\"\nsource = \"s\"\nretrieved = \"2026-01-01\"\n[[model]]\nid = \"m\"\naliases = [\"n\"]\n\
         [[model.price]]\nfrom = \"2026-01-01\"\ninput = \"1\"\noutput = \"2\"\n\
         [[model]]\nid = \"n\"\n[[model.price]]\nfrom = \"2026-01-01\"\ninput = \"1\"\noutput = \"2\"\n",
        "also names x/",
    ),
    (
        "provider = \"gw\"\nkind = \"gateway\"\nsource = \"s\"\nretrieved = \"2026-01-01\"\n\
         [upstreams]\nacme = \"nobody\"\n",
        "upstream provider \"nobody\" has no provider sheet",
    ),
];

#[test]
fn broken_sheets_are_rejected_naming_the_problem() {
    for (text, expected) in BROKEN {
        let error = PriceBook::from_texts([("bad.toml".to_owned(), text.to_string())])
            .err()
            .unwrap_or_else(|| panic!("accepted:\n{text}"))
            .to_string();
        assert!(
            error.contains(expected),
            "{text}\n  gave: {error}\n  want: {expected}"
        );
    }
}

#[test]
fn pricing_check_reports_a_broken_sheet_in_a_configured_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sheets")).unwrap();
    std::fs::write(dir.path().join("sheets/acme.toml"), BROKEN[0].0).unwrap();
    std::fs::write(
        dir.path().join("llm-meter.toml"),
        "[pricing]\ndirs = [\"sheets\"]\n",
    )
    .unwrap();
    let output = binary()
        .current_dir(dir.path())
        .args(["pricing", "check"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("acme.toml") && stderr.contains("overlapping dates"),
        "{stderr}"
    );
}

#[test]
fn an_overlay_sheet_adds_to_the_price_history_instead_of_replacing_it() {
    let overlay = "provider = \"openai\"\nsource = \"local\"\nretrieved = \"2026-09-01\"\n\
                   [[model]]\nid = \"o3\"\n[[model.price]]\nfrom = \"2026-09-01\"\ninput = \"1\"\noutput = \"4\"\n";
    let mut texts: Vec<(String, String)> = llm_meter::pricing::builtin_sheets()
        .map(|(n, t)| (n.to_owned(), t.to_owned()))
        .collect();
    texts.push(("local.toml".into(), overlay.into()));
    let book = PriceBook::from_texts(texts).unwrap();
    let o3 = book.resolve("openai", "o3").unwrap().model;
    let dates: Vec<String> = o3.prices.iter().map(|p| p.from.to_string()).collect();
    assert_eq!(dates, ["2025-04-16", "2025-06-10", "2026-09-01"]);
}

#[test]
fn import_turns_both_community_databases_into_sheets_that_load() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for (source, file, provider, model, expected_input) in [
        ("litellm", "litellm-prices.json", "openai", "gpt-5.4", "2.5"),
        (
            "genai-prices",
            "genai-prices.json",
            "anthropic",
            "claude-sonnet-4-5",
            "3",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("imported");
        let output = binary()
            .current_dir(dir.path())
            .args(["pricing", "import", "--from", source])
            .arg(fixtures.join(file))
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{source}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let sheets = llm_meter::config::read_sheet_dir(&out).unwrap();
        assert!(!sheets.is_empty(), "{source} wrote sheets");
        let mut texts: Vec<(String, String)> = llm_meter::pricing::builtin_sheets()
            .map(|(n, t)| (n.to_owned(), t.to_owned()))
            .collect();
        texts.extend(sheets);
        let book = PriceBook::from_texts(texts).unwrap();
        let resolved = book.resolve(provider, model).unwrap();
        let latest = resolved.model.prices.last().unwrap();
        assert_eq!(
            latest.input.unwrap().normalize().to_string(),
            expected_input,
            "{source}"
        );
    }
}

#[test]
fn the_example_config_parses_and_documents_every_section() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/llm-meter.example.toml");
    let text = std::fs::read_to_string(path).unwrap();
    // Every option is commented out; uncommented, the file must still be a valid config.
    let is_option = |rest: &str| {
        rest.starts_with('[')
            || rest.split_once(" = ").is_some_and(|(key, _)| {
                key.chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_' || c == '.')
            })
    };
    let uncommented: String = text
        .lines()
        .filter_map(|line| match line.strip_prefix("# ") {
            Some(rest) if is_option(rest) => Some(rest),
            _ if line.starts_with('#') => None,
            _ => Some(line),
        })
        .collect::<Vec<_>>()
        .join("\n");
    let config = llm_meter::config::Config::from_toml(&uncommented)
        .unwrap_or_else(|e| panic!("{e}\n{uncommented}"));
    assert_eq!(config.pricing.overrides.len(), 2);
    assert_eq!(config.pricing.sync.sources.len(), 2);
    config.pricing.sync.validate().unwrap();
    assert_eq!(config.listen(), "127.0.0.1:7464");
    assert_eq!(config.collectors.len(), 1);
    assert_eq!(
        config.retention.events,
        Some(std::time::Duration::from_secs(400 * 86_400))
    );
    assert!(config.store.read_url.is_some());
    assert_eq!(
        config.collectors[0].poll_interval,
        std::time::Duration::from_millis(250)
    );
    assert_eq!(
        config.metrics.refresh_interval,
        std::time::Duration::from_secs(15)
    );
    assert_eq!(config.budgets.len(), 1);
    assert_eq!(config.tokens.len(), 1);
    assert_eq!(config.rate_limits.len(), 1);
    config.rate_limits[0].check().unwrap();
    config.tokens[0].to_stored().unwrap();
    assert_eq!(config.limits.requests_per_second, 200);
    assert_eq!(config.budgets[0].webhooks.len(), 2);
    assert_eq!(config.digests.len(), 1);
    assert_eq!(config.webhooks.allow.len(), 2);
    assert_eq!(
        config.alerts.debounce,
        std::time::Duration::from_millis(100)
    );
    for budget in &config.budgets {
        llm_meter::budget::Budget::new(String::new(), budget.clone())
            .unwrap_or_else(|e| panic!("{e}"));
    }
}
