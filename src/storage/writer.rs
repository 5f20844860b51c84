//! The single writer: one thread owns every write transaction and commits concurrent writes
//! together (group commit), so that a durable commit is paid once per batch, not once per write.
//!
//! Each write is a closure that may be run more than once: when one write in a batch fails, the
//! whole transaction is dropped (redb cannot roll back part of one) and the batch is run again
//! without it. Closures therefore must be functions of the transaction and their captured inputs
//! only. A caller's future resolves only after the commit that holds its write has returned.

use std::sync::Arc;
use std::time::Instant;

use redb::Database;
use tokio::sync::{mpsc, oneshot};

use crate::error::{AppError, AppResult, ErrorCode};
use crate::storage::{StoreMetrics, WriteTxn};

/// Most writes one commit takes; bounds the latency of the first write in a batch.
const MAX_BATCH: usize = 1024;
const QUEUE_DEPTH: usize = 8192;

trait WriteOp: Send {
    fn run(&mut self, txn: &WriteTxn) -> AppResult<()>;
    fn complete(self: Box<Self>, outcome: AppResult<()>);
}

struct TypedOp<F, R> {
    write: F,
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
}

enum Message {
    Write(Box<dyn WriteOp>),
    /// Answered by the writer thread between batches: proves it is not stuck (the watchdog).
    Ping(oneshot::Sender<()>),
    /// Commit nothing more; refuse what is still queued; let the database close.
    Close,
}

#[derive(Clone)]
pub struct Writer {
    queue: mpsc::Sender<Message>,
}

impl Writer {
    pub fn start(
        db: Arc<Database>,
        metrics: Arc<StoreMetrics>,
    ) -> (Writer, std::thread::JoinHandle<()>) {
        let (queue, receiver) = mpsc::channel(QUEUE_DEPTH);
        let handle = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer_loop(db, receiver, metrics))
            .expect("spawn store writer thread");
        (Writer { queue }, handle)
    }

    fn op<F, R>(write: F) -> (Box<dyn WriteOp>, oneshot::Receiver<AppResult<R>>)
    where
        F: Fn(&WriteTxn) -> AppResult<R> + Send + 'static,
        R: Send + 'static,
    {
        let (reply, receiver) = oneshot::channel();
        (
            Box::new(TypedOp {
                write,
                result: None,
                reply,
            }),
            receiver,
        )
    }

    pub async fn write<F, R>(&self, write: F) -> AppResult<R>
    where
        F: Fn(&WriteTxn) -> AppResult<R> + Send + 'static,
        R: Send + 'static,
    {
        let (op, receiver) = Self::op(write);
        self.queue
            .send(Message::Write(op))
            .await
            .map_err(|_| writer_gone())?;
        receiver.await.map_err(|_| writer_gone())?
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
        let (op, receiver) = Self::op(write);
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

fn writer_loop(
    db: Arc<Database>,
    mut receiver: mpsc::Receiver<Message>,
    metrics: Arc<StoreMetrics>,
) {
    let mut closing = false;
    while !closing {
        let Some(first) = receiver.blocking_recv() else {
            break;
        };
        let mut batch = Vec::with_capacity(16);
        let mut pings = Vec::new();
        match first {
            Message::Write(op) => batch.push(op),
            Message::Ping(reply) => pings.push(reply),
            Message::Close => break,
        }
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(Message::Write(op)) => batch.push(op),
                Ok(Message::Ping(reply)) => pings.push(reply),
                Ok(Message::Close) => {
                    closing = true;
                    break;
                }
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            run_batch(&db, batch, &metrics);
        }
        for reply in pings {
            let _ = reply.send(());
        }
    }
    receiver.close();
    while let Ok(message) = receiver.try_recv() {
        if let Message::Write(op) = message {
            op.complete(Err(writer_gone()));
        }
    }
}

fn run_batch(db: &Database, mut ops: Vec<Box<dyn WriteOp>>, metrics: &StoreMetrics) {
    let mut failed = Vec::new();
    while !ops.is_empty() {
        let txn = match db.begin_write() {
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
        let write = WriteTxn::new(&txn);
        let failure = ops
            .iter_mut()
            .enumerate()
            .find_map(|(i, op)| op.run(&write).err().map(|e| (i, e)));
        drop(write);
        match failure {
            Some((index, error)) => {
                drop(txn);
                failed.push((ops.remove(index), error));
            }
            None => {
                let started = Instant::now();
                let committed = txn.commit();
                metrics.observe_commit(started.elapsed(), ops.len());
                match committed {
                    Ok(()) => ops.drain(..).for_each(|op| op.complete(Ok(()))),
                    Err(e) => {
                        tracing::error!(error = %e, "commit failed");
                        for op in ops.drain(..) {
                            op.complete(Err(AppError::new(
                                ErrorCode::StorageUnavailable,
                                "the write could not be committed",
                            )));
                        }
                    }
                }
            }
        }
    }
    for (op, error) in failed {
        op.complete(Err(error));
    }
}
