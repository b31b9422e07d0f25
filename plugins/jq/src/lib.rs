//! Weir's `jq` plugin: jq filters over JSON (with jaq, a jq implementation in Rust).
//! `query` returns every output of the filter, `first` its first output.

use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Vars, data};
use jaq_json::{Num, Val};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use weir_sdk::{Error, Result, task};

// The component's exports. Only a wasm build is a component: unit tests build the crate
// for the host, where the exports' names cannot be linked.
#[cfg(target_family = "wasm")]
weir_sdk::export!();

/// Declares task arguments as transparent wrappers: each one's doc comment becomes the
/// description of its parameter in the task's schema (a parameter cannot carry one).
macro_rules! arguments {
    ($($(#[$meta:meta])* $name:ident($(#[$field:meta])* $ty:ty);)*) => {$(
        $(#[$meta])*
        #[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
        #[serde(transparent)]
        #[schemars(inline)]
        pub struct $name($(#[$field])* pub $ty);

        impl From<$ty> for $name {
            fn from(value: $ty) -> Self {
                $name(value)
            }
        }
    )*};
}

arguments! {
    /// The jq program, such as `.items[] | select(.price > 10) | .name`.
    Filter(String);
    /// The JSON value the filter reads as `.`.
    Input(Value);
}

/// At most this many outputs: a filter that yields more (such as `range(1e9)`) fails.
pub const MAX_OUTPUTS: usize = 100_000;

/// How deeply an output may nest (arrays and objects in one another).
pub const MAX_DEPTH: usize = 512;

/// Runs a jq filter on the input and returns all its outputs.
///
/// The outputs come in order, as an array (at most 100,000 of them). A filter that does
/// not parse fails with kind "jq-syntax"; an error raised while it runs with kind
/// "jq-error".
#[task]
fn query(filter: Filter, input: Input) -> Result<Vec<Value>> {
    run(&filter.0, input.0, MAX_OUTPUTS)
}

/// Runs a jq filter on the input and returns its first output, or null.
///
/// The filter stops at its first output; null when it has none. Errors as for `query`.
#[task]
fn first(filter: Filter, input: Input) -> Result<Value> {
    Ok(run(&filter.0, input.0, 1)?
        .into_iter()
        .next()
        .unwrap_or(Value::Null))
}

/// The outputs of `filter` on `input`, at most `limit` of them: the filter stops after
/// `limit` outputs when `limit` is 1, and fails when it yields more otherwise.
pub fn run(filter: &str, input: Value, limit: usize) -> Result<Vec<Value>> {
    let program = File {
        code: filter,
        path: (),
    };
    let defs = jaq_core::defs()
        .chain(jaq_std::defs())
        .chain(jaq_json::defs());
    let funs = jaq_core::funs()
        .chain(jaq_std::funs())
        .chain(jaq_json::funs());
    let arena = Arena::default();
    let modules = Loader::new(defs).load(&arena, program).map_err(|errors| {
        let reasons: Vec<String> = errors
            .into_iter()
            .flat_map(|(_, error)| load_error(filter, error))
            .collect();
        syntax_error(&reasons)
    })?;
    let compiled = Compiler::default()
        .with_funs(funs)
        .compile(modules)
        .map_err(|errors| {
            let reasons: Vec<String> = errors
                .into_iter()
                .flat_map(|(_, undefined)| undefined)
                .map(|(name, what)| {
                    let what = match what {
                        jaq_core::compile::Undefined::Filter(arity) => {
                            format!("filter {name}/{arity}")
                        }
                        other => format!("{} {name}", other.as_str()),
                    };
                    format!("undefined {what} at {}", position(filter, name))
                })
                .collect();
            syntax_error(&reasons)
        })?;
    let ctx = Ctx::<data::JustLut<Val>>::new(&compiled.lut, Vars::new([]));
    let mut outputs = Vec::new();
    for output in compiled.id.run((ctx, to_val(input))) {
        let value = match output {
            Ok(value) => value,
            Err(exception) => match exception.get_err() {
                Ok(error) => return Err(runtime_error(error.into_val())),
                // `halt` ends the program: with 0 the outputs so far are the result.
                Err(exception) => match exception.get_halt() {
                    Ok(0) => break,
                    Ok(code) => {
                        return Err(Error::msg(format!("filter: halted with exit code {code}"))
                            .kind("jq-error")
                            .retryable(false));
                    }
                    Err(_) => {
                        return Err(Error::msg("filter: ended by an unexpected jq exception")
                            .kind("jq-error")
                            .retryable(false));
                    }
                },
            },
        };
        if outputs.len() == limit {
            return Err(Error::msg(format!(
                "filter: more than {limit} outputs; collect fewer (for example with \
                 limit(n; f)) or use first"
            ))
            .kind("jq-limit")
            .retryable(false));
        }
        outputs.push(to_json(&value, 0)?);
        if limit == 1 {
            break;
        }
    }
    Ok(outputs)
}

/// An error the filter raised: its message when it is a string (as `error("...")` gives),
/// else its JSON, also kept as the error's details.
fn runtime_error(value: Val) -> Error {
    let error = match &value {
        Val::TStr(bytes) => Error::msg(format!("filter: {}", String::from_utf8_lossy(bytes))),
        other => {
            let error = Error::msg(format!("filter: {other} (not a string)"));
            match to_json(other, 0) {
                Ok(details) => error.details(serde_json::json!({ "error": details })),
                Err(_) => error,
            }
        }
    };
    error.kind("jq-error").retryable(false)
}

fn syntax_error(reasons: &[String]) -> Error {
    Error::msg(format!("filter: {}", reasons.join("; ")))
        .kind("jq-syntax")
        .retryable(false)
}

/// The reasons a filter did not load, each with its position.
fn load_error(code: &str, error: jaq_core::load::Error<&str>) -> Vec<String> {
    use jaq_core::load::Error as E;
    match error {
        E::Io(errors) => errors
            .into_iter()
            .map(|(path, message)| format!("cannot load module {path:?}: {message}"))
            .collect(),
        E::Lex(errors) => errors
            .into_iter()
            .map(|(expected, found)| match expected {
                jaq_core::load::lex::Expect::Delim(open) => format!(
                    "expected {} to match the {open:?} at {}",
                    expected.as_str(),
                    position(code, open)
                ),
                _ => format!(
                    "expected {} at {}",
                    expected.as_str(),
                    position(code, found)
                ),
            })
            .collect(),
        E::Parse(errors) => errors
            .into_iter()
            .map(|(expected, found)| {
                let what = if found.is_empty() {
                    "the end of the filter".to_owned()
                } else {
                    format!("{:?}", first_chars(found, 20))
                };
                format!(
                    "expected {} but found {what} at {}",
                    expected.as_str(),
                    position(code, found)
                )
            })
            .collect(),
    }
}

fn first_chars(text: &str, n: usize) -> String {
    match text.char_indices().nth(n) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text.to_owned(),
    }
}

/// "line L, column C" of `part`, a slice of `code` (1-based, columns in characters).
fn position(code: &str, part: &str) -> String {
    let start = part.as_ptr() as usize;
    let base = code.as_ptr() as usize;
    if start < base || start > base + code.len() {
        return "an unknown position".to_owned();
    }
    let offset = start - base;
    let before = &code[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map_or(before, |i| &before[i + 1..])
        .chars()
        .count()
        + 1;
    format!("line {line}, column {column}")
}

/// A JSON value as jaq's.
fn to_val(value: Value) -> Val {
    match value {
        Value::Null => Val::Null,
        Value::Bool(b) => Val::Bool(b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Val::Num(Num::from_integral(i))
            } else if let Some(u) = n.as_u64() {
                Val::Num(Num::from_integral(u))
            } else {
                Val::Num(Num::Float(n.as_f64().unwrap_or(f64::NAN)))
            }
        }
        Value::String(s) => Val::from(s),
        Value::Array(items) => items.into_iter().map(to_val).collect(),
        Value::Object(map) => Val::obj(
            map.into_iter()
                .map(|(k, v)| (Val::from(k), to_val(v)))
                .collect(),
        ),
    }
}

/// jaq's value as JSON, as jq prints it: NaN is null, infinities the largest floats, and
/// object keys that are not strings their JSON text.
fn to_json(value: &Val, depth: usize) -> Result<Value> {
    if depth > MAX_DEPTH {
        return Err(Error::msg(format!(
            "filter: an output nests arrays and objects more than {MAX_DEPTH} deep"
        ))
        .kind("jq-limit")
        .retryable(false));
    }
    Ok(match value {
        Val::Null => Value::Null,
        Val::Bool(b) => Value::Bool(*b),
        Val::Num(n) => number(n),
        Val::TStr(bytes) | Val::BStr(bytes) => {
            Value::String(String::from_utf8_lossy(bytes).into_owned())
        }
        Val::Arr(items) => Value::Array(
            items
                .iter()
                .map(|item| to_json(item, depth + 1))
                .collect::<Result<_>>()?,
        ),
        Val::Obj(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let key = match k {
                        Val::TStr(bytes) | Val::BStr(bytes) => {
                            String::from_utf8_lossy(bytes).into_owned()
                        }
                        other => other.to_string(),
                    };
                    Ok((key, to_json(v, depth + 1)?))
                })
                .collect::<Result<_>>()?,
        ),
    })
}

fn number(n: &Num) -> Value {
    let float = |f: f64| {
        let f = if f.is_nan() {
            return Value::Null;
        } else if f.is_infinite() {
            f.signum() * f64::MAX
        } else {
            f
        };
        serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
    };
    match n {
        Num::Int(i) => Value::from(*i as i64),
        Num::Float(f) => float(*f),
        // Big integers and decimal literals: their text, when it is a JSON number.
        other => {
            let text = other.to_string();
            match serde_json::from_str::<serde_json::Number>(&text) {
                Ok(n) => Value::Number(n),
                Err(_) => float(text.parse().unwrap_or(f64::NAN)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn all(filter: &str, input: Value) -> Vec<Value> {
        run(filter, input, MAX_OUTPUTS).unwrap()
    }

    #[test]
    fn outputs_come_in_order() {
        let input = json!({"items": [{"name": "a", "price": 5}, {"name": "b", "price": 20}]});
        assert_eq!(
            all(".items[] | select(.price > 10) | .name", input.clone()),
            [json!("b")]
        );
        assert_eq!(
            all(".items | map(.price) | add", input.clone()),
            [json!(25)]
        );
        assert_eq!(all(".items[].name", input), [json!("a"), json!("b")]);
        assert_eq!(all("empty", json!(null)), Vec::<Value>::new());
        assert_eq!(all("1, 2.5, \"x\", null, [true]", json!(null)).len(), 5);
    }

    #[test]
    fn the_standard_library_is_there() {
        assert_eq!(
            all(
                "to_entries | map(\"\\(.key)=\\(.value)\") | join(\"&\")",
                json!({"a": 1, "b": "x"})
            ),
            [json!("a=1&b=x")]
        );
        assert_eq!(
            all("[.[] | ascii_upcase] | sort", json!(["b", "a"])),
            [json!(["A", "B"])]
        );
        assert_eq!(all("test(\"^a.c$\")", json!("abc")), [json!(true)]);
        assert_eq!(all("@base64", json!("hi")), [json!("aGk=")]);
        assert_eq!(all("tojson", json!({"a": [1]})), [json!("{\"a\":[1]}")]);
        assert_eq!(all("fromjson", json!("{\"a\":1}")), [json!({"a": 1})]);
        assert_eq!(all("length", json!("héllo")), [json!(5)]);
    }

    #[test]
    fn object_key_order_is_kept() {
        let out = all(". + {c: 3}", json!({"b": 1, "a": 2}));
        let keys: Vec<&String> = out[0].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["b", "a", "c"]);
    }

    #[test]
    fn numbers_keep_their_kind() {
        assert_eq!(
            all(".", json!(18446744073709551615u64)),
            [json!(18446744073709551615u64)]
        );
        assert_eq!(all(". + 1", json!(-5)), [json!(-4)]);
        assert_eq!(all(". / 2", json!(3)), [json!(1.5)]);
        assert_eq!(
            all("nan, infinite, -infinite", json!(null)),
            [json!(null), json!(f64::MAX), json!(-f64::MAX)]
        );
        assert_eq!(all("1.50", json!(null)), [json!(1.5)]);
    }

    #[test]
    fn first_stops_at_the_first_output() {
        assert_eq!(run(".[]", json!([1, 2, 3]), 1).unwrap(), [json!(1)]);
        // The error after the first output is never reached.
        assert_eq!(
            run("1, error(\"late\")", json!(null), 1).unwrap(),
            [json!(1)]
        );
        assert!(run("empty", json!(null), 1).unwrap().is_empty());
        assert_eq!(run("range(1e9)", json!(null), 1).unwrap(), [json!(0)]);
    }

    #[test]
    fn syntax_errors_give_the_position() {
        let error = run(".a | ", json!(null), MAX_OUTPUTS).unwrap_err();
        assert_eq!(error.get_kind(), "jq-syntax");
        assert_eq!(error.get_retryable(), Some(false));
        assert!(
            error.message().starts_with("filter: expected term"),
            "{error:?}"
        );
        assert!(
            error.message().contains("the end of the filter"),
            "{error:?}"
        );
        let error = run(".a |\n  map(.b", json!(null), MAX_OUTPUTS).unwrap_err();
        assert_eq!(
            error.message(),
            "filter: expected closing parenthesis to match the \"(\" at line 2, column 6"
        );
        let error = run("if . then 1", json!(null), MAX_OUTPUTS).unwrap_err();
        assert!(error.message().contains("else or end"), "{error:?}");
        assert!(error.message().contains("line 1"), "{error:?}");
    }

    #[test]
    fn undefined_names_are_syntax_errors() {
        let error = run(".a | nosuch(1)", json!(null), MAX_OUTPUTS).unwrap_err();
        assert_eq!(error.get_kind(), "jq-syntax");
        assert!(
            error
                .message()
                .contains("undefined filter nosuch/1 at line 1, column 6"),
            "{error:?}"
        );
        let error = run("$x", json!(null), MAX_OUTPUTS).unwrap_err();
        assert!(
            error.message().contains("undefined variable $x"),
            "{error:?}"
        );
    }

    #[test]
    fn runtime_errors_are_jq_errors() {
        let error = run(".a", json!([1]), MAX_OUTPUTS).unwrap_err();
        assert_eq!(error.get_kind(), "jq-error");
        assert_eq!(error.get_retryable(), Some(false));
        assert!(
            error.message().starts_with("filter: cannot index"),
            "{error:?}"
        );
        let error = run("error(\"custom\")", json!(null), MAX_OUTPUTS).unwrap_err();
        assert_eq!(error.message(), "filter: custom");
        let error = run("error({code: 7})", json!(null), MAX_OUTPUTS).unwrap_err();
        assert_eq!(error.message(), "filter: {\"code\":7} (not a string)");
        assert_eq!(error.get_details(), Some(&json!({"error": {"code": 7}})));
        assert_eq!(
            run("try error(\"x\") catch .", json!(null), MAX_OUTPUTS).unwrap(),
            [json!("x")]
        );
    }

    #[test]
    fn halt_ends_the_outputs() {
        assert_eq!(all("1, halt, 2", json!(null)), [json!(1)]);
        let error = run("1, halt_error", json!("bye\n"), MAX_OUTPUTS).unwrap_err();
        assert!(error.message().contains("exit code 5"), "{error:?}");
    }

    #[test]
    fn outputs_are_bounded() {
        let error = run("range(1e9)", json!(null), MAX_OUTPUTS).unwrap_err();
        assert_eq!(error.get_kind(), "jq-limit");
        assert!(
            error.message().contains("more than 100000 outputs"),
            "{error:?}"
        );
        assert_eq!(all("range(100000)", json!(null)).len(), 100_000);
        let error = run("reduce range(600) as $i (0; [.])", json!(null), 10).unwrap_err();
        assert!(error.message().contains("more than 512 deep"), "{error:?}");
    }

    /// The task's parameters schema, as the component's manifest gives it to the host.
    fn schema(task: &str) -> Value {
        weir_sdk::__private::inventory::iter::<weir_sdk::__private::Registration>
            .into_iter()
            .find(|r| r.name == task)
            .map(|r| (r.parameters_schema)())
            .expect("the task is registered")
    }

    /// Checks the parameters in order, the required ones, and that each is described.
    fn check_parameters(task: &str, names: &[&str], required: &[&str]) -> Value {
        let schema = schema(task);
        let properties = schema["properties"].as_object().unwrap();
        assert_eq!(properties.keys().collect::<Vec<_>>(), names, "{task}");
        assert_eq!(schema["required"], json!(required), "{task}");
        for (name, property) in properties {
            assert!(
                property["description"].is_string(),
                "{task}: {name} has no description"
            );
        }
        schema
    }

    #[test]
    fn the_schema_describes_each_argument() {
        for task in ["query", "first"] {
            let schema = check_parameters(task, &["filter", "input"], &["filter", "input"]);
            assert_eq!(schema["properties"]["filter"]["type"], "string");
        }
    }
}
