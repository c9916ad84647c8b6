//! Checks on Raft messages from peers, made before openraft sees them.
//!
//! openraft trusts its network: a vote at term `u64::MAX` is persisted (and
//! the next election overflows the term), an InstallSnapshot chunk at
//! offset 2^40 makes the receiver grow its buffer to a terabyte. A message
//! reaches openraft only when it makes sense for the group as this node
//! knows it:
//!
//! - the sender (the `from_node` of the request, which a node sets to its
//!   own id) is the node the message speaks for: the candidate of a vote,
//!   the leader of entries and snapshots (`vote.leader_id.node_id`);
//! - the sender is a node of the group: a voter or learner of the local
//!   replica's membership, or a replica of the shard in the cluster map
//!   (while the local replica is new and has no membership yet), or any
//!   node of the cluster map for the meta group;
//! - terms are at most [`MAX_TERM_AHEAD`] ahead of the local term (a node
//!   cut off from the others for a year, campaigning every second, gets
//!   about 2^25 ahead) and below [`MAX_TERM`], log indexes below
//!   [`MAX_INDEX`], no log id has a term above the message's own, and
//!   entries follow `prev_log_id` one index at a time;
//! - snapshot chunks continue the stream the sender started: an offset
//!   past the bytes received so far (a gap) is answered with openraft's
//!   "snapshot mismatch", so a real sender starts over at 0, and a
//!   snapshot is at most [`MAX_SNAPSHOT_BYTES`].
//!
//! With the shared secret alone the sender id is what the sender says; the
//! checks then stop confused and stale nodes and messages that would break
//! a replica, not a member that lies about who it is. Raft itself keeps
//! committed entries: openraft never truncates below its commit index.

use std::collections::{BTreeSet, HashMap};

use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
use openraft::{LogId, Vote};
use parking_lot::Mutex;

use crate::types::{GroupId, NodeId, TypeConfig};

/// How far a message's term may be ahead of the local replica's.
pub const MAX_TERM_AHEAD: u64 = 1 << 32;
/// No term reaches this (openraft adds to terms without overflow checks).
pub const MAX_TERM: u64 = 1 << 62;
/// No log index reaches this.
pub const MAX_INDEX: u64 = 1 << 62;
/// Largest snapshot received.
pub const MAX_SNAPSHOT_BYTES: u64 = 64 << 30;
/// Largest snapshot chunk received (the sender's chunks are 4 MiB).
pub const MAX_CHUNK_BYTES: usize = 64 << 20;

/// Why a Raft message was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refusal {
    /// The request speaks for another node than its sender.
    #[error("node {sender} cannot speak for node {claimed} in group {group}")]
    NotItself {
        /// The group.
        group: GroupId,
        /// Who sent it.
        sender: NodeId,
        /// Whose vote or leadership it carries.
        claimed: NodeId,
    },
    /// The sender is not a node of the group.
    #[error("node {sender} is not a member of group {group} (members: {members:?})")]
    NotMember {
        /// The group.
        group: GroupId,
        /// Who sent it.
        sender: NodeId,
        /// The group's nodes as known here.
        members: Vec<NodeId>,
    },
    /// A term out of range.
    #[error("term {term} in group {group} makes no sense (local term {local})")]
    Term {
        /// The group.
        group: GroupId,
        /// The message's term.
        term: u64,
        /// The local replica's term.
        local: u64,
    },
    /// A log id out of range or ahead of the message's own term.
    #[error("{what} {log_id} in group {group} makes no sense for a message at term {term}")]
    LogId {
        /// The group.
        group: GroupId,
        /// Which field.
        what: &'static str,
        /// The log id.
        log_id: String,
        /// The message's term.
        term: u64,
    },
    /// Entries that do not follow `prev_log_id` one by one.
    #[error("entry {at} in group {group} has index {got}, expected {want}")]
    Gap {
        /// The group.
        group: GroupId,
        /// Position in the request.
        at: usize,
        /// Its index.
        got: u64,
        /// The index it should have.
        want: u64,
    },
    /// A snapshot chunk that does not continue the stream.
    #[error("snapshot chunk of group {group} at offset {offset} leaves a gap after {received} bytes received")]
    SnapshotGap {
        /// The group.
        group: GroupId,
        /// The chunk's offset.
        offset: u64,
        /// Bytes received so far in this stream.
        received: u64,
    },
    /// A snapshot or chunk larger than the caps.
    #[error("snapshot of group {group} would reach {end} bytes (chunk {chunk} bytes); the caps are {MAX_SNAPSHOT_BYTES} and {MAX_CHUNK_BYTES} bytes")]
    SnapshotTooLarge {
        /// The group.
        group: GroupId,
        /// Where the chunk would end.
        end: u64,
        /// The chunk's size.
        chunk: usize,
    },
}

/// What this node knows of a group, to judge a message for it.
#[derive(Clone, Debug)]
pub struct GroupView {
    /// The group.
    pub group: GroupId,
    /// Nodes that may send the group's messages.
    pub members: BTreeSet<NodeId>,
    /// The local replica's current term.
    pub term: u64,
}

impl GroupView {
    fn sender(&self, from: NodeId, vote: &Vote<NodeId>) -> Result<(), Refusal> {
        let claimed = vote.leader_id.node_id;
        if claimed != from {
            return Err(Refusal::NotItself {
                group: self.group,
                sender: from,
                claimed,
            });
        }
        if !self.members.contains(&from) {
            return Err(Refusal::NotMember {
                group: self.group,
                sender: from,
                members: self.members.iter().copied().collect(),
            });
        }
        let term = vote.leader_id.term;
        if term >= MAX_TERM || term > self.term.saturating_add(MAX_TERM_AHEAD) {
            return Err(Refusal::Term {
                group: self.group,
                term,
                local: self.term,
            });
        }
        Ok(())
    }

    fn log_id(
        &self,
        what: &'static str,
        l: &Option<LogId<NodeId>>,
        term: u64,
    ) -> Result<(), Refusal> {
        match l {
            Some(l) if l.index >= MAX_INDEX || l.leader_id.term > term => Err(Refusal::LogId {
                group: self.group,
                what,
                log_id: l.to_string(),
                term,
            }),
            _ => Ok(()),
        }
    }

    /// Checks a vote request from `from`.
    pub fn check_vote(&self, from: NodeId, r: &VoteRequest<NodeId>) -> Result<(), Refusal> {
        self.sender(from, &r.vote)?;
        self.log_id("last_log_id", &r.last_log_id, r.vote.leader_id.term)
    }

    /// Checks an AppendEntries request from `from`.
    pub fn check_append(
        &self,
        from: NodeId,
        r: &AppendEntriesRequest<TypeConfig>,
    ) -> Result<(), Refusal> {
        self.sender(from, &r.vote)?;
        let term = r.vote.leader_id.term;
        self.log_id("prev_log_id", &r.prev_log_id, term)?;
        self.log_id("leader_commit", &r.leader_commit, term)?;
        let first = r.prev_log_id.map(|l| l.index + 1).unwrap_or(0);
        for (at, (want, e)) in (first..).zip(r.entries.iter()).enumerate() {
            self.log_id("entry", &Some(e.log_id), term)?;
            if e.log_id.index != want {
                return Err(Refusal::Gap {
                    group: self.group,
                    at,
                    got: e.log_id.index,
                    want,
                });
            }
        }
        Ok(())
    }

    /// Checks the header of an InstallSnapshot chunk from `from` (the
    /// offset is checked by [`SnapshotStreams::accept`]).
    pub fn check_snapshot(
        &self,
        from: NodeId,
        r: &InstallSnapshotRequest<TypeConfig>,
    ) -> Result<(), Refusal> {
        self.sender(from, &r.vote)?;
        let term = r.vote.leader_id.term;
        self.log_id("snapshot last_log_id", &r.meta.last_log_id, term)?;
        self.log_id(
            "snapshot membership log id",
            r.meta.last_membership.log_id(),
            term,
        )
    }
}

/// Bytes received so far of the snapshot stream of each group.
#[derive(Default)]
pub struct SnapshotStreams {
    streams: Mutex<HashMap<GroupId, (String, u64)>>,
}

impl SnapshotStreams {
    /// Accepts the chunk `(id, offset, len)` of `group` when it starts a
    /// stream (offset 0) or continues the current one without a gap, and
    /// the snapshot stays under the caps.
    pub fn accept(&self, group: GroupId, id: &str, offset: u64, len: usize) -> Result<(), Refusal> {
        let end = offset.saturating_add(len as u64);
        if end > MAX_SNAPSHOT_BYTES || len > MAX_CHUNK_BYTES {
            return Err(Refusal::SnapshotTooLarge {
                group,
                end,
                chunk: len,
            });
        }
        let mut s = self.streams.lock();
        if offset == 0 {
            s.insert(group, (id.to_string(), end));
            return Ok(());
        }
        match s.get_mut(&group) {
            Some((cur, received)) if cur == id && offset <= *received => {
                *received = (*received).max(end);
                Ok(())
            }
            other => Err(Refusal::SnapshotGap {
                group,
                offset,
                received: other.filter(|(cur, _)| cur == id).map_or(0, |x| x.1),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use openraft::{CommittedLeaderId, EntryPayload};

    use super::*;
    use crate::raft::codec::Entry;

    fn view() -> GroupView {
        GroupView {
            group: 3,
            members: [1, 2, 3].into(),
            term: 5,
        }
    }

    fn lid(term: u64, node: NodeId, index: u64) -> LogId<NodeId> {
        LogId::new(CommittedLeaderId::new(term, node), index)
    }

    fn append(
        term: u64,
        node: NodeId,
        prev: Option<u64>,
        idx: &[u64],
    ) -> AppendEntriesRequest<TypeConfig> {
        AppendEntriesRequest {
            vote: Vote::new_committed(term, node),
            prev_log_id: prev.map(|i| lid(term, node, i)),
            leader_commit: None,
            entries: idx
                .iter()
                .map(|i| Entry {
                    log_id: lid(term, node, *i),
                    payload: EntryPayload::Blank,
                })
                .collect(),
        }
    }

    #[test]
    fn votes_must_come_from_a_member_speaking_for_itself() {
        let v = view();
        let vote = |term, node, last: Option<LogId<NodeId>>| VoteRequest {
            vote: Vote::new(term, node),
            last_log_id: last,
        };
        let f = |from, r: VoteRequest<NodeId>, ok: bool| {
            let got = v.check_vote(from, &r);
            assert_eq!(got.is_ok(), ok, "{from} {r:?}: {got:?}");
        };
        f(2, vote(6, 2, Some(lid(5, 1, 10))), true);
        f(2, vote(5 + MAX_TERM_AHEAD, 2, None), true);
        f(2, vote(6, 3, None), false); // speaks for node 3
        f(9, vote(6, 9, None), false); // not a member
        f(2, vote(6 + MAX_TERM_AHEAD, 2, None), false); // wildly ahead
        f(2, vote(u64::MAX, 2, None), false);
        f(2, vote(6, 2, Some(lid(7, 1, 10))), false); // a log from the future
        f(2, vote(6, 2, Some(lid(6, 1, MAX_INDEX))), false);
    }

    #[test]
    fn entries_must_follow_prev_log_id_within_the_term() {
        let v = view();
        let f = |r: AppendEntriesRequest<TypeConfig>, ok: bool| {
            let got = v.check_append(1, &r);
            assert_eq!(got.is_ok(), ok, "{got:?}");
        };
        f(append(5, 1, Some(4), &[5, 6, 7]), true);
        f(append(5, 1, None, &[0, 1]), true);
        f(append(5, 1, Some(9), &[]), true);
        f(append(5, 1, Some(4), &[6]), false);
        f(append(5, 1, Some(4), &[5, 5]), false);
        f(append(u64::MAX, 1, Some(4), &[5]), false);
        f(append(5, 2, Some(4), &[5]), false); // leader 2 sent by 1
        let mut r = append(5, 1, Some(4), &[5]);
        r.leader_commit = Some(lid(6, 1, 5));
        f(r, false);
        let mut r = append(5, 1, Some(4), &[5]);
        r.entries[0].log_id = lid(8, 1, 5);
        f(r, false);
        let mut r = append(5, 1, None, &[]);
        r.prev_log_id = Some(lid(5, 1, u64::MAX));
        f(r, false);
    }

    #[test]
    fn snapshot_chunks_continue_their_stream() {
        let s = SnapshotStreams::default();
        let f = |id: &str, off: u64, len: usize, ok: bool| {
            let got = s.accept(7, id, off, len);
            assert_eq!(got.is_ok(), ok, "{id} {off} {len}: {got:?}");
        };
        f("a", 1 << 40, 10, false); // the abort of issue 14
        f("a", 0, 100, true);
        f("a", 100, 100, true);
        f("a", 50, 100, true); // a resend
        f("a", 301, 10, false); // a gap
        f("b", 200, 10, false); // another snapshot must start at 0
        f("b", 0, MAX_CHUNK_BYTES + 1, false);
        f("b", MAX_SNAPSHOT_BYTES, 1, false);
        f("b", 0, 10, true);
        f("a", 10, 10, false); // stream a was replaced by b
        assert_eq!(
            s.accept(8, "c", 5, 1),
            Err(Refusal::SnapshotGap {
                group: 8,
                offset: 5,
                received: 0
            })
        );
    }
}
