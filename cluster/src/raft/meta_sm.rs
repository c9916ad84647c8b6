//! The state machine of the meta group: the [`MetaState`] in memory, shared
//! with the node for reads. Its snapshot (JSON of [`MetaSnapshot`]) is also
//! what is persisted, synced, under [`keys::SM_META_SNAPSHOT`] in `sm_meta`
//! whenever openraft builds one; on restart the log after it is replayed.

use std::sync::Arc;

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    AnyError, EntryPayload, LogId, RaftSnapshotBuilder, SnapshotMeta, StorageError, StorageIOError,
    StoredMembership,
};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::meta::MetaState;
use crate::raft::codec::Entry;
use crate::raft::keys;
use crate::raft::log_store::RocksProvider;
use crate::raft::snapshot_data::SnapshotData;
use crate::types::{NodeId, Request, Response, TypeConfig};

type SErr = StorageError<NodeId>;
type Membership = StoredMembership<NodeId, openraft::BasicNode>;

fn any(e: impl std::fmt::Display) -> AnyError {
    AnyError::error(e.to_string())
}

/// A snapshot of the meta group.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct MetaSnapshot {
    /// Last applied log id.
    pub last_applied: Option<LogId<NodeId>>,
    /// Last applied membership.
    pub membership: Membership,
    /// The map.
    pub state: MetaState,
}

/// The meta group's state machine.
pub struct MetaStateMachine {
    db: Arc<dyn RocksProvider>,
    snap: MetaSnapshot,
    shared: Arc<RwLock<MetaState>>,
    changed: watch::Sender<u64>,
}

impl MetaStateMachine {
    /// Loads the persisted snapshot (if any); `shared` and `changed` are
    /// updated after every apply.
    pub fn open(
        db: Arc<dyn RocksProvider>,
        shared: Arc<RwLock<MetaState>>,
        changed: watch::Sender<u64>,
    ) -> Result<Self, SErr> {
        let cf = db.rocks().cf_handle(keys::CF_SM).ok_or_else(|| {
            StorageIOError::read_state_machine(any("column family sm_meta is missing"))
        })?;
        let snap = match db
            .rocks()
            .get_cf(cf, keys::SM_META_SNAPSHOT)
            .map_err(|e| StorageIOError::read_state_machine(any(e)))?
        {
            Some(b) => serde_json::from_slice(&b)
                .map_err(|e| StorageIOError::read_state_machine(any(e)))?,
            None => MetaSnapshot::default(),
        };
        *shared.write() = snap.state.clone();
        Ok(MetaStateMachine {
            db,
            snap,
            shared,
            changed,
        })
    }

    fn persist(&self) -> Result<(), SErr> {
        let cf = self.db.rocks().cf_handle(keys::CF_SM).ok_or_else(|| {
            StorageIOError::write_snapshot(None, any("column family sm_meta is missing"))
        })?;
        let b = serde_json::to_vec(&self.snap)
            .map_err(|e| StorageIOError::write_snapshot(None, any(e)))?;
        let mut wo = rocksdb::WriteOptions::default();
        wo.set_sync(true);
        self.db
            .rocks()
            .put_cf_opt(cf, keys::SM_META_SNAPSHOT, b, &wo)
            .map_err(|e| StorageIOError::write_snapshot(None, any(e)).into())
    }

    fn publish(&self) {
        *self.shared.write() = self.snap.state.clone();
        self.changed.send_modify(|v| *v += 1);
    }
}

fn meta_of(s: &MetaSnapshot) -> SnapshotMeta<NodeId, openraft::BasicNode> {
    SnapshotMeta {
        last_log_id: s.last_applied,
        last_membership: s.membership.clone(),
        snapshot_id: match &s.last_applied {
            Some(l) => format!("meta-{}-{}", l.leader_id.term, l.index),
            None => "meta-empty".into(),
        },
    }
}

/// Builds a meta snapshot from a copy of the state.
pub struct MetaSnapshotBuilder {
    db: Arc<dyn RocksProvider>,
    snap: MetaSnapshot,
}

impl RaftSnapshotBuilder<TypeConfig> for MetaSnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, SErr> {
        let sm = MetaStateMachine {
            db: self.db.clone(),
            snap: self.snap.clone(),
            shared: Arc::new(RwLock::new(MetaState::default())),
            changed: watch::channel(0).0,
        };
        sm.persist()?;
        let data = serde_json::to_vec(&self.snap)
            .map_err(|e| StorageIOError::write_snapshot(None, any(e)))?;
        Ok(Snapshot {
            meta: meta_of(&self.snap),
            snapshot: Box::new(SnapshotData::from_bytes(data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for MetaStateMachine {
    type SnapshotBuilder = MetaSnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId<NodeId>>, Membership), SErr> {
        Ok((self.snap.last_applied, self.snap.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, SErr>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut out = Vec::new();
        for e in entries {
            match &e.payload {
                EntryPayload::Normal(Request::Meta(cmd)) => self.snap.state.apply(cmd),
                EntryPayload::Membership(m) => {
                    self.snap.membership = StoredMembership::new(Some(e.log_id), m.clone())
                }
                EntryPayload::Blank | EntryPayload::Normal(Request::Write(_)) => {}
            }
            self.snap.last_applied = Some(e.log_id);
            out.push(Response::None);
        }
        self.publish();
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        MetaSnapshotBuilder {
            db: self.db.clone(),
            snap: self.snap.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<SnapshotData>, SErr> {
        Ok(Box::new(SnapshotData::empty()))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, openraft::BasicNode>,
        snapshot: Box<SnapshotData>,
    ) -> Result<(), SErr> {
        let bytes = snapshot.into_bytes().ok_or_else(|| {
            StorageIOError::write_snapshot(None, any("a meta snapshot is held in memory"))
        })?;
        let mut s: MetaSnapshot = serde_json::from_slice(&bytes)
            .map_err(|e| StorageIOError::write_snapshot(None, any(e)))?;
        s.last_applied = meta.last_log_id;
        s.membership = meta.last_membership.clone();
        self.snap = s;
        self.persist()?;
        self.publish();
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, SErr> {
        if self.snap.last_applied.is_none() {
            return Ok(None);
        }
        let data = serde_json::to_vec(&self.snap)
            .map_err(|e| StorageIOError::read_snapshot(None, any(e)))?;
        Ok(Some(Snapshot {
            meta: meta_of(&self.snap),
            snapshot: Box::new(SnapshotData::from_bytes(data)),
        }))
    }
}
