//! The web UI in a real browser: Debian's Chromium, headless, driven through chromedriver
//! (fantoccini). One journey, the way a user goes: sign in, run the hello deployment from
//! its generated form and watch the page turn Completed without reloading, see log lines
//! arrive live, see markdown and table artifacts rendered, resume a paused run through its
//! form (a bad input shows the field's error first), cancel a running run, and filter the
//! runs list by state through the URL. Each main page is saved as a screenshot under
//! `target/ui-screenshots/`.
//!
//! Without chromedriver the test says so and passes on a developer's machine; in CI
//! (`CI=true`) a missing browser is a failure.

use crate::support::server::{TestServer, Ws};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Driver {
    child: Child,
    port: u16,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| PathBuf::from(d).join(name))
        .find(|p| p.exists())
}

/// chromedriver on a free loopback port, or `None` (with the reason) when it is not
/// installed on a developer's machine.
async fn driver() -> Option<Driver> {
    let (Some(chromedriver), Some(_)) = (find("chromedriver"), find("chromium")) else {
        let why =
            "chromedriver or chromium is not installed (apt-get install chromium chromium-driver)";
        assert!(
            std::env::var("CI").map(|v| v != "true").unwrap_or(true),
            "CI must run the browser tests: {why}"
        );
        eprintln!("skipped: {why}");
        return None;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let child = Command::new(chromedriver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let deadline = Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "chromedriver did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Some(Driver {
        child,
        port,
        _profile: tempfile::tempdir().unwrap(),
    })
}

async fn browser(d: &Driver) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert("browserName".into(), json!("chrome"));
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": find("chromium").unwrap(),
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-quic", "--no-first-run", "--window-size=1400,1000",
                format!("--user-data-dir={}", d._profile.path().display()),
            ],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", d.port))
        .await
        .expect("a browser session")
}

fn shots() -> PathBuf {
    let dir = crate::support::root().join("target/ui-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn screenshot(c: &Client, name: &str) {
    let png = c.screenshot().await.expect("screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    std::fs::write(shots().join(format!("{name}.png")), png).unwrap();
}

/// Waits until the text of the first element matching `css` satisfies `pred`.
async fn until_text(c: &Client, css: &str, what: &str, pred: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = c
            .execute(
                "const e = document.querySelector(arguments[0]); return e ? e.textContent : null;",
                vec![json!(css)],
            )
            .await
            .unwrap_or(Value::Null);
        if let Some(t) = text.as_str()
            && pred(t)
        {
            return t.to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {css} never matched; it reads {text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn fill(c: &Client, css: &str, text: &str) {
    let e = c.find(Locator::Css(css)).await.expect(css);
    e.clear().await.unwrap();
    e.send_keys(text).await.unwrap();
}

async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .expect(css)
        .click()
        .await
        .unwrap();
}

/// A mark the page keeps until it is reloaded or left.
async fn mark(c: &Client) {
    c.execute("window.__weirMark = 1;", vec![]).await.unwrap();
}

async fn still_marked(c: &Client) -> bool {
    c.execute("return window.__weirMark === 1;", vec![])
        .await
        .unwrap()
        .as_bool()
        .unwrap_or(false)
}

async fn deploy(s: &TestServer, ws: &Ws, guest: &str, name: &str, flow: &str, params: Value) {
    let digest = s.upload(&ws.key, guest).await;
    s.deploy(
        &ws.key,
        json!({"name": name, "component": digest, "flow": flow, "parameters": params}),
    )
    .await;
}

fn run_id(path: &str) -> String {
    path.strip_prefix("/runs/").expect("a run page").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_runs_watches_resumes_cancels_and_filters_in_a_real_browser() {
    let Some(d) = driver().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let ws = s.workspace("browser").await;
    deploy(&s, &ws, "hello", "hello", "hello", json!({})).await;
    deploy(&s, &ws, crate::BASIC, "report", "observability", json!({})).await;
    deploy(
        &s,
        &ws,
        crate::BASIC,
        "approve",
        "approval",
        json!({"rows": 2, "timeout": 120}),
    )
    .await;
    deploy(
        &s,
        &ws,
        crate::BASIC,
        "wait",
        "plain_pause",
        json!({"timeout": 120}),
    )
    .await;
    let c = browser(&d).await;

    // Sign in.
    c.goto(&format!("{}/", s.url)).await.unwrap();
    until_text(&c, "h1", "the sign-in page", |t| t.contains("Sign in")).await;
    screenshot(&c, "signin").await;
    fill(&c, "#key", &ws.key).await;
    click(&c, "button[type=submit]").await;
    until_text(&c, "h1", "the dashboard", |t| t == "Dashboard").await;

    // The hello deployment's generated form; run it and watch it complete live.
    c.goto(&format!("{}/deployments/hello", s.url))
        .await
        .unwrap();
    until_text(&c, "h1", "the deployment page", |t| t.contains("hello")).await;
    screenshot(&c, "deployment").await;
    click(&c, ".actions a.button").await;
    until_text(&c, "h1", "the run form", |t| t.contains("Run hello")).await;
    fill(&c, "#f-name", "Ada").await;
    screenshot(&c, "run-form").await;
    click(&c, "#run-form button[type=submit]").await;
    until_text(&c, "#run-head h1", "the run page", |t| !t.is_empty()).await;
    mark(&c).await;
    until_text(&c, "#run-head .badge", "the run completing", |t| {
        t == "Completed"
    })
    .await;
    until_text(&c, "#log-lines", "the greeting in the logs", |t| {
        t.contains("Hello, Ada!")
    })
    .await;
    assert!(still_marked(&c).await, "the page updated without a reload");
    let hello_run = run_id(c.current_url().await.unwrap().path());
    let (_, r) = s.get(&format!("/api/flow-runs/{hello_run}"), &ws.key).await;
    assert_eq!(r["state"]["type"], "COMPLETED", "{r}");
    assert_eq!(r["parameters"]["name"], "Ada", "{r}");
    screenshot(&c, "run").await;

    // Log lines arriving while the page is open, and rendered artifacts.
    let (_, run) = s
        .post("/api/deployments/report/runs", &ws.key, json!({"scheduled_at": (chrono::Utc::now() + chrono::Duration::seconds(2)).to_rfc3339()}))
        .await;
    let report = run["id"].as_str().unwrap().to_owned();
    c.goto(&format!("{}/runs/{report}", s.url)).await.unwrap();
    mark(&c).await;
    until_text(&c, "#log-lines", "live log lines", |t| {
        t.contains("critical line")
    })
    .await;
    until_text(&c, "#run-artifacts .md h1", "the markdown artifact", |t| {
        t == "Report"
    })
    .await;
    until_text(&c, "#run-artifacts table td", "the table artifact", |t| {
        t == "1"
    })
    .await;
    assert!(still_marked(&c).await, "the lines arrived without a reload");
    screenshot(&c, "run-artifacts").await;

    // Resume a paused run through its form: a missing field is shown first.
    let (_, run) = s
        .post("/api/deployments/approve/runs", &ws.key, json!({}))
        .await;
    let paused = run["id"].as_str().unwrap().to_owned();
    s.wait_for(&ws.key, &paused, |r| r["state"]["type"] == "PAUSED")
        .await;
    c.goto(&format!("{}/runs/{paused}", s.url)).await.unwrap();
    until_text(&c, "#resume h2", "the resume form", |t| {
        t.contains("Paused")
    })
    .await;
    click(&c, "#resume button[type=submit]").await;
    until_text(&c, "#resume .error", "the field error", |t| {
        t.contains("required")
    })
    .await;
    screenshot(&c, "resume-error").await;
    fill(&c, "#f-reviewer", "Grace").await;
    click(&c, "#f-approved").await;
    click(&c, "#resume button[type=submit]").await;
    until_text(&c, "#run-head .badge", "the resumed run completing", |t| {
        t == "Completed"
    })
    .await;
    let (_, r) = s.get(&format!("/api/flow-runs/{paused}"), &ws.key).await;
    assert_eq!(r["result"], "published 4 rows by Grace", "{r}");

    // Cancel a running (paused) run from its page.
    let (_, run) = s
        .post("/api/deployments/wait/runs", &ws.key, json!({}))
        .await;
    let waiting = run["id"].as_str().unwrap().to_owned();
    s.wait_for(&ws.key, &waiting, |r| r["state"]["type"] == "PAUSED")
        .await;
    c.goto(&format!("{}/runs/{waiting}", s.url)).await.unwrap();
    click(&c, "#run-head button.danger").await;
    until_text(&c, "#run-head .badge", "the run cancelled", |t| {
        t == "Cancelled"
    })
    .await;

    // Filter the runs list by state through the URL.
    c.goto(&format!("{}/runs?state=CANCELLED", s.url))
        .await
        .unwrap();
    let rows = until_text(&c, "#runs tbody", "the filtered list", |t| !t.is_empty()).await;
    assert!(rows.contains("Cancelled"), "{rows}");
    let names = c
        .execute(
            "return [...document.querySelectorAll('#runs tbody .badge')].map(b => b.textContent);",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(names, json!(["Cancelled"]), "only the cancelled run");
    screenshot(&c, "runs").await;
    c.goto(&format!("{}/", s.url)).await.unwrap();
    until_text(&c, "h1", "the dashboard", |t| t == "Dashboard").await;
    screenshot(&c, "dashboard").await;
    c.goto(&format!("{}/task-runs", s.url)).await.unwrap();
    until_text(&c, "nav.tabs a.on", "the task-runs tab", |t| {
        t == "Task runs"
    })
    .await;
    screenshot(&c, "task-runs").await;
    c.goto(&format!("{}/artifacts", s.url)).await.unwrap();
    until_text(&c, "h1", "the artifacts page", |t| t == "Artifacts").await;
    screenshot(&c, "artifacts").await;
    c.goto(&format!("{}/components", s.url)).await.unwrap();
    until_text(&c, "h1", "the components page", |t| t == "Components").await;
    screenshot(&c, "components").await;

    c.close().await.unwrap();
    s.stop().await;
}
