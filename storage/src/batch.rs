//! The Raft entry payload of one shard: [`WriteBatch`] and its byte format.
//!
//! Every byte here is written to the Raft log of every replica, so the format
//! is compact: a series' labels appear only until the proposer has seen the
//! series applied, after that it is named by id; timestamps are
//! delta-encoded varints.
//!
//! ```text
//! batch      = version u8 (=1) | kind u8 | body
//! kind 1     = Samples:   n_series varint | series*
//!   series   = ref | n_samples varint | samples
//!   ref      = 0x00 | n_labels varint | (len varint | name | len varint | value)*
//!            | 0x01 | series_id varint
//!   samples  = t0 zigzag-varint | v0 u64 LE (f64 bits)
//!              (dt zigzag-varint | v u64 LE)*   dt = t_i - t_{i-1} (wrapping)
//! kind 2     = Retention: cutoff_ms zigzag-varint
//! kind 3     = Series:    series* up to the end of the batch (no count, so
//!                         [`BatchEncoder`] can write series as they come)
//! ```
//! Decoding checks every length against the bytes left, so arbitrary input
//! yields an error, never a panic or a huge allocation. Label strings must be
//! UTF-8 and in canonical form (names strictly increasing, values non-empty);
//! whether they form a valid series (name syntax, metric name) is decided at
//! apply time (`validate_labels`), so that one bad series does not fail the
//! batch.

use model::{Labels, Sample};

use model::varint::{put_i64, put_u64, Reader};

const VERSION: u8 = 1;
const KIND_SAMPLES: u8 = 1;
const KIND_RETENTION: u8 = 2;
const KIND_SERIES: u8 = 3;
const REF_LABELS: u8 = 0;
const REF_ID: u8 = 1;

/// How a batch names a series.
#[derive(Clone, Debug, PartialEq)]
pub enum SeriesRef {
    /// By its full label set (apply finds or creates the series).
    Labels(Labels),
    /// By the id apply assigned earlier (rejected if unknown).
    Id(u64),
}

/// How an encoded batch names a series, borrowed from the batch's bytes
/// (what apply reads, without allocating).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RawSeriesRef<'a> {
    /// The canonical label encoding (`model::labels`), checked: UTF-8,
    /// names strictly increasing, values non-empty.
    Labels(&'a [u8]),
    /// By the id apply assigned earlier.
    Id(u64),
}

impl RawSeriesRef<'_> {
    /// The owned form (decodes the labels; a reference read from a batch
    /// was checked then, so only a hand-made one can fail).
    pub fn to_owned(self) -> Result<SeriesRef, BatchError> {
        Ok(match self {
            RawSeriesRef::Labels(enc) => {
                SeriesRef::Labels(model::labels::decode(enc).map_err(|_| BatchError::NonCanonical)?)
            }
            RawSeriesRef::Id(id) => SeriesRef::Id(id),
        })
    }
}

/// Samples of one series in a batch, in the order they are applied.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesSamples {
    /// The series.
    pub series: SeriesRef,
    /// Its samples.
    pub samples: Vec<Sample>,
}

/// The payload of one Raft entry of a shard.
#[derive(Clone, Debug, PartialEq)]
pub enum WriteBatch {
    /// Samples to append.
    Samples(Vec<SeriesSamples>),
    /// Removes series whose newest sample is older than `cutoff_ms` from the
    /// head and the index (proposed periodically by the shard leader).
    Retention {
        /// Series with no sample at or after this time are removed.
        cutoff_ms: i64,
    },
}

/// Why a batch payload could not be decoded.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum BatchError {
    /// The payload ended early.
    #[error("truncated at byte {0}")]
    Truncated(usize),
    /// Unknown format version.
    #[error("unknown batch version {0}")]
    Version(u8),
    /// Unknown batch or reference kind.
    #[error("unknown {what} tag {tag}")]
    Tag {
        /// Which tag.
        what: &'static str,
        /// Its value.
        tag: u8,
    },
    /// A label string is not UTF-8.
    #[error("label string is not valid UTF-8")]
    Utf8,
    /// Labels not sorted by name, duplicated, or with an empty value.
    #[error("label set is not in canonical form (sorted, unique names, non-empty values)")]
    NonCanonical,
    /// Bytes left after the batch.
    #[error("{0} trailing bytes")]
    Trailing(usize),
}

impl WriteBatch {
    /// Appends the encoding of this batch to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(VERSION);
        match self {
            WriteBatch::Samples(series) => {
                out.push(KIND_SAMPLES);
                put_u64(out, series.len() as u64);
                for s in series {
                    encode_series(s, out);
                }
            }
            WriteBatch::Retention { cutoff_ms } => {
                out.push(KIND_RETENTION);
                put_i64(out, *cutoff_ms);
            }
        }
    }

    /// The encoding as a new vector.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.encode(&mut v);
        v
    }

    /// Decodes a batch; never panics on arbitrary input.
    pub fn decode(b: &[u8]) -> Result<Self, BatchError> {
        let mut r = Reader::new(b);
        let tr = |r: &Reader| BatchError::Truncated(b.len() - r.remaining());
        let version = r.u8().ok_or_else(|| tr(&r))?;
        if version != VERSION {
            return Err(BatchError::Version(version));
        }
        let batch = match r.u8().ok_or_else(|| tr(&r))? {
            KIND_SAMPLES => {
                let n = r.u64().ok_or_else(|| tr(&r))?;
                // every series takes at least 3 bytes
                let cap = (n as usize).min(r.remaining() / 3);
                let mut series = Vec::with_capacity(cap);
                for _ in 0..n {
                    series.push(decode_series(&mut r).ok_or_else(|| tr(&r))??);
                }
                WriteBatch::Samples(series)
            }
            KIND_RETENTION => WriteBatch::Retention {
                cutoff_ms: r.i64().ok_or_else(|| tr(&r))?,
            },
            KIND_SERIES => {
                let mut series = Vec::new();
                while !r.is_empty() {
                    series.push(decode_series(&mut r).ok_or_else(|| tr(&r))??);
                }
                WriteBatch::Samples(series)
            }
            tag => return Err(BatchError::Tag { what: "batch", tag }),
        };
        if !r.is_empty() {
            return Err(BatchError::Trailing(r.remaining()));
        }
        Ok(batch)
    }

    /// Number of samples in the batch.
    pub fn sample_count(&self) -> usize {
        match self {
            WriteBatch::Samples(s) => s.iter().map(|x| x.samples.len()).sum(),
            WriteBatch::Retention { .. } => 0,
        }
    }
}

fn encode_series(s: &SeriesSamples, out: &mut Vec<u8>) {
    match &s.series {
        SeriesRef::Labels(l) => encode_label_ref(
            l.iter().map(|x| (x.name.as_str(), x.value.as_str())),
            l.len(),
            out,
        ),
        SeriesRef::Id(id) => encode_id_ref(*id, out),
    }
    encode_samples(&s.samples, out);
}

fn encode_label_ref<'a>(
    pairs: impl Iterator<Item = (&'a str, &'a str)>,
    n: usize,
    out: &mut Vec<u8>,
) {
    out.push(REF_LABELS);
    model::labels::encode_into(pairs, n, out);
}

fn encode_id_ref(id: u64, out: &mut Vec<u8>) {
    out.push(REF_ID);
    put_u64(out, id);
}

fn encode_samples(samples: &[Sample], out: &mut Vec<u8>) {
    put_u64(out, samples.len() as u64);
    // at most 10 bytes of delta and 8 of value per sample
    out.reserve(samples.len() * 18);
    let mut prev = 0i64;
    for (i, smp) in samples.iter().enumerate() {
        let d = if i == 0 {
            smp.t
        } else {
            smp.t.wrapping_sub(prev)
        };
        put_i64(out, d);
        out.extend_from_slice(&smp.v.to_bits().to_le_bytes());
        prev = smp.t;
    }
}

/// `None` = truncated; `Some(Err)` = malformed.
fn decode_series(r: &mut Reader) -> Option<Result<SeriesSamples, BatchError>> {
    let series = match decode_ref(r)? {
        Ok(s) => match s.to_owned() {
            Ok(s) => s,
            Err(e) => return Some(Err(e)),
        },
        Err(e) => return Some(Err(e)),
    };
    let mut samples = Vec::new();
    decode_samples_into(r, &mut samples)?;
    Some(Ok(SeriesSamples { series, samples }))
}

/// `None` = truncated; `Some(Err)` = malformed.
fn decode_ref<'a>(r: &mut Reader<'a>) -> Option<Result<RawSeriesRef<'a>, BatchError>> {
    Some(Ok(match r.u8()? {
        REF_LABELS => {
            let start = r.position();
            let n = r.u64()?;
            let mut prev: Option<&[u8]> = None;
            for _ in 0..n {
                let name = r.len_prefixed()?;
                let value = r.len_prefixed()?;
                if std::str::from_utf8(name).is_err() || std::str::from_utf8(value).is_err() {
                    return Some(Err(BatchError::Utf8));
                }
                // The proposer encodes canonical `Labels`: names strictly
                // increasing, values non-empty. Anything else is corruption.
                if value.is_empty() || prev.is_some_and(|p| p >= name) {
                    return Some(Err(BatchError::NonCanonical));
                }
                prev = Some(name);
            }
            RawSeriesRef::Labels(r.since(start))
        }
        REF_ID => RawSeriesRef::Id(r.u64()?),
        tag => {
            return Some(Err(BatchError::Tag {
                what: "series ref",
                tag,
            }))
        }
    }))
}

/// Decodes one series' samples into `out` (cleared first); `None` if
/// truncated.
fn decode_samples_into(r: &mut Reader, out: &mut Vec<Sample>) -> Option<()> {
    out.clear();
    let n = r.u64()?;
    // every sample takes at least 9 bytes
    out.reserve((n as usize).min(r.remaining() / 9));
    let mut t = 0i64;
    for i in 0..n {
        let d = r.i64()?;
        t = if i == 0 { d } else { t.wrapping_add(d) };
        let bits = u64::from_le_bytes(r.array::<8>()?);
        out.push(Sample {
            t,
            v: f64::from_bits(bits),
        });
    }
    Some(())
}

/// Writes a samples batch series by series straight into its bytes (kind 3:
/// no series count up front), so an ingest protocol can route each series
/// to its shard's encoder as it decodes it, with no intermediate records.
#[derive(Clone, Debug)]
pub struct BatchEncoder {
    buf: Vec<u8>,
    series: usize,
    samples: usize,
}

impl Default for BatchEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl BatchEncoder {
    /// An empty batch.
    pub fn new() -> Self {
        BatchEncoder {
            buf: vec![VERSION, KIND_SERIES],
            series: 0,
            samples: 0,
        }
    }

    /// Adds a series named by its id.
    pub fn push_id(&mut self, id: u64, samples: &[Sample]) {
        encode_id_ref(id, &mut self.buf);
        self.push_samples(samples);
    }

    /// Adds a series named by its canonical label encoding
    /// (`model::labels::encode`; the caller guarantees it is canonical).
    pub fn push_encoded_labels(&mut self, enc: &[u8], samples: &[Sample]) {
        self.buf.push(REF_LABELS);
        self.buf.extend_from_slice(enc);
        self.push_samples(samples);
    }

    /// Adds a series named by its labels (canonical: sorted, unique names,
    /// non-empty values, as [`Labels`] keeps them).
    pub fn push_labels(&mut self, labels: &Labels, samples: &[Sample]) {
        encode_label_ref(
            labels.iter().map(|x| (x.name.as_str(), x.value.as_str())),
            labels.len(),
            &mut self.buf,
        );
        self.push_samples(samples);
    }

    fn push_samples(&mut self, samples: &[Sample]) {
        encode_samples(samples, &mut self.buf);
        self.series += 1;
        self.samples += samples.len();
    }

    /// Series added so far.
    pub fn series(&self) -> usize {
        self.series
    }

    /// Samples added so far.
    pub fn samples(&self) -> usize {
        self.samples
    }

    /// True when no series was added.
    pub fn is_empty(&self) -> bool {
        self.series == 0
    }

    /// The encoded batch.
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// What an encoded batch holds, read without building a [`WriteBatch`].
pub enum BatchView<'a> {
    /// Samples, read series by series.
    Samples(SeriesReader<'a>),
    /// A retention cut-off.
    Retention {
        /// See [`WriteBatch::Retention`].
        cutoff_ms: i64,
    },
}

impl<'a> BatchView<'a> {
    /// Reads the header of an encoded batch.
    pub fn open(b: &'a [u8]) -> Result<Self, BatchError> {
        let mut r = Reader::new(b);
        let version = r.u8().ok_or(BatchError::Truncated(0))?;
        if version != VERSION {
            return Err(BatchError::Version(version));
        }
        let kind = r.u8().ok_or(BatchError::Truncated(1))?;
        let left = match kind {
            KIND_SAMPLES => Some(r.u64().ok_or(BatchError::Truncated(2))?),
            KIND_SERIES => None,
            KIND_RETENTION => {
                let cutoff_ms = r.i64().ok_or(BatchError::Truncated(2))?;
                if !r.is_empty() {
                    return Err(BatchError::Trailing(r.remaining()));
                }
                return Ok(BatchView::Retention { cutoff_ms });
            }
            tag => return Err(BatchError::Tag { what: "batch", tag }),
        };
        Ok(BatchView::Samples(SeriesReader { b, r, left }))
    }

    /// Checks a whole batch without allocating per series (labels are
    /// checked for UTF-8 and canonical order); returns the number of series
    /// and samples. Bytes from a peer go through this before they are
    /// proposed.
    pub fn check(b: &'a [u8]) -> Result<(usize, usize), BatchError> {
        match BatchView::open(b)? {
            BatchView::Retention { .. } => Ok((0, 0)),
            BatchView::Samples(mut rd) => {
                let (mut series, mut samples) = (0, 0);
                let mut buf = Vec::new();
                while rd.next_raw(&mut buf)?.is_some() {
                    series += 1;
                    samples += buf.len();
                }
                Ok((series, samples))
            }
        }
    }
}

/// Reads the series of a samples batch one at a time.
pub struct SeriesReader<'a> {
    b: &'a [u8],
    r: Reader<'a>,
    /// Series left (kind 1), or `None`: up to the end (kind 3).
    left: Option<u64>,
}

impl<'a> SeriesReader<'a> {
    /// The next series: its reference, with its samples decoded into
    /// `samples` (cleared first; reuse one vector across calls). `Ok(None)`
    /// at the end; an error on malformed bytes or trailing bytes.
    pub fn next_series(
        &mut self,
        samples: &mut Vec<Sample>,
    ) -> Result<Option<SeriesRef>, BatchError> {
        self.next_raw(samples)?
            .map(RawSeriesRef::to_owned)
            .transpose()
    }

    /// [`SeriesReader::next_series`] with the reference borrowed from the
    /// batch: no allocation.
    pub fn next_raw(
        &mut self,
        samples: &mut Vec<Sample>,
    ) -> Result<Option<RawSeriesRef<'a>>, BatchError> {
        let at_end = match &mut self.left {
            Some(0) => true,
            Some(n) => {
                *n -= 1;
                false
            }
            None => self.r.is_empty(),
        };
        if at_end {
            if !self.r.is_empty() {
                return Err(BatchError::Trailing(self.r.remaining()));
            }
            return Ok(None);
        }
        let total = self.b.len();
        let tr = |r: &Reader| BatchError::Truncated(total - r.remaining());
        let series = decode_ref(&mut self.r).ok_or_else(|| tr(&self.r))??;
        decode_samples_into(&mut self.r, samples).ok_or_else(|| tr(&self.r))?;
        Ok(Some(series))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let b = WriteBatch::Samples(vec![
            SeriesSamples {
                series: SeriesRef::Labels(Labels::from_pairs([("__name__", "up"), ("job", "a")])),
                samples: vec![
                    Sample {
                        t: -5,
                        v: f64::from_bits(0x7ff0_0000_0000_0002),
                    },
                    Sample {
                        t: i64::MAX,
                        v: -0.0,
                    },
                ],
            },
            SeriesSamples {
                series: SeriesRef::Id(u64::MAX),
                samples: vec![],
            },
        ]);
        let enc = b.to_bytes();
        let d = WriteBatch::decode(&enc).unwrap();
        let (WriteBatch::Samples(x), WriteBatch::Samples(y)) = (&b, &d) else {
            panic!("kind changed");
        };
        assert_eq!(x[0].series, y[0].series);
        assert_eq!(x[1], y[1]);
        for (a, c) in x[0].samples.iter().zip(&y[0].samples) {
            assert_eq!((a.t, a.v.to_bits()), (c.t, c.v.to_bits()));
        }
        let r = WriteBatch::Retention { cutoff_ms: -7 };
        assert_eq!(WriteBatch::decode(&r.to_bytes()).unwrap(), r);
        for cut in 0..enc.len() {
            assert!(WriteBatch::decode(&enc[..cut]).is_err(), "prefix {cut}");
        }
        let mut long = enc.clone();
        long.push(0);
        assert_eq!(WriteBatch::decode(&long), Err(BatchError::Trailing(1)));
    }
}
