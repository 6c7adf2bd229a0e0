//! The cases of the original's `schema_registry.test.ts`, `schema_evolution.test.ts`,
//! `assumptions.test.ts` and the `date-time` test of `http_behavior.test.ts`, plus every
//! update rule and message, and `@prisma/dev`'s exact setup body.

use serde_json::{json, Value};

use super::*;

fn accept_search(v: &Value) -> Result<(), String> {
    if v.is_object() {
        Ok(())
    } else {
        Err("search must be an object".to_owned())
    }
}

fn update(reg: &Registry, body: &Value, next_offset: u64) -> Result<Registry, SchemaError> {
    apply_update(
        reg,
        &serde_json::to_vec(body).unwrap(),
        next_offset,
        &accept_search,
    )
}

fn bad(message: &str) -> Result<Registry, SchemaError> {
    Err(SchemaError::BadRequest(message.to_owned()))
}

fn conflict(message: &str) -> Result<Registry, SchemaError> {
    Err(SchemaError::Conflict(message.to_owned()))
}

fn closed(required: &[&str], properties: Value) -> Value {
    json!({"type": "object", "additionalProperties": false, "required": required, "properties": properties})
}

fn lens(stream: &str, from: u32, to: u32, ops: Value) -> Value {
    json!({"apiVersion": "durable.lens/v1", "schema": stream, "from": from, "to": to, "ops": ops})
}

// ---------------------------------------------------------------------------------------
// The registry document
// ---------------------------------------------------------------------------------------

#[test]
fn default_registry_document() {
    let reg = Registry::default_for("s");
    assert_eq!(
        String::from_utf8(reg.to_json()).unwrap(),
        r#"{"apiVersion":"durable.streams/schema-registry/v1","schema":"s","currentVersion":0,"boundaries":[],"schemas":{},"lenses":{}}"#
    );
    assert_eq!((reg.current_version(), reg.schema_name()), (0, "s"));
    assert!(
        reg.current_schema().is_none() && reg.routing_key().is_none() && reg.search().is_none()
    );
    assert_eq!(Registry::parse(&reg.to_json()).unwrap(), reg);
}

#[test]
fn serialization_key_order_and_round_trip() {
    let text = concat!(
        r#"{"apiVersion":"durable.streams/schema-registry/v1","schema":"s","currentVersion":2,"#,
        r#""routingKey":{"jsonPointer":"/t","required":false},"search":{"z":1,"a":{"y":2,"b":3}},"#,
        r#""boundaries":[{"offset":0,"version":1},{"offset":7,"version":2}],"#,
        r#""schemas":{"1":{"type":"object","properties":{"z":{},"a":{}}},"2":true},"#,
        r#""lenses":{"1":{"apiVersion":"durable.lens/v1","schema":"s","from":1,"to":2,"ops":[{"op":"add","path":"/a","schema":true,"default":1}]}}}"#
    );
    let reg = Registry::parse(text.as_bytes()).unwrap();
    assert_eq!(String::from_utf8(reg.to_json()).unwrap(), text);
    assert_eq!(
        reg.routing_key(),
        Some(&RoutingKey {
            json_pointer: "/t".to_owned(),
            required: false
        })
    );
    assert_eq!(reg.routing_key().unwrap().segments(), vec!["t".to_owned()]);
    assert_eq!(
        reg.boundaries()[1],
        Boundary {
            offset: 7,
            version: 2
        }
    );
    assert_eq!(reg.current_schema(), Some(&json!(true)));
    assert_eq!(reg.schema_for(1).unwrap()["type"], json!("object"));
    assert_eq!(reg.lenses().len(), 1);
    // Key order differs from to_json's: still accepted, and written back in the fixed order.
    let shuffled = r#"{"lenses":{},"schemas":{},"boundaries":[],"currentVersion":0,"schema":"s","apiVersion":"durable.streams/schema-registry/v1"}"#;
    assert_eq!(
        Registry::parse(shuffled.as_bytes()).unwrap(),
        Registry::default_for("s")
    );
}

#[test]
fn strict_loader() {
    let base = json!({"apiVersion": REGISTRY_API_VERSION, "schema": "s", "currentVersion": 0,
                      "boundaries": [], "schemas": {}, "lenses": {}});
    let with = |key: &str, v: Value| {
        let mut r = base.clone();
        r[key] = v;
        serde_json::to_vec(&r).unwrap()
    };
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"[]".to_vec(), "invalid schema registry"),
        (b"null".to_vec(), "invalid schema registry"),
        (
            with("interpreter", json!({"apiVersion": "x"})),
            "registry.interpreter is not supported",
        ),
        (with("extra", json!(1)), "registry.extra is not supported"),
        (
            with("apiVersion", json!("v0")),
            "invalid registry apiVersion",
        ),
        (
            with("schema", json!(" ")),
            "invalid schema registry: schema must be a non-empty string",
        ),
        (
            with("currentVersion", json!(-1)),
            "invalid registry currentVersion",
        ),
        (
            with("currentVersion", json!(1.5)),
            "invalid registry currentVersion",
        ),
        (
            with("routingKey", json!("/a")),
            "routingKey must be an object or null",
        ),
        (
            with("routingKey", json!({"jsonPointer": "/a"})),
            "routingKey.required must be boolean",
        ),
        (
            with("routingKey", json!({"jsonPointer": "a", "required": true})),
            "invalid json pointer",
        ),
        (
            with(
                "routingKey",
                json!({"jsonPointer": "/a", "required": true, "x": 1}),
            ),
            "routingKey.x is not supported",
        ),
        (with("search", json!([])), "search must be an object"),
        (
            with("boundaries", json!([{"offset": 0}])),
            "invalid boundary entry",
        ),
        (
            with("boundaries", json!([{"offset": "0", "version": 1}])),
            "invalid boundary entry",
        ),
        (with("boundaries", json!([1])), "invalid boundary entry"),
    ];
    for (bytes, want) in cases {
        assert_eq!(
            Registry::parse(&bytes).unwrap_err(),
            want,
            "{}",
            String::from_utf8_lossy(&bytes)
        );
    }
    assert!(Registry::parse(b"{")
        .unwrap_err()
        .starts_with("invalid schema registry: "));
    // Lenient like the original: missing or odd collections read as empty, null as absent.
    let lenient = json!({"apiVersion": REGISTRY_API_VERSION, "schema": "s", "boundaries": "x", "schemas": [],
                         "routingKey": null, "search": null, "currentVersion": 3.0});
    let reg = Registry::parse(&serde_json::to_vec(&lenient).unwrap()).unwrap();
    assert_eq!(
        (
            reg.current_version(),
            reg.boundaries().len(),
            reg.schemas().len()
        ),
        (3, 0, 0)
    );
    assert!(reg.routing_key().is_none() && reg.search().is_none());
}

#[test]
fn legacy_registry_with_interpreter() {
    let text = json!({"apiVersion": REGISTRY_API_VERSION, "schema": "s", "currentVersion": 1,
        "routingKey": {"jsonPointer": "/tenant", "required": true},
        "interpreter": {"apiVersion": "durable.streams/stream-interpreter/v1", "format": "durable.streams/state-protocol/v1",
                        "touch": {"enabled": true}},
        "boundaries": [{"offset": 0, "version": 1}], "schemas": {"1": true}, "lenses": {}});
    let bytes = serde_json::to_vec(&text).unwrap();
    assert_eq!(
        Registry::parse(&bytes).unwrap_err(),
        "registry.interpreter is not supported"
    );
    let (reg, interpreter) = Registry::parse_legacy(&bytes).unwrap();
    assert_eq!(interpreter, Some(text["interpreter"].clone()));
    assert_eq!(reg.current_version(), 1);
    assert!(!String::from_utf8(reg.to_json())
        .unwrap()
        .contains("interpreter"));
    // interpreter: null reads as none; other unknown keys still fail.
    let mut null_interp = text.clone();
    null_interp["interpreter"] = Value::Null;
    assert_eq!(
        Registry::parse_legacy(&serde_json::to_vec(&null_interp).unwrap())
            .unwrap()
            .1,
        None
    );
    let mut other = text.clone();
    other["extra"] = json!(1);
    assert_eq!(
        Registry::parse_legacy(&serde_json::to_vec(&other).unwrap()).unwrap_err(),
        "registry.extra is not supported"
    );
    // Old routing keys may lack `required` (true then) or carry extra keys.
    let mut old_rk = text.clone();
    old_rk["routingKey"] = json!({"jsonPointer": "/t", "json_pointer": "/t"});
    let (reg, _) = Registry::parse_legacy(&serde_json::to_vec(&old_rk).unwrap()).unwrap();
    assert_eq!(reg.routing_key().map(|rk| rk.required), Some(true));
}

#[test]
fn version_at_table() {
    let reg = Registry::parse(
        json!({"apiVersion": REGISTRY_API_VERSION, "schema": "s", "currentVersion": 4,
               "boundaries": [{"offset": 0, "version": 1}, {"offset": 5, "version": 2},
                              {"offset": 5, "version": 3}, {"offset": 9, "version": 4}],
               "schemas": {}, "lenses": {}})
        .to_string()
        .as_bytes(),
    )
    .unwrap();
    for (position, want) in [(0, 1), (4, 1), (5, 3), (8, 3), (9, 4), (u64::MAX, 4)] {
        assert_eq!(reg.version_at(position), want, "{position}");
    }
    assert_eq!(Registry::default_for("s").version_at(3), 0);
}

// ---------------------------------------------------------------------------------------
// schema_registry.test.ts
// ---------------------------------------------------------------------------------------

fn search_config() -> Value {
    json!({
        "primaryTimestampField": "eventTime",
        "fields": {
            "eventTime": {"kind": "date", "bindings": [{"version": 1, "jsonPointer": "/eventTime"}],
                          "exact": true, "column": true, "exists": true, "sortable": true},
            "service": {"kind": "keyword", "bindings": [{"version": 1, "jsonPointer": "/service"}],
                        "normalizer": "lowercase_v1", "exact": true, "prefix": true, "exists": true},
            "status": {"kind": "integer", "bindings": [{"version": 1, "jsonPointer": "/status"}],
                       "exact": true, "column": true, "exists": true}
        }
    })
}

#[test]
fn install_then_upgrade_with_lens() {
    let v1 = json!({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"], "additionalProperties": false});
    let reg = update(&Registry::default_for("s"), &json!({"schema": v1}), 0).unwrap();
    assert_eq!(reg.current_version(), 1);
    assert_eq!(
        reg.boundaries(),
        &[Boundary {
            offset: 0,
            version: 1
        }]
    );

    let reg = update(&reg, &json!({"search": search_config()}), 0).unwrap();
    assert_eq!(reg.search(), Some(&search_config()));

    let v2 = json!({"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "object", "additionalProperties": false}},
                    "required": ["a", "b"], "additionalProperties": false});
    let lens12 = lens(
        "s",
        1,
        2,
        json!([{"op": "add", "path": "/b", "schema": {"type": "object"}}]),
    );
    let reg = update(&reg, &json!({"schema": v2, "lens": lens12}), 0).unwrap();
    assert_eq!(reg.current_version(), 2);
    assert_eq!(reg.search(), Some(&search_config()));
    assert_eq!(reg.lenses()["1"]["ops"][0]["default"], json!({}));
    assert_eq!(
        reg.boundaries()[1],
        Boundary {
            offset: 0,
            version: 2
        }
    );
    // No record was appended in between: position 0 is already version 2.
    assert_eq!(
        reg.promote(0, json!({"a": "x"})).unwrap(),
        json!({"a": "x"})
    );
    // The stored lens (defaults filled) is what a read of a version-1 record applies.
    let chain = reg.lens_chain(1).unwrap();
    assert_eq!(
        crate::lens::promote(&chain, json!({"a": "x"})).unwrap(),
        json!({"a": "x", "b": {}})
    );
}

#[test]
fn search_only_update_needs_an_installed_version() {
    let empty = Registry::default_for("s");
    assert_eq!(
        update(&empty, &json!({"search": search_config()}), 0),
        bad("search config requires an installed schema version")
    );
    // Clearing is always allowed.
    assert_eq!(update(&empty, &json!({"search": null}), 0).unwrap(), empty);
    let reg = update(
        &empty,
        &json!({"schema": true, "search": search_config()}),
        0,
    )
    .unwrap();
    assert_eq!(reg.search(), Some(&search_config()));
    let cleared = update(&reg, &json!({"search": null}), 5).unwrap();
    assert!(cleared.search().is_none());
    // The validator's verdict is the error.
    let reject = |_: &Value| Err("search.fields must be a non-empty object".to_owned());
    assert_eq!(
        apply_update(&reg, br#"{"search":{"fields":{}}}"#, 0, &reject),
        bad("search.fields must be a non-empty object")
    );
}

// ---------------------------------------------------------------------------------------
// schema_evolution.test.ts
// ---------------------------------------------------------------------------------------

fn evolution_schemas() -> (Value, Value, Value) {
    let v1 = closed(
        &["id", "assignee"],
        json!({"id": {"type": "integer"}, "assignee": {"type": "string"}}),
    );
    let v2 = closed(
        &["id", "assignees"],
        json!({"id": {"type": "integer"}, "assignees": {"type": "array", "items": {"type": "string"}}}),
    );
    let v3 = closed(
        &["id", "assignees", "status"],
        json!({"id": {"type": "integer"}, "assignees": {"type": "array", "items": {"type": "string"}},
               "status": {"type": "string", "enum": ["todo", "done"]}}),
    );
    (v1, v2, v3)
}

#[test]
fn three_versions_promote_reads_and_record_boundaries() {
    let (v1, v2, v3) = evolution_schemas();
    let mut log: Vec<Value> = Vec::new();
    let append = |reg: &Registry, log: &mut Vec<Value>, record: Value| -> Result<(), String> {
        CompiledSchema::compile(reg.current_schema().unwrap())?.validate(&record)?;
        log.push(record);
        Ok(())
    };

    let reg = update(&Registry::default_for("schema"), &json!({"schema": v1}), 0).unwrap();
    append(&reg, &mut log, json!({"id": 1, "assignee": "alice"})).unwrap();

    let lens12 = lens(
        "schema",
        1,
        2,
        json!([
            {"op": "rename", "from": "/assignee", "to": "/assignees"},
            {"op": "wrap", "path": "/assignees", "mode": "singleton"}
        ]),
    );
    let reg = update(
        &reg,
        &json!({"schema": v2, "lens": lens12}),
        log.len() as u64,
    )
    .unwrap();
    append(&reg, &mut log, json!({"id": 2, "assignees": ["bob"]})).unwrap();

    let lens23 = lens(
        "schema",
        2,
        3,
        json!([{"op": "add", "path": "/status", "schema": {"type": "string"}, "default": "todo"}]),
    );
    let reg = update(
        &reg,
        &json!({"schema": v3, "lens": lens23}),
        log.len() as u64,
    )
    .unwrap();
    append(
        &reg,
        &mut log,
        json!({"id": 3, "assignees": ["carol"], "status": "done"}),
    )
    .unwrap();

    assert_eq!(reg.current_version(), 3);
    assert_eq!(
        reg.boundaries(),
        &[
            Boundary {
                offset: 0,
                version: 1
            },
            Boundary {
                offset: 1,
                version: 2
            },
            Boundary {
                offset: 2,
                version: 3
            }
        ]
    );
    let promoted: Vec<Value> = log
        .iter()
        .enumerate()
        .map(|(i, r)| reg.promote(i as u64, r.clone()).unwrap())
        .collect();
    assert_eq!(
        promoted,
        vec![
            json!({"id": 1, "assignees": ["alice"], "status": "todo"}),
            json!({"id": 2, "assignees": ["bob"], "status": "todo"}),
            json!({"id": 3, "assignees": ["carol"], "status": "done"}),
        ]
    );
    // An append in the old shape is now refused.
    let err = append(&reg, &mut log, json!({"id": 4, "assignees": ["dave"]})).unwrap_err();
    assert_eq!(err, "must have required property 'status'");

    // The registry survives a store/load cycle with the same behaviour.
    let reloaded = Registry::parse(&reg.to_json()).unwrap();
    assert_eq!(reloaded, reg);
    assert_eq!(reloaded.promote(0, log[0].clone()).unwrap(), promoted[0]);
    assert_eq!(reloaded.lens_chain(1).unwrap().len(), 2);
}

#[test]
fn invalid_lens_update_is_rejected() {
    let (v1, v2, _) = evolution_schemas();
    let reg = update(&Registry::default_for("badlens"), &json!({"schema": v1}), 0).unwrap();
    let bad_lens = lens(
        "badlens",
        1,
        2,
        json!([{"op": "rename", "from": "/assignee", "to": "/assignees"}]),
    );
    assert_eq!(
        update(&reg, &json!({"schema": v2, "lens": bad_lens}), 1),
        bad("rename schema incompatible")
    );
}

#[test]
fn promotion_errors() {
    // A registry whose lens 1→2 is missing or broken (hand-edited storage).
    let base = json!({"apiVersion": REGISTRY_API_VERSION, "schema": "s", "currentVersion": 2,
        "boundaries": [{"offset": 0, "version": 1}, {"offset": 1, "version": 2}],
        "schemas": {"1": true, "2": true}, "lenses": {}});
    let reg = Registry::parse(base.to_string().as_bytes()).unwrap();
    assert_eq!(
        reg.promote(0, json!({})),
        Err("missing lens v1->v2".to_owned())
    );
    assert_eq!(reg.promote(1, json!({"x": 1})), Ok(json!({"x": 1})));
    let mut broken = base.clone();
    broken["lenses"] = json!({"1": {"apiVersion": "durable.lens/v1"}});
    let reg = Registry::parse(broken.to_string().as_bytes()).unwrap();
    assert_eq!(
        reg.promote(0, json!({})),
        Err("invalid lens: data must have required property 'schema'".to_owned())
    );
    // A runtime failure carries the lens's message.
    let mut strict = base.clone();
    strict["lenses"] =
        json!({"1": lens("s", 1, 2, json!([{"op": "remove", "path": "/gone", "schema": true}]))});
    let reg = Registry::parse(strict.to_string().as_bytes()).unwrap();
    assert_eq!(
        reg.promote(0, json!({})),
        Err("remove missing path".to_owned())
    );
    // Nothing is promoted without a schema.
    assert_eq!(
        Registry::default_for("s").promote(0, json!(1)),
        Ok(json!(1))
    );
}

// ---------------------------------------------------------------------------------------
// assumptions.test.ts and the other update rules
// ---------------------------------------------------------------------------------------

#[test]
fn registry_shaped_body_is_rejected() {
    let body = json!({"apiVersion": REGISTRY_API_VERSION, "schema": "record/app.bsky.feed.like", "currentVersion": 1,
                      "schemas": {"1": {"type": "object", "additionalProperties": true}}, "lenses": {}});
    let reg = Registry::default_for("record/app.bsky.feed.like");
    let err = update(&reg, &body, 0).unwrap_err();
    assert_eq!(
        (err.status(), err.code(), err.message()),
        (
            400,
            "bad_request",
            "schemaUpdate.currentVersion is not supported"
        )
    );
}

#[test]
fn routing_key_only_update_is_accepted() {
    let reg = Registry::default_for("record/app.bsky.feed.like");
    let next = update(
        &reg,
        &json!({"routingKey": {"jsonPointer": "/subject/uri", "required": true}}),
        42,
    )
    .unwrap();
    assert_eq!(
        next.routing_key(),
        Some(&RoutingKey {
            json_pointer: "/subject/uri".to_owned(),
            required: true
        })
    );
    assert_eq!(next.current_version(), 0);
    let cleared = update(&next, &json!({"routingKey": null}), 42).unwrap();
    assert_eq!(cleared, reg);
}

#[test]
fn routing_key_aliases_are_rejected() {
    let reg = Registry::default_for("s");
    for alias in ["routing_key", "routingKeyPointer", "routing_key_pointer"] {
        let body = json!({"schema": {"type": "object", "additionalProperties": true}, alias: "/subject/uri"});
        assert_eq!(
            update(&reg, &body, 0),
            bad(&format!("schemaUpdate.{alias} is not supported"))
        );
    }
    let json_pointer_alias = json!({"routingKey": {"json_pointer": "/a", "required": true}});
    assert_eq!(
        update(&reg, &json_pointer_alias, 0),
        bad("routingKey.json_pointer is not supported")
    );
}

#[test]
fn first_install_keeps_an_earlier_routing_key() {
    // Decision (documented on apply_update): the original dropped it; we keep it.
    let rk = json!({"jsonPointer": "/tenant", "required": false});
    let reg = update(&Registry::default_for("s"), &json!({"routingKey": rk}), 0).unwrap();
    let installed = update(&reg, &json!({"schema": true}), 0).unwrap();
    assert_eq!(installed.routing_key(), reg.routing_key());
    // A routing key in the body replaces it, at the first install and later.
    let other = json!({"jsonPointer": "/org", "required": true});
    let replaced = update(&reg, &json!({"schema": true, "routingKey": other}), 0).unwrap();
    assert_eq!(replaced.routing_key().unwrap().json_pointer, "/org");
    let v2 = update(
        &replaced,
        &json!({"schema": true, "lens": lens("s", 1, 2, json!([{"op": "copy", "from": "/a", "to": "/a"}]))}),
        3,
    );
    // (`copy` of a non-required source fails the proof against `true`.)
    assert_eq!(v2, bad("copy source not required"));
}

#[test]
fn update_error_table() {
    let empty = Registry::default_for("s");
    let v1 = closed(&["a"], json!({"a": {"type": "string"}}));
    let installed = update(&empty, &json!({"schema": v1}), 0).unwrap();
    let v2 = closed(
        &["a", "b"],
        json!({"a": {"type": "string"}, "b": {"type": "integer", "default": 0}}),
    );
    let add_b = json!([{"op": "add", "path": "/b", "schema": {"type": "integer"}}]);
    let raw =
        |reg: &Registry, body: &[u8], next: u64| apply_update(reg, body, next, &accept_search);

    assert_eq!(
        raw(&empty, b"{", 0),
        bad("schema update must be valid JSON")
    );
    assert_eq!(raw(&empty, b"", 0), bad("schema update must be valid JSON"));
    assert_eq!(
        raw(&empty, b"null", 0),
        bad("schema update must be a JSON object")
    );
    assert_eq!(
        raw(&empty, b"[1]", 0),
        bad("schema update must be a JSON object")
    );
    assert_eq!(
        raw(&empty, b"\"x\"", 0),
        bad("schema update must be a JSON object")
    );

    type Case = (
        &'static str,
        Registry,
        Value,
        u64,
        Result<Registry, SchemaError>,
    );
    let cases: Vec<Case> = vec![
        (
            "interpreter key",
            empty.clone(),
            json!({"schema": true, "interpreter": {}}),
            0,
            bad("schemaUpdate.interpreter is not supported"),
        ),
        (
            "indexes key",
            empty.clone(),
            json!({"indexes": []}),
            0,
            bad("schemaUpdate.indexes is not supported"),
        ),
        (
            "apiVersion",
            empty.clone(),
            json!({"apiVersion": "v2", "schema": true}),
            0,
            bad("invalid schema apiVersion"),
        ),
        (
            "apiVersion null",
            empty.clone(),
            json!({"apiVersion": null, "schema": true}),
            0,
            bad("invalid schema apiVersion"),
        ),
        (
            "nothing",
            empty.clone(),
            json!({}),
            0,
            bad("schema update must include schema, routingKey, or search"),
        ),
        (
            "apiVersion only",
            empty.clone(),
            json!({"apiVersion": REGISTRY_API_VERSION}),
            0,
            bad("schema update must include schema, routingKey, or search"),
        ),
        (
            "lens alone",
            empty.clone(),
            json!({"lens": null, "search": null}),
            0,
            bad("schema update lens requires schema"),
        ),
        (
            "routingKey string",
            empty.clone(),
            json!({"routingKey": "/a"}),
            0,
            bad("routingKey must be an object or null"),
        ),
        (
            "routingKey array",
            empty.clone(),
            json!({"routingKey": []}),
            0,
            bad("routingKey must be an object or null"),
        ),
        (
            "routingKey pointer type",
            empty.clone(),
            json!({"routingKey": {"jsonPointer": 1, "required": true}}),
            0,
            bad("routingKey.jsonPointer must be a string"),
        ),
        (
            "routingKey pointer syntax",
            empty.clone(),
            json!({"routingKey": {"jsonPointer": "a", "required": true}}),
            0,
            bad("invalid json pointer"),
        ),
        (
            "routingKey required missing",
            empty.clone(),
            json!({"routingKey": {"jsonPointer": "/a"}}),
            0,
            bad("routingKey.required must be boolean"),
        ),
        (
            "routingKey required type",
            empty.clone(),
            json!({"routingKey": {"jsonPointer": "/a", "required": "yes"}}),
            0,
            bad("routingKey.required must be boolean"),
        ),
        (
            "routingKey null with schema",
            empty.clone(),
            json!({"schema": true, "routingKey": null}),
            0,
            bad("schema update routingKey must be an object when schema is provided"),
        ),
        (
            "search not accepted",
            empty.clone(),
            json!({"schema": true, "search": 3}),
            0,
            bad("search must be an object"),
        ),
        (
            "routingKey + search",
            installed.clone(),
            json!({"routingKey": null, "search": null}),
            0,
            bad("missing schema"),
        ),
        (
            "$ref",
            empty.clone(),
            json!({"schema": {"properties": {"a": {"$ref": "#/definitions/x"}}}}),
            0,
            bad("external $ref is not supported"),
        ),
        (
            "$ref property name",
            empty.clone(),
            json!({"schema": {"properties": {"$ref": {"type": "string"}}}}),
            0,
            bad("external $ref is not supported"),
        ),
        (
            "$ref in array",
            empty.clone(),
            json!({"schema": {"anyOf": [{"$ref": "http://x/y.json"}]}}),
            0,
            bad("external $ref is not supported"),
        ),
        (
            "schema null",
            empty.clone(),
            json!({"schema": null}),
            0,
            bad("schema must be object or boolean"),
        ),
        (
            "schema string",
            empty.clone(),
            json!({"schema": "object"}),
            0,
            bad("schema must be object or boolean"),
        ),
        (
            "non-empty stream",
            empty.clone(),
            json!({"schema": true}),
            1,
            bad("first schema requires empty stream"),
        ),
        (
            "first lens wrong versions",
            empty.clone(),
            json!({"schema": true, "lens": lens("s", 1, 2, json!([{"op": "head", "path": "/a"}]))}),
            0,
            conflict("lens version mismatch"),
        ),
        (
            "first lens invalid",
            empty.clone(),
            json!({"schema": true, "lens": {"apiVersion": "durable.lens/v1"}}),
            0,
            bad("invalid lens: data must have required property 'schema'"),
        ),
        (
            "lens required",
            installed.clone(),
            json!({"schema": v2}),
            1,
            bad("lens required"),
        ),
        (
            "lens null",
            installed.clone(),
            json!({"schema": v2, "lens": null}),
            1,
            bad("lens required"),
        ),
        (
            "lens invalid",
            installed.clone(),
            json!({"schema": v2, "lens": {"ops": []}}),
            1,
            bad("invalid lens: data must have required property 'apiVersion'"),
        ),
        (
            "lens from",
            installed.clone(),
            json!({"schema": v2, "lens": lens("s", 0, 1, add_b.clone())}),
            1,
            conflict("lens version mismatch"),
        ),
        (
            "lens to",
            installed.clone(),
            json!({"schema": v2, "lens": lens("s", 1, 3, add_b.clone())}),
            1,
            conflict("lens version mismatch"),
        ),
        (
            "lens schema",
            installed.clone(),
            json!({"schema": v2, "lens": lens("other", 1, 2, add_b.clone())}),
            1,
            bad("lens schema mismatch"),
        ),
        (
            "proof",
            installed.clone(),
            json!({"schema": v2, "lens": lens("s", 1, 2, json!([{"op": "remove", "path": "/a", "schema": true}]))}),
            1,
            bad("remove path still required in new schema"),
        ),
        (
            "nested proof",
            installed.clone(),
            json!({"schema": closed(&["a"], json!({"a": {"type": "string"}, "b": {"type": "object"}})),
                "lens": lens("s", 1, 2, json!([{"op": "in", "path": "/b", "ops": [{"op": "add", "path": "/c", "schema": true, "default": 1}]}]))}),
            1,
            bad("in path invalid"),
        ),
        (
            "offset",
            installed.clone(),
            json!({"schema": v2, "lens": lens("s", 1, 2, add_b.clone())}),
            MAX_SAFE_INTEGER + 1,
            bad("offset exceeds MAX_SAFE_INTEGER"),
        ),
    ];
    for (name, reg, body, next, want) in cases {
        assert_eq!(update(&reg, &body, next), want, "{name}");
    }

    // The error carries its status.
    let e = update(
        &installed,
        &json!({"schema": v2, "lens": lens("s", 2, 3, add_b.clone())}),
        1,
    )
    .unwrap_err();
    assert_eq!(
        (e.status(), e.code(), e.message()),
        (409, "conflict", "lens version mismatch")
    );
    assert_eq!(e.to_string(), "lens version mismatch");

    // The successful step, for contrast: the default comes from the new schema.
    let ok = update(
        &installed,
        &json!({"schema": v2, "lens": lens("s", 1, 2, add_b.clone())}),
        MAX_SAFE_INTEGER,
    )
    .unwrap();
    assert_eq!(
        ok.boundaries()[1],
        Boundary {
            offset: MAX_SAFE_INTEGER,
            version: 2
        }
    );
    assert_eq!(ok.lenses()["1"]["ops"][0]["default"], json!(0));
    assert_eq!(
        ok.promote(0, json!({"a": "x"})).unwrap(),
        json!({"a": "x", "b": 0})
    );
}

#[test]
fn first_install_with_a_valid_lens_does_not_store_it() {
    let body = json!({"schema": true, "lens": lens("s", 0, 1, json!([{"op": "add", "path": "/a", "schema": true, "default": 1}]))});
    let reg = update(&Registry::default_for("s"), &body, 0).unwrap();
    assert_eq!(reg.current_version(), 1);
    assert!(reg.lenses().is_empty());
}

#[test]
fn schema_that_does_not_compile_is_rejected() {
    let err = update(
        &Registry::default_for("s"),
        &json!({"schema": {"type": "objekt"}}),
        0,
    )
    .unwrap_err();
    assert_eq!(err.status(), 400);
    assert!(
        err.message().starts_with("invalid JSON Schema: "),
        "{}",
        err.message()
    );
    let err = update(
        &Registry::default_for("s"),
        &json!({"schema": {"minLength": -1}}),
        0,
    )
    .unwrap_err();
    assert!(
        err.message().starts_with("invalid JSON Schema: "),
        "{}",
        err.message()
    );
}

#[test]
fn updates_leave_the_input_untouched() {
    let reg = update(&Registry::default_for("s"), &json!({"schema": true}), 0).unwrap();
    let before = reg.to_json();
    let _ = update(
        &reg,
        &json!({"routingKey": {"jsonPointer": "/a", "required": true}}),
        3,
    )
    .unwrap();
    let _ = update(
        &reg,
        &json!({"schema": true, "lens": lens("s", 1, 2, json!([{"op": "head", "path": "/x"}]))}),
        3,
    );
    assert_eq!(reg.to_json(), before);
}

// ---------------------------------------------------------------------------------------
// Record validation (http_behavior.test.ts: date-time is enforced)
// ---------------------------------------------------------------------------------------

#[test]
fn date_time_format_is_enforced() {
    let schema = CompiledSchema::compile(&json!({"type": "object", "properties": {
        "ts": {"type": "string", "format": "date-time"},
        "mail": {"type": "string", "format": "email"},
        "when": {"type": "string", "format": "date"},
        "custom": {"type": "string", "format": "not-a-format"}
    }}))
    .unwrap();
    for ok in [
        "2024-01-01T00:00:00Z",
        "2024-02-29T23:59:59.123456789+05:30",
    ] {
        assert_eq!(schema.validate(&json!({"ts": ok})), Ok(()), "{ok}");
    }
    for bad_ts in [
        "2024-01-01",
        "2024-02-30T00:00:00Z",
        "2024-01-01 00:00:00Z",
        "yesterday",
    ] {
        assert_eq!(
            schema.validate(&json!({"ts": bad_ts})),
            Err("must match format \"date-time\"".to_owned()),
            "{bad_ts}"
        );
    }
    // Other formats are annotations only; non-strings are not format-checked.
    assert_eq!(
        schema.validate(&json!({"mail": "nope", "when": "x", "custom": "y", "ts": 5})),
        Err("must be string".to_owned())
    );
    assert_eq!(
        schema.validate(&json!({"mail": "nope", "when": "x", "custom": "y"})),
        Ok(())
    );
}

#[test]
fn validation_reports_every_error() {
    let schema = CompiledSchema::compile(&closed(
        &["id", "name"],
        json!({"id": {"type": "integer"}, "name": {"type": "string", "minLength": 2}, "tags": {"type": ["array", "null"]},
               "status": {"enum": ["a", "b"]}, "n": {"minimum": 0}}),
    ))
    .unwrap();
    let err = schema
        .validate(&json!({"id": "x", "tags": 1, "status": "c", "n": -1, "extra": true}))
        .unwrap_err();
    let mut parts: Vec<&str> = err.split("; ").collect();
    parts.sort_unstable();
    assert_eq!(
        parts,
        vec![
            "must NOT have additional properties",
            "must be >= 0",
            "must be array,null",
            "must be equal to one of the allowed values",
            "must be integer",
            "must have required property 'name'",
        ]
    );
    // Boolean schemas and draft-07 semantics (union types, no format plugin) work.
    assert_eq!(
        CompiledSchema::compile(&json!(true))
            .unwrap()
            .validate(&json!(1)),
        Ok(())
    );
    assert_eq!(
        CompiledSchema::compile(&json!(false))
            .unwrap()
            .validate(&json!(1)),
        Err("boolean schema is false".to_owned())
    );
}

#[test]
fn schema_cache_is_bounded_and_shares_compiled_schemas() {
    let cache = SchemaCache::new(2);
    assert!(cache.is_empty());
    let a = json!({"type": "string"});
    let b = json!({"type": "integer"});
    let c = json!({"type": "boolean"});
    let first = cache.get_or_compile(&a).unwrap();
    assert!(std::sync::Arc::ptr_eq(
        &first,
        &cache.get_or_compile(&a).unwrap()
    ));
    cache.get_or_compile(&b).unwrap();
    cache.get_or_compile(&a).unwrap(); // a is now the most recently used
    cache.get_or_compile(&c).unwrap(); // evicts b
    assert_eq!(cache.len(), 2);
    assert!(std::sync::Arc::ptr_eq(
        &first,
        &cache.get_or_compile(&a).unwrap()
    ));
    assert_eq!(
        cache.get_or_compile(&json!({"$ref": "#"})).unwrap_err(),
        REF_NOT_SUPPORTED
    );
    assert_eq!(cache.len(), 2);
    assert_eq!(
        cache.get_or_compile(&b).unwrap().validate(&json!(1)),
        Ok(())
    );
}

// ---------------------------------------------------------------------------------------
// @prisma/dev 0.25.2's exact prisma-wal body (0.1.11 notes §7.1)
// ---------------------------------------------------------------------------------------

const WAL_SCHEMA: &str = concat!(
    r#"{"additionalProperties":true,"properties":{"headers":{"properties":{"operation":{"type":"string"},"#,
    r#""timestamp":{"format":"date-time","type":"string"}},"required":["timestamp","operation"],"type":"object"},"#,
    r#""key":{"type":"string"},"type":{"type":"string"}},"required":["type","key","headers"],"type":"object"}"#
);

const WAL_SEARCH: &str = concat!(
    r#"{"aliases":{"rowKey":"key","table":"type"},"#,
    r#""fields":{"eventTime":{"bindings":[{"jsonPointer":"/headers/timestamp","version":1}],"column":true,"exact":true,"exists":true,"kind":"date","sortable":true},"#,
    r#""key":{"bindings":[{"jsonPointer":"/key","version":1}],"exact":true,"exists":true,"kind":"keyword"},"#,
    r#""operation":{"bindings":[{"jsonPointer":"/headers/operation","version":1}],"exact":true,"exists":true,"kind":"keyword"},"#,
    r#""type":{"bindings":[{"jsonPointer":"/type","version":1}],"exact":true,"exists":true,"kind":"keyword"}},"#,
    r#""primaryTimestampField":"eventTime"}"#
);

#[test]
fn prisma_dev_setup_body_round_trips_byte_for_byte() {
    let body = format!(
        r#"{{"apiVersion":"durable.streams/schema-registry/v1","schema":{WAL_SCHEMA},"search":{WAL_SEARCH}}}"#
    );
    let reg = apply_update(
        &Registry::default_for("prisma-wal"),
        body.as_bytes(),
        0,
        &accept_search,
    )
    .unwrap();
    assert_eq!(reg.current_version(), 1);

    let stored = reg.to_json();
    let text = String::from_utf8(stored.clone()).unwrap();
    assert!(
        text.contains(&format!(r#""search":{WAL_SEARCH}"#)),
        "{text}"
    );
    assert!(
        text.contains(&format!(r#""schemas":{{"1":{WAL_SCHEMA}}}"#)),
        "{text}"
    );

    let loaded = Registry::parse(&stored).unwrap();
    assert_eq!(
        serde_json::to_string(&loaded.schemas()["1"]).unwrap(),
        WAL_SCHEMA
    );
    assert_eq!(
        serde_json::to_string(loaded.search().unwrap()).unwrap(),
        WAL_SEARCH
    );
    assert_eq!(loaded.to_json(), stored);
    assert_eq!(loaded.schema_name(), "prisma-wal");

    // Appends: a WAL event passes, a bad timestamp does not.
    let schema = CompiledSchema::compile(loaded.current_schema().unwrap()).unwrap();
    let event = json!({"type": "public.users", "key": "1", "value": {"id": 1},
                       "headers": {"operation": "insert", "timestamp": "2026-06-01T10:00:00.000Z"}});
    assert_eq!(schema.validate(&event), Ok(()));
    let mut late = event.clone();
    late["headers"]["timestamp"] = json!("2026-06-01 10:00:00");
    assert_eq!(
        schema.validate(&late),
        Err("must match format \"date-time\"".to_owned())
    );

    // Re-posting the same body (what a restart would do without the GET-compare) fails.
    let again = apply_update(&loaded, body.as_bytes(), 1, &accept_search).unwrap_err();
    assert_eq!((again.status(), again.message()), (400, "lens required"));
}

#[test]
fn types_can_be_shared_across_threads() {
    fn shared<T: Send + Sync>() {}
    shared::<Registry>();
    shared::<CompiledSchema>();
    shared::<SchemaCache>();
    shared::<SchemaError>();
    shared::<crate::lens::Lens>();
}

mod properties {
    use proptest::prelude::*;
    use serde_json::{json, Map, Value};

    use super::*;

    fn arb_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (0u32..4).prop_map(Value::from),
            prop::sample::select(vec!["/a", "a", "s", "durable.lens/v1", "", "$ref"])
                .prop_map(|s| json!(s)),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                prop::collection::vec(
                    (
                        prop::sample::select(vec![
                            "type",
                            "properties",
                            "required",
                            "op",
                            "path",
                            "from",
                            "to",
                            "ops",
                            "schema",
                            "apiVersion",
                            "jsonPointer",
                            "a",
                            "$ref",
                            "default",
                            "items",
                        ]),
                        inner
                    ),
                    0..4
                )
                .prop_map(|kv| Value::Object(
                    kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
                )),
            ]
        })
    }

    fn arb_body() -> impl Strategy<Value = Value> {
        prop::collection::vec(
            (
                prop::sample::select(vec![
                    "apiVersion",
                    "schema",
                    "lens",
                    "routingKey",
                    "search",
                    "schemas",
                ]),
                arb_value(),
            ),
            0..4,
        )
        .prop_map(|kv| {
            Value::Object(
                kv.into_iter()
                    .map(|(k, v)| (k.to_owned(), v))
                    .collect::<Map<_, _>>(),
            )
        })
    }

    proptest! {
        /// Any body gives a registry or an error (never a panic), and a new registry
        /// survives storage.
        #[test]
        fn updates_never_panic_and_results_round_trip(body in arb_body(), next in 0u64..3) {
            let empty = Registry::default_for("s");
            let installed = update(&empty, &json!({"schema": true}), 0).unwrap();
            for reg in [&empty, &installed] {
                if let Ok(next_reg) = update(reg, &body, next) {
                    prop_assert_eq!(Registry::parse(&next_reg.to_json()).unwrap(), next_reg);
                }
            }
        }
    }
}
