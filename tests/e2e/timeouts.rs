use super::*;
use serde_json::json;
use std::time::Duration;

/// Runs a flow whose guest spins without end: only a timeout (or the CPU limit, which
/// the state and message tell apart) ends it, so the run must end well within `limit`.
async fn run_within(
    h: &crate::support::Harness,
    c: &std::sync::Arc<weir::host::LoadedComponent>,
    flow: &str,
    limit: Duration,
) -> weir::orchestrate::FlowOutcome {
    tokio::time::timeout(limit, h.run(c, flow, json!({})))
        .await
        .unwrap_or_else(|_| panic!("{flow} did not end within {limit:?}"))
}

#[tokio::test]
async fn a_spinning_task_is_stopped_at_its_timeout() {
    let h = harness().await;
    let c = h.load(BASIC).await;
    let out = run_within(&h, &c, "timeout_flow", Duration::from_secs(30)).await;
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
}

#[tokio::test]
async fn a_spinning_flow_is_stopped_at_its_timeout() {
    let h = harness().await;
    let c = h.load(BASIC).await;
    let out = run_within(&h, &c, "flow_timeout", Duration::from_secs(30)).await;
    assert_eq!(state_of(&out), "FAILED/TimedOut");
}
