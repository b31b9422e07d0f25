//! Workspaces, their API keys, and server settings (the admin token's hash).

use super::db::{BeginWrite, DbRow, with_db};
use super::{Result, Store, parse_ts, ts};
use chrono::{DateTime, Utc};
use serde::Serialize;

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

fn workspace_from_row(r: &impl DbRow) -> Result<WorkspaceRecord> {
    Ok(WorkspaceRecord {
        id: r.col("id")?,
        name: r.col("name")?,
        created: parse_ts(&r.col::<String>("created")?)?,
    })
}

fn key_from_row(r: &impl DbRow) -> Result<ApiKeyRecord> {
    Ok(ApiKeyRecord {
        id: r.col("id")?,
        workspace_id: r.col("workspace_id")?,
        prefix: r.col("prefix")?,
        hash: r.col("hash")?,
        name: r.col("name")?,
        created: parse_ts(&r.col::<String>("created")?)?,
        revoked: super::parse_opt_ts(r.col("revoked")?)?,
    })
}

impl Store {
    pub async fn setting(&self, key: &str) -> Result<Option<String>> {
        with_db!(&self.db, pool => {
        let row = sqlx::query("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_optional(pool)
            .await?;
        Ok(row.map(|r| r.col("value")).transpose()?)
        })
    }

    /// Stores a setting unless it is already set; returns whether it was stored.
    pub async fn init_setting(&self, key: &str, value: &str) -> Result<bool> {
        with_db!(&self.db, pool => {
        let done =
            sqlx::query("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(key)
                .bind(value)
                .execute(pool)
                .await?;
        Ok(done.rows_affected() == 1)
        })
    }

    pub async fn put_setting(&self, key: &str, value: &str) -> Result<()> {
        with_db!(&self.db, pool => {
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES ($1, $2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(pool)
        .await?;
        Ok(())
        })
    }

    /// Creates a workspace with its first key; `None` when the name is taken.
    pub async fn create_workspace(
        &self,
        workspace: &WorkspaceRecord,
        key: &ApiKeyRecord,
    ) -> Result<Option<()>> {
        with_db!(&self.db, pool => {
        let mut tx = pool.begin_write().await?;
        let done = sqlx::query(
            "INSERT INTO workspaces (id, name, created) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(&workspace.id)
        .bind(&workspace.name)
        .bind(ts(workspace.created))
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        insert_key!(&mut *tx, key)?;
        tx.commit().await?;
        Ok(Some(()))
        })
    }

    pub async fn workspace(&self, id: &str) -> Result<Option<WorkspaceRecord>> {
        with_db!(&self.db, pool => {
        let row = sqlx::query("SELECT * FROM workspaces WHERE id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await?;
        row.map(|r| workspace_from_row(&r)).transpose()
        })
    }

    /// Every workspace, by name.
    pub async fn workspaces(&self) -> Result<Vec<WorkspaceRecord>> {
        with_db!(&self.db, pool => {
        let rows = sqlx::query("SELECT * FROM workspaces ORDER BY name")
            .fetch_all(pool)
            .await?;
        rows.iter().map(workspace_from_row).collect()
        })
    }

    /// A page of the server's workspaces by name, after `after`.
    pub async fn workspaces_page(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<WorkspaceRecord>> {
        with_db!(&self.db, pool, DB => {
        let mut q = sqlx::QueryBuilder::<DB>::new("SELECT * FROM workspaces");
        if let Some(name) = after {
            q.push(" WHERE name > ").push_bind(name.to_owned());
        }
        q.push(" ORDER BY name LIMIT ").push_bind(limit);
        let rows = q.build().fetch_all(pool).await?;
        rows.iter().map(workspace_from_row).collect()
        })
    }

    pub async fn workspace_by_name(&self, name: &str) -> Result<Option<WorkspaceRecord>> {
        with_db!(&self.db, pool => {
        let row = sqlx::query("SELECT * FROM workspaces WHERE name = $1")
            .bind(name)
            .fetch_optional(pool)
            .await?;
        row.map(|r| workspace_from_row(&r)).transpose()
        })
    }

    pub async fn create_key(&self, key: &ApiKeyRecord) -> Result<()> {
        with_db!(&self.db, pool => {
        let mut conn = pool.acquire().await?;
        insert_key!(&mut *conn, key)?;
            Ok(())
        })
    }

    /// The live (not revoked) key with this prefix.
    pub async fn key_by_prefix(&self, prefix: &str) -> Result<Option<ApiKeyRecord>> {
        with_db!(&self.db, pool => {
        let row = sqlx::query("SELECT * FROM api_keys WHERE prefix = $1 AND revoked IS NULL")
            .bind(prefix)
            .fetch_optional(pool)
            .await?;
        row.map(|r| key_from_row(&r)).transpose()
        })
    }

    /// A workspace's keys, oldest first (ids sort by creation time).
    pub async fn keys(&self, workspace_id: &str) -> Result<Vec<ApiKeyRecord>> {
        self.keys_page(workspace_id, None, i64::MAX).await
    }

    /// At most `limit` keys of a workspace, oldest first, after the key `after`.
    pub async fn keys_page(
        &self,
        workspace_id: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ApiKeyRecord>> {
        with_db!(&self.db, pool, DB => {
        let mut q = sqlx::QueryBuilder::<DB>::new("SELECT * FROM api_keys WHERE workspace_id = ");
        q.push_bind(workspace_id.to_owned());
        if let Some(id) = after {
            q.push(" AND id > ").push_bind(id.to_owned());
        }
        q.push(" ORDER BY id LIMIT ").push_bind(limit);
        let rows = q.build().fetch_all(pool).await?;
        rows.iter().map(key_from_row).collect()
        })
    }

    /// Revokes a key of a workspace, unless it is the workspace's last active key
    /// (which would lock the workspace out: an admin can mint it a new key instead).
    pub async fn revoke_key(&self, workspace_id: &str, id: &str) -> Result<Revoked> {
        let postgres = self.db.is_postgres();
        with_db!(&self.db, pool => {
        let mut tx = pool.begin_write().await?;
        // Two revokes at once must not both see the other key still active: the
        // workspace's row is their lock on PostgreSQL (SQLite's write transaction
        // already runs alone).
        if postgres {
            sqlx::query("SELECT id FROM workspaces WHERE id = $1 FOR UPDATE")
                .bind(workspace_id)
                .fetch_optional(&mut *tx)
                .await?;
        }
        let active: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM api_keys WHERE workspace_id = $1 AND revoked IS NULL",
        )
        .bind(workspace_id)
        .fetch_all(&mut *tx)
        .await?;
        if !active.iter().any(|k| k == id) {
            return Ok(Revoked::Missing);
        }
        if active.len() == 1 {
            return Ok(Revoked::LastKey);
        }
        sqlx::query(
            "UPDATE api_keys SET revoked = $1 WHERE id = $2 AND workspace_id = $3 AND revoked IS NULL",
        )
        .bind(ts(Utc::now()))
        .bind(id)
        .bind(workspace_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Revoked::Done)
        })
    }
}

/// What became of a key to revoke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoked {
    Done,
    /// No active key with this id in the workspace.
    Missing,
    /// The workspace's only active key: kept.
    LastKey,
}

/// Stores an API key, on a connection or in a transaction.
macro_rules! insert_key {
    ($conn:expr, $key:expr) => {
        sqlx::query(
            "INSERT INTO api_keys (id, workspace_id, prefix, hash, name, created) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&$key.id)
        .bind(&$key.workspace_id)
        .bind(&$key.prefix)
        .bind(&$key.hash)
        .bind(&$key.name)
        .bind(ts($key.created))
        .execute($conn)
        .await
    };
}
use insert_key;
