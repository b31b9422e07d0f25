//! Workspace quotas set by the admin: runs in flight, task slots, memory, storage,
//! components and fuel per hour, each enforced with a clear error while a neighbour
//! workspace without quotas is served as usual, and visible in the API and metrics.

use crate::BASIC;
use crate::support::server::{ADMIN, TestServer};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// A workspace with the basic guest deployed as `name` (flow `flow`).
async fn deployed(s: &TestServer, ws: &str, name: &str, flow: &str) -> String {
    let key = s.workspace(ws).await.key;
    let digest = s.upload(&key, BASIC).await;
    s.deploy(
        &key,
        json!({"name": name, "component": digest, "flow": flow}),
    )
    .await;
    key
}

async fn set_quotas(s: &TestServer, ws: &str, quotas: Value) -> Value {
    let (status, body) = s
        .put(&format!("/api/workspaces/{ws}/quotas"), ADMIN, quotas)
        .await;
    assert_eq!(status, 200, "{body}");
    body
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

/// Every log line of a run, page after page.
async fn all_logs(s: &TestServer, key: &str, run: &str) -> Vec<Value> {
    let mut lines = Vec::new();
    let mut path = format!("/api/flow-runs/{run}/logs?limit=500");
    loop {
        let (status, page) = s.get(&path, key).await;
        assert_eq!(status, 200, "{page}");
        lines.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/api/flow-runs/{run}/logs?limit=500&cursor={c}"),
            None => return lines,
        }
    }
}

fn time(v: &Value, field: &str) -> DateTime<Utc> {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field} in {v}"))
        .parse()
        .unwrap()
}

/// The most intervals (start, end) that overlap at one instant.
fn most_at_once(spans: &[(DateTime<Utc>, DateTime<Utc>)]) -> usize {
    spans
        .iter()
        .map(|(at, _)| spans.iter().filter(|(s, e)| s <= at && at < e).count())
        .max()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_are_set_by_the_admin_checked_and_shown_with_usage() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let key = deployed(&s, "tenant", "steady", "map_flow").await;

    let (status, body) = s.get("/api/workspaces/tenant/quotas", ADMIN).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["quotas"]["runs_in_flight"], Value::Null, "{body}");
    assert_eq!(body["usage"]["components"], 1, "{body}");

    let body = set_quotas(
        &s,
        "tenant",
        json!({"runs_in_flight": 3, "memory_mb": 512, "fuel_per_hour": 1_000_000_000_000_i64}),
    )
    .await;
    assert_eq!(body["quotas"]["runs_in_flight"], 3, "{body}");
    assert_eq!(body["quotas"]["task_slots"], Value::Null, "{body}");

    // Out of range, unknown fields, another's token, an unknown workspace.
    let (status, p) = s
        .put(
            "/api/workspaces/tenant/quotas",
            ADMIN,
            json!({"memory_mb": -1, "components": 2_000_000}),
        )
        .await;
    assert_eq!(status, 422, "{p}");
    assert_eq!(p["errors"].as_array().unwrap().len(), 2, "{p}");
    let (status, _) = s
        .put("/api/workspaces/tenant/quotas", ADMIN, json!({"cpus": 2}))
        .await;
    assert_eq!(status, 422);
    let (status, _) = s
        .put("/api/workspaces/tenant/quotas", &key, json!({}))
        .await;
    assert_eq!(status, 401, "a workspace key cannot set quotas");
    let (status, _) = s.get("/api/workspaces/nobody/quotas", ADMIN).await;
    assert_eq!(status, 404);

    // The workspace sees its own quotas and usage; fuel is counted as its runs execute.
    let run = trigger(&s, &key, "steady", json!({"n": 5})).await;
    let run = s.wait_final(&key, &run).await;
    assert_eq!(run["state"]["type"], "COMPLETED", "{run}");
    let (status, usage) = s.get("/api/usage", &key).await;
    assert_eq!(status, 200, "{usage}");
    assert_eq!(usage["workspace"], "tenant", "{usage}");
    assert_eq!(usage["quotas"]["memory_mb"], 512, "{usage}");
    let fuel = usage["usage"]["fuel_this_hour"].as_u64().unwrap();
    assert!(fuel > 0, "{usage}");

    // Metering is deterministic: the same run again burns the same fuel.
    let run = trigger(&s, &key, "steady", json!({"n": 5})).await;
    s.wait_final(&key, &run).await;
    let (_, again) = s.get("/api/usage", &key).await;
    let second = again["usage"]["fuel_this_hour"].as_u64().unwrap() - fuel;
    let tolerance = fuel / 100;
    assert!(
        second.abs_diff(fuel) <= tolerance,
        "the same run burnt {fuel} then {second} fuel"
    );

    // Metrics name the workspace's fuel.
    let (status, metrics) = s.get("/metrics", ADMIN).await;
    assert_eq!(status, 200);
    let metrics = metrics.as_str().unwrap().to_owned();
    assert!(
        metrics.contains("weir_workspace_fuel_this_hour{workspace="),
        "{metrics}"
    );

    // None at all lifts them.
    let body = set_quotas(&s, "tenant", json!({})).await;
    assert_eq!(body["quotas"]["memory_mb"], Value::Null, "{body}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_past_the_quota_of_runs_in_flight_wait_their_turn() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let key = deployed(&s, "limited", "nap", "nap").await;
    let free = deployed(&s, "free", "nap", "nap").await;
    set_quotas(&s, "limited", json!({"runs_in_flight": 1})).await;

    let mut runs = Vec::new();
    for _ in 0..3 {
        runs.push(trigger(&s, &key, "nap", json!({"millis": 300})).await);
    }
    let neighbours: Vec<String> = {
        let mut v = Vec::new();
        for _ in 0..3 {
            v.push(trigger(&s, &free, "nap", json!({"millis": 300})).await);
        }
        v
    };
    let mut spans = Vec::new();
    for id in &runs {
        let run = s.wait_final(&key, id).await;
        assert_eq!(run["state"]["type"], "COMPLETED", "{run}");
        spans.push((time(&run, "start_time"), time(&run, "end_time")));
    }
    assert_eq!(most_at_once(&spans), 1, "one run at a time: {spans:?}");
    let mut spans = Vec::new();
    for id in &neighbours {
        let run = s.wait_final(&free, id).await;
        spans.push((time(&run, "start_time"), time(&run, "end_time")));
    }
    assert!(
        most_at_once(&spans) > 1,
        "the neighbour's runs are not held back: {spans:?}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_slot_quota_bounds_the_tasks_running_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let key = deployed(&s, "slotted", "hog", "slot_hog").await;
    set_quotas(&s, "slotted", json!({"task_slots": 2})).await;
    let id = trigger(&s, &key, "hog", json!({"n": 6, "millis": 200})).await;
    let run = s.wait_final(&key, &id).await;
    assert_eq!(run["state"]["type"], "COMPLETED", "{run}");
    let (_, tasks) = s
        .get(&format!("/api/flow-runs/{id}/task-runs?limit=100"), &key)
        .await;
    let spans: Vec<_> = tasks["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (time(t, "start_time"), time(t, "end_time")))
        .collect();
    assert_eq!(spans.len(), 6, "{tasks}");
    assert_eq!(most_at_once(&spans), 2, "{spans:?}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_quota_is_shared_by_the_workspaces_instances() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let key = deployed(&s, "small", "crowd", "memory_crowd").await;
    let free = deployed(&s, "roomy", "crowd", "memory_crowd").await;
    set_quotas(&s, "small", json!({"memory_mb": 100})).await;
    let params = json!({"n": 4, "mib": 40, "millis": 500});
    let (mine, theirs) = tokio::join!(
        async {
            let id = trigger(&s, &key, "crowd", params.clone()).await;
            s.wait_final(&key, &id).await
        },
        async {
            let id = trigger(&s, &free, "crowd", params.clone()).await;
            s.wait_final(&free, &id).await
        }
    );
    assert_eq!(mine["state"]["type"], "COMPLETED", "{mine}");
    let (ok, failed) = (&mine["result"][0], mine["result"][1].as_array().unwrap());
    assert!(ok.as_u64().unwrap() >= 1, "{mine}");
    assert!(
        !failed.is_empty(),
        "four 40 MiB tasks cannot fit 100 MiB: {mine}"
    );
    for f in failed {
        assert!(
            f.as_str()
                .unwrap()
                .contains("the workspace's memory quota (100 MiB"),
            "{f}"
        );
    }
    assert_eq!(
        theirs["result"][0], 4,
        "the neighbour has no quota: {theirs}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storage_quota_drops_logs_and_refuses_new_runs() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let key = deployed(&s, "wordy", "flood", "log_flood").await;
    set_quotas(&s, "wordy", json!({"storage_mb": 1})).await;
    // About 2 MiB of logs: the second half is dropped, with one notice.
    let id = trigger(&s, &key, "flood", json!({"lines": 2000})).await;
    let run = s.wait_final(&key, &id).await;
    assert_eq!(run["state"]["type"], "COMPLETED", "{run}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let notice = loop {
        let logs = all_logs(&s, &key, &id).await;
        let found = logs
            .iter()
            .find(|l| {
                l["message"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("storage quota (1 MiB")
            })
            .cloned();
        if let Some(l) = found {
            assert!(logs.len() < 1000, "logs past the quota are dropped");
            break l;
        }
        assert!(
            Instant::now() < deadline,
            "no storage notice in {} lines",
            logs.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(notice["level"], "WARNING", "{notice}");
    let (_, usage) = s.get("/api/usage", &key).await;
    let stored = usage["usage"]["storage_bytes"].as_u64().unwrap();
    assert!(
        (1 << 20..(1 << 20) + (64 << 10)).contains(&stored),
        "{usage}"
    );
    let (status, p) = s
        .post(
            "/api/deployments/flood/runs",
            &key,
            json!({"parameters": {"lines": 1}}),
        )
        .await;
    assert_eq!(status, 403, "{p}");
    assert!(
        p["detail"].as_str().unwrap().contains("storage quota"),
        "{p}"
    );
    // Raised, the workspace runs again.
    set_quotas(&s, "wordy", json!({"storage_mb": 100})).await;
    trigger(&s, &key, "flood", json!({"lines": 1})).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_quota_refuses_new_components_only() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let key = s.workspace("tidy").await.key;
    set_quotas(&s, "tidy", json!({"components": 1})).await;
    s.upload(&key, BASIC).await;
    // The same bytes again are no new component.
    s.upload(&key, BASIC).await;
    let bytes = std::fs::read(crate::support::guest("hello")).unwrap();
    let (status, p) = crate::support::server::send(
        s.req(reqwest::Method::POST, "/api/components", &key)
            .header("content-type", "application/wasm")
            .body(bytes),
    )
    .await;
    assert_eq!(status, 403, "{p}");
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("holds 1 components, its quota"),
        "{p}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_fuel_quota_stops_the_workspaces_instances_not_the_neighbours() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let key = deployed(&s, "burner", "spin", "spin_forever").await;
    let free = deployed(&s, "calm", "steady", "map_flow").await;
    set_quotas(&s, "burner", json!({"fuel_per_hour": 20_000_000})).await;
    let id = trigger(&s, &key, "spin", json!({})).await;
    let run = s.wait_final(&key, &id).await;
    assert_eq!(run["state"]["type"], "FAILED", "{run}");
    let message = run["state"]["message"].as_str().unwrap();
    assert!(
        message.contains("CPU quota (20000000 fuel an hour) is spent"),
        "{message}"
    );
    let (_, usage) = s.get("/api/usage", &key).await;
    assert!(
        usage["usage"]["fuel_this_hour"].as_u64().unwrap() >= 20_000_000,
        "{usage}"
    );
    // Spent, the next run stops at its first tick; the neighbour runs.
    let id = trigger(&s, &key, "spin", json!({})).await;
    let again = s.wait_final(&key, &id).await;
    assert_eq!(again["state"]["type"], "FAILED", "{again}");
    let id = trigger(&s, &free, "steady", json!({"n": 3})).await;
    let theirs = s.wait_final(&free, &id).await;
    assert_eq!(theirs["state"]["type"], "COMPLETED", "{theirs}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_shows_and_changes_quotas() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let key = s.workspace("cli-tenant").await.key;
    let weir = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_weir"))
            .args(args)
            .env("WEIR_API_URL", &s.url)
            .env("WEIR_API_KEY", &key)
            .env("WEIR_ADMIN_TOKEN", ADMIN)
            .output()
            .expect("run weir");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, out, err) = weir(&[
        "workspace",
        "quota",
        "cli-tenant",
        "--memory-mb",
        "256",
        "--components",
        "3",
        "--json",
    ]);
    assert!(ok, "{out}{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["quotas"]["memory_mb"], 256, "{report}");
    // Given quotas replace theirs only; `none` removes one.
    let (ok, out, err) = weir(&["workspace", "quota", "cli-tenant", "--components", "none"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("memory MiB") && out.contains("256"), "{out}");
    let (ok, out, err) = weir(&["workspace", "usage", "--json"]);
    assert!(ok, "{out}{err}");
    let usage: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(usage["quotas"]["memory_mb"], 256, "{usage}");
    assert_eq!(usage["quotas"]["components"], Value::Null, "{usage}");
    let (ok, _, err) = weir(&["workspace", "quota", "cli-tenant", "--task-slots", "many"]);
    assert!(!ok);
    assert!(err.contains("--task-slots must be a whole number"), "{err}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quota_of_runs_in_flight_holds_across_two_nodes() {
    use crate::support::node::Node;
    if !crate::support::postgres() {
        eprintln!("two nodes need PostgreSQL (WEIR_TEST_DB=postgres); skipped on SQLite");
        return;
    }
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    let db = crate::support::database_url(dir_a.path()).await.unwrap();
    let a = Node::start(dir_a.path(), Some(&db), "node-a", &[]).await;
    std::fs::copy(
        dir_a.path().join("secret.key"),
        dir_b.path().join("secret.key"),
    )
    .unwrap();
    let b = Node::start(dir_b.path(), Some(&db), "node-b", &[]).await;
    let key = a.workspace("shared").await.key;
    let digest = a.upload(&key, BASIC).await;
    a.deploy(
        &key,
        json!({"name": "nap", "component": digest, "flow": "nap"}),
    )
    .await;
    let (status, body) = a
        .put(
            "/api/workspaces/shared/quotas",
            ADMIN,
            json!({"runs_in_flight": 1}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // Node b reads it within a second.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, q) = b.get("/api/workspaces/shared/quotas", ADMIN).await;
        if q["quotas"]["runs_in_flight"] == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "node b never saw the quota: {q}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut runs = Vec::new();
    for i in 0..6 {
        let node = if i % 2 == 0 { &a } else { &b };
        let (status, run) = node
            .post(
                "/api/deployments/nap/runs",
                &key,
                json!({"parameters": {"millis": 200}}),
            )
            .await;
        assert_eq!(status, 201, "{run}");
        runs.push(run["id"].as_str().unwrap().to_owned());
    }
    let mut spans = Vec::new();
    let mut nodes = std::collections::HashSet::new();
    for id in &runs {
        let run = a.wait_final_within(&key, id, Duration::from_secs(60)).await;
        assert_eq!(run["state"]["type"], "COMPLETED", "{run}");
        nodes.insert(run["node_id"].as_str().unwrap().to_owned());
        spans.push((time(&run, "start_time"), time(&run, "end_time")));
    }
    assert_eq!(nodes.len(), 2, "both nodes ran some");
    assert_eq!(
        most_at_once(&spans),
        1,
        "one at a time across nodes: {spans:?}"
    );
}
