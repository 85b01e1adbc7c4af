//! Savings: what discounts saved over a period, exact to the nano-dollar, from the
//! rollups. Every record keeps its list cost (every prompt token at the uncached input
//! rate, no batch, flex or negotiated discount), what caching saved and what batch or
//! flex pricing saved, split so that `list = cost + cache + batch + negotiated`, the last
//! being project overrides.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;

use super::params::SpendRequest;
use super::render::{Table, money_column};
use crate::store::{Dimension, Measures, Store, StoreError, UsageQuery};

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

/// Savings as a table, money aligned per column.
pub fn table(report: &SavingsReport) -> Table {
    let mut table = Table::new(
        &[
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
        ],
        3,
    );
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
    table.rows = all
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
    let total = table.rows.pop().unwrap_or_default();
    table.set_total(total);
    table
}
