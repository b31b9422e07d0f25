//! The guest the end-to-end tests run: one flow or task per behaviour under test.

use serde::{Deserialize, Serialize};
use std::time::{SystemTime, UNIX_EPOCH};
use weir_sdk::{Error, Result, State, TaskState, flow, task};

weir_sdk::export!();

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

// ---- retries -------------------------------------------------------------------------

/// Fails until its attempt number is above `fail_times`.
#[task(retries = 3, retry_delay_seconds = [0.2, 0.4, 0.6])]
fn flaky(fail_times: u32) -> Result<u32> {
    let attempt = weir_sdk::context().attempt;
    if attempt <= fail_times {
        weir_sdk::bail!("attempt {attempt} failed on purpose");
    }
    Ok(attempt)
}

#[flow]
fn retry_flow(fail_times: u32) -> Result<u32> {
    flaky(fail_times)
}

fn only_transient(err: &Error, _attempt: u32) -> bool {
    err.message().contains("transient")
}

/// Retries only errors whose message says "transient".
#[task(retries = 3, retry_condition = only_transient)]
fn picky(message: String) -> Result<u32> {
    Err(Error::msg(message))
}

#[flow]
fn retry_condition_flow(message: String) -> Result<u32> {
    picky(message)
}

/// Declines retries by marking its error non-retryable.
#[task(retries = 3)]
fn fatal() -> Result<u32> {
    Err(Error::msg("no point retrying").retryable(false))
}

#[flow]
fn fatal_flow() -> Result<u32> {
    fatal()
}

/// A flow that fails on its first attempt, after completing a task, and succeeds on
/// its second: the completed task must be replayed, not run again.
#[task]
fn side_effect(label: String) -> Result<String> {
    weir_sdk::info!("side effect {label}");
    Ok(label)
}

#[flow(retries = 1, retry_delay_seconds = 0.1)]
fn flow_retry(label: String) -> Result<String> {
    let a = side_effect(label.clone())?;
    if weir_sdk::context().attempt == 1 {
        weir_sdk::bail!("first attempt fails after the task");
    }
    Ok(a)
}

// ---- timeouts ------------------------------------------------------------------------

#[task(timeout_seconds = 0.5)]
fn spin() -> Result<u64> {
    let mut x: u64 = 0;
    loop {
        x = std::hint::black_box(x.wrapping_add(1));
    }
}

#[flow]
fn timeout_flow() -> Result<u64> {
    spin()
}

#[flow(timeout_seconds = 0.5)]
fn flow_timeout() -> Result<u64> {
    let mut x: u64 = 0;
    loop {
        x = std::hint::black_box(x.wrapping_add(1));
    }
}

// ---- caching -------------------------------------------------------------------------

#[task(cache_policy = "inputs", cache_expiration = 1.5)]
fn expensive(x: i64) -> Result<i64> {
    weir_sdk::info!("computing {x}");
    Ok(x * 10)
}

#[flow]
fn cache_flow(x: i64) -> Result<i64> {
    expensive(x)
}

fn by_region(ctx: &weir_sdk::CacheKeyContext) -> Option<String> {
    ctx.parameters
        .get("region")
        .and_then(|r| r.as_str())
        .map(str::to_owned)
}

#[task(cache_key_fn = by_region)]
fn lookup(region: String, nonce: u32) -> Result<String> {
    weir_sdk::info!("looking up {region} {nonce}");
    Ok(format!("{region}:{nonce}"))
}

#[flow]
fn custom_cache_flow(region: String, nonce: u32) -> Result<String> {
    lookup(region, nonce)
}

#[task(cache_policy = "inputs", refresh_cache = true)]
fn refreshed(x: i64) -> Result<i64> {
    weir_sdk::info!("refreshing {x}");
    Ok(x)
}

#[flow]
fn refresh_flow(x: i64) -> Result<i64> {
    refreshed(x)
}

// ---- map, submit, wait_for -----------------------------------------------------------

#[task]
fn square(x: u64) -> u64 {
    x * x
}

#[task]
fn scale(x: u64, factor: u64) -> u64 {
    x * factor
}

#[flow]
fn map_flow(n: u64) -> Result<u64> {
    let futures = square::map((0..n).collect::<Vec<_>>());
    Ok(weir_sdk::wait_all(futures)?.into_iter().sum())
}

#[flow]
fn unmapped_flow(n: u64, factor: u64) -> Result<Vec<u64>> {
    weir_sdk::wait_all(scale::map(
        (0..n).collect::<Vec<_>>(),
        weir_sdk::unmapped(factor),
    ))
}

#[derive(Serialize, Deserialize, schemars::JsonSchema)]
pub struct Span {
    pub start: u64,
    pub end: u64,
}

#[task]
fn slow(millis: u64) -> Span {
    let start = now_micros();
    std::thread::sleep(std::time::Duration::from_millis(millis));
    Span {
        start,
        end: now_micros(),
    }
}

/// `second` waits for `first` although it was submitted right after it.
#[flow]
fn ordering_flow() -> Result<(Span, Span)> {
    let first = slow::submit(300);
    let second = slow::with(weir_sdk::CallOptions::new().wait_for(&first)).submit(1);
    Ok((first.wait()?, second.wait()?))
}

#[task]
fn boom(message: String) -> Result<u32> {
    Err(Error::msg(message))
}

/// Downstream runs although upstream failed, because the dependency allows failure.
#[flow]
fn allow_failure_flow() -> Result<u32> {
    let up = boom::submit("upstream broke");
    let down =
        square::with(weir_sdk::CallOptions::new().wait_for(weir_sdk::allow_failure(&up))).submit(7);
    Ok(down.wait()? as u32)
}

/// Without allow_failure, downstream does not run.
#[flow]
fn not_ready_flow() -> Result<u64> {
    let up = boom::submit("upstream broke");
    let down = square::with(weir_sdk::CallOptions::new().wait_for(&up)).submit(7);
    down.wait()
}

// ---- futures as arguments ------------------------------------------------------------

#[task]
fn sum_all(xs: Vec<u64>) -> u64 {
    xs.iter().sum()
}

#[task(task_run_name = "add-{x}-{y}")]
fn add_named(x: u64, y: u64) -> u64 {
    x + y
}

#[task]
fn span_micros(span: Span) -> u64 {
    span.end - span.start
}

#[task]
fn echo(x: u32) -> u32 {
    x
}

#[flow]
fn double_flow(x: u64) -> u64 {
    x * 2
}

/// Futures and states passed as arguments (Prefect resolves them): each run gets its
/// upstream runs' values.
#[flow]
fn future_args_flow() -> Result<serde_json::Value> {
    let a = square::submit(3);
    let b = scale::submit(&a, 2);
    let mapped = square::map(vec![1, 2, 3]);
    let scaled = scale::map(&mapped, 10);
    let repeated = scale::map(vec![1, 2], &a);
    let total = sum_all::submit(&scaled);
    let state = square::call_state(&a);
    let named = add_named::with(weir_sdk::CallOptions::new().tags(["named"])).submit(&b, &state);
    let sub = double_flow::call_state(&a);
    let owned = sum_all::call_state(vec![a, b]);
    Ok(serde_json::json!({
        "scaled": weir_sdk::wait_all(&scaled)?,
        "repeated": weir_sdk::wait_all(&repeated)?,
        "total": total.result()?,
        "state": state.result()?,
        "named": named.result()?,
        "sub": sub.result()?,
        "owned": owned.result()?,
    }))
}

/// A submit with a future argument returns at once: the flow goes on while the upstream
/// run works, and the host starts the downstream run after it.
#[flow]
fn future_arg_does_not_block_flow() -> Result<(u64, Span, u64)> {
    let up = slow::submit(300);
    let down = span_micros::submit(&up);
    let submitted = now_micros();
    Ok((submitted, up.result()?, down.result()?))
}

/// The future of a failed run as an argument: the downstream run ends NotReady, and a
/// subflow given it fails without starting.
#[flow]
fn future_arg_not_ready_flow() -> Result<(String, String)> {
    let up = boom::submit("upstream broke");
    let down = echo::call_state(&up);
    Ok((down.state.name, subflow_of_failed(&up)))
}

fn subflow_of_failed(up: &weir_sdk::TaskFuture<u32>) -> String {
    let state = echo_flow::call_state(up);
    match state.failure() {
        Some(error) => format!("{}: {}", error.get_kind(), error.message()),
        None => "started".to_owned(),
    }
}

#[flow]
fn echo_flow(x: u32) -> u32 {
    x
}

/// Argument pointers as a hostile guest would send them through the raw interface; returns
/// each call's final state and failure.
#[flow]
fn raw_future_args() -> Vec<(String, Option<u64>, String)> {
    use weir_sdk::__private::bindings::weir::flow::tasks as raw;
    let overrides = || raw::TaskOverrides {
        name: None,
        run_name_template: None,
        retries: None,
        retry_delay_seconds: None,
        retry_jitter_factor: None,
        timeout_seconds: None,
        cache_policy: None,
        cache_expiration_seconds: None,
        refresh_cache: None,
        persist_result: None,
        log_prints: None,
    };
    let no_options = raw::CallOptions {
        wait_for: Vec::new(),
        cache_key: None,
        tags: Vec::new(),
        overrides: overrides(),
    };
    let up = raw::submit("square", r#"{"x": 3}"#, &no_options);
    let id = up.task_run_id();
    let call = |pointer: &str, arguments: &str| {
        let options = raw::CallOptions {
            wait_for: vec![raw::Dependency {
                task_run_id: id.clone(),
                allow_failure: false,
                argument: Some(pointer.to_owned()),
            }],
            cache_key: None,
            tags: Vec::new(),
            overrides: overrides(),
        };
        let outcome = raw::call("square", arguments, &options);
        (
            outcome.state.name,
            outcome.value.and_then(|v| v.parse().ok()),
            outcome.failure.map(|f| f.message).unwrap_or_default(),
        )
    };
    vec![
        call("/x", r#"{"x": null}"#),
        call("/nope", r#"{"x": 1}"#),
        call("", r#"{"x": 1}"#),
        call("/x/0/1", r#"{"x": 1}"#),
        call("x", r#"{"x": 1}"#),
    ]
}

// ---- final-state rules ---------------------------------------------------------------

/// A timeout of 0 is no timeout (Prefect stores `None` for it).
#[task(timeout_seconds = 0)]
fn untimed(millis: u64) -> u64 {
    std::thread::sleep(std::time::Duration::from_millis(millis));
    millis
}

#[flow(timeout_seconds = 0)]
fn zero_timeout(millis: u64) -> Result<u64> {
    untimed(millis)
}

/// Submits a slow task and returns at once with an error that names a host kind: the
/// host must treat it as the guest's own error (and wait for the task run), not as
/// its own timeout or trap (which would take the task run down).
#[flow]
fn forged_kind(kind: String, millis: u64) -> Result<u32> {
    let _pending = slow::submit(millis);
    Err(Error::msg("a guest error dressed as the host's").kind(kind))
}

#[flow]
fn returns_error() -> Result<u32> {
    weir_sdk::bail!("the flow gave up")
}

#[flow]
fn propagates_task_failure() -> Result<u32> {
    boom("task failed".into())
}

/// A task failure the flow handles does not fail the flow.
#[flow]
fn handles_task_failure() -> Result<String> {
    let state = boom::call_state("handled");
    Ok(if state.is_failed() {
        "recovered".into()
    } else {
        "unexpected".into()
    })
}

#[flow]
fn skipped_state() -> Result<State> {
    Ok(State::completed().named("Skipped").message("nothing to do"))
}

#[flow]
fn failed_state() -> Result<State> {
    Ok(State::failed("reported failure"))
}

/// Returning task states: any failed state fails the flow.
#[flow]
fn returns_states() -> Result<Vec<TaskState<u32>>> {
    Ok(vec![
        boom::call_state("one of them failed"),
        flaky::call_state(0),
    ])
}

// ---- subflows ------------------------------------------------------------------------

#[flow]
fn child(x: u64) -> Result<u64> {
    Ok(square(x)? + 1)
}

#[flow]
fn parent() -> Result<u64> {
    Ok(child(2)? + child(3)?)
}

// ---- parameters ----------------------------------------------------------------------

#[derive(Serialize, Deserialize, schemars::JsonSchema)]
pub struct Window {
    pub days: u32,
}

#[flow]
fn typed(
    n: i64,
    ratio: f64,
    #[default("world")] name: String,
    flag: bool,
    window: Option<Window>,
) -> Result<String> {
    Ok(format!(
        "{n}|{ratio}|{name}|{flag}|{}",
        window.map_or(0, |w| w.days)
    ))
}

// ---- artifacts, logs, hooks ----------------------------------------------------------

#[task(log_prints = true)]
fn chatty() -> u32 {
    println!("printed from a task");
    eprintln!("written to stderr");
    1
}

#[flow(log_prints = true)]
fn observability() -> Result<u32> {
    use weir_sdk::artifacts::*;
    weir_sdk::debug!("debug line");
    weir_sdk::info!("info line");
    weir_sdk::warn!("warning line");
    weir_sdk::error!("error line");
    weir_sdk::critical!("critical line");
    println!("printed from the flow");
    create_markdown_artifact("# Report\nall good", Some("obs-report"), Some("the report"))?;
    create_table_artifact(
        &vec![serde_json::json!({"a": 1}), serde_json::json!({"a": 2})],
        Some("obs-table"),
        None,
    )?;
    create_link_artifact("https://example.com/x", Some("x"), Some("obs-link"), None)?;
    let progress = create_progress_artifact(0.0, Some("obs-progress"), None)?;
    progress.update(50.0)?;
    progress.update(100.0)?;
    let bad = create_markdown_artifact("x", Some("Bad Key"), None);
    weir_sdk::info!("bad key rejected: {}", bad.is_err());
    let from_var: Option<String> = weir_sdk::variables::get("greeting");
    weir_sdk::info!("variable greeting = {}", from_var.unwrap_or_default());
    chatty()
}

fn completion_hook(ctx: &weir_sdk::HookContext) {
    weir_sdk::info!("hook: {} completed as {}", ctx.name, ctx.state.name);
}

fn failure_hook(ctx: &weir_sdk::HookContext) {
    weir_sdk::info!(
        "hook: {} failed: {}",
        ctx.name,
        ctx.state.message.clone().unwrap_or_default()
    );
}

#[task(on_failure = [failure_hook])]
fn hooked_task() -> Result<u32> {
    Err(Error::msg("hooked task broke"))
}

#[flow(on_completion = [completion_hook])]
fn hooks_flow() -> Result<String> {
    let s = hooked_task::call_state();
    Ok(format!("task failed: {}", s.is_failed()))
}

#[task(task_run_name = "greet-{who}")]
fn greet(who: String) -> String {
    format!("hi {who}")
}

#[flow(flow_run_name = "names-for-{who}")]
fn names_flow(who: String) -> Result<String> {
    greet(who)
}

/// Text from the caller everywhere a page shows it: the run's name, a log line, a
/// markdown, table and link artifact, the result.
#[flow(flow_run_name = "content-{text}")]
fn hostile_content(text: String, url: String) -> Result<String> {
    use weir_sdk::artifacts::*;
    weir_sdk::info!("{text}");
    create_markdown_artifact(&text, Some("hostile-report"), Some(&text))?;
    create_table_artifact(&vec![serde_json::json!({"cell": text})], None, None)?;
    create_link_artifact(&url, Some(&text), None, None)?;
    Ok(text)
}

// ---- adversarial guests --------------------------------------------------------------

#[flow]
fn infinite_loop() -> Result<u64> {
    let mut x: u64 = 0;
    loop {
        x = std::hint::black_box(x.wrapping_add(1));
    }
}

#[flow]
fn memory_bomb() -> Result<usize> {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        hoard.push(vec![1u8; 1 << 20]);
        std::hint::black_box(&hoard);
    }
}

fn recurse(n: u64) -> u64 {
    let pad = std::hint::black_box([n; 16]);
    if n == u64::MAX {
        return pad[0];
    }
    recurse(n + 1).wrapping_add(pad[1])
}

#[flow]
fn deep_recursion() -> Result<u64> {
    Ok(recurse(0))
}

#[flow]
fn huge_result(megabytes: usize) -> Result<String> {
    Ok("x".repeat(megabytes << 20))
}

#[flow]
fn panics() -> Result<u32> {
    panic!("boom from the guest");
}

#[task]
fn task_panics() -> u32 {
    panic!("task boom");
}

#[flow]
fn panicking_task_flow() -> Result<u32> {
    task_panics()
}

/// A normal flow that adversarial ones run beside.
#[flow]
fn steady(n: u64) -> Result<u64> {
    let mut total = 0;
    for i in 0..n {
        total += square(i)?;
    }
    Ok(total)
}

/// The same cached call twice in one run: the second is a hit.
#[flow]
fn cache_twice(x: i64) -> Result<i64> {
    Ok(expensive(x)? + expensive(x)?)
}

// ---- limits --------------------------------------------------------------------------

/// Writes `lines` log lines of about 1 KiB each.
#[flow]
fn log_flood(lines: u32) -> Result<u32> {
    let filler = "x".repeat(1000);
    for i in 0..lines {
        weir_sdk::info!("{i} {filler}");
    }
    Ok(lines)
}

/// Tries to create a markdown artifact of `kib` KiB; returns what happened.
#[flow]
fn big_artifact(kib: usize) -> Result<String> {
    let md = "y".repeat(kib << 10);
    Ok(
        match weir_sdk::artifacts::create_markdown_artifact(&md, Some("big"), None) {
            Ok(_) => "created".into(),
            Err(e) => e.message().to_owned(),
        },
    )
}

/// Makes `calls` host calls.
#[flow]
fn chatter(calls: u32) -> Result<u32> {
    for _ in 0..calls {
        std::hint::black_box(weir_sdk::context());
    }
    Ok(calls)
}

#[task(persist_result = false)]
fn unpersisted_task() -> String {
    "kept out of the database".into()
}

#[flow(persist_result = false)]
fn unpersisted() -> Result<String> {
    unpersisted_task()
}

// ---- server ----------------------------------------------------------------------------

/// Reads a workspace secret and reports only its length (never the value).
#[flow]
fn secret_length(name: String) -> Result<usize> {
    Ok(weir_sdk::variables::secret(&name).map_or(0, |s| s.len()))
}

/// Spins until stopped (no timeout of its own): cancellation and shutdown tests.
#[flow]
fn spin_forever() -> Result<u64> {
    let mut x: u64 = 0;
    loop {
        x = std::hint::black_box(x.wrapping_add(1));
    }
}

/// Sleeps (in a task) for `millis`, then completes: concurrency and shutdown tests.
#[flow]
fn nap(millis: u64) -> Result<u64> {
    let span = slow(millis)?;
    Ok(span.end - span.start)
}

/// A first task that completes, then a long nap: a run to interrupt between the two.
#[flow]
fn two_steps(label: String, millis: u64) -> Result<String> {
    let first = side_effect(label)?;
    slow(millis)?;
    Ok(first)
}

/// Fetches a URL over outbound HTTP and returns the body, or the error message.
#[flow]
fn fetch(url: String) -> Result<String> {
    Ok(match weir_sdk::http::get(&url) {
        Ok(r) => format!("{} {}", r.status, r.text()),
        Err(e) => format!("error: {}", e.message()),
    })
}

/// Fetches each URL, following redirects itself (at most 5), and returns one line per
/// URL: the final status and body, or the error message.
#[flow]
fn fetch_each(urls: Vec<String>) -> Result<Vec<String>> {
    Ok(urls
        .into_iter()
        .map(|mut url| {
            for _ in 0..5 {
                match weir_sdk::http::get(&url) {
                    Ok(r) if (300..400).contains(&r.status) => {
                        match r
                            .headers
                            .iter()
                            .find(|(k, _)| k.eq_ignore_ascii_case("location"))
                        {
                            Some((_, to)) => url = to.clone(),
                            None => return format!("{} without a location", r.status),
                        }
                    }
                    Ok(r) => return format!("{} {}", r.status, r.text()),
                    Err(e) => return format!("error: {}", e.message()),
                }
            }
            "too many redirects".to_owned()
        })
        .collect())
}

/// Starts a run of another deployment of the workspace (Prefect's `run_deployment`).
#[flow]
fn launcher(target: String, n: u64) -> Result<String> {
    weir_sdk::run_deployment(&target, &serde_json::json!({ "n": n }), None)
}

// ---- pause, suspend, cancellation, replay ------------------------------------------------

#[derive(Deserialize, schemars::JsonSchema)]
pub struct Approval {
    pub approved: bool,
    pub reviewer: String,
}

/// Loads, waits for an approval (typed input), and reports the decision.
#[flow]
fn approval(rows: u64, timeout: f64) -> Result<String> {
    let loaded = square(rows)?;
    let a: Approval = weir_sdk::Pause::new(timeout)
        .key("approval")
        .description("Approve the load")
        .pause_with_input()?;
    Ok(format!(
        "{} {loaded} rows by {}",
        if a.approved { "published" } else { "dropped" },
        a.reviewer
    ))
}

/// Waits for a resume without input.
#[flow]
fn plain_pause(timeout: f64) -> Result<String> {
    weir_sdk::pause_flow_run(timeout)?;
    Ok("resumed".into())
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct Budget {
    pub limit: u64,
}

/// A completed task, a suspend that releases the instance, then work with the input.
#[flow]
fn suspender(label: String, timeout: f64) -> Result<String> {
    let first = side_effect(label)?;
    let budget: Budget = weir_sdk::suspend_flow_run_with_input(timeout)?;
    let scaled = scale(budget.limit, 2)?;
    Ok(format!("{first}:{scaled}"))
}

/// A subflow cannot suspend; it reports what the host said.
#[flow]
fn suspending_child() -> Result<String> {
    Ok(match weir_sdk::suspend_flow_run(60) {
        Ok(()) => "suspended".into(),
        Err(e) => e.message().to_owned(),
    })
}

#[flow]
fn suspend_in_subflow() -> Result<String> {
    suspending_child()
}

fn cancellation_hook(ctx: &weir_sdk::HookContext) {
    weir_sdk::info!("cancel hook: {} {}", ctx.name, ctx.state.name);
}

/// A subflow that waits in a long task.
#[flow(on_cancellation = [cancellation_hook])]
fn cancel_child(millis: u64) -> Result<u64> {
    Ok(slow(millis)?.end)
}

/// A task in the background and a subflow in the foreground, both long.
#[flow(on_cancellation = [cancellation_hook])]
fn cancel_parent(millis: u64) -> Result<u64> {
    let background = slow::submit(millis);
    let child = cancel_child(millis)?;
    Ok(child + background.wait()?.end)
}

fn crash_hook(ctx: &weir_sdk::HookContext) {
    weir_sdk::info!("crash hook: {} {}", ctx.name, ctx.state.name);
}

#[flow(on_crashed = [crash_hook], on_cancellation = [cancellation_hook])]
fn crash_hooked() -> Result<u32> {
    Ok(1)
}

#[task]
fn double(x: i64) -> i64 {
    x * 2
}

#[task]
fn triple(x: i64) -> i64 {
    x * 3
}

/// Not deterministic on purpose: its second attempt calls another task where the first
/// completed one.
#[flow(retries = 1, retry_delay_seconds = 0.1)]
fn replay_mismatch(x: i64) -> Result<i64> {
    if weir_sdk::context().attempt == 1 {
        double(x)?;
        weir_sdk::bail!("the first attempt fails after its task");
    }
    triple(x)
}

/// A flow retry replays calls whose arguments were futures, without running them again.
#[flow(retries = 1, retry_delay_seconds = 0.1)]
fn replay_future_args(x: u64) -> Result<u64> {
    let a = square::submit(x);
    let b = scale::submit(&a, 3);
    let value = b.result()?;
    if weir_sdk::context().attempt == 1 {
        weir_sdk::bail!("the first attempt fails after its tasks");
    }
    Ok(value)
}

/// A flow retry whose upstream call runs again (other inputs) runs its dependent again
/// too: the journal knows the dependent by the run that gave its argument.
#[flow(retries = 1, retry_delay_seconds = 0.1)]
fn replay_changed_upstream(x: u64) -> Result<u64> {
    let attempt = u64::from(weir_sdk::context().attempt);
    let a = square::submit(x + attempt);
    let b = scale::submit(&a, 3);
    let value = b.result()?;
    if attempt == 1 {
        weir_sdk::bail!("the first attempt fails after its tasks");
    }
    Ok(value)
}

// ---- durability: crash recovery, takeover ----------------------------------------------

/// One step with a witness: tells the HTTP witness at `url` that step `i` of this flow
/// run starts, works for `millis`, then tells it the step is done.
#[task]
fn witnessed_step(url: String, i: u64, millis: u64) -> Result<u64> {
    let run = weir_sdk::context().flow_run_id;
    let event = serde_json::json!({ "run": run, "i": i });
    weir_sdk::http::post_json(&format!("{url}/start"), &event)?;
    std::thread::sleep(std::time::Duration::from_millis(millis));
    weir_sdk::http::post_json(&format!("{url}/done"), &event)?;
    Ok(i)
}

/// Five witnessed steps in a row: the crash-recovery tests kill the server among them.
#[flow]
fn durable_five(url: String, millis: u64) -> Result<u64> {
    let mut sum = 0;
    for i in 0..5 {
        sum += witnessed_step(url.clone(), i, millis)?;
    }
    Ok(sum)
}

// ---- tenant isolation ------------------------------------------------------------------

/// A task that calls itself without end: every level waits for the next.
#[task]
fn endless(level: u64) -> Result<u64> {
    endless(level + 1)
}

#[flow]
fn endless_recursion() -> Result<u64> {
    endless(0)
}

/// A task that calls itself `depth` levels down.
#[task]
fn nested(depth: u32) -> Result<u32> {
    if depth == 0 {
        return Ok(0);
    }
    Ok(nested(depth - 1)? + 1)
}

#[flow]
fn nested_flow(depth: u32) -> Result<u32> {
    nested(depth)
}

/// A task that submits a task and waits for it: `n` of them at once hold task slots
/// while their children need slots too.
#[task]
fn waits_for_child(x: u64) -> Result<u64> {
    square::submit(x).wait()
}

#[flow]
fn parents_wait(n: u64) -> Result<u64> {
    Ok(
        weir_sdk::wait_all(waits_for_child::map((0..n).collect::<Vec<_>>()))?
            .into_iter()
            .sum(),
    )
}

/// `n` tasks that each sleep `millis`, all submitted at once: a run that wants every
/// task slot.
#[flow]
fn slot_hog(n: u64, millis: u64) -> Result<u64> {
    let spans = weir_sdk::wait_all(slow::map(vec![millis; n as usize]))?;
    Ok(spans.len() as u64)
}

/// Writes `lines` one-byte log lines as fast as it can.
#[flow]
fn tiny_log_flood(lines: u32) -> Result<u32> {
    for _ in 0..lines {
        weir_sdk::info!(".");
    }
    Ok(lines)
}

/// Tries to create `n` artifacts of `kib` KiB; returns how many were created and the
/// first refusal.
#[flow]
fn artifact_flood(n: u32, kib: usize) -> Result<(u32, String)> {
    let md = "z".repeat(kib << 10);
    let mut created = 0;
    for _ in 0..n {
        match weir_sdk::artifacts::create_markdown_artifact(&md, None, None) {
            Ok(_) => created += 1,
            Err(e) => return Ok((created, e.message().to_owned())),
        }
    }
    Ok((created, String::new()))
}

/// Submits `n` tasks with an argument of `kib` KiB each and keeps their futures.
#[flow]
fn hoard_arguments(n: u32, kib: usize) -> Result<u32> {
    let big = "a".repeat(kib << 10);
    let futures: Vec<_> = (0..n).map(|_| echo_len::submit(big.clone())).collect();
    Ok(weir_sdk::wait_all(futures)?.len() as u32)
}

#[task]
fn echo_len(s: String) -> usize {
    s.len()
}

/// A task that holds `mib` MiB for `millis`, then returns.
#[task]
fn hold_memory(mib: usize, millis: u64) -> usize {
    let hoard = vec![7u8; mib << 20];
    std::thread::sleep(std::time::Duration::from_millis(millis));
    std::hint::black_box(&hoard).len()
}

/// `n` tasks holding `mib` MiB each at once: how many completed, and why the others
/// failed.
#[flow]
fn memory_crowd(n: u32, mib: usize, millis: u64) -> Result<(u32, Vec<String>)> {
    let futures = hold_memory::map(vec![mib; n as usize], weir_sdk::unmapped(millis));
    let (mut ok, mut failed) = (0, Vec::new());
    for f in futures {
        match f.wait() {
            Ok(_) => ok += 1,
            Err(e) => failed.push(e.message().to_owned()),
        }
    }
    Ok((ok, failed))
}
