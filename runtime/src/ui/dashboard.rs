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
    let by_bucket = if prefix == 16 {
        store.run_counts(ws, since, now, prefix).await?
    } else {
        hourly_counts(store, ws, since, now).await?
    };
    let (counts, counted) = tally(&by_bucket);
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

/// Counts per hour and state of hours that ended over an hour ago, kept this long: their
/// runs are final, bar the odd retry, so a week's dashboard reads one hour from the
/// database instead of a week's index.
const CLOSED_HOUR_TTL: std::time::Duration = std::time::Duration::from_secs(300);
/// Workspaces whose hours are kept at most (then the cache starts over).
const CACHED_WORKSPACES: usize = 1000;

type HourCounts = Vec<(String, i64)>;
type Hours = std::collections::BTreeMap<String, (std::time::Instant, HourCounts)>;
static HOURS: std::sync::Mutex<Option<std::collections::HashMap<String, Hours>>> =
    std::sync::Mutex::new(None);

fn hour_label(t: chrono::DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H").to_string()
}

/// Runs per hour and state created since the start of `since`'s hour: closed hours from
/// the cache (what is missing or stale in one query), the last two hours from the store.
async fn hourly_counts(
    store: &crate::store::Store,
    ws: &str,
    since: chrono::DateTime<Utc>,
    now: chrono::DateTime<Utc>,
) -> Result<Vec<(String, String, i64)>, crate::api::ApiError> {
    use chrono::{DurationRound, TimeDelta};
    let hour = TimeDelta::hours(1);
    let start = since.duration_trunc(hour).unwrap_or(since);
    let closed = (now.duration_trunc(hour).unwrap_or(now) - hour).max(start);
    let hours: Vec<chrono::DateTime<Utc>> = std::iter::successors(Some(start), |t| Some(*t + hour))
        .take_while(|t| *t < closed)
        .collect();
    let stale = |cache: &Option<std::collections::HashMap<String, Hours>>,
                 t: &chrono::DateTime<Utc>| {
        cache
            .as_ref()
            .and_then(|c| c.get(ws))
            .and_then(|h| h.get(&hour_label(*t)))
            .is_none_or(|(at, _)| at.elapsed() > CLOSED_HOUR_TTL)
    };
    let missing: Vec<chrono::DateTime<Utc>> = {
        let cache = HOURS.lock().unwrap_or_else(|e| e.into_inner());
        hours.iter().filter(|t| stale(&cache, t)).copied().collect()
    };
    if let (Some(first), Some(last)) = (missing.first(), missing.last()) {
        let rows = store.run_counts(ws, *first, *last + hour, 13).await?;
        let mut fresh: Hours = Default::default();
        let at = std::time::Instant::now();
        for t in &missing {
            fresh.insert(hour_label(*t), (at, vec![]));
        }
        for (bucket, state, n) in rows {
            if let Some((_, counts)) = fresh.get_mut(&bucket) {
                counts.push((state, n));
            }
        }
        let mut cache = HOURS.lock().unwrap_or_else(|e| e.into_inner());
        let map = cache.get_or_insert_with(Default::default);
        if map.len() >= CACHED_WORKSPACES && !map.contains_key(ws) {
            map.clear();
        }
        let mine = map.entry(ws.to_owned()).or_default();
        mine.extend(fresh);
        // Hours older than a week are not shown again.
        let oldest = hour_label(now - Duration::days(8));
        mine.retain(|h, _| *h >= oldest);
    }
    let mut out = store
        .run_counts(ws, closed, now + Duration::seconds(1), 13)
        .await?;
    let cache = HOURS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(mine) = cache.as_ref().and_then(|c| c.get(ws)) {
        for t in &hours {
            let label = hour_label(*t);
            if let Some((_, counts)) = mine.get(&label) {
                out.extend(counts.iter().map(|(s, n)| (label.clone(), s.clone(), *n)));
            }
        }
    }
    Ok(out)
}

/// Totals per state, and per bucket the runs and the failed or crashed ones.
/// Runs per state, and per bucket (label, runs, failed or crashed runs).
type Tally = (Vec<(String, i64)>, Vec<(String, i64, i64)>);

fn tally(rows: &[(String, String, i64)]) -> Tally {
    let mut states: std::collections::BTreeMap<&str, i64> = Default::default();
    let mut buckets: std::collections::BTreeMap<&str, (i64, i64)> = Default::default();
    for (bucket, state, n) in rows {
        *states.entry(state).or_default() += n;
        let b = buckets.entry(bucket).or_default();
        b.0 += n;
        if state == "FAILED" || state == "CRASHED" {
            b.1 += n;
        }
    }
    (
        states.into_iter().map(|(s, n)| (s.to_owned(), n)).collect(),
        buckets
            .into_iter()
            .map(|(b, (n, f))| (b.to_owned(), n, f))
            .collect(),
    )
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
