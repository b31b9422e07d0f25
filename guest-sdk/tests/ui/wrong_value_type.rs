use weir_sdk::{flow, task};

#[task(retries = "three")]
fn add(x: i64) -> i64 {
    x
}

#[task(retry_delay_seconds = ["1"], log_prints = 1, tags = "a")]
fn sub(x: i64) -> i64 {
    x
}

#[flow(timeout_seconds = -1)]
fn main_flow() {}

fn main() {}
