//! [`merge_chunks`]: decodes a series' chunks and merges them into one
//! time-ordered sample list (chunks may overlap: out-of-order chunks, or a
//! chunk seen both in memory and on disk during a checkpoint).

use model::Sample;

use crate::chunk::decode_into;
use crate::{EncodedChunk, StorageError};

/// Decodes `chunks`, keeps samples in `[min_t, max_t]`, and merges them
/// sorted by time with unique timestamps. Where two chunks hold the same
/// timestamp, the one earlier in `chunks` wins (`select_chunks` lists
/// in-order chunks before out-of-order ones).
pub fn merge_chunks(
    chunks: &[EncodedChunk],
    min_t: i64,
    max_t: i64,
) -> Result<Vec<Sample>, StorageError> {
    let mut order: Vec<usize> = (0..chunks.len()).collect();
    order.sort_by_key(|&i| (chunks[i].min_t, i));
    let disjoint = order
        .windows(2)
        .all(|w| chunks[w[0]].max_t < chunks[w[1]].min_t);
    let mut out = Vec::new();
    if disjoint {
        for &i in &order {
            decode_range(&chunks[i], min_t, max_t, &mut out)?;
        }
        return Ok(out);
    }
    // Overlapping chunks: decode all, stable-sort by (t, chunk position).
    let mut tagged: Vec<(i64, usize, f64)> = Vec::new();
    let mut buf = Vec::new();
    for (i, c) in chunks.iter().enumerate() {
        buf.clear();
        decode_range(c, min_t, max_t, &mut buf)?;
        tagged.extend(buf.iter().map(|s| (s.t, i, s.v)));
    }
    tagged.sort_unstable_by_key(|&(t, i, _)| (t, i));
    tagged.dedup_by_key(|x| x.0);
    out.extend(tagged.into_iter().map(|(t, _, v)| Sample { t, v }));
    Ok(out)
}

fn decode_range(
    c: &EncodedChunk,
    min_t: i64,
    max_t: i64,
    out: &mut Vec<Sample>,
) -> Result<(), StorageError> {
    if c.max_t < min_t || c.min_t > max_t {
        return Ok(());
    }
    let start = out.len();
    decode_into(&c.data, out).map_err(|e| StorageError::Chunk(e.to_string()))?;
    if c.min_t < min_t || c.max_t > max_t {
        let mut w = start;
        for r in start..out.len() {
            let s = out[r];
            if s.t >= min_t && s.t <= max_t {
                out[w] = s;
                w += 1;
            }
        }
        out.truncate(w);
    }
    Ok(())
}
