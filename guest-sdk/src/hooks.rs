//! What state hooks and cache-key functions receive.

use serde_json::Value;

use crate::bindings;
use crate::state::State;

/// Whether a run is a flow run or a task run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RunKind {
    /// A flow run.
    Flow,
    /// A task run.
    Task,
}

/// What a state hook (`on_completion`, `on_failure`, `on_cancellation`, `on_crashed`) receives.
///
/// Hooks run in their own call after the state change, so they cannot change the run's
/// outcome; a hook that panics ends that call only.
#[derive(Clone, Debug, PartialEq)]
pub struct HookContext {
    /// Whether the run is a flow run or a task run.
    pub kind: RunKind,
    /// The flow or task name.
    pub name: String,
    /// The run id.
    pub run_id: String,
    /// The run name.
    pub run_name: String,
    /// The state the run entered.
    pub state: State,
    /// The run's parameters (a JSON object keyed by parameter name).
    pub parameters: Value,
}

impl HookContext {
    pub(crate) fn from_event(event: &bindings::StateEvent) -> Self {
        HookContext {
            kind: match event.kind {
                bindings::RunKind::Flow => RunKind::Flow,
                bindings::RunKind::Task => RunKind::Task,
            },
            name: event.name.clone(),
            run_id: event.run_id.clone(),
            run_name: event.run_name.clone(),
            state: State::from_wit(event.state.clone(), None),
            parameters: serde_json::from_str(&event.parameters).unwrap_or(Value::Null),
        }
    }
}

/// What a task's `cache_key_fn` receives: the key is computed by the caller, before the run.
#[derive(Clone, Copy, Debug)]
pub struct CacheKeyContext<'a> {
    /// The task name.
    pub task: &'a str,
    /// The call's arguments (a JSON object keyed by parameter name).
    pub parameters: &'a Value,
}
