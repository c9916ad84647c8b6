//! The `silverback` server: HTTP API, configuration, rules and CLI.
//!
//! - [`config`]: flags and the YAML file merged into a [`config::Config`].
//! - [`ingest`]: remote write decoding and validation into write batches.
//! - [`api`]: the Prometheus HTTP API ([`api::routes::router`] is the one
//!   route table; JSON in Prometheus' shapes).
//! - [`error`]: API errors and the one kind -> HTTP status mapping.
//! - [`metrics`] and [`process`]: `/metrics`; [`self_scrape`] writes them
//!   into the server itself.
//! - [`run`]: starting and stopping the whole server; [`http_server`]: the
//!   HTTP listener, bounded against slow and idle clients; [`tls`]: its
//!   optional TLS configuration.
pub mod alloc;
pub mod api;
pub mod cli;
pub mod config;
pub mod duration;
pub mod error;
pub mod http_server;
pub mod ingest;
pub mod metrics;
pub mod process;
pub mod rules;
pub mod run;
pub mod self_scrape;
pub mod tls;
