use weir_sdk::flow;

#[flow(task_run_name = "run-{x}", cache_policy = "inputs", retry_condition = always)]
fn main_flow(x: i64) -> i64 {
    x
}

fn always(_: &weir_sdk::Error, _: u32) -> bool {
    true
}

fn main() {}
