//! Cancelling a flow run reaches everything under it: its running subflow runs and task
//! runs end Cancelled within about a second, and `on_cancellation` hooks run.

use crate::support::server::{TestServer, Ws};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const BASIC: &str = "guest_basic";

async fn setup(s: &TestServer, name: &str) -> (Ws, String) {
    let ws = s.workspace(name).await;
    let digest = s.upload(&ws.key, BASIC).await;
    (ws, digest)
}

async fn task_runs(s: &TestServer, key: &str, id: &str) -> Vec<Value> {
    let (_, page) = s.get(&format!("/api/flow-runs/{id}/task-runs"), key).await;
    page["items"].as_array().cloned().unwrap_or_default()
}

async fn subflows(s: &TestServer, key: &str, id: &str) -> Vec<Value> {
    let (_, page) = s.get("/api/flow-runs?limit=500", key).await;
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["parent_flow_run_id"] == id)
        .cloned()
        .collect()
}

async fn logs(s: &TestServer, key: &str, id: &str) -> Vec<String> {
    let (_, page) = s.get(&format!("/api/flow-runs/{id}/logs"), key).await;
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["message"].as_str().unwrap().to_owned())
        .collect()
}

async fn wait_for_log(s: &TestServer, key: &str, id: &str, line: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let lines = logs(s, key, id).await;
        if lines.iter().any(|l| l == line) {
            return;
        }
        assert!(Instant::now() < deadline, "no log {line:?} in {lines:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn all_running(tasks: &[Value]) -> bool {
    !tasks.is_empty() && tasks.iter().all(|t| t["state"]["type"] == "RUNNING")
}

#[tokio::test]
async fn cancelling_a_run_cancels_its_subflow_and_task_runs_and_runs_hooks() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let (ws, digest) = setup(&s, "cancel-tree").await;
    s.deploy(
        &ws.key,
        json!({"name": "tree", "component": digest, "flow": "cancel_parent",
               "parameters": {"millis": 60000}}),
    )
    .await;
    let (_, run) = s
        .post("/api/deployments/tree/runs", &ws.key, json!({}))
        .await;
    let id = run["id"].as_str().unwrap().to_owned();

    // The parent's submitted task and the subflow's called task are both under way.
    let deadline = Instant::now() + Duration::from_secs(20);
    let child = loop {
        let children = subflows(&s, &ws.key, &id).await;
        if let Some(child) = children.first() {
            let child_id = child["id"].as_str().unwrap().to_owned();
            if all_running(&task_runs(&s, &ws.key, &id).await)
                && all_running(&task_runs(&s, &ws.key, &child_id).await)
            {
                break child_id;
            }
        }
        assert!(Instant::now() < deadline, "the run tree never got going");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };

    let (status, body) = s
        .post(&format!("/api/flow-runs/{id}/cancel"), &ws.key, json!({}))
        .await;
    assert_eq!(status, 202, "{body}");
    // Its tasks sleep a minute: ending well before, the tree was interrupted.
    let parent = s
        .wait_final_within(&ws.key, &id, Duration::from_secs(15))
        .await;
    let sub = s
        .wait_final_within(&ws.key, &child, Duration::from_secs(15))
        .await;
    let parent_tasks = task_runs(&s, &ws.key, &id).await;
    let child_tasks = task_runs(&s, &ws.key, &child).await;

    assert_eq!(parent["state"]["type"], "CANCELLED", "{parent}");
    assert_eq!(sub["state"]["type"], "CANCELLED", "{sub}");
    assert_eq!(sub["state"]["message"], "the parent flow run was cancelled");
    assert!(sub["end_time"].is_string(), "{sub}");
    for t in parent_tasks.iter().chain(&child_tasks) {
        assert_eq!(t["state"]["type"], "CANCELLED", "{t}");
        assert!(t["end_time"].is_string(), "{t}");
    }
    assert_eq!((parent_tasks.len(), child_tasks.len()), (1, 1));

    // Both flows' on_cancellation hooks ran, each on its own run.
    wait_for_log(&s, &ws.key, &id, "cancel hook: cancel-parent Cancelled").await;
    wait_for_log(&s, &ws.key, &child, "cancel hook: cancel-child Cancelled").await;
    s.stop().await;
}

#[tokio::test]
async fn a_paused_run_can_be_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let (ws, digest) = setup(&s, "cancel-paused").await;
    s.deploy(
        &ws.key,
        json!({"name": "plain", "component": digest, "flow": "plain_pause",
               "parameters": {"timeout": 120}}),
    )
    .await;
    let (_, run) = s
        .post("/api/deployments/plain/runs", &ws.key, json!({}))
        .await;
    let id = run["id"].as_str().unwrap().to_owned();
    s.wait_for(&ws.key, &id, |r| r["state"]["type"] == "PAUSED")
        .await;
    let (status, _) = s
        .post(&format!("/api/flow-runs/{id}/cancel"), &ws.key, json!({}))
        .await;
    assert_eq!(status, 202);
    // The pause waits two minutes: ending well before, the cancel ended it.
    let run = s
        .wait_final_within(&ws.key, &id, Duration::from_secs(15))
        .await;
    assert_eq!(run["state"]["type"], "CANCELLED", "{run}");
    let (status, _) = s
        .post(&format!("/api/flow-runs/{id}/resume"), &ws.key, json!({}))
        .await;
    assert_eq!(status, 409);
    s.stop().await;
}
