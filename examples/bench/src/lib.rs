//! Benchmark flows, the same workloads as Prefect's side of the comparison
//! (`add_one`, `square`): the task bodies do almost nothing, so a run measures
//! orchestration.

use weir_sdk::{flow, task};

weir_sdk::export!();

/// Adds one.
#[task]
fn add_one(x: u64) -> u64 {
    x + 1
}

/// Squares.
#[task]
fn square(x: u64) -> u64 {
    x * x
}

/// `n` tasks in sequence, each feeding the next; returns `n`.
#[flow]
fn chain(n: u64) -> weir_sdk::Result<u64> {
    let mut x = 0;
    for _ in 0..n {
        x = add_one(x)?;
    }
    Ok(x)
}

/// `n` concurrent tasks with `map`; returns the sum of the squares.
#[flow]
fn mapped(n: u64) -> weir_sdk::Result<u64> {
    let futures = square::map((0..n).collect::<Vec<u64>>());
    Ok(weir_sdk::wait_all(futures)?.into_iter().sum())
}

/// Ten tasks in sequence; returns 10.
#[flow]
fn ten() -> weir_sdk::Result<u64> {
    let mut x = 0;
    for _ in 0..10 {
        x = add_one(x)?;
    }
    Ok(x)
}
