//! Plugin tasks: a flow's call of `"<plugin>/<task>"` (or `"<plugin>@<version>/<task>"`)
//! is an ordinary task run of the calling flow run (states, retries, timeout, cache,
//! logs, artifacts, replay by position) whose attempts run the task in the plugin's own
//! component, with the calling run's limits and capabilities: the hosts its deployment
//! grants, and only the secrets the deployment lets plugins read.
//!
//! A flow run finds each plugin once and keeps that version for the rest of its
//! execution, so a new version registered meanwhile does not change a run half-way.

use super::scope::FlowScope;
use crate::host::LoadedComponent;
use crate::model::failure::{Failure, FailureKind};
use crate::model::plugin::TaskRef;
use futures_util::future::BoxFuture;
use std::sync::Arc;

/// One version of a plugin, loaded.
pub struct Plugin {
    pub name: String,
    pub version: i64,
    pub builtin: bool,
    pub component: Arc<LoadedComponent>,
}

impl Plugin {
    /// How a run's task calls name it: `name@version`.
    pub fn pinned(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }
}

/// Finds the plugins a workspace's flows call (the server's executor: its store and its
/// components).
pub trait PluginSource: Send + Sync {
    /// The plugin `name` a run of `workspace_id` sees (its own, else the built-in one),
    /// at `version` or its latest; the error says what exists.
    fn plugin<'a>(
        &'a self,
        workspace_id: &'a str,
        name: &'a str,
        version: Option<i64>,
    ) -> BoxFuture<'a, Result<Arc<Plugin>, String>>;
}

/// What a task call runs: a task of the flow's component or of a plugin's.
pub(crate) struct Target {
    pub component: Arc<LoadedComponent>,
    /// The task as its component knows it.
    pub task: String,
    /// The plugin, for a plugin's task.
    pub plugin: Option<Arc<Plugin>>,
}

impl FlowScope {
    /// What the call of `task` runs; the failure names what exists when nothing matches.
    pub(crate) async fn target(&self, task: &str) -> Result<Target, Box<Failure>> {
        // A task of the flow's own component may have '/' in its name: it wins.
        if self.component.task(task).is_some() {
            return Ok(Target {
                component: self.component.clone(),
                task: task.to_owned(),
                plugin: None,
            });
        }
        let reference = match crate::model::plugin::parse(task) {
            None => {
                let known: Vec<&str> = self
                    .component
                    .manifest
                    .tasks
                    .iter()
                    .map(|t| t.name.as_str())
                    .collect();
                return Err(Box::new(Failure::permanent(
                    FailureKind::Unknown,
                    format!(
                        "the component has no task '{task}'; its tasks are: {} (a plugin's task \
                         is called as \"<plugin>/<task>\")",
                        known.join(", ")
                    ),
                )));
            }
            Some(Err(message)) => {
                return Err(Box::new(Failure::permanent(
                    FailureKind::InvalidParameters,
                    message,
                )));
            }
            Some(Ok(reference)) => reference,
        };
        let plugin = self
            .plugin(reference)
            .await
            .map_err(|message| Box::new(Failure::permanent(FailureKind::Unknown, message)))?;
        if plugin.component.task(reference.task).is_none() {
            let known: Vec<&str> = plugin
                .component
                .manifest
                .tasks
                .iter()
                .map(|t| t.name.as_str())
                .collect();
            return Err(Box::new(Failure::permanent(
                FailureKind::Unknown,
                format!(
                    "plugin '{}' (version {}) has no task '{}'; its tasks are: {}",
                    plugin.name,
                    plugin.version,
                    reference.task,
                    known.join(", ")
                ),
            )));
        }
        Ok(Target {
            component: plugin.component.clone(),
            task: reference.task.to_owned(),
            plugin: Some(plugin),
        })
    }

    /// The plugin a reference names, found once per execution of the run.
    async fn plugin(&self, reference: TaskRef<'_>) -> Result<Arc<Plugin>, String> {
        let key = match reference.version {
            Some(v) => format!("{}@{v}", reference.plugin),
            None => reference.plugin.to_owned(),
        };
        if let Some(found) = self.calls().plugins.get(&key) {
            return Ok(found.clone());
        }
        let Some(source) = self.orch.plugin_source() else {
            return Err(format!(
                "'{reference}' is a plugin's task, and plugins are found by a server \
                 (`weir server`); this host has none"
            ));
        };
        let workspace = self
            .settings
            .workspace_id
            .as_deref()
            .unwrap_or(crate::store::BUILTIN_PLUGINS);
        let plugin = source
            .plugin(workspace, reference.plugin, reference.version)
            .await?;
        // Two calls racing here find the same version; the first one kept wins.
        Ok(self.calls().plugins.entry(key).or_insert(plugin).clone())
    }
}
