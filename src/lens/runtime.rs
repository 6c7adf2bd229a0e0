//! Applying a lens to a document (spec §3.6, the original's `applyOpsResult`).

use serde_json::Value;

use super::js;
use super::pointer;
use super::spec::{JsonType, Lens, Op, Transform};

type Step = Result<(), String>;

impl Lens {
    /// Applies the operations in order to `doc` and returns the result. Strict: a missing
    /// input is an error, with the original's messages (`rename missing source`,
    /// `type mismatch: expected integer, got string`, `missing parent`, …).
    ///
    /// Values are copied, never shared: where JS `copy` (or `rename` onto a path inside its
    /// source) made two places share one object, later edits here affect only one of them.
    /// Inside `in`/`map`, a write to the nested root (`""`) is discarded, as in the
    /// original; the remaining nested ops then work on a detached copy.
    pub fn apply(&self, doc: Value) -> Result<Value, String> {
        let mut doc = doc;
        apply_ops(&mut doc, &self.ops, false)?;
        Ok(doc)
    }
}

/// Applies lenses in sequence (a chain `v → v+1 → … → current`).
pub fn promote(lenses: &[&Lens], doc: Value) -> Result<Value, String> {
    lenses.iter().try_fold(doc, |doc, lens| lens.apply(doc))
}

fn writes_root(op: &Op) -> bool {
    match op {
        Op::Rename { to, .. } | Op::Copy { to, .. } | Op::Hoist { to, .. } => to.is_empty(),
        Op::Add { path, .. } | Op::Wrap { path } | Op::Head { path } | Op::Convert { path, .. } => {
            path.is_empty()
        }
        Op::Remove { .. } | Op::Plunge { .. } | Op::In { .. } | Op::Map { .. } => false,
    }
}

fn apply_ops(root: &mut Value, ops: &[Op], nested: bool) -> Step {
    // In JS a nested root replacement only rebinds a local variable: the document keeps
    // the original object. Later nested ops then act on the replacement, which is dropped.
    let mut detached: Option<Value> = None;
    for op in ops {
        if nested && detached.is_none() && writes_root(op) {
            detached = Some(root.clone());
        }
        let target = match detached.as_mut() {
            Some(d) => d,
            None => &mut *root,
        };
        apply_op(target, op)?;
    }
    Ok(())
}

fn set(root: &mut Value, path: &[String], value: Value) -> Step {
    pointer::set(root, path, value, false).map_err(|e| e.to_string())
}

fn delete(root: &mut Value, path: &[String]) -> Step {
    pointer::delete(root, path)
        .map(drop)
        .map_err(|e| e.to_string())
}

fn is_prefix(prefix: &[String], path: &[String]) -> bool {
    path.starts_with(prefix)
}

fn apply_op(root: &mut Value, op: &Op) -> Step {
    match op {
        Op::Rename { from, to } => {
            let value = pointer::get(root, from)
                .cloned()
                .ok_or("rename missing source")?;
            set(root, to, value)?;
            delete(root, from)
        }
        Op::Copy { from, to } => {
            let value = pointer::get(root, from)
                .cloned()
                .ok_or("copy missing source")?;
            set(root, to, value)
        }
        Op::Add { path, default, .. } => {
            // Stored lenses always carry a default (§3.8); a lens applied before filling
            // would have written JS `undefined`, which JSON cannot hold.
            let value = default.clone().ok_or("add missing default")?;
            set(root, path, value)
        }
        Op::Remove { path, .. } => {
            if pointer::get(root, path).is_none() {
                return Err("remove missing path".to_owned());
            }
            delete(root, path)
        }
        Op::Hoist {
            host,
            name,
            to,
            remove_from_host,
        } => {
            let Some(Value::Object(host_map)) = pointer::get(root, host) else {
                return Err("hoist host missing or not object".to_owned());
            };
            let value = host_map.get(name).cloned().ok_or("hoist missing name")?;
            set(root, to, value)?;
            // When `to` replaced the host (or an ancestor), JS deleted from the detached
            // old host: nothing to do in the document.
            if *remove_from_host && !is_prefix(to, host) {
                if let Some(Value::Object(host_map)) = pointer::get_mut(root, host) {
                    host_map.shift_remove(name);
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
            if pointer::get(root, from).is_none() {
                return Err("plunge missing source".to_owned());
            }
            if pointer::get(root, host).is_none() {
                if !create_host {
                    return Err("plunge host missing".to_owned());
                }
                pointer::set(root, host, Value::Object(serde_json::Map::new()), true)
                    .map_err(|e| e.to_string())?;
            }
            let value = pointer::get(root, from)
                .cloned()
                .ok_or("plunge missing source")?;
            let Some(Value::Object(host_map)) = pointer::get_mut(root, host) else {
                return Err("plunge host not object".to_owned());
            };
            host_map.insert(name.clone(), value);
            if *remove_from_source {
                delete(root, from)?;
            }
            Ok(())
        }
        Op::Wrap { path } => {
            let target = pointer::get_mut(root, path).ok_or("wrap missing path")?;
            let inner = target.take();
            *target = Value::Array(vec![inner]);
            Ok(())
        }
        Op::Head { path } => {
            let target = pointer::get_mut(root, path).ok_or("head missing path")?;
            match target {
                Value::Array(items) if !items.is_empty() => {
                    let first = items.swap_remove(0);
                    *target = first;
                    Ok(())
                }
                _ => Err("head expects non-empty array".to_owned()),
            }
        }
        Op::Convert {
            path,
            from_type,
            to_type,
            forward,
            ..
        } => {
            let target = pointer::get_mut(root, path).ok_or("convert missing path")?;
            ensure_type(target, *from_type)?;
            let out = apply_transform(forward, target)?;
            ensure_type(&out, *to_type)?;
            *target = out;
            Ok(())
        }
        Op::In { path, ops } => {
            let target = pointer::get_mut(root, path).ok_or("in missing path")?;
            if !target.is_object() {
                return Err("in expects object".to_owned());
            }
            apply_ops(target, ops, true)
        }
        Op::Map { path, ops } => {
            let target = pointer::get_mut(root, path).ok_or("map missing path")?;
            let Value::Array(items) = target else {
                return Err("map expects array".to_owned());
            };
            items
                .iter_mut()
                .try_for_each(|item| apply_ops(item, ops, true))
        }
    }
}

fn ensure_type(value: &Value, expected: JsonType) -> Step {
    let actual = JsonType::of(value);
    if actual == expected || (expected == JsonType::Number && actual == JsonType::Integer) {
        return Ok(());
    }
    Err(format!(
        "type mismatch: expected {}, got {}",
        expected.name(),
        actual.name()
    ))
}

fn apply_transform(transform: &Transform, value: &Value) -> Result<Value, String> {
    match transform {
        Transform::Builtin(name) => apply_builtin(name, value),
        Transform::Map { map, default } => {
            let key = js::value_to_string(value);
            map.get(&key)
                .or(default.as_ref())
                .cloned()
                .ok_or_else(|| "convert map missing key and default".to_owned())
        }
    }
}

fn apply_builtin(name: &str, value: &Value) -> Result<Value, String> {
    let expects = |what: &str| format!("builtin {name} expects {what}");
    match name {
        "lowercase" => match value {
            Value::String(s) => Ok(Value::String(s.to_lowercase())),
            _ => Err(expects("string")),
        },
        "uppercase" => match value {
            Value::String(s) => Ok(Value::String(s.to_uppercase())),
            _ => Err(expects("string")),
        },
        "string_to_int" => match value {
            Value::String(s) => js::parse_int(s)
                .and_then(js::f64_to_json)
                .ok_or_else(|| "builtin string_to_int invalid".to_owned()),
            _ => Err(expects("string")),
        },
        "int_to_string" => match value {
            Value::Number(n) if js::is_integer(n) => Ok(Value::String(js::number_to_string(n))),
            _ => Err(expects("integer")),
        },
        "rfc3339_to_unix_millis" => match value {
            Value::String(s) => js::parse_date_time_ms(s)
                .map(Value::from)
                .ok_or_else(|| "builtin rfc3339_to_unix_millis invalid".to_owned()),
            _ => Err(expects("string")),
        },
        "unix_millis_to_rfc3339" => match value {
            // JS throws a RangeError here (an uncaught 500); this is a clear error instead.
            Value::Number(n) => js::unix_ms_to_iso(js::number_to_f64(n))
                .map(Value::String)
                .ok_or_else(|| "builtin unix_millis_to_rfc3339 out of range".to_owned()),
            _ => Err(expects("number")),
        },
        _ => Err(format!("unknown builtin: {name}")),
    }
}
