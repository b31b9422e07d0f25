//! `weir server --tls-cert --tls-key`: HTTPS without a proxy, for a single-machine
//! install.

use crate::support::node::Node;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A self-signed certificate for 127.0.0.1 and localhost, written as PEM files.
fn certificate(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf, Vec<u8>) {
    let ck =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    (cert, key, ck.cert.der().to_vec())
}

/// `GET path` over TLS, trusting only `ca`; returns the status line and the body.
async fn get(url: &str, path: &str, ca: &[u8]) -> std::io::Result<(String, String)> {
    let addr = url.trim_start_matches("https://");
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(ca.to_vec()))
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await?;
    tls.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await?;
    let mut out = Vec::new();
    // The server closes without TLS close_notify at times; what arrived is enough.
    let _ = tls.read_to_end(&mut out).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    Ok((
        head.lines().next().unwrap_or_default().to_owned(),
        body.to_owned(),
    ))
}

#[tokio::test]
async fn the_server_speaks_https_with_its_own_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, der) = certificate(dir.path());
    let node = Node::start(
        dir.path(),
        None,
        "tls",
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    )
    .await;
    assert!(node.url.starts_with("https://127.0.0.1:"), "{}", node.url);
    let (status, body) = get(&node.url, "/health", &der).await.unwrap();
    assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
    assert!(body.contains("ok"), "{body}");

    // A client that does not trust the certificate is refused in the handshake.
    let other = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    let err = get(&node.url, "/health", other.cert.der())
        .await
        .expect_err("an unknown certificate is not trusted");
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );

    // Plain HTTP on the TLS port gets no answer, and the server carries on.
    let mut plain = tokio::net::TcpStream::connect(node.url.trim_start_matches("https://"))
        .await
        .unwrap();
    plain
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        plain.read_to_end(&mut buf),
    )
    .await
    .expect("the server closes a connection that does not speak TLS");
    assert!(!String::from_utf8_lossy(&buf).contains("200 OK"));
    let (status, _) = get(&node.url, "/health", &der).await.unwrap();
    assert_eq!(status, "HTTP/1.1 200 OK");
    node.kill().await;
}

#[tokio::test]
async fn a_key_that_does_not_fit_is_refused_at_start_with_the_files_named() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, _, _) = certificate(dir.path());
    let other = rcgen::generate_simple_self_signed(vec!["x".into()]).unwrap();
    let wrong_key = dir.path().join("other-key.pem");
    std::fs::write(&wrong_key, other.signing_key.serialize_pem()).unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["server", "--addr", "127.0.0.1:0", "--tls-cert"])
        .arg(&cert)
        .arg("--tls-key")
        .arg(&wrong_key)
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("does not fit the certificate") && err.contains("other-key.pem"),
        "{err}"
    );
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["server", "--addr", "127.0.0.1:0", "--tls-cert"])
        .arg(dir.path().join("missing.pem"))
        .arg("--tls-key")
        .arg(&wrong_key)
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("missing.pem"), "{err}");
}
