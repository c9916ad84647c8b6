//! Property tests of the chunk codec: round trips of arbitrary samples
//! (both encodings: arbitrary bit patterns and exact decimals, with values
//! that are almost but not exactly decimals) and the decoder's behaviour on
//! arbitrary bytes (the same property as the `chunk_decode` cargo-fuzz
//! target, so CI checks it on stable Rust).

use proptest::prelude::*;
use storage::chunk::{decode, decode_into, header, ChunkEncoder, ChunkIter, Encoding};

/// Strictly increasing timestamps: a start plus positive gaps drawn from
/// small, scrape-like and huge ranges; stops before overflowing i64.
fn timestamps() -> impl Strategy<Value = Vec<i64>> {
    let gap = prop_oneof![1u64..4, 14_990u64..15_010, 1u64..100_000, 1u64..=u64::MAX,];
    (any::<i64>(), prop::collection::vec(gap, 0..200)).prop_map(|(start, gaps)| {
        let mut ts = vec![start];
        let mut t = start;
        for g in gaps {
            match t.checked_add_unsigned(g) {
                Some(n) => {
                    ts.push(n);
                    t = n;
                }
                None => break,
            }
        }
        ts
    })
}

/// Value bit patterns: arbitrary bits, special values and "nice" decimals,
/// so repeats and window reuse are exercised as well as random noise.
fn value_bits() -> impl Strategy<Value = u64> {
    prop_oneof![
        any::<u64>(),
        Just(0x7ff0_0000_0000_0002u64),
        Just(f64::INFINITY.to_bits()),
        Just(f64::NEG_INFINITY.to_bits()),
        Just((-0.0f64).to_bits()),
        0u64..0x0010_0000_0000_0000,
        (0i64..1000).prop_map(|i| (i as f64 / 100.0).to_bits()),
        (0u32..1_000_000).prop_map(|i| f64::from(i).to_bits()),
    ]
}

/// A decimal series: a random walk of integers at scale `k` (0..=17, so
/// some scales are beyond what encoding 2 takes), and values nudged one ulp
/// off a decimal, or replaced by -0.0 or the stale marker, at a few places.
fn decimal_samples() -> impl Strategy<Value = Vec<(i64, u64)>> {
    (
        timestamps(),
        0i32..=17,
        any::<i32>(),
        prop::collection::vec(
            prop_oneof![Just(0i64), -100i64..100, any::<i32>().prop_map(i64::from)],
            200,
        ),
        prop::collection::vec((0usize..200, 0u8..4), 0..3),
    )
        .prop_map(|(ts, k, start, steps, odd)| {
            let p = 10f64.powi(k);
            let mut n = i64::from(start);
            let mut out: Vec<(i64, u64)> = ts
                .into_iter()
                .zip(steps)
                .map(|(t, s)| {
                    n = n.wrapping_add(s);
                    (t, (n as f64 / p).to_bits())
                })
                .collect();
            for (i, kind) in odd {
                if let Some(s) = out.get_mut(i) {
                    s.1 = match kind {
                        0 => s.1.wrapping_add(1),
                        1 => s.1.wrapping_sub(1),
                        2 => 0x7ff0_0000_0000_0002,
                        _ => (-0.0f64).to_bits(),
                    };
                }
            }
            out
        })
}

/// True if `v` is `n / 10^k` exactly for some `k <= 15`, checked
/// independently of the encoder (through the shortest decimal string).
fn is_short_decimal(v: f64) -> bool {
    if !v.is_finite() || v.to_bits() == (-0.0f64).to_bits() {
        return false;
    }
    let s = format!("{v:e}");
    let (mantissa, exp) = s.split_once('e').unwrap();
    let digits = mantissa.split_once('.').map_or(0, |(_, f)| f.len()) as i64;
    digits - exp.parse::<i64>().unwrap() <= 15
}

fn samples() -> impl Strategy<Value = Vec<(i64, u64)>> {
    (
        timestamps(),
        prop::collection::vec(value_bits(), 200),
        any::<bool>(),
    )
        .prop_map(|(ts, vs, repeat)| {
            ts.into_iter()
                .zip(vs)
                .enumerate()
                .map(|(i, (t, v))| (t, if repeat && i % 3 != 0 { 42 } else { v }))
                .collect()
        })
}

/// The encoded chunk of `samples` (value bits).
fn encode(samples: &[(i64, u64)]) -> Vec<u8> {
    let mut enc = ChunkEncoder::new();
    for &(t, v) in samples {
        enc.push(t, f64::from_bits(v)).unwrap();
    }
    enc.bytes()
}

/// `decode` and `decode_into` both give back exactly `samples`.
fn decodes_to(bytes: &[u8], samples: &[(i64, u64)]) -> Result<(), TestCaseError> {
    let got: Vec<(i64, u64)> = decode(bytes)
        .unwrap()
        .into_iter()
        .map(|(t, v)| (t, v.to_bits()))
        .collect();
    prop_assert_eq!(&got, samples);
    let mut fast = Vec::new();
    decode_into(bytes, &mut fast).unwrap();
    prop_assert!(fast
        .iter()
        .map(|s| (s.t, s.v.to_bits()))
        .eq(samples.iter().copied()));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn round_trip(samples in samples()) {
        let mut enc = ChunkEncoder::new();
        for &(t, v) in &samples {
            enc.push(t, f64::from_bits(v)).unwrap();
        }
        prop_assert_eq!(enc.len(), samples.len());
        let bytes = enc.bytes();
        decodes_to(&bytes, &samples)?;
        let h = header(&bytes).unwrap();
        prop_assert_eq!(h.count, samples.len());
        prop_assert_eq!(h.min_t, samples.first().map(|s| s.0));
        prop_assert_eq!(h.max_t, samples.last().map(|s| s.0));
        // A restored head chunk encodes to the same bytes and keeps going.
        let mut again = ChunkEncoder::from_bytes(&bytes).unwrap();
        prop_assert_eq!(again.bytes(), bytes);
        if let Some(last) = samples.last() {
            prop_assert!(again.push(last.0, 0.0).is_err());
        }
    }

    #[test]
    fn decimal_round_trip(samples in decimal_samples()) {
        let bytes = encode(&samples);
        let h = header(&bytes).unwrap();
        prop_assert_eq!(h.count, samples.len());
        decodes_to(&bytes, &samples)?;
        prop_assert_eq!(ChunkEncoder::from_bytes(&bytes).unwrap().bytes(), bytes);
        // Encoding 2 holds only values that are short decimals (-0.0, NaN,
        // infinities and 17-digit neighbours never).
        if h.encoding == Encoding::Decimal {
            prop_assert!(samples.iter().all(|s| is_short_decimal(f64::from_bits(s.1))));
        }
    }

    #[test]
    fn truncated_decimal_chunks_are_errors(
        samples in decimal_samples(),
        cut in any::<prop::sample::Index>(),
    ) {
        let bytes = encode(&samples);
        let cut = cut.index(bytes.len());
        prop_assert!(decode(&bytes[..cut]).is_err());
        let mut out = Vec::new();
        prop_assert!(decode_into(&bytes[..cut], &mut out).is_err());
        prop_assert!(out.is_empty());
    }

    #[test]
    fn corrupted_decimal_chunks_never_panic(
        samples in decimal_samples(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), 0u8..8), 1..4),
    ) {
        let mut bytes = encode(&samples);
        for (i, bit) in flips {
            let i = i.index(bytes.len());
            bytes[i] ^= 1 << bit;
        }
        check_arbitrary(&bytes);
    }

    #[test]
    fn truncated_chunks_are_errors(samples in samples(), cut in any::<prop::sample::Index>()) {
        let bytes = encode(&samples);
        let cut = cut.index(bytes.len());
        prop_assert!(decode(&bytes[..cut]).is_err());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        check_arbitrary(&bytes);
    }

    #[test]
    fn plausible_headers_never_panic(
        encoding in 1u8..=2,
        count in 0u16..300,
        tail in prop::collection::vec(any::<u8>(), 0..400),
    ) {
        let mut bytes = vec![encoding];
        bytes.extend_from_slice(&count.to_be_bytes());
        bytes.extend_from_slice(&tail);
        check_arbitrary(&bytes);
    }
}

/// The decoder property: arbitrary bytes decode to an error or to at most
/// `count` strictly increasing samples, and every entry point agrees.
fn check_arbitrary(bytes: &[u8]) {
    let whole = decode(bytes);
    let mut fast = Vec::new();
    let fast_res = decode_into(bytes, &mut fast);
    assert_eq!(whole.is_ok(), fast_res.is_ok());
    if let Ok(samples) = whole {
        let h = header(bytes).unwrap();
        assert_eq!(samples.len(), h.count);
        assert!(samples.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(samples.first().map(|s| s.0), h.min_t);
        assert_eq!(samples.last().map(|s| s.0), h.max_t);
        assert!(fast
            .iter()
            .zip(&samples)
            .all(|(a, b)| a.t == b.0 && a.v.to_bits() == b.1.to_bits()));
    } else {
        assert!(fast.is_empty());
    }
    if let Ok(it) = ChunkIter::new(bytes) {
        let count = header(bytes).unwrap().count;
        assert!(it.count() <= count);
    }
}
