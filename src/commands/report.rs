//! `llm-meter report`: spend from the store, with the semantics of `GET /v1/spend`.

use std::process::ExitCode;

use anyhow::Context;

use crate::cli::{ReportArgs, ReportFormat};
use crate::config::Config;
use crate::spend::{self, SpendRequest};
use crate::store::UsageFilter;

pub async fn report(config: &Config, args: ReportArgs) -> anyhow::Result<ExitCode> {
    let request = match request_from(&args) {
        Ok(request) => request,
        Err(error) => {
            eprintln!("error: {error}");
            return Ok(ExitCode::from(super::EXIT_USAGE));
        }
    };
    if matches!(args.format, ReportFormat::Focus) {
        eprintln!("llm-meter report --format focus: not yet implemented");
        return Ok(ExitCode::from(super::EXIT_USAGE));
    }
    let url = config.database_url();
    let store = crate::store::connect(url)
        .await
        .with_context(|| format!("cannot open the store {}", crate::config::redact_url(url)))?;
    store.migrate().await?;
    let report = spend::spend(store.as_ref(), &request).await?;
    match args.format {
        ReportFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&spend::to_json(&report))?
        ),
        ReportFormat::Csv => print!("{}", spend::to_csv(&request, &report)),
        ReportFormat::Table => print!("{}", spend::to_table(&request, &report)),
        ReportFormat::Focus => unreachable!("handled above"),
    }
    Ok(ExitCode::SUCCESS)
}

fn request_from(args: &ReportArgs) -> Result<SpendRequest, spend::ParameterError> {
    let from = spend::parse_time("from", &args.from)?;
    let to = spend::parse_time("to", &args.to)?;
    let group_by = spend::parse_group_by(args.group_by.as_deref().unwrap_or("project"))?;
    let tz = spend::parse_timezone(args.tz.as_deref().unwrap_or("UTC"))?;
    let mut filter = UsageFilter::default();
    if let Some(project) = &args.project {
        filter.projects = Some(vec![project.clone()]);
    }
    filter.provider = args.provider.clone();
    filter.model = args.model.clone();
    for tag in &args.tag {
        let (key, value) = tag.split_once('=').ok_or_else(|| spend::ParameterError {
            parameter: "tag".into(),
            message: format!("{tag:?} is not KEY=VALUE"),
        })?;
        filter
            .tags
            .push((spend::check_tag_key("tag", key)?, value.to_owned()));
    }
    SpendRequest::new(from, to, group_by, filter, tz)
}
