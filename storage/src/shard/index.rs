//! Resolving label matchers to series ids: postings prefix scans in RocksDB
//! plus the series created since the last checkpoint, checked against the
//! in-memory labels (which also drops series removed by retention).

use query::model::{MatchOp, Matcher};

use super::Shard;
use crate::keys::{self, CF_POSTINGS};
use crate::{labels, StorageError};

impl Shard {
    /// Sorted ids of the series matching every matcher, with Prometheus
    /// semantics. Needs at least one matcher that does not match `""`.
    pub(crate) fn resolve(&self, matchers: &[Matcher]) -> Result<Vec<u64>, StorageError> {
        let mut positive: Vec<&Matcher> = matchers.iter().filter(|m| !m.matches_empty()).collect();
        if positive.is_empty() {
            return Err(StorageError::BadSelector(format!(
                "{{{}}}: a selector needs at least one matcher that does not match the empty string",
                matchers.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
            )));
        }
        // Cheapest first: equality scans one value's postings.
        positive.sort_by_key(|m| u8::from(m.op != MatchOp::Equal));
        let mut ids: Option<Vec<u64>> = None;
        for m in positive {
            let got = self.postings_for(m)?;
            ids = Some(match ids {
                None => got,
                Some(prev) => intersect(&prev, &got),
            });
            if ids.as_ref().is_some_and(Vec::is_empty) {
                break;
            }
        }
        let mut ids = ids.unwrap_or_default();
        ids.extend(self.new_series.read().iter().copied());
        ids.sort_unstable();
        ids.dedup();
        ids.retain(|&id| {
            let stripe = self.stripe(id).read();
            stripe.series.get(&id).is_some_and(|m| {
                matchers
                    .iter()
                    .all(|x| x.matches(labels::get(&m.labels, &x.name)))
            })
        });
        Ok(ids)
    }

    /// Sorted, unique ids of the postings of values of `m.name` that `m`
    /// accepts (`m` must not match `""`).
    fn postings_for(&self, m: &Matcher) -> Result<Vec<u64>, StorageError> {
        let db = &self.db;
        let prefix = match m.op {
            MatchOp::Equal => keys::postings_value_prefix(self.id, &m.name, &m.value),
            _ => keys::postings_name_prefix(self.id, &m.name),
        };
        let mut ro = rocksdb::ReadOptions::default();
        if let Some(end) = keys::prefix_end(&prefix) {
            ro.set_iterate_upper_bound(end);
        }
        let mut it = db.rocks.raw_iterator_cf_opt(db.cf(CF_POSTINGS), ro);
        it.seek(&prefix);
        let mut out = Vec::new();
        // Regexes are evaluated once per distinct value.
        let mut last_value: Vec<u8> = Vec::new();
        let mut last_ok = false;
        while let Some(k) = it.key() {
            if !k.starts_with(&prefix) {
                break;
            }
            let (_, value, id) = keys::parse_postings_key(k)
                .ok_or_else(|| StorageError::Corrupt("malformed postings key".into()))?;
            if m.op == MatchOp::Equal {
                // the prefix includes the length-prefixed value: exact match
                out.push(id);
            } else {
                if value != last_value.as_slice() || last_value.is_empty() {
                    last_value.clear();
                    last_value.extend_from_slice(value);
                    last_ok = std::str::from_utf8(value).is_ok_and(|v| m.matches(v));
                }
                if last_ok {
                    out.push(id);
                }
            }
            it.next();
        }
        it.status()?;
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }
}

/// Intersection of two sorted, unique lists.
fn intersect(a: &[u64], b: &[u64]) -> Vec<u64> {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::with_capacity(a.len().min(b.len()));
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}
