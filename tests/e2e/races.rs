//! Final states stay final: a cancel racing a completion ends in one of the two, and
//! nothing written after changes it (the store guards every state update in SQL, and
//! the batched writer folds a batch's changes of one run under the same rule).

use crate::support::open_store;
use crate::support::server::TestServer;
use chrono::Utc;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use weir::model::state::{State, StateType};
use weir::store::{FlowRunRecord, RunKind, StateChange, Write};

fn record(id: &str) -> FlowRunRecord {
    FlowRunRecord {
        id: id.to_owned(),
        name: format!("race-{id}"),
        flow_name: "race".into(),
        flow_function: None,
        component_digest: "d".into(),
        parameters: json!({}),
        tags: Vec::new(),
        parent_flow_run_id: None,
        parent_position: None,
        state: State::running(),
        run_count: 1,
        result: None,
        created: Utc::now(),
        start_time: Some(Utc::now()),
        end_time: None,
        workspace_id: None,
        deployment_id: None,
        idempotency_key: None,
        expected_start: None,
        schedule_id: None,
        node_id: None,
        fence: 0,
        crash_count: 0,
    }
}

fn finals(history: &[State]) -> Vec<StateType> {
    history
        .iter()
        .map(|s| s.kind)
        .filter(|k| k.is_final())
        .collect()
}

/// 1,000 times: a completion through the batched writer and a cancel through the
/// store's guarded end, at once. One wins; the history has its one final state; a late
/// write afterwards (a slow node still reporting Running) changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_racing_a_completion_never_overwrites_a_final_state() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path()).await;
    let ids: Vec<String> = (0..1000)
        .map(|_| uuid::Uuid::now_v7().to_string())
        .collect();
    for id in &ids {
        store.write(Write::FlowRunCreated(record(id)));
    }
    store.flush().await.unwrap();

    let mut outcomes = [0usize; 2];
    for (i, id) in ids.iter().enumerate() {
        let complete = {
            let store = store.clone();
            let id = id.clone();
            tokio::spawn(async move {
                if i % 3 == 0 {
                    tokio::task::yield_now().await;
                }
                let mut c = StateChange::new(RunKind::Flow, &id, State::completed());
                c.end_time = Some(Utc::now());
                store.write(Write::StateChanged(c));
                store.flush().await.unwrap();
            })
        };
        let cancel = {
            let store = store.clone();
            let id = id.clone();
            tokio::spawn(async move {
                if i % 2 == 0 {
                    tokio::task::yield_now().await;
                }
                store
                    .end_flow_run(&id, &State::cancelled("cancelled by request"))
                    .await
                    .unwrap()
            })
        };
        let (done, cancelled) = tokio::join!(complete, cancel);
        done.unwrap();
        let cancelled = cancelled.unwrap();
        // A late write from a node that lost the race.
        store.write(Write::StateChanged(StateChange::new(
            RunKind::Flow,
            id,
            State::running(),
        )));
        store.flush().await.unwrap();

        let run = store.flow_run(id).await.unwrap().unwrap();
        let history = store.state_history(id).await.unwrap();
        assert_eq!(
            finals(&history),
            vec![run.state.kind],
            "run {i}: history {history:?}"
        );
        match run.state.kind {
            StateType::Cancelled => {
                assert!(cancelled, "run {i}: Cancelled, yet the cancel said it lost");
                outcomes[1] += 1;
            }
            StateType::Completed => {
                assert!(!cancelled, "run {i}: Completed, yet the cancel said it won");
                outcomes[0] += 1;
            }
            other => panic!("run {i} ended {other}"),
        }
        assert!(
            history.last().is_some_and(|s| s.kind.is_final()),
            "run {i}: a state was recorded after the final one: {history:?}"
        );
    }
    println!("completed {}, cancelled {}", outcomes[0], outcomes[1]);
}

/// Several changes of one run in one batch: the first final state is kept, and the
/// history has no row after it.
#[tokio::test]
async fn a_batch_keeps_the_first_final_state_of_a_run() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path()).await;
    let id = uuid::Uuid::now_v7().to_string();
    // Created and ended in one batch, then changed again in the same batch.
    store.write(Write::FlowRunCreated(record(&id)));
    store.write(Write::StateChanged(StateChange::new(
        RunKind::Flow,
        &id,
        State::completed(),
    )));
    store.write(Write::StateChanged(StateChange::new(
        RunKind::Flow,
        &id,
        State::cancelled("late"),
    )));
    store.flush().await.unwrap();
    // Changed twice in one later batch.
    store.write(Write::StateChanged(StateChange::new(
        RunKind::Flow,
        &id,
        State::failed("later still"),
    )));
    store.write(Write::StateChanged(StateChange::new(
        RunKind::Flow,
        &id,
        State::running(),
    )));
    store.flush().await.unwrap();
    let run = store.flow_run(&id).await.unwrap().unwrap();
    assert_eq!(run.state.kind, StateType::Completed);
    let history = store.state_history(&id).await.unwrap();
    assert_eq!(finals(&history), vec![StateType::Completed], "{history:?}");
    assert_eq!(history.last().unwrap().kind, StateType::Completed);
}

async fn final_run(s: &TestServer, key: &str, id: &str) -> Value {
    s.wait_final(key, id).await
}

/// Through the server: runs of a quick flow cancelled at once, at every point of their
/// short lives. Each ends Completed or Cancelled, with one final state in its history,
/// and stays so.
#[tokio::test]
async fn cancels_racing_quick_runs_through_the_api_end_in_one_final_state() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let ws = s.workspace("races").await;
    let digest = s.upload(&ws.key, crate::BASIC).await;
    s.deploy(
        &ws.key,
        json!({"name": "quick", "component": digest, "flow": "nap"}),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut ids = Vec::new();
    let (mut cancelled, mut completed, mut conflicts) = (0, 0, 0);
    for i in 0..1000u64 {
        assert!(Instant::now() < deadline, "too slow: {i} runs");
        let (status, run) = s
            .post(
                "/api/deployments/quick/runs",
                &ws.key,
                json!({"parameters": {"millis": i % 4}}),
            )
            .await;
        assert_eq!(status, 201, "{run}");
        let id = run["id"].as_str().unwrap().to_owned();
        if i % 5 != 0 {
            // Give the run a head start of 0-3 ms so the cancel lands at every stage.
            tokio::time::sleep(Duration::from_micros((i % 4) * 1000)).await;
        }
        let (status, body) = s
            .post(&format!("/api/flow-runs/{id}/cancel"), &ws.key, json!({}))
            .await;
        match status {
            202 => {}
            409 => conflicts += 1,
            other => panic!("cancel answered {other}: {body}"),
        }
        ids.push(id);
    }
    let mut first = Vec::new();
    for id in &ids {
        let run = final_run(&s, &ws.key, id).await;
        let t = run["state"]["type"].as_str().unwrap().to_owned();
        match t.as_str() {
            "COMPLETED" => completed += 1,
            "CANCELLED" => cancelled += 1,
            other => panic!("run {id} ended {other}: {run}"),
        }
        first.push(t);
    }
    // Everything settled; read again: nothing moved, one final state per history.
    for (id, t) in ids.iter().zip(&first) {
        let (_, run) = s.get(&format!("/api/flow-runs/{id}"), &ws.key).await;
        assert_eq!(run["state"]["type"], t.as_str(), "run {id} changed: {run}");
        let history = run["state_history"].as_array().cloned().unwrap_or_default();
        let ends: Vec<&Value> = history
            .iter()
            .filter(|h| {
                matches!(
                    h["type"].as_str(),
                    Some("COMPLETED" | "FAILED" | "CANCELLED" | "CRASHED")
                )
            })
            .collect();
        assert_eq!(ends.len(), 1, "run {id}: {history:?}");
    }
    println!("completed {completed}, cancelled {cancelled}, cancel refused {conflicts}");
    assert!(
        cancelled > 0,
        "no cancel ever won: the race was not exercised"
    );
    s.stop().await;
}
