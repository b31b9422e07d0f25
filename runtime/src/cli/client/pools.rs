//! `weir pool ls` and `weir limit ls`: the work pools and the tag concurrency limits, with
//! how many runs each holds now.

use super::ClientOpts;
use super::output::{Table, print_json, text};
use clap::Subcommand;
use serde_json::json;
use std::process::ExitCode;

#[derive(Subcommand, Debug)]
pub enum PoolCommand {
    /// List work pools: their concurrency limits and the runs running in each.
    Ls,
}

#[derive(Subcommand, Debug)]
pub enum LimitCommand {
    /// List tag concurrency limits and the runs holding each.
    Ls,
}

pub async fn pool(opts: &ClientOpts, command: PoolCommand) -> anyhow::Result<ExitCode> {
    let PoolCommand::Ls = command;
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

/// A concurrency limit; none is no limit.
fn limit(v: &serde_json::Value) -> String {
    if v.is_null() { "none".into() } else { text(v) }
}
