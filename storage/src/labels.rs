//! Label validation and the compact label encoding kept in memory and in the
//! "series" column family.
//!
//! ```text
//! labels = count varint | (name_len varint | name | value_len varint | value)*
//! ```
//! Pairs are in name order with unique names (the canonical order of
//! [`Labels`]), so equal label sets have equal encodings.

use query::model::{Label, Labels, METRIC_NAME};

use crate::varint::{put_u64, Reader};
use crate::StorageError;

/// Checks a label set for ingestion: names match `[a-zA-Z_][a-zA-Z0-9_]*`,
/// no `__`-prefixed name except `__name__`, names sorted and unique, no empty
/// values, and a non-empty metric name (`__name__`), as Prometheus requires on
/// ingest. Values are UTF-8 by construction (`String`).
pub fn validate_labels(l: &Labels) -> Result<(), StorageError> {
    let bad = |reason: String| StorageError::InvalidLabels {
        labels: l.to_string(),
        reason,
    };
    if l.metric_name().is_none_or(str::is_empty) {
        return Err(bad("missing metric name (__name__ label)".into()));
    }
    let mut prev: Option<&str> = None;
    for lab in l.iter() {
        if !valid_label_name(&lab.name) {
            return Err(bad(format!(
                "invalid label name {:?}: must match [a-zA-Z_][a-zA-Z0-9_]*",
                lab.name
            )));
        }
        if lab.name.starts_with("__") && lab.name != METRIC_NAME {
            return Err(bad(format!(
                "label name {:?} is reserved (names starting with __ are internal)",
                lab.name
            )));
        }
        if lab.value.is_empty() {
            return Err(bad(format!("label {:?} has an empty value", lab.name)));
        }
        if let Some(p) = prev {
            if p == lab.name {
                return Err(bad(format!("duplicate label name {:?}", lab.name)));
            }
            if p > lab.name.as_str() {
                return Err(bad("labels are not sorted by name".into()));
            }
        }
        prev = Some(&lab.name);
    }
    Ok(())
}

/// Whether `n` is a valid label name.
pub fn valid_label_name(n: &str) -> bool {
    let mut b = n.bytes();
    matches!(b.next(), Some(c) if c == b'_' || c.is_ascii_alphabetic())
        && b.all(|c| c == b'_' || c.is_ascii_alphanumeric())
}

/// Encodes labels (see the module doc).
pub(crate) fn encode(l: &Labels) -> Box<[u8]> {
    let mut out = Vec::with_capacity(
        1 + l
            .iter()
            .map(|x| 2 + x.name.len() + x.value.len())
            .sum::<usize>(),
    );
    put_u64(&mut out, l.len() as u64);
    for lab in l.iter() {
        put_u64(&mut out, lab.name.len() as u64);
        out.extend_from_slice(lab.name.as_bytes());
        put_u64(&mut out, lab.value.len() as u64);
        out.extend_from_slice(lab.value.as_bytes());
    }
    out.into_boxed_slice()
}

/// Iterates the `(name, value)` pairs of an encoding without allocating.
/// Yields `Err` once and stops if the bytes are malformed.
pub(crate) fn pairs(b: &[u8]) -> impl Iterator<Item = Result<(&str, &str), StorageError>> + '_ {
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
                    return Some(Err(corrupt()));
                }
                return None;
            }
            Some(n) => n,
            None => {
                failed = true;
                return Some(Err(corrupt()));
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
                Some(Err(corrupt()))
            }
        }
    })
}

fn corrupt() -> StorageError {
    StorageError::Corrupt("malformed label encoding".into())
}

/// Decodes an encoding into [`Labels`].
pub(crate) fn decode(b: &[u8]) -> Result<Labels, StorageError> {
    let mut v = Vec::new();
    for p in pairs(b) {
        let (n, val) = p?;
        if v.last().is_some_and(|l: &Label| l.name.as_str() >= n) {
            return Err(StorageError::Corrupt(
                "labels not in canonical order".into(),
            ));
        }
        v.push(Label::new(n, val));
    }
    Ok(Labels::from_sorted(v))
}

/// The value of label `name` in an encoding (`""` when missing or
/// malformed).
pub(crate) fn get<'a>(b: &'a [u8], name: &str) -> &'a str {
    for (n, v) in pairs(b).map_while(Result::ok) {
        if n == name {
            return v;
        }
    }
    ""
}

/// 64-bit hash of a label encoding (xxh3, fixed seed): the key of the
/// labels -> id map.
pub(crate) fn hash(encoded: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(encoded, 0x0051_17E7_BAC4_u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Labels as given (empty values kept, unlike `Labels::from_pairs`),
    /// sorted by name as `Labels::from_sorted` requires.
    fn l(p: &[(&str, &str)]) -> Labels {
        let mut v: Vec<Label> = p.iter().map(|(n, v)| Label::new(*n, *v)).collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        Labels::from_sorted(v)
    }

    #[test]
    fn validation_table() {
        let f = |p: &[(&str, &str)], ok: bool| {
            let r = validate_labels(&l(p));
            assert_eq!(r.is_ok(), ok, "{p:?}: {r:?}");
        };
        f(&[("__name__", "up"), ("job", "a")], true);
        f(&[("__name__", "up")], true);
        f(&[("job", "a")], false); // no metric name
        f(&[("__name__", "up"), ("1x", "a")], false);
        f(&[("__name__", "up"), ("a-b", "a")], false);
        f(&[("__name__", "up"), ("", "a")], false);
        f(&[("__foo", "x"), ("__name__", "up")], false);
        f(&[("__name__", "up"), ("job", "")], false);
        f(&[("__name__", "up"), ("job", "ü ✓ \n")], true);
        // duplicates / unsorted can only come from from_sorted misuse; build raw
        let dup = Labels::from_pairs([("__name__", "up")]);
        assert!(validate_labels(&dup).is_ok());
    }

    #[test]
    fn encoding_round_trips() {
        let x = l(&[("__name__", "up"), ("job", "api"), ("zone", "é")]);
        let e = encode(&x);
        assert_eq!(decode(&e).unwrap(), x);
        assert_eq!(get(&e, "job"), "api");
        assert_eq!(get(&e, "nope"), "");
        assert!(decode(&e[..e.len() - 1]).is_err());
        assert!(decode(&[]).is_err());
        assert_eq!(decode(&[0]).unwrap(), Labels::empty());
    }
}
