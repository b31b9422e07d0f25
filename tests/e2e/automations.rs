//! Automations: runs that react to flow runs' states (once, or N times within a window),
//! to runs stuck in a state, and to posted events, by running deployments, cancelling,
//! retrying, pausing, and calling plugins; once per event, across restarts.

use crate::BASIC;
use crate::plugins::{deploy, with_builtins as server};
use crate::support::server::{Api, TestServer, send};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type Received = Arc<Mutex<Vec<Value>>>;

/// A webhook receiver on loopback recording what is posted to `/hook`; returns its port.
async fn receiver(received: Received) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    serve_receiver(listener, received);
    port
}

fn serve_receiver(listener: tokio::net::TcpListener, received: Received) {
    let app = axum::Router::new().route(
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
}

async fn trigger(s: &Api, key: &str, deployment: &str, parameters: Value) -> String {
    let (status, run) = s
        .post(
            &format!("/api/deployments/{deployment}/runs"),
            key,
            json!({ "parameters": parameters }),
        )
        .await;
    assert_eq!(status, 201, "{run}");
    run["id"].as_str().unwrap().to_owned()
}

/// The automation's runs once `pred` holds for them (within 30 s).
async fn runs_until(
    s: &Api,
    key: &str,
    automation: &str,
    pred: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, page) = s
            .get(&format!("/api/automations/{automation}/runs"), key)
            .await;
        assert_eq!(status, 200, "{page}");
        let items = page["items"].as_array().unwrap().clone();
        if pred(&items) {
            return items;
        }
        assert!(
            Instant::now() < deadline,
            "automation {automation}: {items:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn completed(runs: &[Value]) -> usize {
    runs.iter().filter(|r| r["state"] == "completed").count()
}

/// Where the built-in plugins are built, for `weir server --plugins`.
fn builtins_dir() -> String {
    crate::support::build_guests();
    let dir = crate::support::root().join("target/wasm32-wasip2/release");
    dir.to_str().unwrap().to_owned()
}

/// A deployment `nightly` whose runs fail, and an automation `tell` sending each failure
/// to the receiver on `port` through the notify plugin.
async fn failing_and_told(s: &Api, key: &str, port: u16) {
    let basic = s.upload(key, BASIC).await;
    deploy(
        s,
        key,
        &basic,
        "nightly",
        "returns_error",
        json!({"capabilities": {"allowed_hosts": ["127.0.0.1"]}}),
    )
    .await;
    create(
        s,
        key,
        json!({
            "name": "tell",
            "trigger": {"type": "flow-run-state", "deployments": ["nightly"], "states": ["Failed"]},
            "actions": [{"type": "call-plugin", "task": "notify/send",
                         "arguments": {"url": format!("http://127.0.0.1:{port}/hook"),
                                       "message": "{{ flow_run.name }} failed"}}]
        }),
    )
    .await;
}

async fn create(s: &Api, key: &str, body: Value) -> Value {
    let (status, a) = s.post("/api/automations", key, body).await;
    assert_eq!(status, 201, "{a}");
    a
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_deployment_notifies_a_webhook_once_per_failure() {
    let received = Received::default();
    let port = receiver(received.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let ws = s.workspace("notify").await;
    let basic = s.upload(&ws.key, BASIC).await;
    deploy(
        &s,
        &ws.key,
        &basic,
        "nightly",
        "returns_error",
        json!({"capabilities": {"allowed_hosts": ["127.0.0.1"]}}),
    )
    .await;
    deploy(&s, &ws.key, &basic, "fine", "echo_flow", json!({})).await;
    create(
        &s,
        &ws.key,
        json!({
            "name": "tell-slack",
            "trigger": {"type": "flow-run-state", "deployments": ["nightly"], "states": ["Failed"]},
            "actions": [{
                "type": "call-plugin", "task": "notify/send",
                "arguments": {
                    "url": format!("http://127.0.0.1:{port}/hook"),
                    "title": "{{ deployment.name }} failed",
                    "message": "Run {{ flow_run.name }}: {{ state.message }}",
                }
            }]
        }),
    )
    .await;
    let first = trigger(&s, &ws.key, "nightly", json!({})).await;
    let second = trigger(&s, &ws.key, "nightly", json!({})).await;
    // Runs of another deployment, and completed ones, fire nothing.
    trigger(&s, &ws.key, "fine", json!({"x": 1})).await;
    let runs = runs_until(&s, &ws.key, "tell-slack", |r| completed(r) == 2).await;
    assert_eq!(runs.len(), 2, "{runs:?}");
    let posts = received.lock().unwrap().clone();
    assert_eq!(posts.len(), 2, "exactly once per failure: {posts:?}");
    for (id, post) in [first, second].iter().zip(posts.iter().rev()) {
        let name = s.wait_final(&ws.key, id).await["name"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            posts
                .iter()
                .any(|p| p["message"].as_str().unwrap_or("").contains(&name)),
            "the run's name in a message: {posts:?}"
        );
        assert_eq!(post["title"], "nightly failed", "{post}");
    }
    // Each automation run says what set it off and what its action did.
    let run = &runs[0];
    assert_eq!(run["event"]["flow_run"]["state"]["type"], "FAILED", "{run}");
    assert_eq!(run["results"][0]["type"], "call-plugin", "{run}");
    assert_eq!(run["results"][0]["ok"], true, "{run}");
    // Nothing more comes: each failure fired once.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(received.lock().unwrap().len(), 2);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completed_run_starts_the_next_deployment_and_events_start_runs_once() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let ws = s.workspace("chain").await;
    let basic = s.upload(&ws.key, BASIC).await;
    deploy(&s, &ws.key, &basic, "extract", "echo_flow", json!({})).await;
    deploy(&s, &ws.key, &basic, "load", "names_flow", json!({})).await;
    create(
        &s,
        &ws.key,
        json!({
            "name": "then-load",
            "trigger": {"type": "flow-run-state", "deployments": ["extract"], "states": ["Completed"]},
            "actions": [{"type": "run-deployment", "deployment": "load",
                         "parameters": {"who": "after {{ flow_run.name }}"}}]
        }),
    )
    .await;
    let id = trigger(&s, &ws.key, "extract", json!({"x": 4})).await;
    let extract = s.wait_final(&ws.key, &id).await;
    let runs = runs_until(&s, &ws.key, "then-load", |r| completed(r) == 1).await;
    let load_id = runs[0]["results"][0]["output"]["flow_run_id"]
        .as_str()
        .expect("the run it started")
        .to_owned();
    let load = s.wait_final(&ws.key, &load_id).await;
    assert_eq!(load["state"]["type"], "COMPLETED", "{load}");
    assert_eq!(
        load["parameters"]["who"],
        format!("after {}", extract["name"].as_str().unwrap())
    );

    // An event trigger: the body is in the templates; the same Idempotency-Key is the
    // same event.
    create(
        &s,
        &ws.key,
        json!({
            "name": "on-signup",
            "trigger": {"type": "event"},
            "actions": [{"type": "run-deployment", "deployment": "load",
                         "parameters": {"who": "{{ event.body.user }}"}}]
        }),
    )
    .await;
    for _ in 0..2 {
        let status = s
            .req(
                reqwest::Method::POST,
                "/api/automations/on-signup/events",
                &ws.key,
            )
            .header("idempotency-key", "signup-1")
            .json(&json!({"user": "Ada"}))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 202);
    }
    let runs = runs_until(&s, &ws.key, "on-signup", |r| completed(r) == 1).await;
    assert_eq!(runs.len(), 1, "one event, one run: {runs:?}");
    let started = runs[0]["results"][0]["output"]["flow_run_id"]
        .as_str()
        .unwrap();
    let run = s.wait_final(&ws.key, started).await;
    assert_eq!(run["parameters"]["who"], "Ada", "{run}");
    // A state trigger takes no posted events.
    let (status, _) = s
        .post("/api/automations/then-load/events", &ws.key, json!({}))
        .await;
    assert_eq!(status, 409);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thresholds_and_stuck_runs() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let ws = s.workspace("stuck").await;
    let basic = s.upload(&ws.key, BASIC).await;
    deploy(&s, &ws.key, &basic, "flaky", "returns_error", json!({})).await;
    deploy(&s, &ws.key, &basic, "slow", "nap", json!({})).await;
    // Three failures within a minute pause the deployment, once.
    create(
        &s,
        &ws.key,
        json!({
            "name": "pause-when-flapping",
            "trigger": {"type": "flow-run-state", "deployments": ["flaky"], "states": ["Failed"],
                        "threshold": 3, "within_seconds": 60},
            "actions": [{"type": "pause-deployment"}]
        }),
    )
    .await;
    for _ in 0..2 {
        let id = trigger(&s, &ws.key, "flaky", json!({})).await;
        s.wait_final(&ws.key, &id).await;
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (_, runs) = s
        .get("/api/automations/pause-when-flapping/runs", &ws.key)
        .await;
    assert_eq!(
        runs["items"].as_array().unwrap().len(),
        0,
        "two failures: {runs}"
    );
    let id = trigger(&s, &ws.key, "flaky", json!({})).await;
    s.wait_final(&ws.key, &id).await;
    runs_until(&s, &ws.key, "pause-when-flapping", |r| completed(r) == 1).await;
    let (_, d) = s.get("/api/deployments/flaky", &ws.key).await;
    assert_eq!(d["paused"], true, "{d}");

    // A run Running for more than a second is cancelled.
    create(
        &s,
        &ws.key,
        json!({
            "name": "cancel-stuck",
            "trigger": {"type": "flow-run-stuck", "deployments": ["slow"], "state": "Running",
                        "for_seconds": 1},
            "actions": [{"type": "cancel-run"}]
        }),
    )
    .await;
    let started = Instant::now();
    let id = trigger(&s, &ws.key, "slow", json!({"millis": 20000})).await;
    let done = s.wait_final(&ws.key, &id).await;
    assert_eq!(done["state"]["type"], "CANCELLED", "{done}");
    assert!(started.elapsed() >= Duration::from_secs(1));
    let runs = runs_until(&s, &ws.key, "cancel-stuck", |r| completed(r) == 1).await;
    assert_eq!(runs[0]["event"]["kind"], "flow-run-stuck");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_action_that_fails_is_retried_and_done_once_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    // The receiver is down at first: its port is taken and released.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let key;
    {
        let s = server(dir.path()).await;
        let ws = s.workspace("restart").await;
        key = ws.key.clone();
        let basic = s.upload(&ws.key, BASIC).await;
        deploy(
            &s,
            &ws.key,
            &basic,
            "nightly",
            "returns_error",
            json!({"capabilities": {"allowed_hosts": ["127.0.0.1"]}}),
        )
        .await;
        create(
            &s,
            &ws.key,
            json!({
                "name": "tell",
                "trigger": {"type": "flow-run-state", "states": ["Failed"]},
                "actions": [{"type": "call-plugin", "task": "notify/send",
                             "arguments": {"url": format!("http://127.0.0.1:{port}/hook"),
                                           "message": "{{ flow_run.name }} failed"}}]
            }),
        )
        .await;
        trigger(&s, &ws.key, "nightly", json!({})).await;
        let runs = runs_until(&s, &ws.key, "tell", |r| {
            r.first()
                .is_some_and(|r| r["attempts"] == 1 && r["state"] == "pending")
        })
        .await;
        assert!(
            runs[0]["error"]
                .as_str()
                .unwrap_or("")
                .contains("call-plugin"),
            "the failure is visible: {runs:?}"
        );
        s.stop().await;
    }
    // The receiver comes up; the server starts again on the same data.
    let received = Received::default();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    serve_receiver(listener, received.clone());
    let s = server(dir.path()).await;
    let deadline = Instant::now() + Duration::from_secs(40);
    let runs = loop {
        let (_, page) = s.get("/api/automations/tell/runs", &key).await;
        let items = page["items"].as_array().unwrap().clone();
        if completed(&items) == 1 {
            break items;
        }
        assert!(Instant::now() < deadline, "{items:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["attempts"], 2, "{runs:?}");
    assert_eq!(received.lock().unwrap().len(), 1, "delivered once");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_automations_are_refused_with_the_fields_named() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let ws = s.workspace("bad").await;
    for (body, expected) in [
        (
            json!({"name": "a", "trigger": {"type": "never"}, "actions": []}),
            "'trigger'",
        ),
        (
            json!({"name": "a", "trigger": {"type": "event"}, "actions": [{"type": "cancel-run"}]}),
            "an event brings none",
        ),
        (
            json!({"name": "a", "trigger": {"type": "flow-run-state", "states": ["Failed"],
                   "threshold": 3}, "actions": [{"type": "retry-run"}]}),
            "within_seconds",
        ),
        (
            json!({"name": "a", "trigger": {"type": "flow-run-stuck", "state": "Running",
                   "for_seconds": 0}, "actions": [{"type": "cancel-run"}]}),
            "for_seconds",
        ),
        (
            json!({"name": "a", "trigger": {"type": "event"},
                   "actions": [{"type": "call-plugin", "task": "send", "deployment": "d"}]}),
            "<plugin>/<task>",
        ),
    ] {
        let (status, problem) = s.post("/api/automations", &ws.key, body.clone()).await;
        assert_eq!(status, 422, "{body}: {problem}");
        assert!(
            problem.to_string().contains(expected),
            "{expected}: {problem}"
        );
    }
    let ok = json!({"name": "a", "trigger": {"type": "event"},
                    "actions": [{"type": "run-deployment", "deployment": "d"}]});
    create(&s, &ws.key, ok.clone()).await;
    let (status, _) = s.post("/api/automations", &ws.key, ok).await;
    assert_eq!(status, 409);
    let other = s.workspace("bad-other").await;
    assert_eq!(s.get("/api/automations/a", &other.key).await.0, 404);
    let status = s
        .req(reqwest::Method::PATCH, "/api/automations/a", &ws.key)
        .json(&json!({"enabled": false}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    let (status, _) = s
        .post("/api/automations/a/events", &ws.key, json!({}))
        .await;
    assert_eq!(status, 409, "a disabled automation takes no events");
    assert_eq!(s.delete("/api/automations/a", &ws.key).await, 204);
    assert_eq!(s.get("/api/automations/a", &ws.key).await.0, 404);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_automation_run_survives_kill_9_and_acts_once() {
    use crate::support::node::Node;
    let dir = tempfile::tempdir().unwrap();
    let db = crate::support::database_url(dir.path()).await;
    let plugins = builtins_dir();
    let plugins = plugins.as_str();
    // The receiver is down at first.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let a = Node::start(dir.path(), db.as_deref(), "a", &["--plugins", plugins]).await;
    let ws = a.workspace("kill").await;
    failing_and_told(&a, &ws.key, port).await;
    trigger(&a, &ws.key, "nightly", json!({})).await;
    runs_until(&a, &ws.key, "tell", |r| {
        r.first()
            .is_some_and(|r| r["attempts"] == 1 && r["state"] == "pending")
    })
    .await;
    a.kill().await;
    let received = Received::default();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    serve_receiver(listener, received.clone());
    let b = Node::start(dir.path(), db.as_deref(), "b", &["--plugins", plugins]).await;
    let runs = runs_until(&b, &ws.key, "tell", |r| completed(r) == 1).await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(received.lock().unwrap().len(), 1, "delivered once");
    // A second failure after the restart fires it again, once.
    trigger(&b, &ws.key, "nightly", json!({})).await;
    runs_until(&b, &ws.key, "tell", |r| completed(r) == 2).await;
    assert_eq!(received.lock().unwrap().len(), 2);
    b.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_leaves_a_report_and_pauses_the_schedules_until_an_event_resumes_them() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let ws = s.workspace("report").await;
    let basic = s.upload(&ws.key, BASIC).await;
    deploy(&s, &ws.key, &basic, "hourly", "returns_error", json!({})).await;
    let (status, schedule) = s
        .post(
            "/api/deployments/hourly/schedules",
            &ws.key,
            json!({"cron": "0 * * * *"}),
        )
        .await;
    assert_eq!(status, 201, "{schedule}");
    let schedule_id = schedule["id"].as_str().unwrap().to_owned();
    create(
        &s,
        &ws.key,
        json!({
            "name": "report-and-pause",
            "trigger": {"type": "flow-run-state", "deployments": ["hourly"], "states": ["Failed"]},
            "actions": [
                {"type": "create-artifact", "key": "failure-report",
                 "markdown": "# {{ flow_run.name }} failed\n\n{{ state.message }}"},
                {"type": "pause-schedules"}
            ]
        }),
    )
    .await;
    create(
        &s,
        &ws.key,
        json!({
            "name": "resume",
            "trigger": {"type": "event"},
            "actions": [{"type": "resume-schedules", "deployment": "hourly"}]
        }),
    )
    .await;
    let id = trigger(&s, &ws.key, "hourly", json!({})).await;
    let failed = s.wait_final(&ws.key, &id).await;
    let runs = runs_until(&s, &ws.key, "report-and-pause", |r| completed(r) == 1).await;
    assert_eq!(runs[0]["results"][1]["output"]["schedules"], 1, "{runs:?}");
    let (_, artifacts) = s
        .get(&format!("/api/flow-runs/{id}/artifacts"), &ws.key)
        .await;
    let report = artifacts["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["key"] == "failure-report")
        .unwrap_or_else(|| panic!("the report artifact: {artifacts}"))
        .clone();
    let text = report["data"].as_str().unwrap_or_default();
    assert!(
        text.starts_with(&format!("# {} failed", failed["name"].as_str().unwrap())),
        "{report}"
    );
    let (_, paused) = s
        .get(&format!("/api/schedules/{schedule_id}"), &ws.key)
        .await;
    assert_eq!(paused["active"], false, "{paused}");
    let (status, _) = s
        .post("/api/automations/resume/events", &ws.key, json!({}))
        .await;
    assert_eq!(status, 202);
    runs_until(&s, &ws.key, "resume", |r| completed(r) == 1).await;
    let (_, resumed) = s
        .get(&format!("/api/schedules/{schedule_id}"), &ws.key)
        .await;
    assert_eq!(resumed["active"], true, "{resumed}");
    // A bad artifact key is refused when the automation is made.
    let (status, problem) = s
        .post(
            "/api/automations",
            &ws.key,
            json!({"name": "bad-key", "trigger": {"type": "flow-run-state", "states": ["Failed"]},
                   "actions": [{"type": "create-artifact", "key": "Bad Key", "markdown": "x"}]}),
        )
        .await;
    assert_eq!(status, 422, "{problem}");
    s.stop().await;
}

/// An event trigger's own URL takes events without the API key: signed when asked,
/// once per delivery id or signature, refused with a clear status otherwise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_webhook_takes_posts_without_the_api_key() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let ws = s.workspace("hooked").await;
    let basic = s.upload(&ws.key, BASIC).await;
    deploy(&s, &ws.key, &basic, "load", "names_flow", json!({})).await;
    let spec = json!({
        "name": "on-push",
        "trigger": {"type": "event"},
        "webhook": {"enabled": true},
        "actions": [{"type": "run-deployment", "deployment": "load",
                     "parameters": {"who": "{{ event.body.user }}"}}]
    });
    let a = create(&s, &ws.key, spec).await;
    assert_eq!(a["webhook"]["enabled"], true, "{a}");
    let url = format!("{}{}", s.url, a["webhook"]["url"].as_str().unwrap());
    assert!(url.contains("/hooks/automations/"), "{url}");
    // The token is shown once.
    let (_, again) = s.get("/api/automations/on-push", &ws.key).await;
    assert_eq!(again["webhook"]["enabled"], true);
    assert!(again["webhook"].get("token").is_none(), "{again}");

    // No API key; a delivery id twice is one event.
    for expect in ["false", "true"] {
        let r = s
            .client
            .post(&url)
            .header("idempotency-key", "push-1")
            .json(&json!({"user": "Grace"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        assert_eq!(r.headers()["idempotent-replayed"], expect);
    }
    // The same id through the API is the same event too.
    let status = s
        .req(
            reqwest::Method::POST,
            "/api/automations/on-push/events",
            &ws.key,
        )
        .header("idempotency-key", "push-1")
        .json(&json!({"user": "Grace"}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 202);
    let runs = runs_until(&s, &ws.key, "on-push", |r| completed(r) == 1).await;
    assert_eq!(runs.len(), 1, "one delivery, one run: {runs:?}");
    let started = runs[0]["results"][0]["output"]["flow_run_id"]
        .as_str()
        .unwrap();
    let run = s.wait_final(&ws.key, started).await;
    assert_eq!(run["parameters"]["who"], "Grace", "{run}");
    // Bad bodies and unknown tokens.
    let (status, p) = send(s.client.post(&url).body("{not json")).await;
    assert_eq!(status, 400, "{p}");
    let (status, _) = send(
        s.client
            .post(format!("{}/hooks/automations/nope", s.url))
            .body("{}"),
    )
    .await;
    assert_eq!(status, 404);

    // Signed: a missing or wrong signature is refused and fires nothing; rotating issues
    // a new URL and the old one stops working.
    let (status, a) = s
        .patch(
            "/api/automations/on-push",
            &ws.key,
            json!({"webhook": {"enabled": true, "signed": true}}),
        )
        .await;
    assert_eq!(status, 200, "{a}");
    let signed_url = format!("{}{}", s.url, a["webhook"]["url"].as_str().unwrap());
    let secret = a["webhook"]["secret"].as_str().unwrap().to_owned();
    let (status, _) = send(s.client.post(&url).body("{}")).await;
    assert_eq!(status, 404, "the unsigned URL was replaced");
    let body = br#"{"user": "Linus"}"#;
    let now = chrono::Utc::now().timestamp();
    let post = |sig: Option<String>| {
        let mut r = s.client.post(&signed_url).body(body.to_vec());
        if let Some(sig) = sig {
            r = r.header("x-weir-signature", sig);
        }
        send(r)
    };
    assert_eq!(post(None).await.0, 401);
    assert_eq!(
        post(Some(weir::secrets::webhook::sign("wrong", now, body)))
            .await
            .0,
        401
    );
    let sig = weir::secrets::webhook::sign(&secret, now, body);
    let (status, first) = post(Some(sig.clone())).await;
    assert_eq!((status, &first["new"]), (202, &json!(true)), "{first}");
    // The same signed call replayed is the same event.
    let (status, replay) = post(Some(sig)).await;
    assert_eq!((status, &replay["new"]), (202, &json!(false)), "{replay}");
    let runs = runs_until(&s, &ws.key, "on-push", |r| completed(r) == 2).await;
    assert_eq!(runs.len(), 2, "{runs:?}");

    let (status, rotated) = s
        .post(
            "/api/automations/on-push/webhook/rotate",
            &ws.key,
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    assert_ne!(rotated["webhook"]["url"], a["webhook"]["url"]);
    assert_eq!(rotated["webhook"]["signed"], true);
    let (status, _) = send(s.client.post(&signed_url).body("{}")).await;
    assert_eq!(status, 404, "the old URL stops working");

    // Only an event trigger has a webhook; a disabled automation takes no posts.
    let (status, p) = s
        .patch(
            "/api/automations/on-push",
            &ws.key,
            json!({"trigger": {"type": "flow-run-state", "states": ["Failed"]}}),
        )
        .await;
    assert_eq!(status, 422, "{p}");
    assert!(p.to_string().contains("webhook"), "{p}");
    let (status, p) = s
        .post(
            "/api/automations",
            &ws.key,
            json!({"name": "x", "trigger": {"type": "flow-run-stuck", "state": "Running", "for_seconds": 5},
                   "webhook": {"enabled": true}, "actions": [{"type": "cancel-run"}]}),
        )
        .await;
    assert_eq!(status, 422, "{p}");
    let (status, _) = s
        .patch(
            "/api/automations/on-push",
            &ws.key,
            json!({"enabled": false}),
        )
        .await;
    assert_eq!(status, 200);
    let new_url = format!("{}{}", s.url, rotated["webhook"]["url"].as_str().unwrap());
    let sig = weir::secrets::webhook::sign(
        rotated["webhook"]["secret"].as_str().unwrap(),
        chrono::Utc::now().timestamp(),
        b"{}",
    );
    let (status, p) = send(
        s.client
            .post(&new_url)
            .header("x-weir-signature", sig)
            .body("{}"),
    )
    .await;
    assert_eq!(status, 409, "{p}");
    s.stop().await;
}

/// Two nodes on one PostgreSQL database both watch every state change: each failure
/// notifies once, and an event posted to both nodes with one key fires once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_fire_each_event_once() {
    use crate::support::node::Node;
    if !crate::support::postgres() {
        eprintln!("two nodes need PostgreSQL (WEIR_TEST_DB=postgres); skipped on SQLite");
        return;
    }
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    let db = crate::support::database_url(dir_a.path()).await.unwrap();
    let plugins = builtins_dir();
    let plugins = plugins.as_str();
    let received = Received::default();
    let port = receiver(received.clone()).await;
    let a = Node::start(dir_a.path(), Some(&db), "auto-a", &["--plugins", plugins]).await;
    // The second node shares the first one's secret key.
    std::fs::copy(
        dir_a.path().join("secret.key"),
        dir_b.path().join("secret.key"),
    )
    .unwrap();
    let b = Node::start(dir_b.path(), Some(&db), "auto-b", &["--plugins", plugins]).await;
    let ws = a.workspace("pair").await;
    failing_and_told(&a, &ws.key, port).await;
    const RUNS: usize = 8;
    let mut names = Vec::new();
    for i in 0..RUNS {
        let node: &Api = if i % 2 == 0 { &a } else { &b };
        let id = trigger(node, &ws.key, "nightly", json!({})).await;
        let run = node.wait_final(&ws.key, &id).await;
        assert_eq!(run["state"]["type"], "FAILED", "{run}");
        names.push(run["name"].as_str().unwrap().to_owned());
    }
    let runs = runs_until(&b, &ws.key, "tell", |r| completed(r) == RUNS).await;
    assert_eq!(runs.len(), RUNS, "{runs:?}");
    let got = received.lock().unwrap().clone();
    assert_eq!(got.len(), RUNS, "one notification per failure: {got:?}");
    for name in &names {
        let n = got
            .iter()
            .filter(|m| m.to_string().contains(&format!("{name} failed")))
            .count();
        assert_eq!(n, 1, "{name}: {got:?}");
    }

    // One event, posted through both nodes with the same key: one automation run.
    create(
        &a,
        &ws.key,
        json!({"name": "on-event", "trigger": {"type": "event"},
               "actions": [{"type": "call-plugin", "task": "notify/send", "deployment": "nightly",
                            "arguments": {"url": format!("http://127.0.0.1:{port}/hook"),
                                          "message": "event {{ event.body.n }}"}}]}),
    )
    .await;
    for node in [&a, &b, &a] {
        let status = node
            .req(
                reqwest::Method::POST,
                "/api/automations/on-event/events",
                &ws.key,
            )
            .header("idempotency-key", "once")
            .json(&json!({"n": 7}))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 202);
    }
    let runs = runs_until(&a, &ws.key, "on-event", |r| completed(r) == 1).await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    let events = received
        .lock()
        .unwrap()
        .iter()
        .filter(|m| m.to_string().contains("event 7"))
        .count();
    assert_eq!(events, 1);
    a.kill().await;
    b.kill().await;
}

/// Prefect's action names: `cancel-flow-run`, `pause-automation` and `resume-automation`
/// (an automation switching another, or itself, off and on), and `do-nothing`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn automations_switch_automations_and_take_prefects_action_names() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let ws = s.workspace("switches").await;
    let basic = s.upload(&ws.key, BASIC).await;
    deploy(&s, &ws.key, &basic, "sleepy", "plain_pause", json!({})).await;
    let event = |name: &'static str| {
        let s = &s;
        let key = ws.key.clone();
        async move {
            s.post(&format!("/api/automations/{name}/events"), &key, json!({}))
                .await
                .0
        }
    };
    for (name, action) in [
        ("noisy", json!({"type": "do-nothing"})),
        (
            "mute",
            json!({"type": "pause-automation", "automation": "noisy"}),
        ),
        (
            "unmute",
            json!({"type": "resume-automation", "automation": "noisy"}),
        ),
        ("once", json!({"type": "pause-automation"})),
    ] {
        create(
            &s,
            &ws.key,
            json!({"name": name, "trigger": {"type": "event"}, "actions": [action]}),
        )
        .await;
    }
    assert_eq!(event("noisy").await, 202);
    let runs = runs_until(&s, &ws.key, "noisy", |r| completed(r) == 1).await;
    assert_eq!(runs[0]["results"][0]["type"], "do-nothing", "{runs:?}");
    assert_eq!(event("mute").await, 202);
    runs_until(&s, &ws.key, "mute", |r| completed(r) == 1).await;
    let (_, noisy) = s.get("/api/automations/noisy", &ws.key).await;
    assert_eq!(noisy["enabled"], false, "{noisy}");
    assert_eq!(event("noisy").await, 409, "switched off: takes no events");
    assert_eq!(event("unmute").await, 202);
    runs_until(&s, &ws.key, "unmute", |r| completed(r) == 1).await;
    assert_eq!(event("noisy").await, 202);
    // An automation that switches itself off fires once.
    assert_eq!(event("once").await, 202);
    runs_until(&s, &ws.key, "once", |r| completed(r) == 1).await;
    assert_eq!(event("once").await, 409);

    // `cancel-flow-run` is `cancel-run`: a paused run is cancelled.
    create(
        &s,
        &ws.key,
        json!({"name": "no-waiting", "trigger": {"type": "flow-run-state", "deployments": ["sleepy"], "states": ["Paused"]},
               "actions": [{"type": "cancel-flow-run"}]}),
    )
    .await;
    let id = trigger(&s, &ws.key, "sleepy", json!({"timeout": 60})).await;
    let run = s
        .wait_final_within(&ws.key, &id, Duration::from_secs(30))
        .await;
    assert_eq!(run["state"]["type"], "CANCELLED", "{run}");

    // A missing automation fails the action, naming it.
    create(
        &s,
        &ws.key,
        json!({"name": "lost", "trigger": {"type": "event"},
               "actions": [{"type": "resume-automation", "automation": "nope"}]}),
    )
    .await;
    assert_eq!(event("lost").await, 202);
    let runs = runs_until(&s, &ws.key, "lost", |r| {
        r.first().is_some_and(|r| r["state"] == "failed")
    })
    .await;
    assert!(
        runs[0]["error"]
            .as_str()
            .unwrap()
            .contains("no automation named 'nope'"),
        "{runs:?}"
    );
    s.stop().await;
}
