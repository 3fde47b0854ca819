//! The JSON Lines encoding of key-value operations (see [`crate::jsonl`]).
//!
//! - `get`: value null; output the value read, or null if the key was absent;
//! - `put`, `append`: value the string written; output null;
//! - `delete`: value null; output `true` if the key was present;
//! - `exists`: value null; output `true` if the key is present;
//! - `cas`: value `{"expected": string or null, "new": string}`; output
//!   `{"swapped": bool, "previous": string or null}`.
//!
//! A null `expected` or `previous` means the key is absent.

use serde_json::{Map, Value};

use crate::jsonl::{EncodedOp, JsonCodec};
use crate::models::kv::{KvAction, KvInput, KvModel, KvOutput};

fn string(value: &Value, what: &str) -> Result<String, String> {
    value
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("{what}: expected a string, got {value}"))
}

fn optional_string(value: Option<&Value>, what: &str) -> Result<Option<String>, String> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(v) => string(v, what).map(Some),
    }
}

fn boolean(value: &Value, what: &str) -> Result<bool, String> {
    value
        .as_bool()
        .ok_or_else(|| format!("{what}: expected true or false, got {value}"))
}

/// The fields of a JSON object, refusing anything else and any field not in `allowed`.
fn object<'a>(
    value: &'a Value,
    what: &str,
    allowed: &[&str],
) -> Result<&'a Map<String, Value>, String> {
    let map = value
        .as_object()
        .ok_or_else(|| format!("{what}: expected an object, got {value}"))?;
    if let Some(field) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(format!(
            "{what}: unknown field {field:?} (expected {allowed:?})"
        ));
    }
    Ok(map)
}

fn no_value(op: &str, value: &Value) -> Result<(), String> {
    match value {
        Value::Null => Ok(()),
        v => Err(format!("{op} value: expected null, got {v}")),
    }
}

fn decode_cas(
    value: &Value,
    output: Option<&Value>,
) -> Result<(KvAction, Option<KvOutput>), String> {
    let fields = object(value, "cas value", &["expected", "new"])?;
    let new = fields.get("new").ok_or("cas value: missing \"new\"")?;
    let action = KvAction::Cas {
        expected: optional_string(fields.get("expected"), "cas expected")?,
        new: string(new, "cas new")?,
    };
    let output = match output {
        None => None,
        Some(v) => {
            let fields = object(v, "cas output", &["swapped", "previous"])?;
            let swapped = fields
                .get("swapped")
                .ok_or("cas output: missing \"swapped\"")?;
            Some(KvOutput::Cas {
                swapped: boolean(swapped, "cas swapped")?,
                previous: optional_string(fields.get("previous"), "cas previous")?,
            })
        }
    };
    Ok((action, output))
}

impl JsonCodec for KvModel {
    fn decode(
        &self,
        op: &str,
        key: Option<&str>,
        value: &Value,
        output: Option<&Value>,
    ) -> Result<(KvInput, Option<KvOutput>), String> {
        let key = key.ok_or("the kv model needs a string key")?.to_string();
        let done = |output: Option<&Value>| match output {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(KvOutput::Done)),
            Some(v) => Err(format!("{op} output: expected null, got {v}")),
        };
        let (action, output) = match op {
            "get" => {
                no_value(op, value)?;
                let output = match output {
                    None => None,
                    Some(Value::Null) => Some(KvOutput::Absent),
                    Some(v) => Some(KvOutput::Value(string(v, "get output")?)),
                };
                (KvAction::Get, output)
            }
            "put" => (KvAction::Put(string(value, "put value")?), done(output)?),
            "append" => (
                KvAction::Append(string(value, "append value")?),
                done(output)?,
            ),
            "delete" => {
                no_value(op, value)?;
                let output = output.map(|v| boolean(v, "delete output")).transpose()?;
                let output = output.map(|existed| KvOutput::Deleted { existed });
                (KvAction::Delete, output)
            }
            "exists" => {
                no_value(op, value)?;
                let output = output.map(|v| boolean(v, "exists output")).transpose()?;
                (KvAction::Exists, output.map(KvOutput::Exists))
            }
            "cas" => decode_cas(value, output)?,
            other => {
                return Err(format!(
                    "unknown kv operation {other:?} (get, put, append, delete, exists, cas)"
                ))
            }
        };
        Ok((KvInput { key, action }, output))
    }

    fn encode(&self, input: &KvInput, output: Option<&KvOutput>) -> EncodedOp {
        let optional = |v: &Option<String>| v.as_deref().map_or(Value::Null, Value::from);
        let (op, value) = match &input.action {
            KvAction::Get => ("get", Value::Null),
            KvAction::Put(v) => ("put", Value::from(v.as_str())),
            KvAction::Append(v) => ("append", Value::from(v.as_str())),
            KvAction::Delete => ("delete", Value::Null),
            KvAction::Exists => ("exists", Value::Null),
            KvAction::Cas { expected, new } => {
                let mut fields = Map::new();
                fields.insert("expected".into(), optional(expected));
                fields.insert("new".into(), Value::from(new.as_str()));
                ("cas", Value::Object(fields))
            }
        };
        let output = match output {
            Some(KvOutput::Value(v)) => Value::from(v.as_str()),
            Some(KvOutput::Deleted { existed: b } | KvOutput::Exists(b)) => Value::Bool(*b),
            Some(KvOutput::Cas { swapped, previous }) => {
                let mut fields = Map::new();
                fields.insert("swapped".into(), Value::Bool(*swapped));
                fields.insert("previous".into(), optional(previous));
                Value::Object(fields)
            }
            Some(KvOutput::Absent | KvOutput::Done) | None => Value::Null,
        };
        EncodedOp {
            op: op.to_string(),
            key: Some(input.key.clone()),
            value,
            output,
        }
    }
}
