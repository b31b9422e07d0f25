//! The single writer: applies enqueued writes in batched transactions.
//!
//! SQLite has one writer at a time; committing once per state change would cost a
//! commit (and a trip to sqlx's connection thread) per row. The engine enqueues
//! writes without waiting, and this task drains whatever has queued up into one
//! transaction. A batch that fails is retried write by write, so one bad row never
//! takes its neighbours with it.

use super::{ArtifactRecord, CacheEntry, FlowRunRecord, LogRecord, RunKind, StateChange, ts};
use super::{StoreError, TaskRunRecord};
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::pool::PoolConnection;
use sqlx::{Connection, Sqlite, SqliteConnection, SqlitePool};
use tokio::sync::{mpsc, oneshot};

/// A write to apply.
#[derive(Debug)]
pub enum Write {
    FlowRunCreated(FlowRunRecord),
    TaskRunCreated(TaskRunRecord),
    StateChanged(StateChange),
    Log(LogRecord),
    ArtifactCreated(ArtifactRecord),
    ArtifactUpdated {
        id: String,
        data: Value,
        updated: DateTime<Utc>,
    },
    CachePut(CacheEntry),
}

enum Msg {
    Write(Write),
    Flush(oneshot::Sender<()>),
}

#[derive(Clone)]
pub(super) struct Handle {
    tx: mpsc::UnboundedSender<Msg>,
}

impl Handle {
    pub(super) fn send(&self, write: Write) {
        if self.tx.send(Msg::Write(write)).is_err() {
            tracing::error!("store writer has stopped; a write was dropped");
        }
    }

    pub(super) async fn flush(&self) -> Result<(), StoreError> {
        let (ack, done) = oneshot::channel();
        self.tx
            .send(Msg::Flush(ack))
            .map_err(|_| StoreError::WriterGone)?;
        done.await.map_err(|_| StoreError::WriterGone)
    }
}

const MAX_BATCH: usize = 8192;

pub(super) async fn spawn(pool: SqlitePool) -> Result<Handle, StoreError> {
    let conn = pool.acquire().await?;
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(run(conn, rx));
    Ok(Handle { tx })
}

async fn run(mut conn: PoolConnection<Sqlite>, mut rx: mpsc::UnboundedReceiver<Msg>) {
    let mut msgs = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut msgs, MAX_BATCH).await > 0 {
        let mut writes = Vec::with_capacity(msgs.len());
        let mut acks = Vec::new();
        for msg in msgs.drain(..) {
            match msg {
                Msg::Write(w) => writes.push(w),
                Msg::Flush(ack) => acks.push(ack),
            }
        }
        if !writes.is_empty() {
            if let Err(e) = apply_batch(&mut conn, &writes).await {
                tracing::warn!(
                    "batch of {} writes failed ({e}); retrying one by one",
                    writes.len()
                );
                for w in &writes {
                    if let Err(e) = apply_batch(&mut conn, std::slice::from_ref(w)).await {
                        tracing::error!("write failed and was dropped: {e}: {w:?}");
                    }
                }
            }
        }
        for ack in acks {
            let _ = ack.send(());
        }
    }
}

async fn apply_batch(conn: &mut SqliteConnection, writes: &[Write]) -> Result<(), sqlx::Error> {
    let mut tx = conn.begin().await?;
    for w in writes {
        apply(&mut tx, w).await?;
    }
    tx.commit().await
}

async fn apply(conn: &mut SqliteConnection, w: &Write) -> Result<(), sqlx::Error> {
    match w {
        Write::FlowRunCreated(r) => {
            sqlx::query(
                "INSERT INTO flow_runs (id, name, flow_name, component_digest, parameters, tags,
                   parent_flow_run_id, parent_position, state_type, state_name, state_message,
                   state_timestamp, run_count, result, created, start_time, end_time)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&r.id)
            .bind(&r.name)
            .bind(&r.flow_name)
            .bind(&r.component_digest)
            .bind(r.parameters.to_string())
            .bind(serde_json::to_string(&r.tags).unwrap_or_default())
            .bind(&r.parent_flow_run_id)
            .bind(r.parent_position)
            .bind(r.state.kind.as_str())
            .bind(&r.state.name)
            .bind(&r.state.message)
            .bind(ts(r.state.timestamp))
            .bind(r.run_count)
            .bind(r.result.as_ref().map(Value::to_string))
            .bind(ts(r.created))
            .bind(r.start_time.map(ts))
            .bind(r.end_time.map(ts))
            .execute(&mut *conn)
            .await?;
            insert_state(conn, &r.id, &r.state).await
        }
        Write::TaskRunCreated(r) => {
            sqlx::query(
                "INSERT INTO task_runs (id, flow_run_id, position, task_name, name, input_hash,
                   cache_key, tags, state_type, state_name, state_message, state_timestamp,
                   run_count, result, created, start_time, end_time)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&r.id)
            .bind(&r.flow_run_id)
            .bind(r.position)
            .bind(&r.task_name)
            .bind(&r.name)
            .bind(&r.input_hash)
            .bind(&r.cache_key)
            .bind(serde_json::to_string(&r.tags).unwrap_or_default())
            .bind(r.state.kind.as_str())
            .bind(&r.state.name)
            .bind(&r.state.message)
            .bind(ts(r.state.timestamp))
            .bind(r.run_count)
            .bind(r.result.as_ref().map(Value::to_string))
            .bind(ts(r.created))
            .bind(r.start_time.map(ts))
            .bind(r.end_time.map(ts))
            .execute(&mut *conn)
            .await?;
            insert_state(conn, &r.id, &r.state).await
        }
        Write::StateChanged(c) => {
            let sql = match c.kind {
                RunKind::Flow => {
                    "UPDATE flow_runs SET state_type = ?, state_name = ?, state_message = ?,
                       state_timestamp = ?, run_count = COALESCE(?, run_count),
                       start_time = COALESCE(?, start_time), end_time = COALESCE(?, end_time),
                       result = COALESCE(?, result)
                     WHERE id = ?"
                }
                RunKind::Task => {
                    "UPDATE task_runs SET state_type = ?, state_name = ?, state_message = ?,
                       state_timestamp = ?, run_count = COALESCE(?, run_count),
                       start_time = COALESCE(?, start_time), end_time = COALESCE(?, end_time),
                       result = COALESCE(?, result)
                     WHERE id = ?"
                }
            };
            sqlx::query(sql)
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
            insert_state(conn, &c.run_id, &c.state).await
        }
        Write::Log(l) => sqlx::query(
            "INSERT INTO logs (flow_run_id, task_run_id, level, message, timestamp)
                 VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&l.flow_run_id)
        .bind(&l.task_run_id)
        .bind(&l.level)
        .bind(&l.message)
        .bind(ts(l.timestamp))
        .execute(&mut *conn)
        .await
        .map(drop),
        Write::ArtifactCreated(a) => sqlx::query(
            "INSERT INTO artifacts (id, key, type, description, data, flow_run_id, task_run_id,
               created, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&a.id)
        .bind(&a.key)
        .bind(&a.kind)
        .bind(&a.description)
        .bind(a.data.to_string())
        .bind(&a.flow_run_id)
        .bind(&a.task_run_id)
        .bind(ts(a.created))
        .bind(ts(a.updated))
        .execute(&mut *conn)
        .await
        .map(drop),
        Write::ArtifactUpdated { id, data, updated } => {
            sqlx::query("UPDATE artifacts SET data = ?, updated = ? WHERE id = ?")
                .bind(data.to_string())
                .bind(ts(*updated))
                .bind(id)
                .execute(&mut *conn)
                .await
                .map(drop)
        }
        Write::CachePut(c) => sqlx::query(
            "INSERT INTO cache_entries (key, result, task_run_id, created, expires)
             VALUES (?, ?, ?, ?, ?)
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
        .await
        .map(drop),
    }
}

async fn insert_state(
    conn: &mut SqliteConnection,
    run_id: &str,
    state: &crate::state::State,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO run_states (run_id, type, name, message, timestamp) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(run_id)
    .bind(state.kind.as_str())
    .bind(&state.name)
    .bind(&state.message)
    .bind(ts(state.timestamp))
    .execute(&mut *conn)
    .await
    .map(drop)
}
