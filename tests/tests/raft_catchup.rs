//! Issue 14: a follower that was down for a short while catches up from the
//! leader's log, not from full snapshots of every shard, as long as what it
//! missed fits in `--raft-log-max-bytes`; with a budget too small for it,
//! it gets snapshots (streamed to disk) instead. Either way nothing
//! acknowledged is lost. Real processes; the leaders checkpoint every
//! second and keep no log by count (`--raft-log-keep 0`), so only the byte
//! budget keeps the log.

use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use tests::checker::{check_all, cluster_status, Writing};
use tests::{Client, Cluster, Silverback};

const SHARDS: u32 = 4;

/// Snapshots node `c` installed, from its `/metrics`.
async fn snapshots_installed(c: &Client) -> Result<u64> {
    let (st, text) = c.get_text("/metrics").await?;
    ensure!(st == 200, "metrics: {st}");
    let line = text
        .lines()
        .find(|l| l.starts_with("silverback_raft_snapshots_installed_total "))
        .ok_or_else(|| anyhow::anyhow!("no snapshot counter in /metrics"))?;
    Ok(line.rsplit(' ').next().unwrap_or("").trim().parse()?)
}

/// Waits until node `lagging` has applied, in every shard, what the
/// shard's leader (as `others` see it) has applied.
async fn wait_caught_up(lagging: &Client, others: &[Client]) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mine = cluster_status(lagging).await?;
        let mut behind = Vec::new();
        for s in 0..u64::from(SHARDS) {
            let applied = |v: &serde_json::Value| {
                v["shards"]
                    .as_array()
                    .and_then(|a| a.iter().find(|x| x["shard"].as_u64() == Some(s)))
                    .and_then(|x| x["applied_index"].as_u64())
            };
            let mut best = 0;
            for o in others {
                best = best.max(applied(&cluster_status(o).await?).unwrap_or(0));
            }
            if applied(&mine).unwrap_or(0) < best {
                behind.push(s);
            }
        }
        if behind.is_empty() {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "shards {behind:?} still behind after 60 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Node 3 stops for a few seconds of writes and comes back; returns how
/// many snapshots it installed to catch up, and what its log says of them.
async fn node_returns_after_an_outage(budget: &str) -> (u64, String) {
    let args = [
        "--checkpoint-interval",
        "1s",
        "--raft-log-keep",
        "0",
        "--raft-log-max-bytes",
        budget,
    ];
    let t0 = Instant::now();
    let mut cluster = Cluster::start(3, SHARDS, 3, &args).await.expect("cluster");
    println!("cluster up at {:?}", t0.elapsed());
    let clients: Vec<Client> = cluster.nodes.iter().map(Silverback::client).collect();
    let writing = Writing::start(&clients);
    let base = writing.base;
    tokio::time::sleep(Duration::from_secs(2)).await;
    writing.live.set(2, false);
    cluster.nodes[2].stop().await.expect("node 3 stops");
    println!("node 3 stopped at {:?}", t0.elapsed());
    // Several checkpoints (and purges) on the leaders while node 3 is away.
    tokio::time::sleep(Duration::from_secs(5)).await;
    cluster.nodes[2].restart().await.expect("node 3 restarts");
    println!("node 3 back at {:?}", t0.elapsed());
    writing.live.set(2, true);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let acked = writing.finish().await;
    assert!(
        acked.rounds.len() > 50,
        "too few rounds: {}",
        acked.rounds.len()
    );
    if let Err(e) = wait_caught_up(&clients[2], &clients[..2]).await {
        panic!(
            "{e:#}\n--- node 3 log ---\n{}",
            cluster.nodes[2].log_tail(200)
        );
    }
    for c in &clients {
        check_all(c, base, &acked)
            .await
            .expect("every acknowledged sample");
    }
    let n = snapshots_installed(&clients[2]).await.expect("counter");
    let said = cluster.nodes[2]
        .log_tail(2000)
        .lines()
        .filter(|l| l.contains("snapshot"))
        .collect::<Vec<_>>()
        .join("\n");
    (n, said)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_back_from_a_short_outage_catches_up_from_the_log() {
    let (n, said) = node_returns_after_an_outage("1073741824").await;
    assert_eq!(
        n, 0,
        "node 3 installed {n} snapshots; the log was kept for it:\n{said}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_needing_more_than_the_log_budget_gets_snapshots() {
    let (n, _) = node_returns_after_an_outage("1").await;
    assert!(n > 0, "node 3 caught up without a snapshot");
}
