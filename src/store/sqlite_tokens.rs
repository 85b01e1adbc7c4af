//! API tokens in SQLite (times in Unix microseconds).

use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::sqlite::{from_micros, micros};
use super::{SqliteStore, StoreError, StoredToken};

const TOKEN_COLUMNS: &str = "id, name, role, projects, hash, created_at, expires_at, revoked_at";

fn token_from(row: &SqliteRow) -> Result<StoredToken, sqlx::Error> {
    let projects: String = row.try_get(3)?;
    Ok(StoredToken {
        id: row.try_get(0)?,
        name: row.try_get(1)?,
        role: row.try_get(2)?,
        projects: serde_json::from_str(&projects).map_err(|e| sqlx::Error::Decode(e.into()))?,
        hash: row.try_get(4)?,
        created_at: from_micros(row.try_get(5)?),
        expires_at: row.try_get::<Option<i64>, _>(6)?.map(from_micros),
        revoked_at: row.try_get::<Option<i64>, _>(7)?.map(from_micros),
    })
}

impl SqliteStore {
    pub(super) async fn sqlite_insert_token(&self, token: &StoredToken) -> Result<(), StoreError> {
        let projects = serde_json::to_string(&token.projects).unwrap_or_else(|_| "[]".into());
        sqlx::query(
            "INSERT INTO api_tokens (id, name, role, projects, hash, created_at, expires_at, revoked_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&token.id)
        .bind(&token.name)
        .bind(&token.role)
        .bind(projects)
        .bind(&token.hash)
        .bind(micros(token.created_at))
        .bind(token.expires_at.map(micros))
        .bind(token.revoked_at.map(micros))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub(super) async fn sqlite_tokens(&self) -> Result<Vec<StoredToken>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY created_at, id"
        )))
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(token_from).collect::<Result<_, _>>()?)
    }

    pub(super) async fn sqlite_token(&self, id: &str) -> Result<Option<StoredToken>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE id = ?"
        )))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.as_ref().map(token_from).transpose()?)
    }

    pub(super) async fn sqlite_revoke_token(
        &self,
        id: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let done =
            sqlx::query("UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
                .bind(micros(at))
                .bind(id)
                .execute(self.pool())
                .await?;
        Ok(done.rows_affected() > 0)
    }

    pub(super) async fn sqlite_any_token(&self) -> Result<bool, StoreError> {
        let (any,): (bool,) = sqlx::query_as("SELECT EXISTS (SELECT 1 FROM api_tokens)")
            .fetch_one(self.pool())
            .await?;
        Ok(any)
    }
}
