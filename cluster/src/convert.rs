//! Conversions between the query model and the gRPC messages.

use model::{Labels, MatchOp, Matcher};
use proto::cluster as pb;

use crate::error::ClusterError;

/// A rejection to its wire form.
pub fn rejection_to_pb(r: crate::types::Rejection) -> pb::Rejection {
    use pb::RejectReason as P;
    use storage::RejectReason as R;
    let reason = match r.reason {
        R::OutOfOrder => P::OutOfOrder,
        R::TooOld => P::TooOld,
        R::Duplicate => P::Duplicate,
        R::InvalidLabels => P::InvalidLabels,
        R::UnknownSeriesId => P::UnknownSeriesId,
        R::LabelTooLong => P::LabelTooLong,
        R::TooManyLabels => P::TooManyLabels,
        R::NativeHistogram => P::NativeHistogram,
        R::TooFarInFuture => P::TooFarInFuture,
        R::SeriesLimit => P::SeriesLimit,
        R::MetricSeriesLimit => P::MetricSeriesLimit,
        R::InvalidBatch => P::InvalidBatch,
    };
    pb::Rejection {
        reason: reason as i32,
        count: r.count,
        example: r.example,
    }
}

/// A rejection from its wire form; an unknown reason is a peer's error.
pub fn rejection_from_pb(r: pb::Rejection) -> Result<crate::types::Rejection, ClusterError> {
    use pb::RejectReason as P;
    use storage::RejectReason as R;
    let reason = match P::try_from(r.reason) {
        Ok(P::OutOfOrder) => R::OutOfOrder,
        Ok(P::TooOld) => R::TooOld,
        Ok(P::Duplicate) => R::Duplicate,
        Ok(P::InvalidLabels) => R::InvalidLabels,
        Ok(P::UnknownSeriesId) => R::UnknownSeriesId,
        Ok(P::LabelTooLong) => R::LabelTooLong,
        Ok(P::TooManyLabels) => R::TooManyLabels,
        Ok(P::NativeHistogram) => R::NativeHistogram,
        Ok(P::TooFarInFuture) => R::TooFarInFuture,
        Ok(P::SeriesLimit) => R::SeriesLimit,
        Ok(P::MetricSeriesLimit) => R::MetricSeriesLimit,
        Ok(P::InvalidBatch) => R::InvalidBatch,
        Ok(P::Unspecified) | Err(_) => {
            return Err(ClusterError::Internal(format!(
                "peer answered a write with unknown rejection reason {}",
                r.reason
            )))
        }
    };
    Ok(crate::types::Rejection {
        reason,
        count: r.count,
        example: r.example,
    })
}

/// Matchers to their wire form.
pub fn matchers_to_pb(ms: &[Matcher]) -> Vec<pb::Matcher> {
    ms.iter()
        .map(|m| pb::Matcher {
            name: m.name.clone(),
            r#type: match m.op {
                MatchOp::Equal => pb::MatchType::Eq,
                MatchOp::NotEqual => pb::MatchType::Neq,
                MatchOp::RegexMatch => pb::MatchType::Re,
                MatchOp::RegexNoMatch => pb::MatchType::Nre,
            } as i32,
            value: m.value.clone(),
        })
        .collect()
}

/// Matchers from their wire form (regexes compiled; errors are bad data).
pub fn matchers_from_pb(ms: &[pb::Matcher]) -> Result<Vec<Matcher>, ClusterError> {
    ms.iter()
        .map(|m| {
            let op = match pb::MatchType::try_from(m.r#type) {
                Ok(pb::MatchType::Eq) => MatchOp::Equal,
                Ok(pb::MatchType::Neq) => MatchOp::NotEqual,
                Ok(pb::MatchType::Re) => MatchOp::RegexMatch,
                Ok(pb::MatchType::Nre) => MatchOp::RegexNoMatch,
                Err(_) => {
                    return Err(ClusterError::BadData(format!(
                        "unknown matcher type {}",
                        m.r#type
                    )))
                }
            };
            Matcher::new(op, m.name.clone(), m.value.clone())
                .map_err(|e| ClusterError::BadData(format!("invalid regex {:?}: {e}", m.value)))
        })
        .collect()
}

/// Labels to their wire form.
pub fn labels_to_pb(l: &Labels) -> Vec<pb::Label> {
    l.iter()
        .map(|l| pb::Label {
            name: l.name.clone(),
            value: l.value.clone(),
        })
        .collect()
}

/// Labels from their wire form (re-sorted: bytes from a peer).
pub fn labels_from_pb(v: Vec<pb::Label>) -> Labels {
    Labels::from_pairs(v.into_iter().map(|l| (l.name, l.value)))
}

/// An error kind as the wire carries it.
pub(crate) fn kind_to_pb(k: crate::error::ErrorKind) -> pb::ErrorKind {
    use crate::error::ErrorKind;
    match k {
        ErrorKind::BadData => pb::ErrorKind::BadData,
        ErrorKind::Overloaded => pb::ErrorKind::Overloaded,
        ErrorKind::NoLeader => pb::ErrorKind::NoLeader,
        ErrorKind::Unavailable => pb::ErrorKind::Unavailable,
        ErrorKind::Internal => pb::ErrorKind::Internal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matchers_round_trip() {
        let ms = vec![
            Matcher::equal("a", "1"),
            Matcher::new(MatchOp::NotEqual, "b", "").unwrap(),
            Matcher::new(MatchOp::RegexMatch, "c", "x.*").unwrap(),
            Matcher::new(MatchOp::RegexNoMatch, "d", "y|z").unwrap(),
        ];
        assert_eq!(matchers_from_pb(&matchers_to_pb(&ms)).unwrap(), ms);
        let bad = vec![pb::Matcher {
            name: "a".into(),
            r#type: 2,
            value: "(".into(),
        }];
        assert!(matchers_from_pb(&bad).is_err());
    }
}
