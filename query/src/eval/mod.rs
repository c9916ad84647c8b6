//! Evaluator. Filled in by the evaluator work.
