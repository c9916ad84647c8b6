//! Fuzz target: samples built from arbitrary bytes (raw bit patterns,
//! decimals of every scale, repeats, values one ulp away from a decimal)
//! encode to a chunk that decodes to the same bits through every reader,
//! whichever encoding the encoder picks, and that rebuilds to the same
//! bytes.
#![no_main]

use decoders::chunk::{decode, decode_into, header, ChunkEncoder};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut samples: Vec<(i64, u64)> = Vec::new();
    let mut t = i64::from_le_bytes([data.first().copied().unwrap_or(0), 0, 0, 0, 0, 0, 0, 0x80]);
    let mut prev = 0u64;
    for rec in data.chunks_exact(11) {
        let sel = rec[0];
        let gap = u16::from_le_bytes([rec[1], rec[2]]);
        let payload = u64::from_le_bytes(rec[3..11].try_into().expect("8 bytes"));
        let v = match sel % 5 {
            0 => payload,
            1 => {
                ((payload as i64 >> (sel >> 3)) as f64 / 10f64.powi(i32::from(sel >> 4))).to_bits()
            }
            2 => prev,
            3 => prev ^ 1,
            _ => (((payload as i32) as f64) / 100.0).to_bits(),
        };
        let Some(next) = t.checked_add(i64::from(gap) + 1) else {
            break;
        };
        t = next;
        samples.push((t, v));
        prev = v;
    }
    let mut enc = ChunkEncoder::new();
    for &(t, v) in &samples {
        enc.push(t, f64::from_bits(v))
            .expect("samples are in order");
    }
    let bytes = enc.bytes();
    let got: Vec<(i64, u64)> = decode(&bytes)
        .expect("an encoded chunk decodes")
        .into_iter()
        .map(|(t, v)| (t, v.to_bits()))
        .collect();
    assert_eq!(got, samples);
    let mut fast = Vec::new();
    decode_into(&bytes, &mut fast).expect("an encoded chunk decodes");
    assert!(fast
        .iter()
        .map(|s| (s.t, s.v.to_bits()))
        .eq(samples.iter().copied()));
    assert_eq!(header(&bytes).expect("valid header").count, samples.len());
    let again = ChunkEncoder::from_bytes(&bytes).expect("an encoded chunk rebuilds");
    assert_eq!(again.bytes(), bytes);
});
