//! Global concurrency and rate limits used from inside flows and tasks (Prefect's
//! `concurrency("db", occupy=...)` and `rate_limit("api")`): never exceeded by racing
//! runs on two nodes, rate limits spacing calls, clear errors, and slots that come back
//! after a node is killed.

use super::*;
use crate::support::node::Node;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use weir::orchestrate::{FlowRequest, Orchestrator};

const OPTIONS: &str = "guest_options";

fn pairs(out: &weir::orchestrate::FlowOutcome) -> Vec<(u64, u64)> {
    serde_json::from_str(out.value.as_deref().expect("a value")).expect("intervals")
}

fn max_overlap(intervals: &[(u64, u64)]) -> usize {
    intervals
        .iter()
        .map(|(start, _)| {
            intervals
                .iter()
                .filter(|(s, e)| s <= start && start < e)
                .count()
        })
        .max()
        .unwrap_or(0)
}

/// Waits until no slot of the limit is occupied (slots are given back as the block ends).
async fn until_free(store: &weir::store::Store, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let used = store.global_limit_in_use("", name).await.unwrap();
        if used == 0.0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{used} slots of {name} still occupied"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limit_of_two_is_never_exceeded_by_twenty_runs_racing_on_two_nodes() {
    let h = harness().await;
    let store = h.store().clone();
    store
        .put_global_limit("", "db", 2, None, true)
        .await
        .unwrap();
    // A second node: its own orchestrator (and node id) on the same database.
    let other = Orchestrator::new(h.orch.engine().clone(), store.clone());
    let c = h.load(OPTIONS).await;
    let runs: Vec<_> = (0..20)
        .map(|i| {
            let orch: Arc<Orchestrator> = if i % 2 == 0 {
                h.orch.clone()
            } else {
                other.clone()
            };
            let c = c.clone();
            tokio::spawn(async move {
                orch.run_flow(FlowRequest::new(c, "limited", json!({"ms": 40})))
                    .await
                    .expect("run created")
            })
        })
        .collect();
    let mut intervals = Vec::new();
    for run in runs {
        let out = run.await.unwrap();
        assert_eq!(state_of(&out), "COMPLETED/Completed", "{:?}", out.failure);
        let (start, end): (u64, u64) = serde_json::from_str(out.value.as_deref().unwrap()).unwrap();
        intervals.push((start, end));
    }
    assert!(max_overlap(&intervals) <= 2, "{intervals:?}");
    until_free(&store, "db").await;
}

#[tokio::test]
async fn tasks_occupy_slots_and_wait_their_turn() {
    let h = harness().await;
    h.store()
        .put_global_limit("", "db", 1, None, true)
        .await
        .unwrap();
    let c = h.load(OPTIONS).await;
    let out = h.run(&c, "limited_tasks", json!({"n": 4, "ms": 30})).await;
    assert_eq!(state_of(&out), "COMPLETED/Completed", "{:?}", out.failure);
    let intervals = pairs(&out);
    assert_eq!(intervals.len(), 4);
    assert_eq!(max_overlap(&intervals), 1, "{intervals:?}");
    let logs = h.logs(&out.flow_run_id).await;
    assert!(
        logs.iter()
            .any(|l| l == "waiting for 1 slot(s) of concurrency limit(s) db"),
        "a waiting run says so: {logs:#?}"
    );
}

#[tokio::test]
async fn a_rate_limit_spaces_calls_at_its_decay_rate() {
    let h = harness().await;
    // One slot, ten coming back a second: a call every 100 ms.
    h.store()
        .put_global_limit("", "api", 1, Some(10.0), true)
        .await
        .unwrap();
    let c = h.load(OPTIONS).await;
    let out = h.run(&c, "rate_limited", json!({"n": 5})).await;
    assert_eq!(state_of(&out), "COMPLETED/Completed", "{:?}", out.failure);
    let times: Vec<u64> = serde_json::from_str(out.value.as_deref().unwrap()).unwrap();
    for pair in times.windows(2) {
        assert!(pair[1] - pair[0] >= 90, "spaced by the decay: {times:?}");
    }

    // A limit without decay is not a rate limit.
    h.store()
        .put_global_limit("", "api", 1, None, true)
        .await
        .unwrap();
    let out = h.run(&c, "rate_limited", json!({"n": 1})).await;
    assert_eq!(state_of(&out), "FAILED/Failed");
    let message = out.state.message.unwrap_or_default();
    assert!(message.contains("not a rate limit"), "{message}");
}

#[tokio::test]
async fn waiting_times_out_and_missing_limits_are_explained() {
    let h = harness().await;
    let store = h.store().clone();
    store
        .put_global_limit("", "db", 1, None, true)
        .await
        .unwrap();
    let c = h.load(OPTIONS).await;
    // Someone else holds the only slot.
    crate::support::hold_limit_slot(&store, "db").await;
    let started = Instant::now();
    let out = h
        .run(&c, "limited_with_timeout", json!({"seconds": 0.3}))
        .await;
    assert_eq!(state_of(&out), "FAILED/Failed");
    let message = out.state.message.unwrap_or_default();
    assert!(
        message.contains("timed out after 0.3 second(s)"),
        "{message}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    // Given back: the same call goes through.
    store.release_concurrency_slots("holder").await.unwrap();
    let out = h
        .run(&c, "limited_with_timeout", json!({"seconds": 5}))
        .await;
    assert_eq!(state_of(&out), "COMPLETED/Completed", "{:?}", out.failure);

    let out = h.run(&c, "missing_limit", json!({"strict": true})).await;
    assert_eq!(state_of(&out), "FAILED/Failed");
    let message = out.state.message.unwrap_or_default();
    assert!(
        message.contains("no concurrency limit named 'no-such-limit'"),
        "{message}"
    );
    let out = h.run(&c, "odd_limit_name", json!({})).await;
    assert_eq!(state_of(&out), "FAILED/Failed");
    let message = out.state.message.unwrap_or_default();
    assert!(message.contains("is not a limit name"), "{message}");

    let out = h.run(&c, "missing_limit", json!({"strict": false})).await;
    assert_eq!(state_of(&out), "COMPLETED/Completed", "{:?}", out.failure);
    let logs = h.logs(&out.flow_run_id).await;
    assert!(
        logs.iter().any(|l| l.contains("it limits nothing")),
        "{logs:#?}"
    );
}

async fn occupied(node: &Node, key: &str, name: &str) -> f64 {
    let (status, limit) = node
        .get(&format!("/api/global-concurrency-limits/{name}"), key)
        .await;
    assert_eq!(status, 200, "{limit}");
    limit["active_slots"].as_f64().unwrap()
}

#[tokio::test]
async fn limits_are_managed_by_the_api_and_slots_come_back_after_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let db = crate::support::database_url(dir.path()).await;
    let args = ["--lease-seconds", "1", "--grace-seconds", "0"];
    let node = Node::start(dir.path(), db.as_deref(), "a", &args).await;
    let ws = node.workspace("limits").await;
    let other = node.workspace("limits-other").await;

    // The API: checked, listed, private to the workspace.
    let (status, body) = node
        .put(
            "/api/global-concurrency-limits/db",
            &ws.key,
            json!({"limit": -1}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = node
        .put(
            "/api/global-concurrency-limits/db",
            &ws.key,
            json!({"limit": 1, "slot_decay_per_second": -2}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = node
        .put(
            "/api/global-concurrency-limits/db",
            &ws.key,
            json!({"limit": 1}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["limit"], 1);
    assert_eq!(body["active"], true);
    let (status, list) = node.get("/api/global-concurrency-limits", &ws.key).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["items"][0]["name"], "db");
    let (status, _) = node
        .get("/api/global-concurrency-limits/db", &other.key)
        .await;
    assert_eq!(status, 404, "another workspace's limit is not found");

    // A run holds the only slot; the node is killed while it does.
    let digest = node.upload(&ws.key, OPTIONS).await;
    node.deploy(
        &ws.key,
        json!({"name": "hold", "component": digest, "flow": "limited",
               "parameters": {"ms": 3000}}),
    )
    .await;
    let (status, run) = node
        .post("/api/deployments/hold/runs", &ws.key, json!({}))
        .await;
    assert_eq!(status, 201, "{run}");
    let id = run["id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(30);
    while occupied(&node, &ws.key, "db").await < 1.0 {
        assert!(Instant::now() < deadline, "the run never took its slot");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    node.kill().await;

    // The next node gives the dead node's slot back: the run, taken over and run again,
    // takes it anew and completes, and the slot is free afterwards.
    let node = Node::start(dir.path(), db.as_deref(), "b", &args).await;
    let done = node
        .wait_final_within(&ws.key, &id, Duration::from_secs(60))
        .await;
    assert_eq!(done["state"]["type"], "COMPLETED", "{done}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while occupied(&node, &ws.key, "db").await > 0.0 {
        assert!(Instant::now() < deadline, "the slot was not given back");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let status = node
        .req(
            reqwest::Method::DELETE,
            "/api/global-concurrency-limits/db",
            &ws.key,
        )
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 204);
    node.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_waiting_for_slots_is_cancelled_at_once() {
    use crate::support::server::TestServer;
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let ws = s.workspace("limits-cancel").await;
    let (status, body) = s
        .put(
            "/api/global-concurrency-limits/db",
            &ws.key,
            json!({"limit": 1}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let digest = s.upload(&ws.key, OPTIONS).await;
    s.deploy(
        &ws.key,
        json!({"name": "hold", "component": digest, "flow": "limited",
               "parameters": {"ms": 60000}}),
    )
    .await;
    let trigger = || async {
        let (status, run) = s
            .post("/api/deployments/hold/runs", &ws.key, json!({}))
            .await;
        assert_eq!(status, 201, "{run}");
        run["id"].as_str().unwrap().to_owned()
    };
    let first = trigger().await;
    let second = trigger().await;
    // One of them (whichever took the slot second: they start concurrently) waits for
    // the slot the other holds, and says so.
    let deadline = Instant::now() + Duration::from_secs(30);
    'waiting: loop {
        for id in [&first, &second] {
            let (_, logs) = s.get(&format!("/api/flow-runs/{id}/logs"), &ws.key).await;
            let waiting = logs["items"].as_array().is_some_and(|items| {
                items
                    .iter()
                    .any(|l| l["message"] == "waiting for 1 slot(s) of concurrency limit(s) db")
            });
            if waiting {
                break 'waiting;
            }
        }
        assert!(Instant::now() < deadline, "neither run waited");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = Instant::now();
    for id in [&second, &first] {
        let (status, body) = s
            .post(&format!("/api/flow-runs/{id}/cancel"), &ws.key, json!({}))
            .await;
        assert!(status == 200 || status == 202, "{status} {body}");
    }
    for id in [&second, &first] {
        let run = s.wait_final(&ws.key, id).await;
        assert_eq!(run["state"]["type"], "CANCELLED", "{run}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    // Nothing is left occupied.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, limit) = s.get("/api/global-concurrency-limits/db", &ws.key).await;
        if limit["active_slots"] == 0.0 {
            break;
        }
        assert!(Instant::now() < deadline, "{limit}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    s.stop().await;
}
