//! The append log: where a batch of plain appends becomes durable without a SQLite
//! transaction.
//!
//! A batch whose operations wrote nothing else to SQLite (plain appends: no close, no
//! producer, no `Stream-Seq`, no sliding TTL) is one record here: one `pwrite` and one
//! `fdatasync` of a file beside the database (`<db>-applog`). Its entries are in the
//! memtable as well, where readers find them, and compaction copies them into SQLite
//! (`ingest`, then `entries`) in the transaction that also draws a new *salt*: from that
//! commit on, every record written before it is void, and the writer starts again at the
//! file's beginning. A batch that writes anything else to SQLite puts its entries into
//! `ingest` in the same transaction instead, so no batch is split between the two.
//!
//! A record is a 16-byte header — the salt, the body's length and a CRC-32C of both
//! salt and body — and a body of runs: `(stream_id, first_pos, count)` and each entry's
//! time, payload and routing key. The current salt is in SQLite (table `applog`,
//! migration 0016), drawn at random, so neither a record of an earlier salt left further
//! on in the file nor bytes a client appended can pass for a record. At start-up the
//! writer reads the records from the beginning up to the first that does not check out
//! (a torn write: never acknowledged), copies their entries into `ingest` and draws a
//! new salt in one transaction, and compacts.
//!
//! The file grows in steps written with zeros, so that an `fdatasync` after an append
//! inside it flushes no new size. The zeros go one page per `pwrite`: the page cache
//! would otherwise hold the step as one large folio, and every later record written into
//! it would walk the folio's block buffers, hundreds of them (a lone 200-byte record took
//! 24 µs instead of 12 µs on ext4). For the same reason the file starts empty again when
//! it is opened with nothing to keep: its pages may be cached as large folios, by an
//! older build's steps or by the start-up read.
//!
//! Failure: if a record cannot be written or synced, its batch fails; the record may
//! still reach the disk, so until a compaction has voided it (a new salt), the writer
//! commits nothing more (`Writer::commit_batch`).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::db::ingest::Run;
use super::entry::Entry;

const HEADER: usize = 16;
/// The file grows by at least this much at a time (and doubles up to [`MAX_STEP`]).
const MIN_STEP: u64 = 1 << 20;
const MAX_STEP: u64 = 16 << 20;
/// The zeros of a step are written this much at a time (a page; see the module
/// documentation).
const ZERO_WRITE: usize = 4096;
/// A key length that means "no routing key" (an empty key is `Some` and empty).
const NO_KEY: u32 = u32::MAX;

/// The log file of the database at `db`.
pub fn path_for(db: &Path) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push("-applog");
    PathBuf::from(p)
}

/// The open log, written by the writer thread only.
#[derive(Debug)]
pub struct AppLog {
    file: File,
    salt: u64,
    /// Where the next record goes.
    offset: u64,
    /// The file's length (written with zeros past the last record).
    len: u64,
    /// Why a record failed since the salt was drawn (it may be on disk).
    failed: Option<io::Error>,
    buf: Vec<u8>,
}

impl AppLog {
    /// Opens (or creates) the log of the database at `db` to write records of `salt` from
    /// `offset` on (0, or the end of the records [`read`] found). At 0 nothing in the file
    /// is kept: it is emptied (see the module documentation).
    pub fn open(db: &Path, salt: u64, offset: u64) -> io::Result<AppLog> {
        let path = path_for(db);
        let existed = path.exists();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(offset == 0)
            .open(&path)?;
        if !existed {
            // The new file's name must survive a power loss as its records will.
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                File::open(dir)?.sync_all()?;
            }
        }
        let len = if offset == 0 {
            0
        } else {
            file.metadata()?.len()
        };
        Ok(AppLog {
            file,
            salt,
            offset,
            len,
            failed: None,
            buf: Vec::new(),
        })
    }

    /// Whether the file may hold a record of the current salt (written or failed).
    pub fn dirty(&self) -> bool {
        self.offset > 0 || self.failed.is_some()
    }

    /// Why a record failed since the salt was drawn, if one did (see the module
    /// documentation).
    pub fn failure(&self) -> Option<io::Error> {
        self.failed
            .as_ref()
            .map(|e| io::Error::new(e.kind(), e.to_string()))
    }

    /// Writes `runs` as one record and syncs it. On error nothing is acknowledged, and the
    /// log counts as failed until [`restart`](Self::restart).
    pub fn append(&mut self, runs: &[Run]) -> io::Result<()> {
        encode(self.salt, runs, &mut self.buf);
        let r = self.write_record();
        if let Err(e) = &r {
            self.failed = Some(io::Error::new(e.kind(), e.to_string()));
        }
        r
    }

    fn write_record(&mut self) -> io::Result<()> {
        let end = self.offset + self.buf.len() as u64;
        if end > self.len {
            self.grow(end)?;
        }
        self.file.write_all_at(&self.buf, self.offset)?;
        self.file.sync_data()?;
        self.offset = end;
        Ok(())
    }

    /// Extends the file with zeros to at least `end`.
    fn grow(&mut self, end: u64) -> io::Result<()> {
        let step = self.len.clamp(MIN_STEP, MAX_STEP);
        let new_len = end.div_ceil(step) * step;
        let zeros = [0u8; ZERO_WRITE];
        let mut at = self.len;
        while at < new_len {
            let n = (new_len - at).min(ZERO_WRITE as u64) as usize;
            self.file.write_all_at(&zeros[..n], at)?;
            at += n as u64;
        }
        self.len = new_len;
        Ok(())
    }

    /// Replaces the file handle (tests: a handle that cannot write makes records fail).
    #[cfg(test)]
    pub fn swap_file(&mut self, file: File) -> File {
        std::mem::replace(&mut self.file, file)
    }

    /// Starts over at the beginning with a new salt, once the records of the old one are
    /// in SQLite and the new salt is committed there.
    pub fn restart(&mut self, salt: u64) {
        self.salt = salt;
        self.offset = 0;
        self.failed = None;
    }
}

/// Encodes one record of `runs` under `salt` into `buf` (cleared first).
fn encode(salt: u64, runs: &[Run], buf: &mut Vec<u8>) {
    buf.clear();
    buf.resize(HEADER, 0);
    for (id, first_pos, entries) in runs {
        buf.extend_from_slice(&id.to_le_bytes());
        buf.extend_from_slice(&first_pos.to_le_bytes());
        buf.extend_from_slice(&(entries.len() as u32).to_le_bytes());
        for e in entries {
            buf.extend_from_slice(&e.ts_ms.to_le_bytes());
            buf.extend_from_slice(&(e.data.len() as u32).to_le_bytes());
            let key_len = e.key.as_ref().map_or(NO_KEY, |k| k.len() as u32);
            buf.extend_from_slice(&key_len.to_le_bytes());
            buf.extend_from_slice(&e.data);
            if let Some(k) = &e.key {
                buf.extend_from_slice(k);
            }
        }
    }
    let body_len = (buf.len() - HEADER) as u32;
    buf[0..8].copy_from_slice(&salt.to_le_bytes());
    buf[8..12].copy_from_slice(&body_len.to_le_bytes());
    let crc = checksum(salt, &buf[HEADER..]);
    buf[12..16].copy_from_slice(&crc.to_le_bytes());
}

fn checksum(salt: u64, body: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&salt.to_le_bytes()), body)
}

/// What [`read`] found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Records {
    pub runs: Vec<Run>,
    /// Where they end.
    pub end: u64,
}

/// The runs of every record of `salt` in the log of the database at `db`, from the
/// beginning up to the first record that does not check out; none if there is no file.
pub fn read(db: &Path, salt: u64) -> io::Result<Records> {
    let data = match std::fs::read(path_for(db)) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Records::default()),
        Err(e) => return Err(e),
    };
    let mut runs = Vec::new();
    let mut at = 0;
    while let Some(header) = data.get(at..at + HEADER) {
        let word = |i: usize| u32::from_le_bytes(header[i..i + 4].try_into().expect("4 bytes"));
        let rec_salt = u64::from_le_bytes(header[0..8].try_into().expect("8 bytes"));
        let body_len = word(8) as usize;
        if rec_salt != salt || body_len == 0 {
            break;
        }
        let Some(body) = data.get(at + HEADER..at + HEADER + body_len) else {
            break;
        };
        if checksum(salt, body) != word(12) {
            break;
        }
        match decode(body) {
            Some(r) => runs.extend(r),
            // A body with the right checksum that does not parse: not ours.
            None => break,
        }
        at += HEADER + body_len;
    }
    Ok(Records {
        runs,
        end: at as u64,
    })
}

fn decode(body: &[u8]) -> Option<Vec<Run>> {
    let mut r = Reader { b: body };
    let mut runs = Vec::new();
    while !r.b.is_empty() {
        let id = r.u64()? as i64;
        let first_pos = r.u64()?;
        let count = r.u32()? as usize;
        let mut entries = Vec::with_capacity(count.min(r.b.len()));
        for _ in 0..count {
            let ts_ms = r.u64()? as i64;
            let data_len = r.u32()? as usize;
            let key_len = r.u32()?;
            let data = Bytes::copy_from_slice(r.take(data_len)?);
            let key = match key_len {
                NO_KEY => None,
                n => Some(Bytes::copy_from_slice(r.take(n as usize)?)),
            };
            entries.push(Entry { data, key, ts_ms });
        }
        runs.push((id, first_pos, entries));
    }
    Some(runs)
}

struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.b.len() < n {
            return None;
        }
        let (head, rest) = self.b.split_at(n);
        self.b = rest;
        Some(head)
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(data: &str, key: Option<&str>, ts_ms: i64) -> Entry {
        Entry {
            data: Bytes::copy_from_slice(data.as_bytes()),
            key: key.map(|k| Bytes::copy_from_slice(k.as_bytes())),
            ts_ms,
        }
    }

    #[test]
    fn records_of_the_salt_read_back_up_to_the_first_torn_one() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("d.sqlite");
        assert_eq!(
            read(&db, 7).unwrap(),
            Records::default(),
            "no file: no records"
        );
        let mut log = AppLog::open(&db, 7, 0).unwrap();
        assert!(!log.dirty());
        let first: Vec<Run> = vec![
            (1, 0, vec![entry("a", None, 5), entry("b", Some(""), 5)]),
            (2, 9, vec![entry("c", Some("k"), 6)]),
        ];
        let second: Vec<Run> = vec![(1, 2, vec![entry("d", None, 7)])];
        log.append(&first).unwrap();
        log.append(&second).unwrap();
        assert!(log.dirty());
        let all: Vec<Run> = first.iter().chain(&second).cloned().collect();
        assert_eq!(read(&db, 7).unwrap().runs, all);
        assert!(
            read(&db, 8).unwrap().runs.is_empty(),
            "another salt reads nothing"
        );

        // A torn second record: the first still reads, the second does not.
        let file = OpenOptions::new().write(true).open(path_for(&db)).unwrap();
        let mut buf = Vec::new();
        encode(7, &first, &mut buf);
        let second_at = buf.len() as u64;
        file.write_all_at(b"\xff", second_at + HEADER as u64 + 3)
            .unwrap();
        let r = read(&db, 7).unwrap();
        assert_eq!((r.runs, r.end), (first, second_at));
    }

    #[test]
    fn a_restarted_log_voids_the_records_of_the_old_salt() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("d.sqlite");
        let mut log = AppLog::open(&db, 1, 0).unwrap();
        let long: Vec<Run> = vec![(1, 0, (0..50).map(|_| entry("xxxx", None, 1)).collect())];
        log.append(&long).unwrap();
        log.restart(2);
        assert!(!log.dirty());
        let short: Vec<Run> = vec![(3, 4, vec![entry("y", None, 2)])];
        log.append(&short).unwrap();
        // The old, longer record's rest follows the new one in the file: not read.
        assert_eq!(read(&db, 2).unwrap().runs, short);
        assert!(read(&db, 1).unwrap().runs.is_empty());
    }

    #[test]
    fn reopened_after_its_records_it_keeps_them_and_with_nothing_to_keep_it_is_emptied() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("d.sqlite");
        let first: Vec<Run> = vec![(1, 0, vec![entry("a", None, 1)])];
        let second: Vec<Run> = vec![(1, 1, vec![entry("b", Some("k"), 2)])];
        AppLog::open(&db, 4, 0).unwrap().append(&first).unwrap();
        let end = read(&db, 4).unwrap().end;
        assert!(end > 0);

        AppLog::open(&db, 4, end).unwrap().append(&second).unwrap();
        let both: Vec<Run> = first.iter().chain(&second).cloned().collect();
        assert_eq!(
            read(&db, 4).unwrap().runs,
            both,
            "the kept records and the next one"
        );

        let log = AppLog::open(&db, 5, 0).unwrap();
        assert!(!log.dirty());
        assert_eq!(std::fs::metadata(path_for(&db)).unwrap().len(), 0);
        assert!(read(&db, 4).unwrap().runs.is_empty());
    }

    #[test]
    fn the_file_grows_in_zeroed_steps() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("d.sqlite");
        let mut log = AppLog::open(&db, 3, 0).unwrap();
        let big = "z".repeat(300_000);
        let runs: Vec<Run> = (0..5)
            .map(|i| (1, i * 1000, vec![entry(&big, None, 0)]))
            .collect();
        log.append(&runs).unwrap();
        let len = std::fs::metadata(path_for(&db)).unwrap().len();
        assert_eq!(len % MIN_STEP, 0);
        assert!(len >= 1_500_000);
        assert_eq!(read(&db, 3).unwrap().runs, runs);
    }
}
