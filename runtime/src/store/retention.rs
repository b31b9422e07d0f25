//! Retention: the workspaces' and deployments' policies, and deleting the finished runs
//! they no longer keep, in small transactions that other writers interleave with.

use super::db::{BeginWrite, Db, DbRow, with_db};
use super::deployments::policy_of;
use super::{Result, Store, parse_opt_ts, ts};
use crate::model::retention::Retention;
use crate::model::state::{StateType, final_sql};
use chrono::{DateTime, Duration, Utc};
use std::collections::{HashMap, HashSet};

/// Runs a policy answers for: one deployment's, or the rest of a workspace's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionScope {
    pub workspace_id: String,
    /// `None`: the workspace's runs whose deployment has no policy of its own.
    pub deployment_id: Option<String>,
    pub policy: Retention,
}

/// A workspace's own policy and what retention deleted for it.
#[derive(Debug, Clone, Default)]
pub struct WorkspaceRetention {
    pub policy: Retention,
    /// Flow runs (subflows counted) deleted so far.
    pub runs_deleted: u64,
    pub last_deleted: Option<DateTime<Utc>>,
}

/// What one deletion removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Deleted {
    /// Flow runs, subflows counted.
    pub runs: u64,
    /// Bytes of logs, artifacts and results, as the workspace's storage counts them.
    pub bytes: u64,
    /// How long the transaction held the database (on SQLite, the write lock other
    /// writers wait for), its wait for the lock not counted.
    pub held: std::time::Duration,
}

/// Ids bound in one statement at most.
const CHUNK: usize = 500;

/// `$from, $from+1, …` for `n` values.
fn placeholders(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Top-level runs of a scope that ended: the runs retention may delete. Each is the
/// predicate of an index (`flow_runs_ended_*`, which hold the deployment too), so a
/// scan stays on it; `finished` adds the state check (a row read per run: for batches,
/// not for counting the runs a policy keeps, where an end time means finished).
fn scope_sql(scope: &RetentionScope, finished: bool) -> String {
    let mut sql = match scope.deployment_id {
        Some(_) => {
            "deployment_id = $1 AND parent_flow_run_id IS NULL AND end_time IS NOT NULL".to_owned()
        }
        None => "workspace_id = $1 AND parent_flow_run_id IS NULL AND end_time IS NOT NULL
             AND (deployment_id IS NULL OR deployment_id NOT IN (
                SELECT id FROM deployments WHERE workspace_id = $1
                  AND (retention_days IS NOT NULL OR retention_runs IS NOT NULL)))"
            .to_owned(),
    };
    if finished {
        sql.push_str(concat!(" AND state_type IN ", final_sql!()));
    }
    sql
}

fn scope_key(scope: &RetentionScope) -> &str {
    scope
        .deployment_id
        .as_deref()
        .unwrap_or(&scope.workspace_id)
}

impl Store {
    /// A workspace's own policy (empty: none) and what was deleted for it.
    pub async fn workspace_retention(&self, workspace_id: &str) -> Result<WorkspaceRetention> {
        with_db!(&self.db, pool => {
            let row = sqlx::query(
                "SELECT keep_days, keep_runs, runs_deleted, last_deleted
                 FROM workspace_retention WHERE workspace_id = $1",
            )
            .bind(workspace_id)
            .fetch_optional(pool)
            .await?;
            let Some(r) = row else {
                return Ok(WorkspaceRetention::default());
            };
            Ok(WorkspaceRetention {
                policy: policy_of(&r, "keep_days", "keep_runs")?,
                runs_deleted: r.col::<i64>("runs_deleted")?.max(0) as u64,
                last_deleted: parse_opt_ts(r.col("last_deleted")?)?,
            })
        })
    }

    /// Sets a workspace's own policy (an empty one: the server's default holds).
    pub async fn put_workspace_retention(
        &self,
        workspace_id: &str,
        policy: Retention,
    ) -> Result<()> {
        with_db!(&self.db, pool => {
            sqlx::query(
                "INSERT INTO workspace_retention (workspace_id, keep_days, keep_runs, updated)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (workspace_id) DO UPDATE SET
                   keep_days = excluded.keep_days, keep_runs = excluded.keep_runs,
                   updated = excluded.updated",
            )
            .bind(workspace_id)
            .bind(policy.days.map(i64::from))
            .bind(policy.runs.map(i64::from))
            .bind(ts(Utc::now()))
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// A workspace's deployments with a policy of their own, by name: `(id, name,
    /// policy)`, at most `limit`.
    pub async fn deployments_with_retention(
        &self,
        workspace_id: &str,
        limit: i64,
    ) -> Result<Vec<(String, String, Retention)>> {
        with_db!(&self.db, pool => {
            let rows = sqlx::query(
                "SELECT id, name, retention_days, retention_runs FROM deployments
                 WHERE workspace_id = $1
                   AND (retention_days IS NOT NULL OR retention_runs IS NOT NULL)
                 ORDER BY name LIMIT $2",
            )
            .bind(workspace_id)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok((
                        r.col("id")?,
                        r.col("name")?,
                        policy_of(r, "retention_days", "retention_runs")?,
                    ))
                })
                .collect()
        })
    }

    /// Every scope with a policy: deployments with their own, then workspaces with
    /// theirs, or every workspace under `default` when the server has one.
    pub async fn retention_scopes(&self, default: Retention) -> Result<Vec<RetentionScope>> {
        with_db!(&self.db, pool => {
            let mut scopes = Vec::new();
            let rows = sqlx::query(
                "SELECT id, workspace_id, retention_days, retention_runs FROM deployments
                 WHERE retention_days IS NOT NULL OR retention_runs IS NOT NULL",
            )
            .fetch_all(pool)
            .await?;
            for r in rows {
                scopes.push(RetentionScope {
                    workspace_id: r.col("workspace_id")?,
                    deployment_id: Some(r.col("id")?),
                    policy: policy_of(&r, "retention_days", "retention_runs")?,
                });
            }
            let rows = sqlx::query(
                "SELECT w.id, r.keep_days, r.keep_runs FROM workspaces w
                 LEFT JOIN workspace_retention r ON r.workspace_id = w.id
                 WHERE r.keep_days IS NOT NULL OR r.keep_runs IS NOT NULL OR $1 <> 0
                 ORDER BY w.id",
            )
            .bind(i64::from(!default.is_empty()))
            .fetch_all(pool)
            .await?;
            for r in rows {
                let own = policy_of(&r, "keep_days", "keep_runs")?;
                scopes.push(RetentionScope {
                    workspace_id: r.col("id")?,
                    deployment_id: None,
                    policy: own.or(default),
                });
            }
            scopes.retain(|s| !s.policy.is_empty());
            Ok(scopes)
        })
    }

    /// Where a scope's policy cuts at `now`: its finished runs before this (end time,
    /// id) are no longer kept (the later of the day bound and the oldest run the count
    /// keeps), never one that ended after `ended_before`. `None`: it keeps them all.
    /// The count walks the index of finished runs only (one scan per pass).
    pub async fn retention_cut(
        &self,
        scope: &RetentionScope,
        now: DateTime<Utc>,
        ended_before: DateTime<Utc>,
    ) -> Result<Option<(String, String)>> {
        let filter = scope_sql(scope, false);
        let key = scope_key(scope);
        let mut cut: Option<(String, String)> = scope
            .policy
            .days
            .map(|d| (ts(now - Duration::days(i64::from(d))), String::new()));
        if let Some(n) = scope.policy.runs {
            let sql = format!(
                "SELECT end_time, id FROM flow_runs WHERE {filter}
                 ORDER BY end_time DESC, id DESC LIMIT 1 OFFSET $2"
            );
            let oldest_kept: Option<(String, String)> = with_db!(&self.db, pool => {
                sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(key)
                    .bind(i64::from(n) - 1)
                    .fetch_optional(pool)
                    .await?
            });
            if let Some(kept) = oldest_kept {
                cut = Some(cut.map_or(kept.clone(), |c| c.max(kept)));
            }
        }
        Ok(cut.map(|c| c.min((ts(ended_before), String::new()))))
    }

    /// At most `limit` finished top-level runs of `scope` before `cut` (from
    /// [`Store::retention_cut`]), oldest first.
    pub async fn runs_before(
        &self,
        scope: &RetentionScope,
        cut: &(String, String),
        limit: i64,
    ) -> Result<Vec<String>> {
        let sql = format!(
            "SELECT id FROM flow_runs WHERE {}
               AND end_time <= $2 AND (end_time < $2 OR id < $3)
             ORDER BY end_time, id LIMIT $4",
            scope_sql(scope, true)
        );
        with_db!(&self.db, pool => {
            let ids: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .bind(scope_key(scope))
                .bind(&cut.0)
                .bind(&cut.1)
                .bind(limit)
                .fetch_all(pool)
                .await?;
            Ok(ids)
        })
    }

    /// Deletes the given top-level runs of a workspace with everything they hold:
    /// subflows at any depth, task runs, state history, logs, artifacts, pauses and
    /// transactions (cache entries and transaction records outlive their runs, as
    /// results do in Prefect). Only runs still finished before `ended_before` whose
    /// subflows have all finished go; on PostgreSQL a run another node is deleting is
    /// skipped. The workspace's stored bytes go down by what was deleted.
    pub async fn delete_runs(
        &self,
        workspace_id: &str,
        roots: &[String],
        ended_before: DateTime<Utc>,
    ) -> Result<Deleted> {
        if roots.is_empty() {
            return Ok(Deleted::default());
        }
        let postgres = self.db.is_postgres();
        let now = ts(Utc::now());
        with_db!(&self.db, pool => {
            let mut tx = pool.begin_write().await?;
            let began = std::time::Instant::now();
            // The roots, checked again inside the transaction (a retry may have started
            // one since), and on PostgreSQL locked against other nodes.
            let mut locked: Vec<String> = Vec::new();
            for chunk in roots.chunks(CHUNK) {
                let sql = format!(
                    concat!(
                        "SELECT id FROM flow_runs WHERE workspace_id = $1 AND id IN ({})
                           AND parent_flow_run_id IS NULL AND end_time IS NOT NULL
                           AND end_time < $2 AND state_type IN ",
                        final_sql!(),
                        "{}"
                    ),
                    placeholders(3, chunk.len()),
                    if postgres { " FOR UPDATE SKIP LOCKED" } else { "" }
                );
                let mut q = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql))
                    .bind(workspace_id)
                    .bind(ts(ended_before));
                for id in chunk {
                    q = q.bind(id);
                }
                locked.extend(q.fetch_all(&mut *tx).await?);
            }
            // Their trees; a tree with a subflow still going stays whole.
            let mut root_of: HashMap<String, String> =
                locked.iter().map(|id| (id.clone(), id.clone())).collect();
            let mut busy: HashSet<String> = HashSet::new();
            let mut frontier = locked.clone();
            while !frontier.is_empty() {
                let mut next = Vec::new();
                for chunk in frontier.chunks(CHUNK) {
                    let sql = format!(
                        "SELECT id, parent_flow_run_id, state_type FROM flow_runs
                         WHERE parent_flow_run_id IN ({})",
                        placeholders(1, chunk.len())
                    );
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                    for id in chunk {
                        q = q.bind(id);
                    }
                    for r in q.fetch_all(&mut *tx).await? {
                        let id: String = r.col("id")?;
                        let parent: String = r.col("parent_flow_run_id")?;
                        let state: String = r.col("state_type")?;
                        let root = root_of.get(&parent).cloned().unwrap_or(parent);
                        if !StateType::parse(&state).is_some_and(StateType::is_final) {
                            busy.insert(root.clone());
                        }
                        if !root_of.contains_key(&id) {
                            root_of.insert(id.clone(), root);
                            next.push(id);
                        }
                    }
                }
                frontier = next;
            }
            let runs: Vec<String> = root_of
                .into_iter()
                .filter(|(_, root)| !busy.contains(root))
                .map(|(id, _)| id)
                .collect();
            if runs.is_empty() {
                tx.commit().await?;
                return Ok(Deleted {
                    held: began.elapsed(),
                    ..Deleted::default()
                });
            }
            let mut bytes: i64 = 0;
            // Counted as the storage quota counts them (a log line 128 bytes beyond
            // its message), then deleted: children before the runs they name.
            const SIZE: &str = "SELECT CAST(
                   COALESCE((SELECT SUM(LENGTH(message) + 128) FROM logs WHERE flow_run_id IN ({ids})), 0)
                 + COALESCE((SELECT SUM(LENGTH(data)) FROM artifacts WHERE flow_run_id IN ({ids})), 0)
                 + COALESCE((SELECT SUM(LENGTH(result)) FROM task_runs WHERE flow_run_id IN ({ids})), 0)
                 + COALESCE((SELECT SUM(LENGTH(result)) FROM flow_runs WHERE id IN ({ids})), 0)
                 AS BIGINT)";
            const DELETES: [&str; 8] = [
                "DELETE FROM run_states WHERE run_id IN
                   (SELECT id FROM task_runs WHERE flow_run_id IN ({ids}))",
                "DELETE FROM run_states WHERE run_id IN ({ids})",
                "DELETE FROM task_runs WHERE flow_run_id IN ({ids})",
                "DELETE FROM logs WHERE flow_run_id IN ({ids})",
                "DELETE FROM artifacts WHERE flow_run_id IN ({ids})",
                "DELETE FROM pauses WHERE flow_run_id IN ({ids})",
                "DELETE FROM transactions WHERE flow_run_id IN ({ids})",
                "DELETE FROM flow_runs WHERE id IN ({ids})",
            ];
            for chunk in runs.chunks(CHUNK) {
                let ids = placeholders(1, chunk.len());
                let mut q = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(
                    SIZE.replace("{ids}", &ids),
                ));
                for id in chunk {
                    q = q.bind(id);
                }
                bytes = bytes.saturating_add(q.fetch_one(&mut *tx).await?);
                for sql in DELETES {
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.replace("{ids}", &ids)));
                    for id in chunk {
                        q = q.bind(id);
                    }
                    q.execute(&mut *tx).await?;
                }
            }
            let deleted = i64::try_from(runs.len()).unwrap_or(i64::MAX);
            // The count may go below zero for a while: a node adds the bytes its runs
            // wrote a second later, and the sum is right once it has.
            sqlx::query(
                "INSERT INTO workspace_storage (workspace_id, bytes) VALUES ($1, $2)
                 ON CONFLICT (workspace_id) DO UPDATE SET
                   bytes = workspace_storage.bytes + excluded.bytes",
            )
            .bind(workspace_id)
            .bind(-bytes)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO workspace_retention (workspace_id, runs_deleted, last_deleted, updated)
                 VALUES ($1, $2, $3, $3)
                 ON CONFLICT (workspace_id) DO UPDATE SET
                   runs_deleted = workspace_retention.runs_deleted + excluded.runs_deleted,
                   last_deleted = excluded.last_deleted",
            )
            .bind(workspace_id)
            .bind(deleted)
            .bind(&now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(Deleted {
                runs: deleted as u64,
                bytes: bytes.max(0) as u64,
                held: began.elapsed(),
            })
        })
    }

    /// Deletes up to `limit` finished automation runs of a workspace that its policy no
    /// longer keeps: created more than its days ago, or past the newest `runs` of their
    /// automation. Runs with actions still to do stay. Returns how many went.
    pub async fn delete_automation_runs(
        &self,
        workspace_id: &str,
        policy: Retention,
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<u64> {
        if policy.is_empty() {
            return Ok(0);
        }
        // No days: a time every stored one is after. No count: more than can exist.
        let before = policy
            .days
            .and_then(|d| now.checked_sub_signed(Duration::days(i64::from(d))))
            .map(ts)
            .unwrap_or_default();
        let newest = policy.runs.map_or(i64::MAX, i64::from);
        with_db!(&self.db, pool => {
            let done = sqlx::query(
                "DELETE FROM automation_runs WHERE id IN (
                   SELECT id FROM (
                     SELECT id, state, created, ROW_NUMBER() OVER (
                       PARTITION BY automation_id ORDER BY created DESC, id DESC) AS nth
                     FROM automation_runs WHERE workspace_id = $1) r
                   WHERE state != 'pending' AND (created < $2 OR nth > $3)
                   LIMIT $4)",
            )
            .bind(workspace_id)
            .bind(before)
            .bind(newest)
            .bind(limit)
            .execute(pool)
            .await?;
            Ok(done.rows_affected())
        })
    }

    /// Deletes at most `limit` cache entries that expired before `now`; returns how
    /// many.
    pub async fn delete_expired_cache(&self, now: DateTime<Utc>, limit: i64) -> Result<u64> {
        with_db!(&self.db, pool => {
            let done = sqlx::query(
                "DELETE FROM cache_entries WHERE key IN (
                   SELECT key FROM cache_entries WHERE expires IS NOT NULL AND expires < $1
                   ORDER BY expires LIMIT $2)",
            )
            .bind(ts(now))
            .bind(limit)
            .execute(pool)
            .await?;
            Ok(done.rows_affected())
        })
    }

    /// Gives at most `pages` free pages of a SQLite file back to the file system (the
    /// database is created with incremental auto-vacuum; an older file keeps its free
    /// pages for new rows). Returns the pages still free. PostgreSQL's autovacuum does
    /// this by itself.
    pub async fn reclaim_space(&self, pages: i64) -> Result<i64> {
        let Db::Sqlite(pool) = &self.db else {
            return Ok(0);
        };
        let mut conn = pool.acquire().await?;
        let mode: i64 = sqlx::query_scalar("PRAGMA auto_vacuum")
            .fetch_one(&mut *conn)
            .await?;
        // 2: incremental.
        if mode == 2 {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "PRAGMA incremental_vacuum({})",
                pages.max(1)
            )))
            .execute(&mut *conn)
            .await?;
        }
        let free: i64 = sqlx::query_scalar("PRAGMA freelist_count")
            .fetch_one(&mut *conn)
            .await?;
        Ok(if mode == 2 { free } else { 0 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::state::State;
    use crate::store::{CacheEntry, FlowRunRecord, LogRecord, RunKind, StateChange, Write};

    /// A run created Pending, then moved to `state` (ending at `ended` when final) with a
    /// result of 6 bytes.
    fn run(id: &str, parent: Option<&str>, state: StateType, ended: DateTime<Utc>) -> [Write; 2] {
        let record = FlowRunRecord {
            id: id.to_owned(),
            name: format!("run-{id}"),
            flow_name: "f".into(),
            flow_function: None,
            component_digest: "d".into(),
            parameters: serde_json::json!({}),
            tags: vec!["t".into()],
            parent_flow_run_id: parent.map(str::to_owned),
            parent_position: parent.map(|_| 0),
            state: State::new(StateType::Pending),
            run_count: 1,
            result: None,
            created: ended - Duration::seconds(1),
            start_time: None,
            end_time: None,
            workspace_id: Some("ws".into()),
            deployment_id: Some("dep".into()),
            idempotency_key: None,
            expected_start: None,
            schedule_id: None,
            node_id: None,
            fence: 0,
            crash_count: 0,
        };
        let mut change = StateChange::new(RunKind::Flow, id, State::new(state));
        if state.is_final() {
            change.end_time = Some(ended);
            change.result = Some("\"done\"".into());
        }
        [Write::FlowRunCreated(record), Write::StateChanged(change)]
    }

    fn log(run: &str) -> Write {
        Write::Log(LogRecord {
            flow_run_id: run.to_owned(),
            task_run_id: None,
            level: "info".into(),
            message: "x".repeat(72),
            timestamp: Utc::now(),
        })
    }

    #[tokio::test]
    async fn finished_automation_runs_go_by_age_and_by_count_per_automation() {
        use crate::store::{AutomationRunRecord, AutomationRunState};
        let (_dir, store) = store().await;
        let now = Utc::now();
        // Automation a: five finished runs a day apart (oldest first) and an old pending
        // one; automation b: one finished run; another workspace: an old one.
        let add = |automation: &str, ws: &str, days_ago: i64, state| AutomationRunRecord {
            id: uuid::Uuid::now_v7().to_string(),
            automation_id: automation.into(),
            workspace_id: ws.into(),
            event_key: uuid::Uuid::now_v7().to_string(),
            event: serde_json::json!({}),
            state,
            attempts: 1,
            next_attempt: now,
            results: serde_json::json!([]),
            error: None,
            created: now - Duration::days(days_ago),
            updated: now,
        };
        let runs = [
            add("a", "ws", 10, AutomationRunState::Pending),
            add("a", "ws", 5, AutomationRunState::Completed),
            add("a", "ws", 4, AutomationRunState::Failed),
            add("a", "ws", 3, AutomationRunState::Completed),
            add("a", "ws", 2, AutomationRunState::Completed),
            add("a", "ws", 1, AutomationRunState::Completed),
            add("b", "ws", 4, AutomationRunState::Completed),
            add("c", "other", 9, AutomationRunState::Completed),
        ];
        for r in &runs {
            assert!(store.create_automation_run(r).await.unwrap());
        }
        let left = |store: Store| async move {
            let mut ids = Vec::new();
            for (ws, automation) in [("ws", "a"), ("ws", "b"), ("other", "c")] {
                for r in store
                    .automation_runs(ws, automation, None, 100)
                    .await
                    .unwrap()
                {
                    ids.push(r.id);
                }
            }
            ids
        };
        // Newest two of each automation: a loses its three oldest finished runs (the
        // pending one stays), b keeps its one; in batches of two.
        let keep_two = Retention {
            days: None,
            runs: Some(2),
        };
        assert_eq!(
            store
                .delete_automation_runs("ws", keep_two, now, 2)
                .await
                .unwrap(),
            2
        );
        assert_eq!(
            store
                .delete_automation_runs("ws", keep_two, now, 2)
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            store
                .delete_automation_runs("ws", keep_two, now, 2)
                .await
                .unwrap(),
            0
        );
        let kept = left(store.clone()).await;
        assert_eq!(kept.len(), 5, "{kept:?}");
        for r in [&runs[0], &runs[4], &runs[5], &runs[6], &runs[7]] {
            assert!(kept.contains(&r.id), "{} went", r.id);
        }
        // Three days: b's goes too (four days old); a's newest two are younger.
        let three_days = Retention {
            days: Some(3),
            runs: None,
        };
        assert_eq!(
            store
                .delete_automation_runs("ws", three_days, now, 100)
                .await
                .unwrap(),
            1
        );
        assert_eq!(left(store.clone()).await.len(), 4);
        // No policy deletes nothing; the other workspace was never touched.
        assert_eq!(
            store
                .delete_automation_runs("other", Retention::default(), now, 100)
                .await
                .unwrap(),
            0
        );
        let kept = left(store.clone()).await;
        assert!(
            kept.contains(&runs[7].id) && kept.contains(&runs[0].id),
            "{kept:?}"
        );
    }

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(&dir.path().join("weir.db"))
            .await
            .unwrap();
        (dir, store)
    }

    async fn expired(
        store: &Store,
        scope: &RetentionScope,
        now: DateTime<Utc>,
        ended_before: DateTime<Utc>,
        limit: i64,
    ) -> Vec<String> {
        match store.retention_cut(scope, now, ended_before).await.unwrap() {
            Some(cut) => store.runs_before(scope, &cut, limit).await.unwrap(),
            None => Vec::new(),
        }
    }

    async fn exists(store: &Store, id: &str) -> bool {
        store.flow_run(id).await.unwrap().is_some()
    }

    #[tokio::test]
    async fn a_tree_goes_whole_or_not_at_all_and_its_bytes_are_counted() {
        let (_dir, store) = store().await;
        let old = Utc::now() - Duration::days(3);
        let (done, child, grandchild) = ("a-root", "a-child", "a-grandchild");
        let (waiting, running_child) = ("b-root", "b-child");
        for writes in [
            run(done, None, StateType::Completed, old),
            run(child, Some(done), StateType::Completed, old),
            run(grandchild, Some(child), StateType::Failed, old),
            run(waiting, None, StateType::Completed, old),
            run(running_child, Some(waiting), StateType::Running, old),
        ] {
            for w in writes {
                store.write(w);
            }
        }
        store.write(log(grandchild));
        store.write(log(running_child));
        store.flush().await.unwrap();
        store.add_storage("ws", 1_000).await.unwrap();

        let scope = RetentionScope {
            workspace_id: "ws".into(),
            deployment_id: Some("dep".into()),
            policy: Retention {
                days: Some(1),
                runs: None,
            },
        };
        let now = Utc::now();
        let due = expired(&store, &scope, now, now, 10).await;
        assert_eq!(due, vec![done.to_owned(), waiting.to_owned()]);
        // Another workspace's id is never taken for this one's.
        let none = store.delete_runs("other", &due, now).await.unwrap();
        assert_eq!((none.runs, none.bytes), (0, 0));
        let deleted = store.delete_runs("ws", &due, now).await.unwrap();
        // Three runs; a log line (72 + 128) and three results of 6 bytes.
        assert_eq!((deleted.runs, deleted.bytes), (3, 200 + 18));
        for id in [done, child, grandchild] {
            assert!(!exists(&store, id).await, "{id} deleted");
        }
        for id in [waiting, running_child] {
            assert!(
                exists(&store, id).await,
                "{id} kept: a subflow is still running"
            );
        }
        assert_eq!(store.add_storage("ws", 0).await.unwrap(), 1_000 - 218);
        let report = store.workspace_retention("ws").await.unwrap();
        assert_eq!(report.runs_deleted, 3);
        assert!(report.last_deleted.is_some());
    }

    #[tokio::test]
    async fn the_newest_runs_are_kept_by_when_they_ended() {
        let (_dir, store) = store().await;
        let base = Utc::now() - Duration::hours(1);
        let ids: Vec<String> = (0..5).map(|i| format!("run-{i}")).collect();
        for (i, id) in ids.iter().enumerate() {
            let ended = base + Duration::seconds(i as i64);
            for w in run(id, None, StateType::Completed, ended) {
                store.write(w);
            }
        }
        store.flush().await.unwrap();
        let mut scope = RetentionScope {
            workspace_id: "ws".into(),
            deployment_id: None,
            policy: Retention {
                days: None,
                runs: Some(2),
            },
        };
        let now = Utc::now();
        let due = expired(&store, &scope, now, now, 10).await;
        assert_eq!(due, ids[..3].to_vec());
        // Only what ended before the grace's cut-off.
        let before = base + Duration::milliseconds(1500);
        assert_eq!(
            expired(&store, &scope, now, before, 10).await,
            ids[..2].to_vec()
        );
        // Both bounds: whichever deletes more.
        scope.policy = Retention {
            days: Some(1),
            runs: Some(4),
        };
        assert_eq!(
            expired(&store, &scope, now, now, 10).await,
            ids[..1].to_vec()
        );
        scope.policy.runs = Some(10);
        assert!(expired(&store, &scope, now, now, 10).await.is_empty());
        // The limit bounds a batch.
        scope.policy.runs = Some(1);
        assert_eq!(
            expired(&store, &scope, now, now, 2).await,
            ids[..2].to_vec()
        );
    }

    #[tokio::test]
    async fn expired_cache_entries_go_and_the_rest_stay() {
        let (_dir, store) = store().await;
        let now = Utc::now();
        for (key, expires) in [
            ("gone", Some(now - Duration::seconds(1))),
            ("later", Some(now + Duration::hours(1))),
            ("forever", None),
        ] {
            store.write(Write::CachePut(CacheEntry {
                key: key.into(),
                result: "1".into(),
                task_run_id: "t".into(),
                created: now - Duration::hours(1),
                expires,
            }));
        }
        store.flush().await.unwrap();
        assert_eq!(store.delete_expired_cache(now, 10).await.unwrap(), 1);
        assert_eq!(store.delete_expired_cache(now, 10).await.unwrap(), 0);
        // A new file gives its free pages back.
        assert!(store.reclaim_space(10).await.unwrap() >= 0);
        let mode: i64 = with_db!(&store.db, pool => {
            sqlx::query_scalar("PRAGMA auto_vacuum").fetch_one(pool).await.unwrap_or(-1)
        });
        assert_eq!(mode, 2, "incremental auto-vacuum");
    }
}
