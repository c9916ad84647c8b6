//! Applying a [`WriteBatch`]: series lookup/creation (ids in apply order),
//! per-sample append rules, and retention of the index.

use std::sync::atomic::Ordering;

use model::Sample;

use super::{ApplyState, Shard};
use crate::head::{Appended, MemSeries};
use crate::outcome::Rejections;
use crate::{
    labels, ApplyOutcome, BatchView, RawSeriesRef, RejectReason, SeriesLimits, SeriesRef,
    SeriesSamples, StorageError, WriteBatch,
};

impl Shard {
    /// Applies one Raft entry. Only memory changes; [`Shard::checkpoint`]
    /// makes it durable. An entry with `log_index <= applied_index()` was
    /// applied before (replay after restart) and is a no-op.
    ///
    /// Deterministic: every replica applying the same entries in the same
    /// order assigns the same series ids and stores the same samples.
    pub fn apply(&self, log_index: u64, batch: &WriteBatch) -> Result<ApplyOutcome, StorageError> {
        let mut st = self.state.lock();
        self.check_dropped()?;
        if log_index <= self.applied.load(Ordering::Acquire) {
            let series_ids = match batch {
                WriteBatch::Samples(v) => v
                    .iter()
                    .map(|s| match &s.series {
                        SeriesRef::Labels(l) => self.lookup(l),
                        SeriesRef::Id(id) => self.current_id(RawSeriesRef::Id(*id)),
                    })
                    .collect(),
                WriteBatch::Retention { .. } => Vec::new(),
            };
            return Ok(ApplyOutcome {
                series_ids,
                already_applied: true,
                ..Default::default()
            });
        }
        let out = match batch {
            WriteBatch::Samples(series) => self.apply_samples(&mut st, series),
            WriteBatch::Retention { cutoff_ms } => {
                self.apply_retention(&mut st, *cutoff_ms);
                ApplyOutcome::default()
            }
        };
        self.applied.store(log_index, Ordering::Release);
        Ok(out)
    }

    /// Applies one encoded batch ([`crate::BatchEncoder`] or
    /// [`WriteBatch::encode`] bytes) without building a [`WriteBatch`]:
    /// series are read one at a time and their samples decoded into one
    /// reused buffer. Same rules and outcome as [`Shard::apply`]; bytes that
    /// do not decode are an error and change nothing (the batch is checked
    /// whole before anything is applied).
    pub fn apply_encoded(
        &self,
        log_index: u64,
        bytes: &[u8],
    ) -> Result<ApplyOutcome, StorageError> {
        self.apply_limited(log_index, bytes, &SeriesLimits::NONE)
    }

    /// [`Shard::apply_encoded`] under limits on creating series: a new
    /// series beyond `limits` is rejected whole ([`RejectReason::SeriesLimit`],
    /// [`RejectReason::MetricSeriesLimit`]); series that exist take samples
    /// as always. The counts are the shard's own, which every replica holds
    /// alike at the same log index, so with the limits taken from the entry
    /// every replica decides alike.
    pub fn apply_limited(
        &self,
        log_index: u64,
        bytes: &[u8],
        limits: &SeriesLimits,
    ) -> Result<ApplyOutcome, StorageError> {
        BatchView::check(bytes)?;
        let mut rd = match BatchView::open(bytes)? {
            BatchView::Retention { cutoff_ms } => {
                return self.apply(log_index, &WriteBatch::Retention { cutoff_ms })
            }
            BatchView::Samples(rd) => rd,
        };
        let mut st = self.state.lock();
        self.check_dropped()?;
        let replay = log_index <= self.applied.load(Ordering::Acquire);
        let mut out = ApplyOutcome {
            already_applied: replay,
            ..Default::default()
        };
        let mut rej = Rejections::default();
        let mut samples = Vec::new();
        while let Some(r) = rd.next_raw(&mut samples)? {
            let id = if replay {
                self.current_id(r)
            } else {
                self.apply_series(&mut st, r, &samples, limits, &mut rej, &mut out.accepted)
            };
            if id.is_none() && matches!(r, RawSeriesRef::Id(_)) {
                out.unknown_ids.push(out.series_ids.len());
            }
            out.series_ids.push(id);
        }
        if !replay {
            out.rejected = rej.finish();
            self.applied.store(log_index, Ordering::Release);
        }
        Ok(out)
    }

    /// The id of a series as named in a batch, if it exists (no change).
    fn current_id(&self, r: RawSeriesRef) -> Option<u64> {
        match r {
            RawSeriesRef::Labels(enc) => self.find(enc, labels::hash(enc)),
            RawSeriesRef::Id(id) => self
                .stripe(id)
                .read()
                .series
                .contains_key(&id)
                .then_some(id),
        }
    }

    fn apply_samples(&self, st: &mut ApplyState, series: &[SeriesSamples]) -> ApplyOutcome {
        let mut rej = Rejections::default();
        let mut out = ApplyOutcome::default();
        for s in series {
            let enc;
            let r = match &s.series {
                SeriesRef::Labels(l) => {
                    enc = labels::encode(l);
                    RawSeriesRef::Labels(&enc)
                }
                SeriesRef::Id(id) => RawSeriesRef::Id(*id),
            };
            let id = self.apply_series(
                st,
                r,
                &s.samples,
                &SeriesLimits::NONE,
                &mut rej,
                &mut out.accepted,
            );
            if id.is_none() && matches!(s.series, SeriesRef::Id(_)) {
                out.unknown_ids.push(out.series_ids.len());
            }
            out.series_ids.push(id);
        }
        out.rejected = rej.finish();
        out
    }

    /// Finds or creates one series and appends its samples; its id, or
    /// `None` when the whole series was rejected.
    fn apply_series(
        &self,
        st: &mut ApplyState,
        series: RawSeriesRef,
        samples: &[Sample],
        limits: &SeriesLimits,
        rej: &mut Rejections,
        accepted: &mut u64,
    ) -> Option<u64> {
        let n = samples.len() as u64;
        let id = match series {
            RawSeriesRef::Labels(enc) => match self.get_or_create(st, enc, limits) {
                Ok(id) => id,
                Err((reason, why)) => {
                    rej.add(reason, n.max(1), || why);
                    return None;
                }
            },
            RawSeriesRef::Id(id) => id,
        };
        let mut stripe = self.stripe(id).write();
        let Some(m) = stripe.series.get_mut(&id) else {
            rej.add(RejectReason::UnknownSeriesId, n.max(1), || {
                format!(
                    "series id {id} is not in shard {}; resend with labels",
                    self.id
                )
            });
            return None;
        };
        let was_dirty = m.dirty;
        let was_empty = !m.has_samples;
        let window = self.db.opts.out_of_order_window_ms;
        *accepted += append_all(m, samples, window, &mut st.next_chunk_seq, rej);
        if m.dirty && !was_dirty {
            st.dirty.push(id);
        }
        if m.has_samples && st.newest_t < Some(m.last_t) {
            st.newest_t = Some(m.last_t);
        }
        // Its first samples: the index learns its span now (a series' span
        // only moves on at checkpoints), after the stripe lock.
        let first = (was_empty && m.has_samples).then(|| super::span_of(m));
        drop(stripe);
        if let Some(span) = first {
            self.index.write().set_span(id, span);
        }
        Some(id)
    }

    /// The id of the series with label encoding `enc`, created if new, valid
    /// and `limits` allow it. A known series costs one hash and one lookup.
    fn get_or_create(
        &self,
        st: &mut ApplyState,
        enc: &[u8],
        limits: &SeriesLimits,
    ) -> Result<u64, (RejectReason, String)> {
        let h = labels::hash(enc);
        if let Some(id) = self.find(enc, h) {
            return Ok(id);
        }
        labels::validate_encoded(enc).map_err(|e| (RejectReason::InvalidLabels, e.to_string()))?;
        if !limits.is_none() {
            self.check_series_limits(enc, limits)?;
        }
        let id = st.next_series_id;
        st.next_series_id += 1;
        self.insert_series(id, MemSeries::new(enc.into()));
        self.new_series.write().push(id);
        Ok(id)
    }

    /// Refuses a new series (label encoding `enc`) when the shard is at a
    /// limit.
    fn check_series_limits(
        &self,
        enc: &[u8],
        limits: &SeriesLimits,
    ) -> Result<(), (RejectReason, String)> {
        let l = || labels::describe(enc);
        let index = self.index.read();
        let have = index.live_series();
        if limits.max_series > 0 && have >= limits.max_series {
            return Err((
                RejectReason::SeriesLimit,
                format!(
                    "series {}: shard {} holds {have} series, its limit is {} (its share of --max-series)",
                    l(), self.id, limits.max_series
                ),
            ));
        }
        if limits.max_series_per_metric > 0 {
            let metric = labels::get(enc, model::METRIC_NAME);
            let have = index.series_of_metric(metric);
            if have >= limits.max_series_per_metric {
                return Err((
                    RejectReason::MetricSeriesLimit,
                    format!(
                        "series {}: shard {} holds {have} series of metric {metric:?}, its limit is {} (its share of --max-series-per-metric)",
                        l(), self.id, limits.max_series_per_metric
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Removes series whose newest sample is older than `cutoff` (and series
    /// that never got a sample) from the head and the index.
    fn apply_retention(&self, st: &mut ApplyState, cutoff: i64) {
        let mut gone = Vec::new();
        for stripe in self.stripes.iter() {
            let stripe = stripe.read();
            gone.extend(
                stripe
                    .series
                    .iter()
                    .filter(|(_, m)| !m.has_samples || m.last_t < cutoff)
                    .map(|(&id, _)| id),
            );
        }
        gone.sort_unstable();
        if gone.is_empty() {
            return;
        }
        for &id in &gone {
            if let Some(m) = self.remove_series(id) {
                st.removed.push((id, m.labels));
            }
        }
        self.new_series
            .write()
            .retain(|id| gone.binary_search(id).is_err());
    }
}

/// Appends samples to one series; returns how many were accepted.
fn append_all(
    m: &mut MemSeries,
    samples: &[Sample],
    window: i64,
    next_seq: &mut u64,
    rej: &mut Rejections,
) -> u64 {
    let mut accepted = 0;
    for s in samples {
        match m.append(s.t, s.v, window, next_seq) {
            Appended::Stored | Appended::Duplicate => accepted += 1,
            Appended::Rejected(reason, why) => rej.add(reason, 1, || {
                let labels =
                    labels::decode(&m.labels).map_or_else(|e| e.to_string(), |l| l.to_string());
                format!("series {labels}: {why}")
            }),
        }
    }
    accepted
}
