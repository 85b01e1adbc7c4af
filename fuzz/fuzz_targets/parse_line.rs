//! Any bytes as one usage line, in every input format: a record or an error, never a
//! panic; and a record that parses is priced without panicking either.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use llm_meter::prepare::Preparer;
use llm_meter::pricing::PriceBook;
use llm_meter::usage::Format;

static BOOK: LazyLock<PriceBook> =
    LazyLock::new(|| PriceBook::builtin().expect("the built-in sheets load"));

const FORMATS: [Format; 7] = [
    Format::Auto,
    Format::Canonical,
    Format::OpenAI,
    Format::Anthropic,
    Format::Gemini,
    Format::LiteLLM,
    Format::CloudEvents,
];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let now = chrono::DateTime::from_timestamp(1_790_000_000, 0).unwrap();
    for format in FORMATS {
        let _ = llm_meter::usage::parse_record(text, format);
        let _ = Preparer::new(&BOOK, format, "default").prepare(text, now);
    }
});
