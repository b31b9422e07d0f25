//! The runs list (filters in the URL, keyset pages, bulk cancel and retry) and a flow
//! run's page: state, times, parameters and result, the compact state history, the
//! timeline and table of its task and subflow runs, artifacts, logs with a live tail,
//! and the cancel, retry and resume actions.

use super::form;
use super::layout::{self, PageError, Section, badge, maybe_time, time};
use super::session::{CsrfForm, Viewer, urlencode};
use crate::api::{ApiError, AppState};
use crate::model::state::{State as RunState, StateType};
use crate::store::{
    ArtifactRecord, FlowRunRecord, LogLine, RunFilter, TaskRunFilter, TaskRunGroup, TaskRunSummary,
};
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use futures_util::stream::{self, Stream};
use maud::{Markup, html};
use serde_json::Value;
use std::convert::Infallible;
use std::time::Duration;

const PAGE: i64 = 50;
/// Log lines a run page shows at first (the download has them all).
const LOG_LINES: i64 = 1000;
/// Task runs a run page lists (the task-runs tab pages through them all).
const TASK_ROWS: usize = 200;
/// Past this many task runs a run page draws its timeline and graph from the store's
/// counts per task and state instead of from the runs.
const LARGE: i64 = 500;
/// Past this many task and subflow runs the timeline draws one bar per task.
const TIMELINE_RUNS: usize = 200;

/// The runs list's filters, as the URL carries them.
#[derive(Default)]
struct Filters {
    states: Vec<StateType>,
    deployment: String,
    flow: String,
    tag: String,
    name: String,
    range: String,
    subflows: bool,
    future: bool,
    before: Option<String>,
}

impl Filters {
    fn from_query(q: &[(String, String)]) -> Result<Self, ApiError> {
        let mut f = Filters {
            range: "all".into(),
            ..Default::default()
        };
        for (k, v) in q {
            match k.as_str() {
                "state" => f.states.extend(crate::api::parse_states(v)?),
                "deployment" => f.deployment = v.trim().to_owned(),
                "flow" => f.flow = v.trim().to_owned(),
                "tag" => f.tag = v.trim().to_owned(),
                "name" => f.name = v.trim().to_owned(),
                "range" => f.range = v.clone(),
                "subflows" => f.subflows = v == "1" || v == "on",
                "future" => f.future = v == "1" || v == "on",
                "before" if !v.is_empty() => f.before = Some(v.clone()),
                _ => {}
            }
        }
        f.states.sort_by_key(|s| s.as_str());
        f.states.dedup();
        Ok(f)
    }

    fn since(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self.range.as_str() {
            "1h" => Some(now - chrono::Duration::hours(1)),
            "24h" => Some(now - chrono::Duration::hours(24)),
            "7d" => Some(now - chrono::Duration::days(7)),
            "30d" => Some(now - chrono::Duration::days(30)),
            _ => None,
        }
    }

    /// The query string of these filters (without the page cursor).
    fn query(&self) -> String {
        let mut parts: Vec<String> = self
            .states
            .iter()
            .map(|s| format!("state={}", s.as_str()))
            .collect();
        for (k, v) in [
            ("deployment", &self.deployment),
            ("flow", &self.flow),
            ("tag", &self.tag),
            ("name", &self.name),
        ] {
            if !v.is_empty() {
                parts.push(format!("{k}={}", urlencode(v)));
            }
        }
        if self.range != "all" {
            parts.push(format!("range={}", urlencode(&self.range)));
        }
        if self.subflows {
            parts.push("subflows=1".into());
        }
        if self.future {
            parts.push("future=1".into());
        }
        parts.join("&")
    }
}

fn run_link(r: &FlowRunRecord) -> Markup {
    html! { a href={ "/runs/" (r.id) } { (r.name) } }
}

pub async fn list(
    viewer: Viewer,
    State(state): State<AppState>,
    Query(q): Query<Vec<(String, String)>>,
) -> Result<Markup, PageError> {
    let f = Filters::from_query(&q)?;
    let now = Utc::now();
    let deployment_id = if f.deployment.is_empty() {
        None
    } else {
        Some(
            crate::api::find_deployment(&state, &viewer.workspace_id, &f.deployment)
                .await?
                .id,
        )
    };
    let filter = RunFilter {
        states: f.states.clone(),
        deployment_id,
        flow: (!f.flow.is_empty()).then(|| f.flow.clone()),
        tag: (!f.tag.is_empty()).then(|| f.tag.clone()),
        name_contains: (!f.name.is_empty()).then(|| f.name.clone()),
        top_level: !f.subflows,
        scheduled_until: (!f.future).then_some(now),
        state_name: None,
        since: f.since(now),
        until: None,
        before_id: f.before.clone(),
        limit: PAGE + 1,
    };
    let mut runs = state
        .store()
        .list_flow_runs(&viewer.workspace_id, &filter)
        .await?;
    let more = runs.len() as i64 > PAGE;
    runs.truncate(PAGE as usize);
    let query = f.query();
    let next = more
        .then(|| {
            runs.last()
                .map(|r| format!("/runs?{query}&before={}", r.id))
        })
        .flatten();
    let body = html! {
        h1 { "Runs" }
        (tabs(true))
        form.filters method="get" action="/runs" {
            (state_boxes(&f.states))
            label { "Deployment" input type="text" name="deployment" value=(f.deployment) size="14"; }
            label { "Flow" input type="text" name="flow" value=(f.flow) size="14"; }
            label { "Tag" input type="text" name="tag" value=(f.tag) size="10"; }
            label { "Name contains" input type="text" name="name" value=(f.name) size="14"; }
            label { "Created"
                select name="range" {
                    @for (v, l) in [("all", "any time"), ("1h", "last hour"), ("24h", "last day"), ("7d", "last week"), ("30d", "last 30 days")] {
                        option value=(v) selected[f.range == v] { (l) }
                    }
                }
            }
            label.check { input type="checkbox" name="subflows" value="1" checked[f.subflows]; "subflow runs" }
            label.check { input type="checkbox" name="future" value="1" checked[f.future]; "future scheduled runs" }
            button type="submit" { "Filter" }
            a href="/runs" { "Clear" }
        }
        form method="post" action="/runs/bulk" {
            input type="hidden" name="csrf" value=(viewer.csrf);
            input type="hidden" name="back" value={ "/runs?" (query) };
            div.actions {
                button.secondary type="submit" name="action" value="cancel" { "Cancel selected" }
                button.secondary type="submit" name="action" value="retry" { "Retry selected" }
            }
            table #runs {
                thead { tr {
                    th { input type="checkbox" data-select-all="1" aria-label="Select all"; }
                    th { "Name" } th { "Flow" } th { "State" } th { "Created" } th { "Started" } th { "Duration" } th { "Tags" }
                } }
                tbody {
                    @for r in &runs {
                        tr {
                            td { input type="checkbox" name="run" value=(r.id) aria-label="Select"; }
                            td { (run_link(r)) @if r.parent_flow_run_id.is_some() { " " span.muted { "(subflow)" } } }
                            td { (r.flow_name) }
                            td { (badge(&r.state)) }
                            td { (time(r.created)) }
                            td { (maybe_time(r.start_time.or(r.expected_start))) }
                            td { (layout::elapsed(r.start_time, r.end_time)) }
                            td.muted { (r.tags.join(", ")) }
                        }
                    }
                    @if runs.is_empty() { tr { td colspan="8" .muted { "No runs match these filters." } } }
                }
            }
        }
        div.pager {
            span.muted { (runs.len()) @if more { "+" } " runs on this page" }
            @if f.before.is_some() { a href={ "/runs?" (query) } { "Newest" } }
            @if let Some(n) = next { a href=(n) { "Older" } }
        }
    };
    Ok(layout::page(&viewer, Section::Runs, "Flow runs", body))
}

/// The state multi-select of a list's filters.
fn state_boxes(checked: &[StateType]) -> Markup {
    html! {
        fieldset.states {
            @for s in StateType::ALL {
                label.check {
                    input type="checkbox" name="state" value=(s.as_str()) checked[checked.contains(&s)];
                    (s.as_str())
                }
            }
        }
    }
}

/// The runs list's tabs: flow runs and task runs.
fn tabs(flows: bool) -> Markup {
    html! {
        nav.tabs {
            a href="/runs" class=[flows.then_some("on")] { "Flow runs" }
            a href="/task-runs" class=[(!flows).then_some("on")] { "Task runs" }
        }
    }
}

/// The task-runs tab: the workspace's task runs, newest first, filtered by state, task
/// and flow run (all in the URL), in keyset pages.
pub async fn task_list(
    viewer: Viewer,
    State(state): State<AppState>,
    Query(q): Query<Vec<(String, String)>>,
) -> Result<Markup, PageError> {
    let mut states = vec![];
    let (mut task, mut flow_run, mut before) = (String::new(), String::new(), None);
    for (k, v) in &q {
        match k.as_str() {
            "state" => states.extend(crate::api::parse_states(v)?),
            "task" => task = v.trim().to_owned(),
            "flow_run" => flow_run = v.trim().to_owned(),
            "before" if !v.is_empty() => before = Some(v.clone()),
            _ => {}
        }
    }
    states.sort_by_key(|s| s.as_str());
    states.dedup();
    let filter = TaskRunFilter {
        states: states.clone(),
        task_name: (!task.is_empty()).then(|| task.clone()),
        flow_run_id: (!flow_run.is_empty()).then(|| flow_run.clone()),
        before_id: before.clone(),
        limit: PAGE + 1,
    };
    let mut runs = state
        .store()
        .list_task_runs(&viewer.workspace_id, &filter)
        .await?;
    let more = runs.len() as i64 > PAGE;
    runs.truncate(PAGE as usize);
    let mut parts: Vec<String> = states
        .iter()
        .map(|s| format!("state={}", s.as_str()))
        .collect();
    for (k, v) in [("task", &task), ("flow_run", &flow_run)] {
        if !v.is_empty() {
            parts.push(format!("{k}={}", urlencode(v)));
        }
    }
    let query = parts.join("&");
    let next = more
        .then(|| {
            runs.last()
                .map(|r| format!("/task-runs?{query}&before={}", r.id))
        })
        .flatten();
    let body = html! {
        h1 { "Runs" }
        (tabs(false))
        form.filters method="get" action="/task-runs" {
            (state_boxes(&states))
            label { "Task" input type="text" name="task" value=(task) size="14"; }
            label { "Flow run id" input type="text" name="flow_run" value=(flow_run) size="36"; }
            button type="submit" { "Filter" }
            a href="/task-runs" { "Clear" }
        }
        table #task-runs {
            thead { tr {
                th { "Task run" } th { "Task" } th { "Flow run" } th { "State" } th.num { "Attempts" } th { "Started" } th { "Duration" } th { "Tags" }
            } }
            tbody {
                @for t in &runs {
                    tr {
                        td { (t.name) }
                        td { (t.task_name) }
                        td.mono { a href={ "/runs/" (t.flow_run_id) } { (&t.flow_run_id[..t.flow_run_id.len().min(13)]) "…" } }
                        td { (badge(&t.state)) }
                        td.num { (t.run_count) }
                        td { (maybe_time(t.start_time)) }
                        td { (layout::elapsed(t.start_time, t.end_time)) }
                        td.muted { (t.tags.join(", ")) }
                    }
                }
                @if runs.is_empty() { tr { td colspan="8" .muted { "No task runs match these filters." } } }
            }
        }
        div.pager {
            span.muted { (runs.len()) @if more { "+" } " task runs on this page" }
            @if before.is_some() { a href={ "/task-runs?" (query) } { "Newest" } }
            @if let Some(n) = next { a href=(n) { "Older" } }
        }
    };
    Ok(layout::page(&viewer, Section::Runs, "Task runs", body))
}

/// A run of the viewer's workspace, or 404.
async fn find(state: &AppState, viewer: &Viewer, id: &str) -> Result<FlowRunRecord, ApiError> {
    crate::api::find_run(state, &viewer.workspace_id, id).await
}

/// Everything the run page shows that changes while it runs.
struct Live {
    run: FlowRunRecord,
    history: Vec<RunState>,
    /// The first [`LARGE`] task runs (one more tells there are more).
    tasks: Vec<TaskRunSummary>,
    /// For a run of more than [`LARGE`] task runs: its task runs per task and state, and
    /// the `wait_for` edges between tasks.
    groups: Option<std::sync::Arc<Groups>>,
    subflows: Vec<FlowRunRecord>,
    artifacts: Vec<ArtifactRecord>,
    pause: Option<crate::store::PauseRecord>,
    /// The deployment's name, while it exists.
    deployment: Option<String>,
    /// The run's transactions, in the order they began.
    transactions: Vec<crate::store::TransactionRecord>,
}

/// A large run's task runs per task and state, and its `wait_for` edges between tasks.
type Groups = (Vec<TaskRunGroup>, Vec<(String, String)>);

/// Groups of final runs, by run id and the time of its final state: a final run's task
/// runs no longer change (a retry gives the run a new state, so a new key).
type FinalGroups = std::collections::HashMap<String, (DateTime<Utc>, std::sync::Arc<Groups>)>;
static FINAL_GROUPS: std::sync::Mutex<Option<FinalGroups>> = std::sync::Mutex::new(None);
const FINAL_GROUPS_KEPT: usize = 256;

async fn groups_of(
    state: &AppState,
    run: &FlowRunRecord,
) -> Result<std::sync::Arc<Groups>, ApiError> {
    let kept = |cache: &mut Option<std::collections::HashMap<_, _>>| {
        cache
            .get_or_insert_with(Default::default)
            .get(&run.id)
            .filter(|(at, _): &&(DateTime<Utc>, std::sync::Arc<Groups>)| *at == run.state.timestamp)
            .map(|(_, g)| g.clone())
    };
    if run.state.is_final()
        && let Some(g) = kept(&mut FINAL_GROUPS.lock().unwrap_or_else(|e| e.into_inner()))
    {
        return Ok(g);
    }
    let store = state.store();
    let groups = std::sync::Arc::new((
        store.task_run_groups(&run.id).await?,
        store.task_group_edges(&run.id).await?,
    ));
    if run.state.is_final() {
        let mut cache = FINAL_GROUPS.lock().unwrap_or_else(|e| e.into_inner());
        let map = cache.get_or_insert_with(Default::default);
        if map.len() >= FINAL_GROUPS_KEPT {
            map.clear();
        }
        map.insert(run.id.clone(), (run.state.timestamp, groups.clone()));
    }
    Ok(groups)
}

async fn load(state: &AppState, run: FlowRunRecord) -> Result<Live, ApiError> {
    let store = state.store();
    let history = store.state_history(&run.id).await?;
    let tasks = store.task_run_summaries(&run.id, LARGE + 1).await?;
    let groups = if tasks.len() as i64 > LARGE {
        Some(groups_of(state, &run).await?)
    } else {
        None
    };
    let subflows = store.subflow_runs(&run.id).await?;
    let artifacts = store.artifacts(&run.id).await?;
    let pause = if run.state.kind == StateType::Paused {
        store.open_pause(&run.id).await?
    } else {
        None
    };
    let deployment = match &run.deployment_id {
        Some(id) => store.deployment_by_id(id).await?.map(|d| d.name),
        None => None,
    };
    let transactions = store.transactions(&run.id).await?;
    Ok(Live {
        deployment,
        transactions,
        run,
        history,
        tasks,
        groups,
        subflows,
        artifacts,
        pause,
    })
}

fn head(l: &Live, csrf: &str, resume_errors: Option<&form::Errors>) -> Markup {
    let r = &l.run;
    let retryable = matches!(
        r.state.kind,
        StateType::Failed | StateType::Crashed | StateType::Cancelled
    );
    html! {
        h1 { (r.name) " " (badge(&r.state)) }
        @if let Some(m) = &r.state.message { p.muted { (m) } }
        div.actions {
            @if !r.state.is_final() {
                form method="post" action={ "/runs/" (r.id) "/cancel" } {
                    input type="hidden" name="csrf" value=(csrf);
                    button.danger type="submit" { "Cancel" }
                }
            }
            @if retryable {
                form method="post" action={ "/runs/" (r.id) "/retry" } {
                    input type="hidden" name="csrf" value=(csrf);
                    button type="submit" { "Retry" }
                }
            }
        }
        @if let Some(p) = &l.pause {
            (resume_form(r, p, csrf, resume_errors))
        }
        div.panel {
            dl.kv {
                dt { "Flow" } dd { (r.flow_name) }
                dt { "Run id" } dd.mono { (r.id) }
                @if let Some(d) = &r.deployment_id {
                    dt { "Deployment" }
                    dd { a href={ "/deployments/" (d) } { (l.deployment.as_deref().unwrap_or(d)) } }
                }
                @if let Some(p) = &r.parent_flow_run_id { dt { "Parent run" } dd { a href={ "/runs/" (p) } { (p) } } }
                dt { "Component" } dd.mono { (r.component_digest) }
                dt { "Created" } dd { (time(r.created)) }
                @if let Some(t) = r.expected_start { dt { "Expected start" } dd { (time(t)) } }
                dt { "Started" } dd { (maybe_time(r.start_time)) }
                dt { "Ended" } dd { (maybe_time(r.end_time)) }
                dt { "Duration" } dd { (layout::elapsed(r.start_time, r.end_time)) }
                dt { "Attempts" } dd { (r.run_count) }
                @if r.crash_count > 0 { dt { "Node restarts" } dd { (r.crash_count) } }
                @if let Some(n) = &r.node_id { dt { "Node" } dd.mono { (n) } }
                @if !r.tags.is_empty() { dt { "Tags" } dd { (r.tags.join(", ")) } }
            }
        }
        @if let Some(result) = &r.result {
            h2 { "Result" }
            (layout::json_block(result))
        }
        h2 { "State history" }
        (history(&l.history))
    }
}

fn resume_form(
    r: &FlowRunRecord,
    p: &crate::store::PauseRecord,
    csrf: &str,
    errors: Option<&form::Errors>,
) -> Markup {
    let empty = form::Errors::new();
    let errors = errors.unwrap_or(&empty);
    html! {
        div.panel #resume {
            h2.first { @if p.suspend { "Suspended" } @else { "Paused" } ": waiting for input" }
            @if let Some(d) = &p.description { div.md { (super::markdown::render(d)) } }
            p.muted { "Times out at " (time(p.timeout_at)) }
            @if let Some(top) = errors.get("") { (layout::problem(&top.join("; "), &[])) }
            form method="post" action={ "/runs/" (r.id) "/resume" } {
                input type="hidden" name="csrf" value=(csrf);
                @if let Some(schema) = &p.input_schema {
                    (form::fields(schema, &Value::Null, errors))
                    (form::json_editor(&Value::Null))
                }
                button type="submit" { "Resume" }
            }
        }
    }
}

/// The state history in a compact form: one row per attempt, its states inline.
fn history(states: &[RunState]) -> Markup {
    let mut attempts: Vec<Vec<&RunState>> = vec![];
    for s in states {
        let starts_attempt = s.kind == StateType::Running
            && attempts
                .last()
                .is_some_and(|a| a.iter().any(|x| x.kind == StateType::Running));
        if attempts.is_empty() || starts_attempt {
            attempts.push(vec![]);
        }
        if let Some(a) = attempts.last_mut() {
            a.push(s);
        }
    }
    html! {
        table {
            thead { tr { th { "Attempt" } th { "States" } th { "From" } th { "Took" } } }
            tbody {
                @for (i, a) in attempts.iter().enumerate() {
                    tr {
                        td.num { (i + 1) }
                        td {
                            details {
                                summary { @for s in a { (badge(s)) " " } }
                                table {
                                    @for s in a {
                                        tr { td { (badge(s)) } td { (time(s.timestamp)) } td.muted { (s.message.as_deref().unwrap_or("")) } }
                                    }
                                }
                            }
                        }
                        td { @if let Some(s) = a.first() { (time(s.timestamp)) } }
                        td { @if let (Some(f), Some(l)) = (a.first(), a.last()) { (layout::duration(l.timestamp - f.timestamp)) } }
                    }
                }
            }
        }
    }
}

fn state_class(s: &RunState) -> String {
    if s.name == "Cached" {
        "Cached".into()
    } else {
        s.kind.as_str().into()
    }
}

/// A task's runs drawn as one: from the first start to the last end, coloured by the
/// worst state, with the count per state.
#[derive(Default)]
struct TaskGroup {
    count: i64,
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
    running: bool,
    class: String,
    states: std::collections::BTreeMap<String, i64>,
}

impl TaskGroup {
    fn add(
        &mut self,
        class: &str,
        n: i64,
        start: Option<DateTime<Utc>>,
        end: Option<DateTime<Utc>>,
        running: bool,
    ) {
        self.count += n;
        self.start = match (self.start, start) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.end = self.end.max(end);
        self.running |= running;
        if self.class.is_empty()
            || super::graph::severity(class) > super::graph::severity(&self.class)
        {
            self.class = class.to_owned();
        }
        *self.states.entry(class.to_owned()).or_default() += n;
    }

    fn note(&self) -> String {
        let parts: Vec<String> = self
            .states
            .iter()
            .map(|(c, k)| format!("{k} {c}"))
            .collect();
        parts.join(", ")
    }
}

/// The task runs per task, in the order tasks first ran: from the store's counts for a
/// large run, else from the runs.
fn task_groups(l: &Live) -> Vec<(String, TaskGroup)> {
    let mut order: Vec<String> = vec![];
    let mut groups: std::collections::HashMap<String, TaskGroup> = Default::default();
    let mut add = |name: &str, class: &str, n: i64, start, end, running| {
        if !groups.contains_key(name) {
            order.push(name.to_owned());
        }
        groups
            .entry(name.to_owned())
            .or_default()
            .add(class, n, start, end, running);
    };
    match l.groups.as_deref() {
        Some((counted, _)) => {
            for g in counted {
                add(
                    &g.task_name,
                    &g.class,
                    g.count,
                    g.first_start,
                    g.last_end,
                    g.running > 0,
                );
            }
        }
        None => {
            for t in &l.tasks {
                let running = t.start_time.is_some() && t.end_time.is_none();
                add(
                    &t.task_name,
                    &state_class(&t.state),
                    1,
                    t.start_time,
                    t.end_time,
                    running,
                );
            }
        }
    }
    order
        .into_iter()
        .map(|name| {
            let g = groups.remove(&name).unwrap_or_default();
            (name, g)
        })
        .collect()
}

/// The timeline's bars: one per task run, or one per task past [`TIMELINE_RUNS`].
fn task_bars(l: &Live) -> Vec<super::timeline::Bar> {
    if l.groups.is_none() && l.tasks.len() + l.subflows.len() <= TIMELINE_RUNS {
        return l
            .tasks
            .iter()
            .map(|t| super::timeline::Bar {
                label: t.name.clone(),
                href: None,
                class: state_class(&t.state),
                start: t.start_time,
                end: t.end_time,
                note: format!(
                    "{} · {} attempt(s) · {}",
                    t.state.name,
                    t.run_count,
                    layout::elapsed(t.start_time, t.end_time)
                ),
            })
            .collect();
    }
    task_groups(l)
        .into_iter()
        .map(|(name, g)| super::timeline::Bar {
            label: format!("{name} ×{}", g.count),
            href: None,
            class: g.class.clone(),
            start: g.start,
            end: if g.running { None } else { g.end },
            note: g.note(),
        })
        .collect()
}

/// The dependency graph: run by run, or for a large run task by task.
fn dependency_graph(l: &Live) -> Markup {
    let task_classes: Vec<String> = l.tasks.iter().map(|t| state_class(&t.state)).collect();
    let sub_classes: Vec<String> = l.subflows.iter().map(|s| state_class(&s.state)).collect();
    let sub_links: Vec<String> = l
        .subflows
        .iter()
        .map(|s| format!("/runs/{}", s.id))
        .collect();
    let sub_labels: Vec<String> = l
        .subflows
        .iter()
        .map(|s| format!("{} (subflow)", s.name))
        .collect();
    let grouped = l.groups.as_deref().map(|(_, edges)| {
        let groups = task_groups(l);
        let upstream: Vec<Vec<String>> = groups
            .iter()
            .map(|(name, _)| {
                edges
                    .iter()
                    .filter(|(up, down)| down == name && up != name)
                    .map(|(up, _)| up.clone())
                    .collect()
            })
            .collect();
        let labels: Vec<String> = groups
            .iter()
            .map(|(n, g)| format!("{n} ×{}", g.count))
            .collect();
        (groups, upstream, labels)
    });
    let mut nodes: Vec<super::graph::Node> = match &grouped {
        Some((groups, upstream, labels)) => groups
            .iter()
            .enumerate()
            .map(|(i, (name, g))| super::graph::Node {
                id: name,
                label: &labels[i],
                group: name,
                class: &g.class,
                href: None,
                upstream: &upstream[i],
            })
            .collect(),
        None => l
            .tasks
            .iter()
            .zip(&task_classes)
            .map(|(t, class)| super::graph::Node {
                id: &t.id,
                label: &t.name,
                group: &t.task_name,
                class,
                href: None,
                upstream: &t.upstream,
            })
            .collect(),
    };
    for (i, s) in l.subflows.iter().enumerate() {
        nodes.push(super::graph::Node {
            id: &s.id,
            label: &sub_labels[i],
            group: &s.flow_name,
            class: &sub_classes[i],
            href: Some(sub_links[i].clone()),
            upstream: &[],
        });
    }
    html! {
        details.graph open[nodes.len() <= super::graph::MAX_NODES] {
            summary { "Dependency graph" @if grouped.is_some() { " (by task)" } }
            (super::graph::graph(&nodes))
        }
    }
}

fn tasks(l: &Live) -> Markup {
    let r = &l.run;
    let count: i64 = match l.groups.as_deref() {
        Some((groups, _)) => groups.iter().map(|g| g.count).sum(),
        None => l.tasks.len() as i64,
    };
    let mut bars = task_bars(l);
    bars.extend(l.subflows.iter().map(|s| super::timeline::Bar {
        label: format!("{} (subflow)", s.name),
        href: Some(format!("/runs/{}", s.id)),
        class: state_class(&s.state),
        start: s.start_time,
        end: s.end_time,
        note: format!(
            "{} · {}",
            s.state.name,
            layout::elapsed(s.start_time, s.end_time)
        ),
    }));
    bars.sort_by_key(|b| b.start);
    let from = r
        .start_time
        .or_else(|| bars.iter().filter_map(|b| b.start).min())
        .unwrap_or(r.created);
    let to = r
        .end_time
        .or_else(|| bars.iter().filter_map(|b| b.end).max())
        .unwrap_or_else(Utc::now)
        .max(from + chrono::Duration::milliseconds(1));
    let all = format!("/task-runs?flow_run={}", r.id);
    html! {
        h2 { "Task runs (" (count) ")" @if !l.subflows.is_empty() { " and subflow runs (" (l.subflows.len()) ")" } }
        @if bars.is_empty() {
            p.muted { "No task runs yet." }
        } @else {
            (super::timeline::timeline(&bars, from, to))
            (dependency_graph(l))
            table #task-runs {
                thead { tr { th { "Task run" } th { "Task" } th { "State" } th.num { "Attempts" } th { "Started" } th { "Duration" } th { "Cache key" } @if !l.transactions.is_empty() { th { "Transaction" } } } }
                tbody {
                    @for t in l.tasks.iter().take(TASK_ROWS) {
                        tr {
                            td { (t.name) }
                            td { (t.task_name) }
                            td { (badge(&t.state)) }
                            td.num { (t.run_count) }
                            td { (maybe_time(t.start_time)) }
                            td { (layout::elapsed(t.start_time, t.end_time)) }
                            td.mono.muted { (t.cache_key.as_deref().unwrap_or("")) }
                            @if !l.transactions.is_empty() {
                                td { (transaction_cell(l, t.transaction_id.as_deref())) }
                            }
                        }
                    }
                }
            }
            (transactions(l))
            @if count > TASK_ROWS as i64 {
                p.muted { "Showing the first " (TASK_ROWS) " of " (count) " task runs. " a href=(all) { "All task runs of this run" } }
            }
        }
    }
}

/// How a transaction is named on the page: its key, else its place among the run's.
fn transaction_label(l: &Live, id: &str) -> Option<(String, crate::model::run::TransactionState)> {
    let (i, t) = l
        .transactions
        .iter()
        .enumerate()
        .find(|(_, t)| t.id == id)?;
    let name = t
        .key
        .clone()
        .unwrap_or_else(|| format!("transaction {}", i + 1));
    Some((name, t.state))
}

fn transaction_state(state: crate::model::run::TransactionState) -> Markup {
    use crate::model::run::TransactionState as S;
    let (class, text) = match state {
        S::Active => ("s-RUNNING", "active"),
        S::Committed => ("s-COMPLETED", "committed"),
        S::RolledBack => ("s-FAILED", "rolled back"),
    };
    html! { span class={ "badge " (class) } { (text) } }
}

fn transaction_cell(l: &Live, id: Option<&str>) -> Markup {
    match id.and_then(|id| transaction_label(l, id)) {
        Some((name, state)) => html! { (name) " " (transaction_state(state)) },
        None => html! {},
    }
}

/// The run's transactions (Prefect's `with transaction()`) and how each ended.
fn transactions(l: &Live) -> Markup {
    html! {
        @if !l.transactions.is_empty() {
            h3 { "Transactions (" (l.transactions.len()) ")" }
            table #transactions {
                thead { tr { th { "Transaction" } th { "Inside" } th { "Isolation" } th { "Commit mode" } th { "State" } th { "Began" } th { "Ended" } } }
                tbody {
                    @for t in &l.transactions {
                        tr {
                            td { (transaction_label(l, &t.id).map(|(n, _)| n).unwrap_or_default()) }
                            td.muted { (t.parent_id.as_deref().and_then(|p| transaction_label(l, p)).map(|(n, _)| n).unwrap_or_default()) }
                            td { (t.isolation.as_str()) }
                            td { (t.commit_mode.as_str()) }
                            td { (transaction_state(t.state)) }
                            td { (maybe_time(Some(t.created))) }
                            td { (maybe_time(t.ended)) }
                        }
                    }
                }
            }
        }
    }
}

fn artifacts(l: &Live) -> Markup {
    html! {
        @if !l.artifacts.is_empty() {
            h2 { "Artifacts" }
            @for a in &l.artifacts {
                (super::artifacts::view(a))
            }
        }
    }
}

fn log_rows(lines: &[LogLine]) -> Markup {
    html! {
        @for l in lines {
            tr data-seq=(l.seq) class={ "lv-" (l.record.level) } {
                td.t { (l.record.timestamp.format("%H:%M:%S%.3f")) }
                td.t { (l.record.level) }
                td { (l.record.message) }
            }
        }
    }
}

#[derive(serde::Deserialize, Default)]
pub struct LogQuery {
    level: Option<String>,
}

fn level_rank(l: &str) -> u8 {
    match l {
        "DEBUG" => 0,
        "INFO" => 1,
        "WARNING" => 2,
        "ERROR" => 3,
        "CRITICAL" => 4,
        _ => 1,
    }
}

fn logs_panel(run: &FlowRunRecord, lines: &[LogLine], level: &str) -> Markup {
    html! {
        h2 { "Logs" }
        form.filters method="get" action={ "/runs/" (run.id) } {
            label { "Level at least"
                select name="level" {
                    @for l in ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] {
                        option value=(l) selected[l == level] { (l) }
                    }
                }
            }
            button.secondary type="submit" { "Show" }
            a href={ "/runs/" (run.id) "/logs.txt" } download { "Download all" }
        }
        div.logs {
            table { tbody #log-lines sse-swap="log" hx-swap="beforeend" { (log_rows(lines)) } }
        }
    }
}

pub async fn page(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<LogQuery>,
) -> Result<Markup, PageError> {
    let run = find(&state, &viewer, &id).await?;
    render_page(&state, &viewer, run, q.level.as_deref(), None).await
}

async fn render_page(
    state: &AppState,
    viewer: &Viewer,
    run: FlowRunRecord,
    level: Option<&str>,
    resume_errors: Option<&form::Errors>,
) -> Result<Markup, PageError> {
    let level = level
        .filter(|l| ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"].contains(l))
        .unwrap_or("DEBUG");
    let lines = state.store().logs_after(&run.id, 0, LOG_LINES).await?;
    let last_seq = lines.last().map(|l| l.seq).unwrap_or(0);
    let shown: Vec<LogLine> = lines
        .into_iter()
        .filter(|l| level_rank(&l.record.level) >= level_rank(level))
        .collect();
    let live = load(state, run).await?;
    let seen = fingerprint(&live);
    let r = &live.run;
    let title = r.name.clone();
    let body = html! {
        div hx-ext="sse" sse-connect={ "/runs/" (r.id) "/live?after=" (last_seq) "&level=" (level) "&h=" (seen.head) "&t=" (seen.tasks) "&a=" (seen.artifacts) } sse-close="end" {
            div #run-head sse-swap="head" { (head(&live, &viewer.csrf, resume_errors)) }
            div #run-tasks sse-swap="tasks" { (tasks(&live)) }
            div #run-artifacts sse-swap="artifacts" { (artifacts(&live)) }
            (logs_panel(r, &shown, level))
            @if last_seq >= LOG_LINES {
                p.muted { "The first " (LOG_LINES) " lines are shown; later ones follow live; the download has every line." }
            }
            h2 { "Parameters" }
            (layout::json_block(&r.parameters))
        }
    };
    Ok(layout::page(viewer, Section::Runs, &title, body))
}

#[derive(serde::Deserialize)]
pub struct LiveQuery {
    after: Option<i64>,
    level: Option<String>,
    /// What the page shows (see [`fingerprint`]); a part not given is sent at once.
    #[serde(default)]
    h: String,
    #[serde(default)]
    t: String,
    #[serde(default)]
    a: String,
}

/// What the live stream last sent, to send only what changed.
#[derive(PartialEq, Default, Clone)]
struct Seen {
    head: String,
    tasks: String,
    artifacts: String,
}

fn digest(s: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    s.hash(&mut h);
    format!("{:016x}", h.finish())
}

/// Short digests of what the page shows, so the live stream sends a part only when it
/// differs from what the page was rendered with.
fn fingerprint(l: &Live) -> Seen {
    let head = format!(
        "{}|{}|{}|{:?}",
        l.run.state.kind.as_str(),
        l.run.state.name,
        l.run.state.timestamp,
        l.pause.as_ref().map(|p| &p.id)
    );
    let mut tasks = String::with_capacity(l.tasks.len() * 40);
    match l.groups.as_deref() {
        Some((groups, _)) => {
            for g in groups {
                tasks.push_str(&format!(
                    "{}|{}|{}|{}|{};",
                    g.task_name, g.class, g.count, g.running, g.changed
                ));
            }
        }
        None => {
            for t in &l.tasks {
                tasks.push_str(&t.state.timestamp.to_rfc3339());
                tasks.push_str(t.state.kind.as_str());
            }
        }
    }
    for s in &l.subflows {
        tasks.push_str(&s.state.timestamp.to_rfc3339());
    }
    let artifacts: String = l
        .artifacts
        .iter()
        .map(|a| format!("{}{}", a.id, a.updated))
        .collect();
    Seen {
        head: digest(&head),
        tasks: digest(&tasks),
        artifacts: digest(&artifacts),
    }
}

/// The run page's live updates as server-sent events: `head`, `tasks` and `artifacts`
/// (HTML replacing those parts when they change), `log` (new log lines), and `end` once
/// the run is final and everything it wrote was sent.
pub async fn live(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<LiveQuery>,
) -> Result<Response, PageError> {
    // Checked here, so another workspace's run is a 404 and not an empty stream.
    find(&state, &viewer, &id).await?;
    let permit = LivePermit::take(viewer.session_id())?;
    let level = q.level.unwrap_or_else(|| "DEBUG".into());
    // The first events bring the page up to date with the run as it is now, however
    // long ago the page was rendered; parts the page already shows are not sent again
    // (a form with its field errors stays as it is).
    let seen = Seen {
        head: q.h,
        tasks: q.t,
        artifacts: q.a,
    };
    let start = LiveState {
        state,
        csrf: viewer.csrf,
        run_id: id,
        after: q.after.unwrap_or(0),
        min_level: level_rank(&level),
        seen,
        done: false,
        tasks_sent: std::time::Instant::now(),
        poll: Duration::from_millis(300),
        _permit: permit,
    };
    Ok(Sse::new(live_stream(start))
        .keep_alive(KeepAlive::default())
        .into_response())
}

struct LiveState {
    state: AppState,
    csrf: String,
    run_id: String,
    after: i64,
    min_level: u8,
    seen: Seen,
    done: bool,
    /// When the task runs were last sent.
    tasks_sent: std::time::Instant,
    /// How long to wait between looks at the run.
    poll: Duration,
    /// Held while the stream is open.
    _permit: LivePermit,
}

/// Live streams open at once on this server, and per session: each polls the store, so
/// a browser (or a script holding a session) cannot open them without bound.
const MAX_LIVE: usize = 2000;
const MAX_LIVE_PER_SESSION: usize = 16;

static LIVE: std::sync::Mutex<Option<std::collections::HashMap<String, usize>>> =
    std::sync::Mutex::new(None);

/// A live stream's place among [`MAX_LIVE`] and its session's [`MAX_LIVE_PER_SESSION`].
struct LivePermit {
    session: String,
}

impl LivePermit {
    fn take(session: &str) -> Result<Self, ApiError> {
        let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
        let map = live.get_or_insert_with(Default::default);
        let total: usize = map.values().sum();
        let mine = map.get(session).copied().unwrap_or(0);
        if total >= MAX_LIVE || mine >= MAX_LIVE_PER_SESSION {
            return Err(ApiError::Unavailable {
                detail: if mine >= MAX_LIVE_PER_SESSION {
                    format!("this session has {mine} live pages open; close some and reload")
                } else {
                    "the server has as many live pages open as it serves; reload later".into()
                },
                retry_after: Duration::from_secs(5),
            });
        }
        *map.entry(session.to_owned()).or_default() += 1;
        Ok(Self {
            session: session.to_owned(),
        })
    }
}

impl Drop for LivePermit {
    fn drop(&mut self) {
        let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(map) = live.as_mut()
            && let Some(n) = map.get_mut(&self.session)
        {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.session);
            }
        }
    }
}

/// How often running task bars are redrawn when nothing else changed.
const REDRAW: Duration = Duration::from_secs(2);

fn live_stream(start: LiveState) -> impl Stream<Item = Result<Event, Infallible>> {
    stream::unfold(Some(start), |st| async move {
        let mut st = st?;
        if st.done {
            return Some((vec![Event::default().event("end").data("")], None));
        }
        loop {
            let mut events = vec![];
            let run = match st.state.store().flow_run(&st.run_id).await {
                Ok(Some(r)) => r,
                _ => return Some((vec![Event::default().event("end").data("")], None)),
            };
            let finished = run.state.is_final();
            if finished {
                // Lines written just before the run ended.
                let _ = st.state.store().flush().await;
            }
            match st.state.store().logs_after(&st.run_id, st.after, 500).await {
                Ok(lines) if !lines.is_empty() => {
                    st.after = lines.last().map(|l| l.seq).unwrap_or(st.after);
                    let shown: Vec<LogLine> = lines
                        .into_iter()
                        .filter(|l| level_rank(&l.record.level) >= st.min_level)
                        .collect();
                    if !shown.is_empty() {
                        events.push(
                            Event::default()
                                .event("log")
                                .data(log_rows(&shown).into_string()),
                        );
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::warn!("live logs of {}: {e}", st.run_id),
            }
            if let Ok(l) = load(&st.state, run).await {
                let now = fingerprint(&l);
                if now.head != st.seen.head {
                    events.push(
                        Event::default()
                            .event("head")
                            .data(head(&l, &st.csrf, None).into_string()),
                    );
                }
                // Running bars grow with the clock, so a running run redraws them now
                // and then even when no state changed.
                let growing = !finished
                    && match l.groups.as_deref() {
                        Some((groups, _)) => groups.iter().any(|g| g.running > 0),
                        None => l
                            .tasks
                            .iter()
                            .any(|t| t.start_time.is_some() && t.end_time.is_none()),
                    }
                    && st.tasks_sent.elapsed() >= REDRAW;
                if now.tasks != st.seen.tasks || growing {
                    st.tasks_sent = std::time::Instant::now();
                    events.push(
                        Event::default()
                            .event("tasks")
                            .data(tasks(&l).into_string()),
                    );
                }
                if now.artifacts != st.seen.artifacts {
                    events.push(
                        Event::default()
                            .event("artifacts")
                            .data(artifacts(&l).into_string()),
                    );
                }
                st.seen = now;
                // A large run is read less often: each look reads all its task runs.
                st.poll = if l.groups.is_some() {
                    Duration::from_secs(1)
                } else {
                    Duration::from_millis(300)
                };
            }
            if finished {
                st.done = true;
                events.push(Event::default().event("end").data(""));
                return Some((events, None));
            }
            if !events.is_empty() {
                return Some((events, Some(st)));
            }
            tokio::time::sleep(st.poll).await;
        }
    })
    .flat_map(|events| stream::iter(events.into_iter().map(Ok)))
}

use futures_util::StreamExt as _;

/// The run's logs as a fragment (`?level=`), for htmx.
pub async fn logs(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<LogQuery>,
) -> Result<Markup, PageError> {
    let run = find(&state, &viewer, &id).await?;
    let level = q.level.unwrap_or_else(|| "DEBUG".into());
    let lines: Vec<LogLine> = state
        .store()
        .logs_after(&run.id, 0, LOG_LINES)
        .await?
        .into_iter()
        .filter(|l| level_rank(&l.record.level) >= level_rank(&level))
        .collect();
    Ok(log_rows(&lines))
}

/// Every log line of the run as text, streamed page by page.
pub async fn logs_text(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let run = find(&state, &viewer, &id).await?;
    let name = run.name.clone();
    let body = stream::unfold(Some((state, run.id, 0i64)), |st| async move {
        let (state, run_id, after) = st?;
        match state.store().logs_after(&run_id, after, 5000).await {
            Ok(lines) if !lines.is_empty() => {
                let next = lines.last().map(|l| l.seq).unwrap_or(after);
                let mut text = String::new();
                for l in &lines {
                    text.push_str(&format!(
                        "{} {:<8} {}\n",
                        l.record.timestamp.to_rfc3339(),
                        l.record.level,
                        l.record.message
                    ));
                }
                Some((Ok::<_, Infallible>(text), Some((state, run_id, next))))
            }
            _ => None,
        }
    });
    let mut res = axum::body::Body::from_stream(body).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    let file: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{file}.log\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(res)
}

/// The commands the run pages send, for one run or for a selection.
#[derive(Clone, Copy)]
enum Command {
    Cancel,
    Retry,
}

impl Command {
    async fn apply(self, state: &AppState, run: &FlowRunRecord) -> Result<(), ApiError> {
        match self {
            Command::Cancel => state.executor.cancel_run(run).await.map(|_| ()),
            Command::Retry => state.executor.retry_run(run).await.map(|_| ()),
        }
        .map_err(ApiError::from)
    }
}

async fn command(
    viewer: Viewer,
    state: AppState,
    id: String,
    headers: HeaderMap,
    csrf: &str,
    command: Command,
) -> Result<Response, PageError> {
    viewer.check(&headers, csrf)?;
    let run = find(&state, &viewer, &id).await?;
    command.apply(&state, &run).await?;
    Ok(Redirect::to(&format!("/runs/{id}")).into_response())
}

pub async fn cancel(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Result<Response, PageError> {
    command(viewer, state, id, headers, &f.csrf, Command::Cancel).await
}

pub async fn retry(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Result<Response, PageError> {
    command(viewer, state, id, headers, &f.csrf, Command::Retry).await
}

/// Resumes a paused run with the input its form brings; a bad input shows the run page
/// again with the errors beside their fields (422), and nothing changes.
pub async fn resume(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let csrf = pairs
        .iter()
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    viewer.check(&headers, csrf)?;
    let run = find(&state, &viewer, &id).await?;
    let schema = state
        .store()
        .open_pause(&run.id)
        .await?
        .and_then(|p| p.input_schema);
    let input = match &schema {
        Some(s) => match form::parse(s, &pairs) {
            Ok(m) => Value::Object(m),
            Err(errors) => return invalid_resume(&state, &viewer, run, &errors).await,
        },
        None => Value::Null,
    };
    match state.executor.resume_run(&run, input).await {
        Ok(()) => Ok(Redirect::to(&format!("/runs/{id}")).into_response()),
        Err(crate::executor::CommandError::InvalidInput(messages)) => {
            let errors = form::errors_by_field(&messages);
            invalid_resume(&state, &viewer, run, &errors).await
        }
        Err(e) => Err(ApiError::from(e).into()),
    }
}

async fn invalid_resume(
    state: &AppState,
    viewer: &Viewer,
    run: FlowRunRecord,
    errors: &form::Errors,
) -> Result<Response, PageError> {
    let page = render_page(state, viewer, run, None, Some(errors)).await?;
    Ok((axum::http::StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}

/// Cancels or retries the selected runs; goes back to the list with a summary.
pub async fn bulk(
    viewer: Viewer,
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    };
    viewer.check(&headers, get("csrf"))?;
    let action = get("action");
    let cmd = match action {
        "cancel" => Command::Cancel,
        "retry" => Command::Retry,
        _ => return Err(ApiError::BadRequest(format!("unknown action {action:?}")).into()),
    };
    let ids: Vec<&str> = pairs
        .iter()
        .filter(|(k, _)| k == "run")
        .map(|(_, v)| v.as_str())
        .take(500)
        .collect();
    let mut problems = vec![];
    let mut done = 0;
    for id in &ids {
        let outcome = match find(&state, &viewer, id).await {
            Ok(run) => cmd.apply(&state, &run).await,
            Err(e) => Err(e),
        };
        match outcome {
            Ok(()) => done += 1,
            Err(e) => problems.push(format!("{id}: {e}")),
        }
    }
    let back = get("back");
    let back = if back.starts_with("/runs") {
        back
    } else {
        "/runs"
    };
    let body = html! {
        h1 { "Runs " (if action == "cancel" { "cancelled" } else { "retried" }) }
        p { (done) " of " (ids.len()) " selected runs." }
        @if !problems.is_empty() { (layout::problem("Some runs could not be changed:", &problems)) }
        p { a href=(back) { "Back to the runs" } }
    };
    Ok(layout::page(&viewer, Section::Runs, "Bulk action", body).into_response())
}
