//! A hostile component: its flow's parameter schema is a 40-level DAG of `$ref`s (each
//! level refers to the next twice), otherwise valid. Checking a value against it the
//! naive way tries 2^40 paths. The host must refuse it at upload, quickly.

wit_bindgen::generate!({
    path: "../../../wit",
    world: "weir:flow/component",
});

use exports::weir::flow::guest::Guest;
use weir::flow::types::{
    CachePolicy, Definition, Failure, FlowOutput, Manifest, Options, StateEvent, TransactionEvent,
};

struct Bomb;

const LEVELS: usize = 40;

fn schema() -> String {
    let mut defs = Vec::with_capacity(LEVELS + 1);
    for i in 0..LEVELS {
        let next = format!("#/$defs/l{}", i + 1);
        defs.push(format!(
            r##""l{i}": {{"anyOf": [{{"$ref": "{next}"}}, {{"$ref": "{next}"}}]}}"##
        ));
    }
    defs.push(format!(r##""l{LEVELS}": {{"type": "integer"}}"##));
    format!(
        r##"{{"type": "object", "properties": {{"x": {{"$ref": "#/$defs/l0"}}}}, "$defs": {{{}}}}}"##,
        defs.join(", ")
    )
}

impl Guest for Bomb {
    fn describe() -> Manifest {
        Manifest {
            sdk: "schema-bomb 0".into(),
            flows: vec![Definition {
                name: "bomb".into(),
                function: None,
                description: None,
                version: None,
                parameters_schema: schema(),
                options: Options {
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
                },
            }],
            tasks: Vec::new(),
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

export!(Bomb);
