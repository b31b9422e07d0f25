//! `weir bench`: the orchestration overhead of the workloads Prefect's side runs too
//! (`chain`, `map`, `flows`), every state persisted to a SQLite file database, or to a
//! PostgreSQL database with `--db postgres://...`, each beside the physical floor of a
//! task run measured in the same process (`floor`: an instance and a trivial call, nothing
//! orchestrated or persisted).

pub(crate) mod api;
pub mod burst;
pub mod history;
pub mod inflight;
pub mod isolation;
pub mod startup;
pub mod ui;

use crate::host::{Engine, HostState, LoadedComponent};
use crate::model::limits::Limits;
use crate::orchestrate::{FlowRequest, Orchestrator};
use crate::store::Store;
use anyhow::{Context, bail, ensure};
use serde_json::{Value, json};
use std::path::Path;
use std::time::Instant;

/// Runs one workload and returns the report line:
/// `weir chain n=1000 seconds=0.123 per_task_ms=0.123 floor_ms=0.020 x_floor=1.30 ...`
/// (`x_floor`: the workload's time per task over the floor's, measured in this process
/// just before, so that a noisy machine shows in both).
pub async fn run(
    workload: &str,
    n: u64,
    component: &Path,
    db: Option<&str>,
    limits: Limits,
) -> anyhow::Result<String> {
    let dir = std::env::temp_dir().join(format!("weir-bench-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir)?;
    let result = run_in(workload, n, component, &dir, db, limits).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn run_in(
    workload: &str,
    n: u64,
    component: &Path,
    dir: &Path,
    db: Option<&str>,
    limits: Limits,
) -> anyhow::Result<String> {
    let engine = Engine::new(limits, Some(dir.join("compiled")))?;
    let store = match db {
        Some(url) => Store::open_url(url).await?,
        None => Store::open_sqlite(&dir.join("weir.db")).await?,
    };
    let orch = Orchestrator::new(engine, store);
    let bytes = read_component(component)?;
    let loading = Instant::now();
    let loaded = orch.engine().load(&bytes).await?;
    let load_seconds = loading.elapsed().as_secs_f64();
    let flow = |name: &str, params: Value| FlowRequest::new(loaded.clone(), name, params);
    // Warm up as the Prefect side does: one ten-task flow.
    let warm = orch.run_flow(flow("ten", json!({}))).await?;
    ensure!(
        warm.state.is_completed(),
        "warm-up run ended {}",
        warm.state
    );

    if workload == "floor" {
        ensure!(n > 0, "bench floor needs N, the number of task attempts");
        let start = Instant::now();
        let f = floor(&orch, &loaded, n).await?;
        let seconds = start.elapsed().as_secs_f64();
        let again_ms = warm_calls(&orch, &loaded, n.min(FLOOR_SAMPLES)).await?;
        let mut line = format!(
            "weir floor n={n} seconds={seconds:.3} per_task_ms={:.4} instantiate_ms={:.4} \
             call_ms={:.4} drop_ms={:.4} call_again_ms={again_ms:.4}",
            f.per_task_ms, f.instantiate_ms, f.call_ms, f.drop_ms
        );
        if let Some(rss) = peak_rss_mb() {
            line.push_str(&format!(" peak_rss_mb={rss}"));
        }
        return Ok(line);
    }
    ensure!(
        matches!(workload, "chain" | "map" | "flows"),
        "unknown workload {workload:?}; use chain, map, flows or floor"
    );
    let floor_ms = floor(&orch, &loaded, FLOOR_SAMPLES).await?.per_task_ms;

    let start = Instant::now();
    let tasks = match workload {
        "chain" => {
            let out = orch.run_flow(flow("chain", json!({ "n": n }))).await?;
            ensure!(out.state.is_completed(), "chain ended {}", out.state);
            ensure!(
                out.value.as_deref() == Some(n.to_string().as_str()),
                "chain returned {:?}",
                out.value
            );
            n
        }
        "map" => {
            let out = orch.run_flow(flow("mapped", json!({ "n": n }))).await?;
            ensure!(out.state.is_completed(), "map ended {}", out.state);
            let expected: u128 = (0..n as u128).map(|i| i * i).sum();
            ensure!(
                out.value.as_deref() == Some(expected.to_string().as_str()),
                "map returned {:?}",
                out.value
            );
            n
        }
        "flows" => {
            for _ in 0..n {
                let out = orch.run_flow(flow("ten", json!({}))).await?;
                ensure!(out.state.is_completed(), "flow ended {}", out.state);
            }
            n * 10
        }
        other => bail!("unknown workload {other:?}; use chain, map, flows or floor"),
    };
    let seconds = start.elapsed().as_secs_f64();
    let per_task_ms = 1000.0 * seconds / tasks as f64;
    let mut line = format!(
        "weir {workload} n={n} seconds={seconds:.3} per_task_ms={per_task_ms:.4} \
         floor_ms={floor_ms:.4} x_floor={:.2}",
        per_task_ms / floor_ms
    );
    if workload == "flows" {
        line.push_str(&format!(" per_flow_ms={:.3}", 1000.0 * seconds / n as f64));
    }
    // The component's size and its first load (a compilation: the engine's cache is new).
    line.push_str(&format!(
        " component_mb={:.1} compile_s={load_seconds:.2}",
        bytes.len() as f64 / 1e6
    ));
    if let Some(rss) = peak_rss_mb() {
        line.push_str(&format!(" peak_rss_mb={rss}"));
    }
    Ok(line)
}

/// Task attempts the in-process floor measures beside a workload.
const FLOOR_SAMPLES: u64 = 2000;

/// Where the floor's time goes, in milliseconds per task attempt.
struct Floor {
    /// The whole attempt: the three parts below.
    per_task_ms: f64,
    /// A fresh instance from the engine's pool.
    instantiate_ms: f64,
    /// The task's call in that instance.
    call_ms: f64,
    /// Dropping the instance (its pool slot is reset for the next one).
    drop_ms: f64,
}

/// The physical floor of a task run: a fresh instance of the component from the engine's
/// pool and one call of a task that does next to nothing (`add_one`), `n` times, with the
/// engine's configuration and nothing orchestrated or persisted.
async fn floor(orch: &Orchestrator, component: &LoadedComponent, n: u64) -> anyhow::Result<Floor> {
    let (mut instantiate, mut call, mut dropping) = (0.0, 0.0, 0.0);
    for i in 0..n {
        let t0 = Instant::now();
        let (mut store, world) = instance(orch, component).await?;
        let t1 = Instant::now();
        add_one(&world, &mut store, i).await?;
        let t2 = Instant::now();
        drop((world, store));
        let t3 = Instant::now();
        instantiate += (t1 - t0).as_secs_f64();
        call += (t2 - t1).as_secs_f64();
        dropping += (t3 - t2).as_secs_f64();
    }
    let ms = |seconds: f64| 1000.0 * seconds / n.max(1) as f64;
    Ok(Floor {
        per_task_ms: ms(instantiate + call + dropping),
        instantiate_ms: ms(instantiate),
        call_ms: ms(call),
        drop_ms: ms(dropping),
    })
}

/// The floor's call made `n` times in one instance: what the task and the SDK cost once
/// the instance has run before (its memory touched, its tables filled). Milliseconds per
/// call.
async fn warm_calls(
    orch: &Orchestrator,
    component: &LoadedComponent,
    n: u64,
) -> anyhow::Result<f64> {
    let (mut store, world) = instance(orch, component).await?;
    add_one(&world, &mut store, 0).await?;
    let start = Instant::now();
    for i in 0..n {
        add_one(&world, &mut store, i).await?;
    }
    Ok(1000.0 * start.elapsed().as_secs_f64() / n.max(1) as f64)
}

/// A fresh instance of the bench component from the engine's pool.
async fn instance(
    orch: &Orchestrator,
    component: &LoadedComponent,
) -> anyhow::Result<(crate::engine::Metered<HostState>, crate::host::FlowWorld)> {
    let limits = orch.engine().limits();
    orch.engine()
        .instantiate_component(component, || HostState::new(limits, None, None))
        .await
        .map_err(|e| anyhow::anyhow!("cannot start an instance: {e:#}"))
}

/// Calls the bench component's `add_one` task with `i`, checking the answer.
async fn add_one(
    world: &crate::host::FlowWorld,
    store: &mut crate::engine::Metered<HostState>,
    i: u64,
) -> anyhow::Result<()> {
    let out = world
        .weir_flow_guest()
        .call_run_task(&mut *store, "add_one", &format!("{{\"x\": {i}}}"))
        .await
        .map_err(|e| anyhow::anyhow!("the floor's task trapped: {e:#}"))?;
    match out {
        Ok(value) if value == (i + 1).to_string() => Ok(()),
        other => bail!("the floor's task returned {other:?}"),
    }
}

/// Resident set size of a process (`self`, or a pid), in MiB (Linux; 0 when unknown).
pub(crate) fn rss_mb_of(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmRSS:"))?.to_owned();
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(0, |kb| kb / 1024)
}

/// A started server with the demo deployed and copies of its hello deployment up to
/// `wanted` in all (`bench-NNN`), for the benches that generate runs across them.
pub(crate) struct DemoServer {
    pub server: crate::server::Server,
    pub api_key: String,
    pub workspace_id: String,
    /// `(id, flow, component digest)` of every deployment of the demo workspace.
    pub deployments: Vec<(String, String, String)>,
    /// The copies were there already: a database a bench generated before.
    pub reused: bool,
}

pub(crate) async fn demo_server(
    config: crate::server::ServerConfig,
    examples: &Path,
    wanted: usize,
) -> anyhow::Result<DemoServer> {
    let dir = config.data_dir.clone();
    let server = crate::server::Server::start(config).await?;
    let demo =
        crate::server::demo::setup(&server, examples, &crate::server::demo::env_file(&dir)).await?;
    let store = server.state.store().clone();
    let ws = store
        .workspace_by_name("demo")
        .await?
        .context("the demo workspace is missing")?;
    let hello = store
        .deployment(&ws.id, "hello")
        .await?
        .context("the hello deployment is missing")?;
    let existing = store.deployments(&ws.id).await?.len();
    for n in existing..wanted {
        let now = chrono::Utc::now();
        store
            .insert_deployment(&crate::store::DeploymentRecord {
                id: uuid::Uuid::now_v7().to_string(),
                name: format!("bench-{n:03}"),
                webhook_token_hash: None,
                webhook_secret: None,
                created: now,
                updated: now,
                ..hello.clone()
            })
            .await?;
    }
    let deployments = store
        .deployments(&ws.id)
        .await?
        .into_iter()
        .map(|d| (d.id, d.flow, d.component_digest))
        .collect();
    Ok(DemoServer {
        server,
        api_key: demo.api_key,
        workspace_id: ws.id,
        deployments,
        reused: existing >= wanted,
    })
}

/// A workspace for a bench, stored with an API key: its id and the key's secret.
pub(crate) async fn bench_workspace(store: &Store) -> anyhow::Result<(String, String)> {
    let ws = crate::store::WorkspaceRecord {
        id: uuid::Uuid::now_v7().to_string(),
        name: "bench".into(),
        created: chrono::Utc::now(),
    };
    let (key, token) = crate::api::new_key(&ws.id, None);
    store.create_workspace(&ws, &key).await?;
    Ok((ws.id, token))
}

/// A deployment of `flow` of a component in the default pool, with nothing else set.
pub(crate) fn bench_deployment(
    workspace_id: &str,
    name: &str,
    digest: &str,
    flow: &str,
) -> crate::store::DeploymentRecord {
    let now = chrono::Utc::now();
    crate::store::DeploymentRecord {
        id: uuid::Uuid::now_v7().to_string(),
        workspace_id: workspace_id.to_owned(),
        name: name.to_owned(),
        component_digest: digest.to_owned(),
        flow: flow.to_owned(),
        parameters: json!({}),
        tags: vec![],
        description: None,
        version: None,
        pool: "default".into(),
        work_queue: "default".into(),
        concurrency_limit: None,
        memory_mb: None,
        timeout_seconds: None,
        allowed_hosts: vec![],
        plugin_secrets: vec![],
        paused: false,
        retention: Default::default(),
        webhook_token_hash: None,
        webhook_secret: None,
        created: now,
        updated: now,
    }
}

/// Reads a built component, loads it into the executor's engine, keeps its bytes where
/// the executor finds them and stores its record, linked to `workspace_id`.
pub(crate) async fn bench_component(
    executor: &crate::executor::Executor,
    component: &Path,
    workspace_id: &str,
) -> anyhow::Result<String> {
    let bytes = read_component(component)?;
    let loaded = executor.engine().load(&bytes).await?;
    std::fs::write(executor.component_path(&loaded.digest), &bytes)?;
    let store = executor.store();
    store
        .put_component(
            &loaded.digest,
            loaded.size,
            &serde_json::to_value(&loaded.manifest)?,
        )
        .await?;
    store.link_component(workspace_id, &loaded.digest).await?;
    Ok(loaded.digest.clone())
}

/// A built component's bytes, or an error saying how to build it.
fn read_component(component: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(component).with_context(|| {
        format!(
            "cannot read {} (build it with scripts/build-guests)",
            component.display()
        )
    })
}

/// Peak resident set size of this process (Linux).
pub(crate) fn peak_rss_mb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024)
}

/// `weir bench runs`: what happened to the deployment runs created since a time, read
/// from a server's database: how many, how fast they completed, trigger-to-completed
/// latency percentiles, and how many are not final.
pub async fn runs_report(db: &str, since: chrono::DateTime<chrono::Utc>) -> anyhow::Result<String> {
    let store = if db.contains("://") || db.starts_with("sqlite:") {
        Store::open_url(db).await?
    } else {
        Store::open_sqlite(Path::new(db)).await?
    };
    let rows = store.run_timings(since).await?;
    ensure!(
        !rows.is_empty(),
        "no deployment runs were created since {since}"
    );
    let total = rows.len();
    let not_final: usize = rows.iter().filter(|(_, end, _)| end.is_none()).count();
    let completed: Vec<_> = rows.iter().filter(|(_, _, s)| s == "COMPLETED").collect();
    let first = rows.iter().map(|r| r.0).min().expect("rows");
    let last = rows.iter().filter_map(|r| r.1).max().unwrap_or(first);
    let span = (last - first).num_microseconds().unwrap_or(0) as f64 / 1e6;
    let mut latencies: Vec<f64> = completed
        .iter()
        .filter_map(|(c, e, _)| e.map(|e| (e - *c).num_microseconds().unwrap_or(0) as f64 / 1000.0))
        .collect();
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p).round() as usize];
    Ok(format!(
        "runs={total} completed={} not_final={not_final} seconds={span:.3} completed_per_s={:.0} \
         p50_ms={:.2} p99_ms={:.2} max_ms={:.2}",
        completed.len(),
        completed.len() as f64 / span.max(1e-9),
        pct(0.5),
        pct(0.99),
        latencies.last().copied().unwrap_or(0.0),
    ))
}

/// `weir bench schedules N`: N active schedules firing every minute, the scheduler
/// running for `seconds` on the system clock. Runs go to a paused pool, so the flows are
/// not measured. Reports how far from its fire time each run was created, the share of
/// the window the scheduler spent in its ticks (an upper bound of its CPU use: it
/// includes the database work done for it, and waits), and the whole process's CPU use
/// (which adds the executor holding the due runs and the writer).
pub async fn schedules(n: usize, seconds: u64, component: &Path) -> anyhow::Result<String> {
    use crate::executor::Executor;
    use crate::schedule::{Scheduler, SchedulerConfig, SystemClock};
    use crate::store::{DeploymentRecord, PoolRecord, ScheduleRecord};
    use chrono::Utc;

    let dir = std::env::temp_dir().join(format!("weir-bench-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(dir.join("components"))?;
    let engine = Engine::new(Limits::default(), Some(dir.join("compiled")))?;
    let store = Store::open_sqlite(&dir.join("weir.db")).await?;
    let orch = Orchestrator::new(engine, store.clone());
    let executor = Executor::new(orch, dir.join("components"), 64);
    // As in the server: the node heartbeats and claims the runs as they come due.
    executor.recover().await?;
    let now = Utc::now();
    let (workspace_id, _) = bench_workspace(&store).await?;
    let digest = bench_component(&executor, component, &workspace_id).await?;
    store
        .put_pool(
            &workspace_id,
            &PoolRecord {
                name: "held".into(),
                concurrency_limit: None,
                paused: true,
                created: now,
            },
        )
        .await?;
    let deployment = DeploymentRecord {
        pool: "held".into(),
        ..bench_deployment(&workspace_id, "every-minute", &digest, "ten")
    };
    store.insert_deployment(&deployment).await?;
    for _ in 0..n {
        store
            .put_schedule(&ScheduleRecord {
                id: uuid::Uuid::now_v7().to_string(),
                workspace_id: workspace_id.clone(),
                deployment_id: deployment.id.clone(),
                spec: json!({"type": "cron", "cron": "* * * * *", "timezone": "UTC"}),
                parameters: json!({}),
                active: true,
                catchup: "skip".into(),
                catchup_limit: 10,
                overlap: "allow".into(),
                scheduled_until: Some(now),
                created: now,
                updated: now,
            })
            .await?;
    }

    let scheduler = Scheduler::new(
        executor.clone(),
        std::sync::Arc::new(SystemClock),
        SchedulerConfig::default(),
    );
    // Fire times that passed while the schedules were being stored are not the
    // scheduler's to meet: count from its start.
    let started = Utc::now();
    let cpu0 = process_cpu_seconds();
    let start = Instant::now();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(scheduler.clone().run(async {
        let _ = stopped.await;
    }));
    tokio::time::sleep(std::time::Duration::from_secs(seconds)).await;
    let _ = stop.send(());
    task.await?;
    let cpu = process_cpu_seconds().zip(cpu0).map(|(a, b)| a - b);
    let elapsed = start.elapsed().as_secs_f64();
    store.flush().await?;
    let mut lead = store.schedule_run_lead_times(started).await?;
    lead.sort_by(f64::total_cmp);
    let late = lead.iter().filter(|l| **l > 1.0).count();
    let _ = std::fs::remove_dir_all(&dir);
    Ok(format!(
        "weir schedules n={n} seconds={elapsed:.0} runs={} created_after_fire_by_more_than_1s={late} \
         latest_creation_s={:.3} scheduler_busy_percent={:.2} process_cpu_percent_of_one_core={}",
        lead.len(),
        lead.last().copied().unwrap_or(0.0),
        100.0 * scheduler.busy().as_secs_f64() / elapsed,
        cpu.map_or("unknown".into(), |c| format!("{:.2}", 100.0 * c / elapsed)),
    ))
}

/// User plus system CPU time of this process, from /proc (Linux).
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit(')').next()?.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}
