//! The `weir` binary: `run` and `inspect`, with the errors a user sees for bad input.

use crate::support::guest;
use std::process::Command;

fn weir(args: &[&str]) -> (bool, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(args)
        .env("WEIR_DATA_DIR", dir.path())
        .output()
        .expect("run weir");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn run_prints_transitions_and_the_result() {
    let hello = guest("hello");
    let (ok, stdout, stderr) = weir(&[
        "run",
        hello.to_str().unwrap(),
        "hello",
        "--param",
        "name=Ada",
    ]);
    assert!(ok, "{stdout}\n{stderr}");
    assert!(stdout.contains("Created flow run '"), "{stdout}");
    assert!(stdout.contains("for flow 'hello'"), "{stdout}");
    assert!(stdout.contains("Finished in state Completed()"), "{stdout}");
    assert!(stdout.contains("Ada"), "{stdout}");
}

#[test]
fn run_json_prints_the_final_flow_run() {
    let hello = guest("hello");
    let (ok, stdout, stderr) = weir(&["run", hello.to_str().unwrap(), "--json"]);
    assert!(ok, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).expect(&stdout);
    assert_eq!(v["flow"], "hello");
    assert_eq!(v["state"]["type"], "COMPLETED");
    assert!(v["id"].as_str().is_some());
    assert!(!v["task_runs"].as_array().unwrap().is_empty());
}

#[test]
fn a_failed_run_exits_non_zero() {
    let basic = guest("guest_basic");
    let (ok, stdout, _) = weir(&["run", basic.to_str().unwrap(), "returns_error"]);
    assert!(!ok);
    assert!(stdout.contains("Finished in state Failed"), "{stdout}");
}

#[test]
fn bad_input_gets_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.wasm");
    std::fs::write(&text, "hello").unwrap();
    let (ok, _, err) = weir(&["run", text.to_str().unwrap()]);
    assert!(!ok && err.contains("not a WebAssembly file"), "{err}");

    let core = dir.path().join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    let (ok, _, err) = weir(&["inspect", core.to_str().unwrap()]);
    assert!(
        !ok && err.contains("core WebAssembly module, not a component"),
        "{err}"
    );

    let other_world = guest("other_world");
    let (ok, _, err) = weir(&["inspect", other_world.to_str().unwrap()]);
    assert!(
        !ok && err.contains("does not fit the weir:flow world"),
        "{err}"
    );

    let basic = guest("guest_basic");
    let (ok, _, err) = weir(&["run", basic.to_str().unwrap(), "nope"]);
    assert!(
        !ok && err.contains("no flow 'nope'") && err.contains("retry_flow"),
        "{err}"
    );
    let (ok, _, err) = weir(&["run", basic.to_str().unwrap()]);
    assert!(!ok && err.contains("several flows"), "{err}");

    let (ok, stdout, _) = weir(&[
        "run",
        basic.to_str().unwrap(),
        "typed",
        "-p",
        "n=x",
        "-p",
        "ratio=1",
        "-p",
        "flag=true",
    ]);
    assert!(!ok && stdout.contains("'n'"), "{stdout}");

    let (ok, _, err) = weir(&["run", "/does/not/exist.wasm"]);
    assert!(!ok && err.contains("cannot read"), "{err}");
}

#[test]
fn inspect_shows_the_manifest() {
    let basic = guest("guest_basic");
    let (ok, stdout, err) = weir(&["inspect", basic.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(
        stdout.contains("flows:") && stdout.contains("retry_flow"),
        "{stdout}"
    );
    assert!(stdout.contains("param n: integer (required)"), "{stdout}");
    assert!(stdout.contains("retries=3"), "{stdout}");
    let (ok, stdout, _) = weir(&["inspect", basic.to_str().unwrap(), "--json"]);
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let flaky = v["manifest"]["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "flaky")
        .unwrap();
    assert_eq!(flaky["options"]["retries"], 3);
    assert_eq!(
        flaky["options"]["retry_delay_seconds"],
        serde_json::json!([0.2, 0.4, 0.6])
    );
}
