//! A hostile component: built against the `weir:flow` world with wit-bindgen alone, so
//! nothing stops it from declaring options no SDK would let through. The host must
//! refuse it at upload, naming the field, and never panic on it.

wit_bindgen::generate!({
    path: "../../../wit",
    world: "weir:flow/component",
});

use exports::weir::flow::guest::Guest;
use weir::flow::types::{
    CachePolicy, Definition, Failure, FlowOutput, Manifest, Options, StateEvent, TransactionEvent,
};

struct Hostile;

fn options() -> Options {
    Options {
        tags: Vec::new(),
        retries: 0,
        retry_delay_seconds: Vec::new(),
        retry_jitter_factor: None,
        has_retry_condition: false,
        timeout_seconds: None,
        cache_policy: CachePolicy::None,
        cache_expiration_seconds: None,
        refresh_cache: false,
        persist_result: None,
        log_prints: None,
        run_name_template: None,
        has_run_name_fn: false,
        on_completion: Vec::new(),
        on_failure: Vec::new(),
        on_cancellation: Vec::new(),
        on_crashed: Vec::new(),
        on_running: Vec::new(),
        on_commit: Vec::new(),
        on_rollback: Vec::new(),
        validate_parameters: true,
        max_workers: None,
    }
}

fn definition(name: &str, options: Options) -> Definition {
    Definition {
        name: name.into(),
        function: None,
        description: None,
        version: None,
        parameters_schema: r#"{"type": "object"}"#.into(),
        options,
    }
}

impl Guest for Hostile {
    fn describe() -> Manifest {
        Manifest {
            sdk: "hostile 0".into(),
            flows: vec![definition(
                "absurd_timeout",
                Options {
                    timeout_seconds: Some(1e20),
                    retries: 1,
                    retry_delay_seconds: vec![1e20],
                    ..options()
                },
            )],
            tasks: vec![definition(
                "absurd_cache",
                Options {
                    cache_policy: CachePolicy::Inputs,
                    cache_expiration_seconds: Some(1e20),
                    ..options()
                },
            )],
        }
    }

    fn run_flow(_name: String, _parameters: String) -> Result<FlowOutput, Failure> {
        Ok(FlowOutput {
            value: "null".into(),
            state: None,
        })
    }

    fn run_task(_name: String, _arguments: String) -> Result<String, Failure> {
        Ok("null".into())
    }

    fn retry_condition(_task: String, _failure: Failure, _attempt: u32) -> bool {
        true
    }

    fn on_state(_event: StateEvent) {}

    fn on_transaction(_event: TransactionEvent) -> Result<(), String> {
        Ok(())
    }
}

export!(Hostile);
