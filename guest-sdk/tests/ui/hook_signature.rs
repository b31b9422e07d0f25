use weir_sdk::task;

fn notify(message: &str) {
    let _ = message;
}

#[task(on_failure = [notify])]
fn add(x: i64) -> i64 {
    x
}

fn main() {}
