//! How openraft RPCs travel in [`proto::cluster::RaftRequest`]: a JSON
//! header with the small fields, the entries in the compact
//! [`crate::raft::codec`] layout (never JSON: they hold the samples), and
//! snapshot chunks as raw bytes. Replies are JSON of
//! `Result<response, RaftError>`.

use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{LogId, SnapshotMeta, Vote};
use proto::cluster::{RaftKind, RaftRequest};
use serde::{Deserialize, Serialize};

use crate::raft::codec;
use crate::types::{GroupId, NodeId, TypeConfig};

/// A request or reply that could not be decoded.
#[derive(Debug, thiserror::Error)]
#[error("cannot decode raft rpc: {0}")]
pub struct RpcDecodeError(pub String);

#[derive(Serialize, Deserialize)]
struct AppendHeader {
    vote: Vote<NodeId>,
    prev_log_id: Option<LogId<NodeId>>,
    leader_commit: Option<LogId<NodeId>>,
}

#[derive(Serialize, Deserialize)]
struct SnapshotHeader {
    vote: Vote<NodeId>,
    meta: SnapshotMeta<NodeId, openraft::BasicNode>,
    offset: u64,
    done: bool,
}

fn json<T: Serialize>(v: &T) -> Vec<u8> {
    // Plain data structures with string keys always serialize.
    serde_json::to_vec(v).expect("raft rpc serializes")
}

/// Encodes an AppendEntries request for `group`.
pub fn encode_append(group: GroupId, r: &AppendEntriesRequest<TypeConfig>) -> RaftRequest {
    let h = AppendHeader {
        vote: r.vote,
        prev_log_id: r.prev_log_id,
        leader_commit: r.leader_commit,
    };
    RaftRequest {
        group_id: group,
        kind: RaftKind::AppendEntries as i32,
        header: json(&h),
        entries: r.entries.iter().map(codec::entry_bytes).collect(),
        data: Vec::new(),
        from_node: 0,
    }
}

/// Decodes an AppendEntries request.
pub fn decode_append(r: &RaftRequest) -> Result<AppendEntriesRequest<TypeConfig>, RpcDecodeError> {
    let h: AppendHeader =
        serde_json::from_slice(&r.header).map_err(|e| RpcDecodeError(e.to_string()))?;
    let entries = r
        .entries
        .iter()
        .map(|b| codec::decode_entry(b))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| RpcDecodeError(e.to_string()))?;
    Ok(AppendEntriesRequest {
        vote: h.vote,
        prev_log_id: h.prev_log_id,
        leader_commit: h.leader_commit,
        entries,
    })
}

/// Encodes a Vote request.
pub fn encode_vote(group: GroupId, r: &VoteRequest<NodeId>) -> RaftRequest {
    RaftRequest {
        group_id: group,
        kind: RaftKind::Vote as i32,
        header: json(r),
        entries: Vec::new(),
        data: Vec::new(),
        from_node: 0,
    }
}

/// Decodes a Vote request.
pub fn decode_vote(r: &RaftRequest) -> Result<VoteRequest<NodeId>, RpcDecodeError> {
    serde_json::from_slice(&r.header).map_err(|e| RpcDecodeError(e.to_string()))
}

/// Encodes an InstallSnapshot chunk.
pub fn encode_snapshot(group: GroupId, r: &InstallSnapshotRequest<TypeConfig>) -> RaftRequest {
    let h = SnapshotHeader {
        vote: r.vote,
        meta: r.meta.clone(),
        offset: r.offset,
        done: r.done,
    };
    RaftRequest {
        group_id: group,
        kind: RaftKind::InstallSnapshot as i32,
        header: json(&h),
        entries: Vec::new(),
        data: r.data.clone(),
        from_node: 0,
    }
}

/// Decodes an InstallSnapshot chunk (takes the data out of `r`).
pub fn decode_snapshot(
    r: &mut RaftRequest,
) -> Result<InstallSnapshotRequest<TypeConfig>, RpcDecodeError> {
    let h: SnapshotHeader =
        serde_json::from_slice(&r.header).map_err(|e| RpcDecodeError(e.to_string()))?;
    Ok(InstallSnapshotRequest {
        vote: h.vote,
        meta: h.meta,
        offset: h.offset,
        data: std::mem::take(&mut r.data),
        done: h.done,
    })
}

/// Reply of an AppendEntries.
pub type AppendReply = Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>;
/// Reply of a Vote.
pub type VoteReply = Result<VoteResponse<NodeId>, RaftError<NodeId>>;
/// Reply of an InstallSnapshot.
pub type SnapshotReply =
    Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>;

/// The reply openraft gives a chunk that does not continue the stream it
/// holds: the sender starts over at offset 0.
pub fn snapshot_mismatch(r: &InstallSnapshotRequest<TypeConfig>) -> SnapshotReply {
    let id = |offset| openraft::SnapshotSegmentId {
        id: r.meta.snapshot_id.clone(),
        offset,
    };
    Err(RaftError::APIError(InstallSnapshotError::SnapshotMismatch(
        openraft::error::SnapshotMismatch {
            expect: id(0),
            got: id(r.offset),
        },
    )))
}

/// Encodes any reply.
pub fn encode_reply<T: Serialize>(r: &T) -> Vec<u8> {
    json(r)
}

/// Decodes any reply.
pub fn decode_reply<T: serde::de::DeserializeOwned>(b: &[u8]) -> Result<T, RpcDecodeError> {
    serde_json::from_slice(b).map_err(|e| RpcDecodeError(e.to_string()))
}

#[cfg(test)]
mod tests {
    use openraft::{CommittedLeaderId, EntryPayload};

    use super::*;
    use crate::types::Request;

    #[test]
    fn append_round_trips() {
        let lid = |i| LogId::new(CommittedLeaderId::new(2, 1), i);
        let req = AppendEntriesRequest::<TypeConfig> {
            vote: Vote::new_committed(2, 1),
            prev_log_id: Some(lid(4)),
            leader_commit: Some(lid(3)),
            entries: vec![codec::Entry {
                log_id: lid(5),
                payload: EntryPayload::Normal(Request::Write(crate::types::WriteEntry::unlimited(
                    vec![vec![1, 2]],
                ))),
            }],
        };
        let wire = encode_append(7, &req);
        assert_eq!(wire.group_id, 7);
        let back = decode_append(&wire).unwrap();
        assert_eq!(back.entries, req.entries);
        assert_eq!(back.prev_log_id, req.prev_log_id);
        assert_eq!(back.vote, req.vote);
        let mut bad = wire;
        bad.entries[0].truncate(3);
        assert!(decode_append(&bad).is_err());
    }
}
