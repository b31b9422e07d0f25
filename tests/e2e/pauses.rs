//! Pause and suspend with typed input, through the real server: resumes validated
//! against the pause's schema, timeouts, instances released by a suspend and completed
//! work replayed (not redone) on resume.

use crate::support::server::{TestServer, Ws, send};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const BASIC: &str = "guest_basic";

async fn setup(s: &TestServer, name: &str) -> (Ws, String) {
    let ws = s.workspace(name).await;
    let digest = s.upload(&ws.key, BASIC).await;
    (ws, digest)
}

async fn trigger(s: &TestServer, ws: &Ws, deployment: &str, parameters: Value) -> String {
    let (status, run) = s
        .post(
            &format!("/api/deployments/{deployment}/runs"),
            &ws.key,
            json!({ "parameters": parameters }),
        )
        .await;
    assert_eq!(status, 201, "{run}");
    run["id"].as_str().unwrap().to_owned()
}

async fn resume(s: &TestServer, key: &str, id: &str, body: Value) -> (u16, Value) {
    s.post(&format!("/api/flow-runs/{id}/resume"), key, body)
        .await
}

fn is_state(run: &Value, kind: &str, name: &str) -> bool {
    run["state"]["type"] == kind && run["state"]["name"] == name
}

fn history(run: &Value) -> Vec<String> {
    run["state_history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect()
}

async fn task_names(s: &TestServer, key: &str, id: &str) -> Vec<String> {
    let (_, tasks) = s.get(&format!("/api/flow-runs/{id}/task-runs"), key).await;
    tasks["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["task"].as_str().unwrap().to_owned())
        .collect()
}

async fn log_lines(s: &TestServer, key: &str, id: &str) -> Vec<String> {
    let (_, logs) = s.get(&format!("/api/flow-runs/{id}/logs"), key).await;
    logs["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["message"].as_str().unwrap().to_owned())
        .collect()
}

/// Waits until no flow run executes on the server (its instances are gone).
async fn until_idle(s: &TestServer) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let n = s.metric("weir_flow_runs_active").await as u64;
        if n == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{n} run(s) still hold an instance"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_paused_run_resumes_with_typed_input_and_refuses_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let (ws, digest) = setup(&s, "pauses").await;
    let other = s.workspace("elsewhere").await;
    s.deploy(
        &ws.key,
        json!({"name": "approve", "component": digest, "flow": "approval",
               "parameters": {"rows": 3, "timeout": 60}}),
    )
    .await;
    let id = trigger(&s, &ws, "approve", json!({})).await;
    let run = s
        .wait_for(&ws.key, &id, |r| r["state"]["type"] == "PAUSED")
        .await;
    assert!(is_state(&run, "PAUSED", "Paused"), "{run}");
    let message = run["state"]["message"].as_str().unwrap();
    assert!(
        message.contains("'approval'") && message.contains("60 s") && message.contains("schema"),
        "{message}"
    );
    // What the pause waits for, with the input's schema from the flow's Rust type.
    let pause = &run["pause"];
    assert_eq!(pause["key"], "approval", "{run}");
    assert_eq!(pause["description"], "Approve the load");
    assert_eq!(pause["suspended"], false);
    assert_eq!(
        pause["input_schema"]["properties"]["approved"]["type"],
        "boolean"
    );

    // Input that does not match: 422 naming the field, and the run stays paused.
    let bad = [
        json!({"input": {"approved": "yes", "reviewer": "Ada"}}),
        json!({"input": {"approved": true}}),
        json!({}),
    ];
    for body in bad {
        let res = s
            .req(
                reqwest::Method::POST,
                &format!("/api/flow-runs/{id}/resume"),
                &ws.key,
            )
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 422, "{body}");
        assert_eq!(res.headers()["content-type"], "application/problem+json");
        let problem: Value = res.json().await.unwrap();
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .starts_with("Invalid input"),
            "{problem}"
        );
        assert!(!problem["detail"].as_str().unwrap().is_empty());
    }
    let (_, problem) = resume(
        &s,
        &ws.key,
        &id,
        json!({"input": {"approved": "yes", "reviewer": "Ada"}}),
    )
    .await;
    assert!(
        problem["detail"].as_str().unwrap().contains("'approved'"),
        "{problem}"
    );
    let (status, body) = resume(&s, &ws.key, &id, json!({"input": "x", "extra": 1})).await;
    assert_eq!(status, 422, "unknown fields are refused: {body}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, still) = s.get(&format!("/api/flow-runs/{id}"), &ws.key).await;
    assert!(is_state(&still, "PAUSED", "Paused"), "{still}");

    // Another workspace cannot see it, let alone resume it.
    let (status, _) = resume(
        &s,
        &other.key,
        &id,
        json!({"input": {"approved": true, "reviewer": "Mallory"}}),
    )
    .await;
    assert_eq!(status, 404);

    let (status, accepted) = resume(
        &s,
        &ws.key,
        &id,
        json!({"input": {"approved": true, "reviewer": "Ada"}}),
    )
    .await;
    assert_eq!(status, 202, "{accepted}");
    let run = s.wait_final(&ws.key, &id).await;
    assert_eq!(run["state"]["type"], "COMPLETED", "{run}");
    assert_eq!(run["result"], "published 9 rows by Ada");
    let names = history(&run);
    let paused = names.iter().position(|n| n == "Paused").unwrap();
    assert_eq!(names[paused + 1], "Running", "{names:?}");
    assert_eq!(
        run["run_count"], 1,
        "a pause keeps its instance: one execution"
    );

    // Resuming a run that is not paused is a conflict.
    let (status, problem) = resume(
        &s,
        &ws.key,
        &id,
        json!({"input": {"approved": true, "reviewer": "Ada"}}),
    )
    .await;
    assert_eq!(status, 409, "{problem}");

    // A pause without a schema takes no input.
    s.deploy(
        &ws.key,
        json!({"name": "plain", "component": digest, "flow": "plain_pause",
               "parameters": {"timeout": 60}}),
    )
    .await;
    let id = trigger(&s, &ws, "plain", json!({})).await;
    let run = s
        .wait_for(&ws.key, &id, |r| r["state"]["type"] == "PAUSED")
        .await;
    assert!(run["pause"]["input_schema"].is_null(), "{run}");
    let (status, problem) = resume(&s, &ws.key, &id, json!({"input": {"x": 1}})).await;
    assert_eq!(status, 422, "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("no input"),
        "{problem}"
    );
    // An empty body resumes it.
    let (status, _) = send(s.req(
        reqwest::Method::POST,
        &format!("/api/flow-runs/{id}/resume"),
        &ws.key,
    ))
    .await;
    assert_eq!(status, 202);
    let run = s.wait_final(&ws.key, &id).await;
    assert_eq!(run["result"], "resumed", "{run}");
    s.stop().await;
}

#[tokio::test]
async fn a_pause_that_is_not_resumed_fails_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let (ws, digest) = setup(&s, "pause-timeout").await;
    s.deploy(
        &ws.key,
        json!({"name": "approve", "component": digest, "flow": "approval",
               "parameters": {"rows": 2, "timeout": 0.5}}),
    )
    .await;
    let id = trigger(&s, &ws, "approve", json!({})).await;
    let run = s.wait_final(&ws.key, &id).await;
    assert_eq!(run["state"]["type"], "FAILED", "{run}");
    assert_eq!(
        run["state"]["message"],
        "the flow run was paused for 0.5 s and not resumed"
    );
    assert!(history(&run).contains(&"Paused".to_owned()), "{run}");
    let (status, _) = resume(
        &s,
        &ws.key,
        &id,
        json!({"input": {"approved": true, "reviewer": "Late"}}),
    )
    .await;
    assert_eq!(status, 409);
    s.stop().await;
}

#[tokio::test]
async fn a_suspended_run_releases_its_instance_and_replays_completed_work_on_resume() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let (ws, digest) = setup(&s, "suspend").await;
    // One run at a time: a second run can only start if the first released its slot.
    s.deploy(
        &ws.key,
        json!({"name": "suspender", "component": digest, "flow": "suspender",
               "parameters": {"timeout": 120}, "concurrency_limit": 1}),
    )
    .await;
    let a = trigger(&s, &ws, "suspender", json!({"label": "alpha"})).await;
    let run = s
        .wait_for(&ws.key, &a, |r| r["state"]["type"] == "PAUSED")
        .await;
    assert!(is_state(&run, "PAUSED", "Suspended"), "{run}");
    assert_eq!(run["pause"]["suspended"], true);
    assert!(
        run["state"]["message"]
            .as_str()
            .unwrap()
            .starts_with("suspended for up to 120 s"),
        "{run}"
    );
    let b = trigger(&s, &ws, "suspender", json!({"label": "beta"})).await;
    s.wait_for(&ws.key, &b, |r| is_state(r, "PAUSED", "Suspended"))
        .await;
    // Suspended runs hold no instance.
    until_idle(&s).await;

    let (status, _) = resume(&s, &ws.key, &a, json!({"input": {"limit": "five"}})).await;
    assert_eq!(status, 422);
    let (status, body) = resume(&s, &ws.key, &a, json!({"input": {"limit": 5}})).await;
    assert_eq!(status, 202, "{body}");
    let run = s.wait_final(&ws.key, &a).await;
    assert_eq!(run["state"]["type"], "COMPLETED", "{run}");
    assert_eq!(run["result"], "alpha:10");
    // Executed twice; the completed task ran once and was replayed the second time.
    assert_eq!(run["run_count"], 2, "{run}");
    let names = history(&run);
    let suspended = names.iter().position(|n| n == "Suspended").unwrap();
    assert_eq!(
        &names[suspended..],
        ["Suspended", "Resuming", "Pending", "Running", "Completed"],
        "{names:?}"
    );
    let tasks = task_names(&s, &ws.key, &a).await;
    assert_eq!(tasks, ["side_effect", "scale"], "{tasks:?}");
    let logs = log_lines(&s, &ws.key, &a).await;
    assert_eq!(
        logs.iter().filter(|l| *l == "side effect alpha").count(),
        1,
        "the completed task's body ran once: {logs:?}"
    );

    // The other one, resumed with the CLI.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["runs", "resume", &b, "--input", r#"{"limit": 21}"#])
        .env("WEIR_API_URL", &s.url)
        .env("WEIR_API_KEY", &ws.key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = s.wait_final(&ws.key, &b).await;
    assert_eq!(run["result"], "beta:42", "{run}");
    assert_eq!(
        log_lines(&s, &ws.key, &b)
            .await
            .iter()
            .filter(|l| *l == "side effect beta")
            .count(),
        1
    );
    s.stop().await;
}

#[tokio::test]
async fn a_suspended_run_past_its_timeout_fails_without_an_instance() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let (ws, digest) = setup(&s, "suspend-timeout").await;
    s.deploy(
        &ws.key,
        json!({"name": "suspender", "component": digest, "flow": "suspender",
               "parameters": {"label": "x", "timeout": 1.5}}),
    )
    .await;
    let id = trigger(&s, &ws, "suspender", json!({})).await;
    let asked = Instant::now();
    s.wait_for(&ws.key, &id, |r| is_state(r, "PAUSED", "Suspended"))
        .await;
    until_idle(&s).await;
    let run = s.wait_final(&ws.key, &id).await;
    assert!(asked.elapsed() >= Duration::from_millis(1000));
    assert_eq!(run["state"]["type"], "FAILED", "{run}");
    assert_eq!(
        run["state"]["message"],
        "the flow run was suspended for 1.5 s and not resumed"
    );
    assert_eq!(run["run_count"], 1, "it never ran again: {run}");
    let (status, _) = resume(&s, &ws.key, &id, json!({"input": {"limit": 1}})).await;
    assert_eq!(status, 409);
    s.stop().await;
}

#[tokio::test]
async fn a_subflow_cannot_suspend_and_a_suspended_run_can_be_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let (ws, digest) = setup(&s, "suspend-misuse").await;
    s.deploy(
        &ws.key,
        json!({"name": "nested", "component": digest, "flow": "suspend_in_subflow"}),
    )
    .await;
    let id = trigger(&s, &ws, "nested", json!({})).await;
    let run = s.wait_final(&ws.key, &id).await;
    assert!(
        run["result"]
            .as_str()
            .unwrap()
            .starts_with("a subflow run cannot be suspended"),
        "{run}"
    );

    s.deploy(
        &ws.key,
        json!({"name": "suspender", "component": digest, "flow": "suspender",
               "parameters": {"label": "c", "timeout": 120}}),
    )
    .await;
    let id = trigger(&s, &ws, "suspender", json!({})).await;
    s.wait_for(&ws.key, &id, |r| is_state(r, "PAUSED", "Suspended"))
        .await;
    let (status, _) = s
        .post(&format!("/api/flow-runs/{id}/cancel"), &ws.key, json!({}))
        .await;
    assert_eq!(status, 202);
    let run = s.wait_final(&ws.key, &id).await;
    assert_eq!(run["state"]["type"], "CANCELLED", "{run}");
    let (status, _) = resume(&s, &ws.key, &id, json!({"input": {"limit": 1}})).await;
    assert_eq!(status, 409);
    s.stop().await;
}

#[tokio::test]
async fn local_runs_pause_until_their_timeout_and_cannot_suspend() {
    let h = crate::harness().await;
    let c = h.load(BASIC).await;
    let out = h.run(&c, "plain_pause", json!({"timeout": 0.3})).await;
    assert_eq!(crate::state_of(&out), "FAILED/Failed");
    assert_eq!(
        out.state.message.as_deref(),
        Some("the flow run was paused for 0.3 s and not resumed")
    );
    let history = h.store().state_history(&out.flow_run_id).await.unwrap();
    assert!(history.iter().any(|s| s.name == "Paused"), "{history:?}");

    let out = h
        .run(&c, "suspender", json!({"label": "local", "timeout": 60}))
        .await;
    assert_eq!(crate::state_of(&out), "FAILED/Failed");
    assert!(
        out.state
            .message
            .as_deref()
            .unwrap()
            .starts_with("only runs of deployments can be suspended"),
        "{:?}",
        out.state
    );
}

#[tokio::test]
async fn paused_and_suspended_runs_keep_their_deadlines_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let clock = weir::schedule::ManualClock::new(chrono::Utc::now());
    let with_clock = |c: &mut weir::server::ServerConfig| c.clock = clock.clone();
    let s = TestServer::start_with(dir.path(), with_clock).await;
    let (ws, digest) = setup(&s, "pause-restart").await;
    s.deploy(
        &ws.key,
        json!({"name": "plain", "component": digest, "flow": "plain_pause",
               "parameters": {"timeout": 120}}),
    )
    .await;
    s.deploy(
        &ws.key,
        json!({"name": "suspender", "component": digest, "flow": "suspender",
               "parameters": {"label": "r", "timeout": 1}}),
    )
    .await;
    let paused = trigger(&s, &ws, "plain", json!({})).await;
    let suspended = trigger(&s, &ws, "suspender", json!({})).await;
    let before = s
        .wait_for(&ws.key, &paused, |r| is_state(r, "PAUSED", "Paused"))
        .await;
    s.wait_for(&ws.key, &suspended, |r| is_state(r, "PAUSED", "Suspended"))
        .await;
    let key = ws.key.clone();
    s.stop().await;
    // The suspended run's timeout passes while no server runs.
    clock.set(chrono::Utc::now() + chrono::Duration::seconds(2));
    let s = TestServer::start_with(dir.path(), with_clock).await;

    // Failed by the start-up sweep, before anything else ran.
    let (_, run) = s.get(&format!("/api/flow-runs/{suspended}"), &key).await;
    assert_eq!(run["state"]["type"], "FAILED", "{run}");
    assert_eq!(
        run["state"]["message"],
        "the flow run was suspended for 1 s and not resumed"
    );

    // The paused run was put back at shutdown and waits again, on the same pause.
    let after = s
        .wait_for(&key, &paused, |r| {
            is_state(r, "PAUSED", "Paused") && r["run_count"] == 2
        })
        .await;
    assert_eq!(after["pause"]["timeout_at"], before["pause"]["timeout_at"]);
    assert!(
        history(&after).contains(&"Rescheduled".to_owned()),
        "{after}"
    );
    let (status, _) = resume(&s, &key, &paused, json!({})).await;
    assert_eq!(status, 202);
    let run = s.wait_final(&key, &paused).await;
    assert_eq!(run["result"], "resumed", "{run}");
    s.stop().await;
}
