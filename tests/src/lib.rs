//! Helpers for Silverback's integration tests: start real nodes, send remote
//! writes, query the HTTP API.
