//! `weir bench history [N]`: what a long history costs the runs of today. On a server
//! with the demo deployed (a SQLite file, or `--db postgres://...`), times the hello
//! deployment's runs (trigger to completed, at 100 a second) and the runs list
//! (`GET /api/flow-runs`, its newest page and the hello deployment's), first on the empty
//! database, then again after generating N finished flow runs (10,000,000 by default)
//! over the last 30 days across 100 deployments, each with its state history, one task
//! run and one log line, and reports both with their ratio. With `WEIR_BENCH_KEEP` set,
//! the data directory (and its SQLite database) is kept.

use super::api::Client;
use crate::server::ServerConfig;
use crate::store::Seed;
use anyhow::ensure;
use serde_json::json;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

/// Flow runs generated per transaction.
const SLICE: u64 = 10_000;
const DEPLOYMENTS: usize = 100;
/// Runs timed a second, for how long; list requests timed per list.
const RATE: u64 = 100;
const SECONDS: u64 = 10;
const REQUESTS: usize = 1000;

pub async fn run(runs: u64, examples: &Path, db: Option<&str>) -> anyhow::Result<String> {
    let dir = std::env::temp_dir().join(format!("weir-bench-history-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir)?;
    let result = run_in(runs, examples, db, &dir).await;
    if std::env::var_os("WEIR_BENCH_KEEP").is_some() {
        eprintln!("kept the server's data directory: {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

/// Trigger to completed, and the two lists: p50 and p99 of each (ms).
struct Times([(f64, f64); 3]);

async fn measure(api: &Client, store: &crate::store::Store) -> anyhow::Result<Times> {
    let runs = api
        .timed_runs(store, "hello", json!({}), RATE, SECONDS)
        .await?;
    let newest = api.timed_get("/api/flow-runs?limit=50", REQUESTS).await?;
    let of_one = api
        .timed_get("/api/flow-runs?limit=50&deployment=hello", REQUESTS)
        .await?;
    Ok(Times([runs, newest, of_one]))
}

async fn run_in(
    runs: u64,
    examples: &Path,
    db: Option<&str>,
    dir: &Path,
) -> anyhow::Result<String> {
    let mut config = ServerConfig::new(dir.to_path_buf());
    config.db = db.map(str::to_owned);
    config.run_scheduler = false;
    config.rate = crate::api::rate::RateConfig::unlimited();
    let super::DemoServer {
        server,
        api_key,
        workspace_id,
        deployments,
        reused,
    } = super::demo_server(config, examples, DEPLOYMENTS).await?;
    ensure!(!reused, "the database has runs of this bench already");
    let store = server.state.store().clone();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.serve(listener, async {
        let _ = stopped.await;
    }));
    let api = Client::new(base, api_key);
    // Warm up: the hello component loaded, the first connections made.
    api.trigger_many("hello", json!({}), 200).await?;
    let empty = measure(&api, &store).await?;

    let now_ms = chrono::Utc::now().timestamp_millis();
    let span_ms: i64 = 30 * 86_400_000;
    let seed = Seed {
        workspace_id,
        deployments,
        runs,
        tasks_per_run: 1,
        logs_per_run: 1,
        // Ending before the runs timed above, so the newest page is theirs either way.
        start_ms: now_ms - span_ms - 3_600_000,
        step_ms: (span_ms / runs.max(1) as i64).max(1),
    };
    let started = Instant::now();
    let mut lo = 0;
    while lo < runs {
        let hi = (lo + SLICE).min(runs);
        store.seed_runs(&seed, lo, hi).await?;
        lo = hi;
        eprint!(
            "\rgenerated {lo} of {runs} runs ({:.0} s)",
            started.elapsed().as_secs_f64()
        );
    }
    eprintln!();
    while store.index_run_names(crate::store::NAMES_PER_PASS).await? > 0 {}
    store.analyze().await?;
    let seeded = started.elapsed().as_secs_f64();
    let full = measure(&api, &store).await?;
    let _ = stop.send(());
    let _ = serving.await;

    let mut out = format!(
        "bench history: the hello deployment's runs (trigger to completed, {RATE}/s for \
         {SECONDS} s) and the runs list ({REQUESTS} requests each), on an empty database and \
         with {runs} finished runs (generated in {seeded:.0} s)\n\n\
         | | empty p50 / p99 ms | {runs} runs p50 / p99 ms | p99 ratio |\n|---|---|---|---|\n"
    );
    for (i, label) in [
        "trigger to completed",
        "GET /api/flow-runs?limit=50",
        "GET /api/flow-runs?limit=50&deployment=hello",
    ]
    .iter()
    .enumerate()
    {
        let (e, f) = (empty.0[i], full.0[i]);
        writeln!(
            out,
            "| {label} | {:.2} / {:.2} | {:.2} / {:.2} | {:.2} |",
            e.0,
            e.1,
            f.0,
            f.1,
            f.1 / e.1
        )?;
    }
    if db.is_none() {
        let bytes = std::fs::metadata(dir.join("weir.db")).map_or(0, |m| m.len());
        writeln!(
            out,
            "\nThe SQLite file: {:.1} GiB",
            bytes as f64 / (1u64 << 30) as f64
        )?;
    }
    Ok(out)
}
