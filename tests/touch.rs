//! Live-query touch over HTTP in full and local mode: route errors, a coarse wait woken by
//! an insert, a fine wait woken by an update of its row and not by another row, the exact
//! lane, template activation and retirement, a stale cursor after a restart, 2,000
//! concurrent waiters, and a long wait that answers `touched:false` at its timeout.
//! Keys are computed with the crate's own derivation (golden-vector tested in
//! `src/touch/keys.rs`), as a client library would.

use std::time::{Duration, Instant};

use crate::common;
use common::{client, post, put, Server};
use prisma_streams::touch::keys;
use serde_json::{json, Value};

type Client = reqwest::Client;

const PROFILE: &str = r#"{"apiVersion":"durable.streams/profile/v1","profile":{"kind":"state-protocol","touch":{"enabled":true,"onMissingBefore":"coarse"}}}"#;
const ENTITY: &str = "public.todos";

async fn post_json(c: &Client, url: &str, body: &Value) -> (u16, Value) {
    let r = c.post(url).body(body.to_string()).send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text:?}")),
    )
}

async fn get_json(c: &Client, url: &str) -> (u16, Value) {
    let r = c.get(url).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

/// A `touch/wait` running in the background.
fn spawn_wait(c: &Client, url: &str, body: Value) -> tokio::task::JoinHandle<(u16, Value)> {
    let (c, wait) = (c.clone(), format!("{url}/touch/wait"));
    tokio::spawn(async move { post_json(&c, &wait, &body).await })
}

/// A touch-enabled State Protocol stream named `name`.
async fn touch_stream(c: &Client, s: &Server, name: &str) -> String {
    let url = s.stream_url(name);
    assert_eq!(put(c, &url, "application/json", "").await.status(), 201);
    let r = c
        .post(format!("{url}/_profile"))
        .body(PROFILE)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    url
}

fn change(op: &str, key: &str, value: Value, old: Value) -> Value {
    let mut rec = json!({"type": ENTITY, "key": key, "headers": {"operation": op}});
    if op != "delete" {
        rec["value"] = value;
    }
    if !old.is_null() || op == "delete" {
        rec["old_value"] = old;
    }
    rec
}

async fn append(c: &Client, url: &str, records: &[Value]) {
    let r = post(c, url, "application/json", json!(records).to_string()).await;
    assert_eq!(r.status(), 204, "{}", r.text().await.unwrap());
}

/// The current cursor, once every append so far has been processed and flushed.
async fn settled_cursor(c: &Client, url: &str) -> String {
    let (status, meta) =
        get_json(c, &format!("{url}/touch/meta?settle=flush&timeoutMs=5000")).await;
    assert_eq!(status, 200, "{meta}");
    assert_eq!(meta["settled"], true, "{meta}");
    meta["cursor"].as_str().unwrap().to_string()
}

fn table_key() -> String {
    keys::hex16(keys::table_key(ENTITY))
}

/// The template `public.todos WHERE status = ?` and the watch key of one status.
fn status_template() -> u64 {
    keys::template_id(ENTITY, &["status"])
}

fn watch_key(status: &str) -> String {
    keys::hex16(keys::watch_key(status_template(), &[status]))
}

async fn activate(c: &Client, url: &str) -> Value {
    let body = json!({"templates": [{"entity": ENTITY, "fields": [{"name": "status", "encoding": "string"}]}]});
    let (status, v) = post_json(c, &format!("{url}/touch/templates/activate"), &body).await;
    assert_eq!(status, 200, "{v}");
    v
}

fn both(dir: &tempfile::TempDir) -> Vec<(&'static str, Server)> {
    vec![
        (
            "full",
            Server::start_full(&dir.path().join("full"), "local", &[], &[]),
        ),
        ("local", Server::start_local(&dir.path().join("local"), &[])),
    ]
}

#[tokio::test]
async fn route_errors_follow_the_original() {
    let dir = tempfile::tempdir().unwrap();
    let c = client();
    for (mode, s) in both(&dir) {
        // No stream, no touch, wrong method, bad bodies.
        let (status, v) = get_json(&c, &format!("{}/touch/meta", s.stream_url("none"))).await;
        assert_eq!(
            (status, v["error"]["code"].as_str()),
            (404, Some("not_found")),
            "{mode}"
        );
        let plain = s.stream_url("plain");
        put(&c, &plain, "application/json", "").await;
        let (status, v) = get_json(&c, &format!("{plain}/touch/meta")).await;
        assert_eq!(status, 404, "{mode}");
        assert_eq!(v["error"]["message"], "touch not enabled", "{mode}");
        let r = c
            .delete(format!("{plain}/touch/wait"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            404,
            "{mode}: touch is checked before the method"
        );

        let url = touch_stream(&c, &s, "errs").await;
        let r = c.delete(format!("{url}/touch/wait")).send().await.unwrap();
        assert_eq!(r.status(), 400, "{mode}");
        let r = c.post(format!("{url}/touch/meta")).send().await.unwrap();
        assert_eq!(r.status(), 400, "{mode}");
        let wait = format!("{url}/touch/wait");
        for (body, msg) in [
            (json!({"cursor": "now"}), "wait requires keys or keyIds"),
            (
                json!({"keys": ["a"], "cursor": "later"}),
                "wait.cursor must be in the form <epochHex>:<generation> or 'now'",
            ),
            (
                json!({"keys": ["a"], "cursor": "now", "exact": true}),
                "wait.exact requires 1 to 16 literal 64-bit routing keys",
            ),
            (
                json!({"keys": ["a"], "cursor": "now", "exact": true, "interestMode": "coarse"}),
                "wait.exact requires fine interest while runtime is in fine-key mode",
            ),
            (
                json!({"keyIds": [1, 1], "cursor": "now"}),
                "wait.keyIds must be a non-empty uint32 array when provided",
            ),
        ] {
            let (status, v) = post_json(&c, &wait, &body).await;
            assert_eq!(status, 400, "{mode}: {body}");
            assert_eq!(v["error"]["message"], msg, "{mode}: {body}");
        }
        // A refused wait declares nothing (the original activates first, then refuses).
        let decl =
            json!([{"entity": ENTITY, "fields": [{"name": "status", "encoding": "string"}]}]);
        for body in [
            json!({"keys": ["a"], "cursor": "later", "declareTemplates": decl}),
            json!({"keys": ["a"], "cursor": "now", "exact": true, "declareTemplates": decl}),
        ] {
            let (status, _) = post_json(&c, &wait, &body).await;
            assert_eq!(status, 400, "{mode}: {body}");
        }
        let (_, meta) = get_json(&c, &format!("{url}/touch/meta")).await;
        assert_eq!(meta["activeTemplates"], 0, "{mode}: {meta}");
        let (status, v) = get_json(&c, &format!("{url}/touch/meta?settle=soon")).await;
        assert_eq!(status, 400, "{mode}");
        assert_eq!(
            v["error"]["message"],
            "meta.settle must be 'flush' when provided"
        );
        let (status, v) = post_json(
            &c,
            &format!("{url}/touch/templates/activate"),
            &json!({"templates": []}),
        )
        .await;
        assert_eq!(status, 400, "{mode}");
        assert_eq!(
            v["error"]["message"],
            "activate.templates must be a non-empty array"
        );

        // A generic profile removes the routes again.
        let r = c
            .post(format!("{url}/_profile"))
            .body(r#"{"profile":{"kind":"generic"}}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{mode}");
        let (status, _) = get_json(&c, &format!("{url}/touch/meta")).await;
        assert_eq!(status, 404, "{mode}");
    }
}

#[tokio::test]
async fn coarse_and_fine_waits_wake_on_their_changes() {
    let dir = tempfile::tempdir().unwrap();
    let c = client();
    for (mode, s) in both(&dir) {
        let url = touch_stream(&c, &s, "todos").await;
        let (status, meta) = get_json(&c, &format!("{url}/touch/meta")).await;
        assert_eq!(status, 200, "{mode}");
        assert_eq!(meta["mode"], "memory");
        assert_eq!(meta["generation"], 0);
        assert_eq!(meta["epoch"].as_str().unwrap().len(), 16);
        assert_eq!(meta["bucketMaxSourceOffsetSeq"], "-1");

        // Coarse: a wait on the table key answers when a row of the table is inserted.
        let cursor = settled_cursor(&c, &url).await;
        let wait = spawn_wait(
            &c,
            &url,
            json!({"keys": [table_key()], "cursor": cursor, "interestMode": "coarse", "timeoutMs": 20000}),
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        append(
            &c,
            &url,
            &[change(
                "insert",
                "1",
                json!({"id": 1, "status": "open"}),
                Value::Null,
            )],
        )
        .await;
        let (status, v) = wait.await.unwrap();
        assert_eq!(status, 200, "{mode}");
        assert_eq!(v["touched"], true, "{mode}: {v}");
        assert_eq!(v["effectiveWaitKind"], "tableKey", "{mode}");
        assert_eq!(
            v["bucketMaxSourceOffsetSeq"], "0",
            "{mode}: the insert is entry 0"
        );
        assert_ne!(v["cursor"], json!(cursor), "{mode}: the generation moved");

        // Fine: with the template active, a wait on the watch key of status "done" is
        // woken by an update into "done", not by changes of other rows.
        let act = activate(&c, &url).await;
        assert_eq!(
            act["activated"][0]["templateId"],
            keys::hex16(status_template()),
            "{mode}"
        );
        assert_eq!(act["limits"]["maxActiveTemplatesPerStream"], 2048);
        let cursor = settled_cursor(&c, &url).await;
        let done = watch_key("done");
        let wait = spawn_wait(
            &c,
            &url,
            json!({"keys": [done], "cursor": cursor, "timeoutMs": 20000,
                    "templateIdsUsed": [keys::hex16(status_template())]}),
        );
        // Changes that stay in other tuples do not wake it...
        tokio::time::sleep(Duration::from_millis(200)).await;
        append(
            &c,
            &url,
            &[change(
                "insert",
                "2",
                json!({"id": 2, "status": "open"}),
                Value::Null,
            )],
        )
        .await;
        settled_cursor(&c, &url).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        if wait.is_finished() {
            let (_, meta) = get_json(&c, &format!("{url}/touch/meta")).await;
            panic!(
                "{mode}: woken by a row in another tuple: {:?} {meta}",
                wait.await.unwrap()
            );
        }
        // ... the update of row 1 into "done" does.
        append(
            &c,
            &url,
            &[change(
                "update",
                "1",
                json!({"id": 1, "status": "done"}),
                json!({"id": 1, "status": "open"}),
            )],
        )
        .await;
        let (status, v) = wait.await.unwrap();
        assert_eq!(status, 200, "{mode}");
        assert_eq!(v["touched"], true, "{mode}: {v}");
        assert_eq!(v["effectiveWaitKind"], "fineKey", "{mode}");
        assert_eq!(v["bucketMaxSourceOffsetSeq"], "2", "{mode}");

        let (_, meta) = get_json(&c, &format!("{url}/touch/meta")).await;
        assert_eq!(meta["activeTemplates"], 1, "{mode}");
        assert_eq!(meta["waitTouchedTotal"], 2, "{mode}");
        assert!(
            meta["touchesTemplateTotal"].as_u64().unwrap() >= 1,
            "{mode}: {meta}"
        );
        assert_eq!(
            meta["walScannedThrough"].as_str().unwrap().len(),
            26,
            "{mode}"
        );
    }
}

#[tokio::test]
async fn exact_lane_and_immediate_answers() {
    let dir = tempfile::tempdir().unwrap();
    let c = client();
    for (mode, s) in both(&dir) {
        let url = touch_stream(&c, &s, "exact").await;
        activate(&c, &url).await;
        let cursor = settled_cursor(&c, &url).await;
        // A fine waiter makes the keys hot before the change.
        let waiter = spawn_wait(
            &c,
            &url,
            json!({"keys": [watch_key("open")], "cursor": cursor, "timeoutMs": 20000}),
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        append(
            &c,
            &url,
            &[change(
                "insert",
                "9",
                json!({"id": 9, "status": "open"}),
                Value::Null,
            )],
        )
        .await;
        assert_eq!(waiter.await.unwrap().1["touched"], true, "{mode}");
        settled_cursor(&c, &url).await;
        // From the old cursor: the exact lane proves "open" touched and "other" not.
        let wait = format!("{url}/touch/wait");
        let (_, v) = post_json(
            &c,
            &wait,
            &json!({"keys": [watch_key("open")], "cursor": cursor, "exact": true, "timeoutMs": 0}),
        )
        .await;
        assert_eq!(v["touched"], true, "{mode}: {v}");
        let (_, v) = post_json(
            &c,
            &wait,
            &json!({"keys": [watch_key("other")], "cursor": cursor, "exact": true, "timeoutMs": 0}),
        )
        .await;
        assert_eq!(v["touched"], false, "{mode}: {v}");
        // timeoutMs 0 without a touch answers at once, with the current cursor.
        let now = settled_cursor(&c, &url).await;
        let (status, v) = post_json(
            &c,
            &wait,
            &json!({"keys": [table_key()], "cursor": now, "timeoutMs": 0}),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(v["touched"], false, "{mode}");
        assert_eq!(v["cursor"], json!(now), "{mode}");
    }
}

#[tokio::test]
async fn templates_are_retired_after_their_inactivity_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let c = client();
    for (mode, s) in both(&dir) {
        let url = touch_stream(&c, &s, "tpl").await;
        // A GC interval of 500 ms (the upkeep runs every second).
        let profile = json!({"profile": {"kind": "state-protocol", "touch": {"enabled": true,
            "templates": {"gcIntervalMs": 500}}}});
        let (status, _) = post_json(&c, &format!("{url}/_profile"), &profile).await;
        assert_eq!(status, 200, "{mode}");
        let body = json!({"templates": [{"entity": ENTITY, "fields": [{"name": "status", "encoding": "string"}]},
            {"entity": ENTITY, "fields": [{"name": "x", "encoding": "uuid"}]}], "inactivityTtlMs": 300});
        let (status, v) = post_json(&c, &format!("{url}/touch/templates/activate"), &body).await;
        assert_eq!(status, 200, "{mode}: {v}");
        assert_eq!(v["activated"].as_array().unwrap().len(), 1, "{mode}: {v}");
        assert_eq!(
            v["denied"],
            json!([{"templateId": "0000000000000000", "reason": "invalid"}]),
            "{mode}"
        );
        let (_, meta) = get_json(&c, &format!("{url}/touch/meta")).await;
        assert_eq!(meta["activeTemplates"], 1, "{mode}");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (_, meta) = get_json(&c, &format!("{url}/touch/meta")).await;
            if meta["activeTemplates"] == 0 {
                break;
            }
            assert!(Instant::now() < deadline, "{mode}: not retired: {meta}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // Declaring it again reactivates it.
        assert_eq!(
            activate(&c, &url).await["activated"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
    }
}

#[tokio::test]
async fn a_restart_makes_cursors_stale() {
    let dir = tempfile::tempdir().unwrap();
    for mode in ["full", "local"] {
        restart_case(mode, &dir.path().join(mode)).await;
    }
}

async fn restart_case(mode: &str, root: &std::path::Path) {
    let c = client();
    let start = || match mode {
        "full" => Server::start_full(root, "local", &[], &[]),
        _ => Server::start_local(root, &[]),
    };
    let mut s = start();
    let url = touch_stream(&c, &s, "restart").await;
    append(
        &c,
        &url,
        &[change(
            "insert",
            "1",
            json!({"status": "open"}),
            Value::Null,
        )],
    )
    .await;
    let cursor = settled_cursor(&c, &url).await;
    s.terminate();
    let mut s = start();
    let url = s.stream_url("restart");
    let (status, v) = post_json(
        &c,
        &format!("{url}/touch/wait"),
        &json!({"keys": [table_key()], "cursor": cursor}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(v["stale"], true, "{mode}: {v}");
    assert_eq!(v["error"]["code"], "stale");
    assert_eq!(v["generation"], 0, "a new journal");
    assert_ne!(v["epoch"].as_str().unwrap(), &cursor[..16]);
    // No backfill: the old insert touches nothing in the new journal.
    let (_, meta) = get_json(&c, &format!("{url}/touch/meta")).await;
    assert_eq!(meta["generation"], 0, "{meta}");
    assert_eq!(meta["scanRowsTotal"], 0, "{meta}");
    // The returned cursor works.
    let fresh = v["cursor"].as_str().unwrap().to_string();
    let wait = spawn_wait(
        &c,
        &url,
        json!({"keys": [table_key()], "cursor": fresh, "interestMode": "coarse"}),
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    append(
        &c,
        &url,
        &[change(
            "insert",
            "2",
            json!({"status": "open"}),
            Value::Null,
        )],
    )
    .await;
    assert_eq!(wait.await.unwrap().1["touched"], true);
    s.terminate();
}

#[tokio::test]
async fn two_thousand_waiters_are_all_answered() {
    let dir = tempfile::tempdir().unwrap();
    let c = client();
    let s = Server::start_full(
        &dir.path().join("full"),
        "local",
        &[("DS_MAX_LIVE_READERS", "5000")],
        &[],
    );
    let url = touch_stream(&c, &s, "many").await;
    let cursor = settled_cursor(&c, &url).await;
    let n = 2000;
    let mut waits = Vec::with_capacity(n);
    for i in 0..n {
        let (c, url, cursor) = (c.clone(), url.clone(), cursor.clone());
        // Half wait on the table key (woken), half on a key nothing touches (time out).
        let key = if i % 2 == 0 {
            table_key()
        } else {
            format!("{:016x}", i + 1)
        };
        waits.push(tokio::spawn(async move {
            post_json(
                &c,
                &format!("{url}/touch/wait"),
                &json!({"keys": [key], "cursor": cursor,
                "interestMode": "coarse", "timeoutMs": 3000}),
            )
            .await
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, meta) = get_json(&c, &format!("{url}/touch/meta")).await;
        if meta["activeWaiters"].as_u64().unwrap() as usize == n {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "waiters did not all register: {meta}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    append(
        &c,
        &url,
        &[change(
            "insert",
            "1",
            json!({"status": "open"}),
            Value::Null,
        )],
    )
    .await;
    let (mut touched, mut timed_out) = (0, 0);
    for (i, w) in waits.into_iter().enumerate() {
        let (status, v) = w.await.unwrap();
        assert_eq!(status, 200, "{v}");
        match (i % 2, v["touched"].as_bool().unwrap()) {
            (0, true) => touched += 1,
            (1, false) => timed_out += 1,
            other => panic!("waiter {i}: {other:?} {v}"),
        }
    }
    assert_eq!((touched, timed_out), (n / 2, n / 2));
    let (_, meta) = get_json(&c, &format!("{url}/touch/meta")).await;
    assert_eq!(meta["activeWaiters"], 0, "{meta}");
    assert_eq!(meta["coarseWaitersActive"], 0, "{meta}");
}

#[tokio::test]
async fn a_thirty_second_wait_times_out_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let c = client();
    let s = Server::start_local(&dir.path().join("local"), &[]);
    let url = touch_stream(&c, &s, "slow").await;
    let started = Instant::now();
    let (status, v) = post_json(
        &c,
        &format!("{url}/touch/wait"),
        &json!({"keys": [table_key()], "cursor": "now", "timeoutMs": 30000}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["touched"], false, "{v}");
    assert!(
        started.elapsed() >= Duration::from_secs(30),
        "answered before its timeout"
    );
    let (_, meta) = get_json(&c, &format!("{url}/touch/meta")).await;
    assert_eq!(meta["waitTimeoutTotal"], 1);
}

#[tokio::test]
async fn waits_beyond_the_live_reader_limit_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let c = client();
    let s = Server::start_local(&dir.path().join("local"), &[("DS_MAX_LIVE_READERS", "1")]);
    let url = touch_stream(&c, &s, "bounded").await;
    let first = spawn_wait(
        &c,
        &url,
        json!({"keys": [table_key()], "cursor": "now", "timeoutMs": 1500}),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, meta) = get_json(&c, &format!("{url}/touch/meta")).await;
        if meta["activeWaiters"] == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "{meta}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let r = c
        .post(format!("{url}/touch/wait"))
        .body(json!({"keys": [table_key()], "cursor": "now", "timeoutMs": 1000}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    // A wait that cannot block needs no slot.
    let (status, v) = post_json(
        &c,
        &format!("{url}/touch/wait"),
        &json!({"keys": [table_key()], "cursor": "now", "timeoutMs": 0}),
    )
    .await;
    assert_eq!((status, v["touched"].as_bool()), (200, Some(false)));
    assert_eq!(first.await.unwrap().1["touched"], false);
}

#[tokio::test]
async fn waits_that_use_a_template_keep_it_alive() {
    let dir = tempfile::tempdir().unwrap();
    let c = client();
    let s = Server::start_local(&dir.path().join("local"), &[]);
    let url = touch_stream(&c, &s, "alive").await;
    let profile = json!({"profile": {"kind": "state-protocol", "touch": {"enabled": true,
        "templates": {"gcIntervalMs": 200, "lastSeenPersistIntervalMs": 100}}}});
    assert_eq!(
        post_json(&c, &format!("{url}/_profile"), &profile).await.0,
        200
    );
    let body = json!({"templates": [{"entity": ENTITY, "fields": [{"name": "status", "encoding": "string"}]}],
        "inactivityTtlMs": 800});
    let (status, v) = post_json(&c, &format!("{url}/touch/templates/activate"), &body).await;
    assert_eq!(status, 200, "{v}");
    let tpl = keys::hex16(status_template());
    // Three seconds of short fine waits naming the template: it stays active, well past
    // its 800 ms TTL.
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        let (status, _) = post_json(
            &c,
            &format!("{url}/touch/wait"),
            &json!({"keys": [watch_key("open")],
            "cursor": "now", "timeoutMs": 200, "templateIdsUsed": [tpl]}),
        )
        .await;
        assert_eq!(status, 200);
    }
    let (_, meta) = get_json(&c, &format!("{url}/touch/meta")).await;
    assert_eq!(meta["activeTemplates"], 1, "{meta}");
    // Without them it is retired.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, meta) = get_json(&c, &format!("{url}/touch/meta")).await;
        if meta["activeTemplates"] == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "not retired: {meta}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn settle_waits_for_every_acknowledged_append() {
    let dir = tempfile::tempdir().unwrap();
    let c = client();
    let s = Server::start_local(&dir.path().join("local"), &[]);
    // The first append after a route made the touch state is the delicate one: repeat it
    // on fresh streams.
    for i in 0..40 {
        let url = touch_stream(&c, &s, &format!("settle-{i}")).await;
        settled_cursor(&c, &url).await;
        for n in 0..2u64 {
            append(
                &c,
                &url,
                &[change(
                    "insert",
                    &n.to_string(),
                    json!({"status": "open"}),
                    Value::Null,
                )],
            )
            .await;
            let (_, meta) =
                get_json(&c, &format!("{url}/touch/meta?settle=flush&timeoutMs=5000")).await;
            assert_eq!(meta["settled"], true, "{meta}");
            assert_eq!(
                meta["bucketMaxSourceOffsetSeq"],
                n.to_string(),
                "stream {i}: append {n} not flushed: {meta}"
            );
        }
    }
}
