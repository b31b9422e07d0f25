//! Hostile values: durations no sane flow declares, and guest errors dressed as the
//! host's own failures. The host refuses what it cannot honour where it enters, with a
//! message naming the field, and never takes a guest's word for what the host did.

use super::*;
use crate::support::server::{TestServer, send};
use serde_json::json;
use weir::engine::LoadError;
use weir::orchestrate::FailureKind;

const HOSTILE: &str = "guest_hostile";

#[tokio::test]
async fn a_guest_error_named_like_a_host_failure_is_the_guests_own() {
    let h = harness().await;
    let c = h.load(BASIC).await;
    for kind in [
        "timeout",
        "trap",
        "panic",
        "memory",
        "cpu",
        "limit",
        "stack-overflow",
    ] {
        let out = h
            .run(&c, "forged_kind", json!({"kind": kind, "millis": 300}))
            .await;
        assert_eq!(state_of(&out), "FAILED/Failed", "{kind}");
        let failure = out.failure.clone().expect("a failure");
        assert_eq!(failure.kind, FailureKind::Guest(kind.into()));
        assert!(!failure.kind.stopped_by_host());
        let json = serde_json::to_value(&failure).unwrap();
        assert_eq!(json["kind"], kind);
        assert_eq!(json["origin"], "guest");
        // The flow returned: the host waited for the task run it submitted instead of
        // stopping it as it would after its own timeout or trap.
        let tasks = h.store().task_runs(&out.flow_run_id).await.unwrap();
        assert_eq!(tasks.len(), 1, "{kind}");
        assert_eq!(
            tasks[0].state.kind,
            weir::model::state::StateType::Completed,
            "{kind}: the submitted task run was {}",
            tasks[0].state
        );
    }
}

#[tokio::test]
async fn a_zero_timeout_is_no_timeout() {
    let h = harness().await;
    let c = h.load(BASIC).await;
    let def = c.flow("zero_timeout").unwrap();
    assert_eq!(def.options.timeout_seconds, None);
    assert_eq!(c.task("untimed").unwrap().options.timeout_seconds, None);
    let out = h.run(&c, "zero_timeout", json!({"millis": 150})).await;
    assert_eq!(state_of(&out), "COMPLETED/Completed", "{:?}", out.state);
    assert_eq!(out.value.as_deref(), Some("150"));
}

#[tokio::test]
async fn absurd_durations_in_a_manifest_are_refused_at_load() {
    let h = harness().await;
    let bytes = std::fs::read(crate::support::guest(HOSTILE)).unwrap();
    match h.orch.engine().load(&bytes).await {
        Err(LoadError::Describe(msg)) => {
            assert!(msg.contains("flow 'absurd_timeout'"), "{msg}");
            assert!(msg.contains("'timeout_seconds'"), "{msg}");
            assert!(
                msg.contains("1e20") || msg.contains("100000000000000000000"),
                "{msg}"
            );
        }
        Err(e) => panic!("refused for another reason: {e}"),
        Ok(_) => panic!("a manifest with a 1e20 s timeout was accepted"),
    }
}

#[tokio::test]
async fn absurd_durations_are_refused_at_upload_and_deploy() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let ws = s.workspace("hostile").await;
    let bytes = std::fs::read(crate::support::guest(HOSTILE)).unwrap();
    let (status, p) = send(
        s.req(reqwest::Method::POST, "/api/components", &ws.key)
            .header("content-type", "application/wasm")
            .body(bytes),
    )
    .await;
    assert_eq!(status, 422, "{p}");
    let detail = p["detail"].as_str().unwrap();
    assert!(detail.contains("'timeout_seconds'"), "{p}");
    let (_, list) = s.get("/api/components", &ws.key).await;
    assert_eq!(list["items"].as_array().map_or(0, Vec::len), 0, "{list}");

    // A deployment's limits are durations from the API: bounded the same way.
    let digest = s.upload(&ws.key, BASIC).await;
    for bad in [json!(1e20), json!(-1), json!(1e300)] {
        let (status, p) = s
            .post(
                "/api/deployments",
                &ws.key,
                json!({"name": "d", "component": digest, "flow": "nap",
                       "limits": {"timeout_seconds": bad}}),
            )
            .await;
        assert_eq!(status, 422, "{bad}: {p}");
        assert!(
            p.to_string().contains("limits.timeout_seconds"),
            "{bad}: {p}"
        );
    }
    // 0 means no timeout: the run is not stopped at once.
    let d = s
        .deploy(
            &ws.key,
            json!({"name": "untimed", "component": digest, "flow": "nap",
                   "limits": {"timeout_seconds": 0}}),
        )
        .await;
    assert!(d["limits"]["timeout_seconds"].is_null(), "{d}");
    let (status, run) = s
        .post(
            "/api/deployments/untimed/runs",
            &ws.key,
            json!({"parameters": {"millis": 50}}),
        )
        .await;
    assert_eq!(status, 201, "{run}");
    let run = s.wait_final(&ws.key, run["id"].as_str().unwrap()).await;
    assert_eq!(run["state"]["type"], "COMPLETED", "{run}");
    s.stop().await;
}
