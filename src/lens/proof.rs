//! The install-time lens proof (spec §3.7, the original's `src/schema/proof.ts`) and
//! default filling (§3.8).
//!
//! The proof is a heuristic, ported rule for rule rather than improved, so that the same
//! lenses are accepted and rejected: each op is checked against the old schema (version N)
//! and the new one (N+1), not against intermediate states, with two special cases (a
//! `rename` whose destination a later `wrap` targets, and a `wrap` whose path an earlier
//! `rename` produced). Schemas are read with JS semantics: a missing keyword is
//! `undefined`, `null`/`false` schemas accept nothing, `true` or a schema without `type`
//! accepts anything; `const`/`enum` equality compares JSON text.

use serde_json::{Map, Value};

use super::js;
use super::pointer;
use super::spec::{Lens, Op, Transform};

/// A schema as JS sees it: `None` is `undefined`.
type S<'a> = Option<&'a Value>;

static TRUE: Value = Value::Bool(true);

#[derive(Clone, Copy)]
struct PathInfo<'a> {
    schema: S<'a>,
    required: bool,
    exists: bool,
}

impl<'a> PathInfo<'a> {
    fn missing(schema: S<'a>, required: bool) -> PathInfo<'a> {
        PathInfo {
            schema,
            required,
            exists: false,
        }
    }
}

/// `schema.<key>` (undefined unless the schema is an object having that key).
fn kw<'a>(schema: S<'a>, key: &str) -> S<'a> {
    match schema {
        Some(Value::Object(map)) => map.get(key),
        _ => None,
    }
}

fn falsy(schema: S<'_>) -> bool {
    schema.is_none_or(|v| !js::truthy(v))
}

/// `schema === false || schema == null`.
fn is_false_or_nullish(schema: S<'_>) -> bool {
    matches!(schema, None | Some(Value::Null | Value::Bool(false)))
}

fn type_includes(schema: S<'_>, name: &str) -> bool {
    if schema == Some(&TRUE) {
        return true;
    }
    if is_false_or_nullish(schema) {
        return false;
    }
    match kw(schema, "type") {
        None => true,
        Some(Value::Array(types)) => types.iter().any(|t| t.as_str() == Some(name)),
        Some(t) => t.as_str() == Some(name),
    }
}

fn is_object_schema(schema: S<'_>) -> bool {
    type_includes(schema, "object")
}

fn is_array_schema(schema: S<'_>) -> bool {
    type_includes(schema, "array")
}

/// The JS-level type name of a value (`integer` for integral numbers).
fn infer_type(value: &Value) -> Value {
    Value::String(super::spec::JsonType::of(value).name().to_owned())
}

/// The set of types a schema allows, `None` when unconstrained.
fn type_set(schema: S<'_>) -> Option<Vec<Value>> {
    if schema == Some(&TRUE) {
        return None;
    }
    if is_false_or_nullish(schema) {
        return Some(Vec::new());
    }
    if let Some(c) = kw(schema, "const") {
        return Some(vec![infer_type(c)]);
    }
    // A non-array `enum` would crash the original; such schemas do not compile anyway.
    if let Some(Value::Array(members)) = kw(schema, "enum") {
        return Some(members.iter().map(infer_type).collect());
    }
    match kw(schema, "type") {
        None => None,
        Some(Value::Array(types)) => Some(types.clone()),
        Some(t) => Some(vec![t.clone()]),
    }
}

fn type_subset(src: &Value, dest: &Value) -> bool {
    src == dest || (src.as_str() == Some("integer") && dest.as_str() == Some("number"))
}

fn compatible(src: S<'_>, dest: S<'_>) -> bool {
    if dest == Some(&TRUE) {
        return true;
    }
    if is_false_or_nullish(dest) {
        return false;
    }
    if !falsy(src) {
        if let Some(c) = kw(src, "const") {
            return conforms(c, dest);
        }
        if let Some(Value::Array(members)) = kw(src, "enum") {
            return members.iter().all(|m| conforms(m, dest));
        }
    }
    if let (Some(src_types), Some(dest_types)) = (type_set(src), type_set(dest)) {
        return src_types
            .iter()
            .all(|t| dest_types.iter().any(|d| type_subset(t, d)));
    }
    // A narrowly constrained destination cannot be proven from a broad source.
    !(kw(dest, "const").is_some() || matches!(kw(dest, "enum"), Some(Value::Array(_))))
}

fn conforms(value: &Value, schema: S<'_>) -> bool {
    if schema == Some(&TRUE) {
        return true;
    }
    if is_false_or_nullish(schema) {
        return false;
    }
    if let Some(c) = kw(schema, "const") {
        return js::json_text_equal(value, c);
    }
    if let Some(Value::Array(members)) = kw(schema, "enum") {
        return members.iter().any(|m| js::json_text_equal(m, value));
    }
    match type_set(schema) {
        Some(types) => {
            let vt = infer_type(value);
            types.iter().any(|t| type_subset(&vt, t))
        }
        None => true,
    }
}

fn property<'a>(schema: S<'a>, prop: &str, require_explicit: bool) -> PathInfo<'a> {
    if falsy(schema) || !is_object_schema(schema) {
        return PathInfo::missing(schema, false);
    }
    let required = matches!(kw(schema, "required"), Some(Value::Array(names))
        if names.iter().any(|n| n.as_str() == Some(prop)));
    if let Some(Value::Object(props)) = kw(schema, "properties") {
        if let Some(p) = props.get(prop) {
            return PathInfo {
                schema: Some(p),
                required,
                exists: true,
            };
        }
    }
    if require_explicit {
        return PathInfo::missing(schema, required);
    }
    match kw(schema, "additionalProperties") {
        Some(Value::Bool(false)) => PathInfo::missing(schema, required),
        Some(ap) if js::truthy(ap) && ap != &TRUE => PathInfo {
            schema: Some(ap),
            required,
            exists: true,
        },
        _ => PathInfo {
            schema: Some(&TRUE),
            required,
            exists: true,
        },
    }
}

fn items(schema: S<'_>) -> S<'_> {
    if falsy(schema) || !is_array_schema(schema) {
        return schema;
    }
    kw(schema, "items").or(Some(&TRUE))
}

fn is_digits(segment: &str) -> bool {
    !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit())
}

fn path_info<'a>(schema: S<'a>, segments: &[String], require_explicit: bool) -> PathInfo<'a> {
    let mut cur = schema;
    let mut required = true;
    for segment in segments {
        if is_digits(segment) {
            if !is_array_schema(cur) {
                return PathInfo::missing(cur, false);
            }
            cur = items(cur);
            continue;
        }
        let info = property(cur, segment, require_explicit);
        if !info.exists {
            return info;
        }
        required = required && info.required;
        cur = info.schema;
    }
    PathInfo {
        schema: cur,
        required,
        exists: true,
    }
}

fn parents_required(
    schema: S<'_>,
    segments: &[String],
    require_explicit: bool,
) -> Result<(), String> {
    let Some((_, parents)) = segments.split_last() else {
        return Ok(());
    };
    let mut cur = schema;
    for segment in parents {
        let info = property(cur, segment, require_explicit);
        if !info.exists || !info.required {
            return Err("parent path not required".to_owned());
        }
        if !is_object_schema(info.schema) {
            return Err("parent path not object".to_owned());
        }
        cur = info.schema;
    }
    Ok(())
}

fn path_required(schema: S<'_>, segments: &[String]) -> bool {
    let info = path_info(schema, segments, false);
    info.exists && info.required
}

/// The default an `add` gets when it has none: `schema.default`, else `{}` for an object
/// type, `[]` for an array type.
fn derive_default(schema: S<'_>) -> Option<Value> {
    if is_false_or_nullish(schema) {
        return None;
    }
    if let Some(d) = kw(schema, "default") {
        return Some(d.clone());
    }
    let types = type_set(schema)?;
    let has = |name: &str| types.iter().any(|t| t.as_str() == Some(name));
    if has("object") {
        Some(Value::Object(Map::new()))
    } else if has("array") {
        Some(Value::Array(Vec::new()))
    } else {
        None
    }
}

fn enum_or_const(schema: S<'_>) -> Result<(), String> {
    if !falsy(schema)
        && (kw(schema, "const").is_some() || matches!(kw(schema, "enum"), Some(Value::Array(_))))
    {
        return Ok(());
    }
    Err("schema must be enum/const for non-total transform".to_owned())
}

fn fail(message: &str) -> Result<(), String> {
    Err(message.to_owned())
}

/// JS `minItems < 1` for whatever JSON value `minItems` holds.
fn less_than_one(v: &Value) -> bool {
    js::to_number(v) < 1.0
}

/// Checks that `lens` turns every document valid under `old_schema` into one valid under
/// `new_schema`, by the original's rules (spec §3.7). Errors are its messages
/// (`rename source not required`, `add default invalid`, `parent path not object`, …).
pub fn prove(lens: &Lens, old_schema: &Value, new_schema: &Value) -> Result<(), String> {
    prove_ops(Some(old_schema), Some(new_schema), lens.ops())
}

fn prove_ops(old: S<'_>, new: S<'_>, ops: &[Op]) -> Result<(), String> {
    for (i, op) in ops.iter().enumerate() {
        prove_op(old, new, op, &ops[..i], &ops[i + 1..])?;
    }
    Ok(())
}

fn prove_op(old: S<'_>, new: S<'_>, op: &Op, prior: &[Op], later: &[Op]) -> Result<(), String> {
    match op {
        Op::Rename { from, to } => {
            let src = path_info(old, from, false);
            if !src.exists || !src.required {
                return fail("rename source not required");
            }
            parents_required(old, to, false)?;
            let dest = path_info(new, to, false);
            if !dest.exists {
                return fail("rename dest missing in new schema");
            }
            if compatible(src.schema, dest.schema) {
                return Ok(());
            }
            let wrapped_later = later
                .iter()
                .any(|l| matches!(l, Op::Wrap { path } if path == to));
            if is_array_schema(dest.schema)
                && wrapped_later
                && compatible(src.schema, items(dest.schema))
            {
                return Ok(());
            }
            fail("rename schema incompatible")
        }
        Op::Copy { from, to } => {
            let src = path_info(old, from, false);
            if !src.exists || !src.required {
                return fail("copy source not required");
            }
            parents_required(old, to, false)?;
            let dest = path_info(new, to, false);
            if !dest.exists {
                return fail("copy dest missing in new schema");
            }
            if !compatible(src.schema, dest.schema) {
                return fail("copy schema incompatible");
            }
            Ok(())
        }
        Op::Add { path, default, .. } => {
            parents_required(old, path, true)?;
            let dest = path_info(new, path, true);
            if !dest.exists {
                return fail("add dest missing in new schema");
            }
            // `op.default ?? derived`: an explicit null counts as absent here.
            let value = match default {
                Some(v) if !v.is_null() => Some(v.clone()),
                _ => derive_default(dest.schema),
            };
            let Some(value) = value else {
                return fail("add missing default");
            };
            if !conforms(&value, dest.schema) {
                return fail("add default invalid");
            }
            Ok(())
        }
        Op::Remove { path, .. } => {
            let src = path_info(old, path, true);
            if !src.exists || !src.required {
                return fail("remove path not required");
            }
            if path_required(new, path) {
                return fail("remove path still required in new schema");
            }
            Ok(())
        }
        Op::Hoist {
            host,
            name,
            to,
            remove_from_host,
        } => {
            let host_old = path_info(old, host, true);
            if !host_old.exists || !host_old.required || !is_object_schema(host_old.schema) {
                return fail("hoist host invalid");
            }
            let child = property(host_old.schema, name, true);
            if !child.exists || !child.required {
                return fail("hoist name missing/optional");
            }
            parents_required(old, to, true)?;
            let dest = path_info(new, to, true);
            if !dest.exists {
                return fail("hoist dest missing in new schema");
            }
            if !compatible(child.schema, dest.schema) {
                return fail("hoist schema incompatible");
            }
            if *remove_from_host {
                let host_new = path_info(new, host, true);
                if host_new.exists
                    && host_new.required
                    && path_required(host_new.schema, std::slice::from_ref(name))
                {
                    return fail("hoist removed field still required");
                }
            }
            Ok(())
        }
        Op::Plunge {
            from,
            host,
            name,
            create_host,
            remove_from_source,
        } => {
            let src = path_info(old, from, true);
            if !src.exists || !src.required {
                return fail("plunge source not required");
            }
            if *create_host {
                parents_required(old, host, true)?;
            } else {
                let host_old = path_info(old, host, true);
                if !host_old.exists || !host_old.required || !is_object_schema(host_old.schema) {
                    return fail("plunge host invalid");
                }
            }
            let host_new = path_info(new, host, true);
            if !host_new.exists || !is_object_schema(host_new.schema) {
                return fail("plunge host missing in new schema");
            }
            let child = property(host_new.schema, name, true);
            if !child.exists {
                return fail("plunge name missing in new schema");
            }
            if !compatible(src.schema, child.schema) {
                return fail("plunge schema incompatible");
            }
            if *remove_from_source && path_required(new, from) {
                return fail("plunge removed field still required");
            }
            Ok(())
        }
        Op::Wrap { path } => {
            let mut src = path_info(old, path, true);
            if !src.exists || !src.required {
                let renamed_from = prior.iter().rev().find_map(|p| match p {
                    Op::Rename { from, to } if to == path => Some(from),
                    _ => None,
                });
                if let Some(from) = renamed_from {
                    src = path_info(old, from, true);
                }
            }
            if !src.exists || !src.required {
                return fail("wrap path not required");
            }
            let dest = path_info(new, path, true);
            if !dest.exists || !is_array_schema(dest.schema) {
                return fail("wrap dest not array");
            }
            if !compatible(src.schema, items(dest.schema)) {
                return fail("wrap items incompatible");
            }
            Ok(())
        }
        Op::Head { path } => {
            let src = path_info(old, path, true);
            if !src.exists || !src.required || !is_array_schema(src.schema) {
                return fail("head path not required array");
            }
            let enum_members = match kw(src.schema, "enum") {
                Some(Value::Array(members)) if !falsy(src.schema) => Some(members),
                _ => None,
            };
            if let Some(members) = enum_members {
                let all_non_empty = members
                    .iter()
                    .all(|m| matches!(m, Value::Array(a) if !a.is_empty()));
                if !all_non_empty {
                    return fail("head requires enum non-empty");
                }
            }
            let min_items = kw(src.schema, "minItems");
            if enum_members.is_none() && min_items.is_none_or(less_than_one) {
                return fail("head requires minItems");
            }
            if min_items.is_some_and(less_than_one) {
                return fail("head requires non-empty array");
            }
            let dest = path_info(new, path, true);
            if !dest.exists {
                return fail("head dest missing");
            }
            if !compatible(items(src.schema), dest.schema) {
                return fail("head schema incompatible");
            }
            Ok(())
        }
        Op::Convert {
            path,
            to_type,
            forward,
            ..
        } => {
            let src = path_info(old, path, true);
            if !src.exists || !src.required {
                return fail("convert path not required");
            }
            let non_total = match forward {
                // `forward.map && !forward.default`: a falsy default does not make it total.
                Transform::Map { default, .. } => !default.as_ref().is_some_and(js::truthy),
                Transform::Builtin(name) => {
                    name == "string_to_int" || name == "rfc3339_to_unix_millis"
                }
            };
            if non_total {
                enum_or_const(src.schema)?;
            }
            let dest = path_info(new, path, true);
            if !dest.exists {
                return fail("convert dest missing");
            }
            let out_type = Value::Object(Map::from_iter([(
                "type".to_owned(),
                Value::String(to_type.name().to_owned()),
            )]));
            if !compatible(Some(&out_type), dest.schema) {
                return fail("convert dest incompatible");
            }
            Ok(())
        }
        Op::In { path, ops } => {
            let src = path_info(old, path, true);
            let dest = path_info(new, path, true);
            if !src.exists || !src.required || !is_object_schema(src.schema) {
                return fail("in path invalid");
            }
            if !dest.exists || !is_object_schema(dest.schema) {
                return fail("in dest invalid");
            }
            prove_ops(src.schema, dest.schema, ops)
        }
        Op::Map { path, ops } => {
            let src = path_info(old, path, true);
            let dest = path_info(new, path, true);
            if !src.exists || !src.required || !is_array_schema(src.schema) {
                return fail("map path invalid");
            }
            if !dest.exists || !is_array_schema(dest.schema) {
                return fail("map dest invalid");
            }
            prove_ops(items(src.schema), items(dest.schema), ops)
        }
    }
}

/// Returns a copy of the lens document with every `add` that has no `default` given the
/// default derived from its destination in `new_schema` (recursing through `in`/`map`
/// with the matching sub-schema); the new `default` key goes last. Errors:
/// `add dest missing in new schema`, `add missing default`, `in dest missing in new
/// schema`, `map dest missing in new schema`, or the lens's own validation error.
pub fn fill_defaults(lens: &Value, new_schema: &Value) -> Result<Value, String> {
    Lens::from_value(lens)?;
    let mut out = lens.clone();
    if let Some(Value::Array(ops)) = out.get_mut("ops") {
        fill_ops(ops, Some(new_schema))?;
    }
    Ok(out)
}

fn op_path(op: &Map<String, Value>) -> Result<Vec<String>, String> {
    let text = op.get("path").and_then(Value::as_str).unwrap_or_default();
    pointer::parse(text).map_err(|e| e.to_string())
}

fn fill_ops(ops: &mut [Value], schema: S<'_>) -> Result<(), String> {
    for op in ops {
        let Value::Object(op) = op else { continue };
        match op.get("op").and_then(Value::as_str) {
            Some("add") if !op.contains_key("default") => {
                let info = path_info(schema, &op_path(op)?, true);
                if !info.exists {
                    return fail("add dest missing in new schema");
                }
                let default = derive_default(info.schema).ok_or("add missing default")?;
                op.insert("default".to_owned(), default);
            }
            Some("in") => {
                let info = path_info(schema, &op_path(op)?, true);
                if !info.exists {
                    return fail("in dest missing in new schema");
                }
                if let Some(Value::Array(nested)) = op.get_mut("ops") {
                    fill_ops(nested, info.schema)?;
                }
            }
            Some("map") => {
                let info = path_info(schema, &op_path(op)?, true);
                if !info.exists {
                    return fail("map dest missing in new schema");
                }
                if let Some(Value::Array(nested)) = op.get_mut("ops") {
                    fill_ops(nested, items(info.schema))?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}
