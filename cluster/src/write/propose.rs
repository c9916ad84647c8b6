//! The batching proposer of a shard this node leads: concurrent writes to
//! one shard are queued (bounded), and each round takes every queued write
//! (up to a limit) into ONE Raft entry, one sub-batch per caller, so each
//! caller still learns its own outcome. A few entries may be in flight at
//! once. Batches arrive encoded (the ingest side names known series by id)
//! and go into the entry as they are; ids the shard does not know (any
//! more) come back in [`ShardOutcome::unknown`] for the caller to resend
//! with labels.

use std::sync::Arc;

use model::{Labels, Sample};
use openraft::error::{ClientWriteError, RaftError};
use storage::WriteBatch;
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::raft::group::RaftHandle;
use crate::types::{BatchOutcome, NodeId, Rejection, Request, Response, WriteEntry};

/// Entries of one shard in flight at once.
const MAX_IN_FLIGHT: usize = 4;

/// A series with its samples as a client sent it.
#[derive(Clone, Debug, PartialEq)]
pub struct IncomingSeries {
    /// The series' labels.
    pub labels: Labels,
    /// Its samples.
    pub samples: Vec<Sample>,
}

/// The outcome of one caller's write to one shard.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ShardOutcome {
    /// Samples stored.
    pub accepted: u64,
    /// Rejections by reason.
    pub rejected: Vec<Rejection>,
    /// Per series of the batch, in its order: the id the shard gave it
    /// (`None` if rejected).
    pub series_ids: Vec<Option<u64>>,
    /// Positions of series named by an id the shard does not know (any
    /// more): the caller resends them with labels.
    pub unknown: Vec<usize>,
}

/// Why a proposal did not happen.
#[derive(Clone, Debug, PartialEq)]
pub enum ProposeError {
    /// This node does not lead the shard (the leader, when known).
    NotLeader(Option<(NodeId, String)>),
    /// The queue is full.
    Overloaded,
    /// Raft failed (shutting down, storage error, ...).
    Failed(String),
}

struct Job {
    /// An encoded storage batch.
    batch: Vec<u8>,
    reply: oneshot::Sender<Result<ShardOutcome, ProposeError>>,
}

/// Handle of a shard's proposer (cheap to clone).
#[derive(Clone)]
pub struct Proposer {
    tx: mpsc::Sender<Job>,
}

impl Proposer {
    /// Starts the proposer task of a shard group; its entries carry
    /// `limits` (the shard's share of the series limits).
    pub fn start(
        raft: RaftHandle,
        max_callers: usize,
        queue: usize,
        limits: storage::SeriesLimits,
    ) -> Self {
        let (tx, rx) = mpsc::channel(queue.max(1));
        tokio::spawn(run(
            raft,
            rx,
            max_callers.clamp(1, crate::raft::shard_sm::MAX_SUB_BATCHES),
            limits,
        ));
        Proposer { tx }
    }

    /// Proposes an encoded batch ([`storage::BatchEncoder`] bytes) and
    /// waits until it is committed and applied.
    pub async fn write(&self, batch: Vec<u8>) -> Result<ShardOutcome, ProposeError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .try_send(Job { batch, reply })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => ProposeError::Overloaded,
                mpsc::error::TrySendError::Closed(_) => {
                    ProposeError::Failed("shard proposer stopped".into())
                }
            })?;
        rx.await
            .map_err(|_| ProposeError::Failed("shard proposer stopped".into()))?
    }

    /// Proposes a batch (e.g. retention).
    pub async fn write_raw(&self, batch: WriteBatch) -> Result<ShardOutcome, ProposeError> {
        self.write(batch.to_bytes()).await
    }
}

async fn run(
    raft: RaftHandle,
    mut rx: mpsc::Receiver<Job>,
    max: usize,
    limits: storage::SeriesLimits,
) {
    let sem = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    while let Some(first) = rx.recv().await {
        let Ok(permit) = sem.clone().acquire_owned().await else {
            return;
        };
        let mut jobs = vec![first];
        while jobs.len() < max {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let raft = raft.clone();
        tokio::spawn(async move {
            let _permit = permit;
            propose(&raft, jobs, limits).await;
        });
    }
}

async fn propose(raft: &RaftHandle, jobs: Vec<Job>, limits: storage::SeriesLimits) {
    let n = jobs.len();
    let mut replies = Vec::with_capacity(n);
    let mut subs = Vec::with_capacity(n);
    for j in jobs {
        subs.push(j.batch);
        replies.push(j.reply);
    }
    let entry = WriteEntry {
        batches: subs,
        max_series: limits.max_series,
        max_series_per_metric: limits.max_series_per_metric,
    };
    let res = match raft.client_write(Request::Write(entry)).await {
        Ok(resp) => match resp.data {
            Response::Write(outs) if outs.len() == n => Ok(outs),
            other => Err(ProposeError::Failed(format!(
                "invariant broken: write entry answered {other:?}"
            ))),
        },
        Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => Err(
            ProposeError::NotLeader(f.leader_id.zip(f.leader_node.map(|n| n.addr))),
        ),
        Err(e) => Err(ProposeError::Failed(e.to_string())),
    };
    match res {
        Ok(outs) => {
            for (reply, out) in replies.into_iter().zip(outs) {
                let _ = reply.send(Ok(outcome(out)));
            }
        }
        Err(e) => {
            for reply in replies {
                let _ = reply.send(Err(e.clone()));
            }
        }
    }
}

fn outcome(out: BatchOutcome) -> ShardOutcome {
    let unknown = storage::RejectReason::UnknownSeriesId;
    ShardOutcome {
        accepted: out.accepted,
        // Unknown ids are not the client's problem: the caller resends them.
        rejected: out
            .rejected
            .into_iter()
            .filter(|r| r.reason != unknown)
            .collect(),
        series_ids: out.series_ids,
        unknown: out.unknown_ids,
    }
}
