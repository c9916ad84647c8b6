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
//!
//! Organised by operation:
//! - [`write`](mod@write): a write's batches routed by shard to their leaders (local
//!   or forwarded as bytes) and proposed in few entries ([`write::propose`]).
//! - [`read`]: the cluster querier's fan-out to every shard's leader, and
//!   [`LocalQueryable`] over local shards.
//! - [`membership`]: peer probes, replica moves, join/decommission, the
//!   pure placement rules ([`membership::planner`]), checks on peers' meta
//!   commands ([`membership::check`]) and a new cluster's initial layout.
//! - [`raft`]: log store, state machines, entry codec, network, snapshot
//!   transfer, and the guard on peers' Raft messages.
//! - [`grpc`]: the thin server-side dispatcher of the node-to-node service;
//!   [`meta`]: the replicated cluster map; [`auth`] and [`tls`]: who may
//!   speak on the cluster port.
//!
//! ```no_run
//! # async fn demo() -> Result<(), cluster::ClusterError> {
//! use cluster::{IncomingSeries, Node, NodeConfig};
//! use model::{Labels, Sample};
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
pub mod config;
mod convert;
pub mod disk;
pub mod error;
pub mod grpc;
pub mod membership;
pub mod meta;
mod node;
pub mod raft;
pub mod read;
mod status;
mod supervisor;
pub mod tls;
pub mod types;
pub mod write;

pub use config::NodeConfig;
pub use error::{ClusterError, ErrorKind};
pub use node::Node;
pub use read::local::LocalQueryable;
pub use read::{merge_sorted, on_blocking_thread, ClusterQuerier};
pub use status::{ClusterStatus, GroupStats, MoveStatus, NodeStats, NodeStatus, ShardStatus};
pub use types::{NodeId, Rejection};
pub use write::propose::{IncomingSeries, ShardOutcome};
pub use write::WriteOutcome;
