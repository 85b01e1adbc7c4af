//! `llm-meter pricing check [MODEL]`, `pricing import` and `pricing diff`.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use chrono::{NaiveDate, Utc};

use crate::cli::{ImportLayer, ImportSource, PricingCommand, SheetFormat};
use crate::config::{Config, ConfigError};
use crate::pricing::import::{self, Imported};
use crate::pricing::sheet::{Effective, Layer, RateTable};
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
            source_version,
            layer,
            since,
            format,
        } => import_command(
            config,
            ImportRequest {
                source,
                file: &file,
                out_dir: &out,
                providers: providers.as_deref(),
                version: source_version,
                layer,
                since: since.as_deref(),
                format,
            },
        ),
        PricingCommand::Sync { source } => {
            super::runtime()?.block_on(sync(config, source.as_deref()))
        }
        PricingCommand::Diff { provider, date } => {
            diff(config, provider.as_deref(), date.as_deref())
        }
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
    // A model's price as the daemon sees it: with the prices synced into the store (an
    // embedded store that does not exist yet has none, and is not created for this).
    // Otherwise, or when that fails, the sheets alone (checked, their problems listed).
    let no_store = crate::store::sqlite_path(config.database_url())
        .is_some_and(|path| !Path::new(path).exists());
    let live = if model.is_some() && !no_store {
        let live = super::runtime()?.block_on(async {
            let store = config.open_store().await?;
            config.live_price_book(store.as_ref()).await
        });
        live.inspect_err(|error| eprintln!("note: without synced prices ({error:#})"))
            .ok()
    } else {
        None
    };
    let book = match live {
        Some(book) => book,
        None => match load(config) {
            Ok(book) => book,
            Err(code) => return Ok(code),
        },
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
        Some(provider) => Some(crate::providers::canonical(provider)),
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
        if model.provenance.retrieved > today {
            let _ = writeln!(
                out,
                "warning: {model}: read on {}, a future date",
                model.provenance.retrieved
            );
        }
        if let Some(last) = model.prices.last()
            && last.from.date() > today
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
    let provenance = &model.provenance;
    let _ = writeln!(
        out,
        "sheet: {} ({}, read {})",
        model.sheet,
        provenance.layer.as_str(),
        provenance.retrieved
    );
    for source in &provenance.source {
        let _ = writeln!(out, "source: {source}");
    }
    if let Some(version) = &provenance.source_version {
        let _ = writeln!(out, "source version: {version}");
    }
    if !model.aliases.is_empty() {
        let _ = writeln!(out, "aliases: {}", model.aliases.join(", "));
    }
    let history: Vec<String> = model.prices.iter().map(|p| p.from.to_string()).collect();
    let _ = writeln!(out, "prices from: {}", history.join(", "));
    let Some(entry) = book.entry_at(model, Effective::day(date).time()) else {
        let _ = writeln!(out, "no price in force on {date}");
        return out;
    };
    let _ = writeln!(
        out,
        "in force on {date} (from {}), USD per 1M tokens; per call, session or image \
         for the tool charges; per request for `request`:",
        entry.from
    );
    let rows = book.tier_tables(model, entry);
    out.push_str(&rate_table(&rows));
    out
}

fn rate_table(rows: &[(String, RateTable)]) -> String {
    // The text buckets always; the others where some tier gives them a rate.
    let shown: Vec<Bucket> = Bucket::ALL
        .into_iter()
        .filter(|b| b.is_text() || rows.iter().any(|(_, rates)| rates[b.index()].is_some()))
        .collect();
    let mut table = Table::new(&["tier"], 1);
    table
        .header
        .extend(shown.iter().map(|b| b.as_str().to_owned()));
    for (label, rates) in rows {
        let mut line = vec![label.clone()];
        line.extend(
            shown
                .iter()
                .map(|b| rates[b.index()].map_or("-".to_owned(), |r| r.normalize().to_string())),
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

/// What `pricing import` was asked to do.
struct ImportRequest<'a> {
    source: ImportSource,
    file: &'a Path,
    out_dir: &'a Path,
    providers: Option<&'a str>,
    version: Option<String>,
    layer: ImportLayer,
    since: Option<&'a str>,
    format: SheetFormat,
}

fn import_command(config: &Config, request: ImportRequest<'_>) -> anyhow::Result<ExitCode> {
    let file = request.file;
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let providers: Vec<String> = request
        .providers
        .unwrap_or("")
        .split(',')
        .map(crate::providers::canonical)
        .filter(|p| !p.is_empty())
        .collect();
    let today = Utc::now().date_naive();
    let layer = match request.layer {
        ImportLayer::Catalog => Layer::Catalog,
        ImportLayer::Curated => Layer::Curated,
    };
    let from = match (request.since, layer) {
        (Some(text), _) => match text.parse::<NaiveDate>() {
            Ok(date) => Effective::day(date),
            Err(_) => {
                eprintln!("error: --since {text:?} is not YYYY-MM-DD");
                return Ok(ExitCode::from(super::EXIT_USAGE));
            }
        },
        (None, Layer::Catalog | Layer::Synced) => Effective::default(),
        (None, Layer::Curated) => Effective::day(today),
    };
    let file_name = file.file_name().map_or_else(
        || file.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let (label, description) = match request.source {
        ImportSource::Litellm => ("litellm", "LiteLLM"),
        ImportSource::GenaiPrices => ("genai-prices", "pydantic genai-prices"),
    };
    let source = import::Source {
        name: format!("{description} {file_name}"),
        version: request.version.clone(),
        retrieved: today,
        from,
        layer,
    };
    let result = match request.source {
        ImportSource::Litellm => import::from_litellm(&text, &providers, &source),
        ImportSource::GenaiPrices => import::from_genai_prices(&text, &providers, &source),
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
    if layer == Layer::Curated {
        reconcile_names(&book, &mut imported);
    }
    imported.sheets.retain(|_, sheet| !sheet.models.is_empty());
    let out_dir = request.out_dir;
    std::fs::create_dir_all(out_dir)
        .with_context(|| format!("cannot create {}", out_dir.display()))?;
    let mut written: Vec<(std::path::PathBuf, usize)> = Vec::new();
    match request.format {
        SheetFormat::Json => {
            let path = out_dir.join(format!("{label}.json"));
            let sheets: Vec<_> = imported.sheets.values().collect();
            let body = serde_json::to_string_pretty(&sheets)?;
            std::fs::write(&path, body + "\n")
                .with_context(|| format!("cannot write {}", path.display()))?;
            written.push((path, imported.model_count()));
        }
        SheetFormat::Toml => {
            for (provider, sheet) in &imported.sheets {
                let path = out_dir.join(format!("{label}-{provider}.toml"));
                let body =
                    toml::to_string_pretty(sheet).context("cannot write the sheet as TOML")?;
                let header = format!(
                    "# Imported from {} by `llm-meter pricing import --from {label}` on {today}.\n\n",
                    file.display()
                );
                std::fs::write(&path, header + &body)
                    .with_context(|| format!("cannot write {}", path.display()))?;
                written.push((path, sheet.models.len()));
            }
        }
    }
    for note in &imported.notes {
        eprintln!("note: {note}");
    }
    for (path, count) in &written {
        println!("wrote {} ({count} models)", path.display());
    }
    println!(
        "{} providers, {} models; {} entries malformed and skipped",
        imported.sheets.len(),
        imported.model_count(),
        imported.malformed
    );
    // The result must load on top of the current sheets, or it is no use.
    let mut texts = config.sheet_texts()?;
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

/// Where each price source stands on the models several of them price: one row per
/// model and bucket where their standard rates differ, with the rate that applies.
fn diff(config: &Config, provider: Option<&str>, date: Option<&str>) -> anyhow::Result<ExitCode> {
    let at = match date.map(str::parse::<NaiveDate>) {
        None => Utc::now(),
        Some(Ok(date)) => Effective::day(date).time(),
        Some(Err(_)) => {
            eprintln!("error: --date is not YYYY-MM-DD");
            return Ok(ExitCode::from(super::EXIT_USAGE));
        }
    };
    let provider = provider.map(crate::providers::canonical);
    // One book per source: the curated sheets, and each catalog file on its own.
    let mut sources: Vec<(String, Vec<(String, String)>)> = Vec::new();
    for (name, text) in config.sheet_texts()? {
        let label = source_label(&name);
        match sources.iter_mut().find(|(l, _)| *l == label) {
            Some((_, texts)) => texts.push((name, text)),
            None => sources.push((label, vec![(name, text)])),
        }
    }
    let mut books = Vec::new();
    for (label, texts) in sources {
        match PriceBook::from_texts(texts) {
            Ok(book) => books.push((label, book)),
            Err(error) => {
                eprintln!("error: {label}: {error}");
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    let applied = match load(config) {
        Ok(book) => book,
        Err(code) => return Ok(code),
    };
    let mut header = vec!["provider", "model", "bucket"];
    header.extend(books.iter().map(|(label, _)| label.as_str()));
    header.push("applied");
    let mut table = Table::new(&header, 3);
    let mut seen = std::collections::HashSet::new();
    for (_, book) in &books {
        for model in book.models() {
            if provider.as_ref().is_some_and(|p| *p != model.provider)
                || !seen.insert((model.provider.clone(), normalise_name(&model.id)))
            {
                continue;
            }
            // The same model in each source: any of its names, exactly.
            let rates: Vec<Option<RateTable>> = books
                .iter()
                .map(|(_, other)| {
                    let found = model
                        .names()
                        .find_map(|name| other.exact_model(&model.provider, name))?;
                    other.entry_at(found, at).map(|entry| entry.rates())
                })
                .collect();
            if rates.iter().flatten().count() < 2 {
                continue;
            }
            let used = applied
                .resolve(&model.provider, &model.id)
                .map(|r| source_label(&r.model.sheet))
                .unwrap_or_default();
            for bucket in Bucket::ALL {
                let i = bucket.index();
                let given: Vec<_> = rates.iter().flatten().filter_map(|r| r[i]).collect();
                if given.windows(2).all(|pair| pair[0] == pair[1]) {
                    continue;
                }
                let mut row = vec![model.provider.clone(), model.id.clone(), bucket.to_string()];
                row.extend(rates.iter().map(|r| {
                    r.and_then(|r| r[i])
                        .map_or_else(|| "-".to_owned(), |rate| rate.normalize().to_string())
                }));
                row.push(used.clone());
                table.rows.push(row);
            }
        }
    }
    println!(
        "Standard rates (USD per 1M tokens) where the price sources disagree, {}; \
         the applied price comes from curated sheets, then genai-prices, then LiteLLM:",
        Effective::at(at)
    );
    print!("{}", table.text());
    println!("{} disagreements", table.rows.len());
    Ok(ExitCode::SUCCESS)
}

/// `catalog/litellm.json:openai` → `litellm`; a TOML sheet → `curated`.
fn source_label(sheet: &str) -> String {
    match sheet.split_once(".json") {
        Some((stem, _)) => stem.rsplit(['/', '\\']).next().unwrap_or(stem).to_owned(),
        None => "curated".to_owned(),
    }
}

/// `pricing sync`: each configured source once, into the configured store.
async fn sync(config: &Config, only: Option<&str>) -> anyhow::Result<ExitCode> {
    let sources: Vec<_> = config
        .pricing
        .sync
        .sources
        .iter()
        .filter(|s| only.is_none_or(|name| s.name == name))
        .collect();
    if sources.is_empty() {
        eprintln!(
            "error: no [[pricing.sync.sources]]{} in the config",
            only.map(|n| format!(" named {n:?}")).unwrap_or_default()
        );
        return Ok(ExitCode::from(super::EXIT_USAGE));
    }
    let store = config.open_store().await?;
    let book = crate::pricing::LiveBook::new(config.live_price_book(store.as_ref()).await?);
    let syncer = crate::pricesync::Syncer::new(
        config.pricing.sync.clone(),
        store,
        std::sync::Arc::new(crate::metrics::Metrics::new()),
        config.sheet_texts()?,
        config.pricing.terms(),
        book,
    );
    let mut refused = false;
    for source in sources {
        match syncer.sync_one(source, Utc::now()).await {
            Ok(outcome) => println!(
                "{}: {} models, {} new, {} prices changed, {} entries skipped; {}{}",
                source.name,
                outcome.models,
                outcome.new_models,
                outcome.changed_prices,
                outcome.malformed_entries,
                if outcome.recorded {
                    "recorded"
                } else {
                    "nothing new"
                },
                if outcome.repriced_records > 0 {
                    format!("; {} stored records priced", outcome.repriced_records)
                } else {
                    String::new()
                }
            ),
            Err(error) => {
                refused = true;
                println!(
                    "{}: refused ({}): {error}; the last good prices stay",
                    source.name,
                    error.reason()
                );
            }
        }
    }
    Ok(if refused {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
