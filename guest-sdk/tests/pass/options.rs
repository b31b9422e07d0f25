//! Every option, every kind of parameter and return type, and the generated handles.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use weir_sdk::{CacheKeyContext, CallOptions, Error, HookContext, State, TaskState, flow, task};

#[derive(Clone, Serialize, Deserialize, JsonSchema)]
pub struct Row {
    id: u32,
}

weir_sdk::export!();

fn notify(_: &HookContext) {}

fn transient(error: &Error, attempt: u32) -> bool {
    error.get_kind() != "invalid" && attempt < 5
}

mod keys {
    pub fn by_id(ctx: &weir_sdk::CacheKeyContext) -> Option<String> {
        ctx.parameters.get("id").map(|id| id.to_string())
    }
}

/// Loads a row.
#[task(
    name = "load-row",
    description = "Loads one row",
    version = "1.2",
    tags = ["db", "io"],
    retries = 3,
    retry_delay_seconds = [1, 2.5, 10],
    retry_jitter_factor = 0.5,
    retry_condition = transient,
    timeout_seconds = 5,
    cache_key_fn = keys::by_id,
    cache_expiration = 60,
    refresh_cache = true,
    persist_result = false,
    log_prints = true,
    task_run_name = "load-{id}",
    on_completion = [notify],
    on_failure = [notify],
)]
pub fn load_row(id: u32, #[default(10u8)] limit: u16, filter: Option<String>) -> Result<Row, String> {
    let _ = (limit, filter);
    Ok(Row { id })
}

#[task(cache_policy = "inputs", retry_delay_seconds = 2)]
fn nothing() {}

#[task]
fn fallible(mut n: i64) -> weir_sdk::Result<i64> {
    n += 1;
    if n > 10 {
        weir_sdk::bail!("too big: {n}");
    }
    Ok(n)
}

#[task]
fn io_error() -> Result<(), std::io::Error> {
    Ok(())
}

fn unused_key(_: &CacheKeyContext) -> Option<String> {
    None
}

#[task(cache_key_fn = unused_key, cache_policy = "inputs")]
fn keyed(rows: Vec<Row>) -> usize {
    rows.len()
}

#[flow(
    name = "pipeline",
    version = "3",
    flow_run_name = "pipeline-{day}",
    retries = 1,
    retry_delay_seconds = 0.5,
    timeout_seconds = 30.5,
    log_prints = true,
    persist_result = true,
    tags = ["nightly"],
    on_completion = [notify],
    on_failure = [notify],
    on_cancellation = [notify],
    on_crashed = [notify],
)]
fn pipeline(#[default("monday")] day: String) -> weir_sdk::Result<usize> {
    weir_sdk::info!("day {day}");
    let row = load_row(1, 2, None)?;
    let future = load_row::submit(2, 2, Some("x".into()));
    let futures = load_row::map(vec![1, 2, 3], weir_sdk::unmapped(5), vec![None, None, None]);
    let state: TaskState<Row> = load_row::call_state(3, 3, None);
    let options = CallOptions::new()
        .wait_for(&future)
        .wait_for(weir_sdk::allow_failure(&state))
        .tags(["late"]);
    load_row::with(options).call(4, 4, None)?;
    nothing()?;
    fallible::body(1)?;
    let rows = weir_sdk::wait_all(futures)?;
    let _ = (row, future.wait()?, state.result()?, keyed(rows.clone())?, io_error());
    Ok(rows.len() + pipeline::body("x".into())? + child()?.name.len())
}

fn run_name() -> String {
    format!("nightly-{}", weir_sdk::context().parameters["day"])
}

#[flow(
    flow_run_name = run_name,
    validate_parameters = false,
    task_runner = ThreadPoolTaskRunner(4),
    on_running = [notify],
    log_prints = false,
)]
fn runner_options(day: String) -> (TaskState<Row>, weir_sdk::TaskFuture<Row>) {
    let options = CallOptions::new()
        .name("load-eu")
        .task_run_name("eu-{id}")
        .retries(2)
        .retry_delay_seconds([1.0, 2.0])
        .retry_jitter_factor(0.1)
        .timeout_seconds(3.0)
        .cache_policy(weir_sdk::CachePolicy::None)
        .cache_expiration(10.0)
        .refresh_cache(true)
        .persist_result(false)
        .log_prints(true);
    let _ = (day, load_row::map(vec![1, 2], 5, None));
    (
        load_row::with_options(options.clone()).call_state(1, 1, None),
        load_row::with_options(options).submit(2, 2, None),
    )
}

#[flow(task_runner = SequentialTaskRunner)]
fn sequential() -> Vec<weir_sdk::TaskFuture<Row>> {
    load_row::map(vec![1, 2], 5, None)
}

#[task(task_run_name = run_name, on_running = [notify])]
fn named_by_function() {}

#[flow]
fn child() -> State {
    State::completed().named("Skipped")
}

#[flow]
fn states() -> Vec<TaskState<Row>> {
    vec![load_row::call_state(1, 1, None)]
}

#[flow]
fn string_error(x: i64) -> Result<i64, String> {
    let _: weir_sdk::FlowState<i64> = string_error::call_state(x);
    Err("no".into())
}

fn main() {}

#[cfg(any())]
#[task]
fn configured_out(x: i64) -> i64 {
    x
}
