//! `weir:flow/artifacts`: markdown, table, link and progress artifacts of a run.

use super::HostState;
use super::weir::flow::artifacts::{self, Artifact, ArtifactData};
use crate::store::{ArtifactRecord, Write};
use chrono::Utc;
use serde_json::{Value, json};

/// Prefect's rule: keys are lowercase letters, digits and dashes.
fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 256
        && key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn progress_value(p: f64) -> Result<Value, String> {
    if !(0.0..=100.0).contains(&p) {
        return Err(format!("progress must be between 0 and 100, not {p}"));
    }
    Ok(json!(p))
}

impl artifacts::Host for HostState {
    async fn create(&mut self, artifact: Artifact) -> wasmtime::Result<Result<String, String>> {
        self.charge()?;
        let scope = self.scope("artifacts.create")?;
        if let Some(key) = &artifact.key
            && !valid_key(key)
        {
            return Ok(Err(format!(
                "artifact key {key:?} must be lowercase letters, digits and dashes"
            )));
        }
        let (kind, data) = match artifact.data {
            ArtifactData::Markdown(md) => ("markdown", Value::String(md)),
            ArtifactData::Table(table) => match serde_json::from_str::<Value>(&table) {
                Ok(v @ Value::Array(_)) => ("table", v),
                Ok(_) => return Ok(Err("a table artifact must be a JSON array of rows".into())),
                Err(e) => return Ok(Err(format!("a table artifact must be JSON: {e}"))),
            },
            ArtifactData::Link(link) => ("link", json!({"url": link.url, "text": link.text})),
            ArtifactData::Progress(p) => match progress_value(p) {
                Ok(v) => ("progress", v),
                Err(e) => return Ok(Err(e)),
            },
        };
        let size = data.to_string().len();
        let max = scope.orch.engine.limits().max_artifact_bytes;
        if size > max {
            return Ok(Err(format!(
                "the artifact is {size} bytes, over the limit of {max} bytes"
            )));
        }
        let id = uuid::Uuid::now_v7().to_string();
        if kind == "progress" {
            scope.calls().progress_artifacts.insert(id.clone());
        }
        let now = Utc::now();
        scope
            .orch
            .store
            .write(Write::ArtifactCreated(ArtifactRecord {
                id: id.clone(),
                key: artifact.key,
                kind: kind.to_owned(),
                description: artifact.description,
                data,
                flow_run_id: scope.id.clone(),
                task_run_id: self.task.as_ref().map(|t| t.task_run_id.clone()),
                created: now,
                updated: now,
            }));
        Ok(Ok(id))
    }

    async fn update_progress(
        &mut self,
        id: String,
        progress: f64,
    ) -> wasmtime::Result<Result<(), String>> {
        self.charge()?;
        let scope = self.scope("artifacts.update-progress")?;
        if !scope.calls().progress_artifacts.contains(&id) {
            return Ok(Err(format!(
                "no progress artifact {id} was created by this flow run"
            )));
        }
        let data = match progress_value(progress) {
            Ok(v) => v,
            Err(e) => return Ok(Err(e)),
        };
        scope.orch.store.write(Write::ArtifactUpdated {
            id,
            data,
            updated: Utc::now(),
        });
        Ok(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_prefects_rule() {
        assert!(valid_key("etl-report-2"));
        assert!(!valid_key("ETL"));
        assert!(!valid_key("a_b"));
        assert!(!valid_key(""));
    }
}
