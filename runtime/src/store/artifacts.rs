//! Artifacts of runs, by run and by key.

use super::db::with_db;
use super::*;

impl Store {
    /// Artifacts created by a flow run and its task runs, oldest first.
    pub async fn artifacts(&self, flow_run_id: &str) -> Result<Vec<ArtifactRecord>> {
        with_db!(&self.db, pool => {
        let rows =
            sqlx::query("SELECT * FROM artifacts WHERE flow_run_id = $1 ORDER BY created, id")
                .bind(flow_run_id)
                .fetch_all(pool)
                .await?;
        rows.iter().map(artifact_from_row).collect()
        })
    }

    /// Versions of the artifact with `key`, latest first.
    pub async fn artifacts_by_key(&self, key: &str) -> Result<Vec<ArtifactRecord>> {
        with_db!(&self.db, pool => {
        let rows =
            sqlx::query("SELECT * FROM artifacts WHERE key = $1 ORDER BY created DESC, id DESC")
                .bind(key)
                .fetch_all(pool)
                .await?;
        rows.iter().map(artifact_from_row).collect()
        })
    }

    /// Versions of an artifact key within a workspace, latest first.
    pub async fn workspace_artifacts_by_key(
        &self,
        workspace_id: &str,
        key: &str,
    ) -> Result<Vec<super::ArtifactRecord>> {
        with_db!(&self.db, pool => {
        let rows = sqlx::query(
            "SELECT a.* FROM artifacts a JOIN flow_runs f ON f.id = a.flow_run_id
             WHERE f.workspace_id = $1 AND a.key = $2 ORDER BY a.created DESC, a.id DESC",
        )
        .bind(workspace_id)
        .bind(key)
        .fetch_all(pool)
        .await?;
        rows.iter().map(super::artifact_from_row).collect()
        })
    }
}
