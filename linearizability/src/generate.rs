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
    /// Plant one stale read, which makes the history not linearizable.
    pub violation: bool,
    /// Seed of the random choices; the same shape and seed give the same history.
    pub seed: u64,
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
    /// No read had a write before it that could be made stale.
    #[error("no read can be made stale; use more operations or fewer keys")]
    NoViolation,
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
    let planted = plant(shape, &slots, &is_read, &is_write)?;
    if let Some((r, a)) = planted {
        outputs[r] = RegisterOutput::Read(left[a]);
    }
    let ops = (0..n)
        .map(|i| {
            let op = operation(&slots[i], inputs[i], outputs[i]);
            (op, planted.is_some_and(|(r, _)| r == i))
        })
        .collect();
    Ok(in_call_order(ops))
}

fn plant(
    shape: &Shape,
    slots: &[Slot],
    is_read: &[bool],
    is_write: &[bool],
) -> Result<Option<(usize, usize)>, ShapeError> {
    if !shape.violation {
        return Ok(None);
    }
    stale_read(slots, is_read, is_write)
        .map(Some)
        .ok_or(ShapeError::NoViolation)
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
    let planted = plant(shape, &slots, &is_read, &is_write)?;
    if let Some((r, a)) = planted {
        let stale = left[a].clone().expect("a write leaves a value");
        outputs[r] = KvOutput::Value(stale);
    }
    let ops = (0..n)
        .map(|i| {
            let input = KvInput {
                key: slots[i].key.to_string(),
                action: action(i),
            };
            let op = operation(&slots[i], input, outputs[i].clone());
            (op, planted.is_some_and(|(r, _)| r == i))
        })
        .collect();
    Ok(in_call_order(ops))
}
