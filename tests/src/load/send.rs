//! Sending the prebuilt requests: `concurrency` requests in flight, spread
//! round-robin over the target URLs, without ever letting a series' sample
//! overtake its previous one.
//!
//! Request `i` holds samples `[i·B, (i+1)·B)` of the time-ordered stream
//! (all series at t, then all at t+1, ...). The earlier sample of any series
//! in it sits at least `S` positions back (`S` = series count), so request
//! `i` may start once every request up to [`must_finish_before`]`(i)` has
//! been acknowledged. With `S ≫ B·concurrency` this never waits in practice,
//! but it keeps per-series order under any scheduling.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use bytes::Bytes;
use tokio::sync::watch;

/// The last request that must be acknowledged before request `i` starts, or
/// `None` if it may start at once. `b`: samples per request, `s`: series.
pub fn must_finish_before(i: usize, b: usize, s: usize) -> Option<usize> {
    let last_flat = (i + 1) * b - 1;
    let r = last_flat.checked_sub(s)? / b;
    if r < i {
        Some(r)
    } else {
        // Fewer series than samples per request: the previous sample may be
        // in this very request (sent in order) or the one before.
        i.checked_sub(1)
    }
}

/// Contiguous-prefix completion tracker: `done_below()` is the number `n`
/// such that requests `0..n` are all acknowledged.
struct Progress {
    state: Mutex<(usize, std::collections::BTreeSet<usize>)>,
    tx: watch::Sender<usize>,
}

impl Progress {
    fn new() -> (Progress, watch::Receiver<usize>) {
        let (tx, rx) = watch::channel(0);
        (
            Progress {
                state: Mutex::new((0, Default::default())),
                tx,
            },
            rx,
        )
    }

    fn complete(&self, i: usize) {
        let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (done, pending) = &mut *guard;
        pending.insert(i);
        while pending.remove(done) {
            *done += 1;
        }
        let n = *done;
        drop(guard);
        self.tx.send_replace(n);
    }
}

/// What the ingest phase measured.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct IngestStats {
    /// Samples acknowledged.
    pub samples: u64,
    /// Requests sent (without retries).
    pub requests: u64,
    /// Retries after 429/503/connection errors.
    pub retries: u64,
    /// Wall time from the first request to the last acknowledgement.
    pub seconds: f64,
    /// `samples / seconds`.
    pub samples_per_sec: f64,
    /// Median time from sending a request to its acknowledgement, retries
    /// included (what a sender waits), ms.
    #[serde(default)]
    pub latency_p50_ms: f64,
    /// 99th percentile of the same, ms.
    #[serde(default)]
    pub latency_p99_ms: f64,
}

/// The `q` quantile (0..=1) of `v` by nearest rank; 0 when empty.
fn quantile(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

/// Sends every body to `/api/v1/write` of `urls` (round-robin), `concurrency`
/// at a time. Retries 429, 5xx and connection errors with backoff (up to
/// 30 times per request); any other status fails the run.
pub async fn ingest(
    urls: &[String],
    bodies: &[Bytes],
    samples: &[u32],
    series: usize,
    per_request: usize,
    concurrency: usize,
) -> Result<IngestStats> {
    if urls.is_empty() {
        bail!("no target URL");
    }
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let (progress, rx) = Progress::new();
    let progress = Arc::new(progress);
    let next = Arc::new(AtomicUsize::new(0));
    let retries = Arc::new(AtomicU64::new(0));
    let latencies = Arc::new(std::sync::Mutex::new(Vec::with_capacity(bodies.len())));
    let bodies: Arc<Vec<Bytes>> = Arc::new(bodies.to_vec());
    let urls: Arc<Vec<String>> = Arc::new(
        urls.iter()
            .map(|u| format!("{}/api/v1/write", u.trim_end_matches('/')))
            .collect(),
    );
    let start = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (client, progress, next, retries, bodies, urls, latencies) = (
            client.clone(),
            progress.clone(),
            next.clone(),
            retries.clone(),
            bodies.clone(),
            urls.clone(),
            latencies.clone(),
        );
        let mut rx = rx.clone();
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= bodies.len() {
                    return Ok::<(), anyhow::Error>(());
                }
                if let Some(dep) = must_finish_before(i, per_request, series) {
                    rx.wait_for(|done| *done > dep).await?;
                }
                let url = &urls[i % urls.len()];
                let sent = Instant::now();
                send_one(&client, url, &bodies[i], &retries).await?;
                let ms = sent.elapsed().as_secs_f64() * 1000.0;
                if let Ok(mut l) = latencies.lock() {
                    l.push(ms);
                }
                progress.complete(i);
            }
        }));
    }
    for w in workers {
        w.await??;
    }
    let seconds = start.elapsed().as_secs_f64();
    let total: u64 = samples.iter().map(|&s| s as u64).sum();
    let mut lat = latencies
        .lock()
        .map(|l| l.clone())
        .map_err(|_| anyhow::anyhow!("latency list poisoned"))?;
    Ok(IngestStats {
        latency_p50_ms: quantile(&mut lat, 0.5),
        latency_p99_ms: quantile(&mut lat, 0.99),
        samples: total,
        requests: bodies.len() as u64,
        retries: retries.load(Ordering::Relaxed),
        seconds,
        samples_per_sec: total as f64 / seconds.max(1e-9),
    })
}

async fn send_one(
    client: &reqwest::Client,
    url: &str,
    body: &Bytes,
    retries: &AtomicU64,
) -> Result<()> {
    let mut backoff = Duration::from_millis(50);
    for attempt in 0..=30 {
        if attempt > 0 {
            retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
        let r = client
            .post(url)
            .header("Content-Type", "application/x-protobuf")
            .header("Content-Encoding", "snappy")
            .header("X-Prometheus-Remote-Write-Version", "0.1.0")
            .body(body.clone())
            .send()
            .await;
        let resp = match r {
            Ok(resp) => resp,
            Err(e) if attempt < 30 => {
                note(&format!("write to {url} failed ({e}); retrying"));
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let status = resp.status().as_u16();
        match status {
            200..=299 => return Ok(()),
            429 | 500..=599 => {
                let text = resp.text().await.unwrap_or_default();
                note(&format!(
                    "write to {url} answered {status}: {}; retrying",
                    text.trim()
                ));
            }
            _ => {
                let text = resp.text().await.unwrap_or_default();
                bail!("write to {url} answered {status}: {}", text.trim());
            }
        }
    }
    bail!("write to {url} still failing after 30 retries")
}

/// Rate-limited stderr note (the first 20 only), so a struggling server does
/// not flood the log.
fn note(msg: &str) {
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let n = COUNT.fetch_add(1, Ordering::Relaxed);
    if n < 20 {
        eprintln!("silverback-load: {msg}");
    } else if n == 20 {
        eprintln!("silverback-load: (further retry notes suppressed)");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_by_nearest_rank() {
        let mut v: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        assert_eq!(quantile(&mut v, 0.5), 50.0);
        assert_eq!(quantile(&mut v, 0.99), 99.0);
        assert_eq!(quantile(&mut v, 1.0), 100.0);
        assert_eq!(quantile(&mut [], 0.99), 0.0);
        assert_eq!(quantile(&mut [7.0], 0.01), 7.0);
    }

    #[test]
    fn dependencies_keep_series_order() {
        // 10 series, 4 samples per request: request 2 holds flat 8..12, whose
        // previous samples are flat -2..2 -> request 0.
        assert_eq!(must_finish_before(0, 4, 10), None);
        assert_eq!(must_finish_before(1, 4, 10), None);
        assert_eq!(must_finish_before(2, 4, 10), Some(0));
        assert_eq!(must_finish_before(3, 4, 10), Some(1)); // 12..16 after 2..6
        assert_eq!(must_finish_before(4, 4, 10), Some(2)); // 16..20 after 6..10
                                                           // Brute force: every earlier sample of a series in request i lives in
                                                           // a request <= the dependency.
        for (b, s) in [(4, 10), (2000, 50_000), (7, 3), (5, 5), (10, 4)] {
            for i in 0..200 {
                let dep = must_finish_before(i, b, s);
                for flat in i * b..(i + 1) * b {
                    if let Some(prev) = flat.checked_sub(s) {
                        let r = prev / b;
                        if r != i {
                            assert!(dep.is_some_and(|d| r <= d), "b={b} s={s} i={i}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn progress_is_a_contiguous_prefix() {
        let (p, rx) = Progress::new();
        p.complete(1);
        assert_eq!(*rx.borrow(), 0);
        p.complete(0);
        assert_eq!(*rx.borrow(), 2);
        p.complete(3);
        p.complete(2);
        assert_eq!(*rx.borrow(), 4);
    }
}
