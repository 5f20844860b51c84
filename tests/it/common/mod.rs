//! The test harness: starts the real `allhands` binary on a free port with a temporary data
//! directory and talks HTTPS to it, like an operator and a browser would.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const ADMIN_PASSWORD: &str = "first-Boss-passw0rd";
pub const NEW_ADMIN_PASSWORD: &str = "Seven-green-kettles-42";
/// The initial password tests give new employees, and the one they change it to.
pub const EMPLOYEE_PASSWORD: &str = "initial-Pass-word-9";
pub const CHANGED_PASSWORD: &str = "Changed-pass-word-77";

/// An employee's first sign-in: with `EMPLOYEE_PASSWORD`, changed to `CHANGED_PASSWORD`, then a
/// fresh session with the new password.
pub async fn first_sign_in(server: &TestServer, username: &str) -> Session {
    let session = Session::login(server, username, EMPLOYEE_PASSWORD)
        .await
        .unwrap();
    let changed = session
        .post(
            "/api/v1/auth/password",
            json!({ "current_password": EMPLOYEE_PASSWORD, "new_password": CHANGED_PASSWORD }),
        )
        .await;
    assert_eq!(changed.status(), 204);
    Session::login(server, username, CHANGED_PASSWORD)
        .await
        .unwrap()
}

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_allhands")
}

fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub struct TestServer {
    pub dir: tempfile::TempDir,
    pub child: Option<Child>,
    pub base: String,
    pub extra_env: Vec<(String, String)>,
}

impl TestServer {
    /// Starts a server on a new data directory; the first administrator's password is
    /// `ADMIN_PASSWORD` (taken from ALLHANDS_ADMIN_PASSWORD, as automation would).
    pub async fn start() -> TestServer {
        Self::start_with(&[]).await
    }

    pub async fn start_with(env: &[(&str, &str)]) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut server = TestServer {
            dir,
            child: None,
            base: String::new(),
            extra_env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        server.launch().await;
        server
    }

    /// Starts a server on a copy of a data directory kept as a fixture (`tests/fixtures/*.tar.gz`
    /// holding `data/`), as an upgraded installation would.
    pub async fn start_on_fixture(fixture: &str) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let archive = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(fixture);
        let status = Command::new("tar")
            .arg("-xzf")
            .arg(&archive)
            .arg("-C")
            .arg(dir.path())
            .status()
            .expect("tar");
        assert!(status.success(), "cannot extract {}", archive.display());
        let mut server = TestServer {
            dir,
            child: None,
            base: String::new(),
            extra_env: Vec::new(),
        };
        server.launch().await;
        server
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// (Re)starts the process on the same data directory.
    pub async fn launch(&mut self) {
        install_crypto();
        let data_dir = self.data_dir();
        let _ = std::fs::remove_file(data_dir.join("server.addr"));
        let log = std::fs::File::create(self.dir.path().join("server.log")).unwrap();
        let mut command = Command::new(binary());
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data_dir)
            .env_clear()
            .env("ALLHANDS_ADMIN_PASSWORD", ADMIN_PASSWORD)
            // Cheaper hashing keeps the suite fast; the algorithm and code path are the real ones.
            .env("ALLHANDS_AUTH__ARGON2_MEMORY_KIB", "4096")
            .env("ALLHANDS_AUTH__ARGON2_ITERATIONS", "1")
            .env("ALLHANDS_LOG__LEVEL", "info,actix_server=warn")
            .stdout(Stdio::null())
            .stderr(log);
        for (k, v) in &self.extra_env {
            command.env(k, v);
        }
        let child = command.spawn().expect("spawn allhands");
        self.child = Some(child);
        let address_file = data_dir.join("server.addr");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(address) = std::fs::read_to_string(&address_file) {
                self.base = format!("https://{}", address.trim());
                if let Ok(response) = client().get(format!("{}/healthz", self.base)).send().await
                    && response.status() == 200
                {
                    return;
                }
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("the server exited with {status}:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "the server did not start:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Stops the server with SIGTERM and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if child.try_wait().unwrap().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Runs an `allhands` command against this server's data directory.
    pub fn cli(&self, args: &[&str]) -> Output {
        cli_in(&self.data_dir(), args, None)
    }

    /// A signed-in session of the first administrator, password already changed.
    pub async fn admin(&self) -> Session {
        let session = Session::login(self, "admin", ADMIN_PASSWORD)
            .await
            .expect("admin login");
        if session.info["must_change_password"] == json!(true) {
            let response = session
                .post("/api/v1/auth/password", json!({ "current_password": ADMIN_PASSWORD, "new_password": NEW_ADMIN_PASSWORD }))
                .await;
            assert_eq!(response.status(), 204, "{:?}", response.text().await);
        }
        session
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn cli_in(data_dir: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    use std::io::Write;
    let mut command = Command::new(binary());
    command
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env_clear()
        .env("ALLHANDS_AUTH__ARGON2_MEMORY_KIB", "4096")
        .env("ALLHANDS_AUTH__ARGON2_ITERATIONS", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("run allhands");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// An HTTPS client that accepts the server's self-signed certificate and keeps cookies.
pub fn client() -> reqwest::Client {
    install_crypto();
    reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .cookie_store(true)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// A console session: cookie plus the CSRF token sent on every state-changing request.
pub struct Session {
    pub base: String,
    pub client: reqwest::Client,
    pub csrf: String,
    pub info: Value,
}

impl Session {
    pub async fn login(
        server: &TestServer,
        username: &str,
        password: &str,
    ) -> Result<Session, (u16, Value)> {
        let client = client();
        let response = client
            .post(server.url("/api/v1/auth/login"))
            .json(&json!({ "username": username, "password": password }))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status != 200 {
            return Err((status, body));
        }
        let csrf = body["csrf_token"].as_str().unwrap().to_string();
        Ok(Session {
            base: server.base.clone(),
            client,
            csrf,
            info: body,
        })
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("X-CSRF-Token", &self.csrf);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.unwrap()
    }

    pub async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> reqwest::Response {
        self.send(reqwest::Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> reqwest::Response {
        self.send(reqwest::Method::DELETE, path, None).await
    }

    /// GET that must answer 200 with JSON.
    pub async fn json(&self, path: &str) -> Value {
        let response = self.get(path).await;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// Creates a knowledge article and publishes it; its id.
    pub async fn publish_article(&self, article: Value) -> u64 {
        let id = self.create("/api/v1/knowledge/articles", article).await["id"]
            .as_u64()
            .unwrap();
        self.create(
            &format!("/api/v1/knowledge/articles/{id}/publish"),
            json!({}),
        )
        .await;
        id
    }

    /// POST that must answer 2xx with JSON.
    pub async fn create(&self, path: &str, body: Value) -> Value {
        let response = self.post(path, body.clone()).await;
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "POST {path} {body}: {status} {answer}");
        answer
    }
}

/// Asserts an error answer's status and stable code; returns the message.
pub async fn expect_error(response: reqwest::Response, status: u16, code: &str) -> String {
    let got = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(
        (got, body["error"]["code"].as_str().unwrap_or("")),
        (status, code),
        "body: {body}"
    );
    body["error"]["message"].as_str().unwrap_or("").to_string()
}

/// Posts `body` to an API channel's inbound endpoint, signed now with `secret`.
pub async fn post_signed(
    server: &TestServer,
    channel_id: u64,
    secret: &str,
    key: &str,
    body: &Value,
) -> reqwest::Response {
    let raw = serde_json::to_vec(body).unwrap();
    let timestamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    client()
        .post(server.url(&format!("/api/v1/channels/{channel_id}/inbound")))
        .header("content-type", "application/json")
        .header("X-AllHands-Timestamp", &timestamp)
        .header(
            "X-AllHands-Signature",
            allhands::channels::api::sign(secret, &timestamp, &raw),
        )
        .header("Idempotency-Key", key)
        .body(raw)
        .send()
        .await
        .unwrap()
}

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

/// The site the web chat widget's tests embed it on.
pub const WIDGET_SITE: &str = "https://shop.example";

/// `POST /api/v1/widget/{channel}/sessions` from a page on `origin`.
pub async fn start_session(
    server: &TestServer,
    channel: u64,
    origin: &str,
    body: Value,
) -> reqwest::Response {
    client()
        .post(server.url(&format!("/api/v1/widget/{channel}/sessions")))
        .header("Origin", origin)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// A visitor's widget WebSocket from a page on `WIDGET_SITE`, replaying after message `after`.
pub async fn visitor_socket(server: &TestServer, channel: u64, token: &str, after: u64) -> Socket {
    wss(
        server,
        &format!("/api/v1/widget/{channel}/ws?token={token}&after={after}"),
        &[("Origin", WIDGET_SITE)],
    )
    .await
    .expect("the widget connects")
}

/// Sends one JSON frame on a WebSocket.
pub async fn send(socket: &mut Socket, frame: Value) {
    use futures_util::SinkExt;
    socket
        .send(tokio_tungstenite::tungstenite::Message::Text(
            frame.to_string().into(),
        ))
        .await
        .unwrap();
}

/// Opens a WebSocket over TLS to the server with the given request headers.
pub async fn wss(
    server: &TestServer,
    path_and_query: &str,
    headers: &[(&str, &str)],
) -> Result<Socket, tokio_tungstenite::tungstenite::Error> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let address = server.base.trim_start_matches("https://").to_string();
    let tcp = tokio::net::TcpStream::connect(&address).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(
        allhands::healthcheck::local_client_config().unwrap(),
    ))
    .connect(
        rustls::pki_types::ServerName::try_from("localhost").unwrap(),
        tcp,
    )
    .await
    .unwrap();
    let mut request = format!("wss://{address}{path_and_query}")
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
        .map(|(socket, _)| socket)
}

/// The next JSON text frame, skipping control frames; `None` when nothing comes within `wait`.
pub async fn next_event(socket: &mut Socket, wait: std::time::Duration) -> Option<Value> {
    use futures_util::StreamExt;
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let frame = tokio::time::timeout_at(deadline, socket.next())
            .await
            .ok()??
            .ok()?;
        if let tokio_tungstenite::tungstenite::Message::Text(text) = frame {
            return serde_json::from_str(&text).ok();
        }
    }
}

/// Signs in without a cookie jar and returns the raw session cookie.
pub async fn session_cookie(server: &TestServer, username: &str, password: &str) -> String {
    let response = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap()
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({ "username": username, "password": password }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let set_cookie = response
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    set_cookie.split(';').next().unwrap().to_string()
}

pub async fn console_socket(
    server: &TestServer,
    cookie: &str,
    origin: &str,
) -> Result<Socket, tokio_tungstenite::tungstenite::Error> {
    wss(
        server,
        "/api/v1/ws",
        &[("Cookie", cookie), ("Origin", origin)],
    )
    .await
}
