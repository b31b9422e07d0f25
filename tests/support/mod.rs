//! Test support: real components built from the guest crates, a real database and the
//! real engine.
//!
//! The database is SQLite in the test's temporary directory, or, when
//! `WEIR_TEST_DB=postgres`, a fresh PostgreSQL database on the server at
//! `WEIR_TEST_POSTGRES_URL` (default `postgres://weir:weir@127.0.0.1:5432/postgres`).

pub mod node;
pub mod postgres;
pub mod process;
pub mod proxy;
pub mod server;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use weir::host::{Engine, LoadedComponent};
use weir::model::limits::Limits;
use weir::orchestrate::{FlowOutcome, FlowRequest, Orchestrator};
use weir::store::Store;

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("root")
        .to_owned()
}

/// Builds every guest once per test process (a no-op when they are up to date).
pub fn build_guests() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let status = Command::new(root().join("scripts/build-guests"))
            .arg("--quiet")
            .status()
            .expect("run scripts/build-guests");
        assert!(status.success(), "building the guest components failed");
    });
}

/// The path of a built guest component, e.g. `guest("guest_basic")`.
pub fn guest(name: &str) -> PathBuf {
    build_guests();
    let p = root()
        .join("target/wasm32-wasip2/release")
        .join(format!("{name}.wasm"));
    assert!(p.exists(), "{} was not built", p.display());
    p
}

/// Builds the Python guests (`examples/python`, `tests/guests/python`) once per test
/// process with this build's `weir build` (a no-op for those up to date).
pub fn build_python_guests() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let status = Command::new(root().join("scripts/build-python-guests"))
            .env("WEIR_BIN", env!("CARGO_BIN_EXE_weir"))
            .status()
            .expect("run scripts/build-python-guests");
        assert!(
            status.success(),
            "building the Python guest components failed"
        );
    });
}

/// The path of a built Python guest: `python_guest("hello")` (examples/python/hello.py),
/// `python_guest("guest_basic")` (tests/guests/python/basic.py).
pub fn python_guest(name: &str) -> PathBuf {
    build_python_guests();
    let p = root()
        .join("target/wasm32-wasip2/release/python")
        .join(format!("{name}.wasm"));
    assert!(p.exists(), "{} was not built", p.display());
    p
}

/// Builds the JavaScript guests (`examples/js`, `tests/guests/js`) once per test process
/// with this build's `weir build` (a no-op for those up to date).
pub fn build_js_guests() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let status = Command::new(root().join("scripts/build-js-guests"))
            .env("WEIR_BIN", env!("CARGO_BIN_EXE_weir"))
            .status()
            .expect("run scripts/build-js-guests");
        assert!(
            status.success(),
            "building the JavaScript guest components failed"
        );
    });
}

/// The path of a built JavaScript guest: `js_guest("hello")` (examples/js/hello.js),
/// `js_guest("guest_basic")` (tests/guests/js/basic.js).
pub fn js_guest(name: &str) -> PathBuf {
    build_js_guests();
    let p = root()
        .join("target/wasm32-wasip2/release/js")
        .join(format!("{name}.wasm"));
    assert!(p.exists(), "{} was not built", p.display());
    p
}

/// Where the tests keep compiled Python components between test processes: compiling
/// one takes seconds, so each test must not do it again in its own directory.
pub fn shared_compile_cache() -> PathBuf {
    root().join("target/wasm32-wasip2/release/python/compiled")
}

/// Limits for tests: small enough that adversarial guests fail fast.
pub fn test_limits() -> Limits {
    Limits {
        memory_bytes: 64 << 20,
        cpu_time: std::time::Duration::from_secs(2),
        max_result_bytes: 1 << 20,
        max_instances: 200,
        // As the server does: uploads compile in a worker process.
        compile_worker: Some(weir::model::limits::CompileWorker {
            exe: env!("CARGO_BIN_EXE_weir").into(),
            memory_bytes: 2 << 30,
            time: std::time::Duration::from_secs(120),
        }),
        ..Limits::default()
    }
}

/// Whether the tests run against PostgreSQL.
pub fn postgres() -> bool {
    std::env::var("WEIR_TEST_DB").is_ok_and(|v| v == "postgres")
}

/// The URL of the PostgreSQL server the tests create their databases on.
pub fn postgres_admin_url() -> String {
    std::env::var("WEIR_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://weir:weir@127.0.0.1:5432/postgres".into())
}

/// The database of the test whose files live in `dir`: `None` for SQLite (the
/// default file in `dir`), else the URL of a PostgreSQL database made for that
/// directory (the same one every time, so a restarted server finds its data).
pub async fn database_url(dir: &Path) -> Option<String> {
    if !postgres() {
        return None;
    }
    let marker = dir.join("postgres-url");
    if let Ok(url) = std::fs::read_to_string(&marker) {
        return Some(url);
    }
    let admin = postgres_admin_url();
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
        .await
        .expect("connect to the test PostgreSQL server (WEIR_TEST_POSTGRES_URL)");
    let name = format!("weir_t_{}", uuid::Uuid::now_v7().simple());
    static MINE: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    static SWEPT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    MINE.lock().unwrap().push(name.clone());
    if !SWEPT.swap(true, std::sync::atomic::Ordering::SeqCst) {
        // The first test of the process drops what earlier test processes left.
        let old: Vec<String> =
            sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'weir\\_t\\_%'")
                .fetch_all(&mut conn)
                .await
                .expect("list test databases");
        for db in old {
            if !MINE.lock().unwrap().contains(&db) {
                let drop = format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)");
                let _ = sqlx::query(sqlx::AssertSqlSafe(drop))
                    .execute(&mut conn)
                    .await;
            }
        }
    }
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create a test database");
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
    let url = format!("{base}/{name}");
    std::fs::write(&marker, &url).expect("remember the test database");
    Some(url)
}

/// Opens the test database of `dir`.
pub async fn open_store(dir: &Path) -> Store {
    match database_url(dir).await {
        Some(url) => Store::open_url(&url).await,
        None => Store::open_sqlite(&dir.join("weir.db")).await,
    }
    .expect("store")
}

/// An orchestrator over a fresh database in its own temporary directory.
pub struct Harness {
    pub orch: Arc<Orchestrator>,
    /// Kept so the directory lives as long as the harness.
    pub _dir: tempfile::TempDir,
}

impl Harness {
    pub async fn new() -> Self {
        Self::with_limits(test_limits()).await
    }

    pub async fn with_limits(limits: Limits) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = Engine::new(limits, Some(dir.path().join("compiled"))).expect("engine");
        let store = open_store(dir.path()).await;
        Self {
            orch: Orchestrator::new(engine, store),
            _dir: dir,
        }
    }

    /// A harness whose engine shares compiled code with other tests (for the large
    /// Python components).
    pub async fn shared(limits: Limits) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = Engine::new(limits, Some(shared_compile_cache())).expect("engine");
        let store = open_store(dir.path()).await;
        Self {
            orch: Orchestrator::new(engine, store),
            _dir: dir,
        }
    }

    /// Loads a built Python guest (see [`python_guest`]).
    pub async fn load_python(&self, name: &str) -> Arc<LoadedComponent> {
        let bytes = std::fs::read(python_guest(name)).expect("read guest");
        self.orch.engine().load(&bytes).await.expect("load guest")
    }

    /// Loads a built JavaScript guest (see [`js_guest`]).
    pub async fn load_js(&self, name: &str) -> Arc<LoadedComponent> {
        let bytes = std::fs::read(js_guest(name)).expect("read guest");
        self.orch.engine().load(&bytes).await.expect("load guest")
    }

    pub fn store(&self) -> &Store {
        self.orch.store()
    }

    pub async fn load(&self, name: &str) -> Arc<LoadedComponent> {
        let bytes = std::fs::read(guest(name)).expect("read guest");
        self.orch.engine().load(&bytes).await.expect("load guest")
    }

    pub async fn run(
        &self,
        component: &Arc<LoadedComponent>,
        flow: &str,
        parameters: serde_json::Value,
    ) -> FlowOutcome {
        self.orch
            .run_flow(FlowRequest::new(component.clone(), flow, parameters))
            .await
            .expect("flow run created")
    }

    /// Log messages of a flow run.
    pub async fn logs(&self, flow_run_id: &str) -> Vec<String> {
        self.store()
            .logs(flow_run_id)
            .await
            .expect("logs")
            .into_iter()
            .map(|l| l.message)
            .collect()
    }
}

/// Takes the only slot of the global limit `name` (of the runs outside a server) as
/// another holder would, `"holder"`, once the runs that held it have given it back.
pub async fn hold_limit_slot(store: &Store, name: &str) {
    let limits = [(name.to_owned(), 1)];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !store
        .take_concurrency_slots("", &limits, "holder", "elsewhere", 1)
        .await
        .expect("take a slot")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the slot of {name} was never given back"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
