//! The batching proposer of a shard this node leads: concurrent writes to
//! one shard are queued (bounded), and each round takes every queued write
//! (up to a limit) into ONE Raft entry, one sub-batch per caller, so each
//! caller still learns its own outcome. A few entries may be in flight at
//! once. Series the shard already knows are named by id; ids the shard does
//! not know (any more) come back as `unknown_ids` and are retried with
//! labels.

use std::sync::Arc;

use openraft::error::{ClientWriteError, RaftError};
use query::model::{Labels, Sample};
use storage::{SeriesRef, SeriesSamples, Shard, WriteBatch};
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::group::RaftHandle;
use crate::types::{merge_rejections, BatchOutcome, NodeId, Rejection, Request, Response};

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

enum Work {
    Series(Vec<IncomingSeries>),
    Raw(WriteBatch),
}

struct Job {
    work: Work,
    reply: oneshot::Sender<Result<ShardOutcome, ProposeError>>,
}

/// Handle of a shard's proposer (cheap to clone).
#[derive(Clone)]
pub struct Proposer {
    tx: mpsc::Sender<Job>,
}

impl Proposer {
    /// Starts the proposer task of a shard group.
    pub fn start(raft: RaftHandle, shard: Arc<Shard>, max_callers: usize, queue: usize) -> Self {
        let (tx, rx) = mpsc::channel(queue.max(1));
        tokio::spawn(run(
            raft,
            shard,
            rx,
            max_callers.clamp(1, crate::shard_sm::MAX_SUB_BATCHES),
        ));
        Proposer { tx }
    }

    /// Proposes `series` and waits until they are committed and applied.
    pub async fn write(&self, series: Vec<IncomingSeries>) -> Result<ShardOutcome, ProposeError> {
        self.submit(Work::Series(series)).await
    }

    /// Proposes a raw batch (e.g. retention).
    pub async fn write_raw(&self, batch: WriteBatch) -> Result<ShardOutcome, ProposeError> {
        self.submit(Work::Raw(batch)).await
    }

    async fn submit(&self, work: Work) -> Result<ShardOutcome, ProposeError> {
        let (reply, rx) = oneshot::channel();
        self.tx.try_send(Job { work, reply }).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => ProposeError::Overloaded,
            mpsc::error::TrySendError::Closed(_) => {
                ProposeError::Failed("shard proposer stopped".into())
            }
        })?;
        rx.await
            .map_err(|_| ProposeError::Failed("shard proposer stopped".into()))?
    }
}

async fn run(raft: RaftHandle, shard: Arc<Shard>, mut rx: mpsc::Receiver<Job>, max: usize) {
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
        let prepared: Vec<Prepared> = jobs.into_iter().map(|j| prepare(&shard, j)).collect();
        let raft = raft.clone();
        tokio::spawn(async move {
            let _permit = permit;
            propose(&raft, prepared).await;
        });
    }
}

/// A job turned into its sub-batch.
struct Prepared {
    batch: WriteBatch,
    /// Labels of each series (for a retry by labels), empty for raw work.
    labels: Vec<Labels>,
    reply: oneshot::Sender<Result<ShardOutcome, ProposeError>>,
}

fn prepare(shard: &Shard, job: Job) -> Prepared {
    match job.work {
        Work::Raw(batch) => Prepared {
            batch,
            labels: Vec::new(),
            reply: job.reply,
        },
        Work::Series(series) => {
            let mut labels = Vec::with_capacity(series.len());
            let mut v = Vec::with_capacity(series.len());
            for s in series {
                let r = match shard.lookup(&s.labels) {
                    Some(id) => SeriesRef::Id(id),
                    None => SeriesRef::Labels(s.labels.clone()),
                };
                labels.push(s.labels);
                v.push(SeriesSamples {
                    series: r,
                    samples: s.samples,
                });
            }
            Prepared {
                batch: WriteBatch::Samples(v),
                labels,
                reply: job.reply,
            }
        }
    }
}

async fn client_write(
    raft: &RaftHandle,
    subs: Vec<Vec<u8>>,
) -> Result<Vec<BatchOutcome>, ProposeError> {
    let n = subs.len();
    match raft.client_write(Request::Write(subs)).await {
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
    }
}

async fn propose(raft: &RaftHandle, jobs: Vec<Prepared>) {
    let subs = jobs.iter().map(|j| j.batch.to_bytes()).collect();
    let outs = match client_write(raft, subs).await {
        Ok(o) => o,
        Err(e) => {
            for j in jobs {
                let _ = j.reply.send(Err(e.clone()));
            }
            return;
        }
    };
    for (job, out) in jobs.into_iter().zip(outs) {
        let res = finish(raft, &job, out).await;
        let _ = job.reply.send(res);
    }
}

/// Turns a sub-batch outcome into the caller's, retrying series whose id
/// the shard did not know with their labels.
async fn finish(
    raft: &RaftHandle,
    job: &Prepared,
    out: BatchOutcome,
) -> Result<ShardOutcome, ProposeError> {
    let mut res = ShardOutcome {
        accepted: out.accepted,
        rejected: Vec::new(),
    };
    if out.unknown_ids.is_empty() {
        res.rejected = out.rejected;
        return Ok(res);
    }
    res.rejected = out
        .rejected
        .into_iter()
        .filter(|r| r.reason != storage::RejectReason::UnknownSeriesId.to_string())
        .collect();
    let WriteBatch::Samples(series) = &job.batch else {
        return Ok(res);
    };
    let retry: Vec<SeriesSamples> = out
        .unknown_ids
        .iter()
        .filter_map(|&i| {
            Some(SeriesSamples {
                series: SeriesRef::Labels(job.labels.get(i)?.clone()),
                samples: series.get(i)?.samples.clone(),
            })
        })
        .collect();
    let again = client_write(raft, vec![WriteBatch::Samples(retry).to_bytes()]).await?;
    for o in again {
        res.accepted += o.accepted;
        merge_rejections(&mut res.rejected, o.rejected);
    }
    Ok(res)
}
