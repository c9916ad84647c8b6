//! The serving side of the `Read` call: a peer asks this node, as the
//! leader of some shards, for their chunks, label names or values, series,
//! or cardinality figures. The shards are read on the blocking pool, a
//! share per core, and each shard's answer is streamed back as its share
//! is done; the reads stop at the caller's deadline (`grpc-timeout`).

use std::collections::BTreeSet;
use std::pin::Pin;
use std::sync::Arc;

use futures::stream::{FuturesUnordered, Stream, StreamExt};
use model::Matcher;
use proto::cluster as pb;
use storage::Shard;
use tonic::Status;

use crate::convert::matchers_from_pb;
use crate::error::ClusterError;
use crate::node::Node;
use crate::read::{read_share_blocking, split_shares, ReadOp};
use crate::types::shard_group;

/// The answers of a `Read` call, one per requested shard.
pub(crate) type ReadStream = Pin<Box<dyn Stream<Item = Result<pb::ShardRead, Status>> + Send>>;

/// Answers a `Read`: a redirect for each shard this node does not lead,
/// an error for one whose read failed, else its answer. A request that
/// names a shard twice or one the cluster does not have, an unknown kind
/// or a matcher that does not compile is refused whole.
pub(crate) fn read(
    node: &Node,
    deadline: Option<std::time::Instant>,
    r: pb::ReadRequest,
) -> Result<ReadStream, Status> {
    let bad = |e: ClusterError| Status::invalid_argument(e.to_string());
    let op = ReadOp::of_request(&r, deadline).map_err(bad)?;
    let ms: Vec<Matcher> = matchers_from_pb(&r.matchers).map_err(bad)?;
    let mut seen = BTreeSet::new();
    for &s in &r.shards {
        if s >= node.shard_count() {
            return Err(Status::invalid_argument(format!("no shard {s}")));
        }
        if !seen.insert(s) {
            return Err(Status::invalid_argument(format!(
                "shard {s} is asked twice"
            )));
        }
    }
    let mut now: Vec<pb::ShardRead> = Vec::new();
    let mut local: Vec<(u32, Arc<Shard>)> = Vec::new();
    for &s in &r.shards {
        let g = shard_group(s);
        if let Some(rd) = node.redirect_unless_leader(g) {
            now.push(pb::ShardRead {
                shard: s,
                redirect: Some(rd),
                ..Default::default()
            });
            continue;
        }
        match node.group(g).and_then(|x| x.shard) {
            Some(st) => local.push((s, st)),
            None => now.push(pb::ShardRead {
                shard: s,
                error: ClusterError::NoLeader { group: g }.to_string(),
                ..Default::default()
            }),
        }
    }
    let (min_t, max_t) = (r.min_t, r.max_t);
    let reads: FuturesUnordered<_> = split_shares(local)
        .into_iter()
        .map(|share| read_share_blocking(share, op.clone(), ms.clone(), min_t, max_t))
        .collect();
    let answers = reads.flat_map(|v| {
        futures::stream::iter(v.into_iter().map(|(s, res)| {
            Ok(match res {
                Ok(out) => out.into_pb(s),
                Err(e) => pb::ShardRead {
                    shard: s,
                    error: e.to_string(),
                    ..Default::default()
                },
            })
        }))
    });
    Ok(Box::pin(
        futures::stream::iter(now.into_iter().map(Ok)).chain(answers),
    ))
}

/// The deadline a caller set with the `grpc-timeout` header (an integer of
/// at most 8 digits and a unit: `H`, `M`, `S`, `m`, `u`, `n`), if any.
pub(crate) fn request_deadline(md: &tonic::metadata::MetadataMap) -> Option<std::time::Instant> {
    let v = md.get("grpc-timeout")?.to_str().ok()?;
    let split = v.len().checked_sub(1)?;
    let (digits, unit) = v.split_at(split);
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    let d = match unit {
        "H" => std::time::Duration::from_secs(n.checked_mul(3600)?),
        "M" => std::time::Duration::from_secs(n.checked_mul(60)?),
        "S" => std::time::Duration::from_secs(n),
        "m" => std::time::Duration::from_millis(n),
        "u" => std::time::Duration::from_micros(n),
        "n" => std::time::Duration::from_nanos(n),
        _ => return None,
    };
    std::time::Instant::now().checked_add(d)
}

#[cfg(test)]
mod deadline_tests {
    use super::request_deadline;
    use std::time::{Duration, Instant};

    fn md(v: &str) -> tonic::metadata::MetadataMap {
        let mut m = tonic::metadata::MetadataMap::new();
        m.insert("grpc-timeout", v.parse().unwrap());
        m
    }

    #[test]
    fn grpc_timeout_becomes_a_deadline() {
        let now = Instant::now();
        let d = request_deadline(&md("250m")).unwrap();
        assert!(d >= now + Duration::from_millis(250));
        assert!(d <= Instant::now() + Duration::from_millis(250));
        let d = request_deadline(&md("2S")).unwrap();
        assert!(d >= now + Duration::from_secs(2));
        for bad in ["", "m", "12x", "123456789m", "-1m", "1.5S"] {
            assert!(request_deadline(&md(bad)).is_none(), "{bad:?}");
        }
        assert!(request_deadline(&tonic::metadata::MetadataMap::new()).is_none());
    }
}
