//! Remote write 1.0 request bodies, built ahead of time.
//!
//! The protobuf is written by hand so that building 10k+ requests costs
//! little: each series' `Label` fields are encoded once, and every request
//! appends, per series, `TimeSeries { labels (pre-encoded), samples: [one
//! Sample] }`. The bytes decode to the same message prost produces (a test
//! checks this against [`proto::prometheus::WriteRequest`]); field numbers:
//!
//! ```text
//! WriteRequest  1: repeated TimeSeries (LEN)
//! TimeSeries    1: repeated Label (LEN)   2: repeated Sample (LEN)
//! Label         1: name (LEN)             2: value (LEN)
//! Sample        1: value (I64, double)    2: timestamp (VARINT, int64)
//! ```

use bytes::Bytes;

use super::gen::{values, Catalog, Shape};

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

fn put_len_field(out: &mut Vec<u8>, tag: u8, body: &[u8]) {
    out.push(tag);
    put_varint(out, body.len() as u64);
    out.extend_from_slice(body);
}

/// The encoded `Label` fields of a `TimeSeries` (field 1, repeated).
pub fn encode_labels(labels: &[(String, String)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (n, v) in labels {
        let mut l = Vec::with_capacity(n.len() + v.len() + 4);
        put_len_field(&mut l, 0x0a, n.as_bytes());
        put_len_field(&mut l, 0x12, v.as_bytes());
        put_len_field(&mut out, 0x0a, &l);
    }
    out
}

/// Appends one `TimeSeries` with one sample as field 1 of a
/// `WriteRequest`.
pub fn put_series(out: &mut Vec<u8>, labels: &[u8], ts: i64, value: f64) {
    let sample_len = 1 + 8 + 1 + varint_len(ts as u64);
    let series_len = labels.len() + 1 + varint_len(sample_len as u64) + sample_len;
    out.push(0x0a);
    put_varint(out, series_len as u64);
    out.extend_from_slice(labels);
    out.push(0x12);
    put_varint(out, sample_len as u64);
    out.push(0x09);
    out.extend_from_slice(&value.to_le_bytes());
    out.push(0x10);
    put_varint(out, ts as u64);
}

/// The prebuilt requests of a run.
pub struct Requests {
    /// Snappy-compressed bodies, in sending order.
    pub bodies: Vec<Bytes>,
    /// Samples in each body.
    pub samples: Vec<u32>,
    /// Uncompressed protobuf bytes in total.
    pub raw_bytes: u64,
}

impl Requests {
    /// Total samples.
    pub fn total_samples(&self) -> u64 {
        self.samples.iter().map(|&s| s as u64).sum()
    }

    /// Total compressed bytes.
    pub fn compressed_bytes(&self) -> u64 {
        self.bodies.iter().map(|b| b.len() as u64).sum()
    }
}

/// Generates every value and builds the requests: the samples of all series
/// at the first timestamp, then all at the second, ..., cut into bodies of
/// `per_request` samples (the last may be shorter). Uses `threads` threads.
pub fn build(shape: &Shape, per_request: usize, threads: usize) -> Requests {
    let catalog = Catalog::new(shape);
    let labels: Vec<Vec<u8>> = catalog.series_labels().map(|l| encode_labels(l)).collect();
    let threads = threads.max(1);
    let per_request = per_request.max(1);
    // Series-major values, generated in parallel by source.
    let sources = &catalog.sources;
    let chunk = sources.len().div_ceil(threads).max(1);
    let columns: Vec<Vec<f64>> = std::thread::scope(|s| {
        let handles: Vec<_> = sources
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .flat_map(|src| values(src, shape))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let n_series = labels.len();
    let total = n_series * shape.points;
    let n_req = total.div_ceil(per_request);
    let per_thread = n_req.div_ceil(threads).max(1);
    let (labels, columns) = (&labels, &columns);
    let parts: Vec<(Vec<Bytes>, Vec<u32>, u64)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    let mut bodies = Vec::new();
                    let mut counts = Vec::new();
                    let mut raw_bytes = 0u64;
                    let mut enc = snap::raw::Encoder::new();
                    let mut buf = Vec::new();
                    let end = ((t + 1) * per_thread).min(n_req);
                    for r in (t * per_thread).min(end)..end {
                        buf.clear();
                        let (a, b) = (r * per_request, ((r + 1) * per_request).min(total));
                        for flat in a..b {
                            let (j, i) = (flat / n_series, flat % n_series);
                            put_series(&mut buf, &labels[i], shape.ts(j), columns[i][j]);
                        }
                        raw_bytes += buf.len() as u64;
                        bodies.push(Bytes::from(enc.compress_vec(&buf).unwrap_or_default()));
                        counts.push((b - a) as u32);
                    }
                    (bodies, counts, raw_bytes)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let mut out = Requests {
        bodies: Vec::with_capacity(n_req),
        samples: Vec::with_capacity(n_req),
        raw_bytes: 0,
    };
    for (b, c, r) in parts {
        out.bodies.extend(b);
        out.samples.extend(c);
        out.raw_bytes += r;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;
    use proto::prometheus::WriteRequest;

    #[test]
    fn bodies_decode_with_prost_in_time_order() {
        let shape = Shape {
            series: 1_000,
            points: 7,
            interval_ms: 15_000,
            end_ms: 1_800_000_000_000,
            instances: 10,
            seed: 3,
        };
        let reqs = build(&shape, 300, 2);
        assert_eq!(reqs.total_samples(), 7_000);
        assert_eq!(reqs.bodies.len(), 24); // 7000 / 300, rounded up
        let catalog = Catalog::new(&shape);
        let all_labels: Vec<_> = catalog.series_labels().cloned().collect();
        let mut flat = 0usize;
        let mut last_ts = i64::MIN;
        for (body, n) in reqs.bodies.iter().zip(&reqs.samples) {
            let raw = snap::raw::Decoder::new()
                .decompress_vec(body)
                .expect("snappy");
            let req = WriteRequest::decode(raw.as_slice()).expect("protobuf");
            assert_eq!(req.timeseries.len(), *n as usize);
            for ts in req.timeseries {
                let (j, i) = (flat / 1_000, flat % 1_000);
                let got: Vec<(String, String)> =
                    ts.labels.into_iter().map(|l| (l.name, l.value)).collect();
                assert_eq!(got, all_labels[i]);
                assert_eq!(ts.samples.len(), 1);
                assert_eq!(ts.samples[0].timestamp, shape.ts(j));
                assert!(ts.samples[0].timestamp >= last_ts);
                last_ts = ts.samples[0].timestamp;
                flat += 1;
            }
        }
        assert_eq!(flat, 7_000);
        // Threads do not change the bytes.
        let one = build(&shape, 300, 1);
        assert_eq!(one.bodies, reqs.bodies);
    }

    #[test]
    fn varints() {
        let f = |v: u64, want: &[u8]| {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(out, want);
            assert_eq!(varint_len(v), want.len());
        };
        f(0, &[0]);
        f(127, &[127]);
        f(128, &[0x80, 1]);
        f(300, &[0xac, 0x02]);
    }
}
