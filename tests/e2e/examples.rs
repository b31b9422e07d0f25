//! Every example runs to completion.

use crate::support::Harness;
use serde_json::json;

async fn run(
    example: &str,
    flow: &str,
    params: serde_json::Value,
) -> (Harness, weir::orchestrate::FlowOutcome) {
    let h = Harness::new().await;
    let c = h.load(example).await;
    let out = h.run(&c, flow, params).await;
    assert!(
        out.state.is_completed(),
        "{example}/{flow}: {:?}",
        out.state
    );
    (h, out)
}

#[tokio::test]
async fn hello() {
    let (h, out) = run("hello", "hello", json!({})).await;
    assert!(out.value.unwrap().contains("world"));
    let logs = h.logs(&out.flow_run_id).await;
    assert!(logs.iter().any(|l| l.contains("world")), "{logs:?}");
}

#[tokio::test]
async fn etl() {
    let (h, out) = run("etl", "etl", json!({})).await;
    let artifacts = h.store().artifacts(&out.flow_run_id).await.unwrap();
    assert!(
        artifacts
            .iter()
            .any(|a| a.key.as_deref() == Some("etl-report") && a.kind == "markdown")
    );
    assert!(
        artifacts
            .iter()
            .any(|a| a.key.as_deref() == Some("etl-table") && a.kind == "table")
    );
}

#[tokio::test]
async fn etl_daily_loads_a_day_once_and_rolls_back_a_failed_check() {
    let h = Harness::new().await;
    let c = h.load("etl").await;
    let day = format!("2026-12-{}", uuid::Uuid::now_v7());
    let failed = h
        .run(&c, "etl-daily", json!({"day": day, "min_rows": 100}))
        .await;
    assert!(!failed.state.is_completed(), "{:?}", failed.state);
    let logs = h.logs(&failed.flow_run_id).await;
    let table = format!("sales_{day}");
    assert!(
        logs.iter()
            .any(|l| l == &format!("rolled back load_rows-0: removed its rows from {table}")),
        "{logs:#?}"
    );
    let first = h.run(&c, "etl-daily", json!({"day": day})).await;
    assert_eq!(first.value, Some(format!("\"{day}: loaded 8 rows\"")));
    let again = h.run(&c, "etl-daily", json!({"day": day})).await;
    assert_eq!(again.value, Some(format!("\"{day} was loaded before\"")));
}

#[tokio::test]
async fn retries() {
    let (h, out) = run("retries", "retries", json!({})).await;
    let tasks = h.store().task_runs(&out.flow_run_id).await.unwrap();
    assert_eq!(tasks[0].run_count, 3);
}

#[tokio::test]
async fn caching() {
    let h = Harness::new().await;
    let c = h.load("caching").await;
    let a = h.run(&c, "caching", json!({"x": 3})).await;
    let b = h.run(&c, "caching", json!({"x": 3})).await;
    assert!(a.state.is_completed() && b.state.is_completed());
    assert_eq!(a.value, b.value);
    let tasks = h.store().task_runs(&b.flow_run_id).await.unwrap();
    assert!(tasks.iter().any(|t| t.state.name == "Cached"));
}

#[tokio::test]
async fn subflows() {
    let (h, out) = run("subflows", "parent", json!({})).await;
    assert!(
        !h.store()
            .subflow_runs(&out.flow_run_id)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn bench_flows() {
    let (_, out) = run("bench", "chain", json!({"n": 20})).await;
    assert_eq!(out.value.as_deref(), Some("20"));
    let (_, out) = run("bench", "mapped", json!({"n": 10})).await;
    assert_eq!(out.value.as_deref(), Some("285"));
    let (_, out) = run("bench", "ten", json!({})).await;
    assert_eq!(out.value.as_deref(), Some("10"));
}
