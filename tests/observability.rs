//! `/metrics` and log files.

use std::collections::HashMap;

use crate::common;
use common::{client, Server};

/// Parses Prometheus text into `name{labels}` → value, checking the format as it goes.
fn parse(text: &str) -> HashMap<String, f64> {
    let mut declared = std::collections::HashSet::new();
    let mut out = HashMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut it = rest.split(' ');
            declared.insert(it.next().unwrap().to_string());
            let kind = it.next().unwrap();
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (key, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad line {line}"));
        let name = key.split('{').next().unwrap();
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(name);
        assert!(
            declared.contains(name) || declared.contains(base),
            "undeclared {line}"
        );
        out.insert(
            key.to_string(),
            value
                .parse::<f64>()
                .unwrap_or_else(|_| panic!("bad value {line}")),
        );
    }
    out
}

async fn scrape(c: &reqwest::Client, s: &Server) -> HashMap<String, f64> {
    let r = c.get(format!("{}/metrics", s.url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(common::header(&r, "content-type")
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    parse(&r.text().await.unwrap())
}

#[tokio::test]
async fn metrics_parse_and_move_with_appends_and_reads() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[("DS_LONG_POLL_TIMEOUT_MS", "50")]);
    let c = client();
    let before = scrape(&c, &s).await;
    let u = s.stream_url("m");
    common::put(&c, &u, "application/json", "[1,2]").await;
    common::post(&c, &u, "application/json", "[3]").await;
    common::read_text(&c, &u).await;
    let tail = common::header(&c.head(&u).send().await.unwrap(), "stream-next-offset").unwrap();
    let r = c
        .get(format!("{u}?offset={tail}&live=long-poll"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let after = scrape(&c, &s).await;
    let d = |k: &str| after.get(k).copied().unwrap_or(0.0) - before.get(k).copied().unwrap_or(0.0);
    assert_eq!(d("ds_appends_total"), 2.0);
    assert_eq!(d("ds_append_entries_total"), 3.0);
    assert_eq!(d("ds_append_bytes_total"), 3.0);
    assert_eq!(d(r#"ds_reads_total{mode="catchup"}"#), 1.0);
    assert_eq!(d(r#"ds_read_bytes_total{mode="catchup"}"#), 3.0);
    assert_eq!(d(r#"ds_http_requests_total{route="append"}"#), 1.0);
    assert!(d("ds_ingest_commit_seconds_count") >= 2.0);
    assert_eq!(after["ds_streams"], 1.0);
    assert_eq!(after[r#"ds_active_readers{mode="long_poll"}"#], 0.0);
    assert!(after["process_resident_memory_bytes"] > 0.0);
}

#[tokio::test]
async fn logs_go_to_rolling_files_with_one_span_per_request() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    let logs_s = logs.to_str().unwrap().to_string();
    let mut s = Server::start(dir.path(), &[("DS_LOG_DIR", &logs_s), ("DS_LOG", "debug")]);
    let c = client();
    common::put(&c, &s.stream_url("logged"), "text/plain", "x").await;
    assert!(s.terminate().success()); // flushes the file writer
    let files: Vec<_> = std::fs::read_dir(&logs).unwrap().flatten().collect();
    assert_eq!(files.len(), 1);
    let name = files[0].file_name().into_string().unwrap();
    assert!(
        name.starts_with("prisma-streams.") && name.ends_with(".log"),
        "{name}"
    );
    let text = std::fs::read_to_string(files[0].path()).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("path=/v1/stream/logged"))
        .unwrap_or_else(|| panic!("no request line in {text}"));
    assert!(
        line.contains("method=PUT") && line.contains("status=201") && line.contains("duration_ms="),
        "{line}"
    );
}

#[test]
fn a_bad_log_rotation_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(common::BIN)
        .args(["server", "--object-store", "memory"])
        .env_clear()
        .env("DS_ROOT", dir.path())
        .env("DS_LOG_DIR", dir.path())
        .env("DS_LOG_ROTATION", "weekly")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("DS_LOG_ROTATION"));
}

/// Starts the server with piped stderr; returns it and a channel of its stderr lines.
fn start_with_stderr(
    dir: &std::path::Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> (
    std::process::Child,
    String,
    std::sync::mpsc::Receiver<String>,
) {
    use std::io::{BufRead, BufReader};
    let mut cmd = std::process::Command::new(common::BIN);
    cmd.args(["server", "--object-store", "memory"])
        .args(args)
        .env_clear()
        .env("DS_ROOT", dir)
        .env("PORT", "0")
        .env("DS_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let ready: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
    let url = ready["exports"]["http"]["url"]
        .as_str()
        .unwrap()
        .to_string();
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for l in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    (child, url, rx)
}

/// Waits for a stderr line matching `pred` (the server prints it on its own schedule).
fn wait_line(rx: &std::sync::mpsc::Receiver<String>, pred: impl Fn(&str) -> bool) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let l = rx.recv_timeout(left).expect("expected line never came");
        if pred(&l) {
            return l;
        }
    }
}

#[tokio::test]
async fn stats_and_hist_print_periodically() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, url, rx) = start_with_stderr(
        dir.path(),
        &["--stats", "--hist"],
        &[("DS_STATS_INTERVAL_MS", "100")],
    );
    let c = client();
    let u = format!("{url}/v1/stream/s");
    common::put(&c, &u, "text/plain", "").await;
    for _ in 0..20 {
        common::post(&c, &u, "text/plain", "x").await;
    }
    let stats = wait_line(&rx, |l| {
        l.starts_with("[stats]") && !l.contains("appends/s=0 ")
    });
    assert!(
        stats.contains("ingest=") && stats.contains("rss="),
        "{stats}"
    );
    let hist = wait_line(&rx, |l| l.starts_with("[hist] append"));
    assert!(hist.contains("n=") && hist.contains("p99<="), "{hist}");
    let _ = child.kill();
    let _ = child.wait();
}

fn auto_tuned_queue_bytes(budget: &str) -> u64 {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, _, rx) =
        start_with_stderr(dir.path(), &[&format!("--auto-tune={budget}")], &[]);
    let line = wait_line(&rx, |l| l.starts_with("auto-tune:"));
    let _ = child.kill();
    let _ = child.wait();
    line.split_whitespace()
        .find_map(|w| w.strip_prefix("DS_INGEST_MAX_QUEUE_BYTES="))
        .unwrap_or_else(|| panic!("no queue size in {line}"))
        .parse()
        .unwrap()
}

#[test]
fn auto_tune_with_a_small_budget_chooses_smaller_limits() {
    assert!(auto_tuned_queue_bytes("256") < auto_tuned_queue_bytes("4096"));
}

#[tokio::test]
async fn old_log_files_are_pruned_to_the_configured_count() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    for day in 1..=5 {
        std::fs::write(
            logs.join(format!("prisma-streams.2026-01-0{day}.log")),
            "old\n",
        )
        .unwrap();
    }
    let logs_s = logs.to_str().unwrap().to_string();
    let mut s = Server::start(
        dir.path(),
        &[("DS_LOG_DIR", &logs_s), ("DS_LOG_MAX_FILES", "3")],
    );
    assert!(s.terminate().success());
    let mut names: Vec<String> = std::fs::read_dir(&logs)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(
        !names.contains(&"prisma-streams.2026-01-01.log".to_string()),
        "the oldest go first: {names:?}"
    );
}

#[tokio::test]
async fn the_metrics_stream_is_readable_and_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(
        dir.path(),
        &[
            ("DS_METRICS_FLUSH_MS", "30"),
            ("DS_METRICS_RETENTION_ENTRIES", "3"),
        ],
    );
    let c = client();
    let url = s.stream_url("__stream_metrics__");
    // Let several intervals pass: more events than the retention were written.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let events = loop {
        let r = c.get(format!("{url}?offset=-1")).send().await.unwrap();
        if r.status() == 200 {
            let tail = common::header(&r, "stream-next-offset").unwrap();
            let pos = prisma_streams::protocol::offset::Offset::decode(&tail)
                .unwrap()
                .pos;
            let events: Vec<serde_json::Value> = r.json().await.unwrap();
            if pos >= 6 {
                break events;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "metrics events were not written"
        );
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    };
    assert!(
        !events.is_empty() && events.len() <= 3,
        "bounded: {} events",
        events.len()
    );
    assert_eq!(events[0]["apiVersion"], "prisma-streams/metrics/v1");
    assert!(events[0]["windowEnd"].as_i64() >= events[0]["windowStart"].as_i64());
    // The start of the stream is gone: reading there explicitly says so.
    let zero = prisma_streams::protocol::offset::Offset::at(0).encode();
    let r = c.get(format!("{url}?offset={zero}")).send().await.unwrap();
    assert_eq!(r.status(), 410);
    // It is an ordinary JSON stream otherwise: a long-poll from the tail gets the next event.
    let head = c.head(&url).send().await.unwrap();
    let tail = common::header(&head, "stream-next-offset").unwrap();
    let r = c
        .get(format!("{url}?offset={tail}&live=long-poll"))
        .send()
        .await
        .unwrap();
    assert!(r.status() == 200 || r.status() == 204);
}

/// Real rotation needs real time (the appender reads the wall clock): with minutely
/// rotation this waits for the next minute, at most about a minute.
#[tokio::test]
async fn the_log_file_rotates() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    let logs_s = logs.to_str().unwrap().to_string();
    let mut s = Server::start(
        dir.path(),
        &[
            ("DS_LOG_DIR", &logs_s),
            ("DS_LOG", "debug"),
            ("DS_LOG_ROTATION", "minutely"),
        ],
    );
    let c = client();
    common::put(&c, &s.stream_url("before"), "text/plain", "x").await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let to_next_minute = 60_000 - (now.as_millis() % 60_000) as u64 + 500;
    tokio::time::sleep(std::time::Duration::from_millis(to_next_minute)).await;
    common::put(&c, &s.stream_url("after"), "text/plain", "x").await;
    assert!(s.terminate().success());
    let mut files: Vec<_> = std::fs::read_dir(&logs)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 2, "{files:?}");
    let first = std::fs::read_to_string(&files[0]).unwrap();
    let second = std::fs::read_to_string(&files[1]).unwrap();
    assert!(first.contains("path=/v1/stream/before"));
    assert!(second.contains("path=/v1/stream/after") && !second.contains("path=/v1/stream/before"));
}
