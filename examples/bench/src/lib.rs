//! Benchmark flows: the task bodies do (almost) nothing, so a run measures orchestration.

use weir_sdk::{flow, task};

weir_sdk::export!();

/// Adds one.
#[task]
fn inc(i: u32) -> u32 {
    i + 1
}

/// Doubles.
#[task]
fn double(x: u64) -> u64 {
    x * 2
}

/// `n` tasks in sequence, each feeding the next; returns `n`.
#[flow]
fn chain(n: u32) -> weir_sdk::Result<u32> {
    let mut value = 0;
    for _ in 0..n {
        value = inc(value)?;
    }
    Ok(value)
}

/// `n` concurrent tasks with `map`; returns the sum of their results.
#[flow]
fn mapped(n: u32) -> weir_sdk::Result<u64> {
    let futures = double::map((0..u64::from(n)).collect::<Vec<u64>>());
    Ok(weir_sdk::wait_all(futures)?.into_iter().sum())
}

/// Ten tasks in sequence; returns 10.
#[flow]
fn ten() -> weir_sdk::Result<u32> {
    let mut value = 0;
    for _ in 0..10 {
        value = inc(value)?;
    }
    Ok(value)
}
