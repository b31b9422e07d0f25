//! Plugins: components whose tasks any flow of a workspace calls by name, as
//! `"<plugin>/<task>"` for the latest version or `"<plugin>@<version>/<task>"` for one
//! version. A call without '/' names a task of the flow's own component.

use super::name::{NAME_RULE, valid_name};

/// Names no plugin may have: `task/<name>` names a background task run's flow.
const RESERVED: &[&str] = &["task"];

/// A call of a plugin's task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskRef<'a> {
    pub plugin: &'a str,
    /// `None`: the latest version.
    pub version: Option<i64>,
    pub task: &'a str,
}

impl std::fmt::Display for TaskRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.version {
            Some(v) => write!(f, "{}@{v}/{}", self.plugin, self.task),
            None => write!(f, "{}/{}", self.plugin, self.task),
        }
    }
}

/// The plugin task a call names, `None` for a task of the caller's own component, or
/// why the name is no plugin task.
pub fn parse(call: &str) -> Option<Result<TaskRef<'_>, String>> {
    let (reference, task) = call.split_once('/')?;
    Some(parse_parts(call, reference, task))
}

fn parse_parts<'a>(call: &str, reference: &'a str, task: &'a str) -> Result<TaskRef<'a>, String> {
    let (plugin, version) = match reference.split_once('@') {
        Some((plugin, version)) => {
            let v = version
                .parse::<i64>()
                .ok()
                .filter(|v| *v >= 1)
                .ok_or_else(|| {
                    format!(
                        "'{call}': a plugin's version is a whole number from 1 (\"{plugin}@2/{task}\"), \
                         not {version:?}"
                    )
                })?;
            (plugin, Some(v))
        }
        None => (reference, None),
    };
    check_name(plugin).map_err(|e| format!("'{call}': {e}"))?;
    if task.is_empty() {
        return Err(format!("'{call}' names no task: write \"{plugin}/<task>\""));
    }
    Ok(TaskRef {
        plugin,
        version,
        task,
    })
}

/// Checks a plugin's name: an API name, none of the reserved ones.
pub fn check_name(name: &str) -> Result<(), String> {
    if !valid_name(name) {
        return Err(format!("a plugin's name is {NAME_RULE}, not {name:?}"));
    }
    if RESERVED.contains(&name) {
        return Err(format!("'{name}' is reserved and cannot name a plugin"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_name_a_plugin_task_or_a_local_one() {
        assert_eq!(parse("double"), None);
        assert_eq!(
            parse("http/request"),
            Some(Ok(TaskRef {
                plugin: "http",
                version: None,
                task: "request"
            }))
        );
        let pinned = parse("http@2/request").unwrap().unwrap();
        assert_eq!(pinned.version, Some(2));
        assert_eq!(pinned.to_string(), "http@2/request");
        // A task of a plugin may have '/' in its name: the first one splits.
        assert_eq!(parse("a/b/c").unwrap().unwrap().task, "b/c");
    }

    #[test]
    fn malformed_calls_say_what_is_wrong() {
        for (call, expected) in [
            ("http@0/request", "whole number from 1"),
            ("http@two/request", "whole number from 1"),
            ("http@/request", "whole number from 1"),
            ("/request", "a plugin's name is"),
            ("sp ace/request", "a plugin's name is"),
            ("http/", "names no task"),
            ("task/x", "reserved"),
        ] {
            let error = parse(call).unwrap().unwrap_err();
            assert!(error.contains(expected), "{call}: {error}");
        }
    }
}
