//! Transactions (Prefect's `with transaction()`, `on_commit` and `on_rollback`).
//!
//! The task runs a flow calls inside a transaction stage their results and hooks; they
//! are committed together when the outermost transaction commits (its `on_commit` hooks
//! run and the tasks' cache records are written), or rolled back when an error leaves
//! it (the `on_rollback` hooks of the tasks that completed inside it run, newest first):
//!
//! ```no_run
//! use weir_sdk::{flow, task, Result, TransactionContext, TransactionOptions};
//!
//! #[task(on_rollback = [delete_file])]
//! fn write_file(contents: String) -> Result<()> {
//!     # let _ = contents;
//!     Ok(())
//! }
//!
//! fn delete_file(txn: &TransactionContext) -> Result<()> {
//!     let path: String = txn.get("path")?;
//!     # let _ = path;
//!     Ok(())
//! }
//!
//! #[task]
//! fn quality_test() -> Result<()> {
//!     Err(weir_sdk::Error::msg("Not enough data!"))
//! }
//!
//! #[flow]
//! fn pipeline(contents: String) -> Result<()> {
//!     weir_sdk::transaction(TransactionOptions::new(), |txn| {
//!         txn.set("path", &"side-effect.txt")?;
//!         write_file(contents)?;
//!         quality_test() // fails: write_file's rollback hook deletes the file
//!     })
//! }
//! # fn main() {}
//! ```
//!
//! A key makes the work idempotent across runs: once a transaction with the key
//! committed, a later one begins committed.
//!
//! ```no_run
//! # use weir_sdk::{Result, TransactionOptions};
//! # fn load() -> Result<()> { Ok(()) }
//! # fn main() -> Result<()> {
//! weir_sdk::transaction(TransactionOptions::new().key("load-2026-12-06"), |txn| {
//!     if txn.is_committed() {
//!         return Ok(()); // done by an earlier run
//!     }
//!     load()
//! })
//! # }
//! ```

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::bindings::weir::flow::transactions as host;
use crate::error::{Error, Result};

pub use host::{CommitMode, IsolationLevel};

/// How a transaction behaves (Prefect's `transaction(...)` arguments).
#[derive(Clone, Debug, Default)]
pub struct TransactionOptions {
    /// An idempotency key: once a transaction with it committed in the workspace, a later
    /// one begins committed ([`Transaction::is_committed`]).
    pub key: Option<String>,
    /// `None` inherits the enclosing transaction's (else read committed).
    pub isolation: Option<IsolationLevel>,
    /// `None` inherits the enclosing transaction's (else lazy).
    pub commit_mode: Option<CommitMode>,
    /// Begins even when the key committed before.
    pub overwrite: bool,
    /// Gives up waiting for a serializable lock after this many seconds.
    pub lock_timeout_seconds: Option<f64>,
}

impl TransactionOptions {
    /// No key, the enclosing transaction's isolation and commit mode.
    pub fn new() -> Self {
        Self::default()
    }

    /// The idempotency key.
    #[must_use]
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// `Serializable` holds a lock on the key from begin to commit or rollback, across
    /// every node: a second transaction with the key waits for the first to end.
    #[must_use]
    pub fn isolation(mut self, isolation: IsolationLevel) -> Self {
        self.isolation = Some(isolation);
        self
    }

    /// `Eager` commits as the transaction ends, `Lazy` when the outermost one does, `Off`
    /// never.
    #[must_use]
    pub fn commit_mode(mut self, mode: CommitMode) -> Self {
        self.commit_mode = Some(mode);
        self
    }

    /// Begins even when the key committed before (Prefect's `overwrite=True`).
    #[must_use]
    pub fn overwrite(mut self, overwrite: bool) -> Self {
        self.overwrite = overwrite;
        self
    }

    /// Gives up waiting for the serializable lock after this many seconds, with an error.
    #[must_use]
    pub fn lock_timeout_seconds(mut self, seconds: f64) -> Self {
        self.lock_timeout_seconds = Some(seconds);
        self
    }
}

/// An open transaction of the flow run: what the closure given to [`transaction`] gets.
#[derive(Debug)]
pub struct Transaction {
    handle: host::Transaction,
}

fn get_from<T: DeserializeOwned>(found: Option<String>, name: &str) -> Result<T> {
    let text = found
        .ok_or_else(|| Error::msg(format!("Could not retrieve value for unknown key: {name}")))?;
    let value: Value = serde_json::from_str(&text).map_err(Error::msg)?;
    crate::json::from_value(value)
        .map_err(|e| Error::msg(format!("transaction value `{name}`: {e}")))
}

impl Transaction {
    /// The transaction's id (as the API and UI show it).
    pub fn id(&self) -> String {
        self.handle.id()
    }

    /// Its key, if it has one.
    pub fn key(&self) -> Option<String> {
        self.handle.key()
    }

    /// Whether it is committed: a transaction whose key committed before begins so.
    pub fn is_committed(&self) -> bool {
        self.handle.state() == host::TransactionState::Committed
    }

    /// Whether it rolled back (an inner transaction that rolled back takes it along).
    pub fn is_rolled_back(&self) -> bool {
        self.handle.state() == host::TransactionState::RolledBack
    }

    /// Whether it is open and neither committed nor rolled back.
    pub fn is_active(&self) -> bool {
        self.handle.state() == host::TransactionState::Active
    }

    /// Stores a value for later code and for the hooks of the tasks inside it.
    pub fn set<T: Serialize + ?Sized>(&self, name: &str, value: &T) -> Result<()> {
        let text = crate::json::to_string(value).map_err(Error::msg)?;
        self.handle.set(name, &text).map_err(Error::msg)
    }

    /// A stored value, else the enclosing transaction's; an error when neither has it.
    pub fn get<T: DeserializeOwned>(&self, name: &str) -> Result<T> {
        get_from(self.handle.get(name), name)
    }

    /// A stored value, else the enclosing transaction's, else `default`.
    pub fn get_or<T: DeserializeOwned>(&self, name: &str, default: T) -> Result<T> {
        match self.handle.get(name) {
            None => Ok(default),
            found => get_from(found, name),
        }
    }
}

/// Runs `body` inside a new transaction (inside the innermost open one, if any). When
/// `body` returns `Ok` the transaction commits (as its commit mode says); when it returns
/// an error, it rolls back and the error is returned.
pub fn transaction<T>(
    options: TransactionOptions,
    body: impl FnOnce(&Transaction) -> Result<T>,
) -> Result<T> {
    let handle = host::begin(&host::TransactionOptions {
        key: options.key,
        isolation: options.isolation,
        commit_mode: options.commit_mode,
        overwrite: options.overwrite,
        lock_timeout_seconds: options.lock_timeout_seconds,
    })
    .map_err(|e| Error::msg(format!("cannot begin the transaction: {e}")))?;
    let txn = Transaction { handle };
    let result = body(&txn);
    let ended = txn.handle.end(result.is_ok());
    let value = result?;
    ended.map_err(|e| Error::msg(format!("cannot end the transaction: {e}")))?;
    Ok(value)
}

/// What a task's `on_commit` and `on_rollback` hooks receive (Prefect passes the
/// transaction).
#[derive(Clone, Debug, PartialEq)]
pub struct TransactionContext {
    /// True in `on_commit` hooks, false in `on_rollback` hooks.
    pub committing: bool,
    /// The task's name.
    pub task: String,
    /// The task run's id.
    pub task_run_id: String,
    /// The task run's name.
    pub task_run_name: String,
    /// The task's arguments (a JSON object keyed by parameter name).
    pub parameters: Value,
    /// The task's own transaction key (its cache key), if it has one.
    pub key: Option<String>,
    values: serde_json::Map<String, Value>,
}

impl TransactionContext {
    pub(crate) fn from_event(event: &crate::bindings::TransactionEvent) -> Self {
        TransactionContext {
            committing: event.commit,
            task: event.task.clone(),
            task_run_id: event.task_run_id.clone(),
            task_run_name: event.task_run_name.clone(),
            parameters: serde_json::from_str(&event.parameters).unwrap_or(Value::Null),
            key: event.key.clone(),
            values: match serde_json::from_str(&event.values) {
                Ok(Value::Object(map)) => map,
                _ => serde_json::Map::new(),
            },
        }
    }

    /// A value set in the transactions the task ran in (the innermost one wins); an error
    /// when none has it.
    pub fn get<T: DeserializeOwned>(&self, name: &str) -> Result<T> {
        get_from(self.values.get(name).map(Value::to_string), name)
    }

    /// A value set in the transactions the task ran in, else `default`.
    pub fn get_or<T: DeserializeOwned>(&self, name: &str, default: T) -> Result<T> {
        match self.values.get(name) {
            None => Ok(default),
            Some(v) => get_from(Some(v.to_string()), name),
        }
    }
}
