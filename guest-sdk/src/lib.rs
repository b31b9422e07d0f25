//! Write Weir flows and tasks in Rust.
//!
//! A Weir component is a WebAssembly component holding flows and tasks. Mark functions with
//! [`#[flow]`](macro@flow) and [`#[task]`](macro@task), export the component once with
//! [`export!`], and build it for `wasm32-wasip2`. The host runs every flow run and every task
//! attempt in its own sandbox and does the orchestration: retries, timeouts, caching, states,
//! logs and artifacts.
//!
//! ```no_run
//! use weir_sdk::{flow, task};
//!
//! weir_sdk::export!();
//!
//! /// Says hello.
//! #[task(retries = 2)]
//! fn print_hello(name: String) -> String {
//!     let greeting = format!("Hello, {name}!");
//!     println!("{greeting}");
//!     greeting
//! }
//!
//! /// The classic.
//! #[flow(name = "hello", log_prints = true)]
//! fn hello_world(#[default("world")] name: String) -> weir_sdk::Result<String> {
//!     weir_sdk::info!("greeting {name}");
//!     // Inside a flow, calling a task runs it through the host and waits for it.
//!     print_hello(name)
//! }
//! # fn main() {}
//! ```
//!
//! `cargo build --release --target wasm32-wasip2` then gives the component.
//!
//! For a task `add`, the macro generates:
//! - `add(x, y) -> weir_sdk::Result<T>`: runs the task through the host and waits;
//! - `add::submit(x, y) -> TaskFuture<T>`: starts it concurrently;
//! - `add::map(xs, ys) -> Vec<TaskFuture<T>>`: one run per element of each `Vec`; a value of
//!   the parameter's own type (or [`unmapped`]) is repeated ([`MapArg`]);
//! - `add::call_state(x, y) -> TaskState<T>`: runs it and returns its final state;
//! - `add::with_options(CallOptions::new().retries(3).wait_for(&future))` (or `add::with`):
//!   the same calls with options replaced for them (Prefect's `with_options`);
//! - `add::body(x, y)`: the function itself, without orchestration.
//!
//! A flow `f` gives `f(..)` (a subflow call), `f::call_state(..)` and `f::body(..)`.
//!
//! Besides values, `submit`, `map`, `call_state` and the `with` calls take futures and
//! states of upstream task runs as arguments ([`Input`]): `add::submit(&future, 1)` returns
//! at once, and the host starts the run with the upstream run's value once it completed
//! (NotReady if it did not), as Prefect resolves futures passed to a task.
//!
//! A flow can wait for a person or another system: [`pause_flow_run`] keeps its instance
//! until the run is resumed, [`suspend_flow_run`] releases it and runs the flow again on
//! resume (completed calls replay); the `_with_input` forms return typed input that the
//! resume must bring (Prefect's `wait_for_input`). See [`Pause`].
//!
//! Flows and tasks are items of a module (not of a function body): the generated `mod f` reaches
//! the function's types with `use super::*`.
//!
//! Arguments and results cross runs as JSON (serde). JSON has no NaN or infinity, so Weir
//! writes them as the strings `"NaN"`, `"Infinity"` and `"-Infinity"` and reads them back
//! wherever a float is expected: a task returning `f64::NAN` gives its flow `NaN`.
//!
//! # Layout
//!
//! - `bindings`: the one `wit_bindgen::generate!` of the `weir:flow` world.
//! - `registry`: the flows and tasks the macros register, and the exported `guest` interface.
//! - `run`: decoding parameters and encoding results inside a run.
//! - `task`, `flow`: orchestrated calls (futures, maps, call options, subflows).
//! - `state`, `error`: states and errors as guests see them.
//! - `schema`: the JSON Schema of parameters.
//! - `pause`: pausing and suspending the flow run until a resume brings its input.
//! - `logging`, [`artifacts`], `context`, [`variables`], [`http`], `hooks`: the run's services.
//! - `concurrency`: the workspace's global concurrency and rate limits ([`concurrency()`],
//!   [`rate_limit()`], [`Limits`]).

#![warn(missing_docs)]

extern crate self as weir_sdk;

pub mod artifacts;
mod bindings;
mod concurrency;
mod context;
pub mod deployments;
mod error;
mod flow;
mod hooks;
pub mod http;
mod input;
mod json;
pub use deployments::run_deployment;
mod logging;
mod pause;
mod plugin;
mod registry;
mod run;
mod schema;
mod state;
mod task;
mod transaction;
pub mod variables;

pub use concurrency::{Limits, Occupied, concurrency, rate_limit};
pub use context::{RunContext, context};
pub use error::{Error, Result};
pub use hooks::{CacheKeyContext, HookContext, RunKind};
pub use input::Input;
pub use logging::{Level, Logger, log, logger};
pub use pause::{
    Pause, pause_flow_run, pause_flow_run_with_input, suspend_flow_run, suspend_flow_run_with_input,
};
pub use plugin::{Plugin, plugin};
pub use state::{FlowState, State, StateType, TaskState};
pub use task::{
    CachePolicy, CallOptions, Dependency, MapArg, TaskFuture, allow_failure, unmapped, wait_all,
};
pub use transaction::{
    CommitMode, IsolationLevel, Transaction, TransactionContext, TransactionOptions, transaction,
};

/// Marks a function as a flow.
///
/// Options (Prefect's `@flow` arguments): `name` (default: the function's name with dashes,
/// `my_flow` is `my-flow`), `description` (default: the doc comment), `version`,
/// `flow_run_name` (a template such as `"run-{param}"` or `"{day:%A}"`, or the path of a
/// `fn() -> String` called as the run starts, which may read [`context()`]), `retries`,
/// `retry_delay_seconds = 2` or `= [1, 2.5]` (at most 50), `retry_jitter_factor`,
/// `timeout_seconds`, `tags = ["a"]`, `log_prints` (unset: the parent flow's setting, else
/// off; what is printed is kept only when on), `persist_result`, `on_completion = [hook]`,
/// `on_failure = [hook]`, `on_running = [hook]`, and for flows only
/// `on_cancellation = [hook]` (the run ended Cancelled: cancelled by request, or its parent
/// was), `on_crashed = [hook]` (the run ended Crashed: the host could not run it),
/// `validate_parameters = false` (parameters reach the flow as given, neither validated nor
/// coerced) and `task_runner = SequentialTaskRunner` / `ThreadPoolTaskRunner(n)` (at most
/// `n` of the task runs the flow submits run at once, in submission order).
///
/// Parameters are owned `Serialize + DeserializeOwned + JsonSchema` types; `#[default(expr)]`
/// on a parameter gives it a default. The flow may return a value, a `Result<T, E>` (with `E`
/// an [`Error`] or anything `Display`), a [`State`] (its final state), or task or subflow
/// states or futures: one ([`TaskState`], [`FlowState`], [`TaskFuture`]) is the flow's
/// state; several (a `Vec` of them, a `Vec<State>` mixing them with `.into()`, or a tuple)
/// fail the flow when any failed, as in Prefect (`"1/3 states failed."`).
pub use weir_sdk_macros::flow;

/// Marks a function as a task.
///
/// Options (Prefect's `@task` arguments): those of [`macro@flow`] except the flow-only
/// ones, plus `task_run_name` (a template or a function, as `flow_run_name`; inside it
/// [`context()`] has the task run's `task_run_parameters`), `retry_condition = path`
/// (`fn(&Error, u32) -> bool`), `cache_policy = "inputs" | "none"`, `cache_key_fn = path`
/// (`fn(&CacheKeyContext) -> Option<String>`), `cache_expiration` (seconds) and
/// `refresh_cache`. `log_prints` unset takes the calling flow's setting. `on_commit = [hook]`
/// and `on_rollback = [hook]` are the task's transaction hooks
/// (`fn(&TransactionContext) -> Result<()>`), run when the transaction the task completed
/// in commits or rolls back (see [`transaction()`]).
///
/// A task's options can be replaced for some calls with `my_task::with_options(
/// CallOptions::new().retries(3))` (Prefect's `task.with_options`).
pub use weir_sdk_macros::task;

/// Exports the component's flows and tasks; write it once, at the crate root:
/// `weir_sdk::export!();`.
#[macro_export]
macro_rules! export {
    () => {
        const _: () = {
            use $crate::__private::Component as __WeirComponent;
            $crate::__private::bindings::__export_weir_component!(
                __WeirComponent with_types_in $crate::__private::bindings
            );
        };
    };
}

/// What the macros expand to; not a public API.
#[doc(hidden)]
pub mod __private {
    /// The WIT bindings, for the export macro.
    pub mod bindings {
        pub use crate::bindings::*;
    }
    pub use crate::flow::call_flow;
    pub use crate::input::Arguments;
    pub use crate::registry::{CachePolicy, Component, Options, Registration, flow_id};
    pub use crate::run::{
        Decode, DecodeOpaque, DecodeState, DecodeValue, ErrorDisplay, ErrorExact, ParsedArguments,
        ReturnState, ReturnValue, Returned, ReturnedError, task_output,
    };
    pub use crate::schema::{ParametersSchema, default_value};
    pub use crate::task::{CacheKeyFn, MapArguments, call_task, delay_task, map_task, submit_task};
    pub use inventory;
    pub use serde_json;
    pub use wit_bindgen;

    /// The type a flow's or task's run function returns.
    pub type RunResult = ::core::result::Result<bindings::FlowOutput, bindings::Failure>;
    pub use crate::bindings::{Failure, FlowOutput};
}
