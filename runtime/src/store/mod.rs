//! Storage: every SQL statement of Weir lives under this module.
//!
//! Writes from the engine go through [`writer`]: a single writer task that applies them
//! in batched transactions, so orchestration never waits on a commit per state change.
//! [`Store::flush`] waits until everything enqueued so far is durable. Reads go straight
//! to the connection pool.

mod db;
mod deployments;
mod leases;
mod pauses;
mod queries;
mod records;
mod schedules;
mod workspaces;
mod writer;

pub use deployments::*;
pub use leases::NodeRecord;
pub use pauses::*;
pub use queries::*;
pub use records::*;
pub use schedules::*;
pub use workspaces::*;
pub use writer::{NotStored, Receipt, Unavailable, Write, WriterFailing, WriterHealth};

use crate::state::{State, StateType};
use chrono::{DateTime, SecondsFormat, Utc};
use db::{Db, DbRow, with_db};
use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("the store's writer has stopped")]
    WriterGone,
    /// A write was refused for good by the database, so a flush cannot promise that
    /// everything enqueued before it is durable.
    #[error("{count} enqueued writes were dropped (the database refused them); the first: {first}")]
    WritesDropped { count: u64, first: String },
}

impl StoreError {
    /// Whether trying again may succeed: the database was away or busy, the data was
    /// not at fault.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Database(e) => writer::is_transient(e),
            _ => false,
        }
    }

    /// Whether the database server itself answered with this error (then a COMMIT it
    /// answered so did not commit).
    pub(crate) fn is_server_answer(&self) -> bool {
        matches!(self, Self::Database(sqlx::Error::Database(_)))
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Handle to the database. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: Db,
    writer: writer::Handle,
    /// Cache entries this process wrote, visible before the writer commits them, so a
    /// second identical call right after the first is a hit.
    recent_cache: Arc<Mutex<HashMap<String, CacheEntry>>>,
    /// Fencing tokens of the runs this node holds; the writer checks them.
    fences: Arc<Mutex<leases::Fences>>,
}

const RECENT_CACHE_MAX: usize = 100_000;

impl Store {
    /// Opens (creating if missing) the SQLite database file at `path` and migrates it.
    pub async fn open_sqlite(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Corrupt(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .pragma("temp_store", "memory")
            .pragma("cache_size", "-16384");
        Self::connect(options).await
    }

    /// Opens a database from a URL: `sqlite:PATH` or `postgres://...`.
    pub async fn open_url(url: &str) -> Result<Self> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Self::open_postgres(url).await;
        }
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10));
        Self::connect(options).await
    }

    /// Opens a PostgreSQL database (it must exist) and migrates it. Several Weir
    /// servers may share it.
    pub async fn open_postgres(url: &str) -> Result<Self> {
        let options = PgConnectOptions::from_str(url)?.application_name("weir");
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .min_connections(2)
            .connect_with(options)
            .await?;
        sqlx::migrate!("../migrations/postgres").run(&pool).await?;
        Self::with_db(Db::Postgres(pool)).await
    }

    async fn connect(options: SqliteConnectOptions) -> Result<Self> {
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .min_connections(2)
            .connect_with(options)
            .await?;
        sqlx::migrate!("../migrations/sqlite").run(&pool).await?;
        Self::with_db(Db::Sqlite(pool)).await
    }

    async fn with_db(db: Db) -> Result<Self> {
        let fences = Arc::<Mutex<leases::Fences>>::default();
        let writer = writer::spawn(db.clone(), fences.clone()).await?;
        Ok(Self {
            db,
            writer,
            recent_cache: Arc::default(),
            fences,
        })
    }

    /// Whether this is a PostgreSQL database (several nodes may share it).
    pub fn is_postgres(&self) -> bool {
        self.db.is_postgres()
    }

    /// Closes the database's connections (after a flush).
    pub async fn close(&self) {
        let _ = self.flush().await;
        self.writer.close().await;
        self.db.close().await;
    }

    /// Enqueues a write. It is applied in the next batch; see [`Store::flush`]. Never
    /// waits and never refuses: the writes of work already admitted must be recorded.
    pub fn write(&self, write: Write) {
        if let Write::CachePut(entry) = &write {
            let mut recent = self.recent_cache.lock().unwrap_or_else(|e| e.into_inner());
            if recent.len() >= RECENT_CACHE_MAX {
                recent.clear();
            }
            recent.insert(entry.key.clone(), entry.clone());
        }
        self.writer.send(write);
    }

    /// Waits until every write enqueued before this call is committed. Fails if any of
    /// them was dropped (refused for good by the database): then not everything before
    /// it is durable, and never will be.
    pub async fn flush(&self) -> Result<()> {
        self.writer.flush().await
    }

    /// Enqueues writes to commit in one transaction, answered on their own: see
    /// [`Receipt::wait`]. For new work (a triggered run) whose creator must know it is
    /// stored before saying so.
    pub fn write_acked(&self, writes: Vec<Write>) -> Result<Receipt> {
        self.writer.send_acked(writes)
    }

    /// How the writer is doing: queue depth, whether it is failing. Admission of new
    /// work asks [`WriterHealth::admits`].
    pub fn writer_health(&self) -> WriterHealth {
        self.writer.health()
    }

    /// Returns once the writer's queue is under its bound: async producers of new work
    /// (a task run a flow starts) wait here while the database falls behind.
    pub async fn room(&self) {
        if self.writer.is_full() {
            self.writer.room().await;
        }
    }

    pub async fn put_component(&self, digest: &str, size: usize, manifest: &Value) -> Result<()> {
        with_db!(&self.db, pool => {
        sqlx::query(
            "INSERT INTO components (digest, size, manifest, created) VALUES ($1, $2, $3, $4)
             ON CONFLICT (digest) DO UPDATE SET manifest = excluded.manifest",
        )
        .bind(digest)
        .bind(size as i64)
        .bind(manifest.to_string())
        .bind(ts(Utc::now()))
        .execute(pool)
        .await?;
        Ok(())
        })
    }

    /// Keeps a component's bytes in the database, where every node sharing it finds
    /// them (PostgreSQL only: a single SQLite server reads them from its disk).
    pub async fn put_component_bytes(&self, digest: &str, bytes: &[u8]) -> Result<()> {
        let Db::Postgres(pool) = &self.db else {
            return Ok(());
        };
        sqlx::query(
            "INSERT INTO component_blobs (digest, bytes) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(digest)
        .bind(bytes)
        .execute(pool)
        .await?;
        Ok(())
    }

    /// A component's bytes kept by [`Store::put_component_bytes`].
    pub async fn component_bytes(&self, digest: &str) -> Result<Option<Vec<u8>>> {
        with_db!(&self.db, pool => {
            let row = sqlx::query("SELECT bytes FROM component_blobs WHERE digest = $1")
                .bind(digest)
                .fetch_optional(pool)
                .await?;
            Ok(row.map(|r| r.col("bytes")).transpose()?)
        })
    }

    pub async fn flow_run(&self, id: &str) -> Result<Option<FlowRunRecord>> {
        with_db!(&self.db, pool => {
        let row = sqlx::query("SELECT * FROM flow_runs WHERE id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await?;
        row.map(|r| flow_run_from_row(&r)).transpose()
        })
    }

    /// Subflow runs of a flow run, in call order.
    pub async fn subflow_runs(&self, parent_id: &str) -> Result<Vec<FlowRunRecord>> {
        with_db!(&self.db, pool => {
        let rows = sqlx::query(
            "SELECT * FROM flow_runs WHERE parent_flow_run_id = $1 ORDER BY parent_position, created",
        )
        .bind(parent_id)
        .fetch_all(pool)
        .await?;
        rows.iter().map(flow_run_from_row).collect()
        })
    }

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

    pub async fn task_run(&self, id: &str) -> Result<Option<TaskRunRecord>> {
        with_db!(&self.db, pool => {
        let row = sqlx::query("SELECT * FROM task_runs WHERE id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await?;
        row.map(|r| task_run_from_row(&r)).transpose()
        })
    }

    /// Every state a run went through, oldest first.
    pub async fn state_history(&self, run_id: &str) -> Result<Vec<State>> {
        with_db!(&self.db, pool => {
        let rows = sqlx::query(
            "SELECT type, name, message, timestamp FROM run_states WHERE run_id = $1 ORDER BY seq",
        )
        .bind(run_id)
        .fetch_all(pool)
        .await?;
        rows.iter()
            .map(|r| state_from_row(r, "type", "name", "message", "timestamp"))
            .collect()
        })
    }

    /// Logs of a flow run and its task runs, oldest first.
    pub async fn logs(&self, flow_run_id: &str) -> Result<Vec<LogRecord>> {
        let lines = self.logs_after(flow_run_id, 0, i64::MAX).await?;
        Ok(lines.into_iter().map(|l| l.record).collect())
    }

    /// Artifacts created by a flow run and its task runs, oldest first.
    pub async fn artifacts(&self, flow_run_id: &str) -> Result<Vec<ArtifactRecord>> {
        with_db!(&self.db, pool => {
        let rows =
            sqlx::query("SELECT * FROM artifacts WHERE flow_run_id = $1 ORDER BY created, id")
                .bind(flow_run_id)
                .fetch_all(pool)
                .await?;
        rows.iter().map(artifact_from_row).collect()
        })
    }

    /// Versions of the artifact with `key`, latest first.
    pub async fn artifacts_by_key(&self, key: &str) -> Result<Vec<ArtifactRecord>> {
        with_db!(&self.db, pool => {
        let rows =
            sqlx::query("SELECT * FROM artifacts WHERE key = $1 ORDER BY created DESC, id DESC")
                .bind(key)
                .fetch_all(pool)
                .await?;
        rows.iter().map(artifact_from_row).collect()
        })
    }

    /// A cached task result under `key` that has not expired at `now`.
    pub async fn cached_result(&self, key: &str, now: DateTime<Utc>) -> Result<Option<String>> {
        with_db!(&self.db, pool => {
        if let Some(entry) = self
            .recent_cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            && entry.expires.is_none_or(|t| t > now)
        {
            return Ok(Some(entry.result.clone()));
        }
        let row = sqlx::query(
            "SELECT result FROM cache_entries WHERE key = $1 AND (expires IS NULL OR expires > $2)",
        )
        .bind(key)
        .bind(ts(now))
        .fetch_optional(pool)
        .await?;
        Ok(row.map(|r| r.col("result")).transpose()?)
        })
    }

    pub async fn variable(&self, name: &str) -> Result<Option<String>> {
        with_db!(&self.db, pool => {
        let row = sqlx::query("SELECT value FROM variables WHERE name = $1")
            .bind(name)
            .fetch_optional(pool)
            .await?;
        Ok(row.map(|r| r.col("value")).transpose()?)
        })
    }

    pub async fn set_variable(&self, name: &str, value: &Value) -> Result<()> {
        with_db!(&self.db, pool => {
        sqlx::query(
            "INSERT INTO variables (name, value, updated) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated = excluded.updated",
        )
        .bind(name)
        .bind(value.to_string())
        .bind(ts(Utc::now()))
        .execute(pool)
        .await?;
        Ok(())
        })
    }
}

/// Formats a timestamp so that text order is time order.
pub(crate) fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

pub(crate) fn parse_ts(s: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("bad timestamp {s:?}: {e}")))
}

pub(crate) fn parse_opt_ts(s: Option<String>) -> Result<Option<DateTime<Utc>>> {
    s.as_deref().map(parse_ts).transpose()
}

pub(crate) fn parse_json(s: &str) -> Result<Value> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("bad JSON: {e}")))
}

fn parse_opt_json(s: Option<String>) -> Result<Option<Value>> {
    s.as_deref().map(parse_json).transpose()
}

fn state_from_row(r: &impl DbRow, t: &str, n: &str, m: &str, at: &str) -> Result<State> {
    let kind: String = r.col(t)?;
    Ok(State {
        kind: StateType::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown state type {kind:?}")))?,
        name: r.col(n)?,
        message: r.col(m)?,
        timestamp: parse_ts(&r.col::<String>(at)?)?,
    })
}

pub(crate) fn tags_from(s: &str) -> Result<Vec<String>> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("bad tags: {e}")))
}

pub(crate) fn flow_run_from_row(r: &impl DbRow) -> Result<FlowRunRecord> {
    Ok(FlowRunRecord {
        id: r.col("id")?,
        name: r.col("name")?,
        flow_name: r.col("flow_name")?,
        component_digest: r.col("component_digest")?,
        parameters: parse_json(&r.col::<String>("parameters")?)?,
        tags: tags_from(&r.col::<String>("tags")?)?,
        parent_flow_run_id: r.col("parent_flow_run_id")?,
        parent_position: r.col("parent_position")?,
        state: state_from_row(
            r,
            "state_type",
            "state_name",
            "state_message",
            "state_timestamp",
        )?,
        run_count: r.col("run_count")?,
        result: parse_opt_json(r.col("result")?)?,
        created: parse_ts(&r.col::<String>("created")?)?,
        start_time: parse_opt_ts(r.col("start_time")?)?,
        end_time: parse_opt_ts(r.col("end_time")?)?,
        workspace_id: r.col("workspace_id")?,
        deployment_id: r.col("deployment_id")?,
        idempotency_key: r.col("idempotency_key")?,
        expected_start: parse_opt_ts(r.col("expected_start")?)?,
        schedule_id: r.col("schedule_id")?,
        node_id: r.col("node_id")?,
        fence: r.col("fence")?,
        crash_count: r.col("crash_count")?,
    })
}

fn task_run_from_row(r: &impl DbRow) -> Result<TaskRunRecord> {
    Ok(TaskRunRecord {
        id: r.col("id")?,
        flow_run_id: r.col("flow_run_id")?,
        position: r.col("position")?,
        task_name: r.col("task_name")?,
        name: r.col("name")?,
        input_hash: r.col("input_hash")?,
        cache_key: r.col("cache_key")?,
        tags: tags_from(&r.col::<String>("tags")?)?,
        state: state_from_row(
            r,
            "state_type",
            "state_name",
            "state_message",
            "state_timestamp",
        )?,
        run_count: r.col("run_count")?,
        result: parse_opt_json(r.col("result")?)?,
        created: parse_ts(&r.col::<String>("created")?)?,
        start_time: parse_opt_ts(r.col("start_time")?)?,
        end_time: parse_opt_ts(r.col("end_time")?)?,
    })
}

pub(crate) fn artifact_from_row(r: &impl DbRow) -> Result<ArtifactRecord> {
    Ok(ArtifactRecord {
        id: r.col("id")?,
        key: r.col("key")?,
        kind: r.col("type")?,
        description: r.col("description")?,
        data: parse_json(&r.col::<String>("data")?)?,
        flow_run_id: r.col("flow_run_id")?,
        task_run_id: r.col("task_run_id")?,
        created: parse_ts(&r.col::<String>("created")?)?,
        updated: parse_ts(&r.col::<String>("updated")?)?,
    })
}
