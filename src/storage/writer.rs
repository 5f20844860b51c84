//! The single writer: one thread owns every write transaction and commits concurrent writes
//! together (group commit), so that a durable commit is paid once per batch, not once per write.
//!
//! Each write is a closure that may be run more than once: when one write in a batch fails, the
//! whole transaction is dropped (redb cannot roll back part of one) and the batch is run again
//! without it. Closures therefore must be functions of the transaction and their captured inputs
//! only. A caller's future resolves only after the commit that holds its write has returned.
//!
//! A batch made only of logged writes (`write_logged`, see `wal`) is committed without waiting
//! for the disk and made durable by its log records instead; any other batch, and a checkpoint
//! at least every `checkpoint_every`, commits durably and empties the log.

use std::sync::Arc;
use std::time::{Duration, Instant};

use redb::{Database, Durability};
use tokio::sync::{mpsc, oneshot};

use crate::error::{AppError, AppResult, ErrorCode};
use crate::storage::wal::{self, Wal};
use crate::storage::{StoreMetrics, WriteTxn};

/// Most writes one commit takes; bounds the latency of the first write in a batch.
const MAX_BATCH: usize = 1024;
const QUEUE_DEPTH: usize = 8192;

trait WriteOp: Send {
    fn run(&mut self, txn: &WriteTxn) -> AppResult<()>;
    fn complete(self: Box<Self>, outcome: AppResult<()>);
    /// What replays this write after a crash, for a write that may be made durable by the log.
    fn record(&self) -> Option<&[u8]>;
}

struct TypedOp<F, R> {
    write: F,
    record: Option<Vec<u8>>,
    result: Option<R>,
    reply: oneshot::Sender<AppResult<R>>,
}

impl<F, R> WriteOp for TypedOp<F, R>
where
    F: Fn(&WriteTxn) -> AppResult<R> + Send,
    R: Send,
{
    fn run(&mut self, txn: &WriteTxn) -> AppResult<()> {
        self.result = Some((self.write)(txn)?);
        Ok(())
    }

    fn complete(self: Box<Self>, outcome: AppResult<()>) {
        let TypedOp { result, reply, .. } = *self;
        let result = outcome.and_then(|()| {
            result.ok_or_else(|| AppError::internal("write completed without a result"))
        });
        // The caller may have gone away (client disconnected); the write stands regardless.
        let _ = reply.send(result);
    }

    fn record(&self) -> Option<&[u8]> {
        self.record.as_deref()
    }
}

enum Message {
    Write(Box<dyn WriteOp>),
    /// Answered by the writer thread between batches: proves it is not stuck (the watchdog).
    Ping(oneshot::Sender<()>),
    /// Commit durably if a logged write is not yet (sent by a timer, so an idle store
    /// checkpoints too).
    Checkpoint,
    /// Commit nothing more; refuse what is still queued; let the database close.
    Close,
}

#[derive(Clone)]
pub struct Writer {
    queue: mpsc::Sender<Message>,
}

impl Writer {
    /// Starts the writer thread. `log` is the inbound log with the next LSN to hand out; without
    /// it every commit is durable.
    pub fn start(
        db: Arc<Database>,
        metrics: Arc<StoreMetrics>,
        log: Option<(Wal, u64)>,
        checkpoint_every: Duration,
    ) -> (Writer, std::thread::JoinHandle<()>) {
        let (queue, receiver) = mpsc::channel(QUEUE_DEPTH);
        let log = log.map(|(wal, next_lsn)| LogState {
            wal,
            next_lsn,
            unsynced_commits: false,
            last_durable: Some(Instant::now()),
            checkpoint_every,
        });
        if log.is_some() {
            let ticker = queue.downgrade();
            std::thread::Builder::new()
                .name("store-checkpoint".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(checkpoint_every);
                        let Some(queue) = ticker.upgrade() else { break };
                        // A full queue means a busy writer, which checkpoints on its own.
                        if let Err(mpsc::error::TrySendError::Closed(_)) =
                            queue.try_send(Message::Checkpoint)
                        {
                            break;
                        }
                    }
                })
                .expect("spawn store checkpoint thread");
        }
        let handle = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer_loop(db, receiver, metrics, log))
            .expect("spawn store writer thread");
        (Writer { queue }, handle)
    }

    fn op<F, R>(
        write: F,
        record: Option<Vec<u8>>,
    ) -> (Box<dyn WriteOp>, oneshot::Receiver<AppResult<R>>)
    where
        F: Fn(&WriteTxn) -> AppResult<R> + Send + 'static,
        R: Send + 'static,
    {
        let (reply, receiver) = oneshot::channel();
        // A record the log could not read back is no record: such a write commits durably.
        let record = record.filter(|r| r.len() <= wal::MAX_BODY as usize);
        (
            Box::new(TypedOp {
                write,
                record,
                result: None,
                reply,
            }),
            receiver,
        )
    }

    async fn submit<R>(
        &self,
        (op, receiver): (Box<dyn WriteOp>, oneshot::Receiver<AppResult<R>>),
    ) -> AppResult<R> {
        self.queue
            .send(Message::Write(op))
            .await
            .map_err(|_| writer_gone())?;
        receiver.await.map_err(|_| writer_gone())?
    }

    pub async fn write<F, R>(&self, write: F) -> AppResult<R>
    where
        F: Fn(&WriteTxn) -> AppResult<R> + Send + 'static,
        R: Send + 'static,
    {
        self.submit(Self::op(write, None)).await
    }

    /// Like `write`, for a write that `record` replays: after a crash, the store's replay
    /// function is given `record` in a transaction on the state the write first ran on, and
    /// must do exactly what `write` did.
    pub async fn write_logged<F, R>(&self, record: Vec<u8>, write: F) -> AppResult<R>
    where
        F: Fn(&WriteTxn) -> AppResult<R> + Send + 'static,
        R: Send + 'static,
    {
        self.submit(Self::op(write, Some(record))).await
    }

    /// Resolves once the writer thread has finished what was queued before it.
    pub async fn ping(&self) -> AppResult<()> {
        let (reply, receiver) = oneshot::channel();
        self.queue
            .send(Message::Ping(reply))
            .await
            .map_err(|_| writer_gone())?;
        receiver.await.map_err(|_| writer_gone())
    }

    /// For code outside the async runtime (command-line tools, benchmarks' setup).
    pub fn write_blocking<F, R>(&self, write: F) -> AppResult<R>
    where
        F: Fn(&WriteTxn) -> AppResult<R> + Send + 'static,
        R: Send + 'static,
    {
        let (op, receiver) = Self::op(write, None);
        self.queue
            .blocking_send(Message::Write(op))
            .map_err(|_| writer_gone())?;
        receiver.blocking_recv().map_err(|_| writer_gone())?
    }

    /// Asks the writer thread to finish; blocks until the request is queued.
    pub fn close_blocking(&self) {
        let _ = self.queue.blocking_send(Message::Close);
    }
}

fn writer_gone() -> AppError {
    AppError::new(ErrorCode::StorageUnavailable, "the store is shutting down")
}

/// The writer's side of the inbound log.
struct LogState {
    wal: Wal,
    next_lsn: u64,
    /// Some commit since the last durable one holds logged writes only the log makes durable.
    unsynced_commits: bool,
    /// None when the log failed: every commit is durable until one succeeds.
    last_durable: Option<Instant>,
    checkpoint_every: Duration,
}

/// Past this, the next batch checkpoints even before its time (bounds replay after a crash and
/// the file space redb keeps for commits that are not yet durable).
const MAX_LOG_BYTES: u64 = 64 << 20;

impl LogState {
    fn checkpoint_due(&self) -> bool {
        self.last_durable
            .is_none_or(|at| at.elapsed() >= self.checkpoint_every)
            || self.wal.len() >= MAX_LOG_BYTES
    }

    /// After a durable commit: everything logged so far is in the store, and the log starts
    /// again empty.
    fn checkpointed(&mut self) {
        self.unsynced_commits = false;
        match self.wal.reset() {
            Ok(()) => self.last_durable = Some(Instant::now()),
            Err(e) => {
                // Records appended after old ones the store already holds (or after a gap)
                // would not be read back: every commit stays durable until a reset works.
                tracing::error!(log = %self.wal.path().display(), error = %e, "cannot empty the inbound log; committing durably until it can be");
                self.last_durable = None;
            }
        }
    }
}

fn writer_loop(
    db: Arc<Database>,
    mut receiver: mpsc::Receiver<Message>,
    metrics: Arc<StoreMetrics>,
    mut log: Option<LogState>,
) {
    let mut closing = false;
    while !closing {
        let Some(first) = receiver.blocking_recv() else {
            break;
        };
        let mut batch = Vec::with_capacity(16);
        let mut pings = Vec::new();
        let mut checkpoint = false;
        match first {
            Message::Write(op) => batch.push(op),
            Message::Ping(reply) => pings.push(reply),
            Message::Checkpoint => checkpoint = true,
            Message::Close => break,
        }
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(Message::Write(op)) => batch.push(op),
                Ok(Message::Ping(reply)) => pings.push(reply),
                Ok(Message::Checkpoint) => checkpoint = true,
                Ok(Message::Close) => {
                    closing = true;
                    break;
                }
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            run_batch(&db, batch, &metrics, log.as_mut());
        }
        if let Some(log) = log.as_mut()
            && log.unsynced_commits
            && (checkpoint || closing || log.checkpoint_due())
        {
            durable_checkpoint(&db, &metrics, log);
        }
        for reply in pings {
            let _ = reply.send(());
        }
    }
    if let Some(log) = log.as_mut()
        && log.unsynced_commits
    {
        durable_checkpoint(&db, &metrics, log);
    }
    receiver.close();
    while let Ok(message) = receiver.try_recv() {
        if let Message::Write(op) = message {
            op.complete(Err(writer_gone()));
        }
    }
}

/// Commits nothing new, durably: redb then writes out every commit made since the last durable
/// one, and the log they were kept by can be emptied.
fn durable_checkpoint(db: &Database, metrics: &StoreMetrics, log: &mut LogState) {
    let started = Instant::now();
    let committed = commit_nothing_durably(db);
    metrics.observe_commit(started.elapsed(), 0);
    match committed {
        Ok(()) => log.checkpointed(),
        // The log still holds every write; replay covers them after a restart.
        Err(e) => tracing::error!(error = %e, "checkpoint failed"),
    }
}

fn commit_nothing_durably(db: &Database) -> Result<(), redb::Error> {
    db.begin_write()?.commit()?;
    Ok(())
}

fn run_batch(
    db: &Database,
    mut ops: Vec<Box<dyn WriteOp>>,
    metrics: &StoreMetrics,
    mut log: Option<&mut LogState>,
) {
    let mut failed = Vec::new();
    while !ops.is_empty() {
        let mut txn = match db.begin_write() {
            Ok(txn) => txn,
            Err(e) => {
                tracing::error!(error = %e, "cannot begin a write transaction");
                for op in ops.drain(..) {
                    op.complete(Err(AppError::new(
                        ErrorCode::StorageUnavailable,
                        "the store cannot accept writes",
                    )));
                }
                break;
            }
        };
        // Logged writes only, and no checkpoint due: the log, not this commit, is what waits
        // for the disk.
        let logged_through = match log.as_deref() {
            Some(log) if !log.checkpoint_due() && ops.iter().all(|op| op.record().is_some()) => {
                Some(log.next_lsn + ops.len() as u64 - 1)
            }
            _ => None,
        };
        let write = WriteTxn::new(&txn);
        let failure = ops
            .iter_mut()
            .enumerate()
            .find_map(|(i, op)| op.run(&write).err().map(|e| (i, e)));
        let failure = match (failure, logged_through) {
            (None, Some(lsn)) => note_logged_through(&write, lsn)
                .err()
                .map(|e| (usize::MAX, e)),
            (failure, _) => failure,
        };
        drop(write);
        match failure {
            Some((usize::MAX, error)) => {
                tracing::error!(error = %error, "cannot record the inbound log position");
                drop(txn);
                for op in ops.drain(..) {
                    op.complete(Err(AppError::new(
                        ErrorCode::StorageUnavailable,
                        "the write could not be committed",
                    )));
                }
            }
            Some((index, error)) => {
                drop(txn);
                failed.push((ops.remove(index), error));
            }
            None => {
                if logged_through.is_some() {
                    // Cannot fail: no persistent savepoint is ever made.
                    let _ = txn.set_durability(Durability::None);
                }
                let started = Instant::now();
                let committed = txn.commit();
                let mut outcome = committed.map_err(|e| {
                    tracing::error!(error = %e, "commit failed");
                    AppError::new(
                        ErrorCode::StorageUnavailable,
                        "the write could not be committed",
                    )
                });
                if let Some(log) = log.as_deref_mut() {
                    match (&outcome, logged_through) {
                        (Ok(()), Some(last)) => {
                            outcome = append_to_log(db, log, &ops, last);
                        }
                        (Ok(()), None) => log.checkpointed(),
                        (Err(_), _) => {}
                    }
                }
                metrics.observe_commit(started.elapsed(), ops.len());
                let failed_commit = outcome.is_err();
                for op in ops.drain(..) {
                    op.complete(if failed_commit {
                        Err(AppError::new(
                            ErrorCode::StorageUnavailable,
                            "the write could not be committed",
                        ))
                    } else {
                        Ok(())
                    });
                }
            }
        }
    }
    for (op, error) in failed {
        op.complete(Err(error));
    }
}

fn note_logged_through(write: &WriteTxn, lsn: u64) -> AppResult<()> {
    write.counters()?.insert(wal::LOGGED_THROUGH, lsn)?;
    Ok(())
}

/// Makes a batch committed without durability durable through the log; when the log cannot be
/// written, through a durable commit instead.
fn append_to_log(
    db: &Database,
    log: &mut LogState,
    ops: &[Box<dyn WriteOp>],
    last: u64,
) -> AppResult<()> {
    let first = log.next_lsn;
    let records = ops
        .iter()
        .zip(first..)
        .filter_map(|(op, lsn)| Some((lsn, op.record()?)));
    log.unsynced_commits = true;
    match log.wal.append(records) {
        Ok(()) => {
            log.next_lsn = last + 1;
            Ok(())
        }
        Err(e) => {
            tracing::error!(log = %log.wal.path().display(), error = %e, "cannot write the inbound log; committing durably instead");
            log.next_lsn = last + 1;
            let committed = commit_nothing_durably(db);
            match committed {
                Ok(()) => {
                    log.checkpointed();
                    Ok(())
                }
                Err(e) => {
                    tracing::error!(error = %e, "commit failed");
                    // The log may now have a gap: nothing more goes to it until a durable
                    // commit holds everything.
                    log.last_durable = None;
                    Err(AppError::new(
                        ErrorCode::StorageUnavailable,
                        "the write could not be committed",
                    ))
                }
            }
        }
    }
}
