//! Spend queries: the parameters of `GET /v1/spend` and `llm-meter report`, validated
//! here, answered from the store's hourly aggregates. Day, week and month buckets in a
//! timezone and the token-type split are derived in Rust, identically for every backend.
//!
//! Time buckets are built from hourly rollups: in a timezone whose offset is a whole
//! number of hours (every IANA zone's DST included) they are exact; in a zone with a
//! half- or quarter-hour offset (Asia/Kolkata, Australia/Adelaide) each hour is counted
//! in the bucket its start falls in.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

use crate::pricing::round_money;
use crate::store::{Dimension, Store, StoreError, UsageAggregate, UsageFilter, UsageQuery};
use crate::usage::{Bucket, Tokens};

/// A parameter that cannot be used; names the parameter.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid {parameter}: {message}")]
pub struct ParameterError {
    pub parameter: String,
    pub message: String,
}

fn invalid(parameter: &str, message: impl Into<String>) -> ParameterError {
    ParameterError {
        parameter: parameter.to_owned(),
        message: message.into(),
    }
}

/// A time bucket coarser than the store's hours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeBucket {
    Hour,
    Day,
    Week,
    Month,
}

/// One `group_by` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupBy {
    Dimension(Dimension),
    TokenType,
    Time(TimeBucket),
}

impl GroupBy {
    /// The key name in rows and CSV headers.
    pub fn name(&self) -> String {
        match self {
            GroupBy::Dimension(Dimension::Project) => "project".into(),
            GroupBy::Dimension(Dimension::Provider) => "provider".into(),
            GroupBy::Dimension(Dimension::Model) => "model".into(),
            GroupBy::Dimension(Dimension::ServiceTier) => "service_tier".into(),
            GroupBy::Dimension(Dimension::Batch) => "batch".into(),
            GroupBy::Dimension(Dimension::ReasoningEffort) => "reasoning_effort".into(),
            GroupBy::Dimension(Dimension::Tag(key)) => format!("tag:{key}"),
            GroupBy::Dimension(Dimension::Hour) | GroupBy::Time(TimeBucket::Hour) => "hour".into(),
            GroupBy::TokenType => "token_type".into(),
            GroupBy::Time(TimeBucket::Day) => "day".into(),
            GroupBy::Time(TimeBucket::Week) => "week".into(),
            GroupBy::Time(TimeBucket::Month) => "month".into(),
        }
    }
}

/// Names accepted in `group_by`, for error messages.
pub const GROUP_BY_NAMES: &str = "project, provider, model, service_tier, batch, reasoning_effort, token_type, tag:KEY, hour, day, week, month";

/// Parses `group_by=project,model,tag:team,day`.
pub fn parse_group_by(text: &str) -> Result<Vec<GroupBy>, ParameterError> {
    let mut groups = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let group = match part {
            "project" => GroupBy::Dimension(Dimension::Project),
            "provider" => GroupBy::Dimension(Dimension::Provider),
            "model" => GroupBy::Dimension(Dimension::Model),
            "service_tier" => GroupBy::Dimension(Dimension::ServiceTier),
            "batch" => GroupBy::Dimension(Dimension::Batch),
            "reasoning_effort" => GroupBy::Dimension(Dimension::ReasoningEffort),
            "token_type" => GroupBy::TokenType,
            "hour" => GroupBy::Time(TimeBucket::Hour),
            "day" => GroupBy::Time(TimeBucket::Day),
            "week" => GroupBy::Time(TimeBucket::Week),
            "month" => GroupBy::Time(TimeBucket::Month),
            other => match other.strip_prefix("tag:") {
                Some(key) => GroupBy::Dimension(Dimension::Tag(check_tag_key("group_by", key)?)),
                None => {
                    return Err(invalid(
                        "group_by",
                        format!("unknown group {other:?}; expected any of {GROUP_BY_NAMES}"),
                    ));
                }
            },
        };
        if groups.contains(&group) {
            return Err(invalid("group_by", format!("{part:?} is listed twice")));
        }
        groups.push(group);
    }
    if groups
        .iter()
        .filter(|g| matches!(g, GroupBy::Time(_)))
        .count()
        > 1
    {
        return Err(invalid("group_by", "at most one of hour, day, week, month"));
    }
    Ok(groups)
}

/// Tag keys are names, not expressions: letters, digits, `_`, `-`, `.`, at most 64 bytes.
pub fn check_tag_key(parameter: &str, key: &str) -> Result<String, ParameterError> {
    let valid = !key.is_empty()
        && key.len() <= 64
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if valid {
        Ok(key.to_owned())
    } else {
        Err(invalid(
            parameter,
            format!("{key:?} is not a tag name (letters, digits, _ - .)"),
        ))
    }
}

/// Parses an RFC 3339 time (a bare date means its midnight UTC).
pub fn parse_time(parameter: &str, text: &str) -> Result<DateTime<Utc>, ParameterError> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text.trim()) {
        return Ok(time.with_timezone(&Utc));
    }
    if let Ok(date) = NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d") {
        return Ok(Utc.from_utc_datetime(&date.and_hms_opt(0, 0, 0).expect("midnight")));
    }
    Err(invalid(
        parameter,
        format!("{text:?} is not an RFC 3339 time (2026-03-01T00:00:00Z)"),
    ))
}

pub fn parse_timezone(text: &str) -> Result<Tz, ParameterError> {
    text.trim().parse::<Tz>().map_err(|_| {
        invalid(
            "tz",
            format!("{text:?} is not an IANA timezone (Europe/Oslo)"),
        )
    })
}

/// A validated spend request.
#[derive(Clone, Debug, PartialEq)]
pub struct SpendRequest {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub group_by: Vec<GroupBy>,
    pub filter: UsageFilter,
    pub tz: Tz,
}

impl SpendRequest {
    pub fn new(
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        group_by: Vec<GroupBy>,
        filter: UsageFilter,
        tz: Tz,
    ) -> Result<Self, ParameterError> {
        if to <= from {
            return Err(invalid("to", "must be after from"));
        }
        Ok(SpendRequest {
            from,
            to,
            group_by,
            filter,
            tz,
        })
    }
}

/// One row of a spend answer.
#[derive(Clone, Debug, PartialEq)]
pub struct SpendRow {
    /// (key name, value) in `group_by` order.
    pub group: Vec<(String, String)>,
    pub requests: u64,
    pub unpriced_requests: u64,
    pub tokens: Tokens,
    pub cost: Decimal,
    pub list_cost: Decimal,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SpendReport {
    pub rows: Vec<SpendRow>,
    pub total_requests: u64,
    pub total_cost: Decimal,
}

/// Answers a spend request from the store.
pub async fn spend(store: &dyn Store, request: &SpendRequest) -> Result<SpendReport, StoreError> {
    let mut dimensions: Vec<Dimension> = request
        .group_by
        .iter()
        .filter_map(|g| match g {
            GroupBy::Dimension(d) => Some(d.clone()),
            _ => None,
        })
        .collect();
    let time_bucket = request.group_by.iter().find_map(|g| match g {
        GroupBy::Time(bucket) => Some(*bucket),
        _ => None,
    });
    if time_bucket.is_some() {
        dimensions.push(Dimension::Hour);
    }
    let aggregates = store
        .usage(&UsageQuery {
            from: request.from,
            to: request.to,
            group_by: dimensions,
            filter: request.filter.clone(),
        })
        .await?;
    Ok(build_report(request, aggregates))
}

/// Turns hourly aggregates into the requested rows. Pure.
pub fn build_report(request: &SpendRequest, aggregates: Vec<UsageAggregate>) -> SpendReport {
    let by_token_type = request.group_by.contains(&GroupBy::TokenType);
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
            if let Some(bucket) = token_type
                && aggregate.tokens.get(bucket) == 0
            {
                continue;
            }
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
                requests: 0,
                unpriced_requests: 0,
                tokens: Tokens::default(),
                cost: Decimal::ZERO,
                list_cost: Decimal::ZERO,
            });
            row.requests += aggregate.requests;
            row.unpriced_requests += aggregate.unpriced_requests;
            match token_type {
                Some(bucket) => {
                    let mut tokens = Tokens::default();
                    tokens.set(bucket, aggregate.tokens.get(bucket));
                    row.tokens = row.tokens.add(&tokens);
                    row.cost += aggregate.bucket_costs[crate::pricing::bucket_position(bucket)];
                }
                None => {
                    row.tokens = row.tokens.add(&aggregate.tokens);
                    row.cost += aggregate.cost;
                    row.list_cost += aggregate.list_cost;
                }
            }
        }
    }
    let mut rows: Vec<SpendRow> = rows.into_values().collect();
    if by_token_type {
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

/// The start of the bucket an hour falls in, in `tz`, as RFC 3339 with its offset.
pub fn bucket_start(hour: DateTime<Utc>, bucket: TimeBucket, tz: Tz) -> String {
    let local = hour.with_timezone(&tz);
    let date = local.date_naive();
    let start_date = match bucket {
        TimeBucket::Hour => {
            return local
                .with_minute(0)
                .and_then(|t| t.with_second(0))
                .unwrap_or(local)
                .to_rfc3339();
        }
        TimeBucket::Day => date,
        TimeBucket::Week => date - Duration::days(i64::from(date.weekday().num_days_from_monday())),
        TimeBucket::Month => date.with_day(1).unwrap_or(date),
    };
    // Midnight may not exist (a DST gap at 00:00): take the first instant of the day.
    let midnight = start_date.and_hms_opt(0, 0, 0).expect("midnight");
    let start = tz
        .from_local_datetime(&midnight)
        .earliest()
        .or_else(|| {
            tz.from_local_datetime(&(midnight + Duration::hours(1)))
                .earliest()
        })
        .unwrap_or(local);
    start.to_rfc3339()
}

/// The JSON answer: `{"rows":[{…keys…,"requests","tokens","cost_usd"}],"total_cost_usd"}`.
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
                "tokens".into(),
                serde_json::to_value(row.tokens).unwrap_or_default(),
            );
            object.insert(
                "cost_usd".into(),
                Value::String(row.cost.normalize().to_string()),
            );
            Value::Object(object)
        })
        .collect();
    json!({
        "rows": rows,
        "total_requests": report.total_requests,
        "total_cost_usd": report.total_cost.normalize().to_string(),
    })
}

/// CSV with a header: group keys, requests, unpriced_requests, the six buckets, cost_usd.
pub fn to_csv(request: &SpendRequest, report: &SpendReport) -> String {
    let mut out = String::new();
    let mut header: Vec<String> = request.group_by.iter().map(GroupBy::name).collect();
    header.extend(["requests".into(), "unpriced_requests".into()]);
    header.extend(Bucket::ALL.iter().map(|b| format!("tokens_{b}")));
    header.push("cost_usd".into());
    let _ = writeln!(
        out,
        "{}",
        header
            .iter()
            .map(|h| csv_field(h))
            .collect::<Vec<_>>()
            .join(",")
    );
    for row in &report.rows {
        let mut fields: Vec<String> = row.group.iter().map(|(_, v)| csv_field(v)).collect();
        fields.push(row.requests.to_string());
        fields.push(row.unpriced_requests.to_string());
        fields.extend(row.tokens.iter().map(|(_, n)| n.to_string()));
        fields.push(row.cost.normalize().to_string());
        let _ = writeln!(out, "{}", fields.join(","));
    }
    out
}

/// Quotes a CSV field when needed, and defuses spreadsheet formulas.
pub fn csv_field(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@']) && value.parse::<f64>().is_err() {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

/// An aligned text table for terminals.
pub fn to_table(request: &SpendRequest, report: &SpendReport) -> String {
    let mut header: Vec<String> = request.group_by.iter().map(GroupBy::name).collect();
    header.extend(
        [
            "requests",
            "input",
            "cached",
            "written",
            "output",
            "reasoning",
            "cost_usd",
        ]
        .map(String::from),
    );
    let mut lines = vec![header];
    for row in &report.rows {
        let mut line: Vec<String> = row.group.iter().map(|(_, v)| v.clone()).collect();
        line.push(row.requests.to_string());
        line.push(row.tokens.input.to_string());
        line.push(row.tokens.cached_input.to_string());
        line.push((row.tokens.cache_write_5m + row.tokens.cache_write_1h).to_string());
        line.push(row.tokens.output.to_string());
        line.push(row.tokens.reasoning.to_string());
        line.push(row.cost.normalize().to_string());
        lines.push(line);
    }
    let mut total = vec![String::new(); request.group_by.len()];
    if let Some(first) = total.first_mut() {
        *first = "total".into();
    }
    total.push(report.total_requests.to_string());
    total.extend(std::iter::repeat_n(String::new(), 5));
    total.push(report.total_cost.normalize().to_string());
    lines.push(total);
    let columns = lines[0].len();
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            lines
                .iter()
                .map(|l| l.get(c).map_or(0, |v| v.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let keys = request.group_by.len();
    let mut out = String::new();
    for (index, line) in lines.iter().enumerate() {
        if index == lines.len() - 1 {
            let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
            let _ = writeln!(out, "{}", rule.join("  "));
        }
        let cells: Vec<String> = line
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (cell, width))| {
                if i < keys {
                    format!("{cell:<width$}")
                } else {
                    format!("{cell:>width$}")
                }
            })
            .collect();
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_by_names_are_validated() {
        assert_eq!(
            parse_group_by("project, tag:team ,day").unwrap(),
            vec![
                GroupBy::Dimension(Dimension::Project),
                GroupBy::Dimension(Dimension::Tag("team".into())),
                GroupBy::Time(TimeBucket::Day)
            ]
        );
        for bad in [
            "projects",
            "tag:",
            "tag:a b",
            "tag:x;drop",
            "day,month",
            "model,model",
        ] {
            let error = parse_group_by(bad).unwrap_err();
            assert_eq!(error.parameter, "group_by", "{bad}");
        }
    }

    #[test]
    fn buckets_follow_the_timezone_across_dst() {
        let oslo: Tz = "Europe/Oslo".parse().unwrap();
        // 2026-03-29 01:00 UTC is 03:00 CEST, after the spring-forward at 02:00 local.
        let hour = Utc.with_ymd_and_hms(2026, 3, 29, 1, 0, 0).unwrap();
        assert_eq!(
            bucket_start(hour, TimeBucket::Day, oslo),
            "2026-03-29T00:00:00+01:00"
        );
        assert_eq!(
            bucket_start(hour, TimeBucket::Month, oslo),
            "2026-03-01T00:00:00+01:00"
        );
        // 2026-03-31 22:00 UTC is already April in Oslo (CEST, +02:00).
        let late = Utc.with_ymd_and_hms(2026, 3, 31, 22, 0, 0).unwrap();
        assert_eq!(
            bucket_start(late, TimeBucket::Month, oslo),
            "2026-04-01T00:00:00+02:00"
        );
        // Weeks start on Monday: 2026-03-29 is a Sunday.
        assert_eq!(
            bucket_start(hour, TimeBucket::Week, oslo),
            "2026-03-23T00:00:00+01:00"
        );
    }

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=SUM(A1)"), "'=SUM(A1)");
        assert_eq!(csv_field("-0.5"), "-0.5");
    }
}
