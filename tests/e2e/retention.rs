//! Retention through the real server: a deployment keeping its newest runs, a
//! workspace keeping runs for days (the clock moved by hand), each deleting whole run
//! trees with their task runs, logs, artifacts and stored bytes, never a run in flight
//! and never another workspace's; the API, the CLI and the UI saying what is kept.

use crate::BASIC;
use crate::support::server::TestServer;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use weir::schedule::ManualClock;

/// A server whose retention passes every 100 ms, with no grace after a run ends.
async fn start(dir: &std::path::Path, clock: Option<Arc<ManualClock>>) -> TestServer {
    TestServer::start_with(dir, move |c| {
        c.retention.every = Duration::from_millis(100);
        c.retention.grace = Duration::ZERO;
        if let Some(clock) = clock {
            c.clock = clock;
        }
    })
    .await
}

async fn trigger(s: &TestServer, key: &str, deployment: &str, parameters: Value) -> String {
    let (status, run) = s
        .post(
            &format!("/api/deployments/{deployment}/runs"),
            key,
            json!({ "parameters": parameters }),
        )
        .await;
    assert_eq!(status, 201, "{run}");
    run["id"].as_str().unwrap().to_owned()
}

/// The workspace's flow runs (subflows too), newest first.
async fn runs(s: &TestServer, key: &str) -> Vec<Value> {
    let (status, page) = s.get("/api/flow-runs?limit=500", key).await;
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().unwrap().clone()
}

fn ids(runs: &[Value]) -> Vec<String> {
    runs.iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn run_ids(s: &TestServer, key: &str) -> Vec<String> {
    ids(&runs(s, key).await)
}

/// The subflows of a run.
async fn subflows_of(s: &TestServer, key: &str, id: &str) -> Vec<String> {
    let all = runs(s, key).await;
    let children: Vec<Value> = all
        .into_iter()
        .filter(|r| r["parent_flow_run_id"] == id)
        .collect();
    ids(&children)
}

/// Waits until the workspace holds exactly `n` flow runs.
async fn until_runs(s: &TestServer, key: &str, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ids = run_ids(s, key).await;
        if ids.len() == n {
            return ids;
        }
        assert!(
            Instant::now() < deadline,
            "{} runs left, expected {n}",
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn storage_bytes(s: &TestServer, key: &str) -> u64 {
    let (status, usage) = s.get("/api/usage", key).await;
    assert_eq!(status, 200, "{usage}");
    usage["usage"]["storage_bytes"].as_u64().unwrap()
}

/// Waits until the workspace's stored bytes satisfy `pred` (nodes sync them each second).
async fn until_storage(s: &TestServer, key: &str, what: &str, pred: impl Fn(u64) -> bool) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let n = storage_bytes(s, key).await;
        if pred(n) {
            return n;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: storage stayed at {n} bytes"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_keeps_its_newest_runs_with_everything_they_hold() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), None).await;
    let key = s.workspace("keeper").await.key;
    let digest = s.upload(&key, BASIC).await;
    let d = s
        .deploy(
            &key,
            json!({"name": "nested", "component": digest, "flow": "parent",
                   "retention": {"runs": 2}}),
        )
        .await;
    assert_eq!(d["retention"], json!({"days": null, "runs": 2}), "{d}");
    s.deploy(
        &key,
        json!({"name": "loud", "component": digest, "flow": "log_flood"}),
    )
    .await;

    // Two runs of a deployment without a policy of its own, in a workspace without one:
    // kept whatever happens to the other deployment's.
    let mut loud = Vec::new();
    for _ in 0..2 {
        let id = trigger(&s, &key, "loud", json!({"lines": 5})).await;
        assert_eq!(s.wait_final(&key, &id).await["state"]["type"], "COMPLETED");
        loud.push(id);
    }
    // Each `parent` run has two subflows `child`, each with a task: a deleted run's
    // tree goes with it. Each run's subflows are read while it is the newest (kept).
    let mut nested = Vec::new();
    let mut children: Vec<Vec<String>> = Vec::new();
    for _ in 0..5 {
        let id = trigger(&s, &key, "nested", json!({})).await;
        let run = s.wait_final(&key, &id).await;
        assert_eq!(run["state"]["type"], "COMPLETED", "{run}");
        children.push(subflows_of(&s, &key, &id).await);
        assert_eq!(children.last().unwrap().len(), 2);
        nested.push(id);
    }

    // 2 loud + 2 kept parents with 2 subflows each.
    let left = until_runs(&s, &key, 2 + 2 * 3).await;
    for (id, subflows) in nested[..3].iter().zip(&children) {
        assert!(!left.contains(id));
        let (status, _) = s.get(&format!("/api/flow-runs/{id}"), &key).await;
        assert_eq!(status, 404, "run {id} was deleted");
        let (status, _) = s.get(&format!("/api/flow-runs/{id}/logs"), &key).await;
        assert_eq!(status, 404);
        let (status, _) = s.get(&format!("/api/flow-runs/{id}/task-runs"), &key).await;
        assert_eq!(status, 404);
        for child in subflows {
            let (status, _) = s.get(&format!("/api/flow-runs/{child}"), &key).await;
            assert_eq!(status, 404, "subflow {child} went with its parent");
        }
    }
    for (id, subflows) in nested[3..].iter().zip(&children[3..]) {
        assert!(left.contains(id), "run {id} is kept");
        for child in subflows {
            assert!(left.contains(child), "subflow {child} is kept");
        }
    }
    for id in &loud {
        assert!(left.contains(id), "run {id} is kept");
    }
    let (_, tasks) = s
        .get(
            &format!("/api/flow-runs/{}/task-runs", children[4][0]),
            &key,
        )
        .await;
    assert!(!tasks["items"].as_array().unwrap().is_empty(), "{tasks}");

    let (status, report) = s.get("/api/retention", &key).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        report["runs_deleted"], 9,
        "3 runs with 2 subflows each: {report}"
    );
    assert!(report["last_deleted"].is_string(), "{report}");
    assert_eq!(report["deployments"][0]["name"], "nested", "{report}");
    assert_eq!(
        report["deployments"][0]["summary"], "the newest 2 finished runs are kept",
        "{report}"
    );
    assert_eq!(report["summary"], "finished runs are kept until deleted");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workspace_keeps_runs_for_days_and_its_storage_goes_down() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(chrono::Utc::now());
    let s = start(dir.path(), Some(clock.clone())).await;
    let key = s.workspace("daily").await.key;
    let other = s.workspace("neighbour").await.key;
    for k in [&key, &other] {
        let digest = s.upload(k, BASIC).await;
        for (name, flow) in [
            ("loud", "log_flood"),
            ("drawn", "big_artifact"),
            ("waits", "plain_pause"),
        ] {
            s.deploy(k, json!({"name": name, "component": digest, "flow": flow}))
                .await;
        }
    }
    let (status, report) = s.put("/api/retention", &key, json!({"days": 1})).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["summary"], "finished runs are kept 1 day");
    assert_eq!(report["policy"], json!({"days": 1, "runs": null}));

    let mut finished = Vec::new();
    for k in [&key, &other] {
        for _ in 0..2 {
            let id = trigger(&s, k, "loud", json!({"lines": 20})).await;
            assert_eq!(s.wait_final(k, &id).await["state"]["type"], "COMPLETED");
            let id = trigger(&s, k, "drawn", json!({"kib": 4})).await;
            let run = s.wait_final(k, &id).await;
            assert_eq!(run["result"], "created", "{run}");
            if k == &key {
                finished.push(id);
            }
        }
    }
    // A run in flight is never deleted, however old.
    let paused = trigger(&s, &key, "waits", json!({"timeout": 7 * 86_400})).await;
    s.wait_for(&key, &paused, |r| r["state"]["type"] == "PAUSED")
        .await;
    let before = until_storage(&s, &key, "stored", |n| n > 40_000).await;
    let neighbour_before = until_storage(&s, &other, "the neighbour's", |n| n > 40_000).await;
    // Within the day nothing goes.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(run_ids(&s, &key).await.len(), 5);

    clock.advance(chrono::Duration::days(2));
    let left = until_runs(&s, &key, 1).await;
    assert_eq!(left, vec![paused.clone()]);
    for id in &finished {
        let (status, _) = s.get(&format!("/api/flow-runs/{id}/artifacts"), &key).await;
        assert_eq!(status, 404, "the run and its artifacts are gone");
    }
    let (status, page) = s.get("/api/artifacts?key=big", &key).await;
    assert!(
        status == 404 || page["items"].as_array().is_some_and(|a| a.is_empty()),
        "{status} {page}"
    );
    let after = until_storage(&s, &key, "after retention", |n| n < before / 10).await;
    assert!(after < before, "{after} < {before}");
    // The neighbour has no policy: all of its runs and bytes are kept.
    assert_eq!(run_ids(&s, &other).await.len(), 4);
    assert!(storage_bytes(&s, &other).await >= neighbour_before);

    // Once the paused run ends, it is as old as the policy allows (the clock is two days
    // ahead), so it goes too.
    let (status, body) = s
        .post(&format!("/api/flow-runs/{paused}/resume"), &key, json!({}))
        .await;
    assert!(status == 200 || status == 202, "{status} {body}");
    until_runs(&s, &key, 0).await;
    let (_, report) = s.get("/api/retention", &key).await;
    assert_eq!(report["runs_deleted"], 5, "{report}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_are_checked_and_a_deployment_hands_its_runs_back() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), None).await;
    let key = s.workspace("checked").await.key;
    for (body, field) in [
        (json!({"days": 0}), "'days' must be from 1 to 36500"),
        (json!({"runs": -2}), "'runs' must be from 1 to 100000000"),
        (json!({"days": 36501}), "'days'"),
        (json!({"days": "7"}), "days"),
        (json!({"days": 1.5}), "not an integer"),
        (json!({"keep": 3}), "keep"),
    ] {
        let (status, problem) = s.put("/api/retention", &key, body.clone()).await;
        assert_eq!(status, 422, "{body}: {problem}");
        assert!(problem.to_string().contains(field), "{body}: {problem}");
    }
    let (_, report) = s.get("/api/retention", &key).await;
    assert_eq!(
        report["policy"],
        json!({"days": null, "runs": null}),
        "nothing was stored"
    );

    let digest = s.upload(&key, BASIC).await;
    let (status, problem) = s
        .post(
            "/api/deployments",
            &key,
            json!({"name": "bad", "component": digest, "flow": "parent",
                   "retention": {"runs": 0}}),
        )
        .await;
    assert_eq!(status, 422, "{problem}");
    assert!(
        problem.to_string().contains("'retention.runs'"),
        "{problem}"
    );
    let (status, problem) = s
        .post(
            "/api/deployments",
            &key,
            json!({"name": "bad", "component": digest, "flow": "parent",
                   "retention": [1]}),
        )
        .await;
    assert_eq!(status, 422, "{problem}");

    s.deploy(
        &key,
        json!({"name": "own", "component": digest, "flow": "parent",
               "retention": {"days": 3, "runs": 10}}),
    )
    .await;
    let (_, report) = s.get("/api/retention", &key).await;
    assert_eq!(
        report["deployments"][0]["summary"],
        "finished runs are kept 3 days, at most the newest 10"
    );
    let (status, d) = s
        .patch("/api/deployments/own", &key, json!({"retention": {}}))
        .await;
    assert_eq!(status, 200, "{d}");
    assert_eq!(d["retention"], json!({"days": null, "runs": null}));
    let (_, report) = s.get("/api/retention", &key).await;
    assert_eq!(report["deployments"], json!([]), "{report}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_default_holds_where_a_workspace_sets_none() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start_with(dir.path(), |c| {
        c.retention.every = Duration::from_millis(100);
        c.retention.grace = Duration::ZERO;
        c.retention.default.runs = Some(1);
    })
    .await;
    let plain = s.workspace("plain").await.key;
    let own = s.workspace("own").await.key;
    let (status, _) = s.put("/api/retention", &own, json!({"runs": 3})).await;
    assert_eq!(status, 200);
    for k in [&plain, &own] {
        let digest = s.upload(k, BASIC).await;
        s.deploy(
            k,
            json!({"name": "echo", "component": digest, "flow": "echo_flow"}),
        )
        .await;
        for x in 0..4 {
            let id = trigger(&s, k, "echo", json!({"x": x})).await;
            s.wait_final(k, &id).await;
        }
    }
    let kept = until_runs(&s, &plain, 1).await;
    let (_, run) = s.get(&format!("/api/flow-runs/{}", kept[0]), &plain).await;
    assert_eq!(run["parameters"]["x"], 3, "the newest is kept: {run}");
    until_runs(&s, &own, 3).await;
    let (_, report) = s.get("/api/retention", &plain).await;
    assert_eq!(report["server_default"], json!({"days": null, "runs": 1}));
    assert_eq!(report["effective"], json!({"days": null, "runs": 1}));
    assert_eq!(report["summary"], "only the newest finished run is kept");
    s.stop().await;
}

/// Two nodes on one PostgreSQL database delete the same workspace's runs at once: each
/// run is deleted, and counted, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_the_deletions_and_count_each_once() {
    if !crate::support::postgres() {
        eprintln!("two nodes need PostgreSQL (WEIR_TEST_DB=postgres); skipped on SQLite");
        return;
    }
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    let db = crate::support::database_url(dir_a.path()).await.unwrap();
    let a = start(dir_a.path(), None).await;
    let shared = db.clone();
    let b = TestServer::start_with(dir_b.path(), move |c| {
        c.db = Some(shared);
        c.retention.every = Duration::from_millis(100);
        c.retention.grace = Duration::ZERO;
    })
    .await;
    let key = a.workspace("pair").await.key;
    let digest = a.upload(&key, BASIC).await;
    a.deploy(
        &key,
        json!({"name": "echo", "component": digest, "flow": "echo_flow"}),
    )
    .await;
    const RUNS: usize = 40;
    let mut ids = Vec::new();
    for i in 0..RUNS {
        let node = if i % 2 == 0 { &a } else { &b };
        ids.push(trigger(node, &key, "echo", json!({"x": i})).await);
    }
    for (i, id) in ids.iter().enumerate() {
        let node = if i % 2 == 0 { &a } else { &b };
        node.wait_final(&key, id).await;
    }
    // Every run is finished before the policy says to keep only the newest.
    let (status, _) = b.put("/api/retention", &key, json!({"runs": 1})).await;
    assert_eq!(status, 200);
    until_runs(&a, &key, 1).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, report) = a.get("/api/retention", &key).await;
        if report["runs_deleted"] == RUNS - 1 {
            break;
        }
        assert!(
            report["runs_deleted"].as_u64().unwrap() < RUNS as u64,
            "counted twice: {report}"
        );
        assert!(Instant::now() < deadline, "{report}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    b.stop().await;
    a.stop().await;
}

/// The automation runs of `automation` (one per event that fired it), newest first.
async fn automation_runs(s: &TestServer, key: &str, automation: &str) -> Vec<Value> {
    let (status, page) = s
        .get(&format!("/api/automations/{automation}/runs"), key)
        .await;
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().unwrap().clone()
}

/// Automation runs (one per event that fired an automation) are kept by their
/// workspace's policy too, the newest of each automation; other workspaces keep theirs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn automation_runs_are_kept_by_the_workspaces_policy() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), None).await;
    let (ws, other) = (s.workspace("events").await, s.workspace("neighbour").await);
    for key in [&ws.key, &other.key] {
        let (status, body) = s
            .post(
                "/api/automations",
                key,
                json!({"name": "seen", "trigger": {"type": "event"},
                       "actions": [{"type": "do-nothing"}]}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        for i in 0..5 {
            let status = s
                .req(reqwest::Method::POST, "/api/automations/seen/events", key)
                .header("idempotency-key", format!("event-{i}"))
                .json(&json!({"i": i}))
                .send()
                .await
                .unwrap()
                .status();
            assert_eq!(status, 202);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    for key in [&ws.key, &other.key] {
        while automation_runs(&s, key, "seen")
            .await
            .iter()
            .filter(|r| r["state"] == "completed")
            .count()
            < 5
        {
            assert!(Instant::now() < deadline, "the events never all fired");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let (status, report) = s.put("/api/retention", &ws.key, json!({"runs": 2})).await;
    assert_eq!(status, 200, "{report}");
    let kept = loop {
        let runs = automation_runs(&s, &ws.key, "seen").await;
        if runs.len() == 2 {
            break runs;
        }
        assert!(
            Instant::now() < deadline,
            "{} automation runs left, expected 2",
            runs.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // The newest two: the last two events.
    let bodies: Vec<&Value> = kept.iter().map(|r| &r["event"]["body"]["i"]).collect();
    assert_eq!(bodies, [&json!(4), &json!(3)], "{kept:?}");
    assert_eq!(automation_runs(&s, &other.key, "seen").await.len(), 5);
    s.stop().await;
}
