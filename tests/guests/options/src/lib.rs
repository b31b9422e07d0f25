//! Flows and tasks for the e2e tests of Prefect's remaining task and flow options: task
//! runners, per-call options, running hooks, unvalidated parameters, inherited
//! `log_prints`, run-name functions, returned collections of states, and Prefect's names.

use serde::{Deserialize, Serialize};
use weir_sdk::{
    CallOptions, FlowState, HookContext, Result, State, TaskFuture, TaskState, flow, task,
};

weir_sdk::export!();

fn now_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

/// Sleeps, and says when it started and ended (milliseconds since the epoch).
#[task]
fn interval(i: u32, ms: u64) -> (u32, u128, u128) {
    let start = now_ms();
    std::thread::sleep(std::time::Duration::from_millis(ms));
    (i, start, now_ms())
}

fn intervals(futures: Vec<TaskFuture<(u32, u128, u128)>>) -> Result<Vec<(u32, u128, u128)>> {
    weir_sdk::wait_all(futures)
}

/// Prefect's `SequentialTaskRunner`: submitted tasks run one at a time, in order.
#[flow(task_runner = SequentialTaskRunner)]
fn sequential_runner() -> Result<Vec<(u32, u128, u128)>> {
    intervals((0..4).map(|i| interval::submit(i, 60)).collect())
}

/// Prefect's `ThreadPoolTaskRunner(max_workers=2)`.
#[flow(task_runner = ThreadPoolTaskRunner(2))]
fn pool_of_two() -> Result<Vec<(u32, u128, u128)>> {
    intervals(interval::map(vec![0, 1, 2, 3, 4, 5], 80))
}

/// A task nested in a submitted task does not wait for the flow's only worker.
#[task]
fn outer(i: u32) -> Result<u32> {
    Ok(interval(i, 1)?.0 + 100)
}

#[flow(task_runner = SequentialTaskRunner)]
fn sequential_nested() -> Result<Vec<u32>> {
    weir_sdk::wait_all((0..3).map(outer::submit).collect::<Vec<_>>())
}

// ---- per-call options ----------------------------------------------------------------

/// Fails until its third attempt.
#[task]
fn third_time() -> Result<u32> {
    let attempt = weir_sdk::context().attempt;
    if attempt < 3 {
        weir_sdk::bail!("attempt {attempt} fails");
    }
    Ok(attempt)
}

#[task(cache_policy = "inputs")]
fn cached_stamp(x: u32) -> u128 {
    let _ = x;
    now_ms()
}

#[flow]
fn with_options() -> Result<(u32, String, u128, u128)> {
    // Retries given for this call only.
    let attempts = third_time::with_options(
        CallOptions::new()
            .retries(2)
            .name("third-time-lucky")
            .task_run_name("lucky"),
    )
    .call()?;
    // A timeout given for this call only.
    let timed = interval::with_options(CallOptions::new().timeout_seconds(0.2)).call_state(0, 3000);
    let message = timed.state.name.clone();
    // Caching turned off for one call: it runs again.
    let first = cached_stamp(1)?;
    std::thread::sleep(std::time::Duration::from_millis(5));
    let uncached =
        cached_stamp::with_options(CallOptions::new().cache_policy(weir_sdk::CachePolicy::None))
            .call(1)?;
    let _ = first;
    Ok((attempts, message, cached_stamp(1)?, uncached))
}

#[flow]
fn bad_override() -> State {
    third_time::with_options(CallOptions::new().retry_delay_seconds(vec![1.0; 51]))
        .call_state()
        .into()
}

// ---- hooks on Running ----------------------------------------------------------------

fn announce(ctx: &HookContext) {
    weir_sdk::info!(
        "running hook: {} {} in {}",
        ctx.name,
        ctx.run_name,
        ctx.state.name
    );
}

#[task(on_running = [announce], retries = 1)]
fn hooked_task() -> Result<u32> {
    let attempt = weir_sdk::context().attempt;
    if attempt == 1 {
        weir_sdk::bail!("first attempt fails");
    }
    Ok(attempt)
}

#[flow(on_running = [announce])]
fn hooked_flow() -> Result<u32> {
    hooked_task()
}

// ---- parameters ----------------------------------------------------------------------

#[flow(validate_parameters = false)]
fn unvalidated(n: i64) -> i64 {
    n * 2
}

#[derive(Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Window {
    pub days: u32,
}

#[flow(flow_run_name = "window-{window.days}")]
fn struct_default(#[default(Window { days: 7 })] window: Window) -> u32 {
    window.days
}

// ---- log_prints, inherited -----------------------------------------------------------

#[task]
fn prints_inherit() {
    println!("task inherits the flow's log_prints");
}

#[task(log_prints = false)]
fn prints_opt_out() {
    println!("task opted out of log_prints");
}

#[flow]
fn prints_subflow() {
    println!("subflow inherits its parent's log_prints");
}

#[flow(log_prints = true)]
fn prints_on() -> Result<()> {
    println!("flow prints with log_prints");
    prints_inherit()?;
    prints_opt_out()?;
    prints_subflow()?;
    Ok(())
}

#[flow]
fn prints_off() -> Result<()> {
    println!("flow prints without log_prints");
    prints_inherit()?;
    Ok(())
}

// ---- run names from functions --------------------------------------------------------

fn report_name() -> String {
    let ctx = weir_sdk::context();
    format!(
        "report-for-{}",
        ctx.parameters["region"].as_str().unwrap_or("?")
    )
}

fn row_name() -> String {
    let ctx = weir_sdk::context();
    let params = ctx.task_run_parameters.unwrap_or_default();
    format!("row-{}-of-{}", params["id"], ctx.flow_run_name)
}

#[task(task_run_name = row_name)]
fn load(id: u32) -> String {
    let _ = id;
    weir_sdk::context().task_run_name.unwrap_or_default()
}

#[flow(flow_run_name = report_name)]
fn named_report(region: String) -> Result<(String, String)> {
    let _ = region;
    Ok((weir_sdk::context().flow_run_name, load(7)?))
}

// ---- returned states -----------------------------------------------------------------

#[task]
fn fails() -> Result<u32> {
    weir_sdk::bail!("this task fails")
}

#[task]
fn succeeds() -> u32 {
    1
}

#[flow]
fn ok_subflow() -> u32 {
    2
}

/// Prefect's `return x, y, z` with one failed.
#[flow]
fn returns_tuple() -> (TaskState<u32>, TaskState<u32>, FlowState<u32>) {
    (
        fails::call_state(),
        succeeds::call_state(),
        ok_subflow::call_state(),
    )
}

/// A list mixing task and subflow states.
#[flow]
fn returns_mixed() -> Vec<State> {
    vec![
        succeeds::call_state().into(),
        ok_subflow::call_state().into(),
    ]
}

/// One failed task state, returned alone.
#[flow]
fn returns_failed_task_state() -> TaskState<u32> {
    fails::call_state()
}

/// Futures returned: resolved to their states.
#[flow]
fn returns_futures() -> Vec<TaskFuture<u32>> {
    vec![succeeds::submit(), succeeds::submit()]
}

// ---- the rest ------------------------------------------------------------------------

#[task]
fn add(x: i64, y: i64) -> i64 {
    x + y
}

/// A constant in `map` is repeated without `unmapped`.
#[flow]
fn map_constant() -> Result<Vec<i64>> {
    weir_sdk::wait_all(add::map(vec![1, 2, 3], 10))
}

/// Default flow names follow Prefect: "my-add-one-flow".
#[flow]
fn my_add_one_flow(x: i64) -> i64 {
    x + 1
}

/// An outbound request the run may not make fails each attempt; the task's retries
/// still apply (as in Prefect).
#[task(retries = 1)]
fn fetch() -> Result<String> {
    Ok(weir_sdk::http::get("http://example.com/")?.text())
}

#[flow]
fn denied_fetch() -> Result<String> {
    fetch()
}

// ---- global concurrency and rate limits ----------------------------------------------

fn hold(ms: u64) -> (u128, u128) {
    let start = now_ms();
    std::thread::sleep(std::time::Duration::from_millis(ms));
    (start, now_ms())
}

/// Holds one slot of the workspace's limit "db" while it works.
#[flow]
fn limited(ms: u64) -> Result<(u128, u128)> {
    weir_sdk::concurrency("db", 1, || hold(ms))
}

#[task]
fn limited_task(i: u32, ms: u64) -> Result<(u128, u128)> {
    let _ = i;
    weir_sdk::concurrency("db", 1, || hold(ms))
}

/// Tasks occupy slots too.
#[flow]
fn limited_tasks(n: u32, ms: u64) -> Result<Vec<(u128, u128)>> {
    weir_sdk::wait_all(limited_task::map((0..n).collect::<Vec<_>>(), ms))
}

/// When each of `n` calls was let through the rate limit "api".
#[flow]
fn rate_limited(n: u32) -> Result<Vec<u128>> {
    (0..n)
        .map(|_| weir_sdk::rate_limit("api", 1).map(|()| now_ms()))
        .collect()
}

/// Waits at most `seconds` for a slot of "db".
#[flow]
fn limited_with_timeout(seconds: f64) -> Result<()> {
    weir_sdk::Limits::new(["db"])
        .timeout_seconds(seconds)
        .run(|| ())
}

/// A limit that does not exist: an error when strict, else nothing is limited.
#[flow]
fn missing_limit(strict: bool) -> Result<u32> {
    weir_sdk::Limits::new(["no-such-limit"])
        .strict(strict)
        .run(|| 7)
}

// ---- non-finite numbers --------------------------------------------------------------

#[task]
fn non_finite() -> (f64, f64, Vec<f64>) {
    (f64::NAN, f64::INFINITY, vec![1.0, f64::NEG_INFINITY])
}

#[task]
fn is_nan(x: f64) -> bool {
    x.is_nan()
}

/// NaN and infinities cross task runs intact (JSON cannot hold them; Weir writes them as
/// "NaN", "Infinity", "-Infinity").
#[flow]
fn non_finite_values() -> Result<(bool, f64, f64, bool)> {
    let (nan, inf, values) = non_finite()?;
    Ok((nan.is_nan(), inf, values[1], is_nan(f64::NAN)?))
}

/// A limit name no limit can have.
#[flow]
fn odd_limit_name() -> Result<u32> {
    weir_sdk::concurrency("db/../x", 1, || 1)
}

// ---- background tasks ----------------------------------------------------------------

/// Fails until its third attempt, with the retries to get there.
#[task(retries = 3, task_run_name = "persist-{label}")]
fn persistent(label: String) -> Result<String> {
    let attempt = weir_sdk::context().attempt;
    if attempt < 3 {
        weir_sdk::bail!("attempt {attempt} fails");
    }
    Ok(format!("{label} after {attempt} attempts"))
}

/// Starts background runs of a task (Prefect's `task.delay()`) and returns their ids at once.
#[flow]
fn background(labels: Vec<String>) -> Result<Vec<String>> {
    labels.into_iter().map(persistent::delay).collect()
}

// ---- flows sharing a name ------------------------------------------------------------

fn twin_hook(context: &HookContext) {
    weir_sdk::info!("hook of {} ran for {}", context.name, context.run_name);
}

/// Two flows (three, with the one in `more`) named "twin": their functions tell them
/// apart, as Prefect's entrypoints do.
#[flow(name = "twin", on_completion = [twin_hook])]
fn twin_a(x: u64) -> String {
    format!("a{x}")
}

#[flow(name = "twin", retries = 1, retry_delay_seconds = 0.1)]
fn twin_b(x: u64) -> Result<String> {
    if weir_sdk::context().attempt == 1 {
        weir_sdk::bail!("twin_b fails its first attempt");
    }
    Ok(format!("b{x}"))
}

pub mod more {
    use weir_sdk::flow;

    #[flow(name = "twin")]
    pub fn twin_a(x: String) -> String {
        format!("more {x}")
    }
}

/// Calls two of the twins as subflows, and a task under another name; its first attempt
/// fails after them, so the retry replays them all.
#[flow(retries = 1, retry_delay_seconds = 0.1)]
fn twins_parent() -> Result<(String, String, u32)> {
    let a = twin_a(1)?;
    let more = more::twin_a("x".to_owned())?;
    let renamed = third_time::with_options(CallOptions::new().retries(2).name("renamed")).call()?;
    if weir_sdk::context().attempt == 1 {
        weir_sdk::bail!("the first attempt fails after its calls");
    }
    Ok((a, more, renamed))
}
