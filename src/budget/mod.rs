//! Budgets: what they are, their periods, thresholds and forecasts (pure, no I/O), and the
//! engine that evaluates them against the store (`engine.rs`).
//!
//! A budget's spend is its scope's cost over the current period, read from the rollups.
//! Every threshold at or under the spend fires once per period; the alert row's unique key
//! (budget, period start, threshold) is what makes "once" hold across replicas.

pub mod engine;
pub mod period;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

pub use period::Period;

use crate::pricing::round_money;
use crate::store::UsageFilter;
pub use crate::store::WebhookFormat;

/// A budget as the API and the config file give it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BudgetSpec {
    /// Unique; names the budget in metrics and alerts.
    pub name: String,
    /// Scope filters; absent means every project, provider, model.
    #[serde(default)]
    pub project: Option<String>,
    #[serde(default)]
    pub provider: Option<String>,
    /// The pricing sheet's model id.
    #[serde(default)]
    pub model: Option<String>,
    /// Only records carrying every one of these tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// USD, exact decimal (a string, or a JSON number).
    #[serde(with = "decimal_text")]
    #[schema(value_type = String)]
    pub limit_usd: Decimal,
    /// `day`, `week` (from Monday), `month`, `quarter`, `year`, or `{"cron": "…"}`: periods
    /// run between consecutive fire times of the (6-field, seconds first) cron expression.
    pub period: PeriodSpec,
    /// IANA timezone the period follows.
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// Fractions of the limit (`0.8`), or absolute amounts (`{"usd": "450"}`).
    #[serde(default = "default_thresholds")]
    pub thresholds: Vec<ThresholdSpec>,
    /// Alert once per period when the forecast first exceeds the limit.
    #[serde(default)]
    pub forecast: bool,
    /// `GET /v1/budgets/check` answers `allowed: false` once spend reaches the limit.
    #[serde(default)]
    pub hard: bool,
    #[serde(default)]
    pub webhooks: Vec<WebhookSpec>,
}

fn default_timezone() -> String {
    "UTC".into()
}

fn default_thresholds() -> Vec<ThresholdSpec> {
    ["0.5", "0.8", "1"]
        .iter()
        .map(|f| ThresholdSpec::Fraction(f.parse().expect("constant")))
        .collect()
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum PeriodSpec {
    /// `day`, `week`, `month`, `quarter` or `year`.
    Named(String),
    Cron {
        cron: String,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum ThresholdSpec {
    /// A fraction of the limit: `0.8` is 80%.
    #[schema(value_type = f64)]
    Fraction(#[serde(with = "decimal_number")] Decimal),
    /// An amount in USD.
    Usd {
        #[serde(with = "decimal_text")]
        #[schema(value_type = String)]
        usd: Decimal,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookSpec {
    /// `http(s)://…`. Loopback, private and link-local targets are refused unless
    /// `[webhooks] allow` names them.
    pub url: String,
    #[serde(default)]
    pub format: WebhookFormat,
    /// `whsec_` + base64: signs `json` deliveries (Standard Webhooks). Generated when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// A budget field that cannot be used; names the field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid {field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        message: message.into(),
    }
}

/// Reads a budget from JSON, naming the field at fault.
pub fn parse_spec(json: &[u8]) -> Result<BudgetSpec, FieldError> {
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    let spec: BudgetSpec = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { "body".to_owned() } else { path };
        invalid(field, e.inner().to_string())
    })?;
    Ok(spec)
}

/// Largest limit or threshold: far above any real budget, far below overflow.
const MAX_USD: i64 = 1_000_000_000_000;

/// A budget checked and ready to evaluate.
#[derive(Clone, Debug, PartialEq)]
pub struct Budget {
    pub id: String,
    pub spec: BudgetSpec,
    pub period: Period,
    pub tz: Tz,
    /// The thresholds as amounts, ascending, de-duplicated.
    pub levels: Vec<Level>,
}

/// One threshold as an amount.
#[derive(Clone, Debug, PartialEq)]
pub struct Level {
    /// Stable within a budget: `0.8` or `usd:450`. Part of the alert's unique key.
    pub key: String,
    pub amount: Decimal,
    /// For people: `80%` or `$450`.
    pub label: String,
    /// The fraction it was given as, if any.
    pub fraction: Option<Decimal>,
}

impl Budget {
    /// Checks a spec; every error names its field.
    pub fn new(id: String, spec: BudgetSpec) -> Result<Budget, FieldError> {
        let name = spec.name.trim();
        if name.is_empty() || name.len() > 128 || name.chars().any(char::is_control) {
            return Err(invalid("name", "1 to 128 printable characters"));
        }
        if let Some(project) = &spec.project {
            crate::usage::check_project("project", project)
                .map_err(|e| invalid("project", e.to_string()))?;
        }
        for (field, value) in [("provider", &spec.provider), ("model", &spec.model)] {
            if let Some(value) = value {
                crate::usage::check_label(field, value)
                    .map_err(|e| invalid(field, e.to_string()))?;
            }
        }
        for key in spec.tags.keys() {
            crate::report::params::check_tag_key("tags", key)
                .map_err(|e| invalid("tags", e.message))?;
        }
        if spec.limit_usd <= Decimal::ZERO || spec.limit_usd > Decimal::from(MAX_USD) {
            return Err(invalid("limit_usd", "must be above 0 and at most 1e12"));
        }
        let tz: Tz = spec.timezone.parse().map_err(|_| {
            invalid(
                "timezone",
                format!("{:?} is not an IANA timezone", spec.timezone),
            )
        })?;
        let period =
            Period::from_spec(&spec.period).map_err(|message| invalid("period", message))?;
        if spec.thresholds.is_empty() {
            return Err(invalid("thresholds", "give at least one"));
        }
        let mut levels: Vec<Level> = Vec::with_capacity(spec.thresholds.len());
        for (index, threshold) in spec.thresholds.iter().enumerate() {
            let field = format!("thresholds[{index}]");
            let level = match threshold {
                ThresholdSpec::Fraction(fraction) => {
                    if *fraction <= Decimal::ZERO || *fraction > Decimal::from(100) {
                        return Err(invalid(field, "a fraction above 0 and at most 100"));
                    }
                    let fraction = fraction.normalize();
                    Level {
                        key: fraction.to_string(),
                        amount: round_money(spec.limit_usd * fraction),
                        label: format!("{}%", (fraction * Decimal::from(100)).normalize()),
                        fraction: Some(fraction),
                    }
                }
                ThresholdSpec::Usd { usd } => {
                    if *usd <= Decimal::ZERO || *usd > Decimal::from(MAX_USD) {
                        return Err(invalid(field, "an amount above 0 and at most 1e12"));
                    }
                    let usd = usd.normalize();
                    Level {
                        key: format!("usd:{usd}"),
                        amount: round_money(usd),
                        label: format!("${usd}"),
                        fraction: None,
                    }
                }
            };
            if levels.iter().any(|l| l.key == level.key) {
                return Err(invalid(field, "listed twice"));
            }
            levels.push(level);
        }
        levels.sort_by(|a, b| a.amount.cmp(&b.amount).then_with(|| a.key.cmp(&b.key)));
        for (index, webhook) in spec.webhooks.iter().enumerate() {
            check_webhook(webhook)
                .map_err(|message| invalid(format!("webhooks[{index}]"), message))?;
        }
        Ok(Budget {
            id,
            spec: BudgetSpec {
                name: name.to_owned(),
                ..spec
            },
            period,
            tz,
            levels,
        })
    }

    /// The usage this budget counts.
    pub fn filter(&self) -> UsageFilter {
        UsageFilter {
            projects: self.spec.project.clone().map(|p| vec![p]),
            provider: self.spec.provider.clone(),
            model: self.spec.model.clone(),
            tags: self
                .spec
                .tags
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }

    /// The period holding `now`: `[start, end)`.
    pub fn period_at(&self, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
        self.period.at(now, self.tz)
    }

    /// Whether a record of `project` (and `provider` and `model`, when known) may count
    /// toward this budget: no given attribute contradicts its scope. Tags are not known
    /// here, so a tag-scoped budget may cover any record of its project.
    pub fn may_cover(&self, project: &str, provider: Option<&str>, model: Option<&str>) -> bool {
        let agrees = |scope: Option<&str>, given: Option<&str>| match (scope, given) {
            (Some(scope), Some(given)) => scope == given,
            _ => true,
        };
        self.spec.project.as_deref().is_none_or(|p| p == project)
            && agrees(self.spec.provider.as_deref(), provider)
            && agrees(self.spec.model.as_deref(), model)
    }
}

/// Checks a webhook's URL and secret (not its reachability: see `crate::webhook`).
fn check_webhook(webhook: &WebhookSpec) -> Result<(), String> {
    let url = reqwest::Url::parse(&webhook.url).map_err(|e| format!("url: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("url: must be http or https".into());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("url: has no host".into());
    }
    if let Some(secret) = &webhook.secret {
        crate::webhook::secret_key(secret).map_err(|e| format!("secret: {e}"))?;
    }
    Ok(())
}

/// The levels at or under `spend`, ascending: every one of them has been crossed.
pub fn crossed(levels: &[Level], spend: Decimal) -> impl Iterator<Item = &Level> {
    levels.iter().filter(move |level| level.amount <= spend)
}

/// The forecast method: spend so far, plus the recent rate times the time left.
///
/// The rate is the spend of the trailing window (the last 7 days of the period, or all
/// of it if shorter) divided by that window's length. No forecast until a tenth of the
/// period or a day (whichever is shorter) has passed: a rate from minutes of data
/// would raise false alarms.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ForecastInput {
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    pub now: DateTime<Utc>,
    /// Spend over the whole period so far.
    pub spend: Decimal,
    /// Spend over `[window_start, now)`.
    pub window_spend: Decimal,
    pub window_start: DateTime<Utc>,
}

/// The start of the forecast's trailing window.
pub fn forecast_window_start(period_start: DateTime<Utc>, now: DateTime<Utc>) -> DateTime<Utc> {
    (now - chrono::Duration::days(7)).max(period_start)
}

pub fn forecast(input: &ForecastInput) -> Option<Decimal> {
    let length = (input.period_end - input.period_start).num_seconds();
    let elapsed = (input.now - input.period_start).num_seconds();
    let window = (input.now - input.window_start).num_seconds();
    let remaining = (input.period_end - input.now).num_seconds().max(0);
    if length <= 0 || window <= 0 || elapsed < (length / 10).min(86_400) {
        return None;
    }
    let rate = input.window_spend / Decimal::from(window);
    Some(round_money(input.spend + rate * Decimal::from(remaining)))
}

/// A new id for a budget: `bud_` and 24 hex digits.
pub fn new_budget_id() -> String {
    format!("bud_{}", &uuid::Uuid::new_v4().simple().to_string()[..24])
}

/// Decimals read exactly from a JSON number or string (a number's shortest text, not
/// its binary value: `0.8` is 0.8); written as strings.
mod decimal_text {
    use rust_decimal::Decimal;
    use serde::{Deserialize, Deserializer, Serializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Text {
        Number(serde_json::Number),
        String(String),
    }

    pub fn parse<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Decimal, D::Error> {
        let text = match Text::deserialize(deserializer)? {
            Text::Number(number) => number.to_string(),
            Text::String(text) => text,
        };
        let text = text.trim();
        text.parse::<Decimal>()
            .or_else(|_| Decimal::from_scientific(text))
            .map_err(|_| serde::de::Error::custom(format!("{text:?} is not a decimal number")))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Decimal, D::Error> {
        parse(deserializer)
    }

    pub fn serialize<S: Serializer>(value: &Decimal, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&value.normalize().to_string())
    }
}

/// Like `decimal_text`, but written as a JSON number (thresholds given as fractions).
mod decimal_number {
    use rust_decimal::Decimal;
    use rust_decimal::prelude::ToPrimitive;
    use serde::{Deserializer, Serializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Decimal, D::Error> {
        super::decimal_text::parse(deserializer)
    }

    pub fn serialize<S: Serializer>(value: &Decimal, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(value.to_f64().unwrap_or_default())
    }
}

#[cfg(test)]
mod tests;
