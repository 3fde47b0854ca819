//! Services run under test by the simulator (kv store, shard controller, sharded kv).
