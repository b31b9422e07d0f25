//! Retries: a task that fails on its first two attempts, retried with growing delays.

use weir_sdk::{flow, task};

weir_sdk::export!();

/// Fails unless this is at least the third attempt; returns the attempt that succeeded.
#[task(retries = 3, retry_delay_seconds = [0.1, 0.2, 0.4])]
fn flaky() -> weir_sdk::Result<u32> {
    let attempt = weir_sdk::context().attempt;
    if attempt < 3 {
        weir_sdk::warn!("attempt {attempt} fails on purpose");
        weir_sdk::bail!("attempt {attempt} failed");
    }
    weir_sdk::info!("attempt {attempt} succeeds");
    Ok(attempt)
}

/// Runs the flaky task and returns the attempt that succeeded (3).
#[flow(name = "retries")]
fn retries() -> weir_sdk::Result<u32> {
    flaky()
}
