//! The initial replica layout of a new cluster. (Which shard a series
//! belongs to is `model::labels::shard_of`.)

use std::collections::BTreeMap;

use crate::types::NodeId;

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
