//! The budget engine: evaluates budgets against the store after each commit that touches
//! their scope (debounced) and on a timer, fires alerts once per (budget, period,
//! threshold), writes their webhook deliveries in the same transaction, and keeps the
//! budget gauges and the status cache `GET /v1/budgets/check` answers from.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::{Notify, watch};

use super::{
    Budget, BudgetSpec, ForecastInput, Level, Period, PeriodSpec, WebhookFormat, WebhookSpec,
    crossed, forecast, forecast_window_start,
};
use crate::ingest::Changes;
use crate::metrics::Metrics;
use crate::store::{
    AlertKind, AlertRecord, Dimension, Measures, NewDelivery, Store, StoreError, StoredBudget,
    UsageFilter, UsageQuery,
};

/// `[alerts]` in the config.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    /// Every budget is evaluated this often, whatever was ingested (the safety net).
    #[serde(default = "default_interval", with = "crate::duration_text")]
    pub evaluate_interval: Duration,
    /// After a commit, wait this long for more before evaluating the budgets it touched.
    #[serde(default = "default_debounce", with = "crate::duration_text")]
    pub debounce: Duration,
}

fn default_interval() -> Duration {
    Duration::from_secs(30)
}

fn default_debounce() -> Duration {
    Duration::from_millis(100)
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            evaluate_interval: default_interval(),
            debounce: default_debounce(),
        }
    }
}

/// How long after a period ends its thresholds are still checked, for records that arrive
/// late.
const LATE_GRACE: chrono::Duration = chrono::Duration::hours(1);

/// `[[digests]]` in the config: last period's spend per project and model, sent at each
/// fire time of a cron expression.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DigestSpec {
    pub name: String,
    /// 6 fields, seconds first: `0 0 8 * * MON` is Mondays at 08:00.
    pub cron: String,
    #[serde(default = "utc")]
    pub timezone: String,
    #[serde(default)]
    pub project: Option<String>,
    pub webhook: WebhookSpec,
}

fn utc() -> String {
    "UTC".into()
}

/// A budget's state at its last evaluation.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct BudgetStatus {
    pub budget_id: String,
    pub budget: String,
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    #[serde(rename = "spend_usd", with = "rust_decimal::serde::str")]
    #[schema(value_type = String)]
    pub spend: Decimal,
    #[serde(rename = "limit_usd", with = "rust_decimal::serde::str")]
    #[schema(value_type = String)]
    pub limit: Decimal,
    /// Spend over limit, as a decimal string (`"0.85"`).
    #[serde(with = "rust_decimal::serde::str")]
    #[schema(value_type = String)]
    pub utilization: Decimal,
    #[serde(rename = "remaining_usd", with = "rust_decimal::serde::str")]
    #[schema(value_type = String)]
    pub remaining: Decimal,
    /// Absent until enough of the period has passed (see the forecast method).
    #[serde(rename = "forecast_usd", with = "rust_decimal::serde::str_option")]
    #[schema(value_type = Option<String>)]
    pub forecast: Option<Decimal>,
    pub hard: bool,
    /// Spend has reached the limit.
    pub exceeded: bool,
    pub evaluated_at: DateTime<Utc>,
}

pub struct Engine {
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    changes: Arc<Changes>,
    wake_deliveries: Arc<Notify>,
    config: AlertsConfig,
    webhook_expiry: Duration,
    digests: Vec<(DigestSpec, Period, chrono_tz::Tz)>,
    statuses: RwLock<HashMap<String, BudgetStatus>>,
    /// (budget, period start, threshold key) known to be recorded: skip the write.
    fired: Mutex<HashSet<(String, DateTime<Utc>, String)>>,
    /// One evaluation at a time in this process, so alerts are written in threshold order.
    evaluating: tokio::sync::Mutex<()>,
}

impl Engine {
    pub fn new(
        store: Arc<dyn Store>,
        metrics: Arc<Metrics>,
        changes: Arc<Changes>,
        wake_deliveries: Arc<Notify>,
        config: AlertsConfig,
        webhook_expiry: Duration,
        digests: &[DigestSpec],
    ) -> Result<Engine, String> {
        let digests = digests
            .iter()
            .map(|digest| {
                let period = Period::from_spec(&PeriodSpec::Cron {
                    cron: digest.cron.clone(),
                })
                .map_err(|e| format!("digest {:?}: {e}", digest.name))?;
                let tz = digest
                    .timezone
                    .parse()
                    .map_err(|_| format!("digest {:?}: bad timezone", digest.name))?;
                Ok((digest.clone(), period, tz))
            })
            .collect::<Result<_, String>>()?;
        Ok(Engine {
            store,
            metrics,
            changes,
            wake_deliveries,
            config,
            webhook_expiry,
            digests,
            statuses: RwLock::new(HashMap::new()),
            fired: Mutex::new(HashSet::new()),
            evaluating: tokio::sync::Mutex::new(()),
        })
    }

    /// Evaluates on commits (debounced) and on the timer until `stop` turns true.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut ticks = tokio::time::interval(self.config.evaluate_interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // The timer first: a steady stream of commits never starves the periodic
            // evaluation (and digests), and the one at startup runs before any other.
            let touched = tokio::select! {
                biased;
                _ = ticks.tick() => None,
                _ = self.changes.changed() => {
                    tokio::time::sleep(self.config.debounce).await;
                    Some(self.changes.take())
                }
                _ = stop.changed() => return,
            };
            if *stop.borrow() {
                return;
            }
            let now = Utc::now();
            if let Err(error) = self.evaluate_all(touched.as_ref(), now).await {
                tracing::warn!(message = "Budget evaluation failed.", %error);
            }
            if touched.is_none()
                && let Err(error) = self.send_digests(now).await
            {
                tracing::warn!(message = "Digest failed.", %error);
            }
        }
    }

    /// Every stored budget that can be used.
    pub async fn budgets(&self) -> Result<Vec<Budget>, StoreError> {
        Ok(self
            .store
            .budgets()
            .await?
            .iter()
            .filter_map(|stored| match parse_stored(stored) {
                Ok(budget) => Some(budget),
                Err(error) => {
                    tracing::warn!(message = "A stored budget cannot be used.", budget = %stored.name, %error);
                    None
                }
            })
            .collect())
    }

    /// Evaluates every budget (or those `touched` projects may count toward).
    pub async fn evaluate_all(
        &self,
        touched: Option<&HashSet<String>>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let budgets = self.budgets().await?;
        if touched.is_none() {
            // Gauges and statuses of deleted budgets go away.
            let names: HashSet<String> = budgets.iter().map(|b| b.spec.name.clone()).collect();
            let metrics = &self.metrics;
            if let Ok(mut shown) = metrics.budget_names.lock() {
                for gone in shown.difference(&names) {
                    for family in [
                        &metrics.budget_spend_usd,
                        &metrics.budget_limit_usd,
                        &metrics.budget_utilization,
                        &metrics.budget_forecast_usd,
                    ] {
                        let _ = family.remove_label_values(&[gone.as_str()]);
                    }
                }
                *shown = names;
            }
            if let Ok(mut statuses) = self.statuses.write() {
                let ids: HashSet<&str> = budgets.iter().map(|b| b.id.as_str()).collect();
                statuses.retain(|id, _| ids.contains(id.as_str()));
            }
        }
        // One budget failing does not keep the others from being evaluated.
        let mut first_error = None;
        for budget in &budgets {
            let relevant = touched.is_none_or(|projects| {
                projects
                    .iter()
                    .any(|project| budget.may_cover(project, None, None))
            });
            if relevant && let Err(error) = self.evaluate(budget, now).await {
                tracing::warn!(message = "Budget evaluation failed.", budget = %budget.spec.name, %error);
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Evaluates one budget: its status now, and the alerts it owes.
    pub async fn evaluate(
        &self,
        budget: &Budget,
        now: DateTime<Utc>,
    ) -> Result<BudgetStatus, StoreError> {
        let _one_at_a_time = self.evaluating.lock().await;
        let status = self.status(budget, now).await?;
        if now - status.period_start < LATE_GRACE && status.period_start > DateTime::UNIX_EPOCH {
            // Records of the period that just ended may still be arriving (a commit just
            // before the boundary, collector lag): its thresholds are checked a while longer.
            let previous = self
                .status(budget, status.period_start - chrono::Duration::seconds(1))
                .await?;
            for level in crossed(&budget.levels, previous.spend) {
                self.fire(budget, &previous, Some(level)).await?;
            }
        }
        for level in crossed(&budget.levels, status.spend) {
            self.fire(budget, &status, Some(level)).await?;
        }
        if budget.spec.forecast && status.forecast.is_some_and(|f| f > status.limit) {
            self.fire(budget, &status, None).await?;
        }
        let name = [budget.spec.name.as_str()];
        let gauge = |amount: Decimal| amount.to_f64().unwrap_or_default();
        let metrics = &self.metrics;
        // The alert counters exist at 0 from the first evaluation, so a rate or increase
        // sees the first alert too.
        for kind in AlertKind::ALL {
            metrics.alerts.with_label_values(&[name[0], kind.as_str()]);
        }
        metrics
            .budget_spend_usd
            .with_label_values(&name)
            .set(gauge(status.spend));
        metrics
            .budget_limit_usd
            .with_label_values(&name)
            .set(gauge(status.limit));
        metrics
            .budget_utilization
            .with_label_values(&name)
            .set(gauge(status.utilization));
        match status.forecast {
            Some(forecast) => metrics
                .budget_forecast_usd
                .with_label_values(&name)
                .set(gauge(forecast)),
            None => {
                let _ = metrics.budget_forecast_usd.remove_label_values(&name);
            }
        }
        if let Ok(mut statuses) = self.statuses.write() {
            statuses.insert(budget.id.clone(), status.clone());
        }
        Ok(status)
    }

    /// A budget's spend, forecast and remaining budget now, read from the store.
    pub async fn status(
        &self,
        budget: &Budget,
        now: DateTime<Utc>,
    ) -> Result<BudgetStatus, StoreError> {
        let (start, end) = budget.period_at(now);
        let filter = budget.filter();
        let spend = self.cost(start, end, &filter).await?;
        let window_start = forecast_window_start(start, now);
        let window_spend = self.cost(window_start, now, &filter).await?;
        let forecast = forecast(&ForecastInput {
            period_start: start,
            period_end: end,
            now,
            spend,
            window_spend,
            window_start,
        });
        let limit = budget.spec.limit_usd;
        Ok(BudgetStatus {
            budget_id: budget.id.clone(),
            budget: budget.spec.name.clone(),
            period_start: start,
            period_end: end,
            spend,
            limit,
            utilization: (spend / limit).round_dp(6).normalize(),
            remaining: (limit - spend).max(Decimal::ZERO).normalize(),
            forecast,
            hard: budget.spec.hard,
            exceeded: spend >= limit,
            evaluated_at: now,
        })
    }

    /// The last evaluated status of every budget.
    pub fn cached_statuses(&self) -> HashMap<String, BudgetStatus> {
        self.statuses.read().map(|s| s.clone()).unwrap_or_default()
    }

    async fn cost(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        filter: &UsageFilter,
    ) -> Result<Decimal, StoreError> {
        if to <= from {
            return Ok(Decimal::ZERO);
        }
        let rows = self
            .store
            .usage(&UsageQuery {
                from,
                to,
                group_by: vec![],
                filter: filter.clone(),
                measures: Measures::Spend,
            })
            .await?;
        Ok(rows.iter().map(|r| r.cost).sum::<Decimal>().normalize())
    }

    /// Records an alert (a threshold, or the forecast when `level` is `None`) unless it
    /// exists, with a delivery per webhook.
    async fn fire(
        &self,
        budget: &Budget,
        status: &BudgetStatus,
        level: Option<&Level>,
    ) -> Result<(), StoreError> {
        // A fraction's key carries the amount it stood for: raise the limit mid-period and
        // the new 80% and 100% alert again; an unchanged budget never does twice.
        let key = match level {
            None => "forecast".to_owned(),
            Some(l) if l.fraction.is_some() => format!("{}@{}", l.key, l.amount.normalize()),
            Some(l) => l.key.clone(),
        };
        let marker = (budget.id.clone(), status.period_start, key.clone());
        if self.fired.lock().is_ok_and(|fired| fired.contains(&marker)) {
            return Ok(());
        }
        let now = Utc::now();
        let kind = if level.is_some() {
            AlertKind::Threshold
        } else {
            AlertKind::Forecast
        };
        let alert = AlertRecord {
            id: format!("alrt_{}", uuid::Uuid::new_v4().simple()),
            budget_id: budget.id.clone(),
            budget_name: budget.spec.name.clone(),
            period_start: status.period_start,
            period_end: status.period_end,
            kind,
            threshold_key: key,
            threshold: level.map(|l| l.amount),
            spend: status.spend,
            limit: status.limit,
            forecast: status.forecast,
            fired_at: now,
            project: budget.spec.project.clone(),
        };
        let expires_at = now + chrono::Duration::from_std(self.webhook_expiry).unwrap_or_default();
        let deliveries: Vec<NewDelivery> = budget
            .spec
            .webhooks
            .iter()
            .map(|webhook| NewDelivery {
                id: format!("msg_{}", uuid::Uuid::new_v4().simple()),
                url: webhook.url.clone(),
                format: webhook.format,
                secret: webhook.secret.clone(),
                body: alert_body(&alert, budget, level, webhook.format),
                expires_at,
            })
            .collect();
        let inserted = self.store.fire_alert(&alert, &deliveries).await?;
        if inserted {
            tracing::info!(
                message = "Budget alert.",
                budget = %budget.spec.name,
                kind = kind.as_str(),
                threshold = %alert.threshold_key,
                spend = %alert.spend,
                limit = %alert.limit
            );
            self.metrics
                .alerts
                .with_label_values(&[budget.spec.name.as_str(), kind.as_str()])
                .inc();
            if !deliveries.is_empty() {
                self.wake_deliveries.notify_one();
            }
        }
        if let Ok(mut fired) = self.fired.lock() {
            fired.insert(marker);
        }
        Ok(())
    }

    /// Sends each digest whose fire time passed within the last day and that no daemon
    /// has sent yet.
    async fn send_digests(&self, now: DateTime<Utc>) -> Result<(), StoreError> {
        for (digest, period, tz) in &self.digests {
            let (fired_at, _) = period.at(now, *tz);
            if now - fired_at > chrono::Duration::days(1) {
                continue;
            }
            let (previous, _) = period.at(fired_at - chrono::Duration::seconds(1), *tz);
            let rows = self
                .store
                .usage(&UsageQuery {
                    from: previous,
                    to: fired_at,
                    group_by: vec![Dimension::Project, Dimension::Model],
                    filter: UsageFilter {
                        projects: digest.project.clone().map(|p| vec![p]),
                        ..UsageFilter::default()
                    },
                    measures: Measures::Spend,
                })
                .await?;
            let id = format!("msg_{}", uuid::Uuid::new_v4().simple());
            let body = digest_body(&id, digest, previous, fired_at, &rows);
            let delivery = NewDelivery {
                id,
                url: digest.webhook.url.clone(),
                format: digest.webhook.format,
                secret: digest.webhook.secret.clone(),
                body,
                expires_at: now
                    + chrono::Duration::from_std(self.webhook_expiry).unwrap_or_default(),
            };
            if self
                .store
                .claim_digest(&digest.name, fired_at, &[delivery])
                .await?
            {
                tracing::info!(message = "Digest sent.", digest = %digest.name, from = %previous, to = %fired_at);
                self.wake_deliveries.notify_one();
            }
        }
        Ok(())
    }
}

/// A stored budget, checked again (the spec was valid when stored; the code may be newer).
pub fn parse_stored(stored: &StoredBudget) -> Result<Budget, String> {
    let spec: BudgetSpec = serde_json::from_str(&stored.spec_json).map_err(|e| e.to_string())?;
    Budget::new(stored.id.clone(), spec).map_err(|e| e.to_string())
}

fn usd(amount: Decimal) -> String {
    amount.normalize().to_string()
}

/// The webhook body of an alert: the generic JSON payload, or a Slack message.
pub fn alert_body(
    alert: &AlertRecord,
    budget: &Budget,
    level: Option<&Level>,
    format: WebhookFormat,
) -> String {
    let kind = if level.is_some() {
        "budget.threshold"
    } else {
        "budget.forecast"
    };
    match format {
        WebhookFormat::Json => json!({
            "id": alert.id,
            "type": kind,
            "budget_id": alert.budget_id,
            "budget": alert.budget_name,
            "project": budget.spec.project,
            "threshold": level.and_then(|l| l.fraction.and_then(|f| f.to_f64())),
            "threshold_usd": level.map(|l| usd(l.amount)),
            "period_start": alert.period_start,
            "period_end": alert.period_end,
            "spend_usd": usd(alert.spend),
            "limit_usd": usd(alert.limit),
            "forecast_usd": alert.forecast.map(usd),
            "fired_at": alert.fired_at,
        })
        .to_string(),
        WebhookFormat::Slack => {
            let scope = budget
                .spec
                .project
                .as_deref()
                .map(|p| format!(" (project {p})"))
                .unwrap_or_default();
            let headline = match level {
                Some(level) => format!(
                    ":warning: Budget *{}*{scope} passed {}: ${} spent of ${}",
                    alert.budget_name,
                    level.label,
                    usd(alert.spend),
                    usd(alert.limit)
                ),
                None => format!(
                    ":crystal_ball: Budget *{}*{scope} is forecast to reach ${} by the end of the period (limit ${}; ${} spent so far)",
                    alert.budget_name,
                    alert.forecast.map(usd).unwrap_or_default(),
                    usd(alert.limit),
                    usd(alert.spend)
                ),
            };
            let text = format!(
                "{headline}\nPeriod: {} to {}\nAlert id: {}",
                alert.period_start.format("%Y-%m-%d %H:%M UTC"),
                alert.period_end.format("%Y-%m-%d %H:%M UTC"),
                alert.id
            );
            json!({ "text": text }).to_string()
        }
    }
}

fn digest_body(
    id: &str,
    digest: &DigestSpec,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    rows: &[crate::store::UsageAggregate],
) -> String {
    let total: Decimal = rows.iter().map(|r| r.cost).sum();
    match digest.webhook.format {
        WebhookFormat::Json => json!({
            "id": id,
            "type": "spend.digest",
            "digest": digest.name,
            "period_start": from,
            "period_end": to,
            "total_usd": usd(total),
            "rows": rows.iter().map(|r| json!({
                "project": r.keys.first(),
                "model": r.keys.get(1),
                "requests": r.requests,
                "cost_usd": usd(r.cost),
            })).collect::<Vec<_>>(),
        })
        .to_string(),
        WebhookFormat::Slack => {
            let mut text = format!(
                "*{}*: ${} spent from {} to {}",
                digest.name,
                usd(total),
                from.format("%Y-%m-%d %H:%M UTC"),
                to.format("%Y-%m-%d %H:%M UTC")
            );
            for row in rows {
                text.push_str(&format!(
                    "\n• {} / {}: ${} ({} requests)",
                    row.keys.first().map_or("", String::as_str),
                    row.keys.get(1).map_or("", String::as_str),
                    usd(row.cost),
                    row.requests
                ));
            }
            json!({ "text": text }).to_string()
        }
    }
}
