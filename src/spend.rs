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
use crate::store::{
    Dimension, Measures, Store, StoreError, UsageAggregate, UsageFilter, UsageQuery,
};
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
    Quarter,
    Year,
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
            GroupBy::Dimension(Dimension::Tags) => "tags".into(),
            GroupBy::Dimension(Dimension::Hour) | GroupBy::Time(TimeBucket::Hour) => "hour".into(),
            GroupBy::Dimension(Dimension::Day) => "day".into(),
            GroupBy::TokenType => "token_type".into(),
            GroupBy::Time(TimeBucket::Day) => "day".into(),
            GroupBy::Time(TimeBucket::Week) => "week".into(),
            GroupBy::Time(TimeBucket::Month) => "month".into(),
            GroupBy::Time(TimeBucket::Quarter) => "quarter".into(),
            GroupBy::Time(TimeBucket::Year) => "year".into(),
        }
    }
}

/// Names accepted in `group_by`, for error messages.
pub const GROUP_BY_NAMES: &str = "project, provider, model, service_tier, batch, reasoning_effort, token_type, tag:KEY, hour, day, week, month, quarter, year";

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
            "quarter" => GroupBy::Time(TimeBucket::Quarter),
            "year" => GroupBy::Time(TimeBucket::Year),
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
        return Err(invalid(
            "group_by",
            "at most one of hour, day, week, month, quarter, year",
        ));
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

/// A spend request's parameters as given, before validation: what `GET /v1/spend` and
/// `llm-meter report` both collect, so both validate the same way.
#[derive(Clone, Debug, Default)]
pub struct SpendParams {
    pub from: Option<String>,
    pub to: Option<String>,
    pub group_by: Option<String>,
    /// Several projects mean any of them.
    pub projects: Vec<String>,
    pub provider: Option<String>,
    pub model: Option<String>,
    /// `tag.KEY=VALUE` filters: every one must match.
    pub tags: Vec<(String, String)>,
    pub tz: Option<String>,
}

/// The projects a `project` filter names: values may repeat or list several
/// (`a,b`); blanks are no project. Empty: no filter.
pub fn project_list(values: &[String]) -> Vec<String> {
    values
        .iter()
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

impl SpendParams {
    /// Validates the parameters. Without `from` the period starts at the beginning of
    /// the current month in `tz`; without `to` it ends now.
    pub fn into_request(
        self,
        now: DateTime<Utc>,
        default_group_by: &str,
    ) -> Result<SpendRequest, ParameterError> {
        let tz = parse_timezone(self.tz.as_deref().unwrap_or("UTC"))?;
        let from = match &self.from {
            Some(text) => parse_time("from", text)?,
            None => bucket_start_time(now, TimeBucket::Month, tz).with_timezone(&Utc),
        };
        let to = match &self.to {
            Some(text) => parse_time("to", text)?,
            None => now,
        };
        let group_by = parse_group_by(self.group_by.as_deref().unwrap_or(default_group_by))?;
        let mut filter = UsageFilter::default();
        let projects = project_list(&self.projects);
        let label = |parameter: &str, value: &str| {
            crate::usage::check_label(parameter, value)
                .map(|_| ())
                .map_err(|e| match e {
                    crate::usage::ParseError::InvalidField { reason, .. } => {
                        invalid(parameter, reason)
                    }
                    other => invalid(parameter, other.to_string()),
                })
        };
        for project in &projects {
            label("project", project)?;
        }
        if !projects.is_empty() {
            filter.projects = Some(projects);
        }
        filter.provider = self.provider.filter(|p| !p.is_empty());
        filter.model = self.model.filter(|m| !m.is_empty());
        for (parameter, value) in [("provider", &filter.provider), ("model", &filter.model)] {
            if let Some(value) = value {
                label(parameter, value)?;
            }
        }
        for (key, value) in self.tags {
            let key = check_tag_key("tag", &key)?;
            label("tag", &value)?;
            filter.tags.push((key, value));
        }
        SpendRequest::new(from, to, group_by, filter, tz)
    }
}

/// Parses a `KEY=VALUE` tag filter (the CLI's `--tag`).
pub fn parse_tag_filter(text: &str) -> Result<(String, String), ParameterError> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| invalid("tag", format!("{text:?} is not KEY=VALUE")))?;
    Ok((check_tag_key("tag", key)?, value.to_owned()))
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
            return Err(invalid("to", format!("must be after from ({from})")));
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
    if let Some(bucket) = time_bucket {
        dimensions.push(time_dimension(bucket, request.tz));
    }
    let by_token_type = request.group_by.contains(&GroupBy::TokenType);
    let aggregates = store
        .usage(&UsageQuery {
            from: request.from,
            to: request.to,
            group_by: dimensions,
            filter: request.filter.clone(),
            measures: if by_token_type {
                Measures::All
            } else {
                Measures::Spend
            },
        })
        .await?;
    Ok(build_report(request, aggregates))
}

/// The store-level time slot a bucket is built from: UTC days (read from the daily
/// rollups) when the buckets are UTC days, weeks or months, hours otherwise.
pub fn time_dimension(bucket: TimeBucket, tz: Tz) -> Dimension {
    let utc = matches!(
        tz,
        Tz::UTC | Tz::Etc__UTC | Tz::GMT | Tz::Etc__GMT | Tz::Zulu
    );
    match bucket {
        TimeBucket::Day
        | TimeBucket::Week
        | TimeBucket::Month
        | TimeBucket::Quarter
        | TimeBucket::Year
            if utc =>
        {
            Dimension::Day
        }
        _ => Dimension::Hour,
    }
}

/// The group values of one stored event, in `group_by` order: the key `build_report`
/// gives the row the event is counted in (the time bucket of the event's hour, as rows
/// are built from hours). Not for `token_type`, which splits an event across rows.
pub fn group_values(request: &SpendRequest, event: &crate::prepare::PricedRecord) -> Vec<String> {
    let record = &event.record;
    request
        .group_by
        .iter()
        .map(|group_by| match group_by {
            GroupBy::Dimension(dimension) => match dimension {
                Dimension::Project => record.project.clone(),
                Dimension::Provider => record.provider.clone(),
                Dimension::Model => crate::analysis::stored_model(event).to_owned(),
                Dimension::ServiceTier => record.service_tier.clone(),
                Dimension::Batch => record.batch.to_string(),
                Dimension::ReasoningEffort => record.reasoning_effort.clone().unwrap_or_default(),
                Dimension::Tag(key) => record.tags.get(key).cloned().unwrap_or_default(),
                Dimension::Tags | Dimension::Hour | Dimension::Day => String::new(),
            },
            GroupBy::TokenType => String::new(),
            GroupBy::Time(bucket) => {
                let hour = record
                    .time
                    .with_minute(0)
                    .and_then(|t| t.with_second(0))
                    .and_then(|t| t.with_nanosecond(0))
                    .unwrap_or(record.time);
                bucket_start(hour, *bucket, request.tz)
            }
        })
        .collect()
}

/// Turns hourly (or daily) aggregates into the requested rows. Pure.
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
        // A token type nobody in the group used is not a row.
        rows.retain(|row| row.tokens.total() > 0);
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
    bucket_start_time(hour, bucket, tz).to_rfc3339()
}

/// The start of the bucket an instant falls in, in `tz`.
pub fn bucket_start_time(time: DateTime<Utc>, bucket: TimeBucket, tz: Tz) -> DateTime<Tz> {
    let local = time.with_timezone(&tz);
    let date = local.date_naive();
    let start_date = match bucket {
        TimeBucket::Hour => {
            return local
                .with_minute(0)
                .and_then(|t| t.with_second(0))
                .and_then(|t| t.with_nanosecond(0))
                .unwrap_or(local);
        }
        TimeBucket::Day => date,
        TimeBucket::Week => date - Duration::days(i64::from(date.weekday().num_days_from_monday())),
        TimeBucket::Month => date.with_day(1).unwrap_or(date),
        TimeBucket::Quarter => {
            NaiveDate::from_ymd_opt(date.year(), (date.month0() / 3) * 3 + 1, 1).unwrap_or(date)
        }
        TimeBucket::Year => NaiveDate::from_ymd_opt(date.year(), 1, 1).unwrap_or(date),
    };
    local_midnight(start_date, tz).unwrap_or(local)
}

/// The start of the bucket after the one starting at `start`.
pub fn next_bucket_start(start: DateTime<Tz>, bucket: TimeBucket, tz: Tz) -> DateTime<Tz> {
    let date = start.date_naive();
    let next_date = match bucket {
        TimeBucket::Hour => {
            return (start.with_timezone(&Utc) + Duration::hours(1)).with_timezone(&tz);
        }
        TimeBucket::Day => date + Duration::days(1),
        TimeBucket::Week => date + Duration::days(7),
        TimeBucket::Month | TimeBucket::Quarter | TimeBucket::Year => {
            let months = match bucket {
                TimeBucket::Month => 1,
                TimeBucket::Quarter => 3,
                _ => 12,
            };
            date.checked_add_months(chrono::Months::new(months))
                .unwrap_or(date + Duration::days(31 * i64::from(months)))
        }
    };
    local_midnight(next_date, tz).unwrap_or(start)
}

/// The first instant of a local date (midnight may not exist: a DST gap at 00:00).
pub fn local_midnight(date: NaiveDate, tz: Tz) -> Option<DateTime<Tz>> {
    let midnight = date.and_hms_opt(0, 0, 0)?;
    tz.from_local_datetime(&midnight).earliest().or_else(|| {
        tz.from_local_datetime(&(midnight + Duration::hours(1)))
            .earliest()
    })
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
    let mut header: Vec<String> = request.group_by.iter().map(GroupBy::name).collect();
    header.extend(["requests".into(), "unpriced_requests".into()]);
    header.extend(Bucket::ALL.iter().map(|b| format!("tokens_{b}")));
    header.push("cost_usd".into());
    let rows: Vec<Vec<String>> = report
        .rows
        .iter()
        .map(|row| {
            let mut fields: Vec<String> = row.group.iter().map(|(_, v)| v.clone()).collect();
            fields.push(row.requests.to_string());
            fields.push(row.unpriced_requests.to_string());
            fields.extend(row.tokens.iter().map(|(_, n)| n.to_string()));
            fields.push(row.cost.normalize().to_string());
            fields
        })
        .collect();
    csv_text(&header, &rows)
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
    let costs = money_column(
        report
            .rows
            .iter()
            .map(|row| row.cost)
            .chain([report.total_cost]),
    );
    let mut lines = Vec::new();
    for (row, cost) in report.rows.iter().zip(&costs) {
        let mut line: Vec<String> = row.group.iter().map(|(_, v)| v.clone()).collect();
        line.push(row.requests.to_string());
        line.push(row.tokens.input.to_string());
        line.push(row.tokens.cached_input.to_string());
        line.push((row.tokens.cache_write_5m + row.tokens.cache_write_1h).to_string());
        line.push(row.tokens.output.to_string());
        line.push(row.tokens.reasoning.to_string());
        line.push(cost.clone());
        lines.push(line);
    }
    let mut total = vec![String::new(); request.group_by.len()];
    if let Some(first) = total.first_mut() {
        *first = "total".into();
    }
    total.push(report.total_requests.to_string());
    total.extend(std::iter::repeat_n(String::new(), 5));
    total.push(costs.last().cloned().unwrap_or_default());
    aligned_table(&header, &lines, Some(&total), request.group_by.len())
}

/// Amounts written with as many decimals as the most precise one needs, so a column of
/// them lines up on the decimal point without rounding any.
pub fn money_column(amounts: impl IntoIterator<Item = Decimal>) -> Vec<String> {
    let amounts: Vec<Decimal> = amounts.into_iter().map(|a| a.normalize()).collect();
    let scale = amounts.iter().map(Decimal::scale).max().unwrap_or(0).max(2) as usize;
    amounts.iter().map(|a| format!("{a:.scale$}")).collect()
}

/// An aligned text table: the first `keys` columns left-aligned (names), the rest right-
/// aligned (numbers), a rule above the total line if there is one.
pub fn aligned_table(
    header: &[String],
    rows: &[Vec<String>],
    total: Option<&Vec<String>>,
    keys: usize,
) -> String {
    let mut lines: Vec<&[String]> = vec![header];
    lines.extend(rows.iter().map(Vec::as_slice));
    lines.extend(total.map(Vec::as_slice));
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            lines
                .iter()
                .map(|l| l.get(c).map_or(0, |v| v.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for (index, line) in lines.iter().enumerate() {
        if total.is_some() && index == lines.len() - 1 {
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

/// CSV text: a header line, then the rows, every field quoted as needed.
pub fn csv_text(header: &[String], rows: &[Vec<String>]) -> String {
    let mut out = String::new();
    for line in std::iter::once(header).chain(rows.iter().map(Vec::as_slice)) {
        let fields: Vec<String> = line.iter().map(|f| csv_field(f)).collect();
        let _ = writeln!(out, "{}", fields.join(","));
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
