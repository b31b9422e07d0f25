//! Prefect's remaining task and flow options, run in the real host: task runners,
//! per-call options (`with_options`), `on_running` hooks, `validate_parameters=False`,
//! inherited `log_prints`, run-name functions, returned collections of states, and
//! Prefect's names and limits.

use super::*;
use serde_json::{Value, json};

const OPTIONS: &str = "guest_options";

fn value(out: &weir::orchestrate::FlowOutcome) -> Value {
    serde_json::from_str(out.value.as_deref().expect("a value")).expect("JSON value")
}

/// (index, start, end) of each interval a flow returned, in milliseconds.
fn intervals(out: &weir::orchestrate::FlowOutcome) -> Vec<(u64, u64, u64)> {
    serde_json::from_value(value(out)).expect("intervals")
}

/// The most intervals that overlap at one instant.
fn max_overlap(intervals: &[(u64, u64, u64)]) -> usize {
    intervals
        .iter()
        .map(|(_, start, _)| {
            intervals
                .iter()
                .filter(|(_, s, e)| s <= start && start < e)
                .count()
        })
        .max()
        .unwrap_or(0)
}

#[tokio::test]
async fn a_sequential_task_runner_runs_submitted_tasks_one_at_a_time_in_order() {
    let h = harness().await;
    let c = h.load(OPTIONS).await;
    let out = h.run(&c, "sequential_runner", json!({})).await;
    assert_eq!(state_of(&out), "COMPLETED/Completed", "{:?}", out.failure);
    let runs = intervals(&out);
    assert_eq!(runs.len(), 4);
    let mut by_start = runs.clone();
    by_start.sort_by_key(|r| r.1);
    let order: Vec<u64> = by_start.iter().map(|r| r.0).collect();
    assert_eq!(order, [0, 1, 2, 3], "in submission order: {runs:?}");
    for pair in by_start.windows(2) {
        assert!(pair[1].1 >= pair[0].2, "one at a time: {runs:?}");
    }
    let def = c.flow("sequential_runner").unwrap();
    assert_eq!(def.options.max_workers, Some(1));
}

#[tokio::test]
async fn a_thread_pool_task_runner_bounds_the_tasks_running_at_once() {
    let h = harness().await;
    let c = h.load(OPTIONS).await;
    let out = h.run(&c, "pool_of_two", json!({})).await;
    assert_eq!(state_of(&out), "COMPLETED/Completed", "{:?}", out.failure);
    let runs = intervals(&out);
    assert_eq!(runs.len(), 6);
    assert!(max_overlap(&runs) <= 2, "at most two at once: {runs:?}");
}

#[tokio::test]
async fn tasks_nested_in_a_sequential_runners_task_do_not_wait_for_its_worker() {
    let h = harness().await;
    let c = h.load(OPTIONS).await;
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        h.run(&c, "sequential_nested", json!({})),
    )
    .await
    .expect("no deadlock");
    assert_eq!(state_of(&out), "COMPLETED/Completed", "{:?}", out.failure);
    assert_eq!(value(&out), json!([100, 101, 102]));
}

#[tokio::test]
async fn with_options_overrides_retries_name_timeout_and_cache_for_one_call() {
    let h = harness().await;
    let c = h.load(OPTIONS).await;
    let out = h.run(&c, "with_options", json!({})).await;
    assert_eq!(state_of(&out), "COMPLETED/Completed", "{:?}", out.failure);
    let (attempts, timed_out, cached, uncached): (u32, String, u64, u64) =
        serde_json::from_value(value(&out)).unwrap();
    assert_eq!(attempts, 3, "two retries given for the call");
    assert_eq!(timed_out, "TimedOut");
    assert_ne!(cached, uncached, "the call without caching ran again");

    let tasks = h.store().task_runs(&out.flow_run_id).await.unwrap();
    let lucky = tasks
        .iter()
        .find(|t| t.name == "lucky")
        .unwrap_or_else(|| panic!("a run named by the call's template: {tasks:#?}"));
    assert_eq!(lucky.task_name, "third-time-lucky");
    assert_eq!(lucky.run_count, 3);
    // The task's own options are untouched for other calls.
    let def = c.task("third_time").unwrap();
    assert_eq!(def.options.retries, 0);
}

#[tokio::test]
async fn per_call_options_are_checked_like_declared_ones() {
    let h = harness().await;
    let c = h.load(OPTIONS).await;
    let out = h.run(&c, "bad_override", json!({})).await;
    assert_eq!(state_of(&out), "FAILED/Failed");
    let message = out.state.message.unwrap_or_default();
    assert!(message.contains("retry_delay_seconds"), "{message}");
    assert!(message.contains("at most 50"), "{message}");
}

#[tokio::test]
async fn on_running_hooks_run_for_the_flow_and_each_task_attempt() {
    let h = harness().await;
    let c = h.load(OPTIONS).await;
    let out = h.run(&c, "hooked_flow", json!({})).await;
    assert_eq!(state_of(&out), "COMPLETED/Completed", "{:?}", out.failure);
    let logs = h.logs(&out.flow_run_id).await;
    let hooks: Vec<&String> = logs
        .iter()
        .filter(|l| l.starts_with("running hook: "))
        .collect();
    assert!(
        hooks
            .iter()
            .any(|l| l.starts_with("running hook: hooked-flow ") && l.ends_with(" in Running")),
        "{logs:#?}"
    );
    let task_hooks: Vec<&&String> = hooks
        .iter()
        .filter(|l| l.starts_with("running hook: hooked_task hooked_task-0"))
        .collect();
    assert_eq!(task_hooks.len(), 2, "once per attempt: {logs:#?}");
    assert!(task_hooks[1].ends_with(" in Retrying"), "{task_hooks:?}");
}

#[tokio::test]
async fn validate_parameters_false_passes_parameters_through() {
    let h = harness().await;
    let c = h.load(OPTIONS).await;
    // Not validated: an unknown parameter is kept.
    let out = h
        .run(&c, "unvalidated", json!({"n": 21, "extra": true}))
        .await;
    assert_eq!(state_of(&out), "COMPLETED/Completed", "{:?}", out.failure);
    assert_eq!(value(&out), json!(42));
    let run = h.store().flow_run(&out.flow_run_id).await.unwrap().unwrap();
    assert_eq!(run.parameters, json!({"n": 21, "extra": true}));
    // Not coerced: "5" reaches the flow as text, which its code cannot take as a number.
    let out = h.run(&c, "unvalidated", json!({"n": "5"})).await;
    assert_eq!(state_of(&out), "FAILED/Failed");
    let run = h.store().flow_run(&out.flow_run_id).await.unwrap().unwrap();
    assert_eq!(run.parameters, json!({"n": "5"}));
    assert!(
        run.start_time.is_some(),
        "the run started: the flow refused it"
    );
}

#[tokio::test]
async fn defaults_of_struct_parameters_are_recorded_with_the_run() {
    let h = harness().await;
    let c = h.load(OPTIONS).await;
    let out = h.run(&c, "struct_default", json!({})).await;
    assert_eq!(state_of(&out), "COMPLETED/Completed", "{:?}", out.failure);
    let run = h.store().flow_run(&out.flow_run_id).await.unwrap().unwrap();
    assert_eq!(run.parameters, json!({"window": {"days": 7}}));
    assert_eq!(run.name, "window-7");
}

#[tokio::test]
async fn log_prints_is_inherited_and_can_be_turned_off() {
    let h = harness().await;
    let c = h.load(OPTIONS).await;
    let out = h.run(&c, "prints_on", json!({})).await;
    assert_eq!(state_of(&out), "COMPLETED/Completed", "{:?}", out.failure);
    let mut logs = h.store().logs(&out.flow_run_id).await.unwrap();
    let subflow = h.store().subflow_runs(&out.flow_run_id).await.unwrap();
    assert_eq!(subflow.len(), 1);
    logs.extend(h.store().logs(&subflow[0].id).await.unwrap());
    let level = |msg: &str| {
        logs.iter()
            .find(|l| l.message == msg)
            .map(|l| l.level.clone())
    };
    assert_eq!(
        level("flow prints with log_prints").as_deref(),
        Some("INFO")
    );
    assert_eq!(
        level("task inherits the flow's log_prints").as_deref(),
        Some("INFO")
    );
    assert_eq!(
        level("subflow inherits its parent's log_prints").as_deref(),
        Some("INFO")
    );
    assert_eq!(level("task opted out of log_prints"), None, "{logs:#?}");

    // Nobody turned it on: nothing printed is kept (as in Prefect).
    let out = h.run(&c, "prints_off", json!({})).await;
    assert_eq!(state_of(&out), "COMPLETED/Completed", "{:?}", out.failure);
    let logs = h.logs(&out.flow_run_id).await;
    assert!(
        !logs.iter().any(|l| l.contains("prints")),
        "prints without log_prints are not stored: {logs:#?}"
    );
}

#[tokio::test]
async fn run_name_functions_name_flow_and_task_runs_from_the_context() {
    let h = harness().await;
    let c = h.load(OPTIONS).await;
    let def = c.flow("named_report").unwrap();
    assert!(def.options.has_run_name_fn);
    let out = h.run(&c, "named_report", json!({"region": "eu"})).await;
    assert_eq!(state_of(&out), "COMPLETED/Completed", "{:?}", out.failure);
    let (flow_seen, task_seen): (String, String) = serde_json::from_value(value(&out)).unwrap();
    assert_eq!(flow_seen, "report-for-eu");
    assert_eq!(task_seen, "row-7-of-report-for-eu");
    let run = h.store().flow_run(&out.flow_run_id).await.unwrap().unwrap();
    assert_eq!(run.name, "report-for-eu");
    let tasks = h.store().task_runs(&out.flow_run_id).await.unwrap();
    assert_eq!(tasks[0].name, "row-7-of-report-for-eu");
}

#[tokio::test]
async fn returned_collections_of_states_decide_the_final_state_as_in_prefect() {
    let h = harness().await;
    let c = h.load(OPTIONS).await;

    let out = h.run(&c, "returns_tuple", json!({})).await;
    assert_eq!(state_of(&out), "FAILED/Failed");
    assert_eq!(out.state.message.as_deref(), Some("1/3 states failed."));
    let run = h.store().flow_run(&out.flow_run_id).await.unwrap().unwrap();
    let kept = run
        .result
        .expect("the returned states are kept with the failed run");
    assert_eq!(kept.as_array().map(Vec::len), Some(3), "{kept}");
    assert_eq!(kept[0]["type"], "failed");

    let out = h.run(&c, "returns_mixed", json!({})).await;
    assert_eq!(state_of(&out), "COMPLETED/Completed", "{:?}", out.failure);
    assert_eq!(out.state.message.as_deref(), Some("All states completed."));

    let out = h.run(&c, "returns_failed_task_state", json!({})).await;
    assert_eq!(state_of(&out), "FAILED/Failed");
    assert_eq!(out.state.message.as_deref(), Some("this task fails"));

    let out = h.run(&c, "returns_futures", json!({})).await;
    assert_eq!(state_of(&out), "COMPLETED/Completed", "{:?}", out.failure);
}

#[tokio::test]
async fn a_constant_in_map_is_repeated_for_every_run() {
    let h = harness().await;
    let c = h.load(OPTIONS).await;
    let out = h.run(&c, "map_constant", json!({})).await;
    assert_eq!(state_of(&out), "COMPLETED/Completed", "{:?}", out.failure);
    assert_eq!(value(&out), json!([11, 12, 13]));
}

#[tokio::test]
async fn flow_names_follow_prefect_and_its_limits_hold() {
    let h = harness().await;
    let c = h.load(OPTIONS).await;
    assert!(c.manifest.flow_names().contains(&"my-add-one-flow"));
    // Without a version of its own, a flow is versioned by the component's digest.
    let def = c.flow("my-add-one-flow").unwrap();
    assert_eq!(def.version.as_deref(), Some(&c.digest[..12]));
    // The function's name finds the flow too.
    let out = h.run(&c, "my_add_one_flow", json!({"x": 1})).await;
    assert_eq!(state_of(&out), "COMPLETED/Completed", "{:?}", out.failure);
    let run = h.store().flow_run(&out.flow_run_id).await.unwrap().unwrap();
    assert_eq!(run.flow_name, "my-add-one-flow");

    // Parameters over 512 KB are refused before the run starts.
    let big = "x".repeat(600 * 1024);
    let out = h
        .run(&c, "my-add-one-flow", json!({"x": 1, "pad": big}))
        .await;
    assert_eq!(state_of(&out), "FAILED/Failed");
    let message = out.state.message.unwrap_or_default();
    assert!(message.contains("512kb"), "{message}");
}

#[tokio::test]
async fn a_refused_outbound_request_still_follows_the_tasks_retries() {
    let h = harness().await;
    let c = h.load(OPTIONS).await;
    let out = h.run(&c, "denied_fetch", json!({})).await;
    assert_eq!(state_of(&out), "FAILED/Failed");
    let tasks = h.store().task_runs(&out.flow_run_id).await.unwrap();
    assert_eq!(tasks[0].run_count, 2, "the retry was made: {tasks:#?}");
}

#[tokio::test]
async fn nan_and_infinities_cross_task_runs_intact() {
    let h = harness().await;
    let c = h.load(OPTIONS).await;
    let out = h.run(&c, "non_finite_values", json!({})).await;
    assert_eq!(state_of(&out), "COMPLETED/Completed", "{:?}", out.failure);
    assert_eq!(value(&out), json!([true, "Infinity", "-Infinity", true]));
    let tasks = h.store().task_runs(&out.flow_run_id).await.unwrap();
    let stored = tasks
        .iter()
        .find(|t| t.task_name == "non_finite")
        .and_then(|t| t.result.clone());
    assert_eq!(stored, Some(json!(["NaN", "Infinity", [1.0, "-Infinity"]])));
}

/// Flows sharing a name (Prefect's entrypoints tell them apart): each runs by its
/// function and shows the shared name; the name alone is refused, naming the functions;
/// hooks, flow retries and subflow replays find the right flow; a call renamed with
/// `with_options(name=..)` replays under its new name.
#[tokio::test]
async fn flows_sharing_a_name_run_by_their_functions() {
    let h = harness().await;
    let c = h.load(OPTIONS).await;
    let a = h.run(&c, "twin_a", json!({"x": 1})).await;
    assert_eq!(state_of(&a), "COMPLETED/Completed", "{:?}", a.failure);
    assert_eq!(value(&a), json!("a1"));
    let more = h.run(&c, "more::twin_a", json!({"x": "y"})).await;
    assert_eq!(value(&more), json!("more y"));
    // A flow retry finds the flow again by the function the run recorded.
    let b = h.run(&c, "twin_b", json!({"x": 2})).await;
    assert_eq!(state_of(&b), "COMPLETED/Completed", "{:?}", b.failure);
    assert_eq!(value(&b), json!("b2"));
    let record = h.store().flow_run(&b.flow_run_id).await.unwrap().unwrap();
    assert_eq!(record.flow_name, "twin");
    assert_eq!(record.flow_function.as_deref(), Some("twin_b"));
    assert_eq!(record.run_count, 2);
    // The completion hook is twin_a's alone.
    h.store().flush().await.unwrap();
    let hooked = |id: &str| {
        let h = &h;
        let id = id.to_owned();
        async move {
            h.logs(&id)
                .await
                .iter()
                .any(|l| l.starts_with("hook of twin ran"))
        }
    };
    assert!(hooked(&a.flow_run_id).await);
    assert!(!hooked(&b.flow_run_id).await);

    let refused = h
        .orch
        .run_flow(weir::orchestrate::FlowRequest::new(
            c.clone(),
            "twin",
            json!({"x": 1}),
        ))
        .await
        .expect_err("the shared name is refused")
        .to_string();
    assert!(refused.contains("3 flows named 'twin'"), "{refused}");
    for function in ["twin_a", "twin_b", "more::twin_a"] {
        assert!(refused.contains(function), "{refused}");
    }

    // Subflows by function, and a renamed task call, replayed by a flow retry.
    let parent = h.run(&c, "twins_parent", json!({})).await;
    assert_eq!(
        state_of(&parent),
        "COMPLETED/Completed",
        "{:?}",
        parent.failure
    );
    assert_eq!(value(&parent), json!(["a1", "more x", 3]));
    let children = h.store().subflow_runs(&parent.flow_run_id).await.unwrap();
    let functions: Vec<Option<&str>> = children
        .iter()
        .map(|c| c.flow_function.as_deref())
        .collect();
    assert_eq!(
        functions,
        [Some("twin_a"), Some("more::twin_a")],
        "nothing ran twice"
    );
    let tasks = h.store().task_runs(&parent.flow_run_id).await.unwrap();
    let names: Vec<&str> = tasks.iter().map(|t| t.task_name.as_str()).collect();
    assert_eq!(names, ["renamed"]);
}
