//! Automations (Prefect's automations): a trigger and the actions it sets off. A trigger
//! watches flow runs (one entering a state, N times within a window; one staying in a
//! state too long) or events posted to the automation; each event fires the automation
//! once, across restarts and nodes, and its actions run in order, retried until done.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// What sets an automation off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Trigger {
    /// A flow run entering one of `states` (state names such as `Failed`, `Crashed`,
    /// `Completed`, `Cancelled`, `Late`, `Paused`, `Running`, or types such as `FAILED`),
    /// `threshold` times within `within_seconds` (once, by default).
    FlowRunState {
        #[serde(default)]
        deployments: Vec<String>,
        #[serde(default)]
        tags: Vec<String>,
        states: Vec<String>,
        #[serde(default = "one")]
        threshold: u32,
        #[serde(default)]
        within_seconds: f64,
    },
    /// A flow run staying in `state` for more than `for_seconds` (stuck Running, Late,
    /// Pending...): fires once per stay.
    FlowRunStuck {
        #[serde(default)]
        deployments: Vec<String>,
        #[serde(default)]
        tags: Vec<String>,
        state: String,
        for_seconds: f64,
    },
    /// An event posted to the automation (`POST /api/automations/{name}/events`).
    Event {},
}

fn one() -> u32 {
    1
}

impl Trigger {
    /// In words, for lists: "a run enters Failed|Crashed 3 times in 600s".
    pub fn describe(&self) -> String {
        let scope = |deployments: &[String], tags: &[String]| {
            let mut parts = Vec::new();
            if !deployments.is_empty() {
                parts.push(format!("of {}", deployments.join("|")));
            }
            if !tags.is_empty() {
                parts.push(format!("tagged {}", tags.join("|")));
            }
            parts.iter().map(|p| format!(" {p}")).collect::<String>()
        };
        match self {
            Trigger::FlowRunState {
                deployments,
                tags,
                states,
                threshold,
                within_seconds,
            } => {
                let times = if *threshold > 1 {
                    format!(" {threshold} times in {within_seconds}s")
                } else {
                    String::new()
                };
                format!(
                    "a run{} enters {}{times}",
                    scope(deployments, tags),
                    states.join("|")
                )
            }
            Trigger::FlowRunStuck {
                deployments,
                tags,
                state,
                for_seconds,
            } => format!(
                "a run{} stays {state} for {for_seconds}s",
                scope(deployments, tags)
            ),
            Trigger::Event {} => "an event is posted".into(),
        }
    }
}

/// A stored trigger (JSON) in words; its type when it cannot be read.
pub fn describe_trigger(trigger: &Value) -> String {
    match serde_json::from_value::<Trigger>(trigger.clone()) {
        Ok(t) => t.describe(),
        Err(_) => trigger["type"]
            .as_str()
            .unwrap_or("an unknown trigger")
            .to_owned(),
    }
}

/// The kinds of a stored list of actions (JSON), in order: `run-deployment, call-plugin`.
pub fn action_kinds(actions: &Value) -> String {
    actions
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["type"].as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// What an automation does, in order. Strings in `parameters` and `arguments` are
/// templates (`{{ flow_run.id }}`, `{{ state.name }}`, `{{ event.body.x }}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Action {
    /// Creates a run of a deployment of the workspace.
    RunDeployment {
        deployment: String,
        #[serde(default)]
        parameters: Map<String, Value>,
    },
    /// Cancels the flow run that set the automation off (Prefect's `cancel-flow-run`).
    #[serde(alias = "cancel-flow-run")]
    CancelRun {},
    /// Retries the flow run that set the automation off (when it is final).
    RetryRun {},
    /// Pauses a deployment (default: the one of the run that set the automation off).
    PauseDeployment {
        #[serde(default)]
        deployment: Option<String>,
    },
    /// Resumes a deployment (default: the one of the run that set the automation off).
    ResumeDeployment {
        #[serde(default)]
        deployment: Option<String>,
    },
    /// Pauses every schedule of a deployment (default: the one of the run that set the
    /// automation off); their runs not yet started end Cancelled.
    PauseSchedules {
        #[serde(default)]
        deployment: Option<String>,
    },
    /// Resumes every schedule of a deployment: they create runs again from now on.
    ResumeSchedules {
        #[serde(default)]
        deployment: Option<String>,
    },
    /// Attaches a Markdown artifact (a template) to the flow run that set the automation
    /// off.
    CreateArtifact {
        markdown: String,
        #[serde(default)]
        key: Option<String>,
        #[serde(default)]
        description: Option<String>,
    },
    /// Switches an automation of the workspace off (default: this one), as Prefect's
    /// `pause-automation`: its events meanwhile fire nothing.
    PauseAutomation {
        #[serde(default)]
        automation: Option<String>,
    },
    /// Switches an automation of the workspace on (Prefect's `resume-automation`).
    ResumeAutomation { automation: String },
    /// Does nothing (Prefect's `do-nothing`): the automation run records the event.
    DoNothing {},
    /// Calls a plugin's task (`notify/send`) as a run of its own, with the capabilities
    /// of `deployment` (default: the one of the run that set the automation off).
    CallPlugin {
        task: String,
        #[serde(default)]
        arguments: Map<String, Value>,
        #[serde(default)]
        deployment: Option<String>,
    },
}

impl Action {
    pub fn kind(&self) -> &'static str {
        match self {
            Action::RunDeployment { .. } => "run-deployment",
            Action::CancelRun {} => "cancel-run",
            Action::RetryRun {} => "retry-run",
            Action::PauseDeployment { .. } => "pause-deployment",
            Action::ResumeDeployment { .. } => "resume-deployment",
            Action::PauseSchedules { .. } => "pause-schedules",
            Action::ResumeSchedules { .. } => "resume-schedules",
            Action::CreateArtifact { .. } => "create-artifact",
            Action::CallPlugin { .. } => "call-plugin",
            Action::PauseAutomation { .. } => "pause-automation",
            Action::ResumeAutomation { .. } => "resume-automation",
            Action::DoNothing {} => "do-nothing",
        }
    }

    /// Whether it acts on the flow run that set the automation off (an event brings none).
    fn needs_run(&self) -> bool {
        match self {
            Action::CancelRun {} | Action::RetryRun {} | Action::CreateArtifact { .. } => true,
            Action::PauseDeployment { deployment }
            | Action::ResumeDeployment { deployment }
            | Action::PauseSchedules { deployment }
            | Action::ResumeSchedules { deployment }
            | Action::CallPlugin { deployment, .. } => deployment.is_none(),
            Action::RunDeployment { .. }
            | Action::PauseAutomation { .. }
            | Action::ResumeAutomation { .. }
            | Action::DoNothing {} => false,
        }
    }
}

/// Actions one automation may have.
pub const MAX_ACTIONS: usize = 20;
/// The longest window or duration of a trigger: 30 days.
pub const MAX_WINDOW_SECONDS: f64 = 30.0 * 86_400.0;
/// The highest threshold.
pub const MAX_THRESHOLD: u32 = 10_000;

/// Checks a trigger and its actions; one message per problem, naming the field.
pub fn check(trigger: &Trigger, actions: &[Action]) -> Vec<String> {
    let mut errors = Vec::new();
    let window = |field: &str, v: f64, min: f64, errors: &mut Vec<String>| {
        if !(v.is_finite() && (min..=MAX_WINDOW_SECONDS).contains(&v)) {
            errors.push(format!(
                "'trigger.{field}' must be a number of seconds from {min} to {MAX_WINDOW_SECONDS}"
            ));
        }
    };
    let names = |field: &str, list: &[String], errors: &mut Vec<String>| {
        if list.len() > 100 || list.iter().any(|n| n.is_empty() || n.len() > 100) {
            errors.push(format!(
                "'trigger.{field}' lists at most 100 names of 1 to 100 characters"
            ));
        }
    };
    match trigger {
        Trigger::FlowRunState {
            deployments,
            tags,
            states,
            threshold,
            within_seconds,
        } => {
            names("deployments", deployments, &mut errors);
            names("tags", tags, &mut errors);
            if states.is_empty() {
                errors.push("'trigger.states' must name at least one state".into());
            }
            names("states", states, &mut errors);
            if !(1..=MAX_THRESHOLD).contains(threshold) {
                errors.push(format!(
                    "'trigger.threshold' must be from 1 to {MAX_THRESHOLD}"
                ));
            }
            window("within_seconds", *within_seconds, 0.0, &mut errors);
            if *threshold > 1 && *within_seconds <= 0.0 {
                errors
                    .push("'trigger.within_seconds' must be given with a threshold above 1".into());
            }
        }
        Trigger::FlowRunStuck {
            deployments,
            tags,
            state,
            for_seconds,
        } => {
            names("deployments", deployments, &mut errors);
            names("tags", tags, &mut errors);
            if state.is_empty() {
                errors.push("'trigger.state' must name a state".into());
            }
            window("for_seconds", *for_seconds, 1.0, &mut errors);
        }
        Trigger::Event {} => {}
    }
    if actions.is_empty() {
        errors.push("'actions' must have at least one action".into());
    }
    if actions.len() > MAX_ACTIONS {
        errors.push(format!("'actions' may have at most {MAX_ACTIONS} actions"));
    }
    for (i, action) in actions.iter().enumerate() {
        if matches!(trigger, Trigger::Event {}) && action.needs_run() {
            errors.push(format!(
                "'actions[{i}]' ({}) acts on the flow run that set the automation off, and an \
                 event brings none: name a deployment",
                action.kind()
            ));
        }
        if let Action::CreateArtifact { key: Some(key), .. } = action
            && !super::name::valid_artifact_key(key)
        {
            errors.push(format!(
                "'actions[{i}].key' {key:?} must be lowercase letters, digits and dashes"
            ));
        }
        if let Action::PauseAutomation {
            automation: Some(name),
        }
        | Action::ResumeAutomation { automation: name } = action
            && (name.is_empty() || name.len() > 100)
        {
            errors.push(format!(
                "'actions[{i}].automation' must name an automation of 1 to 100 characters"
            ));
        }
        if let Action::CallPlugin { task, .. } = action {
            match super::plugin::parse(task) {
                Some(Ok(_)) => {}
                Some(Err(e)) => errors.push(format!("'actions[{i}].task': {e}")),
                None => errors.push(format!(
                    "'actions[{i}].task' names a plugin's task, \"<plugin>/<task>\", not {task:?}"
                )),
            }
        }
    }
    errors
}

/// Whether a state (its type and name) is one a trigger lists: by name (`Failed`,
/// `Late`), case-insensitively, or by type (`FAILED`, `SCHEDULED`).
pub fn state_matches(listed: &[String], state_type: &str, state_name: &str) -> bool {
    listed
        .iter()
        .any(|s| s.eq_ignore_ascii_case(state_name) || s.eq_ignore_ascii_case(state_type))
}

/// Whether a run's tags hold every tag a trigger lists.
pub fn tags_match(listed: &[String], tags: &[String]) -> bool {
    listed.iter().all(|t| tags.contains(t))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn triggers_and_actions_read_from_json() {
        let t: Trigger = serde_json::from_value(json!({
            "type": "flow-run-state", "deployments": ["etl"], "states": ["Failed", "Crashed"],
            "threshold": 3, "within_seconds": 600
        }))
        .unwrap();
        assert!(matches!(t, Trigger::FlowRunState { threshold: 3, .. }));
        let a: Action = serde_json::from_value(json!({
            "type": "call-plugin", "task": "notify/send",
            "arguments": {"message": "{{ flow_run.name }} failed"}
        }))
        .unwrap();
        assert_eq!(a.kind(), "call-plugin");
        assert!(check(&t, &[a]).is_empty());
        let unknown = serde_json::from_value::<Action>(json!({"type": "explode"}));
        assert!(unknown.is_err());
        let extra = serde_json::from_value::<Action>(json!({"type": "cancel-run", "x": 1}));
        assert!(extra.is_err());
        // Prefect's names.
        let cancel: Action = serde_json::from_value(json!({"type": "cancel-flow-run"})).unwrap();
        assert_eq!(cancel, Action::CancelRun {});
        let resume: Action =
            serde_json::from_value(json!({"type": "resume-automation", "automation": ""})).unwrap();
        let errors = check(&Trigger::Event {}, &[resume]).join("\n");
        assert!(errors.contains("actions[0].automation"), "{errors}");
        let missing = serde_json::from_value::<Action>(json!({"type": "resume-automation"}));
        assert!(missing.is_err(), "resume names the automation");
        let own: Action = serde_json::from_value(json!({"type": "pause-automation"})).unwrap();
        assert!(check(&Trigger::Event {}, &[own, Action::DoNothing {}]).is_empty());
    }

    #[test]
    fn bad_automations_say_what_is_wrong() {
        let t = Trigger::FlowRunState {
            deployments: vec![],
            tags: vec![],
            states: vec![],
            threshold: 5,
            within_seconds: f64::NAN,
        };
        let errors = check(&t, &[]).join("\n");
        for expected in ["trigger.states", "trigger.within_seconds", "'actions'"] {
            assert!(errors.contains(expected), "{errors}");
        }
        let errors = check(&Trigger::Event {}, &[Action::CancelRun {}]).join("\n");
        assert!(errors.contains("an event brings none"), "{errors}");
        let plugin = Action::CallPlugin {
            task: "send".into(),
            arguments: Map::new(),
            deployment: Some("d".into()),
        };
        let errors = check(&Trigger::Event {}, &[plugin]).join("\n");
        assert!(errors.contains("\"<plugin>/<task>\""), "{errors}");
    }

    #[test]
    fn states_match_by_name_or_type() {
        let listed = vec!["Failed".to_owned(), "late".to_owned()];
        assert!(state_matches(&listed, "FAILED", "Failed"));
        assert!(state_matches(&listed, "SCHEDULED", "Late"));
        assert!(!state_matches(&listed, "SCHEDULED", "Scheduled"));
        assert!(state_matches(&["CRASHED".into()], "CRASHED", "Crashed"));
        assert!(tags_match(&["a".into()], &["a".into(), "b".into()]));
        assert!(!tags_match(&["c".into()], &["a".into()]));
    }
}
