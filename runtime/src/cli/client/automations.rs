//! `weir automation`: the workspace's automations (created and updated from the
//! deployment file's `automations:` by `weir deploy`, or from a JSON file here), their
//! runs, switching them on and off, and posting events to them.

use super::ClientOpts;
use super::output::{Table, print_json, text, time, truncate};
use crate::model::automation::{action_kinds, describe_trigger};
use anyhow::Context;
use clap::Subcommand;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand, Debug)]
pub enum AutomationCommand {
    /// Create an automation, or update the one of that name, from a JSON or YAML file
    /// (`{"name", "trigger", "actions", "description", "enabled", "webhook"}`; `webhook:
    /// {enabled: true, signed: true}` gives an `event` trigger a URL of its own, printed
    /// once).
    Apply { file: PathBuf },
    /// List automations.
    Ls,
    /// Show an automation and its latest runs.
    Show { name: String },
    /// List an automation's runs: what set each off and what its actions did.
    Runs {
        name: String,
        /// At most this many, newest first.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Switch an automation on.
    Enable { name: String },
    /// Switch an automation off (events meanwhile fire nothing).
    Disable { name: String },
    /// Post an event (JSON) to an automation whose trigger is `event`.
    Event {
        name: String,
        /// The event's body, JSON (default `{}`).
        #[arg(long, value_name = "JSON")]
        body: Option<String>,
    },
    /// Issue a new URL (and secret) for an automation's webhook; the old ones stop working.
    RotateWebhook { name: String },
    /// Delete an automation and its runs.
    Rm { name: String },
}

/// Creates the automation `spec` names, or updates the existing one; returns the answer
/// and whether it was created.
pub async fn apply(api: &super::api::Api, spec: &Value) -> anyhow::Result<(Value, bool)> {
    let name = spec["name"]
        .as_str()
        .context("an automation needs a `name`")?
        .to_owned();
    match api.get_opt(&["api", "automations", &name]).await? {
        Some(existing) => {
            let id = text(&existing["id"]);
            let mut body = spec.clone();
            if let Some(m) = body.as_object_mut() {
                m.retain(|k, _| {
                    [
                        "name",
                        "description",
                        "enabled",
                        "trigger",
                        "actions",
                        "webhook",
                    ]
                    .contains(&k.as_str())
                });
            }
            Ok((api.patch(&["api", "automations", &id], body).await?, false))
        }
        None => Ok((
            api.post(&["api", "automations"], spec.clone()).await?.1,
            true,
        )),
    }
}

/// The automation's webhook URL and secret when the server just issued them (they are
/// shown only then).
pub fn print_webhook(base: &str, a: &Value) {
    if let Some(url) = super::deploy::webhook_url(base, &a["webhook"]) {
        println!("  events: POST {url}");
        if let Some(secret) = a["webhook"]["secret"].as_str() {
            println!("  webhook secret: {secret}");
            println!("  The webhook's token and secret are shown only this once: store them now.");
        } else {
            println!("  The webhook's URL is shown only this once: store it now.");
        }
    }
}

fn runs_table(runs: &[Value]) -> Table {
    let mut t = Table::new(&["created", "state", "attempts", "event", "error"]);
    for r in runs {
        let event = match r["event"]["flow_run"]["name"].as_str() {
            Some(run) => format!("{} {}", run, text(&r["event"]["flow_run"]["state"]["name"])),
            None => text(&r["event"]["kind"]),
        };
        t.row(vec![
            time(&r["created"]),
            text(&r["state"]),
            text(&r["attempts"]),
            truncate(&event, 40),
            truncate(r["error"].as_str().unwrap_or(""), 60),
        ]);
    }
    t
}

async fn switch(
    opts: &ClientOpts,
    api: &super::api::Api,
    name: &str,
    on: bool,
) -> anyhow::Result<()> {
    let answer = api
        .patch(&["api", "automations", name], json!({"enabled": on}))
        .await?;
    if opts.json {
        print_json(&answer);
    } else {
        let how = if on { "enabled" } else { "disabled" };
        println!("Automation {name} {how}");
    }
    Ok(())
}

pub async fn automation(opts: &ClientOpts, command: AutomationCommand) -> anyhow::Result<ExitCode> {
    let api = opts.api()?;
    match command {
        AutomationCommand::Apply { file } => {
            let text_in = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let spec: Value = serde_yaml_ng::from_str(&text_in)
                .with_context(|| format!("{} is not JSON or YAML", file.display()))?;
            let (answer, created) = apply(&api, &spec).await?;
            if opts.json {
                print_json(&answer);
            } else {
                let verb = if created { "Created" } else { "Updated" };
                println!("{verb} automation {}", text(&answer["name"]));
                print_webhook(&api.base(), &answer);
            }
        }
        AutomationCommand::RotateWebhook { name } => {
            let (_, answer) = api
                .post(
                    &["api", "automations", &name, "webhook", "rotate"],
                    json!({}),
                )
                .await?;
            if opts.json {
                print_json(&answer);
            } else {
                println!("Rotated the webhook of automation {name}");
                print_webhook(&api.base(), &answer);
            }
        }
        AutomationCommand::Ls => {
            let items = api.list(&["api", "automations"], &[], None).await?;
            if opts.json {
                print_json(&json!(items));
                return Ok(ExitCode::SUCCESS);
            }
            let mut t = Table::new(&["name", "enabled", "when", "then"]);
            for a in &items {
                t.row(vec![
                    text(&a["name"]),
                    if a["enabled"] == true { "yes" } else { "no" }.into(),
                    truncate(&describe_trigger(&a["trigger"]), 50),
                    truncate(&action_kinds(&a["actions"]), 50),
                ]);
            }
            print!("{t}");
        }
        AutomationCommand::Show { name } => {
            let a = api.get(&["api", "automations", &name], &[]).await?;
            let runs = api
                .list(&["api", "automations", &name, "runs"], &[], Some(10))
                .await?;
            if opts.json {
                print_json(&json!({"automation": a, "runs": runs}));
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "Automation {} ({})",
                text(&a["name"]),
                if a["enabled"] == true {
                    "enabled"
                } else {
                    "disabled"
                }
            );
            println!("When: {}", describe_trigger(&a["trigger"]));
            if a["webhook"]["enabled"] == true {
                let signed = if a["webhook"]["signed"] == true {
                    ", signed"
                } else {
                    ""
                };
                println!("Webhook: /hooks/automations/<token>{signed}");
            }
            println!("Then: {}", action_kinds(&a["actions"]));
            println!("\nLatest runs:");
            print!("{}", runs_table(&runs));
        }
        AutomationCommand::Runs { name, limit } => {
            let runs = api
                .list(&["api", "automations", &name, "runs"], &[], Some(limit))
                .await?;
            if opts.json {
                print_json(&json!(runs));
            } else {
                print!("{}", runs_table(&runs));
            }
        }
        AutomationCommand::Enable { name } => switch(opts, &api, &name, true).await?,
        AutomationCommand::Disable { name } => switch(opts, &api, &name, false).await?,
        AutomationCommand::Event { name, body } => {
            let body: Value = match body {
                Some(b) => serde_json::from_str(&b).context("--body is not JSON")?,
                None => json!({}),
            };
            let (_, answer) = api
                .post(&["api", "automations", &name, "events"], body)
                .await?;
            if opts.json {
                print_json(&answer);
            } else {
                println!("Event posted to automation {name}");
            }
        }
        AutomationCommand::Rm { name } => {
            api.delete(&["api", "automations", &name]).await?;
            if !opts.json {
                println!("Deleted automation {name}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
