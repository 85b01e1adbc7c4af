//! `llm-meter cost`: price records without storing them, one JSON object per input line.

use std::io::{self, BufRead, Write};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::prepare::{PricedRecord, Preparer};
use crate::pricing::PriceOutcome;
use crate::usage::Tokens;

/// Lines longer than this are rejected (and skipped) rather than parsed.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// What one run of `cost` saw.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct CostSummary {
    pub lines: u64,
    pub priced: u64,
    pub unpriced: u64,
    pub rejected: u64,
}

#[derive(Serialize)]
struct PricedLine<'a> {
    line: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<&'a str>,
    id: &'a str,
    project: &'a str,
    provider: &'a str,
    model: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    resolved_model: Option<&'a str>,
    time: String,
    tokens: &'a Tokens,
    batch: bool,
    service_tier: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_effort: Option<&'a str>,
    cost_usd: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    list_cost_usd: Option<String>,
    priced: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    price: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    unpriced_reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reported_cost_usd: Option<String>,
}

#[derive(Serialize)]
struct ErrorLine<'a> {
    line: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<&'a str>,
    error: &'a str,
}

/// Prices every line of `input` and writes one JSON object per non-blank line to `out`.
/// `file` is named in each output object when several files are priced in one run.
pub fn price_lines(
    input: &mut dyn BufRead,
    file: Option<&str>,
    preparer: &mut Preparer<'_>,
    now: DateTime<Utc>,
    out: &mut dyn Write,
    summary: &mut CostSummary,
) -> io::Result<()> {
    let mut buffer = Vec::with_capacity(4096);
    let mut line_number = 0u64;
    loop {
        buffer.clear();
        let read = read_line_capped(input, &mut buffer)?;
        if read == 0 {
            return Ok(());
        }
        line_number += 1;
        if buffer.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        summary.lines += 1;
        let result = if read > MAX_LINE_BYTES {
            Err(format!("line is longer than {MAX_LINE_BYTES} bytes"))
        } else {
            match std::str::from_utf8(&buffer) {
                Ok(text) => preparer.prepare(text, now).map_err(|e| e.to_string()),
                Err(_) => Err("line is not valid UTF-8".to_owned()),
            }
        };
        match result {
            Ok(priced) => {
                match priced.price {
                    PriceOutcome::Priced(_) => summary.priced += 1,
                    PriceOutcome::Unpriced(_) => summary.unpriced += 1,
                }
                write_priced(out, line_number, file, &priced)?;
            }
            Err(error) => {
                summary.rejected += 1;
                serde_json::to_writer(
                    &mut *out,
                    &ErrorLine {
                        line: line_number,
                        file,
                        error: &error,
                    },
                )?;
            }
        }
        out.write_all(b"\n")?;
    }
}

fn write_priced(
    out: &mut dyn Write,
    line: u64,
    file: Option<&str>,
    priced: &PricedRecord,
) -> io::Result<()> {
    let record = &priced.record;
    let (cost, list_cost, price, resolved, reason) = match &priced.price {
        PriceOutcome::Priced(p) => (
            Some(p.cost.to_string()),
            Some(p.list_cost.to_string()),
            Some(p.price_ref.as_str()),
            Some(p.resolved_model.as_str()),
            None,
        ),
        PriceOutcome::Unpriced(u) => (None, None, None, u.resolved_model.as_deref(), Some(u.reason.as_str())),
    };
    let object = PricedLine {
        line,
        file,
        id: &record.id,
        project: &record.project,
        provider: &record.provider,
        model: &record.model,
        resolved_model: resolved,
        time: record.time.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        tokens: &record.tokens,
        batch: record.batch,
        service_tier: &record.service_tier,
        reasoning_effort: record.reasoning_effort.as_deref(),
        priced: cost.is_some(),
        cost_usd: cost,
        list_cost_usd: list_cost,
        price,
        unpriced_reason: reason,
        reported_cost_usd: record.reported_cost.map(|c| c.normalize().to_string()),
    };
    serde_json::to_writer(out, &object).map_err(io::Error::from)
}

/// Reads one line (through `\n`) into `buffer`, keeping at most `MAX_LINE_BYTES + 1`
/// bytes of it; returns how many bytes the line had.
pub fn read_line_capped(input: &mut dyn BufRead, buffer: &mut Vec<u8>) -> io::Result<usize> {
    let mut total = 0;
    loop {
        let available = match input.fill_buf() {
            Ok(available) => available,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        if available.is_empty() {
            return Ok(total);
        }
        let (chunk, done) = match memchr::memchr(b'\n', available) {
            Some(end) => (&available[..=end], true),
            None => (available, false),
        };
        let room = (MAX_LINE_BYTES + 1).saturating_sub(buffer.len());
        buffer.extend_from_slice(&chunk[..chunk.len().min(room)]);
        let used = chunk.len();
        total += used;
        input.consume(used);
        if done {
            return Ok(total);
        }
    }
}
