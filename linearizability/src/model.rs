//! The sequential specification a history is checked against.
//!
//! A [`Model`] describes an object by its initial state and a step function. The checker only
//! needs to know, for a state and an operation, which state follows, or that the operation is
//! not allowed there. Models must be pure: the checker calls `step` many times, in any order, and
//! caches the results.

use std::fmt::Debug;
use std::hash::Hash;

use crate::history::Operation;

/// A group of operations that can be checked on its own (P-compositionality).
///
/// Linearizability is compositional: a history is linearizable exactly when the sub-history of
/// every independent object is. Splitting a key-value history by key turns one search that is
/// exponential in the total concurrency into several small ones.
/// Reference: Herlihy & Wing 1990, Theorem 1; Horn & Kroening, "Faster linearizability checking
/// via P-compositionality" (2015).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    /// A short human-readable name, for example `key "x"`.
    pub name: String,
    /// Indices into the history, in increasing order.
    pub ops: Vec<usize>,
}

/// The states an operation may change an object into; see [`Model::produces`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Produces<S> {
    /// It never changes the state.
    Nothing,
    /// Only this state (a write of a value, a compare-and-set to it).
    One(S),
    /// At most these states, among the states some operation requires (see
    /// [`Model::requirement`]); other states it may produce need not be listed.
    Among(Vec<S>),
    /// Not known in advance: ask [`Model::may_produce`].
    Any,
}

/// A verdict reached without the search; see [`Model::decide`]. Operation numbers are
/// indices into the operations given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Linearizable: a linearization of every operation that must take effect (every
    /// operation with a return), in order.
    Linearizable(Vec<usize>),
    /// Not linearizable; the operation named is one that cannot be placed.
    Illegal(usize),
}

/// A deterministic sequential specification.
///
/// `step` receives the observed output, or `None` when the outcome of the operation is unknown
/// (it timed out, or the client crashed). With `None` the model must allow every output that
/// the operation could have produced in that state, and still apply its effect.
pub trait Model {
    /// The object's state. Equality and hashing let the checker merge search paths that
    /// reach the same state with the same set of operations done.
    type State: Clone + Eq + Hash + Debug;
    /// The operation's argument, for example `Write(3)`.
    type Input: Clone + Debug + PartialEq;
    /// The operation's observed result, for example `Read(Some(3))`.
    type Output: Clone + Debug + PartialEq;

    /// The state before any operation.
    fn init(&self) -> Self::State;

    /// The state after `input` ran in `state` and produced `output`, or `None` if the output
    /// is impossible there. `output == None` means the output was not observed.
    fn step(
        &self,
        state: &Self::State,
        input: &Self::Input,
        output: Option<&Self::Output>,
    ) -> Option<Self::State>;

    /// Split the history into independently checkable groups. The default is one group with
    /// every operation.
    fn partition(&self, history: &[Operation<Self::Input, Self::Output>]) -> Vec<Partition> {
        vec![Partition {
            name: "all".to_string(),
            ops: (0..history.len()).collect(),
        }]
    }

    /// The partition [`Model::partition`] puts an operation in, when that depends on the
    /// operation alone: operations with equal keys share a partition, and partitions come in
    /// increasing order of their keys. It lets a history too large to hold in memory be split
    /// while it is read (see [`crate::spill`]). It must be `None` for every operation or for
    /// none. The default, `None`, means the model needs the whole history to partition it.
    fn partition_key(&self, input: &Self::Input) -> Option<String> {
        let _ = input;
        None
    }

    /// A version of this model for checking one partition's operations, or `None` to use the
    /// model as it is. It must accept exactly the same orders of these operations; it may use
    /// them to represent states more compactly or to merge states that no remaining operation
    /// can tell apart (the key-value model keeps only prefixes of values that reads returned).
    fn specialize(&self, ops: &[&Operation<Self::Input, Self::Output>]) -> Option<Self>
    where
        Self: Sized,
    {
        let _ = ops;
        None
    }

    /// A costlier version of [`Model::specialize`] for a partition that a quick search did
    /// not decide, or `None` to use `specialize`'s. Same contract: it must accept exactly the
    /// same orders of these operations. The checker first searches briefly without the
    /// set-up that only hard partitions repay (this and [`crate::dead`]), so easy histories
    /// stay cheap. The default is `None`.
    fn refine(&self, ops: &[&Operation<Self::Input, Self::Output>]) -> Option<Self>
    where
        Self: Sized,
    {
        let _ = ops;
        None
    }

    /// True if the operation, with this output (`None`: unknown), leaves the state unchanged
    /// in every state where it is legal: `step(s, input, output)` is `None` or `Some(s)` for
    /// every `s`. Reads are; so is a compare-and-set that reported failure.
    ///
    /// The checker uses this in two ways, both exact:
    /// - with an unknown output, such an operation is legal everywhere and changes nothing, so
    ///   it constrains nothing and is dropped;
    /// - when such an operation may be linearized now, doing so is never worse than doing
    ///   something else first (it can be moved earlier in any linearization), so the search
    ///   takes it greedily and does not branch on it.
    ///
    /// The default is `false`, which is always safe.
    fn is_read_only(&self, input: &Self::Input, output: Option<&Self::Output>) -> bool {
        let _ = (input, output);
        false
    }

    /// For each of one partition's operations, whether it never returned and can be left out
    /// of the search: every legal order that includes it stays legal without it (the order
    /// may also drop other operations that never returned). The search then never tries it,
    /// which matters because an operation without a return stays a candidate forever.
    /// Typically: a write of a value that no remaining operation can observe. The default
    /// leaves every operation in, which is always safe.
    fn dispensable(&self, ops: &[&Operation<Self::Input, Self::Output>]) -> Vec<bool> {
        vec![false; ops.len()]
    }

    /// True if an operation that never returned is never needed to bring the object into
    /// `state`: any legal order in which one does stays legal without it. The search then
    /// never takes a pending operation into such a state. (For the key-value model with only
    /// gets, puts and appends: a value no get can match, which stays so until the next put.)
    /// The default, `false`, is always safe.
    fn pending_needless(&self, state: &Self::State) -> bool {
        let _ = state;
        false
    }

    /// True if the operation, when it never returned, is an *overwrite*: it is legal in every
    /// state, it always leaves the same state, and that state differs from the state another
    /// overwrite leaves only to the operations that [`Model::observes`] names. Of several
    /// overwrites without a return whose observers are all linearized, the search then tries
    /// only one at each configuration (see [`crate::overwrites`]). (For the register: a
    /// write.) The default, `false`, is always safe.
    fn overwrites(&self, input: &Self::Input) -> bool {
        let _ = input;
        false
    }

    /// True if the operation `observer`, with this output, may tell the state that the
    /// overwrite `overwrite` (see [`Model::overwrites`]) leaves apart from the state another
    /// overwrite leaves. Every operation that does not observe either of two overwrites must
    /// be illegal in both of their states, or legal in both with the same next state, or
    /// leave both as they are. (For the register: a read that returned the written value,
    /// or a compare-and-set from it.) The default, `true`, is always safe.
    fn observes(
        &self,
        observer: &Self::Input,
        output: Option<&Self::Output>,
        overwrite: &Self::Input,
    ) -> bool {
        let _ = (observer, output, overwrite);
        true
    }

    /// True if the operation, with this output, *resets* the object: it is legal in every
    /// state and leaves the object in one same state whatever the state before (a put, a
    /// write). The search places blind overwrites (see [`Model::blind`]) just before a reset.
    /// The default, `false`, is always safe.
    fn resets(&self, input: &Self::Input, output: Option<&Self::Output>) -> bool {
        let _ = (input, output);
        false
    }

    /// True if the operation, with this output, is a *blind overwrite*: it resets (see
    /// [`Model::resets`]) to a state `B`, and every operation of the partition that is legal
    /// in `B` is legal in every state and either leaves `B` as it is or resets. (For the
    /// key-value model with only gets, puts and appends: a put or an append that leaves a
    /// value no get can match, so that only puts and appends can follow until the next put.)
    ///
    /// Where such an operation takes effect matters only through what follows it, so the
    /// search moves it as late as it can go: it is placed only when it must take effect next
    /// (its return comes first), or just before a reset, which erases it (see
    /// [`crate::search`] for why that loses no linearization). Without this, the search
    /// tries every subset of the concurrent blind overwrites at every point, which is
    /// exponential in the number of clients. The default, `false`, is always safe.
    fn blind(&self, input: &Self::Input, output: Option<&Self::Output>) -> bool {
        let _ = (input, output);
        false
    }

    /// The one state in which the operation, with this output, is legal, if there is exactly
    /// one (a read that returned 3 needs the register to hold 3). Used with
    /// [`Model::may_produce`] to fail a configuration once a state that some remaining
    /// operation needs can no longer come back (see [`crate::dead`]). The default, `None`,
    /// claims nothing.
    fn requirement(
        &self,
        input: &Self::Input,
        output: Option<&Self::Output>,
    ) -> Option<Self::State> {
        let _ = (input, output);
        None
    }

    /// Whether the operation, with this output, may leave the object in `target` when run in
    /// some state. Must be `true` whenever that is possible (an over-approximation); the
    /// default is always `true`.
    fn may_produce(
        &self,
        input: &Self::Input,
        output: Option<&Self::Output>,
        target: &Self::State,
    ) -> bool {
        let _ = (input, output, target);
        true
    }

    /// Which states the operation, with this output, may change the object into (from a
    /// different state): lets [`crate::dead`] find them without asking
    /// [`Model::may_produce`] about every state. Must agree with `step`; the default,
    /// [`Produces::Any`], claims nothing.
    fn produces(
        &self,
        input: &Self::Input,
        output: Option<&Self::Output>,
    ) -> Produces<Self::State> {
        let _ = (input, output);
        Produces::Any
    }

    /// A quick lookahead that cuts hopeless branches of the search. The operation `input` /
    /// `output` must take effect next and is not allowed in `state`; `others` are the only
    /// operations that may take effect before it. Return `false` only if no sequence of them
    /// can lead to a state where it is allowed. The default, `true`, never cuts anything.
    fn may_become_legal(
        &self,
        state: &Self::State,
        input: &Self::Input,
        output: Option<&Self::Output>,
        others: &[(&Self::Input, Option<&Self::Output>)],
    ) -> bool {
        let _ = (state, input, output, others);
        true
    }

    /// A verdict on one partition's operations reached without the search, or `None` where
    /// the model has no such procedure or it cannot decide these operations. It must be
    /// exact: `Linearizable` only with a linearization, `Illegal` only if none exists. The
    /// checker asks for it when a quick search did not decide, before the thorough search,
    /// so it must cost little on a history it declines (for the register with unique
    /// written values, see [`crate::models::unique_writes`]). The default is `None`.
    fn decide(&self, ops: &[&Operation<Self::Input, Self::Output>]) -> Option<Decision> {
        let _ = ops;
        None
    }

    /// A short description of an operation, for reports, for example `cas(1, 2) -> true`.
    fn describe_operation(&self, input: &Self::Input, output: Option<&Self::Output>) -> String {
        match output {
            Some(output) => format!("{input:?} -> {output:?}"),
            None => format!("{input:?} -> ?"),
        }
    }

    /// A short description of a state, for reports.
    fn describe_state(&self, state: &Self::State) -> String {
        format!("{state:?}")
    }

    /// Approximate heap and inline size of a state in bytes, used to enforce the checker's
    /// memory limit. Models whose states own heap memory should override this.
    fn state_size_bytes(&self, state: &Self::State) -> usize {
        let _ = state;
        std::mem::size_of::<Self::State>()
    }
}

/// A sequential specification whose step may lead to several states.
///
/// Use it through [`PowerSet`], which turns it into a [`Model`] whose state is the set of
/// states the object may be in (the power-set construction Porcupine also uses).
pub trait NondeterministicModel {
    /// One possible state of the object. `Ord` gives the set of states a canonical form.
    type State: Clone + Eq + Hash + Ord + Debug;
    /// The operation's argument.
    type Input: Clone + Debug + PartialEq;
    /// The operation's observed result.
    type Output: Clone + Debug + PartialEq;

    /// The possible initial states (at least one).
    fn init(&self) -> Vec<Self::State>;

    /// Every state that may follow; empty if the output is impossible. `output == None` means
    /// the output was not observed.
    fn step(
        &self,
        state: &Self::State,
        input: &Self::Input,
        output: Option<&Self::Output>,
    ) -> Vec<Self::State>;

    /// See [`Model::partition`].
    fn partition(&self, history: &[Operation<Self::Input, Self::Output>]) -> Vec<Partition> {
        vec![Partition {
            name: "all".to_string(),
            ops: (0..history.len()).collect(),
        }]
    }

    /// See [`Model::describe_operation`].
    fn describe_operation(&self, input: &Self::Input, output: Option<&Self::Output>) -> String {
        match output {
            Some(output) => format!("{input:?} -> {output:?}"),
            None => format!("{input:?} -> ?"),
        }
    }

    /// See [`Model::describe_state`].
    fn describe_state(&self, state: &Self::State) -> String {
        format!("{state:?}")
    }
}

/// Adapts a [`NondeterministicModel`] into a [`Model`] whose state is the sorted, deduplicated
/// set of possible states. A step is legal when it is legal from at least one of them.
#[derive(Clone, Debug, Default)]
pub struct PowerSet<N>(pub N);

impl<N: NondeterministicModel> Model for PowerSet<N> {
    type State = Vec<N::State>;
    type Input = N::Input;
    type Output = N::Output;

    fn init(&self) -> Self::State {
        let mut states = self.0.init();
        assert!(
            !states.is_empty(),
            "a nondeterministic model needs an initial state"
        );
        states.sort();
        states.dedup();
        states
    }

    fn step(
        &self,
        state: &Self::State,
        input: &Self::Input,
        output: Option<&Self::Output>,
    ) -> Option<Self::State> {
        let mut next: Vec<N::State> = state
            .iter()
            .flat_map(|s| self.0.step(s, input, output))
            .collect();
        next.sort();
        next.dedup();
        if next.is_empty() {
            None
        } else {
            Some(next)
        }
    }

    fn partition(&self, history: &[Operation<Self::Input, Self::Output>]) -> Vec<Partition> {
        self.0.partition(history)
    }

    fn describe_operation(&self, input: &Self::Input, output: Option<&Self::Output>) -> String {
        self.0.describe_operation(input, output)
    }

    fn describe_state(&self, state: &Self::State) -> String {
        let parts: Vec<String> = state.iter().map(|s| self.0.describe_state(s)).collect();
        format!("{{{}}}", parts.join(" | "))
    }

    fn state_size_bytes(&self, state: &Self::State) -> usize {
        std::mem::size_of::<Self::State>() + state.len() * std::mem::size_of::<N::State>()
    }
}
