//! A single compare-and-set register, as in the Jepsen etcd histories.
//!
//! The register starts absent (`None`). `write v` sets it; `read` returns the current value;
//! `cas(from, to)` sets it to `to` if it equals `from` and reports whether it did. A failed
//! CAS (`false`) means the compare ran and failed, so the register was not `from` at that
//! point (Porcupine's reading; Knossos instead drops failed operations).

use serde_json::Value;

use crate::history::Operation;
use crate::jsonl::{EncodedOp, JsonCodec};
use crate::model::{Decision, Model, Produces};
use crate::models::unique_writes;

/// A register operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RegisterInput {
    /// Read the value.
    Read,
    /// Set the value.
    Write(i64),
    /// Set the value to `to` if it is `from`.
    Cas {
        /// Expected current value.
        from: i64,
        /// New value.
        to: i64,
    },
}

/// A register operation's observed result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RegisterOutput {
    /// The value read (`None`: absent).
    Read(Option<i64>),
    /// A write completed.
    Write,
    /// Whether the CAS swapped.
    Cas(bool),
}

/// The compare-and-set register model.
#[derive(Clone, Copy, Debug, Default)]
pub struct RegisterModel;

impl Model for RegisterModel {
    type State = Option<i64>;
    type Input = RegisterInput;
    type Output = RegisterOutput;

    fn init(&self) -> Self::State {
        None
    }

    fn step(
        &self,
        state: &Self::State,
        input: &Self::Input,
        output: Option<&Self::Output>,
    ) -> Option<Self::State> {
        match (input, output) {
            (RegisterInput::Read, None) => Some(*state),
            (RegisterInput::Read, Some(RegisterOutput::Read(value))) => {
                (value == state).then_some(*state)
            }
            (RegisterInput::Write(value), None | Some(RegisterOutput::Write)) => Some(Some(*value)),
            (RegisterInput::Cas { from, to }, output) => {
                let swaps = *state == Some(*from);
                match output {
                    None => Some(if swaps { Some(*to) } else { *state }),
                    Some(RegisterOutput::Cas(true)) => swaps.then_some(Some(*to)),
                    Some(RegisterOutput::Cas(false)) => (!swaps).then_some(*state),
                    Some(_) => None,
                }
            }
            // An output of the wrong kind can never be produced.
            (_, Some(_)) => None,
        }
    }

    fn is_read_only(&self, input: &Self::Input, output: Option<&Self::Output>) -> bool {
        match input {
            RegisterInput::Read => true,
            RegisterInput::Cas { .. } => output == Some(&RegisterOutput::Cas(false)),
            RegisterInput::Write(_) => false,
        }
    }

    /// A write (or CAS) that never returned, of a value that no read returned and no CAS
    /// compares against, and called after every CAS that reported failure (or returned with
    /// an unknown outcome) returned. In an order that includes it, the operations after it
    /// until the next write are unknown reads, CASes that never returned (no-ops on its value;
    /// they are dropped too) and nothing else (no read or CAS observes the value, and every
    /// failed CAS precedes it), so without it the order stays legal: the next write
    /// overwrites the value either way.
    fn dispensable(&self, ops: &[&Operation<Self::Input, Self::Output>]) -> Vec<bool> {
        let mut observed = std::collections::HashSet::new();
        let mut failed_cas_returned = None;
        for op in ops {
            match (&op.input, op.output()) {
                (RegisterInput::Read, Some(RegisterOutput::Read(Some(v)))) => {
                    observed.insert(*v);
                }
                (RegisterInput::Cas { from, .. }, output) => {
                    observed.insert(*from);
                    if output != Some(&RegisterOutput::Cas(true)) {
                        failed_cas_returned = failed_cas_returned.max(op.return_time);
                    }
                }
                _ => {}
            }
        }
        ops.iter()
            .map(|op| {
                let written = match op.input {
                    RegisterInput::Write(v) | RegisterInput::Cas { to: v, .. } => v,
                    RegisterInput::Read => return false,
                };
                op.return_time.is_none()
                    && !observed.contains(&written)
                    && failed_cas_returned.is_none_or(|t| t < op.call)
            })
            .collect()
    }

    /// Without search when no value is written twice ([`crate::models::unique_writes`]).
    fn decide(&self, ops: &[&Operation<Self::Input, Self::Output>]) -> Option<Decision> {
        unique_writes::decide(ops)
    }

    /// A write is legal everywhere and leaves its value, which only a read that returned it
    /// or a compare-and-set from it can tell from another write's value: a read of any other
    /// value (or of nil) is illegal in both, a compare-and-set from any other value swaps in
    /// neither, and a write leaves its own value after both.
    fn overwrites(&self, input: &Self::Input) -> bool {
        matches!(input, RegisterInput::Write(_))
    }

    fn observes(
        &self,
        observer: &Self::Input,
        output: Option<&Self::Output>,
        overwrite: &Self::Input,
    ) -> bool {
        let RegisterInput::Write(written) = overwrite else {
            return true;
        };
        match (observer, output) {
            (RegisterInput::Read, Some(RegisterOutput::Read(value))) => *value == Some(*written),
            // An unknown output could be the written value.
            (RegisterInput::Read, _) => true,
            (RegisterInput::Cas { from, .. }, _) => from == written,
            (RegisterInput::Write(_), _) => false,
        }
    }

    /// A read that returned a value needs exactly that value, and so does a CAS that
    /// swapped.
    fn requirement(
        &self,
        input: &Self::Input,
        output: Option<&Self::Output>,
    ) -> Option<Self::State> {
        match (input, output) {
            (RegisterInput::Read, Some(RegisterOutput::Read(v))) => Some(*v),
            (RegisterInput::Cas { from, .. }, Some(RegisterOutput::Cas(true))) => Some(Some(*from)),
            _ => None,
        }
    }

    fn produces(
        &self,
        input: &Self::Input,
        output: Option<&Self::Output>,
    ) -> Produces<Self::State> {
        match (input, output) {
            (RegisterInput::Write(v), _) => Produces::One(Some(*v)),
            (RegisterInput::Cas { .. }, Some(RegisterOutput::Cas(false))) => Produces::Nothing,
            (RegisterInput::Cas { to, .. }, _) => Produces::One(Some(*to)),
            (RegisterInput::Read, _) => Produces::Nothing,
        }
    }

    /// Only a write of the value, or a CAS to it that did not report failure.
    fn may_produce(
        &self,
        input: &Self::Input,
        output: Option<&Self::Output>,
        target: &Self::State,
    ) -> bool {
        match (input, output) {
            (RegisterInput::Write(v), _) => *target == Some(*v),
            (RegisterInput::Cas { .. }, Some(RegisterOutput::Cas(false))) => false,
            (RegisterInput::Cas { to, .. }, _) => *target == Some(*to),
            (RegisterInput::Read, _) => false,
        }
    }

    /// A read (or a successful CAS) that needs value `v` can only become legal if another
    /// pending operation may write `v`; nothing deletes the value, so `nil` never comes back.
    fn may_become_legal(
        &self,
        state: &Self::State,
        input: &Self::Input,
        output: Option<&Self::Output>,
        others: &[(&Self::Input, Option<&Self::Output>)],
    ) -> bool {
        let needed = match (input, output) {
            (RegisterInput::Read, Some(RegisterOutput::Read(v))) => *v,
            (RegisterInput::Cas { from, .. }, Some(RegisterOutput::Cas(true))) => Some(*from),
            _ => return true,
        };
        if needed == *state {
            return true;
        }
        let Some(needed) = needed else { return false };
        others.iter().any(|(other, _)| match other {
            RegisterInput::Write(v) | RegisterInput::Cas { to: v, .. } => *v == needed,
            RegisterInput::Read => false,
        })
    }

    fn describe_operation(&self, input: &Self::Input, output: Option<&Self::Output>) -> String {
        let call = match input {
            RegisterInput::Read => "read()".to_string(),
            RegisterInput::Write(v) => format!("write({v})"),
            RegisterInput::Cas { from, to } => format!("cas({from}, {to})"),
        };
        let result = match output {
            None => "?".to_string(),
            Some(RegisterOutput::Read(v)) => describe_value(*v),
            Some(RegisterOutput::Write) => "ok".to_string(),
            Some(RegisterOutput::Cas(swapped)) => swapped.to_string(),
        };
        format!("{call} -> {result}")
    }

    fn describe_state(&self, state: &Self::State) -> String {
        describe_value(*state)
    }
}

fn describe_value(value: Option<i64>) -> String {
    value.map_or_else(|| "nil".to_string(), |v| v.to_string())
}

fn int(value: &Value, what: &str) -> Result<i64, String> {
    value
        .as_i64()
        .ok_or_else(|| format!("{what}: expected an integer, got {value}"))
}

impl JsonCodec for RegisterModel {
    fn decode(
        &self,
        op: &str,
        key: Option<&str>,
        value: &Value,
        output: Option<&Value>,
    ) -> Result<(Self::Input, Option<Self::Output>), String> {
        if let Some(key) = key {
            return Err(format!("the register model has no keys, got key {key:?}"));
        }
        match op {
            "read" => {
                let output = match output {
                    None => None,
                    Some(Value::Null) => Some(RegisterOutput::Read(None)),
                    Some(v) => Some(RegisterOutput::Read(Some(int(v, "read output")?))),
                };
                Ok((RegisterInput::Read, output))
            }
            "write" => {
                let input = RegisterInput::Write(int(value, "write value")?);
                Ok((input, output.map(|_| RegisterOutput::Write)))
            }
            "cas" => {
                let pair = value.as_array().filter(|a| a.len() == 2);
                let pair =
                    pair.ok_or_else(|| format!("cas value: expected [from, to], got {value}"))?;
                let input = RegisterInput::Cas {
                    from: int(&pair[0], "cas from")?,
                    to: int(&pair[1], "cas to")?,
                };
                let output = match output {
                    None => None,
                    Some(Value::Bool(b)) => Some(RegisterOutput::Cas(*b)),
                    Some(v) => return Err(format!("cas output: expected true or false, got {v}")),
                };
                Ok((input, output))
            }
            other => Err(format!(
                "unknown register operation {other:?} (read, write, cas)"
            )),
        }
    }

    fn encode(&self, input: &Self::Input, output: Option<&Self::Output>) -> EncodedOp {
        let (op, value) = match input {
            RegisterInput::Read => ("read", Value::Null),
            RegisterInput::Write(v) => ("write", Value::from(*v)),
            RegisterInput::Cas { from, to } => ("cas", Value::from(vec![*from, *to])),
        };
        let output = match output {
            Some(RegisterOutput::Read(Some(v))) => Value::from(*v),
            Some(RegisterOutput::Cas(b)) => Value::Bool(*b),
            _ => Value::Null,
        };
        EncodedOp {
            op: op.to_string(),
            key: None,
            value,
            output,
        }
    }
}
