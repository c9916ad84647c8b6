//! Silverback storage: Gorilla-compressed chunks, the in-memory head, the
//! series index and their RocksDB layout, shaped as the state machine that
//! Raft drives.
#![deny(missing_docs)]
