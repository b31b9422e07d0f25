//! End-to-end tests: real components built from tests/guests and examples, the real
//! engine, a real database (SQLite, or PostgreSQL with `WEIR_TEST_DB=postgres`).

#[path = "../support/mod.rs"]
mod support;

mod adversarial;
mod automations;
mod background;
mod browser;
mod caching;
mod cancellation;
mod cli;
mod client;
mod components;
mod concurrency;
mod connections;
mod durability;
mod egress;
mod examples;
mod final_state;
mod global_limits;
mod handmade;
mod hostile;
mod hostile_clients;
mod isolation;
mod js;
mod limits;
mod observability;
mod openapi;
mod options;
mod pages;
mod params;
mod pauses;
mod plugins;
mod python;
mod quotas;
mod races;
mod replay;
mod retention;
mod retries;
mod schedule_pauses;
mod schedules;
mod server;
mod store_faults;
mod subflows;
mod timeouts;
mod tls;
mod transactions;
mod ui;
mod work_queues;

use crate::support::Harness;

const BASIC: &str = "guest_basic";

/// The state of a run as `TYPE/Name`, for compact assertions.
fn state_of(outcome: &weir::orchestrate::FlowOutcome) -> String {
    format!("{}/{}", outcome.state.kind, outcome.state.name)
}

async fn harness() -> Harness {
    Harness::new().await
}
