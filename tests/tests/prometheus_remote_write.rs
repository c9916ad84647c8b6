//! The real client: Debian's `prometheus` scrapes a tiny target served by
//! this test and remote-writes to Silverback; after a while the same PromQL
//! in both returns the same result (issue 5).
//!
//! Needs the `prometheus` binary on PATH (`apt-get install prometheus`); the
//! test fails, with that message, when it is missing.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tests::{free_port, Client, Options, Silverback};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Serves a fixed exposition whose counter grows by 1 per scrape.
async fn serve_target(listener: tokio::net::TcpListener, hits: Arc<AtomicU64>) {
    loop {
        let Ok((mut sock, _)) = listener.accept().await else {
            return;
        };
        let hits = hits.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            let _ = sock.read(&mut buf).await;
            let n = hits.fetch_add(1, Ordering::SeqCst) + 1;
            let body = format!(
                "# HELP served_total Scrapes served.\n# TYPE served_total counter\nserved_total {n}\n\
                 # HELP fixed_gauge A constant.\n# TYPE fixed_gauge gauge\nfixed_gauge{{room=\"a\"}} 42.5\nfixed_gauge{{room=\"b\"}} -1e-3\n\
                 # TYPE lat histogram\nlat_bucket{{le=\"0.1\"}} {n}\nlat_bucket{{le=\"1\"}} {}\nlat_bucket{{le=\"+Inf\"}} {}\nlat_sum {}\nlat_count {}\n",
                2 * n,
                3 * n,
                n as f64 * 0.7,
                3 * n
            );
            let resp = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = sock.write_all(resp.as_bytes()).await;
        });
    }
}

struct Prometheus(Child);

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn prometheus_binary() -> String {
    for p in ["prometheus", "/usr/bin/prometheus"] {
        if Command::new(p)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
        {
            return p.to_string();
        }
    }
    panic!(
        "the `prometheus` binary is not installed; this test runs the real Prometheus as the \
         remote-write client. Install it with `apt-get install prometheus` (scripts/install-deps.sh does)"
    );
}

async fn result(c: &Client, q: &str, t: f64) -> Value {
    let mut v = c.query(q, t).await.unwrap()["data"].clone();
    if let Some(arr) = v["result"].as_array_mut() {
        arr.sort_by_key(|x| x["metric"].to_string());
    }
    v
}

async fn range(c: &Client, q: &str, s: f64, e: f64) -> Value {
    let mut v = c.query_range(q, s, e, 1.0).await.unwrap()["data"].clone();
    if let Some(arr) = v["result"].as_array_mut() {
        arr.sort_by_key(|x| x["metric"].to_string());
    }
    v
}

#[tokio::test]
async fn prometheus_remote_writes_and_queries_agree() {
    let bin = prometheus_binary();
    let sb = Silverback::start(Options::default()).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = listener.local_addr().unwrap();
    tokio::spawn(serve_target(listener, Arc::new(AtomicU64::new(0))));

    let dir = tempfile::tempdir().unwrap();
    let prom_port = free_port().unwrap();
    let cfg = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
         scrape_configs:\n  - job_name: target\n    static_configs:\n      - targets: ['{target}']\n\
         remote_write:\n  - url: {}/api/v1/write\n    queue_config:\n      batch_send_deadline: 500ms\n      min_backoff: 100ms\n      max_backoff: 1s\n    metadata_config:\n      send_interval: 1s\n",
        sb.url()
    );
    let cfg_path = dir.path().join("prometheus.yml");
    std::fs::write(&cfg_path, cfg).unwrap();
    let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
    let prom = Prometheus(
        Command::new(bin)
            .arg(format!("--config.file={}", cfg_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("cannot start prometheus"),
    );
    let pc = Client::new(&format!("http://127.0.0.1:{prom_port}"));
    let sc = sb.client();

    // Compare at a time t both have, once the series are older than every
    // window below: Debian's Prometheus is 2.42, whose `rate` extrapolation
    // near a counter's first sample (the zero-point check) differs from the
    // Prometheus 3 semantics Silverback implements.
    let started = Instant::now();
    let t = loop {
        let t = (tests::now_ms() as f64 / 1000.0).floor() - 3.0;
        // Prometheus answers once it is up; until then, wait.
        let history = pc
            .query("count_over_time(served_total[15s])", t)
            .await
            .map(|v| v["data"].clone())
            .unwrap_or_default();
        let old_enough = history["result"][0]["value"][1]
            .as_str()
            .and_then(|v| v.parse::<f64>().ok())
            .is_some_and(|n| n >= 12.0);
        // Silverback has everything Prometheus has up to t.
        let probe = "timestamp(served_total)";
        let (p, s) = if old_enough {
            (result(&pc, probe, t).await, result(&sc, probe, t).await)
        } else {
            (Value::Null, Value::Null)
        };
        if old_enough && p == s {
            break t;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "no common history yet: prometheus={p} silverback={s} history={history}; prometheus log:\n{}\nsilverback log:\n{}",
            std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default(),
            sb.log_tail(30)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    // Give stragglers (other series of the same scrapes) a moment.
    tokio::time::sleep(Duration::from_secs(2)).await;

    for q in [
        "served_total[8s]",
        "served_total",
        "fixed_gauge",
        "up",
        "rate(served_total[5s])",
        "sum by (job) (fixed_gauge)",
        "histogram_quantile(0.9, rate(lat_bucket[5s]))",
        "count_over_time(served_total[8s])",
        "scrape_samples_scraped",
    ] {
        let p = result(&pc, q, t).await;
        let s = result(&sc, q, t).await;
        assert!(
            !p["result"].as_array().is_none_or(|r| r.is_empty()),
            "{q}: prometheus returned nothing: {p}"
        );
        assert_eq!(p, s, "{q} differs at {t}");
    }
    for q in ["served_total", "irate(served_total[3s])", "fixed_gauge * 2"] {
        let p = range(&pc, q, t - 6.0, t).await;
        let s = range(&sc, q, t - 6.0, t).await;
        assert_eq!(p, s, "range {q} differs over [{}, {t}]", t - 6.0);
    }
    // Metadata sent by Prometheus is served.
    let (_, md) = sc
        .get("/api/v1/metadata", &[("metric", "served_total")])
        .await
        .unwrap();
    assert_eq!(md["data"]["served_total"][0]["type"], "counter", "{md}");
    drop(prom);
}
