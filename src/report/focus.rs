//! The FinOps FOCUS 1.2 export: spend as cost-and-usage rows finance tools load as they
//! load a cloud bill.
//!
//! One token row per charge period (the request's hour, day, week or month, else a day, in
//! its timezone, cut to the requested range), project, provider, model, service tier,
//! batch flag and tag set, and beside it one row for each charge that is not tokens
//! (web searches, code-interpreter sessions, file searches, generated images, request
//! fees) with its own `PricingUnit`. Every mandatory FOCUS column is present; token
//! buckets, requests and savings follow as `x_` columns (on the token row). `BilledCost`, `EffectiveCost` and `ContractedCost` are
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
use crate::pricing::round_money;
use crate::store::{Dimension, Measures, Store, StoreError, UsageQuery};
use crate::usage::{Bucket, Tokens};

/// The header, FOCUS columns first, then the `x_` extensions.
pub const COLUMNS: [&str; 52] = [
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
    "x_AudioInputTokens",
    "x_CachedAudioInputTokens",
    "x_AudioOutputTokens",
    "x_ImageInputTokens",
    "x_ImageOutputTokens",
    "x_PartiallyPricedRequests",
    "x_UsageType",
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
    pub partial_requests: u64,
    pub tokens: Tokens,
    pub cost: Decimal,
    pub list_cost: Decimal,
    pub cache_savings: Decimal,
    pub batch_savings: Decimal,
    /// Each bucket's share of `cost`, exact (unrounded).
    pub bucket_costs: [Decimal; Bucket::COUNT],
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

/// The FOCUS export of a request, a window at a time: each window is a day of the
/// request's timezone (a month for month charge periods), so one store query and one
/// chunk of lines cover it, and memory holds one window whatever the range. Windows come
/// in time order and rows within one by charge period and group, so the lines are those
/// of the whole range in that order.
pub struct Export {
    request: SpendRequest,
    bucket: TimeBucket,
    /// Where the next window starts; the export is done at `request.to`.
    next: DateTime<Utc>,
    header_written: bool,
    makers: crate::pricing::ResolveCache,
}

impl Export {
    pub fn new(request: &SpendRequest) -> Export {
        Export {
            request: request.clone(),
            bucket: request.time_bucket().unwrap_or(TimeBucket::Day),
            next: request.from,
            header_written: false,
            makers: crate::pricing::ResolveCache::default(),
        }
    }

    /// The CSV of the next window (the header before the first), or None when the range
    /// is done.
    pub async fn next_chunk(
        &mut self,
        store: &dyn Store,
        book: &PriceBook,
    ) -> Result<Option<String>, StoreError> {
        if self.next >= self.request.to {
            return Ok(None);
        }
        let unit = match self.bucket {
            TimeBucket::Month => TimeBucket::Month,
            _ => TimeBucket::Day,
        };
        let tz = self.request.tz;
        let start = bucket_start_time(self.next, unit, tz);
        let end = next_bucket_start(start, unit, tz)
            .with_timezone(&Utc)
            .min(self.request.to);
        let window = (self.next, end.max(self.next + chrono::Duration::seconds(1)));
        self.next = window.1;
        let rows = rows_between(store, &self.request, self.bucket, window).await?;
        let mut out = String::with_capacity(512 * (rows.len() + 1));
        if !self.header_written {
            let _ = writeln!(out, "{}", COLUMNS.join(","));
            self.header_written = true;
        }
        for row in &rows {
            write_row(&mut out, row, book, &mut self.makers);
        }
        Ok(Some(out))
    }
}

/// The rows of `window`, part of the request's range.
async fn rows_between(
    store: &dyn Store,
    request: &SpendRequest,
    bucket: TimeBucket,
    window: (DateTime<Utc>, DateTime<Utc>),
) -> Result<Vec<FocusRow>, StoreError> {
    let aggregates = store
        .usage(&UsageQuery {
            from: window.0,
            to: window.1,
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
        row.partial_requests += aggregate.partial_requests;
        for (sum, share) in row.bucket_costs.iter_mut().zip(aggregate.bucket_costs) {
            *sum += share;
        }
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

/// A charge that is not tokens, as FOCUS names its unit.
fn pricing_unit(bucket: Bucket) -> &'static str {
    match bucket {
        Bucket::WebSearch => "Web Searches",
        Bucket::CodeInterpreter => "Sessions",
        Bucket::FileSearch => "File Searches",
        Bucket::ImageGeneration => "Images",
        Bucket::Request => "Requests",
        _ => "Tokens",
    }
}

/// The charges of a row that are not tokens, with what each consumed and cost (rounded
/// once, to 1e-9 USD): the lines written beside its token line.
fn other_charges(row: &FocusRow) -> Vec<(Bucket, u64, Decimal)> {
    Bucket::ALL
        .into_iter()
        .filter(|bucket| !bucket.is_tokens())
        .filter_map(|bucket| {
            let quantity = match bucket {
                Bucket::Request => row.requests,
                _ => row.tokens.get(bucket),
            };
            let cost = round_money(row.bucket_costs[bucket.index()]);
            let charged = bucket != Bucket::Request && quantity > 0;
            (charged || !cost.is_zero()).then_some((bucket, quantity, cost))
        })
        .collect()
}

/// One row's lines: its token line, then a line per other charge. The lines of a row add
/// up to its cost exactly (the token line takes what the others do not).
fn write_row(
    out: &mut String,
    row: &FocusRow,
    book: &PriceBook,
    makers: &mut crate::pricing::ResolveCache,
) {
    let issuer = crate::providers::display_name(&row.provider);
    let publisher = makers.infer_provider(book, &row.model).map_or_else(
        || issuer.clone(),
        |vendor| crate::providers::display_name(&vendor),
    );
    let others = other_charges(row);
    let others_cost: Decimal = others.iter().map(|(_, _, cost)| *cost).sum();
    let total_tokens = row.tokens.total();
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
    if row.partial_requests > 0 {
        let _ = write!(
            description,
            "; {} requests partly priced: usage without a price is not in the cost",
            row.partial_requests
        );
    }
    // FOCUS list cost: the published prices of what was consumed. Cached-input and
    // batch rates are published prices, so only negotiated discounts lie between
    // ListCost and ContractedCost; caching and batch savings are in x_ columns.
    // Fees that are not tokens have no discounted tiers: listed at what they cost.
    let list_cost = row.list_cost - row.cache_savings - row.batch_savings - others_cost;
    let line = Line {
        row,
        issuer: &issuer,
        publisher: &publisher,
        usage_type: "tokens",
        cost: row.cost - others_cost,
        list_cost,
        description,
        quantity: total_tokens,
        unit: "Tokens",
        sku: row.model.clone(),
    };
    write_line(out, &line, true);
    for (bucket, quantity, cost) in others {
        let unit = pricing_unit(bucket);
        let line = Line {
            row,
            issuer: &issuer,
            publisher: &publisher,
            usage_type: bucket.as_str(),
            cost,
            list_cost: cost,
            description: format!(
                "{} via {issuer}: {quantity} {}",
                row.model,
                unit.to_lowercase()
            ),
            quantity,
            unit,
            sku: format!("{}/{bucket}", row.model),
        };
        write_line(out, &line, false);
    }
}

/// One CSV line of a FOCUS row: its token usage or one other charge.
struct Line<'r> {
    row: &'r FocusRow,
    issuer: &'r str,
    publisher: &'r str,
    usage_type: &'static str,
    cost: Decimal,
    list_cost: Decimal,
    description: String,
    quantity: u64,
    unit: &'static str,
    sku: String,
}

/// Writes a line; the `x_` counts and savings go on the token line only, so each sums
/// to its total down the file.
fn write_line(out: &mut String, line: &Line<'_>, tokens_line: bool) {
    let row = line.row;
    let cost = money(line.cost);
    let count = |value: u64| {
        if tokens_line {
            value.to_string()
        } else {
            "0".to_owned()
        }
    };
    let amount = |value: Decimal| {
        if tokens_line {
            money(value)
        } else {
            "0".to_owned()
        }
    };
    let fields: [String; 52] = [
        cost.clone(),
        cost.clone(),
        money(line.list_cost),
        cost,
        "USD".into(),
        row.provider.clone(),
        line.issuer.to_owned(),
        timestamp(row.billing_start),
        timestamp(row.billing_end),
        timestamp(row.charge_start),
        timestamp(row.charge_end),
        "Usage".into(),
        String::new(),
        line.description.clone(),
        "Usage-Based".into(),
        line.quantity.to_string(),
        line.unit.into(),
        "Standard".into(),
        line.quantity.to_string(),
        line.unit.into(),
        line.issuer.to_owned(),
        line.publisher.to_owned(),
        line.issuer.to_owned(),
        format!("{} API", line.issuer),
        "AI and Machine Learning".into(),
        "Generative AI".into(),
        line.sku.clone(),
        row.project.clone(),
        row.project.clone(),
        row.tags.clone(),
        String::new(),
        String::new(),
        String::new(),
        count(row.requests),
        count(row.unpriced_requests),
        count(row.tokens.input),
        count(row.tokens.cached_input),
        count(row.tokens.cache_write_5m),
        count(row.tokens.cache_write_1h),
        count(row.tokens.output),
        count(row.tokens.reasoning),
        amount(row.cache_savings),
        amount(row.batch_savings),
        row.service_tier.clone(),
        row.batch.to_string(),
        count(row.tokens.audio_input),
        count(row.tokens.cached_audio_input),
        count(row.tokens.audio_output),
        count(row.tokens.image_input),
        count(row.tokens.image_output),
        count(row.partial_requests),
        line.usage_type.into(),
    ];
    let cells: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
    let _ = writeln!(out, "{}", cells.join(","));
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
