//! Raft plumbing, split the way openraft splits it: [`log_store`] (every
//! group's log in one RocksDB column family, group-committed fsyncs, layout
//! in [`keys`], entries in [`codec`]), the state machines [`shard_sm`] (a
//! storage shard) and [`meta_sm`] (the cluster map), [`network`] (the
//! client: one channel per peer for all groups) with its wire format
//! [`rpc`], [`guard`] (checks on peers' Raft messages before openraft sees
//! them), [`snapshot_data`] (snapshots streamed to and from disk) and
//! [`group`] (one hosted group: its openraft instance, shard and proposer).
//! The server side of the RPCs is the crate's [`crate::grpc`] dispatcher.

pub mod codec;
pub mod group;
pub mod guard;
pub mod keys;
pub mod log_store;
pub mod meta_sm;
pub mod network;
pub mod rpc;
pub mod serve;
pub mod shard_sm;
pub mod snapshot_data;
