//! The TOML schema of a pricing sheet (`pricing/*.toml`) and its validation.
//!
//! A sheet is one provider's (or one gateway's) price list:
//!
//! ```toml
//! provider = "openai"
//! kind = "provider"                       # or "gateway"
//! source = "https://openai.com/api/pricing/"
//! retrieved = "2026-11-22"                # the day the source was read
//!
//! [modifiers]
//! batch = { multiplier = "0.5" }          # Batch API: half of every bucket
//! flex = { multiplier = "0.5", except = ["cached_input"] }
//!
//! [[model]]
//! id = "gpt-5.4"
//! aliases = ["gpt-5.4-2026-03-05"]
//!
//! [[model.price]]
//! from = "2026-03-05"                     # in force from this UTC day on
//! input = "2.50"                          # USD per 1M tokens, as decimal strings
//! cached_input = "0.25"
//! output = "15"
//! long_context = { above = 272000, input = "5", cached_input = "0.5", output = "22.5" }
//! priority = { input = "5", cached_input = "0.5", output = "30" }
//! audio_input = "32"                      # audio tokens, USD per 1M
//! web_search = "0.01"                     # USD per call
//! search_context = { high = { request = "0.012" } }   # by the record's search context
//! ```

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, NaiveDate, NaiveTime, Timelike, Utc};
use rust_decimal::Decimal;
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};

use crate::usage::Bucket;

/// What a sheet is: a provider that bills for its own models, or a gateway that
/// resells other providers' models under its own spellings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SheetKind {
    #[default]
    Provider,
    Gateway,
}

/// Where a sheet stands: curated sheets (this repository's `pricing/*.toml`, local
/// sheets) say what they say; catalog sheets (generated from the community catalogs)
/// fill in the models no curated sheet lists; synced sheets (a catalog's changes
/// fetched while running) add models and later prices to what the catalogs said, never
/// to a curated model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Layer {
    #[default]
    Curated = 0,
    Catalog = 1,
    Synced = 2,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SheetFile {
    pub provider: String,
    #[serde(default)]
    pub kind: SheetKind,
    #[serde(default, skip_serializing_if = "is_curated")]
    pub layer: Layer,
    /// Where the prices were read: one or more URLs or references.
    pub source: Sources,
    /// Which version of the source (a catalog's package version), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_version: Option<String>,
    /// The day the source was read.
    pub retrieved: NaiveDate,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    #[serde(default, skip_serializing_if = "Modifiers::is_empty")]
    pub modifiers: Modifiers,
    /// Rates every price of the sheet carries unless it gives its own: a provider's
    /// per-call tool fees (web search, code interpreter) that do not vary by model.
    #[serde(default, skip_serializing_if = "RateFields::has_no_rates")]
    pub defaults: RateFields,
    /// Gateway only: vendor prefix (as in `openai/gpt-5.2`) → upstream provider sheet.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub upstreams: BTreeMap<String, String>,
    /// Gateway only: upstream providers whose bare model names the gateway accepts
    /// (`gpt-5.2` rather than `openai/gpt-5.2`), tried in this order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bare_names: Vec<String>,
    /// Gateway only: providers whose models it resells at their list price when neither
    /// a curated nor a catalog sheet gives it a price of its own (a cloud's catalog comes
    /// first, its publisher's price after).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fallback: Vec<String>,
    #[serde(default, rename = "model", skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<ModelEntry>,
}

impl SheetFile {
    /// Gives every price the sheet's default rates where it names none of its own, and
    /// its search-context sizes in lower case (as records are read).
    pub fn apply_defaults(&mut self) {
        let defaults = self.defaults.rates();
        for price in self.models.iter_mut().flat_map(|m| m.prices.iter_mut()) {
            let mut rates = price.rates();
            for (rate, default) in rates.iter_mut().zip(defaults) {
                *rate = rate.or(default);
            }
            price.set_rates(&rates);
            if price
                .search_context
                .keys()
                .any(|k| k.bytes().any(|b| b.is_ascii_uppercase()))
            {
                price.search_context = std::mem::take(&mut price.search_context)
                    .into_iter()
                    .map(|(size, rates)| (size.to_ascii_lowercase(), rates))
                    .collect();
            }
        }
    }
}

impl Layer {
    pub fn as_str(self) -> &'static str {
        match self {
            Layer::Curated => "curated",
            Layer::Catalog => "catalog",
            Layer::Synced => "synced",
        }
    }
}

fn is_curated(layer: &Layer) -> bool {
    *layer == Layer::Curated
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Sources {
    One(String),
    Many(Vec<String>),
}

impl Sources {
    pub fn as_list(&self) -> Vec<&str> {
        match self {
            Sources::One(one) => vec![one.as_str()],
            Sources::Many(many) => many.iter().map(String::as_str).collect(),
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Modifiers {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<Modifier>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flex: Option<Modifier>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<Modifier>,
}

impl Modifiers {
    pub fn is_empty(&self) -> bool {
        self.batch.is_none() && self.flex.is_none() && self.priority.is_none()
    }
}

/// A tier priced as a multiple of the standard rates, with buckets it leaves alone
/// (Gemini's batch and flex tiers do not discount cache reads).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Modifier {
    #[serde(deserialize_with = "decimal_text")]
    pub multiplier: Decimal,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub except: Vec<Bucket>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ModelEntry {
    pub id: String,
    /// Other names of the same model: dated snapshots, `-latest` aliases, cloud
    /// spellings. Snapshots ending in a date are also found without listing them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// An extra regular expression matched against the whole model name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// Gateway only: the upstream model this name is billed as, `provider/model`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    #[serde(default, rename = "price", skip_serializing_if = "Vec::is_empty")]
    pub prices: Vec<PriceEntry>,
}

/// Declares a struct that carries a rate for every bucket (decimal strings in the sheet:
/// USD per 1M tokens for token buckets, USD per call for `web_search`,
/// `code_interpreter`, `file_search` and `image_generation`, USD per request for
/// `request`) besides its own fields, with `rates()` and `set_rates()` to read and write
/// them as one [`RateTable`]. Written once, used by every place a sheet gives rates; the
/// rate fields are listed in `Bucket::ALL` order (a test holds them to it).
macro_rules! with_rates {
    ($(#[$meta:meta])* pub struct $name:ident {
        $($(#[$field_meta:meta])* pub $field:ident: $type:ty,)*
    }) => {
        with_rates!(@expand [$(#[$meta])*] $name [$($(#[$field_meta])* pub $field: $type,)*]
            input cached_input cache_write_5m cache_write_1h output reasoning
            audio_input cached_audio_input audio_output image_input image_output
            web_search code_interpreter file_search image_generation request);
    };
    (@expand [$($meta:tt)*] $name:ident [$($fields:tt)*] $($rate:ident)*) => {
        $($meta)*
        pub struct $name {
            $($fields)*
            $(
                #[serde(default, deserialize_with = "opt_decimal_text", skip_serializing_if = "Option::is_none")]
                pub $rate: Option<Decimal>,
            )*
        }

        impl $name {
            /// The rates in bucket order (`Bucket::index`).
            pub fn rates(&self) -> RateTable {
                [$(self.$rate),*]
            }

            pub fn set_rates(&mut self, rates: &RateTable) {
                [$(self.$rate),*] = *rates;
            }

            /// Whether it gives no rate at all.
            pub fn has_no_rates(&self) -> bool {
                self.rates().iter().all(Option::is_none)
            }
        }
    };
}

with_rates! {
    /// One price, in force from `from` until the next entry's `from`.
    #[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    pub struct PriceEntry {
        pub from: Effective,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub source: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub long_context: Option<LongContext>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub batch: Option<TierRates>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub flex: Option<TierRates>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub priority: Option<TierRates>,
        /// Hours of every UTC day at which other standard rates apply (DeepSeek's
        /// off-peak discount): the first window that holds a record's time wins.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub daily: Vec<DailyWindow>,
        /// Rates that depend on the search context a record asked for (`low`, `medium`,
        /// `high`): Perplexity's request fee, some web-search prices. They replace the
        /// rates above for a record that names that size.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        pub search_context: BTreeMap<String, RateFields>,
    }
}

with_rates! {
    /// Standard rates at some hours of every UTC day: from `start` (included) to `end`
    /// (excluded), past midnight when `end` comes before `start`. Buckets left out keep
    /// the price's own rates.
    #[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    pub struct DailyWindow {
        #[serde(with = "time_of_day")]
        pub start: NaiveTime,
        #[serde(with = "time_of_day")]
        pub end: NaiveTime,
    }
}

impl DailyWindow {
    pub fn contains(&self, time: DateTime<Utc>) -> bool {
        let at = time.time();
        if self.start <= self.end {
            self.start <= at && at < self.end
        } else {
            at >= self.start || at < self.end
        }
    }

    /// `00:30-16:30`, for price references.
    pub fn label(&self) -> String {
        format!(
            "{}-{}",
            self.start.format("%H:%M"),
            self.end.format("%H:%M")
        )
    }
}

/// A UTC time of day written `"HH:MM"` or `"HH:MM:SS"` (a trailing `Z` is allowed).
mod time_of_day {
    use chrono::NaiveTime;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(time: &NaiveTime, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&time.format("%H:%M:%S"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<NaiveTime, D::Error> {
        let text = String::deserialize(deserializer)?;
        let trimmed = text.trim().trim_end_matches('Z');
        NaiveTime::parse_from_str(trimmed, "%H:%M:%S")
            .or_else(|_| NaiveTime::parse_from_str(trimmed, "%H:%M"))
            .map_err(|_| serde::de::Error::custom(format!("{text:?} is not a time of day (HH:MM)")))
    }
}

with_rates! {
    /// Rates that replace the standard ones once a request's input passes `above`
    /// tokens: the whole request is then priced at these rates.
    #[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    pub struct LongContext {
        pub above: u64,
    }
}

with_rates! {
    /// Explicit rates of a tier (batch, flex, priority). Buckets left out are derived
    /// from the standard rates by the sheet's modifier for that tier.
    #[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    pub struct TierRates {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub long_context: Option<RateFields>,
    }
}

with_rates! {
    /// Rates alone: a tier's long-context rates, a project's negotiated rates.
    #[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    pub struct RateFields {}
}

impl RateFields {
    pub fn from_table(rates: &RateTable) -> RateFields {
        let mut fields = RateFields::default();
        fields.set_rates(rates);
        fields
    }
}

/// When a price takes effect: a UTC day (`"2026-03-05"`, from its midnight) or an instant
/// (`"2026-12-01T06:00:00Z"`: a price synced while running applies from the sync on).
/// The default is the start of usage time (2000-01-01): a catalog price with no date.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Effective(DateTime<Utc>);

impl Effective {
    pub fn day(date: NaiveDate) -> Effective {
        Effective(date.and_time(NaiveTime::MIN).and_utc())
    }

    /// An instant, kept to the second.
    pub fn at(time: DateTime<Utc>) -> Effective {
        Effective(time.with_nanosecond(0).unwrap_or(time))
    }

    pub fn time(self) -> DateTime<Utc> {
        self.0
    }

    pub fn date(self) -> NaiveDate {
        self.0.date_naive()
    }
}

impl Default for Effective {
    fn default() -> Self {
        Effective::day(NaiveDate::from_ymd_opt(2000, 1, 1).expect("a valid date"))
    }
}

impl fmt::Display for Effective {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.time() == NaiveTime::MIN {
            write!(f, "{}", self.0.date_naive())
        } else {
            write!(f, "{}", self.0.format("%Y-%m-%dT%H:%M:%SZ"))
        }
    }
}

impl std::str::FromStr for Effective {
    type Err = String;

    fn from_str(text: &str) -> Result<Effective, String> {
        let text = text.trim();
        if let Ok(date) = text.parse::<NaiveDate>() {
            return Ok(Effective::day(date));
        }
        DateTime::parse_from_rfc3339(text)
            .map(|time| Effective::at(time.with_timezone(&Utc)))
            .map_err(|_| format!("{text:?} is neither a date (2026-03-05) nor an RFC 3339 time"))
    }
}

impl Serialize for Effective {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Effective {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // A string in JSON and TOML; TOML may also write an unquoted date.
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            Text(String),
            Toml(toml::value::Datetime),
        }
        let text = match Written::deserialize(deserializer)? {
            Written::Text(text) => text,
            Written::Toml(datetime) => datetime.to_string(),
        };
        text.parse().map_err(de::Error::custom)
    }
}

/// The rate of each bucket (USD per 1M tokens, per call or per request, see
/// [`Bucket::measure`]), `None` where the sheet gives no price.
pub type RateTable = [Option<Decimal>; Bucket::COUNT];

impl PriceEntry {
    pub fn tier(&self, tier: Tier) -> Option<&TierRates> {
        match tier {
            Tier::Standard => None,
            Tier::Batch => self.batch.as_ref(),
            Tier::Flex => self.flex.as_ref(),
            Tier::Priority => self.priority.as_ref(),
        }
    }
}

impl Modifiers {
    pub fn get(&self, tier: Tier) -> Option<&Modifier> {
        match tier {
            Tier::Standard => None,
            Tier::Batch => self.batch.as_ref(),
            Tier::Flex => self.flex.as_ref(),
            Tier::Priority => self.priority.as_ref(),
        }
    }
}

/// The price tiers a sheet may distinguish.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tier {
    Standard,
    Batch,
    Flex,
    Priority,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Standard => "standard",
            Tier::Batch => "batch",
            Tier::Flex => "flex",
            Tier::Priority => "priority",
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Prices are decimal strings (`"1.75"`): a TOML float such as 0.175 is not exact.
/// Integers are accepted as they are exact.
fn decimal_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Decimal, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Written {
        Text(String),
        Integer(i64),
        Float(f64),
    }
    match Written::deserialize(deserializer)? {
        Written::Text(text) => {
            let value = text
                .trim()
                .parse::<Decimal>()
                .map_err(|_| de::Error::custom(format!("{text:?} is not a decimal number")))?;
            if value.is_sign_negative() && !value.is_zero() {
                return Err(de::Error::custom(format!("price {text} is negative")));
            }
            Ok(value)
        }
        Written::Integer(value) if value >= 0 => Ok(Decimal::from(value)),
        Written::Integer(value) => Err(de::Error::custom(format!("price {value} is negative"))),
        Written::Float(value) => Err(de::Error::custom(format!(
            "price {value} is a float; write it as a string (\"{value}\") so it stays exact"
        ))),
    }
}

fn opt_decimal_text<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Decimal>, D::Error> {
    decimal_text(deserializer).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each rate field lands in its own bucket's slot: a sheet's `audio_input` is the
    /// audio-input rate, whatever order the macro lists the fields in.
    #[test]
    fn rate_fields_follow_the_bucket_order() {
        for bucket in Bucket::ALL {
            let text = format!("{} = \"1\"", bucket.as_str());
            let fields: RateFields = toml::from_str(&text).unwrap();
            let rates = fields.rates();
            for other in Bucket::ALL {
                let expected = (other == bucket).then_some(Decimal::ONE);
                assert_eq!(rates[other.index()], expected, "{bucket} in {other}'s slot");
            }
            let mut round_trip = RateFields::default();
            round_trip.set_rates(&rates);
            assert_eq!(round_trip, fields);
        }
    }
}
