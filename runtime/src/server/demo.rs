//! `weir server --demo DIR`: a demo workspace with the examples uploaded and deployed,
//! ready to trigger. Everything but the workspace and its key goes through the API
//! itself.
//!
//! The demo's API key and the `hello` webhook are written to `DATA_DIR/demo.env`
//! (mode 0600: it holds a credential), and a restart on the same data directory reads
//! them back: the same workspace, the same key and the same webhook, as long as they
//! still work (a revoked key or a rotated webhook is replaced). The database keeps
//! only their hashes, as it does for every key and token.

use super::Server;
use crate::secrets;
use crate::store::WorkspaceRecord;
use anyhow::{Context, bail};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tower::ServiceExt;

/// The examples the demo deploys: (component file stem, deployment name, flow, defaults).
const DEPLOYMENTS: &[(&str, &str, &str, &str)] = &[
    ("hello", "hello", "hello", "{}"),
    ("etl", "etl", "etl", "{}"),
    ("retries", "retries", "retries", "{}"),
    ("caching", "caching", "caching", r#"{"x": 3}"#),
    ("subflows", "subflows", "parent", "{}"),
    // The same examples in Python (examples/python, built by scripts/build-python-guests
    // into python/ beside the Rust ones); deployed when they were built.
    ("python/hello", "hello-py", "hello", "{}"),
    ("python/etl", "etl-py", "etl", "{}"),
    ("python/retries", "retries-py", "retries", "{}"),
    ("python/caching", "caching-py", "caching", r#"{"x": 3}"#),
    ("python/subflows", "subflows-py", "parent", "{}"),
    // And in JavaScript (examples/js, built by scripts/build-js-guests into js/).
    ("js/hello", "hello-js", "hello", "{}"),
    ("js/etl", "etl-js", "etl", "{}"),
];

/// What a user needs to try the demo.
pub struct Demo {
    pub api_key: String,
    /// `/hooks/<token>` of the hello deployment.
    pub hello_webhook: String,
    /// The key (and webhook) came from an earlier start's `demo.env`.
    pub reused_key: bool,
    pub reused_webhook: bool,
}

/// The demo's settings file in a data directory.
pub fn env_file(data_dir: &Path) -> PathBuf {
    data_dir.join("demo.env")
}

/// `KEY=value` pairs of a `demo.env` (one `export` line or several).
fn read_env(path: &Path) -> HashMap<String, String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.split_whitespace()
        .filter_map(|word| word.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// Writes the demo's settings, readable by the owner only.
pub fn write_env(path: &Path, api_url: &str, demo: &Demo) -> std::io::Result<()> {
    use std::io::Write;
    let text = format!(
        "export WEIR_API_URL={api_url} WEIR_API_KEY={} WEIR_DEMO_HOOK={}\n",
        demo.api_key, demo.hello_webhook
    );
    // A new file beside it, then renamed over: the old one is never seen half-written,
    // and the new one is never readable by others, even for a moment.
    let tmp = path.with_extension("env.tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// Whether `key` is a live key of the workspace.
async fn key_works(store: &crate::store::Store, workspace_id: &str, key: &str) -> bool {
    let Some(prefix) = secrets::api_key_prefix(key) else {
        return false;
    };
    matches!(
        store.key_by_prefix(prefix).await,
        Ok(Some(k)) if k.workspace_id == workspace_id && secrets::same(&secrets::token_hash(key), &k.hash)
    )
}

/// Whether `/hooks/<token>` is the live webhook of the workspace's `hello` deployment.
async fn hook_works(store: &crate::store::Store, workspace_id: &str, hook: &str) -> bool {
    let Some(token) = hook.strip_prefix("/hooks/").filter(|t| !t.is_empty()) else {
        return false;
    };
    matches!(
        store.deployment_by_webhook(&secrets::token_hash(token)).await,
        Ok(Some(d)) if d.workspace_id == workspace_id && d.name == "hello"
    )
}

async fn call(
    server: &Server,
    key: &str,
    method: &str,
    uri: &str,
    body: Body,
    content_type: &str,
) -> anyhow::Result<(StatusCode, Value)> {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", content_type)
        .body(body)?;
    let res = server.router().oneshot(req).await?;
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), 16 << 20).await?;
    let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Ok((status, value))
}

/// Sets the demo up; `env_file` is read for the key and webhook of an earlier start
/// (the caller writes it back with [`write_env`]).
pub async fn setup(server: &Server, examples: &Path, env_file: &Path) -> anyhow::Result<Demo> {
    let store = server.state.store();
    let workspace_id = match store.workspace_by_name("demo").await? {
        Some(ws) => ws.id,
        None => {
            let ws = WorkspaceRecord {
                id: uuid::Uuid::now_v7().to_string(),
                name: "demo".into(),
                created: chrono::Utc::now(),
            };
            let (key, _) = crate::api::new_key(&ws.id, Some("first key".into()));
            store.create_workspace(&ws, &key).await?;
            ws.id
        }
    };
    let saved = read_env(env_file);
    let saved_key = match saved.get("WEIR_API_KEY") {
        Some(k) if key_works(store, &workspace_id, k).await => Some(k.clone()),
        _ => None,
    };
    let reused_key = saved_key.is_some();
    let secret = match saved_key {
        Some(k) => k,
        None => {
            let (key, secret) = crate::api::new_key(&workspace_id, Some("demo".into()));
            store.create_key(&key).await?;
            secret
        }
    };
    let saved_hook = match saved.get("WEIR_DEMO_HOOK") {
        Some(h) if hook_works(store, &workspace_id, h).await => Some(h.clone()),
        _ => None,
    };
    let mut reused_webhook = false;

    let mut hello_webhook = String::new();
    for (file, name, flow, defaults) in DEPLOYMENTS {
        let path = examples.join(format!("{file}.wasm"));
        let script = if file.starts_with("python/") {
            Some("scripts/build-python-guests")
        } else if file.starts_with("js/") {
            Some("scripts/build-js-guests")
        } else {
            None
        };
        if let Some(script) = script.filter(|_| !path.exists()) {
            println!(
                "{} was not built ({script}): `{name}` is not deployed",
                path.display()
            );
            continue;
        }
        let bytes = std::fs::read(&path).with_context(|| {
            format!("cannot read {} (run scripts/build-guests)", path.display())
        })?;
        let (status, component) = call(
            server,
            &secret,
            "POST",
            "/api/components",
            Body::from(bytes),
            "application/wasm",
        )
        .await?;
        if !status.is_success() {
            bail!("uploading {} failed: {component}", path.display());
        }
        let digest = component["digest"].as_str().unwrap_or_default().to_owned();
        let spec = json!({
            "name": name,
            "component": digest,
            "flow": flow,
            "parameters": serde_json::from_str::<Value>(defaults)?,
            "description": format!("The {file} example"),
            "webhook": {"enabled": *name == "hello"},
        });
        let (status, deployment) = call(
            server,
            &secret,
            "POST",
            "/api/deployments",
            Body::from(spec.to_string()),
            "application/json",
        )
        .await?;
        let deployment = match status {
            StatusCode::CREATED => deployment,
            StatusCode::CONFLICT => {
                let mut patch = json!({"component": digest, "flow": flow});
                if *name == "hello" {
                    // Keeps the token when the webhook is on and unsigned already.
                    patch["webhook"] = json!({"enabled": true, "signed": false});
                }
                let uri = format!("/api/deployments/{name}");
                let (status, d) = call(
                    server,
                    &secret,
                    "PATCH",
                    &uri,
                    Body::from(patch.to_string()),
                    "application/json",
                )
                .await?;
                if !status.is_success() {
                    bail!("updating deployment {name} failed: {d}");
                }
                if *name == "hello" && d["webhook"]["url"].is_string() {
                    d
                } else if *name == "hello" && saved_hook.is_some() {
                    reused_webhook = true;
                    json!({"webhook": {"url": saved_hook.clone()}})
                } else if *name == "hello" {
                    let uri = format!("/api/deployments/{name}/webhook/rotate");
                    call(
                        server,
                        &secret,
                        "POST",
                        &uri,
                        Body::empty(),
                        "application/json",
                    )
                    .await?
                    .1
                } else {
                    d
                }
            }
            _ => bail!("deploying {name} failed: {deployment}"),
        };
        if *name == "hello" {
            hello_webhook = deployment["webhook"]["url"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
        }
    }
    Ok(Demo {
        api_key: secret,
        hello_webhook,
        reused_key,
        reused_webhook,
    })
}
