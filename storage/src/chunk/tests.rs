//! Table tests of edge cases; the property tests live in
//! `storage/tests/chunk_props.rs`.

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
    // 1 sample at t=-1 with value 0.0: zig-zag(-1) = 1, span 0, one '0' bit.
    assert_eq!(encode(&[(-1, 0)]), vec![1, 0, 1, 1, 0, 0]);
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
    let good = encode(&[
        (100, 1.0f64.to_bits()),
        (200, 2.0f64.to_bits()),
        (300, 2.0f64.to_bits()),
    ]);
    let f = |bytes: &[u8], want: ChunkError| {
        let got = decode(bytes).err();
        assert_eq!(got, Some(want.clone()), "bytes {bytes:?}");
        let mut out = Vec::new();
        assert_eq!(
            decode_into(bytes, &mut out).err(),
            Some(want),
            "decode_into {bytes:?}"
        );
        assert!(out.is_empty());
    };
    f(&[], ChunkError::Truncated);
    f(&[1], ChunkError::Truncated);
    f(&[1, 0], ChunkError::Truncated);
    f(&[0, 0, 0], ChunkError::BadEncoding(0));
    f(&[2, 0, 0], ChunkError::BadEncoding(2));
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
    assert_eq!(Encoding::try_from(1), Ok(Encoding::Gorilla));
    assert_eq!(header(&[1, 0, 0]).unwrap().encoding, Encoding::Gorilla);
}
