//! Hostile clients at the connection level, against the real `weir server` process:
//! connections that never finish their headers, keep-alive connections left idle,
//! bodies that stop arriving. None of them may keep the server from anyone else.

use crate::support::node::Node;
use serde_json::json;
use std::net::IpAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads until the server closes the connection (or resets it), by `deadline`; returns
/// what arrived, or `None` if the connection was still open at the deadline.
async fn read_to_close(s: &mut TcpStream, deadline: Instant) -> Option<Vec<u8>> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(got),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_and_idle_connections_are_bounded_and_closed_while_others_are_served() {
    // This process holds a thousand sockets too.
    weir::server::listen::raise_open_files_limit();
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(
        dir.path(),
        None,
        "conns",
        &[
            "--header-timeout-seconds",
            "2",
            "--body-timeout-seconds",
            "2",
            "--max-connections-per-peer",
            "300",
        ],
    )
    .await;
    let ws = node.workspace("conns").await;
    let addr = node.url.strip_prefix("http://").unwrap().to_owned();

    // A thousand connections from 127.0.0.1 that send half a request and stall.
    let mut stalled = Vec::new();
    for _ in 0..1000 {
        let mut s = TcpStream::connect(&addr).await.expect("connect");
        let _ = s
            .write_all(b"GET /health HTTP/1.1\r\nHost: weir\r\nX-Slow: ")
            .await;
        stalled.push(s);
    }
    // A client from another address is answered at once, again and again.
    let other: IpAddr = "127.0.0.2".parse().unwrap();
    let good = reqwest::Client::builder()
        .local_address(other)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    for _ in 0..20 {
        let res = good
            .get(format!("{}/health", node.url))
            .send()
            .await
            .expect("answered while a thousand connections stall");
        assert_eq!(res.status(), 200);
    }
    // Every stalled connection is closed by the server: those past the bound per peer
    // at once, the others at the header deadline.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut answered = 0;
    for (i, s) in stalled.iter_mut().enumerate() {
        let got = read_to_close(s, deadline)
            .await
            .unwrap_or_else(|| panic!("stalled connection {i} is still open"));
        answered += usize::from(!got.is_empty());
    }
    drop(stalled);
    eprintln!("{answered} of the stalled connections got an answer before closing");
    let log = std::fs::read_to_string(dir.path().join("node-conns.log")).unwrap();
    assert!(
        log.contains("the limit per peer"),
        "refusals past the bound per peer are logged:\n{log}"
    );

    // A keep-alive connection left idle after its answer is closed at the deadline too.
    let mut idle = TcpStream::connect(&addr).await.unwrap();
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: weir\r\n\r\n")
        .await
        .unwrap();
    let got = read_to_close(&mut idle, Instant::now() + Duration::from_secs(10))
        .await
        .expect("the idle keep-alive connection is closed");
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");

    // A request whose body stops arriving is cut off; the connection does not linger.
    let mut slow = TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /api/deployments/nothing/runs HTTP/1.1\r\nHost: weir\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"parameters\": ",
        ws.key
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    let got = read_to_close(&mut slow, Instant::now() + Duration::from_secs(10))
        .await
        .expect("a stalled body is cut off");
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 4"),
        "a stalled body gets a client error or a close: {text}"
    );

    // And the server still serves everyone, the first peer included.
    let res = node
        .req(
            reqwest::Method::POST,
            "/api/deployments/nothing/runs",
            &ws.key,
        )
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}
