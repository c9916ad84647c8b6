//! [`TsdbStats`]: a shard's cardinality figures for `/api/v1/status/tsdb`,
//! read off the inverted index (no walk of the series).

use std::collections::BTreeMap;

use model::METRIC_NAME;

use super::Shard;

/// Series counts per label pair of one or more shards. Shards hold disjoint
/// series, so the figures of several shards [`TsdbStats::merge`] by adding.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TsdbStats {
    /// Number of series.
    pub num_series: u64,
    /// Label name -> value -> number of series with that pair.
    pub pairs: BTreeMap<String, BTreeMap<String, u64>>,
}

impl Shard {
    /// The cardinality figures of this shard (every series in the head,
    /// whatever its time range, as Prometheus' head statistics).
    pub fn tsdb_stats(&self) -> TsdbStats {
        let mut w = self.index.write();
        w.compact();
        let idx = parking_lot::RwLockWriteGuard::downgrade(w);
        let mut out = TsdbStats {
            num_series: idx.series_count() as u64,
            pairs: BTreeMap::new(),
        };
        for (n, e) in &idx.names {
            out.pairs.insert(
                n.to_string(),
                e.values
                    .iter()
                    .map(|(v, ids)| (v.to_string(), ids.len() as u64))
                    .collect(),
            );
        }
        out
    }
}

/// The `limit` largest `(key, count)`, by count descending then key.
fn top(mut v: Vec<(String, u64)>, limit: usize) -> Vec<(String, u64)> {
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.truncate(limit);
    v
}

impl TsdbStats {
    /// Adds the figures of shards holding other series.
    pub fn merge(&mut self, other: TsdbStats) {
        self.num_series += other.num_series;
        for (n, vals) in other.pairs {
            let mine = self.pairs.entry(n).or_default();
            for (v, c) in vals {
                *mine.entry(v).or_default() += c;
            }
        }
    }

    /// Number of distinct label pairs.
    pub fn num_label_pairs(&self) -> u64 {
        self.pairs.values().map(|v| v.len() as u64).sum()
    }

    /// The `limit` metric names with the most series.
    pub fn series_count_by_metric_name(&self, limit: usize) -> Vec<(String, u64)> {
        let v = self.pairs.get(METRIC_NAME).map_or_else(Vec::new, |vals| {
            vals.iter().map(|(v, c)| (v.clone(), *c)).collect()
        });
        top(v, limit)
    }

    /// The `limit` label names with the most distinct values.
    pub fn label_value_count_by_label_name(&self, limit: usize) -> Vec<(String, u64)> {
        top(
            self.pairs
                .iter()
                .map(|(n, vals)| (n.clone(), vals.len() as u64))
                .collect(),
            limit,
        )
    }

    /// The `limit` label names whose distinct values take the most bytes.
    pub fn memory_in_bytes_by_label_name(&self, limit: usize) -> Vec<(String, u64)> {
        top(
            self.pairs
                .iter()
                .map(|(n, vals)| (n.clone(), vals.keys().map(|v| v.len() as u64).sum()))
                .collect(),
            limit,
        )
    }

    /// The `limit` label pairs (`name=value`) with the most series.
    pub fn series_count_by_label_value_pair(&self, limit: usize) -> Vec<(String, u64)> {
        let mut best: Vec<(&str, &str, u64)> = self
            .pairs
            .iter()
            .flat_map(|(n, vals)| vals.iter().map(move |(v, c)| (n.as_str(), v.as_str(), *c)))
            .collect();
        best.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| (a.0, a.1).cmp(&(b.0, b.1))));
        best.truncate(limit);
        best.into_iter()
            .map(|(n, v, c)| (format!("{n}={v}"), c))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(num: u64, p: &[(&str, &str, u64)]) -> TsdbStats {
        let mut s = TsdbStats {
            num_series: num,
            ..Default::default()
        };
        for (n, v, c) in p {
            s.pairs
                .entry(n.to_string())
                .or_default()
                .insert(v.to_string(), *c);
        }
        s
    }

    #[test]
    fn merge_adds_and_tops_order_by_count_then_name() {
        let mut a = stats(
            3,
            &[("__name__", "up", 2), ("__name__", "x", 1), ("job", "a", 3)],
        );
        a.merge(stats(
            2,
            &[
                ("__name__", "up", 1),
                ("__name__", "y", 1),
                ("job", "bb", 2),
            ],
        ));
        assert_eq!(a.num_series, 5);
        assert_eq!(a.num_label_pairs(), 5);
        let s = |v: &[(&str, u64)]| {
            v.iter()
                .map(|(a, b)| (a.to_string(), *b))
                .collect::<Vec<_>>()
        };
        assert_eq!(a.series_count_by_metric_name(2), s(&[("up", 3), ("x", 1)]));
        assert_eq!(
            a.label_value_count_by_label_name(10),
            s(&[("__name__", 3), ("job", 2)])
        );
        assert_eq!(
            a.memory_in_bytes_by_label_name(10),
            s(&[("__name__", 4), ("job", 3)])
        );
        assert_eq!(
            a.series_count_by_label_value_pair(3),
            s(&[("__name__=up", 3), ("job=a", 3), ("job=bb", 2)])
        );
    }
}
