//! Hostile clients against the real server: concurrent chunked uploads that would have
//! multiplied memory, bursts of bad keys, bad admin tokens and guessed webhook tokens,
//! and tenants over their request rates. Each gets 413, 429 or 503 with a clear
//! problem (and `Retry-After` where waiting helps), and the good tenant next to them is
//! served as before.

use crate::BASIC;
use crate::support::node::Node;
use crate::support::server::{ADMIN, TestServer, send};
use futures_util::StreamExt;
use serde_json::json;
use std::net::{IpAddr, Ipv4Addr};

/// A client whose requests come from `ip` (any address of 127.0.0.0/8 on loopback).
fn client_from(ip: [u8; 4]) -> reqwest::Client {
    weir::install_crypto_provider();
    reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::from(ip)))
        .build()
        .unwrap()
}

/// A body of `len` bytes sent in 64 KiB chunks, without a Content-Length.
fn chunked(len: usize) -> reqwest::Body {
    let chunks = (0..len.div_ceil(64 << 10)).map(|_| Ok::<_, std::io::Error>(vec![0u8; 64 << 10]));
    reqwest::Body::wrap_stream(futures_util::stream::iter(chunks))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_chunked_uploads_keep_the_servers_memory_flat() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(
        dir.path(),
        None,
        "uploads",
        &["--upload-limit-mb", "16", "--max-concurrent-uploads", "8"],
    )
    .await;
    let (status, ws) = node
        .post("/api/workspaces", ADMIN, json!({"name": "up"}))
        .await;
    assert_eq!(status, 201, "{ws}");
    let key = ws["key"]["secret"].as_str().unwrap().to_owned();
    // Warm up: one real upload, so the peak below counts only what uploads hold.
    let wasm = std::fs::read(crate::support::guest(BASIC)).unwrap();
    let (status, body) = send(
        node.req(reqwest::Method::POST, "/api/components", &key)
            .header("content-type", "application/wasm")
            .body(wasm.clone()),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let before = node.peak_rss_kib();

    // 32 uploads of 20 MiB each without a Content-Length, past the 16 MiB limit: held
    // in memory they would take 512 MiB.
    let over = futures_util::stream::iter(0..32)
        .map(|_| {
            let req = node
                .req(reqwest::Method::POST, "/api/components", &key)
                .header("content-type", "application/wasm")
                .body(chunked(20 << 20));
            async move {
                let res = req.send().await.expect("an answer");
                let retry = res.headers().get("retry-after").is_some();
                let status = res.status().as_u16();
                let body: serde_json::Value = res.json().await.unwrap_or_default();
                (status, retry, body)
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    let mut too_large = 0;
    for (status, retry, body) in &over {
        match status {
            413 => {
                too_large += 1;
                assert!(
                    body["detail"].as_str().unwrap().contains("16777216 bytes"),
                    "{body}"
                );
            }
            503 => assert!(*retry, "a 503 says when to come back: {body}"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(too_large >= 8, "{over:?}");
    // And 24 good uploads at once: each is accepted, or told to come back.
    let good = futures_util::stream::iter(0..24)
        .map(|_| {
            let req = node
                .req(reqwest::Method::POST, "/api/components", &key)
                .header("content-type", "application/wasm")
                .body(wasm.clone());
            async move { send(req).await.0 }
        })
        .buffer_unordered(24)
        .collect::<Vec<_>>()
        .await;
    assert!(
        good.iter().all(|s| *s == 200 || *s == 503) && good.contains(&200),
        "{good:?}"
    );
    let after = node.peak_rss_kib();
    assert!(
        after.saturating_sub(before) < 96 << 10,
        "uploads grew the server's peak memory from {before} KiB to {after} KiB"
    );
    // Nothing of the refused uploads is left on disk.
    let left: Vec<_> = std::fs::read_dir(dir.path().join("components/.uploads"))
        .unwrap()
        .collect();
    assert!(left.is_empty(), "{left:?}");
    node.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bursts_of_bad_credentials_are_refused_cheaply_and_audited() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(
        dir.path(),
        None,
        "burst",
        &["--auth-failures-per-minute", "30"],
    )
    .await;
    let (_, ws) = node
        .post("/api/workspaces", ADMIN, json!({"name": "good"}))
        .await;
    let key = ws["key"]["secret"].as_str().unwrap().to_owned();
    let attacker = client_from([127, 0, 0, 2]);
    let url = node.url.clone();
    let statuses = futures_util::stream::iter(0..600)
        .map(|i| {
            let req = match i % 3 {
                // Bad keys, bad admin tokens, guessed webhook tokens.
                0 => attacker
                    .get(format!("{url}/api/flow-runs"))
                    .bearer_auth(format!("weir_guess{i:08}_0123456789abcdef")),
                1 => attacker
                    .post(format!("{url}/api/workspaces"))
                    .bearer_auth("not-the-admin-token")
                    .json(&json!({"name": "x"})),
                _ => attacker
                    .post(format!("{url}/hooks/guess{i:032}"))
                    .json(&json!({})),
            };
            async move {
                // 0: the connection was closed as it was accepted (a blocked address).
                match req.send().await {
                    Ok(res) => (
                        res.status().as_u16(),
                        res.headers()
                            .get("retry-after")
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.parse::<u64>().ok()),
                    ),
                    Err(_) => (0, None),
                }
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    let failed = statuses
        .iter()
        .filter(|(s, _)| matches!(s, 401 | 404))
        .count();
    let limited: Vec<_> = statuses.iter().filter(|(s, _)| *s == 429).collect();
    let closed = statuses.iter().filter(|(s, _)| *s == 0).count();
    // The first 30 failures are answered; past them the address is refused outright:
    // 429 on the connections it had, its new connections closed unread.
    assert!(
        (30..=40).contains(&failed),
        "{failed} failures were answered: {statuses:?}"
    );
    assert_eq!(failed + limited.len() + closed, 600, "{statuses:?}");
    assert!(!limited.is_empty(), "{statuses:?}");
    assert!(
        limited
            .iter()
            .all(|(_, r)| r.is_some_and(|s| (1..=60).contains(&s))),
        "{limited:?}"
    );
    // The good tenant, from another address, is served throughout.
    let (status, page) = node.get("/api/flow-runs", &key).await;
    assert_eq!(status, 200, "{page}");

    // The audit log has each failure and the block; the access log has routes, never a
    // webhook token.
    let log = std::fs::read_to_string(dir.path().join("node-burst.log")).unwrap();
    assert!(
        log.contains("authentication failed") && log.contains("127.0.0.2"),
        "{log}"
    );
    assert!(log.contains("too many failed authentications"), "{log}");
    assert!(log.contains("POST /hooks/{token} 404"), "{log}");
    assert!(
        !log.contains("guess0000"),
        "a guessed token reached the log"
    );
    node.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_or_a_workspace_over_its_rate_gets_429_and_others_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start_with(dir.path(), |c| {
        c.rate.per_peer = 40;
        c.rate.per_workspace = 20;
    })
    .await;
    let a = s.workspace("a").await;
    let b = s.workspace("b").await;

    // Workspace a, from two addresses: its own budget runs out (20/s, 40 at once). The
    // requests go at once, so a slow machine cannot stretch them past the refill.
    let requests = (0..60).map(|i| {
        let from = if i % 2 == 0 {
            [127, 0, 0, 3]
        } else {
            [127, 0, 0, 4]
        };
        client_from(from)
            .get(format!("{}/api/components", s.url))
            .bearer_auth(&a.key)
            .send()
    });
    let codes: Vec<(u16, bool)> = futures_util::future::join_all(requests)
        .await
        .into_iter()
        .map(|res| {
            let res = res.unwrap();
            (
                res.status().as_u16(),
                res.headers().contains_key("retry-after"),
            )
        })
        .collect();
    let limited = codes.iter().filter(|(c, _)| *c == 429).count();
    assert!(limited >= 10, "{codes:?}");
    assert!(codes.iter().all(|(c, r)| *c == 200 || (*c == 429 && *r)));
    // Workspace b is not slowed by a.
    let (status, _) = s.get("/api/components", &b.key).await;
    assert_eq!(status, 200);

    // One address past its own rate (40/s, 80 at once), whatever the workspace.
    let flood = client_from([127, 0, 0, 5]);
    let mut peer_limited = 0;
    for _ in 0..120 {
        let res = flood.get(format!("{}/health", s.url)).send().await.unwrap();
        if res.status() == 429 {
            peer_limited += 1;
            let p: serde_json::Value = res.json().await.unwrap();
            assert_eq!(p["status"], 429, "{p}");
            assert!(
                p["detail"].as_str().unwrap().contains("this address"),
                "{p}"
            );
        }
    }
    assert!(peer_limited >= 20, "{peer_limited}");
    let (status, _) = s.get("/api/components", &b.key).await;
    assert_eq!(status, 200, "other addresses are served");
    s.stop().await;
}

#[tokio::test]
async fn the_last_key_of_a_workspace_is_kept_and_the_admin_can_mint_one() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let (status, created) = s
        .post("/api/workspaces", ADMIN, json!({"name": "solo"}))
        .await;
    assert_eq!(status, 201);
    let key = created["key"]["secret"].as_str().unwrap().to_owned();
    let first_id = created["key"]["id"].as_str().unwrap().to_owned();
    let (status, p) = send(s.req(
        reqwest::Method::DELETE,
        &format!("/api/keys/{first_id}"),
        &key,
    ))
    .await;
    assert_eq!(status, 409, "{p}");
    assert!(
        p["detail"].as_str().unwrap().contains("last active key"),
        "{p}"
    );
    // The key still works.
    assert_eq!(s.get("/api/components", &key).await.0, 200);

    // With a second key, the first can go.
    let (status, second) = s.post("/api/keys", &key, json!({"name": "ci"})).await;
    assert_eq!(status, 201, "{second}");
    let second_key = second["secret"].as_str().unwrap().to_owned();
    let (status, _) = send(s.req(
        reqwest::Method::DELETE,
        &format!("/api/keys/{first_id}"),
        &second_key,
    ))
    .await;
    assert_eq!(status, 204);
    assert_eq!(s.get("/api/components", &key).await.0, 401);

    // The admin mints a key for the workspace, by name or id; others may not.
    let ws_id = created["workspace"]["id"].as_str().unwrap();
    for id in ["solo", ws_id] {
        let (status, minted) = s
            .post(&format!("/api/workspaces/{id}/keys"), ADMIN, json!({}))
            .await;
        assert_eq!(status, 201, "{minted}");
        let k = minted["secret"].as_str().unwrap();
        assert_eq!(s.get("/api/components", k).await.0, 200);
    }
    let (status, _) = s
        .post("/api/workspaces/solo/keys", &second_key, json!({}))
        .await;
    assert_eq!(status, 401);
    let (status, _) = s
        .post("/api/workspaces/nobody/keys", ADMIN, json!({}))
        .await;
    assert_eq!(status, 404);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_keys_revoking_each_other_at_once_leave_one() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    for round in 0..20 {
        let (_, created) = s
            .post(
                "/api/workspaces",
                ADMIN,
                json!({"name": format!("race{round}")}),
            )
            .await;
        let a = created["key"]["secret"].as_str().unwrap().to_owned();
        let a_id = created["key"]["id"].as_str().unwrap().to_owned();
        let (_, b) = s.post("/api/keys", &a, json!({})).await;
        let (b, b_id) = (
            b["secret"].as_str().unwrap().to_owned(),
            b["id"].as_str().unwrap().to_owned(),
        );
        let (x, y) = tokio::join!(
            send(s.req(reqwest::Method::DELETE, &format!("/api/keys/{b_id}"), &a)),
            send(s.req(reqwest::Method::DELETE, &format!("/api/keys/{a_id}"), &b)),
        );
        let mut codes = [x.0, y.0];
        codes.sort();
        // One wins; the other is refused as the last key, or its own key is gone.
        assert!(
            codes == [204, 401] || codes == [204, 409],
            "round {round}: {codes:?}"
        );
        let ok_a = s.get("/api/keys", &a).await.0 == 200;
        let ok_b = s.get("/api/keys", &b).await.0 == 200;
        assert!(ok_a ^ ok_b, "round {round}: exactly one key is left");
    }
    s.stop().await;
}

#[tokio::test]
async fn deployment_names_that_could_stand_for_something_else_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(dir.path()).await;
    let ws = s.workspace("names").await;
    let digest = s.upload(&ws.key, BASIC).await;
    for name in [
        ".",
        "..",
        "0190f2a8-7c1e-7d3a-9b2e-1234567890ab",
        "0190F2A8-7C1E-7D3A-9B2E-1234567890AB",
    ] {
        let (status, p) = s
            .post(
                "/api/deployments",
                &ws.key,
                json!({"name": name, "component": digest, "flow": "add_flow"}),
            )
            .await;
        assert_eq!(status, 422, "{name}: {p}");
        assert!(
            p["errors"][0].as_str().unwrap().starts_with("'name'"),
            "{p}"
        );
    }
    s.stop().await;
}

#[cfg(unix)]
#[tokio::test]
async fn files_holding_credentials_are_private_to_their_owner() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), None, "files", &[]).await;
    let (status, _) = node
        .post("/api/workspaces", ADMIN, json!({"name": "files"}))
        .await;
    assert_eq!(status, 201);
    for file in ["weir.db", "weir.db-wal", "secret.key"] {
        let path = dir.path().join(file);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{file} is {mode:o}");
    }
    node.kill().await;
}
