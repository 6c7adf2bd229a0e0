//! Routing keys over HTTP, in full mode (with tiny segments, so keyed reads cross segments
//! and their key filters) and in local mode: `Stream-Key` on appends, reads by key
//! (`/pk/{key}` and `key=`, the path winning) in catch-up, long-poll and SSE, `since=`,
//! and `_routing_keys` paging.

use std::time::Duration;

use crate::common;
use common::{client, header, put, Server};
use reqwest::StatusCode;

async fn append(c: &reqwest::Client, url: &str, key: Option<&str>, body: &str) -> StatusCode {
    let mut r = c
        .post(url)
        .header("content-type", "text/plain")
        .body(body.to_string());
    if let Some(k) = key {
        r = r.header("stream-key", k);
    }
    r.send().await.unwrap().status()
}

/// The whole of a keyed read from the start, page by page: (body, last next offset).
async fn read_key(c: &reqwest::Client, url: &str) -> (String, String) {
    let mut next = "-1".to_string();
    let mut out = String::new();
    loop {
        let sep = if url.contains('?') { '&' } else { '?' };
        let r = c
            .get(format!("{url}{sep}offset={next}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{url}");
        let done = header(&r, "stream-up-to-date").is_some();
        next = header(&r, "stream-next-offset").unwrap();
        out.push_str(&r.text().await.unwrap());
        if done {
            return (out, next);
        }
    }
}

async fn keyed_reads(s: &Server) {
    let c = client();
    let url = s.stream_url("rk");
    assert_eq!(put(&c, &url, "text/plain", "").await.status(), 201);
    for i in 0..30 {
        let key = ["alpha", "beta/x", "gamma"][i % 3];
        assert_eq!(
            append(&c, &url, Some(key), &format!("{key}:{i};")).await,
            204
        );
    }
    assert_eq!(append(&c, &url, None, "nokey;").await, 204);
    assert_eq!(append(&c, &url, Some(""), "empty;").await, 204);
    // Give the segmenter a moment to cut the first entries (full mode): keyed reads must be
    // the same wherever the entries are.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let (beta, next) = read_key(&c, &s.stream_url("rk/pk/beta%2Fx")).await;
    let want: String = (0..30)
        .filter(|i| i % 3 == 1)
        .map(|i| format!("beta/x:{i};"))
        .collect();
    assert_eq!(beta, want);
    // The next offset is where scanning stopped: the tail, not after the last match.
    let tail = header(&c.head(&url).send().await.unwrap(), "stream-next-offset").unwrap();
    assert_eq!(next, tail);
    // `key=` works too, and the path wins over it.
    assert_eq!(
        read_key(&c, &format!("{url}?key=gamma"))
            .await
            .0
            .matches(';')
            .count(),
        10
    );
    let (alpha, _) = read_key(&c, &format!("{}?key=gamma", s.stream_url("rk/pk/alpha"))).await;
    assert!(alpha.starts_with("alpha:0;") && !alpha.contains("gamma"));
    // `key=` (empty) is no filter.
    assert_eq!(
        read_key(&c, &format!("{url}?key="))
            .await
            .0
            .matches(';')
            .count(),
        32
    );
    // A malformed escape in the key is a 400.
    let r = c
        .get(s.stream_url("rk/pk/%zz?offset=-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // `_routing_keys`: non-empty keys in byte order, paged with `after`.
    let page = |q: &str| {
        let c = c.clone();
        let u = format!("{}?{q}", s.stream_url("rk/_routing_keys"));
        async move {
            let r = c.get(u).send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.json::<serde_json::Value>().await.unwrap()
        }
    };
    let all = page("").await;
    assert_eq!(all["keys"], serde_json::json!(["alpha", "beta/x", "gamma"]));
    assert_eq!(all["next_after"], serde_json::Value::Null);
    assert_eq!(all["stream"], "rk");
    let p1 = page("limit=2").await;
    assert_eq!(p1["keys"], serde_json::json!(["alpha", "beta/x"]));
    assert_eq!(p1["next_after"], "beta/x");
    let p2 = page("limit=2&after=beta%2Fx").await;
    assert_eq!(p2["keys"], serde_json::json!(["gamma"]));
    assert_eq!(p2["next_after"], serde_json::Value::Null);
    for bad in ["limit=0", "limit=501", "limit=x"] {
        let r = c
            .get(format!("{}?{bad}", s.stream_url("rk/_routing_keys")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
    let r = c
        .post(s.stream_url("rk/_routing_keys"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "other methods");
    let r = c
        .get(s.stream_url("nope/_routing_keys"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

async fn keyed_live_reads(s: &Server) {
    let c = client();
    let url = s.stream_url("live");
    assert_eq!(put(&c, &url, "text/plain", "").await.status(), 201);
    let tail = header(&c.head(&url).send().await.unwrap(), "stream-next-offset").unwrap();
    // A keyed long-poll answers only on a matching append.
    let poll = {
        let c = c.clone();
        let u = format!(
            "{}?offset={tail}&live=long-poll",
            s.stream_url("live/pk/want")
        );
        tokio::spawn(async move { c.get(u).send().await.unwrap() })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(append(&c, &url, Some("other"), "o1;").await, 204);
    assert_eq!(append(&c, &url, None, "o2;").await, 204);
    assert_eq!(append(&c, &url, Some("want"), "w;").await, 204);
    let r = poll.await.unwrap();
    assert_eq!(r.status(), 200);
    let next = header(&r, "stream-next-offset").unwrap();
    assert_eq!(r.text().await.unwrap(), "w;");
    let after_w = header(&c.head(&url).send().await.unwrap(), "stream-next-offset").unwrap();
    assert_eq!(next, after_w);
    // A keyed long-poll that times out moves its offset past what it scanned.
    assert_eq!(append(&c, &url, Some("other"), "o3;").await, 204);
    let r = c
        .get(format!(
            "{}?offset={next}&live=long-poll",
            s.stream_url("live/pk/want")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let tail = header(&c.head(&url).send().await.unwrap(), "stream-next-offset").unwrap();
    assert_eq!(header(&r, "stream-next-offset").unwrap(), tail);

    // SSE by key: data events only for the key.
    let r = c
        .get(format!(
            "{}?offset=-1&live=sse",
            s.stream_url("live/pk/want")
        ))
        .send()
        .await
        .unwrap();
    let mut body = r.bytes_stream();
    use futures_util::StreamExt as _;
    let mut text = String::new();
    while !text.contains("event: control") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), body.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.contains("data:w;"), "{text}");
    assert!(!text.contains("o1;") && !text.contains("o3;"), "{text}");
}

async fn since_reads(s: &Server) {
    let c = client();
    let url = s.stream_url("times");
    assert_eq!(put(&c, &url, "text/plain", "").await.status(), 201);
    assert_eq!(append(&c, &url, Some("a"), "early;").await, 204);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let cut = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(append(&c, &url, Some("b"), "late-b;").await, 204);
    assert_eq!(append(&c, &url, Some("a"), "late-a;").await, 204);
    let since = prisma_streams::protocol::headers::format_rfc3339_ms(cut);
    let get = |u: String| {
        let c = c.clone();
        async move { c.get(u).send().await.unwrap() }
    };
    let r = get(format!("{url}?since={since}")).await;
    assert_eq!(r.text().await.unwrap(), "late-b;late-a;");
    let r = get(format!("{}?since={since}", s.stream_url("times/pk/a"))).await;
    assert_eq!(r.text().await.unwrap(), "late-a;");
    // `offset` wins over `since`; a bad `since` is a 400.
    let r = get(format!("{url}?since={since}&offset=-1")).await;
    assert_eq!(r.text().await.unwrap(), "early;late-b;late-a;");
    let r = get(format!("{url}?since=yesterday")).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn full_mode_with_tiny_segments() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), common::tier::TINY);
    keyed_reads(&s).await;
    keyed_live_reads(&s).await;
    since_reads(&s).await;
}

#[tokio::test]
async fn local_mode() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_local(dir.path(), &[]);
    keyed_reads(&s).await;
    keyed_live_reads(&s).await;
    since_reads(&s).await;
}

/// A node rebuilt from the object store lists the routing keys of its restored segments
/// (read once from the segments) and reads by key from them.
#[tokio::test]
async fn keys_survive_a_bootstrap() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("node");
    let c = client();
    let s = Server::start_full(&root, "local", common::tier::TINY, &[]);
    let url = s.stream_url("k");
    put(&c, &url, "text/plain", "").await;
    for i in 0..10 {
        append(&c, &url, Some(["x", "y"][i % 2]), &format!("{i};")).await;
    }
    let store = common::tier::store_for("local", &root);
    common::tier::wait_uploaded(&store, "k", 10).await;
    drop(s);
    common::tier::wipe_node(&root);
    let s = Server::start_full(&root, "local", common::tier::TINY, &["--bootstrap-from-r2"]);
    let r = c.get(s.stream_url("k/_routing_keys")).send().await.unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["keys"], serde_json::json!(["x", "y"]));
    let (y, _) = read_key(&c, &s.stream_url("k/pk/y")).await;
    assert_eq!(y, "1;3;5;7;9;");
}
