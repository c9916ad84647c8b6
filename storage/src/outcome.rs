//! What [`Shard::apply`](crate::Shard::apply) reports back: accepted counts
//! and per-reason rejections, as Prometheus reports partial write failures.

use std::fmt;

/// Why samples (or a whole series) were not stored: the one list of
/// reasons, from the ingest side's checks to the shard's apply, carried
/// typed between nodes and mapped to an HTTP status in one place (the
/// server's remote-write answer).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectReason {
    /// Older than the series' newest sample and outside the out-of-order
    /// window (the window is 0).
    OutOfOrder,
    /// Older than the out-of-order window, or the retention, allows.
    TooOld,
    /// Same timestamp as a stored sample with a different value.
    Duplicate,
    /// The series' labels are invalid (every sample of it is rejected).
    InvalidLabels,
    /// The batch named a series id this shard does not know (the sender
    /// retries with labels).
    UnknownSeriesId,
    /// A label name or value is longer than allowed.
    LabelTooLong,
    /// More labels than allowed.
    TooManyLabels,
    /// Native histograms are not supported yet.
    NativeHistogram,
    /// A sample later than now + `--max-future`.
    TooFarInFuture,
    /// A new series beyond the shard's share of `--max-series`.
    SeriesLimit,
    /// A new series of a metric beyond the shard's share of
    /// `--max-series-per-metric`.
    MetricSeriesLimit,
    /// The bytes of a sub-batch did not decode (every replica refuses
    /// them alike).
    InvalidBatch,
}

impl RejectReason {
    /// Every reason, in order.
    pub const ALL: [RejectReason; 12] = [
        RejectReason::OutOfOrder,
        RejectReason::TooOld,
        RejectReason::Duplicate,
        RejectReason::InvalidLabels,
        RejectReason::UnknownSeriesId,
        RejectReason::LabelTooLong,
        RejectReason::TooManyLabels,
        RejectReason::NativeHistogram,
        RejectReason::TooFarInFuture,
        RejectReason::SeriesLimit,
        RejectReason::MetricSeriesLimit,
        RejectReason::InvalidBatch,
    ];

    /// A stable snake_case name: the `reason` label of
    /// `silverback_ingest_rejected_samples_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::OutOfOrder => "out_of_order",
            RejectReason::TooOld => "too_old",
            RejectReason::Duplicate => "duplicate",
            RejectReason::InvalidLabels => "invalid_labels",
            RejectReason::UnknownSeriesId => "unknown_series_id",
            RejectReason::LabelTooLong => "label_too_long",
            RejectReason::TooManyLabels => "too_many_labels",
            RejectReason::NativeHistogram => "native_histogram",
            RejectReason::TooFarInFuture => "too_far_in_future",
            RejectReason::SeriesLimit => "series_limit",
            RejectReason::MetricSeriesLimit => "metric_series_limit",
            RejectReason::InvalidBatch => "invalid_batch",
        }
    }

    /// The reason named `name` by [`RejectReason::as_str`].
    pub fn from_name(name: &str) -> Option<RejectReason> {
        RejectReason::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

impl fmt::Display for RejectReason {
    /// Prometheus' wording where it has one (`storage.ErrOutOfOrderSample`
    /// etc.).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RejectReason::OutOfOrder => "out of order sample",
            RejectReason::TooOld => "too old sample",
            RejectReason::Duplicate => "duplicate sample for timestamp",
            RejectReason::InvalidLabels => "invalid labels",
            RejectReason::UnknownSeriesId => "unknown series id",
            RejectReason::LabelTooLong => "label name or value too long",
            RejectReason::TooManyLabels => "too many labels",
            RejectReason::NativeHistogram => "native histograms are not supported",
            RejectReason::TooFarInFuture => "sample timestamp too far in the future",
            RejectReason::SeriesLimit => "series limit reached",
            RejectReason::MetricSeriesLimit => "per-metric series limit reached",
            RejectReason::InvalidBatch => "invalid batch",
        })
    }
}

/// Limits on creating series, enforced where series are created (a
/// shard's apply). They travel inside the Raft entry, stamped by the
/// leader that proposed it, so every replica decides alike, on replay too.
/// 0 means no limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeriesLimits {
    /// Most series in the shard.
    pub max_series: u64,
    /// Most series of one metric name in the shard.
    pub max_series_per_metric: u64,
}

impl SeriesLimits {
    /// No limits.
    pub const NONE: SeriesLimits = SeriesLimits {
        max_series: 0,
        max_series_per_metric: 0,
    };

    /// True when neither limit is set.
    pub fn is_none(&self) -> bool {
        *self == SeriesLimits::NONE
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
