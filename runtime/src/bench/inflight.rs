//! `weir bench inflight [N] --component guest_basic.wasm`: N flow runs in flight at once
//! on one node, each waiting in a task that sleeps, while short one-task runs keep being
//! triggered and timed; then N suspended runs, which hold no instance. Reports the
//! process's resident memory at each step, the short runs' trigger-to-completed
//! latency beside the same runs on the idle node, and how every run ended.
//!
//! The node's bounds are the server's defaults unless `WEIR_MAX_INSTANCES`,
//! `WEIR_MAX_ACTIVE_RUNS` or `WEIR_MEMORY_BUDGET_MB` say otherwise.

use crate::server::{Server, ServerConfig};
use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant};

/// Short runs a second while the long ones wait, and for how long.
const SHORT_RATE: u64 = 100;
const SHORT_SECONDS: u64 = 10;

fn env_usize(name: &str) -> Option<usize> {
    std::env::var(name).ok()?.parse().ok()
}

pub async fn run(n: u64, component: &Path) -> anyhow::Result<String> {
    let n = if n == 0 { 10_000 } else { n };
    let dir = std::env::temp_dir().join(format!("weir-bench-inflight-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(dir.join("components"))?;
    let result = run_in(n, component, &dir).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn rss_mb() -> u64 {
    super::rss_mb_of("self")
}

/// Memory mappings of this process (the kernel bounds them by `vm.max_map_count`).
fn maps() -> usize {
    std::fs::read_to_string("/proc/self/maps").map_or(0, |m| m.lines().count())
}

async fn run_in(n: u64, component: &Path, dir: &Path) -> anyhow::Result<String> {
    let mut config = ServerConfig::new(dir.to_owned());
    config.run_scheduler = false;
    // At the end the sleeping runs are put back at once, not waited for.
    config.grace = Duration::from_millis(100);
    config.connections.max_per_peer = 4096;
    config.rate = crate::api::rate::RateConfig::unlimited();
    if let Some(mb) = env_usize("WEIR_MEMORY_BUDGET_MB") {
        config.limits.memory_budget = crate::model::limits::MemoryBudget::new(mb << 20);
    }
    config.size_for_memory();
    if let Some(i) = env_usize("WEIR_MAX_INSTANCES") {
        config.limits.max_instances = i as u32;
    }
    if let Some(r) = env_usize("WEIR_MAX_ACTIVE_RUNS") {
        config.max_active_runs = Some(r);
    }
    let (instances, active, budget_mb) = (
        config.limits.max_instances,
        config.active_runs(),
        config.limits.memory_budget.limit() >> 20,
    );
    let server = Server::start(config).await?;
    let executor = server.executor.clone();
    let store = executor.store().clone();

    let (workspace_id, token) = super::bench_workspace(&store).await?;
    let digest = super::bench_component(&executor, component, &workspace_id).await?;
    let deploy =
        |name: &str, flow: &str| super::bench_deployment(&workspace_id, name, &digest, flow);
    let (long, short, suspend) = (
        deploy("long", "nap"),
        deploy("short", "map_flow"),
        deploy("suspend", "suspender"),
    );
    for d in [&long, &short, &suspend] {
        store.insert_deployment(d).await?;
    }
    executor.orchestrator().tenants.sync(&store).await?;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.serve(listener, async {
        let _ = stopped.await;
    }));
    let bench = super::api::Client::new(base, token);

    let mut out = format!(
        "bench inflight: {n} flow runs waiting in a sleeping task on one node (max instances \
         {instances}, max active runs {active}, memory budget {budget_mb} MiB), short one-task \
         runs at {SHORT_RATE}/s for {SHORT_SECONDS} s beside them\n\n\
         | step | RSS MiB | mappings | short runs p50 / p99 ms |\n|---|---|---|---|\n"
    );
    bench.trigger_many(&short.id, json!({"n": 1}), 200).await?;
    let (p50, p99) = bench
        .timed_runs(
            &store,
            &short.id,
            json!({"n": 1}),
            SHORT_RATE,
            SHORT_SECONDS,
        )
        .await?;
    out.push_str(&format!(
        "| idle | {} | {} | {p50:.2} / {p99:.2} |\n",
        rss_mb(),
        maps()
    ));

    // The long runs sleep long enough to outlast the short runs' window.
    let hold_ms = 60_000 + n * 2;
    let t = Instant::now();
    bench
        .trigger_many(&long.id, json!({ "millis": hold_ms }), n)
        .await?;
    let triggered_s = t.elapsed().as_secs_f64();
    let deadline = Instant::now() + Duration::from_secs(120);
    while (executor.active() as u64) < n.min(active as u64) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let in_flight = executor.active();
    let queued = executor.queue_depth();
    let tasks = executor.orchestrator().task_instances_in_use();
    let rss_long = rss_mb();
    let maps_long = maps();
    let budget_used = executor.engine().limits().memory_budget.used() >> 20;
    let (p50, p99) = bench
        .timed_runs(
            &store,
            &short.id,
            json!({"n": 1}),
            SHORT_RATE,
            SHORT_SECONDS,
        )
        .await?;
    out.push_str(&format!(
        "| {in_flight} runs executing ({tasks} of their tasks in an instance, {queued} queued), \
         triggered in {triggered_s:.1} s; budget in use {budget_used} MiB | {rss_long} (peak {}) | {maps_long} | {p50:.2} / {p99:.2} |\n",
        super::peak_rss_mb().unwrap_or(0)
    ));

    // Suspended runs hold no instance: N more (or `WEIR_BENCH_SUSPENDED`), each
    // suspended after a first task.
    let to_suspend = env_usize("WEIR_BENCH_SUSPENDED").map_or(n, |s| s as u64);
    let before = rss_mb();
    let t = Instant::now();
    bench
        .trigger_many(
            &suspend.id,
            json!({"label": "s", "timeout": 3600.0}),
            to_suspend,
        )
        .await?;
    let deadline = Instant::now() + Duration::from_secs(60 + to_suspend / 100);
    let suspended = loop {
        store.flush().await?;
        let paused = store
            .flow_run_counts()
            .await?
            .into_iter()
            .find(|(s, _)| s == "PAUSED")
            .map_or(0, |(_, c)| c);
        if paused >= to_suspend as i64 || Instant::now() > deadline {
            break paused;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    out.push_str(&format!(
        "| and {suspended} suspended runs (suspended in {:.1} s) | {} (was {before}) | {} | |\n",
        t.elapsed().as_secs_f64(),
        rss_mb(),
        maps()
    ));

    let _ = stop.send(());
    // Shutdown puts the sleeping runs back (they would resume at the next start).
    let _ = tokio::time::timeout(Duration::from_secs(120), serving).await;
    Ok(out)
}
