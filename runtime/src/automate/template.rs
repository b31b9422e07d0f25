//! Templates in actions' parameters and arguments: every string is a minijinja template
//! over the event (`{{ flow_run.name }}`, `{{ state.message }}`, `{{ event.body.x }}`).
//! A string that is one expression and nothing else (`"{{ event.body }}"`) keeps the
//! value's JSON type.

use minijinja::{Environment, UndefinedBehavior};
use serde_json::Value;

/// Steps one render may take (minijinja's fuel): a template cannot loop for ever.
const FUEL: u64 = 1_000_000;
/// The longest text one string may render to.
const MAX_OUTPUT: usize = 1 << 20;

/// Renders every string in `value` with `context`; the error names the template.
pub fn render(value: &Value, context: &Value) -> Result<Value, String> {
    let context = minijinja::Value::from(minijinja::value::Serde(context));
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(FUEL));
    env.set_recursion_limit(50);
    render_in(&env, value, &context)
}

fn render_in(
    env: &Environment<'_>,
    value: &Value,
    context: &minijinja::Value,
) -> Result<Value, String> {
    Ok(match value {
        Value::String(text) => render_string(env, text, context)?,
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| render_in(env, v, context))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), render_in(env, v, context)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

fn render_string(
    env: &Environment<'_>,
    text: &str,
    context: &minijinja::Value,
) -> Result<Value, String> {
    if !text.contains("{{") && !text.contains("{%") {
        return Ok(Value::String(text.to_owned()));
    }
    // One expression alone keeps its type (a number, an object...).
    let trimmed = text.trim();
    if let Some(inner) = trimmed
        .strip_prefix("{{")
        .and_then(|t| t.strip_suffix("}}"))
        .filter(|inner| !inner.contains("{{") && !inner.contains("}}"))
    {
        let expr = env
            .compile_expression(inner.trim())
            .map_err(|e| format!("template {text:?}: {e}"))?;
        let value = expr
            .eval(context.clone())
            .map_err(|e| format!("template {text:?}: {e}"))?;
        return serde_json::to_value(&value).map_err(|e| format!("template {text:?}: {e}"));
    }
    let out = env
        .render_str(text, context.clone())
        .map_err(|e| format!("template {text:?}: {e}"))?;
    if out.len() > MAX_OUTPUT {
        return Err(format!(
            "template {text:?} renders to more than {MAX_OUTPUT} bytes"
        ));
    }
    Ok(Value::String(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strings_render_and_lone_expressions_keep_their_type() {
        let context = json!({"flow_run": {"name": "brave-fox", "id": "r1"}, "event": {"body": {"n": 3, "items": [1, 2]}}});
        let rendered = render(
            &json!({
                "text": "{{ flow_run.name }} failed",
                "n": "{{ event.body.n }}",
                "items": "{{ event.body.items }}",
                "plain": "no template",
                "nested": ["{{ flow_run.id }}", 7],
            }),
            &context,
        )
        .unwrap();
        assert_eq!(
            rendered,
            json!({"text": "brave-fox failed", "n": 3, "items": [1, 2], "plain": "no template",
                   "nested": ["r1", 7]})
        );
    }

    #[test]
    fn undefined_names_and_endless_loops_fail_clearly() {
        let error = render(&json!("{{ nope.x }}"), &json!({})).unwrap_err();
        assert!(error.contains("nope"), "{error}");
        let error = render(
            &json!(
                "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}"
            ),
            &json!({}),
        )
        .unwrap_err();
        assert!(error.contains("fuel"), "{error}");
    }
}
