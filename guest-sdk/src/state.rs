//! States of runs (Prefect's `State`) and the typed final states of task and flow runs.

use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bindings;
use crate::error::{Error, Result};

/// The type of a state (Prefect's `StateType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StateType {
    /// Waiting for its scheduled time.
    Scheduled,
    /// About to run.
    Pending,
    /// Running.
    Running,
    /// Paused, waiting to be resumed.
    Paused,
    /// Finished successfully.
    Completed,
    /// Finished with an error.
    Failed,
    /// Being cancelled.
    Cancelling,
    /// Cancelled.
    Cancelled,
    /// Stopped by an infrastructure problem (trap, lost node) rather than by its own code.
    Crashed,
}

/// A state: its type, a name (a sub-state such as "Cached" or a user's name such as "Skipped"),
/// an optional message and, for a finished run, its value.
///
/// A flow can return a `State` to choose its own final state (Prefect's
/// `return Completed(message=..., name="Skipped")`):
///
/// ```
/// use weir_sdk::State;
///
/// let skipped = State::completed().named("Skipped").message("nothing new today");
/// assert!(skipped.is_completed());
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// The state type.
    #[serde(rename = "type")]
    pub kind: StateType,
    /// The state name, "Completed" unless a sub-state or a custom name is given.
    pub name: String,
    /// A message, usually why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The run's value, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

impl State {
    fn new(kind: StateType, name: &str) -> Self {
        State {
            kind,
            name: name.to_owned(),
            message: None,
            value: None,
        }
    }

    /// A Completed state.
    pub fn completed() -> Self {
        State::new(StateType::Completed, "Completed")
    }

    /// A Failed state with a message.
    pub fn failed(message: impl Into<String>) -> Self {
        State::new(StateType::Failed, "Failed").message(message)
    }

    /// A Cancelled state with a message.
    pub fn cancelled(message: impl Into<String>) -> Self {
        State::new(StateType::Cancelled, "Cancelled").message(message)
    }

    /// Gives the state a custom name ("Skipped"), keeping its type.
    #[must_use]
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Sets the message.
    #[must_use]
    pub fn message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }

    /// Attaches the run's value; a value that cannot be serialized becomes `null`.
    #[must_use]
    pub fn with_value(mut self, value: impl Serialize) -> Self {
        self.value = Some(crate::json::to_value(&value).unwrap_or(Value::Null));
        self
    }

    /// Whether the state is Completed (whatever its name).
    pub fn is_completed(&self) -> bool {
        self.kind == StateType::Completed
    }

    /// Whether the state is Failed or Crashed.
    pub fn is_failed(&self) -> bool {
        matches!(self.kind, StateType::Failed | StateType::Crashed)
    }

    /// Whether the state is Cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.kind == StateType::Cancelled
    }

    /// Whether the run is over (Completed, Failed, Cancelled or Crashed).
    pub fn is_final(&self) -> bool {
        matches!(
            self.kind,
            StateType::Completed | StateType::Failed | StateType::Cancelled | StateType::Crashed
        )
    }

    pub(crate) fn from_wit(state: bindings::State, value: Option<Value>) -> Self {
        use bindings::StateType as W;
        let kind = match state.type_ {
            W::Scheduled => StateType::Scheduled,
            W::Pending => StateType::Pending,
            W::Running => StateType::Running,
            W::Paused => StateType::Paused,
            W::Completed => StateType::Completed,
            W::Failed => StateType::Failed,
            W::Cancelling => StateType::Cancelling,
            W::Cancelled => StateType::Cancelled,
            W::Crashed => StateType::Crashed,
        };
        State {
            kind,
            name: state.name,
            message: state.message,
            value,
        }
    }

    pub(crate) fn to_wit(&self) -> bindings::State {
        use bindings::StateType as W;
        let type_ = match self.kind {
            StateType::Scheduled => W::Scheduled,
            StateType::Pending => W::Pending,
            StateType::Running => W::Running,
            StateType::Paused => W::Paused,
            StateType::Completed => W::Completed,
            StateType::Failed => W::Failed,
            StateType::Cancelling => W::Cancelling,
            StateType::Cancelled => W::Cancelled,
            StateType::Crashed => W::Crashed,
        };
        bindings::State {
            type_,
            name: self.name.clone(),
            message: self.message.clone(),
        }
    }

    /// The error a non-completed state stands for.
    fn error(&self, failure: Option<&Error>, what: &str, id: &str) -> Error {
        if let Some(failure) = failure {
            return failure.clone();
        }
        let message = match &self.message {
            Some(message) => message.clone(),
            None => format!("{what} {id} finished in state {}", self.name),
        };
        let kind = match self.kind {
            StateType::Cancelled | StateType::Cancelling => "cancelled",
            StateType::Crashed => "crashed",
            _ => "upstream",
        };
        Error::msg(message).kind(kind)
    }

    fn decode<T: DeserializeOwned>(&self, what: &str, id: &str) -> Result<T> {
        let value = self.value.clone().unwrap_or(Value::Null);
        crate::json::from_value(value).map_err(|error| {
            Error::msg(format!("cannot decode the value of {what} {id}: {error}"))
                .kind("invalid-result")
                .retryable(false)
        })
    }
}

/// The final state of a task run, with its value (Prefect's `return_state=True`).
///
/// It never fails to exist: a task that failed is a `TaskState` whose [`result`](Self::result)
/// is the error.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct TaskState<T> {
    /// The task run id (empty when the call failed before the host created a run).
    pub task_run_id: String,
    /// The final state, with the value when it completed.
    pub state: State,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    failure: Option<Error>,
    #[serde(skip)]
    marker: PhantomData<fn() -> T>,
}

impl<T> TaskState<T> {
    pub(crate) fn new(task_run_id: String, state: State, failure: Option<Error>) -> Self {
        TaskState {
            task_run_id,
            state,
            failure,
            marker: PhantomData,
        }
    }

    /// A failed state for a call that never reached the host (bad arguments, failed upstream).
    pub(crate) fn local_failure(error: Error) -> Self {
        TaskState::new(
            String::new(),
            State::failed(error.message().to_owned()),
            Some(error),
        )
    }

    /// Whether the task run completed.
    pub fn is_completed(&self) -> bool {
        self.state.is_completed()
    }

    /// Whether the task run failed (or crashed).
    pub fn is_failed(&self) -> bool {
        self.state.is_failed()
    }

    /// The failure reported for the run, if it did not complete.
    pub fn failure(&self) -> Option<&Error> {
        self.failure.as_ref()
    }
}

impl<T: DeserializeOwned> TaskState<T> {
    /// The task's value if it completed, else its error.
    pub fn result(&self) -> Result<T> {
        if self.state.is_completed() {
            self.state.decode("task run", &self.task_run_id)
        } else {
            Err(self
                .state
                .error(self.failure.as_ref(), "task run", &self.task_run_id))
        }
    }
}

impl<T> Clone for TaskState<T> {
    fn clone(&self) -> Self {
        TaskState::new(
            self.task_run_id.clone(),
            self.state.clone(),
            self.failure.clone(),
        )
    }
}

impl<T> std::fmt::Debug for TaskState<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskState")
            .field("task_run_id", &self.task_run_id)
            .field("state", &self.state)
            .field("failure", &self.failure)
            .finish()
    }
}

/// The final state of a subflow run (Prefect's `return_state=True` for flows).
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct FlowState<T> {
    /// The subflow run id (empty when the call failed before the host created a run).
    pub flow_run_id: String,
    /// The final state, with the value when it completed.
    pub state: State,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    failure: Option<Error>,
    #[serde(skip)]
    marker: PhantomData<fn() -> T>,
}

impl<T> From<TaskState<T>> for State {
    /// The task run's final state, to return among others from a flow.
    fn from(state: TaskState<T>) -> State {
        state.state
    }
}

impl<T> From<FlowState<T>> for State {
    /// The subflow run's final state, to return among others from a flow.
    fn from(state: FlowState<T>) -> State {
        state.state
    }
}

impl<T> FlowState<T> {
    pub(crate) fn new(flow_run_id: String, state: State, failure: Option<Error>) -> Self {
        FlowState {
            flow_run_id,
            state,
            failure,
            marker: PhantomData,
        }
    }

    /// Whether the subflow run completed.
    pub fn is_completed(&self) -> bool {
        self.state.is_completed()
    }

    /// Whether the subflow run failed (or crashed).
    pub fn is_failed(&self) -> bool {
        self.state.is_failed()
    }

    /// The failure reported for the run, if it did not complete.
    pub fn failure(&self) -> Option<&Error> {
        self.failure.as_ref()
    }

    /// The error of a run that did not complete.
    pub(crate) fn error(&self) -> Error {
        self.state
            .error(self.failure.as_ref(), "flow run", &self.flow_run_id)
    }
}

impl<T: DeserializeOwned> FlowState<T> {
    /// The subflow's value if it completed, else its error.
    ///
    /// For a flow that returns a [`State`], the value is the one given with
    /// [`State::with_value`]; read [`FlowState::state`] for the state itself.
    pub fn result(&self) -> Result<T> {
        if self.state.is_completed() {
            self.state.decode("flow run", &self.flow_run_id)
        } else {
            Err(self.error())
        }
    }
}

impl<T> Clone for FlowState<T> {
    fn clone(&self) -> Self {
        FlowState::new(
            self.flow_run_id.clone(),
            self.state.clone(),
            self.failure.clone(),
        )
    }
}

impl<T> std::fmt::Debug for FlowState<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowState")
            .field("flow_run_id", &self.flow_run_id)
            .field("state", &self.state)
            .field("failure", &self.failure)
            .finish()
    }
}

/// Parses a value the host sent as JSON text; text that is not JSON is an error of the host.
pub(crate) fn parse_host_value(text: Option<String>) -> (Option<Value>, Option<Error>) {
    match text.map(|text| serde_json::from_str::<Value>(&text)) {
        None => (None, None),
        Some(Ok(value)) => (Some(value), None),
        Some(Err(error)) => (
            None,
            Some(
                Error::msg(format!("the host sent a value that is not JSON: {error}"))
                    .kind("invalid-result"),
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builders_name_and_describe_states() {
        let state = State::failed("no data").named("NoData");
        assert!(state.is_failed() && state.is_final());
        assert_eq!(state.name, "NoData");
        assert_eq!(state.message.as_deref(), Some("no data"));
        let state = State::cancelled("stop");
        assert!(state.is_cancelled() && !state.is_failed());
        assert_eq!(State::completed().with_value(3).value, Some(Value::from(3)));
    }

    #[test]
    fn wit_states_round_trip() {
        let state = State::completed().named("Cached").message("hit");
        let back = State::from_wit(state.to_wit(), None);
        assert_eq!(back, state);
    }

    #[test]
    fn task_state_result_decodes_or_explains() {
        let done: TaskState<i64> =
            TaskState::new("t1".into(), State::completed().with_value(7), None);
        assert_eq!(done.result().unwrap(), 7);

        let failed: TaskState<i64> = TaskState::new(
            "t2".into(),
            State::failed("boom"),
            Some(Error::msg("boom").kind("panic")),
        );
        let error = failed.result().unwrap_err();
        assert_eq!((error.get_kind(), error.message()), ("panic", "boom"));

        let cancelled: TaskState<i64> = TaskState::new(
            "t3".into(),
            State::new(StateType::Cancelled, "Cancelled"),
            None,
        );
        let error = cancelled.result().unwrap_err();
        assert_eq!(error.get_kind(), "cancelled");
        assert!(error.message().contains("t3"), "{error:?}");

        let wrong: TaskState<i64> =
            TaskState::new("t4".into(), State::completed().with_value("x"), None);
        assert_eq!(wrong.result().unwrap_err().get_kind(), "invalid-result");
    }

    #[test]
    fn unit_results_decode_from_a_missing_value() {
        let done: TaskState<()> = TaskState::new("t".into(), State::completed(), None);
        done.result().unwrap();
    }

    #[test]
    fn task_states_serialize_for_flows_that_return_them() {
        let state: TaskState<i64> =
            TaskState::new("t1".into(), State::completed().with_value(1), None);
        let json = serde_json::to_value(&state).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"task_run_id": "t1", "state": {"type": "completed", "name": "Completed", "value": 1}})
        );
    }
}
