//! `llm-meter ingest FILE…`: one-shot backfill through the same pipeline as HTTP ingest.
//! Running it twice on the same files adds nothing the second time.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use indicatif::{ProgressBar, ProgressStyle};
use rust_decimal::Decimal;
use tokio::task::JoinSet;

use crate::cli::IngestArgs;
use crate::commands::cost::{MAX_LINE_BYTES, read_line_capped};
use crate::config::Config;
use crate::ingest::{Committed, IngestError, Intake, Pipeline, PipelineConfig};
use crate::metrics::Metrics;
use crate::prepare::Preparer;
use crate::pricing::PriceBook;
use crate::usage::{DEFAULT_PROJECT, Format};

/// A committed chunk and the cost of each of its events (`None`: unpriced).
type ChunkResult = Result<(Committed, Vec<Option<Decimal>>), IngestError>;

/// Records per submission to the pipeline.
const CHUNK_RECORDS: usize = 2000;
/// Submissions in flight at once: parsing goes on while the store commits.
const IN_FLIGHT: usize = 6;

/// What a backfill did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct BackfillSummary {
    pub read: u64,
    pub accepted: u64,
    pub duplicates: u64,
    pub rejected: u64,
    /// Records this run added without a price (duplicates and refusals are not counted).
    pub unpriced: u64,
    /// Cost of the records this run added.
    pub cost: Decimal,
}

pub async fn ingest(config: &Config, args: IngestArgs) -> anyhow::Result<ExitCode> {
    let format = match super::parse_format(&args.format) {
        Ok(format) => format,
        Err(message) => {
            eprintln!("error: {message}");
            return Ok(ExitCode::from(super::EXIT_USAGE));
        }
    };
    for file in &args.files {
        if !file.is_file() {
            eprintln!("error: no such file: {}", file.display());
            return Ok(ExitCode::from(super::EXIT_USAGE));
        }
    }
    let project = args
        .project
        .as_deref()
        .unwrap_or(DEFAULT_PROJECT)
        .to_owned();
    let store = config.open_store().await?;
    let book = Arc::new(config.live_price_book(store.as_ref()).await?);
    let metrics = Arc::new(Metrics::new());
    let pipeline_config = PipelineConfig {
        events_retention: config.retention.events,
        ..PipelineConfig::default()
    };
    let (pipeline, batcher) = Pipeline::start(store, pipeline_config, metrics);
    let total_bytes: u64 = args
        .files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    let progress = progress_bar(total_bytes);
    let mut summary = BackfillSummary::default();
    for file in &args.files {
        backfill_file(
            &pipeline,
            &book,
            format,
            &project,
            file,
            &progress,
            &mut summary,
        )
        .await?;
    }
    progress.finish_and_clear();
    drop(pipeline);
    batcher.await?;
    println!(
        "read {}, accepted {}, duplicates {}, rejected {}, unpriced {}, cost ${}",
        summary.read,
        summary.accepted,
        summary.duplicates,
        summary.rejected,
        summary.unpriced,
        summary.cost.normalize()
    );
    Ok(ExitCode::SUCCESS)
}

fn progress_bar(total_bytes: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total_bytes);
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:30} {bytes}/{total_bytes} {binary_bytes_per_sec} · {msg} · eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

/// Reads one file (`.gz` decompressed), submitting chunks to the pipeline.
pub async fn backfill_file(
    pipeline: &Pipeline,
    book: &Arc<PriceBook>,
    format: Format,
    project: &str,
    path: &Path,
    progress: &ProgressBar,
    summary: &mut BackfillSummary,
) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let path_text = path.display().to_string();
    let mut input = super::open_input(path)?;
    let mut in_flight: JoinSet<ChunkResult> = JoinSet::new();
    let mut line_number = 0usize;
    let mut buffer = Vec::with_capacity(4096);
    let mut done = false;
    while !done {
        // Read and prepare one chunk (blocking reads are fine here: one file, one task).
        let mut intake = Intake::new(Preparer::new(book, format, project), "backfill", Utc::now())
            .with_dead_letter_source(&format!("backfill {path_text}"));
        while intake.batch.events.len() + intake.batch.dead_letters.len() < CHUNK_RECORDS {
            buffer.clear();
            let read = read_line_capped(&mut *input, &mut buffer)?;
            if read == 0 {
                done = true;
                break;
            }
            line_number += 1;
            progress.inc(read as u64);
            if buffer.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            summary.read += 1;
            let at = format!("line {line_number}");
            match std::str::from_utf8(&buffer) {
                _ if read > MAX_LINE_BYTES => intake.reject(
                    line_number,
                    "line_too_long",
                    &format!("{at}: longer than {MAX_LINE_BYTES} bytes"),
                    &String::from_utf8_lossy(&buffer),
                ),
                Ok(text) => intake.add_text(line_number, text),
                Err(_) => intake.reject(
                    line_number,
                    "not_utf8",
                    &format!("{at}: not valid UTF-8"),
                    &String::from_utf8_lossy(&buffer),
                ),
            }
        }
        let batch = intake.take().batch;
        summary.rejected += batch.dead_letters.len() as u64;
        if batch.events.is_empty() && batch.dead_letters.is_empty() {
            continue;
        }
        while in_flight.len() >= IN_FLIGHT {
            absorb(in_flight.join_next().await, summary)?;
        }
        // Keep only each event's cost (None: unpriced) for the summary; the batch itself
        // moves into the pipeline, so memory holds one copy of it.
        let costs: Vec<Option<Decimal>> =
            batch.events.iter().map(|e| e.priced.price.cost()).collect();
        let pipeline = pipeline.clone();
        in_flight.spawn(async move {
            let committed = pipeline
                .write_retrying(batch, "backfill", Duration::from_secs(30))
                .await?;
            Ok((committed, costs))
        });
        progress.set_message(format!(
            "{} records, {:.0}/s",
            summary.read,
            summary.read as f64 / started.elapsed().as_secs_f64().max(1e-9)
        ));
    }
    while let Some(result) = in_flight.join_next().await {
        absorb(Some(result), summary)?;
    }
    Ok(())
}

fn absorb(
    joined: Option<Result<ChunkResult, tokio::task::JoinError>>,
    summary: &mut BackfillSummary,
) -> anyhow::Result<()> {
    let Some(joined) = joined else {
        return Ok(());
    };
    let (committed, costs) = joined.context("a backfill write panicked")??;
    summary.accepted += committed.accepted as u64;
    summary.duplicates += committed.duplicates as u64;
    summary.rejected += committed.refused.len() as u64;
    // Only what this run added: a duplicate or a refused record is counted as such.
    for (cost, new) in costs.iter().zip(&committed.inserted) {
        match cost {
            Some(cost) if *new => summary.cost += cost,
            None if *new => summary.unpriced += 1,
            _ => {}
        }
    }
    Ok(())
}
