//! The flows and tasks of the component, registered by `#[flow]` and `#[task]` through
//! `inventory`, and the exported `guest` interface that dispatches to them.

use serde_json::Value;

use crate::bindings::{self, Failure, FlowOutput, Guest, Manifest, StateEvent, TransactionEvent};
use crate::error::Error;
use crate::hooks::{HookContext, RunKind};
use crate::transaction::TransactionContext;

/// The cache policy of a task (the WIT `cache-policy`).
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CachePolicy {
    None,
    Inputs,
    Custom,
}

/// A flow's or task's orchestration options, as the macros write them (a constant).
#[doc(hidden)]
#[derive(Clone, Copy, Debug)]
pub struct Options {
    pub tags: &'static [&'static str],
    pub retries: u32,
    pub retry_delay_seconds: &'static [f64],
    pub retry_jitter_factor: Option<f64>,
    pub timeout_seconds: Option<f64>,
    pub cache_policy: CachePolicy,
    pub cache_expiration_seconds: Option<f64>,
    pub refresh_cache: bool,
    pub persist_result: Option<bool>,
    pub log_prints: Option<bool>,
    pub run_name_template: Option<&'static str>,
    /// A function naming the run (`flow_run_name = my_fn`), called as the run starts.
    pub run_name_fn: Option<fn() -> String>,
    pub on_completion: &'static [&'static str],
    pub on_failure: &'static [&'static str],
    pub on_cancellation: &'static [&'static str],
    pub on_crashed: &'static [&'static str],
    pub on_running: &'static [&'static str],
    pub on_commit: &'static [&'static str],
    pub on_rollback: &'static [&'static str],
    pub validate_parameters: bool,
    pub max_workers: Option<u32>,
}

impl Options {
    pub const DEFAULT: Options = Options {
        tags: &[],
        retries: 0,
        retry_delay_seconds: &[],
        retry_jitter_factor: None,
        timeout_seconds: None,
        cache_policy: CachePolicy::None,
        cache_expiration_seconds: None,
        refresh_cache: false,
        persist_result: None,
        log_prints: None,
        run_name_template: None,
        run_name_fn: None,
        on_completion: &[],
        on_failure: &[],
        on_cancellation: &[],
        on_crashed: &[],
        on_running: &[],
        on_commit: &[],
        on_rollback: &[],
        validate_parameters: true,
        max_workers: None,
    };
}

/// Runs a flow or task from its JSON parameters.
#[doc(hidden)]
pub type RunFn = fn(&str) -> Result<FlowOutput, Failure>;

/// A flow or task of the component.
#[doc(hidden)]
pub struct Registration {
    pub kind: RunKind,
    pub name: &'static str,
    /// The function's path (`module_path!()::name`, the crate's name first).
    pub function: &'static str,
    pub description: Option<&'static str>,
    pub version: Option<&'static str>,
    pub options: Options,
    pub parameters_schema: fn() -> Value,
    pub run: RunFn,
    pub retry_condition: Option<fn(&Error, u32) -> bool>,
    /// Runs the hook with that name; false if there is none.
    pub run_hook: fn(&str, &HookContext) -> bool,
    /// Runs the transaction hook with that name; `None` if there is none.
    pub run_transaction_hook: fn(&str, &TransactionContext) -> Option<Result<(), Error>>,
}

inventory::collect!(Registration);

fn registrations(kind: RunKind) -> impl Iterator<Item = &'static Registration> {
    inventory::iter::<Registration>
        .into_iter()
        .filter(move |registration| registration.kind == kind)
}

/// A task by name; a flow by its name when no other flow has it, else by function (see
/// [`Registration::function_key`]), as the host names flows.
fn find(kind: RunKind, name: &str) -> Result<&'static Registration, Failure> {
    let mut named = registrations(kind).filter(|r| r.name == name);
    let found = match (named.next(), named.next(), kind) {
        (Some(only), None, _) => Some(only),
        (_, _, RunKind::Flow) => {
            registrations(kind).find(|r| r.shares_name() && r.function_key() == name)
        }
        (first, _, RunKind::Task) => first,
    };
    found.ok_or_else(|| {
        let what = match kind {
            RunKind::Flow => "flow",
            RunKind::Task => "task",
        };
        let mut known: Vec<&str> = registrations(kind).map(|r| r.name).collect();
        known.sort_unstable();
        Error::msg(format!(
            "this component has no {what} named `{name}` (it has: {})",
            known.join(", ")
        ))
        .kind("unknown")
        .retryable(false)
        .into_failure()
    })
}

fn function_key(function: &'static str) -> &'static str {
    function.split_once("::").map_or(function, |(_, path)| path)
}

/// How a call names a flow: by its name, or by its function when another flow of the
/// component has the same name.
#[doc(hidden)]
pub fn flow_id(name: &'static str, function: &'static str) -> &'static str {
    if name_is_shared(RunKind::Flow, name) {
        function_key(function)
    } else {
        name
    }
}

/// Whether two or more flows (or tasks) of the component have this name.
fn name_is_shared(kind: RunKind, name: &str) -> bool {
    registrations(kind)
        .filter(|r| r.name == name)
        .nth(1)
        .is_some()
}

impl Registration {
    /// The function's path inside the crate (`etl` at the root, `jobs::etl` in a module),
    /// as the manifest and the host know it.
    fn function_key(&self) -> &'static str {
        function_key(self.function)
    }

    /// Whether another flow (or task) of the component has its name.
    fn shares_name(&self) -> bool {
        name_is_shared(self.kind, self.name)
    }

    fn definition(&self) -> bindings::Definition {
        let options = &self.options;
        let strings = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect();
        bindings::Definition {
            name: self.name.to_owned(),
            // Only a shared name needs the function to tell its flows apart; a unique one
            // names its flow alone (flows from other crates may share function paths).
            function: self.shares_name().then(|| self.function_key().to_owned()),
            description: self.description.map(str::to_owned),
            version: self.version.map(str::to_owned),
            parameters_schema: (self.parameters_schema)().to_string(),
            options: bindings::Options {
                tags: strings(options.tags),
                retries: options.retries,
                retry_delay_seconds: options.retry_delay_seconds.to_vec(),
                retry_jitter_factor: options.retry_jitter_factor,
                has_retry_condition: self.retry_condition.is_some(),
                timeout_seconds: options.timeout_seconds,
                cache_policy: match options.cache_policy {
                    CachePolicy::None => bindings::CachePolicy::None,
                    CachePolicy::Inputs => bindings::CachePolicy::Inputs,
                    CachePolicy::Custom => bindings::CachePolicy::Custom,
                },
                cache_expiration_seconds: options.cache_expiration_seconds,
                refresh_cache: options.refresh_cache,
                persist_result: options.persist_result,
                log_prints: options.log_prints,
                run_name_template: options.run_name_template.map(str::to_owned),
                has_run_name_fn: options.run_name_fn.is_some(),
                on_completion: strings(options.on_completion),
                on_failure: strings(options.on_failure),
                on_cancellation: strings(options.on_cancellation),
                on_crashed: strings(options.on_crashed),
                on_running: strings(options.on_running),
                on_commit: strings(options.on_commit),
                on_rollback: strings(options.on_rollback),
                validate_parameters: options.validate_parameters,
                max_workers: options.max_workers,
            },
        }
    }
}

impl Registration {
    /// Runs the flow or task, named first by its run-name function when it has one
    /// (Prefect evaluates a callable run name as the run starts, in its context).
    fn start(&self, parameters: &str) -> Result<FlowOutput, Failure> {
        if let Some(name_fn) = self.options.run_name_fn {
            let name = name_fn();
            if let Err(error) = bindings::weir::flow::context::set_run_name(&name) {
                crate::warn!("the run could not be named {name:?}: {error}");
            }
        }
        (self.run)(parameters)
    }
}

fn definitions(kind: RunKind) -> Vec<bindings::Definition> {
    let mut list: Vec<&Registration> = registrations(kind).collect();
    list.sort_by_key(|registration| registration.name);
    list.into_iter().map(Registration::definition).collect()
}

/// The exported `weir:flow/guest` interface.
#[doc(hidden)]
pub struct Component;

impl Guest for Component {
    fn describe() -> Manifest {
        Manifest {
            sdk: concat!("weir-sdk/", env!("CARGO_PKG_VERSION")).to_owned(),
            flows: definitions(RunKind::Flow),
            tasks: definitions(RunKind::Task),
        }
    }

    fn run_flow(name: String, parameters: String) -> Result<FlowOutput, Failure> {
        find(RunKind::Flow, &name)?.start(&parameters)
    }

    fn run_task(name: String, arguments: String) -> Result<String, Failure> {
        find(RunKind::Task, &name)?
            .start(&arguments)
            .map(|output| output.value)
    }

    fn retry_condition(task: String, failure: Failure, attempt: u32) -> bool {
        match find(RunKind::Task, &task).map(|task| task.retry_condition) {
            Ok(Some(condition)) => condition(&Error::from_failure(failure), attempt),
            _ => true,
        }
    }

    fn on_state(event: StateEvent) {
        let kind = match event.kind {
            bindings::RunKind::Flow => RunKind::Flow,
            bindings::RunKind::Task => RunKind::Task,
        };
        let Ok(registration) = find(kind, &event.name) else {
            crate::warn!("no flow or task `{}` to run state hooks for", event.name);
            return;
        };
        let mut context = HookContext::from_event(&event);
        // The host names a flow by its function; its hooks see its name.
        registration.name.clone_into(&mut context.name);
        for hook in &event.hooks {
            if !(registration.run_hook)(hook, &context) {
                crate::warn!("`{}` has no hook named `{hook}`", event.name);
            }
        }
    }

    fn on_transaction(event: TransactionEvent) -> Result<(), String> {
        let registration = find(RunKind::Task, &event.task).map_err(|f| f.message)?;
        let context = TransactionContext::from_event(&event);
        for hook in &event.hooks {
            match (registration.run_transaction_hook)(hook, &context) {
                Some(Ok(())) => {}
                Some(Err(error)) => return Err(format!("hook `{hook}`: {error}")),
                None => return Err(format!("`{}` has no hook named `{hook}`", event.task)),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definitions_carry_the_options() {
        let registration = Registration {
            kind: RunKind::Task,
            name: "add",
            function: "guest::math::add",
            description: Some("Adds."),
            version: Some("2"),
            options: Options {
                retries: 2,
                retry_delay_seconds: &[0.5, 1.0],
                cache_policy: CachePolicy::Custom,
                on_failure: &["notify"],
                on_cancellation: &["cleanup"],
                ..Options::DEFAULT
            },
            parameters_schema: || serde_json::json!({"type": "object"}),
            run: |_| unreachable!(),
            retry_condition: Some(|_, attempt| attempt < 3),
            run_hook: |_, _| false,
            run_transaction_hook: |_, _| None,
        };
        let definition = registration.definition();
        assert_eq!(definition.name, "add");
        // A name no other task has: the name names it, the function is not sent.
        assert_eq!(definition.function, None);
        assert_eq!(registration.function_key(), "math::add");
        assert_eq!(definition.description.as_deref(), Some("Adds."));
        assert_eq!(definition.parameters_schema, r#"{"type":"object"}"#);
        assert_eq!(definition.options.retries, 2);
        assert_eq!(definition.options.retry_delay_seconds, vec![0.5, 1.0]);
        assert!(definition.options.has_retry_condition);
        assert!(matches!(
            definition.options.cache_policy,
            bindings::CachePolicy::Custom
        ));
        assert_eq!(definition.options.on_failure, vec!["notify".to_owned()]);
        assert_eq!(
            definition.options.on_cancellation,
            vec!["cleanup".to_owned()]
        );
        assert!(definition.options.on_crashed.is_empty());
    }

    #[test]
    fn unknown_names_are_failures_of_kind_unknown() {
        let failure = Component::run_task("nope".into(), "{}".into()).unwrap_err();
        assert_eq!(failure.kind, "unknown");
        assert_eq!(failure.retryable, Some(false));
        let failure = Component::run_flow("nope".into(), "{}".into()).unwrap_err();
        assert_eq!(failure.kind, "unknown");
        assert!(Component::retry_condition(
            "nope".into(),
            Error::msg("x").into_failure(),
            1
        ));
    }
}
