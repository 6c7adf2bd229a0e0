//! Template activation, caps, rate limit, heartbeats and GC over a real engine with a
//! manual clock.

use std::sync::Arc;

use super::*;
use crate::engine::db::templates::TemplateState;
use crate::engine::testing::{append_cmd, create_cmd, engine_at, TestEngine};

type Env = TestEngine;

fn env() -> Env {
    engine_at(1_000)
}

async fn create(e: &Engine, name: &str) -> i64 {
    e.create(create_cmd(name, "application/json", None))
        .await
        .unwrap();
    e.lookup(name).await.unwrap().unwrap().id
}

async fn append(e: &Engine, name: &str, n: usize) {
    let entries = vec![bytes::Bytes::from_static(b"{}"); n];
    e.append(append_cmd(name, "application/json", entries))
        .await
        .unwrap();
}

/// The touch key derivation's template id (the engine never hashes; tests need real ids).
fn template_id(entity: &str, names: &[&str]) -> u64 {
    let mut bytes = format!("tpl\0{entity}\0").into_bytes();
    bytes.extend(names.join("\0").into_bytes());
    xxhash_rust::xxh3::xxh3_64(&bytes)
}

fn def(entity: &str, fields: &[(&str, &str)]) -> TemplateDef {
    let fields: Vec<(String, String)> = fields
        .iter()
        .map(|(n, e)| (n.to_string(), e.to_string()))
        .collect();
    TemplateDef::new(entity, &fields, template_id)
}

/// A definition with a chosen id (for tie-breaking tests).
fn with_id(id: u64, entity: &str, field: &str) -> TemplateDef {
    TemplateDef {
        id,
        entity: entity.into(),
        fields: vec![(field.into(), "string".into())],
    }
}

fn unlimited() -> TouchTemplatesConfig {
    TouchTemplatesConfig {
        activation_rate_limit_per_minute: 0.0,
        ..TouchTemplatesConfig::default()
    }
}

async fn activate(
    e: &Engine,
    defs: Vec<TemplateDef>,
    ttl: u64,
    cfg: &TouchTemplatesConfig,
    limiter: &Arc<ActivationLimiter>,
) -> Activation {
    e.activate_templates("s", defs, ttl, cfg, limiter.clone())
        .await
        .unwrap()
}

fn ids(rows: &[TemplateRow]) -> Vec<u64> {
    rows.iter().map(|r| r.id).collect()
}

#[test]
fn definitions_are_canonicalized_as_the_original_does() {
    let d = def(
        " public.todos ",
        &[
            ("userId", "string"),
            (" tenantId", "string"),
            ("status", "string"),
        ],
    );
    assert_eq!(d.entity, "public.todos");
    let names: Vec<&str> = d.fields.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["status", "tenantId", "userId"]);
    // The golden vector of the touch keys.
    assert_eq!(db::id_hex(d.id), "ddd2330fdab379da");
    assert!(d.is_valid());
    // UTF-16 order: U+1F600 (a surrogate pair, D83D DE00) sorts before U+FF5E, which
    // UTF-8 byte order would put first.
    let d = def("e", &[("\u{1F600}", "bool"), ("\u{FF5E}", "bool")]);
    assert_eq!(d.fields[0].0, "\u{1F600}");
    // JavaScript's trim: U+FEFF goes, U+0085 stays.
    let d = def("\u{FEFF}e\u{2028}", &[("\u{85}a", "bool")]);
    assert_eq!(
        (d.entity.as_str(), d.fields[0].0.as_str()),
        ("e", "\u{85}a")
    );
    assert!(d.is_valid());
}

#[tokio::test]
async fn activation_inserts_then_refreshes_an_active_template() {
    let Env {
        dir: _dir,
        engine: e,
        clock,
    } = env();
    let sid = create(&e, "s").await;
    append(&e, "s", 2).await;
    let lim = Arc::new(ActivationLimiter::default());
    let cfg = unlimited();
    let t = def("public.todos", &[("tenantId", "string"), ("done", "bool")]);
    let out = activate(&e, vec![t.clone()], 5_000, &cfg, &lim).await;
    assert_eq!(out.stream_id, sid);
    assert_eq!(
        out.activated,
        [Activated {
            index: 0,
            id: t.id,
            active_from_pos: 2,
            kind: ActivationKind::Created
        }]
    );
    assert!(out.denied.is_empty() && out.evicted.is_empty());
    assert_eq!(out.limits.max_active_templates_per_entity, 256.0);
    assert_eq!(out.limits.max_active_templates_per_stream, 2048.0);

    let rows = e.active_templates(sid).await.unwrap();
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    assert_eq!((r.id, r.entity.as_str()), (t.id, "public.todos"));
    assert_eq!(r.fields, ["done", "tenantId"]);
    assert_eq!(r.encodings, ["bool", "string"]);
    assert_eq!(r.state, TemplateState::Active);
    assert_eq!(
        (r.created_at_ms, r.last_seen_at_ms, r.inactivity_ttl_ms),
        (1_000, 1_000, 5_000)
    );
    assert_eq!(r.active_from_pos, 2);

    // Declared again later: seen now, with the new TTL; still active from position 2.
    clock.advance_ms(500);
    append(&e, "s", 1).await;
    let out = activate(&e, vec![t.clone()], 7, &cfg, &lim).await;
    assert_eq!(out.activated[0].kind, ActivationKind::Refreshed);
    assert_eq!(out.activated[0].active_from_pos, 2);
    let r = &e.active_templates(sid).await.unwrap()[0];
    assert_eq!(
        (r.created_at_ms, r.last_seen_at_ms, r.inactivity_ttl_ms),
        (1_000, 1_500, 7)
    );
    assert_eq!(r.active_from_pos, 2);
}

#[tokio::test]
async fn malformed_or_conflicting_definitions_are_denied_in_request_order() {
    let Env {
        dir: _dir,
        engine: e,
        ..
    } = env();
    let sid = create(&e, "s").await;
    let lim = Arc::new(ActivationLimiter::default());
    let cfg = unlimited();
    let t = def("users", &[("id", "int64")]);
    activate(&e, vec![t.clone()], 1_000, &cfg, &lim).await;

    let other_encoding = def("users", &[("id", "string")]);
    assert_eq!(other_encoding.id, t.id, "the id does not include encodings");
    let defs = vec![
        def("users", &[("a", "string"), ("a", "bool")]),
        def("users", &[("a", "uuid")]),
        def("users", &[]),
        def(
            "users",
            &[("a", "bool"), ("b", "bool"), ("c", "bool"), ("d", "bool")],
        ),
        def("  ", &[("a", "bool")]),
        def("users", &[(" ", "bool")]),
        other_encoding,
        def("users", &[("email", "string")]),
    ];
    let out = activate(&e, defs, 1_000, &cfg, &lim).await;
    let denied: Vec<(usize, u64, DenyReason)> = out
        .denied
        .iter()
        .map(|d| (d.index, d.id, d.reason))
        .collect();
    let mut want: Vec<(usize, u64, DenyReason)> =
        (0..6).map(|i| (i, 0, DenyReason::Invalid)).collect();
    want.push((6, t.id, DenyReason::Invalid));
    assert_eq!(denied, want);
    assert_eq!(out.activated.len(), 1);
    assert_eq!(out.activated[0].index, 7);
    // The stored template kept its encoding.
    let rows = e.active_templates(sid).await.unwrap();
    let stored = rows.iter().find(|r| r.id == t.id).unwrap();
    assert_eq!(stored.encodings, ["int64"]);
}

#[tokio::test]
async fn the_rate_limit_denies_new_templates_past_its_capacity_and_refills_with_time() {
    let Env {
        dir: _dir,
        engine: e,
        clock,
    } = env();
    let sid = create(&e, "s").await;
    let lim = Arc::new(ActivationLimiter::default());
    let cfg = TouchTemplatesConfig {
        activation_rate_limit_per_minute: 2.0,
        ..TouchTemplatesConfig::default()
    };
    let (a, b, c, d) = (
        def("e", &[("a", "string")]),
        def("e", &[("b", "string")]),
        def("e", &[("c", "string")]),
        def("e", &[("d", "string")]),
    );
    let out = activate(
        &e,
        vec![a.clone(), b.clone(), c.clone()],
        60_000,
        &cfg,
        &lim,
    )
    .await;
    assert_eq!(out.activated.len(), 2);
    assert_eq!(
        out.denied,
        [Denied {
            index: 2,
            id: c.id,
            reason: DenyReason::RateLimited
        }]
    );
    // Active templates need no token.
    let out = activate(&e, vec![a.clone(), b.clone()], 60_000, &cfg, &lim).await;
    assert_eq!(out.activated.len(), 2);
    // Half a minute refills one token (2 per minute).
    clock.advance_ms(29_999);
    let out = activate(&e, vec![c.clone()], 60_000, &cfg, &lim).await;
    assert_eq!(out.denied.len(), 1, "not yet a whole token");
    clock.advance_ms(1);
    let out = activate(&e, vec![c.clone(), d.clone()], 60_000, &cfg, &lim).await;
    assert_eq!(ids_of(&out.activated), [c.id]);
    assert_eq!(out.denied[0].reason, DenyReason::RateLimited);
    assert_eq!(e.active_templates(sid).await.unwrap().len(), 3);
    // A rate of 0 is unlimited.
    let defs: Vec<TemplateDef> = (0..20)
        .map(|i| def("f", &[(&format!("x{i}"), "bool")]))
        .collect();
    let out = activate(&e, defs, 60_000, &unlimited(), &lim).await;
    assert_eq!(out.activated.len(), 20);
}

fn ids_of(a: &[Activated]) -> Vec<u64> {
    a.iter().map(|a| a.id).collect()
}

#[tokio::test]
async fn the_entity_cap_evicts_the_least_recently_seen_preferring_other_requests_templates() {
    let Env {
        dir: _dir,
        engine: e,
        clock,
    } = env();
    let sid = create(&e, "s").await;
    let lim = Arc::new(ActivationLimiter::default());
    let cfg = TouchTemplatesConfig {
        max_active_templates_per_entity: 2.0,
        ..unlimited()
    };
    // 30 and 20 at t=1000, then 10 at t=1000 in its own request: three, one too many.
    // Least recently seen, ties by id, would be 10 — but it is this request's, so 20
    // goes.
    activate(
        &e,
        vec![with_id(30, "e", "a"), with_id(20, "e", "b")],
        1_000,
        &cfg,
        &lim,
    )
    .await;
    let out = activate(&e, vec![with_id(10, "e", "c")], 1_000, &cfg, &lim).await;
    assert_eq!(
        out.evicted,
        [Evicted {
            id: 20,
            entity: "e".into(),
            cap: 2.0,
            per_entity: true
        }]
    );
    assert_eq!(ids(&e.active_templates(sid).await.unwrap()), [10, 30]);
    // Other entities do not count against this one's cap.
    activate(&e, vec![with_id(40, "other", "a")], 1_000, &cfg, &lim).await;
    assert_eq!(e.active_templates(sid).await.unwrap().len(), 3);

    // When this request alone exceeds the cap, its own least recently seen go (ties by
    // id), after every other template of the entity.
    clock.advance_ms(10);
    let out = activate(
        &e,
        vec![
            with_id(3, "e", "x"),
            with_id(2, "e", "y"),
            with_id(1, "e", "z"),
        ],
        1_000,
        &cfg,
        &lim,
    )
    .await;
    let mut gone: Vec<u64> = out.evicted.iter().map(|v| v.id).collect();
    gone.sort_unstable();
    assert_eq!(gone, [1, 10, 30]);
    assert_eq!(
        out.activated.len(),
        3,
        "evicted templates stay listed as activated"
    );
    let rows = e.active_templates(sid).await.unwrap();
    assert_eq!(ids(&rows), [2, 3, 40]);

    // Evicted rows are retired with their reason, and can come back.
    let out = activate(&e, vec![with_id(30, "e", "a")], 1_000, &cfg, &lim).await;
    assert_eq!(out.activated[0].kind, ActivationKind::Reactivated);
}

#[tokio::test]
async fn the_stream_cap_applies_across_entities() {
    let Env {
        dir: _dir,
        engine: e,
        clock,
    } = env();
    let sid = create(&e, "s").await;
    let lim = Arc::new(ActivationLimiter::default());
    let cfg = TouchTemplatesConfig {
        max_active_templates_per_stream: 2.0,
        ..unlimited()
    };
    activate(&e, vec![with_id(1, "a", "x")], 1_000, &cfg, &lim).await;
    clock.advance_ms(1);
    activate(&e, vec![with_id(2, "b", "x")], 1_000, &cfg, &lim).await;
    clock.advance_ms(1);
    let out = activate(&e, vec![with_id(3, "c", "x")], 1_000, &cfg, &lim).await;
    assert_eq!(
        out.evicted,
        [Evicted {
            id: 1,
            entity: "a".into(),
            cap: 2.0,
            per_entity: false
        }]
    );
    assert_eq!(ids(&e.active_templates(sid).await.unwrap()), [2, 3]);
}

#[tokio::test]
async fn inactive_templates_retire_and_reactivate_from_the_current_tail() {
    let Env {
        dir: _dir,
        engine: e,
        clock,
    } = env();
    let sid = create(&e, "s").await;
    let lim = Arc::new(ActivationLimiter::default());
    let cfg = unlimited();
    let (a, b) = (def("e", &[("a", "string")]), def("e", &[("b", "string")]));
    activate(&e, vec![a.clone(), b.clone()], 1_000, &cfg, &lim).await;
    clock.advance_ms(1_000);
    // Exactly at last seen + TTL a template is still alive.
    assert!(e
        .retire_inactive_templates(sid, GC_LIMIT)
        .await
        .unwrap()
        .is_empty());
    // A heartbeat keeps b; last-seen never moves back.
    assert_eq!(
        e.touch_templates_seen(sid, vec![(b.id, 1_900)])
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        e.touch_templates_seen(sid, vec![(b.id, 1_500)])
            .await
            .unwrap(),
        0
    );
    clock.advance_ms(1);
    let retired = e.retire_inactive_templates(sid, GC_LIMIT).await.unwrap();
    assert_eq!(ids(&retired), [a.id]);
    assert_eq!(retired[0].last_seen_at_ms, 1_000);
    assert_eq!(ids(&e.active_templates(sid).await.unwrap()), [b.id]);
    // Heartbeats of a retired template do not revive it.
    assert_eq!(
        e.touch_templates_seen(sid, vec![(a.id, 2_001)])
            .await
            .unwrap(),
        0
    );

    append(&e, "s", 3).await;
    let out = activate(&e, vec![a.clone()], 1_000, &cfg, &lim).await;
    assert_eq!(out.activated[0].kind, ActivationKind::Reactivated);
    assert_eq!(out.activated[0].active_from_pos, 3);
    let rows = e.active_templates(sid).await.unwrap();
    let r = rows.iter().find(|r| r.id == a.id).unwrap();
    assert_eq!(
        (r.active_from_pos, r.last_seen_at_ms, r.created_at_ms),
        (3, 2_001, 1_000)
    );
    assert_eq!((r.retired_at_ms, r.retired_reason), (None, None));

    // The GC limit bounds one call.
    clock.advance_ms(10_000);
    assert_eq!(e.retire_inactive_templates(sid, 1).await.unwrap().len(), 1);
    assert_eq!(e.retire_inactive_templates(sid, 1).await.unwrap().len(), 1);
    assert!(e.active_templates(sid).await.unwrap().is_empty());
}

#[tokio::test]
async fn templates_go_with_their_stream() {
    let Env {
        dir: _dir,
        engine: e,
        ..
    } = env();
    let sid = create(&e, "s").await;
    let lim = Arc::new(ActivationLimiter::default());
    activate(
        &e,
        vec![def("e", &[("a", "string")])],
        1_000,
        &unlimited(),
        &lim,
    )
    .await;
    e.delete("s").await.unwrap();
    let left: i64 = e
        .reader()
        .run(|c| c.query_row("SELECT count(*) FROM live_templates", [], |r| r.get(0)))
        .await
        .unwrap();
    assert_eq!(left, 0);
    let r = e
        .activate_templates(
            "s",
            vec![def("e", &[("a", "string")])],
            1,
            &unlimited(),
            lim.clone(),
        )
        .await;
    assert!(matches!(r, Err(TemplatesError::NotFound)), "{r:?}");
    let sid2 = create(&e, "s").await;
    assert_ne!(sid, sid2);
    assert!(e.active_templates(sid2).await.unwrap().is_empty());
}

#[test]
fn the_limiter_keeps_a_bounded_number_of_buckets() {
    let lim = ActivationLimiter::new(2);
    assert!(lim.take(1, 0, 1.0));
    assert!(!lim.take(1, 0, 1.0));
    assert!(lim.take(2, 0, 1.0));
    // A third stream makes room: no bucket is full, so the least recently used goes.
    assert!(lim.take(3, 10, 1.0));
    assert_eq!(lim.len(), 2);
    // Stream 1's bucket was dropped: it starts full again.
    assert!(lim.take(1, 20, 1.0));
    assert_eq!(lim.len(), 2);
    // Unlimited rates keep no bucket.
    assert!(lim.take(9, 20, 0.0));
    assert_eq!(lim.len(), 2);
}

#[test]
fn heartbeats_are_due_at_most_once_per_interval() {
    let h = Heartbeats::new(16);
    h.mark(1, &[7, 8], 100);
    h.mark(2, &[7], 100);
    let due = h.due(100, 1_000.0);
    assert_eq!(due.len(), 2);
    let mut s1 = due[&1].clone();
    s1.sort_unstable();
    assert_eq!(s1, [(7, 100), (8, 100)]);
    h.mark(1, &[7], 600);
    assert!(h.due(600, 1_000.0).is_empty(), "persisted 500 ms ago");
    assert_eq!(h.due(1_100, 1_000.0)[&1], [(7, 600)]);
    assert!(h.due(5_000, 1_000.0).is_empty(), "not seen since");
    assert_eq!(h.last_seen(1, 7), Some(600));
    // One stream's due times leave the other stream's alone.
    h.mark(1, &[7], 6_000);
    h.mark(2, &[7], 6_000);
    assert_eq!(h.due_for(2, 7_000, 1_000.0), [(7, 6_000)]);
    assert_eq!(h.due(7_000, 1_000.0)[&1], [(7, 6_000)]);
    assert_eq!(h.last_seen(1, 7), Some(6_000));
    let mut mine = h.for_stream(1);
    mine.sort_unstable();
    assert_eq!(mine, [(7, 6_000), (8, 100)]);
    h.forget(1, &[8]);
    h.forget_stream(2);
    assert_eq!(h.len(), 1);
    // Bounded: the oldest-seen entry makes room.
    let h = Heartbeats::new(2);
    h.mark(1, &[1], 10);
    h.mark(1, &[2], 20);
    h.mark(1, &[3], 30);
    assert_eq!(h.last_seen(1, 1), None);
    assert_eq!(h.len(), 2);
}

/// A deleted stream that a fork still reads keeps its row (410 on its name) but not its
/// templates.
#[tokio::test]
async fn a_soft_deleted_stream_loses_its_templates() {
    let Env {
        dir: _dir,
        engine: e,
        ..
    } = env();
    let sid = create(&e, "s").await;
    append(&e, "s", 1).await;
    let fork = crate::engine::ForkSpec {
        source: "s".into(),
        pos: None,
        sub_offset: 0,
        entry: None,
    };
    e.create(create_cmd("f", "application/json", Some(fork)))
        .await
        .unwrap();
    let lim = Arc::new(ActivationLimiter::default());
    let t = def("e", &[("a", "string")]);
    activate(&e, vec![t], 1_000, &unlimited(), &lim).await;
    e.delete("s").await.unwrap();
    assert!(e.lookup("s").await.unwrap().unwrap().life.deleted);
    assert!(e.active_templates(sid).await.unwrap().is_empty());
}
