//! Reading sealed segments: local file → object store (ranged GETs of the footer and of
//! single blocks), with a bounded in-memory footer cache and a bounded on-disk cache of
//! uploaded segment files.
//!
//! Segment files live under `DS_ROOT/segments/<object key>`. A file that is not uploaded
//! yet is never evicted; once its manifest is published it joins the cache, which deletes
//! the least recently used uploaded files above `DS_SEGMENT_CACHE_MAX_BYTES`.

use std::collections::{HashMap, VecDeque};
use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::collect::Collect;
use super::db::segments::SegmentRow;
use super::read_pool::ReadPool;
use super::segment::{self, Footer, SegmentError, TRAILER_LEN};
use super::EngineError;
use crate::config::Tiering;
use crate::objstore::{keys, Store};

/// Segment storage of a full-mode engine.
pub struct Tier {
    pub store: Store,
    pub cfg: Tiering,
    /// Routing-key index runs in memory.
    pub key_index: super::keyindex::KeyIndex,
    /// Segment summaries in memory (a budget of the same size as the runs').
    pub summaries: super::keyindex::summaries::Summaries,
    dir: PathBuf,
    footers: Mutex<FooterCache>,
    cache: Mutex<DiskCache>,
}

struct FooterCache {
    cap: usize,
    map: HashMap<String, Arc<Footer>>,
    order: VecDeque<String>,
}

impl FooterCache {
    fn get(&self, key: &str) -> Option<Arc<Footer>> {
        self.map.get(key).cloned()
    }
    fn put(&mut self, key: String, f: Arc<Footer>) {
        if self.cap == 0 || self.map.contains_key(&key) {
            return;
        }
        while self.map.len() >= self.cap {
            match self.order.pop_front() {
                Some(old) => drop(self.map.remove(&old)),
                None => break,
            }
        }
        self.order.push_back(key.clone());
        self.map.insert(key, f);
    }
}

/// Uploaded segment files kept locally, least recently used first.
struct DiskCache {
    cap: u64,
    used: u64,
    /// path → (size, last use tick)
    files: HashMap<PathBuf, (u64, u64)>,
    tick: u64,
}

fn corrupt(key: &str, e: SegmentError) -> EngineError {
    EngineError::Corrupt(format!("segment {key} is unreadable: {e}"))
}

fn store_err(e: crate::objstore::StoreError) -> EngineError {
    e.into()
}

impl Tier {
    pub fn new(store: Store, cfg: Tiering, root: &Path) -> Tier {
        Tier {
            footers: Mutex::new(FooterCache {
                cap: cfg.footer_cache_entries,
                map: HashMap::new(),
                order: VecDeque::new(),
            }),
            cache: Mutex::new(DiskCache {
                cap: cfg.segment_cache_max_bytes,
                used: 0,
                files: HashMap::new(),
                tick: 0,
            }),
            key_index: super::keyindex::KeyIndex::new(cfg.key_index_cache_bytes),
            summaries: super::keyindex::summaries::Summaries::new(cfg.key_index_cache_bytes),
            store,
            cfg,
            dir: root.join("segments"),
        }
    }

    /// Object key of a segment.
    pub fn key(incarnation: &str, index: u64) -> String {
        keys::segment(&keys::stream_prefix(incarnation), index)
    }

    /// Where a segment's local file lives.
    pub fn local_path(&self, key: &str) -> PathBuf {
        self.dir.join(key)
    }

    /// The local folder of an incarnation.
    pub fn local_dir(&self, prefix: &str) -> PathBuf {
        self.dir.join(prefix)
    }

    /// Bytes of an incarnation's uploaded segment files kept in the local cache.
    pub fn cached_bytes(&self, prefix: &str) -> u64 {
        let dir = self.local_dir(prefix);
        let c = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        c.files
            .iter()
            .filter(|(p, _)| p.starts_with(&dir))
            .map(|(_, v)| v.0)
            .sum()
    }

    /// Deletes leftovers of interrupted segment writes.
    pub fn remove_temp_files(&self) {
        fn walk(dir: &Path) {
            let Ok(rd) = std::fs::read_dir(dir) else {
                return;
            };
            for e in rd.flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p);
                } else if p.extension().is_some_and(|x| x == "tmp") {
                    let _ = std::fs::remove_file(&p);
                }
            }
        }
        walk(&self.dir);
    }

    /// Makes an uploaded segment's local file evictable, then evicts above the cap.
    pub fn cache_insert(&self, key: &str) {
        let path = self.local_path(key);
        let Ok(meta) = std::fs::metadata(&path) else {
            return;
        };
        let evict = {
            let mut c = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            c.tick += 1;
            let tick = c.tick;
            if let Some(old) = c.files.insert(path, (meta.len(), tick)) {
                c.used -= old.0;
            }
            c.used += meta.len();
            let mut evict = Vec::new();
            while c.used > c.cap {
                let Some(oldest) = c
                    .files
                    .iter()
                    .min_by_key(|(_, v)| v.1)
                    .map(|(k, _)| k.clone())
                else {
                    break;
                };
                if let Some((size, _)) = c.files.remove(&oldest) {
                    c.used -= size;
                }
                evict.push(oldest);
            }
            evict
        };
        for p in evict {
            let _ = std::fs::remove_file(p);
        }
    }

    fn cache_touch(&self, path: &Path) {
        let mut c = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        c.tick += 1;
        let tick = c.tick;
        if let Some(v) = c.files.get_mut(path) {
            v.1 = tick;
        }
    }

    /// Forgets cached files under a folder (the incarnation was removed).
    pub fn cache_forget_dir(&self, dir: &Path) {
        let mut c = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let gone: Vec<PathBuf> = c
            .files
            .keys()
            .filter(|p| p.starts_with(dir))
            .cloned()
            .collect();
        for p in gone {
            if let Some((size, _)) = c.files.remove(&p) {
                c.used -= size;
            }
        }
    }

    async fn read_range(
        &self,
        pool: &ReadPool,
        key: &str,
        size: u64,
        range: std::ops::Range<u64>,
    ) -> Result<Vec<u8>, EngineError> {
        let path = self.local_path(key);
        // The local file (a block of at most `DS_BLOCK_MAX_BYTES`), read on the read pool.
        let (p, r) = (path.clone(), range.clone());
        let local = pool
            .run_io(move || {
                let read = || -> std::io::Result<Option<Vec<u8>>> {
                    let mut f = match std::fs::File::open(&p) {
                        Ok(f) => f,
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                        Err(e) => return Err(e),
                    };
                    f.seek(SeekFrom::Start(r.start))?;
                    let mut buf = vec![0u8; (r.end - r.start) as usize];
                    f.read_exact(&mut buf)?;
                    Ok(Some(buf))
                };
                Ok(read())
            })
            .await?;
        match local {
            Ok(Some(b)) => {
                self.cache_touch(&path);
                Ok(b)
            }
            // Missing (evicted) or unreadable locally: the uploaded object is authoritative.
            Ok(None) | Err(_) => {
                if range.end > size {
                    return Err(corrupt(key, SegmentError::Truncated));
                }
                Ok(self
                    .store
                    .get_range(key, range)
                    .await
                    .map_err(store_err)?
                    .to_vec())
            }
        }
    }

    async fn footer(
        &self,
        pool: &ReadPool,
        key: &str,
        size: u64,
    ) -> Result<Arc<Footer>, EngineError> {
        if let Some(f) = self
            .footers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
        {
            return Ok(f);
        }
        if size < TRAILER_LEN as u64 {
            return Err(corrupt(key, SegmentError::Truncated));
        }
        let t = self
            .read_range(pool, key, size, size - TRAILER_LEN as u64..size)
            .await?;
        let (flen, crc) = segment::parse_trailer(&t).map_err(|e| corrupt(key, e))?;
        let fstart = (size - TRAILER_LEN as u64)
            .checked_sub(flen as u64)
            .ok_or_else(|| corrupt(key, SegmentError::Truncated))?;
        let fb = self
            .read_range(pool, key, size, fstart..size - TRAILER_LEN as u64)
            .await?;
        let footer = Arc::new(segment::decode_footer(&fb, crc, size).map_err(|e| corrupt(key, e))?);
        self.footers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .put(key.to_string(), footer.clone());
        Ok(footer)
    }

    /// Offers the entries of positions `[c.next_pos, to)` of a segment to the page, block
    /// by block, until it is full. A keyed read checks each block's key filter (after the
    /// block's checksums) and skips a block that cannot hold its key without
    /// decompressing it.
    pub async fn read(
        &self,
        pool: &ReadPool,
        incarnation: &str,
        seg: &SegmentRow,
        to: u64,
        c: &mut Collect,
    ) -> Result<(), EngineError> {
        let key = Tier::key(incarnation, seg.index);
        let footer = self.footer(pool, &key, seg.size_bytes).await?;
        if footer.start_pos != seg.start_pos || footer.end_pos != seg.end_pos {
            return Err(corrupt(
                &key,
                SegmentError::Corrupt("range differs from the catalog"),
            ));
        }
        let Some(mut bi) = footer.block_for(c.next_pos) else {
            return Ok(());
        };
        let to = to.min(seg.end_pos);
        while c.next_pos < to && bi < footer.blocks.len() && !c.is_full() {
            let b = footer.blocks[bi];
            bi += 1;
            let bytes = self
                .read_range(
                    pool,
                    &key,
                    seg.size_bytes,
                    b.offset..b.offset + b.len as u64,
                )
                .await?;
            if let Some(want) = c.key() {
                let filter = segment::checked_filter(&bytes, &b).map_err(|e| corrupt(&key, e))?;
                if b.version < 2 || !segment::filter::might_contain(filter, want) {
                    c.skip_to(b.end_pos().min(to));
                    continue;
                }
            }
            let mut p = b.first_pos;
            segment::visit_block(&bytes, &b, |rkey, data, _ts| {
                let this = p;
                p += 1;
                if this < c.next_pos {
                    return true;
                }
                if this >= to {
                    return false;
                }
                c.offer_copy(this, rkey, data)
            })
            .map_err(|e| corrupt(&key, e))?;
        }
        Ok(())
    }

    /// The first position in `range` of a segment whose record was appended at or after
    /// `since_ms` (and has `key`, if given). Blocks whose latest append time is earlier
    /// are skipped unread.
    pub async fn seek_time(
        &self,
        pool: &ReadPool,
        incarnation: &str,
        seg: &SegmentRow,
        range: std::ops::Range<u64>,
        since_ms: i64,
        key: Option<&[u8]>,
    ) -> Result<Option<u64>, EngineError> {
        let okey = Tier::key(incarnation, seg.index);
        let footer = self.footer(pool, &okey, seg.size_bytes).await?;
        let Some(first) = footer.block_for(range.start) else {
            return Ok(None);
        };
        for b in &footer.blocks[first..] {
            if b.first_pos >= range.end {
                break;
            }
            if b.version < 2 || b.max_ts_ms < since_ms {
                continue; // version 1 records have no append time (0)
            }
            let bytes = self
                .read_range(
                    pool,
                    &okey,
                    seg.size_bytes,
                    b.offset..b.offset + b.len as u64,
                )
                .await?;
            let mut p = b.first_pos;
            let mut found = None;
            segment::visit_block(&bytes, b, |rkey, _data, ts| {
                let this = p;
                p += 1;
                if this >= range.end {
                    return false;
                }
                let key_ok = key.is_none_or(|k| rkey == Some(k));
                if this >= range.start && ts >= since_ms && key_ok {
                    found = Some(this);
                    return false;
                }
                true
            })
            .map_err(|e| corrupt(&okey, e))?;
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    /// Calls `f` with the position, routing key and data of every record of a segment,
    /// in order (every block read and checked).
    pub async fn visit_records(
        &self,
        pool: &ReadPool,
        incarnation: &str,
        seg: &SegmentRow,
        mut f: impl FnMut(u64, Option<&[u8]>, &[u8]),
    ) -> Result<(), EngineError> {
        let okey = Tier::key(incarnation, seg.index);
        let footer = self.footer(pool, &okey, seg.size_bytes).await?;
        for b in &footer.blocks {
            let bytes = self
                .read_range(
                    pool,
                    &okey,
                    seg.size_bytes,
                    b.offset..b.offset + b.len as u64,
                )
                .await?;
            segment::checked_filter(&bytes, b).map_err(|e| corrupt(&okey, e))?;
            let mut p = b.first_pos;
            segment::visit_block(&bytes, b, |k, data, _| {
                f(p, k, data);
                p += 1;
                true
            })
            .map_err(|e| corrupt(&okey, e))?;
        }
        Ok(())
    }

    /// The distinct non-empty routing keys of a segment (every block read).
    pub async fn keys(
        &self,
        pool: &ReadPool,
        incarnation: &str,
        seg: &SegmentRow,
    ) -> Result<std::collections::BTreeSet<Vec<u8>>, EngineError> {
        let okey = Tier::key(incarnation, seg.index);
        let footer = self.footer(pool, &okey, seg.size_bytes).await?;
        let mut keys = std::collections::BTreeSet::new();
        for b in &footer.blocks {
            if b.version < 2 {
                continue;
            }
            let bytes = self
                .read_range(
                    pool,
                    &okey,
                    seg.size_bytes,
                    b.offset..b.offset + b.len as u64,
                )
                .await?;
            segment::checked_filter(&bytes, b).map_err(|e| corrupt(&okey, e))?;
            segment::visit_block(&bytes, b, |k, _, _| {
                if let Some(k) = k.filter(|k| !k.is_empty()) {
                    if !keys.contains(k) {
                        keys.insert(k.to_vec());
                    }
                }
                true
            })
            .map_err(|e| corrupt(&okey, e))?;
        }
        Ok(keys)
    }
}
