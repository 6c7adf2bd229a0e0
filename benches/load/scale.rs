//! Scale scenarios (issue 17), run by benches/scale.sh against this server in full mode:
//!
//! - `scale-streams`: creates `--streams` streams with one `--msg-bytes` message each
//!   (`--msg-bytes 0`: empty streams), reports creates/s and the server's RSS once they
//!   exist, waits until the server's `/metrics` show every stream sealed, uploaded and
//!   published, reports the RSS then, and measures the server's CPU over `--duration`
//!   seconds in which nothing is sent. A server still sealing after `--settle-max`
//!   seconds is reported with its sealing and upload rates instead, without an idle
//!   window.
//! - `scale-catchup`: fills one stream with `--messages` messages (JSON-array POSTs of
//!   `--batch`), optionally waits until its segments are uploaded (`--wait-uploaded`),
//!   then reads it from `offset=-1` page by page, verifying every message's sequence
//!   number, while the server's RSS is sampled every `--sample-secs` seconds.
//! - `scale-ingest`: `--concurrency` writers, each on its own connection and stream, send
//!   JSON-array POSTs of about `--body-bytes` paced together at `--rate-mb` MB/s for
//!   `--duration` seconds; every `--sample-secs` seconds a sampler records the achieved
//!   rate, the upload lag (from each stream's `_details`), the server's RSS and CPU, the
//!   client's CPU and the data disk's writes, and stops the run early when the data
//!   directory's file system has less than `--min-free-gb` free.
//!
//! `--trace FILE` writes every sample as a CSV line. Figures are measured, never judged:
//! nothing here compares a figure with a threshold except the free-space guard.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;

use crate::http::Conn;
use crate::measure::{proc_cpu_secs, proc_mem_kb, self_cpu_secs};
use crate::measure::{Phase, Snapshot};
use crate::report::Report;
use crate::scenarios::{
    body_text, check_page, connect_n, enc, join_all, page_next_offset, report_read, scrape, Ctx,
    JSON,
};

/// Writes one JSON message of `size` bytes (or its minimum):
/// `{"w":W,"seq":S,"pad":"…"}`. The padding is `x` repeated (`--pad x`, as the other
/// scenarios) or letters from a per-message pseudo-random sequence (`--pad random`), which
/// zstd cannot shrink to almost nothing the way it shrinks a run of `x`.
fn message(buf: &mut Vec<u8>, size: usize, w: usize, seq: u64, random: bool) {
    let start = buf.len();
    let _ = write!(buf, r#"{{"w":{w},"seq":{seq},"pad":""#);
    let n = size.saturating_sub(buf.len() - start + 2);
    if random {
        // xorshift64 seeded by the message's identity: reproducible, cheap.
        let mut x = seq
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(w as u64 + 1)
            | 1;
        for _ in 0..n {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            buf.push(b'a' + (x % 26) as u8);
        }
    } else {
        buf.resize(buf.len() + n, b'x');
    }
    buf.extend_from_slice(b"\"}");
}

fn random_pad(ctx: &Ctx) -> Result<bool> {
    match ctx.opts.pad.as_str() {
        "x" => Ok(false),
        "random" => Ok(true),
        p => bail!("--pad must be x or random (got {p})"),
    }
}

fn rss_kb(pid: Option<u32>) -> Option<u64> {
    pid.and_then(proc_mem_kb).map(|(rss, _)| rss)
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

/// Bytes available to an unprivileged user on the file system holding `path`.
fn free_bytes(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs writes into the zeroed struct; `c` is a valid C string.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    (rc == 0).then_some(st.f_bavail as u64 * st.f_frsize as u64)
}

/// The `/proc/diskstats` name of the block device holding `path` (a whole disk or a
/// partition), found by its device number.
fn disk_of(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::metadata(path).ok()?.dev();
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    let stats = std::fs::read_to_string("/proc/diskstats").ok()?;
    stats.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() > 13 && f[0].parse::<u32>().ok()? == major && f[1].parse::<u32>().ok()? == minor)
            .then(|| f[2].to_string())
    })
}

/// (bytes written, milliseconds the device was busy) since boot.
fn disk_counters(dev: &str) -> Option<(u64, u64)> {
    let stats = std::fs::read_to_string("/proc/diskstats").ok()?;
    stats.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() > 12 && f[2] == dev {
            Some((f[9].parse::<u64>().ok()? * 512, f[12].parse::<u64>().ok()?))
        } else {
            None
        }
    })
}

/// A CSV trace file (`--trace`), or nothing.
struct Trace(Option<std::fs::File>);

impl Trace {
    fn open(path: Option<&PathBuf>, header: &str) -> Result<Trace> {
        let Some(p) = path else {
            return Ok(Trace(None));
        };
        let mut f = std::fs::File::create(p).with_context(|| format!("--trace {}", p.display()))?;
        writeln!(f, "{header}")?;
        Ok(Trace(Some(f)))
    }

    fn line(&mut self, l: &str) {
        if let Some(f) = &mut self.0 {
            let _ = writeln!(f, "{l}");
        }
    }
}

fn check_free(ctx: &Ctx) -> Result<Option<u64>> {
    let Some(dir) = &ctx.opts.data_dir else {
        return Ok(None);
    };
    let free = free_bytes(dir);
    if let Some(f) = free {
        if (f as f64) < ctx.opts.min_free_gb * 1e9 {
            bail!(
                "stopped: {:.1} GB free on the data directory's file system, under --min-free-gb {}",
                f as f64 / 1e9,
                ctx.opts.min_free_gb
            );
        }
    }
    Ok(free)
}

/// `scale-streams`.
pub async fn streams(ctx: Arc<Ctx>, rep: &mut Report) -> Result<()> {
    let random = random_pad(&ctx)?;
    let n = ctx.opts.concurrency.max(1);
    let total = ctx.opts.streams;
    check_free(&ctx)?;
    let conns = connect_n(&ctx.target, n).await?;
    let next = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let a = Snapshot::take(ctx.pid());
    let t0 = Instant::now();
    let mut handles = Vec::new();
    for (w, mut conn) in conns.into_iter().enumerate() {
        let ctx = ctx.clone();
        let (next, done, stop) = (next.clone(), done.clone(), stop.clone());
        handles.push(tokio::spawn(async move {
            let mut body = Vec::new();
            let mut msg = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let path = ctx.target.stream_path(&ctx.name(&format!("s-{i}")));
                msg.clear();
                if ctx.opts.msg_bytes > 0 {
                    message(&mut msg, ctx.opts.msg_bytes, w, i, random);
                }
                let h = conn
                    .request("PUT", &path, Some(JSON), &msg, &mut body)
                    .await
                    .with_context(|| format!("PUT {path}"))?;
                if h.status != 201 {
                    bail!("PUT {path}: HTTP {} {}", h.status, body_text(&body));
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        }));
    }
    // Progress every 5 s on stderr, and the free-space guard.
    let progress = {
        let ctx = ctx.clone();
        let (done, stop) = (done.clone(), stop.clone());
        tokio::spawn(async move {
            let mut last = (0u64, Instant::now());
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                let d = done.load(Ordering::Relaxed);
                let rate = (d - last.0) as f64 / last.1.elapsed().as_secs_f64();
                last = (d, Instant::now());
                eprintln!(
                    "scale-streams: {d} created, {rate:.0}/s over the last 5 s, server RSS {:.1} MB",
                    rss_kb(ctx.pid()).map_or(f64::NAN, mb)
                );
                if let Err(e) = check_free(&ctx) {
                    eprintln!("scale-streams: {e}");
                    stop.store(true, Ordering::Relaxed);
                }
                if d >= total || stop.load(Ordering::Relaxed) {
                    break;
                }
            }
        })
    };
    let res = join_all(handles).await;
    stop.store(true, Ordering::Relaxed);
    let b = Snapshot::take(ctx.pid());
    progress.abort();
    res?;
    let created = done.load(Ordering::Relaxed);
    if created < total {
        bail!("created {created} of {total} streams (stopped by the free-space guard)");
    }
    let create_ph = Phase::between(a, b, created);
    rep.add("streams", "streams created", created as f64, None);
    rep.phase("creates", "creates", "create", &create_ph);
    if let Some(kb) = rss_kb(ctx.pid()) {
        rep.add(
            "rss_created_mb",
            "server RSS MB after the creates",
            mb(kb),
            Some("lower"),
        );
    }
    eprintln!(
        "scale-streams: {created} streams in {:.1} s ({:.0}/s); waiting for seal, upload and publish",
        t0.elapsed().as_secs_f64(),
        create_ph.rate()
    );

    // Settle: every stream sealed, uploaded and published (nothing to seal when the
    // streams are empty), the counters still for 5 s. Bounded by --settle-max: a server
    // still sealing then is reported as such, without an idle window.
    const NAMES: &[&str] = &[
        "ds_segments_sealed_total",
        "ds_uploads_total",
        "ds_segments_waiting",
        "ds_manifests_published_total",
    ];
    let expect = if ctx.opts.msg_bytes > 0 { created } else { 0 };
    let mut conn = Conn::connect(&ctx.target).await?;
    let settle_a = Snapshot::take(ctx.pid());
    let settle_start = Instant::now();
    let settle_max = Duration::from_secs_f64(ctx.opts.settle_max.max(1.0));
    let mut last: Option<(Vec<f64>, Instant)> = None;
    let mut last_log = Instant::now();
    let mut peak_settle_kb = 0u64;
    let mut first_seal: Option<Instant> = None;
    let settled = loop {
        let v = scrape(&mut conn, NAMES)
            .await?
            .ok_or_else(|| anyhow!("no /metrics: scale-streams needs this server"))?;
        peak_settle_kb = peak_settle_kb.max(rss_kb(ctx.pid()).unwrap_or(0));
        if v[0] > 0.0 && first_seal.is_none() {
            first_seal = Some(Instant::now());
        }
        let done =
            v[0] >= expect as f64 && v[1] >= v[0] && v[2] == 0.0 && (expect == 0 || v[3] > 0.0);
        let still = match &last {
            Some((prev, since)) if *prev == v => since.elapsed() >= Duration::from_secs(5),
            _ => {
                last = Some((v.clone(), Instant::now()));
                false
            }
        };
        if done && still {
            break true;
        }
        if last_log.elapsed() >= Duration::from_secs(15) {
            last_log = Instant::now();
            eprintln!(
                "scale-streams: settling {:.0} s: sealed {}, uploaded {}, waiting {}, manifests {}, server RSS {:.1} MB",
                settle_start.elapsed().as_secs_f64(),
                v[0],
                v[1],
                v[2],
                v[3],
                rss_kb(ctx.pid()).map_or(f64::NAN, mb)
            );
        }
        check_free(&ctx)?;
        if settle_start.elapsed() > settle_max {
            let settle_ph = Phase::between(settle_a, Snapshot::take(ctx.pid()), v[0] as u64);
            rep.note(format!(
                "not idle within --settle-max {:.0} s: {} of {created} streams sealed, {} segments uploaded, {} manifests published; no idle window",
                settle_max.as_secs_f64(),
                v[0],
                v[1],
                v[3]
            ));
            if let Some(f) = first_seal {
                let secs = f.elapsed().as_secs_f64();
                rep.add(
                    "seal_s_since_first",
                    "seconds since the first seal",
                    secs,
                    None,
                );
                rep.add(
                    "sealed_per_s",
                    "streams sealed per second since the first seal",
                    v[0] / secs.max(1e-9),
                    None,
                );
                rep.add(
                    "uploaded_per_s",
                    "segments uploaded per second since the first seal",
                    v[1] / secs.max(1e-9),
                    None,
                );
            }
            if let Some(pct) = settle_ph.server_cpu_pct() {
                rep.add(
                    "settle_server_cpu_pct",
                    "server CPU % of a core while settling",
                    pct,
                    None,
                );
            }
            break false;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    drop(conn);
    if peak_settle_kb > 0 {
        rep.add(
            "rss_settle_max_mb",
            "server RSS MB, most seen while settling (1 s samples)",
            mb(peak_settle_kb),
            None,
        );
    }
    if !settled {
        return Ok(());
    }
    rep.add(
        "settle_s",
        "seconds until sealed, uploaded and published",
        settle_start.elapsed().as_secs_f64(),
        None,
    );
    if let Some(kb) = rss_kb(ctx.pid()) {
        rep.add(
            "rss_idle_mb",
            "server RSS MB once idle",
            mb(kb),
            Some("lower"),
        );
    }
    crate::scenarios::idle_window(&ctx, rep).await;
    if let Some(kb) = rss_kb(ctx.pid()) {
        rep.add(
            "rss_idle_end_mb",
            "server RSS MB after the idle window",
            mb(kb),
            Some("lower"),
        );
    }
    Ok(())
}

/// A stream's positions and backlog from `GET …/{name}/_details`.
#[derive(Debug, Default, Clone, Copy)]
struct Tier {
    /// Entries in the stream.
    next: u64,
    /// Entries in segment files (sealed_through + 1).
    sealed: u64,
    /// Entries in uploaded segments covered by a published manifest.
    uploaded: u64,
    /// Payload bytes not in a segment yet.
    pending_bytes: u64,
    /// Bytes of sealed segment files not uploaded yet.
    sealed_waiting_bytes: u64,
}

fn num(v: &Value) -> Option<i64> {
    match v {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

async fn details(conn: &mut Conn, ctx: &Ctx, name: &str) -> Result<Tier> {
    let path = format!("{}/_details", ctx.target.stream_path(name));
    let mut body = Vec::new();
    let h = conn
        .request("GET", &path, None, &[], &mut body)
        .await
        .with_context(|| format!("GET {path}"))?;
    if h.status != 200 {
        bail!("GET {path}: HTTP {} {}", h.status, body_text(&body));
    }
    let v: Value = serde_json::from_slice(&body).with_context(|| format!("GET {path}: body"))?;
    let s = &v["stream"];
    let get = |v: &Value, what: &str| {
        num(v).ok_or_else(|| anyhow!("GET {path}: no number at {what} in {}", body_text(&body)))
    };
    let through = |x: i64| (x + 1).max(0) as u64;
    Ok(Tier {
        next: get(&s["next_offset"], "stream.next_offset")?.max(0) as u64,
        sealed: through(get(&s["sealed_through"], "stream.sealed_through")?),
        uploaded: through(get(&s["uploaded_through"], "stream.uploaded_through")?),
        pending_bytes: get(&s["pending_bytes"], "stream.pending_bytes")?.max(0) as u64,
        sealed_waiting_bytes: num(&v["storage"]["local_storage"]["pending_sealed_segment_bytes"])
            .unwrap_or(0)
            .max(0) as u64,
    })
}

/// (seconds since the start, phase, messages filled or read, bytes read, RSS KiB).
type RssSample = (f64, u64, u64, u64, u64);

/// `scale-catchup`.
pub async fn catchup(ctx: Arc<Ctx>, rep: &mut Report) -> Result<()> {
    let random = random_pad(&ctx)?;
    let name = ctx.name("catchup");
    let path = ctx.target.stream_path(&name);
    let mut conn = Conn::connect(&ctx.target).await?;
    crate::scenarios::create(&mut conn, &ctx.target, &name).await?;
    let mut trace = Trace::open(ctx.opts.trace.as_ref(), "t_s,phase,messages,bytes,rss_kb")?;
    let t0 = Instant::now();

    // Sampler: the server's RSS every --sample-secs, with the phase and progress.
    let phase = Arc::new(AtomicU64::new(0)); // 0 fill, 1 settle, 2 read, 3 done
    let progress = Arc::new(AtomicU64::new(0)); // messages filled / read
    let bytes_read = Arc::new(AtomicU64::new(0));
    let samples: Arc<Mutex<Vec<RssSample>>> = Arc::default();
    let sampler = {
        let ctx = ctx.clone();
        let (phase, progress, bytes_read, samples) = (
            phase.clone(),
            progress.clone(),
            bytes_read.clone(),
            samples.clone(),
        );
        tokio::spawn(async move {
            let every = Duration::from_secs_f64(ctx.opts.sample_secs.max(0.05));
            loop {
                let p = phase.load(Ordering::Relaxed);
                if p >= 3 {
                    break;
                }
                if let Some(kb) = rss_kb(ctx.pid()) {
                    samples.lock().unwrap().push((
                        t0.elapsed().as_secs_f64(),
                        p,
                        progress.load(Ordering::Relaxed),
                        bytes_read.load(Ordering::Relaxed),
                        kb,
                    ));
                }
                tokio::time::sleep(every).await;
            }
        })
    };

    // Fill, one batch at a time (so the stream's order is the sequence order).
    let total = ctx.opts.messages;
    let batch = ctx.opts.batch.max(1) as u64;
    let mut body = Vec::new();
    let mut req = Vec::new();
    let mut seq = 0u64;
    let fill_start = Snapshot::take(ctx.pid());
    let deadline = Instant::now() + ctx.duration();
    let mut last_log = Instant::now();
    while seq < total {
        if Instant::now() > deadline {
            bail!("fill stopped by --duration after {seq} of {total} messages");
        }
        let k = batch.min(total - seq);
        req.clear();
        req.push(b'[');
        for j in 0..k {
            if j > 0 {
                req.push(b',');
            }
            message(&mut req, ctx.opts.msg_bytes, 0, seq + j, random);
        }
        req.push(b']');
        let h = conn
            .request("POST", &path, Some(JSON), &req, &mut body)
            .await
            .with_context(|| format!("POST {path} (fill)"))?;
        if !h.ok() {
            bail!("POST {path} (fill): HTTP {} {}", h.status, body_text(&body));
        }
        seq += k;
        progress.store(seq, Ordering::Relaxed);
        if last_log.elapsed() >= Duration::from_secs(10) {
            last_log = Instant::now();
            eprintln!(
                "scale-catchup: filled {seq} of {total}, server RSS {:.1} MB",
                rss_kb(ctx.pid()).map_or(f64::NAN, mb)
            );
            check_free(&ctx)?;
        }
    }
    let fill = Phase::between(fill_start, Snapshot::take(ctx.pid()), seq);
    let fill_bytes = (total as f64) * ctx.opts.msg_bytes as f64;
    rep.add(
        "messages",
        "messages filled and verified",
        total as f64,
        None,
    );
    rep.phase("fill_msgs", "msgs filled", "msg filled", &fill);
    if fill.secs > 0.0 {
        rep.add(
            "fill_mb_per_s",
            "fill MB/s (message bytes)",
            fill_bytes / 1e6 / fill.secs,
            None,
        );
    }

    // Optionally wait until the stream's full segments are uploaded, so that the read
    // goes through segment files rather than SQLite rows.
    phase.store(1, Ordering::Relaxed);
    let mut tier = details(&mut conn, &ctx, &name).await?;
    if ctx.opts.wait_uploaded {
        let settle_start = Instant::now();
        let settle_max = Duration::from_secs_f64(ctx.opts.settle_max.max(1.0));
        loop {
            tier = details(&mut conn, &ctx, &name).await?;
            // Settled: what is sealed is uploaded, and what is not sealed is less than
            // a segment's worth (DS_SEGMENT_TARGET_ROWS by default) or nothing.
            if tier.uploaded == tier.sealed && tier.next - tier.sealed < 50_000 {
                break;
            }
            if settle_start.elapsed() > settle_max {
                bail!("segments not uploaded after {settle_max:?}: {tier:?}");
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        rep.add(
            "upload_wait_s",
            "seconds from the end of the fill until the segments were uploaded",
            settle_start.elapsed().as_secs_f64(),
            None,
        );
    }
    rep.note(format!(
        "at the start of the read: {} entries, {} in uploaded segments, {} sealed",
        tier.next, tier.uploaded, tier.sealed
    ));
    let rss_before = rss_kb(ctx.pid());

    // Read from the start, following Stream-Next-Offset until Stream-Up-To-Date; the next
    // request is sent before the current page is parsed.
    phase.store(2, Ordering::Relaxed);
    progress.store(0, Ordering::Relaxed);
    let read_start = Snapshot::take(ctx.pid());
    let deadline = Instant::now() + ctx.duration();
    let mut offset = "-1".to_string();
    let mut cur = Vec::new();
    let mut count = 0u64;
    let mut bytes = 0u64;
    let mut pages = 0u64;
    let mut max_page = 0usize;
    let mut read_end = None;
    let mut last_log = Instant::now();
    conn.send("GET", &format!("{path}?offset=-1"), None, &[])
        .await?;
    loop {
        let h = conn.recv(&mut cur).await.context("catch-up read")?;
        let no = page_next_offset(&h, &cur, &path, &offset)?;
        if !h.up_to_date {
            if no == offset {
                bail!("GET {path}?offset={offset}: not up to date, but the offset did not move");
            }
            if Instant::now() > deadline {
                bail!("catch-up read did not reach the tail within --duration ({count} of {total} messages read)");
            }
            conn.send("GET", &format!("{path}?offset={}", enc(&no)), None, &[])
                .await?;
        } else {
            read_end = Some(Snapshot::take(ctx.pid()));
        }
        pages += 1;
        bytes += cur.len() as u64;
        max_page = max_page.max(cur.len());
        count += check_page(&cur, &offset, count)?;
        progress.store(count, Ordering::Relaxed);
        bytes_read.store(bytes, Ordering::Relaxed);
        offset = no;
        if last_log.elapsed() >= Duration::from_secs(5) {
            last_log = Instant::now();
            eprintln!(
                "scale-catchup: read {count} of {total}, server RSS {:.1} MB",
                rss_kb(ctx.pid()).map_or(f64::NAN, mb)
            );
        }
        if h.up_to_date {
            if count != total {
                bail!("catch-up read returned {count} messages, {total} were appended");
            }
            break;
        }
    }
    let read_end = read_end.unwrap_or_else(|| Snapshot::take(ctx.pid()));
    let read = Phase::between(read_start, read_end, count);
    let rss_after = rss_kb(ctx.pid());
    phase.store(3, Ordering::Relaxed);
    let _ = sampler.await;

    rep.add("pages", "pages read", pages as f64, None);
    rep.add(
        "page_kb_avg",
        "average page KB",
        bytes as f64 / 1024.0 / pages.max(1) as f64,
        None,
    );
    rep.add(
        "page_kb_max",
        "largest page KB",
        max_page as f64 / 1024.0,
        None,
    );
    report_read(rep, bytes, &read);

    let samples = samples.lock().unwrap().clone();
    for (t, p, m, b, kb) in &samples {
        let ph = ["fill", "settle", "read"][(*p as usize).min(2)];
        trace.line(&format!("{t:.2},{ph},{m},{b},{kb}"));
    }
    let in_phase = |p: u64| samples.iter().filter(move |s| s.1 == p);
    let fill_max = in_phase(0).map(|s| s.4).max();
    let read_kb: Vec<(u64, u64)> = in_phase(2).map(|s| (s.2, s.4)).collect();
    if let Some(kb) = fill_max {
        rep.add(
            "rss_fill_max_mb",
            "server RSS MB, most seen during the fill",
            mb(kb),
            None,
        );
    }
    if let Some(kb) = rss_before {
        rep.add(
            "rss_read_start_mb",
            "server RSS MB before the read",
            mb(kb),
            None,
        );
    }
    if let Some(max) = read_kb.iter().map(|s| s.1).max() {
        rep.add(
            "rss_read_max_mb",
            "server RSS MB, most seen during the read",
            mb(max),
            Some("lower"),
        );
        rep.add(
            "rss_read_samples",
            "RSS samples during the read",
            read_kb.len() as f64,
            None,
        );
    }
    if let Some(kb) = rss_after {
        rep.add(
            "rss_read_end_mb",
            "server RSS MB after the read",
            mb(kb),
            None,
        );
    }
    // The trace in tenths of the read: (messages read, RSS MB).
    if !read_kb.is_empty() {
        let mut s = String::from("RSS during the read (messages read → MB):");
        let n = read_kb.len();
        for k in 0..=10usize {
            let (m, kb) = read_kb[(k * (n - 1)) / 10];
            let _ = write!(s, " {m}→{:.1}", mb(kb));
        }
        rep.note(s);
    }
    Ok(())
}

/// One `scale-ingest` sample: what changed since the previous one.
struct Sample {
    t: f64,
    mb_per_s: f64,
    lag_entries: u64,
    lag_sealed_entries: u64,
    pending_mb: f64,
    sealed_waiting_mb: f64,
    rss_kb: u64,
    server_cpu_pct: f64,
    client_cpu_pct: f64,
    server_write_mb_per_s: f64,
    disk_write_mb_per_s: f64,
    disk_busy_pct: f64,
    /// Per core: (busy %, iowait %) from /proc/stat, every process.
    cores: Vec<(f64, f64)>,
    commit_ms_avg: f64,
    segments_waiting: f64,
    free_gb: f64,
}

/// Bytes the process caused to be written to storage (`write_bytes` of
/// `/proc/<pid>/io`).
fn proc_write_bytes(pid: u32) -> Option<u64> {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    io.lines()
        .find_map(|l| l.strip_prefix("write_bytes:"))
        .and_then(|v| v.trim().parse().ok())
}

/// Per core: (busy, iowait, total) jiffies from `/proc/stat`.
fn core_jiffies() -> Vec<(u64, u64, u64)> {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else {
        return Vec::new();
    };
    stat.lines()
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .map(|l| {
            let v: Vec<u64> = l
                .split_whitespace()
                .skip(1)
                .filter_map(|x| x.parse().ok())
                .collect();
            let total: u64 = v.iter().take(8).sum();
            let idle = v.get(3).copied().unwrap_or(0);
            let iowait = v.get(4).copied().unwrap_or(0);
            (total - idle - iowait, iowait, total)
        })
        .collect()
}

/// The counters a sample is the difference of.
struct Counters {
    at: Instant,
    sent: u64,
    server_cpu: f64,
    client_cpu: f64,
    server_write: u64,
    disk: (u64, u64),
    cores: Vec<(u64, u64, u64)>,
    metrics: Vec<f64>,
}

/// `scale-ingest`.
pub async fn ingest(ctx: Arc<Ctx>, rep: &mut Report) -> Result<()> {
    let random = random_pad(&ctx)?;
    let n = ctx.opts.concurrency.max(1);
    let rate = ctx.opts.rate_mb.max(0.001) * 1e6; // bytes/s, all writers together
    let per_msg = ctx.opts.msg_bytes.max(1) + 1;
    let per_body = (ctx.opts.body_bytes / per_msg).max(1) as u64;
    let names: Vec<String> = (0..n).map(|i| ctx.name(&format!("ingest-{i}"))).collect();
    let mut conn = Conn::connect(&ctx.target).await?;
    for name in &names {
        crate::scenarios::create(&mut conn, &ctx.target, name).await?;
    }
    let free0 = check_free(&ctx)?;
    let dev = ctx.opts.data_dir.as_deref().and_then(disk_of);
    let mut trace = Trace::open(
        ctx.opts.trace.as_ref(),
        "t_s,mb_per_s,lag_entries,lag_sealed_entries,pending_mb,sealed_waiting_mb,rss_kb,\
         server_cpu_pct,client_cpu_pct,server_write_mb_per_s,disk_write_mb_per_s,disk_busy_pct,\
         commit_ms_avg,segments_waiting,free_gb,cores_busy_iowait_pct",
    )?;

    let conns = connect_n(&ctx.target, n).await?;
    let sent = Arc::new(AtomicU64::new(0)); // body bytes acknowledged
    let entries = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let late = Arc::new(AtomicU64::new(0));
    let start = Snapshot::take(ctx.pid());
    let t0 = Instant::now();
    let deadline = t0 + ctx.duration();
    let mut handles = Vec::new();
    for (w, mut conn) in conns.into_iter().enumerate() {
        let ctx = ctx.clone();
        let path = ctx.target.stream_path(&names[w]);
        let (sent, entries, stop, late) =
            (sent.clone(), entries.clone(), stop.clone(), late.clone());
        handles.push(tokio::spawn(async move {
            let share = rate / n as f64; // this writer's bytes/s
            let mut mine = 0f64; // bytes this writer sent
            let stagger = w as f64 / n as f64 * (ctx.opts.body_bytes as f64 / share);
            let mut req = Vec::with_capacity(ctx.opts.body_bytes + 1024);
            let mut body = Vec::new();
            let mut seq = 0u64;
            let mut requests = 0u64;
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                let due = t0 + Duration::from_secs_f64(stagger + mine / share);
                let now = Instant::now();
                if due > now {
                    tokio::time::sleep_until(due.into()).await;
                } else if now - due > Duration::from_millis(100) {
                    late.fetch_add(1, Ordering::Relaxed);
                }
                req.clear();
                req.push(b'[');
                for j in 0..per_body {
                    if j > 0 {
                        req.push(b',');
                    }
                    message(&mut req, ctx.opts.msg_bytes, w, seq + j, random);
                }
                req.push(b']');
                let h = conn
                    .request("POST", &path, Some(JSON), &req, &mut body)
                    .await
                    .with_context(|| format!("POST {path}"))?;
                if !h.ok() {
                    bail!("POST {path}: HTTP {} {}", h.status, body_text(&body));
                }
                seq += per_body;
                requests += 1;
                mine += req.len() as f64;
                sent.fetch_add(req.len() as u64, Ordering::Relaxed);
                entries.fetch_add(per_body, Ordering::Relaxed);
            }
            Ok((seq, requests))
        }));
    }

    // Sampler, on its own connection; also the free-space guard.
    let every = Duration::from_secs_f64(ctx.opts.sample_secs.max(0.5));
    let mut samples: Vec<Sample> = Vec::new();
    let mut stopped_why: Option<String> = None;
    const NAMES: &[&str] = &[
        "ds_segments_waiting",
        "ds_ingest_commit_seconds_sum",
        "ds_ingest_commit_seconds_count",
    ];
    let take = |sent: u64, metrics: Vec<f64>| Counters {
        at: Instant::now(),
        sent,
        server_cpu: ctx.pid().and_then(proc_cpu_secs).unwrap_or(0.0),
        client_cpu: self_cpu_secs(),
        server_write: ctx.pid().and_then(proc_write_bytes).unwrap_or(0),
        disk: dev.as_deref().and_then(disk_counters).unwrap_or((0, 0)),
        cores: core_jiffies(),
        metrics,
    };
    let mut prev = take(0, scrape(&mut conn, NAMES).await?.unwrap_or_default());
    let mut next_tick = t0 + every;
    loop {
        // The last sample is the one at the deadline; later ones would be partly idle.
        if handles.iter().all(|h| h.is_finished()) || next_tick > deadline + every / 2 {
            break;
        }
        tokio::time::sleep_until(next_tick.into()).await;
        next_tick += every;
        let m = scrape(&mut conn, NAMES).await?.unwrap_or_default();
        let cur = take(sent.load(Ordering::Relaxed), m);
        let mut tiers = Vec::with_capacity(n);
        for name in &names {
            tiers.push(details(&mut conn, &ctx, name).await?);
        }
        let free = ctx.opts.data_dir.as_deref().and_then(free_bytes);
        let dt = cur.at.duration_since(prev.at).as_secs_f64();
        let get = |v: &Vec<f64>, i: usize| v.get(i).copied().unwrap_or(0.0);
        let commits = get(&cur.metrics, 2) - get(&prev.metrics, 2);
        let sample = Sample {
            t: cur.at.duration_since(t0).as_secs_f64(),
            mb_per_s: (cur.sent - prev.sent) as f64 / 1e6 / dt,
            lag_entries: tiers.iter().map(|t| t.next - t.uploaded).sum(),
            lag_sealed_entries: tiers.iter().map(|t| t.sealed - t.uploaded).sum(),
            pending_mb: tiers.iter().map(|t| t.pending_bytes).sum::<u64>() as f64 / 1e6,
            sealed_waiting_mb: tiers.iter().map(|t| t.sealed_waiting_bytes).sum::<u64>() as f64
                / 1e6,
            rss_kb: rss_kb(ctx.pid()).unwrap_or(0),
            server_cpu_pct: (cur.server_cpu - prev.server_cpu) * 100.0 / dt,
            client_cpu_pct: (cur.client_cpu - prev.client_cpu) * 100.0 / dt,
            server_write_mb_per_s: cur.server_write.saturating_sub(prev.server_write) as f64
                / 1e6
                / dt,
            disk_write_mb_per_s: cur.disk.0.saturating_sub(prev.disk.0) as f64 / 1e6 / dt,
            disk_busy_pct: cur.disk.1.saturating_sub(prev.disk.1) as f64 / 10.0 / dt,
            cores: cur
                .cores
                .iter()
                .zip(&prev.cores)
                .map(|(c, p)| {
                    let total = c.2.saturating_sub(p.2).max(1) as f64;
                    (
                        c.0.saturating_sub(p.0) as f64 * 100.0 / total,
                        c.1.saturating_sub(p.1) as f64 * 100.0 / total,
                    )
                })
                .collect(),
            commit_ms_avg: if commits > 0.0 {
                (get(&cur.metrics, 1) - get(&prev.metrics, 1)) * 1e3 / commits
            } else {
                0.0
            },
            segments_waiting: get(&cur.metrics, 0),
            free_gb: free.map_or(f64::NAN, |f| f as f64 / 1e9),
        };
        let cores: Vec<String> = sample
            .cores
            .iter()
            .map(|(b, w)| format!("{b:.0}/{w:.0}"))
            .collect();
        eprintln!(
            "scale-ingest {:6.1}s: {:6.1} MB/s, lag {} entries ({} sealed, not uploaded), RSS {:.1} MB, server CPU {:.0}%, client CPU {:.0}%, cores busy/iowait {} %, server writes {:.0} MB/s, disk {:.0} MB/s busy {:.0}%, commit {:.2} ms, free {:.1} GB",
            sample.t,
            sample.mb_per_s,
            sample.lag_entries,
            sample.lag_sealed_entries,
            mb(sample.rss_kb),
            sample.server_cpu_pct,
            sample.client_cpu_pct,
            cores.join(" "),
            sample.server_write_mb_per_s,
            sample.disk_write_mb_per_s,
            sample.disk_busy_pct,
            sample.commit_ms_avg,
            sample.free_gb
        );
        trace.line(&format!(
            "{:.2},{:.2},{},{},{:.2},{:.2},{},{:.1},{:.1},{:.1},{:.1},{:.1},{:.3},{},{:.2},{}",
            sample.t,
            sample.mb_per_s,
            sample.lag_entries,
            sample.lag_sealed_entries,
            sample.pending_mb,
            sample.sealed_waiting_mb,
            sample.rss_kb,
            sample.server_cpu_pct,
            sample.client_cpu_pct,
            sample.server_write_mb_per_s,
            sample.disk_write_mb_per_s,
            sample.disk_busy_pct,
            sample.commit_ms_avg,
            sample.segments_waiting,
            sample.free_gb,
            cores.join(" ")
        ));
        samples.push(sample);
        prev = cur;
        if let Err(e) = check_free(&ctx) {
            stopped_why = Some(format!("{e:#}"));
            stop.store(true, Ordering::Relaxed);
        }
    }
    let results = join_all(handles).await?;
    let end = Snapshot::take(ctx.pid());
    let acked_entries = entries.load(Ordering::Relaxed);
    let acked_bytes = sent.load(Ordering::Relaxed);
    let ph = Phase::between(start, end, acked_entries);

    // Every acknowledged entry is in its stream.
    for (name, (seq, _)) in names.iter().zip(&results) {
        let t = details(&mut conn, &ctx, name).await?;
        if t.next != *seq {
            bail!("stream {name}: {} entries, {seq} were acknowledged", t.next);
        }
    }

    // Drain: until every sealed segment is uploaded and less than a segment's worth per
    // stream is unsealed (the rest waits for DS_SEGMENT_MAX_INTERVAL_MS).
    let drain_start = Instant::now();
    let settle_max = Duration::from_secs_f64(ctx.opts.settle_max.max(1.0));
    let drained = loop {
        let mut tiers = Vec::with_capacity(n);
        for name in &names {
            tiers.push(details(&mut conn, &ctx, name).await?);
        }
        if tiers
            .iter()
            .all(|t| t.uploaded == t.sealed && t.next - t.sealed < 50_000)
        {
            break Some(drain_start.elapsed().as_secs_f64());
        }
        if drain_start.elapsed() > settle_max {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };

    // Report.
    rep.add(
        "writers",
        "writers (connections, one stream each)",
        n as f64,
        None,
    );
    rep.add(
        "target_mb_per_s",
        "target MB/s (request bodies)",
        rate / 1e6,
        None,
    );
    rep.add(
        "body_kb",
        "request body KB",
        (per_body as usize * per_msg) as f64 / 1024.0,
        None,
    );
    rep.add(
        "entries_per_body",
        "messages per request",
        per_body as f64,
        None,
    );
    rep.add("run_s", "seconds of ingest", ph.secs, None);
    rep.add(
        "achieved_mb_per_s",
        "achieved MB/s (acknowledged bodies, whole run)",
        acked_bytes as f64 / 1e6 / ph.secs.max(1e-9),
        Some("higher"),
    );
    rep.add(
        "acked_gb",
        "GB acknowledged",
        acked_bytes as f64 / 1e9,
        None,
    );
    rep.phase("msgs", "msgs", "msg", &ph);
    let mut rates: Vec<f64> = samples.iter().map(|s| s.mb_per_s).collect();
    rates.sort_by(f64::total_cmp);
    if !rates.is_empty() {
        rep.add(
            "sample_mb_per_s_min",
            "MB/s, slowest sample",
            rates[0],
            None,
        );
        rep.add(
            "sample_mb_per_s_median",
            "MB/s, median sample",
            rates[rates.len() / 2],
            None,
        );
        let lag_max = samples.iter().map(|s| s.lag_entries).max().unwrap_or(0);
        let sealed_max = samples
            .iter()
            .map(|s| s.lag_sealed_entries)
            .max()
            .unwrap_or(0);
        let third = samples.len() / 3;
        let mean = |v: &[Sample]| {
            v.iter().map(|s| s.lag_entries as f64).sum::<f64>() / v.len().max(1) as f64
        };
        rep.add(
            "lag_entries_max",
            "upload lag, most entries",
            lag_max as f64,
            Some("lower"),
        );
        rep.add(
            "lag_mb_max",
            "upload lag, most MB (entries × message size)",
            lag_max as f64 * ctx.opts.msg_bytes as f64 / 1e6,
            Some("lower"),
        );
        rep.add(
            "lag_sealed_entries_max",
            "sealed but not uploaded, most entries",
            sealed_max as f64,
            None,
        );
        if third > 0 {
            rep.add(
                "lag_entries_mean_mid",
                "upload lag, mean entries (middle third)",
                mean(&samples[third..2 * third]),
                None,
            );
            rep.add(
                "lag_entries_mean_last",
                "upload lag, mean entries (last third)",
                mean(&samples[2 * third..]),
                None,
            );
        }
        let avg =
            |f: &dyn Fn(&Sample) -> f64| samples.iter().map(f).sum::<f64>() / samples.len() as f64;
        rep.add(
            "server_cpu_pct_avg",
            "server CPU % of a core (mean of samples)",
            avg(&|s| s.server_cpu_pct),
            None,
        );
        rep.add(
            "client_cpu_pct_avg",
            "client CPU % of a core (mean of samples)",
            avg(&|s| s.client_cpu_pct),
            None,
        );
        if dev.is_some() {
            rep.add(
                "disk_write_mb_per_s_avg",
                "disk writes MB/s (mean of samples)",
                avg(&|s| s.disk_write_mb_per_s),
                None,
            );
            rep.add(
                "disk_busy_pct_avg",
                "disk busy % (mean of samples)",
                avg(&|s| s.disk_busy_pct),
                None,
            );
        }
        rep.add(
            "server_write_mb_per_s_avg",
            "server storage writes MB/s (/proc/<pid>/io, mean of samples)",
            avg(&|s| s.server_write_mb_per_s),
            None,
        );
        let ncores = samples.iter().map(|s| s.cores.len()).min().unwrap_or(0);
        for c in 0..ncores {
            rep.add(
                &format!("core{c}_busy_pct_avg"),
                &format!("core {c} busy %, every process (mean of samples)"),
                avg(&|s| s.cores[c].0),
                None,
            );
            rep.add(
                &format!("core{c}_iowait_pct_avg"),
                &format!("core {c} iowait % (mean of samples)"),
                avg(&|s| s.cores[c].1),
                None,
            );
        }
        rep.add(
            "commit_ms_avg",
            "group commit ms (mean of samples)",
            avg(&|s| s.commit_ms_avg),
            None,
        );
        let rss_max = samples.iter().map(|s| s.rss_kb).max().unwrap_or(0);
        rep.add(
            "rss_max_mb",
            "server RSS MB, most sampled",
            mb(rss_max),
            Some("lower"),
        );
    }
    match drained {
        Some(s) => rep.add(
            "drain_s",
            "seconds after the run until uploads caught up",
            s,
            None,
        ),
        None => rep.note(format!(
            "uploads had not caught up {settle_max:?} after the run"
        )),
    }
    if let (Some(a), Some(b)) = (free0, ctx.opts.data_dir.as_deref().and_then(free_bytes)) {
        // Other processes share the file system, so this is a note, not a figure.
        rep.note(format!(
            "free space on the data directory's file system: {:.1} GB before, {:.1} GB after",
            a as f64 / 1e9,
            b as f64 / 1e9
        ));
    }
    let late = late.load(Ordering::Relaxed);
    if late > 0 {
        rep.note(format!(
            "{late} requests were sent more than 100 ms after their due time (the writers could not keep the pace)"
        ));
    }
    if let Some(d) = &dev {
        rep.note(format!(
            "disk figures from /proc/diskstats device {d} (all writers on it, not only the server)"
        ));
    }
    if let Some(why) = stopped_why {
        rep.note(why);
    }
    Ok(())
}
