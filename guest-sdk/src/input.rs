//! The arguments of orchestrated calls. An argument is a value, or the result of an upstream
//! task run (a [`TaskFuture`] or a [`TaskState`]) that the call receives as a value once that
//! run completed, as Prefect resolves the futures passed to a task.

use std::rc::Rc;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::state::TaskState;
use crate::task::{Dependency, TaskFuture};

/// An argument of an orchestrated task or subflow call: a value of the parameter's type, or
/// the result of an upstream task run.
///
/// The orchestrated call handles (`my_task::submit(..)`, `my_task::call_state(..)`,
/// `my_task::map(..)`, `my_task::with(..).call(..)` and `.submit(..)`, `my_subflow::call_state(..)`)
/// take `impl Into<Input<T>>` for a parameter of type `T`, so each argument may be:
/// - a `T` (a `&str` too, for a `String`);
/// - a `&TaskFuture<T>` or a `TaskFuture<T>`, or a `&TaskState<T>`: that run's value;
/// - for a `Vec<T>` parameter, a `Vec<TaskFuture<T>>` or a slice of them: their values, in
///   order.
///
/// A task call does not wait for its upstream runs itself: the host starts the new task run
/// once they completed, with their values in its arguments, and records them as its
/// upstream (as `wait_for` does). A task with a `cache_key_fn` is the exception: its key is
/// computed from the values, so the call waits for them. If one did not complete, the new run ends `NotReady`
/// ("Upstream task run '...' did not reach a 'COMPLETED' state."), as in Prefect. A subflow
/// call waits for its upstream runs first, and fails without starting when one did not
/// complete.
///
/// ```no_run
/// use weir_sdk::{flow, task};
///
/// #[task]
/// fn double(x: i64) -> i64 { x * 2 }
///
/// #[task]
/// fn total(xs: Vec<i64>) -> i64 { xs.iter().sum() }
///
/// #[flow]
/// fn doubled_total() -> weir_sdk::Result<i64> {
///     let a = double::submit(1);
///     let b = double::submit(&a); // waits for `a` on the host, not here
///     let all = double::map(vec![1, 2, 3]);
///     let sum = total::call_state(&all).result()?; // a Vec parameter from futures
///     let again = double::map(&all); // one run per future
///     total::submit(vec![a, b]).result()
/// }
/// # fn main() {}
/// ```
///
/// The plain calls `my_task(x)` and `my_subflow(x)` take values, as any Rust function
/// (`.into()` and `.collect()` there find their type); wait for a future there with
/// `my_task(future.result()?)`. In the handles above, a bare `.into()` or `.collect()` has no
/// single target type: write the value (`"text"`, `String::from(..)`, `collect::<Vec<_>>()`).
pub struct Input<'a, T> {
    repr: Repr<'a, T>,
}

/// An argument's value, or the upstream runs that give it.
pub(crate) enum Repr<'a, V> {
    Value(V),
    Upstream(Rc<dyn Upstream + 'a>),
    /// A list whose elements are the upstream runs' values.
    List(Vec<Rc<dyn Upstream + 'a>>),
}

impl<'a, T> Input<'a, T> {
    pub(crate) fn into_repr(self) -> Repr<'a, T> {
        self.repr
    }
}

impl<T> std::fmt::Debug for Input<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.repr {
            Repr::Value(_) => f.write_str("Input::Value"),
            Repr::Upstream(up) => write!(f, "Input::Upstream({:?})", up.task_run_id()),
            Repr::List(ups) => {
                let ids: Vec<String> = ups.iter().map(|up| up.task_run_id()).collect();
                write!(f, "Input::List({ids:?})")
            }
        }
    }
}

/// A task run whose value an argument is.
pub(crate) trait Upstream {
    /// Empty when the call never reached the host (it failed before it ran).
    fn task_run_id(&self) -> String;
    /// Waits until the run is final.
    fn outcome(&self) -> TaskState<()>;
}

impl<T> Upstream for TaskFuture<T> {
    fn task_run_id(&self) -> String {
        TaskFuture::task_run_id(self).to_owned()
    }

    fn outcome(&self) -> TaskState<()> {
        let state = self.state();
        let failure = state.failure().cloned();
        TaskState::new(state.task_run_id, state.state, failure)
    }
}

impl<T> Upstream for TaskState<T> {
    fn task_run_id(&self) -> String {
        self.task_run_id.clone()
    }

    fn outcome(&self) -> TaskState<()> {
        TaskState::new(
            self.task_run_id.clone(),
            self.state.clone(),
            self.failure().cloned(),
        )
    }
}

impl<U: Upstream + ?Sized> Upstream for &U {
    fn task_run_id(&self) -> String {
        (**self).task_run_id()
    }

    fn outcome(&self) -> TaskState<()> {
        (**self).outcome()
    }
}

fn upstream<'a>(up: impl Upstream + 'a) -> Rc<dyn Upstream + 'a> {
    Rc::new(up)
}

impl<'a, T> From<T> for Input<'a, T> {
    fn from(value: T) -> Self {
        Input {
            repr: Repr::Value(value),
        }
    }
}

impl<'a> From<&'a str> for Input<'a, String> {
    fn from(value: &'a str) -> Self {
        Input {
            repr: Repr::Value(value.to_owned()),
        }
    }
}

impl<'a, T: 'a> From<&'a TaskFuture<T>> for Input<'a, T> {
    fn from(future: &'a TaskFuture<T>) -> Self {
        Input {
            repr: Repr::Upstream(upstream(future)),
        }
    }
}

impl<'a, T: 'a> From<TaskFuture<T>> for Input<'a, T> {
    fn from(future: TaskFuture<T>) -> Self {
        Input {
            repr: Repr::Upstream(upstream(future)),
        }
    }
}

impl<'a, T: 'a> From<&'a TaskState<T>> for Input<'a, T> {
    fn from(state: &'a TaskState<T>) -> Self {
        Input {
            repr: Repr::Upstream(upstream(state)),
        }
    }
}

impl<'a, T: 'a> From<&'a [TaskFuture<T>]> for Input<'a, Vec<T>> {
    fn from(futures: &'a [TaskFuture<T>]) -> Self {
        Input {
            repr: Repr::List(futures.iter().map(upstream).collect()),
        }
    }
}

impl<'a, T: 'a> From<&'a Vec<TaskFuture<T>>> for Input<'a, Vec<T>> {
    fn from(futures: &'a Vec<TaskFuture<T>>) -> Self {
        Input::from(futures.as_slice())
    }
}

impl<'a, T: 'a> From<Vec<TaskFuture<T>>> for Input<'a, Vec<T>> {
    fn from(futures: Vec<TaskFuture<T>>) -> Self {
        Input {
            repr: Repr::List(futures.into_iter().map(upstream).collect()),
        }
    }
}

/// A JSON Pointer token (RFC 6901).
fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// The serialized arguments of one call, keyed by parameter name, with the upstream runs
/// that give some of them (`null` stands in for their values until then).
#[doc(hidden)]
pub struct Arguments<'a> {
    map: Result<Map<String, Value>>,
    /// The upstream runs, each with where in the arguments its value goes (a JSON Pointer;
    /// `None` once the value is there).
    upstream: Vec<(Option<String>, Rc<dyn Upstream + 'a>)>,
}

impl<'a> Arguments<'a> {
    pub fn new() -> Self {
        Arguments {
            map: Ok(Map::new()),
            upstream: Vec::new(),
        }
    }

    /// A value argument.
    pub fn arg<A: Serialize + ?Sized>(mut self, name: &str, value: &A) -> Self {
        if let Ok(map) = &mut self.map {
            match crate::json::to_value(value) {
                Ok(value) => {
                    map.insert(name.to_owned(), value);
                }
                Err(error) => self.map = Err(argument_error(name, error)),
            }
        }
        self
    }

    /// An argument that may come from upstream runs.
    pub fn input<A: Serialize>(self, name: &str, input: Input<'a, A>) -> Self {
        match input.repr {
            Repr::Value(value) => self.arg(name, &value),
            repr => self.slot(name, slot_of(repr)),
        }
    }

    /// An argument already serialized (a map's).
    pub(crate) fn slot(mut self, name: &str, slot: Slot<'a>) -> Self {
        let Ok(map) = &mut self.map else {
            return self;
        };
        let value = match slot {
            Repr::Value(value) => value,
            Repr::Upstream(up) => {
                self.upstream.push((Some(format!("/{}", escape(name))), up));
                Value::Null
            }
            Repr::List(ups) => {
                let count = ups.len();
                for (i, up) in ups.into_iter().enumerate() {
                    self.upstream
                        .push((Some(format!("/{}/{i}", escape(name))), up));
                }
                Value::Array(vec![Value::Null; count])
            }
        };
        map.insert(name.to_owned(), value);
        self
    }

    pub(crate) fn has_upstream(&self) -> bool {
        !self.upstream.is_empty()
    }

    /// The arguments and the dependencies that give the host the upstream values: the host
    /// waits for those runs and puts their values at the pointers before the task starts.
    pub(crate) fn into_host(self) -> Result<(Value, Vec<Dependency>)> {
        let map = self.map?;
        let mut dependencies = Vec::with_capacity(self.upstream.len());
        for (pointer, up) in self.upstream {
            let id = up.task_run_id();
            if id.is_empty() {
                return Err(never_ran(&*up));
            }
            dependencies.push(Dependency::argument(id, pointer));
        }
        Ok((Value::Object(map), dependencies))
    }

    /// Waits for the upstream runs and puts their values in the arguments; an upstream run
    /// that did not complete is the error. The runs stay dependencies, for the record.
    pub(crate) fn into_waited(self) -> Result<(Value, Vec<Dependency>)> {
        let mut value = Value::Object(self.map?);
        let mut dependencies = Vec::with_capacity(self.upstream.len());
        for (pointer, up) in self.upstream {
            let outcome = up.outcome();
            if outcome.task_run_id.is_empty() {
                return Err(never_ran(&*up));
            }
            if !outcome.is_completed() {
                return Err(Error::msg(format!(
                    "Upstream task run '{}' did not reach a 'COMPLETED' state.",
                    outcome.task_run_id
                ))
                .kind("upstream")
                .retryable(false));
            }
            if let Some(slot) = pointer.and_then(|p| value.pointer_mut(&p)) {
                *slot = outcome.state.value.clone().unwrap_or(Value::Null);
            }
            dependencies.push(Dependency::from(&outcome));
        }
        Ok((value, dependencies))
    }

    /// Waits for the upstream runs; whether all of them completed.
    pub(crate) fn upstream_completed(&self) -> bool {
        self.upstream
            .iter()
            .all(|(_, up)| up.outcome().is_completed())
    }
}

impl Default for Arguments<'_> {
    fn default() -> Self {
        Arguments::new()
    }
}

fn never_ran(up: &dyn Upstream) -> Error {
    let outcome = up.outcome();
    let why = outcome
        .failure()
        .map(|f| f.message().to_owned())
        .unwrap_or_else(|| "it failed before it ran".to_owned());
    Error::msg(format!("an upstream task call failed before it ran: {why}"))
        .kind("upstream")
        .retryable(false)
}

pub(crate) fn argument_error(name: &str, error: serde_json::Error) -> Error {
    Error::msg(format!("cannot serialize argument `{name}`: {error}"))
        .kind("invalid-parameters")
        .retryable(false)
}

/// A serialized argument of one run: a value, or upstream runs.
pub(crate) type Slot<'a> = Repr<'a, Value>;

/// The serialized form of an argument that comes from upstream runs.
pub(crate) fn slot_of<'a, A>(repr: Repr<'a, A>) -> Slot<'a> {
    match repr {
        Repr::Value(_) => unreachable!("values are serialized by the caller"),
        Repr::Upstream(up) => Repr::Upstream(up),
        Repr::List(ups) => Repr::List(ups),
    }
}

impl Clone for Slot<'_> {
    fn clone(&self) -> Self {
        match self {
            Repr::Value(value) => Repr::Value(value.clone()),
            Repr::Upstream(up) => Repr::Upstream(up.clone()),
            Repr::List(ups) => Repr::List(ups.clone()),
        }
    }
}
