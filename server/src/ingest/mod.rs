//! Ingestion: one module per protocol ([`remote_write`]) feeding one batch
//! builder, [`shards::ShardBatches`], which looks each series up in the
//! [`cache::IngestCache`], validates unknown ones against the [`Limits`]
//! once, and encodes one batch per shard; per-series and per-sample
//! refusals go into the client's error message. [`BatchBuilder`] is the
//! simpler builder for series that arrive with parsed labels (the
//! self-scrape).

pub mod cache;
pub mod remote_write;
pub mod shards;
pub mod wire;

use model::{Label, Labels, Sample};

use crate::config::Limits;

/// One series to write.
#[derive(Clone, Debug, PartialEq)]
pub struct WriteSeries {
    /// Labels, sorted and validated.
    pub labels: Labels,
    /// Samples as received.
    pub samples: Vec<Sample>,
}

/// Why a series or sample was refused: one list from the ingest checks
/// here to the shards' apply.
pub use storage::RejectReason;

/// A series refused by the builder.
#[derive(Clone, Debug, PartialEq)]
pub struct Refused {
    /// Why.
    pub reason: RejectReason,
    /// The message naming the series.
    pub msg: String,
    /// Samples (or histograms) lost with it.
    pub samples: u64,
}

/// Collects validated series of one request.
#[derive(Debug)]
pub struct BatchBuilder<'a> {
    limits: &'a Limits,
    /// Valid series.
    pub series: Vec<WriteSeries>,
    /// Refused series.
    pub refused: Vec<Refused>,
    /// Samples in `series`.
    pub samples: u64,
}

/// A label set as sent, in Prometheus notation (sorted, duplicates shown
/// once).
pub fn series_name(pairs: &[Label]) -> String {
    Labels::from_sorted({
        let mut v = pairs.to_vec();
        v.sort();
        v.dedup_by(|a, b| a.name == b.name);
        v
    })
    .to_string()
}

impl<'a> BatchBuilder<'a> {
    /// An empty builder enforcing `limits`.
    pub fn new(limits: &'a Limits) -> Self {
        BatchBuilder {
            limits,
            series: Vec::new(),
            refused: Vec::new(),
            samples: 0,
        }
    }

    /// Refuses a whole series.
    pub fn refuse(&mut self, reason: RejectReason, msg: String, samples: u64) {
        self.refused.push(Refused {
            reason,
            msg,
            samples,
        });
    }

    /// Validates one series given as raw label pairs and adds it, or records
    /// why it was refused.
    pub fn add(&mut self, pairs: Vec<Label>, samples: Vec<Sample>) {
        let n = samples.len() as u64;
        match check_labels(self.limits, pairs) {
            Ok(labels) => {
                self.samples += n;
                self.series.push(WriteSeries { labels, samples });
            }
            Err((reason, msg)) => self.refuse(reason, msg, n),
        }
    }
}

/// Validates labels as sent against the limits and Prometheus' rules and
/// returns them canonical (sorted, empty values dropped), or why not.
pub fn check_labels(l: &Limits, mut pairs: Vec<Label>) -> Result<Labels, (RejectReason, String)> {
    // Empty values mean "no such label" in Prometheus.
    pairs.retain(|p| !p.value.is_empty());
    if pairs.len() > l.max_labels_per_series {
        return Err((
            RejectReason::TooManyLabels,
            format!(
                "series {} has {} labels, more than --max-labels-per-series={}",
                series_name(&pairs),
                pairs.len(),
                l.max_labels_per_series
            ),
        ));
    }
    for p in &pairs {
        if p.name.len() > l.max_label_name_length {
            return Err((
                RejectReason::LabelTooLong,
                format!(
                    "series {}: label name {:?} is longer than --max-label-name-length={}",
                    series_name(&pairs),
                    p.name,
                    l.max_label_name_length
                ),
            ));
        }
        if p.value.len() > l.max_label_value_length {
            return Err((
                    RejectReason::LabelTooLong,
                    format!(
                        "series {}: value of label {:?} is {} bytes, longer than --max-label-value-length={}",
                        series_name(&pairs),
                        p.name,
                        p.value.len(),
                        l.max_label_value_length
                    ),
                ));
        }
    }
    pairs.sort();
    if let Some(w) = pairs.windows(2).find(|w| w[0].name == w[1].name) {
        let name = w[0].name.clone();
        return Err((
            RejectReason::InvalidLabels,
            format!(
                "series {}: duplicate label name {name:?}",
                series_name(&pairs)
            ),
        ));
    }
    let labels = Labels::from_sorted(pairs);
    storage::validate_labels(&labels).map_err(|e| (RejectReason::InvalidLabels, e.to_string()))?;
    Ok(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lab(pairs: &[(&str, &str)]) -> Vec<Label> {
        pairs.iter().map(|(n, v)| Label::new(*n, *v)).collect()
    }

    #[test]
    fn validation_table() {
        let limits = Limits {
            max_labels_per_series: 3,
            max_label_name_length: 8,
            max_label_value_length: 5,
            ..Limits::default()
        };
        let f = |pairs: &[(&str, &str)], want: Option<RejectReason>| {
            let mut b = BatchBuilder::new(&limits);
            b.add(lab(pairs), vec![Sample { t: 1, v: 1.0 }]);
            match want {
                None => assert_eq!(
                    (b.series.len(), b.samples),
                    (1, 1),
                    "{pairs:?}: {:?}",
                    b.refused
                ),
                Some(r) => {
                    assert_eq!(b.refused.len(), 1, "{pairs:?}");
                    assert_eq!(b.refused[0].reason, r, "{:?}", b.refused[0]);
                    assert!(
                        b.refused[0].msg.contains("__name__"),
                        "{}",
                        b.refused[0].msg
                    );
                }
            }
        };
        f(&[("__name__", "up"), ("job", "a")], None);
        f(&[("job", "a"), ("__name__", "up")], None); // unsorted is fine
        f(&[("__name__", "up"), ("job", "")], None); // empty value dropped
        f(
            &[("__name__", "up"), ("job", "a"), ("job", "b")],
            Some(RejectReason::InvalidLabels),
        );
        f(
            &[("__name__", "up"), ("a", "1"), ("b", "1"), ("c", "1")],
            Some(RejectReason::TooManyLabels),
        );
        f(
            &[("__name__", "up"), ("verylongname", "1")],
            Some(RejectReason::LabelTooLong),
        );
        f(
            &[("__name__", "up"), ("a", "toolong")],
            Some(RejectReason::LabelTooLong),
        );
        f(
            &[("__name__", "up"), ("1a", "x")],
            Some(RejectReason::InvalidLabels),
        );
        f(
            &[("__name__", "up"), ("__x", "x")],
            Some(RejectReason::InvalidLabels),
        );
    }

    #[test]
    fn missing_name_is_refused() {
        let limits = Limits::default();
        let mut b = BatchBuilder::new(&limits);
        b.add(lab(&[("job", "a")]), vec![]);
        assert_eq!(b.refused[0].reason, RejectReason::InvalidLabels);
        assert!(
            b.refused[0].msg.contains("metric name"),
            "{}",
            b.refused[0].msg
        );
    }
}
