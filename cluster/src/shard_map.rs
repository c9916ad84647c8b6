//! Which shard a series belongs to, and the initial replica layout.
//!
//! A series' shard is `xxh3_64_with_seed(canonical labels, SEED) mod
//! shard_count`. The canonical encoding is every label in name order as
//! `name 0xFF value 0xFF` (0xFF never occurs in UTF-8, so the encoding is
//! unambiguous). The seed and the encoding are fixed forever: changing them
//! would move every series to another shard.

use std::collections::BTreeMap;

use query::model::Labels;
use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::types::NodeId;

/// The hash seed ("silverbk" in ASCII).
pub const SEED: u64 = 0x7369_6c76_6572_626b;

/// The stable 64-bit hash of a label set.
pub fn series_hash(labels: &Labels) -> u64 {
    let mut buf = Vec::with_capacity(128);
    for l in labels {
        buf.extend_from_slice(l.name.as_bytes());
        buf.push(0xFF);
        buf.extend_from_slice(l.value.as_bytes());
        buf.push(0xFF);
    }
    xxh3_64_with_seed(&buf, SEED)
}

/// The shard of a label set.
pub fn shard_of(labels: &Labels, shard_count: u32) -> u32 {
    (series_hash(labels) % u64::from(shard_count.max(1))) as u32
}

/// The initial replica set of every shard: shard `s` on the `rf` nodes
/// following position `s` in id order, so replicas (and the first replica,
/// which bootstraps the group and usually leads it) spread evenly.
pub fn initial_replicas(
    nodes: &[NodeId],
    shard_count: u32,
    rf: usize,
) -> BTreeMap<u32, Vec<NodeId>> {
    let mut ids = nodes.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let rf = rf.clamp(1, ids.len().max(1));
    let mut out = BTreeMap::new();
    if ids.is_empty() {
        return out;
    }
    for s in 0..shard_count {
        let v = (0..rf).map(|k| ids[(s as usize + k) % ids.len()]).collect();
        out.insert(s, v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_stable_and_order_independent() {
        let a = Labels::from_pairs([("__name__", "up"), ("job", "x")]);
        let b = Labels::from_pairs([("job", "x"), ("__name__", "up")]);
        assert_eq!(series_hash(&a), series_hash(&b));
        // Pinned: the shard of a series must never change between versions.
        assert_eq!(
            series_hash(&a),
            0x50ef_c60c_1faf_f322_u64, // xxh3_64 of the encoding, checked with Python's xxhash
            "{:#x}",
            series_hash(&a)
        );
    }

    #[test]
    fn hash_separates_names_and_values() {
        let a = Labels::from_pairs([("a", "bc")]);
        let b = Labels::from_pairs([("ab", "c")]);
        assert_ne!(series_hash(&a), series_hash(&b));
    }

    #[test]
    fn replicas_spread_evenly() {
        let r = initial_replicas(&[3, 1, 2], 32, 3);
        assert_eq!(r.len(), 32);
        let mut first = BTreeMap::<NodeId, usize>::new();
        for v in r.values() {
            assert_eq!(v.len(), 3);
            *first.entry(v[0]).or_default() += 1;
        }
        assert!(first.values().all(|&c| (10..=11).contains(&c)), "{first:?}");
        let r = initial_replicas(&[1, 2], 4, 3);
        assert!(r.values().all(|v| v.len() == 2));
        let r = initial_replicas(&[1], 4, 3);
        assert_eq!(r[&3], vec![1]);
    }
}
