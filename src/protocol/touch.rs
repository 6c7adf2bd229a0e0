//! Request bodies and queries of the live-query touch routes, parsed with the original's
//! rules and messages (Prisma Streams 0.1.11, `src/profiles/stateProtocol/routes.ts`).
//!
//! - `POST …/touch/templates/activate`: [`ActivateRequest`].
//! - `POST …/touch/wait`: [`WaitRequest`]. The checks that depend on the stream's runtime
//!   state (the exact lane's preconditions) and the cursor's format come after these in
//!   the original, so the cursor is kept as sent (trimmed) and [`parse_cursor`] (the
//!   journal's [`Cursor`] format, or `now`) is called
//!   by the service once those checks passed; the first error a client sees is the
//!   original's.
//! - `GET …/touch/meta`: [`MetaQuery`].
//!
//! Values go through JavaScript's rules where the original relies on them: `keyIds`
//! entries through `Number(x)` (so `"7"` is 7 and `true` is 1), numbers clamped and
//! floored as the original does. Unlike the original, a bad request changes nothing:
//! everything is validated before the service heartbeats or declares templates.

use serde_json::Value;

use crate::profiles::js;
use crate::touch::journal::Cursor;

/// At most this many `keys` or `keyIds` in one wait.
pub const MAX_WAIT_KEYS: usize = 1024;
/// At most this many templates in one activation (or `declareTemplates`).
pub const MAX_TEMPLATES: usize = 256;
/// At most this many literal keys in an exact wait.
pub const MAX_EXACT_KEYS: usize = 16;
/// The longest wait or settle a request may ask for.
pub const MAX_TIMEOUT_MS: u64 = 120_000;
/// The wait (or settle) when the request names none.
pub const DEFAULT_TIMEOUT_MS: u64 = 30_000;

/// A template as declared by a client: entity and 1..=3 fields. The encodings are kept
/// as sent: an unknown one denies that template (`invalid`) rather than the request.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateDecl {
    pub entity: String,
    pub fields: Vec<FieldDecl>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FieldDecl {
    pub name: String,
    pub encoding: Value,
}

/// `POST …/touch/templates/activate`.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivateRequest {
    pub templates: Vec<TemplateDecl>,
    /// `None`: the profile's `templates.defaultInactivityTtlMs`.
    pub inactivity_ttl_ms: Option<u64>,
}

impl ActivateRequest {
    pub fn parse(body: &[u8]) -> Result<ActivateRequest, String> {
        let v: Value = serde_json::from_slice(body)
            .map_err(|_| "activate body must be valid JSON".to_string())?;
        let templates = parse_templates(v.get("templates"), "activate.templates")?;
        let inactivity_ttl_ms = parse_ttl(v.get("inactivityTtlMs"), "activate.inactivityTtlMs")?;
        Ok(ActivateRequest {
            templates,
            inactivity_ttl_ms,
        })
    }
}

/// How a wait's interest counts: `fine` keys (best-effort) or `coarse` (table keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InterestMode {
    Fine,
    Coarse,
}

/// `POST …/touch/wait`, validated except for the cursor's format.
#[derive(Debug, Clone, PartialEq)]
pub struct WaitRequest {
    /// Trimmed, de-duplicated, in request order.
    pub keys: Vec<String>,
    /// De-duplicated uint32 key ids; when non-empty, `keys` only serve the exact lane.
    pub key_ids: Vec<u32>,
    pub exact: bool,
    /// Trimmed and non-empty: `now` or `<epoch>:<generation>` (checked by [`parse_cursor`]).
    pub cursor: String,
    pub timeout_ms: u64,
    /// Trimmed, de-duplicated.
    pub template_ids_used: Vec<String>,
    pub interest: InterestMode,
    /// Inline activation (`declareTemplates`), with its TTL (`None`: the default).
    pub declare: Vec<TemplateDecl>,
    pub inactivity_ttl_ms: Option<u64>,
}

impl WaitRequest {
    pub fn parse(body: &[u8]) -> Result<WaitRequest, String> {
        let v: Value =
            serde_json::from_slice(body).map_err(|_| "wait body must be valid JSON".to_string())?;

        let keys = match v.get("keys") {
            None => Vec::new(),
            Some(Value::Array(a))
                if a.iter()
                    .all(|k| k.as_str().is_some_and(|s| !js::trim(s).is_empty())) =>
            {
                dedup(
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(|s| js::trim(s).to_string()),
                )
            }
            Some(_) => {
                return Err("wait.keys must be a non-empty string array when provided".into())
            }
        };
        if keys.len() > MAX_WAIT_KEYS {
            return Err("wait.keys too large (max 1024)".into());
        }

        let key_ids = match v.get("keyIds") {
            Some(Value::Array(a)) if !a.is_empty() => {
                let ids: Vec<u32> = dedup(a.iter().filter_map(|x| {
                    let n = js::to_number(x);
                    (n.is_finite() && n.fract() == 0.0 && (0.0..=4_294_967_295.0).contains(&n))
                        .then_some(n as u32)
                }));
                if ids.len() != a.len() {
                    return Err("wait.keyIds must be a non-empty uint32 array when provided".into());
                }
                ids
            }
            // An empty array counts as none; so does any other value (the original only
            // checks arrays).
            _ => Vec::new(),
        };
        if keys.is_empty() && key_ids.is_empty() {
            return Err("wait requires keys or keyIds".into());
        }
        if key_ids.len() > MAX_WAIT_KEYS {
            return Err("wait.keyIds too large (max 1024)".into());
        }

        let exact = match v.get("exact") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err("wait.exact must be a boolean when provided".into()),
        };

        let cursor = match v.get("cursor").and_then(Value::as_str).map(js::trim) {
            Some(c) if !c.is_empty() => c.to_string(),
            _ => return Err("wait.cursor must be a non-empty string".into()),
        };

        let timeout_ms = match v.get("timeoutMs") {
            None => DEFAULT_TIMEOUT_MS,
            Some(Value::Number(n)) => clamp_ms(n.as_f64().unwrap_or(0.0)),
            Some(_) => return Err("wait.timeoutMs must be a number (ms)".into()),
        };

        let template_ids_used = match v.get("templateIdsUsed") {
            Some(Value::Array(a)) => {
                if !a
                    .iter()
                    .all(|x| x.as_str().is_some_and(|s| !js::trim(s).is_empty()))
                {
                    return Err("wait.templateIdsUsed must be a string array".into());
                }
                dedup(
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(|s| js::trim(s).to_string()),
                )
            }
            // Not an array: ignored, as the original does.
            _ => Vec::new(),
        };

        let interest = match v.get("interestMode") {
            None => InterestMode::Fine,
            Some(Value::String(s)) if s == "fine" => InterestMode::Fine,
            Some(Value::String(s)) if s == "coarse" => InterestMode::Coarse,
            Some(_) => return Err("wait.interestMode must be 'fine' or 'coarse'".into()),
        };

        let (declare, inactivity_ttl_ms) = match v.get("declareTemplates") {
            Some(Value::Array(a)) if !a.is_empty() => (
                parse_templates(v.get("declareTemplates"), "wait.declareTemplates")?,
                parse_ttl(v.get("inactivityTtlMs"), "wait.inactivityTtlMs")?,
            ),
            _ => (Vec::new(), None),
        };

        Ok(WaitRequest {
            keys,
            key_ids,
            exact,
            cursor,
            timeout_ms,
            template_ids_used,
            interest,
            declare,
            inactivity_ttl_ms,
        })
    }

    /// The literal 64-bit keys of an exact wait: 1..=16 keys that are each 16 hex digits
    /// (lowercased, de-duplicated); `None` otherwise.
    pub fn exact_keys(&self) -> Option<Vec<u64>> {
        if self.keys.is_empty() || self.keys.len() > MAX_EXACT_KEYS {
            return None;
        }
        let lowered = dedup(self.keys.iter().map(|k| k.to_ascii_lowercase()));
        lowered
            .iter()
            .map(|k| {
                (k.len() == 16 && k.bytes().all(|b| b.is_ascii_hexdigit()))
                    .then(|| u64::from_str_radix(k, 16).ok())
                    .flatten()
            })
            .collect()
    }
}

/// A wait's starting point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitFrom {
    /// The journal's current generation.
    Now,
    /// A cursor the journal gave out (`<epoch>:<generation>`).
    Cursor(Cursor),
}

/// Parses a trimmed `cursor`; `None` is 400 `wait.cursor must be in the form
/// <epochHex>:<generation> or 'now'`.
pub fn parse_cursor(s: &str) -> Option<WaitFrom> {
    if s == "now" {
        return Some(WaitFrom::Now);
    }
    Cursor::parse(s).map(WaitFrom::Cursor)
}

/// `GET …/touch/meta?settle=flush&timeoutMs=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetaQuery {
    /// Wait (up to `timeout_ms`) until nothing is pending and the processor caught up.
    pub settle: bool,
    pub timeout_ms: u64,
}

impl MetaQuery {
    /// `settle` and `timeoutMs` as their (first) query values.
    pub fn parse(settle: Option<&str>, timeout_ms: Option<&str>) -> Result<MetaQuery, String> {
        let settle = match settle {
            None => false,
            Some("flush") => true,
            Some(_) => return Err("meta.settle must be 'flush' when provided".into()),
        };
        let timeout_ms = match timeout_ms.map(js::trim) {
            None | Some("") => DEFAULT_TIMEOUT_MS,
            Some(s) => {
                let n = js::string_to_number(s);
                if !n.is_finite() {
                    return Err("meta.timeoutMs must be a number (ms)".into());
                }
                clamp_ms(n)
            }
        };
        Ok(MetaQuery { settle, timeout_ms })
    }
}

fn clamp_ms(n: f64) -> u64 {
    n.floor().clamp(0.0, MAX_TIMEOUT_MS as f64) as u64
}

fn dedup<T: PartialEq>(items: impl Iterator<Item = T>) -> Vec<T> {
    let mut out: Vec<T> = Vec::new();
    for i in items {
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out
}

fn parse_ttl(raw: Option<&Value>, path: &str) -> Result<Option<u64>, String> {
    match raw {
        None => Ok(None),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(x) if x.is_finite() && x >= 0.0 => Ok(Some(x.floor() as u64)),
            _ => Err(format!("{path} must be a non-negative number (ms)")),
        },
        Some(_) => Err(format!("{path} must be a non-negative number (ms)")),
    }
}

fn parse_templates(raw: Option<&Value>, path: &str) -> Result<Vec<TemplateDecl>, String> {
    let list = match raw {
        Some(Value::Array(a)) if !a.is_empty() => a,
        _ => return Err(format!("{path} must be a non-empty array")),
    };
    if list.len() > MAX_TEMPLATES {
        return Err(format!("{path} too large (max 256)"));
    }
    let invalid = || format!("{path} contains invalid template definitions");
    let mut out = Vec::with_capacity(list.len());
    for t in list {
        let entity = t
            .get("entity")
            .and_then(Value::as_str)
            .map(js::trim)
            .unwrap_or("");
        let fields = match t.get("fields") {
            Some(Value::Array(f)) if !f.is_empty() && f.len() <= 3 => f,
            _ => return Err(invalid()),
        };
        if entity.is_empty() {
            return Err(invalid());
        }
        let mut decls = Vec::with_capacity(fields.len());
        for f in fields {
            let name = f
                .get("name")
                .and_then(Value::as_str)
                .map(js::trim)
                .unwrap_or("");
            if name.is_empty() {
                return Err(invalid());
            }
            decls.push(FieldDecl {
                name: name.to_string(),
                encoding: f.get("encoding").cloned().unwrap_or(Value::Null),
            });
        }
        out.push(TemplateDecl {
            entity: entity.to_string(),
            fields: decls,
        });
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::touch::journal::Epoch;

    fn wait(body: &str) -> Result<WaitRequest, String> {
        WaitRequest::parse(body.as_bytes())
    }

    #[test]
    fn wait_errors_in_the_original_order() {
        let cases = [
            ("{", "wait body must be valid JSON"),
            (
                r#"{"keys":"a"}"#,
                "wait.keys must be a non-empty string array when provided",
            ),
            (
                r#"{"keys":["a"," "]}"#,
                "wait.keys must be a non-empty string array when provided",
            ),
            (
                r#"{"keys":[1]}"#,
                "wait.keys must be a non-empty string array when provided",
            ),
            (
                r#"{"keyIds":[1,1]}"#,
                "wait.keyIds must be a non-empty uint32 array when provided",
            ),
            (
                r#"{"keyIds":[-1]}"#,
                "wait.keyIds must be a non-empty uint32 array when provided",
            ),
            (
                r#"{"keyIds":[4294967296]}"#,
                "wait.keyIds must be a non-empty uint32 array when provided",
            ),
            (
                r#"{"keyIds":[1.5]}"#,
                "wait.keyIds must be a non-empty uint32 array when provided",
            ),
            (
                r#"{"keyIds":["x"]}"#,
                "wait.keyIds must be a non-empty uint32 array when provided",
            ),
            (r#"{}"#, "wait requires keys or keyIds"),
            (r#"{"keys":[],"keyIds":[]}"#, "wait requires keys or keyIds"),
            (
                r#"{"keys":["a"],"exact":1}"#,
                "wait.exact must be a boolean when provided",
            ),
            (
                r#"{"keys":["a"]}"#,
                "wait.cursor must be a non-empty string",
            ),
            (
                r#"{"keys":["a"],"cursor":"  "}"#,
                "wait.cursor must be a non-empty string",
            ),
            (
                r#"{"keys":["a"],"cursor":"now","timeoutMs":"5"}"#,
                "wait.timeoutMs must be a number (ms)",
            ),
            (
                r#"{"keys":["a"],"cursor":"now","templateIdsUsed":[""]}"#,
                "wait.templateIdsUsed must be a string array",
            ),
            (
                r#"{"keys":["a"],"cursor":"now","interestMode":"all"}"#,
                "wait.interestMode must be 'fine' or 'coarse'",
            ),
            (
                r#"{"keys":["a"],"cursor":"now","declareTemplates":[{"entity":"t","fields":[]}]}"#,
                "wait.declareTemplates contains invalid template definitions",
            ),
            (
                r#"{"keys":["a"],"cursor":"now","declareTemplates":[{"entity":"t","fields":[{"name":"a"}]}],"inactivityTtlMs":-1}"#,
                "wait.inactivityTtlMs must be a non-negative number (ms)",
            ),
        ];
        for (body, msg) in cases {
            assert_eq!(wait(body).unwrap_err(), msg, "{body}");
        }
        let many: Vec<String> = (0..1025).map(|i| format!("\"k{i}\"")).collect();
        let body = format!(r#"{{"keys":[{}],"cursor":"now"}}"#, many.join(","));
        assert_eq!(wait(&body).unwrap_err(), "wait.keys too large (max 1024)");
        let ids: Vec<String> = (0..1025).map(|i| i.to_string()).collect();
        let body = format!(r#"{{"keyIds":[{}],"cursor":"now"}}"#, ids.join(","));
        assert_eq!(wait(&body).unwrap_err(), "wait.keyIds too large (max 1024)");
    }

    #[test]
    fn wait_values_follow_the_originals_rules() {
        let w = wait(
            r#"{"keys":[" a ","a","b"],"keyIds":["7",true,0],"cursor":" now ","timeoutMs":999999.5,
                "templateIdsUsed":[" t ","t"],"interestMode":"coarse","templateIdsUsedX":1}"#,
        )
        .unwrap();
        assert_eq!(w.keys, ["a", "b"]);
        assert_eq!(w.key_ids, [7, 1, 0]);
        assert_eq!(w.cursor, "now");
        assert_eq!(w.timeout_ms, MAX_TIMEOUT_MS);
        assert_eq!(w.template_ids_used, ["t"]);
        assert_eq!(w.interest, InterestMode::Coarse);
        assert!(!w.exact);
        let w =
            wait(r#"{"keyIds":[1],"cursor":"now","timeoutMs":-5,"templateIdsUsed":"x"}"#).unwrap();
        assert_eq!(w.timeout_ms, 0);
        assert!(w.template_ids_used.is_empty());
        assert_eq!(w.interest, InterestMode::Fine);
        let w = wait(r#"{"keys":["a"],"cursor":"now"}"#).unwrap();
        assert_eq!(w.timeout_ms, DEFAULT_TIMEOUT_MS);
        // An empty declareTemplates is no declaration (its TTL is not even read).
        let w =
            wait(r#"{"keys":["a"],"cursor":"now","declareTemplates":[],"inactivityTtlMs":"x"}"#)
                .unwrap();
        assert!(w.declare.is_empty());
        let w = wait(
            r#"{"keys":["a"],"cursor":"now","declareTemplates":[{"entity":" e ","fields":[{"name":" f ","encoding":"int64"}]}],"inactivityTtlMs":10.9}"#,
        )
        .unwrap();
        assert_eq!(w.declare[0].entity, "e");
        assert_eq!(w.declare[0].fields[0].name, "f");
        assert_eq!(w.inactivity_ttl_ms, Some(10));
    }

    #[test]
    fn exact_keys_are_literal_hex16() {
        let with = |keys: &str| {
            wait(&format!(r#"{{"keys":{keys},"cursor":"now","exact":true}}"#)).unwrap()
        };
        assert_eq!(
            with(r#"["FEADEB84D447FD63","feadeb84d447fd63"]"#).exact_keys(),
            Some(vec![0xfeadeb84d447fd63])
        );
        assert_eq!(with(r#"["feadeb84d447fd6"]"#).exact_keys(), None);
        assert_eq!(with(r#"["feadeb84d447fd63","x"]"#).exact_keys(), None);
        let seventeen: Vec<String> = (0..17).map(|i| format!("\"{i:016x}\"")).collect();
        assert_eq!(
            with(&format!("[{}]", seventeen.join(","))).exact_keys(),
            None
        );
    }

    #[test]
    fn cursors() {
        assert_eq!(parse_cursor("now"), Some(WaitFrom::Now));
        assert_eq!(
            parse_cursor("0A1B2C3D4E5F6071:42"),
            Some(WaitFrom::Cursor(Cursor {
                epoch: Epoch(0x0a1b_2c3d_4e5f_6071),
                generation: 42
            }))
        );
        for bad in [
            "",
            "NOW",
            "0a1b2c3d4e5f607:1",
            "0a1b2c3d4e5f6071:",
            "0a1b2c3d4e5f6071:-1",
            "0a1b2c3d4e5f607g:1",
            "0a1b2c3d4e5f6071:1:2",
            "0a1b2c3d4e5f6071",
        ] {
            assert_eq!(parse_cursor(bad), None, "{bad}");
        }
    }

    #[test]
    fn activate_bodies() {
        let p = |b: &str| ActivateRequest::parse(b.as_bytes());
        assert_eq!(p("x").unwrap_err(), "activate body must be valid JSON");
        assert_eq!(
            p("{}").unwrap_err(),
            "activate.templates must be a non-empty array"
        );
        assert_eq!(
            p(r#"{"templates":[]}"#).unwrap_err(),
            "activate.templates must be a non-empty array"
        );
        let t = r#"{"entity":"e","fields":[{"name":"a","encoding":"string"}]}"#;
        let many = vec![t; 257].join(",");
        assert_eq!(
            p(&format!(r#"{{"templates":[{many}]}}"#)).unwrap_err(),
            "activate.templates too large (max 256)"
        );
        for bad in [
            r#"{"entity":" ","fields":[{"name":"a"}]}"#,
            r#"{"entity":"e","fields":[]}"#,
            r#"{"entity":"e","fields":[{"name":"a"},{"name":"b"},{"name":"c"},{"name":"d"}]}"#,
            r#"{"entity":"e","fields":[{"name":""}]}"#,
            r#"{"entity":1,"fields":[{"name":"a"}]}"#,
            r#"7"#,
        ] {
            assert_eq!(
                p(&format!(r#"{{"templates":[{bad}]}}"#)).unwrap_err(),
                "activate.templates contains invalid template definitions",
                "{bad}"
            );
        }
        assert_eq!(
            p(&format!(r#"{{"templates":[{t}],"inactivityTtlMs":"1"}}"#)).unwrap_err(),
            "activate.inactivityTtlMs must be a non-negative number (ms)"
        );
        let ok = p(&format!(r#"{{"templates":[{t}],"inactivityTtlMs":0}}"#)).unwrap();
        assert_eq!(ok.inactivity_ttl_ms, Some(0));
        // An unknown encoding is kept: that template is denied, not the request.
        let ok = p(r#"{"templates":[{"entity":"e","fields":[{"name":"a","encoding":"uuid"}]}]}"#)
            .unwrap();
        assert_eq!(ok.templates[0].fields[0].encoding, "uuid");
        assert_eq!(ok.inactivity_ttl_ms, None);
    }

    #[test]
    fn meta_queries() {
        assert_eq!(
            MetaQuery::parse(None, None),
            Ok(MetaQuery {
                settle: false,
                timeout_ms: DEFAULT_TIMEOUT_MS
            })
        );
        assert_eq!(
            MetaQuery::parse(Some("flush"), Some(" 250.7 ")),
            Ok(MetaQuery {
                settle: true,
                timeout_ms: 250
            })
        );
        assert_eq!(
            MetaQuery::parse(Some("flush"), Some("1e9"))
                .unwrap()
                .timeout_ms,
            MAX_TIMEOUT_MS
        );
        assert_eq!(MetaQuery::parse(None, Some("-3")).unwrap().timeout_ms, 0);
        assert_eq!(
            MetaQuery::parse(None, Some(" ")).unwrap().timeout_ms,
            DEFAULT_TIMEOUT_MS
        );
        assert_eq!(
            MetaQuery::parse(Some("now"), None).unwrap_err(),
            "meta.settle must be 'flush' when provided"
        );
        assert_eq!(
            MetaQuery::parse(None, Some("soon")).unwrap_err(),
            "meta.timeoutMs must be a number (ms)"
        );
    }
}
