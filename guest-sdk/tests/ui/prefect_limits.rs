use weir_sdk::{flow, task};

weir_sdk::export!();

#[flow(name = "a/b")]
fn slash() {}

#[task(retry_delay_seconds = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1])]
fn many_delays() {}

#[flow(flow_run_name = 42)]
fn numeric_name() {}

fn main() {}
