//! [`Db`]: the one RocksDB instance of a node, its column families and their
//! options, and the registry of open shards.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use rocksdb::compaction_filter::Decision;
use rocksdb::{ColumnFamilyDescriptor, DBCompressionType, Options};

use crate::keys::{self, CF_CHUNKS, CF_POSTINGS, CF_RAFT_LOG, CF_RAFT_META, CF_SERIES, CF_SM_META};
use crate::shard::Shard;
use crate::StorageError;

/// Options of the storage engine.
#[derive(Clone, Debug)]
pub struct StorageOptions {
    /// How long samples are kept, in ms (default 15 days). Drives the
    /// compaction filter of the chunks column family; the index side is
    /// driven by `WriteBatch::Retention`.
    pub retention_ms: i64,
    /// How far behind a series' newest sample a sample may be and still be
    /// accepted, in ms (default 0: out-of-order samples are rejected).
    pub out_of_order_window_ms: i64,
    /// RocksDB write buffer (memtable) size per column family, in bytes.
    pub write_buffer_bytes: usize,
    /// Called on a checkpoint's thread when it is done, to give what the
    /// checkpoint freed back to the operating system. The binary picks the
    /// allocator, so it says how (mimalloc keeps a thread's freed pages
    /// until that thread allocates again, and a blocking thread that ran
    /// a checkpoint may then sit idle holding them: 32 shards checkpointed
    /// in a row after 1M new series left about 400 MB so held).
    pub release_memory: Option<fn()>,
}

impl Default for StorageOptions {
    fn default() -> Self {
        StorageOptions {
            retention_ms: 15 * 24 * 3600 * 1000,
            out_of_order_window_ms: 0,
            write_buffer_bytes: 32 << 20,
            release_memory: None,
        }
    }
}

/// State shared by the [`Db`] and its shards.
pub(crate) struct DbInner {
    pub(crate) rocks: rocksdb::DB,
    pub(crate) opts: StorageOptions,
    path: PathBuf,
    /// Held by a shard's checkpoint, so the node's shards checkpoint one at
    /// a time: a checkpoint builds one write batch of everything its shard
    /// changed, and 32 shards doing that at once (a periodic checkpoint
    /// right after a burst of new series) held 32 such batches, about 0.6
    /// KiB per new series, at the same time.
    pub(crate) checkpoint_gate: parking_lot::Mutex<()>,
}

impl DbInner {
    /// Where snapshot files live: ones being received (`recv-*`, removed at
    /// open: a receive cut off by a crash starts over) and ones a shard is
    /// being restored from (`shard-<id>.restore`, kept until that restore is
    /// finished, see `keys::TAG_RESTORING`).
    pub(crate) fn snapshot_dir(&self) -> PathBuf {
        self.path.join("snapshots")
    }

    /// The handle of a column family that `open` created.
    pub(crate) fn cf(&self, name: &str) -> &rocksdb::ColumnFamily {
        match self.rocks.cf_handle(name) {
            Some(cf) => cf,
            None => panic!("invariant broken: column family {name} was created by Db::open"),
        }
    }
}

/// One RocksDB instance per node, holding every shard of the node and the
/// Raft logs of the cluster crate.
pub struct Db {
    pub(crate) inner: Arc<DbInner>,
    shards: Mutex<HashMap<u32, Arc<Shard>>>,
}

impl Db {
    /// Opens/creates the DB with column families "raft_log", "raft_meta",
    /// "series", "postings", "chunks", "sm_meta" (+ "default"), each with its
    /// own options (chunks: a compaction filter dropping chunks older than the
    /// retention).
    pub fn open(path: &Path, opts: StorageOptions) -> Result<Arc<Db>, StorageError> {
        let mut db_opts = Options::default();
        db_opts.create_if_missing(true);
        db_opts.create_missing_column_families(true);
        db_opts.set_max_background_jobs(2);
        db_opts.set_keep_log_file_num(3);
        db_opts.set_max_total_wal_size(256 << 20);

        let base = |wb: usize| {
            let mut o = Options::default();
            o.set_write_buffer_size(wb);
            o.set_compression_type(DBCompressionType::Lz4);
            o.set_bottommost_compression_type(DBCompressionType::Zstd);
            o
        };
        let wb = opts.write_buffer_bytes;
        let mut chunks = base(wb);
        // Gorilla bytes barely compress; LZ4 still removes key/header redundancy.
        chunks.set_bottommost_compression_type(DBCompressionType::Lz4);
        let retention = opts.retention_ms;
        chunks.set_compaction_filter("silverback_retention", move |_lvl, _k: &[u8], v: &[u8]| {
            match keys::parse_chunk_value(v) {
                Some((max_t, _)) if max_t < now_ms().saturating_sub(retention) => Decision::Remove,
                _ => Decision::Keep,
            }
        });
        let cfs = vec![
            ColumnFamilyDescriptor::new(CF_RAFT_LOG, base(wb)),
            ColumnFamilyDescriptor::new(CF_RAFT_META, base(4 << 20)),
            ColumnFamilyDescriptor::new(CF_SERIES, base(wb)),
            ColumnFamilyDescriptor::new(CF_POSTINGS, base(wb)),
            ColumnFamilyDescriptor::new(CF_CHUNKS, chunks),
            ColumnFamilyDescriptor::new(CF_SM_META, base(wb)),
        ];
        let rocks = rocksdb::DB::open_cf_descriptors(&db_opts, path, cfs)?;
        let inner = DbInner {
            rocks,
            opts,
            path: path.to_path_buf(),
            checkpoint_gate: parking_lot::Mutex::new(()),
        };
        clean_snapshot_dir(&inner.snapshot_dir())?;
        Ok(Arc::new(Db {
            inner: Arc::new(inner),
            shards: Mutex::new(HashMap::new()),
        }))
    }

    /// Raw RocksDB handle, for the cluster's Raft log store (CFs
    /// [`keys::CF_RAFT_LOG`] and [`keys::CF_RAFT_META`]).
    pub fn rocks(&self) -> &rocksdb::DB {
        &self.inner.rocks
    }

    /// Waits for RocksDB's running flushes and compactions and starts no
    /// more: the last step of a graceful stop. A process that exits while
    /// one runs can abort in RocksDB's static destructors ("pthread lock:
    /// Invalid argument"); reads and writes still work afterwards, but
    /// nothing is flushed in the background any more.
    pub fn stop_background_work(&self) {
        self.inner.rocks.cancel_all_background_work(true);
    }

    /// The options the DB was opened with.
    pub fn options(&self) -> &StorageOptions {
        &self.inner.opts
    }

    /// Opens (loading head + index from disk) or creates the state machine of
    /// one shard. Idempotent: the same Arc for the same shard.
    pub fn shard(self: &Arc<Self>, shard: u32) -> Result<Arc<Shard>, StorageError> {
        if shard == u32::MAX {
            return Err(StorageError::InvalidShard(shard));
        }
        let mut map = self.shards.lock();
        if let Some(s) = map.get(&shard) {
            return Ok(s.clone());
        }
        let s = Arc::new(Shard::open(self.inner.clone(), shard)?);
        map.insert(shard, s.clone());
        Ok(s)
    }

    /// Ids of the shards opened so far.
    pub fn open_shards(&self) -> Vec<u32> {
        let mut v: Vec<u32> = self.shards.lock().keys().copied().collect();
        v.sort_unstable();
        v
    }

    /// Deletes every key of a shard (its replica moved away). An `Arc<Shard>`
    /// still held elsewhere is emptied and refuses further applies.
    pub fn drop_shard(&self, shard: u32) -> Result<(), StorageError> {
        let mut map = self.shards.lock();
        if let Some(s) = map.remove(&shard) {
            s.mark_dropped();
        }
        let (start, end) = keys::shard_range(shard);
        let mut wb = rocksdb::WriteBatch::default();
        for cf in keys::SHARD_CFS {
            wb.delete_range_cf(self.inner.cf(cf), start, end);
        }
        let mut wo = rocksdb::WriteOptions::default();
        wo.set_sync(true);
        self.inner.rocks.write_opt(wb, &wo)?;
        let file = self.inner.snapshot_dir().join(restore_file_name(shard));
        match std::fs::remove_file(&file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(StorageError::SnapshotFile {
                path: file,
                source: e,
            }),
            _ => Ok(()),
        }
    }

    /// Flushes every memtable and compacts every column family (runs the
    /// retention filter); for tests and benchmarks.
    pub fn flush_and_compact(&self) -> Result<(), StorageError> {
        let all = [
            CF_RAFT_LOG,
            CF_RAFT_META,
            CF_SERIES,
            CF_POSTINGS,
            CF_CHUNKS,
            CF_SM_META,
        ];
        for name in all {
            let cf = self.inner.cf(name);
            self.inner.rocks.flush_cf(cf)?;
            self.inner
                .rocks
                .compact_range_cf(cf, None::<&[u8]>, None::<&[u8]>);
        }
        Ok(())
    }

    /// Bytes of the DB's SST and WAL files on disk.
    pub fn disk_usage_bytes(&self) -> u64 {
        let Ok(dir) = std::fs::read_dir(&self.inner.path) else {
            return 0;
        };
        dir.filter_map(Result::ok)
            .filter(|e| {
                let n = e.file_name();
                let n = n.to_string_lossy();
                n.ends_with(".sst") || n.ends_with(".log") && !n.starts_with("LOG")
            })
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .sum()
    }
}

/// The file a shard is restored from, in [`DbInner::snapshot_dir`].
pub(crate) fn restore_file_name(shard: u32) -> String {
    format!("shard-{shard}.restore")
}

/// Creates the snapshot directory and removes the receives a crash cut off.
fn clean_snapshot_dir(dir: &Path) -> Result<(), StorageError> {
    let io = |source| StorageError::SnapshotFile {
        path: dir.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    for e in std::fs::read_dir(dir).map_err(io)? {
        let e = e.map_err(io)?;
        if e.file_name().to_string_lossy().starts_with("recv-") {
            std::fs::remove_file(e.path()).map_err(io)?;
        }
    }
    Ok(())
}

/// Wall-clock milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
