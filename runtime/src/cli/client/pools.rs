//! `weir pool ls`, `weir pool queue ...` and `weir limit ls`: the work pools, their work
//! queues and the tag concurrency limits, with how many runs each holds now.

use super::ClientOpts;
use super::output::{Table, print_json, text};
use clap::Subcommand;
use serde_json::json;
use std::process::ExitCode;

#[derive(Subcommand, Debug)]
pub enum PoolCommand {
    /// List work pools: their concurrency limits and the runs running in each.
    Ls,
    /// A pool's work queues: when the pool is at its limit, waiting runs start by their
    /// queue's priority (1 first), then by expected start.
    Queue {
        #[command(subcommand)]
        command: QueueCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum QueueCommand {
    /// Create or change a work queue of POOL.
    Set {
        pool: String,
        name: String,
        /// 1 starts first.
        #[arg(long)]
        priority: Option<i64>,
        /// Runs of the queue running at once at most.
        #[arg(long)]
        limit: Option<i64>,
        /// Remove the queue's limit.
        #[arg(long, conflicts_with = "limit")]
        no_limit: bool,
        /// Hold the queue's runs (or `--paused=false` to let them go).
        #[arg(long)]
        paused: Option<bool>,
    },
    /// List the work queues of POOL.
    Ls { pool: String },
    /// Delete a work queue (not while deployments use it).
    Rm { pool: String, name: String },
}

#[derive(Subcommand, Debug)]
pub enum LimitCommand {
    /// List tag concurrency limits and the runs holding each.
    Ls,
}

pub async fn pool(opts: &ClientOpts, command: PoolCommand) -> anyhow::Result<ExitCode> {
    if let PoolCommand::Queue { command } = command {
        return queue(opts, command).await;
    }
    let items = opts.api()?.list(&["api", "pools"], &[], None).await?;
    if opts.json {
        print_json(&json!(items));
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = Table::new(&["name", "type", "limit", "running", "paused"]);
    for p in &items {
        t.row(vec![
            text(&p["name"]),
            text(&p["type"]),
            limit(&p["concurrency_limit"]),
            text(&p["running"]),
            if p["paused"] == true { "yes" } else { "no" }.into(),
        ]);
    }
    print!("{t}");
    Ok(ExitCode::SUCCESS)
}

pub async fn limit_ls(opts: &ClientOpts, command: LimitCommand) -> anyhow::Result<ExitCode> {
    let LimitCommand::Ls = command;
    let items = opts
        .api()?
        .list(&["api", "concurrency-limits"], &[], None)
        .await?;
    if opts.json {
        print_json(&json!(items));
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = Table::new(&["tag", "limit", "running"]);
    for l in &items {
        t.row(vec![
            text(&l["tag"]),
            text(&l["limit"]),
            text(&l["running"]),
        ]);
    }
    if t.is_empty() {
        println!("No concurrency limits.");
    } else {
        print!("{t}");
    }
    Ok(ExitCode::SUCCESS)
}

async fn queue(opts: &ClientOpts, command: QueueCommand) -> anyhow::Result<ExitCode> {
    let api = opts.api()?;
    match command {
        QueueCommand::Set {
            pool,
            name,
            priority,
            limit,
            no_limit,
            paused,
        } => {
            let mut body = serde_json::Map::new();
            if let Some(p) = priority {
                body.insert("priority".into(), json!(p));
            }
            if let Some(l) = limit {
                body.insert("concurrency_limit".into(), json!(l));
            }
            if no_limit {
                body.insert("concurrency_limit".into(), serde_json::Value::Null);
            }
            if let Some(p) = paused {
                body.insert("paused".into(), json!(p));
            }
            let q = api
                .put(&["api", "pools", &pool, "queues", &name], body.into())
                .await?;
            if opts.json {
                print_json(&q);
            } else {
                println!(
                    "Set work queue {name} of pool {pool} (priority {})",
                    text(&q["priority"])
                );
            }
        }
        QueueCommand::Ls { pool } => {
            let items = api
                .list(&["api", "pools", &pool, "queues"], &[], None)
                .await?;
            if opts.json {
                print_json(&json!(items));
                return Ok(ExitCode::SUCCESS);
            }
            let mut t = Table::new(&["name", "priority", "limit", "running", "paused"]);
            for q in &items {
                t.row(vec![
                    text(&q["name"]),
                    text(&q["priority"]),
                    limit(&q["concurrency_limit"]),
                    text(&q["running"]),
                    if q["paused"] == true { "yes" } else { "no" }.into(),
                ]);
            }
            print!("{t}");
        }
        QueueCommand::Rm { pool, name } => {
            api.delete(&["api", "pools", &pool, "queues", &name])
                .await?;
            if !opts.json {
                println!("Deleted work queue {name} of pool {pool}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A concurrency limit; none is no limit.
fn limit(v: &serde_json::Value) -> String {
    if v.is_null() { "none".into() } else { text(v) }
}
