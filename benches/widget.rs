//! Web chat widget benchmark: how much memory the server needs to hold many idle widget
//! WebSockets (visitors with the chat open, nobody writing), and that they all still hear a
//! reply afterwards.
//!
//! Run: `cargo bench --bench widget` (`-- --sockets N` to change the count from 10,000). Uses the
//! static release binary when it has been built. Needs a file-descriptor limit above the count
//! for this process and the server (`ulimit -n`).

mod support;

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::json;
use support::BenchServer;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let sockets = args
        .iter()
        .position(|a| a == "--sockets")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000usize);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(sockets));
}

async fn run(count: usize) {
    let server = BenchServer::start().await;
    let admin = server.admin().await;
    let channel = admin
        .post(
            "/api/v1/channels",
            json!({ "kind": "web", "name": "bench" }),
        )
        .await;
    let channel_id = channel["channel"]["id"].as_u64().unwrap();
    let idle_rss = server.rss_mib();

    // Visitors' sessions, 64 at a time.
    let started = Instant::now();
    let http = support::client();
    let mut tokens = Vec::with_capacity(count);
    for chunk in (0..count).collect::<Vec<_>>().chunks(64) {
        let mut batch = Vec::new();
        for _ in chunk {
            let http = http.clone();
            let url = server.url(&format!("/api/v1/widget/{channel_id}/sessions"));
            batch.push(tokio::spawn(async move {
                let answer: serde_json::Value = http
                    .post(url)
                    .json(&json!({ "page": { "url": "https://shop.example/", "title": "Shop" } }))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                answer["visitor_token"].as_str().unwrap().to_string()
            }));
        }
        for task in batch {
            tokens.push(task.await.unwrap());
        }
    }
    let sessions_secs = started.elapsed().as_secs_f64();

    // Every visitor opens the chat; each socket reads its history and presence and then idles.
    let started = Instant::now();
    let mut sockets = Vec::with_capacity(count);
    for chunk in tokens.chunks(128) {
        let mut batch = Vec::new();
        for token in chunk {
            let path = format!("/api/v1/widget/{channel_id}/ws?token={token}&after=0");
            let server_base = (server.port, server.base.clone());
            batch.push(tokio::spawn(async move {
                let server = support::Target::new(server_base.0, server_base.1);
                let mut socket = server.wss(&path).await;
                // history, presence
                for _ in 0..2 {
                    socket.next().await.unwrap().unwrap();
                }
                socket
            }));
        }
        for task in batch {
            sockets.push(task.await.unwrap());
        }
    }
    let connect_secs = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let held_rss = server.rss_mib();

    // Still alive: one visitor writes and hears their own acknowledgement.
    use futures_util::SinkExt;
    let socket = sockets.last_mut().unwrap();
    socket
        .send(tokio_tungstenite::tungstenite::Message::Text(
            json!({ "type": "message", "client_id": "bench", "text": "still there?" })
                .to_string()
                .into(),
        ))
        .await
        .unwrap();
    let ack = tokio::time::timeout(Duration::from_secs(10), socket.next())
        .await
        .expect("the last socket still answers")
        .unwrap()
        .unwrap();
    assert!(ack.to_text().unwrap().contains("\"ack\""), "{ack:?}");

    println!(
        "| idle widget sockets | server RSS before | RSS holding them | per socket | sessions | connects |"
    );
    println!("|---|---|---|---|---|---|");
    println!(
        "| {count} | {idle_rss:.1} MiB | {held_rss:.1} MiB | {:.1} KiB | {:.0}/s | {:.0}/s |",
        (held_rss - idle_rss) * 1024.0 / count as f64,
        count as f64 / sessions_secs,
        count as f64 / connect_secs,
    );
    drop(sockets);
}
