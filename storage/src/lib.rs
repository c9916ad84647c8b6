//! Silverback storage: Gorilla-compressed chunks, the in-memory head, the
//! series index and their RocksDB layout, shaped as the state machine that
//! Raft drives.
//!
//! - [`Db`]: the node's one RocksDB instance (column families in [`keys`]).
//! - [`Shard`]: the state machine of one shard: [`Shard::apply`] a
//!   [`WriteBatch`] (the Raft entry payload, format in [`batch`]),
//!   [`Shard::checkpoint`] to make it durable (storage has no WAL of its own:
//!   the Raft log is the WAL), [`Shard::snapshot`]/[`Shard::restore`]
//!   (format in [`snapshot`]), and the reads [`Shard::select`],
//!   [`Shard::select_chunks`], [`Shard::label_names`],
//!   [`Shard::label_values`], [`Shard::series`] (matchers and label reads
//!   answered by an in-memory inverted index), [`Shard::tsdb_stats`]
//!   ([`TsdbStats`], cardinality figures read off that index).
//! - [`chunk`]: the Gorilla chunk codec; [`merge_chunks`] decodes and merges
//!   a series' chunks.
//!
//! ```
//! use model::{Labels, Matcher, Sample};
//! use storage::{Db, SeriesRef, SeriesSamples, StorageOptions, WriteBatch};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let db = Db::open(dir.path(), StorageOptions::default()).unwrap();
//! let shard = db.shard(0).unwrap();
//! let up = Labels::from_pairs([("__name__", "up"), ("job", "api")]);
//! let batch = WriteBatch::Samples(vec![SeriesSamples {
//!     series: SeriesRef::Labels(up.clone()),
//!     samples: vec![Sample { t: 1000, v: 1.0 }, Sample { t: 2000, v: 0.0 }],
//! }]);
//! let out = shard.apply(1, &batch).unwrap();
//! assert_eq!(out.accepted, 2);
//! shard.checkpoint().unwrap();
//! let got = shard.select(&[Matcher::equal("job", "api")], 0, 1500).unwrap();
//! assert_eq!(got[0].labels, up);
//! assert_eq!(got[0].samples, vec![Sample { t: 1000, v: 1.0 }]);
//! ```
#![deny(missing_docs)]

pub mod batch;
pub mod chunk;
mod db;
mod error;
mod head;
pub mod keys;
mod labels;
mod merge;
mod outcome;
mod shard;
pub mod snapshot;

pub use batch::{
    BatchEncoder, BatchError, BatchView, RawSeriesRef, SeriesReader, SeriesRef, SeriesSamples,
    WriteBatch,
};
pub use db::{Db, StorageOptions};
pub use error::{ErrorKind, StorageError};
pub use labels::{valid_label_name, validate_labels};
pub use merge::merge_chunks;
pub use outcome::{ApplyOutcome, RejectReason, Rejection, SeriesLimits};
pub use shard::{
    EncodedChunk, PartSink, SeriesChunks, Shard, ShardStats, SnapshotSource, TsdbStats,
};
