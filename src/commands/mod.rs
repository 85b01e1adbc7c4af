//! What each subcommand does. `main.rs` parses the command line and calls [`run`].

pub mod cost;
pub mod ingest;
pub mod pricing;
pub mod report;
pub mod reprice;
pub mod retention;
pub mod serve;
pub mod token;

use std::fs::File;
use std::io::{self, BufRead, BufReader, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use chrono::Utc;

use crate::cli::{Cli, Command, CostArgs};
use crate::config::Config;
use crate::prepare::Preparer;
use crate::usage::{DEFAULT_PROJECT, Format};

/// Exit code for unusable arguments (the contract's "exit 2").
pub const EXIT_USAGE: u8 = 2;

/// Runs one command; errors are reported by `main`.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = Config::load(cli.config.as_deref())?;
    match cli.command {
        Command::Cost(args) => cost_command(&config, args),
        Command::Pricing(command) => pricing::run(&config, command),
        Command::Serve(args) => runtime()?.block_on(serve::serve(&config, args)),
        Command::Ingest(args) => runtime()?.block_on(ingest::ingest(&config, args)),
        Command::Report(args) => runtime()?.block_on(report::report(&config, args)),
        Command::Migrate => runtime()?.block_on(serve::migrate(&config)),
        Command::Reprice(args) => runtime()?.block_on(reprice::reprice(&config, args)),
        Command::Token(command) => runtime()?.block_on(token::run(&config, command)),
        Command::Retention(command) => runtime()?.block_on(retention::run(&config, command)),
    }
}

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// Parses `--format`, or explains the accepted names.
pub fn parse_format(name: &str) -> Result<Format, String> {
    Format::parse(name)
        .ok_or_else(|| format!("unknown format {name:?}; expected one of {}", Format::NAMES))
}

fn usage_error(message: &str) -> anyhow::Result<ExitCode> {
    eprintln!("error: {message}");
    Ok(ExitCode::from(EXIT_USAGE))
}

fn cost_command(config: &Config, args: CostArgs) -> anyhow::Result<ExitCode> {
    let format = match parse_format(&args.format) {
        Ok(format) => format,
        Err(message) => return usage_error(&message),
    };
    for file in &args.files {
        if !file.exists() {
            return usage_error(&format!("no such file: {}", file.display()));
        }
    }
    let book = config.price_book()?;
    let project = args.project.as_deref().unwrap_or(DEFAULT_PROJECT);
    if let Err(error) = crate::usage::check_label("project", project) {
        return usage_error(&error.to_string());
    }
    let mut preparer = Preparer::new(&book, format, project);
    let stdout = io::stdout();
    let mut out = io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut summary = cost::CostSummary::default();
    let now = Utc::now();
    if args.files.is_empty() {
        let stdin = io::stdin();
        let mut input = BufReader::with_capacity(1 << 16, stdin.lock());
        cost::price_lines(&mut input, None, &mut preparer, now, &mut out, &mut summary)?;
    } else {
        let named = args.files.len() > 1;
        for path in &args.files {
            let mut input = open_input(path)?;
            let name = path.display().to_string();
            cost::price_lines(
                &mut *input,
                named.then_some(name.as_str()),
                &mut preparer,
                now,
                &mut out,
                &mut summary,
            )?;
        }
    }
    out.flush()?;
    if io::stderr().is_terminal() {
        let partial = if summary.partial > 0 {
            format!(" ({} partly priced)", summary.partial)
        } else {
            String::new()
        };
        eprintln!(
            "{} lines: {} priced{partial}, {} unpriced, {} rejected",
            summary.lines, summary.priced, summary.unpriced, summary.rejected
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Opens a JSONL file, decompressing `.gz` (also concatenated gzip members).
pub fn open_input(path: &Path) -> anyhow::Result<Box<dyn BufRead>> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    Ok(if path.extension().is_some_and(|ext| ext == "gz") {
        Box::new(BufReader::with_capacity(
            1 << 16,
            flate2::read::MultiGzDecoder::new(file),
        ))
    } else {
        Box::new(BufReader::with_capacity(1 << 16, file))
    })
}
