//! `weir server` in a process of its own (the real binary), to kill with SIGKILL or to
//! stop with SIGSTOP; and a witness: an HTTP endpoint that task bodies report to, so
//! tests can count what really ran.

use super::server::{ADMIN, Api};
use axum::extract::{Json, Path as UrlPath, State};
use serde_json::Value;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A server node process.
pub struct Node {
    pub api: Api,
    child: Child,
}

impl std::ops::Deref for Node {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

impl Node {
    /// Starts `weir server` on `dir` (and `db`, else the SQLite file in `dir`) on a free
    /// loopback port, as node `id`, with `extra` arguments; returns once it listens.
    pub async fn start(dir: &Path, db: Option<&str>, id: &str, extra: &[&str]) -> Self {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(format!("node-{id}.log")))
            .expect("node log file");
        // WEIR_TEST_BIN runs the tests against another build (an older one, to see a
        // test fail without its fix).
        let bin =
            std::env::var("WEIR_TEST_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_weir").into());
        let mut cmd = Command::new(bin);
        cmd.arg("server")
            .arg("--data-dir")
            .arg(dir)
            .args(["--addr", "127.0.0.1:0", "--node-id", id])
            // The tests' witness services listen on loopback, which the egress policy
            // closes by default.
            .args(["--egress-allow", "127.0.0.1"])
            .args(extra)
            .env("WEIR_ADMIN_TOKEN", ADMIN)
            .env("RUST_LOG", "weir=info")
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true);
        if let Some(db) = db {
            cmd.arg("--db").arg(db);
        }
        let mut child = cmd.spawn().expect("start weir server");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let url = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await.expect("read the server's output") {
                if let Some(url) = line.strip_prefix("Weir server listening on ") {
                    return url.trim().to_owned();
                }
            }
            panic!("weir server exited before listening (see node-{id}.log)");
        })
        .await
        .expect("weir server listens within a minute");
        // Keep reading, so the server never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self {
            api: Api::new(url),
            child,
        }
    }

    fn pid(&self) -> String {
        self.child.id().expect("running").to_string()
    }

    /// The process's peak resident memory so far, in KiB (`VmHWM`).
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("read /proc/PID/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in /proc/PID/status")
    }

    /// SIGKILL, and waits until the process is gone.
    pub async fn kill(mut self) {
        self.child.start_kill().expect("kill -9");
        let _ = self.child.wait().await;
    }

    /// SIGSTOP: the process freezes (no heartbeats, no writes) until [`Node::resume`].
    pub fn freeze(&self) {
        signal("-STOP", &self.pid());
    }

    /// SIGCONT.
    pub fn thaw(&self) {
        signal("-CONT", &self.pid());
    }
}

fn signal(sig: &str, pid: &str) {
    let status = std::process::Command::new("kill")
        .args([sig, pid])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill {sig} {pid} failed");
}

/// What a task body reported.
#[derive(Debug, Clone)]
pub struct Event {
    pub kind: String,
    pub run: String,
    pub step: u64,
    pub at: chrono::DateTime<chrono::Utc>,
}

/// An HTTP endpoint recording `POST /{kind}` with `{"run": .., "i": ..}` bodies.
#[derive(Clone, Default)]
pub struct Witness {
    events: Arc<Mutex<Vec<Event>>>,
}

impl Witness {
    /// Serves on a loopback port on the current runtime; returns its URL.
    pub async fn start(&self) -> String {
        let app = axum::Router::new()
            .route("/{kind}", axum::routing::post(record))
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    pub fn events(&self) -> Vec<Event> {
        self.events.lock().unwrap().clone()
    }

    /// Waits until `pred` holds for the events so far.
    pub async fn wait_until(&self, what: &str, pred: impl Fn(&[Event]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !pred(&self.events()) {
            assert!(Instant::now() < deadline, "the witness never saw {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

async fn record(
    State(w): State<Witness>,
    UrlPath(kind): UrlPath<String>,
    Json(body): Json<Value>,
) -> &'static str {
    w.events.lock().unwrap().push(Event {
        kind,
        run: body["run"].as_str().unwrap_or_default().to_owned(),
        step: body["i"].as_u64().unwrap_or(u64::MAX),
        at: chrono::Utc::now(),
    });
    "ok"
}
