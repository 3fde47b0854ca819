//! Deterministic simulator for raft-core on madsim.
