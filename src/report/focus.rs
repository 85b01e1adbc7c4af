//! The FinOps FOCUS 1.2 export: spend as cost-and-usage rows finance tools load as they
//! load a cloud bill.
//!
//! One row per charge period (the request's hour, day, week or month, else a day, in its
//! timezone, cut to the requested range), project, provider, model, service tier, batch
//! flag and tag set. Every mandatory FOCUS column is present; token buckets, requests and
//! savings follow as `x_` columns. `BilledCost`, `EffectiveCost` and `ContractedCost` are
//! what llm-meter computed (batch, flex, cache and negotiated prices applied; nothing is
//! prepaid, so billed and effective agree); `ListCost` is the same usage at published
//! prices (cached-input and batch rates included), before negotiated discounts. The rows
//! partition the range, so `BilledCost` sums to the spend total. Billing periods are the
//! calendar months of the request's timezone (UTC, as providers invoice, by default).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use super::calendar::{TimeBucket, bucket_start_time, next_bucket_start, time_dimension};
use super::params::{GroupBy, ParameterError, SpendRequest};
use super::render::csv_field;
use crate::pricing::PriceBook;
use crate::store::{Dimension, Measures, Store, StoreError, UsageQuery};
use crate::usage::Tokens;

/// The header, FOCUS columns first, then the `x_` extensions.
pub const COLUMNS: [&str; 45] = [
    "BilledCost",
    "EffectiveCost",
    "ListCost",
    "ContractedCost",
    "BillingCurrency",
    "BillingAccountId",
    "BillingAccountName",
    "BillingPeriodStart",
    "BillingPeriodEnd",
    "ChargePeriodStart",
    "ChargePeriodEnd",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ChargeFrequency",
    "PricingQuantity",
    "PricingUnit",
    "PricingCategory",
    "ConsumedQuantity",
    "ConsumedUnit",
    "ProviderName",
    "PublisherName",
    "InvoiceIssuerName",
    "ServiceName",
    "ServiceCategory",
    "ServiceSubcategory",
    "SkuId",
    "SubAccountId",
    "SubAccountName",
    "Tags",
    "ResourceId",
    "ResourceName",
    "ResourceType",
    "x_Requests",
    "x_UnpricedRequests",
    "x_InputTokens",
    "x_CachedInputTokens",
    "x_CacheWrite5mTokens",
    "x_CacheWrite1hTokens",
    "x_OutputTokens",
    "x_ReasoningTokens",
    "x_CacheSavings",
    "x_BatchSavings",
    "x_ServiceTier",
    "x_Batch",
];

/// One FOCUS row before formatting.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FocusRow {
    pub charge_start: DateTime<Utc>,
    pub charge_end: DateTime<Utc>,
    pub billing_start: DateTime<Utc>,
    pub billing_end: DateTime<Utc>,
    pub project: String,
    pub provider: String,
    pub model: String,
    pub service_tier: String,
    pub batch: bool,
    /// The record's tags as a JSON object.
    pub tags: String,
    pub requests: u64,
    pub unpriced_requests: u64,
    pub tokens: Tokens,
    pub cost: Decimal,
    pub list_cost: Decimal,
    pub cache_savings: Decimal,
    pub batch_savings: Decimal,
}

/// FOCUS charge periods must sit inside one billing period (a month): hour, day and
/// month buckets do, weeks, quarters and years would not.
pub fn check_request(request: &SpendRequest) -> Result<(), ParameterError> {
    let spans_months = request.group_by.iter().any(|g| {
        matches!(
            g,
            GroupBy::Time(TimeBucket::Week | TimeBucket::Quarter | TimeBucket::Year)
        )
    });
    if spans_months {
        return Err(ParameterError::new(
            "group_by",
            "format=focus takes hour, day or month charge periods",
        ));
    }
    Ok(())
}

/// The rows of a spend request, from the store.
pub async fn rows(store: &dyn Store, request: &SpendRequest) -> Result<Vec<FocusRow>, StoreError> {
    let bucket = request.time_bucket().unwrap_or(TimeBucket::Day);
    let aggregates = store
        .usage(&UsageQuery {
            from: request.from,
            to: request.to,
            group_by: vec![
                Dimension::Project,
                Dimension::Provider,
                Dimension::Model,
                Dimension::ServiceTier,
                Dimension::Batch,
                Dimension::Tags,
                time_dimension(bucket, request.tz),
            ],
            filter: request.filter.clone(),
            measures: Measures::All,
        })
        .await?;
    let mut rows: BTreeMap<(DateTime<Utc>, Vec<String>), FocusRow> = BTreeMap::new();
    for aggregate in aggregates {
        let Some(hour) = aggregate.hour else { continue };
        let start = bucket_start_time(hour, bucket, request.tz);
        let end = next_bucket_start(start, bucket, request.tz);
        let month = bucket_start_time(hour, TimeBucket::Month, request.tz);
        let row = rows
            .entry((start.with_timezone(&Utc), aggregate.keys.clone()))
            .or_insert_with(|| {
                let key = |i: usize| aggregate.keys.get(i).cloned().unwrap_or_default();
                FocusRow {
                    charge_start: start.with_timezone(&Utc).max(request.from),
                    charge_end: end.with_timezone(&Utc).min(request.to),
                    billing_start: month.with_timezone(&Utc),
                    billing_end: next_bucket_start(month, TimeBucket::Month, request.tz)
                        .with_timezone(&Utc),
                    project: key(0),
                    provider: key(1),
                    model: key(2),
                    service_tier: key(3),
                    batch: key(4) == "true",
                    tags: normalise_tags(&key(5)),
                    ..FocusRow::default()
                }
            });
        row.requests += aggregate.requests;
        row.unpriced_requests += aggregate.unpriced_requests;
        row.tokens = row.tokens.add(&aggregate.tokens);
        row.cost += aggregate.cost;
        row.list_cost += aggregate.list_cost;
        row.cache_savings += aggregate.cache_savings;
        row.batch_savings += aggregate.batch_savings;
    }
    Ok(rows.into_values().collect())
}

/// Tags as compact JSON with sorted keys, whatever spacing the store used.
fn normalise_tags(json: &str) -> String {
    serde_json::from_str::<BTreeMap<String, String>>(json)
        .ok()
        .and_then(|tags| serde_json::to_string(&tags).ok())
        .unwrap_or_else(|| "{}".into())
}

/// The rows as FOCUS CSV.
pub fn to_csv(rows: &[FocusRow], book: &PriceBook) -> String {
    let mut out = String::with_capacity(256 * (rows.len() + 1));
    let _ = writeln!(out, "{}", COLUMNS.join(","));
    for row in rows {
        let issuer = crate::providers::display_name(&row.provider);
        let publisher = book.infer_provider(&row.model).map_or_else(
            || issuer.clone(),
            |vendor| crate::providers::display_name(&vendor),
        );
        let cost = money(row.cost);
        let total_tokens = row.tokens.total().to_string();
        let mut description = format!(
            "{} via {issuer}: {} {}, {} tokens",
            row.model,
            row.requests,
            if row.requests == 1 {
                "request"
            } else {
                "requests"
            },
            total_tokens
        );
        if row.batch {
            description.push_str(", batch");
        } else if row.service_tier != "default" {
            let _ = write!(description, ", {} tier", row.service_tier);
        }
        if row.unpriced_requests > 0 {
            let _ = write!(
                description,
                "; {} requests without a price are not in the cost",
                row.unpriced_requests
            );
        }
        // FOCUS list cost: the published prices of what was consumed. Cached-input and
        // batch rates are published prices, so only negotiated discounts lie between
        // ListCost and ContractedCost; caching and batch savings are in x_ columns.
        let list_cost = row.list_cost - row.cache_savings - row.batch_savings;
        let fields: [String; 45] = [
            cost.clone(),
            cost.clone(),
            money(list_cost),
            cost,
            "USD".into(),
            row.provider.clone(),
            issuer.clone(),
            timestamp(row.billing_start),
            timestamp(row.billing_end),
            timestamp(row.charge_start),
            timestamp(row.charge_end),
            "Usage".into(),
            String::new(),
            description,
            "Usage-Based".into(),
            total_tokens.clone(),
            "Tokens".into(),
            "Standard".into(),
            total_tokens,
            "Tokens".into(),
            issuer.clone(),
            publisher,
            issuer.clone(),
            format!("{issuer} API"),
            "AI and Machine Learning".into(),
            "Generative AI".into(),
            row.model.clone(),
            row.project.clone(),
            row.project.clone(),
            row.tags.clone(),
            String::new(),
            String::new(),
            String::new(),
            row.requests.to_string(),
            row.unpriced_requests.to_string(),
            row.tokens.input.to_string(),
            row.tokens.cached_input.to_string(),
            row.tokens.cache_write_5m.to_string(),
            row.tokens.cache_write_1h.to_string(),
            row.tokens.output.to_string(),
            row.tokens.reasoning.to_string(),
            money(row.cache_savings),
            money(row.batch_savings),
            row.service_tier.clone(),
            row.batch.to_string(),
        ];
        let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        let _ = writeln!(out, "{}", line.join(","));
    }
    out
}

fn money(amount: Decimal) -> String {
    amount.normalize().to_string()
}

/// FOCUS date/time format: UTC, ISO 8601 with `Z`.
fn timestamp(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mandatory_focus_column_is_in_the_header() {
        // The columns FOCUS 1.2 makes mandatory for every row.
        let mandatory = "BilledCost EffectiveCost ListCost ContractedCost BillingCurrency \
            BillingAccountId BillingAccountName BillingPeriodStart BillingPeriodEnd \
            ChargePeriodStart ChargePeriodEnd ChargeCategory ChargeClass ChargeDescription \
            PricingQuantity PricingUnit ProviderName PublisherName InvoiceIssuerName \
            ServiceName ServiceCategory";
        for column in mandatory.split_whitespace() {
            assert!(COLUMNS.contains(&column), "{column}");
        }
        // Custom columns come after the FOCUS ones and carry the x_ prefix.
        let first_custom = COLUMNS.iter().position(|c| c.starts_with("x_")).unwrap();
        assert!(COLUMNS[first_custom..].iter().all(|c| c.starts_with("x_")));
    }

    #[test]
    fn tags_are_compact_sorted_json() {
        assert_eq!(
            normalise_tags(r#"{"team": "ads", "env": "prod"}"#),
            r#"{"env":"prod","team":"ads"}"#
        );
        assert_eq!(normalise_tags("not json"), "{}");
    }
}
