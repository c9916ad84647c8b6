//! Wire formats of Silverback.
//!
//! - [`prometheus`]: the Prometheus remote write 1.0 protobuf messages
//!   ([`prometheus::WriteRequest`] and friends), decoded from the snappy
//!   block-compressed bodies that `POST /api/v1/write` receives.
//! - [`cluster`]: the node-to-node gRPC service ([`cluster::cluster_server`]
//!   and [`cluster::cluster_client`]) carrying Raft RPCs, forwarded writes and
//!   fan-out reads.
//!
//! ```
//! use prost::Message;
//! use proto::prometheus::{Label, Sample, TimeSeries, WriteRequest};
//!
//! let req = WriteRequest {
//!     timeseries: vec![TimeSeries {
//!         labels: vec![Label { name: "__name__".into(), value: "up".into() }],
//!         samples: vec![Sample { value: 1.0, timestamp: 1_700_000_000_000 }],
//!         ..Default::default()
//!     }],
//!     ..Default::default()
//! };
//! let bytes = req.encode_to_vec();
//! assert_eq!(WriteRequest::decode(bytes.as_slice()).unwrap(), req);
//! ```
#![deny(missing_docs)]

/// Prometheus remote write 1.0 messages (`prompb`).
#[allow(missing_docs, clippy::all)]
pub mod prometheus {
    include!(concat!(env!("OUT_DIR"), "/prometheus.rs"));
}

/// The node-to-node gRPC service.
#[allow(missing_docs, clippy::all)]
pub mod cluster {
    include!(concat!(env!("OUT_DIR"), "/silverback.cluster.rs"));
}

pub use prost;
