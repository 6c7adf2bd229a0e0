//! Optional bearer authentication: off by default, on with `DS_AUTH_TOKEN` or
//! `DS_AUTH_TOKEN_FILE`; `/health` and CORS preflights stay open; a server refuses to
//! listen beyond loopback without a token unless told `--allow-unauthenticated`.

use std::process::Command;

use crate::common;
use common::{client, Server, BIN};
use reqwest::StatusCode;

const TOKEN: &str = "s3cret-token-0123456789";

async fn check_protected(s: &Server) {
    let c = client();
    let url = s.stream_url("private");
    let health = c.get(format!("{}/health", s.url)).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);

    for auth in [None, Some("Bearer wrong-token-0123456789"), Some(TOKEN)] {
        let mut req = c.put(&url).header("content-type", "text/plain");
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{auth:?}");
        assert_eq!(
            common::header(&r, "www-authenticate").as_deref(),
            Some("Bearer realm=\"prisma-streams\"")
        );
        assert_eq!(
            common::header(&r, "access-control-allow-origin").as_deref(),
            Some("*")
        );
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unauthorized");
    }
    for path in ["/metrics", "/v1/streams", "/v1/stream/private?offset=-1"] {
        let r = c.get(format!("{}{path}", s.url)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path}");
    }
    // Browsers send preflights without credentials.
    let r = c
        .request(reqwest::Method::OPTIONS, &url)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);

    let bearer = format!("Bearer {TOKEN}");
    let r = c
        .put(&url)
        .header("content-type", "text/plain")
        .header("authorization", &bearer)
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = c
        .get(format!("{url}?offset=-1"))
        // The scheme is case-insensitive.
        .header("authorization", format!("bearer {TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.text().await.unwrap(), "hello");
}

#[tokio::test]
async fn a_token_from_the_environment_protects_everything_but_health() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[("DS_AUTH_TOKEN", TOKEN)]);
    check_protected(&s).await;
}

#[tokio::test]
async fn a_token_file_works_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, format!("{TOKEN}\n")).unwrap();
    let s = Server::start(
        &dir.path().join("data"),
        &[("DS_AUTH_TOKEN_FILE", file.to_str().unwrap())],
    );
    check_protected(&s).await;
}

#[tokio::test]
async fn without_a_token_nothing_is_required() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    let r = common::put(&client(), &s.stream_url("open"), "text/plain", "").await;
    assert_eq!(r.status(), StatusCode::CREATED);
}

fn run(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_clear()
        .env("DS_ROOT", dir.path())
        .env("DS_LOCAL_DATA_ROOT", dir.path())
        .env("PORT", "0");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run binary");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn non_loopback_addresses_need_a_token_or_an_explicit_acknowledgement() {
    // These fail during configuration, before anything is bound.
    let (code, err) = run(
        &["server", "--object-store", "memory"],
        &[("DS_HOST", "0.0.0.0")],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("refusing to listen on 0.0.0.0"), "{err}");
    assert!(err.contains("--allow-unauthenticated"), "{err}");
    let (code, err) = run(&["local", "start", "--name", "x", "--hostname", "::"], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("refusing to listen on ::"), "{err}");

    let (code, err) = run(
        &["server", "--object-store", "memory"],
        &[("DS_AUTH_TOKEN", "short")],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("at least 16 characters"), "{err}");
    let (code, err) = run(
        &["server", "--object-store", "memory"],
        &[
            ("DS_AUTH_TOKEN", TOKEN),
            ("DS_AUTH_TOKEN_FILE", "/nonexistent"),
        ],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not both"), "{err}");
    let (code, err) = run(
        &["server", "--object-store", "memory"],
        &[("DS_AUTH_TOKEN_FILE", "/nonexistent/token")],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("cannot read DS_AUTH_TOKEN_FILE"), "{err}");
}
