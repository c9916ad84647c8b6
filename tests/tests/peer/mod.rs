//! Clients of the cluster service for the cluster-port tests
//! (`cluster_security`, `cluster_mtls`): every RPC called at once, and
//! clients with or without the secret or a certificate.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use cluster::auth::{ClientAuth, ClusterSecret};
use cluster::raft::network::{connect_lazy, PeerClient};
use proto::cluster as pb;
use proto::cluster::cluster_client::ClusterClient;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
use tonic::Code;

/// Every RPC of the `Cluster` service in proto/proto/cluster.proto.
pub const RPCS: usize = 7;

/// A plain-TCP client of the node at `addr`, carrying `secret` if any.
#[allow(dead_code)] // not every test file uses every helper
pub fn client(addr: SocketAddr, secret: Option<&str>) -> PeerClient {
    let s = secret.map(|s| ClusterSecret::new(s).expect("secret"));
    connect_lazy(
        &addr.to_string(),
        Duration::from_secs(5),
        &ClientAuth::new(s),
        None,
    )
    .expect("client")
}

/// A TLS client of the node at `addr` that trusts `ca` (a PEM file),
/// accepts a server certificate naming `server_name`, and presents
/// `identity` (certificate and key PEM files), if any.
#[allow(dead_code)]
pub fn tls_client(
    addr: SocketAddr,
    ca: &Path,
    server_name: &str,
    identity: Option<(&Path, &Path)>,
) -> PeerClient {
    let read = |p: &Path| std::fs::read(p).expect("read a PEM file");
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read(ca)))
        .domain_name(server_name)
        .assume_http2(true);
    if let Some((cert, key)) = identity {
        tls = tls.identity(Identity::from_pem(read(cert), read(key)));
    }
    let ch = Endpoint::from_shared(format!("https://{addr}"))
        .expect("endpoint")
        .tls_config(tls)
        .expect("tls config")
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(5))
        .connect_lazy();
    ClusterClient::with_interceptor(ch, ClientAuth::default())
}

/// Calls every RPC of the cluster service with an empty request; returns
/// each call's name and code (`Ok` when it was answered).
pub async fn every_rpc(c: &mut PeerClient) -> Vec<(&'static str, Code)> {
    fn code<T>(r: Result<T, tonic::Status>) -> Code {
        r.map_or_else(|s| s.code(), |_| Code::Ok)
    }
    let v = vec![
        ("Raft", code(c.raft(pb::RaftRequest::default()).await)),
        ("Write", code(c.write(pb::WriteRequest::default()).await)),
        ("Read", code(c.read(pb::ReadRequest::default()).await)),
        ("Meta", code(c.meta(pb::MetaRequest::default()).await)),
        ("Join", code(c.join(pb::JoinRequest::default()).await)),
        (
            "ChangeReplicas",
            code(
                c.change_replicas(pb::ChangeReplicasRequest::default())
                    .await,
            ),
        ),
        ("Health", code(c.health(pb::HealthRequest::default()).await)),
    ];
    assert_eq!(v.len(), RPCS);
    v
}

/// Asserts that every call in `got` was refused with `want`.
#[allow(dead_code)]
pub fn all_refused(got: &[(&str, Code)], want: Code) {
    assert_eq!(got.len(), RPCS);
    for (name, code) in got {
        assert_eq!(*code, want, "{name} was not refused");
    }
}
