//! `weir trigger` and `weir runs ...`: creating flow runs, waiting on them, and reading
//! their states, task runs and logs.

use super::ClientOpts;
use super::api::{Api, ApiError, Body};
use super::output::{
    Table, clean, clock, duration, json_text, log_line, print_json, state_label, text, time,
    truncate,
};
use super::sse::SseParser;
use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use futures_util::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Map, Value, json};
use std::collections::{HashMap, HashSet};
use std::process::ExitCode;
use std::time::Duration;

/// The state types after which a run changes no more.
const FINAL: [&str; 4] = ["COMPLETED", "FAILED", "CANCELLED", "CRASHED"];

fn is_final(state: &Value) -> bool {
    state["type"].as_str().is_some_and(|t| FINAL.contains(&t))
}

#[derive(Args, Debug)]
pub struct TriggerArgs {
    #[command(flatten)]
    opts: ClientOpts,
    /// The deployment's name or id.
    deployment: String,
    /// A parameter, `key=value` (the server coerces the value to the parameter's type).
    #[arg(long = "param", short = 'p', value_name = "KEY=VALUE")]
    params: Vec<String>,
    /// All parameters as one JSON object (`--param` values go on top).
    #[arg(long, value_name = "JSON")]
    params_json: Option<String>,
    /// Creates at most one run per key: triggering again returns the first run.
    #[arg(long)]
    idempotency_key: Option<String>,
    /// When to run, RFC 3339 (e.g. 2030-01-01T09:00:00Z); now when left out.
    #[arg(long, value_name = "RFC3339")]
    at: Option<String>,
    /// A tag for this run, on top of the deployment's (repeatable).
    #[arg(long = "tag", value_name = "TAG")]
    tags: Vec<String>,
    /// Wait for the run to finish, printing its states; exit non-zero unless it completes.
    #[arg(long)]
    wait: bool,
}

#[derive(Subcommand, Debug)]
pub enum RunsCommand {
    /// List flow runs, newest first.
    Ls {
        /// Only runs in this state (COMPLETED, FAILED, RUNNING, SCHEDULED, ...).
        #[arg(long)]
        state: Option<String>,
        /// Only runs of this deployment (name or id).
        #[arg(long)]
        deployment: Option<String>,
        /// Only runs with this tag.
        #[arg(long)]
        tag: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Show a flow run: its state and history, task runs and result.
    Show { id: String },
    /// Print a flow run's logs.
    Logs {
        id: String,
        /// Keep printing new lines until the run is finished.
        #[arg(long, short = 'f')]
        follow: bool,
    },
    /// Cancel a flow run.
    Cancel { id: String },
    /// Run a failed, crashed or cancelled flow run again, replaying its completed tasks.
    Retry { id: String },
    /// Resume a paused or suspended flow run.
    Resume {
        id: String,
        /// The input the pause asks for, as JSON (checked against the pause's schema).
        #[arg(long, value_name = "JSON")]
        input: Option<String>,
    },
}

/// The body of `POST /api/deployments/{id}/runs`.
fn trigger_body(args: &TriggerArgs) -> anyhow::Result<Value> {
    let mut body = Map::new();
    if !args.params.is_empty() || args.params_json.is_some() {
        body.insert(
            "parameters".into(),
            crate::cli::parse_params(&args.params, args.params_json.as_deref())?,
        );
    }
    if let Some(k) = &args.idempotency_key {
        body.insert("idempotency_key".into(), json!(k));
    }
    if let Some(at) = &args.at {
        let t = chrono::DateTime::parse_from_rfc3339(at).with_context(|| {
            format!("--at {at:?} is not an RFC 3339 time (2030-01-01T09:00:00Z)")
        })?;
        body.insert("scheduled_at".into(), json!(t.to_rfc3339()));
    }
    if !args.tags.is_empty() {
        body.insert("tags".into(), json!(args.tags));
    }
    Ok(Value::Object(body))
}

pub async fn trigger(args: TriggerArgs) -> anyhow::Result<ExitCode> {
    let body = trigger_body(&args)?;
    let api = args.opts.api()?;
    let (status, run) = api
        .post(&["api", "deployments", &args.deployment, "runs"], body)
        .await?;
    let id = run["id"]
        .as_str()
        .context("the server's answer has no flow run id")?
        .to_owned();
    if !args.opts.json {
        if status == StatusCode::OK {
            println!(
                "Flow run '{}' ({id}) already exists for this idempotency key",
                text(&run["name"])
            );
        } else {
            println!("Created flow run '{}' ({id})", text(&run["name"]));
        }
        if args.at.is_some() {
            println!("  scheduled for {}", time(&run["expected_start"]));
        }
    }
    if !args.wait {
        if args.opts.json {
            print_json(&run);
        }
        return Ok(ExitCode::SUCCESS);
    }
    wait(&api, &id, args.opts.json).await
}

/// Waits for a run to be final. Under `--json` it polls and prints the final run;
/// otherwise it follows the run's log stream, printing its log lines and its state
/// changes as `weir run` does, then the result.
async fn wait(api: &Api, id: &str, as_json: bool) -> anyhow::Result<ExitCode> {
    let run = if as_json {
        let mut delay = Duration::from_millis(200);
        loop {
            let run = api.get(&["api", "flow-runs", id], &[]).await?;
            if is_final(&run["state"]) {
                print_json(&run);
                break run;
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(1));
        }
    } else {
        let mut names = Names::load(api, id).await?;
        let mut printed = HashSet::new();
        stream_logs(api, id, Some(&mut names), Some(&mut printed)).await?;
        let run = api.get(&["api", "flow-runs", id], &[]).await?;
        for state in new_states(&run, &mut printed) {
            print_transition(&run, &state);
        }
        run
    };
    let completed = run["state"]["type"] == "COMPLETED";
    if completed && !as_json {
        println!("Result: {}", json_text(&run["result"], false));
    }
    Ok(if completed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The states of a run not printed yet, oldest first: its history and its current state,
/// which polling may have seen only some of.
fn new_states(run: &Value, printed: &mut HashSet<String>) -> Vec<Value> {
    let mut states: Vec<Value> = run["state_history"].as_array().cloned().unwrap_or_default();
    states.push(run["state"].clone());
    states.sort_by_key(|s| {
        s["timestamp"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
    });
    states
        .into_iter()
        .filter(|s| !s.is_null())
        .filter(|s| printed.insert(state_key(s)))
        .collect()
}

/// What tells two states of a run apart.
fn state_key(s: &Value) -> String {
    format!(
        "{}|{}|{}",
        text(&s["type"]),
        text(&s["name"]),
        text(&s["timestamp"])
    )
}

/// A flow run's state change as `weir run` prints it.
fn print_transition(run: &Value, state: &Value) {
    println!("{}", transition_line(run, state));
}

fn transition_line(run: &Value, state: &Value) -> String {
    let verb = if is_final(state) {
        "Finished in state"
    } else {
        "Entered state"
    };
    let level = match state["type"].as_str() {
        Some("FAILED" | "CRASHED") => "ERROR",
        _ => "INFO",
    };
    log_line(
        &clock(&state["timestamp"]),
        level,
        &format!("Flow run '{}'", text(&run["name"])),
        &format!("{verb} {}", state_text(state)),
    )
}

/// A state as `weir run` prints it (Prefect's form): `Completed()`,
/// `Failed("boom")`, `TimedOut("...", type=FAILED)`.
fn state_text(state: &Value) -> String {
    let name = state_label(state);
    let mut inner = Vec::new();
    if let Some(m) = state["message"].as_str() {
        inner.push(format!("{:?}", clean(m)));
    }
    let default = state_label(&json!({"type": state["type"]}));
    if name != default {
        inner.push(format!("type={}", text(&state["type"])));
    }
    format!("{name}({})", inner.join(", "))
}

pub async fn dispatch(opts: &ClientOpts, command: RunsCommand) -> anyhow::Result<ExitCode> {
    let api = opts.api()?;
    match command {
        RunsCommand::Ls {
            state,
            deployment,
            tag,
            limit,
        } => ls(&api, opts.json, state, deployment, tag, limit).await,
        RunsCommand::Show { id } => show(&api, opts.json, &id).await,
        RunsCommand::Logs { id, follow } => logs(&api, opts.json, &id, follow).await,
        RunsCommand::Cancel { id } => act(&api, opts.json, &id, "cancel", "Cancelling").await,
        RunsCommand::Retry { id } => act(&api, opts.json, &id, "retry", "Retrying").await,
        RunsCommand::Resume { id, input } => resume(&api, opts.json, &id, input.as_deref()).await,
    }
}

/// The body of `POST /api/flow-runs/{id}/resume`.
fn resume_body(input: Option<&str>) -> anyhow::Result<Value> {
    Ok(match input {
        Some(text) => {
            let input: Value = serde_json::from_str(text)
                .with_context(|| format!("--input {text:?} is not JSON"))?;
            json!({ "input": input })
        }
        None => json!({}),
    })
}

async fn resume(
    api: &Api,
    as_json: bool,
    id: &str,
    input: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let body = resume_body(input)?;
    let (_, answer) = api.post(&["api", "flow-runs", id, "resume"], body).await?;
    if as_json {
        print_json(&answer);
    } else {
        println!("Resuming flow run {id}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `completed`, `Completed` or `awaiting-retry` as the API's `COMPLETED`, `AWAITING_RETRY`.
fn state_filter(s: &str) -> String {
    s.trim().replace('-', "_").to_uppercase()
}

async fn ls(
    api: &Api,
    as_json: bool,
    state: Option<String>,
    deployment: Option<String>,
    tag: Option<String>,
    limit: usize,
) -> anyhow::Result<ExitCode> {
    let mut query = Vec::new();
    if let Some(s) = state {
        query.push(("state", state_filter(&s)));
    }
    if let Some(d) = deployment {
        // The filter takes an id; a name is looked up.
        let id = if uuid::Uuid::parse_str(&d).is_ok() {
            d
        } else {
            let dep = api.get(&["api", "deployments", &d], &[]).await?;
            text(&dep["id"])
        };
        query.push(("deployment", id));
    }
    if let Some(t) = tag {
        query.push(("tag", t));
    }
    let runs = api
        .list(&["api", "flow-runs"], &query, Some(limit.max(1)))
        .await?;
    if as_json {
        print_json(&json!(runs));
        return Ok(ExitCode::SUCCESS);
    }
    // Deployments by id, for their names; looked up only when a run has one.
    let mut deployments = HashMap::new();
    if runs.iter().any(|r| r["deployment_id"].is_string()) {
        for d in api.list(&["api", "deployments"], &[], None).await? {
            deployments.insert(text(&d["id"]), text(&d["name"]));
        }
    }
    let mut t = Table::new(&[
        "id",
        "name",
        "flow",
        "deployment",
        "state",
        "scheduled",
        "duration",
    ]);
    for r in &runs {
        let deployment = match r["deployment_id"].as_str() {
            Some(id) => deployments
                .get(id)
                .cloned()
                .unwrap_or_else(|| text(&r["deployment_id"])),
            None => "-".into(),
        };
        let scheduled = if r["expected_start"].is_null() {
            &r["created"]
        } else {
            &r["expected_start"]
        };
        t.row(vec![
            text(&r["id"]),
            text(&r["name"]),
            text(&r["flow"]),
            deployment,
            state_label(&r["state"]),
            time(scheduled),
            duration(&r["start_time"], &r["end_time"]),
        ]);
    }
    if t.is_empty() {
        println!("No flow runs.");
    } else {
        print!("{t}");
    }
    Ok(ExitCode::SUCCESS)
}

async fn show(api: &Api, as_json: bool, id: &str) -> anyhow::Result<ExitCode> {
    let (run_path, tasks_path) = (
        ["api", "flow-runs", id],
        ["api", "flow-runs", id, "task-runs"],
    );
    let (run, tasks) = tokio::join!(api.get(&run_path, &[]), api.list(&tasks_path, &[], None));
    let (mut run, tasks) = (run?, tasks?);
    if as_json {
        // The run as the server gives it, with its task runs, like `weir run --json`.
        if let Value::Object(m) = &mut run {
            m.insert("task_runs".into(), json!(tasks));
        }
        print_json(&run);
        return Ok(ExitCode::SUCCESS);
    }
    let state = &run["state"];
    let message = state["message"]
        .as_str()
        .filter(|m| !m.is_empty())
        .map(|m| format!(" ({})", clean(m)))
        .unwrap_or_default();
    let field = |k: &str, v: String| println!("{k:<11} {v}");
    field(
        "Flow run",
        format!("{} ({})", text(&run["name"]), text(&run["id"])),
    );
    field("Flow", text(&run["flow"]));
    field("Deployment", text(&run["deployment_id"]));
    field(
        "Component",
        format!("sha256:{}", text(&run["component_digest"])),
    );
    field("State", format!("{}{message}", state_label(state)));
    if let Some(p) = run.get("pause").filter(|p| p.is_object()) {
        let input = if p["input_schema"].is_null() {
            "no input".to_owned()
        } else {
            format!("input {}", p["input_schema"])
        };
        field(
            "Pause",
            format!(
                "{}until {}, {input}; weir runs resume {} --input '<json>'",
                p["key"]
                    .as_str()
                    .map(|k| format!("'{k}' "))
                    .unwrap_or_default(),
                time(&p["timeout_at"]),
                text(&run["id"])
            ),
        );
    }
    field("Parameters", run["parameters"].to_string());
    if let Some(tags) = run["tags"].as_array().filter(|t| !t.is_empty()) {
        field("Tags", tags.iter().map(text).collect::<Vec<_>>().join(", "));
    }
    field("Run count", text(&run["run_count"]));
    field("Created", time(&run["created"]));
    field("Started", time(&run["start_time"]));
    field("Ended", time(&run["end_time"]));
    if !run["parent_flow_run_id"].is_null() {
        field("Parent run", text(&run["parent_flow_run_id"]));
    }
    field("Result", run["result"].to_string());

    let mut history = Table::new(&["time", "state", "message"]);
    for s in run["state_history"].as_array().into_iter().flatten() {
        history.row(vec![
            time(&s["timestamp"]),
            state_label(s),
            truncate(&text(&s["message"]), 80),
        ]);
    }
    if !history.is_empty() {
        print!("\nState history\n{history}");
    }
    let mut t = Table::new(&["id", "name", "task", "state", "runs", "result"]);
    for task in &tasks {
        t.row(vec![
            text(&task["id"]),
            text(&task["name"]),
            text(&task["task"]),
            state_label(&task["state"]),
            text(&task["run_count"]),
            truncate(&task["result"].to_string(), 50),
        ]);
    }
    if !t.is_empty() {
        print!("\nTask runs\n{t}");
    }
    Ok(ExitCode::SUCCESS)
}

async fn act(
    api: &Api,
    as_json: bool,
    id: &str,
    action: &str,
    verb: &str,
) -> anyhow::Result<ExitCode> {
    let (_, answer) = api
        .post(&["api", "flow-runs", id, action], json!({}))
        .await?;
    if as_json {
        print_json(&answer);
    } else {
        println!("{verb} flow run {id}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Who wrote a log line: the flow run, or one of its task runs by name.
struct Names {
    run: String,
    tasks: HashMap<String, String>,
    looked_up: HashSet<String>,
}

impl Names {
    async fn load(api: &Api, id: &str) -> Result<Names, ApiError> {
        let run = api.get(&["api", "flow-runs", id], &[]).await?;
        let mut names = Names {
            run: text(&run["name"]),
            tasks: HashMap::new(),
            looked_up: HashSet::new(),
        };
        names.refresh(api, id).await?;
        Ok(names)
    }

    async fn refresh(&mut self, api: &Api, id: &str) -> Result<(), ApiError> {
        for t in api
            .list(&["api", "flow-runs", id, "task-runs"], &[], None)
            .await?
        {
            self.tasks.insert(text(&t["id"]), text(&t["name"]));
        }
        Ok(())
    }

    /// The name for a task run id, asking the server again (once per id) for task runs
    /// that started after the last look.
    async fn task(&mut self, api: &Api, id: &str, task_run_id: &str) -> String {
        if !self.tasks.contains_key(task_run_id) && self.looked_up.insert(task_run_id.to_owned()) {
            let _ = self.refresh(api, id).await;
        }
        self.tasks
            .get(task_run_id)
            .cloned()
            .unwrap_or_else(|| task_run_id.to_owned())
    }

    async fn line(&mut self, api: &Api, id: &str, log: &Value) -> String {
        let who = match log["task_run_id"].as_str() {
            Some(t) => format!("Task run '{}'", self.task(api, id, t).await),
            None => format!("Flow run '{}'", self.run),
        };
        format_log(log, &who)
    }
}

fn format_log(log: &Value, who: &str) -> String {
    log_line(
        &clock(&log["timestamp"]),
        log["level"].as_str().unwrap_or("info"),
        who,
        log["message"].as_str().unwrap_or_default(),
    )
}

async fn logs(api: &Api, as_json: bool, id: &str, follow: bool) -> anyhow::Result<ExitCode> {
    let mut names = if as_json {
        None
    } else {
        Some(Names::load(api, id).await?)
    };
    if follow {
        return follow_logs(api, id, names.as_mut()).await;
    }
    // Page by the last sequence number seen.
    let mut after: Option<i64> = None;
    let mut all = Vec::new();
    loop {
        let mut query = vec![("limit", "500".to_owned())];
        if let Some(a) = after {
            query.push(("after", a.to_string()));
        }
        let page = api.get(&["api", "flow-runs", id, "logs"], &query).await?;
        let (items, next) = super::api::split_page(page);
        let last = items.last().and_then(|l| l["seq"].as_i64());
        for log in &items {
            if let Some(n) = names.as_mut() {
                println!("{}", n.line(api, id, log).await);
            }
        }
        all.extend(items);
        match last {
            Some(l) if next.is_some() && after != Some(l) => after = Some(l),
            _ => break,
        }
    }
    if as_json {
        print_json(&json!(all));
    }
    Ok(ExitCode::SUCCESS)
}

/// Streams a run's logs (server-sent events) until the event `end`. Under `--json` each
/// line is printed as the server's JSON, one per line.
async fn follow_logs(
    api: &Api,
    id: &str,
    mut names: Option<&mut Names>,
) -> anyhow::Result<ExitCode> {
    stream_logs(api, id, names.as_deref_mut(), None).await?;
    if names.is_some()
        && let Ok(run) = api.get(&["api", "flow-runs", id], &[]).await
    {
        print_transition(&run, &run["state"]);
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints a run's log lines as they come until the stream's `end` (the run is final).
/// With `states`, the run's state changes are polled meanwhile and printed as they
/// happen, except final ones: those come after the last log line.
async fn stream_logs(
    api: &Api,
    id: &str,
    mut names: Option<&mut Names>,
    mut states: Option<&mut HashSet<String>>,
) -> anyhow::Result<()> {
    let resp = api
        .send(
            Method::GET,
            &["api", "flow-runs", id, "logs"],
            &[("follow", "true".to_owned())],
            Body::Empty,
            "text/event-stream",
        )
        .await?;
    let mut stream = resp.bytes_stream();
    let mut parser = SseParser::default();
    let mut poll = tokio::time::interval(Duration::from_millis(300));
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let chunk = tokio::select! {
            chunk = stream.next() => chunk,
            _ = poll.tick(), if states.is_some() => {
                if let (Some(printed), Ok(run)) =
                    (states.as_deref_mut(), api.get(&["api", "flow-runs", id], &[]).await)
                {
                    let mut seen = printed.clone();
                    for state in new_states(&run, &mut seen) {
                        if is_final(&state) {
                            break;
                        }
                        printed.insert(state_key(&state));
                        print_transition(&run, &state);
                    }
                }
                continue;
            }
        };
        let Some(chunk) = chunk else {
            bail!("the log stream ended before the run finished (did the server stop?)")
        };
        let chunk = chunk.context("the log stream broke off")?;
        for event in parser.feed(&chunk) {
            match event.event.as_str() {
                "log" => {
                    let log: Value =
                        serde_json::from_str(&event.data).unwrap_or(Value::String(event.data));
                    match names.as_deref_mut() {
                        Some(n) => println!("{}", n.line(api, id, &log).await),
                        None => println!("{}", json_text(&log, false)),
                    }
                }
                "end" => return Ok(()),
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Top {
        #[command(flatten)]
        args: TriggerArgs,
    }

    #[test]
    fn trigger_body_from_flags() {
        let a = Top::try_parse_from([
            "trigger",
            "hello-prod",
            "-p",
            "n=5",
            "--params-json",
            r#"{"x": [1]}"#,
            "--idempotency-key",
            "k1",
            "--at",
            "2030-01-01T09:00:00+02:00",
            "--tag",
            "t",
        ])
        .unwrap()
        .args;
        assert_eq!(
            trigger_body(&a).unwrap(),
            json!({"parameters": {"n": "5", "x": [1]}, "idempotency_key": "k1",
                   "scheduled_at": "2030-01-01T09:00:00+02:00", "tags": ["t"]})
        );
        let a = Top::try_parse_from(["trigger", "d"]).unwrap().args;
        assert_eq!(trigger_body(&a).unwrap(), json!({}));
        let a = Top::try_parse_from(["trigger", "d", "--at", "tomorrow"])
            .unwrap()
            .args;
        assert!(
            trigger_body(&a)
                .unwrap_err()
                .to_string()
                .contains("RFC 3339")
        );
    }

    #[test]
    fn waiting_prints_each_state_once_in_order() {
        let mut printed = HashSet::new();
        let pending =
            json!({"type": "PENDING", "name": "Pending", "timestamp": "2030-01-01T00:00:01Z"});
        let running =
            json!({"type": "RUNNING", "name": "Running", "timestamp": "2030-01-01T00:00:02Z"});
        let done =
            json!({"type": "COMPLETED", "name": "Completed", "timestamp": "2030-01-01T00:00:03Z"});
        let run = json!({"state": running, "state_history": [pending, running]});
        assert_eq!(
            new_states(&run, &mut printed),
            vec![pending.clone(), running.clone()]
        );
        // Newest-first history, and a state that came and went between two polls.
        let run = json!({"state": done, "state_history": [done, running, pending]});
        assert_eq!(new_states(&run, &mut printed), vec![done.clone()]);
        assert!(new_states(&run, &mut printed).is_empty());
        assert!(is_final(&done) && !is_final(&running));
    }

    #[test]
    fn resume_body_carries_the_input() {
        assert_eq!(
            resume_body(Some(r#"{"approved": true}"#)).unwrap(),
            json!({"input": {"approved": true}})
        );
        assert_eq!(resume_body(None).unwrap(), json!({}));
        assert!(
            resume_body(Some("{nope"))
                .unwrap_err()
                .to_string()
                .contains("not JSON")
        );
    }

    #[test]
    fn transitions_read_as_weir_run_prints_them() {
        let run = json!({"name": "red-fox"});
        let done = json!({"type": "COMPLETED", "name": "Completed", "message": null,
            "timestamp": "bad"});
        assert_eq!(
            transition_line(&run, &done),
            "bad | INFO    | Flow run 'red-fox' - Finished in state Completed()"
        );
        let timed_out = json!({"type": "FAILED", "name": "TimedOut",
            "message": "took \u{1b}[2Jtoo long", "timestamp": "bad"});
        assert_eq!(
            transition_line(&run, &timed_out),
            "bad | ERROR   | Flow run 'red-fox' - Finished in state TimedOut(\"took too long\", type=FAILED)"
        );
        let running = json!({"type": "RUNNING", "name": "Running", "timestamp": "bad"});
        assert!(transition_line(&run, &running).ends_with("Entered state Running()"));
    }

    #[test]
    fn state_filters_and_log_lines() {
        assert_eq!(state_filter("completed"), "COMPLETED");
        assert_eq!(state_filter("awaiting-retry"), "AWAITING_RETRY");
        let line = format_log(
            &json!({"seq": 1, "level": "info", "message": "hi", "timestamp": "bad"}),
            "Flow run 'x'",
        );
        assert_eq!(line, "bad | INFO    | Flow run 'x' - hi");
    }
}
