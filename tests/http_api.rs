//! Integration tests over real HTTP against the real binary on 127.0.0.1:0.

use crate::common;
use common::{client, header, post, put, read_text, status, Server};
use reqwest::{Method, StatusCode};

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

#[tokio::test]
async fn create_append_read_round_trip_with_offsets() {
    let dir = tmp();
    let s = Server::start(dir.path(), &[]);
    let c = client();
    let url = s.stream_url("orders/eu");

    let r = put(&c, &url, "text/plain", "ab").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(header(&r, "location").unwrap(), url);
    let o1 = header(&r, "stream-next-offset").unwrap();
    assert_eq!(o1.len(), 26);

    let r = post(&c, &url, "text/plain", "cd").await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let o2 = header(&r, "stream-next-offset").unwrap();
    assert!(o2 > o1, "offsets increase: {o1} {o2}");

    // %2F and / name the same stream.
    let r = c
        .get(format!("{}/v1/stream/orders%2Feu?offset=-1", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "stream-up-to-date").as_deref(), Some("true"));
    assert_eq!(header(&r, "stream-next-offset").unwrap(), o2);
    assert_eq!(r.text().await.unwrap(), "abcd");

    let r = c.get(format!("{url}?offset={o1}")).send().await.unwrap();
    let etag = header(&r, "etag").unwrap();
    assert_eq!(r.text().await.unwrap(), "cd");
    let r = c
        .get(format!("{url}?offset={o1}"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);

    let r = c.get(format!("{url}?offset=0")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "bad_request");

    let r = c.get(format!("{}/v1/streams", s.url)).send().await.unwrap();
    let list: serde_json::Value = r.json().await.unwrap();
    assert_eq!(list[0]["name"], "orders/eu");
    // Listings count entries in decimal (the original's internal offsets), not protocol
    // offsets: two appends, two entries.
    assert_eq!(list[0]["next_offset"], "2");
    assert_eq!(list[0]["content_type"], "text/plain");
}

#[tokio::test]
async fn json_mode_keeps_message_boundaries_and_pages_are_bounded() {
    let dir = tmp();
    let s = Server::start(dir.path(), &[("DS_READ_MAX_RECORDS", "2")]);
    let c = client();
    let url = s.stream_url("j");
    let r = put(&c, &url, "application/json", "[]").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = post(
        &c,
        &url,
        "application/json; charset=utf-8",
        r#"[{"a":1}, [2,3], "x"]"#,
    )
    .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    for (body, status) in [
        ("[]", StatusCode::BAD_REQUEST),
        ("{nope", StatusCode::BAD_REQUEST),
    ] {
        let r = post(&c, &url, "application/json", body).await;
        assert_eq!(r.status(), status, "{body}");
    }

    // Two messages per page: the client follows Stream-Next-Offset.
    let r = c.get(format!("{url}?offset=-1")).send().await.unwrap();
    assert!(header(&r, "stream-up-to-date").is_none());
    let next = header(&r, "stream-next-offset").unwrap();
    assert_eq!(r.text().await.unwrap(), r#"[{"a":1},[2,3]]"#);
    let r = c.get(format!("{url}?offset={next}")).send().await.unwrap();
    assert_eq!(header(&r, "stream-up-to-date").as_deref(), Some("true"));
    assert_eq!(r.text().await.unwrap(), r#"["x"]"#);
}

#[tokio::test]
async fn producers_are_idempotent_and_fenced() {
    let dir = tmp();
    let s = Server::start(dir.path(), &[]);
    let c = client();
    let url = s.stream_url("p");
    c.put(&url)
        .header("content-type", "text/plain")
        .send()
        .await
        .unwrap();
    let send = |epoch: u64, seq: u64, body: &'static str| {
        c.post(&url)
            .header("content-type", "text/plain")
            .header("producer-id", "w1")
            .header("producer-epoch", epoch.to_string())
            .header("producer-seq", seq.to_string())
            .body(body)
            .send()
    };
    let r = send(0, 0, "a").await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "producer-seq").as_deref(), Some("0"));
    assert_eq!(
        send(0, 0, "a").await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    let r = send(0, 5, "z").await.unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert_eq!(header(&r, "producer-expected-seq").as_deref(), Some("1"));
    assert_eq!(header(&r, "producer-received-seq").as_deref(), Some("5"));
    assert_eq!(send(1, 0, "b").await.unwrap().status(), StatusCode::OK);
    let r = send(0, 1, "zombie").await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(header(&r, "producer-epoch").as_deref(), Some("1"));
    let r = c.get(format!("{url}?offset=-1")).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "ab");

    // Stream-Seq compares byte-wise: "10" sorts before "2".
    let seq = |v: &'static str| {
        c.post(&url)
            .header("content-type", "text/plain")
            .header("stream-seq", v)
            .body("s")
            .send()
    };
    assert_eq!(seq("2").await.unwrap().status(), StatusCode::NO_CONTENT);
    assert_eq!(seq("10").await.unwrap().status(), StatusCode::CONFLICT);
}

#[tokio::test]
async fn close_is_durable_and_reported() {
    let dir = tmp();
    let s = Server::start(dir.path(), &[]);
    let c = client();
    let url = s.stream_url("c");
    put(&c, &url, "text/plain", "x").await;
    let r = c
        .post(&url)
        .header("stream-closed", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&r, "stream-closed").as_deref(), Some("true"));
    let r = post(&c, &url, "text/plain", "y").await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert_eq!(header(&r, "stream-closed").as_deref(), Some("true"));
    let r = c.get(format!("{url}?offset=-1")).send().await.unwrap();
    assert_eq!(header(&r, "stream-closed").as_deref(), Some("true"));
    let tail = header(&r, "stream-next-offset").unwrap();
    let r = c
        .get(format!("{url}?offset={tail}&live=long-poll"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&r, "stream-closed").as_deref(), Some("true"));
}

#[tokio::test]
async fn long_poll_wakes_on_append_and_times_out_with_a_cursor() {
    let dir = tmp();
    let s = Server::start(dir.path(), &[("DS_LONG_POLL_TIMEOUT_MS", "300")]);
    let c = client();
    let url = s.stream_url("lp");
    let r = c
        .put(&url)
        .header("content-type", "text/plain")
        .send()
        .await
        .unwrap();
    let tail = header(&r, "stream-next-offset").unwrap();

    let r = c
        .get(format!("{url}?offset={tail}&live=long-poll"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&r, "stream-up-to-date").as_deref(), Some("true"));
    let cursor = header(&r, "stream-cursor").unwrap();
    assert!(cursor.bytes().all(|b| b.is_ascii_digit()));

    // With a long timeout, the reader can only return early because of the append.
    let s2 = Server::start(
        dir.path().join("b").as_path(),
        &[("DS_LONG_POLL_TIMEOUT_MS", "60000")],
    );
    let url2 = s2.stream_url("lp");
    let r = c
        .put(&url2)
        .header("content-type", "text/plain")
        .send()
        .await
        .unwrap();
    let tail = header(&r, "stream-next-offset").unwrap();
    let reader = tokio::spawn({
        let c = c.clone();
        let u = format!("{url2}?offset={tail}&live=long-poll&cursor={cursor}");
        async move { c.get(u).send().await.unwrap() }
    });
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    post(&c, &url2, "text/plain", "wake").await;
    let r = reader.await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let next_cursor: u64 = header(&r, "stream-cursor").unwrap().parse().unwrap();
    assert!(
        next_cursor > cursor.parse::<u64>().unwrap(),
        "echoed cursor must move forward"
    );
    assert_eq!(r.text().await.unwrap(), "wake");
}

#[tokio::test]
async fn sse_sends_a_control_event_after_each_data_event() {
    let dir = tmp();
    let s = Server::start(dir.path(), &[]);
    let c = client();
    let url = s.stream_url("sse");
    put(
        &c,
        &url,
        "application/octet-stream",
        vec![0u8, 159, 146, 150],
    )
    .await;
    c.post(&url)
        .header("stream-closed", "true")
        .send()
        .await
        .unwrap();
    let r = c
        .get(format!("{url}?offset=-1&live=sse"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        header(&r, "content-type").as_deref(),
        Some("text/event-stream")
    );
    assert_eq!(
        header(&r, "stream-sse-data-encoding").as_deref(),
        Some("base64")
    );
    let text = r.text().await.unwrap(); // the stream is closed, so the response ends
    let events: Vec<&str> = text.split("\n\n").filter(|e| !e.is_empty()).collect();
    assert_eq!(events.len(), 2, "{text}");
    assert_eq!(events[0], "event: data\ndata:AJ+Slg==");
    assert!(events[1].starts_with("event: control\ndata:{"));
    assert!(events[1].contains("\"streamClosed\":true"));
}

#[tokio::test]
async fn forks_share_history_and_delete_is_soft_while_referenced() {
    let dir = tmp();
    let s = Server::start(dir.path(), &[]);
    let c = client();
    let src = s.stream_url("src");
    let fork = s.stream_url("fork");
    let r = put(&c, &src, "text/plain", "hello").await;
    let anchor = header(&r, "stream-next-offset").unwrap();
    post(&c, &src, "text/plain", "world").await;
    let r = c
        .put(&fork)
        .header("stream-forked-from", "/v1/stream/src")
        .header("stream-fork-offset", &anchor)
        .header("stream-fork-sub-offset", "3")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(header(&r, "content-type").as_deref(), Some("text/plain"));
    post(&c, &fork, "text/plain", "!").await;
    assert_eq!(read_text(&c, &fork).await, "hellowor!");

    assert_eq!(
        status(&c, Method::DELETE, &src).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(status(&c, Method::HEAD, &src).await, StatusCode::GONE);
    assert_eq!(
        put(&c, &src, "text/plain", "").await.status(),
        StatusCode::CONFLICT
    );
    assert_eq!(read_text(&c, &fork).await, "hellowor!");
    assert_eq!(
        status(&c, Method::DELETE, &fork).await,
        StatusCode::NO_CONTENT
    );
    // The last reference is gone, so the source is removed with it.
    assert_eq!(status(&c, Method::HEAD, &src).await, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn oversized_bodies_get_413_and_nothing_is_written() {
    let dir = tmp();
    let s = Server::start(dir.path(), &[("DS_APPEND_MAX_BODY_BYTES", "16")]);
    let c = client();
    let url = s.stream_url("big");
    c.put(&url)
        .header("content-type", "text/plain")
        .send()
        .await
        .unwrap();
    let r = post(&c, &url, "text/plain", vec![b'x'; 17]).await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "payload_too_large");
    // A chunked body without Content-Length is cut off at the limit too.
    let chunks = futures_util::stream::iter((0..4).map(|_| Ok::<_, std::io::Error>(vec![b'y'; 8])));
    let r = post(&c, &url, "text/plain", reqwest::Body::wrap_stream(chunks)).await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let r = c.get(format!("{url}?offset=-1")).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "");
}

#[tokio::test]
async fn every_response_carries_security_and_cors_headers() {
    let dir = tmp();
    let s = Server::start(dir.path(), &[]);
    let c = client();
    let preflight = |url: String| {
        c.request(reqwest::Method::OPTIONS, url)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "if-none-match")
            .send()
    };
    for (is_preflight, r) in [
        (
            false,
            c.get(format!("{}/nope", s.url)).send().await.unwrap(),
        ),
        (false, c.get(s.stream_url("missing")).send().await.unwrap()),
        (true, preflight(s.stream_url("x")).await.unwrap()),
        (
            false,
            c.get(format!("{}/health", s.url)).send().await.unwrap(),
        ),
        (
            true,
            preflight(format!("{}/v1/streams", s.url)).await.unwrap(),
        ),
    ] {
        assert_eq!(
            header(&r, "x-content-type-options").as_deref(),
            Some("nosniff")
        );
        assert_eq!(
            header(&r, "access-control-allow-origin").as_deref(),
            Some("*")
        );
        assert!(header(&r, "access-control-expose-headers")
            .unwrap()
            .contains("Stream-Next-Offset"));
        // What a browser reads from a preflight only, and so only preflights carry.
        if is_preflight {
            assert!(header(&r, "access-control-allow-headers")
                .unwrap()
                .contains("If-None-Match"));
            assert!(header(&r, "access-control-allow-methods")
                .unwrap()
                .contains("POST"));
        } else {
            assert_eq!(header(&r, "access-control-allow-headers"), None);
        }
    }
    // HTTP clients normalise dot segments, so send this one by hand.
    for path in [
        "/v1/stream/a/../b",
        "/v1/stream/a/%2E%2E/b",
        "/v1/stream/%00",
    ] {
        let status = common::raw_status(
            &s.url,
            &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        );
        assert_eq!(status, 400, "{path}");
    }
}

#[tokio::test]
async fn data_survives_a_clean_restart() {
    let dir = tmp();
    let c = client();
    let mut s = Server::start(dir.path(), &[]);
    let url = s.stream_url("keep");
    c.put(&url)
        .header("content-type", "text/plain")
        .header("stream-ttl", "3600")
        .body("one")
        .send()
        .await
        .unwrap();
    let status = s.terminate();
    assert!(status.success(), "clean exit on SIGTERM: {status:?}");
    let s = Server::start(dir.path(), &[]);
    let url = s.stream_url("keep");
    let r = c.head(&url).send().await.unwrap();
    assert_eq!(header(&r, "stream-ttl").as_deref(), Some("3600"));
    assert_eq!(
        c.get(format!("{url}?offset=-1"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "one"
    );
}
