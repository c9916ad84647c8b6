//! Bytes from the network (Raft entries, snapshots from peers) never panic
//! the engine and never damage a shard.

mod common;

use common::*;
use proptest::prelude::*;
use storage::{StorageOptions, WriteBatch};

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn batch_decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = WriteBatch::decode(&bytes);
        // with a valid header too, so the fuzzing reaches the body
        let mut b = vec![1u8, 1];
        b.extend_from_slice(&bytes);
        if let Ok(batch) = WriteBatch::decode(&b) {
            // whatever decodes, re-encodes and decodes to the same batch
            let again = WriteBatch::decode(&batch.to_bytes()).unwrap();
            prop_assert_eq!(format!("{again:?}"), format!("{batch:?}"));
        }
    }

    #[test]
    fn batch_mutations_never_panic(pos in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut b = det_batch(3, 4).to_bytes();
        let i = pos.index(b.len());
        b[i] = byte;
        let _ = WriteBatch::decode(&b);
    }
}

fn valid_snapshot() -> Vec<Vec<u8>> {
    let (_d, db) = open(StorageOptions::default());
    let sh = db.shard(4).unwrap();
    for i in 1..=4 {
        sh.apply(i, &det_batch(i, 30)).unwrap();
    }
    sh.snapshot().unwrap().collect::<Result<_, _>>().unwrap()
}

#[test]
fn restore_rejects_garbage_and_keeps_previous_data() {
    let snap = valid_snapshot();
    let (_d, db) = open(StorageOptions::default());
    let sh = db.shard(1).unwrap();
    sh.apply(1, &batch(&lbl("keep", &[]), &[(1, 1.0), (2, 2.0)]))
        .unwrap();
    sh.checkpoint().unwrap();
    let before = dump(&sh);
    let joined = snap.concat();
    let check = |parts: Vec<Vec<u8>>, what: &str| {
        let r = sh.restore(parts.into_iter().map(Ok));
        assert!(r.is_err(), "{what}: accepted");
        assert_eq!(r.unwrap_err().kind(), storage::ErrorKind::BadData, "{what}");
        assert_eq!(dump(&sh), before, "{what}: data changed");
        assert_eq!(sh.applied_index(), 1);
    };
    // truncated at many places
    for cut in (0..joined.len()).step_by(joined.len() / 40 + 1) {
        check(vec![joined[..cut].to_vec()], &format!("cut at {cut}"));
    }
    // a part missing, a part repeated
    if snap.len() > 2 {
        let mut v = snap.clone();
        v.remove(1);
        check(v, "part missing");
    }
    let mut v = snap.clone();
    v.insert(1, snap[1].clone());
    check(v, "part repeated");
    // an error from the transport
    let r = sh.restore(
        vec![
            Ok(snap[0].clone()),
            Err(storage::StorageError::BadSnapshot("net".into())),
        ]
        .into_iter(),
    );
    assert!(r.is_err());
    assert_eq!(dump(&sh), before);
    // and the valid one still works afterwards
    sh.restore(snap.into_iter().map(Ok)).unwrap();
    assert_eq!(sh.applied_index(), 4);
    assert_eq!(sh.stats().series, 30);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn restore_of_random_or_flipped_bytes_fails_cleanly(
        junk in proptest::collection::vec(any::<u8>(), 0..200),
        pos in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let (_d, db) = open(StorageOptions::default());
        let sh = db.shard(1).unwrap();
        sh.apply(1, &batch(&lbl("keep", &[]), &[(1, 1.0)])).unwrap();
        let before = dump(&sh);
        prop_assert!(sh.restore(std::iter::once(Ok(junk))).is_err());
        prop_assert_eq!(dump(&sh), before.clone());
        let mut bytes = SNAP.with(|s| s.concat());
        let i = pos.index(bytes.len());
        bytes[i] ^= flip;
        prop_assert!(sh.restore(std::iter::once(Ok(bytes))).is_err());
        prop_assert_eq!(dump(&sh), before);
    }
}

thread_local! {
    static SNAP: Vec<Vec<u8>> = valid_snapshot();
}
