//! The dashboard: runs by state over a window (last hour, day or week), an activity
//! histogram, the latest failed and late runs, pools and concurrency limits with the
//! slots in use, and the server nodes with their heartbeats.

use super::layout::{self, PageError, Section, badge, time};
use super::session::Viewer;
use crate::api::AppState;
use crate::model::state::StateType;
use crate::store::RunFilter;
use axum::extract::{Query, State};
use chrono::{Duration, Utc};
use maud::{Markup, html};

#[derive(serde::Deserialize, Default)]
pub struct DashboardQuery {
    window: Option<String>,
}

pub async fn page(
    viewer: Viewer,
    State(state): State<AppState>,
    Query(q): Query<DashboardQuery>,
) -> Result<Markup, PageError> {
    let window = match q.window.as_deref() {
        Some("1h") => "1h",
        Some("7d") => "7d",
        _ => "24h",
    };
    let now = Utc::now();
    let (since, prefix) = match window {
        "1h" => (now - Duration::hours(1), 16),
        "7d" => (now - Duration::days(7), 13),
        _ => (now - Duration::hours(24), 13),
    };
    let store = state.store();
    let ws = &viewer.workspace_id;
    let counts = store.run_state_counts(ws, since).await?;
    let counted = store.run_activity(ws, since, prefix).await?;
    let activity = buckets(since, now, prefix, &counted);
    let failed = store
        .list_flow_runs(
            ws,
            &RunFilter {
                states: vec![StateType::Failed, StateType::Crashed],
                limit: 8,
                ..RunFilter::default()
            },
        )
        .await?;
    let late = store
        .list_flow_runs(
            ws,
            &RunFilter {
                states: vec![StateType::Scheduled],
                state_name: Some("Late".into()),
                limit: 8,
                ..RunFilter::default()
            },
        )
        .await?;
    let pools = store.pools(ws).await?;
    let limits = store.concurrency_limits(ws).await?;
    let nodes = store.nodes().await?;
    let slots = state.executor.slots();
    let total: i64 = counts.iter().map(|c| c.1).sum();
    let body = html! {
        h1 { "Dashboard" }
        form.filters method="get" action="/" {
            label { "Window"
                select name="window" {
                    @for (v, l) in [("1h", "last hour"), ("24h", "last day"), ("7d", "last week")] {
                        option value=(v) selected[window == v] { (l) }
                    }
                }
            }
            button.secondary type="submit" { "Show" }
        }
        div.grid #state-counts {
            div.stat { b { (total) } "runs" }
            @for (s, n) in &counts {
                div.stat { b { (n) } a href={ "/runs?state=" (s) "&range=" (if window == "1h" { "1h" } else if window == "7d" { "7d" } else { "24h" }) } { (s.to_lowercase()) } }
            }
        }
        h2 { "Activity" }
        (super::timeline::histogram(&activity))
        div.halves {
            div {
                h2 { "Latest failed runs" }
                (run_table(&failed))
            }
            div {
                h2 { "Late runs" }
                (run_table(&late))
            }
        }
        h2 { "Work pools" }
        table {
            thead { tr { th { "Pool" } th.num { "Running" } th.num { "Limit" } th { "Status" } } }
            tbody {
                tr { td { "default" } td.num { (slots.in_use(&format!("pool:{ws}:default"))) } td.num { "none" } td { "ready" } }
                @for p in pools.iter().filter(|p| p.name != "default") {
                    tr {
                        td { (p.name) }
                        td.num { (slots.in_use(&format!("pool:{ws}:{}", p.name))) }
                        td.num { (p.concurrency_limit.map(|n| n.to_string()).unwrap_or_else(|| "none".into())) }
                        td { @if p.paused { span.badge.s-PAUSED { "paused" } } @else { "ready" } }
                    }
                }
            }
        }
        @if !limits.is_empty() {
            h2 { "Tag concurrency limits" }
            table {
                thead { tr { th { "Tag" } th.num { "Running" } th.num { "Limit" } } }
                tbody {
                    @for l in &limits {
                        tr { td { (l.tag) } td.num { (slots.in_use(&format!("tag:{ws}:{}", l.tag))) } td.num { (l.limit) } }
                    }
                }
            }
        }
        h2 { "Nodes" }
        table {
            thead { tr { th { "Node" } th { "Started" } th { "Last heartbeat" } } }
            tbody {
                @for n in &nodes {
                    tr { td.mono { (n.id) } td { (time(n.started)) } td { (time(n.heartbeat)) " " span.muted { "(" (layout::duration(now - n.heartbeat)) " ago)" } } }
                }
            }
        }
    };
    Ok(layout::page(&viewer, Section::Dashboard, "Dashboard", body))
}

/// Every bucket of the window, oldest first, with the counts the store found (buckets
/// without runs are zeros, so the histogram's axis is time).
fn buckets(
    since: chrono::DateTime<Utc>,
    now: chrono::DateTime<Utc>,
    prefix: i64,
    counted: &[(String, i64, i64)],
) -> Vec<(String, i64, i64)> {
    let (step, format) = if prefix == 16 {
        (Duration::minutes(1), "%Y-%m-%dT%H:%M")
    } else {
        (Duration::hours(1), "%Y-%m-%dT%H")
    };
    let by_label: std::collections::HashMap<&str, (i64, i64)> = counted
        .iter()
        .map(|(l, n, f)| (l.as_str(), (*n, *f)))
        .collect();
    let mut out = vec![];
    let mut t = since;
    while t <= now {
        let label = t.format(format).to_string();
        let (n, f) = by_label.get(label.as_str()).copied().unwrap_or((0, 0));
        out.push((label.replace('T', " "), n, f));
        t += step;
    }
    out
}

fn run_table(runs: &[crate::store::FlowRunRecord]) -> Markup {
    html! {
        table {
            tbody {
                @for r in runs {
                    tr { td { a href={ "/runs/" (r.id) } { (r.name) } } td { (badge(&r.state)) } td { (time(r.state.timestamp)) } }
                }
                @if runs.is_empty() { tr { td.muted { "None." } } }
            }
        }
    }
}
