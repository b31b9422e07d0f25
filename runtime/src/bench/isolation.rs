//! `weir bench isolation --component guest_basic.wasm`: a neighbour tenant's one-task
//! runs, timed from request to final state, alone and then while hostile tenants run
//! beside it in workspaces of their own (the flows of `tests/guests/basic`): tasks that
//! call themselves without end, runs that want every task slot, floods of one-byte log
//! lines, runs hoarding task arguments, and crowds of memory-hungry tasks. Everything is
//! persisted to a SQLite file. The server's memory budget is set to 2 GiB (or
//! `WEIR_BENCH_BUDGET_MB`) and the process's peak RSS is reported beside it.

use crate::host::Engine;
use crate::model::limits::{Limits, MemoryBudget};
use crate::orchestrate::{FlowRequest, Orchestrator};
use crate::store::Store;
use anyhow::{Context, ensure};
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const IDLE_SAMPLES: usize = 300;

fn budget_mb() -> usize {
    std::env::var("WEIR_BENCH_BUDGET_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|v| *v > 0)
        .unwrap_or(2048)
}

/// The hostile tenants: (workspace, flow, parameters, copies).
fn hostile() -> Vec<(&'static str, &'static str, Value, usize)> {
    vec![
        ("recursion", "endless_recursion", json!({}), 4),
        ("hog", "slot_hog", json!({"n": 2000, "millis": 2000}), 2),
        ("flood", "tiny_log_flood", json!({"lines": 1_000_000}), 4),
        (
            "hoard",
            "hoard_arguments",
            json!({"n": 100_000, "kib": 64}),
            2,
        ),
        (
            "crowd",
            "memory_crowd",
            json!({"n": 64, "mib": 100, "millis": 3000}),
            2,
        ),
    ]
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)]
}

pub async fn run(component: &Path) -> anyhow::Result<String> {
    let dir = std::env::temp_dir().join(format!("weir-bench-isolation-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir)?;
    let result = run_in(component, &dir).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn run_in(component: &Path, dir: &Path) -> anyhow::Result<String> {
    let budget = budget_mb();
    let limits = Limits {
        memory_budget: MemoryBudget::new(budget << 20),
        ..Limits::default()
    };
    let engine = Engine::new(limits, Some(dir.join("compiled")))?;
    let store = Store::open_sqlite(&dir.join("weir.db")).await?;
    let orch = Orchestrator::new(engine, store);
    let bytes = std::fs::read(component).with_context(|| {
        format!(
            "cannot read {} (build it with scripts/build-guests: tests/guests/basic)",
            component.display()
        )
    })?;
    let loaded = orch.engine().load(&bytes).await?;
    let request = |workspace: &str, flow: &str, params: Value| {
        let mut r = FlowRequest::new(loaded.clone(), flow, params);
        r.workspace_id = Some(workspace.to_owned());
        r
    };
    let neighbour = |orch: Arc<Orchestrator>| {
        let r = request("neighbour", "map_flow", json!({"n": 1}));
        async move {
            let t = Instant::now();
            let out = orch.run_flow(r).await?;
            ensure!(
                out.state.is_completed(),
                "a neighbour run ended {}",
                out.state
            );
            Ok::<f64, anyhow::Error>(t.elapsed().as_secs_f64() * 1000.0)
        }
    };
    for _ in 0..50 {
        neighbour(orch.clone()).await?;
    }
    let mut idle = Vec::with_capacity(IDLE_SAMPLES);
    for _ in 0..IDLE_SAMPLES {
        idle.push(neighbour(orch.clone()).await?);
    }

    let started = Instant::now();
    let mut attacks = Vec::new();
    for (workspace, flow, params, copies) in hostile() {
        for _ in 0..copies {
            let orch = orch.clone();
            let r = request(workspace, flow, params.clone());
            attacks.push(tokio::spawn(async move {
                let out = orch.run_flow(r).await;
                (
                    flow,
                    out.map(|o| o.state.to_string())
                        .unwrap_or_else(|e| e.to_string()),
                )
            }));
        }
    }
    let mut during = Vec::new();
    let mut peak_budget = 0;
    while attacks.iter().any(|a| !a.is_finished()) && started.elapsed() < Duration::from_secs(60) {
        during.push(neighbour(orch.clone()).await?);
        peak_budget = peak_budget.max(orch.engine().limits().memory_budget.used());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut ends = std::collections::BTreeMap::<String, usize>::new();
    for a in attacks {
        if a.is_finished() {
            let (flow, state) = a.await?;
            *ends.entry(format!("{flow}: {state}")).or_default() += 1;
        } else {
            a.abort();
            *ends.entry("still running after 60 s".into()).or_default() += 1;
        }
    }
    ensure!(
        !during.is_empty(),
        "the hostile runs ended before any sample"
    );
    idle.sort_by(f64::total_cmp);
    during.sort_by(f64::total_cmp);
    let (i50, i99) = (percentile(&idle, 0.5), percentile(&idle, 0.99));
    let (d50, d99) = (percentile(&during, 0.5), percentile(&during, 0.99));
    let mut out = format!(
        "bench isolation: a neighbour's one-task runs (request to final state) alone and \
         beside hostile tenants; memory budget {budget} MiB\n\n\
         | neighbour | p50 ms | p99 ms | samples |\n|---|---|---|---|\n\
         | alone | {i50:.2} | {i99:.2} | {} |\n\
         | beside the hostile runs | {d50:.2} | {d99:.2} | {} |\n\n\
         p99 ratio {:.2}; hostile phase {:.1} s; budget in use at most {} MiB of {budget}; \
         peak RSS {} MiB\n\nhow the hostile runs ended:\n",
        idle.len(),
        during.len(),
        d99 / i99,
        started.elapsed().as_secs_f64(),
        peak_budget >> 20,
        super::peak_rss_mb().map_or("?".to_owned(), |m| m.to_string())
    );
    for (end, n) in ends {
        let end: String = end.chars().take(200).collect();
        writeln!(out, "- {n} x {end}")?;
    }
    Ok(out)
}
