//! The fine keys one State Protocol change touches for one active template.
//!
//! A template is a query shape: an entity and up to three equality fields, e.g.
//! `todos WHERE tenantId = ? AND userId = ?`. A client running such a query waits on
//! keys derived from its argument tuple; when a change lands, [`fine_keys`] tells which
//! of those keys the change can have invalidated. Three kinds exist:
//!
//! - the **watch** key of every tuple the row was in before or is in after the change:
//!   the insert's after image, the delete's before image, both images of an update;
//! - the **membership** key of a tuple the row enters or leaves: on insert and delete
//!   as for watch keys, on update only when the tuple changes (an update that keeps the
//!   row in its tuple leaves the result set's membership alone);
//! - the **projected-field** key of every other field that changed while the row stayed
//!   in its tuple, so a client reading only some columns sleeps through updates of the
//!   others. Only fields whose before and after values are both scalar (string, number,
//!   boolean, `null` or absent) count; a missing field differs from a `null` one.
//!
//! An update whose before image is absent, not an object, or lacks an encodable value
//! for a template field is handled by the stream's [`OnMissingBefore`]: `error` fails
//! (the caller stops processing, as the original does), `skipBefore` emits the after
//! image's watch and membership keys plus a projected-field key for every scalar
//! non-template field of the after image, and `coarse` emits nothing fine.
//!
//! The table key, which every change touches, is the caller's; so are the activation
//! boundary (templates ignore changes before they were activated), budgets and
//! coalescing. When fine touches degrade to template granularity the caller touches
//! [`ActiveTemplate::template_key`] instead of calling [`fine_keys`].
//!
//! This follows the original's touch processor (0.1.11) exactly, including two quirks:
//! within one kind, keys are de-duplicated by their 32-bit journal id (a collision keeps
//! one key, the later one's value in the earlier one's place), and an `error` policy
//! fails even when the after image cannot produce a key either.

use serde_json::{Map, Value};

use super::keys::{self, Encoding};
use crate::profiles::js;
use crate::profiles::state_protocol::{ChangeRecord, Operation};
use crate::profiles::touch::OnMissingBefore;

/// One equality field of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateField {
    pub name: String,
    pub encoding: Encoding,
}

/// An active template of a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveTemplate {
    /// [`keys::template_id`] of the entity and the field names.
    pub id: u64,
    pub entity: String,
    /// Sorted by name in UTF-16 code-unit order (JavaScript's `<`); arguments follow
    /// this order.
    pub fields: Vec<TemplateField>,
}

impl ActiveTemplate {
    /// A template of `entity` over `fields` in any order: sorts them (stably) and
    /// computes the id. Validation (1–3 distinct non-blank names) is activation's.
    pub fn new(entity: impl Into<String>, mut fields: Vec<TemplateField>) -> ActiveTemplate {
        fields.sort_by(|a, b| js::utf16_cmp(&a.name, &b.name));
        let entity = entity.into();
        let names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
        let id = keys::template_id(&entity, &names);
        ActiveTemplate { id, entity, fields }
    }

    /// The key this template's changes touch at template granularity.
    pub fn template_key(&self) -> u64 {
        keys::template_key(self.id)
    }

    /// The encoded arguments of a row image: `None` unless it is an object with an
    /// encodable value for every field.
    fn args(&self, image: Option<&Value>) -> Option<Vec<String>> {
        let Some(Value::Object(row)) = image else {
            return None;
        };
        self.fields
            .iter()
            .map(|f| keys::encode_arg(f.encoding, row.get(&f.name)?))
            .collect()
    }
}

/// Which kind of fine key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FineKeyKind {
    Watch,
    Membership,
    ProjectedField,
}

/// A fine key a change touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FineKey {
    pub kind: FineKeyKind,
    pub key: u64,
}

impl FineKey {
    /// The journal id ([`keys::key_id`]).
    pub fn id(&self) -> u32 {
        keys::key_id(self.key)
    }
}

/// An update the `error` policy refuses; the messages are the original's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeriveError {
    /// The record has no `old_value`.
    #[error("missing old_value for update (entity={entity}, templateId={template_id})")]
    MissingOldValue { entity: String, template_id: String },
    /// `old_value` is `null`, not an object, or lacks an encodable template field.
    #[error(
        "old_value missing required fields for update (entity={entity}, templateId={template_id})"
    )]
    OldValueMissingFields { entity: String, template_id: String },
}

/// Keys of one kind, de-duplicated by journal id as the original's `Map` does.
#[derive(Default)]
struct KeySet(Vec<u64>);

impl KeySet {
    fn set(&mut self, key: u64) {
        let id = keys::key_id(key);
        match self.0.iter_mut().find(|k| keys::key_id(**k) == id) {
            Some(slot) => *slot = key,
            None => self.0.push(key),
        }
    }
}

/// Whether a field value counts for projected-field keys (absent is `None`).
fn is_scalar(v: Option<&Value>) -> bool {
    !matches!(v, Some(Value::Array(_) | Value::Object(_)))
}

/// `===` on scalar field values (absent is `None`): numbers by value, so `1` equals
/// `1.0` and `0` equals `-0`.
fn same_value(a: Option<&Value>, b: Option<&Value>) -> bool {
    match (a, b) {
        (Some(Value::Number(_)), Some(Value::Number(_))) => {
            a.and_then(js::as_f64) == b.and_then(js::as_f64)
        }
        _ => a == b,
    }
}

/// Non-template fields whose scalar value differs between the images, in the order the
/// original visits them (the before image's keys, then the after image's new ones).
fn changed_fields<'a>(
    before: &'a Map<String, Value>,
    after: &'a Map<String, Value>,
    template: &ActiveTemplate,
) -> Vec<&'a str> {
    let mut names: Vec<&str> = js::entries(before).into_iter().map(|(k, _)| k).collect();
    for (k, _) in js::entries(after) {
        if !before.contains_key(k) {
            names.push(k);
        }
    }
    names
        .into_iter()
        .filter(|name| !template.fields.iter().any(|f| f.name == *name))
        .filter(|name| {
            let (b, a) = (before.get(*name), after.get(*name));
            is_scalar(b) && is_scalar(a) && !same_value(b, a)
        })
        .collect()
}

/// Non-template fields of the after image with a scalar value, in its key order.
fn scalar_fields<'a>(after: &'a Map<String, Value>, template: &ActiveTemplate) -> Vec<&'a str> {
    js::entries(after)
        .into_iter()
        .filter(|(k, v)| !template.fields.iter().any(|f| f.name == *k) && is_scalar(Some(v)))
        .map(|(k, _)| k)
        .collect()
}

/// The fine keys `change` touches for `template`: watch keys, then membership keys,
/// then projected-field keys (module docs). A change to another entity touches none.
pub fn fine_keys(
    change: &ChangeRecord,
    template: &ActiveTemplate,
    on_missing_before: OnMissingBefore,
) -> Result<Vec<FineKey>, DeriveError> {
    if change.entity != template.entity {
        return Ok(Vec::new());
    }
    let id = template.id;
    let after_args = template.args(change.value.as_ref());
    let before_args = template.args(change.old_value.as_ref());
    let mut watch = KeySet::default();
    let mut membership = KeySet::default();
    let mut projected = KeySet::default();

    match change.operation {
        Operation::Insert => {
            if let Some(args) = &after_args {
                watch.set(keys::watch_key(id, args));
                membership.set(keys::membership_key(id, args));
            }
        }
        Operation::Delete => {
            if let Some(args) = &before_args {
                watch.set(keys::watch_key(id, args));
                membership.set(keys::membership_key(id, args));
            }
        }
        Operation::Update => match &before_args {
            Some(before) => {
                let watch_before = keys::watch_key(id, before);
                watch.set(watch_before);
                let member_before = keys::membership_key(id, before);
                match &after_args {
                    Some(after) => {
                        let watch_after = keys::watch_key(id, after);
                        watch.set(watch_after);
                        let member_after = keys::membership_key(id, after);
                        if member_before != member_after {
                            membership.set(member_before);
                            membership.set(member_after);
                        } else if watch_before == watch_after {
                            if let (Some(Value::Object(b)), Some(Value::Object(a))) =
                                (&change.old_value, &change.value)
                            {
                                for field in changed_fields(b, a, template) {
                                    projected.set(keys::projected_field_key(id, field, after));
                                }
                            }
                        }
                    }
                    // Left the template's tuples (a field became null or unencodable).
                    None => membership.set(member_before),
                }
            }
            None => {
                let entity = change.entity.clone();
                let template_id = keys::hex16(id);
                match on_missing_before {
                    OnMissingBefore::Error if change.old_value.is_none() => {
                        return Err(DeriveError::MissingOldValue {
                            entity,
                            template_id,
                        })
                    }
                    OnMissingBefore::Error => {
                        return Err(DeriveError::OldValueMissingFields {
                            entity,
                            template_id,
                        })
                    }
                    OnMissingBefore::Coarse => {}
                    OnMissingBefore::SkipBefore => {
                        if let Some(after) = &after_args {
                            watch.set(keys::watch_key(id, after));
                            membership.set(keys::membership_key(id, after));
                            if let Some(Value::Object(a)) = &change.value {
                                for field in scalar_fields(a, template) {
                                    projected.set(keys::projected_field_key(id, field, after));
                                }
                            }
                        }
                    }
                }
            }
        },
    }

    let tagged =
        |set: KeySet, kind: FineKeyKind| set.0.into_iter().map(move |key| FineKey { kind, key });
    Ok(tagged(watch, FineKeyKind::Watch)
        .chain(tagged(membership, FineKeyKind::Membership))
        .chain(tagged(projected, FineKeyKind::ProjectedField))
        .collect())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use FineKeyKind::{Membership as M, ProjectedField as P, Watch as W};
    use OnMissingBefore::{Coarse, Error, SkipBefore};

    fn template(entity: &str, fields: &[(&str, Encoding)]) -> ActiveTemplate {
        ActiveTemplate::new(
            entity,
            fields
                .iter()
                .map(|(name, encoding)| TemplateField {
                    name: (*name).to_string(),
                    encoding: *encoding,
                })
                .collect(),
        )
    }

    /// `posts` by tenantId and userId, as in the original's processor tests.
    fn posts() -> ActiveTemplate {
        template(
            "posts",
            &[("userId", Encoding::String), ("tenantId", Encoding::String)],
        )
    }

    /// `message` by an int64 id, as in the original's projected-field test.
    fn messages() -> ActiveTemplate {
        template("message", &[("id", Encoding::Int64)])
    }

    /// A change; `None` leaves the image's key out of the record.
    fn change(op: Operation, old_value: Option<Value>, value: Option<Value>) -> ChangeRecord {
        ChangeRecord {
            entity: "posts".into(),
            key: "post:1".into(),
            operation: op,
            value,
            old_value,
            txid: None,
            timestamp: None,
        }
    }

    fn message_change(
        op: Operation,
        old_value: Option<Value>,
        value: Option<Value>,
    ) -> ChangeRecord {
        ChangeRecord {
            entity: "message".into(),
            ..change(op, old_value, value)
        }
    }

    /// An expected key: kind, projected field (`""` for none), arguments.
    type Want<'a> = (FineKeyKind, &'a str, &'a [&'a str]);

    fn expected(tpl: &ActiveTemplate, want: &[Want]) -> Vec<FineKey> {
        want.iter()
            .map(|(kind, field, args)| FineKey {
                kind: *kind,
                key: match kind {
                    W => keys::watch_key(tpl.id, args),
                    M => keys::membership_key(tpl.id, args),
                    P => keys::projected_field_key(tpl.id, field, args),
                },
            })
            .collect()
    }

    fn row(tenant: &str, user: &str, title: &str) -> Option<Value> {
        Some(json!({"tenantId": tenant, "userId": user, "title": title}))
    }

    #[test]
    fn template_fields_are_sorted_and_the_id_ignores_encodings() {
        let tpl = posts();
        let names: Vec<&str> = tpl.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["tenantId", "userId"]);
        assert_eq!(tpl.id, keys::template_id("posts", &["tenantId", "userId"]));
        let other = template(
            "posts",
            &[("tenantId", Encoding::Int64), ("userId", Encoding::Bytes)],
        );
        assert_eq!(other.id, tpl.id);
        assert_eq!(tpl.template_key(), keys::template_key(tpl.id));
        // The golden template of the key tests.
        let todos = template(
            "public.todos",
            &[
                ("userId", Encoding::String),
                ("status", Encoding::String),
                ("tenantId", Encoding::String),
            ],
        );
        assert_eq!(keys::hex16(todos.id), "ddd2330fdab379da");
        // UTF-16 order: U+FF5E sorts after U+1F600's surrogates, unlike code points.
        let t = template(
            "e",
            &[
                ("\u{ff5e}", Encoding::String),
                ("\u{1f600}", Encoding::String),
            ],
        );
        assert_eq!(t.fields[0].name, "\u{1f600}");
        // Code-unit order puts upper case first.
        let t = template("e", &[("b", Encoding::String), ("Z", Encoding::String)]);
        assert_eq!(t.fields[0].name, "Z");
    }

    #[test]
    fn posts_rules() {
        use Operation::{Delete, Insert, Update};
        let tpl = posts();
        let cases: Vec<(&str, ChangeRecord, OnMissingBefore, Vec<Want>)> = vec![
            (
                "insert: watch and membership of the after tuple",
                change(Insert, None, row("t1", "u1", "a")),
                Coarse,
                vec![(W, "", &["t1", "u1"]), (M, "", &["t1", "u1"])],
            ),
            (
                "insert ignores old_value",
                change(Insert, row("t9", "u9", "x"), row("t1", "u1", "a")),
                Error,
                vec![(W, "", &["t1", "u1"]), (M, "", &["t1", "u1"])],
            ),
            (
                "insert without an encodable field touches nothing fine",
                change(
                    Insert,
                    None,
                    Some(json!({"tenantId": "t1", "userId": null})),
                ),
                Error,
                vec![],
            ),
            (
                "insert of a non-object",
                change(Insert, None, Some(json!(["t1", "u1"]))),
                Error,
                vec![],
            ),
            (
                "delete: watch and membership of the before tuple",
                change(Delete, row("t1", "u1", "a"), None),
                Coarse,
                vec![(W, "", &["t1", "u1"]), (M, "", &["t1", "u1"])],
            ),
            (
                "delete ignores value",
                change(Delete, row("t1", "u1", "a"), row("t2", "u2", "b")),
                Coarse,
                vec![(W, "", &["t1", "u1"]), (M, "", &["t1", "u1"])],
            ),
            (
                "delete without old_value: nothing, whatever the policy",
                change(Delete, None, None),
                Error,
                vec![],
            ),
            (
                "update moving tuples: both watch keys, both membership keys",
                change(
                    Update,
                    Some(json!({"tenantId": "t1", "userId": "123"})),
                    Some(json!({"tenantId": "t1", "userId": "456"})),
                ),
                Coarse,
                vec![
                    (W, "", &["t1", "123"]),
                    (W, "", &["t1", "456"]),
                    (M, "", &["t1", "123"]),
                    (M, "", &["t1", "456"]),
                ],
            ),
            (
                "update within the tuple: one watch key, projected keys of changed fields",
                change(Update, row("t1", "u1", "before"), row("t1", "u1", "after")),
                Coarse,
                vec![(W, "", &["t1", "u1"]), (P, "title", &["t1", "u1"])],
            ),
            (
                "update changing nothing: the watch key only",
                change(Update, row("t1", "u1", "same"), row("t1", "u1", "same")),
                Coarse,
                vec![(W, "", &["t1", "u1"])],
            ),
            (
                "update leaving the tuples (a field became null)",
                change(
                    Update,
                    row("t1", "u1", "a"),
                    Some(json!({"tenantId": "t1", "userId": null, "title": "b"})),
                ),
                Coarse,
                vec![(W, "", &["t1", "u1"]), (M, "", &["t1", "u1"])],
            ),
            (
                "update without old_value, coarse: nothing fine",
                change(Update, None, row("t1", "456", "a")),
                Coarse,
                vec![],
            ),
            (
                "update without old_value, skipBefore: after keys and every scalar field",
                change(
                    Update,
                    None,
                    Some(json!({
                        "title": "a", "userId": "u1", "n": 1, "gone": null,
                        "tags": ["x"], "meta": {"k": 1}, "tenantId": "t1", "ok": true
                    })),
                ),
                SkipBefore,
                vec![
                    (W, "", &["t1", "u1"]),
                    (M, "", &["t1", "u1"]),
                    (P, "title", &["t1", "u1"]),
                    (P, "n", &["t1", "u1"]),
                    (P, "gone", &["t1", "u1"]),
                    (P, "ok", &["t1", "u1"]),
                ],
            ),
            (
                "update with a null old_value, skipBefore",
                change(
                    Update,
                    Some(Value::Null),
                    Some(json!({"tenantId": "t1", "userId": "u1"})),
                ),
                SkipBefore,
                vec![(W, "", &["t1", "u1"]), (M, "", &["t1", "u1"])],
            ),
            (
                "update entering the tuples from a null field is a missing before image",
                change(
                    Update,
                    Some(json!({"tenantId": "t1", "userId": null})),
                    Some(json!({"tenantId": "t1", "userId": "u1"})),
                ),
                SkipBefore,
                vec![(W, "", &["t1", "u1"]), (M, "", &["t1", "u1"])],
            ),
            (
                "update entering the tuples, coarse",
                change(
                    Update,
                    Some(json!({"tenantId": "t1", "userId": null})),
                    Some(json!({"tenantId": "t1", "userId": "u1"})),
                ),
                Coarse,
                vec![],
            ),
            (
                "update with neither image encodable, skipBefore",
                change(Update, Some(json!({})), Some(json!({"tenantId": 1.5}))),
                SkipBefore,
                vec![],
            ),
        ];
        for (name, ch, policy, want) in cases {
            let got = fine_keys(&ch, &tpl, policy);
            assert_eq!(got, Ok(expected(&tpl, &want)), "{name}");
        }
    }

    #[test]
    fn the_error_policy_fails_updates_without_a_usable_before_image() {
        use Operation::Update;
        let tpl = posts();
        let hex = keys::hex16(tpl.id);
        let missing = fine_keys(&change(Update, None, row("t1", "u1", "a")), &tpl, Error);
        assert_eq!(
            missing.clone().map_err(|e| e.to_string()),
            Err(format!(
                "missing old_value for update (entity=posts, templateId={hex})"
            ))
        );
        assert!(matches!(missing, Err(DeriveError::MissingOldValue { .. })));
        let fields = format!(
            "old_value missing required fields for update (entity=posts, templateId={hex})"
        );
        for old in [
            json!(null),
            json!("t1"),
            json!([]),
            json!({"tenantId": "t1"}),
            json!({"tenantId": "t1", "userId": {"id": 1}}),
        ] {
            let got = fine_keys(
                &change(Update, Some(old.clone()), row("t1", "u1", "a")),
                &tpl,
                Error,
            );
            assert_eq!(got.map_err(|e| e.to_string()), Err(fields.clone()), "{old}");
        }
        // Fails even when the after image gives no key either.
        let got = fine_keys(
            &change(Update, Some(json!({})), Some(json!({}))),
            &tpl,
            Error,
        );
        assert!(matches!(
            got,
            Err(DeriveError::OldValueMissingFields { .. })
        ));
        // A usable before image never fails, even when the after image is unusable.
        let got = fine_keys(
            &change(Update, row("t1", "u1", "a"), Some(json!(null))),
            &tpl,
            Error,
        );
        assert_eq!(
            got,
            Ok(expected(
                &tpl,
                &[(W, "", &["t1", "u1"]), (M, "", &["t1", "u1"])]
            ))
        );
    }

    /// The original's `touch_processor.test.ts`: "membership keys only wake on
    /// membership changes" (template `posts` by tenantId).
    #[test]
    fn membership_scenario_of_the_original() {
        use Operation::{Insert, Update};
        let tpl = template("posts", &[("tenantId", Encoding::String)]);
        let t1 = keys::membership_key(tpl.id, &["t1"]);
        let t2 = keys::membership_key(tpl.id, &["t2"]);
        let touched = |ch: ChangeRecord| -> Vec<u64> {
            fine_keys(&ch, &tpl, Coarse)
                .unwrap()
                .into_iter()
                .map(|k| k.key)
                .collect()
        };
        let title_only = touched(change(
            Update,
            Some(json!({"tenantId": "t1", "title": "before"})),
            Some(json!({"tenantId": "t1", "title": "after"})),
        ));
        assert!(!title_only.contains(&t1));
        let inserted = touched(change(
            Insert,
            None,
            Some(json!({"tenantId": "t1", "title": "new"})),
        ));
        assert!(inserted.contains(&t1));
        let moved = touched(change(
            Update,
            Some(json!({"tenantId": "t1", "title": "new"})),
            Some(json!({"tenantId": "t2", "title": "new"})),
        ));
        assert!(moved.contains(&t1) && moved.contains(&t2));
    }

    /// The original's "projected field keys stay quiet on irrelevant updates and wake on
    /// watched field changes" (template `message` by int64 id; the client waits on the
    /// membership key of id 1 and the projected key of `author`).
    #[test]
    fn projected_field_scenario_of_the_original() {
        use Operation::{Delete, Update};
        let tpl = messages();
        let waited = [
            keys::membership_key(tpl.id, &["1"]),
            keys::projected_field_key(tpl.id, "author", &["1"]),
        ];
        let wakes = |ch: ChangeRecord| -> bool {
            fine_keys(&ch, &tpl, Coarse)
                .unwrap()
                .iter()
                .any(|k| waited.contains(&k.key))
        };
        assert!(!wakes(message_change(
            Update,
            Some(json!({"id": 2, "author": "alice", "text": "before"})),
            Some(json!({"id": 2, "author": "bob", "text": "after"})),
        )));
        assert!(!wakes(message_change(
            Update,
            Some(json!({"id": 1, "author": "alice", "text": "before"})),
            Some(json!({"id": 1, "author": "alice", "text": "after"})),
        )));
        assert!(wakes(message_change(
            Update,
            Some(json!({"id": 1, "author": "alice", "text": "after"})),
            Some(json!({"id": 1, "author": "bob", "text": "after"})),
        )));
        assert!(wakes(message_change(
            Delete,
            Some(json!({"id": 1, "author": "bob", "text": "after"})),
            None,
        )));
    }

    #[test]
    fn projected_fields_compare_scalars_as_javascript_does() {
        use Operation::Update;
        let tpl = messages();
        let projected = |before: Value, after: Value| -> Vec<FineKey> {
            fine_keys(
                &message_change(Update, Some(before), Some(after)),
                &tpl,
                Coarse,
            )
            .unwrap()
            .into_iter()
            .filter(|k| k.kind == P)
            .collect()
        };
        let fields = |names: &[&str]| -> Vec<FineKey> {
            names
                .iter()
                .map(|n| FineKey {
                    kind: P,
                    key: keys::projected_field_key(tpl.id, n, &["1"]),
                })
                .collect()
        };
        // Numbers by value; the tuple holds across 1 and "1" for int64.
        assert_eq!(
            projected(json!({"id": 1, "n": 1}), json!({"id": "1", "n": 1.0})),
            fields(&[])
        );
        assert_eq!(
            projected(json!({"id": 1, "n": 0.0}), json!({"id": 1, "n": -0.0})),
            fields(&[])
        );
        assert_eq!(
            projected(json!({"id": 1, "n": 1}), json!({"id": 1, "n": 2})),
            fields(&["n"])
        );
        // Type changes, null against absent, appearing and vanishing fields.
        assert_eq!(
            projected(
                json!({"id": 1, "a": "1", "b": null, "c": "x"}),
                json!({"id": 1, "a": 1, "d": false})
            ),
            fields(&["a", "b", "c", "d"])
        );
        // Arrays and objects on either side never count.
        assert_eq!(
            projected(
                json!({"id": 1, "tags": ["a"], "meta": {"v": 1}, "s": "x"}),
                json!({"id": 1, "tags": ["b"], "meta": "flat", "s": [1]})
            ),
            fields(&[])
        );
        // Order: the before image's keys (array indexes first, as Object.keys), then
        // the after image's new keys.
        assert_eq!(
            projected(
                json!({"id": 1, "b": 1, "7": 1, "a": 1}),
                json!({"id": 1, "z": 1, "b": 2, "7": 2, "a": 2, "10": 1})
            ),
            fields(&["7", "b", "a", "10", "z"])
        );
    }

    #[test]
    fn other_entities_touch_nothing() {
        let mut ch = change(Operation::Insert, None, row("t1", "u1", "a"));
        ch.entity = "public.posts".into();
        assert_eq!(fine_keys(&ch, &posts(), Error), Ok(vec![]));
    }

    #[test]
    fn keys_of_one_kind_collapse_on_a_journal_id_collision() {
        // Two single-argument watch keys with equal low 32 bits (found by search).
        let tpl = template("e", &[("k", Encoding::String)]);
        let (a, b) = COLLIDING_ARGS;
        let (ka, kb) = (keys::watch_key(tpl.id, &[a]), keys::watch_key(tpl.id, &[b]));
        assert_ne!(ka, kb);
        assert_eq!(keys::key_id(ka), keys::key_id(kb));
        let mut ch = change(
            Operation::Update,
            Some(json!({"k": a})),
            Some(json!({"k": b})),
        );
        ch.entity = "e".into();
        let got = fine_keys(&ch, &tpl, Coarse).unwrap();
        let watch: Vec<u64> = got.iter().filter(|k| k.kind == W).map(|k| k.key).collect();
        assert_eq!(watch, [kb]);
        assert_eq!(got.iter().filter(|k| k.kind == M).count(), 2);
    }

    const COLLIDING_ARGS: (&str, &str) = ("k5151", "k17367");
}
