//! A conformance suite for [`Queryable`] implementations: load
//! [`dataset`] into a store, then [`check`] it. It pins the contract the
//! engine relies on (matcher semantics, inclusive time bounds, sorted
//! results, series without samples in range omitted, stale markers kept
//! bit-exactly), so every store (`MemQueryable`, storage, the cluster
//! querier) behaves the same under the evaluator.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use query::{conformance, mem::MemQueryable};
//! let mut m = MemQueryable::new();
//! for (labels, samples) in conformance::dataset() {
//!     m.add_series(labels, samples);
//! }
//! conformance::check(&m).await.unwrap();
//! # });
//! ```

use crate::model::{is_stale_nan, Labels, MatchOp, Matcher, Queryable, Sample, STALE_NAN_BITS};

/// The series every store under test must hold: three series of metric `a`
/// and one of `b`, samples every 10 s from t=0 to t=90 s, one stale marker.
pub fn dataset() -> Vec<(Labels, Vec<Sample>)> {
    let s = |name: &str, job: &str, inst: &str| {
        let mut pairs = vec![("__name__", name.to_string()), ("job", job.to_string())];
        if !inst.is_empty() {
            pairs.push(("instance", inst.to_string()));
        }
        Labels::from_pairs(pairs)
    };
    let points = |f: &dyn Fn(i64) -> f64| -> Vec<Sample> {
        (0..10)
            .map(|i| Sample {
                t: i * 10_000,
                v: f(i),
            })
            .collect()
    };
    vec![
        (s("a", "api", "1"), points(&|i| i as f64)),
        (s("a", "api", "2"), points(&|i| 2.0 * i as f64)),
        (
            s("a", "db", ""),
            points(&|i| {
                if i == 5 {
                    f64::from_bits(STALE_NAN_BITS)
                } else {
                    -(i as f64)
                }
            }),
        ),
        (s("b", "api", "1"), vec![Sample { t: 90_000, v: 1.5 }]),
    ]
}

fn m(op: MatchOp, name: &str, value: &str) -> Result<Matcher, String> {
    Matcher::new(op, name, value).map_err(|e| e.to_string())
}

fn ensure(cond: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(what())
    }
}

/// Checks a store loaded with [`dataset`]; the error names the first
/// property that does not hold.
pub async fn check(q: &dyn Queryable) -> Result<(), String> {
    use MatchOp::*;
    let err = |e: crate::model::QueryableError| e.to_string();
    // Equality matcher, whole range, sorted by labels.
    let r = q
        .select(&[m(Equal, "__name__", "a")?], 0, 100_000)
        .await
        .map_err(err)?;
    let names: Vec<String> = r.series.iter().map(|s| s.labels.to_string()).collect();
    ensure(r.series.len() == 3, || {
        format!("a: want 3 series, got {names:?}")
    })?;
    ensure(
        r.series.windows(2).all(|w| w[0].labels < w[1].labels),
        || format!("a: series not sorted by labels: {names:?}"),
    )?;
    ensure(r.series.iter().all(|s| s.samples.len() == 10), || {
        "a: want 10 samples per series".into()
    })?;
    // The stale marker comes back bit-exactly.
    let db = r.series.iter().find(|s| s.labels.get("job") == Some("db"));
    ensure(db.is_some_and(|s| is_stale_nan(s.samples[5].v)), || {
        "a{job=db}: stale marker at t=50s not returned bit-exactly".into()
    })?;
    // Inclusive bounds on both ends.
    let r = q
        .select(
            &[m(Equal, "__name__", "a")?, m(Equal, "instance", "1")?],
            20_000,
            40_000,
        )
        .await
        .map_err(err)?;
    let ts: Vec<i64> = r
        .series
        .iter()
        .flat_map(|s| s.samples.iter().map(|p| p.t))
        .collect();
    ensure(ts == vec![20_000, 30_000, 40_000], || {
        format!("time range [20s, 40s] is inclusive: got {ts:?}")
    })?;
    // `l=""` and `!=` match series without the label; regexes are anchored.
    let r = q
        .select(
            &[m(Equal, "__name__", "a")?, m(Equal, "instance", "")?],
            0,
            100_000,
        )
        .await
        .map_err(err)?;
    ensure(r.series.len() == 1, || {
        "instance=\"\" matches only the series without it".into()
    })?;
    let r = q
        .select(&[m(RegexMatch, "job", "ap")?], 0, 100_000)
        .await
        .map_err(err)?;
    ensure(r.series.is_empty(), || {
        "regex matchers are anchored (job=~\"ap\")".into()
    })?;
    let r = q
        .select(
            &[
                m(RegexMatch, "job", "api|db")?,
                m(NotEqual, "instance", "2")?,
            ],
            0,
            100_000,
        )
        .await
        .map_err(err)?;
    ensure(r.series.len() == 3, || {
        format!(
            "job=~\"api|db\",instance!=\"2\": want 3 series, got {}",
            r.series.len()
        )
    })?;
    let r = q
        .select(
            &[
                m(RegexNoMatch, "__name__", "a")?,
                m(RegexMatch, "job", ".+")?,
            ],
            0,
            100_000,
        )
        .await
        .map_err(err)?;
    ensure(r.series.len() == 1, || {
        "__name__!~\"a\" leaves only b".into()
    })?;
    // Series without samples in the range are omitted.
    let r = q
        .select(&[m(Equal, "job", "api")?], 0, 50_000)
        .await
        .map_err(err)?;
    ensure(r.series.len() == 2, || {
        "series with no sample in the range (b before 90s) are omitted".into()
    })?;
    // Label names, values and series.
    let names = q
        .label_names(&[m(Equal, "__name__", "a")?], 0, 100_000)
        .await
        .map_err(err)?;
    ensure(names == ["__name__", "instance", "job"], || {
        format!("label names of a: {names:?}")
    })?;
    let vals = q
        .label_values("job", &[m(RegexMatch, "__name__", ".+")?], 0, 100_000)
        .await
        .map_err(err)?;
    ensure(vals == ["api", "db"], || format!("values of job: {vals:?}"))?;
    let series = q
        .series(&[m(Equal, "__name__", "b")?], 0, 100_000)
        .await
        .map_err(err)?;
    ensure(
        series.len() == 1 && series[0].get("instance") == Some("1"),
        || format!("series of b: {series:?}"),
    )?;
    let none = q
        .series(&[m(Equal, "__name__", "b")?], 0, 80_000)
        .await
        .map_err(err)?;
    ensure(none.is_empty(), || "series() honours the time range".into())
}

#[cfg(test)]
mod tests {
    #[test]
    fn mem_queryable_conforms() {
        let mut m = crate::mem::MemQueryable::new();
        for (l, s) in super::dataset() {
            m.add_series(l, s);
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        rt.block_on(super::check(&m))
            .expect("MemQueryable conforms");
    }
}
