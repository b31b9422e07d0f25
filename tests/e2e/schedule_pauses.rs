//! Pausing or deleting a schedule, or pausing a deployment, stops the runs the scheduler
//! already created ahead of time: they end Cancelled saying why, on whichever node holds
//! them, and none of them executes; runs triggered by hand are kept; resuming creates
//! runs again from then on.
//!
//! Runs go to a paused pool, so a run a node claimed stays in its executor, waiting for a
//! slot, until the test lets the pool go: that is the run a pause must take back.

use crate::support::server::{ADMIN, Api, TestServer, Ws, send};
use chrono::{DateTime, Duration as Span, Utc};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use weir::schedule::{Clock, ManualClock, SchedulerConfig};

async fn start(dir: &std::path::Path, clock: &Arc<ManualClock>, horizon_s: u64) -> TestServer {
    start_node(dir, clock, horizon_s, None).await
}

async fn start_node(
    dir: &std::path::Path,
    clock: &Arc<ManualClock>,
    horizon_s: u64,
    node_id: Option<&str>,
) -> TestServer {
    let clock = clock.clone();
    let node_id = node_id.map(str::to_owned);
    TestServer::start_with(dir, move |c| {
        if let Some(id) = node_id {
            c.node.node_id = id;
        }
        c.clock = clock;
        c.run_scheduler = false;
        c.scheduler = SchedulerConfig {
            horizon: Duration::from_secs(horizon_s),
            grace: Duration::from_secs(5),
            ..SchedulerConfig::default()
        };
    })
    .await
}

/// A workspace with deployment `d` (map_flow) in the paused pool `held`.
async fn held_deployment(s: &TestServer, name: &str) -> Ws {
    let ws = s.workspace(name).await;
    let digest = s.upload(&ws.key, "guest_basic").await;
    let (status, body) = s
        .post(
            "/api/pools",
            &ws.key,
            json!({"name": "held", "paused": true}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    s.deploy(
        &ws.key,
        json!({"name": "d", "component": digest, "flow": "map_flow",
               "parameters": {"n": 1}, "pool": "held"}),
    )
    .await;
    ws
}

async fn set_pool_paused(api: &Api, key: &str, paused: bool) {
    let (status, body) = send(
        api.req(reqwest::Method::PATCH, "/api/pools/held", key)
            .json(&json!({"paused": paused})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

async fn set_deployment_paused(api: &Api, key: &str, paused: bool) {
    let (status, body) = send(
        api.req(reqwest::Method::PATCH, "/api/deployments/d", key)
            .json(&json!({"paused": paused})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["paused"], paused);
}

/// An interval schedule of `d` whose first fire time is a moment from now (real time:
/// the executor waits on the system clock), with the scheduler's clock set to now.
async fn schedule(api: &Api, clock: &ManualClock, key: &str, every_s: u64) -> String {
    clock.set(Utc::now());
    let anchor = Utc::now() + Span::milliseconds(300);
    let (status, body) = api
        .post(
            "/api/deployments/d/schedules",
            key,
            json!({"interval_seconds": every_s, "anchor_date": anchor.to_rfc3339()}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

async fn runs(api: &Api, key: &str) -> Vec<Value> {
    let (status, page) = api.get("/api/flow-runs?limit=500", key).await;
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().unwrap().clone()
}

async fn run(api: &Api, key: &str, id: &str) -> Value {
    let (status, run) = api.get(&format!("/api/flow-runs/{id}"), key).await;
    assert_eq!(status, 200, "{run}");
    run
}

fn id_of(run: &Value) -> &str {
    run["id"].as_str().unwrap()
}

fn expected_start(run: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(run["expected_start"].as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc)
}

/// Asserts a run ended Cancelled with `message`, recorded in its history, and never
/// started.
async fn assert_cancelled_unstarted(api: &Api, key: &str, id: &str, message: &str) {
    let run = run(api, key, id).await;
    assert_eq!(run["state"]["type"], "CANCELLED", "{run}");
    assert_eq!(run["state"]["message"], message, "{run}");
    let history = run["state_history"].as_array().unwrap();
    let last = history.last().unwrap();
    assert_eq!(
        (&last["type"], &last["message"]),
        (&json!("CANCELLED"), &json!(message)),
        "the change is in the run's history: {run}"
    );
    assert!(
        history
            .iter()
            .all(|h| h["type"] == "SCHEDULED" || h["type"] == "CANCELLED"),
        "it never started: {run}"
    );
    assert_eq!(run["run_count"], 0, "{run}");
}

/// Flow runs waiting in a node's executor for their time or a slot.
async fn queue_depth(api: &Api) -> u64 {
    let (status, text) = api.get("/metrics", ADMIN).await;
    assert_eq!(status, 200, "{text}");
    text.as_str()
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("weir_queue_depth "))
        .expect("weir_queue_depth in /metrics")
        .trim()
        .parse()
        .unwrap()
}

/// Polls until the node holds no waiting run.
async fn until_nothing_waits(api: &Api) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n = queue_depth(api).await;
        if n == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "{n} runs still wait in the node");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls until a run is held by a node (claimed; with the pool paused it then waits in
/// that node's executor).
async fn until_claimed(api: &Api, key: &str, id: &str) -> Value {
    api.wait_for(key, id, |r| r["node_id"].is_string()).await
}

const SCHEDULE_PAUSED: &str = "the schedule was paused before this run started";
const SCHEDULE_DELETED: &str = "the schedule was deleted before this run started";
const DEPLOYMENT_PAUSED: &str = "the deployment was paused before this run started";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pausing_a_schedule_cancels_its_runs_ahead_and_resuming_fires_again() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(Utc::now());
    let s = start(dir.path(), &clock, 60).await;
    let ws = held_deployment(&s, "pause-schedule").await;
    let id = schedule(&s, &clock, &ws.key, 2).await;
    assert_eq!(s.tick().await, 30, "a run every 2 s over the next minute");
    let created = runs(&s, &ws.key).await;
    let first = created
        .iter()
        .min_by_key(|r| expected_start(r))
        .unwrap()
        .clone();
    // The first one is due: this node holds it, waiting for a slot in the paused pool.
    until_claimed(&s, &ws.key, id_of(&first)).await;

    let (status, paused) = s
        .post(&format!("/api/schedules/{id}/pause"), &ws.key, json!({}))
        .await;
    assert_eq!((status, paused["active"].as_bool()), (200, Some(false)));
    for r in &created {
        assert_cancelled_unstarted(&s, &ws.key, id_of(r), SCHEDULE_PAUSED).await;
    }
    // The node let go of the run it held, and freeing the pool starts nothing.
    until_nothing_waits(&s).await;
    set_pool_paused(&s, &ws.key, false).await;
    assert_eq!(s.tick().await, 0, "a paused schedule fires nothing");

    // Resumed: runs again from now on, fire times the pause cancelled included, and
    // they run.
    let resumed_at = Utc::now();
    clock.set(resumed_at);
    let (status, resumed) = s
        .post(&format!("/api/schedules/{id}/resume"), &ws.key, json!({}))
        .await;
    assert_eq!((status, resumed["active"].as_bool()), (200, Some(true)));
    let n = s.tick().await;
    assert!((29..=30).contains(&n), "a minute of runs again: {n}");
    let fresh: Vec<Value> = runs(&s, &ws.key)
        .await
        .into_iter()
        .filter(|r| r["state"]["type"] != "CANCELLED")
        .collect();
    assert_eq!(fresh.len(), n);
    assert!(fresh.iter().all(|r| expected_start(r) > resumed_at));
    let cancelled_times: Vec<_> = created.iter().map(expected_start).collect();
    assert!(
        fresh
            .iter()
            .any(|r| cancelled_times.contains(&expected_start(r))),
        "a fire time whose run the pause cancelled gets a new run"
    );
    let next = fresh.iter().min_by_key(|r| expected_start(r)).unwrap();
    let done = s.wait_final(&ws.key, id_of(next)).await;
    assert_eq!(done["state"]["type"], "COMPLETED", "{done}");
    // The runs the pause cancelled stayed so, though the node now runs this pool's runs.
    for r in &created {
        assert_cancelled_unstarted(&s, &ws.key, id_of(r), SCHEDULE_PAUSED).await;
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_schedule_cancels_its_runs_ahead() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(Utc::now());
    let s = start(dir.path(), &clock, 60).await;
    let ws = held_deployment(&s, "delete-schedule").await;
    let id = schedule(&s, &clock, &ws.key, 10).await;
    assert_eq!(s.tick().await, 6);
    let created = runs(&s, &ws.key).await;
    let first = created.iter().min_by_key(|r| expected_start(r)).unwrap();
    until_claimed(&s, &ws.key, id_of(first)).await;

    let (status, _) = send(s.req(
        reqwest::Method::DELETE,
        &format!("/api/schedules/{id}"),
        &ws.key,
    ))
    .await;
    assert_eq!(status, 204);
    for r in &created {
        assert_cancelled_unstarted(&s, &ws.key, id_of(r), SCHEDULE_DELETED).await;
    }
    until_nothing_waits(&s).await;
    // A run triggered now runs in the freed pool; the cancelled ones do not.
    set_pool_paused(&s, &ws.key, false).await;
    let (_, manual) = s.post("/api/deployments/d/runs", &ws.key, json!({})).await;
    let done = s.wait_final(&ws.key, id_of(&manual)).await;
    assert_eq!(done["state"]["type"], "COMPLETED", "{done}");
    for r in &created {
        assert_cancelled_unstarted(&s, &ws.key, id_of(r), SCHEDULE_DELETED).await;
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pausing_a_deployment_cancels_its_scheduled_runs_and_keeps_manual_ones() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(Utc::now());
    let s = start(dir.path(), &clock, 60).await;
    let ws = held_deployment(&s, "pause-deployment").await;
    schedule(&s, &clock, &ws.key, 10).await;
    assert_eq!(s.tick().await, 6);
    let created = runs(&s, &ws.key).await;
    let first = created.iter().min_by_key(|r| expected_start(r)).unwrap();
    until_claimed(&s, &ws.key, id_of(first)).await;
    // Triggered by hand for a little later: Prefect keeps such runs of a paused
    // deployment (it deletes only the auto-scheduled ones), and so does Weir.
    let later = (Utc::now() + Span::milliseconds(500)).to_rfc3339();
    let (status, manual) = s
        .post(
            "/api/deployments/d/runs",
            &ws.key,
            json!({"scheduled_at": later}),
        )
        .await;
    assert_eq!(status, 201, "{manual}");

    set_deployment_paused(&s, &ws.key, true).await;
    for r in &created {
        assert_cancelled_unstarted(&s, &ws.key, id_of(r), DEPLOYMENT_PAUSED).await;
    }
    let kept = run(&s, &ws.key, id_of(&manual)).await;
    assert_eq!(kept["state"]["type"], "SCHEDULED", "{kept}");
    clock.set(Utc::now());
    assert_eq!(s.tick().await, 0, "a paused deployment fires nothing");
    // The manual run runs once the pool is free; the cancelled ones never do.
    set_pool_paused(&s, &ws.key, false).await;
    let done = s.wait_final(&ws.key, id_of(&manual)).await;
    assert_eq!(done["state"]["type"], "COMPLETED", "{done}");
    until_nothing_waits(&s).await;
    for r in &created {
        assert_cancelled_unstarted(&s, &ws.key, id_of(r), DEPLOYMENT_PAUSED).await;
    }

    // Resumed: its schedule creates runs again from now on.
    let resumed_at = Utc::now();
    clock.set(resumed_at);
    set_deployment_paused(&s, &ws.key, false).await;
    let n = s.tick().await;
    assert!((5..=6).contains(&n), "a minute of runs again: {n}");
    let fresh: Vec<Value> = runs(&s, &ws.key)
        .await
        .into_iter()
        .filter(|r| r["state"]["type"] != "CANCELLED" && r["id"] != manual["id"])
        .collect();
    assert_eq!(fresh.len(), n);
    assert!(fresh.iter().all(|r| expected_start(r) > resumed_at));
    s.stop().await;
}

/// Two nodes on one database: node b's scheduler creates the runs and b holds the due
/// ones; the schedule is paused through node a. b must not start them, nor the run its
/// scheduler (which has not seen the pause yet) creates afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_another_node_holds_are_not_started_after_a_pause() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(Utc::now());
    let a = start_node(dir.path(), &clock, 5, Some("a")).await;
    let ws = held_deployment(&a, "two-nodes").await;
    let b = start_node(dir.path(), &clock, 5, Some("b")).await;
    let id = schedule(&a, &clock, &ws.key, 1).await;
    let t0 = clock.now();
    assert_eq!(b.tick().await, 5, "node b creates the next 5 s of runs");
    let created = runs(&a, &ws.key).await;
    let first = created
        .iter()
        .min_by_key(|r| expected_start(r))
        .unwrap()
        .clone();
    let held = until_claimed(&a, &ws.key, id_of(&first)).await;
    assert_eq!(held["node_id"], "b", "node b holds the due run: {held}");

    let (status, _) = a
        .post(&format!("/api/schedules/{id}/pause"), &ws.key, json!({}))
        .await;
    assert_eq!(status, 200);
    for r in &created {
        assert_cancelled_unstarted(&a, &ws.key, id_of(r), SCHEDULE_PAUSED).await;
    }

    // b's scheduler has not reloaded its schedules: it still fires this one. The run it
    // creates is refused when due, whichever node claims it.
    clock.set(t0 + Span::seconds(1));
    assert_eq!(
        b.tick().await,
        1,
        "node b's scheduler has not seen the pause"
    );
    let stale = runs(&a, &ws.key)
        .await
        .into_iter()
        .find(|r| r["state"]["type"] == "SCHEDULED")
        .expect("the run b's scheduler created after the pause");

    // Freeing the pool through b wakes b's waiting runs: b tries to start them and may not.
    set_pool_paused(&b, &ws.key, false).await;
    let ended = b.wait_final(&ws.key, id_of(&stale)).await;
    assert_eq!(ended["state"]["type"], "CANCELLED", "{ended}");
    assert_cancelled_unstarted(
        &a,
        &ws.key,
        id_of(&stale),
        "the schedule was paused or deleted before this run started",
    )
    .await;
    until_nothing_waits(&a).await;
    until_nothing_waits(&b).await;
    for r in &created {
        assert_cancelled_unstarted(&a, &ws.key, id_of(r), SCHEDULE_PAUSED).await;
    }
    // b runs this pool's runs: what it dropped, it dropped because of the pause.
    let (_, manual) = b.post("/api/deployments/d/runs", &ws.key, json!({})).await;
    let done = b.wait_final(&ws.key, id_of(&manual)).await;
    assert_eq!(done["state"]["type"], "COMPLETED", "{done}");
    a.stop().await;
    b.stop().await;
}
