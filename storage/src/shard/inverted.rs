//! [`InvertedIndex`]: a shard's in-memory inverted index, label name ->
//! value -> postings (the sorted ids of the series carrying that pair), plus
//! the sorted list of every id.
//!
//! Each distinct name and each distinct `(name, value)` pair is stored once,
//! as a key of the maps below; postings are sorted `u64` vectors (ids are
//! assigned in increasing order, so adding a series appends).
//!
//! Maintenance: `Shard::insert_series` adds a series (apply, load, restore:
//! load rebuilds the index from the `series` column family),
//! `Shard::remove_series` removes one (retention). Removal is
//! lazy: the id is only remembered, and the postings it appears in are
//! compacted once the removed ids exceed an eighth of the series (or when
//! exact counts are asked for), so retention removing many series costs one
//! pass over the touched postings instead of one shift per series and pair.
//! Until then a posting may hold ids of removed series; readers check every
//! id against the series map anyway (for its time range), which drops them.
//!
//! Time spans: beside `all`, each series has a [`Span`], bounds on its time
//! range that a reader can check without the series map: its first sample
//! time is at most `first` and its newest at least `last`. A series' first
//! sample time only goes down and its newest only up, so a span stays
//! true once set; it is set when a series gets its first sample, brought
//! up to date for the series changed since the last checkpoint, at each
//! checkpoint, and set to [`Span::UNKNOWN`] (which covers nothing) when a
//! series is removed. A span covering a read's range proves the series
//! overlaps it; any other series is looked up in the series map.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::labels;
use model::METRIC_NAME;

/// Removed ids below this count are never compacted eagerly.
const MIN_COMPACT: usize = 4096;

/// Bounds on a series' time range (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Span {
    /// At least the series' first sample time.
    pub(crate) first: i64,
    /// At most the series' newest sample time.
    pub(crate) last: i64,
}

impl Span {
    /// Nothing known (no samples, or removed): covers no range (a known
    /// span has `first <= last`).
    pub(crate) const UNKNOWN: Span = Span {
        first: i64::MAX,
        last: i64::MIN,
    };

    /// Whether the series surely overlaps `[min_t, max_t]`.
    #[inline]
    fn covers(self, min_t: i64, max_t: i64) -> bool {
        self.first <= self.last && self.first <= max_t && self.last >= min_t
    }
}

/// The values of one label name.
#[derive(Default)]
pub(crate) struct NameEntry {
    /// value -> sorted ids.
    pub(crate) values: BTreeMap<Box<str>, Vec<u64>>,
    /// Sum of the lengths of `values`' postings.
    pub(crate) postings: usize,
}

/// See the module doc.
#[derive(Default)]
pub(crate) struct InvertedIndex {
    pub(crate) names: BTreeMap<Box<str>, NameEntry>,
    /// Every id in the index, sorted.
    pub(crate) all: Vec<u64>,
    /// The span of each id of `all`, at the same position.
    spans: Vec<Span>,
    /// Removed series not compacted out of the postings yet, with labels.
    removed: Vec<(u64, Box<[u8]>)>,
    /// Series per metric name, exact at all times (kept eagerly, unlike
    /// the postings), for the per-metric series limit.
    per_metric: HashMap<Box<str>, u64>,
}

/// Inserts `id` into a sorted, unique vector (appends in the usual case).
fn insert_sorted(v: &mut Vec<u64>, id: u64) -> bool {
    match v.last() {
        None => v.push(id),
        Some(&last) if last < id => v.push(id),
        Some(_) => match v.binary_search(&id) {
            Ok(_) => return false,
            Err(pos) => v.insert(pos, id),
        },
    }
    true
}

impl InvertedIndex {
    /// Adds a series with this label encoding (callers validated it: apply
    /// encodes validated labels, load decodes before adding) and span.
    pub(crate) fn add(&mut self, id: u64, enc: &[u8], span: Span) {
        match self.all.last() {
            Some(&last) if last >= id => match self.all.binary_search(&id) {
                Ok(_) => return,
                Err(pos) => {
                    self.all.insert(pos, id);
                    self.spans.insert(pos, span);
                }
            },
            _ => {
                self.all.push(id);
                self.spans.push(span);
            }
        }
        for (n, v) in labels::pairs(enc).map_while(Result::ok) {
            if n == METRIC_NAME {
                match self.per_metric.get_mut(v) {
                    Some(c) => *c += 1,
                    None => {
                        self.per_metric.insert(v.into(), 1);
                    }
                }
            }
            let entry = match self.names.get_mut(n) {
                Some(e) => e,
                None => self.names.entry(n.into()).or_default(),
            };
            let list = match entry.values.get_mut(v) {
                Some(l) => l,
                None => entry.values.entry(v.into()).or_default(),
            };
            if insert_sorted(list, id) {
                entry.postings += 1;
            }
        }
    }

    /// Removes a series (lazily, see the module doc).
    pub(crate) fn remove(&mut self, id: u64, enc: Box<[u8]>) {
        let name = labels::pairs(&enc)
            .map_while(Result::ok)
            .find(|(n, _)| *n == METRIC_NAME);
        if let Some((_, v)) = name {
            if let Some(c) = self.per_metric.get_mut(v) {
                *c = c.saturating_sub(1);
                if *c == 0 {
                    self.per_metric.remove(v);
                }
            }
        }
        self.set_span(id, Span::UNKNOWN);
        self.removed.push((id, enc));
        if self.removed.len() >= MIN_COMPACT.max(self.all.len() / 8) {
            self.compact();
        }
    }

    /// Takes the removed ids out of every posting they are in.
    pub(crate) fn compact(&mut self) {
        if self.removed.is_empty() {
            return;
        }
        let removed = std::mem::take(&mut self.removed);
        let mut dead: Vec<u64> = removed.iter().map(|(id, _)| *id).collect();
        dead.sort_unstable();
        dead.dedup();
        let is_dead = |id: &u64| dead.binary_search(id).is_ok();
        let mut touched: BTreeSet<(&str, &str)> = BTreeSet::new();
        for (_, enc) in &removed {
            // A malformed encoding cannot have been added (`add` checks it).
            touched.extend(labels::pairs(enc).map_while(Result::ok));
        }
        for (n, v) in touched {
            let Some(entry) = self.names.get_mut(n) else {
                continue;
            };
            if let Some(list) = entry.values.get_mut(v) {
                let before = list.len();
                list.retain(|id| !is_dead(id));
                entry.postings -= before - list.len();
                if list.is_empty() {
                    entry.values.remove(v);
                }
            }
            if entry.values.is_empty() {
                self.names.remove(n);
            }
        }
        let mut kept = 0;
        for i in 0..self.all.len() {
            if !is_dead(&self.all[i]) {
                self.all[kept] = self.all[i];
                self.spans[kept] = self.spans[i];
                kept += 1;
            }
        }
        self.all.truncate(kept);
        self.spans.truncate(kept);
    }

    /// The position of `id` in `all` (ids are mostly dense: tried first
    /// at its offset from the first id).
    #[inline]
    fn pos(&self, id: u64) -> Option<usize> {
        let first = *self.all.first()?;
        let guess = usize::try_from(id.checked_sub(first)?).ok()?;
        if self.all.get(guess) == Some(&id) {
            return Some(guess);
        }
        self.all.binary_search(&id).ok()
    }

    /// Sets the span of series `id`, if in the index.
    pub(crate) fn set_span(&mut self, id: u64, span: Span) {
        if let Some(p) = self.pos(id) {
            self.spans[p] = span;
        }
    }

    /// Whether series `id`'s span proves it overlaps `[min_t, max_t]`
    /// (`false` says nothing: look the series up).
    #[inline]
    pub(crate) fn surely_overlaps(&self, id: u64, min_t: i64, max_t: i64) -> bool {
        self.pos(id)
            .is_some_and(|p| self.spans[p].covers(min_t, max_t))
    }

    /// The postings of `name`, if any series has it.
    pub(crate) fn name(&self, name: &str) -> Option<&NameEntry> {
        self.names.get(name)
    }

    /// Number of series (exact after [`InvertedIndex::compact`]).
    pub(crate) fn series_count(&self) -> usize {
        self.all.len()
    }

    /// Number of series, exact at all times.
    pub(crate) fn live_series(&self) -> u64 {
        self.all.len().saturating_sub(self.removed.len()) as u64
    }

    /// Number of series named `metric`, exact at all times.
    pub(crate) fn series_of_metric(&self, metric: &str) -> u64 {
        self.per_metric.get(metric).copied().unwrap_or(0)
    }
}

/// Intersection of two sorted, unique lists.
pub(crate) fn intersect(a: &[u64], b: &[u64]) -> Vec<u64> {
    let (small, large) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    let mut out = Vec::with_capacity(small.len());
    // Galloping when the sizes differ a lot (one instance of many).
    if small.len() * 32 < large.len() {
        let mut rest = large;
        for &x in small {
            match rest.binary_search(&x) {
                Ok(i) => {
                    out.push(x);
                    rest = &rest[i + 1..];
                }
                Err(i) => rest = &rest[i..],
            }
        }
        return out;
    }
    let (mut i, mut j) = (0, 0);
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

/// `a` without the ids of `b` (both sorted, unique).
pub(crate) fn difference(a: &[u64], b: &[u64]) -> Vec<u64> {
    let mut out = Vec::with_capacity(a.len());
    let mut j = 0;
    for &x in a {
        while j < b.len() && b[j] < x {
            j += 1;
        }
        if j < b.len() && b[j] == x {
            continue;
        }
        out.push(x);
    }
    out
}

/// Sorted, unique union of several sorted lists.
pub(crate) fn union<'a>(lists: impl IntoIterator<Item = &'a Vec<u64>>) -> Vec<u64> {
    let lists: Vec<&Vec<u64>> = lists.into_iter().collect();
    match lists.as_slice() {
        [] => Vec::new(),
        [one] => one.to_vec(),
        _ => {
            let mut out: Vec<u64> = Vec::with_capacity(lists.iter().map(|l| l.len()).sum());
            for l in lists {
                out.extend_from_slice(l);
            }
            out.sort_unstable();
            out.dedup();
            out
        }
    }
}

/// The literal values of a regex that is only an alternation of literals
/// (`a|b|c`, optionally in one group, with `\`-escaped punctuation), as
/// Grafana writes multi-value variables; `None` for any other regex.
pub(crate) fn literal_alternatives(re: &str) -> Option<Vec<String>> {
    let inner = match re.strip_prefix('(').and_then(|r| r.strip_suffix(')')) {
        Some(i) if !i.contains(['(', ')']) => i,
        _ => re,
    };
    let mut out = vec![String::new()];
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '|' => out.push(String::new()),
            '\\' => match chars.next() {
                Some(e) if e.is_ascii_punctuation() => out.last_mut()?.push(e),
                _ => return None,
            },
            '.' | '+' | '*' | '?' | '(' | ')' | '[' | ']' | '{' | '}' | '^' | '$' => return None,
            c => out.last_mut()?.push(c),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_operations() {
        let f = |a: &[u64], b: &[u64], i: &[u64], d: &[u64]| {
            assert_eq!(intersect(a, b), i, "{a:?} & {b:?}");
            assert_eq!(intersect(b, a), i, "{b:?} & {a:?}");
            assert_eq!(difference(a, b), d, "{a:?} - {b:?}");
        };
        f(&[], &[1], &[], &[]);
        f(&[1, 2, 3], &[], &[], &[1, 2, 3]);
        f(&[1, 3, 5, 7], &[3, 4, 5], &[3, 5], &[1, 7]);
        let big: Vec<u64> = (0..1000).collect();
        f(&[5, 999, 1000], &big, &[5, 999], &[1000]);
        assert_eq!(union([&vec![3, 5], &vec![1, 5, 9]]), vec![1, 3, 5, 9]);
    }

    #[test]
    fn spans_follow_their_ids() {
        let span = |t: i64| Span { first: t, last: t };
        let mut idx = InvertedIndex::default();
        let enc = labels::encode(&model::Labels::from_pairs([("a", "b")]));
        for id in [3u64, 4, 5, 7, 9, 1] {
            idx.add(id, &enc, span(id as i64 * 10));
        }
        assert_eq!(idx.all, [1, 3, 4, 5, 7, 9]);
        for id in [1u64, 3, 4, 5, 7, 9] {
            let t = id as i64 * 10;
            assert!(idx.surely_overlaps(id, t, t), "{id}");
            assert!(!idx.surely_overlaps(id, t + 1, t + 5), "{id}");
        }
        assert!(!idx.surely_overlaps(2, i64::MIN, i64::MAX));
        assert!(!idx.surely_overlaps(10, i64::MIN, i64::MAX));
        idx.remove(4, enc.clone());
        assert!(!idx.surely_overlaps(4, i64::MIN, i64::MAX));
        idx.compact();
        assert_eq!(idx.all, [1, 3, 5, 7, 9]);
        for id in [1u64, 3, 5, 7, 9] {
            let t = id as i64 * 10;
            assert!(idx.surely_overlaps(id, t, t), "{id}");
        }
        idx.set_span(7, Span::UNKNOWN);
        assert!(!idx.surely_overlaps(7, i64::MIN, i64::MAX));
        assert!(idx.surely_overlaps(9, 90, 90));
    }

    #[test]
    fn literal_alternatives_table() {
        let f = |re: &str, want: Option<&[&str]>| {
            let got = literal_alternatives(re);
            let want = want.map(|w| w.iter().map(|s| s.to_string()).collect::<Vec<_>>());
            assert_eq!(got, want, "{re}");
        };
        f("a|b", Some(&["a", "b"]));
        f("(a|b)", Some(&["a", "b"]));
        f("host\\-1:9100|x", Some(&["host-1:9100", "x"]));
        f("a\\.b", Some(&["a.b"]));
        f("", Some(&[""]));
        f("a|", Some(&["a", ""]));
        f("a.*", None);
        f("(a)|(b)", None);
        f("[ab]", None);
        f("\\d", None);
        f("a+", None);
    }
}
