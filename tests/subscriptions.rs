//! Durable Streams subscriptions over HTTP (`/v1/stream/__ds/`): webhook signatures
//! verified against the published key, a receiver that is down and then up, fencing after
//! a new generation, the webhook target rules (nothing is connected to for a refused URL),
//! links (patterns, explicit streams, deletions), the routes left open under
//! `DS_AUTH_TOKEN`, and restarts with a pending webhook retry and with a held lease.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::common;
use axum::body::Bytes;
use axum::http::HeaderMap;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use common::{client, put, Server};
use ed25519_dalek::{Signature, Verifier as _, VerifyingKey};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

type Client = reqwest::Client;

/// Fast retries, so that a test waits for behaviour, not for the default backoff.
const FAST_RETRIES: [(&str, &str); 2] = [
    ("DS_WEBHOOK_RETRY_BASE_MS", "50"),
    ("DS_WEBHOOK_RETRY_MAX_MS", "200"),
];

/// How long a test waits for something that should happen soon.
const PATIENCE: Duration = Duration::from_secs(20);

/// One webhook request as the receiver saw it.
#[derive(Debug)]
struct Hook {
    signature: String,
    raw: String,
    body: Value,
}

/// A webhook receiver on 127.0.0.1 that answers every POST with `respond`.
struct Receiver {
    url: String,
    rx: mpsc::UnboundedReceiver<Hook>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start(port: u16, respond: Value) -> Receiver {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = mpsc::unbounded_channel();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let (tx, respond) = (tx.clone(), respond.clone());
                async move {
                    let raw = String::from_utf8(body.to_vec()).unwrap();
                    let _ = tx.send(Hook {
                        signature: headers
                            .get("webhook-signature")
                            .map(|v| v.to_str().unwrap().to_string())
                            .unwrap_or_default(),
                        body: serde_json::from_str(&raw).unwrap(),
                        raw,
                    });
                    ([("content-type", "application/json")], respond.to_string())
                }
            }),
        );
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receiver {
            url: format!("http://127.0.0.1:{port}/hook"),
            rx,
            task,
        }
    }

    async fn next(&mut self) -> Hook {
        tokio::time::timeout(PATIENCE, self.rx.recv())
            .await
            .expect("no webhook arrived")
            .unwrap()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A free port on 127.0.0.1 with nothing listening on it (yet).
async fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

fn sub_url(s: &Server, id: &str) -> String {
    s.stream_url(&format!("__ds/subscriptions/{id}"))
}

async fn send(c: &Client, method: reqwest::Method, url: &str, body: Option<Value>) -> (u16, Value) {
    send_auth(c, method, url, body, None).await
}

async fn send_auth(
    c: &Client,
    method: reqwest::Method,
    url: &str,
    body: Option<Value>,
    token: Option<&str>,
) -> (u16, Value) {
    let mut r = c.request(method, url);
    if let Some(b) = body {
        r = r
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    if let Some(t) = token {
        r = r.header("authorization", format!("Bearer {t}"));
    }
    let res = r.send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn create(c: &Client, s: &Server, id: &str, body: Value) -> (u16, Value) {
    send(c, reqwest::Method::PUT, &sub_url(s, id), Some(body)).await
}

async fn get_sub(c: &Client, s: &Server, id: &str) -> Value {
    let (status, v) = send(c, reqwest::Method::GET, &sub_url(s, id), None).await;
    assert_eq!(status, 200, "{v}");
    v
}

fn link<'a>(sub: &'a Value, path: &str) -> Option<&'a Value> {
    sub["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["path"] == path)
}

/// Polls the subscription until `ok` holds for it.
async fn wait_sub(
    c: &Client,
    s: &Server,
    id: &str,
    what: &str,
    ok: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let v = get_sub(c, s, id).await;
        if ok(&v) {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what}: {v}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn tail(c: &Client, s: &Server, name: &str) -> String {
    let r = c.head(s.stream_url(name)).send().await.unwrap();
    r.headers()["stream-next-offset"]
        .to_str()
        .unwrap()
        .to_string()
}

/// Verifies a `Webhook-Signature` over `raw` with the key set served at `jwks_url`.
async fn verify(c: &Client, jwks_url: &str, signature: &str, raw: &str) -> bool {
    let res = c.get(jwks_url).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/jwk-set+json");
    let jwks: Value = res.json().await.unwrap();
    let mut t = None;
    let mut kid = None;
    let mut sig = None;
    for part in signature.split(',') {
        match part.split_once('=').unwrap() {
            ("t", v) => t = Some(v.to_string()),
            ("kid", v) => kid = Some(v.to_string()),
            ("ed25519", v) => sig = Some(v.to_string()),
            _ => {}
        }
    }
    let (t, kid, sig) = (t.unwrap(), kid.unwrap(), sig.unwrap());
    let Some(jwk) = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
    else {
        return false;
    };
    assert_eq!(
        (&jwk["kty"], &jwk["crv"], &jwk["alg"]),
        (&json!("OKP"), &json!("Ed25519"), &json!("EdDSA"))
    );
    let x: [u8; 32] = B64
        .decode(jwk["x"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let key = VerifyingKey::from_bytes(&x).unwrap();
    let sig: [u8; 64] = B64.decode(sig).unwrap().try_into().unwrap();
    key.verify(
        format!("{t}.{raw}").as_bytes(),
        &Signature::from_bytes(&sig),
    )
    .is_ok()
}

#[tokio::test]
async fn webhook_signature_verifies_with_the_published_key_and_done_acks() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::start(dir.path(), &[]);
    let c = client();
    let mut rx = Receiver::start(0, json!({"done": true})).await;
    let (status, created) = create(
        &c,
        &s,
        "signed",
        json!({"type": "webhook", "pattern": "orders/*", "webhook": {"url": rx.url}}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let jwks_url = created["webhook"]["signing"]["jwks_url"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(jwks_url, s.stream_url("__ds/jwks.json"));
    put(
        &c,
        &s.stream_url("orders/1"),
        "application/json",
        r#"{"n":1}"#,
    )
    .await;

    let hook = rx.next().await;
    assert!(verify(&c, &jwks_url, &hook.signature, &hook.raw).await);
    // A changed body does not verify.
    assert!(
        !verify(
            &c,
            &jwks_url,
            &hook.signature,
            &hook.raw.replace("orders", "ordert")
        )
        .await
    );
    assert_eq!(hook.body["subscription_id"], "signed");
    assert_eq!(hook.body["generation"], 1);
    assert_eq!(
        hook.body["callback_url"],
        s.stream_url("__ds/subscriptions/signed/callback")
    );
    let tail = tail(&c, &s, "orders/1").await;
    let l = &hook.body["streams"][0];
    assert_eq!(
        (&l["path"], &l["acked_offset"], &l["has_pending"]),
        (&json!("orders/1"), &json!("-1"), &json!(true))
    );
    assert_eq!(l["tail_offset"], tail.as_str());

    // {done:true} acknowledged the snapshot: nothing pending, no further wake.
    let v = wait_sub(&c, &s, "signed", "auto-ack", |v| {
        link(v, "orders/1").is_some_and(|l| l["acked_offset"] == tail.as_str())
    })
    .await;
    assert_eq!(v["status"], "active");
    s.terminate();
}

#[tokio::test]
async fn a_receiver_that_is_down_then_up_gets_the_wake() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::start(dir.path(), &FAST_RETRIES);
    let c = client();
    let port = free_port().await;
    let url = format!("http://127.0.0.1:{port}/hook");
    let (status, _) = create(
        &c,
        &s,
        "down",
        json!({"type": "webhook", "streams": ["jobs"], "webhook": {"url": url}}),
    )
    .await;
    assert_eq!(status, 201);
    put(&c, &s.stream_url("jobs"), "application/json", r#"{"n":1}"#).await;
    // Nothing listens: the delivery fails and is retried.
    wait_sub(&c, &s, "down", "failed delivery", |v| {
        v["status"] == "failed"
    })
    .await;

    let mut rx = Receiver::start(port, json!({"done": true})).await;
    let hook = rx.next().await;
    assert_eq!(hook.body["subscription_id"], "down");
    assert_eq!(hook.body["generation"], 1, "a retry of the same wake");
    let tail = tail(&c, &s, "jobs").await;
    wait_sub(&c, &s, "down", "delivered and acked", |v| {
        v["status"] == "active" && link(v, "jobs").unwrap()["acked_offset"] == tail.as_str()
    })
    .await;
    s.terminate();
}

#[tokio::test]
async fn a_new_generation_fences_the_old_token() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::start(dir.path(), &[]);
    let c = client();
    use reqwest::Method;

    // Webhook: the receiver accepts but never says done; the lease runs out and the
    // next wake (generation 2) fences generation 1's token.
    let mut rx = Receiver::start(0, json!({})).await;
    create(
        &c,
        &s,
        "hook",
        json!({"type": "webhook", "streams": ["w/a"], "webhook": {"url": rx.url}, "lease_ttl_ms": 1000}),
    )
    .await;
    put(&c, &s.stream_url("w/a"), "application/json", r#"{"n":1}"#).await;
    let first = rx.next().await.body;
    let second = rx.next().await.body;
    assert_eq!(
        (&first["generation"], &second["generation"]),
        (&json!(1), &json!(2))
    );
    let cb = first["callback_url"].as_str().unwrap();
    let reply =
        |w: &Value| json!({"wake_id": w["wake_id"], "generation": w["generation"], "done": true});
    let (status, v) = send_auth(
        &c,
        Method::POST,
        cb,
        Some(reply(&first)),
        first["callback_token"].as_str(),
    )
    .await;
    assert_eq!(
        (status, &v["error"]["code"]),
        (409, &json!("FENCED")),
        "{v}"
    );
    // The old token with the new wake's id and generation is fenced too.
    let (status, v) = send_auth(
        &c,
        Method::POST,
        cb,
        Some(reply(&second)),
        first["callback_token"].as_str(),
    )
    .await;
    assert_eq!(
        (status, &v["error"]["code"]),
        (409, &json!("FENCED")),
        "{v}"
    );
    let (status, v) = send_auth(
        &c,
        Method::POST,
        cb,
        Some(reply(&second)),
        Some("forged.token"),
    )
    .await;
    assert_eq!(
        (status, &v["error"]["code"]),
        (401, &json!("TOKEN_INVALID")),
        "{v}"
    );
    let (status, v) = send_auth(
        &c,
        Method::POST,
        cb,
        Some(reply(&second)),
        second["callback_token"].as_str(),
    )
    .await;
    // Done without acks: the work is still pending, so the next wake starts at once.
    assert_eq!((status, v), (200, json!({"ok": true, "next_wake": true})));
    assert_eq!(rx.next().await.body["generation"], 3);

    // Pull-wake: a release starts the next generation; the released token is fenced.
    put(&c, &s.stream_url("wakes"), "application/json", "[]").await;
    create(
        &c,
        &s,
        "pull",
        json!({"type": "pull-wake", "streams": ["p/a"], "wake_stream": "wakes"}),
    )
    .await;
    put(&c, &s.stream_url("p/a"), "application/json", r#"{"n":1}"#).await;
    let claim_url = format!("{}/claim", sub_url(&s, "pull"));
    let (status, one) = send(&c, Method::POST, &claim_url, Some(json!({"worker": "w1"}))).await;
    assert_eq!(status, 200, "{one}");
    let t1 = one["token"].as_str().unwrap();
    let (status, _) = send_auth(
        &c,
        Method::POST,
        &format!("{}/release", sub_url(&s, "pull")),
        Some(json!({"wake_id": one["wake_id"], "generation": one["generation"]})),
        Some(t1),
    )
    .await;
    assert_eq!(status, 204);
    let (status, two) = send(&c, Method::POST, &claim_url, Some(json!({"worker": "w2"}))).await;
    assert_eq!(status, 200, "{two}");
    assert_eq!(
        two["generation"].as_u64(),
        one["generation"].as_u64().map(|g| g + 1)
    );
    let ack_url = format!("{}/ack", sub_url(&s, "pull"));
    let tail = tail(&c, &s, "p/a").await;
    let ack = |w: &Value| {
        json!({"wake_id": w["wake_id"], "generation": w["generation"],
               "acks": [{"stream": "p/a", "offset": tail}], "done": true})
    };
    let (status, v) = send_auth(&c, Method::POST, &ack_url, Some(ack(&one)), Some(t1)).await;
    assert_eq!(
        (status, &v["error"]["code"]),
        (409, &json!("FENCED")),
        "{v}"
    );
    let (status, v) = send_auth(&c, Method::POST, &ack_url, Some(ack(&two)), Some(t1)).await;
    assert_eq!(
        (status, &v["error"]["code"]),
        (409, &json!("FENCED")),
        "{v}"
    );
    let (status, v) = send_auth(
        &c,
        Method::POST,
        &ack_url,
        Some(ack(&two)),
        two["token"].as_str(),
    )
    .await;
    assert_eq!((status, v), (200, json!({"ok": true, "next_wake": false})));
    // The wake events are in the wake stream, one per generation.
    let events: Value = common::get_json(&c, &s.stream_url("wakes")).await;
    let gens: Vec<&Value> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["generation"])
        .collect();
    assert_eq!(gens, [&json!(1), &json!(2)], "{events}");
    assert_eq!(events[0]["type"], "wake");
    assert_eq!(events[0]["stream"], "p/a");
    s.terminate();
}

#[tokio::test]
async fn refused_webhook_targets_are_never_connected_to() {
    let dir = tempfile::tempdir().unwrap();
    let c = client();
    // A listener that counts connections, on a loopback port the rules refuse over https.
    let trap = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = trap.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    let task = tokio::spawn(async move {
        while trap.accept().await.is_ok() {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });

    let mut full = Server::start(&dir.path().join("full"), &[]);
    put(
        &c,
        &full.stream_url("t/a"),
        "application/json",
        r#"{"n":1}"#,
    )
    .await;
    for url in [
        format!("https://127.0.0.1:{port}/hook"),
        format!("https://localhost:{port}/hook"),
        format!("http://[::1]:{port}/hook"),
        "http://10.0.0.1/hook".to_string(),
        "https://192.168.0.10/hook".to_string(),
        "https://169.254.169.254/latest".to_string(),
        "ftp://example.com/hook".to_string(),
    ] {
        let (status, v) = create(
            &c,
            &full,
            "ssrf",
            json!({"type": "webhook", "pattern": "t/*", "webhook": {"url": url}}),
        )
        .await;
        assert_eq!(
            (status, &v["error"]["code"]),
            (400, &json!("WEBHOOK_URL_REJECTED")),
            "{url}: {v}"
        );
    }
    let (status, _) = send(&c, reqwest::Method::GET, &sub_url(&full, "ssrf"), None).await;
    assert_eq!(status, 404);
    full.terminate();

    // Local mode: loopback http only; DS_WEBHOOKS=0: no webhooks at all.
    let mut local = Server::start_local(&dir.path().join("local"), &[]);
    let (status, v) = create(
        &c,
        &local,
        "remote",
        json!({"type": "webhook", "pattern": "t/*", "webhook": {"url": "https://example.com/hook"}}),
    )
    .await;
    assert_eq!(
        (status, &v["error"]["code"]),
        (400, &json!("WEBHOOK_URL_REJECTED")),
        "{v}"
    );
    let (status, _) = create(
        &c,
        &local,
        "loop",
        json!({"type": "webhook", "pattern": "t/*", "webhook": {"url": format!("http://127.0.0.1:{port}/x")}}),
    )
    .await;
    assert_eq!(status, 201);
    local.terminate();
    let mut off = Server::start(&dir.path().join("off"), &[("DS_WEBHOOKS", "0")]);
    let (status, v) = create(
        &c,
        &off,
        "off",
        json!({"type": "webhook", "pattern": "t/*", "webhook": {"url": "http://127.0.0.1:9/x"}}),
    )
    .await;
    assert_eq!(
        (status, &v["error"]["code"]),
        (400, &json!("INVALID_REQUEST")),
        "{v}"
    );
    off.terminate();
    assert_eq!(accepted.load(Ordering::SeqCst), 0);
    task.abort();
}

#[tokio::test]
async fn a_pending_webhook_retry_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let c = client();
    let port = free_port().await;
    let mut s = Server::start_full(dir.path(), "local", &FAST_RETRIES, &[]);
    create(
        &c,
        &s,
        "retry",
        json!({"type": "webhook", "pattern": "r/**", "webhook": {"url": format!("http://127.0.0.1:{port}/hook")}}),
    )
    .await;
    put(&c, &s.stream_url("r/x/y"), "application/json", r#"{"n":1}"#).await;
    let before = wait_sub(&c, &s, "retry", "failed delivery", |v| {
        v["status"] == "failed"
    })
    .await;
    assert!(s.terminate().success());

    let mut rx = Receiver::start(port, json!({"done": true})).await;
    let mut s = Server::start_full(dir.path(), "local", &FAST_RETRIES, &[]);
    assert_eq!(
        get_sub(&c, &s, "retry").await["created_at"],
        before["created_at"]
    );
    let hook = rx.next().await;
    assert_eq!(hook.body["generation"], 1, "the same wake, retried");
    assert_eq!(hook.body["streams"][0]["path"], "r/x/y");
    // The callback URL comes from the creating request's Host, not the new port.
    assert!(hook.body["callback_url"]
        .as_str()
        .unwrap()
        .ends_with("/v1/stream/__ds/subscriptions/retry/callback"));
    let tail = tail(&c, &s, "r/x/y").await;
    wait_sub(&c, &s, "retry", "acked after the restart", |v| {
        v["status"] == "active" && link(v, "r/x/y").unwrap()["acked_offset"] == tail.as_str()
    })
    .await;
    s.terminate();
}

#[tokio::test]
async fn a_held_lease_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let c = client();
    use reqwest::Method;
    let mut s = Server::start_full(dir.path(), "local", &[], &[]);
    put(&c, &s.stream_url("wake"), "application/json", "[]").await;
    create(
        &c,
        &s,
        "held",
        json!({"type": "pull-wake", "pattern": "q/*", "wake_stream": "wake", "lease_ttl_ms": 600000}),
    )
    .await;
    put(&c, &s.stream_url("q/1"), "application/json", r#"{"n":1}"#).await;
    let claim_url = format!("{}/claim", sub_url(&s, "held"));
    let (status, claimed) = send(&c, Method::POST, &claim_url, Some(json!({"worker": "w1"}))).await;
    assert_eq!(status, 200, "{claimed}");
    assert!(s.terminate().success());

    let mut s = Server::start_full(dir.path(), "local", &[], &[]);
    let claim_url = format!("{}/claim", sub_url(&s, "held"));
    let (status, busy) = send(&c, Method::POST, &claim_url, Some(json!({"worker": "w2"}))).await;
    assert_eq!(status, 409, "{busy}");
    assert_eq!(busy["error"]["code"], "ALREADY_CLAIMED");
    assert_eq!(busy["error"]["current_holder"], "w1");
    let tail = tail(&c, &s, "q/1").await;
    let (status, v) = send_auth(
        &c,
        Method::POST,
        &format!("{}/ack", sub_url(&s, "held")),
        Some(
            json!({"wake_id": claimed["wake_id"], "generation": claimed["generation"],
                    "acks": [{"stream": "q/1", "offset": tail}], "done": true}),
        ),
        claimed["token"].as_str(),
    )
    .await;
    assert_eq!((status, v), (200, json!({"ok": true, "next_wake": false})));
    let v = get_sub(&c, &s, "held").await;
    assert_eq!(link(&v, "q/1").unwrap()["acked_offset"], tail.as_str());
    let (status, v) = send(&c, Method::POST, &claim_url, Some(json!({"worker": "w2"}))).await;
    assert_eq!(
        (status, &v["error"]["code"]),
        (409, &json!("NO_PENDING_WORK"))
    );
    // Deleting a linked stream after the restart unlinks it.
    let r = c.delete(s.stream_url("q/1")).send().await.unwrap();
    assert_eq!(r.status(), 204);
    wait_sub(&c, &s, "held", "unlinked", |v| link(v, "q/1").is_none()).await;
    s.terminate();
}

#[tokio::test]
async fn links_follow_patterns_explicit_streams_and_deletions() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::start(dir.path(), &[]);
    let c = client();
    use reqwest::Method;
    put(&c, &s.stream_url("g/old"), "application/json", r#"{"n":1}"#).await;
    put(&c, &s.stream_url("wake"), "application/json", "[]").await;
    let (status, v) = create(
        &c,
        &s,
        "links",
        json!({"type": "pull-wake", "pattern": "g/*", "streams": ["g/old", "solo"], "wake_stream": "wake"}),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    // Existing streams are linked at their tails; a missing one at the zero offset.
    let old_tail = tail(&c, &s, "g/old").await;
    assert_eq!(
        link(&v, "g/old").unwrap()["acked_offset"],
        old_tail.as_str()
    );
    assert_eq!(link(&v, "g/old").unwrap()["link_type"], "explicit");
    assert_eq!(link(&v, "solo").unwrap()["acked_offset"], "0".repeat(26));
    // A different configuration under the same id is refused; the same one re-confirms.
    let (status, v) = create(
        &c,
        &s,
        "links",
        json!({"type": "pull-wake", "pattern": "g/*", "wake_stream": "wake"}),
    )
    .await;
    assert_eq!(
        (status, &v["error"]["code"]),
        (409, &json!("SUBSCRIPTION_ALREADY_EXISTS"))
    );
    let (status, _) = create(
        &c,
        &s,
        "links",
        json!({"type": "pull-wake", "pattern": "g/*", "streams": ["solo", "g/old"], "wake_stream": "wake"}),
    )
    .await;
    assert_eq!(status, 200);

    // A stream created later is linked by its first append, before its first entry.
    put(&c, &s.stream_url("g/new"), "application/json", r#"{"n":1}"#).await;
    wait_sub(&c, &s, "links", "glob link", |v| {
        link(v, "g/new").is_some_and(|l| l["acked_offset"] == "-1" && l["link_type"] == "glob")
    })
    .await;
    // Removing the explicit link of a stream the pattern matches keeps the glob link.
    let (status, _) = send(
        &c,
        Method::DELETE,
        &format!("{}/streams/g%2Fold", sub_url(&s, "links")),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let v = get_sub(&c, &s, "links").await;
    assert_eq!(link(&v, "g/old").unwrap()["link_type"], "glob");
    // Deleting a stream unlinks it.
    let r = c.delete(s.stream_url("g/new")).send().await.unwrap();
    assert_eq!(r.status(), 204);
    wait_sub(&c, &s, "links", "unlinked", |v| link(v, "g/new").is_none()).await;

    // A subscription's own wake stream is not linked, even when its pattern matches.
    put(&c, &s.stream_url("self/wake"), "application/json", "[]").await;
    create(
        &c,
        &s,
        "self",
        json!({"type": "pull-wake", "pattern": "self/**", "wake_stream": "self/wake"}),
    )
    .await;
    put(
        &c,
        &s.stream_url("self/a"),
        "application/json",
        r#"{"n":1}"#,
    )
    .await;
    let events: Value = common::get_json(&c, &s.stream_url("self/wake")).await;
    assert_eq!(events.as_array().unwrap().len(), 1, "{events}");
    let v = get_sub(&c, &s, "self").await;
    let paths: Vec<&Value> = v["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| &l["path"])
        .collect();
    assert_eq!(paths, [&json!("self/a")]);

    // Unknown control routes, wrong methods, bad bodies.
    let (status, v) = send(&c, Method::GET, &s.stream_url("__ds/nothing"), None).await;
    assert_eq!(
        (status, &v["error"]["code"]),
        (404, &json!("SUBSCRIPTION_NOT_FOUND"))
    );
    let r = c.post(s.stream_url("__ds/jwks.json")).send().await.unwrap();
    assert_eq!(r.status(), 405);
    let r = c.put(sub_url(&s, "bad")).body("{").send().await.unwrap();
    assert_eq!(r.status(), 400);
    let (status, v) = send(
        &c,
        Method::POST,
        &format!("{}/ack", sub_url(&s, "links")),
        Some(json!({})),
    )
    .await;
    assert_eq!(
        (status, &v["error"]["code"]),
        (401, &json!("TOKEN_INVALID"))
    );
    let (status, _) = send(&c, Method::DELETE, &sub_url(&s, "links"), None).await;
    assert_eq!(status, 204);
    let (status, _) = send(&c, Method::DELETE, &sub_url(&s, "links"), None).await;
    assert_eq!(status, 204);
    let (status, _) = send(&c, Method::GET, &sub_url(&s, "links"), None).await;
    assert_eq!(status, 404);
    s.terminate();
}

#[tokio::test]
async fn with_server_auth_only_token_carrying_routes_and_the_keys_are_open() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "0123456789abcdef-server";
    let mut s = Server::start(dir.path(), &[("DS_AUTH_TOKEN", secret)]);
    let c = client();
    use reqwest::Method;
    let body = json!({"type": "pull-wake", "streams": ["a"], "wake_stream": "w"});
    let (status, _) = create(&c, &s, "auth", body.clone()).await;
    assert_eq!(status, 401, "creating needs the server token");
    let (status, _) = send_auth(
        &c,
        Method::PUT,
        &sub_url(&s, "auth"),
        Some(body),
        Some(secret),
    )
    .await;
    assert_eq!(status, 201);
    let r = c
        .put(s.stream_url("a"))
        .bearer_auth(secret)
        .header("content-type", "application/json")
        .body(r#"{"n":1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let claim_url = format!("{}/claim", sub_url(&s, "auth"));
    let (status, _) = send(&c, Method::POST, &claim_url, Some(json!({"worker": "w"}))).await;
    assert_eq!(status, 401, "claiming needs the server token");
    let (status, claimed) = send_auth(
        &c,
        Method::POST,
        &claim_url,
        Some(json!({"worker": "w"})),
        Some(secret),
    )
    .await;
    assert_eq!(status, 200, "{claimed}");
    // The ack carries the claim token, not the server's.
    let ack_url = format!("{}/ack", sub_url(&s, "auth"));
    let reply = json!({"wake_id": claimed["wake_id"], "generation": claimed["generation"]});
    let (status, v) = send_auth(
        &c,
        Method::POST,
        &ack_url,
        Some(reply.clone()),
        Some(secret),
    )
    .await;
    assert_eq!(
        (status, &v["error"]["code"]),
        (401, &json!("TOKEN_INVALID"))
    );
    let (status, v) = send_auth(
        &c,
        Method::POST,
        &ack_url,
        Some(reply),
        claimed["token"].as_str(),
    )
    .await;
    assert_eq!((status, v), (200, json!({"ok": true, "next_wake": false})));
    let r = c.get(s.stream_url("__ds/jwks.json")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = c.get(sub_url(&s, "auth")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    s.terminate();
}
