//! Weir: a workflow orchestrator whose flows and tasks are WebAssembly components.
//!
//! # Layout
//! The modules are layered, without cycles: each imports only those before it in
//! `model`, `store`, `engine`, `host`, `orchestrate`, `executor`, `schedule`,
//! `automate`, `api`,
//! `ui`, `server`, `cli` (and `secrets`, which imports none).
//! - [`model`]: Weir's own vocabulary, importing nothing else of Weir: run states and
//!   the transitions allowed between them (final states are left only by a retry),
//!   failures (host-made kinds are an enum a guest cannot forge), the manifest and its
//!   validated options, durations bounded where they enter, sandbox limits, log levels,
//!   and what passes between an instance and its run (call options, outcomes, pauses).
//! - [`store`]: every SQL statement (SQLite, WAL, one batched writer; PostgreSQL for
//!   several nodes). Every state update is guarded in SQL: a final state stays final.
//! - [`engine`]: wasmtime configuration (pooling allocator, epoch ticker, compilations in
//!   the blocking pool, compiled code cached on disk), component loading by digest
//!   (`InstancePre` cached in memory), the limits of one instance (memory, CPU, stack,
//!   host calls). It knows no WIT world: it is generic over an `engine::World`.
//! - [`host`]: the host side of the `weir:flow` WIT world: its `bindgen!`, the store
//!   data of an instance (`HostState`, stdout/stderr captured into logs), one module per
//!   interface, every conversion between WIT types and Weir's in `host::convert`, and
//!   `host::Engine`, the engine running this world. Host functions reach the run an
//!   instance serves through the `host::Run` trait.
//! - [`orchestrate`]: the state machine of flow and task runs: Prefect's states,
//!   retries, timeouts, caching, results, hooks, final-state rules, replay by position,
//!   pauses and suspends, cancellation of whole run trees, plugin tasks (a task of
//!   another component called by name, run with the caller's capabilities); its flow
//!   scope is the `host::Run` of instances (`orchestrate::host_calls`).
//!   `orchestrate::transition` is the one way a running run's state changes.
//! - [`executor`]: runs deployment flow runs when due, within pool, deployment and tag
//!   concurrency limits; cancellation; graceful shutdown and recovery; suspended runs
//!   resumed, and runs ended without an instance (with their hooks); the plugins flows
//!   call, and the built-in ones registered at start.
//! - [`schedule`]: schedule specs (cron, interval, RRULE in a timezone) and the scheduler
//!   that creates their runs exactly once per fire time.
//! - [`automate`]: automations on every node: flow runs' state changes and runs stuck
//!   in a state watched, each event firing an automation once across nodes, its actions
//!   (runs of deployments, cancels, retries, pauses, plugin calls) done under a lease and
//!   retried until done.
//! - [`api`]: the HTTP API (axum), one module per resource, problem details, OpenAPI.
//! - [`ui`]: the web UI on the API's port: server-rendered pages (maud), htmx and
//!   server-sent events for live updates, sessions in HttpOnly cookies, CSRF-checked
//!   forms, the same store queries and executor commands as the API.
//! - [`server`]: `weir server`, tying the API, the executor and the store together, and
//!   its periodic upkeep (paused runs past their timeout) and retention (finished runs
//!   no policy keeps, deleted in small batches on every node).
//! - [`secrets`]: sealing secrets, API keys, webhook tokens and signatures.
//! - [`cli`]: the `weir` binary (`run`, `inspect`, `bench`, `server`, `completions`, and
//!   client commands over HTTP or HTTPS); `cli::client::output::clean` is what every
//!   server- or guest-provided text goes through before it is printed.

pub mod api;
pub mod automate;
pub mod bench;
pub mod cli;
pub mod engine;
pub mod executor;
pub mod host;
pub mod model;
pub mod orchestrate;
pub mod schedule;
pub mod secrets;
pub mod server;
pub mod store;
pub mod ui;

/// Makes ring rustls's process-wide crypto provider (idempotent). The client commands'
/// HTTPS (reqwest) and guests' outbound HTTPS (wasmtime-wasi-http) both take it from
/// there; building an HTTP client before it is installed panics in reqwest.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The async runtime Weir runs on. Guests yield at every epoch tick; the I/O driver is
/// polled every few task polls (not tokio's default 61), so a runtime whose workers are
/// all busy with spinning guests still answers requests within tens of milliseconds.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .event_interval(4)
        .thread_name("weir")
        .build()
}
