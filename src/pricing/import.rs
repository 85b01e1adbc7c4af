//! Turns the two maintained community price databases into pricing sheets:
//! LiteLLM's `model_prices_and_context_window.json` (USD per token, flat keys with
//! `_above_Nk_tokens`, `_batches`, `_flex`, `_priority` suffixes) and pydantic's
//! genai-prices `data.json` (USD per 1M tokens, providers → models → match rules,
//! tiered and dated prices).
//!
//! Neither database dates its current prices, so an undated price is taken as observed
//! on the import day (`since`): loaded after the built-in sheets, it adds a price from
//! that day on and leaves the built-in history in force before it. Dated prices
//! (genai-prices `start_date` constraints) keep their dates.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde_json::{Map, Value};

use super::sheet::{
    LongContext, ModelEntry, Modifiers, PriceEntry, RateFields, SheetFile, SheetKind, Sources,
    TierRates,
};

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("not valid JSON: {0}")]
    Json(String),
    #[error("unexpected layout: {0}")]
    Layout(String),
}

/// What an import produced: sheets by provider, and notes on what was skipped.
#[derive(Debug, Default)]
pub struct Imported {
    pub sheets: BTreeMap<String, SheetFile>,
    pub notes: Vec<String>,
}

const PER_MILLION: Decimal = Decimal::from_parts(1_000_000, 0, 0, false, 0);

/// LiteLLM provider names → sheet provider names.
fn litellm_provider(name: &str) -> String {
    match name {
        "gemini" => "google".to_owned(),
        other => other.replace(['/', ' ', ':'], "_"),
    }
}

/// Converts LiteLLM's price map. `providers` filters by sheet provider name.
pub fn from_litellm(
    text: &str,
    providers: &[String],
    since: NaiveDate,
    source: &str,
) -> Result<Imported, ImportError> {
    let root: Map<String, Value> =
        serde_json::from_str(text).map_err(|error| ImportError::Json(error.to_string()))?;
    let mut imported = Imported::default();
    for (key, entry) in &root {
        if key == "sample_spec" {
            continue;
        }
        let Some(entry) = entry.as_object() else {
            continue;
        };
        let Some(provider) = entry.get("litellm_provider").and_then(Value::as_str) else {
            continue;
        };
        let provider = litellm_provider(provider);
        if !providers.contains(&provider) {
            continue;
        }
        let mode = entry.get("mode").and_then(Value::as_str).unwrap_or("chat");
        if !matches!(mode, "chat" | "responses" | "completion") {
            continue;
        }
        let id = key
            .rsplit_once('/')
            .map_or(key.as_str(), |(_, id)| id)
            .to_owned();
        let per_token = |name: &str| -> Option<Decimal> {
            entry
                .get(name)
                .and_then(number)
                .map(|rate| (rate * PER_MILLION).normalize())
        };
        let rates_with = |suffix: &str| RateFields {
            input: per_token(&format!("input_cost_per_token{suffix}")),
            cached_input: per_token(&format!("cache_read_input_token_cost{suffix}")),
            cache_write_5m: per_token(&format!("cache_creation_input_token_cost{suffix}")),
            cache_write_1h: per_token(&format!(
                "cache_creation_input_token_cost_above_1hr{suffix}"
            )),
            output: per_token(&format!("output_cost_per_token{suffix}")),
            reasoning: per_token(&format!("output_cost_per_reasoning_token{suffix}")),
        };
        let standard = rates_with("");
        if standard.input.is_none() || standard.output.is_none() {
            imported.notes.push(format!(
                "{provider}/{id}: skipped, no input or output price per token"
            ));
            continue;
        }
        // The lowest `_above_Nk_tokens` threshold is the long-context tier.
        let threshold = entry
            .keys()
            .filter_map(|k| {
                let rest = k.strip_prefix("input_cost_per_token_above_")?;
                rest.strip_suffix("k_tokens")?.parse::<u64>().ok()
            })
            .min();
        let long_context = threshold.map(|thousands| {
            let suffix = format!("_above_{thousands}k_tokens");
            (thousands * 1000, suffix)
        });
        let tier = |name: &str| -> Option<TierRates> {
            let rates = rates_with(&format!("_{name}"));
            let long = long_context
                .as_ref()
                .map(|(_, suffix)| rates_with(&format!("{suffix}_{name}")))
                .filter(|r| !r.is_empty());
            (!rates.is_empty() || long.is_some()).then(|| TierRates::from_rates(&rates, long))
        };
        let price = PriceEntry {
            from: since,
            source: entry
                .get("source")
                .and_then(Value::as_str)
                .map(str::to_owned),
            input: standard.input,
            cached_input: standard.cached_input,
            cache_write_5m: standard.cache_write_5m,
            cache_write_1h: standard.cache_write_1h,
            output: standard.output,
            reasoning: standard.reasoning,
            long_context: long_context.as_ref().map(|(above, suffix)| {
                let mut rates = rates_with(suffix);
                // LiteLLM leaves out long-context rates equal to the standard ones.
                fill_missing(&mut rates, &standard);
                LongContext::from_rates(*above, &rates)
            }),
            batch: tier("batches"),
            flex: tier("flex"),
            priority: tier("priority"),
        };
        let sheet = imported
            .sheets
            .entry(provider.clone())
            .or_insert_with(|| empty_sheet(&provider, source, since));
        // `claude-sonnet-4-5` and `claude-sonnet-4-5-20250929` are separate keys of one
        // model: a dated key with the same prices as its undated model becomes an alias.
        let base = undated_key(&id);
        let same_model = sheet.models.iter_mut().find(|m| {
            m.id == id || (undated_key(&m.id) == base && same_rates(&m.prices[0], &price))
        });
        match same_model {
            Some(existing) => {
                if existing.id != id && !existing.aliases.contains(&id) {
                    existing.aliases.push(id);
                }
            }
            None => sheet.models.push(ModelEntry {
                id,
                aliases: Vec::new(),
                pattern: None,
                upstream: None,
                notes: None,
                prices: vec![price],
            }),
        }
    }
    Ok(imported)
}

/// Converts genai-prices' `data.json` (v2: an array of providers).
pub fn from_genai_prices(
    text: &str,
    providers: &[String],
    since: NaiveDate,
    source: &str,
) -> Result<Imported, ImportError> {
    let root: Vec<Value> =
        serde_json::from_str(text).map_err(|error| ImportError::Json(error.to_string()))?;
    let mut imported = Imported::default();
    for provider_value in &root {
        let provider = provider_value
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| ImportError::Layout("a provider without `id`".into()))?
            .to_owned();
        if !providers.contains(&provider) {
            continue;
        }
        let models = provider_value
            .get("models")
            .and_then(Value::as_array)
            .ok_or_else(|| ImportError::Layout(format!("provider {provider} without `models`")))?;
        let sheet = imported
            .sheets
            .entry(provider.clone())
            .or_insert_with(|| empty_sheet(&provider, source, since));
        for model in models {
            let Some(id) = model.get("id").and_then(Value::as_str) else {
                continue;
            };
            match genai_model(model, id, since) {
                Ok(entry) => sheet.models.push(entry),
                Err(reason) => imported
                    .notes
                    .push(format!("{provider}/{id}: skipped, {reason}")),
            }
        }
    }
    Ok(imported)
}

fn genai_model(model: &Value, id: &str, since: NaiveDate) -> Result<ModelEntry, String> {
    let mut aliases = Vec::new();
    if let Some(logic) = model.get("match") {
        collect_equals(logic, &mut aliases);
    }
    aliases.retain(|alias| alias != id);
    aliases.sort();
    aliases.dedup();
    let prices_value = model.get("prices").ok_or("no `prices`")?;
    let mut prices = Vec::new();
    match prices_value {
        Value::Object(_) => prices.push(genai_price(prices_value, since)?),
        Value::Array(conditional) => {
            for (position, item) in conditional.iter().enumerate() {
                let constraint = item.get("constraint");
                let from = match constraint.and_then(|c| c.get("start_date")) {
                    Some(date) => date
                        .as_str()
                        .and_then(|d| d.parse::<NaiveDate>().ok())
                        .ok_or("a start_date that is not a date")?,
                    None if constraint.is_some() => {
                        return Err("time-of-day prices are not supported".into());
                    }
                    // The undated first price of a history holds until the first dated one.
                    None if position == 0 && conditional.len() > 1 => {
                        NaiveDate::from_ymd_opt(2000, 1, 1).expect("valid date")
                    }
                    None => since,
                };
                let prices_of = item
                    .get("prices")
                    .ok_or("a conditional price without `prices`")?;
                prices.push(genai_price(prices_of, from)?);
            }
        }
        _ => return Err("`prices` is neither an object nor a list".into()),
    }
    // Price variants (genai-prices 0.2.3+): service tiers and batch processing.
    if let Some(variants) = model.get("price_variants").and_then(Value::as_array) {
        for variant in variants {
            let when = variant.get("when").and_then(Value::as_object);
            let tier = match when.map(|w| (w.get("service_tier"), w.get("processing"))) {
                Some((Some(t), _)) if t == "flex" => "flex",
                Some((Some(t), _)) if t == "priority" => "priority",
                Some((_, Some(p))) if p == "batch" => "batch",
                _ => continue,
            };
            let Some(variant_prices) = variant.get("prices") else {
                continue;
            };
            let tier_price = genai_price(variant_prices, since).ok();
            let Some(tier_price) = tier_price.filter(|p| p.input.is_some() || p.output.is_some())
            else {
                continue;
            };
            let rates = TierRates::from_rates(
                &standard_fields(&tier_price),
                tier_price.long_context.as_ref().map(LongContext::rates),
            );
            if let Some(latest) = prices.last_mut() {
                match tier {
                    "flex" => latest.flex = Some(rates),
                    "priority" => latest.priority = Some(rates),
                    _ => latest.batch = Some(rates),
                }
            }
        }
    }
    Ok(ModelEntry {
        id: id.to_owned(),
        aliases,
        pattern: None,
        upstream: None,
        notes: None,
        prices,
    })
}

fn undated_key(id: &str) -> String {
    let key = super::normalise_name(id);
    super::resolve::strip_date(&key).to_owned()
}

fn same_rates(a: &PriceEntry, b: &PriceEntry) -> bool {
    a.standard() == b.standard()
}

fn standard_fields(price: &PriceEntry) -> RateFields {
    RateFields {
        input: price.input,
        cached_input: price.cached_input,
        cache_write_5m: price.cache_write_5m,
        cache_write_1h: price.cache_write_1h,
        output: price.output,
        reasoning: price.reasoning,
    }
}

/// One genai-prices `ModelPrice` object: numbers or `{base, tiers:[{start, price}]}`.
fn genai_price(value: &Value, from: NaiveDate) -> Result<PriceEntry, String> {
    let object = value.as_object().ok_or("a price that is not an object")?;
    let mut standard = RateFields::default();
    let mut long = RateFields::default();
    let mut threshold: Option<u64> = None;
    for (key, bucket) in [
        ("input_mtok", 0),
        ("cache_read_mtok", 1),
        ("cache_write_mtok", 2),
        ("cache_write_5m_mtok", 2),
        ("cache_write_1h_mtok", 3),
        ("output_mtok", 4),
        ("output_reasoning_mtok", 5),
    ] {
        let Some(price) = object.get(key) else {
            continue;
        };
        let (base, tier) = match price {
            Value::Object(tiered) => {
                let base = tiered
                    .get("base")
                    .and_then(number)
                    .ok_or("a tiered price without `base`")?;
                let first = tiered
                    .get("tiers")
                    .and_then(Value::as_array)
                    .and_then(|tiers| tiers.first())
                    .map(|t| {
                        (
                            t.get("start").and_then(Value::as_u64),
                            t.get("price").and_then(number),
                        )
                    });
                match first {
                    Some((Some(start), Some(rate))) => {
                        if threshold.is_some_and(|t| t != start) {
                            return Err("tiers with different thresholds per bucket".into());
                        }
                        threshold = Some(start);
                        (base, Some(rate))
                    }
                    _ => (base, None),
                }
            }
            other => (
                number(other).ok_or_else(|| format!("{key} is not a number"))?,
                None,
            ),
        };
        set_bucket(&mut standard, bucket, base);
        if let Some(rate) = tier {
            set_bucket(&mut long, bucket, rate);
        }
    }
    if standard.input.is_none() || standard.output.is_none() {
        return Err("no input or output price".into());
    }
    let long_context = threshold.map(|above| {
        fill_missing(&mut long, &standard);
        LongContext::from_rates(above, &long)
    });
    Ok(PriceEntry {
        from,
        source: None,
        input: standard.input,
        cached_input: standard.cached_input,
        cache_write_5m: standard.cache_write_5m,
        cache_write_1h: standard.cache_write_1h,
        output: standard.output,
        reasoning: standard.reasoning,
        long_context,
        batch: None,
        flex: None,
        priority: None,
    })
}

fn set_bucket(rates: &mut RateFields, bucket: usize, value: Decimal) {
    let slot = match bucket {
        0 => &mut rates.input,
        1 => &mut rates.cached_input,
        2 => &mut rates.cache_write_5m,
        3 => &mut rates.cache_write_1h,
        4 => &mut rates.output,
        _ => &mut rates.reasoning,
    };
    *slot = Some(value);
}

/// A long-context tier that leaves a bucket out charges the standard rate for it.
fn fill_missing(long: &mut RateFields, standard: &RateFields) {
    let mut table = long.table();
    for (slot, base) in table.iter_mut().zip(standard.table()) {
        if slot.is_none() {
            *slot = base;
        }
    }
    *long = RateFields::from_table(&table);
}

fn collect_equals(logic: &Value, into: &mut Vec<String>) {
    match logic {
        Value::Object(map) => {
            if let Some(Value::String(name)) = map.get("equals") {
                into.push(name.clone());
            }
            for key in ["or", "and"] {
                if let Some(Value::Array(items)) = map.get(key) {
                    for item in items {
                        collect_equals(item, into);
                    }
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_equals(item, into)),
        _ => {}
    }
}

/// A JSON number as an exact decimal, through its shortest text (`1.75e-06` → 0.00000175).
fn number(value: &Value) -> Option<Decimal> {
    let text = match value {
        Value::Number(number) => number.to_string(),
        Value::String(text) => text.clone(),
        _ => return None,
    };
    let parsed = text
        .parse::<Decimal>()
        .or_else(|_| Decimal::from_scientific(&text))
        .ok()?;
    (!parsed.is_sign_negative()).then_some(parsed.normalize())
}

fn empty_sheet(provider: &str, source: &str, since: NaiveDate) -> SheetFile {
    SheetFile {
        provider: provider.to_owned(),
        kind: SheetKind::Provider,
        source: Sources::One(source.to_owned()),
        retrieved: since,
        notes: Some(
            "Imported by `llm-meter pricing import`; edit with care, re-import to refresh.".into(),
        ),
        modifiers: Modifiers::default(),
        upstreams: BTreeMap::new(),
        bare_names: Vec::new(),
        models: Vec::new(),
    }
}
