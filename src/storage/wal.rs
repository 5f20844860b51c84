//! The inbound log: what makes a channel's message durable before the store's own commit is.
//!
//! A durable redb commit writes every page the batch changed and waits for the disk; under a
//! stream of customer messages spread over many conversations that was half of the writer's
//! time. Writes that can be replayed (`Writer::write_logged`) are instead committed to redb
//! without waiting for the disk, and their records appended here and synced (one small
//! sequential write per batch) before anyone is answered. Every so often, and whenever another
//! kind of write needs a durable commit, redb commits durably (a checkpoint) and the log is
//! emptied.
//!
//! Each record carries a log sequence number (LSN); every commit stores the last LSN it holds
//! (`tables::COUNTERS`, `LOGGED_THROUGH`). After a crash the store is at its last durable
//! commit, and the records after the LSN it holds are replayed in order: the same writes on the
//! same state give the same rows and ids as before the crash.
//!
//! A record on disk: length of the body (u32), CRC-32 of LSN and body (u32), LSN (u64), body;
//! little-endian. Reading stops at the first record that is short, fails its checksum or does
//! not follow its predecessor's LSN: that is where a crash cut a write short.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::{AppError, AppResult};

pub const LOG_FILE: &str = "inbound.log";
/// The `tables::COUNTERS` entry holding the last LSN a commit includes.
pub const LOGGED_THROUGH: &str = "inbound_log_lsn";

const HEADER: usize = 16;
/// A record larger than this is damage, not data; a write with a larger record is committed
/// durably instead of logged.
pub const MAX_BODY: u32 = 64 << 20;

pub struct Wal {
    file: File,
    path: PathBuf,
    len: u64,
    buffer: Vec<u8>,
}

/// A record read back from the log.
#[derive(Debug, Clone, PartialEq)]
pub struct Logged {
    pub lsn: u64,
    pub body: Vec<u8>,
}

impl Wal {
    /// Opens (or creates) the log and reads the records it holds, up to the first damaged one.
    pub fn open(path: &Path) -> AppResult<(Wal, Vec<Logged>)> {
        use std::os::unix::fs::OpenOptionsExt;
        let created = !path.exists();
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(|e| AppError::internal(format!("cannot open {}: {e}", path.display())))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|e| AppError::internal(format!("cannot read {}: {e}", path.display())))?;
        let cannot =
            |e: std::io::Error| AppError::internal(format!("cannot write {}: {e}", path.display()));
        if created && let Some(directory) = path.parent() {
            // The file's name must survive a power loss as surely as the records in it.
            File::open(directory)
                .and_then(|d| d.sync_all())
                .map_err(cannot)?;
        }
        let (records, valid) = parse(&bytes);
        if valid < bytes.len() {
            tracing::warn!(
                log = %path.display(),
                kept = records.len(),
                dropped_bytes = bytes.len() - valid,
                "the inbound log ends in a partial record (a write cut short by a crash); it was never acknowledged"
            );
            // Cut it off, so that new records written over it can never run on into its rest.
            file.set_len(valid as u64).map_err(cannot)?;
            file.sync_all().map_err(cannot)?;
        }
        Ok((
            Wal {
                file,
                path: path.to_path_buf(),
                len: valid as u64,
                buffer: Vec::new(),
            },
            records,
        ))
    }

    /// Appends records and waits until the disk has them.
    pub fn append<'a>(
        &mut self,
        records: impl IntoIterator<Item = (u64, &'a [u8])>,
    ) -> std::io::Result<()> {
        self.buffer.clear();
        for (lsn, body) in records {
            encode(&mut self.buffer, lsn, body);
        }
        self.file.write_all_at(&self.buffer, self.len)?;
        self.file.sync_data()?;
        self.len += self.buffer.len() as u64;
        Ok(())
    }

    /// Empties the log: called after a durable commit holds everything in it.
    pub fn reset(&mut self) -> std::io::Result<()> {
        if self.len > 0 {
            self.file.set_len(0)?;
            self.len = 0;
            self.file.sync_all()?;
        }
        Ok(())
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn checksum(lsn: u64, body: &[u8]) -> u32 {
    let mut crc = crc32fast::Hasher::new();
    crc.update(&lsn.to_le_bytes());
    crc.update(body);
    crc.finalize()
}

pub fn encode(out: &mut Vec<u8>, lsn: u64, body: &[u8]) {
    let length = u32::try_from(body.len()).expect("a logged write is far below 4 GiB");
    out.extend_from_slice(&length.to_le_bytes());
    out.extend_from_slice(&checksum(lsn, body).to_le_bytes());
    out.extend_from_slice(&lsn.to_le_bytes());
    out.extend_from_slice(body);
}

/// The records at the start of `bytes` that are whole, intact and numbered one after another,
/// and how many bytes they take.
pub fn parse(bytes: &[u8]) -> (Vec<Logged>, usize) {
    let mut records: Vec<Logged> = Vec::new();
    let mut at = 0;
    while let Some(header) = bytes.get(at..at + HEADER) {
        let length = u32::from_le_bytes(header[0..4].try_into().expect("4 bytes"));
        let crc = u32::from_le_bytes(header[4..8].try_into().expect("4 bytes"));
        let lsn = u64::from_le_bytes(header[8..16].try_into().expect("8 bytes"));
        if length > MAX_BODY {
            break;
        }
        let Some(body) = bytes.get(at + HEADER..at + HEADER + length as usize) else {
            break;
        };
        if checksum(lsn, body) != crc {
            break;
        }
        if let Some(previous) = records.last()
            && previous.lsn.checked_add(1) != Some(lsn)
        {
            break;
        }
        records.push(Logged {
            lsn,
            body: body.to_vec(),
        });
        at += HEADER + length as usize;
    }
    (records, at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn log_of(records: &[(u64, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (lsn, body) in records {
            encode(&mut out, *lsn, body);
        }
        out
    }

    #[test]
    fn reads_back_what_was_appended_across_reopen_and_reset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOG_FILE);
        let (mut wal, found) = Wal::open(&path).unwrap();
        assert!(found.is_empty());
        wal.append([(1, &b"one"[..]), (2, &b"two"[..])]).unwrap();
        wal.append([(3, &b"three"[..])]).unwrap();
        drop(wal);
        let (mut wal, found) = Wal::open(&path).unwrap();
        let lsns: Vec<u64> = found.iter().map(|r| r.lsn).collect();
        assert_eq!(lsns, [1, 2, 3]);
        assert_eq!(found[2].body, b"three");
        // Appends continue after what was read.
        wal.append([(4, &b"four"[..])]).unwrap();
        wal.reset().unwrap();
        assert!(wal.is_empty());
        wal.append([(5, &b"five"[..])]).unwrap();
        drop(wal);
        let (_, found) = Wal::open(&path).unwrap();
        assert_eq!(
            found,
            [Logged {
                lsn: 5,
                body: b"five".to_vec()
            }]
        );
    }

    #[test]
    fn opening_cuts_off_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOG_FILE);
        let whole = log_of(&[(1, b"one"), (2, b"two")]);
        std::fs::write(&path, &whole[..whole.len() - 1]).unwrap();
        let (mut wal, found) = Wal::open(&path).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), (HEADER + 3) as u64);
        wal.append([(2, &b"again"[..])]).unwrap();
        drop(wal);
        let (_, found) = Wal::open(&path).unwrap();
        assert_eq!(
            found[1],
            Logged {
                lsn: 2,
                body: b"again".to_vec()
            }
        );
    }

    #[test]
    fn a_torn_or_damaged_tail_ends_the_log() {
        let whole = log_of(&[(7, b"seven"), (8, b"eight"), (9, b"nine")]);
        let first_two = HEADER * 2 + 5 + 5;
        // Cut inside the third record.
        let (records, valid) = parse(&whole[..whole.len() - 2]);
        assert_eq!(records.len(), 2);
        assert_eq!(valid, first_two);
        // A flipped bit in the third body.
        let mut damaged = whole.clone();
        *damaged.last_mut().unwrap() ^= 1;
        assert_eq!(parse(&damaged).0.len(), 2);
        // A record that does not follow its predecessor is old data, not a continuation.
        let mut stale = log_of(&[(7, b"seven"), (8, b"eight")]);
        stale.extend(log_of(&[(3, b"three")]));
        assert_eq!(parse(&stale).0.len(), 2);
    }

    proptest! {
        #[test]
        fn any_bytes_parse_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let (records, valid) = parse(&bytes);
            prop_assert!(valid <= bytes.len());
            prop_assert!(records.windows(2).all(|w| w[0].lsn + 1 == w[1].lsn));
        }

        #[test]
        fn every_prefix_reads_the_whole_records_it_holds(
            bodies in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 1..8),
            cut in any::<prop::sample::Index>(),
        ) {
            let records: Vec<(u64, &[u8])> = bodies.iter().enumerate().map(|(i, b)| (100 + i as u64, b.as_slice())).collect();
            let whole = log_of(&records);
            let end = cut.index(whole.len() + 1);
            let (found, valid) = parse(&whole[..end]);
            let whole_records = records.iter().scan(0, |at, (_, b)| { *at += HEADER + b.len(); Some(*at) }).take_while(|&at| at <= end).count();
            prop_assert_eq!(found.len(), whole_records);
            prop_assert!(valid <= end);
        }
    }
}
