//! Durable execution with the real `weir server` binary: kill -9 at random points and
//! restart (completed tasks replay, never run again; every run ends), bounded crash
//! restarts, claims raced by two stores, and on PostgreSQL two nodes, one frozen with
//! SIGSTOP past its lease, taken over, its late writes rejected.

use crate::support::node::{Event, Node, Witness};
use crate::support::server::{Api, Ws};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

const BASIC: &str = "guest_basic";

/// A small random number generator: the kill points differ from run to run, and the
/// seed is printed so a failure can be replayed.
struct Lcg(u64);

impl Lcg {
    fn from_clock() -> Self {
        let seed = std::env::var("WEIR_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| chrono::Utc::now().timestamp_micros() as u64);
        eprintln!("kill points seed: {seed} (set WEIR_TEST_SEED to replay)");
        Self(seed)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

async fn deploy_five(api: &Api, ws: &Ws, witness: &str, millis: u64, limit: Option<u64>) {
    let digest = api.upload(&ws.key, BASIC).await;
    let mut spec = json!({
        "name": "five", "component": digest, "flow": "durable_five",
        "parameters": {"url": witness, "millis": millis},
        "capabilities": {"allowed_hosts": ["127.0.0.1"]},
    });
    if let Some(limit) = limit {
        spec["concurrency_limit"] = json!(limit);
    }
    api.deploy(&ws.key, spec).await;
}

async fn trigger(api: &Api, ws: &Ws) -> String {
    let (status, run) = api
        .post("/api/deployments/five/runs", &ws.key, json!({}))
        .await;
    assert_eq!(status, 201, "{run}");
    run["id"].as_str().unwrap().to_owned()
}

async fn task_runs(api: &Api, ws: &Ws, run: &str) -> Vec<Value> {
    let (status, page) = api
        .get(&format!("/api/flow-runs/{run}/task-runs"), &ws.key)
        .await;
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().unwrap().clone()
}

/// For every run: each of its five steps has exactly one completed task run, and no
/// step's body started after that completion (a completed task never runs again).
/// Returns how many task attempts ended Crashed (interrupted by a kill).
async fn assert_each_step_completed_once(
    api: &Api,
    ws: &Ws,
    runs: &[String],
    events: &[Event],
) -> usize {
    let mut interrupted = 0;
    for run in runs {
        let tasks = task_runs(api, ws, run).await;
        for t in &tasks {
            let state = t["state"]["type"].as_str().unwrap();
            assert!(
                matches!(state, "COMPLETED" | "CRASHED" | "CANCELLED"),
                "a task run of {run} was left {state}: {t}"
            );
            if state == "CRASHED" {
                interrupted += 1;
            }
        }
        for step in 0..5u64 {
            let completed: Vec<&Value> = tasks
                .iter()
                .filter(|t| {
                    t["position"] == json!(step) && t["state"]["type"] == json!("COMPLETED")
                })
                .collect();
            assert_eq!(
                completed.len(),
                1,
                "step {step} of run {run} completed {} times: {tasks:#?}",
                completed.len()
            );
            let done_at: chrono::DateTime<chrono::Utc> =
                serde_json::from_value(completed[0]["end_time"].clone()).unwrap();
            let starts: Vec<&Event> = events
                .iter()
                .filter(|e| e.kind == "start" && e.run == *run && e.step == step)
                .collect();
            assert!(!starts.is_empty(), "step {step} of run {run} never started");
            for s in starts {
                assert!(
                    s.at <= done_at,
                    "step {step} of run {run} ran again at {} after it completed at {done_at}",
                    s.at
                );
            }
        }
    }
    interrupted
}

async fn wait_final(api: &Api, ws: &Ws, run: &str, within: Duration) -> Value {
    let deadline = std::time::Instant::now() + within;
    loop {
        let (status, r) = api.get(&format!("/api/flow-runs/{run}"), &ws.key).await;
        assert_eq!(status, 200, "{r}");
        let t = r["state"]["type"].as_str().unwrap_or_default().to_owned();
        if matches!(t.as_str(), "COMPLETED" | "FAILED" | "CANCELLED" | "CRASHED") {
            return r;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "run {run} is still {t}: {r}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_points_replays_completed_tasks_and_every_run_ends() {
    let dir = tempfile::tempdir().unwrap();
    let db = crate::support::database_url(dir.path()).await;
    let witness = Witness::default();
    let witness_url = witness.start().await;
    let args = [
        "--lease-seconds",
        "1",
        "--max-crash-restarts",
        "1000",
        "--grace-seconds",
        "0",
    ];
    let mut node = Node::start(dir.path(), db.as_deref(), "n0", &args).await;
    let ws = node.workspace("durable").await;
    deploy_five(&node, &ws, &witness_url, 40, Some(3)).await;

    let mut rng = Lcg::from_clock();
    let mut runs = Vec::new();
    let rounds = 12;
    for round in 1..=rounds {
        runs.push(trigger(&node, &ws).await);
        runs.push(trigger(&node, &ws).await);
        tokio::time::sleep(Duration::from_millis(20 + rng.below(400))).await;
        node.kill().await;
        node = Node::start(dir.path(), db.as_deref(), &format!("n{round}"), &args).await;
    }
    let mut crashes = 0;
    for run in &runs {
        let r = wait_final(&node, &ws, run, Duration::from_secs(60)).await;
        assert_eq!(r["state"]["type"], "COMPLETED", "{r}");
        assert_eq!(r["result"], json!(10), "{r}");
        crashes += r["crash_count"].as_i64().unwrap();
    }
    let interrupted = assert_each_step_completed_once(&node, &ws, &runs, &witness.events()).await;
    assert!(
        crashes > 0 && interrupted > 0,
        "the kills never landed inside a run ({crashes} takeovers, {interrupted} interrupted tasks)"
    );
    // No slot stayed taken: nothing is active, and the deployment's limit of 3 still
    // lets three runs through at once.
    assert_eq!(node.metric("weir_flow_runs_active").await, 0.0);
    let more = [
        trigger(&node, &ws).await,
        trigger(&node, &ws).await,
        trigger(&node, &ws).await,
    ];
    for run in &more {
        let r = wait_final(&node, &ws, run, Duration::from_secs(30)).await;
        assert_eq!(r["state"]["type"], "COMPLETED", "{r}");
    }
    eprintln!(
        "{} runs over {rounds} kills: {crashes} takeovers, {interrupted} interrupted task attempts",
        runs.len()
    );
    node.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_node_keeps_dying_ends_crashed_past_the_restart_limit() {
    let dir = tempfile::tempdir().unwrap();
    let db = crate::support::database_url(dir.path()).await;
    let witness = Witness::default();
    let witness_url = witness.start().await;
    let args = ["--lease-seconds", "1", "--max-crash-restarts", "1"];
    let mut node = Node::start(dir.path(), db.as_deref(), "a0", &args).await;
    let ws = node.workspace("crashy").await;
    deploy_five(&node, &ws, &witness_url, 400, None).await;
    let run = trigger(&node, &ws).await;
    let mut since = chrono::Utc::now();
    for round in 1..=2 {
        // Killed while running a step (the first time, or again after its takeover).
        witness
            .wait_until("a step starting on the latest node", |e| {
                e.iter().any(|e| e.kind == "start" && e.at > since)
            })
            .await;
        node.kill().await;
        since = chrono::Utc::now();
        node = Node::start(dir.path(), db.as_deref(), &format!("a{round}"), &args).await;
    }
    let r = wait_final(&node, &ws, &run, Duration::from_secs(30)).await;
    assert_eq!(r["state"]["type"], "CRASHED", "{r}");
    assert_eq!(r["crash_count"], 2, "{r}");
    let message = r["state"]["message"].as_str().unwrap();
    assert!(
        message.contains("stopped 2 times") && message.contains("at most 1 restarts"),
        "{message}"
    );
    for t in task_runs(&node, &ws, &run).await {
        assert_ne!(t["state"]["type"], "RUNNING", "{t}");
    }
    // The last node never ran a step of it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !witness
            .events()
            .iter()
            .any(|e| e.kind == "start" && e.at > since),
        "a step ran after the restart limit"
    );
    node.kill().await;
}

/// Many due runs nobody holds, claimed by two stores at once in small batches: every
/// run goes to exactly one of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_raced_from_two_stores_never_give_a_run_to_both() {
    let dir = tempfile::tempdir().unwrap();
    let a = crate::support::open_store(dir.path()).await;
    let b = crate::support::open_store(dir.path()).await;
    let now = chrono::Utc::now();
    let runs: Vec<weir::store::FlowRunRecord> = (0..400)
        .map(|i| weir::store::FlowRunRecord {
            id: uuid::Uuid::now_v7().to_string(),
            name: format!("race-{i}"),
            flow_name: "f".into(),
            flow_function: None,
            component_digest: "d".into(),
            parameters: json!({}),
            tags: vec![],
            parent_flow_run_id: None,
            parent_position: None,
            state: weir::model::state::State::new(weir::model::state::StateType::Scheduled),
            run_count: 0,
            result: None,
            created: now,
            start_time: None,
            end_time: None,
            workspace_id: Some("ws".into()),
            deployment_id: Some("dep".into()),
            idempotency_key: Some(format!("k{i}")),
            expected_start: Some(now),
            schedule_id: None,
            node_id: None,
            fence: 0,
            crash_count: 0,
        })
        .collect();
    a.insert_flow_runs_once(&runs).await.unwrap();
    let claim = |store: weir::store::Store, node: &'static str| async move {
        let mut mine = Vec::new();
        loop {
            let got = store
                .claim_due(node, chrono::Utc::now(), 7)
                .await
                .expect("claim");
            if got.is_empty() {
                return mine;
            }
            for r in got {
                assert_eq!(r.node_id.as_deref(), Some(node));
                assert_eq!(r.fence, 1, "claimed once");
                mine.push(r.id);
            }
        }
    };
    let (from_a, from_b) = tokio::join!(
        tokio::spawn(claim(a.clone(), "a")),
        tokio::spawn(claim(b.clone(), "b"))
    );
    let (from_a, from_b) = (from_a.unwrap(), from_b.unwrap());
    let set_a: HashSet<_> = from_a.iter().collect();
    let set_b: HashSet<_> = from_b.iter().collect();
    assert_eq!(set_a.len(), from_a.len());
    assert_eq!(set_b.len(), from_b.len());
    assert!(
        set_a.is_disjoint(&set_b),
        "a run was claimed by both stores"
    );
    assert_eq!(
        set_a.len() + set_b.len(),
        runs.len(),
        "every run was claimed"
    );
    eprintln!("claims: {} by a, {} by b", set_a.len(), set_b.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_runs_and_a_frozen_node_is_taken_over_its_late_writes_rejected() {
    if !crate::support::postgres() {
        eprintln!("two nodes need PostgreSQL (WEIR_TEST_DB=postgres); skipped on SQLite");
        return;
    }
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    let db = crate::support::database_url(dir_a.path()).await.unwrap();
    let witness = Witness::default();
    let witness_url = witness.start().await;
    let args = ["--lease-seconds", "2"];
    let a = Node::start(dir_a.path(), Some(&db), "node-a", &args).await;
    // The second node shares the first one's secret key.
    for f in std::fs::read_dir(dir_a.path()).unwrap() {
        let f = f.unwrap();
        let name = f.file_name().to_string_lossy().into_owned();
        if name == "secret.key" {
            std::fs::copy(f.path(), dir_b.path().join(&name)).unwrap();
        }
    }
    let b = Node::start(dir_b.path(), Some(&db), "node-b", &args).await;
    let ws = a.workspace("pair").await;
    deploy_five(&a, &ws, &witness_url, 0, None).await;
    // The component went to node a; node b finds it in the database.

    // Runs due a moment from now, nobody's yet: the two nodes race to claim them.
    let at = (chrono::Utc::now() + chrono::Duration::seconds(6)).to_rfc3339();
    let mut runs = Vec::new();
    for i in 0..30 {
        let api: &Api = if i % 2 == 0 { &a } else { &b };
        let (status, run) = api
            .post(
                "/api/deployments/five/runs",
                &ws.key,
                json!({"scheduled_at": at}),
            )
            .await;
        assert_eq!(status, 201, "{run}");
        assert!(run["node_id"].is_null(), "not claimed ahead of time: {run}");
        runs.push(run["id"].as_str().unwrap().to_owned());
    }
    let mut by_node: HashMap<String, usize> = HashMap::new();
    for run in &runs {
        let r = wait_final(&a, &ws, run, Duration::from_secs(30)).await;
        assert_eq!(r["state"]["type"], "COMPLETED", "{r}");
        *by_node
            .entry(r["node_id"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    let events = witness.events();
    for run in &runs {
        for step in 0..5 {
            let starts = events
                .iter()
                .filter(|e| e.kind == "start" && e.run == *run && e.step == step)
                .count();
            assert_eq!(starts, 1, "step {step} of {run} ran {starts} times");
        }
    }
    eprintln!("runs claimed per node: {by_node:?}");

    // A limit of one run at a time holds across both nodes.
    let patch = |millis: u64| {
        a.req(reqwest::Method::PATCH, "/api/deployments/five", &ws.key)
            .json(
                &json!({"parameters": {"url": witness_url, "millis": millis},
                          "concurrency_limit": 1}),
            )
            .send()
    };
    assert_eq!(patch(30).await.unwrap().status().as_u16(), 200);
    let mut limited = Vec::new();
    for _ in 0..2 {
        limited.push(trigger(&a, &ws).await);
        limited.push(trigger(&b, &ws).await);
    }
    let mut spans = Vec::new();
    for run in &limited {
        let r = wait_final(&a, &ws, run, Duration::from_secs(30)).await;
        assert_eq!(r["state"]["type"], "COMPLETED", "{r}");
        let events = witness.events();
        let first = events.iter().filter(|e| e.run == *run).map(|e| e.at).min();
        let last = events.iter().filter(|e| e.run == *run).map(|e| e.at).max();
        spans.push((first.unwrap(), last.unwrap(), r["node_id"].clone()));
    }
    spans.sort_by_key(|s| s.0);
    for pair in spans.windows(2) {
        assert!(
            pair[0].1 <= pair[1].0,
            "two runs of a deployment limited to one ran at once: {pair:?}"
        );
    }
    let nodes: HashSet<_> = spans.iter().map(|s| s.2.to_string()).collect();
    assert_eq!(nodes.len(), 2, "both nodes ran some: {spans:?}");

    // A run held by node a (with the deployment's one slot); a freezes mid-step, b
    // takes the run and its slot over after the lease.
    assert_eq!(patch(400).await.unwrap().status().as_u16(), 200);
    let run = trigger(&a, &ws).await;
    let (_, r) = a.get(&format!("/api/flow-runs/{run}"), &ws.key).await;
    assert_eq!(r["node_id"], "node-a", "{r}");
    witness
        .wait_until("step 1 of the run on node a", |e| {
            e.iter()
                .any(|e| e.kind == "start" && e.run == run && e.step == 1)
        })
        .await;
    // Its task run is stored as running before node a freezes.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !task_runs(&a, &ws, &run)
        .await
        .iter()
        .any(|t| t["position"] == json!(1) && t["state"]["type"] == json!("RUNNING"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "step 1 never showed as running"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    a.freeze();
    let frozen_at = std::time::Instant::now();
    let r = wait_final(&b, &ws, &run, Duration::from_secs(30)).await;
    assert!(
        frozen_at.elapsed() >= Duration::from_secs(2),
        "taken over before the lease ran out"
    );
    assert_eq!(r["state"]["type"], "COMPLETED", "{r}");
    assert_eq!(r["node_id"], "node-b", "{r}");
    assert_eq!(r["crash_count"], 1, "{r}");
    assert_eq!(r["result"], json!(10), "{r}");
    let before = task_runs(&b, &ws, &run).await;
    let a_attempt = before
        .iter()
        .find(|t| t["position"] == json!(1) && t["state"]["type"] == json!("CRASHED"))
        .unwrap_or_else(|| panic!("node a's attempt at step 1 ended Crashed: {before:#?}"))
        .clone();

    // Node a wakes up, finishes the step it was in and tries to record it: rejected.
    a.thaw();
    witness
        .wait_until("node a finishing its step late", |e| {
            e.iter()
                .filter(|e| e.kind == "done" && e.run == run && e.step == 1)
                .count()
                >= 2
        })
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = task_runs(&b, &ws, &run).await;
    let still = after.iter().find(|t| t["id"] == a_attempt["id"]).unwrap();
    assert_eq!(
        still["state"]["type"], "CRASHED",
        "node a's late completion was written: {still}"
    );
    assert_eq!(after.len(), before.len(), "node a added task runs late");
    let (_, r2) = b.get(&format!("/api/flow-runs/{run}"), &ws.key).await;
    assert_eq!(
        r2["state"], r["state"],
        "node a changed the run's state late"
    );
    assert_eq!(r2["node_id"], "node-b");
    let log = std::fs::read_to_string(dir_a.path().join("node-node-a.log")).unwrap();
    assert!(
        log.contains("late writes to it are rejected"),
        "node a never noticed it lost the run:\n{log}"
    );
    // Node a giving up the run gave back nothing of node b's: the slot is free and
    // the next run goes through.
    assert_eq!(patch(0).await.unwrap().status().as_u16(), 200);
    let next = trigger(&b, &ws).await;
    let r = wait_final(&b, &ws, &next, Duration::from_secs(30)).await;
    assert_eq!(r["state"]["type"], "COMPLETED", "{r}");

    // A cancel sent to one node reaches the run another node is running.
    assert_eq!(patch(400).await.unwrap().status().as_u16(), 200);
    let far = trigger(&b, &ws).await;
    witness
        .wait_until("the run on node b starting", |e| {
            e.iter().any(|e| e.kind == "start" && e.run == far)
        })
        .await;
    let (status, body) = a
        .post(&format!("/api/flow-runs/{far}/cancel"), &ws.key, json!({}))
        .await;
    assert_eq!(status, 202, "{body}");
    let r = wait_final(&a, &ws, &far, Duration::from_secs(10)).await;
    assert_eq!(r["state"]["type"], "CANCELLED", "{r}");
    assert_eq!(r["node_id"], "node-b");
    a.kill().await;
    b.kill().await;
}
