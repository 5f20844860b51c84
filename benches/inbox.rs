//! Inbox benchmark: API-channel inbound messages, from the signed POST to committed and pushed
//! to a console's WebSocket, at 16 and 256 concurrent senders.
//!
//! Run: `cargo bench --bench inbox` (add `-- --quick` for a smaller run, `-- 256` for one round;
//! `BENCH_THREADS=1` prints the server's CPU per thread, `BENCH_CONNECTIONS=n` spreads the senders
//! over n HTTP/2 connections instead of one; `-- --healthz` measures `GET /healthz` alone). Uses the static release
//! binary when it has been built (see README), else the bench profile's binary.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

mod support;
use support::BenchServer;

fn main() {
    if std::env::args().any(|a| a == "--healthz") {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let _ = rustls::crypto::ring::default_provider().install_default();
        runtime.block_on(healthz(256, 100));
        return;
    }
    let quick = std::env::args().any(|a| a == "--quick");
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!(
        "| senders | messages | committed+pushed msgs/s | p50 | p99 | HTTP ack p50 | p99 | server CPU per message | load generator CPU per message | store on disk per message |\n|---|---|---|---|---|---|---|---|---|---|"
    );
    // `-- 256` runs only the 256-sender round (for profiling one of them).
    let only: Vec<usize> = std::env::args().filter_map(|a| a.parse().ok()).collect();
    // Closed loop: each sender posts its next message as soon as the last one is answered, so
    // the rounds find the most the server commits per second, and their latency is queueing at
    // saturation (by Little's law, at least senders / throughput). Open loop: the senders post on
    // a schedule adding up to `OFFERED_RATE`, and a message's latency counts from when it was
    // due, so a late answer also delays the next message's clock (no coordinated omission).
    for (senders, per_sender, rate) in [
        (16usize, if quick { 100 } else { 1000 }, None),
        (256, if quick { 10 } else { 100 }, None),
        (256, if quick { 40 } else { 200 }, Some(OFFERED_RATE)),
    ] {
        if !only.is_empty() && !only.contains(&senders) {
            continue;
        }
        runtime.block_on(run(senders, per_sender, rate));
    }
}

/// The sender's id of the message an event carries. Found by scanning rather than by parsing
/// the whole event: the load generator shares the two cores with the server, and its own work
/// per message is taken from the server's.
fn pushed_message_id(event: &str) -> Option<&str> {
    const FIELD: &str = "\"channel_message_id\":\"";
    let start = event.find(FIELD)? + FIELD.len();
    let length = event[start..].find('"')?;
    Some(&event[start..start + length])
}

/// The framework's floor: the same senders asking `GET /healthz` (TLS, HTTP, middleware, no
/// store), to compare the inbound path's CPU with.
async fn healthz(senders: usize, per_sender: usize) {
    let server = BenchServer::start().await;
    let connection = support::h2_connection(server.port).await;
    let url: http::Uri = server.url("/healthz").parse().unwrap();
    let server_cpu_before = server.cpu();
    let own_cpu_before = support::process_cpu("/proc/self/stat");
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..senders {
        let (connection, url) = (connection.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..per_sender {
                let request = http::Request::get(url.clone()).body(()).unwrap();
                let status = support::h2_send(&connection, request, bytes::Bytes::new()).await;
                assert!(status.is_success(), "{status}");
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let total = (senders * per_sender) as f64;
    let elapsed = started.elapsed().as_secs_f64();
    let per = |cpu: Duration| cpu.as_secs_f64() * 1e6 / total;
    println!(
        "healthz: {:.0} requests/s, server CPU {:.0} µs, load generator CPU {:.0} µs per request",
        total / elapsed,
        per(server.cpu() - server_cpu_before),
        per(support::process_cpu("/proc/self/stat") - own_cpu_before)
    );
}

/// Durable commits so far and the writes they carried, from the server's metrics.
fn commit_counts(metrics: &str) -> (f64, f64) {
    let value = |name: &str| {
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(name)?.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (
        value("allhands_store_commits_total"),
        value("allhands_store_commit_batch_writes_sum"),
    )
}

/// Messages per second the open-loop round offers: the issue's throughput target.
const OFFERED_RATE: f64 = 10_000.0;

async fn run(senders: usize, per_sender: usize, rate: Option<f64>) {
    let server = BenchServer::start().await;
    let admin = server.admin().await;
    let store_before = server.store_bytes();
    let server_cpu_before = server.cpu();
    let threads_before = server.cpu_by_thread();
    let commits_before = commit_counts(&admin.metrics().await);
    let own_cpu_before = support::process_cpu("/proc/self/stat");
    // One HTTP/2 connection carries every sender; `BENCH_CONNECTIONS` spreads them over more.
    let connections: usize = std::env::var("BENCH_CONNECTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let mut clients = Vec::new();
    for _ in 0..connections.max(1) {
        clients.push(support::h2_connection(server.port).await);
    }
    let base = server.base.clone();
    let channel = admin
        .post(
            "/api/v1/channels",
            json!({ "kind": "api", "name": "bench" }),
        )
        .await;
    let channel_id = channel["channel"]["id"].as_u64().unwrap();
    let secret = channel["signing_secret"].as_str().unwrap().to_string();

    // The console that should hear every message.
    let mut socket = server
        .wss(
            "/api/v1/ws",
            &[("Cookie", &admin.cookie), ("Origin", &base)],
        )
        .await;
    let total = senders * per_sender;
    let sent_at: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    // (the message's place in its sender's sequence, committed-and-pushed latency)
    let pushed: Arc<Mutex<Vec<(usize, Duration)>>> = Arc::default();
    let listener = {
        let (sent_at, pushed) = (sent_at.clone(), pushed.clone());
        tokio::spawn(async move {
            let mut last = Instant::now();
            while pushed.lock().unwrap().len() < total {
                let Ok(Some(Ok(frame))) =
                    tokio::time::timeout(Duration::from_secs(30), socket.next()).await
                else {
                    break;
                };
                if let Message::Text(text) = frame
                    && let Some(id) = pushed_message_id(&text)
                    && let Some(start) = sent_at.lock().unwrap().get(id)
                {
                    let place = id
                        .rsplit_once("-m")
                        .and_then(|(_, i)| i.parse().ok())
                        .unwrap_or(0);
                    pushed.lock().unwrap().push((place, start.elapsed()));
                    last = Instant::now();
                }
            }
            last
        })
    };

    let inbound: http::Uri = format!("{base}/api/v1/channels/{channel_id}/inbound")
        .parse()
        .unwrap();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for s in 0..senders {
        let (connection, inbound, secret, sent_at) = (
            clients[s % clients.len()].clone(),
            inbound.clone(),
            secret.clone(),
            sent_at.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut acks = Vec::with_capacity(per_sender);
            // Open loop: this sender's messages are due every `senders / rate` seconds, the
            // senders staggered over one interval.
            let interval = rate.map(|rate| Duration::from_secs_f64(senders as f64 / rate));
            for i in 0..per_sender {
                let due = interval.map(|interval| {
                    started + interval.mul_f64(i as f64 + s as f64 / senders as f64)
                });
                if let Some(due) = due {
                    tokio::time::sleep_until(due.into()).await;
                }
                let id = format!("s{s}-m{i}");
                // The body as an app would send it; ids and text need no JSON escaping.
                let raw = format!(r#"{{"type":"message","message_id":"{id}","customer":{{"external_id":"customer-{s}"}},"text":"Order ref-{s}-{i} has not arrived yet. Can you help?"}}"#);
                let timestamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs().to_string();
                let signature = allhands::channels::api::sign(&secret, &timestamp, raw.as_bytes());
                let request = http::Request::post(inbound.clone())
                    .header("content-type", "application/json")
                    .header("x-allhands-timestamp", timestamp)
                    .header("x-allhands-signature", signature)
                    .header("idempotency-key", &id)
                    .body(())
                    .unwrap();
                let start = due.unwrap_or_else(Instant::now);
                sent_at.lock().unwrap().insert(id, start);
                let status = support::h2_send(&connection, request, raw.into()).await;
                assert!(status.is_success(), "{status}");
                acks.push(start.elapsed());
            }
            acks
        }));
    }
    let mut acks = Vec::new();
    for task in tasks {
        acks.extend(task.await.unwrap());
    }
    let last_push = listener.await.unwrap();
    let placed = pushed.lock().unwrap().clone();
    assert_eq!(placed.len(), total, "every message reached the console");
    let mut pushed: Vec<Duration> = placed.iter().map(|(_, latency)| *latency).collect();
    let elapsed = last_push.duration_since(started).as_secs_f64();
    pushed.sort();
    acks.sort();
    let pct = |v: &[Duration], p: f64| {
        v[((v.len() as f64 * p) as usize).min(v.len() - 1)].as_secs_f64() * 1000.0
    };
    let grown = server.store_bytes().saturating_sub(store_before);
    let per_message = |cpu: Duration| cpu.as_secs_f64() * 1e6 / total as f64;
    let server_cpu = per_message(server.cpu() - server_cpu_before);
    let own_cpu = per_message(support::process_cpu("/proc/self/stat") - own_cpu_before);
    let load = match rate {
        Some(rate) => format!("{senders}, open loop at {rate:.0}/s"),
        None => format!("{senders}"),
    };
    println!(
        "| {load} | {total} | {:.0} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {server_cpu:.0} µs | {own_cpu:.0} µs | {:.1} KiB |",
        total as f64 / elapsed,
        pct(&pushed, 0.5),
        pct(&pushed, 0.99),
        pct(&acks, 0.5),
        pct(&acks, 0.99),
        grown as f64 / total as f64 / 1024.0
    );
    if std::env::var_os("BENCH_THREADS").is_some() {
        let metrics = admin.metrics().await;
        let buckets: Vec<&str> = metrics
            .lines()
            .filter(|l| l.starts_with("allhands_store_commit_seconds_bucket"))
            .collect();
        eprintln!("  commit time: {}", buckets.join(", "));
        let (commits, writes) = commit_counts(&metrics);
        let commits = commits - commits_before.0;
        eprintln!(
            "  {commits:.0} commits, {:.1} writes per commit",
            (writes - commits_before.1) / commits.max(1.0)
        );
        // A sender's first message also creates its customer and conversation, and routing
        // assigns it: those are 1 in per_sender of the messages.
        let mut first: Vec<Duration> = placed
            .iter()
            .filter(|(i, _)| *i == 0)
            .map(|(_, l)| *l)
            .collect();
        let mut later: Vec<Duration> = placed
            .iter()
            .filter(|(i, _)| *i > 0)
            .map(|(_, l)| *l)
            .collect();
        first.sort();
        later.sort();
        eprintln!(
            "  first messages p50 {:.1} ms p99 {:.1} ms; later messages p50 {:.1} ms p99 {:.1} ms",
            pct(&first, 0.5),
            pct(&first, 0.99),
            pct(&later, 0.5),
            pct(&later, 0.99)
        );
        for (name, cpu) in server.cpu_by_thread() {
            let before = threads_before.get(&name).copied().unwrap_or_default();
            let used = per_message(cpu.saturating_sub(before));
            if used >= 1.0 {
                eprintln!("  {name}: {used:.0} µs per message");
            }
        }
    }
}
