//! No acknowledged sample is lost (issue 4): real `silverback` processes on
//! 127.0.0.1, a writer that records every sample the cluster acknowledged
//! with `204`, faults injected with SIGKILL, and a check through the query
//! API that every acknowledged sample is there with its value (the harness
//! is `tests::checker`).

use std::time::{Duration, Instant};

use tests::checker::{check_all, wait_for_leader, Writing, SERIES};
use tests::{Client, Cluster, Options, Silverback};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follower_and_leader_kills_lose_no_acknowledged_sample() {
    let mut cluster = Cluster::start(3, 4, 3, &[]).await.expect("cluster");
    let clients: Vec<Client> = cluster.nodes.iter().map(Silverback::client).collect();
    let writing = Writing::start(&clients);
    let base = writing.base;
    tokio::time::sleep(Duration::from_secs(2)).await;

    // (a) A follower of shard 0 dies and comes back.
    let leader = wait_for_leader(&clients[0], 0, None).await.expect("leader");
    let follower = (1..=3u64).find(|n| *n != leader).expect("a follower");
    let fi = (follower - 1) as usize;
    writing.live.set(fi, false);
    cluster.nodes[fi].kill();
    tokio::time::sleep(Duration::from_secs(3)).await;
    cluster.nodes[fi].restart().await.expect("follower restart");
    writing.live.set(fi, true);
    tokio::time::sleep(Duration::from_secs(2)).await;

    // (b) The leader of shard 0 dies; another replica takes over.
    let leader = wait_for_leader(&clients[0], 0, None).await.expect("leader");
    let li = (leader - 1) as usize;
    let other = &clients[(li + 1) % 3];
    writing.live.set(li, false);
    let killed_at = Instant::now();
    cluster.nodes[li].kill();
    let new_leader = wait_for_leader(other, 0, Some(leader))
        .await
        .expect("new leader");
    let failover = killed_at.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.nodes[li].restart().await.expect("leader restart");
    writing.live.set(li, true);
    tokio::time::sleep(Duration::from_secs(2)).await;

    let acked = writing.finish().await;
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
        check_all(c, base, &acked).await.expect("check");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_cluster_kill_9_keeps_acknowledged_samples() {
    let mut cluster = Cluster::start(3, 4, 3, &[]).await.expect("cluster");
    let clients: Vec<Client> = cluster.nodes.iter().map(Silverback::client).collect();
    let writing = Writing::start(&clients);
    let base = writing.base;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let acked = writing.finish().await;
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
    check_all(&clients[2], base, &acked).await.expect("check");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_node_kill_9_keeps_acknowledged_samples() {
    let mut node = Silverback::start(Options::default()).await.expect("node");
    let clients = vec![node.client()];
    let writing = Writing::start(&clients);
    let base = writing.base;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let acked = writing.finish().await;
    node.kill();
    node.restart().await.expect("restart after kill -9");
    assert!(!acked.rounds.is_empty());
    check_all(&clients[0], base, &acked).await.expect("check");
}
