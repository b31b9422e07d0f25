//! Tenant isolation: what a hostile component can make the host hold or compute on its
//! behalf is bounded, and a neighbour tenant's runs are served meanwhile.

use crate::BASIC;
use crate::support::server::{TestServer, send};
use serde_json::json;
use std::time::{Duration, Instant};
use weir::model::state::StateType;

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

fn isolation_limits() -> weir::model::limits::Limits {
    weir::model::limits::Limits {
        max_instances: 40,
        ..crate::support::test_limits()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_that_calls_itself_stops_at_the_nesting_limit() {
    let h = crate::support::Harness::with_limits(isolation_limits()).await;
    let c = h.load(crate::BASIC).await;
    let (bad, good) = tokio::join!(
        h.run(&c, "endless_recursion", json!({})),
        h.run(&c, "map_flow", json!({"n": 50}))
    );
    assert_eq!(bad.state.kind, StateType::Failed, "{:?}", bad.state);
    let message = bad.state.message.clone().unwrap_or_default();
    assert!(
        message.contains("tasks may call tasks 8 levels deep"),
        "{message}"
    );
    assert!(good.state.is_completed(), "{:?}", good.state);
    // Within the bound, tasks call tasks.
    let ok = h.run(&c, "nested_flow", json!({"depth": 6})).await;
    assert!(ok.state.is_completed(), "{:?}", ok.state);
    assert_eq!(ok.value.as_deref(), Some("6"));
    assert_eq!(h.orch.task_instances_in_use(), 0, "every slot came back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_waiting_for_their_own_tasks_do_not_hold_every_slot() {
    // 36 task slots, 9 of them a run's share: 16 parents waiting for their children
    // would hold them all if a waiting task kept its slot.
    let h = crate::support::Harness::with_limits(isolation_limits()).await;
    let c = h.load(crate::BASIC).await;
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        h.run(&c, "parents_wait", json!({"n": 16})),
    )
    .await
    .expect("the parents and their children finish");
    assert!(out.state.is_completed(), "{:?}", out.state);
    let expected: u64 = (0..16u64).map(|x| x * x).sum();
    assert_eq!(out.value.as_deref(), Some(expected.to_string().as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_wants_every_slot_gets_its_share_and_waits_visibly() {
    let h = crate::support::Harness::with_limits(isolation_limits()).await;
    let c = h.load(crate::BASIC).await;
    let orch = h.orch.clone();
    let hog_c = c.clone();
    let hog = tokio::spawn(async move {
        let mut req = weir::orchestrate::FlowRequest::new(
            hog_c,
            "slot_hog",
            json!({"n": 60, "millis": 1500}),
        );
        req.workspace_id = Some("hog".into());
        orch.run_flow(req).await.expect("created")
    });
    // The hog holds its share (9 of 36 slots), and its other task runs say they wait.
    let deadline = Instant::now() + Duration::from_secs(20);
    let hog_id = loop {
        assert!(Instant::now() < deadline, "the hog never waited for slots");
        let filter = weir::store::RunFilter {
            limit: 10,
            ..Default::default()
        };
        let runs = h.store().list_flow_runs("hog", &filter).await.unwrap();
        if let Some(r) = runs.first() {
            let tasks = h.store().task_runs(&r.id).await.unwrap();
            let waiting = tasks.iter().any(|t| {
                t.state.kind == StateType::Pending
                    && t.state
                        .message
                        .as_deref()
                        .is_some_and(|m| m.contains("waiting for a task slot"))
            });
            if waiting {
                break r.id.clone();
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(h.orch.task_instances_in_use() <= 9, "over its share");
    // A neighbour's run is not queued behind the hog's 60 tasks.
    let neighbour = h.run(&c, "map_flow", json!({"n": 3})).await;
    assert!(neighbour.state.is_completed(), "{:?}", neighbour.state);
    let hog_now = h.store().flow_run(&hog_id).await.unwrap().unwrap();
    assert!(
        !hog_now.state.is_final(),
        "the neighbour finished only after the hog: {:?}",
        hog_now.state
    );
    let hog = hog.await.unwrap();
    assert!(hog.state.is_completed(), "{:?}", hog.state);
    assert_eq!(hog.value.as_deref(), Some("60"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_flooding_tiny_log_lines_is_bounded_by_lines_and_rate() {
    let h = crate::support::Harness::with_limits(weir::model::limits::Limits {
        max_log_lines_per_run: 5_000,
        log_lines_per_second: 100,
        ..isolation_limits()
    })
    .await;
    let c = h.load(crate::BASIC).await;
    let (flood, good) = tokio::join!(
        h.run(&c, "tiny_log_flood", json!({"lines": 200_000})),
        h.run(&c, "map_flow", json!({"n": 20}))
    );
    assert!(flood.state.is_completed(), "{:?}", flood.state);
    assert!(good.state.is_completed(), "{:?}", good.state);
    let logs = h.logs(&flood.flow_run_id).await;
    // A burst of ten seconds' worth (1,000 lines), then the rate: far under 200,000.
    assert!(logs.len() <= 1_100, "{} lines kept", logs.len());
    let notice = logs
        .iter()
        .find(|l| l.contains("log lines were dropped: a run writes at most 100 a second"));
    assert!(notice.is_some(), "no notice of the dropped lines");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn artifacts_are_bounded_per_run_in_number_and_bytes() {
    let h = crate::support::Harness::with_limits(weir::model::limits::Limits {
        max_artifacts_per_run: 10,
        max_artifact_bytes_per_run: 64 << 10,
        ..isolation_limits()
    })
    .await;
    let c = h.load(crate::BASIC).await;
    let many = h
        .run(&c, "artifact_flood", json!({"n": 50, "kib": 1}))
        .await;
    let (created, why): (u32, String) =
        serde_json::from_str(many.value.as_deref().unwrap()).unwrap();
    assert_eq!(created, 10);
    assert!(why.contains("created 10 artifacts, its limit"), "{why}");
    let big = h
        .run(&c, "artifact_flood", json!({"n": 50, "kib": 20}))
        .await;
    let (created, why): (u32, String) =
        serde_json::from_str(big.value.as_deref().unwrap()).unwrap();
    assert_eq!(created, 3, "{why}");
    assert!(why.contains("over its limit of 65536 bytes"), "{why}");
    assert_eq!(
        h.store().artifacts(&big.flow_run_id).await.unwrap().len(),
        3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_hoarding_task_arguments_fails_at_its_host_memory_limit() {
    let h = crate::support::Harness::with_limits(weir::model::limits::Limits {
        max_run_host_bytes: 8 << 20,
        ..isolation_limits()
    })
    .await;
    let c = h.load(crate::BASIC).await;
    let out = h
        .run(&c, "hoard_arguments", json!({"n": 2000, "kib": 64}))
        .await;
    assert_eq!(out.state.kind, StateType::Failed, "{:?}", out.state);
    let message = out.state.message.clone().unwrap_or_default();
    assert!(
        message.contains("keeps more than its limit of 8 MiB"),
        "{message}"
    );
    // Within the limit the same flow completes, and the budget is given back.
    let ok = h
        .run(&c, "hoard_arguments", json!({"n": 20, "kib": 64}))
        .await;
    assert!(ok.state.is_completed(), "{:?}", ok.state);
    let budget = &h.orch.engine().limits().memory_budget;
    let deadline = Instant::now() + Duration::from_secs(10);
    while budget.used() != 0 {
        assert!(
            Instant::now() < deadline,
            "{} bytes never given back",
            budget.used()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_share_the_memory_budget_and_fail_clearly_past_it() {
    // 160 MiB for every instance at once: three tasks of 40 MiB fit, eight do not.
    let h = crate::support::Harness::with_limits(weir::model::limits::Limits {
        memory_budget: weir::model::limits::MemoryBudget::new(160 << 20),
        ..isolation_limits()
    })
    .await;
    let c = h.load(crate::BASIC).await;
    let out = h
        .run(
            &c,
            "memory_crowd",
            json!({"n": 8, "mib": 40, "millis": 1500}),
        )
        .await;
    assert!(out.state.is_completed(), "{:?}", out.state);
    let (ok, failed): (u32, Vec<String>) =
        serde_json::from_str(out.value.as_deref().unwrap()).unwrap();
    assert!(ok >= 1 && !failed.is_empty(), "{ok} completed, {failed:?}");
    assert!(
        failed
            .iter()
            .all(|m| m.contains("memory budget for instances (160 MiB")),
        "{failed:?}"
    );
    let budget = &h.orch.engine().limits().memory_budget;
    assert!(budget.used() <= 160 << 20);
    let deadline = Instant::now() + Duration::from_secs(10);
    while budget.used() != 0 {
        assert!(
            Instant::now() < deadline,
            "{} bytes never given back",
            budget.used()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn compiling_is_bounded_and_refused_components_leave_no_compiled_code() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("compiled");
    let limits = weir::model::limits::Limits {
        max_component_functions: 100,
        ..isolation_limits()
    };
    let engine = weir::host::Engine::new(limits, Some(cache.clone())).unwrap();
    let basic = std::fs::read(crate::support::guest(crate::BASIC)).unwrap();
    let err = engine.load(&basic).await.expect_err("too many functions");
    let message = err.to_string();
    assert!(
        message.contains("functions, more than the 100 Weir compiles"),
        "{message}"
    );
    // A component refused after compiling (its schema) leaves nothing on disk either.
    let engine = weir::host::Engine::new(isolation_limits(), Some(cache.clone())).unwrap();
    let bomb = std::fs::read(crate::support::guest(SCHEMA_BOMB)).unwrap();
    assert!(engine.load(&bomb).await.is_err());
    let kept = std::fs::read_dir(&cache).map_or(0, |d| d.count());
    assert_eq!(kept, 0, "compiled code of refused components was kept");
    // An accepted one is kept, for the next start.
    engine.load(&basic).await.expect("accepted");
    assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_compile_in_a_worker_bounded_in_memory_and_time() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("compiled");
    let basic = std::fs::read(crate::support::guest(crate::BASIC)).unwrap();
    let bounded = |memory_bytes: usize, time: Duration| weir::model::limits::Limits {
        compile_worker: Some(weir::model::limits::CompileWorker {
            exe: env!("CARGO_BIN_EXE_weir").into(),
            memory_bytes,
            time,
        }),
        ..isolation_limits()
    };
    // Too little memory to compile it: refused, saying so, and the server is unharmed.
    let engine = weir::host::Engine::new(
        bounded(24 << 20, Duration::from_secs(60)),
        Some(cache.clone()),
    )
    .unwrap();
    let message = engine.load(&basic).await.expect_err("refused").to_string();
    assert!(
        message.contains("compiling the component needed more than 24 MiB"),
        "{message}"
    );
    // Too little time: the worker is killed.
    let engine = weir::host::Engine::new(
        bounded(2 << 30, Duration::from_millis(50)),
        Some(cache.clone()),
    )
    .unwrap();
    let message = engine.load(&basic).await.expect_err("refused").to_string();
    assert!(
        message.contains("compiling the component took more than 0.05 s"),
        "{message}"
    );
    assert_eq!(
        std::fs::read_dir(&cache).map_or(0, |d| d.count()),
        0,
        "nothing is left of refused compilations"
    );
    // Within its bounds, the worker's code runs here.
    let engine = weir::host::Engine::new(
        bounded(1 << 30, Duration::from_secs(60)),
        Some(cache.clone()),
    )
    .unwrap();
    let loaded = engine.load(&basic).await.expect("compiled by the worker");
    assert!(!loaded.from_cache);
    let kept: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(
        kept[0].ends_with(".cwasm") && !kept[0].starts_with("compile-"),
        "{kept:?}"
    );
}
