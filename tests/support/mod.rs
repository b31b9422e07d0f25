//! Test support: real components built from the guest crates, a real SQLite database
//! in a temporary directory, and the real engine.

pub mod server;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use weir::engine::{Engine, LoadedComponent};
use weir::limits::Limits;
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

/// Limits for tests: small enough that adversarial guests fail fast.
pub fn test_limits() -> Limits {
    Limits {
        memory_bytes: 64 << 20,
        cpu_time: std::time::Duration::from_secs(2),
        max_result_bytes: 1 << 20,
        max_instances: 200,
        ..Limits::default()
    }
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
        let store = Store::open_sqlite(&dir.path().join("weir.db"))
            .await
            .expect("store");
        Self {
            orch: Orchestrator::new(engine, store),
            _dir: dir,
        }
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
