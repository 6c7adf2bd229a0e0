//! Hostile and malformed input against a running server: every case gets a clear status
//! and JSON error, nothing already acknowledged changes, and the server keeps serving.
//! Slow clients and piles of live readers are cut off by limits instead of holding
//! memory.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::common;
use common::{client, header, post, put, Server};
use reqwest::StatusCode;

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

async fn error_code(r: reqwest::Response) -> String {
    let body: serde_json::Value = r.json().await.expect("JSON error body");
    body["error"]["code"]
        .as_str()
        .expect("error.code")
        .to_string()
}

/// Connects a raw socket with a generous read timeout (a guard against hangs, not a
/// measurement).
fn raw(base: &str) -> TcpStream {
    let s = TcpStream::connect(base.trim_start_matches("http://")).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s
}

/// Reads until the server closes the connection (or the guard timeout hits, which fails).
fn read_until_closed(s: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    match s.read_to_end(&mut buf) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("server did not close the connection: {e}"),
    }
    String::from_utf8_lossy(&buf).into_owned()
}

#[tokio::test]
async fn malformed_offsets_and_names_are_rejected_with_json_errors() {
    let dir = tmp();
    let s = Server::start(dir.path(), &[]);
    let c = client();
    let url = s.stream_url("target");
    put(&c, &url, "text/plain", "kept").await;

    for bad in [
        "x",
        "-2",
        "0000000000000000_00000000000000000000000000000001",
        "00000000000000000000000000000000000000",
        "%00",
        "%FF%FE",
        "1e400",
    ] {
        let r = c.get(format!("{url}?offset={bad}")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "offset {bad:?}");
        assert_eq!(error_code(r).await, "bad_request", "offset {bad:?}");
    }
    // Well-formed offsets far past the tail read as empty and echo the offset back.
    let far = prisma_streams::protocol::offset::Offset::at(u64::MAX).encode();
    let r = c.get(format!("{url}?offset={far}")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "stream-next-offset"), Some(far));
    assert_eq!(r.text().await.unwrap(), "");
    // Digits beyond the 128 bits of an offset are dropped, as in the original.
    let r = c
        .get(format!("{url}?offset={}", "Z".repeat(26)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.text().await.unwrap(), "");
    let r = c
        .get(format!("{url}?offset=-1&offset=now"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // Raw requests: an HTTP client library would normalise `..` away before sending.
    for bad in [
        "..", ".", "%2e%2e", "%2E%2E/x", "a/../b", "a/./b", "..%2fetc", "%FF", "a%00b", "",
    ] {
        let mut sock = raw(&s.url);
        let req = format!(
            "PUT /v1/stream/{bad} HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n\
             Content-Length: 0\r\nConnection: close\r\n\r\n"
        );
        sock.write_all(req.as_bytes()).unwrap();
        let text = read_until_closed(&mut sock);
        assert!(
            text.starts_with("HTTP/1.1 400") || text.starts_with("HTTP/1.1 404"),
            "name {bad:?}: {text}"
        );
        assert!(text.contains(r#""error":{"code""#), "name {bad:?}: {text}");
    }
    // Nothing escaped the data directory and the good stream is untouched.
    assert_eq!(common::read_text(&c, &url).await, "kept");
    let listed: serde_json::Value = common::get_json(&c, &format!("{}/v1/streams", s.url)).await;
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
}

#[tokio::test]
async fn invalid_json_and_bad_producer_values_change_nothing() {
    let dir = tmp();
    let s = Server::start(dir.path(), &[]);
    let c = client();
    let url = s.stream_url("j");
    put(&c, &url, "application/json", r#"[{"a":1}]"#).await;
    for body in [
        "{",
        "[1,",
        "{\"a\":1}{",
        "\u{feff}",
        "nul",
        "[]",
        "\"\\ud800\"x",
    ] {
        let r = post(&c, &url, "application/json", body).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "body {body:?}");
    }
    let r = post(&c, &url, "application/json", vec![0xff, 0xfe, b'{']).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    let producer = |epoch: &str, seq: &str| {
        c.post(&url)
            .header("content-type", "application/json")
            .header("producer-id", "p")
            .header("producer-epoch", epoch.to_string())
            .header("producer-seq", seq.to_string())
            .body(r#"{"p":1}"#)
            .send()
    };
    for (epoch, seq) in [
        ("-1", "0"),
        ("0", "-1"),
        ("18446744073709551616", "0"),
        ("9007199254740992", "0"),
        ("0", "9007199254740992"),
        ("0", "18446744073709551616"),
        ("0x1", "0"),
        ("1.0", "0"),
        ("", "0"),
    ] {
        let r = producer(epoch, seq).await.unwrap();
        assert_eq!(
            r.status(),
            StatusCode::BAD_REQUEST,
            "epoch {epoch:?} seq {seq:?}"
        );
    }
    // The largest epoch (2^53 - 1, as in the protocol) is accepted once and then fences
    // everything below it.
    let r = producer("9007199254740991", "0").await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let r = producer("9007199254740990", "0").await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // Stream-Seq is compared byte-wise; an enormous one is fine, a smaller one conflicts.
    let big = "z".repeat(4000);
    let seq = |v: String| {
        c.post(&url)
            .header("content-type", "application/json")
            .header("stream-seq", v)
            .body(r#"{"s":1}"#)
            .send()
    };
    assert!(seq(big.clone()).await.unwrap().status().is_success());
    assert_eq!(
        seq("a".into()).await.unwrap().status(),
        StatusCode::CONFLICT
    );
    assert_eq!(seq(big).await.unwrap().status(), StatusCode::CONFLICT);

    // A producer append refused for its Stream-Seq leaves the producer's state alone: the
    // same sequence number is accepted once the Stream-Seq is right.
    let both = |seq: &str| {
        c.post(&url)
            .header("content-type", "application/json")
            .header("producer-id", "q")
            .header("producer-epoch", "0")
            .header("producer-seq", "0")
            .header("stream-seq", seq.to_string())
            .body(r#"{"q":1}"#)
            .send()
    };
    assert_eq!(both("a").await.unwrap().status(), StatusCode::CONFLICT);
    assert_eq!(
        both(&"z".repeat(4001)).await.unwrap().status(),
        StatusCode::OK
    );

    let body = common::read_text(&c, &url).await;
    assert_eq!(body, r#"[{"a":1},{"p":1},{"s":1},{"q":1}]"#);
}

#[tokio::test]
async fn huge_headers_are_refused_and_the_server_keeps_serving() {
    let dir = tmp();
    let s = Server::start(dir.path(), &[("DS_MAX_HEADER_BYTES", "16384")]);
    let c = client();
    let url = s.stream_url("h");
    put(&c, &url, "text/plain", "ok").await;

    let huge = "a".repeat(64 * 1024);
    let mut sock = raw(&s.url);
    let req = format!("GET /v1/stream/h?offset=-1 HTTP/1.1\r\nHost: x\r\nX-Big: {huge}\r\n\r\n");
    let _ = sock.write_all(req.as_bytes());
    let text = read_until_closed(&mut sock);
    assert!(text.starts_with("HTTP/1.1 431"), "{text:?}");

    let mut sock = raw(&s.url);
    let many: String = (0..500).map(|i| format!("X-H{i}: v\r\n")).collect();
    let req = format!("GET /v1/stream/h?offset=-1 HTTP/1.1\r\nHost: x\r\n{many}\r\n");
    let _ = sock.write_all(req.as_bytes());
    let text = read_until_closed(&mut sock);
    assert!(text.starts_with("HTTP/1.1 431"), "{text:?}");

    assert_eq!(common::read_text(&c, &url).await, "ok");
}

#[tokio::test]
async fn oversized_declared_bodies_are_refused_before_they_are_sent() {
    let dir = tmp();
    let s = Server::start(dir.path(), &[("DS_APPEND_MAX_BODY_BYTES", "1024")]);
    let c = client();
    put(&c, &s.stream_url("b"), "text/plain", "").await;
    // Only the headers go out: the answer cannot depend on reading the body.
    let mut sock = raw(&s.url);
    sock.write_all(
        b"POST /v1/stream/b HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n\
          Content-Length: 1000000000\r\n\r\n",
    )
    .unwrap();
    let text = read_until_closed(&mut sock);
    assert!(text.starts_with("HTTP/1.1 413"), "{text:?}");
    assert!(text.contains("payload_too_large"), "{text:?}");
}

#[tokio::test]
async fn slow_clients_are_cut_off() {
    let dir = tmp();
    let s = Server::start(
        dir.path(),
        &[
            ("DS_HEADER_READ_TIMEOUT_MS", "300"),
            ("DS_BODY_READ_TIMEOUT_MS", "300"),
        ],
    );
    let c = client();
    let url = s.stream_url("slow");
    put(&c, &url, "text/plain", "").await;

    // Headers that never finish: the connection is closed.
    let mut sock = raw(&s.url);
    sock.write_all(b"POST /v1/stream/slow HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let text = read_until_closed(&mut sock);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{text:?}"
    );

    // A body that stops halfway: 408 with a JSON error, nothing appended.
    let mut sock = raw(&s.url);
    sock.write_all(
        b"POST /v1/stream/slow HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n\
          Content-Length: 100\r\n\r\nonly ten b",
    )
    .unwrap();
    let text = read_until_closed(&mut sock);
    assert!(text.starts_with("HTTP/1.1 408"), "{text:?}");
    assert!(text.contains("body_timeout"), "{text:?}");

    // An idle keep-alive connection is closed too.
    let mut sock = raw(&s.url);
    sock.write_all(b"HEAD /v1/stream/slow HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let text = read_until_closed(&mut sock);
    assert!(text.starts_with("HTTP/1.1 200"), "{text:?}");

    // (A fresh client: the pooled connection above was idle long enough to be closed.)
    let c = client();
    assert_eq!(common::read_text(&c, &url).await, "");
    let r = post(&c, &url, "text/plain", "after").await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn live_readers_are_bounded() {
    let dir = tmp();
    let s = Server::start(
        dir.path(),
        &[
            ("DS_MAX_LIVE_READERS", "2"),
            ("DS_LONG_POLL_TIMEOUT_MS", "30000"),
        ],
    );
    let c = client();
    let url = s.stream_url("live");
    put(&c, &url, "text/plain", "").await;
    let tail = header(&c.head(&url).send().await.unwrap(), "stream-next-offset").unwrap();

    let poll = format!("{url}?offset={tail}&live=long-poll");
    let first = tokio::spawn(c.get(&poll).send());
    wait_readers(&c, &s.url, "long_poll", 1).await;
    let sse = c
        .get(format!("{url}?offset={tail}&live=sse"))
        .send()
        .await
        .unwrap();
    assert_eq!(sse.status(), StatusCode::OK);
    let refused = c.get(&poll).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(header(&refused, "retry-after").as_deref(), Some("1"));
    assert_eq!(error_code(refused).await, "too_many_readers");
    // Catch-up reads are not limited.
    let r = c.get(format!("{url}?offset=-1")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // Data releases the long-poll; a closed SSE connection releases its slot.
    assert_eq!(
        post(&c, &url, "text/plain", "wake").await.status(),
        StatusCode::NO_CONTENT
    );
    let woke = first.await.unwrap().unwrap();
    assert_eq!(woke.status(), StatusCode::OK);
    drop(sse);
    let tail = header(&c.head(&url).send().await.unwrap(), "stream-next-offset").unwrap();
    let again = tokio::spawn(c.get(format!("{url}?offset={tail}&live=long-poll")).send());
    wait_readers(&c, &s.url, "long_poll", 1).await;
    wait_readers(&c, &s.url, "sse", 0).await;
    let r = c
        .get(format!("{url}?offset={tail}&live=sse"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "the SSE slot was not released");
    post(&c, &url, "text/plain", "bye").await;
    assert_eq!(again.await.unwrap().unwrap().status(), StatusCode::OK);
}

/// Waits until `/metrics` shows `n` active readers of `mode`.
async fn wait_readers(c: &reqwest::Client, base: &str, mode: &str, n: u64) {
    let want = format!("ds_active_readers{{mode=\"{mode}\"}} {n}");
    for _ in 0..400 {
        let text = c
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if text.lines().any(|l| l == want) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("never saw {want}");
}

/// Bodies count against one ingest budget (`DS_INGEST_MAX_QUEUE_BYTES`) from the first
/// byte: while slow uploads hold it, a new body is refused at once with 429 instead of
/// being buffered, and the budget comes back when they finish.
#[tokio::test]
async fn request_bodies_share_one_memory_budget() {
    let dir = tmp();
    let s = Server::start(
        dir.path(),
        &[
            ("DS_INGEST_MAX_QUEUE_BYTES", "1000000"),
            ("DS_APPEND_MAX_BODY_BYTES", "600000"),
        ],
    );
    let c = client();
    let url = s.stream_url("b");
    put(&c, &url, "application/octet-stream", "").await;
    let path = "/v1/stream/b";

    // A slow upload that declares 600 kB holds 600 kB of the budget...
    let mut slow = raw(&s.url);
    write!(
        slow,
        "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/octet-stream\r\ncontent-length: 600000\r\n\r\n"
    )
    .unwrap();
    slow.write_all(&[b'a'; 1000]).unwrap();
    wait_budget(&c, &s.url, 600_000).await;
    // ...so a second one of 600 kB does not fit, and is refused before it is read.
    let mut second = raw(&s.url);
    write!(
        second,
        "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/octet-stream\r\ncontent-length: 600000\r\n\r\n"
    )
    .unwrap();
    let answer = read_until_closed(&mut second);
    assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
    assert!(answer.contains("\"overloaded\""), "{answer}");
    // A chunked body without a length is refused once its buffer outgrows what is left
    // (400 kB; the buffer grows geometrically, so it is refused at 200 to 400 kB). Chunks
    // go one at a time, and the answer is looked for after each, so that it is read
    // before the server closes the connection.
    let mut chunked = raw(&s.url);
    write!(
        chunked,
        "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/octet-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    )
    .unwrap();
    chunked
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut answer = Vec::new();
    for sent in 1..=10 {
        let mut chunk = format!("{:x}\r\n", 100_000).into_bytes();
        chunk.extend_from_slice(&[b'c'; 100_000]);
        chunk.extend_from_slice(b"\r\n");
        let written = chunked.write_all(&chunk);
        let mut buf = [0u8; 4096];
        if let Ok(n @ 1..) = chunked.read(&mut buf) {
            answer.extend_from_slice(&buf[..n]);
            assert!(sent >= 2, "refused after {sent} chunks of 100 kB");
            break;
        }
        assert!(
            written.is_ok(),
            "closed without an answer after {sent} chunks"
        );
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
    // Small bodies still fit beside the slow one.
    assert_eq!(
        post(&c, &url, "application/octet-stream", "x")
            .await
            .status(),
        204
    );

    // The slow upload completes and gives its share back.
    slow.write_all(&vec![b'a'; 599_000]).unwrap();
    let mut head = [0u8; 12];
    slow.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 204");
    let r = post(&c, &url, "application/octet-stream", vec![b'd'; 600_000]).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let stored = common::read_pages(&c, &url).await.unwrap().joined();
    assert_eq!(stored.len(), 1 + 600_000 + 600_000);
}

/// Waits until `/metrics` reports at least `bytes` reserved in the ingest budget.
async fn wait_budget(c: &reqwest::Client, base: &str, bytes: u64) {
    for _ in 0..500 {
        let text = c
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let held: u64 = text
            .lines()
            .find_map(|l| l.strip_prefix("ds_ingest_budget_bytes "))
            .and_then(|v| v.trim().parse().ok())
            .expect("ds_ingest_budget_bytes in /metrics");
        if held >= bytes {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the slow upload never reserved its body");
}
