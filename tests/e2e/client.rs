//! The `weir` client commands against a real server.

use crate::support::server::{ADMIN, TestServer};
use serde_json::Value;
use std::process::Command;

struct Cli {
    url: String,
    key: String,
}

impl Cli {
    fn run(&self, args: &[&str]) -> (bool, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_weir"))
            .args(args)
            .env("WEIR_API_URL", &self.url)
            .env("WEIR_API_KEY", &self.key)
            .env("WEIR_ADMIN_TOKEN", ADMIN)
            .output()
            .expect("run weir");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn ok(&self, args: &[&str]) -> String {
        let (ok, stdout, stderr) = self.run(args);
        assert!(ok, "weir {args:?} failed:\n{stdout}\n{stderr}");
        stdout
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.push("--json");
        let out = self.ok(&args);
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("weir {args:?} printed no JSON ({e}): {out}"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_drives_a_server_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let mut cli = Cli {
        url: s.url.clone(),
        key: String::new(),
    };
    let created = cli.json(&["workspace", "create", "cli"]);
    cli.key = created["key"]["secret"].as_str().unwrap().to_owned();

    let hello = crate::support::guest("hello");
    let basic = crate::support::guest("guest_basic");
    let pushed = cli.ok(&["component", "push", hello.to_str().unwrap()]);
    assert!(pushed.contains("hello"), "{pushed}");

    // A deployment file in the spirit of prefect.yaml.
    let file = dir.path().join("weir.yaml");
    std::fs::write(
        &file,
        format!(
            "deployments:\n  - name: greet\n    component: {}\n    flow: hello\n    parameters:\n      name: File\n    tags: [cli]\n    webhook:\n      enabled: true\n  - name: typed\n    component: {}\n    flow: typed\n    parameters:\n      ratio: 0.5\n",
            hello.display(),
            basic.display()
        ),
    )
    .unwrap();
    let deployed = cli.ok(&["deploy", "--file", file.to_str().unwrap()]);
    assert!(
        deployed.contains("greet") && deployed.contains("/hooks/"),
        "{deployed}"
    );
    // Flags, and a second deploy of the same name updates it.
    cli.ok(&[
        "deploy",
        "--name",
        "map",
        "--component",
        basic.to_str().unwrap(),
        "--flow",
        "map_flow",
        "--param",
        "n=4",
    ]);
    cli.ok(&[
        "deploy",
        "--name",
        "map",
        "--component",
        basic.to_str().unwrap(),
        "--flow",
        "map_flow",
        "--param",
        "n=5",
    ]);
    let deps: Value = cli.json(&[
        "deploy",
        "--name",
        "map",
        "--component",
        basic.to_str().unwrap(),
        "--flow",
        "map_flow",
        "--param",
        "n=5",
    ]);
    assert!(
        deps.to_string().contains("\"n\":\"5\"") || deps.to_string().contains("\"n\":5"),
        "{deps}"
    );

    let out = cli.ok(&["trigger", "greet", "--wait"]);
    assert!(
        out.contains("Completed") && out.contains("Hello, File!"),
        "{out}"
    );
    let (ok, out, err) = cli.run(&["trigger", "typed", "--param", "n=x", "--param", "flag=true"]);
    assert!(
        !ok && (out + &err).contains("'n'"),
        "a bad parameter is refused, naming it"
    );
    let out = cli.ok(&["trigger", "map", "--param", "n=6", "--wait"]);
    assert!(out.contains("55"), "{out}");

    let runs = cli.json(&["runs", "ls", "--deployment", "greet"]);
    let items = runs["items"]
        .as_array()
        .or(runs.as_array())
        .unwrap()
        .clone();
    assert_eq!(items.len(), 1);
    let run_id = items[0]["id"].as_str().unwrap().to_owned();
    let table = cli.ok(&["runs", "ls"]);
    assert!(table.lines().count() >= 3, "{table}");
    let shown = cli.ok(&["runs", "show", &run_id]);
    assert!(
        shown.contains("print_hello") && shown.contains("Completed"),
        "{shown}"
    );
    let logs = cli.ok(&["runs", "logs", &run_id]);
    assert!(logs.contains("Hello, File!"), "{logs}");
    let followed = cli.ok(&["runs", "logs", &run_id, "--follow"]);
    assert!(followed.contains("Hello, File!"), "{followed}");

    cli.ok(&["variable", "set", "greeting", "\"hi\""]);
    assert!(cli.ok(&["variable", "get", "greeting"]).contains("hi"));
    cli.ok(&["secret", "set", "token", "s3cr3t-value"]);
    let secrets = cli.ok(&["secret", "ls"]);
    assert!(
        secrets.contains("token") && !secrets.contains("s3cr3t"),
        "{secrets}"
    );

    let key = cli.json(&["key", "create", "--name", "ci"]);
    let key_id = key["id"].as_str().unwrap().to_owned();
    assert!(cli.ok(&["key", "ls"]).contains("ci"));
    cli.ok(&["key", "revoke", &key_id]);

    // Schedules from flags, then from a deployment file (which replaces them).
    let out = cli.ok(&[
        "deploy",
        "--name",
        "nightly",
        "--component",
        basic.to_str().unwrap(),
        "--flow",
        "map_flow",
        "--param",
        "n=2",
        "--cron",
        "0 9 * * MON-FRI",
        "--timezone",
        "Europe/Berlin",
    ]);
    assert!(
        out.contains("Schedule") && out.contains("0 9 * * MON-FRI"),
        "{out}"
    );
    let (_, scheds) = s.get("/api/deployments/nightly/schedules", &cli.key).await;
    assert_eq!(scheds["items"][0]["schedule"]["timezone"], "Europe/Berlin");
    std::fs::write(
        &file,
        format!(
            "deployments:\n  - name: nightly\n    component: {}\n    flow: map_flow\n    schedules:\n      - interval: 3600\n        anchor_date: 2026-01-01T00:00:00Z\n        catchup: latest\n      - rrule: FREQ=DAILY;BYHOUR=6;BYMINUTE=0\n        timezone: America/New_York\n        active: false\n",
            basic.display()
        ),
    )
    .unwrap();
    cli.ok(&["deploy", "--file", file.to_str().unwrap()]);
    let (_, scheds) = s.get("/api/deployments/nightly/schedules", &cli.key).await;
    let items = scheds["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{scheds}");
    assert!(
        items
            .iter()
            .any(|i| i["schedule"]["interval_seconds"] == 3600.0 && i["catchup"] == "latest"),
        "{scheds}"
    );
    assert!(
        items
            .iter()
            .any(|i| i["schedule"]["type"] == "rrule" && i["active"] == false),
        "{scheds}"
    );
    let (ok, _, err) = cli.run(&[
        "deploy",
        "--name",
        "nightly",
        "--component",
        basic.to_str().unwrap(),
        "--flow",
        "map_flow",
        "--cron",
        "nope",
    ]);
    assert!(!ok && err.contains("cron"), "{err}");

    let etl = crate::support::guest("etl");
    cli.ok(&[
        "deploy",
        "--name",
        "etl",
        "--component",
        etl.to_str().unwrap(),
        "--flow",
        "etl",
    ]);
    let out = cli.ok(&["trigger", "etl", "--wait"]);
    assert!(out.contains("Completed"), "{out}");
    let (_, runs) = s.get("/api/flow-runs?deployment=etl", &cli.key).await;
    let etl_run = runs["items"][0]["id"].as_str().unwrap().to_owned();
    let arts = cli.ok(&["artifacts", "ls", "--run", &etl_run]);
    assert!(arts.contains("etl-report"), "{arts}");
    assert!(
        cli.ok(&["artifacts", "ls", "--key", "etl-report"])
            .contains("markdown")
    );

    // Errors from the server read as such.
    let (ok, out, err) = cli.run(&["runs", "show", "nope"]);
    assert!(!ok && (out + &err).contains("not found"));
    let bad = Cli {
        url: s.url.clone(),
        key: "weir_000000000000_bad".into(),
    };
    let (ok, out, err) = bad.run(&["runs", "ls"]);
    let all = out + &err;
    assert!(!ok && all.contains("Unauthorized"), "{all}");
    let gone = Cli {
        url: "http://127.0.0.1:9".into(),
        key: cli.key.clone(),
    };
    let (ok, _, err) = gone.run(&["runs", "ls"]);
    assert!(!ok && err.contains("127.0.0.1:9"), "{err}");
    s.stop().await;
}
