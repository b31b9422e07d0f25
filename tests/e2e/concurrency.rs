use super::*;
use serde_json::json;

#[tokio::test]
async fn map_over_a_thousand_items() {
    let h = harness().await;
    let c = h.load(BASIC).await;
    let out = h.run(&c, "map_flow", json!({"n": 1000})).await;
    assert_eq!(state_of(&out), "COMPLETED/Completed", "{:?}", out.failure);
    let expected: u64 = (0..1000u64).map(|i| i * i).sum();
    assert_eq!(out.value, Some(expected.to_string()));
    let tasks = h.store().task_runs(&out.flow_run_id).await.unwrap();
    assert_eq!(tasks.len(), 1000);
    assert!(tasks.iter().all(|t| t.state.is_completed()));
    // Positions are the call order: 0..1000, each once.
    let positions: Vec<i64> = tasks.iter().map(|t| t.position.unwrap()).collect();
    assert_eq!(positions, (0..1000).collect::<Vec<_>>());
}

#[tokio::test]
async fn map_repeats_unmapped_arguments() {
    let h = harness().await;
    let c = h.load(BASIC).await;
    let out = h
        .run(&c, "unmapped_flow", json!({"n": 4, "factor": 3}))
        .await;
    assert_eq!(out.value.as_deref(), Some("[0,3,6,9]"));
}

#[tokio::test]
async fn wait_for_orders_submitted_tasks() {
    let h = harness().await;
    let c = h.load(BASIC).await;
    let out = h.run(&c, "ordering_flow", json!({})).await;
    assert_eq!(state_of(&out), "COMPLETED/Completed", "{:?}", out.failure);
    let spans: serde_json::Value = serde_json::from_str(out.value.as_deref().unwrap()).unwrap();
    let first_end = spans[0]["end"].as_u64().unwrap();
    let second_start = spans[1]["start"].as_u64().unwrap();
    assert!(
        second_start >= first_end,
        "second started {second_start} before first ended {first_end}"
    );
}

#[tokio::test]
async fn allow_failure_lets_downstream_run() {
    let h = harness().await;
    let c = h.load(BASIC).await;
    let out = h.run(&c, "allow_failure_flow", json!({})).await;
    assert_eq!(state_of(&out), "COMPLETED/Completed", "{:?}", out.failure);
    assert_eq!(out.value.as_deref(), Some("49"));
}

#[tokio::test]
async fn a_failed_upstream_leaves_downstream_not_ready() {
    let h = harness().await;
    let c = h.load(BASIC).await;
    let out = h.run(&c, "not_ready_flow", json!({})).await;
    assert_eq!(out.state.kind, weir::model::state::StateType::Failed);
    let tasks = h.store().task_runs(&out.flow_run_id).await.unwrap();
    let down = tasks.iter().find(|t| t.task_name == "square").unwrap();
    assert_eq!(down.state.name, "NotReady");
    assert_eq!(down.run_count, 0, "the downstream body never ran");
}

/// More flow runs than the pool keeps for flows take the instances task attempts would
/// use: an attempt that finds the pool full waits for room (instances ending) instead of
/// failing its task run.
#[tokio::test]
async fn task_attempts_wait_for_room_in_a_full_pool() {
    let limits = weir::model::limits::Limits {
        max_instances: 8,
        ..crate::support::test_limits()
    };
    let h = crate::support::Harness::with_limits(limits).await;
    let c = h.load(BASIC).await;
    // Seven flow runs in a pool of eight, each waiting on a 300 ms task, leave one
    // instance for seven attempts at once.
    let runs = (0..7).map(|_| h.run(&c, "ordering_flow", json!({})));
    let outcomes = futures_util::future::join_all(runs).await;
    for out in &outcomes {
        assert_eq!(state_of(out), "COMPLETED/Completed", "{:?}", out.failure);
        let tasks = h.store().task_runs(&out.flow_run_id).await.unwrap();
        assert!(tasks.iter().all(|t| t.state.is_completed()), "{tasks:?}");
    }
    assert!(
        h.orch.engine().pool_waits() > 0,
        "no attempt found the pool full: the test did not test anything"
    );
}
