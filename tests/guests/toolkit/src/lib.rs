//! A workspace plugin for the plugin tests: tasks only, called by flows of other
//! components by name (`toolkit/greet`).

use weir_sdk::artifacts::create_markdown_artifact;
use weir_sdk::{Error, Result, info, task};

weir_sdk::export!();

/// Greets someone, with a log line and an artifact on the calling run.
#[task]
fn greet(name: String, punctuation: Option<String>) -> Result<String> {
    info!("greeting {name}");
    let text = format!("Hello, {name}{}", punctuation.unwrap_or_else(|| "!".into()));
    create_markdown_artifact(&format!("# {text}"), Some("greeting"), None)?;
    Ok(text)
}

/// Fails its first two attempts: the plugin's own retries make it complete.
#[task(retries = 2, retry_delay_seconds = 0.05)]
fn flaky() -> Result<u32> {
    let attempt = weir_sdk::context().attempt;
    if attempt < 3 {
        return Err(Error::msg(format!("attempt {attempt} fails")));
    }
    Ok(attempt)
}

/// Doubles a number.
#[task]
fn double(x: i64) -> i64 {
    x * 2
}

/// Doubles a number twice by calling the plugin's own task.
#[task]
fn quadruple(x: i64) -> Result<i64> {
    let twice = double::with_options(weir_sdk::CallOptions::new()).call(x)?;
    double::with_options(weir_sdk::CallOptions::new()).call(twice)
}

/// Reads a workspace secret: `null` when the plugin may not.
#[task]
fn read_secret(name: String) -> Option<String> {
    weir_sdk::variables::secret(&name)
}

/// GETs a URL: the status and body, or the error.
#[task]
fn fetch(url: String) -> String {
    match weir_sdk::http::get(&url) {
        Ok(r) => format!("{} {}", r.status, r.text()),
        Err(e) => format!("error: {e}"),
    }
}

/// Spins for ever: a timeout stops it.
#[task(timeout_seconds = 0.5)]
fn spin() -> u64 {
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}
