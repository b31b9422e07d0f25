//! How the client commands print: aligned tables, cells made from JSON values, times
//! in local time with their UTC offset, log lines in Prefect's format, and [`clean`],
//! which every piece of server- or guest-provided text goes through before it reaches
//! the terminal.

use serde_json::Value;
use std::fmt;

/// Text from a server or a guest made safe to print: escape sequences (CSI, OSC, DCS and
/// the other string sequences, two-character escapes) are removed whole, and so are the
/// other C0 and C1 controls, DEL, and the Unicode bidirectional overrides that can make a
/// line read differently from what it holds. Newlines and tabs are kept (a log message may
/// span lines); a carriage return is dropped, since it would let text overwrite its line.
pub fn clean(s: &str) -> String {
    strip(s, false)
}

/// [`clean`] for a single line (a table cell, a name): newlines and tabs become spaces.
pub fn clean_line(s: &str) -> String {
    strip(s, true)
}

fn strip(s: &str, one_line: bool) -> String {
    // Fast path: nothing to remove (the common case).
    if !s.chars().any(|c| is_control(c) || is_bidi(c)) {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' | '\t' if one_line => out.push(' '),
            '\n' | '\t' => out.push(c),
            '\u{1b}' => match chars.next() {
                // CSI: parameters and intermediates, then one final byte.
                Some('[') => skip_csi(&mut chars),
                // OSC and the string sequences (DCS, SOS, PM, APC): up to the terminator.
                Some(']' | 'P' | 'X' | '^' | '_') => skip_string(&mut chars),
                // nF escapes (ESC, intermediates, a final byte), or a two-character one.
                Some(' '..='/') => {
                    while chars.next_if(|c| matches!(c, ' '..='/')).is_some() {}
                    chars.next_if(|c| matches!(c, '0'..='~'));
                }
                _ => {}
            },
            '\u{9b}' => skip_csi(&mut chars),
            '\u{9d}' | '\u{90}' | '\u{98}' | '\u{9e}' | '\u{9f}' => skip_string(&mut chars),
            c if is_control(c) || is_bidi(c) => {}
            c => out.push(c),
        }
    }
    out
}

fn is_control(c: char) -> bool {
    c.is_control()
}

/// Bidirectional embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069).
fn is_bidi(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn skip_csi(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while chars
        .next_if(|c| matches!(c, '0'..='?' | ' '..='/'))
        .is_some()
    {}
    chars.next_if(|c| matches!(c, '@'..='~'));
}

/// Skips a string sequence's body through its terminator: BEL, ST (`ESC \`) or U+009C.
fn skip_string(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while let Some(c) = chars.next() {
        match c {
            '\u{7}' | '\u{9c}' => return,
            '\u{1b}' => {
                chars.next_if_eq(&'\\');
                return;
            }
            _ => {}
        }
    }
}

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
        let rows: Vec<Vec<String>> = std::iter::once(&self.header)
            .chain(&self.rows)
            .map(|r| r.iter().map(|c| clean_line(c)).collect())
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

/// A JSON value as one line of text: strings bare (through [`clean_line`]), null as `-`,
/// anything else as compact JSON (whose strings escape their controls).
pub fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => clean_line(s),
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

/// An RFC 3339 timestamp in local time to the second, with its UTC offset
/// (`2030-01-01 10:00:00 +02:00`), so a time read in a log or a ticket is never
/// ambiguous; anything else as [`text`].
pub fn time(v: &Value) -> String {
    parse_time(v)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S %:z").to_string())
        .unwrap_or_else(|| text(v))
}

fn parse_time(v: &Value) -> Option<chrono::DateTime<chrono::Local>> {
    v.as_str()
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&chrono::Local))
}

/// How long between two RFC 3339 times (`end` missing: until now), as `1.234s`, `2m05s`
/// or `3h02m`; `-` when there is no start.
pub fn duration(start: &Value, end: &Value) -> String {
    let Some(start) = parse_time(start) else {
        return "-".into();
    };
    let end = parse_time(end).unwrap_or_else(chrono::Local::now);
    let ms = (end - start).num_milliseconds().max(0);
    match ms {
        0..60_000 => format!("{}.{:03}s", ms / 1000, ms % 1000),
        60_000..3_600_000 => format!("{}m{:02}s", ms / 60_000, ms / 1000 % 60),
        _ => format!("{}h{:02}m", ms / 3_600_000, ms / 60_000 % 60),
    }
}

/// A time of day with milliseconds in local time, for log lines.
pub fn clock(v: &Value) -> String {
    parse_time(v)
        .map(|t| t.format("%H:%M:%S%.3f").to_string())
        .unwrap_or_else(|| text(v))
}

/// One log line as `weir run`, `weir runs logs` and `weir trigger --wait` all print it,
/// in Prefect's format: `HH:MM:SS.mmm | LEVEL   | Flow run 'name' - message`. `who` and
/// `message` may come from a guest: they are [`clean`]ed here.
pub fn log_line(clock: &str, level: &str, who: &str, message: &str) -> String {
    format!(
        "{clock} | {:<8}| {} - {}",
        clean_line(&level.to_uppercase()),
        clean_line(who),
        clean(message)
    )
}

/// A state as people read it: its name ("AwaitingRetry"), else its type ("COMPLETED" as
/// "Completed").
pub fn state_label(state: &Value) -> String {
    if let Some(name) = state["name"].as_str().filter(|n| !n.is_empty()) {
        return clean_line(name);
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
    println!("{}", json_text(v, true));
}

/// JSON in which no character a terminal acts on is left raw: serde_json escapes the C0
/// controls, and DEL, the C1 controls and the bidirectional controls are escaped here as
/// `\uXXXX`. Such characters can only stand inside JSON strings, so the JSON means
/// exactly what it meant: this changes how it prints, not what it says.
pub fn json_text(v: &Value, pretty: bool) -> String {
    let text = if pretty {
        serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
    } else {
        v.to_string()
    };
    if !text.chars().any(|c| is_control(c) || is_bidi(c)) {
        return text;
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if (is_control(c) && c != '\n') || is_bidi(c) {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
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
    fn clean_strips_escapes_and_controls() {
        // Colours, cursor moves, a screen clear: gone whole, the text around them kept.
        assert_eq!(
            clean("\u{1b}[31mred\u{1b}[0m \u{1b}[2J\u{1b}[1;1Hx"),
            "red x"
        );
        // A window title (OSC, BEL- or ST-terminated) and a hyperlink.
        assert_eq!(
            clean("a\u{1b}]0;pwned\u{7}b\u{1b}]8;;http://x\u{1b}\\c"),
            "abc"
        );
        // DCS, a two-character escape, a charset designation, a lone ESC at the end.
        assert_eq!(clean("\u{1b}Pq#0\u{1b}\\d\u{1b}ce\u{1b}(Bf\u{1b}"), "def");
        // C1 CSI and OSC, other C1 and C0 controls, DEL, a carriage return.
        assert_eq!(
            clean("\u{9b}31mg\u{9d}t\u{9c}h\u{85}\u{0}\u{7}\u{8}\u{7f}i\rj"),
            "ghij"
        );
        // Bidi overrides that would reorder what a reader sees.
        assert_eq!(clean("ab\u{202e}cd\u{2066}e\u{2069}"), "abcde");
        // Newlines and tabs survive in text, become spaces in a line.
        assert_eq!(clean("one\n\ttwo"), "one\n\ttwo");
        assert_eq!(clean_line("one\n\ttwo\r\n"), "one  two ");
        // Text that needs nothing is left alone, Unicode included.
        assert_eq!(clean("héllo — 世界 ✓"), "héllo — 世界 ✓");
        // An unterminated string sequence swallows the rest rather than leaking it.
        assert_eq!(clean("ok\u{1b}]52;c;aGk="), "ok");
    }

    #[test]
    fn cells_log_lines_and_states_are_clean() {
        assert_eq!(text(&json!("a\u{1b}[1mb\nc")), "ab c");
        // Compact JSON escapes its strings' controls itself.
        assert_eq!(text(&json!({"k": "\u{1b}"})), r#"{"k":"\u001b"}"#);
        let mut t = Table::new(&["name"]);
        t.row(vec!["x\u{1b}]0;t\u{7}y".into()]);
        assert_eq!(t.to_string(), "NAME\nxy\n");
        assert_eq!(
            log_line(
                "12:00:00.000",
                "info",
                "Flow run 'a\u{1b}[2Kb'",
                "hi\u{1b}[31m\nthere"
            ),
            "12:00:00.000 | INFO    | Flow run 'ab' - hi\nthere"
        );
        assert_eq!(
            state_label(&json!({"type": "FAILED", "name": "Bad\u{1b}[0m"})),
            "Bad"
        );
    }

    #[test]
    fn json_escapes_what_a_terminal_would_act_on() {
        let v = json!({"s": "a\u{9b}31m\u{7f}\u{202e}b\u{1b}", "n": [1]});
        let text = json_text(&v, true);
        assert!(
            !text.contains(['\u{9b}', '\u{7f}', '\u{202e}', '\u{1b}']),
            "{text:?}"
        );
        assert!(
            text.contains("\\u009b") && text.contains("\\u202e"),
            "{text}"
        );
        // The same JSON all the same.
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), v);
        assert_eq!(json_text(&json!("plain"), false), "\"plain\"");
    }

    #[test]
    fn times_carry_their_offset_and_durations_read_short() {
        let t = time(&json!("2030-01-01T00:00:00Z"));
        // The local offset, whatever the machine's zone: `+HH:MM` or `-HH:MM`.
        let offset = &t[t.len() - 6..];
        assert!(
            t.len() == 26 && (offset.starts_with('+') || offset.starts_with('-')),
            "{t}"
        );
        let start = json!("2030-01-01T00:00:00Z");
        assert_eq!(duration(&start, &json!("2030-01-01T00:00:01.5Z")), "1.500s");
        assert_eq!(duration(&start, &json!("2030-01-01T00:02:05Z")), "2m05s");
        assert_eq!(duration(&start, &json!("2030-01-01T03:02:00Z")), "3h02m");
        assert_eq!(duration(&json!(null), &start), "-");
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
