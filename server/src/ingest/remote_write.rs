//! Prometheus remote write 1.0: the body is one snappy *block* (not framed)
//! holding a protobuf `prometheus.WriteRequest` (see `proto/proto/remote.proto`):
//!
//! ```text
//! body    = snappy_block(WriteRequest)
//! snappy  = uncompressed_len varint | snappy elements...
//! WriteRequest { 1: repeated TimeSeries, 3: repeated MetricMetadata }
//! TimeSeries   { 1: labels, 2: samples, 3: exemplars, 4: histograms }
//! ```
//!
//! [`decode`] checks the declared uncompressed length against a limit before
//! allocating, then decodes; [`feed`] validates each series into a
//! [`BatchBuilder`] and returns the metadata.

use prost::Message;
use proto::prometheus::{metric_metadata::MetricType, MetricMetadata, WriteRequest};
use query::model::{Label, Sample};

use super::{BatchBuilder, RejectReason};
use crate::error::{ApiError, ErrorKind};

/// How much larger than the compressed limit a decompressed body may be.
pub const MAX_EXPANSION: usize = 8;

/// Decodes a snappy-compressed protobuf `WriteRequest`. `max_decoded` bounds
/// the uncompressed size.
pub fn decode(body: &[u8], max_decoded: usize) -> Result<WriteRequest, ApiError> {
    let len = snap::raw::decompress_len(body).map_err(|e| {
        ApiError::bad_data(format!(
            "cannot decode remote write body: bad snappy block: {e}"
        ))
    })?;
    if len > max_decoded {
        return Err(ApiError::new(
            ErrorKind::TooLarge,
            format!(
                "cannot decode remote write body: uncompressed size {len} bytes exceeds the limit of {max_decoded} bytes; raise --max-body-bytes or send smaller batches"
            ),
        ));
    }
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| {
            ApiError::bad_data(format!(
                "cannot decode remote write body: bad snappy block: {e}"
            ))
        })?;
    WriteRequest::decode(raw.as_slice()).map_err(|e| {
        ApiError::bad_data(format!(
            "cannot decode remote write body: bad protobuf WriteRequest: {e}"
        ))
    })
}

/// One metadata entry of a metric family, as `/api/v1/metadata` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Metadata {
    /// `counter`, `gauge`, `histogram`, `gaugehistogram`, `summary`, `info`,
    /// `stateset` or `unknown`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Help text.
    pub help: String,
    /// Unit.
    pub unit: String,
}

fn metadata_type(t: i32) -> &'static str {
    match MetricType::try_from(t).unwrap_or(MetricType::Unknown) {
        MetricType::Unknown => "unknown",
        MetricType::Counter => "counter",
        MetricType::Gauge => "gauge",
        MetricType::Histogram => "histogram",
        MetricType::Gaugehistogram => "gaugehistogram",
        MetricType::Summary => "summary",
        MetricType::Info => "info",
        MetricType::Stateset => "stateset",
    }
}

fn convert_metadata(m: MetricMetadata) -> (String, Metadata) {
    let kind = metadata_type(m.r#type).to_string();
    (
        m.metric_family_name,
        Metadata {
            kind,
            help: m.help,
            unit: m.unit,
        },
    )
}

/// What [`feed`] found besides series.
#[derive(Debug, Default)]
pub struct Extras {
    /// Metadata entries by metric family.
    pub metadata: Vec<(String, Metadata)>,
    /// Exemplars received (not stored).
    pub exemplars: u64,
}

/// Validates every series of `req` into `b`. Series carrying native
/// histograms are refused with a clear reason (never dropped silently).
pub fn feed(req: WriteRequest, b: &mut BatchBuilder<'_>) -> Result<Extras, ApiError> {
    let max = b.limits.max_series_per_request;
    if req.timeseries.len() > max {
        return Err(ApiError::bad_data(format!(
            "cannot accept remote write request: {} series, more than --max-series-per-request={max}; send smaller batches",
            req.timeseries.len()
        )));
    }
    let mut extras = Extras {
        metadata: req.metadata.into_iter().map(convert_metadata).collect(),
        exemplars: 0,
    };
    for ts in req.timeseries {
        extras.exemplars += ts.exemplars.len() as u64;
        let pairs: Vec<Label> = ts
            .labels
            .into_iter()
            .map(|l| Label {
                name: l.name,
                value: l.value,
            })
            .collect();
        if !ts.histograms.is_empty() {
            let name = super::series_name(&pairs);
            let n = ts.histograms.len() as u64 + ts.samples.len() as u64;
            b.refuse(
                RejectReason::NativeHistogram,
                format!(
                    "series {name}: native histogram samples are not supported yet ({} histograms refused); send classic histograms (disable send_native_histograms in remote_write)",
                    ts.histograms.len()
                ),
                n,
            );
            continue;
        }
        let samples = ts
            .samples
            .into_iter()
            .map(|s| Sample {
                t: s.timestamp,
                v: s.value,
            })
            .collect();
        b.add(pairs, samples);
    }
    Ok(extras)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Limits;
    use proto::prometheus::{Histogram, Label as PLabel, Sample as PSample, TimeSeries};

    fn ts(name: &str, hist: bool) -> TimeSeries {
        TimeSeries {
            labels: vec![PLabel {
                name: "__name__".into(),
                value: name.into(),
            }],
            samples: vec![PSample {
                value: 1.0,
                timestamp: 1000,
            }],
            histograms: if hist {
                vec![Histogram::default()]
            } else {
                vec![]
            },
            ..Default::default()
        }
    }

    fn body(req: &WriteRequest) -> Vec<u8> {
        snap::raw::Encoder::new()
            .compress_vec(&req.encode_to_vec())
            .unwrap()
    }

    #[test]
    fn round_trip_and_histograms_refused() {
        let req = WriteRequest {
            timeseries: vec![ts("a", false), ts("h", true)],
            metadata: vec![MetricMetadata {
                r#type: MetricType::Counter as i32,
                metric_family_name: "a".into(),
                help: "A counter.".into(),
                unit: String::new(),
            }],
        };
        let got = decode(&body(&req), 1 << 20).unwrap();
        let limits = Limits::default();
        let mut b = BatchBuilder::new(&limits);
        let extras = feed(got, &mut b).unwrap();
        assert_eq!(b.series.len(), 1);
        assert_eq!(b.refused.len(), 1);
        assert_eq!(b.refused[0].reason, RejectReason::NativeHistogram);
        assert!(
            b.refused[0].msg.contains(r#"{__name__="h"}"#),
            "{}",
            b.refused[0].msg
        );
        assert_eq!(extras.metadata[0].0, "a");
        assert_eq!(extras.metadata[0].1.kind, "counter");
    }

    #[test]
    fn bad_bodies() {
        let e = decode(b"\xff\xff\xff\xff\xff\xff", 1 << 20).unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadData);
        assert!(e.msg.contains("snappy"), "{e}");
        let not_proto = snap::raw::Encoder::new()
            .compress_vec(b"\xff\xff\xff")
            .unwrap();
        let e = decode(&not_proto, 1 << 20).unwrap_err();
        assert!(e.msg.contains("protobuf"), "{e}");
        let big = snap::raw::Encoder::new()
            .compress_vec(&[0u8; 4096])
            .unwrap();
        assert_eq!(decode(&big, 1000).unwrap_err().kind, ErrorKind::TooLarge);
    }

    #[test]
    fn too_many_series() {
        let limits = Limits {
            max_series_per_request: 1,
            ..Limits::default()
        };
        let mut b = BatchBuilder::new(&limits);
        let req = WriteRequest {
            timeseries: vec![ts("a", false), ts("b", false)],
            metadata: vec![],
        };
        let e = feed(req, &mut b).unwrap_err();
        assert!(e.msg.contains("max-series-per-request"), "{e}");
    }
}
