//! `weir bench ui N`: the web UI's page times over a large history. Starts a server (on
//! a SQLite file, or on `--db postgres://...`), sets up the demo workspace, adds
//! deployments up to 100, generates N flow runs over the last 30 days with 10 task runs
//! and 20 log lines each (plus a run of 10,000 task runs), then requests every page and
//! filter over HTTP on a loopback port with a signed-in session and reports, per page,
//! the time to the last byte (p50, p99, max) and the page's size. With `WEIR_BENCH_KEEP`
//! set, the data directory (and its SQLite database) is kept.

use crate::server::ServerConfig;
use crate::store::Seed;
use anyhow::{Context, bail, ensure};
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

/// Flow runs generated per transaction.
const SLICE: u64 = 5_000;
const DEPLOYMENTS: usize = 100;
const TASKS_PER_RUN: u64 = 10;
const LOGS_PER_RUN: u64 = 20;
/// Task runs of the one large run.
const BIG_RUN_TASKS: u64 = 10_000;
/// Requests per page (after two to warm up).
const SAMPLES: usize = 30;

pub async fn run(runs: u64, examples: &Path, db: Option<&str>) -> anyhow::Result<String> {
    ensure!(runs >= 1000, "bench ui needs at least 1000 runs");
    let dir = std::env::temp_dir().join(format!("weir-bench-ui-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir)?;
    let result = run_in(runs, examples, db, &dir).await;
    if std::env::var_os("WEIR_BENCH_KEEP").is_some() {
        eprintln!("kept the server's data directory: {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
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
    let super::DemoServer {
        server,
        api_key,
        workspace_id,
        deployments,
        reused: reuse,
    } = super::demo_server(config, examples, DEPLOYMENTS).await?;
    let store = server.state.store().clone();

    let now_ms = chrono::Utc::now().timestamp_millis();
    let span_ms: i64 = 30 * 86_400_000;
    let seed = Seed {
        workspace_id: workspace_id.clone(),
        deployments,
        runs,
        tasks_per_run: TASKS_PER_RUN,
        logs_per_run: LOGS_PER_RUN,
        start_ms: now_ms - span_ms,
        step_ms: (span_ms / runs as i64).max(1),
    };
    let started = Instant::now();
    let mut lo = if reuse { runs } else { 0 };
    if reuse {
        eprintln!("timing the runs this bench generated in this database before");
    }
    while lo < runs {
        let hi = (lo + SLICE).min(runs);
        store.seed_runs(&seed, lo, hi).await?;
        lo = hi;
        eprint!(
            "\rgenerated {lo} of {runs} runs ({:.0} s)",
            started.elapsed().as_secs_f64()
        );
    }
    // The large run: one flow run of 10,000 task runs, just after the others.
    let big = Seed {
        runs: 1,
        tasks_per_run: BIG_RUN_TASKS,
        logs_per_run: LOGS_PER_RUN,
        start_ms: now_ms + 1,
        step_ms: 0,
        ..seed
    };
    if !reuse {
        store.seed_runs(&big, runs, runs + 1).await?;
    }
    let seeded = started.elapsed();
    eprintln!();
    while store.index_run_names(crate::store::NAMES_PER_PASS).await? > 0 {}
    store.analyze().await?;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.serve(listener, async {
        let _ = stopped.await;
    }));
    let base = format!("http://{addr}");
    crate::install_crypto_provider();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(120))
        .build()?;
    let res = http
        .post(format!("{base}/signin"))
        .header("origin", &base)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("key={}", crate::ui::urlencode(&api_key)))
        .send()
        .await?;
    let cookie = res
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .context("signing in set no cookie")?
        .to_owned();

    // Runs to open: the newest, one from the middle, the large one.
    let newest = store
        .list_flow_runs(
            &workspace_id,
            &crate::store::RunFilter {
                limit: 2,
                ..Default::default()
            },
        )
        .await?;
    let big_id = newest.first().context("no runs")?.id.clone();
    let typical = newest.get(1).context("no runs")?.id.clone();
    let middle = store
        .list_flow_runs(
            &workspace_id,
            &crate::store::RunFilter {
                until: Some(chrono::Utc::now() - chrono::Duration::days(15)),
                limit: 1,
                ..Default::default()
            },
        )
        .await?
        .first()
        .context("no run from the middle")?
        .id
        .clone();
    let rare = runs / 3;
    let pages: Vec<(&str, String)> = vec![
        ("dashboard (day)", "/".into()),
        ("dashboard (hour)", "/?window=1h".into()),
        ("dashboard (week)", "/?window=7d".into()),
        ("runs", "/runs".into()),
        ("runs: page 2", format!("/runs?before={typical}")),
        ("runs: page at 15 days", format!("/runs?before={middle}")),
        ("runs: failed", "/runs?state=FAILED".into()),
        ("runs: crashed", "/runs?state=CRASHED".into()),
        (
            "runs: failed or crashed",
            "/runs?state=FAILED&state=CRASHED".into(),
        ),
        ("runs: running", "/runs?state=RUNNING".into()),
        ("runs: deployment", "/runs?deployment=bench-042".into()),
        ("runs: flow", "/runs?flow=hello".into()),
        ("runs: tag", "/runs?tag=team-3".into()),
        ("runs: missing tag", "/runs?tag=nobody".into()),
        ("runs: name (1 in 20)", "/runs?name=brave".into()),
        ("runs: name (1 in 400)", "/runs?name=brave-otter".into()),
        ("runs: name (one run)", format!("/runs?name=-{rare}")),
        ("runs: last hour", "/runs?range=1h".into()),
        (
            "runs: completed last week",
            "/runs?range=7d&state=COMPLETED".into(),
        ),
        ("runs: with subflows", "/runs?subflows=1&future=1".into()),
        ("task runs", "/task-runs".into()),
        ("task runs: failed", "/task-runs?state=FAILED".into()),
        ("task runs: task", "/task-runs?task=load".into()),
        ("flow run", format!("/runs/{typical}")),
        ("flow run: 10,000 task runs", format!("/runs/{big_id}")),
        (
            "flow run: errors only",
            format!("/runs/{typical}?level=ERROR"),
        ),
        ("flow run logs", format!("/runs/{typical}/logs")),
        ("deployments", "/deployments".into()),
        ("deployment", "/deployments/hello".into()),
        ("run form", "/deployments/hello/run".into()),
        ("components", "/components".into()),
        ("artifacts", "/artifacts".into()),
        ("artifact key", "/artifacts/report-7".into()),
        ("settings", "/settings".into()),
    ];

    let backend = if store.is_postgres() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    let mut out = String::new();
    writeln!(
        out,
        "weir bench ui: {backend}, {runs} flow runs, {} task runs, {} log lines, {DEPLOYMENTS} deployments (generated in {:.0} s)",
        runs * TASKS_PER_RUN + BIG_RUN_TASKS,
        (runs + 1) * LOGS_PER_RUN,
        seeded.as_secs_f64()
    )?;
    writeln!(
        out,
        "| page | p50 ms | p99 ms | max ms | KB |\n|---|---:|---:|---:|---:|"
    )?;
    let mut worst = 0.0f64;
    for (label, path) in &pages {
        let url = format!("{base}{path}");
        let mut times = Vec::with_capacity(SAMPLES);
        let mut size = 0;
        for n in 0..SAMPLES + 2 {
            let t = Instant::now();
            let res = http.get(&url).header("cookie", &cookie).send().await?;
            let status = res.status();
            let body = res.bytes().await?;
            let took = t.elapsed().as_secs_f64() * 1000.0;
            if !status.is_success() {
                bail!("{path}: HTTP {status}: {}", String::from_utf8_lossy(&body));
            }
            size = body.len();
            if n >= 2 {
                times.push(took);
            }
        }
        times.sort_by(f64::total_cmp);
        let p =
            |q: f64| times[((times.len() as f64 * q).ceil() as usize).clamp(1, times.len()) - 1];
        worst = worst.max(p(0.99));
        writeln!(
            out,
            "| {label} | {:.1} | {:.1} | {:.1} | {:.1} |",
            p(0.5),
            p(0.99),
            times[times.len() - 1],
            size as f64 / 1024.0
        )?;
    }
    writeln!(out, "slowest p99: {worst:.1} ms")?;
    let _ = stop.send(());
    let _ = serving.await;
    Ok(out)
}
