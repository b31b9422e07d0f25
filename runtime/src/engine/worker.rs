//! Compiling uploads in a worker process, within a bound of memory and time.
//!
//! Cranelift cannot be stopped or bounded in memory from inside a process, and an upload
//! is untrusted: a component made to be expensive to compile could take the server's
//! memory or a core for minutes. So the server compiles each new component in a child
//! process (`weir compile-worker`, the same binary) whose data segment, heap and private
//! mappings are capped by `RLIMIT_DATA`, whose CPU is capped by `RLIMIT_CPU`, and which
//! is killed past its wall-clock time. It writes the compiled code to a file the server
//! then loads: a child that fails, runs out of memory or of time leaves nothing.

use super::LoadError;
use crate::model::limits::{CompileWorker, Limits};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use wasmtime::component::Component;

/// Exit code of a worker that compiled nothing because the component is invalid (its
/// reason on stderr).
const INVALID: i32 = 3;

/// The arguments that make the worker's engine compile what this one runs.
fn engine_args(limits: &Limits) -> Vec<String> {
    vec![
        "--memory-bytes".into(),
        limits.memory_bytes.to_string(),
        "--stack-bytes".into(),
        limits.wasm_stack_bytes.to_string(),
        "--cpu-metering".into(),
        limits.cpu_metering.to_string(),
    ]
}

/// Compiles `bytes` in a worker and loads its compiled code into `engine`.
pub(super) fn compile(
    worker: &CompileWorker,
    engine: &wasmtime::Engine,
    limits: &Limits,
    bytes: &[u8],
    scratch: &Path,
) -> Result<Component, LoadError> {
    let id = uuid::Uuid::now_v7();
    let input = scratch.join(format!("compile-{id}.wasm"));
    let output = scratch.join(format!("compile-{id}.cwasm"));
    let _cleanup = Cleanup(vec![input.clone(), output.clone()]);
    std::fs::write(&input, bytes)
        .map_err(|e| LoadError::Invalid(format!("cannot stage the component to compile: {e}")))?;
    let mut cmd = Command::new(&worker.exe);
    cmd.arg("compile-worker")
        .arg("--input")
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .args(engine_args(limits))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let (memory, cpu) = (
        worker.memory_bytes as libc::rlim_t,
        worker.time.as_secs().max(1) as libc::rlim_t,
    );
    // SAFETY: only async-signal-safe calls (setrlimit) between fork and exec.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(move || {
            let data = libc::rlimit {
                rlim_cur: memory,
                rlim_max: memory,
            };
            let time = libc::rlimit {
                rlim_cur: cpu,
                rlim_max: cpu + 1,
            };
            if libc::setrlimit(libc::RLIMIT_DATA, &data) != 0
                || libc::setrlimit(libc::RLIMIT_CPU, &time) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| LoadError::Invalid(format!("cannot start the compiler process: {e}")))?;
    let mut stderr = child.stderr.take();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(s) = stderr.as_mut() {
            let _ = s.take(64 << 10).read_to_string(&mut text);
        }
        text
    });
    let deadline = Instant::now() + worker.time;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) | Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let said = reader.join().unwrap_or_default();
    let too_long = || {
        LoadError::Invalid(format!(
            "compiling the component took more than {} s, the limit",
            worker.time.as_secs_f64()
        ))
    };
    let Some(status) = status else {
        return Err(too_long());
    };
    if status.success() {
        // SAFETY: the file was just written by `Component::serialize` in a worker of this
        // binary, with an engine configured as this one (deserializing checks that too).
        return unsafe { Component::deserialize_file(engine, &output) }
            .map_err(|e| LoadError::Invalid(format!("cannot load the compiled code: {e:#}")));
    }
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(INVALID), _) => Err(LoadError::Invalid(said.trim().to_owned())),
        (_, Some(libc::SIGXCPU | libc::SIGKILL)) => Err(too_long()),
        _ if said.contains("memory allocation")
            || said.contains("out of memory")
            || status.signal() == Some(libc::SIGABRT) =>
        {
            Err(LoadError::Invalid(format!(
                "compiling the component needed more than {} MiB, the limit",
                worker.memory_bytes >> 20
            )))
        }
        _ => Err(LoadError::Invalid(format!(
            "the compiler process failed ({status}): {}",
            said.lines().last().unwrap_or_default()
        ))),
    }
}

struct Cleanup(Vec<PathBuf>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// The worker's side: compiles `input` into `output` with an engine configured from the
/// arguments; exits [`INVALID`] with the reason on stderr for an invalid component.
pub fn run_worker(
    input: &Path,
    output: &Path,
    memory_bytes: usize,
    stack_bytes: usize,
    cpu_metering: bool,
) -> std::process::ExitCode {
    let limits = Limits {
        memory_bytes,
        wasm_stack_bytes: stack_bytes,
        cpu_metering,
        ..Limits::default()
    };
    let engine = match wasmtime::Engine::new(&super::wasmtime_config(&limits, None)) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("cannot configure wasmtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let bytes = match std::fs::read(input) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("cannot read {}: {e}", input.display());
            return std::process::ExitCode::FAILURE;
        }
    };
    let code = match Component::new(&engine, &bytes).and_then(|c| c.serialize()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{e:#}");
            return std::process::ExitCode::from(INVALID as u8);
        }
    };
    match std::fs::write(output, code) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cannot write {}: {e}", output.display());
            std::process::ExitCode::FAILURE
        }
    }
}
