//! Silverback's data model: the vocabulary every other crate shares.
//!
//! - [`Labels`] (a series' identity), their one canonical byte encoding and
//!   hash, and the shard a series belongs to ([`labels`]).
//! - [`Matcher`]: label matchers with Prometheus' semantics.
//! - [`Sample`], [`SeriesData`] and the stale marker ([`sample`]).
//! - Prometheus duration strings ([`duration`]).
//! - LEB128 varints ([`varint`]), shared by every byte format.
//!
//! No I/O and no PromQL here: storage depends on this crate, not on the
//! query engine.
#![deny(missing_docs)]

pub mod duration;
pub mod labels;
pub mod matcher;
pub mod sample;
pub mod varint;

pub use labels::{Label, Labels, METRIC_NAME};
pub use matcher::{MatchOp, Matcher};
pub use sample::{is_stale_nan, Sample, SeriesData, STALE_NAN_BITS};
