//! Silverback cluster: shards replicated by openraft over gRPC.
#![deny(missing_docs)]
