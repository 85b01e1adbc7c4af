//! `llm-meter cost`: price records without storing them, one JSON object per input line.

use std::io::{self, BufRead, Write};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::prepare::{Preparer, PricedRecord};
use crate::pricing::PriceOutcome;

/// Lines longer than this are rejected (and skipped) rather than parsed.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// What one run of `cost` saw.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct CostSummary {
    pub lines: u64,
    pub priced: u64,
    /// Priced for only part of their usage (counted in `priced` too).
    pub partial: u64,
    pub unpriced: u64,
    pub rejected: u64,
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
    // Each answer is serialised into this buffer and written with one call: many small
    // writes through `dyn Write` cost more than the pricing itself.
    let mut answer = Vec::with_capacity(1024);
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
        answer.clear();
        match result {
            Ok(priced) => {
                match &priced.price {
                    PriceOutcome::Priced(p) => {
                        summary.priced += 1;
                        summary.partial += u64::from(p.partial.is_some());
                    }
                    PriceOutcome::Unpriced(_) => summary.unpriced += 1,
                }
                write_priced(&mut answer, line_number, file, &priced)?;
            }
            Err(error) => {
                summary.rejected += 1;
                serde_json::to_writer(
                    &mut answer,
                    &ErrorLine {
                        line: line_number,
                        file,
                        error: &error,
                    },
                )?;
            }
        }
        answer.push(b'\n');
        out.write_all(&answer)?;
    }
}

/// Writes the answer for a priced line. JSON is written by hand here: this is the hot
/// path of `cost`, and serde's generic serialiser cost more than the pricing.
fn write_priced(
    out: &mut Vec<u8>,
    line: u64,
    file: Option<&str>,
    priced: &PricedRecord,
) -> io::Result<()> {
    let record = &priced.record;
    let mut json = JsonObject::new(out);
    json.number("line", line);
    if let Some(file) = file {
        json.string("file", file);
    }
    json.string("id", &record.id);
    json.string("project", &record.project);
    json.string("provider", &record.provider);
    json.string("model", &record.model);
    let resolved = match &priced.price {
        PriceOutcome::Priced(p) => Some(p.resolved_model.as_str()),
        PriceOutcome::Unpriced(u) => u.resolved_model.as_deref(),
    };
    if let Some(resolved) = resolved {
        json.string("resolved_model", resolved);
    }
    json.string("time", &crate::usage::format_time(&record.time));
    json.key("tokens");
    let mut tokens = JsonObject::new(json.out);
    // The six text buckets always; the others where counted (as the record's JSON does).
    for (bucket, count) in record.tokens.iter() {
        if bucket.is_text() || count > 0 {
            tokens.number(bucket.as_str(), count);
        }
    }
    tokens.close();
    json.raw("batch", if record.batch { "true" } else { "false" });
    json.string("service_tier", &record.service_tier);
    if let Some(effort) = &record.reasoning_effort {
        json.string("reasoning_effort", effort);
    }
    if let Some(context) = &record.search_context {
        json.string("search_context", context);
    }
    match &priced.price {
        PriceOutcome::Priced(p) => {
            json.decimal("cost_usd", p.cost);
            json.decimal("list_cost_usd", p.list_cost);
            json.raw("priced", "true");
            json.string("price", &p.price_ref);
            if let Some(partial) = &p.partial {
                json.string("partially_priced", partial);
            }
        }
        PriceOutcome::Unpriced(u) => {
            json.raw("cost_usd", "null");
            json.raw("priced", "false");
            json.string("unpriced_reason", &u.reason);
        }
    }
    if let Some(reported) = record.reported_cost {
        json.string("reported_cost_usd", &reported.normalize().to_string());
    }
    json.close();
    Ok(())
}

/// A JSON object written straight into a byte buffer.
struct JsonObject<'o> {
    out: &'o mut Vec<u8>,
    first: bool,
}

impl<'o> JsonObject<'o> {
    fn new(out: &'o mut Vec<u8>) -> Self {
        out.push(b'{');
        JsonObject { out, first: true }
    }

    fn key(&mut self, key: &str) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        // Keys are our own constants and never need escaping.
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    fn string(&mut self, key: &str, value: &str) {
        self.key(key);
        write_json_string(self.out, value);
    }

    /// An exact decimal, as a JSON string.
    fn decimal(&mut self, key: &str, value: rust_decimal::Decimal) {
        self.key(key);
        self.out.push(b'"');
        crate::money::write_decimal(self.out, value);
        self.out.push(b'"');
    }

    fn number(&mut self, key: &str, value: u64) {
        self.key(key);
        self.out
            .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
    }

    fn raw(&mut self, key: &str, literal: &str) {
        self.key(key);
        self.out.extend_from_slice(literal.as_bytes());
    }

    fn close(self) {
        self.out.push(b'}');
    }
}

/// Writes `value` as a JSON string, escaping quotes, backslashes and control characters.
fn write_json_string(out: &mut Vec<u8>, value: &str) {
    const fn escape_table() -> [bool; 256] {
        let mut table = [false; 256];
        let mut byte = 0;
        while byte < 0x20 {
            table[byte] = true;
            byte += 1;
        }
        table[b'"' as usize] = true;
        table[b'\\' as usize] = true;
        table
    }
    static NEEDS_ESCAPE: [bool; 256] = escape_table();
    let needs_escape = |b: &u8| NEEDS_ESCAPE[*b as usize];
    out.push(b'"');
    let mut rest = value.as_bytes();
    // Most values (ids, model names) need no escaping: copy them in one go.
    while let Some(position) = rest.iter().position(needs_escape) {
        out.extend_from_slice(&rest[..position]);
        match rest[position] {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            other => out.extend_from_slice(format!("\\u{other:04x}").as_bytes()),
        }
        rest = &rest[position + 1..];
    }
    out.extend_from_slice(rest);
    out.push(b'"');
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

#[cfg(test)]
mod tests {
    use super::write_json_string;

    #[test]
    fn strings_are_escaped_exactly_as_serde_json_does() {
        for text in [
            "plain",
            "quote\"d",
            "back\\slash",
            "new\nline\r\t",
            "nul\u{0}bell\u{7}",
            "ünïcödé ✓",
            "",
        ] {
            let mut out = Vec::new();
            write_json_string(&mut out, text);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(text).unwrap()
            );
        }
    }
}
