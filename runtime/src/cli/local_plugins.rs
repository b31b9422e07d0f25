//! The plugins `weir run` offers a flow without a server: the built-in ones from their
//! directory, and the files given with `--plugin NAME=FILE.wasm`, each as version 1,
//! loaded when a run first calls it.

use crate::host::Engine;
use crate::orchestrate::{Plugin, PluginSource};
use futures_util::future::BoxFuture;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::Mutex;

/// Plugins from files: each name's file, and the ones loaded so far.
pub struct LocalPlugins {
    engine: Arc<Engine>,
    /// By name: the file and whether it is a built-in.
    files: BTreeMap<String, (PathBuf, bool)>,
    loaded: Mutex<BTreeMap<String, Arc<Plugin>>>,
}

impl LocalPlugins {
    /// The built-ins in `dir` (if any), and `extra` (`NAME=FILE`), which take their
    /// names' place.
    pub fn new(
        engine: Arc<Engine>,
        dir: Option<&std::path::Path>,
        extra: &[String],
    ) -> anyhow::Result<Self> {
        let mut files = BTreeMap::new();
        if let Some(dir) = dir {
            for (name, path) in crate::executor::builtin_files(dir)? {
                files.insert(name, (path, true));
            }
        }
        for spec in extra {
            let Some((name, file)) = spec.split_once('=') else {
                anyhow::bail!("--plugin {spec:?}: expected NAME=FILE.wasm");
            };
            crate::model::plugin::check_name(name)
                .map_err(|e| anyhow::anyhow!("--plugin {spec:?}: {e}"))?;
            let path = PathBuf::from(file);
            if !path.is_file() {
                anyhow::bail!("--plugin {spec:?}: no file {file}");
            }
            files.insert(name.to_owned(), (path, false));
        }
        Ok(LocalPlugins {
            engine,
            files,
            loaded: Mutex::new(BTreeMap::new()),
        })
    }

    fn known(&self) -> String {
        if self.files.is_empty() {
            return "none (give one with --plugin NAME=FILE.wasm)".into();
        }
        self.files
            .keys()
            .map(|n| format!("{n}@1"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl PluginSource for LocalPlugins {
    fn plugin<'a>(
        &'a self,
        _workspace_id: &'a str,
        name: &'a str,
        version: Option<i64>,
    ) -> BoxFuture<'a, Result<Arc<Plugin>, String>> {
        Box::pin(async move {
            let Some((path, builtin)) = self.files.get(name) else {
                return Err(format!(
                    "no plugin named '{name}' here; plugins: {}",
                    self.known()
                ));
            };
            if let Some(v) = version.filter(|v| *v != 1) {
                return Err(format!(
                    "plugin '{name}' has no version {v}; its latest is 1 (a plugin given to \
                     `weir run` is version 1)"
                ));
            }
            let mut loaded = self.loaded.lock().await;
            if let Some(p) = loaded.get(name) {
                return Ok(p.clone());
            }
            let bytes = tokio::fs::read(path)
                .await
                .map_err(|e| format!("plugin '{name}': cannot read {}: {e}", path.display()))?;
            let component = self.engine.load(&bytes).await.map_err(|e| {
                format!("plugin '{name}' ({}) cannot be loaded: {e}", path.display())
            })?;
            let plugin = Arc::new(Plugin {
                name: name.to_owned(),
                version: 1,
                builtin: *builtin,
                component,
            });
            loaded.insert(name.to_owned(), plugin.clone());
            Ok(plugin)
        })
    }
}
