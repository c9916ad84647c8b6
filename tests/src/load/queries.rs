//! The dashboard queries, run against any Prometheus-compatible API, and
//! their answers in one comparable form.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::gen::{instance_name, Shape};

/// What kind of request a query is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueryKind {
    /// `/api/v1/query` at the last sample's time.
    Instant,
    /// `/api/v1/query_range` over the last 2 h, step 60 s.
    Range,
    /// `/api/v1/label/<name>/values` over the data's span.
    LabelValues,
    /// `/api/v1/series?match[]=` over the data's span.
    Series,
}

/// One query of the set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Query {
    /// Short name for tables.
    pub name: String,
    /// The kind of request.
    pub kind: QueryKind,
    /// PromQL, the label name, or the series selector.
    pub expr: String,
    /// Uses `rate`, where VictoriaMetrics deliberately differs.
    pub uses_rate: bool,
}

/// Range of the range queries.
pub const RANGE_SECONDS: i64 = 2 * 3600;
/// Step of the range queries.
pub const STEP_SECONDS: i64 = 60;

/// The fixed dashboard set: five PromQL expressions, each as an instant and
/// a 2 h range query, then label values and a series lookup.
pub fn dashboard() -> Vec<Query> {
    let one = instance_name(7);
    let exprs = [
        ("sum(rate)", "sum(rate(http_requests_total[5m]))".to_string(), true),
        (
            "sum by instance (rate)",
            "sum by (instance) (rate(http_requests_total[5m]))".to_string(),
            true,
        ),
        (
            "histogram_quantile 0.99",
            "histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))"
                .to_string(),
            true,
        ),
        (
            "max by instance (gauge)",
            "max by (instance) (node_memory_active_bytes)".to_string(),
            false,
        ),
        (
            "one-instance rate",
            format!("rate(http_requests_total{{instance=\"{one}\"}}[5m])"),
            true,
        ),
    ];
    let mut out = Vec::new();
    for kind in [QueryKind::Instant, QueryKind::Range] {
        for (name, expr, uses_rate) in &exprs {
            let prefix = if kind == QueryKind::Instant {
                "instant"
            } else {
                "range 2h"
            };
            out.push(Query {
                name: format!("{prefix} {name}"),
                kind,
                expr: expr.clone(),
                uses_rate: *uses_rate,
            });
        }
    }
    out.push(Query {
        name: "label/instance/values".into(),
        kind: QueryKind::LabelValues,
        expr: "instance".into(),
        uses_rate: false,
    });
    out.push(Query {
        name: "series?match[]=".into(),
        kind: QueryKind::Series,
        expr: format!("http_requests_total{{instance=\"{one}\"}}"),
        uses_rate: false,
    });
    out
}

/// One series of an answer: labels and `(unix seconds, value)` points (no
/// points for label values and series lookups).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AnswerSeries {
    /// Labels (`{"value": v}` for a label value).
    pub labels: BTreeMap<String, String>,
    /// Points, by time (values written as Prometheus strings in JSON, so
    /// NaN and infinities survive).
    #[serde(with = "points_as_strings")]
    pub points: Vec<(f64, f64)>,
}

mod points_as_strings {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(p: &[(f64, f64)], s: S) -> Result<S::Ok, S::Error> {
        let v: Vec<(f64, String)> = p.iter().map(|(t, v)| (*t, format_value(*v))).collect();
        v.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(f64, f64)>, D::Error> {
        let v: Vec<(f64, String)> = Vec::deserialize(d)?;
        v.into_iter()
            .map(|(t, s)| {
                super::parse_value_str(&s)
                    .map(|x| (t, x))
                    .map_err(serde::de::Error::custom)
            })
            .collect()
    }

    fn format_value(v: f64) -> String {
        if v.is_nan() {
            "NaN".into()
        } else if v == f64::INFINITY {
            "+Inf".into()
        } else if v == f64::NEG_INFINITY {
            "-Inf".into()
        } else {
            format!("{v:?}")
        }
    }
}

/// An answer, its series sorted by labels.
pub type Answer = Vec<AnswerSeries>;

/// Where queries are evaluated.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    /// Instant query time and range end (Unix s).
    pub end: i64,
    /// Range start (Unix s).
    pub start: i64,
    /// First sample (Unix s), for label and series lookups.
    pub data_start: i64,
}

impl Window {
    /// The window for data of `shape`: instant queries at the first whole
    /// minute at or after the last sample, range queries over the 2 h before
    /// it. With scrapes a few seconds off the minute (see
    /// [`default_end_ms`]) no sample sits on the edge of a `[5m]` window,
    /// where Prometheus 2's left-closed and Prometheus 3's left-open range
    /// selectors would differ.
    pub fn for_shape(shape: &Shape) -> Window {
        let end = shape.end_ms.div_euclid(60_000) * 60
            + if shape.end_ms.rem_euclid(60_000) == 0 {
                0
            } else {
                60
            };
        Window {
            end,
            start: end - RANGE_SECONDS,
            data_start: shape.ts(0).div_euclid(1000),
        }
    }
}

/// The default last sample for a run at `now_ms`: 7 s before the last whole
/// minute, so samples (every 15 s) fall at :08, :23, :38 and :53 and never
/// on the whole-minute query times or their window edges.
pub fn default_end_ms(now_ms: i64) -> i64 {
    now_ms.div_euclid(60_000) * 60_000 - 7_000
}

fn parse_value(v: &Value) -> Result<f64> {
    let s = v
        .as_str()
        .ok_or_else(|| anyhow!("sample value {v} is not a string"))?;
    parse_value_str(s)
}

fn parse_value_str(s: &str) -> Result<f64> {
    match s {
        "NaN" => Ok(f64::NAN),
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        _ => s.parse().with_context(|| format!("bad sample value {s:?}")),
    }
}

fn parse_point(p: &Value) -> Result<(f64, f64)> {
    let t = p
        .get(0)
        .and_then(Value::as_f64)
        .ok_or_else(|| anyhow!("bad point {p}"))?;
    let v = parse_value(p.get(1).unwrap_or(&Value::Null))?;
    Ok((t, v))
}

fn parse_labels(m: &Value) -> Result<BTreeMap<String, String>> {
    let obj = m
        .as_object()
        .ok_or_else(|| anyhow!("labels {m} are not an object"))?;
    obj.iter()
        .map(|(k, v)| {
            let v = v
                .as_str()
                .ok_or_else(|| anyhow!("label {k}={v} is not a string"))?;
            Ok((k.clone(), v.to_string()))
        })
        .collect()
}

/// Turns a Prometheus API JSON body into an [`Answer`].
pub fn parse_answer(kind: QueryKind, body: &Value) -> Result<Answer> {
    if body.get("status").and_then(Value::as_str) != Some("success") {
        bail!("not a success: {body}");
    }
    let data = body
        .get("data")
        .ok_or_else(|| anyhow!("no data in {body}"))?;
    let mut out: Answer = match kind {
        QueryKind::Instant | QueryKind::Range => {
            let rt = data.get("resultType").and_then(Value::as_str).unwrap_or("");
            let result = data
                .get("result")
                .ok_or_else(|| anyhow!("no result in {body}"))?;
            match rt {
                "vector" | "matrix" => result
                    .as_array()
                    .ok_or_else(|| anyhow!("result is not an array"))?
                    .iter()
                    .map(|s| {
                        let labels = parse_labels(s.get("metric").unwrap_or(&Value::Null))?;
                        let points = if let Some(v) = s.get("value") {
                            vec![parse_point(v)?]
                        } else {
                            s.get("values")
                                .and_then(Value::as_array)
                                .ok_or_else(|| anyhow!("series without values"))?
                                .iter()
                                .map(parse_point)
                                .collect::<Result<_>>()?
                        };
                        Ok(AnswerSeries { labels, points })
                    })
                    .collect::<Result<_>>()?,
                "scalar" => vec![AnswerSeries {
                    labels: BTreeMap::new(),
                    points: vec![parse_point(result)?],
                }],
                other => bail!("unexpected resultType {other:?}"),
            }
        }
        QueryKind::LabelValues => data
            .as_array()
            .ok_or_else(|| anyhow!("label values are not an array"))?
            .iter()
            .map(|v| {
                let v = v
                    .as_str()
                    .ok_or_else(|| anyhow!("label value {v} is not a string"))?;
                Ok(AnswerSeries {
                    labels: BTreeMap::from([("value".to_string(), v.to_string())]),
                    points: vec![],
                })
            })
            .collect::<Result<_>>()?,
        QueryKind::Series => data
            .as_array()
            .ok_or_else(|| anyhow!("series are not an array"))?
            .iter()
            .map(|m| {
                Ok(AnswerSeries {
                    labels: parse_labels(m)?,
                    points: vec![],
                })
            })
            .collect::<Result<_>>()?,
    };
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    Ok(out)
}

/// The outcome of one query against one system.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct QueryResult {
    /// The query.
    pub query: Query,
    /// Median latency of the timed runs (ms).
    pub median_ms: Option<f64>,
    /// Every timed run (ms).
    pub runs_ms: Vec<f64>,
    /// The answer of the first timed run.
    pub answer: Option<Answer>,
    /// Why it failed.
    pub error: Option<String>,
}

/// The median of `xs` (the mean of the middle two for an even count).
pub fn median(xs: &[f64]) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

fn params(q: &Query, w: &Window) -> (String, Vec<(&'static str, String)>) {
    match q.kind {
        QueryKind::Instant => (
            "/api/v1/query".into(),
            vec![("query", q.expr.clone()), ("time", w.end.to_string())],
        ),
        QueryKind::Range => (
            "/api/v1/query_range".into(),
            vec![
                ("query", q.expr.clone()),
                ("start", w.start.to_string()),
                ("end", w.end.to_string()),
                ("step", STEP_SECONDS.to_string()),
            ],
        ),
        QueryKind::LabelValues => (
            format!("/api/v1/label/{}/values", q.expr),
            vec![
                ("start", w.data_start.to_string()),
                ("end", w.end.to_string()),
            ],
        ),
        QueryKind::Series => (
            "/api/v1/series".into(),
            vec![
                ("match[]", q.expr.clone()),
                ("start", w.data_start.to_string()),
                ("end", w.end.to_string()),
            ],
        ),
    }
}

async fn run_once(
    client: &reqwest::Client,
    base: &str,
    q: &Query,
    w: &Window,
) -> Result<(f64, Value)> {
    let (path, p) = params(q, w);
    let t0 = Instant::now();
    let r = client
        .get(format!("{}{path}", base.trim_end_matches('/')))
        .query(&p)
        .send()
        .await?;
    let status = r.status().as_u16();
    let text = r.text().await?;
    let ms = t0.elapsed().as_secs_f64() * 1e3;
    if status != 200 {
        bail!(
            "{path} answered {status}: {}",
            text.chars().take(300).collect::<String>()
        );
    }
    let v: Value =
        serde_json::from_str(&text).with_context(|| format!("{path} answered non-JSON"))?;
    Ok((ms, v))
}

/// Runs `q` once to warm up, then `runs` times timed; keeps the first timed
/// answer.
pub async fn run(base: &str, q: &Query, w: &Window, runs: usize) -> QueryResult {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
    {
        Ok(c) => c,
        Err(e) => return failed(q, e.into()),
    };
    if let Err(e) = run_once(&client, base, q, w).await {
        return failed(q, e);
    }
    let mut runs_ms = Vec::with_capacity(runs);
    let mut answer = None;
    for _ in 0..runs {
        match run_once(&client, base, q, w).await {
            Ok((ms, v)) => {
                runs_ms.push(ms);
                if answer.is_none() {
                    match parse_answer(q.kind, &v) {
                        Ok(a) => answer = Some(a),
                        Err(e) => return failed(q, e),
                    }
                }
            }
            Err(e) => return failed(q, e),
        }
    }
    QueryResult {
        query: q.clone(),
        median_ms: median(&runs_ms),
        runs_ms,
        answer,
        error: None,
    }
}

fn failed(q: &Query, e: anyhow::Error) -> QueryResult {
    QueryResult {
        query: q.clone(),
        median_ms: None,
        runs_ms: vec![],
        answer: None,
        error: Some(format!("{e:#}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_vectors_matrices_values_and_series() {
        let v = json!({"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"instance":"b"},"value":[10.5,"2"]},
            {"metric":{"instance":"a"},"value":[10.5,"NaN"]}]}});
        let a = parse_answer(QueryKind::Instant, &v).expect("vector");
        assert_eq!(a[0].labels["instance"], "a");
        assert!(a[0].points[0].1.is_nan());
        assert_eq!(a[1].points, vec![(10.5, 2.0)]);
        let m = json!({"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{},"values":[[1,"1"],[2,"+Inf"]]}]}});
        let a = parse_answer(QueryKind::Range, &m).expect("matrix");
        assert_eq!(a[0].points, vec![(1.0, 1.0), (2.0, f64::INFINITY)]);
        let l = json!({"status":"success","data":["y","x"]});
        let a = parse_answer(QueryKind::LabelValues, &l).expect("values");
        assert_eq!(a[0].labels["value"], "x");
        let s = json!({"status":"success","data":[{"__name__":"up","job":"a"}]});
        let a = parse_answer(QueryKind::Series, &s).expect("series");
        assert_eq!(a[0].labels["job"], "a");
        assert!(parse_answer(QueryKind::Instant, &json!({"status":"error"})).is_err());
        // Answers survive a JSON round trip, NaN and infinities included.
        let a = parse_answer(QueryKind::Range, &m).expect("matrix");
        let text = serde_json::to_string(&a).expect("to json");
        let back: Answer = serde_json::from_str(&text).expect("from json");
        assert_eq!(back, a);
        let nan = vec![AnswerSeries {
            labels: BTreeMap::new(),
            points: vec![(1.0, f64::NAN)],
        }];
        let back: Answer =
            serde_json::from_str(&serde_json::to_string(&nan).expect("json")).expect("back");
        assert!(back[0].points[0].1.is_nan());
    }

    #[test]
    fn windows_avoid_samples_on_window_edges() {
        let end_ms = default_end_ms(1_800_000_123_456);
        assert_eq!(end_ms % 1000, 0);
        let shape = Shape {
            series: 1,
            points: 504,
            interval_ms: 15_000,
            end_ms,
            instances: 1,
            seed: 1,
        };
        let w = Window::for_shape(&shape);
        assert_eq!(w.end * 1000 - end_ms, 7_000);
        assert_eq!(w.end % 60, 0);
        assert_eq!(w.end - w.start, 7_200);
        // No sample on any step's 5m window edge, and every step's window
        // has a sample before it.
        for t in (w.start..=w.end).step_by(60) {
            for j in 0..shape.points {
                let ts = shape.ts(j) / 1000;
                assert_ne!(ts, t - 300);
                assert_ne!(ts, t);
            }
            assert!(shape.ts(0) / 1000 < t - 300);
        }
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }

    #[test]
    fn dashboard_set() {
        let d = dashboard();
        assert_eq!(d.len(), 12);
        assert_eq!(d.iter().filter(|q| q.kind == QueryKind::Range).count(), 5);
        assert!(d.iter().all(|q| q.uses_rate == q.expr.contains("rate(")));
    }
}
