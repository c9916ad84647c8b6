//! What the query engine reads through: the [`Queryable`] trait that storage
//! and the cluster querier implement, with its result, error and budget
//! types. The data model itself (labels, matchers, samples) lives in the
//! `model` crate and is re-exported here.

use async_trait::async_trait;

pub use ::model::{
    is_stale_nan, Label, Labels, MatchOp, Matcher, Sample, SeriesData, METRIC_NAME, STALE_NAN_BITS,
};

/// What a [`Queryable::select`] returns.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SelectResult {
    /// Matching series, sorted by labels.
    pub series: Vec<SeriesData>,
    /// Non-fatal problems (e.g. a shard missing under partial response).
    pub warnings: Vec<String>,
}

/// Errors a [`Queryable`] reports.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum QueryableError {
    /// A part of the store cannot answer now (the client may retry).
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A limit was hit.
    #[error("{0}")]
    Limit(String),
    /// Bad request (invalid matchers ...).
    #[error("{0}")]
    BadData(String),
    /// Anything else.
    #[error("internal: {0}")]
    Internal(String),
    /// The query's sample budget ([`ReadBudget`]) ran out while loading.
    #[error("query processing would load too many samples into memory in query execution")]
    TooManySamples,
    /// The query's deadline ([`ReadBudget`]) passed while loading.
    #[error("query timed out in query preparation")]
    Timeout,
}

/// What one query may still load: a sample budget shared by all of its
/// selectors (and all shards they fan out to) and its deadline. Clones
/// share the count.
///
/// A [`Queryable`] takes samples from it *as it decodes them*, series by
/// series, and stops with [`QueryableError::TooManySamples`] as soon as
/// the running total passes the limit, so an over-budget query never
/// decodes the rest of its data.
#[derive(Clone, Debug)]
pub struct ReadBudget(std::sync::Arc<BudgetInner>);

#[derive(Debug)]
struct BudgetInner {
    max_samples: u64,
    loaded: std::sync::atomic::AtomicU64,
    deadline: Option<std::time::Instant>,
}

impl ReadBudget {
    /// A budget of `max_samples` samples, until `deadline` (if any).
    pub fn new(max_samples: u64, deadline: Option<std::time::Instant>) -> Self {
        ReadBudget(std::sync::Arc::new(BudgetInner {
            max_samples,
            loaded: std::sync::atomic::AtomicU64::new(0),
            deadline,
        }))
    }

    /// A budget without limits (for callers outside a query).
    pub fn unlimited() -> Self {
        Self::new(u64::MAX, None)
    }

    /// Accounts `n` decoded samples; fails once the total passes the limit
    /// (exactly the limit is allowed) or the deadline has passed.
    pub fn take(&self, n: usize) -> Result<(), QueryableError> {
        use std::sync::atomic::Ordering;
        let n = n as u64;
        let total = self
            .0
            .loaded
            .fetch_add(n, Ordering::Relaxed)
            .saturating_add(n);
        if total > self.0.max_samples {
            return Err(QueryableError::TooManySamples);
        }
        self.check_deadline()
    }

    /// Fails with [`QueryableError::Timeout`] once the deadline has passed.
    pub fn check_deadline(&self) -> Result<(), QueryableError> {
        match self.0.deadline {
            Some(d) if std::time::Instant::now() > d => Err(QueryableError::Timeout),
            _ => Ok(()),
        }
    }

    /// The deadline, if any.
    pub fn deadline(&self) -> Option<std::time::Instant> {
        self.0.deadline
    }

    /// Samples taken so far.
    pub fn loaded(&self) -> u64 {
        self.0.loaded.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// A store the engine reads: storage on one node, or the cluster querier that
/// fans out to every shard.
///
/// Times are inclusive milliseconds. Every method receives at least one
/// matcher that does not match the empty string (the parser enforces it for
/// selectors; API callers must too).
#[async_trait]
pub trait Queryable: Send + Sync {
    /// Series matching all `matchers`, with their samples in `[min_t, max_t]`.
    /// Series with no sample in the range are omitted.
    async fn select(
        &self,
        matchers: &[Matcher],
        min_t: i64,
        max_t: i64,
    ) -> Result<SelectResult, QueryableError>;

    /// [`Queryable::select`] within a query's [`ReadBudget`]. Stores that
    /// decode should override it to take samples from `budget` series by
    /// series while decoding; this default counts each series after
    /// `select` returns.
    async fn select_budgeted(
        &self,
        matchers: &[Matcher],
        min_t: i64,
        max_t: i64,
        budget: &ReadBudget,
    ) -> Result<SelectResult, QueryableError> {
        budget.check_deadline()?;
        let res = self.select(matchers, min_t, max_t).await?;
        for s in &res.series {
            budget.take(s.samples.len())?;
        }
        Ok(res)
    }

    /// Label names of series matching `matchers` with data in the range
    /// (all series when `matchers` is empty), sorted and unique.
    async fn label_names(
        &self,
        matchers: &[Matcher],
        min_t: i64,
        max_t: i64,
    ) -> Result<Vec<String>, QueryableError>;

    /// Values of label `name` across matching series, sorted and unique.
    async fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        min_t: i64,
        max_t: i64,
    ) -> Result<Vec<String>, QueryableError>;

    /// Label sets of matching series with data in the range, sorted.
    async fn series(
        &self,
        matchers: &[Matcher],
        min_t: i64,
        max_t: i64,
    ) -> Result<Vec<Labels>, QueryableError>;

    /// [`Queryable::label_names`] when only the first `keep` are wanted:
    /// the answer starts with them (holds all, when there are fewer) and
    /// may leave out any after them. A store can then stop early and send
    /// less.
    async fn label_names_first(
        &self,
        matchers: &[Matcher],
        min_t: i64,
        max_t: i64,
        keep: usize,
    ) -> Result<Vec<String>, QueryableError> {
        let _ = keep;
        self.label_names(matchers, min_t, max_t).await
    }

    /// [`Queryable::label_values`] when only the first `keep` are wanted
    /// (as [`Queryable::label_names_first`]).
    async fn label_values_first(
        &self,
        name: &str,
        matchers: &[Matcher],
        min_t: i64,
        max_t: i64,
        keep: usize,
    ) -> Result<Vec<String>, QueryableError> {
        let _ = keep;
        self.label_values(name, matchers, min_t, max_t).await
    }

    /// [`Queryable::series`] when only the first `keep` are wanted (as
    /// [`Queryable::label_names_first`]).
    async fn series_first(
        &self,
        matchers: &[Matcher],
        min_t: i64,
        max_t: i64,
        keep: usize,
    ) -> Result<Vec<Labels>, QueryableError> {
        let _ = keep;
        self.series(matchers, min_t, max_t).await
    }
}
