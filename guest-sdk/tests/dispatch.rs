//! The macros' registrations, driven through the exported `guest` interface natively (the
//! flows and tasks here do not call the host).

use std::sync::atomic::{AtomicU32, Ordering};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use weir_sdk::__private::Component;
use weir_sdk::__private::bindings::{Guest, RunKind, State as WitState, StateEvent, StateType};
use weir_sdk::{CacheKeyContext, Error, HookContext, State, flow, task};

#[derive(Serialize, Deserialize, JsonSchema)]
struct Point {
    x: i64,
    y: i64,
}

/// Adds two numbers.
///
/// Second paragraph.
#[task(retries = 3, retry_delay_seconds = [1, 2.5], tags = ["math"], task_run_name = "add-{x}-{y}")]
fn add(x: i64, #[default(1)] y: i64) -> i64 {
    x + y
}

#[task(name = "norm", cache_key_fn = by_x, cache_expiration = 60, version = "2")]
fn norm(p: Point, scale: Option<i64>) -> i64 {
    (p.x.abs() + p.y.abs()) * scale.unwrap_or(1)
}

fn by_x(ctx: &CacheKeyContext) -> Option<String> {
    Some(format!("{}-{}", ctx.task, ctx.parameters["p"]["x"]))
}

#[task(retry_condition = only_transient)]
fn checked(n: i64) -> Result<i64, String> {
    if n < 0 {
        Err(format!("negative: {n}"))
    } else {
        Ok(n)
    }
}

fn only_transient(error: &Error, attempt: u32) -> bool {
    error.get_kind() == "transient" && attempt < 3
}

#[task(cache_policy = "inputs", persist_result = false)]
fn typed_error(code: u32) -> weir_sdk::Result<()> {
    Err(Error::msg("quota exceeded")
        .kind("quota")
        .retryable(false)
        .details(json!({"code": code})))
}

static COMPLETIONS: AtomicU32 = AtomicU32::new(0);
static FAILURES: AtomicU32 = AtomicU32::new(0);

fn count_completion(ctx: &HookContext) {
    assert_eq!(ctx.name, "skip");
    COMPLETIONS.fetch_add(1, Ordering::SeqCst);
}

fn count_failure(_: &HookContext) {
    FAILURES.fetch_add(1, Ordering::SeqCst);
}

#[flow(flow_run_name = "skip-{day}", on_completion = [count_completion, count_failure], on_failure = [count_failure])]
fn skip(day: String) -> State {
    State::completed()
        .named("Skipped")
        .message(format!("nothing on {day}"))
        .with_value(0)
}

static CANCELLATIONS: AtomicU32 = AtomicU32::new(0);

fn count_cancellation(ctx: &HookContext) {
    assert_eq!(ctx.state.name, "Cancelled");
    CANCELLATIONS.fetch_add(1, Ordering::SeqCst);
}

fn on_crash(_: &HookContext) {}

#[flow(on_cancellation = [count_cancellation], on_crashed = [on_crash, count_cancellation])]
fn guarded() -> u32 {
    1
}

#[flow(timeout_seconds = 1.5, log_prints = true)]
fn plain(#[default("x")] label: String, times: Option<u8>) -> Vec<String> {
    vec![label; times.unwrap_or(1) as usize]
}

fn find<'a>(
    list: &'a [weir_sdk::__private::bindings::Definition],
    name: &str,
) -> &'a weir_sdk::__private::bindings::Definition {
    list.iter().find(|d| d.name == name).unwrap()
}

#[test]
fn describe_lists_flows_and_tasks_with_their_options() {
    let manifest = Component::describe();
    assert!(manifest.sdk.starts_with("weir-sdk/"));

    let add = find(&manifest.tasks, "add");
    assert_eq!(
        add.description.as_deref(),
        Some("Adds two numbers.\n\nSecond paragraph.")
    );
    assert_eq!(add.options.retries, 3);
    assert_eq!(add.options.retry_delay_seconds, vec![1.0, 2.5]);
    assert_eq!(add.options.tags, vec!["math".to_owned()]);
    assert_eq!(
        add.options.run_name_template.as_deref(),
        Some("add-{x}-{y}")
    );
    assert!(!add.options.has_retry_condition);
    let schema: Value = serde_json::from_str(&add.parameters_schema).unwrap();
    assert_eq!(schema["required"], json!(["x"]));
    assert_eq!(schema["properties"]["y"]["default"], json!(1));
    assert_eq!(schema["additionalProperties"], json!(false));

    let norm = find(&manifest.tasks, "norm");
    assert!(matches!(
        norm.options.cache_policy,
        weir_sdk::__private::bindings::CachePolicy::Custom
    ));
    assert_eq!(norm.options.cache_expiration_seconds, Some(60.0));
    assert_eq!(norm.version.as_deref(), Some("2"));
    let schema: Value = serde_json::from_str(&norm.parameters_schema).unwrap();
    assert_eq!(schema["required"], json!(["p"]));
    assert_eq!(schema["properties"]["p"]["$ref"], "#/$defs/Point");
    assert!(schema["$defs"]["Point"].is_object());

    assert!(find(&manifest.tasks, "checked").options.has_retry_condition);
    let typed = find(&manifest.tasks, "typed_error");
    assert!(matches!(
        typed.options.cache_policy,
        weir_sdk::__private::bindings::CachePolicy::Inputs
    ));
    assert_eq!(typed.options.persist_result, Some(false));

    let skip = find(&manifest.flows, "skip");
    assert_eq!(
        skip.options.run_name_template.as_deref(),
        Some("skip-{day}")
    );
    assert_eq!(
        skip.options.on_completion,
        vec!["count_completion", "count_failure"]
    );
    assert_eq!(skip.options.on_failure, vec!["count_failure"]);
    assert!(skip.options.on_cancellation.is_empty() && skip.options.on_crashed.is_empty());
    let guarded = find(&manifest.flows, "guarded");
    assert_eq!(guarded.options.on_cancellation, vec!["count_cancellation"]);
    assert_eq!(
        guarded.options.on_crashed,
        vec!["on_crash", "count_cancellation"]
    );
    let plain = find(&manifest.flows, "plain");
    assert_eq!(plain.options.timeout_seconds, Some(1.5));
    assert_eq!(plain.options.log_prints, Some(true));
    assert!(plain.description.is_none());
}

#[test]
fn tasks_run_from_json_arguments() {
    assert_eq!(
        Component::run_task("add".into(), r#"{"x": 2, "y": 3}"#.into()).unwrap(),
        "5"
    );
    assert_eq!(
        Component::run_task("add".into(), r#"{"x": 2}"#.into()).unwrap(),
        "3"
    );
    assert_eq!(
        Component::run_task("norm".into(), r#"{"p": {"x": -2, "y": 3}}"#.into()).unwrap(),
        "5"
    );
    assert_eq!(add::body(1, 1), 2);
}

#[test]
fn invalid_arguments_are_non_retryable_failures_naming_the_parameter() {
    let failure = Component::run_task("add".into(), r#"{"x": "two"}"#.into()).unwrap_err();
    assert_eq!(failure.kind, "invalid-parameters");
    assert_eq!(failure.retryable, Some(false));
    assert!(failure.message.contains("`x`"), "{}", failure.message);
    let failure = Component::run_task("add".into(), "{}".into()).unwrap_err();
    assert_eq!(failure.message, "missing parameter `x`");
}

#[test]
fn returned_errors_become_failures() {
    let failure = Component::run_task("checked".into(), r#"{"n": -1}"#.into()).unwrap_err();
    assert_eq!(
        (failure.kind.as_str(), failure.message.as_str()),
        ("error", "negative: -1")
    );
    assert_eq!(failure.retryable, None);

    let failure = Component::run_task("typed_error".into(), r#"{"code": 7}"#.into()).unwrap_err();
    assert_eq!(failure.kind, "quota");
    assert_eq!(failure.retryable, Some(false));
    assert_eq!(failure.details.as_deref(), Some(r#"{"code":7}"#));
}

#[test]
fn retry_conditions_are_consulted() {
    let failure = |kind: &str| Error::msg("x").kind(kind);
    let to_wit = |e: Error| weir_sdk::__private::bindings::Failure {
        kind: e.get_kind().into(),
        message: e.message().into(),
        retryable: None,
        details: None,
    };
    assert!(Component::retry_condition(
        "checked".into(),
        to_wit(failure("transient")),
        1
    ));
    assert!(!Component::retry_condition(
        "checked".into(),
        to_wit(failure("transient")),
        3
    ));
    assert!(!Component::retry_condition(
        "checked".into(),
        to_wit(failure("error")),
        1
    ));
    assert!(Component::retry_condition(
        "add".into(),
        to_wit(failure("error")),
        1
    ));
}

#[test]
fn flows_return_values_or_their_own_state() {
    let output = Component::run_flow("plain".into(), r#"{"times": 2}"#.into()).unwrap();
    assert_eq!(output.value, r#"["x","x"]"#);
    assert!(output.state.is_none());

    let output = Component::run_flow("skip".into(), r#"{"day": "monday"}"#.into()).unwrap();
    assert_eq!(output.value, "0");
    let state = output.state.unwrap();
    assert_eq!(state.name, "Skipped");
    assert_eq!(state.message.as_deref(), Some("nothing on monday"));
    assert!(matches!(state.type_, StateType::Completed));
}

#[test]
fn on_state_runs_the_named_hooks_in_order() {
    let event = StateEvent {
        kind: RunKind::Flow,
        name: "skip".into(),
        run_id: "r1".into(),
        run_name: "skip-monday".into(),
        state: WitState {
            type_: StateType::Completed,
            name: "Skipped".into(),
            message: None,
        },
        hooks: vec!["count_completion".into(), "count_failure".into()],
        parameters: r#"{"day": "monday"}"#.into(),
    };
    Component::on_state(event);
    assert_eq!(COMPLETIONS.load(Ordering::SeqCst), 1);
    assert_eq!(FAILURES.load(Ordering::SeqCst), 1);
}

#[test]
fn on_state_runs_cancellation_hooks() {
    let event = StateEvent {
        kind: RunKind::Flow,
        name: "guarded".into(),
        run_id: "r2".into(),
        run_name: "guarded-1".into(),
        state: WitState {
            type_: StateType::Cancelled,
            name: "Cancelled".into(),
            message: Some("cancelled by request".into()),
        },
        hooks: vec!["count_cancellation".into()],
        parameters: "{}".into(),
    };
    Component::on_state(event);
    assert_eq!(CANCELLATIONS.load(Ordering::SeqCst), 1);
}
