use super::*;
use serde_json::json;
use std::time::Instant;

#[tokio::test]
async fn a_spinning_task_is_stopped_at_its_timeout() {
    let h = harness().await;
    let c = h.load(BASIC).await;
    let start = Instant::now();
    let out = h.run(&c, "timeout_flow", json!({})).await;
    let took = start.elapsed();
    assert_eq!(out.state.kind, weir::model::state::StateType::Failed);
    let tasks = h.store().task_runs(&out.flow_run_id).await.unwrap();
    assert_eq!(tasks[0].state.name, "TimedOut");
    assert!(
        tasks[0]
            .state
            .message
            .as_deref()
            .unwrap()
            .contains("timeout of 0.5")
    );
    // 0.5 s timeout plus a small margin (instance start, database, scheduling).
    assert!(took.as_millis() < 1500, "took {took:?}");
}

#[tokio::test]
async fn a_spinning_flow_is_stopped_at_its_timeout() {
    let h = harness().await;
    let c = h.load(BASIC).await;
    let start = Instant::now();
    let out = h.run(&c, "flow_timeout", json!({})).await;
    assert_eq!(state_of(&out), "FAILED/TimedOut");
    assert!(
        start.elapsed().as_millis() < 1500,
        "took {:?}",
        start.elapsed()
    );
}
