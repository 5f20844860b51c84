//! What the benchmarks share: the server under test started on a free port with a fresh data
//! directory, a signed-in administrator, and WebSockets over TLS.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const PASSWORD: &str = "bench-Pass-word-123";
const CHANGED: &str = "bench-Changed-456";

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

/// The `allhands` under test: `ALLHANDS_BENCH_BINARY`, else the static release build when it
/// exists (what CI builds and ships), else the bench profile's binary.
pub fn binary() -> std::path::PathBuf {
    if let Some(path) = std::env::var_os("ALLHANDS_BENCH_BINARY") {
        return path.into();
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| root.join("target"));
    let static_build = target.join("x86_64-unknown-linux-gnu/release/allhands");
    if static_build.exists() {
        static_build
    } else {
        std::path::PathBuf::from(env!("CARGO_BIN_EXE_allhands"))
    }
}

pub struct BenchServer {
    pub child: std::process::Child,
    pub port: u16,
    pub base: String,
    dir: tempfile::TempDir,
}

impl BenchServer {
    pub async fn start() -> BenchServer {
        let dir = tempfile::tempdir_in(std::env::var("BENCH_DIR").unwrap_or_else(|_| ".".into()))
            .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new(binary())
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
            ])
            .arg(dir.path())
            .env_clear()
            .env("ALLHANDS_ADMIN_PASSWORD", PASSWORD)
            .env("ALLHANDS_LOG__LEVEL", "warn")
            .env("ALLHANDS_LOG__STDERR", "false")
            // Settings to compare, when the caller gives them.
            .envs(
                ["ALLHANDS_STORAGE__CHECKPOINT_MS", "MIMALLOC_PURGE_DELAY"]
                    .into_iter()
                    .filter_map(|name| Some((name, std::env::var(name).ok()?))),
            )
            .spawn()
            .unwrap();
        let server = BenchServer {
            child,
            port,
            base: format!("https://127.0.0.1:{port}"),
            dir,
        };
        let http = client();
        for _ in 0..500 {
            if http.get(server.url("/healthz")).send().await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        server
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The server's resident memory, from /proc.
    /// Bytes the store file takes on disk (what a data directory grows by).
    pub fn store_bytes(&self) -> u64 {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(self.dir.path().join("allhands.redb"))
            .map(|m| m.blocks() * 512)
            .unwrap_or(0)
    }

    /// CPU time the server process has used so far (user + system, all threads).
    pub fn cpu(&self) -> std::time::Duration {
        process_cpu(&format!("/proc/{}/stat", self.child.id()))
    }

    /// CPU time per thread name (threads of one name summed: "actix-server worker" ...).
    pub fn cpu_by_thread(&self) -> std::collections::BTreeMap<String, std::time::Duration> {
        let mut by_name = std::collections::BTreeMap::new();
        let tasks = format!("/proc/{}/task", self.child.id());
        for entry in std::fs::read_dir(tasks).into_iter().flatten().flatten() {
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            let name = stat
                .split_once('(')
                .and_then(|(_, rest)| rest.rsplit_once(')'))
                .map(|(name, _)| name.to_string())
                .unwrap_or_default();
            *by_name.entry(name).or_default() +=
                process_cpu(&entry.path().join("stat").to_string_lossy());
        }
        by_name
    }

    pub fn rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    }

    /// Signs in as the first administrator, replacing the one-time password.
    pub async fn admin(&self) -> Admin {
        let http = client();
        let (cookie, csrf) = login(&http, self, PASSWORD).await;
        http.post(self.url("/api/v1/auth/password"))
            .header("Cookie", &cookie)
            .header("X-CSRF-Token", &csrf)
            .json(&json!({ "current_password": PASSWORD, "new_password": CHANGED }))
            .send()
            .await
            .unwrap();
        let (cookie, csrf) = login(&http, self, CHANGED).await;
        Admin {
            http,
            base: self.base.clone(),
            cookie,
            csrf,
        }
    }

    /// A WebSocket over TLS to `path` with the given request headers.
    pub async fn wss(&self, path: &str, headers: &[(&str, &str)]) -> Socket {
        Target::new(self.port, self.base.clone())
            .wss_with(path, headers)
            .await
    }
}

/// Where to open sockets, cheap to move into tasks.
pub struct Target {
    port: u16,
    base: String,
}

impl Target {
    pub fn new(port: u16, base: String) -> Target {
        Target { port, base }
    }

    pub async fn wss(&self, path: &str) -> Socket {
        let origin = self.base.clone();
        self.wss_with(path, &[("Origin", &origin)]).await
    }

    async fn wss_with(&self, path: &str, headers: &[(&str, &str)]) -> Socket {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .unwrap();
        let tls = tokio_rustls::TlsConnector::from(Arc::new(
            allhands::healthcheck::local_client_config().unwrap(),
        ))
        .connect(
            rustls::pki_types::ServerName::try_from("localhost").unwrap(),
            tcp,
        )
        .await
        .unwrap();
        let mut request = format!("wss://127.0.0.1:{}{path}", self.port)
            .into_client_request()
            .unwrap();
        for (name, value) in headers {
            request.headers_mut().insert(
                reqwest::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        tokio_tungstenite::client_async(request, tls)
            .await
            .unwrap()
            .0
    }
}

/// One HTTP/2 connection over TLS, spoken with the `h2` crate alone: the load generator shares
/// the two cores with the server, and reqwest's layers cost it about as much as the server spends.
pub async fn h2_connection(port: u16) -> h2::client::SendRequest<bytes::Bytes> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    tcp.set_nodelay(true).unwrap();
    let mut config = allhands::healthcheck::local_client_config().unwrap();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(
            rustls::pki_types::ServerName::try_from("localhost").unwrap(),
            tcp,
        )
        .await
        .unwrap();
    let (send, connection) = h2::client::Builder::new()
        .initial_window_size(1 << 20)
        .initial_connection_window_size(1 << 24)
        .handshake(tls)
        .await
        .unwrap();
    tokio::spawn(async move {
        let _ = connection.await;
    });
    send
}

/// Sends one request on an HTTP/2 connection and reads the answer to its end; the status.
pub async fn h2_send(
    connection: &h2::client::SendRequest<bytes::Bytes>,
    request: http::Request<()>,
    body: bytes::Bytes,
) -> http::StatusCode {
    let mut ready = connection.clone().ready().await.unwrap();
    let (response, mut stream) = ready.send_request(request, body.is_empty()).unwrap();
    if !body.is_empty() {
        stream.send_data(body, true).unwrap();
    }
    let response = response.await.unwrap();
    let status = response.status();
    let mut answer = response.into_body();
    while let Some(chunk) = answer.data().await {
        let chunk = chunk.unwrap();
        let _ = answer.flow_control().release_capacity(chunk.len());
    }
    status
}

impl Drop for BenchServer {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// User + system CPU time of a process, from its `/proc/<pid>/stat` (clock ticks of 10 ms).
pub fn process_cpu(stat_path: &str) -> std::time::Duration {
    let stat = std::fs::read_to_string(stat_path).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may contain spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    std::time::Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .pool_max_idle_per_host(512)
        .build()
        .unwrap()
}

async fn login(http: &reqwest::Client, server: &BenchServer, password: &str) -> (String, String) {
    let response = http
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({ "username": "admin", "password": password }))
        .send()
        .await
        .unwrap();
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let body: Value = response.json().await.unwrap();
    (cookie, body["csrf_token"].as_str().unwrap().to_string())
}

/// A signed-in administrator's console session.
pub struct Admin {
    pub http: reqwest::Client,
    pub base: String,
    pub cookie: String,
    pub csrf: String,
}

impl Admin {
    /// The server's Prometheus text (`GET /metrics`).
    pub async fn metrics(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.base))
            .header("Cookie", &self.cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub async fn post(&self, path: &str, body: Value) -> Value {
        self.http
            .post(format!("{}{path}", self.base))
            .header("Cookie", &self.cookie)
            .header("X-CSRF-Token", &self.csrf)
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}
