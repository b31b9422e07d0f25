//! The database failing under a real `weir server` taking webhook runs: PostgreSQL
//! killed and started again mid-load, a network to it that drops and stalls
//! connections, SQLite's disk full. Every trigger answered 202 ends in a final state,
//! exactly the runs answered 202 exist (a refused trigger never creates one later),
//! and none runs a step twice. Refusals are 503s with `Retry-After`.
//!
//! The PostgreSQL tests start a private server of their own (never the shared one);
//! they are skipped, saying why, where no PostgreSQL binaries are installed.

use crate::support::node::{Node, Witness};
use crate::support::postgres::PrivatePostgres;
use crate::support::proxy::{FaultPlan, FaultyProxy};
use crate::support::server::{Api, Ws};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BASIC: &str = "guest_basic";

fn seed() -> u64 {
    let seed = std::env::var("WEIR_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| chrono::Utc::now().timestamp_micros() as u64);
    eprintln!("fault seed: {seed} (set WEIR_TEST_SEED to replay)");
    seed
}

/// Deploys five witnessed steps behind a webhook; returns the hook's full URL.
async fn deploy_hooked(api: &Api, ws: &Ws, witness: &str) -> String {
    let digest = api.upload(&ws.key, BASIC).await;
    let d = api
        .deploy(
            &ws.key,
            json!({
                "name": "five", "component": digest, "flow": "durable_five",
                "parameters": {"url": witness, "millis": 0},
                "capabilities": {"allowed_hosts": ["127.0.0.1"]},
                "webhook": {"enabled": true},
            }),
        )
        .await;
    format!("{}{}", api.url, d["webhook"]["url"].as_str().unwrap())
}

/// What the webhook answered.
#[derive(Default)]
struct Answers {
    accepted: Vec<String>,
    /// 503s, each with its problem detail.
    refused: Vec<String>,
    /// Anything else: status and body.
    other: Vec<(u16, String)>,
}

impl Answers {
    fn summary(&self) -> String {
        let mut other: HashMap<u16, usize> = HashMap::new();
        for (s, _) in &self.other {
            *other.entry(*s).or_default() += 1;
        }
        format!(
            "{} accepted, {} refused with 503, others: {other:?}",
            self.accepted.len(),
            self.refused.len()
        )
    }
}

/// Fires one webhook; a 503 must carry `Retry-After` and problem details, and the
/// client then waits that long (at most 2 s) before its next trigger, as a well-behaved
/// sender does. Without the wait the load could be spent in refusals before the
/// database is back, and the test would not see writes resume.
async fn fire_one(client: &reqwest::Client, hook: &str, answers: &Mutex<Answers>) {
    if let Some(wait) = fire_once(client, hook, answers).await {
        tokio::time::sleep(wait.min(Duration::from_secs(2))).await;
    }
}

/// Fires one webhook and records the answer; returns the `Retry-After` of a 503.
async fn fire_once(
    client: &reqwest::Client,
    hook: &str,
    answers: &Mutex<Answers>,
) -> Option<Duration> {
    let sent = client.post(hook).json(&json!({})).send().await;
    let mut a = answers.lock().unwrap();
    let res = match sent {
        Ok(res) => res,
        Err(e) => {
            a.other.push((0, e.to_string()));
            return None;
        }
    };
    let status = res.status().as_u16();
    let retry_after = res
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let content_type = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    drop(a);
    let body: Value = res.json().await.unwrap_or(Value::Null);
    let mut a = answers.lock().unwrap();
    match status {
        202 => a
            .accepted
            .push(body["flow_run_id"].as_str().unwrap().to_owned()),
        503 => {
            let secs: u64 = retry_after
                .as_deref()
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("a 503 without Retry-After: {body}"));
            assert!(secs >= 1, "Retry-After {secs}");
            assert_eq!(content_type, "application/problem+json", "{body}");
            assert_eq!(body["status"], 503, "{body}");
            a.refused
                .push(body["detail"].as_str().unwrap_or_default().to_owned());
            return Some(Duration::from_secs(secs));
        }
        _ => a.other.push((status, body.to_string())),
    }
    None
}

/// `clients` concurrent clients firing `total` webhooks in all, in the background.
fn load(
    hook: String,
    total: usize,
    clients: usize,
) -> (Arc<Mutex<Answers>>, tokio::task::JoinHandle<()>) {
    let answers = Arc::new(Mutex::new(Answers::default()));
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let task = tokio::spawn({
        let answers = answers.clone();
        async move {
            let mut tasks = Vec::new();
            for _ in 0..clients {
                let (client, hook, answers, next) =
                    (client.clone(), hook.clone(), answers.clone(), next.clone());
                tasks.push(tokio::spawn(async move {
                    while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < total {
                        fire_one(&client, &hook, &answers).await;
                    }
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
        }
    });
    (answers, task)
}

async fn until(what: &str, within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while !cond() {
        if Instant::now() >= deadline {
            eprintln!("not within {within:?}: {what}");
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    true
}

/// Polls a run until it is final (a 503 while the database is away is polled again).
async fn wait_final(api: &Api, ws: &Ws, run: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let (status, r) = api.get(&format!("/api/flow-runs/{run}"), &ws.key).await;
        let t = r["state"]["type"].as_str().unwrap_or_default().to_owned();
        if status == 200 && matches!(t.as_str(), "COMPLETED" | "FAILED" | "CANCELLED" | "CRASHED") {
            return r;
        }
        assert!(
            status == 200 || status == 503,
            "reading run {run}: {status} {r}"
        );
        assert!(Instant::now() < deadline, "run {run} is still {t}: {r}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Every accepted run completed, each of its five steps started exactly once, and the
/// database holds exactly the accepted runs.
async fn assert_accepted_runs_complete_once(
    api: &Api,
    ws: &Ws,
    accepted: &[String],
    stored: &HashSet<String>,
    witness: &Witness,
) {
    let unique: HashSet<&String> = accepted.iter().collect();
    assert_eq!(unique.len(), accepted.len(), "a run id was answered twice");
    for run in accepted {
        let r = wait_final(api, ws, run, Duration::from_secs(90)).await;
        assert_eq!(r["state"]["type"], "COMPLETED", "{r}");
        assert_eq!(r["result"], json!(10), "{r}");
    }
    let events = witness.events();
    let mut starts: HashMap<(&str, u64), usize> = HashMap::new();
    for e in events.iter().filter(|e| e.kind == "start") {
        *starts.entry((e.run.as_str(), e.step)).or_default() += 1;
    }
    for run in accepted {
        for step in 0..5 {
            let n = starts.get(&(run.as_str(), step)).copied().unwrap_or(0);
            assert_eq!(n, 1, "step {step} of run {run} started {n} times");
        }
    }
    let accepted: HashSet<String> = accepted.iter().cloned().collect();
    let lost: Vec<_> = accepted.difference(stored).collect();
    assert!(
        lost.is_empty(),
        "runs answered 202 are not stored: {lost:?}"
    );
    let extra: Vec<_> = stored.difference(&accepted).collect();
    assert!(
        extra.is_empty(),
        "runs were created for triggers that were not answered 202: {extra:?}"
    );
    let ran: HashSet<&str> = events.iter().map(|e| e.run.as_str()).collect();
    let strays: Vec<_> = ran.iter().filter(|r| !accepted.contains(**r)).collect();
    assert!(strays.is_empty(), "runs not answered 202 ran: {strays:?}");
}

async fn stored_runs_postgres(url: &str) -> HashSet<String> {
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(url)
        .await
        .unwrap();
    let ids: Vec<String> =
        sqlx::query_scalar("SELECT id FROM flow_runs WHERE parent_flow_run_id IS NULL")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    ids.into_iter().collect()
}

async fn stored_runs_sqlite(path: &Path) -> HashSet<String> {
    let url = format!("sqlite:{}?mode=ro", path.display());
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    let ids: Vec<String> =
        sqlx::query_scalar("SELECT id FROM flow_runs WHERE parent_flow_run_id IS NULL")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    ids.into_iter().collect()
}

/// The end of a node's log, for failure messages.
fn log_tail(dir: &Path, node: &str) -> String {
    let log = std::fs::read_to_string(dir.join(format!("node-{node}.log"))).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

fn assert_no_panic(dir: &Path, node: &str) -> String {
    let log = std::fs::read_to_string(dir.join(format!("node-{node}.log"))).unwrap_or_default();
    assert!(!log.contains("panicked"), "the server panicked:\n{log}");
    log
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_killed_and_restarted_mid_load_loses_no_accepted_run_and_runs_none_twice() {
    let Some(mut pg) = PrivatePostgres::start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let witness = Witness::default();
    let witness_url = witness.start().await;
    let node = Node::start(dir.path(), Some(&pg.url()), "pg", &[]).await;
    let ws = node.workspace("restart").await;
    let hook = deploy_hooked(&node, &ws, &witness_url).await;

    let (answers, firing) = load(hook, 400, 6);
    assert!(
        until(
            "a first share of the load accepted",
            Duration::from_secs(60),
            || { answers.lock().unwrap().accepted.len() >= 80 }
        )
        .await
    );
    pg.kill().await;
    let before = answers.lock().unwrap().accepted.len();
    // Down until the server has refused some triggers (or for a few seconds at most).
    until(
        "a trigger refused while PostgreSQL is down",
        Duration::from_secs(4),
        || !answers.lock().unwrap().refused.is_empty(),
    )
    .await;
    pg.restart().await;
    tokio::time::timeout(Duration::from_secs(180), firing)
        .await
        .expect("the load ends")
        .unwrap();
    let answers = Arc::try_unwrap(answers).ok().unwrap().into_inner().unwrap();
    eprintln!(
        "PostgreSQL restarted after {before} accepted: {}",
        answers.summary()
    );
    assert!(
        answers.accepted.len() > before,
        "no trigger was accepted after the restart: writes did not resume ({})",
        answers.summary()
    );
    assert_accepted_runs_complete_once(
        &node,
        &ws,
        &answers.accepted,
        &stored_runs_postgres(&pg.url()).await,
        &witness,
    )
    .await;
    assert!(
        answers.other.iter().all(|(s, _)| *s != 500),
        "a database that is away is a 503, not a 500: {:?}",
        answers.other
    );
    let log = assert_no_panic(dir.path(), "pg");
    assert!(
        log.contains("the store commits again"),
        "the writer never noticed the restart:\n{log}"
    );
    node.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_network_dropping_and_stalling_connections_to_postgres_loses_no_accepted_run() {
    let Some(pg) = PrivatePostgres::start().await else {
        return;
    };
    let plan = FaultPlan {
        seed: seed(),
        drop_per_million: 4_000,
        stall_per_million: 2_000,
        stall: (Duration::from_millis(100), Duration::from_millis(2_000)),
    };
    let proxy = FaultyProxy::start(pg.addr(), plan).await;
    let url = format!("postgres://weir@{}/postgres", proxy.addr);
    let dir = tempfile::tempdir().unwrap();
    let witness = Witness::default();
    let witness_url = witness.start().await;
    let node = Node::start(dir.path(), Some(&url), "net", &[]).await;
    let ws = node.workspace("faulty").await;
    let hook = deploy_hooked(&node, &ws, &witness_url).await;

    proxy.enable(true);
    let (answers, firing) = load(hook, 300, 6);
    tokio::time::timeout(Duration::from_secs(240), firing)
        .await
        .expect("the load ends")
        .unwrap();
    let answers = Arc::try_unwrap(answers).ok().unwrap().into_inner().unwrap();
    eprintln!(
        "under faults: {}; proxy: {}",
        answers.summary(),
        proxy.stats.summary()
    );
    assert!(
        proxy.stats.faults() >= 5,
        "the proxy hardly broke anything: {}",
        proxy.stats.summary()
    );
    assert!(!answers.accepted.is_empty(), "{}", answers.summary());
    // Converges under the same faults.
    let stored = {
        for run in &answers.accepted {
            wait_final(&node, &ws, run, Duration::from_secs(120)).await;
        }
        proxy.enable(false);
        stored_runs_postgres(&pg.url()).await
    };
    assert_accepted_runs_complete_once(&node, &ws, &answers.accepted, &stored, &witness).await;
    assert_no_panic(dir.path(), "net");
    node.kill().await;
}

/// A small tmpfs of its own, unmounted on drop.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Result<Self, String> {
        std::fs::create_dir_all(at).unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
        }
        Ok(Self(at.to_owned()))
    }

    /// Fills the file system up with a file at `path`; returns its size.
    fn fill(&self, path: &Path) -> u64 {
        use std::io::Write as _;
        let mut f = std::fs::File::create(path).unwrap();
        let chunk = vec![0xA5u8; 64 * 1024];
        let mut written = 0u64;
        for _ in 0..100_000 {
            match f.write(&chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => written += n as u64,
            }
        }
        // Whatever is left in smaller pieces.
        for _ in 0..100_000 {
            match f.write(&chunk[..512]) {
                Ok(0) | Err(_) => break,
                Ok(n) => written += n as u64,
            }
        }
        let _ = f.flush();
        written
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

async fn fire_until_refused(client: &reqwest::Client, hook: &str, answers: &Mutex<Answers>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    for _ in 0..500 {
        fire_one(client, hook, answers).await;
        if !answers.lock().unwrap().refused.is_empty() || Instant::now() >= deadline {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_with_its_disk_full_refuses_triggers_with_503_and_loses_no_accepted_run() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("disk");
    let disk = match Tmpfs::mount(&mnt, "16m") {
        Ok(d) => d,
        Err(e) => {
            eprintln!("skipped: cannot mount a small tmpfs for the database ({e}); needs root");
            return;
        }
    };
    let db_path = mnt.join("weir.db");
    let db = format!("sqlite:{}", db_path.display());
    let witness = Witness::default();
    let witness_url = witness.start().await;
    let node = Node::start(dir.path(), Some(&db), "full", &[]).await;
    let ws = node.workspace("full").await;
    let hook = deploy_hooked(&node, &ws, &witness_url).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let answers = Mutex::new(Answers::default());
    for _ in 0..10 {
        fire_one(&client, &hook, &answers).await;
    }
    assert_eq!(
        answers.lock().unwrap().accepted.len(),
        10,
        "{}",
        answers.lock().unwrap().summary()
    );

    let filler = mnt.join("filler");
    let filled = disk.fill(&filler);
    eprintln!("filled the database's disk with {filled} bytes");
    fire_until_refused(&client, &hook, &answers).await;
    {
        let a = answers.lock().unwrap();
        assert!(
            !a.refused.is_empty(),
            "no trigger was refused: {}",
            a.summary()
        );
        assert!(
            a.refused.iter().any(|d| d.contains("full")),
            "the refusal says why: {:?}",
            a.refused
        );
        eprintln!("disk full: {}", a.summary());
    }
    // More triggers while the disk stays full: all refused, none accepted.
    let accepted_full = answers.lock().unwrap().accepted.len();
    for _ in 0..5 {
        fire_one(&client, &hook, &answers).await;
    }
    assert_eq!(answers.lock().unwrap().accepted.len(), accepted_full);
    // The API refuses the same way, with an idempotency key too (stored straight to the
    // database, not through the writer).
    let api_trigger = |key: Option<&str>| {
        let body = match key {
            Some(k) => json!({"idempotency_key": k}),
            None => json!({}),
        };
        node.req(reqwest::Method::POST, "/api/deployments/five/runs", &ws.key)
            .json(&body)
            .send()
    };
    for key in [None, Some("once")] {
        let res = api_trigger(key).await.unwrap();
        assert_eq!(res.status().as_u16(), 503, "{key:?}");
        assert!(res.headers().contains_key("retry-after"));
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["status"], 503, "{body}");
    }

    std::fs::remove_file(&filler).unwrap();
    // Writes resume by themselves: triggers are taken again.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut again = 0;
    while again < 10 {
        let n = answers.lock().unwrap().accepted.len();
        fire_one(&client, &hook, &answers).await;
        if answers.lock().unwrap().accepted.len() > n {
            again += 1;
        } else {
            assert!(
                Instant::now() < deadline,
                "triggers are still refused after the disk was freed: {}\n{}",
                answers.lock().unwrap().summary(),
                log_tail(dir.path(), "full")
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // The refused keyed trigger created nothing: the same key now makes a new run.
    let res = api_trigger(Some("once")).await.unwrap();
    assert_eq!(
        res.status().as_u16(),
        201,
        "the key was not used by the refused trigger"
    );
    let keyed: Value = res.json().await.unwrap();
    let mut answers = answers.into_inner().unwrap();
    answers
        .accepted
        .push(keyed["id"].as_str().unwrap().to_owned());
    eprintln!("after the disk was freed: {}", answers.summary());
    for run in &answers.accepted {
        wait_final(&node, &ws, run, Duration::from_secs(60)).await;
    }
    assert_accepted_runs_complete_once(
        &node,
        &ws,
        &answers.accepted,
        &stored_runs_sqlite(&db_path).await,
        &witness,
    )
    .await;
    assert!(
        answers.other.iter().all(|(s, _)| *s != 500),
        "a database that is away is a 503, not a 500: {:?}",
        answers.other
    );
    let log = assert_no_panic(dir.path(), "full");
    assert!(
        log.contains("database or disk is full"),
        "the server's log says why:\n{log}"
    );
    node.kill().await;
    drop(disk);
}
