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

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::Arc;

use chrono::{DateTime, Datelike, Timelike, Utc};
use rust_decimal::Decimal;

use super::calendar::{TimeBucket, bucket_start_time, next_bucket_start, time_dimension};
use super::params::{GroupBy, ParameterError, SpendRequest};
use super::render::push_csv_field;
use crate::pricing::PriceBook;
use crate::pricing::round_money;
use crate::store::{Dimension, Measures, Store, StoreError, UsageAggregate, UsageQuery};
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
    /// The store's tag text, compact and sorted (the same few sets recur on every row).
    tags: HashMap<String, String>,
    /// The next window's rows, read while this one is written: the database and the
    /// formatting then run at once.
    ahead: Option<tokio::task::JoinHandle<Result<Vec<UsageAggregate>, StoreError>>>,
}

impl Drop for Export {
    fn drop(&mut self) {
        if let Some(ahead) = self.ahead.take() {
            ahead.abort();
        }
    }
}

impl Export {
    pub fn new(request: &SpendRequest) -> Export {
        Export {
            request: request.clone(),
            bucket: request.time_bucket().unwrap_or(TimeBucket::Day),
            next: request.from,
            header_written: false,
            makers: crate::pricing::ResolveCache::default(),
            tags: HashMap::new(),
            ahead: None,
        }
    }

    /// The CSV of the next window (the header before the first), or None when the range
    /// is done.
    pub async fn next_chunk(
        &mut self,
        store: &Arc<dyn Store>,
        book: &PriceBook,
    ) -> Result<Option<String>, StoreError> {
        let aggregates = match self.ahead.take() {
            Some(ahead) => ahead.await.map_err(|error| {
                StoreError::Conflict(format!("the export's read did not finish: {error}"))
            })??,
            None => match self.next_window() {
                Some(query) => store.usage(&query).await?,
                None => return Ok(None),
            },
        };
        if let Some(query) = self.next_window() {
            let store = store.clone();
            self.ahead = Some(tokio::spawn(async move { store.usage(&query).await }));
        }
        let rows = group_rows(&self.request, self.bucket, aggregates, &mut self.tags);
        let mut out = String::with_capacity(512 * (rows.len() + 1));
        if !std::mem::replace(&mut self.header_written, true) {
            let _ = writeln!(out, "{}", COLUMNS.join(","));
        }
        for row in &rows {
            write_row(&mut out, row, book, &mut self.makers);
        }
        Ok(Some(out))
    }

    /// The query of the window after the last one asked for, if the range goes on.
    fn next_window(&mut self) -> Option<UsageQuery> {
        if self.next >= self.request.to {
            return None;
        }
        let unit = match self.bucket {
            TimeBucket::Month => TimeBucket::Month,
            _ => TimeBucket::Day,
        };
        let tz = self.request.tz;
        let start = bucket_start_time(self.next, unit, tz);
        let end = next_bucket_start(start, unit, tz)
            .with_timezone(&Utc)
            .min(self.request.to)
            .max(self.next + chrono::Duration::seconds(1));
        let from = std::mem::replace(&mut self.next, end);
        Some(UsageQuery {
            from,
            to: end,
            // Every key of the rollups, reasoning effort too (a FOCUS row sums the
            // efforts): a window of daily or hourly rows is then read as it is.
            group_by: vec![
                Dimension::Project,
                Dimension::Provider,
                Dimension::Model,
                Dimension::ServiceTier,
                Dimension::Batch,
                Dimension::Tags,
                Dimension::ReasoningEffort,
                time_dimension(self.bucket, tz),
            ],
            filter: self.request.filter.clone(),
            measures: Measures::All,
        })
    }
}

/// A window's aggregates as FOCUS rows: by charge period and every key but the reasoning
/// effort (the last), in that order.
fn group_rows(
    request: &SpendRequest,
    bucket: TimeBucket,
    aggregates: Vec<UsageAggregate>,
    tags: &mut HashMap<String, String>,
) -> Vec<FocusRow> {
    let mut rows: BTreeMap<(DateTime<Utc>, Vec<String>), FocusRow> = BTreeMap::new();
    for mut aggregate in aggregates {
        let Some(hour) = aggregate.hour else { continue };
        let start = bucket_start_time(hour, bucket, request.tz);
        aggregate.keys.pop();
        let row = rows
            .entry((start.with_timezone(&Utc), aggregate.keys))
            .or_insert_with_key(|(_, keys)| {
                let end = next_bucket_start(start, bucket, request.tz);
                let month = bucket_start_time(hour, TimeBucket::Month, request.tz);
                let key = |i: usize| keys.get(i).cloned().unwrap_or_default();
                let stored_tags = key(5);
                let tags = tags
                    .entry(stored_tags)
                    .or_insert_with_key(|text| normalise_tags(text))
                    .clone();
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
                    tags,
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
    rows.into_values().collect()
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
    let service = format!("{issuer} API");
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
        service: &service,
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
            service: &service,
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
    /// `ServiceName`: "{issuer} API".
    service: &'r str,
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
/// to its total down the file. Fields are appended as they are written: an export is a
/// million lines of 52 fields.
fn write_line(out: &mut String, line: &Line<'_>, tokens_line: bool) {
    let row = line.row;
    let mut fields = Fields { out, first: true };
    let cost = line.cost.normalize();
    for amount in [cost, cost, line.list_cost.normalize(), cost] {
        fields.display(amount);
    }
    fields.text("USD");
    fields.text(&row.provider);
    fields.text(line.issuer);
    for time in [
        row.billing_start,
        row.billing_end,
        row.charge_start,
        row.charge_end,
    ] {
        fields.time(time);
    }
    fields.text("Usage");
    fields.text("");
    fields.text(&line.description);
    fields.text("Usage-Based");
    fields.display(line.quantity);
    fields.text(line.unit);
    fields.text("Standard");
    fields.display(line.quantity);
    fields.text(line.unit);
    fields.text(line.issuer);
    fields.text(line.publisher);
    fields.text(line.issuer);
    fields.text(line.service);
    fields.text("AI and Machine Learning");
    fields.text("Generative AI");
    fields.text(&line.sku);
    fields.text(&row.project);
    fields.text(&row.project);
    fields.text(&row.tags);
    for _ in 0..3 {
        fields.text("");
    }
    let only_tokens = |value: u64| if tokens_line { value } else { 0 };
    let t = &row.tokens;
    for count in [
        row.requests,
        row.unpriced_requests,
        t.input,
        t.cached_input,
        t.cache_write_5m,
        t.cache_write_1h,
        t.output,
        t.reasoning,
    ] {
        fields.display(only_tokens(count));
    }
    for saving in [row.cache_savings, row.batch_savings] {
        fields.display(if tokens_line {
            saving.normalize()
        } else {
            Decimal::ZERO
        });
    }
    fields.text(&row.service_tier);
    fields.display(row.batch);
    for count in [
        t.audio_input,
        t.cached_audio_input,
        t.audio_output,
        t.image_input,
        t.image_output,
        row.partial_requests,
    ] {
        fields.display(only_tokens(count));
    }
    fields.text(line.usage_type);
    fields.out.push('\n');
}

/// The fields of one CSV line, appended with commas between them.
struct Fields<'o> {
    out: &'o mut String,
    first: bool,
}

impl Fields<'_> {
    fn separate(&mut self) {
        if !std::mem::take(&mut self.first) {
            self.out.push(',');
        }
    }

    /// Text, quoted (and a leading formula character defused) where CSV needs it.
    fn text(&mut self, value: &str) {
        self.separate();
        push_csv_field(self.out, value);
    }

    /// A number, a flag or text that needs no quoting, as it displays.
    fn display(&mut self, value: impl std::fmt::Display) {
        self.separate();
        let _ = write!(self.out, "{value}");
    }

    /// FOCUS date/time format: UTC, ISO 8601 with `Z`.
    fn time(&mut self, time: DateTime<Utc>) {
        self.separate();
        let _ = write!(
            self.out,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            time.year(),
            time.month(),
            time.day(),
            time.hour(),
            time.minute(),
            time.second()
        );
    }
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
