//! The web UI through the real server on a loopback port: sign-in and sessions,
//! workspace isolation, escaping of hostile content, CSRF, the generated run and resume
//! forms with the server's field errors, the live stream of a run page.

use crate::support::server::{ADMIN, TestServer, Ws};
use reqwest::header;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// A form body, `application/x-www-form-urlencoded`.
fn encode(form: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                b' ' => "+".to_owned(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    form.iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// A browser-like client: keeps the session cookie, follows no redirects.
struct Browser {
    base: String,
    client: reqwest::Client,
    cookie: Option<String>,
}

struct Page {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Page {
    fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The value of the first hidden `csrf` input.
    fn csrf(&self) -> String {
        let at = self
            .body
            .find(r#"name="csrf" value=""#)
            .expect("a csrf field");
        let rest = &self.body[at + r#"name="csrf" value=""#.len()..];
        rest[..rest.find('"').unwrap()].to_owned()
    }
}

impl Browser {
    fn new(s: &TestServer) -> Self {
        Self {
            base: s.url.clone(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookie: None,
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Page {
        let req = match &self.cookie {
            Some(c) => req.header(header::COOKIE, c),
            None => req,
        };
        let res = req.send().await.expect("request sent");
        Page {
            status: res.status().as_u16(),
            headers: res.headers().clone(),
            body: res.text().await.unwrap_or_default(),
        }
    }

    async fn get(&self, path: &str) -> Page {
        self.send(self.client.get(format!("{}{path}", self.base)))
            .await
    }

    /// A form post from this site, as a browser sends it.
    async fn post(&self, path: &str, form: &[(&str, &str)]) -> Page {
        self.send(
            self.client
                .post(format!("{}{path}", self.base))
                .header("sec-fetch-site", "same-origin")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(encode(form)),
        )
        .await
    }

    async fn sign_in(&mut self, key: &str) -> Page {
        let page = self
            .post("/signin", &[("key", key), ("next", "/runs")])
            .await;
        if let Some(c) = page.headers.get(header::SET_COOKIE) {
            let c = c.to_str().unwrap();
            self.cookie = Some(c.split(';').next().unwrap().to_owned());
        }
        page
    }
}

async fn signed_in(s: &TestServer, ws: &Ws) -> Browser {
    let mut b = Browser::new(s);
    let page = b.sign_in(&ws.key).await;
    assert_eq!(page.status, 303, "{}", page.body);
    b
}

const HOSTILE: &str = "<script>alert('x')</script><img src=x onerror=alert(1)>";

async fn deploy_basic(s: &TestServer, ws: &Ws, name: &str, flow: &str, params: Value) {
    let digest = s.upload(&ws.key, crate::BASIC).await;
    s.deploy(
        &ws.key,
        json!({"name": name, "component": digest, "flow": flow, "parameters": params}),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_opens_an_http_only_strict_session_that_revoking_the_key_ends() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let ws = s.workspace("ui-signin").await;
    let mut b = Browser::new(&s);

    let page = b.get("/runs?state=FAILED").await;
    assert_eq!(page.status, 303);
    assert_eq!(page.location(), "/signin?next=/runs%3Fstate%3DFAILED");
    let form = b.get("/signin").await;
    assert_eq!(form.status, 200);
    assert!(form.body.contains(r#"type="password""#), "{}", form.body);

    let bad = b.sign_in("weir_000000000000_nope").await;
    assert_eq!(bad.status, 401, "{}", bad.body);
    assert!(bad.headers.get(header::SET_COOKIE).is_none());

    let ok = b.sign_in(&ws.key).await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    assert_eq!(ok.location(), "/runs");
    let cookie = ok.headers[header::SET_COOKIE].to_str().unwrap().to_owned();
    for part in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(part), "{cookie}");
    }
    assert!(!cookie.contains(&ws.key), "the key is not the cookie");

    let home = b.get("/").await;
    assert_eq!(home.status, 200, "{}", home.body);
    assert!(home.body.contains("ui-signin"), "{}", home.body);
    let csp = home.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(home.headers[header::X_FRAME_OPTIONS], "DENY");

    // Revoking the key the session was opened with ends the session (the workspace
    // keeps another key: its last one cannot be revoked).
    let (_, keys) = s.get("/api/keys", &ws.key).await;
    let id = keys["items"][0]["id"].as_str().unwrap().to_owned();
    let (status, _) = s.post("/api/keys", &ws.key, json!({"name": "spare"})).await;
    assert_eq!(status, 201);
    let (status, body) = crate::support::server::send(s.req(
        reqwest::Method::DELETE,
        &format!("/api/keys/{id}"),
        &ws.key,
    ))
    .await;
    assert!(status == 204 || status == 200, "{status} {body}");
    let after = b.get("/").await;
    assert_eq!(after.status, 303, "a revoked key's session is over");

    // Signing out ends a session too.
    let ws2 = s.workspace("ui-signout").await;
    let mut b = signed_in(&s, &ws2).await;
    let home = b.get("/").await;
    let out = b.post("/signout", &[("csrf", &home.csrf())]).await;
    assert_eq!(out.status, 303);
    assert_eq!(b.get("/").await.status, 303);
    b.cookie = None;

    // The admin token signs in and picks a workspace.
    let page = b.sign_in(ADMIN).await;
    assert_eq!(page.status, 303);
    assert_eq!(page.location(), "/signin?pick=1");
    let (_, created) = s
        .post("/api/workspaces", ADMIN, json!({"name": "ui-admin"}))
        .await;
    let id = created["workspace"]["id"].as_str().unwrap().to_owned();
    assert_eq!(b.get("/").await.status, 303, "no workspace picked yet");
    let pick = b.get("/signin?pick=1").await;
    assert!(pick.body.contains("ui-admin"), "{}", pick.body);
    let done = b
        .post("/workspace", &[("workspace", &id), ("csrf", &pick.csrf())])
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let home = b.get("/").await;
    assert!(home.body.contains("ui-admin (admin)"), "{}", home.body);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_are_workspace_scoped_and_escape_hostile_content() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let ws = s.workspace("ui-owner").await;
    let other = s.workspace("ui-other").await;
    deploy_basic(&s, &ws, "content", "hostile_content", json!({})).await;
    let (status, run) = s
        .post(
            "/api/deployments/content/runs",
            &ws.key,
            json!({"parameters": {"text": HOSTILE, "url": "javascript:alert(3)"}}),
        )
        .await;
    assert_eq!(status, 201, "{run}");
    let id = run["id"].as_str().unwrap().to_owned();
    let done = s.wait_final(&ws.key, &id).await;
    assert_eq!(done["state"]["type"], "COMPLETED", "{done}");

    let b = signed_in(&s, &ws).await;
    for path in [
        format!("/runs/{id}"),
        "/runs".to_owned(),
        "/".to_owned(),
        "/deployments".to_owned(),
        "/deployments/content".to_owned(),
        "/deployments/content/run".to_owned(),
        "/components".to_owned(),
        "/plugins".to_owned(),
        "/automations".to_owned(),
        "/settings".to_owned(),
        "/task-runs".to_owned(),
        format!("/task-runs?flow_run={id}"),
        "/artifacts".to_owned(),
        "/artifacts/hostile-report".to_owned(),
    ] {
        let page = b.get(&path).await;
        assert_eq!(page.status, 200, "{path}: {}", page.body);
        // Nothing the Content-Security-Policy would block: no inline styles or scripts.
        assert!(!page.body.contains(" style=\""), "{path}: an inline style");
        assert_eq!(
            page.body.matches("<script").count(),
            page.body.matches("<script src=\"/ui/assets/").count(),
            "{path}: an inline script"
        );
        // The hostile text itself, unescaped, or any attribute it could smuggle in.
        for bad in [
            "<script>alert",
            "<img src=x onerror",
            "onerror=\"",
            "href=\"javascript:",
        ] {
            assert!(
                !page.body.contains(bad),
                "{path} carries {bad}: {}",
                page.body
            );
        }
    }
    let run_page = b.get(&format!("/runs/{id}")).await.body;
    // The content is there, as text: the name, the log line, the artifacts, the result.
    assert!(run_page.contains("&lt;script&gt;"), "{run_page}");
    assert!(
        run_page.contains("<table>") || run_page.contains("<table"),
        "{run_page}"
    );
    assert!(
        run_page.contains("(javascript:alert(3))"),
        "an unsafe link is shown as text"
    );
    // The runs list rows carry no parameters.
    let list = b.get("/runs").await.body;
    assert!(!list.contains("javascript:alert(3)"), "{list}");

    // Another workspace's run and deployment are 404s, page by page.
    let intruder = signed_in(&s, &other).await;
    for path in [
        format!("/runs/{id}"),
        format!("/runs/{id}/live"),
        format!("/runs/{id}/logs.txt"),
        "/deployments/content".to_owned(),
        "/deployments/content/run".to_owned(),
        "/artifacts/hostile-report".to_owned(),
    ] {
        let page = intruder.get(&path).await;
        assert_eq!(page.status, 404, "{path}: {}", page.body);
    }
    let home = intruder.get("/runs").await;
    assert!(!home.body.contains(&id), "{}", home.body);
    let tasks = intruder.get("/task-runs").await;
    assert!(!tasks.body.contains(&id), "{}", tasks.body);
    let csrf = home.csrf();
    let cancel = intruder
        .post(&format!("/runs/{id}/retry"), &[("csrf", &csrf)])
        .await;
    assert_eq!(cancel.status, 404);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_refuse_requests_without_the_token_or_from_another_site() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let ws = s.workspace("ui-csrf").await;
    deploy_basic(&s, &ws, "sleepy", "plain_pause", json!({"timeout": 60})).await;
    let (_, run) = s
        .post("/api/deployments/sleepy/runs", &ws.key, json!({}))
        .await;
    let id = run["id"].as_str().unwrap().to_owned();
    s.wait_for(&ws.key, &id, |r| r["state"]["type"] == "PAUSED")
        .await;
    let b = signed_in(&s, &ws).await;
    let page = b.get(&format!("/runs/{id}")).await;
    assert!(page.body.contains("Cancel"), "{}", page.body);
    let csrf = page.csrf();

    let none = b.post(&format!("/runs/{id}/cancel"), &[]).await;
    assert_eq!(none.status, 403, "{}", none.body);
    let wrong = b
        .post(&format!("/runs/{id}/cancel"), &[("csrf", "guessed")])
        .await;
    assert_eq!(wrong.status, 403);
    let cross = b
        .send(
            b.client
                .post(format!("{}/runs/{id}/cancel", b.base))
                .header("sec-fetch-site", "cross-site")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(encode(&[("csrf", csrf.as_str())])),
        )
        .await;
    assert_eq!(cross.status, 403, "{}", cross.body);
    let other_origin = b
        .send(
            b.client
                .post(format!("{}/runs/{id}/cancel", b.base))
                .header(header::ORIGIN, "https://evil.example")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(encode(&[("csrf", csrf.as_str())])),
        )
        .await;
    assert_eq!(other_origin.status, 403);
    let (_, still) = s.get(&format!("/api/flow-runs/{id}"), &ws.key).await;
    assert_eq!(
        still["state"]["type"], "PAUSED",
        "nothing was cancelled: {still}"
    );

    let ok = b
        .post(&format!("/runs/{id}/cancel"), &[("csrf", &csrf)])
        .await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    let done = s.wait_final(&ws.key, &id).await;
    assert_eq!(done["state"]["type"], "CANCELLED", "{done}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_run_form_follows_the_schema_shows_field_errors_and_starts_a_run() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let ws = s.workspace("ui-form").await;
    deploy_basic(&s, &ws, "typed", "typed", json!({})).await;
    let b = signed_in(&s, &ws).await;
    let form = b.get("/deployments/typed/run").await;
    assert_eq!(form.status, 200, "{}", form.body);
    assert!(form.body.contains(r#"name="p:n""#), "{}", form.body);
    assert!(form.body.contains(r#"type="checkbox""#), "{}", form.body);
    let csrf = form.csrf();

    let bad = b
        .post(
            "/deployments/typed/run",
            &[("csrf", &csrf), ("p:n", "three"), ("p:name", "x")],
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert!(bad.body.contains("is not a whole number"), "{}", bad.body);
    let (_, runs) = s.get("/api/flow-runs", &ws.key).await;
    assert!(
        runs["items"].as_array().unwrap().is_empty(),
        "no run: {runs}"
    );

    let missing = b
        .post(
            "/deployments/typed/run",
            &[("csrf", &csrf), ("p:ratio", "0.5")],
        )
        .await;
    assert_eq!(missing.status, 422, "{}", missing.body);
    assert!(missing.body.contains("required"), "{}", missing.body);

    let ok = b
        .post(
            "/deployments/typed/run",
            &[
                ("csrf", &csrf),
                ("p:n", "3"),
                ("p:ratio", "0.5"),
                ("p:name", "Ada"),
                ("p:flag", "false"),
                ("p:flag", "true"),
            ],
        )
        .await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    let id = ok.location().strip_prefix("/runs/").unwrap().to_owned();
    let done = s.wait_final(&ws.key, &id).await;
    assert_eq!(done["state"]["type"], "COMPLETED", "{done}");
    assert_eq!(done["parameters"]["n"], 3, "{done}");
    assert_eq!(done["parameters"]["flag"], true, "{done}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_run_resumes_through_its_generated_form() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let ws = s.workspace("ui-resume").await;
    deploy_basic(
        &s,
        &ws,
        "approve",
        "approval",
        json!({"rows": 3, "timeout": 60}),
    )
    .await;
    let (_, run) = s
        .post("/api/deployments/approve/runs", &ws.key, json!({}))
        .await;
    let id = run["id"].as_str().unwrap().to_owned();
    s.wait_for(&ws.key, &id, |r| r["state"]["type"] == "PAUSED")
        .await;
    let b = signed_in(&s, &ws).await;
    let page = b.get(&format!("/runs/{id}")).await;
    assert!(page.body.contains(r#"name="p:reviewer""#), "{}", page.body);
    assert!(page.body.contains("Approve the load"), "{}", page.body);
    let csrf = page.csrf();
    let bad = b
        .post(
            &format!("/runs/{id}/resume"),
            &[("csrf", &csrf), ("p:approved", "true")],
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert!(
        bad.body.contains(r#"<div class="error">required</div>"#),
        "the error is beside its field: {}",
        bad.body
    );
    let ok = b
        .post(
            &format!("/runs/{id}/resume"),
            &[
                ("csrf", &csrf),
                ("p:approved", "false"),
                ("p:approved", "true"),
                ("p:reviewer", "Ada"),
            ],
        )
        .await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    let done = s.wait_final(&ws.key, &id).await;
    assert_eq!(done["state"]["type"], "COMPLETED", "{done}");
    assert_eq!(done["result"], "published 9 rows by Ada", "{done}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_page_streams_state_and_logs_until_the_run_ends() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let ws = s.workspace("ui-live").await;
    deploy_basic(&s, &ws, "obs", "observability", json!({})).await;
    let (_, run) = s
        .post("/api/deployments/obs/runs", &ws.key, json!({}))
        .await;
    let id = run["id"].as_str().unwrap().to_owned();
    let b = signed_in(&s, &ws).await;
    let res = b
        .client
        .get(format!("{}/runs/{id}/live?after=0", b.base))
        .header(header::COOKIE, b.cookie.clone().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut text = String::new();
    let mut res = res;
    while !text.contains("event: end") {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "the stream never ended: {text}");
        match tokio::time::timeout(left, res.chunk()).await {
            Ok(Ok(Some(c))) => text.push_str(&String::from_utf8_lossy(&c)),
            Ok(Ok(None)) => break,
            other => panic!("stream failed: {other:?}: {text}"),
        }
    }
    assert!(text.contains("event: end"), "{text}");
    assert!(
        text.contains("event: log") && text.contains("critical line"),
        "{text}"
    );
    assert!(
        text.contains("event: head") || text.contains("Completed"),
        "{text}"
    );
    let page = b.get(&format!("/runs/{id}")).await.body;
    assert!(
        page.contains("<h1>Report</h1>"),
        "markdown rendered: {page}"
    );
    assert!(page.contains("<progress"), "{page}");
    let logs = b.get(&format!("/runs/{id}/logs.txt")).await;
    assert!(
        logs.body.contains("CRITICAL") && logs.body.contains("critical line"),
        "{}",
        logs.body
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_change_through_the_apis_checks_and_secrets_are_never_shown() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let ws = s.workspace("ui-settings").await;
    let digest = s.upload(&ws.key, crate::BASIC).await;
    let b = signed_in(&s, &ws).await;
    let page = b.get("/settings").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let csrf = page.csrf();

    let bad = b
        .post(
            "/settings/variables",
            &[("csrf", &csrf), ("name", "greeting"), ("value", "not json")],
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert!(bad.body.contains("must be JSON"), "{}", bad.body);
    let bad_name = b
        .post(
            "/settings/variables",
            &[("csrf", &csrf), ("name", "no spaces"), ("value", "1")],
        )
        .await;
    assert_eq!(
        bad_name.status, 422,
        "the API's own check: {}",
        bad_name.body
    );
    let ok = b
        .post(
            "/settings/variables",
            &[("csrf", &csrf), ("name", "greeting"), ("value", "\"hi\"")],
        )
        .await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    let (_, v) = s.get("/api/variables/greeting", &ws.key).await;
    assert_eq!(v["value"], "hi", "{v}");

    let secret = "s3cr3t-value-never-shown";
    let ok = b
        .post(
            "/settings/secrets",
            &[("csrf", &csrf), ("name", "token"), ("value", secret)],
        )
        .await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    let page = b.get("/settings").await;
    assert!(page.body.contains("token"), "{}", page.body);
    assert!(!page.body.contains(secret), "a secret is never shown");

    let ok = b
        .post(
            "/settings/limits",
            &[("csrf", &csrf), ("tag", "db"), ("limit", "2")],
        )
        .await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    let ok = b
        .post(
            "/settings/pools/default",
            &[("csrf", &csrf), ("limit", "3"), ("paused", "1")],
        )
        .await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    let (_, pools) = s.get("/api/pools", &ws.key).await;
    assert_eq!(pools["items"][0]["concurrency_limit"], 3, "{pools}");
    assert_eq!(pools["items"][0]["paused"], true, "{pools}");
    let (_, limits) = s.get("/api/concurrency-limits", &ws.key).await;
    assert!(limits.to_string().contains("\"db\""), "{limits}");

    let created = b
        .post("/settings/keys", &[("csrf", &csrf), ("name", "ci")])
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let at = created.body.find("<code>weir_").expect("the new key, once");
    let key = &created.body[at + 6..];
    let key = key[..key.find('<').unwrap()].to_owned();
    let (status, _) = s.get("/api/variables", &key).await;
    assert_eq!(status, 200, "the new key works");
    assert!(!b.get("/settings").await.body.contains(&key), "shown once");

    let comps = b.get("/components").await;
    assert!(comps.body.contains(&digest[..16]), "{}", comps.body);
    let comp = b.get(&format!("/components/{digest}")).await;
    assert!(comp.body.contains("hostile-content"), "{}", comp.body);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_and_its_schedules_pause_and_resume_from_its_page() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let ws = s.workspace("ui-pauses").await;
    deploy_basic(&s, &ws, "hourly", "plain_pause", json!({"timeout": 1})).await;
    let (status, sched) = s
        .post(
            "/api/deployments/hourly/schedules",
            &ws.key,
            json!({"cron": "0 * * * *", "timezone": "Europe/Berlin"}),
        )
        .await;
    assert_eq!(status, 201, "{sched}");
    let sid = sched["id"].as_str().unwrap().to_owned();
    let b = signed_in(&s, &ws).await;
    let page = b.get("/deployments/hourly").await;
    assert!(
        page.body.contains("cron 0 * * * * (Europe/Berlin)"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("<time"),
        "next fire times: {}",
        page.body
    );
    let csrf = page.csrf();

    let paused = b
        .post(
            &format!("/deployments/hourly/schedules/{sid}/pause"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(paused.status, 303, "{}", paused.body);
    let (_, got) = s.get(&format!("/api/schedules/{sid}"), &ws.key).await;
    assert_eq!(got["active"], false, "{got}");
    let resumed = b
        .post(
            &format!("/deployments/hourly/schedules/{sid}/resume"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(resumed.status, 303);
    let (_, got) = s.get(&format!("/api/schedules/{sid}"), &ws.key).await;
    assert_eq!(got["active"], true, "{got}");

    let out = b
        .post("/deployments/hourly/pause", &[("csrf", &csrf)])
        .await;
    assert_eq!(out.status, 303, "{}", out.body);
    let (_, d) = s.get("/api/deployments/hourly", &ws.key).await;
    assert_eq!(d["paused"], true, "{d}");
    let form = b.get("/deployments/hourly/run").await;
    assert!(
        form.body.contains("This deployment is paused"),
        "{}",
        form.body
    );
    let back = b
        .post("/deployments/hourly/resume", &[("csrf", &csrf)])
        .await;
    assert_eq!(back.status, 303);
    let (_, d) = s.get("/api/deployments/hourly", &ws.key).await;
    assert_eq!(d["paused"], false, "{d}");
    // Another workspace's schedule id under this deployment is a 404.
    let other = s.workspace("ui-pauses-other").await;
    let intruder = signed_in(&s, &other).await;
    let csrf = intruder.get("/").await.csrf();
    let refused = intruder
        .post(
            &format!("/deployments/hourly/schedules/{sid}/pause"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(refused.status, 404);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_runs_tab_dependency_graph_and_artifact_keys() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let ws = s.workspace("ui-tasks").await;
    let other = s.workspace("ui-tasks-other").await;
    deploy_basic(&s, &ws, "order", "ordering_flow", json!({})).await;
    deploy_basic(&s, &ws, "obs", "observability", json!({})).await;
    deploy_basic(&s, &ws, "wide", "map_flow", json!({"n": 600})).await;
    let mut ids = vec![];
    for d in ["order", "obs", "obs", "wide"] {
        let (status, run) = s
            .post(&format!("/api/deployments/{d}/runs"), &ws.key, json!({}))
            .await;
        assert_eq!(status, 201, "{run}");
        let id = run["id"].as_str().unwrap().to_owned();
        let done = s.wait_final(&ws.key, &id).await;
        assert_eq!(done["state"]["type"], "COMPLETED", "{done}");
        ids.push(id);
    }
    let order = &ids[0];

    // `wait_for` is recorded and drawn: the second task run's edge from the first.
    let (_, tasks) = s
        .get(&format!("/api/flow-runs/{order}/task-runs"), &ws.key)
        .await;
    let items = tasks["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{tasks}");
    assert_eq!(items[1]["wait_for"], json!([items[0]["id"]]), "{tasks}");
    assert_eq!(items[0]["wait_for"], json!([]), "{tasks}");
    let b = signed_in(&s, &ws).await;
    let page = b.get(&format!("/runs/{order}")).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Dependency graph"), "{}", page.body);
    assert_eq!(
        page.body.matches("class=\"edge\"").count(),
        1,
        "{}",
        page.body
    );

    // The task-runs tab: the workspace's task runs, filtered in the URL.
    let tab = b.get(&format!("/task-runs?flow_run={order}")).await;
    assert_eq!(tab.status, 200);
    assert_eq!(tab.body.matches("<td>slow</td>").count(), 2, "{}", tab.body);
    let failed = b
        .get(&format!("/task-runs?flow_run={order}&state=FAILED"))
        .await;
    assert!(!failed.body.contains("<td>slow</td>"), "{}", failed.body);
    let by_task = b.get("/task-runs?task=square").await;
    assert_eq!(
        by_task.body.matches("<td>square</td>").count(),
        50,
        "{}",
        by_task.body
    );
    assert!(
        by_task.body.contains("Older"),
        "keyset pages: {}",
        by_task.body
    );
    let (_, api) = s
        .get(
            &format!("/api/task-runs?flow_run={order}&state=COMPLETED"),
            &ws.key,
        )
        .await;
    assert_eq!(api["items"].as_array().unwrap().len(), 2, "{api}");
    let intruder = signed_in(&s, &other).await;
    let theirs = intruder.get("/task-runs").await;
    assert!(!theirs.body.contains("<td>slow</td>"), "{}", theirs.body);
    let (_, none) = s.get("/api/task-runs", &other.key).await;
    assert_eq!(none["items"], json!([]), "{none}");

    // A run of 600 task runs is drawn task by task and lists the first 200.
    let wide = b.get(&format!("/runs/{}", ids[3])).await;
    assert_eq!(wide.status, 200);
    assert!(wide.body.contains("square ×600"), "{}", wide.body);
    assert!(wide.body.contains("Task runs (600)"), "{}", wide.body);
    assert!(
        wide.body
            .contains(&format!("/task-runs?flow_run={}", ids[3])),
        "a link to all of them"
    );
    assert!(wide.body.len() < 150_000, "{} bytes", wide.body.len());

    // Artifact keys with their versions; another workspace cannot see them.
    let keys = b.get("/artifacts").await;
    assert_eq!(keys.status, 200);
    assert!(keys.body.contains("obs-report"), "{}", keys.body);
    let report = b.get("/artifacts/obs-report").await;
    assert_eq!(report.status, 200, "{}", report.body);
    assert!(report.body.contains("<h1>Report</h1>"), "{}", report.body);
    assert_eq!(
        report.body.matches(&format!("/runs/{}", ids[1])).count()
            + report.body.matches(&format!("/runs/{}", ids[2])).count(),
        2,
        "both versions with their runs: {}",
        report.body
    );
    assert_eq!(intruder.get("/artifacts/obs-report").await.status, 404);
    assert!(!intruder.get("/artifacts").await.body.contains("obs-report"));
    s.stop().await;
}

/// A multipart body with the given text fields and one file.
fn multipart(fields: &[(&str, &str)], file: (&str, &[u8])) -> (String, Vec<u8>) {
    let boundary = "weir-test-boundary-7d1f";
    let mut body = Vec::new();
    for (k, v) in fields {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{}\"; filename=\"c.wasm\"\r\nContent-Type: application/wasm\r\n\r\n",
            file.0
        )
        .as_bytes(),
    );
    body.extend_from_slice(file.1);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_uploads_from_its_page_and_a_bad_file_shows_why() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let ws = s.workspace("ui-upload").await;
    let b = signed_in(&s, &ws).await;
    let list = b.get("/components").await;
    assert!(
        list.body.contains("enctype=\"multipart/form-data\""),
        "{}",
        list.body
    );
    let csrf = list.csrf();
    let upload = |fields: Vec<(&'static str, String)>, bytes: Vec<u8>, site: &'static str| {
        let b = &b;
        async move {
            let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let (ct, body) = multipart(&fields, ("component", &bytes));
            b.send(
                b.client
                    .post(format!("{}/components", b.base))
                    .header("sec-fetch-site", site)
                    .header(header::CONTENT_TYPE, ct)
                    .body(body),
            )
            .await
        }
    };
    let wasm = std::fs::read(crate::support::guest(crate::BASIC)).unwrap();

    // Without the token, or from another site: refused, nothing stored.
    let no_token = upload(vec![], wasm.clone(), "same-origin").await;
    assert_eq!(no_token.status, 403, "{}", no_token.body);
    let cross = upload(vec![("csrf", csrf.clone())], wasm.clone(), "cross-site").await;
    assert_eq!(cross.status, 403, "{}", cross.body);
    let (_, listed) = s.get("/api/components", &ws.key).await;
    assert_eq!(listed["items"], json!([]), "{listed}");

    // Not a component: the API's problem on the page.
    let bad = upload(
        vec![("csrf", csrf.clone())],
        b"\0asm not really".to_vec(),
        "same-origin",
    )
    .await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert!(bad.body.contains("Not a Weir component"), "{}", bad.body);

    let ok = upload(vec![("csrf", csrf.clone())], wasm, "same-origin").await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    let at = ok.location().to_owned();
    assert!(at.starts_with("/components/"), "{at}");
    let page = b.get(&at).await;
    assert!(page.body.contains("ordering-flow"), "{}", page.body);
    let (_, listed) = s.get("/api/components", &ws.key).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1, "{listed}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_streams_per_session_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let ws = s.workspace("ui-live-bound").await;
    deploy_basic(&s, &ws, "long", "zero_timeout", json!({"millis": 60_000})).await;
    let (_, run) = s
        .post("/api/deployments/long/runs", &ws.key, json!({}))
        .await;
    let id = run["id"].as_str().unwrap().to_owned();
    s.wait_for(&ws.key, &id, |r| r["state"]["type"] == "RUNNING")
        .await;
    let b = signed_in(&s, &ws).await;
    let open = || async {
        b.client
            .get(format!("{}/runs/{id}/live?after=0", b.base))
            .header(header::COOKIE, b.cookie.clone().unwrap())
            .send()
            .await
            .unwrap()
    };
    let mut streams = vec![];
    for _ in 0..16 {
        let res = open().await;
        assert_eq!(res.status(), 200);
        streams.push(res);
    }
    let refused = open().await;
    assert_eq!(refused.status(), 503);
    assert!(refused.headers().contains_key(header::RETRY_AFTER));
    // Another session is not held back by this one.
    let other = signed_in(&s, &ws).await;
    let theirs = other
        .client
        .get(format!("{}/runs/{id}/live?after=0", other.base))
        .header(header::COOKIE, other.cookie.clone().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(theirs.status(), 200);
    // A stream closed by its browser gives its place back.
    drop(streams.pop());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let res = open().await;
        if res.status() == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the closed stream's place never came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, _) = s
        .post(&format!("/api/flow-runs/{id}/cancel"), &ws.key, json!({}))
        .await;
    assert_eq!(status, 202);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_page_shows_its_transactions_and_which_task_runs_belong_to_them() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let ws = s.workspace("ui-txn").await;
    let digest = s.upload(&ws.key, "guest_transactions").await;
    s.deploy(
        &ws.key,
        json!({"name": "nested", "component": digest, "flow": "nested",
               "parameters": {"fail_inner": true}}),
    )
    .await;
    let (status, run) = s
        .post("/api/deployments/nested/runs", &ws.key, json!({}))
        .await;
    assert_eq!(status, 201, "{run}");
    let id = run["id"].as_str().unwrap().to_owned();
    let done = s.wait_final(&ws.key, &id).await;
    assert_eq!(done["state"]["type"], "COMPLETED", "{done}");
    let b = signed_in(&s, &ws).await;
    let page = b.get(&format!("/runs/{id}")).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Transactions (2)"), "{}", page.body);
    assert!(page.body.contains("<th>Transaction</th>"), "{}", page.body);
    // Both rolled back (the inner one took the outer along); the three writes name theirs.
    assert_eq!(
        page.body.matches("rolled back</span>").count(),
        2 + 3,
        "{}",
        page.body
    );
    assert!(page.body.contains("transaction 1") && page.body.contains("transaction 2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plugins_pages_list_a_workspaces_plugins_and_their_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let ws = s.workspace("ui-plugins").await;
    let other = s.workspace("ui-plugins-other").await;
    let digest = s.upload(&ws.key, "guest_toolkit").await;
    let (status, body) = s
        .post(
            "/api/plugins",
            &ws.key,
            json!({"name": "toolkit", "component": digest, "description": "<b>tools</b>"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let b = signed_in(&s, &ws).await;
    let list = b.get("/plugins").await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert!(
        list.body.contains("href=\"/plugins/toolkit\""),
        "{}",
        list.body
    );
    assert!(list.body.contains("greet"), "{}", list.body);
    let page = b.get("/plugins/toolkit").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Greets someone"), "{}", page.body);
    assert!(
        page.body.contains("&lt;b&gt;tools&lt;/b&gt;"),
        "escaped: {}",
        page.body
    );
    assert_eq!(b.get("/plugins/nope").await.status, 404);
    let theirs = signed_in(&s, &other).await;
    assert_eq!(theirs.get("/plugins/toolkit").await.status, 404);
    assert!(!theirs.get("/plugins").await.body.contains("toolkit"));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_automations_pages_show_runs_and_switch_an_automation_off() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let ws = s.workspace("ui-automations").await;
    let other = s.workspace("ui-automations-other").await;
    deploy_basic(&s, &ws, "load", "names_flow", json!({})).await;
    let (status, a) = s
        .post(
            "/api/automations",
            &ws.key,
            json!({"name": "on-signup", "description": "<b>signups</b>",
                   "trigger": {"type": "event"}, "webhook": {"enabled": true},
                   "actions": [{"type": "run-deployment", "deployment": "load",
                                "parameters": {"who": "{{ event.body.user }}"}}]}),
        )
        .await;
    assert_eq!(status, 201, "{a}");
    let (status, _) = s
        .post(
            "/api/automations/on-signup/events",
            &ws.key,
            json!({"user": "<i>Ada</i>"}),
        )
        .await;
    assert_eq!(status, 202);
    let deadline = Instant::now() + Duration::from_secs(30);
    let b = signed_in(&s, &ws).await;
    let page = loop {
        let page = b.get("/automations/on-signup").await;
        assert_eq!(page.status, 200, "{}", page.body);
        if page.body.contains("Completed") {
            break page;
        }
        assert!(Instant::now() < deadline, "{}", page.body);
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        page.body.contains("run-deployment</span> done"),
        "{}",
        page.body
    );
    assert!(page.body.contains("/hooks/automations/"), "{}", page.body);
    assert!(
        page.body.contains("&lt;b&gt;signups&lt;/b&gt;") && page.body.contains("&lt;i&gt;Ada"),
        "escaped: {}",
        page.body
    );
    let (status, _) = s
        .post(
            "/api/automations",
            &ws.key,
            json!({"name": "quiet", "trigger": {"type": "event"}, "actions": [{"type": "do-nothing"}]}),
        )
        .await;
    assert_eq!(status, 201);
    let list = b.get("/automations").await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert!(
        list.body.contains("href=\"/automations/on-signup\"")
            && list.body.contains("an event is posted"),
        "{}",
        list.body
    );
    // Each with its latest run: on-signup's completed one, none for quiet.
    let rows: Vec<&str> = list.body.split("<tr>").collect();
    let row = |name: &str| {
        rows.iter()
            .find(|r| r.contains(&format!("href=\"/automations/{name}\"")))
            .unwrap_or_else(|| panic!("no row for {name}: {}", list.body))
            .to_string()
    };
    assert!(row("on-signup").contains("Completed"), "{}", list.body);
    assert!(row("quiet").contains("never"), "{}", list.body);

    // Switched off from its page (with the form's token only).
    let csrf = page.csrf();
    let refused = b.post("/automations/on-signup/disable", &[]).await;
    assert_eq!(refused.status, 403);
    let done = b
        .post("/automations/on-signup/disable", &[("csrf", &csrf)])
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let (_, a) = s.get("/api/automations/on-signup", &ws.key).await;
    assert_eq!(a["enabled"], false, "{a}");
    assert!(
        b.get("/automations/on-signup")
            .await
            .body
            .contains("Enable")
    );

    assert_eq!(b.get("/automations/nope").await.status, 404);
    let theirs = signed_in(&s, &other).await;
    assert_eq!(theirs.get("/automations/on-signup").await.status, 404);
    assert!(!theirs.get("/automations").await.body.contains("on-signup"));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_is_shown_and_set_from_the_settings_and_deployment_pages() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let ws = s.workspace("ui-retention").await;
    deploy_basic(&s, &ws, "plain", "echo_flow", json!({"x": 1})).await;
    let b = signed_in(&s, &ws).await;
    let page = b.get("/settings").await;
    assert!(
        page.body.contains("finished runs are kept until deleted"),
        "{}",
        page.body
    );
    let csrf = page.csrf();
    let bad = b
        .post(
            "/settings/retention",
            &[("csrf", &csrf), ("days", "0"), ("runs", "")],
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert!(bad.body.contains("must be from 1 to 36500"), "{}", bad.body);
    let bad = b
        .post(
            "/settings/retention",
            &[("csrf", &csrf), ("days", "a week"), ("runs", "")],
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    // Without the form's token nothing changes.
    let forged = b
        .post("/settings/retention", &[("csrf", "forged"), ("days", "1")])
        .await;
    assert_ne!(forged.status, 303, "{}", forged.body);
    let ok = b
        .post(
            "/settings/retention",
            &[("csrf", &csrf), ("days", "14"), ("runs", "500")],
        )
        .await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    let (_, report) = s.get("/api/retention", &ws.key).await;
    assert_eq!(
        report["policy"],
        json!({"days": 14, "runs": 500}),
        "{report}"
    );
    let page = b.get("/settings").await;
    assert!(
        page.body
            .contains("finished runs are kept 14 days, at most the newest 500"),
        "{}",
        page.body
    );
    let d = b.get("/deployments/plain").await;
    assert!(d.body.contains("the workspace's"), "{}", d.body);
    let (status, _) = s
        .patch(
            "/api/deployments/plain",
            &ws.key,
            json!({"retention": {"runs": 3}}),
        )
        .await;
    assert_eq!(status, 200);
    let d = b.get("/deployments/plain").await;
    assert!(
        d.body.contains("the newest 3 finished runs are kept"),
        "{}",
        d.body
    );
    let page = b.get("/settings").await;
    assert!(page.body.contains("retention-deployments"), "{}", page.body);
    s.stop().await;
}
