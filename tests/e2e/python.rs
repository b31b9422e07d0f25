//! Python guests (Weir's Python SDK built with `weir build`, componentize-py) in the real
//! host: the examples, and the assertions the Rust guests' tests make (states, retries and
//! their delays, timeouts, caching, maps, subflows, futures, artifacts, logs, parameters,
//! hooks, replay, pauses), plus what is particular to a CPython guest (async code, the
//! standard library imported at run time, sockets denied, pool sizing) and hostile code.

use crate::state_of;
use crate::support::{Harness, shared_compile_cache, test_limits};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use weir::host::LoadedComponent;
use weir::model::state::StateType;
use weir::orchestrate::FlowOutcome;

const BASIC: &str = "guest_basic";

async fn harness() -> Harness {
    Harness::shared(test_limits()).await
}

async fn run(h: &Harness, c: &Arc<LoadedComponent>, flow: &str, params: Value) -> FlowOutcome {
    tokio::time::timeout(Duration::from_secs(120), h.run(c, flow, params))
        .await
        .unwrap_or_else(|_| panic!("{flow} did not end within 2 minutes"))
}

async fn completed(h: &Harness, c: &Arc<LoadedComponent>, flow: &str, params: Value) -> Value {
    let out = run(h, c, flow, params).await;
    assert_eq!(
        state_of(&out),
        "COMPLETED/Completed",
        "{flow}: {:?} {:?}",
        out.state,
        out.failure
    );
    serde_json::from_str(out.value.as_deref().unwrap_or("null")).unwrap()
}

fn message(out: &FlowOutcome) -> String {
    out.state.message.clone().unwrap_or_default()
}

// The examples.

#[tokio::test]
async fn example_hello() {
    let h = harness().await;
    let c = h.load_python("hello").await;
    assert!(
        c.manifest.sdk.starts_with("weir-python/"),
        "{}",
        c.manifest.sdk
    );
    let value = completed(&h, &c, "hello", json!({})).await;
    assert_eq!(value, "Hello, world!");
    let out = run(&h, &c, "hello", json!({"name": "Ada"})).await;
    let logs = h.logs(&out.flow_run_id).await;
    assert!(logs.iter().any(|l| l == "Hello, Ada!"), "{logs:?}");
}

#[tokio::test]
async fn example_etl() {
    let h = harness().await;
    let c = h.load_python("etl").await;
    let out = run(&h, &c, "etl", json!({})).await;
    assert_eq!(state_of(&out), "COMPLETED/Completed", "{:?}", out.failure);
    assert_eq!(out.value.as_deref(), Some("20"));
    let artifacts = h.store().artifacts(&out.flow_run_id).await.unwrap();
    let kinds: Vec<(Option<&str>, &str)> = artifacts
        .iter()
        .map(|a| (a.key.as_deref(), a.kind.as_str()))
        .collect();
    assert!(
        kinds.contains(&(Some("etl-report"), "markdown")),
        "{kinds:?}"
    );
    assert!(kinds.contains(&(Some("etl-table"), "table")), "{kinds:?}");
    let table = artifacts.iter().find(|a| a.kind == "table").unwrap();
    assert_eq!(table.data[0]["customer"], "customer 0", "{}", table.data);
    let tasks = h.store().task_runs(&out.flow_run_id).await.unwrap();
    assert!(
        tasks.iter().any(|t| t.name == "extract-page-4"),
        "task run names come from the template"
    );
    let logs = h.logs(&out.flow_run_id).await;
    assert!(
        logs.iter()
            .any(|l| l == "extracted 20 records from 5 pages"),
        "{logs:?}"
    );
}

#[tokio::test]
async fn example_retries() {
    let h = harness().await;
    let c = h.load_python("retries").await;
    let out = run(&h, &c, "retries", json!({})).await;
    assert_eq!(out.value.as_deref(), Some("3"), "{:?}", out.failure);
    let tasks = h.store().task_runs(&out.flow_run_id).await.unwrap();
    assert_eq!(tasks[0].run_count, 3);
}

#[tokio::test]
async fn example_caching() {
    let h = harness().await;
    let c = h.load_python("caching").await;
    let a = run(&h, &c, "caching", json!({"x": 3})).await;
    let b = run(&h, &c, "caching", json!({"x": 3})).await;
    assert!(
        a.state.is_completed() && b.state.is_completed(),
        "{:?}",
        a.failure
    );
    assert_eq!(a.value.as_deref(), Some("9"));
    assert_eq!(a.value, b.value);
    let tasks = h.store().task_runs(&b.flow_run_id).await.unwrap();
    assert!(tasks.iter().all(|t| t.state.name == "Cached"), "{tasks:?}");
    let logs = h.logs(&b.flow_run_id).await;
    assert!(!logs.iter().any(|l| l.contains("computing")), "{logs:?}");
}

#[tokio::test]
async fn example_subflows() {
    let h = harness().await;
    let c = h.load_python("subflows").await;
    let value = completed(&h, &c, "parent", json!({})).await;
    assert_eq!(value, "hello ada, hello grace");
}

// States and final-state rules.

#[tokio::test]
async fn states_follow_prefects_final_state_rules() {
    let h = harness().await;
    let c = h.load_python(BASIC).await;
    let out = run(&h, &c, "skipped", json!({})).await;
    assert_eq!(state_of(&out), "COMPLETED/Skipped");
    assert_eq!(message(&out), "nothing to do");

    let out = run(&h, &c, "raises", json!({})).await;
    assert_eq!(state_of(&out), "FAILED/Failed");
    assert_eq!(message(&out), "ValueError: bad input");
    let details = out
        .failure
        .as_ref()
        .and_then(|f| f.details.clone())
        .unwrap();
    assert!(
        details["traceback"]
            .as_str()
            .unwrap()
            .contains("raise ValueError(word)"),
        "{details}"
    );

    let out = run(&h, &c, "returns-states", json!({})).await;
    assert_eq!(state_of(&out), "FAILED/Failed");
    assert_eq!(message(&out), "1/2 states failed.");

    let out = run(&h, &c, "handled", json!({})).await;
    assert_eq!(state_of(&out), "COMPLETED/Completed", "{:?}", out.failure);
    assert_eq!(out.value.as_deref(), Some("\"handled KeyError('lost')\""));

    let out = run(&h, &c, "failed-state", json!({})).await;
    assert_eq!(state_of(&out), "FAILED/Failed");
    assert_eq!(message(&out), "chose to fail");
}

// Retries.

#[tokio::test]
async fn a_flaky_task_is_retried_with_its_delays() {
    let h = harness().await;
    let c = h.load_python(BASIC).await;
    let out = run(&h, &c, "retry-flow", json!({"fail_times": 2})).await;
    assert_eq!(state_of(&out), "COMPLETED/Completed", "{:?}", out.failure);
    assert_eq!(out.value.as_deref(), Some("3"));
    let tasks = h.store().task_runs(&out.flow_run_id).await.unwrap();
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
    let gap = |a: usize, b: usize| (history[b].timestamp - history[a].timestamp).num_milliseconds();
    assert!(gap(2, 3) >= 190, "first delay {} ms", gap(2, 3));
    assert!(gap(4, 5) >= 390, "second delay {} ms", gap(4, 5));

    let out = run(&h, &c, "retry-flow", json!({"fail_times": 10})).await;
    assert_eq!(out.state.kind, StateType::Failed);
    let tasks = h.store().task_runs(&out.flow_run_id).await.unwrap();
    assert_eq!(tasks[0].run_count, 4, "1 attempt + 3 retries");
    assert!(
        message(&out).contains("attempt 4 failed"),
        "{:?}",
        out.state
    );
}

#[tokio::test]
async fn with_options_inside_a_run_replaces_the_tasks_options_for_its_calls() {
    let h = harness().await;
    let c = h.load_python(BASIC).await;
    // `flaky` allows 3 retries; the variant made in the flow allows 5, without delays.
    let out = run(&h, &c, "with-options-flow", json!({"fail_times": 5})).await;
    assert_eq!(state_of(&out), "COMPLETED/Completed", "{:?}", out.failure);
    assert_eq!(out.value.as_deref(), Some("6"));
    let tasks = h.store().task_runs(&out.flow_run_id).await.unwrap();
    assert_eq!(tasks[0].task_name, "flaky-patient");
    assert_eq!(tasks[0].run_count, 6);
    assert!(
        c.task("flaky-patient").is_none(),
        "the variant is not a new task"
    );
}

#[tokio::test]
async fn a_sequential_task_runner_runs_submitted_tasks_one_at_a_time() {
    let h = harness().await;
    let c = h.load_python(BASIC).await;
    assert_eq!(
        c.flow("sequential-runner").unwrap().options.max_workers,
        Some(1)
    );
    let value = completed(&h, &c, "sequential-runner", json!({})).await;
    let runs: Vec<(u32, f64, f64)> = serde_json::from_value(value).unwrap();
    assert_eq!(runs.iter().map(|r| r.0).collect::<Vec<_>>(), [0, 1, 2]);
    for pair in runs.windows(2) {
        assert!(pair[1].1 >= pair[0].2, "one at a time, in order: {runs:?}");
    }
}

#[tokio::test]
async fn concurrency_blocks_hold_global_limits_and_time_out_clearly() {
    let h = harness().await;
    let store = h.store().clone();
    store
        .put_global_limit("", "db", 1, None, true)
        .await
        .unwrap();
    store
        .put_global_limit("", "api", 5, Some(5.0), true)
        .await
        .unwrap();
    let c = h.load_python(BASIC).await;
    // Someone else holds the only slot: the block gives up at its deadline.
    crate::support::hold_limit_slot(&store, "db").await;
    let value = completed(&h, &c, "limited-block", json!({"timeout": 0.2})).await;
    let text = value.as_str().unwrap_or_default();
    assert!(text.starts_with("gave up: timed out after 0.2"), "{text}");
    store.release_concurrency_slots("holder").await.unwrap();
    let value = completed(&h, &c, "limited-block", json!({"timeout": 10})).await;
    assert_eq!(value, "held");
    // The block gave its slot back.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while store.global_limit_in_use("", "db").await.unwrap() > 0.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the slot was not given back"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn callable_run_names_name_flow_and_task_runs_as_they_start() {
    let h = harness().await;
    let c = h.load_python(BASIC).await;
    let out = run(&h, &c, "named-by-callable", json!({"region": "eu"})).await;
    assert_eq!(state_of(&out), "COMPLETED/Completed", "{:?}", out.failure);
    let value: Value = serde_json::from_str(out.value.as_deref().unwrap_or("null")).unwrap();
    assert_eq!(value, json!(["report-for-eu", "row-7"]));
    let record = h.store().flow_run(&out.flow_run_id).await.unwrap().unwrap();
    assert_eq!(record.name, "report-for-eu");
    let tasks = h.store().task_runs(&out.flow_run_id).await.unwrap();
    assert_eq!(tasks[0].name, "row-7");
}

#[tokio::test]
async fn the_retry_condition_sees_the_tasks_exception() {
    let h = harness().await;
    let c = h.load_python(BASIC).await;
    let out = run(&h, &c, "retry-condition-flow", json!({"kind": "transient"})).await;
    let tasks = h.store().task_runs(&out.flow_run_id).await.unwrap();
    assert_eq!(
        tasks[0].run_count, 4,
        "a TimeoutError is retried every time"
    );
    let out = run(&h, &c, "retry-condition-flow", json!({"kind": "bad"})).await;
    let tasks = h.store().task_runs(&out.flow_run_id).await.unwrap();
    assert_eq!(tasks[0].run_count, 1, "a ValueError is not retried");
    assert_eq!(out.state.kind, StateType::Failed);
}

// Timeouts.

#[tokio::test]
async fn a_spinning_or_sleeping_task_is_stopped_at_its_timeout() {
    let h = harness().await;
    let c = h.load_python(BASIC).await;
    for flow in ["timeout-flow", "sleep-timeout-flow"] {
        let started = std::time::Instant::now();
        let out = run(&h, &c, flow, json!({})).await;
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{flow} took {:?}",
            started.elapsed()
        );
        assert_eq!(out.state.kind, StateType::Failed, "{flow}");
        let tasks = h.store().task_runs(&out.flow_run_id).await.unwrap();
        assert_eq!(tasks[0].state.name, "TimedOut", "{flow}");
        assert!(
            tasks[0]
                .state
                .message
                .as_deref()
                .unwrap()
                .contains("timeout of 0.5"),
            "{:?}",
            tasks[0].state
        );
    }
}

// Caching.

#[tokio::test]
async fn caches_hit_within_a_run_and_across_runs() {
    let h = harness().await;
    let c = h.load_python(BASIC).await;
    let first = run(&h, &c, "cached", json!({"x": 4})).await;
    assert_eq!(
        first.value.as_deref(),
        Some("[16,16,104,104]"),
        "{:?}",
        first.failure
    );
    let names = |tasks: &[weir::store::TaskRunRecord]| -> Vec<String> {
        tasks.iter().map(|t| t.state.name.clone()).collect()
    };
    let tasks = h.store().task_runs(&first.flow_run_id).await.unwrap();
    assert_eq!(
        names(&tasks),
        ["Completed", "Cached", "Completed", "Cached"]
    );
    let second = run(&h, &c, "cached", json!({"x": 4})).await;
    assert_eq!(first.value, second.value);
    let tasks = h.store().task_runs(&second.flow_run_id).await.unwrap();
    assert_eq!(names(&tasks), ["Cached", "Cached", "Cached", "Cached"]);
    let logs = h.logs(&second.flow_run_id).await;
    assert!(!logs.iter().any(|l| l.contains("computing")), "{logs:?}");
}

// Maps, futures, subflows.

#[tokio::test]
async fn a_map_over_1000_items() {
    let h = harness().await;
    let c = h.load_python(BASIC).await;
    let out = run(&h, &c, "map-flow", json!({"n": 1000})).await;
    assert_eq!(out.value.as_deref(), Some("999000"), "{:?}", out.failure);
    let tasks = h.store().task_runs(&out.flow_run_id).await.unwrap();
    assert_eq!(tasks.len(), 1000);
    assert!(tasks.iter().all(|t| t.state.kind == StateType::Completed));
}

#[tokio::test]
async fn futures_resolve_as_arguments_and_order_dependent_runs() {
    let h = harness().await;
    let c = h.load_python(BASIC).await;
    let value = completed(&h, &c, "futures-flow", json!({})).await;
    assert_eq!(
        value,
        json!({"b": 16, "c": 2, "mapped": [101, 102, 103], "after": 10, "failed": true,
               "blocked": "PENDING", "state": "Completed"})
    );
}

/// A future passed to `submit` goes to the host, which starts the run with its value once
/// it completed: the flow goes on meanwhile, lists of futures resolve element by element,
/// and the runs record their upstream runs.
#[tokio::test]
async fn futures_as_arguments_resolve_on_the_host() {
    let h = harness().await;
    let c = h.load_python(BASIC).await;
    let out = run(&h, &c, "futures-on-host", json!({})).await;
    assert_eq!(state_of(&out), "COMPLETED/Completed", "{:?}", out.failure);
    let value: Value = serde_json::from_str(out.value.as_deref().unwrap()).unwrap();
    assert_eq!(
        value,
        json!({"went_on": true, "span": true, "total": 6, "keyed": 104, "remapped": [0, 4, 8]})
    );
    let tasks = h.store().task_runs(&out.flow_run_id).await.unwrap();
    let total = tasks.iter().find(|t| t.task_name == "total").unwrap();
    assert_eq!(total.upstream.len(), 3, "{:?}", total.upstream);
}

#[tokio::test]
async fn subflows_are_linked_to_their_parent() {
    let h = harness().await;
    let c = h.load_python(BASIC).await;
    let out = run(&h, &c, "parent", json!({"names": ["ada", "grace"]})).await;
    assert_eq!(
        out.value.as_deref(),
        Some(r#"["hello ada","hello grace"]"#),
        "{:?}",
        out.failure
    );
    let children = h.store().subflow_runs(&out.flow_run_id).await.unwrap();
    let mut names: Vec<&str> = children.iter().map(|r| r.name.as_str()).collect();
    names.sort();
    assert_eq!(names, ["child-ada", "child-grace"]);
    assert!(
        children
            .iter()
            .all(|r| r.state.kind == StateType::Completed)
    );
}

// Artifacts, logs, prints, runtime, variables, secrets.

#[tokio::test]
async fn artifacts_logs_prints_and_the_runtime() {
    let h = harness().await;
    let c = h.load_python(BASIC).await;
    let out = run(&h, &c, "reporting", json!({"day": "friday"})).await;
    assert_eq!(state_of(&out), "COMPLETED/Completed", "{:?}", out.failure);
    let value: Value = serde_json::from_str(out.value.as_deref().unwrap()).unwrap();
    assert_eq!(value["name"], "reporting-friday");
    assert_eq!(value["flow"], "reporting");
    assert_eq!(value["parameters"], json!({"day": "friday"}));
    assert_eq!(value["variable"], "no variable");
    assert!(
        value["secret"].as_str().unwrap().contains("secret"),
        "{value}"
    );

    let artifacts = h.store().artifacts(&out.flow_run_id).await.unwrap();
    let find = |key: &str| {
        artifacts
            .iter()
            .find(|a| a.key.as_deref() == Some(key))
            .unwrap()
    };
    assert_eq!(find("py-report").kind, "markdown");
    assert_eq!(find("py-table").kind, "table");
    assert_eq!(
        find("py-table").data,
        json!([{"a": 1, "b": 2}, {"a": 3, "b": 4}])
    );
    assert_eq!(find("py-link").kind, "link");
    assert_eq!(find("py-progress").kind, "progress");
    assert_eq!(find("py-progress").data, json!(100.0));

    let logs = h.logs(&out.flow_run_id).await;
    for line in [
        "info from reporting",
        "a warning",
        "printed by the flow",
        "SHOUT HEY",
    ] {
        assert!(logs.iter().any(|l| l == line), "{line:?} not in {logs:?}");
    }
    assert!(!logs.iter().any(|l| l.contains("debug line")), "{logs:?}");
}

// Parameters.

#[tokio::test]
async fn parameters_are_checked_against_the_type_hints_and_coerced() {
    let h = harness().await;
    let c = h.load_python(BASIC).await;
    let schema = &c.flow("typed").unwrap().parameters;
    assert_eq!(schema["properties"]["window"]["$ref"], "#/$defs/Window");
    assert_eq!(
        schema["properties"]["mode"]["enum"],
        json!(["fast", "slow"])
    );
    let value = completed(
        &h,
        &c,
        "typed",
        json!({"n": "5", "ratio": "0.25", "flag": "true", "window": {"days": "7"},
               "when": "2024-03-01"}),
    )
    .await;
    assert_eq!(value, "5|0.25|True|7|window|Friday|fast|None|None|None");
    let schema_point = &schema["properties"]["point"];
    assert!(
        schema_point.to_string().contains("#/$defs/Point"),
        "a TypedDict is a schema of its own: {schema_point}"
    );
    let value = completed(
        &h,
        &c,
        "typed",
        json!({"n": 1, "ratio": 1.5, "flag": false, "window": {"days": 2, "label": "w"},
               "when": "2024-03-02", "mode": "slow", "name": "Ada",
               "point": {"x": "3", "y": 1.5}, "at": "2024-03-01T14:30:00Z"}),
    )
    .await;
    assert_eq!(value, "1|1.5|False|2|w|Saturday|slow|Ada|3,1.5|14");
    let out = run(
        &h,
        &c,
        "typed",
        json!({"n": 1, "ratio": 1, "flag": true, "window": {"days": 1}, "when": "2024-03-02",
               "mode": "medium", "point": {"x": 1}, "at": "yesterday"}),
    )
    .await;
    assert_eq!(out.state.kind, StateType::Failed);
    let m = message(&out);
    for needle in ["medium", "'point'", "'at'"] {
        assert!(m.contains(needle), "{needle} not in {m}");
    }

    let out = run(
        &h,
        &c,
        "typed",
        json!({"n": "five", "ratio": 1, "unknown": 1}),
    )
    .await;
    assert_eq!(out.state.kind, StateType::Failed);
    let m = message(&out);
    for needle in ["'n'", "flag", "unknown"] {
        assert!(m.contains(needle), "{needle} not in {m}");
    }
    let history = h.store().state_history(&out.flow_run_id).await.unwrap();
    assert!(
        history.iter().all(|s| s.kind != StateType::Running),
        "{history:?}"
    );
}

/// A flow whose parameters and results are pydantic v1 models, bundled from the virtualenv
/// the component was built in: the host checks and coerces parameters against the models'
/// schema, the tasks get model instances, the models' own validators reject what they
/// reject as invalid parameters (without retrying), and a returned model is its JSON.
#[tokio::test]
async fn pydantic_models_from_the_virtualenv_are_parameters_and_results() {
    let h = harness().await;
    let c = h.load_python("guest_pydantic").await;
    let schema = &c.flow("orders").unwrap().parameters;
    assert_eq!(
        schema["properties"]["batch"]["$ref"], "#/$defs/Batch",
        "{schema}"
    );
    let order = &schema["$defs"]["Order"];
    assert_eq!(order["required"], json!(["id", "item"]), "{order}");
    assert_eq!(
        order["properties"]["size"]["enum"],
        json!(["small", "large"])
    );

    let value = completed(
        &h,
        &c,
        "orders",
        json!({"batch": {"orders": [{"id": 1, "item": " apple ", "quantity": "3"},
                                    {"id": "2", "item": "pear", "size": "large"}]},
               "scale": 2}),
    )
    .await;
    assert_eq!(
        value,
        json!({"total": 8, "given": "Batch", "order": "Order", "pydantic": "1",
               "biggest": {"id": 1, "item": "apple", "quantity": 3, "size": "small",
                           "notes": null},
               "biggest_is_model": true})
    );

    // The schema: refused by the host before the run starts.
    let out = run(
        &h,
        &c,
        "orders",
        json!({"batch": {"orders": [{"item": "fig", "size": "huge"}]}}),
    )
    .await;
    assert_eq!(out.state.kind, StateType::Failed);
    let m = message(&out);
    for needle in ["batch.orders.0", "\"id\"", "huge"] {
        assert!(m.contains(needle), "{needle} not in {m}");
    }
    // The model's own validator: refused by the SDK in the run, naming each field.
    let out = run(
        &h,
        &c,
        "orders",
        json!({"batch": {"orders": [{"id": 1, "item": "  "}, {"id": 2, "item": "fig"}]}}),
    )
    .await;
    assert_eq!(out.state.kind, StateType::Failed);
    let m = message(&out);
    assert!(
        m.starts_with(
            "Validation of flow parameters failed: 'batch.orders.0.item': an order names its item"
        ),
        "{m}"
    );
    assert!(!m.contains("orders.1"), "{m}");
    let tasks = h.store().task_runs(&out.flow_run_id).await.unwrap();
    assert!(tasks.is_empty(), "no task ran: {tasks:?}");
    // A flow that does not validate its parameters is given the JSON its model rejects.
    let rejected = json!({"batch": {"orders": [{"id": 1, "item": " "}]}});
    let value = completed(&h, &c, "orders-unchecked", rejected).await;
    assert_eq!(value, "dict");
    let accepted = json!({"batch": {"orders": [{"id": 1, "item": "fig"}]}});
    let value = completed(&h, &c, "orders-unchecked", accepted).await;
    assert_eq!(value, "Batch");
}

// Hooks.

#[tokio::test]
async fn state_hooks_run() {
    let h = harness().await;
    let c = h.load_python(BASIC).await;
    let out = run(&h, &c, "hooked", json!({})).await;
    assert_eq!(
        out.value.as_deref(),
        Some("\"FAILED\""),
        "{:?}",
        out.failure
    );
    h.store().flush().await.unwrap();
    let logs = h.logs(&out.flow_run_id).await;
    for line in [
        "running hook: hooked Running",
        "failure hook: hooked_task FAILED",
        "completion hook: hooked Completed",
    ] {
        assert!(logs.iter().any(|l| l == line), "{line:?} not in {logs:?}");
    }
}

// Replay.

#[tokio::test]
async fn a_retried_flow_replays_its_completed_tasks() {
    let h = harness().await;
    let c = h.load_python(BASIC).await;
    let out = run(&h, &c, "replayed", json!({"x": 1})).await;
    assert_eq!(state_of(&out), "COMPLETED/Completed", "{:?}", out.failure);
    assert_eq!(out.value.as_deref(), Some("2"));
    let record = h.store().flow_run(&out.flow_run_id).await.unwrap().unwrap();
    assert_eq!(record.run_count, 2);
    let tasks = h.store().task_runs(&out.flow_run_id).await.unwrap();
    assert_eq!(tasks.len(), 1, "the task ran once: {tasks:?}");
    assert_eq!(tasks[0].run_count, 1);
}

// What is particular to CPython in a component.

#[tokio::test]
async fn async_code_the_standard_library_and_denied_sockets() {
    let h = harness().await;
    let c = h.load_python(BASIC).await;
    let value = completed(&h, &c, "async-flow", json!({"x": 2})).await;
    assert_eq!(value, 7);
    let value = completed(&h, &c, "runtime-flow", json!({})).await;
    assert_eq!(value[0], 7, "asyncio.run in a task");
    let stdlib: Value = serde_json::from_str(value[1].as_str().unwrap()).unwrap();
    assert_eq!(
        stdlib,
        json!([36, "9e1bd4e5", "eA==", "2.20", 2, "Friday", "é"])
    );
    assert_eq!(value[2], "PermissionError/gaierror", "sockets are denied");
}

#[tokio::test]
async fn hundreds_of_python_task_attempts_at_once_never_fail_for_the_pool() {
    let h = Harness::shared(weir::model::limits::Limits {
        max_instances: 400,
        ..test_limits()
    })
    .await;
    let c = h.load_python(BASIC).await;
    let out = run(&h, &c, "map-flow", json!({"n": 400})).await;
    assert_eq!(out.value.as_deref(), Some("159600"), "{:?}", out.failure);
    let tasks = h.store().task_runs(&out.flow_run_id).await.unwrap();
    let failed: Vec<_> = tasks
        .iter()
        .filter(|t| t.state.kind != StateType::Completed)
        .collect();
    assert!(failed.is_empty(), "{failed:?}");
}

// Hostile code fails its own run only.

/// Runs a hostile flow beside a steady one: the hostile run fails with a message holding
/// one of `needles`, the steady one completes, and the engine runs things afterwards.
async fn fails_with(flow: &str, params: Value, needles: &[&str]) {
    let h = harness().await;
    let c = h.load_python(BASIC).await;
    let (bad, good) = tokio::join!(
        run(&h, &c, flow, params),
        run(&h, &c, "steady", json!({"n": 20}))
    );
    assert_eq!(bad.state.kind, StateType::Failed, "{flow}: {:?}", bad.state);
    let m = message(&bad);
    assert!(
        needles.iter().any(|n| m.contains(n)),
        "{flow}: message {m:?} holds none of {needles:?}"
    );
    assert_eq!(state_of(&good), "COMPLETED/Completed", "{:?}", good.failure);
    let after = run(&h, &c, "steady", json!({"n": 3})).await;
    assert!(after.state.is_completed());
}

#[tokio::test]
async fn hostile_an_infinite_loop_hits_the_cpu_limit() {
    fails_with("infinite-loop", json!({}), &["CPU time limit"]).await;
}

#[tokio::test]
async fn hostile_a_memory_bomb_hits_the_memory_limit() {
    fails_with(
        "memory-bomb",
        json!({}),
        // The server's budget may run out first when other tests' instances hold much of it.
        &[
            "MemoryError: out of memory",
            "memory limit of 64 MiB",
            "memory budget",
        ],
    )
    .await;
}

#[tokio::test]
async fn hostile_deep_recursion_fails_its_run() {
    fails_with(
        "deep-recursion",
        json!({}),
        &["RecursionError", "memory limit of 64 MiB", "stack"],
    )
    .await;
}

#[tokio::test]
async fn hostile_a_huge_result_is_refused() {
    fails_with(
        "huge-result",
        json!({"megabytes": 4}),
        &["over the limit of 1048576 bytes"],
    )
    .await;
}

/// The compiled cache is shared: a second engine loads the component without compiling.
#[tokio::test]
async fn a_restart_uses_the_compiled_cache() {
    let path = crate::support::python_guest("hello");
    let bytes = std::fs::read(path).unwrap();
    let first = weir::host::Engine::new(test_limits(), Some(shared_compile_cache())).unwrap();
    first.load(&bytes).await.unwrap();
    let second = weir::host::Engine::new(test_limits(), Some(shared_compile_cache())).unwrap();
    let started = std::time::Instant::now();
    let loaded = second.load(&bytes).await.unwrap();
    assert!(loaded.from_cache);
    assert_eq!(second.compile_stats().compiled, 0);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

// Pauses and suspends, through the real server (resumes are API calls).

#[tokio::test]
async fn pauses_and_suspends_resume_with_typed_input() {
    use crate::support::server::{TestServer, send};
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let ws = s.workspace("python-pauses").await;
    let bytes = std::fs::read(crate::support::python_guest(BASIC)).unwrap();
    let (status, body) = send(
        s.req(reqwest::Method::POST, "/api/components", &ws.key)
            .header("content-type", "application/wasm")
            .body(bytes),
    )
    .await;
    assert!(status == 201 || status == 200, "{status} {body}");
    let digest = body["digest"].as_str().unwrap().to_owned();
    for (name, flow) in [("approve", "approval"), ("hold", "suspended")] {
        s.deploy(
            &ws.key,
            json!({"name": name, "component": digest, "flow": flow, "parameters": {"x": 1}}),
        )
        .await;
        let (status, run) = s
            .post(&format!("/api/deployments/{name}/runs"), &ws.key, json!({}))
            .await;
        assert_eq!(status, 201, "{run}");
        let id = run["id"].as_str().unwrap().to_owned();
        let run = s
            .wait_for(&ws.key, &id, |r| r["state"]["type"] == "PAUSED")
            .await;
        let schema = &run["pause"]["input_schema"];
        assert_eq!(schema["properties"]["approved"]["type"], "boolean", "{run}");
        assert_eq!(schema["required"], json!(["approved"]), "{run}");
        let resume = format!("/api/flow-runs/{id}/resume");
        let (status, _) = s
            .post(&resume, &ws.key, json!({"input": {"approved": "yes"}}))
            .await;
        assert_eq!(
            status, 422,
            "input that does not match the RunInput is refused"
        );
        let (status, body) = s
            .post(
                &resume,
                &ws.key,
                json!({"input": {"approved": true, "reviewer": "Ada"}}),
            )
            .await;
        assert_eq!(status, 202, "{body}");
        let run = s.wait_final(&ws.key, &id).await;
        assert_eq!(run["state"]["type"], "COMPLETED", "{flow}: {run}");
        assert_eq!(run["result"], "2 approved=True by Ada", "{flow}");
        let (_, tasks) = s
            .get(&format!("/api/flow-runs/{id}/task-runs"), &ws.key)
            .await;
        assert_eq!(
            tasks["items"].as_array().unwrap().len(),
            1,
            "{flow}: the task before the pause ran once (a suspend replays it): {tasks}"
        );
    }
}

/// Prefect's `run_deployment` from a Python flow: the new run is a run of the other
/// deployment, with the parameters given.
#[tokio::test]
async fn run_deployment_starts_a_run_of_another_deployment() {
    use crate::support::server::TestServer;
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let ws = s.workspace("python-launch").await;
    let digest = s
        .upload_file(&ws.key, &crate::support::python_guest(BASIC))
        .await;
    s.deploy(
        &ws.key,
        json!({"name": "mapper", "component": digest, "flow": "map-flow", "parameters": {"n": 1}}),
    )
    .await;
    s.deploy(
        &ws.key,
        json!({"name": "launcher", "component": digest, "flow": "launcher",
               "parameters": {"target": "mapper", "n": 4}}),
    )
    .await;
    let (status, run) = s
        .post("/api/deployments/launcher/runs", &ws.key, json!({}))
        .await;
    assert_eq!(status, 201, "{run}");
    let run = s
        .wait_final_within(
            &ws.key,
            run["id"].as_str().unwrap(),
            Duration::from_secs(120),
        )
        .await;
    assert_eq!(run["state"]["type"], "COMPLETED", "{run}");
    let child = run["result"].as_str().expect("the new run's id");
    let child = s
        .wait_final_within(&ws.key, child, Duration::from_secs(60))
        .await;
    assert_eq!(child["flow"], "map-flow", "{child}");
    assert_eq!(child["result"], 12, "2 * (0 + 1 + 2 + 3): {child}");

    // A deployment that does not exist fails the launching run with the reason.
    s.deploy(
        &ws.key,
        json!({"name": "lost", "component": digest, "flow": "launcher",
               "parameters": {"target": "nowhere", "n": 1}}),
    )
    .await;
    let (_, run) = s
        .post("/api/deployments/lost/runs", &ws.key, json!({}))
        .await;
    let run = s
        .wait_final_within(
            &ws.key,
            run["id"].as_str().unwrap(),
            Duration::from_secs(60),
        )
        .await;
    assert_eq!(run["state"]["type"], "FAILED", "{run}");
    assert!(
        run["state"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("nowhere"),
        "{run}"
    );
    s.stop().await;
}

async fn task_runs(api: &crate::support::server::Api, key: &str, run: &str) -> Vec<Value> {
    let (status, page) = api
        .get(&format!("/api/flow-runs/{run}/task-runs"), key)
        .await;
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().unwrap().clone()
}

/// kill -9 of the real `weir server` in the middle of Python flow runs: on restart the
/// runs are taken over and executed again, their completed tasks replayed (never run
/// again), and every run completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_recovery_replays_completed_python_tasks() {
    use crate::support::node::Node;
    let dir = tempfile::tempdir().unwrap();
    let db = crate::support::database_url(dir.path()).await;
    let args = ["--lease-seconds", "1", "--grace-seconds", "0"];
    let node = Node::start(dir.path(), db.as_deref(), "p0", &args).await;
    let ws = node.workspace("python-durable").await;
    let digest = node
        .upload_file(&ws.key, &crate::support::python_guest(BASIC))
        .await;
    node.deploy(
        &ws.key,
        json!({"name": "five", "component": digest, "flow": "durable-five",
               "parameters": {"millis": 300}}),
    )
    .await;
    let mut runs = Vec::new();
    for _ in 0..2 {
        let (status, run) = node
            .post("/api/deployments/five/runs", &ws.key, json!({}))
            .await;
        assert_eq!(status, 201, "{run}");
        runs.push(run["id"].as_str().unwrap().to_owned());
    }
    // Killed once both runs have completed two steps, and are inside a third.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let mut ready = true;
        for run in &runs {
            let tasks = task_runs(&node, &ws.key, run).await;
            let done = tasks
                .iter()
                .filter(|t| t["state"]["type"] == "COMPLETED")
                .count();
            ready &= (2..5).contains(&done);
        }
        if ready {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the runs never reached their third step"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut before = Vec::new();
    for run in &runs {
        let tasks = task_runs(&node, &ws.key, run).await;
        let completed: Vec<(Value, Value)> = tasks
            .iter()
            .filter(|t| t["state"]["type"] == "COMPLETED")
            .map(|t| (t["id"].clone(), t["position"].clone()))
            .collect();
        before.push(completed);
    }
    node.kill().await;

    let node = Node::start(dir.path(), db.as_deref(), "p1", &args).await;
    for (run, completed_before) in runs.iter().zip(&before) {
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        let r = loop {
            let (_, r) = node.get(&format!("/api/flow-runs/{run}"), &ws.key).await;
            let t = r["state"]["type"].as_str().unwrap_or_default().to_owned();
            if matches!(t.as_str(), "COMPLETED" | "FAILED" | "CANCELLED" | "CRASHED") {
                break r;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "run {run} is still {t}: {r}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        };
        assert_eq!(r["state"]["type"], "COMPLETED", "{r}");
        assert_eq!(r["result"], json!(10), "{r}");
        assert!(r["crash_count"].as_i64().unwrap() >= 1, "taken over: {r}");
        let tasks = task_runs(&node, &ws.key, run).await;
        for step in 0..5 {
            let completed: Vec<&Value> = tasks
                .iter()
                .filter(|t| t["position"] == json!(step) && t["state"]["type"] == "COMPLETED")
                .collect();
            assert_eq!(completed.len(), 1, "step {step} of {run}: {tasks:#?}");
        }
        // The steps completed before the kill are the same task runs, run once: replayed.
        for (id, position) in completed_before {
            let t = tasks
                .iter()
                .find(|t| t["id"] == *id)
                .unwrap_or_else(|| panic!("task run {id} is gone: {tasks:#?}"));
            assert_eq!(t["state"]["type"], "COMPLETED", "{t}");
            assert_eq!(t["run_count"], 1, "step {position} ran again: {t}");
            assert!(
                !tasks
                    .iter()
                    .any(|o| o["position"] == *position && o["id"] != *id),
                "step {position} of {run} has another task run: {tasks:#?}"
            );
        }
    }
    node.kill().await;
}

/// `weir build` says what is wrong with a Python file: a syntax error (with its line),
/// an import it cannot bundle (and what to install), a file without a flow; and `weir
/// run` names the flows a component has when asked for one it has not.
#[test]
fn weir_build_errors_say_what_to_do() {
    crate::support::build_python_guests();
    let dir = tempfile::tempdir().unwrap();
    let weir = env!("CARGO_BIN_EXE_weir");
    let cache = crate::support::root().join("target/weir-cache");
    let build = |name: &str, source: &str| {
        let file = dir.path().join(name);
        std::fs::write(&file, source).unwrap();
        let out = std::process::Command::new(weir)
            .args(["build"])
            .arg(&file)
            .arg("-o")
            .arg(dir.path().join("out.wasm"))
            .env("WEIR_CACHE_DIR", &cache)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{name} built");
        assert!(
            !dir.path().join("out.wasm").exists(),
            "no component is left"
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let e = build(
        "syntax.py",
        "from weir import flow\n\n@flow\ndef f(:\n    return 1\n",
    );
    assert!(e.contains("syntax error") && e.contains("line 4"), "{e}");
    let e = build(
        "missing.py",
        "import no_such_package_anywhere\nfrom weir import flow\n\n@flow\ndef f():\n    return 1\n",
    );
    assert!(
        e.contains("imports `no_such_package_anywhere`") && e.contains("pip install"),
        "{e}"
    );
    let e = build(
        "empty.py",
        "from weir import task\n\n@task\ndef t():\n    return 1\n",
    );
    assert!(e.contains("defines no flow"), "{e}");
    let e = build(
        "bad_options.py",
        "from weir import flow\n\n@flow(retries=-1)\ndef f():\n    return 1\n",
    );
    assert!(e.contains("retries must be a whole number"), "{e}");

    let out = std::process::Command::new(weir)
        .arg("--data-dir")
        .arg(dir.path())
        .args(["run"])
        .arg(crate::support::python_guest("hello"))
        .arg("no-such-flow")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("no-such-flow") && e.contains("hello"), "{e}");
}

#[tokio::test]
async fn transactions_roll_back_and_keys_make_work_idempotent() {
    let h = harness().await;
    let c = h.load_python(BASIC).await;
    let out = run(&h, &c, "transactional", json!({"contents": "one line"})).await;
    assert_eq!(out.state.kind, StateType::Failed, "{out:?}");
    let logs = h.logs(&out.flow_run_id).await;
    assert!(
        logs.iter()
            .any(|l| l == "rolled back: deleted side-effect.txt"),
        "{logs:#?} {out:?}"
    );
    assert!(
        !logs.iter().any(|l| l.starts_with("committed")),
        "{logs:#?}"
    );
    let value = completed(&h, &c, "transactional", json!({"contents": "one\ntwo"})).await;
    assert_eq!(value, 7);

    let key = format!("py-{}", uuid::Uuid::now_v7());
    assert_eq!(
        completed(&h, &c, "load-once", json!({"key": key})).await,
        "loaded"
    );
    assert_eq!(
        completed(&h, &c, "load-once", json!({"key": key})).await,
        "skipped"
    );
}

/// Prefect's `task.delay()` from a flow of a deployment: a background run of the task.
#[tokio::test]
async fn delay_starts_a_background_run_of_a_task() {
    let dir = tempfile::tempdir().unwrap();
    let s = crate::support::server::TestServer::start(dir.path()).await;
    s.check_delay("python-delay", &crate::support::python_guest(BASIC))
        .await;
}

/// `weir.plugin` from a Python flow: the workspace's `toolkit` plugin called by name (a
/// plain call, `submit`, `map`, a future as an argument, `wait_for`, `with_options`), each
/// call a task run of the flow run named with the version it ran (`toolkit@1/greet-0`); a
/// malformed reference fails the flow in the SDK, an unknown task or plugin and bad
/// arguments fail it naming them (see `plugins::check_sdk_calls`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flows_call_plugins_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let s = crate::support::server::TestServer::start(dir.path()).await;
    let ws = s.workspace("python-plugins").await;
    let digest = s
        .upload_file(&ws.key, &crate::support::python_guest(BASIC))
        .await;
    crate::plugins::check_sdk_calls(&s, &ws.key, &digest, "arguments").await;
    s.stop().await;
}
