//! Rows read the same way on both backends. The decoders of budgets, alerts,
//! deliveries, attempts and tokens are written once, over [`Columns`], which each backend
//! implements for its row type: times are `timestamptz` on Postgres and Unix
//! microseconds on SQLite, small counts `int4` on Postgres and `INTEGER` on SQLite.
//! Only the SQL around them differs by dialect.

use chrono::{DateTime, TimeZone, Utc};
use sqlx::Row;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;

use super::types::{
    AlertKind, AlertRecord, BudgetSource, Delivery, DeliveryAttempt, DeliveryStatus, PriceSync,
    Role, StoredBudget, StoredToken, WebhookFormat,
};
use crate::money;

/// One column at a time, typed the way the domain reads it.
pub(crate) trait Columns {
    fn text(&self, index: usize) -> Result<String, sqlx::Error>;
    fn opt_text(&self, index: usize) -> Result<Option<String>, sqlx::Error>;
    fn int(&self, index: usize) -> Result<i64, sqlx::Error>;
    fn boolean(&self, index: usize) -> Result<bool, sqlx::Error>;
    fn opt_int(&self, index: usize) -> Result<Option<i64>, sqlx::Error>;
    fn time(&self, index: usize) -> Result<DateTime<Utc>, sqlx::Error>;
    fn opt_time(&self, index: usize) -> Result<Option<DateTime<Utc>>, sqlx::Error>;
}

impl Columns for PgRow {
    fn text(&self, index: usize) -> Result<String, sqlx::Error> {
        self.try_get(index)
    }

    fn opt_text(&self, index: usize) -> Result<Option<String>, sqlx::Error> {
        self.try_get(index)
    }

    fn int(&self, index: usize) -> Result<i64, sqlx::Error> {
        // `int4` and `int8` columns alike.
        self.try_get::<i64, _>(index)
            .or_else(|_| self.try_get::<i32, _>(index).map(i64::from))
    }

    fn boolean(&self, index: usize) -> Result<bool, sqlx::Error> {
        self.try_get(index)
    }

    fn opt_int(&self, index: usize) -> Result<Option<i64>, sqlx::Error> {
        self.try_get::<Option<i64>, _>(index).or_else(|_| {
            self.try_get::<Option<i32>, _>(index)
                .map(|value| value.map(i64::from))
        })
    }

    fn time(&self, index: usize) -> Result<DateTime<Utc>, sqlx::Error> {
        self.try_get(index)
    }

    fn opt_time(&self, index: usize) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
        self.try_get(index)
    }
}

impl Columns for SqliteRow {
    fn text(&self, index: usize) -> Result<String, sqlx::Error> {
        self.try_get(index)
    }

    fn opt_text(&self, index: usize) -> Result<Option<String>, sqlx::Error> {
        self.try_get(index)
    }

    fn int(&self, index: usize) -> Result<i64, sqlx::Error> {
        self.try_get(index)
    }

    fn opt_int(&self, index: usize) -> Result<Option<i64>, sqlx::Error> {
        self.try_get(index)
    }

    fn boolean(&self, index: usize) -> Result<bool, sqlx::Error> {
        self.try_get(index)
    }

    fn time(&self, index: usize) -> Result<DateTime<Utc>, sqlx::Error> {
        Ok(from_micros(self.try_get(index)?))
    }

    fn opt_time(&self, index: usize) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
        Ok(self.try_get::<Option<i64>, _>(index)?.map(from_micros))
    }
}

/// SQLite keeps times as Unix microseconds.
pub(super) fn micros(time: DateTime<Utc>) -> i64 {
    time.timestamp_micros()
}

pub(super) fn from_micros(value: i64) -> DateTime<Utc> {
    Utc.timestamp_micros(value).single().unwrap_or_default()
}

/// `id, name, spec, source, created_at, updated_at`.
pub(super) fn budget_from(row: &impl Columns) -> Result<StoredBudget, sqlx::Error> {
    Ok(StoredBudget {
        id: row.text(0)?,
        name: row.text(1)?,
        spec_json: row.text(2)?,
        source: BudgetSource::decode(&row.text(3)?)?,
        created_at: row.time(4)?,
        updated_at: row.time(5)?,
    })
}

/// `id, budget_id, budget_name, period_start, period_end, kind, threshold_key,
/// threshold_nanos, spend_nanos, limit_nanos, forecast_nanos, fired_at`.
pub(super) fn alert_from(row: &impl Columns) -> Result<AlertRecord, sqlx::Error> {
    Ok(AlertRecord {
        id: row.text(0)?,
        budget_id: row.text(1)?,
        budget_name: row.text(2)?,
        period_start: row.time(3)?,
        period_end: row.time(4)?,
        kind: AlertKind::decode(&row.text(5)?)?,
        threshold_key: row.text(6)?,
        threshold: row.opt_int(7)?.map(money::from_nanos),
        spend: money::from_nanos(row.int(8)?),
        limit: money::from_nanos(row.int(9)?),
        forecast: row.opt_int(10)?.map(money::from_nanos),
        fired_at: row.time(11)?,
        project: row.opt_text(12)?,
    })
}

/// `id, alert_id, url, format, secret, body, status, attempts, next_attempt_at,
/// expires_at, created_at, delivered_at, last_error`.
pub(super) fn delivery_from(row: &impl Columns) -> Result<Delivery, sqlx::Error> {
    Ok(Delivery {
        id: row.text(0)?,
        alert_id: row.opt_text(1)?,
        url: row.text(2)?,
        format: WebhookFormat::decode(&row.text(3)?)?,
        secret: row.opt_text(4)?,
        body: row.text(5)?,
        status: DeliveryStatus::decode(&row.text(6)?)?,
        attempts: u32::try_from(row.int(7)?).unwrap_or(0),
        next_attempt_at: row.time(8)?,
        expires_at: row.time(9)?,
        created_at: row.time(10)?,
        delivered_at: row.opt_time(11)?,
        last_error: row.opt_text(12)?,
    })
}

/// `delivery_id, attempt, at, status_code, duration_ms, error, response`.
pub(super) fn attempt_from(row: &impl Columns) -> Result<DeliveryAttempt, sqlx::Error> {
    Ok(DeliveryAttempt {
        delivery_id: row.text(0)?,
        attempt: u32::try_from(row.int(1)?).unwrap_or(0),
        at: row.time(2)?,
        status_code: row.opt_int(3)?.and_then(|c| u16::try_from(c).ok()),
        duration_ms: u64::try_from(row.int(4)?).unwrap_or(0),
        error: row.opt_text(5)?,
        response: row.opt_text(6)?,
    })
}

/// `id, name, role, projects (JSON text), hash, created_at, expires_at, revoked_at`.
pub(super) fn token_from(row: &impl Columns) -> Result<StoredToken, sqlx::Error> {
    Ok(StoredToken {
        id: row.text(0)?,
        name: row.text(1)?,
        role: Role::decode(&row.text(2)?)?,
        projects: serde_json::from_str(&row.text(3)?).map_err(|e| sqlx::Error::Decode(e.into()))?,
        hash: row.text(4)?,
        created_at: row.time(5)?,
        expires_at: row.opt_time(6)?,
        revoked_at: row.opt_time(7)?,
    })
}

/// `source, parent_hash, content_hash, synced_at, models, changed_models, changes`.
pub(super) fn price_sync_from(row: &impl Columns) -> Result<PriceSync, sqlx::Error> {
    Ok(PriceSync {
        source: row.text(0)?,
        parent_hash: row.text(1)?,
        content_hash: row.text(2)?,
        synced_at: row.time(3)?,
        models: u32::try_from(row.int(4)?).unwrap_or(0),
        changed_models: u32::try_from(row.int(5)?).unwrap_or(0),
        changes: row.text(6)?,
    })
}

/// A token's projects as the JSON text both backends store.
pub(super) fn projects_json(token: &StoredToken) -> String {
    serde_json::to_string(&token.projects).unwrap_or_else(|_| "[]".into())
}
