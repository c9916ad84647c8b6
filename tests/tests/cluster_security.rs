//! The cluster port (issue 14), on real `silverback` processes: with
//! `--cluster-secret-file`, a caller without the secret is refused on every
//! RPC and cannot join; a 3-node cluster with the secret writes and reads
//! back every acknowledged sample; forged Raft messages sent with the
//! secret (a member that lies) are refused before openraft sees them, or
//! are harmless; an open cluster port on a non-loopback address is warned
//! about.

use std::time::{Duration, Instant};

use cluster::raft::network::PeerClient;
use cluster::raft::rpc;
use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
use openraft::{CommittedLeaderId, LogId, SnapshotMeta, StoredMembership, Vote};
use proto::cluster as pb;
use tests::checker::{check_all, cluster_status, Writing};
use tests::{Client, Cluster, Options, Silverback};
use tonic::Code;

mod peer;

use peer::{all_refused, client, every_rpc};

const SECRET: &str = "3f9c0a5e7d1b4c2a8e6f0d9b7a5c3e1f";

/// The leader and term of `shard` as node `c` sees them.
async fn shard_leader_term(c: &Client, shard: u64) -> (u64, u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = cluster_status(c).await.expect("status");
        let s = &v["shards"][shard as usize];
        if let (Some(l), Some(t)) = (s["leader"].as_u64(), s["term"].as_u64()) {
            return (l, t);
        }
        assert!(
            Instant::now() < deadline,
            "shard {shard} has no leader: {v}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_are_refused_on_every_rpc_and_members_replicate() {
    let mut cluster = Cluster::start_with(3, 4, 3, &[], Some(SECRET))
        .await
        .expect("cluster");
    let clients: Vec<Client> = cluster.nodes.iter().map(Silverback::client).collect();
    let writing = Writing::start(&clients);
    let base = writing.base;

    for n in &cluster.nodes {
        all_refused(
            &every_rpc(&mut client(n.grpc, None)).await,
            Code::Unauthenticated,
        );
    }
    all_refused(
        &every_rpc(&mut client(cluster.nodes[0].grpc, Some("not-the-secret"))).await,
        Code::Unauthenticated,
    );
    // The secret opens the port (health answers with the node's id).
    let h = client(cluster.nodes[1].grpc, Some(SECRET))
        .health(pb::HealthRequest::default())
        .await
        .expect("health with the secret")
        .into_inner();
    assert_eq!(h.node_id, 2);

    tokio::time::sleep(Duration::from_secs(2)).await;
    let acked = writing.finish().await;
    assert!(
        acked.rounds.len() > 20,
        "too few rounds: {}",
        acked.rounds.len()
    );
    for c in &clients {
        check_all(c, base, &acked).await.expect("read back");
        let st = cluster_status(c).await.expect("status");
        assert_eq!(st["warnings"], serde_json::json!([]), "{st}");
    }
    for n in &mut cluster.nodes {
        n.stop().await.expect("stop");
    }
}

fn lid(term: u64, node: u64, index: u64) -> LogId<u64> {
    LogId::new(CommittedLeaderId::new(term, node), index)
}

async fn send(c: &mut PeerClient, mut r: pb::RaftRequest, from: u64) -> Result<Vec<u8>, Code> {
    r.from_node = from;
    match c.raft(r).await {
        Ok(r) => Ok(r.into_inner().payload),
        Err(s) => Err(s.code()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_raft_messages_from_a_member_are_refused_or_harmless() {
    let mut cluster = Cluster::start_with(3, 2, 3, &[], Some(SECRET))
        .await
        .expect("cluster");
    let clients: Vec<Client> = cluster.nodes.iter().map(Silverback::client).collect();
    let writing = Writing::start(&clients);
    let base = writing.base;
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Shard 0 is group 1; its leader's follower gets the forgeries.
    let (leader, term) = shard_leader_term(&clients[0], 0).await;
    let f = (1..=3u64).find(|n| *n != leader).expect("a follower");
    let mut c = client(cluster.nodes[(f - 1) as usize].grpc, Some(SECRET));
    let group = 1;
    let append = |vote: Vote<u64>, prev: Option<LogId<u64>>| {
        rpc::encode_append(
            group,
            &AppendEntriesRequest {
                vote,
                prev_log_id: prev,
                leader_commit: None,
                entries: Vec::new(),
            },
        )
    };
    let refused = Err(Code::PermissionDenied);

    // A leader's vote at term u64::MAX (would kill the group at the next
    // election, after every restart).
    let r = append(Vote::new_committed(u64::MAX, leader), None);
    assert_eq!(send(&mut c, r, leader).await, refused);
    // A term wildly ahead.
    let r = append(Vote::new_committed(term + (1 << 40), leader), None);
    assert_eq!(send(&mut c, r, leader).await, refused);
    // A log id from a later term than the message's.
    let r = append(
        Vote::new_committed(term, leader),
        Some(lid(term + 5, leader, 3)),
    );
    assert_eq!(send(&mut c, r, leader).await, refused);
    // A member speaking for another node, and a node that is no member.
    let other = (1..=3u64)
        .find(|n| *n != leader && *n != f)
        .expect("a third node");
    let r = append(Vote::new_committed(term, leader), None);
    assert_eq!(send(&mut c, r, other).await, refused);
    let vote = |node| {
        rpc::encode_vote(
            group,
            &VoteRequest {
                vote: Vote::new(term + 1, node),
                last_log_id: None,
            },
        )
    };
    assert_eq!(send(&mut c, vote(99), 99).await, refused);
    assert_eq!(send(&mut c, vote(leader), other).await, refused);

    // A snapshot stream from the real leader's vote, then chunks far past
    // its end (one at offset 2^40 aborted the process).
    let chunk = |offset: u64, data: Vec<u8>| {
        rpc::encode_snapshot(
            group,
            &InstallSnapshotRequest {
                vote: Vote::new_committed(term, leader),
                meta: SnapshotMeta {
                    last_log_id: Some(lid(term, leader, 1)),
                    last_membership: StoredMembership::default(),
                    snapshot_id: "forged-snapshot".into(),
                },
                offset,
                data,
                done: false,
            },
        )
    };
    send(&mut c, chunk(0, vec![7; 16]), leader)
        .await
        .expect("first chunk is answered");
    // 2^40 is past the snapshot cap: refused.
    let r = chunk(1 << 40, vec![7; 16]);
    assert_eq!(send(&mut c, r, leader).await, refused);
    // A gap under the cap: the sender is told to start over.
    let reply = send(&mut c, chunk(1 << 30, vec![7; 16]), leader)
        .await
        .expect("a gap is answered");
    let reply: rpc::SnapshotReply = rpc::decode_reply(&reply).expect("reply");
    assert!(
        matches!(
            reply,
            Err(RaftError::APIError(InstallSnapshotError::SnapshotMismatch(
                _
            )))
        ),
        "{reply:?}"
    );
    // A plausible forgery passes the checks: the follower takes the
    // member for leader at the next term. Raft copes: an election.
    let r = append(Vote::new_committed(term + 1, other), None);
    send(&mut c, r, other).await.expect("a plausible message");

    tokio::time::sleep(Duration::from_secs(3)).await;
    let acked = writing.finish().await;
    assert!(
        acked.rounds.len() > 20,
        "too few rounds: {}",
        acked.rounds.len()
    );
    for n in &mut cluster.nodes {
        assert!(n.exit_report().is_none(), "node {} died", n.node_id);
    }
    for cl in &clients {
        check_all(cl, base, &acked).await.expect("read back");
    }
    // Nothing poisonous was persisted: the follower restarts and every
    // term stays small.
    let fi = (f - 1) as usize;
    cluster.nodes[fi].stop().await.expect("stop");
    cluster.nodes[fi].restart().await.expect("restart");
    check_all(&clients[fi], base, &acked)
        .await
        .expect("read back after restart");
    let st = cluster_status(&clients[fi]).await.expect("status");
    for s in st["shards"].as_array().expect("shards") {
        let t = s["term"].as_u64().unwrap_or(0);
        assert!(t < term + 1000, "shard term {t} after forgeries: {st}");
    }
    for n in &mut cluster.nodes {
        n.stop().await.expect("stop");
    }
}

#[tokio::test]
async fn joining_needs_the_secret_and_an_open_port_is_warned_about() {
    let mut secured = Silverback::start(Options {
        cluster_secret: Some(SECRET.into()),
        ..Options::default()
    })
    .await
    .expect("secured node");
    let mut joiner = Silverback::start(Options {
        node_id: 2,
        join: Some(secured.grpc),
        wait_ready: false,
        ..Options::default()
    })
    .await
    .expect("spawn joiner");
    let deadline = Instant::now() + Duration::from_secs(30);
    let report = loop {
        if let Some(r) = joiner.exit_report() {
            break r;
        }
        assert!(Instant::now() < deadline, "joined without the secret");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(report.contains("cluster secret"), "{report}");

    // No secret on a non-loopback address: a warning in the log and in
    // /api/v1/status/cluster.
    let port = tests::free_port().expect("port");
    let mut open = Silverback::start(Options {
        extra_args: vec![
            "--self-scrape-interval".into(),
            "0".into(),
            "--grpc-listen".into(),
            format!("0.0.0.0:{port}"),
        ],
        ..Options::default()
    })
    .await
    .expect("open node");
    assert!(
        open.log_tail(200).contains("INSECURE CLUSTER PORT"),
        "{}",
        open.log_tail(20)
    );
    let st = cluster_status(&open.client()).await.expect("status");
    let w = st["warnings"][0].as_str().unwrap_or_default();
    assert!(w.contains("--cluster-secret-file"), "{st}");
    let st = cluster_status(&secured.client()).await.expect("status");
    assert_eq!(st["warnings"], serde_json::json!([]), "{st}");
    open.stop().await.expect("stop");
    secured.stop().await.expect("stop");
}
