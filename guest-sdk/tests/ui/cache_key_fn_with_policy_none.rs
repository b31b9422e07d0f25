use weir_sdk::{CacheKeyContext, task};

fn key(_: &CacheKeyContext) -> Option<String> {
    None
}

#[task(cache_policy = "none", cache_key_fn = key)]
fn add(x: i64) -> i64 {
    x
}

#[task(cache_policy = "forever")]
fn sub(x: i64) -> i64 {
    x
}

fn main() {}
