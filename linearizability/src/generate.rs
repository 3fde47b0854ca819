//! Random histories of a known verdict, for tests and benchmarks.
//!
//! The generator runs a real sequential object: every operation gets an interval on a shared
//! clock and a random instant inside it, the operations are applied in the order of those
//! instants, and each records what it saw. So every generated history is linearizable (the
//! instants are a witness) unless a violation is planted.
//!
//! Clients issue one operation at a time, back to back, so about `clients` operations are in
//! flight at any moment. A fraction of operations is *pending*: the client crashed and never
//! saw a reply, and the operation took effect (at a random instant after its call) or did not,
//! with even odds. A crashed client is replaced by a new one, as in Jepsen.
//!
//! Every write writes a value never written before (an append adds a token never added
//! before), so every state a key goes through is distinct. That makes a planted violation
//! certain: a read is made to return the value left by an operation `a` although another write
//! `w` ran entirely after `a` and entirely before the read. In every order that respects real
//! time `a` precedes `w` precedes the read, and since only `a` ever produced that value, the
//! read cannot see it.

use crate::history::{ClientId, Operation, Outcome, Timestamp};
use crate::models::{KvAction, KvInput, KvOutput, RegisterInput, RegisterOutput};

/// The shape of a generated history.
#[derive(Clone, Debug, PartialEq)]
pub struct Shape {
    /// Number of operations.
    pub ops: usize,
    /// Number of keys (the register model has one).
    pub keys: usize,
    /// Clients issuing operations concurrently.
    pub clients: usize,
    /// Fraction of operations left pending, in `[0, 1]`.
    pub pending: f64,
    /// Plant one violation of kind `kind`, which makes the history not linearizable.
    pub violation: bool,
    /// The kind of violation planted, if `violation` is set.
    pub kind: Violation,
    /// Seed of the random choices; the same shape and seed give the same history.
    pub seed: u64,
}

/// The kinds of violation the generator plants. Each is certain whatever order the checker
/// picks (see each kind), and all but the stale read and the read of a value never written
/// need the search: no one-pass check on the history finds them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Violation {
    /// A read returns the value left by a write `a` although another write ran entirely
    /// after `a` and entirely before the read.
    #[default]
    StaleRead,
    /// A read returns a value no operation wrote.
    NeverWritten,
    /// A read returns the value of a write called after the read returned.
    FutureRead,
    /// Two writes, concurrent with four reads by two clients: one client sees the first
    /// value then the second, the other the second then the first. Appended after the
    /// history, on fresh values (key `"0"` for the key-value store).
    OutOfOrder,
    /// Two compare-and-sets from the same value both report success, although the value is
    /// written once (register only).
    DoubleCas,
    /// A get misses an append that returned before the get was called, after the put its
    /// value starts from returned (key-value store only).
    LostAppend,
}

/// Why a shape cannot be generated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShapeError {
    /// A count that must be positive is zero.
    #[error("{0} must be at least 1")]
    Zero(&'static str),
    /// The pending fraction is outside `[0, 1]`.
    #[error("the pending fraction must be between 0 and 1")]
    Pending,
    /// No place for the violation was found.
    #[error("no place for a {0:?} violation was found; use more operations or fewer keys")]
    NoViolation(Violation),
    /// The violation does not exist for this model.
    #[error("the {0:?} violation is not available for this model")]
    Unavailable(Violation),
}

/// A generated history and, if one was planted, the operation that breaks it.
#[derive(Clone, Debug)]
pub struct Generated<I, O> {
    /// The operations, in call order.
    pub history: Vec<Operation<I, O>>,
    /// The planted stale read (an index into `history`).
    pub violation: Option<usize>,
}

/// A small deterministic generator (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// True with probability `p`.
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p && p > 0.0
    }
}

/// Longest operation, in clock ticks; a client waits up to `GAP_MAX` between operations.
const DURATION_MAX: u64 = 20;
const GAP_MAX: u64 = 3;

/// The timing of one operation.
struct Slot {
    client: u64,
    call: u64,
    ret: Option<u64>,
    /// When it took effect (`None`: pending and never took effect).
    point: Option<u64>,
    key: usize,
    /// A uniform draw that picks the kind of operation.
    roll: u64,
}

fn slots(shape: &Shape, rng: &mut Rng) -> Result<Vec<Slot>, ShapeError> {
    if shape.ops == 0 {
        return Err(ShapeError::Zero("ops"));
    }
    if shape.keys == 0 {
        return Err(ShapeError::Zero("keys"));
    }
    if shape.clients == 0 {
        return Err(ShapeError::Zero("clients"));
    }
    if !(0.0..=1.0).contains(&shape.pending) {
        return Err(ShapeError::Pending);
    }
    // Per client: (its current id, when it is free).
    let mut clients: Vec<(u64, u64)> = (0..shape.clients as u64).map(|c| (c, c)).collect();
    let mut next_id = shape.clients as u64;
    let mut out = Vec::with_capacity(shape.ops);
    for _ in 0..shape.ops {
        let (c, _) = clients
            .iter()
            .enumerate()
            .min_by_key(|(c, (_, free))| (*free, *c))
            .expect("at least one client");
        let (id, free) = clients[c];
        let call = free + rng.below(GAP_MAX + 1);
        let ret = call + 1 + rng.below(DURATION_MAX);
        let inside = call + rng.below(ret - call + 1);
        let (ret, point) = if rng.chance(shape.pending) {
            // The client crashes: a new client takes its place once the request is sent.
            clients[c] = (next_id, call + 1);
            next_id += 1;
            (None, rng.chance(0.5).then_some(inside))
        } else {
            clients[c] = (id, ret + 1);
            (Some(ret), Some(inside))
        };
        out.push(Slot {
            client: id,
            call,
            ret,
            point,
            key: rng.below(shape.keys as u64) as usize,
            roll: rng.below(100),
        });
    }
    Ok(out)
}

/// The order in which operations take effect: by instant, then by index.
fn effect_order(slots: &[Slot]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..slots.len())
        .filter(|&i| slots[i].point.is_some())
        .collect();
    order.sort_by_key(|&i| (slots[i].point, i));
    order
}

/// Finds a read to make stale: a closed read `r` and closed writes `a`, `w` of its key with
/// `a` returning before `w` is called and `w` returning before `r` is called. Returns
/// `(r, a)`. Reads near the middle of the history are preferred.
fn stale_read(slots: &[Slot], is_read: &[bool], is_write: &[bool]) -> Option<(usize, usize)> {
    let n = slots.len();
    let middle = n / 2;
    let candidates = (middle..n).chain((0..middle).rev());
    for r in candidates {
        if !is_read[r] || slots[r].ret.is_none() {
            continue;
        }
        let key = slots[r].key;
        let closed_write = |i: usize| is_write[i] && slots[i].key == key && slots[i].ret.is_some();
        let Some(w) = (0..r)
            .rev()
            .find(|&i| closed_write(i) && slots[i].ret.is_some_and(|t| t < slots[r].call))
        else {
            continue;
        };
        if let Some(a) = (0..w)
            .rev()
            .find(|&i| closed_write(i) && slots[i].ret.is_some_and(|t| t < slots[w].call))
        {
            return Some((r, a));
        }
    }
    None
}

/// Sorts by call time (then by generation order) and maps the planted index along.
fn in_call_order<I, O>(mut ops: Vec<(Operation<I, O>, bool)>) -> Generated<I, O> {
    ops.sort_by_key(|(op, _)| op.call);
    let violation = ops.iter().position(|(_, planted)| *planted);
    Generated {
        history: ops.into_iter().map(|(op, _)| op).collect(),
        violation,
    }
}

fn operation<I, O>(slot: &Slot, input: I, output: O) -> Operation<I, O> {
    Operation {
        client: ClientId(slot.client),
        call: Timestamp(slot.call),
        return_time: slot.ret.map(Timestamp),
        input,
        outcome: if slot.ret.is_some() {
            Outcome::Ok(output)
        } else {
            Outcome::Unknown
        },
    }
}

/// A compare-and-set register history: 50% reads, 30% writes, 20% compare-and-sets (half of
/// them expecting the value the register holds when they take effect). `keys` is ignored.
pub fn register(shape: &Shape) -> Result<Generated<RegisterInput, RegisterOutput>, ShapeError> {
    let mut rng = Rng(shape.seed);
    let mut slots = slots(shape, &mut rng)?;
    for slot in &mut slots {
        slot.key = 0;
    }
    let n = slots.len();
    let is_read: Vec<bool> = slots.iter().map(|s| s.roll < 50).collect();
    let is_write: Vec<bool> = slots.iter().map(|s| (50..80).contains(&s.roll)).collect();
    let fresh = |i: usize| i as i64 + 1;
    let mut inputs = vec![RegisterInput::Read; n];
    let mut outputs = vec![RegisterOutput::Write; n];
    // The value each write left, for planting.
    let mut left = vec![None; n];
    let mut state: Option<i64> = None;
    let mut written: Vec<i64> = Vec::new();
    for i in effect_order(&slots) {
        let roll = slots[i].roll;
        if is_read[i] {
            outputs[i] = RegisterOutput::Read(state);
        } else if is_write[i] {
            inputs[i] = RegisterInput::Write(fresh(i));
            state = Some(fresh(i));
            written.push(fresh(i));
        } else {
            let from = match state {
                Some(v) if roll < 90 => v,
                _ if written.is_empty() => 0,
                _ => written[written.len() - 1 - rng.below(written.len().min(4) as u64) as usize],
            };
            inputs[i] = RegisterInput::Cas { from, to: fresh(i) };
            let swapped = state == Some(from);
            if swapped {
                state = Some(fresh(i));
                written.push(fresh(i));
            }
            outputs[i] = RegisterOutput::Cas(swapped);
        }
        left[i] = state;
    }
    // Pending operations that never took effect still need an input.
    for i in 0..n {
        if slots[i].point.is_none() && !is_read[i] {
            inputs[i] = if is_write[i] {
                RegisterInput::Write(fresh(i))
            } else {
                RegisterInput::Cas {
                    from: written.last().copied().unwrap_or(0),
                    to: fresh(i),
                }
            };
        }
    }
    let closed = |i: usize| slots[i].ret.is_some();
    let mut extra = Vec::new();
    let planted = match shape.violation.then_some(shape.kind) {
        None => None,
        Some(Violation::StaleRead) => {
            let (r, a) = stale_read(&slots, &is_read, &is_write)
                .ok_or(ShapeError::NoViolation(Violation::StaleRead))?;
            outputs[r] = RegisterOutput::Read(left[a]);
            Some(r)
        }
        Some(Violation::NeverWritten) => {
            let r = from_middle(n)
                .find(|&r| is_read[r] && closed(r))
                .ok_or(ShapeError::NoViolation(Violation::NeverWritten))?;
            // Written values are positive.
            outputs[r] = RegisterOutput::Read(Some(-1));
            Some(r)
        }
        Some(Violation::FutureRead) => {
            let (r, w) = future_read(&slots, &is_read, &is_write)
                .ok_or(ShapeError::NoViolation(Violation::FutureRead))?;
            outputs[r] = RegisterOutput::Read(Some(fresh(w)));
            Some(r)
        }
        Some(Violation::DoubleCas) => {
            let is_cas = |i: usize| !is_read[i] && !is_write[i] && closed(i);
            // A failed compare-and-set made to succeed too, preferably one overlapping the
            // successful one, so that no real-time order alone settles it.
            let successful: Vec<usize> = from_middle(n)
                .filter(|&a| is_cas(a) && outputs[a] == RegisterOutput::Cas(true))
                .collect();
            let failed = |b: usize| is_cas(b) && outputs[b] == RegisterOutput::Cas(false);
            let pair = [true, false]
                .into_iter()
                .find_map(|overlapping| {
                    successful.iter().find_map(|&a| {
                        (0..n)
                            .find(|&b| failed(b) && (!overlapping || overlap(&slots[a], &slots[b])))
                            .map(|b| (a, b))
                    })
                })
                .ok_or(ShapeError::NoViolation(Violation::DoubleCas))?;
            let (a, b) = pair;
            let RegisterInput::Cas { from, .. } = inputs[a] else {
                unreachable!("a compare-and-set")
            };
            inputs[b] = RegisterInput::Cas { from, to: fresh(b) };
            outputs[b] = RegisterOutput::Cas(true);
            Some(b)
        }
        Some(Violation::OutOfOrder) => {
            let (first, second) = (fresh(n), fresh(n + 1));
            extra = out_of_order(
                &slots,
                |v| (RegisterInput::Write(v), RegisterOutput::Write),
                |v| (RegisterInput::Read, RegisterOutput::Read(Some(v))),
                [first, second],
            );
            None
        }
        Some(kind @ Violation::LostAppend) => return Err(ShapeError::Unavailable(kind)),
    };
    let ops = (0..n)
        .map(|i| {
            let op = operation(&slots[i], inputs[i], outputs[i]);
            (op, planted == Some(i))
        })
        .chain(extra)
        .collect();
    Ok(in_call_order(ops))
}

/// Indices from the middle of the history outwards (later ones first).
fn from_middle(n: usize) -> impl Iterator<Item = usize> {
    let middle = n / 2;
    (middle..n).chain((0..middle).rev())
}

fn overlap(a: &Slot, b: &Slot) -> bool {
    match (a.ret, b.ret) {
        (Some(a_ret), Some(b_ret)) => a.call <= b_ret && b.call <= a_ret && a.key == b.key,
        _ => false,
    }
}

/// A closed read `r` and a closed write `w` of its key called after `r` returned.
fn future_read(slots: &[Slot], is_read: &[bool], is_write: &[bool]) -> Option<(usize, usize)> {
    from_middle(slots.len()).find_map(|r| {
        let ret = slots[r].ret.filter(|_| is_read[r])?;
        (0..slots.len())
            .find(|&w| {
                is_write[w]
                    && slots[w].ret.is_some()
                    && slots[w].key == slots[r].key
                    && slots[w].call > ret
            })
            .map(|w| (r, w))
    })
}

/// Six operations after the whole history, on two fresh values: writes of both, concurrent
/// with everything else; client A reads the first value, then the second; client B, at the
/// same times, the second, then the first. A's reads put the first write before the second,
/// B's the other way round, and neither value is written again. The last read is marked.
fn out_of_order<I, O, V: Copy>(
    slots: &[Slot],
    write: impl Fn(V) -> (I, O),
    read: impl Fn(V) -> (I, O),
    values: [V; 2],
) -> Vec<(Operation<I, O>, bool)> {
    let start = slots
        .iter()
        .map(|s| s.ret.unwrap_or(s.call))
        .max()
        .unwrap_or(0)
        + 1;
    let client = slots.iter().map(|s| s.client).max().unwrap_or(0) + 1;
    let [a, b] = values;
    let op = |client: u64, call: u64, ret: u64, (input, output): (I, O), planted: bool| {
        let slot = Slot {
            client,
            call,
            ret: Some(ret),
            point: None,
            key: 0,
            roll: 0,
        };
        (operation(&slot, input, output), planted)
    };
    vec![
        op(client, start, start + 10, write(a), false),
        op(client + 1, start, start + 10, write(b), false),
        op(client + 2, start + 1, start + 2, read(a), false),
        op(client + 3, start + 1, start + 2, read(b), false),
        op(client + 2, start + 3, start + 4, read(b), false),
        op(client + 3, start + 3, start + 4, read(a), true),
    ]
}

/// A closed get and its value without one of its appends: the append returned before the
/// get was called, and the put the value starts from (if any) returned before the append
/// was called. Values read `p<put> <append> <append>...`; every put and token is unique, so
/// the put comes before the append, the append before the get, and the get sees the put's
/// value, hence the append.
fn lost_append(slots: &[Slot], outputs: &[KvOutput]) -> Option<(usize, String)> {
    from_middle(slots.len()).find_map(|r| {
        let called = slots[r].call;
        slots[r].ret?;
        let KvOutput::Value(value) = &outputs[r] else {
            return None;
        };
        let mut parts = value.split(' ');
        let base = parts.next()?;
        let base_ret = match base.strip_prefix('p') {
            Some(index) => slots[index.parse::<usize>().ok()?].ret?,
            None if base.is_empty() => 0,
            None => return None,
        };
        let tokens: Vec<usize> = parts.map(|t| t.parse().ok()).collect::<Option<_>>()?;
        let lost = tokens.iter().copied().find(|&a| {
            slots[a].ret.is_some_and(|ret| ret < called)
                && (base.is_empty() || base_ret < slots[a].call)
        })?;
        let kept: String = tokens
            .iter()
            .filter(|&&t| t != lost)
            .map(|t| format!(" {t}"))
            .collect();
        Some((r, format!("{base}{kept}")))
    })
}

/// A key-value history over keys `"0"`, `"1"`, ...: 50% gets, 25% appends, 25% puts.
pub fn kv(shape: &Shape) -> Result<Generated<KvInput, KvOutput>, ShapeError> {
    let mut rng = Rng(shape.seed);
    let slots = slots(shape, &mut rng)?;
    let n = slots.len();
    let is_read: Vec<bool> = slots.iter().map(|s| s.roll < 50).collect();
    let is_write: Vec<bool> = is_read.iter().map(|r| !r).collect();
    let action = |i: usize| {
        if is_read[i] {
            KvAction::Get
        } else if slots[i].roll < 75 {
            KvAction::Append(format!(" {i}"))
        } else {
            KvAction::Put(format!("p{i}"))
        }
    };
    let mut outputs = vec![KvOutput::Done; n];
    let mut left: Vec<Option<String>> = vec![None; n];
    let mut state: Vec<Option<String>> = vec![None; shape.keys];
    for i in effect_order(&slots) {
        let value = &mut state[slots[i].key];
        match action(i) {
            KvAction::Get => {
                outputs[i] = value.clone().map_or(KvOutput::Absent, KvOutput::Value);
            }
            KvAction::Append(token) => {
                value.get_or_insert_with(String::new).push_str(&token);
            }
            KvAction::Put(v) => *value = Some(v),
            _ => unreachable!("only gets, appends and puts are generated"),
        }
        left[i] = value.clone();
    }
    let closed = |i: usize| slots[i].ret.is_some();
    let is_put = |i: usize| matches!(action(i), KvAction::Put(_));
    let mut extra = Vec::new();
    let planted = match shape.violation.then_some(shape.kind) {
        None => None,
        Some(Violation::StaleRead) => {
            let (r, a) = stale_read(&slots, &is_read, &is_write)
                .ok_or(ShapeError::NoViolation(Violation::StaleRead))?;
            let stale = left[a].clone().expect("a write leaves a value");
            outputs[r] = KvOutput::Value(stale);
            Some(r)
        }
        Some(Violation::NeverWritten) => {
            let r = from_middle(n)
                .find(|&r| is_read[r] && closed(r))
                .ok_or(ShapeError::NoViolation(Violation::NeverWritten))?;
            // Puts write "p<i>", appends add " <i>".
            outputs[r] = KvOutput::Value("never written".to_string());
            Some(r)
        }
        Some(Violation::FutureRead) => {
            let is_put_slot: Vec<bool> = (0..n).map(is_put).collect();
            let (r, w) = future_read(&slots, &is_read, &is_put_slot)
                .ok_or(ShapeError::NoViolation(Violation::FutureRead))?;
            outputs[r] = KvOutput::Value(format!("p{w}"));
            Some(r)
        }
        Some(Violation::OutOfOrder) => {
            let key = |_: ()| "0".to_string();
            extra = out_of_order(
                &slots,
                |v: usize| {
                    let input = KvInput {
                        key: key(()),
                        action: KvAction::Put(format!("q{v}")),
                    };
                    (input, KvOutput::Done)
                },
                |v: usize| {
                    let input = KvInput {
                        key: key(()),
                        action: KvAction::Get,
                    };
                    (input, KvOutput::Value(format!("q{v}")))
                },
                [1, 2],
            );
            None
        }
        Some(Violation::LostAppend) => {
            let (r, value) = lost_append(&slots, &outputs)
                .ok_or(ShapeError::NoViolation(Violation::LostAppend))?;
            outputs[r] = KvOutput::Value(value);
            Some(r)
        }
        Some(kind @ Violation::DoubleCas) => return Err(ShapeError::Unavailable(kind)),
    };
    let ops = (0..n)
        .map(|i| {
            let input = KvInput {
                key: slots[i].key.to_string(),
                action: action(i),
            };
            let op = operation(&slots[i], input, outputs[i].clone());
            (op, planted == Some(i))
        })
        .chain(extra)
        .collect();
    Ok(in_call_order(ops))
}
