//! Uploaded components: their manifests, their bytes where nodes share them, and the
//! workspaces that may use them.

use super::db::{BeginWrite, Db, DbRow, with_db};
use super::*;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct ComponentRecord {
    pub digest: String,
    pub size: i64,
    pub manifest: Value,
    pub created: DateTime<Utc>,
}

fn component_from_row(r: &impl DbRow) -> Result<ComponentRecord> {
    Ok(ComponentRecord {
        digest: r.col("digest")?,
        size: r.col("size")?,
        manifest: parse_json(&r.col::<String>("manifest")?)?,
        created: parse_ts(&r.col::<String>("created")?)?,
    })
}

impl Store {
    /// Makes a component visible to a workspace; false when it already was.
    pub async fn link_component(&self, workspace_id: &str, digest: &str) -> Result<bool> {
        with_db!(&self.db, pool => {
        let done = sqlx::query(
            "INSERT INTO workspace_components (workspace_id, digest, created) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
        )
        .bind(workspace_id)
        .bind(digest)
        .bind(ts(Utc::now()))
        .execute(pool)
        .await?;
        Ok(done.rows_affected() == 1)
        })
    }

    pub async fn workspace_component(
        &self,
        workspace_id: &str,
        digest: &str,
    ) -> Result<Option<ComponentRecord>> {
        with_db!(&self.db, pool => {
        let row = sqlx::query(
            "SELECT c.digest, c.size, c.manifest, w.created FROM workspace_components w
             JOIN components c ON c.digest = w.digest
             WHERE w.workspace_id = $1 AND w.digest = $2",
        )
        .bind(workspace_id)
        .bind(digest)
        .fetch_optional(pool)
        .await?;
        row.map(|r| component_from_row(&r)).transpose()
        })
    }

    /// A workspace's components, newest first.
    pub async fn workspace_components(&self, workspace_id: &str) -> Result<Vec<ComponentRecord>> {
        self.workspace_components_page(workspace_id, None, i64::MAX)
            .await
    }

    /// At most `limit` components of a workspace, newest first, after the one added at
    /// `before.0` with digest `before.1`.
    pub async fn workspace_components_page(
        &self,
        workspace_id: &str,
        before: Option<(DateTime<Utc>, &str)>,
        limit: i64,
    ) -> Result<Vec<ComponentRecord>> {
        with_db!(&self.db, pool, DB => {
        let mut q = sqlx::QueryBuilder::<DB>::new(
            "SELECT c.digest, c.size, c.manifest, w.created FROM workspace_components w
             JOIN components c ON c.digest = w.digest WHERE w.workspace_id = ",
        );
        q.push_bind(workspace_id.to_owned());
        if let Some((created, digest)) = before {
            q.push(" AND (w.created, w.digest) < (")
                .push_bind(ts(created))
                .push(", ")
                .push_bind(digest.to_owned())
                .push(")");
        }
        q.push(" ORDER BY w.created DESC, w.digest DESC LIMIT ")
            .push_bind(limit);
        let rows = q.build().fetch_all(pool).await?;
        rows.iter().map(component_from_row).collect()
        })
    }

    /// Removes a component from a workspace unless a deployment or a plugin of that
    /// workspace uses it.
    pub async fn unlink_component(&self, workspace_id: &str, digest: &str) -> Result<Saved> {
        with_db!(&self.db, pool => {
        let mut tx = pool.begin_write().await?;
        let used: i64 = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM deployments WHERE workspace_id = $1 AND component_digest = $2)
                  + (SELECT COUNT(*) FROM plugins WHERE workspace_id = $1 AND digest = $2) AS n",
        )
        .bind(workspace_id)
        .bind(digest)
        .fetch_one(&mut *tx)
        .await?
        .col("n")?;
        if used > 0 {
            return Ok(Saved::NameTaken);
        }
        let done =
            sqlx::query("DELETE FROM workspace_components WHERE workspace_id = $1 AND digest = $2")
                .bind(workspace_id)
                .bind(digest)
                .execute(&mut *tx)
                .await?;
        tx.commit().await?;
        Ok(if done.rows_affected() == 1 {
            Saved::Done
        } else {
            Saved::Missing
        })
        })
    }

    /// Digests of components no workspace links any more (built-in plugins are linked to
    /// every workspace).
    pub async fn orphan_components(&self) -> Result<Vec<String>> {
        with_db!(&self.db, pool => {
        let rows = sqlx::query(
            "SELECT digest FROM components WHERE digest NOT IN (SELECT digest FROM workspace_components)
               AND digest NOT IN (SELECT component_digest FROM flow_runs WHERE workspace_id IS NOT NULL)
               AND digest NOT IN (SELECT digest FROM plugins)",
        )
        .fetch_all(pool)
        .await?;
        rows.iter().map(|r| Ok(r.col("digest")?)).collect()
        })
    }

    pub async fn put_component(&self, digest: &str, size: usize, manifest: &Value) -> Result<()> {
        with_db!(&self.db, pool => {
        sqlx::query(
            "INSERT INTO components (digest, size, manifest, created) VALUES ($1, $2, $3, $4)
             ON CONFLICT (digest) DO UPDATE SET manifest = excluded.manifest",
        )
        .bind(digest)
        .bind(size as i64)
        .bind(manifest.to_string())
        .bind(ts(Utc::now()))
        .execute(pool)
        .await?;
        Ok(())
        })
    }

    /// Keeps a component's bytes in the database, where every node sharing it finds
    /// them (PostgreSQL only: a single SQLite server reads them from its disk).
    pub async fn put_component_bytes(&self, digest: &str, bytes: &[u8]) -> Result<()> {
        let Db::Postgres(pool) = &self.db else {
            return Ok(());
        };
        sqlx::query(
            "INSERT INTO component_blobs (digest, bytes) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(digest)
        .bind(bytes)
        .execute(pool)
        .await?;
        Ok(())
    }

    /// A component's bytes kept by [`Store::put_component_bytes`].
    pub async fn component_bytes(&self, digest: &str) -> Result<Option<Vec<u8>>> {
        with_db!(&self.db, pool => {
            let row = sqlx::query("SELECT bytes FROM component_blobs WHERE digest = $1")
                .bind(digest)
                .fetch_optional(pool)
                .await?;
            Ok(row.map(|r| r.col("bytes")).transpose()?)
        })
    }
}
