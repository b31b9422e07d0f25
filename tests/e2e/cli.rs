//! The `weir` binary: `run`, `inspect`, `completions` and `server` (its banner, its demo),
//! with the errors a user sees for bad input.

use crate::support::guest;
use crate::support::process::WeirProcess;
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
        !ok && err.contains("no flow 'nope'") && err.contains("retry-flow"),
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
        stdout.contains("flows:") && stdout.contains("retry-flow"),
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

/// `weir` with the given data directory and environment.
fn weir_in(dir: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(args)
        .env("WEIR_DATA_DIR", dir)
        .output()
        .expect("run weir");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_server_banner_names_its_urls_and_data_and_run_keeps_out_of_its_database() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = WeirProcess::server(dir.path(), &[]);
    let url = server.url();
    let data = std::path::absolute(dir.path()).unwrap();
    let banner: Vec<String> = (0..6)
        .map(|_| server.wait_for("its banner", |_| true))
        .collect();
    let banner = banner.join("\n");
    for expected in [
        format!("Web UI    {url}/"),
        format!("API       {url}/api"),
        format!("OpenAPI   {url}/api/openapi.json"),
        format!("Metrics   {url}/metrics"),
        "needs the admin token".to_owned(),
        format!("Data      {}", data.display()),
        format!("Database  SQLite {}", data.join("weir.db").display()),
    ] {
        assert!(banner.contains(&expected), "no {expected:?} in:\n{banner}");
    }

    let hello = guest("hello");
    let hello = hello.to_str().unwrap();
    // Its own database by default, beside the server's, while the server runs.
    let (ok, stdout, stderr) = weir_in(dir.path(), &["run", hello, "-p", "name=Ada"]);
    assert!(ok, "{stdout}\n{stderr}");
    assert!(dir.path().join("local.db").exists());
    // Pointed at the server's database: refused, saying why and what to do instead.
    let server_db = dir.path().join("weir.db");
    let (ok, _, stderr) = weir_in(
        dir.path(),
        &["run", hello, "--db", server_db.to_str().unwrap()],
    );
    assert!(
        !ok && stderr.contains("running `weir server`") && stderr.contains("local.db"),
        "{stderr}"
    );
    assert!(server.stop().success());
    // Once the server is gone, the file is free to use.
    let (ok, stdout, stderr) = weir_in(
        dir.path(),
        &["run", hello, "--db", server_db.to_str().unwrap()],
    );
    assert!(ok, "{stdout}\n{stderr}");
}

#[test]
fn the_demo_keeps_its_key_and_webhook_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    // The Rust examples only: the demo also deploys the Python ones when they are built,
    // whose compilation is not what this test is about.
    let built = guest("hello").parent().unwrap().to_owned();
    let rust_examples = dir.path().join("examples");
    std::fs::create_dir(&rust_examples).unwrap();
    for name in ["hello", "etl", "retries", "caching", "subflows"] {
        let file = format!("{name}.wasm");
        std::fs::copy(built.join(&file), rust_examples.join(&file)).unwrap();
    }
    let examples = rust_examples.to_str().unwrap();
    let env_file = dir.path().join("demo.env");
    let read_env = || {
        let text = std::fs::read_to_string(&env_file).unwrap();
        let get = |k: &str| {
            text.split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{k}=")).map(str::to_owned))
                .unwrap_or_else(|| panic!("no {k} in {text}"))
        };
        (
            get("WEIR_API_URL"),
            get("WEIR_API_KEY"),
            get("WEIR_DEMO_HOOK"),
        )
    };
    let start = || {
        let mut s = WeirProcess::server(dir.path(), &["--demo", examples]);
        s.url();
        s.wait_for("the demo", |l| l.starts_with("Demo workspace ready"));
        let key = s.wait_for("the key", |l| l.trim_start().starts_with("weir_"));
        (s, key.trim().to_owned())
    };
    let fire = |url: &str, hook: &str, key: &str| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let api = crate::support::server::Api::new(url.to_owned());
            let (status, body) = crate::support::server::send(
                api.client
                    .post(format!("{url}{hook}"))
                    .json(&serde_json::json!({"name": "Ada"})),
            )
            .await;
            assert_eq!(status, 202, "{body}");
            let run = body["flow_run_id"].as_str().unwrap().to_owned();
            let done = api.wait_final(key, &run).await;
            assert_eq!(done["state"]["type"], "COMPLETED", "{done}");
        });
    };

    let (first, printed_key) = start();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&env_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "demo.env holds a key: owner only");
    }
    let (url, key, hook) = read_env();
    assert_eq!(printed_key, key);
    assert!(hook.starts_with("/hooks/"), "{hook}");
    fire(&url, &hook, &key);
    assert!(first.stop().success());

    let (second, printed_again) = start();
    let (url2, key2, hook2) = read_env();
    assert_eq!((&printed_again, &key2, &hook2), (&key, &key, &hook));
    assert!(
        second
            .output
            .iter()
            .any(|l| l.contains("same as at the last start")),
        "{:?}",
        second.output
    );
    // The key and the webhook of the first start still work against the second.
    fire(&url2, &hook, &key);
    assert!(second.stop().success());
}

#[test]
fn completions_for_each_shell() {
    let (ok, bash, err) = weir(&["completions", "bash"]);
    assert!(ok, "{err}");
    assert!(
        bash.contains("_weir()")
            && bash.contains("complete -F _weir")
            && bash.contains("deployment"),
        "{bash}"
    );
    let (ok, zsh, _) = weir(&["completions", "zsh"]);
    assert!(ok && zsh.starts_with("#compdef weir"), "{zsh}");
    let (ok, fish, _) = weir(&["completions", "fish"]);
    assert!(
        ok && fish.contains("complete -c weir") && fish.contains("schedule"),
        "{fish}"
    );
    let (ok, _, err) = weir(&["completions", "tcsh"]);
    assert!(!ok && err.contains("possible values"), "{err}");
}

#[test]
fn run_strips_terminal_controls_from_what_a_guest_says() {
    let hello = guest("hello");
    let name = "name=\u{1b}[2J\u{1b}]0;owned\u{7}Ada\u{9b}31m\rX";
    let (ok, stdout, stderr) = weir(&["run", hello.to_str().unwrap(), "-p", name]);
    assert!(ok, "{stdout}\n{stderr}");
    assert!(stdout.contains("Hello, AdaX!"), "{stdout}");
    // The result is JSON: what a terminal would act on is escaped, not dropped.
    assert!(stdout.contains("Ada\\u009b31m"), "{stdout}");
    assert!(
        !stdout.contains(['\u{1b}', '\u{7}', '\u{9b}', '\r']),
        "{stdout:?}"
    );
}

/// `weir bench floor N` measures task attempts with nothing orchestrated; the other
/// workloads print their time per task beside the floor measured in the same process.
#[test]
fn bench_lines_carry_the_floor_measured_in_the_same_process() {
    let bench = guest("bench");
    let field = |line: &str, name: &str| -> f64 {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no {name} in {line}"))
            .parse()
            .unwrap()
    };
    let (ok, stdout, stderr) = weir(&[
        "bench",
        "floor",
        "200",
        "--component",
        bench.to_str().unwrap(),
    ]);
    assert!(ok, "{stdout}\n{stderr}");
    assert!(stdout.starts_with("weir floor n=200 "), "{stdout}");
    let per_task = field(&stdout, "per_task_ms");
    assert!(per_task > 0.0, "{stdout}");
    // Its parts add up to the whole, and a warm call is timed apart.
    let parts: f64 = ["instantiate_ms", "call_ms", "drop_ms"]
        .iter()
        .map(|name| field(&stdout, name))
        .sum();
    assert!(
        (parts - per_task).abs() < 0.001 + per_task * 0.01,
        "{stdout}"
    );
    assert!(field(&stdout, "call_again_ms") > 0.0, "{stdout}");

    let (ok, stdout, stderr) = weir(&[
        "bench",
        "chain",
        "50",
        "--component",
        bench.to_str().unwrap(),
    ]);
    assert!(ok, "{stdout}\n{stderr}");
    let (per_task, floor, ratio) = (
        field(&stdout, "per_task_ms"),
        field(&stdout, "floor_ms"),
        field(&stdout, "x_floor"),
    );
    assert!(floor > 0.0, "{stdout}");
    assert!(
        (ratio - per_task / floor).abs() < 0.01 + ratio * 0.01,
        "{stdout}"
    );

    let (ok, _, stderr) = weir(&[
        "bench",
        "floor",
        "0",
        "--component",
        bench.to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(stderr.contains("bench floor needs N"), "{stderr}");
}

/// `weir run` offers a flow the built-in plugins (from beside the binary) and the ones
/// given with `--plugin`, each as version 1, and the hosts given with `--allow-host`.
#[test]
fn run_calls_builtin_and_given_plugins() {
    let caller = guest("guest_plugin_caller");
    let caller = caller.to_str().unwrap();
    let toolkit = guest("guest_toolkit");
    let toolkit_spec = format!("toolkit={}", toolkit.display());
    let call = |task: &str, arguments: &str, extra: &[&str]| {
        let params = format!(r#"{{"task": "{task}", "arguments": {arguments}}}"#);
        let mut args = vec![
            "run",
            caller,
            "call_plugin",
            "--params-json",
            &params,
            "--json",
        ];
        args.extend_from_slice(extra);
        let (ok, stdout, stderr) = weir(&args);
        let v: serde_json::Value =
            serde_json::from_str(&stdout).unwrap_or_else(|_| panic!("{stdout}\n{stderr}"));
        (ok, v, stderr)
    };
    let (ok, v, stderr) = call(
        "toolkit/greet",
        r#"{"name": "Ada"}"#,
        &["--plugin", &toolkit_spec],
    );
    assert!(ok, "{v}\n{stderr}");
    assert_eq!(v["result"], "Hello, Ada!", "{v}");
    assert_eq!(v["task_runs"][0]["name"], "toolkit@1/greet-0", "{v}");
    assert_eq!(v["artifacts"][0]["key"], "greeting", "{v}");

    // A built-in, found beside the binary.
    let (ok, v, stderr) = call("csv/parse", r#"{"text": "a,b\n1,2\n"}"#, &[]);
    assert!(ok, "{v}\n{stderr}");
    assert_eq!(
        v["result"],
        serde_json::json!([{"a": "1", "b": "2"}]),
        "{v}"
    );

    // What is not there is named, with what is.
    let (ok, v, _) = call("nope/greet", "{}", &["--plugin", &toolkit_spec]);
    assert!(!ok);
    let text = v.to_string();
    assert!(
        text.contains("no plugin named 'nope' here") && text.contains("toolkit@1"),
        "{text}"
    );
    let (ok, v, _) = call(
        "toolkit@2/greet",
        r#"{"name": "Ada"}"#,
        &["--plugin", &toolkit_spec],
    );
    assert!(!ok);
    assert!(v.to_string().contains("has no version 2"), "{v}");
    let (ok, _, stderr) = weir(&["run", caller, "call_plugin", "--plugin", "toolkit"]);
    assert!(
        !ok && stderr.contains("expected NAME=FILE.wasm"),
        "{stderr}"
    );

    // http/request reaches a loopback server only when the run is granted it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for mut conn in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            let body = r#"{"ok": true}"#;
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let request = format!(r#"{{"url": "http://127.0.0.1:{port}/status"}}"#);
    let (ok, v, _) = call("http/request", &request, &[]);
    assert!(!ok, "no host granted: {v}");
    let (ok, v, stderr) = call(
        "http/request",
        &request,
        &["--allow-host", "127.0.0.1", "--egress-allow", "127.0.0.1"],
    );
    assert!(ok, "{v}\n{stderr}");
    assert_eq!(v["result"]["status"], 200, "{v}");
    assert_eq!(v["result"]["json"]["ok"], true, "{v}");
}
