//! `--stats` and `--hist`: periodic one-line summaries on stderr, computed from the
//! metrics registry as differences between two snapshots.

use std::io::Write as _;
use std::time::Duration;

use tokio::sync::watch;

use super::metrics::{metrics, Histogram, Route};
use super::process;

fn emit(line: &str) {
    // stderr may be gone (a supervisor died): never fail or panic for a report.
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

fn human_bytes(b: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{v:.0}{}", UNITS[u])
    } else {
        format!("{v:.1}{}", UNITS[u])
    }
}

#[derive(Default, Clone)]
struct Snapshot {
    appends: u64,
    bytes: u64,
    reads: u64,
    read_bytes: u64,
    uploads: u64,
    hist: Vec<Vec<u64>>,
}

fn snapshot() -> Snapshot {
    let m = metrics();
    Snapshot {
        appends: m.appends.get(),
        bytes: m.append_bytes.get(),
        reads: m.reads.iter().map(|c| c.get()).sum(),
        read_bytes: m.read_bytes.iter().map(|c| c.get()).sum(),
        uploads: m.uploads.get(),
        hist: Route::ALL
            .iter()
            .map(|r| {
                m.http_histogram(*r)
                    .buckets()
                    .into_iter()
                    .map(|(_, n)| n)
                    .collect()
            })
            .collect(),
    }
}

/// The `--stats` line for the interval between two snapshots.
fn stats_line(a: &Snapshot, b: &Snapshot, secs: f64) -> String {
    let m = metrics();
    let rate = |x: u64, y: u64| (y.saturating_sub(x)) as f64 / secs.max(0.001);
    format!(
        "[stats] appends/s={:.0} ingest={}/s reads/s={:.0} read={}/s queue={} queued={} segments-waiting={} uploads={} rss={}",
        rate(a.appends, b.appends),
        human_bytes(rate(a.bytes, b.bytes)),
        rate(a.reads, b.reads),
        human_bytes(rate(a.read_bytes, b.read_bytes)),
        m.ingest_queue_requests.get(),
        human_bytes(m.ingest_queue_bytes.get().max(0) as f64),
        m.segments_waiting.get(),
        b.uploads.saturating_sub(a.uploads),
        process::rss_bytes().map_or("n/a".into(), |r| human_bytes(r as f64)),
    )
}

fn ms(bound: f64) -> String {
    if bound.is_infinite() {
        ">5s".into()
    } else if bound < 0.001 {
        format!("{:.2}ms", bound * 1000.0)
    } else {
        format!("{}ms", bound * 1000.0)
    }
}

/// The `--hist` lines (one per route with requests in the interval).
fn hist_lines(a: &Snapshot, b: &Snapshot) -> Vec<String> {
    const BARS: &[char] = &[' ', '.', ':', '-', '=', '+', '*', '#', '%', '@'];
    let bounds: Vec<f64> = Histogram::new(super::metrics::LATENCY_BUCKETS)
        .buckets()
        .into_iter()
        .map(|(b, _)| b)
        .collect();
    let mut out = Vec::new();
    for (i, route) in Route::ALL.iter().enumerate() {
        let delta: Vec<u64> = b.hist[i]
            .iter()
            .zip(
                a.hist
                    .get(i)
                    .cloned()
                    .unwrap_or_default()
                    .iter()
                    .chain(std::iter::repeat(&0)),
            )
            .map(|(y, x)| y.saturating_sub(*x))
            .collect();
        let n: u64 = delta.iter().sum();
        if n == 0 {
            continue;
        }
        let q = |q: f64| {
            let want = ((n as f64) * q).ceil().max(1.0) as u64;
            let mut seen = 0;
            for (j, c) in delta.iter().enumerate() {
                seen += c;
                if seen >= want {
                    return bounds[j];
                }
            }
            f64::INFINITY
        };
        let top = *delta.iter().max().unwrap_or(&1) as f64;
        let spark: String = delta
            .iter()
            .map(|c| BARS[((*c as f64 / top) * (BARS.len() - 1) as f64).round() as usize])
            .collect();
        let max_bucket = delta
            .iter()
            .rposition(|c| *c > 0)
            .map_or(0.0, |j| bounds[j]);
        out.push(format!(
            "[hist] {:<6} n={n} p50<={} p99<={} max<={} |{spark}|",
            route.label(),
            ms(q(0.5)),
            ms(q(0.99)),
            ms(max_bucket)
        ));
    }
    out
}

/// Prints the enabled reports every `interval` until `stop` turns true.
pub async fn run(interval: Duration, stats: bool, hist: bool, mut stop: watch::Receiver<bool>) {
    if !stats && !hist {
        return;
    }
    if hist {
        emit("[hist] per route: request count, p50/p99/max as bucket upper bounds, |sparkline| over buckets 0.1ms..5s,>5s");
    }
    let mut last = snapshot();
    let mut last_at = crate::clock::now();
    let mut tick = tokio::time::interval_at(last_at + interval, interval);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let now = snapshot();
        let secs = last_at.elapsed().as_secs_f64();
        if stats {
            emit(&stats_line(&last, &now, secs));
        }
        if hist {
            for l in hist_lines(&last, &now) {
                emit(&l);
            }
        }
        last = now;
        last_at = crate::clock::now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_report_the_interval() {
        let a = Snapshot {
            hist: vec![vec![0; 16]; 6],
            ..Default::default()
        };
        let mut b = a.clone();
        b.appends = 100;
        b.bytes = 2048 * 100;
        b.hist[1][3] = 10; // append route, bucket <= 1ms
        b.hist[1][6] = 1; // bucket <= 10ms
        let s = stats_line(&a, &b, 10.0);
        assert!(
            s.starts_with("[stats] appends/s=10 ingest=20.0KiB/s"),
            "{s}"
        );
        let h = hist_lines(&a, &b);
        assert_eq!(h.len(), 1);
        assert!(
            h[0].starts_with("[hist] append n=11 p50<=1ms p99<=10ms max<=10ms |"),
            "{}",
            h[0]
        );
    }
}
