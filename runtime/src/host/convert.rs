//! Every conversion between the WIT world's types and Weir's own, in one place.

use super::run::RunInfo;
use super::weir::flow::{artifacts, flows, tasks};
use super::wit;
use crate::model::failure::Failure;
use crate::model::log::LogLevel;
use crate::model::manifest::{CachePolicy, Definition, Manifest, Options};
use crate::model::run::{
    Artifact, ArtifactData, CallOptions, Dependency, FlowOutcome, PauseRequest, TaskAttempt,
    TaskOutcome, TaskOverrides,
};
use crate::model::state::{State, StateType};
use serde_json::Value;

/// A failure a guest returned. Its kind stays the guest's, whatever it says: a guest
/// returning "timeout" did not time out.
pub(crate) fn failure_from_wit(f: wit::Failure) -> Failure {
    Failure::guest(
        f.kind,
        f.message,
        f.retryable,
        f.details.and_then(|d| serde_json::from_str(&d).ok()),
    )
}

pub(crate) fn failure_to_wit(f: &Failure) -> wit::Failure {
    wit::Failure {
        kind: f.kind.as_str().to_owned(),
        message: f.message.clone(),
        retryable: f.retryable,
        details: f.details.as_ref().map(Value::to_string),
    }
}

pub(crate) fn state_to_wit(s: &State) -> wit::State {
    wit::State {
        type_: match s.kind {
            StateType::Scheduled => wit::StateType::Scheduled,
            StateType::Pending => wit::StateType::Pending,
            StateType::Running => wit::StateType::Running,
            StateType::Paused => wit::StateType::Paused,
            StateType::Completed => wit::StateType::Completed,
            StateType::Failed => wit::StateType::Failed,
            StateType::Cancelling => wit::StateType::Cancelling,
            StateType::Cancelled => wit::StateType::Cancelled,
            StateType::Crashed => wit::StateType::Crashed,
        },
        name: s.name.clone(),
        message: s.message.clone(),
    }
}

pub(crate) fn state_type_from_wit(t: wit::StateType) -> StateType {
    match t {
        wit::StateType::Scheduled => StateType::Scheduled,
        wit::StateType::Pending => StateType::Pending,
        wit::StateType::Running => StateType::Running,
        wit::StateType::Paused => StateType::Paused,
        wit::StateType::Completed => StateType::Completed,
        wit::StateType::Failed => StateType::Failed,
        wit::StateType::Cancelling => StateType::Cancelling,
        wit::StateType::Cancelled => StateType::Cancelled,
        wit::StateType::Crashed => StateType::Crashed,
    }
}

pub(crate) fn task_outcome_to_wit(o: &TaskOutcome) -> tasks::TaskOutcome {
    tasks::TaskOutcome {
        task_run_id: o.task_run_id.clone(),
        state: state_to_wit(&o.state),
        value: o.value.clone(),
        failure: o.failure.as_ref().map(failure_to_wit),
    }
}

pub(crate) fn flow_outcome_to_wit(o: &FlowOutcome) -> flows::FlowOutcome {
    flows::FlowOutcome {
        flow_run_id: o.flow_run_id.clone(),
        state: state_to_wit(&o.state),
        value: o.value.clone(),
        failure: o.failure.as_ref().map(failure_to_wit),
    }
}

fn cache_policy_from_wit(p: wit::CachePolicy) -> CachePolicy {
    match p {
        wit::CachePolicy::None => CachePolicy::None,
        wit::CachePolicy::Inputs => CachePolicy::Inputs,
        wit::CachePolicy::Custom => CachePolicy::Custom,
    }
}

pub(crate) fn call_options_from_wit(o: tasks::CallOptions) -> CallOptions {
    let v = o.overrides;
    CallOptions {
        overrides: TaskOverrides {
            name: v.name,
            run_name_template: v.run_name_template,
            retries: v.retries,
            retry_delay_seconds: v.retry_delay_seconds,
            retry_jitter_factor: v.retry_jitter_factor,
            timeout_seconds: v.timeout_seconds,
            cache_policy: v.cache_policy.map(cache_policy_from_wit),
            cache_expiration_seconds: v.cache_expiration_seconds,
            refresh_cache: v.refresh_cache,
            persist_result: v.persist_result,
            log_prints: v.log_prints,
        },
        wait_for: o
            .wait_for
            .into_iter()
            .map(|d| Dependency {
                task_run_id: d.task_run_id,
                allow_failure: d.allow_failure,
                argument: d.argument,
            })
            .collect(),
        cache_key: o.cache_key,
        tags: o.tags,
    }
}

pub(crate) fn pause_request_from_wit(r: flows::PauseRequest) -> PauseRequest {
    PauseRequest {
        timeout_seconds: r.timeout_seconds,
        key: r.key,
        description: r.description,
        input_schema: r.input_schema,
        suspend: r.suspend,
    }
}

pub(crate) fn log_level_from_wit(level: wit::LogLevel) -> LogLevel {
    match level {
        wit::LogLevel::Debug => LogLevel::Debug,
        wit::LogLevel::Info => LogLevel::Info,
        wit::LogLevel::Warning => LogLevel::Warning,
        wit::LogLevel::Error => LogLevel::Error,
        wit::LogLevel::Critical => LogLevel::Critical,
    }
}

pub(crate) fn artifact_from_wit(a: artifacts::Artifact) -> Artifact {
    Artifact {
        key: a.key,
        description: a.description,
        data: match a.data {
            artifacts::ArtifactData::Markdown(md) => ArtifactData::Markdown(md),
            artifacts::ArtifactData::Table(table) => ArtifactData::Table(table),
            artifacts::ArtifactData::Link(link) => ArtifactData::Link {
                url: link.url,
                text: link.text,
            },
            artifacts::ArtifactData::Progress(p) => ArtifactData::Progress(p),
        },
    }
}

/// What a flow or task instance knows about its run; `task_run_name` is the task run's
/// name when the attempt renamed it.
pub(crate) fn run_context_to_wit(
    run: RunInfo<'_>,
    task: Option<&TaskAttempt>,
    task_run_name: Option<&str>,
) -> wit::RunContext {
    wit::RunContext {
        flow_run_id: run.flow_run_id.to_owned(),
        flow_run_name: run.flow_run_name,
        flow_name: run.flow_name.to_owned(),
        parameters: run.parameters.to_owned(),
        task_run_id: task.map(|t| t.task_run_id.clone()),
        task_run_name: task.map(|t| task_run_name.unwrap_or(&t.task_run_name).to_owned()),
        task_name: task.map(|t| t.task_name.clone()),
        task_run_parameters: task.map(|t| t.arguments.clone()),
        attempt: task.map_or(run.attempt, |t| t.attempt),
        tags: task.map_or_else(|| run.tags.to_vec(), |t| t.tags.clone()),
        parent_flow_run_id: run.parent_flow_run_id.map(str::to_owned),
        scheduled_start: None,
    }
}

/// A component's manifest as `describe` returned it, checked: schemas are JSON, and
/// every duration and factor is within bounds (the error names the flow or task and
/// the field), so nothing a guest declares can upset the host later.
pub(crate) fn manifest_from_wit(m: wit::Manifest) -> Result<Manifest, String> {
    let mut problems = Vec::new();
    let mut convert = |d: wit::Definition, kind: &str| -> Result<Definition, String> {
        let parameters: Value = serde_json::from_str(&d.parameters_schema).map_err(|e| {
            format!(
                "{kind} '{}' has a parameter schema that is not JSON: {e}",
                d.name
            )
        })?;
        if kind == "flow"
            && let Err(e) = crate::model::manifest::check_name("flow", &d.name)
        {
            problems.push(e);
        }
        let o = d.options;
        let mut options = Options {
            tags: o.tags,
            retries: o.retries,
            retry_delay_seconds: o.retry_delay_seconds,
            retry_jitter_factor: o.retry_jitter_factor,
            has_retry_condition: o.has_retry_condition,
            timeout_seconds: o.timeout_seconds,
            cache_policy: cache_policy_from_wit(o.cache_policy),
            cache_expiration_seconds: o.cache_expiration_seconds,
            refresh_cache: o.refresh_cache,
            persist_result: o.persist_result,
            log_prints: o.log_prints,
            run_name_template: o.run_name_template,
            has_run_name_fn: o.has_run_name_fn,
            on_completion: o.on_completion,
            on_failure: o.on_failure,
            on_cancellation: o.on_cancellation,
            on_crashed: o.on_crashed,
            on_running: o.on_running,
            on_commit: o.on_commit,
            on_rollback: o.on_rollback,
            validate_parameters: o.validate_parameters,
            max_workers: o.max_workers,
        };
        problems.extend(
            options
                .validate()
                .into_iter()
                .map(|e| format!("{kind} '{}': {e}", d.name)),
        );
        Ok(Definition {
            name: d.name,
            function: d.function,
            description: d.description,
            version: d.version,
            parameters,
            options,
        })
    };
    let flows = m
        .flows
        .into_iter()
        .map(|d| convert(d, "flow"))
        .collect::<Result<_, _>>()?;
    let tasks = m
        .tasks
        .into_iter()
        .map(|d| convert(d, "task"))
        .collect::<Result<_, _>>()?;
    let manifest = Manifest {
        sdk: m.sdk,
        flows,
        tasks,
        background: vec![],
    };
    problems.extend(manifest.check_identities());
    if !problems.is_empty() {
        return Err(problems.join("; "));
    }
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::failure::FailureKind;

    #[test]
    fn a_guest_cannot_name_a_host_kind() {
        for kind in ["timeout", "panic", "trap", "memory", "cpu", "limit"] {
            let f = failure_from_wit(wit::Failure {
                kind: kind.into(),
                message: "forged".into(),
                retryable: None,
                details: None,
            });
            assert_eq!(f.kind, FailureKind::Guest(kind.into()));
            assert!(!f.kind.stopped_by_host());
            assert_eq!(failure_to_wit(&f).kind, kind);
            let json = serde_json::to_value(&f).unwrap();
            assert_eq!(json["origin"], "guest");
        }
        let host = Failure::new(FailureKind::Timeout, "late");
        assert_eq!(failure_to_wit(&host).kind, "timeout");
        assert!(host.kind.stopped_by_host());
        assert_eq!(serde_json::to_value(&host).unwrap()["origin"], "host");
    }

    fn definition(options: wit::Options) -> wit::Definition {
        wit::Definition {
            name: "f".into(),
            function: None,
            description: None,
            version: None,
            parameters_schema: "{}".into(),
            options,
        }
    }

    fn options() -> wit::Options {
        wit::Options {
            tags: vec![],
            retries: 0,
            retry_delay_seconds: vec![],
            retry_jitter_factor: None,
            has_retry_condition: false,
            timeout_seconds: None,
            cache_policy: wit::CachePolicy::None,
            cache_expiration_seconds: None,
            refresh_cache: false,
            persist_result: None,
            log_prints: None,
            run_name_template: None,
            has_run_name_fn: false,
            on_completion: vec![],
            on_failure: vec![],
            on_cancellation: vec![],
            on_crashed: vec![],
            on_running: vec![],
            on_commit: vec![],
            on_rollback: vec![],
            validate_parameters: true,
            max_workers: None,
        }
    }

    fn load(o: wit::Options) -> Result<Manifest, String> {
        manifest_from_wit(wit::Manifest {
            sdk: "t".into(),
            flows: vec![definition(o)],
            tasks: vec![],
        })
    }

    #[test]
    fn every_duration_of_a_manifest_is_bounded_and_named() {
        let cases: Vec<(wit::Options, &str)> = vec![
            (
                wit::Options {
                    timeout_seconds: Some(1e20),
                    ..options()
                },
                "'timeout_seconds'",
            ),
            (
                wit::Options {
                    timeout_seconds: Some(-1.0),
                    ..options()
                },
                "'timeout_seconds'",
            ),
            (
                wit::Options {
                    timeout_seconds: Some(f64::NAN),
                    ..options()
                },
                "'timeout_seconds'",
            ),
            (
                wit::Options {
                    retry_delay_seconds: vec![1.0, 1e20],
                    ..options()
                },
                "'retry_delay_seconds'",
            ),
            (
                wit::Options {
                    retry_delay_seconds: vec![f64::INFINITY],
                    ..options()
                },
                "'retry_delay_seconds'",
            ),
            (
                wit::Options {
                    retry_delay_seconds: vec![1.0; 5000],
                    ..options()
                },
                "'retry_delay_seconds'",
            ),
            (
                wit::Options {
                    retry_jitter_factor: Some(f64::NAN),
                    ..options()
                },
                "'retry_jitter_factor'",
            ),
            (
                wit::Options {
                    cache_expiration_seconds: Some(1e20),
                    ..options()
                },
                "'cache_expiration'",
            ),
        ];
        for (o, field) in cases {
            let e = load(o).expect_err(field);
            assert!(e.starts_with("flow 'f': "), "{e}");
            assert!(e.contains(field), "{field}: {e}");
        }
    }

    #[test]
    fn a_zero_timeout_loads_as_no_timeout() {
        let m = load(wit::Options {
            timeout_seconds: Some(0.0),
            ..options()
        })
        .unwrap();
        assert_eq!(m.flows[0].options.timeout_seconds, None);
        let m = load(wit::Options {
            timeout_seconds: Some(2.5),
            ..options()
        })
        .unwrap();
        assert_eq!(m.flows[0].options.timeout_seconds, Some(2.5));
    }
}
