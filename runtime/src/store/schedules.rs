//! Deployment schedules and the bookkeeping of what they have created: their runs not
//! yet started are cancelled when the schedule is paused or deleted or its deployment
//! paused, and a run starts only if it is still what its node claimed.

use super::db::insert_state;
use super::db::{BeginWrite, DbRow, with_db};
use super::{FlowRunRecord, Result, Store, parse_json, parse_opt_ts, parse_ts, ts};
use crate::model::state::{State, StateType};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, Serialize)]
pub struct ScheduleRecord {
    pub id: String,
    pub workspace_id: String,
    pub deployment_id: String,
    /// The schedule spec as JSON (a `schedule::ScheduleSpec`).
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

    /// A deployment's schedules, oldest first (ids sort by creation time).
    pub async fn deployment_schedules(&self, deployment_id: &str) -> Result<Vec<ScheduleRecord>> {
        self.deployment_schedules_page(deployment_id, None, i64::MAX)
            .await
    }

    /// At most `limit` schedules of a deployment, oldest first, after the schedule
    /// `after`.
    pub async fn deployment_schedules_page(
        &self,
        deployment_id: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ScheduleRecord>> {
        with_db!(&self.db, pool, DB => {
        let mut q = sqlx::QueryBuilder::<DB>::new("SELECT * FROM schedules WHERE deployment_id = ");
        q.push_bind(deployment_id.to_owned());
        if let Some(id) = after {
            q.push(" AND id > ").push_bind(id.to_owned());
        }
        q.push(" ORDER BY id LIMIT ").push_bind(limit);
        let rows = q.build().fetch_all(pool).await?;
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

    /// Cancels the runs a schedule (or every schedule of a deployment) created that
    /// have not started, whichever node holds them, with `message` saying why, in one
    /// transaction; returns their ids. Runs that started once (put back at a shutdown,
    /// resumed after a suspend, retried) keep going.
    ///
    /// Each cancelled run's fencing token moves on, so a node holding it waiting for its
    /// time or a slot can no longer write to it (its writes are dropped) nor start it
    /// ([`Store::start_run`]). Its idempotency key is freed: if the schedule is resumed
    /// before that fire time, the fire time gets a new run.
    pub async fn cancel_unstarted_runs(
        &self,
        of: Unstarted<'_>,
        message: &str,
    ) -> Result<Vec<String>> {
        let (filter, id) = match of {
            Unstarted::Schedule(id) => ("schedule_id = $5", id),
            Unstarted::Deployment(id) => ("deployment_id = $5 AND schedule_id IS NOT NULL", id),
        };
        let sql = format!(
            "UPDATE flow_runs SET state_type = $1, state_name = $2, state_message = $3,
               state_timestamp = $4, end_time = $4, fence = fence + 1, idempotency_key = NULL
             WHERE {filter} AND state_type = 'SCHEDULED' AND run_count = 0
             RETURNING id"
        );
        let state = State::cancelled(message);
        let at = ts(state.timestamp);
        with_db!(&self.db, pool, DB => {
            let mut tx = pool.begin_write().await?;
            let ids: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .bind(state.kind.as_str())
                .bind(&state.name)
                .bind(&state.message)
                .bind(&at)
                .bind(id)
                .fetch_all(&mut *tx)
                .await?;
            // Their history, many rows to a statement (a deployment may have thousands).
            for chunk in ids.chunks(256) {
                let mut q = sqlx::QueryBuilder::<DB>::new(
                    "INSERT INTO run_states (run_id, type, name, message, timestamp) ",
                );
                q.push_values(chunk, |mut b, run_id| {
                    b.push_bind(run_id)
                        .push_bind(state.kind.as_str())
                        .push_bind(&state.name)
                        .push_bind(&state.message)
                        .push_bind(&at);
                });
                q.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(ids)
        })
    }

    /// Moves a run this node holds (with token `fence`) from the state it was claimed in
    /// to `state` (Pending), only if it still is in that state with that token: a run
    /// cancelled meanwhile, or claimed by another node, is not started. A schedule's
    /// run that never started whose schedule is no longer active (paused, deleted) or
    /// whose deployment is paused ends Cancelled instead (a pause another node's
    /// scheduler had not seen yet when it created the run).
    pub async fn start_run(&self, run: &FlowRunRecord, state: &State) -> Result<Start> {
        let start = format!(
            "UPDATE flow_runs SET state_type = $1, state_name = $2, state_message = $3,
               state_timestamp = $4
             WHERE id = $5 AND fence = $6 AND state_type = $7 AND NOT ({UNWANTED})
             RETURNING id"
        );
        let cancel = format!(
            "UPDATE flow_runs SET state_type = $1, state_name = $2,
               state_message = CASE WHEN {DEPLOYMENT_PAUSED} THEN $3 ELSE $4 END,
               state_timestamp = $5, end_time = $5, idempotency_key = NULL
             WHERE id = $6 AND fence = $7 AND state_type = $8 AND {UNWANTED}
             RETURNING state_message"
        );
        let at = ts(state.timestamp);
        let mut cancelled = State::new(StateType::Cancelled);
        with_db!(&self.db, pool => {
            let mut tx = pool.begin_write().await?;
            let started = sqlx::query(sqlx::AssertSqlSafe(start))
                .bind(state.kind.as_str())
                .bind(&state.name)
                .bind(&state.message)
                .bind(&at)
                .bind(&run.id)
                .bind(run.fence)
                .bind(run.state.kind.as_str())
                .fetch_optional(&mut *tx)
                .await?;
            if started.is_some() {
                insert_state!(&mut *tx, &run.id, state, &at)?;
                tx.commit().await?;
                return Ok(Start::Started);
            }
            let message: Option<Option<String>> = sqlx::query_scalar(sqlx::AssertSqlSafe(cancel))
                .bind(cancelled.kind.as_str())
                .bind(&cancelled.name)
                .bind(DEPLOYMENT_PAUSED_MESSAGE)
                .bind(SCHEDULE_GONE_MESSAGE)
                .bind(&at)
                .bind(&run.id)
                .bind(run.fence)
                .bind(run.state.kind.as_str())
                .fetch_optional(&mut *tx)
                .await?;
            let Some(message) = message else {
                return Ok(Start::Gone);
            };
            cancelled.message = message;
            insert_state!(&mut *tx, &run.id, &cancelled, &at)?;
            tx.commit().await?;
            Ok(Start::Cancelled)
        })
    }

    /// Ends a run this node holds (with token `fence`) that has not started executing
    /// here, in `state` (Cancelled), unless it is final already or no longer this
    /// node's (its token moved on).
    pub async fn end_unstarted_run(&self, run: &FlowRunRecord, state: &State) -> Result<bool> {
        let at = ts(state.timestamp);
        with_db!(&self.db, pool => {
            let mut tx = pool.begin_write().await?;
            let ended = sqlx::query(
                "UPDATE flow_runs SET state_type = $1, state_name = $2, state_message = $3,
                   state_timestamp = $4, end_time = $4
                 WHERE id = $5 AND fence = $6
                   AND state_type NOT IN ('COMPLETED', 'FAILED', 'CANCELLED', 'CRASHED')
                 RETURNING id",
            )
            .bind(state.kind.as_str())
            .bind(&state.name)
            .bind(&state.message)
            .bind(&at)
            .bind(&run.id)
            .bind(run.fence)
            .fetch_optional(&mut *tx)
            .await?;
            if ended.is_none() {
                return Ok(false);
            }
            insert_state!(&mut *tx, &run.id, state, &at)?;
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Makes the schedules of a deployment start again from `now` (it was resumed):
    /// fire times that passed while it was paused get no run.
    pub async fn restart_deployment_schedules(
        &self,
        deployment_id: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        with_db!(&self.db, pool => {
            sqlx::query(
                "UPDATE schedules SET scheduled_until = $1, updated = $1 WHERE deployment_id = $2",
            )
            .bind(ts(now))
            .bind(deployment_id)
            .execute(pool)
            .await?;
            Ok(())
        })
    }
}

/// Whose unstarted runs [`Store::cancel_unstarted_runs`] cancels.
#[derive(Debug, Clone, Copy)]
pub enum Unstarted<'a> {
    /// The runs a schedule created (it was paused or deleted).
    Schedule(&'a str),
    /// The runs every schedule of a deployment created (the deployment was paused).
    /// Runs triggered through the API, even ones scheduled for later, are kept: Prefect
    /// deletes only a paused deployment's auto-scheduled runs.
    Deployment(&'a str),
}

/// What became of a run the executor was about to start ([`Store::start_run`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// It is in the new state: run it.
    Started,
    /// It was not in the state it was claimed in, with this node's token, any more:
    /// cancelled meanwhile, or claimed by another node. Drop it.
    Gone,
    /// It ended Cancelled, its schedule or deployment paused since it was created.
    Cancelled,
}

/// A schedule's run that never started and that nobody wants any more: its schedule is
/// gone or inactive, or its deployment paused.
const UNWANTED: &str = "flow_runs.schedule_id IS NOT NULL AND flow_runs.run_count = 0 AND (
    NOT EXISTS (SELECT 1 FROM schedules s WHERE s.id = flow_runs.schedule_id AND s.active = 1)
    OR EXISTS (SELECT 1 FROM deployments d WHERE d.id = flow_runs.deployment_id AND d.paused = 1))";

const DEPLOYMENT_PAUSED: &str =
    "EXISTS (SELECT 1 FROM deployments d WHERE d.id = flow_runs.deployment_id AND d.paused = 1)";

const DEPLOYMENT_PAUSED_MESSAGE: &str = "the deployment was paused before this run started";
const SCHEDULE_GONE_MESSAGE: &str = "the schedule was paused or deleted before this run started";
