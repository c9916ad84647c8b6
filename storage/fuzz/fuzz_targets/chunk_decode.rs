//! Fuzz target: arbitrary bytes given to the chunk decoder give samples or
//! an error, never a panic or an endless loop; whatever decodes holds the
//! header's sample count, and the iterator agrees with `decode`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(samples) = storage::chunk::decode(data) else {
        return;
    };
    let h = storage::chunk::header(data).expect("a chunk that decodes has a valid header");
    assert_eq!(samples.len(), h.count);
    let mut iter_count = 0usize;
    for r in storage::chunk::ChunkIter::new(data).expect("header checked above") {
        r.expect("the iterator agrees with decode");
        iter_count += 1;
    }
    assert_eq!(iter_count, samples.len());
});
