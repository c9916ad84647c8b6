//! The read path: [`ClusterQuerier`] fans a request out to the leader
//! replica of every shard (local shards read directly, a few blocking
//! tasks for all of them; remote ones in one streamed `Read` call per peer
//! that leads some, chunks as stored, decoded here) and merges the answers.

pub mod local;
pub mod serve;

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use futures::future::join_all;
use model::{Labels, Matcher, SeriesData};
use query::model::{QueryableError, ReadBudget, SelectResult};
use storage::{EncodedChunk, Shard};

use crate::convert::{labels_from_pb, labels_to_pb, matchers_to_pb};
use crate::error::ClusterError;
use crate::node::Node;
use crate::types::{shard_group, NodeId};
use crate::write::Attempt;

/// One per-shard read.
#[derive(Clone, Debug)]
pub(crate) enum ReadOp {
    /// Encoded chunks; a query's deadline, if any, travels to a remote
    /// shard as the gRPC timeout (the remote handler is dropped when it
    /// passes) and ends the retry loop.
    SelectChunks(Option<Instant>),
    /// Label names; each shard keeps the first so many (see [`Keep`]).
    LabelNames(Keep),
    LabelValues(String, Keep),
    Series(Keep),
    TsdbStats,
}

/// How many of a shard's sorted answer a lookup wants (the first ones):
/// an HTTP lookup needs its `limit` (or `--max-lookup-results`) and one
/// more, to know whether it was cut. `usize::MAX`: all.
pub(crate) type Keep = usize;

/// `keep` on the wire: 0 means all.
fn keep_to_pb(k: Keep) -> u64 {
    if k == usize::MAX {
        0
    } else {
        k as u64
    }
}

fn keep_from_pb(k: u64) -> Keep {
    match k {
        0 => usize::MAX,
        k => usize::try_from(k).unwrap_or(usize::MAX),
    }
}

impl ReadOp {
    /// What a shard keeps of its answer.
    fn keep(&self) -> Keep {
        match self {
            ReadOp::LabelNames(k) | ReadOp::LabelValues(_, k) | ReadOp::Series(k) => *k,
            ReadOp::SelectChunks(_) | ReadOp::TsdbStats => usize::MAX,
        }
    }
}

/// A per-shard read's answer.
pub(crate) enum ReadOut {
    Chunks(Vec<storage::SeriesChunks>),
    Strings(Vec<String>),
    Labels(Vec<Labels>),
    Tsdb(storage::TsdbStats),
}

impl ReadOp {
    /// The `Read` call asking `shards` for this.
    fn request(
        &self,
        shards: Vec<u32>,
        ms: &[Matcher],
        min_t: i64,
        max_t: i64,
    ) -> proto::cluster::ReadRequest {
        use proto::cluster::ReadKind;
        let (kind, name) = match self {
            ReadOp::SelectChunks(_) => (ReadKind::ReadSelect, String::new()),
            ReadOp::LabelNames(_) => (ReadKind::ReadLabelNames, String::new()),
            ReadOp::LabelValues(n, _) => (ReadKind::ReadLabelValues, n.clone()),
            ReadOp::Series(_) => (ReadKind::ReadSeries, String::new()),
            ReadOp::TsdbStats => (ReadKind::ReadTsdbStats, String::new()),
        };
        proto::cluster::ReadRequest {
            shards,
            kind: kind as i32,
            name,
            matchers: matchers_to_pb(ms),
            min_t,
            max_t,
            keep: keep_to_pb(self.keep()),
        }
    }

    /// The read a `Read` call asks for; `deadline` is the caller's.
    pub(crate) fn of_request(
        r: &proto::cluster::ReadRequest,
        deadline: Option<Instant>,
    ) -> Result<ReadOp, ClusterError> {
        use proto::cluster::ReadKind;
        Ok(match ReadKind::try_from(r.kind) {
            Ok(ReadKind::ReadSelect) => ReadOp::SelectChunks(deadline),
            Ok(ReadKind::ReadLabelNames) => ReadOp::LabelNames(keep_from_pb(r.keep)),
            Ok(ReadKind::ReadLabelValues) => {
                ReadOp::LabelValues(r.name.clone(), keep_from_pb(r.keep))
            }
            Ok(ReadKind::ReadSeries) => ReadOp::Series(keep_from_pb(r.keep)),
            Ok(ReadKind::ReadTsdbStats) => ReadOp::TsdbStats,
            Ok(ReadKind::Unspecified) | Err(_) => {
                return Err(ClusterError::BadData(format!(
                    "unknown read kind {}",
                    r.kind
                )))
            }
        })
    }

    /// A shard's answer to this, as it came off the wire (one that neither
    /// redirected nor failed).
    fn answer(&self, r: proto::cluster::ShardRead) -> ReadOut {
        match self {
            ReadOp::SelectChunks(_) => ReadOut::Chunks(
                r.series
                    .into_iter()
                    .map(|s| storage::SeriesChunks {
                        labels: labels_from_pb(s.labels),
                        chunks: s
                            .chunks
                            .into_iter()
                            .map(|c| EncodedChunk {
                                min_t: c.min_t,
                                max_t: c.max_t,
                                data: c.data,
                            })
                            .collect(),
                    })
                    .collect(),
            ),
            ReadOp::LabelNames(_) | ReadOp::LabelValues(..) => ReadOut::Strings(r.values),
            ReadOp::Series(_) => ReadOut::Labels(
                r.labels
                    .into_iter()
                    .map(|s| labels_from_pb(s.labels))
                    .collect(),
            ),
            ReadOp::TsdbStats => ReadOut::Tsdb(storage::TsdbStats {
                num_series: r.num_series,
                pairs: r
                    .names
                    .into_iter()
                    .map(|n| (n.name, n.values.into_iter().zip(n.counts).collect()))
                    .collect(),
            }),
        }
    }
}

impl ReadOut {
    /// The wire form of `shard`'s answer.
    pub(crate) fn into_pb(self, shard: u32) -> proto::cluster::ShardRead {
        use proto::cluster as pb;
        let mut r = pb::ShardRead {
            shard,
            ..Default::default()
        };
        match self {
            ReadOut::Chunks(v) => {
                r.series = v
                    .into_iter()
                    .map(|s| pb::SeriesChunks {
                        labels: labels_to_pb(&s.labels),
                        chunks: s
                            .chunks
                            .into_iter()
                            .map(|c| pb::Chunk {
                                min_t: c.min_t,
                                max_t: c.max_t,
                                data: c.data,
                            })
                            .collect(),
                    })
                    .collect()
            }
            ReadOut::Strings(v) => r.values = v,
            ReadOut::Labels(v) => {
                r.labels = v
                    .iter()
                    .map(|l| pb::SeriesLabels {
                        labels: labels_to_pb(l),
                    })
                    .collect()
            }
            ReadOut::Tsdb(st) => {
                r.num_series = st.num_series;
                r.names = st
                    .pairs
                    .into_iter()
                    .map(|(name, vals)| {
                        let (values, counts) = vals.into_iter().unzip();
                        pb::LabelValueCounts {
                            name,
                            values,
                            counts,
                        }
                    })
                    .collect();
            }
        }
        r
    }
}

/// Reads a local shard.
pub(crate) fn read_local(
    shard: &Shard,
    op: &ReadOp,
    ms: &[Matcher],
    min_t: i64,
    max_t: i64,
) -> Result<ReadOut, storage::StorageError> {
    Ok(match op {
        ReadOp::SelectChunks(d) => {
            ReadOut::Chunks(shard.select_chunks_until(ms, min_t, max_t, *d)?)
        }
        ReadOp::LabelNames(k) => ReadOut::Strings(first(shard.label_names(ms, min_t, max_t)?, *k)),
        ReadOp::LabelValues(n, k) => {
            ReadOut::Strings(first(shard.label_values(n, ms, min_t, max_t)?, *k))
        }
        ReadOp::Series(k) => ReadOut::Labels(first(shard.series(ms, min_t, max_t)?, *k)),
        ReadOp::TsdbStats => ReadOut::Tsdb(shard.tsdb_stats()),
    })
}

/// The first `keep` of `v`.
fn first<T>(mut v: Vec<T>, keep: Keep) -> Vec<T> {
    v.truncate(keep);
    v
}

/// Reads local shards one after the other, on the calling thread.
///
/// Label values are merged here as each shard visits them, so a value
/// that several shards have costs one `String`: the first shard that
/// answers well carries the share's merged list, the others none.
fn read_share(
    share: &[(u32, Arc<Shard>)],
    op: &ReadOp,
    ms: &[Matcher],
    min_t: i64,
    max_t: i64,
) -> Vec<(u32, Result<ReadOut, ClusterError>)> {
    if let ReadOp::LabelValues(name, keep) = op {
        let mut merged: Vec<String> = Vec::new();
        let mut out: Vec<(u32, Result<ReadOut, ClusterError>)> = share
            .iter()
            .map(|(s, st)| {
                let mut next = Vec::with_capacity(merged.len());
                let mut old = std::mem::take(&mut merged).into_iter().peekable();
                let res = st.visit_label_values(name, ms, min_t, max_t, |v| {
                    while let Some(x) = old.next_if(|x| x.as_str() < v) {
                        next.push(x);
                    }
                    next.push(match old.next_if(|x| x.as_str() == v) {
                        Some(x) => x,
                        None => v.to_string(),
                    });
                });
                next.extend(old);
                next.truncate(*keep);
                merged = next;
                (
                    *s,
                    res.map(|()| ReadOut::Strings(Vec::new()))
                        .map_err(storage_read_err),
                )
            })
            .collect();
        if let Some((_, Ok(ReadOut::Strings(v)))) = out.iter_mut().find(|(_, r)| r.is_ok()) {
            *v = merged;
        }
        return out;
    }
    share
        .iter()
        .map(|(s, st)| {
            (
                *s,
                read_local(st, op, ms, min_t, max_t).map_err(storage_read_err),
            )
        })
        .collect()
}

/// Splits `local` into at most one share per core, round robin.
pub(crate) fn split_shares(local: Vec<(u32, Arc<Shard>)>) -> Vec<Vec<(u32, Arc<Shard>)>> {
    let workers = std::thread::available_parallelism()
        .map_or(1, |c| c.get())
        .clamp(1, local.len().max(1));
    let mut shares: Vec<Vec<(u32, Arc<Shard>)>> = (0..workers).map(|_| Vec::new()).collect();
    for (i, x) in local.into_iter().enumerate() {
        shares[i % workers].push(x);
    }
    shares.retain(|v| !v.is_empty());
    shares
}

/// Reads a share of local shards on the blocking pool.
pub(crate) async fn read_share_blocking(
    share: Vec<(u32, Arc<Shard>)>,
    op: ReadOp,
    ms: Vec<Matcher>,
    min_t: i64,
    max_t: i64,
) -> Vec<(u32, Result<ReadOut, ClusterError>)> {
    let ids: Vec<u32> = share.iter().map(|(s, _)| *s).collect();
    let task = tokio::task::spawn_blocking(move || read_share(&share, &op, &ms, min_t, max_t));
    match task.await {
        Ok(v) => v,
        Err(e) => ids
            .into_iter()
            .map(|s| (s, Err(ClusterError::internal(&e))))
            .collect(),
    }
}

thread_local! {
    /// Set by [`on_blocking_thread`].
    static MAY_BLOCK: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with the calling thread marked as one that may block: a
/// thread of the blocking pool that drives a request's reads with
/// `Handle::block_on` (never a runtime worker). [`Node::read_all`] then
/// reads a share of the local shards on it instead of handing all of them
/// to other threads.
pub fn on_blocking_thread<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            MAY_BLOCK.set(self.0);
        }
    }
    let _restore = Restore(MAY_BLOCK.replace(true));
    f()
}

fn may_block_here() -> bool {
    MAY_BLOCK.get()
}

fn storage_read_err(e: storage::StorageError) -> ClusterError {
    match e.kind() {
        storage::ErrorKind::BadData => ClusterError::BadData(e.to_string()),
        _ => ClusterError::Internal(e.to_string()),
    }
}

impl Node {
    /// A [`query::model::Queryable`] over the whole cluster. With
    /// `partial_response`, shards that cannot answer are skipped with a
    /// warning instead of failing the query.
    pub fn querier(self: &Arc<Self>, partial_response: bool) -> Arc<dyn query::model::Queryable> {
        Arc::new(ClusterQuerier {
            node: self.clone(),
            partial: partial_response,
        })
    }

    pub(crate) async fn read_shard(
        &self,
        shard: u32,
        op: &ReadOp,
        ms: &[Matcher],
        min_t: i64,
        max_t: i64,
    ) -> Result<ReadOut, ClusterError> {
        let g = shard_group(shard);
        let mut deadline = Instant::now() + self.cfg().rpc_timeout;
        if let ReadOp::SelectChunks(Some(d)) = op {
            deadline = deadline.min(*d);
        }
        loop {
            let res = match self.leader_of(g) {
                Some(l) if l == self.id() => match self
                    .group(g)
                    .filter(|x| x.is_leader(self.id()))
                    .and_then(|x| x.shard)
                {
                    Some(st) => {
                        let (op, ms) = (op.clone(), ms.to_vec());
                        return tokio::task::spawn_blocking(move || {
                            read_local(&st, &op, &ms, min_t, max_t)
                        })
                        .await
                        .map_err(ClusterError::internal)?
                        .map_err(storage_read_err);
                    }
                    None => {
                        self.guess_next_leader(g, self.id());
                        Err(Attempt::Retry)
                    }
                },
                Some(l) => match self
                    .read_remote(&[shard], l, op, ms, min_t, max_t)
                    .await
                    .pop()
                {
                    Some((_, r)) => r,
                    None => Err(Attempt::Retry),
                },
                None => Err(Attempt::Retry),
            };
            match res {
                Ok(o) => return Ok(o),
                Err(Attempt::Fail(e)) => return Err(e),
                Err(Attempt::Retry) if Instant::now() < deadline => {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await
                }
                Err(Attempt::Retry) => {
                    return Err(ClusterError::Unavailable(format!(
                        "shard {shard} cannot answer: no reachable leader"
                    )))
                }
            }
        }
    }

    /// Whether `to` redirected a call for `shard`; records the leader it
    /// named, or moves on to the next replica.
    pub(crate) fn redirected(
        &self,
        shard: u32,
        to: NodeId,
        rd: Option<proto::cluster::Redirect>,
    ) -> bool {
        let g = shard_group(shard);
        match rd.filter(|r| r.not_leader) {
            Some(rd) => {
                if rd.leader_id != 0 && rd.leader_id != to {
                    self.hint_leader(g, rd.leader_id, Some(&rd.leader_addr));
                } else {
                    self.guess_next_leader(g, to);
                }
                true
            }
            None => false,
        }
    }

    /// Whether a remote shard answered itself: `Retry` when it redirected
    /// (a leader hint is recorded), `Fail` when it reported an error.
    fn answered(
        &self,
        shard: u32,
        to: NodeId,
        redirect: Option<proto::cluster::Redirect>,
        error: String,
    ) -> Result<(), Attempt> {
        if self.redirected(shard, to, redirect) {
            return Err(Attempt::Retry);
        }
        if !error.is_empty() {
            return Err(Attempt::Fail(ClusterError::Unavailable(error)));
        }
        Ok(())
    }

    /// Reads `shards` from node `to` in one streamed `Read` call. Each
    /// shard's outcome: its answer, `Retry` when the peer redirected (a
    /// leader hint is recorded), did not answer for it or could not be
    /// reached, `Fail` when it reported an error.
    async fn read_remote(
        &self,
        shards: &[u32],
        to: NodeId,
        op: &ReadOp,
        ms: &[Matcher],
        min_t: i64,
        max_t: i64,
    ) -> Vec<(u32, Result<ReadOut, Attempt>)> {
        let mut left: BTreeSet<u32> = shards.iter().copied().collect();
        let mut out = Vec::with_capacity(shards.len());
        let retry_all = |left: BTreeSet<u32>, out: &mut Vec<_>| {
            for s in left {
                self.guess_next_leader(shard_group(s), to);
                out.push((s, Err(Attempt::Retry)));
            }
        };
        let Ok(mut c) = self.router().client(to) else {
            retry_all(left, &mut out);
            return out;
        };
        let mut req = tonic::Request::new(op.request(shards.to_vec(), ms, min_t, max_t));
        if let ReadOp::SelectChunks(Some(d)) = op {
            // tonic sends it as `grpc-timeout`; the remote server drops the
            // handler when it passes, and so does a client that goes away.
            match d.checked_duration_since(Instant::now()) {
                Some(d) if !d.is_zero() => req.set_timeout(d),
                _ => {
                    return left
                        .into_iter()
                        .map(|s| {
                            let e = ClusterError::Unavailable(format!(
                                "cannot read shard {s}: the query's deadline passed"
                            ));
                            (s, Err(Attempt::Fail(e)))
                        })
                        .collect()
                }
            }
        }
        let mut stream = match c.read(req).await {
            Ok(r) => r.into_inner(),
            Err(_) => {
                retry_all(left, &mut out);
                return out;
            }
        };
        loop {
            match stream.message().await {
                Ok(Some(mut r)) => {
                    // A shard not asked for, or answered twice, is ignored.
                    if !left.remove(&r.shard) {
                        continue;
                    }
                    let (s, rd, error) = (r.shard, r.redirect.take(), std::mem::take(&mut r.error));
                    let res = self.answered(s, to, rd, error).map(|()| op.answer(r));
                    out.push((s, res));
                }
                Ok(None) => break,
                Err(_) => {
                    retry_all(std::mem::take(&mut left), &mut out);
                    break;
                }
            }
        }
        // Shards the stream ended without: asked again one by one.
        out.extend(left.into_iter().map(|s| (s, Err(Attempt::Retry))));
        out
    }

    /// Reads every shard, answers in shard order. The shards this node
    /// leads are read in one blocking task per core, each taking a share of
    /// them in turn: a task per shard costs more than most index reads
    /// (a label-values call touches every shard). The others are asked of
    /// their leaders in one call per peer, all at once; a shard that a
    /// peer redirects or does not answer goes through [`Node::read_shard`]'s
    /// retry loop.
    pub(crate) async fn read_all(
        &self,
        op: &ReadOp,
        ms: &[Matcher],
        min_t: i64,
        max_t: i64,
    ) -> Vec<Result<ReadOut, ClusterError>> {
        let n = self.shard_count();
        let mut local: Vec<(u32, Arc<Shard>)> = Vec::new();
        let mut by_peer: BTreeMap<NodeId, Vec<u32>> = BTreeMap::new();
        let mut unknown: Vec<u32> = Vec::new();
        for s in 0..n {
            let g = shard_group(s);
            match self.leader_of(g) {
                Some(l) if l == self.id() => match self
                    .group(g)
                    .filter(|x| x.is_leader(self.id()))
                    .and_then(|x| x.shard)
                {
                    Some(st) => local.push((s, st)),
                    None => unknown.push(s),
                },
                Some(l) => by_peer.entry(l).or_default().push(s),
                None => unknown.push(s),
            }
        }
        let all_local = local.len() == n as usize;
        let mut shares = split_shares(local);
        // A thread that may block, with no remote shard to wait for, reads
        // one share itself once the others are handed out: a hand-off to
        // the blocking pool and back fewer.
        let own_share = if all_local && may_block_here() {
            shares.pop()
        } else {
            None
        };
        let local_reads = join_all(
            shares
                .into_iter()
                .map(|share| read_share_blocking(share, op.clone(), ms.to_vec(), min_t, max_t)),
        );
        let own = own_share.map_or_else(Vec::new, |share| read_share(&share, op, ms, min_t, max_t));
        let peer_reads = join_all(by_peer.iter().map(|(&to, shards)| async move {
            let got = self.read_remote(shards, to, op, ms, min_t, max_t).await;
            join_all(got.into_iter().map(|(s, r)| async move {
                let r = match r {
                    Ok(o) => Ok(o),
                    Err(Attempt::Fail(e)) => Err(e),
                    Err(Attempt::Retry) => self.read_shard(s, op, ms, min_t, max_t).await,
                };
                (s, r)
            }))
            .await
        }));
        let unknown_reads = join_all(
            unknown
                .into_iter()
                .map(|s| async move { (s, self.read_shard(s, op, ms, min_t, max_t).await) }),
        );
        let (l, p, u) = tokio::join!(local_reads, peer_reads, unknown_reads);
        let mut out: Vec<Option<Result<ReadOut, ClusterError>>> = (0..n).map(|_| None).collect();
        for (s, res) in l
            .into_iter()
            .flatten()
            .chain(own)
            .chain(p.into_iter().flatten())
            .chain(u)
        {
            if let Some(slot) = out.get_mut(s as usize) {
                *slot = Some(res);
            }
        }
        out.into_iter()
            .enumerate()
            .map(|(s, r)| {
                r.unwrap_or_else(|| {
                    Err(ClusterError::Internal(format!(
                        "invariant broken: shard {s} was not read"
                    )))
                })
            })
            .collect()
    }

    /// Cardinality figures of every shard, merged (for
    /// `/api/v1/status/tsdb`): each shard's leader reads them off its
    /// in-memory index, so no series is walked.
    pub async fn tsdb_stats(&self) -> Result<storage::TsdbStats, ClusterError> {
        let res = self.read_all(&ReadOp::TsdbStats, &[], 0, 0).await;
        let mut all = storage::TsdbStats::default();
        for r in res {
            if let ReadOut::Tsdb(st) = r? {
                all.merge(st);
            }
        }
        Ok(all)
    }
}

/// The cluster-wide [`query::model::Queryable`].
pub struct ClusterQuerier {
    node: Arc<Node>,
    partial: bool,
}

impl ClusterQuerier {
    async fn fan_out(
        &self,
        op: ReadOp,
        ms: &[Matcher],
        min_t: i64,
        max_t: i64,
    ) -> Result<(Vec<ReadOut>, Vec<String>), QueryableError> {
        let res = self.node.read_all(&op, ms, min_t, max_t).await;
        let mut outs = Vec::with_capacity(res.len());
        let mut warnings = Vec::new();
        for (s, r) in res.into_iter().enumerate() {
            match r {
                Ok(o) => outs.push(o),
                Err(e) if self.partial && e.kind() != crate::error::ErrorKind::BadData => {
                    warnings.push(format!("shard {s} is missing from the result: {e}"))
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok((outs, warnings))
    }

    async fn strings(
        &self,
        op: ReadOp,
        ms: &[Matcher],
        min_t: i64,
        max_t: i64,
    ) -> Result<Vec<String>, QueryableError> {
        let (outs, _) = self.fan_out(op, ms, min_t, max_t).await?;
        Ok(merge_sorted(outs.into_iter().filter_map(|o| match o {
            ReadOut::Strings(v) => Some(v),
            _ => None,
        })))
    }
}

/// The sorted, unique union of sorted, unique lists (every shard answers
/// so): merged two by two, in rounds, dropping duplicates as they meet.
/// Shards mostly share their values (every shard has most instances), so
/// the lists stay short after the first round: about one comparison per
/// input element in all, where a sort of them all takes log2(shards).
pub fn merge_sorted<T: Ord>(lists: impl IntoIterator<Item = Vec<T>>) -> Vec<T> {
    let mut lists: Vec<Vec<T>> = lists.into_iter().filter(|l| !l.is_empty()).collect();
    while lists.len() > 1 {
        let mut next = Vec::with_capacity(lists.len().div_ceil(2));
        let mut it = lists.into_iter();
        while let Some(a) = it.next() {
            next.push(match it.next() {
                Some(b) => merge_two(a, b),
                None => a,
            });
        }
        lists = next;
    }
    lists.pop().unwrap_or_default()
}

/// The sorted, unique union of two sorted, unique lists.
fn merge_two<T: Ord>(a: Vec<T>, b: Vec<T>) -> Vec<T> {
    debug_assert!(a.is_sorted() && b.is_sorted());
    let mut out = Vec::with_capacity(a.len().max(b.len()));
    let (mut a, mut b) = (a.into_iter().peekable(), b.into_iter().peekable());
    while let (Some(x), Some(y)) = (a.peek(), b.peek()) {
        let from_a = match x.cmp(y) {
            std::cmp::Ordering::Less => true,
            std::cmp::Ordering::Greater => false,
            std::cmp::Ordering::Equal => {
                b.next();
                true
            }
        };
        out.extend(if from_a { a.next() } else { b.next() });
    }
    out.extend(a);
    out.extend(b);
    out
}

/// Decodes the encoded chunks of every shard's answer, series by series,
/// taking each series' samples from `budget` as it is decoded: the first
/// series that passes the limit (or the deadline) stops the decoding.
fn decode_budgeted(
    outs: Vec<ReadOut>,
    min_t: i64,
    max_t: i64,
    budget: &ReadBudget,
) -> Result<Vec<SeriesData>, QueryableError> {
    let mut series = Vec::new();
    for o in outs {
        let ReadOut::Chunks(v) = o else {
            return Err(QueryableError::Internal(
                "invariant broken: a chunk read returned another shape".into(),
            ));
        };
        for sc in v {
            let samples = storage::merge_chunks(&sc.chunks, min_t, max_t).map_err(|e| {
                QueryableError::Internal(format!("cannot decode the chunks of {}: {e}", sc.labels))
            })?;
            budget.take(samples.len())?;
            if !samples.is_empty() {
                series.push(SeriesData {
                    labels: sc.labels,
                    samples,
                });
            }
        }
    }
    series.sort_by(|a, b| a.labels.cmp(&b.labels));
    Ok(series)
}

#[async_trait]
impl query::model::Queryable for ClusterQuerier {
    async fn select(
        &self,
        matchers: &[Matcher],
        min_t: i64,
        max_t: i64,
    ) -> Result<SelectResult, QueryableError> {
        self.select_budgeted(matchers, min_t, max_t, &ReadBudget::unlimited())
            .await
    }

    /// Every shard answers with encoded chunks (a tenth of the decoded
    /// size or less); they are decoded here against the query's budget.
    async fn select_budgeted(
        &self,
        matchers: &[Matcher],
        min_t: i64,
        max_t: i64,
        budget: &ReadBudget,
    ) -> Result<SelectResult, QueryableError> {
        budget.check_deadline()?;
        let op = ReadOp::SelectChunks(budget.deadline());
        let (outs, warnings) = match self.fan_out(op, matchers, min_t, max_t).await {
            Ok(x) => x,
            // A read cut short by the query's deadline is a timeout.
            Err(e) => {
                budget.check_deadline()?;
                return Err(e);
            }
        };
        let series = decode_budgeted(outs, min_t, max_t, budget)?;
        Ok(SelectResult { series, warnings })
    }

    async fn label_names(
        &self,
        matchers: &[Matcher],
        min_t: i64,
        max_t: i64,
    ) -> Result<Vec<String>, QueryableError> {
        self.label_names_first(matchers, min_t, max_t, usize::MAX)
            .await
    }

    async fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        min_t: i64,
        max_t: i64,
    ) -> Result<Vec<String>, QueryableError> {
        self.label_values_first(name, matchers, min_t, max_t, usize::MAX)
            .await
    }

    async fn series(
        &self,
        matchers: &[Matcher],
        min_t: i64,
        max_t: i64,
    ) -> Result<Vec<Labels>, QueryableError> {
        self.series_first(matchers, min_t, max_t, usize::MAX).await
    }

    /// Each shard sends only its first `keep` names.
    async fn label_names_first(
        &self,
        matchers: &[Matcher],
        min_t: i64,
        max_t: i64,
        keep: usize,
    ) -> Result<Vec<String>, QueryableError> {
        let mut v = self
            .strings(ReadOp::LabelNames(keep), matchers, min_t, max_t)
            .await?;
        v.truncate(keep);
        Ok(v)
    }

    /// Each shard sends only its first `keep` values.
    async fn label_values_first(
        &self,
        name: &str,
        matchers: &[Matcher],
        min_t: i64,
        max_t: i64,
        keep: usize,
    ) -> Result<Vec<String>, QueryableError> {
        let op = ReadOp::LabelValues(name.to_string(), keep);
        let mut v = self.strings(op, matchers, min_t, max_t).await?;
        v.truncate(keep);
        Ok(v)
    }

    /// Each shard sends only its first `keep` series.
    async fn series_first(
        &self,
        matchers: &[Matcher],
        min_t: i64,
        max_t: i64,
        keep: usize,
    ) -> Result<Vec<Labels>, QueryableError> {
        let (outs, _) = self
            .fan_out(ReadOp::Series(keep), matchers, min_t, max_t)
            .await?;
        let mut v = merge_sorted(outs.into_iter().filter_map(|o| match o {
            ReadOut::Labels(v) => Some(v),
            _ => None,
        }));
        v.truncate(keep);
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::{first, keep_from_pb, keep_to_pb, merge_sorted, ReadOp};
    use proptest::prelude::*;

    #[test]
    fn keep_travels_with_the_read() {
        for op in [
            ReadOp::LabelNames(usize::MAX),
            ReadOp::LabelValues("job".into(), 11),
            ReadOp::Series(1),
        ] {
            let r = op.request(vec![0, 3], &[], 0, 1);
            let back = ReadOp::of_request(&r, None).expect("a known kind");
            assert_eq!(back.keep(), op.keep(), "{op:?}");
        }
        assert_eq!(keep_to_pb(usize::MAX), 0);
        assert_eq!(keep_from_pb(0), usize::MAX);
        assert_eq!(keep_from_pb(keep_to_pb(7)), 7);
    }

    proptest! {
        /// What a lookup with a limit relies on: when every shard sends only
        /// the first `keep` of its sorted answer, the merged first `keep`
        /// are the true first ones, and the merged list is as long as
        /// `keep` whenever the whole answer is.
        #[test]
        fn each_shards_first_ones_make_the_first_ones_of_all(
            shards in prop::collection::vec(prop::collection::btree_set(0u16..400, 0..60), 1..8),
            keep in 1usize..80,
        ) {
            let lists: Vec<Vec<u16>> = shards.into_iter().map(|s| s.into_iter().collect()).collect();
            let all = merge_sorted(lists.clone());
            let cut = merge_sorted(lists.into_iter().map(|l| first(l, keep)));
            prop_assert_eq!(&first(cut.clone(), keep), &first(all.clone(), keep));
            prop_assert_eq!(cut.len() >= keep, all.len() >= keep);
        }
    }
}
