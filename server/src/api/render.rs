//! Query results in Prometheus' JSON: `{"resultType":..,"result":..}` with
//! label sets as objects, `[ts, "value"]` points.

use model::Labels;
use query::engine::Value;
use serde::ser::{SerializeMap, SerializeSeq, SerializeStruct, Serializer};
use serde::Serialize;

use super::json::{Point, Ts};

/// A label set as a JSON object (in label order).
pub struct LabelsJson<'a>(pub &'a Labels);

impl Serialize for LabelsJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for l in self.0 {
            m.serialize_entry(&l.name, &l.value)?;
        }
        m.end()
    }
}

/// A list of label sets (`/api/v1/series`).
pub struct LabelsList(pub Vec<Labels>);

impl Serialize for LabelsList {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for l in &self.0 {
            seq.serialize_element(&LabelsJson(l))?;
        }
        seq.end()
    }
}

/// The `data` of a query response.
pub struct QueryData(pub Value);

struct StringPoint<'a>(i64, &'a str);

impl Serialize for StringPoint<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(2))?;
        seq.serialize_element(&Ts(self.0))?;
        seq.serialize_element(self.1)?;
        seq.end()
    }
}

struct VectorJson<'a>(&'a [query::engine::InstantSample]);

impl Serialize for VectorJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Elem<'a> {
            metric: LabelsJson<'a>,
            value: Point,
        }
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for x in self.0 {
            seq.serialize_element(&Elem {
                metric: LabelsJson(&x.labels),
                value: Point { t: x.t, v: x.v },
            })?;
        }
        seq.end()
    }
}

struct PointsJson<'a>(&'a [model::Sample]);

impl Serialize for PointsJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for p in self.0 {
            seq.serialize_element(&Point { t: p.t, v: p.v })?;
        }
        seq.end()
    }
}

struct MatrixJson<'a>(&'a [model::SeriesData]);

impl Serialize for MatrixJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Elem<'a> {
            metric: LabelsJson<'a>,
            values: PointsJson<'a>,
        }
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for x in self.0 {
            seq.serialize_element(&Elem {
                metric: LabelsJson(&x.labels),
                values: PointsJson(&x.samples),
            })?;
        }
        seq.end()
    }
}

impl Serialize for QueryData {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("data", 2)?;
        match &self.0 {
            Value::Scalar { t, v } => {
                st.serialize_field("resultType", "scalar")?;
                st.serialize_field("result", &Point { t: *t, v: *v })?;
            }
            Value::String { t, s } => {
                st.serialize_field("resultType", "string")?;
                st.serialize_field("result", &StringPoint(*t, s))?;
            }
            Value::Vector(v) => {
                st.serialize_field("resultType", "vector")?;
                st.serialize_field("result", &VectorJson(v))?;
            }
            Value::Matrix(m) => {
                st.serialize_field("resultType", "matrix")?;
                st.serialize_field("result", &MatrixJson(m))?;
            }
        }
        st.end()
    }
}

impl QueryData {
    /// Keeps at most `limit` series, returning whether any were dropped.
    pub fn truncate(&mut self, limit: usize) -> bool {
        match &mut self.0 {
            Value::Vector(v) if v.len() > limit => {
                v.truncate(limit);
                true
            }
            Value::Matrix(m) if m.len() > limit => {
                m.truncate(limit);
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::{Sample, SeriesData};
    use query::engine::InstantSample;

    fn json(v: Value) -> String {
        serde_json::to_string(&QueryData(v)).unwrap()
    }

    #[test]
    fn shapes() {
        let l = Labels::from_pairs([("__name__", "up"), ("job", "a")]);
        assert_eq!(
            json(Value::Scalar {
                t: 1500,
                v: f64::INFINITY
            }),
            r#"{"resultType":"scalar","result":[1.5,"+Inf"]}"#
        );
        assert_eq!(
            json(Value::String {
                t: 1000,
                s: "x".into()
            }),
            r#"{"resultType":"string","result":[1,"x"]}"#
        );
        assert_eq!(
            json(Value::Vector(vec![InstantSample {
                labels: l.clone(),
                t: 2000,
                v: f64::NAN
            }])),
            r#"{"resultType":"vector","result":[{"metric":{"__name__":"up","job":"a"},"value":[2,"NaN"]}]}"#
        );
        assert_eq!(
            json(Value::Matrix(vec![SeriesData {
                labels: l,
                samples: vec![Sample { t: 1, v: 0.5 }, Sample { t: 2000, v: -1.0 }],
            }])),
            r#"{"resultType":"matrix","result":[{"metric":{"__name__":"up","job":"a"},"values":[[0.001,"0.5"],[2,"-1"]]}]}"#
        );
        assert_eq!(
            json(Value::Vector(vec![])),
            r#"{"resultType":"vector","result":[]}"#
        );
    }
}
