//! Any provider and model name through the resolver (gateway spellings, dated snapshots,
//! provider inference) and a record of that model priced: never a panic, never a
//! negative cost.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use llm_meter::pricing::{PriceBook, PriceOutcome};

static BOOK: LazyLock<PriceBook> =
    LazyLock::new(|| PriceBook::builtin().expect("the built-in sheets load"));

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (provider, model) = text.split_once('\n').unwrap_or(("openai", text));
    let _ = BOOK.resolve(provider, model);
    let _ = BOOK.infer_provider(model);
    let line = serde_json::json!({
        "id": "fuzz", "time": "2026-06-01T00:00:00Z", "project": "p",
        "provider": provider, "model": model,
        "tokens": {"input": 1000, "cached_input": 10, "output": 50, "reasoning": 5}
    })
    .to_string();
    let now = chrono::DateTime::from_timestamp(1_790_000_000, 0).unwrap();
    let mut preparer = llm_meter::prepare::Preparer::new(&BOOK, llm_meter::usage::Format::Auto, "p");
    if let Ok(priced) = preparer.prepare(&line, now)
        && let PriceOutcome::Priced(priced) = priced.price
    {
        assert!(priced.cost >= rust_decimal::Decimal::ZERO, "{line}");
    }
});
