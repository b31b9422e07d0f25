//! Guests that loop, hoard memory, recurse, return too much or panic: each fails only
//! its own run, with a message that says why, while other runs go on.

use super::*;
use serde_json::json;
use weir::model::state::StateType;

async fn fails_with(flow: &str, params: serde_json::Value, needle: &str) {
    let h = harness().await;
    let c = h.load(BASIC).await;
    // A well-behaved run alongside the bad one must complete.
    let (bad, good) = tokio::join!(
        h.run(&c, flow, params),
        h.run(&c, "steady", json!({"n": 20}))
    );
    assert_eq!(bad.state.kind, StateType::Failed, "{flow}: {:?}", bad.state);
    let message = bad.state.message.clone().unwrap_or_default();
    assert!(
        message.contains(needle),
        "{flow}: message {message:?} lacks {needle:?}"
    );
    assert_eq!(
        state_of(&good),
        "COMPLETED/Completed",
        "the good run suffered: {:?}",
        good.failure
    );
    // And the engine still runs things afterwards.
    let after = h.run(&c, "steady", json!({"n": 3})).await;
    assert!(after.state.is_completed());
}

#[tokio::test]
async fn an_infinite_loop_hits_the_cpu_limit() {
    fails_with("infinite_loop", json!({}), "CPU time limit").await;
}

#[tokio::test]
async fn a_memory_bomb_hits_the_memory_limit() {
    fails_with("memory_bomb", json!({}), "memory limit of 64 MiB").await;
}

#[tokio::test]
async fn deep_recursion_overflows_the_stack() {
    let h = harness().await;
    let c = h.load(BASIC).await;
    let out = h.run(&c, "deep_recursion", json!({})).await;
    assert_eq!(out.state.kind, StateType::Failed);
    let m = out.state.message.unwrap();
    assert!(m.contains("stack"), "{m}");
}

#[tokio::test]
async fn a_huge_result_is_refused() {
    fails_with(
        "huge_result",
        json!({"megabytes": 4}),
        "over the limit of 1048576 bytes",
    )
    .await;
}

#[tokio::test]
async fn a_panic_fails_the_run_with_its_message() {
    fails_with("panics", json!({}), "boom from the guest").await;
}

#[tokio::test]
async fn a_panicking_task_fails_its_task_run() {
    let h = harness().await;
    let c = h.load(BASIC).await;
    let out = h.run(&c, "panicking_task_flow", json!({})).await;
    assert_eq!(out.state.kind, StateType::Failed);
    let tasks = h.store().task_runs(&out.flow_run_id).await.unwrap();
    assert!(
        tasks[0]
            .state
            .message
            .as_deref()
            .unwrap()
            .contains("task boom"),
        "{:?}",
        tasks[0].state
    );
}
