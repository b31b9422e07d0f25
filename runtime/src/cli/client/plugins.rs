//! `weir plugin`: the plugins a workspace's flows call by name (`"http/request"`): add a
//! component as a plugin (a new version when it changed), list them with their tasks,
//! show one's versions and tasks' arguments, remove one.

use super::ClientOpts;
use super::output::{Table, print_json, text, time, truncate};
use clap::Subcommand;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand, Debug)]
pub enum PluginCommand {
    /// Upload a component and register it as the plugin NAME (its next version when the
    /// component is new to the plugin).
    Add {
        name: String,
        /// The component (.wasm) whose tasks flows will call as `NAME/<task>`.
        file: PathBuf,
        #[arg(long)]
        description: Option<String>,
    },
    /// List the plugins flows can call: the workspace's own and the built-in ones.
    Ls,
    /// Show a plugin's versions and its tasks' arguments.
    Show { name: String },
    /// Remove a plugin of the workspace, every version.
    Rm { name: String },
}

/// One line per task: how a flow calls it, and its arguments (required ones plain,
/// optional ones with `?`).
fn tasks_table(plugin: &Value) -> Table {
    let mut t = Table::new(&["call", "arguments", "description"]);
    for task in plugin["tasks"].as_array().into_iter().flatten() {
        let required: Vec<&str> = task["parameters"]["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let arguments: Vec<String> = task["parameters"]["properties"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(name, _)| {
                if required.contains(&name.as_str()) {
                    name.clone()
                } else {
                    format!("{name}?")
                }
            })
            .collect();
        let description = task["description"]
            .as_str()
            .and_then(|d| d.lines().next())
            .unwrap_or("");
        t.row(vec![
            text(&task["call"]),
            arguments.join(", "),
            truncate(description, 60),
        ]);
    }
    t
}

pub async fn plugin(opts: &ClientOpts, command: PluginCommand) -> anyhow::Result<ExitCode> {
    let api = opts.api()?;
    match command {
        PluginCommand::Add {
            name,
            file,
            description,
        } => {
            let (_, component) = super::push(&api, &file).await?;
            let digest = text(&component["digest"]);
            let (status, p) = api
                .post(
                    &["api", "plugins"],
                    json!({"name": name, "component": digest, "description": description}),
                )
                .await?;
            if opts.json {
                print_json(&p);
                return Ok(ExitCode::SUCCESS);
            }
            let how = if status == StatusCode::CREATED {
                "Registered"
            } else {
                "Already registered:"
            };
            println!(
                "{how} plugin {name} version {} (component sha256:{digest})",
                text(&p["version"])
            );
            print!("{}", tasks_table(&p));
        }
        PluginCommand::Ls => {
            let items = api.list(&["api", "plugins"], &[], None).await?;
            if opts.json {
                print_json(&json!(items));
                return Ok(ExitCode::SUCCESS);
            }
            let mut t = Table::new(&["name", "latest", "kind", "tasks", "registered"]);
            for p in &items {
                let tasks: Vec<String> = p["tasks"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|t| text(&t["name"]))
                    .collect();
                t.row(vec![
                    text(&p["name"]),
                    text(&p["version"]),
                    if p["builtin"] == true {
                        "built-in".into()
                    } else {
                        "workspace".into()
                    },
                    truncate(&tasks.join(", "), 60),
                    time(&p["created"]),
                ]);
            }
            print!("{t}");
        }
        PluginCommand::Show { name } => {
            let p = api.get(&["api", "plugins", &name], &[]).await?;
            if opts.json {
                print_json(&p);
                return Ok(ExitCode::SUCCESS);
            }
            let versions = p["versions"].as_array().cloned().unwrap_or_default();
            let kind = if p["builtin"] == true {
                "built-in"
            } else {
                "workspace"
            };
            println!(
                "Plugin {} ({kind}), {} version(s)",
                text(&p["name"]),
                versions.len()
            );
            let mut t = Table::new(&["version", "digest", "registered", "description"]);
            for v in &versions {
                t.row(vec![
                    text(&v["version"]),
                    truncate(&text(&v["digest"]), 16),
                    time(&v["created"]),
                    truncate(v["description"].as_str().unwrap_or(""), 50),
                ]);
            }
            print!("{t}");
            if let Some(latest) = versions.first() {
                println!("\nTasks of version {}:", text(&latest["version"]));
                print!("{}", tasks_table(latest));
            }
        }
        PluginCommand::Rm { name } => {
            api.delete(&["api", "plugins", &name]).await?;
            if !opts.json {
                println!("Removed plugin {name}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
