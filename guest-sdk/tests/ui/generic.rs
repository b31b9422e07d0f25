use weir_sdk::task;

#[task]
fn id<T: Clone>(value: T) -> T {
    value
}

fn main() {}
