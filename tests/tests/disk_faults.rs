//! Issue 14: a failing disk. Once storage fails no write is acknowledged:
//! the node answers 503 saying why and stops (fail-stop: a failed write or
//! fsync cannot be retried safely, so it does not checkpoint on that disk
//! either). Started again on a healthy disk it has every acknowledged
//! sample.
//!
//! Two faults: `fdatasync`/`fsync` failing with EIO, injected with libfiu's
//! `fiu-run` (Debian's fiu-utils); and a disk that fills up, where writes
//! fail with ENOSPC. The full disk is a real one, a small tmpfs, not a
//! libfiu fault: libfiu's `posix/io/rw/write` fails every `write(2)` of the
//! process, including the eventfd that wakes tokio's I/O driver, which
//! panics and aborts the process at once; a full disk fails only the
//! writes of files on it.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tests::{now_ms, series, Client, Options, Silverback};

/// Acknowledged batches before the fault, of [`SERIES`] series each.
const BATCHES: i64 = 20;
const SERIES: usize = 10;

/// Writes [`BATCHES`] acknowledged batches of `metric{k="0".."9"}`, sample
/// `i` of each series at `t0 + i` seconds with value `i`.
async fn write_acknowledged(c: &Client, metric: &str, t0: i64) {
    for i in 0..BATCHES {
        let batch: Vec<_> = (0..SERIES)
            .map(|k| {
                series(
                    metric,
                    &[("k", &k.to_string())],
                    &[(t0 + i * 1000, i as f64)],
                )
            })
            .collect();
        let (st, body) = c.write(&batch).await.unwrap();
        assert_eq!(st, 204, "{body}");
    }
}

/// After the fault, writes batches of `width` series (a metric of their
/// own) until the node exits. None is acknowledged; the first answer is a
/// 503 whose body holds each of `cause`, and `/-/ready` answers 503 after
/// it (if the node still listens); the node exits with status 1. `log_file` is the node's log
/// (quoted when this fails).
async fn refused_until_stopped(
    node: &mut Silverback,
    metric: &str,
    t0: i64,
    width: usize,
    cause: &[&str],
    log_file: &Path,
) {
    let log = || {
        let text = std::fs::read_to_string(log_file).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    };
    let c = node.client();
    let late = format!("{metric}_late");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut answered = false;
    for i in 0.. {
        let batch: Vec<_> = (0..width)
            .map(|k| series(&late, &[("k", &k.to_string())], &[(t0 + i * 1000, 1.0)]))
            .collect();
        match c.write(&batch).await {
            Ok((204, _)) => panic!(
                "write {i} was acknowledged after the fault; log:\n{}",
                log()
            ),
            Ok((st, body)) => {
                assert_eq!(st, 503, "{body}");
                if !answered {
                    for want in cause {
                        assert!(body.contains(want), "{want:?} not in {body:?}");
                    }
                    // Not ready, or already stopped.
                    if let Ok((st, body)) = c.get_text("/-/ready").await {
                        assert_eq!(st, 503, "{body}");
                        assert!(body.contains("storage failed"), "{body}");
                    }
                    answered = true;
                }
            }
            Err(e) => assert!(
                answered,
                "the node stopped before answering a write after the fault: {e:#}; log:\n{}",
                log()
            ),
        }
        if let Some(report) = node.exit_report() {
            assert!(answered, "{report}");
            assert!(report.contains("exit status: 1"), "{report}\n{}", log());
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the node still runs 30 s after its storage failed; log:\n{}",
            log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The restarted node has every acknowledged sample of `metric`, with
/// its value, and takes writes again.
async fn assert_all_back(node: &Silverback, metric: &str, t0: i64) {
    let c = node.client();
    let t = (t0 + BATCHES * 1000) as f64 / 1000.0;
    let range = format!("{}s", BATCHES + 1);
    let v = c
        .query(&format!("count_over_time({metric}[{range}])"), t)
        .await
        .unwrap();
    let per_series = v["data"]["result"].as_array().expect("a vector");
    assert_eq!(per_series.len(), SERIES, "{v}");
    for s in per_series {
        assert_eq!(s["value"][1], BATCHES.to_string(), "{v}");
    }
    let v = c
        .query(&format!("sum(sum_over_time({metric}[{range}]))"), t)
        .await
        .unwrap();
    let sum = (0..BATCHES).sum::<i64>() * SERIES as i64;
    assert_eq!(v["data"]["result"][0]["value"][1], sum.to_string(), "{v}");
    let (st, body) = c
        .write(&[series(metric, &[("k", "after")], &[(now_ms(), 1.0)])])
        .await
        .unwrap();
    assert_eq!(st, 204, "{body}");
}

#[tokio::test]
async fn failed_fsync_stops_the_node_and_loses_nothing_acknowledged() {
    let ctl = tempfile::tempdir().unwrap();
    let ctl_base = ctl.path().join("fiu");
    let o = Options {
        shards: 2,
        wrapper: vec![
            "fiu-run".into(),
            "-x".into(),
            "-f".into(),
            ctl_base.display().to_string(),
        ],
        ..Options::default()
    };
    let mut node = Silverback::start(o)
        .await
        .expect("silverback starts under fiu-run (Debian package fiu-utils)");
    let t0 = now_ms() - 600_000;
    write_acknowledged(&node.client(), "fsync_fault", t0).await;

    let pid = node.pid().expect("running").to_string();
    for point in ["posix/io/sync/fdatasync", "posix/io/sync/fsync"] {
        let out = Command::new("fiu-ctrl")
            .args(["-f", &ctl_base.display().to_string()])
            .args(["-c", &format!("enable name={point},failinfo=5")])
            .arg(&pid)
            .output()
            .expect("fiu-ctrl runs");
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "fiu-ctrl: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let cause = ["storage failed", "fdatasync"];
    let log = node.log_path();
    refused_until_stopped(&mut node, "fsync_fault", t0, SERIES, &cause, &log).await;
    let log = node.log_tail(400);
    assert!(log.contains("FATAL: storage failed"), "{log}");

    // Restarted without faults (the supervisor's job).
    node.set_wrapper(Vec::new());
    node.restart().await.unwrap();
    assert_all_back(&node, "fsync_fault", t0).await;
}

/// A 64 MiB tmpfs in a user and mount namespace of its own (unprivileged:
/// `unshare --user --map-root-user`), kept by a holder process so that
/// what a node stores there outlives the node. [`SmallDisk::wrapper`] runs
/// a command inside; from outside the files are reached through
/// `/proc/<holder>/root`.
struct SmallDisk {
    holder: Child,
    mount: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmallDisk {
    fn new() -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let mount = dir.path().join("disk");
        std::fs::create_dir(&mount).unwrap();
        // The holder lives until its stdin closes: until it is killed on
        // drop, or the test process dies.
        let mut holder = Command::new("unshare")
            .args(["--user", "--map-root-user", "--mount", "sh", "-c"])
            .arg(
                "mount -t tmpfs -o size=64m silverback-test \"$0\" \
                 && echo mounted && read _",
            )
            .arg(&mount)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("unshare runs (util-linux)");
        let mut line = String::new();
        let out = holder.stdout.take().expect("piped");
        BufReader::new(out).read_line(&mut line).unwrap();
        assert_eq!(
            line.trim(),
            "mounted",
            "cannot mount a tmpfs in a user namespace (are unprivileged user namespaces off?)"
        );
        SmallDisk {
            holder,
            mount,
            _dir: dir,
        }
    }

    /// `path` (a path inside the namespace) as seen from outside.
    fn outside(&self, path: &Path) -> PathBuf {
        let pid = self.holder.id();
        PathBuf::from(format!("/proc/{pid}/root{}", path.display()))
    }

    /// Runs the command after it inside the namespace, its stderr appended
    /// to `log` (inside).
    fn wrapper(&self, log: &Path) -> Vec<String> {
        let pid = self.holder.id().to_string();
        let redirect = format!("exec \"$@\" 2>>'{}'", log.display());
        [
            "nsenter", "-t", &pid, "-U", "-m", "--", "sh", "-c", &redirect, "sh",
        ]
        .map(String::from)
        .to_vec()
    }

    /// Fills the disk with a file: writes until the kernel answers ENOSPC.
    fn fill(&self) {
        let mut f = std::fs::File::create(self.outside(&self.mount.join("filler"))).unwrap();
        let block = vec![0u8; 1 << 20];
        loop {
            if let Err(e) = f.write_all(&block) {
                assert_eq!(e.raw_os_error(), Some(28), "ENOSPC expected, got {e}");
                return;
            }
        }
    }

    /// Frees what [`SmallDisk::fill`] took.
    fn free(&self) {
        std::fs::remove_file(self.outside(&self.mount.join("filler"))).unwrap();
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

/// The disk fills up while the node takes writes; its log is on that disk
/// too, so the answer to the write is all that reports it. The
/// `--min-free-disk-bytes` guard (tested in write_limits.rs) is off: the
/// disk fills faster than it looks, and this is what happens then.
#[tokio::test]
async fn full_disk_stops_the_node_and_loses_nothing_acknowledged() {
    let disk = SmallDisk::new();
    let log = disk.mount.join("silverback.log");
    let mut o = Options {
        shards: 2,
        wrapper: disk.wrapper(&log),
        data_dir: Some(disk.mount.join("data")),
        ..Options::default()
    };
    o.extra_args
        .extend(["--min-free-disk-bytes".into(), "0".into()]);
    let mut node = Silverback::start(o).await.expect("silverback starts");
    let t0 = now_ms() - 600_000;
    write_acknowledged(&node.client(), "enospc", t0).await;

    disk.fill();
    // A batch of 1000 series does not fit in what the WAL file's last
    // page has left (a tmpfs allocates 4 KiB pages).
    let cause = ["storage failed", "No space left on device"];
    refused_until_stopped(&mut node, "enospc", t0, 1000, &cause, &disk.outside(&log)).await;

    // Space freed, started again.
    disk.free();
    node.restart().await.unwrap();
    assert_all_back(&node, "enospc", t0).await;
}
