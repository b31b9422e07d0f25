//! Python flows into a component, through componentize-py.
//!
//! The first build installs componentize-py into a virtualenv of its own under the cache
//! directory, which later builds reuse. The user's file imports `weir`; its directory,
//! and the active virtualenv's site-packages (`VIRTUAL_ENV`), are where its other
//! imports are found. Only pure-Python packages can be bundled.

use super::{BuildArgs, COMPLETE, Stage, WIT, cache_dir, directory_of, install_into, stderr_of};
use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The componentize-py release the SDK is built and tested with.
pub const COMPONENTIZE_PY_VERSION: &str = "0.25.1";

/// The module componentize-py wraps: it prepares the interpreter, imports the user's
/// module and exports the SDK's `Guest`.
const APP_MODULE: &str = "_weir_app";

/// Module names the component needs for itself.
const RESERVED: &[&str] = &[
    "weir",
    "wit_world",
    APP_MODULE,
    "componentize_py_types",
    "componentize_py_runtime",
    "componentize_py_async_support",
    "poll_loop",
];

macro_rules! sdk_file {
    ($path:literal) => {
        (
            $path,
            include_str!(concat!("../../../../guest-sdk/python/", $path)),
        )
    };
}

/// The Python SDK, file by file (every `.py` of `guest-sdk/python/weir`; a unit test
/// checks that none is missing).
const SDK: &[(&str, &str)] = &[
    sdk_file!("weir/__init__.py"),
    sdk_file!("weir/_asyncio.py"),
    sdk_file!("weir/_context.py"),
    sdk_file!("weir/_guest.py"),
    sdk_file!("weir/_host.py"),
    sdk_file!("weir/_json.py"),
    sdk_file!("weir/_prelude.py"),
    sdk_file!("weir/_registry.py"),
    sdk_file!("weir/artifacts.py"),
    sdk_file!("weir/cache_policies.py"),
    sdk_file!("weir/deployments.py"),
    sdk_file!("weir/exceptions.py"),
    sdk_file!("weir/flow_runs.py"),
    sdk_file!("weir/flows.py"),
    sdk_file!("weir/futures.py"),
    sdk_file!("weir/input.py"),
    sdk_file!("weir/logging.py"),
    sdk_file!("weir/plugins.py"),
    sdk_file!("weir/schema.py"),
    sdk_file!("weir/states.py"),
    sdk_file!("weir/task_runners.py"),
    sdk_file!("weir/transactions.py"),
    sdk_file!("weir/tasks.py"),
    sdk_file!("weir/variables.py"),
    sdk_file!("weir/blocks/__init__.py"),
    sdk_file!("weir/blocks/system.py"),
    sdk_file!("weir/concurrency/__init__.py"),
    sdk_file!("weir/concurrency/sync.py"),
    sdk_file!("weir/runtime/__init__.py"),
    sdk_file!("weir/runtime/_current.py"),
    sdk_file!("weir/runtime/deployment.py"),
    sdk_file!("weir/runtime/flow_run.py"),
    sdk_file!("weir/runtime/task_run.py"),
];

/// Builds the Python file `args.file` into the component `output`.
pub(super) fn build(args: &BuildArgs, output: &Path) -> anyhow::Result<()> {
    let file = &args.file;
    let module = module_name(file)?;
    let source =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let dir = directory_of(file)?;

    let tool = Tool::find(args)?;
    tool.check_syntax(file, &source)?;

    let stage = Stage::new()?;
    let app = app_module(&module);
    stage.write(
        SDK.iter()
            .map(|(path, text)| ((*path).to_owned(), *text))
            .chain([
                ("wit/weir.wit".to_owned(), WIT),
                (format!("{APP_MODULE}.py"), app.as_str()),
            ]),
    )?;
    let mut command = tool.command();
    command
        .arg("-d")
        .arg(stage.path.join("wit"))
        .args(["-w", "component", "componentize", APP_MODULE, "-p"])
        .arg(&stage.path)
        .arg("-p")
        .arg(&dir);
    for path in &args.paths {
        command.arg("-p").arg(path);
    }
    command.arg("-o").arg(output);
    let out = command
        .output()
        .with_context(|| format!("cannot run {}", tool.describe()))?;
    let report =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    // componentize-py shows the file's directory as /1 (the stage is /0): show it as it is.
    let report = report.replace("File \"/1/", &format!("File \"{}/", dir.display()));
    if !out.status.success() || !output.exists() {
        bail!("{}", explain_failure(file, &module, &report));
    }
    Ok(())
}

/// The module name of the user's file: its stem, a Python identifier of its own.
fn module_name(file: &Path) -> anyhow::Result<String> {
    let stem = file
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default()
        .to_owned();
    let identifier = stem
        .chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
        && stem.chars().all(|c| c.is_alphanumeric() || c == '_');
    if !identifier {
        bail!(
            "{} is not importable as a Python module: name it with letters, digits and \
             underscores (for example flows.py)",
            file.display()
        );
    }
    if RESERVED.contains(&stem.as_str()) {
        bail!(
            "{} would hide the module `{stem}` the component needs: rename it (for example \
             flows.py)",
            file.display()
        );
    }
    Ok(stem)
}

/// The `_weir_app` module componentize-py wraps.
fn app_module(module: &str) -> String {
    format!(
        "\"\"\"Generated by `weir build`: the component's module.\"\"\"\n\
         import weir._prelude\n\
         weir._prelude.prepare()\n\
         import {module}  # noqa: E402,F401\n\
         weir._prelude.finish({module:?})\n\
         from weir._guest import Guest  # noqa: E402,F401\n"
    )
}

/// The last Python traceback in a report: from "Traceback" to the exception's line.
/// componentize-py wraps the module's traceback in an `AssertionError: Traceback ...`
/// of its own; the innermost one is the user's.
fn python_traceback(report: &str) -> Option<String> {
    let lines: Vec<&str> = report.lines().collect();
    let start = lines
        .iter()
        .rposition(|l| l.contains("Traceback (most recent call last)"))?;
    let mut out = vec!["Traceback (most recent call last):"];
    for line in &lines[start + 1..] {
        out.push(line);
        if !line.starts_with(' ') && !line.is_empty() {
            break;
        }
    }
    Some(out.join("\n"))
}

/// Turns componentize-py's report of a failed build into what the user must do.
fn explain_failure(file: &Path, module: &str, report: &str) -> String {
    let detail = python_traceback(report).unwrap_or_else(|| {
        let tail: Vec<&str> = report.lines().rev().take(20).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    });
    if let Some(line) = report.lines().find(|l| l.contains("defines no flow")) {
        return line
            .split_once("weir build: ")
            .map_or(line, |(_, rest)| rest)
            .to_owned();
    }
    if let Some(missing) = report
        .lines()
        .rev()
        .find_map(|l| l.split("ModuleNotFoundError: No module named ").nth(1))
    {
        let name = missing.trim().trim_matches('\'');
        return format!(
            "{} imports `{name}`, which cannot be bundled: it is not installed where weir build \
             looks (the file's directory, --path DIRs, and the site-packages of the active \
             virtualenv, VIRTUAL_ENV). Install it into a virtualenv (`pip install {name}`) and run \
             weir build with that virtualenv active. Only pure-Python packages can be bundled \
             (pydantic v2, numpy and other packages with native code cannot).\n\n{detail}",
            file.display(),
            name = name.split('.').next().unwrap_or(name),
        );
    }
    if report.contains("SyntaxError") {
        return format!("{} has a syntax error:\n\n{detail}", file.display());
    }
    if report.contains("ImportError") && report.contains(".so") {
        return format!(
            "{module} imports a package with native code, which cannot be bundled into a \
             component (only pure-Python packages can):\n\n{detail}"
        );
    }
    format!(
        "importing {} failed while the component was made:\n\n{detail}",
        file.display()
    )
}

/// How componentize-py is run: a given executable, or the cached virtualenv's Python.
enum Tool {
    Executable(PathBuf),
    Venv { python: PathBuf },
}

impl Tool {
    fn find(args: &BuildArgs) -> anyhow::Result<Self> {
        if let Some(exe) = &args.componentize_py {
            return Ok(Tool::Executable(exe.clone()));
        }
        let cache = cache_dir(args)?;
        let venv = cache.join(format!("componentize-py-{COMPONENTIZE_PY_VERSION}"));
        let python = venv_python(&venv);
        if venv.join(COMPLETE).exists() && python.exists() {
            return Ok(Tool::Venv { python });
        }
        install(&args.python, &cache, &venv)?;
        Ok(Tool::Venv { python })
    }

    fn command(&self) -> Command {
        match self {
            Tool::Executable(exe) => Command::new(exe),
            Tool::Venv { python } => {
                let mut command = Command::new(python);
                command.args([
                    "-c",
                    "import sys; from componentize_py import script; \
                     sys.argv[0] = 'componentize-py'; sys.exit(script())",
                ]);
                command
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            Tool::Executable(exe) => exe.display().to_string(),
            Tool::Venv { python } => format!("componentize-py ({})", python.display()),
        }
    }

    /// Checks the file's syntax with the virtualenv's Python, for an error that points
    /// at the line (componentize-py's own is buried in its report).
    fn check_syntax(&self, file: &Path, source: &str) -> anyhow::Result<()> {
        let Tool::Venv { python } = self else {
            return Ok(());
        };
        let out = Command::new(python)
            .args([
                "-c",
                "import ast, sys; ast.parse(sys.stdin.read(), sys.argv[1])",
            ])
            .arg(file)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                if let Some(mut stdin) = child.stdin.take() {
                    stdin.write_all(source.as_bytes())?;
                }
                child.wait_with_output()
            })
            .context("cannot run Python to check the file's syntax")?;
        if out.status.success() {
            return Ok(());
        }
        let report = String::from_utf8_lossy(&out.stderr);
        // From the frame in the user's file (the ones before are `ast`'s own).
        let all: Vec<&str> = report.lines().collect();
        let from = all
            .iter()
            .rposition(|l| l.trim_start().starts_with("File \""))
            .unwrap_or(all.len());
        let lines = &all[from..];
        let text = if lines.is_empty() {
            report.trim().to_owned()
        } else {
            lines.join("\n")
        };
        bail!("{} has a syntax error:\n{text}", file.display())
    }
}

fn venv_python(venv: &Path) -> PathBuf {
    if cfg!(windows) {
        venv.join("Scripts").join("python.exe")
    } else {
        venv.join("bin").join("python")
    }
}

/// Creates the virtualenv with componentize-py (see [`install_into`]).
fn install(python: &str, cache: &Path, venv: &Path) -> anyhow::Result<()> {
    eprintln!(
        "weir build: installing componentize-py {COMPONENTIZE_PY_VERSION} into {} (once)",
        venv.display()
    );
    install_into(cache, venv, |partial| {
        let out = Command::new(python)
            .args(["-m", "venv"])
            .arg(partial)
            .output();
        let needs = "weir build needs Python 3.10 or later with its venv module to install \
             componentize-py (Debian: apt-get install python3 python3-venv; or pass --python or \
             WEIR_PYTHON), or a componentize-py {v} executable in WEIR_COMPONENTIZE_PY \
             (pip install componentize-py=={v})";
        let needs = needs.replace("{v}", COMPONENTIZE_PY_VERSION);
        match out {
            Ok(out) if out.status.success() => {}
            Ok(out) => bail!("{needs}\n\n`{python} -m venv` said: {}", stderr_of(&out)),
            Err(e) => bail!("{needs}\n\ncannot run `{python}`: {e}"),
        }
        let out = Command::new(venv_python(partial))
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .arg(format!("componentize-py=={COMPONENTIZE_PY_VERSION}"))
            .output()
            .context("cannot run pip in the new virtualenv")?;
        if !out.status.success() {
            bail!(
                "cannot install componentize-py {v} from the package index: {}\n\
                 Install it yourself (pip install componentize-py=={v}) and set \
                 WEIR_COMPONENTIZE_PY to its executable.",
                stderr_of(&out),
                v = COMPONENTIZE_PY_VERSION
            );
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sdk_file_is_embedded() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-sdk/python");
        let on_disk = super::super::files_on_disk(&root, "weir", &[".py"]);
        let mut embedded: Vec<String> = SDK.iter().map(|(p, _)| (*p).to_owned()).collect();
        embedded.sort();
        assert_eq!(
            on_disk, embedded,
            "add new SDK files to SDK in cli/build/python.rs"
        );
    }

    #[test]
    fn module_names_are_checked() {
        assert_eq!(module_name(Path::new("a/flows.py")).unwrap(), "flows");
        let e = module_name(Path::new("my-flows.py")).unwrap_err();
        assert!(e.to_string().contains("not importable"), "{e}");
        let e = module_name(Path::new("weir.py")).unwrap_err();
        assert!(e.to_string().contains("would hide"), "{e}");
    }

    #[test]
    fn failures_say_what_to_do() {
        let report = "Traceback...\nModuleNotFoundError: No module named 'httpx'\n";
        let text = explain_failure(Path::new("flows.py"), "flows", report);
        assert!(text.contains("imports `httpx`"), "{text}");
        assert!(text.contains("pip install httpx"), "{text}");
        let report = "AssertionError: weir build: flows defines no flow: decorate ...";
        let text = explain_failure(Path::new("flows.py"), "flows", report);
        assert!(text.starts_with("flows defines no flow"), "{text}");
        let report = "noise\nTraceback (most recent call last):\n  File \"<string>\", line 1\n\
                      AssertionError: Traceback (most recent call last):\n  File \"flows.py\", line 3\n    \
                      x = 1/0\nZeroDivisionError: division by zero\n  0: rust frame\n";
        let text = explain_failure(Path::new("flows.py"), "flows", report);
        assert!(
            text.ends_with("ZeroDivisionError: division by zero"),
            "{text}"
        );
        assert!(!text.contains("rust frame"), "{text}");
        assert!(
            !text.contains("<string>"),
            "the wrapper's frame is left out: {text}"
        );
    }

    #[test]
    fn the_app_module_imports_the_users() {
        let app = app_module("flows");
        assert!(app.contains("import flows"), "{app}");
        assert!(app.contains("from weir._guest import Guest"), "{app}");
    }
}
