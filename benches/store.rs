//! What one inbound message costs the store's single writer thread, split into the write itself
//! (the closure run inside the transaction) and its share of the durable commit, at the batch
//! sizes the group commit forms under 16 and 256 concurrent senders.
//!
//! Run: `cargo bench --bench store`. The inbox benchmark measures the same path end to end; this
//! one isolates the writer, which is the one part that cannot use the second core.

use std::time::{Duration, Instant};

use allhands::channels::ChannelKind;
use allhands::conversations::service::{InboundMessage, ingest};
use allhands::customers::{CustomerHint, Identity};
use allhands::storage::{WriteTxn, migrations, open_database};

fn main() {
    println!(
        "| batch | messages | write µs/msg | commit µs/msg | writer µs/msg | store KiB/msg |\n|---|---|---|---|---|---|"
    );
    for (batch, customers, rounds) in [(16usize, 16usize, 500usize), (256, 256, 60)] {
        let dir = tempfile::tempdir_in(std::env::var("BENCH_DIR").unwrap_or_else(|_| ".".into()))
            .unwrap();
        let path = dir.path().join("bench.redb");
        let db = open_database(&path, 64 << 20).unwrap();
        migrations::run(&db).unwrap();
        let (mut writing, mut committing) = (Duration::ZERO, Duration::ZERO);
        let mut sequence = 0usize;
        for _ in 0..rounds {
            let txn = db.begin_write().unwrap();
            let started = Instant::now();
            let write = WriteTxn::new(&txn);
            for _ in 0..batch {
                let customer = sequence % customers;
                let message = InboundMessage {
                    channel_id: 1,
                    channel_kind: ChannelKind::Api,
                    identity: Identity::new("api:1", format!("customer-{customer}")),
                    customer: CustomerHint::default(),
                    channel_message_id: Some(format!("s{customer}-m{sequence}")),
                    subject: None,
                    text: format!(
                        "Order ref-{customer}-{sequence} has not arrived yet. Can you help?"
                    ),
                    conversation_hint: None,
                    email: None,
                    attachments: Vec::new(),
                    uploaded: Vec::new(),
                    // The API channel reads the emotion on the request's worker.
                    emotion: Some(allhands::assist::emotion::Emotion::Calm),
                };
                ingest(&write, &message, 1_800_000_000_000 + sequence as i64).unwrap();
                sequence += 1;
            }
            drop(write);
            writing += started.elapsed();
            let started = Instant::now();
            txn.commit().unwrap();
            committing += started.elapsed();
        }
        let per = |d: Duration| d.as_secs_f64() * 1e6 / sequence as f64;
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        println!(
            "| {batch} | {sequence} | {:.1} | {:.1} | {:.1} | {:.2} |",
            per(writing),
            per(committing),
            per(writing + committing),
            size as f64 / sequence as f64 / 1024.0
        );
    }
}
