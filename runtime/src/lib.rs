//! Weir: a workflow orchestrator whose flows and tasks are WebAssembly components.
//!
//! # Layout
//! - [`engine`]: wasmtime configuration, component loading by digest (compiled code
//!   cached on disk, `InstancePre` cached in memory), the sandbox of one instance
//!   (memory, CPU, stack, host-call limits; stdout/stderr captured into logs).
//! - [`host`]: the host side of the `weir:flow` WIT world, one module per interface.
//! - [`orchestrate`]: the state machine of flow and task runs: Prefect's states,
//!   retries, timeouts, caching, results, hooks, final-state rules, replay by position.
//! - [`store`]: every SQL statement (SQLite, WAL, one batched writer).
//! - [`state`], [`manifest`], [`limits`]: the shared vocabulary.
//! - [`cli`]: the `weir` binary (`run`, `inspect`, `bench`).

pub mod bench;
pub mod cli;
pub mod engine;
pub mod host;
pub mod limits;
pub mod manifest;
pub mod orchestrate;
pub mod state;
pub mod store;
