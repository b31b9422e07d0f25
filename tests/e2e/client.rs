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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployments_schedules_pools_limits_and_workspaces_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let mut cli = Cli {
        url: s.url.clone(),
        key: String::new(),
    };
    cli.key = cli.json(&["workspace", "create", "lists"])["key"]["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    cli.json(&["workspace", "create", "other"]);
    let workspaces = cli.ok(&["workspace", "ls"]);
    assert!(
        workspaces.contains("lists") && workspaces.contains("other"),
        "{workspaces}"
    );
    // Listing workspaces is the admin's: a workspace key is refused.
    let (ok, _, err) = cli.run(&["workspace", "ls", "--admin-token", &cli.key]);
    assert!(!ok && err.contains("admin token"), "{err}");

    let hello = crate::support::guest("hello");
    let hello = hello.to_str().unwrap();
    // Not a terminal: no progress on stderr, so scripts read clean output.
    let (ok, _, err) = cli.run(&["component", "push", hello]);
    assert!(ok && err.is_empty(), "{err:?}");
    cli.ok(&[
        "deploy",
        "--name",
        "greet",
        "--component",
        hello,
        "--flow",
        "hello",
        "--tag",
        "t1",
        "--cron",
        "0 9 * * *",
        "--timezone",
        "Europe/Berlin",
    ]);
    cli.ok(&[
        "deploy",
        "--name",
        "plain",
        "--component",
        hello,
        "--flow",
        "hello",
    ]);

    let table = cli.ok(&["deployment", "ls"]);
    let header = table.lines().next().unwrap();
    assert!(
        header.starts_with("NAME") && header.contains("WEBHOOK"),
        "{table}"
    );
    assert!(
        table.contains("greet") && table.contains("plain"),
        "{table}"
    );
    let shown = cli.ok(&["deployment", "show", "greet"]);
    assert!(
        shown.contains("cron '0 9 * * *' in Europe/Berlin") && shown.contains("t1"),
        "{shown}"
    );

    let schedules = cli.json(&["schedule", "ls"]);
    let sched = schedules.as_array().unwrap();
    assert_eq!(sched.len(), 1, "{schedules}");
    let id = sched[0]["id"].as_str().unwrap().to_owned();
    let table = cli.ok(&["schedule", "ls", "--deployment", "greet"]);
    assert!(table.contains(&id) && table.contains("yes"), "{table}");
    cli.ok(&["schedule", "pause", &id]);
    let (_, got) = s.get(&format!("/api/schedules/{id}"), &cli.key).await;
    assert_eq!(got["active"], false, "{got}");
    assert!(cli.ok(&["schedule", "ls"]).contains("paused"));
    cli.ok(&["schedule", "resume", &id]);
    let (_, got) = s.get(&format!("/api/schedules/{id}"), &cli.key).await;
    assert_eq!(got["active"], true, "{got}");
    cli.ok(&["schedule", "rm", &id]);
    let (status, _) = s.get(&format!("/api/schedules/{id}"), &cli.key).await;
    assert_eq!(status, 404);
    assert!(cli.ok(&["schedule", "ls"]).contains("No schedules."));

    let out = cli.ok(&["deployment", "rm", "plain"]);
    assert!(out.contains("Deleted deployment plain"), "{out}");
    let (status, _) = s.get("/api/deployments/plain", &cli.key).await;
    assert_eq!(status, 404);
    let (ok, out, err) = cli.run(&["deployment", "show", "plain"]);
    assert!(!ok && (out + &err).contains("not found"));

    let pools = cli.ok(&["pool", "ls"]);
    assert!(
        pools.contains("default") && pools.contains("push"),
        "{pools}"
    );
    assert!(cli.ok(&["limit", "ls"]).contains("No concurrency limits."));
    let (status, body) = s
        .put(
            "/api/concurrency-limits/t1",
            &cli.key,
            serde_json::json!({"limit": 3}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let limits = cli.ok(&["limit", "ls"]);
    assert!(
        limits
            .lines()
            .any(|l| l.starts_with("t1") && l.contains('3')),
        "{limits}"
    );

    // Runs: their deployment by name, when they were due (with the zone's offset), how
    // long they took; logs and `trigger --wait` in `weir run`'s format.
    let waited = cli.ok(&[
        "trigger",
        "greet",
        "--param",
        "name=Log\u{1b}[31m",
        "--wait",
    ]);
    assert!(
        waited.contains(" | INFO    | ")
            && waited.contains("- Hello, Log!")
            && waited.contains(" | INFO    | Flow run '")
            && waited.contains("Finished in state Completed"),
        "{waited}"
    );
    assert!(!waited.contains('\u{1b}'), "{waited:?}");
    let run = cli.json(&["runs", "ls"])[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let logs = cli.ok(&["runs", "logs", &run]);
    let line = logs.lines().find(|l| l.contains("Hello, Log!")).unwrap();
    assert!(
        line.contains(" | INFO    | ") && !line.contains('\u{1b}'),
        "{logs:?}"
    );
    // The same line as `trigger --wait` printed.
    assert!(waited.contains(line), "{line}\n{waited}");
    let table = cli.ok(&["runs", "ls"]);
    let mut lines = table.lines();
    let header = lines.next().unwrap();
    for col in ["DEPLOYMENT", "SCHEDULED", "DURATION"] {
        assert!(header.contains(col), "{table}");
    }
    let row = lines.next().unwrap();
    assert!(
        row.contains("greet") && row.contains("Completed"),
        "{table}"
    );
    // `2030-01-01 10:00:00 +02:00`: the time carries its offset.
    let offset = regex_like_offset(row);
    assert!(offset, "no UTC offset in {row}");
    assert!(
        row.trim_end().ends_with('s'),
        "a duration ends the row: {row}"
    );
    s.stop().await;
}

/// Whether a line holds ` +HH:MM` or ` -HH:MM` after a time of day.
fn regex_like_offset(line: &str) -> bool {
    let b = line.as_bytes();
    b.windows(16).any(|w| {
        w[2] == b':'
            && w[5] == b':'
            && w[8] == b' '
            && (w[9] == b'+' || w[9] == b'-')
            && w[12] == b':'
            && [0, 1, 3, 4, 6, 7, 10, 11, 13, 14]
                .iter()
                .all(|&i| w[i].is_ascii_digit())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_shows_progress_on_a_terminal_only() {
    let Ok(script) = which("script") else {
        eprintln!("skipped: no `script` to give weir a terminal");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let ws = s.workspace("tty").await;
    let hello = crate::support::guest("hello");
    let cmd = format!(
        "{} component push {}",
        env!("CARGO_BIN_EXE_weir"),
        hello.display()
    );
    let out = Command::new(script)
        .args(["-qec", &cmd, "/dev/null"])
        .env("WEIR_API_URL", &s.url)
        .env("WEIR_API_KEY", &ws.key)
        .output()
        .unwrap();
    let seen = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{seen}");
    assert!(
        seen.contains(" KiB sent (") && seen.contains("KiB sent; the server is compiling it..."),
        "{seen:?}"
    );
    assert!(seen.contains("Uploaded component sha256:"), "{seen}");
    s.stop().await;
}

fn which(name: &str) -> Result<std::path::PathBuf, ()> {
    std::env::var_os("PATH")
        .and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(name))
                .find(|f| f.is_file())
        })
        .ok_or(())
}

/// A TLS endpoint on a loopback port in front of a test server, with a certificate for
/// 127.0.0.1 signed by a CA made for the test; returns its port and the CA's PEM.
async fn tls_front(backend: &str) -> (u16, String) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Weir test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let mut leaf_params =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "127.0.0.1");
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();

    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![leaf.der().clone()], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let backend = backend.strip_prefix("http://").unwrap().to_owned();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, backend) = (acceptor.clone(), backend.clone());
            tokio::spawn(async move {
                // A client that does not trust the certificate hangs up mid-handshake.
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                if let Ok(mut plain) = tokio::net::TcpStream::connect(&backend).await {
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                }
            });
        }
    });
    (port, ca.pem())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_speaks_https_trusting_a_given_ca() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let ws = s.workspace("tls").await;
    let (port, ca_pem) = tls_front(&s.url).await;
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, ca_pem).unwrap();
    let cli = Cli {
        url: format!("https://127.0.0.1:{port}"),
        key: ws.key.clone(),
    };
    let ca = ca.to_str().unwrap();

    // With the CA, by flag or from the environment, the commands work over HTTPS.
    let out = cli.ok(&["runs", "ls", "--ca-cert", ca]);
    assert!(out.contains("No flow runs."), "{out}");
    let hello = crate::support::guest("hello");
    let out = cli.ok(&[
        "component",
        "push",
        hello.to_str().unwrap(),
        "--ca-cert",
        ca,
    ]);
    assert!(out.contains("Uploaded component"), "{out}");
    let out = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["component", "ls"])
        .env("WEIR_API_URL", &cli.url)
        .env("WEIR_API_KEY", &cli.key)
        .env("WEIR_CA_CERT", ca)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("hello"));

    // Without it the certificate is not trusted, and the error says what to do.
    let (ok, _, err) = cli.run(&["runs", "ls"]);
    assert!(!ok, "a certificate no one vouches for is refused");
    assert!(
        err.contains("cannot connect securely") && err.contains("--ca-cert"),
        "{err}"
    );
    assert!(
        !err.contains("Is it running?"),
        "not taken for a server that is down: {err}"
    );
    // A CA file that is not one is a clear error too, before any request.
    let (ok, _, err) = cli.run(&["runs", "ls", "--ca-cert", "/does/not/exist.pem"]);
    assert!(!ok && err.contains("cannot read --ca-cert"), "{err}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_from_the_cli_and_the_deployment_file() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let mut cli = Cli {
        url: s.url.clone(),
        key: String::new(),
    };
    let created = cli.json(&["workspace", "create", "plugins"]);
    cli.key = created["key"]["secret"].as_str().unwrap().to_owned();
    let toolkit = crate::support::guest("guest_toolkit");
    let caller = crate::support::guest("guest_plugin_caller");

    let added = cli.ok(&["plugin", "add", "toolkit", toolkit.to_str().unwrap()]);
    assert!(
        added.contains("Registered plugin toolkit version 1"),
        "{added}"
    );
    assert!(
        added.contains("toolkit@1/greet") && added.contains("name, punctuation?"),
        "the tasks with their arguments: {added}"
    );
    let again = cli.ok(&["plugin", "add", "toolkit", toolkit.to_str().unwrap()]);
    assert!(
        again.contains("Already registered: plugin toolkit version 1"),
        "{again}"
    );
    let listed = cli.ok(&["plugin", "ls"]);
    assert!(
        listed.contains("toolkit") && listed.contains("workspace") && listed.contains("greet"),
        "{listed}"
    );
    let shown = cli.json(&["plugin", "show", "toolkit"]);
    assert_eq!(shown["versions"][0]["version"], 1, "{shown}");

    // A deployment file registers its plugins before its deployments, and grants the
    // deployment's plugins a secret.
    let file = dir.path().join("weir.yaml");
    std::fs::write(
        &file,
        format!(
            "plugins:\n  - name: tools\n    component: {}\n    description: The test tools\n\
             deployments:\n  - name: secrets\n    component: {}\n    flow: secrets\n\
             \x20   capabilities: {{plugin_secrets: [token]}}\n",
            toolkit.display(),
            caller.display()
        ),
    )
    .unwrap();
    let deployed = cli.ok(&["deploy", "-f", file.to_str().unwrap()]);
    assert!(
        deployed.contains("Plugin tools registered as version 1"),
        "{deployed}"
    );
    let d = cli.json(&["deployment", "show", "secrets"]);
    assert_eq!(
        d["capabilities"]["plugin_secrets"],
        serde_json::json!(["token"]),
        "{d}"
    );
    let removed = cli.ok(&["plugin", "rm", "tools"]);
    assert!(removed.contains("Removed plugin tools"), "{removed}");
    let (ok, _, stderr) = cli.run(&["plugin", "show", "tools"]);
    assert!(!ok && stderr.contains("plugin not found"), "{stderr}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn automations_from_the_deployment_file_and_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let mut cli = Cli {
        url: s.url.clone(),
        key: String::new(),
    };
    let created = cli.json(&["workspace", "create", "automations"]);
    cli.key = created["key"]["secret"].as_str().unwrap().to_owned();
    let basic = crate::support::guest("guest_basic");
    let file = dir.path().join("weir.yaml");
    std::fs::write(
        &file,
        format!(
            "deployments:\n  - name: greet\n    component: {}\n    flow: names_flow\n\
             automations:\n  - name: on-signup\n    trigger: {{type: event}}\n\
             \x20   webhook: {{enabled: true}}\n    actions:\n\
             \x20     - type: run-deployment\n        deployment: greet\n\
             \x20       parameters: {{who: \"{{{{ event.body.user }}}}\"}}\n",
            basic.display()
        ),
    )
    .unwrap();
    let out = cli.ok(&["deploy", "-f", file.to_str().unwrap()]);
    assert!(out.contains("Created automation on-signup"), "{out}");
    // Its event URL is printed once.
    let hooks = format!("events: POST {}/hooks/automations/", s.url);
    assert!(out.contains(&hooks), "{out}");
    // Applying the file again updates it, and keeps the URL.
    let again = cli.ok(&["deploy", "-f", file.to_str().unwrap()]);
    assert!(again.contains("Updated automation on-signup"), "{again}");
    assert!(!again.contains("/hooks/"), "{again}");
    let rotated = cli.ok(&["automation", "rotate-webhook", "on-signup"]);
    let url = rotated
        .lines()
        .find_map(|l| l.trim().strip_prefix("events: POST "))
        .unwrap_or_else(|| panic!("{rotated}"))
        .to_owned();
    let posted = s
        .client
        .post(&url)
        .header("idempotency-key", "first")
        .json(&serde_json::json!({"user": "Ada"}))
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 202);
    let listed = cli.ok(&["automation", "ls"]);
    assert!(
        listed.contains("on-signup") && listed.contains("an event is posted"),
        "{listed}"
    );
    // And an event from the CLI, with the API key: the newest run.
    cli.ok(&[
        "automation",
        "event",
        "on-signup",
        "--body",
        r#"{"user": "Ada"}"#,
    ]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let runs = loop {
        let runs = cli.json(&["automation", "runs", "on-signup"]);
        let items = runs.as_array().unwrap();
        if items.len() == 2 && items.iter().all(|r| r["state"] == "completed") {
            break runs;
        }
        assert!(std::time::Instant::now() < deadline, "{runs}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let started = runs[0]["results"][0]["output"]["flow_run_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let run = s.wait_final(&cli.key, &started).await;
    assert_eq!(run["parameters"]["who"], "Ada", "{run}");
    let off = cli.ok(&["automation", "disable", "on-signup"]);
    assert!(off.contains("disabled"), "{off}");
    let (ok, _, stderr) = cli.run(&["automation", "event", "on-signup"]);
    assert!(!ok && stderr.contains("disabled"), "{stderr}");
    let shown = cli.ok(&["automation", "show", "on-signup"]);
    assert!(
        shown.contains("Webhook: /hooks/automations/<token>"),
        "{shown}"
    );
    cli.ok(&["automation", "rm", "on-signup"]);
    let (ok, _, _) = cli.run(&["automation", "show", "on-signup"]);
    assert!(!ok);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_from_the_cli_and_the_deployment_file() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let mut cli = Cli {
        url: s.url.clone(),
        key: String::new(),
    };
    cli.key = cli.json(&["workspace", "create", "kept"])["key"]["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let shown = cli.ok(&["workspace", "retention"]);
    assert!(
        shown.contains("finished runs are kept until deleted")
            && shown.contains("Deleted       0 runs"),
        "{shown}"
    );
    let set = cli.ok(&["workspace", "retention", "--days", "30"]);
    assert!(set.contains("finished runs are kept 30 days"), "{set}");
    // A bound given alone leaves the other as it was; `none` removes one.
    let both = cli.json(&["workspace", "retention", "--runs", "1_000"]);
    assert_eq!(both["policy"]["days"], 30, "{both}");
    assert_eq!(both["policy"]["runs"], 1000, "{both}");
    let runs_only = cli.json(&["workspace", "retention", "--days", "none"]);
    assert!(runs_only["policy"]["days"].is_null(), "{runs_only}");
    let (ok, _, err) = cli.run(&["workspace", "retention", "--days", "soon"]);
    assert!(
        !ok && err.contains("--days must be a whole number or 'none'"),
        "{err}"
    );
    let (ok, _, err) = cli.run(&["workspace", "retention", "--days", "0"]);
    assert!(
        !ok && err.contains("'days' must be from 1 to 36500"),
        "{err}"
    );

    let hello = crate::support::guest("hello");
    let file = dir.path().join("weir.yaml");
    std::fs::write(
        &file,
        format!(
            "deployments:\n  - name: brief\n    component: {}\n    flow: hello\n    retention: {{runs: 5}}\n",
            hello.display()
        ),
    )
    .unwrap();
    cli.ok(&["deploy", "-f", file.to_str().unwrap()]);
    let shown = cli.ok(&["deployment", "show", "brief"]);
    assert!(
        shown.contains("the newest 5 finished runs are kept"),
        "{shown}"
    );
    let report = cli.ok(&["workspace", "retention"]);
    assert!(
        report.contains("brief") && report.contains("the newest 5"),
        "{report}"
    );
    // Flags too; a deployment without its own says whose holds.
    cli.ok(&[
        "deploy",
        "--name",
        "long",
        "--component",
        hello.to_str().unwrap(),
        "--flow",
        "hello",
        "--retention-days",
        "90",
    ]);
    let d = cli.json(&["deployment", "show", "long"]);
    assert_eq!(d["retention"]["days"], 90, "{d}");
    cli.ok(&[
        "deploy",
        "--name",
        "plain",
        "--component",
        hello.to_str().unwrap(),
        "--flow",
        "hello",
    ]);
    let shown = cli.ok(&["deployment", "show", "plain"]);
    assert!(shown.contains("the workspace's"), "{shown}");
    s.stop().await;
}
