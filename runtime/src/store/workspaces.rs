//! Workspaces, their API keys, and server settings (the admin token's hash).

use super::{Result, Store, parse_ts, ts};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

#[derive(Debug, Clone, Serialize)]
pub struct WorkspaceRecord {
    pub id: String,
    pub name: String,
    pub created: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ApiKeyRecord {
    pub id: String,
    pub workspace_id: String,
    pub prefix: String,
    #[serde(skip)]
    pub hash: String,
    pub name: Option<String>,
    pub created: DateTime<Utc>,
    pub revoked: Option<DateTime<Utc>>,
}

fn key_from_row(r: &SqliteRow) -> Result<ApiKeyRecord> {
    Ok(ApiKeyRecord {
        id: r.try_get("id")?,
        workspace_id: r.try_get("workspace_id")?,
        prefix: r.try_get("prefix")?,
        hash: r.try_get("hash")?,
        name: r.try_get("name")?,
        created: parse_ts(&r.try_get::<String, _>("created")?)?,
        revoked: super::parse_opt_ts(r.try_get("revoked")?)?,
    })
}

impl Store {
    pub async fn setting(&self, key: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT value FROM settings WHERE key = ?")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("value")).transpose()?)
    }

    /// Stores a setting unless it is already set; returns whether it was stored.
    pub async fn init_setting(&self, key: &str, value: &str) -> Result<bool> {
        let done =
            sqlx::query("INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT DO NOTHING")
                .bind(key)
                .bind(value)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn put_setting(&self, key: &str, value: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES (?, ?)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Creates a workspace with its first key; `None` when the name is taken.
    pub async fn create_workspace(
        &self,
        workspace: &WorkspaceRecord,
        key: &ApiKeyRecord,
    ) -> Result<Option<()>> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "INSERT INTO workspaces (id, name, created) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(&workspace.id)
        .bind(&workspace.name)
        .bind(ts(workspace.created))
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        insert_key(&mut tx, key).await?;
        tx.commit().await?;
        Ok(Some(()))
    }

    pub async fn workspace_by_name(&self, name: &str) -> Result<Option<WorkspaceRecord>> {
        let row = sqlx::query("SELECT * FROM workspaces WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok(WorkspaceRecord {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                created: parse_ts(&r.try_get::<String, _>("created")?)?,
            })
        })
        .transpose()
    }

    pub async fn create_key(&self, key: &ApiKeyRecord) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        insert_key(&mut conn, key).await
    }

    /// The live (not revoked) key with this prefix.
    pub async fn key_by_prefix(&self, prefix: &str) -> Result<Option<ApiKeyRecord>> {
        let row = sqlx::query("SELECT * FROM api_keys WHERE prefix = ? AND revoked IS NULL")
            .bind(prefix)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| key_from_row(&r)).transpose()
    }

    pub async fn keys(&self, workspace_id: &str) -> Result<Vec<ApiKeyRecord>> {
        let rows = sqlx::query("SELECT * FROM api_keys WHERE workspace_id = ? ORDER BY created")
            .bind(workspace_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(key_from_row).collect()
    }

    /// Revokes a key of the workspace; false when there is no such live key.
    pub async fn revoke_key(&self, workspace_id: &str, id: &str) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE api_keys SET revoked = ? WHERE id = ? AND workspace_id = ? AND revoked IS NULL",
        )
        .bind(ts(Utc::now()))
        .bind(id)
        .bind(workspace_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

async fn insert_key(conn: &mut sqlx::SqliteConnection, key: &ApiKeyRecord) -> Result<()> {
    sqlx::query(
        "INSERT INTO api_keys (id, workspace_id, prefix, hash, name, created) VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(&key.id)
    .bind(&key.workspace_id)
    .bind(&key.prefix)
    .bind(&key.hash)
    .bind(&key.name)
    .bind(ts(key.created))
    .execute(&mut *conn)
    .await?;
    Ok(())
}
