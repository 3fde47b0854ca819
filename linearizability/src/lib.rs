//! A Porcupine-style linearizability checker.
//!
//! A history is a list of operations, each with the time it was called, the time it returned
//! (if it did) and what it returned. It is *linearizable* when every operation can be given a
//! single instant inside its interval such that, taken in that order, the operations are a
//! legal run of the object's sequential specification (its [`Model`]).
//!
//! # Tutorial
//!
//! Record operations as a test runs, then check them:
//!
//! ```
//! use std::time::Duration;
//! use linearizability::{check, CheckResult, ClientId, Recorder, Timestamp};
//! use linearizability::models::{RegisterInput, RegisterModel, RegisterOutput};
//!
//! let mut recorder = Recorder::new();
//! // Client 1 writes 7 during [0, 10]; client 2 reads during [5, 20] and sees 7.
//! let w = recorder.call(ClientId(1), Timestamp(0), RegisterInput::Write(7)).unwrap();
//! let r = recorder.call(ClientId(2), Timestamp(5), RegisterInput::Read).unwrap();
//! recorder.ok(w, Timestamp(10), RegisterOutput::Write).unwrap();
//! recorder.ok(r, Timestamp(20), RegisterOutput::Read(Some(7))).unwrap();
//! // Client 3 reads nil afterwards: the write cannot be undone, so this is not linearizable.
//! let late = recorder.call(ClientId(3), Timestamp(30), RegisterInput::Read).unwrap();
//! recorder.ok(late, Timestamp(40), RegisterOutput::Read(None)).unwrap();
//!
//! let history = recorder.finish();
//! let result = check(&RegisterModel, &history, Some(Duration::from_secs(1)));
//! assert!(matches!(result, CheckResult::Illegal(_)));
//! assert_eq!(check(&RegisterModel, &history[..2], None), CheckResult::Ok);
//! ```
//!
//! Operations that never returned (the client crashed or gave up while the request may still
//! be in flight) are left open by [`Recorder::finish`]: they may take effect at any time after
//! their call, or never. An operation closed with [`Recorder::unknown`] took effect before its
//! return or never, with any output.
//!
//! Histories can also be read from JSON Lines files ([`jsonl`]) and checked from the command
//! line with the `lincheck` binary. [`check_with`] gives a verdict per partition (per key for
//! the key-value model), [`explain`] a short account of a small set of conflicting
//! operations (within a time budget), and [`visualize`] a self-contained HTML page.
//! [`spill`] checks a history too large for memory one partition at a time, from a file.
//! [`generate`] writes random histories of known verdict, for tests and benchmarks.
//!
//! # How the search works
//!
//! The search is Wing & Gong's, with Lowe's memo cache of (linearized set, state), as in
//! Porcupine; see [`search`] for details. On top of that, and all exact:
//! - states are interned to 4-byte ids and model steps are cached per (state, operation);
//!   the linearized set carries an incrementally updated (Zobrist) hash, and the memo cache
//!   packs configurations densely, with a memory limit that ends the check as Unknown;
//! - candidates are tried most urgent first (earliest return);
//! - a legal read-only operation is linearized greedily, without branching
//!   ([`Model::is_read_only`]);
//! - a configuration fails at once when an operation that must take effect soon cannot
//!   become legal through the operations that may precede it ([`Model::may_become_legal`]);
//! - an operation that never returned is never placed where it changes nothing, and of several
//!   identical ones only the earliest pending one is tried;
//! - a model may specialize itself to a partition ([`Model::specialize`]): the key-value model
//!   merges every value that no read returned and no compare-and-set names into one state,
//!   so orders of appends that a later put erases unobserved are not told apart;
//! - operations that never returned and that no remaining operation can observe are left out
//!   ([`Model::dispensable`]): a write of a value nobody reads stays a candidate forever
//!   otherwise, and the search would try it at every dead end;
//! - of the overwrites that never returned ([`Model::overwrites`]: for the register, writes)
//!   whose observers are all linearized, only one is tried at each configuration, and none
//!   where the state was left by one: what remains cannot tell them apart
//!   ([`overwrites`]);
//! - a configuration fails as soon as a state that some remaining operation requires can no
//!   longer come back ([`dead`], from [`Model::requirement`] and [`Model::produces`]), and a
//!   read of a value certainly overwritten before it was called is reported at once;
//! - a blind overwrite ([`Model::blind`]: for the key-value model, a put or append leaving a
//!   value no get can reach) is placed only when its return comes first, or just before a
//!   reset ([`Model::resets`]) that erases it, instead of at every point in every subset;
//! - each partition is first searched briefly without the set-up above (dead values, blind
//!   overwrites, [`Model::refine`]); only the partitions that search does not decide pay
//!   for it;
//! - a partition the quick search does not decide is first offered to the model's own
//!   decision ([`Model::decide`]): for the register, when no value is written twice, reads
//!   name the write they saw and the history is decided in `O(n log n)` unless compare-and-sets
//!   that failed cannot be placed ([`models::unique_writes`]);
//! - partitions (keys) are checked independently, in parallel if asked to.
//!
//! # Determinism
//!
//! With [`CheckOptions::threads`] set to 1 and no timeout, a check reads no clock, starts no
//! thread and is fully deterministic; bound it with [`CheckOptions::configurations_max`].

#![deny(missing_docs)]

pub mod bitset;
pub mod checker;
pub mod dead;
pub mod encoding;
pub mod explain;
pub mod generate;
pub mod history;
pub mod jsonl;
pub mod list;
pub mod memo;
pub mod model;
pub mod models;
pub mod numbering;
pub mod order;
pub mod overwrites;
pub mod recorder;
pub mod search;
pub mod spill;
pub mod states;
pub mod visualize;

pub use checker::{
    check, check_with, CheckOptions, CheckReport, CheckResult, Counterexample, PartitionReport,
    StopReason, Verdict,
};
pub use history::{ClientId, History, Operation, Outcome, Timestamp};
pub use jsonl::{HistoryError, JsonCodec};
pub use model::{Decision, Model, NondeterministicModel, Partition, PowerSet, Produces};
pub use recorder::{OpId, RecordError, Recorder};
