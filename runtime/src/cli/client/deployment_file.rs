//! The deployment file (`weir.yaml`), in the spirit of `prefect.yaml`: a `deployments:`
//! list whose entries have the fields of `POST /api/deployments`, except that `component`
//! may be a path (relative to the file) that `weir deploy` uploads first.
//!
//! ```yaml
//! deployments:
//!   - name: hello-prod
//!     component: target/wasm32-wasip2/release/hello.wasm
//!     flow: hello
//!     parameters: {name: Ada}
//!     tags: [prod]
//!     limits: {memory_mb: 64, timeout_seconds: 30}
//!     capabilities: {allowed_hosts: [api.example.com], plugin_secrets: [slack-url]}
//!     webhook: {enabled: true, signed: true}
//!     retention: {days: 30, runs: 1000}
//! plugins:
//!   - name: toolkit
//!     component: target/wasm32-wasip2/release/toolkit.wasm
//! ```
//!
//! `plugins:` registers components as the workspace's plugins (each changed component a
//! new version) before the deployments are applied, since their flows call them;
//! `automations:` (each with `name`, `trigger`, `actions`) are created or updated after
//! them, since their actions name deployments.

use anyhow::{Context, bail};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value, json};
use std::collections::HashSet;
use std::path::Path;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentFile {
    #[serde(default)]
    pub deployments: Vec<DeploymentSpec>,
    #[serde(default)]
    pub plugins: Vec<PluginSpec>,
    /// Automations (`name`, `trigger`, `actions`, `description`, `enabled`), created or
    /// updated after the deployments their actions name.
    #[serde(default)]
    pub automations: Vec<Map<String, Value>>,
}

/// A plugin to register: a component (a path relative to the file, or a digest) under
/// a name flows call it by.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginSpec {
    pub name: String,
    pub component: String,
    pub description: Option<String>,
}

/// One deployment as the user declares it. A field left out is left alone when the
/// deployment already exists, and takes the server's default when it is created.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentSpec {
    pub name: String,
    /// A path to a `.wasm` file or the digest of an uploaded component.
    pub component: Option<String>,
    /// Left out when the component has one flow.
    pub flow: Option<String>,
    pub parameters: Option<Map<String, Value>>,
    pub tags: Option<Vec<String>>,
    pub description: Option<String>,
    /// `version: 2` in YAML is a number; the API wants a string.
    #[serde(default, deserialize_with = "string_or_number")]
    pub version: Option<String>,
    pub pool: Option<String>,
    /// A work queue of the pool (its priority orders runs waiting for a full pool).
    pub work_queue: Option<String>,
    pub concurrency_limit: Option<u32>,
    pub limits: Option<LimitsSpec>,
    pub capabilities: Option<CapabilitiesSpec>,
    pub paused: Option<bool>,
    pub webhook: Option<WebhookSpec>,
    /// Its own retention (`days`, `runs`), replacing the workspace's for its runs; an
    /// empty one (`{}`) hands them back to the workspace's.
    pub retention: Option<RetentionSpec>,
    /// The deployment's schedules, replacing whatever it had: each a `cron`, `interval`
    /// (seconds) or `rrule`, with `timezone`, `anchor_date`, `active`, `parameters`,
    /// `catchup`, `catchup_limit`, `overlap`.
    pub schedules: Option<Vec<Map<String, Value>>>,
}

/// A schedule as the API takes it: Prefect's `interval` is `interval_seconds`.
pub fn schedule_body(s: &Map<String, Value>) -> Value {
    let mut m = s.clone();
    if let Some(v) = m.remove("interval") {
        m.insert("interval_seconds".into(), v);
    }
    Value::Object(m)
}

#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSpec {
    pub memory_mb: Option<u64>,
    pub timeout_seconds: Option<u64>,
}

#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapabilitiesSpec {
    pub allowed_hosts: Option<Vec<String>>,
    /// Workspace secrets the plugins the deployment's runs call may read.
    pub plugin_secrets: Option<Vec<String>>,
}

#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionSpec {
    pub days: Option<u32>,
    pub runs: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSpec {
    /// A `webhook:` section means a webhook unless it says `enabled: false`.
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub signed: bool,
}

fn yes() -> bool {
    true
}

fn string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Loose {
        S(String),
        I(i64),
        F(f64),
    }
    Ok(Option::<Loose>::deserialize(d)?.map(|v| match v {
        Loose::S(s) => s,
        Loose::I(i) => i.to_string(),
        Loose::F(f) => f.to_string(),
    }))
}

impl DeploymentFile {
    pub fn parse(text: &str) -> anyhow::Result<DeploymentFile> {
        let file: DeploymentFile = serde_yaml_ng::from_str(text)?;
        if file.deployments.is_empty() && file.plugins.is_empty() && file.automations.is_empty() {
            bail!("the file has no `deployments:` (nor `plugins:` or `automations:`)");
        }
        let mut automations = HashSet::new();
        for (i, a) in file.automations.iter().enumerate() {
            let Some(name) = a.get("name").and_then(Value::as_str) else {
                bail!("automations[{i}]: missing field `name`");
            };
            if !automations.insert(name) {
                bail!("automations[{i}]: the name {name:?} is used twice");
            }
        }
        let mut plugins = HashSet::new();
        for (i, p) in file.plugins.iter().enumerate() {
            if !plugins.insert(p.name.as_str()) {
                bail!("plugins[{i}]: the name {:?} is used twice", p.name);
            }
        }
        let mut names = HashSet::new();
        for (i, d) in file.deployments.iter().enumerate() {
            if d.name.trim().is_empty() {
                bail!("deployments[{i}]: `name` is empty");
            }
            if d.component.is_none() {
                bail!("deployments[{i}] ({}): missing field `component`", d.name);
            }
            if !names.insert(d.name.as_str()) {
                bail!("deployments[{i}]: the name {:?} is used twice", d.name);
            }
        }
        Ok(file)
    }

    pub fn read(path: &Path) -> anyhow::Result<DeploymentFile> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        DeploymentFile::parse(&text).with_context(|| format!("{} is not valid", path.display()))
    }
}

impl DeploymentSpec {
    /// The body of `POST /api/deployments` or `PATCH /api/deployments/{id}`, with the
    /// component given as its digest; fields left out of the spec stay out.
    pub fn body(&self, digest: Option<&str>, flow: Option<&str>) -> Value {
        let mut m = Map::new();
        m.insert("name".into(), json!(self.name));
        if let Some(d) = digest {
            m.insert("component".into(), json!(d));
        }
        if let Some(f) = flow.or(self.flow.as_deref()) {
            m.insert("flow".into(), json!(f));
        }
        let mut put = |k: &str, v: Option<Value>| {
            if let Some(v) = v {
                m.insert(k.into(), v);
            }
        };
        put("parameters", self.parameters.clone().map(Value::Object));
        put("tags", self.tags.as_ref().map(|t| json!(t)));
        put("description", self.description.as_ref().map(|d| json!(d)));
        put("version", self.version.as_ref().map(|v| json!(v)));
        put("pool", self.pool.as_ref().map(|p| json!(p)));
        put("work_queue", self.work_queue.as_ref().map(|q| json!(q)));
        put(
            "concurrency_limit",
            self.concurrency_limit.map(|c| json!(c)),
        );
        put(
            "limits",
            self.limits.as_ref().map(|l| {
                let mut o = Map::new();
                if let Some(m) = l.memory_mb {
                    o.insert("memory_mb".into(), json!(m));
                }
                if let Some(t) = l.timeout_seconds {
                    o.insert("timeout_seconds".into(), json!(t));
                }
                Value::Object(o)
            }),
        );
        put(
            "capabilities",
            // The capabilities are replaced as a whole: what is left out is granted none.
            self.capabilities
                .as_ref()
                .filter(|c| c.allowed_hosts.is_some() || c.plugin_secrets.is_some())
                .map(|c| {
                    json!({
                        "allowed_hosts": c.allowed_hosts.clone().unwrap_or_default(),
                        "plugin_secrets": c.plugin_secrets.clone().unwrap_or_default(),
                    })
                }),
        );
        put("paused", self.paused.map(Value::Bool));
        put(
            "webhook",
            self.webhook
                .as_ref()
                .map(|w| json!({"enabled": w.enabled, "signed": w.signed})),
        );
        put(
            "retention",
            // Replaced as a whole: a bound left out is none.
            self.retention
                .as_ref()
                .map(|r| json!({"days": r.days, "runs": r.runs})),
        );
        Value::Object(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
deployments:
  - name: hello-prod
    component: ../target/hello.wasm
    flow: hello
    parameters:
      name: Ada
      n: 3
    tags: [prod, eu]
    description: Says hello
    version: 2
    pool: default
    work_queue: urgent
    concurrency_limit: 5
    limits: {memory_mb: 64, timeout_seconds: 30}
    capabilities:
      allowed_hosts: [api.example.com]
      plugin_secrets: [slack-url]
    paused: false
    webhook: {signed: true}
    retention: {days: 30}
  - name: nightly
    component: sha256:0123
"#;

    #[test]
    fn good_file() {
        let f = DeploymentFile::parse(GOOD).unwrap();
        assert_eq!(f.deployments.len(), 2);
        let d = &f.deployments[0];
        assert_eq!(d.version.as_deref(), Some("2"));
        assert_eq!(
            d.webhook,
            Some(WebhookSpec {
                enabled: true,
                signed: true
            })
        );
        assert_eq!(
            d.body(Some("abc"), None),
            json!({
                "name": "hello-prod", "component": "abc", "flow": "hello",
                "parameters": {"name": "Ada", "n": 3}, "tags": ["prod", "eu"],
                "description": "Says hello", "version": "2", "pool": "default",
                "work_queue": "urgent", "concurrency_limit": 5,
                "limits": {"memory_mb": 64, "timeout_seconds": 30},
                "capabilities": {"allowed_hosts": ["api.example.com"],
                                 "plugin_secrets": ["slack-url"]},
                "paused": false, "webhook": {"enabled": true, "signed": true},
                "retention": {"days": 30, "runs": null}
            })
        );
        // Only what is declared goes to the server.
        let n = &f.deployments[1];
        assert_eq!(n.component.as_deref(), Some("sha256:0123"));
        assert_eq!(
            n.body(None, Some("main")),
            json!({"name": "nightly", "flow": "main"})
        );
    }

    #[test]
    fn unknown_field_is_named() {
        let err = DeploymentFile::parse(
            "deployments:\n  - name: a\n    component: x.wasm\n    flw: hello\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("unknown field `flw`"), "{err}");
        let err = DeploymentFile::parse(
            "deployments:\n  - name: a\n    component: x.wasm\n    limits: {memory: 3}\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("unknown field `memory`"), "{err}");
        let err = DeploymentFile::parse("deploy: []\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `deploy`"), "{err}");
    }

    #[test]
    fn missing_required_field_is_named() {
        let err = DeploymentFile::parse("deployments:\n  - component: x.wasm\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing field `name`"), "{err}");
        let err = DeploymentFile::parse("deployments:\n  - name: a\n    flow: f\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("(a): missing field `component`"), "{err}");
        let err = DeploymentFile::parse("{}").unwrap_err().to_string();
        assert!(err.contains("has no `deployments:`"), "{err}");
    }

    #[test]
    fn wrong_types_and_duplicates() {
        let err = DeploymentFile::parse(
            "deployments:\n  - name: a\n    component: x\n    concurrency_limit: lots\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("concurrency_limit"), "{err}");
        let err = DeploymentFile::parse(
            "deployments:\n  - {name: a, component: x}\n  - {name: a, component: y}\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("used twice"), "{err}");
        let err = DeploymentFile::parse(
            "plugins:\n  - {name: p, component: x}\n  - {name: p, component: y}\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("plugins[1]") && err.contains("used twice"),
            "{err}"
        );
    }

    #[test]
    fn plugins_alone_or_beside_deployments() {
        let f = DeploymentFile::parse(
            "plugins:\n  - name: toolkit\n    component: toolkit.wasm\n    description: Tools\n",
        )
        .unwrap();
        assert!(f.deployments.is_empty());
        assert_eq!(
            f.plugins,
            vec![PluginSpec {
                name: "toolkit".into(),
                component: "toolkit.wasm".into(),
                description: Some("Tools".into()),
            }]
        );
        let err = DeploymentFile::parse("plugins:\n  - {name: p, component: x, versoin: 2}\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `versoin`"), "{err}");
    }
}
