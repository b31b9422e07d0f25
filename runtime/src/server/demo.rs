//! `weir server --demo DIR`: a demo workspace with the examples uploaded and deployed,
//! ready to trigger. Everything but the workspace goes through the API itself.

use super::Server;
use crate::store::WorkspaceRecord;
use anyhow::{Context, bail};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use std::path::Path;
use tower::ServiceExt;

/// The examples the demo deploys: (component file stem, deployment name, flow, defaults).
const DEPLOYMENTS: &[(&str, &str, &str, &str)] = &[
    ("hello", "hello", "hello", "{}"),
    ("etl", "etl", "etl", "{}"),
    ("retries", "retries", "retries", "{}"),
    ("caching", "caching", "caching", r#"{"x": 3}"#),
    ("subflows", "subflows", "parent", "{}"),
];

/// What a user needs to try the demo.
pub struct Demo {
    pub api_key: String,
    /// `/hooks/<token>` of the hello deployment.
    pub hello_webhook: String,
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

pub async fn setup(server: &Server, examples: &Path) -> anyhow::Result<Demo> {
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
    let (key, secret) = crate::api::new_key(&workspace_id, Some("demo".into()));
    store.create_key(&key).await?;

    let mut hello_webhook = String::new();
    for (file, name, flow, defaults) in DEPLOYMENTS {
        let path = examples.join(format!("{file}.wasm"));
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
                let patch = json!({"component": digest, "flow": flow});
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
                if *name == "hello" {
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
    })
}
