//! A key-value store with `get`, `put` and `append`, partitioned by key.
//!
//! A missing key reads as the empty string. `put` sets a value, `append` concatenates, and
//! `get` returns the current value. Keys are independent objects, so the history is split by
//! key and every key is checked on its own (P-compositionality).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use crate::history::Operation;
use crate::jsonl::{EncodedOp, JsonCodec};
use crate::model::{Model, Partition};
use crate::models::observed::ObservedValues;

/// What a key-value operation does.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KvAction {
    /// Read the value.
    Get,
    /// Replace the value.
    Put(String),
    /// Append to the value.
    Append(String),
}

/// A key-value operation: an action on one key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KvInput {
    /// The key.
    pub key: String,
    /// The action.
    pub action: KvAction,
}

/// A key-value operation's observed result.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KvOutput {
    /// The value a `get` returned (`""` if absent).
    Value(String),
    /// A `put` or `append` completed.
    Done,
}

/// The value of one key, as the search sees it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KvState {
    /// The value itself (the plain model).
    Value(String),
    /// The first `len` bytes of read value number `value` (the specialized model; see
    /// [`ObservedValues`]).
    Observed {
        /// Index into the sorted values reads returned.
        value: u32,
        /// Length in bytes.
        len: u32,
    },
    /// A value that is not a prefix of anything a read returned (the specialized model): no
    /// read can succeed until a put replaces it.
    Unobservable,
}

/// The key-value model. The state is the value of the one key of a partition.
///
/// When checking, the model specializes itself to each key's reads (see [`ObservedValues`]):
/// values that no read can ever return are merged into one state, which keeps the search
/// from telling apart orders of appends that a later put erases unobserved.
#[derive(Clone, Debug, Default)]
pub struct KvModel {
    observed: Option<Arc<ObservedValues>>,
}

/// The sharded key-value store has the same per-key semantics: shards only decide which
/// group serves a key, which is invisible to clients.
pub type ShardedKvModel = KvModel;

impl KvModel {
    /// The plain model.
    pub fn new() -> Self {
        Self::default()
    }

    fn observed_state(observed: &ObservedValues, found: Option<(u32, u32)>) -> KvState {
        let _ = observed;
        match found {
            Some((value, len)) => KvState::Observed { value, len },
            None => KvState::Unobservable,
        }
    }

    fn step_observed(
        observed: &ObservedValues,
        state: &KvState,
        action: &KvAction,
        output: Option<&KvOutput>,
    ) -> Option<KvState> {
        match (action, output, state) {
            (KvAction::Get, None, _) => Some(state.clone()),
            (KvAction::Get, Some(KvOutput::Value(v)), KvState::Observed { value, len }) => {
                (observed.prefix(*value, *len) == v).then(|| state.clone())
            }
            (KvAction::Get, Some(_), _) => None,
            (KvAction::Put(v), None | Some(KvOutput::Done), _) => {
                Some(Self::observed_state(observed, observed.locate(v)))
            }
            (
                KvAction::Append(a),
                None | Some(KvOutput::Done),
                KvState::Observed { value, len },
            ) => Some(Self::observed_state(
                observed,
                observed.locate_concat(*value, *len, a),
            )),
            (KvAction::Append(_), None | Some(KvOutput::Done), KvState::Unobservable) => {
                Some(KvState::Unobservable)
            }
            (_, Some(KvOutput::Value(_)), _) => None,
            (_, _, KvState::Value(_)) => unreachable!("a plain state in a specialized kv model"),
        }
    }

    fn step_plain(state: &str, action: &KvAction, output: Option<&KvOutput>) -> Option<KvState> {
        match (action, output) {
            (KvAction::Get, None) => Some(KvState::Value(state.to_string())),
            (KvAction::Get, Some(KvOutput::Value(v))) => {
                (v == state).then(|| KvState::Value(state.to_string()))
            }
            (KvAction::Put(v), None | Some(KvOutput::Done)) => Some(KvState::Value(v.clone())),
            (KvAction::Append(v), None | Some(KvOutput::Done)) => {
                let mut next = String::with_capacity(state.len() + v.len());
                next.push_str(state);
                next.push_str(v);
                Some(KvState::Value(next))
            }
            // An output of the wrong kind can never be produced.
            (_, Some(_)) => None,
        }
    }
}

impl Model for KvModel {
    type State = KvState;
    type Input = KvInput;
    type Output = KvOutput;

    fn init(&self) -> Self::State {
        match &self.observed {
            Some(observed) => Self::observed_state(observed, observed.locate("")),
            None => KvState::Value(String::new()),
        }
    }

    fn step(
        &self,
        state: &Self::State,
        input: &Self::Input,
        output: Option<&Self::Output>,
    ) -> Option<Self::State> {
        match (&self.observed, state) {
            (None, KvState::Value(value)) => Self::step_plain(value, &input.action, output),
            (None, _) => unreachable!("a specialized state in a plain kv model"),
            (Some(observed), _) => Self::step_observed(observed, state, &input.action, output),
        }
    }

    fn specialize(&self, ops: &[&Operation<Self::Input, Self::Output>]) -> Option<Self> {
        let reads = ops.iter().filter_map(|op| match op.output() {
            Some(KvOutput::Value(v)) => Some(v.clone()),
            _ => None,
        });
        Some(Self {
            observed: Some(Arc::new(ObservedValues::new(reads))),
        })
    }

    fn partition(&self, history: &[Operation<Self::Input, Self::Output>]) -> Vec<Partition> {
        let mut by_key: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (index, op) in history.iter().enumerate() {
            by_key.entry(op.input.key.as_str()).or_default().push(index);
        }
        by_key
            .into_iter()
            .map(|(key, ops)| Partition {
                name: format!("key {key:?}"),
                ops,
            })
            .collect()
    }

    fn is_read_only(&self, input: &Self::Input, _output: Option<&Self::Output>) -> bool {
        matches!(input.action, KvAction::Get)
    }

    /// A get that must return `v` can only become legal if another pending put writes a
    /// prefix of `v`, or if the current value is a prefix of `v` and the rest of `v` starts
    /// with the value of another pending append (the next one it needs).
    fn may_become_legal(
        &self,
        state: &Self::State,
        input: &Self::Input,
        output: Option<&Self::Output>,
        others: &[(&Self::Input, Option<&Self::Output>)],
    ) -> bool {
        let (KvAction::Get, Some(KvOutput::Value(target))) = (&input.action, output) else {
            return true;
        };
        let current = match (state, &self.observed) {
            (KvState::Value(v), _) => Some(v.as_str()),
            (KvState::Observed { value, len }, Some(observed)) => {
                Some(observed.prefix(*value, *len))
            }
            (KvState::Observed { .. }, None) => return true,
            (KvState::Unobservable, _) => None,
        };
        let rest = current.and_then(|current| target.strip_prefix(current));
        others.iter().any(|(other, _)| match (&other.action, rest) {
            (KvAction::Put(v), _) => target.starts_with(v.as_str()),
            (KvAction::Append(v), Some(rest)) => rest.starts_with(v.as_str()),
            _ => false,
        })
    }

    fn describe_operation(&self, input: &Self::Input, output: Option<&Self::Output>) -> String {
        let key = &input.key;
        match (&input.action, output) {
            (KvAction::Get, Some(KvOutput::Value(v))) => format!("get({key:?}) -> {v:?}"),
            (KvAction::Get, _) => format!("get({key:?}) -> ?"),
            (KvAction::Put(v), _) => format!("put({key:?}, {v:?})"),
            (KvAction::Append(v), _) => format!("append({key:?}, {v:?})"),
        }
    }

    fn describe_state(&self, state: &Self::State) -> String {
        match (state, &self.observed) {
            (KvState::Value(v), _) => format!("{v:?}"),
            (KvState::Observed { value, len }, Some(observed)) => {
                format!("{:?}", observed.prefix(*value, *len))
            }
            (KvState::Observed { value, len }, None) => format!("<prefix {len} of read {value}>"),
            (KvState::Unobservable, _) => "<a value no read returned>".to_string(),
        }
    }

    fn state_size_bytes(&self, state: &Self::State) -> usize {
        let heap = match state {
            KvState::Value(v) => v.capacity(),
            _ => 0,
        };
        std::mem::size_of::<KvState>() + heap
    }
}

fn string(value: &Value, what: &str) -> Result<String, String> {
    value
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("{what}: expected a string, got {value}"))
}

impl JsonCodec for KvModel {
    fn decode(
        &self,
        op: &str,
        key: Option<&str>,
        value: &Value,
        output: Option<&Value>,
    ) -> Result<(Self::Input, Option<Self::Output>), String> {
        let key = key.ok_or("the kv model needs a string key")?.to_string();
        let done = |output: Option<&Value>| match output {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(KvOutput::Done)),
            Some(v) => Err(format!("{op} output: expected null, got {v}")),
        };
        let (action, output) = match op {
            "get" => {
                let output = match output {
                    None => None,
                    Some(v) => Some(KvOutput::Value(string(v, "get output")?)),
                };
                (KvAction::Get, output)
            }
            "put" => (KvAction::Put(string(value, "put value")?), done(output)?),
            "append" => (
                KvAction::Append(string(value, "append value")?),
                done(output)?,
            ),
            other => return Err(format!("unknown kv operation {other:?} (get, put, append)")),
        };
        Ok((KvInput { key, action }, output))
    }

    fn encode(&self, input: &Self::Input, output: Option<&Self::Output>) -> EncodedOp {
        let (op, value) = match &input.action {
            KvAction::Get => ("get", Value::Null),
            KvAction::Put(v) => ("put", Value::from(v.as_str())),
            KvAction::Append(v) => ("append", Value::from(v.as_str())),
        };
        let output = match output {
            Some(KvOutput::Value(v)) => Value::from(v.as_str()),
            _ => Value::Null,
        };
        EncodedOp {
            op: op.to_string(),
            key: Some(input.key.clone()),
            value,
            output,
        }
    }
}
