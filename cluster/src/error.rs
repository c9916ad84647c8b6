//! Errors of the cluster crate and the small set of kinds the server maps to
//! HTTP statuses.

use crate::types::GroupId;

/// What kind of failure, for the caller's response (the server maps kinds
/// to statuses in one place).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request is invalid; do not retry (400).
    BadData,
    /// Too much load; retry later (429).
    Overloaded,
    /// A shard has no leader right now; retry (503).
    NoLeader,
    /// A part of the cluster cannot answer (503).
    Unavailable,
    /// A bug or local I/O failure (500).
    Internal,
}

/// Errors of cluster operations.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// No leader is known for a group.
    #[error("cannot write to shard group {group}: no leader elected yet; retry")]
    NoLeader {
        /// The group.
        group: GroupId,
    },
    /// Queues are full.
    #[error("cannot accept the request: {0}; retry later")]
    Overloaded(String),
    /// Invalid input.
    #[error("{0}")]
    BadData(String),
    /// A peer or group cannot answer.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Configuration problem at start.
    #[error("invalid cluster configuration: {0}")]
    Config(String),
    /// Anything else.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ClusterError {
    /// The kind, for mapping to a status.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ClusterError::NoLeader { .. } => ErrorKind::NoLeader,
            ClusterError::Overloaded(_) => ErrorKind::Overloaded,
            ClusterError::BadData(_) | ClusterError::Config(_) => ErrorKind::BadData,
            ClusterError::Unavailable(_) => ErrorKind::Unavailable,
            ClusterError::Internal(_) => ErrorKind::Internal,
        }
    }

    pub(crate) fn internal(e: impl std::fmt::Display) -> Self {
        ClusterError::Internal(e.to_string())
    }
}

impl From<ClusterError> for query::model::QueryableError {
    fn from(e: ClusterError) -> Self {
        use query::model::QueryableError as Q;
        match e.kind() {
            ErrorKind::BadData => Q::BadData(e.to_string()),
            ErrorKind::Overloaded => Q::Limit(e.to_string()),
            ErrorKind::NoLeader | ErrorKind::Unavailable => Q::Unavailable(e.to_string()),
            ErrorKind::Internal => Q::Internal(e.to_string()),
        }
    }
}
