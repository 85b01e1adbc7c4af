//! The pure front of the pipeline, shared by `cost`, HTTP ingest, backfill and the
//! tailer: one record's text → parsed → normalised → priced. No I/O.

use chrono::{DateTime, Utc};

use crate::pricing::{PriceBook, PriceOutcome, ResolveCache};
use crate::usage::{self, Defaults, Format, ParseError, UsageRecord};

/// A record ready to store: the normalised usage and what it costs.
#[derive(Clone, Debug, PartialEq)]
pub struct PricedRecord {
    pub record: UsageRecord,
    pub price: PriceOutcome,
}

impl PricedRecord {
    /// The pricing sheet's model id the record's name resolved to, priced or not.
    pub fn resolved_model(&self) -> Option<&str> {
        match &self.price {
            PriceOutcome::Priced(p) => Some(&p.model_id),
            PriceOutcome::Unpriced(u) => u
                .resolved_model
                .as_deref()
                .and_then(|name| name.rsplit_once('/'))
                .map(|(_, id)| id),
        }
    }

    /// The model the record is counted under in rollups, reports and metrics: the
    /// sheet's id when the name resolved, the name as written otherwise. One rule, so a
    /// report grouped from events agrees with one read from the rollups.
    pub fn rollup_model(&self) -> &str {
        self.resolved_model().unwrap_or(&self.record.model)
    }
}

/// Everything `prepare` needs besides the text.
pub struct Preparer<'b> {
    pub book: &'b PriceBook,
    pub format: Format,
    pub default_project: String,
    cache: ResolveCache,
}

impl<'b> Preparer<'b> {
    pub fn new(book: &'b PriceBook, format: Format, default_project: impl Into<String>) -> Self {
        Preparer {
            book,
            format,
            default_project: default_project.into(),
            cache: ResolveCache::default(),
        }
    }

    /// Parses, normalises and prices one record. `now` is the ingest time, used only
    /// for records that carry no time of their own.
    pub fn prepare(&mut self, text: &str, now: DateTime<Utc>) -> Result<PricedRecord, ParseError> {
        let parsed = usage::parse_record(text, self.format)?;
        self.prepare_parsed(parsed, now)
    }

    pub fn prepare_parsed(
        &mut self,
        parsed: usage::ParsedUsage,
        now: DateTime<Utc>,
    ) -> Result<PricedRecord, ParseError> {
        let defaults = Defaults {
            project: &self.default_project,
            now,
        };
        let book = self.book;
        let cache = &mut self.cache;
        let record =
            usage::normalise(parsed, &defaults, |model| cache.infer_provider(book, model))?;
        let price = self.book.price(&record);
        check_amounts(&record, &price)?;
        Ok(PricedRecord { record, price })
    }
}

/// The most one record may cost, report or save, in USD. Far above any real request
/// (the largest, a million-token context at the dearest rates, costs a few hundred
/// dollars), and low enough that every amount of one record fits the stores' integer
/// columns many times over, so a record can never wrap or saturate a sum by itself.
pub const MAX_RECORD_USD: i64 = 1_000_000;

/// Refuses a record whose price or reported cost is out of all proportion (a sheet
/// with a wild rate, a provider's cost field gone wrong), naming the amount.
fn check_amounts(record: &UsageRecord, price: &PriceOutcome) -> Result<(), ParseError> {
    let most = rust_decimal::Decimal::from(MAX_RECORD_USD);
    let mut amounts = vec![("reported cost", record.reported_cost)];
    if let PriceOutcome::Priced(priced) = price {
        amounts.extend([
            ("cost", Some(priced.cost)),
            ("list cost", Some(priced.list_cost)),
            ("cache savings", Some(priced.cache_savings)),
            ("batch savings", Some(priced.batch_savings)),
        ]);
    }
    for (what, amount) in amounts {
        if let Some(amount) = amount
            && amount.abs() > most
        {
            return Err(ParseError::InvalidField {
                field: what.replace(' ', "_"),
                reason: format!(
                    "${amount} is more than ${MAX_RECORD_USD}, the most one request may {}",
                    if what == "reported cost" {
                        "report"
                    } else {
                        "count"
                    }
                ),
            });
        }
    }
    Ok(())
}
