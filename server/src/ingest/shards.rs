//! [`ShardBatches`]: the batch builder every ingest protocol feeds. It
//! turns decoded series into one encoded batch per shard
//! ([`storage::BatchEncoder`]), looking each series up in the
//! [`IngestCache`] first: a known series is written by id with no label
//! work at all; an unknown one is validated once, sharded, and written by
//! labels, and its id is cached when the write returns. Samples too far in
//! the future or older than the retention are refused per sample.

use std::collections::HashMap;

use bytes::Bytes;
use cluster::{ClusterError, Node, Rejection, ShardOutcome, WriteOutcome};
use model::{Label, Sample};
use storage::BatchEncoder;

use super::cache::{Cached, IngestCache};
use super::{check_labels, Refused, RejectReason};
use crate::config::Limits;

/// Re-reads a series from its source bytes (its labels as sent, and its
/// samples), for an error message or a resend with labels.
pub type Reread = fn(&[u8], &mut Vec<Label>, &mut Vec<Sample>) -> Result<(), String>;

/// The times a sample may have: `[min_t, max_t]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeWindow {
    /// Oldest accepted timestamp (now - retention), ms.
    pub min_t: i64,
    /// Newest accepted timestamp (now + --max-future), ms.
    pub max_t: i64,
}

/// One series in a shard's batch.
struct Entry<'a> {
    key: u128,
    /// Written by id (a cache hit).
    by_id: bool,
    src: &'a [u8],
}

#[derive(Default)]
struct Part<'a> {
    enc: BatchEncoder,
    series: Vec<Entry<'a>>,
}

/// Builds the shard batches of one request.
pub struct ShardBatches<'a> {
    limits: &'a Limits,
    cache: &'a IngestCache,
    shard_count: u32,
    window: TimeWindow,
    reread: Reread,
    parts: HashMap<u32, Part<'a>>,
    /// Series or samples refused before reaching the cluster.
    pub refused: Vec<Refused>,
    /// Samples in the batches.
    pub samples: u64,
    /// Series found in the cache.
    pub cache_hits: u64,
    /// Series validated and written by labels.
    pub cache_misses: u64,
}

impl<'a> ShardBatches<'a> {
    /// An empty builder.
    pub fn new(
        limits: &'a Limits,
        cache: &'a IngestCache,
        shard_count: u32,
        window: TimeWindow,
        reread: Reread,
    ) -> Self {
        ShardBatches {
            limits,
            cache,
            shard_count,
            window,
            reread,
            parts: HashMap::new(),
            refused: Vec::new(),
            samples: 0,
            cache_hits: 0,
            cache_misses: 0,
        }
    }

    /// Records a refusal.
    pub fn refuse(&mut self, reason: RejectReason, msg: String, samples: u64) {
        self.refused.push(Refused {
            reason,
            msg,
            samples,
        });
    }

    /// The series at `src` in its protocol's form, in Prometheus notation.
    fn describe(&self, src: &[u8]) -> String {
        let (mut labels, mut samples) = (Vec::new(), Vec::new());
        match (self.reread)(src, &mut labels, &mut samples) {
            Ok(()) => super::series_name(&labels),
            Err(e) => format!("(unreadable: {e})"),
        }
    }

    /// Adds one series: `key` is the hash of its raw label bytes, `src` its
    /// bytes in the request (re-read only for messages and resends),
    /// `labels` gives its labels as sent when the cache does not know it.
    /// `samples` may be reordered or shortened.
    pub fn add(
        &mut self,
        key: u128,
        src: &'a [u8],
        samples: &mut Vec<Sample>,
        labels: impl FnOnce(&mut Vec<Label>) -> Result<(), String>,
    ) {
        self.keep_in_window(src, samples);
        if samples.is_empty() {
            return;
        }
        if let Some(c) = self.cache.get(key) {
            self.cache_hits += 1;
            self.push(c.shard, Some(c.id), None, key, src, samples);
            return;
        }
        self.cache_misses += 1;
        let mut pairs = Vec::new();
        if let Err(e) = labels(&mut pairs) {
            self.refuse(
                RejectReason::InvalidLabels,
                format!("cannot read the labels of a series: {e}"),
                samples.len() as u64,
            );
            return;
        }
        match check_labels(self.limits, pairs) {
            Ok(l) => {
                // Encoded once: the encoding is hashed for the shard and
                // goes into the batch as it is.
                let enc = model::labels::encode(&l);
                let h = model::labels::hash(&enc);
                let shard = model::labels::shard_of_hash(h, self.shard_count);
                self.push(shard, None, Some(&enc), key, src, samples);
            }
            Err((reason, msg)) => self.refuse(reason, msg, samples.len() as u64),
        }
    }

    fn push(
        &mut self,
        shard: u32,
        id: Option<u64>,
        labels: Option<&[u8]>,
        key: u128,
        src: &'a [u8],
        samples: &[Sample],
    ) {
        let part = self.parts.entry(shard).or_default();
        match (id, labels) {
            (Some(id), _) => part.enc.push_id(id, samples),
            (None, Some(enc)) => part.enc.push_encoded_labels(enc, samples),
            (None, None) => return,
        }
        part.series.push(Entry {
            key,
            by_id: id.is_some(),
            src,
        });
        self.samples += samples.len() as u64;
    }

    /// Drops samples outside the accepted window, refusing them with the
    /// series named.
    fn keep_in_window(&mut self, src: &[u8], samples: &mut Vec<Sample>) {
        let w = self.window;
        if samples.iter().all(|s| s.t >= w.min_t && s.t <= w.max_t) {
            return;
        }
        let (mut future, mut old) = (0u64, 0u64);
        let (mut newest, mut oldest) = (i64::MIN, i64::MAX);
        samples.retain(|s| {
            if s.t > w.max_t {
                future += 1;
                newest = newest.max(s.t);
                false
            } else if s.t < w.min_t {
                old += 1;
                oldest = oldest.min(s.t);
                false
            } else {
                true
            }
        });
        let name = self.describe(src);
        if future > 0 {
            self.refuse(
                RejectReason::TooFarInFuture,
                format!(
                    "series {name}: {future} samples too far in the future (newest at {}, later than now + --max-future, {}); check the sender's clock",
                    fmt_ms(newest),
                    fmt_ms(w.max_t)
                ),
                future,
            );
        }
        if old > 0 {
            self.refuse(
                RejectReason::TooOld,
                format!(
                    "series {name}: {old} samples older than the retention (oldest at {}, before {})",
                    fmt_ms(oldest),
                    fmt_ms(w.min_t)
                ),
                old,
            );
        }
    }

    /// True when no series is to be written.
    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// Caches every series of this builder as if each shard had answered
    /// with ids (ids are made up: for benchmarks of the warm path only).
    #[doc(hidden)]
    pub fn learn_all_for_bench(self) {
        for (shard, p) in self.parts {
            for (i, e) in p.series.iter().enumerate() {
                self.cache.insert(
                    e.key,
                    Cached {
                        shard,
                        id: i as u64 + 1,
                    },
                );
            }
        }
    }

    /// The encoded batch of every shard, by shard (for tests and benches;
    /// [`ShardBatches::send`] writes them).
    pub fn into_batches(self) -> Vec<(u32, Vec<u8>)> {
        let mut v: Vec<_> = self
            .parts
            .into_iter()
            .map(|(shard, p)| (shard, p.enc.finish()))
            .collect();
        v.sort_by_key(|x| x.0);
        v
    }

    /// Writes every shard's batch (in parallel, one call per peer that
    /// leads some), caches the ids the shards
    /// gave new series, and resends by labels the series whose cached id a
    /// shard no longer knows. Returns what was stored and rejected, or the
    /// first cluster error (other shards' parts may have been written).
    pub async fn send(self, node: &Node) -> Result<WriteOutcome, ClusterError> {
        let ShardBatches {
            cache,
            parts,
            reread,
            limits,
            ..
        } = self;
        let mut out = WriteOutcome::default();
        let mut first_err = None;
        let mut sent = Vec::with_capacity(parts.len());
        let mut batches = Vec::with_capacity(parts.len());
        for (shard, p) in parts {
            batches.push((shard, Bytes::from(p.enc.finish())));
            sent.push((shard, p.series));
        }
        let results = node.write_shards(batches).await;
        let mut resend: HashMap<u32, BatchEncoder> = HashMap::new();
        for ((shard, series), r) in sent.into_iter().zip(results) {
            let o = match r {
                Ok(o) => o,
                Err(e) => {
                    first_err.get_or_insert(e);
                    continue;
                }
            };
            learn(cache, shard, &series, &o);
            add_outcome(&mut out, o.accepted, o.rejected);
            for &u in &o.unknown {
                let Some(e) = series.get(u) else { continue };
                cache.remove(e.key);
                let (mut pairs, mut samples) = (Vec::new(), Vec::new());
                if reread(e.src, &mut pairs, &mut samples).is_err() {
                    continue; // it was read once already; cannot happen
                }
                if let Ok(l) = check_labels(limits, pairs) {
                    resend.entry(shard).or_default().push_labels(&l, &samples);
                }
            }
        }
        // Resent series are cached again on their next request.
        let again = resend
            .into_iter()
            .map(|(shard, b)| (shard, Bytes::from(b.finish())))
            .collect();
        for r in node.write_shards(again).await {
            match r {
                Ok(o) => add_outcome(&mut out, o.accepted, o.rejected),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }
}

/// Caches the ids a shard gave the series it got by labels.
fn learn(cache: &IngestCache, shard: u32, series: &[Entry<'_>], o: &ShardOutcome) {
    for (e, id) in series.iter().zip(&o.series_ids) {
        if let (false, Some(id)) = (e.by_id, id) {
            cache.insert(e.key, Cached { shard, id: *id });
        }
    }
}

fn add_outcome(out: &mut WriteOutcome, accepted: u64, rejected: Vec<Rejection>) {
    out.accepted += accepted;
    cluster::types::merge_rejections(&mut out.rejected, rejected);
}

fn fmt_ms(t: i64) -> String {
    chrono::DateTime::from_timestamp_millis(t)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_else(|| format!("{t} ms"))
}
