//! `llm-meter retention apply [--dry-run]`.

use std::process::ExitCode;

use crate::cli::RetentionCommand;
use crate::config::Config;
use crate::store::RetentionReport;

pub async fn run(config: &Config, command: RetentionCommand) -> anyhow::Result<ExitCode> {
    let RetentionCommand::Apply(args) = command;
    let store = config.open_store().await?;
    let report = crate::retention::apply(store.as_ref(), &config.retention, args.dry_run).await?;
    print!("{}", describe(&report, &config.retention, args.dry_run));
    Ok(ExitCode::SUCCESS)
}

/// One line per kind of row: what was (or would be) removed, or that it is kept.
pub fn describe(
    report: &RetentionReport,
    config: &crate::retention::RetentionConfig,
    dry_run: bool,
) -> String {
    let verb = if dry_run { "would remove" } else { "removed" };
    let keep = |setting: Option<std::time::Duration>| setting.map(crate::duration_text::format);
    let mut out = String::new();
    match (keep(config.events), report.events_before) {
        (Some(keep), Some(before)) => {
            let partitions = if report.partitions.is_empty() {
                String::new()
            } else {
                format!(" (partitions {})", report.partitions.join(", "))
            };
            out.push_str(&format!(
                "events: {verb} {} before {}{partitions}, kept {keep}\n",
                report.events,
                crate::usage::format_time(&before),
            ));
        }
        _ => out.push_str("events: kept (no [retention] events)\n"),
    }
    for (name, setting, removed) in [
        ("dead letters", config.dead_letters, report.dead_letters),
        (
            "hourly rollups",
            config.hourly_rollups,
            report.hourly_rollups,
        ),
        ("daily rollups", config.daily_rollups, report.daily_rollups),
    ] {
        match keep(setting) {
            Some(keep) => out.push_str(&format!("{name}: {verb} {removed}, kept {keep}\n")),
            None => out.push_str(&format!("{name}: kept\n")),
        }
    }
    match keep(config.monthly_rollups) {
        Some(keep) => out.push_str(&format!(
            "monthly rollups: {verb} {} and {} project totals, kept {keep}\n",
            report.monthly_rollups, report.project_totals
        )),
        None => out.push_str("monthly rollups: kept\n"),
    }
    out
}
