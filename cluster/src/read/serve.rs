//! The serving side of the typed read calls: a peer asks this node, as the
//! leader of a shard, for its chunks, label names or values, series, or
//! cardinality figures; the read runs on the blocking pool and stops at the
//! caller's deadline (`grpc-timeout`).

use model::Matcher;
use proto::cluster as pb;

use crate::convert::{labels_to_pb, matchers_from_pb};
use crate::error::ClusterError;
use crate::node::Node;
use crate::read::{read_local, tsdb_to_pb, ReadOp, ReadOut};
use crate::types::shard_group;

/// Runs a read on the local leader replica of `shard`.
async fn local_read(
    node: &Node,
    shard: u32,
    op: ReadOp,
    ms: &[pb::Matcher],
    min_t: i64,
    max_t: i64,
) -> Result<Result<ReadOut, pb::Redirect>, ClusterError> {
    let g = shard_group(shard);
    if let Some(rd) = node.redirect_unless_leader(g) {
        return Ok(Err(rd));
    }
    let ms: Vec<Matcher> = matchers_from_pb(ms)?;
    let Some(st) = node.group(g).and_then(|x| x.shard) else {
        return Err(ClusterError::NoLeader { group: g });
    };
    let out = tokio::task::spawn_blocking(move || read_local(&st, &op, &ms, min_t, max_t))
        .await
        .map_err(ClusterError::internal)?
        .map_err(|e| ClusterError::Internal(e.to_string()))?;
    Ok(Ok(out))
}

/// Answers a `Select`: the shard's chunks of matching series, as stored.
pub(crate) async fn select(
    node: &Node,
    deadline: Option<std::time::Instant>,
    r: pb::SelectRequest,
) -> pb::SelectResponse {
    let res = local_read(
        node,
        r.shard,
        ReadOp::SelectChunks(deadline),
        &r.matchers,
        r.min_t,
        r.max_t,
    );
    let out = match res.await {
        Ok(Ok(ReadOut::Chunks(v))) => pb::SelectResponse {
            series: v
                .into_iter()
                .map(|s| pb::SeriesChunks {
                    labels: labels_to_pb(&s.labels),
                    chunks: s
                        .chunks
                        .into_iter()
                        .map(|c| pb::Chunk {
                            min_t: c.min_t,
                            max_t: c.max_t,
                            data: c.data,
                        })
                        .collect(),
                })
                .collect(),
            ..Default::default()
        },
        Ok(Ok(_)) => pb::SelectResponse {
            error: "invariant broken: select returned another shape".into(),
            ..Default::default()
        },
        Ok(Err(rd)) => pb::SelectResponse {
            redirect: Some(rd),
            ..Default::default()
        },
        Err(e) => pb::SelectResponse {
            error: e.to_string(),
            ..Default::default()
        },
    };
    out
}

/// Answers a `TsdbStats` call.
pub(crate) async fn tsdb_stats(node: &Node, r: pb::TsdbStatsRequest) -> pb::TsdbStatsResponse {
    let out = match local_read(node, r.shard, ReadOp::TsdbStats, &[], 0, 0).await {
        Ok(Ok(ReadOut::Tsdb(st))) => tsdb_to_pb(st),
        Ok(Ok(_)) => pb::TsdbStatsResponse {
            error: "invariant broken: tsdb stats returned another shape".into(),
            ..Default::default()
        },
        Ok(Err(rd)) => pb::TsdbStatsResponse {
            redirect: Some(rd),
            ..Default::default()
        },
        Err(e) => pb::TsdbStatsResponse {
            error: e.to_string(),
            ..Default::default()
        },
    };
    out
}

/// Answers a `Series` call.
pub(crate) async fn series(node: &Node, r: pb::SelectRequest) -> pb::SeriesResponse {
    let out = match local_read(node, r.shard, ReadOp::Series, &r.matchers, r.min_t, r.max_t).await {
        Ok(Ok(ReadOut::Labels(v))) => pb::SeriesResponse {
            series: v
                .iter()
                .map(|l| pb::SeriesLabels {
                    labels: labels_to_pb(l),
                })
                .collect(),
            ..Default::default()
        },
        Ok(Ok(_)) => pb::SeriesResponse {
            error: "invariant broken: series read returned another shape".into(),
            ..Default::default()
        },
        Ok(Err(rd)) => pb::SeriesResponse {
            redirect: Some(rd),
            ..Default::default()
        },
        Err(e) => pb::SeriesResponse {
            error: e.to_string(),
            ..Default::default()
        },
    };
    out
}

/// Answers `LabelNames` and `LabelValues`.
pub(crate) async fn labels_reply(
    node: &Node,
    shard: u32,
    op: ReadOp,
    r: &pb::LabelsRequest,
) -> pb::LabelsResponse {
    match local_read(node, shard, op, &r.matchers, r.min_t, r.max_t).await {
        Ok(Ok(ReadOut::Strings(values))) => pb::LabelsResponse {
            values,
            ..Default::default()
        },
        Ok(Ok(_)) => pb::LabelsResponse {
            error: "invariant broken: label read returned another shape".into(),
            ..Default::default()
        },
        Ok(Err(rd)) => pb::LabelsResponse {
            redirect: Some(rd),
            ..Default::default()
        },
        Err(e) => pb::LabelsResponse {
            error: e.to_string(),
            ..Default::default()
        },
    }
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
