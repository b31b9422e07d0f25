//! Plugins: a flow calls a task of another component by name (`toolkit/greet`), as an
//! ordinary task run of its own run (states, retries, timeouts, logs, artifacts, replay),
//! in the plugin's sandbox with the calling deployment's capabilities; plugins are
//! registered per workspace with versions, and flows pin one or take the latest.

use crate::support::server::{Api, TestServer};
use serde_json::{Value, json};
use std::time::Duration;

const TOOLKIT: &str = "guest_toolkit";
const CALLER: &str = "guest_plugin_caller";

/// Deploys `flow` of the caller component as `name`, with `extra` fields.
pub(crate) async fn deploy(s: &Api, key: &str, digest: &str, name: &str, flow: &str, extra: Value) {
    let mut spec = json!({"name": name, "component": digest, "flow": flow});
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
        spec.extend(extra.clone());
    }
    s.deploy(key, spec).await;
}

/// Runs a deployment with parameters to its final state.
async fn run(s: &Api, key: &str, deployment: &str, parameters: Value) -> Value {
    let (status, run) = s
        .post(
            &format!("/api/deployments/{deployment}/runs"),
            key,
            json!({ "parameters": parameters }),
        )
        .await;
    assert_eq!(status, 201, "{run}");
    let id = run["id"].as_str().unwrap().to_owned();
    s.wait_final_within(key, &id, Duration::from_secs(60)).await
}

async fn task_runs(s: &Api, key: &str, run: &Value) -> Vec<Value> {
    let id = run["id"].as_str().unwrap();
    let (status, page) = s
        .get(&format!("/api/flow-runs/{id}/task-runs?limit=500"), key)
        .await;
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().unwrap().clone()
}

/// A plugin named `name` registered from the uploaded component `digest`.
async fn register(s: &Api, key: &str, name: &str, digest: &str) -> (u16, Value) {
    s.post(
        "/api/plugins",
        key,
        json!({"name": name, "component": digest, "description": "test tools"}),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_calls_a_workspace_plugins_task_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let ws = s.workspace("plugins").await;
    let toolkit = s.upload(&ws.key, TOOLKIT).await;
    let (status, plugin) = register(&s, &ws.key, "toolkit", &toolkit).await;
    assert_eq!(status, 201, "{plugin}");
    assert_eq!(plugin["version"], 1);
    assert_eq!(plugin["builtin"], false);
    let greet = plugin["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "greet")
        .expect("the plugin lists its tasks")
        .clone();
    assert_eq!(greet["call"], "toolkit@1/greet");
    assert_eq!(greet["parameters"]["required"], json!(["name"]), "{greet}");
    // The same component again is the same version.
    let (status, again) = register(&s, &ws.key, "toolkit", &toolkit).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["version"], 1);
    let (status, list) = s.get("/api/plugins", &ws.key).await;
    assert_eq!(status, 200, "{list}");
    assert!(
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "toolkit"),
        "{list}"
    );

    let caller = s.upload(&ws.key, CALLER).await;
    deploy(&s, &ws.key, &caller, "call", "call_plugin", json!({})).await;
    let done = run(
        &s,
        &ws.key,
        "call",
        json!({"task": "toolkit/greet", "arguments": {"name": "Ada"}}),
    )
    .await;
    assert_eq!(done["state"]["type"], "COMPLETED", "{done}");
    assert_eq!(done["result"], "Hello, Ada!");
    // An ordinary task run of the calling flow run, named with the version it ran.
    let tasks = task_runs(&s, &ws.key, &done).await;
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    assert_eq!(tasks[0]["task"], "toolkit/greet");
    assert_eq!(tasks[0]["name"], "toolkit@1/greet-0");
    assert_eq!(tasks[0]["state"]["type"], "COMPLETED");
    assert_eq!(tasks[0]["result"], "Hello, Ada!");
    let id = done["id"].as_str().unwrap();
    let (_, logs) = s
        .get(&format!("/api/flow-runs/{id}/logs?limit=500"), &ws.key)
        .await;
    assert!(
        logs["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| { l["message"] == "greeting Ada" && l["task_run_id"] == tasks[0]["id"] }),
        "the plugin's log line belongs to its task run: {logs}"
    );
    let (_, artifacts) = s
        .get(&format!("/api/flow-runs/{id}/artifacts"), &ws.key)
        .await;
    assert!(
        artifacts["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["key"] == "greeting"),
        "{artifacts}"
    );

    // The plugin's own retries; its tasks calling its own tasks; its timeout.
    let flaky = run(
        &s,
        &ws.key,
        "call",
        json!({"task": "toolkit/flaky", "arguments": {}}),
    )
    .await;
    assert_eq!(flaky["state"]["type"], "COMPLETED", "{flaky}");
    assert_eq!(flaky["result"], 3);
    assert_eq!(task_runs(&s, &ws.key, &flaky).await[0]["run_count"], 3);
    let nested = run(
        &s,
        &ws.key,
        "call",
        json!({"task": "toolkit/quadruple", "arguments": {"x": 3}}),
    )
    .await;
    assert_eq!(nested["state"]["type"], "COMPLETED", "{nested}");
    assert_eq!(nested["result"], 12);
    let names: Vec<String> = task_runs(&s, &ws.key, &nested)
        .await
        .iter()
        .map(|t| t["task"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        names.iter().filter(|n| *n == "toolkit@1/double").count(),
        2,
        "the plugin's task calls name its own tasks: {names:?}"
    );
    let spin = run(
        &s,
        &ws.key,
        "call",
        json!({"task": "toolkit/spin", "arguments": {}}),
    )
    .await;
    assert_eq!(spin["state"]["type"], "FAILED", "{spin}");
    let spun = &task_runs(&s, &ws.key, &spin).await[0];
    assert_eq!(spun["state"]["name"], "TimedOut", "{spun}");

    // A map over a plugin's task; a call replayed when the flow runs again.
    deploy(&s, &ws.key, &caller, "map", "map_plugin", json!({})).await;
    let mapped = run(
        &s,
        &ws.key,
        "map",
        json!({"task": "toolkit/double", "arguments": [{"x": 1}, {"x": 2}, {"x": 3}]}),
    )
    .await;
    assert_eq!(mapped["state"]["type"], "COMPLETED", "{mapped}");
    assert_eq!(mapped["result"], json!([2, 4, 6]));
    deploy(
        &s,
        &ws.key,
        &caller,
        "replay",
        "call_then_fail_once",
        json!({}),
    )
    .await;
    let replayed = run(
        &s,
        &ws.key,
        "replay",
        json!({"task": "toolkit/double", "arguments": {"x": 21}}),
    )
    .await;
    assert_eq!(replayed["state"]["type"], "COMPLETED", "{replayed}");
    assert_eq!(replayed["run_count"], 2, "{replayed}");
    assert_eq!(replayed["result"], 42);
    assert_eq!(
        task_runs(&s, &ws.key, &replayed).await.len(),
        1,
        "the flow's retry replays the plugin call"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_are_versioned_and_bad_calls_say_what_exists() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let ws = s.workspace("versions").await;
    let toolkit = s.upload(&ws.key, TOOLKIT).await;
    assert_eq!(register(&s, &ws.key, "toolkit", &toolkit).await.0, 201);
    // Another component under the same name is version 2 (the basic guest's tasks).
    let basic = s.upload(&ws.key, crate::BASIC).await;
    let (status, v2) = register(&s, &ws.key, "toolkit", &basic).await;
    assert_eq!(status, 201, "{v2}");
    assert_eq!(v2["version"], 2);
    let (status, versions) = s.get("/api/plugins/toolkit", &ws.key).await;
    assert_eq!(status, 200, "{versions}");
    let numbers: Vec<i64> = versions["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, vec![2, 1]);

    let caller = s.upload(&ws.key, CALLER).await;
    deploy(&s, &ws.key, &caller, "call", "call_plugin", json!({})).await;
    let call = |task: &str, arguments: Value| {
        let s = &s;
        let key = ws.key.clone();
        let params = json!({"task": task, "arguments": arguments});
        async move { run(s, &key, "call", params).await }
    };
    // The latest version has no `quadruple`; version 1 has.
    let latest = call("toolkit/quadruple", json!({"x": 1})).await;
    assert_eq!(latest["state"]["type"], "FAILED", "{latest}");
    let message = latest["state"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("plugin 'toolkit' (version 2) has no task 'quadruple'; its tasks are:"),
        "{latest}"
    );
    let pinned = call("toolkit@1/quadruple", json!({"x": 1})).await;
    assert_eq!(pinned["state"]["type"], "COMPLETED", "{pinned}");
    assert_eq!(pinned["result"], 4);
    let pinned_tasks = task_runs(&s, &ws.key, &pinned).await;
    assert!(
        pinned_tasks
            .iter()
            .any(|t| t["task"] == "toolkit@1/quadruple" && t["name"] == "toolkit@1/quadruple-0"),
        "{pinned_tasks:?}"
    );
    for (task, expected) in [
        (
            "toolkit@9/greet",
            "plugin 'toolkit' has no version 9; its latest is 2",
        ),
        (
            "nope/greet",
            "no plugin named 'nope' in this workspace; plugins: ",
        ),
        (
            "toolkit@x/greet",
            "a plugin's version is a whole number from 1",
        ),
        ("greet", "the component has no task 'greet'"),
    ] {
        let failed = call(task, json!({"name": "Ada"})).await;
        assert_eq!(failed["state"]["type"], "FAILED", "{task}: {failed}");
        let tasks = task_runs(&s, &ws.key, &failed).await;
        let text = format!("{failed} {tasks:?}");
        assert!(
            text.contains(expected),
            "{task}: expected {expected:?} in {text}"
        );
    }
    // Arguments that do not match the task's schema fail its run, naming the fields.
    for (arguments, expected) in [
        (json!({"nam": "Ada"}), "\"name\" is a required property"),
        (json!({"name": 5}), "name"),
    ] {
        let failed = call("toolkit@1/greet", arguments.clone()).await;
        assert_eq!(failed["state"]["type"], "FAILED", "{failed}");
        let tasks = task_runs(&s, &ws.key, &failed).await;
        assert_eq!(tasks.len(), 1, "{tasks:?}");
        let message = tasks[0]["state"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("do not match its schema") && message.contains(expected),
            "{arguments}: {message}"
        );
    }

    // Another workspace does not find it.
    let other = s.workspace("elsewhere").await;
    let caller2 = s.upload(&other.key, CALLER).await;
    deploy(&s, &other.key, &caller2, "call", "call_plugin", json!({})).await;
    let foreign = run(
        &s,
        &other.key,
        "call",
        json!({"task": "toolkit@1/greet", "arguments": {"name": "Ada"}}),
    )
    .await;
    assert_eq!(foreign["state"]["type"], "FAILED", "{foreign}");
    assert!(
        foreign["state"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("no plugin named 'toolkit'"),
        "{foreign}"
    );
    assert_eq!(s.get("/api/plugins/toolkit", &other.key).await.0, 404);

    // Registration refuses what is no plugin, and a used component stays.
    for (body, expected) in [
        (json!({"name": "task", "component": toolkit}), "reserved"),
        (
            json!({"name": "bad name", "component": toolkit}),
            "a plugin's name is",
        ),
        (
            json!({"name": "other", "component": "0".repeat(64)}),
            "upload it first",
        ),
    ] {
        let (status, problem) = s.post("/api/plugins", &ws.key, body.clone()).await;
        assert_eq!(status, 422, "{body}: {problem}");
        assert!(problem.to_string().contains(expected), "{problem}");
    }
    assert_eq!(
        s.delete(&format!("/api/components/{toolkit}"), &ws.key)
            .await,
        409,
        "a plugin's component cannot be removed"
    );
    assert_eq!(s.delete("/api/plugins/toolkit", &ws.key).await, 204);
    assert_eq!(s.delete("/api/plugins/toolkit", &ws.key).await, 404);
    let gone = call("toolkit@1/greet", json!({"name": "Ada"})).await;
    assert_eq!(gone["state"]["type"], "FAILED", "{gone}");
    s.stop().await;
}

/// The flows of the Python or JavaScript test guest (the uploaded `component`) that call
/// the workspace's `toolkit` plugin through their SDK's `plugin(...)`, as `plugin-caller`
/// does from Rust: `plugin-calls` (a plain call, `submit`, `map`, a future as an argument,
/// `wait_for`, call options) and `call-plugin` (one call by the name given), whose
/// parameters are `task` and the argument object, named `arguments` (`args` in
/// JavaScript, where `arguments` is reserved).
pub(crate) async fn check_sdk_calls(s: &Api, key: &str, component: &str, arguments: &str) {
    let toolkit = s.upload(key, TOOLKIT).await;
    assert_eq!(register(s, key, "toolkit", &toolkit).await.0, 201);
    deploy(s, key, component, "calls", "plugin-calls", json!({})).await;
    let done = run(s, key, "calls", json!({"names": ["Ada", "Grace", "Alan"]})).await;
    assert_eq!(done["state"]["type"], "COMPLETED", "{done}");
    assert_eq!(
        done["result"],
        json!({
            "first": "Hello, Ada!",
            "submitted": "Hello, Grace?",
            "mapped": ["Hello, Ada.", "Hello, Grace.", "Hello, Alan."],
            "quadrupled": 12,
            "patient": 3,
            "hasty": "FAILED",
        })
    );
    // Each call is a task run of the flow run, named with the version it ran, in the
    // order of the calls: the plain call, the submitted one, the three of the map.
    let tasks = task_runs(s, key, &done).await;
    let named = |name: &str| {
        tasks
            .iter()
            .find(|t| t["name"] == name)
            .unwrap_or_else(|| panic!("no task run named {name}: {tasks:#?}"))
            .clone()
    };
    let greetings: Vec<Value> = (0..5)
        .map(|i| {
            let t = named(&format!("toolkit@1/greet-{i}"));
            assert_eq!(t["task"], "toolkit/greet", "{t}");
            assert_eq!(t["state"]["type"], "COMPLETED", "{t}");
            t["result"].clone()
        })
        .collect();
    assert_eq!(
        greetings,
        [
            "Hello, Ada!",
            "Hello, Grace?",
            "Hello, Ada.",
            "Hello, Grace.",
            "Hello, Alan."
        ]
    );
    // The future passed as an argument, and the run given to wait for, are upstream runs.
    let first = named("toolkit@1/double-0");
    let second = named("toolkit@1/double-1");
    assert_eq!(first["result"], 6, "{first}");
    assert_eq!(second["result"], 12, "{second}");
    let upstream = second["wait_for"].as_array().unwrap();
    for up in [&first, &named("toolkit@1/greet-1")] {
        assert!(upstream.contains(&up["id"]), "{second}");
    }
    // The plugin's own retries where the call replaces none; `retries=0`, the run name
    // and the tags of the call that does.
    let patient = named("toolkit@1/flaky-0");
    assert_eq!(patient["task"], "toolkit@1/flaky");
    assert_eq!(patient["run_count"], 3, "{patient}");
    let hasty = named("hasty");
    assert_eq!(hasty["state"]["type"], "FAILED", "{hasty}");
    assert_eq!(hasty["run_count"], 1, "{hasty}");
    assert!(
        hasty["tags"].as_array().unwrap().contains(&json!("hasty")),
        "{hasty}"
    );

    // A malformed reference fails the flow in the SDK, before any call; an unknown task or
    // plugin, or arguments that do not match the task's schema, fail it naming them.
    deploy(s, key, component, "call", "call-plugin", json!({})).await;
    for (task, args, expected, calls) in [
        (
            "nope",
            json!({"name": "Ada"}),
            "is not a plugin task: expected \"<plugin>/<task>\"",
            0,
        ),
        (
            "toolkit@x/greet",
            json!({"name": "Ada"}),
            "a plugin's version is a whole number from 1",
            0,
        ),
        (
            "toolkit/nope",
            json!({"name": "Ada"}),
            "plugin 'toolkit' (version 1) has no task 'nope'; its tasks are:",
            1,
        ),
        (
            "nope/greet",
            json!({"name": "Ada"}),
            "no plugin named 'nope' in this workspace",
            1,
        ),
        (
            "toolkit/greet",
            json!({"nam": "Ada"}),
            "\"name\" is a required property",
            1,
        ),
        (
            "toolkit@1/greet",
            json!({"name": 5}),
            "do not match its schema",
            1,
        ),
    ] {
        let mut parameters = serde_json::Map::new();
        parameters.insert("reference".into(), json!(task));
        parameters.insert(arguments.into(), args);
        let failed = run(s, key, "call", Value::Object(parameters)).await;
        assert_eq!(failed["state"]["type"], "FAILED", "{task}: {failed}");
        let tasks = task_runs(s, key, &failed).await;
        let mut messages = vec![failed["state"]["message"].as_str().unwrap_or_default()];
        messages.extend(
            tasks
                .iter()
                .map(|t| t["state"]["message"].as_str().unwrap_or_default()),
        );
        let text = messages.join(" | ");
        assert!(
            text.contains(expected),
            "{task}: expected {expected:?} in {text}"
        );
        assert!(tasks.len() <= calls, "{task}: {tasks:#?}");
    }
}

/// A small HTTP service answering `/ping` with `pong`; returns its port.
async fn service() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = axum::Router::new().route("/ping", axum::routing::get(|| async { "pong" }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_has_the_calling_deployments_capabilities_and_no_more() {
    let port = service().await;
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start_with(dir.path(), |c| {
        c.limits.egress = weir::model::egress::Egress::parse(&["127.0.0.1/32".into()]).unwrap();
    })
    .await;
    let ws = s.workspace("caps").await;
    let toolkit = s.upload(&ws.key, TOOLKIT).await;
    assert_eq!(register(&s, &ws.key, "toolkit", &toolkit).await.0, 201);
    let caller = s.upload(&ws.key, CALLER).await;
    let (status, _) = s
        .put("/api/secrets/token", &ws.key, json!({"value": "s3cret"}))
        .await;
    assert!(status == 200 || status == 201 || status == 204, "{status}");

    // Outbound HTTP: only the hosts the calling deployment grants.
    let url = format!("http://127.0.0.1:{port}/ping");
    let fetch = json!({"task": "toolkit/fetch", "arguments": {"url": url}});
    deploy(&s, &ws.key, &caller, "closed", "call_plugin", json!({})).await;
    deploy(
        &s,
        &ws.key,
        &caller,
        "open",
        "call_plugin",
        json!({"capabilities": {"allowed_hosts": ["127.0.0.1"]}}),
    )
    .await;
    let closed = run(&s, &ws.key, "closed", fetch.clone()).await;
    assert_eq!(closed["state"]["type"], "COMPLETED", "{closed}");
    let text = closed["result"].as_str().unwrap();
    assert!(
        text.starts_with("error: ") && text.contains("capabilities.allowed_hosts"),
        "{text}"
    );
    let open = run(&s, &ws.key, "open", fetch).await;
    assert_eq!(open["result"], "200 pong", "{open}");

    // Secrets: the flow's own code reads the workspace's; a plugin only those the
    // deployment names for plugins.
    deploy(&s, &ws.key, &caller, "secrets", "secrets", json!({})).await;
    deploy(
        &s,
        &ws.key,
        &caller,
        "granted",
        "secrets",
        json!({"capabilities": {"plugin_secrets": ["token"]}}),
    )
    .await;
    let denied = run(&s, &ws.key, "secrets", json!({"name": "token"})).await;
    assert_eq!(denied["state"]["type"], "COMPLETED", "{denied}");
    assert_eq!(denied["result"], json!({"flow": "s3cret", "plugin": null}));
    let id = denied["id"].as_str().unwrap();
    let (_, logs) = s
        .get(&format!("/api/flow-runs/{id}/logs?limit=500"), &ws.key)
        .await;
    assert!(
        logs.to_string().contains("may not read the secret 'token'"),
        "the refusal is logged: {logs}"
    );
    let granted = run(&s, &ws.key, "granted", json!({"name": "token"})).await;
    assert_eq!(
        granted["result"],
        json!({"flow": "s3cret", "plugin": "s3cret"})
    );
    let (_, d) = s.get("/api/deployments/granted", &ws.key).await;
    assert_eq!(d["capabilities"]["plugin_secrets"], json!(["token"]), "{d}");
    s.stop().await;
}

/// What the local webhook receiver was sent, one JSON body per request.
type Received = std::sync::Arc<std::sync::Mutex<Vec<Value>>>;

/// A local service: `/orders` answers a JSON list of orders (after `flaky` failures with
/// 503), `/hook` records what is posted to it. Returns its port.
async fn shop(received: Received, flaky: usize) -> u16 {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let failures = std::sync::Arc::new(AtomicUsize::new(flaky));
    let app = axum::Router::new()
        .route(
            "/orders",
            axum::routing::get(move || {
                let failures = failures.clone();
                async move {
                    if failures
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok()
                    {
                        return (
                            axum::http::StatusCode::SERVICE_UNAVAILABLE,
                            "busy".to_owned(),
                        );
                    }
                    let orders = json!([
                        {"customer": "ada", "amount": 12.5},
                        {"customer": "grace", "amount": 30},
                        {"customer": "alan", "amount": 7.5}
                    ]);
                    (axum::http::StatusCode::OK, orders.to_string())
                }
            }),
        )
        .route(
            "/hook",
            axum::routing::post(move |body: String| {
                let received = received.clone();
                async move {
                    let value = serde_json::from_str(&body).unwrap_or(Value::String(body));
                    received.lock().unwrap().push(value);
                    "ok"
                }
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}

/// A server with the built-in plugins (built from `plugins/`), reaching the loopback
/// address its tests serve on.
pub(crate) async fn with_builtins(dir: &std::path::Path) -> TestServer {
    crate::support::build_guests();
    let plugins = crate::support::root().join("target/wasm32-wasip2/release");
    // Compiled once for every test process: the jq and template plugins are large. (A
    // server started again on the same directory finds the link there.)
    let shared = crate::support::shared_compile_cache();
    std::fs::create_dir_all(&shared).unwrap();
    let link = dir.join("compiled");
    if !link.exists() {
        std::os::unix::fs::symlink(&shared, &link).unwrap();
    }
    TestServer::start_with(dir, |c| {
        c.plugins_dir = Some(plugins);
        c.limits.egress = weir::model::egress::Egress::parse(&["127.0.0.1/32".into()]).unwrap();
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_example_uses_the_builtin_plugins_end_to_end() {
    let received = Received::default();
    let port = shop(received.clone(), 1).await;
    let dir = tempfile::tempdir().unwrap();
    let s = with_builtins(dir.path()).await;
    let ws = s.workspace("report").await;
    let (status, list) = s.get("/api/plugins", &ws.key).await;
    assert_eq!(status, 200, "{list}");
    let builtins: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["builtin"] == true)
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(builtins, vec!["csv", "http", "jq", "notify", "template"]);
    assert_eq!(
        s.delete("/api/plugins/http", &ws.key).await,
        409,
        "built-in plugins stay"
    );
    let (status, problem) = s
        .post(
            "/api/plugins",
            &ws.key,
            json!({"name": "http", "component": s.upload(&ws.key, TOOLKIT).await}),
        )
        .await;
    assert_eq!(status, 409, "a built-in's name is taken: {problem}");

    // The webhook URL is a secret that only the deployment's plugins may read.
    let hook = format!("http://127.0.0.1:{port}/hook");
    s.put("/api/secrets/orders-hook", &ws.key, json!({"value": hook}))
        .await;
    let report = s.upload(&ws.key, "report").await;
    deploy(
        &s,
        &ws.key,
        &report,
        "report",
        "orders-report",
        json!({"capabilities": {"allowed_hosts": ["127.0.0.1"], "plugin_secrets": ["orders-hook"]}}),
    )
    .await;
    let done = run(
        &s,
        &ws.key,
        "report",
        json!({"orders_url": format!("http://127.0.0.1:{port}/orders"),
               "webhook_secret": "orders-hook", "kind": "slack"}),
    )
    .await;
    assert_eq!(done["state"]["type"], "COMPLETED", "{done}");
    assert_eq!(
        done["result"],
        json!({"count": 3, "total": 50.0, "top": "grace"})
    );
    let tasks = task_runs(&s, &ws.key, &done).await;
    let by_task = |name: &str| {
        tasks
            .iter()
            .find(|t| t["task"] == name)
            .unwrap_or_else(|| panic!("no {name} in {tasks:?}"))
            .clone()
    };
    // The first fetch met a 503: the call's retry fetched again.
    assert_eq!(by_task("http/request")["run_count"], 2);
    assert!(
        by_task("jq/first")["name"]
            .as_str()
            .unwrap()
            .starts_with("jq@1/first")
    );
    // Slack got the report in its own markup, exactly once.
    let posts = received.lock().unwrap().clone();
    assert_eq!(posts.len(), 1, "{posts:?}");
    let text = posts[0]["text"].as_str().unwrap_or_default();
    assert!(text.starts_with("*Orders report*"), "{text}");
    assert!(text.contains("| 3 | 50.0 | grace |"), "{text}");
    // The report is an artifact of the run.
    let id = done["id"].as_str().unwrap();
    let (_, artifacts) = s
        .get(&format!("/api/flow-runs/{id}/artifacts"), &ws.key)
        .await;
    assert!(
        artifacts["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["key"] == "orders-report"),
        "{artifacts}"
    );

    // Without the grant, notify cannot read the secret, and says which one.
    deploy(
        &s,
        &ws.key,
        &report,
        "ungranted",
        "orders-report",
        json!({"capabilities": {"allowed_hosts": ["127.0.0.1"]}}),
    )
    .await;
    let refused = run(
        &s,
        &ws.key,
        "ungranted",
        json!({"orders_url": format!("http://127.0.0.1:{port}/orders"),
               "webhook_secret": "orders-hook"}),
    )
    .await;
    assert_eq!(refused["state"]["type"], "FAILED", "{refused}");
    let notify = task_runs(&s, &ws.key, &refused)
        .await
        .into_iter()
        .find(|t| t["task"] == "notify/send")
        .expect("the notify call");
    let message = notify["state"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("orders-hook"), "{message}");
    assert!(
        !message.contains(&hook),
        "the URL is never shown: {message}"
    );
    assert_eq!(received.lock().unwrap().len(), 1, "nothing more was posted");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_builtin_plugins_answer_and_refuse_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let s = with_builtins(dir.path()).await;
    let ws = s.workspace("builtins").await;
    let caller = s.upload(&ws.key, CALLER).await;
    deploy(&s, &ws.key, &caller, "call", "call_plugin", json!({})).await;
    let call = |task: &'static str, arguments: Value| {
        let s = &s;
        let key = ws.key.clone();
        async move {
            run(
                s,
                &key,
                "call",
                json!({"task": task, "arguments": arguments}),
            )
            .await
        }
    };
    let parsed = call(
        "csv/parse",
        json!({"text": "name,n\nada,1\ngrace,2.5\n", "infer_types": true}),
    )
    .await;
    assert_eq!(
        parsed["result"],
        json!([{"name": "ada", "n": 1}, {"name": "grace", "n": 2.5}]),
        "{parsed}"
    );
    let written = call(
        "csv/write",
        json!({"rows": [{"name": "ada", "n": 1}], "columns": ["name", "n"]}),
    )
    .await;
    assert_eq!(written["result"], "name,n\nada,1\n", "{written}");
    let all = call(
        "jq/query",
        json!({"filter": ".[] | . * 2", "input": [1, 2, 3]}),
    )
    .await;
    assert_eq!(all["result"], json!([2, 4, 6]), "{all}");
    let rendered = call(
        "template/render",
        json!({"template": "Hi {{ name }}", "context": {"name": "<b>"}, "autoescape": true}),
    )
    .await;
    assert_eq!(rendered["result"], "Hi &lt;b&gt;", "{rendered}");
    // Mistakes fail the task run with what is wrong, and are not retried.
    for (task, arguments, expected) in [
        (
            "jq/first",
            json!({"filter": ".[", "input": []}),
            "expected closing bracket",
        ),
        (
            "template/render",
            json!({"template": "{{ nope }}", "context": {}}),
            "nope",
        ),
        ("csv/parse", json!({"text": "a,b\n1\n"}), "line"),
        (
            "http/request",
            json!({"url": "https://example.com", "json": {}, "body": "x"}),
            "body",
        ),
        ("notify/send", json!({"message": "hi"}), "url"),
    ] {
        let failed = call(task, arguments).await;
        assert_eq!(failed["state"]["type"], "FAILED", "{task}: {failed}");
        let tasks = task_runs(&s, &ws.key, &failed).await;
        assert_eq!(tasks[0]["run_count"], 1, "{task}: {tasks:?}");
        let message = tasks[0]["state"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(expected), "{task}: {message}");
    }
    s.stop().await;
}
