//! The sandbox's caps: host calls, log volume, artifact size; results kept out of the
//! database on request; compiled code reused from disk.

use super::*;
use serde_json::json;
use weir::model::limits::Limits;
use weir::model::state::StateType;

#[tokio::test]
async fn a_guest_past_its_host_call_budget_fails() {
    let h = Harness::with_limits(Limits {
        max_host_calls: 100,
        ..crate::support::test_limits()
    })
    .await;
    let c = h.load(BASIC).await;
    let ok = h.run(&c, "chatter", json!({"calls": 50})).await;
    assert!(ok.state.is_completed(), "{:?}", ok.state);
    let out = h.run(&c, "chatter", json!({"calls": 1000})).await;
    assert_eq!(out.state.kind, StateType::Failed);
    assert!(
        out.state
            .message
            .as_deref()
            .unwrap()
            .contains("more than 100 host calls"),
        "{:?}",
        out.state
    );
}

#[tokio::test]
async fn logs_past_the_run_budget_are_dropped_with_a_notice() {
    let h = Harness::with_limits(Limits {
        max_log_bytes_per_run: 50_000,
        ..crate::support::test_limits()
    })
    .await;
    let c = h.load(BASIC).await;
    let out = h.run(&c, "log_flood", json!({"lines": 200})).await;
    assert!(out.state.is_completed(), "a noisy run still completes");
    let logs = h.logs(&out.flow_run_id).await;
    assert!(logs.len() < 60, "{} lines kept", logs.len());
    assert!(
        logs.last()
            .unwrap()
            .contains("log limit of 100000 lines or 50000 bytes"),
        "{:?}",
        logs.last()
    );
}

#[tokio::test]
async fn an_oversized_artifact_is_refused() {
    let h = harness().await;
    let c = h.load(BASIC).await;
    let small = h.run(&c, "big_artifact", json!({"kib": 1})).await;
    assert_eq!(small.value.as_deref(), Some("\"created\""));
    let big = h.run(&c, "big_artifact", json!({"kib": 2048})).await;
    assert!(
        big.value
            .as_deref()
            .unwrap()
            .contains("over the limit of 1048576 bytes"),
        "{:?}",
        big.value
    );
    assert!(
        h.store()
            .artifacts(&big.flow_run_id)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn persist_result_false_keeps_results_out_of_the_database() {
    let h = harness().await;
    let c = h.load(BASIC).await;
    let out = h.run(&c, "unpersisted", json!({})).await;
    assert_eq!(out.value.as_deref(), Some("\"kept out of the database\""));
    let run = h.store().flow_run(&out.flow_run_id).await.unwrap().unwrap();
    assert_eq!(run.result, None);
    let tasks = h.store().task_runs(&out.flow_run_id).await.unwrap();
    assert_eq!(tasks[0].result, None);
    assert!(tasks[0].state.is_completed());
}

#[tokio::test]
async fn compiled_code_is_reused_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(crate::support::guest(BASIC)).unwrap();
    let first = weir::host::Engine::new(crate::support::test_limits(), Some(dir.path().to_owned()))
        .unwrap();
    assert!(!first.load(&bytes).await.unwrap().from_cache);
    // A new engine (a restart) finds the compiled code on disk.
    let second =
        weir::host::Engine::new(crate::support::test_limits(), Some(dir.path().to_owned()))
            .unwrap();
    let loaded = second.load(&bytes).await.unwrap();
    assert!(loaded.from_cache);
    assert!(loaded.flow("retry_flow").is_some());
    // Loading the same bytes again returns the same component.
    let again = second.load(&bytes).await.unwrap();
    assert!(std::sync::Arc::ptr_eq(&loaded, &again));
}
