//! Work queues inside pools (Prefect's work queues): under a full pool, waiting runs start
//! by their queue's priority, then by expected start; a queue's own limit and pause hold;
//! the API, the CLI's deployment file field and the checks.

use crate::support::server::TestServer;
use serde_json::{Value, json};
use std::time::Duration;

fn start(run: &Value) -> String {
    run["start_time"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_pool_starts_waiting_runs_by_queue_priority_then_expected_start() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let ws = s.workspace("queues").await;
    let digest = s.upload(&ws.key, crate::BASIC).await;
    let (status, _) = s
        .post(
            "/api/pools",
            &ws.key,
            json!({"name": "one", "concurrency_limit": 1}),
        )
        .await;
    assert_eq!(status, 201);
    for (name, priority) in [("low", 10), ("high", 1)] {
        let (status, q) = s
            .put(
                &format!("/api/pools/one/queues/{name}"),
                &ws.key,
                json!({"priority": priority}),
            )
            .await;
        assert_eq!(status, 200, "{q}");
        assert_eq!(q["priority"], priority);
    }
    let (_, queues) = s.get("/api/pools/one/queues", &ws.key).await;
    let names: Vec<&str> = queues["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["default", "high", "low"],
        "by priority, then name: {queues}"
    );

    for (name, queue, millis) in [
        ("blocker", "default", 1200),
        ("low", "low", 50),
        ("high", "high", 50),
    ] {
        s.deploy(
            &ws.key,
            json!({"name": name, "component": digest, "flow": "nap", "pool": "one",
                   "work_queue": queue, "parameters": {"millis": millis}}),
        )
        .await;
    }
    let blocker = s.trigger(&ws.key, "blocker").await;
    // The blocker holds the pool's only slot; low-priority runs are created first.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (_, r) = s.get(&format!("/api/flow-runs/{blocker}"), &ws.key).await;
        if r["state"]["type"] == "RUNNING" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{r}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut lows = Vec::new();
    for _ in 0..3 {
        lows.push(s.trigger(&ws.key, "low").await);
    }
    let mut highs = Vec::new();
    for _ in 0..3 {
        highs.push(s.trigger(&ws.key, "high").await);
    }
    let mut starts = Vec::new();
    for id in lows.iter().chain(&highs) {
        let done = s.wait_final(&ws.key, id).await;
        assert_eq!(done["state"]["type"], "COMPLETED", "{done}");
        starts.push((start(&done), id.clone()));
    }
    starts.sort();
    let order: Vec<&str> = starts
        .iter()
        .map(|(_, id)| if highs.contains(id) { "high" } else { "low" })
        .collect();
    assert_eq!(
        order,
        ["high", "high", "high", "low", "low", "low"],
        "{starts:?}"
    );
    // Within a queue, by expected start (here: creation).
    let high_order: Vec<&String> = starts
        .iter()
        .filter(|(_, id)| highs.contains(id))
        .map(|(_, id)| id)
        .collect();
    assert_eq!(high_order, highs.iter().collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_limit_and_pause_hold_and_bad_queues_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let ws = s.workspace("queue-limits").await;
    let digest = s.upload(&ws.key, crate::BASIC).await;
    // A queue of the default pool, one run at a time.
    let (status, q) = s
        .put(
            "/api/pools/default/queues/serial",
            &ws.key,
            json!({"concurrency_limit": 1}),
        )
        .await;
    assert_eq!(status, 200, "{q}");
    assert_eq!(q["priority"], 1);
    assert_eq!(q["concurrency_limit"], 1);
    // Checks: a bad priority, an unknown field, an unknown pool, a queue that does not exist.
    let (status, body) = s
        .put(
            "/api/pools/default/queues/serial",
            &ws.key,
            json!({"priority": 0}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = s
        .put(
            "/api/pools/default/queues/serial",
            &ws.key,
            json!({"priorty": 2}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let (status, _) = s.put("/api/pools/nope/queues/q", &ws.key, json!({})).await;
    assert_eq!(status, 404);
    let (status, body) = s
        .post(
            "/api/deployments",
            &ws.key,
            json!({"name": "lost", "component": digest, "flow": "nap", "work_queue": "nowhere"}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body.to_string().contains("no work queue named 'nowhere'"),
        "{body}"
    );

    let d = s
        .deploy(
            &ws.key,
            json!({"name": "serial", "component": digest, "flow": "nap",
                   "work_queue": "serial", "parameters": {"millis": 150}}),
        )
        .await;
    assert_eq!(d["work_queue"], "serial");
    let ids: Vec<String> = {
        let mut v = Vec::new();
        for _ in 0..4 {
            v.push(s.trigger(&ws.key, "serial").await);
        }
        v
    };
    let mut spans = Vec::new();
    for id in &ids {
        let done = s.wait_final(&ws.key, id).await;
        assert_eq!(done["state"]["type"], "COMPLETED", "{done}");
        spans.push((start(&done), done["end_time"].as_str().unwrap().to_owned()));
    }
    spans.sort();
    for pair in spans.windows(2) {
        assert!(pair[1].0 >= pair[0].1, "one at a time: {spans:?}");
    }
    // A used queue is not deleted; the default queue never is.
    assert_eq!(
        s.delete("/api/pools/default/queues/serial", &ws.key).await,
        409
    );
    assert_eq!(
        s.delete("/api/pools/default/queues/default", &ws.key).await,
        409
    );

    // A paused queue holds its runs until it is resumed.
    let (status, _) = s
        .put(
            "/api/pools/default/queues/serial",
            &ws.key,
            json!({"paused": true}),
        )
        .await;
    assert_eq!(status, 200);
    let held = s.trigger(&ws.key, "serial").await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let (_, r) = s.get(&format!("/api/flow-runs/{held}"), &ws.key).await;
    assert_eq!(r["state"]["type"], "SCHEDULED", "{r}");
    let (status, _) = s
        .put(
            "/api/pools/default/queues/serial",
            &ws.key,
            json!({"paused": false}),
        )
        .await;
    assert_eq!(status, 200);
    let done = s.wait_final(&ws.key, &held).await;
    assert_eq!(done["state"]["type"], "COMPLETED", "{done}");
}
