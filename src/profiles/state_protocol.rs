//! Append-time validation of State Protocol records (state-protocol profile, with or
//! without touch).
//!
//! A record is either a **change** (`headers.operation`) or a **control** message
//! (`headers.control`), never both:
//!
//! - change: only `type`, `key`, `value`, `old_value`, `headers` at the top level (so the
//!   camelCase `oldValue` is rejected); headers only `operation`, `txid`, `timestamp`;
//!   `type` and `key` non-blank strings; `operation` one of insert/update/delete; insert
//!   and update carry `value` (possibly `null`); `txid` a non-blank string; `timestamp`
//!   RFC 3339.
//! - control: only `headers`, holding `control` (snapshot-start, snapshot-end, reset)
//!   and optionally `offset` (`-1` or a 26-character offset).
//!
//! Checks run in the original's order and fail with its messages. Records are stored
//! unchanged; [`StateRecord`] carries what the touch processor needs.

use serde_json::{Map, Value};

use super::js;
use crate::protocol::offset::Offset;

const CHANGE_KEYS: &[&str] = &["type", "key", "value", "old_value", "headers"];
const CHANGE_HEADER_KEYS: &[&str] = &["operation", "txid", "timestamp"];
const CONTROL_KEYS: &[&str] = &["headers"];
const CONTROL_HEADER_KEYS: &[&str] = &["control", "offset"];

/// A change record's operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Insert,
    Update,
    Delete,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Insert => "insert",
            Operation::Update => "update",
            Operation::Delete => "delete",
        }
    }
}

/// A control record's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlKind {
    SnapshotStart,
    SnapshotEnd,
    Reset,
}

impl ControlKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ControlKind::SnapshotStart => "snapshot-start",
            ControlKind::SnapshotEnd => "snapshot-end",
            ControlKind::Reset => "reset",
        }
    }
}

/// A validated change record.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeRecord {
    /// The entity (`type`), e.g. `public.todos`.
    pub entity: String,
    /// The row key, as sent (not trimmed).
    pub key: String,
    pub operation: Operation,
    /// The after image, when the record has a `value` key (which may hold `null`).
    pub value: Option<Value>,
    /// The before image, when the record has an `old_value` key (which may hold `null`).
    pub old_value: Option<Value>,
    pub txid: Option<String>,
    pub timestamp: Option<String>,
}

/// A validated control record.
#[derive(Debug, Clone, PartialEq)]
pub struct ControlRecord {
    pub control: ControlKind,
    /// `headers.offset` as sent (`-1` or a 26-character offset).
    pub offset: Option<String>,
}

/// A State Protocol record that passed append-time validation.
#[derive(Debug, Clone, PartialEq)]
pub enum StateRecord {
    Change(Box<ChangeRecord>),
    Control(ControlRecord),
}

impl StateRecord {
    /// The change, if this is one (control records produce no touches).
    pub fn as_change(&self) -> Option<&ChangeRecord> {
        match self {
            StateRecord::Change(c) => Some(c),
            StateRecord::Control(_) => None,
        }
    }
}

fn non_blank(v: Option<&Value>, path: &str) -> Result<String, String> {
    match v {
        Some(Value::String(s)) if !js::trim(s).is_empty() => Ok(s.clone()),
        _ => Err(format!("{path} must be a non-empty string")),
    }
}

fn change(
    record: &Map<String, Value>,
    headers: &Map<String, Value>,
) -> Result<StateRecord, String> {
    js::reject_unknown_keys(record, CHANGE_KEYS, "state-protocol record")?;
    js::reject_unknown_keys(headers, CHANGE_HEADER_KEYS, "state-protocol record.headers")?;
    let entity = non_blank(record.get("type"), "state-protocol record.type")?;
    let key = non_blank(record.get("key"), "state-protocol record.key")?;
    let operation = match headers.get("operation") {
        Some(Value::String(s)) if s == "insert" => Operation::Insert,
        Some(Value::String(s)) if s == "update" => Operation::Update,
        Some(Value::String(s)) if s == "delete" => Operation::Delete,
        _ => {
            return Err(
                "state-protocol record.headers.operation must be insert, update, or delete".into(),
            )
        }
    };
    if operation != Operation::Delete && !record.contains_key("value") {
        return Err(format!(
            "state-protocol {} records must include value",
            operation.as_str()
        ));
    }
    let txid = match headers.get("txid") {
        None => None,
        some => Some(non_blank(some, "state-protocol record.headers.txid")?),
    };
    let timestamp = match headers.get("timestamp") {
        None => None,
        Some(Value::String(s)) if js::is_date_time_string(s) => Some(s.clone()),
        Some(_) => {
            return Err(
                "state-protocol record.headers.timestamp must be a valid RFC 3339 timestamp".into(),
            )
        }
    };
    Ok(StateRecord::Change(Box::new(ChangeRecord {
        entity,
        key,
        operation,
        value: record.get("value").cloned(),
        old_value: record.get("old_value").cloned(),
        txid,
        timestamp,
    })))
}

fn control(
    record: &Map<String, Value>,
    headers: &Map<String, Value>,
) -> Result<StateRecord, String> {
    js::reject_unknown_keys(record, CONTROL_KEYS, "state-protocol record")?;
    js::reject_unknown_keys(
        headers,
        CONTROL_HEADER_KEYS,
        "state-protocol record.headers",
    )?;
    let control = match headers.get("control") {
        Some(Value::String(s)) if s == "snapshot-start" => ControlKind::SnapshotStart,
        Some(Value::String(s)) if s == "snapshot-end" => ControlKind::SnapshotEnd,
        Some(Value::String(s)) if s == "reset" => ControlKind::Reset,
        _ => return Err(
            "state-protocol record.headers.control must be snapshot-start, snapshot-end, or reset"
                .into(),
        ),
    };
    let offset = match headers.get("offset") {
        None => None,
        // The original accepts `-1` and 26-character offsets only (not `now`, nor the
        // reference server's zero alias).
        Some(Value::String(s)) if s == "-1" || Offset::decode(s).is_ok() => Some(s.clone()),
        Some(_) => {
            return Err(
                "state-protocol record.headers.offset must be a valid stream offset string".into(),
            )
        }
    };
    Ok(StateRecord::Control(ControlRecord { control, offset }))
}

/// Validates one record appended to a state-protocol stream.
pub fn validate_state_protocol(record: &Value) -> Result<StateRecord, String> {
    let Value::Object(record) = record else {
        return Err("state-protocol records must be JSON objects".into());
    };
    let Some(Value::Object(headers)) = record.get("headers") else {
        return Err("state-protocol record.headers must be an object".into());
    };
    match (
        headers.contains_key("control"),
        headers.contains_key("operation"),
    ) {
        (true, true) => {
            Err("state-protocol record.headers cannot mix control and operation".into())
        }
        (true, false) => control(record, headers),
        (false, true) => change(record, headers),
        (false, false) => {
            Err("state-protocol record.headers must contain operation or control".into())
        }
    }
}
