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
        Ok(PricedRecord { record, price })
    }
}
