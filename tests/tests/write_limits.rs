//! Real-process tests of the write path's resource limits (issue 14): the
//! series limits (`--max-series`, `--max-series-per-metric`) and the cap
//! on remote-write bytes in flight (`--max-inflight-write-bytes`).

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use tests::{now_ms, series, Options, Silverback};

fn opts(args: &[&str]) -> Options {
    let mut o = Options {
        // one shard: its share of each limit is the whole limit
        shards: 1,
        ..Options::default()
    };
    o.extra_args.extend(args.iter().map(|s| s.to_string()));
    o
}

async fn rejected(c: &tests::Client, reason: &str) -> String {
    let (_, metrics) = c.get_text("/metrics").await.unwrap();
    let key = format!("silverback_ingest_rejected_samples_total{{reason=\"{reason}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&key))
        .unwrap_or("none")
        .to_string()
}

/// Writes one sample of series `name` at `t` every 100 ms, up to 100
/// times, until the answer has status `want`; its body, or `None`.
async fn write_until(c: &tests::Client, name: &str, t: i64, want: u16) -> Option<String> {
    for _ in 0..100 {
        let (st, body) = c.write(&[series(name, &[], &[(t, 2.0)])]).await.unwrap();
        if st == want {
            return Some(body);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// A new series beyond a limit is refused with a 400 naming it and the
/// limit; series that exist keep taking samples; the limits hold after a
/// crash (the counts are the shard's own, rebuilt from disk and the log).
#[tokio::test]
async fn series_limits_refuse_new_series_with_400() {
    let mut node = Silverback::start(opts(&["--max-series", "3", "--max-series-per-metric", "2"]))
        .await
        .unwrap();
    let c = node.client();
    let t = now_ms();
    let (st, body) = c
        .write(&[
            series("lim_a", &[("i", "1")], &[(t, 1.0)]),
            series("lim_a", &[("i", "2")], &[(t, 1.0)]),
            series("lim_a", &[("i", "3")], &[(t, 1.0)]),
            series("lim_b", &[], &[(t, 1.0)]),
        ])
        .await
        .unwrap();
    assert_eq!(st, 400, "{body}");
    assert!(
        body.contains("per-metric series limit reached")
            && body.contains("lim_a")
            && body.contains("max-series-per-metric"),
        "{body}"
    );
    let v = c
        .query("count(lim_a) + count(lim_b)", t as f64 / 1000.0)
        .await
        .unwrap();
    assert_eq!(v["data"]["result"][0]["value"][1], "3", "{v}");

    let (st, body) = c.write(&[series("lim_c", &[], &[(t, 1.0)])]).await.unwrap();
    assert_eq!(st, 400, "{body}");
    assert!(
        body.contains("series limit reached") && body.contains("lim_c"),
        "{body}"
    );
    assert_eq!(rejected(&c, "series_limit").await, "1");
    assert_eq!(rejected(&c, "metric_series_limit").await, "1");

    // existing series still take samples
    let (st, body) = c
        .write(&[
            series("lim_a", &[("i", "1")], &[(t + 1000, 2.0)]),
            series("lim_b", &[], &[(t + 1000, 2.0)]),
        ])
        .await
        .unwrap();
    assert_eq!(st, 204, "{body}");

    // SIGKILL: the counts come back from disk plus the replayed log
    node.kill();
    node.restart().await.unwrap();
    let c = node.client();
    let (st, body) = c
        .write(&[
            series("lim_c", &[], &[(t + 2000, 1.0)]),
            series("lim_a", &[("i", "2")], &[(t + 2000, 3.0)]),
        ])
        .await
        .unwrap();
    assert_eq!(st, 400, "after restart: {body}");
    assert!(body.contains("lim_c"), "{body}");
    let v = c.query("lim_a", (t + 2000) as f64 / 1000.0).await.unwrap();
    assert_eq!(v["data"]["result"].as_array().map(Vec::len), Some(2), "{v}");
}

/// While one request holds the in-flight budget (its body arriving
/// slowly), another is answered 429; once the first is gone, writes go
/// through again.
#[tokio::test]
async fn inflight_write_bytes_are_capped_with_429() {
    let node = Silverback::start(opts(&["--max-inflight-write-bytes", "65536"]))
        .await
        .unwrap();
    let c = node.client();
    let t = now_ms();
    let (st, body) = c
        .write(&[series("flight", &[], &[(t, 1.0)])])
        .await
        .unwrap();
    assert_eq!(st, 204, "{body}");

    // A client declares a 64 KiB body (the whole budget) and sends 10 bytes
    // of it. It holds the budget once the server has its headers; if one
    // of our writes was in flight just then, it was refused itself (and
    // answered at once): start over.
    let mut refused = None;
    let mut slow = None;
    for _ in 0..20 {
        let mut conn = TcpStream::connect(node.http).await.unwrap();
        let head = format!(
            "POST /api/v1/write HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-protobuf\r\n\
             Content-Encoding: snappy\r\nContent-Length: 65536\r\n\r\n",
            node.http
        );
        conn.write_all(head.as_bytes()).await.unwrap();
        conn.write_all(&[0u8; 10]).await.unwrap();
        conn.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut buf = [0u8; 64];
        if let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_millis(50), conn.read(&mut buf)).await
        {
            if n > 0 {
                continue; // answered: it did not get the budget
            }
        }
        let (st, body) = c
            .write(&[series("flight", &[], &[(t + 1000, 2.0)])])
            .await
            .unwrap();
        if st == 429 {
            refused = Some(body);
            slow = Some(conn);
            break;
        }
    }
    let body = refused.expect("a write while the budget is held is answered 429");
    assert!(body.contains("max-inflight-write-bytes"), "{body}");
    let (_, metrics) = c.get_text("/metrics").await.unwrap();
    assert!(
        metrics.lines().any(
            |l| l.starts_with("silverback_ingest_throttled_requests_total ") && !l.ends_with(" 0")
        ),
        "{metrics}"
    );

    drop(slow);
    assert!(
        write_until(&c, "flight", t + 1000, 204).await.is_some(),
        "writes go through once the slow request is gone"
    );
}

/// Bytes available on the file system holding `dir`, as `df` reports them.
fn available(dir: &std::path::Path) -> u64 {
    let out = std::process::Command::new("df")
        .args(["-B1", "--output=avail"])
        .arg(dir)
        .output()
        .expect("df runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .expect("df prints the available bytes")
}

/// When the data volume's free space drops below `--min-free-disk-bytes`,
/// the node refuses writes with 503 "disk full" and reports not ready,
/// while reads go on; once space is freed it takes writes again by itself,
/// with nothing lost. (The volume is filled with `fallocate`, so the test
/// needs no mount; the margin keeps other tests' writes from mattering.)
#[tokio::test]
async fn disk_full_refuses_writes_and_resumes() {
    let tmp = std::env::temp_dir();
    let free = available(&tmp);
    let fill = (2u64 << 30).min(free / 2);
    let threshold = free - fill / 2;
    let node = Silverback::start(opts(&["--min-free-disk-bytes", &threshold.to_string()]))
        .await
        .unwrap();
    let c = node.client();
    let t = now_ms();
    let (st, body) = c
        .write(&[series("diskfull", &[], &[(t, 1.0)])])
        .await
        .unwrap();
    assert_eq!(st, 204, "{body}");

    let junk = node.data_dir().with_extension("junk");
    let ok = std::process::Command::new("fallocate")
        .args(["-l", &fill.to_string()])
        .arg(&junk)
        .status()
        .expect("fallocate runs");
    assert!(ok.success(), "fallocate {fill} bytes");
    let body = write_until(&c, "diskfull", t + 1000, 503)
        .await
        .expect("a write on a full disk is answered 503");
    assert!(
        body.contains("disk full") && body.contains("min-free-disk-bytes"),
        "{body}"
    );
    let (st, body) = c.get_text("/-/ready").await.unwrap();
    assert_eq!(st, 503, "{body}");
    assert!(body.contains("disk full"), "{body}");
    let (_, status) = c.get("/api/v1/status/cluster", &[]).await.unwrap();
    assert!(status.to_string().contains("disk full"), "{status}");
    // reads go on
    let v = c.query("diskfull", t as f64 / 1000.0).await.unwrap();
    assert_eq!(v["data"]["result"][0]["value"][1], "1", "{v}");

    std::fs::remove_file(&junk).unwrap();
    assert!(
        write_until(&c, "diskfull", t + 1000, 204).await.is_some(),
        "writes resume once space is freed"
    );
    let (st, _) = c.get_text("/-/ready").await.unwrap();
    assert_eq!(st, 200);
    let v = c
        .query("count_over_time(diskfull[1m])", (t + 1000) as f64 / 1000.0)
        .await
        .unwrap();
    assert_eq!(v["data"]["result"][0]["value"][1], "2", "{v}");
}
