//! TLS as a client meets it: HSTS, the plain-HTTP redirect, certificates from files reloaded on
//! SIGHUP without dropping open connections.

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::*;

type Tls = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

async fn connect(base: &str) -> Tls {
    let address = base.trim_start_matches("https://").to_string();
    let config = allhands::healthcheck::local_client_config().unwrap();
    let tcp = tokio::net::TcpStream::connect(&address).await.unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap()
}

fn peer_certificate(stream: &Tls) -> Vec<u8> {
    stream.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

/// One keep-alive request on an open connection; returns the status.
async fn get(stream: &mut Tls, path: &str) -> u16 {
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "the connection was closed");
        response.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&response);
        if let Some(head_end) = text.find("\r\n\r\n") {
            let length: usize = text[..head_end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            if response.len() >= head_end + 4 + length {
                return text[9..12].parse().unwrap();
            }
        }
    }
}

fn make_certificate(
    dir: &std::path::Path,
    name: &str,
) -> (std::path::PathBuf, std::path::PathBuf, Vec<u8>) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_string(), name.to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let cert_path = dir.join(format!("{name}.crt"));
    let key_path = dir.join(format!("{name}.key"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    (cert_path, key_path, cert.der().to_vec())
}

#[tokio::test]
async fn certificates_reload_on_sighup_without_dropping_connections() {
    let certs = tempfile::tempdir().unwrap();
    let (cert_a, key_a, der_a) = make_certificate(certs.path(), "first.example");
    let (cert_b, key_b, der_b) = make_certificate(certs.path(), "second.example");
    let live_cert = certs.path().join("live.crt");
    let live_key = certs.path().join("live.key");
    std::fs::copy(&cert_a, &live_cert).unwrap();
    std::fs::copy(&key_a, &live_key).unwrap();
    let server = TestServer::start_with(&[
        ("ALLHANDS_TLS__MODE", "files"),
        ("ALLHANDS_TLS__CERT_FILE", live_cert.to_str().unwrap()),
        ("ALLHANDS_TLS__KEY_FILE", live_key.to_str().unwrap()),
    ])
    .await;
    let mut open = connect(&server.base).await;
    assert_eq!(peer_certificate(&open), der_a);
    assert_eq!(
        open.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    assert_eq!(get(&mut open, "/healthz").await, 200);

    // A broken file is refused and the current certificate stays.
    std::fs::write(&live_cert, "not a certificate").unwrap();
    let pid = server.child.as_ref().unwrap().id().to_string();
    std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(peer_certificate(&connect(&server.base).await), der_a);

    std::fs::copy(&cert_b, &live_cert).unwrap();
    std::fs::copy(&key_b, &live_key).unwrap();
    std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap();
    let mut swapped = false;
    for _ in 0..50 {
        if peer_certificate(&connect(&server.base).await) == der_b {
            swapped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(swapped, "new connections get the new certificate");
    assert_eq!(
        get(&mut open, "/healthz").await,
        200,
        "the connection opened before the reload still works"
    );
    assert!(server.log().contains("reloaded the TLS certificate"));
}

#[tokio::test]
async fn the_plain_http_listener_only_redirects_and_https_sends_hsts() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let redirect = format!("127.0.0.1:{port}");
    let server =
        TestServer::start_with(&[("ALLHANDS_SERVER__REDIRECT_LISTEN", redirect.as_str())]).await;
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = plain
        .get(format!("http://{redirect}/employees?x=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 308);
    let https_port = server.base.rsplit(':').next().unwrap();
    assert_eq!(
        response
            .headers()
            .get("location")
            .unwrap()
            .to_str()
            .unwrap(),
        format!("https://127.0.0.1:{https_port}/employees?x=1")
    );
    let posted = plain
        .post(format!("http://{redirect}/api/v1/auth/login"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 308, "nothing is served over plain HTTP");
    let secure = client().get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(
        secure.headers().get("strict-transport-security").unwrap(),
        "max-age=31536000; includeSubDomains"
    );
}
