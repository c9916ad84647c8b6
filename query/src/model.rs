//! The data model shared by the query engine and every store it reads:
//! [`Labels`], [`Matcher`], [`Sample`], [`SeriesData`] and the [`Queryable`]
//! trait that storage and the cluster querier implement.

use std::fmt;

use async_trait::async_trait;
use regex::Regex;

/// The label that holds a series' metric name.
pub const METRIC_NAME: &str = "__name__";

/// The Prometheus stale marker: a NaN with this exact bit pattern means
/// "the series ended here".
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// True when `v` is the Prometheus stale marker (compared bit-exactly).
#[inline]
pub fn is_stale_nan(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// One `name="value"` pair.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Label {
    /// Label name.
    pub name: String,
    /// Label value.
    pub value: String,
}

impl Label {
    /// A label from anything string-like.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Label {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// A label set, kept sorted by name with unique names. This is a series'
/// identity.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Labels(Vec<Label>);

impl Labels {
    /// An empty label set.
    pub fn empty() -> Self {
        Labels(Vec::new())
    }

    /// Builds a label set from pairs, sorting by name. Later duplicates of a
    /// name replace earlier ones; empty values are dropped (Prometheus treats
    /// `l=""` as "no label l").
    pub fn from_pairs<N: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (N, V)>,
    ) -> Self {
        let mut v: Vec<Label> = pairs
            .into_iter()
            .map(|(n, v)| Label::new(n, v))
            .filter(|l| !l.value.is_empty())
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v.dedup_by(|later, earlier| {
            if later.name == earlier.name {
                std::mem::swap(&mut earlier.value, &mut later.value);
                true
            } else {
                false
            }
        });
        Labels(v)
    }

    /// Wraps a vector that the caller guarantees is sorted by name with unique
    /// names (checked in debug builds).
    pub fn from_sorted(v: Vec<Label>) -> Self {
        debug_assert!(v.windows(2).all(|w| w[0].name < w[1].name));
        Labels(v)
    }

    /// The value of `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|l| l.name.as_str().cmp(name))
            .ok()
            .map(|i| self.0[i].value.as_str())
    }

    /// The metric name (`__name__`), if present.
    pub fn metric_name(&self) -> Option<&str> {
        self.get(METRIC_NAME)
    }

    /// Sets `name` to `value`; an empty value removes the label.
    pub fn set(&mut self, name: &str, value: &str) {
        match self.0.binary_search_by(|l| l.name.as_str().cmp(name)) {
            Ok(i) if value.is_empty() => {
                self.0.remove(i);
            }
            Ok(i) => self.0[i].value = value.to_string(),
            Err(_) if value.is_empty() => {}
            Err(i) => self.0.insert(i, Label::new(name, value)),
        }
    }

    /// Removes `name` if present.
    pub fn remove(&mut self, name: &str) {
        if let Ok(i) = self.0.binary_search_by(|l| l.name.as_str().cmp(name)) {
            self.0.remove(i);
        }
    }

    /// The labels in name order.
    pub fn iter(&self) -> std::slice::Iter<'_, Label> {
        self.0.iter()
    }

    /// Number of labels.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no labels.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The labels as a slice.
    pub fn as_slice(&self) -> &[Label] {
        &self.0
    }

    /// Consumes the set, returning the sorted vector.
    pub fn into_vec(self) -> Vec<Label> {
        self.0
    }
}

impl<'a> IntoIterator for &'a Labels {
    type Item = &'a Label;
    type IntoIter = std::slice::Iter<'a, Label>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl fmt::Display for Labels {
    /// Prometheus' notation: `{a="1", b="2"}`, values escaped as Go's `%q`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, l) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}={:?}", l.name, l.value)?;
        }
        f.write_str("}")
    }
}

/// The four matcher operators of a PromQL selector.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatchOp {
    /// `=`
    Equal,
    /// `!=`
    NotEqual,
    /// `=~` (fully anchored regex)
    RegexMatch,
    /// `!~` (fully anchored regex)
    RegexNoMatch,
}

impl MatchOp {
    /// The operator as written in PromQL.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::RegexMatch => "=~",
            MatchOp::RegexNoMatch => "!~",
        }
    }
}

/// A label matcher, `name op "value"`, with Prometheus semantics: regexes are
/// fully anchored, and a missing label has the value `""`.
#[derive(Clone, Debug)]
pub struct Matcher {
    /// Label name.
    pub name: String,
    /// Operator.
    pub op: MatchOp,
    /// Literal value or regex source.
    pub value: String,
    re: Option<Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

impl Eq for Matcher {}

impl std::hash::Hash for Matcher {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
        self.op.hash(state);
        self.value.hash(state);
    }
}

impl Matcher {
    /// Builds a matcher, compiling the regex (anchored as `^(?s:value)$`) for
    /// `=~` and `!~`.
    pub fn new(
        op: MatchOp,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<Self, regex::Error> {
        let value = value.into();
        let re = match op {
            MatchOp::RegexMatch | MatchOp::RegexNoMatch => {
                Some(Regex::new(&format!("^(?s:{value})$"))?)
            }
            _ => None,
        };
        Ok(Matcher {
            name: name.into(),
            op,
            value,
            re,
        })
    }

    /// An `=` matcher (never fails).
    pub fn equal(name: impl Into<String>, value: impl Into<String>) -> Self {
        Matcher {
            name: name.into(),
            op: MatchOp::Equal,
            value: value.into(),
            re: None,
        }
    }

    /// Whether a label value (`""` when the label is missing) matches.
    #[inline]
    pub fn matches(&self, v: &str) -> bool {
        match self.op {
            MatchOp::Equal => self.value == v,
            MatchOp::NotEqual => self.value != v,
            MatchOp::RegexMatch => self.re.as_ref().is_some_and(|r| r.is_match(v)),
            MatchOp::RegexNoMatch => !self.re.as_ref().is_some_and(|r| r.is_match(v)),
        }
    }

    /// Whether the matcher accepts a series lacking the label.
    pub fn matches_empty(&self) -> bool {
        self.matches("")
    }

    /// Whether a whole label set matches.
    pub fn matches_labels(&self, labels: &Labels) -> bool {
        self.matches(labels.get(&self.name).unwrap_or(""))
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{:?}", self.name, self.op.as_str(), self.value)
    }
}

/// One float sample: timestamp in milliseconds since the epoch and value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    /// Milliseconds since the Unix epoch.
    pub t: i64,
    /// The value (stale markers included, bit-exact).
    pub v: f64,
}

/// A series and its samples in a time range, sorted by time, unique
/// timestamps.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesData {
    /// The series' labels.
    pub labels: Labels,
    /// Samples in increasing time order.
    pub samples: Vec<Sample>,
}

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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matcher_semantics() {
        let f = |op, val: &str, input: &str, want: bool| {
            let m = Matcher::new(op, "l", val).unwrap();
            assert_eq!(m.matches(input), want, "{m} on {input:?}");
        };
        f(MatchOp::Equal, "a", "a", true);
        f(MatchOp::Equal, "", "", true);
        f(MatchOp::NotEqual, "", "x", true);
        f(MatchOp::NotEqual, "", "", false);
        f(MatchOp::RegexMatch, "a.*", "abc", true);
        f(MatchOp::RegexMatch, "b", "abc", false); // anchored
        f(MatchOp::RegexMatch, "a|b", "b", true);
        f(MatchOp::RegexMatch, ".*", "", true);
        f(MatchOp::RegexMatch, "a.c", "a\nc", true); // dot matches newline
        f(MatchOp::RegexNoMatch, "a.*", "abc", false);
        f(MatchOp::RegexNoMatch, "a.*", "", true);
    }

    #[test]
    fn labels_sorted_and_set() {
        let mut l = Labels::from_pairs([("b", "2"), ("a", "1"), ("c", "")]);
        assert_eq!(l.to_string(), r#"{a="1", b="2"}"#);
        l.set("c", "3");
        l.set("a", "");
        assert_eq!(l.to_string(), r#"{b="2", c="3"}"#);
        assert_eq!(l.get("c"), Some("3"));
    }
}
