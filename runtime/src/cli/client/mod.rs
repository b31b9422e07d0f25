//! Client commands: `weir` talking to a Weir server over the HTTP API of docs/api.md.
//!
//! - [`api`]: the connection, its key, and errors from problem details.
//! - [`output`]: tables and cells.
//! - [`deploy`], [`deployment_file`]: `weir deploy` from flags or a `weir.yaml`.
//! - [`runs`]: `weir trigger` and `weir runs ...`, with [`sse`] for `logs --follow` and
//!   `trigger --wait`.
//! - [`deployments`]: `weir deployment ...` and `weir schedule ...`.
//! - [`pools`]: `weir pool ls` and `weir limit ls`.
//! - [`upload`]: a component's bytes sent with progress on a terminal.
//! - the small resources (workspaces, keys, components, artifacts, variables, secrets)
//!   are here.

mod api;
mod automations;
mod deploy;
pub(crate) mod deployment_file;
mod deployments;
mod limits;
pub(crate) mod output;
mod plugins;
mod pools;
mod runs;
mod sse;
mod upload;

use api::{Api, Body};
use clap::{ArgGroup, Args, Subcommand};
use output::{Table, print_json, text, time, truncate};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

/// Where the server is and who we are; accepted after any client command.
#[derive(Args, Debug, Clone)]
pub struct ClientOpts {
    /// The Weir server's URL.
    #[arg(
        long,
        global = true,
        env = "WEIR_API_URL",
        default_value = "http://127.0.0.1:4200"
    )]
    api_url: String,
    /// The workspace API key.
    #[arg(long, global = true, env = "WEIR_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// A PEM file of the CA certificate(s) that signed an https:// server's certificate,
    /// trusted beside the system's roots.
    #[arg(long, global = true, env = "WEIR_CA_CERT", value_name = "FILE")]
    ca_cert: Option<PathBuf>,
    /// Print the server's JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
}

impl ClientOpts {
    fn api(&self) -> anyhow::Result<Api> {
        self.api_as(self.api_key.clone())
    }

    /// The server, with another credential (the admin token).
    fn api_as(&self, key: Option<String>) -> anyhow::Result<Api> {
        Api::new(&self.api_url, key, self.ca_cert.as_deref())
    }
}

#[derive(Subcommand, Debug)]
pub enum ClientCommand {
    /// Create and list workspaces (with the server's admin token).
    Workspace {
        #[command(flatten)]
        opts: ClientOpts,
        #[command(subcommand)]
        command: WorkspaceCommand,
    },
    /// Manage the API keys of your workspace.
    Key {
        #[command(flatten)]
        opts: ClientOpts,
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Upload and list components.
    Component {
        #[command(flatten)]
        opts: ClientOpts,
        #[command(subcommand)]
        command: ComponentCommand,
    },
    /// Create or update deployments, from flags or from a deployment file (weir.yaml).
    Deploy(Box<deploy::DeployArgs>),
    /// List, show and delete deployments.
    Deployment {
        #[command(flatten)]
        opts: ClientOpts,
        #[command(subcommand)]
        command: deployments::DeploymentCommand,
    },
    /// List, pause, resume and delete deployments' schedules.
    Schedule {
        #[command(flatten)]
        opts: ClientOpts,
        #[command(subcommand)]
        command: deployments::ScheduleCommand,
    },
    /// Work pools.
    Pool {
        #[command(flatten)]
        opts: ClientOpts,
        #[command(subcommand)]
        command: pools::PoolCommand,
    },
    /// Tag concurrency limits.
    Limit {
        #[command(flatten)]
        opts: ClientOpts,
        #[command(subcommand)]
        command: pools::LimitCommand,
    },
    /// Global concurrency and rate limits that flows and tasks occupy.
    #[command(name = "global-concurrency-limit", visible_alias = "gcl")]
    GlobalLimit {
        #[command(flatten)]
        opts: ClientOpts,
        #[command(subcommand)]
        command: limits::GlobalLimitCommand,
    },
    /// Automations: runs that react to flow runs' states and to events.
    Automation {
        #[command(flatten)]
        opts: ClientOpts,
        #[command(subcommand)]
        command: automations::AutomationCommand,
    },
    /// Plugins: components whose tasks any flow calls by name (`http/request`).
    Plugin {
        #[command(flatten)]
        opts: ClientOpts,
        #[command(subcommand)]
        command: plugins::PluginCommand,
    },
    /// Create a flow run of a deployment.
    Trigger(runs::TriggerArgs),
    /// List, inspect, follow, cancel and retry flow runs.
    Runs {
        #[command(flatten)]
        opts: ClientOpts,
        #[command(subcommand)]
        command: runs::RunsCommand,
    },
    /// List artifacts of a flow run, or the versions of a keyed artifact.
    Artifacts {
        #[command(flatten)]
        opts: ClientOpts,
        #[command(subcommand)]
        command: ArtifactsCommand,
    },
    /// Workspace variables (JSON values that flows read).
    Variable {
        #[command(flatten)]
        opts: ClientOpts,
        #[command(subcommand)]
        command: VariableCommand,
    },
    /// Workspace secrets (write-only: values are never shown).
    Secret {
        #[command(flatten)]
        opts: ClientOpts,
        #[command(subcommand)]
        command: SecretCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum WorkspaceCommand {
    /// Create a workspace and its first API key.
    Create {
        name: String,
        /// The server's admin token.
        #[arg(long, env = "WEIR_ADMIN_TOKEN", hide_env_values = true)]
        admin_token: String,
    },
    /// List the server's workspaces.
    Ls {
        /// The server's admin token.
        #[arg(long, env = "WEIR_ADMIN_TOKEN", hide_env_values = true)]
        admin_token: String,
    },
    /// Show a workspace's quotas and usage, or change them (the quotas given replace
    /// those set; the others are kept unless --clear).
    Quota {
        /// The workspace's name or id.
        workspace: String,
        #[command(flatten)]
        quotas: QuotaArgs,
        /// Remove every quota not given here.
        #[arg(long)]
        clear: bool,
        /// The server's admin token.
        #[arg(long, env = "WEIR_ADMIN_TOKEN", hide_env_values = true)]
        admin_token: String,
    },
    /// Your workspace's quotas and what it uses (with its API key).
    Usage,
    /// Show how long your workspace keeps finished runs, or change it (with its API
    /// key): finished runs older than --days, or past the newest --runs, are deleted
    /// with their task runs, logs, artifacts and results.
    Retention {
        /// Days a finished run is kept, or `none`.
        #[arg(long, value_name = "N|none")]
        days: Option<String>,
        /// Finished runs kept at most (the newest), or `none`.
        #[arg(long, value_name = "N|none")]
        runs: Option<String>,
    },
}

/// A policy as the API shows it.
pub(crate) fn retention_of(v: &Value) -> crate::model::retention::Retention {
    let n = |k: &str| v[k].as_u64().and_then(|n| u32::try_from(n).ok());
    crate::model::retention::Retention {
        days: n("days"),
        runs: n("runs"),
    }
}

/// `N` or `none` (JSON null) for a `--flag`.
fn number_or_none(flag: &str, v: &str) -> anyhow::Result<Value> {
    if v == "none" {
        return Ok(Value::Null);
    }
    let n: u64 = v
        .replace('_', "")
        .parse()
        .map_err(|_| anyhow::anyhow!("--{flag} must be a whole number or 'none', not {v:?}"))?;
    Ok(json!(n))
}

/// Quotas of a workspace, each `none` to remove it.
#[derive(clap::Args, Debug, Default)]
pub struct QuotaArgs {
    /// Flow runs executing at once, across nodes.
    #[arg(long, value_name = "N|none")]
    runs_in_flight: Option<String>,
    /// Task slots held at once on a node.
    #[arg(long, value_name = "N|none")]
    task_slots: Option<String>,
    /// Memory of its instances and runs on a node, in MiB.
    #[arg(long, value_name = "MIB|none")]
    memory_mb: Option<String>,
    /// Logs, artifacts and results stored, in MiB.
    #[arg(long, value_name = "MIB|none")]
    storage_mb: Option<String>,
    /// Components it may hold.
    #[arg(long, value_name = "N|none")]
    components: Option<String>,
    /// Fuel (WebAssembly instructions) per hour, across nodes.
    #[arg(long, value_name = "N|none")]
    fuel_per_hour: Option<String>,
}

impl QuotaArgs {
    /// The quotas given, as JSON values (`null` for `none`).
    fn given(&self) -> anyhow::Result<Vec<(&'static str, Value)>> {
        let mut out = Vec::new();
        for (name, v) in [
            ("runs_in_flight", &self.runs_in_flight),
            ("task_slots", &self.task_slots),
            ("memory_mb", &self.memory_mb),
            ("storage_mb", &self.storage_mb),
            ("components", &self.components),
            ("fuel_per_hour", &self.fuel_per_hour),
        ] {
            let Some(v) = v else { continue };
            out.push((name, number_or_none(&name.replace('_', "-"), v)?));
        }
        Ok(out)
    }
}

#[derive(Subcommand, Debug)]
pub enum KeyCommand {
    /// Create an API key (its secret is shown once).
    Create {
        #[arg(long)]
        name: Option<String>,
    },
    /// List API keys (without secrets).
    Ls,
    /// Revoke an API key; it stops working at once.
    Revoke { id: String },
}

#[derive(Subcommand, Debug)]
pub enum ComponentCommand {
    /// Upload a component (.wasm).
    Push { file: PathBuf },
    /// List uploaded components.
    Ls,
}

#[derive(Subcommand, Debug)]
pub enum ArtifactsCommand {
    /// List artifacts.
    #[command(group(ArgGroup::new("of").required(true).args(["run", "key"])))]
    Ls {
        /// The artifacts of this flow run.
        #[arg(long)]
        run: Option<String>,
        /// The versions of the artifact with this key, latest first.
        #[arg(long)]
        key: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum VariableCommand {
    /// Set a variable. The value is JSON; text that is not JSON is stored as a string.
    Set { name: String, value: String },
    /// Print a variable's value.
    Get { name: String },
    /// List variables.
    Ls,
    /// Delete a variable.
    Rm { name: String },
}

#[derive(Subcommand, Debug)]
pub enum SecretCommand {
    /// Set a secret; `-` reads the value from standard input (keeps it out of shell history).
    Set { name: String, value: String },
    /// List secret names.
    Ls,
    /// Delete a secret.
    Rm { name: String },
}

pub async fn dispatch(command: ClientCommand) -> anyhow::Result<ExitCode> {
    match command {
        ClientCommand::Workspace { opts, command } => workspace(&opts, command).await,
        ClientCommand::Key { opts, command } => key(&opts, command).await,
        ClientCommand::Component { opts, command } => component(&opts, command).await,
        ClientCommand::Deploy(args) => deploy::run(*args).await,
        ClientCommand::Deployment { opts, command } => {
            deployments::deployment(&opts, command).await
        }
        ClientCommand::Schedule { opts, command } => deployments::schedule(&opts, command).await,
        ClientCommand::Pool { opts, command } => pools::pool(&opts, command).await,
        ClientCommand::Limit { opts, command } => pools::limit_ls(&opts, command).await,
        ClientCommand::GlobalLimit { opts, command } => limits::global_limit(&opts, command).await,
        ClientCommand::Plugin { opts, command } => plugins::plugin(&opts, command).await,
        ClientCommand::Automation { opts, command } => {
            automations::automation(&opts, command).await
        }
        ClientCommand::Trigger(args) => runs::trigger(args).await,
        ClientCommand::Runs { opts, command } => runs::dispatch(&opts, command).await,
        ClientCommand::Artifacts { opts, command } => artifacts(&opts, command).await,
        ClientCommand::Variable { opts, command } => variable(&opts, command).await,
        ClientCommand::Secret { opts, command } => secret(&opts, command).await,
    }
}

fn print_retention(opts: &ClientOpts, report: &Value) {
    if opts.json {
        print_json(report);
        return;
    }
    let own = retention_of(&report["policy"]);
    println!("Retention     {}", text(&report["summary"]));
    if own.is_empty() {
        println!("              (the server's default; set your own with --days or --runs)");
    }
    println!(
        "Deleted       {} runs{}",
        text(&report["runs_deleted"]),
        match report["last_deleted"].as_str() {
            Some(_) => format!(", last at {}", time(&report["last_deleted"])),
            None => String::new(),
        }
    );
    if let Some(ds) = report["deployments"].as_array().filter(|d| !d.is_empty()) {
        let mut t = Table::new(&["deployment", "its own retention"]);
        for d in ds {
            t.row(vec![text(&d["name"]), text(&d["summary"])]);
        }
        print!("\n{t}");
    }
}

async fn workspace(opts: &ClientOpts, command: WorkspaceCommand) -> anyhow::Result<ExitCode> {
    let (name, admin_token) = match command {
        WorkspaceCommand::Create { name, admin_token } => (name, admin_token),
        WorkspaceCommand::Quota {
            workspace,
            quotas,
            clear,
            admin_token,
        } => {
            let api = opts.api_as(Some(admin_token))?;
            let path = ["api", "workspaces", workspace.as_str(), "quotas"];
            let given = quotas.given()?;
            let report = if given.is_empty() && !clear {
                api.get(&path, &[]).await?
            } else {
                let mut body = if clear {
                    serde_json::Map::new()
                } else {
                    api.get(&path, &[]).await?["quotas"]
                        .as_object()
                        .cloned()
                        .unwrap_or_default()
                };
                for (name, value) in given {
                    body.insert(name.to_owned(), value);
                }
                api.put(&path, Value::Object(body)).await?
            };
            print_quotas(opts, &report);
            return Ok(ExitCode::SUCCESS);
        }
        WorkspaceCommand::Retention { days, runs } => {
            let api = opts.api()?;
            let path = ["api", "retention"];
            let report = if days.is_none() && runs.is_none() {
                api.get(&path, &[]).await?
            } else {
                let mut body = api.get(&path, &[]).await?["policy"]
                    .as_object()
                    .cloned()
                    .unwrap_or_default();
                if let Some(v) = days {
                    body.insert("days".into(), number_or_none("days", &v)?);
                }
                if let Some(v) = runs {
                    body.insert("runs".into(), number_or_none("runs", &v)?);
                }
                api.put(&path, Value::Object(body)).await?
            };
            print_retention(opts, &report);
            return Ok(ExitCode::SUCCESS);
        }
        WorkspaceCommand::Usage => {
            let report = opts.api()?.get(&["api", "usage"], &[]).await?;
            print_quotas(opts, &report);
            return Ok(ExitCode::SUCCESS);
        }
        WorkspaceCommand::Ls { admin_token } => {
            let api = opts.api_as(Some(admin_token))?;
            let items = api.list(&["api", "workspaces"], &[], None).await?;
            if opts.json {
                print_json(&json!(items));
            } else {
                let mut t = Table::new(&["id", "name", "created"]);
                for w in &items {
                    t.row(vec![text(&w["id"]), text(&w["name"]), time(&w["created"])]);
                }
                print!("{t}");
            }
            return Ok(ExitCode::SUCCESS);
        }
    };
    let api = opts.api_as(Some(admin_token))?;
    let (_, created) = api
        .post(&["api", "workspaces"], json!({"name": name}))
        .await?;
    if opts.json {
        print_json(&created);
    } else {
        let ws = &created["workspace"];
        println!(
            "Created workspace '{}' ({})",
            text(&ws["name"]),
            text(&ws["id"])
        );
        print_secret_key(&created["key"]);
    }
    Ok(ExitCode::SUCCESS)
}

/// A workspace's quotas beside what it uses.
fn print_quotas(opts: &ClientOpts, report: &Value) {
    if opts.json {
        print_json(report);
        return;
    }
    let (q, u) = (&report["quotas"], &report["usage"]);
    let quota = |v: &Value| match v {
        Value::Null => "none".to_owned(),
        v => v.to_string(),
    };
    println!(
        "Workspace '{}' ({})",
        text(&report["workspace"]),
        text(&report["workspace_id"])
    );
    let mut t = Table::new(&["", "quota", "used"]);
    let mib = |v: &Value| format!("{:.1} MiB", v.as_f64().unwrap_or(0.0) / (1 << 20) as f64);
    t.row(vec![
        "runs in flight (this node)".into(),
        quota(&q["runs_in_flight"]),
        u["runs_in_flight"].to_string(),
    ]);
    t.row(vec![
        "task slots (this node)".into(),
        quota(&q["task_slots"]),
        u["task_slots"].to_string(),
    ]);
    t.row(vec![
        "memory MiB (this node)".into(),
        quota(&q["memory_mb"]),
        mib(&u["memory_bytes"]),
    ]);
    t.row(vec![
        "storage MiB".into(),
        quota(&q["storage_mb"]),
        mib(&u["storage_bytes"]),
    ]);
    t.row(vec![
        "components".into(),
        quota(&q["components"]),
        u["components"].to_string(),
    ]);
    t.row(vec![
        "fuel per hour".into(),
        quota(&q["fuel_per_hour"]),
        u["fuel_this_hour"].to_string(),
    ]);
    t.row(vec![
        "CPU seconds this hour".into(),
        String::new(),
        format!("{:.2}", u["cpu_seconds_this_hour"].as_f64().unwrap_or(0.0)),
    ]);
    print!("{t}");
}

fn print_secret_key(key: &Value) {
    println!("API key {}: {}", text(&key["id"]), text(&key["secret"]));
    println!("The key's secret is shown only this once: store it now (export WEIR_API_KEY=...).");
}

async fn key(opts: &ClientOpts, command: KeyCommand) -> anyhow::Result<ExitCode> {
    let api = opts.api()?;
    match command {
        KeyCommand::Create { name } => {
            let body = match name {
                Some(n) => json!({"name": n}),
                None => json!({}),
            };
            let (_, key) = api.post(&["api", "keys"], body).await?;
            if opts.json {
                print_json(&key);
            } else {
                print_secret_key(&key);
            }
        }
        KeyCommand::Ls => {
            let keys = api.list(&["api", "keys"], &[], None).await?;
            if opts.json {
                print_json(&json!(keys));
            } else {
                let mut t = Table::new(&["id", "prefix", "name", "created"]);
                for k in &keys {
                    t.row(vec![
                        text(&k["id"]),
                        text(&k["prefix"]),
                        text(&k["name"]),
                        time(&k["created"]),
                    ]);
                }
                print!("{t}");
            }
        }
        KeyCommand::Revoke { id } => {
            api.delete(&["api", "keys", &id]).await?;
            if !opts.json {
                println!("Revoked API key {id}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Uploads a component; the answer carries its digest and manifest. On a terminal,
/// stderr shows the bytes sent, then that the server is compiling.
async fn push(api: &Api, file: &std::path::Path) -> anyhow::Result<(StatusCode, Value)> {
    use anyhow::Context;
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let progress = upload::Progress::on_terminal(&file.display().to_string());
    let body = match &progress {
        Some(p) => p.body(bytes, "application/wasm"),
        None => Body::Bytes(bytes, "application/wasm"),
    };
    let answer = api
        .call(Method::POST, &["api", "components"], &[], body)
        .await;
    if let Some(p) = progress {
        p.done();
    }
    answer.with_context(|| format!("cannot upload {}", file.display()))
}

/// The names of a manifest's flows.
fn flow_names(manifest: &Value) -> Vec<String> {
    manifest["flows"]
        .as_array()
        .map(|f| {
            f.iter()
                .filter_map(|d| d["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

async fn component(opts: &ClientOpts, command: ComponentCommand) -> anyhow::Result<ExitCode> {
    let api = opts.api()?;
    match command {
        ComponentCommand::Push { file } => {
            let (status, c) = push(&api, &file).await?;
            if opts.json {
                print_json(&c);
                return Ok(ExitCode::SUCCESS);
            }
            let how = if status == StatusCode::OK {
                "Already uploaded"
            } else {
                "Uploaded"
            };
            println!(
                "{how} component sha256:{} ({} bytes)",
                text(&c["digest"]),
                text(&c["size"])
            );
            let mut t = Table::new(&["flow", "version", "description"]);
            for f in c["manifest"]["flows"].as_array().into_iter().flatten() {
                let desc = f["description"]
                    .as_str()
                    .and_then(|d| d.lines().next())
                    .unwrap_or("");
                t.row(vec![
                    text(&f["name"]),
                    text(&f["version"]),
                    truncate(desc, 60),
                ]);
            }
            if t.is_empty() {
                println!("It has no flows.");
            } else {
                print!("{t}");
            }
        }
        ComponentCommand::Ls => {
            let items = api.list(&["api", "components"], &[], None).await?;
            if opts.json {
                print_json(&json!(items));
            } else {
                let mut t = Table::new(&["digest", "size", "flows", "created"]);
                for c in &items {
                    t.row(vec![
                        text(&c["digest"]),
                        text(&c["size"]),
                        flow_names(&c["manifest"]).join(", "),
                        time(&c["created"]),
                    ]);
                }
                print!("{t}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn artifacts(opts: &ClientOpts, command: ArtifactsCommand) -> anyhow::Result<ExitCode> {
    let api = opts.api()?;
    let ArtifactsCommand::Ls { run, key } = command;
    let items = match (run, key) {
        (Some(run), _) => {
            api.list(&["api", "flow-runs", &run, "artifacts"], &[], None)
                .await?
        }
        (None, Some(key)) => {
            api.list(&["api", "artifacts"], &[("key", key)], None)
                .await?
        }
        (None, None) => unreachable!("clap requires --run or --key"),
    };
    if opts.json {
        print_json(&json!(items));
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = Table::new(&[
        "id",
        "key",
        "type",
        "description",
        "flow run",
        "created",
        "data",
    ]);
    for a in &items {
        t.row(vec![
            text(&a["id"]),
            text(&a["key"]),
            text(&a["type"]),
            truncate(&text(&a["description"]), 40),
            text(&a["flow_run_id"]),
            time(&a["created"]),
            truncate(&text(&a["data"]), 50),
        ]);
    }
    print!("{t}");
    Ok(ExitCode::SUCCESS)
}

/// A variable's value from the command line: JSON when it parses, else the text itself.
fn variable_value(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

async fn variable(opts: &ClientOpts, command: VariableCommand) -> anyhow::Result<ExitCode> {
    let api = opts.api()?;
    match command {
        VariableCommand::Set { name, value } => {
            let v = api
                .put(
                    &["api", "variables", &name],
                    json!({"value": variable_value(&value)}),
                )
                .await?;
            if opts.json {
                print_json(&v);
            } else {
                println!("Set variable {name}");
            }
        }
        VariableCommand::Get { name } => {
            let v = api.get(&["api", "variables", &name], &[]).await?;
            if opts.json {
                print_json(&v);
            } else {
                // The value alone, so that `$(weir variable get x)` is useful.
                let value = v.get("value").unwrap_or(&v);
                match value {
                    Value::String(s) => println!("{}", output::clean(s)),
                    other => print_json(other),
                }
            }
        }
        VariableCommand::Ls => {
            let items = api.list(&["api", "variables"], &[], None).await?;
            if opts.json {
                print_json(&json!(items));
            } else {
                let mut t = Table::new(&["name", "value", "updated"]);
                for v in &items {
                    let when = if v["updated"].is_null() {
                        &v["created"]
                    } else {
                        &v["updated"]
                    };
                    t.row(vec![
                        text(&v["name"]),
                        truncate(&v["value"].to_string(), 60),
                        time(when),
                    ]);
                }
                print!("{t}");
            }
        }
        VariableCommand::Rm { name } => {
            api.delete(&["api", "variables", &name]).await?;
            if !opts.json {
                println!("Deleted variable {name}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn secret(opts: &ClientOpts, command: SecretCommand) -> anyhow::Result<ExitCode> {
    let api = opts.api()?;
    match command {
        SecretCommand::Set { name, value } => {
            let value = if value == "-" {
                let mut s = String::new();
                std::io::stdin().read_to_string(&mut s)?;
                s.strip_suffix('\n')
                    .map(|v| v.strip_suffix('\r').unwrap_or(v))
                    .unwrap_or(&s)
                    .to_owned()
            } else {
                value
            };
            let v = api
                .put(&["api", "secrets", &name], json!({"value": value}))
                .await?;
            if opts.json {
                print_json(&v);
            } else {
                println!("Set secret {name}");
            }
        }
        SecretCommand::Ls => {
            let items = api.list(&["api", "secrets"], &[], None).await?;
            if opts.json {
                print_json(&json!(items));
            } else {
                let mut t = Table::new(&["name", "updated"]);
                for s in &items {
                    // Names only: the list may be of strings or of objects.
                    let name = if s.is_string() { s } else { &s["name"] };
                    let when = if s["updated"].is_null() {
                        &s["created"]
                    } else {
                        &s["updated"]
                    };
                    t.row(vec![text(name), time(when)]);
                }
                print!("{t}");
            }
        }
        SecretCommand::Rm { name } => {
            api.delete(&["api", "secrets", &name]).await?;
            if !opts.json {
                println!("Deleted secret {name}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Top {
        #[command(subcommand)]
        command: ClientCommand,
    }

    #[test]
    fn variable_values_are_json_or_text() {
        assert_eq!(variable_value("3"), json!(3));
        assert_eq!(variable_value(r#"{"a": [1]}"#), json!({"a": [1]}));
        assert_eq!(variable_value("eu-west"), json!("eu-west"));
    }

    #[test]
    fn client_options_go_before_or_after_the_subcommand() {
        let t = Top::try_parse_from(["weir", "runs", "ls", "--json", "--api-url", "http://x:1"])
            .unwrap();
        let ClientCommand::Runs { opts, .. } = t.command else {
            panic!()
        };
        assert!(opts.json);
        assert_eq!(opts.api_url, "http://x:1");
        let t = Top::try_parse_from(["weir", "key", "--json", "ls"]).unwrap();
        let ClientCommand::Key { opts, .. } = t.command else {
            panic!()
        };
        assert!(opts.json);
        assert!(Top::try_parse_from(["weir", "artifacts", "ls"]).is_err());
        assert!(
            Top::try_parse_from(["weir", "artifacts", "ls", "--run", "a", "--key", "b"]).is_err()
        );
    }
}
