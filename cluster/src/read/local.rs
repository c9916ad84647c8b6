//! [`LocalQueryable`]: the [`Queryable`] of the query engine over a set of
//! local shards, merging their results.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use model::{Labels, Matcher, SeriesData};
use query::model::{Queryable, QueryableError, SelectResult};
use storage::{Shard, StorageError};

/// A [`Queryable`] over local shards (merges their results).
pub struct LocalQueryable {
    shards: Vec<Arc<Shard>>,
}

impl LocalQueryable {
    /// Queries these shards.
    pub fn new(shards: Vec<Arc<Shard>>) -> Self {
        LocalQueryable { shards }
    }

    fn each<T>(
        &self,
        f: impl Fn(&Shard) -> Result<Vec<T>, StorageError>,
    ) -> Result<Vec<T>, QueryableError> {
        let mut all = Vec::new();
        for s in &self.shards {
            all.extend(f(s.as_ref()).map_err(queryable_err)?);
        }
        Ok(all)
    }
}

/// A storage error as the query engine sees it.
fn queryable_err(e: StorageError) -> QueryableError {
    match e.kind() {
        storage::ErrorKind::BadData => QueryableError::BadData(e.to_string()),
        storage::ErrorKind::Limited => QueryableError::Limit(e.to_string()),
        _ => QueryableError::Internal(e.to_string()),
    }
}

/// Sorts series by labels and merges entries with equal labels (a series
/// lives in one shard, but a caller may pass overlapping shard sets).
fn merge_series(mut v: Vec<SeriesData>) -> Vec<SeriesData> {
    v.sort_by(|a, b| a.labels.cmp(&b.labels));
    let mut out: Vec<SeriesData> = Vec::with_capacity(v.len());
    for s in v {
        match out.last_mut() {
            Some(last) if last.labels == s.labels => {
                last.samples.extend(s.samples);
                last.samples.sort_by_key(|x| x.t);
                last.samples.dedup_by_key(|x| x.t);
            }
            _ => out.push(s),
        }
    }
    out
}

#[async_trait]
impl Queryable for LocalQueryable {
    async fn select(
        &self,
        matchers: &[Matcher],
        min_t: i64,
        max_t: i64,
    ) -> Result<SelectResult, QueryableError> {
        let series = self.each(|s| s.select(matchers, min_t, max_t))?;
        Ok(SelectResult {
            series: merge_series(series),
            warnings: Vec::new(),
        })
    }

    async fn label_names(
        &self,
        matchers: &[Matcher],
        min_t: i64,
        max_t: i64,
    ) -> Result<Vec<String>, QueryableError> {
        let v = self.each(|s| s.label_names(matchers, min_t, max_t))?;
        Ok(v.into_iter().collect::<BTreeSet<_>>().into_iter().collect())
    }

    async fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        min_t: i64,
        max_t: i64,
    ) -> Result<Vec<String>, QueryableError> {
        let v = self.each(|s| s.label_values(name, matchers, min_t, max_t))?;
        Ok(v.into_iter().collect::<BTreeSet<_>>().into_iter().collect())
    }

    async fn series(
        &self,
        matchers: &[Matcher],
        min_t: i64,
        max_t: i64,
    ) -> Result<Vec<Labels>, QueryableError> {
        let v = self.each(|s| s.series(matchers, min_t, max_t))?;
        Ok(v.into_iter().collect::<BTreeSet<_>>().into_iter().collect())
    }
}
