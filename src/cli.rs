//! The command line (clap definitions only; the work is in `commands`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "llm-meter",
    version,
    about = "Meters LLM API usage and turns it into exact money",
    long_about = "Meters LLM API usage and turns it into exact money.\n\n\
                  Configuration: --config FILE (else ./llm-meter.toml if present), then \
                  LLM_METER_* environment variables, then flags. DATABASE_URL or \
                  LLM_METER_DATABASE_URL selects the store (default sqlite://llm-meter.db)."
)]
pub struct Cli {
    /// Configuration file (TOML). Default: ./llm-meter.toml if it exists.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: HTTP API, /metrics, collectors, budget alerts.
    Serve(ServeArgs),
    /// Backfill usage log files (JSONL, also .gz) into the store.
    Ingest(IngestArgs),
    /// Price usage records without storing them: one JSON object per input line.
    Cost(CostArgs),
    /// Spend from the store.
    Report(ReportArgs),
    /// Recompute stored costs with the current pricing sheets.
    Reprice(RepriceArgs),
    /// Apply database migrations.
    Migrate,
    /// Validate pricing sheets, look up models, import community price databases.
    #[command(subcommand)]
    Pricing(PricingCommand),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Remove what `[retention]` no longer keeps.
    #[command(subcommand)]
    Retention(RetentionCommand),
}

#[derive(Debug, Subcommand)]
pub enum RetentionCommand {
    /// Remove events, dead letters and rollups older than `[retention]` keeps them (on
    /// Postgres, whole months of events: their partitions are dropped).
    Apply(RetentionApplyArgs),
}

#[derive(Debug, Args)]
pub struct RetentionApplyArgs {
    /// Count what would be removed; remove nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (default 127.0.0.1:7464).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Allow a non-loopback listen address with no API token configured.
    #[arg(long)]
    pub insecure_no_auth: bool,
}

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Project for records that name none.
    #[arg(long, value_name = "P")]
    pub project: Option<String>,
    /// Input shape: auto (detected per line), canonical, openai, anthropic, gemini,
    /// bedrock, cohere, litellm or cloudevents.
    #[arg(long, value_name = "F", default_value = "auto")]
    pub format: String,
    /// Files to read (JSONL; `.gz` is decompressed).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CostArgs {
    /// Project for records that name none (default: "default").
    #[arg(long, value_name = "P")]
    pub project: Option<String>,
    /// Input shape: auto (detected per line), canonical, openai, anthropic, gemini,
    /// bedrock, cohere, litellm or cloudevents.
    #[arg(long, value_name = "F", default_value = "auto")]
    pub format: String,
    /// Files to read (JSONL; `.gz` is decompressed). Standard input when none.
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ReportFormat {
    Table,
    Json,
    Csv,
    Focus,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Start (RFC 3339 or YYYY-MM-DD, inclusive; default: the start of this month in --tz).
    #[arg(long, value_name = "T")]
    pub from: Option<String>,
    /// End (RFC 3339 or YYYY-MM-DD, exclusive; default: now).
    #[arg(long, value_name = "T")]
    pub to: Option<String>,
    /// Comma-separated: project, provider, model, service_tier, batch, reasoning_effort,
    /// token_type, tag:KEY, and one of hour, day, week, month (default: project).
    #[arg(long, value_name = "LIST")]
    pub group_by: Option<String>,
    #[arg(long, value_enum, default_value = "table")]
    pub format: ReportFormat,
    /// Only this project (repeatable, or comma-separated).
    #[arg(long, value_name = "P")]
    pub project: Vec<String>,
    /// Only this provider.
    #[arg(long, value_name = "NAME")]
    pub provider: Option<String>,
    /// Only this model (the pricing sheet's id, e.g. gpt-5.2).
    #[arg(long, value_name = "NAME")]
    pub model: Option<String>,
    /// Only records with this tag (repeatable): KEY=VALUE.
    #[arg(long, value_name = "KEY=VALUE")]
    pub tag: Vec<String>,
    /// IANA timezone for day, week and month buckets (default UTC).
    #[arg(long, value_name = "ZONE")]
    pub tz: Option<String>,
    /// What prompt caching, batch pricing and negotiated prices saved, against list price,
    /// per project and model.
    #[arg(long, conflicts_with = "what_if")]
    pub savings: bool,
    /// What the period's usage would have cost on this model instead.
    #[arg(long, value_name = "MODEL")]
    pub what_if: Option<String>,
    /// The provider of the --what-if model (inferred from the sheets when omitted).
    #[arg(long, value_name = "NAME", requires = "what_if")]
    pub what_if_provider: Option<String>,
    /// Routing advice: per project and model, the same provider's models that would have
    /// cost less for the same requests, cheapest first.
    #[arg(long, conflicts_with_all = ["what_if", "savings"])]
    pub cheaper: bool,
}

#[derive(Debug, Args)]
pub struct RepriceArgs {
    /// Start (RFC 3339 or YYYY-MM-DD, inclusive).
    #[arg(long, value_name = "T")]
    pub from: String,
    /// End (RFC 3339 or YYYY-MM-DD, exclusive).
    #[arg(long, value_name = "T")]
    pub to: String,
    /// Only this project.
    #[arg(long, value_name = "P")]
    pub project: Option<String>,
    /// Print the difference without changing anything.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Subcommand)]
pub enum PricingCommand {
    /// Validate every sheet; with MODEL, show which sheet and price the name resolves to.
    Check {
        /// A model name as records write it, e.g. gpt-5.2-2025-12-11 or openai/gpt-5-2.
        model: Option<String>,
        /// Provider to resolve MODEL in (inferred from the sheets when omitted).
        #[arg(long)]
        provider: Option<String>,
        /// Show the price in force on this date (default: today).
        #[arg(long, value_name = "YYYY-MM-DD")]
        date: Option<String>,
    },
    /// Turn a community price catalog into pricing sheets.
    Import {
        /// litellm (model_prices_and_context_window_backup.json, as the `litellm` package
        /// ships it) or genai-prices (the JSON `scripts/catalog/export_genai_prices.py`
        /// writes from the `genai-prices` package, or its published data.json).
        #[arg(long = "from", value_enum)]
        source: ImportSource,
        /// The catalog file.
        file: PathBuf,
        /// Directory to write into.
        #[arg(long, value_name = "DIR", default_value = "pricing/imported")]
        out: PathBuf,
        /// Only these providers (comma-separated ids; default: every provider).
        #[arg(long, value_name = "LIST")]
        providers: Option<String>,
        /// The catalog's version, kept with every price (e.g. "litellm 1.110.2").
        #[arg(long = "source-version", value_name = "TEXT")]
        source_version: Option<String>,
        /// catalog: the sheets only fill in models no curated sheet lists (undated prices
        /// apply from 2000-01-01). curated: they override the built-in sheets (undated
        /// prices apply from --since, default today, so earlier history stays).
        #[arg(long, value_enum, default_value = "catalog")]
        layer: ImportLayer,
        /// When undated prices take effect (YYYY-MM-DD).
        #[arg(long, value_name = "DATE")]
        since: Option<String>,
        /// toml: one sheet per provider; json: one file holding every sheet (what the
        /// built-in catalog in pricing/catalog/ is).
        #[arg(long, value_enum, default_value = "toml")]
        format: SheetFormat,
    },
    /// Sync the catalogs `[pricing.sync]` names now, into the configured store.
    Sync {
        /// Only this source (its name in the config).
        #[arg(long, value_name = "NAME")]
        source: Option<String>,
    },
    /// List where the price sources disagree on a model's standard rates, and which
    /// price applies (curated sheets, then genai-prices, then LiteLLM).
    Diff {
        /// Only this provider.
        #[arg(long)]
        provider: Option<String>,
        /// Compare the prices in force on this date (default: today).
        #[arg(long, value_name = "YYYY-MM-DD")]
        date: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ImportLayer {
    Catalog,
    Curated,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum SheetFormat {
    Toml,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ImportSource {
    Litellm,
    GenaiPrices,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token; it is printed once, alone on the last line.
    Create {
        #[arg(long, value_name = "admin|ingest|read")]
        role: String,
        #[arg(long, value_name = "P")]
        project: Vec<String>,
        #[arg(long, value_name = "N")]
        name: Option<String>,
        /// Expire after this long (`90d`, `12h`).
        #[arg(long, value_name = "DURATION")]
        expires: Option<String>,
        /// Store nothing: print a `[[tokens]]` entry (with the token's hash) for the config
        /// file, then the token.
        #[arg(long)]
        for_config: bool,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token by id.
    Revoke { id: String },
}
