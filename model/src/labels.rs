//! Labels, a series' identity, and their one canonical byte encoding and
//! hash.
//!
//! ```text
//! encoding = count varint | (name_len varint | name | value_len varint | value)*
//! ```
//! Pairs are in name order with unique names (the order [`Labels`] keeps),
//! so equal label sets have equal encodings. This encoding is what storage
//! keeps in memory and in its "series" column family, what a Raft entry
//! carries for a series it names by labels, and what [`hash`] hashes; a
//! series' shard is `hash(encoding) mod shard_count`. The encoding and the
//! seed are fixed: changing either would move series to other shards.

use std::fmt;

use crate::varint::{put_u64, Reader};

/// The label that holds a series' metric name.
pub const METRIC_NAME: &str = "__name__";

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

/// The encoding of `labels` could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EncodingError {
    /// Truncated, not UTF-8, or bytes after the last pair.
    #[error("malformed label encoding")]
    Malformed,
    /// Names not strictly increasing, or an empty value.
    #[error("labels not in canonical order")]
    NotCanonical,
}

/// The seed of [`hash`] ("silverbk" in ASCII).
pub const SEED: u64 = 0x7369_6c76_6572_626b;

/// Appends the encoding of `n` pairs (given in canonical order) to `out`.
pub fn encode_into<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    n: usize,
    out: &mut Vec<u8>,
) {
    put_u64(out, n as u64);
    for (name, value) in pairs {
        put_u64(out, name.len() as u64);
        out.extend_from_slice(name.as_bytes());
        put_u64(out, value.len() as u64);
        out.extend_from_slice(value.as_bytes());
    }
}

/// The encoding of a label set (see the module doc).
pub fn encode(l: &Labels) -> Box<[u8]> {
    let mut out = Vec::with_capacity(
        1 + l
            .iter()
            .map(|x| 2 + x.name.len() + x.value.len())
            .sum::<usize>(),
    );
    encode_into(
        l.iter().map(|x| (x.name.as_str(), x.value.as_str())),
        l.len(),
        &mut out,
    );
    out.into_boxed_slice()
}

/// Iterates the `(name, value)` pairs of an encoding without allocating.
/// Yields `Err` once and stops if the bytes are malformed (order is not
/// checked; [`decode`] checks it).
pub fn pairs(b: &[u8]) -> impl Iterator<Item = Result<(&str, &str), EncodingError>> + '_ {
    let mut r = Reader::new(b);
    let mut left = r.u64();
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed {
            return None;
        }
        let n = match left {
            Some(0) => {
                if !r.is_empty() {
                    failed = true;
                    return Some(Err(EncodingError::Malformed));
                }
                return None;
            }
            Some(n) => n,
            None => {
                failed = true;
                return Some(Err(EncodingError::Malformed));
            }
        };
        left = Some(n - 1);
        let pair = (|| {
            let name = std::str::from_utf8(r.len_prefixed()?).ok()?;
            let value = std::str::from_utf8(r.len_prefixed()?).ok()?;
            Some((name, value))
        })();
        match pair {
            Some(p) => Some(Ok(p)),
            None => {
                failed = true;
                Some(Err(EncodingError::Malformed))
            }
        }
    })
}

/// Decodes an encoding into [`Labels`], checking the canonical order.
pub fn decode(b: &[u8]) -> Result<Labels, EncodingError> {
    let mut v: Vec<Label> = Vec::new();
    for p in pairs(b) {
        let (n, val) = p?;
        if val.is_empty() || v.last().is_some_and(|l| l.name.as_str() >= n) {
            return Err(EncodingError::NotCanonical);
        }
        v.push(Label::new(n, val));
    }
    Ok(Labels::from_sorted(v))
}

/// The value of label `name` in an encoding (`""` when missing or
/// malformed).
pub fn get<'a>(b: &'a [u8], name: &str) -> &'a str {
    for (n, v) in pairs(b).map_while(Result::ok) {
        if n == name {
            return v;
        }
    }
    ""
}

/// The series hash: xxh3-64 of the encoding with [`SEED`]. Storage keys its
/// labels -> id map by it, and [`shard_of_hash`] places series by it.
#[inline]
pub fn hash(encoded: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(encoded, SEED)
}

/// The shard of a series with this [`hash`].
#[inline]
pub fn shard_of_hash(h: u64, shard_count: u32) -> u32 {
    (h % u64::from(shard_count.max(1))) as u32
}

/// The shard of a label set (encodes it; callers holding the encoding use
/// [`hash`] and [`shard_of_hash`]).
pub fn shard_of(labels: &Labels, shard_count: u32) -> u32 {
    shard_of_hash(hash(&encode(labels)), shard_count)
}

/// Whether `n` is a valid label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn valid_label_name(n: &str) -> bool {
    let mut b = n.bytes();
    matches!(b.next(), Some(c) if c == b'_' || c.is_ascii_alphabetic())
        && b.all(|c| c == b'_' || c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_sorted_and_set() {
        let mut l = Labels::from_pairs([("b", "2"), ("a", "1"), ("c", "")]);
        assert_eq!(l.to_string(), r#"{a="1", b="2"}"#);
        l.set("c", "3");
        l.set("a", "");
        assert_eq!(l.to_string(), r#"{b="2", c="3"}"#);
        assert_eq!(l.get("c"), Some("3"));
    }

    #[test]
    fn encoding_round_trips() {
        let x = Labels::from_pairs([("__name__", "up"), ("job", "api"), ("zone", "é")]);
        let e = encode(&x);
        assert_eq!(decode(&e).unwrap(), x);
        assert_eq!(get(&e, "job"), "api");
        assert_eq!(get(&e, "nope"), "");
        assert_eq!(decode(&e[..e.len() - 1]), Err(EncodingError::Malformed));
        assert_eq!(decode(&[]), Err(EncodingError::Malformed));
        assert_eq!(decode(&[0]).unwrap(), Labels::empty());
        // names out of order, and an empty value
        let mut bad = Vec::new();
        encode_into([("b", "1"), ("a", "2")], 2, &mut bad);
        assert_eq!(decode(&bad), Err(EncodingError::NotCanonical));
        bad.clear();
        encode_into([("a", "")], 1, &mut bad);
        assert_eq!(decode(&bad), Err(EncodingError::NotCanonical));
    }

    #[test]
    fn hash_and_shard_are_stable() {
        // Fixed forever: a change here moves every series to another shard.
        let l = Labels::from_pairs([("__name__", "up"), ("job", "api")]);
        let h = hash(&encode(&l));
        assert_eq!(h, GOLDEN_HASH);
        assert_eq!(shard_of(&l, 32), (GOLDEN_HASH % 32) as u32);
        // names and values are delimited by lengths
        let a = Labels::from_pairs([("ab", "c")]);
        let b = Labels::from_pairs([("a", "bc")]);
        assert_ne!(hash(&encode(&a)), hash(&encode(&b)));
        assert_eq!(shard_of(&a, 0), 0);
    }

    /// xxh3-64 of `{__name__="up", job="api"}`'s encoding with [`SEED`],
    /// computed with Python's `xxhash` package.
    const GOLDEN_HASH: u64 = 0xb760_9470_b49b_aa58;

    #[test]
    fn label_names() {
        for ok in ["a", "_", "__name__", "a1_B"] {
            assert!(valid_label_name(ok), "{ok}");
        }
        for bad in ["", "1a", "a-b", "é"] {
            assert!(!valid_label_name(bad), "{bad}");
        }
    }
}
