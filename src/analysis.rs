//! Savings and what-if: what discounts saved over a period, and what the same usage
//! would have cost on another model. Both exact to the nano-dollar.
//!
//! Savings come from the rollups: every record keeps its list cost (every prompt token at
//! the uncached input rate, no batch, flex or negotiated discount), what caching saved and
//! what batch or flex pricing saved, split so that
//! `list = cost + cache + batch + negotiated`, the last being project overrides.
//!
//! A what-if has to see each record (a long-context tier depends on each request's own
//! size), so it scans the stored events an hour at a time and prices each on the other
//! model, with the record's own time, tier, batch flag, caching and project.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;

use crate::pricing::{PriceBook, PriceOutcome};
use crate::spend::{ParameterError, SpendRequest, money_column};
use crate::store::{Dimension, EventScan, Measures, Store, StoreError, UsageQuery, event_windows};
use crate::usage::UsageRecord;

/// Savings of one project, provider and model.
#[derive(Clone, Debug, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SavingsRow {
    pub project: String,
    pub provider: String,
    pub model: String,
    pub requests: u64,
    /// Requests without a price: in none of the sums.
    pub unpriced_requests: u64,
    #[serde(rename = "list_cost_usd", with = "rust_decimal::serde::str")]
    #[schema(value_type = String)]
    pub list_cost: Decimal,
    #[serde(rename = "cost_usd", with = "rust_decimal::serde::str")]
    #[schema(value_type = String)]
    pub cost: Decimal,
    #[serde(rename = "cache_savings_usd", with = "rust_decimal::serde::str")]
    #[schema(value_type = String)]
    pub cache_savings: Decimal,
    #[serde(rename = "batch_savings_usd", with = "rust_decimal::serde::str")]
    #[schema(value_type = String)]
    pub batch_savings: Decimal,
    /// Project overrides (negotiated prices): what list price minus the rest leaves.
    #[serde(rename = "negotiated_savings_usd", with = "rust_decimal::serde::str")]
    #[schema(value_type = String)]
    pub negotiated_savings: Decimal,
    #[serde(rename = "total_savings_usd", with = "rust_decimal::serde::str")]
    #[schema(value_type = String)]
    pub total_savings: Decimal,
}

impl SavingsRow {
    fn add(&mut self, other: &SavingsRow) {
        self.requests += other.requests;
        self.unpriced_requests += other.unpriced_requests;
        self.list_cost += other.list_cost;
        self.cost += other.cost;
        self.cache_savings += other.cache_savings;
        self.batch_savings += other.batch_savings;
        self.negotiated_savings += other.negotiated_savings;
        self.total_savings += other.total_savings;
    }

    fn normalise(&mut self) {
        for amount in [
            &mut self.list_cost,
            &mut self.cost,
            &mut self.cache_savings,
            &mut self.batch_savings,
            &mut self.negotiated_savings,
            &mut self.total_savings,
        ] {
            *amount = amount.normalize();
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SavingsReport {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub rows: Vec<SavingsRow>,
    /// The rows summed; its project, provider and model are empty.
    pub total: SavingsRow,
}

/// Savings per project, provider and model over the request's range and filter.
pub async fn savings(
    store: &dyn Store,
    request: &SpendRequest,
) -> Result<SavingsReport, StoreError> {
    let aggregates = store
        .usage(&UsageQuery {
            from: request.from,
            to: request.to,
            group_by: vec![Dimension::Project, Dimension::Provider, Dimension::Model],
            filter: request.filter.clone(),
            measures: Measures::All,
        })
        .await?;
    let mut total = SavingsRow::default();
    let rows: Vec<SavingsRow> = aggregates
        .into_iter()
        .map(|aggregate| {
            let key = |i: usize| aggregate.keys.get(i).cloned().unwrap_or_default();
            let total_savings = aggregate.list_cost - aggregate.cost;
            let mut row = SavingsRow {
                project: key(0),
                provider: key(1),
                model: key(2),
                requests: aggregate.requests,
                unpriced_requests: aggregate.unpriced_requests,
                list_cost: aggregate.list_cost,
                cost: aggregate.cost,
                cache_savings: aggregate.cache_savings,
                batch_savings: aggregate.batch_savings,
                negotiated_savings: total_savings
                    - aggregate.cache_savings
                    - aggregate.batch_savings,
                total_savings,
            };
            row.normalise();
            total.add(&row);
            row
        })
        .collect();
    total.normalise();
    Ok(SavingsReport {
        from: request.from,
        to: request.to,
        rows,
        total,
    })
}

/// The model a what-if prices usage on.
#[derive(Clone, Debug, PartialEq)]
pub struct WhatIfTarget {
    pub provider: String,
    pub model: String,
}

impl WhatIfTarget {
    /// Checks the sheets know the model; infers its provider when none is given.
    pub fn new(
        book: &PriceBook,
        model: &str,
        provider: Option<&str>,
    ) -> Result<WhatIfTarget, ParameterError> {
        let invalid = |parameter: &str, message: String| ParameterError {
            parameter: parameter.into(),
            message,
        };
        let model = model.trim();
        if model.is_empty() {
            return Err(invalid(
                "model",
                "a model to compare with is required".into(),
            ));
        }
        let provider = match provider.map(str::trim).filter(|p| !p.is_empty()) {
            Some(provider) => provider.to_ascii_lowercase(),
            None => book.infer_provider(model).ok_or_else(|| {
                invalid(
                    "provider",
                    format!("cannot tell which provider {model:?} belongs to; name one"),
                )
            })?,
        };
        if book.resolve(&provider, model).is_none() {
            return Err(invalid(
                "model",
                format!("no pricing sheet lists {model:?} for provider {provider:?}"),
            ));
        }
        Ok(WhatIfTarget {
            provider,
            model: model.to_owned(),
        })
    }

    /// The record as if it had been sent to the target model.
    fn apply(&self, record: &UsageRecord) -> UsageRecord {
        UsageRecord {
            provider: self.provider.clone(),
            model: self.model.clone(),
            ..record.clone()
        }
    }
}

/// What one model's usage cost, and would have cost on the target.
#[derive(Clone, Debug, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct WhatIfRow {
    pub provider: String,
    pub model: String,
    pub requests: u64,
    /// Priced both ways: the rows' costs cover exactly these.
    pub compared_requests: u64,
    #[serde(rename = "actual_cost_usd", with = "rust_decimal::serde::str")]
    #[schema(value_type = String)]
    pub actual_cost: Decimal,
    #[serde(rename = "what_if_cost_usd", with = "rust_decimal::serde::str")]
    #[schema(value_type = String)]
    pub what_if_cost: Decimal,
    #[serde(rename = "difference_usd", with = "rust_decimal::serde::str")]
    #[schema(value_type = String)]
    pub difference: Decimal,
    /// Requests that had no price, or that the target cannot price (a tier or batch
    /// mode it does not offer); with the first reason seen.
    pub not_compared_requests: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_compared_reason: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct WhatIfReport {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub target_provider: String,
    pub target_model: String,
    pub rows: Vec<WhatIfRow>,
    /// The rows summed; provider and model empty.
    pub total: WhatIfRow,
}

/// Prices the period's usage on `target`, record by record.
pub async fn what_if(
    store: &dyn Store,
    book: &PriceBook,
    request: &SpendRequest,
    target: &WhatIfTarget,
) -> Result<WhatIfReport, StoreError> {
    let mut rows: BTreeMap<(String, String), WhatIfRow> = BTreeMap::new();
    for_each_event(store, request, |event| {
        let record = &event.record;
        let model = stored_model(&event).to_owned();
        let row = rows
            .entry((record.provider.clone(), model.clone()))
            .or_insert_with(|| WhatIfRow {
                provider: record.provider.clone(),
                model,
                ..WhatIfRow::default()
            });
        row.requests += 1;
        let actual = match &event.price {
            PriceOutcome::Priced(p) => p.cost,
            PriceOutcome::Unpriced(u) => {
                row.not_compared_requests += 1;
                row.not_compared_reason
                    .get_or_insert_with(|| format!("no price today: {}", u.reason));
                return;
            }
        };
        match price_on_target(book, target, record) {
            Ok(cost) => {
                row.compared_requests += 1;
                row.actual_cost += actual;
                row.what_if_cost += cost;
            }
            Err(reason) => {
                row.not_compared_requests += 1;
                row.not_compared_reason.get_or_insert(reason);
            }
        }
    })
    .await?;
    let mut total = WhatIfRow::default();
    let rows: Vec<WhatIfRow> = rows
        .into_values()
        .map(|mut row| {
            row.actual_cost = row.actual_cost.normalize();
            row.what_if_cost = row.what_if_cost.normalize();
            row.difference = (row.what_if_cost - row.actual_cost).normalize();
            total.requests += row.requests;
            total.compared_requests += row.compared_requests;
            total.not_compared_requests += row.not_compared_requests;
            total.actual_cost += row.actual_cost;
            total.what_if_cost += row.what_if_cost;
            row
        })
        .collect();
    total.actual_cost = total.actual_cost.normalize();
    total.what_if_cost = total.what_if_cost.normalize();
    total.difference = (total.what_if_cost - total.actual_cost).normalize();
    Ok(WhatIfReport {
        from: request.from,
        to: request.to,
        target_provider: target.provider.clone(),
        target_model: target.model.clone(),
        rows,
        total,
    })
}

/// A record's cost on the target. Cached tokens the target has no cache price for are
/// priced as plain input: without that cache, they would have been.
fn price_on_target(
    book: &PriceBook,
    target: &WhatIfTarget,
    record: &UsageRecord,
) -> Result<Decimal, String> {
    let moved = target.apply(record);
    match book.price(&moved) {
        PriceOutcome::Priced(p) => Ok(p.cost),
        PriceOutcome::Unpriced(first) => {
            if moved.tokens.cached_total() == 0 {
                return Err(first.reason);
            }
            let uncached = UsageRecord {
                tokens: moved.tokens.uncached(),
                ..moved
            };
            match book.price(&uncached) {
                PriceOutcome::Priced(p) => Ok(p.cost),
                PriceOutcome::Unpriced(_) => Err(first.reason),
            }
        }
    }
}

/// Savings as table lines: (header, rows, total), money aligned per column.
pub fn savings_table(report: &SavingsReport) -> (Vec<String>, Vec<Vec<String>>, Vec<String>) {
    let header: Vec<String> = [
        "project",
        "provider",
        "model",
        "requests",
        "list_usd",
        "cost_usd",
        "cache_saved_usd",
        "batch_saved_usd",
        "negotiated_usd",
        "saved_usd",
    ]
    .map(String::from)
    .to_vec();
    let all: Vec<&SavingsRow> = report.rows.iter().chain([&report.total]).collect();
    let column = |pick: fn(&SavingsRow) -> Decimal| money_column(all.iter().map(|r| pick(r)));
    let columns = [
        column(|r| r.list_cost),
        column(|r| r.cost),
        column(|r| r.cache_savings),
        column(|r| r.batch_savings),
        column(|r| r.negotiated_savings),
        column(|r| r.total_savings),
    ];
    let mut lines: Vec<Vec<String>> = all
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let mut line = vec![
                row.project.clone(),
                row.provider.clone(),
                row.model.clone(),
                row.requests.to_string(),
            ];
            line.extend(columns.iter().map(|c| c[i].clone()));
            line
        })
        .collect();
    let mut total = lines.pop().unwrap_or_default();
    if let Some(first) = total.first_mut() {
        *first = "total".into();
    }
    (header, lines, total)
}

/// A what-if as table lines: (header, rows, total), money aligned per column.
pub fn what_if_table(report: &WhatIfReport) -> (Vec<String>, Vec<Vec<String>>, Vec<String>) {
    let header: Vec<String> = [
        "provider",
        "model",
        "requests",
        "compared",
        "actual_usd",
        "what_if_usd",
        "difference_usd",
        "not_compared",
    ]
    .map(String::from)
    .to_vec();
    let all: Vec<&WhatIfRow> = report.rows.iter().chain([&report.total]).collect();
    let column = |pick: fn(&WhatIfRow) -> Decimal| money_column(all.iter().map(|r| pick(r)));
    let columns = [
        column(|r| r.actual_cost),
        column(|r| r.what_if_cost),
        column(|r| r.difference),
    ];
    let mut lines: Vec<Vec<String>> = all
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let mut line = vec![
                row.provider.clone(),
                row.model.clone(),
                row.requests.to_string(),
                row.compared_requests.to_string(),
            ];
            line.extend(columns.iter().map(|c| c[i].clone()));
            line.push(row.not_compared_requests.to_string());
            line
        })
        .collect();
    let mut total = lines.pop().unwrap_or_default();
    if let Some(first) = total.first_mut() {
        *first = "total".into();
    }
    (header, lines, total)
}

/// The model a stored event is counted under in the rollups: the sheet's id when the
/// name resolved, the name as written otherwise.
pub fn stored_model(event: &crate::prepare::PricedRecord) -> &str {
    match &event.price {
        PriceOutcome::Priced(p) => &p.model_id,
        PriceOutcome::Unpriced(u) => u
            .resolved_model
            .as_deref()
            .and_then(|name| name.rsplit_once('/'))
            .map_or(&event.record.model, |(_, id)| id),
    }
}

/// p50, p95 and the maximum of a group's per-request values (nearest rank: each is a
/// value some request really had).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Spread<T> {
    pub p50: T,
    pub p95: T,
    pub max: T,
}

impl<T: Ord + Copy> Spread<T> {
    fn of(mut values: Vec<T>) -> Option<Spread<T>> {
        if values.is_empty() {
            return None;
        }
        values.sort_unstable();
        let rank = |q: usize| values[(values.len() * q).div_ceil(100).max(1) - 1];
        Some(Spread {
            p50: rank(50),
            p95: rank(95),
            max: *values.last()?,
        })
    }
}

/// Per-request statistics of one spend row.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestStats {
    /// Over priced requests; `None` when the group has none.
    pub cost: Option<Spread<Decimal>>,
    /// All six buckets of each request.
    pub tokens: Spread<u64>,
}

/// Cost and tokens per request for each row of `request`, keyed like the spend rows (the
/// group values in `group_by` order). Exact, from the stored events: it reads every event
/// of the range, so it costs what a what-if costs.
pub async fn request_stats(
    store: &dyn Store,
    request: &SpendRequest,
) -> Result<BTreeMap<Vec<String>, RequestStats>, StoreError> {
    let mut groups: BTreeMap<Vec<String>, (Vec<Decimal>, Vec<u64>)> = BTreeMap::new();
    for_each_event(store, request, |event| {
        let key = crate::spend::group_values(request, &event);
        let (costs, tokens) = groups.entry(key).or_default();
        if let PriceOutcome::Priced(p) = &event.price {
            costs.push(p.cost);
        }
        tokens.push(event.record.tokens.total());
    })
    .await?;
    Ok(groups
        .into_iter()
        .filter_map(|(key, (costs, tokens))| {
            Some((
                key,
                RequestStats {
                    cost: Spread::of(costs),
                    tokens: Spread::of(tokens)?,
                },
            ))
        })
        .collect())
}

#[cfg(test)]
mod spread_tests {
    use super::Spread;

    #[test]
    fn percentiles_are_nearest_rank_values() {
        let table: [(Vec<u64>, (u64, u64, u64)); 4] = [
            (vec![7], (7, 7, 7)),
            (vec![2, 1], (1, 2, 2)),
            ((1..=100).rev().collect(), (50, 95, 100)),
            ((1..=20).collect(), (10, 19, 20)),
        ];
        for (values, (p50, p95, max)) in table {
            assert_eq!(
                Spread::of(values.clone()),
                Some(Spread { p50, p95, max }),
                "{values:?}"
            );
        }
        assert_eq!(Spread::<u64>::of(vec![]), None);
    }
}

/// A cheaper model for one group's usage.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CheaperModel {
    pub model: String,
    /// The group's usage priced on this model.
    #[serde(rename = "cost_usd", with = "rust_decimal::serde::str")]
    #[schema(value_type = String)]
    pub cost: Decimal,
    /// What it actually cost minus `cost`.
    #[serde(rename = "saved_usd", with = "rust_decimal::serde::str")]
    #[schema(value_type = String)]
    pub saved: Decimal,
}

/// One project's usage of one model, and the provider's models that would have cost less.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RoutingRow {
    pub project: String,
    pub provider: String,
    pub model: String,
    /// Priced requests (the ones compared).
    pub requests: u64,
    #[serde(rename = "cost_usd", with = "rust_decimal::serde::str")]
    #[schema(value_type = String)]
    pub cost: Decimal,
    /// Cheapest first. Only models that can price every one of the requests.
    pub cheaper: Vec<CheaperModel>,
}

#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RoutingReport {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub rows: Vec<RoutingRow>,
}

/// Routing advice: for each project and model, what the same requests (same tokens,
/// times, tiers, batch flags, caching) would have cost on each other model of the same
/// provider, keeping those that cost less, cheapest first. Cost only: nothing is said of
/// quality. Exact; reads every event of the range and prices it once per candidate.
pub async fn cheaper_models(
    store: &dyn Store,
    book: &PriceBook,
    request: &SpendRequest,
) -> Result<RoutingReport, StoreError> {
    #[derive(Default)]
    struct Group {
        requests: u64,
        cost: Decimal,
        /// Candidate model → its cost, or `None` once it failed to price a request.
        candidates: BTreeMap<String, Option<Decimal>>,
    }
    let mut groups: BTreeMap<(String, String, String), Group> = BTreeMap::new();
    let mut candidates_of: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for_each_event(store, request, |event| {
        let PriceOutcome::Priced(actual) = &event.price else {
            return;
        };
        let record = &event.record;
        let model = stored_model(&event).to_owned();
        let candidates = candidates_of
            .entry(record.provider.clone())
            .or_insert_with(|| {
                book.provider_models(&record.provider)
                    .map(|m| m.id.clone())
                    .collect()
            });
        let group = groups
            .entry((
                record.project.clone(),
                record.provider.clone(),
                model.clone(),
            ))
            .or_default();
        group.requests += 1;
        group.cost += actual.cost;
        for candidate in candidates.iter().filter(|c| **c != model) {
            let slot = group
                .candidates
                .entry(candidate.clone())
                .or_insert(Some(Decimal::ZERO));
            let Some(sum) = slot else {
                continue;
            };
            let target = WhatIfTarget {
                provider: record.provider.clone(),
                model: candidate.clone(),
            };
            match price_on_target(book, &target, record) {
                Ok(cost) => *sum += cost,
                Err(_) => *slot = None,
            }
        }
    })
    .await?;
    let rows = groups
        .into_iter()
        .map(|((project, provider, model), group)| {
            let mut cheaper: Vec<CheaperModel> = group
                .candidates
                .into_iter()
                // `None`: the candidate could not price one of the requests.
                .filter_map(|(model, cost)| Some((model, cost?)))
                .filter(|(_, cost)| *cost < group.cost)
                .map(|(model, cost)| CheaperModel {
                    model,
                    cost: cost.normalize(),
                    saved: (group.cost - cost).normalize(),
                })
                .collect();
            cheaper.sort_by(|a, b| a.cost.cmp(&b.cost).then_with(|| a.model.cmp(&b.model)));
            RoutingRow {
                project,
                provider,
                model,
                requests: group.requests,
                cost: group.cost.normalize(),
                cheaper,
            }
        })
        .collect();
    Ok(RoutingReport {
        from: request.from,
        to: request.to,
        rows,
    })
}

/// Calls `visit` with every stored event of the request's range and filter, an hour's
/// worth at a time, reading only the hours that hold usage (a long range with little in it
/// stays cheap).
async fn for_each_event(
    store: &dyn Store,
    request: &SpendRequest,
    mut visit: impl FnMut(crate::prepare::PricedRecord),
) -> Result<(), StoreError> {
    for (from, to) in event_windows(store, request.from, request.to, &request.filter).await? {
        let scan = EventScan {
            from,
            to,
            filter: request.filter.clone(),
        };
        for event in store.events(&scan).await? {
            visit(event);
        }
    }
    Ok(())
}
