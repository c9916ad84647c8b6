//! Query engine entry points. Filled in by the evaluator work.
