//! Table tests of edge cases; the property tests live in
//! `storage/tests/chunk_props.rs`.

use super::encode::GORILLA_CHECK_BITS;
use super::*;

const STALE: u64 = 0x7ff0_0000_0000_0002;

fn encode(samples: &[(i64, u64)]) -> Vec<u8> {
    let mut enc = ChunkEncoder::new();
    for &(t, v) in samples {
        enc.push(t, f64::from_bits(v)).unwrap();
    }
    enc.bytes()
}

/// Encodes, decodes through every entry point, and compares bit-exactly.
fn round_trip(samples: &[(i64, u64)]) {
    let bytes = encode(samples);
    let got: Vec<(i64, u64)> = decode(&bytes)
        .unwrap()
        .into_iter()
        .map(|(t, v)| (t, v.to_bits()))
        .collect();
    assert_eq!(got, samples, "decode");
    let mut fast = Vec::new();
    decode_into(&bytes, &mut fast).unwrap();
    let fast: Vec<(i64, u64)> = fast.iter().map(|s| (s.t, s.v.to_bits())).collect();
    assert_eq!(fast, samples, "decode_into");
    let h = header(&bytes).unwrap();
    assert_eq!(h.count, samples.len());
    assert_eq!(h.min_t, samples.first().map(|s| s.0));
    assert_eq!(h.max_t, samples.last().map(|s| s.0));
    let again = ChunkEncoder::from_bytes(&bytes).unwrap();
    assert_eq!(again.bytes(), bytes, "from_bytes rebuilds the same chunk");
}

/// `decode` and `decode_into` both reject `bytes` with `want`, and
/// `decode_into` leaves its output empty.
fn assert_rejected(bytes: &[u8], want: ChunkError) {
    assert_eq!(decode(bytes).err(), Some(want.clone()), "bytes {bytes:?}");
    let mut out = Vec::new();
    assert_eq!(
        decode_into(bytes, &mut out).err(),
        Some(want),
        "decode_into {bytes:?}"
    );
    assert!(out.is_empty());
}

#[test]
fn edge_cases_round_trip() {
    let f = |samples: &[(i64, u64)]| round_trip(samples);
    f(&[]);
    f(&[(0, 0)]);
    f(&[(i64::MIN, 1.0f64.to_bits())]);
    f(&[(i64::MAX, STALE)]);
    f(&[(i64::MIN, 0), (i64::MAX, u64::MAX)]);
    f(&[(i64::MIN, 0), (0, 1), (i64::MAX, 2)]);
    f(&[(i64::MIN, 0), (i64::MIN + 1, 0), (i64::MAX, 0)]);
    f(&[(-5, 0), (-4, 0), (-3, 0), (-1, 0), (10, 0)]);
    let specials = [
        STALE,
        f64::NAN.to_bits(),
        0x7ff8_0000_0000_0001,
        0xfff8_dead_beef_0000,
        f64::INFINITY.to_bits(),
        f64::NEG_INFINITY.to_bits(),
        (-0.0f64).to_bits(),
        0,
        1,
        0x000f_ffff_ffff_ffff,
        0x8000_0000_0000_0001,
        f64::MIN_POSITIVE.to_bits(),
        f64::MAX.to_bits(),
        u64::MAX,
        STALE,
        STALE,
    ];
    let samples: Vec<(i64, u64)> = specials
        .iter()
        .enumerate()
        .map(|(i, &v)| (1_700_000_000_000 + 15_000 * i as i64, v))
        .collect();
    f(&samples);
    // Every dod bucket boundary, both signs.
    let mut t = 0i64;
    let mut delta = 1_000_000_000_000i64;
    let mut samples = vec![(t, 0)];
    for dod in [
        0,
        1,
        -1,
        64,
        -63,
        65,
        -64,
        256,
        -255,
        257,
        -256,
        2048,
        -2047,
        2049,
        -2048,
        1 << 31,
        -(1 << 31) + 1,
        (1 << 31) + 1,
        -(1 << 31),
        1 << 40,
        -(1 << 40),
    ] {
        delta += dod;
        t += delta;
        samples.push((t, t as u64));
    }
    f(&samples);
}

#[test]
fn empty_and_single_sample_bytes() {
    assert_eq!(ChunkEncoder::new().bytes(), vec![1, 0, 0]);
    // 1 sample at t=-1 with value 0.0: zig-zag(-1) = 1, span 0, scale 0,
    // then n = 0: one '0' bit.
    assert_eq!(encode(&[(-1, 0)]), vec![2, 0, 1, 1, 0, 0, 0]);
    // In Gorilla: no scale byte, and the value XOR 0 is 0: one '0' bit.
    assert_eq!(gorilla_bytes(&[(-1, 0)]), vec![1, 0, 1, 1, 0, 0]);
}

#[test]
fn compresses_a_regular_series() {
    // Constant value every 15 s: a '0' bit for the time and one for the value.
    let samples: Vec<(i64, u64)> = (0..120)
        .map(|i| (1_700_000_000_000 + i * 15_000, 42.0f64.to_bits()))
        .collect();
    let bytes = encode(&samples);
    // 12 header bytes, 28 + 38 bits for the first two samples, 2 bits each
    // for the other 118: 50 bytes.
    assert!(bytes.len() <= 50, "constant chunk is {} bytes", bytes.len());
    round_trip(&samples);
}

#[test]
fn push_rejects_out_of_order_and_duplicates() {
    let mut enc = ChunkEncoder::new();
    enc.push(10, 1.0).unwrap();
    assert_eq!(
        enc.push(10, 2.0),
        Err(ChunkError::OutOfOrder { last: 10, got: 10 })
    );
    assert_eq!(
        enc.push(9, 2.0),
        Err(ChunkError::OutOfOrder { last: 10, got: 9 })
    );
    assert_eq!(enc.len(), 1);
    assert_eq!(enc.last(), Some((10, 1.0)));
    enc.push(11, 2.0).unwrap();
    assert_eq!((enc.min_time(), enc.max_time()), (Some(10), Some(11)));
    assert_eq!(decode(&enc.bytes()).unwrap(), vec![(10, 1.0), (11, 2.0)]);
}

#[test]
fn push_fails_when_full() {
    let mut enc = ChunkEncoder::new();
    for i in 0..MAX_ENCODED_SAMPLES as i64 {
        enc.push(i, 0.0).unwrap();
    }
    assert_eq!(enc.push(1 << 20, 0.0), Err(ChunkError::Full));
    assert_eq!(decode(&enc.bytes()).unwrap().len(), MAX_ENCODED_SAMPLES);
}

#[test]
fn appending_after_from_bytes_continues_the_chunk() {
    let mut a = ChunkEncoder::new();
    for i in 0..10 {
        a.push(i * 1000, i as f64 * 0.5).unwrap();
    }
    let mut b = ChunkEncoder::from_bytes(&a.bytes()).unwrap();
    a.push(20_000, 3.25).unwrap();
    b.push(20_000, 3.25).unwrap();
    assert_eq!(a.bytes(), b.bytes());
}

#[test]
fn malformed_chunks_are_errors() {
    // 0.1 + 0.2 is no decimal: encoding 1.
    let good = encode(&[
        (100, 1.0f64.to_bits()),
        (200, (0.1f64 + 0.2).to_bits()),
        (300, (0.1f64 + 0.2).to_bits()),
    ]);
    assert_eq!(header(&good).unwrap().encoding, Encoding::Gorilla);
    let f = assert_rejected;
    f(&[], ChunkError::Truncated);
    f(&[1], ChunkError::Truncated);
    f(&[1, 0], ChunkError::Truncated);
    f(&[0, 0, 0], ChunkError::BadEncoding(0));
    f(&[3, 0, 0], ChunkError::BadEncoding(3));
    f(&[255, 0, 0], ChunkError::BadEncoding(255));
    f(
        &[1, 0, 0, 0],
        ChunkError::Corrupt("bytes after an empty chunk"),
    );
    f(&[1, 0, 1, 0], ChunkError::Truncated);
    f(&[1, 0, 1, 0, 0], ChunkError::Truncated);
    f(
        &[1, 0, 2, 0, 0],
        ChunkError::Corrupt("time span does not fit the count"),
    );
    f(
        &[1, 0, 1, 0, 1],
        ChunkError::Corrupt("time span does not fit the count"),
    );
    f(&good[..good.len() - 1], ChunkError::Truncated);
    let mut extra = good.clone();
    extra.push(0);
    f(&extra, ChunkError::Corrupt("bytes after the last sample"));
    let mut more = good.clone();
    more[2] = 4;
    assert!(decode(&more).is_err());
    let mut span = good.clone();
    span[5] += 1; // [1, 0, 3, min_t 200 1, span 200 1, ..]
    f(
        &span,
        ChunkError::Corrupt("last timestamp differs from header"),
    );
    // A '10' value field with no window: count 1, t=0, value bits '10'.
    f(
        &[1, 0, 1, 0, 0, 0b1000_0000],
        ChunkError::Corrupt("value reuses a window before one was set"),
    );
    // A new window with L = 31 and m = 40.
    f(
        &[1, 0, 1, 0, 0, 0b1111_1111, 0b0100_0000, 0, 0, 0, 0, 0],
        ChunkError::Corrupt("value window wider than 64 bits"),
    );
}

#[test]
fn encoding_numbers_are_stable() {
    assert_eq!(Encoding::Gorilla as u8, 1);
    assert_eq!(Encoding::Decimal as u8, 2);
    assert_eq!(Encoding::try_from(1), Ok(Encoding::Gorilla));
    assert_eq!(Encoding::try_from(2), Ok(Encoding::Decimal));
    assert_eq!(header(&[1, 0, 0]).unwrap().encoding, Encoding::Gorilla);
    assert_eq!(header(&[2, 0, 0]).unwrap().encoding, Encoding::Decimal);
    assert_eq!(decode(&[2, 0, 0]), Ok(vec![]));
}

fn encoding_of(samples: &[(i64, f64)]) -> (Encoding, Vec<u8>) {
    let bits: Vec<(i64, u64)> = samples.iter().map(|&(t, v)| (t, v.to_bits())).collect();
    round_trip(&bits);
    let bytes = encode(&bits);
    (header(&bytes).unwrap().encoding, bytes)
}

/// The encoding 1 bytes of `samples`.
fn gorilla_bytes(samples: &[(i64, u64)]) -> Vec<u8> {
    let mut enc = ChunkEncoder::gorilla_only();
    for &(t, v) in samples {
        enc.push(t, f64::from_bits(v)).unwrap();
    }
    enc.bytes()
}

#[test]
fn decimal_layout_by_hand() {
    // n = 15, 25, 35 at scale 1; t = 0, 10, 20.
    // sample 0 value D = 15: '110' + 01111
    // sample 1 dod 10: '110' + 01010; value D = 10: '110' + 01010
    // sample 2 dod 0: '0'; value D = 0: '0'; then 6 padding bits.
    let (enc, bytes) = encoding_of(&[(0, 1.5), (10, 2.5), (20, 3.5)]);
    assert_eq!(enc, Encoding::Decimal);
    assert_eq!(
        bytes,
        vec![2, 0, 3, 0, 20, 1, 0b1100_1111, 0b1100_1010, 0b1100_1010, 0]
    );
    // Negative steps and the 64-bit bucket (2^63 scales to i64::MAX, which
    // converts back to 2^63).
    let samples = [
        (0, 0.0),
        (1, 2f64.powi(63)),
        (2, -1e18),
        (3, -2f64.powi(63)),
    ];
    let bits: Vec<(i64, u64)> = samples.iter().map(|&(t, v)| (t, v.to_bits())).collect();
    let mut enc = ChunkEncoder::new();
    for &(t, v) in &samples {
        enc.push(t, v).unwrap();
    }
    let dec = enc.decimal_bytes().expect("all are integers");
    let got: Vec<(i64, u64)> = decode(&dec)
        .unwrap()
        .into_iter()
        .map(|(t, v)| (t, v.to_bits()))
        .collect();
    assert_eq!(got, bits);
    round_trip(&bits);
}

#[test]
fn exact_decimals_pick_decimal_and_others_gorilla() {
    let f = |vs: &[f64], want: Encoding| {
        let samples: Vec<(i64, f64)> = vs
            .iter()
            .enumerate()
            .map(|(i, &v)| (1_700_000_000_000 + 15_000 * i as i64, v))
            .collect();
        assert_eq!(encoding_of(&samples).0, want, "values {vs:?}");
    };
    let stale = f64::from_bits(STALE);
    f(&[21.37, 21.41, 21.4, 21.38, 21.5], Encoding::Decimal);
    f(&[1e15, 1e15 + 1.0, 2f64.powi(60)], Encoding::Decimal);
    f(&[0.000_123, 0.000_124, 0.000_2], Encoding::Decimal);
    f(&[-3.5, -2.25, 100.125, -0.001], Encoding::Decimal);
    // Anything that does not come back bit-exactly forces encoding 1.
    f(&[21.37, 21.41, -0.0, 21.4], Encoding::Gorilla);
    f(&[21.37, 21.41, stale, 21.4], Encoding::Gorilla);
    f(&[21.37, f64::NAN, 21.4], Encoding::Gorilla);
    f(&[21.37, f64::INFINITY, 21.4], Encoding::Gorilla);
    f(&[21.37, f64::NEG_INFINITY], Encoding::Gorilla);
    f(&[21.37, 21.41, 0.1 + 0.2], Encoding::Gorilla);
    // One ulp off a decimal: 0.37000000000000005 needs 17 digits.
    f(&[0.36, 0.37f64.next_up()], Encoding::Gorilla);
    f(&[0.36, 0.37f64.next_down()], Encoding::Gorilla);
    f(&[1e-16, 2e-16], Encoding::Gorilla);
    f(&[f64::from_bits(1), 1.0], Encoding::Gorilla);
    f(&[-0.0], Encoding::Gorilla);
    f(&[stale], Encoding::Gorilla);
    f(&[f64::MAX], Encoding::Gorilla);
}

#[test]
fn decimal_scale_grows_with_the_values() {
    // Scale 0, then 1, 2, 3 as finer values arrive; the header byte after
    // min_t (0) and span (3) holds the final scale.
    let (enc, bytes) = encoding_of(&[(0, 1.0), (1, 1.5), (2, 1.25), (3, 1.125)]);
    assert_eq!(enc, Encoding::Decimal);
    assert_eq!(bytes[5], 3);
    // A chunk that starts fine and ends coarse keeps the fine scale.
    let (enc, bytes) = encoding_of(&[(0, 0.001), (1, 7.0), (2, 8.0)]);
    assert_eq!(enc, Encoding::Decimal);
    assert_eq!(bytes[5], 3);
    // Escalation past the last scale falls back to encoding 1.
    let (enc, _) = encoding_of(&[(0, 0.5), (1, 1e-15), (2, 1e-16)]);
    assert_eq!(enc, Encoding::Gorilla);
}

/// Checks that `samples` encode as the encoder's rule says: decimal when
/// every value is an exact decimal and the decimal stream takes at most
/// `GORILLA_CHECK_BITS` bits per sample, else the smaller of the two
/// (decimal on a tie); returns the chosen encoding.
fn check_choice(samples: &[(i64, u64)]) -> Encoding {
    let mut enc = ChunkEncoder::new();
    for &(t, v) in samples {
        enc.push(t, f64::from_bits(v)).unwrap();
    }
    let g = gorilla_bytes(samples);
    let cheap = enc.stream_bits() <= GORILLA_CHECK_BITS * samples.len();
    let want = match enc.decimal_bytes() {
        Some(d) if cheap || d.len() <= g.len() => d,
        _ => g,
    };
    assert_eq!(enc.bytes(), want);
    round_trip(samples);
    header(&want).unwrap().encoding
}

#[test]
fn picks_decimal_unless_gorilla_is_smaller_on_an_expensive_stream() {
    // Constant 0 at 1 ms: the fields are the same size, so decimal is one
    // byte (the scale) larger, and cheap: decimal.
    let zeros: Vec<(i64, u64)> = (0..120).map(|i| (i, 0)).collect();
    assert_eq!(check_choice(&zeros), Encoding::Decimal);
    assert_eq!(encode(&zeros).len(), gorilla_bytes(&zeros).len() + 1);
    // Values alternating between two far-apart decimals: 72 bits per
    // sample in decimal, so Gorilla is tried, and its XOR window reuse
    // beats the 64-bit deltas of deltas.
    let flip: Vec<(i64, u64)> = (0..120)
        .map(|i| {
            (
                i * 15_000,
                if i % 2 == 0 {
                    0.0f64
                } else {
                    123_456_789_012.0
                }
                .to_bits(),
            )
        })
        .collect();
    assert_eq!(check_choice(&flip), Encoding::Gorilla);
    // A 2-decimal random walk: decimal, several times smaller.
    let mut cents = 2_137i64;
    let walk: Vec<(i64, u64)> = (0..120)
        .map(|i| {
            cents += (i * 37 % 101) - 50;
            (i * 15_000, (cents as f64 / 100.0).to_bits())
        })
        .collect();
    assert_eq!(check_choice(&walk), Encoding::Decimal);
    assert!(encode(&walk).len() * 3 < gorilla_bytes(&walk).len());
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    /// Decimal-heavy chunks (integers scaled by 10^-k, with a few values
    /// one ulp off or special) get the encoding the rule says; the steps
    /// make streams on both sides of `GORILLA_CHECK_BITS`.
    #[test]
    fn encoding_follows_the_rule(
        k in 0u32..=17,
        start in -1_000_000i64..1_000_000,
        steps in proptest::collection::vec(-2_000i64..2_000, 1..150),
        odd in proptest::collection::vec((0usize..150, 0u8..4), 0..3),
    ) {
        let p = 10f64.powi(k as i32);
        let mut n = start;
        let mut samples: Vec<(i64, u64)> = steps
            .iter()
            .enumerate()
            .map(|(i, s)| {
                n += s;
                (i as i64 * 15_000 + s.rem_euclid(7), (n as f64 / p).to_bits())
            })
            .collect();
        for (i, kind) in odd {
            if let Some(s) = samples.get_mut(i) {
                s.1 = match kind {
                    0 => s.1.wrapping_add(1),
                    1 => s.1.wrapping_sub(1),
                    2 => STALE,
                    _ => (-0.0f64).to_bits(),
                };
            }
        }
        check_choice(&samples);
    }
}

#[test]
fn switching_to_gorilla_mid_chunk_keeps_every_sample() {
    let mut samples: Vec<(i64, u64)> = (0..60)
        .map(|i| (i * 15_000, (i as f64 * 0.25).to_bits()))
        .collect();
    samples.push((60 * 15_000, STALE));
    samples.extend((61..120).map(|i| (i * 15_000, (i as f64 * 0.25).to_bits())));
    let bytes = encode(&samples);
    assert_eq!(header(&bytes).unwrap().encoding, Encoding::Gorilla);
    round_trip(&samples);
}

#[test]
fn malformed_decimal_chunks_are_errors() {
    let good = encode(&[
        (0, 1.5f64.to_bits()),
        (10, 2.5f64.to_bits()),
        (20, 3.5f64.to_bits()),
    ]);
    assert_eq!(good[0], 2);
    let f = |bytes: &[u8], want: ChunkError| {
        assert_rejected(bytes, want);
        assert!(ChunkIter::new(bytes).map_or(true, |mut it| it.any(|r| r.is_err())));
    };
    // The scale byte is missing, or above 15.
    f(&good[..5], ChunkError::Truncated);
    let mut scale = good.clone();
    scale[5] = 16;
    f(&scale, ChunkError::Corrupt("decimal scale above 15"));
    f(
        &[2, 0, 0, 0],
        ChunkError::Corrupt("bytes after an empty chunk"),
    );
    f(&good[..good.len() - 1], ChunkError::Truncated);
    let mut extra = good.clone();
    extra.push(0);
    f(&extra, ChunkError::Corrupt("bytes after the last sample"));
    let mut pad = good.clone();
    *pad.last_mut().unwrap() |= 1;
    f(&pad, ChunkError::Corrupt("padding bits are not zero"));
    // Sample 1 with dod -10: '110' + 10110 (22 = -10 mod 32), t stays 0.
    let mut back = good.clone();
    back[7] = 0b1101_0110;
    f(&back, ChunkError::Corrupt("timestamps do not increase"));
    // Every scale decodes a valid stream to the same integers.
    for k in 0..=15u8 {
        let mut s = good.clone();
        s[5] = k;
        let got = decode(&s).unwrap();
        let want: Vec<f64> = [15.0, 25.0, 35.0]
            .iter()
            .map(|n| n / 10f64.powi(k.into()))
            .collect();
        assert_eq!(
            got.iter().map(|s| s.1).collect::<Vec<_>>(),
            want,
            "scale {k}"
        );
    }
}
