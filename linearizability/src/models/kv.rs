//! A key-value store with `get`, `put`, `append`, `delete`, `exists` and compare-and-set,
//! partitioned by key.
//!
//! A key is either absent or holds a string, and the two differ: `exists` and `cas` tell an
//! absent key from one holding `""`. `put` sets a value, `append` concatenates (an absent key
//! acts as `""`), `delete` removes the key and reports whether it was present, `exists` reports
//! presence, and `cas` writes its new value only if the key's current value equals the expected
//! one (`None`: only if the key is absent), reporting whether it swapped and what it found.
//! These are the semantics of `workloads::KvStore`.
//!
//! A `get` may report [`KvOutput::Absent`], or a value. A `get` reporting `""` is also accepted
//! for an absent key, because stores that cannot tell the two apart (Porcupine's kv histories)
//! read a missing key as the empty string.
//!
//! Keys are independent objects, so the history is split by key and every key is checked on
//! its own (P-compositionality).

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::history::Operation;
use crate::model::{Model, Partition, Produces};
use crate::models::observed::ObservedValues;

/// What a key-value operation does.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KvAction {
    /// Read the value.
    Get,
    /// Replace the value.
    Put(String),
    /// Append to the value (an absent key acts as `""`).
    Append(String),
    /// Remove the key.
    Delete,
    /// Tell whether the key is present.
    Exists,
    /// Write `new` if the current value is `expected` (`None`: the key is absent).
    Cas {
        /// The value the key must hold for the swap to happen; `None` means absent.
        expected: Option<String>,
        /// The value written on success.
        new: String,
    },
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
    /// The value a `get` returned. `""` is also accepted for an absent key (see the module
    /// documentation).
    Value(String),
    /// A `get` found the key absent.
    Absent,
    /// A `put` or `append` completed.
    Done,
    /// A `delete` completed; `existed` tells whether the key was present.
    Deleted {
        /// Whether the key was present before.
        existed: bool,
    },
    /// Whether the key of an `exists` was present.
    Exists(bool),
    /// A `cas` completed.
    Cas {
        /// Whether the new value was written.
        swapped: bool,
        /// The value found before the operation (`None`: absent).
        previous: Option<String>,
    },
}

/// The value of one key, as the search sees it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KvState {
    /// The key is absent.
    Absent,
    /// The value itself (the plain model).
    Value(String),
    /// The first `len` bytes of observed value number `value` (the specialized model; see
    /// [`ObservedValues`]).
    Observed {
        /// Index into the sorted observed values.
        value: u32,
        /// Length in bytes.
        len: u32,
    },
    /// A present value that is not a prefix of any value an operation compares against (the
    /// specialized model): no read or compare can match it until a write replaces it.
    Unobservable,
}

/// The key-value model. The state is the value of the one key of a partition.
///
/// When checking, the model specializes itself to each key's operations (see
/// [`ObservedValues`]): values that no read returned and no compare-and-set names are merged
/// into one state, which keeps the search from telling apart orders of appends that a later
/// put erases unobserved.
#[derive(Clone, Debug, Default)]
pub struct KvModel {
    observed: Option<Arc<ObservedValues>>,
    /// In the specialized model: per value an append of the partition adds, the observed
    /// values that end with it (the only observed values that append can produce).
    ending_with: Option<Arc<BTreeMap<String, Vec<u32>>>>,
    /// In the specialized model: the partition has only gets, puts and appends.
    simple: bool,
}

/// The sharded key-value store has the same per-key semantics: shards only decide which
/// group serves a key, which is invisible to clients.
pub type ShardedKvModel = KvModel;

/// A state's value as a string, when the search can name it.
enum Current<'a> {
    Absent,
    Present(&'a str),
    /// Present, and equal to no value any operation of the partition compares against.
    Unobservable,
}

impl Current<'_> {
    fn present(&self) -> bool {
        !matches!(self, Current::Absent)
    }

    /// Whether the value equals `expected` (`None`: absent). An unobservable value equals no
    /// named value, because every named value is observed.
    fn equals(&self, expected: Option<&str>) -> bool {
        match (self, expected) {
            (Current::Absent, None) => true,
            (Current::Present(v), Some(e)) => *v == e,
            _ => false,
        }
    }

    /// The string an append extends (`""` for an absent key); `None` if unobservable.
    fn base(&self) -> Option<&str> {
        match self {
            Current::Absent => Some(""),
            Current::Present(v) => Some(v),
            Current::Unobservable => None,
        }
    }
}

impl KvModel {
    /// The plain model.
    pub fn new() -> Self {
        Self::default()
    }

    /// The model specialized to one partition's operations (see [`Model::specialize`]);
    /// with `liveness`, also merging prefixes that are not live.
    fn specialized(&self, ops: &[&Operation<KvInput, KvOutput>], liveness: bool) -> Self {
        let mut values = Vec::new();
        for op in ops {
            if let KvAction::Cas {
                expected: Some(e), ..
            } = &op.input.action
            {
                values.push(e.clone());
            }
            match op.output() {
                Some(KvOutput::Value(v))
                | Some(KvOutput::Cas {
                    previous: Some(v), ..
                }) => values.push(v.clone()),
                _ => {}
            }
        }
        let appended = ops.iter().filter_map(|op| match &op.input.action {
            KvAction::Append(v) => Some(v.as_str()),
            _ => None,
        });
        let written = ops.iter().filter_map(|op| match &op.input.action {
            KvAction::Put(v) | KvAction::Cas { new: v, .. } => Some(v.as_str()),
            _ => None,
        });
        let observed = ObservedValues::new(values);
        let observed = if liveness {
            observed.with_appends(appended, written)
        } else {
            observed
        };
        // Index the observed values by each length of appended value: one lookup per
        // (observed value, length) instead of a comparison per (observed value, append).
        let suffixes: BTreeMap<&str, ()> = ops
            .iter()
            .filter_map(|op| match &op.input.action {
                KvAction::Append(v) => Some((v.as_str(), ())),
                _ => None,
            })
            .collect();
        let lengths: std::collections::BTreeSet<usize> = suffixes.keys().map(|s| s.len()).collect();
        let mut ending_with: BTreeMap<String, Vec<u32>> = BTreeMap::new();
        for (index, value) in observed.values().iter().enumerate() {
            for &len in &lengths {
                let Some(tail) = value.len().checked_sub(len).and_then(|at| value.get(at..)) else {
                    continue;
                };
                if suffixes.contains_key(tail) {
                    ending_with
                        .entry(tail.to_string())
                        .or_default()
                        .push(index as u32);
                }
            }
        }
        let simple = ops.iter().all(|op| {
            matches!(
                op.input.action,
                KvAction::Get | KvAction::Put(_) | KvAction::Append(_)
            )
        });
        Self {
            observed: Some(Arc::new(observed)),
            ending_with: Some(Arc::new(ending_with)),
            simple,
        }
    }

    fn current<'a>(&'a self, state: &'a KvState) -> Current<'a> {
        match (state, &self.observed) {
            (KvState::Absent, _) => Current::Absent,
            (KvState::Value(v), None) => Current::Present(v),
            (KvState::Observed { value, len }, Some(observed)) => {
                Current::Present(observed.prefix(*value, *len))
            }
            (KvState::Unobservable, Some(_)) => Current::Unobservable,
            (state, _) => unreachable!("kv state {state:?} does not belong to this model"),
        }
    }

    /// The state holding `value`.
    fn holding(&self, value: &str) -> KvState {
        match &self.observed {
            None => KvState::Value(value.to_string()),
            Some(observed) => match observed.index_of(value).map_or_else(
                || observed.locate(value),
                |index| Some((index, observed.len_of(index))),
            ) {
                Some((value, len)) if observed.is_live(value, len) => {
                    KvState::Observed { value, len }
                }
                _ => KvState::Unobservable,
            },
        }
    }

    /// The state after appending `suffix` to `state`.
    fn appended(&self, state: &KvState, suffix: &str) -> KvState {
        match (state, &self.observed) {
            (KvState::Absent, _) => self.holding(suffix),
            (KvState::Value(v), None) => KvState::Value(format!("{v}{suffix}")),
            (KvState::Observed { value, len }, Some(observed)) => {
                match observed.locate_concat(*value, *len, suffix) {
                    Some((value, len)) if observed.is_live(value, len) => {
                        KvState::Observed { value, len }
                    }
                    _ => KvState::Unobservable,
                }
            }
            // Not a prefix of any observed value, so neither is anything longer.
            (KvState::Unobservable, Some(_)) => KvState::Unobservable,
            (state, _) => unreachable!("kv state {state:?} does not belong to this model"),
        }
    }

    fn step_read(
        current: &Current<'_>,
        action: &KvAction,
        output: Option<&KvOutput>,
    ) -> Option<bool> {
        let legal = match (action, output) {
            (KvAction::Get | KvAction::Exists, None) => true,
            (KvAction::Get, Some(KvOutput::Absent)) => !current.present(),
            (KvAction::Get, Some(KvOutput::Value(v))) => {
                current.equals(Some(v)) || (v.is_empty() && !current.present())
            }
            (KvAction::Exists, Some(KvOutput::Exists(present))) => *present == current.present(),
            // An output of the wrong kind can never be produced.
            _ => false,
        };
        Some(legal)
    }

    fn step_cas(
        &self,
        state: &KvState,
        expected: Option<&str>,
        new: &str,
        output: Option<&KvOutput>,
    ) -> Option<KvState> {
        let current = self.current(state);
        let matches = current.equals(expected);
        let consistent = match output {
            None => true,
            Some(KvOutput::Cas { swapped, previous }) => {
                *swapped == matches && current.equals(previous.as_deref())
            }
            Some(_) => false,
        };
        if !consistent {
            return None;
        }
        Some(if matches {
            self.holding(new)
        } else {
            state.clone()
        })
    }
}

impl Model for KvModel {
    type State = KvState;
    type Input = KvInput;
    type Output = KvOutput;

    fn init(&self) -> Self::State {
        KvState::Absent
    }

    fn step(
        &self,
        state: &Self::State,
        input: &Self::Input,
        output: Option<&Self::Output>,
    ) -> Option<Self::State> {
        let done = matches!(output, None | Some(KvOutput::Done));
        match &input.action {
            action @ (KvAction::Get | KvAction::Exists) => {
                let legal = Self::step_read(&self.current(state), action, output)?;
                legal.then(|| state.clone())
            }
            KvAction::Put(v) => done.then(|| self.holding(v)),
            KvAction::Append(v) => done.then(|| self.appended(state, v)),
            KvAction::Delete => match output {
                None => Some(KvState::Absent),
                Some(KvOutput::Deleted { existed }) => {
                    (*existed == self.current(state).present()).then_some(KvState::Absent)
                }
                Some(_) => None,
            },
            KvAction::Cas { expected, new } => {
                self.step_cas(state, expected.as_deref(), new, output)
            }
        }
    }

    /// Every value a read returned or a compare-and-set names is observed: the state must be
    /// compared against exactly those.
    fn specialize(&self, ops: &[&Operation<Self::Input, Self::Output>]) -> Option<Self> {
        Some(self.specialized(ops, false))
    }

    /// Also merges the prefixes of observed values that are not live (see
    /// [`ObservedValues::with_appends`]), which lets the search see blind appends.
    fn refine(&self, ops: &[&Operation<Self::Input, Self::Output>]) -> Option<Self> {
        Some(self.specialized(ops, true))
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

    fn partition_key(&self, input: &Self::Input) -> Option<String> {
        Some(input.key.clone())
    }

    /// In a partition of gets, puts and appends only: a put that never returned whose value
    /// is a prefix of no value a get returned, or an append that never returned whose value
    /// occurs in no value a get returned. Once it took effect, the key holds that value (as
    /// a prefix, or inside) until the next put, so no get can succeed in between: only
    /// appends, which are legal in any state, and unknown gets. Without it the order stays
    /// legal, and the next put overwrites the key either way. Exists, delete and
    /// compare-and-set observe more than the value, so with any of them nothing is dropped.
    fn dispensable(&self, ops: &[&Operation<Self::Input, Self::Output>]) -> Vec<bool> {
        let simple = ops.iter().all(|op| {
            matches!(
                op.input.action,
                KvAction::Get | KvAction::Put(_) | KvAction::Append(_)
            )
        });
        if !simple {
            return vec![false; ops.len()];
        }
        let observed: Vec<&str> = ops
            .iter()
            .filter_map(|op| match op.output() {
                Some(KvOutput::Value(v)) => Some(v.as_str()),
                _ => None,
            })
            .collect();
        ops.iter()
            .map(|op| {
                op.return_time.is_none()
                    && match &op.input.action {
                        KvAction::Put(v) => !observed.iter().any(|o| o.starts_with(v.as_str())),
                        KvAction::Append(v) => !observed.iter().any(|o| o.contains(v.as_str())),
                        _ => false,
                    }
            })
            .collect()
    }

    /// With only gets, puts and appends, an unobservable value stays unobservable until the
    /// next put (appends keep it so) and no get can match it, so the operations between are
    /// appends, gets with unknown outputs and pending operations, all legal in any state:
    /// the pending operation that led there can be left out.
    fn pending_needless(&self, state: &Self::State) -> bool {
        self.simple && matches!(state, KvState::Unobservable)
    }

    /// A put always resets the key (and a delete whose output is unknown).
    fn resets(&self, input: &Self::Input, output: Option<&Self::Output>) -> bool {
        matches!(
            (&input.action, output),
            (KvAction::Put(_), None | Some(KvOutput::Done)) | (KvAction::Delete, None)
        )
    }

    /// In a partition of gets, puts and appends only (specialized): a put of a value that
    /// is a prefix of no observed value, or an append of a value that occurs in no observed
    /// value. Either leaves the unobservable state whatever the key held; in it no get with a
    /// known output is legal, so only appends (legal anywhere, unobservable stays so) and
    /// puts (resets) can follow.
    fn blind(&self, input: &Self::Input, output: Option<&Self::Output>) -> bool {
        if !self.simple || !matches!(output, None | Some(KvOutput::Done)) {
            return false;
        }
        match &input.action {
            KvAction::Put(v) => self.observed.is_some() && self.holding(v) == KvState::Unobservable,
            KvAction::Append(v) => {
                !v.is_empty()
                    && self
                        .observed
                        .as_ref()
                        .and_then(|observed| observed.extends(v))
                        == Some(false)
            }
            _ => false,
        }
    }

    /// A get that returned a non-empty value needs exactly that value (a get of `""` also
    /// accepts an absent key, and one that found the key absent accepts nothing else but
    /// is left out for simplicity).
    fn requirement(
        &self,
        input: &Self::Input,
        output: Option<&Self::Output>,
    ) -> Option<Self::State> {
        match (&input.action, output) {
            (KvAction::Get, Some(KvOutput::Value(v))) if !v.is_empty() => Some(self.holding(v)),
            _ => None,
        }
    }

    fn produces(
        &self,
        input: &Self::Input,
        output: Option<&Self::Output>,
    ) -> Produces<Self::State> {
        match (&input.action, output) {
            (KvAction::Put(v), _) => Produces::One(self.holding(v)),
            (KvAction::Delete, _) => Produces::One(KvState::Absent),
            (KvAction::Cas { .. }, Some(KvOutput::Cas { swapped: false, .. })) => Produces::Nothing,
            (KvAction::Cas { new, .. }, _) => Produces::One(self.holding(new)),
            (KvAction::Get | KvAction::Exists, _) => Produces::Nothing,
            (KvAction::Append(suffix), _) => match (&self.observed, &self.ending_with) {
                (Some(observed), Some(ending_with)) => Produces::Among(
                    ending_with
                        .get(suffix.as_str())
                        .into_iter()
                        .flatten()
                        .map(|&index| KvState::Observed {
                            value: index,
                            len: observed.len_of(index),
                        })
                        .collect(),
                ),
                _ => Produces::Any,
            },
        }
    }

    /// A put or swap of exactly the value, an append of a suffix of it, or (for an absent
    /// key) a delete; anything whenever the value cannot be named.
    fn may_produce(
        &self,
        input: &Self::Input,
        output: Option<&Self::Output>,
        target: &Self::State,
    ) -> bool {
        let current = self.current(target);
        let value = match current {
            Current::Absent => return matches!(input.action, KvAction::Delete),
            Current::Unobservable => return true,
            Current::Present(v) => v,
        };
        match (&input.action, output) {
            (KvAction::Get | KvAction::Exists | KvAction::Delete, _) => false,
            (KvAction::Put(v), _) => v == value,
            (KvAction::Append(suffix), _) => value.ends_with(suffix.as_str()),
            (KvAction::Cas { .. }, Some(KvOutput::Cas { swapped: false, .. })) => false,
            (KvAction::Cas { new, .. }, _) => new == value,
        }
    }

    /// Gets and exists never change the key; neither does a compare-and-set that reported no
    /// swap, nor a delete that reported the key absent.
    fn is_read_only(&self, input: &Self::Input, output: Option<&Self::Output>) -> bool {
        match (&input.action, output) {
            (KvAction::Get | KvAction::Exists, _) => true,
            (KvAction::Cas { .. }, Some(KvOutput::Cas { swapped, .. })) => !swapped,
            (KvAction::Delete, Some(KvOutput::Deleted { existed })) => !existed,
            _ => false,
        }
    }

    /// A get that must return `v` can only become legal if another pending put or swap
    /// writes a prefix of `v`, if a delete may empty the key, or if the current value is a
    /// prefix of `v` and the rest of `v` starts with the value of another pending append
    /// (the next one it needs). Other operations are not looked ahead.
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
        if matches!(state, KvState::Observed { .. }) && self.observed.is_none() {
            return true;
        }
        let current = self.current(state);
        let rest = current.base().and_then(|base| target.strip_prefix(base));
        others.iter().any(|(other, _)| match (&other.action, rest) {
            (KvAction::Put(v) | KvAction::Cas { new: v, .. }, _) => target.starts_with(v.as_str()),
            (KvAction::Append(v), Some(rest)) => rest.starts_with(v.as_str()),
            (KvAction::Delete, _) => true,
            _ => false,
        })
    }

    fn describe_operation(&self, input: &Self::Input, output: Option<&Self::Output>) -> String {
        let key = &input.key;
        let call = match &input.action {
            KvAction::Get => format!("get({key:?})"),
            KvAction::Put(v) => format!("put({key:?}, {v:?})"),
            KvAction::Append(v) => format!("append({key:?}, {v:?})"),
            KvAction::Delete => format!("delete({key:?})"),
            KvAction::Exists => format!("exists({key:?})"),
            KvAction::Cas { expected, new } => {
                format!(
                    "cas({key:?}, {}, {new:?})",
                    describe_value(expected.as_deref())
                )
            }
        };
        let result = match output {
            None => " -> ?".to_string(),
            Some(KvOutput::Done) => String::new(),
            Some(KvOutput::Value(v)) => format!(" -> {v:?}"),
            Some(KvOutput::Absent) => " -> absent".to_string(),
            Some(KvOutput::Deleted { existed }) => format!(" -> existed {existed}"),
            Some(KvOutput::Exists(present)) => format!(" -> {present}"),
            Some(KvOutput::Cas { swapped, previous }) => format!(
                " -> {} (was {})",
                if *swapped { "swapped" } else { "not swapped" },
                describe_value(previous.as_deref())
            ),
        };
        // Puts and appends never had a result to show; keep their historical rendering.
        match (&input.action, output) {
            (KvAction::Put(_) | KvAction::Append(_), _) => call,
            _ => format!("{call}{result}"),
        }
    }

    fn describe_state(&self, state: &Self::State) -> String {
        match (state, &self.observed) {
            (KvState::Absent, _) => "<absent>".to_string(),
            (KvState::Value(v), _) => format!("{v:?}"),
            (KvState::Observed { value, len }, Some(observed)) => {
                format!("{:?}", observed.prefix(*value, *len))
            }
            (KvState::Observed { value, len }, None) => format!("<prefix {len} of read {value}>"),
            (KvState::Unobservable, _) => "<a value no operation observes>".to_string(),
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

/// `"v"` for a value, `absent` for none.
fn describe_value(value: Option<&str>) -> String {
    value.map_or_else(|| "absent".to_string(), |v| format!("{v:?}"))
}
