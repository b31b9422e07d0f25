//! `weir gcl`: the workspace's global concurrency and rate limits (Prefect's
//! `prefect global-concurrency-limit`), which flows occupy with `weir_sdk::concurrency`.

use super::ClientOpts;
use super::output::{Table, print_json, text};
use clap::Subcommand;
use serde_json::{Value, json};
use std::process::ExitCode;

#[derive(Subcommand, Debug)]
pub enum GlobalLimitCommand {
    /// Create or change a limit of SLOTS slots.
    Set {
        name: String,
        slots: i64,
        /// Makes it a rate limit: occupied slots come back at this rate.
        #[arg(long)]
        slot_decay_per_second: Option<f64>,
        /// Keep it, but limit nothing.
        #[arg(long)]
        inactive: bool,
    },
    /// Show a limit and the slots occupied now.
    Get { name: String },
    /// List limits.
    Ls,
    /// Delete a limit (runs waiting for it go ahead).
    Rm { name: String },
}

fn row(l: &Value) -> Vec<String> {
    vec![
        text(&l["name"]),
        text(&l["limit"]),
        match l["slot_decay_per_second"].as_f64() {
            Some(d) => format!("{d}/s"),
            None => "-".into(),
        },
        format!("{:.1}", l["active_slots"].as_f64().unwrap_or(0.0)),
        if l["active"].as_bool() == Some(false) {
            "no".into()
        } else {
            "yes".into()
        },
    ]
}

const HEAD: &[&str] = &["name", "limit", "decay", "occupied", "active"];

pub async fn global_limit(
    opts: &ClientOpts,
    command: GlobalLimitCommand,
) -> anyhow::Result<ExitCode> {
    let api = opts.api()?;
    const API: &str = "global-concurrency-limits";
    match command {
        GlobalLimitCommand::Set {
            name,
            slots,
            slot_decay_per_second,
            inactive,
        } => {
            let l = api
                .put(
                    &["api", API, &name],
                    json!({"limit": slots, "slot_decay_per_second": slot_decay_per_second,
                           "active": !inactive}),
                )
                .await?;
            if opts.json {
                print_json(&l);
            } else {
                println!("Set global concurrency limit {name}");
            }
        }
        GlobalLimitCommand::Get { name } => {
            let l = api.get(&["api", API, &name], &[]).await?;
            if opts.json {
                print_json(&l);
            } else {
                let mut t = Table::new(HEAD);
                t.row(row(&l));
                print!("{t}");
            }
        }
        GlobalLimitCommand::Ls => {
            let items = api.list(&["api", API], &[], None).await?;
            if opts.json {
                print_json(&json!(items));
            } else {
                let mut t = Table::new(HEAD);
                for l in &items {
                    t.row(row(l));
                }
                print!("{t}");
            }
        }
        GlobalLimitCommand::Rm { name } => {
            api.delete(&["api", API, &name]).await?;
            if !opts.json {
                println!("Deleted global concurrency limit {name}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
