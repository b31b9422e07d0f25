//! Forms generated from a JSON Schema (a flow's parameters, a pause's input): one input
//! per property of the kind the schema says (text, number, integer, checkbox, a select
//! for enums, a fieldset for nested objects, one line per item for arrays of scalars, a
//! JSON box for anything else), defaults pre-filled, required fields marked, and a JSON
//! editor for the whole value. Posted forms are read back into JSON by the same schema,
//! and the server's validation errors are shown next to their fields.

use maud::{Markup, html};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Field errors by dotted path ("" for the whole value).
pub type Errors = BTreeMap<String, Vec<String>>;

/// Name of the textarea holding the whole value as JSON; when it is not blank it is
/// used instead of the fields.
pub const JSON_FIELD: &str = "_json";

const MAX_DEPTH: usize = 8;

/// Follows local `$ref`s (`#/$defs/X`, `#/definitions/X`) against the root schema.
fn resolve<'a>(root: &'a Value, mut s: &'a Value) -> &'a Value {
    for _ in 0..MAX_DEPTH {
        let Some(r) = s.get("$ref").and_then(Value::as_str) else {
            return s;
        };
        let Some(found) = r.strip_prefix('#').and_then(|p| root.pointer(p)) else {
            return s;
        };
        s = found;
    }
    s
}

#[derive(Debug, PartialEq)]
enum Kind {
    Text,
    Integer,
    Number,
    Boolean,
    Enum(Vec<Value>),
    Object,
    Lines(Box<Kind>),
    Json,
}

/// The schema's type, with `null` left out of a list of types (an optional value).
fn single_type(s: &Value) -> Option<&str> {
    match s.get("type") {
        Some(Value::String(t)) => Some(t),
        Some(Value::Array(ts)) => {
            let non_null: Vec<&str> = ts
                .iter()
                .filter_map(Value::as_str)
                .filter(|t| *t != "null")
                .collect();
            (non_null.len() == 1).then(|| non_null[0])
        }
        _ => None,
    }
}

/// `anyOf: [X, {type: null}]` (an optional value) is X.
fn unwrap_optional<'a>(root: &'a Value, s: &'a Value) -> &'a Value {
    let s = resolve(root, s);
    if let Some(Value::Array(alts)) = s.get("anyOf").or_else(|| s.get("oneOf")) {
        let non_null: Vec<&Value> = alts
            .iter()
            .filter(|a| a.get("type").and_then(Value::as_str) != Some("null"))
            .collect();
        if non_null.len() == 1 && alts.len() == 2 {
            return resolve(root, non_null[0]);
        }
    }
    s
}

fn kind(root: &Value, s: &Value, depth: usize) -> Kind {
    let s = unwrap_optional(root, s);
    if let Some(Value::Array(values)) = s.get("enum")
        && !values.is_empty()
        && values.iter().all(|v| !v.is_object() && !v.is_array())
    {
        return Kind::Enum(values.clone());
    }
    match single_type(s) {
        Some("string") => Kind::Text,
        Some("integer") => Kind::Integer,
        Some("number") => Kind::Number,
        Some("boolean") => Kind::Boolean,
        Some("object")
            if depth < MAX_DEPTH && s.get("properties").is_some_and(Value::is_object) =>
        {
            Kind::Object
        }
        Some("array") => match s.get("items").map(|i| kind(root, i, depth + 1)) {
            Some(k @ (Kind::Text | Kind::Integer | Kind::Number)) => Kind::Lines(Box::new(k)),
            _ => Kind::Json,
        },
        _ => Kind::Json,
    }
}

fn properties(s: &Value) -> Vec<(&String, &Value)> {
    s.get("properties")
        .and_then(Value::as_object)
        .map(|p| p.iter().collect())
        .unwrap_or_default()
}

fn required(s: &Value) -> Vec<&str> {
    s.get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The fields of an object schema, filled with `values`.
pub fn fields(schema: &Value, values: &Value, errors: &Errors) -> Markup {
    let root = unwrap_optional(schema, schema);
    if kind(schema, root, 0) != Kind::Object {
        return html! {};
    }
    object_fields(schema, root, "", values, errors, 0)
}

fn object_fields(
    root: &Value,
    s: &Value,
    path: &str,
    values: &Value,
    errors: &Errors,
    depth: usize,
) -> Markup {
    let req = required(s);
    html! {
        @for (name, prop) in properties(s) {
            (field(root, prop, &join(path, name), name, req.contains(&name.as_str()), values.get(name.as_str()), errors, depth + 1))
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn field(
    root: &Value,
    raw: &Value,
    path: &str,
    name: &str,
    required: bool,
    value: Option<&Value>,
    errors: &Errors,
    depth: usize,
) -> Markup {
    let s = unwrap_optional(root, raw);
    let title = s
        .get("title")
        .and_then(Value::as_str)
        .unwrap_or(name)
        .to_owned();
    let description = s.get("description").and_then(Value::as_str);
    let value = value
        .or_else(|| s.get("default"))
        .or_else(|| raw.get("default"));
    let id = format!("f-{}", path.replace('.', "-"));
    let input_name = format!("p:{path}");
    let k = kind(root, s, depth);
    let error = errors.get(path);
    let label = html! {
        label for=(id) { (title) @if required { " " span.req title="required" { "*" } } }
    };
    let control = match &k {
        Kind::Object => {
            let empty = Value::Object(Map::new());
            return html! {
                fieldset {
                    legend { (title) @if required { " " span.req { "*" } } }
                    @if let Some(d) = description { div.hint { (d) } }
                    (object_fields(root, s, path, value.unwrap_or(&empty), errors, depth))
                }
            };
        }
        Kind::Boolean => {
            let on = value.and_then(Value::as_bool).unwrap_or(false);
            html! {
                input type="hidden" name=(input_name) value="false";
                input #(id) type="checkbox" name=(input_name) value="true" checked[on];
            }
        }
        Kind::Enum(options) => {
            let current = value.cloned();
            html! {
                select #(id) name=(input_name) {
                    @if !required || current.is_none() { option value="" { "" } }
                    @for o in options {
                        option value=(o.to_string()) selected[current.as_ref() == Some(o)] { (text_of(o)) }
                    }
                }
            }
        }
        Kind::Text => html! {
            input #(id) type="text" name=(input_name) value=(value.map(text_of).unwrap_or_default()) size="40";
        },
        Kind::Integer => html! {
            input #(id) type="number" step="1" name=(input_name) value=(value.map(text_of).unwrap_or_default());
        },
        Kind::Number => html! {
            input #(id) type="number" step="any" name=(input_name) value=(value.map(text_of).unwrap_or_default());
        },
        Kind::Lines(_) => {
            let lines = value
                .and_then(Value::as_array)
                .map(|a| a.iter().map(text_of).collect::<Vec<_>>().join("\n"))
                .unwrap_or_default();
            html! {
                textarea #(id) name=(input_name) rows="4" { (lines) }
                div.hint { "One item per line." }
            }
        }
        Kind::Json => {
            let text = value
                .map(|v| serde_json::to_string_pretty(v).unwrap_or_default())
                .unwrap_or_default();
            html! {
                textarea #(id) name={ "j:" (path) } rows="4" { (text) }
                div.hint { "JSON." }
            }
        }
    };
    html! {
        div.field {
            (label)
            (control)
            @if let Some(d) = description { div.hint { (d) } }
            @if let Some(es) = error { @for e in es { div.error { (e) } } }
        }
    }
}

/// The whole value as JSON, for the JSON editor.
pub fn json_editor(values: &Value) -> Markup {
    let text = serde_json::to_string_pretty(values).unwrap_or_default();
    html! {
        details {
            summary { "Edit as JSON" }
            textarea name=(JSON_FIELD) rows="10" placeholder="Leave empty to use the fields above" {}
            div.hint { "Current values: " }
            pre { (text) }
        }
    }
}

/// Reads a posted form back into a JSON object by the schema. Empty inputs are left out
/// (the server applies defaults and reports missing required values); inputs that do
/// not parse are errors by field.
pub fn parse(schema: &Value, form: &[(String, String)]) -> Result<Map<String, Value>, Errors> {
    let mut errors = Errors::new();
    if let Some((_, json)) = form.iter().rev().find(|(k, _)| k == JSON_FIELD)
        && !json.trim().is_empty()
    {
        return match serde_json::from_str::<Value>(json) {
            Ok(Value::Object(m)) => Ok(m),
            Ok(_) => {
                errors.insert(String::new(), vec!["the JSON must be an object".into()]);
                Err(errors)
            }
            Err(e) => {
                errors.insert(String::new(), vec![format!("the JSON is malformed: {e}")]);
                Err(errors)
            }
        };
    }
    // The last value of a name wins (a checked checkbox follows its hidden "false").
    let mut posted: BTreeMap<&str, &str> = BTreeMap::new();
    for (k, v) in form {
        posted.insert(k.as_str(), v.as_str());
    }
    let root = unwrap_optional(schema, schema);
    let mut out = Map::new();
    read_object(schema, root, "", &posted, &mut out, &mut errors, 0);
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

fn read_object(
    root: &Value,
    s: &Value,
    path: &str,
    posted: &BTreeMap<&str, &str>,
    out: &mut Map<String, Value>,
    errors: &mut Errors,
    depth: usize,
) {
    for (name, prop) in properties(s) {
        let p = join(path, name);
        let ps = unwrap_optional(root, prop);
        let k = kind(root, ps, depth + 1);
        if k == Kind::Object {
            let mut inner = Map::new();
            read_object(root, ps, &p, posted, &mut inner, errors, depth + 1);
            if !inner.is_empty() {
                out.insert(name.clone(), Value::Object(inner));
            }
            continue;
        }
        let key = if k == Kind::Json {
            format!("j:{p}")
        } else {
            format!("p:{p}")
        };
        let Some(text) = posted.get(key.as_str()) else {
            continue;
        };
        if text.trim().is_empty() && k != Kind::Boolean {
            continue;
        }
        match read_value(&k, text) {
            Ok(v) => {
                out.insert(name.clone(), v);
            }
            Err(e) => errors.entry(p).or_default().push(e),
        }
    }
}

fn read_value(k: &Kind, text: &str) -> Result<Value, String> {
    let t = text.trim();
    match k {
        Kind::Text => Ok(Value::String(text.to_owned())),
        Kind::Integer => t
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| format!("{t:?} is not a whole number")),
        Kind::Number => t
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| format!("{t:?} is not a number")),
        Kind::Boolean => Ok(Value::Bool(t == "true")),
        Kind::Enum(options) => serde_json::from_str::<Value>(t)
            .ok()
            .filter(|v| options.contains(v))
            .ok_or_else(|| format!("{t:?} is not one of the choices")),
        Kind::Lines(item) => t
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|l| read_value(item, l))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        Kind::Json => serde_json::from_str(t).map_err(|e| format!("not valid JSON: {e}")),
        Kind::Object => Err("an object is read field by field".into()),
    }
}

/// Sorts the server's validation messages ("'a.b': message", or "\"x\" is a required
/// property" for a field left out) onto their fields.
pub fn errors_by_field(messages: &[String]) -> Errors {
    let mut out = Errors::new();
    for m in messages {
        // A resume's messages about the whole input start with "input: ".
        let m = m.strip_prefix("input: ").unwrap_or(m);
        let (path, msg) = match m.strip_prefix('\'').and_then(|r| r.split_once("': ")) {
            Some((p, rest)) => (p.to_owned(), rest.to_owned()),
            None => (String::new(), m.to_owned()),
        };
        // A missing property is reported on its parent; show it on the field itself.
        if let Some(rest) = msg.strip_prefix('"')
            && let Some((child, tail)) = rest.split_once('"')
            && tail.trim() == "is a required property"
        {
            out.entry(join(&path, child))
                .or_default()
                .push("required".into());
            continue;
        }
        out.entry(path).or_default().push(msg);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string", "default": "world"},
                "n": {"type": "integer"},
                "ratio": {"type": ["number", "null"]},
                "loud": {"type": "boolean", "default": false},
                "color": {"enum": ["red", "blue"]},
                "tags": {"type": "array", "items": {"type": "string"}},
                "address": {"$ref": "#/$defs/Address"},
                "extra": {"anyOf": [{"type": "object"}, {"type": "array"}]}
            },
            "$defs": {"Address": {"type": "object", "properties": {"city": {"type": "string"}}}}
        })
    }

    fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_posted_form_reads_back_typed_by_the_schema() {
        let v = parse(
            &schema(),
            &form(&[
                ("p:name", "Ada"),
                ("p:n", "3"),
                ("p:ratio", ""),
                ("p:loud", "false"),
                ("p:loud", "true"),
                ("p:color", "\"blue\""),
                ("p:tags", "a\n\nb\n"),
                ("p:address.city", "Paris"),
                ("j:extra", "[1, 2]"),
            ]),
        )
        .unwrap();
        assert_eq!(
            Value::Object(v),
            json!({"name": "Ada", "n": 3, "loud": true, "color": "blue", "tags": ["a", "b"],
                   "address": {"city": "Paris"}, "extra": [1, 2]})
        );
    }

    #[test]
    fn bad_inputs_are_errors_on_their_fields_and_json_overrides_the_fields() {
        let e = parse(
            &schema(),
            &form(&[("p:n", "three"), ("p:color", "\"green\""), ("j:extra", "{")]),
        )
        .unwrap_err();
        assert_eq!(
            e.keys().collect::<Vec<_>>(),
            ["color", "extra", "n"],
            "{e:?}"
        );
        let v = parse(
            &schema(),
            &form(&[("p:n", "three"), (JSON_FIELD, r#"{"name": "x"}"#)]),
        )
        .unwrap();
        assert_eq!(Value::Object(v), json!({"name": "x"}));
        assert!(parse(&schema(), &form(&[(JSON_FIELD, "[1]")])).is_err());
    }

    #[test]
    fn fields_show_defaults_marks_and_escape_hostile_text() {
        let mut s = schema();
        s["properties"]["name"]["description"] = json!("<script>alert(1)</script>");
        let html = fields(&s, &json!({}), &Errors::new()).into_string();
        assert!(
            html.contains(r#"name="p:name""#) && html.contains(r#"value="world""#),
            "{html}"
        );
        assert!(html.contains(r#"name="p:address.city""#), "{html}");
        assert!(html.contains(r#"name="j:extra""#), "{html}");
        assert!(html.contains("<select"), "{html}");
        assert!(html.contains(r#"class="req""#), "{html}");
        assert!(!html.contains("<script>"), "{html}");
    }

    #[test]
    fn server_messages_land_on_their_fields() {
        let e = errors_by_field(&[
            "'n': \"x\" is not of type \"integer\"".into(),
            "\"name\" is a required property".into(),
            "'address': \"city\" is a required property".into(),
            "input: \"reviewer\" is a required property".into(),
            "parameters must be a JSON object, not array".into(),
        ]);
        assert_eq!(e["n"], ["\"x\" is not of type \"integer\""]);
        assert_eq!(e["name"], ["required"]);
        assert_eq!(e["address.city"], ["required"]);
        assert_eq!(e["reviewer"], ["required"]);
        assert_eq!(e[""], ["parameters must be a JSON object, not array"]);
    }
}
