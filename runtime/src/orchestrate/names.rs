//! Run names: generated two-word names (Prefect's "adept-capuchin") and templates
//! over parameters ("add-{x}-{y}").

use rand::Rng;
use serde_json::Value;

const ADJECTIVES: &[&str] = &[
    "adept",
    "agile",
    "amber",
    "ancient",
    "arctic",
    "bold",
    "brave",
    "bright",
    "brisk",
    "calm",
    "candid",
    "clever",
    "cosmic",
    "crimson",
    "curious",
    "daring",
    "dapper",
    "eager",
    "electric",
    "elegant",
    "fancy",
    "fearless",
    "festive",
    "fiery",
    "gentle",
    "giant",
    "glossy",
    "golden",
    "graceful",
    "happy",
    "hearty",
    "humble",
    "icy",
    "jolly",
    "keen",
    "kind",
    "lively",
    "lucky",
    "lunar",
    "magic",
    "mellow",
    "merry",
    "mighty",
    "misty",
    "nimble",
    "noble",
    "olive",
    "patient",
    "placid",
    "polite",
    "proud",
    "quick",
    "quiet",
    "rapid",
    "rustic",
    "sandy",
    "savvy",
    "shiny",
    "silent",
    "silver",
    "smart",
    "snowy",
    "solar",
    "spry",
    "steady",
    "stellar",
    "sturdy",
    "swift",
    "tidy",
    "tranquil",
    "upbeat",
    "valiant",
    "vivid",
    "wandering",
    "warm",
    "wise",
    "witty",
    "zealous",
    "zesty",
];

const ANIMALS: &[&str] = &[
    "albatross",
    "alpaca",
    "antelope",
    "armadillo",
    "badger",
    "beaver",
    "bison",
    "bobcat",
    "buffalo",
    "camel",
    "capuchin",
    "caribou",
    "cheetah",
    "chipmunk",
    "cobra",
    "condor",
    "cougar",
    "coyote",
    "crane",
    "dingo",
    "dolphin",
    "eagle",
    "falcon",
    "ferret",
    "finch",
    "flamingo",
    "fox",
    "gazelle",
    "gecko",
    "gibbon",
    "giraffe",
    "gopher",
    "hare",
    "hedgehog",
    "heron",
    "ibex",
    "iguana",
    "impala",
    "jackal",
    "jaguar",
    "kestrel",
    "koala",
    "lemur",
    "leopard",
    "lynx",
    "marmot",
    "meerkat",
    "mongoose",
    "moose",
    "narwhal",
    "ocelot",
    "octopus",
    "orca",
    "otter",
    "owl",
    "panda",
    "panther",
    "pelican",
    "penguin",
    "puffin",
    "quail",
    "raccoon",
    "raven",
    "salamander",
    "seal",
    "sparrow",
    "squid",
    "stork",
    "tapir",
    "tiger",
    "toucan",
    "turtle",
    "vulture",
    "walrus",
    "weasel",
    "wolf",
    "wombat",
    "yak",
    "zebra",
];

/// A random two-word name such as "adept-capuchin".
pub fn generate() -> String {
    let mut rng = rand::rng();
    format!(
        "{}-{}",
        ADJECTIVES[rng.random_range(0..ADJECTIVES.len())],
        ANIMALS[rng.random_range(0..ANIMALS.len())]
    )
}

/// Fills `{name}` (or `{name.field}`) placeholders from the parameters. Strings are
/// inserted bare, other values as JSON; unknown placeholders are left as written.
///
/// A placeholder may carry a format spec, as in Python's `str.format`
/// (Prefect's `flow_run_name="{name}-on-{date:%A}"`): a date or date-time parameter
/// (RFC 3339 text) is formatted with the spec as a `strftime` pattern; a number takes
/// `.Nf` (N decimals), `d`, and a width with `0` fill (`03d`, `08.2f`). Any other spec
/// leaves the value as it would be without one.
pub fn render(template: &str, params: &Value) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                let inside = &after[..close];
                let (key, spec) = match inside.split_once(':') {
                    Some((key, spec)) => (key, Some(spec)),
                    None => (inside, None),
                };
                match lookup(params, key) {
                    Some(v) => out.push_str(&formatted(v, spec)),
                    None => {
                        out.push('{');
                        out.push_str(inside);
                        out.push('}');
                    }
                }
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        v => v.to_string(),
    }
}

/// A value with a Python-style format spec applied (see [`render`]).
fn formatted(v: &Value, spec: Option<&str>) -> String {
    let Some(spec) = spec.filter(|s| !s.is_empty()) else {
        return plain(v);
    };
    match v {
        Value::String(s) if spec.contains('%') => format_date(s, spec).unwrap_or_else(|| s.clone()),
        Value::Number(n) => format_number(n, spec).unwrap_or_else(|| n.to_string()),
        v => plain(v),
    }
}

fn format_date(text: &str, pattern: &str) -> Option<String> {
    use std::fmt::Write;
    let mut out = String::new();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        write!(out, "{}", t.format(pattern)).ok()?;
    } else if let Ok(t) = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f") {
        write!(out, "{}", t.format(pattern)).ok()?;
    } else if let Ok(d) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        write!(out, "{}", d.format(pattern)).ok()?;
    } else {
        return None;
    }
    Some(out)
}

fn format_number(n: &serde_json::Number, spec: &str) -> Option<String> {
    let (body, kind) = match spec.chars().last()? {
        c @ ('d' | 'f') => (&spec[..spec.len() - 1], c),
        _ => return None,
    };
    let (width, precision) = match body.split_once('.') {
        Some((w, p)) => (w, Some(p.parse::<usize>().ok()?)),
        None => (body, None),
    };
    let width = width.strip_prefix('>').unwrap_or(width);
    let zero = width.starts_with('0');
    let width: usize = if width.is_empty() {
        0
    } else {
        width.parse().ok()?
    };
    let digits = match kind {
        'd' => n.as_i64().map(|i| i.to_string())?,
        _ => format!("{:.*}", precision.unwrap_or(6), n.as_f64()?),
    };
    Some(if zero {
        let (sign, magnitude) = match digits.strip_prefix('-') {
            Some(m) => ("-", m),
            None => ("", digits.as_str()),
        };
        format!(
            "{sign}{magnitude:0>w$}",
            w = width.saturating_sub(sign.len())
        )
    } else {
        format!("{digits:>width$}")
    })
}

fn lookup<'a>(params: &'a Value, path: &str) -> Option<&'a Value> {
    let mut v = params;
    for part in path.split('.') {
        v = v.get(part.trim())?;
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn generated_names_have_two_words() {
        let n = generate();
        let parts: Vec<_> = n.split('-').collect();
        assert_eq!(parts.len(), 2, "{n}");
        assert!(ADJECTIVES.contains(&parts[0]) && ANIMALS.contains(&parts[1]));
    }

    #[test]
    fn templates_fill_parameters() {
        let p = json!({"x": 1, "name": "ada", "cfg": {"env": "prod"}});
        assert_eq!(render("add-{x}-{name}", &p), "add-1-ada");
        assert_eq!(render("{cfg.env}/{missing}", &p), "prod/{missing}");
        assert_eq!(render("open {brace", &p), "open {brace");
    }

    #[test]
    fn templates_take_python_format_specs() {
        let p = json!({"date": "2024-03-01T10:00:00Z", "day": "2024-03-02", "n": 7, "x": 2.5,
                       "local": "2024-03-04T09:30:00"});
        assert_eq!(render("{date:%A}", &p), "Friday");
        assert_eq!(render("{day:%d %B}", &p), "02 March");
        assert_eq!(render("{local:%H:%M}", &p), "09:30");
        assert_eq!(
            render("run-{n:03d}-{x:.2f}-{x:07.3f}", &p),
            "run-007-2.50-002.500"
        );
        assert_eq!(render("{n:>4d}|{n:x}|{n:}", &p), "   7|7|7");
        assert_eq!(render("{missing:%A}", &p), "{missing:%A}");
        assert_eq!(render("{n:%A}", &p), "7");
    }
}
