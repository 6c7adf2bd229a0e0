//! Keyed reads (routing keys, this server's Prisma extension; benches/keyed.sh runs them).
//!
//! - `keyed-fill`: creates the JSON stream `--stream` and appends `--messages` messages of
//!   `--msg-bytes` bytes under `--keys` routing keys. `Stream-Key` applies to every entry
//!   of a request, so every POST carries `--batch` messages of one key: batch `j` (in
//!   append order) has key `j mod keys`, round-robin, so a key's entries lie in runs of
//!   `--batch` that are `keys × batch` positions apart. `--concurrency` connections take
//!   the batches in order. With `--wait-uploaded --db PATH` it then waits until the
//!   server's SQLite (opened read-only) has every entry in uploaded segments.
//! - `keyed-read`: on a stream filled that way, measures
//!   1. cold keyed reads: `--sample-keys` keys spread evenly over the key space, each
//!      read from `offset=-1` to the tail (`/pk/{key}`, following `Stream-Next-Offset`
//!      until `Stream-Up-To-Date`), the page cache of the files under `--evict-dir`
//!      dropped before each read;
//!   2. warm keyed reads: one untimed pass over the same keys (the cold reads left only
//!      the last one cached), then `--read-passes` (default 3) timed passes;
//!   3. reads of a key that no entry has;
//!   4. whole-stream reads without a key (one cold, then warm);
//!   5. `_routing_keys` listings of all keys (`limit=500` pages; one cold, then warm).
//!
//!   Every read is verified: a keyed read must return exactly its key's messages (their
//!   per-key sequence numbers `0..count`, nothing of another key), a whole-stream read
//!   every message, a listing every key in byte order. With `--db` and `--objects-dir`
//!   it then opens the stream's segment files and counts, with the server's own segment
//!   code, how many blocks a keyed read of each sampled key decompresses (its block
//!   filter says "maybe") and how many really hold the key.
//! - `evict-cache --evict-dir D`: drops the page cache of every file under D.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::http::Conn;
use crate::measure::{Phase, Snapshot};
use crate::report::Report;
use crate::scenarios::{body_text, connect_n, create, enc, join_all, scrape, Ctx, JSON};

/// How a stream's messages are spread over keys (see the module comment).
#[derive(Clone, Copy, Debug)]
struct Layout {
    messages: u64,
    keys: u64,
    batch: u64,
}

impl Layout {
    fn new(ctx: &Ctx) -> Result<Layout> {
        let l = Layout {
            messages: ctx.opts.messages,
            keys: ctx.opts.keys,
            batch: ctx.opts.batch as u64,
        };
        if l.messages == 0 || l.keys == 0 || l.batch == 0 {
            bail!("--messages, --keys and --batch must be positive");
        }
        let total: u64 = (0..l.keys).map(|k| l.count_of(k)).sum();
        if total != l.messages {
            bail!(
                "layout: the keys' counts add up to {total}, not {}",
                l.messages
            );
        }
        Ok(l)
    }

    fn batches(&self) -> u64 {
        self.messages.div_ceil(self.batch)
    }

    fn batch_len(&self, j: u64) -> u64 {
        self.batch.min(self.messages - j * self.batch)
    }

    /// Messages with key `k`: batches `k, k + keys, …` (the last batch may be short).
    fn count_of(&self, k: u64) -> u64 {
        let nb = self.batches();
        if k >= nb {
            return 0;
        }
        let runs = (nb - 1 - k) / self.keys + 1;
        let mut c = runs * self.batch;
        if (nb - 1) % self.keys == k {
            c -= self.batch - self.batch_len(nb - 1);
        }
        c
    }

    /// Keys with at least one message.
    fn used_keys(&self) -> u64 {
        self.keys.min(self.batches())
    }

    /// The body of batch `j`: a JSON array of `batch_len(j)` messages
    /// `{"k":KEY,"n":N,"pad":"3f9a…"}` of `size` bytes each, `N` counting the key's
    /// messages from 0. The padding is pseudo-random hex digits (the same for every run),
    /// so blocks compress about as much as typical JSON does (about 2×), not 50× as a
    /// run of one letter would: the bytes a keyed read fetches stay realistic.
    fn batch_body(&self, j: u64, size: usize, out: &mut Vec<u8>) {
        use std::io::Write;
        let key = key_name(j % self.keys);
        let first_n = (j / self.keys) * self.batch;
        out.clear();
        out.push(b'[');
        for i in 0..self.batch_len(j) {
            if i > 0 {
                out.push(b',');
            }
            let start = out.len();
            let _ = write!(out, r#"{{"k":"{key}","n":{},"pad":""#, first_n + i);
            let used = out.len() - start + 2;
            let mut state = (j << 24) ^ i;
            let mut bits = 0u64;
            for c in 0..size.saturating_sub(used) {
                if c % 16 == 0 {
                    bits = splitmix64(&mut state);
                }
                out.push(b"0123456789abcdef"[(bits >> (4 * (c % 16))) as usize & 15]);
            }
            out.extend_from_slice(b"\"}");
        }
        out.push(b']');
    }
}

/// SplitMix64: the next pseudo-random number of `state`.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The routing key of key number `i`: fixed width, so byte order is numeric order.
fn key_name(i: u64) -> String {
    format!("key-{i:05}")
}

/// A key no message has.
const ABSENT_KEY: &str = "absent-key";

/// `n` key numbers spread evenly over `[0, keys)`, none at the very start.
fn sample_keys(keys: u64, n: u64) -> Vec<u64> {
    let n = n.clamp(1, keys);
    let step = keys / n;
    (0..n).map(|i| i * step + step / 2).collect()
}

fn stream_name(ctx: &Ctx) -> String {
    ctx.opts.stream.clone().unwrap_or_else(|| ctx.name("keyed"))
}

/// `keyed-fill`.
pub async fn fill(ctx: Arc<Ctx>, rep: &mut Report) -> Result<()> {
    let layout = Layout::new(&ctx)?;
    let name = stream_name(&ctx);
    let path = ctx.target.stream_path(&name);
    let mut conn = Conn::connect(&ctx.target).await?;
    create(&mut conn, &ctx.target, &name).await?;
    rep.note(format!("stream {name}"));
    let n = ctx.opts.concurrency.max(1);
    let conns = connect_n(&ctx.target, n).await?;
    let next = Arc::new(AtomicU64::new(0));
    let start = Snapshot::take(ctx.pid());
    let deadline = Instant::now() + ctx.duration();
    let mut handles = Vec::new();
    for mut conn in conns {
        let (ctx, next, path) = (ctx.clone(), next.clone(), path.clone());
        handles.push(tokio::spawn(async move {
            let mut req = Vec::new();
            let mut body = Vec::new();
            let mut sent = 0u64;
            loop {
                let j = next.fetch_add(1, Ordering::Relaxed);
                if j >= layout.batches() {
                    break;
                }
                if Instant::now() > deadline {
                    bail!("the fill did not finish within --duration (batch {j})");
                }
                let key = key_name(j % layout.keys);
                layout.batch_body(j, ctx.opts.msg_bytes, &mut req);
                conn.send_with("POST", &path, Some(JSON), &[("Stream-Key", &key)], &req)
                    .await
                    .with_context(|| format!("POST {path}"))?;
                let h = conn.recv(&mut body).await.context("POST response")?;
                if !h.ok() {
                    bail!("POST {path}: HTTP {} {}", h.status, body_text(&body));
                }
                sent += layout.batch_len(j);
            }
            Ok(sent)
        }));
    }
    let sent: u64 = join_all(handles).await?.into_iter().sum();
    let fill = Phase::between(start, Snapshot::take(ctx.pid()), sent);
    rep.add("messages", "messages appended", sent as f64, None);
    rep.add("keys", "routing keys", layout.used_keys() as f64, None);
    rep.add(
        "batch",
        "messages per POST (one key each)",
        layout.batch as f64,
        None,
    );
    rep.phase("fill_msgs", "msgs filled", "msg filled", &fill);
    rep.add(
        "fill_posts_per_s",
        "POSTs/s (fill)",
        layout.batches() as f64 / fill.secs.max(1e-9),
        Some("higher"),
    );

    if ctx.opts.wait_uploaded {
        let db = ctx
            .opts
            .db
            .as_deref()
            .ok_or_else(|| anyhow!("--wait-uploaded needs --db"))?;
        let t = Instant::now();
        let patience = Duration::from_secs_f64(ctx.opts.settle_max.max(1.0));
        loop {
            let row = stream_row(db, &name)?;
            if row.as_ref().is_some_and(|r| r.uploaded_pos >= sent) {
                break;
            }
            if t.elapsed() > patience {
                bail!("not uploaded after {patience:?}: {row:?}");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        rep.add(
            "upload_wait_s",
            "seconds from the last append until all entries were in uploaded segments",
            t.elapsed().as_secs_f64(),
            None,
        );
    }
    if let Some(db) = &ctx.opts.db {
        if !ctx.opts.wait_uploaded {
            // Let the writer move the last appends from its ingest log into `entries`.
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        storage(db, &name, rep)?;
    }
    Ok(())
}

#[derive(Debug)]
#[allow(dead_code)] // fields are printed with {:?}
struct StreamRow {
    id: i64,
    incarnation: String,
    next_pos: u64,
    sealed_pos: u64,
    uploaded_pos: u64,
}

fn open_db(db: &Path) -> Result<rusqlite::Connection> {
    let c = rusqlite::Connection::open_with_flags(
        db,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("open {} read-only", db.display()))?;
    c.busy_timeout(Duration::from_secs(5))?;
    Ok(c)
}

fn stream_row(db: &Path, name: &str) -> Result<Option<StreamRow>> {
    use rusqlite::OptionalExtension;
    let c = open_db(db)?;
    Ok(c.query_row(
        "SELECT id, incarnation, next_pos, sealed_pos, uploaded_pos FROM streams WHERE name = ?1",
        [name],
        |r| {
            Ok(StreamRow {
                id: r.get(0)?,
                incarnation: r.get(1)?,
                next_pos: r.get::<_, i64>(2)? as u64,
                sealed_pos: r.get::<_, i64>(3)? as u64,
                uploaded_pos: r.get::<_, i64>(4)? as u64,
            })
        },
    )
    .optional()?)
}

/// Where the stream's entries are: segments, blocks, bytes, rows left in SQLite.
fn storage(db: &Path, name: &str, rep: &mut Report) -> Result<()> {
    let row = stream_row(db, name)?.ok_or_else(|| anyhow!("no stream {name} in {db:?}"))?;
    let c = open_db(db)?;
    let (segs, bytes, blocks): (i64, i64, i64) = c.query_row(
        "SELECT count(*), coalesce(sum(size_bytes), 0), coalesce(sum(block_count), 0) \
         FROM segments WHERE stream_id = ?1",
        [row.id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let rows: i64 = c.query_row(
        "SELECT count(*) FROM entries WHERE stream_id = ?1",
        [row.id],
        |r| r.get(0),
    )?;
    let keys: i64 = c.query_row(
        "SELECT count(*) FROM stream_keys WHERE stream_id = ?1",
        [row.id],
        |r| r.get(0),
    )?;
    rep.add("segments", "segments", segs as f64, None);
    rep.add("blocks", "blocks in those segments", blocks as f64, None);
    rep.add("segment_mb", "segment bytes (MB)", bytes as f64 / 1e6, None);
    rep.add(
        "sqlite_rows",
        "entries rows left in SQLite",
        rows as f64,
        None,
    );
    rep.add(
        "stream_keys",
        "keys recorded in stream_keys",
        keys as f64,
        None,
    );
    rep.note(format!(
        "stream row: next_pos {}, sealed_pos {}, uploaded_pos {}",
        row.next_pos, row.sealed_pos, row.uploaded_pos
    ));
    Ok(())
}

/// Drops the page cache of every regular file under `dir` (`posix_fadvise(DONTNEED)`:
/// clean pages only, no privileges needed). Returns (files, bytes).
pub fn evict_dir(dir: &Path) -> Result<(u64, u64)> {
    use std::os::fd::AsRawFd;
    let mut stack = vec![dir.to_path_buf()];
    let (mut files, mut bytes) = (0, 0);
    while let Some(d) = stack.pop() {
        let rd = std::fs::read_dir(&d).with_context(|| format!("read_dir {}", d.display()))?;
        for e in rd.flatten() {
            let Ok(ft) = e.file_type() else { continue };
            let p = e.path();
            if ft.is_dir() {
                stack.push(p);
            } else if ft.is_file() {
                // A file may vanish meanwhile (a SQLite journal, an evicted segment).
                let Ok(f) = std::fs::File::open(&p) else {
                    continue;
                };
                // SAFETY: a valid open descriptor; the call only advises the kernel.
                unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
                files += 1;
                bytes += f.metadata().map(|m| m.len()).unwrap_or(0);
            }
        }
    }
    Ok((files, bytes))
}

/// One whole read: wall time to the last byte of the last page, and what came back.
struct Read {
    secs: f64,
    pages: u64,
    msgs: u64,
    bytes: u64,
}

#[derive(Deserialize)]
struct KeyedMsg {
    k: String,
    n: u64,
}

/// Reads key `k` from the start to the tail and checks that exactly its messages came.
async fn read_key(conn: &mut Conn, base: &str, key: &str, expect: u64) -> Result<Read> {
    let path = format!("{base}/pk/{}", enc(key));
    let mut offset = "-1".to_string();
    let mut pages = Vec::new();
    let t = Instant::now();
    let secs = loop {
        let mut body = Vec::new();
        let url = format!("{path}?offset={}", enc(&offset));
        let h = conn
            .request("GET", &url, None, &[], &mut body)
            .await
            .with_context(|| format!("GET {url}"))?;
        if h.status != 200 {
            bail!("GET {url}: HTTP {} {}", h.status, body_text(&body));
        }
        let no = h
            .next_offset
            .ok_or_else(|| anyhow!("GET {url}: no Stream-Next-Offset"))?;
        pages.push(body);
        if h.up_to_date {
            break t.elapsed().as_secs_f64();
        }
        if no == offset {
            bail!("GET {url}: not up to date, but the offset did not move");
        }
        offset = no;
    };
    let mut seen = Vec::with_capacity(expect as usize);
    let mut bytes = 0;
    for p in &pages {
        bytes += p.len() as u64;
        let msgs: Vec<KeyedMsg> =
            serde_json::from_slice(p).context("a keyed page is not a JSON array")?;
        for m in msgs {
            if m.k != key {
                bail!("a read of key {key} returned a message of key {}", m.k);
            }
            seen.push(m.n);
        }
    }
    seen.sort_unstable();
    let got = seen.len() as u64;
    if got != expect || seen.iter().enumerate().any(|(i, n)| *n != i as u64) {
        bail!("a read of key {key} returned {got} messages, {expect} expected (or some twice)");
    }
    Ok(Read {
        secs,
        pages: pages.len() as u64,
        msgs: got,
        bytes,
    })
}

/// Reads the whole stream without a key (pipelined: the next page is asked for before
/// this one is parsed) and checks the message count.
async fn read_all(conn: &mut Conn, base: &str, expect: u64) -> Result<Read> {
    let mut offset = "-1".to_string();
    let (mut pages, mut msgs, mut bytes) = (0u64, 0u64, 0u64);
    let mut body = Vec::new();
    let t = Instant::now();
    conn.send("GET", &format!("{base}?offset=-1"), None, &[])
        .await?;
    let secs = loop {
        let h = conn.recv(&mut body).await.context("whole-stream read")?;
        if h.status != 200 {
            bail!(
                "GET {base}?offset={offset}: HTTP {} {}",
                h.status,
                body_text(&body)
            );
        }
        let no = h
            .next_offset
            .ok_or_else(|| anyhow!("GET {base}: no Stream-Next-Offset"))?;
        let done = h.up_to_date;
        let at_end = t.elapsed().as_secs_f64();
        if !done {
            if no == offset {
                bail!("GET {base}?offset={offset}: not up to date, but the offset did not move");
            }
            conn.send("GET", &format!("{base}?offset={}", enc(&no)), None, &[])
                .await?;
        }
        pages += 1;
        bytes += body.len() as u64;
        let items: Vec<&RawValue> =
            serde_json::from_slice(&body).context("a page is not a JSON array")?;
        msgs += items.len() as u64;
        offset = no;
        if done {
            break at_end;
        }
    };
    if msgs != expect {
        bail!("a whole-stream read returned {msgs} messages, {expect} were appended");
    }
    Ok(Read {
        secs,
        pages,
        msgs,
        bytes,
    })
}

#[derive(Deserialize)]
struct KeyPage {
    keys: Vec<String>,
    next_after: Option<String>,
}

/// Lists every routing key (`limit=500` pages following `next_after`); (secs, requests,
/// keys).
async fn list_keys(conn: &mut Conn, base: &str) -> Result<(f64, u64, Vec<String>)> {
    let mut after: Option<String> = None;
    let mut keys = Vec::new();
    let mut requests = 0;
    let mut body = Vec::new();
    let t = Instant::now();
    loop {
        let url = match &after {
            None => format!("{base}/_routing_keys?limit=500"),
            Some(a) => format!("{base}/_routing_keys?limit=500&after={}", enc(a)),
        };
        let h = conn
            .request("GET", &url, None, &[], &mut body)
            .await
            .with_context(|| format!("GET {url}"))?;
        requests += 1;
        if h.status != 200 {
            bail!("GET {url}: HTTP {} {}", h.status, body_text(&body));
        }
        let page: KeyPage = serde_json::from_slice(&body).context("a key page")?;
        keys.extend(page.keys);
        match page.next_after {
            Some(a) => after = Some(a),
            None => break,
        }
    }
    Ok((t.elapsed().as_secs_f64(), requests, keys))
}

/// The server's count of object-store GETs (ranged or not), if it has `/metrics`.
async fn store_gets(conn: &mut Conn) -> Result<Option<f64>> {
    Ok(scrape(conn, &["ds_objectstore_requests_total{op=\"get\"}"])
        .await?
        .map(|v| v[0]))
}

/// Adds p50, p90 and max of `ms` (nearest rank).
fn dist(rep: &mut Report, key: &str, what: &str, ms: &mut [f64]) {
    if ms.is_empty() {
        return;
    }
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((q * ms.len() as f64).ceil() as usize).clamp(1, ms.len()) - 1];
    rep.add(
        &format!("{key}_p50_ms"),
        &format!("{what} p50 ms"),
        at(0.5),
        Some("lower"),
    );
    rep.add(
        &format!("{key}_p90_ms"),
        &format!("{what} p90 ms"),
        at(0.9),
        Some("lower"),
    );
    rep.add(
        &format!("{key}_max_ms"),
        &format!("{what} max ms"),
        ms[ms.len() - 1],
        Some("lower"),
    );
}

/// Server CPU milliseconds per operation over a phase, if known.
fn cpu_per_op(rep: &mut Report, key: &str, what: &str, ph: &Phase) {
    if let Some(us) = ph.server_us_per_op() {
        rep.add(
            key,
            &format!("server CPU ms per {what}"),
            us / 1e3,
            Some("lower"),
        );
    }
}

/// `keyed-read`.
pub async fn read(ctx: Arc<Ctx>, rep: &mut Report) -> Result<()> {
    let layout = Layout::new(&ctx)?;
    let name = ctx
        .opts
        .stream
        .clone()
        .ok_or_else(|| anyhow!("keyed-read needs --stream (the stream keyed-fill filled)"))?;
    let base = ctx.target.stream_path(&name);
    let sample = sample_keys(layout.keys, ctx.opts.sample_keys);
    let passes = match ctx.opts.read_passes {
        0 => 3,
        n => n,
    };
    let evict = ctx.opts.evict_dir.clone();
    let evict_now = |d: &Option<PathBuf>| -> Result<()> {
        if let Some(d) = d {
            evict_dir(d)?;
        }
        Ok(())
    };
    let mut conn = Conn::connect(&ctx.target).await?;
    rep.add(
        "sample_keys",
        "keys read (spread over the key space)",
        sample.len() as f64,
        None,
    );
    rep.add(
        "msgs_per_key",
        "messages per key (mean)",
        sample.iter().map(|k| layout.count_of(*k)).sum::<u64>() as f64 / sample.len() as f64,
        None,
    );
    if evict.is_none() {
        rep.note("no --evict-dir: the cold reads ran with a warm page cache");
    }

    // 1. Cold keyed reads: page cache dropped before each.
    let mut cold = Vec::new();
    let mut cold_pages = 0;
    let mut cold_cpu = 0.0;
    for &k in &sample {
        evict_now(&evict)?;
        let a = Snapshot::take(ctx.pid());
        let r = read_key(&mut conn, &base, &key_name(k), layout.count_of(k)).await?;
        let ph = Phase::between(a, Snapshot::take(ctx.pid()), 1);
        cold_cpu += ph.server_cpu_secs.unwrap_or(0.0);
        cold.push(r.secs * 1e3);
        cold_pages += r.pages;
    }
    rep.add(
        "keyed_first_ms",
        "first keyed read after the restart ms",
        cold[0],
        Some("lower"),
    );
    dist(rep, "keyed_cold", "keyed read, cold", &mut cold);
    if ctx.pid().is_some() {
        rep.add(
            "keyed_cold_server_cpu_ms",
            "server CPU ms per keyed read, cold",
            cold_cpu * 1e3 / sample.len() as f64,
            Some("lower"),
        );
    }
    rep.add(
        "keyed_pages",
        "pages (requests) per keyed read",
        cold_pages as f64 / sample.len() as f64,
        None,
    );

    // 2. Warm keyed reads. Each cold read dropped the page cache, so after them only the
    // last key's pages are cached: one untimed pass warms every sampled key first.
    for &k in &sample {
        read_key(&mut conn, &base, &key_name(k), layout.count_of(k)).await?;
    }
    let mut warm = Vec::new();
    let gets_before = store_gets(&mut conn).await?;
    let a = Snapshot::take(ctx.pid());
    for _ in 0..passes {
        for &k in &sample {
            let r = read_key(&mut conn, &base, &key_name(k), layout.count_of(k)).await?;
            warm.push(r.secs * 1e3);
        }
    }
    let ph = Phase::between(a, Snapshot::take(ctx.pid()), warm.len() as u64);
    if let (Some(x), Some(y)) = (gets_before, store_gets(&mut conn).await?) {
        rep.add(
            "keyed_store_gets",
            "object-store GETs per warm keyed read",
            (y - x) / warm.len() as f64,
            None,
        );
    }
    rep.add(
        "keyed_warm_reads",
        "warm keyed reads (passes × keys)",
        warm.len() as f64,
        None,
    );
    dist(rep, "keyed_warm", "keyed read, warm", &mut warm);
    cpu_per_op(rep, "keyed_warm_server_cpu_ms", "warm keyed read", &ph);

    // 3. A key no message has.
    let mut absent = Vec::new();
    for _ in 0..5 {
        absent.push(read_key(&mut conn, &base, ABSENT_KEY, 0).await?.secs * 1e3);
    }
    dist(rep, "absent", "read of an absent key, warm", &mut absent);

    // 4. The whole stream without a key.
    evict_now(&evict)?;
    let r = read_all(&mut conn, &base, layout.messages).await?;
    rep.add(
        "all_cold_ms",
        "whole-stream read (no key), cold ms",
        r.secs * 1e3,
        Some("lower"),
    );
    let mut all = Vec::new();
    let (mut pages, mut mb) = (r.pages, 0.0);
    let a = Snapshot::take(ctx.pid());
    for _ in 0..passes {
        let r = read_all(&mut conn, &base, layout.messages).await?;
        all.push(r.secs * 1e3);
        pages = r.pages;
        mb = r.bytes as f64 / 1e6;
        debug_assert_eq!(r.msgs, layout.messages);
    }
    let ph = Phase::between(a, Snapshot::take(ctx.pid()), passes);
    dist(
        rep,
        "all_warm",
        "whole-stream read (no key), warm",
        &mut all,
    );
    rep.add(
        "all_pages",
        "pages per whole-stream read",
        pages as f64,
        None,
    );
    rep.add("all_mb", "MB per whole-stream read", mb, None);
    cpu_per_op(rep, "all_warm_server_cpu_ms", "warm whole-stream read", &ph);

    // 5. Listing every key.
    let want: Vec<String> = (0..layout.used_keys()).map(key_name).collect();
    let check = |keys: &[String]| -> Result<()> {
        if keys != want.as_slice() {
            bail!(
                "_routing_keys listed {} keys (first {:?}), {} in byte order expected",
                keys.len(),
                keys.first(),
                want.len()
            );
        }
        Ok(())
    };
    evict_now(&evict)?;
    let (secs, requests, keys) = list_keys(&mut conn, &base).await?;
    check(&keys)?;
    rep.add(
        "list_cold_ms",
        "_routing_keys listing of all keys, cold ms",
        secs * 1e3,
        Some("lower"),
    );
    rep.add(
        "list_requests",
        "requests per listing (limit=500)",
        requests as f64,
        None,
    );
    let mut lists = Vec::new();
    for _ in 0..20 {
        let (secs, _, keys) = list_keys(&mut conn, &base).await?;
        check(&keys)?;
        lists.push(secs * 1e3);
    }
    dist(rep, "list_warm", "_routing_keys listing, warm", &mut lists);

    if let (Some(db), Some(objects)) = (&ctx.opts.db, &ctx.opts.objects_dir) {
        blocks(db, objects, &name, &sample, rep)?;
    }
    Ok(())
}

/// Counts, from the stream's segment files and with the server's own segment code, the
/// blocks a keyed read of each sampled key decompresses (its filter says "maybe") and
/// the blocks that really hold the key.
fn blocks(db: &Path, objects: &Path, name: &str, sample: &[u64], rep: &mut Report) -> Result<()> {
    use prisma_streams::engine::segment::{self, filter};
    use std::collections::HashSet;

    let row = stream_row(db, name)?.ok_or_else(|| anyhow!("no stream {name}"))?;
    let c = open_db(db)?;
    let mut stmt =
        c.prepare("SELECT seg_index FROM segments WHERE stream_id = ?1 ORDER BY seg_index")?;
    let segs: Vec<i64> = stmt
        .query_map([row.id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    if segs.is_empty() {
        rep.note("no segments: every keyed read ran on SQLite");
        return Ok(());
    }
    let keys: Vec<Vec<u8>> = sample.iter().map(|k| key_name(*k).into_bytes()).collect();
    let (mut blocks, mut block_bytes, mut keys_in_blocks) = (0u64, 0u64, 0u64);
    let mut maybe = vec![0u64; keys.len()];
    let mut holds = vec![0u64; keys.len()];
    let mut absent_maybe = 0u64;
    for index in segs {
        let p = objects
            .join("streams")
            .join(&row.incarnation)
            .join("segments")
            .join(format!("{index:016}.seg"));
        let bytes = std::fs::read(&p).with_context(|| format!("read {}", p.display()))?;
        let (footer, _) = segment::decode_all(&bytes).map_err(|e| anyhow!("{p:?}: {e}"))?;
        for b in &footer.blocks {
            let blk = &bytes[b.offset as usize..(b.offset + b.len as u64) as usize];
            let f = segment::checked_filter(blk, b).map_err(|e| anyhow!("{p:?}: {e}"))?;
            let mut present = HashSet::new();
            segment::visit_block(blk, b, |k, _, _| {
                if let Some(k) = k {
                    if !present.contains(k) {
                        present.insert(k.to_vec());
                    }
                }
                true
            })
            .map_err(|e| anyhow!("{p:?}: {e}"))?;
            blocks += 1;
            block_bytes += b.len as u64;
            keys_in_blocks += present.len() as u64;
            for (i, k) in keys.iter().enumerate() {
                maybe[i] += filter::might_contain(f, k) as u64;
                holds[i] += present.contains(k.as_slice()) as u64;
            }
            absent_maybe += filter::might_contain(f, ABSENT_KEY.as_bytes()) as u64;
        }
    }
    let n = keys.len() as f64;
    let mean = |v: &[u64]| v.iter().sum::<u64>() as f64 / n;
    rep.add("blk_total", "blocks in the stream", blocks as f64, None);
    rep.add(
        "blk_keys",
        "distinct keys per block (mean)",
        keys_in_blocks as f64 / blocks as f64,
        None,
    );
    rep.add(
        "blk_read_mb",
        "block bytes a keyed read fetches and checksums (all blocks), MB",
        block_bytes as f64 / 1e6,
        None,
    );
    rep.add(
        "blk_maybe",
        "blocks a keyed read decompresses (filter says maybe), mean per key",
        mean(&maybe),
        None,
    );
    rep.add(
        "blk_holds",
        "blocks that hold the key, mean per key",
        mean(&holds),
        None,
    );
    let fp = maybe.iter().zip(&holds).map(|(m, h)| m - h).sum::<u64>() as f64;
    let negatives = blocks as f64 * n - holds.iter().sum::<u64>() as f64;
    if negatives > 0.0 {
        rep.add(
            "blk_fp_pct",
            "filter false positives, % of blocks without the key",
            fp * 100.0 / negatives,
            None,
        );
    }
    rep.add(
        "blk_absent_maybe",
        "blocks decompressed for an absent key",
        absent_maybe as f64,
        None,
    );
    if maybe.iter().zip(&holds).any(|(m, h)| m < h) {
        bail!("a block filter said no for a key its block holds (a false negative)");
    }
    Ok(())
}
