//! Tenant isolation: what a hostile component can make the host hold or compute on its
//! behalf is bounded, and a neighbour tenant's runs are served meanwhile.

use crate::BASIC;
use crate::support::server::{TestServer, send};
use serde_json::json;
use std::time::{Duration, Instant};

const SCHEMA_BOMB: &str = "guest_schema_bomb";

/// A neighbour's one-task runs, triggered one after another: the time each took from
/// trigger to its final state.
async fn neighbour_runs(s: &TestServer, key: &str, n: usize) -> Vec<Duration> {
    let mut took = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let (status, run) = s
            .post(
                "/api/deployments/neighbour/runs",
                key,
                json!({"parameters": {"n": 1}}),
            )
            .await;
        assert_eq!(status, 201, "{run}");
        let run = s.wait_final(key, run["id"].as_str().unwrap()).await;
        assert_eq!(run["state"]["type"], "COMPLETED", "{run}");
        took.push(t.elapsed());
    }
    took
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parameter_schema_whose_refs_explode_is_refused_at_upload() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let good = s.workspace("neighbour").await;
    let digest = s.upload(&good.key, BASIC).await;
    s.deploy(
        &good.key,
        json!({"name": "neighbour", "component": digest, "flow": "map_flow"}),
    )
    .await;
    neighbour_runs(&s, &good.key, 3).await;

    let bad = s.workspace("bomber").await;
    let bytes = std::fs::read(crate::support::guest(SCHEMA_BOMB)).unwrap();
    let uploads: Vec<_> = (0..4)
        .map(|_| {
            let req = s
                .req(reqwest::Method::POST, "/api/components", &bad.key)
                .header("content-type", "application/wasm")
                .body(bytes.clone());
            tokio::spawn(send(req))
        })
        .collect();
    // The neighbour is served while the uploads are checked.
    let during = neighbour_runs(&s, &good.key, 5).await;
    for u in uploads {
        let (status, p) = tokio::time::timeout(Duration::from_secs(60), u)
            .await
            .expect("the upload is answered")
            .unwrap();
        assert_eq!(status, 422, "{p}");
        let detail = p["detail"].as_str().unwrap();
        assert!(
            detail.contains("flow 'bomb' has a parameter schema Weir refuses")
                && detail.contains("expand to more than"),
            "{p}"
        );
    }
    assert_eq!(during.len(), 5);
    let (_, list) = s.get("/api/components", &bad.key).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 0, "{list}");
    s.stop().await;
}

#[tokio::test]
async fn weir_run_refuses_the_exploding_schema_before_checking_a_value() {
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_weir"))
            .arg("run")
            .arg(crate::support::guest(SCHEMA_BOMB))
            .args(["bomb", "--param", "x=not-a-number"])
            .arg("--data-dir")
            .arg(tempfile::tempdir().unwrap().path())
            .output(),
    )
    .await
    .expect("weir run answers")
    .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("expand to more than"), "{err}");
}
