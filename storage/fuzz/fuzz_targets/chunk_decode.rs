//! Fuzz target: arbitrary bytes given to the chunk decoder (either
//! encoding) give samples or an error, never a panic or an endless loop;
//! whatever decodes holds the header's sample count, the iterator and
//! `decode_into` agree with `decode`, and the samples re-encode to a chunk
//! that decodes to the same bits.
#![no_main]

use decoders::chunk::{decode, decode_into, header, ChunkEncoder, ChunkIter};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut fast = Vec::new();
    let fast_res = decode_into(data, &mut fast);
    let Ok(samples) = decode(data) else {
        assert!(fast_res.is_err() && fast.is_empty(), "decode_into agrees");
        return;
    };
    assert!(fast_res.is_ok(), "decode_into agrees");
    let h = header(data).expect("a chunk that decodes has a valid header");
    assert_eq!(samples.len(), h.count);
    assert!(samples.windows(2).all(|w| w[0].0 < w[1].0));
    let mut iter_count = 0usize;
    for (r, s) in ChunkIter::new(data)
        .expect("header checked above")
        .zip(&samples)
    {
        let (t, v) = r.expect("the iterator agrees with decode");
        assert_eq!((t, v.to_bits()), (s.0, s.1.to_bits()));
        iter_count += 1;
    }
    assert_eq!(iter_count, samples.len());
    assert!(fast
        .iter()
        .zip(&samples)
        .all(|(a, b)| a.t == b.0 && a.v.to_bits() == b.1.to_bits()));
    let mut enc = ChunkEncoder::new();
    for &(t, v) in &samples {
        enc.push(t, v).expect("decoded samples are in order");
    }
    let again = decode(&enc.bytes()).expect("a re-encoded chunk decodes");
    assert!(again
        .iter()
        .zip(&samples)
        .all(|(a, b)| a.0 == b.0 && a.1.to_bits() == b.1.to_bits()));
    assert_eq!(again.len(), samples.len());
});
