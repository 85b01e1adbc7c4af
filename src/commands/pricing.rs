//! `llm-meter pricing check [MODEL]` and `llm-meter pricing import`.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use chrono::{NaiveDate, Utc};

use crate::cli::{ImportSource, PricingCommand};
use crate::config::{Config, ConfigError};
use crate::pricing::import::{self, Imported};
use crate::pricing::sheet::{RateTable, Tier};
use crate::pricing::{PriceBook, normalise_name};
use crate::report::render::Table;
use crate::usage::Bucket;

pub fn run(config: &Config, command: PricingCommand) -> anyhow::Result<ExitCode> {
    match command {
        PricingCommand::Check {
            model,
            provider,
            date,
        } => check(
            config,
            model.as_deref(),
            provider.as_deref(),
            date.as_deref(),
        ),
        PricingCommand::Import {
            source,
            file,
            out,
            providers,
        } => import_command(config, source, &file, &out, providers.as_deref()),
    }
}

fn load(config: &Config) -> Result<PriceBook, ExitCode> {
    match config.price_book() {
        Ok(book) => Ok(book),
        Err(ConfigError::Pricing(error)) => {
            eprintln!("{error}");
            Err(ExitCode::FAILURE)
        }
        Err(error) => {
            eprintln!("error: {error}");
            Err(ExitCode::FAILURE)
        }
    }
}

fn check(
    config: &Config,
    model: Option<&str>,
    provider: Option<&str>,
    date: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let book = match load(config) {
        Ok(book) => book,
        Err(code) => return Ok(code),
    };
    let today = Utc::now().date_naive();
    let date = match date {
        Some(text) => match text.parse::<NaiveDate>() {
            Ok(date) => date,
            Err(_) => {
                eprintln!("error: --date {text:?} is not YYYY-MM-DD");
                return Ok(ExitCode::from(super::EXIT_USAGE));
            }
        },
        None => today,
    };
    let Some(model) = model else {
        print!("{}", summary(&book, today));
        return Ok(ExitCode::SUCCESS);
    };
    let provider = match provider {
        Some(provider) => Some(provider.to_ascii_lowercase()),
        None => book.infer_provider(model),
    };
    let Some(provider) = provider else {
        eprintln!(
            "no sheet prices {model:?} (or several providers list it: pass --provider); \
             providers: {}",
            book.providers()
                .chain(book.gateways())
                .collect::<Vec<_>>()
                .join(", ")
        );
        return Ok(ExitCode::FAILURE);
    };
    let Some(resolved) = book.resolve(&provider, model) else {
        eprintln!("no sheet of provider {provider:?} prices {model:?}");
        return Ok(ExitCode::FAILURE);
    };
    print!("{}", describe(&book, model, &resolved, date));
    Ok(ExitCode::SUCCESS)
}

fn summary(book: &PriceBook, today: NaiveDate) -> String {
    let mut out = String::new();
    let models = book.models();
    let prices: usize = models.iter().map(|m| m.prices.len()).sum();
    let _ = writeln!(
        out,
        "{} sheets valid: {} models, {} dated prices",
        book.sheet_names().len(),
        models.len(),
        prices
    );
    for sheet in book.sheet_names() {
        let in_sheet: Vec<_> = models.iter().filter(|m| &m.sheet == sheet).collect();
        let _ = writeln!(out, "  {sheet}: {} models", in_sheet.len());
    }
    for model in models {
        if model.retrieved > today {
            let _ = writeln!(
                out,
                "warning: {model}: read on {}, a future date",
                model.retrieved
            );
        }
        if let Some(last) = model.prices.last()
            && last.from > today
        {
            let _ = writeln!(
                out,
                "note: {model}: a price starts on {} (announced)",
                last.from
            );
        }
    }
    out
}

fn describe(
    book: &PriceBook,
    name: &str,
    resolved: &crate::pricing::Resolved<'_>,
    date: NaiveDate,
) -> String {
    let model = resolved.model;
    let mut out = String::new();
    let _ = writeln!(out, "{name} → {}", resolved.name());
    let _ = writeln!(out, "sheet: {} (read {})", model.sheet, model.retrieved);
    for source in &model.source {
        let _ = writeln!(out, "source: {source}");
    }
    if !model.aliases.is_empty() {
        let _ = writeln!(out, "aliases: {}", model.aliases.join(", "));
    }
    let history: Vec<String> = model.prices.iter().map(|p| p.from.to_string()).collect();
    let _ = writeln!(out, "prices from: {}", history.join(", "));
    let Some(entry) = book.entry_on(model, date) else {
        let _ = writeln!(out, "no price in force on {date}");
        return out;
    };
    let _ = writeln!(
        out,
        "in force on {date} (from {}), USD per 1M tokens:",
        entry.from
    );
    let mut rows = Vec::new();
    let long = entry.long_context.as_ref();
    for long_context in [false, true] {
        if long_context && long.is_none() {
            continue;
        }
        for tier in [Tier::Standard, Tier::Batch, Tier::Flex, Tier::Priority] {
            if let Some(table) = book
                .tier_table(model, entry, tier, long_context)
                .filter(|t| t.iter().any(Option::is_some))
            {
                let label = match (long_context, long) {
                    (true, Some(lc)) => format!("{tier} >{}", lc.above),
                    _ => tier.to_string(),
                };
                rows.push((label, table));
            }
        }
    }
    out.push_str(&rate_table(&rows));
    out
}

fn rate_table(rows: &[(String, RateTable)]) -> String {
    let mut table = Table::new(&["tier"], 1);
    table
        .header
        .extend(Bucket::ALL.iter().map(|b| b.as_str().to_owned()));
    for (label, rates) in rows {
        let mut line = vec![label.clone()];
        line.extend(
            rates
                .iter()
                .map(|rate| rate.map_or("-".to_owned(), |r| r.normalize().to_string())),
        );
        table.rows.push(line);
    }
    // Indented under the model's heading.
    table
        .text()
        .lines()
        .map(|line| format!("  {line}\n"))
        .collect()
}

fn import_command(
    config: &Config,
    source: ImportSource,
    file: &Path,
    out_dir: &Path,
    providers: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let providers: Vec<String> = providers
        .unwrap_or("openai,anthropic,google")
        .split(',')
        .map(|p| p.trim().to_ascii_lowercase())
        .filter(|p| !p.is_empty())
        .collect();
    let today = Utc::now().date_naive();
    let (label, result) = match source {
        ImportSource::Litellm => (
            "litellm",
            import::from_litellm(
                &text,
                &providers,
                today,
                &format!("LiteLLM {}", file.display()),
            ),
        ),
        ImportSource::GenaiPrices => (
            "genai-prices",
            import::from_genai_prices(
                &text,
                &providers,
                today,
                &format!("pydantic/genai-prices {}", file.display()),
            ),
        ),
    };
    let mut imported = match result {
        Ok(imported) => imported,
        Err(error) => {
            eprintln!("error: {}: {error}", file.display());
            return Ok(ExitCode::FAILURE);
        }
    };
    let book = match load(config) {
        Ok(book) => book,
        Err(code) => return Ok(code),
    };
    reconcile_names(&book, &mut imported);
    std::fs::create_dir_all(out_dir)
        .with_context(|| format!("cannot create {}", out_dir.display()))?;
    let mut written = Vec::new();
    for (provider, sheet) in &imported.sheets {
        if sheet.models.is_empty() {
            continue;
        }
        let path = out_dir.join(format!("{label}-{provider}.toml"));
        let body = toml::to_string_pretty(sheet).context("cannot write the sheet as TOML")?;
        let header = format!(
            "# Imported from {} by `llm-meter pricing import --from {label}` on {today}.\n\
             # Undated prices are taken as in force from the import day; load this directory\n\
             # after the built-in sheets (`[pricing] dirs`) so their history stays intact.\n\n",
            file.display()
        );
        std::fs::write(&path, header + &body)
            .with_context(|| format!("cannot write {}", path.display()))?;
        written.push((path, sheet.models.len()));
    }
    for note in &imported.notes {
        eprintln!("note: {note}");
    }
    for (path, count) in &written {
        println!("wrote {} ({count} models)", path.display());
    }
    // The result must load on top of the current sheets, or it is no use.
    let mut texts: Vec<(String, String)> = crate::pricing::builtin_sheets()
        .filter(|_| config.pricing.builtin)
        .map(|(n, t)| (n.to_owned(), t.to_owned()))
        .collect();
    for (path, _) in &written {
        texts.push((path.display().to_string(), std::fs::read_to_string(path)?));
    }
    match PriceBook::from_texts(texts) {
        Ok(_) => Ok(ExitCode::SUCCESS),
        Err(error) => {
            eprintln!("the imported sheets do not load on top of the current ones:\n{error}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Keeps imported names consistent with the sheets already loaded: an imported model
/// whose id is an alias of a known model takes that model's id (so its prices merge
/// into it), and an alias that names a different known model is dropped.
fn reconcile_names(book: &PriceBook, imported: &mut Imported) {
    for (provider, sheet) in imported.sheets.iter_mut() {
        for model in sheet.models.iter_mut() {
            if let Some(known) = book.exact_model(provider, &model.id)
                && known.id != model.id
            {
                imported.notes.push(format!(
                    "{provider}/{}: the built-in sheets call this {}; renamed",
                    model.id, known.id
                ));
                let old = std::mem::replace(&mut model.id, known.id.clone());
                model.aliases.push(old);
            }
            let id = model.id.clone();
            model.aliases.retain(
                |alias| match book.resolve(provider, alias).map(|r| r.model) {
                    Some(known) if normalise_name(&known.id) != normalise_name(&id) => {
                        imported.notes.push(format!(
                            "{provider}/{id}: alias {alias:?} dropped, it names {}",
                            known.id
                        ));
                        false
                    }
                    _ => true,
                },
            );
            model.aliases.retain(|alias| alias != &id);
            model.aliases.sort();
            model.aliases.dedup();
        }
        // Two imported models may now share an id; keep the first.
        let mut seen = std::collections::HashSet::new();
        sheet.models.retain(|m| seen.insert(m.id.clone()));
    }
}
