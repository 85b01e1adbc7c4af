//! Synced prices in Postgres.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::columns::price_sync_from;
use super::{PgStore, PriceStore, PriceSync, StoreError};

#[async_trait]
impl PriceStore for PgStore {
    async fn price_syncs(&self) -> Result<Vec<PriceSync>, StoreError> {
        let rows = sqlx::query(
            "SELECT source, parent_hash, content_hash, synced_at, models, changed_models, changes
             FROM price_syncs ORDER BY synced_at, source, content_hash",
        )
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(price_sync_from).collect::<Result<_, _>>()?)
    }

    async fn record_price_sync(&self, sync: &PriceSync) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO price_syncs (source, parent_hash, content_hash, synced_at, models,
                 changed_models, changes)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        )
        .bind(&sync.source)
        .bind(&sync.parent_hash)
        .bind(&sync.content_hash)
        .bind(sync.synced_at)
        .bind(i32::try_from(sync.models).unwrap_or(i32::MAX))
        .bind(i32::try_from(sync.changed_models).unwrap_or(i32::MAX))
        .bind(&sync.changes)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn price_sync_marker(&self) -> Result<(u64, Option<DateTime<Utc>>), StoreError> {
        let (count, last): (i64, Option<DateTime<Utc>>) =
            sqlx::query_as("SELECT count(*), max(synced_at) FROM price_syncs")
                .fetch_one(self.pool())
                .await?;
        Ok((u64::try_from(count).unwrap_or(0), last))
    }
}
