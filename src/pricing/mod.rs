//! The pricing table: load and validate sheets, resolve a (provider, model) to a
//! priced model, and compute a record's exact cost.
//!
//! Pure: sheets come in as text (the caller reads files), records come in as values.

mod builtin;
pub mod import;
mod resolve;
pub mod sheet;

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

use crate::usage::{Bucket, Measure, Tokens, UsageRecord};
pub use resolve::normalise_name;
pub use sheet::Effective;
use sheet::{
    Layer, ModelEntry, Modifier, PriceEntry, RateFields, RateTable, SheetFile, SheetKind, Tier,
};

/// The sheets shipped in `pricing/` and compiled into the binary, as (file name, text).
pub fn builtin_sheets() -> impl Iterator<Item = (&'static str, &'static str)> {
    builtin::SHEETS.iter().chain(builtin::CATALOGS).copied()
}

/// Money is rounded once per record, half to even, to this many decimal places (1e-9 USD).
pub const COST_DECIMALS: u32 = 9;

/// Problems with a sheet, found when loading or by `pricing check`.
#[derive(Debug, thiserror::Error)]
pub enum PricingError {
    #[error("{sheet}: {message}")]
    Invalid { sheet: String, message: String },
    #[error("{} problems in the pricing sheets:\n  {}", .0.len(), .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n  "))]
    Many(Vec<PricingError>),
}

fn invalid(sheet: &str, message: impl Into<String>) -> PricingError {
    PricingError::Invalid {
        sheet: sheet.to_owned(),
        message: message.into(),
    }
}

/// A negotiated price for a project: a multiplier on the computed cost, explicit
/// rates that replace the list rates, or both. Narrower matches win (model over
/// provider over the whole project).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProjectOverride {
    pub project: String,
    #[serde(default)]
    pub provider: Option<String>,
    /// A model id as the sheet names it (aliases resolve to it).
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub multiplier: Option<Decimal>,
    /// Explicit rates (USD per 1M tokens) that replace the list rates, bucket by bucket.
    #[serde(default)]
    pub rates: RateFields,
}

/// A deployment name a cloud serves a model under (Azure OpenAI's deployments, a proxy's
/// aliases): records that name it are priced as the model, and keep the name as written.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Deployment {
    /// The provider id whose records use the name (`azure`).
    pub provider: String,
    /// The deployment name, as records write it (`prod-gpt4o`); compared ignoring case.
    pub name: String,
    /// The model it serves, as the provider's sheets name it (`gpt-4o-2024-11-20`).
    pub model: String,
}

/// What an organisation's configuration adds to the market's prices: negotiated prices
/// per project, and the deployment names its clouds serve models under.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LocalTerms {
    pub overrides: Vec<ProjectOverride>,
    pub deployments: Vec<Deployment>,
}

/// One model of one provider sheet, with its prices sorted by date.
#[derive(Clone, Debug)]
pub struct Model {
    pub provider: String,
    pub id: String,
    pub aliases: Vec<String>,
    pub prices: Vec<PriceEntry>,
    pub sheet: String,
    pub provenance: Provenance,
    /// `provider/id`, computed once.
    name: String,
    /// `provider/id@date` for each price, computed once (pricing is a hot path).
    price_refs: Vec<String>,
}

/// Where a model's prices come from.
#[derive(Clone, Debug, PartialEq)]
pub struct Provenance {
    pub layer: Layer,
    /// URLs or references the sheet names.
    pub source: Vec<String>,
    /// The catalog's package version, when the sheet was generated from one.
    pub source_version: Option<String>,
    /// The day the source was read.
    pub retrieved: NaiveDate,
}

impl Provenance {
    fn of(file: &SheetFile) -> Provenance {
        Provenance {
            layer: file.layer,
            source: file
                .source
                .as_list()
                .into_iter()
                .map(str::to_owned)
                .collect(),
            source_version: file.source_version.clone(),
            retrieved: file.retrieved,
        }
    }
}

impl Model {
    fn new(provider: String, entry: &ModelEntry, sheet: &str, provenance: Provenance) -> Model {
        let mut model = Model {
            name: String::new(),
            provider,
            id: entry.id.clone(),
            aliases: entry.aliases.clone(),
            prices: entry.prices.clone(),
            sheet: sheet.to_owned(),
            provenance,
            price_refs: Vec::new(),
        };
        model.refresh_names();
        model
    }

    /// Its id and aliases.
    pub fn names(&self) -> impl Iterator<Item = &String> {
        std::iter::once(&self.id).chain(self.aliases.iter())
    }

    /// The price in force at `time`, and its position.
    pub fn price_at(&self, time: DateTime<Utc>) -> Option<(usize, &PriceEntry)> {
        let position = self.prices.iter().rposition(|p| p.from.time() <= time)?;
        Some((position, &self.prices[position]))
    }

    fn refresh_names(&mut self) {
        self.prices.sort_by_key(|p| p.from);
        self.name = format!("{}/{}", self.provider, self.id);
        self.price_refs = self
            .prices
            .iter()
            .map(|p| format!("{}@{}", self.name, p.from))
            .collect();
    }

    /// `provider/id`.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// A gateway: its own price entries (in `models`) plus how its names map upstream.
#[derive(Clone, Debug, Default)]
struct Gateway {
    upstreams: BTreeMap<String, String>,
    bare_names: Vec<String>,
    /// Tried after the gateway's own prices (curated and catalog).
    fallback: Vec<String>,
    /// Gateway model name → upstream (provider, model name).
    mapped: Vec<(ModelEntry, String, String)>,
}

/// Which model a name resolved to, and through which gateway.
#[derive(Clone, Copy, Debug)]
pub struct Resolved<'b> {
    pub model: &'b Model,
    pub via: Option<&'b str>,
}

impl Resolved<'_> {
    /// `openai/gpt-5.2`, or `openrouter:openai/gpt-5.2` through a gateway.
    pub fn name(&self) -> String {
        match self.via {
            Some(gateway) => format!("{gateway}:{}", self.model.name),
            None => self.model.name.clone(),
        }
    }
}

/// The outcome of pricing one record.
#[derive(Clone, Debug, PartialEq)]
pub enum PriceOutcome {
    /// Boxed: a priced record carries a cost per bucket, and the outcome is moved often.
    Priced(Box<Priced>),
    Unpriced(Unpriced),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Priced {
    /// What the record costs: rounded once, half to even, to 1e-9 USD.
    pub cost: Decimal,
    /// The same tokens at list price: every input token at the uncached input rate and
    /// every output token at the output rate, standard or priority tier, no batch,
    /// flex or negotiated discount. The FOCUS `ListCost`; `list_cost - cost` is savings.
    pub list_cost: Decimal,
    /// The price used: `openai/gpt-5.2@2025-12-11+batch`.
    pub price_ref: String,
    /// The model it resolved to: `openai/gpt-5.2`.
    pub resolved_model: String,
    /// The sheet's id of that model: `gpt-5.2`.
    pub model_id: String,
    /// Each bucket's exact, unrounded share of the cost (multipliers applied); they sum to
    /// `cost` before its single rounding. For spend by token type.
    pub bucket_costs: [Decimal; Bucket::COUNT],
    /// What prompt caching saved on this record: the cached and written tokens at the
    /// record's own uncached input rate, minus what they cost (negative when cache-write
    /// premiums exceeded the read discounts).
    pub cache_savings: Decimal,
    /// What the batch or flex discount saved: the record at its provider's standard tier
    /// (same caching, same negotiated prices) minus its cost. Zero for other tiers.
    pub batch_savings: Decimal,
    /// Set when some usage had no rate (audio tokens, web searches… the sheet does not
    /// price): the cost is what the rest costs, and this says what was left out.
    pub partial: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Unpriced {
    pub reason: String,
    /// Set when the model was found but a rate was missing.
    pub resolved_model: Option<String>,
}

impl PriceOutcome {
    pub fn cost(&self) -> Option<Decimal> {
        match self {
            PriceOutcome::Priced(priced) => Some(priced.cost),
            PriceOutcome::Unpriced(_) => None,
        }
    }
}

/// Every loaded sheet, indexed for lookup.
#[derive(Clone, Debug, Default)]
pub struct PriceBook {
    models: Vec<Model>,
    providers: BTreeMap<String, ProviderSheet>,
    gateways: BTreeMap<String, Gateway>,
    index: resolve::Index,
    overrides: Vec<ProjectOverride>,
    deployments: Vec<Deployment>,
    /// Sheet names in load order, for `pricing check`.
    sheets: Vec<String>,
    /// (provider, model id, regex) from the sheets, compiled by `rebuild_index`.
    pending_patterns: Vec<(String, String, String)>,
    /// (provider, lower-case id or alias) of every model loaded: a catalog model with a
    /// name already taken is left out.
    taken_names: foldhash::HashSet<(String, String)>,
    /// (provider, id) → position in `models`.
    positions: foldhash::HashMap<(String, String), usize>,
}

#[derive(Debug, Clone, Default)]
struct ProviderSheet {
    modifiers: sheet::Modifiers,
}

impl PriceBook {
    /// The sheets shipped in `pricing/`, compiled into the binary.
    pub fn builtin() -> Result<PriceBook, PricingError> {
        PriceBook::from_texts(builtin_sheets().map(|(n, t)| (n.to_owned(), t.to_owned())))
    }

    /// Loads sheets in order; a later sheet for the same provider replaces models with
    /// the same id and adds the rest (local sheets overlay the built-in ones).
    pub fn from_texts(
        sheets: impl IntoIterator<Item = (String, String)>,
    ) -> Result<PriceBook, PricingError> {
        let mut parsed = Vec::new();
        let mut errors = Vec::new();
        for (name, text) in sheets {
            // A `.json` file is a catalog: every sheet of one source, as a JSON array.
            if name.ends_with(".json") {
                match serde_json::from_str::<Vec<SheetFile>>(&text) {
                    Ok(files) => parsed.extend(
                        files
                            .into_iter()
                            .map(|file| (format!("{name}:{}", file.provider), file)),
                    ),
                    Err(error) => errors.push(invalid(&name, error.to_string())),
                }
                continue;
            }
            match toml::from_str::<SheetFile>(&text) {
                Ok(file) => parsed.push((name, file)),
                Err(error) => errors.push(invalid(&name, one_line(&error.to_string()))),
            }
        }
        if !errors.is_empty() {
            return Err(PricingError::Many(errors));
        }
        PriceBook::from_sheets(parsed)
    }

    pub fn from_sheets(sheets: Vec<(String, SheetFile)>) -> Result<PriceBook, PricingError> {
        let mut book = PriceBook::default();
        let mut errors = Vec::new();
        // Curated sheets before catalog ones (a catalog only fills in), and provider
        // sheets before gateways, so gateways can check their upstreams.
        let mut sheets = sheets;
        sheets.sort_by_key(|(_, file)| file.layer as u8);
        for (_, file) in &mut sheets {
            file.apply_defaults();
        }
        // A catalog lists a cloud or gateway as a provider: its models are that gateway's
        // own prices when a curated sheet makes it a gateway.
        let gateway_names: std::collections::HashSet<String> = sheets
            .iter()
            .filter(|(_, file)| file.kind == SheetKind::Gateway)
            .map(|(_, file)| crate::providers::canonical(&file.provider))
            .collect();
        let (providers, gateways): (Vec<_>, Vec<_>) = sheets.into_iter().partition(|(_, file)| {
            file.kind == SheetKind::Provider
                && !gateway_names.contains(&crate::providers::canonical(&file.provider))
        });
        for (name, file) in providers {
            if let Err(mut problems) = book.add_provider_sheet(&name, file) {
                errors.append(&mut problems);
            }
        }
        for (name, file) in gateways {
            if let Err(mut problems) = book.add_gateway_sheet(&name, file) {
                errors.append(&mut problems);
            }
        }
        if let Err(mut problems) = book.rebuild_index() {
            errors.append(&mut problems);
        }
        if errors.is_empty() {
            Ok(book)
        } else {
            Err(PricingError::Many(errors))
        }
    }

    /// The book with an organisation's negotiated prices and deployment names.
    pub fn with_terms(mut self, terms: LocalTerms) -> PriceBook {
        self.overrides = terms.overrides;
        self.deployments = terms.deployments;
        for deployment in &mut self.deployments {
            deployment.provider = crate::providers::canonical(&deployment.provider);
        }
        self
    }

    pub fn models(&self) -> &[Model] {
        &self.models
    }

    pub fn sheet_names(&self) -> &[String] {
        &self.sheets
    }

    pub fn providers(&self) -> impl Iterator<Item = &str> {
        self.providers.keys().map(String::as_str)
    }

    pub fn gateways(&self) -> impl Iterator<Item = &str> {
        self.gateways.keys().map(String::as_str)
    }

    fn add_provider_sheet(&mut self, name: &str, file: SheetFile) -> Result<(), Vec<PricingError>> {
        let provider = crate::providers::canonical(&file.provider);
        let mut errors = check_sheet_header(name, &file);
        if !file.upstreams.is_empty() || !file.bare_names.is_empty() {
            errors.push(invalid(
                name,
                "`upstreams` and `bare_names` are for gateway sheets",
            ));
        }
        for entry in &file.models {
            errors.extend(check_model(name, entry, SheetKind::Provider));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        self.sheets.push(name.to_owned());
        let provenance = Provenance::of(&file);
        let sheet = self.providers.entry(provider.clone()).or_default();
        // A later sheet's modifiers replace the earlier ones tier by tier.
        let modifiers = file.modifiers;
        if modifiers.batch.is_some() {
            sheet.modifiers.batch = modifiers.batch;
        }
        if modifiers.flex.is_some() {
            sheet.modifiers.flex = modifiers.flex;
        }
        if modifiers.priority.is_some() {
            sheet.modifiers.priority = modifiers.priority;
        }
        for entry in file.models {
            self.add_model(&provider, entry, name, &provenance);
        }
        Ok(())
    }

    fn add_gateway_sheet(&mut self, name: &str, file: SheetFile) -> Result<(), Vec<PricingError>> {
        let gateway_name = crate::providers::canonical(&file.provider);
        let mut errors = check_sheet_header(name, &file);
        if !file.modifiers.is_empty() {
            errors.push(invalid(
                name,
                "a gateway sheet has no modifiers; give its own prices per model",
            ));
        }
        // Fallback providers may be absent (a catalog left out): they are then skipped.
        for upstream in file.upstreams.values().chain(file.bare_names.iter()) {
            if !self.providers.contains_key(upstream) {
                errors.push(invalid(
                    name,
                    format!("upstream provider {upstream:?} has no provider sheet"),
                ));
            }
        }
        for entry in &file.models {
            errors.extend(check_model(name, entry, SheetKind::Gateway));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        self.sheets.push(name.to_owned());
        let provenance = Provenance::of(&file);
        let gateway = self.gateways.entry(gateway_name.clone()).or_default();
        gateway.upstreams.extend(file.upstreams);
        for (list, more) in [
            (&mut gateway.bare_names, file.bare_names),
            (&mut gateway.fallback, file.fallback),
        ] {
            for provider in more {
                if !list.contains(&provider) {
                    list.push(provider);
                }
            }
        }
        for entry in file.models {
            if let Some(upstream) = entry.upstream.clone() {
                let (provider, model) = upstream
                    .split_once('/')
                    .map(|(p, m)| (p.to_owned(), m.to_owned()))
                    .unwrap_or_default();
                let gateway = self.gateways.entry(gateway_name.clone()).or_default();
                gateway.mapped.retain(|(e, _, _)| e.id != entry.id);
                gateway.mapped.push((entry, provider, model));
            } else {
                // The gateway's own price list: a model of the gateway "provider".
                self.add_model(&gateway_name, entry, name, &provenance);
            }
        }
        Ok(())
    }

    /// Adds a curated model, or merges it into the model of the same provider and id
    /// that an earlier sheet loaded: prices are merged by date (a later sheet's price for
    /// the same day wins), aliases are joined. An overlay sheet thus corrects or extends
    /// the price history without erasing it. A catalog model only fills in: it is left
    /// out when any model of its provider already answers to one of its names.
    fn add_model(
        &mut self,
        provider: &str,
        entry: ModelEntry,
        sheet: &str,
        provenance: &Provenance,
    ) {
        let names: Vec<(String, String)> = std::iter::once(&entry.id)
            .chain(entry.aliases.iter())
            .map(|name| (provider.to_owned(), name.to_ascii_lowercase()))
            .collect();
        let same_id = self
            .positions
            .get(&(provider.to_owned(), entry.id.clone()))
            .map(|&position| self.models[position].provenance.layer);
        let taken = names.iter().any(|name| self.taken_names.contains(name));
        let keep = match (provenance.layer, same_id) {
            (Layer::Curated, _) => true,
            // A synced price extends a catalog model's history; a curated model stands.
            (Layer::Synced, Some(layer)) => layer != Layer::Curated,
            (Layer::Catalog | Layer::Synced, _) => !taken,
        };
        if !keep {
            return;
        }
        self.taken_names.extend(names);
        let model = Model::new(provider.to_owned(), &entry, sheet, provenance.clone());
        self.upsert_model(model);
        if let Some(pattern) = entry.pattern {
            self.pending_patterns
                .push((provider.to_owned(), entry.id, pattern));
        }
    }

    fn upsert_model(&mut self, model: Model) {
        let key = (model.provider.clone(), model.id.clone());
        let Some(&position) = self.positions.get(&key) else {
            self.positions.insert(key, self.models.len());
            self.models.push(model);
            return;
        };
        let existing = &mut self.models[position];
        for price in model.prices {
            existing.prices.retain(|p| p.from != price.from);
            existing.prices.push(price);
        }
        for alias in model.aliases {
            if !existing.aliases.contains(&alias) {
                existing.aliases.push(alias);
            }
        }
        existing.sheet = model.sheet;
        existing.provenance = model.provenance;
        existing.refresh_names();
    }

    fn rebuild_index(&mut self) -> Result<(), Vec<PricingError>> {
        let mut errors = Vec::new();
        let mut index = resolve::Index::default();
        // Curated names first: a clash between two curated models is an error. Catalog
        // names take what is left: a catalog name that clashes is skipped.
        for curated in [true, false] {
            for (position, model) in self.models.iter().enumerate() {
                if (model.provenance.layer == Layer::Curated) != curated {
                    continue;
                }
                for name in model.names() {
                    let Err(other) = index.insert(&model.provider, name, position) else {
                        continue;
                    };
                    let other = &self.models[other];
                    if curated && other.id != model.id {
                        errors.push(invalid(
                            &model.sheet,
                            format!(
                                "name {name:?} of {}/{} also names {}/{} (from {})",
                                model.provider, model.id, other.provider, other.id, other.sheet
                            ),
                        ));
                    }
                }
            }
        }
        // Then each name as records may decorate it (`us.anthropic.…-v1:0`, `eu/gpt-4o`,
        // `meta-llama/Llama-3.3-70B`): its bare form, where no other name took it.
        for (position, model) in self.models.iter().enumerate() {
            for name in model.names() {
                index.insert_bare(&model.provider, name, position);
            }
        }
        for (provider, id, pattern) in &self.pending_patterns {
            let position = self
                .models
                .iter()
                .position(|m| &m.provider == provider && &m.id == id);
            match (regex::Regex::new(&format!("^(?:{pattern})$")), position) {
                (Ok(regex), Some(position)) => {
                    index.patterns.push((provider.clone(), regex, position))
                }
                (Err(error), _) => errors.push(invalid(
                    provider,
                    format!(
                        "model {id:?}: bad pattern {pattern:?}: {}",
                        one_line(&error.to_string())
                    ),
                )),
                (Ok(_), None) => {}
            }
        }
        self.index = index;
        // Gateway mappings must point at a model that exists.
        for (gateway_name, gateway) in &self.gateways {
            for (entry, provider, model) in &gateway.mapped {
                if self.index.lookup(provider, model).is_none() {
                    errors.push(invalid(
                        gateway_name,
                        format!(
                            "model {:?}: upstream {provider}/{model} is not in any provider sheet",
                            entry.id
                        ),
                    ));
                }
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// Finds the priced model for a name as a record wrote it.
    pub fn resolve(&self, provider: &str, model: &str) -> Option<Resolved<'_>> {
        // Records carry lower-case ids: copy only when there is something to lower.
        let provider: std::borrow::Cow<'_, str> =
            if provider.bytes().any(|b| b.is_ascii_uppercase()) {
                provider.to_ascii_lowercase().into()
            } else {
                provider.into()
            };
        let provider = provider.as_ref();
        let model = self
            .deployments
            .iter()
            .find(|d| d.provider == provider && d.name.eq_ignore_ascii_case(model))
            .map_or(model, |d| d.model.as_str());
        // `azure/eu/gpt-4o` for provider `azure` is `eu/gpt-4o`, unless the provider
        // lists the prefixed name itself (Perplexity's `perplexity/sonar`).
        let names_provider = |prefix: &str| {
            prefix.eq_ignore_ascii_case(provider)
                || crate::providers::known(prefix).is_some_and(|id| id == provider)
        };
        let model = match model.split_once('/') {
            Some((prefix, rest))
                if !rest.is_empty()
                    && names_provider(prefix)
                    && self.index.exact(provider, model).is_none() =>
            {
                rest
            }
            _ => model,
        };
        if let Some(gateway) = self.gateways.get(provider) {
            return self.resolve_in_gateway(provider, gateway, model);
        }
        let found = self.index.lookup(provider, model)?;
        Some(Resolved {
            model: &self.models[found],
            via: None,
        })
    }

    fn resolve_in_gateway<'b>(
        &'b self,
        gateway_name: &str,
        gateway: &'b Gateway,
        model: &str,
    ) -> Option<Resolved<'b>> {
        let via = self
            .gateways
            .get_key_value(gateway_name)
            .map(|(k, _)| k.as_str());
        // Curated prices first: its own, then the upstream list price its curated sheet
        // maps to; then catalog prices: its own, then upstream ones; its fallback last.
        let curated = |r: &Resolved<'_>| r.model.provenance.layer == Layer::Curated;
        let own = self
            .index
            .lookup(gateway_name, model)
            .map(|found| Resolved {
                model: &self.models[found],
                via: None,
            });
        if let Some(own) = own.filter(curated) {
            return Some(own);
        }
        let upstream = self.resolve_upstream(gateway, via, model);
        upstream.filter(curated).or(own).or(upstream).or_else(|| {
            gateway.fallback.iter().find_map(|provider| {
                let found = self.index.lookup(provider, model)?;
                Some(Resolved {
                    model: &self.models[found],
                    via,
                })
            })
        })
    }

    /// What a gateway's curated sheet maps a name to: an explicit mapping, a vendor
    /// prefix (`openai/gpt-5.2`), or a bare name of one of its upstreams.
    fn resolve_upstream<'b>(
        &'b self,
        gateway: &'b Gateway,
        via: Option<&'b str>,
        model: &str,
    ) -> Option<Resolved<'b>> {
        let (name, _suffix) = resolve::split_gateway_suffix(model);
        for (entry, provider, upstream_model) in &gateway.mapped {
            let matches = std::iter::once(&entry.id)
                .chain(entry.aliases.iter())
                .any(|alias| normalise_name(alias) == normalise_name(name));
            if matches {
                let found = self.index.lookup(provider, upstream_model)?;
                return Some(Resolved {
                    model: &self.models[found],
                    via,
                });
            }
        }
        if let Some((vendor, rest)) = name.split_once('/')
            && let Some(provider) = gateway.upstreams.get(&vendor.to_ascii_lowercase())
        {
            let found = self.index.lookup(provider, rest)?;
            return Some(Resolved {
                model: &self.models[found],
                via,
            });
        }
        gateway.bare_names.iter().find_map(|provider| {
            let found = self.index.lookup(provider, name)?;
            Some(Resolved {
                model: &self.models[found],
                via,
            })
        })
    }

    /// The model a sheet names exactly (by id or alias) for a provider.
    pub fn exact_model(&self, provider: &str, name: &str) -> Option<&Model> {
        self.index
            .exact(&provider.to_ascii_lowercase(), name)
            .map(|position| &self.models[position])
    }

    /// The provider whose sheet lists a model, when a record names none: the one curated
    /// sheet that lists it, else the one model maker (OpenAI, Anthropic, …) whose catalog
    /// does. Hosts, clouds and gateways resell models and are never inferred; a name
    /// that several candidates list (or none) infers nothing.
    pub fn infer_provider(&self, model: &str) -> Option<String> {
        if let Some((vendor, _)) = model.split_once('/') {
            let vendor = crate::providers::canonical(vendor);
            let curated = self
                .models
                .iter()
                .any(|m| m.provider == vendor && m.provenance.layer == Layer::Curated);
            if curated {
                return Some(vendor);
            }
        }
        let mut curated: Vec<&str> = Vec::new();
        let mut makers: Vec<&str> = Vec::new();
        for provider in self.providers.keys() {
            let Some(position) = self.index.lookup(provider, model) else {
                continue;
            };
            let found = &self.models[position];
            if found.provenance.layer == Layer::Curated {
                curated.push(provider);
            } else if crate::providers::is_maker(provider) && !found.id.contains('/') {
                // `openai/gpt-5.5` in Perplexity's list is OpenAI's model, resold.
                makers.push(provider);
            }
        }
        match (curated.as_slice(), makers.as_slice()) {
            ([one], _) | ([], [one]) => Some((*one).to_owned()),
            // Several makers list it (a cloud's catalog filed under its maker): the one
            // whose family the name is.
            ([], several) => crate::providers::maker_of(model)
                .filter(|maker| several.contains(maker))
                .map(str::to_owned),
            _ => None,
        }
    }

    /// Prices one record with the price in force at its time.
    pub fn price(&self, record: &UsageRecord) -> PriceOutcome {
        let Some(resolved) = self.resolve(&record.provider, &record.model) else {
            return PriceOutcome::Unpriced(Unpriced {
                reason: format!(
                    "no price for model {:?} of provider {:?}",
                    record.model, record.provider
                ),
                resolved_model: None,
            });
        };
        let model = resolved.model;
        let unpriced = |reason: String| {
            PriceOutcome::Unpriced(Unpriced {
                reason,
                resolved_model: Some(resolved.name()),
            })
        };
        let Some((position, entry)) = model.price_at(record.time) else {
            return unpriced(format!(
                "no price for {} in force at {}: its first price starts {}",
                resolved.name(),
                crate::usage::format_time(&record.time),
                model
                    .prices
                    .first()
                    .map(|p| p.from.to_string())
                    .unwrap_or_default()
            ));
        };
        // OpenRouter names its batch endpoint with a `:batch` suffix (unless the sheet
        // lists the batch name with its own, already discounted, price).
        let batch_suffix = record
            .model
            .rsplit_once(':')
            .is_some_and(|(_, suffix)| suffix.eq_ignore_ascii_case("batch"))
            && !model
                .names()
                .any(|name| name.eq_ignore_ascii_case(&record.model));
        let tier = if record.batch || batch_suffix {
            Tier::Batch
        } else {
            match record.service_tier.as_str() {
                "default" => Tier::Standard,
                "flex" => Tier::Flex,
                "priority" => Tier::Priority,
                other => {
                    return unpriced(format!(
                        "no price for service tier {other:?} of {}",
                        resolved.name()
                    ));
                }
            }
        };
        let long_context = entry
            .long_context
            .as_ref()
            .is_some_and(|lc| record.tokens.total_input() > lc.above);
        let modifiers = self.providers.get(&model.provider).map(|s| &s.modifiers);
        let modifier = |tier: Tier| modifiers.and_then(|m| m.get(tier));
        let mut rates = match tier_rates(entry, modifier(tier), tier, long_context) {
            Some(rates) => rates,
            None => {
                return unpriced(format!("no {tier} price for {}", resolved.name()));
            }
        };
        // At some hours of the day the standard rates are others (off-peak discounts).
        let window = (tier == Tier::Standard && !long_context)
            .then(|| entry.daily.iter().find(|w| w.contains(record.time)))
            .flatten();
        if let Some(window) = window {
            overlay(&mut rates, &window.rates());
        }
        // Rates by the search context the record asked for (Perplexity's request fee).
        let context = record
            .search_context
            .as_deref()
            .and_then(|size| entry.search_context.get(size));
        if let Some(context) = context {
            overlay(&mut rates, &context.rates());
        }
        // List price: the standard (or priority) rates, without batch or flex discounts.
        let list_rates_given = match tier {
            Tier::Standard | Tier::Priority => rates,
            Tier::Batch | Tier::Flex => {
                let mut standard = standard_rates(entry, long_context);
                if let Some(context) = context {
                    overlay(&mut standard, &context.rates());
                }
                standard
            }
        };
        // Defaults are filled last, so a reasoning rate follows the output rate of the
        // hour, context or negotiated price that applies, not the standard one.
        let mut list_rates = list_rates_given;
        fill_defaults(&mut list_rates);
        let override_ = self.project_override(&record.project, model);
        let multiplier = override_.and_then(|o| o.multiplier).unwrap_or(Decimal::ONE);
        let negotiated = |rates: &mut RateTable| {
            if let Some(override_) = override_ {
                overlay(rates, &override_.rates.rates());
            }
            fill_defaults(rates);
        };
        negotiated(&mut rates);

        let charges = match charges(&record.tokens, &rates) {
            Ok(charges) => charges,
            Err(bucket) => {
                return unpriced(format!(
                    "no {bucket} price for {} ({tier} tier)",
                    resolved.name()
                ));
            }
        };
        // (A multiplication per bucket is a measurable share of pricing: skipped at 1.)
        let bucket_costs = if multiplier == Decimal::ONE {
            charges.shares
        } else {
            charges.shares.map(|share| share * multiplier)
        };
        let cost = round_money(charges.total * multiplier);
        let list_cost = match list_cost_exact(&record.tokens, &list_rates, &rates) {
            Some(list) => round_money(list),
            None => cost,
        };
        // Savings split so that list − cost = cache + batch + negotiated (the remainder):
        // caching is valued at the non-discounted tier's rates, batch is what the
        // discounted tier took off the record as it was (cached tokens and all).
        let standard = match tier {
            Tier::Standard | Tier::Priority => None,
            Tier::Batch | Tier::Flex => {
                let mut standard = list_rates_given;
                negotiated(&mut standard);
                Some(standard)
            }
        };
        let undiscounted = standard.as_ref().unwrap_or(&rates);
        // Rounded per step, so the parts add up to list − cost to the nano-dollar.
        let at_undiscounted =
            |tokens: &Tokens| exact_cost(tokens, undiscounted).map(|c| round_money(c * multiplier));
        let undiscounted_cost = match standard {
            Some(_) => at_undiscounted(&record.tokens),
            None => Some(cost),
        };
        let cache_savings = if record.tokens.cached_total() == 0 {
            Decimal::ZERO
        } else {
            match (
                at_undiscounted(&record.tokens.uncached()),
                undiscounted_cost,
            ) {
                (Some(uncached), Some(cached)) => (uncached - cached).normalize(),
                _ => Decimal::ZERO,
            }
        };
        let batch_savings =
            undiscounted_cost.map_or(Decimal::ZERO, |standard| (standard - cost).normalize());
        let partial = (!charges.unpriced.is_empty()).then(|| {
            let parts: Vec<String> = charges
                .unpriced
                .iter()
                .map(|(bucket, count)| format!("{count} {bucket} {}", bucket.unit_name()))
                .collect();
            format!(
                "no {} price for {} ({tier} tier): {} not priced",
                charges
                    .unpriced
                    .iter()
                    .map(|(bucket, _)| bucket.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                resolved.name(),
                parts.join(", ")
            )
        });
        let mut price_ref = String::with_capacity(64);
        if let Some(gateway) = resolved.via {
            price_ref.push_str(gateway);
            price_ref.push(':');
        }
        price_ref.push_str(&model.price_refs[position]);
        if tier != Tier::Standard {
            price_ref.push('+');
            price_ref.push_str(tier.as_str());
        }
        if long_context {
            price_ref.push_str("+long_context");
        }
        if let Some(window) = window {
            price_ref.push_str("+hours:");
            price_ref.push_str(&window.label());
        }
        if override_.is_some() {
            price_ref.push_str("+override:");
            price_ref.push_str(&record.project);
        }
        PriceOutcome::Priced(Box::new(Priced {
            cost,
            list_cost,
            price_ref,
            resolved_model: resolved.name(),
            model_id: model.id.clone(),
            bucket_costs,
            cache_savings,
            batch_savings,
            partial,
        }))
    }

    fn project_override(&self, project: &str, model: &Model) -> Option<&ProjectOverride> {
        self.overrides
            .iter()
            .filter(|o| o.project == project)
            .filter(|o| o.provider.as_deref().is_none_or(|p| p == model.provider))
            .filter(|o| {
                o.model.as_deref().is_none_or(|m| {
                    normalise_name(m) == normalise_name(&model.id)
                        || model
                            .aliases
                            .iter()
                            .any(|a| normalise_name(a) == normalise_name(m))
                })
            })
            .max_by_key(|o| (o.model.is_some(), o.provider.is_some()))
    }

    /// The rates of one tier of a price entry, contract defaults filled in; `None` when
    /// the sheet offers no such tier. For display and what-if comparisons.
    pub fn tier_table(
        &self,
        model: &Model,
        entry: &PriceEntry,
        tier: Tier,
        long_context: bool,
    ) -> Option<RateTable> {
        let modifier = self
            .providers
            .get(&model.provider)
            .and_then(|s| s.modifiers.get(tier));
        let mut rates = tier_rates(entry, modifier, tier, long_context)?;
        fill_defaults(&mut rates);
        Some(rates)
    }

    /// Every rate table of a price, labelled for display (`pricing check`, `/v1/prices`):
    /// each tier offered, each again above the long-context threshold (`batch >200000`),
    /// and the standard rates for each search context size (`search context high`).
    pub fn tier_tables(&self, model: &Model, entry: &PriceEntry) -> Vec<(String, RateTable)> {
        let mut tables = Vec::new();
        let thresholds =
            std::iter::once(None).chain(entry.long_context.as_ref().map(|lc| Some(lc.above)));
        for above in thresholds {
            for tier in [Tier::Standard, Tier::Batch, Tier::Flex, Tier::Priority] {
                let Some(table) = self
                    .tier_table(model, entry, tier, above.is_some())
                    .filter(|t| t.iter().any(Option::is_some))
                else {
                    continue;
                };
                let label = match above {
                    Some(above) => format!("{tier} >{above}"),
                    None => tier.to_string(),
                };
                tables.push((label, table));
            }
        }
        if let Some(standard) = self.tier_table(model, entry, Tier::Standard, false) {
            for (size, fields) in &entry.search_context {
                let mut table = standard;
                overlay(&mut table, &fields.rates());
                tables.push((format!("search context {size}"), table));
            }
        }
        tables
    }

    /// The price of a model in force at a time, for display (`pricing check MODEL`).
    pub fn entry_at<'m>(&self, model: &'m Model, time: DateTime<Utc>) -> Option<&'m PriceEntry> {
        model.price_at(time).map(|(_, entry)| entry)
    }

    /// Models that are cheaper than `model` for the same tokens, by the same provider:
    /// the routing advice of the what-if report. Exact, list prices, on `date`.
    pub fn provider_models(&self, provider: &str) -> impl Iterator<Item = &Model> {
        let provider = provider.to_owned();
        self.models.iter().filter(move |m| m.provider == provider)
    }
}

/// The rates of one tier: explicit tier rates where the sheet gives them, the standard
/// rates times the tier's modifier elsewhere. `None` when the tier is not offered.
/// Modifiers discount tokens only: per-call and per-request fees are not tiered.
fn tier_rates(
    entry: &PriceEntry,
    modifier: Option<&Modifier>,
    tier: Tier,
    long_context: bool,
) -> Option<RateTable> {
    let standard = standard_rates(entry, long_context);
    if tier == Tier::Standard {
        return Some(standard);
    }
    let explicit = entry.tier(tier);
    if explicit.is_none() && modifier.is_none() {
        return None;
    }
    let mut rates: RateTable = match modifier {
        Some(modifier) => {
            let mut rates = standard;
            for bucket in Bucket::ALL {
                if !bucket.is_tokens() || modifier.except.contains(&bucket) {
                    continue;
                }
                let slot = &mut rates[bucket.index()];
                *slot = slot.map(|rate| rate * modifier.multiplier);
            }
            // A bucket the modifier leaves alone keeps its standard rate, defaults
            // included (filled here, or it would default to a discounted rate later).
            let mut filled = standard;
            fill_defaults(&mut filled);
            for bucket in &modifier.except {
                rates[bucket.index()] = filled[bucket.index()];
            }
            rates
        }
        None => {
            // Explicit tier rates alone: fees that are not tokens stay what they are.
            let mut rates = [None; Bucket::COUNT];
            for bucket in Bucket::ALL.into_iter().filter(|b| !b.is_tokens()) {
                rates[bucket.index()] = standard[bucket.index()];
            }
            rates
        }
    };
    if let Some(explicit) = explicit {
        let rates_of_tier = if long_context {
            explicit.long_context.clone().unwrap_or_default().rates()
        } else {
            explicit.rates()
        };
        overlay(&mut rates, &rates_of_tier);
    }
    Some(rates)
}

/// The standard rates; with `long_context`, the long-context rates, which keep the
/// standard rate of every bucket past the six text ones they leave out.
fn standard_rates(entry: &PriceEntry, long_context: bool) -> RateTable {
    match (&entry.long_context, long_context) {
        (Some(lc), true) => {
            let mut rates = lc.rates();
            let standard = entry.rates();
            for bucket in Bucket::ALL.into_iter().filter(|b| !b.is_text()) {
                let slot = &mut rates[bucket.index()];
                if slot.is_none() {
                    *slot = standard[bucket.index()];
                }
            }
            rates
        }
        _ => entry.rates(),
    }
}

/// Replaces rates with the ones `over` gives; buckets it leaves out keep theirs.
fn overlay(rates: &mut RateTable, over: &RateTable) {
    for (slot, rate) in rates.iter_mut().zip(over) {
        if rate.is_some() {
            *slot = *rate;
        }
    }
}

/// The contract's defaults for buckets a sheet leaves out: a 5-minute cache write costs
/// the input rate, reasoning costs the output rate, and an image input token the input
/// rate (OpenAI, Anthropic and Google bill image input as text unless a sheet says
/// otherwise). Cache reads and 1-hour writes have no default: without a rate such tokens
/// make the record unpriced. Audio tokens, image output and per-call charges have no
/// default either, and never take a text rate: without their own rate the record is
/// priced for the rest and marked partial.
fn fill_defaults(rates: &mut RateTable) {
    let input = rates[Bucket::Input.index()];
    let output = rates[Bucket::Output.index()];
    for (bucket, default) in [
        (Bucket::CacheWrite5m, input),
        (Bucket::Reasoning, output),
        (Bucket::ImageInput, input),
    ] {
        let slot = &mut rates[bucket.index()];
        if slot.is_none() {
            *slot = default;
        }
    }
}

/// What one bucket's count costs at its rate, exactly, in USD.
fn charge(bucket: Bucket, count: u64, rate: Decimal) -> Decimal {
    let amount = Decimal::from(count) * rate;
    match bucket.measure() {
        Measure::Tokens => per_million(amount),
        Measure::Calls | Measure::Request => amount,
    }
}

/// One record's usage at a rate table: each bucket's exact share, their sum, and the
/// buckets past the six text ones that had usage but no rate.
struct Charges {
    shares: [Decimal; Bucket::COUNT],
    total: Decimal,
    unpriced: Vec<(Bucket, u64)>,
}

/// Visits every bucket one request uses with what it costs (`None`: the sheet has no rate
/// for it), then the per-request fee where the sheet gives one. A text bucket without a
/// rate is an error (the record is unpriced, as the contract says); any other bucket
/// without one is left for the caller to count as partial.
fn each_charge(
    tokens: &Tokens,
    rates: &RateTable,
    mut visit: impl FnMut(Bucket, u64, Option<Decimal>),
) -> Result<(), Bucket> {
    for &bucket in tokens.buckets_in_use() {
        let count = tokens.get(bucket);
        if count == 0 {
            continue;
        }
        match rates[bucket.index()] {
            Some(rate) => visit(bucket, count, Some(charge(bucket, count, rate))),
            None if bucket.is_text() => return Err(bucket),
            None => visit(bucket, count, None),
        }
    }
    if let Some(fee) = rates[Bucket::Request.index()] {
        visit(Bucket::Request, 1, Some(fee));
    }
    Ok(())
}

/// Prices every bucket of one request: each one's share, the total, and what had no rate
/// (the record is then priced for what is known and marked partial).
fn charges(tokens: &Tokens, rates: &RateTable) -> Result<Charges, Bucket> {
    let mut charges = Charges {
        shares: [Decimal::ZERO; Bucket::COUNT],
        total: Decimal::ZERO,
        unpriced: Vec::new(),
    };
    each_charge(tokens, rates, |bucket, count, cost| match cost {
        Some(share) => {
            charges.shares[bucket.index()] = share;
            charges.total += share;
        }
        None => charges.unpriced.push((bucket, count)),
    })?;
    Ok(charges)
}

/// The request at list price: every bucket at its modality's uncached standard rate
/// (`Bucket::list_bucket`). `None` when the input or output rate is missing.
fn list_cost_exact(tokens: &Tokens, rates: &RateTable, charged: &RateTable) -> Option<Decimal> {
    rates[Bucket::Input.index()]?;
    rates[Bucket::Output.index()]?;
    let mut total = Decimal::ZERO;
    let used = tokens.buckets_in_use().iter().map(|&b| (b, tokens.get(b)));
    for (bucket, count) in used.chain([(Bucket::Request, 1)]) {
        // Usage the cost leaves out (a partial price) is left out of the list price too,
        // or it would show as savings.
        if count == 0 || (!bucket.is_text() && charged[bucket.index()].is_none()) {
            continue;
        }
        let list = bucket.list_bucket();
        if let Some(rate) = rates[list.index()] {
            total += charge(list, count, rate);
        }
    }
    Some(total)
}

/// `amount / 1_000_000`, exactly: rates are per million tokens, and dividing by a power
/// of ten is a change of scale, far cheaper than a decimal division.
fn per_million(amount: Decimal) -> Decimal {
    let mut result = amount;
    if result.set_scale(amount.scale() + 6).is_ok() {
        result
    } else {
        amount / Decimal::from(1_000_000)
    }
}

/// Rounds once, half to even, to 1e-9 USD, and drops trailing zeros.
pub fn round_money(amount: Decimal) -> Decimal {
    amount
        .round_dp_with_strategy(COST_DECIMALS, RoundingStrategy::MidpointNearestEven)
        .normalize()
}

/// The exact, unrounded cost of one request with `tokens` at `rates` (per-request fee
/// included; buckets past the text ones without a rate left out, as in a partial
/// price); `None` when a text bucket has no rate. For tests and what-if comparisons.
pub fn exact_cost(tokens: &Tokens, rates: &RateTable) -> Option<Decimal> {
    // Without the shares `charges` keeps: this runs twice more per record (savings).
    let mut total = Decimal::ZERO;
    each_charge(tokens, rates, |_, _, cost| {
        total += cost.unwrap_or_default()
    })
    .ok()?;
    Some(total)
}

/// Standard rates of an entry with the contract defaults filled in.
pub fn standard_table(entry: &PriceEntry) -> RateTable {
    let mut rates = standard_rates(entry, false);
    fill_defaults(&mut rates);
    rates
}

fn check_sheet_header(name: &str, file: &SheetFile) -> Vec<PricingError> {
    let mut errors = Vec::new();
    let provider = file.provider.trim();
    if provider.is_empty() || provider.contains(['/', ':', ' ']) {
        errors.push(invalid(
            name,
            format!("bad provider name {:?}", file.provider),
        ));
    }
    if file.source.as_list().iter().all(|s| s.trim().is_empty()) {
        errors.push(invalid(
            name,
            "missing `source`: say where the prices were read",
        ));
    }
    errors
}

fn check_model(sheet: &str, entry: &ModelEntry, kind: SheetKind) -> Vec<PricingError> {
    let mut errors = Vec::new();
    let id = &entry.id;
    if id.trim().is_empty() {
        errors.push(invalid(sheet, "a model has an empty id"));
    }
    match (kind, &entry.upstream, entry.prices.is_empty()) {
        (SheetKind::Provider, Some(_), _) => errors.push(invalid(
            sheet,
            format!("model {id:?}: `upstream` is for gateway sheets"),
        )),
        (_, None, true) => errors.push(invalid(sheet, format!("model {id:?} has no price"))),
        (SheetKind::Gateway, Some(upstream), _) => {
            if !upstream.contains('/') {
                errors.push(invalid(
                    sheet,
                    format!("model {id:?}: upstream {upstream:?} must be provider/model"),
                ));
            }
            if !entry.prices.is_empty() {
                errors.push(invalid(
                    sheet,
                    format!("model {id:?}: give either `upstream` or prices, not both"),
                ));
            }
        }
        _ => {}
    }
    let mut dates: Vec<Effective> = entry.prices.iter().map(|p| p.from).collect();
    dates.sort();
    for pair in dates.windows(2) {
        if pair[0] == pair[1] {
            errors.push(invalid(
                sheet,
                format!(
                    "model {id:?}: two prices start on {} (overlapping dates)",
                    pair[0]
                ),
            ));
        }
    }
    for price in &entry.prices {
        let at = format!("model {id:?} price from {}", price.from);
        if price.input.is_none() || price.output.is_none() {
            errors.push(invalid(
                sheet,
                format!("{at}: `input` and `output` are required"),
            ));
        }
        if let Some(lc) = &price.long_context {
            if lc.above == 0 {
                errors.push(invalid(
                    sheet,
                    format!("{at}: long_context.above must be positive"),
                ));
            }
            for bucket in Bucket::TEXT {
                let i = bucket.index();
                if price.rates()[i].is_some() && lc.rates()[i].is_none() {
                    errors.push(invalid(
                        sheet,
                        format!(
                            "{at}: long_context has no {bucket} rate but the standard price does"
                        ),
                    ));
                }
            }
        }
        for (tier, rates) in [
            ("batch", &price.batch),
            ("flex", &price.flex),
            ("priority", &price.priority),
        ] {
            if let Some(rates) = rates
                && rates.long_context.is_some()
                && price.long_context.is_none()
            {
                errors.push(invalid(
                    sheet,
                    format!("{at}: {tier}.long_context without a standard long_context threshold"),
                ));
            }
        }
    }
    errors
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl fmt::Display for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.provider, self.id)
    }
}

/// The price book in force, shared by everything that prices; replaced whole when synced
/// prices change. A reader keeps the book it took for as long as it uses it, so one
/// request or batch is priced by one book.
#[derive(Clone, Debug)]
pub struct LiveBook(std::sync::Arc<std::sync::RwLock<std::sync::Arc<PriceBook>>>);

impl LiveBook {
    pub fn new(book: PriceBook) -> LiveBook {
        LiveBook::from(std::sync::Arc::new(book))
    }

    /// The book in force now.
    pub fn current(&self) -> std::sync::Arc<PriceBook> {
        match self.0.read() {
            Ok(book) => book.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn replace(&self, book: impl Into<std::sync::Arc<PriceBook>>) {
        let book = book.into();
        match self.0.write() {
            Ok(mut slot) => *slot = book,
            Err(poisoned) => *poisoned.into_inner() = book,
        }
    }
}

impl From<std::sync::Arc<PriceBook>> for LiveBook {
    fn from(book: std::sync::Arc<PriceBook>) -> LiveBook {
        LiveBook(std::sync::Arc::new(std::sync::RwLock::new(book)))
    }
}

/// Caches name resolution for a stream of records (most records repeat a few names).
#[derive(Default)]
pub struct ResolveCache {
    inferred: foldhash::HashMap<String, Option<String>>,
}

impl ResolveCache {
    pub fn infer_provider(&mut self, book: &PriceBook, model: &str) -> Option<String> {
        if let Some(found) = self.inferred.get(model) {
            return found.clone();
        }
        let found = book.infer_provider(model);
        self.inferred.insert(model.to_owned(), found.clone());
        found
    }
}
