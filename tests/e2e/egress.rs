//! The operator's egress policy, above the deployments' allow-lists: loopback, private,
//! link-local and metadata addresses are closed to flows whatever a deployment grants,
//! in every spelling of the address, judged on the address a name resolves to and
//! again on every redirect; the operator opens ranges with `--egress-allow`.

use crate::BASIC;
use crate::support::server::TestServer;
use axum::http::{HeaderMap, StatusCode, header};
use serde_json::json;

/// A small HTTP service: `/ping` answers `pong-<tag>`, `/redirect?to=URL` sends the
/// client on to URL. Returns its port.
async fn service(addr: &str, tag: &'static str) -> Option<u16> {
    let listener = tokio::net::TcpListener::bind(addr).await.ok()?;
    let port = listener.local_addr().ok()?.port();
    let app = axum::Router::new()
        .route(
            "/ping",
            axum::routing::get(move || async move { format!("pong-{tag}") }),
        )
        .route(
            "/redirect",
            axum::routing::get(
                |q: axum::extract::Query<std::collections::HashMap<String, String>>| async move {
                    let mut h = HeaderMap::new();
                    h.insert(header::LOCATION, q["to"].parse().unwrap());
                    (StatusCode::FOUND, h)
                },
            ),
        );
    tokio::spawn(async move { axum::serve(listener, app).await });
    Some(port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flows_cannot_reach_the_servers_own_network_whatever_they_are_granted() {
    let p = service("127.0.0.1:0", "loopback").await.unwrap();
    let q = service("127.0.0.2:0", "opened").await.unwrap();
    let v6 = service("[::1]:0", "v6").await;
    let dir = tempfile::tempdir().unwrap();
    // The operator opens one address of the loopback range, and nothing else.
    let s = TestServer::start_with(dir.path(), |c| {
        c.limits.egress = weir::model::egress::Egress::parse(&["127.0.0.2/32".into()]).unwrap();
    })
    .await;
    let ws = s.workspace("egress").await;
    let digest = s.upload(&ws.key, BASIC).await;

    let loopback = format!("http://127.0.0.1:{p}/ping");
    let mut cases: Vec<(String, &str)> = vec![
        (loopback.clone(), "a loopback address"),
        (format!("http://localhost:{p}/ping"), "a loopback address"),
        // Numeric spellings a resolver reads as 127.0.0.1.
        (format!("http://2130706433:{p}/ping"), "a loopback address"),
        (format!("http://0177.0.0.1:{p}/ping"), "a loopback address"),
        (format!("http://0x7f000001:{p}/ping"), "a loopback address"),
        (
            format!("http://[::ffff:127.0.0.1]:{p}/ping"),
            "a loopback address",
        ),
        (format!("http://0.0.0.0:{p}/ping"), "an unspecified address"),
        (
            "http://169.254.169.254/latest/meta-data/".into(),
            "a cloud metadata address",
        ),
        (
            "http://[fd00:ec2::254]/latest/meta-data/".into(),
            "a private (unique local) address",
        ),
        ("http://10.0.0.1/".into(), "a private address"),
        ("http://192.168.1.1/".into(), "a private address"),
        ("http://[fe80::1]/".into(), "a link-local address"),
        ("http://224.0.0.1/".into(), "a multicast address"),
        // An opened address that redirects to a closed one: the redirect is refused.
        (
            format!("http://127.0.0.2:{q}/redirect?to={loopback}"),
            "a loopback address",
        ),
    ];
    if let Some(port) = v6 {
        cases.push((format!("http://[::1]:{port}/ping"), "a loopback address"));
    }
    let mut granted: Vec<String> = cases
        .iter()
        .map(|(url, _)| {
            let authority = url.trim_start_matches("http://").split('/').next().unwrap();
            let host = match authority.strip_prefix('[') {
                Some(v6) => v6.split(']').next().unwrap(),
                None => authority.split(':').next().unwrap(),
            };
            host.to_owned()
        })
        .collect();
    granted.push("127.0.0.2".into());
    let mut urls: Vec<String> = cases.iter().map(|(u, _)| u.clone()).collect();
    urls.push(format!("http://127.0.0.2:{q}/ping"));
    s.deploy(
        &ws.key,
        json!({"name": "probe", "component": digest, "flow": "fetch_each",
               "parameters": {"urls": urls},
               "capabilities": {"allowed_hosts": granted}}),
    )
    .await;
    let (status, run) = s
        .post("/api/deployments/probe/runs", &ws.key, json!({}))
        .await;
    assert_eq!(status, 201, "{run}");
    let id = run["id"].as_str().unwrap().to_owned();
    let run = s.wait_final(&ws.key, &id).await;
    assert_eq!(run["state"]["type"], "COMPLETED", "{run}");
    let results: Vec<String> = run["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(results.len(), cases.len() + 1);
    for ((url, _), result) in cases.iter().zip(&results) {
        assert!(
            result.starts_with("error: ") && result.contains("egress policy"),
            "{url} must be refused by the egress policy: {result}"
        );
    }
    assert_eq!(
        results.last().unwrap(),
        "200 pong-opened",
        "the opened address is reached"
    );

    // The run's log says which address was refused, and why.
    let (_, logs) = s.get(&format!("/api/flow-runs/{id}/logs"), &ws.key).await;
    let lines: Vec<&str> = logs["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["level"] == "WARNING")
        .map(|l| l["message"].as_str().unwrap())
        .collect();
    for (url, why) in &cases {
        let url = url.split_once("?to=").map_or(url.as_str(), |(_, to)| to);
        let authority = url.trim_start_matches("http://").split('/').next().unwrap();
        let host = authority
            .rsplit_once(':')
            .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()))
            .map_or(authority, |(h, _)| h);
        assert!(
            lines
                .iter()
                .any(|l| l.contains(&format!("to {host} refused")) && l.contains(why)),
            "no refusal logged for {url} ({why}): {lines:#?}"
        );
    }
    assert!(
        !lines.iter().any(|l| l.contains("127.0.0.2 refused")),
        "{lines:?}"
    );
    s.stop().await;
}

#[tokio::test]
async fn the_operator_opens_ranges_with_a_flag_and_bad_ranges_are_refused_at_start() {
    let bin = env!("CARGO_BIN_EXE_weir");
    let dir = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::new(bin)
        .args([
            "server",
            "--addr",
            "127.0.0.1:0",
            "--egress-allow",
            "10.1.2.0/33",
        ])
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--egress-allow \"10.1.2.0/33\" is not an address range"),
        "{err}"
    );
}
