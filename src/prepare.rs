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
