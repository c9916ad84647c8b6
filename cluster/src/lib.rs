//! Silverback cluster: shards replicated by openraft over gRPC.
//!
//! Every shard is a Raft group whose state machine is a [`storage::Shard`];
//! a meta group holds the cluster map. A single node is a cluster of one,
//! through the same code.
//!
//! - [`Node`]: one member. [`Node::start`] opens storage, serves the
//!   node-to-node gRPC service and runs the hosted groups;
//!   [`Node::write`] routes series to their shards' leaders;
//!   [`Node::querier`] is the cluster-wide [`query::model::Queryable`].
//! - Raft plumbing, mirroring openraft's split: [`log_store`] (all groups'
//!   logs in one RocksDB, group-committed fsyncs), [`shard_sm`] and
//!   [`meta_sm`] (state machines), [`network`] (one channel per peer for all
//!   groups) and [`grpc`] (the server side), [`rpc`] and [`codec`] (wire and
//!   log formats).
//! - [`shard_map`]: which shard a series belongs to and the initial replica
//!   layout; [`meta`]: the replicated cluster map.
//!
//! ```no_run
//! # async fn demo() -> Result<(), cluster::ClusterError> {
//! use cluster::{IncomingSeries, Node, NodeConfig};
//! use query::model::{Labels, Sample};
//!
//! let node = Node::start(NodeConfig {
//!     data_dir: "/tmp/silverback".into(),
//!     ..Default::default()
//! })
//! .await?;
//! let out = node
//!     .write(vec![IncomingSeries {
//!         labels: Labels::from_pairs([("__name__", "up"), ("job", "api")]),
//!         samples: vec![Sample { t: 1_700_000_000_000, v: 1.0 }],
//!     }])
//!     .await?;
//! assert_eq!(out.accepted, 1);
//! node.shutdown().await?;
//! # Ok(()) }
//! ```
#![deny(missing_docs)]
// openraft's storage and network traits fix their error types
// (`StorageError`, `RPCError`), which are larger than clippy likes; our
// helpers return the same types so `?` works without boxing and unboxing.
#![allow(clippy::result_large_err)]

pub mod auth;
pub mod codec;
pub mod config;
mod convert;
pub mod disk;
pub mod error;
pub mod group;
pub mod grpc;
pub mod keys;
pub mod log_store;
mod membership;
pub mod meta;
pub mod meta_check;
pub mod meta_sm;
pub mod network;
mod node;
pub mod planner;
pub mod proposer;
pub mod raft_guard;
mod read;
pub mod rpc;
pub mod shard_map;
pub mod shard_sm;
pub mod snapshot_data;
mod status;
mod supervisor;
pub mod tls;
pub mod types;
mod write;

pub use config::NodeConfig;
pub use error::{ClusterError, ErrorKind};
pub use node::Node;
pub use proposer::{IncomingSeries, ShardOutcome};
pub use read::{merge_sorted, on_blocking_thread, ClusterQuerier};
pub use status::{ClusterStatus, GroupStats, MoveStatus, NodeStats, NodeStatus, ShardStatus};
pub use types::{NodeId, Rejection};
pub use write::WriteOutcome;
