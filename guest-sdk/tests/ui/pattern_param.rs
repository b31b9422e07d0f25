use weir_sdk::task;

#[task]
fn add((x, y): (i64, i64)) -> i64 {
    x + y
}

fn main() {}
