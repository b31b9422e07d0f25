//! Transactions (Prefect's `with transaction()`, `on_commit`, `on_rollback`) in the real
//! host: the seeds' rollback example, idempotency by key, serializable keys raced by two
//! runs, nesting and commit modes, cache records written on commit only, and a node
//! killed inside a transaction (replay, not rollback).

use super::*;
use crate::support::node::Node;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const TXN: &str = "guest_transactions";

/// The lines of `logs` about transaction hooks, in order.
fn hook_lines(logs: &[String]) -> Vec<String> {
    logs.iter()
        .filter(|l| {
            l.starts_with("committed ")
                || l.starts_with("rolled back ")
                || l.starts_with("second undo ")
                || l.contains(" hook(s) ")
        })
        .cloned()
        .collect()
}

async fn transactions(h: &Harness, run: &str) -> Vec<weir::store::TransactionRecord> {
    h.store().transactions(run).await.expect("transactions")
}

#[tokio::test]
async fn a_write_is_rolled_back_when_a_later_task_fails() {
    let h = harness().await;
    let c = h.load(TXN).await;

    let out = h.run(&c, "pipeline", json!({"contents": "one line"})).await;
    assert_eq!(state_of(&out), "FAILED/Failed", "{:?}", out.failure);
    assert!(
        out.state
            .message
            .as_deref()
            .unwrap_or("")
            .contains("Not enough data!")
    );
    let logs = h.logs(&out.flow_run_id).await;
    let hooks = hook_lines(&logs);
    assert_eq!(
        hooks,
        [
            "Running rollback hook(s) 'second_undo', 'delete_file' of task run 'write-one line'",
            "second undo of write-one line",
            "rolled back write-one line: deleted side-effect.txt (one line)",
            "Rollback hook(s) 'second_undo', 'delete_file' of task run 'write-one line' finished \
             running successfully",
        ],
        "{logs:#?}"
    );
    let txns = transactions(&h, &out.flow_run_id).await;
    assert_eq!(txns.len(), 1);
    assert_eq!(
        txns[0].state,
        weir::model::run::TransactionState::RolledBack
    );
    assert!(txns[0].ended.is_some());
    // The task runs say which transaction they belong to.
    let tasks = h.store().task_runs(&out.flow_run_id).await.unwrap();
    assert_eq!(tasks.len(), 2);
    assert!(
        tasks
            .iter()
            .all(|t| t.transaction_id.as_deref() == Some(txns[0].id.as_str()))
    );

    // Enough data: the write commits, its commit hook sees the transaction's values.
    let out = h.run(&c, "pipeline", json!({"contents": "one\ntwo"})).await;
    assert_eq!(state_of(&out), "COMPLETED/Completed", "{:?}", out.failure);
    let logs = h.logs(&out.flow_run_id).await;
    assert!(
        logs.iter()
            .any(|l| l == "committed write-one\ntwo (side-effect.txt)"),
        "{logs:#?}"
    );
    assert!(
        !logs.iter().any(|l| l.starts_with("rolled back")),
        "{logs:#?}"
    );
    let txns = transactions(&h, &out.flow_run_id).await;
    assert_eq!(txns[0].state, weir::model::run::TransactionState::Committed);
}

#[tokio::test]
async fn a_key_that_committed_makes_the_next_run_return_early() {
    let h = harness().await;
    let c = h.load(TXN).await;
    let key = format!("load-{}", uuid::Uuid::now_v7());
    let first = h
        .run(&c, "load_once", json!({"key": key, "contents": "x"}))
        .await;
    assert_eq!(
        state_of(&first),
        "COMPLETED/Completed",
        "{:?}",
        first.failure
    );
    assert_eq!(first.value.as_deref(), Some("\"loaded\""));
    let second = h
        .run(&c, "load_once", json!({"key": key, "contents": "x"}))
        .await;
    assert_eq!(second.value.as_deref(), Some("\"skipped\""));
    let tasks = h.store().task_runs(&second.flow_run_id).await.unwrap();
    assert!(tasks.is_empty(), "the second run did no work: {tasks:?}");
    // Another key is another transaction.
    let other = h
        .run(
            &c,
            "load_once",
            json!({"key": format!("{key}-b"), "contents": "x"}),
        )
        .await;
    assert_eq!(other.value.as_deref(), Some("\"loaded\""));
}

#[tokio::test]
async fn serializable_runs_on_one_key_take_turns_and_the_later_one_sees_the_commit() {
    let h = harness().await;
    let c = h.load(TXN).await;
    let key = format!("excl-{}", uuid::Uuid::now_v7());
    let params = json!({"key": key, "hold_ms": 600});
    let started = Instant::now();
    let (a, b) = tokio::join!(
        h.run(&c, "exclusive", params.clone()),
        h.run(&c, "exclusive", params.clone())
    );
    let mut values = vec![a.value.clone().unwrap(), b.value.clone().unwrap()];
    values.sort();
    assert_eq!(values, ["\"skipped\"", "\"won\""], "{a:?} {b:?}");
    let loser = if a.value.as_deref() == Some("\"skipped\"") {
        &a
    } else {
        &b
    };
    let logs = h.logs(&loser.flow_run_id).await;
    assert!(
        logs.iter()
            .any(|l| l.starts_with("waiting for the lock of transaction key")),
        "the later run waited for the lock: {logs:#?}"
    );
    assert!(started.elapsed() >= Duration::from_millis(600));

    // A lock held by another run, with a timeout on the wait: an error, not a hang.
    let key = format!("excl-{}", uuid::Uuid::now_v7());
    let holder = h.run(&c, "exclusive", json!({"key": key, "hold_ms": 1500}));
    let waiter = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        h.run(
            &c,
            "exclusive",
            json!({"key": key, "hold_ms": 1, "lock_timeout_seconds": 0.2}),
        )
        .await
    };
    let (holder, waiter) = tokio::join!(holder, waiter);
    assert_eq!(holder.value.as_deref(), Some("\"won\""));
    assert_eq!(state_of(&waiter), "FAILED/Failed");
    let message = waiter.state.message.unwrap_or_default();
    assert!(
        message.contains("timed out after 0.2 second(s) waiting for the lock"),
        "{message}"
    );
}

#[tokio::test]
async fn an_inner_rollback_takes_the_outer_transaction_along() {
    let h = harness().await;
    let c = h.load(TXN).await;
    let out = h.run(&c, "nested", json!({"fail_inner": true})).await;
    assert_eq!(state_of(&out), "COMPLETED/Completed", "{:?}", out.failure);
    // The inner error was handled, yet the outer transaction rolled back with it.
    assert_eq!(out.value.as_deref(), Some("[false,true]"));
    let logs = h.logs(&out.flow_run_id).await;
    let undone: Vec<&String> = logs
        .iter()
        .filter(|l| l.starts_with("rolled back"))
        .collect();
    assert_eq!(
        undone,
        [
            "rolled back write-inner: deleted inner.txt (inner)",
            "rolled back write-outer: deleted outer.txt (outer)",
        ],
        "newest first, each hook seeing its own transaction's values: {logs:#?}"
    );
    assert!(
        !logs.iter().any(|l| l.starts_with("committed")),
        "{logs:#?}"
    );

    let out = h.run(&c, "nested", json!({"fail_inner": false})).await;
    assert_eq!(out.value.as_deref(), Some("[true,false]"));
    let logs = h.logs(&out.flow_run_id).await;
    let committed: Vec<&String> = logs.iter().filter(|l| l.starts_with("committed")).collect();
    assert_eq!(
        committed,
        [
            "committed write-outer (outer.txt)",
            "committed write-inner (inner.txt)",
            "committed write-after (outer.txt)",
        ],
        "{logs:#?}"
    );
}

#[tokio::test]
async fn eager_commits_as_it_ends_and_off_never_commits() {
    let h = harness().await;
    let c = h.load(TXN).await;
    let out = h.run(&c, "modes", json!({})).await;
    assert_eq!(state_of(&out), "COMPLETED/Completed", "{:?}", out.failure);
    let logs = h.logs(&out.flow_run_id).await;
    let lines: Vec<&String> = logs
        .iter()
        .filter(|l| {
            l.starts_with("committed") || l.starts_with("rolled back") || l.starts_with("outer:")
        })
        .collect();
    assert_eq!(
        lines,
        [
            "committed write-eager (eager.txt)",
            "rolled back write-lazy: deleted outer.txt (lazy)",
            "outer: false",
            "rolled back write-off: deleted off.txt (off)",
        ],
        "{logs:#?}"
    );
}

#[tokio::test]
async fn cache_records_are_written_when_the_transaction_commits_only() {
    let h = harness().await;
    let c = h.load(TXN).await;
    let contents = format!("c-{}", uuid::Uuid::now_v7());
    let failed = h
        .run(
            &c,
            "cache_inside",
            json!({"contents": contents, "fail": true}),
        )
        .await;
    assert_eq!(state_of(&failed), "FAILED/Failed");
    let first = h
        .run(
            &c,
            "cache_inside",
            json!({"contents": contents, "fail": false}),
        )
        .await;
    assert_eq!(
        state_of(&first),
        "COMPLETED/Completed",
        "{:?}",
        first.failure
    );
    let tasks = h.store().task_runs(&first.flow_run_id).await.unwrap();
    assert_eq!(
        tasks[0].state.name, "Completed",
        "the rolled-back run left no record"
    );
    let again = h
        .run(
            &c,
            "cache_inside",
            json!({"contents": contents, "fail": false}),
        )
        .await;
    let tasks = h.store().task_runs(&again.flow_run_id).await.unwrap();
    assert_eq!(
        tasks[0].state.name, "Cached",
        "the committed run's record is used"
    );
    assert_eq!(again.value, first.value);

    // A commit hook that fails rolls its task back, and its record is not written.
    let contents = format!("r-{}", uuid::Uuid::now_v7());
    let refused = h.run(&c, "refused", json!({"contents": contents})).await;
    assert_eq!(
        state_of(&refused),
        "COMPLETED/Completed",
        "{:?}",
        refused.failure
    );
    let logs = h.logs(&refused.flow_run_id).await;
    assert!(
        logs.iter().any(|l| l
            .contains("An error was encountered while running commit hook(s) 'failing_commit'")
            && l.contains("the commit hook refuses")),
        "{logs:#?}"
    );
    assert!(
        logs.iter()
            .any(|l| l.starts_with("rolled back ") && l.contains("refused.txt")),
        "{logs:#?}"
    );
    let again = h.run(&c, "refused", json!({"contents": contents})).await;
    let tasks = h.store().task_runs(&again.flow_run_id).await.unwrap();
    assert_eq!(tasks[0].state.name, "Completed", "no record was written");
}

#[tokio::test]
async fn a_task_outside_transactions_commits_as_it_completes() {
    let h = harness().await;
    let c = h.load(TXN).await;
    let out = h.run(&c, "outside", json!({})).await;
    assert_eq!(state_of(&out), "COMPLETED/Completed", "{:?}", out.failure);
    let logs = h.logs(&out.flow_run_id).await;
    assert!(
        logs.iter().any(|l| l == "committed write-alone (-)"),
        "{logs:#?}"
    );
    assert!(transactions(&h, &out.flow_run_id).await.is_empty());
    let def = c.task("write_file").expect("task");
    assert_eq!(def.options.on_commit, ["announce"]);
    assert_eq!(def.options.on_rollback, ["delete_file", "second_undo"]);
}

/// kill -9 while a task inside a transaction runs: the next node replays the run, the
/// task completed before is not run again, and the transaction commits once.
#[tokio::test]
async fn a_node_killed_inside_a_transaction_replays_it_and_commits_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = crate::support::database_url(dir.path()).await;
    let args = ["--lease-seconds", "1", "--grace-seconds", "0"];
    let node = Node::start(dir.path(), db.as_deref(), "a", &args).await;
    let ws = node.workspace("txn").await;
    let digest = node.upload(&ws.key, TXN).await;
    node.deploy(
        &ws.key,
        json!({"name": "long", "component": digest, "flow": "long_transaction",
               "parameters": {"ms": 2500}}),
    )
    .await;
    let (status, run) = node
        .post("/api/deployments/long/runs", &ws.key, json!({}))
        .await;
    assert_eq!(status, 201, "{run}");
    let id = run["id"].as_str().unwrap().to_owned();
    // Killed once the slow task runs (the first write completed before it).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, tasks) = node
            .get(&format!("/api/flow-runs/{id}/task-runs"), &ws.key)
            .await;
        let running = tasks["items"].as_array().is_some_and(|t| {
            t.iter()
                .any(|t| t["task"] == "slow" && t["state"]["type"] == "RUNNING")
        });
        if running {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the slow task never ran: {tasks}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    node.kill().await;

    let node = Node::start(dir.path(), db.as_deref(), "b", &args).await;
    let done = node
        .wait_final_within(&ws.key, &id, Duration::from_secs(60))
        .await;
    assert_eq!(done["state"]["type"], "COMPLETED", "{done}");
    let (_, tasks) = node
        .get(&format!("/api/flow-runs/{id}/task-runs"), &ws.key)
        .await;
    let items = tasks["items"].as_array().unwrap();
    let writes: Vec<&Value> = items.iter().filter(|t| t["task"] == "write_file").collect();
    assert_eq!(
        writes.len(),
        2,
        "the first write replayed, not run again: {tasks}"
    );
    let (_, txns) = node
        .get(&format!("/api/flow-runs/{id}/transactions"), &ws.key)
        .await;
    let txns = txns["items"].as_array().unwrap().clone();
    assert_eq!(txns.len(), 1, "one transaction, carried on: {txns:?}");
    assert_eq!(txns[0]["state"], "committed");
    assert_eq!(txns[0]["key"], "long");
    assert!(
        items.iter().all(|t| t["transaction_id"] == txns[0]["id"]),
        "{tasks}"
    );
    let (_, logs) = node
        .get(&format!("/api/flow-runs/{id}/logs"), &ws.key)
        .await;
    let committed: Vec<String> = logs["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["message"].as_str())
        .filter(|m| m.starts_with("committed "))
        .map(str::to_owned)
        .collect();
    assert_eq!(
        committed,
        [
            "committed write-before (long.txt)",
            "committed slow-0 (long.txt)",
            "committed write-after (long.txt)"
        ],
        "each commit hook ran once: {logs}"
    );
    node.kill().await;
}

#[tokio::test]
async fn a_retried_flow_runs_a_rolled_back_transaction_anew() {
    let h = harness().await;
    let c = h.load(TXN).await;
    let out = h.run(&c, "retried", json!({})).await;
    assert_eq!(state_of(&out), "COMPLETED/Completed", "{:?}", out.failure);
    let tasks = h.store().task_runs(&out.flow_run_id).await.unwrap();
    let writes: Vec<&str> = tasks
        .iter()
        .filter(|t| t.task_name == "write_file")
        .map(|t| t.name.as_str())
        .collect();
    assert_eq!(
        writes,
        ["write-attempt 1", "write-attempt 2"],
        "run anew, not replayed"
    );
    let logs = h.logs(&out.flow_run_id).await;
    let lines: Vec<&String> = logs
        .iter()
        .filter(|l| l.starts_with("committed") || l.starts_with("rolled back"))
        .collect();
    assert_eq!(
        lines,
        [
            "rolled back write-attempt 1: deleted retried.txt (attempt 1)",
            "committed write-attempt 2 (retried.txt)",
        ],
        "{logs:#?}"
    );
    let states: Vec<_> = transactions(&h, &out.flow_run_id)
        .await
        .into_iter()
        .map(|t| t.state)
        .collect();
    use weir::model::run::TransactionState::{Committed, RolledBack};
    assert_eq!(states, [RolledBack, Committed]);
}

#[tokio::test]
async fn misuse_of_the_interface_gets_clear_errors() {
    let h = harness().await;
    let c = h.load(TXN).await;
    let out = h.run(&c, "misuse", json!({})).await;
    assert_eq!(state_of(&out), "COMPLETED/Completed", "{:?}", out.failure);
    let errors: Vec<String> = serde_json::from_str(out.value.as_deref().unwrap()).unwrap();
    let expected = [
        "a transaction key is 1 to 1024 bytes, not 5000",
        "lock_timeout_seconds must be a non-negative number, not -1",
        "transactions end in the reverse order they began: end the inner one first",
        "the transaction has ended already",
        "the value is not JSON",
        "at most 64 transactions may be open at once in a flow run",
        "cannot begin the transaction: transactions are opened by flows",
    ];
    assert_eq!(errors.len(), expected.len(), "{errors:#?}");
    for (error, want) in errors.iter().zip(expected) {
        assert!(
            error.starts_with(want),
            "{error:?} should start with {want:?}"
        );
    }
    // Nothing was left open: 2 + 64 transactions, each ended.
    let txns = transactions(&h, &out.flow_run_id).await;
    assert_eq!(txns.len(), 66);
    assert!(txns.iter().all(|t| t.ended.is_some()), "{txns:?}");
}
