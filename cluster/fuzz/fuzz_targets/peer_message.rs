//! Fuzz target: each input is one message a peer could send on the cluster
//! port — the first byte picks the RPC (Raft append/vote/snapshot, a
//! forwarded write, a read of any kind, and the membership calls: meta command, join, replica change), the rest is
//! the protobuf request — sent over real gRPC to one real node. A panic
//! anywhere in the node aborts the fuzzer (libFuzzer's panic hook), and the
//! node must keep answering its health check. (A member may legitimately
//! change membership, so unlike cluster/tests/peer_messages.rs this target
//! does not check that data stays unchanged.)
#![no_main]

use std::net::TcpListener;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use cluster::{Node, NodeConfig};
use libfuzzer_sys::fuzz_target;
use prost::Message;
use proto::cluster as pb;
use proto::cluster::cluster_client::ClusterClient;
use tonic::transport::Channel;

struct Target {
    rt: tokio::runtime::Runtime,
    _node: Arc<Node>,
    client: ClusterClient<Channel>,
    _dir: tempfile::TempDir,
}

fn target() -> &'static Target {
    static T: OnceLock<Target> = OnceLock::new();
    T.get_or_init(|| {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let dir = tempfile::tempdir().expect("tempdir");
        let addr = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port");
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
        let client = rt
            .block_on(ClusterClient::connect(format!("http://{addr}")))
            .expect("connect");
        Target {
            rt,
            _node: node,
            client,
            _dir: dir,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&rpc, bytes)) = data.split_first() else {
        return;
    };
    let t = target();
    let mut c = t.client.clone();
    let timeout = Duration::from_secs(10);
    t.rt.block_on(async {
        macro_rules! call {
            ($ty:ty, $method:ident) => {
                if let Ok(m) = <$ty>::decode(bytes) {
                    let _ = tokio::time::timeout(timeout, c.$method(m)).await;
                }
            };
        }
        match rpc % 8 {
            0..=2 => call!(pb::RaftRequest, raft),
            3 => call!(pb::WriteRequest, write),
            4 => {
                if let Ok(m) = pb::ReadRequest::decode(bytes) {
                    // Read every streamed answer: the handler runs as the
                    // stream is polled.
                    let _ = tokio::time::timeout(timeout, async {
                        let mut st = c.read(m).await?.into_inner();
                        while st.message().await?.is_some() {}
                        Ok::<(), tonic::Status>(())
                    })
                    .await;
                }
            }
            5 => call!(pb::MetaRequest, meta),
            6 => call!(pb::JoinRequest, join),
            _ => call!(pb::ChangeReplicasRequest, change_replicas),
        }
        let health = tokio::time::timeout(timeout, c.health(pb::HealthRequest::default())).await;
        assert!(matches!(health, Ok(Ok(_))), "the node still answers");
    });
});
