//! Ready-made sequential specifications.

pub mod kv;
mod kv_codec;
pub mod observed;
pub mod register;
pub mod unique_writes;

pub use kv::{KvAction, KvInput, KvModel, KvOutput, KvState, ShardedKvModel};
pub use observed::ObservedValues;
pub use register::{RegisterInput, RegisterModel, RegisterOutput};
