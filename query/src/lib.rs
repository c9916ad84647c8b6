//! PromQL for Silverback.
//!
//! - [`parser::parse`] turns a query string into an [`ast::Expr`] (nom,
//!   Prometheus grammar and type checking, errors with positions).
//! - [`engine::Engine`] evaluates instant and range queries over any
//!   [`model::Queryable`] with Prometheus 3.x semantics.
//! - [`mem::MemQueryable`] is an in-memory store for tests and benchmarks;
//!   [`conformance`] checks any [`model::Queryable`] against the contract.
//! - [`model`] holds the [`model::Queryable`] trait every store implements,
//!   its result, error and budget types, and re-exports the data model
//!   (labels, matchers, samples) from the `model` crate.
#![deny(missing_docs)]

pub mod ast;
pub mod conformance;
pub mod engine;
pub mod eval;
pub mod mem;
pub mod model;
pub mod parser;
mod printer;
