//! Replay by position: a flow that calls something else where a completed call was
//! recorded fails with a clear error; final-state hooks of a run without an instance.

use crate::{BASIC, harness, state_of};
use serde_json::json;
use weir::model::state::{State, StateType};

#[tokio::test]
async fn a_different_call_at_a_recorded_position_fails_the_run_clearly() {
    let h = harness().await;
    let c = h.load(BASIC).await;
    let out = h.run(&c, "replay_mismatch", json!({"x": 2})).await;
    assert_eq!(state_of(&out), "FAILED/Failed");
    assert_eq!(
        out.state.message.as_deref(),
        Some(
            "replay mismatch at call 0: the recorded run called task `double` there, this run \
             called task `triple` (the flow's code changed or it is not deterministic)"
        )
    );
    let failure = out.failure.as_ref().unwrap();
    assert_eq!(
        (failure.kind.as_str(), failure.retryable),
        ("replay-mismatch", Some(false))
    );
    // The mismatched call never ran, and the run was not retried past it.
    let tasks = h.store().task_runs(&out.flow_run_id).await.unwrap();
    let names: Vec<&str> = tasks.iter().map(|t| t.task_name.as_str()).collect();
    assert_eq!(names, ["double"]);
    let run = h.store().flow_run(&out.flow_run_id).await.unwrap().unwrap();
    assert_eq!(run.run_count, 2);
}

#[tokio::test]
async fn a_flows_final_state_hooks_run_for_a_run_without_an_instance() {
    let h = harness().await;
    let c = h.load(BASIC).await;
    let out = h.run(&c, "crash_hooked", json!({})).await;
    assert_eq!(state_of(&out), "COMPLETED/Completed");
    let record = h.store().flow_run(&out.flow_run_id).await.unwrap().unwrap();
    let crashed = State::new(StateType::Crashed).with_message("gave up after restarts");
    h.orch.run_final_hooks(&record, c.clone(), &crashed).await;
    h.orch
        .run_final_hooks(&record, c.clone(), &State::cancelled("by request"))
        .await;
    // A state the flow has no hooks for runs none.
    h.orch
        .run_final_hooks(&record, c.clone(), &State::failed("x"))
        .await;
    h.store().flush().await.unwrap();
    let logs = h.logs(&out.flow_run_id).await;
    let hooks: Vec<&String> = logs.iter().filter(|l| l.contains("hook:")).collect();
    assert_eq!(
        hooks,
        [
            "crash hook: crash-hooked Crashed",
            "cancel hook: crash-hooked Cancelled"
        ],
        "{logs:?}"
    );
}

/// A call whose arguments were futures is known by the arguments it was made with: a flow
/// retry replays it (and its upstream) instead of running them again.
#[tokio::test]
async fn calls_with_future_arguments_replay() {
    let h = harness().await;
    let c = h.load(BASIC).await;
    let out = h.run(&c, "replay_future_args", json!({"x": 4})).await;
    assert_eq!(state_of(&out), "COMPLETED/Completed", "{:?}", out.failure);
    assert_eq!(out.value.as_deref(), Some("48"));
    let run = h.store().flow_run(&out.flow_run_id).await.unwrap().unwrap();
    assert_eq!(run.run_count, 2);
    let tasks = h.store().task_runs(&out.flow_run_id).await.unwrap();
    let names: Vec<&str> = tasks.iter().map(|t| t.task_name.as_str()).collect();
    assert_eq!(names, ["square", "scale"], "nothing ran twice");
    let logs = h.logs(&out.flow_run_id).await;
    assert!(!logs.iter().any(|l| l.contains("other inputs")), "{logs:?}");
}

/// When the upstream call of a future argument runs again on a retry (its inputs changed),
/// the dependent call runs again with the new value instead of replaying the old one.
#[tokio::test]
async fn a_dependent_of_a_re_run_upstream_runs_again() {
    let h = harness().await;
    let c = h.load(BASIC).await;
    let out = h.run(&c, "replay_changed_upstream", json!({"x": 4})).await;
    assert_eq!(state_of(&out), "COMPLETED/Completed", "{:?}", out.failure);
    assert_eq!(
        out.value.as_deref(),
        Some("108"),
        "square(6) * 3, not square(5) * 3"
    );
    let tasks = h.store().task_runs(&out.flow_run_id).await.unwrap();
    let mut names: Vec<&str> = tasks.iter().map(|t| t.task_name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["scale", "scale", "square", "square"],
        "both ran again"
    );
}
