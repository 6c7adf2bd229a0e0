//! `touch`: live-query touch wake latency and server CPU per change (State Protocol
//! streams with touch enabled; the Prisma extension that both this server and the
//! TypeScript original 0.1.11 serve). benches/touch.sh runs it against both.
//!
//! Why: a client of live queries parks one `POST …/touch/wait` per query and re-runs its
//! SQL when woken, so what matters is how soon after a write the right waiter wakes, how
//! rarely the wrong one does, and what the server pays per change with many waiters
//! parked. The goals (issue): wake p99 ≤ the touch coalesce window + 10 ms, server CPU
//! ≤ 10 µs per change.
//!
//! Design: one touch-enabled `application/json` stream with the profile
//! `{"kind":"state-protocol","touch":{"enabled":true,"onMissingBefore":"coarse"}}` and one
//! active template, `public.todos WHERE id = ?` (field `id`, encoding `string`): a
//! per-row template, so each of the `--waiters` W waiters owns one row (`key` = its
//! number `i`, `value.id` = `i`) and waits on that row's own watch key
//! `watch_key(template_id("public.todos", ["id"]), [i])` — W distinct keys. The rows are
//! inserted in one append before the waiters start. Each waiter long-polls
//! `touch/wait` (fine interest, `templateIdsUsed` = the template) on its own connection
//! with `timeoutMs` = `--wait-timeout-ms` (default 4000: the original answers every
//! request after 5 s with 408, so longer waits are not comparable) and re-issues it at
//! once with the returned cursor, so a change that lands between two waits is reported
//! by the next one (a 408 is re-issued with the old cursor and counted).
//!
//! After the waits are parked, the server's idle CPU with W waiters is measured for 2 s;
//! then a writer appends updates at a steady `--rate` R for `--duration` seconds, one
//! change per POST (a JSON array of one record, `old_value` included so the fine keys
//! can be derived), change j updating row `j mod W` (round-robin; a field `n` changes,
//! `id` stays, so exactly that row's watch key is touched). The writer is open-loop:
//! change j is due at j/R s and goes out on connection `j mod 8`, so an append slower
//! than 1/R (the original commits in 10 ms groups) does not lower the rate. The writer
//! notes each change's send time just before the POST. When a waiter's wait answers
//! `touched:true`, every change of its row not yet claimed is claimed: wake latency =
//! answer received − change sent (it includes the append's own commit; the append
//! latency is reported beside it), and also answer received − the append's
//! acknowledgement read by the writer (0 when the wake was read first). A touched answer with nothing to claim is a spurious
//! wake. Each row changes every W/R seconds (5 s with the defaults), far longer than a
//! wake takes, so a wake cannot be attributed to the wrong change. After the last
//! append the waiters keep waiting until every change is claimed or
//! `--wait-timeout-ms` + 2 s pass; changes never claimed are misses (the run fails if
//! there are any).
//!
//! Server CPU per change = the server process's CPU (`/proc/<pid>/stat`, every thread)
//! from the first append to the last append's acknowledgement, divided by the changes:
//! it covers the append, the touch processing, the wake answers and the re-issued waits,
//! and the idle cost of W parked waiters over that time (the idle figure is reported
//! separately). Pass the pid of the process that serves (for the original: the Bun
//! process). A note splits that CPU by thread name.
//!
//! `touch-plain` runs the same rows and the same writer on a stream without the touch
//! profile and without waiters: the CPU an append costs anyway, so the difference is
//! what touch (processing, wakes, re-issued waits) adds per change.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use prisma_streams::touch::keys;
use serde::Deserialize;

use crate::http::Conn;
use crate::measure::{Phase, Samples, Snapshot};
use crate::report::Report;
use crate::scenarios::{body_text, connect_n, create, join_all, Ctx, JSON};

const ENTITY: &str = "public.todos";
/// Writer connections: enough that the original's ~10 ms appends still keep the pace.
const WRITERS: usize = 8;
const PROFILE: &str = r#"{"apiVersion":"durable.streams/profile/v1","profile":{"kind":"state-protocol","touch":{"enabled":true,"onMissingBefore":"coarse"}}}"#;
const ACTIVATE: &str =
    r#"{"templates":[{"entity":"public.todos","fields":[{"name":"id","encoding":"string"}]}]}"#;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WaitAnswer {
    touched: bool,
    cursor: String,
    #[serde(default)]
    effective_wait_kind: Option<String>,
}

/// What the waiters share with the writer and the reporter.
#[derive(Default)]
struct Shared {
    /// Per row: send times of the changes not yet claimed by a wake.
    pending: Vec<Mutex<VecDeque<(u64, Instant)>>>,
    /// (change, when its waiter's answer arrived), for the latency from the ack.
    woke: Mutex<Vec<(u64, Instant)>>,
    /// Per change: when its append was acknowledged.
    acks: Mutex<Vec<Option<Instant>>>,
    /// Wake latencies in nanoseconds.
    wakes: Mutex<Samples>,
    touched: AtomicU64,
    timed_out: AtomicU64,
    spurious: AtomicU64,
    http_408: AtomicU64,
    errors: AtomicU64,
    kind_fine: AtomicU64,
    kind_template: AtomicU64,
    kind_table: AtomicU64,
}

impl Shared {
    fn unclaimed(&self) -> u64 {
        self.pending
            .iter()
            .map(|p| p.lock().map(|q| q.len() as u64).unwrap_or(0))
            .sum()
    }
}

fn row_value(i: usize, n: u64) -> String {
    format!(r#"{{"id":{i},"status":"open","n":{n}}}"#)
}

/// The watch key of row `i` under the `id` template.
fn watch_key(i: usize) -> String {
    keys::hex16(keys::watch_key(
        keys::template_id(ENTITY, &["id"]),
        &[i.to_string()],
    ))
}

async fn post_ok(conn: &mut Conn, path: &str, body: &[u8], what: &str) -> Result<Vec<u8>> {
    let mut resp = Vec::new();
    let h = conn
        .request("POST", path, Some(JSON), body, &mut resp)
        .await
        .with_context(|| format!("{what}: POST {path}"))?;
    if !h.ok() {
        bail!(
            "{what}: POST {path}: HTTP {} {}",
            h.status,
            body_text(&resp)
        );
    }
    Ok(resp)
}

async fn meta(conn: &mut Conn, path: &str, query: &str) -> Result<serde_json::Value> {
    let mut resp = Vec::new();
    let url = format!("{path}/touch/meta{query}");
    let h = conn
        .request("GET", &url, None, &[], &mut resp)
        .await
        .with_context(|| format!("GET {url}"))?;
    if h.status != 200 {
        bail!("GET {url}: HTTP {} {}", h.status, body_text(&resp));
    }
    serde_json::from_slice(&resp).with_context(|| format!("GET {url}: not JSON"))
}

/// One waiter: long-polls the watch key of row `i` until aborted.
async fn waiter(
    i: usize,
    mut conn: Conn,
    wait_path: String,
    mut cursor: String,
    timeout_ms: u64,
    sh: Arc<Shared>,
) -> Result<()> {
    let key = watch_key(i);
    let tid = keys::hex16(keys::template_id(ENTITY, &["id"]));
    let mut resp = Vec::new();
    let mut errors = 0u32;
    loop {
        let body = format!(
            r#"{{"keys":["{key}"],"cursor":"{cursor}","timeoutMs":{timeout_ms},"interestMode":"fine","templateIdsUsed":["{tid}"]}}"#
        );
        let r = conn
            .request("POST", &wait_path, Some(JSON), body.as_bytes(), &mut resp)
            .await;
        let now = Instant::now();
        let h = match r {
            Ok(h) => h,
            Err(e) => {
                // A dropped keep-alive connection: reconnect on the next request.
                sh.errors.fetch_add(1, Ordering::Relaxed);
                errors += 1;
                if errors > 20 {
                    return Err(e).with_context(|| format!("waiter {i}: POST {wait_path}"));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        match h.status {
            200 => {
                let a: WaitAnswer = serde_json::from_slice(&resp)
                    .with_context(|| format!("waiter {i}: wait answer {:?}", body_text(&resp)))?;
                cursor = a.cursor;
                if !a.touched {
                    sh.timed_out.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                sh.touched.fetch_add(1, Ordering::Relaxed);
                match a.effective_wait_kind.as_deref() {
                    Some("fineKey") => &sh.kind_fine,
                    Some("templateKey") => &sh.kind_template,
                    _ => &sh.kind_table,
                }
                .fetch_add(1, Ordering::Relaxed);
                let claimed: Vec<(u64, Instant)> = match sh.pending[i].lock() {
                    Ok(mut q) => q.drain(..).collect(),
                    Err(_) => bail!("waiter {i}: poisoned lock"),
                };
                if claimed.is_empty() {
                    sh.spurious.fetch_add(1, Ordering::Relaxed);
                } else {
                    if let Ok(mut w) = sh.wakes.lock() {
                        for (_, sent) in &claimed {
                            w.push(now.saturating_duration_since(*sent).as_nanos() as u64);
                        }
                    }
                    if let Ok(mut w) = sh.woke.lock() {
                        w.extend(claimed.iter().map(|(j, _)| (*j, now)));
                    }
                }
            }
            408 => {
                sh.http_408.fetch_add(1, Ordering::Relaxed);
            }
            s => bail!(
                "waiter {i}: POST {wait_path}: HTTP {s} {}",
                body_text(&resp)
            ),
        }
    }
}

/// `touch` (`plain` false) and `touch-plain`: the same writer on a stream without the
/// touch profile and without waiters, the baseline that the append itself costs.
pub async fn touch(ctx: Arc<Ctx>, plain: bool, rep: &mut Report) -> Result<()> {
    let w = ctx.opts.waiters.max(1);
    let rate = ctx.opts.rate.max(0.001);
    let timeout_ms = ctx.opts.wait_timeout_ms;
    let name = ctx.name("touch");
    let path = ctx.target.stream_path(&name);
    let wait_path = format!("{path}/touch/wait");
    let mut c = Conn::connect(&ctx.target).await?;
    create(&mut c, &ctx.target, &name).await?;
    if !plain {
        post_ok(
            &mut c,
            &format!("{path}/_profile"),
            PROFILE.as_bytes(),
            "profile",
        )
        .await?;
        let act = post_ok(
            &mut c,
            &format!("{path}/touch/templates/activate"),
            ACTIVATE.as_bytes(),
            "activate",
        )
        .await?;
        let act: serde_json::Value = serde_json::from_slice(&act).context("activate answer")?;
        if act["activated"].as_array().map_or(0, Vec::len) != 1 {
            bail!("template not activated: {act}");
        }
    }
    // The rows, inserted before the waiters' cursor.
    let mut ins = String::from("[");
    for i in 0..w {
        if i > 0 {
            ins.push(',');
        }
        ins.push_str(&format!(
            r#"{{"type":"{ENTITY}","key":"{i}","value":{},"headers":{{"operation":"insert"}}}}"#,
            row_value(i, 0)
        ));
    }
    ins.push(']');
    post_ok(&mut c, &path, ins.as_bytes(), "insert rows").await?;
    let m = if plain {
        serde_json::json!({"cursor": "now"})
    } else {
        meta(&mut c, &path, "?settle=flush&timeoutMs=4000").await?
    };
    let cursor = m["cursor"]
        .as_str()
        .context("touch/meta has no cursor")?
        .to_string();
    let window = m["touchCoalesceWindowMs"].as_f64();
    let settled = m["settled"].clone();

    let planned = ((rate * ctx.opts.duration).ceil() as u64)
        .min(ctx.opts.count)
        .max(1);
    let sh = Arc::new(Shared {
        pending: (0..w).map(|_| Mutex::new(VecDeque::new())).collect(),
        acks: Mutex::new(vec![None; planned as usize]),
        ..Shared::default()
    });
    let conns = connect_n(&ctx.target, if plain { 0 } else { w }).await?;
    let mut handles = Vec::with_capacity(w);
    for (i, conn) in conns.into_iter().enumerate() {
        handles.push(tokio::spawn(waiter(
            i,
            conn,
            wait_path.clone(),
            cursor.clone(),
            timeout_ms,
            sh.clone(),
        )));
    }
    // Let every first wait reach the server and park, then measure the idle cost.
    let (park, idle_secs) = if plain { (0, 0) } else { (500 + w as u64, 2) };
    tokio::time::sleep(Duration::from_millis(park)).await;
    let idle_a = Snapshot::take(ctx.pid());
    tokio::time::sleep(Duration::from_secs(idle_secs)).await;
    let idle = Phase::between(idle_a, Snapshot::take(ctx.pid()), 0);
    let parked = if plain {
        serde_json::Value::Null
    } else {
        meta(&mut c, &path, "").await?
    };
    let spurious_parking = sh.spurious.load(Ordering::Relaxed);
    let touched_parking = sh.touched.load(Ordering::Relaxed);

    // The paced writer: open loop, so a slow append does not lower the rate. Change j
    // is due at j / R seconds and is sent by writer connection j mod WRITERS.
    let wconns = connect_n(&ctx.target, WRITERS).await?;
    let start = Snapshot::take(ctx.pid());
    let t_start = Instant::now();
    let stop_at = t_start + ctx.duration() + Duration::from_secs(1);
    let mut writers = Vec::with_capacity(WRITERS);
    for (k, mut wconn) in wconns.into_iter().enumerate() {
        let (sh, path) = (sh.clone(), path.clone());
        writers.push(tokio::spawn(async move {
            let mut alat = Samples::default();
            let mut resp = Vec::new();
            let (mut sent, mut behind) = (0u64, 0u64);
            for j in (k as u64..planned).step_by(WRITERS) {
                let due = t_start + Duration::from_secs_f64(j as f64 / rate);
                let now = Instant::now();
                if now >= stop_at {
                    break;
                }
                if due > now {
                    tokio::time::sleep_until(due.into()).await;
                } else if now - due > Duration::from_millis(10) {
                    behind += 1;
                }
                let row = (j % w as u64) as usize;
                let n = j / w as u64 + 1;
                let body = format!(
                    r#"[{{"type":"{ENTITY}","key":"{row}","value":{},"old_value":{},"headers":{{"operation":"update"}}}}]"#,
                    row_value(row, n),
                    row_value(row, n - 1)
                );
                let t = Instant::now();
                if !plain {
                    match sh.pending[row].lock() {
                        Ok(mut q) => q.push_back((j, t)),
                        Err(_) => bail!("poisoned lock"),
                    }
                }
                let h = wconn
                    .request("POST", &path, Some(JSON), body.as_bytes(), &mut resp)
                    .await
                    .context("writer POST")?;
                if !h.ok() {
                    bail!("writer POST {path}: HTTP {} {}", h.status, body_text(&resp));
                }
                let acked = Instant::now();
                alat.push(acked.duration_since(t).as_nanos() as u64);
                if let Some(a) = sh.acks.lock().ok().as_mut().and_then(|v| v.get_mut(j as usize)) {
                    *a = Some(acked);
                }
                sent += 1;
            }
            Ok((alat, sent, behind))
        }));
    }
    let mut alat = Samples::default();
    let (mut sent, mut behind) = (0u64, 0u64);
    for (a, s, b) in join_all(writers).await? {
        alat.extend(a);
        sent += s;
        behind += b;
    }
    let end = Snapshot::take(ctx.pid());
    let ph = Phase::between(start, end, sent);
    if plain {
        rep.add("changes", "changes appended (paced)", sent as f64, None);
        rep.add("rate", "target changes/s", rate, None);
        rep.latency("append", "append latency", &mut alat);
        rep.phase("changes", "changes", "change", &ph);
        if behind > sent / 10 {
            rep.note(format!(
                "{behind} of {sent} appends went out more than 10 ms after their due time (8 writer connections, {rate}/s in all)"
            ));
        }
        return Ok(());
    }
    // Drain: every change should be claimed within a wait or two.
    let drain_until = Instant::now() + Duration::from_millis(timeout_ms + 2000);
    while sh.unclaimed() > 0 && Instant::now() < drain_until {
        if handles.iter().all(|h| h.is_finished()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let misses = sh.unclaimed();
    let after = meta(&mut c, &path, "").await.ok();
    let mut failed = Vec::new();
    for h in handles {
        if h.is_finished() {
            match h.await {
                Ok(Err(e)) => failed.push(format!("{e:#}")),
                Err(e) => failed.push(format!("task: {e}")),
                Ok(Ok(())) => {}
            }
        } else {
            h.abort();
        }
    }

    rep.add("waiters", "waiters (one watch key each)", w as f64, None);
    rep.add("wait_timeout_ms", "wait timeoutMs", timeout_ms as f64, None);
    if let Some(win) = window {
        rep.add(
            "coalesce_window_ms",
            "touch coalesce window ms (meta)",
            win,
            None,
        );
    }
    rep.add("changes", "changes appended (paced)", sent as f64, None);
    rep.add("rate", "target changes/s", rate, None);
    let mut wakes = sh
        .wakes
        .lock()
        .map(|mut s| std::mem::take(&mut *s))
        .unwrap_or_default();
    rep.add(
        "woken",
        "changes whose waiter woke",
        wakes.len() as f64,
        None,
    );
    rep.add(
        "misses",
        "changes that woke nobody",
        misses as f64,
        Some("lower"),
    );
    if let Some(p90) = wakes.quantile_ms(0.90) {
        rep.add("wake_p90_ms", "wake latency p90 ms", p90, Some("lower"));
    }
    rep.latency("wake", "wake latency", &mut wakes);
    // From the acknowledgement: a wake can arrive before the writer reads its ack.
    let mut from_ack = Samples::default();
    let mut before_ack = 0u64;
    if let (Ok(woke), Ok(acks)) = (sh.woke.lock(), sh.acks.lock()) {
        for (j, at) in woke.iter() {
            if let Some(Some(ack)) = acks.get(*j as usize) {
                if at < ack {
                    before_ack += 1;
                }
                from_ack.push(at.saturating_duration_since(*ack).as_nanos() as u64);
            }
        }
    }
    if let Some(p90) = from_ack.quantile_ms(0.90) {
        rep.add(
            "wake_ack_p90_ms",
            "wake latency from the ack p90 ms",
            p90,
            Some("lower"),
        );
    }
    rep.latency("wake_ack", "wake latency from the ack", &mut from_ack);
    rep.add(
        "woken_before_ack",
        "wakes read before the append's ack (counted 0)",
        before_ack as f64,
        None,
    );
    rep.latency("append", "append latency", &mut alat);
    let ld = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64;
    rep.add("touched", "waits answered touched", ld(&sh.touched), None);
    rep.add(
        "timed_out",
        "waits answered touched:false (timeout)",
        ld(&sh.timed_out),
        None,
    );
    rep.add(
        "spurious",
        "spurious wakes (row unchanged)",
        ld(&sh.spurious),
        Some("lower"),
    );
    rep.add(
        "spurious_before_writes",
        "of which before the first change",
        spurious_parking as f64,
        Some("lower"),
    );
    rep.add(
        "touched_before_writes",
        "touched answers before the first change",
        touched_parking as f64,
        None,
    );
    rep.add("fine_wakes", "wakes by fineKey", ld(&sh.kind_fine), None);
    rep.add(
        "template_wakes",
        "wakes by templateKey",
        ld(&sh.kind_template),
        None,
    );
    rep.add("table_wakes", "wakes by tableKey", ld(&sh.kind_table), None);
    rep.add("http_408", "waits answered 408", ld(&sh.http_408), None);
    rep.add(
        "errors",
        "wait connection errors (retried)",
        ld(&sh.errors),
        None,
    );
    rep.phase("changes", "changes", "change", &ph);
    if let Some(pct) = idle.server_cpu_pct() {
        rep.add(
            "idle_server_cpu_pct",
            "server CPU % of a core, waiters parked, no writes",
            pct,
            Some("lower"),
        );
    }
    rep.note(format!(
        "touch/meta?settle=flush after the inserts: settled {settled}, cursor {cursor}"
    ));
    rep.note(format!(
        "parked: {} fine waiters active, {} hot fine keys (touch/meta before the writer)",
        parked["fineWaitersActive"], parked["hotFineKeys"]
    ));
    if let Some(m) = after {
        rep.note(format!(
            "touch/meta after: touchMode {}, coalesceMs {}, touchesTemplateTotal {}, fineTouchesDroppedDueToBudgetTotal {}, fineTouchesSkippedColdKeyTotal {}, waitTouchedTotal {}, waitTimeoutTotal {}",
            m["touchMode"],
            m["coalesceMs"],
            m["touchesTemplateTotal"],
            m["fineTouchesDroppedDueToBudgetTotal"],
            m["fineTouchesSkippedColdKeyTotal"],
            m["waitTouchedTotal"],
            m["waitTimeoutTotal"]
        ));
    }
    if behind > sent / 10 {
        rep.note(format!(
            "{behind} of {sent} appends went out more than 10 ms after their due time (8 writer connections, {rate}/s in all)"
        ));
    }
    if !failed.is_empty() {
        bail!(
            "{} waiters failed; first: {}",
            failed.len(),
            failed.first().cloned().unwrap_or_default()
        );
    }
    if misses > 0 {
        bail!("{misses} of {sent} changes woke no waiter within {timeout_ms} ms + 2 s of the last append");
    }
    Ok(())
}
