//! The write path: each shard's part travels as one encoded batch
//! ([`storage::BatchEncoder`] bytes) to the shard's leader (the local
//! proposer, or forwarded over gRPC as the same bytes), is committed and
//! applied, and comes back with what was accepted and rejected and the ids
//! the shard gave each series (which the ingest cache keeps).

pub mod propose;
pub mod serve;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::join_all;
use storage::BatchEncoder;

use crate::error::ClusterError;
use crate::node::Node;
use crate::types::{merge_rejections, shard_group, GroupId, NodeId, Rejection};
use crate::write::propose::{IncomingSeries, ProposeError, ShardOutcome};
use model::labels::shard_of;

/// What a write achieved.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WriteOutcome {
    /// Samples stored (identical duplicates included).
    pub accepted: u64,
    /// Samples not stored, by reason.
    pub rejected: Vec<Rejection>,
}

impl WriteOutcome {
    /// Total rejected samples.
    pub fn rejected_count(&self) -> u64 {
        self.rejected.iter().map(|r| r.count).sum()
    }

    /// One line naming every rejection (empty when none).
    pub fn rejection_message(&self) -> String {
        self.rejected
            .iter()
            .map(|r| format!("{} ({} samples), e.g. {}", r.reason, r.count, r.example))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// One attempt's failure.
pub(crate) enum Attempt {
    /// Try again (another leader, or after an election).
    Retry,
    /// Give up with this error.
    Fail(ClusterError),
}

const RETRY_PAUSE: Duration = Duration::from_millis(50);

impl Node {
    /// Writes series given with labels (rules, the self-scrape): invalid
    /// ones are rejected (and counted), valid ones go to their shards'
    /// leaders, named by labels. Returns once every part is committed and
    /// applied, or the first error (NoLeader when a shard has no leader
    /// within the RPC timeout; other parts may have been written). The
    /// remote-write path encodes its own batches and calls
    /// [`Node::write_shard`].
    pub async fn write(&self, series: Vec<IncomingSeries>) -> Result<WriteOutcome, ClusterError> {
        let mut out = WriteOutcome::default();
        let mut by_shard: HashMap<u32, BatchEncoder> = HashMap::new();
        for s in series {
            if s.samples.is_empty() {
                continue;
            }
            if let Err(e) = storage::validate_labels(&s.labels) {
                merge_rejections(
                    &mut out.rejected,
                    [Rejection {
                        reason: storage::RejectReason::InvalidLabels,
                        count: s.samples.len() as u64,
                        example: format!("{}: {e}", s.labels),
                    }],
                );
                continue;
            }
            by_shard
                .entry(shard_of(&s.labels, self.shard_count()))
                .or_default()
                .push_labels(&s.labels, &s.samples);
        }
        let results = self
            .write_shards(
                by_shard
                    .into_iter()
                    .map(|(shard, b)| (shard, Bytes::from(b.finish())))
                    .collect(),
            )
            .await;
        let mut first_err = None;
        for r in results {
            match r {
                Ok(o) => {
                    out.accepted += o.accepted;
                    merge_rejections(&mut out.rejected, o.rejected);
                }
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

    /// Writes one shard's encoded batch ([`storage::BatchEncoder`] bytes)
    /// on the shard's leader (this node's proposer, or forwarded over gRPC),
    /// following leader changes until the RPC timeout. Every attempt sends
    /// the same shared bytes.
    pub async fn write_shard(
        &self,
        shard: u32,
        batch: Bytes,
    ) -> Result<ShardOutcome, ClusterError> {
        self.check_storage()?;
        let g = shard_group(shard);
        let deadline = Instant::now() + self.cfg().rpc_timeout;
        loop {
            // A node whose storage failed answers at once, not after the
            // retries time out.
            self.check_storage()?;
            let res = match self.leader_of(g) {
                Some(l) if l == self.id() => self.write_local(g, batch.to_vec()).await,
                Some(l) => match self.write_remote(l, &[(shard, batch.clone())]).await.pop() {
                    Some(r) => r,
                    None => Err(Attempt::Retry),
                },
                None => Err(Attempt::Retry),
            };
            match res {
                Ok(o) => return Ok(o),
                Err(Attempt::Fail(e)) => return Err(e),
                Err(Attempt::Retry) if Instant::now() < deadline => {
                    tokio::time::sleep(RETRY_PAUSE).await
                }
                Err(Attempt::Retry) => return Err(ClusterError::NoLeader { group: g }),
            }
        }
    }

    /// Writes shards' encoded batches, each as [`Node::write_shard`] does,
    /// but the batches for shards another node leads go to it in one call
    /// (a remote write touches every shard: one call per peer, not one per
    /// shard). A batch the peer redirects or does not answer goes through
    /// `write_shard`'s retry loop. The outcomes are in the order of
    /// `batches`.
    pub async fn write_shards(
        &self,
        batches: Vec<(u32, Bytes)>,
    ) -> Vec<Result<ShardOutcome, ClusterError>> {
        let mut by_peer: BTreeMap<NodeId, Vec<usize>> = BTreeMap::new();
        let mut alone = Vec::new();
        // A node whose storage failed answers every batch at once (from
        // write_shard), forwarding nothing.
        let healthy = self.check_storage().is_ok();
        for (i, (s, _)) in batches.iter().enumerate() {
            match self.leader_of(shard_group(*s)) {
                Some(l) if l != self.id() && healthy => by_peer.entry(l).or_default().push(i),
                _ => alone.push(i),
            }
        }
        let batches = &batches;
        let peers = join_all(by_peer.into_iter().map(|(to, idx)| async move {
            let sent: Vec<(u32, Bytes)> = idx.iter().map(|&i| batches[i].clone()).collect();
            let got = self.write_remote(to, &sent).await;
            join_all(idx.into_iter().zip(got).map(|(i, r)| async move {
                let (shard, b) = &batches[i];
                let r = match r {
                    Ok(o) => Ok(o),
                    Err(Attempt::Fail(e)) => Err(e),
                    Err(Attempt::Retry) => self.write_shard(*shard, b.clone()).await,
                };
                (i, r)
            }))
            .await
        }));
        let alone = join_all(alone.into_iter().map(|i| async move {
            let (shard, b) = &batches[i];
            (i, self.write_shard(*shard, b.clone()).await)
        }));
        let (p, a) = tokio::join!(peers, alone);
        let mut out: Vec<Option<Result<ShardOutcome, ClusterError>>> =
            batches.iter().map(|_| None).collect();
        for (i, r) in p.into_iter().flatten().chain(a) {
            out[i] = Some(r);
        }
        out.into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(ClusterError::Internal(
                        "invariant broken: a batch was not written".into(),
                    ))
                })
            })
            .collect()
    }

    /// Proposes on the local replica (which should lead `g`).
    pub(crate) async fn write_local(
        &self,
        g: GroupId,
        batch: Vec<u8>,
    ) -> Result<ShardOutcome, Attempt> {
        let Some(p) = self.group(g).and_then(|x| x.proposer) else {
            self.forget_leader(g);
            return Err(Attempt::Retry);
        };
        match p.write(batch).await {
            Ok(o) => Ok(o),
            Err(e) => Err(self.propose_failure(g, e)),
        }
    }

    pub(crate) fn propose_failure(&self, g: GroupId, e: ProposeError) -> Attempt {
        match e {
            ProposeError::NotLeader(Some((l, addr))) => {
                self.hint_leader(g, l, Some(&addr));
                Attempt::Retry
            }
            ProposeError::NotLeader(None) | ProposeError::Failed(_) => {
                // Ask the next replica: it leads or knows who does.
                self.guess_next_leader(g, self.id());
                Attempt::Retry
            }
            ProposeError::Overloaded => Attempt::Fail(ClusterError::Overloaded(format!(
                "the write queue of shard group {g} is full"
            ))),
        }
    }

    /// Sends `batches` (shard, encoded batch) to `to` in one `Write` call.
    /// Each batch's outcome, in order: `Retry` when the peer redirected (a
    /// leader hint is recorded), could not be reached or answered out of
    /// shape, `Fail` when it reported an error a retry cannot mend.
    async fn write_remote(
        &self,
        to: NodeId,
        batches: &[(u32, Bytes)],
    ) -> Vec<Result<ShardOutcome, Attempt>> {
        let retry_all = || {
            batches
                .iter()
                .map(|(s, _)| {
                    self.guess_next_leader(shard_group(*s), to);
                    Err(Attempt::Retry)
                })
                .collect()
        };
        let Ok(mut c) = self.router().client(to) else {
            return retry_all();
        };
        let req = proto::cluster::WriteRequest {
            batches: batches
                .iter()
                .map(|(shard, b)| proto::cluster::ShardWriteRequest {
                    shard: *shard,
                    batch: b.to_vec(),
                })
                .collect(),
        };
        let answers = match c.write(req).await {
            Ok(r) => r.into_inner().answers,
            Err(_) => return retry_all(),
        };
        if answers.len() != batches.len() {
            return retry_all();
        }
        batches
            .iter()
            .zip(answers)
            .map(|((shard, _), r)| self.forwarded_outcome(*shard, to, r))
            .collect()
    }

    /// A peer's answer for one forwarded batch.
    fn forwarded_outcome(
        &self,
        shard: u32,
        leader: NodeId,
        r: proto::cluster::ShardWriteResponse,
    ) -> Result<ShardOutcome, Attempt> {
        let g = shard_group(shard);
        if self.redirected(shard, leader, r.redirect) {
            return Err(Attempt::Retry);
        }
        use proto::cluster::ErrorKind as K;
        match K::try_from(r.error_kind).unwrap_or(K::Internal) {
            K::None => Ok(ShardOutcome {
                accepted: r.accepted,
                rejected: r
                    .rejections
                    .into_iter()
                    .map(crate::convert::rejection_from_pb)
                    .collect::<Result<_, _>>()
                    .map_err(Attempt::Fail)?,
                series_ids: r
                    .series_ids
                    .into_iter()
                    .map(|i| (i != 0).then_some(i))
                    .collect(),
                unknown: r
                    .unknown
                    .into_iter()
                    .filter_map(|i| usize::try_from(i).ok())
                    .collect(),
            }),
            K::Overloaded => Err(Attempt::Fail(ClusterError::Overloaded(r.error))),
            K::BadData => Err(Attempt::Fail(ClusterError::BadData(r.error))),
            K::NoLeader | K::Unavailable | K::Internal => {
                self.guess_next_leader(g, leader);
                Err(Attempt::Retry)
            }
        }
    }

    /// After `failed` did not answer for `g`, try the next replica: it
    /// either leads or redirects to the leader.
    pub(crate) fn guess_next_leader(&self, g: GroupId, failed: NodeId) {
        let Some(shard) = crate::types::group_shard(g) else {
            self.forget_leader(g);
            return;
        };
        let reps = self.replicas(shard);
        if reps.is_empty() {
            return;
        }
        let pos = reps
            .iter()
            .position(|&n| n == failed)
            .unwrap_or(reps.len() - 1);
        let next = reps[(pos + 1) % reps.len()];
        self.hint_leader(g, next, None);
    }
}
