use weir_sdk::task;

struct Counter;

impl Counter {
    #[task]
    fn next(&self) -> i64 {
        1
    }
}

fn main() {}
