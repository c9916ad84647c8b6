//! Crash safety: a child process applies batches and checkpoints in a loop
//! and is SIGKILLed mid-apply; reopening must show exactly the state of the
//! last completed checkpoint, and replay must continue from there.
//!
//! The child is this test binary re-executed with `SILVERBACK_CRASH_DIR` set,
//! running the `crash_child` test (which returns at once without it).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use storage::{Db, StorageOptions};

const ENV: &str = "SILVERBACK_CRASH_DIR";
const SERIES: u64 = 40;
const EVERY: u64 = 3;

#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(ENV) else { return };
    let db = Db::open(std::path::Path::new(&dir), StorageOptions::default()).unwrap();
    let sh = db.shard(0).unwrap();
    let mut i = sh.applied_index() + 1;
    loop {
        sh.apply(i, &det_batch(i, SERIES)).unwrap();
        if i.is_multiple_of(EVERY) {
            sh.set_user_meta(i.to_be_bytes().to_vec());
            sh.checkpoint().unwrap();
            println!("CKPT {i}");
        }
        i += 1;
    }
}

/// Runs the child until it reported `ckpts` checkpoints (plus `extra_ms`),
/// SIGKILLs it, and returns the last checkpoint index it reported.
fn run_child(dir: &std::path::Path, ckpts: usize, extra_ms: u64) -> u64 {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(ENV, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut last = 0;
    let mut seen = 0;
    for line in lines.by_ref() {
        if let Some(n) = line.unwrap().strip_prefix("CKPT ") {
            last = n.trim().parse().unwrap();
            seen += 1;
            if seen == ckpts {
                break;
            }
        }
    }
    std::thread::sleep(Duration::from_millis(extra_ms));
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    for line in lines {
        let Ok(line) = line else { break };
        if let Some(n) = line.strip_prefix("CKPT ") {
            if let Ok(n) = n.trim().parse() {
                last = n;
            }
        }
    }
    last
}

#[test]
fn sigkill_mid_apply_keeps_the_last_checkpoint_bit_exactly() {
    let dir = tempfile::tempdir().unwrap();
    for (round, (ckpts, extra)) in [(4usize, 7u64), (3, 13)].into_iter().enumerate() {
        let reported = run_child(dir.path(), ckpts, extra);
        let db = Db::open(dir.path(), StorageOptions::default()).unwrap();
        let sh = db.shard(0).unwrap();
        let applied = sh.applied_index();
        // a checkpoint may complete after its line was lost with the kill
        assert!(
            applied >= reported,
            "round {round}: applied {applied} < reported {reported}"
        );
        assert_eq!(
            applied % EVERY,
            0,
            "applied index {applied} is not a checkpoint"
        );
        assert_eq!(sh.user_meta(), Some(applied.to_be_bytes().to_vec()));

        // the same entries applied to a fresh store give the same state
        let (_d2, fresh) = open(StorageOptions::default());
        let want = fresh.shard(0).unwrap();
        for i in 1..=applied {
            want.apply(i, &det_batch(i, SERIES)).unwrap();
        }
        assert_eq!(dump(&sh), dump(&want), "round {round}");
        // replay continues from applied_index(): appends go on identically
        for i in applied + 1..=applied + 4 {
            let a = sh.apply(i, &det_batch(i, SERIES)).unwrap();
            let b = want.apply(i, &det_batch(i, SERIES)).unwrap();
            assert_eq!(a, b);
            assert_eq!(a.rejected_count(), 0);
        }
        assert_eq!(dump(&sh), dump(&want));
        // leave the store at its checkpoint for the next round (no checkpoint
        // of the replayed entries: the next child replays them again)
    }
}
