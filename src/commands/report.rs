//! `llm-meter report`: spend, savings and what-ifs from the store, with the semantics of
//! `GET /v1/spend`, `GET /v1/savings` and `GET /v1/whatif`.

use std::process::ExitCode;

use anyhow::Context;
use chrono::Utc;

use crate::analysis::{self, SavingsReport, WhatIfReport, WhatIfTarget};
use crate::cli::{ReportArgs, ReportFormat};
use crate::config::Config;
use crate::spend::{self, SpendParams, SpendRequest};

pub async fn report(config: &Config, args: ReportArgs) -> anyhow::Result<ExitCode> {
    let request = match request_from(&args) {
        Ok(request) => request,
        Err(error) => {
            eprintln!("error: {error}");
            return Ok(ExitCode::from(super::EXIT_USAGE));
        }
    };
    let book = config.price_book()?;
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
        && let Err(error) = crate::focus::check_request(&request)
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
    let url = config.database_url();
    let store = crate::store::connect(url)
        .await
        .with_context(|| format!("cannot open the store {}", crate::config::redact_url(url)))?;
    store.migrate().await?;
    if args.savings {
        let report = analysis::savings(store.as_ref(), &request).await?;
        print_savings(&report, args.format)?;
    } else if args.cheaper {
        let report = analysis::cheaper_models(store.as_ref(), &book, &request).await?;
        print_cheaper(&report, args.format)?;
    } else if let Some(target) = target {
        let report = analysis::what_if(store.as_ref(), &book, &request, &target).await?;
        print_what_if(&report, args.format)?;
    } else if matches!(args.format, ReportFormat::Focus) {
        let rows = crate::focus::rows(store.as_ref(), &request).await?;
        print!("{}", crate::focus::to_csv(&rows, &book));
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

fn request_from(args: &ReportArgs) -> Result<SpendRequest, spend::ParameterError> {
    let tags = args
        .tag
        .iter()
        .map(|tag| spend::parse_tag_filter(tag))
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

fn print_savings(report: &SavingsReport, format: ReportFormat) -> anyhow::Result<()> {
    let (header, rows, total) = analysis::savings_table(report);
    match format {
        ReportFormat::Json => println!("{}", serde_json::to_string_pretty(report)?),
        ReportFormat::Csv => print!("{}", spend::csv_text(&header, &rows)),
        ReportFormat::Table | ReportFormat::Focus => {
            print!("{}", spend::aligned_table(&header, &rows, Some(&total), 3));
        }
    }
    Ok(())
}

fn print_what_if(report: &WhatIfReport, format: ReportFormat) -> anyhow::Result<()> {
    let (header, rows, total) = analysis::what_if_table(report);
    match format {
        ReportFormat::Json => println!("{}", serde_json::to_string_pretty(report)?),
        ReportFormat::Csv => print!("{}", spend::csv_text(&header, &rows)),
        ReportFormat::Table | ReportFormat::Focus => {
            println!(
                "What {} to {} would have cost on {}/{}:",
                report.from.format("%Y-%m-%d %H:%M"),
                report.to.format("%Y-%m-%d %H:%M UTC"),
                report.target_provider,
                report.target_model
            );
            print!("{}", spend::aligned_table(&header, &rows, Some(&total), 2));
            for row in &report.rows {
                if let Some(reason) = &row.not_compared_reason {
                    println!(
                        "not compared: {} {}/{} requests: {reason}",
                        row.not_compared_requests, row.provider, row.model
                    );
                }
            }
        }
    }
    Ok(())
}

/// One line per cheaper model (the three cheapest per project and model in a table).
fn print_cheaper(report: &analysis::RoutingReport, format: ReportFormat) -> anyhow::Result<()> {
    if matches!(format, ReportFormat::Json) {
        println!("{}", serde_json::to_string_pretty(report)?);
        return Ok(());
    }
    let table = matches!(format, ReportFormat::Table);
    let header: Vec<String> = [
        "project",
        "provider",
        "model",
        "requests",
        "cost_usd",
        "cheaper_model",
        "cheaper_usd",
        "saved_usd",
    ]
    .map(String::from)
    .to_vec();
    let mut rows = Vec::new();
    for row in &report.rows {
        let shown = if table { 3 } else { usize::MAX };
        for alternative in row.cheaper.iter().take(shown) {
            rows.push(vec![
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
    if table {
        println!(
            "Cheaper models of the same provider for the same requests, {} to {} (cost only, not quality):",
            report.from.format("%Y-%m-%d %H:%M"),
            report.to.format("%Y-%m-%d %H:%M UTC"),
        );
        print!("{}", spend::aligned_table(&header, &rows, None, 3));
    } else {
        print!("{}", spend::csv_text(&header, &rows));
    }
    Ok(())
}
