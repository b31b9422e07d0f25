//! Transactions (Prefect's `with transaction()`, `on_commit`, `on_rollback`), on top of
//! the run's journal.
//!
//! A flow opens a transaction; the task runs it calls while the transaction is the
//! innermost open one belong to it. A task run that completes *stages* its result's cache
//! record and its commit and rollback hooks in its transaction. When the outermost
//! transaction commits (lazy, the default; eager ones commit as they end, `off` ones never),
//! every staged task commits in order: its `on_commit` hooks run, then its record is
//! written (a hook that fails rolls that task back instead). When an error leaves a
//! transaction, the `on_rollback` hooks of the tasks that completed inside it run, newest
//! first, its inner transactions roll back too, and so does the enclosing one (Prefect's
//! rule). A task run outside any transaction is its own: it commits as it completes.
//!
//! A transaction with a key begins committed when one with that key committed before in
//! the workspace (its work is then neither committed nor rolled back again); a
//! serializable one holds a lock on its key, across nodes, from begin to commit or
//! rollback.
//!
//! Durable: a begin is a call at a position of the run, recorded before the flow goes on;
//! its end is recorded after its hooks ran and its records were written. A run executed
//! again replays a committed transaction as committed (no hook runs twice, no record is
//! written twice), carries on an active one (a crash inside a transaction means replay,
//! not rollback: its completed tasks replay and stage again), and runs the calls of a
//! rolled-back one anew (their work was undone).

use super::LogLevel;
use super::hooks;
use super::limits::Occupancy;
use super::scope::{Call, FlowScope, Recorded};
use crate::model::duration;
use crate::model::manifest::Definition;
use crate::model::run::{CommitMode, Isolation, TransactionOptions, TransactionState};
use crate::store::{CacheEntry, TransactionRecord, Write};
use chrono::Utc;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

/// Longest transaction key (a cache key is far shorter).
const MAX_KEY_BYTES: usize = 1024;
/// Values one transaction may hold, in bytes of JSON.
const MAX_VALUE_BYTES: usize = 1 << 20;
/// Transactions open at once in one flow run.
const MAX_OPEN: usize = 64;
/// What the host keeps for a transaction beyond its key and values.
const TRANSACTION_HOST_BYTES: usize = 512;

/// A completed task run's part in its transaction: what its commit writes and runs.
#[derive(Debug, Clone)]
pub(crate) struct Staged {
    pub task_run_id: String,
    /// The component's task (whose hooks run).
    pub task: String,
    pub run_name: String,
    /// The task's arguments, JSON text.
    pub arguments: String,
    /// The task's own key (its cache key).
    pub key: Option<String>,
    /// The cache record written on commit (when the task caches and persists).
    pub record: Option<CacheEntry>,
    pub on_commit: Vec<String>,
    pub on_rollback: Vec<String>,
    /// The plugin's component whose task it is (`None`: the flow's).
    pub component: Option<Arc<crate::host::LoadedComponent>>,
}

impl Staged {
    /// The part of a task run that completed with `value`, under `key`.
    pub(crate) fn new(
        def: &Definition,
        task: &str,
        task_run_id: &str,
        run_name: &str,
        arguments: &str,
        key: Option<&str>,
        value: &str,
    ) -> Self {
        let options = &def.options;
        let record = cache_record(def, task_run_id, key, value);
        Staged {
            task_run_id: task_run_id.to_owned(),
            task: task.to_owned(),
            run_name: run_name.to_owned(),
            arguments: arguments.to_owned(),
            key: key.map(str::to_owned),
            record,
            on_commit: options.on_commit.clone(),
            on_rollback: options.on_rollback.clone(),
            component: None,
        }
    }

    /// Whether committing it does anything beyond writing its record.
    fn has_hooks(&self) -> bool {
        !self.on_commit.is_empty() || !self.on_rollback.is_empty()
    }
}

/// The cache record a completed task run writes as it commits: under its key, when it has
/// one and persists its result.
pub(crate) fn cache_record(
    def: &Definition,
    task_run_id: &str,
    key: Option<&str>,
    value: &str,
) -> Option<CacheEntry> {
    let options = &def.options;
    let key = key.filter(|_| options.persists_result())?;
    let created = Utc::now();
    Some(CacheEntry {
        key: key.to_owned(),
        result: value.to_owned(),
        task_run_id: task_run_id.to_owned(),
        created,
        expires: options
            .cache_expiration_seconds
            .map(|s| duration::after(created, s)),
    })
}

enum Child {
    Task(Box<Staged>),
    /// An inner transaction that ended and left its commit to this one.
    Transaction(String),
}

struct Txn {
    record: TransactionRecord,
    values: Map<String, Value>,
    value_bytes: usize,
    children: Vec<Child>,
    /// The serializable lock on the key, until commit or rollback.
    lock: Option<Occupancy>,
    /// Its calls run anew: an earlier execution rolled it back.
    fresh: bool,
    /// The flow ended it (it may still wait for its parent to commit it).
    ended: bool,
}

/// The transactions of one execution of a flow run.
#[derive(Default)]
pub(crate) struct Transactions {
    /// Open transactions, innermost last.
    open: Vec<String>,
    all: HashMap<String, Txn>,
}

impl Transactions {
    /// The innermost open transaction: the one a task call made now belongs to.
    pub(crate) fn current(&self) -> Option<String> {
        self.open.last().cloned()
    }

    /// The values a transaction sees: its own over its parents'.
    fn values_of(&self, id: &str) -> Map<String, Value> {
        let mut chain = Vec::new();
        let mut at = Some(id.to_owned());
        while let Some(id) = at {
            let Some(t) = self.all.get(&id) else { break };
            chain.push(t);
            at = t.record.parent_id.clone();
        }
        let mut values = Map::new();
        for t in chain.into_iter().rev() {
            for (k, v) in &t.values {
                values.insert(k.clone(), v.clone());
            }
        }
        values
    }

    fn commit(&mut self, id: &str, plan: &mut Plan) {
        let values = Value::Object(self.values_of(id));
        let Some(t) = self.all.get_mut(id) else {
            return;
        };
        if t.record.state != TransactionState::Active {
            plan.locks.extend(t.lock.take());
            return;
        }
        t.record.state = TransactionState::Committed;
        let children = std::mem::take(&mut t.children);
        if let Some(key) = &t.record.key {
            plan.keys.push((key.clone(), id.to_owned()));
        }
        plan.ended
            .push((id.to_owned(), TransactionState::Committed));
        let lock = t.lock.take();
        for child in children {
            match child {
                Child::Task(staged) => plan.steps.push(Step::Commit(*staged, values.clone())),
                Child::Transaction(inner) => self.commit(&inner, plan),
            }
        }
        plan.locks.extend(lock);
    }

    fn rollback(&mut self, id: &str, plan: &mut Plan) {
        let values = Value::Object(self.values_of(id));
        let Some(t) = self.all.get_mut(id) else {
            return;
        };
        if t.record.state != TransactionState::Active {
            return;
        }
        t.record.state = TransactionState::RolledBack;
        let children = std::mem::take(&mut t.children);
        plan.ended
            .push((id.to_owned(), TransactionState::RolledBack));
        let lock = t.lock.take();
        for child in children.into_iter().rev() {
            match child {
                Child::Task(staged) => plan.steps.push(Step::Rollback(*staged, values.clone())),
                Child::Transaction(inner) => self.rollback(&inner, plan),
            }
        }
        plan.locks.extend(lock);
    }
}

enum Step {
    /// Runs a staged task's commit hooks (rolling it back when one fails), then writes
    /// its record.
    Commit(Staged, Value),
    /// Runs a staged task's rollback hooks, newest first.
    Rollback(Staged, Value),
}

/// What ending transactions does, worked out under the lock and carried out after it.
#[derive(Default)]
struct Plan {
    steps: Vec<Step>,
    ended: Vec<(String, TransactionState)>,
    /// Keys of committed transactions and their ids.
    keys: Vec<(String, String)>,
    locks: Vec<Occupancy>,
}

impl FlowScope {
    pub(crate) fn transactions(&self) -> std::sync::MutexGuard<'_, Transactions> {
        self.transactions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens a transaction inside the innermost open one, at the next call position;
    /// returns its id. A serializable one waits for its key's lock first.
    pub(crate) async fn begin_transaction(
        self: &Arc<Self>,
        options: TransactionOptions,
    ) -> Result<String, String> {
        if let Some(key) = &options.key
            && (key.is_empty() || key.len() > MAX_KEY_BYTES)
        {
            return Err(format!(
                "a transaction key is 1 to {MAX_KEY_BYTES} bytes, not {}",
                key.len()
            ));
        }
        let lock_deadline = match options.lock_timeout_seconds {
            None => None,
            Some(s) if s.is_finite() && s >= 0.0 => Some(Instant::now() + duration::to_std(s)),
            Some(s) => {
                return Err(format!(
                    "lock_timeout_seconds must be a non-negative number, not {s}"
                ));
            }
        };
        // What the host keeps for it until the execution ends counts against the run.
        self.charge_host(TRANSACTION_HOST_BYTES + options.key.as_ref().map_or(0, String::len))
            .map_err(|f| f.message)?;
        let position = self.next_position();
        let recorded = self
            .replay_at(position, Call::Transaction)
            .map_err(|f| f.message)?;
        let parent = {
            let tree = self.transactions();
            if tree.open.len() >= MAX_OPEN {
                return Err(format!(
                    "at most {MAX_OPEN} transactions may be open at once in a flow run"
                ));
            }
            tree.current()
                .and_then(|id| tree.all.get(&id).map(|t| t.record.clone()))
        };
        let isolation = options
            .isolation
            .or(parent.as_ref().map(|p| p.isolation))
            .unwrap_or(Isolation::ReadCommitted);
        let commit_mode = options
            .commit_mode
            .or(parent.as_ref().map(|p| p.commit_mode))
            .unwrap_or(CommitMode::Lazy);
        let (id, replayed, fresh) = match recorded {
            Some(Recorded::Transaction { id, state }) => match state {
                TransactionState::RolledBack => (uuid::Uuid::now_v7().to_string(), None, true),
                state => (id, Some(state), false),
            },
            _ => (uuid::Uuid::now_v7().to_string(), None, false),
        };
        let workspace = self.workspace().to_owned();
        let lock = match (&options.key, isolation) {
            (Some(key), Isolation::Serializable)
                if replayed != Some(TransactionState::Committed) =>
            {
                let store = self.orch.store.clone();
                let node = self.orch.node_id().to_owned();
                let waiting = format!("waiting for the lock of transaction key '{key}'");
                let lock = self
                    .hold(None, lock_deadline, waiting, |lease| {
                        let (store, node, workspace, key) =
                            (store.clone(), node.clone(), workspace.clone(), key.clone());
                        async move {
                            store
                                .take_transaction_lock(&workspace, &key, &lease, &node)
                                .await
                                .map_err(|e| format!("cannot take the transaction's lock: {e}"))
                        }
                    })
                    .await
                    .map_err(|e| {
                        e.unwrap_or_else(|| {
                            format!(
                                "timed out after {} second(s) waiting for the lock of transaction \
                                 key '{key}'",
                                options.lock_timeout_seconds.unwrap_or(0.0)
                            )
                        })
                    })?;
                Some(lock)
            }
            _ => None,
        };
        // A key that committed before: the transaction begins committed.
        let state = match (replayed, &options.key) {
            (Some(state), _) => state,
            (None, Some(key)) if !options.overwrite => {
                match self.orch.store.transaction_committed(&workspace, key).await {
                    Ok(true) => TransactionState::Committed,
                    Ok(false) => TransactionState::Active,
                    Err(e) => return Err(format!("cannot read the transaction's record: {e}")),
                }
            }
            _ => TransactionState::Active,
        };
        let record = TransactionRecord {
            id: id.clone(),
            flow_run_id: self.id.clone(),
            position,
            parent_id: parent.map(|p| p.id),
            key: options.key.clone(),
            isolation,
            commit_mode,
            state,
            created: Utc::now(),
            ended: (state == TransactionState::Committed).then(Utc::now),
        };
        if replayed.is_none() {
            self.orch
                .store
                .insert_transaction(&record)
                .await
                .map_err(|e| format!("cannot record the transaction: {e}"))?;
        }
        if state == TransactionState::Committed && replayed.is_none() {
            self.log(
                None,
                LogLevel::Info,
                format!(
                    "transaction key '{}' committed before: the transaction begins committed",
                    options.key.as_deref().unwrap_or_default()
                ),
            );
        }
        let mut tree = self.transactions();
        tree.open.push(id.clone());
        tree.all.insert(
            id.clone(),
            Txn {
                record,
                values: Map::new(),
                value_bytes: 0,
                children: Vec::new(),
                lock,
                fresh,
                ended: false,
            },
        );
        drop(tree);
        if fresh {
            self.calls().fresh_depth += 1;
        }
        Ok(id)
    }

    /// A transaction's key and state, for the guest.
    pub(crate) fn transaction_info(&self, id: &str) -> Option<(Option<String>, TransactionState)> {
        let tree = self.transactions();
        tree.all
            .get(id)
            .map(|t| (t.record.key.clone(), t.record.state))
    }

    /// Stores a value in a transaction (Prefect's `txn.set`); `value` is JSON text.
    pub(crate) fn transaction_set(
        &self,
        id: &str,
        name: String,
        value: &str,
    ) -> Result<(), String> {
        let value: Value =
            serde_json::from_str(value).map_err(|e| format!("the value is not JSON: {e}"))?;
        let mut tree = self.transactions();
        let t = tree
            .all
            .get_mut(id)
            .ok_or_else(|| "no such transaction in this run".to_owned())?;
        let bytes = name.len() + value.to_string().len();
        if t.value_bytes + bytes > MAX_VALUE_BYTES {
            return Err(format!(
                "a transaction holds at most {} KiB of values",
                MAX_VALUE_BYTES >> 10
            ));
        }
        t.value_bytes += bytes;
        t.values.insert(name, value);
        drop(tree);
        self.charge_host(bytes).map_err(|f| f.message)
    }

    /// A value of a transaction, else of the enclosing ones (JSON text).
    pub(crate) fn transaction_get(&self, id: &str, name: &str) -> Option<String> {
        let tree = self.transactions();
        tree.values_of(id).get(name).map(Value::to_string)
    }

    /// The transaction a task call made now belongs to.
    pub(crate) fn current_transaction(&self) -> Option<String> {
        self.transactions().current()
    }

    /// Ends the innermost open transaction: `ok` commits it as its mode says, else it
    /// rolls back (with its parent, as in Prefect). Returns the state it ended in.
    pub(crate) async fn end_transaction(
        self: &Arc<Self>,
        id: &str,
        ok: bool,
    ) -> Result<TransactionState, String> {
        let (plan, state, fresh) = {
            let mut tree = self.transactions();
            match tree.all.get(id) {
                None => return Err("no such transaction in this run".into()),
                Some(t) if t.ended => return Err("the transaction has ended already".into()),
                Some(_) if tree.open.last().map(String::as_str) != Some(id) => {
                    return Err(
                        "transactions end in the reverse order they began: end the inner one first"
                            .into(),
                    );
                }
                Some(_) => {}
            }
            tree.open.pop();
            let t = tree.all.get_mut(id).expect("checked above");
            t.ended = true;
            let fresh = t.fresh;
            let parent = t.record.parent_id.clone();
            let mode = t.record.commit_mode;
            let active = t.record.state == TransactionState::Active;
            let mut plan = Plan::default();
            if let Some(p) = &parent
                && let Some(p) = tree.all.get_mut(p)
            {
                p.children.push(Child::Transaction(id.to_owned()));
            }
            if !active {
                // Committed at begin (or by a replay), or rolled back already: nothing to
                // do but give the lock back.
                let t = tree.all.get_mut(id).expect("checked above");
                plan.locks.extend(t.lock.take());
            } else if !ok {
                tree.rollback(id, &mut plan);
                if let Some(p) = &parent {
                    tree.rollback(p, &mut plan);
                }
            } else {
                if mode == CommitMode::Eager {
                    tree.commit(id, &mut plan);
                }
                if parent.is_none() {
                    match mode {
                        CommitMode::Off => tree.rollback(id, &mut plan),
                        CommitMode::Lazy => tree.commit(id, &mut plan),
                        CommitMode::Eager => {}
                    }
                }
            }
            let state = tree
                .all
                .get(id)
                .map_or(TransactionState::Active, |t| t.record.state);
            (plan, state, fresh)
        };
        if fresh {
            let mut calls = self.calls();
            calls.fresh_depth = calls.fresh_depth.saturating_sub(1);
        }
        self.carry_out(plan).await?;
        Ok(state)
    }

    /// Ends what the flow left open as its execution ended: rolled back when it failed,
    /// committed when it completed (innermost first).
    pub(crate) async fn close_transactions(self: &Arc<Self>, ok: bool) {
        loop {
            let Some(id) = self.current_transaction() else {
                return;
            };
            if let Err(e) = self.end_transaction(&id, ok).await {
                self.log(
                    None,
                    LogLevel::Error,
                    format!("the transaction left open could not be ended: {e}"),
                );
                return;
            }
        }
    }

    /// A completed task run's part: staged in its transaction while that is open; else
    /// committed now (a task run outside transactions is its own, and one whose
    /// transaction ended takes its outcome), or rolled back when its transaction was.
    pub(crate) async fn stage(self: &Arc<Self>, transaction: Option<&str>, staged: Staged) {
        let step = {
            let mut tree = self.transactions();
            let values = transaction.map(|id| Value::Object(tree.values_of(id)));
            match transaction.and_then(|id| tree.all.get_mut(id)) {
                Some(t) if t.record.state == TransactionState::Active => {
                    t.children.push(Child::Task(Box::new(staged)));
                    return;
                }
                // Began committed: its work neither commits nor rolls back (Prefect's).
                Some(t) if !t.ended => return,
                Some(t) if t.record.state == TransactionState::RolledBack => {
                    Step::Rollback(staged, values.unwrap_or_default())
                }
                _ => Step::Commit(staged, values.unwrap_or_else(|| Value::Object(Map::new()))),
            }
        };
        if let Step::Commit(staged, _) = &step
            && !staged.has_hooks()
        {
            // The common case: a task outside transactions, without transaction hooks.
            if let Some(record) = &staged.record {
                self.orch.store.write(Write::CachePut(record.clone()));
            }
            return;
        }
        self.run_step(step).await;
    }

    async fn carry_out(self: &Arc<Self>, plan: Plan) -> Result<(), String> {
        let Plan {
            steps,
            ended,
            keys,
            locks,
        } = plan;
        for step in steps {
            self.run_step(step).await;
        }
        // The cache records are stored before the transaction shows as committed, and
        // both before the lock is given back: a run waiting on the key sees the commit.
        let result = async {
            self.orch.store.flush().await.map_err(|e| e.to_string())?;
            self.orch
                .store
                .end_transactions(self.workspace(), &ended, &keys, &self.id, Utc::now())
                .await
                .map_err(|e| e.to_string())
        }
        .await;
        drop(locks);
        result.map_err(|e| format!("cannot record the transaction's end: {e}"))
    }

    async fn run_step(self: &Arc<Self>, step: Step) {
        match step {
            Step::Commit(staged, values) => {
                if !staged.on_commit.is_empty()
                    && self
                        .transaction_hooks(&staged, true, &staged.on_commit, &values)
                        .await
                        .is_err()
                {
                    // A commit that fails rolls the task back instead.
                    if !staged.on_rollback.is_empty() {
                        let hooks: Vec<String> = staged.on_rollback.iter().rev().cloned().collect();
                        let _ = self
                            .transaction_hooks(&staged, false, &hooks, &values)
                            .await;
                    }
                    return;
                }
                if let Some(record) = staged.record {
                    self.orch.store.write(Write::CachePut(record));
                }
            }
            Step::Rollback(staged, values) => {
                if !staged.on_rollback.is_empty() {
                    let hooks: Vec<String> = staged.on_rollback.iter().rev().cloned().collect();
                    let _ = self
                        .transaction_hooks(&staged, false, &hooks, &values)
                        .await;
                }
            }
        }
    }

    /// Runs a staged task's commit or rollback hooks, logging as Prefect does.
    async fn transaction_hooks(
        self: &Arc<Self>,
        staged: &Staged,
        commit: bool,
        names: &[String],
        values: &Value,
    ) -> Result<(), String> {
        let kind = if commit { "commit" } else { "rollback" };
        let quoted: Vec<String> = names.iter().map(|h| format!("'{h}'")).collect();
        let list = quoted.join(", ");
        self.log(
            None,
            LogLevel::Info,
            format!(
                "Running {kind} hook(s) {list} of task run '{}'",
                staged.run_name
            ),
        );
        match hooks::transaction(self, staged, commit, names, values).await {
            Ok(()) => {
                self.log(
                    None,
                    LogLevel::Info,
                    format!(
                        "{} hook(s) {list} of task run '{}' finished running successfully",
                        if commit { "Commit" } else { "Rollback" },
                        staged.run_name
                    ),
                );
                Ok(())
            }
            Err(e) => {
                self.log(
                    None,
                    LogLevel::Error,
                    format!(
                        "An error was encountered while running {kind} hook(s) {list} of task \
                         run '{}': {e}",
                        staged.run_name
                    ),
                );
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn txn(id: &str, parent: Option<&str>) -> Txn {
        Txn {
            record: TransactionRecord {
                id: id.into(),
                flow_run_id: "r".into(),
                position: 0,
                parent_id: parent.map(Into::into),
                key: Some(format!("k-{id}")),
                isolation: Isolation::ReadCommitted,
                commit_mode: CommitMode::Lazy,
                state: TransactionState::Active,
                created: Utc::now(),
                ended: None,
            },
            values: Map::new(),
            value_bytes: 0,
            children: Vec::new(),
            lock: None,
            fresh: false,
            ended: false,
        }
    }

    fn staged(id: &str) -> Child {
        Child::Task(Box::new(Staged {
            task_run_id: id.into(),
            task: "t".into(),
            run_name: id.into(),
            arguments: "{}".into(),
            key: None,
            record: None,
            on_commit: vec![],
            on_rollback: vec!["undo".into()],
            component: None,
        }))
    }

    fn order(plan: &Plan) -> Vec<String> {
        plan.steps
            .iter()
            .map(|s| match s {
                Step::Commit(s, _) => format!("commit {}", s.task_run_id),
                Step::Rollback(s, _) => format!("rollback {}", s.task_run_id),
            })
            .collect()
    }

    #[test]
    fn rollback_runs_the_newest_first_and_reaches_inner_transactions() {
        let mut tree = Transactions::default();
        let mut outer = txn("outer", None);
        outer.children = vec![staged("a"), Child::Transaction("inner".into()), staged("c")];
        let mut inner = txn("inner", Some("outer"));
        inner.children = vec![staged("b1"), staged("b2")];
        tree.all.insert("outer".into(), outer);
        tree.all.insert("inner".into(), inner);
        let mut plan = Plan::default();
        tree.rollback("outer", &mut plan);
        assert_eq!(
            order(&plan),
            ["rollback c", "rollback b2", "rollback b1", "rollback a"]
        );
        assert_eq!(plan.ended.len(), 2);
        // Rolled back once: a second rollback or a commit does nothing.
        let mut again = Plan::default();
        tree.rollback("outer", &mut again);
        tree.commit("outer", &mut again);
        assert!(again.steps.is_empty() && again.ended.is_empty());
    }

    #[test]
    fn commit_goes_in_order_and_writes_keys() {
        let mut tree = Transactions::default();
        let mut outer = txn("outer", None);
        outer.children = vec![staged("a"), Child::Transaction("inner".into())];
        let mut inner = txn("inner", Some("outer"));
        inner.children = vec![staged("b")];
        tree.all.insert("outer".into(), outer);
        tree.all.insert("inner".into(), inner);
        let mut plan = Plan::default();
        tree.commit("outer", &mut plan);
        assert_eq!(order(&plan), ["commit a", "commit b"]);
        let keys: Vec<&str> = plan.keys.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["k-outer", "k-inner"]);
    }

    #[test]
    fn values_fall_back_to_the_parent() {
        let mut tree = Transactions::default();
        let mut outer = txn("outer", None);
        outer.values.insert("a".into(), 1.into());
        outer.values.insert("b".into(), 1.into());
        let mut inner = txn("inner", Some("outer"));
        inner.values.insert("b".into(), 2.into());
        tree.all.insert("outer".into(), outer);
        tree.all.insert("inner".into(), inner);
        let v = tree.values_of("inner");
        assert_eq!(v["a"], 1);
        assert_eq!(v["b"], 2);
        assert_eq!(tree.values_of("outer")["b"], 1);
    }
}
