use super::*;
use serde_json::json;
use weir::model::state::StateType;

#[tokio::test]
async fn a_flaky_task_is_retried_with_its_delays_until_it_succeeds() {
    let h = harness().await;
    let c = h.load(BASIC).await;
    let out = h.run(&c, "retry_flow", json!({"fail_times": 2})).await;
    assert_eq!(state_of(&out), "COMPLETED/Completed", "{:?}", out.failure);
    assert_eq!(out.value.as_deref(), Some("3"));

    let tasks = h.store().task_runs(&out.flow_run_id).await.unwrap();
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].run_count, 3);
    let history = h.store().state_history(&tasks[0].id).await.unwrap();
    let names: Vec<&str> = history.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "Pending",
            "Running",
            "AwaitingRetry",
            "Retrying",
            "AwaitingRetry",
            "Retrying",
            "Completed"
        ]
    );
    // Delays of 0.2 s then 0.4 s between the attempts.
    let gap = |a: usize, b: usize| (history[b].timestamp - history[a].timestamp).num_milliseconds();
    assert!(gap(2, 3) >= 190, "first delay {} ms", gap(2, 3));
    assert!(gap(4, 5) >= 390, "second delay {} ms", gap(4, 5));
}

#[tokio::test]
async fn retries_run_out() {
    let h = harness().await;
    let c = h.load(BASIC).await;
    let out = h.run(&c, "retry_flow", json!({"fail_times": 10})).await;
    assert_eq!(out.state.kind, StateType::Failed);
    let tasks = h.store().task_runs(&out.flow_run_id).await.unwrap();
    assert_eq!(tasks[0].run_count, 4, "1 attempt + 3 retries");
    assert!(
        out.state
            .message
            .as_deref()
            .unwrap()
            .contains("attempt 4 failed"),
        "{:?}",
        out.state
    );
}

#[tokio::test]
async fn the_retry_condition_decides() {
    let h = harness().await;
    let c = h.load(BASIC).await;
    let out = h
        .run(
            &c,
            "retry_condition_flow",
            json!({"message": "transient glitch"}),
        )
        .await;
    let tasks = h.store().task_runs(&out.flow_run_id).await.unwrap();
    assert_eq!(
        tasks[0].run_count, 4,
        "a transient error is retried every time"
    );

    let out = h
        .run(&c, "retry_condition_flow", json!({"message": "bad input"}))
        .await;
    let tasks = h.store().task_runs(&out.flow_run_id).await.unwrap();
    assert_eq!(tasks[0].run_count, 1, "other errors are not retried");
    assert_eq!(out.state.kind, StateType::Failed);
}

#[tokio::test]
async fn a_non_retryable_error_is_not_retried() {
    let h = harness().await;
    let c = h.load(BASIC).await;
    let out = h.run(&c, "fatal_flow", json!({})).await;
    let tasks = h.store().task_runs(&out.flow_run_id).await.unwrap();
    assert_eq!(tasks[0].run_count, 1);
    assert_eq!(out.state.kind, StateType::Failed);
}

#[tokio::test]
async fn a_flow_retry_replays_completed_tasks() {
    let h = harness().await;
    let c = h.load(BASIC).await;
    let out = h.run(&c, "flow_retry", json!({"label": "once"})).await;
    assert_eq!(state_of(&out), "COMPLETED/Completed", "{:?}", out.failure);
    assert_eq!(out.value.as_deref(), Some("\"once\""));
    let run = h.store().flow_run(&out.flow_run_id).await.unwrap().unwrap();
    assert_eq!(run.run_count, 2);
    let logs = h.logs(&out.flow_run_id).await;
    let bodies = logs.iter().filter(|l| *l == "side effect once").count();
    assert_eq!(bodies, 1, "the completed task ran again: {logs:?}");
    let tasks = h.store().task_runs(&out.flow_run_id).await.unwrap();
    assert_eq!(tasks.len(), 1, "the replayed call created no new task run");
    let history: Vec<String> = h
        .store()
        .state_history(&out.flow_run_id)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(
        history,
        [
            "Pending",
            "Running",
            "AwaitingRetry",
            "Retrying",
            "Completed"
        ]
    );
}
