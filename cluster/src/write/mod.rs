//! The write path: each shard's part travels as one encoded batch
//! ([`storage::BatchEncoder`] bytes) to the shard's leader (the local
//! proposer, or forwarded over gRPC as the same bytes), is committed and
//! applied, and comes back with what was accepted and rejected and the ids
//! the shard gave each series (which the ingest cache keeps).

pub mod propose;
pub mod serve;

use std::collections::HashMap;
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
        let results = join_all(
            by_shard
                .into_iter()
                .map(|(shard, b)| self.write_shard(shard, Bytes::from(b.finish()))),
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
                Some(l) => self.write_remote(shard, l, &batch).await,
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

    async fn write_remote(
        &self,
        shard: u32,
        leader: NodeId,
        batch: &Bytes,
    ) -> Result<ShardOutcome, Attempt> {
        let g = shard_group(shard);
        let Ok(mut c) = self.router().client(leader) else {
            self.guess_next_leader(g, leader);
            return Err(Attempt::Retry);
        };
        let req = proto::cluster::ShardWriteRequest {
            shard,
            batch: batch.to_vec(),
        };
        let r = match c.write(req).await {
            Ok(r) => r.into_inner(),
            Err(_) => {
                self.guess_next_leader(g, leader);
                return Err(Attempt::Retry);
            }
        };
        if let Some(rd) = r.redirect.filter(|r| r.not_leader) {
            if rd.leader_id != 0 && rd.leader_id != leader {
                self.hint_leader(g, rd.leader_id, Some(&rd.leader_addr));
            } else {
                self.guess_next_leader(g, leader);
            }
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
