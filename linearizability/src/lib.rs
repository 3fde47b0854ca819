//! Porcupine-style linearizability checker.
