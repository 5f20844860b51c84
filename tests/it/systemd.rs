//! `allhands serve` under systemd's `Type=notify` and `WatchdogSec=`: the notifications it sends
//! on the socket systemd names in NOTIFY_SOCKET, received here as systemd would.

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use crate::common::TestServer;

struct NotifySocket {
    socket: UnixDatagram,
    _dir: tempfile::TempDir,
    path: String,
}

impl NotifySocket {
    fn bind() -> NotifySocket {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let socket = UnixDatagram::bind(&path).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        NotifySocket {
            socket,
            path: path.to_str().unwrap().to_string(),
            _dir: dir,
        }
    }

    /// Waits for a notification containing `line`, returning every notification read meanwhile.
    fn wait_for(&self, line: &str, within: Duration) -> Vec<String> {
        let deadline = Instant::now() + within;
        let mut seen = Vec::new();
        let mut buffer = [0u8; 4096];
        while Instant::now() < deadline {
            if let Ok(n) = self.socket.recv(&mut buffer) {
                let message = String::from_utf8_lossy(&buffer[..n]).to_string();
                let found = message.lines().any(|l| l == line);
                seen.push(message);
                if found {
                    return seen;
                }
            }
        }
        panic!("no {line} within {within:?}; received {seen:?}");
    }
}

#[tokio::test]
async fn the_server_tells_systemd_it_is_ready_feeds_the_watchdog_and_says_when_it_reloads_and_stops()
 {
    let notify = NotifySocket::bind();
    let mut server =
        TestServer::start_with(&[("NOTIFY_SOCKET", &notify.path), ("WATCHDOG_USEC", "400000")])
            .await;

    let ready = notify.wait_for("READY=1", Duration::from_secs(10));
    let status = ready.last().unwrap();
    assert!(
        status.contains(&format!("STATUS=serving on {}", server.base)),
        "{status}"
    );
    // Two keep-alives per interval, each after the store answered.
    let started = Instant::now();
    notify.wait_for("WATCHDOG=1", Duration::from_secs(5));
    notify.wait_for("WATCHDOG=1", Duration::from_secs(5));
    assert!(started.elapsed() < Duration::from_secs(3));

    let pid = server.child.as_ref().unwrap().id().to_string();
    std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap();
    let reload = notify.wait_for("RELOADING=1", Duration::from_secs(5));
    assert!(
        reload.last().unwrap().contains("MONOTONIC_USEC="),
        "{reload:?}"
    );
    notify.wait_for("READY=1", Duration::from_secs(5));

    server.stop();
    notify.wait_for("STOPPING=1", Duration::from_secs(5));
}

#[tokio::test]
async fn a_watchdog_meant_for_another_process_is_not_fed() {
    let notify = NotifySocket::bind();
    // WATCHDOG_PID names another process: the watchdog is not this server's.
    let mut server = TestServer::start_with(&[
        ("NOTIFY_SOCKET", &notify.path),
        ("WATCHDOG_USEC", "200000"),
        ("WATCHDOG_PID", "1"),
    ])
    .await;
    notify.wait_for("READY=1", Duration::from_secs(10));
    let mut buffer = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(1);
    while Instant::now() < deadline {
        if let Ok(n) = notify.socket.recv(&mut buffer) {
            let message = String::from_utf8_lossy(&buffer[..n]);
            assert!(!message.contains("WATCHDOG=1"), "{message}");
        }
    }
    server.stop();

    // And a server started outside systemd runs as before.
    let plain = TestServer::start().await;
    assert!(
        crate::common::client()
            .get(plain.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status()
            .is_success()
    );
}
