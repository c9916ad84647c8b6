//! Scaling and replacing nodes under continuous writes (issue 4): a node
//! joins and takes its share of replicas, a node is decommissioned, a node
//! that stays down past the grace period has its replicas re-created. Real
//! `silverback` processes on 127.0.0.1; every sample the cluster
//! acknowledged is read back afterwards (`tests::checker`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use serde_json::Value;
use tests::checker::{
    base_time, check_all, cluster_status, stop_writer, writer, Acked, Live, SERIES,
};
use tests::{Client, Cluster, Options, Silverback};

const SHARDS: u32 = 8;

/// Replicas per node id, moves in flight, and the shards' replica sets, as
/// the node behind `c` sees the cluster map.
struct Map {
    counts: Vec<(u64, u64, String)>,
    moves: usize,
    shards: Vec<Vec<u64>>,
}

async fn map(c: &Client) -> Result<Map> {
    let v = cluster_status(c).await?;
    let counts = v["nodes"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|n| {
                    (
                        n["id"].as_u64().unwrap_or(0),
                        n["replicas"].as_u64().unwrap_or(0),
                        n["state"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let shards = v["shards"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| {
                    s["replicas"]
                        .as_array()
                        .map(|r| r.iter().filter_map(Value::as_u64).collect())
                        .unwrap_or_default()
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Map {
        counts,
        moves: v["moves"].as_array().map_or(0, Vec::len),
        shards,
    })
}

/// Polls the map through `c` until `done` holds (and no move is in flight);
/// returns how long it took.
async fn wait_map(c: &Client, what: &str, done: impl Fn(&Map) -> bool) -> Result<Duration> {
    let t0 = Instant::now();
    loop {
        if let Ok(m) = map(c).await {
            if m.moves == 0 && done(&m) {
                return Ok(t0.elapsed());
            }
            ensure!(
                t0.elapsed() < Duration::from_secs(180),
                "{what}: not reached in 180 s; nodes {:?}, {} moves, shards {:?}",
                m.counts,
                m.moves,
                m.shards
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn replicas_of(m: &Map, id: u64) -> u64 {
    m.counts
        .iter()
        .find(|(n, _, _)| *n == id)
        .map_or(0, |(_, r, _)| *r)
}

fn state_of(m: &Map, id: u64) -> &str {
    m.counts
        .iter()
        .find(|(n, _, _)| *n == id)
        .map_or("", |(_, _, s)| s.as_str())
}

/// Queries the live nodes in turn until `stop`; returns (successful
/// reads, longest time without one). Reads must keep working during moves.
async fn reader(
    clients: Arc<Mutex<Vec<Client>>>,
    live: Live,
    stop: Arc<AtomicBool>,
) -> (usize, Duration) {
    let (mut ok, mut longest) = (0usize, Duration::ZERO);
    let mut last_ok = Instant::now();
    let mut i = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let cs: Vec<Client> = clients.lock().expect("clients").clone();
        let alive = live.alive(cs.len());
        if let Some(&n) = alive.get(i % alive.len().max(1)) {
            let t = tests::now_ms() as f64 / 1000.0;
            if let Ok(v) = cs[n].query("count(fault_test)", t).await {
                if v["status"] == "success" {
                    ok += 1;
                    longest = longest.max(last_ok.elapsed());
                    last_ok = Instant::now();
                }
            }
        }
        i += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (ok, longest.max(last_ok.elapsed()))
}

async fn finish(
    w: tokio::task::JoinHandle<Result<Acked>>,
    stop: &AtomicBool,
    readers: &[&Silverback],
    base: i64,
) -> Acked {
    let acked = stop_writer(w, stop).await;
    assert!(
        acked.rounds.len() > 50,
        "too few rounds: {}",
        acked.rounds.len()
    );
    for n in readers {
        if let Err(e) = check_all(&n.client(), base, &acked).await {
            for m in readers {
                eprintln!("--- node {} log ---\n{}", m.node_id, m.log_tail(400));
            }
            panic!("reading through node {}: {e:#}", n.node_id);
        }
    }
    acked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_joins_then_one_is_decommissioned_under_writes() {
    // Checkpoints every second keeping no log entries: new replicas catch up
    // from a storage snapshot, not from the log.
    let fast_purge = [
        "--checkpoint-interval",
        "1s",
        "--raft-log-keep",
        "0",
        "--enable-admin-api",
    ];
    let mut cluster = Cluster::start(3, SHARDS, 3, &fast_purge)
        .await
        .expect("cluster");
    let clients: Arc<Mutex<Vec<Client>>> = Arc::new(Mutex::new(
        cluster.nodes.iter().map(Silverback::client).collect(),
    ));
    let live = Live::new(3);
    let stop = Arc::new(AtomicBool::new(false));
    let base = base_time();
    let w = tokio::spawn(writer(clients.clone(), live.clone(), base, stop.clone()));
    let r = tokio::spawn(reader(clients.clone(), live.clone(), stop.clone()));
    tokio::time::sleep(Duration::from_secs(4)).await;
    let c1 = cluster.nodes[0].client();

    // (c) Node 4 joins through node 2 and takes a quarter of the replicas.
    let mut extra = Options::default().extra_args;
    extra.extend(fast_purge.iter().map(|s| s.to_string()));
    let n4 = Silverback::start(Options {
        node_id: 4,
        join: Some(cluster.nodes[1].grpc),
        shards: SHARDS,
        replication_factor: 3,
        extra_args: extra,
        ..Options::default()
    })
    .await
    .expect("node 4 joins");
    let per_node = u64::from(SHARDS) * 3 / 4;
    let joined = wait_map(&c1, "node 4 holds its share", |m| {
        (1..=4).all(|n| replicas_of(m, n) == per_node) && m.shards.iter().all(|r| r.len() == 3)
    })
    .await
    .expect("rebalanced");
    clients.lock().expect("clients").push(n4.client());
    live.set(3, true);
    println!("node 4 joined; {per_node} replicas moved to it in {joined:?}");
    cluster.nodes.push(n4);

    // (d) Node 1 is decommissioned (asked through node 3): its replicas move
    // to 2, 3 and 4, then it is removed and can be stopped.
    let (st, body) = cluster.nodes[2]
        .client()
        .post("/api/v1/admin/cluster/decommission", &[("node", "1")])
        .await
        .expect("decommission request");
    assert_eq!(st, 200, "{body}");
    let c2 = cluster.nodes[1].client();
    let gone = wait_map(&c2, "node 1 decommissioned", |m| {
        state_of(m, 1) == "removed"
            && replicas_of(m, 1) == 0
            && (2..=4).all(|n| replicas_of(m, n) == u64::from(SHARDS))
    })
    .await
    .expect("decommissioned");
    println!("node 1 decommissioned in {gone:?}");
    live.set(0, false);
    cluster.nodes[0].stop().await.expect("node 1 stops");
    tokio::time::sleep(Duration::from_secs(2)).await;

    let readers: Vec<&Silverback> = cluster.nodes[1..].iter().collect();
    let acked = finish(w, &stop, &readers, base).await;
    let (reads, read_gap) = r.await.expect("reader task");
    assert!(reads > 50, "only {reads} successful reads");
    assert!(
        read_gap < Duration::from_secs(10),
        "reads failed for {read_gap:?} in a row"
    );
    println!("{reads} reads answered during the moves; longest gap {read_gap:?}");
    println!(
        "acknowledged {} rounds ({} samples) through join and decommission; longest write wait {:?}",
        acked.rounds.len(),
        acked.rounds.len() * SERIES,
        acked.longest_wait
    );

    // A bad request names the problem.
    let (st, body) = c2
        .post("/api/v1/admin/cluster/decommission", &[("node", "77")])
        .await
        .expect("request");
    assert_eq!(st, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap_or("").contains("77"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_node_is_replaced_after_the_grace_period_and_may_return() {
    let mut cluster = Cluster::start(4, SHARDS, 3, &["--down-grace", "4s"])
        .await
        .expect("cluster");
    let clients: Arc<Mutex<Vec<Client>>> = Arc::new(Mutex::new(
        cluster.nodes.iter().map(Silverback::client).collect(),
    ));
    let live = Live::new(4);
    let stop = Arc::new(AtomicBool::new(false));
    let base = base_time();
    let w = tokio::spawn(writer(clients.clone(), live.clone(), base, stop.clone()));
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Node 4 dies; after the grace period its replicas are re-created on the
    // others, so every shard has 3 replicas again.
    live.set(3, false);
    cluster.nodes[3].kill();
    let c1 = cluster.nodes[0].client();
    let replaced = wait_map(&c1, "node 4 replaced", |m| {
        m.shards.iter().all(|r| r.len() == 3 && !r.contains(&4))
    })
    .await
    .expect("replaced");
    println!("node 4's replicas re-created elsewhere {replaced:?} after the kill");

    // It comes back with stale replicas: they are dropped, and it gets its
    // share again by rebalancing.
    cluster.nodes[3].restart().await.expect("node 4 restarts");
    live.set(3, true);
    let per_node = u64::from(SHARDS) * 3 / 4;
    wait_map(&c1, "node 4 rebalanced", |m| {
        (1..=4).all(|n| replicas_of(m, n) == per_node)
    })
    .await
    .expect("rebalanced");

    let readers: Vec<&Silverback> = cluster.nodes.iter().collect();
    let acked = finish(w, &stop, &readers, base).await;
    println!(
        "acknowledged {} rounds across the replacement; longest write wait {:?}",
        acked.rounds.len(),
        acked.longest_wait
    );
}
