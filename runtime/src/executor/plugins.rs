//! The plugins flows call, found in the store and loaded like any component; the
//! built-in plugins registered at start from the components shipped with Weir.

use super::Executor;
use crate::orchestrate::{Plugin, PluginSource};
use crate::store::{BUILTIN_PLUGINS, Registered};
use futures_util::future::BoxFuture;
use std::path::Path;
use std::sync::Arc;

/// What a built-in plugin's file is named: `plugin_<name>.wasm` (the crate
/// `plugins/<name>`, package `plugin-<name>`, built for wasm32-wasip2).
const FILE_PREFIX: &str = "plugin_";

impl PluginSource for Executor {
    fn plugin<'a>(
        &'a self,
        workspace_id: &'a str,
        name: &'a str,
        version: Option<i64>,
    ) -> BoxFuture<'a, Result<Arc<Plugin>, String>> {
        Box::pin(async move {
            let store = self.store();
            let found = store
                .find_plugin(workspace_id, name, version)
                .await
                .map_err(|e| format!("plugin '{name}' could not be looked up: {e}"))?;
            let Some(record) = found else {
                let known = store
                    .plugins(workspace_id)
                    .await
                    .map(|all| {
                        all.iter()
                            .map(|p| format!("{}@{}", p.name, p.version))
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .unwrap_or_default();
                let known = if known.is_empty() {
                    "none".to_owned()
                } else {
                    known
                };
                return Err(match version {
                    Some(v) => match store.find_plugin(workspace_id, name, None).await {
                        Ok(Some(latest)) => format!(
                            "plugin '{name}' has no version {v}; its latest is {}",
                            latest.version
                        ),
                        _ => {
                            format!("no plugin named '{name}' in this workspace; plugins: {known}")
                        }
                    },
                    None => format!("no plugin named '{name}' in this workspace; plugins: {known}"),
                });
            };
            let component = self.component(&record.digest).await.map_err(|e| {
                format!(
                    "plugin '{name}' version {} cannot be loaded: {e:#}",
                    record.version
                )
            })?;
            Ok(Arc::new(Plugin {
                name: record.name,
                version: record.version,
                builtin: record.builtin,
                component,
            }))
        })
    }
}

impl Executor {
    /// Registers the built-in plugins found in `dir` (`plugin_<name>.wasm`): a component
    /// not seen before under its name becomes its next version. Returns the plugins
    /// and versions registered; a file that is no component is skipped with a warning.
    pub async fn register_builtin_plugins(&self, dir: &Path) -> anyhow::Result<Vec<(String, i64)>> {
        let files = builtin_files(dir)?;
        let mut registered = Vec::new();
        for (name, path) in files {
            let bytes = tokio::fs::read(&path).await?;
            let loaded = match self.engine().load(&bytes).await {
                Ok(loaded) => loaded,
                Err(e) => {
                    tracing::warn!("built-in plugin {} cannot be loaded: {e}", path.display());
                    continue;
                }
            };
            let target = self.component_path(&loaded.digest);
            if tokio::fs::metadata(&target).await.is_err() {
                let tmp = target.with_extension(format!("tmp{}", uuid::Uuid::now_v7()));
                tokio::fs::write(&tmp, &bytes).await?;
                tokio::fs::rename(&tmp, &target).await?;
            }
            let store = self.store();
            let manifest = serde_json::to_value(&loaded.manifest)?;
            store.put_component_bytes(&loaded.digest, &bytes).await?;
            store
                .put_component(&loaded.digest, loaded.size, &manifest)
                .await?;
            let tasks: Vec<&str> = loaded
                .manifest
                .tasks
                .iter()
                .map(|t| t.name.as_str())
                .collect();
            let description = format!("Built-in plugin; tasks: {}", tasks.join(", "));
            let record = match store
                .register_plugin(BUILTIN_PLUGINS, &name, &loaded.digest, Some(&description))
                .await?
            {
                Registered::New(r) | Registered::Existing(r) => r,
                Registered::TooManyVersions => {
                    tracing::warn!("built-in plugin {name} has too many versions; not updated");
                    continue;
                }
            };
            registered.push((record.name, record.version));
        }
        Ok(registered)
    }
}

/// The built-in plugins' files in `dir` (`plugin_<name>.wasm`, `_` in a name read as
/// `-`), by name; a file whose name is no plugin's is skipped with a warning.
pub(crate) fn builtin_files(dir: &Path) -> std::io::Result<Vec<(String, std::path::PathBuf)>> {
    let mut files: Vec<(String, std::path::PathBuf)> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let path = entry.path();
            let stem = path.file_stem()?.to_str()?;
            let name = stem.strip_prefix(FILE_PREFIX)?;
            (path.extension()? == "wasm").then(|| (name.replace('_', "-"), path.clone()))
        })
        .filter(
            |(name, path)| match crate::model::plugin::check_name(name) {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!("{} is not a plugin: {e}", path.display());
                    false
                }
            },
        )
        .collect();
    files.sort();
    Ok(files)
}
