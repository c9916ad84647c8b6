//! Mutual TLS on the cluster port (tonic's rustls support).
//!
//! With `--grpc-tls-cert-file`, `--grpc-tls-key-file` and
//! `--grpc-tls-ca-file`, every node-to-node connection is TLS with a
//! certificate on both sides, each signed by the cluster's CA.
//!
//! A node's identity is its certificate: node `N`'s certificate carries the
//! DNS name `node-N.silverback` ([`node_name`]) in its subjectAltName, and
//! the name `silverback` ([`CLUSTER_NAME`]), which a node dialling a member
//! whose id it does not know yet (`--join`) checks.
//!
//! - A node dialling node `N` accepts only a server certificate from the CA
//!   that names `node-N.silverback` (the address, often an IP, is not
//!   checked: the name stands in for it);
//! - the server requires a client certificate from the CA; without one the
//!   handshake fails and no call is served;
//! - a Raft message whose `from_node` is `N`, or a join of node `N`, is
//!   refused unless the caller's certificate names `node-N.silverback`
//!   ([`PeerIdentity::check_speaks_for`]); with the checks of
//!   [`crate::raft::guard`] (the vote and leadership in a message are its
//!   sender's), a member may only speak for itself;
//! - a certificate from the CA that names no node (an operator's) may make
//!   the other calls: reads, health, meta commands, replica changes.
//!
//! At start, [`ClusterTls::load`] checks that the node's own certificate is
//! signed by the CA and names this node, so a wrong file is a config error
//! rather than a cluster whose handshakes fail.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::client::verify_server_name;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::sign::CertifiedKey;
use rustls::RootCertStore;
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};
use tonic::Status;

use crate::types::NodeId;

/// The DNS name every node's certificate carries besides its own.
pub const CLUSTER_NAME: &str = "silverback";

/// How long a TLS handshake may take on either side.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The DNS name that names node `id` in its certificate.
pub fn node_name(id: NodeId) -> String {
    format!("node-{id}.{CLUSTER_NAME}")
}

/// Why the TLS files cannot be used; `key` is the config key to fix.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// Which config key names the file.
        key: &'static str,
        /// Its path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A file holds no usable PEM certificate.
    #[error("{path} holds no usable PEM certificate{detail}")]
    NoCertificate {
        /// Which config key names the file.
        key: &'static str,
        /// Its path.
        path: PathBuf,
        /// More about it (may be empty).
        detail: String,
    },
    /// The key cannot be used with the certificate.
    #[error(
        "{path} is not the private key of the certificate in grpc_tls_cert_file ({msg}); \
         give each node the key made with its certificate"
    )]
    Key {
        /// The key file.
        path: PathBuf,
        /// What rustls said.
        msg: String,
    },
    /// The certificate does not verify against the CA.
    #[error(
        "{path} does not verify against the CA in grpc_tls_ca_file ({msg}); a node's \
         certificate must be signed by the cluster's CA, current, and valid for serverAuth \
         and clientAuth"
    )]
    NotFromCa {
        /// The certificate file.
        path: PathBuf,
        /// What rustls said.
        msg: String,
    },
    /// The certificate does not name this node.
    #[error(
        "{path} is not node {node}'s certificate ({msg}); give node {node} \
         a certificate whose subjectAltName holds DNS:{name} and DNS:{CLUSTER_NAME} \
         (scripts/make-cluster-certs.sh makes them), or fix --node-id"
    )]
    NotThisNode {
        /// The certificate file.
        path: PathBuf,
        /// This node.
        node: NodeId,
        /// The name it should carry.
        name: String,
        /// What rustls said.
        msg: String,
    },
}

impl TlsError {
    /// The config key (`grpc_tls_*_file`) naming the file at fault.
    pub fn key(&self) -> &'static str {
        match self {
            TlsError::Read { key, .. } | TlsError::NoCertificate { key, .. } => key,
            TlsError::Key { .. } => "grpc_tls_key_file",
            TlsError::NotFromCa { .. } | TlsError::NotThisNode { .. } => "grpc_tls_cert_file",
        }
    }
}

/// This node's certificate, key and the cluster CA, as PEM.
#[derive(Clone)]
pub struct ClusterTls {
    cert: Arc<Vec<u8>>,
    key: Arc<Vec<u8>>,
    ca: Arc<Vec<u8>>,
}

impl std::fmt::Debug for ClusterTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterTls(..)")
    }
}

fn read(key: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        key,
        path: path.to_path_buf(),
        source,
    })
}

fn certs(
    key: &'static str,
    path: &Path,
    pem: &[u8],
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let no = |detail: String| TlsError::NoCertificate {
        key,
        path: path.to_path_buf(),
        detail,
    };
    let v: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| no(format!(": {e}")))?;
    if v.is_empty() {
        return Err(no(String::new()));
    }
    Ok(v)
}

impl ClusterTls {
    /// Reads the PEM files of node `node` and checks that its certificate
    /// is signed by the CA and names it (`node-N.silverback` and
    /// `silverback`), and that the key is the certificate's.
    pub fn load(cert: &Path, key: &Path, ca: &Path, node: NodeId) -> Result<Self, TlsError> {
        let t = ClusterTls {
            cert: Arc::new(read("grpc_tls_cert_file", cert)?),
            key: Arc::new(read("grpc_tls_key_file", key)?),
            ca: Arc::new(read("grpc_tls_ca_file", ca)?),
        };
        let mut roots = RootCertStore::empty();
        for c in certs("grpc_tls_ca_file", ca, &t.ca)? {
            roots.add(c).map_err(|e| TlsError::NoCertificate {
                key: "grpc_tls_ca_file",
                path: ca.to_path_buf(),
                detail: format!(": {e}"),
            })?;
        }
        let chain = certs("grpc_tls_cert_file", cert, &t.cert)?;
        let leaf = ParsedCertificate::try_from(&chain[0]).map_err(|e| TlsError::NoCertificate {
            key: "grpc_tls_cert_file",
            path: cert.to_path_buf(),
            detail: format!(": {e}"),
        })?;
        let algs = rustls::crypto::ring::default_provider().signature_verification_algorithms;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &leaf,
            &roots,
            &chain[1..],
            UnixTime::now(),
            algs.all,
        )
        .map_err(|e| TlsError::NotFromCa {
            path: cert.to_path_buf(),
            msg: e.to_string(),
        })?;
        let bad_key = |msg: String| TlsError::Key {
            path: key.to_path_buf(),
            msg,
        };
        let der = PrivateKeyDer::from_pem_slice(&t.key).map_err(|e| bad_key(e.to_string()))?;
        let provider = rustls::crypto::ring::default_provider();
        CertifiedKey::from_der(chain.clone(), der, &provider)
            .map_err(|e| bad_key(e.to_string()))?;
        for name in [node_name(node), CLUSTER_NAME.to_string()] {
            if let Err(msg) = names(&leaf, &name) {
                return Err(TlsError::NotThisNode {
                    path: cert.to_path_buf(),
                    node,
                    name: node_name(node),
                    msg,
                });
            }
        }
        Ok(t)
    }

    /// The server side: this node's certificate; a client certificate from
    /// the CA is required.
    pub fn server_config(&self) -> ServerTlsConfig {
        ServerTlsConfig::new()
            .identity(Identity::from_pem(&*self.cert, &*self.key))
            .client_ca_root(Certificate::from_pem(&*self.ca))
            .timeout(HANDSHAKE_TIMEOUT)
    }

    /// The client side of a call to node `target` (`None`: any member, as
    /// for a join): this node's certificate, and the server's must come
    /// from the CA and name `target`.
    pub fn client_config(&self, target: Option<NodeId>) -> ClientTlsConfig {
        ClientTlsConfig::new()
            .identity(Identity::from_pem(&*self.cert, &*self.key))
            .ca_certificate(Certificate::from_pem(&*self.ca))
            .domain_name(target.map_or_else(|| CLUSTER_NAME.to_string(), node_name))
            .assume_http2(true)
            .timeout(HANDSHAKE_TIMEOUT)
    }
}

/// Whether `cert` is valid for the DNS name `name` (its signature and chain
/// are the TLS handshake's business).
fn names(cert: &ParsedCertificate<'_>, name: &str) -> Result<(), String> {
    let sn = ServerName::try_from(name).map_err(|e| e.to_string())?;
    verify_server_name(cert, &sn).map_err(|e| e.to_string())
}

/// Who is calling, as far as the transport proves it.
#[derive(Clone, Debug)]
pub enum PeerIdentity {
    /// The cluster port runs without TLS: the caller is whoever it says
    /// (the cluster secret, when set, only proves membership).
    Unproven,
    /// The caller's certificate chain, leaf first, as the TLS handshake
    /// verified it against the CA.
    Certificate(Arc<Vec<CertificateDer<'static>>>),
}

impl PeerIdentity {
    /// The identity of the caller of `req`; `tls` says whether the port
    /// runs TLS (then a request without certificates cannot happen, and is
    /// treated as naming no node).
    pub fn of<T>(req: &tonic::Request<T>, tls: bool) -> Self {
        match req.peer_certs() {
            Some(c) => PeerIdentity::Certificate(c),
            None if tls => PeerIdentity::Certificate(Arc::new(Vec::new())),
            None => PeerIdentity::Unproven,
        }
    }

    /// Whether the caller's certificate names node `node`.
    pub fn is_node(&self, node: NodeId) -> bool {
        match self {
            PeerIdentity::Unproven => true,
            PeerIdentity::Certificate(c) => c.first().is_some_and(|leaf| {
                ParsedCertificate::try_from(leaf).is_ok_and(|p| names(&p, &node_name(node)).is_ok())
            }),
        }
    }

    /// Refuses (`PermissionDenied`) a call in which the caller speaks for
    /// node `node` unless its certificate names that node; `what` says
    /// what the call is, for the message.
    pub fn check_speaks_for(&self, node: NodeId, what: &str) -> Result<(), Status> {
        if self.is_node(node) {
            return Ok(());
        }
        tracing::warn!(
            node,
            what,
            "refused a call from a certificate of another node"
        );
        Err(Status::permission_denied(format!(
            "cannot accept the {what}: it speaks for node {node} but the caller's certificate \
             does not name {}; a node may only speak for itself",
            node_name(node)
        )))
    }
}
