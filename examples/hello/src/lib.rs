//! Prefect's classic: a flow that greets through a task.

use weir_sdk::{flow, task};

weir_sdk::export!();

/// Prints a greeting and returns it.
#[task]
fn print_hello(name: String) -> String {
    let greeting = format!("Hello, {name}!");
    println!("{greeting}");
    greeting
}

/// Greets someone, the world by default.
#[flow(name = "hello", log_prints = true)]
fn hello_world(#[default("world")] name: String) -> weir_sdk::Result<String> {
    print_hello(name)
}
