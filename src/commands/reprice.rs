//! `llm-meter reprice`: price stored records again with the current sheets (after a price
//! correction, or a new sheet for a model that had none) and move the rollups with them.

use std::process::ExitCode;

use crate::cli::RepriceArgs;
use crate::config::Config;
use crate::report::params;
use crate::store::{RepriceScope, RepriceSummary};
use crate::usage::UsageRecord;

pub async fn reprice(config: &Config, args: RepriceArgs) -> anyhow::Result<ExitCode> {
    let scope = match scope_from(&args) {
        Ok(scope) => scope,
        Err(message) => {
            eprintln!("error: {message}");
            return Ok(ExitCode::from(super::EXIT_USAGE));
        }
    };
    let store = config.open_store().await?;
    let book = config.live_price_book(store.as_ref()).await?;
    let price = move |record: &UsageRecord| book.price(record);
    let summary = store.reprice(&scope, &price).await?;
    print!("{}", describe(&scope, &summary));
    Ok(ExitCode::SUCCESS)
}

fn scope_from(args: &RepriceArgs) -> Result<RepriceScope, String> {
    let from = params::parse_time("from", &args.from).map_err(|e| e.to_string())?;
    let to = params::parse_time("to", &args.to).map_err(|e| e.to_string())?;
    if to <= from {
        return Err("invalid to: must be after from".into());
    }
    if let Some(project) = &args.project {
        crate::usage::check_label("project", project).map_err(|e| e.to_string())?;
    }
    Ok(RepriceScope {
        from,
        to,
        project: args.project.clone(),
        dry_run: args.dry_run,
        provider: None,
        only_unpriced: false,
        actor: format!(
            "cli:{}",
            std::env::var("USER").unwrap_or_else(|_| "unknown".into())
        ),
    })
}

/// What a reprice did (or would do), for people.
pub fn describe(scope: &RepriceScope, summary: &RepriceSummary) -> String {
    let difference = (summary.new_total - summary.old_total).normalize();
    let sign = if difference.is_sign_negative() {
        ""
    } else {
        "+"
    };
    let project = scope
        .project
        .as_deref()
        .map(|p| format!(" of project {p}"))
        .unwrap_or_default();
    let mut out = format!(
        "{} records{project} from {} to {}: {} {}changed ({} newly priced, {} no longer priced)\n\
         cost: {} -> {} USD ({sign}{difference})\n",
        summary.examined,
        scope.from.to_rfc3339(),
        scope.to.to_rfc3339(),
        summary.changed,
        if scope.dry_run { "would be " } else { "" },
        summary.newly_priced,
        summary.newly_unpriced,
        summary.old_total.normalize(),
        summary.new_total.normalize(),
    );
    if scope.dry_run {
        out.push_str("dry run: nothing was changed\n");
    }
    out
}
