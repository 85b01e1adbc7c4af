//! API tokens in SQLite (times in Unix microseconds).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::columns::{micros, projects_json, token_from};
use super::{SqliteStore, StoreError, StoredToken, TokenStore};

const TOKEN_COLUMNS: &str = "id, name, role, projects, hash, created_at, expires_at, revoked_at";

#[async_trait]
impl TokenStore for SqliteStore {
    async fn insert_token(&self, token: &StoredToken) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO api_tokens (id, name, role, projects, hash, created_at, expires_at, revoked_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&token.id)
        .bind(&token.name)
        .bind(token.role.as_str())
        .bind(projects_json(token))
        .bind(&token.hash)
        .bind(micros(token.created_at))
        .bind(token.expires_at.map(micros))
        .bind(token.revoked_at.map(micros))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn tokens(&self) -> Result<Vec<StoredToken>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY created_at, id"
        )))
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(token_from).collect::<Result<_, _>>()?)
    }

    async fn token(&self, id: &str) -> Result<Option<StoredToken>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE id = ?"
        )))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.as_ref().map(token_from).transpose()?)
    }

    async fn revoke_token(&self, id: &str, at: DateTime<Utc>) -> Result<bool, StoreError> {
        let done =
            sqlx::query("UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
                .bind(micros(at))
                .bind(id)
                .execute(self.pool())
                .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn any_token(&self) -> Result<bool, StoreError> {
        let (any,): (bool,) = sqlx::query_as("SELECT EXISTS (SELECT 1 FROM api_tokens)")
            .fetch_one(self.pool())
            .await?;
        Ok(any)
    }
}
