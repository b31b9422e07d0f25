//! Work pools and tag concurrency limits of a workspace.

use super::db::{DbRow, with_db};
use super::{Result, Saved, Store, parse_ts, ts};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::QueryBuilder;

#[derive(Debug, Clone, Serialize)]
pub struct PoolRecord {
    pub name: String,
    pub concurrency_limit: Option<i64>,
    pub paused: bool,
    pub created: DateTime<Utc>,
}

/// A work queue of a pool.
#[derive(Debug, Clone, Serialize)]
pub struct WorkQueueRecord {
    pub pool: String,
    pub name: String,
    /// 1 starts first.
    pub priority: i64,
    pub concurrency_limit: Option<i64>,
    pub paused: bool,
    pub created: DateTime<Utc>,
}

impl WorkQueueRecord {
    /// The queue every pool has, until it is changed.
    pub fn default_of(pool: &str) -> Self {
        WorkQueueRecord {
            pool: pool.to_owned(),
            name: "default".into(),
            priority: 1,
            concurrency_limit: None,
            paused: false,
            created: Utc::now(),
        }
    }
}

fn queue_from_row(r: &impl DbRow) -> Result<WorkQueueRecord> {
    Ok(WorkQueueRecord {
        pool: r.col("pool")?,
        name: r.col("name")?,
        priority: r.col("priority")?,
        concurrency_limit: r.col("concurrency_limit")?,
        paused: r.flag("paused")?,
        created: parse_ts(&r.col::<String>("created")?)?,
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct ConcurrencyLimitRecord {
    pub tag: String,
    pub limit: i64,
}

fn pool_from_row(r: &impl DbRow) -> Result<PoolRecord> {
    Ok(PoolRecord {
        name: r.col("name")?,
        concurrency_limit: r.col("concurrency_limit")?,
        paused: r.flag("paused")?,
        created: parse_ts(&r.col::<String>("created")?)?,
    })
}

impl Store {
    pub async fn pools(&self, workspace_id: &str) -> Result<Vec<PoolRecord>> {
        self.pools_page(workspace_id, None, i64::MAX).await
    }

    /// At most `limit` pools of a workspace in name order, after the name `after`.
    pub async fn pools_page(
        &self,
        workspace_id: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<PoolRecord>> {
        with_db!(&self.db, pool, DB => {
        let mut q = QueryBuilder::<DB>::new("SELECT * FROM work_pools WHERE workspace_id = ");
        q.push_bind(workspace_id.to_owned());
        if let Some(name) = after {
            q.push(" AND name > ").push_bind(name.to_owned());
        }
        q.push(" ORDER BY name LIMIT ").push_bind(limit);
        let rows = q.build().fetch_all(pool).await?;
        rows.iter().map(pool_from_row).collect()
        })
    }

    pub async fn pool(&self, workspace_id: &str, name: &str) -> Result<Option<PoolRecord>> {
        with_db!(&self.db, pool => {
        let row = sqlx::query("SELECT * FROM work_pools WHERE workspace_id = $1 AND name = $2")
            .bind(workspace_id)
            .bind(name)
            .fetch_optional(pool)
            .await?;
        row.map(|r| pool_from_row(&r)).transpose()
        })
    }

    /// Creates or replaces a pool.
    pub async fn put_pool(&self, workspace_id: &str, p: &PoolRecord) -> Result<()> {
        with_db!(&self.db, pool => {
        sqlx::query(
            "INSERT INTO work_pools (workspace_id, name, concurrency_limit, paused, created)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (workspace_id, name) DO UPDATE SET
               concurrency_limit = excluded.concurrency_limit, paused = excluded.paused",
        )
        .bind(workspace_id)
        .bind(&p.name)
        .bind(p.concurrency_limit)
        .bind(p.paused as i64)
        .bind(ts(p.created))
        .execute(pool)
        .await?;
        Ok(())
        })
    }

    pub async fn delete_pool(&self, workspace_id: &str, name: &str) -> Result<Saved> {
        with_db!(&self.db, pool => {
        let used: i64 =
            sqlx::query("SELECT COUNT(*) AS n FROM deployments WHERE workspace_id = $1 AND pool = $2")
                .bind(workspace_id)
                .bind(name)
                .fetch_one(pool)
                .await?
                .col("n")?;
        if used > 0 {
            return Ok(Saved::NameTaken);
        }
        sqlx::query("DELETE FROM work_queues WHERE workspace_id = $1 AND pool = $2")
            .bind(workspace_id)
            .bind(name)
            .execute(pool)
            .await?;
        let done = sqlx::query("DELETE FROM work_pools WHERE workspace_id = $1 AND name = $2")
            .bind(workspace_id)
            .bind(name)
            .execute(pool)
            .await?;
        Ok(if done.rows_affected() == 1 {
            Saved::Done
        } else {
            Saved::Missing
        })
        })
    }

    /// The work queues of a workspace's pools (of one pool, when named), by pool, then
    /// priority, then name; at most `limit`, after the queue `after` of the same pool.
    pub async fn work_queues(
        &self,
        workspace_id: &str,
        pool_name: Option<&str>,
        after: Option<(i64, &str)>,
        limit: i64,
    ) -> Result<Vec<WorkQueueRecord>> {
        with_db!(&self.db, pool, DB => {
        let mut q = QueryBuilder::<DB>::new("SELECT * FROM work_queues WHERE workspace_id = ");
        q.push_bind(workspace_id.to_owned());
        if let Some(name) = pool_name {
            q.push(" AND pool = ").push_bind(name.to_owned());
        }
        if let Some((priority, name)) = after {
            q.push(" AND (priority > ")
                .push_bind(priority)
                .push(" OR (priority = ")
                .push_bind(priority)
                .push(" AND name > ")
                .push_bind(name.to_owned())
                .push("))");
        }
        q.push(" ORDER BY pool, priority, name LIMIT ").push_bind(limit);
        let rows = q.build().fetch_all(pool).await?;
        rows.iter().map(queue_from_row).collect()
        })
    }

    pub async fn work_queue(
        &self,
        workspace_id: &str,
        pool_name: &str,
        name: &str,
    ) -> Result<Option<WorkQueueRecord>> {
        with_db!(&self.db, pool => {
        let row = sqlx::query(
            "SELECT * FROM work_queues WHERE workspace_id = $1 AND pool = $2 AND name = $3",
        )
        .bind(workspace_id)
        .bind(pool_name)
        .bind(name)
        .fetch_optional(pool)
        .await?;
        row.map(|r| queue_from_row(&r)).transpose()
        })
    }

    /// Creates or replaces a work queue.
    pub async fn put_work_queue(&self, workspace_id: &str, w: &WorkQueueRecord) -> Result<()> {
        with_db!(&self.db, pool => {
        sqlx::query(
            "INSERT INTO work_queues (workspace_id, pool, name, priority, concurrency_limit,
               paused, created)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (workspace_id, pool, name) DO UPDATE SET priority = excluded.priority,
               concurrency_limit = excluded.concurrency_limit, paused = excluded.paused",
        )
        .bind(workspace_id)
        .bind(&w.pool)
        .bind(&w.name)
        .bind(w.priority)
        .bind(w.concurrency_limit)
        .bind(w.paused as i64)
        .bind(ts(w.created))
        .execute(pool)
        .await?;
        Ok(())
        })
    }

    /// Deletes a work queue; `NameTaken` while deployments name it.
    pub async fn delete_work_queue(
        &self,
        workspace_id: &str,
        pool_name: &str,
        name: &str,
    ) -> Result<Saved> {
        with_db!(&self.db, pool => {
        let used: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM deployments WHERE workspace_id = $1 AND pool = $2
               AND work_queue = $3",
        )
        .bind(workspace_id)
        .bind(pool_name)
        .bind(name)
        .fetch_one(pool)
        .await?
        .col("n")?;
        if used > 0 {
            return Ok(Saved::NameTaken);
        }
        let done = sqlx::query(
            "DELETE FROM work_queues WHERE workspace_id = $1 AND pool = $2 AND name = $3",
        )
        .bind(workspace_id)
        .bind(pool_name)
        .bind(name)
        .execute(pool)
        .await?;
        Ok(if done.rows_affected() == 1 {
            Saved::Done
        } else {
            Saved::Missing
        })
        })
    }

    pub async fn concurrency_limits(
        &self,
        workspace_id: &str,
    ) -> Result<Vec<ConcurrencyLimitRecord>> {
        self.concurrency_limits_page(workspace_id, None, i64::MAX)
            .await
    }

    /// At most `limit` tag limits of a workspace in tag order, after the tag `after`.
    pub async fn concurrency_limits_page(
        &self,
        workspace_id: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ConcurrencyLimitRecord>> {
        with_db!(&self.db, pool, DB => {
        let mut q = QueryBuilder::<DB>::new(
            "SELECT tag, max_runs FROM concurrency_limits WHERE workspace_id = ",
        );
        q.push_bind(workspace_id.to_owned());
        if let Some(tag) = after {
            q.push(" AND tag > ").push_bind(tag.to_owned());
        }
        q.push(" ORDER BY tag LIMIT ").push_bind(limit);
        let rows = q.build().fetch_all(pool).await?;
        rows.iter()
            .map(|r| {
                Ok(ConcurrencyLimitRecord {
                    tag: r.col("tag")?,
                    limit: r.col("max_runs")?,
                })
            })
            .collect()
        })
    }

    pub async fn put_concurrency_limit(
        &self,
        workspace_id: &str,
        tag: &str,
        limit: i64,
    ) -> Result<()> {
        with_db!(&self.db, pool => {
        sqlx::query(
            "INSERT INTO concurrency_limits (workspace_id, tag, max_runs) VALUES ($1, $2, $3)
             ON CONFLICT (workspace_id, tag) DO UPDATE SET max_runs = excluded.max_runs",
        )
        .bind(workspace_id)
        .bind(tag)
        .bind(limit)
        .execute(pool)
        .await?;
        Ok(())
        })
    }

    pub async fn delete_concurrency_limit(&self, workspace_id: &str, tag: &str) -> Result<bool> {
        with_db!(&self.db, pool => {
        let done = sqlx::query("DELETE FROM concurrency_limits WHERE workspace_id = $1 AND tag = $2")
            .bind(workspace_id)
            .bind(tag)
            .execute(pool)
            .await?;
        Ok(done.rows_affected() == 1)
        })
    }
}
