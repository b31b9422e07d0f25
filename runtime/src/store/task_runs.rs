//! Task runs: of a flow run, in a light form for drawing large runs, and the
//! workspace's task runs filtered and paged for the runs list's task-runs tab.

use super::db::{DbRow, with_db};
use super::*;
use sqlx::QueryBuilder;

/// Filters of the workspace's task-runs list.
#[derive(Debug, Default, Clone)]
pub struct TaskRunFilter {
    /// Any of these state types (all when empty).
    pub states: Vec<StateType>,
    pub task_name: Option<String>,
    pub flow_run_id: Option<String>,
    /// Task runs older than this one (ids sort by creation time).
    pub before_id: Option<String>,
    pub limit: i64,
}

/// What the run page draws of a task run: no result, no tags.
#[derive(Debug, Clone)]
pub struct TaskRunSummary {
    pub id: String,
    pub position: Option<i64>,
    pub task_name: String,
    pub name: String,
    pub state: State,
    pub run_count: i64,
    pub cache_key: Option<String>,
    pub start_time: Option<DateTime<Utc>>,
    pub end_time: Option<DateTime<Utc>>,
    pub upstream: Vec<String>,
    /// The transaction it belongs to.
    pub transaction_id: Option<String>,
}

fn summary_from_row(r: &impl DbRow) -> Result<TaskRunSummary> {
    Ok(TaskRunSummary {
        id: r.col("id")?,
        position: r.col("position")?,
        task_name: r.col("task_name")?,
        name: r.col("name")?,
        state: state_from_row(
            r,
            "state_type",
            "state_name",
            "state_message",
            "state_timestamp",
        )?,
        run_count: r.col("run_count")?,
        cache_key: r.col("cache_key")?,
        start_time: parse_opt_ts(r.col("start_time")?)?,
        end_time: parse_opt_ts(r.col("end_time")?)?,
        upstream: match r.col::<Option<String>>("upstream")? {
            Some(text) => tags_from(&text)?,
            None => vec![],
        },
        transaction_id: r.col("transaction_id")?,
    })
}

impl Store {
    /// Task runs of a flow run, in call order.
    pub async fn task_runs(&self, flow_run_id: &str) -> Result<Vec<TaskRunRecord>> {
        with_db!(&self.db, pool => {
        let rows = sqlx::query(
            "SELECT * FROM task_runs WHERE flow_run_id = $1 ORDER BY position IS NULL, position, created",
        )
        .bind(flow_run_id)
        .fetch_all(pool)
        .await?;
        rows.iter().map(task_run_from_row).collect()
        })
    }

    /// At most `limit` task runs of a flow run in call order, then those without a
    /// position (called from tasks) in creation order, after the one at `after`
    /// (its position and id): the API's page of a run's task runs.
    pub async fn task_runs_page(
        &self,
        flow_run_id: &str,
        after: Option<(Option<i64>, &str)>,
        limit: i64,
    ) -> Result<Vec<TaskRunRecord>> {
        with_db!(&self.db, pool, DB => {
        let mut out = Vec::new();
        if !matches!(after, Some((None, _))) {
            let mut q = QueryBuilder::<DB>::new("SELECT * FROM task_runs WHERE flow_run_id = ");
            q.push_bind(flow_run_id.to_owned())
                .push(" AND position IS NOT NULL");
            if let Some((Some(position), id)) = after {
                q.push(" AND (position, id) > (")
                    .push_bind(position)
                    .push(", ")
                    .push_bind(id.to_owned())
                    .push(")");
            }
            q.push(" ORDER BY position, id LIMIT ").push_bind(limit);
            for row in q.build().fetch_all(pool).await? {
                out.push(task_run_from_row(&row)?);
            }
        }
        let left = limit - out.len() as i64;
        if left > 0 {
            let mut q = QueryBuilder::<DB>::new("SELECT * FROM task_runs WHERE flow_run_id = ");
            q.push_bind(flow_run_id.to_owned())
                .push(" AND position IS NULL");
            if let Some((None, id)) = after {
                q.push(" AND id > ").push_bind(id.to_owned());
            }
            q.push(" ORDER BY id LIMIT ").push_bind(left);
            for row in q.build().fetch_all(pool).await? {
                out.push(task_run_from_row(&row)?);
            }
        }
        Ok(out)
        })
    }

    pub async fn task_run(&self, id: &str) -> Result<Option<TaskRunRecord>> {
        with_db!(&self.db, pool => {
        let row = sqlx::query("SELECT * FROM task_runs WHERE id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await?;
        row.map(|r| task_run_from_row(&r)).transpose()
        })
    }

    /// At most `limit` task runs of a flow run in call order, without their results.
    pub async fn task_run_summaries(
        &self,
        flow_run_id: &str,
        limit: i64,
    ) -> Result<Vec<TaskRunSummary>> {
        // Runs at a position in call order, from the index; then the few without one
        // (called from tasks).
        const COLUMNS: &str = "SELECT id, position, task_name, name, state_type, state_name,
            state_message, state_timestamp, run_count, cache_key, start_time, end_time, upstream,
            transaction_id FROM task_runs WHERE flow_run_id = $1";
        with_db!(&self.db, pool => {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{COLUMNS} AND position IS NOT NULL ORDER BY position LIMIT $2"
        )))
        .bind(flow_run_id)
        .bind(limit)
        .fetch_all(pool)
        .await?;
        let mut out: Vec<TaskRunSummary> = rows.iter().map(summary_from_row).collect::<Result<_>>()?;
        let left = limit - out.len() as i64;
        if left > 0 {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "{COLUMNS} AND position IS NULL ORDER BY created LIMIT $2"
            )))
            .bind(flow_run_id)
            .bind(left)
            .fetch_all(pool)
            .await?;
            for r in &rows {
                out.push(summary_from_row(r)?);
            }
        }
        Ok(out)
        })
    }

    /// Task runs of a workspace, newest first.
    pub async fn list_task_runs(
        &self,
        workspace_id: &str,
        f: &TaskRunFilter,
    ) -> Result<Vec<TaskRunRecord>> {
        // A text with a NUL matches nothing stored (PostgreSQL takes no NUL in text, and
        // SQLite's full-text query none in its terms): answered without asking either.
        if [&f.task_name, &f.flow_run_id]
            .into_iter()
            .flatten()
            .any(|t| t.contains('\0'))
        {
            return Ok(Vec::new());
        }
        with_db!(&self.db, pool, DB => {
        let mut q = QueryBuilder::<DB>::new("SELECT * FROM task_runs WHERE workspace_id = ");
        q.push_bind(workspace_id.to_owned());
        if !f.states.is_empty() {
            q.push(" AND state_type IN (");
            let mut list = q.separated(", ");
            for state in &f.states {
                list.push_bind(state.as_str());
            }
            q.push(")");
        }
        if let Some(name) = &f.task_name {
            q.push(" AND task_name = ").push_bind(name.clone());
        }
        if let Some(id) = &f.flow_run_id {
            q.push(" AND flow_run_id = ").push_bind(id.clone());
        }
        if let Some(id) = &f.before_id {
            q.push(" AND id < ").push_bind(id.clone());
        }
        q.push(" ORDER BY id DESC LIMIT ").push_bind(f.limit);
        let rows = q.build().fetch_all(pool).await?;
        rows.iter().map(task_run_from_row).collect()
        })
    }

    /// A flow run's task runs per task and state (a Cached completion apart): how many,
    /// the first start, the last end, how many are running, the last change. For drawing
    /// a run too large to draw run by run.
    pub async fn task_run_groups(&self, flow_run_id: &str) -> Result<Vec<TaskRunGroup>> {
        with_db!(&self.db, pool => {
        let rows = sqlx::query(
            "SELECT task_name, state_type,
                    CAST(CASE WHEN state_name = 'Cached' THEN 1 ELSE 0 END AS BIGINT) AS cached,
                    COUNT(*) AS n, MIN(start_time) AS first_start, MAX(end_time) AS last_end,
                    SUM(CASE WHEN start_time IS NOT NULL AND end_time IS NULL THEN 1 ELSE 0 END)
                      AS running,
                    MAX(state_timestamp) AS changed, MIN(position) AS first_position
             FROM task_runs WHERE flow_run_id = $1
             GROUP BY task_name, state_type, cached ORDER BY first_position, task_name",
        )
        .bind(flow_run_id)
        .fetch_all(pool)
        .await?;
        rows.iter()
            .map(|r| {
                let state: String = r.col("state_type")?;
                Ok(TaskRunGroup {
                    task_name: r.col("task_name")?,
                    class: if r.col::<i64>("cached")? == 1 { "Cached".into() } else { state },
                    count: r.col("n")?,
                    first_start: parse_opt_ts(r.col("first_start")?)?,
                    last_end: parse_opt_ts(r.col("last_end")?)?,
                    running: r.col::<Option<i64>>("running")?.unwrap_or(0),
                    changed: r.col("changed")?,
                })
            })
            .collect()
        })
    }

    /// The pairs (upstream task, downstream task) of a flow run's `wait_for` edges.
    pub async fn task_group_edges(&self, flow_run_id: &str) -> Result<Vec<(String, String)>> {
        let sql = if self.db.is_postgres() {
            "SELECT DISTINCT u.task_name AS up, t.task_name AS down
             FROM task_runs t CROSS JOIN LATERAL jsonb_array_elements_text(t.upstream::jsonb) AS j(value)
             JOIN task_runs u ON u.id = j.value
             WHERE t.flow_run_id = $1 AND t.upstream IS NOT NULL"
        } else {
            "SELECT DISTINCT u.task_name AS up, t.task_name AS down
             FROM task_runs t, json_each(t.upstream) j, task_runs u
             WHERE t.flow_run_id = $1 AND t.upstream IS NOT NULL AND u.id = j.value"
        };
        with_db!(&self.db, pool => {
        let rows = sqlx::query(sql).bind(flow_run_id).fetch_all(pool).await?;
        rows.iter()
            .map(|r| Ok((r.col("up")?, r.col("down")?)))
            .collect()
        })
    }
}

/// Task runs of one task in one state within a flow run.
#[derive(Debug, Clone)]
pub struct TaskRunGroup {
    pub task_name: String,
    /// The state type, or "Cached".
    pub class: String,
    pub count: i64,
    pub first_start: Option<DateTime<Utc>>,
    pub last_end: Option<DateTime<Utc>>,
    pub running: i64,
    /// The latest state change (RFC 3339 text).
    pub changed: String,
}
