//! Subflow calls.

use crate::bindings::weir::flow::flows as host;
use crate::error::Error;
use crate::input::Arguments;
use crate::state::{FlowState, State, parse_host_value};

#[doc(hidden)]
pub fn call_flow<T>(flow: &str, parameters: Arguments) -> FlowState<T> {
    // A subflow call waits for the task runs its arguments come from.
    let parameters = match parameters.into_waited() {
        Ok((parameters, _)) => parameters.to_string(),
        Err(error) => {
            return FlowState::new(
                String::new(),
                State::failed(error.message().to_owned()),
                Some(error),
            );
        }
    };
    let outcome = host::call(flow, &parameters);
    let (value, parse_error) = parse_host_value(outcome.value);
    let failure = outcome.failure.map(Error::from_failure).or(parse_error);
    FlowState::new(
        outcome.flow_run_id,
        State::from_wit(outcome.state, value),
        failure,
    )
}
