//! `llm-meter report`: spend, savings and what-ifs from the store, with the semantics of
//! `GET /v1/spend`, `GET /v1/savings` and `GET /v1/whatif`.

use std::process::ExitCode;

use chrono::Utc;

use crate::cli::{ReportArgs, ReportFormat};
use crate::config::Config;
use crate::report::params::{self, ParameterError, SpendParams, SpendRequest};
use crate::report::render::Table;
use crate::report::savings::{self, SavingsReport};
use crate::report::whatif::{self, RoutingReport, WhatIfReport, WhatIfTarget};
use crate::report::{focus, spend};

pub async fn report(config: &Config, args: ReportArgs) -> anyhow::Result<ExitCode> {
    let request = match request_from(&args) {
        Ok(request) => request,
        Err(error) => {
            eprintln!("error: {error}");
            return Ok(ExitCode::from(super::EXIT_USAGE));
        }
    };
    let primary = config.open_store().await?;
    let book = config.live_price_book(primary.as_ref()).await?;
    // Spend is read from the replica when one is configured.
    let store = config.reader(&primary)?;
    let target = match &args.what_if {
        Some(model) => match WhatIfTarget::new(&book, model, args.what_if_provider.as_deref()) {
            Ok(target) => Some(target),
            Err(error) => {
                eprintln!("error: {error}");
                return Ok(ExitCode::from(super::EXIT_USAGE));
            }
        },
        None => None,
    };
    if matches!(args.format, ReportFormat::Focus)
        && let Err(error) = focus::check_request(&request)
    {
        eprintln!("error: {error}");
        return Ok(ExitCode::from(super::EXIT_USAGE));
    }
    if matches!(args.format, ReportFormat::Focus)
        && (args.savings || args.cheaper || target.is_some())
    {
        eprintln!(
            "error: --format focus exports spend; it does not apply to --savings, --what-if or --cheaper"
        );
        return Ok(ExitCode::from(super::EXIT_USAGE));
    }
    if args.savings {
        let report = savings::savings(store.as_ref(), &request).await?;
        print_savings(&report, args.format)?;
    } else if args.cheaper {
        let report = whatif::cheaper_models(store.as_ref(), &book, &request).await?;
        print_cheaper(&report, args.format)?;
    } else if let Some(target) = target {
        let report = whatif::what_if(store.as_ref(), &book, &request, &target).await?;
        print_what_if(&report, args.format)?;
    } else if matches!(args.format, ReportFormat::Focus) {
        // A window at a time: a year's export is written as it is read.
        let mut export = focus::Export::new(&request);
        let mut out = std::io::stdout().lock();
        while let Some(chunk) = export.next_chunk(&store, &book).await? {
            std::io::Write::write_all(&mut out, chunk.as_bytes())?;
        }
    } else {
        let report = spend::spend(store.as_ref(), &request).await?;
        match args.format {
            ReportFormat::Json => println!(
                "{}",
                serde_json::to_string_pretty(&spend::to_json(&report))?
            ),
            ReportFormat::Csv => print!("{}", spend::to_csv(&request, &report)),
            ReportFormat::Table | ReportFormat::Focus => {
                print!("{}", spend::to_table(&request, &report));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn request_from(args: &ReportArgs) -> Result<SpendRequest, ParameterError> {
    let tags = args
        .tag
        .iter()
        .map(|tag| params::parse_tag_filter(tag))
        .collect::<Result<Vec<_>, _>>()?;
    SpendParams {
        from: args.from.clone(),
        to: args.to.clone(),
        group_by: args.group_by.clone(),
        projects: args.project.clone(),
        provider: args.provider.clone(),
        model: args.model.clone(),
        tags,
        tz: args.tz.clone(),
    }
    .into_request(Utc::now(), "project")
}

/// Writes a report: JSON as is, a table or CSV through its `Table`.
fn print_report<T: serde::Serialize>(
    report: &T,
    table: Table,
    format: ReportFormat,
) -> anyhow::Result<()> {
    match format {
        ReportFormat::Json => println!("{}", serde_json::to_string_pretty(report)?),
        ReportFormat::Csv => print!("{}", table.csv()),
        ReportFormat::Table | ReportFormat::Focus => print!("{}", table.text()),
    }
    Ok(())
}

fn print_savings(report: &SavingsReport, format: ReportFormat) -> anyhow::Result<()> {
    print_report(report, savings::table(report), format)
}

fn print_what_if(report: &WhatIfReport, format: ReportFormat) -> anyhow::Result<()> {
    if matches!(format, ReportFormat::Table | ReportFormat::Focus) {
        println!(
            "What {} to {} would have cost on {}/{}:",
            report.from.format("%Y-%m-%d %H:%M"),
            report.to.format("%Y-%m-%d %H:%M UTC"),
            report.target_provider,
            report.target_model
        );
    }
    print_report(report, whatif::table(report), format)?;
    if matches!(format, ReportFormat::Table | ReportFormat::Focus) {
        for row in &report.rows {
            if let Some(reason) = &row.not_compared_reason {
                println!(
                    "not compared: {} {}/{} requests: {reason}",
                    row.not_compared_requests, row.provider, row.model
                );
            }
        }
    }
    Ok(())
}

/// One line per cheaper model (the three cheapest per project and model in a table).
fn print_cheaper(report: &RoutingReport, format: ReportFormat) -> anyhow::Result<()> {
    let text = matches!(format, ReportFormat::Table | ReportFormat::Focus);
    let mut table = Table::new(
        &[
            "project",
            "provider",
            "model",
            "requests",
            "cost_usd",
            "cheaper_model",
            "cheaper_usd",
            "saved_usd",
        ],
        3,
    );
    for row in &report.rows {
        let shown = if text { 3 } else { usize::MAX };
        for alternative in row.cheaper.iter().take(shown) {
            table.rows.push(vec![
                row.project.clone(),
                row.provider.clone(),
                row.model.clone(),
                row.requests.to_string(),
                row.cost.to_string(),
                alternative.model.clone(),
                alternative.cost.to_string(),
                alternative.saved.to_string(),
            ]);
        }
    }
    if text {
        println!(
            "Cheaper models of the same provider for the same requests, {} to {} (cost only, not quality):",
            report.from.format("%Y-%m-%d %H:%M"),
            report.to.format("%Y-%m-%d %H:%M UTC"),
        );
    }
    print_report(report, table, format)
}
