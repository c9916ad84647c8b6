//! Issue 14: a failing disk. The node runs under libfiu's `fiu-run`
//! (Debian's fiu-utils), which makes `fdatasync` and `fsync` fail with EIO
//! on command. From then on no write is acknowledged: the node answers 503
//! saying storage failed and stops (fail-stop: a failed fsync cannot be
//! retried safely, so it does not checkpoint on that disk either). Started
//! again on a healthy disk it recovers every acknowledged sample.

use std::time::{Duration, Instant};

use tests::{now_ms, series, Options, Silverback};

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
    let c = node.client();
    let t0 = now_ms() - 60_000;
    let mut acked = 0;
    for i in 0..20 {
        let batch: Vec<_> = (0..10)
            .map(|k| {
                series(
                    "fsync_fault",
                    &[("k", &k.to_string())],
                    &[(t0 + i * 1000, i as f64)],
                )
            })
            .collect();
        let (st, body) = c.write(&batch).await.unwrap();
        assert_eq!(st, 204, "{body}");
        acked += 10;
    }

    let pid = node.pid().expect("running").to_string();
    for point in ["posix/io/sync/fdatasync", "posix/io/sync/fsync"] {
        let out = std::process::Command::new("fiu-ctrl")
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

    // No write is acknowledged any more; the answer says why once the
    // node has seen its storage fail, and the node then exits non-zero.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut said_storage = false;
    let mut exited = None;
    let mut i = 100;
    while Instant::now() < deadline {
        i += 1;
        let w = c
            .write(&[series(
                "fsync_fault",
                &[("k", "late")],
                &[(t0 + i * 1000, 1.0)],
            )])
            .await;
        match w {
            Ok((204, _)) => panic!("a write was acknowledged after fsync started failing"),
            Ok((503, body)) if body.contains("storage failed") => said_storage = true,
            Ok((st, body)) => assert_eq!(st, 503, "{body}"),
            Err(_) => {} // the node has stopped listening
        }
        if let Some(report) = node.exit_report() {
            exited = Some(report);
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let report = exited.unwrap_or_else(|| {
        panic!(
            "the node stops after its storage failed; log:\n{}",
            node.log_tail(20)
        )
    });
    assert!(report.contains("exit status: 1"), "{report}");
    let log = node.log_tail(400);
    assert!(log.contains("storage failed"), "{log}");
    assert!(
        said_storage || log.contains("FATAL"),
        "the failure was reported; log:\n{log}"
    );

    // Restarted without faults (the supervisor's job), it has every
    // acknowledged sample.
    node.set_wrapper(Vec::new());
    node.restart().await.unwrap();
    let c = node.client();
    let v = c
        .query(
            "sum(count_over_time(fsync_fault{k!=\"late\"}[10m]))",
            now_ms() as f64 / 1000.0,
        )
        .await
        .unwrap();
    assert_eq!(v["data"]["result"][0]["value"][1], acked.to_string(), "{v}");
}
