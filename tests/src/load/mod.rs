//! The load tool behind `silverback-load` and `tests/bench/compare.sh`:
//! deterministic Prometheus-like data, remote write at a fixed concurrency,
//! dashboard queries, and the side-by-side report.
//!
//! - [`gen`]: the seeded catalog ([`gen::Catalog`]) of counters, gauges and
//!   classic histograms, and their values ([`gen::values`]).
//! - [`encode`]: remote write 1.0 bodies built ahead of time
//!   ([`encode::build`]).
//! - [`send`]: sending them with `N` in flight without reordering any series
//!   ([`send::ingest`]).
//! - [`queries`]: the dashboard set ([`queries::dashboard`]) and answers in
//!   one comparable form; [`compare`]: do two answers agree.
//! - [`procstat`]: server CPU and RSS from `/proc`; [`report`]: the per-run
//!   JSON ([`report::RunResult`]) and BENCHMARKS.md ([`report::render`]);
//!   [`sst`]: a RocksDB directory's bytes by column family.
//!
//! ```
//! use tests::load::gen::{Catalog, Shape};
//! let shape = Shape { series: 1000, points: 4, interval_ms: 15_000,
//!                     end_ms: 1_800_000_000_000, instances: 10, seed: 1 };
//! let reqs = tests::load::encode::build(&shape, 500, 1);
//! assert_eq!(reqs.total_samples(), 4000);
//! assert_eq!(Catalog::new(&shape).series_count(), 1000);
//! ```

pub mod compare;
pub mod encode;
pub mod gen;
pub mod procstat;
pub mod queries;
pub mod report;
pub mod rng;
pub mod send;
pub mod sst;
