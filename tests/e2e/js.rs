//! JavaScript guests (Weir's JavaScript SDK built with `weir build`, esbuild and
//! componentize-js) in the real host: the examples, and a smaller set of the assertions
//! the Rust and Python guests' tests make (states, retries and their delays, maps,
//! caching, subflows, futures, artifacts, logs, async code, timeouts), hostile code, and
//! `weir build`'s errors.

use crate::state_of;
use crate::support::{Harness, test_limits};
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
    let c = h.load_js("hello").await;
    assert!(c.manifest.sdk.starts_with("weir-js/"), "{}", c.manifest.sdk);
    let hello = c.flow("hello").unwrap();
    assert_eq!(
        hello.description.as_deref(),
        Some("Greets someone, the world by default.")
    );
    let value = completed(&h, &c, "hello", json!({})).await;
    assert_eq!(value, "Hello, world!");
    let out = run(&h, &c, "hello", json!({"name": "Ada"})).await;
    assert_eq!(out.value.as_deref(), Some("\"Hello, Ada!\""));
    let logs = h.logs(&out.flow_run_id).await;
    assert!(logs.iter().any(|l| l == "Hello, Ada!"), "{logs:?}");
    let out = run(&h, &c, "hello", json!({"name": "Ada", "age": 3})).await;
    assert_eq!(
        out.state.kind,
        StateType::Failed,
        "unknown parameters are refused"
    );
}

#[tokio::test]
async fn example_etl() {
    let h = harness().await;
    let c = h.load_js("etl").await;
    let schema = &c.flow("etl").unwrap().parameters;
    assert_eq!(schema["properties"]["n"]["maximum"], 100, "{schema}");
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
    let out = run(&h, &c, "etl", json!({"n": "3"})).await;
    assert_eq!(
        out.value.as_deref(),
        Some("12"),
        "a string is coerced to the integer"
    );
    let out = run(&h, &c, "etl", json!({"n": 1000})).await;
    assert_eq!(
        out.state.kind,
        StateType::Failed,
        "past the schema's maximum"
    );
}

// States.

#[tokio::test]
async fn states_follow_prefects_final_state_rules() {
    let h = harness().await;
    let c = h.load_js(BASIC).await;
    let out = run(&h, &c, "skipped", json!({})).await;
    assert_eq!(state_of(&out), "COMPLETED/Skipped");
    assert_eq!(message(&out), "nothing to do");

    let out = run(&h, &c, "raises", json!({})).await;
    assert_eq!(state_of(&out), "FAILED/Failed");
    assert_eq!(message(&out), "TypeError: bad input");
    let details = out
        .failure
        .as_ref()
        .and_then(|f| f.details.clone())
        .unwrap();
    assert_eq!(details["exception"]["type"], "TypeError", "{details}");

    let out = run(&h, &c, "failed-state", json!({})).await;
    assert_eq!(state_of(&out), "FAILED/Failed");
    assert_eq!(message(&out), "chose to fail");

    let value = completed(&h, &c, "handled", json!({})).await;
    assert_eq!(
        value, "recovered",
        "a handled task failure does not fail the flow"
    );
}

// Retries.

#[tokio::test]
async fn a_flaky_task_is_retried_with_its_delays() {
    let h = harness().await;
    let c = h.load_js(BASIC).await;
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

    let out = run(&h, &c, "retry-condition-flow", json!({"kind": "transient"})).await;
    let tasks = h.store().task_runs(&out.flow_run_id).await.unwrap();
    assert_eq!(
        tasks[0].run_count, 4,
        "the condition retries transient trouble"
    );
    let out = run(&h, &c, "retry-condition-flow", json!({"kind": "fatal"})).await;
    let tasks = h.store().task_runs(&out.flow_run_id).await.unwrap();
    assert_eq!(tasks[0].run_count, 1, "and nothing else");
}

// Maps, futures, caching, subflows.

#[tokio::test]
async fn a_map_over_1000_items() {
    let h = harness().await;
    let c = h.load_js(BASIC).await;
    let out = run(&h, &c, "map-flow", json!({"n": 1000})).await;
    assert_eq!(out.value.as_deref(), Some("999000"), "{:?}", out.failure);
    let tasks = h.store().task_runs(&out.flow_run_id).await.unwrap();
    assert_eq!(tasks.len(), 1000);
    assert!(tasks.iter().all(|t| t.state.kind == StateType::Completed));
}

#[tokio::test]
async fn futures_resolve_as_arguments_and_order_dependent_runs() {
    let h = harness().await;
    let c = h.load_js(BASIC).await;
    let value = completed(&h, &c, "futures-flow", json!({})).await;
    assert_eq!(
        value,
        json!({"b": 16, "c": 2, "mapped": [101, 102, 103], "after": 10, "failed": true,
               "blocked": "PENDING", "state": "Completed"})
    );
}

/// Futures given to `submit` and `map` go to the host, which starts each run with their
/// values once they completed: the flow goes on meanwhile, and the runs record them as
/// their upstream.
#[tokio::test]
async fn futures_as_arguments_resolve_on_the_host() {
    let h = harness().await;
    let c = h.load_js(BASIC).await;
    let out = run(&h, &c, "futures-on-host", json!({})).await;
    assert_eq!(state_of(&out), "COMPLETED/Completed", "{:?}", out.failure);
    let value: Value = serde_json::from_str(out.value.as_deref().unwrap()).unwrap();
    assert_eq!(
        value,
        json!({"wentOn": true, "span": true, "total": 6, "keyed": 104, "remapped": [0, 4, 8]})
    );
    let tasks = h.store().task_runs(&out.flow_run_id).await.unwrap();
    let total = tasks.iter().find(|t| t.task_name == "total").unwrap();
    assert_eq!(total.upstream.len(), 3, "{:?}", total.upstream);
}

#[tokio::test]
async fn caches_hit_within_a_run_and_across_runs() {
    let h = harness().await;
    let c = h.load_js(BASIC).await;
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
    let third = run(&h, &c, "cached", json!({"x": 5})).await;
    let tasks = h.store().task_runs(&third.flow_run_id).await.unwrap();
    assert_eq!(
        names(&tasks),
        ["Completed", "Cached", "Completed", "Cached"],
        "other inputs, other keys"
    );
}

#[tokio::test]
async fn subflows_are_linked_to_their_parent() {
    let h = harness().await;
    let c = h.load_js(BASIC).await;
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

// Artifacts, logs, prints, runtime.

#[tokio::test]
async fn artifacts_logs_prints_and_the_runtime() {
    let h = harness().await;
    let c = h.load_js(BASIC).await;
    let out = run(&h, &c, "reporting", json!({"day": "friday"})).await;
    assert_eq!(state_of(&out), "COMPLETED/Completed", "{:?}", out.failure);
    let value: Value = serde_json::from_str(out.value.as_deref().unwrap()).unwrap();
    assert_eq!(value["name"], "reporting-friday");
    assert_eq!(value["flow"], "reporting");
    assert_eq!(value["parameters"], json!({"day": "friday"}));
    assert_eq!(value["variable"], "no variable");
    assert!(
        value["secret"]
            .as_str()
            .unwrap()
            .contains("no secret named"),
        "{value}"
    );

    let artifacts = h.store().artifacts(&out.flow_run_id).await.unwrap();
    let find = |key: &str| {
        artifacts
            .iter()
            .find(|a| a.key.as_deref() == Some(key))
            .unwrap()
    };
    assert_eq!(find("js-report").kind, "markdown");
    assert_eq!(find("js-table").kind, "table");
    assert_eq!(
        find("js-table").data,
        json!([{"a": 1, "b": 2}, {"a": 3, "b": 4}])
    );
    assert_eq!(find("js-link").kind, "link");
    assert_eq!(find("js-progress").kind, "progress");
    assert_eq!(find("js-progress").data, json!(100.0));

    let logs = h.logs(&out.flow_run_id).await;
    for line in [
        "info from reporting",
        "a warning",
        "printed by the flow",
        "SHOUT HEY",
    ] {
        assert!(logs.iter().any(|l| l == line), "{line:?} not in {logs:?}");
    }
}

// Async code and timeouts.

#[tokio::test]
async fn async_flows_and_tasks_run() {
    let h = harness().await;
    let c = h.load_js(BASIC).await;
    let value = completed(&h, &c, "async-flow", json!({"x": 5})).await;
    assert_eq!(value, 21);
}

#[tokio::test]
async fn a_spinning_task_is_stopped_at_its_timeout() {
    let h = harness().await;
    let c = h.load_js(BASIC).await;
    let started = std::time::Instant::now();
    let out = run(&h, &c, "timeout-flow", json!({})).await;
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(out.state.kind, StateType::Failed);
    let tasks = h.store().task_runs(&out.flow_run_id).await.unwrap();
    assert_eq!(tasks[0].state.name, "TimedOut");
}

// Hostile code fails its own run only.

async fn fails_with(flow: &str, params: Value, needles: &[&str]) {
    let h = harness().await;
    let c = h.load_js(BASIC).await;
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
        &["memory limit of 64 MiB", "out of memory"],
    )
    .await;
}

#[tokio::test]
async fn hostile_deep_recursion_fails_its_run() {
    fails_with(
        "deep-recursion",
        json!({}),
        &["too much recursion", "stack", "recursion"],
    )
    .await;
}

#[tokio::test]
async fn hostile_a_huge_result_is_refused() {
    fails_with("huge-result", json!({"megabytes": 4}), &["result", "limit"]).await;
}

/// The compiled cache is shared: a second engine loads the component without compiling.
#[tokio::test]
async fn a_restart_uses_the_compiled_cache() {
    let bytes = std::fs::read(crate::support::js_guest("hello")).unwrap();
    let cache = crate::support::shared_compile_cache();
    let first = weir::host::Engine::new(test_limits(), Some(cache.clone())).unwrap();
    first.load(&bytes).await.unwrap();
    let second = weir::host::Engine::new(test_limits(), Some(cache)).unwrap();
    let loaded = second.load(&bytes).await.unwrap();
    assert!(loaded.from_cache);
    assert_eq!(second.compile_stats().compiled, 0);
}

/// `weir build` says what is wrong with a JavaScript file: a syntax error (with its
/// place), an import it cannot bundle (and what to do), a file without a flow, bad
/// options (the module's top level runs while the component is made).
#[test]
fn weir_build_errors_say_what_to_do() {
    crate::support::build_js_guests();
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
        "syntax.js",
        "import { flow } from \"weir\";\nexport const f = flow({ name: \"f\" }, () => {\n  return 1 +;\n});\n",
    );
    assert!(e.contains("syntax.js:3:"), "{e}");
    let e = build(
        "missing.js",
        "import _ from \"no-such-package-anywhere\";\nimport { flow } from \"weir\";\nexport const f = flow({ name: \"f\" }, () => _);\n",
    );
    assert!(
        e.contains("imports `no-such-package-anywhere`") && e.contains("npm install"),
        "{e}"
    );
    let e = build(
        "node.js",
        "import { readFileSync } from \"node:fs\";\nimport { flow } from \"weir\";\nexport const f = flow({ name: \"f\" }, () => readFileSync);\n",
    );
    assert!(e.contains("Node.js module"), "{e}");
    let e = build(
        "empty.js",
        "import { task } from \"weir\";\nexport const t = task({ name: \"t\" }, () => 1);\n",
    );
    assert!(e.contains("defines no flow"), "{e}");
    let e = build(
        "options.js",
        "import { flow } from \"weir\";\nexport const f = flow({ name: \"f\", retries: -1 }, () => 1);\n",
    );
    assert!(e.contains("retries must be a whole number"), "{e}");
}

// Prefect's remaining options and global concurrency limits.

#[tokio::test]
async fn with_options_replaces_the_tasks_options_for_one_call() {
    let h = harness().await;
    let c = h.load_js(BASIC).await;
    let out = run(&h, &c, "with-options-flow", json!({})).await;
    assert_eq!(state_of(&out), "COMPLETED/Completed", "{:?}", out.failure);
    assert_eq!(out.value.as_deref(), Some("3"));
    let tasks = h.store().task_runs(&out.flow_run_id).await.unwrap();
    assert_eq!(
        (tasks[0].task_name.as_str(), tasks[0].name.as_str()),
        ("flaky-patient", "patient")
    );
    assert_eq!(tasks[0].run_count, 3);
}

#[tokio::test]
async fn run_name_functions_name_runs_as_they_start() {
    let h = harness().await;
    let c = h.load_js(BASIC).await;
    let value = completed(&h, &c, "named-by-function", json!({"region": "eu"})).await;
    assert_eq!(value, json!(["report-for-eu", "row-7"]));
}

#[tokio::test]
async fn a_sequential_task_runner_runs_one_task_at_a_time() {
    let h = harness().await;
    let c = h.load_js(BASIC).await;
    let value = completed(&h, &c, "sequential-runner", json!({})).await;
    let runs: Vec<(u32, u64, u64)> = serde_json::from_value(value).unwrap();
    assert_eq!(runs.iter().map(|r| r.0).collect::<Vec<_>>(), [0, 1, 2]);
    for pair in runs.windows(2) {
        assert!(pair[1].1 >= pair[0].2, "one at a time, in order: {runs:?}");
    }
}

#[tokio::test]
async fn concurrency_blocks_give_their_slots_back_and_time_out_clearly() {
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
    let c = h.load_js(BASIC).await;
    let value = completed(&h, &c, "limited-block", json!({"timeout": 10})).await;
    assert_eq!(value, "held twice");
    // Someone else takes the only slot once the run has given it back (just after it ends).
    crate::support::hold_limit_slot(&store, "db").await;
    let value = completed(&h, &c, "limited-block", json!({"timeout": 0.2})).await;
    let text = value.as_str().unwrap_or_default();
    assert!(text.starts_with("gave up: timed out after 0.2"), "{text}");
}

#[tokio::test]
async fn transactions_roll_back_and_keys_make_work_idempotent() {
    let h = harness().await;
    let c = h.load_js(BASIC).await;
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
    let out = run(&h, &c, "transactional", json!({"contents": "one\ntwo"})).await;
    assert_eq!(out.state.kind, StateType::Completed, "{out:?}");
    let logs = h.logs(&out.flow_run_id).await;
    assert!(
        logs.iter().any(|l| l == "committed side-effect.txt"),
        "{logs:#?}"
    );

    let key = format!("js-{}", uuid::Uuid::now_v7());
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
    s.check_delay("js-delay", &crate::support::js_guest(BASIC))
        .await;
}

/// `plugin` from a JavaScript flow: the workspace's `toolkit` plugin called by name (a
/// plain call, `submit`, `map`, a future as an argument, `waitFor`, `withOptions`), each
/// call a task run of the flow run named with the version it ran (`toolkit@1/greet-0`); a
/// malformed reference fails the flow in the SDK, an unknown task or plugin and bad
/// arguments fail it naming them (see `plugins::check_sdk_calls`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flows_call_plugins_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let s = crate::support::server::TestServer::start(dir.path()).await;
    let ws = s.workspace("js-plugins").await;
    let digest = s
        .upload_file(&ws.key, &crate::support::js_guest(BASIC))
        .await;
    crate::plugins::check_sdk_calls(&s, &ws.key, &digest, "args").await;
    s.stop().await;
}
