//! Plugins: named, versioned components whose tasks the workspace's flows call. Built-in
//! plugins belong to the workspace `''` and are seen by every workspace; a workspace's
//! own plugin of the same name hides the built-in one.

use super::db::{BeginWrite, DbRow, with_db};
use super::*;
use serde::Serialize;

/// The workspace of the built-in plugins.
pub const BUILTIN: &str = "";

/// Versions one plugin may have; the oldest must be deleted to register more.
pub const MAX_PLUGIN_VERSIONS: i64 = 1000;

/// One version of a plugin, with its component's manifest.
#[derive(Debug, Clone, Serialize)]
pub struct PluginRecord {
    pub name: String,
    pub version: i64,
    pub digest: String,
    pub builtin: bool,
    pub description: Option<String>,
    pub created: DateTime<Utc>,
    pub manifest: Value,
}

fn plugin_from_row(r: &impl DbRow) -> Result<PluginRecord> {
    Ok(PluginRecord {
        name: r.col("name")?,
        version: r.col("version")?,
        digest: r.col("digest")?,
        builtin: r.col::<String>("workspace_id")?.is_empty(),
        description: r.col("description")?,
        created: parse_ts(&r.col::<String>("created")?)?,
        manifest: parse_json(&r.col::<String>("manifest")?)?,
    })
}

/// A query of plugins with their manifests, then `$where` (a literal).
macro_rules! select {
    ($where:literal) => {
        concat!(
            "SELECT p.workspace_id, p.name, p.version, p.digest, p.description, p.created, \
             c.manifest FROM plugins p JOIN components c ON c.digest = p.digest ",
            $where
        )
    };
}

/// What registering a plugin did.
#[derive(Debug)]
pub enum Registered {
    /// A new version.
    New(PluginRecord),
    /// The component already was a version of the plugin.
    Existing(PluginRecord),
    /// The plugin has [`MAX_PLUGIN_VERSIONS`] versions.
    TooManyVersions,
}

impl Store {
    /// Registers a stored component as the next version of a plugin of a workspace
    /// ([`BUILTIN`] for the built-in ones); the same component again is the version it
    /// already is.
    pub async fn register_plugin(
        &self,
        workspace_id: &str,
        name: &str,
        digest: &str,
        description: Option<&str>,
    ) -> Result<Registered> {
        with_db!(&self.db, pool => {
        let mut tx = pool.begin_write().await?;
        let select = select!(
            "WHERE p.workspace_id = $1 AND p.name = $2 AND p.digest = $3"
        );
        let existing = sqlx::query(select)
            .bind(workspace_id)
            .bind(name)
            .bind(digest)
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(row) = existing {
            return Ok(Registered::Existing(plugin_from_row(&row)?));
        }
        let (latest, count): (Option<i64>, i64) = {
            let row = sqlx::query(
                "SELECT MAX(version) AS v, COUNT(*) AS n FROM plugins
                 WHERE workspace_id = $1 AND name = $2",
            )
            .bind(workspace_id)
            .bind(name)
            .fetch_one(&mut *tx)
            .await?;
            (row.col("v")?, row.col("n")?)
        };
        if count >= MAX_PLUGIN_VERSIONS {
            return Ok(Registered::TooManyVersions);
        }
        let version = latest.unwrap_or(0) + 1;
        sqlx::query(
            "INSERT INTO plugins (workspace_id, name, version, digest, description, created)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(workspace_id)
        .bind(name)
        .bind(version)
        .bind(digest)
        .bind(description)
        .bind(ts(Utc::now()))
        .execute(&mut *tx)
        .await?;
        let select = select!(
            "WHERE p.workspace_id = $1 AND p.name = $2 AND p.version = $3"
        );
        let row = sqlx::query(select)
            .bind(workspace_id)
            .bind(name)
            .bind(version)
            .fetch_one(&mut *tx)
            .await?;
        let record = plugin_from_row(&row)?;
        tx.commit().await?;
        Ok(Registered::New(record))
        })
    }

    /// The plugin a workspace's flows find under `name`: the workspace's own, else the
    /// built-in one; at `version`, else its latest.
    pub async fn find_plugin(
        &self,
        workspace_id: &str,
        name: &str,
        version: Option<i64>,
    ) -> Result<Option<PluginRecord>> {
        with_db!(&self.db, pool => {
        // The workspace's own first ('' sorts last), then the newest version.
        let select = select!(
            "WHERE p.workspace_id IN ($1, '') AND p.name = $2
               AND ($3 = 0 OR p.version = $3)
             ORDER BY p.workspace_id DESC, p.version DESC LIMIT 1"
        );
        let row = sqlx::query(select)
            .bind(workspace_id)
            .bind(name)
            .bind(version.unwrap_or(0))
            .fetch_optional(pool)
            .await?;
        row.map(|r| plugin_from_row(&r)).transpose()
        })
    }

    /// The latest version of every plugin a workspace sees, by name (its own hide
    /// built-in ones of the same name).
    pub async fn plugins(&self, workspace_id: &str) -> Result<Vec<PluginRecord>> {
        let rows: Vec<PluginRecord> = with_db!(&self.db, pool => {
            let select = select!(
            "WHERE p.workspace_id IN ($1, '')
                   AND p.version = (SELECT MAX(q.version) FROM plugins q
                                    WHERE q.workspace_id = p.workspace_id AND q.name = p.name)
                 ORDER BY p.name, p.workspace_id DESC LIMIT 10000"
        );
            let rows = sqlx::query(select).bind(workspace_id).fetch_all(pool).await?;
            rows.iter().map(plugin_from_row).collect::<Result<Vec<_>>>()?
        });
        let mut seen = std::collections::HashSet::new();
        Ok(rows
            .into_iter()
            .filter(|p| seen.insert(p.name.clone()))
            .collect())
    }

    /// Every version of the plugin a workspace finds under `name`, newest first.
    pub async fn plugin_versions(
        &self,
        workspace_id: &str,
        name: &str,
    ) -> Result<Vec<PluginRecord>> {
        let Some(latest) = self.find_plugin(workspace_id, name, None).await? else {
            return Ok(Vec::new());
        };
        let owner = if latest.builtin {
            BUILTIN
        } else {
            workspace_id
        };
        with_db!(&self.db, pool => {
            let select = select!(
            "WHERE p.workspace_id = $1 AND p.name = $2
                 ORDER BY p.version DESC LIMIT 1000"
        );
            let rows = sqlx::query(select)
                .bind(owner)
                .bind(name)
                .fetch_all(pool)
                .await?;
            rows.iter().map(plugin_from_row).collect()
        })
    }

    /// Deletes every version of a workspace's own plugin; false when it has none of
    /// that name.
    pub async fn delete_plugin(&self, workspace_id: &str, name: &str) -> Result<bool> {
        if workspace_id == BUILTIN {
            return Ok(false);
        }
        with_db!(&self.db, pool => {
            let done = sqlx::query("DELETE FROM plugins WHERE workspace_id = $1 AND name = $2")
                .bind(workspace_id)
                .bind(name)
                .execute(pool)
                .await?;
            Ok(done.rows_affected() > 0)
        })
    }
}
