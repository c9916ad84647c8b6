//! The storage error type and the small set of kinds callers branch on.

use crate::batch::BatchError;

/// What kind of failure a [`StorageError`] is; `server` maps each kind to an
/// HTTP/gRPC status in one place.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The request is invalid (bad labels, bad matchers, corrupt bytes from a
    /// peer); retrying the same input fails again.
    BadData,
    /// A sample is older than the series' newest one.
    OutOfOrder,
    /// A sample is older than the out-of-order window or the retention.
    TooOld,
    /// A limit was hit.
    Limited,
    /// A RocksDB or invariant failure on this node.
    Internal,
}

/// Errors of the storage engine.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A label set failed validation.
    #[error("invalid series {labels}: {reason}")]
    InvalidLabels {
        /// The offending label set, in Prometheus notation.
        labels: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A selector is unusable (e.g. every matcher matches the empty string).
    #[error("invalid selector: {0}")]
    BadSelector(String),
    /// A Raft entry payload could not be decoded.
    #[error("cannot decode write batch: {0}")]
    Batch(#[from] BatchError),
    /// A snapshot stream is corrupt, truncated or of an unknown version.
    #[error("cannot restore snapshot: {0}")]
    BadSnapshot(String),
    /// A chunk read from disk or a peer is corrupt.
    #[error("cannot decode chunk: {0}")]
    Chunk(String),
    /// Data on this node's disk is not what this version wrote.
    #[error("corrupt data on disk: {0}")]
    Corrupt(String),
    /// RocksDB failed.
    #[error("rocksdb: {0}")]
    Rocks(#[from] rocksdb::Error),
    /// A shard id that cannot be used (`u32::MAX` is reserved).
    #[error("invalid shard id {0} (u32::MAX is reserved)")]
    InvalidShard(u32),
    /// A shard was dropped while in use.
    #[error("shard {0} was dropped")]
    ShardDropped(u32),
    /// A read gave up: the deadline of the query it serves passed.
    #[error("shard {shard}: the read's deadline passed")]
    DeadlinePassed {
        /// The shard.
        shard: u32,
    },
    /// A snapshot file could not be written or read.
    #[error("snapshot file {path}: {source}")]
    SnapshotFile {
        /// The file.
        path: std::path::PathBuf,
        /// What failed.
        source: std::io::Error,
    },
}

impl StorageError {
    /// The kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            StorageError::InvalidLabels { .. }
            | StorageError::BadSelector(_)
            | StorageError::Batch(_)
            | StorageError::BadSnapshot(_)
            | StorageError::InvalidShard(_) => ErrorKind::BadData,
            StorageError::DeadlinePassed { .. } => ErrorKind::Limited,
            StorageError::Chunk(_)
            | StorageError::Corrupt(_)
            | StorageError::Rocks(_)
            | StorageError::ShardDropped(_)
            | StorageError::SnapshotFile { .. } => ErrorKind::Internal,
        }
    }
}
