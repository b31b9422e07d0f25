//! JSON Schemas that come from guests (a flow's parameters, a pause's input), bounded
//! before they are compiled, so that checking a value against one costs the host a
//! bounded amount of time and memory whoever wrote it.
//!
//! A component is untrusted code: a schema it declares could be a DAG of `$ref`s whose
//! expansion doubles at every level (40 levels: a trillion paths to try for one invalid
//! value), a backtracking regular expression, or megabytes of nesting. Here a schema is
//! refused, with a message that says which bound it passed, when its text is too large,
//! it nests too deeply, its `$ref`s expand to too many subschemas (counted with each
//! reference expanded where it is used; a recursive reference counts once), it refers
//! outside itself, or a pattern is too long; patterns then run on a regular-expression
//! engine without backtracking (linear in the text), with a bounded program size. A
//! check costs at most the schema's expanded size times the value's size, which
//! [`MAX_CHECK_COST`] bounds before any checking starts, and collects at most
//! [`MAX_ERRORS`] errors.

use serde_json::Value;
use std::collections::HashMap;

/// Largest schema, as JSON text.
pub const MAX_SCHEMA_BYTES: usize = 256 << 10;
/// Deepest nesting of a schema's JSON.
pub const MAX_SCHEMA_DEPTH: usize = 64;
/// Most subschemas a schema may have with every `$ref` expanded where it is used.
pub const MAX_EXPANDED_NODES: u64 = 20_000;
/// Longest regular expression (`pattern`, a `patternProperties` key).
pub const MAX_PATTERN_CHARS: usize = 1_000;
/// Largest compiled regular expression, in bytes.
const MAX_REGEX_PROGRAM: usize = 1 << 20;
/// Errors reported for one value (the rest are counted, not listed).
pub const MAX_ERRORS: usize = 20;
/// Largest (expanded schema nodes) x (value nodes) a check may cost.
pub const MAX_CHECK_COST: u64 = 50_000_000;

/// A guest's schema, checked and compiled once.
pub struct Schema {
    pub validator: jsonschema::Validator,
    /// Subschemas with every `$ref` expanded where it is used.
    pub expanded_nodes: u64,
}

impl std::fmt::Debug for Schema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Schema")
            .field("expanded_nodes", &self.expanded_nodes)
            .finish_non_exhaustive()
    }
}

/// Checks a schema against the bounds above and compiles it.
pub fn compile(schema: &Value) -> Result<Schema, String> {
    let bytes = serde_json::to_vec(schema).map_err(|e| e.to_string())?.len();
    if bytes > MAX_SCHEMA_BYTES {
        return Err(format!(
            "the schema is {bytes} bytes of JSON, more than the {MAX_SCHEMA_BYTES} allowed"
        ));
    }
    let depth = depth(schema);
    if depth > MAX_SCHEMA_DEPTH {
        return Err(format!(
            "the schema nests {depth} levels deep, more than the {MAX_SCHEMA_DEPTH} allowed"
        ));
    }
    check_refs_and_patterns(schema)?;
    let expanded_nodes = expanded_size(schema)?;
    // Formats are checked whatever the draft (2020-12 only annotates them): a parameter
    // typed as a date-time gets one, not any string; unknown formats pass.
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .with_pattern_options(jsonschema::PatternOptions::regex().size_limit(MAX_REGEX_PROGRAM))
        .with_format("regex", |text: &str| {
            text.len() <= MAX_PATTERN_CHARS
                && regex::RegexBuilder::new(text)
                    .size_limit(MAX_REGEX_PROGRAM)
                    .build()
                    .is_ok()
        })
        .build(schema)
        .map_err(|e| format!("it is not a valid JSON Schema: {e}"))?;
    Ok(Schema {
        validator,
        expanded_nodes,
    })
}

impl Schema {
    /// Checks a value; one message per problem (at most [`MAX_ERRORS`], then a count),
    /// each naming the field at fault. A value too large for this schema to check within
    /// [`MAX_CHECK_COST`] is refused unchecked.
    pub fn errors(&self, value: &Value) -> Vec<String> {
        let nodes = count_nodes(value);
        if nodes.saturating_mul(self.expanded_nodes) > MAX_CHECK_COST {
            return vec![format!(
                "the value has {nodes} JSON values, too many to check against a schema of \
                 {} subschemas (their product may be at most {MAX_CHECK_COST})",
                self.expanded_nodes
            )];
        }
        let mut out = Vec::new();
        let mut more = 0usize;
        for e in self.validator.iter_errors(value) {
            if out.len() == MAX_ERRORS {
                more += 1;
                continue;
            }
            let path = e.instance_path().to_string();
            let field = path.trim_start_matches('/').replace('/', ".");
            out.push(if field.is_empty() {
                e.to_string()
            } else {
                format!("'{field}': {e}")
            });
        }
        if more > 0 {
            out.push(format!("... and {more} more"));
        }
        out
    }
}

fn depth(v: &Value) -> usize {
    // Iterative, so that a pathological document cannot overflow the host's stack.
    let mut deepest = 0;
    let mut stack = vec![(v, 1usize)];
    while let Some((v, d)) = stack.pop() {
        deepest = deepest.max(d);
        match v {
            Value::Array(items) => stack.extend(items.iter().map(|i| (i, d + 1))),
            Value::Object(map) => stack.extend(map.values().map(|i| (i, d + 1))),
            _ => {}
        }
    }
    deepest
}

fn count_nodes(v: &Value) -> u64 {
    let mut n = 0u64;
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        n += 1;
        match v {
            Value::Array(items) => stack.extend(items),
            Value::Object(map) => stack.extend(map.values()),
            _ => {}
        }
    }
    n
}

const REF_KEYWORDS: [&str; 3] = ["$ref", "$dynamicRef", "$recursiveRef"];

/// Refuses references that leave the schema, and patterns too long to run.
fn check_refs_and_patterns(v: &Value) -> Result<(), String> {
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        match v {
            Value::Object(map) => {
                for kw in REF_KEYWORDS {
                    if let Some(r) = map.get(kw).and_then(Value::as_str)
                        && !r.starts_with('#')
                    {
                        return Err(format!(
                            "{kw} {r:?} refers outside the schema; only local references \
                             (\"#/$defs/...\") are allowed"
                        ));
                    }
                }
                if let Some(Value::String(p)) = map.get("pattern")
                    && p.chars().count() > MAX_PATTERN_CHARS
                {
                    return Err(format!(
                        "a pattern of {} characters is longer than the {MAX_PATTERN_CHARS} \
                         allowed",
                        p.chars().count()
                    ));
                }
                if let Some(Value::Object(pp)) = map.get("patternProperties")
                    && let Some(p) = pp.keys().find(|k| k.chars().count() > MAX_PATTERN_CHARS)
                {
                    return Err(format!(
                        "a patternProperties pattern of {} characters is longer than the \
                         {MAX_PATTERN_CHARS} allowed",
                        p.chars().count()
                    ));
                }
                stack.extend(map.values());
            }
            Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
    Ok(())
}

/// The number of subschemas with every local reference expanded where it is used; a
/// reference to a schema being expanded (recursion) counts once. Refused past
/// [`MAX_EXPANDED_NODES`].
fn expanded_size(root: &Value) -> Result<u64, String> {
    struct Walk<'a> {
        root: &'a Value,
        sizes: HashMap<String, u64>,
        open: Vec<String>,
    }
    impl Walk<'_> {
        fn size(&mut self, v: &Value, depth: usize) -> u64 {
            if depth > MAX_SCHEMA_DEPTH * 4 {
                return MAX_EXPANDED_NODES + 1;
            }
            let mut n = 1u64;
            match v {
                Value::Object(map) => {
                    for kw in REF_KEYWORDS {
                        if let Some(r) = map.get(kw).and_then(Value::as_str) {
                            n = n.saturating_add(self.target(r, depth));
                        }
                    }
                    for (k, child) in map {
                        // Values of keywords that hold data, not schemas, still count
                        // (cheaply) as nodes; `$defs` count where they are used.
                        if k == "$defs" || k == "definitions" {
                            continue;
                        }
                        n = n.saturating_add(self.size(child, depth + 1));
                        if n > MAX_EXPANDED_NODES {
                            return n;
                        }
                    }
                }
                Value::Array(items) => {
                    for child in items {
                        n = n.saturating_add(self.size(child, depth + 1));
                        if n > MAX_EXPANDED_NODES {
                            return n;
                        }
                    }
                }
                _ => {}
            }
            n
        }

        fn target(&mut self, r: &str, depth: usize) -> u64 {
            if let Some(n) = self.sizes.get(r) {
                return *n;
            }
            if self.open.iter().any(|o| o == r) {
                return 1;
            }
            let pointer = r.trim_start_matches('#');
            let Some(target) = self.root.pointer(pointer) else {
                return 1;
            };
            self.open.push(r.to_owned());
            let n = self.size(target, depth + 1);
            self.open.pop();
            self.sizes.insert(r.to_owned(), n);
            n
        }
    }
    let mut walk = Walk {
        root,
        sizes: HashMap::new(),
        open: Vec::new(),
    };
    let n = walk.size(root, 0);
    if n > MAX_EXPANDED_NODES {
        return Err(format!(
            "its $refs expand to more than {MAX_EXPANDED_NODES} subschemas (each reference \
             counted where it is used)"
        ));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Level i refers to level i+1 twice: 2^levels paths.
    fn ref_dag(levels: usize) -> Value {
        let mut defs = serde_json::Map::new();
        for i in 0..levels {
            let next = format!("#/$defs/l{}", i + 1);
            defs.insert(
                format!("l{i}"),
                json!({"anyOf": [{"$ref": next}, {"$ref": next}]}),
            );
        }
        defs.insert(format!("l{levels}"), json!({"type": "integer"}));
        json!({"type": "object", "properties": {"x": {"$ref": "#/$defs/l0"}}, "$defs": defs})
    }

    #[test]
    fn an_exponential_ref_dag_is_refused_quickly() {
        let started = std::time::Instant::now();
        let e = compile(&ref_dag(40)).unwrap_err();
        assert!(e.contains("expand to more than"), "{e}");
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        // A shallow one is fine, and checks values.
        let s = compile(&ref_dag(4)).unwrap();
        assert!(s.errors(&json!({"x": 1})).is_empty());
        assert_eq!(s.errors(&json!({"x": "a"})).len(), 1);
    }

    #[test]
    fn recursive_schemas_are_allowed() {
        let tree = json!({
            "$ref": "#/$defs/node",
            "$defs": {"node": {"type": "object", "properties": {
                "children": {"type": "array", "items": {"$ref": "#/$defs/node"}}}}}
        });
        let s = compile(&tree).unwrap();
        assert!(
            s.errors(&json!({"children": [{"children": []}]}))
                .is_empty()
        );
        assert!(!s.errors(&json!({"children": [1]})).is_empty());
    }

    #[test]
    fn size_depth_remote_refs_and_long_patterns_are_refused() {
        let mut deep = json!({"type": "integer"});
        for _ in 0..100 {
            deep = json!({"items": deep});
        }
        assert!(compile(&deep).unwrap_err().contains("nests"));
        let big = json!({"description": "x".repeat(MAX_SCHEMA_BYTES)});
        assert!(compile(&big).unwrap_err().contains("bytes of JSON"));
        let remote = json!({"$ref": "http://169.254.169.254/schema"});
        assert!(compile(&remote).unwrap_err().contains("refers outside"));
        let long = json!({"type": "string", "pattern": "a".repeat(2000)});
        assert!(compile(&long).unwrap_err().contains("pattern"));
    }

    #[test]
    fn formats_are_checked() {
        let s = compile(&json!({
            "type": "object",
            "properties": {
                "at": {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]},
                "day": {"type": "string", "format": "date"},
                "n": {"type": "integer", "format": "uint32"},
            },
        }))
        .unwrap();
        assert!(
            s.errors(&json!({"at": "2024-03-01T14:30:00Z", "day": "2024-03-01", "n": 3}))
                .is_empty()
        );
        assert!(s.errors(&json!({"at": null})).is_empty());
        assert!(!s.errors(&json!({"at": "yesterday"})).is_empty());
        assert!(!s.errors(&json!({"day": "someday"})).is_empty());
    }

    #[test]
    fn a_backtracking_pattern_runs_in_linear_time() {
        let s = compile(&json!({"type": "string", "pattern": "^(a+)+$"})).unwrap();
        let started = std::time::Instant::now();
        let errors = s.errors(&json!(format!("{}!", "a".repeat(100_000))));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn errors_are_bounded_and_oversized_values_refused_unchecked() {
        let s = compile(&json!({"type": "array", "items": {"type": "integer"}})).unwrap();
        let errors = s.errors(&json!(vec!["x"; 100]));
        assert_eq!(errors.len(), MAX_ERRORS + 1);
        assert_eq!(errors.last().unwrap(), "... and 80 more");
        let wide =
            compile(&json!({"type": "array", "items": {"enum": (0..10_000).collect::<Vec<_>>()}}))
                .unwrap();
        let huge = Value::Array(vec![json!(1); 6_000]);
        let errors = wide.errors(&huge);
        assert!(errors[0].contains("too many to check"), "{errors:?}");
    }
}
