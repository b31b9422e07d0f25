use weir_sdk::task;

#[task(flow_run_name = "run-{x}")]
fn add(x: i64) -> i64 {
    x
}

fn main() {}
