//! Shared test helpers.

use std::path::PathBuf;

use chrono::{DateTime, TimeZone, Utc};
use llm_meter::prepare::{Preparer, PricedRecord};
use llm_meter::pricing::{PriceBook, PriceOutcome};
use llm_meter::usage::Format;

/// The built-in price book, loaded once for the whole test binary (the catalog makes it
/// a few hundred milliseconds to load in a debug build).
pub fn book() -> &'static PriceBook {
    static BOOK: std::sync::OnceLock<PriceBook> = std::sync::OnceLock::new();
    BOOK.get_or_init(|| PriceBook::builtin().expect("the built-in sheets load"))
}

/// A fixed ingest time, so records without a time of their own are deterministic.
pub fn ingest_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0).unwrap()
}

pub fn sample_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/samples")
        .join(name)
}

pub fn sample(name: &str) -> String {
    std::fs::read_to_string(sample_path(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

pub fn prepare(book: &PriceBook, line: &str) -> PricedRecord {
    Preparer::new(book, Format::Auto, "default")
        .prepare(line, ingest_time())
        .unwrap_or_else(|e| panic!("{line}: {e}"))
}

pub fn cost_of(book: &PriceBook, line: &str) -> String {
    match prepare(book, line).price {
        PriceOutcome::Priced(priced) => priced.cost.to_string(),
        PriceOutcome::Unpriced(unpriced) => panic!("unpriced: {}", unpriced.reason),
    }
}

pub fn binary() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_llm-meter"))
}

/// `llm-meter --config CONFIG serve --listen 127.0.0.1:0`, the store taken from the config
/// alone (no DATABASE_URL from the environment). The caller sets up stdio and spawns.
pub fn serve_command(config: &std::path::Path) -> std::process::Command {
    let mut command = binary();
    command
        .arg("--config")
        .arg(config)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env_remove("DATABASE_URL")
        .env_remove("LLM_METER_DATABASE_URL");
    command
}

/// A quiet `serve` child process (see `serve_command`).
pub fn spawn_serve(config: &std::path::Path) -> std::process::Child {
    serve_command(config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start llm-meter serve")
}

/// A small deterministic generator (xorshift64*), so a failing seed replays.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}
