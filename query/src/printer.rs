//! Canonical PromQL printing of the AST. Filled in by the parser work.
