//! How the client commands print: aligned tables, cells made from JSON values, times
//! in local time.

use serde_json::Value;
use std::fmt;

/// A table of left-aligned columns separated by two spaces, under an upper-case header.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|h| h.to_uppercase()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A newline inside a cell would break every column after it.
        let clean = |c: &String| c.replace(['\n', '\r', '\t'], " ");
        let rows: Vec<Vec<String>> = std::iter::once(&self.header)
            .chain(&self.rows)
            .map(|r| r.iter().map(clean).collect())
            .collect();
        let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
        let mut widths = vec![0; columns];
        for row in &rows {
            for (i, cell) in row.iter().enumerate() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        for row in &rows {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                line.push_str(cell);
                if i + 1 < row.len() {
                    let pad = widths[i] - cell.chars().count();
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            writeln!(f, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

/// A JSON value as a cell: strings bare, null as `-`, anything else as compact JSON.
pub fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// At most `max` characters, with an ellipsis when cut.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// An RFC 3339 timestamp in local time, to the second; anything else as [`text`].
pub fn time(v: &Value) -> String {
    v.as_str()
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        })
        .unwrap_or_else(|| text(v))
}

/// A time of day with milliseconds, for log lines.
pub fn clock(v: &Value) -> String {
    v.as_str()
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .format("%H:%M:%S%.3f")
                .to_string()
        })
        .unwrap_or_else(|| text(v))
}

/// A state as people read it: its name ("AwaitingRetry"), else its type ("COMPLETED" as
/// "Completed").
pub fn state_label(state: &Value) -> String {
    if let Some(name) = state["name"].as_str().filter(|n| !n.is_empty()) {
        return name.to_owned();
    }
    match state["type"].as_str() {
        Some(t) => t
            .split('_')
            .map(|w| {
                let mut c = w.chars();
                match c.next() {
                    Some(first) => first
                        .to_uppercase()
                        .chain(c.flat_map(char::to_lowercase))
                        .collect(),
                    None => String::new(),
                }
            })
            .collect(),
        None => text(state),
    }
}

/// The server's JSON, pretty.
pub fn print_json(v: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn table_aligns_columns_without_trailing_spaces() {
        let mut t = Table::new(&["id", "name", "state"]);
        t.row(vec!["1".into(), "crimson-fox".into(), "Completed".into()]);
        t.row(vec!["22".into(), "ox".into(), "".into()]);
        t.row(vec!["3".into(), "multi\nline".into(), "Failed".into()]);
        assert_eq!(
            t.to_string(),
            "ID  NAME         STATE\n\
             1   crimson-fox  Completed\n\
             22  ox\n\
             3   multi line   Failed\n"
        );
        assert!(!t.is_empty());
    }

    #[test]
    fn table_counts_characters_not_bytes() {
        let mut t = Table::new(&["a", "b"]);
        t.row(vec!["é…".into(), "x".into()]);
        t.row(vec!["abc".into(), "y".into()]);
        assert_eq!(t.to_string(), "A    B\né…   x\nabc  y\n");
    }

    #[test]
    fn cells_from_values() {
        assert_eq!(text(&json!(null)), "-");
        assert_eq!(text(&json!("s")), "s");
        assert_eq!(text(&json!({"a": 1})), r#"{"a":1}"#);
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 4), "abc");
        assert_eq!(time(&json!("not a time")), "not a time");
        assert_eq!(
            state_label(&json!({"type": "COMPLETED", "name": null})),
            "Completed"
        );
        assert_eq!(
            state_label(&json!({"type": "FAILED", "name": "TimedOut"})),
            "TimedOut"
        );
    }
}
