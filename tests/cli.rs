//! The command-line contract: exit codes, one-line errors, readiness and shutdown.

use std::process::{Command, Stdio};

use crate::common;
use common::{Server, BIN};

fn run(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_clear()
        .env("DS_ROOT", dir.path())
        .env("PORT", "0")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[test]
fn version_and_help_exit_zero() {
    let out = run(&["--version"], &[]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
    let out = run(&["server", "--help"], &[]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("--object-store"));
}

#[test]
fn usage_and_config_errors_exit_two_with_one_line() {
    let out = run(&["server"], &[]);
    assert_eq!(out.status.code(), Some(2), "--object-store is required");
    let out = run(&["server", "--object-store", "floppy"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(
        &[
            "server",
            "--object-store",
            "local",
            "--bootstrap-discard-local",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "only with --bootstrap-from-r2");
    for (k, v) in [
        ("PORT", "99999"),
        ("DS_HOST", "nowhere"),
        ("DS_READ_MAX_BYTES", "lots"),
    ] {
        let out = run(&["server", "--object-store", "memory"], &[(k, v)]);
        assert_eq!(out.status.code(), Some(2), "{k}={v}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(err.contains(k), "names the variable: {err}");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn port_in_use_is_a_clear_failure() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    let port = s.ready["exports"]["http"]["port"]
        .as_u64()
        .unwrap()
        .to_string();
    let out = run(&["server", "--object-store", "memory"], &[("PORT", &port)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot listen"));
}

#[test]
fn readiness_line_then_exit_on_stdin_eof() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::start_with_args(dir.path(), &[], &["--exit-on-stdin-eof"]);
    let ex = &s.ready["exports"];
    assert_eq!(ex["pid"].as_u64().unwrap(), s.child.id() as u64);
    assert!(ex["sqlite"]["path"]
        .as_str()
        .unwrap()
        .ends_with("wal.sqlite"));
    assert!(ex["http"]["url"]
        .as_str()
        .unwrap()
        .starts_with("http://127.0.0.1:"));
    drop(s.stdin.take()); // close the server's stdin
    let status = s.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

/// Serves one canned HTTP response per connection on 127.0.0.1 (a stand-in for the
/// release API), for `connections` connections.
fn serve_json(body: &'static str, connections: usize) -> String {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in l.incoming().take(connections).flatten() {
            let mut s = stream;
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let resp = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = s.write_all(resp.as_bytes());
        }
    });
    format!("http://{addr}")
}

#[test]
fn self_update_check_reports_a_newer_release() {
    let api = serve_json(
        r#"{"tag_name":"v99.0.0","name":"v99.0.0","created_at":"2026-11-27T00:00:00Z","body":"","assets":[{"name":"prisma-streams-x86_64-unknown-linux-gnu.tar.gz","url":"http://127.0.0.1:9/a","browser_download_url":"http://127.0.0.1:9/a"}]}"#,
        4,
    );
    let out = run(
        &["self-update", "--check"],
        &[("PRISMA_STREAMS_UPDATE_API", &api)],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("update available") && stdout.contains("99.0.0"),
        "{stdout}"
    );
}

#[test]
fn self_update_fails_clearly_offline_and_refuses_npm_installs() {
    let out = run(
        &["self-update", "--check"],
        &[("PRISMA_STREAMS_UPDATE_API", "http://127.0.0.1:9")],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let out = run(&["self-update"], &[("PRISMA_STREAMS_MANAGED_BY", "npm")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("npm install"));
}

#[test]
fn sigterm_stops_a_server_whose_stdin_stays_open() {
    // Supervisors keep the pipe open and signal; the stdin watcher must not keep the
    // process alive.
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::start_with_args(dir.path(), &[], &["--exit-on-stdin-eof"]);
    assert!(s.stdin.is_some(), "stdin stays open");
    let status = s.terminate();
    assert!(status.success(), "{status:?}");
}

/// The original's server flags start ours unchanged: `--no-auth`, `--auth-strategy api-key`
/// with `API_KEY`, and `--auto-tune MB` in the space form.
#[tokio::test]
async fn the_originals_command_line_is_accepted() {
    let c = common::client();
    let dir = tempfile::tempdir().unwrap();
    let mut open = Server::start_with_args(dir.path(), &[], &["--no-auth", "--auto-tune", "1024"]);
    let r = c.put(open.stream_url("a")).send().await.unwrap();
    assert_eq!(r.status(), 201, "--no-auth serves without a token");
    open.terminate();

    let dir = tempfile::tempdir().unwrap();
    let mut keyed = Server::start_with_args(
        dir.path(),
        &[("API_KEY", "0123456789")],
        &["--auth-strategy", "api-key"],
    );
    let r = c.put(keyed.stream_url("a")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = c
        .put(keyed.stream_url("a"))
        .bearer_auth("0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "API_KEY is the bearer token");
    keyed.terminate();

    for (args, env, says) in [
        (
            &["--no-auth", "--auth-strategy", "api-key"][..],
            &[][..],
            "cannot be used with",
        ),
        (&["--auth-strategy", "api-key"], &[], "API_KEY"),
        (
            &["--auth-strategy", "api-key"],
            &[("API_KEY", "short")],
            "API_KEY",
        ),
        (
            &["--no-auth"],
            &[("DS_AUTH_TOKEN", "0123456789abcdef")],
            "--no-auth",
        ),
    ] {
        let mut all = vec!["server", "--object-store", "memory"];
        all.extend_from_slice(args);
        let out = run(&all, env);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}
