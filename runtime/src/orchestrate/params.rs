//! Flow parameters: defaults filled, values coerced where the schema allows ("5" to 5),
//! then validated against the flow's JSON Schema, before the run may start.

use crate::model::schema::Schema;
use serde_json::{Map, Value};

/// Validates parameters, returning them with defaults and coercions applied, or one
/// message per offending field.
pub fn prepare(schema: &Value, validator: &Schema, input: Value) -> Result<Value, Vec<String>> {
    let mut value = match input {
        Value::Null => Value::Object(Map::new()),
        Value::Object(m) => Value::Object(m),
        other => {
            return Err(vec![format!(
                "parameters must be a JSON object, not {}",
                kind(&other)
            )]);
        }
    };
    coerce(schema, schema, &mut value, 0);
    let errors = validator.errors(&value);
    if errors.is_empty() {
        Ok(value)
    } else {
        Err(errors)
    }
}

/// Parameters of a flow that does not validate them (`validate_parameters = false`):
/// passed as given, with only the defaults of missing ones filled.
pub fn pass_through(schema: &Value, input: Value) -> Result<Value, Vec<String>> {
    let mut map = match input {
        Value::Null => Map::new(),
        Value::Object(m) => m,
        other => {
            return Err(vec![format!(
                "parameters must be a JSON object, not {}",
                kind(&other)
            )]);
        }
    };
    if let Some(Value::Object(props)) = schema.get("properties") {
        for (name, prop) in props {
            if !map.contains_key(name)
                && let Some(default) = default_of(schema, prop)
            {
                map.insert(name.clone(), default.clone());
            }
        }
    }
    Ok(Value::Object(map))
}

/// A property's default: beside its `$ref` (where schema generators put the default of a
/// struct-typed parameter) or in the schema it refers to.
fn default_of<'a>(root: &'a Value, prop: &'a Value) -> Option<&'a Value> {
    prop.get("default")
        .or_else(|| resolve(root, prop).get("default"))
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Follows a local `$ref` ("#/$defs/Name" or "#/definitions/Name").
fn resolve<'a>(root: &'a Value, schema: &'a Value) -> &'a Value {
    let mut s = schema;
    for _ in 0..16 {
        match s.get("$ref").and_then(Value::as_str) {
            Some(r) if r.starts_with("#/") => {
                match r[2..].split('/').try_fold(root, |v, part| v.get(part)) {
                    Some(target) => s = target,
                    None => return s,
                }
            }
            _ => return s,
        }
    }
    s
}

fn types(schema: &Value) -> Vec<&str> {
    match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn coerce(root: &Value, schema: &Value, value: &mut Value, depth: usize) {
    if depth > 32 {
        return;
    }
    let schema = resolve(root, schema);
    // Option<T> and unions: coerce by the first branch that is not null.
    for key in ["anyOf", "oneOf"] {
        if let Some(Value::Array(branches)) = schema.get(key) {
            if value.is_null() {
                return;
            }
            if let Some(b) = branches
                .iter()
                .find(|b| types(resolve(root, b)) != ["null"])
            {
                coerce(root, b, value, depth + 1);
            }
            return;
        }
    }
    let ts = types(schema);
    if let Value::String(s) = value {
        let s = s.trim().to_owned();
        let coerced = if ts.contains(&"string") {
            None
        } else if ts.contains(&"integer") {
            s.parse::<i64>().ok().map(Value::from)
        } else if ts.contains(&"number") {
            s.parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number)
        } else if ts.contains(&"boolean") {
            match s.to_ascii_lowercase().as_str() {
                "true" => Some(Value::Bool(true)),
                "false" => Some(Value::Bool(false)),
                _ => None,
            }
        } else if ts.contains(&"array") || ts.contains(&"object") {
            serde_json::from_str::<Value>(&s)
                .ok()
                .filter(|v| v.is_array() || v.is_object())
        } else {
            None
        };
        if let Some(c) = coerced {
            *value = c;
        }
    }
    match value {
        Value::Object(map) => {
            if let Some(Value::Object(props)) = schema.get("properties") {
                for (name, prop) in props {
                    match map.get_mut(name) {
                        Some(v) => coerce(root, prop, v, depth + 1),
                        None => {
                            if let Some(default) = default_of(root, prop) {
                                map.insert(name.clone(), default.clone());
                            }
                        }
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for item in items {
                    coerce(root, item_schema, item, depth + 1);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "n": {"type": "integer"},
                "ratio": {"type": "number"},
                "name": {"type": "string", "default": "world"},
                "flag": {"type": ["boolean", "null"]},
                "tags": {"type": "array", "items": {"type": "integer"}},
                "cfg": {"$ref": "#/$defs/Cfg"}
            },
            "required": ["n"],
            "additionalProperties": false,
            "$defs": {"Cfg": {"type": "object", "properties": {"depth": {"type": "integer"}}}}
        })
    }

    fn run(input: Value) -> Result<Value, Vec<String>> {
        let s = schema();
        let v = crate::model::schema::compile(&s).unwrap();
        prepare(&s, &v, input)
    }

    #[test]
    fn coerces_strings_and_fills_defaults() {
        let out = run(
            json!({"n": "5", "ratio": "0.5", "flag": "true", "tags": ["1", 2],
                             "cfg": {"depth": "3"}}),
        )
        .unwrap();
        assert_eq!(
            out,
            json!({"n": 5, "ratio": 0.5, "flag": true, "tags": [1, 2], "cfg": {"depth": 3},
                   "name": "world"})
        );
    }

    #[test]
    fn names_each_bad_field() {
        let errs = run(json!({"n": "five", "ratio": "x", "extra": 1})).unwrap_err();
        let all = errs.join("\n");
        assert!(all.contains("'n'"), "{all}");
        assert!(all.contains("'ratio'"), "{all}");
        assert!(all.contains("extra"), "{all}");
    }

    #[test]
    fn missing_required_and_non_object() {
        let errs = run(json!({})).unwrap_err();
        assert!(
            errs.join(" ").contains("\"n\" is a required property"),
            "{errs:?}"
        );
        let errs = run(json!([1])).unwrap_err();
        assert!(errs[0].contains("must be a JSON object"));
    }
}
