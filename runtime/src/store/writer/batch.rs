//! One batch as SQL: coalesced into multi-row statements and applied in one
//! transaction, after the fencing tokens of the held runs it touches are checked.
//!
//! Applying a batch twice changes nothing the first time did not: runs and artifacts
//! are inserted `ON CONFLICT (id) DO NOTHING`, updates set the same values again. On
//! PostgreSQL a COMMIT whose answer was lost may have committed, and history rows and
//! logs have no natural key, so every transaction there also inserts its batch's row in
//! `write_batches`; the retry inserts the same row first, which waits for the lost
//! transaction if it is still alive and tells whether it committed.

use super::Write;
use crate::model::state::{FINAL_SQL, Transition, final_sql};
use crate::store::TaskRunRecord;
use crate::store::db::DbRow;
use crate::store::leases::Fences;
use crate::store::{
    ArtifactRecord, CacheEntry, FlowRunRecord, LogRecord, RunKind, StateChange, ts,
};
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::pool::PoolConnection;
use sqlx::{Connection, PgConnection, Postgres, QueryBuilder, Sqlite, SqliteConnection};
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

/// The writer's own connection.
pub(super) enum Conn {
    Sqlite(PoolConnection<Sqlite>),
    Postgres(PoolConnection<Postgres>),
}

impl Conn {
    /// Closes a connection that failed, without waiting for a peer that may never answer
    /// (the pool opens a replacement).
    pub(super) fn discard(self) {
        match self {
            Conn::Sqlite(c) => drop(c.detach()),
            Conn::Postgres(c) => drop(c.detach()),
        }
    }

    pub(super) fn is_postgres(&self) -> bool {
        matches!(self, Conn::Postgres(_))
    }

    /// Whether the database takes writes again, writing nothing: on SQLite the write
    /// lock is taken and given back; PostgreSQL only has to answer (in `timeout`).
    pub(super) async fn probe(&mut self, timeout: std::time::Duration) -> Result<(), sqlx::Error> {
        match self {
            Conn::Sqlite(c) => c.begin_with("BEGIN IMMEDIATE").await?.rollback().await,
            Conn::Postgres(c) => tokio::time::timeout(timeout, c.ping())
                .await
                .unwrap_or_else(|_| Err(super::timed_out())),
        }
    }
}

/// The held flow run each write belongs to (`None`: not fenced), learning on the way
/// which subflow and task runs belong to which held run.
pub(super) fn owner_of(w: &Write, f: &mut Fences) -> Option<String> {
    match w {
        Write::FlowRunCreated(r) => match &r.parent_flow_run_id {
            Some(parent) => f.adopt(&r.id, parent),
            None => f.root_of(&r.id).map(str::to_owned),
        },
        Write::TaskRunCreated(r) => f.adopt(&r.id, &r.flow_run_id),
        Write::StateChanged(c) => f.root_of(&c.run_id).map(str::to_owned),
        Write::Log(l) => f.root_of(&l.flow_run_id).map(str::to_owned),
        Write::ArtifactCreated(a) => f.root_of(&a.flow_run_id).map(str::to_owned),
        Write::ArtifactUpdated { .. } | Write::CachePut(_) => None,
    }
}

/// Rows per multi-row INSERT: well inside SQLite's limit on bound values.
const CHUNK: usize = 256;

/// One batch, coalesced: rows created in the batch absorb their later state changes,
/// and every table gets multi-row INSERTs, so a batch costs a handful of statements
/// however many task runs it covers.
#[derive(Default)]
struct Batch<'a> {
    /// Runs created in this batch, each with its latest state columns.
    flows: Vec<(&'a FlowRunRecord, StateChange)>,
    tasks: Vec<(&'a TaskRunRecord, StateChange)>,
    created: HashMap<&'a str, (RunKind, usize)>,
    /// State changes of runs created in earlier batches, merged per run.
    updates: Vec<StateChange>,
    updated: HashMap<&'a str, usize>,
    states: Vec<(&'a str, &'a crate::model::state::State)>,
    logs: Vec<&'a LogRecord>,
    artifacts: Vec<ArtifactRecord>,
    artifact_updates: Vec<(&'a str, &'a Value, DateTime<Utc>)>,
    cache: Vec<&'a CacheEntry>,
}

impl StateChange {
    /// Folds a later change of the same run into this one.
    fn absorb(&mut self, later: &StateChange) {
        self.state = later.state.clone();
        self.run_count = later.run_count.or(self.run_count);
        self.start_time = later.start_time.or(self.start_time);
        self.end_time = later.end_time.or(self.end_time);
        if later.result.is_some() {
            self.result.clone_from(&later.result);
        }
        self.release |= later.release;
    }

    /// The state columns of a run as it was created.
    fn initial(
        kind: RunKind,
        id: &str,
        state: &crate::model::state::State,
        run_count: i64,
    ) -> Self {
        let mut c = StateChange::new(kind, id, state.clone());
        c.run_count = Some(run_count);
        c
    }
}

impl<'a> Batch<'a> {
    fn add(&mut self, w: &'a Write) {
        match w {
            Write::FlowRunCreated(r) => {
                self.created
                    .insert(&r.id, (RunKind::Flow, self.flows.len()));
                let initial = StateChange::initial(RunKind::Flow, &r.id, &r.state, r.run_count);
                self.flows.push((r, initial));
                self.states.push((&r.id, &r.state));
            }
            Write::TaskRunCreated(r) => {
                self.created
                    .insert(&r.id, (RunKind::Task, self.tasks.len()));
                let initial = StateChange::initial(RunKind::Task, &r.id, &r.state, r.run_count);
                self.tasks.push((r, initial));
                self.states.push((&r.id, &r.state));
            }
            Write::StateChanged(c) => {
                // A run that reached a final state earlier in this batch stays there: a
                // later change is dropped, history row and all (the SQL guards the
                // same rule against what earlier batches committed).
                let earlier = match self.created.get(c.run_id.as_str()) {
                    Some((RunKind::Flow, i)) => Some(&mut self.flows[*i].1),
                    Some((RunKind::Task, i)) => Some(&mut self.tasks[*i].1),
                    None => self
                        .updated
                        .get(c.run_id.as_str())
                        .map(|i| &mut self.updates[*i]),
                };
                match earlier {
                    Some(e) if !Transition::Forward.allows(e.state.kind, c.state.kind) => return,
                    Some(e) => e.absorb(c),
                    None => {
                        self.updated.insert(&c.run_id, self.updates.len());
                        self.updates.push(c.clone());
                    }
                }
                self.states.push((&c.run_id, &c.state));
            }
            Write::Log(l) => self.logs.push(l),
            Write::ArtifactCreated(a) => self.artifacts.push(a.clone()),
            Write::ArtifactUpdated { id, data, updated } => {
                match self.artifacts.iter_mut().find(|a| &a.id == id) {
                    Some(a) => {
                        a.data = data.clone();
                        a.updated = *updated;
                    }
                    None => self.artifact_updates.push((id, data, *updated)),
                }
            }
            Write::CachePut(c) => self.cache.push(c),
        }
    }
}

/// Applies a batch on one backend's connection (the same statements for both).
macro_rules! batch_execute {
    ($name:ident, $DB:ty, $Conn:ty, $multi_row:expr) => {
    async fn $name(&self, conn: &mut $Conn) -> Result<(), sqlx::Error> {
        // Runs whose update the SQL refused: they were final already.
        let mut rejected: HashSet<String> = HashSet::new();
        for chunk in self.flows.chunks(CHUNK) {
            let mut q = QueryBuilder::<$DB>::new(
                "INSERT INTO flow_runs (id, name, flow_name, flow_function, component_digest,
                   parameters, tags,
                   workspace_id, deployment_id, idempotency_key, expected_start, schedule_id,
                   node_id, fence, crash_count,
                   parent_flow_run_id, parent_position, state_type, state_name, state_message,
                   state_timestamp, run_count, result, created, start_time, end_time) ",
            );
            q.push_values(chunk, |mut b, (r, c)| {
                b.push_bind(&r.id)
                    .push_bind(&r.name)
                    .push_bind(&r.flow_name)
                    .push_bind(&r.flow_function)
                    .push_bind(&r.component_digest)
                    .push_bind(r.parameters.to_string())
                    .push_bind(serde_json::to_string(&r.tags).unwrap_or_default())
                    .push_bind(&r.workspace_id)
                    .push_bind(&r.deployment_id)
                    .push_bind(&r.idempotency_key)
                    .push_bind(r.expected_start.map(ts))
                    .push_bind(&r.schedule_id)
                    .push_bind(if c.release { None } else { r.node_id.as_deref() })
                    .push_bind(r.fence)
                    .push_bind(r.crash_count)
                    .push_bind(&r.parent_flow_run_id)
                    .push_bind(r.parent_position);
                bind_progress!(b, r.created, c);
            });
            q.push(" ON CONFLICT (id) DO NOTHING");
            q.build().execute(&mut *conn).await?;
        }
        for chunk in self.tasks.chunks(CHUNK) {
            let mut q = QueryBuilder::<$DB>::new(
                "INSERT INTO task_runs (id, flow_run_id, position, task_name, name, input_hash,
                   cache_key, tags, workspace_id, upstream, transaction_id, state_type,
                   state_name, state_message, state_timestamp, run_count, result, created,
                   start_time, end_time) ",
            );
            q.push_values(chunk, |mut b, (r, c)| {
                b.push_bind(&r.id)
                    .push_bind(&r.flow_run_id)
                    .push_bind(r.position)
                    .push_bind(&r.task_name)
                    .push_bind(&r.name)
                    .push_bind(&r.input_hash)
                    .push_bind(&r.cache_key)
                    .push_bind(serde_json::to_string(&r.tags).unwrap_or_default())
                    .push_bind(&r.workspace_id)
                    .push_bind(
                        (!r.upstream.is_empty())
                            .then(|| serde_json::to_string(&r.upstream).unwrap_or_default()),
                    )
                    .push_bind(&r.transaction_id);
                bind_progress!(b, r.created, c);
            });
            q.push(" ON CONFLICT (id) DO NOTHING");
            q.build().execute(&mut *conn).await?;
        }
        // State changes of runs created in earlier batches. On PostgreSQL one multi-row
        // UPDATE per table and chunk (a statement per run would cost a round trip each);
        // SQLite, in process, runs one small prepared statement per run.
        if $multi_row {
            for (kind, table) in [(RunKind::Flow, "flow_runs"), (RunKind::Task, "task_runs")] {
                let rows: Vec<&StateChange> =
                    self.updates.iter().filter(|c| c.kind == kind).collect();
                for chunk in rows.chunks(CHUNK) {
                    let mut q = QueryBuilder::<$DB>::new(format!(
                        "UPDATE {table} SET state_type = v.state_type, state_name = v.state_name,
                           state_message = v.state_message, state_timestamp = v.state_timestamp,
                           run_count = COALESCE(v.run_count, {table}.run_count),
                           start_time = COALESCE(v.start_time, {table}.start_time),
                           end_time = COALESCE(v.end_time, {table}.end_time),
                           result = COALESCE(v.result, {table}.result){release}
                         FROM (",
                        release = if kind == RunKind::Flow {
                            ", node_id = CASE WHEN v.let_go = 1 THEN NULL ELSE flow_runs.node_id END"
                        } else {
                            ""
                        }
                    ));
                    for (i, c) in chunk.iter().enumerate() {
                        if i > 0 {
                            q.push(" UNION ALL ");
                        }
                        q.push("SELECT ").push_bind(&c.run_id).push(" AS id, ");
                        q.push_bind(c.state.kind.as_str()).push(" AS state_type, ");
                        q.push_bind(&c.state.name).push(" AS state_name, ");
                        q.push_bind(&c.state.message).push(" AS state_message, ");
                        q.push_bind(ts(c.state.timestamp)).push(" AS state_timestamp, ");
                        q.push_bind(c.run_count).push(" AS run_count, ");
                        q.push_bind(c.start_time.map(ts)).push(" AS start_time, ");
                        q.push_bind(c.end_time.map(ts)).push(" AS end_time, ");
                        q.push_bind(&c.result).push(" AS result, ");
                        q.push_bind(c.release as i64).push(" AS let_go");
                    }
                    q.push(format!(
                        ") AS v WHERE {table}.id = v.id AND {table}.state_type NOT IN {FINAL_SQL}
                         RETURNING {table}.id"
                    ));
                    let applied: Vec<String> =
                        q.build_query_scalar().fetch_all(&mut *conn).await?;
                    if applied.len() < chunk.len() {
                        let applied: HashSet<&str> = applied.iter().map(String::as_str).collect();
                        rejected.extend(
                            chunk
                                .iter()
                                .filter(|c| !applied.contains(c.run_id.as_str()))
                                .map(|c| c.run_id.clone()),
                        );
                    }
                }
            }
        } else {
            for c in &self.updates {
                let sql = match c.kind {
                    RunKind::Flow if c.release => {
                        concat!(
                        "UPDATE flow_runs SET state_type = $1, state_name = $2, state_message = $3,
                           state_timestamp = $4, run_count = COALESCE($5, run_count),
                           start_time = COALESCE($6, start_time), end_time = COALESCE($7, end_time),
                           result = COALESCE($8, result), node_id = NULL
                         WHERE id = $9 AND state_type NOT IN ",
                        final_sql!()
                    )
                    }
                    RunKind::Flow => {
                        concat!(
                        "UPDATE flow_runs SET state_type = $1, state_name = $2, state_message = $3,
                           state_timestamp = $4, run_count = COALESCE($5, run_count),
                           start_time = COALESCE($6, start_time), end_time = COALESCE($7, end_time),
                           result = COALESCE($8, result)
                         WHERE id = $9 AND state_type NOT IN ",
                        final_sql!()
                    )
                    }
                    RunKind::Task => {
                        concat!(
                        "UPDATE task_runs SET state_type = $1, state_name = $2, state_message = $3,
                           state_timestamp = $4, run_count = COALESCE($5, run_count),
                           start_time = COALESCE($6, start_time), end_time = COALESCE($7, end_time),
                           result = COALESCE($8, result)
                         WHERE id = $9 AND state_type NOT IN ",
                        final_sql!()
                    )
                    }
                };
                let done = sqlx::query(sql)
                    .bind(c.state.kind.as_str())
                    .bind(&c.state.name)
                    .bind(&c.state.message)
                    .bind(ts(c.state.timestamp))
                    .bind(c.run_count)
                    .bind(c.start_time.map(ts))
                    .bind(c.end_time.map(ts))
                    .bind(&c.result)
                    .bind(&c.run_id)
                    .execute(&mut *conn)
                    .await?;
                if done.rows_affected() == 0 {
                    rejected.insert(c.run_id.clone());
                }
            }
        }
        if !rejected.is_empty() {
            tracing::debug!(
                "{} state changes of runs already final were refused",
                rejected.len()
            );
        }
        // History rows only for the changes that were applied.
        let states: Vec<&(&str, &crate::model::state::State)> = self
            .states
            .iter()
            .filter(|(id, _)| rejected.is_empty() || !rejected.contains(*id))
            .collect();
        for chunk in states.chunks(CHUNK * 2) {
            let mut q = QueryBuilder::<$DB>::new(
                "INSERT INTO run_states (run_id, type, name, message, timestamp) ",
            );
            q.push_values(chunk, |mut b, (id, s)| {
                b.push_bind(id)
                    .push_bind(s.kind.as_str())
                    .push_bind(&s.name)
                    .push_bind(&s.message)
                    .push_bind(ts(s.timestamp));
            });
            q.build().execute(&mut *conn).await?;
        }
        for chunk in self.logs.chunks(CHUNK * 2) {
            let mut q = QueryBuilder::<$DB>::new(
                "INSERT INTO logs (flow_run_id, task_run_id, level, message, timestamp) ",
            );
            q.push_values(chunk, |mut b, l| {
                b.push_bind(&l.flow_run_id)
                    .push_bind(&l.task_run_id)
                    .push_bind(&l.level)
                    .push_bind(&l.message)
                    .push_bind(ts(l.timestamp));
            });
            q.build().execute(&mut *conn).await?;
        }
        for chunk in self.artifacts.chunks(CHUNK) {
            let mut q = QueryBuilder::<$DB>::new(
                "INSERT INTO artifacts (id, key, type, description, data, flow_run_id,
                   task_run_id, created, updated, workspace_id) ",
            );
            q.push_values(chunk, |mut b, a| {
                b.push_bind(&a.id)
                    .push_bind(&a.key)
                    .push_bind(&a.kind)
                    .push_bind(&a.description)
                    .push_bind(a.data.to_string())
                    .push_bind(&a.flow_run_id)
                    .push_bind(&a.task_run_id)
                    .push_bind(ts(a.created))
                    .push_bind(ts(a.updated))
                    .push_bind(&a.workspace_id);
            });
            q.push(" ON CONFLICT (id) DO NOTHING");
            q.build().execute(&mut *conn).await?;
        }
        for (id, data, updated) in &self.artifact_updates {
            sqlx::query("UPDATE artifacts SET data = $1, updated = $2 WHERE id = $3")
                .bind(data.to_string())
                .bind(ts(*updated))
                .bind(*id)
                .execute(&mut *conn)
                .await?;
        }
        for c in &self.cache {
            sqlx::query(
                "INSERT INTO cache_entries (key, result, task_run_id, created, expires)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (key) DO UPDATE SET result = excluded.result,
                   task_run_id = excluded.task_run_id, created = excluded.created,
                   expires = excluded.expires",
            )
            .bind(&c.key)
            .bind(&c.result)
            .bind(&c.task_run_id)
            .bind(ts(c.created))
            .bind(c.expires.map(ts))
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
    };
}

impl Batch<'_> {
    batch_execute!(execute_sqlite, Sqlite, SqliteConnection, false);
    batch_execute!(execute_postgres, Postgres, PgConnection, true);
}

/// Binds the state columns both run tables end with, in table order (the creation
/// time sits between the result and the start time).
macro_rules! bind_progress {
    ($b:expr, $created:expr, $c:expr) => {
        $b.push_bind($c.state.kind.as_str())
            .push_bind(&$c.state.name)
            .push_bind(&$c.state.message)
            .push_bind(ts($c.state.timestamp))
            .push_bind($c.run_count.unwrap_or(0))
            .push_bind(&$c.result)
            .push_bind(ts($created))
            .push_bind($c.start_time.map(ts))
            .push_bind($c.end_time.map(ts))
    };
}
use bind_progress;

/// How far an attempt got. A failure while writing left nothing behind; one while
/// committing (or while finding out whether an earlier COMMIT went through) may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stage {
    Resolving,
    Writing,
    Committing,
}

/// A batch's row in `write_batches` (PostgreSQL only).
pub(super) struct Marker {
    id: String,
    created: String,
    /// An earlier attempt may have committed: find out first.
    pub(super) resolving: bool,
}

impl Marker {
    pub(super) fn new() -> Self {
        Self {
            id: uuid::Uuid::now_v7().to_string(),
            created: ts(Utc::now()),
            resolving: false,
        }
    }
}

/// How long `write_batches` rows are kept: far longer than a retry waits to resolve.
const MARKER_TTL: chrono::TimeDelta = chrono::TimeDelta::minutes(15);

pub(super) enum Applied {
    Committed,
    /// An earlier attempt, whose COMMIT went unanswered, had committed.
    AlreadyCommitted,
}

/// Applies writes (each with the held run it belongs to) in one transaction, after
/// checking the fencing token of every held run they touch: the writes of a run another
/// node took over are left out. `prune` also deletes old `write_batches` rows.
pub(super) async fn apply(
    conn: &mut Conn,
    items: &[(&Write, Option<&str>)],
    fences: &Mutex<Fences>,
    marker: &Marker,
    prune: bool,
    stage: &mut Stage,
) -> Result<Applied, sqlx::Error> {
    let mut tokens: HashMap<&str, i64> = HashMap::new();
    let mut lost: std::collections::HashSet<&str> = Default::default();
    {
        let f = fences.lock().unwrap_or_else(|e| e.into_inner());
        for root in items.iter().filter_map(|(_, owner)| *owner) {
            if f.is_lost(root) {
                lost.insert(root);
            } else if let Some(t) = f.token(root) {
                tokens.insert(root, t);
            }
        }
    }
    macro_rules! body {
        ($tx:expr, $DB:ty, $lock:expr, $execute:ident) => {{
            if !tokens.is_empty() {
                let mut q =
                    QueryBuilder::<$DB>::new("SELECT id, fence FROM flow_runs WHERE id IN (");
                let mut list = q.separated(", ");
                for id in tokens.keys() {
                    list.push_bind(*id);
                }
                q.push(")").push($lock);
                let rows = q.build().fetch_all(&mut *$tx).await?;
                let mut f = fences.lock().unwrap_or_else(|e| e.into_inner());
                // Rows not found are runs created in this batch.
                for row in rows {
                    let id: String = row.col("id")?;
                    let fence: i64 = row.col("fence")?;
                    if let Some((root, _)) = tokens
                        .get_key_value(id.as_str())
                        .filter(|(_, t)| **t != fence)
                    {
                        f.mark_lost(root);
                        lost.insert(root);
                    }
                }
                drop(f);
            }
            let mut batch = Batch::default();
            for (w, owner) in items {
                if owner.is_none_or(|o| !lost.contains(o)) {
                    batch.add(w);
                }
            }
            batch.$execute(&mut $tx).await?;
        }};
    }
    match conn {
        Conn::Sqlite(c) => {
            *stage = Stage::Writing;
            // Immediate: the fence check and the writes are one write transaction.
            let mut tx = c.begin_with("BEGIN IMMEDIATE").await?;
            body!(tx, Sqlite, "", execute_sqlite);
            *stage = Stage::Committing;
            tx.commit().await?;
        }
        Conn::Postgres(c) => {
            let mut tx = if marker.resolving {
                *stage = Stage::Resolving;
                let mut tx = c.begin().await?;
                // Waits for the earlier attempt's transaction if it still runs.
                let fresh = sqlx::query(
                    "INSERT INTO write_batches (id, created) VALUES ($1, $2)
                     ON CONFLICT (id) DO NOTHING RETURNING id",
                )
                .bind(&marker.id)
                .bind(&marker.created)
                .fetch_optional(&mut *tx)
                .await?;
                if fresh.is_none() {
                    let _ = tx.rollback().await;
                    return Ok(Applied::AlreadyCommitted);
                }
                tx
            } else {
                // The marker rides on BEGIN (one round trip for both). Both values are
                // made here (a UUID and a timestamp), none comes from outside.
                c.begin_with(sqlx::AssertSqlSafe(format!(
                    "BEGIN; INSERT INTO write_batches (id, created) VALUES ('{}', '{}')",
                    marker.id, marker.created
                )))
                .await?
            };
            *stage = Stage::Writing;
            if prune {
                sqlx::query("DELETE FROM write_batches WHERE created < $1")
                    .bind(ts(Utc::now() - MARKER_TTL))
                    .execute(&mut *tx)
                    .await?;
            }
            body!(tx, Postgres, " FOR SHARE", execute_postgres);
            *stage = Stage::Committing;
            tx.commit().await?;
        }
    }
    Ok(Applied::Committed)
}
