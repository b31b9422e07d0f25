use weir_sdk::flow;

#[flow]
async fn fetch() -> i64 {
    1
}

fn main() {}
