//! Weir's `template` plugin: renders Jinja templates (with minijinja), strictly: an
//! undefined variable is an error, not an empty string.

use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
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
    /// The template, in Jinja syntax: `Hello {{ name }}!`, `{% for row in rows %}`...
    Template(String);
    /// The variables the template sees, as a JSON object.
    Context(Map<String, Value>);
    /// Whether values printed with `{{ }}` are HTML-escaped (`|safe` marks one that is
    /// not).
    Autoescape(bool);
    /// When set, the rendered text is also stored as a Markdown artifact of the calling run
    /// under this key (lowercase letters, digits and dashes).
    ArtifactKey(#[schemars(regex(pattern = r"^[a-z0-9-]+$"), length(min = 1, max = 256))] String);
    /// The description of the artifact (with `artifact_key`).
    ArtifactDescription(String);
}

/// A render may do about this much work: one unit per instruction and per 64 bytes of data
/// it makes, so a runaway loop fails instead of running on.
pub const FUEL: u64 = 10_000_000;

/// How deeply blocks, loops and macro calls may nest.
pub const RECURSION_LIMIT: usize = 200;

/// The longest rendered text, in bytes.
pub const MAX_OUTPUT_BYTES: usize = 4 << 20;

/// Renders a Jinja template with the context's variables and returns the text.
///
/// Undefined variables are errors (test with `is defined` for optional ones); syntax
/// errors give the line. With `artifact_key`, the text is also stored as a Markdown
/// artifact.
#[task]
fn render(
    template: Template,
    #[default(Map::new())] context: Context,
    #[default(false)] autoescape: Autoescape,
    artifact_key: Option<ArtifactKey>,
    artifact_description: Option<ArtifactDescription>,
) -> Result<String> {
    let key = artifact_key.map(|key| key.0);
    let description = artifact_description.map(|d| d.0);
    check_artifact(key.as_deref(), description.as_deref())?;
    let text = render_text(&template.0, context.0, autoescape.0)?;
    if let Some(key) = &key {
        weir_sdk::artifacts::create_markdown_artifact(&text, Some(key), description.as_deref())?;
    }
    Ok(text)
}

/// An error in the arguments: the same call would fail again.
fn invalid(argument: &str, message: impl std::fmt::Display) -> Error {
    Error::msg(format!("{argument}: {message}"))
        .kind("invalid-argument")
        .retryable(false)
}

/// The artifact arguments, checked before anything is rendered.
pub fn check_artifact(key: Option<&str>, description: Option<&str>) -> Result<()> {
    match (key, description) {
        (None, Some(_)) => Err(invalid(
            "artifact_description",
            "describes an artifact, so it needs artifact_key",
        )),
        (Some(key), _)
            if key.is_empty()
                || key.len() > 256
                || !key
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') =>
        {
            Err(invalid(
                "artifact_key",
                format!("{key:?} must be 1 to 256 lowercase letters, digits and dashes"),
            ))
        }
        _ => Ok(()),
    }
}

/// Renders `template` with `context` (see the task `render`).
pub fn render_text(
    template: &str,
    context: Map<String, Value>,
    autoescape: bool,
) -> Result<String> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    // Errors name the undefined variable (by default only in debug builds).
    env.set_debug(true);
    env.set_fuel(Some(FUEL));
    env.set_recursion_limit(RECURSION_LIMIT);
    // Keep the template's last newline, as written.
    let syntax = minijinja::syntax::SyntaxConfig::builder()
        .keep_trailing_newline(true)
        .build()
        .map_err(template_error)?;
    env.set_syntax(syntax);
    env.set_auto_escape_callback(move |_| {
        if autoescape {
            AutoEscape::Html
        } else {
            AutoEscape::None
        }
    });
    let compiled = env.template_from_str(template).map_err(template_error)?;
    let text = compiled
        .render(to_value(Value::Object(context)))
        .map_err(template_error)?;
    if text.len() > MAX_OUTPUT_BYTES {
        return Err(Error::msg(format!(
            "template: the rendered text is {} bytes, over the limit of {MAX_OUTPUT_BYTES}",
            text.len()
        ))
        .kind("template-limit")
        .retryable(false));
    }
    Ok(text)
}

/// A template error: its kind, what went wrong and the line. Rendering again would fail the
/// same way.
fn template_error(error: minijinja::Error) -> Error {
    use minijinja::ErrorKind as K;
    let kind = match error.kind() {
        K::SyntaxError | K::BadEscape | K::InvalidDelimiter => "template-syntax",
        K::UndefinedError => "template-undefined",
        K::OutOfFuel => "template-limit",
        K::InvalidOperation if error.detail().is_some_and(|d| d.contains("recursion")) => {
            "template-limit"
        }
        _ => "template-error",
    };
    let mut message = format!("template: {}", error.kind());
    if let Some(detail) = error.detail() {
        message.push_str(": ");
        message.push_str(detail);
    }
    if error.kind() == K::OutOfFuel {
        message.push_str(&format!(
            ": the render did more work than a template may ({FUEL} steps and 64-byte units \
             of data)"
        ));
    }
    if let Some(line) = error.line() {
        message.push_str(&format!(" (line {line})"));
    }
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    Error::msg(message).kind(kind).retryable(false)
}

/// A JSON value as a template value; objects keep their key order.
fn to_value(value: Value) -> minijinja::Value {
    use minijinja::Value as V;
    match value {
        Value::Null => V::from(()),
        Value::Bool(b) => V::from(b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                V::from(i)
            } else if let Some(u) = n.as_u64() {
                V::from(u)
            } else {
                V::from(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Value::String(s) => V::from(s),
        Value::Array(items) => V::from(items.into_iter().map(to_value).collect::<Vec<_>>()),
        Value::Object(map) => V::from_pairs(map.into_iter().map(|(k, v)| (k, to_value(v)))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn context(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => panic!("not an object"),
        }
    }

    fn render_ok(template: &str, value: Value) -> String {
        render_text(template, context(value), false).unwrap()
    }

    #[test]
    fn renders_variables_loops_and_filters() {
        let text = render_ok(
            "# {{ title | upper }}\n{% for row in rows %}- {{ row.name }}: {{ row.n * 2 }}\n{% endfor %}",
            json!({"title": "report", "rows": [{"name": "a", "n": 1}, {"name": "b", "n": 2.5}]}),
        );
        assert_eq!(text, "# REPORT\n- a: 2\n- b: 5.0\n");
        assert_eq!(
            render_ok(
                "{{ x | tojson }}",
                json!({"x": {"b": 1, "a": [true, null]}})
            ),
            r#"{"b": 1, "a": [true, null]}"#
        );
        assert_eq!(
            render_ok("{{ q | urlencode }}", json!({"q": "a b&c"})),
            "a%20b%26c"
        );
        assert_eq!(
            render_ok(
                "{% for i in range(5) %}{% if i == 2 %}{% break %}{% endif %}{{ i }}{% endfor %}",
                json!({})
            ),
            "01"
        );
        assert_eq!(render_ok("no variables\n", json!({})), "no variables\n");
    }

    #[test]
    fn object_keys_keep_their_order() {
        assert_eq!(
            render_ok(
                "{% for k, v in m | items %}{{ k }}={{ v }} {% endfor %}",
                json!({"m": {"z": 1, "a": 2}})
            ),
            "z=1 a=2 "
        );
    }

    #[test]
    fn undefined_variables_are_errors_naming_them() {
        let error = render_text("line 1\nHello {{ nme }}!", Map::new(), false).unwrap_err();
        assert_eq!(error.get_kind(), "template-undefined");
        assert_eq!(error.get_retryable(), Some(false));
        assert!(error.message().contains("nme"), "{error:?}");
        assert!(error.message().contains("(line 2)"), "{error:?}");
        let error =
            render_text("{{ user.email }}", context(json!({"user": {}})), false).unwrap_err();
        assert!(error.message().contains("email"), "{error:?}");
        let error = render_text("{% for x in items %}{% endfor %}", Map::new(), false).unwrap_err();
        assert!(error.message().contains("items"), "{error:?}");
        assert_eq!(
            render_ok(
                "{% if x is defined %}{{ x }}{% else %}none{% endif %}",
                json!({})
            ),
            "none"
        );
        assert_eq!(render_ok("{{ x | default('d') }}", json!({})), "d");
    }

    #[test]
    fn syntax_errors_give_the_line() {
        let error = render_text("ok\n{% for x in %}\n{% endfor %}", Map::new(), false).unwrap_err();
        assert_eq!(error.get_kind(), "template-syntax");
        assert!(error.message().contains("(line 2)"), "{error:?}");
        let error = render_text("a\nb\n{{ x ", Map::new(), false).unwrap_err();
        assert!(error.message().contains("syntax error"), "{error:?}");
        assert!(error.message().contains("(line 3)"), "{error:?}");
        let error = render_text("{% if x %}", context(json!({"x": 1})), false).unwrap_err();
        assert_eq!(error.get_kind(), "template-syntax");
    }

    #[test]
    fn autoescape_escapes_html() {
        let value = json!({"x": "<b>&</b>"});
        assert_eq!(render_ok("{{ x }}", value.clone()), "<b>&</b>");
        assert_eq!(
            render_text("{{ x }}|{{ x | safe }}", context(value), true).unwrap(),
            "&lt;b&gt;&amp;&lt;&#x2f;b&gt;|<b>&</b>"
        );
    }

    #[test]
    fn runaway_templates_run_out_of_fuel() {
        let error = render_text(
            "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
            Map::new(),
            false,
        )
        .unwrap_err();
        assert_eq!(error.get_kind(), "template-limit");
        assert!(error.message().contains("fuel"), "{error:?}");
        let error = render_text("{{ 'x' * 1000000000 }}", Map::new(), false).unwrap_err();
        assert_eq!(error.get_kind(), "template-limit");
    }

    #[test]
    fn recursion_is_bounded() {
        let error = render_text(
            "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
            Map::new(),
            false,
        )
        .unwrap_err();
        assert!(error.message().contains("recursion limit"), "{error:?}");
        assert_eq!(error.get_kind(), "template-limit");
        assert_eq!(error.get_retryable(), Some(false));
    }

    #[test]
    fn output_is_bounded() {
        let error = render_text(
            "{% for i in range(5000) %}{{ line }}{% endfor %}",
            context(json!({"line": "y".repeat(1000)})),
            false,
        )
        .unwrap_err();
        assert_eq!(error.get_kind(), "template-limit");
        assert!(error.message().contains("over the limit"), "{error:?}");
    }

    #[test]
    fn artifact_arguments_are_checked() {
        assert!(check_artifact(None, None).is_ok());
        assert!(check_artifact(Some("daily-report-2"), Some("d")).is_ok());
        let error = check_artifact(Some("Daily Report"), None).unwrap_err();
        assert!(error.message().starts_with("artifact_key: "), "{error:?}");
        let error = check_artifact(None, Some("d")).unwrap_err();
        assert!(
            error.message().starts_with("artifact_description: "),
            "{error:?}"
        );
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
        let schema = check_parameters(
            "render",
            &[
                "template",
                "context",
                "autoescape",
                "artifact_key",
                "artifact_description",
            ],
            &["template"],
        );
        let p = &schema["properties"];
        assert_eq!(p["context"]["type"], "object");
        assert_eq!(p["context"]["default"], json!({}));
        assert_eq!(p["autoescape"]["default"], false);
        assert_eq!(p["artifact_key"]["pattern"], "^[a-z0-9-]+$");
    }
}
