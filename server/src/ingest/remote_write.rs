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
//! [`decompress`] checks the declared uncompressed length against a limit
//! before allocating; [`feed`] then reads the protobuf with the borrowing
//! [`wire`] reader (no allocation per series, label or sample) into the
//! [`ShardBatches`] builder and returns the metadata.

use model::{Label, Sample};
use prost::Message;
use proto::prometheus::{metric_metadata::MetricType, MetricMetadata};

use super::shards::ShardBatches;
use super::wire::{self, Fields, WireError};
use super::RejectReason;
use crate::config::Limits;
use crate::error::{ApiError, ErrorKind};

/// How much larger than the compressed limit a decompressed body may be.
pub const MAX_EXPANSION: usize = 8;

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

fn bad(e: WireError) -> ApiError {
    ApiError::bad_data(format!(
        "cannot decode remote write body: bad protobuf WriteRequest: {e}"
    ))
}

/// What [`read_series`] found besides labels and samples.
struct SeriesFields {
    /// Hash key of the raw label messages (see [`super::cache`]).
    key: u128,
    histograms: u64,
    exemplars: u64,
}

/// Splits one `TimeSeries` into its `Label` messages (into `labels`) and
/// its samples (into `samples`); every vector is cleared first and reused
/// across series, `scratch` holds the key's bytes.
fn read_series<'a>(
    ts: &'a [u8],
    labels: &mut Vec<&'a [u8]>,
    samples: &mut Vec<Sample>,
    scratch: &mut Vec<u8>,
) -> Result<SeriesFields, WireError> {
    labels.clear();
    samples.clear();
    scratch.clear();
    let mut out = SeriesFields {
        key: 0,
        histograms: 0,
        exemplars: 0,
    };
    let mut f = Fields::new(ts);
    while let Some(field) = f.next() {
        match field? {
            (1, v) => {
                let b = v.bytes(1)?;
                scratch.extend_from_slice(&(b.len() as u32).to_le_bytes());
                scratch.extend_from_slice(b);
                labels.push(b);
            }
            (2, v) => samples.push(read_sample(v.bytes(2)?)?),
            (3, v) => {
                v.bytes(3)?;
                out.exemplars += 1;
            }
            (4, v) => {
                v.bytes(4)?;
                out.histograms += 1;
            }
            _ => {}
        }
    }
    out.key = xxhash_rust::xxh3::xxh3_128_with_seed(scratch, 0x5157_3EBA_C4A1);
    Ok(out)
}

fn read_sample(b: &[u8]) -> Result<Sample, WireError> {
    let (mut v, mut t) = (0.0, 0i64);
    let mut f = Fields::new(b);
    while let Some(field) = f.next() {
        match field? {
            (1, x) => v = f64::from_bits(x.fixed64(1)?),
            (2, x) => t = x.varint(2)? as i64,
            _ => {}
        }
    }
    Ok(Sample { t, v })
}

fn read_label(b: &[u8]) -> Result<Label, WireError> {
    let (mut name, mut value) = ("", "");
    let mut f = Fields::new(b);
    while let Some(field) = f.next() {
        match field? {
            (1, x) => name = wire::utf8(x.bytes(1)?)?,
            (2, x) => value = wire::utf8(x.bytes(2)?)?,
            _ => {}
        }
    }
    Ok(Label::new(name, value))
}

/// Re-reads a `TimeSeries` message: its labels as sent and its samples
/// (a [`super::shards::Reread`]).
pub fn reread(ts: &[u8], labels: &mut Vec<Label>, samples: &mut Vec<Sample>) -> Result<(), String> {
    let (mut raw, mut scratch) = (Vec::new(), Vec::new());
    read_series(ts, &mut raw, samples, &mut scratch).map_err(|e| e.to_string())?;
    labels.clear();
    for b in raw {
        labels.push(read_label(b).map_err(|e| e.to_string())?);
    }
    Ok(())
}

/// Decodes a decompressed `WriteRequest` straight into `b`, borrowing from
/// `raw`: series the ingest cache knows are not even parsed past their
/// label bytes. Series carrying native histograms are refused with a clear
/// reason (never dropped silently). Stops with an error at the first
/// malformed byte or when the request has more series than
/// `--max-series-per-request` (counted while reading, so a body of
/// millions of empty series costs no more than the limit).
pub fn feed<'a>(
    raw: &'a [u8],
    b: &mut ShardBatches<'a>,
    limits: &Limits,
) -> Result<Extras, ApiError> {
    let max = limits.max_series_per_request;
    let mut extras = Extras::default();
    let mut samples = Vec::new();
    let mut scratch = Vec::new();
    let mut raw_labels: Vec<&'a [u8]> = Vec::new();
    let mut n_series = 0usize;
    let mut f = Fields::new(raw);
    while let Some(field) = f.next() {
        match field.map_err(bad)? {
            (1, v) => {
                n_series += 1;
                if n_series > max {
                    return Err(ApiError::bad_data(format!(
                        "cannot accept remote write request: more than --max-series-per-request={max} series; send smaller batches"
                    )));
                }
                let ts = v.bytes(1).map_err(bad)?;
                let s =
                    read_series(ts, &mut raw_labels, &mut samples, &mut scratch).map_err(bad)?;
                extras.exemplars += s.exemplars;
                if s.histograms > 0 {
                    let mut labels = Vec::new();
                    for l in &raw_labels {
                        labels.push(read_label(l).map_err(bad)?);
                    }
                    b.refuse(
                        RejectReason::NativeHistogram,
                        format!(
                            "series {}: native histogram samples are not supported yet ({} histograms refused); send classic histograms (disable send_native_histograms in remote_write)",
                            super::series_name(&labels),
                            s.histograms
                        ),
                        s.histograms + samples.len() as u64,
                    );
                    continue;
                }
                let labels = &raw_labels;
                b.add(s.key, ts, &mut samples, |out| {
                    for l in labels {
                        out.push(read_label(l).map_err(|e| e.to_string())?);
                    }
                    Ok(())
                });
            }
            (3, v) => {
                let m = MetricMetadata::decode(v.bytes(3).map_err(bad)?).map_err(|e| {
                    ApiError::bad_data(format!(
                        "cannot decode remote write body: bad protobuf MetricMetadata: {e}"
                    ))
                })?;
                extras.metadata.push(convert_metadata(m));
            }
            _ => {}
        }
    }
    Ok(extras)
}

/// Decompresses a snappy block whose declared length is at most
/// `max_decoded` bytes.
pub fn decompress(body: &[u8], max_decoded: usize) -> Result<Vec<u8>, ApiError> {
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
    snap::raw::Decoder::new().decompress_vec(body).map_err(|e| {
        ApiError::bad_data(format!(
            "cannot decode remote write body: bad snappy block: {e}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::cache::{Cached, IngestCache};
    use crate::ingest::shards::TimeWindow;
    use model::Labels;
    use proptest::prelude::*;
    use proto::prometheus::{
        Histogram, Label as PLabel, Sample as PSample, TimeSeries, WriteRequest,
    };
    use storage::{SeriesRef, WriteBatch};

    const ALL_TIME: TimeWindow = TimeWindow {
        min_t: i64::MIN,
        max_t: i64::MAX,
    };

    fn ts(labels: &[(&str, &str)], samples: &[(i64, f64)], hist: bool) -> TimeSeries {
        TimeSeries {
            labels: labels
                .iter()
                .map(|(n, v)| PLabel {
                    name: n.to_string(),
                    value: v.to_string(),
                })
                .collect(),
            samples: samples
                .iter()
                .map(|&(t, v)| PSample {
                    value: v,
                    timestamp: t,
                })
                .collect(),
            histograms: if hist {
                vec![Histogram::default()]
            } else {
                vec![]
            },
            ..Default::default()
        }
    }

    /// Every series the batches hold: shard, reference, samples.
    type Sent = Vec<(u32, SeriesRef, Vec<Sample>)>;

    /// Feeds `req` and returns every series the batches hold (by shard
    /// order), with the builder's refusals.
    fn run(
        req: &WriteRequest,
        cache: &IngestCache,
        window: TimeWindow,
        limits: &Limits,
    ) -> Result<(Sent, Vec<Refused>, Extras), ApiError> {
        let raw = req.encode_to_vec();
        let mut b = ShardBatches::new(limits, cache, 8, window, reread);
        let extras = feed(&raw, &mut b, limits)?;
        let refused = std::mem::take(&mut b.refused);
        let mut out = Vec::new();
        for (shard, bytes) in b.into_batches() {
            let WriteBatch::Samples(v) = WriteBatch::decode(&bytes).unwrap() else {
                panic!("not samples");
            };
            out.extend(v.into_iter().map(|s| (shard, s.series, s.samples)));
        }
        Ok((out, refused, extras))
    }

    use super::super::Refused;

    #[test]
    fn series_are_validated_sharded_and_histograms_refused() {
        let req = WriteRequest {
            timeseries: vec![
                ts(
                    &[("job", "a"), ("__name__", "up"), ("x", "")],
                    &[(1000, 1.0)],
                    false,
                ),
                ts(&[("__name__", "h")], &[(1000, 1.0)], true),
                ts(&[("__name__", "bad"), ("1x", "y")], &[(1000, 1.0)], false),
            ],
            metadata: vec![MetricMetadata {
                r#type: MetricType::Counter as i32,
                metric_family_name: "a".into(),
                help: "A counter.".into(),
                unit: String::new(),
            }],
        };
        let cache = IngestCache::new(1000);
        let limits = Limits::default();
        let (series, refused, extras) = run(&req, &cache, ALL_TIME, &limits).unwrap();
        let want = Labels::from_pairs([("__name__", "up"), ("job", "a")]);
        assert_eq!(series.len(), 1);
        assert_eq!(series[0].0, model::labels::shard_of(&want, 8));
        assert_eq!(series[0].1, SeriesRef::Labels(want));
        assert_eq!(series[0].2, vec![Sample { t: 1000, v: 1.0 }]);
        let reasons: Vec<_> = refused.iter().map(|r| r.reason).collect();
        assert_eq!(
            reasons,
            [RejectReason::NativeHistogram, RejectReason::InvalidLabels]
        );
        assert!(
            refused[0].msg.contains(r#"{__name__="h"}"#),
            "{}",
            refused[0].msg
        );
        assert_eq!(extras.metadata[0].0, "a");
        assert_eq!(extras.metadata[0].1.kind, "counter");
    }

    #[test]
    fn cached_series_are_written_by_id_without_reading_labels() {
        let req = WriteRequest {
            timeseries: vec![ts(&[("__name__", "up"), ("job", "a")], &[(5, 2.0)], false)],
            metadata: vec![],
        };
        let raw = req.encode_to_vec();
        let cache = IngestCache::new(1000);
        let limits = Limits::default();
        let mut b = ShardBatches::new(&limits, &cache, 8, ALL_TIME, reread);
        feed(&raw, &mut b, &limits).unwrap();
        assert_eq!((b.cache_hits, b.cache_misses), (0, 1));
        // what the write's outcome would teach the cache
        let (mut l, mut s, mut sc) = (Vec::new(), Vec::new(), Vec::new());
        let key = read_series(&req.timeseries[0].encode_to_vec(), &mut l, &mut s, &mut sc)
            .unwrap()
            .key;
        cache.insert(key, Cached { shard: 3, id: 42 });
        let (series, refused, _) = run(&req, &cache, ALL_TIME, &limits).unwrap();
        assert!(refused.is_empty());
        assert_eq!(
            series,
            vec![(3, SeriesRef::Id(42), vec![Sample { t: 5, v: 2.0 }])]
        );
    }

    #[test]
    fn samples_outside_the_window_are_refused_per_sample() {
        let req = WriteRequest {
            timeseries: vec![ts(
                &[("__name__", "up")],
                &[(50, 1.0), (100, 2.0), (200, 3.0), (9_000_000_000_000, 4.0)],
                false,
            )],
            metadata: vec![],
        };
        let cache = IngestCache::new(1000);
        let w = TimeWindow {
            min_t: 100,
            max_t: 1000,
        };
        let (series, refused, _) = run(&req, &cache, w, &Limits::default()).unwrap();
        assert_eq!(series[0].2.len(), 2);
        let reasons: Vec<_> = refused.iter().map(|r| (r.reason, r.samples)).collect();
        assert_eq!(
            reasons,
            [(RejectReason::TooFarInFuture, 1), (RejectReason::TooOld, 1)]
        );
        assert!(
            refused[0].msg.contains(r#"{__name__="up"}"#),
            "{}",
            refused[0].msg
        );
        assert!(refused[0].msg.contains("2255-"), "{}", refused[0].msg);
    }

    #[test]
    fn bad_bodies() {
        let e = decompress(b"\xff\xff\xff\xff\xff\xff", 1 << 20).unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadData);
        assert!(e.msg.contains("snappy"), "{e}");
        let big = snap::raw::Encoder::new()
            .compress_vec(&[0u8; 4096])
            .unwrap();
        assert_eq!(
            decompress(&big, 1000).unwrap_err().kind,
            ErrorKind::TooLarge
        );
        let limits = Limits::default();
        let cache = IngestCache::new(1000);
        let mut b = ShardBatches::new(&limits, &cache, 8, ALL_TIME, reread);
        let e = feed(b"\xff\xff\xff", &mut b, &limits).unwrap_err();
        assert!(e.msg.contains("protobuf"), "{e}");
    }

    #[test]
    fn too_many_series_stops_reading_at_the_limit() {
        let limits = Limits {
            max_series_per_request: 3,
            ..Limits::default()
        };
        // a million empty series: two bytes each
        let raw: Vec<u8> = [0x0a, 0x00].repeat(1_000_000);
        let cache = IngestCache::new(1000);
        let mut b = ShardBatches::new(&limits, &cache, 8, ALL_TIME, reread);
        let e = feed(&raw, &mut b, &limits).unwrap_err();
        assert!(e.msg.contains("max-series-per-request=3"), "{e}");
    }

    fn arb_request() -> impl Strategy<Value = WriteRequest> {
        let label = ("[a-c_]{1,3}", "[a-z\\x{e9}]{0,3}");
        let series = (
            prop::collection::vec(label, 0..5),
            prop::collection::vec((any::<i64>(), any::<f64>()), 0..4),
        );
        prop::collection::vec(series, 0..6).prop_map(|v| WriteRequest {
            timeseries: v
                .into_iter()
                .map(|(mut labels, samples)| {
                    labels.push(("__name__".into(), "m".into()));
                    let l: Vec<(&str, &str)> = labels
                        .iter()
                        .map(|(a, b)| (a.as_str(), b.as_str()))
                        .collect();
                    ts(&l, &samples, false)
                })
                .collect(),
            metadata: vec![],
        })
    }

    proptest! {
        /// The borrowing reader agrees with prost and the labels path on
        /// every request: same series (canonical labels), same samples bit
        /// for bit, same refusals.
        #[test]
        fn agrees_with_prost(req in arb_request()) {
            let cache = IngestCache::new(1000);
            let limits = Limits::default();
            let (series, refused, _) = run(&req, &cache, ALL_TIME, &limits).unwrap();
            let back = WriteRequest::decode(req.encode_to_vec().as_slice()).unwrap();
            let mut want = Vec::new();
            let mut want_refused = 0;
            for t in back.timeseries {
                let pairs = t.labels.into_iter().map(|l| Label::new(l.name, l.value)).collect();
                let samples: Vec<Sample> = t.samples.iter().map(|s| Sample { t: s.timestamp, v: s.value }).collect();
                if samples.is_empty() {
                    continue;
                }
                match super::super::check_labels(&limits, pairs) {
                    Ok(l) => want.push((model::labels::shard_of(&l, 8), SeriesRef::Labels(l), samples)),
                    Err(_) => want_refused += 1,
                }
            }
            want.sort_by_key(|x| x.0);
            prop_assert_eq!(refused.len(), want_refused);
            prop_assert_eq!(series.len(), want.len());
            for (a, b) in series.iter().zip(&want) {
                prop_assert_eq!((a.0, &a.1), (b.0, &b.1));
                let bits = |v: &[Sample]| v.iter().map(|s| (s.t, s.v.to_bits())).collect::<Vec<_>>();
                prop_assert_eq!(bits(&a.2), bits(&b.2));
            }
        }

        /// Arbitrary bytes never panic the reader; they are read or refused.
        #[test]
        fn arbitrary_bytes_are_safe(raw in prop::collection::vec(any::<u8>(), 0..512)) {
            let limits = Limits::default();
            let cache = IngestCache::new(1000);
            let mut b = ShardBatches::new(&limits, &cache, 8, ALL_TIME, reread);
            let _ = feed(&raw, &mut b, &limits);
            for (_, bytes) in b.into_batches() {
                prop_assert!(WriteBatch::decode(&bytes).is_ok());
            }
        }
    }
}
