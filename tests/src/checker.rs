//! A writer that records every sample the cluster acknowledged, and a check
//! that finds all of them through the query API: the "no acknowledged sample
//! lost" harness of the fault and membership tests.
//!
//! The writer sends one round at a time: one sample for each of [`SERIES`]
//! series at timestamp `base + round s`, value `round * 1000 + series`. A
//! round that fails (connection refused, `503`) is retried on the next live
//! node until it is acknowledged; retrying is safe because an identical
//! duplicate sample is a no-op. The longest time from a round's first try to
//! its acknowledgement is the write unavailability a test reports.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Result};
use serde_json::Value;

use crate::{now_ms, series, Client};

/// Series written per round.
pub const SERIES: usize = 12;

/// What the writer learnt.
#[derive(Debug, Default)]
pub struct Acked {
    /// Rounds acknowledged (each stands for [`SERIES`] samples).
    pub rounds: Vec<u64>,
    /// The longest time a round waited for its acknowledgement.
    pub longest_wait: Duration,
}

/// Which nodes (by index into the writer's clients) may be written to.
#[derive(Clone)]
pub struct Live(Arc<Mutex<Vec<bool>>>);

impl Live {
    /// `n` live nodes.
    pub fn new(n: usize) -> Live {
        Live(Arc::new(Mutex::new(vec![true; n])))
    }

    /// Marks node `i` live or not (growing the list as needed).
    pub fn set(&self, i: usize, up: bool) {
        let mut v = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if v.len() <= i {
            v.resize(i + 1, false);
        }
        v[i] = up;
    }

    /// Indexes (below `n`) of the nodes marked live.
    pub fn alive(&self, n: usize) -> Vec<usize> {
        let v = self.0.lock().unwrap_or_else(|e| e.into_inner());
        (0..n)
            .filter(|i| v.get(*i).copied().unwrap_or(false))
            .collect()
    }
}

/// The first sample time of a run: an hour ago, on a whole second, so a run
/// of a few thousand 1 s rounds ends before now and stays inside retention.
pub fn base_time() -> i64 {
    (now_ms() - 3_600_000) / 1000 * 1000
}

fn round_series(base: i64, r: u64) -> Vec<proto::prometheus::TimeSeries> {
    (0..SERIES)
        .map(|i| {
            let v = (r * 1000 + i as u64) as f64;
            series(
                "fault_test",
                &[("series", &i.to_string())],
                &[(base + r as i64 * 1000, v)],
            )
        })
        .collect()
}

/// Writes rounds until `stop` is set, to the live nodes among `clients` in
/// turn (`clients` is re-read every round, so nodes can be added); returns
/// what was acknowledged. Fails when a round is not acknowledged within
/// 60 s or a node answers with an unexpected status.
pub async fn writer(
    clients: Arc<Mutex<Vec<Client>>>,
    live: Live,
    base: i64,
    stop: Arc<AtomicBool>,
) -> Result<Acked> {
    let mut acked = Acked::default();
    let mut next = 0usize;
    let mut r = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let batch = round_series(base, r);
        let first_try = Instant::now();
        loop {
            let cs: Vec<Client> = clients.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let alive = live.alive(cs.len());
            ensure!(!alive.is_empty(), "no live node to write to");
            let c = &cs[alive[next % alive.len()]];
            next += 1;
            match c.write(&batch).await {
                Ok((204, _)) => break,
                Ok((st, body)) => {
                    if !(st == 503 || st == 429 || st == 500) {
                        bail!("round {r}: unexpected {st}: {body}");
                    }
                }
                Err(_) => {} // the node is down: try the next one
            }
            ensure!(
                first_try.elapsed() < Duration::from_secs(60),
                "round {r} not acknowledged within 60 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        acked.longest_wait = acked.longest_wait.max(first_try.elapsed());
        acked.rounds.push(r);
        r += 1;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(acked)
}

/// A [`writer`] running in the background over a fixed set of nodes, with
/// the handles a fault test needs.
pub struct Writing {
    /// Which of the nodes the writer may use (all up at the start).
    pub live: Live,
    /// The time of round 0's samples ([`base_time`]).
    pub base: i64,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Result<Acked>>,
}

impl Writing {
    /// Starts writing rounds to `clients` in turn.
    pub fn start(clients: &[Client]) -> Writing {
        let live = Live::new(clients.len());
        let stop = Arc::new(AtomicBool::new(false));
        let base = base_time();
        let task = tokio::spawn(writer(
            Arc::new(Mutex::new(clients.to_vec())),
            live.clone(),
            base,
            stop.clone(),
        ));
        Writing {
            live,
            base,
            stop,
            task,
        }
    }

    /// Stops writing and returns what was acknowledged; panics if the
    /// writer failed.
    pub async fn finish(self) -> Acked {
        stop_writer(self.task, &self.stop).await
    }
}

/// Stops the writer started with `stop` and returns what it acknowledged;
/// panics if the writer failed.
pub async fn stop_writer(w: tokio::task::JoinHandle<Result<Acked>>, stop: &AtomicBool) -> Acked {
    stop.store(true, Ordering::Relaxed);
    w.await.expect("writer task").expect("writer")
}

/// Every acknowledged sample, read back through `c` with a raw range
/// selector, is there with its value.
pub async fn check_all(c: &Client, base: i64, acked: &Acked) -> Result<()> {
    let last = acked.rounds.last().copied().unwrap_or(0);
    let end = base + last as i64 * 1000;
    let span_s = (end - base) / 1000 + 10;
    let v = c
        .query(&format!("fault_test[{span_s}s]"), end as f64 / 1000.0)
        .await?;
    ensure!(v["status"] == "success", "query failed: {v}");
    let result = v["data"]["result"].as_array().cloned().unwrap_or_default();
    ensure!(result.len() == SERIES, "{} series: {v}", result.len());
    for s in &result {
        let i: u64 = s["metric"]["series"]
            .as_str()
            .and_then(|x| x.parse().ok())
            .ok_or_else(|| anyhow!("no series label in {s}"))?;
        let mut got: HashMap<i64, f64> = HashMap::new();
        for p in s["values"].as_array().ok_or_else(|| anyhow!("no values"))? {
            let p: &Value = p;
            let t = (p[0].as_f64().ok_or_else(|| anyhow!("bad point {p}"))? * 1000.0).round();
            let v: f64 = p[1]
                .as_str()
                .and_then(|x| x.parse().ok())
                .ok_or_else(|| anyhow!("bad point {p}"))?;
            got.insert(t as i64, v);
        }
        for &r in &acked.rounds {
            let t = base + r as i64 * 1000;
            let want = (r * 1000 + i) as f64;
            ensure!(
                got.get(&t) == Some(&want),
                "series {i}: acknowledged sample of round {r} (t={t}) is {:?}, want {want}",
                got.get(&t)
            );
        }
    }
    Ok(())
}

/// `GET /api/v1/status/cluster` on `c`: its `data`.
pub async fn cluster_status(c: &Client) -> Result<Value> {
    let (st, v) = c.get("/api/v1/status/cluster", &[]).await?;
    ensure!(st == 200, "status {st}: {v}");
    Ok(v["data"].clone())
}

/// The leader of `shard` as the node behind `c` sees it.
pub async fn shard_leader(c: &Client, shard: u64) -> Option<u64> {
    let v = cluster_status(c).await.ok()?;
    v["shards"]
        .as_array()?
        .iter()
        .find(|s| s["shard"].as_u64() == Some(shard))?["leader"]
        .as_u64()
}

/// Waits up to 30 s until `shard` has a leader other than `not`.
pub async fn wait_for_leader(c: &Client, shard: u64, not: Option<u64>) -> Result<u64> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(l) = shard_leader(c, shard).await.filter(|l| Some(*l) != not) {
            return Ok(l);
        }
        ensure!(Instant::now() < deadline, "shard {shard} has no leader");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
