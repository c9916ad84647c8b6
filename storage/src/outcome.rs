//! What [`Shard::apply`](crate::Shard::apply) reports back: accepted counts
//! and per-reason rejections, as Prometheus reports partial write failures.

use std::fmt;

/// Why samples (or a whole series) were not stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectReason {
    /// Older than the series' newest sample and outside the out-of-order
    /// window (the window is 0).
    OutOfOrder,
    /// Older than the out-of-order window allows.
    TooOld,
    /// Same timestamp as a stored sample with a different value.
    Duplicate,
    /// The series' labels are invalid (every sample of it is rejected).
    InvalidLabels,
    /// The batch named a series id this shard does not know (the proposer
    /// retries with labels).
    UnknownSeriesId,
}

impl RejectReason {
    /// The matching [`ErrorKind`](crate::ErrorKind).
    pub fn kind(self) -> crate::ErrorKind {
        match self {
            RejectReason::OutOfOrder | RejectReason::Duplicate => crate::ErrorKind::OutOfOrder,
            RejectReason::TooOld => crate::ErrorKind::TooOld,
            RejectReason::InvalidLabels | RejectReason::UnknownSeriesId => {
                crate::ErrorKind::BadData
            }
        }
    }
}

impl fmt::Display for RejectReason {
    /// Prometheus' wording (`storage.ErrOutOfOrderSample` etc.).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RejectReason::OutOfOrder => "out of order sample",
            RejectReason::TooOld => "too old sample",
            RejectReason::Duplicate => "duplicate sample for timestamp",
            RejectReason::InvalidLabels => "invalid labels",
            RejectReason::UnknownSeriesId => "unknown series id",
        })
    }
}

/// Samples rejected for one reason in one apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// The reason.
    pub reason: RejectReason,
    /// How many samples.
    pub count: u64,
    /// The first case, e.g. `out of order sample: series {…}: newest …`.
    pub example: String,
}

/// The result of applying one batch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApplyOutcome {
    /// Samples stored, identical duplicates (no-ops) included.
    pub accepted: u64,
    /// Rejected samples by reason, sorted by reason.
    pub rejected: Vec<Rejection>,
    /// Per `SeriesSamples` entry of the batch: the series id, `None` if the
    /// series was rejected (invalid labels, unknown id).
    pub series_ids: Vec<Option<u64>>,
    /// Positions (in `series_ids`) of series named by an id this shard does
    /// not know: the sender resends them with labels.
    pub unknown_ids: Vec<usize>,
    /// True when the entry's log index was already applied (replay after a
    /// restart): nothing changed. `series_ids` still holds the current ids
    /// of series named by labels.
    pub already_applied: bool,
}

impl ApplyOutcome {
    /// Total rejected samples.
    pub fn rejected_count(&self) -> u64 {
        self.rejected.iter().map(|r| r.count).sum()
    }

    /// One-line summary of the rejections (for a 400 answer), empty if none.
    pub fn rejection_message(&self) -> String {
        self.rejected
            .iter()
            .map(|r| format!("{} ({} samples), e.g. {}", r.reason, r.count, r.example))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Collects rejections during one apply.
#[derive(Default)]
pub(crate) struct Rejections(Vec<Rejection>);

impl Rejections {
    pub(crate) fn add(&mut self, reason: RejectReason, n: u64, example: impl FnOnce() -> String) {
        if n == 0 {
            return;
        }
        match self.0.iter_mut().find(|r| r.reason == reason) {
            Some(r) => r.count += n,
            None => self.0.push(Rejection {
                reason,
                count: n,
                example: format!("{reason}: {}", example()),
            }),
        }
    }

    pub(crate) fn finish(mut self) -> Vec<Rejection> {
        self.0.sort_by_key(|r| r.reason);
        self.0
    }
}
