//! Deployment schedules and the bookkeeping of what they have created.

use super::{Result, Store, parse_json, parse_opt_ts, parse_ts, ts};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

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

fn schedule_from_row(r: &SqliteRow) -> Result<ScheduleRecord> {
    Ok(ScheduleRecord {
        id: r.try_get("id")?,
        workspace_id: r.try_get("workspace_id")?,
        deployment_id: r.try_get("deployment_id")?,
        spec: parse_json(&r.try_get::<String, _>("spec")?)?,
        parameters: parse_json(&r.try_get::<String, _>("parameters")?)?,
        active: r.try_get::<i64, _>("active")? != 0,
        catchup: r.try_get("catchup")?,
        catchup_limit: r.try_get("catchup_limit")?,
        overlap: r.try_get("overlap")?,
        scheduled_until: parse_opt_ts(r.try_get("scheduled_until")?)?,
        created: parse_ts(&r.try_get::<String, _>("created")?)?,
        updated: parse_ts(&r.try_get::<String, _>("updated")?)?,
    })
}

impl Store {
    /// Creates or replaces a schedule (all its fields).
    pub async fn put_schedule(&self, s: &ScheduleRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO schedules (id, workspace_id, deployment_id, spec, parameters, active,
               catchup, catchup_limit, overlap, scheduled_until, created, updated)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
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
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn schedule(&self, workspace_id: &str, id: &str) -> Result<Option<ScheduleRecord>> {
        let row = sqlx::query("SELECT * FROM schedules WHERE id = ? AND workspace_id = ?")
            .bind(id)
            .bind(workspace_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| schedule_from_row(&r)).transpose()
    }

    pub async fn schedule_by_id(&self, id: &str) -> Result<Option<ScheduleRecord>> {
        let row = sqlx::query("SELECT * FROM schedules WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| schedule_from_row(&r)).transpose()
    }

    pub async fn deployment_schedules(&self, deployment_id: &str) -> Result<Vec<ScheduleRecord>> {
        let rows = sqlx::query("SELECT * FROM schedules WHERE deployment_id = ? ORDER BY created")
            .bind(deployment_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(schedule_from_row).collect()
    }

    /// Every active schedule (the scheduler's work list).
    pub async fn active_schedules(&self) -> Result<Vec<ScheduleRecord>> {
        let rows = sqlx::query("SELECT * FROM schedules WHERE active = 1")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(schedule_from_row).collect()
    }

    /// Moves schedules' horizons forward (never back: several schedulers may race), in
    /// one transaction.
    pub async fn advance_schedules(&self, ids: &[&str], until: DateTime<Utc>) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for id in ids {
            sqlx::query(
                "UPDATE schedules SET scheduled_until = ?
                 WHERE id = ? AND (scheduled_until IS NULL OR scheduled_until < ?)",
            )
            .bind(ts(until))
            .bind(id)
            .bind(ts(until))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn delete_schedule(&self, workspace_id: &str, id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM schedules WHERE id = ? AND workspace_id = ?")
            .bind(id)
            .bind(workspace_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Scheduled runs of a schedule not yet started, due after `after` (they go when
    /// the schedule is paused or deleted).
    pub async fn cancel_future_schedule_runs(
        &self,
        schedule_id: &str,
        after: DateTime<Utc>,
    ) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT id FROM flow_runs WHERE schedule_id = ? AND state_type = 'SCHEDULED' AND expected_start > ?",
        )
        .bind(schedule_id)
        .bind(ts(after))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok(r.try_get("id")?)).collect()
    }
}
