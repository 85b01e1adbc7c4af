//! Spend: usage and cost grouped by any dimensions, a time bucket in a timezone and
//! token type, answered from the store's hourly or daily aggregates. Day, week and month
//! buckets in a timezone and the token-type split are derived here, identically for
//! every backend.
//!
//! Time buckets are built from hourly rollups: in a timezone whose offset is a whole
//! number of hours (every IANA zone's DST included) they are exact; in a zone with a
//! half- or quarter-hour offset (Asia/Kolkata, Australia/Adelaide) each hour is counted
//! in the bucket its start falls in.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

use super::calendar::{bucket_start, hour_start};
use super::params::{GroupBy, SpendRequest};
use super::render::{Table, csv_text, money_column};
use crate::prepare::PricedRecord;
use crate::pricing::round_money;
use crate::store::{Dimension, Measures, Store, StoreError, UsageAggregate, UsageQuery};
use crate::usage::{Bucket, Tokens};

/// One row of a spend answer.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SpendRow {
    /// (key name, value) in `group_by` order.
    pub group: Vec<(String, String)>,
    pub requests: u64,
    pub unpriced_requests: u64,
    /// Requests priced for only part of their usage: their cost leaves something out.
    pub partial_requests: u64,
    pub tokens: Tokens,
    pub cost: Decimal,
    pub list_cost: Decimal,
    /// What the sources themselves said these requests cost, where any said so
    /// (`reported_requests > 0`); not split by token type.
    pub reported_requests: u64,
    pub reported_cost: Decimal,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SpendReport {
    pub rows: Vec<SpendRow>,
    pub total_requests: u64,
    pub total_cost: Decimal,
}

/// Answers a spend request from the store.
pub async fn spend(store: &dyn Store, request: &SpendRequest) -> Result<SpendReport, StoreError> {
    let aggregates = store
        .usage(&UsageQuery {
            from: request.from,
            to: request.to,
            group_by: request.store_dimensions(),
            filter: request.filter.clone(),
            measures: if request.by_token_type() {
                Measures::All
            } else {
                Measures::Spend
            },
        })
        .await?;
    Ok(build_report(request, aggregates))
}

/// The group values of one stored event, in `group_by` order: the key `build_report`
/// gives the row the event is counted in (the time bucket of the event's hour, as rows
/// are built from hours). Not for `token_type`, which splits an event across rows.
pub fn group_values(request: &SpendRequest, event: &PricedRecord) -> Vec<String> {
    let record = &event.record;
    request
        .group_by
        .iter()
        .map(|group_by| match group_by {
            GroupBy::Dimension(dimension) => match dimension {
                Dimension::Project => record.project.clone(),
                Dimension::Provider => record.provider.clone(),
                Dimension::Model => event.rollup_model().to_owned(),
                Dimension::ServiceTier => record.service_tier.clone(),
                Dimension::Batch => record.batch.to_string(),
                Dimension::ReasoningEffort => record.reasoning_effort.clone().unwrap_or_default(),
                Dimension::Tag(key) => record.tags.get(key).cloned().unwrap_or_default(),
                Dimension::Tags | Dimension::Hour | Dimension::Day | Dimension::Month => {
                    String::new()
                }
            },
            GroupBy::TokenType => String::new(),
            GroupBy::Time(bucket) => bucket_start(hour_start(record.time), *bucket, request.tz),
        })
        .collect()
}

/// Turns hourly (or daily) aggregates into the requested rows. Pure.
pub fn build_report(request: &SpendRequest, aggregates: Vec<UsageAggregate>) -> SpendReport {
    let by_token_type = request.by_token_type();
    let mut rows: BTreeMap<Vec<String>, SpendRow> = BTreeMap::new();
    let mut total_requests = 0;
    let mut total_cost = Decimal::ZERO;
    for aggregate in aggregates {
        total_requests += aggregate.requests;
        total_cost += aggregate.cost;
        let token_types: Vec<Option<Bucket>> = if by_token_type {
            Bucket::ALL.iter().map(|b| Some(*b)).collect()
        } else {
            vec![None]
        };
        for token_type in token_types {
            let mut dimension_values = aggregate.keys.iter();
            let mut group = Vec::with_capacity(request.group_by.len());
            for group_by in &request.group_by {
                let value = match group_by {
                    GroupBy::Dimension(_) => dimension_values.next().cloned().unwrap_or_default(),
                    GroupBy::TokenType => token_type
                        .map(|b| b.as_str().to_owned())
                        .unwrap_or_default(),
                    GroupBy::Time(bucket) => aggregate
                        .hour
                        .map(|hour| bucket_start(hour, *bucket, request.tz))
                        .unwrap_or_default(),
                };
                group.push((group_by.name(), value));
            }
            let key: Vec<String> = group.iter().map(|(_, v)| v.clone()).collect();
            let row = rows.entry(key).or_insert_with(|| SpendRow {
                group,
                ..SpendRow::default()
            });
            row.requests += aggregate.requests;
            row.unpriced_requests += aggregate.unpriced_requests;
            row.partial_requests += aggregate.partial_requests;
            match token_type {
                Some(bucket) => {
                    let mut tokens = Tokens::default();
                    tokens.set(bucket, aggregate.tokens.get(bucket));
                    row.tokens = row.tokens.add(&tokens);
                    row.cost += aggregate.bucket_costs[bucket.index()];
                }
                None => {
                    row.tokens = row.tokens.add(&aggregate.tokens);
                    row.cost += aggregate.cost;
                    row.list_cost += aggregate.list_cost;
                    row.reported_requests += aggregate.reported_requests;
                    row.reported_cost += aggregate.reported_cost;
                }
            }
        }
    }
    let mut rows: Vec<SpendRow> = rows.into_values().collect();
    if by_token_type {
        // A token type nobody in the group used is not a row (the request fee is a row
        // where one was charged).
        let used =
            |row: &SpendRow| row.tokens.iter().any(|(_, count)| count > 0) || !row.cost.is_zero();
        rows.retain(used);
        for row in &mut rows {
            row.cost = round_money(row.cost);
        }
    }
    SpendReport {
        rows,
        total_requests,
        total_cost: total_cost.normalize(),
    }
}

/// The JSON answer: `{"rows":[{…keys…,"requests","unpriced_requests",
/// "partially_priced_requests","tokens","cost_usd"[,"reported_cost_usd"]}],"total_cost_usd"}`.
/// `reported_cost_usd` is there where a source reported a cost of its own.
pub fn to_json(report: &SpendReport) -> Value {
    let rows: Vec<Value> = report
        .rows
        .iter()
        .map(|row| {
            let mut object = Map::new();
            for (name, value) in &row.group {
                object.insert(name.clone(), Value::String(value.clone()));
            }
            object.insert("requests".into(), json!(row.requests));
            object.insert("unpriced_requests".into(), json!(row.unpriced_requests));
            object.insert(
                "partially_priced_requests".into(),
                json!(row.partial_requests),
            );
            object.insert(
                "tokens".into(),
                serde_json::to_value(row.tokens).unwrap_or_default(),
            );
            object.insert(
                "cost_usd".into(),
                Value::String(row.cost.normalize().to_string()),
            );
            if row.reported_requests > 0 {
                object.insert(
                    "reported_cost_usd".into(),
                    Value::String(row.reported_cost.normalize().to_string()),
                );
            }
            Value::Object(object)
        })
        .collect();
    json!({
        "rows": rows,
        "total_requests": report.total_requests,
        "total_cost_usd": report.total_cost.normalize().to_string(),
    })
}

/// The CSV name of a bucket's count: `tokens_input`, or `web_search_calls` for a charge
/// that is not tokens.
fn count_header(bucket: Bucket) -> String {
    if bucket.is_tokens() {
        format!("tokens_{bucket}")
    } else {
        format!("{bucket}_{}", bucket.unit_name())
    }
}

/// CSV with a header: group keys, the request counts, every bucket's count, cost_usd and
/// reported_cost_usd (empty where no source reported one).
pub fn to_csv(request: &SpendRequest, report: &SpendReport) -> String {
    let mut header: Vec<String> = request.group_by.iter().map(GroupBy::name).collect();
    header.extend(["requests", "unpriced_requests", "partially_priced_requests"].map(String::from));
    header.extend(Bucket::COUNTED.map(count_header));
    header.extend(["cost_usd", "reported_cost_usd"].map(String::from));
    let rows: Vec<Vec<String>> = report
        .rows
        .iter()
        .map(|row| {
            let mut fields: Vec<String> = row.group.iter().map(|(_, v)| v.clone()).collect();
            fields.push(row.requests.to_string());
            fields.push(row.unpriced_requests.to_string());
            fields.push(row.partial_requests.to_string());
            fields.extend(row.tokens.iter().map(|(_, n)| n.to_string()));
            fields.push(row.cost.normalize().to_string());
            fields.push(if row.reported_requests > 0 {
                row.reported_cost.normalize().to_string()
            } else {
                String::new()
            });
            fields
        })
        .collect();
    csv_text(&header, &rows)
}

/// Columns a terminal table adds only when some row needs them.
struct ExtraColumns {
    audio: bool,
    image: bool,
    calls: bool,
    note: bool,
}

/// Audio tokens, image tokens and per-call units of a row, for the terminal table.
fn audio_image_calls(tokens: &Tokens) -> (u64, u64, u64) {
    let mut sums = (0, 0, 0);
    for (bucket, count) in tokens.iter() {
        match bucket {
            Bucket::AudioInput | Bucket::CachedAudioInput | Bucket::AudioOutput => sums.0 += count,
            Bucket::ImageInput | Bucket::ImageOutput => sums.1 += count,
            _ if !bucket.is_tokens() => sums.2 += count,
            _ => {}
        }
    }
    sums
}

/// What a row's cost leaves out, in words: `2 unpriced, 1 partly priced`.
fn gaps_note(unpriced: u64, partial: u64) -> String {
    let mut parts = Vec::new();
    if unpriced > 0 {
        parts.push(format!("{unpriced} unpriced"));
    }
    if partial > 0 {
        parts.push(format!("{partial} partly priced"));
    }
    parts.join(", ")
}

/// An aligned text table for terminals. Audio, image and per-call columns, and a note of
/// unpriced or partly priced requests, appear when some row has them.
pub fn to_table(request: &SpendRequest, report: &SpendReport) -> String {
    let sums: Vec<(u64, u64, u64)> = report
        .rows
        .iter()
        .map(|r| audio_image_calls(&r.tokens))
        .collect();
    let extra = ExtraColumns {
        audio: sums.iter().any(|s| s.0 > 0),
        image: sums.iter().any(|s| s.1 > 0),
        calls: sums.iter().any(|s| s.2 > 0),
        note: report
            .rows
            .iter()
            .any(|r| r.unpriced_requests > 0 || r.partial_requests > 0),
    };
    let mut header: Vec<String> = request.group_by.iter().map(GroupBy::name).collect();
    header.extend(
        [
            "requests",
            "input",
            "cached",
            "written",
            "output",
            "reasoning",
        ]
        .map(String::from),
    );
    for (shown, name) in [
        (extra.audio, "audio"),
        (extra.image, "image"),
        (extra.calls, "calls"),
    ] {
        if shown {
            header.push(name.into());
        }
    }
    header.push("cost_usd".into());
    if extra.note {
        header.push("not_in_cost".into());
    }
    let costs = money_column(
        report
            .rows
            .iter()
            .map(|row| row.cost)
            .chain([report.total_cost]),
    );
    let mut table = Table {
        header,
        keys: request.group_by.len(),
        ..Table::default()
    };
    for ((row, cost), &(audio, image, calls)) in report.rows.iter().zip(&costs).zip(&sums) {
        let mut line: Vec<String> = row.group.iter().map(|(_, v)| v.clone()).collect();
        line.push(row.requests.to_string());
        line.push(row.tokens.input.to_string());
        line.push(row.tokens.cached_input.to_string());
        line.push((row.tokens.cache_write_5m + row.tokens.cache_write_1h).to_string());
        line.push(row.tokens.output.to_string());
        line.push(row.tokens.reasoning.to_string());
        for (shown, value) in [
            (extra.audio, audio),
            (extra.image, image),
            (extra.calls, calls),
        ] {
            if shown {
                line.push(value.to_string());
            }
        }
        line.push(cost.clone());
        if extra.note {
            line.push(gaps_note(row.unpriced_requests, row.partial_requests));
        }
        table.rows.push(line);
    }
    let mut total = vec![String::new(); request.group_by.len()];
    total.push(report.total_requests.to_string());
    let blanks = 5 + [extra.audio, extra.image, extra.calls]
        .iter()
        .filter(|shown| **shown)
        .count();
    total.extend(std::iter::repeat_n(String::new(), blanks));
    total.push(costs.last().cloned().unwrap_or_default());
    table.set_total(total);
    table.text()
}
