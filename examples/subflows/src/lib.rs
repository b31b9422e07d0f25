//! Subflows: a parent flow calls a child flow twice, then a task to combine the results.

use weir_sdk::{flow, task};

weir_sdk::export!();

/// Greets one name.
#[flow(flow_run_name = "greet-{name}")]
fn child(name: String) -> String {
    format!("hello {name}")
}

/// Joins two greetings.
#[task]
fn combine(first: String, second: String) -> String {
    format!("{first}, {second}")
}

/// Runs the child flow for two names and combines what they return.
#[flow]
fn parent(
    #[default("ada")] first: String,
    #[default("grace")] second: String,
) -> weir_sdk::Result<String> {
    let first = child(first)?;
    let second = child(second)?;
    combine(first, second)
}
