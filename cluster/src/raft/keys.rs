//! RocksDB key layouts of the cluster's column families.
//!
//! ```text
//! raft_log   key := group:u64 | index:u64            value := codec entry (see crate::raft::codec)
//! raft_meta  key := group:u64 | kind:u8              value := JSON
//!            kind 1 = vote (openraft::Vote)
//!            kind 2 = committed (Option<LogId>)
//!            kind 3 = last purged (LogId)
//! sm_meta    key := "cluster/meta-snapshot"           value := JSON of the meta group's
//!                                                      snapshot (last applied, membership, state)
//! ```
//! All integers big-endian, so one group's log is one ordered key range.

use crate::types::GroupId;

/// Column family of the Raft logs.
pub const CF_LOG: &str = "raft_log";
/// Column family of votes, committed and purged pointers.
pub const CF_META: &str = "raft_meta";
/// Column family of state-machine metadata.
pub const CF_SM: &str = "sm_meta";

/// `raft_meta` kind byte: the vote.
pub const META_VOTE: u8 = 1;
/// `raft_meta` kind byte: the committed log id.
pub const META_COMMITTED: u8 = 2;
/// `raft_meta` kind byte: the last purged log id.
pub const META_PURGED: u8 = 3;

/// `sm_meta` key of the meta group's snapshot.
pub const SM_META_SNAPSHOT: &[u8] = b"cluster/meta-snapshot";

/// Key of log entry `index` of `group`.
pub fn log_key(group: GroupId, index: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&group.to_be_bytes());
    k[8..].copy_from_slice(&index.to_be_bytes());
    k
}

/// The index in a log key, if `k` is a key of `group`.
pub fn log_key_index(group: GroupId, k: &[u8]) -> Option<u64> {
    if k.len() != 16 || k[..8] != group.to_be_bytes() {
        return None;
    }
    let mut a = [0u8; 8];
    a.copy_from_slice(&k[8..]);
    Some(u64::from_be_bytes(a))
}

/// Key of a `raft_meta` record.
pub fn meta_key(group: GroupId, kind: u8) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[..8].copy_from_slice(&group.to_be_bytes());
    k[8] = kind;
    k
}

/// The group of a `raft_meta` key.
pub fn meta_key_group(k: &[u8]) -> Option<GroupId> {
    if k.len() != 9 {
        return None;
    }
    let mut a = [0u8; 8];
    a.copy_from_slice(&k[..8]);
    Some(u64::from_be_bytes(a))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_keys_sort_by_group_then_index() {
        assert!(log_key(1, u64::MAX) < log_key(2, 0));
        assert!(log_key(1, 255) < log_key(1, 256));
        assert_eq!(log_key_index(1, &log_key(1, 77)), Some(77));
        assert_eq!(log_key_index(2, &log_key(1, 77)), None);
        assert_eq!(meta_key_group(&meta_key(9, META_VOTE)), Some(9));
    }
}
