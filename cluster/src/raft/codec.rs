//! Byte layout of a Raft log entry, as stored in the `raft_log` column family
//! and as carried inside `AppendEntries` RPCs.
//!
//! ```text
//! entry   := version:u8 (=1) | term:u64 | leader:u64 | index:u64 | kind:u8 | body
//! kind 0  (blank)      body := (empty)
//! kind 1  (write)      body := count:u32 | count × ( len:u32 | batch:[u8; len] )
//!                              each batch an encoded storage::WriteBatch
//! kind 2  (meta)       body := JSON of crate::meta::MetaCommand
//! kind 3  (membership) body := JSON of openraft::Membership
//! kind 4  (write with series limits)
//!                      body := max_series:u64 | max_series_per_metric:u64
//!                              | (kind 1's body)
//! ```
//! A write entry without limits is written as kind 1.
//! Integers are big-endian. Readers reject unknown versions and kinds, and
//! lengths that overrun the buffer (entries may come from the network).

use openraft::{BasicNode, CommittedLeaderId, EntryPayload, LogId, Membership};

use crate::types::{NodeId, Request, TypeConfig, WriteEntry};

/// The log entry type.
pub type Entry = openraft::Entry<TypeConfig>;

const VERSION: u8 = 1;
const KIND_BLANK: u8 = 0;
const KIND_WRITE: u8 = 1;
const KIND_META: u8 = 2;
const KIND_MEMBERSHIP: u8 = 3;
const KIND_LIMITED_WRITE: u8 = 4;

/// Why bytes could not be decoded as an entry.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The buffer ended early or a length overran it.
    #[error("cannot decode raft entry: truncated ({0})")]
    Truncated(&'static str),
    /// Unknown version byte.
    #[error("cannot decode raft entry: unknown version {0}")]
    Version(u8),
    /// Unknown payload kind.
    #[error("cannot decode raft entry: unknown kind {0}")]
    Kind(u8),
    /// A JSON body did not parse.
    #[error("cannot decode raft entry: {0}")]
    Json(#[from] serde_json::Error),
}

/// Appends the encoding of `e` to `out`.
pub fn encode_entry(e: &Entry, out: &mut Vec<u8>) {
    out.push(VERSION);
    out.extend_from_slice(&e.log_id.leader_id.term.to_be_bytes());
    out.extend_from_slice(&e.log_id.leader_id.node_id.to_be_bytes());
    out.extend_from_slice(&e.log_id.index.to_be_bytes());
    match &e.payload {
        EntryPayload::Blank => out.push(KIND_BLANK),
        EntryPayload::Normal(Request::Write(w)) => {
            if w.limits().is_none() {
                out.push(KIND_WRITE);
            } else {
                out.push(KIND_LIMITED_WRITE);
                out.extend_from_slice(&w.max_series.to_be_bytes());
                out.extend_from_slice(&w.max_series_per_metric.to_be_bytes());
            }
            out.extend_from_slice(&(w.batches.len() as u32).to_be_bytes());
            for b in &w.batches {
                out.extend_from_slice(&(b.len() as u32).to_be_bytes());
                out.extend_from_slice(b);
            }
        }
        EntryPayload::Normal(Request::Meta(cmd)) => {
            out.push(KIND_META);
            // Serializing plain data structures to JSON cannot fail.
            serde_json::to_writer(&mut *out, cmd).expect("meta command serializes");
        }
        EntryPayload::Membership(m) => {
            out.push(KIND_MEMBERSHIP);
            serde_json::to_writer(&mut *out, m).expect("membership serializes");
        }
    }
}

/// The encoding of `e` as a new vector.
pub fn entry_bytes(e: &Entry) -> Vec<u8> {
    let mut v = Vec::with_capacity(64);
    encode_entry(e, &mut v);
    v
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], CodecError> {
        if self.0.len() < n {
            return Err(CodecError::Truncated(what));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u64(&mut self, what: &'static str) -> Result<u64, CodecError> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }
    fn u32(&mut self, what: &'static str) -> Result<u32, CodecError> {
        let b = self.take(4, what)?;
        let mut a = [0u8; 4];
        a.copy_from_slice(b);
        Ok(u32::from_be_bytes(a))
    }
    fn u8(&mut self, what: &'static str) -> Result<u8, CodecError> {
        Ok(self.take(1, what)?[0])
    }
}

/// Decodes one entry.
pub fn decode_entry(b: &[u8]) -> Result<Entry, CodecError> {
    let mut r = Reader(b);
    let v = r.u8("version")?;
    if v != VERSION {
        return Err(CodecError::Version(v));
    }
    let term = r.u64("term")?;
    let leader: NodeId = r.u64("leader")?;
    let index = r.u64("index")?;
    let log_id = LogId::new(CommittedLeaderId::new(term, leader), index);
    let payload = match r.u8("kind")? {
        KIND_BLANK => EntryPayload::Blank,
        kind @ (KIND_WRITE | KIND_LIMITED_WRITE) => {
            let mut w = WriteEntry::default();
            if kind == KIND_LIMITED_WRITE {
                w.max_series = r.u64("max series")?;
                w.max_series_per_metric = r.u64("max series per metric")?;
            }
            let n = r.u32("batch count")? as usize;
            w.batches = Vec::with_capacity(n.min(1024));
            for _ in 0..n {
                let len = r.u32("batch length")? as usize;
                w.batches.push(r.take(len, "batch")?.to_vec());
            }
            EntryPayload::Normal(Request::Write(w))
        }
        KIND_META => EntryPayload::Normal(Request::Meta(serde_json::from_slice(r.0)?)),
        KIND_MEMBERSHIP => {
            let m: Membership<NodeId, BasicNode> = serde_json::from_slice(r.0)?;
            EntryPayload::Membership(m)
        }
        k => return Err(CodecError::Kind(k)),
    };
    Ok(Entry { log_id, payload })
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;
    use crate::meta::MetaCommand;

    fn entry(payload: EntryPayload<TypeConfig>) -> Entry {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(7, 3), 42),
            payload,
        }
    }

    #[test]
    fn round_trips_every_kind() {
        let nodes = BTreeMap::from([(1u64, BasicNode::new("a:1"))]);
        let m = Membership::new(vec![BTreeSet::from([1u64])], nodes);
        let cases = [
            entry(EntryPayload::Blank),
            entry(EntryPayload::Normal(Request::Write(WriteEntry::unlimited(
                vec![vec![1, 2, 3], vec![]],
            )))),
            entry(EntryPayload::Normal(Request::Write(WriteEntry {
                batches: vec![vec![4, 5]],
                max_series: 1000,
                max_series_per_metric: 0,
            }))),
            entry(EntryPayload::Normal(Request::Meta(MetaCommand::Put {
                key: "k".into(),
                value: vec![9],
            }))),
            entry(EntryPayload::Membership(m)),
        ];
        for e in cases {
            let b = entry_bytes(&e);
            assert_eq!(decode_entry(&b).unwrap(), e);
        }
    }

    #[test]
    fn layout_is_stable() {
        let e = entry(EntryPayload::Normal(Request::Write(WriteEntry::unlimited(
            vec![vec![0xAB]],
        ))));
        let b = entry_bytes(&e);
        let want: Vec<u8> = [
            &[1u8][..],
            &7u64.to_be_bytes(),
            &3u64.to_be_bytes(),
            &42u64.to_be_bytes(),
            &[1],
            &1u32.to_be_bytes(),
            &1u32.to_be_bytes(),
            &[0xAB],
        ]
        .concat();
        assert_eq!(b, want);
    }

    #[test]
    fn rejects_garbage() {
        let e = entry(EntryPayload::Normal(Request::Write(WriteEntry::unlimited(
            vec![vec![1, 2, 3]],
        ))));
        let b = entry_bytes(&e);
        for cut in 0..b.len() {
            assert!(decode_entry(&b[..cut]).is_err(), "prefix {cut} decoded");
        }
        let mut bad = b.clone();
        bad[0] = 9;
        assert!(matches!(decode_entry(&bad), Err(CodecError::Version(9))));
        let mut bad = b;
        bad[25] = 77;
        assert!(matches!(decode_entry(&bad), Err(CodecError::Kind(77))));
    }
}
