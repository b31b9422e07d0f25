use weir_sdk::{flow, task};

#[task(timeout_seconds = 1e20)]
fn slow(x: i64) -> i64 {
    x
}

#[task(retry_delay_seconds = [1, 1e20], cache_expiration = 400000000)]
fn later(x: i64) -> i64 {
    x
}

#[flow(retry_jitter_factor = 5000)]
fn main_flow() {}

fn main() {}
