//! Budgets without a store: specs, periods, thresholds, forecasts.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use super::*;

fn t(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().to_utc()
}

fn d(text: &str) -> Decimal {
    text.parse().unwrap()
}

fn budget(json: &str) -> Budget {
    Budget::new("bud_test".into(), parse_spec(json.as_bytes()).unwrap()).unwrap()
}

fn spec_error(json: &str) -> FieldError {
    match parse_spec(json.as_bytes()) {
        Err(error) => error,
        Ok(spec) => Budget::new("bud_test".into(), spec).unwrap_err(),
    }
}

#[test]
fn the_issue_example_parses() {
    let b = budget(
        r#"{"name":"search-monthly","project":"search","provider":null,"model":null,"tags":{"env":"prod"},
            "limit_usd":"500","period":"month","timezone":"Europe/Oslo","thresholds":[0.5,0.8,1.0],
            "forecast":true,"webhooks":[{"url":"https://hooks.example.com/x","format":"json","secret":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
                                        {"url":"https://hooks.slack.com/services/T/B/X","format":"slack"}]}"#,
    );
    assert_eq!(b.spec.limit_usd, d("500"));
    let keys: Vec<&str> = b.levels.iter().map(|l| l.key.as_str()).collect();
    assert_eq!(keys, ["0.5", "0.8", "1"]);
    let amounts: Vec<Decimal> = b.levels.iter().map(|l| l.amount).collect();
    assert_eq!(amounts, [d("250"), d("400"), d("500")]);
    assert_eq!(b.levels[1].label, "80%");
    assert_eq!(b.spec.webhooks[1].format, WebhookFormat::Slack);
}

#[test]
fn every_invalid_field_is_named() {
    let base = |field: &str| {
        format!(r#"{{"name":"b","limit_usd":"10","period":"month",{field}}}"#).replace(",}", "}")
    };
    for (json, field) in [
        (
            base(r#""limit_usd":"-1""#).replace(r#""limit_usd":"10","#, ""),
            "limit_usd",
        ),
        (
            base(r#""limit_usd":"ten""#).replace(r#""limit_usd":"10","#, ""),
            "limit_usd",
        ),
        (base(r#""timezone":"Mars/Base""#), "timezone"),
        (base(r#""thresholds":[0.5,0]"#), "thresholds[1]"),
        (base(r#""thresholds":[0.5,{"usd":"-3"}]"#), "thresholds[1]"),
        (base(r#""thresholds":[0.5,0.5]"#), "thresholds[1]"),
        (base(r#""thresholds":[]"#), "thresholds"),
        (base(r#""tags":{"bad key":"x"}"#), "tags"),
        (base(r#""webhooks":[{"url":"ftp://x"}]"#), "webhooks[0]"),
        (
            base(r#""webhooks":[{"url":"https://x.example","secret":"nope"}]"#),
            "webhooks[0]",
        ),
        (
            base(r#""webhooks":[{"url":"https://x.example","format":"teams"}]"#),
            "webhooks[0].format",
        ),
        (base(r#""colour":"red""#), "colour"),
        (base(r#""project":"""#), "project"),
        (
            r#"{"name":"b","limit_usd":"10","period":"fortnight"}"#.to_owned(),
            "period",
        ),
        (
            r#"{"name":"b","limit_usd":"10","period":{"cron":"every tuesday"}}"#.to_owned(),
            "period",
        ),
        (
            r#"{"name":"","limit_usd":"10","period":"day"}"#.to_owned(),
            "name",
        ),
    ] {
        let error = spec_error(&json);
        assert_eq!(error.field, field, "{json}: {error}");
    }
}

#[test]
fn calendar_periods_follow_the_timezone() {
    // (period, timezone, now, start, end)
    let cases = [
        // Month ends, leap years.
        (
            "month",
            "UTC",
            "2028-02-29T23:59:59Z",
            "2028-02-01T00:00:00Z",
            "2028-03-01T00:00:00Z",
        ),
        (
            "month",
            "UTC",
            "2027-02-28T12:00:00Z",
            "2027-02-01T00:00:00Z",
            "2027-03-01T00:00:00Z",
        ),
        (
            "month",
            "UTC",
            "2026-12-31T23:00:00Z",
            "2026-12-01T00:00:00Z",
            "2027-01-01T00:00:00Z",
        ),
        (
            "day",
            "UTC",
            "2028-02-29T10:00:00Z",
            "2028-02-29T00:00:00Z",
            "2028-03-01T00:00:00Z",
        ),
        // Oslo's month starts at 23:00 UTC in winter, 22:00 in summer; March loses an hour.
        (
            "month",
            "Europe/Oslo",
            "2026-03-15T12:00:00Z",
            "2026-02-28T23:00:00Z",
            "2026-03-31T22:00:00Z",
        ),
        (
            "month",
            "Europe/Oslo",
            "2026-03-31T22:30:00Z",
            "2026-03-31T22:00:00Z",
            "2026-04-30T22:00:00Z",
        ),
        // The DST days: 23 and 25 hours long.
        (
            "day",
            "Europe/Oslo",
            "2026-03-29T12:00:00Z",
            "2026-03-28T23:00:00Z",
            "2026-03-29T22:00:00Z",
        ),
        (
            "day",
            "Europe/Oslo",
            "2026-10-25T12:00:00Z",
            "2026-10-24T22:00:00Z",
            "2026-10-25T23:00:00Z",
        ),
        // Weeks start on Monday; quarters and years.
        (
            "week",
            "UTC",
            "2026-11-22T10:00:00Z",
            "2026-11-16T00:00:00Z",
            "2026-11-23T00:00:00Z",
        ),
        (
            "quarter",
            "UTC",
            "2026-11-22T10:00:00Z",
            "2026-10-01T00:00:00Z",
            "2027-01-01T00:00:00Z",
        ),
        (
            "quarter",
            "America/New_York",
            "2026-04-01T03:00:00Z",
            "2026-01-01T05:00:00Z",
            "2026-04-01T04:00:00Z",
        ),
        (
            "year",
            "Asia/Tokyo",
            "2026-12-31T15:00:00Z",
            "2026-12-31T15:00:00Z",
            "2027-12-31T15:00:00Z",
        ),
    ];
    for (period, tz, now, start, end) in cases {
        let b = budget(&format!(
            r#"{{"name":"b","limit_usd":"1","period":"{period}","timezone":"{tz}"}}"#
        ));
        assert_eq!(
            b.period_at(t(now)),
            (t(start), t(end)),
            "{period} {tz} {now}"
        );
    }
}

#[test]
fn cron_periods_run_between_consecutive_fire_times() {
    // (cron, timezone, now, start, end)
    let cases = [
        // Quarterly, on the 1st at midnight: a fire time starts its own period.
        (
            "0 0 0 1 */3 *",
            "UTC",
            "2026-11-22T10:00:00Z",
            "2026-10-01T00:00:00Z",
            "2027-01-01T00:00:00Z",
        ),
        (
            "0 0 0 1 */3 *",
            "UTC",
            "2026-10-01T00:00:00Z",
            "2026-10-01T00:00:00Z",
            "2027-01-01T00:00:00Z",
        ),
        (
            "0 0 0 1 */3 *",
            "UTC",
            "2026-09-30T23:59:59.999Z",
            "2026-07-01T00:00:00Z",
            "2026-10-01T00:00:00Z",
        ),
        // Every Monday 08:00 in Oslo, across the October DST change.
        (
            "0 0 8 * * MON",
            "Europe/Oslo",
            "2026-10-28T12:00:00Z",
            "2026-10-26T07:00:00Z",
            "2026-11-02T07:00:00Z",
        ),
        (
            "0 0 8 * * MON",
            "Europe/Oslo",
            "2026-10-20T12:00:00Z",
            "2026-10-19T06:00:00Z",
            "2026-10-26T07:00:00Z",
        ),
        // Daily 02:30 in Oslo on the night 02:00-03:00 happens twice (2026-10-25): a
        // period never starts in the future, and `now` is always inside it.
        (
            "0 30 2 * * *",
            "Europe/Oslo",
            "2026-10-25T00:45:00Z",
            "2026-10-25T00:30:00Z",
            "2026-10-26T01:30:00Z",
        ),
        (
            "0 30 2 * * *",
            "Europe/Oslo",
            "2026-10-25T01:45:00Z",
            "2026-10-25T01:30:00Z",
            "2026-10-26T01:30:00Z",
        ),
        // Twice a month.
        (
            "0 0 0 1,15 * *",
            "UTC",
            "2026-02-20T00:00:00Z",
            "2026-02-15T00:00:00Z",
            "2026-03-01T00:00:00Z",
        ),
    ];
    for (cron, tz, now, start, end) in cases {
        let b = budget(&format!(
            r#"{{"name":"b","limit_usd":"1","period":{{"cron":"{cron}"}},"timezone":"{tz}"}}"#
        ));
        assert_eq!(b.period_at(t(now)), (t(start), t(end)), "{cron} {tz} {now}");
    }
}

#[test]
fn every_level_at_or_under_the_spend_is_crossed() {
    let fractions =
        budget(r#"{"name":"b","limit_usd":"200","period":"month","thresholds":[1.0,0.5,0.8]}"#);
    let absolute = budget(
        r#"{"name":"b","limit_usd":"200","period":"month","thresholds":[{"usd":"150"},{"usd":"20.5"}]}"#,
    );
    let crossed_keys = |b: &Budget, spend: &str| -> Vec<String> {
        crossed(&b.levels, d(spend))
            .map(|l| l.key.clone())
            .collect()
    };
    // Fractions: 100, 160, 200.
    assert!(crossed_keys(&fractions, "99.999999999").is_empty());
    assert_eq!(
        crossed_keys(&fractions, "100"),
        ["0.5"],
        "exactly at a threshold crosses it"
    );
    assert_eq!(crossed_keys(&fractions, "170"), ["0.5", "0.8"]);
    assert_eq!(
        crossed_keys(&fractions, "1000"),
        ["0.5", "0.8", "1"],
        "several at once, in order"
    );
    // Absolute amounts: 20.5, 150.
    assert!(crossed_keys(&absolute, "20.499999999").is_empty());
    assert_eq!(crossed_keys(&absolute, "20.5"), ["usd:20.5"]);
    assert_eq!(crossed_keys(&absolute, "150"), ["usd:20.5", "usd:150"]);
    assert_eq!(absolute.levels[1].label, "$150");
    // Mixed: ordered by amount.
    let mixed = budget(
        r#"{"name":"b","limit_usd":"100","period":"month","thresholds":[0.9,{"usd":"50"},"0.25"]}"#,
    );
    let keys: Vec<&str> = mixed.levels.iter().map(|l| l.key.as_str()).collect();
    assert_eq!(keys, ["0.25", "usd:50", "0.9"]);
}

#[test]
fn the_forecast_extrapolates_the_recent_rate() {
    let input = |now: &str, spend: &str, window_spend: &str| ForecastInput {
        period_start: t("2026-11-01T00:00:00Z"),
        period_end: t("2026-12-01T00:00:00Z"),
        now: t(now),
        spend: d(spend),
        window_spend: d(window_spend),
        window_start: forecast_window_start(t("2026-11-01T00:00:00Z"), t(now)),
    };
    // Too early: under a day into a 30-day month.
    assert_eq!(forecast(&input("2026-11-01T20:00:00Z", "50", "50")), None);
    // 10 days in, $100 spent, all of it in the last 7 days: $100/7 days × 20 days left.
    let f = forecast(&input("2026-11-11T00:00:00Z", "130", "100")).unwrap();
    assert_eq!(
        f,
        round_money(d("130") + d("100") / d("604800") * d("1728000"))
    );
    assert!(f > d("415") && f < d("416"), "{f}");
    // 3 days in: the window is the period so far.
    let f = forecast(&input("2026-11-04T00:00:00Z", "30", "30")).unwrap();
    assert_eq!(f, d("300"));
    // At the end nothing remains.
    assert_eq!(
        forecast(&input("2026-12-01T00:00:00Z", "77", "10")),
        Some(d("77"))
    );
}

#[test]
fn may_cover_reads_the_scope() {
    let b = budget(
        r#"{"name":"b","limit_usd":"1","period":"day","project":"search","model":"gpt-5.2"}"#,
    );
    assert!(b.may_cover("search", None, Some("gpt-5.2")));
    assert!(b.may_cover("search", None, None));
    assert!(!b.may_cover("search", None, Some("gpt-5-mini")));
    assert!(!b.may_cover("ads", None, Some("gpt-5.2")));
    let all = budget(r#"{"name":"all","limit_usd":"1","period":"day"}"#);
    assert!(all.may_cover("anything", Some("openai"), Some("any")));
    let anthropic = budget(r#"{"name":"a","limit_usd":"1","period":"day","provider":"anthropic"}"#);
    assert!(anthropic.may_cover("search", Some("anthropic"), None));
    assert!(anthropic.may_cover("search", None, None));
    assert!(!anthropic.may_cover("search", Some("openai"), Some("gpt-5.2")));
}
