//! Fuzz target: arbitrary bytes given to the Raft entry payload decoder give
//! a batch or an error, never a panic; a batch that decodes re-encodes to
//! bytes that decode and re-encode to the same bytes (compared as bytes, as
//! NaN samples are not equal to themselves).
#![no_main]

use decoders::batch::WriteBatch;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(batch) = WriteBatch::decode(data) else {
        return;
    };
    let bytes = batch.to_bytes();
    let again = WriteBatch::decode(&bytes).expect("a re-encoded batch decodes");
    assert_eq!(again.to_bytes(), bytes);
});
