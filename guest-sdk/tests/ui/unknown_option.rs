use weir_sdk::task;

#[task(retries = 1, retires = 2)]
fn add(x: i64) -> i64 {
    x
}

fn main() {}
