//! `GET /v1/spend` and friends on a real server and a real Postgres, checked against sums
//! the test computes itself from the same generated records: every grouping, every
//! filter, timezone buckets across a DST change, bounds in the middle of an hour, CSV and
//! FOCUS, savings, what-if and unpriced models.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Datelike, Duration, DurationRound, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use llm_meter::pricing::{PriceBook, PriceOutcome, round_money};
use llm_meter::usage::{Bucket, Tokens};
use rust_decimal::Decimal;
use serde_json::Value;

use crate::helpers::{book, prepare};
use crate::http_ingest::TestServer;
use crate::pg::TestDb;

const MODELS: &[(&str, &str)] = &[
    ("openai", "gpt-5.2"),
    ("openai", "gpt-5.2-2025-12-11"),
    ("openai", "gpt-5-mini"),
    ("anthropic", "claude-sonnet-4-5"),
    ("google", "gemini-2.5-flash"),
    ("openrouter", "anthropic/claude-sonnet-4.5"),
    ("openai", "made-up-model-9"),
];

/// Records around the Europe/Oslo spring-forward (2026-03-29 01:00 UTC), over every
/// dimension a query can group or filter by.
pub fn generated_records(count: u64) -> Vec<String> {
    let start = Utc.with_ymd_and_hms(2026, 3, 27, 18, 0, 0).unwrap();
    (0..count)
        .map(|i| {
            let (provider, model) = MODELS[(i % MODELS.len() as u64) as usize];
            let project = ["search", "ads", "agents", "legal"][(i % 4) as usize];
            let time = start + Duration::seconds(((i * 7919) % (5 * 86_400)) as i64);
            let tier = ["default", "default", "flex", "priority"][(i % 4) as usize];
            let batch = i % 9 == 0;
            let team = format!("t{}", i % 3);
            let env = ["prod", "dev"][(i % 2) as usize];
            format!(
                r#"{{"id":"r{i}","time":"{}","project":"{project}","provider":"{provider}","model":"{model}","service_tier":"{tier}","batch":{batch},"tokens":{{"input":{},"cached_input":{},"output":{},"reasoning":{}}},"tags":{{"team":"{team}","env":"{env}"}}}}"#,
                time.to_rfc3339(),
                100 + (i * 7919) % 40_000,
                (i * 31) % 3000,
                10 + (i * 104_729) % 2000,
                (i * 13) % 500,
            )
        })
        .collect()
}

/// One record as the test sees it: its own view of every key.
struct Seen {
    time: DateTime<Utc>,
    keys: BTreeMap<&'static str, String>,
    tags: BTreeMap<String, String>,
    tokens: Tokens,
    price: PriceOutcome,
}

fn seen(book: &PriceBook, lines: &[String]) -> Vec<Seen> {
    lines
        .iter()
        .map(|line| {
            let priced = prepare(book, line);
            let record = priced.record;
            // The sheet's model id when the name resolved (even if a rate was missing),
            // else the name as written.
            let model = match &priced.price {
                PriceOutcome::Priced(p) => p.model_id.clone(),
                PriceOutcome::Unpriced(u) => match &u.resolved_model {
                    Some(name) => name.rsplit_once('/').unwrap().1.to_owned(),
                    None => record.model.clone(),
                },
            };
            let keys = BTreeMap::from([
                ("project", record.project.clone()),
                ("provider", record.provider.clone()),
                ("model", model),
                ("service_tier", record.service_tier.clone()),
                ("batch", record.batch.to_string()),
            ]);
            Seen {
                time: record.time,
                keys,
                tags: record.tags.clone(),
                tokens: record.tokens,
                price: priced.price,
            }
        })
        .collect()
}

/// The start of the local day, week or month of `time` in `tz`, or its hour.
fn local_bucket(time: DateTime<Utc>, unit: &str, tz: Tz) -> String {
    if unit == "hour" {
        let hour = time.duration_trunc(Duration::hours(1)).unwrap();
        return hour.with_timezone(&tz).to_rfc3339();
    }
    let date = time.with_timezone(&tz).date_naive();
    let first: NaiveDate = match unit {
        "day" => date,
        "week" => date - Duration::days(date.weekday().num_days_from_monday() as i64),
        "month" => date.with_day(1).unwrap(),
        other => panic!("{other}"),
    };
    tz.from_local_datetime(&first.and_hms_opt(0, 0, 0).unwrap())
        .earliest()
        .unwrap()
        .to_rfc3339()
}

#[derive(Debug, Default, PartialEq)]
struct Row {
    requests: u64,
    tokens: Tokens,
    cost: Decimal,
}

/// The rows a query must answer, computed from the records alone.
fn expected_rows(
    records: &[Seen],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    group_by: &[&str],
    filter: &dyn Fn(&Seen) -> bool,
    tz: Tz,
) -> (BTreeMap<Vec<String>, Row>, Decimal) {
    let mut rows: BTreeMap<Vec<String>, Row> = BTreeMap::new();
    let mut total = Decimal::ZERO;
    for record in records
        .iter()
        .filter(|r| r.time >= from && r.time < to && filter(r))
    {
        let cost = record.price.cost().unwrap_or_default();
        total += cost;
        let by_token_type = group_by.contains(&"token_type");
        // With token_type, a row's requests are every request of its group.
        let buckets: Vec<Option<Bucket>> = if by_token_type {
            Bucket::ALL.into_iter().map(Some).collect()
        } else {
            vec![None]
        };
        for bucket in buckets {
            let key: Vec<String> = group_by
                .iter()
                .map(|g| match *g {
                    "token_type" => bucket.unwrap().as_str().to_owned(),
                    "hour" | "day" | "week" | "month" => local_bucket(record.time, g, tz),
                    tag if tag.starts_with("tag:") => {
                        record.tags.get(&tag[4..]).cloned().unwrap_or_default()
                    }
                    other => record.keys[other].clone(),
                })
                .collect();
            let row = rows.entry(key).or_default();
            row.requests += 1;
            match bucket {
                Some(bucket) => {
                    let mut tokens = Tokens::default();
                    tokens.set(bucket, record.tokens.get(bucket));
                    row.tokens = row.tokens.add(&tokens);
                    if let PriceOutcome::Priced(p) = &record.price {
                        // Per-bucket shares are kept to the pico-dollar.
                        row.cost += p.bucket_costs[bucket.index()].round_dp(12);
                    }
                }
                None => {
                    row.tokens = row.tokens.add(&record.tokens);
                    row.cost += cost;
                }
            }
        }
    }
    // A token type nobody in a group used is not a row.
    rows.retain(|_, row| row.tokens.total() > 0 || !group_by.contains(&"token_type"));
    for row in rows.values_mut() {
        row.cost = round_money(row.cost);
    }
    (rows, total.normalize())
}

fn answered_rows(answer: &Value, group_by: &[&str]) -> BTreeMap<Vec<String>, Row> {
    answer["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|row| {
            let key = group_by
                .iter()
                .map(|g| {
                    row[*g]
                        .as_str()
                        .unwrap_or_else(|| panic!("{g} in {row}"))
                        .to_owned()
                })
                .collect();
            let value = Row {
                requests: row["requests"].as_u64().unwrap(),
                tokens: serde_json::from_value(row["tokens"].clone()).unwrap(),
                cost: row["cost_usd"].as_str().unwrap().parse().unwrap(),
            };
            (key, value)
        })
        .collect()
}

async fn get(server: &TestServer, query: &str) -> (u16, String, String) {
    let response = server
        .client
        .get(format!("{}{query}", server.base))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, content_type, response.text().await.unwrap())
}

async fn get_json(server: &TestServer, query: &str) -> Value {
    let (status, _, body) = get(server, query).await;
    assert_eq!(status, 200, "{query}: {body}");
    serde_json::from_str(&body).unwrap()
}

async fn ingested_server(db: &TestDb, lines: &[String]) -> TestServer {
    let server = TestServer::start(db).await;
    let (status, answer) = server
        .post("/v1/usage", "application/x-ndjson", lines.join("\n"))
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["accepted"], lines.len());
    server
}

fn rfc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().to_utc()
}

#[tokio::test]
async fn every_grouping_and_filter_matches_sums_computed_from_the_records() {
    let db = TestDb::new().await;
    let lines = generated_records(700);
    let book = book();
    let records = seen(book, &lines);
    let server = ingested_server(&db, &lines).await;

    let utc: Tz = "UTC".parse().unwrap();
    let oslo: Tz = "Europe/Oslo".parse().unwrap();
    // Whole range, and bounds in the middle of hours (partial hours come from events).
    let whole = ("2026-03-27T00:00:00Z", "2026-04-03T00:00:00Z");
    let mid = ("2026-03-28T10:17:00Z", "2026-03-31T05:45:30Z");
    type Filter = Box<dyn Fn(&Seen) -> bool>;
    /// (group_by, its keys, more parameters, the filter they mean, range, timezone)
    type Case<'a> = (
        &'a str,
        Vec<&'a str>,
        &'a str,
        Filter,
        (&'a str, &'a str),
        Tz,
    );
    let cases: Vec<Case> = vec![
        ("", vec![], "", Box::new(|_| true), whole, utc),
        (
            "project",
            vec!["project"],
            "",
            Box::new(|_| true),
            whole,
            utc,
        ),
        (
            "provider,model",
            vec!["provider", "model"],
            "",
            Box::new(|_| true),
            mid,
            utc,
        ),
        (
            "service_tier,batch",
            vec!["service_tier", "batch"],
            "",
            Box::new(|_| true),
            whole,
            utc,
        ),
        (
            "model,token_type",
            vec!["model", "token_type"],
            "",
            Box::new(|_| true),
            mid,
            utc,
        ),
        (
            "tag:team",
            vec!["tag:team"],
            "",
            Box::new(|_| true),
            whole,
            utc,
        ),
        ("hour", vec!["hour"], "", Box::new(|_| true), mid, utc),
        // UTC days, weeks and months come from the daily rollups (plus partial days).
        ("day", vec!["day"], "", Box::new(|_| true), mid, utc),
        (
            "project,week",
            vec!["project", "week"],
            "",
            Box::new(|_| true),
            mid,
            utc,
        ),
        (
            "model,month",
            vec!["model", "month"],
            "&tz=UTC",
            Box::new(|_| true),
            whole,
            utc,
        ),
        (
            "day",
            vec!["day"],
            "&tz=Europe/Oslo",
            Box::new(|_| true),
            whole,
            oslo,
        ),
        (
            "project,day",
            vec!["project", "day"],
            "&tz=Europe/Oslo",
            Box::new(|_| true),
            mid,
            oslo,
        ),
        (
            "week",
            vec!["week"],
            "&tz=America/New_York",
            Box::new(|_| true),
            whole,
            "America/New_York".parse().unwrap(),
        ),
        (
            "month",
            vec!["month"],
            "&tz=Asia/Tokyo",
            Box::new(|_| true),
            whole,
            "Asia/Tokyo".parse().unwrap(),
        ),
        (
            "model",
            vec!["model"],
            "&project=search",
            Box::new(|r: &Seen| r.keys["project"] == "search"),
            mid,
            utc,
        ),
        (
            "project",
            vec!["project"],
            "&project=search,ads&provider=openai",
            Box::new(|r: &Seen| {
                ["search", "ads"].contains(&r.keys["project"].as_str())
                    && r.keys["provider"] == "openai"
            }),
            whole,
            utc,
        ),
        (
            "project",
            vec!["project"],
            "&model=gpt-5.2",
            Box::new(|r: &Seen| r.keys["model"] == "gpt-5.2"),
            mid,
            utc,
        ),
        (
            "model",
            vec!["model"],
            "&tag.team=t1&tag.env=prod",
            Box::new(|r: &Seen| r.tags["team"] == "t1" && r.tags["env"] == "prod"),
            whole,
            utc,
        ),
    ];
    for (group_by, keys, extra, filter, (from, to), tz) in cases {
        let query = format!("/v1/spend?from={from}&to={to}&group_by={group_by}{extra}");
        let answer = get_json(&server, &query.replace('+', "%2B")).await;
        let (expected, total) = expected_rows(&records, rfc(from), rfc(to), &keys, &filter, tz);
        assert!(!expected.is_empty(), "{query}: the case selects nothing");
        assert_eq!(answered_rows(&answer, &keys), expected, "{query}");
        assert_eq!(answer["total_cost_usd"], total.to_string(), "{query}");
    }
}

#[tokio::test]
async fn day_buckets_across_the_dst_change_hold_23_hours_of_usage() {
    let db = TestDb::new().await;
    // One record at the start of every UTC hour from 2026-03-28 00:00 to 2026-03-31 00:00.
    let lines: Vec<String> = (0..72)
        .map(|h| {
            let time = Utc.with_ymd_and_hms(2026, 3, 28, 0, 0, 0).unwrap() + Duration::hours(h);
            format!(
                r#"{{"id":"h{h}","time":"{}","project":"p","provider":"openai","model":"gpt-5.2","tokens":{{"input":1000000}}}}"#,
                time.to_rfc3339()
            )
        })
        .collect();
    let server = ingested_server(&db, &lines).await;
    let answer = get_json(
        &server,
        "/v1/spend?from=2026-03-28T00:00:00Z&to=2026-03-31T00:00:00Z&group_by=day&tz=Europe/Oslo",
    )
    .await;
    let days: Vec<(String, u64, String)> = answer["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["day"].as_str().unwrap().to_owned(),
                r["requests"].as_u64().unwrap(),
                r["cost_usd"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    // Oslo is UTC+1 until 01:00 UTC on the 29th, UTC+2 after: the 29th is 23 hours long.
    assert_eq!(
        days,
        vec![
            (
                "2026-03-28T00:00:00+01:00".to_owned(),
                23,
                "40.25".to_owned()
            ),
            (
                "2026-03-29T00:00:00+01:00".to_owned(),
                23,
                "40.25".to_owned()
            ),
            ("2026-03-30T00:00:00+02:00".to_owned(), 24, "42".to_owned()),
            ("2026-03-31T00:00:00+02:00".to_owned(), 2, "3.5".to_owned()),
        ]
    );
    assert_eq!(answer["total_cost_usd"], "126");
}

#[tokio::test]
async fn csv_and_focus_exports_carry_the_same_money() {
    let db = TestDb::new().await;
    let lines = generated_records(300);
    let book = book();
    let records = seen(book, &lines);
    let server = ingested_server(&db, &lines).await;
    let range = "from=2026-03-27T00:00:00Z&to=2026-04-03T00:00:00Z";

    // CSV: the JSON rows, field for field.
    let json = get_json(
        &server,
        &format!("/v1/spend?{range}&group_by=project,model"),
    )
    .await;
    let (status, content_type, csv) = get(
        &server,
        &format!("/v1/spend?{range}&group_by=project,model&format=csv"),
    )
    .await;
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/csv"), "{content_type}");
    let mut lines_csv = csv.lines();
    let header: Vec<&str> = lines_csv.next().unwrap().split(',').collect();
    assert_eq!(header[..2], ["project", "model"]);
    let cost_column = header.iter().position(|h| *h == "cost_usd").unwrap();
    let csv_rows: Vec<Vec<&str>> = lines_csv.map(|l| l.split(',').collect()).collect();
    let json_rows = json["rows"].as_array().unwrap();
    assert_eq!(csv_rows.len(), json_rows.len());
    for (csv_row, json_row) in csv_rows.iter().zip(json_rows) {
        assert_eq!(csv_row[0], json_row["project"]);
        assert_eq!(csv_row[1], json_row["model"]);
        assert_eq!(csv_row[cost_column], json_row["cost_usd"]);
    }
    // Accept: text/csv works like format=csv.
    let accepted = server
        .client
        .get(format!(
            "{}/v1/spend?{range}&group_by=project,model",
            server.base
        ))
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(accepted, csv);

    // FOCUS: every mandatory column, BilledCost summing to the spend total, ListCost to
    // the records' list prices, the projects as sub-accounts.
    let (status, _, focus) = get(
        &server,
        &format!("/v1/spend?{range}&format=focus&tz=Europe/Oslo"),
    )
    .await;
    assert_eq!(status, 200, "{focus}");
    let mut focus_lines = focus.lines();
    let header: Vec<&str> = focus_lines.next().unwrap().split(',').collect();
    for column in [
        "BilledCost",
        "EffectiveCost",
        "ListCost",
        "ContractedCost",
        "BillingCurrency",
        "BillingAccountId",
        "BillingAccountName",
        "BillingPeriodStart",
        "BillingPeriodEnd",
        "ChargePeriodStart",
        "ChargePeriodEnd",
        "ChargeCategory",
        "ChargeClass",
        "ChargeDescription",
        "PricingQuantity",
        "PricingUnit",
        "ProviderName",
        "PublisherName",
        "InvoiceIssuerName",
        "ServiceName",
        "ServiceCategory",
        "ConsumedQuantity",
        "ConsumedUnit",
        "Tags",
        "SubAccountId",
        "x_InputTokens",
        "x_CachedInputTokens",
        "x_OutputTokens",
        "x_ReasoningTokens",
    ] {
        assert!(header.contains(&column), "FOCUS column {column} missing");
    }
    let column = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let rows: Vec<Vec<String>> = focus_lines.map(parse_csv_line).collect();
    let sum = |name: &str| -> Decimal {
        rows.iter()
            .map(|r| r[column(name)].parse::<Decimal>().unwrap())
            .sum()
    };
    let (_, total) = expected_rows(
        &records,
        rfc("2026-03-27T00:00:00Z"),
        rfc("2026-04-03T00:00:00Z"),
        &[],
        &|_| true,
        "UTC".parse().unwrap(),
    );
    assert_eq!(sum("BilledCost").normalize(), total);
    assert_eq!(sum("EffectiveCost").normalize(), total);
    // ListCost: published prices (cache and batch rates included), before negotiated
    // discounts; with no project overrides here, the cost itself.
    let list: Decimal = records
        .iter()
        .filter_map(|r| match &r.price {
            PriceOutcome::Priced(p) => Some(p.list_cost - p.cache_savings - p.batch_savings),
            PriceOutcome::Unpriced(_) => None,
        })
        .sum();
    assert_eq!(list.normalize(), total);
    assert_eq!(sum("ListCost").normalize(), list.normalize());
    let input: u64 = records.iter().map(|r| r.tokens.input).sum();
    assert_eq!(
        rows.iter()
            .map(|r| r[column("x_InputTokens")].parse::<u64>().unwrap())
            .sum::<u64>(),
        input
    );
    for row in &rows {
        assert_eq!(row[column("ServiceCategory")], "AI and Machine Learning");
        assert_eq!(row[column("ChargeCategory")], "Usage");
        assert_eq!(row[column("BillingCurrency")], "USD");
        assert!(
            ["search", "ads", "agents", "legal"].contains(&row[column("SubAccountId")].as_str())
        );
        // Charge periods are Oslo days, written in UTC with Z.
        let start = rfc(&row[column("ChargePeriodStart")]);
        let end = rfc(&row[column("ChargePeriodEnd")]);
        assert!(row[column("ChargePeriodStart")].ends_with('Z'));
        assert!(
            end > start && end - start <= Duration::hours(24),
            "{start} {end}"
        );
        let tags: BTreeMap<String, String> = serde_json::from_str(&row[column("Tags")]).unwrap();
        assert!(tags.contains_key("team"));
    }
    // The export is read a window (an Oslo day) at a time: the token lines still come
    // in charge-period order, each period and group once.
    let token_lines: Vec<&Vec<String>> = rows
        .iter()
        .filter(|r| r[column("x_UsageType")] == "tokens")
        .collect();
    let starts: Vec<DateTime<Utc>> = token_lines
        .iter()
        .map(|r| rfc(&r[column("ChargePeriodStart")]))
        .collect();
    assert!(starts.windows(2).all(|w| w[0] <= w[1]));
    let oslo: Tz = "Europe/Oslo".parse().unwrap();
    let days: BTreeSet<NaiveDate> = records
        .iter()
        .filter(|r| (rfc("2026-03-27T00:00:00Z")..rfc("2026-04-03T00:00:00Z")).contains(&r.time))
        .map(|r| r.time.with_timezone(&oslo).date_naive())
        .collect();
    assert!(days.len() > 1);
    assert_eq!(starts.iter().collect::<BTreeSet<_>>().len(), days.len());
    let mut groups = BTreeSet::new();
    for row in &token_lines {
        let group: Vec<&str> = [
            "ChargePeriodStart",
            "SubAccountId",
            "ProviderName",
            "SkuId",
            "x_ServiceTier",
            "x_Batch",
            "Tags",
        ]
        .map(|name| row[column(name)].as_str())
        .to_vec();
        assert!(groups.insert(group.clone()), "{group:?} twice");
    }
    // UTC days (read from the daily rows as they are): the same money and tokens.
    let (status, _, utc_days) = get(&server, &format!("/v1/spend?{range}&format=focus")).await;
    assert_eq!(status, 200, "{utc_days}");
    let utc_days: Vec<Vec<String>> = utc_days.lines().skip(1).map(parse_csv_line).collect();
    let billed: Decimal = utc_days
        .iter()
        .map(|r| r[column("BilledCost")].parse::<Decimal>().unwrap())
        .sum();
    assert_eq!(billed.normalize(), total);
    assert_eq!(
        utc_days
            .iter()
            .map(|r| r[column("x_InputTokens")].parse::<u64>().unwrap())
            .sum::<u64>(),
        input
    );
    // Month charge periods over a range that starts and ends inside months: the same
    // money, periods cut to the range.
    let (status, _, monthly) = get(
        &server,
        &format!("/v1/spend?{range}&format=focus&group_by=month"),
    )
    .await;
    assert_eq!(status, 200, "{monthly}");
    let monthly: Vec<Vec<String>> = monthly.lines().skip(1).map(parse_csv_line).collect();
    let billed: Decimal = monthly
        .iter()
        .map(|r| r[column("BilledCost")].parse::<Decimal>().unwrap())
        .sum();
    assert_eq!(billed.normalize(), total);
    let periods: BTreeSet<(String, String)> = monthly
        .iter()
        .map(|r| {
            (
                r[column("ChargePeriodStart")].clone(),
                r[column("ChargePeriodEnd")].clone(),
            )
        })
        .collect();
    assert_eq!(
        periods.into_iter().collect::<Vec<_>>(),
        [
            ("2026-03-27T00:00:00Z", "2026-04-01T00:00:00Z"),
            ("2026-04-01T00:00:00Z", "2026-04-03T00:00:00Z")
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    // The OpenRouter rows name the model's maker as publisher, OpenRouter as issuer.
    let openrouter = rows
        .iter()
        .find(|r| r[column("ProviderName")] == "OpenRouter")
        .expect("an OpenRouter row");
    assert_eq!(openrouter[column("PublisherName")], "Anthropic");
    assert_eq!(openrouter[column("InvoiceIssuerName")], "OpenRouter");
}

/// Splits one CSV line, honouring quotes.
pub fn parse_csv_line(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut field)),
            (c, _) => field.push(c),
        }
    }
    fields.push(field);
    fields
}

#[tokio::test]
async fn bad_parameters_get_a_400_that_names_them() {
    let db = TestDb::new().await;
    let server = TestServer::start(&db).await;
    for (query, parameter) in [
        ("/v1/spend?from=yesterday", "from"),
        ("/v1/spend?to=2026-13-01", "to"),
        ("/v1/spend?from=2026-04-02&to=2026-04-01", "to"),
        ("/v1/spend?group_by=colour", "group_by"),
        ("/v1/spend?group_by=day,month", "group_by"),
        ("/v1/spend?group_by=tag:a%20b", "group_by"),
        ("/v1/spend?tz=Mars/Olympus", "tz"),
        ("/v1/spend?tag.bad%20key=x", "tag"),
        ("/v1/spend?format=xlsx", "format"),
        ("/v1/spend?format=focus&group_by=week", "group_by"),
        ("/v1/spend?projects=a", "projects"),
        ("/v1/spend?project=a%00b", "project"),
        ("/v1/spend?tag.team=x%01", "tag"),
        ("/v1/savings?format=focus", "format"),
        ("/v1/whatif?from=2026-01-01", "model"),
        ("/v1/whatif?model=no-such-model-zz&provider=openai", "model"),
        ("/v1/unpriced?group_by=model", "group_by"),
    ] {
        let (status, _, body) = get(&server, query).await;
        assert_eq!(status, 400, "{query}: {body}");
        let answer: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(answer["error"]["code"], "invalid_parameter", "{query}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("invalid {parameter}:")),
            "{query}: {message}"
        );
    }
}

#[tokio::test]
async fn savings_what_if_and_unpriced_models_add_up() {
    let db = TestDb::new().await;
    let lines = generated_records(350);
    let book = book();
    let records = seen(book, &lines);
    let server = ingested_server(&db, &lines).await;
    let range = "from=2026-03-27T00:00:00Z&to=2026-04-03T00:00:00Z";

    // Savings: per project/provider/model, against the records' own figures.
    let savings = get_json(&server, &format!("/v1/savings?{range}")).await;
    let mut expected: BTreeMap<(String, String, String), [Decimal; 4]> = BTreeMap::new();
    for record in &records {
        if let PriceOutcome::Priced(p) = &record.price {
            let key = (
                record.keys["project"].clone(),
                record.keys["provider"].clone(),
                record.keys["model"].clone(),
            );
            let sums = expected.entry(key).or_default();
            sums[0] += p.list_cost;
            sums[1] += p.cost;
            sums[2] += p.cache_savings;
            sums[3] += p.batch_savings;
        }
    }
    let mut answered: BTreeMap<(String, String, String), [Decimal; 4]> = BTreeMap::new();
    for row in savings["rows"].as_array().unwrap() {
        let money = |name: &str| row[name].as_str().unwrap().parse::<Decimal>().unwrap();
        // No project overrides here: list = cost + cache + batch, nothing negotiated.
        assert_eq!(money("negotiated_savings_usd"), Decimal::ZERO, "{row}");
        assert_eq!(
            money("total_savings_usd"),
            money("cache_savings_usd") + money("batch_savings_usd")
        );
        if row["requests"] == row["unpriced_requests"] {
            continue;
        }
        answered.insert(
            (
                row["project"].as_str().unwrap().to_owned(),
                row["provider"].as_str().unwrap().to_owned(),
                row["model"].as_str().unwrap().to_owned(),
            ),
            [
                money("list_cost_usd"),
                money("cost_usd"),
                money("cache_savings_usd"),
                money("batch_savings_usd"),
            ],
        );
    }
    for sums in expected.values_mut() {
        for amount in sums.iter_mut() {
            *amount = amount.normalize();
        }
    }
    assert_eq!(answered, expected);
    let batch_saved: Decimal = expected.values().map(|s| s[3]).sum();
    assert!(
        batch_saved > Decimal::ZERO,
        "the records include batch ones"
    );

    // What-if: each priced record on gpt-5-mini, priced by the test.
    let what_if = get_json(&server, &format!("/v1/whatif?{range}&model=gpt-5-mini")).await;
    let mut actual = Decimal::ZERO;
    let mut on_mini = Decimal::ZERO;
    let mut compared = 0u64;
    for line in &lines {
        let priced = prepare(book, line);
        let PriceOutcome::Priced(p) = &priced.price else {
            continue;
        };
        let mut moved = priced.record.clone();
        moved.provider = "openai".into();
        moved.model = "gpt-5-mini".into();
        if let PriceOutcome::Priced(m) = book.price(&moved) {
            actual += p.cost;
            on_mini += m.cost;
            compared += 1;
        }
    }
    assert!(compared > 200);
    assert_eq!(what_if["target_model"], "gpt-5-mini");
    assert_eq!(what_if["total"]["compared_requests"], compared);
    assert_eq!(
        what_if["total"]["actual_cost_usd"],
        actual.normalize().to_string()
    );
    assert_eq!(
        what_if["total"]["what_if_cost_usd"],
        on_mini.normalize().to_string()
    );
    assert_eq!(what_if["total"]["requests"], lines.len());

    // Unpriced: every model and name seen without a price (the made-up one, and tiers
    // a sheet has no price for), with counts and first/last sightings.
    let unpriced = get_json(&server, "/v1/unpriced").await;
    /// (requests, first seen, last seen, output tokens) by (provider, model).
    type Sightings = BTreeMap<(String, String), (u64, DateTime<Utc>, DateTime<Utc>, u64)>;
    let mut expected = Sightings::new();
    for line in &lines {
        let priced = prepare(book, line);
        if let PriceOutcome::Unpriced(_) = priced.price {
            let record = priced.record;
            let entry = expected.entry((record.provider, record.model)).or_insert((
                0,
                record.time,
                record.time,
                0,
            ));
            entry.0 += 1;
            entry.1 = entry.1.min(record.time);
            entry.2 = entry.2.max(record.time);
            entry.3 += record.tokens.output;
        }
    }
    assert!(expected.contains_key(&("openai".to_owned(), "made-up-model-9".to_owned())));
    let answered: Sightings = unpriced["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                (
                    m["provider"].as_str().unwrap().to_owned(),
                    m["model"].as_str().unwrap().to_owned(),
                ),
                (
                    m["requests"].as_u64().unwrap(),
                    rfc(m["first_seen"].as_str().unwrap()),
                    rfc(m["last_seen"].as_str().unwrap()),
                    m["tokens"]["output"].as_u64().unwrap(),
                ),
            )
        })
        .collect();
    assert_eq!(answered, expected);
}
