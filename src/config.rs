//! Configuration: defaults < TOML file < `LLM_METER_*` environment < command-line flags.
//!
//! Loading has no side effects and never prints secrets: `Debug` redacts the password of
//! the database URL.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::pricing::{PriceBook, PricingError, ProjectOverride};

/// The file read when `--config` is not given, if it exists.
pub const DEFAULT_CONFIG_FILE: &str = "llm-meter.toml";
/// The embedded store used when no database URL is configured.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://llm-meter.db";
/// Where `serve` listens unless told otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7464";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid environment variable {name}: {message}")]
    Env { name: &'static str, message: String },
    #[error("cannot read pricing directory {path}: {source}")]
    PricingDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Pricing(#[from] PricingError),
}

#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `postgres://…` or `sqlite://PATH`; `DATABASE_URL` / `LLM_METER_DATABASE_URL` win.
    #[serde(default)]
    pub database_url: Option<String>,
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub pricing: PricingConfig,
    /// Log files to follow.
    #[serde(default)]
    pub collectors: Vec<crate::collect::CollectorConfig>,
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// Budgets declared here are created, or updated by name, when `serve` starts.
    #[serde(default)]
    pub budgets: Vec<crate::budget::BudgetSpec>,
    #[serde(default)]
    pub digests: Vec<crate::budget::engine::DigestSpec>,
    #[serde(default)]
    pub alerts: crate::budget::engine::AlertsConfig,
    #[serde(default)]
    pub webhooks: crate::webhook::WebhookConfig,
    /// API tokens given by hash (`[[tokens]]`), beside those `token create` stores.
    #[serde(default)]
    pub tokens: Vec<crate::auth::ConfigToken>,
    #[serde(default)]
    pub limits: crate::api::Limits,
    /// Published rate limits whose headroom `/metrics` shows.
    #[serde(default)]
    pub rate_limits: Vec<crate::report::headroom::RateLimit>,
    /// How long events, dead letters and rollups are kept.
    #[serde(default)]
    pub retention: crate::retention::RetentionConfig,
    #[serde(default)]
    pub store: StoreConfig,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// A Postgres read replica (`postgres://…`, e.g. a streaming standby): spend queries,
    /// exports, `report` and the spend gauges read there; writes, budgets and alerts
    /// stay on `database_url`. `LLM_METER_READ_DATABASE_URL` wins.
    #[serde(default)]
    pub read_url: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// How often the store-derived gauges (`llm_meter_project_spend_usd`, budgets) are
    /// read again from the rollups.
    #[serde(default = "default_refresh_interval", with = "crate::duration_text")]
    pub refresh_interval: std::time::Duration,
    /// IANA timezone of the day and month `llm_meter_project_spend_usd` covers.
    #[serde(default = "default_metrics_timezone")]
    pub timezone: String,
    /// The most series the data-derived families (usage counters, request cost, project
    /// gauges) show together, whatever is sent; past it, new label sets count as `other`.
    #[serde(default = "default_max_series")]
    pub max_series: usize,
}

fn default_max_series() -> usize {
    crate::metrics::DEFAULT_MAX_SERIES
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            refresh_interval: default_refresh_interval(),
            timezone: default_metrics_timezone(),
            max_series: default_max_series(),
        }
    }
}

fn default_refresh_interval() -> std::time::Duration {
    std::time::Duration::from_secs(15)
}

fn default_metrics_timezone() -> String {
    "UTC".into()
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Listen address, `127.0.0.1:7464` by default.
    #[serde(default)]
    pub listen: Option<String>,
    /// Serve `GET /metrics` without a token, for a Prometheus that cannot send one.
    #[serde(default)]
    pub metrics_open: bool,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PricingConfig {
    /// Use the sheets compiled into the binary (those in the repository's `pricing/`).
    #[serde(default = "yes")]
    pub builtin: bool,
    /// Directories of extra `*.toml` sheets, loaded in order after the built-in ones; a
    /// later sheet replaces models with the same id and adds new ones.
    #[serde(default)]
    pub dirs: Vec<PathBuf>,
    /// Negotiated prices per project.
    #[serde(default)]
    pub overrides: Vec<ProjectOverride>,
    /// Deployment names clouds serve models under (Azure OpenAI deployments).
    #[serde(default)]
    pub deployments: Vec<crate::pricing::Deployment>,
    /// Catalogs to keep in sync while running.
    #[serde(default)]
    pub sync: crate::pricesync::SyncConfig,
}

impl Default for PricingConfig {
    fn default() -> Self {
        PricingConfig {
            builtin: true,
            dirs: Vec::new(),
            overrides: Vec::new(),
            deployments: Vec::new(),
            sync: crate::pricesync::SyncConfig::default(),
        }
    }
}

impl PricingConfig {
    /// The negotiated prices and deployment names the price book applies.
    pub fn terms(&self) -> crate::pricing::LocalTerms {
        crate::pricing::LocalTerms {
            overrides: self.overrides.clone(),
            deployments: self.deployments.clone(),
        }
    }
}

fn yes() -> bool {
    true
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field(
                "database_url",
                &self.database_url.as_deref().map(crate::store::redact_url),
            )
            .field("server", &self.server)
            .field("pricing", &self.pricing)
            .field("collectors", &self.collectors)
            .field("metrics", &self.metrics)
            .field(
                "budgets",
                &self.budgets.iter().map(|b| &b.name).collect::<Vec<_>>(),
            )
            .field(
                "digests",
                &self.digests.iter().map(|d| &d.name).collect::<Vec<_>>(),
            )
            .field("alerts", &self.alerts)
            .field("webhooks", &self.webhooks)
            .finish()
    }
}

impl Config {
    /// Reads `path`, or `llm-meter.toml` in the working directory if it exists, then
    /// applies the environment.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let mut config = match path {
            Some(path) => Config::from_file(path)?,
            None if Path::new(DEFAULT_CONFIG_FILE).exists() => {
                Config::from_file(Path::new(DEFAULT_CONFIG_FILE))?
            }
            None => Config::default(),
        };
        config.apply_env(|name| std::env::var(name).ok())?;
        Ok(config)
    }

    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::from_toml(&text).map_err(|message| ConfigError::Parse {
            path: path.to_owned(),
            message,
        })
    }

    pub fn from_toml(text: &str) -> Result<Config, String> {
        let config: Config =
            toml::from_str(text).map_err(|error| error.to_string().trim().replace('\n', " "))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what the types cannot: collector settings and unique names.
    pub fn validate(&self) -> Result<(), String> {
        self.metrics
            .timezone
            .parse::<chrono_tz::Tz>()
            .map_err(|_| {
                format!(
                    "metrics.timezone {:?} is not an IANA timezone",
                    self.metrics.timezone
                )
            })?;
        if self.metrics.refresh_interval.is_zero() {
            return Err("metrics.refresh_interval must be above zero".into());
        }
        self.pricing.sync.validate()?;
        self.retention.check()?;
        if self.alerts.evaluate_interval.is_zero() {
            return Err("alerts.evaluate_interval must be above zero".into());
        }
        let guard = crate::webhook::TargetGuard::new(&self.webhooks.allow)?;
        let mut budget_names = std::collections::HashSet::new();
        for spec in &self.budgets {
            let at = format!("budget {:?}", spec.name);
            let budget = crate::budget::Budget::new(String::new(), spec.clone())
                .map_err(|e| format!("{at}: {e}"))?;
            for webhook in &budget.spec.webhooks {
                guard
                    .check_url(&webhook.url)
                    .map_err(|e| format!("{at}: webhook {}: {e}", webhook.url))?;
            }
            if !budget_names.insert(budget.spec.name.clone()) {
                return Err(format!("two budgets are named {:?}", spec.name));
            }
        }
        let mut digest_names = std::collections::HashSet::new();
        for digest in &self.digests {
            let at = format!("digest {:?}", digest.name);
            crate::budget::Period::from_spec(&crate::budget::PeriodSpec::Cron {
                cron: digest.cron.clone(),
            })
            .map_err(|e| format!("{at}: {e}"))?;
            digest.timezone.parse::<chrono_tz::Tz>().map_err(|_| {
                format!(
                    "{at}: timezone {:?} is not an IANA timezone",
                    digest.timezone
                )
            })?;
            guard
                .check_url(&digest.webhook.url)
                .map_err(|e| format!("{at}: webhook: {e}"))?;
            if !digest_names.insert(digest.name.clone()) {
                return Err(format!("two digests are named {:?}", digest.name));
            }
        }
        let mut names = std::collections::HashSet::new();
        for collector in &self.collectors {
            collector.validate()?;
            if !names.insert(collector.name.as_str()) {
                return Err(format!("two collectors are named {:?}", collector.name));
            }
        }
        Ok(())
    }

    /// Environment overrides. `env` is a parameter so tests need not touch the process.
    pub fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        if let Some(url) = env("LLM_METER_DATABASE_URL").or_else(|| env("DATABASE_URL")) {
            self.database_url = Some(url);
        }
        if let Some(url) = env("LLM_METER_READ_DATABASE_URL") {
            self.store.read_url = Some(url);
        }
        if let Some(listen) = env("LLM_METER_LISTEN") {
            self.server.listen = Some(listen);
        }
        if let Some(dirs) = env("LLM_METER_PRICING_DIRS") {
            self.pricing.dirs = std::env::split_paths(&dirs).collect();
        }
        if let Some(builtin) = env("LLM_METER_PRICING_BUILTIN") {
            self.pricing.builtin = match builtin.as_str() {
                "1" | "true" | "yes" => true,
                "0" | "false" | "no" => false,
                other => {
                    return Err(ConfigError::Env {
                        name: "LLM_METER_PRICING_BUILTIN",
                        message: format!("{other:?} is not true or false"),
                    });
                }
            };
        }
        Ok(())
    }

    pub fn database_url(&self) -> &str {
        self.database_url.as_deref().unwrap_or(DEFAULT_DATABASE_URL)
    }

    /// The store reads go to: the replica of `[store] read_url`, else `primary`.
    pub fn reader(
        &self,
        primary: &std::sync::Arc<dyn crate::store::Store>,
    ) -> Result<std::sync::Arc<dyn crate::store::Store>, crate::store::StoreError> {
        match &self.store.read_url {
            Some(url) => crate::store::connect_reader(url),
            None => Ok(primary.clone()),
        }
    }

    /// Opens the configured store, its schema brought up to date.
    pub async fn open_store(
        &self,
    ) -> Result<std::sync::Arc<dyn crate::store::Store>, crate::store::OpenError> {
        crate::store::open(self.database_url()).await
    }

    pub fn listen(&self) -> &str {
        self.server.listen.as_deref().unwrap_or(DEFAULT_LISTEN)
    }

    /// Loads the price book this configuration describes (the only file I/O of pricing).
    pub fn price_book(&self) -> Result<PriceBook, ConfigError> {
        let book = PriceBook::from_texts(self.sheet_texts()?)?;
        Ok(book.with_terms(self.pricing.terms()))
    }

    /// The price book of this configuration and the prices synced into its store.
    pub async fn live_price_book(
        &self,
        store: &dyn crate::store::Store,
    ) -> anyhow::Result<PriceBook> {
        let syncs = store.price_syncs().await?;
        Ok(crate::pricesync::book_with_syncs(
            self.sheet_texts()?,
            &syncs,
            self.pricing.terms(),
        )?)
    }

    /// The sheets this configuration loads, as (name, text), in order: the built-in
    /// sheets and catalogs, then the `[pricing] dirs`.
    pub fn sheet_texts(&self) -> Result<Vec<(String, String)>, ConfigError> {
        let mut sheets: Vec<(String, String)> = Vec::new();
        if self.pricing.builtin {
            sheets.extend(
                crate::pricing::builtin_sheets()
                    .map(|(name, text)| (name.to_owned(), text.to_owned())),
            );
        }
        for dir in &self.pricing.dirs {
            sheets.extend(read_sheet_dir(dir)?);
        }
        Ok(sheets)
    }
}

/// Every `*.toml` sheet and `*.json` catalog of a directory, sorted by name, as (path, text).
pub fn read_sheet_dir(dir: &Path) -> Result<Vec<(String, String)>, ConfigError> {
    let error = |source| ConfigError::PricingDir {
        path: dir.to_owned(),
        source,
    };
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(error)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            path.extension()
                .is_some_and(|ext| ext == "toml" || ext == "json")
        })
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).map_err(error)?;
            Ok((path.display().to_string(), text))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_wins_over_the_file() {
        let mut config = Config::from_toml(
            "database_url = \"sqlite://file.db\"\n[server]\nlisten = \"127.0.0.1:1\"",
        )
        .unwrap();
        config
            .apply_env(|name| match name {
                "DATABASE_URL" => Some("postgres://u:p@h/db".into()),
                "LLM_METER_LISTEN" => Some("127.0.0.1:2".into()),
                _ => None,
            })
            .unwrap();
        assert_eq!(config.database_url(), "postgres://u:p@h/db");
        assert_eq!(config.listen(), "127.0.0.1:2");
        assert!(
            !format!("{config:?}").contains(":p@"),
            "password must be redacted"
        );
    }

    #[test]
    fn unknown_keys_are_rejected_with_their_name() {
        let error = Config::from_toml("[pricing]\ndirz = []").unwrap_err();
        assert!(error.contains("dirz"), "{error}");
    }

    #[test]
    fn defaults_are_the_embedded_store_and_loopback() {
        let config = Config::default();
        assert_eq!(config.database_url(), DEFAULT_DATABASE_URL);
        assert_eq!(config.listen(), DEFAULT_LISTEN);
        assert!(config.pricing.builtin);
    }
}
