//! Mutual TLS on the cluster port (issue 14), on real `silverback`
//! processes with certificates made by `scripts/make-cluster-certs.sh`: a
//! caller without a certificate from the cluster's CA is refused on every
//! RPC; a member's certificate cannot speak for another node (Raft
//! messages, joins) and its forgeries do no harm, nor do meta commands
//! that do not fit the cluster map; a 3-node cluster with
//! mTLS loses no acknowledged sample when a shard leader is SIGKILLed; the
//! three flags go together and the certificate must name the node.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use cluster::raft::network::PeerClient;
use cluster::raft::rpc;
use openraft::raft::{AppendEntriesRequest, VoteRequest};
use openraft::Vote;
use proto::cluster as pb;
use tests::checker::{check_all, cluster_status, wait_for_leader, Writing, SERIES};
use tests::{binary_path, make_cluster_certs, Client, Cluster, Options, Silverback};
use tonic::Code;

mod peer;

use peer::{client, every_rpc, tls_client};

/// Certificates for nodes 1-3 from the cluster's CA, and for nodes 1-3
/// from another CA, in a temp dir.
struct Certs {
    _dir: tempfile::TempDir,
    ours: PathBuf,
    theirs: PathBuf,
}

impl Certs {
    fn make() -> Certs {
        let dir = tempfile::tempdir().expect("temp dir");
        let ours = dir.path().join("ours");
        let theirs = dir.path().join("theirs");
        make_cluster_certs(&ours, &[1, 2, 3]).expect("certs");
        make_cluster_certs(&theirs, &[1, 2, 3]).expect("other certs");
        Certs {
            _dir: dir,
            ours,
            theirs,
        }
    }

    fn file(dir: &Path, name: &str) -> PathBuf {
        dir.join(name)
    }

    /// A client of `node` presenting `who`'s certificate (`node-N` or
    /// `operator`) from `dir`.
    fn client_as(&self, node: &Silverback, dir: &Path, who: &str) -> PeerClient {
        let (crt, key) = (
            Self::file(dir, &format!("{who}.crt")),
            Self::file(dir, &format!("{who}.key")),
        );
        tls_client(
            node.grpc,
            &Self::file(&self.ours, "ca.crt"),
            &format!("node-{}.silverback", node.node_id),
            Some((&crt, &key)),
        )
    }
}

async fn health(c: &mut PeerClient) -> Result<u64, String> {
    c.health(pb::HealthRequest::default())
        .await
        .map(|r| r.into_inner().node_id)
        .map_err(|s| format!("{s:?}"))
}

/// Asserts that no call in `got` reached the service: each failed in the
/// transport (a TLS 1.3 client learns of its refused certificate after its
/// side of the handshake, as a cancelled or broken stream; a plain-TCP
/// client as an HTTP/2 protocol error), none got an answer or one of the
/// service's errors (`InvalidArgument`, `PermissionDenied` for these empty
/// requests).
fn refused_at_handshake(got: &[(&str, Code)]) {
    assert_eq!(got.len(), peer::RPCS);
    for (name, code) in got {
        assert!(
            matches!(
                code,
                Code::Unavailable | Code::Cancelled | Code::Unknown | Code::Internal
            ),
            "{name} was not refused in the transport: {code:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_without_a_cluster_certificate_are_refused_on_every_rpc() {
    let certs = Certs::make();
    let mut cluster = Cluster::start_secured(3, 2, 3, &[], None, Some(&certs.ours))
        .await
        .expect("cluster");
    let n1 = &cluster.nodes[0];
    // A member's certificate opens the port: health answers with the id.
    assert_eq!(
        health(&mut certs.client_as(n1, &certs.ours, "node-2")).await,
        Ok(1)
    );
    // So does an operator's (a certificate from the CA naming no node).
    assert_eq!(
        health(&mut certs.client_as(n1, &certs.ours, "operator")).await,
        Ok(1)
    );
    for n in &cluster.nodes {
        // TLS without a client certificate: the handshake fails.
        let ca = Certs::file(&certs.ours, "ca.crt");
        let name = format!("node-{}.silverback", n.node_id);
        let mut c = tls_client(n.grpc, &ca, &name, None);
        refused_at_handshake(&every_rpc(&mut c).await);
        // A certificate from another CA, same node names.
        let mut c = certs.client_as(n, &certs.theirs, "node-2");
        refused_at_handshake(&every_rpc(&mut c).await);
        // No TLS at all.
        refused_at_handshake(&every_rpc(&mut client(n.grpc, None)).await);
    }
    // The node is not hurt by the refused handshakes.
    assert_eq!(
        health(&mut certs.client_as(n1, &certs.ours, "node-3")).await,
        Ok(1)
    );
    let st = cluster_status(&n1.client()).await.expect("status");
    assert_eq!(st["warnings"], serde_json::json!([]), "{st}");
    for n in &mut cluster.nodes {
        n.stop().await.expect("stop");
    }
}

async fn send(c: &mut PeerClient, mut r: pb::RaftRequest, from: u64) -> Result<Vec<u8>, String> {
    r.from_node = from;
    match c.raft(r).await {
        Ok(r) => Ok(r.into_inner().payload),
        Err(s) => Err(format!("{:?}: {}", s.code(), s.message())),
    }
}

fn refused_for(got: Result<Vec<u8>, String>, want: &str) {
    match got {
        Err(e) => assert!(
            e.starts_with("PermissionDenied") && e.contains(want),
            "{e} (wanted {want:?})"
        ),
        Ok(_) => panic!("a forged raft message was accepted (wanted {want:?})"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_certificate_cannot_speak_for_another_node() {
    let certs = Certs::make();
    let mut cluster = Cluster::start_secured(3, 2, 3, &[], None, Some(&certs.ours))
        .await
        .expect("cluster");
    let clients: Vec<Client> = cluster.nodes.iter().map(Silverback::client).collect();
    let writing = Writing::start(&clients);
    let base = writing.base;
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Shard 0 (group 1): a member `m` that does not lead it forges
    // messages from the leader to the third node `f`.
    let leader = wait_for_leader(&clients[0], 0, None).await.expect("leader");
    let st = cluster_status(&clients[0]).await.expect("status");
    let term = st["shards"][0]["term"].as_u64().expect("term");
    let m = (1..=3u64).find(|n| *n != leader).expect("a member");
    let f = (1..=3u64)
        .find(|n| *n != leader && *n != m)
        .expect("a third node");
    let target = &cluster.nodes[(f - 1) as usize];
    let mut c = certs.client_as(target, &certs.ours, &format!("node-{m}"));
    let group = 1;
    let append = |vote: Vote<u64>| {
        rpc::encode_append(
            group,
            &AppendEntriesRequest {
                vote,
                prev_log_id: None,
                leader_commit: None,
                entries: Vec::new(),
            },
        )
    };
    let vote = |node: u64| {
        rpc::encode_vote(
            group,
            &VoteRequest {
                vote: Vote::new(term + 1, node),
                last_log_id: None,
            },
        )
    };
    let not_named = format!("does not name node-{leader}.silverback");
    // Entries from the leader at a higher term (would depose the real
    // leader), sent with m's certificate: refused, the certificate says m.
    let r = append(Vote::new_committed(term + 1, leader));
    refused_for(send(&mut c, r, leader).await, &not_named);
    // A vote request for the leader, claimed to come from the leader.
    refused_for(send(&mut c, vote(leader), leader).await, &not_named);
    // Honest about the sender, lying about the leadership: the guard.
    let r = append(Vote::new_committed(term + 1, leader));
    refused_for(
        send(&mut c, r, m).await,
        &format!("node {m} cannot speak for node {leader}"),
    );
    refused_for(
        send(&mut c, vote(leader), m).await,
        &format!("node {m} cannot speak for node {leader}"),
    );
    // The operator's certificate names no node: no Raft at all.
    let mut op = certs.client_as(target, &certs.ours, "operator");
    refused_for(send(&mut op, vote(leader), leader).await, &not_named);
    // A join for another node, with m's certificate.
    let j = c
        .join(pb::JoinRequest {
            node_id: 7,
            addr: "127.0.0.1:1".into(),
        })
        .await
        .expect_err("a join for node 7 with node m's certificate");
    assert_eq!(j.code(), Code::PermissionDenied, "{j:?}");
    assert!(j.message().contains("node-7.silverback"), "{j:?}");

    // Meta commands (any certificate from the CA may send them) must fit
    // the cluster map: replicas on a node that is no member, an empty set,
    // a set without the current quorum. The meta leader refuses them; the
    // other nodes redirect.
    let replicas_before = st["shards"][0]["replicas"].clone();
    let bad_sets: [(Vec<u64>, &str); 3] = [
        (vec![1, 2, 9], "node 9 is not a member"),
        (vec![], "the set is empty"),
        (vec![leader], "not a majority"),
    ];
    for (set, want) in bad_sets {
        let cmd = serde_json::to_vec(&cluster::meta::MetaCommand::SetReplicas {
            shard: 0,
            replicas: set.clone(),
        })
        .expect("encode");
        let mut refused = 0;
        for n in &cluster.nodes {
            let mut op = certs.client_as(n, &certs.ours, "operator");
            let r = op
                .meta(pb::MetaRequest {
                    command: cmd.clone(),
                })
                .await
                .expect("meta answered")
                .into_inner();
            if r.redirect.is_some_and(|r| r.not_leader) {
                continue;
            }
            assert!(r.error.contains(want), "{set:?}: {:?}", r.error);
            refused += 1;
        }
        assert_eq!(refused, 1, "{set:?}: one meta leader refuses it");
    }

    tokio::time::sleep(Duration::from_secs(2)).await;
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
    // The leader of shard 0 was not deposed by the forgeries.
    let st = cluster_status(&clients[0]).await.expect("status");
    assert_eq!(st["shards"][0]["leader"].as_u64(), Some(leader), "{st}");
    assert_eq!(st["shards"][0]["term"].as_u64(), Some(term), "{st}");
    assert_eq!(st["shards"][0]["replicas"], replicas_before, "{st}");
    let members = st["nodes"].as_array().map_or(0, Vec::len);
    assert_eq!(members, 3, "node 7 must not have joined: {st}");
    for n in &mut cluster.nodes {
        n.stop().await.expect("stop");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_kill_with_mtls_loses_no_acknowledged_sample() {
    let certs = Certs::make();
    let mut cluster = Cluster::start_secured(3, 4, 3, &[], None, Some(&certs.ours))
        .await
        .expect("cluster");
    let clients: Vec<Client> = cluster.nodes.iter().map(Silverback::client).collect();
    let writing = Writing::start(&clients);
    let base = writing.base;
    tokio::time::sleep(Duration::from_secs(2)).await;

    // The leader of shard 0 is SIGKILLed mid-writes; another replica
    // takes over (elected over mTLS), the old leader comes back.
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
    tokio::time::sleep(Duration::from_secs(1)).await;
    cluster.nodes[li].restart().await.expect("leader restart");
    writing.live.set(li, true);
    tokio::time::sleep(Duration::from_secs(2)).await;

    let acked = writing.finish().await;
    assert!(
        acked.rounds.len() > 30,
        "too few rounds: {}",
        acked.rounds.len()
    );
    println!(
        "mTLS: acknowledged {} rounds ({} samples); shard 0 leader {leader} -> {new_leader} \
         in {failover:?}",
        acked.rounds.len(),
        acked.rounds.len() * SERIES,
    );
    for c in &clients {
        check_all(c, base, &acked).await.expect("check");
    }
    for n in &mut cluster.nodes {
        n.stop().await.expect("stop");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_joins_over_mtls() {
    let certs = Certs::make();
    let mut first = Silverback::start(Options {
        grpc_tls: Some(certs.ours.clone()),
        ..Options::default()
    })
    .await
    .expect("node 1");
    // The joiner dials node 1 by address, not knowing its id: it checks
    // the cluster name, and node 1 checks that the certificate is node 2's.
    let mut joiner = Silverback::start(Options {
        node_id: 2,
        join: Some(first.grpc),
        grpc_tls: Some(certs.ours.clone()),
        ..Options::default()
    })
    .await
    .expect("node 2 joins over mTLS");
    let st = cluster_status(&first.client()).await.expect("status");
    let members = st["nodes"].as_array().map_or(0, Vec::len);
    assert_eq!(members, 2, "{st}");
    // A node of another CA cannot join: its handshake fails.
    let mut stranger = Silverback::start(Options {
        node_id: 3,
        join: Some(first.grpc),
        grpc_tls: Some(certs.theirs.clone()),
        wait_ready: false,
        ..Options::default()
    })
    .await
    .expect("spawn node 3");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let st = cluster_status(&first.client()).await.expect("status");
    assert_eq!(st["nodes"].as_array().map_or(0, Vec::len), 2, "{st}");
    stranger.kill();
    joiner.stop().await.expect("stop");
    first.stop().await.expect("stop");
}

/// Runs `silverback --check-config` with `args`; its exit code and stderr.
fn check_config(args: &[String]) -> (Option<i32>, String) {
    let out = Command::new(binary_path().expect("binary"))
        .arg("--check-config")
        .args(args)
        .output()
        .expect("run silverback");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn tls_flags_go_together_and_the_certificate_must_name_the_node() {
    let certs = Certs::make();
    let f = |dir: &Path, name: &str| Certs::file(dir, name).display().to_string();
    let flags = |node: u64, crt: String, key: String, ca: String| {
        vec![
            "--node-id".to_string(),
            node.to_string(),
            "--grpc-tls-cert-file".into(),
            crt,
            "--grpc-tls-key-file".into(),
            key,
            "--grpc-tls-ca-file".into(),
            ca,
        ]
    };
    let ours = &certs.ours;
    let good = flags(
        2,
        f(ours, "node-2.crt"),
        f(ours, "node-2.key"),
        f(ours, "ca.crt"),
    );
    let (code, err) = check_config(&good);
    assert_eq!(code, Some(0), "{err}");

    // Only some of the three: the missing key is named.
    for (drop, key) in [
        (2, "grpc_tls_cert_file"),
        (4, "grpc_tls_key_file"),
        (6, "grpc_tls_ca_file"),
    ] {
        let mut a = good.clone();
        a.drain(drop..drop + 2);
        let (code, err) = check_config(&a);
        assert_eq!(code, Some(2), "{err}");
        assert!(
            err.contains(&format!("invalid value for {key}")) && err.contains("together"),
            "{err}"
        );
    }
    let theirs = &certs.theirs;
    // (what is wrong, node id, cert, key, CA, what the error must say)
    type Case<'a> = (&'a str, u64, String, String, String, &'a [&'a str]);
    let cases: [Case; 6] = [
        (
            "node 1 with node 2's certificate",
            1,
            f(ours, "node-2.crt"),
            f(ours, "node-2.key"),
            f(ours, "ca.crt"),
            &[
                "invalid value for grpc_tls_cert_file",
                "not node 1's certificate",
                "DNS:node-1.silverback",
            ],
        ),
        (
            "a certificate from another CA",
            2,
            f(theirs, "node-2.crt"),
            f(theirs, "node-2.key"),
            f(ours, "ca.crt"),
            &["grpc_tls_cert_file", "does not verify against the CA"],
        ),
        (
            "the operator's certificate is no node's",
            1,
            f(ours, "operator.crt"),
            f(ours, "operator.key"),
            f(ours, "ca.crt"),
            &["grpc_tls_cert_file"],
        ),
        (
            "node 2's certificate with node 3's key",
            2,
            f(ours, "node-2.crt"),
            f(ours, "node-3.key"),
            f(ours, "ca.crt"),
            &["invalid value for grpc_tls_key_file", "not the private key"],
        ),
        (
            "a missing CA file",
            2,
            f(ours, "node-2.crt"),
            f(ours, "node-2.key"),
            f(ours, "nope.crt"),
            &["invalid value for grpc_tls_ca_file", "nope.crt"],
        ),
        (
            "a key file given as the CA",
            2,
            f(ours, "node-2.crt"),
            f(ours, "node-2.key"),
            f(ours, "node-2.key"),
            &["invalid value for grpc_tls_ca_file", "no usable PEM"],
        ),
    ];
    for (why, node, crt, key, ca, want) in cases {
        let (code, err) = check_config(&flags(node, crt, key, ca));
        assert_eq!(code, Some(2), "{why}: {err}");
        for w in want {
            assert!(err.contains(w), "{why}: want {w:?} in {err}");
        }
    }
}
