//! Deployments and their versions, the components a workspace may use, work pools and
//! tag concurrency limits.

use super::{Result, Store, parse_json, parse_ts, tags_from, ts};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

#[derive(Debug, Clone, Serialize)]
pub struct DeploymentRecord {
    pub id: String,
    pub workspace_id: String,
    pub name: String,
    pub component_digest: String,
    pub flow: String,
    pub parameters: Value,
    pub tags: Vec<String>,
    pub description: Option<String>,
    pub version: Option<String>,
    pub pool: String,
    pub concurrency_limit: Option<i64>,
    pub memory_mb: Option<i64>,
    pub timeout_seconds: Option<f64>,
    pub allowed_hosts: Vec<String>,
    pub paused: bool,
    /// sha256 of the webhook token; the token itself is shown once.
    #[serde(skip)]
    pub webhook_token_hash: Option<String>,
    /// The HMAC secret, encrypted at rest; `None` for unsigned webhooks.
    #[serde(skip)]
    pub webhook_secret: Option<String>,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DeploymentVersion {
    pub version_no: i64,
    pub component_digest: String,
    pub flow: String,
    pub created: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ComponentRecord {
    pub digest: String,
    pub size: i64,
    pub manifest: Value,
    pub created: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PoolRecord {
    pub name: String,
    pub concurrency_limit: Option<i64>,
    pub paused: bool,
    pub created: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConcurrencyLimitRecord {
    pub tag: String,
    pub limit: i64,
}

fn deployment_from_row(r: &SqliteRow) -> Result<DeploymentRecord> {
    Ok(DeploymentRecord {
        id: r.try_get("id")?,
        workspace_id: r.try_get("workspace_id")?,
        name: r.try_get("name")?,
        component_digest: r.try_get("component_digest")?,
        flow: r.try_get("flow")?,
        parameters: parse_json(&r.try_get::<String, _>("parameters")?)?,
        tags: tags_from(&r.try_get::<String, _>("tags")?)?,
        description: r.try_get("description")?,
        version: r.try_get("version")?,
        pool: r.try_get("pool")?,
        concurrency_limit: r.try_get("concurrency_limit")?,
        memory_mb: r.try_get("memory_mb")?,
        timeout_seconds: r.try_get("timeout_seconds")?,
        allowed_hosts: tags_from(&r.try_get::<String, _>("allowed_hosts")?)?,
        paused: r.try_get::<i64, _>("paused")? != 0,
        webhook_token_hash: r.try_get("webhook_token_hash")?,
        webhook_secret: r.try_get("webhook_secret")?,
        created: parse_ts(&r.try_get::<String, _>("created")?)?,
        updated: parse_ts(&r.try_get::<String, _>("updated")?)?,
    })
}

fn component_from_row(r: &SqliteRow) -> Result<ComponentRecord> {
    Ok(ComponentRecord {
        digest: r.try_get("digest")?,
        size: r.try_get("size")?,
        manifest: parse_json(&r.try_get::<String, _>("manifest")?)?,
        created: parse_ts(&r.try_get::<String, _>("created")?)?,
    })
}

fn pool_from_row(r: &SqliteRow) -> Result<PoolRecord> {
    Ok(PoolRecord {
        name: r.try_get("name")?,
        concurrency_limit: r.try_get("concurrency_limit")?,
        paused: r.try_get::<i64, _>("paused")? != 0,
        created: parse_ts(&r.try_get::<String, _>("created")?)?,
    })
}

/// What an insert or update of a named object ran into.
#[derive(Debug, PartialEq, Eq)]
pub enum Saved {
    Done,
    NameTaken,
    Missing,
}

impl Store {
    /// Makes a component visible to a workspace; false when it already was.
    pub async fn link_component(&self, workspace_id: &str, digest: &str) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO workspace_components (workspace_id, digest, created) VALUES (?, ?, ?)
             ON CONFLICT DO NOTHING",
        )
        .bind(workspace_id)
        .bind(digest)
        .bind(ts(Utc::now()))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn workspace_component(
        &self,
        workspace_id: &str,
        digest: &str,
    ) -> Result<Option<ComponentRecord>> {
        let row = sqlx::query(
            "SELECT c.digest, c.size, c.manifest, w.created FROM workspace_components w
             JOIN components c ON c.digest = w.digest
             WHERE w.workspace_id = ? AND w.digest = ?",
        )
        .bind(workspace_id)
        .bind(digest)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| component_from_row(&r)).transpose()
    }

    pub async fn workspace_components(&self, workspace_id: &str) -> Result<Vec<ComponentRecord>> {
        let rows = sqlx::query(
            "SELECT c.digest, c.size, c.manifest, w.created FROM workspace_components w
             JOIN components c ON c.digest = w.digest
             WHERE w.workspace_id = ? ORDER BY w.created DESC",
        )
        .bind(workspace_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(component_from_row).collect()
    }

    /// Removes a component from a workspace unless a deployment of that workspace uses it.
    pub async fn unlink_component(&self, workspace_id: &str, digest: &str) -> Result<Saved> {
        let mut tx = self.pool.begin().await?;
        let used: i64 = sqlx::query(
            "SELECT COUNT(*) FROM deployments WHERE workspace_id = ? AND component_digest = ?",
        )
        .bind(workspace_id)
        .bind(digest)
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
        if used > 0 {
            return Ok(Saved::NameTaken);
        }
        let done =
            sqlx::query("DELETE FROM workspace_components WHERE workspace_id = ? AND digest = ?")
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
    }

    /// Digests of components no workspace links any more.
    pub async fn orphan_components(&self) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT digest FROM components WHERE digest NOT IN (SELECT digest FROM workspace_components)
               AND digest NOT IN (SELECT component_digest FROM flow_runs WHERE workspace_id IS NOT NULL)",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok(r.try_get("digest")?)).collect()
    }

    pub async fn insert_deployment(&self, d: &DeploymentRecord) -> Result<Saved> {
        let mut tx = self.pool.begin().await?;
        let query = sqlx::query(
            "INSERT INTO deployments (name, component_digest, flow, parameters, tags, description,
               version, pool, concurrency_limit, memory_mb, timeout_seconds, allowed_hosts,
               paused, webhook_token_hash, webhook_secret, updated, id, workspace_id, created)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (workspace_id, name) DO NOTHING",
        );
        let done = bind_fields(query, d)
            .bind(&d.id)
            .bind(&d.workspace_id)
            .bind(ts(d.created))
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(Saved::NameTaken);
        }
        add_version(&mut tx, &d.id, &d.component_digest, &d.flow).await?;
        tx.commit().await?;
        Ok(Saved::Done)
    }

    /// Saves every field of a deployment; a new component or flow adds a version.
    pub async fn update_deployment(&self, d: &DeploymentRecord) -> Result<Saved> {
        let mut tx = self.pool.begin().await?;
        let before = sqlx::query(
            "SELECT component_digest, flow FROM deployments WHERE id = ? AND workspace_id = ?",
        )
        .bind(&d.id)
        .bind(&d.workspace_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(before) = before else {
            return Ok(Saved::Missing);
        };
        let taken: i64 = sqlx::query(
            "SELECT COUNT(*) FROM deployments WHERE workspace_id = ? AND name = ? AND id != ?",
        )
        .bind(&d.workspace_id)
        .bind(&d.name)
        .bind(&d.id)
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
        if taken > 0 {
            return Ok(Saved::NameTaken);
        }
        let query = sqlx::query(
            "UPDATE deployments SET name = ?, component_digest = ?, flow = ?, parameters = ?,
               tags = ?, description = ?, version = ?, pool = ?, concurrency_limit = ?,
               memory_mb = ?, timeout_seconds = ?, allowed_hosts = ?, paused = ?,
               webhook_token_hash = ?, webhook_secret = ?, updated = ?
             WHERE id = ? AND workspace_id = ?",
        );
        bind_fields(query, d)
            .bind(&d.id)
            .bind(&d.workspace_id)
            .execute(&mut *tx)
            .await?;
        let old_digest: String = before.try_get("component_digest")?;
        let old_flow: String = before.try_get("flow")?;
        if old_digest != d.component_digest || old_flow != d.flow {
            add_version(&mut tx, &d.id, &d.component_digest, &d.flow).await?;
        }
        tx.commit().await?;
        Ok(Saved::Done)
    }

    /// A deployment of the workspace, by id or by name.
    pub async fn deployment(
        &self,
        workspace_id: &str,
        id_or_name: &str,
    ) -> Result<Option<DeploymentRecord>> {
        let row = sqlx::query(
            "SELECT * FROM deployments WHERE workspace_id = ? AND (id = ? OR name = ?)
             ORDER BY id = ? DESC LIMIT 1",
        )
        .bind(workspace_id)
        .bind(id_or_name)
        .bind(id_or_name)
        .bind(id_or_name)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| deployment_from_row(&r)).transpose()
    }

    /// A deployment by id, whatever its workspace (the executor's view).
    pub async fn deployment_by_id(&self, id: &str) -> Result<Option<DeploymentRecord>> {
        let row = sqlx::query("SELECT * FROM deployments WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| deployment_from_row(&r)).transpose()
    }

    pub async fn deployment_by_webhook(
        &self,
        token_hash: &str,
    ) -> Result<Option<DeploymentRecord>> {
        let row = sqlx::query("SELECT * FROM deployments WHERE webhook_token_hash = ?")
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| deployment_from_row(&r)).transpose()
    }

    pub async fn deployments(&self, workspace_id: &str) -> Result<Vec<DeploymentRecord>> {
        let rows = sqlx::query("SELECT * FROM deployments WHERE workspace_id = ? ORDER BY name")
            .bind(workspace_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(deployment_from_row).collect()
    }

    pub async fn delete_deployment(&self, workspace_id: &str, id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM deployments WHERE workspace_id = ? AND id = ?")
            .bind(workspace_id)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn deployment_versions(&self, deployment_id: &str) -> Result<Vec<DeploymentVersion>> {
        let rows = sqlx::query(
            "SELECT * FROM deployment_versions WHERE deployment_id = ? ORDER BY version_no DESC",
        )
        .bind(deployment_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DeploymentVersion {
                    version_no: r.try_get("version_no")?,
                    component_digest: r.try_get("component_digest")?,
                    flow: r.try_get("flow")?,
                    created: parse_ts(&r.try_get::<String, _>("created")?)?,
                })
            })
            .collect()
    }

    pub async fn pools(&self, workspace_id: &str) -> Result<Vec<PoolRecord>> {
        let rows = sqlx::query("SELECT * FROM work_pools WHERE workspace_id = ? ORDER BY name")
            .bind(workspace_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(pool_from_row).collect()
    }

    pub async fn pool(&self, workspace_id: &str, name: &str) -> Result<Option<PoolRecord>> {
        let row = sqlx::query("SELECT * FROM work_pools WHERE workspace_id = ? AND name = ?")
            .bind(workspace_id)
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| pool_from_row(&r)).transpose()
    }

    /// Creates or replaces a pool.
    pub async fn put_pool(&self, workspace_id: &str, p: &PoolRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO work_pools (workspace_id, name, concurrency_limit, paused, created)
             VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (workspace_id, name) DO UPDATE SET
               concurrency_limit = excluded.concurrency_limit, paused = excluded.paused",
        )
        .bind(workspace_id)
        .bind(&p.name)
        .bind(p.concurrency_limit)
        .bind(p.paused as i64)
        .bind(ts(p.created))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn delete_pool(&self, workspace_id: &str, name: &str) -> Result<Saved> {
        let used: i64 =
            sqlx::query("SELECT COUNT(*) FROM deployments WHERE workspace_id = ? AND pool = ?")
                .bind(workspace_id)
                .bind(name)
                .fetch_one(&self.pool)
                .await?
                .try_get(0)?;
        if used > 0 {
            return Ok(Saved::NameTaken);
        }
        let done = sqlx::query("DELETE FROM work_pools WHERE workspace_id = ? AND name = ?")
            .bind(workspace_id)
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(if done.rows_affected() == 1 {
            Saved::Done
        } else {
            Saved::Missing
        })
    }

    pub async fn concurrency_limits(
        &self,
        workspace_id: &str,
    ) -> Result<Vec<ConcurrencyLimitRecord>> {
        let rows = sqlx::query(
            "SELECT tag, max_runs FROM concurrency_limits WHERE workspace_id = ? ORDER BY tag",
        )
        .bind(workspace_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ConcurrencyLimitRecord {
                    tag: r.try_get("tag")?,
                    limit: r.try_get("max_runs")?,
                })
            })
            .collect()
    }

    pub async fn put_concurrency_limit(
        &self,
        workspace_id: &str,
        tag: &str,
        limit: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO concurrency_limits (workspace_id, tag, max_runs) VALUES (?, ?, ?)
             ON CONFLICT (workspace_id, tag) DO UPDATE SET max_runs = excluded.max_runs",
        )
        .bind(workspace_id)
        .bind(tag)
        .bind(limit)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn delete_concurrency_limit(&self, workspace_id: &str, tag: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM concurrency_limits WHERE workspace_id = ? AND tag = ?")
            .bind(workspace_id)
            .bind(tag)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }
}

/// Binds the columns a deployment's insert and update share, from `name` to `updated`.
fn bind_fields<'q>(
    q: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>,
    d: &'q DeploymentRecord,
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments> {
    q.bind(&d.name)
        .bind(&d.component_digest)
        .bind(&d.flow)
        .bind(d.parameters.to_string())
        .bind(serde_json::to_string(&d.tags).unwrap_or_default())
        .bind(&d.description)
        .bind(&d.version)
        .bind(&d.pool)
        .bind(d.concurrency_limit)
        .bind(d.memory_mb)
        .bind(d.timeout_seconds)
        .bind(serde_json::to_string(&d.allowed_hosts).unwrap_or_default())
        .bind(d.paused as i64)
        .bind(&d.webhook_token_hash)
        .bind(&d.webhook_secret)
        .bind(ts(d.updated))
}

async fn add_version(
    conn: &mut sqlx::SqliteConnection,
    deployment_id: &str,
    digest: &str,
    flow: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO deployment_versions (deployment_id, version_no, component_digest, flow, created)
         VALUES (?, (SELECT COALESCE(MAX(version_no), 0) + 1 FROM deployment_versions WHERE deployment_id = ?), ?, ?, ?)",
    )
    .bind(deployment_id)
    .bind(deployment_id)
    .bind(digest)
    .bind(flow)
    .bind(ts(Utc::now()))
    .execute(&mut *conn)
    .await?;
    Ok(())
}
