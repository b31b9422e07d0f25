use super::*;
use serde_json::json;

async fn final_state(flow: &str) -> (String, Option<String>, Option<String>) {
    let h = harness().await;
    let c = h.load(BASIC).await;
    let out = h.run(&c, flow, json!({})).await;
    (state_of(&out), out.state.message.clone(), out.value.clone())
}

#[tokio::test]
async fn an_error_fails_the_flow() {
    let (state, message, _) = final_state("returns_error").await;
    assert_eq!(state, "FAILED/Failed");
    assert!(message.unwrap().contains("the flow gave up"));
}

#[tokio::test]
async fn a_propagated_task_failure_fails_the_flow() {
    let (state, message, _) = final_state("propagates_task_failure").await;
    assert_eq!(state, "FAILED/Failed");
    assert!(message.unwrap().contains("task failed"));
}

#[tokio::test]
async fn a_handled_task_failure_does_not_fail_the_flow() {
    let (state, _, value) = final_state("handles_task_failure").await;
    assert_eq!(state, "COMPLETED/Completed");
    assert_eq!(value.as_deref(), Some("\"recovered\""));
}

#[tokio::test]
async fn a_returned_named_state_is_the_final_state() {
    let (state, message, _) = final_state("skipped_state").await;
    assert_eq!(state, "COMPLETED/Skipped");
    assert_eq!(message.as_deref(), Some("nothing to do"));
}

#[tokio::test]
async fn a_returned_failed_state_fails_the_flow() {
    let (state, message, _) = final_state("failed_state").await;
    assert_eq!(state, "FAILED/Failed");
    assert_eq!(message.as_deref(), Some("reported failure"));
}

#[tokio::test]
async fn returned_states_with_a_failure_fail_the_flow() {
    let (state, _, _) = final_state("returns_states").await;
    assert_eq!(state, "FAILED/Failed");
}
