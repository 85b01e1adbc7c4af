//! Budgets, alerts and the delivery outbox in Postgres.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{Postgres, Transaction};

use super::columns::{alert_from, attempt_from, budget_from, delivery_from};
use super::rows::count;
use super::{
    AlertQuery, AlertRecord, BudgetStore, Delivery, DeliveryAttempt, DeliveryOutcome, NewDelivery,
    OutboxStore, PgStore, StoreError, StoredBudget,
};
use crate::money;

const BUDGET_COLUMNS: &str = "id, name, spec::text, source, created_at, updated_at";
const ALERT_COLUMNS: &str = "id, budget_id, budget_name, period_start, period_end, kind, \
     threshold_key, threshold_nanos, spend_nanos, limit_nanos, forecast_nanos, fired_at, project";
const DELIVERY_COLUMNS: &str = "id, alert_id, url, format, secret, body, status, attempts, \
     next_attempt_at, expires_at, created_at, delivered_at, last_error";

async fn insert_deliveries(
    tx: &mut Transaction<'_, Postgres>,
    alert_id: Option<&str>,
    deliveries: &[NewDelivery],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    for delivery in deliveries {
        sqlx::query(
            "INSERT INTO deliveries (id, alert_id, url, format, secret, body, status, attempts,
                 next_attempt_at, expires_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $7, $8, $7)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(&delivery.id)
        .bind(alert_id)
        .bind(&delivery.url)
        .bind(delivery.format.as_str())
        .bind(&delivery.secret)
        .bind(&delivery.body)
        .bind(now)
        .bind(delivery.expires_at)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

#[async_trait]
impl BudgetStore for PgStore {
    async fn budgets(&self) -> Result<Vec<StoredBudget>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {BUDGET_COLUMNS} FROM budgets ORDER BY name"
        )))
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(budget_from).collect::<Result<_, _>>()?)
    }

    async fn budget(&self, id: &str) -> Result<Option<StoredBudget>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {BUDGET_COLUMNS} FROM budgets WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.as_ref().map(budget_from).transpose()?)
    }

    async fn insert_budget(&self, budget: &StoredBudget) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO budgets (id, name, spec, source, created_at, updated_at)
             VALUES ($1, $2, $3::jsonb, $4, $5, $6)",
        )
        .bind(&budget.id)
        .bind(&budget.name)
        .bind(&budget.spec_json)
        .bind(budget.source.as_str())
        .bind(budget.created_at)
        .bind(budget.updated_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn update_budget(&self, budget: &StoredBudget) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE budgets SET name = $2, spec = $3::jsonb, source = $4, updated_at = $5
             WHERE id = $1",
        )
        .bind(&budget.id)
        .bind(&budget.name)
        .bind(&budget.spec_json)
        .bind(budget.source.as_str())
        .bind(budget.updated_at)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_budget(&self, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM budgets WHERE id = $1")
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn fire_alert(
        &self,
        alert: &AlertRecord,
        deliveries: &[NewDelivery],
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO alerts (id, budget_id, budget_name, period_start, period_end, kind,
                 threshold_key, threshold_nanos, spend_nanos, limit_nanos, forecast_nanos, fired_at, project)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
             ON CONFLICT (budget_id, period_start, threshold_key) DO NOTHING
             RETURNING id",
        )
        .bind(&alert.id)
        .bind(&alert.budget_id)
        .bind(&alert.budget_name)
        .bind(alert.period_start)
        .bind(alert.period_end)
        .bind(alert.kind.as_str())
        .bind(&alert.threshold_key)
        .bind(alert.threshold.map(money::to_nanos))
        .bind(money::to_nanos(alert.spend))
        .bind(money::to_nanos(alert.limit))
        .bind(alert.forecast.map(money::to_nanos))
        .bind(alert.fired_at)
        .bind(&alert.project)
        .fetch_optional(&mut *tx)
        .await?;
        if inserted.is_none() {
            tx.rollback().await?;
            return Ok(false);
        }
        insert_deliveries(&mut tx, Some(&alert.id), deliveries, alert.fired_at).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn alerts(&self, query: &AlertQuery) -> Result<Vec<AlertRecord>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ALERT_COLUMNS} FROM alerts
             WHERE ($1::text IS NULL OR budget_id = $1)
               AND ($2::timestamptz IS NULL OR fired_at >= $2)
               AND ($3::timestamptz IS NULL OR fired_at < $3)
             ORDER BY fired_at DESC, id LIMIT $4"
        )))
        .bind(&query.budget_id)
        .bind(query.from)
        .bind(query.to)
        .bind(i64::from(query.limit))
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(alert_from).collect::<Result<_, _>>()?)
    }

    async fn claim_digest(
        &self,
        digest: &str,
        period_start: DateTime<Utc>,
        deliveries: &[NewDelivery],
    ) -> Result<bool, StoreError> {
        let now = Utc::now();
        let mut tx = self.pool().begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO digest_runs (digest, period_start, sent_at) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING RETURNING digest",
        )
        .bind(digest)
        .bind(period_start)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        if inserted.is_none() {
            tx.rollback().await?;
            return Ok(false);
        }
        insert_deliveries(&mut tx, None, deliveries, now).await?;
        tx.commit().await?;
        Ok(true)
    }
}

#[async_trait]
impl OutboxStore for PgStore {
    async fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        lease: std::time::Duration,
    ) -> Result<Vec<Delivery>, StoreError> {
        let until = now + chrono::Duration::from_std(lease).unwrap_or_default();
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE deliveries SET leased_until = $2 WHERE id IN (
                 SELECT id FROM deliveries
                 WHERE status = 'pending' AND next_attempt_at <= $1
                   AND (leased_until IS NULL OR leased_until <= $1)
                 ORDER BY next_attempt_at, created_at, id LIMIT $3
                 FOR UPDATE SKIP LOCKED)
             RETURNING {DELIVERY_COLUMNS}"
        )))
        .bind(now)
        .bind(until)
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(delivery_from).collect::<Result<_, _>>()?)
    }

    async fn finish_attempt(
        &self,
        attempt: &DeliveryAttempt,
        outcome: &DeliveryOutcome,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "INSERT INTO delivery_attempts (delivery_id, attempt, at, status_code, duration_ms, error, response)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        )
        .bind(&attempt.delivery_id)
        .bind(i32::try_from(attempt.attempt).unwrap_or(i32::MAX))
        .bind(attempt.at)
        .bind(attempt.status_code.map(i32::from))
        .bind(count(attempt.duration_ms))
        .bind(&attempt.error)
        .bind(&attempt.response)
        .execute(&mut *tx)
        .await?;
        let (status, next, delivered) = outcome.applied(attempt.at);
        sqlx::query(
            "UPDATE deliveries SET attempts = greatest(attempts, $2), status = $3,
                 next_attempt_at = $4, delivered_at = $5, last_error = $6, leased_until = NULL
             WHERE id = $1 AND status = 'pending'",
        )
        .bind(&attempt.delivery_id)
        .bind(i32::try_from(attempt.attempt).unwrap_or(i32::MAX))
        .bind(status.as_str())
        .bind(next)
        .bind(delivered)
        .bind(&attempt.error)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn deliveries(&self, alert_id: Option<&str>) -> Result<Vec<Delivery>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries
             WHERE $1::text IS NULL OR alert_id = $1 ORDER BY created_at, id"
        )))
        .bind(alert_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(delivery_from).collect::<Result<_, _>>()?)
    }

    async fn delivery_attempts(
        &self,
        delivery_id: &str,
    ) -> Result<Vec<DeliveryAttempt>, StoreError> {
        let rows = sqlx::query(
            "SELECT delivery_id, attempt, at, status_code, duration_ms, error, response
             FROM delivery_attempts WHERE delivery_id = $1 ORDER BY attempt",
        )
        .bind(delivery_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(attempt_from).collect::<Result<_, _>>()?)
    }
}
