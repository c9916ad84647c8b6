//! The state machine of a shard group: a thin adapter over
//! [`storage::Shard`].
//!
//! Storage log indexes: one Raft entry may carry several sub-batches (one
//! per batched caller, so each learns its own outcome), and storage needs a
//! distinct, increasing index per `apply`. Sub-batch `k` of Raft entry `i`
//! is applied at storage index `i << 8 | k` (k < 255); entries without a
//! batch advance it to `i << 8`. Storage ignores indexes at or below its
//! applied index, which makes replay after a restart (or after a snapshot
//! newer than its metadata) idempotent.
//!
//! The last applied Raft log id and membership travel with every storage
//! checkpoint as the shard's user meta (JSON of [`SmMeta`]).
//!
//! Snapshot data: the storage snapshot stream (`storage::snapshot`),
//! streamed from a pinned RocksDB snapshot when sent and received into a
//! file (see [`crate::raft::snapshot_data`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    AnyError, EntryPayload, LogId, RaftSnapshotBuilder, SnapshotMeta, StorageError, StorageIOError,
    StoredMembership,
};
use serde::{Deserialize, Serialize};
use storage::Shard;

use crate::raft::codec::Entry;
use crate::raft::snapshot_data::SnapshotData;
use crate::types::{BatchOutcome, NodeId, Rejection, Request, Response, TypeConfig, WriteEntry};

/// Largest number of sub-batches in one entry.
pub const MAX_SUB_BATCHES: usize = 255;

type SErr = StorageError<NodeId>;
type Membership = StoredMembership<NodeId, openraft::BasicNode>;

/// What the adapter stores with each storage checkpoint.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SmMeta {
    /// Last applied Raft log id.
    pub last_applied: Option<LogId<NodeId>>,
    /// Last applied membership.
    pub membership: Membership,
}

/// Storage index of sub-batch `k` of Raft entry `index`.
pub fn storage_index(index: u64, k: usize) -> u64 {
    (index << 8) | (k as u64 & 0xFF)
}

fn any(e: impl std::fmt::Display) -> AnyError {
    AnyError::error(e.to_string())
}

/// The state machine of one shard group.
pub struct ShardStateMachine {
    shard: Arc<Shard>,
    meta: SmMeta,
    /// The first `get_current_snapshot` call comes from openraft's start-up
    /// and only needs the metadata; it is answered without data.
    startup_done: bool,
    /// Counts installed snapshots (the node's figure).
    installed: Arc<AtomicU64>,
}

impl ShardStateMachine {
    /// Wraps a storage shard, reading its last checkpointed meta.
    pub fn new(shard: Arc<Shard>, installed: Arc<AtomicU64>) -> Result<Self, SErr> {
        let meta = match shard.user_meta() {
            Some(b) => serde_json::from_slice(&b)
                .map_err(|e| StorageIOError::read_state_machine(any(e)))?,
            None => SmMeta::default(),
        };
        Ok(ShardStateMachine {
            shard,
            meta,
            startup_done: false,
            installed,
        })
    }

    fn save_meta(&self) {
        // A plain struct always serializes.
        let b = serde_json::to_vec(&self.meta).expect("sm meta serializes");
        self.shard.set_user_meta(b);
    }

    fn apply_write(&self, index: u64, w: &WriteEntry) -> Result<Vec<BatchOutcome>, SErr> {
        let mut outs = Vec::with_capacity(w.batches.len());
        let limits = w.limits();
        for (k, b) in w.batches.iter().enumerate().take(MAX_SUB_BATCHES) {
            // Every replica sees the same bytes, so a batch that does not
            // decode is refused the same way everywhere, with nothing applied.
            let o = match self
                .shard
                .apply_limited(storage_index(index, k), b, &limits)
            {
                Ok(o) => o,
                Err(storage::StorageError::Batch(e)) => {
                    outs.push(BatchOutcome {
                        rejected: vec![Rejection {
                            reason: storage::RejectReason::InvalidBatch,
                            count: 1,
                            example: e.to_string(),
                        }],
                        ..Default::default()
                    });
                    continue;
                }
                Err(e) => return Err(StorageIOError::write_state_machine(any(e)).into()),
            };
            outs.push(BatchOutcome {
                accepted: o.accepted,
                rejected: o.rejected.into_iter().map(Rejection::from).collect(),
                series_ids: o.series_ids,
                unknown_ids: o.unknown_ids,
            });
        }
        Ok(outs)
    }
}

/// Builds snapshot metadata; the data is produced when a snapshot is sent.
pub struct ShardSnapshotBuilder {
    shard: Arc<Shard>,
    meta: SmMeta,
}

fn snapshot_meta(meta: &SmMeta) -> SnapshotMeta<NodeId, openraft::BasicNode> {
    let id = match &meta.last_applied {
        Some(l) => format!("{}-{}-{}", l.leader_id.term, l.leader_id.node_id, l.index),
        None => "empty".to_string(),
    };
    SnapshotMeta {
        last_log_id: meta.last_applied,
        last_membership: meta.membership.clone(),
        snapshot_id: id,
    }
}

impl RaftSnapshotBuilder<TypeConfig> for ShardSnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, SErr> {
        // A checkpoint at or after `meta` makes everything up to it durable,
        // so the log up to it may be purged.
        let shard = self.shard.clone();
        tokio::task::spawn_blocking(move || shard.checkpoint())
            .await
            .map_err(|e| StorageIOError::write_snapshot(None, any(e)))?
            .map_err(|e| StorageIOError::write_snapshot(None, any(e)))?;
        Ok(Snapshot {
            meta: snapshot_meta(&self.meta),
            snapshot: Box::new(SnapshotData::empty()),
        })
    }
}

impl RaftStateMachine<TypeConfig> for ShardStateMachine {
    type SnapshotBuilder = ShardSnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId<NodeId>>, Membership), SErr> {
        Ok((self.meta.last_applied, self.meta.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, SErr>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut out = Vec::new();
        for e in entries {
            let idx = e.log_id.index;
            let resp = match &e.payload {
                EntryPayload::Normal(Request::Write(w)) => {
                    Response::Write(self.apply_write(idx, w)?)
                }
                EntryPayload::Membership(m) => {
                    self.meta.membership = StoredMembership::new(Some(e.log_id), m.clone());
                    self.shard.apply_noop(storage_index(idx, 0));
                    Response::None
                }
                EntryPayload::Blank | EntryPayload::Normal(Request::Meta(_)) => {
                    self.shard.apply_noop(storage_index(idx, 0));
                    Response::None
                }
            };
            self.meta.last_applied = Some(e.log_id);
            out.push(resp);
        }
        self.save_meta();
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        ShardSnapshotBuilder {
            shard: self.shard.clone(),
            meta: self.meta.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<SnapshotData>, SErr> {
        let (path, file) = self
            .shard
            .create_snapshot_file()
            .map_err(|e| StorageIOError::write_snapshot(None, any(e)))?;
        Ok(Box::new(SnapshotData::file(path, file)))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, openraft::BasicNode>,
        snapshot: Box<SnapshotData>,
    ) -> Result<(), SErr> {
        let file = snapshot.into_file().ok_or_else(|| {
            StorageIOError::write_snapshot(None, any("a shard snapshot is received into a file"))
        })?;
        let shard = self.shard.clone();
        let new_meta = SmMeta {
            last_applied: meta.last_log_id,
            membership: meta.last_membership.clone(),
        };
        let meta_bytes = serde_json::to_vec(&new_meta).expect("sm meta serializes");
        tokio::task::spawn_blocking(move || {
            shard.restore_file(file.path())?;
            shard.set_user_meta(meta_bytes);
            shard.checkpoint()
        })
        .await
        .map_err(|e| StorageIOError::write_snapshot(None, any(e)))?
        .map_err(|e| StorageIOError::write_snapshot(None, any(e)))?;
        self.meta = new_meta;
        self.installed.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, SErr> {
        // The first call is openraft's start-up, even when there is nothing
        // yet; every later call sends data (a replica that started empty and
        // then filled must not send an empty snapshot to a new learner).
        let first = !std::mem::replace(&mut self.startup_done, true);
        if self.meta.last_applied.is_none() {
            return Ok(None);
        }
        let meta = snapshot_meta(&self.meta);
        if first {
            return Ok(Some(Snapshot {
                meta,
                snapshot: Box::new(SnapshotData::empty()),
            }));
        }
        self.save_meta();
        let shard = self.shard.clone();
        let src = tokio::task::spawn_blocking(move || shard.snapshot_source())
            .await
            .map_err(|e| StorageIOError::read_snapshot(None, any(e)))?
            .map_err(|e| StorageIOError::read_snapshot(None, any(e)))?;
        Ok(Some(Snapshot {
            meta,
            snapshot: Box::new(SnapshotData::source(src)),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_indexes_increase() {
        assert!(storage_index(1, 254) < storage_index(2, 0));
        assert!(storage_index(2, 0) < storage_index(2, 1));
    }
}
