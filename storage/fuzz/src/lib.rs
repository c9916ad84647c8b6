//! The storage decoders that take untrusted bytes, compiled from the
//! `storage` crate's own source files (see `Cargo.toml` for why).

#[path = "../../src/batch.rs"]
pub mod batch;
#[path = "../../src/chunk/mod.rs"]
pub mod chunk;
