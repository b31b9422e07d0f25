use weir_sdk::task;

fn cleanup(_: &weir_sdk::HookContext) {}

#[task(on_cancellation = [cleanup], on_crashed = [cleanup])]
fn add(x: i64) -> i64 {
    x
}

fn main() {}
