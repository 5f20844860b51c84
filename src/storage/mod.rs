//! The embedded store: one redb file in the data directory.
//!
//! * Reads run on the blocking pool (`Store::read`), never on the async workers.
//! * Writes go through the single writer thread (`writer`), which batches concurrent writes into
//!   one commit. A write's future resolves only after its commit returned and is durable: by
//!   redb's own durable commit, or for replayable writes (`write_logged`) by the inbound log
//!   (`wal`), which `Store::open` replays after a crash.
//! * Domain events are published by callers after their write resolved, i.e. after commit.
//! * The data directory is locked for the life of the process, so a second process gets a clear
//!   error instead of touching the files.

pub mod backup;
pub mod codec;
pub mod migrations;
pub mod tables;
mod txn;
pub mod verify;
pub mod wal;
mod writer;

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTable};

use crate::config::StorageConfig;
use crate::error::{AppError, AppResult, ErrorCode};
pub use codec::Record;
pub use txn::{HotTable, WriteTxn};
pub use writer::Writer;

pub const DB_FILE: &str = "allhands.redb";
const LOCK_FILE: &str = "allhands.lock";

/// Holds the data directory's lock for as long as it lives.
pub struct DataDirLock {
    _file: File,
    pub path: PathBuf,
}

impl DataDirLock {
    /// Creates the directory if needed and takes its exclusive lock.
    pub fn acquire(data_dir: &Path) -> AppResult<DataDirLock> {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            AppError::internal(format!(
                "cannot create data directory {}: {e}",
                data_dir.display()
            ))
        })?;
        // It holds keys, password hashes and sessions: owner only, always.
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(0o700))?;
        }
        let lock_path = data_dir.join(LOCK_FILE);
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(|e| AppError::internal(format!("cannot open {}: {e}", lock_path.display())))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                let who = if holder.is_empty() {
                    String::new()
                } else {
                    format!(" (pid {holder})")
                };
                return Err(AppError::new(
                    ErrorCode::Conflict,
                    format!(
                        "the data directory {} is in use by another allhands process{who}; stop it first",
                        data_dir.display()
                    ),
                ));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(AppError::internal(format!(
                    "cannot lock {}: {e}",
                    lock_path.display()
                )));
            }
        }
        file.set_len(0)?;
        write!(file, "{}", std::process::id())?;
        file.flush()?;
        Ok(DataDirLock {
            _file: file,
            path: data_dir.to_path_buf(),
        })
    }
}

pub struct StoreMetrics {
    pub commit_seconds: Histogram,
    pub batch_size: Histogram,
    pub commits: Counter,
}

impl Default for StoreMetrics {
    fn default() -> Self {
        StoreMetrics {
            commit_seconds: Histogram::new([
                0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0,
            ]),
            batch_size: Histogram::new([1.0, 2.0, 4.0, 16.0, 64.0, 256.0, 1024.0]),
            commits: Counter::default(),
        }
    }
}

impl StoreMetrics {
    fn observe_commit(&self, took: Duration, writes: usize) {
        self.commit_seconds.observe(took.as_secs_f64());
        self.batch_size.observe(writes as f64);
        self.commits.inc();
    }

    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "allhands_store_commit_seconds",
            "Time to durably commit one batch of writes",
            self.commit_seconds.clone(),
        );
        registry.register(
            "allhands_store_commit_batch_writes",
            "Writes committed together in one batch",
            self.batch_size.clone(),
        );
        registry.register(
            "allhands_store_commits",
            "Durable commits",
            self.commits.clone(),
        );
    }
}

#[derive(Clone)]
pub struct Store {
    /// Taken out on shutdown so the database file is closed cleanly (no repair on next start).
    db: Arc<RwLock<Option<Arc<Database>>>>,
    writer: Writer,
    pub metrics: Arc<StoreMetrics>,
    writer_thread: Arc<Mutex<Option<std::thread::JoinHandle<()>>>>,
}

impl Store {
    /// Opens (or creates) the store in a data directory whose lock the caller holds, brings its
    /// schema up to date, and replays what the inbound log holds that the store does not (after
    /// a crash) with `replay`.
    pub fn open(lock: &DataDirLock, config: &StorageConfig, replay: Replay) -> AppResult<Store> {
        let path = lock.path.join(DB_FILE);
        let db = open_database(&path, config.cache_mib << 20)?;
        migrations::run(&db)?;
        let log_path = lock.path.join(wal::LOG_FILE);
        let (mut log, records) = wal::Wal::open(&log_path)?;
        let next_lsn = replay_log(&db, &log_path, &records, replay)?;
        log.reset()?;
        let db = Arc::new(db);
        let metrics = Arc::new(StoreMetrics::default());
        let (writer, handle) = Writer::start(
            db.clone(),
            metrics.clone(),
            Some((log, next_lsn)),
            Duration::from_millis(config.checkpoint_ms.max(1)),
        );
        Ok(Store {
            db: Arc::new(RwLock::new(Some(db))),
            writer,
            metrics,
            writer_thread: Arc::new(Mutex::new(Some(handle))),
        })
    }

    /// The open database, for operations that work on it directly (backup, verify).
    pub fn database(&self) -> AppResult<Arc<Database>> {
        self.db
            .read()
            .ok()
            .and_then(|db| db.clone())
            .ok_or_else(|| AppError::new(ErrorCode::StorageUnavailable, "the store is closed"))
    }

    /// Runs `read` in a snapshot on the blocking pool.
    pub async fn read<F, R>(&self, read: F) -> AppResult<R>
    where
        F: FnOnce(&ReadTransaction) -> AppResult<R> + Send + 'static,
        R: Send + 'static,
    {
        let db = self.database()?;
        tokio::task::spawn_blocking(move || {
            let txn = db.begin_read()?;
            read(&txn)
        })
        .await
        .map_err(|e| AppError::internal(format!("read task failed: {e}")))?
    }

    pub fn read_blocking<F, R>(&self, read: F) -> AppResult<R>
    where
        F: FnOnce(&ReadTransaction) -> AppResult<R>,
    {
        let txn = self.database()?.begin_read()?;
        read(&txn)
    }

    /// Commits `write` durably, batched with concurrent writes. See `writer` for why it is `Fn`.
    pub async fn write<F, R>(&self, write: F) -> AppResult<R>
    where
        F: Fn(&WriteTxn) -> AppResult<R> + Send + 'static,
        R: Send + 'static,
    {
        self.writer.write(write).await
    }

    /// Like `write`, for a write that `record` replays (see `Replay`): made durable by the
    /// inbound log instead of a durable commit of its own.
    pub async fn write_logged<F, R>(&self, record: Vec<u8>, write: F) -> AppResult<R>
    where
        F: Fn(&WriteTxn) -> AppResult<R> + Send + 'static,
        R: Send + 'static,
    {
        self.writer.write_logged(record, write).await
    }

    pub fn write_blocking<F, R>(&self, write: F) -> AppResult<R>
    where
        F: Fn(&WriteTxn) -> AppResult<R> + Send + 'static,
        R: Send + 'static,
    {
        self.writer.write_blocking(write)
    }

    /// Resolves once the writer has committed what was queued before: the store is alive.
    pub async fn ping(&self) -> AppResult<()> {
        self.writer.ping().await
    }

    /// Commits what is being written, refuses later reads and writes with
    /// `storage_unavailable`, and closes the database file cleanly. Blocking.
    pub fn shutdown(&self) {
        let db = self.db.write().ok().and_then(|mut db| db.take());
        self.writer.close_blocking();
        if let Some(handle) = self.writer_thread.lock().ok().and_then(|mut h| h.take()) {
            let _ = handle.join();
        }
        if let Some(mut db) = db {
            // Reads already running hold the database a moment longer.
            for _ in 0..500 {
                match Arc::try_unwrap(db) {
                    Ok(db) => {
                        drop(db);
                        return;
                    }
                    Err(shared) => db = shared,
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            tracing::warn!(
                "the store was still in use at shutdown; it will be checked at next start"
            );
        }
    }
}

/// Replays one logged write from its record, in a transaction on the state the write first ran
/// on; does exactly what the write did.
pub type Replay = fn(&WriteTxn, &[u8]) -> AppResult<()>;

/// Applies the log's records past the last one the store holds, durably; returns the next LSN.
/// A log that does not continue where the store ends, or a record that cannot be replayed, stops
/// the start with the log kept: skipping either would lose acknowledged messages without a trace.
fn replay_log(
    db: &Database,
    log: &Path,
    records: &[wal::Logged],
    replay: Replay,
) -> AppResult<u64> {
    let refuse = |why: String| {
        AppError::internal(format!(
            "{why}. The log {} is kept; the store was not changed. Report this; to start without \
             the log's writes, move it away",
            log.display()
        ))
    };
    let txn = db.begin_write()?;
    let pending: Vec<&wal::Logged>;
    let last;
    {
        let write = WriteTxn::new(&txn);
        let through = write
            .counters()?
            .get(wal::LOGGED_THROUGH)?
            .map_or(0, |v| v.value());
        pending = records.iter().filter(|r| r.lsn > through).collect();
        last = records.last().map_or(through, |r| r.lsn.max(through));
        if let Some(first) = pending.first()
            && first.lsn != through + 1
        {
            return Err(refuse(format!(
                "the inbound log starts at write {} but the store ends at write {through}: \
                 it is not this store's log",
                first.lsn
            )));
        }
        for record in &pending {
            replay(&write, &record.body).map_err(|e| {
                refuse(format!(
                    "write {} of the inbound log could not be stored again: {}",
                    record.lsn,
                    e.detail.as_deref().unwrap_or(&e.message)
                ))
            })?;
        }
        if !pending.is_empty() {
            write.counters()?.insert(wal::LOGGED_THROUGH, last)?;
        }
    }
    if pending.is_empty() {
        txn.abort()?;
    } else {
        txn.commit()?;
        tracing::warn!(
            writes = pending.len(),
            "the store was not closed cleanly: replayed the writes its inbound log held"
        );
    }
    Ok(last + 1)
}

pub fn open_database(path: &Path, cache_bytes: usize) -> AppResult<Database> {
    let mut builder = Database::builder();
    builder.set_cache_size(cache_bytes);
    let db = builder.create(path).map_err(|e| match e {
        redb::DatabaseError::DatabaseAlreadyOpen => AppError::new(
            ErrorCode::Conflict,
            format!(
                "{} is already open in another process; stop it first",
                path.display()
            ),
        ),
        redb::DatabaseError::UpgradeRequired(v) => AppError::internal(format!(
            "{} uses redb file format {v}, which this binary cannot read",
            path.display()
        )),
        e => AppError::internal(format!("cannot open {}: {e}", path.display())),
    })?;
    // The store holds password hashes and sessions: owner only.
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    }
    Ok(db)
}

/// Hands out the next id of a named sequence, inside the caller's write.
pub fn next_id(txn: &WriteTxn, counter: &str) -> AppResult<u64> {
    let mut counters = txn.counters()?;
    let next = counters.get(counter)?.map(|v| v.value()).unwrap_or(0) + 1;
    counters.insert(counter, next)?;
    Ok(next)
}

/// Raises a sequence so that ids below `floor` are never handed out (reserved ranges).
pub fn reserve_ids_below(txn: &WriteTxn, counter: &str, floor: u64) -> AppResult<()> {
    let mut counters = txn.open_table(tables::COUNTERS)?;
    let current = counters.get(counter)?.map(|v| v.value()).unwrap_or(0);
    if current < floor {
        counters.insert(counter, floor)?;
    }
    Ok(())
}

pub fn get_record<T: Record>(
    table: &impl ReadableTable<u64, &'static [u8]>,
    id: u64,
) -> AppResult<Option<T>> {
    match table.get(id)? {
        Some(v) => Ok(Some(codec::decode(v.value())?)),
        None => Ok(None),
    }
}

pub fn all_records<T: Record>(table: &impl ReadableTable<u64, &'static [u8]>) -> AppResult<Vec<T>> {
    let mut out = Vec::new();
    for entry in table.iter()? {
        let (_, v) = entry?;
        out.push(codec::decode(v.value())?);
    }
    Ok(out)
}

pub fn meta_get(txn: &ReadTransaction, key: &str) -> AppResult<Option<Vec<u8>>> {
    let meta = txn.open_table(tables::META)?;
    Ok(meta.get(key)?.map(|v| v.value().to_vec()))
}

pub fn meta_get_in_write(txn: &WriteTxn, key: &str) -> AppResult<Option<Vec<u8>>> {
    let meta = txn.open_table(tables::META)?;
    Ok(meta.get(key)?.map(|v| v.value().to_vec()))
}

pub fn meta_set(txn: &WriteTxn, key: &str, value: &[u8]) -> AppResult<()> {
    let mut meta = txn.open_table(tables::META)?;
    meta.insert(key, value)?;
    Ok(())
}

/// Writes a file readable by the owner only (keys, certificates, first password).
pub fn write_private_file(path: &Path, bytes: &[u8]) -> AppResult<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let partial = path.with_extension("partial");
    {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&partial)
            .map_err(|e| AppError::internal(format!("cannot write {}: {e}", partial.display())))?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    std::fs::rename(&partial, path)
        .map_err(|e| AppError::internal(format!("cannot write {}: {e}", path.display())))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replay_counting(txn: &WriteTxn, body: &[u8]) -> AppResult<()> {
        let name = std::str::from_utf8(body).map_err(|e| AppError::internal(e.to_string()))?;
        next_id(txn, name)?;
        Ok(())
    }

    fn replay_refusing(_: &WriteTxn, _: &[u8]) -> AppResult<()> {
        Err(AppError::internal("cannot"))
    }

    fn count(store: &Store, name: &'static str) -> u64 {
        store
            .read_blocking(|txn| {
                Ok(txn
                    .open_table(tables::COUNTERS)?
                    .get(name)?
                    .map_or(0, |v| v.value()))
            })
            .unwrap()
    }

    fn write_log(dir: &Path, records: &[(u64, &[u8])]) {
        let mut bytes = Vec::new();
        for (lsn, body) in records {
            wal::encode(&mut bytes, *lsn, body);
        }
        std::fs::write(dir.join(wal::LOG_FILE), bytes).unwrap();
    }

    #[test]
    fn the_log_is_replayed_once_and_a_log_that_cannot_be_is_kept_and_refused() {
        let dir = tempfile::tempdir().unwrap();
        let lock = DataDirLock::acquire(dir.path()).unwrap();
        let config = StorageConfig::default();
        Store::open(&lock, &config, replay_counting)
            .unwrap()
            .shutdown();

        // What a crash leaves: two records the store does not hold.
        write_log(dir.path(), &[(1, b"replayed"), (2, b"replayed")]);
        let store = Store::open(&lock, &config, replay_counting).unwrap();
        assert_eq!(count(&store, "replayed"), 2);
        assert_eq!(count(&store, wal::LOGGED_THROUGH), 2);
        assert_eq!(
            std::fs::metadata(dir.path().join(wal::LOG_FILE))
                .unwrap()
                .len(),
            0
        );
        store.shutdown();

        // Records the store already holds are not replayed again.
        write_log(dir.path(), &[(1, b"replayed"), (2, b"replayed")]);
        let store = Store::open(&lock, &config, replay_counting).unwrap();
        assert_eq!(count(&store, "replayed"), 2);
        store.shutdown();

        // A record that fails, or a log that does not continue the store's, stops the start and
        // is kept as it was.
        for records in [&[(3, &b"x"[..])][..], &[(9, &b"replayed"[..])][..]] {
            write_log(dir.path(), records);
            let before = std::fs::read(dir.path().join(wal::LOG_FILE)).unwrap();
            let replay: Replay = if records[0].0 == 3 {
                replay_refusing
            } else {
                replay_counting
            };
            let refused = Store::open(&lock, &config, replay).err().expect("refused");
            let why = refused.detail.unwrap_or_default();
            assert!(why.contains("is kept"), "{why}");
            assert_eq!(
                std::fs::read(dir.path().join(wal::LOG_FILE)).unwrap(),
                before
            );
        }
    }
}
