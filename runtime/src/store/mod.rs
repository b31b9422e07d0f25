//! Storage: every SQL statement of Weir lives under this module.
//!
//! Writes from the engine go through [`writer`]: a single writer task that applies them
//! in batched transactions, so orchestration never waits on a commit per state change.
//! [`Store::flush`] waits until everything enqueued so far is durable. Reads go straight
//! to the connection pool.
//!
//! One file per resource, like `api/`: [`runs`] (flow runs), [`task_runs`], [`logs`],
//! [`artifacts`], [`cache`], [`components`], [`deployments`] (with pools and tag
//! limits), [`variables`] (and secrets), [`workspaces`] (and keys, settings),
//! [`leases`] (nodes, claims, takeover, fencing, shared slots), [`pauses`],
//! [`schedules`], [`retention`] (policies, deleting finished run trees); row decoding shared in [`rows`], the backends in [`db`].

mod artifacts;
mod automations;
mod cache;
mod components;
mod db;
mod deployments;
mod leases;
mod limits;
mod logs;
mod pauses;
mod plugins;
mod pools;
mod quotas;
mod records;
mod retention;
mod rows;
mod runs;
mod schedules;
mod seed;
mod sessions;
mod slots;
mod task_runs;
mod transactions;
mod variables;
mod workspaces;
mod writer;

pub use artifacts::{ArtifactKey, MAX_COUNTED_VERSIONS};
pub use automations::{AutomationRecord, AutomationRunRecord, AutomationRunState, StateChangeRow};
pub use components::ComponentRecord;
pub use deployments::*;
pub use leases::NodeRecord;
pub use limits::GlobalLimit;
pub use logs::LogLine;
pub use pauses::*;
pub use plugins::{BUILTIN as BUILTIN_PLUGINS, MAX_PLUGIN_VERSIONS, PluginRecord, Registered};
pub use pools::*;
pub use records::*;
pub use retention::{Deleted, RetentionScope, WorkspaceRetention};
pub(crate) use rows::*;
pub(crate) use runs::InsertStage;
pub use runs::{NAMES_PER_PASS, RunFilter};
pub use schedules::*;
pub use seed::Seed;
pub use sessions::SessionRecord;
pub use task_runs::{TaskRunFilter, TaskRunGroup, TaskRunSummary};
pub use transactions::TransactionRecord;
pub use workspaces::*;
pub use writer::{NotStored, Receipt, Unavailable, Write, WriterFailing, WriterHealth};

use crate::model::state::{State, StateType};
use chrono::{DateTime, SecondsFormat, Utc};
use db::Db;
use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{
    SqliteAutoVacuum, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
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
        // The file holds key hashes and sealed secrets: only its owner may read it
        // (SQLite gives its -wal and -shm files the same mode).
        crate::secrets::create_private(path)
            .map_err(|e| StoreError::Corrupt(format!("cannot create {}: {e}", path.display())))?;
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .auto_vacuum(SqliteAutoVacuum::Incremental)
            .pragma("temp_store", "memory")
            .pragma("cache_size", "-16384");
        Self::connect(options).await
    }

    /// Opens a database from a URL: `sqlite:PATH` or `postgres://...`.
    pub async fn open_url(url: &str) -> Result<Self> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Self::open_postgres(url).await;
        }
        let options = SqliteConnectOptions::from_str(url)?;
        let file = options.get_filename();
        if !file.as_os_str().is_empty() && file != Path::new(":memory:") {
            if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
                let _ = std::fs::create_dir_all(dir);
            }
            crate::secrets::create_private(file).map_err(|e| {
                StoreError::Corrupt(format!("cannot create {}: {e}", file.display()))
            })?;
        }
        let options = options
            .create_if_missing(true)
            .auto_vacuum(SqliteAutoVacuum::Incremental)
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
}
