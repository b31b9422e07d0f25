use weir_sdk::task;

#[task]
fn greet(name: &str) -> String {
    name.to_owned()
}

#[task]
fn total(values: Vec<&u8>) -> u8 {
    values.into_iter().sum()
}

fn main() {}
