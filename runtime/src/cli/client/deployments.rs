//! `weir deployment ls|show|rm` and `weir schedule ls|pause|resume|rm`: reading and
//! removing what `weir deploy` made, and pausing its schedules.

use super::ClientOpts;
use super::api::Api;
use super::output::{Table, clean, print_json, text, time, truncate};
use clap::Subcommand;
use serde_json::{Value, json};
use std::process::ExitCode;

#[derive(Subcommand, Debug)]
pub enum DeploymentCommand {
    /// List deployments.
    Ls,
    /// Show a deployment: its flow, component, parameters, limits, webhook and schedules.
    Show {
        /// The deployment's name or id.
        deployment: String,
    },
    /// Delete a deployment (its runs are kept).
    Rm {
        /// The deployment's name or id.
        deployment: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum ScheduleCommand {
    /// List schedules, of one deployment or of all.
    Ls {
        /// Only this deployment's (name or id).
        #[arg(long)]
        deployment: Option<String>,
    },
    /// Pause a schedule: its runs not started yet are cancelled.
    Pause { id: String },
    /// Resume a paused schedule: it fires again from now on.
    Resume { id: String },
    /// Delete a schedule: its runs not started yet are cancelled.
    Rm { id: String },
}

/// A schedule's spec in a few words: `cron '0 9 * * *' in Europe/Berlin`.
pub fn schedule_summary(spec: &Value) -> String {
    let what = match spec["type"].as_str() {
        Some("cron") => format!("cron '{}'", text(&spec["cron"])),
        Some("interval") => match spec["interval_seconds"].as_f64() {
            Some(n) if n.fract() == 0.0 && n.abs() < 1e15 => format!("every {}s", n as i64),
            _ => format!("every {}s", text(&spec["interval_seconds"])),
        },
        Some("rrule") => format!("rrule {}", text(&spec["rrule"])),
        _ => spec.to_string(),
    };
    match spec["timezone"].as_str() {
        Some(tz) if !tz.is_empty() => format!("{what} in {}", clean(tz)),
        _ => what,
    }
}

fn webhook_label(w: &Value) -> &'static str {
    match (w["enabled"].as_bool(), w["signed"].as_bool()) {
        (Some(true), Some(true)) => "signed",
        (Some(true), _) => "on",
        _ => "off",
    }
}

fn short_digest(d: &Value) -> String {
    text(d).chars().take(12).collect()
}

pub async fn deployment(opts: &ClientOpts, command: DeploymentCommand) -> anyhow::Result<ExitCode> {
    let api = opts.api()?;
    match command {
        DeploymentCommand::Ls => {
            let items = api.list(&["api", "deployments"], &[], None).await?;
            if opts.json {
                print_json(&json!(items));
                return Ok(ExitCode::SUCCESS);
            }
            let mut t = Table::new(&[
                "name",
                "flow",
                "component",
                "tags",
                "pool",
                "webhook",
                "paused",
                "updated",
            ]);
            for d in &items {
                let tags: Vec<String> = d["tags"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(text)
                    .collect();
                t.row(vec![
                    text(&d["name"]),
                    text(&d["flow"]),
                    short_digest(&d["component"]),
                    tags.join(","),
                    text(&d["pool"]),
                    webhook_label(&d["webhook"]).into(),
                    if d["paused"] == true { "yes" } else { "no" }.into(),
                    time(&d["updated"]),
                ]);
            }
            if t.is_empty() {
                println!("No deployments.");
            } else {
                print!("{t}");
            }
        }
        DeploymentCommand::Show { deployment } => show(&api, opts.json, &deployment).await?,
        DeploymentCommand::Rm { deployment } => {
            api.delete(&["api", "deployments", &deployment]).await?;
            if !opts.json {
                println!("Deleted deployment {}", clean(&deployment));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn show(api: &Api, as_json: bool, name: &str) -> anyhow::Result<()> {
    let d = api.get(&["api", "deployments", name], &[]).await?;
    let schedules = api
        .list(&["api", "deployments", name, "schedules"], &[], None)
        .await?;
    if as_json {
        let mut d = d;
        if let Value::Object(m) = &mut d {
            m.insert("schedules".into(), json!(schedules));
        }
        print_json(&d);
        return Ok(());
    }
    let field = |k: &str, v: String| println!("{k:<13} {v}");
    field(
        "Deployment",
        format!("{} ({})", text(&d["name"]), text(&d["id"])),
    );
    if !d["description"].is_null() {
        field("Description", text(&d["description"]));
    }
    field("Flow", text(&d["flow"]));
    field("Component", format!("sha256:{}", text(&d["component"])));
    if !d["version"].is_null() {
        field("Version", text(&d["version"]));
    }
    field("Parameters", d["parameters"].to_string());
    if let Some(tags) = d["tags"].as_array().filter(|t| !t.is_empty()) {
        field("Tags", tags.iter().map(text).collect::<Vec<_>>().join(", "));
    }
    field("Pool", text(&d["pool"]));
    field("Concurrency", text(&d["concurrency_limit"]));
    field("Limits", d["limits"].to_string());
    field("Capabilities", d["capabilities"].to_string());
    field("Webhook", webhook_label(&d["webhook"]).into());
    field("Retention", {
        let own = super::retention_of(&d["retention"]);
        if own.is_empty() {
            "the workspace's (weir workspace retention)".into()
        } else {
            own.to_string()
        }
    });
    field(
        "Paused",
        if d["paused"] == true { "yes" } else { "no" }.into(),
    );
    field("Created", time(&d["created"]));
    field("Updated", time(&d["updated"]));
    let t = schedule_table(&schedules, None);
    if !t.is_empty() {
        print!("\nSchedules\n{t}");
    }
    println!("\nRun it with: weir trigger {}", text(&d["name"]));
    Ok(())
}

/// Schedules as rows; `names` maps deployment ids to names when several deployments'
/// schedules share the table.
fn schedule_table(
    schedules: &[Value],
    names: Option<&std::collections::HashMap<String, String>>,
) -> Table {
    let mut header = vec!["id"];
    if names.is_some() {
        header.push("deployment");
    }
    header.extend(["schedule", "active", "next", "catchup", "overlap"]);
    let mut t = Table::new(&header);
    for s in schedules {
        let mut row = vec![text(&s["id"])];
        if let Some(names) = names {
            let id = text(&s["deployment_id"]);
            row.push(names.get(&id).cloned().unwrap_or(id));
        }
        let next = s["next"]
            .as_array()
            .and_then(|n| n.first())
            .map(time)
            .unwrap_or_else(|| "-".into());
        row.extend([
            truncate(&schedule_summary(&s["schedule"]), 60),
            if s["active"] == true { "yes" } else { "paused" }.into(),
            next,
            text(&s["catchup"]),
            text(&s["overlap"]),
        ]);
        t.row(row);
    }
    t
}

pub async fn schedule(opts: &ClientOpts, command: ScheduleCommand) -> anyhow::Result<ExitCode> {
    let api = opts.api()?;
    let (action, id, verb) = match command {
        ScheduleCommand::Ls { deployment } => {
            return schedules(&api, opts.json, deployment).await;
        }
        ScheduleCommand::Pause { id } => ("pause", id, "Paused"),
        ScheduleCommand::Resume { id } => ("resume", id, "Resumed"),
        ScheduleCommand::Rm { id } => ("rm", id, "Deleted"),
    };
    let answer = if action == "rm" {
        api.delete(&["api", "schedules", &id]).await?;
        Value::Null
    } else {
        api.post(&["api", "schedules", &id, action], json!({}))
            .await?
            .1
    };
    if opts.json {
        if !answer.is_null() {
            print_json(&answer);
        }
    } else {
        println!("{verb} schedule {}", clean(&id));
    }
    Ok(ExitCode::SUCCESS)
}

async fn schedules(
    api: &Api,
    as_json: bool,
    deployment: Option<String>,
) -> anyhow::Result<ExitCode> {
    let deployments = match &deployment {
        Some(d) => vec![api.get(&["api", "deployments", d], &[]).await?],
        None => api.list(&["api", "deployments"], &[], None).await?,
    };
    let mut names = std::collections::HashMap::new();
    let mut all = Vec::new();
    for d in &deployments {
        let id = text(&d["id"]);
        names.insert(id.clone(), text(&d["name"]));
        all.extend(
            api.list(&["api", "deployments", &id, "schedules"], &[], None)
                .await?,
        );
    }
    if as_json {
        print_json(&json!(all));
        return Ok(ExitCode::SUCCESS);
    }
    let t = schedule_table(&all, Some(&names));
    if t.is_empty() {
        println!("No schedules.");
    } else {
        print!("{t}");
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_in_a_few_words() {
        assert_eq!(
            schedule_summary(
                &json!({"type": "cron", "cron": "0 9 * * *", "timezone": "Europe/Berlin"})
            ),
            "cron '0 9 * * *' in Europe/Berlin"
        );
        assert_eq!(
            schedule_summary(
                &json!({"type": "interval", "interval_seconds": 3600.0, "timezone": null})
            ),
            "every 3600s"
        );
        assert_eq!(
            schedule_summary(
                &json!({"type": "rrule", "rrule": "FREQ=DAILY", "timezone": "UTC\u{1b}[2J"})
            ),
            "rrule FREQ=DAILY in UTC"
        );
        assert_eq!(
            webhook_label(&json!({"enabled": true, "signed": true})),
            "signed"
        );
        assert_eq!(webhook_label(&json!({"enabled": false})), "off");
    }
}
