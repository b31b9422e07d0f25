//! Loading components: compilations run in the blocking pool, a bounded number at once,
//! so the API keeps answering while one compiles; the components kept in memory are
//! bounded, and one evicted is read back from the compiled code on disk when used.

use crate::support::server::{TestServer, send};
use crate::support::{Harness, guest, test_limits};
use crate::{BASIC, state_of};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use weir::engine::CompileStats;
use weir::host::Engine;
use weir::model::limits::Limits;

/// `bytes` with a custom section appended: the same component under another digest,
/// which the engine compiles afresh.
fn variant(bytes: &[u8], n: u32) -> Vec<u8> {
    fn leb128(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    let name = b"weir-test-variant";
    let mut payload = Vec::new();
    leb128(name.len(), &mut payload);
    payload.extend_from_slice(name);
    payload.extend_from_slice(&n.to_le_bytes());
    let mut out = bytes.to_vec();
    out.push(0);
    leb128(payload.len(), &mut out);
    out.extend(payload);
    out
}

fn basic() -> Vec<u8> {
    std::fs::read(guest(BASIC)).unwrap()
}

/// Polls the engine's compilations until `pred` holds.
async fn until_compiles(engine: &Engine, what: &str, pred: impl Fn(&CompileStats) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let stats = engine.compile_stats();
        if pred(&stats) {
            return;
        }
        assert!(Instant::now() < deadline, "never {what}: {stats:?}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// One async worker serves the API: a compilation holding it would hold every request
/// until it ends. The health check must come back while the upload still compiles.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_answers_while_an_upload_compiles() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start_on(dir.path(), Some(1), |_| {}).await;
    let ws = s.workspace("compile").await;
    let request = s
        .req(reqwest::Method::POST, "/api/components", &ws.key)
        .header("content-type", "application/wasm")
        .body(variant(&basic(), 1));
    let upload = tokio::spawn(send(request));
    until_compiles(&s.engine, "compiling", |c| c.running == 1).await;
    let (status, health) = s.get("/health", "").await;
    let compiling = s.engine.compile_stats().running == 1 && !upload.is_finished();
    assert_eq!(status, 200, "{health}");
    assert!(
        compiling,
        "the health check was answered only once the compilation had ended"
    );
    let (status, body) = upload.await.unwrap();
    assert_eq!(status, 201, "{body}");
    assert_eq!(s.engine.compile_stats().compiled, 1);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compilations_beyond_the_bound_wait_their_turn() {
    let h = Harness::with_limits(Limits {
        max_concurrent_compiles: 1,
        ..test_limits()
    })
    .await;
    let engine = h.orch.engine().clone();
    let base = basic();
    let load = |n| {
        let (engine, bytes) = (engine.clone(), variant(&base, n));
        tokio::spawn(async move { engine.load(&bytes).await.map(|c| c.digest.clone()) })
    };
    let first = load(1);
    until_compiles(&engine, "compiling", |c| c.running == 1).await;
    let more = [load(2), load(3)];
    until_compiles(&engine, "a compilation waiting", |c| {
        assert!(c.running <= 1, "two compile at once: {c:?}");
        c.waiting >= 1
    })
    .await;
    let mut digests = vec![first.await.unwrap().expect("loads")];
    for l in more {
        digests.push(l.await.unwrap().expect("loads"));
    }
    digests.dedup();
    assert_eq!(digests.len(), 3, "three components");
    let stats = engine.compile_stats();
    assert_eq!(
        (stats.peak, stats.compiled, stats.running, stats.waiting),
        (1, 3, 0, 0),
        "one at a time, all compiled: {stats:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_least_recently_used_component_is_evicted_and_reloaded_from_disk() {
    let h = Harness::with_limits(Limits {
        max_loaded_components: 2,
        ..test_limits()
    })
    .await;
    let engine = h.orch.engine().clone();
    let base = basic();
    let (a, b, c) = (variant(&base, 1), variant(&base, 2), variant(&base, 3));
    let la = engine.load(&a).await.unwrap();
    let lb = engine.load(&b).await.unwrap();
    assert!(!la.from_cache && !lb.from_cache);
    assert!(engine.loaded(&la.digest).is_some(), "a is used: b is older");
    let lc = engine.load(&c).await.unwrap();
    assert!(engine.loaded(&lb.digest).is_none(), "b was evicted");
    assert!(engine.loaded(&la.digest).is_some() && engine.loaded(&lc.digest).is_some());
    assert_eq!(engine.loaded_size().0, 2);

    // Whoever holds the evicted one keeps it.
    let out = h.run(&lb, "map_flow", json!({"n": 2})).await;
    assert_eq!(state_of(&out), "COMPLETED/Completed");
    // Used again, it is read back from the compiled code on disk, not compiled.
    let compiled = engine.compile_stats().compiled;
    let lb2 = engine.load(&b).await.unwrap();
    assert!(lb2.from_cache, "reloaded from the disk cache");
    assert!(!Arc::ptr_eq(&lb, &lb2));
    assert_eq!(engine.compile_stats().compiled, compiled);
    assert!(engine.loaded(&la.digest).is_none(), "a was the oldest now");
    let out = h.run(&lb2, "map_flow", json!({"n": 2})).await;
    assert_eq!(state_of(&out), "COMPLETED/Completed");

    // A bound in bytes too: here nothing but the newest fits.
    let h = Harness::with_limits(Limits {
        max_loaded_component_bytes: 1,
        ..test_limits()
    })
    .await;
    let engine = h.orch.engine();
    engine.load(&a).await.unwrap();
    let lb = engine.load(&b).await.unwrap();
    let (count, bytes) = engine.loaded_size();
    assert_eq!(count, 1);
    assert!(bytes >= lb.size, "the compiled code is counted: {bytes}");
}

/// Through the server: with room for one component, runs of two deployments take turns
/// and each reload reads the compiled code from disk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_of_evicted_components_reload_them() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start_with(dir.path(), |c| c.limits.max_loaded_components = 1).await;
    let ws = s.workspace("evict").await;
    let base = basic();
    for (name, n) in [("a", 1), ("b", 2)] {
        let (status, body) = send(
            s.req(reqwest::Method::POST, "/api/components", &ws.key)
                .header("content-type", "application/wasm")
                .body(variant(&base, n)),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        s.deploy(
            &ws.key,
            json!({"name": name, "component": body["digest"], "flow": "map_flow",
                   "parameters": {"n": 2}}),
        )
        .await;
    }
    for name in ["a", "b", "a", "b"] {
        let (status, run) = s
            .post(&format!("/api/deployments/{name}/runs"), &ws.key, json!({}))
            .await;
        assert_eq!(status, 201, "{run}");
        let run = s.wait_final(&ws.key, run["id"].as_str().unwrap()).await;
        assert_eq!(run["state"]["type"], "COMPLETED", "{run}");
    }
    assert_eq!(s.engine.loaded_size().0, 1);
    assert_eq!(
        s.engine.compile_stats().compiled,
        2,
        "each compiled once, then read back from disk"
    );
    s.stop().await;
}
