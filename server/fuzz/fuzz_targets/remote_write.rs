//! Fuzz target: arbitrary bytes as a remote-write body, compressed or
//! not. Snappy decoding refuses or stays within its limit; the borrowing
//! protobuf reader reads or refuses the bytes without panicking, and every
//! shard batch it builds decodes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use server::config::Limits;
use server::ingest::cache::IngestCache;
use server::ingest::remote_write::{decompress, feed, reread};
use server::ingest::shards::{ShardBatches, TimeWindow};

const ALL_TIME: TimeWindow = TimeWindow {
    min_t: i64::MIN,
    max_t: i64::MAX,
};

fn read(raw: &[u8]) {
    let limits = Limits::default();
    let cache = IngestCache::new(1000);
    let mut b = ShardBatches::new(&limits, &cache, 8, ALL_TIME, reread);
    let _ = feed(raw, &mut b, &limits);
    for (_, bytes) in b.into_batches() {
        assert!(
            storage::WriteBatch::decode(&bytes).is_ok(),
            "a built batch decodes"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    read(data);
    if let Ok(raw) = decompress(data, 1 << 20) {
        assert!(raw.len() <= 1 << 20, "decompression stays within its limit");
        read(&raw);
    }
});
