//! What-if and routing advice: what the same usage would have cost on another model,
//! exact to the nano-dollar. A what-if has to see each record (a long-context tier
//! depends on each request's own size), so it scans the stored events an hour at a time
//! and prices each on the other model, with the record's own time, tier, batch flag,
//! caching and project.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;

use super::for_each_event;
use super::params::{ParameterError, SpendRequest};
use super::render::{Table, money_column};
use crate::pricing::{PriceBook, PriceOutcome};
use crate::store::{Store, StoreError};
use crate::usage::UsageRecord;

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
        let invalid = |parameter: &str, message: String| ParameterError::new(parameter, message);
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
        let model = event.rollup_model().to_owned();
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

/// A what-if as a table, money aligned per column.
pub fn table(report: &WhatIfReport) -> Table {
    let mut table = Table::new(
        &[
            "provider",
            "model",
            "requests",
            "compared",
            "actual_usd",
            "what_if_usd",
            "difference_usd",
            "not_compared",
        ],
        2,
    );
    let all: Vec<&WhatIfRow> = report.rows.iter().chain([&report.total]).collect();
    let column = |pick: fn(&WhatIfRow) -> Decimal| money_column(all.iter().map(|r| pick(r)));
    let columns = [
        column(|r| r.actual_cost),
        column(|r| r.what_if_cost),
        column(|r| r.difference),
    ];
    table.rows = all
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
    let total = table.rows.pop().unwrap_or_default();
    table.set_total(total);
    table
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
        let model = event.rollup_model().to_owned();
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
