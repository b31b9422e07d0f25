//! `weir build FILE -o flows.wasm`: a file of flows and tasks written with one of Weir's
//! guest SDKs into a component. A Python file (`.py`, `guest-sdk/python`) goes through
//! componentize-py ([`python`]); a JavaScript or TypeScript file (`.js`, `.mjs`, `.ts`,
//! `.mts`, `guest-sdk/js`) through esbuild and componentize-js ([`js`]).
//!
//! The SDKs and the WIT world are compiled into this binary, so building needs nothing of
//! the repository: the first build of each language installs its toolchain, pinned, into
//! a directory of its own under the cache directory (`WEIR_CACHE_DIR`, else
//! `~/.cache/weir`), which later builds reuse.

mod js;
mod python;

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Output};

/// The WIT world every component implements.
const WIT: &str = include_str!("../../../../wit/weir.wit");

#[derive(clap::Args)]
pub struct BuildArgs {
    /// The file holding the flows and tasks: Python (`from weir import flow, task`) or
    /// JavaScript / TypeScript (`import { flow, task } from "weir"`).
    file: PathBuf,
    /// The component to write (default: the file's name with `.wasm`).
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Python: another directory to find the file's imports in (repeatable); the file's
    /// own directory and the active virtualenv's site-packages are searched anyway.
    #[arg(long = "path", value_name = "DIR")]
    paths: Vec<PathBuf>,
    /// Python: a componentize-py executable to use instead of the cached one.
    #[arg(long, env = "WEIR_COMPONENTIZE_PY", value_name = "PATH")]
    componentize_py: Option<PathBuf>,
    /// Python: the Python (3.10 or later) that creates the cached virtualenv.
    #[arg(long, env = "WEIR_PYTHON", default_value = "python3")]
    python: String,
    /// JavaScript: the Node.js (18 or later) that runs esbuild and componentize-js.
    #[arg(long, env = "WEIR_NODE", default_value = "node")]
    node: String,
    /// JavaScript: the npm that installs them into the cache directory.
    #[arg(long, env = "WEIR_NPM", default_value = "npm")]
    npm: String,
    /// Where the toolchains are kept (default: ~/.cache/weir).
    #[arg(long, env = "WEIR_CACHE_DIR", value_name = "DIR")]
    cache_dir: Option<PathBuf>,
}

/// `weir build`.
pub fn run(args: BuildArgs) -> anyhow::Result<ExitCode> {
    let language = Language::of(&args.file)?;
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| args.file.with_extension("wasm"));
    // Written beside the output, then renamed: a failed build leaves no half component.
    let partial = output.with_extension(format!("wasm.{}.tmp", std::process::id()));
    let started = std::time::Instant::now();
    let built = match language {
        Language::Python => python::build(&args, &partial),
        Language::JavaScript => js::build(&args, &partial),
    };
    if let Err(e) = built {
        let _ = std::fs::remove_file(&partial);
        return Err(e);
    }
    std::fs::rename(&partial, &output)
        .with_context(|| format!("cannot write {}", output.display()))?;
    let size = std::fs::metadata(&output).map(|m| m.len()).unwrap_or(0);
    eprintln!(
        "built {} ({:.1} MB) in {:.1} s",
        output.display(),
        size as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, PartialEq)]
enum Language {
    Python,
    JavaScript,
}

impl Language {
    fn of(file: &Path) -> anyhow::Result<Self> {
        match file.extension().and_then(|e| e.to_str()) {
            Some("py") => Ok(Language::Python),
            Some("js" | "mjs" | "ts" | "mts") => Ok(Language::JavaScript),
            _ => bail!(
                "weir build builds a file of flows written in Python (.py) or JavaScript / \
                 TypeScript (.js, .mjs, .ts, .mts), not {}",
                file.display()
            ),
        }
    }
}

/// The directory of `file`, absolute.
fn directory_of(file: &Path) -> anyhow::Result<PathBuf> {
    file.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .canonicalize()
        .with_context(|| format!("cannot find the directory of {}", file.display()))
}

/// The cache directory: `--cache-dir` / `WEIR_CACHE_DIR`, else `$XDG_CACHE_HOME/weir`,
/// else `~/.cache/weir`.
fn cache_dir(args: &BuildArgs) -> anyhow::Result<PathBuf> {
    if let Some(dir) = &args.cache_dir {
        return Ok(dir.clone());
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join("weir"));
    }
    match std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        Some(home) => Ok(PathBuf::from(home).join(".cache/weir")),
        None => bail!("no cache directory: set WEIR_CACHE_DIR (or HOME)"),
    }
}

/// A temporary directory holding what a build stages: an SDK, the WIT world, the
/// generated module that wraps the user's file. Removed when dropped.
struct Stage {
    path: PathBuf,
}

impl Stage {
    fn new() -> anyhow::Result<Self> {
        let path = std::env::temp_dir().join(format!("weir-build-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        Ok(Self { path })
    }

    /// Writes `(relative path, text)` files into the stage.
    fn write<'a>(&self, files: impl IntoIterator<Item = (String, &'a str)>) -> anyhow::Result<()> {
        for (path, text) in files {
            let target = self.path.join(path);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&target, text)
                .with_context(|| format!("cannot write {}", target.display()))?;
        }
        Ok(())
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A toolchain directory is complete when it holds this file (written last, after an
/// install into a directory of its own that is renamed into place).
const COMPLETE: &str = ".complete";

/// Installs a toolchain with `install` into a fresh directory under `cache`, then renames
/// it to `target`: builds running at once never see half of one, and a failed install
/// leaves nothing behind.
fn install_into(
    cache: &Path,
    target: &Path,
    install: impl FnOnce(&Path) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(cache)
        .with_context(|| format!("cannot create the cache directory {}", cache.display()))?;
    let partial = cache.join(format!(".install-{}", uuid::Uuid::now_v7()));
    let result = install(&partial).and_then(|()| {
        std::fs::write(partial.join(COMPLETE), "")?;
        Ok(())
    });
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&partial);
        return Err(e);
    }
    if std::fs::rename(&partial, target).is_err() {
        // Another build installed it meanwhile.
        let _ = std::fs::remove_dir_all(&partial);
        if !target.join(COMPLETE).exists() {
            bail!("cannot move the new toolchain to {}", target.display());
        }
    }
    Ok(())
}

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).trim().to_owned()
}

/// Every file under `root/dir` whose name ends with one of `extensions`, relative to
/// `root`, sorted (for the tests that check each SDK is embedded whole).
#[cfg(test)]
fn files_on_disk(root: &Path, dir: &str, extensions: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    let mut dirs = vec![root.join(dir)];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                if name != "__pycache__" && name != "node_modules" {
                    dirs.push(path);
                }
            } else if extensions.iter().any(|e| name.ends_with(e)) {
                let relative = path.strip_prefix(root).unwrap();
                out.push(relative.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_language_comes_from_the_extension() {
        assert_eq!(
            Language::of(Path::new("a/flows.py")).unwrap(),
            Language::Python
        );
        for name in ["flows.js", "flows.mjs", "flows.ts", "flows.mts"] {
            assert_eq!(Language::of(Path::new(name)).unwrap(), Language::JavaScript);
        }
        let e = Language::of(Path::new("flows.rb")).unwrap_err();
        assert!(e.to_string().contains("Python (.py) or JavaScript"), "{e}");
    }
}
