//! `weir bench startup [N]`: how long a server takes from its process starting to
//! answering `/health`, on a data directory holding N components (1,000 by default),
//! each compiled on disk and deployed, beside the same server on a directory with none,
//! in one run. Then the first run of one of the N through the API, which loads its
//! compiled code from the disk on first use (components are not loaded at start).
//!
//! The N components are the bench component with a custom section naming its number
//! appended (a new digest each), and the compiled code of each is the bench component's
//! own, written under the variant's digest as a server's compile would have left it: so
//! seeding takes seconds, not the hours compiling a thousand uploads would.

use crate::host::Engine;
use crate::model::limits::Limits;
use crate::store::Store;
use anyhow::{Context, bail, ensure};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Starts timed on each data directory (after one untimed start that compiles the
/// built-in plugins into it).
const ROUNDS: usize = 5;

pub async fn run(n: u64, component: &Path) -> anyhow::Result<String> {
    let n = if n == 0 { 1000 } else { n };
    let plugins = component.parent().unwrap_or(Path::new(".")).to_owned();
    let root = std::env::temp_dir().join(format!("weir-bench-startup-{}", uuid::Uuid::now_v7()));
    let result = run_in(n, component, &plugins, &root).await;
    let _ = std::fs::remove_dir_all(&root);
    result
}

async fn run_in(n: u64, component: &Path, plugins: &Path, root: &Path) -> anyhow::Result<String> {
    let bytes = std::fs::read(component).with_context(|| {
        format!(
            "cannot read {} (build it with scripts/build-guests)",
            component.display()
        )
    })?;
    let empty = root.join("empty");
    let full = root.join("full");
    let seeding = Instant::now();
    seed(&empty, &bytes, 0).await?;
    let seeded = seed(&full, &bytes, n).await?;
    let seed_seconds = seeding.elapsed().as_secs_f64();

    let mut out = format!(
        "bench startup: `weir server` from its process starting to answering /health, \
         {ROUNDS} starts each (seeding {n} components took {seed_seconds:.1} s)\n\n\
         | data directory | start to ready p50 / max ms | RSS when ready MiB |\n|---|---|---|\n"
    );
    for (label, dir) in [
        ("no components".to_owned(), &empty),
        (format!("{n} components, compiled on disk, deployed"), &full),
    ] {
        // The first start of a directory compiles the built-in plugins into it.
        let first = start(dir, plugins).await?;
        let first_ms = first.ready_ms;
        first.stop().await;
        let mut ms = Vec::with_capacity(ROUNDS);
        let mut rss = 0;
        for _ in 0..ROUNDS {
            let s = start(dir, plugins).await?;
            ms.push(s.ready_ms);
            rss = rss.max(s.rss_mb());
            s.stop().await;
        }
        ms.sort_by(f64::total_cmp);
        out.push_str(&format!(
            "| {label} | {:.0} / {:.0} | {rss} |\n",
            ms[ms.len() / 2],
            ms[ms.len() - 1]
        ));
        tracing::debug!("first start of {} took {first_ms:.0} ms", dir.display());
    }

    // One of them runs: its compiled code is read from the disk when first used.
    let server = start(&full, plugins).await?;
    let client = reqwest::Client::new();
    let (key, deployment) = &seeded;
    let t = Instant::now();
    let res = client
        .post(format!("{}/api/deployments/{deployment}/runs", server.base))
        .bearer_auth(key)
        .json(&json!({}))
        .send()
        .await?;
    ensure!(res.status().is_success(), "trigger: {}", res.status());
    let run: serde_json::Value = res.json().await?;
    let id = run["id"]
        .as_str()
        .context("the trigger returned no run id")?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let state = loop {
        let run: serde_json::Value = client
            .get(format!("{}/api/flow-runs/{id}", server.base))
            .bearer_auth(key)
            .send()
            .await?
            .json()
            .await?;
        let state = run["state"]["type"].as_str().unwrap_or("").to_owned();
        if matches!(
            state.as_str(),
            "COMPLETED" | "FAILED" | "CRASHED" | "CANCELLED"
        ) || Instant::now() > deadline
        {
            break state;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    let first_run_ms = t.elapsed().as_secs_f64() * 1000.0;
    server.stop().await;
    ensure!(state == "COMPLETED", "the run ended {state:?}");
    out.push_str(&format!(
        "\nThe first run of one of the {n} after a start (its compiled code read from the \
         disk), trigger to completed: {first_run_ms:.1} ms\n"
    ));
    Ok(out)
}

/// A data directory with `n` components, each compiled and deployed in one workspace;
/// returns the workspace's API key and the last deployment's id.
async fn seed(dir: &Path, bytes: &[u8], n: u64) -> anyhow::Result<(String, String)> {
    std::fs::create_dir_all(dir.join("components"))?;
    let compiled = dir.join("compiled");
    // The server's engine configuration, so its compatibility hash names the files.
    let engine = Engine::new(Limits::default(), Some(compiled.clone()))?;
    let store = Store::open_sqlite(&dir.join("weir.db")).await?;
    let (workspace_id, token) = super::bench_workspace(&store).await?;
    if n == 0 {
        return Ok((token, String::new()));
    }
    let loaded = engine.load(bytes).await?;
    let manifest = serde_json::to_value(&loaded.manifest)?;
    let cwasm = cwasm_of(&compiled, &loaded.digest)?;
    let suffix = cwasm
        .file_name()
        .and_then(|f| f.to_str())
        .and_then(|f| f.strip_prefix(&loaded.digest))
        .context("the compiled file is not named by the digest")?
        .to_owned();
    let mut last = String::new();
    for i in 0..n {
        let variant = with_custom_section(bytes, "weir-bench-variant", &i.to_le_bytes());
        let digest = Engine::digest(&variant);
        std::fs::write(
            dir.join("components").join(format!("{digest}.wasm")),
            &variant,
        )?;
        std::fs::copy(&cwasm, compiled.join(format!("{digest}{suffix}")))?;
        store
            .put_component(&digest, variant.len(), &manifest)
            .await?;
        store.link_component(&workspace_id, &digest).await?;
        let deployment =
            super::bench_deployment(&workspace_id, &format!("bench-{i}"), &digest, "ten");
        store.insert_deployment(&deployment).await?;
        last = deployment.id;
    }
    store.close().await;
    Ok((token, last))
}

/// The compiled file of `digest` in the engine's cache directory.
fn cwasm_of(compiled: &Path, digest: &str) -> anyhow::Result<PathBuf> {
    for entry in std::fs::read_dir(compiled)? {
        let path = entry?.path();
        if path
            .file_name()
            .and_then(|f| f.to_str())
            .is_some_and(|f| f.starts_with(digest) && f.ends_with(".cwasm"))
        {
            return Ok(path);
        }
    }
    bail!("no compiled file of {digest} in {}", compiled.display())
}

/// The component with a custom section appended (valid anywhere between sections).
fn with_custom_section(bytes: &[u8], name: &str, payload: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    leb128(&mut body, name.len() as u64);
    body.extend_from_slice(name.as_bytes());
    body.extend_from_slice(payload);
    let mut out = bytes.to_vec();
    out.push(0);
    leb128(&mut out, body.len() as u64);
    out.extend_from_slice(&body);
    out
}

fn leb128(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

struct Started {
    child: tokio::process::Child,
    base: String,
    ready_ms: f64,
}

impl Started {
    fn rss_mb(&self) -> u64 {
        self.child
            .id()
            .map_or(0, |pid| super::rss_mb_of(&pid.to_string()))
    }

    async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// Starts `weir server` on `dir` and waits for `/health` to answer.
async fn start(dir: &Path, plugins: &Path) -> anyhow::Result<Started> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let t = Instant::now();
    let mut child = tokio::process::Command::new(std::env::current_exe()?)
        .arg("server")
        .arg("--data-dir")
        .arg(dir)
        .arg("--addr")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--plugins")
        .arg(plugins)
        .env("WEIR_ADMIN_TOKEN", "bench-admin-token")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("cannot start `weir server`")?;
    let deadline = t + Duration::from_secs(120);
    loop {
        if let Ok(res) = client.get(format!("{base}/health")).send().await
            && res.status().is_success()
        {
            break;
        }
        if let Some(status) = child.try_wait()? {
            bail!("the server exited with {status} before it was ready");
        }
        ensure!(
            Instant::now() < deadline,
            "the server was not ready in 120 s"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(Started {
        child,
        base,
        ready_ms: t.elapsed().as_secs_f64() * 1000.0,
    })
}
