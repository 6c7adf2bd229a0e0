//! The scenarios. Each creates its own streams (names carry a per-run id), measures one
//! or more phases, and adds its figures to a `Report`. Every loop is bounded by both
//! `--duration` and a count.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::http::{Conn, Target};
use crate::measure::{Phase, Samples, Snapshot};
use crate::report::Report;
use crate::Opts;

pub(crate) const JSON: &str = "application/json";

pub struct Ctx {
    pub target: Target,
    pub opts: Opts,
    pub run_id: String,
    t0: Instant,
}

impl Ctx {
    pub fn new(target: Target, opts: Opts) -> Ctx {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Ctx {
            target,
            opts,
            run_id: format!("{}-{}", secs % 1_000_000, std::process::id()),
            t0: Instant::now(),
        }
    }

    /// Microseconds since this process started measuring; embedded in messages so that a
    /// reader in the same process can compute append-to-delivery latency.
    fn now_us(&self) -> u64 {
        self.t0.elapsed().as_micros() as u64
    }

    pub(crate) fn name(&self, what: &str) -> String {
        format!("bench-{}-{}", self.run_id, what)
    }

    pub(crate) fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.opts.duration.max(0.001))
    }

    pub(crate) fn pid(&self) -> Option<u32> {
        self.opts.server_pid
    }
}

/// Writes one JSON message of exactly `size` bytes (or its minimum, if `size` is less):
/// `{"w":W,"seq":S,"t":T,"pad":"xxx…"}`.
fn message_into(buf: &mut Vec<u8>, size: usize, w: usize, seq: u64, t: u64) {
    use std::io::Write;
    let start = buf.len();
    let _ = write!(buf, r#"{{"w":{w},"seq":{seq},"t":{t},"pad":""#);
    let used = buf.len() - start + 2;
    buf.resize(buf.len() + size.saturating_sub(used), b'x');
    buf.extend_from_slice(b"\"}");
}

#[derive(Deserialize)]
struct Msg {
    #[serde(default)]
    seq: u64,
    #[serde(default)]
    t: u64,
    #[serde(default)]
    end: bool,
}

#[derive(Deserialize)]
struct SeqOnly {
    seq: u64,
}

/// The `Stream-Next-Offset` of a catch-up page read at `offset` (an error unless it is a
/// 200 with one).
pub(crate) fn page_next_offset(
    h: &crate::http::Head,
    page: &[u8],
    path: &str,
    offset: &str,
) -> Result<String> {
    if h.status != 200 {
        bail!(
            "GET {path}?offset={offset}: HTTP {} {}",
            h.status,
            body_text(page)
        );
    }
    h.next_offset
        .clone()
        .ok_or_else(|| anyhow!("GET {path}: no Stream-Next-Offset"))
}

/// Reports a verified catch-up read: `bytes` of response bodies over the `read` phase.
pub(crate) fn report_read(rep: &mut Report, bytes: u64, read: &Phase) {
    if read.secs > 0.0 {
        rep.add(
            "read_mb_per_s",
            "read MB/s (response bodies)",
            bytes as f64 / 1e6 / read.secs,
            Some("higher"),
        );
    }
    rep.phase("read_msgs", "msgs read", "msg read", read);
}

/// Checks a catch-up page read at `offset` (a JSON array of messages whose `seq` must
/// continue from `count`, none lost, duplicated or reordered); returns its length.
pub(crate) fn check_page(page: &[u8], offset: &str, count: u64) -> Result<u64> {
    let items: Vec<&RawValue> = serde_json::from_slice(page)
        .with_context(|| format!("page at offset {offset} is not a JSON array"))?;
    if let (Some(first), Some(last)) = (items.first(), items.last()) {
        let f: SeqOnly = serde_json::from_str(first.get())?;
        let l: SeqOnly = serde_json::from_str(last.get())?;
        if f.seq != count || l.seq != count + items.len() as u64 - 1 {
            bail!(
                "page at offset {offset}: messages {}..={} where {}..={} were expected (lost, duplicated or reordered)",
                f.seq,
                l.seq,
                count,
                count + items.len() as u64 - 1
            );
        }
    }
    Ok(items.len() as u64)
}

/// Percent-encodes an offset for a query string (offsets are normally URL-safe).
pub(crate) fn enc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            o.push(b as char);
        } else {
            o.push_str(&format!("%{b:02X}"));
        }
    }
    o
}

pub(crate) fn body_text(b: &[u8]) -> String {
    String::from_utf8_lossy(&b[..b.len().min(200)]).into_owned()
}

pub(crate) async fn create(conn: &mut Conn, target: &Target, name: &str) -> Result<()> {
    let path = target.stream_path(name);
    let mut body = Vec::new();
    let h = conn
        .request("PUT", &path, Some(JSON), &[], &mut body)
        .await
        .with_context(|| format!("PUT {path}"))?;
    if h.status != 201 && h.status != 200 {
        bail!("PUT {path}: HTTP {} {}", h.status, body_text(&body));
    }
    Ok(())
}

/// Takes one unit from a shared count budget.
fn take_one(budget: &AtomicU64) -> bool {
    budget
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| v.checked_sub(1))
        .is_ok()
}

pub(crate) async fn connect_n(target: &Target, n: usize) -> Result<Vec<Conn>> {
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        v.push(
            Conn::connect(target)
                .await
                .with_context(|| format!("connect {}", target.addr))?,
        );
    }
    Ok(v)
}

pub(crate) async fn join_all<T>(
    handles: Vec<tokio::task::JoinHandle<Result<T>>>,
) -> Result<Vec<T>> {
    let mut out = Vec::with_capacity(handles.len());
    let mut first_err = None;
    for h in handles {
        match h.await {
            Ok(Ok(v)) => out.push(v),
            Ok(Err(e)) => {
                first_err.get_or_insert(e);
            }
            Err(e) => {
                first_err.get_or_insert(anyhow!("task panicked: {e}"));
            }
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// `append-own` / `append-shared`: N closed-loop writers appending one message per POST.
pub async fn append(ctx: Arc<Ctx>, shared: bool, rep: &mut Report) -> Result<()> {
    let n = ctx.opts.concurrency.max(1);
    let names: Vec<String> = if shared {
        vec![ctx.name("shared")]
    } else {
        (0..n).map(|i| ctx.name(&format!("own-{i}"))).collect()
    };
    let mut c = Conn::connect(&ctx.target).await?;
    for name in &names {
        create(&mut c, &ctx.target, name).await?;
    }
    let conns = connect_n(&ctx.target, n).await?;
    let budget = Arc::new(AtomicU64::new(ctx.opts.count));
    let start = Snapshot::take(ctx.pid());
    let deadline = Instant::now() + ctx.duration();
    let mut handles = Vec::new();
    for (i, mut conn) in conns.into_iter().enumerate() {
        let path = ctx.target.stream_path(&names[if shared { 0 } else { i }]);
        let ctx = ctx.clone();
        let budget = budget.clone();
        handles.push(tokio::spawn(async move {
            let mut lat = Samples::default();
            let mut msg = Vec::with_capacity(ctx.opts.msg_bytes + 64);
            let mut body = Vec::new();
            let mut seq = 0u64;
            while Instant::now() < deadline && take_one(&budget) {
                msg.clear();
                message_into(&mut msg, ctx.opts.msg_bytes, i, seq, ctx.now_us());
                let t = Instant::now();
                let h = conn
                    .request("POST", &path, Some(JSON), &msg, &mut body)
                    .await
                    .with_context(|| format!("POST {path}"))?;
                if !h.ok() {
                    bail!("POST {path}: HTTP {} {}", h.status, body_text(&body));
                }
                lat.push(t.elapsed().as_nanos() as u64);
                seq += 1;
            }
            Ok(lat)
        }));
    }
    let results = join_all(handles).await;
    let end = Snapshot::take(ctx.pid());
    let mut lat = Samples::default();
    for s in results? {
        lat.extend(s);
    }
    let ph = Phase::between(start, end, lat.len() as u64);
    rep.add("writers", "writers (connections)", n as f64, None);
    rep.add("appends", "appends acknowledged", ph.ops as f64, None);
    rep.phase("appends", "appends", "append", &ph);
    rep.latency("append", "append latency", &mut lat);
    Ok(())
}

/// `catchup`: fill one stream with `--messages` messages in JSON-array batches, then read
/// it from the start to the tail and verify the message count and order.
pub async fn catchup(ctx: Arc<Ctx>, rep: &mut Report) -> Result<()> {
    let name = ctx.name("catchup");
    let path = ctx.target.stream_path(&name);
    let mut conn = Conn::connect(&ctx.target).await?;
    create(&mut conn, &ctx.target, &name).await?;

    // Fill, one batch at a time (so the stream's order is the sequence order).
    let total = ctx.opts.messages;
    let batch = ctx.opts.batch.max(1) as u64;
    let mut body = Vec::new();
    let mut req = Vec::new();
    let mut seq = 0u64;
    let fill_start = Snapshot::take(ctx.pid());
    let deadline = Instant::now() + ctx.duration();
    while seq < total && Instant::now() < deadline {
        let k = batch.min(total - seq);
        req.clear();
        req.push(b'[');
        for j in 0..k {
            if j > 0 {
                req.push(b',');
            }
            message_into(&mut req, ctx.opts.msg_bytes, 0, seq + j, 0);
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
    }
    let fill = Phase::between(fill_start, Snapshot::take(ctx.pid()), seq);
    let filled = seq;
    if filled < total {
        rep.note(format!(
            "fill stopped by --duration after {filled} of {total} messages"
        ));
    }

    // Read from the start, following Stream-Next-Offset until Stream-Up-To-Date, and
    // verify every pass. The next request (the next page, or offset=-1 for another pass)
    // is sent before the current page is parsed, so parsing overlaps the server's work.
    // Passes repeat until --read-passes, or (by default) until 2 s of reading, so that
    // a fast server's phase is long enough for its CPU time to be measured.
    let read_start = Snapshot::take(ctx.pid());
    let t_read = Instant::now();
    let deadline = t_read + ctx.duration();
    let min_read = Duration::from_secs(2).min(ctx.duration());
    let max_passes = match ctx.opts.read_passes {
        0 => 50,
        n => n,
    };
    let mut offset = "-1".to_string();
    let mut cur = Vec::new();
    let mut count = 0u64; // in this pass
    let mut total = 0u64;
    let mut bytes = 0u64;
    let mut pages = 0u64;
    let mut passes = 0u64;
    let mut read_end = None;
    conn.send("GET", &format!("{path}?offset=-1"), None, &[])
        .await?;
    loop {
        let h = conn.recv(&mut cur).await.context("catch-up read")?;
        let no = page_next_offset(&h, &cur, &path, &offset)?;
        let another = h.up_to_date
            && passes + 1 < max_passes
            && (ctx.opts.read_passes > 0 || t_read.elapsed() < min_read)
            && Instant::now() < deadline;
        if !h.up_to_date {
            if no == offset {
                bail!("GET {path}?offset={offset}: not up to date, but the offset did not move");
            }
            if Instant::now() > deadline {
                bail!(
                    "catch-up read did not reach the tail within --duration ({count} of {filled} messages read)"
                );
            }
            conn.send("GET", &format!("{path}?offset={}", enc(&no)), None, &[])
                .await?;
        } else if another {
            conn.send("GET", &format!("{path}?offset=-1"), None, &[])
                .await?;
        } else {
            // The clock stops at the last byte: parsing the last page (all of the
            // stream, for a server that answers in one page) is client work only.
            read_end = Some(Snapshot::take(ctx.pid()));
        }
        pages += 1;
        bytes += cur.len() as u64;
        count += check_page(&cur, &offset, count)?;
        offset = no;
        if h.up_to_date {
            if count != filled {
                bail!(
                    "catch-up read (pass {}) returned {count} messages, {filled} were appended",
                    passes + 1
                );
            }
            passes += 1;
            total += count;
            count = 0;
            offset = "-1".to_string();
            if !another {
                break;
            }
        }
    }
    let read_end = read_end.unwrap_or_else(|| Snapshot::take(ctx.pid()));
    let read = Phase::between(read_start, read_end, total);
    rep.add(
        "messages",
        "messages filled and verified",
        filled as f64,
        None,
    );
    rep.add("passes", "read passes (each verified)", passes as f64, None);
    rep.add(
        "pages",
        "pages per pass",
        pages as f64 / passes.max(1) as f64,
        None,
    );
    report_read(rep, bytes, &read);
    rep.phase("fill_msgs", "msgs filled", "msg filled", &fill);
    Ok(())
}

/// `latency` (one reader) and `fanout` (`--readers` readers): long-poll readers on one
/// stream and a writer paced at `--rate`; append-to-delivery latency from the send time
/// embedded in every message.
pub async fn live(ctx: Arc<Ctx>, readers: usize, rep: &mut Report) -> Result<()> {
    let name = ctx.name(if readers == 1 { "latency" } else { "fanout" });
    let path = ctx.target.stream_path(&name);
    let mut wconn = Conn::connect(&ctx.target).await?;
    create(&mut wconn, &ctx.target, &name).await?;
    let rate = ctx.opts.rate.max(0.001);
    let planned = ((rate * ctx.opts.duration).ceil() as u64)
        .min(ctx.opts.count)
        .max(1);

    let conns = connect_n(&ctx.target, readers).await?;
    let mut handles = Vec::new();
    for (r, mut conn) in conns.into_iter().enumerate() {
        let ctx = ctx.clone();
        let path = path.clone();
        handles.push(tokio::spawn(async move {
            let mut lat = Samples::default();
            let mut body = Vec::new();
            let mut offset = "-1".to_string();
            let mut expect = 0u64;
            loop {
                let url = format!("{path}?offset={}&live=long-poll", enc(&offset));
                let h = conn
                    .request("GET", &url, None, &[], &mut body)
                    .await
                    .with_context(|| format!("reader {r}: GET {url}"))?;
                match h.status {
                    200 => {
                        let now = ctx.now_us();
                        let msgs: Vec<Msg> = serde_json::from_slice(&body)
                            .with_context(|| format!("reader {r}: body is not a JSON array"))?;
                        let mut done = false;
                        for m in msgs {
                            if m.end {
                                done = true;
                                break;
                            }
                            if m.seq != expect {
                                bail!(
                                    "reader {r}: GET offset={offset} returned message {} where {expect} was expected (lost, duplicated or reordered; Stream-Next-Offset {:?})",
                                    m.seq,
                                    h.next_offset
                                );
                            }
                            expect += 1;
                            lat.push(now.saturating_sub(m.t) * 1000);
                        }
                        offset = h
                            .next_offset
                            .ok_or_else(|| anyhow!("reader {r}: no Stream-Next-Offset"))?;
                        if done {
                            return Ok((lat, expect));
                        }
                    }
                    204 => {
                        if let Some(o) = h.next_offset {
                            offset = o;
                        }
                    }
                    s => bail!("reader {r}: GET {url}: HTTP {s} {}", body_text(&body)),
                }
            }
        }));
    }
    // Let every reader's first long-poll reach the server and park.
    tokio::time::sleep(Duration::from_millis(300 + 5 * readers as u64)).await;

    let start = Snapshot::take(ctx.pid());
    let t_start = Instant::now();
    let stop_at = t_start + ctx.duration();
    let mut alat = Samples::default();
    let mut msg = Vec::new();
    let mut body = Vec::new();
    let mut sent = 0u64;
    let mut behind = 0u64;
    while sent < planned {
        let due = t_start + Duration::from_secs_f64(sent as f64 / rate);
        let now = Instant::now();
        if now >= stop_at {
            break;
        }
        if due > now {
            tokio::time::sleep_until(due.into()).await;
        } else if now - due > Duration::from_millis(10) {
            behind += 1;
        }
        msg.clear();
        message_into(&mut msg, ctx.opts.msg_bytes, 0, sent, ctx.now_us());
        let t = Instant::now();
        let h = wconn
            .request("POST", &path, Some(JSON), &msg, &mut body)
            .await
            .context("writer POST")?;
        if !h.ok() {
            bail!("writer POST {path}: HTTP {} {}", h.status, body_text(&body));
        }
        alat.push(t.elapsed().as_nanos() as u64);
        sent += 1;
    }
    let h = wconn
        .request(
            "POST",
            &path,
            Some(JSON),
            format!(r#"{{"end":true,"seq":{sent},"t":0}}"#).as_bytes(),
            &mut body,
        )
        .await
        .context("writer POST (end marker)")?;
    if !h.ok() {
        bail!("writer POST {path} (end marker): HTTP {}", h.status);
    }
    let results = tokio::time::timeout(Duration::from_secs(40), join_all(handles))
        .await
        .map_err(|_| {
            anyhow!("readers did not see the end marker within 40 s of the last append")
        })?;
    let end = Snapshot::take(ctx.pid());
    let mut lat = Samples::default();
    let mut delivered = 0u64;
    let mut short = Vec::new();
    for (r, (s, got)) in results?.into_iter().enumerate() {
        if got != sent {
            short.push(format!("reader {r} got {got}"));
        }
        delivered += got;
        lat.extend(s);
    }
    let ph = Phase::between(start, end, sent);
    rep.add("readers", "long-poll readers", readers as f64, None);
    rep.add("appends", "appends (paced)", sent as f64, None);
    rep.add(
        "deliveries",
        "deliveries (messages × readers)",
        delivered as f64,
        None,
    );
    rep.latency("delivery", "delivery latency", &mut lat);
    rep.latency("append", "append latency", &mut alat);
    rep.phase("appends", "appends", "append", &ph);
    if let Some(c) = ph.server_cpu_secs.filter(|_| delivered > 0) {
        rep.add(
            "delivery_server_cpu_us",
            "server CPU µs per delivery",
            c * 1e6 / delivered as f64,
            Some("lower"),
        );
    }
    if behind > sent / 10 {
        rep.note(format!(
            "the writer fell behind its {rate}/s pace for {behind} of {sent} appends"
        ));
    }
    if !short.is_empty() {
        bail!(
            "{} of {readers} readers missed messages ({sent} sent): {}",
            short.len(),
            short.join(", ")
        );
    }
    Ok(())
}

/// `many`: create `--streams` streams with `--concurrency` connections, then append one
/// message to each.
pub async fn many(ctx: Arc<Ctx>, rep: &mut Report) -> Result<()> {
    let n = ctx.opts.concurrency.max(1);
    let total = ctx.opts.streams;
    let conns = connect_n(&ctx.target, n).await?;

    let run_phase = |conns: Vec<Conn>, limit: u64, append: bool| {
        let ctx = ctx.clone();
        async move {
            let next = Arc::new(AtomicU64::new(0));
            let deadline = Instant::now() + ctx.duration();
            let mut handles = Vec::new();
            for (w, mut conn) in conns.into_iter().enumerate() {
                let ctx = ctx.clone();
                let next = next.clone();
                handles.push(tokio::spawn(async move {
                    let mut lat = Samples::default();
                    let mut body = Vec::new();
                    let mut msg = Vec::new();
                    while Instant::now() < deadline {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= limit {
                            break;
                        }
                        let path = ctx.target.stream_path(&ctx.name(&format!("many-{i}")));
                        let t = Instant::now();
                        let (method, ok) = if append {
                            msg.clear();
                            message_into(&mut msg, ctx.opts.msg_bytes, w, i, ctx.now_us());
                            let h = conn
                                .request("POST", &path, Some(JSON), &msg, &mut body)
                                .await
                                .with_context(|| format!("POST {path}"))?;
                            ("POST", h)
                        } else {
                            let h = conn
                                .request("PUT", &path, Some(JSON), &[], &mut body)
                                .await
                                .with_context(|| format!("PUT {path}"))?;
                            ("PUT", h)
                        };
                        let good = if append { ok.ok() } else { ok.status == 201 };
                        if !good {
                            bail!("{method} {path}: HTTP {} {}", ok.status, body_text(&body));
                        }
                        lat.push(t.elapsed().as_nanos() as u64);
                    }
                    Ok((lat, conn))
                }));
            }
            join_all(handles).await
        }
    };

    let a = Snapshot::take(ctx.pid());
    let res = run_phase(conns, total, false).await?;
    let b = Snapshot::take(ctx.pid());
    let mut clat = Samples::default();
    let mut conns = Vec::new();
    for (s, c) in res {
        clat.extend(s);
        conns.push(c);
    }
    let created = clat.len() as u64;
    let create_ph = Phase::between(a, b, created);
    if created < total {
        rep.note(format!(
            "create phase stopped by --duration after {created} of {total} streams"
        ));
    }

    let a = Snapshot::take(ctx.pid());
    let res = run_phase(conns, created, true).await?;
    let b = Snapshot::take(ctx.pid());
    let mut alat = Samples::default();
    for (s, _) in res {
        alat.extend(s);
    }
    let append_ph = Phase::between(a, b, alat.len() as u64);
    rep.add("streams", "streams created", created as f64, None);
    rep.phase("creates", "creates", "create", &create_ph);
    rep.latency("create", "create latency", &mut clat);
    rep.phase("appends", "appends", "append", &append_ph);
    rep.latency("append", "append latency", &mut alat);
    Ok(())
}

/// `ping`: closed-loop GETs of `--ping-path` (any status). Measures what the client and
/// the server's HTTP layer do per request; the client ceiling is 1 / client CPU per request.
pub async fn ping(ctx: Arc<Ctx>, rep: &mut Report) -> Result<()> {
    let n = ctx.opts.concurrency.max(1);
    let conns = connect_n(&ctx.target, n).await?;
    let budget = Arc::new(AtomicU64::new(ctx.opts.count));
    let start = Snapshot::take(ctx.pid());
    let deadline = Instant::now() + ctx.duration();
    let mut handles = Vec::new();
    for mut conn in conns {
        let path = ctx.opts.ping_path.clone();
        let budget = budget.clone();
        handles.push(tokio::spawn(async move {
            let mut lat = Samples::default();
            let mut body = Vec::new();
            let mut statuses = std::collections::BTreeMap::<u16, u64>::new();
            while Instant::now() < deadline && take_one(&budget) {
                let t = Instant::now();
                let h = conn.request("GET", &path, None, &[], &mut body).await?;
                lat.push(t.elapsed().as_nanos() as u64);
                *statuses.entry(h.status).or_default() += 1;
            }
            Ok((lat, statuses))
        }));
    }
    let res = join_all(handles).await;
    let end = Snapshot::take(ctx.pid());
    let mut lat = Samples::default();
    let mut statuses = std::collections::BTreeMap::<u16, u64>::new();
    for (s, st) in res? {
        lat.extend(s);
        for (k, v) in st {
            *statuses.entry(k).or_default() += v;
        }
    }
    let ph = Phase::between(start, end, lat.len() as u64);
    rep.phase("requests", "requests", "request", &ph);
    rep.latency("request", "request latency", &mut lat);
    if let Some(us) = ph.client_us_per_op() {
        rep.add(
            "client_cpu_us",
            "client CPU µs per request",
            us,
            Some("lower"),
        );
        if us > 0.0 {
            rep.add(
                "client_ceiling_per_s",
                "client ceiling requests/s (1 core)",
                1e6 / us,
                None,
            );
        }
    }
    rep.note(format!("statuses: {statuses:?}"));
    Ok(())
}

/// The server's `/metrics` figures named in `names` (Prometheus text, unlabelled series);
/// `None` if the server has no such endpoint.
pub(crate) async fn scrape(conn: &mut Conn, names: &[&str]) -> Result<Option<Vec<f64>>> {
    let mut body = Vec::new();
    let h = conn
        .request("GET", "/metrics", None, &[], &mut body)
        .await
        .context("GET /metrics")?;
    if h.status != 200 {
        return Ok(None);
    }
    let text = String::from_utf8_lossy(&body);
    let value = |name: &str| {
        text.lines()
            .filter_map(|l| l.split_once(' '))
            .find(|(n, _)| *n == name)
            .and_then(|(_, v)| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    Ok(Some(names.iter().map(|n| value(n)).collect()))
}

/// `idle`: what a server costs while nothing happens. Creates `--streams` streams with one
/// `--msg-bytes` message each, waits until the server's background work on them is done
/// (this server: every stream sealed, uploaded and its manifest published, the
/// `/metrics` counters still for 5 s; a server without `/metrics`: 5 s), then sends
/// nothing for `--duration` seconds and reports the server's CPU over that window as a
/// percentage of one core, with the busiest threads.
pub async fn idle(ctx: Arc<Ctx>, rep: &mut Report) -> Result<()> {
    let n = ctx.opts.concurrency.max(1);
    let total = ctx.opts.streams;
    let conns = connect_n(&ctx.target, n).await?;
    let next = Arc::new(AtomicU64::new(0));
    let a = Snapshot::take(ctx.pid());
    let mut handles = Vec::new();
    for (w, mut conn) in conns.into_iter().enumerate() {
        let ctx = ctx.clone();
        let next = next.clone();
        handles.push(tokio::spawn(async move {
            let mut body = Vec::new();
            let mut msg = Vec::new();
            let mut made = 0u64;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let path = ctx.target.stream_path(&ctx.name(&format!("idle-{i}")));
                msg.clear();
                message_into(&mut msg, ctx.opts.msg_bytes, w, i, 0);
                let h = conn
                    .request("PUT", &path, Some(JSON), &msg, &mut body)
                    .await
                    .with_context(|| format!("PUT {path}"))?;
                if h.status != 201 {
                    bail!("PUT {path}: HTTP {} {}", h.status, body_text(&body));
                }
                made += 1;
            }
            Ok((made, conn))
        }));
    }
    let res = join_all(handles).await?;
    let b = Snapshot::take(ctx.pid());
    let created: u64 = res.iter().map(|(m, _)| m).sum();
    let mut conn = match res.into_iter().next() {
        Some((_, c)) => c,
        None => Conn::connect(&ctx.target).await?,
    };
    rep.add("streams", "streams created", created as f64, None);
    rep.phase(
        "creates",
        "creates",
        "create",
        &Phase::between(a, b, created),
    );

    // Settle: wait for the background work the writes caused.
    const NAMES: &[&str] = &[
        "ds_segments_sealed_total",
        "ds_uploads_total",
        "ds_segments_waiting",
        "ds_manifests_published_total",
    ];
    let settle_start = Instant::now();
    let settle_max = Duration::from_secs_f64(ctx.opts.settle_max.max(1.0));
    let mut last: Option<(Vec<f64>, Instant)> = None;
    loop {
        let Some(v) = scrape(&mut conn, NAMES).await? else {
            rep.note("no /metrics: waited 5 s instead of for the background work");
            tokio::time::sleep(Duration::from_secs(5)).await;
            break;
        };
        let done = v[0] >= created as f64 && v[1] >= v[0] && v[2] == 0.0 && v[3] > 0.0;
        let still = match &last {
            Some((prev, since)) if *prev == v => since.elapsed() >= Duration::from_secs(5),
            _ => {
                last = Some((v.clone(), Instant::now()));
                false
            }
        };
        if done && still {
            rep.add(
                "settle_s",
                "seconds until the background work was done",
                settle_start.elapsed().as_secs_f64(),
                None,
            );
            break;
        }
        if settle_start.elapsed() > settle_max {
            bail!("not idle after {settle_max:?}: sealed, uploaded, waiting, manifests = {v:?}");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    drop(conn);

    // Measure: nothing is sent.
    idle_window(&ctx, rep).await;
    Ok(())
}

/// Server CPU % of a core and the busiest threads over `--duration` of silence.
pub(crate) async fn idle_window(ctx: &Ctx, rep: &mut Report) {
    let a = Snapshot::take(ctx.pid());
    tokio::time::sleep(ctx.duration()).await;
    let b = Snapshot::take(ctx.pid());
    let ph = Phase::between(a, b, 0);
    if let Some(pct) = ph.server_cpu_pct() {
        rep.add(
            "idle_server_cpu_pct",
            "server CPU % of a core (idle)",
            pct,
            Some("lower"),
        );
        rep.add("idle_window_s", "idle window, seconds", ph.secs, None);
    }
    let list: Vec<String> = ph
        .server_threads
        .iter()
        .take(6)
        .map(|(n, c)| format!("{n} {:.2}%", c.total() * 100.0 / ph.secs.max(1e-9)))
        .collect();
    if !list.is_empty() {
        rep.note(format!("idle CPU by thread: {}", list.join(", ")));
    }
}
