//! Workspace quotas, and the usage they are checked against that nodes share: fuel and
//! CPU time per hour, bytes stored.

use super::db::{DbRow, with_db};
use super::{Result, Store, ts};
use crate::model::quota::Quotas;
use chrono::Utc;

fn quota<T: TryFrom<i64>>(v: Option<i64>) -> Option<T> {
    v.and_then(|n| T::try_from(n).ok())
}

fn quotas_from_row(r: &impl DbRow) -> Result<(String, Quotas)> {
    Ok((
        r.col("workspace_id")?,
        Quotas {
            runs_in_flight: quota(r.col("runs_in_flight")?),
            task_slots: quota(r.col("task_slots")?),
            memory_mb: quota(r.col("memory_mb")?),
            storage_mb: quota(r.col("storage_mb")?),
            components: quota(r.col("components")?),
            fuel_per_hour: quota(r.col("fuel_per_hour")?),
        },
    ))
}

fn to_i64<T: Into<u64>>(v: Option<T>) -> Option<i64> {
    v.map(|n| i64::try_from(n.into()).unwrap_or(i64::MAX))
}

impl Store {
    /// The quotas of every workspace that has some.
    pub async fn all_quotas(&self) -> Result<Vec<(String, Quotas)>> {
        with_db!(&self.db, pool => {
        let rows = sqlx::query("SELECT * FROM workspace_quotas")
            .fetch_all(pool)
            .await?;
        rows.iter().map(quotas_from_row).collect()
        })
    }

    pub async fn quotas(&self, workspace_id: &str) -> Result<Quotas> {
        with_db!(&self.db, pool => {
        let row = sqlx::query("SELECT * FROM workspace_quotas WHERE workspace_id = $1")
            .bind(workspace_id)
            .fetch_optional(pool)
            .await?;
        Ok(row.map(|r| quotas_from_row(&r)).transpose()?.map(|(_, q)| q).unwrap_or_default())
        })
    }

    /// Sets a workspace's quotas (none at all removes its row).
    pub async fn put_quotas(&self, workspace_id: &str, q: &Quotas) -> Result<()> {
        with_db!(&self.db, pool => {
        if q.is_empty() {
            sqlx::query("DELETE FROM workspace_quotas WHERE workspace_id = $1")
                .bind(workspace_id)
                .execute(pool)
                .await?;
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO workspace_quotas (workspace_id, runs_in_flight, task_slots, memory_mb,
                 storage_mb, components, fuel_per_hour, updated)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (workspace_id) DO UPDATE SET
               runs_in_flight = excluded.runs_in_flight, task_slots = excluded.task_slots,
               memory_mb = excluded.memory_mb, storage_mb = excluded.storage_mb,
               components = excluded.components, fuel_per_hour = excluded.fuel_per_hour,
               updated = excluded.updated",
        )
        .bind(workspace_id)
        .bind(to_i64(q.runs_in_flight))
        .bind(to_i64(q.task_slots))
        .bind(to_i64(q.memory_mb))
        .bind(to_i64(q.storage_mb))
        .bind(to_i64(q.components))
        .bind(to_i64(q.fuel_per_hour))
        .bind(ts(Utc::now()))
        .execute(pool)
        .await?;
        Ok(())
        })
    }

    /// Adds a node's fuel and CPU time to a workspace's hour, and returns the hour's
    /// totals (fuel, CPU milliseconds) with every node's share.
    pub async fn add_cpu_usage(
        &self,
        workspace_id: &str,
        period: i64,
        fuel: u64,
        cpu_ms: u64,
    ) -> Result<(u64, u64)> {
        let (fuel, cpu_ms) = (
            i64::try_from(fuel).unwrap_or(i64::MAX),
            i64::try_from(cpu_ms).unwrap_or(i64::MAX),
        );
        with_db!(&self.db, pool => {
        let row = sqlx::query(
            "INSERT INTO workspace_cpu (workspace_id, period, fuel, cpu_ms) VALUES ($1, $2, $3, $4)
             ON CONFLICT (workspace_id, period) DO UPDATE SET
               fuel = workspace_cpu.fuel + excluded.fuel,
               cpu_ms = workspace_cpu.cpu_ms + excluded.cpu_ms
             RETURNING fuel, cpu_ms",
        )
        .bind(workspace_id)
        .bind(period)
        .bind(fuel)
        .bind(cpu_ms)
        .fetch_one(pool)
        .await?;
        let (f, c): (i64, i64) = (row.col("fuel")?, row.col("cpu_ms")?);
        Ok((f.max(0) as u64, c.max(0) as u64))
        })
    }

    /// A workspace's fuel and CPU milliseconds in an hour, every node counted.
    pub async fn cpu_usage(&self, workspace_id: &str, period: i64) -> Result<(u64, u64)> {
        with_db!(&self.db, pool => {
        let row = sqlx::query(
            "SELECT fuel, cpu_ms FROM workspace_cpu WHERE workspace_id = $1 AND period = $2",
        )
        .bind(workspace_id)
        .bind(period)
        .fetch_optional(pool)
        .await?;
        match row {
            Some(r) => {
                let (f, c): (i64, i64) = (r.col("fuel")?, r.col("cpu_ms")?);
                Ok((f.max(0) as u64, c.max(0) as u64))
            }
            None => Ok((0, 0)),
        }
        })
    }

    /// Adds `bytes` to what a workspace stores, and returns its total.
    pub async fn add_storage(&self, workspace_id: &str, bytes: u64) -> Result<u64> {
        let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
        with_db!(&self.db, pool => {
        let row = sqlx::query(
            "INSERT INTO workspace_storage (workspace_id, bytes) VALUES ($1, $2)
             ON CONFLICT (workspace_id) DO UPDATE SET
               bytes = workspace_storage.bytes + excluded.bytes
             RETURNING bytes",
        )
        .bind(workspace_id)
        .bind(bytes)
        .fetch_one(pool)
        .await?;
        let total: i64 = row.col("bytes")?;
        Ok(total.max(0) as u64)
        })
    }

    /// Components uploaded to a workspace.
    pub async fn component_count(&self, workspace_id: &str) -> Result<u64> {
        with_db!(&self.db, pool => {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM workspace_components WHERE workspace_id = $1",
        )
        .bind(workspace_id)
        .fetch_one(pool)
        .await?;
        let n: i64 = row.col("n")?;
        Ok(n.max(0) as u64)
        })
    }
}
