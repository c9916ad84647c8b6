//! Issue 14: whatever a peer sends on the cluster port, the node neither
//! panics nor loses or changes stored data. A real node (RocksDB, Raft,
//! its gRPC server) gets arbitrary and mutated messages of every data-path
//! RPC — Raft (append, vote, snapshot), forwarded writes and the reads —
//! over real gRPC; afterwards it is ready and answers what was written
//! before, bit for bit. (Meta, Join and ChangeReplicas are membership
//! commands that an authenticated member may legitimately send; they are
//! not part of this property.) `cluster/fuzz` runs the same with libFuzzer.

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cluster::{IncomingSeries, Node, NodeConfig};
use model::{Labels, Matcher, Sample};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use prost::Message;
use proto::cluster as pb;
use proto::cluster::cluster_client::ClusterClient;
use tonic::transport::Channel;

/// The RPCs in this property, by the selector byte.
const RPCS: u8 = 9;

fn free_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

/// Valid messages to mutate, one per selector (so mutations reach deep
/// into the handlers instead of failing at the first field).
fn seed(rpc: u8) -> Vec<u8> {
    let mut batch = storage::BatchEncoder::new();
    batch.push_labels(
        &Labels::from_pairs([("__name__", "forged"), ("i", "1")]),
        &[Sample { t: 5_000, v: 9.0 }],
    );
    batch.push_id(1, &[Sample { t: 6_000, v: 8.0 }]);
    let matchers = vec![pb::Matcher {
        name: "__name__".into(),
        r#type: pb::MatchType::Re as i32,
        value: "kept|forged".into(),
    }];
    let raft = |kind: pb::RaftKind, header: &str| pb::RaftRequest {
        group_id: 1,
        kind: kind as i32,
        header: header.as_bytes().to_vec(),
        entries: vec![vec![1; 26]],
        data: vec![0; 8],
        from_node: 2,
    };
    match rpc {
        0 => raft(
            pb::RaftKind::AppendEntries,
            r#"{"vote":{"leader_id":{"term":3,"node_id":2},"committed":true},"prev_log_id":null,"leader_commit":null}"#,
        )
        .encode_to_vec(),
        1 => raft(
            pb::RaftKind::Vote,
            r#"{"vote":{"leader_id":{"term":3,"node_id":2},"committed":false},"last_log_id":null}"#,
        )
        .encode_to_vec(),
        2 => raft(
            pb::RaftKind::InstallSnapshot,
            r#"{"vote":{"leader_id":{"term":3,"node_id":2},"committed":true},"meta":{"last_log_id":null,"last_membership":{"log_id":null,"membership":{"configs":[],"nodes":{}}},"snapshot_id":"s"},"offset":0,"done":false}"#,
        )
        .encode_to_vec(),
        3 => pb::WriteRequest {
            batches: vec![pb::ShardWriteRequest {
                shard: 0,
                batch: batch.finish(),
            }],
        }
        .encode_to_vec(),
        // One seed per read kind (4: select ... 8: tsdb stats).
        _ => pb::ReadRequest {
            shards: vec![0, 1],
            kind: i32::from(rpc) - 3,
            name: "__name__".into(),
            matchers,
            min_t: 0,
            max_t: i64::MAX,
            keep: 2,
        }
        .encode_to_vec(),
    }
}

/// Sends `bytes` as the request of RPC `rpc` if they decode as its message
/// (gRPC refuses what does not decode before any handler runs).
/// Returns how many calls reached the node and how many it answered OK.
async fn send(c: &mut ClusterClient<Channel>, rpc: u8, bytes: &[u8]) -> (usize, usize) {
    let t = Duration::from_secs(10);
    let (mut sent, mut ok) = (0, 0);
    macro_rules! call {
        ($ty:ty, $method:ident) => {
            if let Ok(m) = <$ty>::decode(bytes) {
                sent += 1;
                if let Ok(Ok(_)) = tokio::time::timeout(t, c.$method(m)).await {
                    ok += 1;
                }
            }
        };
    }
    match rpc {
        0..=2 => call!(pb::RaftRequest, raft),
        3 => call!(pb::WriteRequest, write),
        _ => {
            if let Ok(m) = pb::ReadRequest::decode(bytes) {
                sent += 1;
                // Every streamed answer is read: the handler runs as the
                // stream is polled.
                let drained = tokio::time::timeout(t, async {
                    let mut st = c.read(m).await?.into_inner();
                    while st.message().await?.is_some() {}
                    Ok::<(), tonic::Status>(())
                })
                .await;
                if let Ok(Ok(())) = drained {
                    ok += 1;
                }
            }
        }
    }
    (sent, ok)
}

async fn kept(node: &Arc<Node>) -> Vec<(String, Vec<(i64, u64)>)> {
    let q = node.querier(false);
    let r = q
        .select(&[Matcher::equal("__name__", "kept")], 0, i64::MAX)
        .await
        .expect("select");
    r.series
        .into_iter()
        .map(|s| {
            (
                s.labels.to_string(),
                s.samples.iter().map(|x| (x.t, x.v.to_bits())).collect(),
            )
        })
        .collect()
}

#[test]
fn peer_messages_never_panic_and_never_harm() {
    static PANICS: AtomicUsize = AtomicUsize::new(0);
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        default_hook(info);
    }));

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let addr = free_addr();
    let node = rt
        .block_on(Node::start(NodeConfig {
            node_id: 1,
            grpc_listen: addr,
            data_dir: dir.path().to_path_buf(),
            shards: 2,
            replication_factor: 1,
            ..Default::default()
        }))
        .expect("node starts");
    rt.block_on(async {
        for _ in 0..300 {
            if node.is_ready() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(node.is_ready(), "node ready");
        let samples: Vec<Sample> = (1..=50)
            .map(|i| Sample {
                t: i * 1000,
                v: i as f64 * 0.5,
            })
            .collect();
        for k in 0..8 {
            let out = node
                .write(vec![IncomingSeries {
                    labels: Labels::from_pairs([("__name__", "kept"), ("k", &k.to_string())]),
                    samples: samples.clone(),
                }])
                .await
                .expect("write");
            assert_eq!(out.accepted, 50);
        }
    });
    let before = rt.block_on(kept(&node));
    assert_eq!(before.len(), 8);

    let client = rt
        .block_on(ClusterClient::connect(format!("http://{addr}")))
        .expect("connect");
    let strategy = (
        0..RPCS,
        prop::bool::weighted(0.25),
        proptest::collection::vec(any::<u8>(), 0..256),
        proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    );
    let (sent, answered) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let mut runner = TestRunner::new(Config {
        cases: 1000,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&strategy, |(rpc, random, bytes, flips)| {
            let msg = if random {
                bytes
            } else {
                let mut m = seed(rpc);
                for (at, b) in flips {
                    let i = at.index(m.len().max(1));
                    if let Some(x) = m.get_mut(i) {
                        *x = b;
                    }
                }
                m
            };
            let (s, o) = rt.block_on(send(&mut client.clone(), rpc, &msg));
            sent.fetch_add(s, Ordering::Relaxed);
            answered.fetch_add(o, Ordering::Relaxed);
            Ok(())
        })
        .expect("no case fails");

    let (sent, answered) = (sent.into_inner(), answered.into_inner());
    eprintln!("{sent} calls reached the node, {answered} answered OK");
    // the property is only worth something if the messages got through
    assert!(sent >= 300 && answered >= 100, "{sent} sent, {answered} OK");
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "a handler panicked");
    rt.block_on(async {
        let mut ready = false;
        for _ in 0..300 {
            if node.is_ready() {
                ready = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(ready, "node ready after the forged messages");
    });
    let after = rt.block_on(kept(&node));
    assert_eq!(after, before, "stored data unchanged");
    rt.block_on(node.shutdown()).expect("shutdown");
}
