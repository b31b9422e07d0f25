//! Leases: which server node holds which flow run, claims of due runs and of the runs
//! of nodes that stopped heartbeating, and the fencing tokens that keep a node that
//! lost a run from writing to it.
//!
//! A node holds a run from its claim until the run is final (or let go: put back on
//! shutdown, suspended). Every claim raises the run's `fence`; the writer checks the
//! fence of every held run a batch touches, inside the batch's transaction (`FOR SHARE`
//! on PostgreSQL, so a concurrent takeover waits or wins outright), and drops the
//! writes of runs whose fence moved on.

use super::db::{BeginWrite, DbRow, insert_state, with_db};
use super::{FlowRunRecord, Result, Store, flow_run_from_row, ts};
use crate::model::state::{State, StateType, Transition};
use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet};
use tokio::sync::mpsc;

use crate::model::state::HELD_SQL as HELD_STATES;

/// The fencing tokens of the runs this node holds, shared with the writer.
#[derive(Default)]
pub(crate) struct Fences {
    /// Token of each held flow run, by id.
    held: HashMap<String, i64>,
    /// The held run every subflow run and task run of this node belongs to.
    owner: HashMap<String, String>,
    /// Ids owned by each held run, to forget them with it.
    owned: HashMap<String, Vec<String>>,
    /// Held runs another node took over: their writes are dropped.
    lost: HashSet<String>,
    /// Told the id of every run found lost.
    on_lost: Option<mpsc::UnboundedSender<String>>,
}

impl Fences {
    /// The held run a run (held, subflow or task run) belongs to.
    pub(crate) fn root_of(&self, run_id: &str) -> Option<&str> {
        match self.held.get_key_value(run_id) {
            Some((root, _)) => Some(root),
            None => self.owner.get(run_id).map(String::as_str),
        }
    }

    /// Records that `child` (a subflow or task run) belongs to whatever `parent`
    /// belongs to; returns that held run.
    pub(crate) fn adopt(&mut self, child: &str, parent: &str) -> Option<String> {
        let root = self.root_of(parent)?.to_owned();
        if child != root && !self.owner.contains_key(child) {
            self.owner.insert(child.to_owned(), root.clone());
            self.owned
                .entry(root.clone())
                .or_default()
                .push(child.to_owned());
        }
        Some(root)
    }

    pub(crate) fn token(&self, root: &str) -> Option<i64> {
        self.held.get(root).copied()
    }

    pub(crate) fn is_lost(&self, root: &str) -> bool {
        self.lost.contains(root)
    }

    /// Marks a held run lost (its fence moved on) and tells whoever listens.
    pub(crate) fn mark_lost(&mut self, root: &str) {
        if self.lost.insert(root.to_owned()) {
            tracing::warn!(
                "flow run {root} was taken over by another node; this node's late writes to it \
                 are rejected"
            );
            if let Some(tx) = &self.on_lost {
                let _ = tx.send(root.to_owned());
            }
        }
    }
}

/// A node's entry in the `nodes` table.
#[derive(Debug, Clone)]
pub struct NodeRecord {
    pub id: String,
    pub started: DateTime<Utc>,
    pub heartbeat: DateTime<Utc>,
}

impl Store {
    /// From now on, writes to `run_id` (its subflow and task runs included) must carry
    /// fencing token `fence`.
    pub fn hold(&self, run_id: &str, fence: i64) {
        let mut f = self.fences();
        f.held.insert(run_id.to_owned(), fence);
        f.lost.remove(run_id);
    }

    /// Forgets a held run (after its last write was flushed), unless it was claimed
    /// again since (a newer fence).
    pub fn unhold(&self, run_id: &str, fence: i64) {
        let mut f = self.fences();
        if f.held.get(run_id).is_some_and(|t| *t != fence) {
            return;
        }
        f.held.remove(run_id);
        f.lost.remove(run_id);
        for id in f.owned.remove(run_id).unwrap_or_default() {
            f.owner.remove(&id);
        }
    }

    /// Records that another node took over a held run: its writes are dropped from
    /// now on, and [`Store::lease_losses`] hears of it.
    pub fn mark_lost(&self, run_id: &str) {
        self.fences().mark_lost(run_id);
    }

    /// Whether another node took over a run this node holds.
    pub fn is_lost(&self, run_id: &str) -> bool {
        self.fences().is_lost(run_id)
    }

    /// Receives the id of every held run found taken over by another node.
    pub fn lease_losses(&self) -> mpsc::UnboundedReceiver<String> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.fences().on_lost = Some(tx);
        rx
    }

    /// Claims skip the rows another node is claiming (PostgreSQL); SQLite has one
    /// writer at a time anyway.
    fn skip_locked(&self) -> &'static str {
        if self.db.is_postgres() {
            " FOR UPDATE SKIP LOCKED"
        } else {
            ""
        }
    }

    fn fences(&self) -> std::sync::MutexGuard<'_, Fences> {
        self.fences.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records that the node is alive (creating its entry on the first beat).
    pub async fn heartbeat(&self, node: &str, started: DateTime<Utc>) -> Result<()> {
        with_db!(&self.db, pool => {
            sqlx::query(
                "INSERT INTO nodes (id, started, heartbeat) VALUES ($1, $2, $3)
                 ON CONFLICT (id) DO UPDATE SET heartbeat = excluded.heartbeat",
            )
            .bind(node)
            .bind(ts(started))
            .bind(ts(Utc::now()))
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    pub async fn nodes(&self) -> Result<Vec<NodeRecord>> {
        with_db!(&self.db, pool => {
            let rows = sqlx::query("SELECT id, started, heartbeat FROM nodes ORDER BY started")
                .fetch_all(pool)
                .await?;
            rows.iter()
                .map(|r| {
                    Ok(NodeRecord {
                        id: r.col("id")?,
                        started: super::parse_ts(&r.col::<String>("started")?)?,
                        heartbeat: super::parse_ts(&r.col::<String>("heartbeat")?)?,
                    })
                })
                .collect()
        })
    }

    /// Claims for `node` up to `limit` deployment runs nobody holds that are due by
    /// `until`, earliest first. On PostgreSQL, nodes claiming at once skip each
    /// other's rows (`FOR UPDATE SKIP LOCKED`), so no run goes to two nodes.
    pub async fn claim_due(
        &self,
        node: &str,
        until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<FlowRunRecord>> {
        let lock = self.skip_locked();
        let sql = format!(
            "UPDATE flow_runs SET node_id = $1, fence = fence + 1
             WHERE node_id IS NULL AND state_type = 'SCHEDULED' AND id IN (
               SELECT id FROM flow_runs
               WHERE node_id IS NULL AND state_type = 'SCHEDULED'
                 AND workspace_id IS NOT NULL AND parent_flow_run_id IS NULL
                 AND (expected_start IS NULL OR expected_start <= $2)
               ORDER BY expected_start LIMIT $3{lock})
             RETURNING *"
        );
        with_db!(&self.db, pool => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(node)
                .bind(ts(until))
                .bind(limit)
                .fetch_all(pool)
                .await?;
            rows.iter().map(flow_run_from_row).collect()
        })
    }

    /// Claims for `node` the unfinished runs of nodes whose last heartbeat is older
    /// than `cutoff` (every other node's, with a cutoff in the future), and started runs
    /// nobody holds, up to `limit`. A run that had started counts one more crash.
    pub async fn take_over(
        &self,
        node: &str,
        cutoff: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<FlowRunRecord>> {
        let lock = self.skip_locked();
        let sql = format!(
            "UPDATE flow_runs SET node_id = $1, fence = fence + 1,
               crash_count = crash_count
                 + CASE WHEN state_type = 'SCHEDULED' THEN 0 ELSE 1 END
             WHERE id IN (
               SELECT id FROM flow_runs
               WHERE state_type IN {HELD_STATES} AND parent_flow_run_id IS NULL
                 AND ((node_id IS NOT NULL AND node_id != $1
                       AND node_id NOT IN (SELECT id FROM nodes WHERE heartbeat >= $2))
                      -- Started but held by nobody: left by a server before leases.
                      OR (node_id IS NULL AND workspace_id IS NOT NULL
                          AND state_type IN ('PENDING', 'RUNNING', 'CANCELLING')))
               ORDER BY id LIMIT $3{lock})
             RETURNING *"
        );
        with_db!(&self.db, pool => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(node)
                .bind(ts(cutoff))
                .bind(limit)
                .fetch_all(pool)
                .await?;
            rows.iter().map(flow_run_from_row).collect()
        })
    }

    /// Forgets nodes silent since before `cutoff` that hold no unfinished run.
    pub async fn forget_dead_nodes(&self, cutoff: DateTime<Utc>) -> Result<u64> {
        let sql = format!(
            "DELETE FROM nodes WHERE heartbeat < $1 AND id NOT IN (
               SELECT node_id FROM flow_runs
               WHERE node_id IS NOT NULL AND state_type IN {HELD_STATES})"
        );
        with_db!(&self.db, pool => {
            let done = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(ts(cutoff))
                .execute(pool)
                .await?;
            Ok(done.rows_affected())
        })
    }

    /// Lets go of the runs `node` holds that have not started, and removes the node:
    /// it is shutting down and another node (or its next start) claims them.
    pub async fn leave(&self, node: &str) -> Result<()> {
        with_db!(&self.db, pool => {
            let mut tx = pool.begin_write().await?;
            sqlx::query(
                "UPDATE flow_runs SET node_id = NULL WHERE node_id = $1 AND state_type = 'SCHEDULED'",
            )
            .bind(node)
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM nodes WHERE id = $1")
                .bind(node)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// The fencing token of each of `ids` that `node` still holds (a run missing from
    /// the answer was taken over or let go).
    pub async fn still_held(&self, node: &str, ids: &[String]) -> Result<HashMap<String, i64>> {
        let mut out = HashMap::new();
        for chunk in ids.chunks(500) {
            with_db!(&self.db, pool, DB => {
                let mut q = sqlx::QueryBuilder::<DB>::new(
                    "SELECT id, fence FROM flow_runs WHERE node_id = ",
                );
                q.push_bind(node).push(" AND id IN (");
                let mut list = q.separated(", ");
                for id in chunk {
                    list.push_bind(id.as_str());
                }
                q.push(")");
                for r in q.build().fetch_all(pool).await? {
                    out.insert(r.col("id")?, r.col("fence")?);
                }
            })
        }
        Ok(out)
    }

    /// Ends, as Crashed, every unfinished task run and subflow run (at any depth)
    /// under the flow run `root_id`: the node running them is gone. Their positions
    /// run again when the flow run resumes by replay.
    pub async fn crash_unfinished_children(&self, root_id: &str, message: &str) -> Result<()> {
        let state = State::new(StateType::Crashed).with_message(message);
        let now = ts(state.timestamp);
        with_db!(&self.db, pool => {
            let mut tx = pool.begin_write().await?;
            let mut parents = vec![root_id.to_owned()];
            while let Some(parent) = parents.pop() {
                let subflows: Vec<String> =
                    sqlx::query_scalar("SELECT id FROM flow_runs WHERE parent_flow_run_id = $1")
                        .bind(&parent)
                        .fetch_all(&mut *tx)
                        .await?;
                // Each table once: its unfinished children under `parent` end Crashed.
                let ends = [
                    "UPDATE task_runs SET state_type = $1, state_name = $2, state_message = $3,
                       state_timestamp = $4, end_time = $4
                     WHERE flow_run_id = $5
                       AND state_type NOT IN ('COMPLETED', 'FAILED', 'CANCELLED', 'CRASHED')
                     RETURNING id"
                        .to_owned(),
                    format!(
                        "UPDATE flow_runs SET state_type = $1, state_name = $2, state_message = $3,
                           state_timestamp = $4, end_time = $4
                         WHERE parent_flow_run_id = $5 AND state_type IN {HELD_STATES}
                         RETURNING id"
                    ),
                ];
                for sql in ends {
                    let ended: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                        .bind(state.kind.as_str())
                        .bind(&state.name)
                        .bind(&state.message)
                        .bind(&now)
                        .bind(&parent)
                        .fetch_all(&mut *tx)
                        .await?;
                    for id in &ended {
                        insert_state!(&mut *tx, id, &state, &now)?;
                    }
                }
                parents.extend(subflows);
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Asks the node holding a run to cancel it; false when the run is not held by a
    /// node (nobody runs it: the caller ends it itself).
    pub async fn request_cancel(&self, run_id: &str) -> Result<bool> {
        let sql = format!(
            "UPDATE flow_runs SET cancel_requested = $1
             WHERE id = $2 AND node_id IS NOT NULL AND state_type IN {HELD_STATES}"
        );
        with_db!(&self.db, pool => {
            let done = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(ts(Utc::now()))
                .bind(run_id)
                .execute(pool)
                .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    /// Runs held by `node` that someone asked to cancel.
    pub async fn cancel_requests(&self, node: &str) -> Result<Vec<String>> {
        let sql = format!(
            "SELECT id FROM flow_runs WHERE node_id = $1 AND cancel_requested IS NOT NULL
               AND state_type IN {HELD_STATES}"
        );
        with_db!(&self.db, pool => {
            Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .bind(node)
                .fetch_all(pool)
                .await?)
        })
    }

    /// Claims a run for `node` when its state is one of `from`, moving it to `state`
    /// by `transition` (a retry of a finished run, a resumed suspended run). Returns it
    /// as claimed. States of `from` the transition does not allow leaving are ignored.
    pub async fn claim_run(
        &self,
        run_id: &str,
        node: &str,
        transition: Transition,
        from: &[StateType],
        state: &State,
    ) -> Result<Option<FlowRunRecord>> {
        let from: Vec<&StateType> = from
            .iter()
            .filter(|f| transition.allows(**f, state.kind))
            .collect();
        if from.is_empty() {
            return Ok(None);
        }
        let from = from
            .iter()
            .map(|s| format!("'{}'", s.as_str()))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "UPDATE flow_runs SET node_id = $1, fence = fence + 1, crash_count = 0,
               cancel_requested = NULL, state_type = $2, state_name = $3, state_message = $4,
               state_timestamp = $5, end_time = NULL
             WHERE id = $6 AND state_type IN ({from})
             RETURNING *"
        );
        with_db!(&self.db, pool => {
            let mut tx = pool.begin_write().await?;
            let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(node)
                .bind(state.kind.as_str())
                .bind(&state.name)
                .bind(&state.message)
                .bind(ts(state.timestamp))
                .bind(run_id)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(row) = row else {
                return Ok(None);
            };
            insert_state!(&mut *tx, run_id, state, &ts(state.timestamp))?;
            tx.commit().await?;
            Ok(Some(flow_run_from_row(&row)?))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subflows_and_tasks_belong_to_their_held_run_and_a_loss_is_told_once() {
        let mut f = Fences::default();
        f.held.insert("run".into(), 3);
        assert_eq!(f.adopt("sub", "run").as_deref(), Some("run"));
        assert_eq!(f.adopt("task", "sub").as_deref(), Some("run"));
        assert_eq!(f.root_of("task"), Some("run"));
        assert_eq!(f.token("run"), Some(3));
        assert_eq!(f.adopt("stray", "not-held"), None);
        assert_eq!(f.root_of("stray"), None);
        assert_eq!(f.owned["run"], ["sub", "task"]);

        let (tx, mut rx) = mpsc::unbounded_channel();
        f.on_lost = Some(tx);
        assert!(!f.is_lost("run"));
        f.mark_lost("run");
        f.mark_lost("run");
        assert!(f.is_lost("run"));
        assert_eq!(rx.try_recv().as_deref(), Ok("run"));
        assert!(rx.try_recv().is_err(), "told once");
    }
}
