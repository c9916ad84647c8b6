//! The Raft log store: every group's log in the shared `raft_log` column
//! family, votes and pointers in `raft_meta` (layouts in [`crate::raft::keys`]).
//!
//! Appends are written to RocksDB at once (so they are readable when
//! `append` returns) and then handed to the [`Syncer`], one thread that
//! group-commits: it takes every pending append of every group, syncs the
//! RocksDB WAL once (`FlushWAL(sync)`), and only then tells openraft the
//! entries are durable.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{AnyError, LogId, LogState, RaftLogReader, StorageError, StorageIOError, Vote};
use parking_lot::Mutex;
use rocksdb::{WriteBatch, WriteOptions};
use tokio::sync::mpsc;

use crate::raft::codec::{self, Entry};
use crate::raft::keys::{self, CF_LOG, CF_META};
use crate::types::{GroupId, NodeId, TypeConfig};

/// Gives access to the node's RocksDB instance.
pub trait RocksProvider: Send + Sync + 'static {
    /// The shared RocksDB handle.
    fn rocks(&self) -> &rocksdb::DB;
}

type SErr = StorageError<NodeId>;

fn io_err(e: impl std::error::Error + 'static) -> AnyError {
    AnyError::new(&e)
}

fn missing_cf(name: &str) -> AnyError {
    AnyError::error(format!("column family {name} is missing"))
}

/// Group-commits log appends of all groups: one WAL sync per round.
#[derive(Clone)]
pub struct Syncer {
    tx: mpsc::Sender<LogFlushed<TypeConfig>>,
    /// The DB, until [`Syncer::stop`] takes it; the thread uses it under
    /// the lock and never holds a reference of its own.
    db: Arc<Mutex<Option<Arc<dyn RocksProvider>>>>,
}

impl Syncer {
    /// Starts the sync thread (it ends when every `Syncer` clone is gone).
    pub fn start(db: Arc<dyn RocksProvider>) -> std::io::Result<Syncer> {
        let (tx, mut rx) = mpsc::channel::<LogFlushed<TypeConfig>>(4096);
        let db = Arc::new(Mutex::new(Some(db)));
        let shared = db.clone();
        std::thread::Builder::new()
            .name("raft-log-sync".into())
            .spawn(move || {
                let mut pending = Vec::with_capacity(256);
                while let Some(cb) = rx.blocking_recv() {
                    pending.push(cb);
                    while pending.len() < 4096 {
                        match rx.try_recv() {
                            Ok(cb) => pending.push(cb),
                            Err(_) => break,
                        }
                    }
                    let res = match shared.lock().as_ref() {
                        Some(db) => db.rocks().flush_wal(true).map_err(|e| e.to_string()),
                        None => Err("the log sync thread was stopped".to_string()),
                    };
                    for cb in pending.drain(..) {
                        cb.log_io_completed(res.clone().map_err(std::io::Error::other));
                    }
                }
            })?;
        Ok(Syncer { tx, db })
    }

    /// Stops syncing (later appends fail) and drops the thread's access to
    /// the DB on the calling thread, after a sync in progress. Otherwise
    /// the thread, which ends only when the last log store is dropped, may
    /// drop the last reference to the DB and close it while the process
    /// exits and destroys RocksDB's static state: the close then aborts
    /// the process ("pthread lock: Invalid argument").
    pub fn stop(&self) {
        let db = self.db.lock().take();
        drop(db);
    }
}

/// Bytes of every group's log entries appended since this process started,
/// keyed by the first index of each append. The supervisor weighs them
/// against `--raft-log-max-bytes` when it decides how much log to keep for
/// followers that fell behind.
#[derive(Debug, Default)]
pub struct LogSizes {
    groups: parking_lot::Mutex<HashMap<GroupId, BTreeMap<u64, u64>>>,
}

impl LogSizes {
    fn appended(&self, group: GroupId, first: u64, bytes: u64) {
        let mut g = self.groups.lock();
        let m = g.entry(group).or_default();
        *m.entry(first).or_default() += bytes;
    }

    fn truncated(&self, group: GroupId, from: u64) {
        if let Some(m) = self.groups.lock().get_mut(&group) {
            m.split_off(&from);
        }
    }

    fn purged(&self, group: GroupId, upto: u64) {
        let mut g = self.groups.lock();
        let Some(m) = g.get_mut(&group) else { return };
        let rest = m.split_off(&upto.saturating_add(1));
        // The append that straddles the cut still has entries after it.
        let straddling = m.last_key_value().map(|(_, b)| *b);
        *m = rest;
        if let Some(b) = straddling {
            m.entry(upto.saturating_add(1)).or_insert(b);
        }
    }

    fn forget(&self, group: GroupId) {
        self.groups.lock().remove(&group);
    }

    /// Bytes of `group`'s log after index `after`; `None` when some of those
    /// entries predate this process (their size is not known).
    pub fn bytes_after(&self, group: GroupId, after: u64) -> Option<u64> {
        let g = self.groups.lock();
        let m = g.get(&group)?;
        let (&first, _) = m.first_key_value()?;
        if first > after.saturating_add(1) {
            return None;
        }
        Some(m.range(after.saturating_add(1)..).map(|(_, b)| *b).sum())
    }
}

/// The log of one group.
#[derive(Clone)]
pub struct LogStore {
    group: GroupId,
    db: Arc<dyn RocksProvider>,
    syncer: Syncer,
    sizes: Arc<LogSizes>,
}

impl LogStore {
    /// The log store of `group`.
    pub fn new(
        group: GroupId,
        db: Arc<dyn RocksProvider>,
        syncer: Syncer,
        sizes: Arc<LogSizes>,
    ) -> Self {
        LogStore {
            group,
            db,
            syncer,
            sizes,
        }
    }

    fn cf(&self, name: &str) -> Result<&rocksdb::ColumnFamily, AnyError> {
        self.db
            .rocks()
            .cf_handle(name)
            .ok_or_else(|| missing_cf(name))
    }

    fn get_meta<T: serde::de::DeserializeOwned>(&self, kind: u8) -> Result<Option<T>, AnyError> {
        let cf = self.cf(CF_META)?;
        match self
            .db
            .rocks()
            .get_pinned_cf(cf, keys::meta_key(self.group, kind))
            .map_err(io_err)?
        {
            None => Ok(None),
            Some(v) => Ok(Some(serde_json::from_slice(&v).map_err(io_err)?)),
        }
    }

    fn put_meta<T: serde::Serialize>(&self, kind: u8, v: &T, sync: bool) -> Result<(), AnyError> {
        let cf = self.cf(CF_META)?;
        let bytes = serde_json::to_vec(v).map_err(io_err)?;
        let mut wo = WriteOptions::default();
        wo.set_sync(sync);
        self.db
            .rocks()
            .put_cf_opt(cf, keys::meta_key(self.group, kind), bytes, &wo)
            .map_err(io_err)
    }

    fn last_entry(&self) -> Result<Option<Entry>, AnyError> {
        let cf = self.cf(CF_LOG)?;
        let mut it = self.db.rocks().raw_iterator_cf(cf);
        it.seek_for_prev(keys::log_key(self.group, u64::MAX));
        match (it.key(), it.value()) {
            (Some(k), Some(v)) if keys::log_key_index(self.group, k).is_some() => {
                Ok(Some(codec::decode_entry(v).map_err(io_err)?))
            }
            _ => it.status().map(|_| None).map_err(io_err),
        }
    }

    /// Deletes the entries up to and including `log_id` and records it as
    /// the last purged id (`sync`: the pointer is synced to disk at once).
    /// Only for ids a durable state-machine checkpoint covers.
    pub fn purge_through(&self, log_id: LogId<NodeId>, sync: bool) -> Result<(), AnyError> {
        self.put_meta(keys::META_PURGED, &log_id, sync)?;
        self.sizes.purged(self.group, log_id.index);
        let cf = self.cf(CF_LOG)?;
        let mut b = WriteBatch::default();
        b.delete_range_cf(
            cf,
            keys::log_key(self.group, 0),
            keys::log_key(self.group, log_id.index.saturating_add(1)),
        );
        self.db.rocks().write(b).map_err(io_err)
    }

    /// Compacts the log column family (after purges at shutdown, so the
    /// purged entries leave the disk instead of waiting for compaction).
    pub fn compact_all(&self) -> Result<(), AnyError> {
        let cf = self.cf(CF_LOG)?;
        self.db
            .rocks()
            .compact_range_cf(cf, None::<&[u8]>, None::<&[u8]>);
        Ok(())
    }

    /// Deletes every trace of this group (its replica moved away).
    pub fn destroy(&self) -> Result<(), AnyError> {
        self.sizes.forget(self.group);
        let mut b = WriteBatch::default();
        b.delete_range_cf(
            self.cf(CF_LOG)?,
            keys::log_key(self.group, 0),
            keys::log_key(self.group + 1, 0),
        );
        b.delete_range_cf(
            self.cf(CF_META)?,
            keys::meta_key(self.group, 0),
            keys::meta_key(self.group + 1, 0),
        );
        self.db.rocks().write(b).map_err(io_err)
    }
}

/// Groups that have any Raft state on this node (vote or log).
pub fn groups_with_state(db: &dyn RocksProvider) -> Result<Vec<GroupId>, AnyError> {
    let cf = db
        .rocks()
        .cf_handle(CF_META)
        .ok_or_else(|| missing_cf(CF_META))?;
    let mut out = Vec::new();
    for kv in db.rocks().iterator_cf(cf, rocksdb::IteratorMode::Start) {
        let (k, _) = kv.map_err(io_err)?;
        if let Some(g) = keys::meta_key_group(&k) {
            if out.last() != Some(&g) && k[8] == keys::META_VOTE {
                out.push(g);
            }
        }
    }
    Ok(out)
}

fn range_start(r: &impl RangeBounds<u64>) -> u64 {
    match r.start_bound() {
        Bound::Included(&x) => x,
        Bound::Excluded(&x) => x.saturating_add(1),
        Bound::Unbounded => 0,
    }
}

fn range_contains_end(r: &impl RangeBounds<u64>, i: u64) -> bool {
    match r.end_bound() {
        Bound::Included(&x) => i <= x,
        Bound::Excluded(&x) => i < x,
        Bound::Unbounded => true,
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, SErr> {
        let cf = self.cf(CF_LOG).map_err(StorageIOError::read_logs)?;
        let start = range_start(&range);
        let mut it = self.db.rocks().raw_iterator_cf(cf);
        it.seek(keys::log_key(self.group, start));
        let mut out = Vec::new();
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            let Some(i) = keys::log_key_index(self.group, k) else {
                break;
            };
            if !range_contains_end(&range, i) {
                break;
            }
            out.push(
                codec::decode_entry(v)
                    .map_err(|e| StorageIOError::read_log_at_index(i, io_err(e)))?,
            );
            it.next();
        }
        it.status()
            .map_err(|e| StorageIOError::read_logs(io_err(e)))?;
        Ok(out)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, SErr> {
        let purged: Option<LogId<NodeId>> = self
            .get_meta(keys::META_PURGED)
            .map_err(StorageIOError::read_logs)?;
        let last = self
            .last_entry()
            .map_err(StorageIOError::read_logs)?
            .map(|e| e.log_id)
            .or(purged);
        Ok(LogState {
            last_purged_log_id: purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), SErr> {
        self.put_meta(keys::META_VOTE, vote, true)
            .map_err(|e| StorageIOError::write_vote(e).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, SErr> {
        self.get_meta(keys::META_VOTE)
            .map_err(|e| StorageIOError::read_vote(e).into())
    }

    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> Result<(), SErr> {
        self.put_meta(keys::META_COMMITTED, &committed, false)
            .map_err(|e| StorageIOError::write(e).into())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, SErr> {
        let c: Option<Option<LogId<NodeId>>> = self
            .get_meta(keys::META_COMMITTED)
            .map_err(StorageIOError::read)?;
        Ok(c.flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), SErr>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let cf = self.cf(CF_LOG).map_err(StorageIOError::write_logs)?;
        let mut b = WriteBatch::default();
        let mut buf = Vec::with_capacity(256);
        let (mut first, mut bytes) = (None, 0u64);
        for e in entries {
            buf.clear();
            codec::encode_entry(&e, &mut buf);
            b.put_cf(cf, keys::log_key(self.group, e.log_id.index), &buf);
            first.get_or_insert(e.log_id.index);
            bytes += buf.len() as u64;
        }
        if let Some(first) = first {
            self.sizes.appended(self.group, first, bytes);
        }
        self.db
            .rocks()
            .write(b)
            .map_err(|e| StorageIOError::write_logs(io_err(e)))?;
        if let Err(e) = self.syncer.tx.send(callback).await {
            // The sync thread is gone (shutdown): report failure to openraft.
            e.0.log_io_completed(Err(std::io::Error::other("log sync thread stopped")));
        }
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), SErr> {
        self.sizes.truncated(self.group, log_id.index);
        let cf = self.cf(CF_LOG).map_err(StorageIOError::write_logs)?;
        let mut b = WriteBatch::default();
        b.delete_range_cf(
            cf,
            keys::log_key(self.group, log_id.index),
            keys::log_key(self.group + 1, 0),
        );
        self.db
            .rocks()
            .write(b)
            .map_err(|e| StorageIOError::write_logs(io_err(e)).into())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), SErr> {
        self.purge_through(log_id, false)
            .map_err(|e| StorageIOError::write_logs(e).into())
    }
}
