//! Caching: a task keyed by its inputs, so that calling it again with the same input returns
//! the cached result instead of running it.

use weir_sdk::{flow, info, task};

weir_sdk::export!();

/// Squares `x`, slowly in spirit; logs "computing" only when the body really runs.
#[task(cache_policy = "inputs", cache_expiration = 3600)]
fn expensive(x: i64) -> i64 {
    info!("computing expensive({x})");
    x * x
}

/// Calls the expensive task twice with the same input: the second call is a cache hit.
#[flow(name = "caching")]
fn caching(x: i64) -> weir_sdk::Result<i64> {
    let first = expensive(x)?;
    let second = expensive(x)?;
    if first != second {
        weir_sdk::bail!("the cached result {second} differs from {first}");
    }
    Ok(first)
}
