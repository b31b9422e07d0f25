//! SVG drawn on the server: the timeline (Gantt) of a flow run's task and subflow runs,
//! and the activity histogram of the dashboard.

use chrono::{DateTime, Utc};
use maud::{Markup, html};

/// One bar of a timeline.
pub struct Bar {
    pub label: String,
    pub href: Option<String>,
    /// `s-` class suffix: the state type, or "Cached".
    pub class: String,
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    /// Shown in the bar's tooltip: state name, attempts, duration.
    pub note: String,
}

/// Past this many bars the timeline draws the first ones and says how many it left out
/// (the table below lists them all, paged).
pub const MAX_BARS: usize = 500;

const ROW: f64 = 20.0;
const LABEL_W: f64 = 180.0;
const WIDTH: f64 = 900.0;

/// A timeline of `bars` from `from` to `to` (the run's start and end, or now).
pub fn timeline(bars: &[Bar], from: DateTime<Utc>, to: DateTime<Utc>) -> Markup {
    let shown = &bars[..bars.len().min(MAX_BARS)];
    let span = ((to - from).num_microseconds().unwrap_or(1) as f64).max(1.0);
    let x = |t: DateTime<Utc>| {
        let off = (t - from).num_microseconds().unwrap_or(0) as f64;
        LABEL_W + (off / span).clamp(0.0, 1.0) * (WIDTH - LABEL_W - 10.0)
    };
    let height = ROW * shown.len() as f64 + 24.0;
    html! {
        svg.timeline viewBox={ "0 0 " (WIDTH) " " (height) } role="img" aria-label="Timeline of task runs" {
            line.axis x1=(LABEL_W) y1="0" x2=(LABEL_W) y2=(height) {}
            text x=(LABEL_W) y=(height - 6.0) { "0" }
            text x=(WIDTH - 60.0) y=(height - 6.0) { (super::layout::duration(to - from)) }
            @for (i, b) in shown.iter().enumerate() {
                @let y = ROW * i as f64 + 2.0;
                @let x0 = b.start.map(x).unwrap_or(LABEL_W);
                @let x1 = b.end.map(x).unwrap_or_else(|| if b.start.is_some() { x(to) } else { x0 });
                g {
                    title { (b.label) ": " (b.note) }
                    @match &b.href {
                        Some(h) => a href=(h) { text x="4" y=(y + 13.0) { (truncate(&b.label, 28)) } },
                        None => text x="4" y=(y + 13.0) { (truncate(&b.label, 28)) },
                    }
                    rect class={ "bar-" (b.class) } x=(x0) y=(y + 2.0) width=((x1 - x0).max(2.0)) height=(ROW - 6.0) rx="2" {}
                }
            }
        }
        @if bars.len() > MAX_BARS {
            p.muted { "The timeline shows the first " (MAX_BARS) " of " (bars.len()) " runs; the table lists them all." }
        }
    }
}

pub fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}

/// A histogram of run counts per bucket, failed runs stacked on top.
pub fn histogram(buckets: &[(String, i64, i64)]) -> Markup {
    let max = buckets.iter().map(|b| b.1).max().unwrap_or(0).max(1) as f64;
    let n = buckets.len().max(1) as f64;
    let (w, h) = (900.0, 120.0);
    let bw = w / n;
    html! {
        svg.hist.timeline viewBox={ "0 0 " (w) " " (h + 16.0) } role="img" aria-label="Runs over time" {
            @for (i, (label, total, failed)) in buckets.iter().enumerate() {
                @let th = (*total as f64 / max) * h;
                @let fh = (*failed as f64 / max) * h;
                g {
                    title { (label) ": " (total) " runs, " (failed) " failed or crashed" }
                    rect x=(i as f64 * bw + 1.0) y=(h - th) width=((bw - 2.0).max(1.0)) height=(th) {}
                    rect.failed x=(i as f64 * bw + 1.0) y=(h - fh) width=((bw - 2.0).max(1.0)) height=(fh) {}
                }
            }
            @if let (Some(first), Some(last)) = (buckets.first(), buckets.last()) {
                text x="2" y=(h + 13.0) { (first.0) }
                text x=(w - 110.0) y=(h + 13.0) { (last.0) }
            }
        }
    }
}
