//! Variables (global for `weir run`, and per workspace) and sealed workspace secrets.

use super::db::{DbRow, with_db};
use super::*;
use sqlx::QueryBuilder;

impl Store {
    pub async fn variable(&self, name: &str) -> Result<Option<String>> {
        with_db!(&self.db, pool => {
        let row = sqlx::query("SELECT value FROM variables WHERE name = $1")
            .bind(name)
            .fetch_optional(pool)
            .await?;
        Ok(row.map(|r| r.col("value")).transpose()?)
        })
    }

    pub async fn set_variable(&self, name: &str, value: &Value) -> Result<()> {
        with_db!(&self.db, pool => {
        sqlx::query(
            "INSERT INTO variables (name, value, updated) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated = excluded.updated",
        )
        .bind(name)
        .bind(value.to_string())
        .bind(ts(Utc::now()))
        .execute(pool)
        .await?;
        Ok(())
        })
    }

    /// Variables of a workspace (`None`: the local runs' variables).
    pub async fn variables(&self, workspace_id: &str) -> Result<Vec<(String, Value)>> {
        self.variables_page(workspace_id, None, i64::MAX).await
    }

    /// At most `limit` variables of a workspace in name order, after the name `after`.
    pub async fn variables_page(
        &self,
        workspace_id: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<(String, Value)>> {
        with_db!(&self.db, pool, DB => {
        let mut q = QueryBuilder::<DB>::new(
            "SELECT name, value FROM workspace_variables WHERE workspace_id = ",
        );
        q.push_bind(workspace_id.to_owned());
        if let Some(name) = after {
            q.push(" AND name > ").push_bind(name.to_owned());
        }
        q.push(" ORDER BY name LIMIT ").push_bind(limit);
        let rows = q.build().fetch_all(pool).await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.col("name")?,
                    super::parse_json(&r.col::<String>("value")?)?,
                ))
            })
            .collect()
        })
    }

    pub async fn workspace_variable(
        &self,
        workspace_id: &str,
        name: &str,
    ) -> Result<Option<String>> {
        with_db!(&self.db, pool => {
        let row = sqlx::query(
            "SELECT value FROM workspace_variables WHERE workspace_id = $1 AND name = $2",
        )
        .bind(workspace_id)
        .bind(name)
        .fetch_optional(pool)
        .await?;
        Ok(row.map(|r| r.col("value")).transpose()?)
        })
    }

    pub async fn put_workspace_variable(
        &self,
        workspace_id: &str,
        name: &str,
        value: &Value,
    ) -> Result<()> {
        with_db!(&self.db, pool => {
        sqlx::query(
            "INSERT INTO workspace_variables (workspace_id, name, value, updated) VALUES ($1, $2, $3, $4)
             ON CONFLICT (workspace_id, name) DO UPDATE SET value = excluded.value,
               updated = excluded.updated",
        )
        .bind(workspace_id)
        .bind(name)
        .bind(value.to_string())
        .bind(ts(Utc::now()))
        .execute(pool)
        .await?;
        Ok(())
        })
    }

    pub async fn delete_workspace_variable(&self, workspace_id: &str, name: &str) -> Result<bool> {
        with_db!(&self.db, pool => {
        let done =
            sqlx::query("DELETE FROM workspace_variables WHERE workspace_id = $1 AND name = $2")
                .bind(workspace_id)
                .bind(name)
                .execute(pool)
                .await?;
        Ok(done.rows_affected() == 1)
        })
    }

    /// Names of a workspace's secrets.
    pub async fn secret_names(&self, workspace_id: &str) -> Result<Vec<String>> {
        self.secret_names_page(workspace_id, None, i64::MAX).await
    }

    /// At most `limit` secret names of a workspace in order, after the name `after`.
    pub async fn secret_names_page(
        &self,
        workspace_id: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<String>> {
        with_db!(&self.db, pool, DB => {
        let mut q = QueryBuilder::<DB>::new("SELECT name FROM secrets WHERE workspace_id = ");
        q.push_bind(workspace_id.to_owned());
        if let Some(name) = after {
            q.push(" AND name > ").push_bind(name.to_owned());
        }
        q.push(" ORDER BY name LIMIT ").push_bind(limit);
        let rows = q.build().fetch_all(pool).await?;
        rows.iter().map(|r| Ok(r.col("name")?)).collect()
        })
    }

    /// The ciphertext of a secret.
    pub async fn secret(&self, workspace_id: &str, name: &str) -> Result<Option<String>> {
        with_db!(&self.db, pool => {
        let row = sqlx::query("SELECT ciphertext FROM secrets WHERE workspace_id = $1 AND name = $2")
            .bind(workspace_id)
            .bind(name)
            .fetch_optional(pool)
            .await?;
        Ok(row.map(|r| r.col("ciphertext")).transpose()?)
        })
    }

    pub async fn put_secret(&self, workspace_id: &str, name: &str, ciphertext: &str) -> Result<()> {
        with_db!(&self.db, pool => {
        sqlx::query(
            "INSERT INTO secrets (workspace_id, name, ciphertext, updated) VALUES ($1, $2, $3, $4)
             ON CONFLICT (workspace_id, name) DO UPDATE SET ciphertext = excluded.ciphertext,
               updated = excluded.updated",
        )
        .bind(workspace_id)
        .bind(name)
        .bind(ciphertext)
        .bind(ts(Utc::now()))
        .execute(pool)
        .await?;
        Ok(())
        })
    }

    pub async fn delete_secret(&self, workspace_id: &str, name: &str) -> Result<bool> {
        with_db!(&self.db, pool => {
        let done = sqlx::query("DELETE FROM secrets WHERE workspace_id = $1 AND name = $2")
            .bind(workspace_id)
            .bind(name)
            .execute(pool)
            .await?;
        Ok(done.rows_affected() == 1)
        })
    }
}
