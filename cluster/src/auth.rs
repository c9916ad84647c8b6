//! Who may speak on the cluster port: the shared cluster secret.
//!
//! With `--cluster-secret-file`, every node-to-node call carries the secret
//! in the [`SECRET_HEADER`] metadata entry ([`ClientAuth`] adds it to each
//! request) and the server refuses a call without it, or with another one,
//! as `Unauthenticated` before the request body is decoded
//! ([`ServerAuth`], compared in constant time). Without a secret both sides
//! let every call through, as before.
//!
//! The secret only proves that the caller belongs to the cluster; it does
//! not say which node it is (a certificate does: see [`crate::tls`]). What a member may say in a Raft message is
//! checked by [`crate::raft::guard`].

use std::net::SocketAddr;
use std::sync::Arc;

use subtle::ConstantTimeEq;
use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::service::Interceptor;
use tonic::{Request, Status};

use crate::tls::ClusterTls;

/// The gRPC metadata entry that carries the cluster secret.
pub const SECRET_HEADER: &str = "x-silverback-cluster-secret";

/// A cluster secret that cannot be used (empty, or not printable ASCII).
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// Nothing left after trimming.
    #[error("the cluster secret is empty")]
    Empty,
    /// gRPC metadata values are printable ASCII.
    #[error(
        "the cluster secret must be printable ASCII without spaces (e.g. `openssl rand -hex 32`)"
    )]
    NotAscii,
}

/// The shared cluster secret (its `Debug` does not show it).
#[derive(Clone)]
pub struct ClusterSecret(Arc<AsciiMetadataValue>);

impl std::fmt::Debug for ClusterSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterSecret(..)")
    }
}

impl ClusterSecret {
    /// The secret in `text` (a file's contents), surrounding whitespace
    /// trimmed.
    pub fn new(text: &str) -> Result<Self, SecretError> {
        let t = text.trim();
        if t.is_empty() {
            return Err(SecretError::Empty);
        }
        if !t.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(SecretError::NotAscii);
        }
        let v = MetadataValue::try_from(t).map_err(|_| SecretError::NotAscii)?;
        Ok(ClusterSecret(Arc::new(v)))
    }

    /// True when `got` is this secret; takes the same time for every `got`
    /// of the secret's length.
    pub fn matches(&self, got: &[u8]) -> bool {
        self.0.as_bytes().ct_eq(got).into()
    }
}

/// What this node shows on every outgoing call: the cluster secret (added
/// to each call's headers, when there is one) and its TLS certificate (used
/// by [`crate::raft::network::connect_lazy`] for every channel, when there is
/// one; see [`crate::tls`]).
#[derive(Clone, Debug, Default)]
pub struct ClientAuth {
    secret: Option<ClusterSecret>,
    tls: Option<ClusterTls>,
}

impl ClientAuth {
    /// Calls carry `secret` (none: calls go out as they are).
    pub fn new(secret: Option<ClusterSecret>) -> Self {
        ClientAuth { secret, tls: None }
    }

    /// Channels run mutual TLS with `tls` (none: plain TCP).
    pub fn with_tls(self, tls: Option<ClusterTls>) -> Self {
        ClientAuth { tls, ..self }
    }

    /// This node's certificate, when the cluster port runs TLS.
    pub fn tls(&self) -> Option<&ClusterTls> {
        self.tls.as_ref()
    }
}

impl Interceptor for ClientAuth {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        if let Some(s) = &self.secret {
            req.metadata_mut()
                .insert(SECRET_HEADER, s.0.as_ref().clone());
        }
        Ok(req)
    }
}

/// Refuses calls without the cluster secret (when there is one).
#[derive(Clone, Debug, Default)]
pub struct ServerAuth {
    secret: Option<ClusterSecret>,
}

impl ServerAuth {
    /// Requires `secret` on every call (none: lets every call through).
    pub fn new(secret: Option<ClusterSecret>) -> Self {
        ServerAuth { secret }
    }
}

impl Interceptor for ServerAuth {
    fn call(&mut self, req: Request<()>) -> Result<Request<()>, Status> {
        let Some(s) = &self.secret else {
            return Ok(req);
        };
        match req.metadata().get(SECRET_HEADER) {
            Some(v) if s.matches(v.as_bytes()) => Ok(req),
            Some(_) => Err(Status::unauthenticated(
                "cannot accept the call: wrong cluster secret; give every node the same --cluster-secret-file",
            )),
            None => Err(Status::unauthenticated(
                "cannot accept the call: no cluster secret; this cluster requires --cluster-secret-file",
            )),
        }
    }
}

/// The warning shown when the cluster port is open to strangers: a
/// listener on a non-loopback address with neither a cluster secret nor
/// mutual TLS (`protected`: either is on). `None` when the port is
/// protected or only reachable from this host.
pub fn exposure_warning(listen: SocketAddr, protected: bool) -> Option<String> {
    if protected || listen.ip().is_loopback() {
        return None;
    }
    Some(format!(
        "the cluster port {listen} is not loopback and has no authentication: anyone who can \
         reach it can read, write and take the cluster apart; set --grpc-tls-cert-file, \
         --grpc-tls-key-file and --grpc-tls-ca-file (mutual TLS), or --cluster-secret-file (the \
         same file on every node), or bind --grpc-listen to a private address behind a firewall"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(a: &mut ServerAuth, header: Option<&str>) -> Result<(), tonic::Code> {
        let mut r = Request::new(());
        if let Some(h) = header {
            r.metadata_mut()
                .insert(SECRET_HEADER, MetadataValue::try_from(h).unwrap());
        }
        a.call(r).map(|_| ()).map_err(|s| s.code())
    }

    #[test]
    fn server_refuses_calls_without_the_secret() {
        let s = ClusterSecret::new("  s3cret-value\n").unwrap();
        let mut a = ServerAuth::new(Some(s.clone()));
        let f = |h, want| assert_eq!(call(&mut a.clone(), h), want, "{h:?}");
        f(Some("s3cret-value"), Ok(()));
        f(None, Err(tonic::Code::Unauthenticated));
        f(Some("s3cret-valu"), Err(tonic::Code::Unauthenticated));
        f(Some("s3cret-value2"), Err(tonic::Code::Unauthenticated));
        f(Some(""), Err(tonic::Code::Unauthenticated));
        // The client side adds exactly what the server wants.
        let mut c = ClientAuth::new(Some(s));
        let r = c.call(Request::new(())).unwrap();
        assert!(a.call(r).is_ok());
        // No secret configured: everything passes.
        assert_eq!(call(&mut ServerAuth::new(None), None), Ok(()));
    }

    #[test]
    fn secrets_are_trimmed_and_checked() {
        assert!(matches!(ClusterSecret::new(" \n"), Err(SecretError::Empty)));
        assert!(matches!(
            ClusterSecret::new("two words"),
            Err(SecretError::NotAscii)
        ));
        assert!(matches!(
            ClusterSecret::new("caf\u{e9}"),
            Err(SecretError::NotAscii)
        ));
        assert!(ClusterSecret::new("abc").unwrap().matches(b"abc"));
        assert_eq!(
            format!("{:?}", ClusterSecret::new("abc").unwrap()),
            "ClusterSecret(..)"
        );
    }

    #[test]
    fn warns_only_for_open_non_loopback_ports() {
        let f = |a: &str, secret, warn: bool| {
            let w = exposure_warning(a.parse().unwrap(), secret);
            assert_eq!(w.is_some(), warn, "{a} {secret}");
        };
        f("127.0.0.1:9301", false, false);
        f("[::1]:9301", false, false);
        f("0.0.0.0:9301", false, true);
        f("10.0.0.5:9301", false, true);
        f("0.0.0.0:9301", true, false);
    }
}
