//! `weir:flow/artifacts`: markdown, table, link and progress artifacts of a run.

use super::HostState;
use super::weir::flow::artifacts::{self, Artifact};

impl artifacts::Host for HostState {
    async fn create(&mut self, artifact: Artifact) -> wasmtime::Result<Result<String, String>> {
        self.charge()?;
        let run = self.run("artifacts.create")?;
        Ok(run.create_artifact(
            self.task.as_deref(),
            super::convert::artifact_from_wit(artifact),
        ))
    }

    async fn update_progress(
        &mut self,
        id: String,
        progress: f64,
    ) -> wasmtime::Result<Result<(), String>> {
        self.charge()?;
        Ok(self
            .run("artifacts.update-progress")?
            .update_progress(id, progress))
    }
}
