//! Artifacts of runs, by run and by key.

use super::db::{DbRow, with_db};
use super::*;
use sqlx::QueryBuilder;

impl Store {
    /// Artifacts created by a flow run and its task runs, oldest first.
    pub async fn artifacts(&self, flow_run_id: &str) -> Result<Vec<ArtifactRecord>> {
        self.artifacts_page(flow_run_id, None, i64::MAX).await
    }

    /// At most `limit` artifacts of a flow run, oldest first, after the one created at
    /// `after.0` with id `after.1`.
    pub async fn artifacts_page(
        &self,
        flow_run_id: &str,
        after: Option<(DateTime<Utc>, &str)>,
        limit: i64,
    ) -> Result<Vec<ArtifactRecord>> {
        with_db!(&self.db, pool, DB => {
        let mut q = QueryBuilder::<DB>::new("SELECT * FROM artifacts WHERE flow_run_id = ");
        q.push_bind(flow_run_id.to_owned());
        if let Some((created, id)) = after {
            q.push(" AND (created, id) > (")
                .push_bind(ts(created))
                .push(", ")
                .push_bind(id.to_owned())
                .push(")");
        }
        q.push(" ORDER BY created, id LIMIT ").push_bind(limit);
        let rows = q.build().fetch_all(pool).await?;
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

    /// At most `limit` versions of an artifact key within a workspace, latest first,
    /// before the one created at `before.0` with id `before.1`.
    pub async fn workspace_artifacts_by_key(
        &self,
        workspace_id: &str,
        key: &str,
        before: Option<(DateTime<Utc>, &str)>,
        limit: i64,
    ) -> Result<Vec<super::ArtifactRecord>> {
        // A text with a NUL matches nothing stored (PostgreSQL takes no NUL in text, and
        // SQLite's full-text query none in its terms): answered without asking either.
        if key.contains('\0') {
            return Ok(Vec::new());
        }
        with_db!(&self.db, pool, DB => {
        let mut q = QueryBuilder::<DB>::new("SELECT * FROM artifacts WHERE workspace_id = ");
        q.push_bind(workspace_id.to_owned())
            .push(" AND key = ")
            .push_bind(key.to_owned());
        if let Some((created, id)) = before {
            q.push(" AND (created, id) < (")
                .push_bind(ts(created))
                .push(", ")
                .push_bind(id.to_owned())
                .push(")");
        }
        q.push(" ORDER BY created DESC, id DESC LIMIT ").push_bind(limit);
        let rows = q.build().fetch_all(pool).await?;
        rows.iter().map(super::artifact_from_row).collect()
        })
    }

    /// At most `limit` artifact keys of a workspace in key order after `after`, each
    /// with its number of versions (counted up to [`MAX_COUNTED_VERSIONS`]) and its
    /// latest version's type and time. Each key costs a few index seeks, however many
    /// versions it has.
    pub async fn artifact_keys(
        &self,
        workspace_id: &str,
        after: &str,
        limit: i64,
    ) -> Result<Vec<ArtifactKey>> {
        with_db!(&self.db, pool => {
        let rows = sqlx::query(
            "WITH RECURSIVE keys(key, n) AS (
                 SELECT (SELECT MIN(key) FROM artifacts WHERE workspace_id = $1 AND key > $2), 1
                 UNION ALL
                 SELECT (SELECT MIN(a.key) FROM artifacts a
                         WHERE a.workspace_id = $1 AND a.key > keys.key), keys.n + 1
                 FROM keys WHERE keys.key IS NOT NULL AND keys.n < $3
             )
             SELECT k.key AS key,
                 (SELECT COUNT(*) FROM (SELECT 1 FROM artifacts b
                     WHERE b.workspace_id = $1 AND b.key = k.key LIMIT $4) c) AS versions,
                 (SELECT MAX(b.created) FROM artifacts b
                     WHERE b.workspace_id = $1 AND b.key = k.key) AS latest,
                 (SELECT b.type FROM artifacts b WHERE b.workspace_id = $1 AND b.key = k.key
                     ORDER BY b.created DESC LIMIT 1) AS type
             FROM keys k WHERE k.key IS NOT NULL ORDER BY k.key",
        )
        .bind(workspace_id)
        .bind(after)
        .bind(limit)
        .bind(MAX_COUNTED_VERSIONS)
        .fetch_all(pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ArtifactKey {
                    key: r.col("key")?,
                    versions: r.col("versions")?,
                    latest: parse_ts(&r.col::<String>("latest")?)?,
                    kind: r.col("type")?,
                })
            })
            .collect()
        })
    }
}

/// Versions of a key counted at most; past it the UI says "1000+".
pub const MAX_COUNTED_VERSIONS: i64 = 1000;

/// An artifact key of a workspace.
#[derive(Debug, Clone)]
pub struct ArtifactKey {
    pub key: String,
    pub versions: i64,
    pub latest: DateTime<Utc>,
    pub kind: String,
}
