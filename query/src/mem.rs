//! [`MemQueryable`]: an in-memory series store implementing
//! [`Queryable`], for tests, the PromQL test-file runner and benchmarks.

use std::collections::BTreeMap;

use async_trait::async_trait;

use crate::model::{Labels, Matcher, Queryable, QueryableError, Sample, SelectResult, SeriesData};

/// Series kept in memory, sorted by labels, each with time-sorted samples.
#[derive(Clone, Debug, Default)]
pub struct MemQueryable {
    series: BTreeMap<Labels, Vec<Sample>>,
}

impl MemQueryable {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one sample; a sample at an existing timestamp replaces it.
    pub fn add(&mut self, labels: Labels, t: i64, v: f64) {
        insert(self.series.entry(labels).or_default(), t, v);
    }

    /// Adds many samples of one series (one map lookup for all of them).
    pub fn add_series(&mut self, labels: Labels, samples: impl IntoIterator<Item = Sample>) {
        let s = self.series.entry(labels).or_default();
        for p in samples {
            insert(s, p.t, p.v);
        }
    }

    /// Drops everything.
    pub fn clear(&mut self) {
        self.series.clear();
    }

    /// Number of series.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    /// True when no series is stored.
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    fn matching<'a>(
        &'a self,
        matchers: &'a [Matcher],
    ) -> impl Iterator<Item = (&'a Labels, &'a Vec<Sample>)> + 'a {
        self.series
            .iter()
            .filter(move |(l, _)| matchers.iter().all(|m| m.matches_labels(l)))
    }
}

/// Inserts a sample keeping time order; an existing timestamp is replaced.
fn insert(s: &mut Vec<Sample>, t: i64, v: f64) {
    match s.last() {
        Some(last) if last.t < t => s.push(Sample { t, v }),
        None => s.push(Sample { t, v }),
        _ => match s.binary_search_by_key(&t, |p| p.t) {
            Ok(i) => s[i].v = v,
            Err(i) => s.insert(i, Sample { t, v }),
        },
    }
}

fn in_range(s: &[Sample], min_t: i64, max_t: i64) -> &[Sample] {
    let lo = s.partition_point(|p| p.t < min_t);
    let hi = s.partition_point(|p| p.t <= max_t);
    if lo >= hi {
        &[]
    } else {
        &s[lo..hi]
    }
}

#[async_trait]
impl Queryable for MemQueryable {
    async fn select(
        &self,
        matchers: &[Matcher],
        min_t: i64,
        max_t: i64,
    ) -> Result<SelectResult, QueryableError> {
        let series = self
            .matching(matchers)
            .filter_map(|(l, s)| {
                let r = in_range(s, min_t, max_t);
                (!r.is_empty()).then(|| SeriesData {
                    labels: l.clone(),
                    samples: r.to_vec(),
                })
            })
            .collect();
        Ok(SelectResult {
            series,
            warnings: Vec::new(),
        })
    }

    async fn label_names(
        &self,
        matchers: &[Matcher],
        min_t: i64,
        max_t: i64,
    ) -> Result<Vec<String>, QueryableError> {
        let mut names: Vec<String> = self
            .matching(matchers)
            .filter(|(_, s)| !in_range(s, min_t, max_t).is_empty())
            .flat_map(|(l, _)| l.iter().map(|x| x.name.clone()).collect::<Vec<_>>())
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    async fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        min_t: i64,
        max_t: i64,
    ) -> Result<Vec<String>, QueryableError> {
        let mut vals: Vec<String> = self
            .matching(matchers)
            .filter(|(_, s)| !in_range(s, min_t, max_t).is_empty())
            .filter_map(|(l, _)| l.get(name).map(str::to_string))
            .collect();
        vals.sort();
        vals.dedup();
        Ok(vals)
    }

    async fn series(
        &self,
        matchers: &[Matcher],
        min_t: i64,
        max_t: i64,
    ) -> Result<Vec<Labels>, QueryableError> {
        Ok(self
            .matching(matchers)
            .filter(|(_, s)| !in_range(s, min_t, max_t).is_empty())
            .map(|(l, _)| l.clone())
            .collect())
    }
}
