//! Error responses: one stable machine code per cause (the status codes of the protocol),
//! a request id in every response and error body, and no internal detail (paths, object
//! keys, SQL) in a body even when storage fails.

use crate::common;
use common::{client, header, post, put, Server};
use reqwest::StatusCode;

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

/// Status, machine code, and the request id (in the body and in `x-request-id`).
async fn error(r: reqwest::Response) -> (StatusCode, String) {
    let status = r.status();
    let id = header(&r, "x-request-id").expect("x-request-id on every response");
    let body: serde_json::Value = r.json().await.expect("JSON error body");
    assert_eq!(body["error"]["request_id"], id.as_str(), "{body}");
    let code = body["error"]["code"].as_str().expect("code").to_string();
    (status, code)
}

#[tokio::test]
async fn every_conflict_has_its_own_code() {
    let dir = tmp();
    let srv = Server::start(dir.path(), &[]);
    let c = client();
    let s = srv.stream_url("s");
    assert_eq!(put(&c, &s, "text/plain", "").await.status(), 201);

    let r = put(&c, &s, "application/json", "").await;
    assert_eq!(
        error(r).await,
        (StatusCode::CONFLICT, "stream_exists".into())
    );

    let r = post(&c, &s, "application/json", "[1]").await;
    assert_eq!(
        error(r).await,
        (StatusCode::CONFLICT, "content_type_mismatch".into())
    );

    let producer = |epoch: &str, seq: &str| {
        c.post(&s)
            .header("content-type", "text/plain")
            .header("producer-id", "p")
            .header("producer-epoch", epoch.to_string())
            .header("producer-seq", seq.to_string())
            .body("x")
    };
    assert_eq!(producer("1", "0").send().await.unwrap().status(), 200);
    let r = producer("0", "1").send().await.unwrap();
    assert_eq!(
        error(r).await,
        (StatusCode::FORBIDDEN, "producer_fenced".into())
    );
    let r = producer("1", "5").send().await.unwrap();
    assert_eq!(
        error(r).await,
        (StatusCode::CONFLICT, "producer_seq_gap".into())
    );
    let r = producer("2", "3").send().await.unwrap();
    assert_eq!(
        error(r).await,
        (StatusCode::BAD_REQUEST, "producer_seq_invalid".into())
    );

    let seq = |v: &str| {
        c.post(&s)
            .header("content-type", "text/plain")
            .header("stream-seq", v.to_string())
            .body("y")
    };
    assert_eq!(seq("b").send().await.unwrap().status(), 204);
    let r = seq("a").send().await.unwrap();
    assert_eq!(
        error(r).await,
        (StatusCode::CONFLICT, "seq_conflict".into())
    );

    let fork = |name: &str, from: &str, ct: &str| {
        c.put(srv.stream_url(name))
            .header("content-type", ct.to_string())
            .header("stream-forked-from", format!("/v1/stream/{from}"))
    };
    let r = fork("f0", "nope", "text/plain").send().await.unwrap();
    assert_eq!(
        error(r).await,
        (StatusCode::NOT_FOUND, "fork_source_not_found".into())
    );
    let r = fork("f1", "s", "application/json").send().await.unwrap();
    assert_eq!(
        error(r).await,
        (StatusCode::CONFLICT, "fork_content_type_mismatch".into())
    );
    assert_eq!(
        fork("f2", "s", "text/plain").send().await.unwrap().status(),
        201
    );
    // `s` is still read by its fork: deleting only marks it deleted.
    assert_eq!(c.delete(&s).send().await.unwrap().status(), 204);
    let r = c.get(format!("{s}?offset=-1")).send().await.unwrap();
    assert_eq!(error(r).await, (StatusCode::GONE, "stream_deleted".into()));
    let r = put(&c, &s, "text/plain", "").await;
    assert_eq!(
        error(r).await,
        (StatusCode::CONFLICT, "stream_soft_deleted".into())
    );
    let r = fork("f3", "s", "text/plain").send().await.unwrap();
    assert_eq!(
        error(r).await,
        (StatusCode::CONFLICT, "fork_source_deleted".into())
    );

    let closed = srv.stream_url("closed");
    let r = c
        .put(&closed)
        .header("content-type", "text/plain")
        .header("stream-closed", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = post(&c, &closed, "text/plain", "z").await;
    assert_eq!(header(&r, "stream-closed").as_deref(), Some("true"));
    assert_eq!(
        error(r).await,
        (StatusCode::CONFLICT, "stream_closed".into())
    );

    let r = c
        .get(srv.stream_url("missing?offset=-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(error(r).await, (StatusCode::NOT_FOUND, "not_found".into()));
    // Successful responses carry a request id too.
    let ok = c.head(srv.stream_url("closed")).send().await.unwrap();
    assert!(header(&ok, "x-request-id").is_some());
}

/// A segment whose bytes are damaged both on local disk and in the object store answers
/// 500 `internal`: the body names the request id, never the file, object key or checksum
/// detail, which are in the log.
#[tokio::test]
async fn storage_failures_do_not_leak_internal_detail() {
    let dir = tmp();
    let logs = dir.path().join("logs");
    let logs_dir = logs.display().to_string();
    let mut env: Vec<(&str, &str)> = common::tier::TINY.to_vec();
    env.push(("DS_SEGMENT_CACHE_MAX_BYTES", "1000000000"));
    env.push(("DS_LOG_DIR", &logs_dir));
    let srv = Server::start_full(dir.path(), "local", &env, &[]);
    let c = client();
    let s = srv.stream_url("s");
    assert_eq!(put(&c, &s, "text/plain", "").await.status(), 201);
    for i in 0..5 {
        post(&c, &s, "text/plain", format!("entry-{i};")).await;
    }
    let store = common::tier::store_for("local", dir.path());
    common::tier::wait_uploaded(&store, "s", 5).await;

    // Damage every copy of the segment: local file and object.
    let mut damaged = 0;
    for root in [dir.path().join("segments"), dir.path().join("objects")] {
        for path in files_under(&root) {
            if path.extension().is_some_and(|e| e == "seg") {
                let mut bytes = std::fs::read(&path).unwrap();
                let mid = bytes.len() / 3;
                for b in &mut bytes[mid..mid + 8] {
                    *b ^= 0xff;
                }
                std::fs::write(&path, bytes).unwrap();
                damaged += 1;
            }
        }
    }
    assert!(damaged >= 1);
    let r = c.get(format!("{s}?offset=-1")).send().await.unwrap();
    let text = format!("{:?}", r.headers());
    let (status, id) = (r.status(), header(&r, "x-request-id").unwrap());
    let body = r.text().await.unwrap();
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["code"], "internal", "{body}");
    for secret in [
        "streams/",
        ".seg",
        "segment",
        "checksum",
        dir.path().to_str().unwrap(),
    ] {
        assert!(!body.contains(secret), "{secret:?} leaked: {body}");
        assert!(
            !text.contains(secret),
            "{secret:?} leaked in headers: {text}"
        );
    }
    // The detail is in the log, under the request id.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let log: String = files_under(&logs)
            .iter()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .collect();
        let line = log.lines().find(|l| l.contains(&id));
        if let Some(line) = line {
            assert!(line.contains("unreadable"), "{line}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no log line for {id}:\n{log}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn files_under(root: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(root) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}
