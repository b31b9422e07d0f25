//! The real server on a loopback port: upload, deploy, trigger, watch; workspaces kept
//! apart; bad input refused without side effects; limits, cancel, idempotency, shutdown.

use crate::support::server::{ADMIN, TestServer, Ws, send};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::Duration;

const BASIC: &str = "guest_basic";

async fn setup(s: &TestServer, name: &str) -> (Ws, String) {
    let ws = s.workspace(name).await;
    let digest = s.upload(&ws.key, BASIC).await;
    (ws, digest)
}

#[tokio::test]
async fn upload_deploy_trigger_by_webhook_and_read_everything_back() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let ws = s.workspace("acme").await;
    let hello = s.upload(&ws.key, "hello").await;
    // The same bytes again: the same component, 200 instead of 201.
    let bytes = std::fs::read(crate::support::guest("hello")).unwrap();
    let (status, again) = send(
        s.req(reqwest::Method::POST, "/api/components", &ws.key)
            .header("content-type", "application/wasm")
            .body(bytes),
    )
    .await;
    assert_eq!(
        (status, again["digest"].as_str().unwrap()),
        (200, hello.as_str())
    );
    assert_eq!(again["manifest"]["flows"][0]["name"], "hello");

    let d = s
        .deploy(&ws.key, json!({"name": "hello-prod", "component": hello, "flow": "hello", "webhook": {"enabled": true}}))
        .await;
    let url = d["webhook"]["url"].as_str().unwrap().to_owned();
    assert!(url.starts_with("/hooks/") && url.len() > 40, "{url}");
    let (status, accepted) = send(
        s.client
            .post(format!("{}{url}", s.url))
            .json(&json!({"name": "Ada"})),
    )
    .await;
    assert_eq!(status, 202, "{accepted}");
    let run_id = accepted["flow_run_id"].as_str().unwrap();
    // Accepted means stored: the run is readable at once.
    let (status, _) = s.get(&format!("/api/flow-runs/{run_id}"), &ws.key).await;
    assert_eq!(status, 200);

    let run = s.wait_final(&ws.key, run_id).await;
    assert_eq!(run["state"]["type"], "COMPLETED", "{run}");
    assert_eq!(run["result"], "Hello, Ada!");
    assert_eq!(run["component_digest"], hello.as_str());
    assert_eq!(run["deployment_id"], d["id"]);
    let history: Vec<&str> = run["state_history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(history, ["Scheduled", "Pending", "Running", "Completed"]);

    let (_, tasks) = s
        .get(&format!("/api/flow-runs/{run_id}/task-runs"), &ws.key)
        .await;
    assert_eq!(tasks["items"][0]["task"], "print_hello");
    assert_eq!(tasks["items"][0]["state"]["type"], "COMPLETED");
    let (_, logs) = s
        .get(&format!("/api/flow-runs/{run_id}/logs"), &ws.key)
        .await;
    assert!(
        logs["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["message"] == "Hello, Ada!"),
        "{logs}"
    );

    // Artifacts of the etl example, through the API.
    let etl = s.upload(&ws.key, "etl").await;
    s.deploy(
        &ws.key,
        json!({"name": "etl", "component": etl, "flow": "etl"}),
    )
    .await;
    let (status, run) = s
        .post(
            "/api/deployments/etl/runs",
            &ws.key,
            json!({"parameters": {"n": "2"}}),
        )
        .await;
    assert_eq!(status, 201, "{run}");
    let run = s.wait_final(&ws.key, run["id"].as_str().unwrap()).await;
    assert_eq!(run["state"]["type"], "COMPLETED", "{run}");
    let (_, arts) = s
        .get(
            &format!("/api/flow-runs/{}/artifacts", run["id"].as_str().unwrap()),
            &ws.key,
        )
        .await;
    let kinds: HashSet<&str> = arts["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["type"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains("markdown") && kinds.contains("table"),
        "{arts}"
    );
    let (_, by_key) = s.get("/api/artifacts?key=etl-report", &ws.key).await;
    assert_eq!(by_key["items"].as_array().unwrap().len(), 1);

    // Listing with filters and cursors.
    let (_, page) = s.get("/api/flow-runs?limit=1", &ws.key).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, next) = s
        .get(&format!("/api/flow-runs?limit=1&cursor={cursor}"), &ws.key)
        .await;
    assert_ne!(next["items"][0]["id"], page["items"][0]["id"]);
    let (_, hellos) = s
        .get(
            "/api/flow-runs?deployment=hello-prod&state=completed",
            &ws.key,
        )
        .await;
    assert_eq!(hellos["items"].as_array().unwrap().len(), 1);
    s.stop().await;
}

#[tokio::test]
async fn logs_can_be_followed_as_server_sent_events() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let (ws, digest) = setup(&s, "follow").await;
    s.deploy(
        &ws.key,
        json!({"name": "flood", "component": digest, "flow": "log_flood"}),
    )
    .await;
    let (_, run) = s
        .post(
            "/api/deployments/flood/runs",
            &ws.key,
            json!({"parameters": {"lines": 30}}),
        )
        .await;
    let id = run["id"].as_str().unwrap();
    let res = s
        .req(
            reqwest::Method::GET,
            &format!("/api/flow-runs/{id}/logs"),
            &ws.key,
        )
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let body = tokio::time::timeout(Duration::from_secs(20), res.text())
        .await
        .expect("the stream ends")
        .unwrap();
    let logs = body.matches("event: log").count();
    assert_eq!(logs, 30, "{body}");
    assert!(
        body.trim_end().ends_with("data: {}") && body.contains("event: end"),
        "{body}"
    );
    s.stop().await;
}

#[tokio::test]
async fn another_workspaces_objects_are_not_found_on_every_route() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    // A has a component of its own; B's objects must all be out of its reach.
    let a = s.workspace("alpha").await;
    s.upload(&a.key, "hello").await;
    let (b, digest) = setup(&s, "beta").await;
    let d = s
        .deploy(&b.key, json!({"name": "b-dep", "component": digest, "flow": "map_flow", "parameters": {"n": 2}}))
        .await;
    let dep = d["id"].as_str().unwrap();
    let (_, run) = s
        .post(&format!("/api/deployments/{dep}/runs"), &b.key, json!({}))
        .await;
    let run_id = run["id"].as_str().unwrap().to_owned();
    s.wait_final(&b.key, &run_id).await;
    let (_, key) = s.post("/api/keys", &b.key, json!({"name": "second"})).await;
    let key_id = key["id"].as_str().unwrap();
    s.req(reqwest::Method::PUT, "/api/variables/bvar", &b.key)
        .json(&json!({"value": 1}))
        .send()
        .await
        .unwrap();
    s.req(reqwest::Method::PUT, "/api/secrets/bsecret", &b.key)
        .json(&json!({"value": "x"}))
        .send()
        .await
        .unwrap();
    s.post("/api/pools", &b.key, json!({"name": "bpool"})).await;
    s.req(reqwest::Method::PUT, "/api/concurrency-limits/btag", &b.key)
        .json(&json!({"limit": 1}))
        .send()
        .await
        .unwrap();

    use reqwest::Method as M;
    let routes: Vec<(M, String, Option<Value>)> = vec![
        (M::GET, format!("/api/components/{digest}"), None),
        (M::DELETE, format!("/api/components/{digest}"), None),
        (M::GET, format!("/api/deployments/{dep}"), None),
        (M::GET, "/api/deployments/b-dep".into(), None),
        (
            M::PATCH,
            format!("/api/deployments/{dep}"),
            Some(json!({"paused": true})),
        ),
        (M::DELETE, format!("/api/deployments/{dep}"), None),
        (M::GET, format!("/api/deployments/{dep}/versions"), None),
        (
            M::POST,
            format!("/api/deployments/{dep}/webhook/rotate"),
            None,
        ),
        (
            M::POST,
            format!("/api/deployments/{dep}/runs"),
            Some(json!({})),
        ),
        (M::GET, format!("/api/flow-runs/{run_id}"), None),
        (M::GET, format!("/api/flow-runs/{run_id}/task-runs"), None),
        (M::GET, format!("/api/flow-runs/{run_id}/logs"), None),
        (M::GET, format!("/api/flow-runs/{run_id}/artifacts"), None),
        (M::POST, format!("/api/flow-runs/{run_id}/cancel"), None),
        (M::POST, format!("/api/flow-runs/{run_id}/retry"), None),
        (M::DELETE, format!("/api/keys/{key_id}"), None),
        (M::GET, "/api/variables/bvar".into(), None),
        (M::DELETE, "/api/variables/bvar".into(), None),
        (M::DELETE, "/api/secrets/bsecret".into(), None),
        (
            M::PATCH,
            "/api/pools/bpool".into(),
            Some(json!({"paused": true})),
        ),
        (M::DELETE, "/api/pools/bpool".into(), None),
        (M::DELETE, "/api/concurrency-limits/btag".into(), None),
    ];
    for (method, path, body) in routes {
        let mut req = s.req(method.clone(), &path, &a.key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let (status, problem) = send(req).await;
        assert_eq!(
            status, 404,
            "{method} {path} with another workspace's key: {problem}"
        );
        assert_eq!(problem["status"], 404);
    }
    // Lists show nothing of B.
    let (_, components) = s.get("/api/components", &a.key).await;
    assert!(!components.to_string().contains(&digest), "{components}");
    for path in [
        "/api/deployments",
        "/api/flow-runs",
        "/api/variables",
        "/api/secrets",
        "/api/concurrency-limits",
    ] {
        let (status, page) = s.get(path, &a.key).await;
        assert_eq!(status, 200);
        assert!(
            page["items"].as_array().unwrap().is_empty(),
            "{path}: {page}"
        );
    }
    let (_, arts) = s.get("/api/artifacts?key=anything", &a.key).await;
    assert!(arts["items"].as_array().unwrap().is_empty());
    // And B still has everything.
    let (status, _) = s.get(&format!("/api/deployments/{dep}"), &b.key).await;
    assert_eq!(status, 200);
    s.stop().await;
}

#[tokio::test]
async fn keys_are_required_and_revocation_is_immediate() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let ws = s.workspace("keys").await;
    let (status, health) = send(s.client.get(format!("{}/health", s.url))).await;
    assert_eq!((status, health["status"].as_str()), (200, Some("ok")));
    let (status, p) = send(s.client.get(format!("{}/api/deployments", s.url))).await;
    assert_eq!(status, 401, "{p}");
    assert_eq!(
        s.get("/api/deployments", "weir_000000000000_nope").await.0,
        401
    );
    // Only the admin creates workspaces.
    assert_eq!(
        s.post("/api/workspaces", &ws.key, json!({"name": "x"}))
            .await
            .0,
        401
    );
    assert_eq!(
        s.post("/api/workspaces", ADMIN, json!({"name": "keys"}))
            .await
            .0,
        409
    );
    let (_, second) = s.post("/api/keys", &ws.key, json!({"name": "ci"})).await;
    let second_key = second["secret"].as_str().unwrap();
    assert_eq!(s.get("/api/deployments", second_key).await.0, 200);
    let (_, keys) = s.get("/api/keys", &ws.key).await;
    assert!(
        keys["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k.get("secret").is_none()),
        "secrets are shown once"
    );
    let (status, _) = send(s.req(
        reqwest::Method::DELETE,
        &format!("/api/keys/{}", second["id"].as_str().unwrap()),
        &ws.key,
    ))
    .await;
    assert_eq!(status, 204);
    assert_eq!(s.get("/api/deployments", second_key).await.0, 401);
    s.stop().await;
}

#[tokio::test]
async fn bad_input_gets_a_clear_4xx_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start_with(dir.path(), |c| c.body_limits.upload = 8 << 20).await;
    let (ws, digest) = setup(&s, "bad").await;
    let upload = |bytes: Vec<u8>| {
        send(
            s.req(reqwest::Method::POST, "/api/components", &ws.key)
                .header("content-type", "application/wasm")
                .body(bytes),
        )
    };

    let (status, p) = upload(b"definitely not wasm".to_vec()).await;
    assert_eq!(status, 422);
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("not a WebAssembly file"),
        "{p}"
    );
    let (status, p) = upload(std::fs::read(crate::support::guest("other_world")).unwrap()).await;
    assert_eq!(status, 422);
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("does not fit the weir:flow world"),
        "{p}"
    );
    let (status, p) = upload(vec![0u8; 9 << 20]).await;
    assert_eq!(status, 413, "{p}");
    let (_, list) = s.get("/api/components", &ws.key).await;
    assert_eq!(
        list["items"].as_array().unwrap().len(),
        1,
        "only the good upload exists"
    );

    let (status, p) = send(
        s.req(reqwest::Method::POST, "/api/deployments", &ws.key)
            .header("content-type", "application/json")
            .body("{\"name\": "),
    )
    .await;
    assert_eq!(status, 400, "{p}");
    assert!(p["detail"].as_str().unwrap().contains("malformed JSON"));
    let (status, _) = send(
        s.req(reqwest::Method::POST, "/api/deployments", &ws.key)
            .body("name=x"),
    )
    .await;
    assert_eq!(status, 415);
    let (status, p) = s
        .post(
            "/api/deployments",
            &ws.key,
            json!({"name": "d", "component": digest, "flow": "typed", "parameters": {"n": "five"}}),
        )
        .await;
    assert_eq!(status, 422);
    assert!(p["errors"][0].as_str().unwrap().contains("'n'"), "{p}");
    let (status, p) = s
        .post(
            "/api/deployments",
            &ws.key,
            json!({"name": "d", "component": digest, "flow": "nope"}),
        )
        .await;
    assert_eq!(status, 422);
    assert!(
        p["errors"][0].as_str().unwrap().contains("no flow 'nope'"),
        "{p}"
    );
    let (status, p) = s
        .post(
            "/api/deployments",
            &ws.key,
            json!({"name": "d", "component": digest, "flow": "typed", "surprise": 1}),
        )
        .await;
    assert_eq!(status, 422, "{p}");
    assert!(p["errors"][0].as_str().unwrap().contains("surprise"), "{p}");
    let (_, deps) = s.get("/api/deployments", &ws.key).await;
    assert!(deps["items"].as_array().unwrap().is_empty());

    s.deploy(&ws.key, json!({"name": "typed", "component": digest, "flow": "typed", "parameters": {"ratio": 0.5}})).await;
    let (status, p) = send(s.req(
        reqwest::Method::DELETE,
        &format!("/api/components/{digest}"),
        &ws.key,
    ))
    .await;
    assert_eq!(status, 409, "a component in use cannot be deleted: {p}");
    let (status, p) = s
        .post(
            "/api/deployments/typed/runs",
            &ws.key,
            json!({"parameters": {"n": "x", "flag": "maybe"}}),
        )
        .await;
    assert_eq!(status, 422);
    let errors = p["errors"].as_array().unwrap();
    assert!(
        errors.iter().any(|e| e.as_str().unwrap().contains("'n'"))
            && errors
                .iter()
                .any(|e| e.as_str().unwrap().contains("'flag'")),
        "{p}"
    );
    let (status, big) = send(
        s.req(
            reqwest::Method::POST,
            "/api/deployments/typed/runs",
            &ws.key,
        )
        .header("content-type", "application/json")
        .body(format!(
            "{{\"parameters\": {{\"name\": \"{}\"}}}}",
            "x".repeat(2 << 20)
        )),
    )
    .await;
    assert_eq!(status, 413, "{big}");
    let (_, runs) = s.get("/api/flow-runs", &ws.key).await;
    assert!(
        runs["items"].as_array().unwrap().is_empty(),
        "no run was created: {runs}"
    );
    // And a good trigger still works.
    let (status, _) = s
        .post(
            "/api/deployments/typed/runs",
            &ws.key,
            json!({"parameters": {"n": 1, "flag": true}}),
        )
        .await;
    assert_eq!(status, 201);
    s.stop().await;
}

#[tokio::test]
async fn signed_webhooks_refuse_bad_and_stale_signatures() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let (ws, digest) = setup(&s, "signed").await;
    let d = s
        .deploy(&ws.key, json!({"name": "sq", "component": digest, "flow": "map_flow", "webhook": {"enabled": true, "signed": true}}))
        .await;
    let url = format!("{}{}", s.url, d["webhook"]["url"].as_str().unwrap());
    let secret = d["webhook"]["secret"].as_str().unwrap();
    let body = br#"{"n": 3}"#;
    let now = chrono::Utc::now().timestamp();
    let post = |sig: Option<String>| {
        let mut r = s
            .client
            .post(&url)
            .header("content-type", "application/json")
            .body(body.to_vec());
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
    let (status, p) = post(Some(weir::secrets::webhook::sign(secret, now - 600, body))).await;
    assert_eq!(status, 401);
    assert!(p["detail"].as_str().unwrap().contains("5 minutes"), "{p}");
    let (_, runs) = s.get("/api/flow-runs", &ws.key).await;
    assert!(
        runs["items"].as_array().unwrap().is_empty(),
        "nothing was created"
    );
    let (status, ok) = post(Some(weir::secrets::webhook::sign(secret, now, body))).await;
    assert_eq!(status, 202, "{ok}");
    let run = s
        .wait_final(&ws.key, ok["flow_run_id"].as_str().unwrap())
        .await;
    assert_eq!(run["result"], 5);
    // An unknown token is a 404.
    assert_eq!(
        send(s.client.post(format!("{}/hooks/nope", s.url)).body("{}"))
            .await
            .0,
        404
    );
    s.stop().await;
}

#[tokio::test]
async fn replayed_and_redelivered_webhooks_create_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let (ws, digest) = setup(&s, "replays").await;
    let d = s
        .deploy(&ws.key, json!({"name": "sq", "component": digest, "flow": "map_flow", "webhook": {"enabled": true, "signed": true}}))
        .await;
    let url = format!("{}{}", s.url, d["webhook"]["url"].as_str().unwrap());
    let secret = d["webhook"]["secret"].as_str().unwrap().to_owned();
    let post = |body: &'static [u8], sig: String, delivery: Option<&'static str>| {
        let mut r = s
            .client
            .post(&url)
            .header("content-type", "application/json")
            .header("x-weir-signature", sig)
            .body(body.to_vec());
        if let Some(id) = delivery {
            r = r.header("idempotency-key", id);
        }
        async move {
            let res = r.send().await.unwrap();
            let replayed = res.headers()["idempotent-replayed"]
                .to_str()
                .unwrap()
                .to_owned();
            let status = res.status().as_u16();
            let body: Value = res.json().await.unwrap();
            (
                status,
                replayed,
                body["flow_run_id"].as_str().unwrap_or_default().to_owned(),
            )
        }
    };
    let now = chrono::Utc::now().timestamp();
    let body: &[u8] = br#"{"n": 3}"#;
    let signed = weir::secrets::webhook::sign(&secret, now, body);
    // The same signed request sent again (an attacker's replay, or a retrying sender):
    // one run, and every answer names it.
    let (status, replayed, first) = post(body, signed.clone(), None).await;
    assert_eq!((status, replayed.as_str()), (202, "false"));
    for _ in 0..3 {
        let again = post(body, signed.clone(), None).await;
        assert_eq!(again, (202, "true".to_owned(), first.clone()));
    }
    // The same body signed at another second is another delivery.
    let (_, _, second) = post(
        body,
        weir::secrets::webhook::sign(&secret, now - 1, body),
        None,
    )
    .await;
    assert_ne!(second, first);
    // A delivery id: a redelivery signed anew is still the same run.
    let (_, replayed, third) = post(
        body,
        weir::secrets::webhook::sign(&secret, now, body),
        Some("evt_1"),
    )
    .await;
    assert_eq!(replayed, "false");
    let redelivered = post(
        body,
        weir::secrets::webhook::sign(&secret, now - 2, body),
        Some("evt_1"),
    )
    .await;
    assert_eq!(redelivered, (202, "true".to_owned(), third.clone()));
    // A header with two timestamps is refused, not read either way.
    let v1 = signed.split_once(',').unwrap().1;
    let res = s
        .client
        .post(&url)
        .header("x-weir-signature", format!("t={now},t={},{v1}", now - 100))
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let (_, runs) = s.get("/api/flow-runs", &ws.key).await;
    let mut ids: Vec<&str> = runs["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    ids.sort();
    let mut want = vec![first.as_str(), second.as_str(), third.as_str()];
    want.sort();
    assert_eq!(ids, want, "one run per delivery");
    s.stop().await;
}

#[tokio::test]
async fn every_api_error_is_problem_json_and_the_auth_scheme_is_case_insensitive() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let (ws, _) = setup(&s, "errors").await;
    let problem = |res: reqwest::Response| async move {
        let status = res.status().as_u16();
        let allow = res
            .headers()
            .get("allow")
            .map(|v| v.to_str().unwrap().to_owned());
        let ct = res.headers()["content-type"].to_str().unwrap().to_owned();
        assert_eq!(ct, "application/problem+json", "status {status}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["status"], status, "{body}");
        assert!(!body["detail"].as_str().unwrap().is_empty(), "{body}");
        (status, allow)
    };
    // A method the route does not take: 405 with Allow.
    let res = s
        .req(reqwest::Method::DELETE, "/api/openapi.json", &ws.key)
        .send()
        .await
        .unwrap();
    let (status, allow) = problem(res).await;
    assert_eq!(status, 405);
    assert!(allow.unwrap().contains("GET"));
    // A path that does not decode, a query that does not parse.
    for path in ["/api/deployments/%FF%FE", "/api/flow-runs?limit=lots"] {
        let res = s
            .req(reqwest::Method::GET, path, &ws.key)
            .send()
            .await
            .unwrap();
        assert_eq!(problem(res).await.0, 400, "{path}");
    }
    // Any case of the scheme, any whitespace before the key.
    for scheme in ["bearer", "BEARER", "BeArEr"] {
        let res = s
            .client
            .get(format!("{}/api/deployments", s.url))
            .header("authorization", format!("{scheme}  {}", ws.key))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{scheme}");
    }
    for bad in ["Basic abc", "Bearer", "Bearerx abc", ""] {
        let res = s
            .client
            .get(format!("{}/api/deployments", s.url))
            .header("authorization", bad)
            .send()
            .await
            .unwrap();
        assert_eq!(problem(res).await.0, 401, "{bad:?}");
    }
    s.stop().await;
}

#[tokio::test]
async fn an_idempotency_key_returns_the_same_run() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let (ws, digest) = setup(&s, "idem").await;
    s.deploy(
        &ws.key,
        json!({"name": "m", "component": digest, "flow": "map_flow", "parameters": {"n": 3}}),
    )
    .await;
    let body = json!({"idempotency_key": "order-42"});
    let (a, b) = tokio::join!(
        s.post("/api/deployments/m/runs", &ws.key, body.clone()),
        s.post("/api/deployments/m/runs", &ws.key, body.clone())
    );
    assert_eq!(a.1["id"], b.1["id"], "{a:?} {b:?}");
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, [200, 201]);
    let (status, c) = s.post("/api/deployments/m/runs", &ws.key, body).await;
    assert_eq!((status, &c["id"]), (200, &a.1["id"]));
    let (_, runs) = s.get("/api/flow-runs", &ws.key).await;
    assert_eq!(runs["items"].as_array().unwrap().len(), 1);
    s.stop().await;
}

#[tokio::test]
async fn a_spinning_run_is_cancelled_within_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let (ws, digest) = setup(&s, "cancel").await;
    s.deploy(
        &ws.key,
        json!({"name": "spin", "component": digest, "flow": "spin_forever"}),
    )
    .await;
    let (_, run) = s
        .post("/api/deployments/spin/runs", &ws.key, json!({}))
        .await;
    let id = run["id"].as_str().unwrap();
    s.wait_for(&ws.key, id, |r| r["state"]["type"] == "RUNNING")
        .await;
    let (status, body) = s
        .post(&format!("/api/flow-runs/{id}/cancel"), &ws.key, json!({}))
        .await;
    assert_eq!(
        status,
        202,
        "{body} {}",
        s.get(&format!("/api/flow-runs/{id}"), &ws.key).await.1
    );
    // The guest spins forever: only the cancel can end it.
    let run = s
        .wait_final_within(&ws.key, id, Duration::from_secs(10))
        .await;
    assert_eq!(run["state"]["type"], "CANCELLED", "{run}");
    assert_eq!(
        s.post(&format!("/api/flow-runs/{id}/cancel"), &ws.key, json!({}))
            .await
            .0,
        409
    );
    // A cancelled run can be retried; a completed one cannot.
    let (status, _) = s
        .post(&format!("/api/flow-runs/{id}/retry"), &ws.key, json!({}))
        .await;
    assert_eq!(status, 202);
    s.post(&format!("/api/flow-runs/{id}/cancel"), &ws.key, json!({}))
        .await;
    s.wait_final(&ws.key, id).await;
    s.stop().await;
}

#[tokio::test]
async fn a_failed_run_retried_replays_its_completed_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let (ws, digest) = setup(&s, "retry").await;
    s.deploy(
        &ws.key,
        json!({"name": "flaky", "component": digest, "flow": "retry_flow"}),
    )
    .await;
    let (_, run) = s
        .post(
            "/api/deployments/flaky/runs",
            &ws.key,
            json!({"parameters": {"fail_times": 9}}),
        )
        .await;
    let id = run["id"].as_str().unwrap();
    let run = s.wait_final(&ws.key, id).await;
    assert_eq!(run["state"]["type"], "FAILED");
    assert_eq!(
        s.post(&format!("/api/flow-runs/{id}/retry"), &ws.key, json!({}))
            .await
            .0,
        202
    );
    let run = s.wait_final(&ws.key, id).await;
    assert_eq!(run["run_count"], 2, "{run}");
    let (_, done) = s
        .post(
            "/api/deployments/flaky/runs",
            &ws.key,
            json!({"parameters": {"fail_times": 0}}),
        )
        .await;
    let done_id = done["id"].as_str().unwrap();
    s.wait_final(&ws.key, done_id).await;
    assert_eq!(
        s.post(
            &format!("/api/flow-runs/{done_id}/retry"),
            &ws.key,
            json!({})
        )
        .await
        .0,
        409
    );
    s.stop().await;
}

#[tokio::test]
async fn concurrency_limits_hold_under_a_burst_and_slots_come_back() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let (ws, digest) = setup(&s, "burst").await;
    let dep2 = s.deploy(&ws.key, json!({"name": "dep2", "component": digest, "flow": "nap", "parameters": {"millis": 60}, "concurrency_limit": 2})).await;
    let dep2 = dep2["id"].as_str().unwrap().to_owned();
    s.req(
        reqwest::Method::PUT,
        "/api/concurrency-limits/heavy",
        &ws.key,
    )
    .json(&json!({"limit": 3}))
    .send()
    .await
    .unwrap();
    s.post(
        "/api/pools",
        &ws.key,
        json!({"name": "small", "concurrency_limit": 4}),
    )
    .await;
    s.deploy(&ws.key, json!({"name": "tagged", "component": digest, "flow": "nap", "parameters": {"millis": 60}, "tags": ["heavy"], "pool": "small"})).await;
    s.deploy(&ws.key, json!({"name": "pooled", "component": digest, "flow": "nap", "parameters": {"millis": 60}, "pool": "small"})).await;
    // A burst of runs; one is cancelled while it waits: every way of ending frees its slot.
    let mut ids = Vec::new();
    for i in 0..12 {
        for dep in ["dep2", "tagged", "pooled"] {
            let (status, run) = s
                .post(&format!("/api/deployments/{dep}/runs"), &ws.key, json!({}))
                .await;
            assert_eq!(status, 201, "{run}");
            ids.push(run["id"].as_str().unwrap().to_owned());
        }
        if i == 5 {
            let (_, run) = s
                .post("/api/deployments/dep2/runs", &ws.key, json!({}))
                .await;
            s.post(
                &format!("/api/flow-runs/{}/cancel", run["id"].as_str().unwrap()),
                &ws.key,
                json!({}),
            )
            .await;
        }
    }
    let (mut max_dep2, mut max_tag, mut max_pool) = (0, 0, 0);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "the runs did not all finish within a minute"
        );
        let (_, page) = s
            .get("/api/flow-runs?state=RUNNING&limit=500", &ws.key)
            .await;
        let running = page["items"].as_array().unwrap();
        max_dep2 = max_dep2.max(
            running
                .iter()
                .filter(|r| r["deployment_id"] == dep2.as_str())
                .count(),
        );
        max_tag = max_tag.max(
            running
                .iter()
                .filter(|r| r["tags"].as_array().unwrap().iter().any(|t| t == "heavy"))
                .count(),
        );
        let (_, pools) = s.get("/api/pools", &ws.key).await;
        let small = pools["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "small")
            .unwrap();
        max_pool = max_pool.max(small["running"].as_u64().unwrap());
        let (_, all) = s.get("/api/flow-runs?limit=500", &ws.key).await;
        let unfinished = all["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| {
                !matches!(
                    r["state"]["type"].as_str().unwrap(),
                    "COMPLETED" | "FAILED" | "CANCELLED" | "CRASHED"
                )
            })
            .count();
        if unfinished == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(max_dep2 <= 2, "deployment limit exceeded: {max_dep2}");
    assert!(max_tag <= 3, "tag limit exceeded: {max_tag}");
    assert!(max_pool <= 4, "pool limit exceeded: {max_pool}");
    assert!(
        max_dep2 >= 1 && max_pool >= 1,
        "the sampler saw nothing running"
    );
    for id in &ids {
        let (_, run) = s.get(&format!("/api/flow-runs/{id}"), &ws.key).await;
        assert_eq!(run["state"]["type"], "COMPLETED", "{run}");
    }
    // Every slot came back.
    let (_, pools) = s.get("/api/pools", &ws.key).await;
    assert!(
        pools["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["running"] == 0),
        "{pools}"
    );
    let (_, limits) = s.get("/api/concurrency-limits", &ws.key).await;
    assert_eq!(limits["items"][0]["running"], 0);
    s.stop().await;
}

/// The node executes as many flow runs at once as it is configured to; the rest wait
/// in its queue, counted in /metrics, and start as running ones end. Unset, the bound
/// follows the instances it has (half of them: a run holds one, and one for its task).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_past_the_nodes_bound_wait_in_its_queue_and_start_as_others_end() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start_with(dir.path(), |c| c.max_active_runs = Some(2)).await;
    let (ws, digest) = setup(&s, "bounded").await;
    s.deploy(
        &ws.key,
        json!({"name": "nap", "component": digest, "flow": "nap", "parameters": {"millis": 1500}}),
    )
    .await;
    assert_eq!(s.metric("weir_flow_runs_max_active").await, 2.0);
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(s.trigger(&ws.key, "nap").await);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (active, queued) = (
            s.metric("weir_flow_runs_active").await,
            s.metric("weir_queue_depth").await,
        );
        assert!(active <= 2.0, "{active} runs executing past a bound of 2");
        if active == 2.0 && queued == 3.0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never 2 executing and 3 queued: {active}, {queued}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut spans = Vec::new();
    for id in &ids {
        let run = s
            .wait_final_within(&ws.key, id, Duration::from_secs(60))
            .await;
        assert_eq!(run["state"]["type"], "COMPLETED", "{run}");
        let at = |k: &str| {
            chrono::DateTime::parse_from_rfc3339(run[k].as_str().unwrap())
                .unwrap()
                .timestamp_micros()
        };
        spans.push((at("start_time"), at("end_time")));
    }
    // Never more than two at once: at every start, at most one other run is running.
    for (start, _) in &spans {
        let running = spans
            .iter()
            .filter(|(s2, e2)| s2 <= start && start < e2)
            .count();
        assert!(running <= 2, "{running} runs overlapped: {spans:?}");
    }
    assert_eq!(s.metric("weir_queue_depth").await, 0.0);
    s.stop().await;

    // Unset: half the instances.
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start_with(dir.path(), |c| c.limits.max_instances = 60).await;
    assert_eq!(s.metric("weir_flow_runs_max_active").await, 30.0);
    s.stop().await;
}

#[tokio::test]
async fn secrets_are_sealed_at_rest_and_readable_by_the_workspaces_guests() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let (ws, digest) = setup(&s, "sec").await;
    let (status, _) = send(
        s.req(reqwest::Method::PUT, "/api/secrets/token", &ws.key)
            .json(&json!({"value": "hunter2-very-secret"})),
    )
    .await;
    assert_eq!(status, 204);
    let (_, list) = s.get("/api/secrets", &ws.key).await;
    assert_eq!(list["items"], json!([{"name": "token"}]));
    assert!(!list.to_string().contains("hunter2"));
    s.deploy(&ws.key, json!({"name": "reader", "component": digest, "flow": "secret_length", "parameters": {"name": "token"}})).await;
    let (_, run) = s
        .post("/api/deployments/reader/runs", &ws.key, json!({}))
        .await;
    let run = s.wait_final(&ws.key, run["id"].as_str().unwrap()).await;
    assert_eq!(run["result"], 19);
    // Another workspace's guest does not see it.
    let other = s.workspace("other").await;
    let d2 = s.upload(&other.key, BASIC).await;
    s.deploy(&other.key, json!({"name": "reader", "component": d2, "flow": "secret_length", "parameters": {"name": "token"}})).await;
    let (_, run) = s
        .post("/api/deployments/reader/runs", &other.key, json!({}))
        .await;
    let run = s.wait_final(&other.key, run["id"].as_str().unwrap()).await;
    assert_eq!(run["result"], 0);
    s.stop().await;
    // Nothing on disk holds the plaintext.
    let (db, wal) = if crate::support::postgres() {
        // The database keeps only the ciphertext.
        let store = crate::support::open_store(dir.path()).await;
        let ws_id = store.workspace_by_name("sec").await.unwrap().unwrap().id;
        let stored = store.secret(&ws_id, "token").await.unwrap().unwrap();
        (stored.into_bytes(), Vec::new())
    } else {
        (
            std::fs::read(dir.path().join("weir.db")).unwrap(),
            std::fs::read(dir.path().join("weir.db-wal")).unwrap_or_default(),
        )
    };
    for bytes in [db, wal] {
        assert!(
            !bytes.windows(8).any(|w| w == b"hunter2-"),
            "plaintext secret on disk"
        );
    }
}

#[tokio::test]
async fn shutdown_puts_running_runs_back_and_a_restart_finishes_them() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let (ws, digest) = setup(&s, "restart").await;
    s.deploy(&ws.key, json!({"name": "two", "component": digest, "flow": "two_steps", "parameters": {"label": "step-one", "millis": 5000}})).await;
    let (_, run) = s
        .post("/api/deployments/two/runs", &ws.key, json!({}))
        .await;
    let id = run["id"].as_str().unwrap().to_owned();
    // Once the first task completed, stop the server (grace 0.5 s < the 5 s nap).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, tasks) = s
            .get(&format!("/api/flow-runs/{id}/task-runs"), &ws.key)
            .await;
        if tasks["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["task"] == "side_effect" && t["state"]["type"] == "COMPLETED")
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let key = ws.key.clone();
    s.stop().await;
    let s = TestServer::start(dir.path()).await;
    let (_, before) = s.get(&format!("/api/flow-runs/{id}"), &key).await;
    let names: Vec<&str> = before["state_history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"Rescheduled"), "{names:?}");
    let run = s.wait_final(&key, &id).await;
    assert_eq!(run["state"]["type"], "COMPLETED", "{run}");
    assert_eq!(run["result"], "step-one");
    let (_, logs) = s.get(&format!("/api/flow-runs/{id}/logs"), &key).await;
    let bodies = logs["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["message"] == "side effect step-one")
        .count();
    assert_eq!(bodies, 1, "the completed task ran again: {logs}");
    s.stop().await;
}

#[tokio::test]
async fn the_openapi_document_covers_every_route() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let (status, doc) = send(s.client.get(format!("{}/api/openapi.json", s.url))).await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    let expected = [
        ("/health", "get"),
        ("/metrics", "get"),
        ("/api/workspaces", "post"),
        ("/api/keys", "post"),
        ("/api/keys", "get"),
        ("/api/keys/{id}", "delete"),
        ("/api/components", "post"),
        ("/api/components", "get"),
        ("/api/components/{digest}", "get"),
        ("/api/components/{digest}", "delete"),
        ("/api/deployments", "post"),
        ("/api/deployments", "get"),
        ("/api/deployments/{id}", "get"),
        ("/api/deployments/{id}", "patch"),
        ("/api/deployments/{id}", "delete"),
        ("/api/deployments/{id}/versions", "get"),
        ("/api/deployments/{id}/webhook/rotate", "post"),
        ("/api/deployments/{id}/runs", "post"),
        ("/api/flow-runs", "get"),
        ("/api/flow-runs/{id}", "get"),
        ("/api/flow-runs/{id}/task-runs", "get"),
        ("/api/flow-runs/{id}/logs", "get"),
        ("/api/flow-runs/{id}/artifacts", "get"),
        ("/api/flow-runs/{id}/cancel", "post"),
        ("/api/flow-runs/{id}/retry", "post"),
        ("/api/artifacts", "get"),
        ("/hooks/{token}", "post"),
        ("/api/variables", "get"),
        ("/api/variables/{name}", "get"),
        ("/api/variables/{name}", "put"),
        ("/api/variables/{name}", "delete"),
        ("/api/secrets", "get"),
        ("/api/secrets/{name}", "put"),
        ("/api/secrets/{name}", "delete"),
        ("/api/pools", "post"),
        ("/api/pools", "get"),
        ("/api/pools/{name}", "patch"),
        ("/api/pools/{name}", "delete"),
        ("/api/concurrency-limits", "get"),
        ("/api/concurrency-limits/{tag}", "put"),
        ("/api/concurrency-limits/{tag}", "delete"),
    ];
    for (path, method) in expected {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing from the OpenAPI document"
        );
    }
    assert_eq!(
        send(s.client.get(format!("{}/metrics", s.url))).await.0,
        401
    );
    let (status, metrics) = send(
        s.client
            .get(format!("{}/metrics", s.url))
            .bearer_auth(ADMIN),
    )
    .await;
    assert_eq!(status, 200);
    let text = metrics.as_str().unwrap();
    for name in [
        "weir_queue_depth",
        "weir_instances_in_use",
        "weir_task_run_duration_seconds_bucket",
    ] {
        assert!(text.contains(name), "{name} missing: {text}");
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_http_reaches_only_granted_hosts() {
    // A small HTTP service on loopback for the guest to call.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = axum::Router::new().route("/ping", axum::routing::get(|| async { "pong" }));
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir().unwrap();
    // The operator opens loopback for the test's service (closed by default: see
    // egress.rs).
    let s = TestServer::start_with(dir.path(), |c| {
        c.limits.egress = weir::model::egress::Egress::parse(&["127.0.0.1".into()]).unwrap();
    })
    .await;
    let (ws, digest) = setup(&s, "egress").await;
    let url = format!("http://127.0.0.1:{port}/ping");
    s.deploy(
        &ws.key,
        json!({"name": "granted", "component": digest, "flow": "fetch", "parameters": {"url": url},
        "capabilities": {"allowed_hosts": ["127.0.0.1"]}}),
    )
    .await;
    s.deploy(
        &ws.key,
        json!({"name": "closed", "component": digest, "flow": "fetch", "parameters": {"url": url}}),
    )
    .await;
    s.deploy(&ws.key, json!({"name": "elsewhere", "component": digest, "flow": "fetch", "parameters": {"url": url},
        "capabilities": {"allowed_hosts": ["api.example.com", "*.example.org"]}})).await;
    let result = |name: &'static str| {
        let s = &s;
        let key = ws.key.clone();
        async move {
            let (_, run) = s
                .post(&format!("/api/deployments/{name}/runs"), &key, json!({}))
                .await;
            let run = s.wait_final(&key, run["id"].as_str().unwrap()).await;
            run["result"].as_str().unwrap_or_default().to_owned()
        }
    };
    assert_eq!(result("granted").await, "200 pong");
    for name in ["closed", "elsewhere"] {
        let r = result(name).await;
        assert!(r.contains("not allowed for this run"), "{name}: {r}");
    }
    let (status, p) = s
        .post(
            "/api/deployments",
            &ws.key,
            json!({"name": "bad", "component": digest, "flow": "fetch",
        "capabilities": {"allowed_hosts": ["http://x/y"]}}),
        )
        .await;
    assert_eq!(status, 422, "{p}");
    s.stop().await;
}

#[tokio::test]
async fn a_deployment_keeps_its_versions_and_a_paused_pool_holds_its_runs() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let (ws, basic) = setup(&s, "versions").await;
    let hello = s.upload(&ws.key, "hello").await;
    s.post(
        "/api/pools",
        &ws.key,
        json!({"name": "held", "paused": true}),
    )
    .await;
    s.deploy(&ws.key, json!({"name": "d", "component": basic, "flow": "map_flow", "parameters": {"n": 2}, "pool": "held"})).await;
    let (_, first) = s.post("/api/deployments/d/runs", &ws.key, json!({})).await;
    let first_id = first["id"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(700)).await;
    let (_, held) = s.get(&format!("/api/flow-runs/{first_id}"), &ws.key).await;
    assert_eq!(
        held["state"]["type"], "SCHEDULED",
        "a paused pool runs nothing: {held}"
    );
    let (status, _) = send(
        s.req(reqwest::Method::PATCH, "/api/pools/held", &ws.key)
            .json(&json!({"paused": false})),
    )
    .await;
    assert_eq!(status, 200);
    let run = s.wait_final(&ws.key, &first_id).await;
    assert_eq!(run["result"], 1);
    assert_eq!(run["component_digest"], basic.as_str());

    // A new component version: history kept, and each run records the digest it ran.
    let (status, d) = send(
        s.req(reqwest::Method::PATCH, "/api/deployments/d", &ws.key)
            .json(&json!({"component": hello, "flow": "hello", "parameters": {}})),
    )
    .await;
    assert_eq!(status, 200, "{d}");
    let (_, versions) = s.get("/api/deployments/d/versions", &ws.key).await;
    let digests: Vec<&str> = versions["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["component"].as_str().unwrap())
        .collect();
    assert_eq!(digests, [hello.as_str(), basic.as_str()]);
    let (_, second) = s.post("/api/deployments/d/runs", &ws.key, json!({})).await;
    let run = s.wait_final(&ws.key, second["id"].as_str().unwrap()).await;
    assert_eq!(run["component_digest"], hello.as_str());
    assert_eq!(run["result"], "Hello, world!");
    let (_, old) = s.get(&format!("/api/flow-runs/{first_id}"), &ws.key).await;
    assert_eq!(old["component_digest"], basic.as_str());
    // Paused deployments refuse triggers.
    send(
        s.req(reqwest::Method::PATCH, "/api/deployments/d", &ws.key)
            .json(&json!({"paused": true})),
    )
    .await;
    assert_eq!(
        s.post("/api/deployments/d/runs", &ws.key, json!({}))
            .await
            .0,
        409
    );
    s.stop().await;
}

/// Every id the list gives for `query`, following its cursor.
async fn all_pages(s: &TestServer, key: &str, query: &str) -> Vec<String> {
    let mut ids = vec![];
    let mut cursor = String::new();
    loop {
        let (status, page) = s
            .get(&format!("/api/flow-runs?limit=7&{query}{cursor}"), key)
            .await;
        assert_eq!(status, 200, "{query}: {page}");
        for r in page["items"].as_array().unwrap() {
            ids.push(r["id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => return ids,
        }
    }
}

/// A run as the filters see it: id, name, tags.
type Listed = (String, String, Vec<&'static str>);

#[tokio::test]
async fn tag_and_name_filters_agree_with_a_scan_page_after_page() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let (ws, digest) = setup(&s, "filters").await;
    let (other, other_digest) = setup(&s, "filters-other").await;
    for (w, d) in [(&ws, &digest), (&other, &other_digest)] {
        s.deploy(
            &w.key,
            json!({"name": "m", "component": d, "flow": "map_flow", "parameters": {"n": 0}}),
        )
        .await;
    }
    let mut runs: Vec<Listed> = vec![];
    for i in 0..40 {
        let tags: Vec<&str> = match i % 4 {
            0 => vec!["blue"],
            1 => vec!["blue", "big_%"],
            2 => vec!["red"],
            _ => vec![],
        };
        let (status, run) = s
            .post("/api/deployments/m/runs", &ws.key, json!({"tags": tags}))
            .await;
        assert_eq!(status, 201, "{run}");
        runs.push((
            run["id"].as_str().unwrap().to_owned(),
            run["name"].as_str().unwrap().to_owned(),
            tags,
        ));
        // The other workspace has runs with the same tags and names like these.
        s.post(
            "/api/deployments/m/runs",
            &other.key,
            json!({"tags": ["blue"]}),
        )
        .await;
    }
    for (id, _, _) in &runs {
        s.wait_final(&ws.key, id).await;
    }
    runs.reverse(); // newest first, as the list is
    let expect = |keep: &dyn Fn(&Listed) -> bool| -> Vec<String> {
        runs.iter()
            .filter(|r| keep(r))
            .map(|r| r.0.clone())
            .collect()
    };
    for tag in ["blue", "red", "big_%", "nobody"] {
        let got = all_pages(&s, &ws.key, &format!("tag={}", urlencoding(tag))).await;
        assert_eq!(got, expect(&|r| r.2.contains(&tag)), "tag {tag}");
    }
    // Substrings of real names: long ones (the trigram index), short ones (a scan),
    // in another case, and texts with LIKE's wildcards, which match only themselves.
    let name = runs[5].1.clone();
    let mut texts = vec![
        name.clone(),
        name[1..name.len() - 1].to_owned(),
        name[..2].to_owned(),
        name[2..6].to_uppercase(),
        "%".to_owned(),
        "_".to_owned(),
        "zzzq".to_owned(),
    ];
    texts.push(runs[0].1.split('-').next().unwrap().to_owned());
    for text in &texts {
        let got = all_pages(&s, &ws.key, &format!("name={}", urlencoding(text))).await;
        let lower = text.to_lowercase();
        assert_eq!(
            got,
            expect(&|r| r.1.to_lowercase().contains(&lower)),
            "name contains {text:?}"
        );
        let both = all_pages(&s, &ws.key, &format!("name={}&tag=blue", urlencoding(text))).await;
        assert_eq!(
            both,
            expect(&|r| r.1.to_lowercase().contains(&lower) && r.2.contains(&"blue")),
            "name {text:?} and tag"
        );
    }
    s.stop().await;
}

fn urlencoding(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
