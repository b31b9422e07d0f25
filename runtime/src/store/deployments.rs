//! Deployments and their versions.

use super::db::{BeginWrite, DbRow, with_db};
use super::{Result, Store, parse_json, parse_ts, tags_from, ts};
use crate::model::retention::Retention;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

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
    /// The pool's work queue it runs from.
    pub work_queue: String,
    pub concurrency_limit: Option<i64>,
    pub memory_mb: Option<i64>,
    pub timeout_seconds: Option<f64>,
    pub allowed_hosts: Vec<String>,
    /// Workspace secrets the plugins its runs call may read.
    pub plugin_secrets: Vec<String>,
    pub paused: bool,
    /// Its own retention policy (empty: the workspace's holds for its runs).
    pub retention: Retention,
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

fn deployment_from_row(r: &impl DbRow) -> Result<DeploymentRecord> {
    Ok(DeploymentRecord {
        id: r.col("id")?,
        workspace_id: r.col("workspace_id")?,
        name: r.col("name")?,
        component_digest: r.col("component_digest")?,
        flow: r.col("flow")?,
        parameters: parse_json(&r.col::<String>("parameters")?)?,
        tags: tags_from(&r.col::<String>("tags")?)?,
        description: r.col("description")?,
        version: r.col("version")?,
        pool: r.col("pool")?,
        work_queue: r.col("work_queue")?,
        concurrency_limit: r.col("concurrency_limit")?,
        memory_mb: r.col("memory_mb")?,
        timeout_seconds: r.col("timeout_seconds")?,
        allowed_hosts: tags_from(&r.col::<String>("allowed_hosts")?)?,
        plugin_secrets: tags_from(&r.col::<String>("plugin_secrets")?)?,
        paused: r.flag("paused")?,
        retention: policy_of(r, "retention_days", "retention_runs")?,
        webhook_token_hash: r.col("webhook_token_hash")?,
        webhook_secret: r.col("webhook_secret")?,
        created: parse_ts(&r.col::<String>("created")?)?,
        updated: parse_ts(&r.col::<String>("updated")?)?,
    })
}

/// A retention policy stored in two columns (a value out of range reads as none).
pub(super) fn policy_of(r: &impl DbRow, days: &str, runs: &str) -> Result<Retention> {
    let count = |v: Option<i64>| v.and_then(|n| u32::try_from(n).ok()).filter(|n| *n > 0);
    Ok(Retention {
        days: count(r.col(days)?),
        runs: count(r.col(runs)?),
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
    pub async fn insert_deployment(&self, d: &DeploymentRecord) -> Result<Saved> {
        with_db!(&self.db, pool => {
        let mut tx = pool.begin_write().await?;
        let query = sqlx::query(
            "INSERT INTO deployments (name, component_digest, flow, parameters, tags, description,
               version, pool, concurrency_limit, memory_mb, timeout_seconds, allowed_hosts,
               paused, webhook_token_hash, webhook_secret, updated, work_queue, plugin_secrets,
               retention_days, retention_runs, id, workspace_id, created)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19,
               $20, $21, $22, $23)
             ON CONFLICT (workspace_id, name) DO NOTHING",
        );
        let done = bind_fields!(query, d)
            .bind(&d.id)
            .bind(&d.workspace_id)
            .bind(ts(d.created))
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(Saved::NameTaken);
        }
        add_version!(&mut *tx, &d.id, &d.component_digest, &d.flow)?;
        tx.commit().await?;
        Ok(Saved::Done)
        })
    }

    /// Saves every field of a deployment; a new component or flow adds a version.
    pub async fn update_deployment(&self, d: &DeploymentRecord) -> Result<Saved> {
        with_db!(&self.db, pool => {
        let mut tx = pool.begin_write().await?;
        let before = sqlx::query(
            "SELECT component_digest, flow FROM deployments WHERE id = $1 AND workspace_id = $2",
        )
        .bind(&d.id)
        .bind(&d.workspace_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(before) = before else {
            return Ok(Saved::Missing);
        };
        let taken: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM deployments WHERE workspace_id = $1 AND name = $2 AND id != $3",
        )
        .bind(&d.workspace_id)
        .bind(&d.name)
        .bind(&d.id)
        .fetch_one(&mut *tx)
        .await?
        .col("n")?;
        if taken > 0 {
            return Ok(Saved::NameTaken);
        }
        let query = sqlx::query(
            "UPDATE deployments SET name = $1, component_digest = $2, flow = $3, parameters = $4,
               tags = $5, description = $6, version = $7, pool = $8, concurrency_limit = $9,
               memory_mb = $10, timeout_seconds = $11, allowed_hosts = $12, paused = $13,
               webhook_token_hash = $14, webhook_secret = $15, updated = $16, work_queue = $17,
               plugin_secrets = $18, retention_days = $19, retention_runs = $20
             WHERE id = $21 AND workspace_id = $22",
        );
        bind_fields!(query, d)
            .bind(&d.id)
            .bind(&d.workspace_id)
            .execute(&mut *tx)
            .await?;
        let old_digest: String = before.col("component_digest")?;
        let old_flow: String = before.col("flow")?;
        if old_digest != d.component_digest || old_flow != d.flow {
            add_version!(&mut *tx, &d.id, &d.component_digest, &d.flow)?;
        }
        tx.commit().await?;
        Ok(Saved::Done)
        })
    }

    /// A deployment of the workspace, by id or by name.
    pub async fn deployment(
        &self,
        workspace_id: &str,
        id_or_name: &str,
    ) -> Result<Option<DeploymentRecord>> {
        // A text with a NUL matches nothing stored (PostgreSQL takes no NUL in text, and
        // SQLite's full-text query none in its terms): answered without asking either.
        if id_or_name.contains('\0') {
            return Ok(None);
        }
        with_db!(&self.db, pool => {
        let row = sqlx::query(
            "SELECT * FROM deployments WHERE workspace_id = $1 AND (id = $2 OR name = $3)
             ORDER BY id = $4 DESC LIMIT 1",
        )
        .bind(workspace_id)
        .bind(id_or_name)
        .bind(id_or_name)
        .bind(id_or_name)
        .fetch_optional(pool)
        .await?;
        row.map(|r| deployment_from_row(&r)).transpose()
        })
    }

    /// A deployment by id, whatever its workspace (the executor's view).
    pub async fn deployment_by_id(&self, id: &str) -> Result<Option<DeploymentRecord>> {
        with_db!(&self.db, pool => {
        let row = sqlx::query("SELECT * FROM deployments WHERE id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await?;
        row.map(|r| deployment_from_row(&r)).transpose()
        })
    }

    pub async fn deployment_by_webhook(
        &self,
        token_hash: &str,
    ) -> Result<Option<DeploymentRecord>> {
        with_db!(&self.db, pool => {
        let row = sqlx::query("SELECT * FROM deployments WHERE webhook_token_hash = $1")
            .bind(token_hash)
            .fetch_optional(pool)
            .await?;
        row.map(|r| deployment_from_row(&r)).transpose()
        })
    }

    pub async fn deployments(&self, workspace_id: &str) -> Result<Vec<DeploymentRecord>> {
        self.deployments_page(workspace_id, None, i64::MAX).await
    }

    /// At most `limit` deployments of a workspace in name order, after the name `after`.
    pub async fn deployments_page(
        &self,
        workspace_id: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<DeploymentRecord>> {
        with_db!(&self.db, pool, DB => {
        let mut q = sqlx::QueryBuilder::<DB>::new("SELECT * FROM deployments WHERE workspace_id = ");
        q.push_bind(workspace_id.to_owned());
        if let Some(name) = after {
            q.push(" AND name > ").push_bind(name.to_owned());
        }
        q.push(" ORDER BY name LIMIT ").push_bind(limit);
        let rows = q.build().fetch_all(pool).await?;
        rows.iter().map(deployment_from_row).collect()
        })
    }

    pub async fn delete_deployment(&self, workspace_id: &str, id: &str) -> Result<bool> {
        with_db!(&self.db, pool => {
        let done = sqlx::query("DELETE FROM deployments WHERE workspace_id = $1 AND id = $2")
            .bind(workspace_id)
            .bind(id)
            .execute(pool)
            .await?;
        Ok(done.rows_affected() == 1)
        })
    }

    pub async fn deployment_versions(&self, deployment_id: &str) -> Result<Vec<DeploymentVersion>> {
        self.deployment_versions_page(deployment_id, None, i64::MAX)
            .await
    }

    /// At most `limit` versions of a deployment, newest first, before the version
    /// `before`.
    pub async fn deployment_versions_page(
        &self,
        deployment_id: &str,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<DeploymentVersion>> {
        with_db!(&self.db, pool, DB => {
        let mut q = sqlx::QueryBuilder::<DB>::new(
            "SELECT * FROM deployment_versions WHERE deployment_id = ",
        );
        q.push_bind(deployment_id.to_owned());
        if let Some(n) = before {
            q.push(" AND version_no < ").push_bind(n);
        }
        q.push(" ORDER BY version_no DESC LIMIT ").push_bind(limit);
        let rows = q.build().fetch_all(pool).await?;
        rows.iter()
            .map(|r| {
                Ok(DeploymentVersion {
                    version_no: r.col("version_no")?,
                    component_digest: r.col("component_digest")?,
                    flow: r.col("flow")?,
                    created: parse_ts(&r.col::<String>("created")?)?,
                })
            })
            .collect()
        })
    }
}

/// Binds the columns a deployment's insert and update share, from `name` to
/// `plugin_secrets`.
macro_rules! bind_fields {
    ($q:expr, $d:expr) => {
        $q.bind(&$d.name)
            .bind(&$d.component_digest)
            .bind(&$d.flow)
            .bind($d.parameters.to_string())
            .bind(serde_json::to_string(&$d.tags).unwrap_or_default())
            .bind(&$d.description)
            .bind(&$d.version)
            .bind(&$d.pool)
            .bind($d.concurrency_limit)
            .bind($d.memory_mb)
            .bind($d.timeout_seconds)
            .bind(serde_json::to_string(&$d.allowed_hosts).unwrap_or_default())
            .bind($d.paused as i64)
            .bind(&$d.webhook_token_hash)
            .bind(&$d.webhook_secret)
            .bind(ts($d.updated))
            .bind(&$d.work_queue)
            .bind(serde_json::to_string(&$d.plugin_secrets).unwrap_or_default())
            .bind($d.retention.days.map(i64::from))
            .bind($d.retention.runs.map(i64::from))
    };
}
use bind_fields;

/// Adds the next version of a deployment, on a connection or in a transaction.
macro_rules! add_version {
    ($conn:expr, $deployment_id:expr, $digest:expr, $flow:expr) => {
        sqlx::query(
            "INSERT INTO deployment_versions (deployment_id, version_no, component_digest, flow, created)
             VALUES ($1, (SELECT COALESCE(MAX(version_no), 0) + 1 FROM deployment_versions WHERE deployment_id = $1), $2, $3, $4)",
        )
        .bind($deployment_id)
        .bind($digest)
        .bind($flow)
        .bind(ts(Utc::now()))
        .execute($conn)
        .await
    };
}
use add_version;
