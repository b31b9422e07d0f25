//! What one instance owns: its WASI context, resources, sandbox, and the run it serves.

use super::run::Run;
use crate::engine::http::HttpPolicy;
use crate::engine::sandbox::{Sandbox, SandboxError, Sandboxed};
use crate::model::log::LogLevel;
use crate::model::run::TaskAttempt;
use std::sync::{Arc, Mutex};
use wasmtime::component::ResourceTable;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// The store data of every Weir instance.
pub struct HostState {
    wasi: WasiCtx,
    /// WASI's resources (streams, pollables, HTTP fields and requests), bounded by
    /// `Limits::max_wasi_resources`.
    pub(super) table: ResourceTable,
    /// Task futures, bounded by `Limits::max_handles` (a map over many items holds many).
    pub(super) futures: ResourceTable,
    sandbox: Sandbox,
    /// The flow run this instance serves; `None` while reading a manifest.
    run: Option<Arc<dyn Run>>,
    /// Set when this instance runs a task attempt.
    pub(super) task: Option<Arc<TaskAttempt>>,
    /// Set when this instance runs a plugin's code (`http@2`): its task calls name the
    /// plugin's tasks, and it reads only the secrets the deployment lets plugins read.
    pub(crate) plugin: Option<Arc<str>>,
    /// The task slot the attempt holds, lent while it waits for other tasks.
    pub(crate) slot: Option<crate::orchestrate::slots::Slot>,
    /// The task run's name once the attempt renamed it (`context.set-run-name`).
    pub(super) task_run_name: Option<String>,
    stdout: Capture,
    stderr: Capture,
    http: WasiHttpCtx,
    http_policy: HttpPolicy,
}

impl HostState {
    pub(crate) fn new(
        limits: &crate::model::limits::Limits,
        run: Option<Arc<dyn Run>>,
        task: Option<Arc<TaskAttempt>>,
    ) -> Self {
        // As in Prefect, what is printed is logged only under `log_prints` (a task's own
        // setting, else its flow run's), and otherwise not kept.
        let log_prints = match &task {
            Some(t) => t.log_prints,
            None => run.as_ref().is_some_and(|r| r.log_prints()),
        };
        let stdout = Capture::new(
            run.clone(),
            task.clone(),
            log_prints.then_some(LogLevel::Info),
        );
        let stderr = Capture::new(run.clone(), task.clone(), Some(LogLevel::Warning));
        let wasi = WasiCtx::builder()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let http_policy = run
            .as_ref()
            .map(|r| {
                // A request the egress policy refuses is logged in the run (as a
                // warning of the task attempt that made it), so the user sees why.
                let (run, task) = (r.clone(), task.clone());
                let note: crate::engine::http::Refusals = Arc::new(move |line: String| {
                    run.log(task.as_deref(), LogLevel::Warning, line);
                });
                HttpPolicy::new(r.allowed_hosts(), limits.egress.clone(), Some(note))
            })
            .unwrap_or_default();
        let plugin = task
            .as_ref()
            .and_then(|t| t.plugin.clone())
            .or_else(|| run.as_ref().and_then(|r| r.plugin()));
        let mut table = ResourceTable::new();
        table.set_max_capacity(limits.max_wasi_resources);
        let mut futures = ResourceTable::new();
        futures.set_max_capacity(limits.max_handles);
        let mut http = WasiHttpCtx::new();
        http.set_field_size_limit(limits.max_http_fields_bytes);
        Self {
            wasi,
            table,
            futures,
            sandbox: Sandbox::new(limits),
            run,
            plugin,
            task,
            slot: None,
            task_run_name: None,
            http,
            http_policy,
            stdout,
            stderr,
        }
    }

    /// Counts a host call against the instance's budget.
    #[inline]
    pub(super) fn charge(&mut self) -> wasmtime::Result<()> {
        self.sandbox.charge()
    }

    /// The task a call names: in a plugin's code, a name without '/' is the plugin's
    /// own task.
    pub(super) fn qualify(&self, task: String) -> String {
        match &self.plugin {
            Some(plugin) if !task.contains('/') => format!("{plugin}/{task}"),
            _ => task,
        }
    }

    /// How deep in task calls this instance is: 0 for a flow's.
    pub(super) fn nesting(&self) -> u32 {
        self.task.as_ref().map_or(0, |t| t.nesting)
    }

    /// The flow run this instance serves, or a trap during `describe`.
    #[inline]
    pub(super) fn run(&self, what: &'static str) -> wasmtime::Result<&Arc<dyn Run>> {
        self.run
            .as_ref()
            .ok_or_else(|| wasmtime::Error::new(SandboxError::NoRun(what)))
    }
}

impl Sandboxed for HostState {
    fn sandbox(&self) -> &Sandbox {
        &self.sandbox
    }

    fn sandbox_mut(&mut self) -> &mut Sandbox {
        &mut self.sandbox
    }

    fn stderr_tail(&self) -> String {
        self.stderr.tail()
    }
}

impl Drop for HostState {
    fn drop(&mut self) {
        self.stdout.finish();
        self.stderr.finish();
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            hooks: &mut self.http_policy,
            table: &mut self.table,
            ctx: &mut self.http,
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Captures a guest's stdout or stderr line by line into the run's logs.
#[derive(Clone)]
struct Capture {
    inner: Arc<Mutex<CaptureInner>>,
}

struct CaptureInner {
    run: Option<Arc<dyn Run>>,
    task: Option<Arc<TaskAttempt>>,
    /// `None`: lines are kept for a trap's explanation only, not logged.
    level: Option<LogLevel>,
    partial: Vec<u8>,
    /// The last few lines, kept to explain a trap.
    tail: Vec<String>,
}

const TAIL_LINES: usize = 8;
const MAX_LINE: usize = 64 * 1024;

impl Capture {
    fn new(
        run: Option<Arc<dyn Run>>,
        task: Option<Arc<TaskAttempt>>,
        level: Option<LogLevel>,
    ) -> Self {
        Self {
            inner: Arc::new(Mutex::new(CaptureInner {
                run,
                task,
                level,
                partial: Vec::new(),
                tail: Vec::new(),
            })),
        }
    }

    fn write(&self, bytes: &[u8]) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.partial.extend_from_slice(bytes);
        while let Some(pos) = inner.partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = inner.partial.drain(..=pos).collect();
            inner.emit(&line[..line.len() - 1]);
        }
        if inner.partial.len() > MAX_LINE {
            let line = std::mem::take(&mut inner.partial);
            inner.emit(&line);
        }
    }

    fn finish(&self) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if !inner.partial.is_empty() {
            let line = std::mem::take(&mut inner.partial);
            inner.emit(&line);
        }
    }

    fn tail(&self) -> String {
        self.finish();
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.tail.join("\n")
    }
}

impl CaptureInner {
    fn emit(&mut self, line: &[u8]) {
        let line = String::from_utf8_lossy(line);
        let line = line.trim_end_matches('\r');
        if self.tail.len() == TAIL_LINES {
            self.tail.remove(0);
        }
        self.tail.push(line.to_owned());
        match (&self.run, self.level) {
            (Some(run), Some(level)) => run.log(self.task.as_deref(), level, line.to_owned()),
            (Some(_), None) => {}
            (None, _) => tracing::debug!(target: "weir::guest", "{line}"),
        }
    }
}

impl IsTerminal for Capture {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Capture {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for Capture {
    async fn ready(&mut self) {}
}

impl OutputStream for Capture {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        Capture::write(self, &bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(64 * 1024)
    }
}

impl tokio::io::AsyncWrite for Capture {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        Capture::write(&self, buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}
