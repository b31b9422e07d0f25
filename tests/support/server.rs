//! A real Weir server on a loopback port, and a client for it.

use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use weir::host::Engine;
use weir::schedule::Scheduler;
use weir::server::{Server, ServerConfig};

pub const ADMIN: &str = "test-admin-token";

/// A client of a Weir server's API.
pub struct Api {
    pub url: String,
    pub client: reqwest::Client,
}

pub struct TestServer {
    pub api: Api,
    /// The server's scheduler and runtime, to tick it by hand.
    pub scheduler: Arc<Scheduler>,
    /// The server's engine, to watch its compilations and component cache.
    pub engine: Arc<Engine>,
    rt: tokio::runtime::Handle,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<std::thread::JoinHandle<anyhow::Result<()>>>,
}

type Ready = (String, Arc<Scheduler>, Arc<Engine>, tokio::runtime::Handle);

/// A workspace and its key.
pub struct Ws {
    pub key: String,
}

impl TestServer {
    pub async fn start(dir: &Path) -> Self {
        Self::start_with(dir, |_| {}).await
    }

    /// Starts the server on its own runtime (as `weir server` runs), so that guests
    /// keeping its workers busy never stall the test's client.
    pub async fn start_with(dir: &Path, tweak: impl FnOnce(&mut ServerConfig)) -> Self {
        Self::start_on(dir, None, tweak).await
    }

    /// [`TestServer::start_with`] on a runtime with `workers` async worker threads
    /// (default: Weir's runtime, one per core).
    pub async fn start_on(
        dir: &Path,
        workers: Option<usize>,
        tweak: impl FnOnce(&mut ServerConfig),
    ) -> Self {
        let mut config = ServerConfig::new(dir.to_owned());
        config.admin_token = Some(ADMIN.into());
        config.limits = super::test_limits();
        config.grace = Duration::from_millis(500);
        config.db = super::database_url(dir).await;
        tweak(&mut config);
        let (tx, rx) = oneshot::channel::<()>();
        let (ready_tx, ready_rx) = oneshot::channel::<Ready>();
        let thread = std::thread::spawn(move || -> anyhow::Result<()> {
            let rt = match workers {
                None => weir::runtime()?,
                Some(n) => tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(n)
                    .enable_all()
                    .event_interval(4)
                    .build()?,
            };
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
                let url = format!("http://{}", listener.local_addr()?);
                let server = Server::start(config).await?;
                let _ = ready_tx.send((
                    url,
                    server.scheduler.clone(),
                    server.executor.engine().clone(),
                    tokio::runtime::Handle::current(),
                ));
                server
                    .serve(listener, async {
                        let _ = rx.await;
                    })
                    .await
            })
        });
        let (url, scheduler, engine, rt) = ready_rx.await.expect("the server starts");
        Self {
            api: Api::new(url),
            scheduler,
            engine,
            rt,
            stop: Some(tx),
            handle: Some(thread),
        }
    }

    /// One scheduler pass on the server's runtime; returns the runs it created.
    pub async fn tick(&self) -> usize {
        let s = self.scheduler.clone();
        self.rt
            .spawn(async move { s.tick().await })
            .await
            .unwrap()
            .expect("tick")
    }

    /// Shuts down gracefully and waits until it has.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            tokio::task::spawn_blocking(move || h.join())
                .await
                .unwrap()
                .expect("the server thread ends")
                .expect("the server stops cleanly");
        }
    }
}

impl std::ops::Deref for TestServer {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

impl Api {
    /// A gauge or counter of the server's `/metrics` (admin token).
    pub async fn metric(&self, name: &str) -> f64 {
        let text = self
            .req(reqwest::Method::GET, "/metrics", ADMIN)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no metric {name} in {text}"))
    }

    pub fn new(url: String) -> Self {
        weir::install_crypto_provider();
        Self {
            url,
            client: reqwest::Client::new(),
        }
    }

    pub fn req(&self, method: reqwest::Method, path: &str, key: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(key)
    }

    pub async fn get(&self, path: &str, key: &str) -> (u16, Value) {
        send(self.req(reqwest::Method::GET, path, key)).await
    }

    pub async fn post(&self, path: &str, key: &str, body: Value) -> (u16, Value) {
        send(self.req(reqwest::Method::POST, path, key).json(&body)).await
    }

    pub async fn patch(&self, path: &str, key: &str, body: Value) -> (u16, Value) {
        send(self.req(reqwest::Method::PATCH, path, key).json(&body)).await
    }

    pub async fn put(&self, path: &str, key: &str, body: Value) -> (u16, Value) {
        send(self.req(reqwest::Method::PUT, path, key).json(&body)).await
    }

    pub async fn workspace(&self, name: &str) -> Ws {
        let (status, body) = self
            .post("/api/workspaces", ADMIN, json!({"name": name}))
            .await;
        assert_eq!(status, 201, "{body}");
        assert!(body["workspace"]["id"].is_string(), "{body}");
        Ws {
            key: body["key"]["secret"].as_str().unwrap().to_owned(),
        }
    }

    /// Uploads a built guest; returns its digest.
    pub async fn upload(&self, key: &str, guest: &str) -> String {
        self.upload_file(key, &super::guest(guest)).await
    }

    /// Uploads the component at `path` (a Python or JavaScript guest); returns its digest.
    pub async fn upload_file(&self, key: &str, path: &std::path::Path) -> String {
        let bytes = std::fs::read(path).unwrap();
        let (status, body) = send(
            self.req(reqwest::Method::POST, "/api/components", key)
                .header("content-type", "application/wasm")
                .body(bytes),
        )
        .await;
        assert!(status == 201 || status == 200, "{status} {body}");
        body["digest"].as_str().unwrap().to_owned()
    }

    pub async fn deploy(&self, key: &str, spec: Value) -> Value {
        let (status, body) = self.post("/api/deployments", key, spec).await;
        assert_eq!(status, 201, "{body}");
        body
    }

    /// The status of a DELETE.
    pub async fn delete(&self, path: &str, key: &str) -> u16 {
        self.req(reqwest::Method::DELETE, path, key)
            .send()
            .await
            .expect("request")
            .status()
            .as_u16()
    }

    /// Starts a deployment of `flow` of the component at `path` (a Python or JavaScript
    /// guest's `delayed` flow) and checks the background run it starts with `delay()`.
    pub async fn check_delay(&self, workspace: &str, path: &std::path::Path) {
        let ws = self.workspace(workspace).await;
        let digest = self.upload_file(&ws.key, path).await;
        self.deploy(
            &ws.key,
            json!({"name": "delayed", "component": digest, "flow": "delayed",
                   "parameters": {"contents": "four"}}),
        )
        .await;
        let parent = self.trigger(&ws.key, "delayed").await;
        let done = self
            .wait_final_within(&ws.key, &parent, Duration::from_secs(120))
            .await;
        assert_eq!(done["state"]["type"], "COMPLETED", "{done}");
        let id = done["result"]
            .as_str()
            .expect("the background run's id")
            .to_owned();
        let bg = self
            .wait_final_within(&ws.key, &id, Duration::from_secs(120))
            .await;
        assert_eq!(bg["state"]["type"], "COMPLETED", "{bg}");
        assert_eq!(bg["flow"], "task/write_side_effect");
        assert_eq!(bg["result"], 4);
        assert_eq!(bg["parameters"], json!({"contents": "four"}));
    }

    /// Triggers a run of a deployment (201 expected); returns its id.
    pub async fn trigger(&self, key: &str, deployment: &str) -> String {
        let (status, run) = self
            .post(
                &format!("/api/deployments/{deployment}/runs"),
                key,
                json!({}),
            )
            .await;
        assert_eq!(status, 201, "{run}");
        run["id"].as_str().unwrap().to_owned()
    }

    /// Polls a run until its state is final.
    pub async fn wait_final(&self, key: &str, run_id: &str) -> Value {
        self.wait_final_within(key, run_id, Duration::from_secs(30))
            .await
    }

    /// Polls a run until its state is final, failing past `limit`.
    pub async fn wait_final_within(&self, key: &str, run_id: &str, limit: Duration) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let (status, run) = self.get(&format!("/api/flow-runs/{run_id}"), key).await;
            assert_eq!(status, 200, "{run}");
            let t = run["state"]["type"].as_str().unwrap_or_default();
            if matches!(t, "COMPLETED" | "FAILED" | "CANCELLED" | "CRASHED") {
                return run;
            }
            assert!(Instant::now() < deadline, "run {run_id} is still {t}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Polls until `pred` holds for the run.
    pub async fn wait_for(&self, key: &str, run_id: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (_, run) = self.get(&format!("/api/flow-runs/{run_id}"), key).await;
            if pred(&run) {
                return run;
            }
            assert!(
                Instant::now() < deadline,
                "run {run_id} never got there: {run}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

pub async fn send(req: reqwest::RequestBuilder) -> (u16, Value) {
    let res = req.send().await.expect("request sent");
    let status = res.status().as_u16();
    let text = res.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}
