//! Orchestrated task calls: futures, mapping, call options and dependencies.

use std::borrow::Borrow;
use std::cell::OnceCell;
use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::bindings::weir::flow::tasks as host;
use crate::error::{Error, Result};
use crate::hooks::CacheKeyContext;
use crate::input::{Arguments, Input, Repr, Slot, argument_error, slot_of};
use crate::state::{State, TaskState, parse_host_value};

/// A submitted task run (Prefect's `PrefectFuture`), from `my_task::submit(..)` or
/// `my_task::map(..)`.
///
/// Waiting is cached: [`wait`](Self::wait) and [`state`](Self::state) ask the host once.
pub struct TaskFuture<T> {
    inner: Inner,
    id: OnceCell<String>,
    /// Boxed, as is a local error: a map of a million items holds a million futures, a
    /// few words each, in the flow's memory.
    outcome: OnceCell<Box<TaskState<()>>>,
    marker: PhantomData<fn() -> T>,
}

enum Inner {
    Host(host::TaskFuture),
    /// The call failed before reaching the host.
    Local(Box<Error>),
}

impl<T> TaskFuture<T> {
    fn host(future: host::TaskFuture) -> Self {
        TaskFuture::with_inner(Inner::Host(future))
    }

    pub(crate) fn local(error: Error) -> Self {
        TaskFuture::with_inner(Inner::Local(Box::new(error)))
    }

    fn with_inner(inner: Inner) -> Self {
        TaskFuture {
            inner,
            id: OnceCell::new(),
            outcome: OnceCell::new(),
            marker: PhantomData,
        }
    }

    /// The task run id (empty when the call failed before the host created a run).
    pub fn task_run_id(&self) -> &str {
        self.id.get_or_init(|| match &self.inner {
            Inner::Host(future) => future.task_run_id(),
            Inner::Local(_) => String::new(),
        })
    }

    /// Waits until the task run is final and returns its state; never fails.
    pub fn state(&self) -> TaskState<T> {
        let outcome = self.outcome.get_or_init(|| match &self.inner {
            Inner::Host(future) => Box::new(outcome_state(future.wait())),
            Inner::Local(error) => Box::new(TaskState::local_failure((**error).clone())),
        });
        TaskState::new(
            outcome.task_run_id.clone(),
            outcome.state.clone(),
            outcome.failure().cloned(),
        )
    }

    /// A dependency on this run that lets the dependent run even if this one failed.
    fn dependency(&self, allow_failure: bool) -> Dependency {
        let id = self.task_run_id();
        Dependency {
            task_run_id: (!id.is_empty()).then(|| id.to_owned()),
            allow_failure,
            argument: None,
        }
    }
}

impl<T: DeserializeOwned> TaskFuture<T> {
    /// Waits for the task run and returns its value, or its error if it did not complete.
    pub fn wait(&self) -> Result<T> {
        self.state().result()
    }

    /// The same as [`wait`](Self::wait) (Prefect's `future.result()`).
    pub fn result(&self) -> Result<T> {
        self.wait()
    }
}

impl<T> std::fmt::Debug for TaskFuture<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskFuture")
            .field("task_run_id", &self.id.get())
            .field("done", &self.outcome.get().is_some())
            .finish()
    }
}

/// Waits for every future, then returns all their values or the first error (in order).
pub fn wait_all<T, F>(futures: impl IntoIterator<Item = F>) -> Result<Vec<T>>
where
    T: DeserializeOwned,
    F: Borrow<TaskFuture<T>>,
{
    let futures = futures.into_iter();
    let mut values = Vec::with_capacity(futures.size_hint().0);
    let mut first_error = None;
    // One state at a time, dropped once its value is taken (with the future itself when
    // the futures are given by value): a map of a million items keeps no million states.
    for future in futures {
        match future.borrow().state().result() {
            Ok(value) if first_error.is_none() => values.push(value),
            Ok(_) => {}
            Err(e) => {
                if first_error.is_none() {
                    first_error = Some(e);
                    values = Vec::new();
                }
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(values),
    }
}

fn outcome_state(outcome: host::TaskOutcome) -> TaskState<()> {
    let (value, parse_error) = parse_host_value(outcome.value);
    let state = State::from_wit(outcome.state, value);
    let failure = outcome.failure.map(Error::from_failure).or(parse_error);
    TaskState::new(outcome.task_run_id, state, failure)
}

fn typed<T>(state: TaskState<()>) -> TaskState<T> {
    let failure = state.failure().cloned();
    TaskState::new(state.task_run_id, state.state, failure)
}

/// A task run another one waits for (Prefect's `wait_for=[...]`), from `&TaskFuture` or
/// `&TaskState`; wrap it in [`allow_failure`] to run even if it failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dependency {
    /// `None` when the upstream call failed before the host created a run.
    task_run_id: Option<String>,
    allow_failure: bool,
    /// Where the upstream run's value goes in the arguments (a JSON Pointer), when it is
    /// an argument.
    argument: Option<String>,
}

impl Dependency {
    /// An upstream run whose value is the argument at `pointer`.
    pub(crate) fn argument(task_run_id: String, pointer: Option<String>) -> Self {
        Dependency {
            task_run_id: Some(task_run_id),
            allow_failure: false,
            argument: pointer,
        }
    }
}

impl<T> From<&TaskFuture<T>> for Dependency {
    fn from(future: &TaskFuture<T>) -> Self {
        future.dependency(false)
    }
}

impl<T> From<&TaskState<T>> for Dependency {
    fn from(state: &TaskState<T>) -> Self {
        Dependency {
            task_run_id: (!state.task_run_id.is_empty()).then(|| state.task_run_id.clone()),
            allow_failure: false,
            argument: None,
        }
    }
}

/// Lets a task run after `dependency` even if it failed (Prefect's `allow_failure`).
pub fn allow_failure(dependency: impl Into<Dependency>) -> Dependency {
    Dependency {
        allow_failure: true,
        ..dependency.into()
    }
}

/// Options of one task call (`my_task::with_options(options)`, Prefect's
/// `task.with_options(...)`): upstream runs to wait for, extra tags, and any of the task's
/// own options replaced for this call.
///
/// ```no_run
/// use weir_sdk::{CachePolicy, CallOptions};
///
/// let options = CallOptions::new()
///     .retries(5)
///     .retry_delay_seconds([1.0, 10.0])
///     .timeout_seconds(30.0)
///     .name("fetch-eu")
///     .cache_policy(CachePolicy::None);
/// ```
#[derive(Clone, Debug, Default)]
pub struct CallOptions {
    wait_for: Vec<Dependency>,
    tags: Vec<String>,
    overrides: Overrides,
}

/// How a task call caches its result, replacing the task's `cache_policy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CachePolicy {
    /// Never cached (Prefect's `NONE`).
    None,
    /// Keyed by the component, the task and the arguments (Prefect's `INPUTS`).
    Inputs,
}

#[derive(Clone, Debug, Default)]
struct Overrides {
    name: Option<String>,
    run_name_template: Option<String>,
    retries: Option<u32>,
    retry_delay_seconds: Option<Vec<f64>>,
    retry_jitter_factor: Option<f64>,
    timeout_seconds: Option<f64>,
    cache_policy: Option<CachePolicy>,
    cache_expiration_seconds: Option<f64>,
    refresh_cache: Option<bool>,
    persist_result: Option<bool>,
    log_prints: Option<bool>,
}

impl CallOptions {
    /// No dependencies, no extra tags.
    pub fn new() -> Self {
        CallOptions::default()
    }

    /// Waits for an upstream task run before starting (Prefect's `wait_for`).
    #[must_use]
    pub fn wait_for(mut self, dependency: impl Into<Dependency>) -> Self {
        self.wait_for.push(dependency.into());
        self
    }

    /// Adds tags to the task run, on top of the task's own.
    #[must_use]
    pub fn tags<S: Into<String>>(mut self, tags: impl IntoIterator<Item = S>) -> Self {
        self.tags.extend(tags.into_iter().map(Into::into));
        self
    }

    /// The task's name shown for this call's run (`with_options(name=...)`).
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.overrides.name = Some(name.into());
        self
    }

    /// The run's name, a template over the arguments (`"fetch-{region}"`).
    #[must_use]
    pub fn task_run_name(mut self, template: impl Into<String>) -> Self {
        self.overrides.run_name_template = Some(template.into());
        self
    }

    /// Retries for this call.
    #[must_use]
    pub fn retries(mut self, retries: u32) -> Self {
        self.overrides.retries = Some(retries);
        self
    }

    /// Delays before each retry, in seconds; the last one repeats.
    #[must_use]
    pub fn retry_delay_seconds(mut self, delays: impl IntoIterator<Item = f64>) -> Self {
        self.overrides.retry_delay_seconds = Some(delays.into_iter().collect());
        self
    }

    /// Spreads each retry delay by up to this factor.
    #[must_use]
    pub fn retry_jitter_factor(mut self, factor: f64) -> Self {
        self.overrides.retry_jitter_factor = Some(factor);
        self
    }

    /// A timeout for each attempt, in seconds; `0.0` is none.
    #[must_use]
    pub fn timeout_seconds(mut self, seconds: f64) -> Self {
        self.overrides.timeout_seconds = Some(seconds);
        self
    }

    /// The cache policy for this call. A task with a `cache_key_fn` keeps its own key
    /// unless this is [`CachePolicy::None`].
    #[must_use]
    pub fn cache_policy(mut self, policy: CachePolicy) -> Self {
        self.overrides.cache_policy = Some(policy);
        self
    }

    /// How long this call's cached result is valid, in seconds.
    #[must_use]
    pub fn cache_expiration(mut self, seconds: f64) -> Self {
        self.overrides.cache_expiration_seconds = Some(seconds);
        self
    }

    /// Runs the task even when a cached result is valid, and caches the new one.
    #[must_use]
    pub fn refresh_cache(mut self, refresh: bool) -> Self {
        self.overrides.refresh_cache = Some(refresh);
        self
    }

    /// Whether the run's result is stored.
    #[must_use]
    pub fn persist_result(mut self, persist: bool) -> Self {
        self.overrides.persist_result = Some(persist);
        self
    }

    /// Whether what the task prints is logged.
    #[must_use]
    pub fn log_prints(mut self, log_prints: bool) -> Self {
        self.overrides.log_prints = Some(log_prints);
        self
    }

    fn overrides_to_host(&self) -> host::TaskOverrides {
        let o = &self.overrides;
        host::TaskOverrides {
            name: o.name.clone(),
            run_name_template: o.run_name_template.clone(),
            retries: o.retries,
            retry_delay_seconds: o.retry_delay_seconds.clone(),
            retry_jitter_factor: o.retry_jitter_factor,
            timeout_seconds: o.timeout_seconds,
            cache_policy: o.cache_policy.map(|p| match p {
                CachePolicy::None => crate::bindings::CachePolicy::None,
                CachePolicy::Inputs => crate::bindings::CachePolicy::Inputs,
            }),
            cache_expiration_seconds: o.cache_expiration_seconds,
            refresh_cache: o.refresh_cache,
            persist_result: o.persist_result,
            log_prints: o.log_prints,
        }
    }

    /// The host's call options, or the error when an upstream call never reached the host (it
    /// failed, and the dependent run must not start unless failures are allowed).
    fn to_host(
        &self,
        cache_key: Option<String>,
        inputs: Vec<Dependency>,
    ) -> Result<host::CallOptions> {
        let mut wait_for = Vec::with_capacity(self.wait_for.len() + inputs.len());
        for dependency in self.wait_for.iter().chain(&inputs) {
            match &dependency.task_run_id {
                Some(id) => wait_for.push(host::Dependency {
                    task_run_id: id.clone(),
                    allow_failure: dependency.allow_failure,
                    argument: dependency.argument.clone(),
                }),
                None if dependency.allow_failure => {}
                None => {
                    return Err(Error::msg("an upstream task call failed before it ran")
                        .kind("upstream")
                        .retryable(false));
                }
            }
        }
        // A call that turns caching off does not send the task's custom key.
        let cache_key =
            cache_key.filter(|_| self.overrides.cache_policy != Some(CachePolicy::None));
        Ok(host::CallOptions {
            wait_for,
            cache_key,
            tags: self.tags.clone(),
            overrides: self.overrides_to_host(),
        })
    }
}

/// One argument of `my_task::map(..)`: a `Vec` (or array, or range) is mapped, one element per
/// task run; [`unmapped`] repeats one value for every run. Futures map too: a
/// `Vec<TaskFuture<A>>` (or a slice of them) gives one run per future, with its value, and a
/// single `&TaskFuture<A>` is repeated (see [`Input`]).
pub enum MapArg<'a, A> {
    /// One element per task run.
    Mapped(Vec<A>),
    /// The same value for every task run.
    Unmapped(A),
    /// One upstream run's value per task run (from futures).
    MappedInputs(Vec<Input<'a, A>>),
    /// The same upstream run's value for every task run.
    UnmappedInput(Input<'a, A>),
}

impl<A: std::fmt::Debug> std::fmt::Debug for MapArg<'_, A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MapArg::Mapped(values) => f.debug_tuple("Mapped").field(values).finish(),
            MapArg::Unmapped(value) => f.debug_tuple("Unmapped").field(value).finish(),
            MapArg::MappedInputs(inputs) => f.debug_tuple("MappedInputs").field(inputs).finish(),
            MapArg::UnmappedInput(input) => f.debug_tuple("UnmappedInput").field(input).finish(),
        }
    }
}

/// Passes the same value to every run of a map (Prefect's `unmapped`).
pub fn unmapped<'a, A>(value: A) -> MapArg<'a, A> {
    MapArg::Unmapped(value)
}

/// A value of the parameter's own type is the same for every run, as in Prefect (where
/// a non-iterable is not mapped); [`unmapped`] says so explicitly.
impl<A> From<A> for MapArg<'_, A> {
    fn from(value: A) -> Self {
        MapArg::Unmapped(value)
    }
}

impl<A> From<Vec<A>> for MapArg<'_, A> {
    fn from(values: Vec<A>) -> Self {
        MapArg::Mapped(values)
    }
}

impl<A, const N: usize> From<[A; N]> for MapArg<'_, A> {
    fn from(values: [A; N]) -> Self {
        MapArg::Mapped(values.into())
    }
}

impl<A> From<std::ops::Range<A>> for MapArg<'_, A>
where
    std::ops::Range<A>: Iterator<Item = A>,
{
    fn from(values: std::ops::Range<A>) -> Self {
        MapArg::Mapped(values.collect())
    }
}

impl<'a, A: 'a> From<Vec<TaskFuture<A>>> for MapArg<'a, A> {
    fn from(futures: Vec<TaskFuture<A>>) -> Self {
        MapArg::MappedInputs(futures.into_iter().map(Input::from).collect())
    }
}

impl<'a, A: 'a> From<&'a [TaskFuture<A>]> for MapArg<'a, A> {
    fn from(futures: &'a [TaskFuture<A>]) -> Self {
        MapArg::MappedInputs(futures.iter().map(Input::from).collect())
    }
}

impl<'a, A: 'a> From<&'a Vec<TaskFuture<A>>> for MapArg<'a, A> {
    fn from(futures: &'a Vec<TaskFuture<A>>) -> Self {
        MapArg::from(futures.as_slice())
    }
}

impl<'a, A: 'a> From<&'a TaskFuture<A>> for MapArg<'a, A> {
    fn from(future: &'a TaskFuture<A>) -> Self {
        MapArg::UnmappedInput(Input::from(future))
    }
}

/// The serialized arguments of a map, before zipping.
#[doc(hidden)]
pub struct MapArguments<'a> {
    args: Vec<(String, Zipped<'a>)>,
    error: Option<Error>,
}

/// A map argument, serialized.
enum Zipped<'a> {
    Mapped(Vec<Slot<'a>>),
    Unmapped(Slot<'a>),
}

impl<'a> MapArguments<'a> {
    pub fn new() -> Self {
        MapArguments {
            args: Vec::new(),
            error: None,
        }
    }

    pub fn arg<A: serde::Serialize>(mut self, name: &str, arg: MapArg<'a, A>) -> Self {
        let to_slot = |input: Input<'a, A>| match input.into_repr() {
            Repr::Value(value) => crate::json::to_value(&value)
                .map(Repr::Value)
                .map_err(|e| argument_error(name, e)),
            repr => Ok(slot_of(repr)),
        };
        let arg = match arg {
            MapArg::Mapped(values) => values
                .into_iter()
                .map(|value| to_slot(Input::from(value)))
                .collect::<Result<Vec<_>>>()
                .map(Zipped::Mapped),
            MapArg::MappedInputs(inputs) => inputs
                .into_iter()
                .map(to_slot)
                .collect::<Result<Vec<_>>>()
                .map(Zipped::Mapped),
            MapArg::Unmapped(value) => to_slot(Input::from(value)).map(Zipped::Unmapped),
            MapArg::UnmappedInput(input) => to_slot(input).map(Zipped::Unmapped),
        };
        match arg {
            Ok(arg) => self.args.push((name.to_owned(), arg)),
            Err(error) => {
                self.error.get_or_insert(error);
                // Keep the length so that the count of failed futures still matches.
                self.args
                    .push((name.to_owned(), Zipped::Unmapped(Repr::Value(Value::Null))));
            }
        }
        self
    }

    /// The runs of the map, or the error and how many runs the map stood for.
    pub(crate) fn zip(self) -> std::result::Result<Runs<'a>, (Error, usize)> {
        let lengths: Vec<(&str, usize)> = self
            .args
            .iter()
            .filter_map(|(name, arg)| match arg {
                Zipped::Mapped(values) => Some((name.as_str(), values.len())),
                Zipped::Unmapped(_) => None,
            })
            .collect();
        let runs = lengths.iter().map(|(_, n)| *n).max().unwrap_or(0);
        if let Some(error) = self.error {
            return Err((error, runs.max(1)));
        }
        if lengths.is_empty() {
            let error = Error::msg("map needs at least one mapped argument (a Vec); wrap constants in `weir_sdk::unmapped`")
                .kind("invalid-parameters")
                .retryable(false);
            return Err((error, 1));
        }
        if lengths.iter().any(|(_, n)| *n != runs) {
            let described: Vec<String> = lengths
                .iter()
                .map(|(name, n)| format!("`{name}` has {n}"))
                .collect();
            let error = Error::msg(format!(
                "mapped arguments must have the same length: {}",
                described.join(", ")
            ))
            .kind("invalid-parameters")
            .retryable(false);
            return Err((error, runs));
        }
        Ok(Runs {
            args: self.args,
            count: runs,
        })
    }
}

/// The runs of a map: argument `i` of every mapped argument, and the unmapped ones.
pub(crate) struct Runs<'a> {
    args: Vec<(String, Zipped<'a>)>,
    count: usize,
}

impl<'a> Runs<'a> {
    pub(crate) fn len(&self) -> usize {
        self.count
    }

    fn slot<'r>(arg: &'r Zipped<'a>, i: usize) -> &'r Slot<'a> {
        match arg {
            Zipped::Mapped(values) => &values[i],
            Zipped::Unmapped(value) => value,
        }
    }

    /// Whether some run's argument comes from upstream runs.
    pub(crate) fn has_upstream(&self) -> bool {
        let upstream = |slot: &Slot<'_>| !matches!(slot, Repr::Value(_));
        self.args.iter().any(|(_, arg)| match arg {
            Zipped::Mapped(values) => values.iter().any(upstream),
            Zipped::Unmapped(value) => upstream(value),
        })
    }

    /// The arguments of run `i`.
    pub(crate) fn arguments(&self, i: usize) -> Arguments<'a> {
        self.args
            .iter()
            .fold(Arguments::new(), |arguments, (name, arg)| {
                arguments.slot(name, Self::slot(arg, i).clone())
            })
    }

    /// The arguments of run `i` as JSON text, when none comes from upstream runs.
    pub(crate) fn json(&self, i: usize) -> String {
        let map: Map<String, Value> = self
            .args
            .iter()
            .map(|(name, arg)| {
                let value = match Self::slot(arg, i) {
                    Repr::Value(value) => value.clone(),
                    _ => Value::Null,
                };
                (name.clone(), value)
            })
            .collect();
        Value::Object(map).to_string()
    }
}

impl Default for MapArguments<'_> {
    fn default() -> Self {
        MapArguments::new()
    }
}

/// A task's custom cache-key function (`cache_key_fn = ...`).
#[doc(hidden)]
pub type CacheKeyFn = fn(&CacheKeyContext<'_>) -> Option<String>;

fn cache_key(task: &str, parameters: &Value, key_fn: Option<CacheKeyFn>) -> Option<String> {
    key_fn.and_then(|key_fn| key_fn(&CacheKeyContext { task, parameters }))
}

/// What the orchestrated call of a task sends to the host, or why it cannot be sent.
fn prepare(
    task: &str,
    arguments: Arguments,
    options: &CallOptions,
    key_fn: Option<CacheKeyFn>,
) -> Result<(String, host::CallOptions)> {
    // A custom cache key is computed over the arguments' values, so upstream values are
    // waited for here when there is one (the host ends the run NotReady when one failed).
    let (arguments, inputs) =
        if key_fn.is_some() && arguments.has_upstream() && arguments.upstream_completed() {
            arguments.into_waited()?
        } else {
            arguments.into_host()?
        };
    let key = cache_key(task, &arguments, key_fn);
    let options = options.to_host(key, inputs)?;
    Ok((arguments.to_string(), options))
}

#[doc(hidden)]
pub fn call_task<T>(
    task: &str,
    arguments: Arguments,
    options: &CallOptions,
    key_fn: Option<CacheKeyFn>,
) -> TaskState<T> {
    match prepare(task, arguments, options, key_fn) {
        Ok((arguments, options)) => typed(outcome_state(host::call(task, &arguments, &options))),
        Err(error) => TaskState::local_failure(error),
    }
}

#[doc(hidden)]
pub fn submit_task<T>(
    task: &str,
    arguments: Arguments,
    options: &CallOptions,
    key_fn: Option<CacheKeyFn>,
) -> TaskFuture<T> {
    match prepare(task, arguments, options, key_fn) {
        Ok((arguments, options)) => TaskFuture::host(host::submit(task, &arguments, &options)),
        Err(error) => TaskFuture::local(error),
    }
}

#[doc(hidden)]
pub fn delay_task(task: &str, arguments: Arguments) -> Result<String> {
    let (arguments, _) = arguments.into_host()?;
    let text = crate::json::to_string(&arguments).map_err(Error::msg)?;
    host::delay(task, &text)
        .map_err(|e| Error::msg(format!("cannot start task '{task}' in the background: {e}")))
}

#[doc(hidden)]
pub fn map_task<T>(
    task: &str,
    arguments: MapArguments,
    options: &CallOptions,
    key_fn: Option<CacheKeyFn>,
) -> Vec<TaskFuture<T>> {
    let runs = match arguments.zip() {
        Ok(runs) => runs,
        Err((error, count)) => return failed_futures(error, count),
    };
    // One call carries one key and one set of dependencies: a task with a key function, or
    // runs whose arguments come from upstream runs, are submitted one by one.
    if key_fn.is_some() || runs.has_upstream() {
        return (0..runs.len())
            .map(
                |i| match prepare(task, runs.arguments(i), options, key_fn) {
                    Ok((arguments, options)) => {
                        TaskFuture::host(host::submit(task, &arguments, &options))
                    }
                    Err(error) => TaskFuture::local(error),
                },
            )
            .collect();
    }
    let host_options = match options.to_host(None, Vec::new()) {
        Ok(host_options) => host_options,
        Err(error) => return failed_futures(error, runs.len()),
    };
    let arguments: Vec<String> = (0..runs.len()).map(|i| runs.json(i)).collect();
    drop(runs);
    let futures = host::map(task, &arguments, &host_options);
    // Freed before the futures are made: they would be the flow's peak otherwise.
    drop(arguments);
    futures.into_iter().map(TaskFuture::host).collect()
}

/// A map whose runs' arguments are already JSON objects (a plugin's task); one that
/// could not be made fails every run, as a map's bad argument does.
pub(crate) fn map_task_json<T>(
    task: &str,
    arguments: Vec<Result<String>>,
    options: &CallOptions,
) -> Vec<TaskFuture<T>> {
    let count = arguments.len();
    let arguments = match arguments.into_iter().collect::<Result<Vec<String>>>() {
        Ok(arguments) => arguments,
        Err(error) => return failed_futures(error, count),
    };
    let host_options = match options.to_host(None, Vec::new()) {
        Ok(host_options) => host_options,
        Err(error) => return failed_futures(error, count),
    };
    host::map(task, &arguments, &host_options)
        .into_iter()
        .map(TaskFuture::host)
        .collect()
}

fn failed_futures<T>(error: Error, count: usize) -> Vec<TaskFuture<T>> {
    (0..count)
        .map(|_| TaskFuture::local(error.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn zipped(arguments: MapArguments) -> Vec<Value> {
        let runs = arguments.zip().unwrap();
        (0..runs.len())
            .map(|i| {
                let json: Value = serde_json::from_str(&runs.json(i)).unwrap();
                assert_eq!(json, runs.arguments(i).into_host().unwrap().0);
                json
            })
            .collect()
    }

    #[test]
    fn mapped_arguments_zip_and_unmapped_repeat() {
        let runs = zipped(
            MapArguments::new()
                .arg("x", MapArg::<i32>::from(vec![1, 2, 3]))
                .arg("y", unmapped(10))
                .arg("z", MapArg::<&str>::from(["a", "b", "c"])),
        );
        assert_eq!(
            runs,
            vec![
                json!({"x": 1, "y": 10, "z": "a"}),
                json!({"x": 2, "y": 10, "z": "b"}),
                json!({"x": 3, "y": 10, "z": "c"}),
            ]
        );
    }

    #[test]
    fn ranges_are_mapped() {
        let runs = zipped(MapArguments::new().arg("i", MapArg::<u32>::from(0..2u32)));
        assert_eq!(runs, vec![json!({"i": 0}), json!({"i": 1})]);
    }

    #[test]
    fn empty_maps_make_no_runs() {
        let runs = zipped(MapArguments::new().arg("x", MapArg::<i64>::from(Vec::<i64>::new())));
        assert!(runs.is_empty());
    }

    #[test]
    fn lengths_must_match_and_every_run_fails_otherwise() {
        let (error, count) = MapArguments::new()
            .arg("x", MapArg::<i32>::from(vec![1, 2, 3]))
            .arg("y", MapArg::<i32>::from(vec![1, 2]))
            .zip()
            .err()
            .unwrap();
        assert_eq!(count, 3);
        assert_eq!(error.get_kind(), "invalid-parameters");
        assert!(error.message().contains("`x` has 3, `y` has 2"), "{error}");

        let futures: Vec<TaskFuture<i64>> = failed_futures(error, count);
        assert_eq!(futures.len(), 3);
        for future in &futures {
            assert_eq!(future.task_run_id(), "");
            assert!(future.state().is_failed());
        }
        assert!(wait_all(&futures).is_err());
    }

    #[test]
    fn a_map_needs_a_mapped_argument() {
        let (error, count) = MapArguments::new()
            .arg("x", unmapped(1))
            .zip()
            .err()
            .unwrap();
        assert_eq!(count, 1);
        assert!(error.message().contains("unmapped"));
    }

    #[test]
    fn unserializable_arguments_fail_the_call() {
        let mut bad = std::collections::HashMap::new();
        bad.insert((1, 2), 3);
        let error = Arguments::new().arg("m", &bad).into_host().unwrap_err();
        assert!(error.message().contains("`m`"), "{error}");
        assert_eq!(error.get_retryable(), Some(false));
    }

    #[test]
    fn local_failures_block_dependents_unless_allowed() {
        let failed: TaskFuture<i64> = TaskFuture::local(Error::msg("bad"));
        let blocked = CallOptions::new().wait_for(&failed);
        assert_eq!(
            blocked.to_host(None, Vec::new()).unwrap_err().get_kind(),
            "upstream"
        );
        let allowed = CallOptions::new()
            .wait_for(allow_failure(&failed))
            .tags(["x"]);
        let options = allowed.to_host(Some("k".into()), Vec::new()).unwrap();
        assert!(options.wait_for.is_empty());
        assert_eq!(options.tags, vec!["x".to_owned()]);
        assert_eq!(options.cache_key.as_deref(), Some("k"));

        let state: TaskState<i64> = TaskState::new("run-1".into(), State::completed(), None);
        let options = CallOptions::new()
            .wait_for(&state)
            .to_host(None, Vec::new())
            .unwrap();
        assert_eq!(options.wait_for[0].task_run_id, "run-1");
        assert!(!options.wait_for[0].allow_failure);
    }

    #[test]
    fn cache_keys_come_from_the_key_function() {
        fn key(ctx: &CacheKeyContext<'_>) -> Option<String> {
            Some(format!("{}:{}", ctx.task, ctx.parameters["x"]))
        }
        let arguments = Arguments::new().arg("x", &4);
        let (_, options) = prepare("t", arguments, &CallOptions::new(), Some(key)).unwrap();
        assert_eq!(options.cache_key.as_deref(), Some("t:4"));
    }
}
