//! Foundation benchmark: durable writes through the group-commit path against one commit per
//! write, cold start to /healthz with an empty store and with a million records, idle RSS, and
//! the release binary's size.
//!
//! Run: `cargo bench --bench foundation` (add `-- --quick` for a smaller run).
//! Figures are printed as a Markdown table.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use allhands::audit::{self, Actor, AuditEvent};
use allhands::storage::{DataDirLock, Store};
use redb::{ReadableTableMetadata, TableDefinition};

const BENCH: TableDefinition<u64, &[u8]> = TableDefinition::new("bench_v1");
const RECORD: &[u8] = &[7u8; 100];

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let _ = rustls::crypto::ring::default_provider().install_default();
    let scratch =
        tempfile::tempdir_in(std::env::var("BENCH_DIR").unwrap_or_else(|_| ".".into())).unwrap();
    println!("| measure | result |\n|---|---|");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    for writers in [1usize, 16, 256] {
        let total = if quick {
            2_000
        } else if writers == 1 {
            5_000
        } else {
            50_000
        };
        let rate = runtime.block_on(group_commit(
            &scratch.path().join(format!("gc{writers}")),
            writers,
            total,
        ));
        println!("| durable writes/s, group commit, {writers} writers | {rate:.0} |");
        let total = if quick { 500 } else { 2_000 };
        let rate = commit_per_write(
            &scratch.path().join(format!("single{writers}")),
            writers,
            total,
        );
        println!("| durable writes/s, one commit per write, {writers} writers | {rate:.0} |");
    }

    let binary = release_binary();
    let empty = scratch.path().join("empty");
    let (cold, rss) = cold_start(&binary, &empty, 5);
    println!(
        "| cold start to /healthz, empty store (median of 5) | {:.0} ms |",
        cold.as_secs_f64() * 1000.0
    );
    println!(
        "| idle RSS after start, empty store | {:.1} MiB |",
        rss as f64 / 1024.0
    );
    let records = if quick { 100_000 } else { 1_000_000 };
    let full = scratch.path().join("full");
    fill(&full, records);
    let (cold, rss) = cold_start(&binary, &full, 5);
    println!(
        "| cold start to /healthz, {records} records (median of 5) | {:.0} ms |",
        cold.as_secs_f64() * 1000.0
    );
    println!(
        "| idle RSS after start, {records} records | {:.1} MiB |",
        rss as f64 / 1024.0
    );
    let store_size = std::fs::metadata(full.join("allhands.redb"))
        .map(|m| m.len())
        .unwrap_or(0);
    println!(
        "| store file with {records} records | {:.1} MiB |",
        store_size as f64 / 1048576.0
    );
    let size = std::fs::metadata(&binary).map(|m| m.len()).unwrap_or(0);
    println!(
        "| binary size ({}) | {:.1} MiB |",
        binary.display(),
        size as f64 / 1048576.0
    );
}

async fn group_commit(dir: &Path, writers: usize, total: usize) -> f64 {
    let lock = DataDirLock::acquire(dir).unwrap();
    let store = Store::open(
        &lock,
        &allhands::config::StorageConfig::default(),
        allhands::channels::replay_logged,
    )
    .unwrap();
    store
        .write(|txn| {
            txn.open_table(BENCH)?;
            Ok(())
        })
        .await
        .unwrap();
    let per_writer = total / writers;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..per_writer {
                let key = (w * per_writer + i) as u64;
                store
                    .write(move |txn| {
                        txn.open_table(BENCH)?.insert(key, RECORD)?;
                        Ok(())
                    })
                    .await
                    .unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let rate = (per_writer * writers) as f64 / started.elapsed().as_secs_f64();
    let rows = store
        .read(|txn| Ok(txn.open_table(BENCH)?.len()?))
        .await
        .unwrap();
    assert_eq!(rows as usize, per_writer * writers);
    tokio::task::spawn_blocking(move || store.shutdown())
        .await
        .unwrap();
    rate
}

fn commit_per_write(dir: &Path, writers: usize, total: usize) -> f64 {
    std::fs::create_dir_all(dir).unwrap();
    let db = Arc::new(redb::Database::create(dir.join("single.redb")).unwrap());
    let per_writer = (total / writers).max(1);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for w in 0..writers {
            let db = db.clone();
            scope.spawn(move || {
                for i in 0..per_writer {
                    let txn = db.begin_write().unwrap();
                    txn.open_table(BENCH)
                        .unwrap()
                        .insert((w * per_writer + i) as u64, RECORD)
                        .unwrap();
                    txn.commit().unwrap();
                }
            });
        }
    });
    (per_writer * writers) as f64 / started.elapsed().as_secs_f64()
}

/// A store with `records` audit entries (the table that grows largest), closed cleanly.
fn fill(dir: &Path, records: usize) {
    let lock = DataDirLock::acquire(dir).unwrap();
    let store = Store::open(
        &lock,
        &allhands::config::StorageConfig::default(),
        allhands::channels::replay_logged,
    )
    .unwrap();
    let batch = 20_000;
    let mut written = 0;
    while written < records {
        let n = batch.min(records - written);
        store
            .write_blocking(move |txn| {
                for i in 0..n {
                    let event = AuditEvent::new(&Actor::system("bench"), "bench.filled")
                        .target(format!("thing:{}", written + i));
                    audit::append(txn, 1_700_000_000_000 + (written + i) as i64, event)?;
                }
                Ok(())
            })
            .unwrap();
        written += n;
    }
    store.shutdown();
    drop(lock);
}

fn release_binary() -> std::path::PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
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

/// Median time from spawning `allhands serve` to the first 200 from /healthz, and the RSS
/// two seconds after the last start.
fn cold_start(binary: &Path, data_dir: &Path, runs: usize) -> (Duration, u64) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut times = Vec::new();
    let mut rss = 0;
    for run in 0..runs {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let address: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let started = Instant::now();
        let mut child = Command::new(binary)
            .args(["serve", "--listen", &address.to_string(), "--data-dir"])
            .arg(data_dir)
            .env_clear()
            .env("ALLHANDS_ADMIN_PASSWORD", "bench-Pass-word-123")
            .env("ALLHANDS_LOG__STDERR", "false")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        loop {
            let status = runtime.block_on(async {
                tokio::time::timeout(
                    Duration::from_secs(1),
                    allhands::healthcheck::get_status(address, true, "/healthz"),
                )
                .await
            });
            if let Ok(Ok(200)) = status {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the server did not start"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        times.push(started.elapsed());
        if run + 1 == runs {
            std::thread::sleep(Duration::from_secs(2));
            let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
            rss = status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .unwrap()
                .trim()
                .trim_end_matches(" kB")
                .trim()
                .parse()
                .unwrap();
        }
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        child.wait().unwrap();
    }
    times.sort();
    (times[times.len() / 2], rss)
}
