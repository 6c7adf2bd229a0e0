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

use super::db::segments::SegmentRow;
use super::read_pool::ReadPool;
use super::segment::{self, Footer, SegmentError, TRAILER_LEN};
use super::EngineError;
use crate::config::Tiering;
use crate::objstore::{keys, Store};

/// What is left of a read page.
#[derive(Debug, Clone, Copy)]
pub struct PageLimits {
    pub max_bytes: usize,
    pub max_records: usize,
    /// Nothing was read yet: one entry is allowed whatever its size.
    pub first: bool,
}

/// Segment storage of a full-mode engine.
pub struct Tier {
    pub store: Store,
    pub cfg: Tiering,
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

    /// Entries `[from, to)` of a segment, block by block, stopping at the limits (at least
    /// one entry is returned when `limits.first` is set).
    pub async fn read(
        &self,
        pool: &ReadPool,
        incarnation: &str,
        seg: &SegmentRow,
        range: std::ops::Range<u64>,
        limits: PageLimits,
    ) -> Result<Vec<Vec<u8>>, EngineError> {
        let (from, to) = (range.start, range.end);
        let PageLimits {
            mut max_bytes,
            mut max_records,
            first,
        } = limits;
        let key = Tier::key(incarnation, seg.index);
        let footer = self.footer(pool, &key, seg.size_bytes).await?;
        if footer.start_pos != seg.start_pos || footer.end_pos != seg.end_pos {
            return Err(corrupt(
                &key,
                SegmentError::Corrupt("range differs from the catalog"),
            ));
        }
        let mut out: Vec<Vec<u8>> = Vec::new();
        let mut pos = from;
        let Some(mut bi) = footer.block_for(pos) else {
            return Ok(out);
        };
        let to = to.min(seg.end_pos);
        let mut full = false;
        while pos < to && bi < footer.blocks.len() && !full {
            let b = footer.blocks[bi];
            let bytes = self
                .read_range(
                    pool,
                    &key,
                    seg.size_bytes,
                    b.offset..b.offset + b.len as u64,
                )
                .await?;
            let mut p = b.first_pos;
            segment::visit_block(&bytes, &b, |_key, data| {
                let this = p;
                p += 1;
                if this < pos {
                    return true;
                }
                if this >= to {
                    return false;
                }
                let allow_first = first && out.is_empty();
                if !allow_first && (max_records == 0 || data.len() > max_bytes) {
                    full = true;
                    return false;
                }
                max_records = max_records.saturating_sub(1);
                max_bytes = max_bytes.saturating_sub(data.len());
                out.push(data.to_vec());
                pos = this + 1;
                true
            })
            .map_err(|e| corrupt(&key, e))?;
            bi += 1;
        }
        Ok(out)
    }
}
