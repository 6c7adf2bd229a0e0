//! Test harness: runs the real `prisma-streams` binary on 127.0.0.1:0 with its own data
//! directory and stops it when dropped.

pub mod faulty;
pub mod inproc;
pub mod tier;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_prisma-streams");

/// A test's real dependency (root for a tmpfs, an S3 server) is missing. With
/// `PRISMA_STREAMS_TEST_STRICT` set (the test script sets it where everything must run,
/// as in CI) this fails the test; otherwise it says why the test did not run.
pub fn missing_dependency(what: &str) {
    if std::env::var_os("PRISMA_STREAMS_TEST_STRICT").is_some() {
        panic!("{what}: this test must run (PRISMA_STREAMS_TEST_STRICT is set)");
    }
    eprintln!("skipped: {what}");
}

pub struct Server {
    pub child: Child,
    pub url: String,
    pub ready: serde_json::Value,
    pub stdin: Option<ChildStdin>,
}

impl Server {
    /// Starts a full-mode server (memory object store) on `root` with extra env vars.
    pub fn start(root: &Path, env: &[(&str, &str)]) -> Server {
        Self::start_with_args(root, env, &[])
    }

    pub fn start_with_args(root: &Path, env: &[(&str, &str)], extra: &[&str]) -> Server {
        Self::start_full(root, "memory", env, extra)
    }

    /// Starts a full-mode server with the given object store; `DURABLE_STREAMS_S3_*` from
    /// the test's environment are passed on.
    pub fn start_full(root: &Path, store: &str, env: &[(&str, &str)], extra: &[&str]) -> Server {
        Self::spawn(full_command(root, store, env, extra))
    }

    /// Starts a local-mode server (`local start`) named `test` under the data root `root`.
    pub fn start_local(root: &Path, env: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new(BIN);
        cmd.args(["local", "start", "--name", "test", "--port", "0"])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DS_LOCAL_DATA_ROOT", root)
            .env("DS_LONG_POLL_TIMEOUT_MS", "500")
            .env("DS_LOG", "warn")
            .envs(env.iter().copied());
        Self::spawn(cmd)
    }

    /// Spawns a server command and waits for its readiness line.
    fn spawn(mut cmd: Command) -> Server {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("spawn server");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read readiness line");
        let ready: serde_json::Value = serde_json::from_str(line.trim())
            .unwrap_or_else(|e| panic!("bad readiness line {line:?}: {e}"));
        assert_eq!(ready["type"], "ready");
        let url = ready["exports"]["http"]["url"]
            .as_str()
            .expect("url")
            .to_string();
        let stdin = child.stdin.take();
        Server {
            child,
            url,
            ready,
            stdin,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stream_url(&self, name: &str) -> String {
        format!("{}/v1/stream/{name}", self.url)
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait; returns the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        self.child.wait().expect("wait for server")
    }
}

/// The command [`Server::start_full`] runs.
fn full_command(root: &Path, store: &str, env: &[(&str, &str)], extra: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(["server", "--object-store", store])
        .args(extra)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DS_ROOT", root)
        .env("PORT", "0")
        .env("DS_HOST", "127.0.0.1")
        .env("DS_LONG_POLL_TIMEOUT_MS", "500")
        .env("DS_LOG", "warn")
        // No metrics events unless a test asks for them (they add a stream).
        .env("DS_METRICS_FLUSH_MS", "0");
    for (k, v) in std::env::vars() {
        if k.starts_with("DURABLE_STREAMS_S3_") {
            cmd.env(k, v);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Runs a full-mode server that is expected to stop on its own (a refused start), to its
/// exit. Its standard input is closed and `--exit-on-stdin-eof` given, so one that does
/// start anyway stops right after its readiness line instead of running on.
pub fn run_full(
    root: &Path,
    store: &str,
    env: &[(&str, &str)],
    extra: &[&str],
) -> std::process::Output {
    let mut cmd = full_command(root, store, env, extra);
    cmd.arg("--exit-on-stdin-eof")
        .stdin(Stdio::null())
        .output()
        .expect("run server")
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .expect("client")
}

pub fn header(res: &reqwest::Response, name: &str) -> Option<String> {
    res.headers()
        .get(name)
        .map(|v| v.to_str().expect("ascii header").to_string())
}

/// Sends a raw HTTP/1.1 request and returns the response status code.
pub fn raw_status(base_url: &str, request: &str) -> u16 {
    use std::io::{Read, Write};
    let addr = base_url.trim_start_matches("http://");
    let mut sock = std::net::TcpStream::connect(addr).expect("connect");
    sock.write_all(request.as_bytes()).expect("write");
    let mut buf = Vec::new();
    let _ = sock.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    text.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"))
}

/// `PUT` with a content type and body.
pub async fn put(
    c: &reqwest::Client,
    url: &str,
    ct: &str,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    c.put(url)
        .header("content-type", ct)
        .body(body)
        .send()
        .await
        .expect("PUT")
}

/// `POST` with a content type and body.
pub async fn post(
    c: &reqwest::Client,
    url: &str,
    ct: &str,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    c.post(url)
        .header("content-type", ct)
        .body(body)
        .send()
        .await
        .expect("POST")
}

/// The body of a catch-up read from the start (one page).
pub async fn read_text(c: &reqwest::Client, url: &str) -> String {
    let r = c.get(format!("{url}?offset=-1")).send().await.expect("GET");
    r.text().await.expect("body")
}

/// The JSON body of a GET.
pub async fn get_json(c: &reqwest::Client, url: &str) -> serde_json::Value {
    let r = c.get(url).send().await.expect("GET");
    r.json().await.expect("a JSON body")
}

/// The status of a request without a body.
pub async fn status(
    c: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
) -> reqwest::StatusCode {
    c.request(method, url)
        .send()
        .await
        .expect("request")
        .status()
}

/// A stream read from `offset=-1` to its tail, page by page.
pub struct Pages {
    pub bodies: Vec<bytes::Bytes>,
    pub json: bool,
    /// `Stream-Next-Offset` of the last page.
    pub next: String,
    pub closed: bool,
}

impl Pages {
    /// The pages' bytes in order; JSON pages are joined into one list of messages
    /// (their arrays' insides, comma-separated, without the brackets).
    pub fn joined(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for page in &self.bodies {
            if !self.json {
                out.extend_from_slice(page);
                continue;
            }
            let inner = &page[1..page.len() - 1];
            if !inner.is_empty() {
                if !out.is_empty() {
                    out.push(b',');
                }
                out.extend_from_slice(inner);
            }
        }
        out
    }
}

/// Reads `url` from the start until `Stream-Up-To-Date`. The first response that is not
/// a 200 is returned as the error.
pub async fn read_pages(c: &reqwest::Client, url: &str) -> Result<Pages, reqwest::Response> {
    let mut pages = Pages {
        bodies: Vec::new(),
        json: false,
        next: "-1".to_string(),
        closed: false,
    };
    loop {
        let r = c
            .get(format!("{url}?offset={}", pages.next))
            .send()
            .await
            .expect("GET");
        if r.status() != 200 {
            return Err(r);
        }
        let done = header(&r, "stream-up-to-date").is_some();
        pages.closed = header(&r, "stream-closed").is_some();
        pages.next = header(&r, "stream-next-offset").expect("Stream-Next-Offset");
        pages.json = header(&r, "content-type")
            .expect("Content-Type")
            .starts_with("application/json");
        pages.bodies.push(r.bytes().await.expect("page body"));
        if done {
            return Ok(pages);
        }
    }
}
