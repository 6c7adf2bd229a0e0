//! Tables with the cases of the original's `test/lens.test.ts` and
//! `test/schema_proof.test.ts`, plus every op, every proof rule and every error message.

use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;

fn lens_with(ops: Value) -> Value {
    json!({"apiVersion": "durable.lens/v1", "schema": "S", "from": 1, "to": 2, "ops": ops})
}

fn compile(ops: Value) -> Lens {
    Lens::from_value(&lens_with(ops)).unwrap()
}

fn apply(ops: Value, doc: Value) -> Result<Value, String> {
    compile(ops).apply(doc)
}

// ---------------------------------------------------------------------------------------
// Runtime: the original's lens.test.ts
// ---------------------------------------------------------------------------------------

#[test]
fn original_runtime_cases() {
    let cases = [
        (
            "rename",
            json!([{"op": "rename", "from": "/a", "to": "/b"}]),
            json!({"a": 1}),
            json!({"b": 1}),
        ),
        (
            "copy",
            json!([{"op": "copy", "from": "/a", "to": "/b"}]),
            json!({"a": 1}),
            json!({"a": 1, "b": 1}),
        ),
        (
            "add/remove",
            json!([
                {"op": "add", "path": "/b", "schema": {"type": "number"}, "default": 2},
                {"op": "remove", "path": "/a", "schema": {"type": "number"}}
            ]),
            json!({"a": 1}),
            json!({"b": 2}),
        ),
        (
            "hoist/plunge",
            json!([
                {"op": "hoist", "host": "/obj", "name": "a", "to": "/a"},
                {"op": "plunge", "from": "/a", "host": "/nested", "name": "a"}
            ]),
            json!({"obj": {"a": 1}}),
            json!({"nested": {"a": 1}, "obj": {}}),
        ),
        (
            "wrap/head",
            json!([{"op": "wrap", "path": "/a", "mode": "singleton"}, {"op": "head", "path": "/a"}]),
            json!({"a": "x"}),
            json!({"a": "x"}),
        ),
        (
            "convert map/builtin",
            json!([
                {"op": "convert", "path": "/status", "fromType": "string", "toType": "string",
                 "forward": {"map": {"open": "todo"}, "default": "todo"},
                 "backward": {"map": {"todo": "open"}, "default": "open"}},
                {"op": "convert", "path": "/name", "fromType": "string", "toType": "string",
                 "forward": {"builtin": "lowercase"}, "backward": {"builtin": "uppercase"}}
            ]),
            json!({"status": "open", "name": "ALICE"}),
            json!({"status": "todo", "name": "alice"}),
        ),
        (
            "in/map",
            json!([
                {"op": "in", "path": "/obj", "ops": [{"op": "rename", "from": "/a", "to": "/b"}]},
                {"op": "map", "path": "/arr", "ops": [{"op": "rename", "from": "/x", "to": "/y"}]}
            ]),
            json!({"obj": {"a": 1}, "arr": [{"x": 1}, {"x": 2}]}),
            json!({"obj": {"b": 1}, "arr": [{"y": 1}, {"y": 2}]}),
        ),
        (
            "destination overwrite",
            json!([
                {"op": "rename", "from": "/a", "to": "/x"},
                {"op": "copy", "from": "/b", "to": "/y"},
                {"op": "add", "path": "/tags", "schema": {"type": "array", "items": {"type": "string"}}, "default": []},
                {"op": "hoist", "host": "/user", "name": "login", "to": "/userLogin"},
                {"op": "plunge", "from": "/height", "host": "/properties", "name": "height", "createHost": true}
            ]),
            json!({"a": 1, "x": 9, "b": 2, "y": 9, "tags": ["keep"], "user": {"login": "alice", "id": 1},
                   "userLogin": "pre", "height": 180, "properties": {"height": 160}}),
            json!({"x": 1, "b": 2, "y": 2, "tags": [], "user": {"id": 1}, "userLogin": "alice",
                   "properties": {"height": 180}}),
        ),
    ];
    for (name, ops, input, want) in cases {
        assert_eq!(apply(ops, input).unwrap(), want, "{name}");
    }
}

#[test]
fn chain_applies_sequentially() {
    let l1 = Lens::from_value(&json!({"apiVersion": "durable.lens/v1", "schema": "T", "from": 1, "to": 2, "ops": [
        {"op": "rename", "from": "/a", "to": "/x"},
        {"op": "add", "path": "/tags", "schema": {"type": "array", "items": {"type": "string"}}, "default": []}
    ]}))
    .unwrap();
    let l2 = Lens::from_value(
        &json!({"apiVersion": "durable.lens/v1", "schema": "T", "from": 2, "to": 3, "ops": [
            {"op": "copy", "from": "/x", "to": "/y"},
            {"op": "remove", "path": "/x", "schema": {"type": "number"}}
        ]}),
    )
    .unwrap();
    let input = json!({"a": 1});
    let seq = l2.apply(l1.apply(input.clone()).unwrap()).unwrap();
    assert_eq!(promote(&[&l1, &l2], input.clone()).unwrap(), seq);
    assert_eq!(seq, json!({"tags": [], "y": 1}));
    assert_eq!(promote(&[], input.clone()).unwrap(), input);
}

#[test]
fn chain_of_ten_ops_across_ten_events() {
    let lens = Lens::from_value(&json!({"apiVersion": "durable.lens/v1", "schema": "Task", "from": 1, "to": 2, "ops": [
        {"op": "rename", "from": "/assignee", "to": "/assignees"},
        {"op": "wrap", "path": "/assignees", "mode": "singleton"},
        {"op": "add", "path": "/tags", "schema": {"type": "array", "items": {"type": "string"}}, "default": []},
        {"op": "convert", "path": "/status", "fromType": "string", "toType": "string",
         "forward": {"map": {"open": "todo", "closed": "done"}, "default": "todo"},
         "backward": {"map": {"todo": "open", "done": "closed"}, "default": "open"}},
        {"op": "map", "path": "/labels", "ops": [{"op": "rename", "from": "/name", "to": "/category"}]},
        {"op": "hoist", "host": "/user", "name": "login", "to": "/userLogin"},
        {"op": "remove", "path": "/user", "schema": {"type": "object"}, "default": {}},
        {"op": "in", "path": "/invoice", "ops": [
            {"op": "remove", "path": "/object", "schema": {"type": "string"}, "default": "invoice"},
            {"op": "rename", "from": "/id", "to": "/invoiceId"}
        ]},
        {"op": "copy", "from": "/id", "to": "/legacyId"},
        {"op": "plunge", "from": "/height", "host": "/properties", "name": "height", "createHost": true}
    ]}))
    .unwrap();
    for i in 0..10 {
        let status = if i % 2 == 0 { "open" } else { "closed" };
        let event = json!({
            "id": format!("t{i}"), "assignee": format!("user{i}"), "status": status,
            "labels": [{"name": "bug"}, {"name": format!("p{i}")}],
            "user": {"login": format!("user{i}"), "id": i},
            "invoice": {"id": format!("inv{i}"), "object": "invoice"},
            "height": 170 + i
        });
        let out = lens.apply(event).unwrap();
        assert_eq!(
            out,
            json!({
                "id": format!("t{i}"),
                "status": if status == "open" { "todo" } else { "done" },
                "labels": [{"category": "bug"}, {"category": format!("p{i}")}],
                "invoice": {"invoiceId": format!("inv{i}")},
                "assignees": [format!("user{i}")],
                "tags": [],
                "userLogin": format!("user{i}"),
                "legacyId": format!("t{i}"),
                "properties": {"height": 170 + i}
            })
        );
    }
}

// ---------------------------------------------------------------------------------------
// Runtime: every op, its edges and errors
// ---------------------------------------------------------------------------------------

#[test]
fn op_table() {
    let ok = [
        // rename
        (
            json!([{"op": "rename", "from": "/a", "to": "/a"}]),
            json!({"a": 1, "b": 2}),
            json!({"b": 2}),
        ),
        (
            json!([{"op": "rename", "from": "/a", "to": "/n/b"}]),
            json!({"a": 1, "n": {}}),
            json!({"n": {"b": 1}}),
        ),
        (
            json!([{"op": "rename", "from": "/a/0", "to": "/b"}]),
            json!({"a": [1, 2]}),
            json!({"a": [2], "b": 1}),
        ),
        (
            json!([{"op": "rename", "from": "/a", "to": "/b"}]),
            json!({"a": null}),
            json!({"b": null}),
        ),
        (
            json!([{"op": "rename", "from": "/a", "to": "/a/b"}]),
            json!({"a": {"x": 1}}),
            json!({}),
        ),
        (
            json!([{"op": "rename", "from": "/a", "to": ""}]),
            json!({"a": {"x": 1}}),
            json!({"x": 1}),
        ),
        // copy (values are copied: editing one copy leaves the other alone)
        (
            json!([{"op": "copy", "from": "/a", "to": "/b"}, {"op": "add", "path": "/b/x", "schema": true, "default": 2}]),
            json!({"a": {"x": 1}}),
            json!({"a": {"x": 1}, "b": {"x": 2}}),
        ),
        (
            json!([{"op": "copy", "from": "/a", "to": ""}]),
            json!({"a": [1]}),
            json!([1]),
        ),
        // add overwrites, on arrays too
        (
            json!([{"op": "add", "path": "/a", "schema": true, "default": null}]),
            json!({"a": 1}),
            json!({"a": null}),
        ),
        (
            json!([{"op": "add", "path": "/a/1", "schema": true, "default": 9}]),
            json!({"a": [1, 2]}),
            json!({"a": [1, 9]}),
        ),
        (
            json!([{"op": "add", "path": "", "schema": true, "default": {"z": 1}}]),
            json!({"a": 1}),
            json!({"z": 1}),
        ),
        // remove (array element is spliced; null exists)
        (
            json!([{"op": "remove", "path": "/a/0", "schema": true}]),
            json!({"a": [1, 2]}),
            json!({"a": [2]}),
        ),
        (
            json!([{"op": "remove", "path": "/a", "schema": true}]),
            json!({"a": null}),
            json!({}),
        ),
        // hoist
        (
            json!([{"op": "hoist", "host": "/h", "name": "n", "to": "/n", "removeFromHost": false}]),
            json!({"h": {"n": 1}}),
            json!({"h": {"n": 1}, "n": 1}),
        ),
        (
            json!([{"op": "hoist", "host": "/h", "name": "n", "to": "/h/m"}]),
            json!({"h": {"n": 1}}),
            json!({"h": {"m": 1}}),
        ),
        (
            json!([{"op": "hoist", "host": "/h", "name": "n", "to": "/h/n"}]),
            json!({"h": {"n": 1}}),
            json!({"h": {}}),
        ),
        (
            json!([{"op": "hoist", "host": "/h", "name": "n", "to": "/h"}]),
            json!({"h": {"n": 1}}),
            json!({"h": 1}),
        ),
        (
            json!([{"op": "hoist", "host": "", "name": "n", "to": "/m"}]),
            json!({"n": 1}),
            json!({"m": 1}),
        ),
        // plunge
        (
            json!([{"op": "plunge", "from": "/a", "host": "/x/y", "name": "a"}]),
            json!({"a": 1}),
            json!({"x": {"y": {"a": 1}}}),
        ),
        (
            json!([{"op": "plunge", "from": "/a", "host": "/h", "name": "a", "removeFromSource": false}]),
            json!({"a": 1, "h": {}}),
            json!({"a": 1, "h": {"a": 1}}),
        ),
        (
            json!([{"op": "plunge", "from": "/h/a", "host": "/h", "name": "b"}]),
            json!({"h": {"a": 1}}),
            json!({"h": {"b": 1}}),
        ),
        (
            json!([{"op": "plunge", "from": "/a", "host": "", "name": "b"}]),
            json!({"a": 1}),
            json!({"b": 1}),
        ),
        // wrap / head
        (
            json!([{"op": "wrap", "path": "/a", "mode": "singleton", "reverseMode": "first"}]),
            json!({"a": [1]}),
            json!({"a": [[1]]}),
        ),
        (
            json!([{"op": "wrap", "path": "", "mode": "singleton"}]),
            json!({"a": 1}),
            json!([{"a": 1}]),
        ),
        (
            json!([{"op": "head", "path": "/a", "reverseMode": "singleton"}]),
            json!({"a": [[1], 2]}),
            json!({"a": [1]}),
        ),
        (json!([{"op": "head", "path": ""}]), json!([3, 4]), json!(3)),
        // in / map: nested pointers are relative; nested root writes are discarded
        (
            json!([{"op": "in", "path": "/o", "ops": [{"op": "add", "path": "", "schema": true, "default": {}},
                                                       {"op": "add", "path": "/q", "schema": true, "default": 2}]}]),
            json!({"o": {"p": 1}}),
            json!({"o": {"p": 1}}),
        ),
        (
            json!([{"op": "in", "path": "/o", "ops": [{"op": "add", "path": "/q", "schema": true, "default": 2},
                                                       {"op": "wrap", "path": "", "mode": "singleton"}]}]),
            json!({"o": {}}),
            json!({"o": {"q": 2}}),
        ),
        (
            json!([{"op": "map", "path": "/a", "ops": [{"op": "convert", "path": "", "fromType": "integer", "toType": "string",
                                                        "forward": {"builtin": "int_to_string"}, "backward": {"builtin": "string_to_int"}}]}]),
            json!({"a": [1, 2]}),
            json!({"a": [1, 2]}),
        ),
        (
            json!([{"op": "map", "path": "/a", "ops": [{"op": "remove", "path": "/x", "schema": true}]}]),
            json!({"a": []}),
            json!({"a": []}),
        ),
        (
            json!([{"op": "in", "path": "", "ops": [{"op": "map", "path": "/a", "ops": [{"op": "in", "path": "/b", "ops": [
                {"op": "rename", "from": "/c", "to": "/d"}]}]}]}]),
            json!({"a": [{"b": {"c": 1}}, {"b": {"c": 2}}]}),
            json!({"a": [{"b": {"d": 1}}, {"b": {"d": 2}}]}),
        ),
    ];
    for (ops, input, want) in ok {
        assert_eq!(apply(ops.clone(), input).unwrap(), want, "{ops}");
    }
}

#[test]
fn runtime_errors() {
    let cases = [
        (
            json!([{"op": "rename", "from": "/a", "to": "/b"}]),
            json!({}),
            "rename missing source",
        ),
        (
            json!([{"op": "rename", "from": "/a", "to": "/x/y"}]),
            json!({"a": 1}),
            "missing parent",
        ),
        (
            json!([{"op": "rename", "from": "/a", "to": "/s/y"}]),
            json!({"a": 1, "s": "str"}),
            "invalid parent",
        ),
        (
            json!([{"op": "rename", "from": "/a", "to": "/l/5"}]),
            json!({"a": 1, "l": []}),
            "array index out of bounds",
        ),
        (
            json!([{"op": "rename", "from": "", "to": "/x"}]),
            json!({}),
            "cannot delete document root",
        ),
        (
            json!([{"op": "copy", "from": "/a", "to": "/b"}]),
            json!({"b": 1}),
            "copy missing source",
        ),
        (
            json!([{"op": "add", "path": "/x/y", "schema": true, "default": 1}]),
            json!({}),
            "missing parent",
        ),
        (
            json!([{"op": "add", "path": "/x", "schema": true}]),
            json!({}),
            "add missing default",
        ),
        (
            json!([{"op": "remove", "path": "/a", "schema": true}]),
            json!({}),
            "remove missing path",
        ),
        (
            json!([{"op": "remove", "path": "", "schema": true}]),
            json!({}),
            "cannot delete document root",
        ),
        (
            json!([{"op": "hoist", "host": "/h", "name": "n", "to": "/n"}]),
            json!({}),
            "hoist host missing or not object",
        ),
        (
            json!([{"op": "hoist", "host": "/h", "name": "n", "to": "/n"}]),
            json!({"h": [1]}),
            "hoist host missing or not object",
        ),
        (
            json!([{"op": "hoist", "host": "/h", "name": "n", "to": "/n"}]),
            json!({"h": null}),
            "hoist host missing or not object",
        ),
        (
            json!([{"op": "hoist", "host": "/h", "name": "n", "to": "/n"}]),
            json!({"h": {}}),
            "hoist missing name",
        ),
        (
            json!([{"op": "plunge", "from": "/a", "host": "/h", "name": "a"}]),
            json!({}),
            "plunge missing source",
        ),
        (
            json!([{"op": "plunge", "from": "/a", "host": "/h", "name": "a", "createHost": false}]),
            json!({"a": 1}),
            "plunge host missing",
        ),
        (
            json!([{"op": "plunge", "from": "/a", "host": "/h", "name": "a"}]),
            json!({"a": 1, "h": 3}),
            "plunge host not object",
        ),
        (
            json!([{"op": "plunge", "from": "/a", "host": "/s/h", "name": "a"}]),
            json!({"a": 1, "s": 3}),
            "invalid parent",
        ),
        (
            json!([{"op": "wrap", "path": "/a", "mode": "singleton"}]),
            json!({}),
            "wrap missing path",
        ),
        (
            json!([{"op": "head", "path": "/a"}]),
            json!({}),
            "head missing path",
        ),
        (
            json!([{"op": "head", "path": "/a"}]),
            json!({"a": []}),
            "head expects non-empty array",
        ),
        (
            json!([{"op": "head", "path": "/a"}]),
            json!({"a": "x"}),
            "head expects non-empty array",
        ),
        (
            json!([{"op": "in", "path": "/a", "ops": [{"op": "head", "path": "/x"}]}]),
            json!({}),
            "in missing path",
        ),
        (
            json!([{"op": "in", "path": "/a", "ops": [{"op": "head", "path": "/x"}]}]),
            json!({"a": [1]}),
            "in expects object",
        ),
        (
            json!([{"op": "in", "path": "/a", "ops": [{"op": "head", "path": "/x"}]}]),
            json!({"a": {}}),
            "head missing path",
        ),
        (
            json!([{"op": "map", "path": "/a", "ops": [{"op": "head", "path": "/x"}]}]),
            json!({}),
            "map missing path",
        ),
        (
            json!([{"op": "map", "path": "/a", "ops": [{"op": "head", "path": "/x"}]}]),
            json!({"a": {}}),
            "map expects array",
        ),
        (
            json!([{"op": "map", "path": "/a", "ops": [{"op": "rename", "from": "/x", "to": "/y"}]}]),
            json!({"a": [1]}),
            "rename missing source",
        ),
    ];
    for (ops, input, want) in cases {
        assert_eq!(apply(ops.clone(), input), Err(want.to_owned()), "{ops}");
    }
}

fn convert(from_type: &str, to_type: &str, forward: Value) -> Value {
    json!([{"op": "convert", "path": "/v", "fromType": from_type, "toType": to_type,
            "forward": forward, "backward": {"builtin": "lowercase"}}])
}

#[test]
fn convert_table() {
    type Case = (
        &'static str,
        &'static str,
        Value,
        Value,
        Result<Value, &'static str>,
    );
    let map = |m: Value| json!({"map": m});
    let cases: Vec<Case> = vec![
        // map keys are JS String(v)
        (
            "integer",
            "string",
            map(json!({"1": "one"})),
            json!(1),
            Ok(json!("one")),
        ),
        (
            "number",
            "string",
            map(json!({"1": "one"})),
            json!(1.0),
            Ok(json!("one")),
        ),
        (
            "number",
            "string",
            map(json!({"1.5": "x"})),
            json!(1.5),
            Ok(json!("x")),
        ),
        (
            "number",
            "string",
            map(json!({"1e+21": "big"})),
            json!(1e21),
            Ok(json!("big")),
        ),
        (
            "number",
            "string",
            map(json!({"0": "zero"})),
            json!(-0.0),
            Ok(json!("zero")),
        ),
        (
            "boolean",
            "integer",
            map(json!({"true": 1, "false": 0})),
            json!(true),
            Ok(json!(1)),
        ),
        (
            "null",
            "string",
            map(json!({"null": "nothing"})),
            json!(null),
            Ok(json!("nothing")),
        ),
        (
            "array",
            "string",
            map(json!({"1,2": "pair"})),
            json!([1, 2]),
            Ok(json!("pair")),
        ),
        (
            "object",
            "string",
            map(json!({"[object Object]": "obj"})),
            json!({"a": 1}),
            Ok(json!("obj")),
        ),
        (
            "string",
            "string",
            json!({"map": {}, "default": "d"}),
            json!("x"),
            Ok(json!("d")),
        ),
        (
            "string",
            "null",
            json!({"map": {}, "default": null}),
            json!("x"),
            Ok(json!(null)),
        ),
        (
            "string",
            "string",
            map(json!({})),
            json!("x"),
            Err("convert map missing key and default"),
        ),
        // type checks
        (
            "number",
            "integer",
            map(json!({"2": 2})),
            json!(2),
            Ok(json!(2)),
        ),
        (
            "integer",
            "string",
            map(json!({})),
            json!(1.5),
            Err("type mismatch: expected integer, got number"),
        ),
        (
            "string",
            "string",
            map(json!({"a": 1})),
            json!("a"),
            Err("type mismatch: expected string, got integer"),
        ),
        (
            "string",
            "number",
            map(json!({"a": 1.5})),
            json!("a"),
            Ok(json!(1.5)),
        ),
        (
            "object",
            "string",
            map(json!({})),
            json!(null),
            Err("type mismatch: expected object, got null"),
        ),
        // builtins
        (
            "string",
            "string",
            json!({"builtin": "lowercase"}),
            json!("ÀÉ ΣΑΣ"),
            Ok(json!("àé σας")),
        ),
        (
            "string",
            "string",
            json!({"builtin": "uppercase"}),
            json!("straße"),
            Ok(json!("STRASSE")),
        ),
        (
            "string",
            "integer",
            json!({"builtin": "string_to_int"}),
            json!(" 42px"),
            Ok(json!(42)),
        ),
        (
            "string",
            "integer",
            json!({"builtin": "string_to_int"}),
            json!("-0"),
            Ok(json!(0)),
        ),
        (
            "string",
            "integer",
            json!({"builtin": "string_to_int"}),
            json!("x1"),
            Err("builtin string_to_int invalid"),
        ),
        (
            "string",
            "integer",
            json!({"builtin": "string_to_int"}),
            json!("9".repeat(400)),
            Err("builtin string_to_int invalid"),
        ),
        (
            "integer",
            "string",
            json!({"builtin": "int_to_string"}),
            json!(12),
            Ok(json!("12")),
        ),
        (
            "number",
            "string",
            json!({"builtin": "int_to_string"}),
            json!(1e21),
            Ok(json!("1e+21")),
        ),
        (
            "number",
            "string",
            json!({"builtin": "int_to_string"}),
            json!(1.5),
            Err("builtin int_to_string expects integer"),
        ),
        (
            "string",
            "integer",
            json!({"builtin": "rfc3339_to_unix_millis"}),
            json!("2024-02-29T12:34:56.789Z"),
            Ok(json!(1_709_210_096_789_i64)),
        ),
        (
            "string",
            "number",
            json!({"builtin": "rfc3339_to_unix_millis"}),
            json!("2024-01-01T00:00:00+01:00"),
            Ok(json!(1_704_063_600_000_i64)),
        ),
        (
            "string",
            "integer",
            json!({"builtin": "rfc3339_to_unix_millis"}),
            json!("yesterday"),
            Err("builtin rfc3339_to_unix_millis invalid"),
        ),
        (
            "integer",
            "string",
            json!({"builtin": "unix_millis_to_rfc3339"}),
            json!(0),
            Ok(json!("1970-01-01T00:00:00.000Z")),
        ),
        (
            "number",
            "string",
            json!({"builtin": "unix_millis_to_rfc3339"}),
            json!(1.5),
            Ok(json!("1970-01-01T00:00:00.001Z")),
        ),
        (
            "integer",
            "string",
            json!({"builtin": "unix_millis_to_rfc3339"}),
            json!(9e15),
            Err("builtin unix_millis_to_rfc3339 out of range"),
        ),
        (
            "string",
            "string",
            json!({"builtin": "int_to_string"}),
            json!("1"),
            Err("builtin int_to_string expects integer"),
        ),
        (
            "integer",
            "string",
            json!({"builtin": "lowercase"}),
            json!(1),
            Err("builtin lowercase expects string"),
        ),
        (
            "integer",
            "string",
            json!({"builtin": "uppercase"}),
            json!(1),
            Err("builtin uppercase expects string"),
        ),
        (
            "integer",
            "integer",
            json!({"builtin": "string_to_int"}),
            json!(1),
            Err("builtin string_to_int expects string"),
        ),
        (
            "integer",
            "integer",
            json!({"builtin": "rfc3339_to_unix_millis"}),
            json!(1),
            Err("builtin rfc3339_to_unix_millis expects string"),
        ),
        (
            "string",
            "string",
            json!({"builtin": "unix_millis_to_rfc3339"}),
            json!("1"),
            Err("builtin unix_millis_to_rfc3339 expects number"),
        ),
        (
            "string",
            "string",
            json!({"builtin": "reverse"}),
            json!("abc"),
            Err("unknown builtin: reverse"),
        ),
    ];
    for (from, to, forward, input, want) in cases {
        let ops = convert(from, to, forward.clone());
        let got = apply(ops, json!({"v": input.clone()})).map(|d| d["v"].clone());
        assert_eq!(
            got,
            want.map_err(str::to_owned),
            "{from}->{to} {forward} on {input}"
        );
    }
    assert_eq!(
        apply(
            convert("string", "string", json!({"builtin": "lowercase"})),
            json!({})
        ),
        Err("convert missing path".to_owned())
    );
}

#[test]
fn key_order_is_kept() {
    let out = apply(
        json!([{"op": "rename", "from": "/b", "to": "/b2"}, {"op": "wrap", "path": "/a", "mode": "singleton"}]),
        json!({"a": 1, "b": 2, "c": 3}),
    )
    .unwrap();
    assert_eq!(
        serde_json::to_string(&out).unwrap(),
        r#"{"a":[1],"c":3,"b2":2}"#
    );
}

// ---------------------------------------------------------------------------------------
// Lens document validation
// ---------------------------------------------------------------------------------------

#[test]
fn accessors() {
    let lens = Lens::from_value(
        &json!({"apiVersion": "durable.lens/v1", "schema": "s", "from": 3, "to": 4.0,
        "description": "d", "ops": [{"op": "wrap", "path": "/a~1b", "mode": "singleton"}]}),
    )
    .unwrap();
    assert_eq!(
        (lens.schema(), lens.from(), lens.to(), lens.description()),
        ("s", 3, 4, Some("d"))
    );
    assert_eq!(
        lens.ops(),
        &[Op::Wrap {
            path: vec!["a/b".to_owned()]
        }]
    );
}

#[test]
fn lens_validation_errors() {
    let valid_op = json!({"op": "rename", "from": "/a", "to": "/b"});
    let with = |key: &str, value: Value| {
        let mut l = lens_with(json!([valid_op]));
        l[key] = value;
        l
    };
    let without = |key: &str| {
        let mut l = lens_with(json!([valid_op]));
        l.as_object_mut().unwrap().shift_remove(key);
        l
    };
    let op = |op: Value| lens_with(json!([op]));
    let cases: Vec<(Value, &str)> = vec![
        (json!([]), "data must be object"),
        (with("extra", json!(1)), "data must NOT have additional property 'extra'"),
        (without("apiVersion"), "data must have required property 'apiVersion'"),
        (without("ops"), "data must have required property 'ops'"),
        (with("apiVersion", json!("durable.lens/v2")), "data/apiVersion must be equal to constant \"durable.lens/v1\""),
        (with("apiVersion", json!(1)), "data/apiVersion must be string"),
        (with("schema", json!("")), "data/schema must NOT have fewer than 1 characters"),
        (with("schema", json!(null)), "data/schema must be string"),
        (with("from", json!(-1)), "data/from must be >= 0"),
        (with("from", json!(1.5)), "data/from must be integer"),
        (with("to", json!("2")), "data/to must be integer"),
        (with("description", json!(5)), "data/description must be string"),
        (with("ops", json!([])), "data/ops must NOT have fewer than 1 items"),
        (with("ops", json!({})), "data/ops must be array"),
        (op(json!("rename")), "data/ops/0 must be object"),
        (op(json!({"op": "move"})), "data/ops/0/op must be one of rename, copy, add, remove, hoist, plunge, wrap, head, convert, in, map"),
        (op(json!({"from": "/a"})), "data/ops/0/op must be one of rename, copy, add, remove, hoist, plunge, wrap, head, convert, in, map"),
        (op(json!({"op": "rename", "from": "/a"})), "data/ops/0 must have required property 'to'"),
        (op(json!({"op": "rename", "from": "/a", "to": "/b", "x": 1})), "data/ops/0 must NOT have additional property 'x'"),
        (op(json!({"op": "rename", "from": "a", "to": "/b"})), "data/ops/0/from must be a JSON pointer (RFC 6901), got \"a\""),
        (op(json!({"op": "copy", "from": "/a", "to": "/~2"})), "data/ops/0/to must be a JSON pointer (RFC 6901), got \"/~2\""),
        (op(json!({"op": "copy", "from": 1, "to": "/b"})), "data/ops/0/from must be string"),
        (op(json!({"op": "add", "path": "/a"})), "data/ops/0 must have required property 'schema'"),
        (op(json!({"op": "add", "path": "/a", "schema": 1})), "data/ops/0/schema must be a JSON Schema (object or boolean)"),
        (op(json!({"op": "remove", "path": "/a", "schema": "x"})), "data/ops/0/schema must be a JSON Schema (object or boolean)"),
        (op(json!({"op": "hoist", "host": "/h", "name": "", "to": "/n"})), "data/ops/0/name must NOT have fewer than 1 characters"),
        (op(json!({"op": "hoist", "host": "/h", "name": "n", "to": "/n", "removeFromHost": "no"})), "data/ops/0/removeFromHost must be boolean"),
        (op(json!({"op": "plunge", "from": "/a", "host": "/h", "name": "n", "createHost": 1})), "data/ops/0/createHost must be boolean"),
        (op(json!({"op": "plunge", "from": "/a", "host": "/h", "name": "n", "removeFromSource": null})), "data/ops/0/removeFromSource must be boolean"),
        (op(json!({"op": "wrap", "path": "/a"})), "data/ops/0 must have required property 'mode'"),
        (op(json!({"op": "wrap", "path": "/a", "mode": "pair"})), "data/ops/0/mode must be equal to one of the allowed values: singleton"),
        (op(json!({"op": "wrap", "path": "/a", "mode": "singleton", "reverseMode": "last"})), "data/ops/0/reverseMode must be equal to one of the allowed values: first"),
        (op(json!({"op": "head", "path": "/a", "reverseMode": "first"})), "data/ops/0/reverseMode must be equal to one of the allowed values: singleton"),
        (op(json!({"op": "head", "path": "/a", "mode": "singleton"})), "data/ops/0 must NOT have additional property 'mode'"),
        (
            op(json!({"op": "convert", "path": "/a", "fromType": "text", "toType": "string", "forward": {"builtin": "x"}, "backward": {"builtin": "x"}})),
            "data/ops/0/fromType must be one of string, number, integer, boolean, null, object, array",
        ),
        (
            op(json!({"op": "convert", "path": "/a", "fromType": "string", "toType": "string", "forward": {"builtin": "x"}})),
            "data/ops/0 must have required property 'backward'",
        ),
        (
            op(json!({"op": "convert", "path": "/a", "fromType": "string", "toType": "string", "forward": {"builtin": ""}, "backward": {"builtin": "x"}})),
            "data/ops/0/forward/builtin must NOT have fewer than 1 characters",
        ),
        (
            op(json!({"op": "convert", "path": "/a", "fromType": "string", "toType": "string", "forward": {"builtin": "x", "map": {}}, "backward": {"builtin": "x"}})),
            "data/ops/0/forward must be either {\"map\": {…}, \"default\"?} or {\"builtin\": name}",
        ),
        (
            op(json!({"op": "convert", "path": "/a", "fromType": "string", "toType": "string", "forward": {"builtin": "x"}, "backward": {}})),
            "data/ops/0/backward must be either {\"map\": {…}, \"default\"?} or {\"builtin\": name}",
        ),
        (
            op(json!({"op": "convert", "path": "/a", "fromType": "string", "toType": "string", "forward": {"map": {"a": [1]}}, "backward": {"builtin": "x"}})),
            "data/ops/0/forward/map/a must be a JSON scalar",
        ),
        (
            op(json!({"op": "convert", "path": "/a", "fromType": "string", "toType": "string", "forward": {"map": {}, "default": {}}, "backward": {"builtin": "x"}})),
            "data/ops/0/forward/default must be a JSON scalar",
        ),
        (
            op(json!({"op": "convert", "path": "/a", "fromType": "string", "toType": "string", "forward": {"map": {}, "other": 1}, "backward": {"builtin": "x"}})),
            "data/ops/0/forward must NOT have additional property 'other'",
        ),
        (
            op(json!({"op": "convert", "path": "/a", "fromType": "string", "toType": "string", "forward": {"map": []}, "backward": {"builtin": "x"}})),
            "data/ops/0/forward/map must be object",
        ),
        (op(json!({"op": "in", "path": "/a", "ops": []})), "data/ops/0/ops must NOT have fewer than 1 items"),
        (op(json!({"op": "map", "path": "/a"})), "data/ops/0 must have required property 'ops'"),
        (
            op(json!({"op": "in", "path": "/a", "ops": [{"op": "map", "path": "/b", "ops": [{"op": "wrap", "path": "/c"}]}]})),
            "data/ops/0/ops/0/ops/0 must have required property 'mode'",
        ),
    ];
    for (lens, want) in cases {
        assert_eq!(
            Lens::from_value(&lens),
            Err(format!("invalid lens: {want}")),
            "{lens}"
        );
    }
}

#[test]
fn lens_validation_accepts_every_optional_field() {
    let lens = lens_with(json!([
        {"op": "rename", "from": "", "to": "/~0~1"},
        {"op": "copy", "from": "/a", "to": "/b"},
        {"op": "add", "path": "/a", "schema": false, "default": [1]},
        {"op": "remove", "path": "/a", "schema": {}, "default": {"x": 1}},
        {"op": "hoist", "host": "/h", "name": "n", "to": "/n", "removeFromHost": false},
        {"op": "plunge", "from": "/a", "host": "/h", "name": "n", "createHost": false, "removeFromSource": true},
        {"op": "wrap", "path": "/a", "mode": "singleton", "reverseMode": "first"},
        {"op": "head", "path": "/a", "reverseMode": "singleton"},
        {"op": "convert", "path": "/a", "fromType": "null", "toType": "array",
         "forward": {"map": {"a": null, "b": 1.5, "c": true}, "default": "x"}, "backward": {"builtin": "any-name"}},
        {"op": "in", "path": "", "ops": [{"op": "map", "path": "/x", "ops": [{"op": "head", "path": ""}]}]}
    ]));
    let parsed = Lens::from_value(&lens).unwrap();
    assert_eq!(parsed.ops().len(), 10);
    assert!(matches!(
        &parsed.ops()[4],
        Op::Hoist {
            remove_from_host: false,
            ..
        }
    ));
    assert!(matches!(
        &parsed.ops()[5],
        Op::Plunge {
            create_host: false,
            remove_from_source: true,
            ..
        }
    ));
    // The defaults of the optional booleans are true.
    let defaults = compile(json!([
        {"op": "hoist", "host": "/h", "name": "n", "to": "/n"},
        {"op": "plunge", "from": "/a", "host": "/h", "name": "n"}
    ]));
    assert!(matches!(
        &defaults.ops()[0],
        Op::Hoist {
            remove_from_host: true,
            ..
        }
    ));
    assert!(matches!(
        &defaults.ops()[1],
        Op::Plunge {
            create_host: true,
            remove_from_source: true,
            ..
        }
    ));
}

// ---------------------------------------------------------------------------------------
// Proof: the original's schema_proof.test.ts
// ---------------------------------------------------------------------------------------

fn check(old: &Value, new: &Value, ops: Value) -> Result<(), String> {
    prove(&compile(ops), old, new)
}

fn closed(required: &[&str], properties: Value) -> Value {
    json!({"type": "object", "additionalProperties": false, "required": required, "properties": properties})
}

#[test]
fn original_proof_cases() {
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
    // rename + wrap passes; missing wrap is rejected
    let rename = json!({"op": "rename", "from": "/assignee", "to": "/assignees"});
    let wrap = json!({"op": "wrap", "path": "/assignees", "mode": "singleton"});
    assert_eq!(check(&v1, &v2, json!([rename, wrap])), Ok(()));
    assert_eq!(
        check(&v1, &v2, json!([rename])),
        Err("rename schema incompatible".to_owned())
    );
    // add default checked against enum
    let add = |d: &str| json!([{"op": "add", "path": "/status", "schema": {"type": "string"}, "default": d}]);
    assert_eq!(check(&v2, &v3, add("todo")), Ok(()));
    assert_eq!(
        check(&v2, &v3, add("oops")),
        Err("add default invalid".to_owned())
    );

    // hoist passes
    let h1 = closed(
        &["id", "meta"],
        json!({"id": {"type": "integer"}, "meta": {"type": "object", "additionalProperties": false,
               "required": ["owner"], "properties": {"owner": {"type": "string"}}}}),
    );
    let h2 = closed(
        &["id", "meta", "owner"],
        json!({"id": {"type": "integer"}, "owner": {"type": "string"},
               "meta": {"type": "object", "additionalProperties": false, "properties": {}}}),
    );
    assert_eq!(
        check(
            &h1,
            &h2,
            json!([{"op": "hoist", "host": "/meta", "name": "owner", "to": "/owner"}])
        ),
        Ok(())
    );

    // plunge createHost passes
    let p1 = closed(
        &["id"],
        json!({"id": {"type": "integer"}, "meta": {"type": "object", "additionalProperties": false}}),
    );
    let p2 = closed(
        &["meta"],
        json!({"meta": {"type": "object", "additionalProperties": false, "required": ["id"],
               "properties": {"id": {"type": "integer"}}}}),
    );
    let plunge =
        json!([{"op": "plunge", "from": "/id", "host": "/meta", "name": "id", "createHost": true}]);
    assert_eq!(check(&p1, &p2, plunge), Ok(()));

    // head passes and rejects missing minItems
    let l1 = closed(
        &["labels"],
        json!({"labels": {"type": "array", "items": {"type": "string"}, "minItems": 1}}),
    );
    let l2 = closed(&["labels"], json!({"labels": {"type": "string"}}));
    let bad_l1 = closed(
        &["labels"],
        json!({"labels": {"type": "array", "items": {"type": "string"}}}),
    );
    let head = json!([{"op": "head", "path": "/labels"}]);
    assert_eq!(check(&l1, &l2, head.clone()), Ok(()));
    assert_eq!(
        check(&bad_l1, &l2, head),
        Err("head requires minItems".to_owned())
    );

    // convert cases
    let one = |name: &str, schema: Value| closed(&[name], json!({name: schema}));
    let conv = |path: &str, from: &str, to: &str, forward: Value| {
        json!([{"op": "convert", "path": path, "fromType": from, "toType": to, "forward": forward,
                "backward": {"builtin": "uppercase"}}])
    };
    let string = json!({"type": "string"});
    let cases = [
        (
            "builtin_total",
            one("name", string.clone()),
            one("name", string.clone()),
            conv("/name", "string", "string", json!({"builtin": "lowercase"})),
            Ok(()),
        ),
        (
            "builtin_non_total_rejected",
            one("code", string.clone()),
            one("code", json!({"type": "integer"})),
            conv(
                "/code",
                "string",
                "integer",
                json!({"builtin": "string_to_int"}),
            ),
            Err("schema must be enum/const for non-total transform"),
        ),
        (
            "builtin_enum_ok",
            one("code", json!({"type": "string", "enum": ["1", "2"]})),
            one("code", json!({"type": "integer"})),
            conv(
                "/code",
                "string",
                "integer",
                json!({"builtin": "string_to_int"}),
            ),
            Ok(()),
        ),
        (
            "map_default_ok",
            one("status", string.clone()),
            one("status", string.clone()),
            conv(
                "/status",
                "string",
                "string",
                json!({"map": {"A": "active", "B": "blocked"}, "default": "unknown"}),
            ),
            Ok(()),
        ),
        (
            "map_no_default_rejected",
            one("status", string.clone()),
            one("status", string.clone()),
            conv(
                "/status",
                "string",
                "string",
                json!({"map": {"A": "active", "B": "blocked"}}),
            ),
            Err("schema must be enum/const for non-total transform"),
        ),
    ];
    for (name, old, new, ops, want) in cases {
        assert_eq!(
            check(&old, &new, ops),
            want.map_err(str::to_owned),
            "{name}"
        );
    }

    // in + rename/add passes
    let i1 = closed(
        &["profile"],
        json!({"profile": closed(&["name"], json!({"name": {"type": "string"}}))}),
    );
    let i2 = closed(
        &["profile"],
        json!({"profile": closed(&["full_name", "age"], json!({"full_name": {"type": "string"}, "age": {"type": "integer"}}))}),
    );
    let in_ops = json!([{"op": "in", "path": "/profile", "ops": [
        {"op": "rename", "from": "/name", "to": "/full_name"},
        {"op": "add", "path": "/age", "schema": {"type": "integer"}, "default": 0}
    ]}]);
    assert_eq!(check(&i1, &i2, in_ops), Ok(()));

    // map + convert items passes
    let item =
        |t: &str| json!({"type": "array", "items": closed(&["id"], json!({"id": {"type": t}}))});
    let m1 = closed(&["items"], json!({"items": item("integer")}));
    let m2 = closed(&["items"], json!({"items": item("string")}));
    let map_ops = json!([{"op": "map", "path": "/items", "ops": [{"op": "convert", "path": "/id", "fromType": "integer",
        "toType": "string", "forward": {"builtin": "int_to_string"}, "backward": {"builtin": "string_to_int"}}]}]);
    assert_eq!(check(&m1, &m2, map_ops), Ok(()));

    // add to open object passes
    let o1 = json!({"type": "object", "additionalProperties": true, "required": ["id"], "properties": {"id": {"type": "integer"}}});
    let o2 = json!({"type": "object", "additionalProperties": true, "required": ["id", "status"],
                    "properties": {"id": {"type": "integer"}, "status": {"type": "string"}}});
    let add_new =
        json!([{"op": "add", "path": "/status", "schema": {"type": "string"}, "default": "new"}]);
    assert_eq!(check(&o1, &o2, add_new), Ok(()));

    // rename overrides existing property passes
    let r1 = closed(
        &["a", "x"],
        json!({"a": {"type": "integer"}, "x": {"type": "string"}}),
    );
    let r2 = closed(&["x"], json!({"x": {"type": "integer"}}));
    assert_eq!(
        check(
            &r1,
            &r2,
            json!([{"op": "rename", "from": "/a", "to": "/x"}])
        ),
        Ok(())
    );
}

// ---------------------------------------------------------------------------------------
// Proof: every rule
// ---------------------------------------------------------------------------------------

#[test]
fn proof_rules() {
    let s = json!({"type": "string"});
    let i = json!({"type": "integer"});
    let obj = |req: &[&str], props: Value| closed(req, props);
    let open =
        json!({"type": "object", "required": ["a"], "properties": {"a": {"type": "string"}}});
    type Case = (&'static str, Value, Value, Value, Result<(), &'static str>);
    let cases: Vec<Case> = vec![
        // rename
        (
            "rename optional source",
            obj(&[], json!({"a": s})),
            obj(&["b"], json!({"b": s})),
            json!([{"op": "rename", "from": "/a", "to": "/b"}]),
            Err("rename source not required"),
        ),
        (
            "rename implicit source in open schema",
            json!({"type": "object", "required": ["a"]}),
            obj(&[], json!({"b": s})),
            json!([{"op": "rename", "from": "/a", "to": "/b"}]),
            Ok(()),
        ),
        (
            "rename dest missing",
            obj(&["a"], json!({"a": s})),
            obj(&[], json!({"c": s})),
            json!([{"op": "rename", "from": "/a", "to": "/b"}]),
            Err("rename dest missing in new schema"),
        ),
        (
            "rename dest implicit in open schema",
            obj(&["a"], json!({"a": s})),
            json!({"type": "object"}),
            json!([{"op": "rename", "from": "/a", "to": "/b"}]),
            Ok(()),
        ),
        (
            "rename parent optional",
            obj(&["a"], json!({"a": s, "n": {"type": "object"}})),
            json!({"type": "object"}),
            json!([{"op": "rename", "from": "/a", "to": "/n/b"}]),
            Err("parent path not required"),
        ),
        (
            "rename parent not object",
            obj(&["a", "n"], json!({"a": s, "n": s})),
            json!({"type": "object"}),
            json!([{"op": "rename", "from": "/a", "to": "/n/b"}]),
            Err("parent path not object"),
        ),
        (
            "rename incompatible",
            obj(&["a"], json!({"a": s})),
            obj(&[], json!({"b": i})),
            json!([{"op": "rename", "from": "/a", "to": "/b"}]),
            Err("rename schema incompatible"),
        ),
        (
            "rename integer into number",
            obj(&["a"], json!({"a": i})),
            obj(&[], json!({"b": {"type": "number"}})),
            json!([{"op": "rename", "from": "/a", "to": "/b"}]),
            Ok(()),
        ),
        (
            "rename number into integer",
            obj(&["a"], json!({"a": {"type": "number"}})),
            obj(&[], json!({"b": i})),
            json!([{"op": "rename", "from": "/a", "to": "/b"}]),
            Err("rename schema incompatible"),
        ),
        (
            "rename const into enum",
            obj(&["a"], json!({"a": {"const": "x"}})),
            obj(&[], json!({"b": {"enum": ["x", "y"]}})),
            json!([{"op": "rename", "from": "/a", "to": "/b"}]),
            Ok(()),
        ),
        (
            "rename enum outside enum",
            obj(&["a"], json!({"a": {"enum": ["x", "z"]}})),
            obj(&[], json!({"b": {"enum": ["x", "y"]}})),
            json!([{"op": "rename", "from": "/a", "to": "/b"}]),
            Err("rename schema incompatible"),
        ),
        (
            "rename broad into enum",
            obj(&["a"], json!({"a": {}})),
            obj(&[], json!({"b": {"enum": ["x"]}})),
            json!([{"op": "rename", "from": "/a", "to": "/b"}]),
            Err("rename schema incompatible"),
        ),
        (
            "rename into false",
            obj(&["a"], json!({"a": s})),
            obj(&[], json!({"b": false})),
            json!([{"op": "rename", "from": "/a", "to": "/b"}]),
            Err("rename schema incompatible"),
        ),
        (
            "rename wrap items incompatible",
            obj(&["a"], json!({"a": s})),
            obj(&[], json!({"b": {"type": "array", "items": i}})),
            json!([{"op": "rename", "from": "/a", "to": "/b"}, {"op": "wrap", "path": "/b", "mode": "singleton"}]),
            Err("rename schema incompatible"),
        ),
        // copy
        (
            "copy ok",
            obj(&["a"], json!({"a": s})),
            obj(&["a", "b"], json!({"a": s, "b": s})),
            json!([{"op": "copy", "from": "/a", "to": "/b"}]),
            Ok(()),
        ),
        (
            "copy optional",
            obj(&[], json!({"a": s})),
            obj(&[], json!({"b": s})),
            json!([{"op": "copy", "from": "/a", "to": "/b"}]),
            Err("copy source not required"),
        ),
        (
            "copy dest missing",
            obj(&["a"], json!({"a": s})),
            obj(&[], json!({"a": s})),
            json!([{"op": "copy", "from": "/a", "to": "/b"}]),
            Err("copy dest missing in new schema"),
        ),
        (
            "copy incompatible",
            obj(&["a"], json!({"a": s})),
            obj(&[], json!({"b": i})),
            json!([{"op": "copy", "from": "/a", "to": "/b"}]),
            Err("copy schema incompatible"),
        ),
        (
            "copy has no wrap exception",
            obj(&["a"], json!({"a": s})),
            obj(&[], json!({"b": {"type": "array", "items": s}})),
            json!([{"op": "copy", "from": "/a", "to": "/b"}, {"op": "wrap", "path": "/b", "mode": "singleton"}]),
            Err("copy schema incompatible"),
        ),
        // add
        (
            "add implicit dest",
            obj(&[], json!({})),
            open.clone(),
            json!([{"op": "add", "path": "/z", "schema": s, "default": "x"}]),
            Err("add dest missing in new schema"),
        ),
        (
            "add derived object default",
            obj(&[], json!({})),
            obj(&[], json!({"b": {"type": "object"}})),
            json!([{"op": "add", "path": "/b", "schema": {"type": "object"}}]),
            Ok(()),
        ),
        (
            "add derived schema default",
            obj(&[], json!({})),
            obj(&[], json!({"b": {"type": "string", "default": "d"}})),
            json!([{"op": "add", "path": "/b", "schema": s}]),
            Ok(()),
        ),
        (
            "add no derivable default",
            obj(&[], json!({})),
            obj(&[], json!({"b": s})),
            json!([{"op": "add", "path": "/b", "schema": s}]),
            Err("add missing default"),
        ),
        (
            "add null default counts as absent",
            obj(&[], json!({})),
            obj(&[], json!({"b": {"type": "null"}})),
            json!([{"op": "add", "path": "/b", "schema": s, "default": null}]),
            Err("add missing default"),
        ),
        (
            "add default wrong type",
            obj(&[], json!({})),
            obj(&[], json!({"b": i})),
            json!([{"op": "add", "path": "/b", "schema": i, "default": 1.5}]),
            Err("add default invalid"),
        ),
        (
            "add const default compares JSON text",
            obj(&[], json!({})),
            obj(&[], json!({"b": {"const": {"x": 1, "y": 2}}})),
            json!([{"op": "add", "path": "/b", "schema": true, "default": {"y": 2, "x": 1}}]),
            Err("add default invalid"),
        ),
        (
            "add parent must be explicit",
            json!({"type": "object"}),
            json!({"type": "object", "properties": {"n": {"type": "object", "properties": {"b": s}}}}),
            json!([{"op": "add", "path": "/n/b", "schema": s, "default": "x"}]),
            Err("parent path not required"),
        ),
        // remove
        (
            "remove ok",
            obj(&["a"], json!({"a": s})),
            obj(&[], json!({})),
            json!([{"op": "remove", "path": "/a", "schema": s}]),
            Ok(()),
        ),
        (
            "remove optional",
            obj(&[], json!({"a": s})),
            obj(&[], json!({})),
            json!([{"op": "remove", "path": "/a", "schema": s}]),
            Err("remove path not required"),
        ),
        (
            "remove implicit",
            open.clone(),
            obj(&[], json!({})),
            json!([{"op": "remove", "path": "/z", "schema": s}]),
            Err("remove path not required"),
        ),
        (
            "remove still required",
            obj(&["a"], json!({"a": s})),
            json!({"type": "object", "required": ["a"]}),
            json!([{"op": "remove", "path": "/a", "schema": s}]),
            Err("remove path still required in new schema"),
        ),
        // hoist
        (
            "hoist host optional",
            obj(&[], json!({"h": obj(&["n"], json!({"n": s}))})),
            obj(&["n"], json!({"n": s})),
            json!([{"op": "hoist", "host": "/h", "name": "n", "to": "/n"}]),
            Err("hoist host invalid"),
        ),
        (
            "hoist host not object",
            obj(&["h"], json!({"h": s})),
            obj(&["n"], json!({"n": s})),
            json!([{"op": "hoist", "host": "/h", "name": "n", "to": "/n"}]),
            Err("hoist host invalid"),
        ),
        (
            "hoist name optional",
            obj(&["h"], json!({"h": obj(&[], json!({"n": s}))})),
            obj(&["n"], json!({"n": s})),
            json!([{"op": "hoist", "host": "/h", "name": "n", "to": "/n"}]),
            Err("hoist name missing/optional"),
        ),
        (
            "hoist dest missing",
            obj(&["h"], json!({"h": obj(&["n"], json!({"n": s}))})),
            obj(&[], json!({"h": true})),
            json!([{"op": "hoist", "host": "/h", "name": "n", "to": "/n"}]),
            Err("hoist dest missing in new schema"),
        ),
        (
            "hoist incompatible",
            obj(&["h"], json!({"h": obj(&["n"], json!({"n": s}))})),
            obj(&[], json!({"n": i})),
            json!([{"op": "hoist", "host": "/h", "name": "n", "to": "/n"}]),
            Err("hoist schema incompatible"),
        ),
        (
            "hoist removed field still required",
            obj(&["h"], json!({"h": obj(&["n"], json!({"n": s}))})),
            obj(
                &["h", "n"],
                json!({"n": s, "h": obj(&["n"], json!({"n": s}))}),
            ),
            json!([{"op": "hoist", "host": "/h", "name": "n", "to": "/n"}]),
            Err("hoist removed field still required"),
        ),
        (
            "hoist kept field may stay required",
            obj(&["h"], json!({"h": obj(&["n"], json!({"n": s}))})),
            obj(
                &["h", "n"],
                json!({"n": s, "h": obj(&["n"], json!({"n": s}))}),
            ),
            json!([{"op": "hoist", "host": "/h", "name": "n", "to": "/n", "removeFromHost": false}]),
            Ok(()),
        ),
        // plunge
        (
            "plunge source optional",
            obj(&[], json!({"a": s})),
            obj(&["h"], json!({"h": obj(&[], json!({"a": s}))})),
            json!([{"op": "plunge", "from": "/a", "host": "/h", "name": "a"}]),
            Err("plunge source not required"),
        ),
        (
            "plunge without createHost needs host",
            obj(&["a"], json!({"a": s})),
            obj(&["h"], json!({"h": obj(&[], json!({"a": s}))})),
            json!([{"op": "plunge", "from": "/a", "host": "/h", "name": "a", "createHost": false}]),
            Err("plunge host invalid"),
        ),
        (
            "plunge without createHost, host present",
            obj(&["a", "h"], json!({"a": s, "h": {"type": "object"}})),
            obj(&["h"], json!({"h": obj(&[], json!({"a": s}))})),
            json!([{"op": "plunge", "from": "/a", "host": "/h", "name": "a", "createHost": false}]),
            Ok(()),
        ),
        (
            "plunge createHost parent optional",
            obj(&["a"], json!({"a": s, "p": {"type": "object"}})),
            obj(
                &[],
                json!({"p": obj(&[], json!({"h": obj(&[], json!({"a": s}))}))}),
            ),
            json!([{"op": "plunge", "from": "/a", "host": "/p/h", "name": "a"}]),
            Err("parent path not required"),
        ),
        (
            "plunge host missing in new",
            obj(&["a"], json!({"a": s})),
            obj(&[], json!({"h": s})),
            json!([{"op": "plunge", "from": "/a", "host": "/h", "name": "a"}]),
            Err("plunge host missing in new schema"),
        ),
        (
            "plunge name missing in new",
            obj(&["a"], json!({"a": s})),
            obj(&[], json!({"h": obj(&[], json!({}))})),
            json!([{"op": "plunge", "from": "/a", "host": "/h", "name": "a"}]),
            Err("plunge name missing in new schema"),
        ),
        (
            "plunge incompatible",
            obj(&["a"], json!({"a": s})),
            obj(&[], json!({"h": obj(&[], json!({"a": i}))})),
            json!([{"op": "plunge", "from": "/a", "host": "/h", "name": "a"}]),
            Err("plunge schema incompatible"),
        ),
        (
            "plunge removed field still required",
            obj(&["a"], json!({"a": s})),
            obj(&["a"], json!({"a": s, "h": obj(&[], json!({"a": s}))})),
            json!([{"op": "plunge", "from": "/a", "host": "/h", "name": "a"}]),
            Err("plunge removed field still required"),
        ),
        // wrap
        (
            "wrap ok",
            obj(&["a"], json!({"a": s})),
            obj(&["a"], json!({"a": {"type": "array", "items": s}})),
            json!([{"op": "wrap", "path": "/a", "mode": "singleton"}]),
            Ok(()),
        ),
        (
            "wrap optional",
            obj(&[], json!({"a": s})),
            obj(&["a"], json!({"a": {"type": "array", "items": s}})),
            json!([{"op": "wrap", "path": "/a", "mode": "singleton"}]),
            Err("wrap path not required"),
        ),
        (
            "wrap dest not array",
            obj(&["a"], json!({"a": s})),
            obj(&["a"], json!({"a": s})),
            json!([{"op": "wrap", "path": "/a", "mode": "singleton"}]),
            Err("wrap dest not array"),
        ),
        (
            "wrap items incompatible",
            obj(&["a"], json!({"a": s})),
            obj(&["a"], json!({"a": {"type": "array", "items": i}})),
            json!([{"op": "wrap", "path": "/a", "mode": "singleton"}]),
            Err("wrap items incompatible"),
        ),
        // head
        (
            "head enum of non-empty arrays",
            obj(
                &["a"],
                json!({"a": {"type": "array", "enum": [["x"], ["y", "z"]]}}),
            ),
            obj(&["a"], json!({"a": s})),
            json!([{"op": "head", "path": "/a"}]),
            Ok(()),
        ),
        (
            "head enum with empty array",
            obj(&["a"], json!({"a": {"type": "array", "enum": [["x"], []]}})),
            obj(&["a"], json!({"a": s})),
            json!([{"op": "head", "path": "/a"}]),
            Err("head requires enum non-empty"),
        ),
        (
            "head enum with minItems 0",
            obj(
                &["a"],
                json!({"a": {"type": "array", "enum": [["x"]], "minItems": 0}}),
            ),
            obj(&["a"], json!({"a": s})),
            json!([{"op": "head", "path": "/a"}]),
            Err("head requires non-empty array"),
        ),
        (
            "head minItems 0",
            obj(&["a"], json!({"a": {"type": "array", "minItems": 0}})),
            obj(&["a"], json!({"a": s})),
            json!([{"op": "head", "path": "/a"}]),
            Err("head requires minItems"),
        ),
        (
            "head not array",
            obj(&["a"], json!({"a": s})),
            obj(&["a"], json!({"a": s})),
            json!([{"op": "head", "path": "/a"}]),
            Err("head path not required array"),
        ),
        (
            "head dest missing",
            obj(&["a"], json!({"a": {"type": "array", "minItems": 1}})),
            obj(&[], json!({})),
            json!([{"op": "head", "path": "/a"}]),
            Err("head dest missing"),
        ),
        (
            "head incompatible",
            obj(
                &["a"],
                json!({"a": {"type": "array", "minItems": 1, "items": s}}),
            ),
            obj(&["a"], json!({"a": i})),
            json!([{"op": "head", "path": "/a"}]),
            Err("head schema incompatible"),
        ),
        // convert
        (
            "convert optional",
            obj(&[], json!({"a": s})),
            obj(&["a"], json!({"a": s})),
            json!([{"op": "convert", "path": "/a", "fromType": "string", "toType": "string", "forward": {"builtin": "lowercase"},
                 "backward": {"builtin": "lowercase"}}]),
            Err("convert path not required"),
        ),
        (
            "convert falsy map default is not total",
            obj(&["a"], json!({"a": s})),
            obj(&["a"], json!({"a": s})),
            json!([{"op": "convert", "path": "/a", "fromType": "string", "toType": "string", "forward": {"map": {}, "default": ""},
                 "backward": {"builtin": "lowercase"}}]),
            Err("schema must be enum/const for non-total transform"),
        ),
        (
            "convert map on enum",
            obj(&["a"], json!({"a": {"enum": ["x"]}})),
            obj(&["a"], json!({"a": i})),
            json!([{"op": "convert", "path": "/a", "fromType": "string", "toType": "integer", "forward": {"map": {"x": 1}},
                 "backward": {"builtin": "lowercase"}}]),
            Ok(()),
        ),
        (
            "convert rfc3339 needs const",
            obj(
                &["a"],
                json!({"a": {"type": "string", "format": "date-time"}}),
            ),
            obj(&["a"], json!({"a": i})),
            json!([{"op": "convert", "path": "/a", "fromType": "string", "toType": "integer", "forward": {"builtin": "rfc3339_to_unix_millis"},
                 "backward": {"builtin": "unix_millis_to_rfc3339"}}]),
            Err("schema must be enum/const for non-total transform"),
        ),
        (
            "convert unknown builtin passes install",
            obj(&["a"], json!({"a": s})),
            obj(&["a"], json!({"a": s})),
            json!([{"op": "convert", "path": "/a", "fromType": "string", "toType": "string", "forward": {"builtin": "nope"},
                 "backward": {"builtin": "nope"}}]),
            Ok(()),
        ),
        (
            "convert dest missing",
            obj(&["a"], json!({"a": s})),
            obj(&[], json!({})),
            json!([{"op": "convert", "path": "/a", "fromType": "string", "toType": "string", "forward": {"builtin": "lowercase"},
                 "backward": {"builtin": "lowercase"}}]),
            Err("convert dest missing"),
        ),
        (
            "convert dest incompatible",
            obj(&["a"], json!({"a": s})),
            obj(&["a"], json!({"a": i})),
            json!([{"op": "convert", "path": "/a", "fromType": "string", "toType": "string", "forward": {"builtin": "lowercase"},
                 "backward": {"builtin": "lowercase"}}]),
            Err("convert dest incompatible"),
        ),
        // in / map
        (
            "in optional",
            obj(&[], json!({"o": {"type": "object"}})),
            obj(&[], json!({"o": {"type": "object"}})),
            json!([{"op": "in", "path": "/o", "ops": [{"op": "head", "path": "/x"}]}]),
            Err("in path invalid"),
        ),
        (
            "in dest not object",
            obj(&["o"], json!({"o": {"type": "object"}})),
            obj(&[], json!({"o": s})),
            json!([{"op": "in", "path": "/o", "ops": [{"op": "head", "path": "/x"}]}]),
            Err("in dest invalid"),
        ),
        (
            "in nested failure",
            obj(&["o"], json!({"o": obj(&[], json!({"x": s}))})),
            obj(&[], json!({"o": {"type": "object"}})),
            json!([{"op": "in", "path": "/o", "ops": [{"op": "remove", "path": "/x", "schema": s}]}]),
            Err("remove path not required"),
        ),
        (
            "map optional",
            obj(&[], json!({"l": {"type": "array"}})),
            obj(&[], json!({"l": {"type": "array"}})),
            json!([{"op": "map", "path": "/l", "ops": [{"op": "head", "path": "/x"}]}]),
            Err("map path invalid"),
        ),
        (
            "map dest not array",
            obj(&["l"], json!({"l": {"type": "array"}})),
            obj(&[], json!({"l": s})),
            json!([{"op": "map", "path": "/l", "ops": [{"op": "head", "path": "/x"}]}]),
            Err("map dest invalid"),
        ),
        (
            "map without items",
            obj(&["l"], json!({"l": {"type": "array"}})),
            obj(&[], json!({"l": {"type": "array"}})),
            json!([{"op": "map", "path": "/l", "ops": [{"op": "rename", "from": "/x", "to": "/y"}]}]),
            Err("rename source not required"),
        ),
        // array index segments step into items
        (
            "path through items",
            obj(
                &["l"],
                json!({"l": {"type": "array", "items": obj(&["x"], json!({"x": s}))}}),
            ),
            obj(
                &["l"],
                json!({"l": {"type": "array", "items": obj(&["x"], json!({"x": {"type": "array", "items": s}}))}}),
            ),
            json!([{"op": "wrap", "path": "/l/0/x", "mode": "singleton"}]),
            Ok(()),
        ),
        (
            "index into non-array",
            obj(&["l"], json!({"l": s})),
            obj(&["l"], json!({"l": s})),
            json!([{"op": "remove", "path": "/l/0", "schema": s}]),
            Err("remove path not required"),
        ),
    ];
    for (name, old, new, ops, want) in cases {
        assert_eq!(
            check(&old, &new, ops),
            want.map_err(str::to_owned),
            "{name}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Default filling
// ---------------------------------------------------------------------------------------

#[test]
fn fill_defaults_table() {
    let new = json!({"type": "object", "required": ["a", "b"], "properties": {
        "a": {"type": "object"}, "b": {"type": "array"}, "c": {"type": "string", "default": "dflt"}, "s": {"type": "string"},
        "o": {"type": "object", "properties": {"x": {"type": ["array", "null"]}}},
        "l": {"type": "array", "items": {"type": "object", "properties": {"y": {"type": "object"}}}}
    }});
    let filled = fill_defaults(
        &lens_with(json!([
            {"op": "add", "path": "/a", "schema": {"type": "object"}},
            {"op": "add", "path": "/b", "schema": true},
            {"op": "add", "path": "/c", "schema": true},
            {"op": "add", "path": "/s", "schema": true, "default": null},
            {"op": "in", "path": "/o", "ops": [{"op": "add", "path": "/x", "schema": true}]},
            {"op": "map", "path": "/l", "ops": [{"op": "add", "path": "/y", "schema": true}]}
        ])),
        &new,
    )
    .unwrap();
    assert_eq!(
        serde_json::to_string(&filled["ops"]).unwrap(),
        concat!(
            r#"[{"op":"add","path":"/a","schema":{"type":"object"},"default":{}},"#,
            r#"{"op":"add","path":"/b","schema":true,"default":[]},"#,
            r#"{"op":"add","path":"/c","schema":true,"default":"dflt"},"#,
            r#"{"op":"add","path":"/s","schema":true,"default":null},"#,
            r#"{"op":"in","path":"/o","ops":[{"op":"add","path":"/x","schema":true,"default":[]}]},"#,
            r#"{"op":"map","path":"/l","ops":[{"op":"add","path":"/y","schema":true,"default":{}}]}]"#
        )
    );
    let errors = [
        (
            json!([{"op": "add", "path": "/z", "schema": true}]),
            "add dest missing in new schema",
        ),
        (
            json!([{"op": "add", "path": "/s", "schema": true}]),
            "add missing default",
        ),
        (
            json!([{"op": "in", "path": "/z", "ops": [{"op": "head", "path": ""}]}]),
            "in dest missing in new schema",
        ),
        (
            json!([{"op": "map", "path": "/z", "ops": [{"op": "head", "path": ""}]}]),
            "map dest missing in new schema",
        ),
    ];
    for (ops, want) in errors {
        assert_eq!(
            fill_defaults(&lens_with(ops.clone()), &new),
            Err(want.to_owned()),
            "{ops}"
        );
    }
    assert!(fill_defaults(&json!({}), &new)
        .unwrap_err()
        .starts_with("invalid lens: "));
}

// ---------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(Value::from),
        (-1e6f64..1e6).prop_map(Value::from),
        "[a-z0-9 ]{0,6}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(("[abc0-2]", inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn arb_pointer() -> impl Strategy<Value = String> {
    prop::collection::vec("[abc0-2]", 0..3).prop_map(|s| pointer::format(&s))
}

fn arb_op() -> impl Strategy<Value = Value> {
    let p = arb_pointer;
    let transform = prop_oneof![
        prop::sample::select(vec![
            "lowercase",
            "uppercase",
            "string_to_int",
            "int_to_string",
            "rfc3339_to_unix_millis",
            "unix_millis_to_rfc3339",
            "other"
        ])
        .prop_map(|b| json!({"builtin": b})),
        Just(json!({"map": {"1": "one", "a": 2, "null": null}, "default": 0})),
        Just(json!({"map": {"true": false}})),
    ];
    let types = prop::sample::select(vec![
        "string", "number", "integer", "boolean", "null", "object", "array",
    ]);
    let simple = prop_oneof![
        (p(), p()).prop_map(|(f, t)| json!({"op": "rename", "from": f, "to": t})),
        (p(), p()).prop_map(|(f, t)| json!({"op": "copy", "from": f, "to": t})),
        (p(), arb_json()).prop_map(|(x, d)| json!({"op": "add", "path": x, "schema": true, "default": d})),
        p().prop_map(|x| json!({"op": "remove", "path": x, "schema": true})),
        (p(), "[abc0-2]", p(), any::<bool>())
            .prop_map(|(h, n, t, r)| json!({"op": "hoist", "host": h, "name": n, "to": t, "removeFromHost": r})),
        (p(), p(), "[abc0-2]", any::<bool>(), any::<bool>()).prop_map(|(f, h, n, c, r)| {
            json!({"op": "plunge", "from": f, "host": h, "name": n, "createHost": c, "removeFromSource": r})
        }),
        p().prop_map(|x| json!({"op": "wrap", "path": x, "mode": "singleton"})),
        p().prop_map(|x| json!({"op": "head", "path": x})),
        (p(), types.clone(), types, transform).prop_map(|(x, f, t, fw)| {
            json!({"op": "convert", "path": x, "fromType": f, "toType": t, "forward": fw, "backward": {"builtin": "x"}})
        }),
    ];
    simple.prop_recursive(2, 12, 3, |inner| {
        prop_oneof![
            (arb_pointer(), prop::collection::vec(inner.clone(), 1..3))
                .prop_map(|(x, ops)| json!({"op": "in", "path": x, "ops": ops})),
            (arb_pointer(), prop::collection::vec(inner, 1..3))
                .prop_map(|(x, ops)| json!({"op": "map", "path": x, "ops": ops})),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any valid lens on any document returns a value or an error, never panics; and the
    /// proof and default filling never panic on arbitrary schemas either.
    #[test]
    fn apply_and_prove_never_panic(
        ops in prop::collection::vec(arb_op(), 1..5),
        doc in arb_json(),
        old in arb_json(),
        new in arb_json(),
    ) {
        let raw = lens_with(Value::Array(ops));
        let lens = Lens::from_value(&raw).unwrap();
        let _ = lens.apply(doc);
        let _ = prove(&lens, &old, &new);
        let _ = fill_defaults(&raw, &new);
    }

    /// Validation never panics on arbitrary JSON.
    #[test]
    fn validation_never_panics(v in arb_json()) {
        let _ = Lens::from_value(&v);
        let _ = Lens::from_value(&lens_with(Value::Array(vec![v])));
    }
}
