//! The openraft type configuration shared by every group, and the
//! application payload of a log entry.
//!
//! Group ids: [`META_GROUP`] (0) is the meta group; shard `s` is group
//! `s + 1` ([`shard_group`] / [`group_shard`]).

use serde::{Deserialize, Serialize};

/// Node ids are plain integers (`--node-id`).
pub type NodeId = u64;
/// A Raft group: the meta group or one shard.
pub type GroupId = u64;

/// The meta group's id.
pub const META_GROUP: GroupId = 0;

/// The group id of shard `shard`.
pub fn shard_group(shard: u32) -> GroupId {
    u64::from(shard) + 1
}

/// The shard of a group, `None` for the meta group.
pub fn group_shard(group: GroupId) -> Option<u32> {
    if group == META_GROUP {
        None
    } else {
        u32::try_from(group - 1).ok()
    }
}

openraft::declare_raft_types!(
    /// Silverback's openraft types: one config for the meta group and every
    /// shard group.
    pub TypeConfig:
        D = Request,
        R = Response,
        NodeId = NodeId,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = crate::raft::snapshot_data::SnapshotData,
        AsyncRuntime = openraft::TokioRuntime,
);

/// The application payload of a log entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Request {
    /// Sub-batches for a shard group.
    Write(WriteEntry),
    /// A command for the meta group.
    Meta(crate::meta::MetaCommand),
}

/// The body of a write entry.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WriteEntry {
    /// Encoded storage batches ([`storage::BatchEncoder`] or
    /// [`storage::WriteBatch`] bytes), one per batched caller, applied in
    /// order.
    pub batches: Vec<Vec<u8>>,
    /// The leader's limits on creating series when it proposed the entry
    /// (0 = none), so that every replica applies them alike.
    pub max_series: u64,
    /// See [`storage::SeriesLimits::max_series_per_metric`].
    pub max_series_per_metric: u64,
}

impl WriteEntry {
    /// An entry without series limits.
    pub fn unlimited(batches: Vec<Vec<u8>>) -> Self {
        WriteEntry {
            batches,
            ..Default::default()
        }
    }

    /// The series limits to apply the entry under.
    pub fn limits(&self) -> storage::SeriesLimits {
        storage::SeriesLimits {
            max_series: self.max_series,
            max_series_per_metric: self.max_series_per_metric,
        }
    }
}

/// What applying one entry produced.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub enum Response {
    /// Nothing to report (blank, membership or meta entries).
    #[default]
    None,
    /// One outcome per sub-batch of a [`Request::Write`].
    Write(Vec<BatchOutcome>),
}

/// The outcome of one applied sub-batch.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BatchOutcome {
    /// Samples stored.
    pub accepted: u64,
    /// Rejections grouped by reason.
    pub rejected: Vec<Rejection>,
    /// Per series of the sub-batch, its id (`None` if it was rejected).
    pub series_ids: Vec<Option<u64>>,
    /// Indexes of series named by an id the shard does not know (the
    /// proposer retries them with labels).
    pub unknown_ids: Vec<usize>,
}

/// Samples rejected for one reason.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    /// Why.
    #[serde(with = "reason_name")]
    pub reason: storage::RejectReason,
    /// How many samples.
    pub count: u64,
    /// One affected series, for the error message.
    pub example: String,
}

impl From<storage::Rejection> for Rejection {
    fn from(r: storage::Rejection) -> Self {
        Rejection {
            reason: r.reason,
            count: r.count,
            example: r.example,
        }
    }
}

/// A [`storage::RejectReason`] as its stable name.
mod reason_name {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};
    use storage::RejectReason;

    pub fn serialize<S: Serializer>(r: &RejectReason, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(r.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<RejectReason, D::Error> {
        let name = String::deserialize(d)?;
        RejectReason::from_name(&name)
            .ok_or_else(|| D::Error::custom(format!("unknown rejection reason {name:?}")))
    }
}

/// Merges `more` into `into`, adding counts of equal reasons.
pub fn merge_rejections(into: &mut Vec<Rejection>, more: impl IntoIterator<Item = Rejection>) {
    for r in more {
        match into.iter_mut().find(|x| x.reason == r.reason) {
            Some(x) => x.count += r.count,
            None => into.push(r),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_ids_round_trip() {
        assert_eq!(group_shard(META_GROUP), None);
        for s in [0u32, 1, 31, 1000] {
            assert_eq!(group_shard(shard_group(s)), Some(s));
        }
    }

    #[test]
    fn rejections_merge_by_reason() {
        use storage::RejectReason::{OutOfOrder as A, TooOld as B};
        let r = |reason, count| Rejection {
            reason,
            count,
            example: "x".into(),
        };
        let mut v = vec![r(A, 1)];
        merge_rejections(&mut v, [r(A, 2), r(B, 3)]);
        assert_eq!(v, vec![r(A, 3), r(B, 3)]);
    }
}
