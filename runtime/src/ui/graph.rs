//! The task dependency graph of a flow run, drawn as SVG on the server: task runs (and
//! subflow runs) in columns by depth, an edge from each task run it waited for
//! (`wait_for`). Past [`MAX_NODES`] runs, the runs of one task at one depth are drawn
//! as one node with their count and states (a map of 10,000 is one node), so the graph
//! costs the same to draw and to look at whatever the run's size.

use super::timeline::truncate;
use maud::{Markup, html};
use std::collections::{BTreeMap, HashMap};

/// One run in the graph.
pub struct Node<'a> {
    pub id: &'a str,
    pub label: &'a str,
    /// What groups runs when the graph is aggregated: the task's name.
    pub group: &'a str,
    /// `s-` class suffix: the state type, or "Cached".
    pub class: &'a str,
    pub href: Option<String>,
    pub upstream: &'a [String],
}

/// Past this many runs, the graph draws groups instead of runs.
pub const MAX_NODES: usize = 150;
/// Groups drawn at most (the rest are counted in a note).
const MAX_GROUPS: usize = 300;

const BOX_W: f64 = 170.0;
const BOX_H: f64 = 30.0;
const COL_W: f64 = 230.0;
const ROW_H: f64 = 42.0;

/// What the graph draws: a box per run or per group, and the edges between boxes.
struct Drawn {
    boxes: Vec<Box_>,
    edges: Vec<(usize, usize)>,
    left_out: usize,
}

struct Box_ {
    label: String,
    note: String,
    class: String,
    href: Option<String>,
    column: usize,
    row: usize,
}

/// How bad a state class is, to colour a group by its worst member.
pub fn severity(class: &str) -> u8 {
    match class {
        "CRASHED" => 7,
        "FAILED" => 6,
        "CANCELLED" | "CANCELLING" => 5,
        "RUNNING" => 4,
        "PAUSED" => 3,
        "PENDING" | "SCHEDULED" => 2,
        _ => 1,
    }
}

/// Each node's depth: one more than the deepest run it waited for. Runs come in call
/// order, so a run's upstream runs come before it.
fn depths(nodes: &[Node]) -> Vec<usize> {
    let mut by_id: HashMap<&str, usize> = HashMap::with_capacity(nodes.len());
    let mut out = Vec::with_capacity(nodes.len());
    for n in nodes {
        let d = n
            .upstream
            .iter()
            .filter_map(|u| by_id.get(u.as_str()))
            .map(|d| d + 1)
            .max()
            .unwrap_or(0);
        by_id.insert(n.id, d);
        out.push(d);
    }
    out
}

fn layout(nodes: &[Node]) -> Drawn {
    let depth = depths(nodes);
    let index: HashMap<&str, usize> = nodes.iter().enumerate().map(|(i, n)| (n.id, i)).collect();
    // Each node's box: its own, or its group's.
    let mut box_of = vec![usize::MAX; nodes.len()];
    let mut boxes: Vec<Box_> = vec![];
    let mut rows: Vec<usize> = vec![];
    let mut left_out = 0;
    if nodes.len() <= MAX_NODES {
        for (i, n) in nodes.iter().enumerate() {
            let column = depth[i];
            if rows.len() <= column {
                rows.resize(column + 1, 0);
            }
            box_of[i] = boxes.len();
            boxes.push(Box_ {
                label: n.label.to_owned(),
                note: n.class.to_owned(),
                class: n.class.to_owned(),
                href: n.href.clone(),
                column,
                row: rows[column],
            });
            rows[column] += 1;
        }
    } else {
        // Group by (depth, task); with too many groups, by task alone.
        let by_depth = {
            let mut keys: Vec<(usize, &str)> = nodes
                .iter()
                .zip(&depth)
                .map(|(n, d)| (*d, n.group))
                .collect();
            keys.sort_unstable();
            keys.dedup();
            keys.len() <= MAX_GROUPS
        };
        let mut groups: HashMap<(usize, &str), usize> = HashMap::new();
        let mut members: Vec<BTreeMap<&str, usize>> = vec![];
        for (i, n) in nodes.iter().enumerate() {
            let key = (if by_depth { depth[i] } else { 0 }, n.group);
            let b = match groups.get(&key) {
                Some(b) => *b,
                None if boxes.len() >= MAX_GROUPS => {
                    left_out += 1;
                    continue;
                }
                None => {
                    let column = if by_depth { depth[i] } else { 0 };
                    if rows.len() <= column {
                        rows.resize(column + 1, 0);
                    }
                    groups.insert(key, boxes.len());
                    members.push(BTreeMap::new());
                    boxes.push(Box_ {
                        label: n.group.to_owned(),
                        note: String::new(),
                        class: n.class.to_owned(),
                        href: None,
                        column,
                        row: rows[column],
                    });
                    rows[column] += 1;
                    boxes.len() - 1
                }
            };
            box_of[i] = b;
            *members[b].entry(n.class).or_default() += 1;
            if severity(n.class) > severity(&boxes[b].class) {
                boxes[b].class = n.class.to_owned();
            }
        }
        for (b, m) in members.iter().enumerate() {
            let total: usize = m.values().sum();
            let parts: Vec<String> = m.iter().map(|(c, k)| format!("{k} {c}")).collect();
            boxes[b].label = format!("{} ×{total}", boxes[b].label);
            boxes[b].note = parts.join(", ");
        }
    }
    let mut edges: Vec<(usize, usize)> = vec![];
    for (i, n) in nodes.iter().enumerate() {
        for u in n.upstream {
            if let Some(&j) = index.get(u.as_str())
                && box_of[i] != usize::MAX
                && box_of[j] != usize::MAX
                && box_of[i] != box_of[j]
            {
                edges.push((box_of[j], box_of[i]));
            }
        }
    }
    edges.sort_unstable();
    edges.dedup();
    Drawn {
        boxes,
        edges,
        left_out,
    }
}

/// The graph of `nodes` (in call order), or nothing when there are none.
pub fn graph(nodes: &[Node]) -> Markup {
    if nodes.is_empty() {
        return html! {};
    }
    let d = layout(nodes);
    let columns = d.boxes.iter().map(|b| b.column + 1).max().unwrap_or(1);
    let rows = d.boxes.iter().map(|b| b.row + 1).max().unwrap_or(1);
    let width = COL_W * columns as f64 + 10.0;
    let height = ROW_H * rows as f64 + 10.0;
    let pos = |b: &Box_| (10.0 + COL_W * b.column as f64, 6.0 + ROW_H * b.row as f64);
    let aggregated = nodes.len() > MAX_NODES;
    html! {
        svg.graph viewBox={ "0 0 " (width) " " (height) } width=(width) role="img" aria-label="Task dependency graph" {
            @for (from, to) in &d.edges {
                @let (x0, y0) = pos(&d.boxes[*from]);
                @let (x1, y1) = pos(&d.boxes[*to]);
                path.edge d={ "M" (x0 + BOX_W) " " (y0 + BOX_H / 2.0) " C" (x0 + BOX_W + 30.0) " " (y0 + BOX_H / 2.0) " " (x1 - 30.0) " " (y1 + BOX_H / 2.0) " " (x1) " " (y1 + BOX_H / 2.0) } {}
            }
            @for b in &d.boxes {
                @let (x, y) = pos(b);
                g.node {
                    title { (b.label) ": " (b.note) }
                    rect class={ "bar-" (b.class) } x=(x) y=(y) width=(BOX_W) height=(BOX_H) rx="4" {}
                    @match &b.href {
                        Some(h) => a href=(h) { text x=(x + 6.0) y=(y + 19.0) { (truncate(&b.label, 24)) } },
                        None => text x=(x + 6.0) y=(y + 19.0) { (truncate(&b.label, 24)) },
                    }
                }
            }
        }
        @if aggregated {
            p.muted { (nodes.len()) " runs: the runs of one task at one depth are drawn as one node (hover for their states)." }
        }
        @if d.left_out > 0 {
            p.muted { (d.left_out) " runs of further tasks are not drawn." }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node<'a>(id: &'a str, group: &'a str, up: &'a [String]) -> Node<'a> {
        Node {
            id,
            label: id,
            group,
            class: "COMPLETED",
            href: None,
            upstream: up,
        }
    }

    #[test]
    fn columns_follow_wait_for_depth() {
        let none: Vec<String> = vec![];
        let a = vec!["a".to_owned()];
        let ab = vec!["a".to_owned(), "b".to_owned()];
        let nodes = [
            node("a", "t", &none),
            node("b", "t", &a),
            node("c", "u", &ab),
        ];
        let d = layout(&nodes);
        let cols: Vec<usize> = d.boxes.iter().map(|b| b.column).collect();
        assert_eq!(cols, vec![0, 1, 2]);
        assert_eq!(d.edges, vec![(0, 1), (0, 2), (1, 2)]);
    }

    #[test]
    fn a_large_map_is_one_node_per_task_and_depth() {
        let none: Vec<String> = vec![];
        let ids: Vec<String> = (0..10_000).map(|i| format!("m{i}")).collect();
        let ups: Vec<Vec<String>> = ids.iter().map(|i| vec![i.clone()]).collect();
        let mut nodes: Vec<Node> = ids.iter().map(|i| node(i, "square", &none)).collect();
        let sums: Vec<String> = (0..10_000).map(|i| format!("s{i}")).collect();
        for (i, s) in sums.iter().enumerate() {
            nodes.push(node(s, "sum", &ups[i]));
        }
        let d = layout(&nodes);
        assert_eq!(d.boxes.len(), 2);
        assert_eq!(d.boxes[0].label, "square ×10000");
        assert_eq!(d.edges, vec![(0, 1)]);
        let svg = graph(&nodes).into_string();
        assert!(svg.len() < 5_000, "{} bytes", svg.len());
    }
}
