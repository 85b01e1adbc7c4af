//! The parameters of spend queries (`GET /v1/spend` and its siblings, `llm-meter
//! report`): collected as given, validated in one place, every error naming its parameter.

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

use super::calendar::{TimeBucket, bucket_start_time, time_dimension};
use crate::store::{Dimension, UsageFilter};

/// A parameter that cannot be used; names the parameter.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid {parameter}: {message}")]
pub struct ParameterError {
    pub parameter: String,
    pub message: String,
}

impl ParameterError {
    pub fn new(parameter: &str, message: impl Into<String>) -> ParameterError {
        ParameterError {
            parameter: parameter.to_owned(),
            message: message.into(),
        }
    }
}

fn invalid(parameter: &str, message: impl Into<String>) -> ParameterError {
    ParameterError::new(parameter, message)
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
            GroupBy::Dimension(Dimension::Month) => "month".into(),
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
    let time = if let Ok(time) = DateTime::parse_from_rfc3339(text.trim()) {
        time.with_timezone(&Utc)
    } else if let Ok(date) = NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d") {
        Utc.from_utc_datetime(&date.and_hms_opt(0, 0, 0).expect("midnight"))
    } else {
        return Err(invalid(
            parameter,
            format!("{text:?} is not an RFC 3339 time (2026-03-01T00:00:00Z)"),
        ));
    };
    // Both stores and every calendar keep years 1 to 9999; outside them is a typo.
    if !(1..=9999).contains(&time.year()) {
        return Err(invalid(
            parameter,
            format!("{text:?} is outside the years 1 to 9999"),
        ));
    }
    Ok(time)
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

    /// The time bucket of `group_by`, if it has one.
    pub fn time_bucket(&self) -> Option<TimeBucket> {
        self.group_by.iter().find_map(|g| match g {
            GroupBy::Time(bucket) => Some(*bucket),
            _ => None,
        })
    }

    pub fn by_token_type(&self) -> bool {
        self.group_by.contains(&GroupBy::TokenType)
    }

    /// What the store groups by for this request: its dimensions, then the time slot
    /// its buckets are built from.
    pub fn store_dimensions(&self) -> Vec<Dimension> {
        let mut dimensions: Vec<Dimension> = self
            .group_by
            .iter()
            .filter_map(|g| match g {
                GroupBy::Dimension(d) => Some(d.clone()),
                _ => None,
            })
            .collect();
        if let Some(bucket) = self.time_bucket() {
            dimensions.push(time_dimension(bucket, self.tz));
        }
        dimensions
    }
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
}
