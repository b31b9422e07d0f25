//! `weir bench burst N`: a good tenant's latency while another address sends N bad
//! requests (bad API keys, bad admin tokens, guessed webhook tokens), measured on a
//! server with the default limits and, in the same run, on one with the limits on failed
//! authentications and per address turned off, so the table shows what they buy. The
//! good tenant lists its runs (`GET /api/flow-runs?limit=10`: a key check and a query)
//! 200 times a second from 127.0.0.1; the attacker sends from 127.0.0.2 at a
//! steady rate (`WEIR_BENCH_RATE`, 5,000 a second: the burst lasts two seconds), with up
//! to 64 requests in flight. Both share this machine's cores with the server, as they
//! would not in production, so the attacker's own work is in the numbers too.

use crate::api::rate::RateConfig;
use crate::server::{Server, ServerConfig};
use anyhow::Context;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::{Duration, Instant};

/// Requests the good tenant times while idle.
const IDLE_SAMPLES: usize = 1000;
/// The good tenant's pace: a request every 5 ms (200 a second).
const GOOD_EVERY: Duration = Duration::from_millis(5);
const IN_FLIGHT: usize = 64;

fn attack_rate() -> f64 {
    std::env::var("WEIR_BENCH_RATE")
        .ok()
        .and_then(|r| r.parse::<f64>().ok())
        .filter(|r| *r > 0.0)
        .unwrap_or(5000.0)
}

struct Phase {
    p50: f64,
    p99: f64,
    samples: usize,
}

fn phase(mut ms: Vec<f64>) -> Phase {
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() as f64 * q) as usize).min(ms.len() - 1)];
    Phase {
        p50: at(0.50),
        p99: at(0.99),
        samples: ms.len(),
    }
}

pub async fn run(n: u64, examples: &Path) -> anyhow::Result<String> {
    let n = if n == 0 { 10_000 } else { n };
    let mut out = format!(
        "bench burst: a good tenant's GET /api/flow-runs while another address sends {n} bad \
         requests at {:.0}/s (at most {IN_FLIGHT} in flight)\n\n\
         | server | idle p50 / p99 ms | during the burst p50 / p99 ms | p99 ratio | bad requests answered 401/404 | 429 | refused at connect | burst rate |\n\
         |---|---|---|---|---|---|---|---|\n",
        attack_rate()
    );
    for (label, rate) in [
        ("default limits", RateConfig::default()),
        ("no limits", RateConfig::unlimited()),
    ] {
        let line = one(n, examples, rate)
            .await
            .with_context(|| format!("the {label} server"))?;
        writeln!(out, "| {label} | {line} |")?;
    }
    Ok(out)
}

async fn one(n: u64, examples: &Path, rate: RateConfig) -> anyhow::Result<String> {
    let dir = std::env::temp_dir().join(format!("weir-bench-burst-{}", uuid::Uuid::now_v7()));
    let mut config = ServerConfig::new(dir.clone());
    config.run_scheduler = false;
    config.rate = rate;
    let server = Server::start(config).await?;
    let demo =
        crate::server::demo::setup(&server, examples, &crate::server::demo::env_file(&dir)).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.serve(listener, async {
        let _ = stopped.await;
    }));
    let good = reqwest::Client::new();
    let list = format!("{base}/api/flow-runs?limit=10");
    let timed = |good: reqwest::Client, list: String, key: String| async move {
        tokio::time::sleep(GOOD_EVERY).await;
        let t = Instant::now();
        let res = good.get(&list).bearer_auth(&key).send().await?;
        anyhow::ensure!(res.status() == 200, "the good tenant got {}", res.status());
        res.bytes().await?;
        Ok::<f64, anyhow::Error>(t.elapsed().as_secs_f64() * 1000.0)
    };
    for _ in 0..100 {
        timed(good.clone(), list.clone(), demo.api_key.clone()).await?;
    }
    let mut idle = Vec::with_capacity(IDLE_SAMPLES);
    for _ in 0..IDLE_SAMPLES {
        idle.push(timed(good.clone(), list.clone(), demo.api_key.clone()).await?);
    }

    let attacker = reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)))
        .timeout(Duration::from_secs(30))
        .build()?;
    let started = Instant::now();
    let burst = {
        let base = base.clone();
        let every = Duration::from_secs_f64(1.0 / attack_rate());
        tokio::spawn(async move {
            let in_flight = std::sync::Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
            let mut sent = Vec::with_capacity(n as usize);
            let start = tokio::time::Instant::now();
            for i in 0..n {
                tokio::time::sleep_until(start + every.mul_f64(i as f64)).await;
                let Ok(permit) = in_flight.clone().acquire_owned().await else {
                    break;
                };
                let req = match i % 3 {
                    0 => attacker
                        .get(format!("{base}/api/flow-runs"))
                        .bearer_auth(format!("weir_guess{i:08}_0123456789abcdef")),
                    1 => attacker
                        .post(format!("{base}/api/workspaces"))
                        .bearer_auth("not-the-admin-token")
                        .json(&serde_json::json!({"name": "x"})),
                    _ => attacker
                        .post(format!("{base}/hooks/guess{i:032}"))
                        .json(&serde_json::json!({})),
                };
                sent.push(tokio::spawn(async move {
                    let status = req.send().await.map(|r| r.status().as_u16()).unwrap_or(0);
                    drop(permit);
                    status
                }));
            }
            let mut codes = Vec::with_capacity(sent.len());
            for s in sent {
                codes.push(s.await.unwrap_or(0));
            }
            codes
        })
    };
    let mut during = Vec::new();
    while !burst.is_finished() {
        during.push(timed(good.clone(), list.clone(), demo.api_key.clone()).await?);
    }
    let codes = burst.await?;
    let burst_secs = started.elapsed().as_secs_f64();
    let _ = stop.send(());
    serving.await??;
    let _ = std::fs::remove_dir_all(&dir);

    let (idle, during) = (phase(idle), phase(during));
    let failed = codes.iter().filter(|c| matches!(c, 401 | 404)).count();
    let limited = codes.iter().filter(|c| **c == 429).count();
    let closed = codes.iter().filter(|c| **c == 0).count();
    Ok(format!(
        "{:.2} / {:.2} | {:.2} / {:.2} ({} samples) | {:.2} | {failed} | {limited} | {closed} | {:.0}/s",
        idle.p50,
        idle.p99,
        during.p50,
        during.p99,
        during.samples,
        during.p99 / idle.p99,
        n as f64 / burst_secs
    ))
}
