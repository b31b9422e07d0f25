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

/// A map far wider than the run's active task runs queues the rest in order: every run
/// is created, completes once, and the flow gets every value back.
#[tokio::test]
async fn a_map_wider_than_its_active_task_runs_completes_in_order() {
    let limits = weir::model::limits::Limits {
        max_active_task_runs: 8,
        ..crate::support::test_limits()
    };
    let h = crate::support::Harness::with_limits(limits).await;
    let c = h.load(BASIC).await;
    let n: u64 = 3000;
    let out = h.run(&c, "map_flow", json!({"n": n})).await;
    assert_eq!(state_of(&out), "COMPLETED/Completed", "{:?}", out.failure);
    let expected: u64 = (0..n).map(|i| i * i).sum();
    assert_eq!(out.value.as_deref(), Some(expected.to_string().as_str()));
    let tasks = h.store().task_runs(&out.flow_run_id).await.unwrap();
    assert_eq!(tasks.len(), n as usize);
    assert!(
        tasks
            .iter()
            .all(|t| t.state.is_completed() && t.run_count == 1)
    );
    let mut names: Vec<&str> = tasks.iter().map(|t| t.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), n as usize, "every run has a name of its own");
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

/// Futures and states passed as task and subflow arguments (Prefect resolves them): every
/// call form takes them, each run gets its upstream runs' values, and the upstream runs
/// are recorded as its `wait_for`.
#[tokio::test]
async fn futures_as_arguments_give_their_values() {
    let h = harness().await;
    let c = h.load(BASIC).await;
    let out = h.run(&c, "future_args_flow", json!({})).await;
    assert_eq!(state_of(&out), "COMPLETED/Completed", "{:?}", out.failure);
    let value: serde_json::Value = serde_json::from_str(out.value.as_deref().unwrap()).unwrap();
    assert_eq!(
        value,
        json!({
            "scaled": [10, 40, 90],
            "repeated": [9, 18],
            "total": 140,
            "state": 81,
            "named": 99,
            "sub": 18,
            "owned": 27,
        })
    );
    let tasks = h.store().task_runs(&out.flow_run_id).await.unwrap();
    let id_of = |pred: &dyn Fn(&weir::store::TaskRunRecord) -> bool| {
        tasks
            .iter()
            .find(|t| pred(t))
            .map(|t| t.id.clone())
            .unwrap()
    };
    // The run name is rendered from the resolved values.
    let named = tasks.iter().find(|t| t.task_name == "add_named").unwrap();
    assert_eq!(named.name, "add-18-81");
    let b = id_of(&|t| t.task_name == "scale" && t.position == Some(1));
    assert_eq!(named.upstream.len(), 2, "{:?}", named.upstream);
    assert_eq!(named.upstream[0], b);
    // A Vec parameter from three futures waits for the three runs.
    let total = tasks
        .iter()
        .find(|t| t.task_name == "sum_all" && t.upstream.len() == 3)
        .unwrap();
    assert!(total.state.is_completed());
    // The subflow got the future's value.
    let a = id_of(&|t| t.task_name == "square" && t.position == Some(0));
    let scaled_by_a = tasks
        .iter()
        .filter(|t| t.task_name == "scale" && t.upstream == vec![a.clone()])
        .count();
    assert_eq!(
        scaled_by_a, 3,
        "b and the two runs mapped with a repeated future"
    );
}

/// A submit with a future argument does not wait for it: the flow goes on while the
/// upstream run works.
#[tokio::test]
async fn a_future_argument_does_not_block_the_flow() {
    let h = harness().await;
    let c = h.load(BASIC).await;
    let out = h.run(&c, "future_arg_does_not_block_flow", json!({})).await;
    assert_eq!(state_of(&out), "COMPLETED/Completed", "{:?}", out.failure);
    let (submitted, span, length): (u64, serde_json::Value, u64) =
        serde_json::from_str(out.value.as_deref().unwrap()).unwrap();
    let (start, end) = (
        span["start"].as_u64().unwrap(),
        span["end"].as_u64().unwrap(),
    );
    assert!(
        submitted < end,
        "the flow went on at {submitted}, after the upstream ended at {end}"
    );
    assert_eq!(
        length,
        end - start,
        "the downstream run got the upstream's value"
    );
}

/// The future of a failed run as an argument: the downstream task run ends NotReady
/// without running, and a subflow given it fails without starting.
#[tokio::test]
async fn a_failed_future_argument_leaves_downstream_not_ready() {
    let h = harness().await;
    let c = h.load(BASIC).await;
    let out = h.run(&c, "future_arg_not_ready_flow", json!({})).await;
    assert_eq!(state_of(&out), "COMPLETED/Completed", "{:?}", out.failure);
    let (down, sub): (String, String) =
        serde_json::from_str(out.value.as_deref().unwrap()).unwrap();
    assert_eq!(down, "NotReady");
    assert!(
        sub.starts_with("upstream: Upstream task run '") && sub.contains("COMPLETED"),
        "{sub}"
    );
    let tasks = h.store().task_runs(&out.flow_run_id).await.unwrap();
    let echo = tasks.iter().find(|t| t.task_name == "echo").unwrap();
    assert_eq!(echo.state.name, "NotReady");
    assert_eq!(echo.run_count, 0, "the downstream body never ran");
    let children = h.store().subflow_runs(&out.flow_run_id).await.unwrap();
    assert!(children.is_empty(), "the subflow did not start");
}

/// Argument pointers that name no place in the arguments fail the call with a clear
/// error; a good one works.
#[tokio::test]
async fn argument_pointers_outside_the_arguments_are_refused() {
    let h = harness().await;
    let c = h.load(BASIC).await;
    let out = h.run(&c, "raw_future_args", json!({})).await;
    assert_eq!(state_of(&out), "COMPLETED/Completed", "{:?}", out.failure);
    let calls: Vec<(String, Option<u64>, String)> =
        serde_json::from_str(out.value.as_deref().unwrap()).unwrap();
    assert_eq!(calls[0], ("Completed".to_owned(), Some(81), String::new()));
    for (state, value, failure) in &calls[1..] {
        assert_eq!(state, "Failed");
        assert_eq!(*value, None);
        assert!(
            failure.contains("which is not a place in the call's arguments"),
            "{failure}"
        );
    }
}
