//! `weir deploy`: one deployment from flags, or the deployments of a `weir.yaml`. A
//! deployment whose name exists is updated (PATCH) rather than created; a component given
//! as a path is uploaded first.

use super::api::Api;
use super::deployment_file::{
    CapabilitiesSpec, DeploymentFile, DeploymentSpec, LimitsSpec, PluginSpec, RetentionSpec,
    WebhookSpec,
};
use super::output::{print_json, text, time};
use super::{ClientOpts, flow_names, push};
use anyhow::{Context, bail};
use clap::Args;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The file `weir deploy` reads when given neither --file nor a deployment's flags.
const DEFAULT_FILE: &str = "weir.yaml";

#[derive(Args, Debug)]
pub struct DeployArgs {
    #[command(flatten)]
    opts: ClientOpts,
    /// A deployment file (default: ./weir.yaml when no deployment flags are given).
    #[arg(long, short = 'f', conflicts_with_all = [
        "component", "flow", "params", "params_json", "tags", "description", "version",
        "pool", "concurrency_limit", "memory_mb", "timeout_seconds", "allowed_hosts", "plugin_secrets",
        "paused", "webhook", "webhook_signed", "cron", "interval", "rrule", "timezone",
        "retention_days", "retention_runs",
    ])]
    file: Option<PathBuf>,
    /// The deployment's name (with --file: deploy only this one of the file's).
    #[arg(long, short = 'n')]
    name: Option<String>,
    /// A component file (uploaded first) or the digest of an uploaded component.
    #[arg(long, value_name = "FILE_OR_DIGEST")]
    component: Option<String>,
    /// The flow to deploy; may be left out when the component has one flow.
    #[arg(long)]
    flow: Option<String>,
    /// A default parameter, `key=value` (the server coerces the value to the parameter's type).
    #[arg(long = "param", short = 'p', value_name = "KEY=VALUE")]
    params: Vec<String>,
    /// All default parameters as one JSON object (`--param` values go on top).
    #[arg(long, value_name = "JSON")]
    params_json: Option<String>,
    /// A tag for the deployment's runs (repeatable).
    #[arg(long = "tag", value_name = "TAG")]
    tags: Vec<String>,
    #[arg(long)]
    description: Option<String>,
    #[arg(long)]
    version: Option<String>,
    /// The pool whose executors run the deployment's runs.
    #[arg(long)]
    pool: Option<String>,
    /// The pool's work queue the deployment's runs wait in (`weir pool queue set`).
    #[arg(long)]
    work_queue: Option<String>,
    /// At most this many of the deployment's runs at once.
    #[arg(long)]
    concurrency_limit: Option<u32>,
    /// Memory cap of each instance, in MiB.
    #[arg(long)]
    memory_mb: Option<u64>,
    /// Wall-clock cap of a flow run, in seconds.
    #[arg(long)]
    timeout_seconds: Option<u64>,
    /// A host the flow may reach over HTTP (repeatable); none by default.
    #[arg(long = "allow-host", value_name = "HOST")]
    allowed_hosts: Vec<String>,
    /// A workspace secret the plugins the flow calls may read (repeatable); none by default.
    #[arg(long = "plugin-secret", value_name = "SECRET")]
    plugin_secrets: Vec<String>,
    /// Create the deployment paused (`--paused=false` resumes one).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    paused: Option<bool>,
    /// Days its finished runs are kept (its own retention, replacing the workspace's).
    #[arg(long, value_name = "DAYS")]
    retention_days: Option<u32>,
    /// Finished runs of it kept at most, the newest (its own retention).
    #[arg(long, value_name = "N")]
    retention_runs: Option<u32>,
    /// Give the deployment a webhook (its URL and token are printed once).
    #[arg(long)]
    webhook: bool,
    /// A webhook whose calls must be signed with HMAC-SHA256 (implies --webhook).
    #[arg(long)]
    webhook_signed: bool,
    /// Schedule the deployment with a cron expression (five fields, or six with seconds).
    #[arg(long, conflicts_with_all = ["interval", "rrule"])]
    cron: Option<String>,
    /// Schedule the deployment every this many seconds.
    #[arg(long, conflicts_with = "rrule")]
    interval: Option<f64>,
    /// Schedule the deployment with an RRULE.
    #[arg(long)]
    rrule: Option<String>,
    /// The IANA timezone of the schedule (default UTC).
    #[arg(long)]
    timezone: Option<String>,
}

impl DeployArgs {
    /// True when any flag describes a deployment (rather than pick one from a file).
    fn has_spec_flags(&self) -> bool {
        self.component.is_some()
            || self.flow.is_some()
            || !self.params.is_empty()
            || self.params_json.is_some()
            || !self.tags.is_empty()
            || self.description.is_some()
            || self.version.is_some()
            || self.pool.is_some()
            || self.work_queue.is_some()
            || self.concurrency_limit.is_some()
            || self.memory_mb.is_some()
            || self.timeout_seconds.is_some()
            || !self.allowed_hosts.is_empty()
            || !self.plugin_secrets.is_empty()
            || self.paused.is_some()
            || self.webhook
            || self.webhook_signed
            || self.retention_days.is_some()
            || self.retention_runs.is_some()
            || self.schedule_flag().is_some()
    }

    /// The schedule `--cron`, `--interval` or `--rrule` describe, with `--timezone`.
    fn schedule_flag(&self) -> Option<Map<String, Value>> {
        let mut m = Map::new();
        if let Some(c) = &self.cron {
            m.insert("cron".into(), json!(c));
        } else if let Some(i) = self.interval {
            m.insert("interval_seconds".into(), json!(i));
        } else if let Some(r) = &self.rrule {
            m.insert("rrule".into(), json!(r));
        } else {
            return None;
        }
        if let Some(tz) = &self.timezone {
            m.insert("timezone".into(), json!(tz));
        }
        Some(m)
    }

    /// The deployment the flags describe.
    fn spec(&self) -> anyhow::Result<DeploymentSpec> {
        let Some(name) = self.name.clone() else {
            bail!("name the deployment with --name (or deploy from a file with --file weir.yaml)");
        };
        let parameters = if self.params.is_empty() && self.params_json.is_none() {
            None
        } else {
            match crate::cli::parse_params(&self.params, self.params_json.as_deref())? {
                Value::Object(m) => Some(m),
                _ => unreachable!("parse_params returns an object"),
            }
        };
        let limits =
            (self.memory_mb.is_some() || self.timeout_seconds.is_some()).then_some(LimitsSpec {
                memory_mb: self.memory_mb,
                timeout_seconds: self.timeout_seconds,
            });
        Ok(DeploymentSpec {
            name,
            component: self.component.clone(),
            flow: self.flow.clone(),
            parameters,
            tags: (!self.tags.is_empty()).then(|| self.tags.clone()),
            description: self.description.clone(),
            version: self.version.clone(),
            pool: self.pool.clone(),
            work_queue: self.work_queue.clone(),
            concurrency_limit: self.concurrency_limit,
            limits,
            capabilities: (!self.allowed_hosts.is_empty() || !self.plugin_secrets.is_empty()).then(
                || CapabilitiesSpec {
                    allowed_hosts: Some(self.allowed_hosts.clone()),
                    plugin_secrets: Some(self.plugin_secrets.clone()),
                },
            ),
            paused: self.paused,
            webhook: (self.webhook || self.webhook_signed).then_some(WebhookSpec {
                enabled: true,
                signed: self.webhook_signed,
            }),
            retention: (self.retention_days.is_some() || self.retention_runs.is_some()).then_some(
                RetentionSpec {
                    days: self.retention_days,
                    runs: self.retention_runs,
                },
            ),
            schedules: self.schedule_flag().map(|s| vec![s]),
        })
    }

    /// The plugins to register and the deployments to apply, with the folder their
    /// component paths are relative to.
    fn specs(&self) -> anyhow::Result<Specs> {
        let file = match &self.file {
            Some(f) => Some(f.clone()),
            None if !self.has_spec_flags() && Path::new(DEFAULT_FILE).exists() => {
                Some(PathBuf::from(DEFAULT_FILE))
            }
            None => None,
        };
        let Some(file) = file else {
            return Ok(Specs {
                plugins: Vec::new(),
                deployments: vec![self.spec()?],
                automations: Vec::new(),
                base: PathBuf::from("."),
            });
        };
        let parsed = DeploymentFile::read(&file)?;
        let base = file
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        let mut specs = parsed.deployments;
        if let Some(only) = &self.name {
            let names: Vec<String> = specs.iter().map(|d| d.name.clone()).collect();
            specs.retain(|d| &d.name == only);
            if specs.is_empty() {
                bail!(
                    "{} has no deployment named {only:?}; it has: {}",
                    file.display(),
                    names.join(", ")
                );
            }
        }
        Ok(Specs {
            plugins: parsed.plugins,
            deployments: specs,
            automations: parsed.automations,
            base,
        })
    }
}

/// What a `weir deploy` applies, in order, with the folder component paths are relative to.
#[derive(Debug)]
struct Specs {
    plugins: Vec<PluginSpec>,
    deployments: Vec<DeploymentSpec>,
    automations: Vec<Map<String, Value>>,
    base: PathBuf,
}

/// Components uploaded during this command, so a file that names one component for
/// several deployments uploads it once.
struct Components<'a> {
    api: &'a Api,
    quiet: bool,
    pushed: HashMap<PathBuf, (String, Value)>,
}

impl Components<'_> {
    /// The digest a component reference stands for, and its manifest when already known.
    async fn resolve(
        &mut self,
        reference: &str,
        base: &Path,
    ) -> anyhow::Result<(String, Option<Value>)> {
        let path = base.join(reference);
        if path.is_file() {
            let key = path.canonicalize().unwrap_or(path.clone());
            if let Some((d, m)) = self.pushed.get(&key) {
                return Ok((d.clone(), Some(m.clone())));
            }
            let (status, c) = push(self.api, &path).await?;
            let digest = c["digest"]
                .as_str()
                .context("the server's answer to the upload has no digest")?
                .to_owned();
            if !self.quiet {
                let how = if status == reqwest::StatusCode::OK {
                    "is the already uploaded"
                } else {
                    "uploaded as"
                };
                println!("{} {how} component sha256:{digest}", path.display());
            }
            self.pushed
                .insert(key, (digest.clone(), c["manifest"].clone()));
            return Ok((digest, Some(c["manifest"].clone())));
        }
        if reference.contains('/') || reference.ends_with(".wasm") {
            bail!("component {reference}: there is no file {}", path.display());
        }
        let digest = reference.strip_prefix("sha256:").unwrap_or(reference);
        Ok((digest.to_owned(), None))
    }
}

/// The flow to deploy when none is named: the component's only one.
fn only_flow(manifest: &Value, digest: &str) -> anyhow::Result<String> {
    let names = flow_names(manifest);
    match names.as_slice() {
        [one] => Ok(one.clone()),
        [] => bail!("component sha256:{digest} has no flows"),
        _ => bail!(
            "component sha256:{digest} has several flows; name one with `flow` (--flow): {}",
            names.join(", ")
        ),
    }
}

pub async fn run(args: DeployArgs) -> anyhow::Result<ExitCode> {
    let Specs {
        plugins,
        deployments: specs,
        automations,
        base,
    } = args.specs()?;
    let api = args.opts.api()?;
    let quiet = args.opts.json;
    let mut components = Components {
        api: &api,
        quiet,
        pushed: HashMap::new(),
    };
    let mut answers = Vec::new();
    // Plugins first: the deployments' flows call them.
    for plugin in &plugins {
        let (digest, _) = components
            .resolve(&plugin.component, &base)
            .await
            .with_context(|| format!("plugin {:?}", plugin.name))?;
        let (status, answer) = api
            .post(
                &["api", "plugins"],
                json!({"name": plugin.name, "component": digest,
                       "description": plugin.description}),
            )
            .await
            .with_context(|| format!("plugin {:?}", plugin.name))?;
        if !quiet {
            let how = if status == reqwest::StatusCode::CREATED {
                "registered as"
            } else {
                "is"
            };
            println!(
                "Plugin {} {how} version {}",
                plugin.name,
                text(&answer["version"])
            );
        }
        answers.push(answer);
    }
    for spec in &specs {
        let answer = apply(&api, &mut components, spec, &base, quiet)
            .await
            .with_context(|| format!("deployment {:?}", spec.name))?;
        answers.push(answer);
    }
    // Automations last: their actions name the deployments.
    for automation in &automations {
        let spec = Value::Object(automation.clone());
        let name = text(&spec["name"]);
        let (answer, created) = super::automations::apply(&api, &spec)
            .await
            .with_context(|| format!("automation {name:?}"))?;
        if !quiet {
            let verb = if created { "Created" } else { "Updated" };
            println!("{verb} automation {name}");
            super::automations::print_webhook(&api.base(), &answer);
        }
        answers.push(answer);
    }
    if quiet {
        match answers.as_slice() {
            [one] => print_json(one),
            many => print_json(&json!(many)),
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn apply(
    api: &Api,
    components: &mut Components<'_>,
    spec: &DeploymentSpec,
    base: &Path,
    quiet: bool,
) -> anyhow::Result<Value> {
    let existing = api.get_opt(&["api", "deployments", &spec.name]).await?;
    let (digest, manifest) = match &spec.component {
        Some(c) => {
            let (d, m) = components.resolve(c, base).await?;
            (Some(d), m)
        }
        None if existing.is_some() => (None, None),
        None => bail!("it does not exist yet: give its component (--component FILE_OR_DIGEST)"),
    };
    let mut flow = spec.flow.clone();
    if flow.is_none() && existing.is_none() {
        let digest = digest.as_deref().unwrap_or_default();
        let manifest = match manifest {
            Some(m) => m,
            None => api.get(&["api", "components", digest], &[]).await?["manifest"].clone(),
        };
        flow = Some(only_flow(&manifest, digest)?);
    }
    let body = spec.body(digest.as_deref(), flow.as_deref());
    let (verb, answer) = match &existing {
        Some(d) => {
            let id = d["id"].as_str().unwrap_or(&spec.name).to_owned();
            (
                "Updated",
                api.patch(&["api", "deployments", &id], body).await?,
            )
        }
        None => ("Created", api.post(&["api", "deployments"], body).await?.1),
    };
    if !quiet {
        print_deployment(api, verb, &answer);
    }
    if let Some(schedules) = &spec.schedules {
        let id = answer["id"].as_str().unwrap_or(&spec.name).to_owned();
        sync_schedules(api, &id, schedules, quiet).await?;
    }
    Ok(answer)
}

/// Makes the deployment's schedules the declared ones: a schedule whose spec is
/// unchanged is kept (its policies updated, its fired runs kept), others are replaced.
async fn sync_schedules(
    api: &Api,
    deployment: &str,
    declared: &[Map<String, Value>],
    quiet: bool,
) -> anyhow::Result<()> {
    let existing = api
        .get(&["api", "deployments", deployment, "schedules"], &[])
        .await?;
    let mut existing: Vec<Value> = existing["items"].as_array().cloned().unwrap_or_default();
    for s in declared {
        let body = crate::cli::client::deployment_file::schedule_body(s);
        // Ask the server how it reads the spec, and keep an existing identical one.
        let mut probe = body.as_object().cloned().unwrap_or_default();
        for k in [
            "parameters",
            "active",
            "catchup",
            "catchup_limit",
            "overlap",
        ] {
            probe.remove(k);
        }
        let same = existing.iter().position(|e| {
            let spec = &e["schedule"];
            probe
                .iter()
                .all(|(k, v)| spec.get(k) == Some(v) || (k == "timezone" && spec.get(k).is_none()))
        });
        let answer = match same {
            Some(i) => {
                let e = existing.remove(i);
                let id = e["id"].as_str().unwrap_or_default().to_owned();
                api.patch(&["api", "schedules", &id], body).await?
            }
            None => {
                api.post(&["api", "deployments", deployment, "schedules"], body)
                    .await?
                    .1
            }
        };
        if !quiet {
            let next = answer["next"]
                .as_array()
                .and_then(|n| n.first())
                .map(time)
                .unwrap_or_else(|| "-".into());
            println!(
                "Schedule {} {} (next: {next})",
                text(&answer["id"]),
                super::deployments::schedule_summary(&answer["schedule"])
            );
        }
    }
    for e in existing {
        if let Some(id) = e["id"].as_str() {
            api.delete(&["api", "schedules", id]).await?;
        }
    }
    Ok(())
}

fn print_deployment(api: &Api, verb: &str, d: &Value) {
    println!(
        "{verb} deployment '{}' ({})",
        text(&d["name"]),
        text(&d["id"])
    );
    let component = d["component"].as_str().or(d["component_digest"].as_str());
    if let Some(c) = component {
        println!("  flow {} of component sha256:{c}", text(&d["flow"]));
    }
    if let Some(url) = webhook_url(&api.base(), &d["webhook"]) {
        println!("  webhook: POST {url}");
        if let Some(secret) = d["webhook"]["secret"].as_str() {
            println!("  webhook secret: {secret}");
            println!("  The webhook's token and secret are shown only this once: store them now.");
        } else {
            println!("  The webhook's URL is shown only this once: store it now.");
        }
    }
    println!("Run it with: weir trigger {}", text(&d["name"]));
}

/// The full URL of a webhook the server just created; `None` when the answer carries no
/// token (it only does on create and rotate).
pub(super) fn webhook_url(base: &str, webhook: &Value) -> Option<String> {
    let path = match (webhook["url"].as_str(), webhook["token"].as_str()) {
        (Some(url), _) if url.starts_with("http://") || url.starts_with("https://") => {
            return Some(url.to_owned());
        }
        (Some(url), _) => url.to_owned(),
        (None, Some(token)) => format!("/hooks/{token}"),
        (None, None) => return None,
    };
    Some(format!("{base}/{}", path.trim_start_matches('/')))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Top {
        #[command(flatten)]
        args: DeployArgs,
    }

    fn args(argv: &[&str]) -> DeployArgs {
        Top::try_parse_from(std::iter::once("deploy").chain(argv.iter().copied()))
            .unwrap()
            .args
    }

    #[test]
    fn flags_make_a_spec_with_string_params() {
        let a = args(&[
            "--name",
            "hello-prod",
            "--component",
            "sha256:abc",
            "-p",
            "n=5",
            "--param",
            "name=a=b",
            "--params-json",
            r#"{"n": 1, "x": true}"#,
            "--tag",
            "prod",
            "--memory-mb",
            "64",
            "--allow-host",
            "api.example.com",
            "--plugin-secret",
            "slack-url",
            "--paused",
            "--webhook-signed",
        ]);
        let spec = a.spec().unwrap();
        assert_eq!(
            spec.body(Some("abc"), None),
            json!({
                "name": "hello-prod", "component": "abc",
                "parameters": {"n": "5", "name": "a=b", "x": true},
                "tags": ["prod"], "limits": {"memory_mb": 64},
                "capabilities": {"allowed_hosts": ["api.example.com"],
                                 "plugin_secrets": ["slack-url"]},
                "paused": true, "webhook": {"enabled": true, "signed": true}
            })
        );
        let spec = args(&["-n", "d", "--paused=false"]).spec().unwrap();
        assert_eq!(spec.body(None, None), json!({"name": "d", "paused": false}));
        assert!(args(&["--component", "x"]).spec().is_err());
        let err = args(&["-n", "d", "-p", "novalue"])
            .spec()
            .unwrap_err()
            .to_string();
        assert!(err.contains("key=value"), "{err}");
    }

    #[test]
    fn file_conflicts_with_spec_flags_but_not_name() {
        assert!(Top::try_parse_from(["deploy", "--file", "w.yaml", "--flow", "f"]).is_err());
        let a = args(&["--file", "w.yaml", "--name", "one"]);
        assert_eq!(a.name.as_deref(), Some("one"));
        assert!(!a.has_spec_flags());
    }

    #[test]
    fn file_deployments_filtered_by_name_and_relative_to_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("weir.yaml");
        std::fs::write(
            &file,
            "deployments:\n  - {name: a, component: a.wasm}\n  - {name: b, component: b.wasm}\n",
        )
        .unwrap();
        let f = file.to_str().unwrap();
        let Specs {
            deployments: specs,
            base,
            ..
        } = args(&["--file", f]).specs().unwrap();
        assert_eq!(specs.len(), 2);
        assert_eq!(base, dir.path());
        let specs = args(&["--file", f, "--name", "b"])
            .specs()
            .unwrap()
            .deployments;
        assert_eq!(specs[0].name, "b");
        let err = args(&["--file", f, "--name", "c"])
            .specs()
            .unwrap_err()
            .to_string();
        assert!(err.contains("it has: a, b"), "{err}");
    }

    #[test]
    fn webhook_urls() {
        let base = "http://127.0.0.1:4200";
        assert_eq!(
            webhook_url(
                base,
                &json!({"enabled": true, "url": "/hooks/t0k", "token": "t0k"})
            )
            .as_deref(),
            Some("http://127.0.0.1:4200/hooks/t0k")
        );
        assert_eq!(
            webhook_url(base, &json!({"token": "t0k"})).as_deref(),
            Some("http://127.0.0.1:4200/hooks/t0k")
        );
        assert_eq!(
            webhook_url(base, &json!({"enabled": true, "url_prefix": "/hooks/t0"})),
            None
        );
        assert_eq!(webhook_url(base, &Value::Null), None);
    }

    #[test]
    fn the_only_flow_is_picked() {
        assert_eq!(
            only_flow(&json!({"flows": [{"name": "hello"}]}), "d").unwrap(),
            "hello"
        );
        let err = only_flow(&json!({"flows": [{"name": "a"}, {"name": "b"}]}), "d")
            .unwrap_err()
            .to_string();
        assert!(err.contains("a, b"), "{err}");
        assert!(only_flow(&json!({"flows": []}), "d").is_err());
    }
}
