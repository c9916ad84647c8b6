//! Resolving label matchers to series ids on the shard's in-memory
//! [`InvertedIndex`], with Prometheus semantics: regexes are anchored, a
//! missing label has the value `""` (so `l=""` selects series without `l`).
//!
//! A matcher that does not match `""` selects the union of the postings of
//! the values it accepts; one that matches `""` removes the postings of the
//! values it rejects. Matchers run cheapest first; once the candidates are
//! few compared with what a matcher would read from the index, the rest are
//! checked on the candidates' labels instead.

use model::{MatchOp, Matcher};

use super::inverted::{self, InvertedIndex};
use super::Shard;
use crate::{labels, StorageError};

/// Checking one candidate's labels costs about this many posting entries.
const LABEL_CHECK_COST: usize = 16;

impl Shard {
    /// Sorted ids of the series matching every matcher, with Prometheus
    /// semantics. Needs at least one matcher that does not match `""`. The
    /// ids may include series removed since (callers look each id up).
    pub(crate) fn resolve(
        &self,
        idx: &InvertedIndex,
        matchers: &[Matcher],
    ) -> Result<Vec<u64>, StorageError> {
        if matchers.iter().all(Matcher::matches_empty) {
            return Err(StorageError::BadSelector(format!(
                "{{{}}}: a selector needs at least one matcher that does not match the empty string",
                matchers.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
            )));
        }
        let mut order: Vec<(usize, &Matcher)> =
            matchers.iter().map(|m| (cost(idx, m), m)).collect();
        // Selecting matchers before excluding ones, each group cheapest first.
        order.sort_by_key(|(c, m)| (m.matches_empty(), *c));
        let mut ids: Option<Vec<u64>> = None;
        let mut deferred: Vec<&Matcher> = Vec::new();
        for (c, m) in order {
            match &ids {
                Some(cur) if cur.len().saturating_mul(LABEL_CHECK_COST) < c => {
                    deferred.push(m);
                    continue;
                }
                Some(cur) if cur.is_empty() => return Ok(Vec::new()),
                _ => {}
            }
            ids = Some(match ids {
                None => selected(idx, m),
                Some(cur) if m.matches_empty() => inverted::difference(&cur, &rejected(idx, m)),
                Some(cur) => inverted::intersect(&cur, &selected(idx, m)),
            });
        }
        let mut ids = ids.unwrap_or_default();
        if !deferred.is_empty() {
            ids.retain(|&id| {
                self.stripe(id).read().series.get(&id).is_some_and(|s| {
                    deferred
                        .iter()
                        .all(|m| m.matches(labels::get(&s.labels, &m.name)))
                })
            });
        }
        Ok(ids)
    }
}

/// About how many posting entries (and values) resolving `m` reads.
fn cost(idx: &InvertedIndex, m: &Matcher) -> usize {
    let Some(e) = idx.name(&m.name) else {
        return 0;
    };
    match m.op {
        MatchOp::Equal | MatchOp::NotEqual => e.values.get(m.value.as_str()).map_or(0, Vec::len),
        MatchOp::RegexMatch | MatchOp::RegexNoMatch => e.postings + 4 * e.values.len(),
    }
}

/// Ids of the series that `m` (which must not match `""`) accepts.
fn selected(idx: &InvertedIndex, m: &Matcher) -> Vec<u64> {
    let Some(e) = idx.name(&m.name) else {
        return Vec::new();
    };
    match m.op {
        MatchOp::Equal => e.values.get(m.value.as_str()).cloned().unwrap_or_default(),
        MatchOp::RegexMatch => match inverted::literal_alternatives(&m.value) {
            Some(lits) => inverted::union(lits.iter().filter_map(|v| e.values.get(v.as_str()))),
            None => inverted::union(
                e.values
                    .iter()
                    .filter(|(v, _)| m.matches(v))
                    .map(|(_, ids)| ids),
            ),
        },
        // `!=` and `!~` that do not match "" accept every present value but
        // some; rare (`l!~".*"`-like), so the general path.
        MatchOp::NotEqual | MatchOp::RegexNoMatch => inverted::union(
            e.values
                .iter()
                .filter(|(v, _)| m.matches(v))
                .map(|(_, ids)| ids),
        ),
    }
}

/// Ids of the series that `m` (which matches `""`) rejects: those with a
/// value of `m.name` that `m` does not accept.
fn rejected(idx: &InvertedIndex, m: &Matcher) -> Vec<u64> {
    let Some(e) = idx.name(&m.name) else {
        return Vec::new();
    };
    match m.op {
        MatchOp::NotEqual => e.values.get(m.value.as_str()).cloned().unwrap_or_default(),
        _ => inverted::union(
            e.values
                .iter()
                .filter(|(v, _)| !m.matches(v))
                .map(|(_, ids)| ids),
        ),
    }
}
