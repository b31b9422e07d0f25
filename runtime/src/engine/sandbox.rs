//! What one instance owns: its WASI context, resources, limits and the run it serves.

use super::http::HttpPolicy;
use crate::orchestrate::{FlowScope, LogLevel, TaskAttempt};
use std::sync::{Arc, Mutex};
use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// The store data of every Weir instance.
pub struct HostState {
    wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limiter: Limiter,
    /// The flow run this instance serves; `None` while reading a manifest.
    pub(crate) scope: Option<Arc<FlowScope>>,
    /// Set when this instance runs a task attempt.
    pub(crate) task: Option<Arc<TaskAttempt>>,
    host_calls_left: u64,
    host_call_budget: u64,
    pub(crate) cpu_ticks_left: u64,
    pub(crate) cpu_exceeded: bool,
    stdout: Capture,
    stderr: Capture,
    http: WasiHttpCtx,
    http_policy: HttpPolicy,
}

/// Errors the host raises as traps; the orchestrator turns them into failure messages.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("the instance made more than {0} host calls")]
    HostCallBudget(u64),
    #[error("{0} is not available while a component describes itself")]
    NoRun(&'static str),
}

impl HostState {
    pub(crate) fn new(
        limits: &crate::model::limits::Limits,
        scope: Option<Arc<FlowScope>>,
        task: Option<Arc<TaskAttempt>>,
    ) -> Self {
        // As in Prefect, a flow's `log_prints` covers the tasks it calls.
        let log_prints = task.as_ref().is_some_and(|t| t.log_prints)
            || scope.as_ref().is_some_and(|s| s.log_prints);
        let stdout = Capture::new(
            scope.clone(),
            task.clone(),
            if log_prints {
                LogLevel::Info
            } else {
                LogLevel::Debug
            },
        );
        let stderr = Capture::new(scope.clone(), task.clone(), LogLevel::Warning);
        let wasi = WasiCtx::builder()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let http_policy = scope
            .as_ref()
            .map(|s| HttpPolicy::new(&s.settings.allowed_hosts))
            .unwrap_or_default();
        let cpu_ticks = (limits.cpu_time.as_nanos() / limits.epoch_tick.as_nanos().max(1)) as u64;
        Self {
            wasi,
            table: ResourceTable::new(),
            limiter: Limiter {
                memory_limit: limits.memory_bytes,
                memory_exceeded: false,
            },
            scope,
            task,
            host_calls_left: limits.max_host_calls,
            host_call_budget: limits.max_host_calls,
            cpu_ticks_left: cpu_ticks.max(1),
            cpu_exceeded: false,
            http: WasiHttpCtx::new(),
            http_policy,
            stdout,
            stderr,
        }
    }

    /// Counts a host call against the instance's budget.
    pub(crate) fn charge(&mut self) -> wasmtime::Result<()> {
        if self.host_calls_left == 0 {
            return Err(wasmtime::Error::new(SandboxError::HostCallBudget(
                self.host_call_budget,
            )));
        }
        self.host_calls_left -= 1;
        Ok(())
    }

    /// The flow run this instance serves, or a trap during `describe`.
    pub(crate) fn scope(&self, what: &'static str) -> wasmtime::Result<Arc<FlowScope>> {
        self.scope
            .clone()
            .ok_or_else(|| wasmtime::Error::new(SandboxError::NoRun(what)))
    }

    /// The last lines the guest wrote to stderr (a panic message, usually).
    pub(crate) fn stderr_tail(&self) -> String {
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

/// Caps linear memory and remembers that a guest hit the cap, so that the trap that
/// follows (a Rust guest aborts when allocation fails) can be reported as what it is.
pub(crate) struct Limiter {
    memory_limit: usize,
    pub(crate) memory_exceeded: bool,
}

impl Limiter {
    pub(crate) fn memory_limit(&self) -> usize {
        self.memory_limit
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_limit {
            self.memory_exceeded = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}

/// Captures a guest's stdout or stderr line by line into the run's logs.
#[derive(Clone)]
struct Capture {
    inner: Arc<Mutex<CaptureInner>>,
}

struct CaptureInner {
    scope: Option<Arc<FlowScope>>,
    task: Option<Arc<TaskAttempt>>,
    level: LogLevel,
    partial: Vec<u8>,
    /// The last few lines, kept to explain a trap.
    tail: Vec<String>,
}

const TAIL_LINES: usize = 8;
const MAX_LINE: usize = 64 * 1024;

impl Capture {
    fn new(scope: Option<Arc<FlowScope>>, task: Option<Arc<TaskAttempt>>, level: LogLevel) -> Self {
        Self {
            inner: Arc::new(Mutex::new(CaptureInner {
                scope,
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
        match &self.scope {
            Some(scope) => scope.log(self.task.as_deref(), self.level, line.to_owned()),
            None => tracing::debug!(target: "weir::guest", "{line}"),
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
