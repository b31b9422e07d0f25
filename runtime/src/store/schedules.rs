//! Deployment schedules and the bookkeeping of what they have created.

use super::db::{BeginWrite, DbRow, with_db};
use super::{Result, Store, parse_json, parse_opt_ts, parse_ts, ts};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, Serialize)]
pub struct ScheduleRecord {
    pub id: String,
    pub workspace_id: String,
    pub deployment_id: String,
    /// The schedule spec as JSON (`crate::schedule::ScheduleSpec`).
    pub spec: Value,
    pub parameters: Value,
    pub active: bool,
    /// `skip`, `latest` or `all`.
    pub catchup: String,
    pub catchup_limit: i64,
    /// `allow`, `skip`, `cancel` or `queue`.
    pub overlap: String,
    pub scheduled_until: Option<DateTime<Utc>>,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
}

fn schedule_from_row(r: &impl DbRow) -> Result<ScheduleRecord> {
    Ok(ScheduleRecord {
        id: r.col("id")?,
        workspace_id: r.col("workspace_id")?,
        deployment_id: r.col("deployment_id")?,
        spec: parse_json(&r.col::<String>("spec")?)?,
        parameters: parse_json(&r.col::<String>("parameters")?)?,
        active: r.flag("active")?,
        catchup: r.col("catchup")?,
        catchup_limit: r.col("catchup_limit")?,
        overlap: r.col("overlap")?,
        scheduled_until: parse_opt_ts(r.col("scheduled_until")?)?,
        created: parse_ts(&r.col::<String>("created")?)?,
        updated: parse_ts(&r.col::<String>("updated")?)?,
    })
}

impl Store {
    /// Creates or replaces a schedule (all its fields).
    pub async fn put_schedule(&self, s: &ScheduleRecord) -> Result<()> {
        with_db!(&self.db, pool => {
        sqlx::query(
            "INSERT INTO schedules (id, workspace_id, deployment_id, spec, parameters, active,
               catchup, catchup_limit, overlap, scheduled_until, created, updated)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
             ON CONFLICT (id) DO UPDATE SET spec = excluded.spec, parameters = excluded.parameters,
               active = excluded.active, catchup = excluded.catchup,
               catchup_limit = excluded.catchup_limit, overlap = excluded.overlap,
               scheduled_until = excluded.scheduled_until, updated = excluded.updated",
        )
        .bind(&s.id)
        .bind(&s.workspace_id)
        .bind(&s.deployment_id)
        .bind(s.spec.to_string())
        .bind(s.parameters.to_string())
        .bind(s.active as i64)
        .bind(&s.catchup)
        .bind(s.catchup_limit)
        .bind(&s.overlap)
        .bind(s.scheduled_until.map(ts))
        .bind(ts(s.created))
        .bind(ts(s.updated))
        .execute(pool)
        .await?;
        Ok(())
        })
    }

    pub async fn schedule(&self, workspace_id: &str, id: &str) -> Result<Option<ScheduleRecord>> {
        with_db!(&self.db, pool => {
        let row = sqlx::query("SELECT * FROM schedules WHERE id = $1 AND workspace_id = $2")
            .bind(id)
            .bind(workspace_id)
            .fetch_optional(pool)
            .await?;
        row.map(|r| schedule_from_row(&r)).transpose()
        })
    }

    pub async fn schedule_by_id(&self, id: &str) -> Result<Option<ScheduleRecord>> {
        with_db!(&self.db, pool => {
        let row = sqlx::query("SELECT * FROM schedules WHERE id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await?;
        row.map(|r| schedule_from_row(&r)).transpose()
        })
    }

    pub async fn deployment_schedules(&self, deployment_id: &str) -> Result<Vec<ScheduleRecord>> {
        with_db!(&self.db, pool => {
        let rows = sqlx::query("SELECT * FROM schedules WHERE deployment_id = $1 ORDER BY created")
            .bind(deployment_id)
            .fetch_all(pool)
            .await?;
        rows.iter().map(schedule_from_row).collect()
        })
    }

    /// Every active schedule (the scheduler's work list).
    pub async fn active_schedules(&self) -> Result<Vec<ScheduleRecord>> {
        with_db!(&self.db, pool => {
        let rows = sqlx::query("SELECT * FROM schedules WHERE active = 1")
            .fetch_all(pool)
            .await?;
        rows.iter().map(schedule_from_row).collect()
        })
    }

    /// Moves schedules' horizons forward (never back: several schedulers may race), in
    /// one transaction.
    pub async fn advance_schedules(&self, ids: &[&str], until: DateTime<Utc>) -> Result<()> {
        with_db!(&self.db, pool => {
        let mut tx = pool.begin_write().await?;
        for id in ids {
            sqlx::query(
                "UPDATE schedules SET scheduled_until = $1
                 WHERE id = $2 AND (scheduled_until IS NULL OR scheduled_until < $3)",
            )
            .bind(ts(until))
            .bind(id)
            .bind(ts(until))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
        })
    }

    pub async fn delete_schedule(&self, workspace_id: &str, id: &str) -> Result<bool> {
        with_db!(&self.db, pool => {
        let done = sqlx::query("DELETE FROM schedules WHERE id = $1 AND workspace_id = $2")
            .bind(id)
            .bind(workspace_id)
            .execute(pool)
            .await?;
        Ok(done.rows_affected() == 1)
        })
    }

    /// Scheduled runs of a schedule not yet started, due after `after` (they go when
    /// the schedule is paused or deleted).
    pub async fn cancel_future_schedule_runs(
        &self,
        schedule_id: &str,
        after: DateTime<Utc>,
    ) -> Result<Vec<String>> {
        with_db!(&self.db, pool => {
        let rows = sqlx::query(
            "SELECT id FROM flow_runs WHERE schedule_id = $1 AND state_type = 'SCHEDULED' AND expected_start > $2",
        )
        .bind(schedule_id)
        .bind(ts(after))
        .fetch_all(pool)
        .await?;
        rows.iter().map(|r| Ok(r.col("id")?)).collect()
        })
    }
}
