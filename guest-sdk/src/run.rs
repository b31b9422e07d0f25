//! The guest side of a run: decoding the parameters a flow or task receives and encoding what
//! it returns. The macros call these; dispatch on the concrete return type is done with autoref
//! specialization on wrapper types (the method on the wrapper itself wins over the one on its
//! reference), so no marker ever travels in the JSON.
//!
//! Everything here is reached only through `__private` by generated code.
#![allow(missing_docs)]

use std::fmt::Display;
use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::bindings::{Failure, FlowOutput};
use crate::error::{Error, Result};
use crate::state::{FlowState, State, StateType, TaskState};
use crate::task::TaskFuture;

fn invalid_parameters(message: String) -> Failure {
    Error::msg(message)
        .kind("invalid-parameters")
        .retryable(false)
        .into_failure()
}

/// The parameters of a run, a JSON object keyed by parameter name.
pub struct ParsedArguments(Map<String, Value>);

impl ParsedArguments {
    pub fn parse(text: &str) -> Result<Self, Failure> {
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => Ok(ParsedArguments(map)),
            // No parameters at all is the same as none given.
            Ok(Value::Null) => Ok(ParsedArguments(Map::new())),
            Ok(other) => Err(invalid_parameters(format!(
                "parameters must be a JSON object keyed by parameter name, not {other}"
            ))),
            Err(error) => Err(invalid_parameters(format!(
                "parameters are not valid JSON: {error}"
            ))),
        }
    }

    /// A parameter without default; missing, it is `null` (which an `Option` accepts).
    pub fn required<T: DeserializeOwned>(&mut self, name: &str) -> Result<T, Failure> {
        match self.0.remove(name) {
            Some(value) => decode(name, value),
            None => serde_json::from_value(Value::Null)
                .map_err(|_| invalid_parameters(format!("missing parameter `{name}`"))),
        }
    }

    /// A parameter with a default (`#[default(expr)]`).
    pub fn or_default<T: DeserializeOwned>(
        &mut self,
        name: &str,
        default: impl FnOnce() -> T,
    ) -> Result<T, Failure> {
        match self.0.remove(name) {
            Some(value) => decode(name, value),
            None => Ok(default()),
        }
    }
}

fn decode<T: DeserializeOwned>(name: &str, value: Value) -> Result<T, Failure> {
    crate::json::from_value(value)
        .map_err(|error| invalid_parameters(format!("invalid parameter `{name}`: {error}")))
}

fn value_output<T: Serialize + ?Sized>(
    value: &T,
    state: Option<&State>,
) -> Result<FlowOutput, Failure> {
    let value = crate::json::to_string(value).map_err(|error| {
        Error::msg(format!("cannot serialize the return value: {error}"))
            .kind("invalid-result")
            .retryable(false)
            .into_failure()
    })?;
    Ok(FlowOutput {
        value,
        state: state.map(State::to_wit),
    })
}

/// What a flow or task returned, to encode as its output.
pub struct Returned<T>(pub T);

/// A returned [`State`] is the flow's final state (its value is the state's value).
pub trait ReturnState {
    fn __weir_output(self) -> Result<FlowOutput, Failure>;
}

impl ReturnState for Returned<State> {
    fn __weir_output(self) -> Result<FlowOutput, Failure> {
        let state = self.0;
        value_output(state.value.as_ref().unwrap_or(&Value::Null), Some(&state))
    }
}

/// Something a flow returns whose final state decides the flow's (Prefect's returned
/// states and futures).
pub trait FinalState {
    fn final_state(&self) -> State;
}

impl FinalState for State {
    fn final_state(&self) -> State {
        self.clone()
    }
}

impl<X> FinalState for TaskState<X> {
    fn final_state(&self) -> State {
        self.state.clone()
    }
}

impl<X> FinalState for FlowState<X> {
    fn final_state(&self) -> State {
        self.state.clone()
    }
}

/// A returned future is waited for, and counts as the state it ends in.
impl<X> FinalState for TaskFuture<X> {
    fn final_state(&self) -> State {
        self.state().state
    }
}

/// The state of a flow that returned several states, as Prefect decides it: failed when
/// any failed, else cancelled when any was, else completed.
fn collection_state(states: &[State]) -> State {
    let total = states.len();
    let count = |kind: StateType| states.iter().filter(|s| s.kind == kind).count();
    let failed = count(StateType::Failed) + count(StateType::Crashed);
    let cancelled = count(StateType::Cancelled);
    let unfinished = states.iter().filter(|s| !s.is_final()).count();
    if failed > 0 {
        State::failed(format!("{failed}/{total} states failed."))
    } else if cancelled > 0 {
        State::cancelled(format!("{cancelled}/{total} states cancelled."))
    } else if unfinished > 0 {
        State::failed(format!("{unfinished}/{total} states are not final."))
    } else {
        State::completed().message("All states completed.")
    }
}

/// The output of a flow that returned one task or subflow state (or future): that state
/// is the flow's, with its value.
fn single_output(state: State) -> Result<FlowOutput, Failure> {
    value_output(state.value.as_ref().unwrap_or(&Value::Null), Some(&state))
}

/// The output of a flow that returned several states: their collective state, with the
/// returned states kept as the value.
fn collection_output<S: Serialize>(states: &[State], value: &S) -> Result<FlowOutput, Failure> {
    value_output(value, Some(&collection_state(states)))
}

impl<X> ReturnState for Returned<TaskState<X>> {
    fn __weir_output(self) -> Result<FlowOutput, Failure> {
        single_output(self.0.state)
    }
}

impl<X> ReturnState for Returned<FlowState<X>> {
    fn __weir_output(self) -> Result<FlowOutput, Failure> {
        single_output(self.0.state)
    }
}

impl<X> ReturnState for Returned<TaskFuture<X>> {
    fn __weir_output(self) -> Result<FlowOutput, Failure> {
        single_output(self.0.final_state())
    }
}

impl<S: FinalState + Serialize> ReturnState for Returned<Vec<S>> {
    fn __weir_output(self) -> Result<FlowOutput, Failure> {
        let states: Vec<State> = self.0.iter().map(FinalState::final_state).collect();
        collection_output(&states, &self.0)
    }
}

/// Returned futures are waited for; the value keeps their final states.
impl<X> ReturnState for Returned<Vec<TaskFuture<X>>> {
    fn __weir_output(self) -> Result<FlowOutput, Failure> {
        let states: Vec<State> = self.0.iter().map(FinalState::final_state).collect();
        collection_output(&states, &states)
    }
}

macro_rules! tuple_states {
    ($($name:ident)+) => {
        /// A tuple of states, futures or both (Prefect's `return x, y, z`).
        impl<$($name: FinalState),+> ReturnState for Returned<($($name,)+)> {
            #[allow(non_snake_case)]
            fn __weir_output(self) -> Result<FlowOutput, Failure> {
                let ($($name,)+) = &self.0;
                let states = vec![$($name.final_state()),+];
                collection_output(&states, &states)
            }
        }
    };
}
tuple_states!(A B);
tuple_states!(A B C);
tuple_states!(A B C D);
tuple_states!(A B C D E);
tuple_states!(A B C D E F);

/// Any other value is serialized, and the host decides the state.
pub trait ReturnValue {
    fn __weir_output(self) -> Result<FlowOutput, Failure>;
}

impl<T: Serialize> ReturnValue for &Returned<T> {
    fn __weir_output(self) -> Result<FlowOutput, Failure> {
        value_output(&self.0, None)
    }
}

/// The output of a task: its value, serialized.
pub fn task_output<T: Serialize>(value: &T) -> Result<FlowOutput, Failure> {
    value_output(value, None)
}

/// The error a flow or task returned, to convert to a failure.
pub struct ReturnedError<E>(pub E);

/// A `weir_sdk::Error` keeps its kind, retryability and details.
pub trait ErrorExact {
    fn __weir_error(self) -> Failure;
}

impl ErrorExact for ReturnedError<Error> {
    fn __weir_error(self) -> Failure {
        self.0.into_failure()
    }
}

/// Any other error is its message, of kind "error".
pub trait ErrorDisplay {
    fn __weir_error(self) -> Failure;
}

impl<E: Display> ErrorDisplay for &ReturnedError<E> {
    fn __weir_error(self) -> Failure {
        Error::msg(&self.0).into_failure()
    }
}

/// Decodes what a subflow call returned, as the flow's declared return type. The macro
/// calls `(&&Decode::<T>::new()).__weir_decode(..)`: a [`State`] flow gives its state, a
/// flow whose type deserializes gives its value, and any other (futures) an error.
pub struct Decode<T>(PhantomData<fn() -> T>);

impl<T> Decode<T> {
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        Decode(PhantomData)
    }
}

impl<T> Clone for Decode<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Decode<T> {}

/// A flow declared to return a [`State`] gives its final state (with its value).
pub trait DecodeState {
    type Output;
    fn __weir_decode(self, state: FlowState<Self::Output>) -> Result<Self::Output>;
}

impl DecodeState for &&Decode<State> {
    type Output = State;
    fn __weir_decode(self, state: FlowState<State>) -> Result<State> {
        if state.is_completed() {
            Ok(state.state)
        } else {
            Err(state.error())
        }
    }
}

/// A flow whose return type deserializes gives its value.
pub trait DecodeValue {
    type Output;
    fn __weir_decode(self, state: FlowState<Self::Output>) -> Result<Self::Output>;
}

impl<T: DeserializeOwned> DecodeValue for &Decode<T> {
    type Output = T;
    fn __weir_decode(self, state: FlowState<T>) -> Result<T> {
        state.result()
    }
}

/// A flow returning what cannot cross runs (task futures) has no value for its caller.
pub trait DecodeOpaque {
    type Output;
    fn __weir_decode(self, state: FlowState<Self::Output>) -> Result<Self::Output>;
}

impl<T> DecodeOpaque for Decode<T> {
    type Output = T;
    fn __weir_decode(self, state: FlowState<T>) -> Result<T> {
        Err(Error::msg(format!(
            "subflow run {} returns task futures, which do not cross flow runs; call it with \
             `call_state` to get its final state",
            state.flow_run_id
        ))
        .kind("invalid-result"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::StateType;
    use serde_json::json;

    #[test]
    fn parameters_decode_by_name() {
        let mut args = ParsedArguments::parse(r#"{"x": 1, "name": "a"}"#).unwrap();
        assert_eq!(args.required::<i64>("x").unwrap(), 1);
        assert_eq!(args.required::<Option<u8>>("missing").unwrap(), None);
        assert_eq!(
            args.or_default::<String>("greeting", || "hi".into())
                .unwrap(),
            "hi"
        );
        assert_eq!(
            args.or_default::<String>("name", || "b".into()).unwrap(),
            "a"
        );
    }

    #[test]
    fn bad_parameters_name_the_parameter_and_are_not_retryable() {
        let mut args = ParsedArguments::parse(r#"{"x": "one"}"#).unwrap();
        let failure = args.required::<i64>("x").unwrap_err();
        assert_eq!(failure.kind, "invalid-parameters");
        assert_eq!(failure.retryable, Some(false));
        assert!(failure.message.contains("`x`"), "{}", failure.message);

        let failure = args.required::<i64>("y").unwrap_err();
        assert_eq!(failure.message, "missing parameter `y`");

        for text in ["[1]", "{"] {
            let failure = ParsedArguments::parse(text).err().unwrap();
            assert_eq!(failure.kind, "invalid-parameters");
        }
        assert!(ParsedArguments::parse("null").is_ok());
    }

    #[test]
    fn values_are_serialized_without_a_state() {
        let output = Returned(vec![1, 2]).__weir_output().unwrap();
        assert_eq!(output.value, "[1,2]");
        assert!(output.state.is_none());
    }

    #[test]
    fn returned_states_become_the_final_state() {
        let output = Returned(State::completed().named("Skipped").with_value("none"))
            .__weir_output()
            .unwrap();
        assert_eq!(output.value, r#""none""#);
        let state = output.state.unwrap();
        assert_eq!(state.name, "Skipped");
        assert!(matches!(state.type_, StateType::Completed));

        let output = Returned(State::failed("bad")).__weir_output().unwrap();
        assert_eq!(output.value, "null");
        assert!(matches!(output.state.unwrap().type_, StateType::Failed));
    }

    #[test]
    fn returned_task_states_fail_the_flow_when_one_failed() {
        let ok: TaskState<i64> = TaskState::new("a".into(), State::completed().with_value(1), None);
        let bad: TaskState<i64> = TaskState::new("b".into(), State::failed("x"), None);

        let output = Returned(vec![ok.clone(), ok.clone()])
            .__weir_output()
            .unwrap();
        assert!(matches!(output.state.unwrap().type_, StateType::Completed));

        let output = Returned(vec![ok.clone(), bad.clone()])
            .__weir_output()
            .unwrap();
        let state = output.state.unwrap();
        assert!(matches!(state.type_, StateType::Failed));
        assert_eq!(state.message.as_deref(), Some("1/2 states failed."));
        let value: Value = serde_json::from_str(&output.value).unwrap();
        assert_eq!(value[0]["task_run_id"], "a");

        // One failed state returned alone is the flow's state.
        let output = Returned(bad.clone()).__weir_output().unwrap();
        let state = output.state.unwrap();
        assert!(matches!(state.type_, StateType::Failed));
        assert_eq!(state.message.as_deref(), Some("x"));

        // A tuple, and a list mixing task and subflow states.
        let sub: FlowState<i64> = FlowState::new("f".into(), State::completed(), None);
        let output = Returned((ok.clone(), bad.clone(), sub))
            .__weir_output()
            .unwrap();
        assert_eq!(
            output.state.unwrap().message.as_deref(),
            Some("1/3 states failed.")
        );
        let sub: FlowState<i64> = FlowState::new("f".into(), State::cancelled("stop"), None);
        let mixed: Vec<State> = vec![ok.clone().into(), sub.into()];
        let state = Returned(mixed).__weir_output().unwrap().state.unwrap();
        assert!(matches!(state.type_, StateType::Cancelled));
        assert_eq!(state.message.as_deref(), Some("1/2 states cancelled."));
        let state = Returned(vec![ok]).__weir_output().unwrap().state.unwrap();
        assert_eq!(state.message.as_deref(), Some("All states completed."));
    }

    #[test]
    fn errors_keep_their_kind_or_use_their_message() {
        let failure = ReturnedError(Error::msg("x").kind("quota").retryable(false)).__weir_error();
        assert_eq!(
            (failure.kind.as_str(), failure.retryable),
            ("quota", Some(false))
        );

        let failure = ReturnedError("plain text").__weir_error();
        assert_eq!(
            (failure.kind.as_str(), failure.message.as_str()),
            ("error", "plain text")
        );

        let io = std::io::Error::other("disk");
        let failure = ReturnedError(io).__weir_error();
        assert_eq!(failure.message, "disk");
    }

    #[test]
    #[allow(clippy::needless_borrow)] // the macro's dispatch, as it writes it
    fn subflow_results_decode_as_the_declared_type() {
        let done: FlowState<i64> =
            FlowState::new("f".into(), State::completed().with_value(5), None);
        assert_eq!((&&Decode::<i64>::new()).__weir_decode(done).unwrap(), 5);

        let skipped: FlowState<State> =
            FlowState::new("f".into(), State::completed().named("Skipped"), None);
        let state = (&&Decode::<State>::new()).__weir_decode(skipped).unwrap();
        assert_eq!(state.name, "Skipped");

        let failed: FlowState<State> = FlowState::new("f".into(), State::failed("no"), None);
        assert_eq!(
            (&&Decode::<State>::new())
                .__weir_decode(failed)
                .unwrap_err()
                .message(),
            "no"
        );
        let _ = json!(null);
    }
}
