//! No acknowledged sample is lost (issue 4): real `silverback` processes on
//! 127.0.0.1, a writer that records every sample the cluster acknowledged
//! with `204`, faults injected with SIGKILL, and a check through the query
//! API that every acknowledged sample is there with its value.
//!
//! The writer sends one round at a time: one sample for each of [`SERIES`]
//! series at timestamp `base + round s`, value `round * 1000 + series`. A
//! round that fails (connection refused, `503`) is retried on the next live
//! node until it is acknowledged; retrying is safe because an identical
//! duplicate sample is a no-op. The longest time from a round's first try to
//! its acknowledgement is the write unavailability the test reports.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::Value;
use tests::{now_ms, series, Client, Cluster, Options, Silverback};

const SERIES: usize = 12;

/// What the writer learnt.
#[derive(Debug, Default)]
struct Acked {
    /// Rounds acknowledged (each stands for SERIES samples).
    rounds: Vec<u64>,
    /// The longest time a round waited for its acknowledgement.
    longest_wait: Duration,
}

/// The live nodes the writer may send to, by index.
type Live = Arc<Mutex<Vec<bool>>>;

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

/// Writes rounds until `stop` is set; returns what was acknowledged.
async fn writer(clients: Vec<Client>, live: Live, base: i64, stop: Arc<AtomicBool>) -> Acked {
    let mut acked = Acked::default();
    let mut next = 0usize;
    let mut r = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let batch = round_series(base, r);
        let first_try = Instant::now();
        loop {
            let alive: Vec<usize> = {
                let l = live.lock();
                (0..clients.len()).filter(|i| l[*i]).collect()
            };
            assert!(!alive.is_empty(), "no live node to write to");
            let c = &clients[alive[next % alive.len()]];
            next += 1;
            match c.write(&batch).await {
                Ok((204, _)) => break,
                Ok((st, body)) => {
                    assert!(
                        st == 503 || st == 429 || st == 500,
                        "round {r}: unexpected {st}: {body}"
                    );
                }
                Err(_) => {} // the node is down: try the next one
            }
            assert!(
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
    acked
}

/// Every acknowledged sample, read back through `c` with a raw range
/// selector, is there with its value.
async fn check_all(c: &Client, base: i64, acked: &Acked) {
    let last = acked.rounds.last().copied().unwrap_or(0);
    let end = base + last as i64 * 1000;
    let span_s = (end - base) / 1000 + 10;
    let v = c
        .query(&format!("fault_test[{span_s}s]"), end as f64 / 1000.0)
        .await
        .expect("query");
    assert_eq!(v["status"], "success", "{v}");
    let result = v["data"]["result"].as_array().cloned().unwrap_or_default();
    assert_eq!(result.len(), SERIES, "series: {v}");
    for s in &result {
        let i: u64 = s["metric"]["series"]
            .as_str()
            .and_then(|x| x.parse().ok())
            .expect("series label");
        let got: std::collections::HashMap<i64, f64> = s["values"]
            .as_array()
            .expect("values")
            .iter()
            .map(|p: &Value| {
                let t = (p[0].as_f64().expect("timestamp") * 1000.0).round() as i64;
                let v = p[1].as_str().and_then(|x| x.parse().ok()).expect("value");
                (t, v)
            })
            .collect();
        for &r in &acked.rounds {
            let t = base + r as i64 * 1000;
            let want = (r * 1000 + i) as f64;
            assert_eq!(
                got.get(&t),
                Some(&want),
                "series {i}: acknowledged sample of round {r} (t={t}) missing or wrong"
            );
        }
    }
}

/// The leader of `shard` as `node` sees it.
async fn shard_leader(c: &Client, shard: u64) -> Option<u64> {
    let (_, v) = c.get("/api/v1/status/cluster", &[]).await.ok()?;
    v["data"]["shards"]
        .as_array()?
        .iter()
        .find(|s| s["shard"].as_u64() == Some(shard))?["leader"]
        .as_u64()
}

async fn wait_for_leader(c: &Client, shard: u64, not: Option<u64>) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(l) = shard_leader(c, shard).await.filter(|l| Some(*l) != not) {
            return l;
        }
        assert!(Instant::now() < deadline, "shard {shard} has no leader");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn base_time() -> i64 {
    // Rounds are 1 s apart in sample time, so a run of a few thousand rounds
    // ends before now: every sample is inside retention and lookback-free.
    (now_ms() - 3_600_000) / 1000 * 1000
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follower_and_leader_kills_lose_no_acknowledged_sample() {
    let mut cluster = Cluster::start(3, 4, 3, &[]).await.expect("cluster");
    let clients: Vec<Client> = cluster.nodes.iter().map(Silverback::client).collect();
    let live: Live = Arc::new(Mutex::new(vec![true; 3]));
    let stop = Arc::new(AtomicBool::new(false));
    let base = base_time();
    let w = tokio::spawn(writer(clients.clone(), live.clone(), base, stop.clone()));
    tokio::time::sleep(Duration::from_secs(2)).await;

    // (a) A follower of shard 0 dies and comes back.
    let leader = wait_for_leader(&clients[0], 0, None).await;
    let follower = (1..=3u64).find(|n| *n != leader).expect("a follower");
    let fi = (follower - 1) as usize;
    live.lock()[fi] = false;
    cluster.nodes[fi].kill();
    tokio::time::sleep(Duration::from_secs(3)).await;
    cluster.nodes[fi].restart().await.expect("follower restart");
    live.lock()[fi] = true;
    tokio::time::sleep(Duration::from_secs(2)).await;

    // (b) The leader of shard 0 dies; another replica takes over.
    let leader = wait_for_leader(&clients[0], 0, None).await;
    let li = (leader - 1) as usize;
    let other = &clients[(li + 1) % 3];
    live.lock()[li] = false;
    let killed_at = Instant::now();
    cluster.nodes[li].kill();
    let new_leader = wait_for_leader(other, 0, Some(leader)).await;
    let failover = killed_at.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.nodes[li].restart().await.expect("leader restart");
    live.lock()[li] = true;
    tokio::time::sleep(Duration::from_secs(2)).await;

    stop.store(true, Ordering::Relaxed);
    let acked = w.await.expect("writer");
    assert!(
        acked.rounds.len() > 50,
        "too few rounds: {}",
        acked.rounds.len()
    );
    println!(
        "acknowledged {} rounds ({} samples); shard 0 leader {leader} -> {new_leader} in {failover:?}; \
         longest write unavailability {:?}",
        acked.rounds.len(),
        acked.rounds.len() * SERIES,
        acked.longest_wait
    );
    // Every node answers with everything (reads fan out to shard leaders).
    for c in &clients {
        check_all(c, base, &acked).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_cluster_kill_9_keeps_acknowledged_samples() {
    let mut cluster = Cluster::start(3, 4, 3, &[]).await.expect("cluster");
    let clients: Vec<Client> = cluster.nodes.iter().map(Silverback::client).collect();
    let live: Live = Arc::new(Mutex::new(vec![true; 3]));
    let stop = Arc::new(AtomicBool::new(false));
    let base = base_time();
    let w = tokio::spawn(writer(clients.clone(), live, base, stop.clone()));
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    let acked = w.await.expect("writer");
    for n in &mut cluster.nodes {
        n.kill();
    }
    for n in &mut cluster.nodes {
        n.respawn().expect("respawn");
    }
    for n in &mut cluster.nodes {
        n.wait_ready().await.expect("ready after kill -9");
    }
    assert!(!acked.rounds.is_empty());
    check_all(&clients[2], base, &acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_node_kill_9_keeps_acknowledged_samples() {
    let mut node = Silverback::start(Options::default()).await.expect("node");
    let clients = vec![node.client()];
    let live: Live = Arc::new(Mutex::new(vec![true]));
    let stop = Arc::new(AtomicBool::new(false));
    let base = base_time();
    let w = tokio::spawn(writer(clients.clone(), live, base, stop.clone()));
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    let acked = w.await.expect("writer");
    node.kill();
    node.restart().await.expect("restart after kill -9");
    assert!(!acked.rounds.is_empty());
    check_all(&clients[0], base, &acked).await;
}
