//! Label validation on ingest, and the canonical label encoding
//! (`model::labels`, kept in memory and in the "series" column family) with
//! storage's error type.

pub use model::labels::valid_label_name;
pub(crate) use model::labels::{encode, get, hash};
use model::{Labels, METRIC_NAME};

use crate::StorageError;

/// Checks a label set for ingestion: names match `[a-zA-Z_][a-zA-Z0-9_]*`,
/// no `__`-prefixed name except `__name__`, names sorted and unique, no empty
/// values, and a non-empty metric name (`__name__`), as Prometheus requires on
/// ingest. Values are UTF-8 by construction (`String`).
pub fn validate_labels(l: &Labels) -> Result<(), StorageError> {
    check_pairs(|| l.iter().map(|x| (x.name.as_str(), x.value.as_str()))).map_err(|reason| {
        StorageError::InvalidLabels {
            labels: l.to_string(),
            reason,
        }
    })
}

/// [`validate_labels`] on a label encoding, without decoding it (the
/// message decodes it only when the labels are refused).
pub(crate) fn validate_encoded(enc: &[u8]) -> Result<(), StorageError> {
    if let Some(Err(e)) = pairs(enc).find(Result::is_err) {
        return Err(e);
    }
    check_pairs(|| pairs(enc).map_while(Result::ok)).map_err(|reason| StorageError::InvalidLabels {
        labels: describe(enc),
        reason,
    })
}

/// An encoding as `Labels` displays (`{a="1", b="2"}`), whatever its
/// order or values (for messages about labels that are refused).
pub(crate) fn describe(enc: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::from("{");
    for (i, (n, v)) in pairs(enc).map_while(Result::ok).enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "{n}={v:?}");
    }
    out.push('}');
    out
}

/// The rules of [`validate_labels`] over the pairs `pairs()` yields; the
/// reason when one is broken (the same first reason for the same labels,
/// whatever their form).
fn check_pairs<'a, I: Iterator<Item = (&'a str, &'a str)>>(
    pairs: impl Fn() -> I,
) -> Result<(), String> {
    if !pairs().any(|(n, v)| n == METRIC_NAME && !v.is_empty()) {
        return Err("missing metric name (__name__ label)".into());
    }
    let mut prev: Option<&str> = None;
    for (name, value) in pairs() {
        if !valid_label_name(name) {
            return Err(format!(
                "invalid label name {name:?}: must match [a-zA-Z_][a-zA-Z0-9_]*"
            ));
        }
        if name.starts_with("__") && name != METRIC_NAME {
            return Err(format!(
                "label name {name:?} is reserved (names starting with __ are internal)"
            ));
        }
        if value.is_empty() {
            return Err(format!("label {name:?} has an empty value"));
        }
        if let Some(p) = prev {
            if p == name {
                return Err(format!("duplicate label name {name:?}"));
            }
            if p > name {
                return Err("labels are not sorted by name".into());
            }
        }
        prev = Some(name);
    }
    Ok(())
}

fn corrupt(e: model::labels::EncodingError) -> StorageError {
    StorageError::Corrupt(e.to_string())
}

/// Iterates the `(name, value)` pairs of an encoding without allocating.
/// Yields `Err` once and stops if the bytes are malformed.
pub(crate) fn pairs(b: &[u8]) -> impl Iterator<Item = Result<(&str, &str), StorageError>> + '_ {
    model::labels::pairs(b).map(|p| p.map_err(corrupt))
}

/// Decodes an encoding into [`Labels`].
pub(crate) fn decode(b: &[u8]) -> Result<Labels, StorageError> {
    model::labels::decode(b).map_err(corrupt)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Labels as given (empty values kept, unlike `Labels::from_pairs`),
    /// sorted by name as `Labels::from_sorted` requires.
    fn l(p: &[(&str, &str)]) -> Labels {
        use model::Label;
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

    /// Arbitrary label sets, including invalid ones: names from a small
    /// alphabet with reserved and bad names, empty values, and pairs in
    /// any order (duplicates and unsorted sets, which only raw encodings
    /// or `from_sorted` misuse can produce).
    fn any_pairs() -> impl proptest::strategy::Strategy<Value = Vec<(String, String)>> {
        use proptest::prelude::*;
        let name = prop_oneof![
            Just("__name__".to_string()),
            Just("__x".to_string()),
            Just("1a".to_string()),
            Just(String::new()),
            "[a-c_][a-c0-9_]{0,3}",
        ];
        let value = prop_oneof![Just(String::new()), "[a-z\u{e9}]{1,4}"];
        proptest::collection::vec((name, value), 0..6)
    }

    proptest::proptest! {
        /// The encoded check (apply's, on the entry's bytes) refuses exactly
        /// what the check on `Labels` refuses, with the same message.
        #[test]
        fn encoded_check_agrees_with_labels_check(pairs in any_pairs()) {
            use model::Label;
            let v: Vec<Label> = pairs.iter().map(|(n, v)| Label::new(n.clone(), v.clone())).collect();
            // Not `from_sorted`: it asserts the order in debug builds.
            let mut enc = Vec::new();
            model::labels::encode_into(
                v.iter().map(|x| (x.name.as_str(), x.value.as_str())),
                v.len(),
                &mut enc,
            );
            let by_enc = validate_encoded(&enc).map_err(|e| e.to_string());
            let reason = check_pairs(|| v.iter().map(|x| (x.name.as_str(), x.value.as_str())));
            match (&by_enc, &reason) {
                (Ok(()), Ok(())) => {}
                (Err(e), Err(r)) => proptest::prop_assert!(e.contains(r.as_str()), "{e} vs {r}"),
                _ => proptest::prop_assert!(false, "{pairs:?}: {by_enc:?} vs {reason:?}"),
            }
            // On canonical sets (what `Labels` holds), `validate_labels` too.
            let canonical = v.windows(2).all(|w| w[0].name < w[1].name);
            if canonical {
                let by_labels = validate_labels(&Labels::from_sorted(v.clone())).map_err(|e| e.to_string());
                proptest::prop_assert_eq!(by_enc, by_labels);
            }
        }
    }
}
